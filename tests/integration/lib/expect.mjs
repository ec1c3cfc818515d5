// Assertions on visor's answers (docs/errors.md, docs/headers.md).
import assert from 'node:assert/strict';

export const HSTS_DEFAULT = 'max-age=31536000; includeSubDomains';

// The 11 helmet headers and their default values (docs/headers.md).
export const HELMET = {
  'Content-Security-Policy':
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Origin-Agent-Cluster': '?1',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-DNS-Prefetch-Control': 'off',
  'X-Download-Options': 'noopen',
  'X-Frame-Options': 'SAMEORIGIN',
  'X-Permitted-Cross-Domain-Policies': 'none',
  'X-XSS-Protection': '0',
};

export const MESSAGES = {
  301: 'Moved permanently',
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  408: 'Request timeout',
  413: 'Payload too large',
  415: 'Unsupported media type',
  429: 'Too many requests',
  431: 'Request header fields too large',
  500: 'Internal server error',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

export const REQUEST_ID = /^[0-9a-f]{32}$/;

// `res` is anything with all(name) (https() results and parsed raw responses).
export function assertOne(res, name, value, where = '') {
  assert.deepEqual(res.all(name), [value], `${where}header ${name}`);
}

// The helmet headers (with `overrides`: name → value, or null for "not set by visor") and
// HSTS (`hsts`: expected value, or null = must be absent).
export function assertSecurityHeaders(res, { hsts = HSTS_DEFAULT, overrides = {} } = {}) {
  for (const [name, value] of Object.entries({ ...HELMET, ...overrides })) {
    if (value === null) continue;
    assertOne(res, name, value);
  }
  if (hsts === null) assert.deepEqual(res.all('Strict-Transport-Security'), [], 'no HSTS expected');
  else assertOne(res, 'Strict-Transport-Security', hsts);
}

// An answer visor made itself: exact status, Content-Type, body and id, plus the security
// headers. Returns the request id.
export function assertEdge(res, status, { message = MESSAGES[status], hsts = HSTS_DEFAULT, overrides } = {}) {
  assert.equal(res.status, status, `status (body: ${res.body ? res.body.toString('utf8').slice(0, 300) : ''})`);
  assertOne(res, 'Content-Type', 'application/json');
  const ids = res.all('X-Request-Id');
  assert.equal(ids.length, 1, 'one X-Request-Id');
  const id = ids[0];
  assert.match(id, REQUEST_ID);
  assert.equal(res.body.toString('utf8'), `{"error":"${message}","requestId":"${id}"}`);
  assertSecurityHeaders(res, { hsts, overrides });
  return id;
}

// An answer parsed from raw bytes: complete, HTTP/1.1, and an edge answer as above.
export function assertRawEdge(r, status, opts) {
  assert.ok(r, `expected a ${status} response, got none`);
  assert.equal(r.error, undefined, `response parse error: ${r.error} ${r.partial || ''}`);
  assert.equal(r.complete, true, 'complete response');
  assert.equal(r.version, '1.1');
  return assertEdge(r, status, opts);
}
