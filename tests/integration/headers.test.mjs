// Security headers (docs/headers.md: `headers`, `remove_headers`): the 11 helmet
// defaults, exact values, one line each, on proxied answers, on the plain listener's 301 and
// on every kind of edge answer; overrides merged key by key; "" leaves a header to the
// upstream; remove_headers strips X-Powered-By and Server (any case, any count).
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startVisor, startUpstream, startRawUpstream, rawResponder, https, http, rawTls, rawConnect,
  hasResponses, deadPort, minimalYaml, assertEdge, assertRawEdge, assertSecurityHeaders,
  cleanupAll, runVisor, writeConfigFile, HELMET, HSTS_DEFAULT, SLOW,
} from './lib/harness.mjs';
import { policyYaml, corsSection, pathUpstream, jwtKey } from './lib/policy-helpers.mjs';

const T = { timeout: 30000 * SLOW };

// Upstream copies of every helmet header with other values, in other cases, some twice.
const NOISY = {
  'content-security-policy': ["default-src *", "script-src 'unsafe-eval'"],
  'CROSS-ORIGIN-OPENER-POLICY': 'unsafe-none',
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'Origin-Agent-Cluster': '?0',
  'Referrer-Policy': ['unsafe-url', 'origin'],
  'x-content-type-options': 'sniff',
  'X-DNS-Prefetch-Control': 'on',
  'X-Download-Options': 'open',
  'X-Frame-Options': ['ALLOWALL', 'DENY'],
  'X-Permitted-Cross-Domain-Policies': 'all',
  'X-XSS-Protection': '1; mode=block',
  'Strict-Transport-Security': 'max-age=0',
  'X-Powered-By': ['Express', 'PHP/8.2'],
  server: 'nginx/1.25.0',
  'X-App': 'kept',
};

describe('security headers: the defaults everywhere', () => {
  afterEach(cleanupAll);

  it('proxied answers: each default once, exact, replacing the upstream copies; HSTS; X-Powered-By and Server gone', T, async () => {
    const up = await pathUpstream({
      '/ok': { headers: NOISY, body: '{"ok":true}' },
      '/404': { status: 404, headers: NOISY, body: 'nope' },
      '/chunked': { headers: NOISY, body: 'a'.repeat(5000), chunked: true },
      '/304': (req, res) => {
        res.writeHead(304, { ETag: '"1"', ...NOISY });
        res.end();
      },
    });
    const v = await startVisor(policyYaml(up.addr));
    for (const p of ['/ok', '/404', '/chunked', '/echo']) {
      const r = await https({ port: v.ports.https, path: p });
      assertSecurityHeaders(r);
      assert.deepEqual(r.all('X-Powered-By'), [], p);
      assert.deepEqual(r.all('Server'), [], p);
      if (p !== '/echo') assert.deepEqual(r.all('X-App'), ['kept'], p);
    }
    const r = await https({ port: v.ports.https, path: '/304', headers: { 'If-None-Match': '"1"' } });
    assert.equal(r.status, 304);
    assertSecurityHeaders(r);
  });

  it('the plain listener: 301 and /healthz carry the defaults, never HSTS', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}' }));
    const r = await http({ port: v.ports.http, path: '/a?b=c' });
    assert.equal(r.status, 301);
    assertSecurityHeaders(r, { hsts: null });
    const h = await http({ port: v.ports.http, path: '/healthz' });
    assert.equal(h.status, 200);
    assertSecurityHeaders(h, { hsts: null });
    assert.equal(up.requests.length, 0);
  });

  it('edge answers: 400, 404, 413, 431 and 502 carry the defaults and HSTS', T, async () => {
    const dead = await deadPort();
    const v = await startVisor(policyYaml(`127.0.0.1:${dead}`, 'routes:\n  - path: /api/\n', { client: 'max_header_size: 4k\nmax_body_size: 1k' }));
    // 400: malformed head (raw bytes)
    const bad = await rawTls(v.ports.https, 'GET /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', { until: hasResponses(1) });
    assertRawEdge(bad.responses(['GET'])[0], 400);
    // 404: no route
    assertEdge(await https({ port: v.ports.https, path: '/elsewhere' }), 404);
    // 413: Content-Length over max_body_size
    assertEdge(await https({ port: v.ports.https, method: 'POST', path: '/api/x', body: 'x'.repeat(2000) }), 413);
    // 431: head over max_header_size
    const big = await rawTls(v.ports.https, `GET /api/x HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(6000)}\r\n\r\n`, { until: hasResponses(1) });
    assertRawEdge(big.responses(['GET'])[0], 431);
    // 502: upstream down
    assertEdge(await https({ port: v.ports.https, path: '/api/x' }), 502);
  });

  it('edge answers: 504 (upstream too slow) and 408 (head too slow)', T, async () => {
    const up = await startRawUpstream(() => {}); // accepts, never answers
    const v = await startVisor(policyYaml(up.addr, '', { upstreamExtra: 'timeout: 300ms', client: 'header_timeout: 500ms' }));
    assertEdge(await https({ port: v.ports.https, path: '/slow' }), 504);
    const c = await rawConnect(v.ports.https);
    await c.write('GET / HTTP/1.1\r\nHost: local');
    const res = await c.readUntilClose(1500 * SLOW, hasResponses(1));
    assertRawEdge(res.responses(['GET'])[0], 408);
    c.destroy();
  });

  it('edge answers: 401 (jwt) and 403 (cors) carry the defaults', T, async (t) => {
    const key = jwtKey();
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection()}${key.yaml}routes:\n  - path: /\n    auth: required\n`));
    assertEdge(await https({ port: v.ports.https, path: '/x', headers: { Origin: 'https://evil.example.net' } }), 403);
    const r = await https({ port: v.ports.https, path: '/x' });
    if (r.status !== 401) t.skip('the jwt filter does not refuse yet');
    assertEdge(r, 401);
  });

  it('a scrubbed upstream 500 carries the defaults', T, async () => {
    const up = await pathUpstream({ '/boom': { status: 500, headers: NOISY, body: 'Error: boom\n    at x (/app/a.js:1:2)' } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/boom' });
    assertEdge(r, 500);
    assert.deepEqual(r.all('X-Powered-By'), []);
    assert.deepEqual(r.all('Server'), []);
  });
});

describe('header names with an underscore', () => {
  afterEach(cleanupAll);

  // CGI-style upstreams map X_User_Id and X-User-Id to one variable: an underscored copy would
  // spoof a claims_to_headers target or X-Forwarded-*.
  it('are dropped before forwarding by default', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https, headers: { X_User_Id: 'admin', X_Forwarded_For: '10.9.9.9', 'X-Kept': 'yes', 'x_lower_case': '1' } });
    assert.equal(r.status, 200);
    const names = up.requests[0].headers.map(([n]) => n.toLowerCase());
    assert.deepEqual(names.filter((n) => n.includes('_')), []);
    assert.deepEqual(up.requests[0].headerAll('X-Kept'), ['yes']);
    assert.deepEqual(up.requests[0].headerAll('X-Forwarded-For'), ['127.0.0.1']);
  });

  it('client.allow_underscores: true forwards them', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'allow_underscores: true' }));
    const r = await https({ port: v.ports.https, headers: { X_User_Id: 'u1' } });
    assert.equal(r.status, 200);
    assert.deepEqual(up.requests[0].headerAll('X_User_Id'), ['u1']);
  });
});

describe('security headers: configuration', () => {
  afterEach(cleanupAll);

  it('an override replaces the default (and the upstream value) on proxied and edge answers', T, async () => {
    const up = await pathUpstream({ '/ok': { headers: NOISY, body: 'x' } });
    const v = await startVisor(policyYaml(up.addr, `
      headers:
        X-Frame-Options: DENY
        content-security-policy: "default-src 'none'"
        Permissions-Policy: "geolocation=(), camera=()"
      routes:
        - path: /ok
    `));
    const overrides = {
      'X-Frame-Options': 'DENY',
      'Content-Security-Policy': "default-src 'none'",
      'Permissions-Policy': 'geolocation=(), camera=()',
    };
    const a = await https({ port: v.ports.https, path: '/ok' });
    assert.equal(a.status, 200);
    assertSecurityHeaders(a, { overrides });
    const b = await https({ port: v.ports.https, path: '/not-routed' });
    assertEdge(b, 404, { overrides });
    // the default's spelling is kept when the override is written in another case
    assert.ok(b.rawHeaders.some(([n]) => n === 'Content-Security-Policy'));
  });

  it('"" leaves the header to the upstream: its value passes as sent; visor never adds one', T, async () => {
    const up = await pathUpstream({
      '/with': { headers: { 'X-Frame-Options': 'ALLOW-FROM https://x.test', 'Referrer-Policy': 'origin' }, body: 'x' },
      '/without': { body: 'x' },
    });
    const v = await startVisor(policyYaml(up.addr, `
      headers:
        X-Frame-Options: ""
        Referrer-Policy: ""
      routes:
        - path: /with
        - path: /without
    `));
    const overrides = { 'X-Frame-Options': null, 'Referrer-Policy': null };
    const a = await https({ port: v.ports.https, path: '/with' });
    assertSecurityHeaders(a, { overrides });
    assert.deepEqual(a.all('X-Frame-Options'), ['ALLOW-FROM https://x.test']);
    assert.deepEqual(a.all('Referrer-Policy'), ['origin']);
    const b = await https({ port: v.ports.https, path: '/without' });
    assertSecurityHeaders(b, { overrides });
    assert.deepEqual(b.all('X-Frame-Options'), []);
    assert.deepEqual(b.all('Referrer-Policy'), []);
    const e = await https({ port: v.ports.https, path: '/nope' });
    assertEdge(e, 404, { overrides });
    assert.deepEqual(e.all('X-Frame-Options'), []);
  });

  it('remove_headers: X-Powered-By and Server by default, in any case and any number', T, async () => {
    const up = await startRawUpstream(rawResponder((head, s) => {
      s.write('HTTP/1.1 200 OK\r\nx-powered-by: Express\r\nX-POWERED-BY: Next.js\r\nSERVER: gunicorn\r\nServer: x\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok');
    }));
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok');
    assert.deepEqual(r.all('X-Powered-By'), []);
    assert.deepEqual(r.all('Server'), []);
    assert.deepEqual(r.all('X-Keep'), ['1']);
  });

  it('remove_headers replaces the default list; [] removes nothing', T, async () => {
    const up = await pathUpstream({ '/ok': { headers: { 'X-Powered-By': 'Express', Server: 'node', 'X-Debug-Sql': 'SELECT 1', 'X-Keep': '1' }, body: 'x' } });
    const v1 = await startVisor(policyYaml(up.addr, 'remove_headers: [X-Debug-Sql, X-Powered-By]\n'));
    const a = await https({ port: v1.ports.https, path: '/ok' });
    assert.deepEqual(a.all('X-Debug-Sql'), []);
    assert.deepEqual(a.all('X-Powered-By'), []);
    assert.deepEqual(a.all('Server'), ['node']);
    assert.deepEqual(a.all('X-Keep'), ['1']);
    const v2 = await startVisor(policyYaml(up.addr, 'remove_headers: []\n'));
    const b = await https({ port: v2.ports.https, path: '/ok' });
    assert.deepEqual(b.all('X-Powered-By'), ['Express']);
    assert.deepEqual(b.all('Server'), ['node']);
    assertSecurityHeaders(b);
  });

  it('headers that visor owns cannot be configured', T, async () => {
    const up = await startUpstream();
    for (const h of ['Strict-Transport-Security', 'Access-Control-Allow-Origin', 'Content-Length', 'X-Request-Id']) {
      const f = await writeConfigFile(policyYaml(up.addr, `headers:\n  ${h}: x\n`));
      const res = runVisor(['-t', '-c', f.file]);
      assert.equal(res.code, 1, `${h}: ${res.stderr}`);
      assert.match(res.stderr, new RegExp(h.replace(/-/g, '.'), 'i'));
    }
  });

  it('defaults are exactly the documented values (docs/headers.md)', () => {
    assert.equal(Object.keys(HELMET).length, 11);
    assert.equal(HSTS_DEFAULT, 'max-age=31536000; includeSubDomains');
  });

  it('a header set by visor is one line even when the upstream sends it many times on a keep-alive stream', T, async () => {
    const up = await pathUpstream({ '/ok': { headers: NOISY, body: 'x' } });
    const v = await startVisor(policyYaml(up.addr));
    const reqs = Array.from({ length: 3 }, () => 'GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n').join('');
    const res = await rawTls(v.ports.https, reqs, { until: hasResponses(3) });
    const rs = res.responses(['GET', 'GET', 'GET']);
    assert.equal(rs.length, 3);
    for (const r of rs) assertSecurityHeaders(r);
  });
});
