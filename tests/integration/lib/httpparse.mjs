// Parses the HTTP/1.1 responses found in raw bytes (what rawTls/rawTcp returned), strictly
// enough that a framing error by visor shows up as a garbled next response or an
// incomplete one.
//
// parseResponses(buf, { methods, eof }) → [response...]. `methods[i]` is the method of the
// i-th request (for HEAD: no body); interim 1xx answers are returned as their own entries
// (interim: true) and do not consume a method. `eof` (default true): the bytes ended because
// the server closed, so a close-delimited body is complete.
// Each response: { version, status, reason, rawHeaders: [[n, v]], headers: {lc: joined},
//   get(n), all(n), body: Buffer, text, json(), chunked, complete, interim, error }.
import { headerAll } from './upstream.mjs';

function mkResponse(fields) {
  const r = { ...fields };
  r.all = (n) => headerAll(r.rawHeaders, n);
  r.get = (n) => {
    const a = r.all(n);
    return a.length ? a.join(', ') : undefined;
  };
  Object.defineProperty(r, 'text', { get: () => r.body.toString('utf8') });
  r.json = () => JSON.parse(r.body.toString('utf8'));
  return r;
}

export function parseResponses(input, { methods = [], eof = true } = {}) {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  const out = [];
  let pos = 0;
  let finalIndex = 0;
  while (pos < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) {
      out.push(mkResponse({ complete: false, error: 'incomplete head', partial: buf.subarray(pos).toString('latin1'), rawHeaders: [], body: Buffer.alloc(0) }));
      break;
    }
    const lines = buf.subarray(pos, headEnd).toString('latin1').split('\r\n');
    const m = lines[0].match(/^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/);
    if (!m) {
      out.push(mkResponse({ complete: false, error: `bad status line ${JSON.stringify(lines[0])}`, partial: buf.subarray(pos).toString('latin1'), rawHeaders: [], body: Buffer.alloc(0) }));
      break;
    }
    const rawHeaders = [];
    let bad = null;
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c <= 0 || /\s/.test(l.slice(0, c))) {
        bad = `bad header line ${JSON.stringify(l)}`;
        break;
      }
      rawHeaders.push([l.slice(0, c), l.slice(c + 1).trim()]);
    }
    const status = Number(m[2]);
    const base = { version: m[1], status, reason: m[3], rawHeaders, statusLine: lines[0] };
    if (bad) {
      out.push(mkResponse({ ...base, complete: false, error: bad, body: Buffer.alloc(0) }));
      break;
    }
    const headers = {};
    for (const [k, v] of rawHeaders) {
      const lk = k.toLowerCase();
      headers[lk] = lk in headers ? `${headers[lk]}, ${v}` : v;
    }
    base.headers = headers;
    pos = headEnd + 4;
    if (status >= 100 && status < 200) {
      out.push(mkResponse({ ...base, interim: true, complete: true, chunked: false, body: Buffer.alloc(0) }));
      continue;
    }
    const method = (methods[finalIndex++] || 'GET').toUpperCase();
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (method === 'HEAD' || status === 204 || status === 304) {
      out.push(mkResponse({ ...base, complete: true, chunked: false, body: Buffer.alloc(0) }));
      continue;
    }
    if (te !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) {
        out.push(mkResponse({ ...base, complete: false, error: `unsupported transfer-encoding ${te}`, body: buf.subarray(pos) }));
        break;
      }
      const parts = [];
      let p = pos;
      let done = false;
      let err = null;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const sizeLine = buf.subarray(p, le).toString('latin1');
        const sm = sizeLine.match(/^([0-9a-fA-F]+)(;.*)?$/);
        if (!sm) {
          err = `bad chunk size line ${JSON.stringify(sizeLine)}`;
          break;
        }
        const size = parseInt(sm[1], 16);
        if (size === 0) {
          // trailers, then an empty line
          let q = le + 2;
          let ok = false;
          for (;;) {
            const te2 = buf.indexOf('\r\n', q);
            if (te2 < 0) break;
            if (te2 === q) {
              q += 2;
              ok = true;
              break;
            }
            q = te2 + 2;
          }
          if (ok) {
            p = q;
            done = true;
          }
          break;
        }
        if (le + 2 + size + 2 > buf.length) break;
        if (buf[le + 2 + size] !== 13 || buf[le + 3 + size] !== 10) {
          err = 'chunk data not followed by CRLF';
          break;
        }
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      const body = Buffer.concat(parts);
      out.push(mkResponse({ ...base, complete: done, chunked: true, body, error: err || (done ? undefined : 'incomplete chunked body') }));
      if (!done) break;
      pos = p;
      continue;
    }
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) {
        out.push(mkResponse({ ...base, complete: false, error: `bad content-length ${cl}`, body: buf.subarray(pos) }));
        break;
      }
      const n = Number(cl);
      const body = buf.subarray(pos, Math.min(buf.length, pos + n));
      const complete = body.length === n;
      out.push(mkResponse({ ...base, complete, chunked: false, body, error: complete ? undefined : `body ${body.length} of ${n} bytes` }));
      if (!complete) break;
      pos += n;
      continue;
    }
    // close-delimited
    out.push(mkResponse({ ...base, complete: eof, closeDelimited: true, chunked: false, body: buf.subarray(pos) }));
    pos = buf.length;
  }
  return out;
}
