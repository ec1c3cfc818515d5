// Upstreams that move (issue 13 part 3): host names in upstream.servers are resolved by
// visor's own resolver (evdns) against a DNS server started here (lib/dns.mjs, answering
// with short TTLs), followed on their TTL, several records balanced, a failed lookup keeping
// the last good set, /readyz 503 while a name has no address, connections to an address
// that went away drained. The upstreams are real Node servers on the loopback aliases
// 127.0.0.2 and 127.0.0.3 (Linux answers on all of 127/8 without setup), on one port.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import nodeHttp from 'node:http';
import {
  startVisor, runVisor, writeConfigFile, https, http, keepAliveAgent, minimalYaml, until, delay,
  cleanupAll, track, SLOW,
} from './lib/harness.mjs';
import { startDns } from './lib/dns.mjs';

const T = { timeout: 60000 * SLOW };
const NAME = 'app.visor.test';

// A Node upstream on host:port that answers {"host": ...}; /slow?ms=N waits N ms first.
async function startAt(host, port = 0) {
  const up = { host, requests: 0, sockets: new Set() };
  const server = nodeHttp.createServer((req, res) => {
    up.requests++;
    const m = /^\/slow\?ms=(\d+)/.exec(req.url);
    const body = JSON.stringify({ host, url: req.url });
    const send = () => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    req.resume();
    req.on('end', () => (m ? setTimeout(send, Number(m[1])) : send()));
  });
  server.keepAliveTimeout = 30000;
  server.on('connection', (s) => {
    up.sockets.add(s);
    s.on('close', () => up.sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  up.port = server.address().port;
  up.close = () => new Promise((resolve) => {
    for (const s of up.sockets) s.destroy();
    server.close(() => resolve());
  });
  const untrack = track(`upstream ${host}:${up.port}`, async () => {
    untrack();
    await up.close();
  });
  return up;
}

// Two upstreams on one port: 127.0.0.2 and 127.0.0.3 (retried if the port is taken on .3).
async function startPair() {
  for (let i = 0; ; i++) {
    const a = await startAt('127.0.0.2');
    try {
      const b = await startAt('127.0.0.3', a.port);
      return [a, b];
    } catch (e) {
      await a.close();
      if (i === 5) throw e;
    }
  }
}

function yaml(dns, port, { min = '200ms', max = '2s', workers = 2, servers } = {}) {
  return minimalYaml({
    upstream: servers || `${NAME}:${port}`,
    listen: 'admin: {{ADMIN}}',
    upstreamExtra: `resolve: { min: ${min}, max: ${max}, nameservers: ["${dns.addr}"] }`,
    extra: `workers: ${workers}\n`,
  });
}

const get = (v, path = '/x', extra = {}) => https({ port: v.ports.https, path, ...extra });
const readyz = (v) => http({ port: v.ports.admin, path: '/readyz' });
const metrics = async (v) => (await http({ port: v.ports.admin, path: '/metrics' })).text;
const hostOf = (r) => JSON.parse(r.text).host;
const parse = (l) => {
  try {
    return JSON.parse(l);
  } catch {
    return null;
  }
};
// "lookup failed" lines (for `why`), among the stderr lines from index `from` on
const failLines = (v, why, from = 0) => v.stderr.slice(from).map(parse).filter((j) => j && /lookup failed/.test(j.msg || '') && (!why || j.msg.includes(`(${why})`)));

describe('upstream host names followed by DNS', () => {
  afterEach(cleanupAll);

  it('/readyz is 503 with the reason while the name has no address, then 200; requests 502 then 200', T, async () => {
    const dns = await startDns();
    const [a] = await startPair();
    dns.set(NAME, { mode: 'servfail' });
    const v = await startVisor(yaml(dns, a.port));
    // evdns reports a SERVFAIL as a timeout (resolve.c)
    await until(() => failLines(v, 'timeout or SERVFAIL').length > 0, 5000 * SLOW, 'the failed lookup logged');
    const r1 = await readyz(v);
    assert.equal(r1.status, 503);
    assert.deepEqual(r1.json(), { status: 'not ready', reason: `upstream name ${NAME}:${a.port} has no address yet (timeout or SERVFAIL)` });
    const e = await get(v, '/early');
    assert.equal(e.status, 502);
    assert.equal(a.requests, 0);
    assert.match(await metrics(v), new RegExp(`visor_upstream_dns_addresses\\{name="${NAME}:${a.port}"\\} 0\\n`));

    dns.set(NAME, { a: ['127.0.0.2'], ttl: 1 });
    await until(async () => (await readyz(v)).status === 200, 8000 * SLOW, '/readyz → 200 once the name resolves', 100);
    const r = await get(v, '/late');
    assert.equal(r.status, 200);
    assert.equal(hostOf(r), '127.0.0.2');
    const m = await metrics(v);
    assert.match(m, new RegExp(`visor_upstream_dns_addresses\\{name="${NAME}:${a.port}"\\} 1\\n`));
    assert.match(m, new RegExp(`visor_upstream_dns_changes_total\\{name="${NAME}:${a.port}"\\} 1\\n`));
    assert.ok(v.stderrJson.some((j) => /resolves again after \d+ failed lookup/.test(j.msg || '')), 'recovery logged');
  });

  it('the address changes under load: every request answered, in-flight ones too, the old address drained', T, async () => {
    const dns = await startDns();
    const [a, b] = await startPair();
    dns.set(NAME, { a: ['127.0.0.2'], ttl: 1 });
    const v = await startVisor(yaml(dns, a.port, { min: '1s', max: '60s' }));
    await until(async () => (await readyz(v)).status === 200, 5000 * SLOW, 'ready', 100);

    // four keep-alive clients in a loop
    const results = [];
    let stop = false;
    const loops = [];
    for (let c = 0; c < 4; c++) {
      const agent = keepAliveAgent();
      loops.push((async () => {
        for (let i = 0; !stop; i++) {
          const t = Date.now();
          try {
            const r = await get(v, `/c${c}/${i}`, { agent });
            results.push({ t, status: r.status, host: r.status === 200 ? hostOf(r) : null });
          } catch (err) {
            results.push({ t, status: 0, err: String(err) });
          }
        }
        agent.destroy();
      })());
    }
    await delay(700);
    // a request in flight on the old address while the answer changes
    const slow = get(v, '/slow?ms=2500');
    await until(() => a.requests > 0 && [...a.sockets].length > 0, 2000, 'the slow request reached a');
    await delay(100);
    const tSwitch = Date.now();
    dns.set(NAME, { a: ['127.0.0.3'], ttl: 1 });
    // followed within the TTL (1 s, the floor) plus a lookup
    await until(() => results.some((x) => x.t > tSwitch && x.host === '127.0.0.3'), 4000 * SLOW, 'traffic on 127.0.0.3');
    const tSeen = Date.now();
    const s = await slow;
    assert.equal(s.status, 200, 'the request in flight during the switch got its answer');
    assert.equal(hostOf(s), '127.0.0.2');
    // the old address is drained: its pooled connections are closed by visor
    await until(() => a.sockets.size === 0, 5000 * SLOW, 'every connection to 127.0.0.2 closed');
    const aBefore = a.requests;
    await a.close();
    await delay(1000);
    stop = true;
    await Promise.all(loops);

    const failed = results.filter((x) => x.status !== 200);
    assert.deepEqual(failed, [], 'no request failed');
    const afterTtl = results.filter((x) => x.t > tSeen + 200);
    assert.ok(afterTtl.length > 20, `requests after the switch: ${afterTtl.length}`);
    assert.ok(afterTtl.every((x) => x.host === '127.0.0.3'), 'every request after the switch went to the new address');
    assert.equal(a.requests, aBefore, 'nothing reached the old address once drained');
    assert.ok(tSeen - tSwitch < 3500 * SLOW, `followed in ${tSeen - tSwitch} ms`);
    assert.ok(b.requests > 0);
    assert.ok(v.stderrJson.some((j) => (j.msg || '').includes(`upstream name ${NAME}:${a.port} now resolves to 127.0.0.3:${a.port} (was: 127.0.0.2:${a.port}`)), 'change logged');
  });

  it('a failed lookup (SERVFAIL, NXDOMAIN, timeout) keeps the last good addresses, logged once per streak and counted', T, async () => {
    const dns = await startDns();
    const [a] = await startPair();
    dns.set(NAME, { a: ['127.0.0.2'], ttl: 0 });
    const v = await startVisor(yaml(dns, a.port, { min: '200ms', max: '400ms' }));
    await until(async () => (await readyz(v)).status === 200, 5000 * SLOW, 'ready', 100);
    const key = `${NAME}:${a.port}`;
    for (const [mode, why] of [['servfail', 'timeout or SERVFAIL'], ['nxdomain', 'NXDOMAIN'], ['timeout', 'timeout or SERVFAIL']]) {
      const from = v.stderr.length;
      dns.set(NAME, { mode });
      await until(() => failLines(v, why, from).length > 0, 8000 * SLOW, `a ${why} logged`);
      const before = dns.count(NAME, 'A');
      // a few more failed lookups (every 400 ms at most; a timeout takes 2 x 2 s)
      await until(() => dns.count(NAME, 'A') >= before + 2, 10000 * SLOW, 'more lookups');
      for (let i = 0; i < 5; i++) {
        const r = await get(v, `/${mode}/${i}`);
        assert.equal(r.status, 200, `${mode}: request ${i}`);
        assert.equal(hostOf(r), '127.0.0.2');
      }
      assert.equal((await readyz(v)).status, 200, `${mode}: still ready`);
      assert.equal(failLines(v, null, from).length, 1, `${mode}: one line for the streak`);
      assert.ok(failLines(v, why, from)[0].msg.includes('keeping its 1 address'), failLines(v, why, from)[0].msg);
      // the streak ends: the next one is logged again
      dns.set(NAME, { a: ['127.0.0.2'], ttl: 0 });
      await until(() => v.stderrJson.filter((j) => /resolves again/.test(j.msg || '')).length >= ['servfail', 'nxdomain', 'timeout'].indexOf(mode) + 1,
        8000 * SLOW, 'recovery');
    }
    const m = await metrics(v);
    const fails = Number(new RegExp(`visor_upstream_dns_failures_total\\{name="${key}"\\} (\\d+)`).exec(m)[1]);
    assert.ok(fails >= 6, `failures counted: ${fails}`);
    assert.match(m, new RegExp(`visor_upstream_dns_changes_total\\{name="${key}"\\} 1\\n`), 'the set never changed');
    const lookups = Number(new RegExp(`visor_upstream_dns_lookups_total\\{name="${key}"\\} (\\d+)`).exec(m)[1]);
    assert.ok(lookups > fails, `lookups ${lookups}`);
  });

  it('several records are several servers, balanced like listed ones; TTL floor respected', T, async () => {
    const dns = await startDns();
    const [a, b] = await startPair();
    dns.set(NAME, { a: ['127.0.0.2', '127.0.0.3'], ttl: 0 });
    const v = await startVisor(yaml(dns, a.port, { workers: 1, min: '1s', max: '5s' }));
    await until(async () => (await readyz(v)).status === 200, 5000 * SLOW, 'ready', 100);
    const seen = { '127.0.0.2': 0, '127.0.0.3': 0 };
    for (let i = 0; i < 20; i++) {
      const r = await get(v, `/rr${i}`);
      assert.equal(r.status, 200);
      seen[hostOf(r)]++;
    }
    assert.deepEqual(seen, { '127.0.0.2': 10, '127.0.0.3': 10 });
    assert.equal(a.requests + b.requests, 20);
    // TTL 0 is clamped to min (1 s): about one lookup a second, not a flood
    const n0 = dns.count(NAME, 'A');
    await delay(2500);
    const n = dns.count(NAME, 'A') - n0;
    assert.ok(n >= 1 && n <= 4, `A lookups in 2.5 s: ${n}`);
    // one record goes away: only the other gets traffic
    dns.set(NAME, { a: ['127.0.0.3'], ttl: 1 });
    await until(async () => (await readyz(v)).status === 200 && /visor_upstream_dns_addresses\{[^}]*\} 1\n/.test(await metrics(v)),
      5000 * SLOW, 'one address left');
    const b0 = b.requests;
    for (let i = 0; i < 6; i++) assert.equal(hostOf(await get(v, `/one${i}`)), '127.0.0.3');
    assert.equal(b.requests - b0, 6);
  });

  it('literal addresses are not looked up; visor -t needs no DNS', T, async () => {
    const dns = await startDns();
    const [a] = await startPair();
    const v = await startVisor(yaml(dns, a.port, { servers: `127.0.0.2:${a.port}` }));
    assert.equal((await readyz(v)).status, 200);
    assert.equal((await get(v)).status, 200);
    await delay(300);
    assert.equal(dns.queries.length, 0);
    assert.doesNotMatch(await metrics(v), /visor_upstream_dns/);

    // a name that resolves nowhere: the check only looks at its syntax
    const { file } = await writeConfigFile(minimalYaml({
      upstream: 'no-such-host.invalid:3000',
      upstreamExtra: 'resolve: { min: 2s, max: 30s }',
    }));
    const t = runVisor(['-t', '-c', file]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.summary, /test is successful/);
    const bad = await writeConfigFile(minimalYaml({ upstream: '127.0.0.1:3000', upstreamExtra: 'resolve: { min: 10s, max: 5s }' }));
    const t2 = runVisor(['-t', '-c', bad.file]);
    assert.equal(t2.code, 1);
    assert.match(t2.stderr, /upstream\.resolve: max \(5s\) is below min \(10s\)/);
  });
});
