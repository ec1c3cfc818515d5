// Malformed request heads and request-smuggling shapes (docs/security.md, "Parsing and framing"):
// each → 400 with the edge JSON, the connection closed, nothing forwarded.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startVisor, startUpstream, rawTls, minimalYaml, assertRawEdge, cleanupAll, SLOW, delay,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

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
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing
  ['HTTP/1.0 with Transfer-Encoding', `POST / HTTP/1.0\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
  ['HTTP/1.0 keep-alive with Transfer-Encoding', `POST / HTTP/1.0\r\n${H}\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.0\r\n${H}\r\n\r\n`],
  // llhttp 8.1 refuses an unquoted extension value followed by another extension
  // (docs/security.md, "Chunk extensions"); every other valid form is accepted (framing tests).
  ['chunk extension after an unquoted value', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;flag\r\nhello\r\n0\r\n\r\n`, { body: true }],
  ['chunk extension with a bare LF', `POST / HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n`, { body: true }],
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
      const res = await rawTls(v.ports.https, bytes, { timeoutMs: 2000 * SLOW });
      const rs = res.responses();
      assert.ok(rs.length >= 1, `no answer; ${res.timedOut ? 'connection left open' : 'closed'}, error ${res.error && res.error.code}`);
      assertRawEdge(rs[0], 400);
      assert.equal(rs.length, 1, 'nothing after the 400');
      assert.equal(res.timedOut, false, 'the connection must be closed after the 400 (still open 2 s later)');
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
      { timeoutMs: 2000 * SLOW });
    const rs = res.responses();
    assert.equal(rs.length, 2, res.text);
    assert.equal(rs[0].status, 200);
    assertRawEdge(rs[1], 400);
    assert.equal(res.timedOut, false, 'the connection must be closed after the 400');
    assert.deepEqual(up.requests.map((q) => q.url), ['/ok']);
  });
});
