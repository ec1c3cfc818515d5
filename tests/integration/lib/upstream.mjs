// Upstreams for visor to proxy to, on 127.0.0.1 random ports.
//
// startUpstream(handler?) — a real node:http server. The default handler echoes: 200 JSON
//   { method, url, httpVersion, headers: [[name, value], ...] (raw, in received order),
//     bodyLength, bodySha256, remotePort }.
//   Every request is recorded in `up.requests` as soon as its head arrives (so a test can
//   assert that nothing was forwarded) and completed with bodyLength/bodySha256/complete
//   once its body ended. A custom handler(req, res, record) may answer as it likes; the
//   body is then its to read. `up.setHandler(h)` swaps it. `up.connections` counts TCP
//   connections accepted.
// startRawUpstream(onConnection) — a net server for answers node:http cannot produce
//   (no length + close, a close mid-body, a bare 204 ...). onConnection(socket, ctx) where
//   ctx.head() resolves with the first request head received on that socket (a string).
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { track } from './util.mjs';

export function headerPairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

// All values of header `name` (case-insensitive) in a [[name, value]] list.
export function headerAll(pairs, name) {
  const n = name.toLowerCase();
  return pairs.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

export function echoHandler(req, res, record) {
  const h = crypto.createHash('sha256');
  let n = 0;
  req.on('data', (d) => {
    h.update(d);
    n += d.length;
  });
  req.on('end', () => {
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      headers: record.headers,
      bodyLength: n,
      bodySha256: h.digest('hex'),
      remotePort: req.socket.remotePort,
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}

export async function startUpstream(handler = echoHandler, { host = '127.0.0.1' } = {}) {
  const up = {
    requests: [],
    connections: 0,
    handler,
    sockets: new Set(),
  };
  const server = http.createServer((req, res) => {
    const record = {
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      headers: headerPairs(req.rawHeaders),
      remotePort: req.socket.remotePort,
      time: Date.now(),
      complete: false,
      bodyLength: 0,
    };
    record.header = (name) => {
      const all = headerAll(record.headers, name);
      return all.length ? all.join(', ') : undefined;
    };
    record.headerAll = (name) => headerAll(record.headers, name);
    up.requests.push(record);
    const hash = crypto.createHash('sha256');
    req.on('data', (d) => {
      hash.update(d);
      record.bodyLength += d.length;
    });
    req.on('end', () => {
      record.complete = true;
      record.bodySha256 = hash.digest('hex');
    });
    req.on('aborted', () => {
      record.aborted = true;
    });
    try {
      up.handler(req, res, record);
    } catch (e) {
      res.destroy(e);
    }
  });
  // Node's own limits must never be what a test runs into.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 30000;
  server.maxHeaderSize = 1 << 20;
  server.on('connection', (s) => {
    up.connections++;
    up.sockets.add(s);
    s.on('close', () => up.sockets.delete(s));
  });
  server.on('clientError', (err, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  up.server = server;
  up.port = server.address().port;
  up.addr = `${host}:${up.port}`;
  up.setHandler = (h) => {
    up.handler = h;
  };
  up.close = () =>
    new Promise((resolve) => {
      for (const s of up.sockets) s.destroy();
      server.close(() => resolve());
    });
  const untrack = track(`upstream ${up.port}`, async () => {
    untrack();
    await up.close();
  });
  return up;
}

export async function startRawUpstream(onConnection, { host = '127.0.0.1' } = {}) {
  const up = { connections: 0, heads: [], sockets: new Set() };
  const server = net.createServer((socket) => {
    up.connections++;
    up.sockets.add(socket);
    socket.on('close', () => up.sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let resolveHead;
    const headP = new Promise((r) => (resolveHead = r));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0 && resolveHead) {
        const head = buf.subarray(0, i + 4).toString('latin1');
        up.heads.push(head);
        resolveHead(head);
        resolveHead = null;
      }
    });
    onConnection(socket, { head: () => headP, received: () => buf });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  up.server = server;
  up.port = server.address().port;
  up.addr = `${host}:${up.port}`;
  up.close = () =>
    new Promise((resolve) => {
      for (const s of up.sockets) s.destroy();
      server.close(() => resolve());
    });
  const untrack = track(`raw upstream ${up.port}`, async () => {
    untrack();
    await up.close();
  });
  return up;
}

// An onConnection for startRawUpstream that calls respond(head, socket) for every request
// head received on the connection (requests without bodies only). respond writes raw bytes;
// it may end or destroy the socket.
export function rawResponder(respond) {
  return (socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let i;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.subarray(0, i + 4).toString('latin1');
        buf = buf.subarray(i + 4);
        respond(head, socket);
      }
    });
  };
}

// The request target of a raw head ("GET /x HTTP/1.1..." → "/x").
export const headPath = (head) => head.split(' ')[1];

// A port on which nothing listens (bound then closed): connecting to it is refused.
export async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
