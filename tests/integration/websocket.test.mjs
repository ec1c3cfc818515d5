// Protocol switches (WebSocket): the handshake goes through the filter chain like any
// request, a 101 from the upstream turns the connection into a byte tunnel both ways, and
// nothing else ever gets an Upgrade through.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import {
  startVisor, startUpstream, minimalYaml, rawConnect, rawTls, parseResponses, hasResponses, cleanupAll, track,
  SLOW, REQUEST_ID,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = crypto.createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

// An upstream whose 'upgrade' handler answers 101 and then echoes every byte upper-cased,
// or `mode` 'refuse' (a plain 403), or 'close-after' (101, echo once, close).
async function wsUpstream(mode = 'echo') {
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers, upgraded: false });
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('ok');
  });
  srv.on('upgrade', (req, socket, head) => {
    seen.push({ url: req.url, headers: req.headers, upgraded: true });
    if (mode === 'refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${ACCEPT}\r\nX-Powered-By: Express\r\n\r\n`);
    if (head.length) socket.write(Buffer.from(head.toString('latin1').toUpperCase(), 'latin1'));
    socket.on('data', (d) => {
      socket.write(Buffer.from(d.toString('latin1').toUpperCase(), 'latin1'));
      if (mode === 'close-after') socket.end();
    });
    socket.on('error', () => {});
  });
  const sockets = new Set();
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  track(`ws upstream ${port}`, async () => { for (const s of sockets) s.destroy(); await new Promise((r) => srv.close(r)); });
  return { addr: `127.0.0.1:${port}`, seen };
}

const HANDSHAKE = (extra = '') => 'GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: https://localhost\r\n${extra}\r\n`;

// Reads from a raw connection until `pred(buffer)` holds.
const readUntil = (c, pred, ms = 5000 * SLOW) => c.waitFor(pred, ms);

describe('WebSocket upgrades', () => {
  afterEach(cleanupAll);

  it('the handshake is forwarded with Upgrade and Connection, the 101 comes back, then bytes flow both ways', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    c.write(HANDSHAKE());
    const head = (await readUntil(c, (b) => b.includes('\r\n\r\n'))).toString('latin1');
    const [status, ...lines] = head.split('\r\n\r\n')[0].split('\r\n');
    assert.equal(status, 'HTTP/1.1 101 Switching Protocols');
    const h = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    assert.equal(h['upgrade'], 'websocket');
    assert.equal(h['connection'], 'upgrade');
    assert.equal(h['sec-websocket-accept'], ACCEPT);
    assert.match(h['x-request-id'], REQUEST_ID);
    assert.equal(h['x-powered-by'], undefined);
    assert.equal(h['content-length'], undefined);
    assert.equal(h['transfer-encoding'], undefined);
    const fwd = up.seen.find((s) => s.upgraded);
    assert.ok(fwd, 'the upstream got the upgrade');
    assert.equal(fwd.headers.upgrade, 'websocket');
    assert.equal(fwd.headers.connection, 'upgrade');
    assert.equal(fwd.headers['sec-websocket-key'], KEY);
    assert.equal(fwd.headers['x-forwarded-proto'], 'https');
    const before = c.data.length;
    c.write('hello tunnel');
    await readUntil(c, (b) => b.length >= before + 12);
    assert.equal(c.data.subarray(before).toString(), 'HELLO TUNNEL');
    // a megabyte each way, in one write: backpressure, no loss
    const big = Buffer.alloc(1 << 20, 'abcdefgh');
    const at = c.data.length;
    c.write(big);
    await readUntil(c, (b) => b.length >= at + big.length, 15000 * SLOW);
    assert.ok(c.data.subarray(at).equals(Buffer.alloc(1 << 20, 'ABCDEFGH')));
    c.destroy();
  });

  it('the access log has the handshake with status 101', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    c.write(HANDSHAKE());
    await readUntil(c, (b) => b.includes('\r\n\r\n'));
    await v.waitForLog((j) => j && j.type === 'access' && j.status === 101 && j.path === '/chat', 5000 * SLOW, { stream: 'stdout' });
    c.destroy();
  });

  it('the upstream closing the tunnel closes the client connection', T, async () => {
    const up = await wsUpstream('close-after');
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const c = await rawConnect(v.ports.https);
    c.write(HANDSHAKE());
    await readUntil(c, (b) => b.includes('\r\n\r\n'));
    await c.write('bye');
    const r = await c.readUntilClose(5000 * SLOW);
    assert.equal(r.closed, true, 'closed after the upstream closed');
    assert.ok(r.data.toString().endsWith('BYE'));
  });

  it('an upstream refusing the upgrade: its answer is relayed, no tunnel', T, async () => {
    const up = await wsUpstream('refuse');
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await rawTls(v.ports.https, HANDSHAKE(), { until: hasResponses(1) });
    const [res] = parseResponses(r.data, { eof: false });
    assert.equal(res.status, 403);
  });

  it('Upgrade without Connection: upgrade is a plain request: Upgrade is not forwarded', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await rawTls(v.ports.https, 'GET /plain HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n');
    const [res] = parseResponses(r.data);
    assert.equal(res.status, 200);
    assert.equal(up.requests[0].header('upgrade'), undefined);
  });

  it('a 101 to a request that did not ask to switch is a 502', T, async () => {
    const { startRawUpstream } = await import('./lib/harness.mjs');
    const up = await startRawUpstream(async (socket, ctx) => {
      await ctx.head();
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    const v = await startVisor(minimalYaml({ upstream: `127.0.0.1:${up.port}` }));
    const r = await rawTls(v.ports.https, 'GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (b) => b.includes('}') });
    const [res] = parseResponses(r.data, { eof: false });
    assert.equal(res.status, 502);
  });

  it('the handshake meets the route\'s auth: no token, no tunnel', T, async () => {
    const up = await wsUpstream();
    const key = crypto.createHmac('sha256', 'k').update('x').digest('hex');  // 64 chars
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: `jwt:\n  algorithms: [HS256]\n  keys:\n    - secret: "${key}"\nroutes:\n  - path: /\n    auth: required\n` }));
    const r = await rawTls(v.ports.https, HANDSHAKE(), { until: hasResponses(1) });
    const [res] = parseResponses(r.data, { eof: false });
    assert.equal(res.status, 401);
    assert.equal(up.seen.length, 0);
  });
});

describe('upgrades other than WebSocket', () => {
  afterEach(cleanupAll);

  it('h2c smuggling: Upgrade: h2c is never forwarded, the request is answered as HTTP/1.1', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await rawTls(v.ports.https, 'GET /admin HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\n' +
      'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n', { until: hasResponses(1) });
    const [res] = parseResponses(r.data, { eof: false });
    assert.equal(res.status, 200);
    const seen = up.seen[0];
    assert.equal(seen.upgraded, false, 'the upstream saw a plain request');
    assert.equal(seen.headers.upgrade, undefined);
    assert.equal(seen.headers['http2-settings'], undefined);
  });

  it('two Upgrade headers: no tunnel', T, async () => {
    const up = await wsUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr }));
    const r = await rawTls(v.ports.https, HANDSHAKE('Upgrade: h2c\r\n'), { until: hasResponses(1) });
    const [res] = parseResponses(r.data, { eof: false });
    assert.equal(res.status, 200);
    assert.equal(up.seen[0].upgraded, false);
  });
});
