// jwt.keys[].jwks_url (issue 5): the JWKS fetched over HTTPS with certificate and name
// verification, picked by kid, rotation through the unknown-kid refetch (at most one per
// 30 s), the last good keys kept while the endpoint fails, no redirects, SIGHUP keeping the
// fetched keys. The endpoint is a local node:https server with the test PKI; visor trusts
// the test CA through SSL_CERT_FILE (OpenSSL's default verify paths).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, https, minimalYaml, assertEdge, cleanupAll, getCerts, SLOW, delay, until,
} from './lib/harness.mjs';
import { makeKeys, tok, jwkOf, startJwks, jwtYaml, BEARER_INVALID } from './lib/jwt-helpers.mjs';

const T = { timeout: 60000 * SLOW };

let K;
let keyDir;

before(() => {
  keyDir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-jwks-keys-'));
  K = makeKeys(keyDir);
});
after(() => fs.rmSync(keyDir, { recursive: true, force: true }));

const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const get = (v, t) => https({ port: v.ports.https, path: '/api/x', headers: t ? bearer(t) : {} });

async function reasonOf(v, r) {
  const id = assertEdge(r, 401);
  assert.deepEqual(r.all('WWW-Authenticate'), [BEARER_INVALID]);
  return (await v.accessLogFor(id)).reason;
}

async function jwksVisor(jwks, { host = '127.0.0.1', env = { SSL_CERT_FILE: getCerts().ca }, algorithms = ['RS256', 'ES256'] } = {}) {
  const up = await startUpstream();
  const v = await startVisor({
    yaml: minimalYaml({ upstream: up.addr, extra: jwtYaml({ algorithms, keys: [{ jwks_url: jwks.url(host) }] }) }),
    env,
  });
  return { up, v };
}

const loaded = (v, n = 1) => v.waitForLog((j) => j && /^jwks: \d+ keys? from /.test(j.msg) && --n <= 0, 10000 * SLOW, { stream: 'stderr' });
const failed = (v, re) => v.waitForLog((j) => j && j.level === 'warn' && /^jwks: /.test(j.msg) && re.test(j.msg), 15000 * SLOW, { stream: 'stderr' });

describe('jwks_url', () => {
  afterEach(cleanupAll);

  it('fetches the JWKS at start (a request that comes first waits for it) and picks keys by kid', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1'), jwkOf(K.ec256.pub, 'e1')] });
    jwks.delayMs = 300;
    const { up, v } = await jwksVisor(jwks);
    // no waiting for the log line: the first request may arrive while the fetch runs
    let r = await get(v, tok('RS256', K.rsa.priv, { sub: 'first' }, { kid: 'r1' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(up.requests.at(-1).header('X-User-Id'), 'first');
    jwks.delayMs = 0;
    await loaded(v);
    r = await get(v, tok('ES256', K.ec256.priv, {}, { kid: 'e1' }));
    assert.equal(r.status, 200);
    // without a kid: the keys of the token's type are tried
    assert.equal((await get(v, tok('ES256', K.ec256.priv))).status, 200);
    // a kid naming a key of another type
    assert.equal(await reasonOf(v, await get(v, tok('RS256', K.rsa.priv, {}, { kid: 'e1' }))), 'jwt:no_key');
    assert.equal(await reasonOf(v, await get(v, tok('ES256', K.ec256b.priv, {}, { kid: 'e1' }))), 'jwt:bad_signature');
    assert.equal(jwks.hits, 1, 'one fetch');
  });

  it('the host name resolves without blocking (evdns, /etc/hosts) and is checked against the certificate', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.ec256.pub, 'e1')] });
    const { v } = await jwksVisor(jwks, { host: 'localhost' });
    await loaded(v);
    assert.equal((await get(v, tok('ES256', K.ec256.priv, {}, { kid: 'e1' }))).status, 200);
  });

  it('rotation: a new kid is fetched at once (the request waits), the removed kid is refused', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.ec256.pub, 'old')] });
    const { v } = await jwksVisor(jwks);
    await loaded(v);
    const oldTok = tok('ES256', K.ec256.priv, {}, { kid: 'old' });
    assert.equal((await get(v, oldTok)).status, 200);
    jwks.setDoc({ keys: [jwkOf(K.ec256b.pub, 'new')] });
    const r = await get(v, tok('ES256', K.ec256b.priv, {}, { kid: 'new' }));
    assert.equal(r.status, 200, 'the new kid is picked up by the refetch it triggers');
    assert.equal(jwks.hits, 2);
    assert.equal(await reasonOf(v, await get(v, oldTok)), 'jwt:unknown_kid', 'the removed key is gone (cache included)');
    assert.equal(jwks.hits, 2, 'no further refetch within 30 s');
  });

  it('unknown kids trigger at most one refetch per 30 s', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
    const { v } = await jwksVisor(jwks);
    await loaded(v);
    assert.equal(jwks.hits, 1);
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) {
      assert.equal(await reasonOf(v, await get(v, tok('RS256', K.rsa.priv, {}, { kid: `nope-${i}` }))), 'jwt:unknown_kid');
    }
    assert.equal(jwks.hits, 2, 'exactly one refetch');
    assert.ok(Date.now() - t0 < 5000 * SLOW, 'refusals after the first do not wait');
    assert.equal((await get(v, tok('RS256', K.rsa.priv, {}, { kid: 'r1' }))).status, 200);
  });

  it('keeps the last good keys while the endpoint fails (500, reset, bad JSON, no usable key)', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
    const { v } = await jwksVisor(jwks);
    await loaded(v);
    const good = tok('RS256', K.rsa.priv, {}, { kid: 'r1' });
    assert.equal((await get(v, good)).status, 200);
    jwks.setMode('500');
    assert.equal(await reasonOf(v, await get(v, tok('RS256', K.rsa.priv, {}, { kid: 'r2' }))), 'jwt:unknown_kid');
    await failed(v, /status other than 200.*keeping the last good keys/);
    assert.equal(jwks.hits, 2);
    assert.equal((await get(v, good)).status, 200, 'still verified with the last good set');
    // the same through a visor that meets a reset, then a document that is not a JWKS
    await cleanupAll();
    for (const [mode, doc, re] of [['close', null, /connection/], ['ok', '{"keys": 7}', /not an object with a "keys" array/], ['ok', { keys: [{ kty: 'RSA', kid: 'x', n: 'AQAB', e: 'AQAB' }] }, /no usable key/]]) {
      const j2 = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
      const { v: v2 } = await jwksVisor(j2);
      await loaded(v2);
      j2.setMode(mode);
      if (doc) j2.setDoc(doc);
      await reasonOf(v2, await get(v2, tok('RS256', K.rsa.priv, {}, { kid: 'zz' })));
      await failed(v2, re);
      assert.equal((await get(v2, good)).status, 200, `${mode} ${JSON.stringify(doc)}: last good keys kept`);
      await cleanupAll();
    }
  });

  it('an endpoint whose certificate is not trusted, or names another host, is never used', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
    const { v } = await jwksVisor(jwks, { env: { SSL_CERT_FILE: path.join(keyDir, 'no-such-ca.pem') } });
    await failed(v, /certificate not trusted|certificate verification failed/);
    assert.equal(await reasonOf(v, await get(v, tok('RS256', K.rsa.priv, {}, { kid: 'r1' }))), 'jwt:unknown_kid');
    await cleanupAll();
    const alt = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] }, { alt: true });
    const { v: v2 } = await jwksVisor(alt);
    await failed(v2, /certificate not trusted.*mismatch|certificate verification failed/);
    assert.equal(await reasonOf(v2, await get(v2, tok('RS256', K.rsa.priv, {}, { kid: 'r1' }))), 'jwt:unknown_kid');
  });

  it('does not follow redirects', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
    jwks.setMode('redirect');
    const { v } = await jwksVisor(jwks);
    await failed(v, /redirect \(not followed\)/);
    assert.equal(jwks.hits, 1);
  });

  it('SIGHUP keeps the fetched keys without a refetch; a request during the reload is served', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.rsa.pub, 'r1')] });
    const { v } = await jwksVisor(jwks);
    await loaded(v);
    const good = tok('RS256', K.rsa.priv, {}, { kid: 'r1' });
    assert.equal((await get(v, good)).status, 200);
    const n = v.stderr.length;
    v.hup();
    await v.waitForLog((j, l) => v.stderr.indexOf(l) >= n && j && /configuration reloaded/.test(j.msg), 5000 * SLOW, { stream: 'stderr' });
    assert.equal((await get(v, good)).status, 200);
    await delay(200);
    assert.equal(jwks.hits, 1, 'the source outlived the generation');
  });

  it('mixes jwks_url keys with file keys', T, async () => {
    const jwks = await startJwks({ keys: [jwkOf(K.ec256.pub, 'e1')] });
    const up = await startUpstream();
    const v = await startVisor({
      yaml: minimalYaml({ upstream: up.addr, extra: jwtYaml({ algorithms: ['RS256', 'ES256'], keys: [{ file: K.rsa.file, kid: 'file-1' }, { jwks_url: jwks.url() }] }) }),
      env: { SSL_CERT_FILE: getCerts().ca },
    });
    await until(() => jwks.hits >= 1, 5000 * SLOW, 'the first fetch');
    assert.equal((await get(v, tok('RS256', K.rsa.priv, {}, { kid: 'file-1' }))).status, 200);
    assert.equal((await get(v, tok('ES256', K.ec256.priv, {}, { kid: 'e1' }))).status, 200);
  });
});
