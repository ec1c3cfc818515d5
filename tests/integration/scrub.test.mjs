// Error scrubbing (docs/errors.md, the log lines of docs/operations.md): upstream answers whose
// status is in errors.scrub, and 4xx answers whose body holds a stack trace, keep their
// status but get {"error","requestId"}; the original's first 4 KiB are logged as one
// scrubbed_error line; the upstream connection stays reusable; edge answers are untouched.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import {
  startVisor, startUpstream, startRawUpstream, rawResponder, https, http, keepAliveAgent,
  rawTls, hasResponses, deadPort, assertEdge, assertSecurityHeaders, cleanupAll, MESSAGES,
  REQUEST_ID, SLOW, until,
} from './lib/harness.mjs';
import { policyYaml, pathUpstream, answer, securityEvents, linesFor } from './lib/policy-helpers.mjs';

const T = { timeout: 30000 * SLOW };

// req_status_message: the listed statuses, else "Internal server error" / "Bad request".
const message = (st) => MESSAGES[st] || ({ 405: 'Method not allowed', 417: 'Expectation failed', 501: 'Not implemented' })[st] ||
  (st >= 500 ? 'Internal server error' : 'Bad request');

// The generic body visor puts in place of the upstream's.
function assertScrubbed(r, status) {
  assert.equal(r.status, status);
  const id = r.get('X-Request-Id');
  assert.match(id, REQUEST_ID);
  assert.equal(r.text, `{"error":"${message(status)}","requestId":"${id}"}`);
  assert.deepEqual(r.all('Content-Type'), ['application/json']);
  assert.deepEqual(r.all('Content-Length'), [String(Buffer.byteLength(r.text))]);
  assert.deepEqual(r.all('Transfer-Encoding'), []);
  assertSecurityHeaders(r);
  return id;
}

async function scrubEvent(v, id) {
  const { json } = await v.waitForLog((j) => j && j.type === 'security' && j.event === 'scrubbed_error' && j.request_id === id, 5000 * SLOW, { stream: 'stdout' });
  return json;
}

const STACK = 'TypeError: Cannot read properties of undefined (reading \'id\')\n' +
  '    at getUser (/app/src/routes/users.js:42:27)\n' +
  '    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n' +
  '    at next (/app/node_modules/express/lib/router/route.js:144:13)\n';
const EXPRESS_DEV = '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n' +
  '<pre>SyntaxError: Unexpected token } in JSON at position 9<br> &nbsp; &nbsp;at JSON.parse (&lt;anonymous&gt;)<br> &nbsp; &nbsp;' +
  'at parse (/app/node_modules/body-parser/lib/types/json.js:89:19)<br> &nbsp; &nbsp;at /app/node_modules/body-parser/lib/read.js:128:18</pre>\n</body>\n</html>\n';
const PG = JSON.stringify({ length: 205, name: 'error', severity: 'ERROR', code: '23505', detail: 'Key (email)=(a@b.c) already exists.', schema: 'public', table: 'users', constraint: 'users_email_key', file: 'nbtinsert.c', line: '663', routine: '_bt_check_unique' });
const MYSQL = JSON.stringify({ message: "Duplicate entry 'a@b.c' for key 'users.email'", code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', sqlMessage: "Duplicate entry 'a@b.c' for key 'users.email'" });
const MONGOOSE = JSON.stringify({ stringValue: '"abc"', kind: 'ObjectId', value: 'abc', path: '_id', reason: {}, name: 'CastError', message: 'Cast to ObjectId failed for value "abc" (type string) at path "_id" for model "User"' });

describe('scrub by status', () => {
  afterEach(cleanupAll);

  for (const status of [500, 502, 503, 504, 599]) {
    for (const chunked of [false, true]) {
      it(`${status}, ${chunked ? 'chunked' : 'Content-Length'} body: replaced, logged, upstream connection reused`, T, async () => {
        const body = `Error: db down\n    at query (/app/db.js:10:5)\n${'x'.repeat(300)}`;
        const up = await pathUpstream({
          '/boom': { status, body, chunked, headers: { 'Content-Type': 'text/html', ETag: '"e1"', 'Retry-After': '5', 'X-Trace': 'kept' } },
        });
        const v = await startVisor(policyYaml(up.addr));
        const agent = keepAliveAgent();
        const r = await https({ port: v.ports.https, path: '/boom', agent });
        const id = assertScrubbed(r, status);
        assert.ok(!r.text.includes('db down'));
        assert.deepEqual(r.all('ETag'), [], 'validators of the original body are dropped');
        assert.deepEqual(r.all('Retry-After'), ['5']);
        assert.deepEqual(r.all('X-Trace'), ['kept']);
        const ev = await scrubEvent(v, id);
        assert.equal(ev.status, status);
        assert.equal(ev.reason, 'status');
        assert.equal(ev.excerpt, body);
        assert.equal(ev.truncated, false);
        // the same upstream connection serves the next request
        const e = await https({ port: v.ports.https, path: '/echo', agent });
        assert.equal(e.status, 200);
        assert.equal(up.requests.length, 2);
        assert.equal(up.requests[1].remotePort, up.requests[0].remotePort);
        assert.equal(up.connections, 1);
      });
    }
  }

  it('a large (1 MiB) 500 body is drained, never sent; the connection is reused', T, async () => {
    const big = Buffer.alloc(1 << 20, 'E');
    const up = await pathUpstream({ '/cl': { status: 500, body: big }, '/ch': { status: 500, body: big, chunked: true } });
    const v = await startVisor(policyYaml(up.addr));
    const agent = keepAliveAgent();
    for (const p of ['/cl', '/ch', '/cl']) {
      const r = await https({ port: v.ports.https, path: p, agent });
      assertScrubbed(r, 500);
      const ev = await scrubEvent(v, r.get('X-Request-Id'));
      assert.equal(ev.excerpt, 'E'.repeat(4096));
      assert.equal(ev.truncated, true);
    }
    assert.equal(up.connections, 1);
    assert.deepEqual(up.requests.map((q) => q.remotePort), Array(3).fill(up.requests[0].remotePort));
  });

  it('HEAD to a 500: the generic Content-Length, no body, an empty excerpt', T, async () => {
    const up = await pathUpstream({ '/boom': { status: 500, body: STACK } });
    const v = await startVisor(policyYaml(up.addr));
    const res = await rawTls(v.ports.https, 'HEAD /boom HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: hasResponses(1, ['HEAD']), timeoutMs: 3000 * SLOW });
    const [r] = res.responses(['HEAD']);
    assert.equal(r.status, 500);
    assert.equal(r.body.length, 0);
    const id = r.get('X-Request-Id');
    assert.deepEqual(r.all('Content-Length'), [String(`{"error":"Internal server error","requestId":"${id}"}`.length)]);
    assert.deepEqual(r.all('Content-Type'), ['application/json']);
    const ev = await scrubEvent(v, id);
    assert.equal(ev.excerpt, '');
  });

  it('HEAD to a 500, then a GET on the same client connection', T, async () => {
    const up = await pathUpstream({ '/boom': { status: 500, body: STACK } });
    const v = await startVisor(policyYaml(up.addr));
    const res = await rawTls(v.ports.https, 'HEAD /boom HTTP/1.1\r\nHost: localhost\r\n\r\nGET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      { until: hasResponses(2, ['HEAD', 'GET']), timeoutMs: 3000 * SLOW });
    const rs = res.responses(['HEAD', 'GET']);
    assert.equal(rs.length, 2, res.text);
    assert.equal(rs[1].status, 200);
    assert.equal(up.connections, 1);
  });

  it('a 500 with Content-Length: 0 gets the generic body', T, async () => {
    const up = await pathUpstream({ '/empty': { status: 500, body: '' } });
    const v = await startVisor(policyYaml(up.addr));
    const agent = keepAliveAgent();
    assertScrubbed(await https({ port: v.ports.https, path: '/empty', agent, timeoutMs: 3000 * SLOW }), 500);
    assert.equal((await https({ port: v.ports.https, path: '/echo', agent, timeoutMs: 3000 * SLOW })).status, 200);
  });

  it('the upstream closes mid-body after the excerpt: the client still gets the whole generic answer', T, async () => {
    const leak = `Error: secret-db-password\n    at x (/app/a.js:1:2)\n${'y'.repeat(8000)}`;
    const up = await startRawUpstream(rawResponder((head, s) => {
      s.write(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\n${leak}`);
      setTimeout(() => s.destroy(), 50);
    }));
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/cut', timeoutMs: 5000 * SLOW });
    const id = assertScrubbed(r, 500);
    assert.ok(!r.text.includes('secret'));
    const ev = await scrubEvent(v, id);
    assert.equal(ev.excerpt, leak.slice(0, 4096));
  });

  it('the upstream closes mid-body before 4 KiB arrived: a generic answer, no leak, no hang', T, async () => {
    const up = await startRawUpstream(rawResponder((head, s) => {
      s.write('HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\nError: secret\n    at x (/app/a.js:1:2)\n');
      setTimeout(() => s.destroy(), 50);
    }));
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/cut', timeoutMs: 3000 * SLOW });
    assert.ok([500, 502].includes(r.status), `status ${r.status}`);
    assert.ok(!r.text.includes('secret'));
    assertEdge(r, r.status);
  });

  // todo until req_up_failed's retry (reused connection, no request body sent) also requires
  // that no response head arrived: today the request is sent again, and the second attempt
  // meets the first one's suspended body peek and never answers (reported).
  it('on a reused upstream connection, a 500 cut mid-body is not retried: the upstream sees the request once', T, async () => {
    let n = 0;
    const up = await startRawUpstream(rawResponder((head, s) => {
      n++;
      if (head.startsWith('GET /first')) {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        return;
      }
      s.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 20000\r\n\r\nError: secret\n    at x (/app/a.js:1:2)\n');
      setTimeout(() => s.destroy(), 50);
    }));
    const v = await startVisor(policyYaml(up.addr));
    const agent = keepAliveAgent();
    assert.equal((await https({ port: v.ports.https, path: '/first', agent })).status, 200);
    const r = await https({ port: v.ports.https, method: 'DELETE', path: '/pay/7', agent, timeoutMs: 3000 * SLOW });
    assert.ok([500, 502].includes(r.status), `status ${r.status}`);
    assert.ok(!r.text.includes('secret'));
    assert.equal(n, 2, 'a request the upstream answered is never sent again');
  });

  it('edge answers are never scrubbed or logged as scrubbed_error', T, async () => {
    const dead = await deadPort();
    const v = await startVisor(policyYaml(`127.0.0.1:${dead}`, 'routes:\n  - path: /api/\n'));
    assertEdge(await https({ port: v.ports.https, path: '/api/x' }), 502);
    assertEdge(await https({ port: v.ports.https, path: '/other' }), 404);
    await v.stop();
    assert.deepEqual(securityEvents(v, 'scrubbed_error'), []);
  });

  it('errors.scrub takes codes and ranges; other statuses pass untouched', T, async () => {
    const up = await pathUpstream({
      '/500': { status: 500, body: 'five hundred' },
      '/502': { status: 502, body: 'bad gateway text' },
      '/404': { status: 404, body: 'no such user 42' },
      '/410': { status: 410, body: 'gone' },
    });
    const v = await startVisor(policyYaml(up.addr, 'errors:\n  scrub: [404, 502]\n'));
    const a = await https({ port: v.ports.https, path: '/500' });
    assert.equal(a.status, 500);
    assert.equal(a.text, 'five hundred');
    assertScrubbed(await https({ port: v.ports.https, path: '/502' }), 502);
    assertScrubbed(await https({ port: v.ports.https, path: '/404' }), 404);
    const b = await https({ port: v.ports.https, path: '/410' });
    assert.equal(b.text, 'gone');
  });

  it('scrub: [] and stack_traces: false turn scrubbing off', T, async () => {
    const up = await pathUpstream({ '/500': { status: 500, body: STACK }, '/400': { status: 400, body: STACK } });
    const v = await startVisor(policyYaml(up.addr, 'errors:\n  scrub: []\n  stack_traces: false\n'));
    assert.equal((await https({ port: v.ports.https, path: '/500' })).text, STACK);
    assert.equal((await https({ port: v.ports.https, path: '/400' })).text, STACK);
    await v.stop();
    assert.deepEqual(securityEvents(v, 'scrubbed_error'), []);
  });

  it('counts scrubbed answers in /metrics', T, async () => {
    const up = await pathUpstream({ '/500': { status: 500, body: 'x' }, '/400': { status: 400, body: STACK } });
    const v = await startVisor(policyYaml(up.addr, '', { listen: 'admin: {{ADMIN}}' }));
    await https({ port: v.ports.https, path: '/500' });
    await https({ port: v.ports.https, path: '/400' });
    await https({ port: v.ports.https, path: '/echo' });
    const m = await http({ port: v.ports.admin, path: '/metrics' });
    assert.match(m.text, /^visor_scrubbed_total 2$/m);
  });

  it('many concurrent scrubbed and clean answers: no body crosses over', T, async () => {
    const up = await pathUpstream({
      '/500': (req, res) => setTimeout(() => answer(res, { status: 500, body: `secret-${req.headers['x-n']}`, chunked: true }), 5),
      '/ok': (req, res) => answer(res, { body: `ok-${req.headers['x-n']}` }),
    });
    const v = await startVisor(policyYaml(up.addr));
    const agent = keepAliveAgent({ maxSockets: 8 });
    const rs = await Promise.all(Array.from({ length: 60 }, (_, n) =>
      https({ port: v.ports.https, path: n % 2 ? '/500' : '/ok', agent, headers: { 'X-N': String(n) } }).then((r) => [n, r])));
    for (const [n, r] of rs) {
      if (n % 2) {
        assertScrubbed(r, 500);
      } else {
        assert.equal(r.status, 200);
        assert.equal(r.text, `ok-${n}`);
      }
    }
  });
});

describe('scrub 4xx bodies that carry a stack trace', () => {
  afterEach(cleanupAll);

  const LEAKS = [
    { name: 'Error.stack as text', status: 400, body: STACK, type: 'text/plain' },
    { name: 'JSON with a stack key', status: 400, body: JSON.stringify({ message: 'x', stack: STACK }), type: 'application/json' },
    { name: "Express's development error page", status: 400, body: EXPRESS_DEV, type: 'text/html; charset=utf-8' },
    { name: 'pg unique violation', status: 409, body: PG, type: 'application/json' },
    { name: 'mysql2 duplicate entry', status: 409, body: MYSQL, type: 'application/json' },
    { name: 'mongoose CastError', status: 400, body: MONGOOSE, type: 'application/json' },
    { name: 'ECONNREFUSED', status: 424, body: '{"error":"connect ECONNREFUSED 10.0.3.7:5432"}', type: 'application/json' },
    { name: 'a 404 with frames', status: 404, body: `NotFoundError: no user\n    at find (/srv/users.js:9:11)\n`, type: 'text/plain' },
    { name: 'a 422 with frames', status: 422, body: JSON.stringify({ error: STACK }), type: 'application/json' },
  ];
  for (const c of LEAKS) {
    for (const chunked of [false, true]) {
      it(`${c.status} ${c.name} (${chunked ? 'chunked' : 'Content-Length'}) is scrubbed and logged`, T, async () => {
        const up = await pathUpstream({ '/leak': { status: c.status, body: c.body, chunked, headers: { 'Content-Type': c.type } } });
        const v = await startVisor(policyYaml(up.addr));
        const agent = keepAliveAgent();
        const r = await https({ port: v.ports.https, path: '/leak', agent });
        const id = assertScrubbed(r, c.status);
        const ev = await scrubEvent(v, id);
        assert.equal(ev.reason, 'stack_trace');
        assert.equal(ev.status, c.status);
        assert.equal(ev.excerpt, c.body.slice(0, 4096));
        // reused upstream connection
        assert.equal((await https({ port: v.ports.https, path: '/echo', agent })).status, 200);
        assert.equal(up.connections, 1);
      });
    }
  }

  const CLEAN = [
    { name: 'a validation error', status: 400, body: JSON.stringify({ error: 'Invalid input', details: [{ field: 'email', message: 'must be at most 254 characters' }] }) },
    { name: 'a time with "at"', status: 409, body: JSON.stringify({ error: 'Slot taken', message: 'Meet at 10:30 instead' }) },
    { name: "Express's production 404 page", status: 404, body: '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET /nope</pre>\n</body>\n</html>\n' },
    { name: 'an empty-ish JSON', status: 401, body: '{}' },
  ];
  for (const c of CLEAN) {
    for (const chunked of [false, true]) {
      it(`${c.status} ${c.name} (${chunked ? 'chunked' : 'Content-Length'}) passes byte for byte`, T, async () => {
        const up = await pathUpstream({ '/ok': { status: c.status, body: c.body, chunked, headers: { 'Content-Type': 'application/json', ETag: '"k"' } } });
        const v = await startVisor(policyYaml(up.addr));
        const agent = keepAliveAgent();
        const r = await https({ port: v.ports.https, path: '/ok', agent });
        assert.equal(r.status, c.status);
        assert.equal(r.text, c.body);
        assert.deepEqual(r.all('ETag'), ['"k"']);
        if (chunked) assert.deepEqual(r.all('Transfer-Encoding'), ['chunked']);
        else assert.deepEqual(r.all('Content-Length'), [String(Buffer.byteLength(c.body))]);
        assert.equal((await https({ port: v.ports.https, path: '/echo', agent })).status, 200);
        assert.equal(up.connections, 1);
        await v.stop();
        assert.deepEqual(securityEvents(v, 'scrubbed_error'), []);
      });
    }
  }

  it('bodies up to 64 KiB are inspected; larger ones pass untouched (Content-Length and chunked)', T, async () => {
    const pad = (n) => STACK + 'p'.repeat(n - STACK.length);
    const up = await pathUpstream({
      '/cl-64k': { status: 400, body: pad(65536) },
      '/cl-64k+1': { status: 400, body: pad(65537) },
      '/ch-60k': { status: 400, body: 'p'.repeat(60000) + STACK, chunked: true },
      '/ch-70k': { status: 400, body: pad(70000), chunked: true },
      '/cl-1m': { status: 400, body: pad(1 << 20) },
    });
    const v = await startVisor(policyYaml(up.addr));
    const agent = keepAliveAgent();
    assertScrubbed(await https({ port: v.ports.https, path: '/cl-64k', agent }), 400);
    assertScrubbed(await https({ port: v.ports.https, path: '/ch-60k', agent }), 400);
    for (const [p, n] of [['/cl-64k+1', 65537], ['/ch-70k', 70000], ['/cl-1m', 1 << 20]]) {
      const r = await https({ port: v.ports.https, path: p, agent });
      assert.equal(r.status, 400);
      assert.equal(r.body.length, n, p);
      assert.equal(r.text, pad(n), p);
    }
    assert.equal(up.connections, 1);
  });

  it('a compressed 4xx body is not inspected (passes as sent)', T, async () => {
    const gz = zlib.gzipSync(STACK);
    const up = await pathUpstream({ '/gz': { status: 400, body: gz, headers: { 'Content-Encoding': 'gzip', 'Content-Type': 'text/plain' } } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/gz' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, gz);
  });

  it('HEAD to a 4xx is passed (there is no body to inspect)', T, async () => {
    const up = await pathUpstream({ '/leak': { status: 400, body: STACK } });
    const v = await startVisor(policyYaml(up.addr));
    const res = await rawTls(v.ports.https, 'HEAD /leak HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: hasResponses(1, ['HEAD']), timeoutMs: 3000 * SLOW });
    const [r] = res.responses(['HEAD']);
    assert.equal(r.status, 400);
    assert.deepEqual(r.all('Content-Length'), [String(STACK.length)]);
  });

  it('the upstream closes a 4xx mid-body while visor inspects it: no leak, no hang', T, async () => {
    const up = await startRawUpstream(rawResponder((head, s) => {
      s.write(`HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n${STACK.length.toString(16)}\r\n${STACK}\r\n`);
      setTimeout(() => s.destroy(), 50);
    }));
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/cut', timeoutMs: 3000 * SLOW });
    assert.ok(!r.text.includes('getUser'));
  });

  it('stack_traces: false lets 4xx traces through; statuses in errors.scrub are still scrubbed', T, async () => {
    const up = await pathUpstream({ '/leak': { status: 400, body: STACK }, '/500': { status: 500, body: STACK } });
    const v = await startVisor(policyYaml(up.addr, 'errors:\n  stack_traces: false\n'));
    assert.equal((await https({ port: v.ports.https, path: '/leak' })).text, STACK);
    assertScrubbed(await https({ port: v.ports.https, path: '/500' }), 500);
  });
});

describe('the scrubbed_error log line', () => {
  afterEach(cleanupAll);

  it('one JSON line on stdout with the request id, status and at most 4 KiB of excerpt', T, async () => {
    const body = Buffer.concat([Buffer.from('Error: "quoted"\\back\n\ttab \u0001\u001f '), Buffer.from('é€😀'), Buffer.alloc(6000, 'z')]);
    const up = await pathUpstream({ '/boom': { status: 503, body } });
    const v = await startVisor(policyYaml(up.addr));
    const r = await https({ port: v.ports.https, path: '/boom', headers: { Authorization: 'Bearer secret-token', Cookie: 'sid=secret' } });
    const id = assertScrubbed(r, 503);
    const ev = await scrubEvent(v, id);
    await v.accessLogFor(id);
    const lines = linesFor(v, id);
    assert.equal(lines.length, 2, lines.join('\n'));           // the event and the access line
    for (const l of lines) JSON.parse(l);
    assert.equal(ev.type, 'security');
    assert.equal(ev.event, 'scrubbed_error');
    assert.equal(ev.request_id, id);
    assert.equal(ev.status, 503);
    assert.equal(ev.path, '/boom');
    assert.equal(ev.truncated, true);
    assert.equal(Buffer.byteLength(ev.excerpt), 4096);
    assert.equal(ev.excerpt, body.subarray(0, 4096).toString('utf8'));
    assert.ok(!lines.join('\n').includes('secret'), 'no token or cookie in the logs');
  });

  it('an excerpt cut inside a UTF-8 sequence stays valid', T, async () => {
    const body = Buffer.concat([Buffer.alloc(4095, 'a'), Buffer.from('€€€')]);  // € is 3 bytes
    const up = await pathUpstream({ '/boom': { status: 500, body } });
    const v = await startVisor(policyYaml(up.addr));
    const id = assertScrubbed(await https({ port: v.ports.https, path: '/boom' }), 500);
    const ev = await scrubEvent(v, id);
    assert.equal(ev.excerpt, 'a'.repeat(4095));
  });

  it('binary bodies are logged as valid JSON', T, async () => {
    const body = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const up = await pathUpstream({ '/bin': { status: 500, body } });
    const v = await startVisor(policyYaml(up.addr));
    const id = assertScrubbed(await https({ port: v.ports.https, path: '/bin' }), 500);
    const ev = await scrubEvent(v, id);
    assert.equal(typeof ev.excerpt, 'string');
    assert.ok(ev.excerpt.startsWith('\u0000\u0001\u0002'));
    await until(() => v.accessLogs().some((a) => a.request_id === id), 2000 * SLOW, 'access line');
  });
});
