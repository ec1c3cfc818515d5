// The container test (make container-test → tests/container/run.sh → this file).
// Builds the image from ./Dockerfile with podman and checks, over TLS on loopback, what a user
// of the image relies on. Every check is exact (status codes, header values, exit codes); the
// output names each check, then prints the timings.
//
//   build    podman build; the image: USER 10001, EXPOSE, STOPSIGNAL, HEALTHCHECK, < 100 MB, no
//            compiler or -dev package, `visor -V` lists every library
//   config   `-t --strict` in the image for both baked files (REDIS_URL unset / set) and for
//            conf/kubernetes/configmap.yaml's file mounted over /etc/visor; no certificate or
//            no JWT key mounted: exit 1 with a clear JSON message; VISOR_DEV_CERT=1 serves a
//            self-signed localhost certificate, here on 443/80 inside the container as uid
//            10001 (the sysctl recipe of docs/deployment.md), so the 301 has no port; --cpus 1
//            gives 1 worker
//   single   one container, in-memory limits, a Node upstream on the host reached through
//            host.containers.internal, config from env vars, the certificate from a
//            bind-mounted directory, the JWT key a bind-mounted file: PID 1 is visor as uid
//            10001; `podman healthcheck run`; /healthz /readyz /metrics; proxying with HSTS,
//            helmet headers, X-Powered-By/Server removed, X-Forwarded-*; the 301 and /healthz
//            on the plain port; JWT 401s and a 200 with claims forwarded; a scrubbed 500;
//            certificate rotation with SIGHUP; `podman stop` with a request in flight (it
//            completes, exit code 0, within shutdown_timeout); logs: JSON lines,
//            access/security on stdout, no token
//   shared   redis-server on the host (password in a podman secret, REDIS_URL_FILE), the
//            compose example's app (conf/examples/app/server.js) as the upstream, and two
//            containers behind one trusted "load balancer" peer (VISOR_TRUSTED_PROXIES), TLS
//            from podman secrets: a limit of N across both admits exactly N of 3N concurrent
//            requests; a jti revoked in Redis is refused by both; both stop with exit code 0.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { getCerts } from '../integration/lib/certs.mjs';
import { https, http } from '../integration/lib/clients.mjs';
import { HELMET, HSTS_DEFAULT, assertEdge, assertOne, assertSecurityHeaders } from '../integration/lib/expect.mjs';
import { startUpstream } from '../integration/lib/upstream.mjs';
import { cleanupAll } from '../integration/lib/util.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = process.env.VISOR_CT_RUN || `${Date.now()}-${process.pid}`;
const WORK = process.env.VISOR_CT_WORK || fs.mkdtempSync('/tmp/visor-ct.');
const PULL = process.env.VISOR_CT_PULL || 'missing';
const IMAGE = `localhost/visor-ct:${RUN}`;
const LABEL = `visor-ct=${RUN}`;
const T0 = Date.now();

// ---- reporting ---------------------------------------------------------------------------
const timings = [];
let failures = 0;
let checks = 0;
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;
function say(msg) {
  process.stdout.write(`container-test: [${secs(Date.now() - T0).padStart(6)}] ${msg}\n`);
}
async function phase(name, fn) {
  const t = Date.now();
  say(`--- ${name}`);
  try {
    await fn();
    timings.push([name, Date.now() - t, 'ok']);
  } catch (e) {
    failures++;
    timings.push([name, Date.now() - t, 'FAILED']);
    say(`FAILED in ${name}: ${e.stack || e}`);
    if (e.details) process.stdout.write(`${e.details}\n`);
  }
}
// One named check: the failure message says which.
async function check(name, fn) {
  checks++;
  try {
    await fn();
    say(`ok   ${name}`);
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
}

// ---- podman ---------------------------------------------------------------------------------
// podman without systemd prints errors about health-check timers on run/stop/rm (the checks
// are run by hand with `podman healthcheck run`): dropped from what we show.
// Any line in podman's own log format (time="..." level=... msg=..., or WARN[0000]) is podman
// talking, never visor, whose lines are all JSON.
const NOISE = /unable to get systemd connection|Removing timer for container|^time="[^"]*" level=\w+ msg=|^(WARN|ERRO|INFO)\[\d+\]/;
function podman(args, { allowFail = false, timeoutMs = 60000, input } = {}) {
  const r = spawnSync('podman', args, { encoding: 'utf8', timeout: timeoutMs, input, maxBuffer: 64 << 20 });
  const stderr = (r.stderr || '').split('\n').filter((l) => l && !NOISE.test(l)).join('\n');
  const res = { code: r.status, stdout: r.stdout || '', stderr, signal: r.signal, error: r.error };
  if (!allowFail && (r.status !== 0 || r.error)) {
    const e = new Error(`podman ${args.join(' ')} → ${r.error ? r.error.message : `exit ${r.status}`}\n${stderr}`);
    throw e;
  }
  return res;
}

// The same, without blocking this process's event loop: for commands that wait on the
// upstream or Redis running here (podman stop while a request is in flight).
function podmanAsync(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr: stderr.split('\n').filter((l) => l && !NOISE.test(l)).join('\n') });
    });
  });
}

const made = { containers: new Set(), secrets: new Set() };
function secret(name, file) {
  const full = `visor-ct-${RUN}-${name}`;
  podman(['secret', 'create', full, file]);
  made.secrets.add(full);
  return full;
}

function runContainer(name, args, cmd = []) {
  const full = `visor-ct-${RUN}-${name}`;
  podman(['run', '-d', '--name', full, '--label', LABEL, ...args, IMAGE, ...cmd]);
  made.containers.add(full);
  return full;
}
function hostPort(c, port) {
  const out = podman(['port', c, `${port}/tcp`]).stdout.trim();
  const m = out.match(/:(\d+)$/m);
  assert.ok(m, `no host port for ${c} ${port}: ${out}`);
  return Number(m[1]);
}
function logs(c) {
  const r = podman(['logs', c], { allowFail: true });
  return { stdout: r.stdout.split('\n').filter(Boolean), stderr: r.stderr.split('\n').filter(Boolean) };
}
function inspect(c, fmt) {
  return podman(['inspect', c, '--format', fmt]).stdout.trim();
}
function describe(c) {
  const l = logs(c);
  return `--- ${c} stderr (tail) ---\n${l.stderr.slice(-25).join('\n')}\n--- ${c} stdout (tail) ---\n${l.stdout.slice(-10).join('\n')}`;
}
function withLogs(c, e) {
  e.details = (e.details ? `${e.details}\n` : '') + describe(c);
  return e;
}
function removeContainer(c) {
  podman(['rm', '-f', '-t', '0', c], { allowFail: true });
  made.containers.delete(c);
}

async function until(pred, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v;
    try {
      v = await pred();
    } catch {
      v = false;
    }
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

// Waits for a container to serve: admin /healthz 200 and the TLS port accepting.
async function waitServing(c, admin, tlsPort) {
  await until(async () => {
    const state = inspect(c, '{{.State.Status}}');
    if (state !== 'running') throw Object.assign(new Error(`${c} is ${state}`), { fatal: true });
    const r = await http({ port: admin, path: '/healthz', timeoutMs: 1000 });
    return r.status === 200 && (await canConnect(tlsPort));
  }, 20000, `${c} to serve`).catch((e) => {
    throw withLogs(c, e);
  });
}
function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: host === '0.0.0.0' ? '127.0.0.1' : host });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// ---- keys and tokens, made now, never committed ------------------------------------------------
const certs = getCerts();       // test CA + server certificate for localhost / 127.0.0.1
const jwtPair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherPair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ISSUER = 'https://auth.ct.example';
const AUDIENCE = 'api.ct.example';
const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(claims = {}, key = jwtPair.privateKey) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64u({ alg: 'ES256', typ: 'JWT' })}.${b64u({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', role: 'admin', iat: now, exp: now + 600, ...claims })}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const keyDir = path.join(WORK, 'keys');
fs.mkdirSync(keyDir, { recursive: true, mode: 0o755 });
const jwtPubFile = path.join(keyDir, 'jwt.pub.pem');
fs.writeFileSync(jwtPubFile, jwtPair.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });

// ---- the upstream and Redis on the host ----------------------------------------------------------
// They listen on the address host.containers.internal has in the containers (the bridge's
// gateway). That address exists while a container runs: an "anchor" container (sleep) keeps
// the bridge up for the whole run.
let up = null;
let hostIp = null;
async function hostAddress(c) {
  const out = podman(['exec', c, 'getent', 'hosts', 'host.containers.internal']).stdout.trim();
  const ip = out.split(/\s+/)[0];
  assert.ok(net.isIP(ip), `host.containers.internal in ${c}: ${out}`);
  return ip;
}
function upstreamHandler(req, res, record) {
  const u = new URL(req.url, 'http://x');
  const json = (status, obj, extra = {}) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };
  req.resume();
  req.on('end', () => {
    if (u.pathname === '/slow') {
      setTimeout(() => json(200, { slow: true }), Number(u.searchParams.get('ms') || 1000));
    } else if (u.pathname === '/boom') {
      const body = 'TypeError: Cannot read properties of undefined (reading \'id\')\n    at getUser (/srv/app/routes/users.js:42:27)\n    at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)\n';
      res.writeHead(500, { 'Content-Type': 'text/plain', 'X-Powered-By': 'Express' });
      res.end(body);
    } else {
      json(200, { url: req.url, headers: record.headers }, { 'X-Powered-By': 'Express', Server: 'node' });
    }
  });
}

const upHeader = (r, name) => {
  const all = r.json().headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return all.length ? all.join(', ') : undefined;
};

// ==================================================================================================
const builtIds = [];         // every image (layer) id the build printed: the cache in use
async function buildPhase() {
  const t = Date.now();
  const version = fs.readFileSync(path.join(REPO, 'VERSION'), 'utf8').trim();
  const r = spawnSync('podman', ['build', '--format', 'docker', `--pull=${PULL}`, '--build-arg', `VERSION=${version}`,
    '--label', LABEL, '-t', IMAGE, '.'], { cwd: REPO, encoding: 'utf8', timeout: 600000, maxBuffer: 256 << 20 });
  fs.writeFileSync(path.join(WORK, 'build.log'), `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) {
    const e = new Error(`podman build failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''})`);
    e.details = `${r.stdout}\n${r.stderr}`.split('\n').slice(-60).join('\n');
    throw e;
  }
  const cached = (r.stdout.match(/--> Using cache/g) || []).length;
  for (const m of r.stdout.matchAll(/^--> (?:Using cache )?([0-9a-f]{11,64})$/gm)) builtIds.push(m[1]);
  say(`built ${IMAGE} in ${secs(Date.now() - t)} (${cached} steps from the layer cache)`);
  const img = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout)[0];
  const cfg = img.Config;
  const mb = img.Size / 1e6;
  say(`image size ${mb.toFixed(1)} MB`);
  await check('image: runs as uid 10001, not root', () => assert.equal(cfg.User, '10001:10001'));
  await check('image: EXPOSE 8443 8080 9090', () =>
    assert.deepEqual(Object.keys(cfg.ExposedPorts || {}).sort(), ['8080/tcp', '8443/tcp', '9090/tcp']));
  await check('image: STOPSIGNAL SIGTERM', () => assert.equal(cfg.StopSignal, 'SIGTERM'));
  await check('image: HEALTHCHECK visor-healthcheck', () =>
    assert.deepEqual((img.Healthcheck || cfg.Healthcheck || {}).Test, ['CMD', '/usr/local/bin/visor-healthcheck']));
  await check('image: under 100 MB', () => assert.ok(mb < 100, `${mb.toFixed(1)} MB`));
  await check('image: no compiler, no -dev packages, visor -V lists every library', () => {
    const out = podman(['run', '--rm', '--entrypoint', 'sh', IMAGE, '-c',
      'command -v gcc cc make || true; dpkg-query -W -f "\\${Package}\\n" | grep -- "-dev$" || true; visor -V']).stdout;
    const lines = out.trim().split('\n');
    assert.equal(lines[0], `visor ${version}`, out);
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['visor', 'OpenSSL', 'libevent', 'jansson', 'hiredis', 'libyaml', 'llhttp'], out);
  });
}

// Env and mounts every visor container of the test gets (the JWT key is a bind-mounted file).
function baseArgs(extraEnv = {}) {
  const env = { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, VISOR_JWT_KEY: '/keys/jwt.pub.pem', VISOR_WORKERS: '2', ...extraEnv };
  const args = ['-v', `${jwtPubFile}:/keys/jwt.pub.pem:ro`];
  for (const [k, v] of Object.entries(env)) if (v !== null) args.push('-e', `${k}=${v}`);
  return args;
}
let tlsSecrets = null;
function tlsSecretArgs() {
  if (!tlsSecrets) tlsSecrets = { crt: secret('tls-crt', certs.cert), key: secret('tls-key', certs.key) };
  return ['--secret', `${tlsSecrets.crt},target=tls.crt,uid=10001,mode=0444`,
    '--secret', `${tlsSecrets.key},target=tls.key,uid=10001,mode=0400`];
}

async function configPhase() {
  await check('-t --strict passes for /etc/visor/visor-local.yaml (REDIS_URL unset)', () => {
    const r = podman(['run', '--rm', ...baseArgs(), ...tlsSecretArgs(), IMAGE, '-t', '--strict'], { allowFail: true });
    assert.equal(r.code, 0, r.stderr);
    // the copy without Redis is named as the file the user knows
    assert.equal(r.stderr.trim(), 'visor: configuration file /etc/visor/visor.yaml test is successful');
  });
  await check('-t without a certificate: the error names /etc/visor/visor.yaml at the line of the cert key', () => {
    const r = podman(['run', '--rm', ...baseArgs(), IMAGE, '-t'], { allowFail: true });
    assert.equal(r.code, 1, r.stderr);
    const baked = fs.readFileSync(path.join(REPO, 'conf/container.yaml'), 'utf8').split('\n');
    const line = baked.findIndex((l) => /^\s*- cert: /.test(l)) + 1;
    assert.match(r.stderr, new RegExp(`^/etc/visor/visor\\.yaml:${line}:\\d+: error: cannot load certificate`, 'm'));
    assert.ok(!r.stderr.includes('visor-local'), r.stderr);
    assert.match(r.stderr, /^visor: configuration file \/etc\/visor\/visor\.yaml test failed: \d+ errors?$/m);
  });
  await check('-t --strict passes for /etc/visor/visor.yaml (REDIS_URL set)', () => {
    const r = podman(['run', '--rm', ...baseArgs({ REDIS_URL: 'redis://:a-long-redis-password@redis:6379/0' }), ...tlsSecretArgs(),
      '--entrypoint', 'visor', IMAGE, '-t', '--strict', '-c', '/etc/visor/visor.yaml'], { allowFail: true });
    assert.equal(r.code, 0, r.stderr);
    const r2 = podman(['run', '--rm', ...baseArgs({ REDIS_URL: 'redis://:a-long-redis-password@redis:6379/0' }), ...tlsSecretArgs(),
      IMAGE, '-t', '--strict'], { allowFail: true });
    assert.equal(r2.code, 0, r2.stderr);
  });
  await check('no certificate mounted: exit 1 and a clear JSON message on stderr', () => {
    const r = podman(['run', '--rm', ...baseArgs(), IMAGE], { allowFail: true, timeoutMs: 30000 });
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    assert.equal(r.stdout, '', 'nothing on stdout');
    const lines = r.stderr.split('\n').map((l) => JSON.parse(l));
    const err = lines.find((j) => j.level === 'error');
    assert.ok(err, r.stderr);
    assert.match(err.msg, /^entrypoint: no TLS certificate at \/run\/secrets\/tls\.crt: mount your certificate chain and key/);
    assert.match(err.msg, /VISOR_DEV_CERT=1/);
  });
  await check('no JWT key mounted: exit 1 naming /run/secrets/jwt.pub.pem', () => {
    const r = podman(['run', '--rm', ...tlsSecretArgs(), '-e', `JWT_ISSUER=${ISSUER}`, '-e', `JWT_AUDIENCE=${AUDIENCE}`, IMAGE],
      { allowFail: true, timeoutMs: 30000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /"level":"error","msg":"entrypoint: no JWT public key at \/run\/secrets\/jwt\.pub\.pem: /);
  });

  await check('conf/kubernetes/configmap.yaml: its visor.yaml, mounted over /etc/visor, passes -t --strict', () => {
    const dir = path.join(WORK, 'k8s');
    const sec = path.join(WORK, 'k8s-secrets');
    fs.mkdirSync(path.join(dir, 'schemas'), { recursive: true });
    fs.mkdirSync(sec, { recursive: true });
    const text = fs.readFileSync(path.join(REPO, 'conf/kubernetes/configmap.yaml'), 'utf8');
    const block = (key) => {          // a "  key: |" literal block of the ConfigMap's data
      const lines = text.split('\n');
      const i = lines.indexOf(`  ${key}: |`);
      assert.ok(i >= 0, `no ${key} in configmap.yaml`);
      const out = [];
      for (const l of lines.slice(i + 1)) {
        if (l.trim() && !l.startsWith('    ')) break;
        out.push(l.slice(4));
      }
      return out.join('\n');
    };
    fs.writeFileSync(path.join(dir, 'visor.yaml'), block('visor.yaml'));
    fs.writeFileSync(path.join(dir, 'schemas/login.json'), block('login.json'));
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(sec, 'jwt.pub.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    fs.copyFileSync(certs.cert, path.join(sec, 'tls.crt'));
    fs.copyFileSync(certs.key, path.join(sec, 'tls.key'));
    for (const f of fs.readdirSync(sec)) fs.chmodSync(path.join(sec, f), 0o644);   // test keys only
    for (const d of [dir, path.join(dir, 'schemas'), sec]) fs.chmodSync(d, 0o755);
    const r = podman(['run', '--rm', '-v', `${dir}:/etc/visor:ro`, '-v', `${sec}:/run/secrets:ro`,
      '-e', 'REDIS_URL=redis://:a-long-redis-password@redis:6379/0', IMAGE, '-t', '--strict'], { allowFail: true });
    assert.equal(r.code, 0, r.stderr);
  });
  // VISOR_DEV_CERT=1, and the production port recipe: 443/80 inside, as uid 10001.
  const c = runContainer('devcert', [...baseArgs({ VISOR_DEV_CERT: '1', VISOR_HTTPS: '0.0.0.0:443', VISOR_HTTP: '0.0.0.0:80', VISOR_WORKERS: null }),
    '--sysctl', 'net.ipv4.ip_unprivileged_port_start=0', '--cpus', '1',
    '-p', '127.0.0.1::443', '-p', '127.0.0.1::80', '-p', '127.0.0.1::9090']);
  try {
    const p443 = hostPort(c, 443);
    const p80 = hostPort(c, 80);
    await waitServing(c, hostPort(c, 9090), p443);
    await check('VISOR_DEV_CERT=1: a self-signed certificate for localhost, and a warning', async () => {
      const cert = await new Promise((resolve, reject) => {
        const s = tls.connect({ port: p443, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, () => {
          const pc = s.getPeerCertificate();
          s.destroy();
          resolve(pc);
        });
        s.once('error', reject);
      });
      assert.equal(cert.subject.CN, 'localhost');
      assert.equal(cert.issuer.CN, 'localhost');
      assert.match(cert.subjectaltname, /DNS:localhost/);
      assert.ok(logs(c).stderr.some((l) => /"level":"warn","msg":"entrypoint: VISOR_DEV_CERT=1: serving a self-signed certificate/.test(l)));
    });
    await check('--cpus 1 and VISOR_WORKERS unset: 1 worker (the CPU quota, not the machine\'s CPUs)', () => {
      const err = logs(c).stderr;
      assert.ok(err.some((l) => /"msg":"entrypoint: CPU limit of 1 CPU\(s\): 1 workers/.test(l)), err.join('\n'));
      assert.ok(err.some((l) => /"msg":"visor \S+ started: 1 workers, config \/etc\/visor\/visor\.yaml"/.test(l)), err.join('\n'));
    });
    await check('listening on 80/443 inside as uid 10001: 301 to https://localhost/path?query (no port)', async () => {
      const r = await http({ port: p80, path: '/x/y?q=1', hostHeader: 'localhost' });
      assertEdge(r, 301, { hsts: null });
      assertOne(r, 'Location', 'https://localhost/x/y?q=1');
    });
    const t = Date.now();
    const stop = podman(['stop', '-t', '20', c]);
    await check('podman stop: exit code 0', () => {
      assert.equal(stop.code, 0);
      assert.equal(inspect(c, '{{.State.ExitCode}}'), '0');
      assert.ok(Date.now() - t < 8000, `took ${Date.now() - t} ms`);
    });
  } catch (e) {
    throw withLogs(c, e);
  } finally {
    removeContainer(c);
  }
}

const RATE = 37;            // VISOR_RATE_LIMIT of the single container: seen in its headers
const DRAIN = 5;            // VISOR_SHUTDOWN_TIMEOUT of the single container, seconds

// The single container's certificate: a bind-mounted directory (as a Kubernetes Secret
// volume is), so it can be rotated in place; the other containers get podman secrets.
const tlsDir = path.join(WORK, 'tls');
function installCert(cert, key) {
  fs.mkdirSync(tlsDir, { recursive: true, mode: 0o755 });
  for (const [src, name] of [[cert, 'tls.crt'], [key, 'tls.key']]) {
    const tmp = path.join(tlsDir, `.${name}.new`);
    fs.copyFileSync(src, tmp);
    if (process.getuid() === 0) fs.chownSync(tmp, 10001, 10001);
    else fs.chmodSync(tmp, 0o644);          // test keys only
    fs.renameSync(tmp, path.join(tlsDir, name));   // atomic, like the kubelet's swap
  }
}
function peerCert(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, () => {
      const pc = s.getPeerCertificate();
      s.destroy();
      resolve(pc);
    });
    s.once('error', reject);
  });
}

async function singlePhase() {
  installCert(certs.cert, certs.key);
  const c = runContainer('single', [...baseArgs({
    UPSTREAM: `host.containers.internal:${up.port}`, VISOR_RATE_LIMIT: String(RATE), VISOR_SHUTDOWN_TIMEOUT: `${DRAIN}s`,
    VISOR_TLS_CERT: '/tls/tls.crt', VISOR_TLS_KEY: '/tls/tls.key',
  }), '-v', `${tlsDir}:/tls:ro`, '-p', '127.0.0.1::8443', '-p', '127.0.0.1::8080', '-p', '127.0.0.1::9090']);
  try {
    const P = hostPort(c, 8443);
    const H = hostPort(c, 8080);
    const A = hostPort(c, 9090);
    await waitServing(c, A, P);
    await singleChecks(c, P, H, A);
  } catch (e) {
    throw withLogs(c, e);
  } finally {
    removeContainer(c);
  }
}

async function singleChecks(c, P, H, A) {
  const get = (p, headers = {}) => https({ port: P, path: p, headers });
  let firstId;

  await check('PID 1 is visor, uid 10001 (host uid 10001 too), with the in-memory file; no other process', () => {
    const rows = podman(['top', c, 'pid', 'user', 'huser', 'args']).stdout.trim().split('\n').slice(1)
      .map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows, [['1', 'visor', '10001', '/usr/local/bin/visor', '-c', '/etc/visor/visor-local.yaml', '--config-name', '/etc/visor/visor.yaml']]);
    const status = podman(['exec', c, 'grep', '^Uid:', '/proc/1/status']).stdout;
    assert.match(status, /^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
  });
  await check('podman healthcheck run: healthy', () => {
    const r = podman(['healthcheck', 'run', c], { allowFail: true });
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    const st = inspect(c, '{{.State.Health.Status}}');
    assert.equal(st, 'healthy');
  });
  await check('admin: /healthz 200 {"status":"ok"}, /readyz 200, /metrics Prometheus text', async () => {
    const h = await http({ port: A, path: '/healthz' });
    assert.equal(h.status, 200);
    assert.equal(h.text, '{"status":"ok"}');
    const r = await until(async () => (await http({ port: A, path: '/readyz' })).status === 200, 5000, '/readyz 200');
    assert.ok(r);
    const m = await http({ port: A, path: '/metrics' });
    assert.equal(m.status, 200);
    assertOne(m, 'Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(m.text, /^visor_connections_total \d+$/m);
  });
  await check('GET / proxied to the Node upstream on the host: 200, HSTS and helmet headers exact, X-Powered-By/Server removed', async () => {
    const r = await get('/hello?x=1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().url, '/hello?x=1');
    assertSecurityHeaders(r);
    assert.deepEqual(r.all('X-Powered-By'), []);
    assert.deepEqual(r.all('Server'), []);
    firstId = r.get('X-Request-Id');
    assert.match(firstId, /^[0-9a-f]{32}$/);
    assert.equal(upHeader(r, 'X-Request-Id'), firstId);
    assert.equal(upHeader(r, 'X-Forwarded-Proto'), 'https');
    assert.equal(upHeader(r, 'X-Forwarded-Host'), `localhost:${P}`);
    assert.match(upHeader(r, 'X-Forwarded-For'), /^\d+\.\d+\.\d+\.\d+$/);
  });
  await check(`config from env: VISOR_RATE_LIMIT=${RATE} is the RateLimit-Limit`, async () => {
    const r = await get('/');
    assertOne(r, 'RateLimit-Limit', String(RATE));
    assertOne(r, 'RateLimit-Policy', `${RATE};w=60`);
  });
  await check('plain port: 301 to https://localhost:8443/... (no HSTS), /healthz answered by visor', async () => {
    const r = await http({ port: H, path: '/a/b?c=d', hostHeader: `localhost:${H}` });
    assertEdge(r, 301, { hsts: null });
    assertOne(r, 'Location', 'https://localhost:8443/a/b?c=d');
    const h = await http({ port: H, path: '/healthz' });
    assert.equal(h.status, 200);
    assert.equal(h.text, '{"status":"ok"}');
  });
  await check('JWT: no token → 401 Bearer realm="api"', async () => {
    const r = await get('/api/items');
    assertEdge(r, 401);
    assertOne(r, 'WWW-Authenticate', 'Bearer realm="api"');
  });
  await check('JWT: wrong audience, wrong key, expired → 401 invalid_token', async () => {
    for (const t of [token({ aud: 'someone-else' }), token({}, otherPair.privateKey), token({ exp: Math.floor(Date.now() / 1000) - 3600 })]) {
      const r = await get('/api/items', { Authorization: `Bearer ${t}` });
      assertEdge(r, 401);
      assertOne(r, 'WWW-Authenticate', 'Bearer error="invalid_token"');
    }
  });
  const good = token();
  await check('JWT: a token signed with the mounted key → 200, claims forwarded, client copies dropped', async () => {
    const r = await get('/api/items', { Authorization: `Bearer ${good}`, 'X-User-Id': 'mallory' });
    assert.equal(r.status, 200, r.text);
    assert.equal(upHeader(r, 'X-User-Id'), 'alice');
    assert.equal(upHeader(r, 'X-User-Role'), 'admin');
    assertSecurityHeaders(r);
  });
  let boomId;
  await check('a 500 with a stack trace: generic JSON body, the trace only in the log', async () => {
    const r = await get('/boom');
    boomId = assertEdge(r, 500);
    assert.doesNotMatch(r.text, /users\.js|TypeError/);
  });
  await check('certificate rotation: new files + SIGHUP → new handshakes get the new certificate, no restart', async () => {
    assert.equal((await peerCert(P)).subject.CN, 'localhost');
    const reloads = () => logs(c).stderr.filter((l) => /"msg":"configuration reloaded/.test(l)).length;
    const n0 = reloads();
    installCert(certs.altCert, certs.altKey);
    podman(['kill', '--signal', 'HUP', c]);
    await until(() => reloads() === n0 + 1, 5000, 'the reload log line');
    assert.equal((await peerCert(P)).subject.CN, 'alt.visor.test');
    installCert(certs.cert, certs.key);
    podman(['kill', '--signal', 'HUP', c]);
    await until(() => reloads() === n0 + 2, 5000, 'the second reload');
    assert.equal((await peerCert(P)).subject.CN, 'localhost');
    assert.equal(inspect(c, '{{.State.Status}}'), 'running');
    assert.equal((await get('/')).status, 200);
  });
  let slowStatus = null;
  await check(`podman stop: the in-flight request finishes, exit code 0 within shutdown_timeout (${DRAIN}s)`, async () => {
    const before = up.requests.length;
    const slow = get('/slow?ms=1500').then((r) => { slowStatus = r.status; }, (e) => { slowStatus = e; });
    await until(() => up.requests.length > before, 3000, 'the slow request at the upstream');
    const t = Date.now();
    const r = await podmanAsync(['stop', '-t', '30', c]);
    const took = Date.now() - t;
    await slow;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(slowStatus, 200, `in-flight request: ${slowStatus}`);
    assert.equal(inspect(c, '{{.State.ExitCode}}'), '0');
    assert.ok(took >= 1000, `stop took ${took} ms: it did not wait for the in-flight request`);
    assert.ok(took < DRAIN * 1000 + 2000, `stop took ${took} ms`);
    say(`     (stop took ${took} ms with a 1.5 s request in flight)`);
  });
  await check('logs: stdout only JSON access/security lines, stderr only JSON lines; no token logged', () => {
    const l = logs(c);
    const out = l.stdout.map((x) => JSON.parse(x));
    const err = l.stderr.map((x) => JSON.parse(x));
    assert.ok(out.every((j) => j.type === 'access' || j.type === 'security'), 'stdout types');
    assert.ok(err.every((j) => typeof j.level === 'string' && typeof j.msg === 'string'), 'stderr fields');
    const first = out.find((j) => j.type === 'access' && j.request_id === firstId);
    assert.ok(first, `access line for ${firstId}`);
    assert.equal(first.path, '/hello');          // no query string in the access log
    assert.equal(first.status, 200);
    assert.equal(first.method, 'GET');
    const ev = out.find((j) => j.type === 'security' && j.event === 'scrubbed_error');
    assert.ok(ev && ev.request_id === boomId && ev.status === 500 && /users\.js:42/.test(ev.excerpt), 'scrubbed_error event');
    const all = l.stdout.join('\n') + l.stderr.join('\n');
    assert.ok(!all.includes(good.split('.')[2]) && !/Bearer/.test(all), 'a token or Authorization header in the logs');
    for (const m of [/^visor \S+ started: 2 workers, config \/etc\/visor\/visor\.yaml$/, /^SIGTERM: draining/, /^stopped$/]) {
      assert.ok(err.some((j) => m.test(j.msg)), `stderr has ${m}`);
    }
  });
}

// ==================================================================================================
let redis = null;
async function startRedis(bind) {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const password = crypto.randomBytes(24).toString('base64url');
  const binds = bind === '*' ? ['*'] : ['127.0.0.1', bind];
  const proc = spawn('redis-server', ['--port', String(port), '--bind', ...binds, '--requirepass', password,
    '--save', '', '--appendonly', 'no', '--dir', WORK], { stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(path.join(WORK, 'redis.pid'), String(proc.pid));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  redis = { proc, port, password, bind };
  await until(() => canConnect(port), 5000, 'redis-server').catch((e) => {
    e.details = out;
    throw e;
  });
  return redis;
}
function redisCli(...args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), '--no-auth-warning', ...args],
    { encoding: 'utf8', env: { ...process.env, REDISCLI_AUTH: redis.password }, timeout: 5000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

// conf/examples/app/server.js, the compose example's app, as the upstream of the shared
// scenario: it answers with the X-User-Id visor sets.
let exampleApp = null;
async function startExampleApp(host) {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const proc = spawn(process.execPath, [path.join(REPO, 'conf/examples/app/server.js')],
    { env: { ...process.env, HOST: host, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(path.join(WORK, 'app.pid'), String(proc.pid));
  exampleApp = { proc, port };
  await until(() => canConnect(port, host), 5000, 'the example app');
  return exampleApp;
}

async function sharedPhase() {
  const N = 10;
  const cs = [];
  try {
    const env = (gw) => baseArgs({
      UPSTREAM: `host.containers.internal:${exampleApp.port}`, REDIS_URL_FILE: '/run/secrets/redis_url', VISOR_RATE_LIMIT: String(N),
      VISOR_TRUSTED_PROXIES: `${gw}/32`,
      // generous for a busy CI machine: a command past it would be counted in memory instead
      VISOR_REDIS_TIMEOUT: '500ms',
    });
    const gw = hostIp;
    const urlFile = path.join(WORK, 'redis_url');
    fs.writeFileSync(urlFile, `redis://:${redis.password}@host.containers.internal:${redis.port}/0\n`, { mode: 0o600 });
    const urlSecret = secret('redis-url', urlFile);
    for (const name of ['lb-a', 'lb-b']) {
      cs.push(runContainer(name, [...env(gw), ...tlsSecretArgs(), '--secret', `${urlSecret},target=redis_url,uid=10001,mode=0400`,
        '-p', '127.0.0.1::8443', '-p', '127.0.0.1::9090']));
    }
    const ports = cs.map((c) => hostPort(c, 8443));
    for (const c of cs) await waitServing(c, hostPort(c, 9090), hostPort(c, 8443));
    await check('both instances: REDIS_URL from a secret file, every worker connected to Redis', async () => {
      for (const c of cs) {
        await until(() => logs(c).stderr.filter((l) => /"msg":"redis host\.containers\.internal:\d+ \(worker \d\): connected"/.test(l)).length === 2,
          10000, `${c}: 2 workers connected to Redis`).catch((e) => { throw withLogs(c, e); });
      }
    });
    await check('PID 1 runs the redis-enabled /etc/visor/visor.yaml', () => {
      for (const c of cs) {
        const rows = podman(['top', c, 'pid', 'args']).stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).join(' '));
        assert.deepEqual(rows, ['1 /usr/local/bin/visor -c /etc/visor/visor.yaml']);
      }
    });
    await check(`a limit of ${N} per minute across both instances: exactly ${N} of ${3 * N} concurrent requests pass`, async () => {
      const xff = '203.0.113.10';
      const rs = await Promise.all(Array.from({ length: 3 * N }, (_, i) =>
        https({ port: ports[i % 2], path: '/', headers: { 'X-Forwarded-For': xff } })));
      const ok = rs.filter((r) => r.status === 200);
      const limited = rs.filter((r) => r.status === 429);
      assert.equal(ok.length, N, `statuses: ${rs.map((r) => r.status).join(' ')}`);
      assert.equal(limited.length, 2 * N);
      for (const r of limited) {
        assertEdge(r, 429);
        assert.match(r.get('Retry-After'), /^[1-9]\d*$/);
        assert.ok(Number(r.get('Retry-After')) <= 60);
        assertOne(r, 'RateLimit-Remaining', '0');
      }
      for (let k = 0; k < 2; k++) {
        assert.ok(rs.filter((r, i) => i % 2 === k && r.status === 429).length > 0, `instance ${k} refused none`);
      }
      // the client IP is the X-Forwarded-For entry (the peer is trusted): one key in Redis
      assert.equal(redisCli('EXISTS', `visor:rl:api:{${xff}}`), '1');
      for (const c of cs) {
        const m = await http({ port: hostPort(c, 9090), path: '/metrics' });
        assert.match(m.text, /^visor_redis_errors_total 0$/m, `${c}: Redis errors (the memory store answered)`);
        assert.match(m.text, /^visor_rate_limited_total [1-9]\d*$/m, `${c}: refused none`);
      }
      assert.deepEqual(ok[0].json(), { message: 'hello' });
    });
    await check('a jti revoked in Redis is refused by both instances; another jti passes', async () => {
      const revoked = token({ jti: `ct-revoked-${RUN}` });
      const fine = token({ jti: `ct-fine-${RUN}` });
      redisCli('SET', `visor:revoked:ct-revoked-${RUN}`, '1', 'EX', '300');
      for (const port of ports) {
        const h = { 'X-Forwarded-For': '203.0.113.20' };
        const r1 = await https({ port, path: '/api/items', headers: { ...h, Authorization: `Bearer ${revoked}` } });
        assertEdge(r1, 401);
        assertOne(r1, 'WWW-Authenticate', 'Bearer error="invalid_token"');
        const r2 = await https({ port, path: '/api/items', headers: { ...h, Authorization: `Bearer ${fine}` } });
        assert.equal(r2.status, 200, r2.text);
        assert.deepEqual(r2.json(), { userId: 'alice', items: [{ id: 1, name: 'apple' }, { id: 2, name: 'bread' }] });
      }
    });
    await check('both: podman stop → exit code 0', () => {
      for (const c of cs) {
        const r = podman(['stop', '-t', '20', c], { allowFail: true });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(inspect(c, '{{.State.ExitCode}}'), '0');
      }
    });
  } catch (e) {
    if (cs[0]) withLogs(cs[0], e);
    throw e;
  } finally {
    for (const c of cs) removeContainer(c);
  }
}

// ==================================================================================================
async function cleanup() {
  for (const c of [...made.containers]) removeContainer(c);
  for (const s of made.secrets) podman(['secret', 'rm', s], { allowFail: true });
  if (redis) redis.proc.kill('SIGKILL');
  if (exampleApp) exampleApp.proc.kill('SIGKILL');
  try {
    await cleanupAll();
  } catch { /* the upstream is closed either way */ }
  podman(['rmi', '-f', IMAGE], { allowFail: true });
  // Build cache: this run's layers stay for the next build; what earlier runs left dangling
  // (a build stage compiled from older sources) goes. rmi without -f never removes a layer
  // this run's images still build on.
  const r = podman(['images', '--filter', 'dangling=true', '--format', 'json'], { allowFail: true });
  let stale = [];
  try {
    stale = JSON.parse(r.stdout || '[]').filter((i) => i.Labels && i.Labels['visor-ct'] && i.Labels['visor-ct'] !== RUN
      && !builtIds.some((id) => i.Id.startsWith(id)));
  } catch { /* nothing to prune */ }
  for (const i of stale) podman(['rmi', i.Id], { allowFail: true });
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    say(`${sig}: cleaning up`);
    await cleanup();
    process.exit(130);
  });
}

try {
  await phase('build', buildPhase);
  if (failures === 0) {
    await phase('config', configPhase);
    await phase('host services', async () => {
      const anchor = runContainer('anchor', ['--entrypoint', 'sleep'], ['900']);
      hostIp = await hostAddress(anchor);
      // Rootful podman: the bridge's gateway, a local address. Rootless podman maps the name
      // to an address that is not local (slirp4netns forwards it to the host's loopback): then
      // all interfaces, for the few seconds of the test.
      let bindIp = hostIp;
      up = await startUpstream(upstreamHandler, { host: hostIp }).catch((e) => {
        if (e.code !== 'EADDRNOTAVAIL') throw e;
        bindIp = '0.0.0.0';
        return startUpstream(upstreamHandler, { host: bindIp });
      });
      await startRedis(bindIp === hostIp ? hostIp : '*');
      await startExampleApp(bindIp);
      say(`upstream ${bindIp}:${up.port}, redis-server ${bindIp}:${redis.port} (host.containers.internal = ${hostIp})`);
    });
    if (failures === 0) {
      await phase('single', singlePhase);
      await phase('shared', sharedPhase);
    }
  }
} finally {
  await cleanup();
}
process.stdout.write('container-test: timings\n');
for (const [name, ms, st] of timings) process.stdout.write(`  ${name.padEnd(8)} ${secs(ms).padStart(7)}  ${st}\n`);
process.stdout.write(`  total    ${secs(Date.now() - T0).padStart(7)}\n`);
say(`${checks} checks, ${failures ? `${failures} phase(s) FAILED` : 'all passed'}`);
process.exit(failures ? 1 : 0);
