#!/usr/bin/env node
// mint-jwt — signs a development JWT with node:crypto (no npm dependencies).
// Defaults: RS256 with conf/keys/jwt.key.pem (made by tests/tools/dev-setup.sh),
// iss https://auth.example.com, aud api.example.com, sub demo, iat now, exp now + 1h.
//
// Usage: node tests/tools/mint-jwt.js [options]        prints the token on stdout
//   --key FILE        PEM private key (RSA, EC or Ed25519)    [conf/keys/jwt.key.pem]
//   --alg ALG         RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|EdDSA   [RS256]
//   --kid KID         key id in the header
//   --sub SUB         [demo]          --iss ISS   [https://auth.example.com]
//   --aud AUD         [api.example.com]
//   --exp DURATION    lifetime from now: 3600, 90s, 15m, 1h, 2d; negative = already expired [1h]
//   --no-exp          no exp claim
//   --nbf DURATION    not-before, relative to now (e.g. 10m = in ten minutes)
//   --iat UNIX        issued-at (default: now)
//   --jti ID          token id
//   --role ROLE       adds "role"
//   --claim K=V       any other claim; V parsed as JSON when it parses (repeatable)
//
// Example: curl -k -H "Authorization: Bearer $(node tests/tools/mint-jwt.js)" https://localhost:8443/api/items
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');

function usage(code) {
  const text = fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n');
  (code ? process.stderr : process.stdout).write(text + '\n');
  process.exit(code);
}

function duration(s) {
  const m = String(s).match(/^(-?\d+)(s|m|h|d)?$/);
  if (!m) throw new Error(`bad duration ${s}`);
  return Number(m[1]) * (m[2] ? { s: 1, m: 60, h: 3600, d: 86400 }[m[2]] : 1);
}

const o = {
  key: path.join(REPO, 'conf/keys/jwt.key.pem'),
  alg: 'RS256',
  kid: undefined,
  sub: 'demo',
  iss: 'https://auth.example.com',
  aud: 'api.example.com',
  exp: '1h',
  noExp: false,
  nbf: undefined,
  iat: undefined,
  jti: undefined,
  role: undefined,
  claims: {},
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => {
    if (i + 1 >= argv.length) {
      process.stderr.write(`mint-jwt: ${a} needs a value\n`);
      usage(2);
    }
    return argv[++i];
  };
  switch (a) {
    case '-h': case '--help': usage(0); break;
    case '--key': o.key = next(); break;
    case '--alg': o.alg = next(); break;
    case '--kid': o.kid = next(); break;
    case '--sub': o.sub = next(); break;
    case '--iss': o.iss = next(); break;
    case '--aud': o.aud = next(); break;
    case '--exp': o.exp = next(); break;
    case '--no-exp': o.noExp = true; break;
    case '--nbf': o.nbf = next(); break;
    case '--iat': o.iat = Number(next()); break;
    case '--jti': o.jti = next(); break;
    case '--role': o.role = next(); break;
    case '--claim': {
      const kv = next();
      const eq = kv.indexOf('=');
      if (eq <= 0) {
        process.stderr.write(`mint-jwt: --claim wants K=V, got ${kv}\n`);
        process.exit(2);
      }
      const k = kv.slice(0, eq);
      const v = kv.slice(eq + 1);
      try {
        o.claims[k] = JSON.parse(v);
      } catch {
        o.claims[k] = v;
      }
      break;
    }
    default:
      process.stderr.write(`mint-jwt: unknown option ${a}\n`);
      usage(2);
  }
}

const ALGS = {
  RS256: { hash: 'sha256', kty: 'rsa' },
  RS384: { hash: 'sha384', kty: 'rsa' },
  RS512: { hash: 'sha512', kty: 'rsa' },
  PS256: { hash: 'sha256', kty: 'rsa', pss: 32 },
  PS384: { hash: 'sha384', kty: 'rsa', pss: 48 },
  PS512: { hash: 'sha512', kty: 'rsa', pss: 64 },
  ES256: { hash: 'sha256', kty: 'ec' },
  ES384: { hash: 'sha384', kty: 'ec' },
  EdDSA: { hash: null, kty: 'ed25519' },
};
const alg = ALGS[o.alg];
if (!alg) {
  process.stderr.write(`mint-jwt: unsupported --alg ${o.alg}\n`);
  process.exit(2);
}

let key;
try {
  key = crypto.createPrivateKey(fs.readFileSync(o.key));
} catch (e) {
  process.stderr.write(`mint-jwt: cannot read private key ${o.key}: ${e.message}\n(run tests/tools/dev-setup.sh to create the dev keys)\n`);
  process.exit(1);
}
if (key.asymmetricKeyType !== alg.kty) {
  process.stderr.write(`mint-jwt: ${o.alg} needs a ${alg.kty} key, ${o.key} is ${key.asymmetricKeyType}\n`);
  process.exit(2);
}

const now = Math.floor(Date.now() / 1000);
const payload = { iss: o.iss, aud: o.aud, sub: o.sub, iat: Number.isFinite(o.iat) ? o.iat : now };
if (!o.noExp) payload.exp = now + duration(o.exp);
if (o.nbf !== undefined) payload.nbf = now + duration(o.nbf);
if (o.jti !== undefined) payload.jti = o.jti;
if (o.role !== undefined) payload.role = o.role;
Object.assign(payload, o.claims);

const header = { alg: o.alg, typ: 'JWT' };
if (o.kid !== undefined) header.kid = o.kid;

const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const input = `${b64(header)}.${b64(payload)}`;
let sig;
if (alg.kty === 'ed25519') sig = crypto.sign(null, Buffer.from(input), key);
else if (alg.kty === 'ec') sig = crypto.sign(alg.hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
else if (alg.pss) sig = crypto.sign(alg.hash, Buffer.from(input), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.pss });
else sig = crypto.sign(alg.hash, Buffer.from(input), key);

process.stdout.write(`${input}.${sig.toString('base64url')}\n`);
