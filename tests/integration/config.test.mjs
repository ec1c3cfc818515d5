// The command line and configuration loading (README.md, docs/configuration.md):
// `visor -t` diagnostics as FILE:LINE:COL, ${VAR} expansion, `visor -V`.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  runVisor, startVisor, startUpstream, writeConfigFile, https, http, minimalYaml, cleanupAll, getCerts,
  REPO, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

// A valid file that is also clean of security warnings (listen.http set), one key a line so
// positions are easy to state. Line numbers:
//  1 listen:
//  2   https: 127.0.0.1:18443
//  3   http: 127.0.0.1:18080
//  4 tls:
//  5   certificates:
//  6     - cert: ...
//  7       key: ...
//  8 upstream:
//  9   servers: [127.0.0.1:3000]
// 10 client:
// 11   max_header_size: 16k
// 12   max_body_size: 1m
// 13 workers: 2
// 14... extra
function validYaml({ servers = '[127.0.0.1:3000]', client = ['max_header_size: 16k', 'max_body_size: 1m'], workers = '2', https = '127.0.0.1:18443', extra = [] } = {}) {
  const c = getCerts();
  return [
    'listen:',
    `  https: ${https}`,
    '  http: 127.0.0.1:18080',
    'tls:',
    '  certificates:',
    `    - cert: ${c.cert}`,
    `      key: ${c.key}`,
    'upstream:',
    `  servers: ${servers}`,
    'client:',
    ...client.map((l) => `  ${l}`),
    `workers: ${workers}`,
    ...extra,
    '',
  ].join('\n');
}

// The non-empty stderr lines; each must be FILE:LINE:COL: error|warning: message.
function diagnostics(stderr, file) {
  const lines = stderr.split('\n').filter((l) => l.trim());
  return lines.map((l) => {
    assert.ok(l.startsWith(`${file}:`), `diagnostic starts with the file name: ${l}`);
    const m = l.slice(file.length).match(/^:(\d+):(\d+): (error|warning): (.+)$/);
    assert.ok(m, `diagnostic format FILE:LINE:COL: error|warning: message — got ${l}`);
    return { line: Number(m[1]), col: Number(m[2]), level: m[3], msg: m[4] };
  });
}

function check(file, env) {
  const r = runVisor(['-t', '-c', file], { env });
  if (r.wrapperErrors) assert.deepEqual(r.wrapperErrors, [], 'wrapper errors');
  return r;
}

describe('visor -t', () => {
  afterEach(cleanupAll);

  it('a valid file: exit 0, nothing on stderr', T, async () => {
    const { file } = await writeConfigFile(validYaml());
    const r = check(file);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('an unknown key: its line and column, "unknown key" and the nearest valid key', T, async () => {
    const { file } = await writeConfigFile(validYaml({ client: ['max_header_size: 16k', 'max_bdy_size: 1m'] }));
    const r = check(file);
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, file);
    assert.equal(d.length, 1, r.stderr);
    assert.equal(d[0].level, 'error');
    assert.equal(d[0].line, 12);
    assert.equal(d[0].col, 3);
    assert.match(d[0].msg, /unknown key/);
    assert.match(d[0].msg, /max_bdy_size/);
    assert.match(d[0].msg, /max_body_size/);
  });

  it('an unknown top-level key', T, async () => {
    const { file } = await writeConfigFile(validYaml() + 'upstreams:\n  servers: [127.0.0.1:1]\n');
    const r = check(file);
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, file);
    assert.equal(d.length, 1, r.stderr);
    assert.equal(d[0].line, 14);
    assert.equal(d[0].col, 1);
    assert.match(d[0].msg, /unknown key/);
    assert.match(d[0].msg, /upstream\b/);
  });

  it('reports every error, one a line, in file order', T, async () => {
    const { file } = await writeConfigFile(validYaml({ client: ['max_hedaer_size: 16k', 'max_bdy_size: 1m'], workers: 'lots' }));
    const r = check(file);
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, file);
    assert.deepEqual(d.map((x) => x.line), [11, 12, 13], r.stderr);
    assert.ok(d.every((x) => x.level === 'error'));
  });

  it('an unset ${VAR} without default is an error naming VAR', T, async () => {
    const { file } = await writeConfigFile(validYaml({ servers: '["${VISOR_IT_UNSET_UPSTREAM}"]' }));
    const env = { VISOR_IT_UNSET_UPSTREAM: undefined };
    const r = runVisor(['-t', '-c', file], { env: scrub(env) });
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, file);
    assert.equal(d.length, 1, r.stderr);
    assert.equal(d[0].line, 9);
    assert.match(d[0].msg, /VISOR_IT_UNSET_UPSTREAM/);
  });

  it('${VAR:-default} and a set ${VAR} are valid', T, async () => {
    const a = await writeConfigFile(validYaml({ servers: '["${VISOR_IT_UNSET_UPSTREAM:-127.0.0.1:3000}"]' }));
    const ra = runVisor(['-t', '-c', a.file], { env: scrub({ VISOR_IT_UNSET_UPSTREAM: undefined }) });
    assert.equal(ra.stderr, '');
    assert.equal(ra.code, 0);
    const b = await writeConfigFile(validYaml({ servers: '["${VISOR_IT_SET_UPSTREAM}"]' }));
    const rb = check(b.file, { VISOR_IT_SET_UPSTREAM: '127.0.0.1:3000' });
    assert.equal(rb.stderr, '');
    assert.equal(rb.code, 0);
  });

  const BAD_VALUES = [
    ['workers: lots', { workers: 'lots' }, 13],
    ['a size with an unknown unit', { client: ['max_header_size: 16k', 'max_body_size: 1x'] }, 12],
    ['a duration with an unknown unit', { client: ['max_header_size: 16k', 'max_body_size: 1m', 'header_timeout: 10 parsecs'] }, 13],
    ['a number that is not a number', { extra: ['hsts:', '  max_age: soon'] }, 15],
    ['an upstream that is not host:port', { servers: '[not an address]' }, 9],
  ];
  for (const [name, opts, line] of BAD_VALUES) {
    it(`rejects ${name} at its line`, T, async () => {
      const { file } = await writeConfigFile(validYaml(opts));
      const r = check(file);
      assert.equal(r.code, 1);
      const d = diagnostics(r.stderr, file);
      assert.ok(d.length >= 1, 'at least one error');
      assert.equal(d[0].level, 'error');
      assert.equal(d[0].line, line, r.stderr);
    });
  }

  it('a YAML syntax error: exit 1 with its position', T, async () => {
    const { file } = await writeConfigFile(validYaml({ servers: '[127.0.0.1:3000' }));
    const r = check(file);
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, file);
    assert.ok(d.length >= 1);
    assert.equal(d[0].level, 'error');
    assert.ok(d[0].line >= 9, `line ${d[0].line}`);
  });

  it('a missing file: exit 1 naming it', T, async () => {
    const file = path.join(getCerts().dir, 'does-not-exist.yaml');
    const r = check(file);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(file), r.stderr);
  });
});

describe('starting with a configuration', () => {
  afterEach(cleanupAll);

  it('expands ${VAR} from the environment at load time', T, async () => {
    const up = await startUpstream();
    const v = await startVisor({
      yaml: 'listen:\n  https: {{HTTPS}}\ntls:\n  certificates:\n    - cert: {{CERT}}\n      key: {{KEY}}\nupstream:\n  servers:\n    - ${VISOR_IT_UPSTREAM}\n',
      env: { VISOR_IT_UPSTREAM: up.addr },
    });
    const r = await https({ port: v.ports.https, path: '/env' });
    assert.equal(r.status, 200);
    assert.equal(up.requests[0].url, '/env');
  });

  it('an invalid file: visor does not start, exit non-zero, diagnostics on stderr', T, async () => {
    const { file } = await writeConfigFile(validYaml({ client: ['max_bdy_size: 1m'] }));
    const r = runVisor(['-c', file], { timeoutMs: 10000 * SLOW });
    assert.equal(r.signal, null, 'exited by itself');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /max_bdy_size/);
  });
});

describe('first contact with visor -t (docs: README, Configuration)', () => {
  afterEach(cleanupAll);

  it('ends with one line that says how the test went, as nginx -t does', T, async () => {
    const ok = await writeConfigFile(validYaml());
    const a = check(ok.file);
    assert.equal(a.code, 0);
    assert.equal(a.summary, `visor: configuration file ${ok.file} test is successful`);
    const warn = await writeConfigFile(validYaml({ extra: ['hsts: { max_age: 60, preload: true }'] }));
    const b = check(warn.file);
    assert.equal(b.code, 0);
    assert.equal(b.summary, `visor: configuration file ${warn.file} test is successful, with 1 warning`);
    const s = runVisor(['-t', '--strict', '-c', warn.file]);
    assert.equal(s.code, 1);
    assert.equal(s.summary, `visor: configuration file ${warn.file} test failed: 1 warning with --strict`);
    const bad = await writeConfigFile(validYaml({ workers: 'lots', extra: ['bogus: 1'] }));
    const c = check(bad.file);
    assert.equal(c.code, 1);
    assert.equal(c.summary, `visor: configuration file ${bad.file} test failed: 2 errors`);
  });

  it('hsts: off sends no Strict-Transport-Security (the plain listener still redirects); hsts: nope is an error', T, async () => {
    const off = await writeConfigFile(validYaml({ extra: ['hsts: off'] }));
    assert.equal(check(off.file).stderr, '');
    const up = await startUpstream((req, res) => { res.writeHead(200, { 'Strict-Transport-Security': 'max-age=5' }); res.end('ok'); });
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'http: {{HTTP}}', extra: 'hsts: off\n' }));
    const r = await https({ port: v.ports.https, path: '/x' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['strict-transport-security'], 'max-age=5', "visor adds none; the app's own passes");
    const p = await http({ port: v.ports.http, path: '/x?a=1', headers: { Host: 'api.example.com' } });
    assert.equal(p.status, 301);
    assert.equal(p.headers.location, `https://api.example.com:${v.ports.https}/x?a=1`);
    assert.equal(p.headers['strict-transport-security'], undefined);
    const nope = await writeConfigFile(validYaml({ extra: ['hsts: nope'] }));
    const n = check(nope.file);
    assert.equal(n.code, 1);
    assert.deepEqual(diagnostics(n.stderr, nope.file).map((d) => d.msg), ["hsts: expected a mapping or off, got 'nope'"]);
  });

  it('the HSTS preload warning only with preload: true', T, async () => {
    const short = await writeConfigFile(validYaml({ extra: ['hsts:', '  max_age: 300'] }));
    assert.equal(check(short.file).stderr, '', 'a short max_age is how a rollout starts');
    const pre = await writeConfigFile(validYaml({ extra: ['hsts:', '  max_age: 300', '  preload: true'] }));
    const d = diagnostics(check(pre.file).stderr, pre.file);
    assert.deepEqual(d.map((x) => [x.line, x.level, x.msg]), [[15, 'warning',
      'HSTS max_age is 300 s; the preload list (hsts.preload: true) needs at least one year — set hsts.max_age: 31536000']]);
  });

  it('an unquoted ${VAR} inside a flow mapping gets a hint; quoted, it loads', T, async () => {
    const env = { VISOR_IT_REDIS_URL: 'redis://:pw@127.0.0.1:6390/0' };
    const bad = await writeConfigFile(validYaml({ extra: ['redis: { url: ${VISOR_IT_REDIS_URL}, on_error: local }'] }));
    const r = check(bad.file, env);
    assert.equal(r.code, 1);
    const d = diagnostics(r.stderr, bad.file);
    assert.equal(d.length, 1, r.stderr);
    assert.equal(d[0].line, 14);
    assert.match(d[0].msg, /an unquoted \$\{VAR\} inside \{ \} or \[ \] reads as a nested mapping: quote it \("\$\{VAR\}"\) or write the section in block style$/);
    const good = await writeConfigFile(validYaml({ extra: ['redis: { url: "${VISOR_IT_REDIS_URL}", on_error: local }'] }));
    assert.equal(check(good.file, env).code, 0);
  });

  it('--config-name: messages name the file as the user knows it (the container runs a copy)', T, async () => {
    const bad = await writeConfigFile(validYaml({ extra: ['bogus: 1'] }));
    const r = runVisor(['-t', '-c', bad.file, '--config-name', '/etc/visor/visor.yaml']);
    assert.equal(r.code, 1);
    assert.deepEqual(diagnostics(r.stderr, '/etc/visor/visor.yaml').map((d) => [d.line, d.col]), [[14, 1]]);
    assert.equal(r.summary, 'visor: configuration file /etc/visor/visor.yaml test failed: 1 error');
    assert.ok(!r.stderr.includes(bad.file), r.stderr);
  });
});

describe('visor -V', () => {
  it('prints visor\'s version and the linked libraries\' versions', T, () => {
    const r = runVisor(['-V']);
    assert.equal(r.code, 0);
    const version = fs.readFileSync(path.join(REPO, 'VERSION'), 'utf8').trim();
    assert.match(r.stdout, new RegExp(`visor[^\\n]*\\b${version.replace(/\./g, '\\.')}\\b`, 'i'));
    for (const lib of ['OpenSSL', 'libevent', 'jansson', 'hiredis', 'libyaml', 'llhttp']) {
      assert.match(r.stdout, new RegExp(`${lib}[^\\n]*\\d+\\.\\d+`, 'i'), `${lib} and its version`);
    }
  });
});

// env for runVisor with some variables removed (undefined values).
function scrub(env) {
  const out = { ...process.env };
  for (const [k, val] of Object.entries(env)) {
    if (val === undefined) delete out[k];
    else out[k] = val;
  }
  return out;
}
