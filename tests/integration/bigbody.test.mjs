// 200 MB through visor both ways, streamed: every byte arrives (SHA-256 on both ends) and
// visor's resident memory stays under 64 MB (VmRSS sampled every 100 ms; not under valgrind
// or a sanitizer, whose allocators hold memory on purpose).
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { startVisor, startUpstream, https, minimalYaml, cleanupAll, SLOW, SANITIZED } from './lib/harness.mjs';

const BIG = process.env.VISOR_WRAP ? 16 << 20 : 200 << 20; // valgrind: smaller, RSS not checked
const RSS_LIMIT_KB = 64 * 1024;

// Deterministic pseudo-random stream of `total` bytes; hash() is known when it has ended.
function generated(total) {
  const block = crypto.randomBytes(1 << 16);
  const h = crypto.createHash('sha256');
  let sent = 0;
  let n = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const len = Math.min(block.length, total - sent);
      const b = Buffer.from(block.subarray(0, len));
      b.writeUInt32BE(n++, 0);
      h.update(b);
      sent += len;
      this.push(b);
    },
  });
  stream.digest = () => h.digest('hex');
  return stream;
}

function sampleRss(v) {
  const s = { max: 0, samples: 0 };
  const t = setInterval(() => {
    const kb = v.rssKb();
    if (kb !== null) {
      s.samples++;
      s.max = Math.max(s.max, kb);
    }
  }, 100);
  s.stop = () => clearInterval(t);
  return s;
}

describe('200 MB bodies in bounded memory', () => {
  afterEach(cleanupAll);

  it(`uploads ${BIG >> 20} MB: the upstream gets every byte, visor stays under 64 MB RSS`, { timeout: 180000 * SLOW }, async () => {
    const up = await startUpstream();
    const v = await startVisor(minimalYaml({ upstream: up.addr, client: 'max_body_size: 1g', upstreamExtra: 'timeout: 120s' }));
    const body = generated(BIG);
    const rss = sampleRss(v);
    let r;
    try {
      r = await https({ port: v.ports.https, method: 'POST', path: '/upload', body, headers: { 'Content-Length': String(BIG), 'Content-Type': 'application/octet-stream' }, timeoutMs: 170000 * SLOW, idleTimeoutMs: 10000 * SLOW });
    } finally {
      rss.stop();
    }
    assert.equal(r.status, 200);
    assert.equal(r.json().bodyLength, BIG);
    assert.equal(r.json().bodySha256, body.digest());
    assert.ok(rss.samples > 0);
    if (!process.env.VISOR_WRAP && !SANITIZED) assert.ok(rss.max < RSS_LIMIT_KB, `max RSS ${rss.max} kB`);
    if (process.env.VISOR_IT_DEBUG) process.stderr.write(`max RSS ${rss.max} kB over ${rss.samples} samples\n`);
  });

  it(`downloads ${BIG >> 20} MB: the client gets every byte, visor stays under 64 MB RSS`, { timeout: 180000 * SLOW }, async () => {
    let digest = null;
    const up = await startUpstream((req, res) => {
      req.resume();
      const src = generated(BIG);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(BIG) });
      src.on('end', () => {
        digest = src.digest();
      });
      src.pipe(res);
    });
    const v = await startVisor(minimalYaml({ upstream: up.addr, upstreamExtra: 'timeout: 120s' }));
    const rss = sampleRss(v);
    let r;
    try {
      r = await https({ port: v.ports.https, path: '/download', hashBody: true, timeoutMs: 170000 * SLOW, idleTimeoutMs: 10000 * SLOW });
    } finally {
      rss.stop();
    }
    assert.equal(r.status, 200);
    assert.equal(r.bodyLength, BIG);
    assert.equal(r.bodySha256, digest);
    assert.ok(rss.samples > 0);
    if (!process.env.VISOR_WRAP && !SANITIZED) assert.ok(rss.max < RSS_LIMIT_KB, `max RSS ${rss.max} kB`);
    if (process.env.VISOR_IT_DEBUG) process.stderr.write(`max RSS ${rss.max} kB over ${rss.samples} samples\n`);
  });
});
