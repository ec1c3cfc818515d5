// Edge body checks (docs/body-checks.md): a real
// visor in front of the Node echo upstream. 415 before any body byte is read, 400 with a JSON
// pointer and a rule (never a value), 413 past body.max_size, valid bodies forwarded byte for
// byte, routes without a body rule untouched, and `visor -t` positions for bad schema files.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  startVisor, startUpstream, runVisor, writeConfigFile, https, keepAliveAgent, rawConnect, rawTls,
  hasResponses, parseResponses, assertEdge, assertRawEdge, assertSecurityHeaders, cleanupAll,
  REPO, SLOW, delay,
} from './lib/harness.mjs';
import { writeSchema, bodyYaml, jsonReq, jsonText, sha256 } from './lib/body-helpers.mjs';

const T = { timeout: 30000 * SLOW };
const CREATE_USER = path.join(REPO, 'conf/schemas/create-user.json');
const head = (port, lines) => `${lines.join('\r\n')}\r\n\r\n`.replace('{HOST}', `Host: localhost:${port}`);

// visor with /api/users (the example schema, 64k), /raw (body rule without a schema),
// /small (1k), /open (no body rule).
async function setup({ routes, client } = {}) {
  const up = await startUpstream();
  const v = await startVisor(bodyYaml({
    upstream: up.addr,
    client,
    routes: routes || [
      { path: '/api/users', methods: ['POST', 'GET', 'PUT'], body: { schema: CREATE_USER, max_size: '64k' } },
      { path: '/raw', body: true },
      { path: '/small', body: { max_size: '1k' } },
      { path: '/', methods: [] },
    ],
  }));
  return { up, v, port: v.ports.https };
}

function assert400(r, message) {
  assertEdge(r, 400, { message: jsonText(message) });
  assertSecurityHeaders(r);
}

describe('body: Content-Type (415)', () => {
  afterEach(cleanupAll);

  const REFUSED = [
    ['no Content-Type', null],
    ['text/plain', 'text/plain'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
    ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    ['application/xml', 'application/xml'],
    ['a charset other than utf-8', 'application/json; charset=latin1'],
    ['application/jsonx', 'application/jsonx'],
    ['text/json', 'text/json'],
    ['a bare +json subtype', 'application/+json'],
    ['a malformed parameter', 'application/json; charset'],
  ];
  for (const [name, ct] of REFUSED) {
    it(`${name} → 415, nothing forwarded`, T, async () => {
      const { up, port } = await setup();
      const r = await https(jsonReq(port, '/api/users', { email: 'a@b.co', name: 'A' }, { contentType: ct }));
      assertEdge(r, 415);
      assertSecurityHeaders(r);
      assert.equal(up.requests.length, 0);
    });
  }

  it('accepts the JSON media types: case, parameters, +json', T, async () => {
    const { up, port } = await setup();
    const ok = ['application/json', 'Application/JSON', 'application/json; charset=utf-8',
      'application/json;charset="UTF-8"', 'application/merge-patch+json', 'application/vnd.api+json ; x=1'];
    for (const ct of ok) {
      const r = await https(jsonReq(port, '/api/users', { email: 'a@b.co', name: 'A' }, { contentType: ct }));
      assert.equal(r.status, 200, `${ct}: ${r.text}`);
    }
    assert.equal(up.requests.length, ok.length);
  });

  it('two Content-Type headers or a Content-Encoding → 415', T, async () => {
    const { up, port } = await setup();
    const body = '{"email":"a@b.co","name":"A"}';
    const res = await rawTls(port,
      head(port, ['POST /api/users HTTP/1.1', '{HOST}', `Content-Length: ${body.length}`,
        'Content-Type: application/json', 'Content-Type: text/plain', 'Connection: close']) + body);
    assertRawEdge(res.responses()[0], 415);
    const r = await https(jsonReq(port, '/api/users', body, { headers: { 'Content-Encoding': 'gzip' } }));
    assertEdge(r, 415);
    const res2 = await rawTls(port,
      head(port, ['POST /api/users HTTP/1.1', '{HOST}', `Content-Length: ${body.length}`, 'Content-Type: application/json',
        'Content-Encoding: identity', 'Content-Encoding: gzip', 'Connection: close']) + body);
    assertRawEdge(res2.responses()[0], 415);
    assert.equal(up.requests.length, 0);
    const ok = await https(jsonReq(port, '/api/users', body, { headers: { 'Content-Encoding': 'identity' } }));
    assert.equal(ok.status, 200, ok.text);
  });

  it('is decided from the head alone, before any body byte is sent', T, async () => {
    const { up, port } = await setup();
    const conn = await rawConnect(port);
    await conn.write(head(port, ['POST /api/users HTTP/1.1', '{HOST}', 'Content-Length: 40', 'Content-Type: text/plain']));
    await conn.waitFor(hasResponses(1), 5000 * SLOW, 'the 415 before the body');
    const [r] = parseResponses(conn.data, { eof: false });
    assertRawEdge(r, 415);
    // the small refused body is read and dropped: the connection goes on
    const body = '{"email":"ann@example.com","name":"Ann"}';
    await conn.write('x'.repeat(40) + head(port, ['POST /api/users HTTP/1.1', '{HOST}',
      `Content-Length: ${body.length}`, 'Content-Type: application/json']) + body);
    await conn.waitFor(hasResponses(2), 5000 * SLOW, 'the second answer');
    assert.equal(parseResponses(conn.data, { eof: false })[1].status, 200);
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0].bodySha256, sha256(Buffer.from(body)));
  });

  it('with Expect: 100-continue, the 415 comes instead of the 100', T, async () => {
    const { up, v, port } = await setup();
    const res = await rawTls(port,
      head(port, ['POST /api/users HTTP/1.1', '{HOST}', 'Content-Length: 5000', 'Expect: 100-continue', 'Content-Type: text/plain']),
      { until: hasResponses(1) });
    assert.ok(!res.text.includes('100 Continue'), res.text);
    assertRawEdge(res.responses()[0], 415);
    assert.equal(up.requests.length, 0);
    // the client left without sending the announced body: visor must notice at once, so the
    // end-of-test SIGTERM drains immediately (the harness fails a slow drain)
  });

  it('a body route without a body is not asked for a Content-Type', T, async () => {
    const { up, port } = await setup();
    assert.equal((await https({ port, path: '/api/users?x=1', method: 'GET' })).status, 200);
    assert.equal((await https({ port, path: '/raw', method: 'POST', headers: { 'Content-Length': '0' } })).status, 200);
    assert.equal((await https({ port, path: '/raw', method: 'DELETE' })).status, 200);
    assert.equal(up.requests.length, 3);
    assert.equal(up.requests[1].bodyLength, 0);
  });
});

describe('body: not JSON (400 "Invalid JSON")', () => {
  afterEach(cleanupAll);

  const BAD = [
    ['truncated', '{"email":"a@b.co","name":"A"'],
    ['trailing garbage', '{"email":"a@b.co","name":"A"} x'],
    ['two documents', '{}{}'],
    ['NaN', '{"email":"a@b.co","name":NaN}'],
    ['Infinity', '[Infinity]'],
    ['a duplicate key', '{"email":"a@b.co","name":"A","name":"B"}'],
    ['a duplicate key spelled with an escape', '{"email":"a@b.co","name":"A","n\\u0061me":"B"}'],
    ['single quotes', "{'email':'a@b.co'}"],
    ['a trailing comma', '{"email":"a@b.co","name":"A",}'],
    ['a lone surrogate', '{"name":"\\ud800"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],
    ['a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')])],
    ['a number out of range', '{"n":1e400}'],
  ];
  for (const [name, body] of BAD) {
    it(`${name}`, T, async () => {
      const { up, port } = await setup();
      const r = await https(jsonReq(port, '/raw', body));
      assert400(r, 'Invalid JSON');
      assert.equal(up.requests.length, 0);
    });
  }

  it('nesting deeper than 64 levels → 400 (a depth bomb never reaches the parser)', T, async () => {
    const { up, port } = await setup();
    const ok = '['.repeat(64) + ']'.repeat(64);
    assert.equal((await https(jsonReq(port, '/raw', ok))).status, 200);
    const bomb = '['.repeat(50000);
    assert400(await https(jsonReq(port, '/raw', bomb)), 'Invalid body: nested deeper than 64 levels');
    assert.equal(up.requests.length, 1);
  });

  it('the access log gives the rule, the answer never quotes the body', T, async () => {
    const { v, port } = await setup();
    const r = await https(jsonReq(port, '/raw', '{"secret":"hunter2", oops}'));
    assert400(r, 'Invalid JSON');
    assert.ok(!r.text.includes('hunter2'));
    const log = await v.accessLogFor(r.get('X-Request-Id'));
    assert.equal(log.status, 400);
    assert.equal(log.reason, 'body: json');
  });
});

describe('body: prototype pollution keys (400 with the pointer)', () => {
  afterEach(cleanupAll);

  const CASES = [
    ['{"__proto__":{"isAdmin":true}}', '/__proto__'],
    ['{"a":1,"constructor":{"prototype":{"x":1}}}', '/constructor'],
    ['{"profile":{"zip":"12345","__proto__":{"isAdmin":true}}}', '/profile/__proto__'],
    ['[{"ok":1},{"x":{"prototype":1}}]', '/1/x/prototype'],
    ['{"\\u005f_proto__":1}', '/__proto__'],
    ['{"a/b":{"m~n":{"constructor":1}}}', '/a~1b/m~0n/constructor'],
  ];
  for (const [body, ptr] of CASES) {
    it(`${body} → ${ptr}`, T, async () => {
      const { up, v, port } = await setup();
      const r = await https(jsonReq(port, '/raw', body));
      assert400(r, `Invalid body: ${ptr} is a forbidden key`);
      assert.equal(up.requests.length, 0);
      const ev = await v.waitForLog((j) => j && j.type === 'security' && j.event === 'prototype_pollution', 5000 * SLOW, { stream: 'stdout' });
      assert.equal(ev.json.pointer, ptr);
      assert.equal(ev.json.request_id, r.get('X-Request-Id'));
    });
  }

  it('is refused on schema routes too, before the schema, even where the schema allows the key', T, async () => {
    const schema = writeSchema({ type: 'object', properties: { constructor: { type: 'string' } } });
    const { up, port } = await setup({ routes: [{ path: '/s', body: { schema } }] });
    assert400(await https(jsonReq(port, '/s', '{"constructor":"x"}')), 'Invalid body: /constructor is a forbidden key');
    assert.equal((await https(jsonReq(port, '/s', '{"k":"__proto__"}'))).status, 200, 'as a value it is fine');
    assert.equal(up.requests.length, 1);
  });
});

describe('body: schema violations (400 naming the pointer and the rule)', () => {
  afterEach(cleanupAll);

  const VALID = { email: 'ann@example.com', name: 'Ann' };
  const CASES = [
    [{ name: 'Ann' }, 'Invalid body: /email is required'],
    [{ ...VALID, email: 'not-an-email' }, 'Invalid body: /email is not a valid email'],
    [{ ...VALID, name: '' }, 'Invalid body: /name must be at least 1 character long'],
    [{ ...VALID, name: 'x'.repeat(101) }, 'Invalid body: /name must be at most 100 characters long'],
    [{ ...VALID, name: 7 }, 'Invalid body: /name must be a string'],
    [{ ...VALID, role: 'root' }, 'Invalid body: /role is not one of the allowed values'],
    [{ ...VALID, profile: { zip: '1234' } }, 'Invalid body: /profile/zip does not match the pattern'],
    [{ ...VALID, profile: { age: 12 } }, 'Invalid body: /profile/age must be >= 13'],
    [{ ...VALID, profile: { age: 151 } }, 'Invalid body: /profile/age must be <= 150'],
    [{ ...VALID, profile: { age: 30.5 } }, 'Invalid body: /profile/age must be an integer'],
    [{ ...VALID, profile: { nick: 'x' } }, 'Invalid body: /profile/nick is not allowed'],
    [{ ...VALID, isAdmin: true }, 'Invalid body: /isAdmin is not allowed'],
    [['not', 'an', 'object'], 'Invalid body: / must be an object'],
    // the first failure in document order: the body's own order, not the schema's
    [{ profile: { zip: 'x' }, name: 5, email: 'ann@example.com' }, 'Invalid body: /profile/zip does not match the pattern'],
    [{ email: 'ann@example.com', name: 5, profile: { zip: 'x' } }, 'Invalid body: /name must be a string'],
  ];
  for (const [body, message] of CASES) {
    it(message, T, async () => {
      const { up, port } = await setup();
      const r = await https(jsonReq(port, '/api/users', body));
      assert400(r, message);
      assert.equal(up.requests.length, 0);
      for (const val of ['not-an-email', '1234', 'root', 'nick']) {
        if (JSON.stringify(body).includes(val)) assert.ok(!r.text.includes(`"${val}`) && !r.text.includes(` ${val} `), 'no value in the answer');
      }
    });
  }

  it('a POST/PUT without a body is a missing body for a schema with required members; GET passes', T, async () => {
    const { up, port } = await setup();
    assert400(await https({ port, path: '/api/users', method: 'POST', headers: { 'Content-Length': '0' } }), 'Invalid body: / is required');
    assert400(await https({ port, path: '/api/users', method: 'PUT' }), 'Invalid body: / is required');
    assert.equal((await https({ port, path: '/api/users', method: 'GET' })).status, 200);
    assert.equal(up.requests.length, 1);
  });

  it('the connection stays usable after a refused body', T, async () => {
    const { up, port } = await setup();
    const agent = keepAliveAgent();
    const a = await https({ ...jsonReq(port, '/api/users', { name: 'A' }), agent });
    assert400(a, 'Invalid body: /email is required');
    const b = await https({ ...jsonReq(port, '/api/users', VALID), agent });
    assert.equal(b.status, 200);
    assert.equal(a.localPort, b.localPort, 'same connection');
    assert.equal(up.requests.length, 1);
  });

  it('every supported keyword, through a real route', T, async () => {
    const schema = writeSchema({
      $defs: { tag: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 20 } },
      type: 'object',
      required: ['id', 'kind'],
      additionalProperties: false,
      propertyNames: { maxLength: 12 },
      minProperties: 2,
      maxProperties: 16,
      properties: {
        id: { type: 'string', format: 'uuid' },
        kind: { enum: ['a', 'b'] },
        v: { const: 1 },
        at: { type: 'string', format: 'date-time' },
        day: { type: 'string', format: 'date' },
        site: { type: 'string', format: 'uri' },
        n: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 10, multipleOf: 0.5 },
        tags: { type: 'array', items: { $ref: '#/$defs/tag' }, minItems: 1, maxItems: 3, uniqueItems: true },
        pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false },
        alt: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        one: { oneOf: [{ type: 'integer' }, { type: 'number', minimum: 5 }] },
        not: { not: { type: 'null' } },
        both: { allOf: [{ type: 'integer' }, { minimum: 1 }] },
      },
      patternProperties: { '^x-': { type: 'boolean' } },
    });
    const { up, port } = await setup({ routes: [{ path: '/k', body: { schema } }] });
    const ok = { id: '123e4567-e89b-12d3-a456-426614174000', kind: 'a', v: 1.0, at: '2024-02-29T12:00:00Z', day: '2024-02-29', site: 'https://example.com/x', n: 2.5, tags: ['a-1', 'b'], pair: ['x', 2], alt: null, one: 7.5, not: 0, both: 2, 'x-on': true };
    const cases = [
      [{ ...ok, id: 'nope' }, '/id is not a valid uuid'],
      [{ ...ok, kind: 'c' }, '/kind is not one of the allowed values'],
      [{ ...ok, v: 2 }, '/v is not the allowed value'],
      [{ ...ok, at: '2024-02-30T12:00:00Z' }, '/at is not a valid date-time'],
      [{ ...ok, day: '2023-02-29' }, '/day is not a valid date'],
      [{ ...ok, site: 'example.com' }, '/site is not a valid uri'],
      [{ ...ok, n: 0 }, '/n must be > 0'],
      [{ ...ok, n: 10 }, '/n must be < 10'],
      [{ ...ok, n: 2.25 }, '/n must be a multiple of 0.5'],
      [{ ...ok, tags: [] }, '/tags must have at least 1 item'],
      [{ ...ok, tags: ['a', 'b', 'c', 'd'] }, '/tags must have at most 3 items'],
      [{ ...ok, tags: ['a', 'a'] }, '/tags must not contain duplicate items'],
      [{ ...ok, tags: ['a', 'B'] }, '/tags/1 does not match the pattern'],
      [{ ...ok, tags: ['a', 'x'.repeat(21)] }, '/tags/1 must be at most 20 characters long'],
      [{ ...ok, pair: ['x', 2, 3] }, '/pair/2 is not allowed'],
      [{ ...ok, pair: ['x', 2.5] }, '/pair/1 must be an integer'],
      [{ ...ok, alt: 1 }, '/alt does not match any of the allowed schemas'],
      [{ ...ok, one: 7 }, '/one matches more than one of the schemas (oneOf)'],
      [{ ...ok, not: null }, '/not matches a schema it must not match'],
      [{ ...ok, both: 0 }, '/both must be >= 1'],
      [{ ...ok, 'x-on': 'yes' }, '/x-on must be a boolean'],
      [{ ...ok, 'averyveryverylongname': 1 }, '/averyveryverylongname is not an allowed property name'],
      [{ id: ok.id, v: 1 }, '/kind is required'],
      [{ kind: 'a' }, '/ must have at least 2 properties'],
      [{ ...ok, 'x-1': true, 'x-2': true, 'x-3': true }, '/ must have at most 16 properties'],
    ];
    const good = await https(jsonReq(port, '/k', ok));
    assert.equal(good.status, 200, good.text);
    for (const [body, msg] of cases) {
      const r = await https(jsonReq(port, '/k', body));
      assert400(r, `Invalid body: ${msg}`);
    }
    assert.equal(up.requests.length, 1);
  });
});

describe('body: forwarding', () => {
  afterEach(cleanupAll);

  it('a valid body reaches the upstream byte for byte with its Content-Length', T, async () => {
    const { up, port } = await setup();
    // whitespace, escapes and UTF-8 exactly as sent: visor checks, it never re-serialises
    const body = Buffer.from('{ "email" : "ann@example.com",\n\t"name":"Ann \\u00e9 é 😀", "profile": {"age": 3.0e1 } }\n');
    const r = await https(jsonReq(port, '/api/users', body, { contentType: 'application/json; charset=utf-8' }));
    assert.equal(r.status, 200, r.text);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Content-Length'), [String(body.length)]);
    assert.deepEqual(u.headerAll('Transfer-Encoding'), []);
    assert.deepEqual(u.headerAll('Content-Type'), ['application/json; charset=utf-8']);
    assert.equal(u.bodyLength, body.length);
    assert.equal(u.bodySha256, sha256(body));
  });

  it('a chunked valid body is checked whole and forwarded with a Content-Length', T, async () => {
    const { up, port } = await setup();
    const parts = ['{"email":"ann@', 'example.com","na', 'me":"Ann","profile":{"zip":"12', '345"}}'];
    const full = parts.join('');
    const r = await https({ port, path: '/api/users', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Readable.from(parts.map((p) => Buffer.from(p))) });
    assert.equal(r.status, 200, r.text);
    const u = up.requests[0];
    assert.deepEqual(u.headerAll('Transfer-Encoding'), []);
    assert.deepEqual(u.headerAll('Content-Length'), [String(full.length)]);
    assert.equal(u.bodySha256, sha256(Buffer.from(full)));
  });

  it('a chunked invalid body is refused like any other', T, async () => {
    const { up, port } = await setup();
    const parts = ['{"email":"ann@example.com",', '"name":"Ann","profile":{"zip":"12"}}'];
    const r = await https({ port, path: '/api/users', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Readable.from(parts.map((p) => Buffer.from(p))) });
    assert400(r, 'Invalid body: /profile/zip does not match the pattern');
    assert.equal(up.requests.length, 0);
  });

  it('a chunked body with no data is an empty body', T, async () => {
    const { up, port } = await setup();
    const res = await rawTls(port,
      head(port, ['POST /api/users HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked', 'Content-Type: application/json', 'Connection: close']) + '0\r\n\r\n');
    assertRawEdge(res.responses()[0], 400, { message: 'Invalid body: / is required' });
    const res2 = await rawTls(port,
      head(port, ['POST /raw HTTP/1.1', '{HOST}', 'Transfer-Encoding: chunked', 'Content-Type: application/json', 'Connection: close']) + '0\r\n\r\n');
    assert.equal(res2.responses()[0].status, 200);
    assert.equal(up.requests.length, 1);
    assert.deepEqual(up.requests[0].headerAll('Content-Length'), ['0']);
  });

  it('Expect: 100-continue on a body route: 100 once the head passed, then the checked body', T, async () => {
    const { up, port } = await setup();
    const body = '{"email":"ann@example.com","name":"Ann"}';
    const conn = await rawConnect(port);
    await conn.write(head(port, ['POST /api/users HTTP/1.1', '{HOST}', `Content-Length: ${body.length}`, 'Expect: 100-continue', 'Content-Type: application/json']));
    await conn.waitFor((b) => b.includes('\r\n\r\n'), 5000 * SLOW, '100 Continue');
    assert.match(conn.text, /^HTTP\/1\.1 100 Continue\r\n/);
    await conn.write(body);
    await conn.waitFor(hasResponses(1), 5000 * SLOW, 'the final answer');
    const final = parseResponses(conn.data, { eof: false }).find((x) => !x.interim);
    assert.equal(final.status, 200);
    assert.equal(up.requests[0].bodySha256, sha256(Buffer.from(body)));
  });
});

describe('body: size (413)', () => {
  afterEach(cleanupAll);

  it('over body.max_size by Content-Length → 413 from the head, nothing forwarded', T, async () => {
    const { up, port } = await setup();
    const res = await rawTls(port,
      head(port, ['POST /small HTTP/1.1', '{HOST}', 'Content-Length: 1025', 'Content-Type: application/json']),
      { until: hasResponses(1) });
    assertRawEdge(res.responses()[0], 413);
    assert.equal(up.requests.length, 0);
    const body = JSON.stringify({ a: 'x'.repeat(1010) });
    assert.ok(body.length <= 1024);
    assert.equal((await https(jsonReq(port, '/small', body))).status, 200);
  });

  it('over body.max_size while a chunked body streams in → 413', T, async () => {
    const { up, port } = await setup();
    const big = '["' + 'x'.repeat(1100) + '"]';
    const parts = [big.slice(0, 500), big.slice(500, 1000), big.slice(1000)];
    let r;
    try {
      r = await https({ port, path: '/small', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Readable.from(parts.map((p) => Buffer.from(p))) });
    } catch (e) {
      assert.fail(`no 413 answer: ${e.message}`);
    }
    assertEdge(r, 413);
    assert.equal(up.requests.length, 0);
  });

  it('max_size 0 falls back to client.max_body_size', T, async () => {
    const { up, port } = await setup({ client: 'max_body_size: 2k', routes: [{ path: '/z', body: { max_size: 0 } }] });
    assert.equal((await https(jsonReq(port, '/z', JSON.stringify(['x'.repeat(1500)])))).status, 200);
    assertEdge(await https(jsonReq(port, '/z', JSON.stringify(['x'.repeat(2100)]))), 413);
    assert.equal(up.requests.length, 1);
  });
});

describe('body: routes without a body rule', () => {
  afterEach(cleanupAll);

  it('are not touched: any type, invalid JSON, __proto__ keys all pass', T, async () => {
    const { up, port } = await setup();
    const bodies = [['text/plain', 'hello'], ['application/json', '{"__proto__":{"x":1}}'], ['application/json', '{not json'], [null, 'raw']];
    for (const [ct, b] of bodies) {
      const r = await https(jsonReq(port, '/other', b, { contentType: ct }));
      assert.equal(r.status, 200);
    }
    assert.equal(up.requests.length, bodies.length);
    assert.equal(up.requests[1].bodySha256, sha256(Buffer.from(bodies[1][1])));
  });
});

describe('body: visor -t and bad schema files', () => {
  afterEach(cleanupAll);

  // routes: line 9 is "  - path: /s", line 10 the body rule; its schema value is at column 21.
  async function checkWith(schemaPath) {
    const yaml = bodyYaml({ upstream: '127.0.0.1:9', routes: [{ path: '/s', body: { schema: schemaPath } }] });
    const { file } = await writeConfigFile(yaml);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const line = lines.findIndex((l) => l.includes('body: {')) + 1;
    const col = lines[line - 1].indexOf('schema: ') + 'schema: '.length + 1;
    const r = runVisor(['-t', '-c', file]);
    if (r.wrapperErrors) assert.deepEqual(r.wrapperErrors, []);
    // errors only: the lint's warnings about the minimal config are not this file's business
    const diags = r.stderr.split('\n').filter((l) => l.includes(': error: '));
    return { r, diags, prefix: `${file}:${line}:${col}: error: routes[0].body.schema: ` };
  }

  it('a valid schema: exit 0', T, async () => {
    const { r, diags } = await checkWith(CREATE_USER);
    assert.deepEqual(diags, []);
    assert.equal(r.code, 0, r.stderr);
  });

  it('an unreadable file', T, async () => {
    const missing = path.join(path.dirname(writeSchema({})), 'missing.json');
    const { r, diags, prefix } = await checkWith(missing);
    assert.equal(r.code, 1);
    assert.deepEqual(diags, [`${prefix}cannot read ${missing}: No such file or directory`]);
  });

  it('invalid JSON: the schema file\'s own line and column', T, async () => {
    const s = writeSchema('{\n  "type": "object",\n  "properties": {\n    "a": {"type": "string",}\n  }\n}\n');
    const { r, diags, prefix } = await checkWith(s);
    assert.equal(r.code, 1);
    assert.equal(diags.length, 1, r.stderr);
    assert.ok(diags[0].startsWith(`${prefix}${s}:4:`), diags[0]);
    assert.match(diags[0], /invalid JSON/);
  });

  it('an unsupported keyword is an error (never ignored), at its line and column', T, async () => {
    const s = writeSchema('{\n  "type": "object",\n  "properties": {\n    "a": {"type": "string", "if": {}}\n  }\n}\n');
    const { r, diags, prefix } = await checkWith(s);
    assert.equal(r.code, 1);
    assert.deepEqual(diags, [`${prefix}${s}:4:29: unsupported keyword "if" at #/properties/a/if`]);
  });

  it('an unsupported pattern and an unresolvable $ref', T, async () => {
    const s1 = writeSchema({ properties: { a: { pattern: '(?<=x)y' } } });
    const a = await checkWith(s1);
    assert.equal(a.r.code, 1);
    assert.match(a.diags[0], /:4:7: unsupported or invalid pattern: lookaround assertions are not supported at #\/properties\/a\/pattern$/);
    const s2 = writeSchema({ $ref: '#/$defs/nope' });
    const b = await checkWith(s2);
    assert.equal(b.r.code, 1);
    assert.deepEqual(b.diags, [`${b.prefix}${s2}: "$ref": no schema at #/$defs/nope at #/$ref`]);
  });

  it('visor refuses to start with a bad schema', T, async () => {
    const s = writeSchema({ type: 'object', format: 'ipv4' });
    const yaml = bodyYaml({ upstream: '127.0.0.1:9', routes: [{ path: '/s', body: { schema: s } }] });
    const { file } = await writeConfigFile(yaml);
    const r = runVisor(['-c', file], { timeoutMs: 10000 * SLOW });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('unsupported format \\"ipv4\\"'), r.stderr);
  });
});

describe('body: reload', () => {
  afterEach(cleanupAll);

  it('SIGHUP loads a changed schema; a broken one keeps the old', T, async () => {
    const up = await startUpstream();
    const s = writeSchema({ type: 'object', required: ['a'] });
    const yaml = bodyYaml({ upstream: up.addr, routes: [{ path: '/r', body: { schema: s } }] });
    const v = await startVisor(yaml);
    const port = v.ports.https;
    assert400(await https(jsonReq(port, '/r', {})), 'Invalid body: /a is required');
    fs.writeFileSync(s, JSON.stringify({ type: 'object', required: ['b'] }));
    v.hup();
    let r;
    for (let i = 0; i < 100; i++) {
      r = await https(jsonReq(port, '/r', { a: 1 }));
      if (r.text.includes('/b is required')) break;
      await delay(50);
    }
    assert400(r, 'Invalid body: /b is required');
    fs.writeFileSync(s, '{"type": ');
    v.hup();
    await v.waitForLog((j, line) => /schema/.test(line) && /invalid JSON/.test(line), 5000 * SLOW, { stream: 'stderr' });
    assert400(await https(jsonReq(port, '/r', { a: 1 })), 'Invalid body: /b is required');
  });
});
