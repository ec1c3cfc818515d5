// What container deployments lean on: lists from one ${VAR} (comma-separated, empty = none),
// listen.redirect_port for the public HTTPS port in the 301, and workers: auto narrowed by
// the CPU affinity the process gets.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  startVisor, startUpstream, writeConfigFile, http, https, minimalYaml, cleanupAll, track, until, VISOR_BIN, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 20000 * SLOW };

describe('deployment knobs', () => {
  afterEach(cleanupAll);

  it('a list key given as one ${VAR} splits on commas', T, async () => {
    const a = await startUpstream();
    const b = await startUpstream();
    const v = await startVisor({
      // the whole value is the variable (inside a YAML list it would stay one item)
      yaml: minimalYaml({ upstream: 'placeholder', extra: 'workers: 1\nclient:\n  trusted_proxies: "${TP}"\n' })
        .replace('servers: [placeholder]', 'servers: "${UPS}"'),
      env: { UPS: `${a.addr}, ${b.addr}`, TP: '10.0.0.0/8 , 127.0.0.1/32' },
    });
    for (let i = 0; i < 4; i++) assert.equal((await https({ port: v.ports.https, path: `/e${i}` })).status, 200);
    assert.equal(a.requests.length, 2);
    assert.equal(b.requests.length, 2);
    // 127.0.0.1 is trusted now: the client's X-Forwarded-For is believed
    const r = await https({ port: v.ports.https, path: '/xff', headers: { 'X-Forwarded-For': '203.0.113.9' } });
    assert.equal(r.status, 200);
    const got = [...a.requests, ...b.requests].find((q) => q.url === '/xff');
    assert.equal(got.header('x-real-ip'), '203.0.113.9');
  });

  it('an empty ${VAR} list is an empty list (no trusted proxy)', T, async () => {
    const a = await startUpstream();
    const v = await startVisor({
      yaml: minimalYaml({ upstream: a.addr, extra: 'client:\n  trusted_proxies: "${TP:-}"\n' }),
      env: {},
    });
    const r = await https({ port: v.ports.https, path: '/xff', headers: { 'X-Forwarded-For': '203.0.113.9' } });
    assert.equal(r.status, 200);
    assert.equal(a.requests[0].header('x-real-ip'), '127.0.0.1');
  });

  it('listen.redirect_port sets the port of the 301 (443 is left out)', T, async () => {
    const a = await startUpstream();
    for (const [port, want] of [[8443, 'https://example.test:8443/a?b=1'], [443, 'https://example.test/a?b=1']]) {
      const v = await startVisor(minimalYaml({ upstream: a.addr, listen: `http: {{HTTP}}\nredirect_port: ${port}` }));
      const r = await http({ port: v.ports.http, path: '/a?b=1', headers: { Host: 'example.test:80' } });
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, want);
      await v.stop();
    }
    assert.equal(a.requests.length, 0);
  });

  it('workers: auto follows the CPU affinity it is given (one CPU: one worker)', T, async (t) => {
    if (spawnSync('taskset', ['--version']).status !== 0) return t.skip('taskset not available');
    if (process.env.VISOR_WRAP) return t.skip('runs visor directly');
    const a = await startUpstream();
    const { file } = await writeConfigFile(minimalYaml({ upstream: a.addr, listen: 'http: {{HTTP}}', extra: 'workers: auto\n' }));
    const p = spawn('taskset', ['-c', '0', VISOR_BIN, '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    track(`taskset visor ${p.pid}`, async () => { p.kill('SIGKILL'); });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    await until(async () => /started/.test(err), 5000 * SLOW, 'the started line');
    assert.match(err, /started: 1 workers/);
    p.kill('SIGTERM');
  });
});
