// Core proxying (docs/security.md, "Identity the app can trust"; docs/headers.md): security headers and
// HSTS on every HTTPS answer, forwarding headers, hop-by-hop stripping, the plain listener,
// the access log, the admin listener and TLS.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  startVisor, startUpstream, https, http, rawTls, tlsConnect, minimalYaml, assertEdge,
  assertSecurityHeaders, assertOne, cleanupAll, getCerts, ALT_NAME, HSTS_DEFAULT, REQUEST_ID, SLOW,
  delay, until,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

// An upstream answer with the headers visor must remove or replace.
function noisyUpstream(extraHeaders = {}) {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'X-Powered-By': 'Express',
        Server: 'nginx/1.25.0',
        'X-App': 'kept',
        ...extraHeaders,
      });
      res.end('{"ok":true}');
    });
  });
}

describe('proxying and answer headers', () => {
  afterEach(cleanupAll);

  it('forwards a GET and returns the upstream body with HSTS, the helmet headers and a request id', T, async () => {
    const up = await noisyUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https, path: '/hello?x=1&y=%20z' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"ok":true}');
    assertOne(r, 'Content-Type', 'application/json');
    assertOne(r, 'X-App', 'kept');
    assert.deepEqual(r.all('X-Powered-By'), []);
    assert.deepEqual(r.all('Server'), []);
    assertSecurityHeaders(r);
    const ids = r.all('X-Request-Id');
    assert.equal(ids.length, 1);
    assert.match(ids[0], REQUEST_ID);
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0].method, 'GET');
    assert.equal(up.requests[0].url, '/hello?x=1&y=%20z');
    assert.deepEqual(up.requests[0].headerAll('X-Request-Id'), ids);
  });

  it('replaces the upstream copies of security headers with exactly one value each', T, async () => {
    const up = await noisyUpstream({
      'Strict-Transport-Security': 'max-age=5',
      'X-Frame-Options': 'DENY',
      'X-Content-Type-Options': 'whatever',
      'Content-Security-Policy': 'default-src *',
      'Referrer-Policy': 'unsafe-url',
      'X-XSS-Protection': '1; mode=block',
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https, path: '/' });
    assert.equal(r.status, 200);
    assertSecurityHeaders(r);
  });

  it('merges headers: key by key; "" leaves the header to the upstream', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      const h = { 'Content-Type': 'text/plain' };
      if (req.url === '/with') {
        h['Referrer-Policy'] = 'origin';
        h['X-Frame-Options'] = 'SAMEORIGIN';
      }
      res.writeHead(200, h);
      res.end('x');
    });
    const v = await startVisor(minimalYaml({
      upstream: up.addr,
      extra: `
        headers:
          X-Frame-Options: DENY
          Referrer-Policy: ""
          Content-Security-Policy: "default-src 'none'"
      `,
    }));
    const overrides = { 'X-Frame-Options': 'DENY', 'Referrer-Policy': null, 'Content-Security-Policy': "default-src 'none'" };
    const a = await https({ port: v.ports.https, path: '/with' });
    assert.equal(a.status, 200);
    assertSecurityHeaders(a, { overrides });
    assert.deepEqual(a.all('Referrer-Policy'), ['origin']);
    const b = await https({ port: v.ports.https, path: '/without' });
    assert.equal(b.status, 200);
    assertSecurityHeaders(b, { overrides });
    assert.deepEqual(b.all('Referrer-Policy'), []);
  });

  it('hsts: preload appends "; preload"', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'hsts:\n  preload: true\n' }));
    const r = await https({ port: v.ports.https });
    assert.equal(r.status, 200);
    assertOne(r, 'Strict-Transport-Security', `${HSTS_DEFAULT}; preload`);
  });

  it('hsts: max_age and include_subdomains: false', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'hsts:\n  max_age: 600\n  include_subdomains: false\n' }));
    const r = await https({ port: v.ports.https });
    assert.equal(r.status, 200);
    assertOne(r, 'Strict-Transport-Security', 'max-age=600');
  });

  it('remove_headers, when given, replaces the default list', T, async () => {
    const up = await noisyUpstream({ 'X-Internal-Host': 'db-7.internal' });
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'remove_headers: [X-Internal-Host]\n' }));
    const r = await https({ port: v.ports.https });
    assert.equal(r.status, 200);
    assert.deepEqual(r.all('X-Internal-Host'), []);
    assert.deepEqual(r.all('X-Powered-By'), ['Express']);
    assert.deepEqual(r.all('Server'), ['nginx/1.25.0']);
  });
});

describe('forwarded request headers', () => {
  afterEach(cleanupAll);

  it('from an untrusted peer: client copies of X-Forwarded-*, X-Real-IP and X-Request-Id are replaced', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({
      port: v.ports.https,
      path: '/fwd',
      headers: {
        Host: 'api.example.com',
        'X-Forwarded-For': '1.2.3.4, 5.6.7.8',
        'X-Real-IP': '6.6.6.6',
        'X-Forwarded-Proto': 'http',
        'X-Forwarded-Host': 'evil.example',
        'X-Request-Id': 'ffffffffffffffffffffffffffffffff',
      },
    });
    assert.equal(r.status, 200);
    const id = r.get('X-Request-Id');
    assert.match(id, REQUEST_ID);
    assert.notEqual(id, 'ffffffffffffffffffffffffffffffff');
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Host'), ['api.example.com']);
    assert.deepEqual(u.headerAll('X-Forwarded-For'), ['127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Real-IP'), ['127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Forwarded-Proto'), ['https']);
    assert.deepEqual(u.headerAll('X-Forwarded-Host'), ['api.example.com']);
    assert.deepEqual(u.headerAll('X-Request-Id'), [id]);
    const log = await v.accessLogFor(id);
    assert.equal(log.client_ip, '127.0.0.1');
  });

  it('without client copies: the same headers are added, and Host keeps its port', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https, path: '/plain' });
    assert.equal(r.status, 200);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Host'), [`localhost:${v.ports.https}`]);
    assert.deepEqual(u.headerAll('X-Forwarded-For'), ['127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Real-IP'), ['127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Forwarded-Proto'), ['https']);
    assert.deepEqual(u.headerAll('X-Forwarded-Host'), [`localhost:${v.ports.https}`]);
    assert.deepEqual(u.headerAll('X-Request-Id'), [r.get('X-Request-Id')]);
  });

  it('each request gets a new id', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const ids = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await https({ port: v.ports.https });
      assert.match(r.get('X-Request-Id'), REQUEST_ID);
      ids.add(r.get('X-Request-Id'));
    }
    assert.equal(ids.size, 5);
  });

  it('from a trusted proxy: the chain is extended and X-Real-IP is the right-most untrusted entry', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'trusted_proxies: [127.0.0.1/32]' }));
    const r = await https({
      port: v.ports.https,
      path: '/t',
      headers: { 'X-Forwarded-For': '203.0.113.7, 198.51.100.2' },
    });
    assert.equal(r.status, 200);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('X-Forwarded-For'), ['203.0.113.7, 198.51.100.2, 127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Real-IP'), ['198.51.100.2']);
    const log = await v.accessLogFor(r.get('X-Request-Id'));
    assert.equal(log.client_ip, '198.51.100.2');
  });

  it('from a trusted proxy: trusted hops are skipped when choosing X-Real-IP', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'trusted_proxies: [127.0.0.0/8, 198.51.100.0/24]' }));
    const r = await https({ port: v.ports.https, headers: { 'X-Forwarded-For': '203.0.113.7, 198.51.100.2' } });
    assert.equal(r.status, 200);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('X-Forwarded-For'), ['203.0.113.7, 198.51.100.2, 127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Real-IP'), ['203.0.113.7']);
  });

  it('from a trusted proxy without X-Forwarded-For: the peer is the client', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'trusted_proxies: [127.0.0.1/32]' }));
    const r = await https({ port: v.ports.https });
    assert.equal(r.status, 200);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('X-Forwarded-For'), ['127.0.0.1']);
    assert.deepEqual(u.headerAll('X-Real-IP'), ['127.0.0.1']);
  });

  it("keeps a trusted proxy's X-Request-Id and answers with it", T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'trusted_proxies: [127.0.0.1/32]' }));
    const id = '0123456789abcdef0123456789abcdef';
    const r = await https({ port: v.ports.https, headers: { 'X-Request-Id': id } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.all('X-Request-Id'), [id]);
    assert.deepEqual(up.requests[0].headerAll('X-Request-Id'), [id]);
  });

  // Regression: a 41–64 character id overflowed the request's id buffer into the pointers
  // freed with the request (segfault on the first request, every worker gone).
  it("a trusted proxy's X-Request-Id of up to 64 characters is kept whole, a longer one replaced, and visor stays up", T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'trusted_proxies: [127.0.0.1/32]' }));
    for (const n of [33, 41, 64]) {
      const id = 'A'.repeat(n - 3) + '._-';
      const r = await https({ port: v.ports.https, headers: { 'X-Request-Id': id } });
      assert.equal(r.status, 200, `id of ${n} characters`);
      assert.deepEqual(r.all('X-Request-Id'), [id]);
      assert.deepEqual(up.requests[up.requests.length - 1].headerAll('X-Request-Id'), [id]);
    }
    for (const bad of ['B'.repeat(65), 'C'.repeat(200), 'has space', 'semi;colon']) {
      const r = await https({ port: v.ports.https, headers: { 'X-Request-Id': bad } });
      assert.equal(r.status, 200);
      const id = r.get('X-Request-Id');
      assert.match(id, REQUEST_ID, 'replaced by a fresh id');
      assert.deepEqual(up.requests[up.requests.length - 1].headerAll('X-Request-Id'), [id]);
    }
    assert.equal(v.exitCode, undefined, 'still running');
    assert.equal((await https({ port: v.ports.https, path: '/after' })).status, 200);
  });

  it('strips hop-by-hop headers, the headers Connection names, and Proxy-*', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const req =
      'GET /hop HTTP/1.1\r\n' +
      `Host: localhost:${v.ports.https}\r\n` +
      'Connection: close, X-Secret-Hop\r\n' +
      'X-Secret-Hop: 1\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'TE: trailers\r\n' +
      'Trailer: X-Checksum\r\n' +
      'Upgrade: example/1\r\n' +
      'X-Keep-Me: yes\r\n' +
      '\r\n';
    const res = await rawTls(v.ports.https, req);
    const [r] = res.responses();
    assert.equal(r.status, 200);
    assert.equal(r.complete, true);
    assert.equal(res.closed, true, 'Connection: close honoured');
    const u = up.requests[0];
    for (const h of ['X-Secret-Hop', 'Keep-Alive', 'Proxy-Authorization', 'Proxy-Connection', 'TE', 'Trailer', 'Upgrade']) {
      assert.deepEqual(u.headerAll(h), [], `${h} must not be forwarded`);
    }
    for (const c of u.headerAll('Connection')) assert.match(c, /^(keep-alive|close)$/i, 'Connection sent upstream is visor\'s own');
    assert.deepEqual(u.headerAll('X-Keep-Me'), ['yes']);
  });

  it('forwards the path normalised and the query unchanged', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const cases = [
      ['/a/./b/../c?q=/../x&y=%2e%2e', '/a/c?q=/../x&y=%2e%2e'],
      ['/a//b///c', '/a/b/c'],
      ['/plain/path?k=v', '/plain/path?k=v'],
    ];
    for (const [sent, expected] of cases) {
      const r = await https({ port: v.ports.https, path: sent });
      assert.equal(r.status, 200, sent);
      assert.equal(r.json().url, expected, sent);
    }
  });
});

describe('plain HTTP listener', () => {
  afterEach(cleanupAll);

  it('answers 301 to https with the path and query as received, security headers, no HSTS, no upstream contact', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}' }));
    const P = v.ports.https;
    const cases = [
      ['GET', 'example.com', '/some/path?a=1&b=%20x', `https://example.com:${P}/some/path?a=1&b=%20x`],
      ['GET', 'example.com:8080', '/a/../b//c?q=1', `https://example.com:${P}/a/../b//c?q=1`],
      ['GET', 'localhost', '/', `https://localhost:${P}/`],
      ['POST', 'example.com', '/form', `https://example.com:${P}/form`],
    ];
    for (const [method, host, path, location] of cases) {
      const r = await http({ port: v.ports.http, method, path, headers: { Host: host }, body: method === 'POST' ? 'a=1' : undefined });
      assertEdge(r, 301, { hsts: null });
      assert.deepEqual(r.all('Location'), [location], `${method} ${host} ${path}`);
    }
    assert.equal(up.requests.length, 0);
  });

  it('omits :443 from Location when the HTTPS listener is on 443', {
    ...T, skip: process.getuid && process.getuid() !== 0 ? 'binding port 443 needs root' : false,
  }, async () => {
    const up = await startUpstream();
    // a loopback address of its own, so port 443 is free whatever else runs
    const addr = `127.0.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
    const yaml = minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}' }).replace('https: {{HTTPS}}', `https: ${addr}:443`);
    const v = await startVisor(yaml);
    const r = await http({ port: v.ports.http, path: '/x?y=1', headers: { Host: 'example.com' } });
    assertEdge(r, 301, { hsts: null });
    assert.deepEqual(r.all('Location'), ['https://example.com/x?y=1']);
  });

  it('answers /healthz itself with 200 {"status":"ok"}', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}' }));
    const r = await http({ port: v.ports.http, path: '/healthz' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
    assert.match(r.get('Content-Type'), /^application\/json/);
    assert.equal(up.requests.length, 0);
  });
});

describe('logs', () => {
  afterEach(cleanupAll);

  it('writes one access log line per request, without query, Authorization or cookies', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const body = 'x'.repeat(100);
    const before = Date.now();
    const r = await https({
      port: v.ports.https,
      method: 'POST',
      path: '/items?token=sekretquery',
      headers: {
        Authorization: 'Bearer eyJhbGciOiJub25lIn0.sekretauth.sig',
        Cookie: 'sid=sekretcookie',
        'Content-Type': 'text/plain',
      },
      body,
    });
    assert.equal(r.status, 200);
    const id = r.get('X-Request-Id');
    const log = await v.accessLogFor(id);
    for (const k of ['time', 'type', 'request_id', 'client_ip', 'method', 'path', 'status', 'bytes_in', 'bytes_out', 'duration_ms', 'upstream_ms']) {
      assert.ok(k in log, `access log has ${k}`);
    }
    assert.equal(log.type, 'access');
    assert.match(log.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const t = Date.parse(log.time);
    assert.ok(t >= before - 2000 && t <= Date.now() + 2000, `time ${log.time} is now`);
    assert.equal(log.client_ip, '127.0.0.1');
    assert.equal(log.method, 'POST');
    assert.equal(log.path, '/items');
    assert.equal(log.status, 200);
    assert.ok(Number.isInteger(log.bytes_in) && log.bytes_in >= 100, `bytes_in ${log.bytes_in}`);
    assert.ok(Number.isInteger(log.bytes_out) && log.bytes_out >= r.body.length, `bytes_out ${log.bytes_out}`);
    assert.equal(typeof log.duration_ms, 'number');
    assert.equal(typeof log.upstream_ms, 'number');
    assert.ok(log.duration_ms >= 0 && log.upstream_ms >= 0);
    assert.equal(v.accessLogs().filter((l) => l.request_id === id).length, 1, 'exactly one line');
    const all = v.stdout.join('\n') + v.stderr.join('\n');
    assert.ok(!all.includes('sekret'), 'no query, Authorization or Cookie value in any log line');
  });

  it('measures duration_ms and upstream_ms in milliseconds', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), 300);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https, path: '/slow' });
    assert.equal(r.status, 200);
    const log = await v.accessLogFor(r.get('X-Request-Id'));
    assert.ok(log.upstream_ms >= 280 && log.upstream_ms < 5000, `upstream_ms ${log.upstream_ms}`);
    assert.ok(log.duration_ms >= log.upstream_ms - 1 && log.duration_ms < 5000, `duration_ms ${log.duration_ms}`);
  });

  it('stdout and stderr carry only JSON lines', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    for (let i = 0; i < 3; i++) assert.equal((await https({ port: v.ports.https })).status, 200);
    await v.waitForLog((j) => j && j.type === 'access' && v.accessLogs().length >= 3);
    assert.equal(await v.stop(), 0);
    assert.ok(v.stdout.length >= 3);
    for (const l of v.stdout) {
      const j = JSON.parse(l);
      assert.equal(typeof j, 'object');
    }
    assert.ok(v.stderr.length >= 1, 'lifecycle messages on stderr');
    for (const l of v.stderr) {
      const j = JSON.parse(l);
      assert.match(j.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, l);
      assert.ok(['info', 'warn', 'error', 'debug'].includes(j.level), l);
      assert.equal(typeof j.msg, 'string', l);
    }
  });
});

// ---- admin listener ---------------------------------------------------------------

function parseMetrics(text) {
  const samples = [];
  const types = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let m = line.match(/^# TYPE (\S+) (\S+)$/);
    if (m) {
      types[m[1]] = m[2];
      continue;
    }
    if (line.startsWith('#')) continue;
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/);
    assert.ok(m, `metrics line ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3]) for (const p of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    samples.push({ name: m[1], labels, value: Number(m[4] === '+Inf' ? Infinity : m[4]) });
  }
  // Sum of the samples named `name` whose labels include `want`.
  const sum = (name, want = {}) =>
    samples.filter((s) => s.name === name && Object.entries(want).every(([k, val]) => s.labels[k] === val)).reduce((a, s) => a + s.value, 0);
  const has = (name) => samples.some((s) => s.name === name);
  return { samples, types, sum, has };
}

describe('admin listener', () => {
  afterEach(cleanupAll);

  it('/healthz and /readyz follow upstream reachability', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}' }));
    const h = await http({ port: v.ports.admin, path: '/healthz' });
    assert.equal(h.status, 200);
    assert.deepEqual(h.json(), { status: 'ok' });
    assert.match(h.get('Content-Type'), /^application\/json/);
    const r1 = await http({ port: v.ports.admin, path: '/readyz' });
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.json(), { status: 'ready' });

    await up.close();
    let last;
    await until(async () => {
      last = await http({ port: v.ports.admin, path: '/readyz' });
      return last.status === 503;
    }, 6000 * SLOW, '/readyz → 503 once the upstream is gone', 200);
    assert.deepEqual(last.json(), { status: 'not ready' });
    assert.equal((await http({ port: v.ports.admin, path: '/healthz' })).status, 200, 'healthz stays 200');

    // the upstream comes back on the same port
    const back = net.createServer((s) => s.destroy());
    await new Promise((res) => back.listen(up.port, '127.0.0.1', res));
    try {
      await until(async () => (await http({ port: v.ports.admin, path: '/readyz' })).status === 200, 10000 * SLOW, '/readyz → 200 again', 200);
    } finally {
      back.close();
    }
  });

  it('/readyz is 503 when no upstream server accepts connections from the start', T, async () => {
    const v = await startVisor(minimalYaml({ upstream: '127.0.0.1:1', listen: 'admin: {{ADMIN}}' }));
    let last;
    await until(async () => {
      last = await http({ port: v.ports.admin, path: '/readyz' });
      return last.status === 503;
    }, 6000 * SLOW, '/readyz → 503', 200);
    assert.deepEqual(last.json(), { status: 'not ready' });
  });

  it('/metrics: Prometheus text with connections, requests by class and the upstream histogram', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'Content-Type': 'text/plain' });
      res.end('m');
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}' }));
    const scrape = async () => {
      const r = await http({ port: v.ports.admin, path: '/metrics' });
      assert.equal(r.status, 200);
      assert.match(r.get('Content-Type'), /^text\/plain; version=0\.0\.4(; charset=utf-8)?$/);
      return parseMetrics(r.text);
    };
    const m1 = await scrape();
    for (const name of ['visor_connections_active', 'visor_connections_total']) assert.ok(m1.has(name), name);
    for (let i = 0; i < 3; i++) assert.equal((await https({ port: v.ports.https, path: '/ok' })).status, 200);
    assert.equal((await https({ port: v.ports.https, path: '/missing' })).status, 404);
    const held = await tlsConnect(v.ports.https);
    await delay(200);
    const m2 = await scrape();
    held.destroy();

    assert.equal(m2.types.visor_connections_active, 'gauge');
    assert.equal(m2.types.visor_connections_total, 'counter');
    assert.equal(m2.types.visor_requests_total, 'counter');
    assert.equal(m2.types.visor_upstream_response_seconds, 'histogram');
    assert.ok(m2.sum('visor_connections_active') >= 1, 'the held connection is active');
    assert.ok(m2.sum('visor_connections_total') - m1.sum('visor_connections_total') >= 5, 'connections_total counts 5 new connections');
    assert.equal(m2.sum('visor_requests_total', { class: '2xx' }) - m1.sum('visor_requests_total', { class: '2xx' }), 3);
    assert.equal(m2.sum('visor_requests_total', { class: '4xx' }) - m1.sum('visor_requests_total', { class: '4xx' }), 1);
    const count = m2.sum('visor_upstream_response_seconds_count');
    assert.equal(count - m1.sum('visor_upstream_response_seconds_count'), 4);
    assert.ok(m2.sum('visor_upstream_response_seconds_sum') > 0);
    const buckets = m2.samples.filter((s) => s.name === 'visor_upstream_response_seconds_bucket');
    assert.ok(buckets.length >= 2, 'several buckets');
    assert.equal(m2.sum('visor_upstream_response_seconds_bucket', { le: '+Inf' }), count);
    const les = [...new Set(buckets.map((b) => b.labels.le))].sort((a, b) => Number(a === '+Inf' ? Infinity : a) - Number(b === '+Inf' ? Infinity : b));
    let prev = 0;
    for (const le of les) {
      const n = m2.sum('visor_upstream_response_seconds_bucket', { le });
      assert.ok(n >= prev, `bucket le=${le} is cumulative`);
      prev = n;
    }
  });
});

// ---- TLS --------------------------------------------------------------------------

function get(socket) {
  // one request on an established TLS socket; resolves with the raw answer (until close)
  return new Promise((resolve, reject) => {
    const chunks = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  });
}

describe('TLS', () => {
  afterEach(cleanupAll);

  it('negotiates ALPN http/1.1 (http2 off; h2 itself: h2.test.mjs)', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'http2:\n  enabled: false\n' }));
    const s = await tlsConnect(v.ports.https, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(s.alpnProtocol, 'http/1.1');
    assert.match(await get(s), /^HTTP\/1\.1 200 /);
  });

  it('serves TLS 1.2 and TLS 1.3', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const a = await https({ port: v.ports.https, maxVersion: 'TLSv1.2' });
    assert.equal(a.status, 200);
    assert.equal(a.tlsProtocol, 'TLSv1.2');
    const b = await https({ port: v.ports.https, minVersion: 'TLSv1.3' });
    assert.equal(b.status, 200);
    assert.equal(b.tlsProtocol, 'TLSv1.3');
  });

  it('refuses TLS 1.1 (a TLS 1.1 control server accepts the same client)', T, async () => {
    const c = getCerts();
    const old = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
    // control: the client can speak TLS 1.1 to a server that allows it
    const ctl = tls.createServer({ ...old, cert: c.certPem, key: fs.readFileSync(c.key) }, (s) => s.end());
    await new Promise((r) => ctl.listen(0, '127.0.0.1', r));
    try {
      const s = await tlsConnect(ctl.address().port, old);
      assert.equal(s.getProtocol(), 'TLSv1.1');
      s.destroy();
    } finally {
      ctl.close();
    }
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    await assert.rejects(tlsConnect(v.ports.https, old));
  });

  it('min_version: TLSv1.3 refuses TLS 1.2', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, tls: 'min_version: TLSv1.3' }));
    await assert.rejects(tlsConnect(v.ports.https, { maxVersion: 'TLSv1.2' }));
    const s = await tlsConnect(v.ports.https);
    assert.equal(s.getProtocol(), 'TLSv1.3');
  });

  it('SNI selects the certificate; the first one is the default', T, async () => {
    const up = await startUpstream();
    const yaml = minimalYaml({ upstream: up.addr }).replace(
      '      key: {{KEY}}\n',
      '      key: {{KEY}}\n    - cert: {{ALT_CERT}}\n      key: {{ALT_KEY}}\n',
    );
    const v = await startVisor(yaml);
    const alt = await tlsConnect(v.ports.https, { servername: ALT_NAME });
    assert.equal(alt.getPeerCertificate().subject.CN, ALT_NAME);
    assert.match(await get(alt), /^HTTP\/1\.1 200 /);
    const main = await tlsConnect(v.ports.https, { servername: 'localhost' });
    assert.equal(main.getPeerCertificate().subject.CN, 'localhost');
    main.destroy();
    const other = await tlsConnect(v.ports.https, { servername: 'unknown.example', rejectUnauthorized: false });
    assert.equal(other.getPeerCertificate().subject.CN, 'localhost');
    other.destroy();
    const r = await https({ port: v.ports.https, servername: ALT_NAME, headers: { Host: ALT_NAME } });
    assert.equal(r.status, 200);
    assert.equal(r.socket.getPeerCertificate().subject.CN, ALT_NAME);
  });

  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    it(`resumes ${version} sessions (across workers)`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'workers: 2\n' }));
      const opts = { minVersion: version, maxVersion: version };
      let session = null;
      for (let i = 0; i < 6; i++) {
        const s = await tlsConnect(v.ports.https, session ? { ...opts, session } : opts);
        if (i > 0) assert.equal(s.isSessionReused(), true, `connection ${i} resumed`);
        assert.match(await get(s), /^HTTP\/1\.1 200 /);
        // a resumed TLS 1.2 connection may bring no new ticket: keep the one we have
        session = s.lastSession || session;
        assert.ok(session, 'got a session to resume');
      }
    });
  }
});
