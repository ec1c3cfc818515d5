// Opens N TLS keep-alive connections to 127.0.0.1:PORT, sends one GET on each, reads the
// answer, then holds them idle and prints "HOLDING <ok> <failed>"; exits after HOLD_S seconds
// (hard cap 90 s). Usage: node idle-conns.js PORT N HOLD_S
'use strict';
const tls = require('node:tls');
const [port, n, holdS] = [Number(process.argv[2]), Number(process.argv[3] || 2000), Number(process.argv[4] || 6)];
let ok = 0, failed = 0, done = 0;
const socks = [];
setTimeout(() => process.exit(0), 90000).unref();
function finish() {
  if (++done < n) return;
  console.log(`HOLDING ${ok} ${failed}`);
  setTimeout(() => { for (const s of socks) s.destroy(); process.exit(0); }, holdS * 1000);
}
let i = 0;
function next() {
  if (i >= n) return;
  i++;
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  socks.push(s);
  let got = '', counted = false;
  const fail = () => { if (!counted) { counted = true; failed++; finish(); } };
  s.on('secureConnect', () => s.write('GET /api/items HTTP/1.1\r\nHost: localhost\r\n\r\n'));
  s.on('data', (d) => {
    got += d.toString('latin1');
    const h = got.indexOf('\r\n\r\n');
    const m = /content-length:\s*(\d+)/i.exec(got);
    if (!counted && h >= 0 && m && got.length >= h + 4 + Number(m[1])) { counted = true; ok++; finish(); }
  });
  s.on('error', fail);
  s.on('close', fail);
  setImmediate(next);
}
for (let k = 0; k < 32; k++) next();
