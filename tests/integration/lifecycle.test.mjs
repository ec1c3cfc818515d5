// Process lifecycle (docs/operations.md, "Signals"): SIGTERM/SIGINT drain, shutdown_timeout, SIGHUP
// reload of configuration and certificates under traffic, an invalid file on reload.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startVisor, startUpstream, startRawUpstream, https, keepAliveAgent, tlsConnect, minimalYaml,
  assertSecurityHeaders, cleanupAll, getCerts, ALT_NAME, SLOW, delay, until, track,
} from './lib/harness.mjs';

const T = { timeout: 30000 * SLOW };

function slowUpstream(ms) {
  return startUpstream((req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('slow done');
    }, ms);
  });
}

describe('SIGTERM / SIGINT drain', () => {
  afterEach(cleanupAll);

  for (const sig of ['SIGTERM', 'SIGINT']) {
    it(`${sig}: the in-flight request completes, new connections are refused, exit 0`, T, async () => {
      const up = await slowUpstream(1500);
      const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'shutdown_timeout: 5s\n' }));
      const inflight = https({ port: v.ports.https, path: '/slow' });
      await until(() => up.requests.length === 1, 5000 * SLOW, 'the request to reach the upstream');
      v.terminate(sig);
      await delay(300);
      await assert.rejects(https({ port: v.ports.https, path: '/late' }), (e) => {
        assert.equal(e.code, 'ECONNREFUSED');
        return true;
      });
      const r = await inflight;
      const answeredAt = Date.now();
      assert.equal(r.status, 200);
      assert.equal(r.text, 'slow done');
      assertSecurityHeaders(r);
      assert.equal(await v.waitExit(6000 * SLOW), 0);
      assert.ok(Date.now() >= answeredAt);
      assert.equal(up.requests.length, 1, 'the late request never reached the upstream');
    });
  }

  it('exits promptly when only idle keep-alive connections are open', T, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, extra: 'shutdown_timeout: 5s\n' }));
    const agent = keepAliveAgent();
    const r = await https({ port: v.ports.https, agent });
    assert.equal(r.status, 200);
    const closed = new Promise((resolve) => r.socket.once('close', resolve));
    const t0 = Date.now();
    v.terminate('SIGTERM');
    assert.equal(await v.waitExit(6000 * SLOW), 0);
    assert.ok(Date.now() - t0 < 2000 * SLOW, `exit took ${Date.now() - t0} ms with an idle connection`);
    await closed;
  });

  it('shutdown_timeout bounds the drain', T, async () => {
    const up = await startRawUpstream(() => {}); // never answers
    const v = await startVisor(minimalYaml({ upstream: up.addr, upstreamExtra: 'timeout: 30s', extra: 'shutdown_timeout: 1s\n' }));
    const inflight = https({ port: v.ports.https, path: '/never' }).then((r) => r, (e) => e);
    await until(() => up.heads.length === 1, 5000 * SLOW, 'the request to reach the upstream');
    const t0 = Date.now();
    v.terminate('SIGTERM');
    assert.equal(await v.waitExit(5000 * SLOW), 0);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 3500 * SLOW, `exit ${took} ms after SIGTERM with shutdown_timeout 1s`);
    const outcome = await Promise.race([inflight, delay(2000).then(() => 'hang')]);
    assert.notEqual(outcome, 'hang', 'the client is not left hanging');
  });
});

const REFERRER = (v) => `
  headers:
    Referrer-Policy: ${v}
`;

describe('SIGHUP reload', () => {
  afterEach(cleanupAll);

  it('reloads under traffic: no failed request, no dropped connection, new header value after the reload', { timeout: 60000 * SLOW }, async () => {
    const up = await startUpstream();
    const yaml = (val) => minimalYaml({ upstream: up.addr, extra: REFERRER(val) });
    const v = await startVisor(yaml('strict-origin'));
    const CLIENTS = 20;
    const DURATION = 3000 * SLOW;
    const results = [];
    const failures = [];
    const start = Date.now();
    let hupAt = null;
    const client = async (i) => {
      const agent = keepAliveAgent();
      const ports = new Set();
      while (Date.now() - start < DURATION) {
        const t = Date.now();
        try {
          const r = await https({ port: v.ports.https, path: `/c${i}`, agent });
          ports.add(r.localPort);
          results.push({ t, status: r.status, value: r.get('Referrer-Policy') });
          if (r.status !== 200) failures.push(`client ${i}: status ${r.status}`);
        } catch (e) {
          failures.push(`client ${i}: ${e.code || e.message}`);
        }
      }
      return ports.size;
    };
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
    await delay(DURATION / 2);
    await v.writeConfig(yaml('same-origin'));
    hupAt = Date.now();
    v.hup();
    const socketsPerClient = await Promise.all(clients);

    assert.deepEqual(failures, []);
    assert.ok(results.length >= CLIENTS * 10, `only ${results.length} requests`);
    const values = new Set(results.map((r) => r.value));
    for (const val of values) assert.ok(['strict-origin', 'same-origin'].includes(val), `unexpected value ${val}`);
    assert.ok(results.some((r) => r.t < hupAt && r.value === 'strict-origin'), 'old value before the reload');
    const late = results.filter((r) => r.t > hupAt + 1000 * SLOW);
    assert.ok(late.length > 0, 'requests after the reload');
    assert.deepEqual([...new Set(late.map((r) => r.value))], ['same-origin'], 'new value on every request a second after SIGHUP');
    assert.deepEqual(socketsPerClient, Array(CLIENTS).fill(1), 'each client kept its one connection');
    assert.equal(v.exitCode, undefined, 'still running');
  });

  it('survives repeated reloads during new TLS handshakes: every connection is served', T, async () => {
    const up = await startUpstream();
    const yaml = (val) => minimalYaml({ upstream: up.addr, extra: REFERRER(val) });
    const v = await startVisor(yaml('strict-origin'));
    const failures = [];
    let done = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        try {
          const r = await https({ port: v.ports.https, path: '/hs' }); // a new connection each time
          if (r.status !== 200) failures.push(`status ${r.status}`);
          done++;
        } catch (e) {
          failures.push(e.code || e.message);
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    for (let i = 0; i < 30; i++) {
      await delay(50 * SLOW);
      if (i % 3 === 0) await v.writeConfig(yaml(i % 2 ? 'strict-origin' : 'same-origin'));
      v.hup();
    }
    await delay(300 * SLOW);
    stop = true;
    await Promise.all(clients);
    assert.equal(v.exitCode, undefined, `visor died: ${v.describe()}`);
    assert.deepEqual(failures, []);
    assert.ok(done >= 20, `only ${done} requests`);
  });

  it('an invalid file on SIGHUP is logged on stderr and the old configuration keeps serving', T, async () => {
    const up = await startUpstream();
    const good = (val) => minimalYaml({ upstream: up.addr, extra: REFERRER(val) });
    const v = await startVisor(good('strict-origin'));
    const errorsBefore = v.stderrJson.filter((j) => j.level === 'error').length;
    await v.writeConfig(good('same-origin').replace('upstream:', 'upstreams:'));
    v.hup();
    await v.waitForLog((j, line, stream) => stream === 'stderr' && j && j.level === 'error', 5000 * SLOW);
    assert.ok(v.stderrJson.filter((j) => j.level === 'error').length > errorsBefore);
    await delay(200);
    const r = await https({ port: v.ports.https });
    assert.equal(r.status, 200);
    assert.deepEqual(r.all('Referrer-Policy'), ['strict-origin']);
    assert.equal(v.exitCode, undefined, 'still running');

    // a valid file afterwards is taken
    await v.writeConfig(good('same-origin'));
    v.hup();
    await until(async () => (await https({ port: v.ports.https })).get('Referrer-Policy') === 'same-origin', 5000 * SLOW, 'the valid reload');
  });

  it('a reload can move traffic to another upstream', T, async () => {
    const a = await startUpstream();
    const b = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: a.addr }));
    assert.equal((await https({ port: v.ports.https, path: '/1' })).status, 200);
    await v.writeConfig(minimalYaml({ upstream: b.addr }));
    v.hup();
    await until(async () => {
      await https({ port: v.ports.https, path: '/probe' });
      return b.requests.length > 0;
    }, 5000 * SLOW, 'requests to reach the new upstream', 100);
    const before = a.requests.length;
    for (let i = 0; i < 3; i++) assert.equal((await https({ port: v.ports.https, path: '/after' })).status, 200);
    assert.equal(a.requests.length, before, 'the old upstream gets nothing after the reload');
  });

  // Regression: a reload carrying another `workers` swapped the generation, and the shutdown
  // then freed that many workers, reading past the array of those started.
  it('a reload that changes `workers` is applied except for the count, and SIGTERM still exits 0', T, async () => {
    const a = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: a.addr, extra: 'workers: 1\n' }));
    assert.equal((await https({ port: v.ports.https, path: '/1' })).status, 200);
    await v.writeConfig(minimalYaml({ upstream: a.addr, extra: 'workers: 16\nheaders: { Referrer-Policy: same-origin }\n' }));
    v.hup();
    await v.waitForLog((j) => j && /take effect only after a restart/.test(j.msg || ''), 5000 * SLOW);
    await until(async () => (await https({ port: v.ports.https, path: '/probe' })).get('Referrer-Policy') === 'same-origin',
      5000 * SLOW, 'the reloaded headers', 100);
    v.terminate('SIGTERM');
    assert.equal(await v.waitExit(8000 * SLOW), 0);
    assert.equal(v.exitSignal, null);
  });

  it('re-reads the certificate files', T, async () => {
    const c = getCerts();
    const up = await startUpstream();
    const v0 = minimalYaml({ upstream: up.addr }).replace('cert: {{CERT}}', 'cert: {{DIR}}/tls.crt').replace('key: {{KEY}}', 'key: {{DIR}}/tls.key');
    // the files must exist before visor starts: write them into the dir startVisor creates
    const v = await startVisorWithFiles(v0, { 'tls.crt': c.cert, 'tls.key': c.key });
    const cn = async () => {
      const s = await tlsConnect(v.ports.https, { servername: ALT_NAME, rejectUnauthorized: false });
      const name = s.getPeerCertificate().subject.CN;
      s.destroy();
      return name;
    };
    assert.equal(await cn(), 'localhost');
    fs.copyFileSync(c.altCert, path.join(v.dir, 'tls.crt'));
    fs.copyFileSync(c.altKey, path.join(v.dir, 'tls.key'));
    v.hup();
    await until(async () => (await cn()) === ALT_NAME, 5000 * SLOW, 'the new certificate', 100);
    const r = await https({ port: v.ports.https, servername: ALT_NAME, headers: { Host: ALT_NAME } });
    assert.equal(r.status, 200);
  });
});

// startVisor with files copied into its private dir first ({{DIR}} in the YAML refers to it).
async function startVisorWithFiles(yaml, files) {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-files-'));
  for (const [name, src] of Object.entries(files)) fs.copyFileSync(src, path.join(dir, name));
  const v = await startVisor(yaml.replaceAll('{{DIR}}', dir));
  v.dir = dir;
  track(`files ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  return v;
}
