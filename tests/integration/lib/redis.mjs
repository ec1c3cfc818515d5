// A throw-away redis-server on a random loopback port (no persistence), and a tiny RESP
// client for tests that need to look into it or seed keys. With `tls` the server listens on
// TLS only (--port 0 --tls-port N): { cert, key, ca } are the server's files, authClients
// 'no' (default) or 'yes', and client: { ca, cert, key } what the helper's own client presents.
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { freePort } from './visor.mjs';
import { SLOW, delay, track } from './util.mjs';

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// Parses one RESP value at buf[pos]; returns [value, nextPos] or null when incomplete.
function decode(buf, pos = 0) {
  const le = buf.indexOf('\r\n', pos);
  if (le < 0) return null;
  const t = String.fromCharCode(buf[pos]);
  const line = buf.subarray(pos + 1, le).toString('utf8');
  const next = le + 2;
  switch (t) {
    case '+':
      return [line, next];
    case '-':
      return [Object.assign(new Error(line), { redis: true }), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.subarray(next, next + n).toString('utf8'), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const arr = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = decode(buf, p);
        if (!r) return null;
        arr.push(r[0]);
        p = r[1];
      }
      return [arr, p];
    }
    default:
      throw new Error(`bad RESP type ${t}`);
  }
}

// One command on a fresh connection: redisCmd(port, 'SET', 'k', 'v') → reply.
export function redisCmd(port, ...args) {
  return redisCmdVia({ port }, ...args);
}

// The same with options: to = { port, tls ({ ca, cert, key } contents), password (AUTH first),
// timeoutMs }. Rejects with Redis's error, or at once when the server closes before replying
// (a node shutting down).
export function redisCmdVia({ port, password = null, tls: t = null, timeoutMs = 5000 }, ...args) {
  return new Promise((resolve, reject) => {
    const s = t
      ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...t })
      : net.connect({ port, host: '127.0.0.1' });
    const want = password ? 2 : 1;
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${port} ${args[0]} timed out`));
    }, timeoutMs);
    s.on(t ? 'secureConnect' : 'connect', () => {
      s.write(password ? Buffer.concat([encode(['AUTH', password]), encode(args)]) : encode(args));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const replies = [];
      let p = 0;
      while (replies.length < want) {
        const r = decode(buf, p);
        if (!r) return;
        replies.push(r[0]);
        p = r[1];
      }
      clearTimeout(timer);
      s.destroy();
      const last = replies[want - 1];
      if (replies[0] instanceof Error) reject(replies[0]);
      else if (last instanceof Error) reject(last);
      else resolve(last);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`redis ${port} ${args[0]}: connection closed`));
    });
  });
}

export async function startRedis({ extraArgs = [], tls: t = null, port: fixedPort = null } = {}) {
  const port = fixedPort || await freePort();
  const listenArgs = t
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', t.cert, '--tls-key-file', t.key,
      '--tls-ca-cert-file', t.ca, '--tls-auth-clients', t.authClients || 'no']
    : ['--port', String(port)];
  const proc = spawn('redis-server', [...listenArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const via = { port, tls: t ? t.client : null };
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  let exited = false;
  const exitedP = new Promise((r) => proc.on('close', () => { exited = true; r(); }));
  proc.on('error', (e) => {
    out += String(e);
  });
  const r = {
    port,
    proc,
    url: `${t ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    addr: `127.0.0.1:${port}`,
    cmd: (...args) => redisCmdVia(via, ...args),
    stop: async () => {
      if (!exited) {
        proc.kill('SIGTERM');
        await Promise.race([exitedP, delay(5000)]);
        if (!exited) {
          proc.kill('SIGKILL');
          await exitedP;
        }
      }
    },
    // Stops it for "Redis down" tests; start() brings it back on the same port.
    log: () => out,
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
      if ((await redisCmdVia(via, 'PING')) === 'PONG') break;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) {
      await r.stop();
      throw new Error(`redis-server did not answer PING on ${port}:\n${out}`);
    }
    await delay(50);
  }
  return r;
}
