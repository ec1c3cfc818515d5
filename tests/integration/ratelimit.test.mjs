// Rate limits (issue 4; docs/rate-limits.md: `redis`, `rate_limits`, `rate_limit_headers`,
// the 429 and 503 answers): the sliding window, exactness across two visor instances
// sharing one Redis, one Redis round trip per request, the keys (ip, user, ip+user, header,
// trusted_proxies), `count: failures`, the header formats byte for byte as express-rate-limit
// 8.7.5 emits them (values captured from the real package, see docs/rate-limits.md), Redis
// outages under load with each on_error mode, passwords and ACL users, NOSCRIPT, and the
// in-memory store without a redis section.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, startRedis, https, http, keepAliveAgent, assertEdge, assertOne,
  cleanupAll, SLOW, delay, until, freePort, track,
} from './lib/harness.mjs';
import {
  redisOnPort, hs256, burst, tally, rlYaml, evalshaCalls, evalCalls, fcallCalls, startV,
} from './lib/rl-helpers.mjs';
import { tlsConnect } from './lib/clients.mjs';

const T = { timeout: 60000 * SLOW };

// An upstream that answers 200, or the status named in the path (/status/401).
function statusUpstream(extraHeaders = {}) {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const m = req.url.match(/\/status\/(\d{3})/);
      res.writeHead(m ? Number(m[1]) : 200, { 'Content-Type': 'application/json', ...extraHeaders });
      res.end('{"ok":true}');
    });
  });
}

const get = (v, p, headers = {}, agent) => https({ port: v.ports.https, path: p, headers, agent });

function secretFile() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'rl-jwt-'));
  track(`rl jwt dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = 'rl-test-secret-0123456789abcdefghijklmnop';
  const file = path.join(dir, 'hs256');
  fs.writeFileSync(file, secret);
  return { secret, file };
}

// ---- the window -------------------------------------------------------------------------------

for (const store of ['memory', 'redis']) {
  describe(`sliding window (${store} store)`, () => {
    afterEach(cleanupAll);

    it('admits `limit` per window, refuses the next with 429 + Retry-After, and slides', T, async () => {
      const up = await statusUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(rlYaml({
        upstream: up.addr,
        redis: redis && { url: redis.url },
        policies: 'api: { limit: 3, window: 2s, key: ip }',
        routes: '- path: /\n  rate_limits: [api]',
      }));
      const agent = keepAliveAgent();
      const r1 = await get(v, '/a', {}, agent);
      const t0 = Date.now();             // r1 was admitted before this
      assert.equal(r1.status, 200);
      assertOne(r1, 'RateLimit-Policy', '3;w=2');
      assertOne(r1, 'RateLimit-Limit', '3');
      assertOne(r1, 'RateLimit-Remaining', '2');
      assertOne(r1, 'RateLimit-Reset', '2');
      await delay(500 - (Date.now() - t0));
      const t1 = Date.now();
      assert.equal((await get(v, '/b', {}, agent)).status, 200);
      const r3 = await get(v, '/c', {}, agent);
      assert.equal(r3.status, 200);
      assertOne(r3, 'RateLimit-Remaining', '0');
      const r4 = await get(v, '/d', {}, agent);
      assertEdge(r4, 429);
      assertOne(r4, 'RateLimit-Remaining', '0');
      // the oldest admission (before t0) frees a slot within 2 s, about 1.5 s from now
      assertOne(r4, 'Retry-After', '2');
      assertOne(r4, 'RateLimit-Reset', '2');
      assert.equal(up.requests.length, 3, 'the refused request never reached the upstream');
      // just after t0 + 2 s: one slot free (t0's), the two from t1 still count
      await delay(t0 + 100 - Date.now() + 2000);
      const r5 = await get(v, '/e', {}, agent);
      assert.equal(r5.status, 200, 'the window slid past the first request');
      assertOne(r5, 'RateLimit-Remaining', '0');
      const r6 = await get(v, '/f', {}, agent);
      assertEdge(r6, 429);
      const wait = Number(r6.get('Retry-After'));
      assert.ok(wait >= 1 && wait <= Math.ceil((t1 + 2000 - Date.now() + 50) / 1000), `Retry-After ${wait}`);
      const m = await v.accessLogFor(r6.get('X-Request-Id'));
      assert.equal(m.status, 429);
      assert.equal(m.reason, 'rate limit');
    });

    it('a policy over 128 (buckets) admits exactly its limit in a burst', T, async () => {
      const up = await statusUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(rlYaml({
        upstream: up.addr,
        // a generous timeout: this is about the algorithm, not about on_error: local
        redis: redis && { url: redis.url, timeout: SLOW > 1 ? '30s' : '2s' },
        policies: 'big: { limit: 300, window: 60s, key: ip }',
        routes: '- path: /\n  rate_limits: [big]',
      }));
      const t = tally(await burst(v, 500, { sockets: 50 }));
      assert.deepEqual(t, { 200: 300, 429: 200 });
    });
  });
}

// ---- exactness across instances, one round trip ---------------------------------------------------

// Regression: a Redis check suspends the chain; when it resumed into a route with a body
// rule, the body that had come with the head sat in the input buffer with nobody to feed it,
// and the request was never answered.
describe('a Redis-limited route with a body rule', () => {
  afterEach(cleanupAll);

  it('a POST whose body arrives with its head is checked and answered, twice on one connection', T, async () => {
    const up = await startUpstream();
    const redis = await startRedis();
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: redis.url },
      policies: 'api: { limit: 100, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]\n  body: { max_size: 64k }',
    }));
    const agent = keepAliveAgent();
    for (const n of [1, 2]) {
      const body = JSON.stringify({ n, pad: 'x'.repeat(200) });
      const r = await https({ port: v.ports.https, method: 'POST', path: `/p${n}`, agent, body,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, timeoutMs: 5000 * SLOW });
      assert.equal(r.status, 200);
      assertOne(r, 'RateLimit-Remaining', String(100 - n));
      assert.equal(up.requests[n - 1].bodyLength, Buffer.byteLength(body));
    }
    assert.equal(up.connections >= 1, true);
  });
});

describe('one Redis shared by two visor instances', () => {
  afterEach(cleanupAll);

  it('1,000 concurrent requests against a limit of 100: exactly 100 pass, at most one EVALSHA each', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    const yaml = rlYaml({
      upstream: up.addr,
      redis: { url: redis.url, timeout: SLOW > 1 ? '30s' : '2s' },
      policies: 'api: { limit: 100, window: 60s, key: ip }\nwide: { limit: 1000000, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api, wide]',
    });
    const a = await startV(yaml);
    const b = await startV(yaml);
    const before = await evalshaCalls(redis);
    const statuses = await burst([a, b], 1000, { sockets: 100 });
    assert.deepEqual(tally(statuses), { 200: 100, 429: 900 });
    assert.equal(up.requests.length, 100);
    // one round trip per request at most: the checks a worker gets in one pass of its event
    // loop go to Redis as one EVALSHA (a batch)
    const calls = await evalshaCalls(redis) - before;
    assert.ok(calls >= 1 && calls <= 1000, `${calls} EVALSHA for 1,000 requests`);
    // the keys are namespaced and expire on their own
    const ttl = await redis.cmd('PTTL', 'visor:rl:api:{127.0.0.1}');
    assert.ok(ttl > 0 && ttl <= 60000, `PTTL ${ttl}`);
    const ttl2 = await redis.cmd('PTTL', 'visor:rl:wide:{127.0.0.1}');
    assert.ok(ttl2 > 0 && ttl2 <= 61000, `PTTL ${ttl2}`);
    assert.equal(await redis.cmd('TYPE', 'visor:rl:api:{127.0.0.1}'), 'list');
    assert.equal(await redis.cmd('TYPE', 'visor:rl:wide:{127.0.0.1}'), 'hash');
  });
});

// ---- keys -------------------------------------------------------------------------------------------

describe('keys', () => {
  afterEach(cleanupAll);

  it('key: user counts per JWT sub, anonymous requests fall back to the IP; ip+user splits both', T, async () => {
    const up = await statusUpstream();
    const { secret, file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      client: 'trusted_proxies: [127.0.0.1/32]',
      policies: 'peruser: { limit: 2, window: 60s, key: user }\nboth: { limit: 1, window: 60s, key: ip+user }',
      routes: '- path: /u/\n  auth: optional\n  rate_limits: [peruser]\n- path: /b/\n  auth: optional\n  rate_limits: [both]',
      extra: `jwt:\n  algorithms: [HS256]\n  keys:\n    - secret_file: ${file}\n`,
    }));
    const bearer = (sub) => ({ Authorization: `Bearer ${hs256(secret, { sub })}` });
    const st = async (p, h) => (await get(v, p, h)).status;
    assert.equal(await st('/u/1', bearer('alice')), 200);
    assert.equal(await st('/u/2', bearer('alice')), 200);
    assert.equal(await st('/u/3', bearer('alice')), 429);
    assert.equal(await st('/u/4', bearer('bob')), 200, 'another user has their own counter');
    assert.equal(await st('/u/5', bearer('bob')), 200);
    assert.equal(await st('/u/6', bearer('bob')), 429);
    assert.equal(await st('/u/7', {}), 200, 'anonymous: by IP');
    assert.equal(await st('/u/8', {}), 200);
    assert.equal(await st('/u/9', {}), 429);
    assert.equal(await st('/u/a', { 'X-Forwarded-For': '203.0.113.9' }), 200, 'another IP, anonymous');
    // ip+user: the same user from two addresses, and two users from one address
    assert.equal(await st('/b/1', { ...bearer('carol'), 'X-Forwarded-For': '198.51.100.1' }), 200);
    assert.equal(await st('/b/2', { ...bearer('carol'), 'X-Forwarded-For': '198.51.100.1' }), 429);
    assert.equal(await st('/b/3', { ...bearer('carol'), 'X-Forwarded-For': '198.51.100.2' }), 200);
    assert.equal(await st('/b/4', { ...bearer('dave'), 'X-Forwarded-For': '198.51.100.1' }), 200);
  });

  it('key: user in Redis is visor:rl:<policy>:{user:<sub>}', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    const { secret, file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: redis.url },
      policies: 'peruser: { limit: 5, window: 60s, key: user }',
      routes: '- path: /\n  auth: required\n  rate_limits: [peruser]',
      extra: `jwt:\n  algorithms: [HS256]\n  revocation: false\n  keys:\n    - secret_file: ${file}\n`,
    }));
    assert.equal((await get(v, '/x', { Authorization: `Bearer ${hs256(secret, { sub: 'alice' })}` })).status, 200);
    assert.equal(await redis.cmd('LLEN', 'visor:rl:peruser:{user:alice}'), 1);
  });

  it('key: header:<Name> counts per header value (hashed in the store); a missing header falls back to the IP', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: redis.url },
      policies: 'perkey: { limit: 2, window: 60s, key: "header:X-Api-Key" }',
      routes: '- path: /\n  rate_limits: [perkey]',
    }));
    const st = async (h) => (await get(v, '/k', h)).status;
    assert.deepEqual([await st({ 'X-Api-Key': 'k-one' }), await st({ 'x-api-key': 'k-one' }), await st({ 'X-Api-Key': 'k-one' })], [200, 200, 429]);
    assert.deepEqual([await st({ 'X-Api-Key': 'k-two' }), await st({ 'X-Api-Key': 'k-two' })], [200, 200]);
    assert.deepEqual([await st({}), await st({}), await st({})], [200, 200, 429]);
    const keys = String(await redis.cmd('KEYS', 'visor:rl:perkey:*'));
    assert.ok(!keys.includes('k-one'), 'API keys are not stored in clear');
    const n = await redis.cmd('EXISTS', 'visor:rl:perkey:{127.0.0.1}');
    assert.equal(n, 1);
  });

  it('X-Forwarded-For from an untrusted peer does not change the key; from a trusted proxy it does', T, async () => {
    const up = await statusUpstream();
    const policies = 'api: { limit: 2, window: 60s, key: ip }';
    const routes = '- path: /\n  rate_limits: [api]';
    const v = await startV(rlYaml({ upstream: up.addr, policies, routes }));
    const st = async (vv, xff) => (await get(vv, '/s', { 'X-Forwarded-For': xff })).status;
    assert.deepEqual([await st(v, '1.1.1.1'), await st(v, '2.2.2.2'), await st(v, '3.3.3.3')], [200, 200, 429],
      'spoofed addresses all count as the peer');
    const t = await startV(rlYaml({ upstream: up.addr, policies, routes, client: 'trusted_proxies: [127.0.0.1/32]' }));
    assert.deepEqual([await st(t, '1.1.1.1'), await st(t, '1.1.1.1'), await st(t, '1.1.1.1')], [200, 200, 429]);
    assert.equal(await st(t, '2.2.2.2'), 200, 'another client behind the proxy');
    assert.equal(await st(t, '9.9.9.9, 1.1.1.1'), 429, 'the right-most untrusted address is the client');
    // IPv6 clients are grouped by /56, as express-rate-limit does
    assert.equal(await st(t, '2001:db8:abcd:1201::1'), 200);
    assert.equal(await st(t, '2001:db8:abcd:12ff::2'), 200);
    assert.equal(await st(t, '2001:db8:abcd:1234::3'), 429, 'same /56');
    assert.equal(await st(t, '2001:db8:abcd:1300::1'), 200, 'another /56');
  });
});

// ---- count: failures ----------------------------------------------------------------------------------

describe('count: failures', () => {
  afterEach(cleanupAll);

  for (const store of ['memory', 'redis']) {
    it(`successes never consume; the 6th failed login in a minute gets 429 with Retry-After (${store})`, T, async () => {
      const up = await statusUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(rlYaml({
        upstream: up.addr,
        redis: redis && { url: redis.url },
        policies: 'login: { limit: 5, window: 60s, key: ip, count: failures }',
        routes: '- path: /api/auth/\n  auth: off\n  rate_limits: [login]',
      }));
      const agent = keepAliveAgent();
      for (let i = 0; i < 10; i++) {
        const r = await get(v, '/api/auth/login', {}, agent);
        assert.equal(r.status, 200);
        assertOne(r, 'RateLimit-Remaining', '4');
      }
      for (let i = 0; i < 5; i++) {
        const r = await get(v, '/api/auth/status/401', {}, agent);
        assert.equal(r.status, 401, `failure ${i + 1} reaches the upstream`);
        assertOne(r, 'RateLimit-Remaining', String(Math.max(0, 4 - i)));
        await delay(20);                  // the count is recorded after the answer
      }
      const before = up.requests.length;
      const r6 = await get(v, '/api/auth/status/401', {}, agent);
      assertEdge(r6, 429);
      const ra = Number(r6.get('Retry-After'));
      assert.ok(ra >= 59 && ra <= 60, `Retry-After ${ra}`);
      assert.equal(up.requests.length, before, 'refused at the edge');
      const ok = await get(v, '/api/auth/login', {}, agent);
      assertEdge(ok, 429);   // a success is refused too while the failures are at the limit
    });
  }
});

// ---- header formats, byte for byte -------------------------------------------------------------------

// Captured from express-rate-limit 8.7.5 (legacyHeaders: false, standardHeaders: <draft>),
// windowMs 60000, limit 100, first request from 127.0.0.1; and limit 1, second request.
const EXPRESS = {
  'draft-6': {
    first: [['RateLimit-Policy', '100;w=60'], ['RateLimit-Limit', '100'], ['RateLimit-Remaining', '99'], ['RateLimit-Reset', '60']],
    refused: [['RateLimit-Policy', '1;w=60'], ['RateLimit-Limit', '1'], ['RateLimit-Remaining', '0'], ['RateLimit-Reset', '60'], ['Retry-After', '60']],
  },
  'draft-7': {
    first: [['RateLimit-Policy', '100;w=60'], ['RateLimit', 'limit=100, remaining=99, reset=60']],
    refused: [['RateLimit-Policy', '1;w=60'], ['RateLimit', 'limit=1, remaining=0, reset=60'], ['Retry-After', '60']],
  },
  'draft-8': {
    first: [['RateLimit', '"100-in-1min"; r=99; t=60'], ['RateLimit-Policy', '"100-in-1min"; q=100; w=60; pk=:MTJjYTE3YjQ5YWYy:']],
    refused: [['RateLimit', '"1-in-1min"; r=0; t=60'], ['RateLimit-Policy', '"1-in-1min"; q=1; w=60; pk=:MTJjYTE3YjQ5YWYy:'], ['Retry-After', '60']],
  },
};
const RL_NAMES = /^(ratelimit|ratelimit-policy|ratelimit-limit|ratelimit-remaining|ratelimit-reset|x-ratelimit-limit|x-ratelimit-remaining|x-ratelimit-reset|retry-after)$/i;
const rlHeaders = (r) => r.rawHeaders.filter(([n]) => RL_NAMES.test(n));

describe('RateLimit headers as express-rate-limit 8 emits them', () => {
  afterEach(cleanupAll);

  for (const fmt of ['draft-6', 'draft-7', 'draft-8']) {
    it(`${fmt}: the first answer, and a 429, byte for byte`, T, async () => {
      // the upstream sends its own copies: visor's replace them
      const up = await statusUpstream({ 'RateLimit-Limit': '5', RateLimit: 'limit=5', 'RateLimit-Policy': '5;w=1' });
      const v = await startV(rlYaml({
        upstream: up.addr,
        headers: fmt,
        policies: 'api: { limit: 100, window: 60s, key: ip }\none: { limit: 1, window: 60s, key: ip }',
        routes: '- path: /one\n  rate_limits: [one]\n- path: /\n  rate_limits: [api]',
      }));
      const r = await get(v, '/x');
      assert.equal(r.status, 200);
      assert.deepEqual(rlHeaders(r), EXPRESS[fmt].first);
      assert.equal((await get(v, '/one')).status, 200);
      const z = await get(v, '/one');
      assertEdge(z, 429);
      assert.deepEqual(rlHeaders(z), EXPRESS[fmt].refused);
    });
  }

  it('legacy: X-RateLimit-Limit/Remaining and X-RateLimit-Reset in epoch seconds', T, async () => {
    const up = await statusUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      headers: 'legacy',
      policies: 'api: { limit: 100, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    const t = Date.now();
    const r = await get(v, '/x');
    const h = rlHeaders(r);
    assert.deepEqual(h.slice(0, 2), [['X-RateLimit-Limit', '100'], ['X-RateLimit-Remaining', '99']]);
    assert.equal(h[2][0], 'X-RateLimit-Reset');
    const reset = Number(h[2][1]);
    assert.ok(reset >= Math.ceil((t + 60000) / 1000) && reset <= Math.ceil((Date.now() + 60000) / 1000), `reset ${reset}`);
  });

  it('off: no RateLimit headers, still a 429 with Retry-After', T, async () => {
    const up = await statusUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      headers: 'off',
      policies: 'one: { limit: 1, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [one]',
    }));
    assert.deepEqual(rlHeaders(await get(v, '/x')), []);
    const z = await get(v, '/x');
    assertEdge(z, 429);
    assert.deepEqual(rlHeaders(z), [['Retry-After', '60']]);
  });

  it('the most restrictive policy is reported, on proxied answers and on upstream errors alike', T, async () => {
    const up = await statusUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      policies: 'api: { limit: 100, window: 60s, key: ip }\ntight: { limit: 3, window: 10s, key: ip }',
      routes: '- path: /\n  rate_limits: [api, tight]',
    }));
    const r = await get(v, '/status/404');
    assert.equal(r.status, 404);
    assert.deepEqual(rlHeaders(r), [['RateLimit-Policy', '3;w=10'], ['RateLimit-Limit', '3'], ['RateLimit-Remaining', '2'], ['RateLimit-Reset', '10']]);
    const m = await get(v, '/status/500');
    assert.equal(m.status, 500);
    assertOne(m, 'RateLimit-Remaining', '1');
  });

  it('counts 429s in visor_rate_limited_total', T, async () => {
    const up = await statusUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      listen: 'admin: {{ADMIN}}',
      policies: 'one: { limit: 1, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [one]',
    }));
    await get(v, '/x');
    await get(v, '/x');
    await get(v, '/x');
    const m = await http({ port: v.ports.admin, path: '/metrics' });
    assert.match(m.text, /^visor_rate_limited_total 2$/m);
  });
});

// ---- Redis trouble ---------------------------------------------------------------------------------

// Keeps `conc` requests in flight against v until stop(); returns [{t, status}].
function load(v, conc = 16) {
  const out = [];
  let running = true;
  const agent = keepAliveAgent({ maxSockets: conc });
  const one = async () => {
    while (running) {
      const t = Date.now();
      const s = await https({ port: v.ports.https, path: '/load', agent, timeoutMs: 5000 }).then((r) => r.status, () => 0);
      out.push({ t, done: Date.now(), status: s });
    }
  };
  const workers = Array.from({ length: conc }, one);
  const stop = async () => {
    running = false;
    await Promise.all(workers);
    return out;
  };
  // a test that fails half-way must not leave the loop running
  const untrack = track('load', async () => {
    untrack();
    await stop();
  });
  return { out, stop };
}

// A Node upstream, a redis-server on its own port (so it can be paused), and visor limiting
// every path with one policy `api` through it.
async function redisTrouble({ timeout, onError, limit, workers }) {
  const up = await statusUpstream();
  const redis = await redisOnPort(await freePort());
  const v = await startV(rlYaml({
    upstream: up.addr,
    ...(workers ? { workers } : {}),
    redis: { url: redis.url, timeout, onError },
    policies: `api: { limit: ${limit}, window: 60s, key: ip }`,
    routes: '- path: /\n  rate_limits: [api]',
  }));
  return { up, redis, v };
}

describe('Redis killed mid-test under load', () => {
  afterEach(cleanupAll);

  for (const mode of ['local', 'open', 'closed']) {
    it(`on_error: ${mode} — no 5xx but the configured 503, no hung request, recovery within a second`, T, async () => {
      const up = await statusUpstream();
      const port = await freePort();
      let redis = await redisOnPort(port);
      const v = await startV(rlYaml({
        upstream: up.addr,
        listen: 'admin: {{ADMIN}}',
        redis: { url: redis.url, timeout: '50ms', onError: mode },
        policies: 'api: { limit: 1000000, window: 60s, key: ip }',
        routes: '- path: /\n  rate_limits: [api]',
      }));
      const ready = async () => (await http({ port: v.ports.admin, path: '/readyz' })).status;
      assert.equal(await ready(), 200);
      const l = load(v);
      await delay(400);
      await redis.kill('SIGKILL');
      const tDown = Date.now();
      if (mode === 'closed') await until(async () => (await ready()) === 503, 1000 * SLOW, '/readyz 503 while Redis is down');
      else assert.equal(await ready(), 200);
      await delay(tDown + 1000 - Date.now());
      redis = await redisOnPort(port);
      const tUp = Date.now();
      // counting resumes in Redis within a second
      await until(async () => (await evalshaCalls(redis)) > 0, 1000 * SLOW, 'EVALSHA on the new Redis');
      await delay(500);
      const out = await l.stop();
      const by = tally(out.map((x) => x.status));
      const during = out.filter((x) => x.t > tDown + 200 * SLOW && x.done < tUp);
      assert.ok(out.length > 100 / SLOW, `enough load: ${out.length}`);
      assert.equal(by[0] || 0, 0, 'no failed or hung request');
      const slow = out.filter((x) => x.done - x.t > 2000 * SLOW);
      assert.equal(slow.length, 0, 'no request waited on Redis');
      if (mode === 'closed') {
        assert.deepEqual(Object.keys(by).sort(), ['200', '503']);
        assert.ok((during.length > 0 || SLOW > 1) && during.every((x) => x.status === 503), `closed: 503 while Redis is away (${JSON.stringify(tally(during.map((x) => x.status)))})`);
        const last503 = Math.max(...out.filter((x) => x.status === 503).map((x) => x.done));
        assert.ok(last503 - tUp < 1000 * SLOW, `recovered ${last503 - tUp} ms after Redis came back`);
        assert.equal(await ready(), 200, '/readyz once Redis is back');
      } else {
        assert.deepEqual(Object.keys(by), ['200'], `${mode}: only 200s (${JSON.stringify(by)})`);
      }
      if (mode === 'local') {
        // the memory store was answering (headers present) while Redis was away
        const r = await get(v, '/x');
        assertOne(r, 'RateLimit-Limit', '1000000');
      }
      const lost = v.stderrJson.filter((j) => /redis .*(connection lost|cannot connect)/.test(j.msg || ''));
      assert.ok(lost.length >= 1, 'the outage is logged');
      assert.ok(v.stderrJson.filter((j) => /redis .*connected/.test(j.msg || '')).length >= 2, 'the recovery is logged');
    });
  }

  it('a stalled Redis (SIGSTOP) times out at redis.timeout; on_error: local keeps limiting from memory', T, async () => {
    const { redis, v } = await redisTrouble({ timeout: '100ms', onError: 'local', limit: 3 });
    assert.equal((await get(v, '/a')).status, 200);
    const calls0 = await evalshaCalls(redis);
    redis.pause();
    const t = Date.now();
    const st = [];
    for (let i = 0; i < 5; i++) st.push((await get(v, '/b')).status);
    assert.ok(Date.now() - t < 2000 * SLOW, `answered without waiting on Redis (${Date.now() - t} ms)`);
    assert.deepEqual(st, [200, 200, 200, 429, 429], 'the memory store enforces the limit meanwhile');
    redis.resume();
    // the commands that timed out may still run once Redis wakes up; a new request is
    // counted in Redis again
    await until(async () => {
      const before = await evalshaCalls(redis);
      await get(v, '/c');
      return (await evalshaCalls(redis)) > before;
    }, 3000 * SLOW, 'Redis counting again');
    assert.ok(await evalshaCalls(redis) > calls0);
    // a stall shorter than a second costs the commands it delayed, not the connection
    if (SLOW === 1) {
      assert.equal(v.stderrJson.filter((j) => /connection lost/.test(j.msg || '')).length, 0,
        'the connection was kept');
    }
  });

  it('a stall longer than a second replaces the connection; counting resumes within a second of Redis waking', T, async () => {
    const { redis, v } = await redisTrouble({ timeout: '50ms', onError: 'closed', limit: 1000 });
    const agent = keepAliveAgent();
    assert.equal((await get(v, '/a', {}, agent)).status, 200);
    redis.pause();
    const t0 = Date.now();
    const st = [];
    while (Date.now() - t0 < 1600 * SLOW) st.push((await get(v, '/b', {}, agent)).status);
    assert.deepEqual([...new Set(st)], [503], 'closed: 503 while Redis is silent');
    await v.waitForLog((j) => j && /no reply for \d+ ms/.test(j.msg || ''), 2000 * SLOW, { stream: 'stderr' });
    redis.resume();
    const tUp = Date.now();
    await until(async () => (await get(v, '/c', {}, agent)).status === 200, 3000 * SLOW, 'recovery');
    assert.ok(Date.now() - tUp < 1000 * SLOW, `recovered ${Date.now() - tUp} ms after Redis woke`);
  });

  it('on_error: closed answers 503 while Redis stalls, without hanging', T, async () => {
    const { redis, v } = await redisTrouble({ timeout: '50ms', onError: 'closed', limit: 100 });
    assert.equal((await get(v, '/a')).status, 200);
    redis.pause();
    const t = Date.now();
    const r = await get(v, '/b');
    assertEdge(r, 503);
    assert.ok(Date.now() - t < 1500 * SLOW, `503 after ${Date.now() - t} ms`);
    redis.resume();
    await until(async () => (await get(v, '/c')).status === 200, 3000 * SLOW, 'recovery');
    if (SLOW === 1) {
      assert.equal(v.stderrJson.filter((j) => /connection lost/.test(j.msg || '')).length, 0,
        'a short stall fails the late command, not the connection');
    }
  });
});

describe('batches', () => {
  afterEach(cleanupAll);

  it('clients that leave while their check is in a batch in flight do not disturb the others', T, async () => {
    const { redis, v } = await redisTrouble({ timeout: '5s', onError: 'closed', limit: 1000, workers: 1 });
    assert.equal((await get(v, '/a')).status, 200);
    redis.pause();
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(await tlsConnect(v.ports.https));
    const replies = socks.map((s) => new Promise((resolve) => {
      let b = '';
      s.on('data', (d) => (b += d.toString('latin1')));
      s.on('close', () => resolve(b));
      s.on('error', () => {});
    }));
    for (const s of socks) s.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    await delay(300 * SLOW);
    for (let i = 0; i < 20; i += 2) socks[i].destroy();
    await delay(300 * SLOW);
    redis.resume();
    const out = await Promise.all(replies);
    for (let i = 1; i < 20; i += 2) assert.match(out[i], /^HTTP\/1\.1 200 /, `request ${i}`);
    assert.equal((await get(v, '/y')).status, 200, 'visor goes on');
    await until(async () => v.accessLogs().length >= 22, 3000 * SLOW, 'every request logged');
    // A FIN after a complete request is a half-close, not an abort (docs/architecture.md):
    // the answer is still produced, and written into a closed socket without harm.
    const st = tally(v.accessLogs().map((j) => j.status));
    assert.equal((st[200] || 0) + (st[499] || 0), 22, `only 200s (or 499s) (${JSON.stringify(st)})`);
  });
});

describe('Redis connection details', () => {
  afterEach(cleanupAll);

  it('password (requirepass) and db from the URL', T, async () => {
    const up = await statusUpstream();
    const port = await freePort();
    const redis = await redisOnPort(port, ['--requirepass', 's3cr3t'], { password: 's3cr3t' });
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: `redis://:s3cr3t@127.0.0.1:${port}/3`, onError: 'closed' },
      policies: 'api: { limit: 2, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    assert.deepEqual([(await get(v, '/a')).status, (await get(v, '/a')).status, (await get(v, '/a')).status], [200, 200, 429]);
    assert.match(String(await redis.cmd('INFO', 'keyspace')), /db3:keys=1/);
  });

  it('an ACL user (redis://user:password@host)', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    await redis.cmd('ACL', 'SETUSER', 'visor', 'on', '>pw-visor', '~visor:*', '+@all');
    await redis.cmd('ACL', 'SETUSER', 'default', 'off');
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: `redis://visor:pw-visor@127.0.0.1:${redis.port}/0`, onError: 'closed' },
      policies: 'api: { limit: 1, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    assert.equal((await get(v, '/a')).status, 200);
    assert.equal((await get(v, '/a')).status, 429);
  });

  it('a wrong password is logged (never the password) and on_error: local serves from memory', T, async () => {
    const up = await statusUpstream();
    const port = await freePort();
    await redisOnPort(port, ['--requirepass', 'right'], { password: 'right' });
    const v = await startVisor(rlYaml({
      upstream: up.addr,
      redis: { url: `redis://:wrong-pw@127.0.0.1:${port}/0`, onError: 'local' },
      policies: 'api: { limit: 2, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    await v.waitForLog((j) => j && /handshake refused/.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
    assert.deepEqual([(await get(v, '/a')).status, (await get(v, '/a')).status, (await get(v, '/a')).status], [200, 200, 429]);
    assert.ok(!v.stderr.join('\n').includes('wrong-pw'));
  });

  it('NOSCRIPT after SCRIPT FLUSH (a Redis without FUNCTION: EVALSHA): the script is sent again and the count goes on exactly', T, async () => {
    const up = await statusUpstream();
    // FUNCTION renamed away: the "unknown command" a Redis 6 answers
    const redis = await startRedis({ extraArgs: ['--rename-command', 'FUNCTION', ''] });
    const v = await startV(rlYaml({
      upstream: up.addr,
      workers: 1,
      redis: { url: redis.url, onError: 'closed' },
      policies: 'api: { limit: 5, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    const agent = keepAliveAgent();
    for (let i = 0; i < 3; i++) assert.equal((await get(v, '/a', {}, agent)).status, 200);
    assert.equal(await fcallCalls(redis), 0);
    assert.equal(await evalshaCalls(redis), 3, 'EVALSHA, one per request');
    assert.equal(v.stderrJson.filter((j) => /FUNCTION LOAD refused \(ERR unknown command.*goes by EVALSHA/.test(j.msg || '')).length, 1);
    assert.equal(await redis.cmd('SCRIPT', 'FLUSH'), 'OK');
    const r4 = await get(v, '/a', {}, agent);
    assert.equal(r4.status, 200);
    assertOne(r4, 'RateLimit-Remaining', '1');
    assert.equal(await evalCalls(redis), 1, 'one EVAL put the script back');
    assertOne(await get(v, '/a', {}, agent), 'RateLimit-Remaining', '0');
    assertEdge(await get(v, '/a', {}, agent), 429);
    assert.equal(await evalCalls(redis), 1, 'then EVALSHA again');
  });

  it('"Function not found" after FUNCTION FLUSH: the library is loaded again, one EVAL, and the count goes on exactly', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    const v = await startV(rlYaml({
      upstream: up.addr,
      workers: 1,
      redis: { url: redis.url, onError: 'closed' },
      policies: 'api: { limit: 5, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    const loads = async () => Number((String(await redis.cmd('INFO', 'commandstats')).match(/cmdstat_function\|load:calls=(\d+)/) || [0, 0])[1]);
    const agent = keepAliveAgent();
    for (let i = 0; i < 3; i++) assert.equal((await get(v, '/a', {}, agent)).status, 200);
    assert.equal(await fcallCalls(redis), 3, 'FCALL, one per request');
    assert.equal(await evalshaCalls(redis), 3, 'and no EVALSHA');
    assert.equal(await loads(), 1, 'the library, loaded at connect');
    assert.match(String(await redis.cmd('FUNCTION', 'LIST')), /visor_[0-9a-f]{40}/);
    assert.equal(await redis.cmd('FUNCTION', 'FLUSH'), 'OK');
    const r4 = await get(v, '/a', {}, agent);
    assert.equal(r4.status, 200);
    assertOne(r4, 'RateLimit-Remaining', '1');
    assert.equal(await evalCalls(redis), 1, 'that call went again as EVAL');
    assert.equal(await loads(), 2, 'and the library was loaded again');
    assertOne(await get(v, '/a', {}, agent), 'RateLimit-Remaining', '0');
    assertEdge(await get(v, '/a', {}, agent), 429);
    assert.equal(await evalCalls(redis), 1, 'then FCALL again');
    assert.equal(await fcallCalls(redis), 6);
    assert.equal(v.stderrJson.filter((j) => /Function not found/.test(j.msg || '')).length, 1);
  });

  it('an ACL user without FUNCTION (as some managed services): the script goes by EVALSHA, limits exact', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    await redis.cmd('ACL', 'SETUSER', 'visor', 'on', '>pw-visor', '~visor:*', '+@all', '-function');
    const v = await startV(rlYaml({
      upstream: up.addr,
      redis: { url: `redis://visor:pw-visor@127.0.0.1:${redis.port}/0`, onError: 'closed' },
      policies: 'api: { limit: 2, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
    }));
    assert.deepEqual([(await get(v, '/a')).status, (await get(v, '/a')).status, (await get(v, '/a')).status], [200, 200, 429]);
    assert.equal(await fcallCalls(redis), 0);
    assert.equal(await evalshaCalls(redis), 3);
    // each worker says it once
    assert.equal(v.stderrJson.filter((j) => /FUNCTION LOAD refused \(NOPERM/.test(j.msg || '')).length, 2);
  });
});

describe('reload', () => {
  afterEach(cleanupAll);

  it('SIGHUP: new limits apply to new requests, the Redis connection is kept; a redis section removed falls back to memory', T, async () => {
    const up = await statusUpstream();
    const redis = await startRedis();
    const yaml = (limit, withRedis = true) => rlYaml({
      upstream: up.addr,
      workers: 1,
      redis: withRedis && { url: redis.url, onError: 'closed' },
      policies: `api: { limit: ${limit}, window: 60s, key: ip }`,
      routes: '- path: /\n  rate_limits: [api]',
    });
    const v = await startV(yaml(2));
    const agent = keepAliveAgent();
    assertOne(await get(v, '/a', {}, agent), 'RateLimit-Limit', '2');
    await v.writeConfig(yaml(5));
    v.hup();
    await until(async () => (await get(v, '/b', {}, agent)).get('RateLimit-Limit') === '5', 3000 * SLOW, 'the new limit');
    assert.equal(await redis.cmd('LLEN', 'visor:rl:api:{127.0.0.1}') >= 2, true, 'the same counter goes on');
    const connected = v.stderrJson.filter((j) => /redis .*connected/.test(j.msg || ''));
    assert.equal(connected.length, 1, 'no reconnect for a reload that keeps the URL');
    await v.writeConfig(yaml(7, false));
    v.hup();
    await until(async () => (await get(v, '/c', {}, agent)).get('RateLimit-Limit') === '7', 3000 * SLOW, 'memory store');
    const n = await redis.cmd('LLEN', 'visor:rl:api:{127.0.0.1}');
    assert.equal((await get(v, '/d', {}, agent)).status, 200);
    assert.equal(await redis.cmd('LLEN', 'visor:rl:api:{127.0.0.1}'), n, 'no longer counted in Redis');
  });
});
