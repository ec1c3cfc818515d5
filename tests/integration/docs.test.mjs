// docs/configuration.md is generated from the parser's own table (make docs); this fails when
// the committed page and the binary disagree, so the reference cannot drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { REPO, VISOR_BIN } from './lib/harness.mjs';

test('docs/configuration.md is what `visor --config-reference` prints, after its header', () => {
  const page = fs.readFileSync(path.join(REPO, 'docs/configuration.md'), 'utf8');
  const head = fs.readFileSync(path.join(REPO, 'docs/configuration.head.md'), 'utf8');
  const gen = execFileSync(VISOR_BIN, ['--config-reference'], { encoding: 'utf8' });
  assert.equal(page, head + gen, 'run `make docs` and commit docs/configuration.md');
});

test('every top-level key of the reference configuration has a row', () => {
  const gen = execFileSync(VISOR_BIN, ['--config-reference'], { encoding: 'utf8' });
  for (const k of ['listen', 'workers', 'shutdown_timeout', 'tls', 'upstream', 'client', 'hsts', 'headers',
    'remove_headers', 'cors', 'redis', 'jwt', 'rate_limits', 'rate_limit_headers', 'lockout', 'routes',
    'errors', 'probes', 'log']) {
    assert.match(gen, new RegExp('\\| `' + k + '` \\|'), k);
  }
});
