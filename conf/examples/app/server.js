#!/usr/bin/env node
// An example Node.js API as it looks once visor is in front of it (docs/migrating.md):
// no helmet, no cors, no express-rate-limit, no jsonwebtoken. visor has already
//   - terminated TLS and redirected plain HTTP,
//   - verified the JWT on /api/ and put its claims in X-User-Id / X-User-Role
//     (a client's own copies of those headers are always dropped),
//   - rate-limited the client, checked the body when a route has a body rule,
//   - added X-Request-Id (log it: visor's access log has the same id).
// What is left is the application. No npm dependencies, so the compose file can run it on the
// stock node image; the same handlers work as Express middleware (req.get('x-user-id')).
//
//   GET  /                 {"message": "hello"}                       (public)
//   GET  /api/me           {"userId": ..., "role": ...}               (token required by visor)
//   GET  /api/items        the items                                  (token required by visor)
//   POST /api/auth/login   {"email","password"} → 200 / 401           (public, lockout by visor)
//   GET  /api/boom         throws: a 500 with a stack trace, which visor scrubs
//
// Environment: HOST (default 0.0.0.0), PORT (default 3000).
'use strict';
const http = require('node:http');

const host = process.env.HOST || '0.0.0.0';
const port = Number(process.env.PORT || 3000);
const items = [
  { id: 1, name: 'apple' },
  { id: 2, name: 'bread' },
];

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function readJson(req, cb) {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    try {
      cb(null, JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
    } catch (e) {
      cb(e);
    }
  });
}

const server = http.createServer((req, res) => {
  const requestId = req.headers['x-request-id'];       // the same id as visor's access log
  const userId = req.headers['x-user-id'];             // set by visor from the token's sub
  const path = req.url.split('?')[0];
  try {
    if (req.method === 'GET' && path === '/') return send(res, 200, { message: 'hello' });
    if (req.method === 'GET' && path === '/api/me') {
      return send(res, 200, { userId, role: req.headers['x-user-role'] || null, requestId });
    }
    if (req.method === 'GET' && path === '/api/items') return send(res, 200, { userId, items });
    if (req.method === 'POST' && path === '/api/auth/login') {
      return readJson(req, (err, body) => {
        if (err) return send(res, 400, { error: 'bad json' });
        // Replace with a real check; visor counts the 401s (rate limit "login", lockout).
        const ok = body.email === 'demo@example.com' && body.password === 'demo';
        return send(res, ok ? 200 : 401, ok ? { ok: true } : { error: 'invalid credentials' });
      });
    }
    if (req.method === 'GET' && path === '/api/boom') throw new Error('boom: the database said no');
    return send(res, 404, { error: 'not found' });
  } catch (e) {
    // What an unhandled Express error looks like; visor replaces this body on its way out
    // and logs it (the scrubbed_error event) with the request id.
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(e.stack);
  }
});

// Keep idle connections longer than visor does (upstream.idle_timeout, 4 s), so visor never
// sends a request on a connection Node is closing.
server.keepAliveTimeout = 5000;
server.headersTimeout = 6000;
server.listen(port, host, () => {
  console.log(JSON.stringify({ msg: 'listening', host, port }));
});

// docker stop / Kubernetes: finish what is in flight, then exit.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections?.();
    setTimeout(() => process.exit(0), 8000).unref();
  });
}
