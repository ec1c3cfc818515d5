// JWT test material, generated per run (never committed): keys (node:crypto, and the openssl
// CLI for one RSA key so both toolchains are exercised), compact JWS tokens for every
// algorithm visor supports, the attack shapes of issue 5, and a JWKS endpoint over HTTPS.
//
//   makeKeys(dir)           → { rsa, rsa2, ec256, ec256b, ec384, ec384b, ed, ed2, hmac, hmac2,
//                               rsa1024 } each { priv, pub, pubPem, file (PEM path) } (hmac:
//                               { secret, file (secret_file) })
//   sign(alg, header, payload, key) → token; header gets alg unless given
//   tok(alg, key, claims, header)   → token with sensible claims (sub, iat, exp) merged
//   jwkOf(key, kid, alg)    → a public JWK
//   startJwks(doc, {alt})   → HTTPS JWKS server with the test certificate: { port, url(host),
//                             hits, delayMs, cacheControl, setDoc(doc),
//                             setMode('ok'|'500'|'close'|'redirect'), close() }
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import nodeHttps from 'node:https';
import { execFileSync } from 'node:child_process';
import { getCerts } from './certs.mjs';
import { track, delay } from './util.mjs';

export const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

// The raw signature of `input` for alg with key (a KeyObject, or a Buffer secret for HS*).
export function rawSign(alg, input, key) {
  const data = Buffer.from(input);
  const bits = alg.slice(2);
  switch (alg.slice(0, 2)) {
    case 'HS':
      return crypto.createHmac(HASH[bits], key).update(data).digest();
    case 'RS':
      return crypto.sign(HASH[bits], data, key);
    case 'PS':
      return crypto.sign(HASH[bits], data, {
        key,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: Number(bits) / 8,
      });
    case 'ES':
      return crypto.sign(HASH[bits], data, { key, dsaEncoding: 'ieee-p1363' });
    case 'Ed':
      return crypto.sign(null, data, key);
    default:
      throw new Error(`no signer for ${alg}`);
  }
}

// Compact JWS from raw header and payload objects (or strings: used verbatim).
export function sign(alg, header, payload, key) {
  const h = typeof header === 'string' ? header : b64u({ alg, typ: 'JWT', ...header });
  const p = typeof payload === 'string' ? payload : b64u(payload);
  const input = `${h}.${p}`;
  return `${input}.${rawSign(alg, input, key).toString('base64url')}`;
}

export function tok(alg, key, claims = {}, header = {}) {
  const t = now();
  return sign(alg, header, { sub: 'alice', iat: t, exp: t + 3600, ...claims }, key);
}

function writePem(dir, name, keyObj) {
  const file = path.join(dir, `${name}.pub.pem`);
  fs.writeFileSync(file, keyObj.export({ type: 'spki', format: 'pem' }));
  return file;
}

function pair(dir, name, type, opts) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts);
  return { priv: privateKey, pub: publicKey, pubPem: publicKey.export({ type: 'spki', format: 'pem' }), file: writePem(dir, name, publicKey) };
}

// One RSA key through the openssl CLI (what an operator would run).
function opensslRsa(dir, name, bits) {
  const keyFile = path.join(dir, `${name}.key`);
  const pubFile = path.join(dir, `${name}.pub.pem`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', keyFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  const priv = crypto.createPrivateKey(fs.readFileSync(keyFile));
  fs.rmSync(keyFile);
  const pub = crypto.createPublicKey(fs.readFileSync(pubFile));
  return { priv, pub, pubPem: fs.readFileSync(pubFile, 'utf8'), file: pubFile };
}

export function makeKeys(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const k = {
    rsa: opensslRsa(dir, 'rsa', 2048),
    rsa2: pair(dir, 'rsa2', 'rsa', { modulusLength: 2048 }),
    rsa1024: pair(dir, 'rsa1024', 'rsa', { modulusLength: 1024 }),
    ec256: pair(dir, 'ec256', 'ec', { namedCurve: 'P-256' }),
    ec256b: pair(dir, 'ec256b', 'ec', { namedCurve: 'P-256' }),
    ec384: pair(dir, 'ec384', 'ec', { namedCurve: 'P-384' }),
    ec384b: pair(dir, 'ec384b', 'ec', { namedCurve: 'P-384' }),
    ed: pair(dir, 'ed', 'ed25519'),
    ed2: pair(dir, 'ed2', 'ed25519'),
  };
  // visor trims trailing CR/LF from *_file values (Docker secrets end with a newline).
  const secret = crypto.randomBytes(64);
  if (secret[63] === 0x0a || secret[63] === 0x0d) secret[63] = 0x41;
  const secretFile = path.join(dir, 'hs.secret');
  fs.writeFileSync(secretFile, secret);
  k.hmac = { secret, file: secretFile };
  k.hmac2 = { secret: crypto.randomBytes(64) };
  return k;
}

// The private key that signs `alg` in a key set from makeKeys (good = the configured one).
export function signerFor(keys, alg, good = true) {
  const f = alg.slice(0, 2);
  if (f === 'HS') return good ? keys.hmac.secret : keys.hmac2.secret;
  if (f === 'RS' || f === 'PS') return good ? keys.rsa.priv : keys.rsa2.priv;
  if (alg === 'ES256') return good ? keys.ec256.priv : keys.ec256b.priv;
  if (alg === 'ES384') return good ? keys.ec384.priv : keys.ec384b.priv;
  return good ? keys.ed.priv : keys.ed2.priv;
}

export const ALL_ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

export function jwkOf(pub, kid, alg) {
  const j = pub.export({ format: 'jwk' });
  return { ...j, kid, use: 'sig', ...(alg ? { alg } : {}) };
}

// DER (ASN.1) form of a raw r||s ECDSA signature: what a JWS must never carry.
export function p1363ToDer(sig) {
  const half = sig.length / 2;
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(sig.subarray(0, half)), int(sig.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

// A JWKS endpoint over HTTPS with visor's test certificate (CN localhost, IP 127.0.0.1).
// { alt: true } serves the alt certificate (SAN alt.visor.test only) to test name checks.
export async function startJwks(doc, { alt = false } = {}) {
  const c = getCerts();
  const s = {
    doc,
    mode: 'ok',
    hits: 0,
    cacheControl: 'max-age=3600',
    delayMs: 0,
  };
  const tlsOpts = alt ? { cert: c.altCertPem, key: fs.readFileSync(c.altKey) } : { cert: c.certPem, key: fs.readFileSync(c.key) };
  const server = nodeHttps.createServer(tlsOpts, async (req, res) => {
    s.hits++;
    if (s.delayMs) await delay(s.delayMs);
    if (s.mode === 'close') {
      req.socket.destroy();
      return;
    }
    if (s.mode === '500') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('down');
      return;
    }
    if (s.mode === 'redirect') {
      res.writeHead(302, { Location: 'https://evil.example/jwks.json' });
      res.end();
      return;
    }
    const body = typeof s.doc === 'string' ? s.doc : JSON.stringify(s.doc);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': s.cacheControl });
    res.end(body);
  });
  server.keepAliveTimeout = 1000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  s.port = server.address().port;
  s.url = (host = '127.0.0.1') => `https://${host}:${s.port}/.well-known/jwks.json`;
  s.setDoc = (d) => {
    s.doc = d;
  };
  s.setMode = (m) => {
    s.mode = m;
  };
  s.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  const untrack = track(`jwks ${s.port}`, async () => {
    untrack();
    await s.close();
  });
  return s;
}

// The `jwt:` section and routes for a test visor: /api/ required, /opt/ optional, / off.
export function jwtYaml({ algorithms, keys, extra = '', claims = { sub: 'X-User-Id', role: 'X-User-Role' }, routes } = {}) {
  let y = 'jwt:\n';
  y += `  algorithms: [${algorithms.join(', ')}]\n`;
  y += '  keys:\n';
  for (const k of keys) {
    const entries = Object.entries(k);
    y += `    - ${entries[0][0]}: ${JSON.stringify(entries[0][1])}\n`;
    for (const [n, v] of entries.slice(1)) y += `      ${n}: ${JSON.stringify(v)}\n`;
  }
  if (claims && Object.keys(claims).length) {
    y += '  claims_to_headers:\n';
    for (const [c, h] of Object.entries(claims)) y += `    ${JSON.stringify(c)}: ${h}\n`;
  }
  for (const l of String(extra).split('\n')) if (l.trim()) y += `  ${l}\n`;
  y += routes || 'routes:\n  - path: /api/\n    auth: required\n  - path: /opt/\n    auth: optional\n  - path: /\n    auth: off\n';
  return y;
}

export const BEARER_REALM = 'Bearer realm="api"';
export const BEARER_INVALID = 'Bearer error="invalid_token"';
