// Faults (issue "Safe in production: no crash, no hang, no leak under hostile peers and failing
// neighbours"): visor must *stay* right after a fault, not only answer right. Every test here
// puts real processes through one fault and then checks that
//   - every request got a complete answer — the upstream's, or visor's own 502/503/504 JSON
//     with its X-Request-Id — within a bound that fails the test (a hang is a failure, never
//     a skipped assertion);
//   - the client connections that were open go on working (same sockets), or are closed
//     cleanly where HTTP leaves no other way;
//   - the process is still up, and (the harness's leak invariant, lib/visor.mjs) once the
//     test's clients, upstreams and Redis are gone, visor holds no fd and no connection more
//     than when it started.
//
// The faults: the upstream killed and restarted under keep-alive load; an upstream that takes
// a request and closes without answering (fresh and pooled connections: the retry path);
// every shape an upstream answer can have (Content-Length, chunked, close-delimited with and
// without a body, cut mid-head and mid-body, 1xx first, 204/304 with stray bytes, HEAD);
// Redis killed and restarted under load with each redis.on_error; ten SIGHUPs under load with
// a certificate swapped between them; SIGTERM with shutdown_delay and /readyz; a stdout reader
// that stops reading.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, startRawUpstream, https, http, keepAliveAgent, rawConnect, tlsConnect,
  parseResponses, hasResponses, minimalYaml, freePort, getCerts, ALT_NAME, assertEdge, assertRawEdge,
  REQUEST_ID, cleanupAll, track, until, delay, SLOW,
} from './lib/harness.mjs';
import { redisOnPort, rlYaml, redisUp, evalshaCalls, tally } from './lib/rl-helpers.mjs';

const T = { timeout: 60000 * SLOW };

// ---- helpers ----------------------------------------------------------------------------

// A real node:http upstream in its own process, so it can be SIGKILLed (the kernel then resets
// or closes its connections as for a crashed app) and started again on the same port. It
// answers after `delayMs`, so that a kill finds requests in flight.
const UPSTREAM_PROCESS = `
const http = require('node:http');
const delayMs = Number(process.argv[2]);
const srv = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => setTimeout(() => {
    const body = JSON.stringify({ url: req.url, pid: process.pid });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }, delayMs));
});
srv.keepAliveTimeout = 60000;
srv.requestTimeout = 0;
srv.headersTimeout = 0;
srv.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

async function upstreamProcess(port, delayMs = 0) {
  const proc = spawn(process.execPath, ['-e', UPSTREAM_PROCESS, String(port), String(delayMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  const exitedP = new Promise((resolve) => proc.on('close', () => { exited = true; resolve(); }));
  proc.stderr.on('data', (d) => (out += d));
  const up = {
    pid: proc.pid,
    kill: async () => {
      if (!exited) proc.kill('SIGKILL');
      await exitedP;
    },
  };
  const untrack = track(`upstream process ${proc.pid}`, async () => {
    untrack();
    await up.kill();
  }, () => {
    if (!exited) proc.kill('SIGKILL');
  });
  await Promise.race([
    new Promise((resolve) => proc.stdout.on('data', (d) => { if (String(d).includes('listening')) resolve(); })),
    exitedP.then(() => { throw new Error(`upstream process exited early: ${out}`); }),
    delay(10000 * SLOW).then(() => { throw new Error(`upstream process did not listen on ${port}: ${out}`); }),
  ]);
  return up;
}

// An onConnection for startRawUpstream that understands requests with Content-Length bodies:
// respond({ method, path, head, body, index }, socket) for each request on the connection
// (index: its position on that connection, from 0).
function rawHttp(respond) {
  return (socket) => {
    let buf = Buffer.alloc(0);
    let index = 0;
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i + 4).toString('latin1');
        const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
        const n = m ? Number(m[1]) : 0;
        if (buf.length < i + 4 + n) return;
        const body = buf.subarray(i + 4, i + 4 + n);
        buf = buf.subarray(i + 4 + n);
        const [method, target] = head.split(' ');
        respond({ method, path: target, head, body, index: index++ }, socket);
      }
    });
  };
}

const okBytes = (text) => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;

// Checks one answer from a loop and returns a problem (a string) or null: a 200 from the
// upstream, or visor's own 502/503/504 edge answer, each with one X-Request-Id.
function problem(r, allowed = [200, 502, 503, 504]) {
  try {
    assert.ok(allowed.includes(r.status), `status ${r.status} (allowed: ${allowed.join(', ')})`);
    if (r.status === 200) {
      assert.equal(r.all('X-Request-Id').length, 1, 'one X-Request-Id');
      assert.match(r.get('X-Request-Id'), REQUEST_ID);
    } else {
      assertEdge(r, r.status);
    }
    return null;
  } catch (e) {
    return e.message;
  }
}

// `n` keep-alive clients (one agent and so one connection each) sending requests in a loop
// until stop(). Every answer is recorded: { c, t, done, status, port, problem } or
// { c, t, done, error } for a request that failed or passed timeoutMs. A request that
// stalls is an error, never a wait.
function keepAliveLoops(v, { n = 16, path = (c, i) => `/c${c}/${i}`, headers = {}, timeoutMs = 4000 * SLOW, allowed } = {}) {
  const out = [];
  let running = true;
  const loops = Array.from({ length: n }, async (_, c) => {
    const agent = keepAliveAgent();
    for (let i = 0; running; i++) {
      const t = Date.now();
      try {
        const r = await https({ port: v.ports.https, path: path(c, i), headers: typeof headers === 'function' ? headers(c, i) : headers, agent, timeoutMs });
        out.push({ c, t, done: Date.now(), status: r.status, port: r.localPort, problem: problem(r, allowed) });
      } catch (e) {
        out.push({ c, t, done: Date.now(), error: e.message });
      }
    }
  });
  const stop = async () => {
    running = false;
    await Promise.all(loops);
    return out;
  };
  const untrack = track('keep-alive loops', async () => {
    untrack();
    await stop();
  });
  return { out, stop };
}

// The failures in a loop's record, as readable lines (empty when all is well); times in ms
// relative to `ref` (e.g. the moment of the fault).
function failures(out, ref = 0, refName = 'the start') {
  return out.filter((x) => x.error || x.problem)
    .map((x) => `client ${x.c}, request sent ${x.t - ref} ms after ${refName}: ${x.error || x.problem}`);
}

// client → the local ports it used (one port = one connection kept throughout).
function portsPerClient(out) {
  const m = new Map();
  for (const x of out) {
    if (x.port === undefined) continue;
    if (!m.has(x.c)) m.set(x.c, new Set());
    m.get(x.c).add(x.port);
  }
  return m;
}

const adminGet = (v, p) => http({ port: v.ports.admin, path: p, timeoutMs: 2000 * SLOW });
// the status of an admin request, or the error code when it got none (ECONNREFUSED ...)
const adminStatus = (v, p) => adminGet(v, p).then((r) => r.status, (e) => e.code || e.message);

// Polls fn() until it returns `want`; fails with the last value after ms.
async function eventually(fn, want, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const last = await fn();
    if (last === want) return;
    if (Date.now() > end) assert.fail(`${what}: still ${last} after ${ms} ms (want ${want})`);
    await delay(10);
  }
}

// ---- the upstream dies and comes back ---------------------------------------------------------

describe('the upstream killed and restarted under keep-alive load', () => {
  afterEach(cleanupAll);

  it('16 keep-alive clients looping: every request answered (200 or a clean 5xx), the same connections get 200s after the restart, none hangs', T, async () => {
    const port = await freePort();
    let up = await upstreamProcess(port, 20);
    const v = await startVisor(minimalYaml({ upstream: `127.0.0.1:${port}`, listen: 'admin: {{ADMIN}}' }));
    const CLIENTS = 16;
    const loops = keepAliveLoops(v, { n: CLIENTS });
    let tRestart = null;
    try {
      // every client answered once before the kill (slow handshakes under valgrind)
      await until(() => new Set(loops.out.filter((x) => x.status === 200).map((x) => x.c)).size === CLIENTS,
        10000 * SLOW, 'a 200 on every client before the kill');
      await delay(300);
      await up.kill();
      const tKill = Date.now();
      await delay(800 * SLOW);
      up = await upstreamProcess(port, 20);
      tRestart = Date.now();
      // every client gets a 200 for a request it sent after the restart
      await until(() => {
        const ok = new Set(loops.out.filter((x) => x.t > tRestart && x.status === 200).map((x) => x.c));
        return ok.size === CLIENTS;
      }, 5000 * SLOW, 'a 200 on every client after the upstream came back').catch((e) => {
        const ok = new Set(loops.out.filter((x) => x.t > tRestart && x.status === 200).map((x) => x.c));
        const missing = [...Array(CLIENTS).keys()].filter((c) => !ok.has(c));
        const last = missing.map((c) => JSON.stringify(loops.out.filter((x) => x.c === c).slice(-2)));
        throw new Error(`${e.message}; clients without one: ${missing.join(', ')}; their last answers: ${last.join(' ')}`);
      });
      await delay(300);
      const out = await loops.stop();
      assert.deepEqual(failures(out, tKill, 'the kill'), [], 'every request got a complete, well-formed answer in time');
      const by = tally(out.map((x) => x.status));
      assert.ok((by[502] || 0) + (by[503] || 0) + (by[504] || 0) > 0, `the outage was seen by the clients (${JSON.stringify(by)})`);
      assert.ok(out.some((x) => x.t < tKill && x.status === 200), 'answers before the kill');
      const perClient = portsPerClient(out);
      for (let c = 0; c < CLIENTS; c++) {
        assert.deepEqual(perClient.get(c) && perClient.get(c).size, 1, `client ${c} kept its one connection through the outage (local ports ${[...(perClient.get(c) || [])].join(', ')})`);
      }
    } finally {
      await loops.stop();
    }
    assert.equal(v.exitCode, undefined, 'visor is up');
    assert.equal((await adminGet(v, '/healthz')).status, 200);
  });
});

// ---- an upstream that takes the request and closes without answering ------------------------

describe('an upstream that closes without answering', () => {
  afterEach(cleanupAll);

  // /ok answers; /drop closes (FIN) without a byte; /reset resets (RST); /drop-once closes
  // the first time it is asked, answers after.
  async function closingUpstream() {
    let dropped = 0;
    const seen = [];
    const up = await startRawUpstream(rawHttp((q, socket) => {
      seen.push(`${q.method} ${q.path}`);
      if (q.path === '/drop' || (q.path === '/drop-once' && dropped++ === 0)) socket.end();
      else if (q.path === '/reset') socket.resetAndDestroy();
      else socket.write(okBytes(`ok ${q.path}`));
    }));
    up.seen = seen;
    return up;
  }

  async function setup() {
    const up = await closingUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}', extra: 'workers: 1\n' }));
    const agent = keepAliveAgent();
    const get = (p, o = {}) => https({ port: v.ports.https, path: p, agent, timeoutMs: 4000 * SLOW, ...o });
    return { up, v, get };
  }

  for (const [what, p] of [['closes (FIN)', '/drop'], ['resets (RST)', '/reset']]) {
    it(`a fresh upstream connection that ${what} after the request: 502 edge answer, and the same client connection goes on`, T, async () => {
      const { up, v, get } = await setup();
      const r = await get(p);
      assertEdge(r, 502);
      const next = await get('/ok');
      assert.equal(next.status, 200);
      assert.equal(next.text, 'ok /ok');
      assert.equal(next.localPort, r.localPort, 'the same client connection');
      assert.deepEqual(up.seen, [`GET ${p}`, 'GET /ok'], 'a fresh connection is not retried');
      const line = await v.accessLogFor(r.get('X-Request-Id'));
      assert.equal(line.status, 502);
      assert.equal(v.exitCode, undefined);
    });
  }

  it('a pooled connection that closes after the request (the retry path): GET retried once on a fresh connection, then 502; the client connection goes on', T, async () => {
    const { up, v, get } = await setup();
    const a = await get('/ok');
    assert.equal(a.status, 200);
    const r = await get('/drop');                 // sent on the pooled connection
    assertEdge(r, 502);
    assert.equal(r.localPort, a.localPort);
    const next = await get('/ok');
    assert.equal(next.status, 200, 'the client connection still works after the 502');
    assert.equal(next.localPort, a.localPort, 'the same client connection');
    assert.deepEqual(up.seen, ['GET /ok', 'GET /drop', 'GET /drop', 'GET /ok'], 'retried exactly once');
    assert.equal(v.exitCode, undefined);
  });

  it('a pooled connection that closes once: the retry on a fresh connection answers 200', T, async () => {
    const { up, get } = await setup();
    const a = await get('/ok');
    const r = await get('/drop-once');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok /drop-once');
    assert.equal(r.localPort, a.localPort);
    assert.deepEqual(up.seen, ['GET /ok', 'GET /drop-once', 'GET /drop-once']);
    assert.equal((await get('/ok')).status, 200);
  });

  it('a POST on a pooled connection that closes: not retried (not idempotent), 502; the client connection goes on', T, async () => {
    const { up, get } = await setup();
    const a = await get('/ok');
    const r = await get('/drop', { method: 'POST', body: 'payload', headers: { 'Content-Type': 'text/plain' } });
    assertEdge(r, 502);
    assert.equal(r.localPort, a.localPort);
    const next = await get('/ok');
    assert.equal(next.status, 200);
    assert.equal(next.localPort, a.localPort, 'the same client connection');
    assert.deepEqual(up.seen, ['GET /ok', 'POST /drop', 'GET /ok'], 'the POST was sent once');
  });
});

// ---- every shape of upstream answer -----------------------------------------------------------

// Each shape: how the upstream answers `method /shape` (write bytes, maybe close), and what
// the client must see. `keep`: the answer is complete and the client connection stays usable
// (checked with a second request on it); `cut`: the answer's head went out and its body was
// cut, so the only honest signal left is to close the client connection with the answer
// visibly incomplete.
const SHAPES = [
  {
    name: 'Content-Length',
    send: (s) => s.write(okBytes('hello')),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'hello');
      assert.equal(r.get('Content-Length'), '5');
    },
  },
  {
    name: 'chunked',
    send: (s) => s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'hello world');
      assert.equal(r.chunked, true);
    },
  },
  {
    // RFC 9112 §6.3 (8): without Content-Length or chunked, the body ends when the server
    // closes — a complete answer, re-framed for the client.
    name: 'close-delimited with a body (HTTP/1.1, Connection: close)',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nclose-delimited ');
      await delay(50);
      s.end('body');
    },
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'close-delimited body');
    },
  },
  {
    name: 'close-delimited with a body (HTTP/1.1, head, body and close in one write)',
    send: (s) => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall at once'),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'all at once');
    },
  },
  {
    name: 'close-delimited with a body (HTTP/1.0)',
    send: (s) => s.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style'),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'old style');
    },
  },
  {
    name: 'close-delimited without a body (431, Connection: close, then close)',
    send: (s) => s.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n'),
    keep: (r) => {
      assert.equal(r.status, 431, `the upstream's status reaches the client (body: ${r.text.slice(0, 200)})`);
      assert.equal(r.text, '');
    },
  },
  {
    name: 'close-delimited without a body (200, the close 50 ms after the head)',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nX-Up: empty\r\nConnection: close\r\n\r\n');
      await delay(50);
      s.end();
    },
    keep: (r) => {
      assert.equal(r.status, 200, `the upstream's status reaches the client (body: ${r.text.slice(0, 200)})`);
      assert.equal(r.get('X-Up'), 'empty');
      assert.equal(r.text, '');
    },
  },
  {
    name: 'close mid-head',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: te');
      await delay(50);
      s.end();
    },
    keep: (r) => assertRawEdge(r, 502),
  },
  {
    name: 'close mid-body (Content-Length not reached)',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\npartial');
      await delay(150);
      s.end();
    },
    cut: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'partial');
      assert.equal(r.complete, false, 'the client can tell the body is incomplete');
    },
  },
  {
    name: 'close mid-body (chunked not finished)',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n');
      await delay(150);
      s.end();
    },
    cut: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'partial');
      assert.equal(r.complete, false, 'no last chunk: the client can tell the body is incomplete');
    },
  },
  {
    // upstream.c: informational answers are not forwarded; the final answer follows
    name: '100 Continue, then the final answer',
    send: async (s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\n');
      await delay(30);
      s.write(okBytes('ok'));
    },
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
    },
  },
  {
    name: '103 Early Hints, then the final answer',
    send: async (s) => {
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n');
      await delay(30);
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhint\r\n0\r\n\r\n');
    },
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'hint');
    },
  },
  {
    name: '100 and 103 in one write with the final answer',
    send: (s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n' + okBytes('both')),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'both');
    },
  },
  {
    name: '103 Early Hints, then a close without a final answer',
    send: async (s) => {
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n');
      await delay(50);
      s.end();
    },
    keep: (r) => assertRawEdge(r, 502),
  },
  {
    name: '204 with a stray body',
    send: (s) => s.write('HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\nSTRAY-BYTES'),
    stray: 'STRAY-BYTES',
    keep: (r) => {
      assert.equal(r.status, 204);
      assert.equal(r.get('X-Up'), '1');
      assert.equal(r.body.length, 0);
    },
  },
  {
    name: '304 with a stray body',
    send: (s) => s.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\nSTRAY-BYTES'),
    stray: 'STRAY-BYTES',
    keep: (r) => {
      assert.equal(r.status, 304);
      assert.equal(r.get('ETag'), '"v1"');
      assert.equal(r.body.length, 0);
    },
  },
  // RFC 9112 §6.3: a 1xx, 204 or 304 ends with its head whatever framing it announces;
  // llhttp alone would read the announced body (found by the proxy fuzz target)
  {
    name: '204 announcing a chunked body',
    send: (s) => s.write('HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'),
    stray: 'hello',
    keep: (r) => {
      assert.equal(r.status, 204);
      assert.equal(r.body.length, 0);
      assert.deepEqual(r.all('Transfer-Encoding'), []);
    },
  },
  {
    name: '304 announcing a Content-Length body',
    send: (s) => s.write('HTTP/1.1 304 Not Modified\r\nETag: "v2"\r\nContent-Length: 11\r\n\r\nSTRAY-BYTES'),
    stray: 'STRAY-BYTES',
    keep: (r) => {
      assert.equal(r.status, 304);
      assert.equal(r.get('ETag'), '"v2"');
      assert.equal(r.body.length, 0);
    },
  },
  {
    name: '100 announcing a chunked body, then the final answer',
    send: (s) => s.write('HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n' + okBytes('ok')),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
    },
  },
  {
    name: 'Content-Length with stray bytes after the body',
    send: (s) => s.write(okBytes('ok') + 'STRAY-BYTES'),
    stray: 'STRAY-BYTES',
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
    },
  },
  {
    // RFC 9112 §6.3: both framings on one message "ought to be handled as an error"
    name: 'Content-Length and chunked on one answer',
    send: (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'),
    keep: (r) => assertRawEdge(r, 502),
  },
  {
    // docs/architecture.md: a 101 to a request that did not ask to switch is a 502
    name: '101 to a request that did not ask to switch',
    send: (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'),
    keep: (r) => assertRawEdge(r, 502),
  },
  {
    name: 'a response head over 64 KiB',
    send: (s) => s.write(`HTTP/1.1 200 OK\r\n${'X-Big: '.concat('b'.repeat(8000), '\r\n').repeat(10)}Content-Length: 2\r\n\r\nok`),
    keep: (r) => assertRawEdge(r, 502),
  },
  {
    name: 'a bad chunk size after the first chunk',
    send: async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n');
      await delay(150);
      s.write('zz\r\nmore\r\n0\r\n\r\n');
    },
    cut: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, 'partial');
      assert.equal(r.complete, false, 'no last chunk: the client can tell the body is incomplete');
    },
  },
  {
    name: 'HEAD (Content-Length, no body)',
    method: 'HEAD',
    send: (s) => s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n'),
    keep: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.get('Content-Length'), '1234');
    },
  },
  {
    name: 'HEAD answered with a stray body',
    method: 'HEAD',
    send: (s) => s.write(okBytes('STRAY-BYTES')),
    stray: 'STRAY-BYTES',
    keep: (r) => {
      assert.equal(r.status, 200);
    },
  },
];

describe('every upstream answer shape, and the client connection after it', () => {
  afterEach(cleanupAll);

  for (const shape of SHAPES) {
    const method = shape.method || 'GET';
    it(`${shape.name}: ${shape.keep ? 'answered, the next request on the same connection too' : 'head and partial body, then a clean close'}`, T, async () => {
      const up = await startRawUpstream(rawHttp((q, s) => {
        if (q.path === '/shape') Promise.resolve(shape.send(s)).catch(() => {});
        else s.write(okBytes('next ok'));
      }));
      const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'workers: 1\n' }));
      const conn = await rawConnect(v.ports.https);
      await conn.write(`${method} /shape HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      if (shape.keep) {
        await conn.waitFor(hasResponses(1, [method]), 3000 * SLOW, `the answer to ${method} /shape`);
        await conn.write('GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n');
        const data = await conn.waitFor(hasResponses(2, [method, 'GET']), 3000 * SLOW, 'the answer to the next request on the same connection');
        await delay(100);              // anything visor sends after it shows up here
        const rs = parseResponses(conn.data, { methods: [method, 'GET'], eof: false });
        assert.deepEqual(rs.filter((x) => x.interim).map((x) => x.status), [], 'no interim answer is forwarded');
        const [first, second, ...more] = rs;
        assert.equal(first.complete, true, `complete first answer (${first.error || ''})`);
        assert.equal(first.version, '1.1');
        assert.equal(first.all('X-Request-Id').length, 1, 'one X-Request-Id');
        shape.keep(first);
        assert.equal(second.status, 200, `the next request on the same connection (${data.toString('latin1').slice(0, 600)})`);
        assert.equal(second.text, 'next ok');
        assert.equal(second.complete, true);
        assert.deepEqual(more.map((x) => x.statusLine || x.error), [], 'nothing after the two answers');
        if (shape.stray) assert.ok(!conn.text.includes(shape.stray), 'the stray bytes never reach the client');
        assert.equal(conn.closed || !!conn.ended, false, 'the client connection is still open');
      } else {
        const res = await conn.readUntilClose(3000 * SLOW);
        assert.equal(res.timedOut, false, `visor closed the client connection (received ${JSON.stringify(res.text.slice(0, 400))})`);
        const [first, ...more] = res.responses([method]);
        assert.ok(first, 'an answer started');
        assert.equal(first.all('X-Request-Id').length, 1, 'one X-Request-Id');
        shape.cut(first);
        assert.deepEqual(more.map((x) => x.statusLine || x.error), [], 'nothing after the cut answer');
        // visor goes on: a new connection is served
        const r = await https({ port: v.ports.https, path: '/next', timeoutMs: 3000 * SLOW });
        assert.equal(r.status, 200);
        assert.equal(r.text, 'next ok');
      }
      conn.destroy();
      assert.equal(v.exitCode, undefined, 'visor is up');
    });
  }
});

// ---- Redis dies and comes back ------------------------------------------------------------------

// redis key of `key: header:X-Key` for a value (docs/rate-limits.md)
const hdrKey = (policy, value) => `visor:rl:${policy}:{hdr:${crypto.createHash('sha256').update(value).digest('hex').slice(0, 32)}}`;

describe('Redis killed and restarted under load, per redis.on_error', () => {
  afterEach(cleanupAll);

  // /small/ is limited to 5 per minute per X-Key (fresh keys show whether limits are enforced
  // and where); everything else is under a limit the load never reaches.
  for (const mode of ['local', 'open', 'closed']) {
    it(`on_error: ${mode} — the answers during the outage, no hung request, recovery after the restart`, T, async () => {
      const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); });
      const port = await freePort();
      let redis = await redisOnPort(port);
      const v = await startVisor(rlYaml({
        upstream: up.addr,
        listen: 'admin: {{ADMIN}}',
        redis: { url: redis.url, timeout: '100ms', onError: mode },
        policies: 'small: { limit: 5, window: 60s, key: "header:X-Key" }\nwide: { limit: 1000000, window: 60s, key: "header:X-Key" }',
        routes: '- path: /small/\n  rate_limits: [small]\n- path: /\n  rate_limits: [wide]',
      }));
      await redisUp(v, 2);
      const agent = keepAliveAgent();
      const seven = async (key) => {
        const rs = [];
        for (let i = 0; i < 7; i++) rs.push(await https({ port: v.ports.https, path: '/small/x', headers: { 'X-Key': key }, agent, timeoutMs: 3000 * SLOW }));
        return rs;
      };
      const enforced = (rs, where) => {
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429], `${where}: 5 admitted, then 429`);
        for (const r of rs.slice(5)) assertEdge(r, 429);
        assert.equal(rs[0].get('RateLimit-Limit'), '5');
      };
      const ready = async () => (await adminGet(v, '/readyz')).status;

      // before: Redis counts
      enforced(await seven('before'), 'before the outage');
      assert.equal(await redis.cmd('EXISTS', hdrKey('small', 'before')), 1, 'counted in Redis');

      const loops = keepAliveLoops(v, {
        n: 12,
        headers: (c) => ({ 'X-Key': `load-${c}` }),
        timeoutMs: 3000 * SLOW,
        allowed: mode === 'closed' ? [200, 503] : [200],
      });
      try {
        await delay(400 * SLOW);
        await redis.kill('SIGKILL');
        const tDown = Date.now();
        await v.waitForLog((j) => j && /redis .*(connection lost|cannot connect)/.test(j.msg || ''), 2000 * SLOW, { stream: 'stderr' });
        await delay(200 * SLOW);

        // during the outage
        const during = await seven('during');
        if (mode === 'local') {
          enforced(during, 'during the outage (memory store)');
          assert.equal(await ready(), 200, '/readyz: local serves');
        } else if (mode === 'open') {
          assert.deepEqual(during.map((r) => r.status), Array(7).fill(200), 'open: no limit while Redis is away');
          assert.deepEqual(during.map((r) => r.get('RateLimit-Limit')), Array(7).fill(undefined), 'open: no RateLimit headers');
          assert.equal(await ready(), 200, '/readyz: open serves');
        } else {
          for (const r of during) assertEdge(r, 503);
          assert.equal(await ready(), 503, '/readyz: closed is not ready without Redis');
        }
        await delay(Math.max(0, tDown + 1000 * SLOW - Date.now()));

        // Redis back on the same port
        redis = await redisOnPort(port);
        const tUp = Date.now();
        await until(async () => {
          const r = await https({ port: v.ports.https, path: '/small/x', headers: { 'X-Key': `probe-${Date.now()}` }, agent, timeoutMs: 3000 * SLOW });
          return r.status === 200 && (await evalshaCalls(redis)) > 0;
        }, 3000 * SLOW, 'limits counted in the new Redis', 50);
        const recovered = Date.now() - tUp;
        // both workers are back on Redis (each logs `connected` a second time)
        await until(() => [0, 1].every((w) => v.stderrJson.filter((j) => new RegExp(`\\(worker ${w}\\): connected`).test(j.msg || '')).length >= 2),
          2000 * SLOW, 'every worker reconnected to Redis');
        const tAll = Date.now();
        await until(async () => (await ready()) === 200, 2000 * SLOW, '/readyz 200 once Redis is back');
        enforced(await seven('after'), 'after the restart');
        assert.equal(await redis.cmd('EXISTS', hdrKey('small', 'after')), 1, 'counted in the new Redis');
        assert.ok(recovered < 2000 * SLOW, `recovered ${recovered} ms after Redis came back`);
        await delay(200);
        const out = await loops.stop();
        assert.deepEqual(failures(out, tDown, 'the Redis kill'), [], 'every load request answered as on_error says, none hung');
        assert.ok(out.length > 50 / SLOW, `enough load: ${out.length}`);
        if (mode === 'closed') {
          const outage = out.filter((x) => x.t > tDown + 300 * SLOW && x.done < tUp);
          assert.ok(outage.length > 0 && outage.every((x) => x.status === 503), `closed: 503 during the outage (${JSON.stringify(tally(outage.map((x) => x.status)))})`);
          const late = out.filter((x) => x.t > tAll);
          assert.ok(late.every((x) => x.status === 200), `closed: 200 again after recovery (${JSON.stringify(tally(late.map((x) => x.status)))})`);
        }
        const perClient = portsPerClient(out);
        for (const [c, ports] of perClient) assert.equal(ports.size, 1, `load client ${c} kept its connection`);
      } finally {
        await loops.stop();
      }
      assert.equal(v.exitCode, undefined);
    });
  }
});

// ---- ten reloads with a certificate swap, under load -------------------------------------------

describe('SIGHUP x10 under load with a certificate swap between reloads', () => {
  afterEach(cleanupAll);

  it('no failed request, no dropped connection, every new handshake after a reload sees the new certificate', { timeout: 90000 * SLOW }, async () => {
    const c = getCerts();
    const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'faults-certs-'));
    track(`cert dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
    const install = (which) => {
      // write-then-rename, as docs/operations.md asks of a rotation
      const [crt, key] = which === 'alt' ? [c.altCert, c.altKey] : [c.cert, c.key];
      fs.copyFileSync(crt, path.join(dir, 'tls.crt.new'));
      fs.copyFileSync(key, path.join(dir, 'tls.key.new'));
      fs.renameSync(path.join(dir, 'tls.key.new'), path.join(dir, 'tls.key'));
      fs.renameSync(path.join(dir, 'tls.crt.new'), path.join(dir, 'tls.crt'));
    };
    install('default');
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr })
      .replace('cert: {{CERT}}', `cert: ${dir}/tls.crt`).replace('key: {{KEY}}', `key: ${dir}/tls.key`));
    const CN = { default: 'localhost', alt: ALT_NAME };
    // the certificate a new handshake gets (the chain is still checked against the test CA)
    const cn = async () => {
      let seen = null;
      const s = await tlsConnect(v.ports.https, { checkServerIdentity: (host, cert) => { seen = cert.subject.CN; return undefined; } });
      s.destroy();
      return seen;
    };
    assert.equal(await cn(), CN.default);

    // keep-alive clients: their connections were made with the first certificate and must
    // live through every reload; plus clients opening a new connection for every request
    const CLIENTS = 12;
    const loops = keepAliveLoops(v, { n: CLIENTS, allowed: [200] });
    // every keep-alive connection is made (with the first certificate) before the first swap
    await until(() => new Set(loops.out.filter((x) => x.status === 200).map((x) => x.c)).size === CLIENTS,
      5000 * SLOW, 'a first answer on every keep-alive client');
    const fresh = [];
    let freshRunning = true;
    const freshLoops = Array.from({ length: 2 }, async () => {
      while (freshRunning) {
        try {
          const r = await https({ port: v.ports.https, path: '/fresh', timeoutMs: 4000 * SLOW, checkServerIdentity: () => undefined });
          fresh.push(r.status === 200 ? null : `status ${r.status}`);
        } catch (e) {
          fresh.push(e.message);
        }
      }
    });
    track('fresh loops', async () => { freshRunning = false; await Promise.all(freshLoops); });
    const seen = [];
    let tFirstHup = Date.now();
    try {
      for (let i = 1; i <= 10; i++) {
        if (i === 1) tFirstHup = Date.now();
        const which = i % 2 ? 'alt' : 'default';
        install(which);
        v.hup();
        await v.waitForLog((j) => j && new RegExp(`configuration reloaded \\(generation ${i + 1}\\)`).test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
        await until(async () => (await cn()) === CN[which], 2000 * SLOW, `reload ${i}: new handshakes get the ${which} certificate`, 20);
        seen.push(which);
        await delay(150 * SLOW);
      }
      await delay(300);
      freshRunning = false;
      await Promise.all(freshLoops);
      const out = await loops.stop();
      assert.deepEqual(failures(out, tFirstHup, 'the first SIGHUP'), [], 'no failed request on the keep-alive connections');
      assert.deepEqual(fresh.filter(Boolean), [], 'no failed request on new connections');
      assert.ok(fresh.length >= 10, `new connections made during the reloads: ${fresh.length}`);
      const perClient = portsPerClient(out);
      for (let k = 0; k < CLIENTS; k++) {
        assert.equal(perClient.get(k) && perClient.get(k).size, 1, `client ${k} kept its one connection through 10 reloads`);
      }
      assert.ok(out.length >= CLIENTS * 10, `only ${out.length} requests`);
      assert.equal(seen.length, 10);
      assert.deepEqual(v.stderrJson.filter((j) => /reload refused/.test(j.msg || '')), [], 'no reload was refused');
    } finally {
      freshRunning = false;
      await loops.stop();
    }
    assert.equal(v.exitCode, undefined);
  });
});

// ---- SIGTERM: readiness first, then the drain ----------------------------------------------------

describe('SIGTERM with shutdown_delay', () => {
  afterEach(cleanupAll);

  // Intended behaviour: "On SIGTERM /readyz answers 503 at once; visor keeps accepting for
  // shutdown_delay (default 0 s), then stops accepting and finishes in-flight requests within
  // shutdown_timeout. The admin listener (listen.admin) answers until the process exits."
  it('/readyz 503 at once, /healthz 200; new connections served during the delay and refused after it; the in-flight request completes; exit 0', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      const ms = req.url === '/slow' ? 3000 * SLOW : 0;
      setTimeout(() => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end(req.url === '/slow' ? 'slow done' : 'ok'); }, ms);
    });
    const v = await startVisor(minimalYaml({
      upstream: up.addr,
      listen: 'admin: {{ADMIN}}',
      // the slow answer takes 3 s × SLOW: the drain must outlast it under valgrind too
      extra: `shutdown_delay: 2s\nshutdown_timeout: ${10 * SLOW}s\n`,
    }));
    assert.equal((await adminGet(v, '/readyz')).status, 200);
    const inflight = https({ port: v.ports.https, path: '/slow', timeoutMs: 8000 * SLOW });
    await until(() => up.requests.some((q) => q.url === '/slow'), 3000 * SLOW, 'the slow request to reach the upstream');

    const t0 = Date.now();
    v.terminate('SIGTERM');
    // at once: not ready, still alive
    await eventually(() => adminStatus(v, '/readyz'), 503, 300 * SLOW, '/readyz right after SIGTERM');
    const notReady = await adminGet(v, '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(typeof notReady.json().status, 'string');
    assert.equal(await adminStatus(v, '/healthz'), 200, '/healthz while draining');

    // during the delay: new HTTPS connections are accepted and answered
    for (const at of [200, 600]) {
      await delay(Math.max(0, t0 + at - Date.now()));
      const during = await https({ port: v.ports.https, path: '/during', timeoutMs: 2000 * SLOW })
        .catch((e) => assert.fail(`a new connection ${Date.now() - t0} ms after SIGTERM, within shutdown_delay: ${e.code || e.message}`));
      assert.equal(during.status, 200, 'served during shutdown_delay');
      assert.equal(during.text, 'ok');
    }

    // after the delay: refused; the admin listener still answers
    await delay(Math.max(0, t0 + 2500 - Date.now()));
    await assert.rejects(https({ port: v.ports.https, path: '/late', timeoutMs: 2000 * SLOW }), (e) => {
      assert.equal(e.code, 'ECONNREFUSED', `refused after the delay (${e.message})`);
      return true;
    });
    assert.equal(await adminStatus(v, '/healthz'), 200, '/healthz until the process exits');
    assert.equal(await adminStatus(v, '/readyz'), 503);

    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.text, 'slow done');
    assert.equal(await v.waitExit(10000 * SLOW), 0);
    assert.ok(!up.requests.some((q) => q.url === '/late'), 'the late request never reached the upstream');
  });
});

describe('a connection accepted before the drain but not yet asked anything', () => {
  afterEach(cleanupAll);

  // A connection accepted within shutdown_delay whose first request comes after the delay
  // (a slow handshake, a balancer's pre-opened connection) is served, with Connection:
  // close; it was closed unanswered when the listeners closed (seen under valgrind).
  it('its first request after the delay is answered 200 with Connection: close, then the process exits 0', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({
      upstream: up.addr,
      listen: 'admin: {{ADMIN}}',
      extra: 'shutdown_delay: 300ms\nshutdown_timeout: 10s\n',
    }));
    const keep = await rawConnect(v.ports.https);          // served once: an idle keep-alive
    await keep.write('GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await keep.waitFor(hasResponses(1), 5000 * SLOW, 'the first answer');
    v.terminate('SIGTERM');
    await eventually(() => adminStatus(v, '/readyz'), 503, 300 * SLOW, '/readyz right after SIGTERM');
    const fresh = await rawConnect(v.ports.https);         // accepted within the delay
    await delay(600);                                      // the delay is over: draining
    const idle = await keep.readUntilClose(3000 * SLOW);
    assert.equal(idle.timedOut, false, 'the idle keep-alive connection is closed by the drain');
    await fresh.write('GET /late-first HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const r = await fresh.readUntilClose(5000 * SLOW);
    assert.equal(r.timedOut, false, `closed after its answer; got ${JSON.stringify(r.text.slice(0, 300))}`);
    const [res] = r.responses();
    assert.ok(res, `an answer on the fresh connection; got ${JSON.stringify(r.text.slice(0, 300))}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.all('Connection'), ['close']);
    assert.ok(up.requests.some((q) => q.url === '/late-first'), 'the request reached the upstream');
    assert.equal(await v.waitExit(10000 * SLOW), 0);
  });
});

describe('SIGTERM without shutdown_delay (default 0 s)', () => {
  afterEach(cleanupAll);

  it('/readyz 503 and /healthz 200 while the in-flight request drains; new connections refused at once; exit 0', T, async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      setTimeout(() => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('slow done'); }, 2000 * SLOW);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}', extra: 'shutdown_timeout: 10s\n' }));
    const inflight = https({ port: v.ports.https, path: '/slow', timeoutMs: 8000 * SLOW });
    await until(() => up.requests.length === 1, 3000 * SLOW, 'the slow request to reach the upstream');
    v.terminate('SIGTERM');
    await eventually(() => adminStatus(v, '/readyz'), 503, 300 * SLOW, '/readyz right after SIGTERM');
    assert.equal(await adminStatus(v, '/healthz'), 200, '/healthz while the request drains');
    await delay(300);
    await assert.rejects(https({ port: v.ports.https, path: '/late', timeoutMs: 2000 * SLOW }), (e) => {
      assert.equal(e.code, 'ECONNREFUSED', `refused (${e.message})`);
      return true;
    });
    assert.equal(await adminStatus(v, '/healthz'), 200, '/healthz until the process exits');
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.text, 'slow done');
    assert.equal(await v.waitExit(10000 * SLOW), 0);
    assert.equal(up.requests.length, 1, 'the late request never reached the upstream');
  });
});

// ---- a stalled stdout reader -------------------------------------------------------------------

describe('a stdout reader that stops reading', () => {
  afterEach(cleanupAll);

  // Intended behaviour: "A stalled stdout/stderr reader costs log lines (counted in the metric
  // visor_log_dropped_total), never requests."
  it('every request is still answered promptly; the lost lines are counted; logging resumes with the reader', T, async () => {
    const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); });
    // one worker: its queue (1 MiB unwritten at most) is what must overflow
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}', extra: 'workers: 1\n' }));
    assert.equal((await https({ port: v.ports.https, path: '/before' })).status, 200);
    await until(() => v.accessLogs().length === 1, 3000 * SLOW, 'the first access line');
    v.pauseStdout();
    // ~2.2 KiB access lines; 1,200 of them is 2.6 MiB, far beyond node's read buffer, the
    // socket's and the worker's 1 MiB queue together
    const long = '/stall/' + 'x'.repeat(2000);
    const TOTAL = 1200;
    const CONC = 8;
    const BOUND = 2000 * SLOW;
    let sent = 0;
    const bad = [];
    let slowest = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: CONC }, async () => {
      const agent = keepAliveAgent();
      while (sent < TOTAL && bad.length === 0) {
        const n = sent++;
        const t = Date.now();
        try {
          const r = await https({ port: v.ports.https, path: `${long}?n=${n}`, agent, timeoutMs: BOUND });
          if (r.status !== 200) bad.push(`request ${n}: status ${r.status}`);
        } catch (e) {
          bad.push(`request ${n} (after ≈${Math.round((n * (long.length + 250)) / 1024)} KiB of access log): ${e.message.replace(long, '/stall/xxx…')}`);
        }
        slowest = Math.max(slowest, Date.now() - t);
      }
    }));
    assert.deepEqual(bad, [], `every request answered within ${BOUND} ms while nobody reads stdout (${sent} sent in ${Date.now() - t0} ms)`);
    assert.ok(slowest < BOUND, `slowest ${slowest} ms`);
    assert.equal((await adminGet(v, '/healthz')).status, 200);

    v.resumeStdout();
    await until(async () => {
      const m = (await adminGet(v, '/metrics')).text.match(/^visor_log_dropped_total\{stream="stdout"\} (\d+)$/m);
      return m && Number(m[1]) > 0;
    }, 3000 * SLOW, 'visor_log_dropped_total{stream="stdout"} > 0 on /metrics');
    // once the reader is back, a warning on stderr says how many were lost
    await v.waitForLog((j, l, stream) => stream === 'stderr' && j && /^log: \d+ lines dropped/.test(j.msg), 5000 * SLOW);
    // logging works again: a new request's line arrives
    const r = await https({ port: v.ports.https, path: '/after' });
    assert.equal(r.status, 200);
    const line = await v.accessLogFor(r.get('X-Request-Id'), 5000 * SLOW);
    assert.equal(line.path, '/after');
    assert.equal(line.status, 200);
    // every line that did come out is whole JSON
    const broken = v.stdout.filter((l) => l && !(() => { try { JSON.parse(l); return true; } catch { return false; } })());
    assert.deepEqual(broken.map((l) => l.slice(0, 120)), [], 'no torn log line');
    assert.equal(v.exitCode, undefined);
  });
});

// ---- findings of the whole-path fuzzer (tests/fuzz/fuzz_proxy.c), on real sockets --------
// Each left a client connection that no event would ever move on: held until
// client.idle_timeout at best (60 s by default), for ever at worst — a client-driven leak.
describe('stuck states the whole-path fuzzer found', () => {
  afterEach(cleanupAll);

  const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
  const WS_ACCEPT = crypto.createHash('sha1').update(`${WS_KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  const WS_HEAD = `GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const WS_101 = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${WS_ACCEPT}\r\n\r\n`;
  const BOUND = 3000 * SLOW;    // far below the 60 s idle timeout the stuck states waited for

  it('a bad chunk while scrub looks at an early 4xx answer: the client gets 400 and the connection closes', T, async () => {
    const up = await startRawUpstream(async (sock, { head }) => {
      await head();
      sock.write('HTTP/1.1 404 X\r\n\r\n{"a":1}');       // close-delimited, not over yet
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    await c.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab');
    await until(() => up.heads.length === 1, 5000 * SLOW, 'the upstream got the head');
    await delay(100);
    await c.write('cdX');                                   // X where CRLF must come
    const r = await c.readUntilClose(BOUND);
    assert.equal(r.timedOut, false, `closed within ${BOUND} ms; got ${JSON.stringify(r.text.slice(0, 300))}`);
    const [res] = r.responses();
    assertRawEdge(res, 400);
  });

  for (const when of ['after part of the body', 'before any body byte']) {
    it(`an answer that fits the peek window ${when}: sent with Connection: close, and the connection ends`, T, async () => {
      const up = await startRawUpstream(async (sock, { head }) => {
        await head();
        sock.write('HTTP/1.1 404 X\r\nContent-Length: 7\r\n\r\n{"a":1}');
      });
      const v = await startVisor(minimalYaml({ upstream: up.addr }));
      const c = await rawConnect(v.ports.https);
      const head = 'POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n';
      await c.write(when === 'before any body byte' ? head : `${head}abc`);
      const data = await c.waitFor(hasResponses(1), 5000 * SLOW, 'the early answer');
      const [res] = parseResponses(data);
      assert.equal(res.status, 404);
      assert.equal(res.headers.connection, 'close', 'the rest of the body will not be read: this stream ends');
      try { await c.write(when === 'before any body byte' ? 'abcdefghij' : 'defghij'); } catch { /* closed already */ }
      const r = await c.readUntilClose(BOUND);
      assert.equal(r.timedOut, false, `closed within ${BOUND} ms`);
    });
  }

  it('a WebSocket upstream that sends its 101, data and FIN in one go: the client gets it all, then the tunnel closes', T, async () => {
    const filler = 'x'.repeat(40000);                       // more than one 4 KiB read: the FIN rides along
    const up = await startRawUpstream(async (sock, { head }) => {
      await head();
      sock.end(WS_101 + filler);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    await c.write(WS_HEAD);
    const r = await c.readUntilClose(BOUND);
    assert.equal(r.timedOut, false, `the tunnel closed within ${BOUND} ms (received ${r.data.length} bytes)`);
    assert.ok(r.text.startsWith('HTTP/1.1 101 '), r.text.slice(0, 200));
    assert.ok(r.text.endsWith(filler), 'every byte the upstream sent before its FIN');
  });

  it('a client that half-closes before the 101 arrives: the tunnel closes both sides once it starts', T, async () => {
    let upClosed = null;
    let sent101 = 0;
    const up = await startRawUpstream(async (sock, { head }) => {
      sock.on('end', () => { upClosed = Date.now(); });
      sock.on('close', () => { upClosed ??= Date.now(); });
      await head();
      await delay(300);
      sock.write(WS_101);
      sent101 = Date.now();
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    await c.write(WS_HEAD);
    c.socket.end();                                          // FIN: "client EOF closes both"
    await until(() => sent101 > 0, 5000 * SLOW, 'the upstream sent its 101');
    await until(() => upClosed !== null, BOUND, 'visor closed the upstream side of the tunnel');
    const r = await c.readUntilClose(BOUND);
    assert.equal(r.timedOut, false);
    assert.ok(r.text.startsWith('HTTP/1.1 101 '), r.text.slice(0, 200));
  });
});
