// Several certificates for one name ("Safe in production", finding 7): with an ECDSA and an
// RSA certificate for localhost (nginx's classic pair) the handshake picks by what the client
// accepts — ECDSA whenever it can, RSA for clients that take only RSA — with or without SNI,
// in TLS 1.2 and 1.3, whatever the order in tls.certificates; a third certificate for other
// names is still picked by SNI. Every check looks at the certificate served (its fingerprint
// and key type), not only at whether the handshake worked.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, https, tlsConnect, runVisor, writeConfigFile, cleanupAll, getCerts,
  ALT_NAME, SLOW, track,
} from './lib/harness.mjs';

const T = { timeout: 60000 * SLOW };
const VERSIONS = ['TLSv1.2', 'TLSv1.3'];

const c = getCerts();
const ECDSA = { cert: c.cert, key: c.key };
const RSA = { cert: c.rsaCert, key: c.rsaKey };
const ALT = { cert: c.altCert, key: c.altKey };

// Served certificates are named by fingerprint: ECDSA / RSA (both for localhost), ALT, CA.
const x509 = (pem) => new crypto.X509Certificate(pem);
const LABELS = new Map([
  [x509(c.certPem).fingerprint256, 'ECDSA'],
  [x509(c.rsaCertPem).fingerprint256, 'RSA'],
  [x509(c.altCertPem).fingerprint256, 'ALT'],
  [x509(c.caPem).fingerprint256, 'CA'],
]);
const KEY_TYPE = { ECDSA: 'ec', RSA: 'rsa', ALT: 'rsa', CA: 'ec' };

// The certificates in a text (openssl -showcerts, curl %{certs}), in order, as labels; the
// key type of the first is checked against its label, so a label is never taken on trust.
function labels(text) {
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) || [];
  return pems.map((pem, i) => {
    const x = x509(pem);
    const l = LABELS.get(x.fingerprint256) || `unknown(${x.subject})`;
    if (i === 0 && KEY_TYPE[l]) assert.equal(x.publicKey.asymmetricKeyType, KEY_TYPE[l], `key type of ${l}`);
    return l;
  });
}

function tmpDir() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'tls-certs-'));
  track(`dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function certsYaml(upstream, certs) {
  let y = 'listen:\n  https: {{HTTPS}}\ntls:\n  certificates:\n';
  for (const x of certs) y += `    - cert: ${x.cert}\n      key: ${x.key}\n`;
  return y + `upstream:\n  servers: [${upstream}]\n`;
}

// openssl s_client, stdin at EOF (it quits after the handshake). Resolves with the protocol
// and cipher ("TLSv1.3 TLS_AES_256_GCM_SHA384", or "FAIL" and the alert), the chain served
// as labels, and the whole output for messages.
function sclient(port, { version, sigalgs, cipher, servername }) {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, version === 'TLSv1.2' ? '-tls1_2' : '-tls1_3',
    '-CAfile', c.ca, '-showcerts'];
  if (sigalgs) args.push('-sigalgs', sigalgs);
  if (cipher) args.push('-cipher', cipher);
  args.push(...(servername ? ['-servername', servername] : ['-noservername']));
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 10000 * SLOW);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(timer);
      const m = out.match(/^New, (TLSv1\.[23]), Cipher is (\S+)/m);
      const verified = /Verify return code: 0 \(ok\)/.test(out);
      const alert = (out.match(/alert number \d+/) || [''])[0];
      resolve({
        result: m && verified ? `${m[1]} ${m[2]}` : `FAIL ${alert}`.trim(),
        chain: m ? labels(out) : [],
        out,
      });
    });
  });
}

// The clients of the matrix. "prefers RSA" lists RSA-PSS before ECDSA (TLS 1.3 picks by
// signature algorithm) and ECDHE-RSA before ECDHE-ECDSA (TLS 1.2 picks by cipher suite): the
// server's preference must still give it ECDSA.
const CLIENTS = [
  { name: 'default', want: 'ECDSA' },
  { name: 'ECDSA+SHA256 only', sigalgs: 'ECDSA+SHA256', want: 'ECDSA' },
  { name: 'RSA only', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256', want: 'RSA' },
  { name: 'prefers RSA', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256:ECDSA+SHA256',
    cipher: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256', want: 'ECDSA' },
];

// Runs every client × version × (SNI localhost, no SNI) against `port`; returns the cases
// that did not get a verified handshake with `want` (an empty list is a pass), so a failure
// shows the whole picture at once.
async function matrix(port, { sni = ['localhost', null], noSniWant = null } = {}) {
  const bad = [];
  for (const version of VERSIONS) {
    for (const cl of CLIENTS) {
      for (const servername of sni) {
        // Without SNI an unrelated default certificate wins; `noSniWant` says which.
        const want = servername === null && noSniWant ? noSniWant : cl.want;
        const r = await sclient(port, { version, sigalgs: cl.sigalgs, cipher: cl.cipher, servername });
        const got = r.result.startsWith('FAIL') ? r.result : r.chain[0];
        if (got !== want || !r.result.startsWith(version)) {
          bad.push(`${version} ${cl.name} ${servername ? `SNI ${servername}` : 'no SNI'}: want ${want}, got ${got} (${r.result})`);
        }
      }
    }
  }
  return bad;
}

describe('dual certificates (ECDSA + RSA for the same names)', () => {
  afterEach(cleanupAll);

  const SETUPS = [
    { name: '[ECDSA, RSA]', certs: [ECDSA, RSA] },
    { name: '[RSA, ECDSA]', certs: [RSA, ECDSA] },
    { name: '[ECDSA, RSA, alt]', certs: [ECDSA, RSA, ALT], alt: true },
    { name: '[RSA, alt, ECDSA] (the pair apart in the list)', certs: [RSA, ALT, ECDSA], alt: true },
  ];
  for (const s of SETUPS) {
    it(`${s.name}: picked by the client's algorithms, ECDSA when it takes both, with and without SNI`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(certsYaml(up.addr, s.certs));
      assert.deepEqual(await matrix(v.ports.https), []);
      if (s.alt) {
        for (const version of VERSIONS) {
          const r = await sclient(v.ports.https, { version, servername: ALT_NAME });
          assert.ok(r.result.startsWith(version), `${version} SNI ${ALT_NAME}: ${r.result}`);
          assert.deepEqual(r.chain, ['ALT'], `${version} SNI ${ALT_NAME}`);
        }
      }
    });
  }

  it('[alt, ECDSA, RSA]: the pair is picked by SNI, the default stays alt', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(certsYaml(up.addr, [ALT, ECDSA, RSA]));
    assert.deepEqual(await matrix(v.ports.https, { sni: ['localhost'] }), []);
    for (const version of VERSIONS) {
      const r = await sclient(v.ports.https, { version, servername: null });
      assert.deepEqual(r.chain, ['ALT'], `${version} no SNI: ${r.result}`);
    }
  });

  it('node\'s tls client and https get ECDSA by default (RSA listed first)', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(certsYaml(up.addr, [RSA, ALT, ECDSA]));
    for (const version of VERSIONS) {
      for (const servername of ['localhost', '']) {
        const s = await tlsConnect(v.ports.https, { servername, minVersion: version, maxVersion: version });
        const where = `${version} ${servername ? 'SNI localhost' : 'no SNI'}`;
        assert.equal(s.getProtocol(), version, where);
        assert.equal(LABELS.get(s.getPeerX509Certificate().fingerprint256), 'ECDSA', where);
        s.destroy();
      }
      const r = await https({ port: v.ports.https, minVersion: version, maxVersion: version });
      assert.equal(r.status, 200);
      assert.equal(LABELS.get(r.socket.getPeerX509Certificate().fingerprint256), 'ECDSA', `https ${version}`);
    }
    const a = await tlsConnect(v.ports.https, { servername: ALT_NAME });
    assert.equal(LABELS.get(a.getPeerX509Certificate().fingerprint256), 'ALT');
    a.destroy();
  });

  it('curl gets ECDSA by default (RSA listed first), with and without SNI', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(certsYaml(up.addr, [RSA, ALT, ECDSA]));
    const port = v.ports.https;
    for (const tlsArgs of [['--tlsv1.2', '--tls-max', '1.2'], ['--tlsv1.3']]) {
      for (const url of [`https://localhost:${port}/`, `https://127.0.0.1:${port}/`]) {
        // an IP in the URL: curl sends no SNI. Asynchronous: the upstream runs in this process.
        const { stdout: out } = await promisify(execFile)('curl', ['-sS', '--cacert', c.ca, '--resolve', `localhost:${port}:127.0.0.1`,
          ...tlsArgs, '-o', '/dev/null', '-w', '%{http_code} %{certs}', url], { encoding: 'utf8', timeout: 10000 * SLOW });
        assert.match(out, /^200 /, `${tlsArgs[0]} ${url}`);
        assert.equal(labels(out)[0], 'ECDSA', `${tlsArgs[0]} ${url}`);
      }
    }
  });

  it('each certificate keeps its own chain', T, async () => {
    // RSA's file carries the CA as an "intermediate", ECDSA's none: a chain on the wrong
    // certificate (one slot's chain replacing or joining the other's) would show.
    const dir = tmpDir();
    const rsaChain = path.join(dir, 'rsa-chain.crt');
    fs.writeFileSync(rsaChain, Buffer.concat([c.rsaCertPem, c.caPem]));
    const up = await startUpstream();
    for (const certs of [[ECDSA, { ...RSA, cert: rsaChain }], [{ ...RSA, cert: rsaChain }, ECDSA]]) {
      const v = await startVisor(certsYaml(up.addr, certs));
      for (const version of VERSIONS) {
        for (const servername of ['localhost', null]) {
          const e = await sclient(v.ports.https, { version, servername, sigalgs: 'ECDSA+SHA256' });
          assert.deepEqual(e.chain, ['ECDSA'], `${version} ECDSA ${servername}: ${e.result}`);
          const r = await sclient(v.ports.https, { version, servername, sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' });
          assert.deepEqual(r.chain, ['RSA', 'CA'], `${version} RSA ${servername}: ${r.result}`);
        }
      }
      await v.stop();
    }
  });

  it('SIGHUP: adding and reordering the pair takes effect for new handshakes', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(certsYaml(up.addr, [ECDSA]));
    const rsaOnly = { version: 'TLSv1.3', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256', servername: 'localhost' };
    assert.match((await sclient(v.ports.https, rsaOnly)).result, /^FAIL/, 'no RSA certificate yet');
    const reload = async (certs) => {
      const n = v.stderr.length;
      await v.writeConfig(certsYaml(up.addr, certs));
      v.hup();
      await v.waitForLog((j, l) => v.stderr.indexOf(l) >= n && j && /configuration reloaded/.test(j.msg),
        5000 * SLOW, { stream: 'stderr' });
    };
    await reload([ECDSA, RSA]);
    assert.deepEqual(await matrix(v.ports.https), []);
    await reload([RSA, ALT, ECDSA]);
    assert.deepEqual(await matrix(v.ports.https), []);
    assert.deepEqual((await sclient(v.ports.https, { version: 'TLSv1.3', servername: ALT_NAME })).chain, ['ALT']);
  });
});

describe('certificates that cannot be told apart', () => {
  afterEach(cleanupAll);

  it('two certificates of one key type for the same names are an error', T, async () => {
    const { file } = await writeConfigFile(certsYaml('127.0.0.1:1', [ECDSA, RSA, ECDSA]));
    const r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /:9:\d+: error: tls\.certificates\.2: a second ECDSA certificate for the names of tls\.certificates\.0 /);
    // the same two in the order [RSA, ECDSA] are fine
    const ok = await writeConfigFile(certsYaml('127.0.0.1:1', [RSA, ECDSA]));
    const r2 = runVisor(['-t', '-c', ok.file]);
    assert.equal(r2.code, 0, r2.stderr);
  });

  it('certificates of different key types sharing some names but not all: a warning', T, async () => {
    // An Ed25519 certificate for localhost only (no IP): not the ECDSA one's twin.
    const dir = tmpDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-keyout', 'ed.key', '-out', 'ed.crt'], { cwd: dir, stdio: 'ignore' });
    const ed = { cert: path.join(dir, 'ed.crt'), key: path.join(dir, 'ed.key') };
    const { file } = await writeConfigFile(certsYaml('127.0.0.1:1', [ECDSA, ed]));
    const r = runVisor(['-t', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: tls\.certificates\.1 \(Ed25519\) shares the name localhost with tls\.certificates\.0 \(ECDSA\) but not all names/);
  });
});
