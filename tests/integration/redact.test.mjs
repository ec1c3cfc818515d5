// Secrets out of the logs (docs/operations.md "Redaction", docs/errors.md "The log line"): a
// real visor whose upstream answers 500 with the error texts Node apps really send (Express's
// development page, pg, mysql2, MongoDB, jsonwebtoken; tests/integration/fixtures/redact/)
// logs each scrubbed_error excerpt with the useful text byte for byte and [redacted] in place
// of every secret, and no secret appears anywhere on visor's stdout or stderr. Paths holding
// a token are redacted in the access log and in security events.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startVisor, https, cleanupAll, REPO, SLOW } from './lib/harness.mjs';
import { policyYaml, pathUpstream } from './lib/policy-helpers.mjs';

const T = { timeout: 30000 * SLOW };
const R = '[redacted]';
const FX = path.join(REPO, 'tests/integration/fixtures/redact');
const fx = (name) => fs.readFileSync(path.join(FX, name), 'utf8');
const JWT = fx('jwt.txt').trim();
const JWT_SIG = JWT.split('.')[2];

// Every secret the fixtures hold; none may reach stdout or stderr in any form.
const SECRETS = ['pg-s3cret-8f2a', 'my-s3cret-77d1', 'mongo-s3cret-41c7', 'login-s3cret-c3d9',
  'otp-s3cret-1a2b', 'YXBwOmJhc2ljLXMzY3JldC05OWU0', 'key-s3cret-5b0e', 'cookie-s3cret-e6f0', JWT_SIG];

// fixture → the exact replacements the excerpt must show (everything else stays as it is),
// and text that must survive because it is what the on-call engineer needs.
const CASES = [
  { file: 'express-dev-econnrefused.html', ctype: 'text/html; charset=utf-8',
    swap: [['postgres://app:pg-s3cret-8f2a@', `postgres://${R}@`]],
    keep: ['Error: cannot connect to postgres://', '@127.0.0.1:', 'connect ECONNREFUSED 127.0.0.1:', '<br> &nbsp; &nbsp;at '] },
  { file: 'pg-auth-failed.txt', ctype: 'text/plain; charset=utf-8',
    swap: [['postgres://app:pg-s3cret-8f2a@', `postgres://${R}@`]],
    keep: ['error: password authentication failed for user "app"', '@127.0.0.1:', "code: '28P01'", "routine: 'auth_failed'"] },
  { file: 'mysql2-access-denied.json', ctype: 'application/json; charset=utf-8',
    swap: [['"password":"my-s3cret-77d1"', `"password":"${R}"`]],
    keep: ['"code":"ER_ACCESS_DENIED_ERROR"', "Access denied for user 'app'@'localhost' (using password: YES)", '"host":"127.0.0.1"', '"user":"app"'] },
  { file: 'mongodb-server-error.txt', ctype: 'text/plain; charset=utf-8',
    swap: [['mongodb+srv://app:mongo-s3cret-41c7@', `mongodb+srv://${R}@`]],
    keep: ['MongoServerError: bad auth : Authentication failed.', '@cluster0.ab1cd.mongodb.net/shop', "codeName: 'AtlasError'"] },
  { file: 'mongodb-parse-error.json', ctype: 'application/json; charset=utf-8',
    swap: [['mongodb+srv://app:mongo-s3cret-41c7@', `mongodb+srv://${R}@`]],
    keep: ['"error":"MongoParseError"', 'connection string contains unsupported options', '@cluster0.ab1cd.mongodb.net/shop?retryWrites=true'] },
  { file: 'json-credentials.json', ctype: 'application/json; charset=utf-8',
    swap: [['"password":"login-s3cret-c3d9"', `"password":"${R}"`], ['"token":"otp-s3cret-1a2b"', `"token":"${R}"`],
      ['"authorization":"Basic YXBwOmJhc2ljLXMzY3JldC05OWU0"', `"authorization":"${R}"`], ['"x-api-key":"key-s3cret-5b0e"', `"x-api-key":"${R}"`]],
    keep: ['"message":"user store unavailable"', '"email":"ann@example.com"'] },
  { file: 'jsonwebtoken-headers.txt', ctype: 'text/plain; charset=utf-8',
    swap: [[`token: ${JWT}`, `token: ${R}`], [`authorization: Bearer ${JWT}`, `authorization: ${R}`],
      ['cookie: connect.sid=s%3Acookie-s3cret-e6f0.sig', `cookie: ${R}`]],
    keep: ['JsonWebTokenError: invalid signature', 'jsonwebtoken/verify.js', 'host: 127.0.0.1:', 'user-agent: node'] },
];

function expected(body, swap) {
  let e = body;
  for (const [from, to] of swap) {
    assert.ok(e.includes(from), `fixture holds ${from}`);
    e = e.split(from).join(to);
  }
  return e;
}

async function scrubEvent(v, id) {
  const { json } = await v.waitForLog((j) => j && j.type === 'security' && j.event === 'scrubbed_error' && j.request_id === id, 5000 * SLOW, { stream: 'stdout' });
  return json;
}

async function accessLine(v, id) {
  const { json } = await v.waitForLog((j) => j && j.type === 'access' && j.request_id === id, 5000 * SLOW, { stream: 'stdout' });
  return json;
}

// No secret, in any case, raw or JSON-escaped, anywhere visor wrote.
function assertNoSecret(v, extra = []) {
  const all = [...v.stdout, ...v.stderr].join('\n');
  for (const s of [...SECRETS, ...extra]) {
    assert.ok(!all.includes(s), `"${s}" reached visor's output:\n${all.split('\n').filter((l) => l.includes(s)).join('\n')}`);
  }
}

describe('scrubbed_error excerpts of real error answers', () => {
  afterEach(cleanupAll);

  for (const c of CASES) {
    it(`${c.file}: secrets [redacted], the rest byte for byte`, T, async () => {
      const body = fx(c.file);
      const up = await pathUpstream({ '/fail': { status: 500, body, headers: { 'Content-Type': c.ctype } } });
      const v = await startVisor(policyYaml(up.addr));
      const r = await https({ port: v.ports.https, path: '/fail' });
      assert.equal(r.status, 500);
      const id = r.get('X-Request-Id');
      assert.equal(r.text, `{"error":"Internal server error","requestId":"${id}"}`);
      const ev = await scrubEvent(v, id);
      assert.equal(ev.reason, 'status');
      assert.equal(ev.truncated, false);
      assert.equal(ev.excerpt, expected(body, c.swap));
      for (const k of c.keep) assert.ok(ev.excerpt.includes(k), `excerpt keeps ${k}`);
      await accessLine(v, id);
      assertNoSecret(v);
    });
  }

  it('a 4xx scrubbed for its stack trace: the excerpt is redacted the same way', T, async () => {
    const body = fx('pg-auth-failed.txt');
    const up = await pathUpstream({ '/bad': { status: 400, body, headers: { 'Content-Type': 'text/plain' } } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/bad' });
    assert.equal(r.status, 400);
    const ev = await scrubEvent(v, r.get('X-Request-Id'));
    assert.equal(ev.reason, 'stack_trace');
    assert.equal(ev.excerpt, expected(body, CASES[1].swap));
    assertNoSecret(v);
  });

  it('a secret cut by the 4 KiB excerpt boundary: its start is [redacted] too', T, async () => {
    const lead = `Error: connect failed\n${'x'.repeat(4096 - 22 - 'postgres://app:cut-s3c'.length)}`;
    const body = `${lead}postgres://app:cut-s3cret-0a9b@db:5432/app\n${'y'.repeat(2000)}`;
    assert.equal(Buffer.byteLength(lead) + 'postgres://app:cut-s3c'.length, 4096);
    const up = await pathUpstream({ '/cut': { status: 500, body, headers: { 'Content-Type': 'text/plain' } } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/cut' });
    const ev = await scrubEvent(v, r.get('X-Request-Id'));
    assert.equal(ev.truncated, true);
    assert.equal(ev.excerpt, `${lead}postgres://${R}`);
    assertNoSecret(v, ['app:cut-s3c', 'cut-s3c']);
  });

  it('JSON inside a JSON string, HTML-escaped JSON, key=value and YAML lines', T, async () => {
    const body = JSON.stringify({ error: 'upstream said', raw: JSON.stringify({ password: 'nested-s3cret-1', user: 'app' }) }) +
      '\n&quot;client_secret&quot;:&quot;html-s3cret-2&quot;' +
      '\nGET /cb?code=ok&access_token=qs-s3cret-3&state=x' +
      '\ndb:\n  host: db.internal\n  password: yaml-s3cret-4\n';
    const up = await pathUpstream({ '/mix': { status: 502, body } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/mix' });
    const ev = await scrubEvent(v, r.get('X-Request-Id'));
    assert.equal(ev.excerpt,
      '{"error":"upstream said","raw":"{\\"password\\":\\"[redacted]\\",\\"user\\":\\"app\\"}"}' +
      '\n&quot;client_secret&quot;:&quot;[redacted]&quot;' +
      '\nGET /cb?code=ok&access_token=[redacted]&state=x' +
      '\ndb:\n  host: db.internal\n  password: [redacted]\n');
    assertNoSecret(v, ['nested-s3cret-1', 'html-s3cret-2', 'qs-s3cret-3', 'yaml-s3cret-4']);
  });
});

describe('paths in the access log and security events', () => {
  afterEach(cleanupAll);

  it('a JWT in the path: [redacted] in the access log; the upstream still gets the real path', T, async () => {
    const up = await pathUpstream();
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: `/api/verify/${JWT}` });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).url, `/api/verify/${JWT}`);
    const line = await accessLine(v, r.get('X-Request-Id'));
    assert.equal(line.path, `/api/verify/${R}`);
    assertNoSecret(v);
  });

  it('a session id in a path parameter and userinfo in a path: [redacted]', T, async () => {
    const up = await pathUpstream();
    const v = await startVisor(policyYaml(up.addr));
    const a = await https({ port: v.ports.https, path: '/files/report;jsessionid=sess-s3cret-5' });
    assert.equal((await accessLine(v, a.get('X-Request-Id'))).path, `/files/report;jsessionid=${R}`);
    const b = await https({ port: v.ports.https, path: '/proxy/https://u:path-s3cret-6@example.com/x' });
    // the logged path is the normalised one: "//" merged, the userinfo still found
    assert.equal((await accessLine(v, b.get('X-Request-Id'))).path, `/proxy/https:/${R}@example.com/x`);
    const c = await https({ port: v.ports.https, path: '/api/items/42?token=query-s3cret-7' });
    assert.equal((await accessLine(v, c.get('X-Request-Id'))).path, '/api/items/42');
    assertNoSecret(v, ['sess-s3cret-5', 'path-s3cret-6', 'query-s3cret-7']);
  });

  it('the security event of a scrubbed answer carries the redacted path', T, async () => {
    const up = await pathUpstream({ [`/boom/${JWT}`]: { status: 500, body: 'Error: boom' } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: `/boom/${JWT}` });
    const id = r.get('X-Request-Id');
    const ev = await scrubEvent(v, id);
    assert.equal(ev.path, `/boom/${R}`);
    assert.equal(ev.excerpt, 'Error: boom');
    assert.equal((await accessLine(v, id)).path, `/boom/${R}`);
    assertNoSecret(v);
  });
});
