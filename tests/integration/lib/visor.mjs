// Starts visor for one test: writes its YAML (placeholders filled in), picks free ports,
// spawns it (under $VISOR_WRAP when set), waits until every listener accepts, and captures
// its stdout/stderr as lines (JSON-parsed where they parse). Registered for cleanup: at the
// end of the test it is stopped with SIGTERM and, when a wrapper (valgrind) or a sanitizer
// reported errors, the test fails with the report.
//
// The leak invariant (checked in that cleanup, before the SIGTERM, whenever visor is still
// running and the test did not stop it): with every client, upstream and Redis of the test
// gone, visor must be back where it started — its open file descriptors (/proc/<pid>/fd) are
// those of the baseline taken once it had started (every worker and listener up), and, with listen.admin,
// `visor_connections_active` on /metrics is 0. Polled for a short bounded time; a failure
// lists every fd left over (sockets with their TCP state and peer). A test that cannot meet
// it says why: startVisor({ ..., noLeakCheck: 'why' }).
//
// Placeholders in the YAML:
//   {{HTTPS}} {{HTTP}} {{ADMIN}}                 127.0.0.1:<free port> (a port is only
//   {{HTTPS_PORT}} {{HTTP_PORT}} {{ADMIN_PORT}}   allocated when its placeholder appears)
//   {{CERT}} {{KEY}} {{ALT_CERT}} {{ALT_KEY}} {{CA}}   test PKI paths (certs.mjs)
//   {{DIR}}                                        this instance's private temp dir
import { spawn, spawnSync } from 'node:child_process';
import nodeHttp from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { getCerts } from './certs.mjs';
import { REPO, SLOW, delay, track } from './util.mjs';

export const VISOR_BIN = path.resolve(REPO, process.env.VISOR_BIN || './visor');

// True when the binary carries a sanitizer runtime (make asan): its allocator keeps a
// quarantine and shadow memory, so resident-memory bounds do not apply to it.
export const SANITIZED = (() => {
  try {
    return fs.readFileSync(VISOR_BIN).includes('__asan_init');
  } catch {
    return false;
  }
})();

function wrapArgv() {
  const w = (process.env.VISOR_WRAP || '').trim();
  return w ? w.split(/\s+/) : [];
}

// The exit code the wrapper uses to signal errors (valgrind --error-exitcode=N), if any.
function wrapErrorCode() {
  const m = (process.env.VISOR_WRAP || '').match(/--error-exitcode=(\d+)/);
  return m ? Number(m[1]) : null;
}

// Lines that a wrapper or sanitizer writes: valgrind "==PID== ...", ASan/UBSan "==PID==ERROR",
// UBSan "file.c:1:2: runtime error: ...".
const WRAP_LINE = /^==\d+==|runtime error:|^SUMMARY: (Address|Undefined|Leak|Thread)Sanitizer|^WARNING: ThreadSanitizer/;

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok) => {
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

function ensureBinary() {
  if (!fs.existsSync(VISOR_BIN)) {
    throw new Error(`visor binary not found at ${VISOR_BIN} (run \`make visor\`, or set VISOR_BIN)`);
  }
}

// Fills the placeholders. `ports` is filled lazily (and kept, so a reload keeps them).
async function fill(yaml, ports, dir) {
  const c = getCerts();
  for (const name of ['HTTPS', 'HTTP', 'ADMIN']) {
    if (new RegExp(`\\{\\{${name}(_PORT)?\\}\\}`).test(yaml) && !ports[name.toLowerCase()]) {
      ports[name.toLowerCase()] = await freePort();
    }
  }
  return yaml
    .replace(/\{\{(HTTPS|HTTP|ADMIN)_PORT\}\}/g, (_, n) => String(ports[n.toLowerCase()]))
    .replace(/\{\{(HTTPS|HTTP|ADMIN)\}\}/g, (_, n) => `127.0.0.1:${ports[n.toLowerCase()]}`)
    .replace(/\{\{CERT\}\}/g, c.cert)
    .replace(/\{\{KEY\}\}/g, c.key)
    .replace(/\{\{ALT_CERT\}\}/g, c.altCert)
    .replace(/\{\{ALT_KEY\}\}/g, c.altKey)
    .replace(/\{\{CA\}\}/g, c.ca)
    .replace(/\{\{DIR\}\}/g, dir);
}

function lineCollector(stream, sink, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      sink(line);
      onLine();
    }
  });
  stream.on('end', () => {
    if (buf) {
      sink(buf);
      buf = '';
      onLine();
    }
  });
}

function parseJson(line) {
  try {
    const v = JSON.parse(line);
    return v && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

function tail(lines, n = 40) {
  return lines.slice(-n).join('\n');
}

// ---- the leak invariant ---------------------------------------------------------------

// fd number → what it points to ("socket:[123]", "pipe:[45]", "anon_inode:[eventpoll]", a
// path); null once the process is gone.
function fdTable(pid) {
  let names;
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const m = new Map();
  for (const n of names) {
    try {
      m.set(Number(n), fs.readlinkSync(`/proc/${pid}/fd/${n}`));
    } catch {
      /* closed meanwhile */
    }
  }
  return m;
}

const TCP_STATES = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING',
};

// "0100007F:1F90" → "127.0.0.1:8080" (/proc/net/tcp{,6} write each 32-bit word in host order).
function procAddr(hex) {
  const [a, p] = hex.split(':');
  const port = parseInt(p, 16);
  const words = (a.match(/.{8}/g) || []).map((w) => Buffer.from(w, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return `${[...bytes].join('.')}:${port}`;
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `${[...bytes.subarray(12)].join('.')}:${port}`;
  }
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return `[${groups.join(':')}]:${port}`;
}

// socket inode → { state, local, remote } for the TCP sockets of pid's network namespace.
function tcpTable(pid) {
  const m = new Map();
  for (const f of ['tcp', 'tcp6']) {
    let text;
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      m.set(c[9], { state: TCP_STATES[c[3]] || c[3], local: procAddr(c[1]), remote: procAddr(c[2]) });
    }
  }
  return m;
}

// `visor_connections_active` from the admin listener, or an Error.
function activeConnections(port, timeoutMs) {
  return new Promise((resolve) => {
    const req = nodeHttp.get({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const m = body.match(/^visor_connections_active (\d+)$/m);
        resolve(m ? Number(m[1]) : new Error(`/metrics answered ${res.statusCode} without visor_connections_active`));
      });
      res.on('error', (e) => resolve(e));
    });
    req.on('timeout', () => req.destroy(new Error(`/metrics did not answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve(e));
  });
}

// Checks the invariant for a running visor whose test has closed its clients, upstreams and
// Redis; throws with every left-over when it does not hold within the bound.
//
// Why an exact comparison with no allowance is right: by the time this runs (cleanupAll, visor
// last) nothing the test started is left, so nothing may legitimately hold a socket open —
//  - pooled upstream connections end when the upstream closes them (visor reads idle pooled
//    connections to notice exactly that);
//  - Redis connections end when the test's redis-server stops (every Redis a test starts is
//    tracked and stopped before visor); reconnect attempts to a closed loopback port are
//    refused at once, so they exist for microseconds;
//  - a JWKS fetch is over with its server gone;
//  - the baseline already holds the listeners, epoll/eventfd/pipes of every thread (workers
//    and the JWKS fetcher start before the listeners accept).
// The bound is for what settles asynchronously: EOFs reaching each worker's loop, the reaper's
// next turn, a Redis reconnect backoff (at most 0.5 s), the admin connection of the check
// itself. 3 s is six of those backoffs; under a wrapper (valgrind) times SLOW.
async function assertSettled(v) {
  const boundMs = 3000 * SLOW;
  const end = Date.now() + boundMs;
  let extra = [];
  let active = null;
  let nowSize = 0;
  for (;;) {
    const now = fdTable(v.pid);
    if (now === null) return;        // exited: the death is reported by the caller
    active = v.ports.admin ? await activeConnections(v.ports.admin, 1000 * SLOW) : 0;
    // the admin connection of this check may still be open: read the fds after it
    const after = fdTable(v.pid);
    if (after === null) return;
    nowSize = after.size;
    extra = [...after].filter(([fd, target]) => v.baseline.get(fd) !== target);
    if (extra.length === 0 && active === 0) return;
    if (Date.now() > end) break;
    await delay(50);
  }
  const tcp = tcpTable(v.pid);
  let conf = '';
  try {
    conf = fs.readFileSync(v.configPath, 'utf8');
  } catch {
    /* removed */
  }
  const listeners = Object.entries(v.ports);
  const describeFd = ([fd, target]) => {
    const m = target.match(/^socket:\[(\d+)\]$/);
    const t = m && tcp.get(m[1]);
    if (m && !t) return `fd ${fd} -> ${target} (in no TCP table: a TCP socket in state CLOSE — reset by its peer — or not TCP)`;
    if (!t) return `fd ${fd} -> ${target}`;
    let who = '';
    const lport = Number(t.local.split(':').pop());
    const rport = t.remote.split(':').pop();
    const l = listeners.find(([, p]) => p === lport);
    if (t.state === 'LISTEN') who = 'a listening socket';
    else if (l) who = `a client connection on the ${l[0]} listener`;
    else {
      const line = conf.split('\n').find((x) => new RegExp(`:${rport}\\b`).test(x));
      who = line ? `to ${t.remote}, named in the config: ${line.trim()}` : `to ${t.remote}`;
    }
    const hint = t.state === 'CLOSE_WAIT' ? ' — the peer closed it, visor never did' : '';
    return `fd ${fd} -> ${target} TCP ${t.state} ${t.local} -> ${t.remote} (${who})${hint}`;
  };
  const lines = extra.map(describeFd);
  if (active instanceof Error) lines.push(`visor_connections_active: ${active.message}`);
  else if (active !== 0) lines.push(`visor_connections_active ${active} (want 0)`);
  throw new Error(
    `leak check: ${boundMs} ms after the test closed its clients, upstreams and Redis, visor pid ${v.pid} ` +
    `is not back to its state once it had started (baseline ${v.baseline.size} fds, now ${nowSize}):\n  ` +
    lines.join('\n  ') + `\n${v.describe()}`,
  );
}

// startVisor(yamlText) or startVisor({ yaml, env, args, cwd, startTimeoutMs, waitListen,
//   noLeakCheck })
//   noLeakCheck: 'why'  skip the leak invariant for this instance (the reason is mandatory and
//                       is the documentation of the exception)
// v.pauseStdout() / v.resumeStdout(): stop / resume reading visor's stdout pipe (a stalled log
// reader: once node's buffer and the pipe are full, visor's writes to stdout would block).
export async function startVisor(spec) {
  const opts = typeof spec === 'string' ? { yaml: spec } : { ...spec };
  if ('noLeakCheck' in opts && !(typeof opts.noLeakCheck === 'string' && opts.noLeakCheck.trim())) {
    throw new Error('startVisor: noLeakCheck must say why the leak invariant does not apply (a non-empty string)');
  }
  ensureBinary();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      // Another process took a port between freePort() and visor's bind(): try new ports.
      if (e.addrInUse && attempt < 3) continue;
      throw e;
    }
  }
}

async function startOnce(opts) {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-'));
  const ports = {};
  const configPath = path.join(dir, 'visor.yaml');
  fs.writeFileSync(configPath, await fill(opts.yaml, ports, dir));
  const argv = [...wrapArgv(), VISOR_BIN, '-c', configPath, ...(opts.args || [])];
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: opts.cwd || REPO,
    env: { ...process.env, ...(opts.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const waiters = new Set();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const v = {
    pid: proc.pid,
    proc,
    dir,
    configPath,
    ports,
    stdout: [],
    stderr: [],
    exitCode: undefined,
    exitSignal: undefined,
    stopping: false,
  };
  const debug = process.env.VISOR_IT_DEBUG;
  lineCollector(proc.stdout, (l) => {
    v.stdout.push(l);
    if (debug) process.stderr.write(`[visor ${proc.pid} out] ${l}\n`);
  }, notify);
  lineCollector(proc.stderr, (l) => {
    v.stderr.push(l);
    if (debug) process.stderr.write(`[visor ${proc.pid} err] ${l}\n`);
  }, notify);
  let spawnError = null;
  proc.on('error', (e) => {
    spawnError = e;
  });
  v.exited = new Promise((resolve) => {
    proc.on('close', (code, signal) => {
      v.exitCode = code;
      v.exitSignal = signal;
      notify();
      resolve(code);
    });
  });
  const isRunning = () => v.exitCode === undefined && !spawnError;

  Object.defineProperty(v, 'stdoutJson', { get: () => v.stdout.map(parseJson).filter(Boolean) });
  Object.defineProperty(v, 'stderrJson', { get: () => v.stderr.map(parseJson).filter(Boolean) });
  v.accessLogs = () => v.stdoutJson.filter((j) => j.type === 'access');
  v.describe = () =>
    `visor pid ${proc.pid} (${v.exitCode === undefined ? 'running' : `exited code=${v.exitCode} signal=${v.exitSignal}`})\n` +
    `--- stderr (tail) ---\n${tail(v.stderr)}\n--- stdout (tail) ---\n${tail(v.stdout, 10)}`;

  // waitForLog(pred, timeoutMs, {stream}): pred(json|undefined, rawLine, streamName) on every
  // line already captured and every later one; resolves with {json, line, stream}.
  v.waitForLog = (pred, timeoutMs = 5000 * SLOW, { stream = 'both' } = {}) =>
    new Promise((resolve, reject) => {
      const seen = { stdout: 0, stderr: 0 };
      const check = () => {
        for (const name of ['stdout', 'stderr']) {
          if (stream !== 'both' && stream !== name) continue;
          const arr = v[name];
          for (; seen[name] < arr.length; seen[name]++) {
            const line = arr[seen[name]];
            const json = parseJson(line);
            let ok = false;
            try {
              ok = pred(json, line, name);
            } catch {
              ok = false;
            }
            if (ok) {
              finish();
              resolve({ json, line, stream: name });
              return;
            }
          }
        }
        if (!isRunning()) {
          finish();
          reject(new Error(`visor exited while waiting for a log line\n${v.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching log line within ${timeoutMs} ms\n${v.describe()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  v.accessLogFor = (requestId, timeoutMs) =>
    v.waitForLog((j) => j && j.type === 'access' && j.request_id === requestId, timeoutMs, { stream: 'stdout' })
      .then((r) => r.json);

  v.signal = (sig) => {
    if (isRunning()) proc.kill(sig);
  };
  v.hup = () => v.signal('SIGHUP');
  // Sends a signal that is expected to end visor (so cleanup does not report a death), without
  // waiting; waitExit() then waits.
  v.terminate = (sig = 'SIGTERM') => {
    v.stopping = true;
    v.signal(sig);
  };
  // Resolves with the exit code once visor has exited (checking the wrapper's report);
  // rejects after timeoutMs.
  v.waitExit = async (timeoutMs = 10000 * SLOW) => {
    const t = await Promise.race([v.exited.then(() => 'exited'), delay(timeoutMs).then(() => 'timeout')]);
    if (t === 'timeout') throw new Error(`visor still running ${timeoutMs} ms later\n${v.describe()}`);
    assertWrapperClean();
    return v.exitCode;
  };
  v.kill = (sig = 'SIGKILL') => {
    v.stopping = true;
    v.signal(sig);
    return v.exited;
  };

  // Errors a wrapper (valgrind) or sanitizer reported; [] when clean.
  v.wrapperErrors = () => {
    const errs = v.stderr.filter((l) => WRAP_LINE.test(l));
    const code = wrapErrorCode();
    if (code !== null && v.exitCode === code) errs.unshift(`(wrapper exit code ${code})`);
    return errs;
  };
  const assertWrapperClean = () => {
    const errs = v.wrapperErrors();
    if (errs.length) {
      throw new Error(`${process.env.VISOR_WRAP ? 'wrapper' : 'sanitizer'} reported errors for visor pid ${proc.pid}:\n${errs.join('\n')}`);
    }
  };

  // stop(signal): sends it, waits for the exit (timeout → SIGKILL and an error), checks the
  // wrapper's report, resolves with the exit code (null when killed by a signal).
  v.stop = async (sig = 'SIGTERM', timeoutMs = 10000 * SLOW) => {
    v.stopping = true;
    if (isRunning()) {
      proc.kill(sig);
      const t = await Promise.race([v.exited.then(() => 'exited'), delay(timeoutMs).then(() => 'timeout')]);
      if (t === 'timeout') {
        proc.kill('SIGKILL');
        await v.exited;
        throw Object.assign(new Error(`visor did not exit within ${timeoutMs} ms of ${sig}\n${v.describe()}`), { drainTimeout: true });
      }
    }
    await v.exited;
    assertWrapperClean();
    return v.exitCode;
  };

  // Resident set size of visor's pid in kB (under a wrapper: the wrapper's process).
  v.rssKb = () => {
    try {
      const m = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  };

  // Rewrites the config file (same ports, same placeholders) — for SIGHUP tests.
  v.writeConfig = async (yaml) => {
    const text = await fill(yaml, ports, dir);
    const tmp = `${configPath}.new`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, configPath);
  };

  v.url = (p = '/') => `https://localhost:${ports.https}${p}`;

  v.pauseStdout = () => proc.stdout.pause();
  v.resumeStdout = () => proc.stdout.resume();

  const untrack = track(
    `visor ${proc.pid}`,
    async () => {
      untrack();
      try {
        const unexpected = v.exitCode !== undefined && !v.stopping;
        // a stalled reader left paused by a failing test must not hold visor's exit
        proc.stdout.resume();
        // Clients, upstreams and Redis are closed by now: visor must be back to its baseline.
        let leak = null;
        if (isRunning() && !v.stopping && v.baseline && !opts.noLeakCheck) {
          try {
            await assertSettled(v);
          } catch (e) {
            leak = e;
            // node:test reports only a test's first failure: when the test already failed,
            // this is the only place the leak shows
            process.stderr.write(`${e.message.split('\n--- stderr')[0]}\n`);
          }
        }
        // Nothing is in flight, so a drain must be immediate; a visor still running 2 s after
        // SIGTERM holds a connection it lost track of.
        if (isRunning()) {
          try {
            await v.stop('SIGTERM', 2000 * SLOW);
          } catch (e) {
            if (e.drainTimeout) e.message = `at test end, with its clients and upstreams already closed: ${e.message}`;
            if (leak) e.message = `${leak.message}\n--- and then ---\n${e.message}`;
            throw e;
          }
        }
        else assertWrapperClean();
        if (unexpected && (v.exitSignal || v.exitCode !== 0)) {
          throw new Error(`visor died during the test\n${v.describe()}`);
        }
        if (leak) throw leak;
      } finally {
        if (!process.env.VISOR_IT_KEEP) fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    () => {
      if (v.exitCode === undefined) proc.kill('SIGKILL');
    },
    { last: true },
  );

  // ---- wait until every listener accepts -------------------------------------------
  const timeoutMs = opts.startTimeoutMs || 10000 * SLOW;
  const end = Date.now() + timeoutMs;
  const want = Object.values(ports);
  if (opts.waitListen !== false) {
    for (;;) {
      if (spawnError) {
        untrack();
        throw new Error(`cannot spawn ${argv.join(' ')}: ${spawnError.message}`);
      }
      if (!isRunning()) {
        await v.exited;
        untrack();
        const text = v.stderr.join('\n');
        const e = new Error(`visor exited early (code=${v.exitCode} signal=${v.exitSignal})\n--- stderr ---\n${tail(v.stderr)}\n--- stdout ---\n${tail(v.stdout, 10)}`);
        e.addrInUse = /in use|EADDRINUSE/i.test(text);
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      const ok = await Promise.all(want.map((p) => canConnect(p)));
      if (ok.every(Boolean)) break;
      if (Date.now() > end) {
        proc.kill('SIGKILL');
        await v.exited;
        untrack();
        throw new Error(`visor did not accept on ports ${want.join(', ')} within ${timeoutMs} ms\n${v.describe()}`);
      }
      await delay(50);
    }
    v.baseline = await takeBaseline(v, fs.readFileSync(configPath, 'utf8'), end);
  }
  return v;
}

// The leak invariant's baseline, once visor has started: a port that accepts is not enough
// (the first worker's SO_REUSEPORT listener accepts while the next workers are still being
// created), so wait for the `visor X started: N workers` line, which main() logs once every
// worker, its listeners and the admin listener exist. With log.level warn or error that line
// is filtered: then the fd table must hold still for 300 ms. (The probe connections of the
// listen wait may still be open in visor: they are recorded by inode, so they cannot mask a
// later fd.)
async function takeBaseline(v, yamlText, end) {
  const quiet = /^log:[^\n]*\n(?:[ \t]+[^\n]*\n)*?[ \t]+level:\s*["']?(warn|error)\b|^log:\s*\{[^}]*level:\s*["']?(warn|error)\b/m.test(yamlText);
  if (!quiet) {
    try {
      await v.waitForLog((j) => j && / started: \d+ workers/.test(j.msg || ''), Math.max(1000 * SLOW, end - Date.now()), { stream: 'stderr' });
      return fdTable(v.pid);
    } catch {
      /* not logged (yet): fall back to a table that holds still */
    }
  }
  const same = (a, b) => a && b && a.size === b.size && [...a].every(([fd, t]) => b.get(fd) === t);
  let prev = fdTable(v.pid);
  for (let i = 0; i < 20; i++) {
    await delay(300);
    const now = fdTable(v.pid);
    if (same(prev, now)) return now;
    prev = now;
  }
  return prev;
}

// Runs visor to completion (for -t / -V / startup failures): { code, signal, stdout, stderr }.
// Throws when a wrapper (valgrind) or sanitizer reported errors.
export function runVisor(args, { env, cwd, timeoutMs = 10000 * SLOW, wrap = true } = {}) {
  ensureBinary();
  const argv = [...(wrap ? wrapArgv() : []), VISOR_BIN, ...args];
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: cwd || REPO,
    env: { ...process.env, ...(env || {}) },
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  if (r.error) throw r.error;
  const res = { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  if (wrap) {
    const errs = r.stderr.split('\n').filter((l) => WRAP_LINE.test(l));
    const code = wrapErrorCode();
    if (code !== null && r.status === code) errs.unshift(`(wrapper exit code ${code})`);
    res.wrapperErrors = errs;
    // Keep only visor's own lines for the assertions.
    res.stderr = r.stderr.split('\n').filter((l) => !WRAP_LINE.test(l)).join('\n');
  }
  // A wrapper's (valgrind) or sanitizer's report fails the caller, whatever visor's answer.
  const reported = r.stderr.split('\n').filter((l) => WRAP_LINE.test(l));
  const code = wrap ? wrapErrorCode() : null;
  if (reported.length || (code !== null && r.status === code)) {
    throw new Error(`${process.env.VISOR_WRAP && wrap ? 'wrapper' : 'sanitizer'} reported errors for visor ${args.join(' ')}:\n${reported.join('\n')}`);
  }
  if (args.includes('-t')) splitSummary(res, args);
  return res;
}

// `visor -t` ends with one line that says how the test went (docs: README, Configuration).
// It is checked here, against the exit status and the file named, for every caller, and moved
// to res.summary so res.stderr holds the diagnostics alone.
const SUMMARY = /^visor: configuration file (.+) test (is successful(?:, with (\d+) warnings?)?|failed: (\d+) (errors?|warnings? with --strict))$/;
function splitSummary(res, args) {
  const lines = res.stderr.split('\n');
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const last = lines.pop() || '';
  const m = last.match(SUMMARY);
  if (!m) throw new Error(`visor ${args.join(' ')}: the last stderr line is not the test summary: ${JSON.stringify(last)}`);
  const named = args.includes('--config-name') ? args[args.indexOf('--config-name') + 1]
    : args.includes('-c') ? args[args.indexOf('-c') + 1] : 'conf/visor.yaml';
  if (m[1] !== named) throw new Error(`visor -t summary names ${m[1]}, not ${named}`);
  const ok = m[2].startsWith('is successful');
  if (ok !== (res.code === 0)) throw new Error(`visor -t summary "${last}" with exit status ${res.code}`);
  res.summary = last;
  res.stderr = lines.length ? `${lines.join('\n')}\n` : '';
}

// Writes a YAML file (placeholders filled, fresh ports) into a temp dir cleaned at test end.
export async function writeConfigFile(yaml, name = 'visor.yaml') {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-conf-'));
  track(`conf dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  const ports = {};
  fs.writeFileSync(file, await fill(yaml, ports, dir));
  return { file, dir, ports };
}
