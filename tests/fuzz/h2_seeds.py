#!/usr/bin/env python3
"""Writes the seeds of fuzz_h2 (tests/fuzz/corpus/h2/): real HTTP/2 frames after the preface
the harness sends itself, HPACK as literals without indexing, pieces cut by 0xfe 0xfe.
Byte 0: bit 0 the configuration, bits 1-2 the upstream's answer, bit 3 the client not reading."""
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), 'corpus', 'h2')
CUT = b'\xfe\xfe'


def frame(t, flags, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([t, flags]) + struct.pack('>I', sid) + payload


def hint(n):
    if n < 127:
        return bytes([n])
    out = [127]
    n -= 127
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def lit(n, v):
    n, v = n.encode('latin1'), v.encode('latin1')
    return b'\x00' + hint(len(n)) + n + hint(len(v)) + v


def block(pairs):
    return b''.join(lit(n, v) for n, v in pairs)


def req(sid, method='GET', path='/', extra=(), end=True):
    pairs = [(':method', method), (':scheme', 'https'), (':path', path), (':authority', 'localhost')] + list(extra)
    return frame(1, 4 | (1 if end else 0), sid, block(pairs))


ACK = frame(4, 1, 0)
seeds = {
    'get': bytes([0]) + ACK + req(1),
    'get_policies': bytes([1]) + ACK + req(1, path='/api/x', extra=[('origin', 'https://app.example.com')]),
    'post_body': bytes([0]) + ACK + req(1, 'POST', '/x', [('content-type', 'application/json'), ('content-length', '7')], end=False)
    + CUT + frame(0, 1, 1, b'{"a":1}'),
    'post_chunked_api': bytes([1]) + ACK + req(1, 'POST', '/api/x', [('content-type', 'application/json')], end=False)
    + frame(0, 0, 1, b'{"a":') + CUT + frame(0, 1, 1, b'1}'),
    'many_streams': bytes([2]) + ACK + b''.join(req(i) for i in range(1, 22, 2)),
    'stack_500': bytes([2 | 1]) + ACK + req(1, path='/boom'),
    'big_download_noread': bytes([4 | 8]) + ACK + req(1, path='/big') + req(3, path='/big'),
    'never_answer': bytes([6]) + ACK + req(1) + req(3, 'POST', '/x', [('content-length', '3')], end=False) + frame(0, 1, 3, b'abc'),
    'rst': bytes([6]) + ACK + req(1) + frame(3, 0, 1, b'\x00\x00\x00\x08') + req(3),
    'rapid_reset': bytes([7]) + ACK + b''.join(req(i) + frame(3, 0, i, b'\x00\x00\x00\x08') for i in range(1, 61, 2)),
    'continuation': bytes([0]) + ACK + frame(1, 1, 1, block([(':method', 'GET'), (':scheme', 'https')]))
    + CUT + frame(9, 4, 1, block([(':path', '/'), (':authority', 'localhost')])),
    'bad_headers': bytes([0]) + ACK + req(1, extra=[('connection', 'close')]) + req(3, extra=[('host', 'other')])
    + req(5, extra=[('x-a', 'a\r\nb')]) + req(7, path='x') + req(9),
    'window_zero': bytes([4]) + frame(4, 0, 0, struct.pack('>HI', 4, 0)) + ACK + req(1) + CUT + frame(8, 0, 1, struct.pack('>I', 100)),
    'ping_flood': bytes([1]) + ACK + frame(6, 0, 0, b'\0' * 8) * 60,
    'expect': bytes([0]) + ACK + req(1, 'POST', '/x', [('expect', '100-continue'), ('content-length', '2')], end=False) + CUT + frame(0, 1, 1, b'ok'),
    'goaway': bytes([0]) + ACK + req(1) + frame(7, 0, 0, struct.pack('>II', 1, 0)),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)
print(f'{len(seeds)} seeds in {OUT}')
