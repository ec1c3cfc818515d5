// CORS (docs/cors.md: preflights, origins not allowed, origin comparison), against the real binary with an upstream that sends its own (wrong)
// Access-Control-* headers, which visor must never pass on.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startVisor, startUpstream, https, http, rawTls, hasResponses, deadPort, minimalYaml,
  assertEdge, assertSecurityHeaders, cleanupAll, SLOW,
} from './lib/harness.mjs';
import {
  policyYaml, corsSection, assertNoAC, assertAC, assertVary, acHeaders, pathUpstream, jwtKey,
} from './lib/policy-helpers.mjs';

const T = { timeout: 30000 * SLOW };
const METHODS = 'GET, POST, PUT, PATCH, DELETE';
const HEADERS = 'Content-Type, Authorization';
const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

// ---- the matrix ---------------------------------------------------------------------------
// origins × simple/preflight × credentials on/off × reject/omit. The allowlist holds an
// origin without a port, one with a non-default port, and a wildcard (which never matches).
const LIST = ['https://app.example.com', 'https://api.example.com:8443', 'http://localhost:3000', 'https://*.example.com'];
const ORIGINS = [
  { name: 'listed', origin: 'https://app.example.com', allowed: true },
  { name: 'case variant', origin: 'https://App.Example.COM', allowed: true },
  { name: 'scheme upper-case', origin: 'HTTPS://app.example.com', allowed: true },
  { name: 'default port spelled out', origin: 'https://app.example.com:443', allowed: true },
  { name: 'listed with its port', origin: 'https://api.example.com:8443', allowed: true },
  { name: 'http with port', origin: 'http://localhost:3000', allowed: true },
  { name: 'port mismatch', origin: 'https://app.example.com:8443', allowed: false },
  { name: 'port missing', origin: 'https://api.example.com', allowed: false },
  { name: 'http instead of https', origin: 'http://app.example.com', allowed: false },
  { name: 'http default port', origin: 'http://localhost', allowed: false },
  { name: 'null', origin: 'null', allowed: false },
  { name: 'other site', origin: 'https://evil.example.net', allowed: false },
  { name: 'subdomain of a wildcard entry', origin: 'https://x.example.com', allowed: false },
  { name: 'suffix trick', origin: 'https://app.example.com.evil.net', allowed: false },
  { name: 'prefix trick', origin: 'https://evilapp.example.com', allowed: false },
  { name: 'trailing slash', origin: 'https://app.example.com/', allowed: false },
  { name: 'literal *', origin: '*', allowed: false },
];

for (const credentials of [false, true]) {
  for (const onDisallowed of ['reject', 'omit']) {
    describe(`cors matrix: credentials ${credentials}, on_disallowed ${onDisallowed}`, () => {
      let v;
      let up;
      before(async () => {
        up = await pathUpstream({}, { noisyCors: true });
        v = await startVisor(policyYaml(up.addr, corsSection({ origins: LIST, credentials, onDisallowed })));
      });
      after(cleanupAll);

      for (const o of ORIGINS) {
        it(`simple GET, ${o.name} (${o.origin})`, T, async () => {
          const before = up.requests.length;
          const r = await https({ port: v.ports.https, path: '/m/simple', headers: { Origin: o.origin } });
          assertVary(r, 'Origin');
          if (o.allowed) {
            assert.equal(r.status, 200);
            assert.equal(up.requests.length, before + 1);
            assertAC(r, {
              'Access-Control-Allow-Origin': o.origin,
              'Access-Control-Allow-Credentials': credentials ? 'true' : undefined,
              'Access-Control-Expose-Headers': 'X-Request-Id',
            });
          } else if (onDisallowed === 'reject') {
            assertEdge(r, 403);
            assertNoAC(r);
            assert.equal(up.requests.length, before, 'a refused request never reaches the upstream');
          } else {
            assert.equal(r.status, 200);
            assert.equal(up.requests.length, before + 1);
            assertNoAC(r);
          }
          assertSecurityHeaders(r);
        });

        it(`preflight, ${o.name} (${o.origin})`, T, async () => {
          const before = up.requests.length;
          const r = await https({
            port: v.ports.https,
            method: 'OPTIONS',
            path: '/m/preflight',
            headers: { Origin: o.origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type,authorization' },
          });
          if (o.allowed) {
            assert.equal(r.status, 204);
            assert.equal(r.body.length, 0);
            assert.deepEqual(r.all('Content-Length'), []);
            assert.deepEqual(r.all('Content-Type'), []);
            assert.deepEqual(r.all('Transfer-Encoding'), []);
            assertAC(r, {
              'Access-Control-Allow-Origin': o.origin,
              'Access-Control-Allow-Credentials': credentials ? 'true' : undefined,
              'Access-Control-Allow-Methods': METHODS,
              'Access-Control-Allow-Headers': HEADERS,
              'Access-Control-Max-Age': '86400',
            });
            assertVary(r, PREFLIGHT_VARY);
            assert.equal(up.requests.length, before, 'a preflight never reaches the upstream');
            assert.equal(r.all('X-Request-Id').length, 1);
            assertSecurityHeaders(r);
          } else if (onDisallowed === 'reject') {
            assertEdge(r, 403);
            assertNoAC(r);
            assertVary(r, 'Origin');
            assert.equal(up.requests.length, before);
          } else {
            // omit: forwarded like any request; the upstream's own CORS headers are dropped
            assert.equal(r.status, 200);
            assert.equal(up.requests.length, before + 1);
            assert.equal(up.requests.at(-1).method, 'OPTIONS');
            assertNoAC(r);
            assertVary(r, 'Origin');
          }
        });
      }
    });
  }
}

// ---- details -------------------------------------------------------------------------------

describe('cors: preflight checks', () => {
  afterEach(cleanupAll);

  async function setup(extra = {}) {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection({ credentials: true, methods: ['GET', 'PUT'], headers: ['Content-Type', 'X-Requested-With'], ...extra })));
    const pre = (method, hdrs, more = {}) =>
      https({
        port: v.ports.https,
        method: 'OPTIONS',
        path: '/api/things',
        headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': method, ...(hdrs !== undefined ? { 'Access-Control-Request-Headers': hdrs } : {}), ...more },
      });
    return { up, v, pre };
  }

  it('a method not listed → 403 without Access-Control-* headers, never forwarded', T, async () => {
    const { up, pre } = await setup();
    for (const m of ['DELETE', 'PATCH', 'put', 'TRACE', 'PUT, DELETE']) {
      const r = await pre(m);
      assertEdge(r, 403);
      assertNoAC(r, `${m}: `);
      assertVary(r, PREFLIGHT_VARY);
    }
    assert.equal(up.requests.length, 0);
  });

  it('a header not listed → 403 without Access-Control-* headers', T, async () => {
    const { up, pre } = await setup();
    for (const h of ['x-api-key', 'content-type,x-api-key', 'authorization', 'cookie']) {
      const r = await pre('PUT', h);
      assertEdge(r, 403);
      assertNoAC(r, `${h}: `);
    }
    assert.equal(up.requests.length, 0);
  });

  it('listed methods and headers pass, headers compared case-insensitively; safelisted ones need no listing', T, async () => {
    const { pre } = await setup();
    for (const [m, h] of [['PUT', undefined], ['PUT', ''], ['PUT', 'X-REQUESTED-WITH'], ['GET', 'x-requested-with, content-type'],
      ['POST', 'accept,accept-language,content-language'], ['HEAD', 'range'], ['PUT', 'content-type,,']]) {
      const r = await pre(m, h);
      assert.equal(r.status, 204, `${m} ${h}`);
      assertAC(r, {
        'Access-Control-Allow-Origin': 'https://app.example.com',
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Allow-Methods': 'GET, PUT',
        'Access-Control-Allow-Headers': 'Content-Type, X-Requested-With',
        'Access-Control-Max-Age': '86400',
      }, `${m} ${h}: `);
    }
  });

  it('two Access-Control-Request-Headers lines are both checked', T, async () => {
    const { pre } = await setup();
    const r = await pre('PUT', ['content-type', 'x-api-key']);
    assertEdge(r, 403);
  });

  it('max_age and an empty expose list', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection({ maxAge: '10m', expose: [] })));
    const p = await https({ port: v.ports.https, method: 'OPTIONS', path: '/', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'DELETE' } });
    assert.equal(p.status, 204);
    assert.deepEqual(p.all('Access-Control-Max-Age'), ['600']);
    const r = await https({ port: v.ports.https, path: '/', headers: { Origin: 'https://app.example.com' } });
    assertAC(r, { 'Access-Control-Allow-Origin': 'https://app.example.com' });
  });

  it('the 204 carries no body bytes and no framing headers on the wire, and the connection goes on', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const pre = 'OPTIONS /api HTTP/1.1\r\nHost: localhost\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: PUT\r\n\r\n';
    const get = 'GET /after HTTP/1.1\r\nHost: localhost\r\nOrigin: https://app.example.com\r\nConnection: close\r\n\r\n';
    const res = await rawTls(v.ports.https, pre + get, { until: hasResponses(2, ['OPTIONS', 'GET']) });
    const rs = res.responses(['OPTIONS', 'GET']);
    assert.equal(rs.length, 2, res.text);
    assert.equal(rs[0].status, 204);
    assert.equal(rs[0].body.length, 0);
    assert.deepEqual(rs[0].all('Content-Length'), []);
    assert.deepEqual(rs[0].all('Transfer-Encoding'), []);
    assert.deepEqual(rs[0].all('Content-Type'), []);
    assert.equal(rs[1].status, 200);
    assert.equal(rs[1].json().url, '/after');
    assert.equal(up.requests.length, 1);
  });

  it('OPTIONS without Access-Control-Request-Method is an actual request (forwarded, with CORS headers)', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const r = await https({ port: v.ports.https, method: 'OPTIONS', path: '/x', headers: { Origin: 'https://app.example.com' } });
    assert.equal(r.status, 200);
    assert.equal(up.requests[0].method, 'OPTIONS');
    assertAC(r, { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Expose-Headers': 'X-Request-Id' });
  });

  it('a GET carrying Access-Control-Request-Method is not a preflight', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const r = await https({ port: v.ports.https, path: '/x', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(r.status, 200);
    assert.equal(up.requests.length, 1);
    assertVary(r, 'Origin');
  });
});

describe('cors: origins', () => {
  afterEach(cleanupAll);

  it('"null" is allowed only when listed, and then echoed', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection({ origins: ['null', 'https://app.example.com'], credentials: true })));
    const r = await https({ port: v.ports.https, path: '/', headers: { Origin: 'null' } });
    assert.equal(r.status, 200);
    assertAC(r, { 'Access-Control-Allow-Origin': 'null', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'X-Request-Id' });
    const p = await https({ port: v.ports.https, method: 'OPTIONS', path: '/', headers: { Origin: 'null', 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(p.status, 204);
    assert.deepEqual(p.all('Access-Control-Allow-Origin'), ['null']);
    const n = await https({ port: v.ports.https, path: '/', headers: { Origin: 'NULL' } });
    assertEdge(n, 403);
  });

  it('a configured "*" matches nothing; "*" is never sent', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection({ origins: ['*'], credentials: true })));
    for (const o of ['https://app.example.com', '*', 'null']) {
      const r = await https({ port: v.ports.https, path: '/', headers: { Origin: o } });
      assertEdge(r, 403);
      assertNoAC(r);
    }
    assert.equal(up.requests.length, 0);
  });

  it('same-origin requests (Origin = https://<Host>) are not cross-origin: forwarded, no CORS headers', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection({ onDisallowed: 'reject' })));
    const port = v.ports.https;
    for (const [origin, host] of [[`https://localhost:${port}`, `localhost:${port}`], [`https://LOCALHOST:${port}`, `localhost:${port}`],
      ['https://api.visor.test', 'api.visor.test'], ['https://api.visor.test', 'api.visor.test:443'], ['https://api.visor.test:443', 'API.visor.test']]) {
      const r = await https({ port, path: '/same', headers: { Origin: origin, Host: host } });
      assert.equal(r.status, 200, `${origin} on ${host}`);
      assertNoAC(r);
      assertVary(r, 'Origin');
    }
    // not the same: http scheme, other port
    for (const [origin, host] of [[`http://localhost:${port}`, `localhost:${port}`], [`https://localhost:${port + 1}`, `localhost:${port}`]]) {
      const r = await https({ port, path: '/same', headers: { Origin: origin, Host: host } });
      assertEdge(r, 403);
    }
    // a same-origin preflight is not answered by visor either
    const p = await https({ port, method: 'OPTIONS', path: '/same', headers: { Origin: `https://localhost:${port}`, 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(p.status, 200);
    assertNoAC(p);
    assert.equal(up.requests.at(-1).method, 'OPTIONS');
  });

  it('two Origin headers: not an allowed origin', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const r = await https({ port: v.ports.https, path: '/', headers: { Origin: ['https://app.example.com', 'https://app.example.com'] } });
    assertEdge(r, 403);
    assertNoAC(r);
  });

  it('malformed Origin values are refused (reject) or ignored (omit)', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    for (const o of ['', 'app.example.com', 'https://app.example.com/path', 'https://user@app.example.com', 'https://app.example.com:99999', 'https://app.example.com:4 43']) {
      const r = await https({ port: v.ports.https, path: '/', headers: { Origin: o } });
      assertEdge(r, 403);
      assertNoAC(r, `${JSON.stringify(o)}: `);
    }
  });

  it('requests without Origin pass, with Vary: Origin and no CORS headers', T, async () => {
    const up = await pathUpstream({}, { noisyCors: true });
    const v = await startVisor(policyYaml(up.addr, corsSection({ credentials: true })));
    const r = await https({ port: v.ports.https, path: '/no-origin' });
    assert.equal(r.status, 200);
    assertNoAC(r);
    assertVary(r, 'Origin');
  });
});

describe('cors: Vary', () => {
  afterEach(cleanupAll);

  const cases = [
    { name: 'appends to the upstream Vary', up: ['Accept-Encoding'], want: ['Accept-Encoding, Origin'] },
    { name: 'does not duplicate Origin (any case)', up: ['accept-encoding, origin'], want: ['accept-encoding, origin'] },
    { name: 'merges several Vary lines into one', up: ['Accept-Encoding', 'Accept-Language'], want: ['Accept-Encoding, Accept-Language, Origin'] },
    { name: 'leaves Vary: * alone', up: ['*'], want: ['*'] },
    { name: 'sets it when the upstream sent none', up: [], want: ['Origin'] },
  ];
  for (const c of cases) {
    it(c.name, T, async () => {
      const up = await pathUpstream({ '/v': { headers: c.up.length ? { Vary: c.up } : {}, body: 'x' } });
      const v = await startVisor(policyYaml(up.addr, corsSection()));
      for (const origin of ['https://app.example.com', undefined]) {
        const r = await https({ port: v.ports.https, path: '/v', headers: origin ? { Origin: origin } : {} });
        assert.equal(r.status, 200);
        assert.deepEqual(r.all('Vary'), c.want, `origin ${origin}`);
      }
    });
  }

  it('a preflight answer varies on the request method and headers too', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const r = await https({ port: v.ports.https, method: 'OPTIONS', path: '/', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'GET' } });
    assertVary(r, PREFLIGHT_VARY);
  });
});

describe('cors: edge answers and the upstream', () => {
  afterEach(cleanupAll);

  it("the upstream's Access-Control-* headers never reach the client (allowed, omitted, cors off)", T, async () => {
    const up = await pathUpstream({}, { noisyCors: true });
    const on = await startVisor(policyYaml(up.addr, corsSection({ onDisallowed: 'omit' })));
    const a = await https({ port: on.ports.https, path: '/', headers: { Origin: 'https://app.example.com' } });
    assertAC(a, { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Expose-Headers': 'X-Request-Id' });
    const b = await https({ port: on.ports.https, path: '/', headers: { Origin: 'https://evil.example.net' } });
    assertNoAC(b);
    const off = await startVisor(policyYaml(up.addr));
    for (const origin of ['https://app.example.com', 'https://evil.example.net', undefined]) {
      const r = await https({ port: off.ports.https, path: '/', headers: origin ? { Origin: origin } : {} });
      assert.equal(r.status, 200);
      assertNoAC(r);
      assert.deepEqual(r.all('Vary'), [], 'cors off: visor adds no Vary');
    }
    // cors off: a preflight is the upstream's to answer (its CORS headers still dropped)
    const p = await https({ port: off.ports.https, method: 'OPTIONS', path: '/', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(p.status, 200);
    assert.equal(up.requests.at(-1).method, 'OPTIONS');
    assertNoAC(p);
  });

  it('edge answers made after the cors filter carry the CORS headers: 404 (no route), 502 (upstream down)', T, async () => {
    const dead = await deadPort();
    const v = await startVisor(policyYaml(`127.0.0.1:${dead}`, `${corsSection({ credentials: true })}routes:\n  - path: /api/\n`));
    const want = { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'X-Request-Id' };
    const nf = await https({ port: v.ports.https, path: '/nowhere', headers: { Origin: 'https://app.example.com' } });
    assertEdge(nf, 404);
    assertAC(nf, want);
    assertVary(nf, 'Origin');
    const bg = await https({ port: v.ports.https, path: '/api/x', headers: { Origin: 'https://app.example.com' } });
    assertEdge(bg, 502);
    assertAC(bg, want);
    assertVary(bg, 'Origin');
    // and a preflight for a path no route matches is still answered
    const p = await https({ port: v.ports.https, method: 'OPTIONS', path: '/nowhere', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(p.status, 204);
  });

  it('a preflight needs no token and never reaches the upstream; the 401 of the actual request carries CORS headers', T, async (t) => {
    const key = jwtKey();
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection({ credentials: true })}${key.yaml}routes:\n  - path: /api/\n    auth: required\n`));
    const p = await https({
      port: v.ports.https,
      method: 'OPTIONS',
      path: '/api/users',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'DELETE', 'Access-Control-Request-Headers': 'authorization' },
    });
    assert.equal(p.status, 204);
    assert.deepEqual(p.all('WWW-Authenticate'), []);
    assert.equal(up.requests.length, 0);
    const r = await https({ port: v.ports.https, method: 'DELETE', path: '/api/users/1', headers: { Origin: 'https://app.example.com' } });
    if (r.status !== 401) t.skip('the jwt filter does not refuse yet');
    assertEdge(r, 401);
    // the page can read WWW-Authenticate (no token vs an invalid one): exposed by default
    assertAC(r, { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'X-Request-Id, WWW-Authenticate' });
    assertVary(r, 'Origin');
    // with a token the request goes through, with the same headers
    const ok = await https({ port: v.ports.https, path: '/api/users/1', headers: { Origin: 'https://app.example.com', Authorization: `Bearer ${key.sign()}` } });
    assert.equal(ok.status, 200);
    assertAC(ok, { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'X-Request-Id' });
    assert.equal(up.requests.length, 1);
  });

  it('a 429 from a rate limit carries the CORS headers (the page can read Retry-After)', T, async (t) => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection({ credentials: true, expose: ['X-Request-Id', 'Retry-After'] })}rate_limits:
  tight: { limit: 1, window: 60s, key: ip }
routes:
  - path: /
    rate_limits: [tight]
`));
    const get = () => https({ port: v.ports.https, path: '/rl', headers: { Origin: 'https://app.example.com' } });
    assert.equal((await get()).status, 200);
    const r = await get();
    if (r.status !== 429) t.skip('the rate-limit filter does not refuse yet');
    assertEdge(r, 429);
    // Retry-After (listed) and the RateLimit headers visor sends (exposed by default)
    assertAC(r, { 'Access-Control-Allow-Origin': 'https://app.example.com', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'X-Request-Id, Retry-After, RateLimit-Policy, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset' });
    assertVary(r, 'Origin');
    assert.equal(r.all('Retry-After').length, 1);
    // a preflight is not counted against the limit
    const p = await https({ port: v.ports.https, method: 'OPTIONS', path: '/rl', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT' } });
    assert.equal(p.status, 204);
  });

  it('a disallowed origin is refused before the token is looked at (403, not 401)', T, async () => {
    const key = jwtKey();
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection()}${key.yaml}routes:\n  - path: /\n    auth: required\n`));
    const r = await https({ port: v.ports.https, path: '/x', headers: { Origin: 'https://evil.example.net', Authorization: `Bearer ${key.sign()}` } });
    assertEdge(r, 403);
    assert.equal(up.requests.length, 0);
  });

  it('the plain listener: 301 without CORS headers', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}', extra: corsSection({ credentials: true }) }));
    const r = await http({ port: v.ports.http, path: '/x', headers: { Origin: 'https://app.example.com' } });
    assert.equal(r.status, 301);
    assertNoAC(r);
  });

  it('logs the refusal reason in the access log', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const r = await https({ port: v.ports.https, path: '/x', headers: { Origin: 'https://evil.example.net' } });
    const log = await v.accessLogFor(r.get('X-Request-Id'));
    assert.equal(log.status, 403);
    assert.match(log.reason, /cors/);
    const p = await https({ port: v.ports.https, method: 'OPTIONS', path: '/x', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT' } });
    const pl = await v.accessLogFor(p.get('X-Request-Id'));
    assert.equal(pl.status, 204);
    assert.match(pl.reason, /preflight/);
  });

  it('keeps working across a reload that changes the allowlist', T, async () => {
    const up = await startUpstream();
    const yaml = (origins) => policyYaml(up.addr, corsSection({ origins }));
    const v = await startVisor(yaml(['https://a.example.com']));
    const get = (o) => https({ port: v.ports.https, path: '/', headers: { Origin: o } });
    assert.equal((await get('https://a.example.com')).status, 200);
    assert.equal((await get('https://b.example.com')).status, 403);
    await v.writeConfig(yaml(['https://b.example.com']));
    v.hup();
    await v.waitForLog((j) => j && /reload/i.test(j.msg || '') && !/fail|invalid/i.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' }).catch(() => {});
    let b;
    for (let i = 0; i < 50; i++) {
      b = await get('https://b.example.com');
      if (b.status === 200) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(b.status, 200);
    assert.deepEqual(b.all('Access-Control-Allow-Origin'), ['https://b.example.com']);
    assert.equal((await get('https://a.example.com')).status, 403);
  });

  it('acHeaders helper sees lower-case names too', () => {
    assert.deepEqual(acHeaders({ rawHeaders: [['access-control-allow-origin', 'x'], ['Vary', 'Origin']] }), { 'access-control-allow-origin': ['x'] });
  });
});

