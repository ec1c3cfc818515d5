// Starts visor for one test: writes its YAML (placeholders filled in), picks free ports,
// spawns it (under $VISOR_WRAP when set), waits until every listener accepts, and captures
// its stdout/stderr as lines (JSON-parsed where they parse). Registered for cleanup: at the
// end of the test it is stopped with SIGTERM and, when a wrapper (valgrind) or a sanitizer
// reported errors, the test fails with the report.
//
// Placeholders in the YAML:
//   {{HTTPS}} {{HTTP}} {{ADMIN}}                 127.0.0.1:<free port> (a port is only
//   {{HTTPS_PORT}} {{HTTP_PORT}} {{ADMIN_PORT}}   allocated when its placeholder appears)
//   {{CERT}} {{KEY}} {{ALT_CERT}} {{ALT_KEY}} {{CA}}   test PKI paths (certs.mjs)
//   {{DIR}}                                        this instance's private temp dir
import { spawn, spawnSync } from 'node:child_process';
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

// startVisor(yamlText) or startVisor({ yaml, env, args, cwd, startTimeoutMs, waitListen })
export async function startVisor(spec) {
  const opts = typeof spec === 'string' ? { yaml: spec } : { ...spec };
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

  const untrack = track(
    `visor ${proc.pid}`,
    async () => {
      untrack();
      try {
        const unexpected = v.exitCode !== undefined && !v.stopping;
        // Clients and upstreams are closed by now: nothing is in flight, so a drain must be
        // immediate; a visor still running 2 s after SIGTERM holds a connection it lost track of.
        if (isRunning()) {
          try {
            await v.stop('SIGTERM', 2000 * SLOW);
          } catch (e) {
            if (e.drainTimeout) e.message = `at test end, with its clients and upstreams already closed: ${e.message}`;
            throw e;
          }
        }
        else assertWrapperClean();
        if (unexpected && (v.exitSignal || v.exitCode !== 0)) {
          throw new Error(`visor died during the test\n${v.describe()}`);
        }
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
  }
  return v;
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
  return res;
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
