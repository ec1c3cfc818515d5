// redis.cluster (issue 14 part 3): visor's store on a Redis Cluster. Real processes from
// Debian's redis-server / redis-cli: 3 primaries and 3 replicas (`redis-server --cluster-enabled
// yes` ×6, `redis-cli --cluster create --cluster-replicas 1`), node timeout 1 s, started by
// each test on free ports in a temp dir (lib/cluster.mjs). What is checked:
//  - the topology is asked of the seed nodes (the URL's host:port are unused), each worker
//    keeps one connection per primary, and limits are exact across two visor instances for
//    clients whose keys are spread over the three primaries; each key lives on the node that
//    serves its slot (and nowhere else);
//  - one check whose policies live on two primaries (`ip` and `header:`, both counted before
//    the token): when one refuses, the admission the other recorded is taken back (undo), the
//    answer is 429; a token whose revocation key lives on another primary than its `user`
//    policy's key: 401, and the user admission is taken back;
//  - lockout and probe/ban keys on their nodes, a ban seen by another instance (password
//    cluster: requirepass + masterauth, redis://:PASSWORD@.../0);
//  - one slot moved by hand behind visor's back (workers: 1, on_error: closed): half-way, the
//    lockout commands follow ASK; whole, they follow MOVED and the topology is read again; a
//    rate-limit check for the moved slot is answered by the new owner;
//  - `redis-cli --cluster reshard` of slots holding visor's keys under load: only 200/429,
//    then exact limits for fresh clients on the slots' new owner, redirects counted;
//  - SIGKILL of a primary under load with on_error: local: 0 unplanned 5xx; after the
//    replica's promotion the limits are enforced in Redis on the new primary (the time from
//    the kill to visor's first script call there is printed);
//  - rediss://: TLS to every node (--tls-cluster yes), verified against ca_file;
//  - config errors: redis.cluster with redis.sentinel, a db other than 0, an empty or malformed
//    node list; the lint warnings (a URL host that is unused, no password on the network).
// After each test the harness checks visor is up and its fds / connections_active are back to
// the baseline (the cluster is stopped before visor).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import nodeHttps from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, https, http, keepAliveAgent, runVisor, writeConfigFile, cleanupAll,
  getCerts, assertOne, assertEdge, SLOW, delay, until, track,
} from './lib/harness.mjs';
import { hs256, tally, rlYaml } from './lib/rl-helpers.mjs';
import { startCluster, keySlot, clientsOnSlots } from './lib/cluster.mjs';

const T = { timeout: 60000 * SLOW };

// ---- helpers ----------------------------------------------------------------------------

function secretFile() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'cluster-jwt-'));
  track(`cluster jwt dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = 'cluster-test-secret-0123456789abcdefghij';
  const file = path.join(dir, 'hs256');
  fs.writeFileSync(file, secret);
  return { secret, file };
}

// The redis section for a cluster. `url` keeps only scheme, credentials and db.
function redisSection(c, { onError = 'local', timeout = '500ms', url = 'redis://cluster/0', extra = '' } = {}) {
  return `redis:\n  url: "${url}"\n  timeout: ${SLOW > 1 ? '5s' : timeout}\n  on_error: ${onError}\n` +
    `  cluster:\n    nodes: ${c.seeds}\n${extra}`;
}

// Policies: api (large: never refuses), exact (10 a minute per IP), five (5 a minute per IP),
// warm (for the warm-up requests: own keys). Routes: /free, /exact, /five, /warm, the rest api.
function yaml(up, c, { workers = 2, onError = 'local', url, tls = '', extra = '', policies = '', routes = '' } = {}) {
  return rlYaml({
    upstream: up.addr,
    workers,
    listen: 'admin: "{{ADMIN}}"',
    client: 'trusted_proxies: [127.0.0.1/32]',
    policies: 'api: { limit: 100000, window: 60s, key: ip }\nexact: { limit: 10, window: 60s, key: ip }\n' +
      'five: { limit: 5, window: 60s, key: ip }\nwarm: { limit: 100000, window: 60s, key: ip }\n' + policies,
    routes: routes + '- path: /free\n- path: /exact\n  rate_limits: [exact]\n- path: /five\n  rate_limits: [five]\n' +
      '- path: /warm\n  rate_limits: [warm]\n- path: /\n  rate_limits: [api]',
    extra: redisSection(c, { onError, url }) + tls + extra,
  });
}

const get = (v, p, ip, agent, headers = {}) =>
  https({ port: v.ports.https, path: p, agent, headers: ip ? { 'X-Forwarded-For': ip, ...headers } : headers });

async function metric(v, name) {
  const r = await http({ port: v.ports.admin, path: '/metrics' });
  const m = r.body.toString().match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : null;
}

// FCALL + EVAL + EVALSHA calls a node has served (a replica gets a script's effects, never the
// call).
async function scriptCalls(node) {
  const info = String(await node.cmd('INFO', 'commandstats'));
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(?:fcall|eval(?:sha)?):calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}

// Whether a node holds key: CLUSTER GETKEYSINSLOT answers on any node, where EXISTS of a key
// of a slot the node does not serve is a MOVED error.
async function holds(node, key) {
  return (await node.cmd('CLUSTER', 'GETKEYSINSLOT', keySlot(key), 10000)).includes(key);
}

// visor's connections on a node: normal clients (flags=N) other than the one asking and the
// node's own cached MIGRATE connections to another node (redis-cli reshard: restore-asking).
async function visorConns(node) {
  const list = String(await node.cmd('CLIENT', 'LIST')).trim().split('\n');
  return list.filter((l) => / flags=N /.test(l) && !/ cmd=(client\|list|restore-asking|migrate) /.test(l)).length;
}

// Warm-up: requests (new connections, so every worker gets some) from addresses on every
// primary until each primary holds `conns` visor connections and the warm-up keys are in
// Redis. The limits under test are not touched (/warm has its own policy).
async function warm(vs, c, conns) {
  const prims = await c.primaries();
  const map = await c.slotMap();
  const ips = prims.map((p, i) => clientsOnSlots((s) => map[s] === p, 1, { group: 15 - i })[0]);
  await until(async () => {
    for (const v of vs) {
      for (const ip of ips) {
        for (let k = 0; k < 4; k++) await get(v, '/warm', ip);
      }
    }
    for (const [i, p] of prims.entries()) {
      if ((await p.cmd('EXISTS', `visor:rl:warm:{${ips[i]}}`)) !== 1) return false;
      if ((await visorConns(p)) < conns) return false;
    }
    return true;
  }, 15000 * SLOW, `visor connected to every primary (${conns} connections each)`, 100);
  return prims;
}

// `each` requests per client address, all at once, over both instances (alternating), over
// `sockets` keep-alive connections per instance → { ip: [responses] }.
async function burstPer(vs, ips, each, p, sockets = 40) {
  const agents = vs.map(() => new nodeHttps.Agent({ keepAlive: true, maxSockets: sockets, ca: getCerts().caPem, servername: 'localhost' }));
  try {
    const out = {};
    const all = [];
    let n = 0;
    for (const ip of ips) {
      out[ip] = [];
      for (let i = 0; i < each; i++, n++) {
        const k = n % vs.length;
        all.push(get(vs[k], `${p}/${i}`, ip, agents[k]).then((r) => out[ip].push(r), () => out[ip].push({ status: 0 })));
      }
    }
    await Promise.all(all);
    return out;
  } finally {
    for (const a of agents) a.destroy();
  }
}

// Loops of keep-alive requests over `ips` until stop(): { seen (statuses), stop() }.
function load(vs, ips, { loops = 4, p = '/l' } = {}) {
  let stopped = false;
  const seen = [];
  const loop = async (k) => {
    const v = vs[k % vs.length];
    let agent = keepAliveAgent();
    for (let i = 0; !stopped; i++) {
      try {
        seen.push((await get(v, `${p}${k}-${i}`, ips[(i + k) % ips.length], agent)).status);
      } catch {
        seen.push(0);
        agent.destroy();
        agent = keepAliveAgent();
      }
    }
    agent.destroy();
  };
  const all = Array.from({ length: loops }, (_, k) => loop(k));
  return { seen, stop: async () => { stopped = true; await Promise.all(all); } };
}

// The login: 401 unless the JSON body's password is "right"; every other path 200.
function loginUpstream() {
  return startUpstream((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      const ok = req.url.startsWith('/api/auth/login') && /"password":"right"/.test(b);
      res.writeHead(req.url.startsWith('/api/auth/login') && !ok ? 401 : 200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
}

const login = (v, email, pw) => https({
  port: v.ports.https, path: '/api/auth/login', method: 'POST',
  headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password: pw }),
});

// ---- tests --------------------------------------------------------------------------------

describe('redis.cluster', () => {
  afterEach(cleanupAll);

  it('limits exact across two instances for clients spread over the three primaries; each key on the node serving its slot; one connection per primary per worker', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const y = yaml(up, c);
    const a = await startVisor(y);
    const b = await startVisor(y);
    const prims = await warm([a, b], c, 4);
    assert.equal(prims.length, 3);
    // the test's slot computation is Redis's
    for (const k of ['visor:rl:exact:{10.0.0.1}', 'visor:rl:x:{user:alice}', 'visor:probe:{visor:bans}:1.2.3.4']) {
      assert.equal(keySlot(k), await prims[0].cmd('CLUSTER', 'KEYSLOT', k), k);
    }
    // three clients per primary
    const map = await c.slotMap();
    const ips = prims.flatMap((p, i) => clientsOnSlots((s) => map[s] === p, 3, { group: i }));
    const L = 10;
    const N = 24;
    const calls = async () => (await Promise.all(prims.map(scriptCalls))).reduce((x, y) => x + y, 0);
    const calls0 = await calls();
    const res = await burstPer([a, b], ips, N, '/exact');
    // a pass's checks go as one script call per node: at most one call per request (how many
    // share a call depends on how the requests arrive: printed, not asserted)
    const used = (await calls()) - calls0;
    console.log(`# ${ips.length * N} requests at once over two instances: ${used} script calls on the primaries`);
    assert.ok(used <= ips.length * N, `${used} script calls for ${ips.length * N} requests`);
    for (const ip of ips) {
      const t = tally(res[ip].map((r) => r.status));
      assert.deepEqual(t, { 200: L, 429: N - L }, `client ${ip}: ${JSON.stringify(t)}`);
      const refused = res[ip].find((r) => r.status === 429);
      assertEdge(refused, 429);
      assertOne(refused, 'RateLimit-Limit', String(L));
      assertOne(refused, 'RateLimit-Remaining', '0');
      assert.match(refused.get('Retry-After') || '', /^\d+$/);
      const admitted = res[ip].filter((r) => r.status === 200).map((r) => Number(r.get('RateLimit-Remaining')));
      assert.deepEqual(admitted.sort((x, z) => x - z), [...Array(L).keys()], `${ip}: remaining 0..${L - 1}, once each`);
      // the key on the node serving its slot, holding the L admissions, and on no other primary
      const key = `visor:rl:exact:{${ip}}`;
      const owner = map[keySlot(key)];
      assert.equal(await owner.cmd('LLEN', key), L, `${key} on ${owner.port}`);
      for (const p of prims) if (p !== owner) assert.equal(await holds(p, key), false, `${key} not on ${p.port}`);
    }
    // each primary served its share
    for (const p of prims) {
      assert.ok((await scriptCalls(p)) > 0, `script calls on ${p.port}`);
      assert.equal(await visorConns(p), 4, `one connection per worker and instance on ${p.port}`);
    }
    // replicas hold the keys by replication, never a script call from visor (a replica that
    // is a seed keeps one connection per worker, for the topology reads: cluster.h)
    for (const x of (await c.topology()).filter((n) => n.flags.includes('slave'))) {
      assert.equal(await scriptCalls(c.byId(x.id)), 0, `no script call on replica ${x.port}`);
      assert.ok((await visorConns(c.byId(x.id))) <= 4, `at most one connection per worker on replica ${x.port}`);
    }
    const m = await metric(a, 'visor_redis_cluster_redirects_total');
    assert.ok(m === 0, `no redirect on a stable cluster (visor_redis_cluster_redirects_total ${m})`);
    // /free is not limited: no key anywhere
    assert.equal((await get(a, '/free', ips[0])).status, 200);
  });

  it('one check over two primaries (ip and header: policies): a refusal by one takes back what the other recorded (undo), answered 429', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const map = await c.slotMap();
    const owner = (k) => map[keySlot(k)];
    // the ip key on one primary, the API key's on another (hdr:<first 32 hex of sha256>)
    const hdr = (k) => `hdr:${crypto.createHash('sha256').update(k).digest('hex').slice(0, 32)}`;
    const apiKey = 'key-one';
    const kNode = owner(`{${hdr(apiKey)}}`);
    const [ip] = clientsOnSlots((s) => map[s] !== kNode, 1);
    const ipNode = owner(`{${ip}}`);
    assert.notEqual(ipNode, kNode);
    const v = await startVisor(yaml(up, c, {
      policies: 'perip: { limit: 100, window: 60s, key: ip }\nperkey: { limit: 2, window: 60s, key: "header:X-Api-Key" }',
      routes: '- path: /both\n  rate_limits: [perip, perkey]\n',
    }));
    await warm([v], c, 2);
    const ipKey = `visor:rl:perip:{${ip}}`;
    const kKey = `visor:rl:perkey:{${hdr(apiKey)}}`;
    const agent = keepAliveAgent();
    const st = async (p, key = apiKey) => get(v, p, ip, agent, { 'X-Api-Key': key });
    assert.equal((await st('/both/1')).status, 200);
    const r2 = await st('/both/2');
    assert.equal(r2.status, 200);
    assertOne(r2, 'RateLimit-Limit', '2');
    assertOne(r2, 'RateLimit-Remaining', '0');
    assert.equal(await ipNode.cmd('LLEN', ipKey), 2, `${ipKey} on ${ipNode.port}`);
    assert.equal(await kNode.cmd('LLEN', kKey), 2, `${kKey} on ${kNode.port}`);
    const r3 = await st('/both/3');
    assertEdge(r3, 429);
    assertOne(r3, 'RateLimit-Limit', '2');
    assertOne(r3, 'RateLimit-Remaining', '0');
    // "all policies admit or none records", once the undo has run
    const undone = (n, what) => until(async () => (await ipNode.cmd('LLEN', ipKey)) === n, 2000 * SLOW, what)
      .catch(async (e) => {
        throw new Error(`${e.message}: LLEN ${ipKey} ${await ipNode.cmd('LLEN', ipKey)}, ` +
          `LLEN ${kKey} ${await kNode.cmd('LLEN', kKey)}\n${v.stderr.slice(-10).join('\n')}`);
      });
    await undone(2, `${ipKey} back to 2 on ${ipNode.port} after the refusal on ${kNode.port}`);
    for (let i = 0; i < 5; i++) assertEdge(await st(`/both/r${i}`), 429);
    await delay(100);
    await undone(2, 'five more refusals recorded nothing on the ip key');
    assert.equal(await kNode.cmd('LLEN', kKey), 2);
    // another API key from the same address is admitted and counted on the ip key
    assert.equal((await st('/both/o', 'key-two')).status, 200);
    await undone(3, 'the next admission counted once');
    agent.destroy();
  });

  it('a token revoked on another primary than its user policy\'s key: 401, and the user admission that node recorded is taken back', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const { secret, file } = secretFile();
    const map = await c.slotMap();
    const owner = (k) => map[keySlot(k)];
    const uKey = 'visor:rl:peruser:{user:alice}';
    const uNode = owner(uKey);
    let jti = 0;
    while (owner(`visor:revoked:j${jti}`) === uNode) jti++;
    const rNode = owner(`visor:revoked:j${jti}`);
    const v = await startVisor(yaml(up, c, {
      policies: 'peruser: { limit: 5, window: 60s, key: user }',
      routes: '- path: /u\n  auth: required\n  rate_limits: [peruser]\n',
      extra: `jwt:\n  algorithms: [HS256]\n  revocation: true\n  keys:\n    - secret_file: ${file}\n`,
    }));
    await warm([v], c, 2);
    const tok = (claims) => ({ Authorization: `Bearer ${hs256(secret, { sub: 'alice', ...claims })}` });
    const agent = keepAliveAgent();
    assert.equal((await get(v, '/u/1', null, agent, tok({ jti: 'ok-1' }))).status, 200);
    assert.equal((await get(v, '/u/2', null, agent, tok({ jti: 'ok-2' }))).status, 200);
    assert.equal(await uNode.cmd('LLEN', uKey), 2);
    assert.equal(await rNode.cmd('SET', `visor:revoked:j${jti}`, '1', 'EX', '600'), 'OK');
    for (let i = 0; i < 3; i++) {
      assert.equal((await get(v, `/u/r${i}`, null, agent, tok({ jti: `j${jti}` }))).status, 401, 'revoked');
    }
    await until(async () => (await uNode.cmd('LLEN', uKey)) === 2, 2000 * SLOW, `${uKey} back to 2 on ${uNode.port} (revocation key on ${rNode.port})`)
      .catch(async (e) => {
        throw new Error(`${e.message}: LLEN ${await uNode.cmd('LLEN', uKey)}\n${v.stderr.slice(-10).join('\n')}`);
      });
    // revoked-before:<sub> (on its own node) refuses older tokens the same way
    const before = 'visor:revoked-before:alice';
    assert.equal(await owner(before).cmd('SET', before, String(Math.floor(Date.now() / 1000) + 5), 'EX', '600'), 'OK');
    assert.equal((await get(v, '/u/b', null, agent, tok({ jti: 'ok-3' }))).status, 401);
    await delay(100);
    assert.equal(await uNode.cmd('LLEN', uKey), 2, 'nothing recorded for the refused token');
    agent.destroy();
  });

  it('lockout and probe/ban keys on their nodes; a ban reaches another instance (password cluster)', T, async () => {
    const up = await loginUpstream();
    const password = 'cluster-pw-' + crypto.randomBytes(6).toString('hex');
    const c = await startCluster({ password });
    const y = yaml(up, c, {
      url: `redis://:${password}@cluster/0`,
      extra: 'lockout:\n  path: /api/auth/login\n  field: email\n  after: 3\n  base: 30s\n  max: 5m\n' +
        'probes:\n  paths: [/.env]\n  ban_after: 3\n  ban_for: 30s\n',
    });
    const a = await startVisor(y);
    const b = await startVisor(y);
    await warm([a, b], c, 4);
    const map = await c.slotMap();
    const owner = (k) => map[keySlot(k)];
    // lockout: three failures across both instances, then 429 on either
    const email = 'mallory@example.com';
    assert.equal((await login(a, email, 'x')).status, 401);
    assert.equal((await login(b, email, 'x')).status, 401);
    assert.equal((await login(a, email, 'x')).status, 401);
    await delay(20);
    assertEdge(await login(b, email, 'right'), 429);
    const lk = `visor:lockout:${crypto.createHash('sha256').update(email).digest('hex')}`;
    assert.equal(await owner(lk).cmd('EXISTS', lk), 1, `${lk} on ${owner(lk).port}`);
    assert.equal((await login(a, 'trent@example.com', 'right')).status, 200);
    // probes: three across both instances ban the client; the ban on visor:bans's node
    const scanner = '192.0.2.44';
    assertEdge(await get(a, '/.env', scanner), 404);
    assertEdge(await get(b, '/.env', scanner), 404);
    const pk = `visor:probe:{visor:bans}:${scanner}`;
    assert.equal(owner(pk), owner('visor:bans'), 'the probe counter shares the bans\' slot');
    assert.equal(await owner(pk).cmd('EXISTS', pk), 1, `${pk} counted on ${owner(pk).port}`);
    assertEdge(await get(a, '/.env', scanner), 404);
    assertEdge(await get(a, '/x', scanner), 403);
    const score = Number(await owner('visor:bans').cmd('ZSCORE', 'visor:bans', scanner));
    assert.ok(score > Date.now() + 25000 && score <= Date.now() + 30000, `ban until ${score}`);
    assert.equal(await owner(pk).cmd('EXISTS', pk), 0, 'the counter went with the ban');
    await until(async () => (await get(b, '/x', scanner)).status === 403, 2500 * SLOW, 'the ban on the other instance');
    assert.equal((await get(b, '/x', '192.0.2.45')).status, 200);
    assert.ok(!a.stderr.concat(b.stderr).join('\n').includes(password), 'the password is never logged');
  });

  it('MOVED and ASK followed (lockout): a slot moved behind visor\'s back, half-way (ASK) then whole (MOVED), answered from Redis, never by on_error: closed', T, async () => {
    const up = await loginUpstream();
    const c = await startCluster();
    const v = await startVisor(yaml(up, c, {
      workers: 1,
      onError: 'closed',
      extra: 'lockout:\n  path: /api/auth/login\n  field: email\n  after: 3\n  base: 30s\n  max: 5m\n',
    }));
    const [p0, p1] = await warm([v], c, 1);
    const map = await c.slotMap();
    const lk = (e) => `visor:lockout:${crypto.createHash('sha256').update(e).digest('hex')}`;
    let n = 0;
    while (map[keySlot(lk(`acct${n}@example.com`))] !== p0) n++;
    const email = `acct${n}@example.com`;
    const key = lk(email);
    const slot = keySlot(key);
    const red = () => metric(v, 'visor_redis_cluster_redirects_total');
    const ref = () => metric(v, 'visor_redis_cluster_refreshes_total');
    const [red0, ref0] = [await red(), await ref()];
    // half-way: p0 answers ASK for the slot's keys, which are on p1
    const finish = await c.moveSlot(slot, p0, p1, { finish: false });
    assert.equal((await login(v, email, 'x')).status, 401, 'answered from Redis (on_error: closed would be 503)');
    // the failure is recorded after the answer (fire and forget): wait for it
    await until(() => holds(p1, key), 2000 * SLOW, `${key} written on ${p1.port} (importing)`);
    assert.equal(await holds(p0, key), false);
    const red1 = await red();
    assert.ok(red1 > red0, `ASK followed (visor_redis_cluster_redirects_total ${red0} -> ${red1})`);
    // whole: p0 answers MOVED; visor follows it and reads the topology again
    await finish();
    assert.equal((await login(v, email, 'x')).status, 401);
    const red2 = await red();
    assert.ok(red2 > red1, `MOVED followed (visor_redis_cluster_redirects_total ${red1} -> ${red2})`);
    await until(async () => (await ref()) > ref0, 2000 * SLOW, 'the topology read again after MOVED');
    await until(async () => (await p1.cmd('HGET', key, 'f')) === '2', 2000 * SLOW, 'both failures counted on the new owner');
    assert.equal((await login(v, email, 'x')).status, 401);
    await delay(20);
    assertEdge(await login(v, email, 'right'), 429);
    console.log(`# moved slot ${slot}: redirects ${red0} -> ${red1} (ASK) -> ${red2} (MOVED)`);
  });

  it('a rate-limit check for a slot moved behind visor\'s back is answered by the new owner, not by on_error: closed (503)', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const v = await startVisor(yaml(up, c, { workers: 1, onError: 'closed' }));
    const [p0, p1] = await warm([v], c, 1);
    const map = await c.slotMap();
    const [ip] = clientsOnSlots((s) => map[s] === p0, 1, { group: 6 });
    const key = `visor:rl:five:{${ip}}`;
    await c.moveSlot(keySlot(key), p0, p1);
    const agent = keepAliveAgent();
    const got = [];
    for (let i = 0; i < 7; i++) got.push((await get(v, `/five/${i}`, ip, agent)).status);
    agent.destroy();
    assert.deepEqual(got, [200, 200, 200, 200, 200, 429, 429],
      `the first check of the moved slot went to ${p0.port} (stale map): visor_redis_errors_total ` +
      `${await metric(v, 'visor_redis_errors_total')}\n${v.stderr.slice(-5).join('\n')}`);
    assert.equal(await p1.cmd('LLEN', key), 5, `counted on ${p1.port}`);
  });

  it('SIGHUP under load with a changed limit: every request answered, the new limit enforced in Redis, one connection per primary per worker after', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const v = await startVisor(yaml(up, c));
    const prims = await warm([v], c, 2);
    const conns0 = await Promise.all(prims.map(visorConns));
    const map = await c.slotMap();
    const loadIps = prims.flatMap((p, i) => clientsOnSlots((s) => map[s] === p, 2, { group: i }));
    const l = load([v], loadIps, { loops: 4 });
    try {
      await delay(300);
      // `five` becomes 3 a minute: same cluster, same credentials (the connections stay)
      await v.writeConfig(yaml(up, c).replace('five: { limit: 5,', 'five: { limit: 3,'));
      v.hup();
      await v.waitForLog((j, line) => /reload/i.test(line), 5000 * SLOW, { stream: 'stderr' });
      await delay(300);
    } finally {
      await l.stop();
    }
    const t = tally(l.seen);
    assert.ok(l.seen.length > 50, `requests flowed (${l.seen.length})`);
    assert.deepEqual(t, { 200: l.seen.length }, `every request answered 200 across the reload: ${JSON.stringify(t)}`);
    // the new generation's limit, counted in Redis on the key's node
    const ip = clientsOnSlots((s) => map[s] === prims[1], 1, { group: 9 })[0];
    const st = [];
    for (let i = 0; i < 5; i++) st.push((await get(v, '/five', ip)).status);
    assert.deepEqual(st, [200, 200, 200, 429, 429]);
    assert.equal(await prims[1].cmd('LLEN', `visor:rl:five:{${ip}}`), 3);
    // no connection left behind by the reload: still one per primary per worker
    await until(async () => {
      const now = await Promise.all(prims.map(visorConns));
      return now.every((n, i) => n === conns0[i]);
    }, 3000 * SLOW, `visor's connections per primary back to ${conns0}`);
  });

  it('redis-cli --cluster reshard of slots holding visor\'s keys under load: only 200/429, then exact limits on the new owner', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const y = yaml(up, c);
    const a = await startVisor(y);
    const b = await startVisor(y);
    const [p0, p1] = await warm([a, b], c, 4);
    // the slots redis-cli will move: the 400 lowest of p0
    const N = 400;
    const moving = new Set((await c.slotsOf(p0)).slice(0, N));
    const loadIps = clientsOnSlots((s) => moving.has(s), 12, { group: 3 });
    const fresh = clientsOnSlots((s) => moving.has(s), 6, { group: 4 });
    for (const ip of loadIps) assert.equal(await c.nodeForKey(ip), p0);
    const red0 = (await metric(a, 'visor_redis_cluster_redirects_total')) + (await metric(b, 'visor_redis_cluster_redirects_total'));
    const ref0 = (await metric(a, 'visor_redis_cluster_refreshes_total')) + (await metric(b, 'visor_redis_cluster_refreshes_total'));
    const l = load([a, b], loadIps, { loops: 6 });
    let r;
    try {
      await delay(300);
      r = await c.reshard(p0, p1, N);
      await delay(300);
    } finally {
      await l.stop();
    }
    await c.waitOk();
    const t = tally(l.seen);
    console.log(`# reshard of ${N} slots under load: ${r.ms} ms; ${l.seen.length} requests: ${JSON.stringify(t)}`);
    assert.ok(l.seen.length > 100, `requests flowed (${l.seen.length})`);
    assert.deepEqual(t, { 200: l.seen.length }, `every request answered 200: ${JSON.stringify(t)}`);
    for (const s of r.slots) assert.ok(moving.has(s));
    for (const ip of loadIps) assert.equal(await c.nodeForKey(`visor:rl:api:{${ip}}`), p1, `${ip} now on ${p1.port}`);
    // the load's keys moved with their slots (MIGRATE) and kept counting on the new owner
    for (const ip of loadIps) {
      assert.equal(await p1.cmd('EXISTS', `visor:rl:api:{${ip}}`), 1, `${ip}'s key on ${p1.port}`);
      assert.equal(await holds(p0, `visor:rl:api:{${ip}}`), false, `${ip}'s key gone from ${p0.port}`);
    }
    // fresh clients on the moved slots: exact on the new owner, nothing on the old one
    const both = async (name) => (await metric(a, name)) + (await metric(b, name));
    const mark = [a.stderr.length, b.stderr.length, await both('visor_redis_errors_total'), await both('visor_redis_cluster_refreshes_total')];
    const res = await burstPer([a, b], fresh, 8, '/five', 16);
    const since = `visor_redis_errors_total +${(await both('visor_redis_errors_total')) - mark[2]}, ` +
      `visor_redis_cluster_refreshes_total +${(await both('visor_redis_cluster_refreshes_total')) - mark[3]} during the burst; log:\n` +
      [...a.stderr.slice(mark[0]), ...b.stderr.slice(mark[1])].join('\n');
    for (const ip of fresh) {
      assert.deepEqual(tally(res[ip].map((x) => x.status)), { 200: 5, 429: 3 }, `${ip} (slot ${keySlot(ip)}): ${since}`);
      assert.equal(await p1.cmd('LLEN', `visor:rl:five:{${ip}}`), 5);
      assert.equal(await holds(p0, `visor:rl:five:{${ip}}`), false);
    }
    const red1 = (await metric(a, 'visor_redis_cluster_redirects_total')) + (await metric(b, 'visor_redis_cluster_redirects_total'));
    const ref1 = (await metric(a, 'visor_redis_cluster_refreshes_total')) + (await metric(b, 'visor_redis_cluster_refreshes_total'));
    console.log(`# reshard: redirects ${red0} -> ${red1}, topology refreshes ${ref0} -> ${ref1}`);
    assert.ok(red1 > red0 || ref1 > ref0, `the moves were seen (redirects ${red0} -> ${red1}, refreshes ${ref0} -> ${ref1})`);
    // still one connection per primary per worker
    for (const p of await c.primaries()) assert.equal(await visorConns(p), 4, `connections on ${p.port}`);
  });

  it('SIGKILL of a primary under load (on_error: local): 0 unplanned 5xx; limits enforced in Redis on the promoted replica within seconds', T, async () => {
    const up = await startUpstream();
    const c = await startCluster();
    const v = await startVisor(yaml(up, c));
    const prims = await warm([v], c, 2);
    const map = await c.slotMap();
    const victim = prims[1];
    const rep = await c.replicaOf(victim);
    const loadIps = prims.flatMap((p, i) => clientsOnSlots((s) => map[s] === p, 2, { group: i }));
    // visor's first script call on the new primary (a replica gets the effects, never EVALSHA)
    const evalshas = async () => scriptCalls(rep);
    assert.equal(await evalshas(), 0);
    let firstCall = null;
    let polling = true;
    const poller = (async () => {
      while (polling && firstCall === null) {
        try {
          if ((await evalshas()) > 0) firstCall = Date.now();
        } catch {
          /* being promoted */
        }
        await delay(5);
      }
    })();
    const l = load([v], loadIps, { loops: 4 });
    let f;
    try {
      await delay(300);
      f = await c.failover(victim);
      await until(() => firstCall !== null, 10000 * SLOW, 'a script call on the promoted replica', 5);
      await delay(300);
    } catch (e) {
      console.log(v.stderr.slice(-40).join('\n'));
      throw e;
    } finally {
      polling = false;
      await poller;
      await l.stop();
    }
    const t = tally(l.seen);
    console.log(`# cluster failover: kill -> promotion ${f.promotedAt - f.killedAt} ms; kill -> visor's first script call on the new primary ${firstCall - f.killedAt} ms ` +
      `(promotion -> first call ${firstCall - f.promotedAt} ms); ${l.seen.length} requests under load: ${JSON.stringify(t)}`);
    assert.ok(l.seen.length > 50, `requests flowed (${l.seen.length})`);
    assert.deepEqual(t, { 200: l.seen.length }, `every request answered 200 (no 5xx): ${JSON.stringify(t)}`);
    assert.ok(firstCall - f.promotedAt < 5000 * SLOW, `first call on the new primary ${firstCall - f.promotedAt} ms after the promotion`);
    // limits enforced in Redis on the new primary, exactly, for fresh clients of its slots
    const map2 = await c.slotMap();
    const fresh = clientsOnSlots((s) => map2[s] === f.replica, 3, { group: 5 });
    const res = await burstPer([v], fresh, 8, '/five', 8);
    for (const ip of fresh) {
      assert.deepEqual(tally(res[ip].map((x) => x.status)), { 200: 5, 429: 3 }, ip);
      assert.equal(await f.replica.cmd('LLEN', `visor:rl:five:{${ip}}`), 5, `${ip} counted on the new primary ${f.replica.port}`);
    }
    for (const p of await c.primaries()) assert.equal(await visorConns(p), 2, `connections on ${p.port}`);
    assert.equal((await get(v, '/free')).status, 200);
  });
});

// ---- rediss:// -------------------------------------------------------------------------------

// A CA and one certificate (SAN DNS:localhost, IP:127.0.0.1; server and client auth) for
// every node, made with the openssl CLI.
function makePki() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'cluster-pki-'));
  const ossl = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  ossl(['genpkey', ...ec, '-out', 'ca.key']);
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=cluster test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
  ossl(['genpkey', ...ec, '-out', 'server.key']);
  ossl(['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr']);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x4321',
    '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt']);
  const f = (n) => path.join(dir, n);
  const read = (n) => fs.readFileSync(f(n));
  return {
    dir,
    ca: f('ca.crt'),
    tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'),
      client: { ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key') } },
  };
}

describe('redis.cluster over TLS (rediss://)', () => {
  let pki;
  before(() => {
    pki = makePki();
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));
  afterEach(cleanupAll);

  it('TLS to every node (the bus too), verified against ca_file; limits exact across the primaries', T, async () => {
    const up = await startUpstream();
    const c = await startCluster({ tls: pki.tls });
    const v = await startVisor(yaml(up, c, { url: 'rediss://cluster/0', tls: `  tls:\n    ca_file: ${pki.ca}\n` }));
    const prims = await warm([v], c, 2);
    const map = await c.slotMap();
    const ips = prims.map((p, i) => clientsOnSlots((s) => map[s] === p, 1, { group: i })[0]);
    const res = await burstPer([v], ips, 14, '/exact', 14);
    for (const [i, ip] of ips.entries()) {
      assert.deepEqual(tally(res[ip].map((x) => x.status)), { 200: 10, 429: 4 }, ip);
      assert.equal(await prims[i].cmd('LLEN', `visor:rl:exact:{${ip}}`), 10);
    }
    for (const p of prims) {
      assert.equal(await visorConns(p), 2, `connections on ${p.port}`);
      assert.ok((await scriptCalls(p)) > 0, `visor's script calls on ${p.port} over TLS`);
    }
  });
});

// ---- configuration -----------------------------------------------------------------------------

describe('redis.cluster configuration', () => {
  afterEach(cleanupAll);

  it('visor -t refuses redis.cluster with redis.sentinel, a db other than 0, an empty or malformed node list (file:line:col); warns about an unused URL host and a password-less cluster on the network', T, async () => {
    const up = await startUpstream();
    const base = (redis) => rlYaml({ upstream: up.addr, workers: 1, extra: `redis:\n${redis}` });
    const check = async (redis) => {
      const { file } = await writeConfigFile(base(redis));
      return { ...runVisor(['-t', '-c', file]), file };
    };
    const err = (r, re) => {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${path.basename(r.file).replace('.', '\\.')}:\\d+:\\d+: error: ${re}`), r.stderr);
    };
    err(await check('  url: "redis://cluster/0"\n  cluster:\n    nodes: ["127.0.0.1:7000"]\n' +
      '  sentinel:\n    master: mymaster\n    nodes: ["127.0.0.1:26379"]\n'),
    'redis\\.cluster: a Redis Cluster has no sentinels: use redis\\.cluster or redis\\.sentinel, not both');
    err(await check('  url: "redis://cluster/3"\n  cluster:\n    nodes: ["127.0.0.1:7000"]\n'),
      'redis\\.url: a Redis Cluster has only database 0, got /3');
    err(await check('  url: "redis://cluster/0"\n  cluster:\n    nodes: []\n'),
      'redis\\.cluster\\.nodes: at least one cluster node \\(host:port\\) is needed');
    const r = await check('  url: "redis://cluster/0"\n  cluster:\n    nodes: ["a b:1", "h:0", "::1:5"]\n');
    err(r, "redis\\.cluster\\.nodes\\[0\\]: expected host:port, got 'a b:1'");
    err(r, "redis\\.cluster\\.nodes\\[1\\]: the port must be a number from 1 to 65535, got 'h:0'");
    err(r, "redis\\.cluster\\.nodes\\[2\\]: an IPv6 address must be written in brackets");
    // valid: seeds with and without a port (default 6379); a URL naming a server is reported
    // as unused, a password-less URL for nodes on the network is warned about
    let ok = await check('  url: "redis://cluster/0"\n  cluster:\n    nodes: ["127.0.0.1:7000", localhost, "[::1]:7001"]\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /warning: redis/);
    ok = await check('  url: "redis://127.0.0.1:6380/0"\n  cluster:\n    nodes: ["192.0.2.7:7000"]\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /:\d+:\d+: warning: redis\.url names 127\.0\.0\.1:6380, which is not used with redis\.cluster/);
    assert.match(ok.stderr, /:\d+:\d+: warning: redis\.url has no password and the cluster is on the network \('?192\.0\.2\.7:7000'?\)/);
  });
});
