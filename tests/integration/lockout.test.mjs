// Login lockout (issue 4; docs/rate-limits.md, "Lockout"):
// `after` failures allowed, then locked for `base`, doubling per further failure up to `max`,
// reset by a success; the account from a JSON or form body, lower-cased and trimmed, stored
// only as a SHA-256; locked attempts answered 429 with Retry-After at the edge.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startVisor, startUpstream, startRedis, https, http, assertEdge, cleanupAll, SLOW, delay,
} from './lib/harness.mjs';
import { rlYaml, startV } from './lib/rl-helpers.mjs';

const T = { timeout: 60000 * SLOW };

// The login: 200 when the password is "right", else 401. Reads JSON and form bodies.
function loginUpstream() {
  return startUpstream((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      let pw;
      try {
        pw = (req.headers['content-type'] || '').includes('json') ? JSON.parse(b).password
          : new URLSearchParams(b).get('password');
      } catch {
        pw = undefined;
      }
      res.writeHead(pw === 'right' ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(pw === 'right' ? '{"token":"t"}' : '{"error":"bad credentials"}');
    });
  });
}

function lockYaml(up, { redis, after = 5, base = '2s', max = '15m', extra = '' } = {}) {
  return rlYaml({
    upstream: up.addr,
    redis: redis && { url: redis.url },
    listen: 'admin: {{ADMIN}}',
    routes: '- path: /api/auth/\n  auth: off\n- path: /',
    extra: `lockout:\n  path: /api/auth/login\n  field: email\n  after: ${after}\n  base: ${base}\n  max: ${max}\n${extra}`,
  });
}

const login = (v, email, password, { path = '/api/auth/login', form = false } = {}) => {
  const body = form ? new URLSearchParams({ email, password }).toString() : JSON.stringify({ email, password });
  return https({
    port: v.ports.https,
    path,
    method: 'POST',
    headers: { 'Content-Type': form ? 'application/x-www-form-urlencoded' : 'application/json' },
    body,
  });
};

for (const store of ['memory', 'redis']) {
  describe(`lockout (${store} store)`, () => {
    afterEach(cleanupAll);

    it('after: 5 allows five failures; the sixth attempt within the lock is refused with 429 at the edge', T, async () => {
      const up = await loginUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(lockYaml(up, { redis }));
      for (let i = 0; i < 5; i++) {
        assert.equal((await login(v, 'alice@example.com', 'wrong')).status, 401, `failure ${i + 1}`);
        await delay(20);
      }
      const n = up.requests.length;
      const r = await login(v, 'alice@example.com', 'wrong');
      assertEdge(r, 429);
      const ra = Number(r.get('Retry-After'));
      assert.ok(ra >= 1 && ra <= 2, `Retry-After ${ra} within the 2 s lock`);
      assertEdge(await login(v, 'alice@example.com', 'right'), 429, {}, 'even the right password waits');
      assert.equal(up.requests.length, n, 'locked attempts never reach the upstream');
      assert.equal((await login(v, 'bob@example.com', 'wrong')).status, 401, 'other accounts are not locked');
      const m = await http({ port: v.ports.admin, path: '/metrics' });
      assert.match(m.text, /^visor_lockouts_total 2$/m);
      const log = await v.accessLogFor(r.get('X-Request-Id'));
      assert.equal(log.reason, 'lockout');
    });

    it('the lock doubles per further failure up to max; a success resets', T, async () => {
      const up = await loginUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(lockYaml(up, { redis, after: 2, base: '400ms', max: '1600ms' }));
      const fail = async () => {
        const r = await login(v, 'carol@example.com', 'wrong');
        await delay(20);
        return r.status;
      };
      const lockedFor = async () => {
        const r = await login(v, 'carol@example.com', 'wrong');
        return r.status === 429 ? Number(r.get('Retry-After')) : 0;
      };
      assert.equal(await fail(), 401);
      assert.equal(await lockedFor(), 0, 'one failure: no lock');
      await delay(20);
      // that attempt was a second failure: locked for 400 ms
      let t = Date.now();
      assert.equal(await lockedFor(), 1);
      await delay(t + 450 - Date.now());
      assert.equal(await fail(), 401, 'third failure after the lock: 800 ms');
      t = Date.now();
      assert.equal(await lockedFor(), 1);
      await delay(t + 850 - Date.now());
      assert.equal(await fail(), 401, 'fourth failure: 1600 ms');
      t = Date.now();
      assert.equal(await lockedFor(), 2);
      await delay(t + 1650 - Date.now());
      assert.equal(await fail(), 401, 'fifth failure: still 1600 ms (max)');
      t = Date.now();
      assert.equal(await lockedFor(), 2);
      await delay(t + 1650 - Date.now());
      assert.equal((await login(v, 'carol@example.com', 'right')).status, 200, 'a success once the lock is over');
      await delay(20);
      assert.equal(await fail(), 401);
      assert.equal(await lockedFor(), 0, 'the success reset the count');
    });

    it('the account is trimmed and lower-cased; JSON and form bodies, path case and trailing slash alike', T, async () => {
      const up = await loginUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const v = await startV(lockYaml(up, { redis, after: 3 }));
      assert.equal((await login(v, 'Dave@Example.COM', 'wrong')).status, 401);
      assert.equal((await login(v, '  dave@example.com ', 'wrong', { form: true })).status, 401);
      assert.equal((await login(v, 'DAVE@example.com', 'wrong', { path: '/API/Auth/Login/' })).status, 401);
      await delay(20);
      assertEdge(await login(v, 'dave@example.com', 'wrong', { form: true }), 429);
      assertEdge(await login(v, 'dave@EXAMPLE.com', 'right'), 429);
      assert.equal((await login(v, 'erin@example.com', 'right')).status, 200);
      if (redis) {
        const key = `visor:lockout:${crypto.createHash('sha256').update('dave@example.com').digest('hex')}`;
        assert.equal(await redis.cmd('EXISTS', key), 1, key);
        const keys = String(await redis.cmd('KEYS', '*'));
        assert.ok(!/dave|erin|example/i.test(keys), `no account in clear: ${keys}`);
        const ttl = await redis.cmd('PTTL', key);
        assert.ok(ttl > 0, 'the record expires on its own');
      }
    });
  });
}

describe('lockout leaves other requests alone', () => {
  afterEach(cleanupAll);

  it('GETs, other paths, bodies without the field and non-JSON/form bodies pass; bodies over 16 KiB get 413', T, async () => {
    const up = await loginUpstream();
    const v = await startV(lockYaml(up, { after: 1 }));
    assert.equal((await login(v, 'frank@example.com', 'wrong')).status, 401);
    await delay(20);
    assertEdge(await login(v, 'frank@example.com', 'wrong'), 429);
    assert.equal((await https({ port: v.ports.https, path: '/api/auth/login' })).status, 401, 'GET is not a login');
    assert.equal((await login(v, 'frank@example.com', 'wrong', { path: '/api/auth/login2' })).status, 401);
    const noField = await https({ port: v.ports.https, path: '/api/auth/login', method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: '{"user":"frank@example.com","password":"x"}' });
    assert.equal(noField.status, 401);
    const text = await https({ port: v.ports.https, path: '/api/auth/login', method: 'POST',
      headers: { 'Content-Type': 'text/plain' }, body: '{"email":"frank@example.com"}' });
    assert.equal(text.status, 401);
    const big = await https({ port: v.ports.https, path: '/api/auth/login', method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: 'g@example.com', pad: 'x'.repeat(17000) }) });
    assertEdge(big, 413);
  });

  it('with the reference example: a `count: failures` policy and the lockout on the same login', T, async () => {
    const up = await loginUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      policies: 'login: { limit: 5, window: 60s, key: ip, count: failures }',
      routes: '- path: /api/auth/\n  auth: off\n  rate_limits: [login]',
      extra: 'lockout:\n  path: /api/auth/login\n  field: email\n  after: 5\n  base: 1s\n  max: 15m\n',
    }));
    for (let i = 0; i < 5; i++) {
      assert.equal((await login(v, `user${i}@example.com`, 'wrong')).status, 401);
      await delay(20);
    }
    const r = await login(v, 'user9@example.com', 'wrong');
    assertEdge(r, 429);
    assert.equal(r.get('RateLimit-Remaining'), '0');
    assert.ok(Number(r.get('Retry-After')) > 50, 'the per-IP failure limit, not a lock');
  });
});
