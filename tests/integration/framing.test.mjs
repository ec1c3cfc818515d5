// HTTP/1.1 framing through visor (CONTRACT §3, §4 "Framing"): bodies both ways, HEAD/204/304,
// Expect: 100-continue, pipelining, keep-alive, the malformed-request and smuggling table,
// size and time limits, upstream failures, and 200 MB transfers in bounded memory.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import {
  startVisor, startUpstream, startRawUpstream, rawResponder, headPath, deadPort, https,
  keepAliveAgent, rawTls, rawConnect, hasResponses, parseResponses, minimalYaml, assertEdge,
  assertRawEdge, assertSecurityHeaders, cleanupAll, REQUEST_ID, SLOW, delay, until,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const head = (port, lines) => `${lines.join('\r\n')}\r\n\r\n`.replace('{HOST}', `Host: localhost:${port}`);

describe('request bodies', () => {
  afterEach(cleanupAll);

  it('forwards a Content-Length body with the same Content-Length', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const body = crypto.randomBytes(5000);
    const r = await https({ port: v.ports.https, method: 'POST', path: '/cl', body, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 200);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Content-Length'), ['5000']);
    assert.deepEqual(u.headerAll('Transfer-Encoding'), []);
    assert.equal(u.bodyLength, 5000);
    assert.equal(u.bodySha256, sha(body));
    // the upstream's Content-Length answer reaches the client as it was
    assert.deepEqual(r.all('Content-Length'), [String(r.body.length)]);
    assert.deepEqual(r.all('Transfer-Encoding'), []);
  });

  it('forwards Content-Length: 0 and a bodiless GET as they came', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    assert.equal((await https({ port: v.ports.https, method: 'POST', path: '/empty', headers: { 'Content-Length': '0' } })).status, 200);
    assert.deepEqual(up.requests[0].headerAll('Content-Length'), ['0']);
    assert.equal((await https({ port: v.ports.https, method: 'GET', path: '/get' })).status, 200);
    assert.deepEqual(up.requests[1].headerAll('Content-Length'), []);
    assert.deepEqual(up.requests[1].headerAll('Transfer-Encoding'), []);
  });

  it('forwards a chunked body chunked, with the same bytes', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c2 = 'abcdefghijklmnopqrstuvwxyz';
    const res = await rawTls(v.ports.https, [
      head(v.ports.https, ['POST /chunked HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked', 'Content-Type: text/plain']),
      '5\r\nhello\r\n', 30,
      `1a\r\n${c2}\r\n`, 30,
      '0\r\n\r\n',
    ], { until: hasResponses(1) });
    const [r] = res.responses();
    assert.equal(r.status, 200, res.text.slice(0, 500));
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Transfer-Encoding'), ['chunked']);
    assert.deepEqual(u.headerAll('Content-Length'), []);
    assert.equal(u.bodyLength, 31);
    assert.equal(u.bodySha256, sha(`hello${c2}`));
  });
});

describe('response bodies', () => {
  afterEach(cleanupAll);

  it('relays a chunked answer chunked, with the same body', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('part1-');
      setTimeout(() => {
        res.write('part2-');
        res.end('end');
      }, 50);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const res = await rawTls(v.ports.https, head(v.ports.https, ['GET /c HTTP/1.1', '{HOST}']), { until: hasResponses(1) });
    const [r] = res.responses();
    assert.equal(r.status, 200);
    assert.equal(r.complete, true, r.error);
    assert.equal(r.chunked, true);
    assert.deepEqual(r.all('Transfer-Encoding'), ['chunked']);
    assert.deepEqual(r.all('Content-Length'), []);
    assert.equal(r.text, 'part1-part2-end');
  });

  it('relays an answer delimited by the upstream closing as chunked to an HTTP/1.1 client, and keeps the connection', T, async () => {
    const body = 'abc'.repeat(1000);
    const up = await startRawUpstream(async (socket, ctx) => {
      await ctx.head();
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${body}`);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const conn = await rawConnect(v.ports.https);
    await conn.write(head(v.ports.https, ['GET /one HTTP/1.1', '{HOST}']));
    await conn.waitFor(hasResponses(1), 5000 * SLOW, 'the first response');
    let rs = parseResponses(conn.data, { eof: false });
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].chunked, true, 'chunked to the client');
    assert.equal(rs[0].text, body);
    await conn.write(head(v.ports.https, ['GET /two HTTP/1.1', '{HOST}']));
    await conn.waitFor(hasResponses(2), 5000 * SLOW, 'the second response on the same connection');
    rs = parseResponses(conn.data, { eof: false });
    assert.equal(rs[1].status, 200);
    assert.equal(rs[1].text, body);
  });

  it('answers HEAD without a body, and the next pipelined answer is framed right', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const res = await rawTls(v.ports.https,
      head(v.ports.https, ['HEAD /h HTTP/1.1', '{HOST}']) + head(v.ports.https, ['GET /after HTTP/1.1', '{HOST}', 'Connection: close']));
    const rs = res.responses(['HEAD', 'GET']);
    assert.equal(rs.length, 2, res.text);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].body.length, 0);
    assert.equal(rs[1].status, 200);
    assert.equal(rs[1].complete, true);
    assert.equal(rs[1].json().url, '/after');
    assert.equal(up.requests[0].method, 'HEAD');
  });

  it('relays 204 and 304 without a body or Transfer-Encoding', T, async () => {
    const up = await startRawUpstream(rawResponder((h, socket) => {
      const p = headPath(h);
      if (p === '/204') socket.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
      else if (p === '/304') socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast');
    }));
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const res = await rawTls(v.ports.https,
      head(v.ports.https, ['GET /204 HTTP/1.1', '{HOST}']) +
      head(v.ports.https, ['GET /304 HTTP/1.1', '{HOST}', 'If-None-Match: "v1"']) +
      head(v.ports.https, ['GET /last HTTP/1.1', '{HOST}', 'Connection: close']));
    const rs = res.responses();
    assert.equal(rs.length, 3, res.text);
    assert.equal(rs[0].status, 204);
    assert.deepEqual(rs[0].all('Transfer-Encoding'), []);
    assert.deepEqual(rs[0].all('X-A'), ['1']);
    assertSecurityHeaders(rs[0]);
    assert.equal(rs[1].status, 304);
    assert.deepEqual(rs[1].all('Transfer-Encoding'), []);
    assert.deepEqual(rs[1].all('ETag'), ['"v1"']);
    assert.equal(rs[2].status, 200);
    assert.equal(rs[2].text, 'last');
  });
});

describe('Expect: 100-continue', () => {
  afterEach(cleanupAll);

  it('visor answers 100 Continue once, then forwards the body without Expect', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const conn = await rawConnect(v.ports.https);
    await conn.write(head(v.ports.https, ['POST /e HTTP/1.1', '{HOST}', 'Content-Length: 11', 'Expect: 100-continue', 'Content-Type: text/plain']));
    await conn.waitFor((b) => b.includes('\r\n\r\n'), 3000 * SLOW, '100 Continue');
    assert.match(conn.text, /^HTTP\/1\.1 100 Continue\r\n/);
    await conn.write('hello world');
    await conn.waitFor(hasResponses(1), 5000 * SLOW, 'the final response');
    const rs = parseResponses(conn.data, { eof: false });
    assert.equal(rs.filter((r) => r.status === 100).length, 1, 'exactly one 100 Continue');
    const final = rs.find((r) => !r.interim);
    assert.equal(final.status, 200);
    assert.equal(final.json().bodyLength, 11);
    assert.equal(final.json().bodySha256, sha('hello world'));
    assert.deepEqual(up.requests[0].headerAll('Expect'), []);
  });

  it('refuses with 413 and no 100 Continue when Content-Length exceeds max_body_size', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1k' }));
    const res = await rawTls(v.ports.https,
      head(v.ports.https, ['POST /e HTTP/1.1', '{HOST}', 'Content-Length: 5000', 'Expect: 100-continue']),
      { until: hasResponses(1) });
    assert.ok(!res.text.includes('100 Continue'), res.text);
    const [r] = res.responses();
    assertRawEdge(r, 413);
    assert.equal(up.requests.length, 0);
  });
});

describe('pipelining and keep-alive', () => {
  afterEach(cleanupAll);

  it('answers pipelined requests in order', T, async () => {
    const wait = { '/p1': 300, '/p2': 100, '/p3': 0 };
    const up = await startUpstream((req, res, rec) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.end(JSON.stringify({ url: req.url, bodyLength: rec.bodyLength })), wait[req.url] ?? 0));
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const res = await rawTls(v.ports.https,
      head(v.ports.https, ['GET /p1 HTTP/1.1', '{HOST}']) +
      head(v.ports.https, ['POST /p2 HTTP/1.1', '{HOST}', 'Content-Length: 3']) + 'abc' +
      head(v.ports.https, ['GET /p3 HTTP/1.1', '{HOST}', 'Connection: close']));
    const rs = res.responses();
    assert.equal(rs.length, 3, res.text);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.deepEqual(rs.map((r) => r.json().url), ['/p1', '/p2', '/p3']);
    assert.equal(rs[1].json().bodyLength, 3);
    const ids = rs.map((r) => r.get('X-Request-Id'));
    assert.equal(new Set(ids).size, 3);
  });

  it('reuses one upstream connection for sequential requests on one client connection', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const agent = keepAliveAgent();
    const clientPorts = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await https({ port: v.ports.https, path: `/k${i}`, agent });
      assert.equal(r.status, 200);
      clientPorts.add(r.localPort);
    }
    assert.equal(clientPorts.size, 1, 'the client kept one connection');
    assert.equal(new Set(up.requests.map((q) => q.remotePort)).size, 1, 'the upstream saw one connection');
  });

  it('with one worker, reuses the idle upstream connection across client connections', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'workers: 1\n' }));
    for (let i = 0; i < 4; i++) assert.equal((await https({ port: v.ports.https, path: `/n${i}` })).status, 200);
    assert.equal(new Set(up.requests.map((q) => q.remotePort)).size, 1);
  });
});

// ---- malformed requests and smuggling shapes ---------------------------------------

// Each is sent alone on a new connection: 400, the connection closed, nothing forwarded.
// `body: true`: the head is valid and the error is in the body, so visor may already have
// sent the head upstream; then no request may reach the upstream complete.
const H = 'Host: localhost';
const MALFORMED = [
  ['Content-Length and Transfer-Encoding', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding and Content-Length', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`],
  ['CL.TE smuggling prefix', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`],
  ['two equal Content-Length', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`],
  ['two different Content-Length', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`],
  ['Content-Length list', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: 5, 5\r\n\r\nhello`],
  ['non-numeric Content-Length', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: abc\r\n\r\n`],
  ['negative Content-Length', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: -1\r\n\r\n`],
  ['signed Content-Length', `POST / HTTP/1.1\r\n${H}\r\nContent-Length: +5\r\n\r\nhello`],
  ['Transfer-Encoding: gzip, chunked', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: chunked, gzip', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: xchunked', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: identity', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: identity\r\n\r\n`],
  ['chunked applied twice', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
  ['bad chunk size', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, { body: true }],
  ['chunk size with 0x prefix', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, { body: true }],
  ['overflowing chunk size', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nhello\r\n0\r\n\r\n`, { body: true }],
  ['chunk data without CRLF', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n`, { body: true }],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}\r\nX-Folded: a\r\n b\r\n\r\n`],
  ['NUL in a header value', `GET / HTTP/1.1\r\n${H}\r\nX-Nul: a\0b\r\n\r\n`],
  ['CR in a header value', `GET / HTTP/1.1\r\n${H}\r\nX-Cr: a\rb\r\n\r\n`],
  ['LF in a header value', `GET / HTTP/1.1\r\n${H}\r\nX-Lf: a\nb\r\n\r\n`],
  ['bare LF line endings', `GET / HTTP/1.1\n${H}\n\n`],
  ['space before the colon', `GET / HTTP/1.1\r\n${H}\r\nX-Space : a\r\n\r\n`],
  ['empty header name', `GET / HTTP/1.1\r\n${H}\r\n: a\r\n\r\n`],
  ['invalid header name character', `GET / HTTP/1.1\r\n${H}\r\nX(Bad): a\r\n\r\n`],
  ['whitespace before the first header', `GET / HTTP/1.1\r\n X-First: a\r\n${H}\r\n\r\n`],
  ['missing Host', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n'],
  ['two Host', `GET / HTTP/1.1\r\n${H}\r\nHost: evil.example\r\n\r\n`],
  ['invalid method characters', `G(T / HTTP/1.1\r\n${H}\r\n\r\n`],
  ['HTTP/2.0 version', `GET / HTTP/2.0\r\n${H}\r\n\r\n`],
  ['garbage version', `GET / HTTP/1.x\r\n${H}\r\n\r\n`],
  ['not HTTP', `GET / FOO/1.1\r\n${H}\r\n\r\n`],
  ['HTTP/0.9 request line', 'GET /\r\n\r\n'],
  ['two spaces in the request line', `GET  / HTTP/1.1\r\n${H}\r\n\r\n`],
  ['target not starting with /', `GET foo HTTP/1.1\r\n${H}\r\n\r\n`],
  ['NUL in the target', `GET /a\0b HTTP/1.1\r\n${H}\r\n\r\n`],
  ['absolute-form to another host', `GET http://evil.example/ HTTP/1.1\r\n${H}\r\n\r\n`],
];

describe('malformed requests and smuggling shapes → 400 and close', () => {
  afterEach(cleanupAll);

  for (const [name, bytes, opts = {}] of MALFORMED) {
    it(name, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(minimalYaml({ upstream: up.addr }));
      const res = await rawTls(v.ports.https, bytes, { timeoutMs: 4000 * SLOW });
      assert.equal(res.timedOut, false, `connection not closed; received ${JSON.stringify(res.text)}`);
      const rs = res.responses();
      assert.ok(rs.length >= 1, `no answer before the close; error ${res.error && res.error.code}`);
      assertRawEdge(rs[0], 400);
      assert.equal(rs.length, 1, 'nothing after the 400');
      await delay(100);
      if (opts.body) assert.equal(up.requests.filter((q) => q.complete).length, 0, 'no complete request upstream');
      else assert.equal(up.requests.length, 0, 'nothing forwarded');
    });
  }

  it('a valid request before a malformed one is answered, then 400 and close', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const res = await rawTls(v.ports.https,
      `GET /ok HTTP/1.1\r\n${H}\r\n\r\n` + `GET /bad HTTP/1.1\r\n${H}\r\nHost: evil.example\r\n\r\n`,
      { timeoutMs: 4000 * SLOW });
    assert.equal(res.timedOut, false);
    const rs = res.responses();
    assert.equal(rs.length, 2, res.text);
    assert.equal(rs[0].status, 200);
    assertRawEdge(rs[1], 400);
    assert.deepEqual(up.requests.map((q) => q.url), ['/ok']);
  });
});

// ---- limits -------------------------------------------------------------------------

describe('size and time limits', () => {
  afterEach(cleanupAll);

  it('413 when Content-Length exceeds max_body_size; the limit itself passes', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1k' }));
    const ok = await https({ port: v.ports.https, method: 'POST', path: '/at-limit', body: Buffer.alloc(1024, 'a') });
    assert.equal(ok.status, 200);
    assert.equal(ok.json().bodyLength, 1024);
    const res = await rawTls(v.ports.https,
      [head(v.ports.https, ['POST /over HTTP/1.1', '{HOST}', 'Content-Length: 1025']), 'a'.repeat(1025)],
      { until: hasResponses(1) });
    assertRawEdge(res.responses()[0], 413);
    assert.deepEqual(up.requests.map((q) => q.url), ['/at-limit']);
  });

  it('413 when a chunked body grows past max_body_size before the answer started', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1k' }));
    const chunk = `200\r\n${'b'.repeat(512)}\r\n`;
    const res = await rawTls(v.ports.https,
      [head(v.ports.https, ['POST /grow HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked']), chunk, 50, chunk, 50, chunk, 50, chunk],
      { until: hasResponses(1), timeoutMs: 5000 * SLOW });
    assertRawEdge(res.responses()[0], 413);
    await delay(100);
    assert.equal(up.requests.filter((q) => q.complete).length, 0, 'the upstream never got a complete body');
  });

  it('a chunked body past max_body_size after the answer started: the connection is closed, never a complete answer', T, async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('started');
      req.on('data', () => {});
      req.on('end', () => res.end('-finished'));
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1k' }));
    const conn = await rawConnect(v.ports.https);
    const chunk = `258\r\n${'c'.repeat(600)}\r\n`;
    await conn.write(head(v.ports.https, ['POST /stream HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked']) + chunk);
    const started = await conn.waitFor((b) => b.includes('started'), 1500 * SLOW).then(() => true, () => false);
    try {
      await conn.write(chunk);
      await conn.write(chunk);
    } catch {
      /* visor may close as soon as the limit is passed */
    }
    const res = await conn.readUntilClose(5000 * SLOW);
    assert.equal(res.timedOut, false, `connection left open; received ${JSON.stringify(res.text)}`);
    const rs = res.responses();
    if (started) {
      assert.equal(rs[0].status, 200);
      assert.equal(rs[0].complete, false, 'the started answer must not be completed');
    } else {
      // visor held the answer back until the body was read: then the 413 is still possible
      if (rs.length) assertRawEdge(rs[0], 413);
    }
    assert.ok(!res.text.includes('-finished'));
    assert.equal(up.requests.filter((q) => q.complete).length, 0, 'the upstream never got a complete body');
  });

  it('431 when the head exceeds max_header_size (one big header or many small ones)', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_header_size: 1k' }));
    const under = await https({ port: v.ports.https, path: '/under', headers: { 'X-Fill': 'a'.repeat(600) } });
    assert.equal(under.status, 200);
    const big = await rawTls(v.ports.https, head(v.ports.https, ['GET /big HTTP/1.1', '{HOST}', `X-Big: ${'a'.repeat(2000)}`]), { until: hasResponses(1) });
    assertRawEdge(big.responses()[0], 431);
    const many = [];
    for (let i = 0; i < 40; i++) many.push(`X-Many-${i}: ${'m'.repeat(30)}`);
    const res = await rawTls(v.ports.https, head(v.ports.https, ['GET /many HTTP/1.1', '{HOST}', ...many]), { until: hasResponses(1) });
    assertRawEdge(res.responses()[0], 431);
    assert.deepEqual(up.requests.map((q) => q.url), ['/under']);
  });

  it('408 and close when the head does not arrive within header_timeout', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'header_timeout: 1s' }));
    const t0 = Date.now();
    const res = await rawTls(v.ports.https, `GET / HTTP/1.1\r\nHost: localhost:${v.ports.https}\r\n`, { timeoutMs: 6000 * SLOW });
    const took = Date.now() - t0;
    assert.equal(res.timedOut, false, 'the connection is closed');
    assertRawEdge(res.responses()[0], 408);
    assert.ok(took >= 900 && took < 4000 * SLOW, `answered after ${took} ms`);
    assert.equal(up.requests.length, 0);
  });

  it('408 for a head trickled byte by byte (slowloris): the whole head must arrive within header_timeout', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'header_timeout: 1s' }));
    const items = [];
    for (const ch of `GET / HTTP/1.1\r\nHost: localhost:${v.ports.https}\r\nX-Slow: ${'s'.repeat(20)}\r\n\r\n`) items.push(ch, 150);
    const t0 = Date.now();
    const res = await rawTls(v.ports.https, items, { timeoutMs: 3000 * SLOW });
    const took = Date.now() - t0;
    assertRawEdge(res.responses()[0], 408);
    assert.equal(res.closed, true);
    assert.ok(took < 4000 * SLOW, `closed after ${took} ms`);
    assert.equal(up.requests.length, 0);
  });
});

// ---- upstream failures ---------------------------------------------------------------

describe('upstream failures', () => {
  afterEach(cleanupAll);

  it('502 when the upstream refuses connections, logged with the same request id', T, async () => {
    const port = await deadPort();
    const v = await startVisor(minimalYaml({ upstream: `127.0.0.1:${port}` }));
    const t0 = Date.now();
    const r = await https({ port: v.ports.https, path: '/x?secret=1' });
    const id = assertEdge(r, 502);
    assert.ok(Date.now() - t0 < 3000 * SLOW);
    const log = await v.accessLogFor(id);
    assert.equal(log.status, 502);
    assert.equal(log.path, '/x');
  });

  it('502 when the upstream closes without answering', T, async () => {
    const up = await startRawUpstream(async (socket, ctx) => {
      await ctx.head();
      socket.destroy();
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    assertEdge(await https({ port: v.ports.https }), 502);
  });

  it('502 when the upstream answers garbage', T, async () => {
    const up = await startRawUpstream(async (socket, ctx) => {
      await ctx.head();
      socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await https({ port: v.ports.https });
    assertEdge(r, 502);
    assert.ok(!r.text.includes('SSH'));
  });

  it('504 when the upstream does not answer within upstream.timeout', T, async () => {
    const up = await startRawUpstream(() => {});
    const v = await startVisor(minimalYaml({ upstream: up.addr, upstreamExtra: 'timeout: 1s' }));
    const t0 = Date.now();
    const r = await https({ port: v.ports.https, path: '/slow' });
    const took = Date.now() - t0;
    assertEdge(r, 504);
    assert.ok(took >= 900 && took < 4000 * SLOW, `504 after ${took} ms`);
  });

  for (const [kind, answer] of [
    ['Content-Length', `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(100)}`],
    ['chunked', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
  ]) {
    it(`the upstream closing mid-answer (${kind}) closes the client connection without a complete answer`, T, async () => {
      const up = await startRawUpstream(async (socket, ctx) => {
        await ctx.head();
        socket.write(answer, () => setTimeout(() => socket.destroy(), 50));
      });
      const v = await startVisor(minimalYaml({ upstream: up.addr }));
      const res = await rawTls(v.ports.https, head(v.ports.https, ['GET /cut HTTP/1.1', '{HOST}']), { timeoutMs: 5000 * SLOW });
      assert.equal(res.timedOut, false, `client connection left open; received ${JSON.stringify(res.text.slice(0, 300))}`);
      const rs = res.responses();
      assert.ok(rs.length >= 1);
      assert.equal(rs[0].status, 200);
      assert.equal(rs[0].complete, false, 'the cut answer must not look complete');
    });
  }
});

// ---- 200 MB both ways ------------------------------------------------------------------

const BIG = process.env.VISOR_WRAP ? 16 << 20 : 200 << 20; // valgrind: smaller, RSS not checked
const RSS_LIMIT_KB = 64 * 1024;

// Deterministic pseudo-random stream of `total` bytes; hash() is known when it has ended.
function generated(total) {
  const block = crypto.randomBytes(1 << 16);
  const h = crypto.createHash('sha256');
  let sent = 0;
  let n = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const len = Math.min(block.length, total - sent);
      const b = Buffer.from(block.subarray(0, len));
      b.writeUInt32BE(n++, 0);
      h.update(b);
      sent += len;
      this.push(b);
    },
  });
  stream.digest = () => h.digest('hex');
  return stream;
}

function sampleRss(v) {
  const s = { max: 0, samples: 0 };
  const t = setInterval(() => {
    const kb = v.rssKb();
    if (kb !== null) {
      s.samples++;
      s.max = Math.max(s.max, kb);
    }
  }, 100);
  s.stop = () => clearInterval(t);
  return s;
}

describe('200 MB bodies in bounded memory', () => {
  afterEach(cleanupAll);

  it(`uploads ${BIG >> 20} MB: the upstream gets every byte, visor stays under 64 MB RSS`, { timeout: 180000 * SLOW }, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1g', upstreamExtra: 'timeout: 120s' }));
    const body = generated(BIG);
    const rss = sampleRss(v);
    let r;
    try {
      r = await https({ port: v.ports.https, method: 'POST', path: '/upload', body, headers: { 'Content-Length': String(BIG), 'Content-Type': 'application/octet-stream' }, timeoutMs: 170000 * SLOW });
    } finally {
      rss.stop();
    }
    assert.equal(r.status, 200);
    assert.equal(r.json().bodyLength, BIG);
    assert.equal(r.json().bodySha256, body.digest());
    assert.ok(rss.samples > 0);
    if (!process.env.VISOR_WRAP) assert.ok(rss.max < RSS_LIMIT_KB, `max RSS ${rss.max} kB`);
  });

  it(`downloads ${BIG >> 20} MB: the client gets every byte, visor stays under 64 MB RSS`, { timeout: 180000 * SLOW }, async () => {
    let digest = null;
    const up = await startUpstream((req, res) => {
      req.resume();
      const src = generated(BIG);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(BIG) });
      src.on('end', () => {
        digest = src.digest();
      });
      src.pipe(res);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, upstreamExtra: 'timeout: 120s' }));
    const rss = sampleRss(v);
    let r;
    try {
      r = await https({ port: v.ports.https, path: '/download', hashBody: true, timeoutMs: 170000 * SLOW });
    } finally {
      rss.stop();
    }
    assert.equal(r.status, 200);
    assert.equal(r.bodyLength, BIG);
    assert.equal(r.bodySha256, digest);
    assert.ok(rss.samples > 0);
    if (!process.env.VISOR_WRAP) assert.ok(rss.max < RSS_LIMIT_KB, `max RSS ${rss.max} kB`);
  });
});
