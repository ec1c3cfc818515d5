// Helpers for the body-check tests (body.test.mjs): schema files, a config with body routes,
// JSON requests and byte-exact comparisons with what the upstream received.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { minimalYaml } from './harness.mjs';
import { track, dedent } from './util.mjs';

export const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Writes a schema file (an object is JSON-encoded with 2-space indentation, a string is written
// as is) into a temp dir removed at test end; returns its absolute path.
export function writeSchema(schema, name = 'schema.json') {
  const dir = fs.mkdtempSync(path.join(process.env.VISOR_IT_DIR || os.tmpdir(), 'visor-schema-'));
  track(`schema dir ${dir}`, async () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof schema === 'string' ? schema : JSON.stringify(schema, null, 2));
  return file;
}

// A route list in YAML. Each route: { path, methods?, body?: { schema?, max_size? } | true }.
export function routesYaml(routes) {
  let y = 'routes:\n';
  for (const r of routes) {
    y += `  - path: ${r.path}\n`;
    if (r.methods) y += `    methods: [${r.methods.join(', ')}]\n`;
    if (r.body) {
      const b = r.body === true ? {} : r.body;
      const parts = [];
      if (b.schema) parts.push(`schema: ${JSON.stringify(b.schema)}`);
      if (b.max_size !== undefined) parts.push(`max_size: ${b.max_size}`);
      y += parts.length ? `    body: { ${parts.join(', ')} }\n` : '    body: {}\n';
    }
  }
  return y;
}

// The minimal config plus routes (and optional client keys / extra YAML).
export function bodyYaml({ upstream, routes, client = '', extra = '' }) {
  return minimalYaml({ upstream, client, extra: routesYaml(routes) + (extra ? dedent(extra) : '') });
}

// Options for https(): a JSON body with its Content-Type and Content-Length.
export function jsonReq(port, p, body, { method = 'POST', contentType = 'application/json', headers = {}, ...rest } = {}) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const h = { 'Content-Length': String(buf.length), ...headers };
  if (contentType !== null) h['Content-Type'] = contentType;
  return { port, path: p, method, headers: h, body: buf, ...rest };
}

// The JSON-escaped form of a message, as it appears inside visor's {"error": ...} body.
export const jsonText = (s) => JSON.stringify(s).slice(1, -1);
