// Opens N HTTP/2 connections (ALPN h2) to 127.0.0.1:PORT, sends one GET on each, reads the
// answer, then holds them idle and prints "HOLDING <ok> <failed>"; exits after HOLD_S seconds
// (hard cap 90 s). The h2 counterpart of idle-conns.js. Usage: node idle-h2.js PORT N HOLD_S
'use strict';
const http2 = require('node:http2');
const [port, n, holdS] = [Number(process.argv[2]), Number(process.argv[3] || 2000), Number(process.argv[4] || 6)];
let ok = 0, failed = 0, done = 0;
const sessions = [];
setTimeout(() => process.exit(0), 90000).unref();
function finish() {
  if (++done < n) return;
  console.log(`HOLDING ${ok} ${failed}`);
  setTimeout(() => { for (const s of sessions) s.destroy(); process.exit(0); }, holdS * 1000);
}
let i = 0;
function next() {
  if (i >= n) return;
  i++;
  const s = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' });
  sessions.push(s);
  let counted = false;
  const fail = () => { if (!counted) { counted = true; failed++; finish(); } setImmediate(next); };
  s.on('error', fail);
  s.on('close', fail);
  const r = s.request({ ':path': '/api/items' });
  r.on('error', fail);
  r.resume();
  r.on('end', () => { if (!counted) { counted = true; ok++; finish(); } setImmediate(next); });
}
for (let k = 0; k < 32; k++) next();
