// A small authoritative DNS server on 127.0.0.1 (node:dgram, random port) for the tests of
// upstream names (resolve.test.mjs): answers A and AAAA queries from a table the test
// changes while visor runs.
//
// const dns = await startDns();
// dns.set('app.visor.test', { a: ['127.0.0.2'], aaaa: [], ttl: 1 });   // records
// dns.set('app.visor.test', { mode: 'servfail' });  // or 'nxdomain', 'timeout' (no answer)
// dns.queries — every query received: { name, type: 'A' | 'AAAA' | number, time }
// dns.addr — "127.0.0.1:<port>" for upstream.resolve.nameservers
//
// A name not in the table gets NXDOMAIN. An answer copies the question as asked (case
// included) and points each record's name at it.
import dgram from 'node:dgram';
import net from 'node:net';
import { track } from './util.mjs';

const TYPE = { 1: 'A', 28: 'AAAA' };
const RCODE = { ok: 0, servfail: 2, nxdomain: 3 };

function parseQuestion(msg) {
  if (msg.length < 12) return null;
  let off = 12;
  const labels = [];
  for (;;) {
    if (off >= msg.length) return null;
    const len = msg[off];
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len > msg.length) return null;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return null;
  const qtype = msg.readUInt16BE(off);
  return { name: labels.join('.').toLowerCase(), qtype, end: off + 4 };
}

function rdata(type, addr) {
  if (type === 1) return Buffer.from(addr.split('.').map(Number));
  // AAAA: expand :: and write 8 groups
  const [head, tail = ''] = addr.includes('::') ? addr.split('::') : [addr, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function answer(msg, q, entry) {
  const mode = entry ? entry.mode || 'ok' : 'nxdomain';
  const addrs = mode !== 'ok' ? [] : q.qtype === 1 ? entry.a || [] : q.qtype === 28 ? entry.aaaa || [] : [];
  const head = Buffer.alloc(12);
  msg.copy(head, 0, 0, 2);                                    // id
  head.writeUInt16BE(0x8000 | 0x0400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | RCODE[mode], 2);
  head.writeUInt16BE(1, 4);                                   // qdcount
  head.writeUInt16BE(addrs.length, 6);                        // ancount
  const parts = [head, msg.subarray(12, q.end)];
  for (const a of addrs) {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);                              // name: the question's
    rr.writeUInt16BE(q.qtype, 2);
    rr.writeUInt16BE(1, 4);                                   // IN
    rr.writeUInt32BE(entry.ttl ?? 1, 6);
    const d = rdata(q.qtype, a);
    rr.writeUInt16BE(d.length, 10);
    parts.push(rr, d);
  }
  return Buffer.concat(parts);
}

export async function startDns() {
  const table = new Map();
  const sock = dgram.createSocket('udp4');
  const dns = { queries: [] };
  sock.on('message', (msg, rinfo) => {
    const q = parseQuestion(msg);
    if (!q) return;
    dns.queries.push({ name: q.name, type: TYPE[q.qtype] || q.qtype, time: Date.now() });
    const entry = table.get(q.name);
    if (entry && entry.mode === 'timeout') return;
    sock.send(answer(msg, q, entry), rinfo.port, rinfo.address);
  });
  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', resolve);
  });
  dns.port = sock.address().port;
  dns.addr = `127.0.0.1:${dns.port}`;
  dns.set = (name, entry) => {
    for (const a of [...(entry.a || []), ...(entry.aaaa || [])]) {
      if (!net.isIP(a)) throw new Error(`startDns: not an address: ${a}`);
    }
    table.set(name.toLowerCase(), entry);
  };
  dns.count = (name, type) => dns.queries.filter((q) => q.name === name && (!type || q.type === type)).length;
  dns.close = () => new Promise((resolve) => sock.close(resolve));
  const untrack = track(`dns ${dns.port}`, async () => {
    untrack();
    await dns.close();
  });
  return dns;
}
