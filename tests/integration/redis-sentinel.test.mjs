// redis.sentinel (issue 14 part 2): visor finds the primary through Redis Sentinel and follows
// its failovers. Real processes from Debian's redis-server (`redis-server --sentinel` is what
// the redis-sentinel package runs): one primary, one replica (--replicaof), three sentinels
// (quorum 2, down-after-milliseconds 1000, failover-timeout 3000), all started by the test on
// free ports in a temp dir (lib/sentinel.mjs).
// What is checked:
//  - the primary is asked from the sentinels (the URL's host:port are unused), verified with
//    ROLE, and the limits are exact across two workers on it;
//  - SIGKILL of the primary under load with on_error: local: 0 unplanned 5xx; every worker moves
//    to the promoted replica (visor_redis_failovers_total, the log); limits are enforced on the
//    NEW primary (its keys appear, counts exact) within 2 s of the sentinels' +switch-master;
//    the figure (time from +switch-master to visor's first script call on the new primary, from
//    the new primary's MONITOR) is printed;
//  - -READONLY: the primary turned into a replica by hand (REPLICAOF) while the sentinels are
//    told about the new primary without a +switch-master: visor's next write gets READONLY,
//    on_error answers it, visor asks again and moves;
//  - one sentinel of three killed (the first one asked): nothing changes — a reconnect asks
//    the next sentinel, the limits stay exact in Redis;
//  - config errors: no master, no nodes, a bad node; `visor -t` warns about a URL host:port
//    that sentinel mode does not use.
// After each test the harness checks the process is up and its fds / connections_active are
// back to the baseline.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, https, keepAliveAgent, runVisor, writeConfigFile, cleanupAll, SLOW,
  delay, until, http, deadPort,
} from './lib/harness.mjs';
import { tally, rlYaml } from './lib/rl-helpers.mjs';
import { startSentinelSet, subscribe, MASTER } from './lib/sentinel.mjs';

const T = { timeout: 90000 * SLOW };

// /free is not limited; /exact by 10 a minute per client IP; everything else by `limit`.
function yaml(up, set, { limit = 100000, onError = 'local', workers = 2, url = `redis://${MASTER}/0`, timeout = '200ms', tls = '' } = {}) {
  return rlYaml({
    upstream: up.addr,
    workers,
    listen: 'admin: "{{ADMIN}}"',
    policies: `api: { limit: ${limit}, window: 60s, key: ip }\nexact: { limit: 10, window: 60s, key: ip }`,
    routes: '- path: /free\n- path: /exact\n  rate_limits: [exact]\n- path: /\n  rate_limits: [api]',
    extra: `redis:\n  url: "${url}"\n  timeout: ${SLOW > 1 ? '2s' : timeout}\n  on_error: ${onError}\n` +
      `  sentinel:\n    master: ${set.master}\n    nodes: ${set.nodes}\n` + tls,
  });
}

const get = (v, p, agent) => https({ port: v.ports.https, path: p, agent });
const logged = (v, re) => v.stderrJson.filter((j) => re.test(j.msg || ''));
const waitLog = (v, re, ms = 5000) => v.waitForLog((j) => j && re.test(j.msg || ''), ms * SLOW, { stream: 'stderr' });

// Every worker's store connection up on `port` (the data connection, not a sentinel's).
async function dataUp(v, port, workers = 2) {
  const re = new RegExp(`^redis 127\\.0\\.0\\.1:${port} \\(worker \\d\\): connected( \\(TLS\\))?$`);
  await until(() => new Set(logged(v, re).map((j) => j.msg)).size >= workers, 10000 * SLOW,
    `${workers} workers connected to ${port}`);
}

async function metric(v, name) {
  const r = await http({ port: v.ports.admin, path: '/metrics' });
  const m = r.body.toString().match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : null;
}

async function statuses(v, n, p) {
  const agent = keepAliveAgent();
  const out = [];
  for (let i = 0; i < n; i++) out.push((await get(v, `${p}${i}`, agent)).status);
  agent.destroy();
  return out;
}

// Client loops over the limited route until stop(); returns { stop, seen }.
function load(v, loops = 4) {
  let stopped = false;
  const seen = [];
  const loop = async (k) => {
    const agent = keepAliveAgent();
    for (let i = 0; !stopped; i++) {
      try {
        seen.push((await get(v, `/l${k}-${i}`, agent)).status);
      } catch {
        seen.push(0);
      }
    }
    agent.destroy();
  };
  const all = Array.from({ length: loops }, (_, k) => loop(k));
  return { seen, stop: async () => { stopped = true; await Promise.all(all); } };
}

describe('redis.sentinel', () => {
  afterEach(cleanupAll);

  it('asks the sentinels for the primary (the URL names no server) and keeps the limits exact on it', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    const v = await startVisor(yaml(up, set));
    await dataUp(v, set.primary.port);
    assert.equal(logged(v, new RegExp(`redis sentinel ${MASTER} \\(worker \\d\\): the primary is 127\\.0\\.0\\.1:${set.primary.port}$`)).length, 2);
    assert.deepEqual(await statuses(v, 12, '/exact'), [...Array(10).fill(200), 429, 429]);
    assert.equal(await set.primary.cmd('EXISTS', 'visor:rl:exact:{127.0.0.1}'), 1, 'counted on the primary');
    assert.equal(await metric(v, 'visor_redis_failovers_total'), 0);
    // the replica got the key by replication, never a write from visor
    const clients = String(await set.replicas[0].cmd('CLIENT', 'LIST'));
    assert.doesNotMatch(clients, /cmd=(evalsha|fcall)/);
  });

  it('SIGKILL of the primary under load (on_error: local): 0 unplanned 5xx, every worker follows, limits exact on the new primary within 2 s of +switch-master', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    const v = await startVisor(yaml(up, set));
    await dataUp(v, set.primary.port);
    const newp = set.replicas[0];
    let switchedAt = null;
    // the first announcement by any sentinel (each publishes when it learns the switch)
    for (const s of set.sentinels) {
      await subscribe(s.port, '+switch-master', (msg, at) => {
        if (msg.startsWith(`${MASTER} `) && (switchedAt === null || at < switchedAt)) switchedAt = at;
      });
    }
    // visor's first script call on the new primary: INFO commandstats polled every few ms
    // (MONITOR cannot tell: the sentinels kill the normal clients of the replica they promote)
    let firstWrite = null;
    let polling = true;
    const evalshas = async () => Number((String(await newp.cmd('INFO', 'commandstats')).match(/cmdstat_(?:fcall|evalsha):calls=(\d+)/) || [0, 0])[1]);
    assert.equal(await evalshas(), 0);
    const poller = (async () => {
      while (polling && firstWrite === null) {
        try {
          // a connection killed by the promotion (CLIENT KILL) would hang the helper's client
          const n = await Promise.race([evalshas(), delay(100).then(() => 0)]);
          if (n > 0) firstWrite = Date.now();
        } catch {
          /* being promoted */
        }
        await delay(2);
      }
    })();
    const l = load(v);
    try {
      await delay(300);
      const killedAt = Date.now();
      await set.primary.kill('SIGKILL');
      await until(() => switchedAt !== null, 20000 * SLOW, '+switch-master', 20);
      const [h, p] = await set.ask(2);
      assert.equal(`${h}:${p}`, `127.0.0.1:${newp.port}`, 'the sentinels promoted the replica');
      await until(() => firstWrite !== null, 10000 * SLOW, 'a script call on the new primary', 5);
      const lag = firstWrite - switchedAt;
      console.log(`# sentinel failover: kill -> +switch-master ${switchedAt - killedAt} ms; ` +
        `+switch-master -> first script call seen on the new primary ${lag} ms (polled every ~2 ms)`);
      assert.ok(lag < 2000 * SLOW, `first write on the new primary ${lag} ms after +switch-master`);
      await dataUp(v, newp.port);
      await until(async () => (await metric(v, 'visor_redis_failovers_total')) === 2, 2000 * SLOW, 'both workers counted the failover');
      await delay(200);
      await poller;
    } catch (e) {
      console.log(v.stderr.join('\n'));
      console.log(JSON.stringify(tally(l.seen)));
      throw e;
    } finally {
      polling = false;
      await poller;
      await l.stop();
    }
    const t = tally(l.seen);
    assert.ok(l.seen.length > 50, `requests flowed (${l.seen.length})`);
    assert.deepEqual(t, { 200: l.seen.length }, `every request answered 200 (no 5xx): ${JSON.stringify(t)}`);
    assert.equal(logged(v, new RegExp(`redis sentinel ${MASTER} \\(worker \\d\\): the primary moved from 127\\.0\\.0\\.1:${set.primary.port} to 127\\.0\\.0\\.1:${newp.port}`)).length, 2);
    // limits enforced on the new primary, exactly
    assert.equal(await newp.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1, 'the new primary holds the key');
    assert.deepEqual(await statuses(v, 12, '/exact'), [...Array(10).fill(200), 429, 429]);
    assert.equal(await newp.cmd('EXISTS', 'visor:rl:exact:{127.0.0.1}'), 1);
    assert.equal((await get(v, '/free')).status, 200);
  });

  it('-READONLY from a demoted primary: on_error answers, visor asks the sentinels again and moves', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    const v = await startVisor(yaml(up, set, { workers: 1 }));
    await dataUp(v, set.primary.port, 1);
    assert.deepEqual(await statuses(v, 3, '/exact'), [200, 200, 200]);
    const old = set.primary;
    const newp = set.replicas[0];
    // the sentinels learn the new primary without a +switch-master (as after a failover
    // whose message visor missed) ...
    for (const s of set.sentinels) {
      assert.equal(await s.cmd('SENTINEL', 'REMOVE', MASTER), 'OK');
      assert.equal(await s.cmd('SENTINEL', 'MONITOR', MASTER, '127.0.0.1', String(newp.port), '2'), 'OK');
    }
    // ... and the roles swap by hand: visor's connection is now to a replica
    assert.equal(await newp.cmd('REPLICAOF', 'NO', 'ONE'), 'OK');
    assert.equal(await old.cmd('REPLICAOF', '127.0.0.1', String(newp.port)), 'OK');
    const s = await statuses(v, 3, '/x');
    assert.deepEqual(s, [200, 200, 200], 'on_error: local answers the READONLY one');
    await waitLog(v, /redis 127\.0\.0\.1:\d+ \(worker 0\): connection lost: READONLY reply: asking the sentinels again/);
    await dataUp(v, newp.port, 1);
    assert.equal(logged(v, new RegExp(`the primary moved from 127\\.0\\.0\\.1:${old.port} to 127\\.0\\.0\\.1:${newp.port}$`)).length, 1);
    assert.equal(await metric(v, 'visor_redis_failovers_total'), 1);
    await until(async () => (await get(v, '/y')).status === 200 && (await newp.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}')) === 1,
      2000 * SLOW, 'counted on the new primary');
  });

  it('a stale answer naming a replica: ROLE refuses it and visor asks again until the sentinels name the primary', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    const rep = set.replicas[0];
    // every sentinel names the replica (as one that has not seen a failover yet would)
    for (const s of set.sentinels) {
      await s.cmd('SENTINEL', 'REMOVE', MASTER);
      await s.cmd('SENTINEL', 'MONITOR', MASTER, '127.0.0.1', String(rep.port), '2');
    }
    const v = await startVisor(yaml(up, set, { workers: 1, onError: 'closed' }));
    await waitLog(v, /redis 127\.0\.0\.1:\d+ \(worker 0\): cannot connect: not a primary \(ROLE says slave\): asking the sentinels again/);
    assert.deepEqual(await statuses(v, 2, '/x'), [503, 503], 'no primary known: on_error: closed');
    assert.equal(await rep.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 0);
    for (const s of set.sentinels) {
      await s.cmd('SENTINEL', 'REMOVE', MASTER);
      await s.cmd('SENTINEL', 'MONITOR', MASTER, '127.0.0.1', String(set.primary.port), '2');
    }
    await dataUp(v, set.primary.port, 1);
    await until(async () => (await get(v, '/z')).status === 200, 3000 * SLOW, 'answers from the primary');
    assert.equal(await set.primary.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1);
  });

  it('one sentinel of three killed (the first one asked): nothing changes, a reconnect asks the next one', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    const v = await startVisor(yaml(up, set, { onError: 'closed' }));
    await dataUp(v, set.primary.port);
    assert.deepEqual(await statuses(v, 4, '/exact'), [200, 200, 200, 200]);
    await set.sentinels[0].kill('SIGKILL');
    assert.deepEqual(await statuses(v, 3, '/exact'), [200, 200, 200], 'the primary still answers');
    // make every worker reconnect: the question goes to sentinel 0 (dead), then sentinel 1
    const before = logged(v, /\(worker \d\): connected$/).length;
    await set.primary.cmd('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await until(() => logged(v, new RegExp(`^redis 127\\.0\\.0\\.1:${set.primary.port} \\(worker \\d\\): connected$`)).length >= 4,
      5000 * SLOW, 'both workers back on the primary');
    assert.ok(logged(v, /\(worker \d\): connected$/).length > before);
    await until(async () => (await get(v, '/free')).status === 200, 1000);
    assert.deepEqual(await statuses(v, 5, '/exact'), [200, 200, 200, 429, 429], 'the count went on in Redis: 10 in all');
    assert.equal(await metric(v, 'visor_redis_failovers_total'), 0);
  });
});

describe('redis.sentinel with no sentinel reachable', () => {
  afterEach(cleanupAll);

  it('every sentinel refuses: logged once, on_error: closed answers 503, unlimited routes answer, the process stays up', T, async () => {
    const up = await startUpstream();
    const dead = { master: MASTER, nodes: `["127.0.0.1:${await deadPort()}", "127.0.0.1:${await deadPort()}"]` };
    const v = await startVisor(yaml(up, dead, { workers: 1, onError: 'closed' }));
    await waitLog(v, new RegExp(`^redis sentinel ${MASTER} \\(worker 0\\): cannot connect: no sentinel could name the primary$`));
    assert.deepEqual(await statuses(v, 2, '/x'), [503, 503]);
    assert.equal((await get(v, '/free')).status, 200);
    await delay(1200);                    // several rounds of questions later
    assert.equal(logged(v, /cannot connect: no sentinel could name the primary/).length, 1, 'once per outage');
    assert.deepEqual(await statuses(v, 2, '/y'), [503, 503]);
  });
});

describe('redis.sentinel authentication', () => {
  afterEach(cleanupAll);

  it('an ACL user on the sentinels (username + password_file); a wrong password is logged as the sentinels\' refusal and on_error applies', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet();
    for (const s of set.sentinels) {
      assert.equal(await s.cmd('ACL', 'SETUSER', 'visor', 'on', '>sentinel-pw', 'allcommands', 'allchannels'), 'OK');
    }
    const pwFile = path.join(set.dir, 'sentinel_pw');
    const cfg = () => yaml(up, set, { workers: 1, onError: 'closed' })
      .replace(/(nodes: \[[^\n]*\]\n)/, `$1    username: visor\n    password_file: ${pwFile}\n`);
    fs.writeFileSync(pwFile, 'sentinel-pw\n');
    const v = await startVisor(cfg());
    await dataUp(v, set.primary.port, 1);
    assert.deepEqual(await statuses(v, 3, '/exact'), [200, 200, 200]);
    const who = String(await set.sentinels[0].cmd('CLIENT', 'LIST'));
    assert.match(who, /user=visor /, 'visor asked as the ACL user');
    await v.stop();

    fs.writeFileSync(pwFile, 'wrong-pw\n');
    const v2 = await startVisor(cfg());
    await waitLog(v2, /redis sentinel 127\.0\.0\.1:\d+ \(worker 0\): cannot connect: handshake refused: WRONGPASS/);
    assert.ok(!v2.stderr.join('\n').includes('wrong-pw'), 'the password is never logged');
    assert.deepEqual(await statuses(v2, 2, '/x'), [503, 503], 'no primary known: on_error: closed');
    assert.equal((await get(v2, '/free')).status, 200);
  });
});

describe('redis.sentinel configuration', () => {
  afterEach(cleanupAll);

  it('master and nodes are required, nodes are host:port; a URL host:port is reported as unused', T, async () => {
    const up = await startUpstream();
    const base = (sentinel, url = `redis://${MASTER}/0`) => rlYaml({
      upstream: up.addr, workers: 1,
      extra: `redis:\n  url: "${url}"\n  sentinel:\n${sentinel}`,
    });
    let { file } = await writeConfigFile(base('    nodes: []\n'));
    let r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.sentinel\.master is required/);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.sentinel\.nodes: at least one sentinel \(host:port\) is needed/);
    ({ file } = await writeConfigFile(base('    master: m\n    nodes: ["127.0.0.1:26379", "a b:1", "h:0", "::1:5"]\n')));
    r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.sentinel\.nodes\[1\]: expected host:port, got 'a b:1'/);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.sentinel\.nodes\[2\]: the port must be a number from 1 to 65535, got 'h:0'/);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.sentinel\.nodes\[3\]: an IPv6 address must be written in brackets, as \[::1\]:26379, got '::1:5'/);
    ({ file } = await writeConfigFile(base('    master: mymaster\n    nodes: ["127.0.0.1:26379", "[::1]:26380", localhost]\n', 'redis://127.0.0.1:6380/0')));
    r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /:\d+:\d+: warning: redis\.url names 127\.0\.0\.1:6380, which is not used with redis\.sentinel/);
    ({ file } = await writeConfigFile(base('    master: mymaster\n    nodes: ["127.0.0.1:26379"]\n')));
    r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stderr, /warning: redis/);
  });
});

// A CA and one server certificate (SAN DNS:localhost, IP:127.0.0.1) for every server and
// sentinel of the TLS set, made with the openssl CLI.
function makePki() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'sentinel-pki-'));
  const ossl = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  ossl(['genpkey', ...ec, '-out', 'ca.key']);
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=sentinel test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
  ossl(['genpkey', ...ec, '-out', 'server.key']);
  ossl(['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr']);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x1234',
    '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt']);
  const f = (n) => path.join(dir, n);
  const read = (n) => fs.readFileSync(f(n));
  return {
    dir,
    ca: f('ca.crt'),
    tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), authClients: 'no',
      client: { ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key') } },
  };
}

describe('redis.sentinel over TLS (rediss://)', () => {
  let pki;
  before(() => {
    pki = makePki();
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));
  afterEach(cleanupAll);

  it('TLS to the sentinels and to the primary, verified against ca_file; a SIGKILLed primary is followed over TLS with 0 unplanned 5xx', T, async () => {
    const up = await startUpstream();
    const set = await startSentinelSet({ tls: pki.tls });
    const v = await startVisor(yaml(up, set, { url: `rediss://${MASTER}/0`, tls: `  tls:\n    ca_file: ${pki.ca}\n` }));
    await dataUp(v, set.primary.port);
    assert.match(logged(v, /^redis 127\.0\.0\.1:\d+ \(worker 0\): connected/)[0].msg, /connected \(TLS\)$/);
    assert.ok(logged(v, /^redis sentinel 127\.0\.0\.1:\d+ \(worker \d\): connected \(TLS\)$/).length >= 2);
    assert.deepEqual(await statuses(v, 12, '/exact'), [...Array(10).fill(200), 429, 429]);
    const newp = set.replicas[0];
    const l = load(v);
    try {
      await delay(200);
      await set.primary.kill('SIGKILL');
      await until(() => logged(v, new RegExp(`^redis 127\\.0\\.0\\.1:${newp.port} \\(worker \\d\\): connected \\(TLS\\)$`)).length >= 2,
        20000 * SLOW, 'both workers on the new primary over TLS', 50);
      await delay(200);
    } finally {
      await l.stop();
    }
    assert.deepEqual(tally(l.seen), { 200: l.seen.length }, 'every request answered 200');
    assert.equal(await newp.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1, 'counted on the new primary');
    assert.equal(await metric(v, 'visor_redis_failovers_total'), 2);
  });
});
