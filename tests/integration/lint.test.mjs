// The security lint of `visor -t` (issue 3 item 5; docs/lint.md) through the
// real binary: for each warning, `visor -t` exits 0 and prints exactly one line
// FILE:LINE:COL: warning: <message>, at the offending node; `visor -t --strict` prints the same
// and exits 1. The base file every case starts from is clean under --strict, and so is the
// reference conf/visor.yaml (in a temp copy, with the dev keys tests/tools/dev-setup.sh makes).
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  runVisor, startVisor, startUpstream, writeConfigFile, minimalYaml, https, cleanupAll, track, REPO, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

// Environment for the ${VAR} cases; REDIS_URL pinned so the reference file does not depend on
// the caller's environment.
const ENV = {
  LINT_IT_SECRET: crypto.randomBytes(32).toString('base64'),
  LINT_IT_SHORT: 'only-twenty-bytes!!!',
  REDIS_URL: 'redis://127.0.0.1:6379/0',
};

// Every case is minimalYaml plus the http listener (without it, "no listen.http" fires).
function yaml({ listen = 'http: {{HTTP}}', tls = '', upstreamExtra = '', client = '', extra = '' } = {}) {
  return minimalYaml({ upstream: '127.0.0.1:9', listen, tls, upstreamExtra, client, extra });
}

// An RSA public key in the config dir, for jwt cases that need a `file:` key.
function rsaKeyFile(dir) {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const f = path.join(dir, 'jwt.pub.pem');
  fs.writeFileSync(f, publicKey.export({ type: 'spki', format: 'pem' }));
  return f;
}

// LINE:COL (from 1) of capture group 1 of `re` (with the d flag) in `text`.
function posOf(text, re) {
  const m = re.exec(text);
  assert.ok(m && m.indices && m.indices[1], `${re} not found in\n${text}`);
  const before = text.slice(0, m.indices[1][0]);
  const line = before.split('\n').length;
  const col = before.length - before.lastIndexOf('\n');
  return `${line}:${col}`;
}

// Runs `visor -t` and `visor -t --strict` on the file and checks the one expected warning.
function expectWarning(file, at, msg, env = ENV) {
  const text = fs.readFileSync(file, 'utf8');
  const want = `${file}:${posOf(text, at)}: warning: ${msg}\n`;
  const r = runVisor(['-t', '-c', file], { env });
  if (r.wrapperErrors) assert.deepEqual(r.wrapperErrors, [], 'wrapper errors');
  assert.equal(r.stderr, want);
  assert.equal(r.code, 0, 'visor -t: warnings alone exit 0');
  const s = runVisor(['-t', '--strict', '-c', file], { env });
  if (s.wrapperErrors) assert.deepEqual(s.wrapperErrors, [], 'wrapper errors');
  assert.equal(s.stderr, want);
  assert.equal(s.code, 1, 'visor -t --strict: a warning exits 1');
}

function expectClean(file, env = ENV, cwd = undefined) {
  const s = runVisor(['-t', '--strict', '-c', file], { env, cwd });
  if (s.wrapperErrors) assert.deepEqual(s.wrapperErrors, [], 'wrapper errors');
  assert.equal(s.stderr, '');
  assert.equal(s.code, 0);
}

// Each case: the config (a function of the temp dir, for key files), where the warning
// points (a regex, capture group 1 = the node) and the message, word for word.
const CASES = [
  {
    name: 'CORS origin "*"',
    yaml: () => yaml({ extra: 'cors:\n  origins: ["*"]\n' }),
    at: /origins: \[("\*")/d,
    msg: "cors.origins[0]: '*' is a wildcard; visor compares origins exactly, so it matches nothing, and a wildcard would trust every site or subdomain — list each allowed origin exactly, e.g. https://app.example.com",
  },
  {
    name: 'CORS origin with a subdomain wildcard',
    yaml: () => yaml({ extra: 'cors:\n  origins: [https://app.example.com, "https://*.example.com"]\n' }),
    at: /("https:\/\/\*\.example\.com")/d,
    msg: "cors.origins[1]: 'https://*.example.com' is a wildcard; visor compares origins exactly, so it matches nothing, and a wildcard would trust every site or subdomain — list each allowed origin exactly, e.g. https://app.example.com",
  },
  {
    name: 'CORS origin over plain http (localhost is fine)',
    yaml: () => yaml({ extra: 'cors:\n  origins: [http://localhost:3000, "http://[::1]:5173", http://app.example.com]\n' }),
    at: /(http:\/\/app\.example\.com)/d,
    msg: "cors.origins[2]: 'http://app.example.com' is plain http; anyone on the network can inject script into that origin and read your API through it — use https://app.example.com",
  },
  {
    name: 'CORS origin "null"',
    yaml: () => yaml({ extra: 'cors:\n  origins: [https://app.example.com, "null"]\n' }),
    at: /("null")/d,
    msg: "cors.origins[1] is 'null': sandboxed iframes, data: URLs and file: pages send Origin: null, so any site can claim it — remove 'null' from cors.origins",
  },
  {
    name: 'CORS credentials with an empty allowlist',
    yaml: () => yaml({ extra: 'cors:\n  origins: []\n  credentials: true\n' }),
    at: /credentials: (true)/d,
    msg: 'cors.credentials is true with an empty cors.origins; credentials need an allowlist of exact origins — list them in cors.origins, or set cors.credentials: false',
  },
  {
    name: 'HSTS max_age under one year with preload: true',
    yaml: () => yaml({ extra: 'hsts:\n  max_age: 86400\n  preload: true\n' }),
    at: /max_age: (86400)/d,
    msg: 'HSTS max_age is 86400 s; the preload list (hsts.preload: true) needs at least one year — set hsts.max_age: 31536000',
  },
  {
    name: 'HSTS preload without include_subdomains',
    yaml: () => yaml({ extra: 'hsts:\n  include_subdomains: false\n  preload: true\n' }),
    at: /preload: (true)/d,
    msg: 'hsts.preload is true without include_subdomains; the preload list (hstspreload.org) refuses such a header — set hsts.include_subdomains: true',
  },
  {
    name: 'TLS min_version TLSv1.1',
    yaml: () => yaml({ tls: 'min_version: TLSv1.1' }),
    at: /min_version: (TLSv1\.1)/d,
    msg: 'tls.min_version is TLSv1.1; TLS 1.0 and 1.1 are deprecated (RFC 8996) and lack modern cipher suites — set tls.min_version: TLSv1.2',
  },
  {
    name: 'TLS min_version TLSv1',
    yaml: () => yaml({ tls: 'min_version: TLSv1' }),
    at: /min_version: (TLSv1)/d,
    msg: 'tls.min_version is TLSv1; TLS 1.0 and 1.1 are deprecated (RFC 8996) and lack modern cipher suites — set tls.min_version: TLSv1.2',
  },
  {
    name: 'trusted_proxies 0.0.0.0/0',
    yaml: () => yaml({ client: 'trusted_proxies: [10.0.0.0/8, 0.0.0.0/0]' }),
    at: /, (0\.0\.0\.0\/0)/d,
    msg: "client.trusted_proxies[1] is 0.0.0.0/0: every peer is trusted, so any client can write X-Forwarded-For and pick the IP that rate limits, bans and logs see — list only your load balancers' addresses",
  },
  {
    name: 'trusted_proxies ::/0',
    yaml: () => yaml({ client: 'trusted_proxies: ["::/0"]' }),
    at: /("::\/0")/d,
    msg: "client.trusted_proxies[0] is ::/0: every peer is trusted, so any client can write X-Forwarded-For and pick the IP that rate limits, bans and logs see — list only your load balancers' addresses",
  },
  {
    name: 'proxy_protocol ::/0',
    yaml: () => yaml({ listen: 'http: {{HTTP}}\nproxy_protocol: [10.0.0.0/8, "::/0"]' }),
    at: /, ("::\/0")/d,
    msg: "listen.proxy_protocol[1] is ::/0: any client that reaches visor directly can send a PROXY header and pick the IP that rate limits, bans and logs see — list only your load balancers' addresses",
  },
  {
    name: 'HMAC secret written inline',
    yaml: () => yaml({ extra: 'jwt:\n  algorithms: [HS256]\n  keys:\n    - secret: 8f3a0c1e5b7d9f2a4c6e8a0b2d4f6a8c0e2a4c6e\n' }),
    at: /secret: (8f3a)/d,
    msg: 'jwt.keys[0].secret is written in the file: anyone who can read the config (repository, image, ConfigMap) can mint tokens — give it as secret: ${JWT_SECRET} or secret_file: /run/secrets/jwt',
  },
  {
    name: 'HMAC secret under 32 bytes (from ${VAR})',
    yaml: () => yaml({ extra: 'jwt:\n  algorithms: [HS256]\n  keys:\n    - secret: ${LINT_IT_SHORT}\n' }),
    at: /secret: (\$)/d,
    msg: 'jwt.keys[0].secret is 20 bytes; an HMAC secret under 32 bytes (RFC 7518 §3.2) can be brute-forced offline from one token — use 32 random bytes or more (openssl rand -base64 48)',
  },
  {
    name: 'HMAC secret under 32 bytes (from secret_file)',
    yaml: (dir) => {
      fs.writeFileSync(path.join(dir, 'hs.secret'), 'sixteen-bytes-xx\n');
      return yaml({ extra: `jwt:\n  algorithms: [HS256]\n  keys:\n    - secret_file: ${path.join(dir, 'hs.secret')}\n` });
    },
    at: /secret_file: (\/)/d,
    msg: 'jwt.keys[0].secret_file holds 16 bytes; an HMAC secret under 32 bytes (RFC 7518 §3.2) can be brute-forced offline from one token — use 32 random bytes or more (openssl rand -base64 48)',
  },
  {
    name: 'jwt.algorithms mixing HS* and public-key algorithms',
    yaml: (dir) => yaml({ extra: `jwt:\n  algorithms: [RS256, HS256]\n  keys:\n    - file: ${rsaKeyFile(dir)}\n    - secret: \${LINT_IT_SECRET}\n` }),
    at: /algorithms: (\[)/d,
    msg: "jwt.algorithms mixes HMAC (HS256) with public-key algorithms (RS256): any holder of the HMAC secret can mint tokens beside your private key's, and mixed families are what algorithm-confusion attacks exploit — allow one family (RFC 8725 §3.1)",
  },
  {
    name: 'jwt.required_claims without exp',
    yaml: (dir) => yaml({ extra: `jwt:\n  algorithms: [RS256]\n  keys:\n    - file: ${rsaKeyFile(dir)}\n  required_claims: [sub]\n` }),
    at: /required_claims: (\[)/d,
    msg: 'jwt.required_claims does not include exp: a token without exp is accepted forever, even once leaked — add exp to jwt.required_claims',
  },
  {
    name: 'a JWKS URL without jwt.audience',
    yaml: () => yaml({ extra: 'jwt:\n  algorithms: [RS256]\n  keys:\n    - jwks_url: https://idp.example.com/.well-known/jwks.json\n' }),
    at: /^(jwt):/md,
    msg: "jwt.audience is not set and jwt.keys[0] is a JWKS URL: a token the identity provider issued for another application is accepted here — set jwt.audience to this API's identifier",
  },
  {
    name: 'jwt configured, every route auth: off',
    yaml: (dir) => yaml({ extra: `jwt:\n  algorithms: [RS256]\n  keys:\n    - file: ${rsaKeyFile(dir)}\nroutes:\n  - { path: /api/, auth: off }\n  - { path: /, auth: off }\n` }),
    at: /^(jwt):/md,
    msg: 'jwt is configured but every route has auth: off, so no token is ever checked — set auth: required (or optional) on the routes that need it',
  },
  {
    name: 'a login route without a rate limit',
    yaml: () => yaml({ extra: 'rate_limits:\n  api: { limit: 100, window: 60s }\nroutes:\n  - path: /api/auth/\n  - path: /\n    rate_limits: [api]\n' }),
    at: /path: (\/api\/auth\/)/d,
    msg: 'routes[0] (/api/auth/) has no rate limit; login endpoints get password guessing and credential stuffing — add rate_limits: [login] with a policy such as login: { limit: 5, window: 60s, key: ip, count: failures }',
  },
  {
    name: 'a /v1/login route without a rate limit',
    yaml: () => yaml({ extra: 'routes:\n  - { path: /v1/login, methods: [POST] }\n  - { path: / }\n' }),
    at: /path: (\/v1\/login)/d,
    msg: 'routes[0] (/v1/login) has no rate limit; login endpoints get password guessing and credential stuffing — add rate_limits: [login] with a policy such as login: { limit: 5, window: 60s, key: ip, count: failures }',
  },
  {
    name: 'a route that can never match',
    yaml: () => yaml({ extra: 'routes:\n  - path: /\n  - path: /api/\n' }),
    at: /path: (\/api\/)/d,
    msg: 'routes[1] (/api/) is never used: routes[0] (/) comes first and matches every request it would (first match wins) — move routes[1] above routes[0]',
  },
  {
    name: 'routes: []',
    yaml: () => yaml({ extra: 'routes: []\n' }),
    at: /routes: (\[\])/d,
    msg: 'routes is empty: every request is answered 404 — add at least one route, e.g. - path: /',
  },
  {
    name: 'upstream.tls with verify: false',
    yaml: () => yaml({ upstreamExtra: 'tls: { verify: false }' }),
    at: /verify: (false)/d,
    msg: 'upstream.tls.verify is false: anyone on the network path can impersonate the upstream and read every request, tokens included — set verify: true (with upstream.tls.ca for a private CA)',
  },
  {
    name: 'no listen.http',
    yaml: () => yaml({ listen: '' }),
    at: /^(listen):/md,
    msg: 'no listen.http: clients that start on http:// are never redirected to HTTPS — add listen.http (e.g. 0.0.0.0:8080; it answers 301 to https)',
  },
  {
    name: "CSP with 'unsafe-eval'",
    yaml: () => yaml({ extra: `headers:\n  Content-Security-Policy: "default-src 'self'; script-src 'self' 'unsafe-eval'"\n` }),
    at: /Content-Security-Policy: (")/d,
    msg: "headers.Content-Security-Policy: script-src allows 'unsafe-eval', so injected strings reach eval() and new Function() — remove 'unsafe-eval' (and the code that needs it)",
  },
  {
    name: "CSP with a '*' source",
    yaml: () => yaml({ extra: `headers:\n  Content-Security-Policy: "default-src 'self'; img-src *"\n` }),
    at: /Content-Security-Policy: (")/d,
    msg: "headers.Content-Security-Policy: img-src allows '*', any host — list the hosts it needs, or 'self'",
  },
  {
    name: "CSP with script-src 'unsafe-inline' and no nonce",
    yaml: () => yaml({ extra: `headers:\n  content-security-policy: "default-src 'self'; script-src 'self' 'unsafe-inline'"\n` }),
    at: /content-security-policy: (")/d,
    msg: "headers.Content-Security-Policy: script-src allows 'unsafe-inline' without a nonce or hash, so injected <script> and on* handlers run — use nonces or hashes, or move inline scripts to files",
  },
  {
    name: 'CSP with scripts from any https: URL',
    yaml: () => yaml({ extra: `headers:\n  Content-Security-Policy: "default-src 'self'; script-src 'self' https:"\n` }),
    at: /Content-Security-Policy: (")/d,
    msg: "headers.Content-Security-Policy: script-src allows scripts from any https:, http: or data: URL — list the script hosts it needs, or 'self'",
  },
  {
    name: 'errors.scrub without 500',
    yaml: () => yaml({ extra: 'errors:\n  scrub: [502, 503]\n' }),
    at: /scrub: (\[)/d,
    msg: "errors.scrub does not include 500: Node's default error handlers send stack traces and driver messages in 500 answers — add 500-599 to errors.scrub",
  },
  {
    name: 'Redis on another host without a password',
    yaml: () => yaml({ extra: 'redis:\n  url: redis://10.0.0.5:6379/0\n' }),
    at: /url: (redis:)/d,
    msg: 'redis.url has no password and points to 10.0.0.5: anyone who reaches it can reset rate limits and lockouts and lift revocations — set requirepass (or an ACL user) on the server and redis.url: ${REDIS_URL} with the password',
  },
  {
    name: 'Redis password written inline',
    yaml: () => yaml({ extra: 'redis:\n  url: redis://:hunter2@10.0.0.5:6379/0\n' }),
    at: /url: (redis:)/d,
    msg: 'redis.url carries a password written in the file: anyone who can read the config can reach the store — give it as url: ${REDIS_URL} or url_file: /run/secrets/redis_url',
  },
  {
    name: 'redis.on_error: open',
    yaml: () => yaml({ extra: 'redis:\n  on_error: open\n' }),
    at: /on_error: (open)/d,
    msg: 'redis.on_error is open: while Redis is unreachable no rate limit or lockout is enforced, so whoever can disturb Redis gets unlimited login attempts — use local (the same limits in memory) or closed (503)',
  },
];

describe('visor -t security lint', () => {
  afterEach(cleanupAll);

  it('the base file of every case is clean under --strict', T, async () => {
    const { file } = await writeConfigFile(yaml());
    expectClean(file);
  });

  for (const c of CASES) {
    it(`warns: ${c.name}`, T, async () => {
      const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-lint-'));
      track(`lint dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
      const { file } = await writeConfigFile(c.yaml(dir));
      expectWarning(file, c.at, c.msg);
    });
  }

  it('safe variants of every rule stay quiet under --strict', T, async () => {
    const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-lint-'));
    track(`lint dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'hs.secret'), crypto.randomBytes(48).toString('base64') + '\n');
    const { file } = await writeConfigFile(yaml({
      tls: 'min_version: TLSv1.3',
      upstreamExtra: 'tls: { verify: true }',
      client: 'trusted_proxies: [10.0.0.0/8, "fd00::/8"]',
      extra: [
        'hsts: { max_age: 365d, include_subdomains: true, preload: true }',
        "headers:\n  Content-Security-Policy: \"default-src 'self'; script-src 'self' 'nonce-abc' 'unsafe-inline'; style-src 'self' https: 'unsafe-inline'; img-src 'self' data: https://*.example.com\"",
        'cors:\n  origins: [https://app.example.com, http://localhost:3000, "http://127.0.0.1:8080"]\n  credentials: true',
        'redis:\n  url: ${LINT_IT_REDIS}\n  on_error: closed',
        `jwt:\n  algorithms: [HS256, HS512]\n  keys:\n    - secret: \${LINT_IT_SECRET}\n    - secret_file: ${path.join(dir, 'hs.secret')}\n  required_claims: [exp, sub]`,
        'rate_limits:\n  login: { limit: 5, window: 60s, count: failures }',
        'routes:\n  - { path: /api/auth/, auth: off, rate_limits: [login] }\n  - { path: /login, methods: [GET], auth: off }\n  - { path: /api/users, methods: [POST] }\n  - { path: /api/ }\n  - { path: /, auth: optional }',
        'errors:\n  scrub: [404, 500-599]',
      ].join('\n') + '\n',
    }));
    expectClean(file, { ...ENV, LINT_IT_REDIS: 'redis://:s3cret@10.0.0.5:6379/0' });
  });

  it('several findings: one line each, in file order; exit 0, or 1 with --strict', T, async () => {
    const { file } = await writeConfigFile(yaml({ listen: '', tls: 'min_version: TLSv1', extra: 'hsts:\n  max_age: 3600\n  preload: true\n' }));
    const text = fs.readFileSync(file, 'utf8');
    const r = runVisor(['-t', '-c', file], { env: ENV });
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.deepEqual(lines.map((l) => l.slice(file.length + 1).split(': ')[0]),
      [posOf(text, /^(listen):/md), posOf(text, /min_version: (TLSv1)/d), posOf(text, /max_age: (3600)/d)]);
    assert.ok(lines.every((l) => l.includes(': warning: ')), r.stderr);
    assert.equal(r.code, 0);
    assert.equal(runVisor(['-t', '--strict', '-c', file], { env: ENV }).code, 1);
  });

  it('a file with errors reports the errors only (the lint reviews files that load)', T, async () => {
    const { file } = await writeConfigFile(yaml({ listen: '', tls: 'min_version: TLSv1', extra: 'workers: lots\n' }));
    const r = runVisor(['-t', '-c', file], { env: ENV });
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /: error: workers must be auto/);
    assert.equal(r.code, 1);
  });

  it('the secret itself is never printed', T, async () => {
    const { file } = await writeConfigFile(yaml({ extra: 'jwt:\n  algorithms: [HS256]\n  keys:\n    - secret: hunter2\nredis:\n  url: redis://:hunter3@10.0.0.5:6379/0\n' }));
    const r = runVisor(['-t', '-c', file], { env: ENV });
    assert.equal(r.code, 0);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 3, r.stderr);
    assert.ok(!r.stderr.includes('hunter2') && !r.stderr.includes('hunter3'), r.stderr);
  });

  it('running: warnings are logged as JSON lines with their position, and visor serves anyway (start and SIGHUP)', T, async () => {
    const up = await startUpstream();
    const conf = (maxAge) => minimalYaml({ upstream: up.addr, extra: `hsts:\n  max_age: ${maxAge}\n  preload: true\n` });
    const v = await startVisor({ yaml: conf(600), env: ENV });
    const isWarn = (re) => (j) => j && j.level === 'warn' && re.test(j.msg);
    const a = await v.waitForLog(isWarn(/^config: no listen\.http: /), 5000 * SLOW, { stream: 'stderr' });
    assert.equal(a.json.file, v.configPath);
    assert.equal(a.json.line, 1);
    assert.equal(a.json.col, 1);
    const b = await v.waitForLog(isWarn(/^config: HSTS max_age is 600 s; /), 5000 * SLOW, { stream: 'stderr' });
    assert.equal(`${b.json.line}:${b.json.col}`, posOf(fs.readFileSync(v.configPath, 'utf8'), /max_age: (600)/d));
    const r = await https({ port: v.ports.https, path: '/x' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['strict-transport-security'], 'max-age=600; includeSubDomains; preload');
    await v.writeConfig(conf(1200));
    v.hup();
    await v.waitForLog(isWarn(/^config: HSTS max_age is 1200 s; /), 5000 * SLOW, { stream: 'stderr' });
    await v.waitForLog((j) => j && /configuration reloaded/.test(j.msg), 5000 * SLOW, { stream: 'stderr' });
  });

  it('conf/visor.yaml (with the dev keys dev-setup.sh creates) is clean under --strict', T, async () => {
    // A temp copy laid out like the repository: dev-setup.sh works relative to its own path.
    const root = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-lint-ref-'));
    track(`lint ref ${root}`, async () => fs.rmSync(root, { recursive: true, force: true }));
    fs.mkdirSync(path.join(root, 'conf'), { recursive: true });
    fs.mkdirSync(path.join(root, 'tests/tools'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'conf/visor.yaml'), path.join(root, 'conf/visor.yaml'));
    fs.cpSync(path.join(REPO, 'conf/schemas'), path.join(root, 'conf/schemas'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'tests/tools/dev-setup.sh'), path.join(root, 'tests/tools/dev-setup.sh'));
    execFileSync('sh', [path.join(root, 'tests/tools/dev-setup.sh')], { stdio: 'ignore' });
    expectClean('conf/visor.yaml', ENV, root);
  });
});
