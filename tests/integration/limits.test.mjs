// Size and time limits (max_body_size → 413, max_header_size → 431, header_timeout → 408)
// and upstream failures (502, 504, a close mid-answer) — docs/configuration.md, `client` and `upstream`.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startVisor, startUpstream, startRawUpstream, deadPort, https, rawTls, rawConnect, hasResponses,
  minimalYaml, assertEdge, assertRawEdge, cleanupAll, SLOW, delay,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };
const head = (port, lines) => `${lines.join('\r\n')}\r\n\r\n`.replace('{HOST}', `Host: localhost:${port}`);

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
    assertRawEdge(res.responses()[0], 408);
    assert.equal(res.timedOut, false, 'the connection must be closed after the 408');
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
    assert.equal(res.closed, true, 'the connection must be closed after the 408');
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
