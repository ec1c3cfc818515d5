// Helpers for the policy suites (cors, headers, scrub, routes): YAML builders, header-set
// assertions, an upstream whose answers each test picks per path, raw upstream answers,
// the scrubbed_error log lines, and a JWT key pair for routes with `auth: required`.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { minimalYaml, startUpstream, track, dedent } from './harness.mjs';

// minimalYaml plus `workers: 1` (so one keep-alive client connection always meets the same
// upstream pool) and extra top-level YAML.
export function policyYaml(upstream, extra = '', opts = {}) {
  return minimalYaml({ upstream, ...opts, extra: `workers: 1\n${dedent(extra || '\n')}` });
}

// The cors section as YAML text.
export function corsSection({
  origins = ['https://app.example.com'],
  credentials = false,
  methods,
  headers,
  expose,
  maxAge,
  onDisallowed = 'reject',
} = {}) {
  let y = 'cors:\n';
  y += `  origins: [${origins.map((o) => JSON.stringify(o)).join(', ')}]\n`;
  y += `  credentials: ${credentials}\n`;
  if (methods) y += `  methods: [${methods.join(', ')}]\n`;
  if (headers) y += `  headers: [${headers.join(', ')}]\n`;
  if (expose) y += `  expose: [${expose.join(', ')}]\n`;
  if (maxAge !== undefined) y += `  max_age: ${maxAge}\n`;
  y += `  on_disallowed: ${onDisallowed}\n`;
  return y;
}

// Every Access-Control-* header of a response, name lower-cased → [values].
export function acHeaders(res) {
  const out = {};
  for (const [n, v] of res.rawHeaders) {
    const k = n.toLowerCase();
    if (k.startsWith('access-control-')) (out[k] ||= []).push(v);
  }
  return out;
}

export function assertNoAC(res, where = '') {
  assert.deepEqual(acHeaders(res), {}, `${where}no Access-Control-* headers expected`);
}

// Exactly these Access-Control-* headers (name → value), one line each, nothing else.
export function assertAC(res, want, where = '') {
  const got = acHeaders(res);
  const exp = {};
  for (const [n, v] of Object.entries(want)) if (v !== undefined && v !== null) exp[n.toLowerCase()] = [v];
  assert.deepEqual(got, exp, `${where}Access-Control-* headers`);
}

export function assertVary(res, value, where = '') {
  assert.deepEqual(res.all('Vary'), [value], `${where}Vary`);
}

// An upstream that answers by path: routes[path] = (req, res) or { status, headers, body,
// chunked }; anything else gets the echo JSON. Its own Access-Control-* headers are added on
// every answer when noisyCors (so tests can see the core strip them).
export async function pathUpstream(routes = {}, { noisyCors = false } = {}) {
  return startUpstream((req, res, record) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const base = req.url.split('?')[0];
      const h = noisyCors
        ? { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Allow-Methods': 'TRACE', 'Access-Control-Expose-Headers': 'X-Secret', 'Access-Control-Max-Age': '1' }
        : {};
      const r = routes[base];
      if (typeof r === 'function') return r(req, res, record, Buffer.concat(chunks), h);
      if (r) return answer(res, r, h, req.method);
      const body = JSON.stringify({ method: req.method, url: req.url, headers: record.headers, remotePort: req.socket.remotePort });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...h });
      res.end(body);
    });
  });
}

// Writes { status, headers, body, chunked } on a node:http response.
export function answer(res, { status = 200, headers = {}, body = '', chunked = false }, extra = {}, method = 'GET') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = { ...extra, ...headers };
  if (!chunked) h['Content-Length'] = String(b.length);
  res.writeHead(status, h);
  if (method === 'HEAD') return res.end();
  if (chunked) {
    // several chunks, so visor sees a truly chunked body
    const step = Math.max(1, Math.ceil(b.length / 3));
    for (let i = 0; i < b.length; i += step) res.write(b.subarray(i, i + step));
    res.end();
  } else {
    res.end(b);
  }
}

// The security events named `event` on visor's stdout (JSON objects).
export function securityEvents(v, event) {
  return v.stdoutJson.filter((j) => j.type === 'security' && (!event || j.event === event));
}

// Raw lines of stdout that mention the request id (to check "one line").
export function linesFor(v, requestId) {
  return v.stdout.filter((l) => l.includes(requestId));
}

// A fresh ES256 key pair; the public key written as PEM into a temp dir removed at test end.
// sign(claims) → a compact JWS accepted by `jwt: { algorithms: [ES256], keys: [{file}] }`.
export function jwtKey() {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-policy-key-'));
  track(`key dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const file = path.join(dir, 'jwt.pub.pem');
  fs.writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
  const b64u = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const sign = (claims = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64u({ alg: 'ES256', typ: 'JWT' })}.${b64u({ sub: 'user-1', iat: now, exp: now + 600, ...claims })}`;
    const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  };
  return { file, sign, yaml: `jwt:\n  algorithms: [ES256]\n  keys:\n    - file: ${file}\n  required_claims: [exp]\n` };
}
