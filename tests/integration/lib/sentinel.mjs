// A Redis Sentinel set for tests (issue 14 part 2), from Debian's redis-server binary
// (`redis-server sentinel.conf --sentinel`, what the redis-sentinel package runs): a primary,
// `replicas` replicas (--replicaof) and `sentinels` sentinels on free loopback ports, each
// sentinel with its own config file in a temp dir (Sentinel rewrites it). Fast timings:
// down-after-milliseconds 1000, failover-timeout 3000, quorum 2.
//   startSentinelSet() → { master, primary, replicas[], sentinels[], nodes (YAML list text),
//                          ask(i) → [host, port] from sentinel i, stop() }
//   sentinels[i]: { port, cmd(...), kill(sig) }
//   subscribe(port, channel, onMessage) → close(): a raw SUBSCRIBE connection
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, redisCmdVia, startRedis, SLOW, delay, until, track } from './harness.mjs';
import { redisOnPort } from './rl-helpers.mjs';

export const MASTER = 'mymaster';

async function startSentinel(dir, i, primaryPort, t) {
  const port = await freePort();
  const file = path.join(dir, `sentinel-${i}.conf`);
  const listen = t
    ? ['port 0', `tls-port ${port}`, `tls-cert-file ${t.cert}`, `tls-key-file ${t.key}`,
      `tls-ca-cert-file ${t.ca}`, 'tls-auth-clients no', 'tls-replication yes']
    : [`port ${port}`];
  fs.writeFileSync(file, [
    ...listen,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${MASTER} 127.0.0.1 ${primaryPort} 2`,
    `sentinel down-after-milliseconds ${MASTER} 1000`,
    `sentinel failover-timeout ${MASTER} 3000`,
    `sentinel parallel-syncs ${MASTER} 1`,
    '',
  ].join('\n'));
  const proc = spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exitedP = new Promise((r) => proc.on('close', () => { exited = true; r(); }));
  const s = {
    port,
    proc,
    log: () => out,
    cmd: (...args) => redisCmdVia({ port, tls: t ? t.client : null }, ...args),
    kill: async (sig = 'SIGKILL') => {
      if (!exited) {
        proc.kill(sig);
        await exitedP;
      }
    },
  };
  const untrack = track(`sentinel ${port}`, async () => {
    untrack();
    await s.kill('SIGTERM');
  }, () => {
    if (!exited) proc.kill('SIGKILL');
  });
  await until(async () => {
    if (exited) throw new Error(`redis-server --sentinel exited early:\n${out}`);
    try {
      return (await s.cmd('PING')) === 'PONG';
    } catch {
      return false;
    }
  }, 10000 * SLOW, `sentinel ${port}`);
  return s;
}

// tls: { cert, key, ca, client: { ca, cert, key } } runs every server and sentinel on TLS only
// (tls-replication yes), as lib/redis.mjs's startRedis does for one server.
export async function startSentinelSet({ replicas = 1, sentinels = 3, tls: t = null } = {}) {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'sentinel-'));
  track(`rm ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }), () => {}, { last: true });
  // --dir: a replica's full sync writes an RDB file, which must not land in the repository
  const server = async (args = []) => {
    if (!t) return redisOnPort(await freePort(), ['--dir', dir, ...args]);
    const r = await startRedis({ tls: t, extraArgs: ['--dir', dir, '--tls-replication', 'yes', ...args] });
    r.kill = async (sig = 'SIGKILL') => {
      if (r.proc.exitCode === null && r.proc.signalCode === null) {
        const gone = new Promise((res) => r.proc.once('close', res));
        r.proc.kill(sig);
        await gone;
      }
    };
    return r;
  };
  const primary = await server();
  const reps = [];
  for (let i = 0; i < replicas; i++) {
    reps.push(await server(['--replicaof', '127.0.0.1', String(primary.port)]));
  }
  for (const r of reps) {
    await until(async () => /master_link_status:up/.test(String(await r.cmd('INFO', 'replication'))),
      10000 * SLOW, 'the replica in sync');
  }
  const sens = [];
  for (let i = 0; i < sentinels; i++) sens.push(await startSentinel(dir, i, primary.port, t));
  // every sentinel knows the replicas and the other sentinels before a test may fail anything
  for (const s of sens) {
    await until(async () => {
      const r = await s.cmd('SENTINEL', 'replicas', MASTER);
      const o = await s.cmd('SENTINEL', 'sentinels', MASTER);
      return r.length === replicas && o.length === sentinels - 1;
    }, 15000 * SLOW, `sentinel ${s.port} to see the set`, 100);
  }
  return {
    dir,
    master: MASTER,
    primary,
    replicas: reps,
    sentinels: sens,
    nodes: `[${sens.map((s) => `"127.0.0.1:${s.port}"`).join(', ')}]`,
    ask: async (i = 0) => sens[i].cmd('SENTINEL', 'get-master-addr-by-name', MASTER),
  };
}

// A raw SUBSCRIBE connection; onMessage(payload, Date.now()) for each message.
export function subscribe(port, channel, onMessage) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    s.on('connect', () => s.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${channel.length}\r\n${channel}\r\n`));
    s.on('data', (d) => {
      const at = Date.now();
      buf += d.toString('latin1');
      // *3 $7 message $<n> channel $<n> payload
      for (;;) {
        const m = buf.match(/^\*3\r\n\$(\d+)\r\n(\w+)\r\n\$(\d+)\r\n([^\r]*)\r\n(?::(\d+)|\$(\d+)\r\n([^\r]*))\r\n/);
        if (!m) break;
        buf = buf.slice(m[0].length);
        if (m[2] === 'subscribe') resolve(() => s.destroy());
        else if (m[2] === 'message') onMessage(m[7], at);
      }
    });
    s.on('error', reject);
    track(`subscriber ${port}`, async () => s.destroy(), () => s.destroy());
  });
}

// MONITOR on a Redis: calls(re) → the Redis timestamps (ms) of the commands matching re.
export function monitor(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const lines = [];
    let buf = '';
    let ok = false;
    s.on('connect', () => s.write('*1\r\n$7\r\nMONITOR\r\n'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ok && line === '+OK') {
          ok = true;
          resolve({
            calls: (re) => lines.filter((l) => re.test(l)).map((l) => Number(l.slice(1).split(' ')[0]) * 1000),
            close: () => s.destroy(),
          });
        } else {
          lines.push(line);
        }
      }
    });
    s.on('error', (e) => (ok ? null : reject(e)));
    s.on('close', () => {});
    track(`monitor ${port}`, async () => s.destroy(), () => s.destroy());
  });
}

export { delay };
