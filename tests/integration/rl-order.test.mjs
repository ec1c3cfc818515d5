// Limits before authentication (docs/rate-limits.md, "Order"): limits keyed on the client
// alone (ip, header:) count every request that reaches the route — those the token or CORS
// refuses later included — as express-rate-limit mounted before auth does; `user` and `ip+user`
// limits and the revocation check run after the token is verified. Each answer carries one
// RateLimit report, of the most restrictive policy of both checks, readable cross-origin.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startUpstream, startRedis, https, cleanupAll, track, SLOW } from './lib/harness.mjs';
import { hs256, rlYaml, startV, evalshaCalls } from './lib/rl-helpers.mjs';

const T = { timeout: 60000 * SLOW };
const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

function secretFile() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'rl-order-'));
  track(`rl-order dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = 'rl-order-secret-0123456789abcdefghijklmnop';
  const file = path.join(dir, 'hs256');
  fs.writeFileSync(file, secret);
  return { secret, file };
}

const jwtSection = (file, extra = '') => `jwt:\n  algorithms: [HS256]\n  keys:\n    - secret_file: ${file}\n${extra}`;
const get = (v, p, headers = {}) => https({ port: v.ports.https, path: p, headers });
const rl = (r) => [r.get('RateLimit-Limit'), r.get('RateLimit-Remaining')];

for (const store of ['memory', 'redis']) {
  describe(`client-keyed limits run before authentication (${store} store)`, () => {
    afterEach(cleanupAll);

    it('the 4th token-less request over an ip limit of 3 is 429, not 401; a valid token is over the limit too', T, async () => {
      const up = await startUpstream();
      const redis = store === 'redis' ? await startRedis() : null;
      const { secret, file } = secretFile();
      const v = await startV(rlYaml({
        upstream: up.addr,
        redis: redis && { url: redis.url },
        policies: 'api: { limit: 3, window: 60s, key: ip }',
        routes: '- path: /api/\n  auth: required\n  rate_limits: [api]',
        extra: jwtSection(file),
      }));
      for (const left of ['2', '1', '0']) {
        const r = await get(v, '/api/x');
        assert.equal(r.status, 401);
        assert.equal(r.get('WWW-Authenticate'), 'Bearer realm="api"');
        assert.deepEqual(rl(r), ['3', left], 'a 401 carries the RateLimit headers, as behind express-rate-limit');
      }
      const r4 = await get(v, '/api/x');
      assert.equal(r4.status, 429);
      assert.deepEqual(rl(r4), ['3', '0']);
      assert.match(r4.get('Retry-After') || '', /^[1-9][0-9]*$/);
      assert.equal(r4.get('WWW-Authenticate'), undefined, 'never reached the token check');
      const r5 = await get(v, '/api/x', { Authorization: `Bearer ${hs256(secret, { sub: 'alice' })}` });
      assert.equal(r5.status, 429, 'the address is over its limit, whatever it carries');
      assert.equal(up.requests.length, 0);
    });
  });
}

describe('the order against CORS', () => {
  afterEach(cleanupAll);

  const yaml = (up, { limit = 2, auth = 'off' } = {}) => rlYaml({
    upstream: up.addr,
    workers: 1,
    policies: `api: { limit: ${limit}, window: 60s, key: ip }`,
    routes: `- path: /\n  auth: ${auth}\n  rate_limits: [api]`,
    extra: `cors:\n  origins: [${APP}]\n  on_disallowed: reject\n`,
  });

  it('requests refused by CORS count; the 429 that follows is readable by the allowed page (ACAO, Retry-After and RateLimit exposed)', T, async () => {
    const up = await startUpstream();
    const v = await startV(yaml(up));
    assert.equal((await get(v, '/x', { Origin: EVIL })).status, 403);
    assert.equal((await get(v, '/x', { Origin: EVIL })).status, 403);
    const r = await get(v, '/x', { Origin: APP });
    assert.equal(r.status, 429);
    assert.equal(r.get('Access-Control-Allow-Origin'), APP);
    const exposed = (r.get('Access-Control-Expose-Headers') || '').split(/,\s*/);
    for (const h of ['Retry-After', 'RateLimit-Policy', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']) {
      assert.ok(exposed.includes(h), `${h} exposed (got ${exposed.join(', ')})`);
    }
    assert.equal(up.requests.length, 0);
  });

  it('preflights are answered by CORS and not counted', T, async () => {
    const up = await startUpstream();
    const v = await startV(yaml(up));
    for (let i = 0; i < 5; i++) {
      const p = await https({ port: v.ports.https, path: '/x', method: 'OPTIONS', headers: { Origin: APP, 'Access-Control-Request-Method': 'PUT' } });
      assert.equal(p.status, 204);
      assert.equal(p.get('RateLimit-Remaining'), undefined);
    }
    assert.equal((await get(v, '/x', { Origin: APP })).status, 200);
    assert.equal((await get(v, '/x', { Origin: APP })).status, 200);
    assert.equal((await get(v, '/x', { Origin: APP })).status, 429);
  });

  it("a 401 on an allowed Origin exposes WWW-Authenticate and the client limit's RateLimit headers", T, async () => {
    const up = await startUpstream();
    const { file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      workers: 1,
      policies: 'api: { limit: 5, window: 60s, key: ip }',
      routes: '- path: /\n  auth: required\n  rate_limits: [api]',
      extra: `cors:\n  origins: [${APP}]\n${jwtSection(file)}`,
    }));
    const r = await get(v, '/x', { Origin: APP });
    assert.equal(r.status, 401);
    assert.deepEqual(rl(r), ['5', '4']);
    const exposed = (r.get('Access-Control-Expose-Headers') || '').split(/,\s*/);
    for (const h of ['WWW-Authenticate', 'RateLimit-Limit', 'RateLimit-Remaining']) assert.ok(exposed.includes(h), h);
  });
});

describe('user limits run after the token is verified', () => {
  afterEach(cleanupAll);

  it('token-less requests never touch the user counter; the report is the most restrictive of both checks', T, async () => {
    const up = await startUpstream();
    const { secret, file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      policies: 'api: { limit: 10, window: 60s, key: ip }\nper_user: { limit: 2, window: 60s, key: user }',
      routes: '- path: /\n  auth: required\n  rate_limits: [api, per_user]',
      extra: jwtSection(file),
    }));
    const alice = { Authorization: `Bearer ${hs256(secret, { sub: 'alice' })}` };
    for (let i = 0; i < 3; i++) assert.equal((await get(v, '/x')).status, 401);
    const a1 = await get(v, '/x', alice);
    assert.equal(a1.status, 200);
    assert.deepEqual(rl(a1), ['2', '1'], "the user's policy: 1 left of 2 (the ip policy has 6 of 10)");
    assert.equal((await get(v, '/x', alice)).status, 200);
    const a3 = await get(v, '/x', alice);
    assert.equal(a3.status, 429);
    assert.deepEqual(rl(a3), ['2', '0']);
    assert.match(a3.get('Retry-After') || '', /^[1-9][0-9]*$/);
    const anon = await get(v, '/x');
    assert.equal(anon.status, 401);
    assert.deepEqual(rl(anon), ['10', '3'], 'the ip policy counted all 7 requests: 3 + 3 + this one');
    assert.equal(up.requests.length, 2);
  });

  it('count: failures on the client key records the 401s (the lockout-like guessing limit)', T, async () => {
    const up = await startUpstream();
    const { secret, file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      workers: 1,
      policies: 'guess: { limit: 2, window: 60s, key: ip, count: failures }',
      routes: '- path: /\n  auth: required\n  rate_limits: [guess]',
      extra: jwtSection(file),
    }));
    const alice = { Authorization: `Bearer ${hs256(secret, { sub: 'alice' })}` };
    for (let i = 0; i < 4; i++) assert.equal((await get(v, '/x', alice)).status, 200, 'successes are not failures');
    assert.equal((await get(v, '/x', { Authorization: 'Bearer bad.token.here' })).status, 401);
    assert.equal((await get(v, '/x')).status, 401);
    assert.equal((await get(v, '/x', alice)).status, 429, 'two failures: the address waits, valid token or not');
  });

  it('Redis: a revoked token is 401 after the ip check; one store call without a token, two with one', T, async () => {
    const up = await startUpstream();
    const redis = await startRedis();
    const { secret, file } = secretFile();
    const v = await startV(rlYaml({
      upstream: up.addr,
      workers: 1,
      redis: { url: redis.url },
      policies: 'api: { limit: 100, window: 60s, key: ip }',
      routes: '- path: /\n  auth: required\n  rate_limits: [api]',
      extra: jwtSection(file, '  revocation: true\n'),
    }));
    const exp = Math.floor(Date.now() / 1000) + 600;
    const tok = hs256(secret, { sub: 'bob', jti: 'j-1', exp });
    assert.equal((await get(v, '/x', { Authorization: `Bearer ${tok}` })).status, 200);
    const before = await evalshaCalls(redis);
    assert.equal((await get(v, '/x')).status, 401);
    const mid = await evalshaCalls(redis);
    assert.equal(mid - before, 1, 'no token: the ip check only');
    await redis.cmd('SET', 'visor:revoked:j-1', '1', 'EXAT', String(exp));
    const r = await get(v, '/x', { Authorization: `Bearer ${tok}` });
    assert.equal(r.status, 401);
    assert.match(r.get('WWW-Authenticate') || '', /error="invalid_token"/);
    assert.deepEqual(rl(r), ['100', '97']);
    assert.equal((await evalshaCalls(redis)) - mid, 2, 'a token: the ip check, then the user/revocation check');
  });
});
