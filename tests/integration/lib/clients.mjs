// Clients for talking to visor.
//   https(opts)  node:https request trusting only the test CA; a fresh connection per call
//                unless opts.agent is given. → { status, headers, rawHeaders: [[n, v]], get(n),
//                all(n), body: Buffer, text, json(), socket facts (tlsProtocol, alpn, localPort) }
//                opts.hashBody: the body is not kept; { bodyLength, bodySha256 } instead.
//                opts.body: string | Buffer | Readable (streamed).
//                opts.idleTimeoutMs: fail when no byte moves either way for that long (stalls).
//   http(opts)   the same over plain TCP (plain listener, admin listener).
//   rawConnect(port, opts) → a RawConn for step-by-step exchanges (Expect: 100-continue ...).
//   rawTls(port, bytes, opts) / rawTcp(port, bytes, opts) → every byte the server sent until it
//                closed the connection (or opts.until(buf) held, or timeoutMs passed):
//                { data, text, closed, timedOut, error, responses(methods) }.
import nodeHttps from 'node:https';
import nodeHttp from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { getCerts } from './certs.mjs';
import { headerPairs, headerAll } from './upstream.mjs';
import { parseResponses } from './httpparse.mjs';
import { SLOW, delay, track } from './util.mjs';

function hasHeader(headers, name) {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function request(mod, opts) {
  const {
    port,
    path = '/',
    method = 'GET',
    headers = {},
    body,
    host = '127.0.0.1',
    servername = 'localhost',
    agent = false,
    timeoutMs = 10000 * SLOW,
    hashBody = false,
    hostHeader,
    idleTimeoutMs = 0,
    ...rest
  } = opts;
  const h = {};
  if (!hasHeader(headers, 'host')) h.Host = hostHeader || `localhost:${port}`;
  Object.assign(h, headers);
  const o = { host, port, path, method, headers: h, agent, ...rest };
  if (mod === nodeHttps) {
    o.servername = servername;
    if (!('ca' in rest) && !('rejectUnauthorized' in rest)) o.ca = getCerts().caPem;
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(o);
    let why = null; // the harness's own reason for destroying the request, if any
    const kill = (e) => {
      why = why || e;
      req.destroy(e);
    };
    const timer = setTimeout(() => kill(new Error(`request ${method} ${path} to port ${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    // stall watchdog: bytes sent (a streamed body) and received both count as progress
    let sentBytes = 0;
    let gotBytes = 0;
    let idle = null;
    const progress = () => {
      if (!idleTimeoutMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => kill(new Error(`request ${method} ${path} stalled: nothing moved for ${idleTimeoutMs} ms after ${sentBytes} bytes sent, ${gotBytes} received`)), idleTimeoutMs);
    };
    progress();
    const done = () => {
      clearTimeout(timer);
      clearTimeout(idle);
    };
    req.on('error', (e) => {
      done();
      reject(why || e);
    });
    req.on('response', (res) => {
      const sock = res.socket;
      const r = {
        status: res.statusCode,
        statusMessage: res.statusMessage,
        httpVersion: res.httpVersion,
        headers: res.headers,
        rawHeaders: headerPairs(res.rawHeaders),
        tlsProtocol: sock && sock.getProtocol ? sock.getProtocol() : undefined,
        alpn: sock ? sock.alpnProtocol : undefined,
        localPort: sock ? sock.localPort : undefined,
        socket: sock,
        request: req,
      };
      r.all = (n) => headerAll(r.rawHeaders, n);
      r.get = (n) => {
        const a = r.all(n);
        return a.length ? a.join(', ') : undefined;
      };
      const hash = crypto.createHash('sha256');
      const parts = [];
      let n = 0;
      res.on('data', (d) => {
        n += d.length;
        gotBytes += d.length;
        progress();
        if (hashBody) hash.update(d);
        else parts.push(d);
      });
      res.on('error', (e) => {
        done();
        reject(why || e);
      });
      res.on('aborted', () => {
        done();
        reject(why || Object.assign(new Error(`response aborted after ${gotBytes} bytes`), { code: 'ECONNRESET', partial: r }));
      });
      res.on('end', () => {
        done();
        if (hashBody) {
          r.bodyLength = n;
          r.bodySha256 = hash.digest('hex');
          r.body = Buffer.alloc(0);
        } else {
          r.body = Buffer.concat(parts);
        }
        r.text = r.body.toString('utf8');
        r.json = () => JSON.parse(r.text);
        resolve(r);
      });
    });
    if (body instanceof Readable) {
      body.on('error', (e) => req.destroy(e));
      body.on('data', (d) => {
        sentBytes += d.length;
        progress();
      });
      body.pipe(req);
    } else {
      req.end(body);
    }
  });
}

export const https = (opts) => request(nodeHttps, opts);
export const http = (opts) => request(nodeHttp, opts);

// A keep-alive agent trusting the test CA, destroyed at test end.
export function keepAliveAgent({ maxSockets = 1, ...rest } = {}) {
  const agent = new nodeHttps.Agent({ keepAlive: true, maxSockets, ca: getCerts().caPem, servername: 'localhost', ...rest });
  const untrack = track('agent', async () => {
    untrack();
    agent.destroy();
  });
  return agent;
}

export function tlsConnect(port, { servername = 'localhost', host = '127.0.0.1', ...rest } = {}) {
  return new Promise((resolve, reject) => {
    const o = { host, port, servername, ...rest };
    if (!('ca' in rest) && !('rejectUnauthorized' in rest)) o.ca = getCerts().caPem;
    const s = tls.connect(o);
    // TLS 1.2 sessions arrive during the handshake, 1.3 tickets after it: keep the latest.
    s.lastSession = null;
    s.on('session', (sess) => {
      s.lastSession = sess;
    });
    const untrack = track('tls socket', async () => {
      untrack();
      s.destroy();
    });
    s.once('secureConnect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', (e) => {
      untrack();
      reject(e);
    });
  });
}

class RawConn {
  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.size = 0;
    this.closed = false;
    this.error = null;
    this.waiters = new Set();
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.size += d.length;
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    this.closedP = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.closedAt = Date.now();
        this.notify();
        resolve();
      });
    });
    // 'end': the server finished sending (TLS close_notify or TCP FIN): that is its close,
    // even if the socket itself lingers.
    socket.on('end', () => {
      this.ended = true;
      this.closedAt = this.closedAt || Date.now();
      this.notify();
    });
  }

  get data() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] || Buffer.alloc(0);
  }

  get text() {
    return this.data.toString('latin1');
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  write(x) {
    return new Promise((resolve, reject) => {
      if (this.closed || this.socket.destroyed) {
        reject(Object.assign(new Error('write on a closed connection'), { code: 'ECLOSED' }));
        return;
      }
      this.socket.write(typeof x === 'string' ? Buffer.from(x, 'latin1') : x, (e) => (e ? reject(e) : resolve()));
    });
  }

  // Resolves with the received bytes once pred(bytes) holds; rejects when the connection
  // closes first or timeoutMs passes (the error carries what was received).
  waitFor(pred, timeoutMs = 5000 * SLOW, what = 'expected bytes') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const d = this.data;
        let ok = false;
        try {
          ok = pred(d);
        } catch {
          ok = false;
        }
        if (ok) {
          finish();
          resolve(d);
        } else if (this.closed || this.ended) {
          finish();
          reject(Object.assign(new Error(`connection closed before ${what}; received ${JSON.stringify(d.toString('latin1').slice(0, 2000))}`), { data: d }));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(Object.assign(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${JSON.stringify(this.text.slice(0, 2000))}`), { data: this.data }));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  // Waits until the server closes (or timeoutMs): { data, closed, timedOut, error }.
  async readUntilClose(timeoutMs = 5000 * SLOW, until) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed || this.ended) return this.result(false);
      if (until) {
        let ok = false;
        try {
          ok = until(this.data);
        } catch {
          ok = false;
        }
        if (ok) return this.result(false);
      }
      const left = end - Date.now();
      if (left <= 0) return this.result(true);
      await new Promise((resolve) => {
        const w = () => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve();
        };
        const t = setTimeout(w, left);
        this.waiters.add(w);
      });
    }
  }

  result(timedOut) {
    const data = this.data;
    return {
      data,
      text: data.toString('latin1'),
      closed: this.closed || !!this.ended,
      timedOut,
      error: this.error,
      responses: (methods) => parseResponses(data, { methods, eof: this.closed || !!this.ended }),
    };
  }

  destroy() {
    this.socket.destroy();
  }
}

// Opens a raw connection (TLS by default) and resolves once connected/handshaken.
export function rawConnect(port, { useTls = true, host = '127.0.0.1', servername = 'localhost', ...rest } = {}) {
  return new Promise((resolve, reject) => {
    let s;
    if (useTls) {
      const o = { host, port, servername, ...rest };
      if (!('ca' in rest) && !('rejectUnauthorized' in rest)) o.ca = getCerts().caPem;
      s = tls.connect(o);
    } else {
      s = net.connect({ host, port, ...rest });
    }
    const conn = new RawConn(s);
    const untrack = track('raw connection', async () => {
      untrack();
      s.destroy();
    });
    const onErr = (e) => {
      untrack();
      reject(e);
    };
    s.once('error', onErr);
    s.once(useTls ? 'secureConnect' : 'connect', () => {
      s.removeListener('error', onErr);
      resolve(conn);
    });
  });
}

// Sends `input` (string → latin1 bytes, Buffer, or an array of those and numbers = pauses in
// ms) and returns everything received until the server closed, `until(buf)` held, or
// timeoutMs passed.
async function rawExchange(port, input, { timeoutMs = 5000 * SLOW, until, ...rest } = {}) {
  const conn = await rawConnect(port, rest);
  const items = Array.isArray(input) ? input : [input];
  for (const it of items) {
    if (typeof it === 'number') await delay(it);
    else {
      try {
        await conn.write(it);
      } catch {
        break; // the server closed early: what it sent is the answer
      }
    }
  }
  const r = await conn.readUntilClose(timeoutMs, until);
  conn.destroy();
  return r;
}

export const rawTls = (port, input, opts = {}) => rawExchange(port, input, { ...opts, useTls: true });
export const rawTcp = (port, input, opts = {}) => rawExchange(port, input, { ...opts, useTls: false });

// True once `buf` holds `n` complete final responses (for opts.until).
export const hasResponses = (n, methods) => (buf) =>
  parseResponses(buf, { methods, eof: false }).filter((r) => r.complete && !r.interim).length >= n;
