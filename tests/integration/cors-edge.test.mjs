// CORS on every answer a browser page can meet (docs/cors.md): answers visor makes before any
// route is known (400, 408, 413, 431) carry the CORS headers for an allowed Origin, none for
// another; what visor sends that a page needs to read (WWW-Authenticate, Retry-After,
// RateLimit) is exposed; a WebSocket from an origin not allowed is refused whatever
// on_disallowed says; a preflight refused for a header names it, and the key, in the log.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import {
  startVisor, startUpstream, https, rawTls, rawConnect, hasResponses, parseResponses, minimalYaml,
  cleanupAll, track, delay, SLOW,
} from './lib/harness.mjs';
import { policyYaml, corsSection, jwtKey } from './lib/policy-helpers.mjs';

const T = { timeout: 30000 * SLOW };
const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

function acOf(r) {
  const o = {};
  for (const [n, vals] of Object.entries(r.headers)) {
    if (n.startsWith('access-control-')) o[n] = vals;
  }
  return o;
}

// The first answer of a raw exchange as { status, headers: name → [values], body }.
function first(res) {
  const [r] = res.responses();
  assert.ok(r, `an answer (${res.text.slice(0, 200)})`);
  const headers = {};
  for (const [n, v] of r.rawHeaders) (headers[n.toLowerCase()] ||= []).push(v);
  return { status: r.status, headers, text: r.text };
}

function assertCorsFor(r, origin, credentials = true) {
  const want = {
    'access-control-allow-origin': [origin],
    'access-control-expose-headers': ['X-Request-Id'],
  };
  if (credentials) want['access-control-allow-credentials'] = ['true'];
  assert.deepEqual(acOf(r), want);
  assert.ok((r.headers.vary || []).join(',').includes('Origin'), 'Vary: Origin');
}

describe('answers made before routing carry CORS for an allowed Origin', () => {
  afterEach(cleanupAll);

  const yaml = (up, extra = '') => policyYaml(up.addr, `${corsSection({ credentials: true })}${extra}`, {
    client: 'max_body_size: 1k\nmax_header_size: 2k\nidle_timeout: 1s',
  });
  const H = (origin) => `Host: localhost\r\nOrigin: ${origin}\r\n`;

  for (const [origin, allowed] of [[APP, true], [EVIL, false]]) {
    const who = allowed ? 'allowed' : 'other';
    it(`400 (malformed head), ${who} Origin`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(yaml(up));
      const r = first(await rawTls(v.ports.https, `GET /x HTTP/1.1\r\n${H(origin)}Host: two\r\n\r\n`, { timeoutMs: 2000 * SLOW }));
      assert.equal(r.status, 400);
      if (allowed) assertCorsFor(r, APP);
      else assert.deepEqual(acOf(r), {});
      assert.equal(up.requests.length, 0);
    });

    it(`413 (Content-Length over max_body_size), ${who} Origin`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(yaml(up));
      const r = first(await rawTls(v.ports.https, `POST /up HTTP/1.1\r\n${H(origin)}Content-Length: 5000\r\n\r\n`, { timeoutMs: 2000 * SLOW }));
      assert.equal(r.status, 413);
      if (allowed) assertCorsFor(r, APP);
      else assert.deepEqual(acOf(r), {});
    });

    it(`431 (head over max_header_size), ${who} Origin`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(yaml(up));
      const r = first(await rawTls(v.ports.https, `GET /x HTTP/1.1\r\n${H(origin)}X-Big: ${'a'.repeat(3000)}\r\n\r\n`, { timeoutMs: 2000 * SLOW }));
      assert.equal(r.status, 431);
      // the head was cut before it could be read: no Origin is known, so no CORS header at all
      assert.deepEqual(acOf(r), {});
    });

    it(`408 (body too slow), ${who} Origin`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(yaml(up));
      const r = first(await rawTls(v.ports.https, [`POST /slow HTTP/1.1\r\n${H(origin)}Content-Length: 10\r\n\r\nabc`], { timeoutMs: 4000 * SLOW }));
      if (allowed) {
        assert.equal(r.status, 408);
        assertCorsFor(r, APP);
      } else {
        assert.equal(r.status, 403, 'an origin not allowed is refused before its body is read');
        assert.deepEqual(acOf(r), {});
      }
    });
  }

  it('a route body.max_size 413 after a successful preflight carries CORS (the page reads "too large")', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection({ credentials: true })}routes:\n  - path: /upload\n    body: { max_size: 100 }\n  - path: /\n`));
    const pre = await https({ port: v.ports.https, method: 'OPTIONS', path: '/upload', headers: { Origin: APP, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' } });
    assert.equal(pre.status, 204);
    const r = await https({ port: v.ports.https, method: 'PUT', path: '/upload', body: JSON.stringify({ pad: 'x'.repeat(300) }), headers: { Origin: APP, 'Content-Type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.equal(r.get('Access-Control-Allow-Origin'), APP);
    assert.equal(r.get('Access-Control-Allow-Credentials'), 'true');
    assert.equal(r.get('Access-Control-Expose-Headers'), 'X-Request-Id');
    assert.deepEqual(JSON.parse(r.text).error, 'Payload too large');
  });
});

describe('headers a browser page needs are exposed whenever visor sends them', () => {
  afterEach(cleanupAll);

  it('401 exposes WWW-Authenticate; 429 exposes Retry-After and the RateLimit headers; cors.expose adds to the set', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection({ expose: ['X-Request-Id', 'X-Trace'] })}jwt:
  algorithms: [HS256]
  keys: [ { secret: "0123456789abcdef0123456789abcdef" } ]
rate_limits:
  one: { limit: 1, window: 60s, key: ip }
routes:
  - path: /private
    auth: required
  - path: /
    auth: off
    rate_limits: [one]
`));
    const a = await https({ port: v.ports.https, path: '/private', headers: { Origin: APP } });
    assert.equal(a.status, 401);
    assert.equal(a.get('Access-Control-Expose-Headers'), 'X-Request-Id, X-Trace, WWW-Authenticate');
    const ok = await https({ port: v.ports.https, path: '/open', headers: { Origin: APP } });
    assert.equal(ok.status, 200);
    assert.equal(ok.get('Access-Control-Expose-Headers'), 'X-Request-Id, X-Trace, RateLimit-Policy, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset');
    const no = await https({ port: v.ports.https, path: '/open', headers: { Origin: APP } });
    assert.equal(no.status, 429);
    assert.equal(no.get('Access-Control-Expose-Headers'), 'X-Request-Id, X-Trace, Retry-After, RateLimit-Policy, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset');
  });
});

// ---- WebSocket ---------------------------------------------------------------------------

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = crypto.createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

async function wsUpstream() {
  let upgrades = 0;
  const srv = http.createServer((req, res) => { res.writeHead(404); res.end(); });
  srv.on('upgrade', (req, sock) => {
    upgrades++;
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`);
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => {});
  });
  const sockets = new Set();
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  track(`ws upstream ${srv.address().port}`, async () => { for (const s of sockets) s.destroy(); await new Promise((r) => srv.close(r)); });
  return { addr: `127.0.0.1:${srv.address().port}`, upgrades: () => upgrades };
}

async function upgrade(v, origin, cookie = 'session=s3cret') {
  const c = await rawConnect(v.ports.https);
  const o = origin === null ? '' : `Origin: ${origin}\r\n`;
  const k = cookie === null ? '' : `Cookie: ${cookie}\r\n`;
  await c.write(`GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${o}${k}\r\n`);
  const data = await c.waitFor((b) => b.includes('\r\n\r\n'), 5000 * SLOW, 'the answer to the upgrade');
  c.destroy();
  return Number(data.toString('latin1').split(' ')[1]);
}

describe('WebSocket Origin check', () => {
  afterEach(cleanupAll);

  for (const mode of ['reject', 'omit']) {
    it(`cors.on_disallowed: ${mode} — a foreign Origin is refused 403 and never reaches the app; allowed and same-origin upgrade`, T, async () => {
      const up = await wsUpstream();
      const v = await startVisor(policyYaml(up.addr, corsSection({ onDisallowed: mode })));
      assert.equal(await upgrade(v, EVIL), 403);
      assert.equal(up.upgrades(), 0, 'the upgrade never reached the app');
      assert.equal(await upgrade(v, APP), 101);
      assert.equal(await upgrade(v, 'https://localhost'), 101);
      assert.equal(await upgrade(v, null), 101, 'no Origin: not a browser');
      assert.equal(up.upgrades(), 3);
    });
  }

  it('websocket.origins widens the list for upgrades only', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(policyYaml(up.addr, `${corsSection()}websocket:\n  origins: [https://chat.example.com]\n`));
    assert.equal(await upgrade(v, 'https://chat.example.com'), 101);
    const r = await https({ port: v.ports.https, path: '/x', headers: { Origin: 'https://chat.example.com' } });
    assert.equal(r.status, 403, 'not a CORS origin for ordinary requests');
    assert.equal(await upgrade(v, EVIL), 403);
  });

  it('a websocket section alone checks upgrades and adds no CORS headers', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(policyYaml(up.addr, 'websocket:\n  origins: [https://chat.example.com]\n'));
    assert.equal(await upgrade(v, EVIL), 403);
    assert.equal(await upgrade(v, 'https://chat.example.com'), 101);
    const r = await https({ port: v.ports.https, path: '/x', headers: { Origin: EVIL } });
    assert.equal(r.status, 404, 'ordinary requests pass as without cors (no route in this config: 404)');
    assert.equal(r.get('Access-Control-Allow-Origin'), undefined);
  });

  it('auth: required on a browser WebSocket reads the token from jwt.cookie (docs/routes.md)', T, async () => {
    const up = await wsUpstream();
    const key = jwtKey();
    const v = await startVisor(policyYaml(up.addr, `${corsSection()}${key.yaml}  cookie: access_token\n` +
      'routes:\n  - path: /ws\n    auth: required\n  - path: /\n    auth: off\n'));
    assert.equal(await upgrade(v, APP, null), 401, 'no cookie: no token');
    assert.equal(await upgrade(v, APP, 'access_token=not.a.jwt'), 401);
    assert.equal(up.upgrades(), 0);
    assert.equal(await upgrade(v, APP, `theme=dark; access_token=${key.sign()}`), 101);
    assert.equal(await upgrade(v, EVIL, `access_token=${key.sign()}`), 403, 'a valid cookie from a foreign page is still refused');
    assert.equal(up.upgrades(), 1);
  });
});

describe('a preflight refused for a header or method', () => {
  afterEach(cleanupAll);

  it('names what was refused and the key that allows it, once a minute per name', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(policyYaml(up.addr, corsSection()));
    const pre = (h) => https({ port: v.ports.https, method: 'OPTIONS', path: '/x', headers: { Origin: APP, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': h } });
    for (let i = 0; i < 3; i++) assert.equal((await pre('content-type, x-requested-with')).status, 403);
    assert.equal((await pre('x-csrf-token')).status, 403);
    const m = await https({ port: v.ports.https, method: 'OPTIONS', path: '/x', headers: { Origin: APP, 'Access-Control-Request-Method': 'PURGE' } });
    assert.equal(m.status, 403);
    await v.waitForLog((j) => j && /'x-csrf-token'/.test(j.msg || ''), 5000 * SLOW);
    await v.waitForLog((j) => j && /method 'PURGE'/.test(j.msg || ''), 5000 * SLOW);
    await delay(200);
    const lines = v.stderrJson.filter((j) => /^cors: a preflight/.test(j.msg || ''));
    const xrw = lines.filter((j) => j.msg.includes("'x-requested-with'"));
    assert.equal(xrw.length, 1, 'once a minute per header');
    assert.match(xrw[0].msg, /header 'x-requested-with', which cors\.headers does not list.*add it to cors\.headers/);
    assert.equal(xrw[0].level, 'warn');
    assert.match(lines.find((j) => j.msg.includes('PURGE')).msg, /cors\.methods/);
  });
});
