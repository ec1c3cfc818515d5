// Helpers for the rate-limit, lockout and probe suites (issue 4):
//   redisOnPort(port, args)  a redis-server on a fixed port, so a test can kill it and bring it
//                            back at the same address: { port, url, cmd(...), stop(), kill(sig),
//                            pause(), resume() }; registered for cleanup
//   hs256(secret, claims)    an HS256 JWT (node:crypto)
//   burst(v, n, opts)        n requests at once over `sockets` keep-alive connections → statuses
//   tally(statuses)          { '200': 12, '429': 3 }
//   rlYaml({...})            minimalYaml plus rate_limits / routes / redis / extra sections
//   evalshaCalls(redis)      store script calls from INFO commandstats: FCALL (the Functions
//                            library) plus EVALSHA (Redis without Functions); EVAL apart
//   fcallCalls(redis)        FCALL alone
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import nodeHttps from 'node:https';
import {
  https, minimalYaml, redisCmd, freePort, getCerts, SLOW, delay, track, dedent,
} from '../lib/harness.mjs';

export async function redisOnPort(port, extraArgs = [], { password } = {}) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exitedP = new Promise((r) => proc.on('close', () => { exited = true; r(); }));
  const cmd = (...args) => (password ? redisCmdAuth(port, password, ...args) : redisCmd(port, ...args));
  const r = {
    port,
    proc,
    url: `redis://127.0.0.1:${port}/0`,
    cmd,
    log: () => out,
    stop: async () => {
      if (!exited) {
        proc.kill('SIGCONT');
        proc.kill('SIGTERM');
        await Promise.race([exitedP, delay(5000)]);
        if (!exited) {
          proc.kill('SIGKILL');
          await exitedP;
        }
      }
    },
    kill: async (sig = 'SIGKILL') => {
      if (!exited) {
        proc.kill(sig);
        await exitedP;
      }
    },
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
  };
  const untrack = track(`redis ${port}`, async () => {
    untrack();
    await r.stop();
  }, () => {
    if (!exited) proc.kill('SIGKILL');
  });
  const end = Date.now() + 10000 * SLOW;
  for (;;) {
    if (exited) throw new Error(`redis-server exited early:\n${out}`);
    try {
      const pong = await cmd('PING');
      if (pong === 'PONG') break;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) {
      await r.stop();
      throw new Error(`redis-server did not answer on ${port}:\n${out}`);
    }
    await delay(30);
  }
  return r;
}

// One command after AUTH, on a fresh connection (for servers with requirepass).
async function redisCmdAuth(port, password, ...args) {
  const { default: net } = await import('node:net');
  const enc = (a) => {
    let s = `*${a.length}\r\n`;
    for (const x of a) {
      const b = Buffer.from(String(x));
      s += `$${b.length}\r\n${b.toString('latin1')}\r\n`;
    }
    return Buffer.from(s, 'latin1');
  };
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => { s.destroy(); reject(new Error('redis timeout')); }, 5000);
    s.on('connect', () => s.write(Buffer.concat([enc(['AUTH', password]), enc(args)])));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (stage === 0) {
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        if (buf[0] === '-') { clearTimeout(timer); s.destroy(); reject(new Error(buf.slice(1, i))); return; }
        buf = buf.slice(i + 2);
        stage = 1;
      }
      const i = buf.indexOf('\r\n');
      if (i < 0) return;
      const t = buf[0];
      const line = buf.slice(1, i);
      let v;
      if (t === '+') v = line;
      else if (t === ':') v = Number(line);
      else if (t === '-') { clearTimeout(timer); s.destroy(); reject(new Error(line)); return; }
      else if (t === '$') {
        const n = Number(line);
        if (n < 0) v = null;
        else if (buf.length < i + 2 + n + 2) return;
        else v = buf.slice(i + 2, i + 2 + n);
      } else {
        v = buf;                       // arrays: raw text is enough for the tests
      }
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export function hs256(secret, claims) {
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ iat: now, exp: now + 600, ...claims })}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// n requests started together over `sockets` keep-alive TLS connections to visor v (or to
// several visors, round robin); resolves with the statuses in request order. A failed request
// counts as status 0.
export async function burst(vs, n, { path = '/x', headers = {}, sockets = 100, method = 'GET' } = {}) {
  const list = Array.isArray(vs) ? vs : [vs];
  const agents = list.map(() => new nodeHttps.Agent({ keepAlive: true, maxSockets: sockets, ca: getCerts().caPem, servername: 'localhost' }));
  try {
    const reqs = [];
    for (let i = 0; i < n; i++) {
      const k = i % list.length;
      reqs.push(https({ port: list[k].ports.https, path, headers, method, agent: agents[k] })
        .then((r) => r.status, () => 0));
    }
    return await Promise.all(reqs);
  } finally {
    for (const a of agents) a.destroy();
  }
}

export function tally(statuses) {
  const t = {};
  for (const s of statuses) t[s] = (t[s] || 0) + 1;
  return t;
}

// minimalYaml plus the sections of this suite. `redis`: { url, timeout, onError } or null;
// `policies`: YAML text of rate_limits entries; `routes`: YAML text of the routes list items.
export function rlYaml({ upstream, redis = null, policies = '', routes = '', headers = null, extra = '', client = '', workers = 2, listen = '' }) {
  let y = '';
  if (workers) y += `workers: ${workers}\n`;
  if (redis) {
    y += `redis:\n  url: ${redis.url}\n`;
    // under a wrapper (valgrind) visor is ~30x slower: a 50 ms budget would turn every test
    // into an on_error test
    let timeout = redis.timeout;
    if (SLOW > 1 && (!timeout || (/^\d+ms$/.test(timeout) && parseInt(timeout, 10) < 1000))) timeout = '1s';
    if (timeout) y += `  timeout: ${timeout}\n`;
    if (redis.onError) y += `  on_error: ${redis.onError}\n`;
  }
  if (policies.trim()) y += 'rate_limits:\n' + dedent(policies).split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n') + '\n';
  if (headers) y += `rate_limit_headers: ${headers}\n`;
  if (routes.trim()) y += 'routes:\n' + dedent(routes).split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n') + '\n';
  if (extra.trim()) y += dedent(extra);
  return minimalYaml({ upstream, client, listen, extra: y });
}

// Resolves once each of the `workers` workers logged its Redis connection up (under valgrind
// the handshake can take longer than the listener takes to open).
export async function redisUp(v, workers = 2) {
  for (let i = 0; i < workers; i++) {
    await v.waitForLog((j) => j && new RegExp(`\\(worker ${i}\\): connected`).test(j.msg || ''), 10000 * SLOW, { stream: 'stderr' });
  }
  return v;
}

// startVisor, then (when the YAML has a redis section) wait for every worker's connection.
export async function startV(yaml) {
  const { startVisor } = await import('./harness.mjs');
  const v = await startVisor(yaml);
  if (/^redis:/m.test(yaml)) {
    const m = yaml.match(/^workers: (\d+)/m);
    await redisUp(v, m ? Number(m[1]) : 2);
  }
  return v;
}

export async function evalshaCalls(redis) {
  const info = String(await redis.cmd('INFO', 'commandstats'));
  const n = (c) => Number((info.match(new RegExp(`cmdstat_${c}:calls=(\\d+)`)) || [0, 0])[1]);
  return n('fcall') + n('evalsha');
}

export async function fcallCalls(redis) {
  const m = String(await redis.cmd('INFO', 'commandstats')).match(/cmdstat_fcall:calls=(\d+)/);
  return m ? Number(m[1]) : 0;
}

export async function evalCalls(redis) {
  const info = await redis.cmd('INFO', 'commandstats');
  const m = String(info).match(/cmdstat_eval:calls=(\d+)/);
  return m ? Number(m[1]) : 0;
}

export { freePort };
