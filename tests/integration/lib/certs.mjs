// Test PKI, made with the openssl CLI once per run and shared by every test file:
//   ca.crt            a throw-away CA (the clients trust only this)
//   server.crt/.key   ECDSA P-256, SAN DNS:localhost, IP:127.0.0.1   (visor's default cert)
//   alt.crt/.key      RSA 2048,   SAN DNS:alt.visor.test            (picked by SNI)
//   rsa.crt/.key      RSA 2048,   SAN DNS:localhost, IP:127.0.0.1   (server.crt's RSA twin:
//                                                                   dual-certificate tests)
// Location: $VISOR_IT_DIR/certs when run.sh set it (a temp dir removed at the end of the
// run), else <os tmpdir>/visor-it-certs (reused for a week). Keys are never in the repo.
// Several test processes may ask at once: each generates into a private dir and renames it
// into place; the loser of the race uses the winner's files.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

export const ALT_NAME = 'alt.visor.test';

function baseDir() {
  if (process.env.VISOR_IT_DIR) return path.join(process.env.VISOR_IT_DIR, 'certs');
  return path.join(os.tmpdir(), 'visor-it-certs');
}

function ossl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function serial() {
  return '0x' + crypto.randomBytes(8).toString('hex');
}

function generate(dir) {
  fs.mkdirSync(dir, { recursive: true });
  ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'], dir);
  ossl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '30', '-subj', '/CN=visor test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-out', 'ca.crt'], dir);
  const leaf = (name, keyArgs, san) => {
    ossl(['genpkey', ...keyArgs, '-out', `${name}.key`], dir);
    ossl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${san.cn}`, '-out', `${name}.csr`], dir);
    fs.writeFileSync(path.join(dir, `${name}.ext`),
      `subjectAltName=${san.alt}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial(),
      '-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
    fs.rmSync(path.join(dir, `${name}.csr`));
    fs.rmSync(path.join(dir, `${name}.ext`));
  };
  leaf('server', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { cn: 'localhost', alt: 'DNS:localhost,IP:127.0.0.1' });
  leaf('alt', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], { cn: ALT_NAME, alt: `DNS:${ALT_NAME}` });
  leaf('rsa', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], { cn: 'localhost', alt: 'DNS:localhost,IP:127.0.0.1' });
  fs.writeFileSync(path.join(dir, 'complete'), 'ok\n');
}

// Every file generate() makes: a reused directory from before a file was added is stale.
const FILES = ['ca.crt', 'server.crt', 'server.key', 'alt.crt', 'alt.key', 'rsa.crt', 'rsa.key'];

function fresh(dir) {
  try {
    const st = fs.statSync(path.join(dir, 'complete'));
    if (!FILES.every((f) => fs.existsSync(path.join(dir, f)))) return false;
    return Date.now() - st.mtimeMs < 7 * 86400e3;
  } catch {
    return false;
  }
}

let cached = null;

// Returns absolute paths { dir, ca, cert, key, altCert, altKey, rsaCert, rsaKey } and the PEM
// texts { caPem, certPem, altCertPem, rsaCertPem }.
export function getCerts() {
  if (cached) return cached;
  const dir = baseDir();
  if (!fresh(dir)) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    generate(tmp);
    if (fs.existsSync(dir) && !fresh(dir)) fs.rmSync(dir, { recursive: true, force: true });
    try {
      fs.renameSync(tmp, dir);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    if (!fresh(dir)) throw new Error(`could not create test certificates in ${dir}`);
  }
  const p = (f) => path.join(dir, f);
  cached = {
    dir,
    ca: p('ca.crt'),
    cert: p('server.crt'),
    key: p('server.key'),
    altCert: p('alt.crt'),
    altKey: p('alt.key'),
    rsaCert: p('rsa.crt'),
    rsaKey: p('rsa.key'),
    caPem: fs.readFileSync(p('ca.crt')),
    certPem: fs.readFileSync(p('server.crt')),
    altCertPem: fs.readFileSync(p('alt.crt')),
    rsaCertPem: fs.readFileSync(p('rsa.crt')),
  };
  return cached;
}

// `node lib/certs.mjs` generates them ahead of the run (run.sh does this once).
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  getCerts();
}
