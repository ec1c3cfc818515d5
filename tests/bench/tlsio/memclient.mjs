// Idle keep-alive memory probe.  Opens N TLS 1.3 (X25519, ECDSA cert) connections to
// 127.0.0.1:PORT, sends one GET on each, waits for the full response and keeps the
// connection open and idle; reports the server's Δ VmRSS / N.  Loopback only,
// bounded (N connections, one request each, hard timeout).
//
// node memclient.mjs --port P --pid PID [--n 2000] [--conc 50] [--stats FILE] [--settle 1500]
import tls from 'node:tls';
import fs from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => {
  if (v.startsWith('--')) a.push([v.slice(2), all[i + 1]]);
  return a;
}, []));
const PORT = +args.port, PID = +args.pid, N = +(args.n ?? 2000), CONC = +(args.conc ?? 50);
const STATS = args.stats, SETTLE = +(args.settle ?? 1500), LABEL = args.label ?? '';
const STATUS_SIG = args.sig ?? 'SIGUSR1';   // 'none' for servers without a stats dump (nginx)
const HARD_TIMEOUT_MS = 120000;
setTimeout(() => { console.error('memclient: hard timeout'); process.exit(3); }, HARD_TIMEOUT_MS).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REQ = 'GET /api/orders/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tlsio-memclient\r\nAccept: */*\r\n\r\n';

function procStatus(pid) {
  const o = {};
  for (const l of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(VmRSS|VmHWM|RssAnon):\s+(\d+)/.exec(l);
    if (m) o[m[1]] = +m[2];
  }
  return o;
}

async function serverStats() {
  if (!STATS || STATUS_SIG === 'none') return null;
  try { fs.unlinkSync(STATS); } catch {}
  process.kill(PID, STATUS_SIG);
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    try { return JSON.parse(fs.readFileSync(STATS, 'utf8')); } catch {}
  }
  return null;
}

let info = null;
function openOne() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: PORT, rejectUnauthorized: false,
      minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ecdhCurve: 'X25519' });
    let buf = Buffer.alloc(0), done = false;
    s.setNoDelay(true);
    s.on('secureConnect', () => {
      if (!info) {
        const pc = s.getPeerCertificate();
        info = { protocol: s.getProtocol(), cipher: s.getCipher().name,
                 kx: s.getEphemeralKeyInfo(), certCurve: pc.asn1Curve ?? pc.nistCurve ?? null };
      }
      s.write(REQ);
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const h = buf.indexOf('\r\n\r\n');
      if (h < 0 || done) return;
      const m = /Content-Length:\s*(\d+)/i.exec(buf.subarray(0, h).toString());
      if (m && buf.length >= h + 4 + +m[1]) {
        if (!buf.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) return reject(new Error('bad status'));
        done = true; buf = null; resolve(s);
      }
    });
    s.on('error', (e) => { if (!done) reject(e); });
  });
}

async function openMany(n, conc) {
  const socks = [];
  let next = 0;
  async function worker() { while (next < n) { next++; socks.push(await openOne()); } }
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
  return socks;
}

function closeAll(socks) {
  return Promise.all(socks.map((s) => new Promise((r) => { s.once('close', r); s.destroy(); })));
}

// 1. warm-up: lazily initialised library state (providers, DRBG, ticket keys...) is not per-connection.
await closeAll(await openMany(50, 10));
await sleep(SETTLE);
const p0 = procStatus(PID), s0 = await serverStats();
// 2. N idle connections, one request each.
const t0 = Date.now();
const socks = await openMany(N, CONC);
const openMs = Date.now() - t0;
await sleep(SETTLE);
const p1 = procStatus(PID), s1 = await serverStats();
// 3. close and see what is kept.
await closeAll(socks);
await sleep(SETTLE);
const p2 = procStatus(PID), s2 = await serverStats();

const kib = (bytes) => +(bytes / 1024).toFixed(2);
const out = {
  label: LABEL, n: N, conc: CONC, open_ms: openMs, tls: info,
  rss_base_kb: p0.VmRSS, rss_idle_kb: p1.VmRSS, rss_closed_kb: p2.VmRSS, hwm_kb: p1.VmHWM,
  kib_per_conn: kib((p1.VmRSS - p0.VmRSS) * 1024 / N),
  hwm_kib_per_conn: kib((p1.VmHWM - p0.VmRSS) * 1024 / N),
};
if (s0 && s1) {
  const d = (k) => kib((s1[k] - s0[k]) / N);
  Object.assign(out, {
    server_conns: s1.conns, server_reqs: s1.reqs - s0.reqs,
    ssl_kib: d('ssl_live'), ssl_allocs_per_conn: +((s1.ssl_cnt - s0.ssl_cnt) / N).toFixed(1),
    ev_kib: d('ev_live'), app_kib: d('app_live'),
    heap_inuse_kib: d('heap_inuse'),
    ssl_new_bytes: s1.ssl_new_bytes, io_new_bytes: s1.io_new_bytes,
  });
  out.not_in_use_kib = +(out.kib_per_conn - out.heap_inuse_kib).toFixed(2);
  if (s2) Object.assign(out, { closed_heap_inuse_kb: Math.round(s2.heap_inuse / 1024),
    closed_heap_free_kb: Math.round(s2.heap_free / 1024), eof_clean: s2.eof_clean, eof_dirty: s2.eof_dirty,
    errors: s2.errors, ev_error_unexpected_eof: s2.ev_error_unexpected_eof });
  if (s0.sites && s1.sites) {
    const m = new Map(s0.sites.map(([k, v]) => [k, v]));
    out.sites = s1.sites.map(([k, v, c]) => [k, +((v - (m.get(k) ?? 0)) / N).toFixed(1)])
      .filter(([, v]) => Math.abs(v) >= 8).sort((a, b) => b[1] - a[1]);
  }
}
console.log(JSON.stringify(out));
process.exit(0);
