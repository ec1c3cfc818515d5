// HTTP/2 to clients (docs/security.md "HTTP/2", docs/architecture.md): ALPN, every policy per
// stream with the same answers as over HTTP/1.1, streaming both ways, concurrent streams, the
// downgrade refusals, the abuse limits and GOAWAY on SIGTERM. Clients: node:http2 and a raw
// frame writer (hand-built HPACK literals) for what node:http2 refuses to send.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  startVisor, startUpstream, startRawUpstream, deadPort, https, tlsConnect, minimalYaml, cleanupAll, track, until, SLOW,
  assertSecurityHeaders, MESSAGES, REQUEST_ID, delay,
} from './lib/harness.mjs';
import { hs256 } from './lib/rl-helpers.mjs';

const T = { timeout: 30000 * SLOW };

// ---- clients ----------------------------------------------------------------------------

function h2session(port) {
  const s = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false });
  s.on('error', () => {});
  track('h2 session', async () => s.destroy());
  return s;
}

// One request on a session (a new one when `s` is a port): { status, headers, body, text }.
function h2req(s, { method = 'GET', path: p = '/', headers = {}, body, authority } = {}) {
  if (typeof s === 'number') s = h2session(s);
  return new Promise((resolve, reject) => {
    const hs = { ':method': method, ':path': p, ...headers };
    if (authority) hs[':authority'] = authority;
    const st = s.request(hs, { endStream: body === undefined });
    const chunks = [];
    let head;
    st.on('response', (h) => { head = h; });
    st.on('data', (d) => chunks.push(d));
    st.on('end', () => {
      const b = Buffer.concat(chunks);
      resolve({ status: head && head[':status'], headers: head || {}, body: b, text: b.toString(), rstCode: st.rstCode });
    });
    st.on('error', (e) => (head ? resolve({ status: head[':status'], headers: head, body: Buffer.concat(chunks), error: e, rstCode: st.rstCode }) : reject(Object.assign(e, { rstCode: st.rstCode }))));
    st.on('close', () => { if (!head) resolve({ status: undefined, headers: {}, body: Buffer.alloc(0), rstCode: st.rstCode }); });
    if (body !== undefined) {
      if (typeof body === 'function') body(st);
      else st.end(body);
    }
  });
}

// A raw HTTP/2 connection: frames in, frames out, HPACK as literals without indexing.
const FT = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
const FL = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };
const ERR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 };

function frame(type, flags, id, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}
function hInt(n, prefixBits = 7, first = 0) {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) { out.push((n & 127) | 128); n >>= 7; }
  out.push(n);
  return Buffer.from(out);
}
function lit(name, value) {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0]), hInt(n.length), n, hInt(v.length), v]);
}
const block = (pairs) => Buffer.concat(pairs.map(([n, v]) => lit(n, v)));
const BASE = [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'localhost']];

async function rawH2(port) {
  const sock = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false });
  track('raw h2', async () => sock.destroy());
  await new Promise((res, rej) => { sock.once('secureConnect', res); sock.once('error', rej); });
  assert.equal(sock.alpnProtocol, 'h2');
  const c = { sock, frames: [], buf: Buffer.alloc(0), closed: false };
  sock.on('error', () => {});
  sock.on('close', () => { c.closed = true; });
  sock.on('data', (d) => {
    c.buf = Buffer.concat([c.buf, d]);
    while (c.buf.length >= 9) {
      const len = c.buf.readUIntBE(0, 3);
      if (c.buf.length < 9 + len) break;
      const f = { type: c.buf[3], flags: c.buf[4], id: c.buf.readUInt32BE(5) & 0x7fffffff, payload: c.buf.subarray(9, 9 + len) };
      c.buf = c.buf.subarray(9 + len);
      if (f.type === FT.SETTINGS && !(f.flags & FL.ACK)) sock.write(frame(FT.SETTINGS, FL.ACK, 0));
      c.frames.push(f);
    }
  });
  c.send = (...fs) => { if (!sock.destroyed) sock.write(Buffer.concat(fs)); };
  c.wait = (pred, ms = 5000 * SLOW) => until(() => c.frames.find(pred), ms,
    `a frame (got ${c.frames.map((f) => `type ${f.type} flags ${f.flags} id ${f.id}`).join(', ')}${c.closed ? ', closed' : ''})`);
  c.rst = (id) => c.wait((f) => f.type === FT.RST_STREAM && f.id === id).then((f) => f.payload.readUInt32BE(0));
  c.goaway = () => c.wait((f) => f.type === FT.GOAWAY).then((f) => ({ last: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) }));
  c.headersOn = (id) => c.wait((f) => f.type === FT.HEADERS && f.id === id);
  c.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FT.SETTINGS, 0, 0));
  return c;
}
const req = (id, pairs, flags = FL.END_HEADERS | FL.END_STREAM) => frame(FT.HEADERS, flags, id, block(pairs));

async function metric(v, name) {
  const r = await new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      http.get({ port: v.ports.admin, host: '127.0.0.1', path: '/metrics' }, (res) => {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
  });
  const m = r.split('\n').find((l) => l.startsWith(name + ' '));
  return m ? Number(m.split(' ')[1]) : NaN;
}

// ---- the configuration: one visor with every policy -------------------------------------

const SECRET = 'h2-test-secret-0123456789abcdefghijklmnop';
function policyConf(up, { client = '', http2 = '' } = {}) {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'h2-'));
  track(`h2 dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hs256');
  fs.writeFileSync(file, SECRET);
  return minimalYaml({
    upstream: up.addr,
    listen: 'admin: {{ADMIN}}',
    client: `max_body_size: 20m\n${client}`,
    extra: `workers: 1
cors:
  origins: ["https://app.example.com"]
  on_disallowed: reject
jwt:
  algorithms: [HS256]
  keys:
    - secret_file: ${file}
  claims_to_headers:
    sub: X-User-Id
rate_limits:
  lim: { limit: 2, window: 60s, key: ip }
${http2 ? `http2:\n${http2}` : ''}routes:
  - path: /api/
    auth: required
  - path: /lim/
    auth: off
    rate_limits: [lim]
  - path: /small/
    auth: off
    body: { max_size: 1k }
  - path: /
    auth: off
`,
  });
}

// An upstream: /boom answers a 500 with a stack, /big/N sends N bytes (streamed in 64 KiB
// writes), /slow/MS answers after MS, everything else echoes (method, url, headers, body hash).
async function policyUpstream() {
  return startUpstream((req, res, record) => {
    const hash = crypto.createHash('sha256');
    let n = 0;
    req.on('data', (d) => { hash.update(d); n += d.length; });
    req.on('end', () => {
      const u = req.url.split('?')[0];
      if (u === '/boom') {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        return res.end('TypeError: x is undefined\n    at handler (/app/src/h.js:1:2)\n');
      }
      if (u.startsWith('/big/')) {
        let left = Number(u.slice(5));
        const chunk = Buffer.alloc(65536, 'b');
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': left });
        const pump = () => {
          while (left > 0) {
            const c = chunk.subarray(0, Math.min(left, chunk.length));
            left -= c.length;
            if (!res.write(c)) return res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      const send = () => {
        const body = JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: record.headers, bodyLength: n, bodySha256: hash.digest('hex') });
        res.writeHead(200, { 'Content-Type': 'application/json', 'X-Powered-By': 'Express', 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (u.startsWith('/slow/')) return setTimeout(send, Number(u.slice(6)));
      send();
    });
  });
}

const hget = (hs, n) => hs[n.toLowerCase()];
const upHeader = (j, n) => j.headers.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v);

// ---- ALPN --------------------------------------------------------------------------------

describe('h2: ALPN', () => {
  afterEach(cleanupAll);

  it('offers h2 before http/1.1; http2.enabled: false offers http/1.1 only; no ALPN stays HTTP/1.1', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const a = await tlsConnect(v.ports.https, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(a.alpnProtocol, 'h2');
    a.destroy();
    const b = await tlsConnect(v.ports.https, { ALPNProtocols: ['http/1.1', 'h2'] });
    assert.equal(b.alpnProtocol, 'h2', "the server's preference");
    b.destroy();
    assert.equal((await https({ port: v.ports.https })).status, 200, 'a client without ALPN gets HTTP/1.1');
    const v2 = await startVisor(minimalYaml({ upstream: up.addr, extra: 'http2:\n  enabled: false\n' }));
    const c = await tlsConnect(v2.ports.https, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(c.alpnProtocol, 'http/1.1');
    c.destroy();
  });

  it('prior-knowledge h2c on the plain listener and h2 preface over TLS without ALPN are refused', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}' }));
    const { rawTcp, rawTls } = await import('./lib/harness.mjs');
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    const a = await rawTcp(v.ports.http, preface);
    assert.match(a.text, /^HTTP\/1\.1 400 /);
    const b = await rawTls(v.ports.https, preface);
    assert.match(b.text, /^HTTP\/1\.1 400 /);
    assert.equal(up.requests.length, 0);
  });
});

// ---- the same answers as over HTTP/1.1 ---------------------------------------------------

describe('h2: policies per stream', () => {
  let up;
  let v;
  let s;
  before(async () => {
    up = await policyUpstream();
    v = await startVisor(policyConf(up));
    s = h2session(v.ports.https);
  });
  after(cleanupAll);

  it('200 proxied: the upstream gets HTTP/1.1 with Host from :authority, identity headers, no pseudo-headers; the answer has the security headers', T, async () => {
    const r = await h2req(s, { path: '/x?q=1', headers: { 'x-custom': 'a', cookie: ['a=1', 'b=2'] } });
    assert.equal(r.status, 200);
    const j = JSON.parse(r.text);
    assert.equal(j.httpVersion, '1.1');
    assert.equal(j.url, '/x?q=1');
    assert.deepEqual(upHeader(j, 'host'), [`localhost:${v.ports.https}`]);
    assert.deepEqual(upHeader(j, 'cookie'), ['a=1; b=2'], 'cookie crumbs joined (RFC 9113 §8.2.3)');
    assert.deepEqual(upHeader(j, 'x-custom'), ['a']);
    assert.deepEqual(upHeader(j, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(upHeader(j, 'x-forwarded-for'), ['127.0.0.1']);
    assert.ok(!j.headers.some(([k]) => k.startsWith(':')));
    assert.match(hget(r.headers, 'x-request-id'), REQUEST_ID);
    assert.equal(upHeader(j, 'x-request-id')[0], hget(r.headers, 'x-request-id'));
    assert.equal(hget(r.headers, 'x-powered-by'), undefined, 'headers policy: X-Powered-By removed');
    assert.equal(hget(r.headers, 'strict-transport-security'), 'max-age=31536000; includeSubDomains');
    assert.equal(hget(r.headers, 'x-content-type-options'), 'nosniff');
    assert.equal(hget(r.headers, 'content-length'), String(r.body.length));
    // the h1 answer to the same request has the same header names (but framing)
    const h1 = await https({ port: v.ports.https, path: '/x?q=1', headers: { 'x-custom': 'a' } });
    const names = (hs) => Object.keys(hs).filter((k) => !k.startsWith(':') && !['date', 'x-request-id', 'connection', 'keep-alive'].includes(k)).sort();
    assert.deepEqual(names(r.headers), names(h1.headers));
  });

  it('HEAD: Content-Length kept, no body', T, async () => {
    const r = await h2req(s, { method: 'HEAD', path: '/h' });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.ok(Number(hget(r.headers, 'content-length')) > 0);
  });

  it('CORS preflight and actual request', T, async () => {
    const p = await h2req(s, { method: 'OPTIONS', path: '/x', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' } });
    assert.equal(p.status, 204);
    assert.equal(hget(p.headers, 'access-control-allow-origin'), 'https://app.example.com');
    assert.match(hget(p.headers, 'access-control-allow-methods'), /PUT/);
    const a = await h2req(s, { path: '/x', headers: { origin: 'https://app.example.com' } });
    assert.equal(a.status, 200);
    assert.equal(hget(a.headers, 'access-control-allow-origin'), 'https://app.example.com');
    const bad = await h2req(s, { path: '/x', headers: { origin: 'https://evil.example.net' } });
    assert.equal(bad.status, 403);
    assert.deepEqual(JSON.parse(bad.text), { error: MESSAGES[403], requestId: hget(bad.headers, 'x-request-id') });
  });

  it('JWT: 401 without a token, 200 with one and its claims as headers upstream', T, async () => {
    const n = up.requests.length;
    const a = await h2req(s, { path: '/api/me' });
    assert.equal(a.status, 401);
    assert.equal(hget(a.headers, 'www-authenticate'), 'Bearer realm="api"');
    assert.equal(up.requests.length, n);
    const b = await h2req(s, { path: '/api/me', headers: { authorization: `Bearer ${hs256(SECRET, { sub: 'alice' })}`, 'x-user-id': 'mallory' } });
    assert.equal(b.status, 200);
    assert.deepEqual(upHeader(JSON.parse(b.text), 'x-user-id'), ['alice']);
  });

  it('rate limit: a stream counts as a request; 429 with RateLimit headers', T, async () => {
    const r1 = await h2req(s, { path: '/lim/a' });
    const r2 = await h2req(s, { path: '/lim/a' });
    const r3 = await h2req(s, { path: '/lim/a' });
    assert.deepEqual([r1.status, r2.status, r3.status], [200, 200, 429]);
    assert.equal(hget(r3.headers, 'ratelimit-limit'), '2');
    assert.equal(hget(r3.headers, 'ratelimit-remaining'), '0');
    assert.ok(Number(hget(r3.headers, 'retry-after')) > 0);
  });

  it('body limit: 413 by Content-Length and by streamed size; the connection goes on', T, async () => {
    const n = up.requests.length;
    const J = { 'content-type': 'application/json' };
    const a = await h2req(s, { method: 'POST', path: '/small/x', headers: { ...J, 'content-length': '2000' }, body: Buffer.alloc(2000, 'a') });
    assert.equal(a.status, 413);
    const b = await h2req(s, { method: 'POST', path: '/small/x', headers: J, body: (st) => { st.write(Buffer.alloc(600, 'a')); setTimeout(() => st.end(Buffer.alloc(600, 'a')), 50); } });
    assert.ok(b.status === 413 || b.rstCode !== undefined, `413 or a reset, got ${b.status}`);
    if (b.status !== undefined) assert.equal(b.status, 413);
    const c = await h2req(s, { method: 'POST', path: '/small/x', headers: J, body: JSON.stringify({ a: 'a'.repeat(480) }) });
    assert.equal(c.status, 200);
    assert.equal(JSON.parse(c.text).bodyLength, 488);
    assert.ok(up.requests.length <= n + 2);
  });

  it('a 500 with a stack trace is scrubbed', T, async () => {
    const r = await h2req(s, { path: '/boom' });
    assert.equal(r.status, 500);
    assert.deepEqual(JSON.parse(r.text), { error: MESSAGES[500], requestId: hget(r.headers, 'x-request-id') });
  });

  it('TRACE: 405 with Allow, as over HTTP/1.1', T, async () => {
    const r = await h2req(s, { method: 'TRACE', path: '/x' });
    assert.equal(r.status, 405);
    assert.match(hget(r.headers, 'allow'), /GET/);
  });

  it('large upload (8 MiB, no Content-Length) and download (16 MiB) stream through', T, async () => {
    const big = crypto.randomBytes(8 << 20);
    const r = await h2req(s, { method: 'PUT', path: '/up', body: (st) => {
      let off = 0;
      const pump = () => {
        while (off < big.length) {
          const c = big.subarray(off, off + 100000);
          off += c.length;
          if (!st.write(c)) return st.once('drain', pump);
        }
        st.end();
      };
      pump();
    } });
    assert.equal(r.status, 200);
    const j = JSON.parse(r.text);
    assert.equal(j.bodyLength, big.length);
    assert.equal(j.bodySha256, crypto.createHash('sha256').update(big).digest('hex'));
    assert.deepEqual(upHeader(j, 'transfer-encoding'), ['chunked'], 'length unknown: re-chunked upstream');
    const d = await h2req(s, { path: `/big/${16 << 20}` });
    assert.equal(d.status, 200);
    assert.equal(d.body.length, 16 << 20);
    assert.equal(hget(d.headers, 'content-length'), String(16 << 20));
  });

  it('20 concurrent streams on one connection, each answered and logged', T, async () => {
    const before = v.stdout.length;
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h2req(s, { path: `/slow/${(i % 5) * 20}?i=${i}` })));
    for (let i = 0; i < 20; i++) {
      assert.equal(rs[i].status, 200);
      assert.equal(JSON.parse(rs[i].text).url, `/slow/${(i % 5) * 20}?i=${i}`);
    }
    await until(() => v.stdout.slice(before).filter((l) => /"type":"access".*"path":"\/slow\//.test(l)).length >= 20, 5000 * SLOW);
  });

  it('metrics count h2 connections and streams', T, async () => {
    assert.ok(await metric(v, 'visor_http2_connections_total') >= 1);
    assert.ok(await metric(v, 'visor_http2_streams_total') >= 20);
  });
});

// ---- raw frames: downgrade refusals -----------------------------------------------------

// :status of a response HEADERS block as nghttp2 encodes it (static index, or a literal whose
// value may be Huffman-coded: digits only).
const HUFF_DIGITS = { '00000': '0', '00001': '1', '00010': '2', '011001': '3', '011010': '4', '011011': '5', '011100': '6', '011101': '7', '011110': '8', '011111': '9' };
function statusOf(f) {
  const p = f.payload;
  const b = p[0];
  const STATIC = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
  if (b & 0x80) return STATIC[b & 0x7f];
  const len = p[1] & 0x7f;
  const v = p.subarray(2, 2 + len);
  if (!(p[1] & 0x80)) return Number(v.toString('latin1'));
  let bits = '';
  for (const x of v) bits += x.toString(2).padStart(8, '0');
  let out = '';
  let cur = '';
  for (const c of bits) {
    cur += c;
    if (HUFF_DIGITS[cur]) { out += HUFF_DIGITS[cur]; cur = ''; }
    if (out.length === 3) break;
  }
  return Number(out);
}

// Refused: a RST_STREAM PROTOCOL_ERROR (nghttp2 or visor) or a 400 answer.
async function refused(c, id) {
  const f = await c.wait((x) => x.id === id && (x.type === FT.RST_STREAM || x.type === FT.HEADERS));
  if (f.type === FT.RST_STREAM) return { rst: f.payload.readUInt32BE(0) };
  return { status: statusOf(f) };
}

describe('h2: downgrade refusals', () => {
  let up;
  let v;
  before(async () => {
    up = await policyUpstream();
    v = await startVisor(policyConf(up));
  });
  after(cleanupAll);

  const CASES = [
    ['upper-case name', [...BASE, ['X-Upper', 'a']], 'rst'],
    ['Connection', [...BASE, ['connection', 'close']], 'rst'],
    ['Keep-Alive', [...BASE, ['keep-alive', '5']], 'rst'],
    ['Transfer-Encoding', [...BASE, ['transfer-encoding', 'chunked']], 'rst'],
    ['Upgrade', [...BASE, ['upgrade', 'websocket']], 'rst'],
    ['Proxy-Connection', [...BASE, ['proxy-connection', 'keep-alive']], 'rst'],
    ['TE other than trailers', [...BASE, ['te', 'gzip']], 'rst'],
    ['CR/LF in a value', [...BASE, ['x-a', 'a\r\nx-injected: 1']], 'rst'],
    ['LF in a value', [...BASE, ['x-a', 'a\nb']], 'rst'],
    ['NUL in a value', [...BASE, ['x-a', 'a\0b']], 'rst'],
    ['leading space in a value', [...BASE, ['x-a', ' a']], 'rst'],
    [': in a name', [...BASE, ['x:a', 'b']], 'rst'],
    ['space in a name', [...BASE, ['x a', 'b']], 'rst'],
    ['CR in a name', [...BASE, ['x\ra', 'b']], 'rst'],
    ['pseudo-header after a regular one', [[':method', 'GET'], ['x-a', '1'], [':scheme', 'https'], [':path', '/'], [':authority', 'localhost']], 'rst'],
    ['repeated :path', [...BASE, [':path', '/other']], 'rst'],
    ['unknown pseudo-header', [...BASE, [':foo', 'x']], 'rst'],
    ['response pseudo-header in a request', [...BASE, [':status', '200']], 'rst'],
    ['missing :path', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost']], 'rst'],
    ['empty :path', [[':method', 'GET'], [':scheme', 'https'], [':path', ''], [':authority', 'localhost']], 'rst'],
    ['space in :path', [[':method', 'GET'], [':scheme', 'https'], [':path', '/a b'], [':authority', 'localhost']], 'either'],
    ['# in :path', [[':method', 'GET'], [':scheme', 'https'], [':path', '/a#b'], [':authority', 'localhost']], 'either'],
    ['userinfo in :authority', [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'user@localhost']], 'either'],
    ['lower-case method', [[':method', 'get'], [':scheme', 'https'], [':path', '/'], [':authority', 'localhost']], 'either'],
    ['Content-Length not a number', [...BASE, ['content-length', 'abc']], 'rst'],
    ['two Content-Length', [...BASE, ['content-length', '0'], ['content-length', '1']], 'rst'],
    [':path not starting with /', [[':method', 'GET'], [':scheme', 'https'], [':path', 'x/y'], [':authority', 'localhost']], 'either'],
    ['absolute-form :path', [[':method', 'GET'], [':scheme', 'https'], [':path', 'https://localhost/'], [':authority', 'localhost']], 'either'],
    [':authority and Host disagree', [...BASE, ['host', 'evil.example']], 400],
    ['two Host headers', [...BASE, ['host', 'localhost'], ['host', 'localhost']], 'either'],
    [':scheme http', [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'localhost']], 400],
    ['CONNECT', [[':method', 'CONNECT'], [':authority', 'localhost:443']], 'either'],
    ['unknown method', [[':method', 'BREW'], [':scheme', 'https'], [':path', '/'], [':authority', 'localhost']], 400],
    ['path escaping the root', [[':method', 'GET'], [':scheme', 'https'], [':path', '/../etc/passwd'], [':authority', 'localhost']], 400],
  ];

  it('each refused on its stream, never forwarded; the connection serves the next stream', T, async () => {
    const c = await rawH2(v.ports.https);
    let id = 1;
    const n = up.requests.length;
    for (const [name, pairs, want] of CASES) {
      c.send(req(id, pairs));
      const got = await refused(c, id);
      if (want === 'rst') assert.deepEqual(got, { rst: ERR.PROTOCOL_ERROR }, name);
      else if (want === 400) assert.deepEqual(got, { status: 400 }, name);
      else assert.ok(got.rst === ERR.PROTOCOL_ERROR || got.status === 400, `${name}: ${JSON.stringify(got)}`);
      id += 2;
      c.send(req(id, BASE));
      const ok = await c.headersOn(id);
      assert.equal(statusOf(ok), 200, `after ${name}`);
      id += 2;
    }
    assert.equal(up.requests.length, n + CASES.length, 'only the good streams reached the upstream');
    assert.ok(up.requests.every((r) => !/injected/.test(JSON.stringify(r.headers))));
    assert.ok(await metric(v, 'visor_http2_refused_total{reason="malformed"}') >= 15);
  });

  it('TE: trailers is allowed and not forwarded', T, async () => {
    const r = await h2req(v.ports.https, { path: '/te', headers: { te: 'trailers' } });
    assert.equal(r.status, 200);
    assert.deepEqual(upHeader(JSON.parse(r.text), 'te'), []);
  });

  it('Content-Length that disagrees with the DATA received: stream reset, nothing complete reaches the upstream', T, async () => {
    const c = await rawH2(v.ports.https);
    const post = [[':method', 'POST'], [':scheme', 'https'], [':path', '/cl'], [':authority', 'localhost'], ['content-type', 'application/json']];
    // fewer bytes than announced
    c.send(req(1, [...post, ['content-length', '10']], FL.END_HEADERS), frame(FT.DATA, FL.END_STREAM, 1, Buffer.from('12345')));
    assert.equal(await c.rst(1), ERR.PROTOCOL_ERROR);
    // more bytes than announced
    c.send(req(3, [...post, ['content-length', '3']], FL.END_HEADERS), frame(FT.DATA, FL.END_STREAM, 3, Buffer.from('12345')));
    assert.equal(await c.rst(3), ERR.PROTOCOL_ERROR);
    // announced, then END_STREAM on the HEADERS
    c.send(req(5, [...post, ['content-length', '3']]));
    assert.equal(await c.rst(5), ERR.PROTOCOL_ERROR);
    c.send(req(7, BASE));
    assert.equal(statusOf(await c.headersOn(7)), 200);
    await delay(100);
    assert.ok(up.requests.filter((r) => r.url === '/cl').every((r) => !r.complete || r.bodyLength !== 5), 'no disagreeing body was forwarded whole');
  });
});

// ---- abuse limits -------------------------------------------------------------------------

describe('h2: abuse limits', () => {
  afterEach(cleanupAll);

  async function afterFault(v) {
    // the next connection works
    const r = await h2req(v.ports.https, { path: '/after' });
    assert.equal(r.status, 200);
  }

  it('rapid reset (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM past http2.max_resets', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { http2: '  max_resets: 50\n' }));
    const c = await rawH2(v.ports.https);
    const burst = [];
    for (let i = 0, id = 1; i < 200; i++, id += 2) burst.push(req(id, [[':method', 'GET'], [':scheme', 'https'], [':path', '/slow/500'], [':authority', 'localhost']]), frame(FT.RST_STREAM, 0, id, Buffer.from([0, 0, 0, ERR.CANCEL])));
    c.send(...burst);
    const g = await c.goaway();
    assert.equal(g.code, ERR.ENHANCE_YOUR_CALM);
    await until(() => c.closed, 5000 * SLOW, 'the connection closed');
    assert.equal(await metric(v, 'visor_http2_refused_total{reason="rapid_reset"}'), 1);
    await v.waitForLog((j) => j && /rapid reset/.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
    await afterFault(v);
  });

  it('CONTINUATION flood: GOAWAY after too many frames in one header block (nghttp2\'s own bound, or visor\'s)', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const c = await rawH2(v.ports.https);
    const fs2 = [frame(FT.HEADERS, 0, 1, block(BASE))];
    for (let i = 0; i < 100; i++) fs2.push(frame(FT.CONTINUATION, 0, 1, lit(`x-c${i}`, 'v')));
    c.send(...fs2);
    const g = await c.goaway();
    assert.equal(g.code, ERR.ENHANCE_YOUR_CALM);
    await until(() => c.closed, 5000 * SLOW, 'the connection closed');
    assert.equal(up.requests.length, 0);
    assert.equal(await metric(v, 'visor_http2_refused_total{reason="header_block"}'), 1);
    await v.waitForLog((j) => j && /GOAWAY/.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
    await afterFault(v);
  });

  it('empty CONTINUATION frames: GOAWAY', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { http2: '  max_control_frames: 20\n' }));
    const c = await rawH2(v.ports.https);
    const fs2 = [frame(FT.HEADERS, 0, 1, block(BASE))];
    for (let i = 0; i < 25; i++) fs2.push(frame(FT.CONTINUATION, 0, 1));
    c.send(...fs2);
    assert.equal((await c.goaway()).code, ERR.ENHANCE_YOUR_CALM);
    await afterFault(v);
  });

  it('oversized head: 431 on the stream (client.max_header_size), the connection goes on', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const c = await rawH2(v.ports.https);
    const big = [];
    for (let i = 0; i < 20; i++) big.push([`x-big${i}`, 'a'.repeat(1000)]);
    // 20 KB of headers in two CONTINUATIONs (under the wire bound of twice the limit)
    const b = block([...BASE, ...big]);
    c.send(frame(FT.HEADERS, FL.END_STREAM, 1, b.subarray(0, 10000)), frame(FT.CONTINUATION, 0, 1, b.subarray(10000, 16000)), frame(FT.CONTINUATION, FL.END_HEADERS, 1, b.subarray(16000)));
    assert.equal(statusOf(await c.headersOn(1)), 431);
    c.send(req(3, BASE));
    assert.equal(statusOf(await c.headersOn(3)), 200);
    assert.equal(up.requests.length, 1);
  });

  it('HPACK bomb: a small block that decodes to megabytes gets GOAWAY', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const c = await rawH2(v.ports.https);
    // one 4000-byte entry into the dynamic table, then referenced 500 times (2 MB decoded)
    const n = Buffer.from('x-bomb');
    const val = Buffer.alloc(4000, 'b');
    const add = Buffer.concat([Buffer.from([0x40]), hInt(n.length), n, hInt(val.length), val]);
    const refs = Buffer.alloc(500, 0x80 | 62);
    c.send(frame(FT.HEADERS, FL.END_HEADERS | FL.END_STREAM, 1, Buffer.concat([block(BASE), add, refs])));
    assert.equal((await c.goaway()).code, ERR.ENHANCE_YOUR_CALM);
    assert.equal(up.requests.length, 0);
    await afterFault(v);
  });

  it('PING flood and SETTINGS flood: GOAWAY past http2.max_control_frames', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { http2: '  max_control_frames: 100\n' }));
    for (const f of [frame(FT.PING, 0, 0, Buffer.alloc(8)), frame(FT.SETTINGS, 0, 0), frame(FT.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16]))]) {
      const c = await rawH2(v.ports.https);
      c.send(...Array.from({ length: 150 }, () => f));
      assert.equal((await c.goaway()).code, ERR.ENHANCE_YOUR_CALM);
      await until(() => c.closed, 5000 * SLOW, 'the connection closed');
    }
    assert.equal(await metric(v, 'visor_http2_refused_total{reason="flood"}'), 3);
    await afterFault(v);
  });

  it('streams over http2.max_concurrent_streams are refused (REFUSED_STREAM); the others complete', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { http2: '  max_concurrent_streams: 3\n' }));
    const slow = [[':method', 'GET'], [':scheme', 'https'], [':path', '/slow/300'], [':authority', 'localhost']];
    // before the client acknowledged the limit: the extra stream is refused, the others go on
    const c = await rawH2(v.ports.https);
    c.send(req(1, slow), req(3, slow), req(5, slow), req(7, slow));
    assert.equal(await c.rst(7), ERR.REFUSED_STREAM);
    for (const id of [1, 3, 5]) assert.equal(statusOf(await c.headersOn(id)), 200);
    assert.equal(await metric(v, 'visor_http2_refused_total{reason="refused_stream"}'), 1);
    // after it acknowledged the limit: nghttp2 makes it a connection error
    const d = await rawH2(v.ports.https);
    await d.wait((f) => f.type === FT.SETTINGS && (f.flags & FL.ACK));
    await delay(50);
    d.send(req(1, slow), req(3, slow), req(5, slow), req(7, slow));
    assert.equal((await d.goaway()).code, ERR.PROTOCOL_ERROR);
    await until(() => d.closed, 5000 * SLOW, 'the connection closed');
    await afterFault(v);
  });

  it('a client that keeps its window shut: the stream is reset after client.idle_timeout', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { client: 'idle_timeout: 1s' }));
    const c = await rawH2(v.ports.https);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: visor may send no DATA
    const set = Buffer.alloc(6);
    set.writeUInt16BE(4, 0);
    set.writeUInt32BE(0, 2);
    c.send(frame(FT.SETTINGS, 0, 0, set));
    c.send(req(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/big/300000'], [':authority', 'localhost']]));
    assert.equal(statusOf(await c.headersOn(1)), 200);
    assert.equal(await c.rst(1), ERR.CANCEL);
    assert.ok(await metric(v, 'visor_http2_refused_total{reason="timeout"}') >= 1);
    await afterFault(v);
  });

  it('a header block that never ends: reset after client.header_timeout; an idle connection: GOAWAY and close after client.idle_timeout', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up, { client: 'header_timeout: 1s\nidle_timeout: 2s' }));
    const c = await rawH2(v.ports.https);
    // no frame of ours may fall inside the header block: the SETTINGS exchange first
    await c.wait((f) => f.type === FT.SETTINGS && (f.flags & FL.ACK));
    await c.wait((f) => f.type === FT.SETTINGS && !(f.flags & FL.ACK));
    await delay(50);
    c.send(frame(FT.HEADERS, 0, 1, block(BASE)));
    const t0 = Date.now();
    await c.wait((f) => (f.type === FT.RST_STREAM && f.id === 1) || f.type === FT.GOAWAY);
    assert.ok(Date.now() - t0 >= 800, 'not before header_timeout');
    const d = await rawH2(v.ports.https);
    const t1 = Date.now();
    const g = await d.goaway();
    assert.equal(g.code, ERR.NO_ERROR);
    await until(() => d.closed, 5000 * SLOW, 'the idle connection closed');
    assert.ok(Date.now() - t1 >= 1500);
    await afterFault(v);
  });
});

// ---- shutdown -----------------------------------------------------------------------------

describe('h2: SIGTERM', () => {
  afterEach(cleanupAll);

  it('GOAWAY at once; the stream in flight completes; then visor exits', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const s = h2session(v.ports.https);
    let goaway = null;
    s.on('goaway', (code) => { goaway = code; });
    assert.equal((await h2req(s, { path: '/warm' })).status, 200);
    const p = h2req(s, { path: '/slow/800' });
    await until(() => up.requests.some((r) => r.url === '/slow/800'), 5000 * SLOW);
    v.terminate('SIGTERM');
    await until(() => goaway !== null, 5000 * SLOW, 'GOAWAY');
    assert.equal(goaway, 0);
    const r = await p;
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).url, '/slow/800');
    assert.equal(await v.waitExit(), 0);
  });

  it('SIGHUP: GOAWAY, the stream in flight completes, a new connection gets the new generation', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const s = h2session(v.ports.https);
    let goaway = null;
    s.on('goaway', (code) => { goaway = code; });
    assert.equal((await h2req(s, { path: '/warm' })).status, 200);
    const p = h2req(s, { path: '/slow/800' });
    await until(() => up.requests.some((r) => r.url === '/slow/800'), 5000 * SLOW);
    process.kill(v.pid, 'SIGHUP');
    await until(() => goaway !== null, 5000 * SLOW, 'GOAWAY');
    assert.equal(goaway, 0);
    assert.equal((await p).status, 200);
    await v.waitForLog((j) => j && /configuration reloaded/.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
    assert.equal((await h2req(v.ports.https, { path: '/after' })).status, 200);
  });
});

// ---- other clients and paths --------------------------------------------------------------

describe('h2: curl, 100-continue, a client that cancels', () => {
  afterEach(cleanupAll);

  it('curl --http2 gets HTTP/2 and the same answer', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const { stdout } = await promisify(execFile)('curl', ['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
      '--resolve', `localhost:${v.ports.https}:127.0.0.1`, `https://localhost:${v.ports.https}/c`]);
    assert.equal(stdout, '2 200');
  });

  it('Expect: 100-continue gets a 100 over the stream, then the answer', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const s = h2session(v.ports.https);
    const r = await new Promise((resolve, reject) => {
      const st = s.request({ ':method': 'POST', ':path': '/e', 'content-type': 'application/json', expect: '100-continue' }, { endStream: false });
      let cont = false;
      const chunks = [];
      st.on('continue', () => { cont = true; st.end('{"a":1}'); });
      st.on('response', (h) => { st.on('data', (d) => chunks.push(d)); st.on('end', () => resolve({ cont, status: h[':status'], text: Buffer.concat(chunks).toString() })); });
      st.on('error', reject);
    });
    assert.equal(r.cont, true);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).bodyLength, 7);
    assert.deepEqual(upHeader(JSON.parse(r.text), 'expect'), []);
  });

  it('a stream the client cancels while the upstream works: logged 499, the connection and the next stream go on', T, async () => {
    const up = await policyUpstream();
    const v = await startVisor(policyConf(up));
    const s = h2session(v.ports.https);
    const st = s.request({ ':path': '/slow/1000' });
    st.on('error', () => {});
    await until(() => up.requests.some((r) => r.url === '/slow/1000'), 5000 * SLOW);
    st.close(http2.constants.NGHTTP2_CANCEL);
    await until(() => v.accessLogs().some((j) => j.path === '/slow/1000' && j.status === 499), 5000 * SLOW, 'a 499 line');
    assert.equal((await h2req(s, { path: '/next' })).status, 200);
  });
});

// ---- upstream faults ---------------------------------------------------------------------

describe('h2: upstream faults', () => {
  afterEach(cleanupAll);

  it('an upstream that closes mid-body: the stream is reset, the next stream on the connection works', T, async () => {
    const up = await startRawUpstream(async (sock, ctx) => {
      const head = await ctx.head();
      if (/^GET \/cut /.test(head)) sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
      else sock.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const s = h2session(v.ports.https);
    const r = await h2req(s, { path: '/cut' });
    assert.equal(r.status, 200, 'the head had left');
    assert.equal(r.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    assert.ok(r.body.length < 100);
    const n = await h2req(s, { path: '/next' });
    assert.equal(n.status, 200);
    assert.equal(n.text, 'ok');
  });

  it('no upstream: 502 with the generic body on the stream', T, async () => {
    const v = await startVisor(minimalYaml({ upstream: `127.0.0.1:${await deadPort()}` }));
    const r = await h2req(v.ports.https, { path: '/x' });
    assert.equal(r.status, 502);
    assert.deepEqual(JSON.parse(r.text), { error: MESSAGES[502], requestId: hget(r.headers, 'x-request-id') });
  });
});
