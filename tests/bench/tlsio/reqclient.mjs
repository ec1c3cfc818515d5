// Count-bounded keep-alive load for instruction counting: C TLS connections to
// 127.0.0.1:PORT, each sending R sequential GETs (next one after the previous
// response is complete).  Loopback only; exits after C*R responses or 300 s.
//
// node reqclient.mjs --port P [--conns 10] [--reqs 1000]
import tls from 'node:tls';

const a = Object.fromEntries(process.argv.slice(2).reduce((acc, v, i, all) => {
  if (v.startsWith('--')) acc.push([v.slice(2), all[i + 1]]);
  return acc;
}, []));
const PORT = +a.port, CONNS = +(a.conns ?? 10), REQS = +(a.reqs ?? 1000);
setTimeout(() => { console.error('reqclient: hard timeout'); process.exit(3); }, 300000).unref();
const REQ = Buffer.from('GET /api/orders/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tlsio-reqclient\r\nAccept: */*\r\n\r\n');

function runConn() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: PORT, rejectUnauthorized: false,
      minVersion: 'TLSv1.3', ecdhCurve: 'X25519' });
    let left = REQS, buf = Buffer.alloc(0);
    s.setNoDelay(true);
    s.on('secureConnect', () => s.write(REQ));
    s.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const h = buf.indexOf('\r\n\r\n');
        if (h < 0) return;
        const m = /Content-Length:\s*(\d+)/i.exec(buf.subarray(0, h).toString('latin1'));
        const end = h + 4 + (m ? +m[1] : 0);
        if (buf.length < end) return;
        buf = buf.subarray(end);
        if (--left === 0) { s.end(); return resolve(); }
        s.write(REQ);
      }
    });
    s.on('error', reject);
  });
}

const t0 = Date.now();
await Promise.all(Array.from({ length: CONNS }, runConn));
console.log(JSON.stringify({ conns: CONNS, reqs: REQS, total: CONNS * REQS, ms: Date.now() - t0 }));
