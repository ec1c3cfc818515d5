// Scanner probes and bans (docs/rate-limits.md and docs/security.md, probes):
// probe paths get 404 and a security event, `ban_after` probes within 10 minutes ban the client
// (403 on any path, security event "banned") for `ban_for`, shared across instances through
// Redis, without a Redis round trip on normal requests.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startVisor, startUpstream, startRedis, https, http, assertEdge, cleanupAll, SLOW, delay, until,
} from './lib/harness.mjs';
import { rlYaml, evalshaCalls, startV } from './lib/rl-helpers.mjs';

const T = { timeout: 60000 * SLOW };

const get = (v, p, ip) => https({ port: v.ports.https, path: p, headers: ip ? { 'X-Forwarded-For': ip } : {} });
const events = (v, ev) => v.stdoutJson.filter((j) => j.type === 'security' && j.event === ev);

describe('probes', () => {
  afterEach(cleanupAll);

  it('on by default: a probe path gets 404 at the edge, a security event and a metric', T, async () => {
    const up = await startUpstream();
    const v = await startV(rlYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}' }));
    const r = await get(v, '/.env');
    const id = assertEdge(r, 404);
    assert.equal(up.requests.length, 0, 'never forwarded');
    const ev = await v.waitForLog((j) => j && j.type === 'security' && j.event === 'probe', 5000 * SLOW, { stream: 'stdout' });
    assert.equal(ev.json.request_id, id);
    assert.equal(ev.json.client_ip, '127.0.0.1');
    assert.equal(ev.json.path, '/.env');
    for (const p of ['/.git/config', '/wp-admin/setup.php', '/WP-LOGIN.PHP', '/phpmyadmin/', '/server-status', '/.env.local', '/x/../.env']) {
      assertEdge(await get(v, p), 404);
    }
    assert.equal((await get(v, '/environment')).status, 200, 'not a probe');
    assert.equal((await get(v, '/api/.env')).status, 200, 'prefixes only');
    const m = await http({ port: v.ports.admin, path: '/metrics' });
    assert.match(m.text, /^visor_probes_total 8$/m);
  });

  it('`ban_after` probes ban the client for `ban_for`: 403 on every path, other clients unaffected', T, async () => {
    const up = await startUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      client: 'trusted_proxies: [127.0.0.1/32]',
      extra: 'probes:\n  paths: [/.env, /wp-admin]\n  ban_after: 3\n  ban_for: 2s\n',
    }));
    const scanner = '203.0.113.7';
    assertEdge(await get(v, '/.env', scanner), 404);
    assertEdge(await get(v, '/wp-admin', scanner), 404);
    assert.equal((await get(v, '/ok', scanner)).status, 200, 'not banned yet');
    assertEdge(await get(v, '/.env', scanner), 404);
    const t = Date.now();
    const b = await get(v, '/ok', scanner);
    const id = assertEdge(b, 403);
    assertEdge(await get(v, '/.env', scanner), 403, {}, 'probes too');
    assert.equal((await get(v, '/ok', '198.51.100.1')).status, 200, 'another client');
    assert.equal((await get(v, '/ok')).status, 200, 'the proxy itself');
    const ev = events(v, 'banned');
    assert.ok(ev.some((j) => j.request_id === id && j.client_ip === scanner), 'security event "banned"');
    assert.ok(events(v, 'probe').some((j) => j.banned === true), 'the banning probe says so');
    await delay(t + 2100 - Date.now());
    assert.equal((await get(v, '/ok', scanner)).status, 200, 'the ban is over');
  });

  it('IPv6 scanners are counted by /56', T, async () => {
    const up = await startUpstream();
    const v = await startV(rlYaml({
      upstream: up.addr,
      client: 'trusted_proxies: [127.0.0.1/32]',
      extra: 'probes:\n  paths: [/.env]\n  ban_after: 2\n  ban_for: 60s\n',
    }));
    assertEdge(await get(v, '/.env', '2001:db8:1:100::1'), 404);
    assertEdge(await get(v, '/.env', '2001:db8:1:1ff::2'), 404);
    assertEdge(await get(v, '/x', '2001:db8:1:1aa::3'), 403);
    assert.equal((await get(v, '/x', '2001:db8:1:200::1')).status, 200);
  });

  it('paths: [] turns probe detection off', T, async () => {
    const up = await startUpstream();
    const v = await startV(rlYaml({ upstream: up.addr, extra: 'probes:\n  paths: []\n' }));
    assert.equal((await get(v, '/.env')).status, 200);
    assert.equal(events(v, 'probe').length, 0);
  });

  it('bans are shared through Redis: another instance refuses the client within about a second', T, async () => {
    const up = await startUpstream();
    const redis = await startRedis();
    const yaml = rlYaml({
      upstream: up.addr,
      redis: { url: redis.url },
      client: 'trusted_proxies: [127.0.0.1/32]',
      policies: 'api: { limit: 1000, window: 60s, key: ip }',
      routes: '- path: /\n  rate_limits: [api]',
      extra: 'probes:\n  paths: [/.env]\n  ban_after: 3\n  ban_for: 30s\n',
    });
    const a = await startV(yaml);
    const b = await startV(yaml);
    const scanner = '192.0.2.44';
    assertEdge(await get(a, '/.env', scanner), 404);
    assertEdge(await get(b, '/.env', scanner), 404);
    assertEdge(await get(a, '/.env', scanner), 404);     // the third, across instances
    assertEdge(await get(a, '/x', scanner), 403, {}, 'at once on the instance that banned');
    const score = Number(await redis.cmd('ZSCORE', 'visor:bans', scanner));
    assert.ok(score > Date.now() + 25000 && score <= Date.now() + 30000, `ban until ${score}`);
    await until(async () => (await get(b, '/x', scanner)).status === 403, 1500 * SLOW, 'the ban on the other instance');
    // normal requests cost one EVALSHA (the limit), never a ban lookup in Redis
    const before = await evalshaCalls(redis);
    for (let i = 0; i < 5; i++) assert.equal((await get(b, '/y', '192.0.2.1')).status, 200);
    assert.equal(await evalshaCalls(redis) - before, 5);
    // lifting a ban in Redis reaches the instances (cached at most 30 s; here the ban's own end)
    assert.equal(await redis.cmd('ZREM', 'visor:bans', scanner), 1);
  });
});
