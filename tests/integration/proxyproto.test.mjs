// PROXY protocol (issue 13 part 2; docs/deployment.md "Behind an L4 load balancer",
// docs/security.md "Who may send a PROXY header"): `listen.proxy_protocol: [CIDRs]` on the
// https and http listeners. Real senders: HAProxy from Debian in TCP mode with `send-proxy`
// (v1) and `send-proxy-v2` in front of visor, clients bound to 127.0.0.2 / 127.0.0.3 so the
// upstream, the rate limit and the access log must see those and not HAProxy's 127.0.0.1.
// Hand-made bytes over a raw socket for what HAProxy will not send: spoofed v1/v2 addresses,
// TLVs, LOCAL, UNKNOWN, a header one byte at a time, no header, a header that never ends,
// garbage, and a PROXY header from a peer that is not listed. After every fault the next
// connection is served and the harness checks fds / connections_active return to baseline.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import {
  startVisor, startUpstream, https, http, minimalYaml, parseResponses, getCerts, freePort,
  cleanupAll, track, until, delay, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 60000 * SLOW };
// client.header_timeout for the fault tests: long enough that an immediate close is told
// apart from a timed-out one even under valgrind
const HT = SLOW > 1 ? 4000 : 1000;
const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

// ---- bytes ------------------------------------------------------------------------------

const v1 = (line) => Buffer.from(`${line}\r\n`, 'latin1');

function ip4(s) {
  return Buffer.from(s.split('.').map(Number));
}

function ip6(s) {
  // only the forms the tests use: "2001:db8::7"
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

const port2 = (p) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(p);
  return b;
};

const tlv = (type, value) => Buffer.concat([Buffer.from([type]), port2(value.length), value]);

// A v2 header: command 1 = PROXY, 0 = LOCAL; fam 0x11 TCP4, 0x21 TCP6, 0x00 UNSPEC.
function v2(cmd, fam, block) {
  return Buffer.concat([SIG, Buffer.from([0x20 | cmd, fam]), port2(block.length), block]);
}

const v2tcp4 = (src, sport, dst, dport, tlvs = Buffer.alloc(0)) =>
  v2(1, 0x11, Buffer.concat([ip4(src), ip4(dst), port2(sport), port2(dport), tlvs]));
const v2tcp6 = (src, sport, dst, dport) =>
  v2(1, 0x21, Buffer.concat([ip6(src), ip6(dst), port2(sport), port2(dport)]));

// ---- clients ----------------------------------------------------------------------------

// A TCP connection to `port` (from `localAddress`), the header written in `chunks` (one
// write each, `gapMs` apart), then — unless `useTls` is false — TLS over the same socket.
// Resolves with the (TLS) socket once usable.
async function ppConnect(port, chunks, { localAddress = '127.0.0.1', useTls = true, gapMs = 0 } = {}) {
  const raw = net.connect({ port, host: '127.0.0.1', localAddress });
  raw.setNoDelay(true);
  const untrack = track('proxyproto raw socket', async () => {
    untrack();
    raw.destroy();
  });
  await new Promise((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  for (const c of chunks) {
    raw.write(c);
    if (gapMs) await delay(gapMs);
  }
  if (!useTls) return raw;
  const s = tls.connect({ socket: raw, servername: 'localhost', ca: getCerts().caPem });
  await new Promise((resolve, reject) => {
    s.once('secureConnect', resolve);
    s.once('error', reject);
  });
  return s;
}

// Sends one request (Connection: close) over `s` and returns the parsed answer.
function exchange(s, path = '/', headers = '') {
  return new Promise((resolve, reject) => {
    const parts = [];
    s.on('data', (d) => parts.push(d));
    s.once('error', reject);
    s.once('close', () => {
      const rs = parseResponses(Buffer.concat(parts));
      resolve(rs[0]);
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}Connection: close\r\n\r\n`);
  });
}

async function ppRequest(port, header, opts = {}) {
  const chunks = Array.isArray(header) ? header : [header];
  const s = await ppConnect(port, chunks, opts);
  return exchange(s, opts.path || '/', opts.headers || '');
}

// Writes `bytes` from `localAddress` and waits for the server to close. Resolves with what
// came back and how long the close took.
async function sendAndWaitClose(port, bytes, { localAddress = '127.0.0.1', timeoutMs = 10000 * SLOW } = {}) {
  const t0 = Date.now();
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  const untrack = track('proxyproto raw socket', async () => {
    untrack();
    s.destroy();
  });
  const parts = [];
  s.on('data', (d) => parts.push(d));
  s.on('error', () => {});
  await new Promise((resolve) => s.once('connect', resolve));
  if (bytes.length) s.write(bytes);
  const closed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  s.destroy();
  untrack();
  return { closed, ms: Date.now() - t0, data: Buffer.concat(parts) };
}

async function refusedCount(v) {
  const r = await http({ port: v.ports.admin, path: '/metrics' });
  const m = r.text.match(/^visor_proxy_protocol_refused_total (\d+)$/m);
  assert.ok(m, 'visor_proxy_protocol_refused_total on /metrics');
  return Number(m[1]);
}

function xffOf(up, i = -1) {
  const r = up.requests.at(i);
  return { xff: r.header('x-forwarded-for'), realIp: r.header('x-real-ip') };
}

async function accessFor(v, pathname) {
  const r = await v.waitForLog((j) => j && j.type === 'access' && j.path === pathname, 5000 * SLOW,
    { stream: 'stdout' });
  return r.json;
}

const ppYaml = (up, { client = '', extra = '', list = '[127.0.0.1]' } = {}) => minimalYaml({
  upstream: up.addr,
  listen: `http: {{HTTP}}\nadmin: {{ADMIN}}\nproxy_protocol: ${list}`,
  client,
  extra,
});

// ---- HAProxy ----------------------------------------------------------------------------

function haproxyBin() {
  for (const p of [process.env.HAPROXY, '/usr/sbin/haproxy', '/usr/bin/haproxy']) {
    if (p && fs.existsSync(p)) return p;
  }
  const r = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const HAPROXY = haproxyBin();
const noHaproxy = HAPROXY ? false :
  'haproxy not found (Debian: apt-get install haproxy; `make deps` / tests/tools/install-deps.sh install it)';

// HAProxy in TCP mode: front `v1` forwards to visor's https port with send-proxy, front
// `v2` with send-proxy-v2, front `v2http` to the plain listener with send-proxy-v2.
async function startHaproxy(v) {
  const ports = { v1: await freePort(), v2: await freePort(), v2http: await freePort() };
  const cfg = path.join(v.dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global',
    '  maxconn 200',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
    `frontend v1\n  bind 127.0.0.1:${ports.v1}\n  default_backend v1`,
    `backend v1\n  server visor 127.0.0.1:${v.ports.https} send-proxy`,
    `frontend v2\n  bind 127.0.0.1:${ports.v2}\n  default_backend v2`,
    `backend v2\n  server visor 127.0.0.1:${v.ports.https} send-proxy-v2`,
    `frontend v2http\n  bind 127.0.0.1:${ports.v2http}\n  default_backend v2http`,
    `backend v2http\n  server visor 127.0.0.1:${v.ports.http} send-proxy-v2`,
    '',
  ].join('\n'));
  const proc = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exitedP = new Promise((r) => proc.on('close', () => { exited = true; r(); }));
  const stop = async () => {
    if (!exited) {
      proc.kill('SIGTERM');
      await Promise.race([exitedP, delay(5000)]);
      if (!exited) proc.kill('SIGKILL');
      await exitedP;
    }
  };
  // registered after visor: cleaned up first, so visor's leak check sees HAProxy gone
  const untrack = track('haproxy', async () => {
    untrack();
    await stop();
  }, () => {
    if (!exited) proc.kill('SIGKILL');
  });
  await until(async () => {
    if (exited) throw new Error(`haproxy exited:\n${out}`);
    return new Promise((resolve) => {
      const s = net.connect({ port: ports.v2, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
  }, 10000 * SLOW, 'haproxy listening');
  return { ports, stop, log: () => out };
}

describe('PROXY protocol behind HAProxy (send-proxy, send-proxy-v2)', { skip: noHaproxy }, () => {
  afterEach(cleanupAll);

  for (const [front, name] of [['v1', 'send-proxy (v1)'], ['v2', 'send-proxy-v2']]) {
    it(`${name}: the upstream, X-Real-IP and the access log see the client, not HAProxy`, T, async () => {
      const up = await startUpstream();
      const v = await startVisor(ppYaml(up));
      const hp = await startHaproxy(v);
      for (const [src, p] of [['127.0.0.2', `/a-${front}`], ['127.0.0.3', `/b-${front}`]]) {
        const r = await https({ port: hp.ports[front], path: p, localAddress: src });
        assert.equal(r.status, 200, hp.log());
        assert.deepEqual(xffOf(up), { xff: src, realIp: src });
        const a = await accessFor(v, p);
        assert.equal(a.client_ip, src);
      }
      // a keep-alive connection keeps its client for every request on it
      const agentReqs = [];
      const s = await new Promise((resolve, reject) => {
        const t = tls.connect({ port: hp.ports[front], host: '127.0.0.1', localAddress: '127.0.0.2',
          servername: 'localhost', ca: getCerts().caPem }, () => resolve(t));
        t.once('error', reject);
      });
      track('tls', async () => s.destroy());
      const got = [];
      s.on('data', (d) => got.push(d));
      s.write('GET /ka1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /ka2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await new Promise((resolve) => s.once('close', resolve));
      const rs = parseResponses(Buffer.concat(got), { methods: ['GET', 'GET'] });
      assert.deepEqual(rs.map((x) => x.status), [200, 200]);
      agentReqs.push(...up.requests.slice(-2).map((x) => x.header('x-forwarded-for')));
      assert.deepEqual(agentReqs, ['127.0.0.2', '127.0.0.2']);
      assert.equal(await refusedCount(v), 0);
      await hp.stop();
    });
  }

  it('send-proxy-v2 to the plain listener: the redirect and /healthz see the client', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up));
    const hp = await startHaproxy(v);
    const r = await http({ port: hp.ports.v2http, path: '/plain-x', localAddress: '127.0.0.3' });
    assert.equal(r.status, 301);
    const a = await accessFor(v, '/plain-x');
    assert.equal(a.client_ip, '127.0.0.3');
    await hp.stop();
  });

  it('an ip rate limit counts each real client, not HAProxy', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up, {
      extra: 'rate_limits:\n  per_ip: { limit: 2, window: 60s, key: ip }\nroutes:\n  - path: /\n    rate_limits: [per_ip]\n',
    }));
    const hp = await startHaproxy(v);
    const st = async (front, src) =>
      (await https({ port: hp.ports[front], path: '/rl', localAddress: src })).status;
    assert.deepEqual([await st('v1', '127.0.0.2'), await st('v2', '127.0.0.2'), await st('v1', '127.0.0.2')],
      [200, 200, 429]);
    // another client behind the same balancer has its own budget
    assert.deepEqual([await st('v2', '127.0.0.3'), await st('v1', '127.0.0.3'), await st('v2', '127.0.0.3')],
      [200, 200, 429]);
    assert.equal(up.requests.length, 4);
    assert.deepEqual(up.requests.map((x) => x.header('x-forwarded-for')),
      ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);
    await hp.stop();
  });
});

describe('PROXY protocol, hand-made headers', () => {
  afterEach(cleanupAll);

  it('v1 and v2 source addresses become the client for XFF, X-Real-IP and the access log', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up));
    const cases = [
      ['/v1-tcp4', v1('PROXY TCP4 203.0.113.7 192.0.2.1 51000 443'), '203.0.113.7'],
      ['/v1-tcp6', v1('PROXY TCP6 2001:db8::7 2001:db8::1 51000 443'), '2001:db8::7'],
      ['/v1-mapped', v1('PROXY TCP6 ::ffff:198.51.100.4 ::1 51000 443'), '198.51.100.4'],
      ['/v2-tcp4', v2tcp4('198.51.100.9', 40000, '192.0.2.1', 443), '198.51.100.9'],
      ['/v2-tcp6', v2tcp6('2001:db8::9', 40000, '2001:db8::1', 443), '2001:db8::9'],
      // TLVs as AWS NLB and HAProxy send them: PP2_TYPE_SSL (with a VERSION sub-TLV),
      // NOOP, AWS VPC endpoint id; skipped, not interpreted
      ['/v2-tlvs', v2tcp4('192.0.2.77', 40000, '192.0.2.1', 443, Buffer.concat([
        tlv(0x20, Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), tlv(0x21, Buffer.from('TLSv1.3'))])),
        tlv(0x04, Buffer.alloc(0)),
        tlv(0xea, Buffer.from('\x01vpce-0123456789abcdef', 'latin1')),
      ])), '192.0.2.77'],
      // LOCAL (the balancer's own check) and UNKNOWN / UNSPEC keep the socket's address
      ['/v2-local', v2(0, 0x11, Buffer.concat([ip4('203.0.113.99'), ip4('192.0.2.1'), port2(1), port2(2)])), '127.0.0.1'],
      ['/v2-unspec', v2(1, 0x00, Buffer.alloc(0)), '127.0.0.1'],
      ['/v1-unknown', v1('PROXY UNKNOWN'), '127.0.0.1'],
      ['/v1-unknown-rest', v1('PROXY UNKNOWN ffff::1 ffff::2 1 2'), '127.0.0.1'],
    ];
    for (const [p, hdr, want] of cases) {
      const r = await ppRequest(v.ports.https, hdr, { path: p });
      assert.equal(r.status, 200, p);
      assert.deepEqual(xffOf(up), { xff: want, realIp: want }, p);
      assert.equal((await accessFor(v, p)).client_ip, want, p);
    }
    // the client's own X-Forwarded-For is not believed: the PROXY address is the peer
    const r = await ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.8 192.0.2.1 1 443'),
      { path: '/spoof', headers: 'X-Forwarded-For: 10.9.9.9\r\n' });
    assert.equal(r.status, 200);
    assert.deepEqual(xffOf(up), { xff: '203.0.113.8', realIp: '203.0.113.8' });
    assert.equal(await refusedCount(v), 0);
  });

  it('a header sent one byte at a time (v1 and v2), and one in the same packet as the ClientHello', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up));
    const h1 = v1('PROXY TCP4 203.0.113.21 192.0.2.1 5555 443');
    let r = await ppRequest(v.ports.https, [...h1].map((b) => Buffer.from([b])), { path: '/slow-v1', gapMs: 3 });
    assert.equal(r.status, 200);
    assert.equal(xffOf(up).xff, '203.0.113.21');
    const h2 = v2tcp6('2001:db8::21', 5555, '2001:db8::1', 443);
    r = await ppRequest(v.ports.https, [...h2].map((b) => Buffer.from([b])), { path: '/slow-v2', gapMs: 3 });
    assert.equal(r.status, 200);
    assert.equal(xffOf(up).xff, '2001:db8::21');
    // header and the first HTTP bytes in one write, on the plain listener (no TLS to wait
    // for): visor must not swallow what follows the header
    const s = await ppConnect(v.ports.http, [], { useTls: false });
    const got = [];
    s.on('data', (d) => got.push(d));
    s.write(Buffer.concat([v1('PROXY TCP4 203.0.113.22 192.0.2.1 5555 80'),
      Buffer.from('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')]));
    await new Promise((resolve) => s.once('close', resolve));
    const [hr] = parseResponses(Buffer.concat(got));
    assert.equal(hr.status, 200);
    assert.equal((await accessFor(v, '/healthz')).client_ip, '203.0.113.22');
  });

  it('a listed peer without a header, with garbage, or cut short is closed, counted and logged; the next connection works', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up, { client: `header_timeout: ${HT}ms` }));
    const base = await refusedCount(v);
    // a plain TLS client (ClientHello first): closed at its first byte, nothing answered
    let c = await sendAndWaitClose(v.ports.https, Buffer.from('160301020001', 'hex'));
    assert.ok(c.closed && c.data.length === 0 && c.ms < HT * 0.9, JSON.stringify(c));
    // an HTTP request on the plain listener
    c = await sendAndWaitClose(v.ports.http, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(c.closed && c.data.length === 0 && c.ms < HT * 0.9, JSON.stringify(c));
    // garbage after a good start; a bad v2 (UDP); a v2 whose TLV overruns the header
    for (const bad of [
      Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n'),
      Buffer.from('PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n', 'latin1'),
      v2(1, 0x12, Buffer.concat([ip4('1.2.3.4'), ip4('5.6.7.8'), port2(1), port2(2)])),
      v2(1, 0x11, Buffer.concat([ip4('1.2.3.4'), ip4('5.6.7.8'), port2(1), port2(2), Buffer.from([1, 0, 9, 65])])),
      Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]),
    ]) {
      c = await sendAndWaitClose(v.ports.https, bad);
      assert.ok(c.closed && c.data.length === 0 && c.ms < HT * 0.9, `${bad.toString('hex')}: ${JSON.stringify(c)}`);
    }
    // a header that never completes: closed after client.header_timeout
    c = await sendAndWaitClose(v.ports.https, Buffer.from('PROXY TCP4 1.2.3.4 '));
    assert.ok(c.closed && c.data.length === 0 && c.ms >= HT * 0.9 && c.ms < HT + 4000 * SLOW, JSON.stringify(c));
    // connected, nothing sent: the same timeout
    c = await sendAndWaitClose(v.ports.https, Buffer.alloc(0));
    assert.ok(c.closed && c.ms >= HT * 0.9 && c.ms < HT + 4000 * SLOW, JSON.stringify(c));
    // cut short: the peer closes inside the header
    const s = net.connect({ port: v.ports.https, host: '127.0.0.1' });
    await new Promise((resolve) => s.once('connect', resolve));
    s.end(Buffer.from('PROXY TCP6 2001:db8::'));
    await new Promise((resolve) => s.once('close', resolve));
    await until(async () => (await refusedCount(v)) === base + 10, 5000 * SLOW, 'ten refusals counted');
    await v.waitForLog((j) => j && /PROXY protocol: closed a connection from 127\.0\.0\.1.*v1: bad destination port/.test(j.msg || ''),
      5000 * SLOW, { stream: 'stderr' });
    await v.waitForLog((j) => j && /no PROXY header within client\.header_timeout/.test(j.msg || ''),
      5000 * SLOW, { stream: 'stderr' });
    // a connect-and-close with no byte (a balancer's TCP health check) is not a refusal
    c = await sendAndWaitClose(v.ports.https, Buffer.alloc(0), { timeoutMs: 200 });
    await delay(200);
    assert.equal(await refusedCount(v), base + 10);
    // and the next connection is served
    const r = await ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.30 192.0.2.1 1 443'), { path: '/after' });
    assert.equal(r.status, 200);
    assert.equal(xffOf(up).xff, '203.0.113.30');
  });

  it('a peer that is not listed may not send a header: TLS fails, HTTP gets 400; its own requests use its own address', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up, { list: '[127.0.0.1, 127.0.0.2]' }));
    const base = await refusedCount(v);
    const from = { localAddress: '127.0.0.9' };
    // HTTPS: the PROXY line is where the ClientHello should be
    await assert.rejects(ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.40 192.0.2.1 1 443'), from));
    await assert.rejects(ppRequest(v.ports.https, v2tcp4('203.0.113.41', 1, '192.0.2.1', 443), from));
    // plain HTTP: the PROXY line is a malformed request line
    let c = await sendAndWaitClose(v.ports.http,
      Buffer.concat([v1('PROXY TCP4 203.0.113.42 192.0.2.1 1 80'), Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')]), from);
    assert.ok(c.closed, JSON.stringify(c));
    assert.equal(parseResponses(c.data)[0].status, 400);
    c = await sendAndWaitClose(v.ports.http, Buffer.concat([v2tcp4('203.0.113.43', 1, '192.0.2.1', 80),
      Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')]), from);
    assert.ok(c.closed, JSON.stringify(c));
    assert.equal(parseResponses(c.data)[0].status, 400);
    assert.equal(up.requests.length, 0);
    // not a listed peer's fault: nothing counted
    assert.equal(await refusedCount(v), base);
    // the unlisted peer without a header is served as itself
    const r = await https({ port: v.ports.https, path: '/direct', localAddress: '127.0.0.9' });
    assert.equal(r.status, 200);
    assert.deepEqual(xffOf(up), { xff: '127.0.0.9', realIp: '127.0.0.9' });
    // and a listed one with a header still works
    const r2 = await ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.44 192.0.2.1 1 443'), { localAddress: '127.0.0.2' });
    assert.equal(r2.status, 200);
    assert.equal(xffOf(up).xff, '203.0.113.44');
  });

  it('SIGHUP applies a new list to new connections', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(ppYaml(up, { list: '[127.0.0.2]' }));
    assert.equal((await https({ port: v.ports.https, path: '/before' })).status, 200);
    assert.equal(xffOf(up).xff, '127.0.0.1');
    await v.writeConfig(ppYaml(up, { list: '[127.0.0.1]' }));
    v.hup();
    let r;
    await until(async () => {
      r = await ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.60 192.0.2.1 1 443'), { path: '/after' })
        .catch(() => null);
      return r && r.status === 200;
    }, 5000 * SLOW, 'the new list in force');
    assert.equal(xffOf(up).xff, '203.0.113.60');
    // 127.0.0.1 is now a listed peer: without a header it is refused
    await assert.rejects(https({ port: v.ports.https, path: '/direct' }));
    assert.equal(await refusedCount(v), 1);
  });

  it('without listen.proxy_protocol nothing changes: a PROXY line is just bad TLS', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, listen: 'admin: {{ADMIN}}' }));
    await assert.rejects(ppRequest(v.ports.https, v1('PROXY TCP4 203.0.113.50 192.0.2.1 1 443')));
    const r = await https({ port: v.ports.https, path: '/' });
    assert.equal(r.status, 200);
    assert.equal(xffOf(up).xff, '127.0.0.1');
    assert.equal(await refusedCount(v), 0);
  });
});
