// rediss:// (issue 14 part 1): visor's Redis client over TLS against a TLS-only redis-server
// (--port 0 --tls-port N) started by the test, with a PKI made here by the openssl CLI:
//   ca        the CA Redis's certificate and the client certificate come from
//   server    SAN DNS:localhost, IP:127.0.0.1 (serverAuth)
//   client    CN visor-redis-client (clientAuth), for --tls-auth-clients yes
//   other-ca  a CA that signed nothing here (the "wrong CA" case)
// What is checked: limits exact across two workers over rediss://; a certificate from an
// untrusted CA and a name that does not match are refused before a byte of Redis protocol
// leaves, logged, and on_error decides (the process keeps answering); insecure_skip_verify
// connects anyway and `visor -t` warns about it; a server that requires a client certificate
// refuses visor without one and takes it after a reload adds cert_file/key_file; an ACL user
// (AUTH user pass), a password alone (AUTH pass), a wrong password (logged, on_error), SELECT
// of the URL's db; Redis restarted under TLS while requests flow: every request answered,
// the connection comes back and the counts land in the new Redis.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, startRedis, https, keepAliveAgent, runVisor, writeConfigFile,
  cleanupAll, SLOW, delay, until,
} from './lib/harness.mjs';
import { burst, tally, rlYaml, redisUp, startV } from './lib/rl-helpers.mjs';

const T = { timeout: 60000 * SLOW };

let pki;

function makePki() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'redis-tls-'));
  const ossl = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const ca = (name, cn) => {
    ossl(['genpkey', ...ec, '-out', `${name}.key`]);
    ossl(['req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', `${name}.crt`]);
  };
  const leaf = (name, cn, ext) => {
    ossl(['genpkey', ...ec, '-out', `${name}.key`]);
    ossl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial',
      '0x' + crypto.randomBytes(8).toString('hex'), '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  };
  ca('ca', 'visor redis test CA');
  ca('other-ca', 'some other CA');
  leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  leaf('client', 'visor-redis-client', 'extendedKeyUsage=clientAuth');
  const f = (n) => path.join(dir, n);
  const read = (n) => fs.readFileSync(f(n));
  return {
    dir,
    ca: f('ca.crt'),
    otherCa: f('other-ca.crt'),
    clientCrt: f('client.crt'),
    clientKey: f('client.key'),
    server: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt') },
    // what the test's own RESP client presents (a client certificate always: it works with
    // --tls-auth-clients no and yes alike)
    client: { ca: read('ca.crt'), cert: read('client.crt'), key: read('client.key') },
  };
}

function redisTls({ authClients = 'no', port = null } = {}) {
  return startRedis({ tls: { ...pki.server, authClients, client: pki.client }, port });
}

// The redis section: url, a timeout (generous under valgrind), on_error, and redis.tls keys.
function redisYaml(url, { tls = {}, onError = null, timeout = null } = {}) {
  let y = `redis:\n  url: "${url}"\n`;
  y += `  timeout: ${SLOW > 1 ? '30s' : timeout || '2s'}\n`;
  if (onError) y += `  on_error: ${onError}\n`;
  const keys = Object.entries(tls);
  if (keys.length) y += '  tls:\n' + keys.map(([k, v]) => `    ${k}: ${v}\n`).join('');
  return y;
}

// /free is not limited; everything else is, by `limit` per minute per client IP.
function yaml(up, redisSection, { limit = 3, workers = 2 } = {}) {
  return rlYaml({
    upstream: up.addr,
    workers,
    policies: `api: { limit: ${limit}, window: 60s, key: ip }`,
    routes: '- path: /free\n- path: /\n  rate_limits: [api]',
    extra: redisSection,
  });
}

const get = (v, p, agent) => https({ port: v.ports.https, path: p, agent });

async function statuses(v, n, p = '/x') {
  const agent = keepAliveAgent();
  const out = [];
  for (let i = 0; i < n; i++) out.push((await get(v, `${p}${i}`, agent)).status);
  agent.destroy();
  return out;
}

const logged = (v, re) => v.stderrJson.filter((j) => re.test(j.msg || ''));
const waitLog = (v, re, ms = 5000) => v.waitForLog((j) => j && re.test(j.msg || ''), ms * SLOW, { stream: 'stderr' });

// the handshake's last step: FUNCTION LOAD (or SCRIPT LOAD)
async function scriptLoads(redis) {
  const info = String(await redis.cmd('INFO', 'commandstats'));
  const n = (re) => Number((info.match(re) || [0, 0])[1]);
  return n(/cmdstat_function\|load:calls=(\d+)/) + n(/cmdstat_script\|load:calls=(\d+)/);
}

// Made once for the file (cleanupAll after each test must not take it away).
before(() => {
  pki = makePki();
});
after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

describe('rediss:// limits', () => {
  afterEach(cleanupAll);

  it('limits over TLS are exact across two workers (IP SAN verified against ca_file)', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    assert.match(redis.url, /^rediss:\/\/127\.0\.0\.1:\d+\/0$/);
    const v = await startV(yaml(up, redisYaml(redis.url, { tls: { ca_file: pki.ca } }), { limit: 100 }));
    assert.equal(logged(v, /redis 127\.0\.0\.1:\d+ \(worker [01]\): connected \(TLS\)/).length, 2, 'both workers connected over TLS');
    const t = tally(await burst(v, 300, { sockets: 50 }));
    assert.deepEqual(t, { 200: 100, 429: 200 });
    assert.equal(await redis.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1, 'counted in Redis');
    assert.equal((await get(v, '/free')).status, 200);
  });
});

describe('rediss:// refuses a certificate it cannot verify', () => {
  afterEach(cleanupAll);

  it('a certificate from another CA: refused before any command, logged, on_error: closed answers 503, the process stays up', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    const v = await startVisor(yaml(up, redisYaml(redis.url, { tls: { ca_file: pki.otherCa }, onError: 'closed' })));
    await waitLog(v, /redis 127\.0\.0\.1:\d+ \(worker \d\): cannot connect: TLS: certificate verify failed: (self-signed certificate in certificate chain|unable to get local issuer certificate)/);
    assert.deepEqual(await statuses(v, 3), [503, 503, 503]);
    assert.equal((await get(v, '/free')).status, 200, 'unlimited routes still answer');
    await delay(600);                    // several reconnect attempts later
    assert.deepEqual(await statuses(v, 2, '/y'), [503, 503]);
    assert.equal((await get(v, '/free')).status, 200);
    assert.equal(await scriptLoads(redis), 0, 'not one command reached Redis');
    assert.equal(logged(v, /connected/).length, 0);
    // once per outage per worker, not once per attempt
    assert.ok(logged(v, /cannot connect/).length <= 2, JSON.stringify(logged(v, /cannot connect/)));
  });

  it('a name the certificate does not carry (server_name): refused, logged, on_error: local enforces the limit in memory', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    const v = await startVisor(yaml(up, redisYaml(redis.url, {
      tls: { ca_file: pki.ca, server_name: 'redis.wrong.example' }, onError: 'local',
    }), { workers: 1 }));
    await waitLog(v, /cannot connect: TLS: certificate verify failed: [Hh]ostname mismatch/);
    assert.deepEqual(await statuses(v, 4), [200, 200, 200, 429]);
    assert.equal(await redis.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 0, 'not counted in Redis');
    assert.equal(await scriptLoads(redis), 0);
  });

  it('server_name: localhost (a DNS SAN) verifies; insecure_skip_verify connects to any certificate and visor -t warns', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    const v = await startV(yaml(up, redisYaml(redis.url, {
      tls: { ca_file: pki.ca, server_name: 'localhost' }, onError: 'closed',
    }), { workers: 1 }));
    assert.deepEqual(await statuses(v, 4), [200, 200, 200, 429]);
    await v.stop();

    const insecure = yaml(up, redisYaml(redis.url, {
      tls: { ca_file: pki.otherCa, insecure_skip_verify: true }, onError: 'closed',
    }), { workers: 1 });
    const { file } = await writeConfigFile(insecure);
    const r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /warning: redis\.tls\.insecure_skip_verify is true: anyone on the network path can impersonate Redis/);
    await redis.cmd('DEL', 'visor:rl:api:{127.0.0.1}');
    const v2 = await startV(insecure);
    assert.deepEqual(await statuses(v2, 4), [200, 200, 200, 429], 'Redis answers (on_error: closed would be 503)');
    assert.equal(await redis.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1);
  });

  it('a redis.tls section with a redis:// URL, or an unreadable ca_file, is a configuration error', T, async () => {
    const up = await startUpstream();
    let { file } = await writeConfigFile(yaml(up, redisYaml('redis://127.0.0.1:6379', { tls: { ca_file: pki.ca } })));
    let r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /:\d+:\d+: error: redis\.tls is set but redis\.url is redis:\/\/ \(plain TCP\): use rediss:\/\/ to connect with TLS/);
    ({ file } = await writeConfigFile(yaml(up, redisYaml('rediss://127.0.0.1:6379', { tls: { ca_file: '/nonexistent/ca.pem' } }))));
    r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /:\d+:\d+: error: cannot load CA \/nonexistent\/ca\.pem: /);
    ({ file } = await writeConfigFile(yaml(up, redisYaml('rediss://127.0.0.1:6379', { tls: { cert_file: pki.clientCrt } }))));
    r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: redis\.tls: cert_file and key_file go together/);
  });
});

describe('rediss:// with a client certificate', () => {
  afterEach(cleanupAll);

  it('a server that requires one refuses visor without it (on_error: closed → 503); a reload that adds cert_file/key_file connects', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls({ authClients: 'yes' });
    const base = { ca_file: pki.ca };
    const v = await startVisor(yaml(up, redisYaml(redis.url, { tls: base, onError: 'closed' })));
    await waitLog(v, /redis 127\.0\.0\.1:\d+ \(worker \d\): cannot connect: /);
    assert.deepEqual(await statuses(v, 2), [503, 503]);
    assert.equal(await scriptLoads(redis), 0);
    await v.writeConfig(yaml(up, redisYaml(redis.url, {
      tls: { ...base, cert_file: pki.clientCrt, key_file: pki.clientKey }, onError: 'closed',
    })));
    v.hup();
    await redisUp(v, 2);
    await until(async () => (await get(v, '/probe')).status === 200, 3000 * SLOW, 'Redis answers after the reload');
    assert.deepEqual(await statuses(v, 3), [200, 200, 429]);
    assert.equal(await redis.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1);
  });
});

describe('rediss:// authentication', () => {
  afterEach(cleanupAll);

  it('an ACL user (AUTH user pass) and the URL db; a wrong password is logged and on_error applies', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    assert.equal(await redis.cmd('ACL', 'SETUSER', 'visor', 'on', '>s3cret-pw', '~visor:*', '+@all'), 'OK');
    const url = redis.url.replace('rediss://', 'rediss://visor:s3cret-pw@').replace(/\/0$/, '/3');
    const v = await startV(yaml(up, redisYaml(url, { tls: { ca_file: pki.ca }, onError: 'closed' })));
    assert.deepEqual(await statuses(v, 4), [200, 200, 200, 429]);
    assert.match(String(await redis.cmd('INFO', 'keyspace')), /db3:keys=1,/);
    assert.doesNotMatch(String(await redis.cmd('INFO', 'keyspace')), /db0:/);
    const users = String(await redis.cmd('CLIENT', 'LIST'));
    assert.match(users, /user=visor /, 'connected as the ACL user');
    await v.stop();

    const bad = url.replace('s3cret-pw', 'wrong-pw');
    const v2 = await startVisor(yaml(up, redisYaml(bad, { tls: { ca_file: pki.ca }, onError: 'closed' }), { workers: 1 }));
    await waitLog(v2, /cannot connect: handshake refused: WRONGPASS/);
    assert.ok(!v2.stderr.join('\n').includes('wrong-pw'), 'the password is never logged');
    assert.deepEqual(await statuses(v2, 2), [503, 503]);
    assert.equal((await get(v2, '/free')).status, 200);
  });

  it('a password alone (AUTH pass, requirepass)', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    const url = redis.url.replace('rediss://', 'rediss://:only-pw@');
    // the last command the test's client can send without a password
    assert.equal(await redis.cmd('CONFIG', 'SET', 'requirepass', 'only-pw'), 'OK');
    const v = await startV(yaml(up, redisYaml(url, { tls: { ca_file: pki.ca }, onError: 'closed' }), { workers: 1 }));
    assert.deepEqual(await statuses(v, 4), [200, 200, 200, 429], 'Redis answers (on_error: closed would be 503)');
  });
});

describe('Redis restarted under TLS', () => {
  afterEach(cleanupAll);

  it('requests flowing while Redis goes away and comes back: every request answered (on_error: local), the connection returns, counts land in the new Redis', T, async () => {
    const up = await startUpstream();
    const redis = await redisTls();
    const v = await startV(yaml(up, redisYaml(redis.url, { tls: { ca_file: pki.ca }, onError: 'local', timeout: '200ms' }), { limit: 100000 }));
    let stop = false;
    const seen = [];
    const loop = async (k) => {
      const agent = keepAliveAgent();
      for (let i = 0; !stop; i++) {
        try {
          seen.push((await get(v, `/l${k}-${i}`, agent)).status);
        } catch (e) {
          seen.push(0);
        }
      }
      agent.destroy();
    };
    const loops = [0, 1, 2, 3].map(loop);
    try {
      await delay(200);
      await redis.stop();
      await waitLog(v, /redis 127\.0\.0\.1:\d+ \(worker \d\): connection lost/);
      await delay(300);
      const redis2 = await redisTls({ port: redis.port });
      await until(() => logged(v, /\(worker \d\): connected \(TLS\)/).length >= 4, 5000 * SLOW, 'both workers reconnected');
      await delay(200);
      stop = true;
      await Promise.all(loops);
      assert.ok(seen.length > 20, `requests flowed (${seen.length})`);
      assert.deepEqual(tally(seen), { 200: seen.length }, 'every request answered 200');
      assert.equal((await get(v, '/after')).status, 200);
      assert.equal(await redis2.cmd('EXISTS', 'visor:rl:api:{127.0.0.1}'), 1, 'counted in the new Redis');
    } finally {
      stop = true;
      await Promise.all(loops);
    }
  });
});
