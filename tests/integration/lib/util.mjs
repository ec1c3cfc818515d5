// Small helpers shared by the harness and the tests: timing, text, process registry.
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// Every harness timeout is multiplied by this when visor runs under a wrapper (valgrind).
export const SLOW = process.env.VISOR_WRAP ? 5 : 1;

export const delay = (ms) => sleep(ms);

// Strips the common leading indentation of a template literal, so YAML can be written
// indented inside test code.
export function dedent(text) {
  const lines = String(text).replace(/^\n/, '').replace(/\n[ \t]*$/, '').split('\n');
  const ind = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)[0].length));
  return lines.map((l) => l.slice(Number.isFinite(ind) ? ind : 0)).join('\n') + '\n';
}

// Resolves when pred() returns truthy (polled), rejects with `what` after timeoutMs.
export async function until(pred, timeoutMs, what = 'condition', everyMs = 20) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- resource registry ---------------------------------------------------------
// Everything a test starts (visor, upstreams, redis, agents) registers a cleanup here.
// Test files call cleanupAll() from afterEach; anything left at process exit is SIGKILLed.

const live = new Set();

// `last`: cleaned after everything else (visor goes last, so that when it is stopped its
// clients and upstreams are already gone and nothing legitimately holds its drain).
export function track(name, cleanup, killSync, { last = false } = {}) {
  const r = { name, cleanup, killSync, last };
  live.add(r);
  return () => live.delete(r);
}

export async function cleanupAll() {
  const errors = [];
  const all = [...live].reverse();
  for (const r of [...all.filter((x) => !x.last), ...all.filter((x) => x.last)]) {
    live.delete(r);
    try {
      await r.cleanup();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const e = new Error(`${errors.length} cleanup failures:\n` + errors.map((x) => x.stack || String(x)).join('\n---\n'));
    throw e;
  }
}

function killAllSync() {
  for (const r of live) {
    try {
      if (r.killSync) r.killSync();
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killAllSync);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    killAllSync();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
  });
}
