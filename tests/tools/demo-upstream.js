#!/usr/bin/env node
// demo-upstream — a tiny Node API (no npm dependencies) to put behind visor with `make run`.
// It behaves the way a typical Express app does, including its bad habits (X-Powered-By, an
// HTML stack trace on errors), so what visor does at the edge is visible.
//
//   GET  /                 200 {"message":"hello from demo-upstream"}
//   GET  /api/items        200 [{"id":1,...}, ...]
//   POST /api/auth/login   200 for {"email":"demo@example.com","password":"demo"}, else 401
//   GET  /api/boom         500 with an Express-style HTML stack trace
//   anything else          404 {"error":"Not Found"}
// Every JSON answer carries "userId" when the request had X-User-Id (set by visor from the JWT).
//
// Usage: node tests/tools/demo-upstream.js [--host 127.0.0.1] [--port 3000] [--exit-with PID]
//   --exit-with PID  exit when process PID is gone (run-dev.sh passes visor's pid).
'use strict';
const http = require('node:http');

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const host = opt('--host', process.env.HOST || '127.0.0.1');
const port = Number(opt('--port', process.env.PORT || 3000));
const exitWith = Number(opt('--exit-with', 0));

const ITEMS = [
  { id: 1, name: 'apple', price: 0.5 },
  { id: 2, name: 'bread', price: 2.25 },
  { id: 3, name: 'coffee', price: 7.9 },
];

const STACK_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Error</title>
</head>
<body>
<pre>Error: boom: database connection refused (postgres://app:s3cret@10.0.3.7:5432/app)<br> &nbsp; &nbsp;at Object.handler (/srv/app/routes/boom.js:12:11)<br> &nbsp; &nbsp;at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)<br> &nbsp; &nbsp;at next (/srv/app/node_modules/express/lib/router/route.js:149:13)<br> &nbsp; &nbsp;at Route.dispatch (/srv/app/node_modules/express/lib/router/route.js:119:3)<br> &nbsp; &nbsp;at Function.process_params (/srv/app/node_modules/express/lib/router/index.js:346:12)</pre>
</body>
</html>
`;

function send(res, status, body, type = 'application/json; charset=utf-8') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
    'X-Powered-By': 'Express',
  });
  res.end(text);
}

function withUser(req, obj) {
  const user = req.headers['x-user-id'];
  if (user === undefined) return obj;
  return Array.isArray(obj) ? { userId: user, items: obj } : { ...obj, userId: user };
}

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (d) => {
      n += d.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  const started = Date.now();
  res.on('finish', () => {
    process.stderr.write(`demo-upstream: ${req.method} ${path} ${res.statusCode} ${Date.now() - started}ms\n`);
  });
  try {
    if (req.method === 'GET' && path === '/') {
      req.resume();
      return send(res, 200, withUser(req, { message: 'hello from demo-upstream' }));
    }
    if (req.method === 'GET' && path === '/api/items') {
      req.resume();
      return send(res, 200, withUser(req, ITEMS));
    }
    if (req.method === 'POST' && path === '/api/auth/login') {
      let creds = null;
      try {
        creds = JSON.parse(await readBody(req));
      } catch {
        creds = null;
      }
      if (creds && creds.email === 'demo@example.com' && creds.password === 'demo') {
        return send(res, 200, withUser(req, { ok: true, email: creds.email }));
      }
      return send(res, 401, withUser(req, { error: 'invalid email or password' }));
    }
    if (req.method === 'GET' && path === '/api/boom') {
      req.resume();
      return send(res, 500, STACK_PAGE, 'text/html; charset=utf-8');
    }
    req.resume();
    return send(res, 404, withUser(req, { error: 'Not Found' }));
  } catch (e) {
    if (!res.headersSent) send(res, 500, { error: 'internal' });
    else res.destroy(e);
  }
});

server.listen(port, host, () => {
  process.stderr.write(`demo-upstream: listening on http://${host}:${port}\n`);
});
server.on('error', (e) => {
  process.stderr.write(`demo-upstream: ${e.message}\n`);
  process.exit(1);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

if (exitWith > 0) {
  setInterval(() => {
    try {
      process.kill(exitWith, 0);
    } catch {
      stop();
    }
  }, 500).unref();
}
