// Node upstream for the soak (tests/bench/soak.sh): the bench fixture (upstream.js's answers)
// plus the app failures visor must scrub, and a count of what it answered.
//   GET  any path      200, the 329-byte JSON fixture, X-Powered-By (visor strips it)
//   POST any path      200 {"n":<body bytes>}
//   GET  /api/boom     500 with a stack trace (scrubbed by status: the soak's expected 5xx)
//   GET  /api/leak     400 JSON carrying a stack (scrubbed by content)
//   GET  /__soak/stats the statuses answered so far, {"200":n,...}; asked directly, never
//                      through visor (no visor route leads here)
// keep-alive 65 s. No dependencies. Usage: node soak-upstream.js PORT
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
const BOOM = 'TypeError: Cannot read properties of undefined (reading \'id\')\n' +
  '    at getOrder (/app/src/routes/orders.js:42:27)\n' +
  '    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n';
const LEAK = JSON.stringify({ error: 'bad input', stack: 'Error: relation "orders" does not exist\n    at Parser.parseErrorMessage (/app/node_modules/pg-protocol/dist/parser.js:287:98)' });
const counts = {};
const send = (res, status, type, body, extra) => {
  counts[status] = (counts[status] || 0) + 1;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
};
const port = Number(process.argv[2] || 3000);
const srv = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => send(res, 200, 'application/json', `{"n":${n}}`));
    return;
  }
  if (req.url === '/__soak/stats') { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(counts)); return; }
  if (req.url.startsWith('/api/boom')) return send(res, 500, 'text/plain', BOOM);
  if (req.url.startsWith('/api/leak')) return send(res, 400, 'application/json', LEAK);
  send(res, 200, 'application/json; charset=utf-8', ITEMS, { 'X-Powered-By': 'Express' });
});
srv.keepAliveTimeout = 65000;
srv.headersTimeout = 66000;
srv.listen(port, '127.0.0.1', () => console.log(`soak upstream on 127.0.0.1:${port}`));
