// A Redis Cluster for tests (issue 14 part 3), from Debian's redis-server and redis-cli
// (redis-tools, a dependency of redis-server): `primaries` primaries and as many replicas
// (`redis-server --cluster-enabled yes` on free loopback ports, `redis-cli --cluster create
// ... --cluster-replicas 1`), node timeout 1000 ms so a failover takes a few seconds. Each
// node has its own nodes.conf in a temp dir; the bus port is chosen free too (cluster-port:
// port + 10000 could be past 65535 for an ephemeral port).
//   startCluster({ password, tls }) → cluster:
//     nodes[]           every node: { port, id, cmd(...), kill(sig), alive(), log() }
//     seeds             YAML flow list text of the nodes' host:port, for redis.cluster.nodes
//     topology()        → [{ id, port, flags, master (id|null), slots: [[lo, hi], ...] }]
//                         from CLUSTER NODES of a live node
//     primaries()       → the nodes that are primaries now (sorted by port)
//     nodeForSlot(s)    → the node serving slot s now (CLUSTER SLOTS of a live node)
//     nodeForKey(k)     → nodeForSlot(keySlot(k))
//     cmdKey(k, ...)    a command sent to the node serving key k
//     moveSlot(s, from, to, { finish }) one slot moved by hand (MIGRATE); finish: false stops
//                         half-way (ASK), the returned finish() completes it (MOVED)
//     reshard(from, to, n) → { slots, ms }: `redis-cli --cluster reshard` of n slots, which
//                         are the n lowest slots `from` serves (redis-cli's choice; returned)
//     failover(node)    → { replica, killedAt, promotedAt }: SIGKILL of a primary and the wait
//                         for its replica's promotion (cluster_state:ok everywhere again)
//     waitOk()          every live node says cluster_state:ok and agrees on the slots
//     stop()            every node stopped by PID (SIGTERM, then SIGKILL), the dir removed
//   keySlot(key)       the Redis Cluster hash slot (CRC16/XMODEM of the hash tag or key,
//                      mod 16384), computed here; checked against CLUSTER KEYSLOT by the tests
//   clientsOnSlots(pred, n, { group }) n client addresses (198.18.0.0/15) whose slot as a hash
//                      tag satisfies pred
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { freePort } from './visor.mjs';
import { redisCmdVia as respCmd } from './redis.mjs';
import { SLOW, delay, until, track } from './util.mjs';

// ---- hash slots ------------------------------------------------------------------------

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = (c & 0x8000) ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(buf) {
  let c = 0;
  for (const b of buf) c = ((c << 8) & 0xffff) ^ CRC16_TABLE[((c >> 8) ^ b) & 0xff];
  return c;
}

// The slot of a key: the part between the first '{' and the next '}' when non-empty.
export function keySlot(key) {
  let k = Buffer.from(String(key));
  const o = k.indexOf('{');
  if (o >= 0) {
    const c = k.indexOf('}', o + 1);
    if (c > o + 1) k = k.subarray(o + 1, c);
  }
  return crc16(k) % 16384;
}

// n distinct client addresses whose slot (as a hash tag) satisfies pred(slot, ip), from the
// 198.18.0.0/15 benchmarking range (RFC 2544; only ever sent as X-Forwarded-For values).
// `group` (0..15) picks a disjoint block of 8192 addresses, so a test's sets never overlap.
export function clientsOnSlots(pred, n, { group = 0 } = {}) {
  const out = [];
  for (let i = group * 8192; out.length < n && i < (group + 1) * 8192; i++) {
    const ip = `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    if (pred(keySlot(ip), ip)) out.push(ip);
  }
  if (out.length < n) throw new Error(`clientsOnSlots: only ${out.length} of ${n} addresses found`);
  return out;
}

// ---- the cluster ----------------------------------------------------------------------

// tls: { cert, key, ca, client: { ca, cert, key } } runs every node on TLS only, the bus and
// replication too (--tls-cluster yes, --tls-replication yes); redis-cli gets --tls --cacert.
export async function startCluster({ primaries = 3, replicas = 1, password = null, tls: t = null, nodeTimeout = 1000 } = {}) {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'cluster-'));
  const nodes = [];
  const c = { dir, nodes, password, tls: t };
  const stopAll = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  c.stop = stopAll;
  const untrack = track(`redis cluster ${dir}`, async () => {
    untrack();
    await stopAll();
  }, () => {
    for (const n of nodes) n.killSync();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const total = primaries * (1 + replicas);
  // One at a time, each up before the next picks its ports: a port freePort() just returned
  // can be handed out again (to the next node, or to another test file running alongside)
  // before redis-server binds it. A node that cannot bind exits: started again on new ports.
  for (let i = 0; i < total; i++) {
    for (let attempt = 1; ; attempt++) {
      const n = await startNode(c, i, nodeTimeout);
      const up = await until(async () => !n.alive() || (await n.cmd('PING').catch(() => null)) === 'PONG',
        10000 * SLOW, `cluster node ${n.port} up`, 30).then(() => n.alive(), () => false);
      if (up) {
        nodes.push(n);
        break;
      }
      await n.kill();
      if (attempt === 3) throw new Error(`cluster node ${i} did not start: ${n.log().slice(-300)}`);
    }
  }
  const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
  await redisCli(c, ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'], 60000 * SLOW);
  for (const n of nodes) n.id = await n.cmd('CLUSTER', 'MYID');
  c.seeds = `[${addrs.map((a) => `"${a}"`).join(', ')}]`;

  c.live = () => nodes.filter((n) => n.alive());
  c.byId = (id) => nodes.find((n) => n.id === id);
  c.byPort = (port) => nodes.find((n) => n.port === Number(port));
  c.topology = async () => parseNodes(await c.live()[0].cmd('CLUSTER', 'NODES'));
  c.primaries = async () => (await c.topology())
    .filter((x) => x.flags.includes('master') && !x.flags.includes('fail') && x.slots.length)
    .map((x) => c.byId(x.id)).sort((a, b) => a.port - b.port);
  c.slotMap = async (via = c.live()[0]) => {
    const map = new Array(16384).fill(null);
    for (const [lo, hi, [, port]] of await via.cmd('CLUSTER', 'SLOTS')) {
      for (let s = lo; s <= hi; s++) map[s] = c.byPort(port);
    }
    return map;
  };
  c.nodeForSlot = async (slot) => (await c.slotMap())[slot];
  c.nodeForKey = async (key) => c.nodeForSlot(keySlot(key));
  c.cmdKey = async (key, ...args) => (await c.nodeForKey(key)).cmd(...args);
  c.slotsOf = async (node) => {
    const map = await c.slotMap();
    return map.map((n, s) => (n === node ? s : -1)).filter((s) => s >= 0);
  };

  // Every live node: cluster_state:ok, the same slot map, every replica's link up.
  c.waitOk = async (timeoutMs = 20000 * SLOW) => {
    await until(async () => {
      try {
        const live = c.live();
        let first = null;
        for (const n of live) {
          if (!/cluster_state:ok/.test(await n.cmd('CLUSTER', 'INFO'))) return false;
          const m = (await c.slotMap(n)).map((x) => (x ? x.port : 0)).join(',');
          if (first === null) first = m;
          else if (m !== first) return false;
        }
        for (const x of await c.topology()) {
          if (!x.flags.includes('slave') || !c.byId(x.id).alive()) continue;
          const master = c.byId(x.master);
          if (!master || !master.alive()) continue;
          if (!/master_link_status:up/.test(await c.byId(x.id).cmd('INFO', 'replication'))) return false;
        }
        return true;
      } catch {
        return false;
      }
    }, timeoutMs, 'the cluster to settle (cluster_state:ok, one slot map, replicas in sync)', 50);
  };

  c.reshard = async (from, to, n) => {
    const slots = (await c.slotsOf(from)).slice(0, n);
    const t0 = Date.now();
    await redisCli(c, ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.id,
      '--cluster-to', to.id, '--cluster-slots', String(n), '--cluster-yes'], 60000 * SLOW);
    return { slots, ms: Date.now() - t0 };
  };

  // One slot moved by hand, as redis-cli does it (SETSLOT IMPORTING / MIGRATING, MIGRATE of
  // its keys). finish: false leaves it half-way (requests for its keys get ASK from `from`);
  // the returned finish() hands it to `to` on every primary (MOVED from then on).
  c.moveSlot = async (slot, from, to, { finish = true } = {}) => {
    assert(from.id && to.id && from !== to, 'moveSlot: two distinct primaries');
    await to.cmd('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await from.cmd('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    for (;;) {
      const keys = await from.cmd('CLUSTER', 'GETKEYSINSLOT', slot, 100);
      if (!keys.length) break;
      await from.cmd('MIGRATE', '127.0.0.1', to.port, '', 0, 5000,
        ...(c.password ? ['AUTH', c.password] : []), 'KEYS', ...keys);
    }
    const done = async () => {
      const prims = await c.primaries();
      for (const n of [to, from, ...prims.filter((x) => x !== to && x !== from)]) {
        await n.cmd('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      }
    };
    if (finish) await done();
    return done;
  };

  c.replicaOf = async (primary) => {
    const x = (await c.topology()).find((y) => y.master === primary.id && c.byId(y.id).alive());
    return x ? c.byId(x.id) : null;
  };

  c.failover = async (primary, { onKilled = () => {} } = {}) => {
    const replica = await c.replicaOf(primary);
    if (!replica) throw new Error(`no replica of ${primary.port}`);
    const killedAt = Date.now();
    await primary.kill('SIGKILL');
    onKilled(killedAt);
    let promotedAt = null;
    await until(async () => {
      const role = await replica.cmd('ROLE').catch(() => null);
      if (role && role[0] === 'master') {
        promotedAt = promotedAt || Date.now();
        return true;
      }
      return false;
    }, 20000 * SLOW, `the replica ${replica.port} promoted`, 10);
    await c.waitOk();
    return { replica, killedAt, promotedAt };
  };

  await c.waitOk(30000 * SLOW);
  return c;
}

// CLUSTER NODES text → [{ id, port, flags: [], master, slots: [[lo, hi]] }] (migrating /
// importing markers "[...]" left out).
function parseNodes(text) {
  return String(text).trim().split('\n').map((l) => {
    const f = l.trim().split(' ');
    const port = Number(f[1].split('@')[0].split(':').pop());
    const slots = f.slice(8).filter((s) => !s.startsWith('[')).map((s) => {
      const [lo, hi] = s.split('-').map(Number);
      return [lo, hi === undefined ? lo : hi];
    });
    return { id: f[0], port, flags: f[2].split(','), master: f[3] === '-' ? null : f[3], slots };
  });
}

function redisCli(c, args, timeoutMs) {
  const env = { ...process.env };
  if (c.password) env.REDISCLI_AUTH = c.password;
  const tlsArgs = c.tls ? ['--tls', '--cacert', c.tls.ca, '--cert', c.tls.cert, '--key', c.tls.key] : [];
  return new Promise((resolve, reject) => {
    execFile('redis-cli', [...tlsArgs, ...args], { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function startNode(c, i, nodeTimeout) {
  const port = await freePort();
  let bus;
  do bus = await freePort(); while (bus === port);
  const t = c.tls;
  const listen = t
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', t.cert, '--tls-key-file', t.key,
      '--tls-ca-cert-file', t.ca, '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes']
    : ['--port', String(port)];
  const auth = c.password ? ['--requirepass', c.password, '--masterauth', c.password] : [];
  const proc = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
    '--cluster-port', String(bus), '--cluster-config-file', path.join(c.dir, `nodes-${i}.conf`),
    '--cluster-node-timeout', String(nodeTimeout), '--dir', c.dir, '--save', '', '--appendonly', 'no',
    // a replica's first sync at once (the default waits 5 s for more replicas to join it)
    '--repl-diskless-sync-delay', '0',
    ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  proc.on('error', (e) => (out += String(e)));
  const exitedP = new Promise((r) => proc.on('close', () => { exited = true; r(); }));
  const via = { port, password: c.password, tls: t ? t.client : null };
  const n = {
    port,
    bus,
    proc,
    id: null,
    log: () => out,
    alive: () => !exited,
    cmd: (...args) => respCmd(via, ...args),
    kill: async (sig = 'SIGKILL') => {
      if (!exited) {
        proc.kill(sig);
        await exitedP;
      }
    },
    stop: async () => {
      if (!exited) {
        proc.kill('SIGTERM');
        // (a timer cleared on exit: a pending delay(5000) would hold the test process open)
        let timer;
        await Promise.race([exitedP, new Promise((r) => { timer = setTimeout(r, 5000); })]);
        clearTimeout(timer);
        if (!exited) {
          proc.kill('SIGKILL');
          await exitedP;
        }
      }
    },
    killSync: () => {
      if (!exited) proc.kill('SIGKILL');
    },
  };
  return n;
}
