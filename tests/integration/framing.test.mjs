// HTTP/1.1 framing through visor (docs/security.md, "Parsing and framing"): bodies both ways, HEAD/204/304,
// Expect: 100-continue, pipelining, keep-alive. The malformed-request table is in
// smuggling.test.mjs, limits and upstream failures in limits.test.mjs, 200 MB transfers in
// bigbody.test.mjs.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startVisor, startUpstream, startRawUpstream, rawResponder, headPath, https, keepAliveAgent,
  rawTls, rawConnect, hasResponses, parseResponses, minimalYaml, assertRawEdge,
  assertSecurityHeaders, cleanupAll, SLOW,
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

describe('chunk extensions', () => {
  afterEach(cleanupAll);

  // RFC 9112 §7.1.1: a recipient ignores extensions it does not understand. visor re-chunks
  // the body towards the upstream, so none reaches it.
  for (const ext of [';flag', ';name=value', ';a;b', ';a="x y";b', ';a="x"']) {
    it(`accepts "5${ext}" and forwards the body without it`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(minimalYaml({ upstream: up.addr }));
      const res = await rawTls(v.ports.https, [
        head(v.ports.https, ['POST /ext HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked']),
        `5${ext}\r\nhello\r\n0\r\n\r\n`,
      ], { until: hasResponses(1) });
      const [r] = res.responses();
      assert.equal(r.status, 200, res.text.slice(0, 300));
      assert.equal(up.requests[0].bodyLength, 5);
      assert.equal(up.requests[0].bodySha256, sha('hello'));
    });
  }
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
