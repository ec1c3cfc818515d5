// Fast Node upstream for benchmarks: GET /api/items -> the same 329-byte JSON the peer
// baseline uses (shared/peers/upstream.js), keep-alive 65 s. No dependencies.
'use strict';
const http = require('node:http');
const ITEMS = Buffer.from(JSON.stringify({
  items: [
    { id: 1, name: 'alpha widget', price: 9.99, tags: ['red', 'small'] },
    { id: 2, name: 'beta gadget', price: 19.5, tags: ['blue', 'medium'] },
    { id: 3, name: 'gamma doohickey', price: 4.25, tags: ['green', 'large'] },
  ],
  total: 3, page: 1, pageSize: 25, generatedBy: 'upstream-node', note: 'static fixture for visor peer baseline',
}));
const port = Number(process.argv[2] || 3000);
const srv = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(`{"n":${n}}`); });
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': ITEMS.length, 'X-Powered-By': 'Express' });
  res.end(ITEMS);
});
srv.keepAliveTimeout = 65000;
srv.headersTimeout = 66000;
srv.listen(port, '127.0.0.1', () => console.log(`bench upstream on 127.0.0.1:${port}`));
