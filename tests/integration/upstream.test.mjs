// Upstream side of the core (issue 2 item 4): round robin, a refusing server taken out and
// probed back, 502 when none answers, TLS re-encryption with verification, keep-alive pool
// reuse and its bound, a pooled connection the server closed while idle.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import nodeHttps from 'node:https';
import nodeHttp from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  startVisor, startUpstream, https, keepAliveAgent, minimalYaml, deadPort, getCerts, echoHandler,
  assertEdge, until, delay, cleanupAll, track, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

async function get(v, path = '/x', extra = {}) {
  return https({ port: v.ports.https, path, ...extra });
}

describe('upstream servers', () => {
  afterEach(cleanupAll);

  it('round robin: two servers share the requests', T, async () => {
    const a = await startUpstream();
    const b = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: [a.addr, b.addr], extra: 'workers: 1\n' }));
    for (let i = 0; i < 20; i++) assert.equal((await get(v, `/rr${i}`)).status, 200);
    assert.equal(a.requests.length + b.requests.length, 20);
    // strict alternation from one worker: 10 each
    assert.equal(a.requests.length, 10);
    assert.equal(b.requests.length, 10);
  });

  it('a server refusing connections is taken out, the request goes to the next one, and it is probed back', T, async () => {
    const a = await startUpstream();
    const port = await deadPort();
    const v = await startVisor(minimalYaml({ upstream: [`127.0.0.1:${port}`, a.addr], extra: 'workers: 1\n' }));
    for (let i = 0; i < 6; i++) {
      const r = await get(v, `/f${i}`);
      assert.equal(r.status, 200, `request ${i}`);
    }
    assert.equal(a.requests.length, 6);
    await v.waitForLog((j) => j && /taken out/.test(j.msg || ''), 5000 * SLOW, { stream: 'stderr' });
    // the dead server comes back on its port: the probe (1 s backoff) finds it
    let hits = 0;
    const back = nodeHttp.createServer((req, res) => { hits++; res.end('{}'); });
    await new Promise((r) => back.listen(port, '127.0.0.1', r));
    track(`back ${port}`, async () => { back.closeAllConnections(); await new Promise((r) => back.close(r)); });
    await until(async () => {
      await get(v, '/probe');
      return hits > 0;
    }, 8000 * SLOW, 'traffic to reach the server that came back', 200);
  });

  it('no server accepts: 502 edge answer, nothing hangs', T, async () => {
    const p1 = await deadPort();
    const p2 = await deadPort();
    const v = await startVisor(minimalYaml({ upstream: [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`] }));
    const r = await get(v);
    assertEdge(r, 502);
  });

  // Regression: the tried-set was a 32-bit mask, so with 33+ failing servers failover never
  // ended and the request was never answered.
  it('40 servers, none accepting: 502 promptly, twice, and visor stays up', T, async () => {
    const ports = [];
    for (let i = 0; i < 40; i++) ports.push(`127.0.0.1:${await deadPort()}`);
    const v = await startVisor(minimalYaml({ upstream: ports, extra: 'workers: 1\n' }));
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const r = await get(v, `/many-${i}`);
      assertEdge(r, 502);
      assert.ok(Date.now() - t0 < 5000 * SLOW, `answered after ${Date.now() - t0} ms`);
    }
    assert.equal(v.exitCode, undefined, 'still running');
  });

  it('keepalive: 0 sends Connection: close and opens a connection per request', T, async () => {
    const a = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: a.addr, upstreamExtra: 'keepalive: 0', extra: 'workers: 1\n' }));
    for (let i = 0; i < 3; i++) assert.equal((await get(v)).status, 200);
    assert.deepEqual(a.requests.map((q) => q.header('connection')), ['close', 'close', 'close']);
    assert.equal(a.connections, 3);
  });

  it('the pool keeps at most `keepalive` idle connections per worker', T, async () => {
    // answers after 150 ms, so 8 parallel requests need 8 upstream connections
    const a = await startUpstream((req, res) => {
      req.resume();
      setTimeout(() => res.end('{}'), 150);
    });
    const v = await startVisor(minimalYaml({ upstream: a.addr, upstreamExtra: 'keepalive: 2', extra: 'workers: 1\n' }));
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => get(v, `/p${i}`)));
    for (const r of rs) assert.equal(r.status, 200);
    assert.ok(a.connections >= 2, `${a.connections} connections`);
    await until(async () => a.sockets.size <= 2, 3000 * SLOW, 'idle upstream connections to drop to 2', 50);
    await delay(300);
    assert.ok(a.sockets.size <= 2, `${a.sockets.size} upstream connections kept`);
  });

  it('a pooled connection the server closed while idle is not used: the next request still succeeds', T, async () => {
    const a = await startUpstream();
    a.server.keepAliveTimeout = 150;    // Node closes idle keep-alive sockets after 150 ms
    const v = await startVisor(minimalYaml({ upstream: a.addr, extra: 'workers: 1\n' }));
    for (let i = 0; i < 4; i++) {
      assert.equal((await get(v, `/idle${i}`)).status, 200, `request ${i}`);
      await delay(400);
    }
    assert.equal(a.requests.length, 4);
  });
});

describe('a client that goes away', () => {
  afterEach(cleanupAll);

  // docs/architecture.md: a connection that breaks before the answer is logged as 499 and the
  // upstream request is abandoned; a half-close after a complete request is still answered.
  async function slowVisor(ms) {
    const up = await startUpstream((req, res) => {
      setTimeout(() => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('late'); }, ms);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'workers: 1\n' }));
    return { up, v };
  }

  function connectTls(port) {
    return new Promise((resolve, reject) => {
      const raw = net.connect(port, '127.0.0.1', () => {
        const s = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => resolve({ raw, s }));
        s.on('error', () => {});
      });
      raw.on('error', reject);
    });
  }

  it('a reset while the upstream works: access log 499, visor goes on', T, async () => {
    const { up, v } = await slowVisor(400 * SLOW);
    const { raw, s } = await connectTls(v.ports.https);
    s.write('GET /gone HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await until(() => up.requests.length === 1, 3000 * SLOW, 'the request reached the upstream');
    raw.resetAndDestroy();
    await until(() => v.accessLogs().some((j) => j.path === '/gone'), 3000 * SLOW, 'the access log line');
    const line = v.accessLogs().find((j) => j.path === '/gone');
    assert.equal(line.status, 499);
    const r = await get(v, '/next');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'late');
  });

  it('a half-close after a complete request still gets the answer', T, async () => {
    const { v } = await slowVisor(200 * SLOW);
    const { s } = await connectTls(v.ports.https);
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    const closed = new Promise((r) => s.on('close', r));
    s.end('GET /half HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await closed;
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.match(got, /\r\n\r\n4\r\nlate\r\n0\r\n\r\n$/);
    await until(() => v.accessLogs().some((j) => j.path === '/half'), 3000 * SLOW, 'the access log line');
    assert.equal(v.accessLogs().find((j) => j.path === '/half').status, 200);
  });

  // Regression (found by the proxy fuzz target): the EOF event comes once, while the first
  // request is in progress; the pipelined request after it, cut short, waited for
  // idle_timeout (60 s) instead of being aborted when its turn came.
  it('a half-close after a complete request and a cut one: the first is answered, the second aborted (499) at once', T, async () => {
    const { v } = await slowVisor(300 * SLOW);
    const { s } = await connectTls(v.ports.https);
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    const closed = new Promise((r) => s.on('close', r));
    const t0 = Date.now();
    s.end('GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n' +
      'POST /cut HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc');
    await closed;
    assert.ok(Date.now() - t0 < 3000 * SLOW, `closed ${Date.now() - t0} ms after the half-close`);
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.equal((got.match(/HTTP\/1\.1 /g) || []).length, 1, 'one answer only');
    await until(() => v.accessLogs().some((j) => j.path === '/cut'), 3000 * SLOW, 'the access log line of the cut request');
    assert.equal(v.accessLogs().find((j) => j.path === '/first').status, 200);
    assert.equal(v.accessLogs().find((j) => j.path === '/cut').status, 499);
  });
});

describe('upstream TLS re-encryption', () => {
  afterEach(cleanupAll);

  async function tlsUpstream() {
    const c = getCerts();
    const srv = nodeHttps.createServer({ key: fs.readFileSync(c.key), cert: fs.readFileSync(c.cert) }, (req, res) => {
      const body = JSON.stringify({ url: req.url, encrypted: !!req.socket.encrypted, servername: req.socket.servername || null });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const sockets = new Set();
    srv.on('secureConnection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    track(`tls upstream ${srv.address().port}`, async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    });
    return { port: srv.address().port, addr: `127.0.0.1:${srv.address().port}`, ca: c.ca };
  }

  it('verify with the right CA: 200, the upstream saw TLS and the configured SNI', T, async () => {
    const u = await tlsUpstream();
    const v = await startVisor(minimalYaml({ upstream: u.addr, upstreamExtra: `tls: { verify: true, ca: ${u.ca}, server_name: localhost }` }));
    const r = await get(v, '/secure');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { url: '/secure', encrypted: true, servername: 'localhost' });
  });

  it('verify against the IP in the certificate when no server_name is set', T, async () => {
    const u = await tlsUpstream();
    const v = await startVisor(minimalYaml({ upstream: u.addr, upstreamExtra: `tls: { verify: true, ca: ${u.ca} }` }));
    const r = await get(v, '/ip');
    assert.equal(r.status, 200);
    assert.equal(r.json().servername, null, 'no SNI for an IP literal');
  });

  it('a certificate that does not match server_name: 502, never a silent downgrade', T, async () => {
    const u = await tlsUpstream();
    const v = await startVisor(minimalYaml({ upstream: u.addr, upstreamExtra: `tls: { verify: true, ca: ${u.ca}, server_name: api.elsewhere.test }` }));
    assertEdge(await get(v), 502);
  });

  it('an untrusted CA (system store only): 502', T, async () => {
    const u = await tlsUpstream();
    const v = await startVisor(minimalYaml({ upstream: u.addr, upstreamExtra: 'tls: { verify: true }' }));
    assertEdge(await get(v), 502);
  });

  it('a plain-HTTP upstream configured for TLS: 502', T, async () => {
    const a = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: a.addr, upstreamExtra: 'tls: { verify: false }' }));
    assertEdge(await get(v), 502);
  });

  it('verify: false accepts the certificate and keeps the connection for the next request', T, async () => {
    const u = await tlsUpstream();
    const v = await startVisor(minimalYaml({ upstream: u.addr, upstreamExtra: 'tls: { verify: false }', extra: 'workers: 1\n' }));
    const agent = keepAliveAgent();
    for (let i = 0; i < 3; i++) assert.equal((await get(v, `/k${i}`, { agent })).status, 200);
    agent.destroy();
  });
});

describe('methods refused at the edge', () => {
  afterEach(cleanupAll);

  it('TRACE: 405 with Allow, never forwarded (cross-site tracing)', T, async () => {
    const a = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: a.addr }));
    const r = await https({ port: v.ports.https, method: 'TRACE', path: '/x', headers: { Cookie: 'sid=secret' } });
    assertEdge(r, 405, { message: 'Method not allowed' });
    assert.equal(r.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    assert.equal(a.requests.length, 0);
    assert.ok(!r.body.includes('secret'));
  });
});
