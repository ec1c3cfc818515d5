#!/usr/bin/env python3
"""Markdown tables from run/results/*.jsonl (written by run.sh)."""
import json, os, statistics, sys
from collections import OrderedDict

res = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'run', 'results')


def load(name):
    p = os.path.join(res, name)
    if not os.path.exists(p):
        return []
    return [json.loads(l) for l in open(p) if l.strip()]


def group(rows):
    g = OrderedDict()
    for r in rows:
        g.setdefault(r['label'], []).append(r)
    return g


def med(rows, k):
    v = [r[k] for r in rows if r.get(k) is not None]
    return statistics.median(v) if v else None


def f(v, nd=2):
    return '–' if v is None else (f'{v:.{nd}f}' if isinstance(v, float) else str(v))


out = []
p = out.append
env = os.path.join(res, 'env.txt')
if os.path.exists(env):
    p('```\n' + open(env).read().strip() + '\n```\n')

mem = group(load('mem.jsonl'))
if mem:
    p('### Memory per idle keep-alive TLS connection (N conns, one GET each, Δ VmRSS / N)\n')
    p('| server | rounds: KiB/conn | **median KiB/conn** | VmHWM Δ/conn | OpenSSL heap | libevent heap | app heap | malloc in-use Δ | RSS not in use | closes seen as |')
    p('|---|---|---|---|---|---|---|---|---|---|')
    for label, rows in mem.items():
        closes = ''
        r0 = rows[-1]
        if 'eof_dirty' in r0:
            closes = f"eof {r0['eof_clean'] + r0['eof_dirty']}, error {r0['errors'] + r0.get('ev_error_unexpected_eof', 0)}"
        rounds = ' / '.join(f(r['kib_per_conn']) for r in rows) if len(rows) > 1 else f(rows[0]['kib_per_conn'])
        p(f"| {label}{' (conc %d)' % r0['conc'] if r0['conc'] != 50 and 'conc' not in label else ''} | {rounds} | **{f(med(rows, 'kib_per_conn'))}** | {f(med(rows, 'hwm_kib_per_conn'))} "
          f"| {f(med(rows, 'ssl_kib'))} | {f(med(rows, 'ev_kib'))} | {f(med(rows, 'app_kib'))} "
          f"| {f(med(rows, 'heap_inuse_kib'))} | {f(med(rows, 'not_in_use_kib'))} | {closes} |")
    p('')
    p('OpenSSL/libevent/app heap = bytes live in each library (malloc_usable_size, via CRYPTO_set_mem_functions / '
      'event_set_mem_functions); malloc in-use = mallinfo2().uordblks (includes chunk headers); '
      '"RSS not in use" = Δ RSS − Δ in-use (free heap still resident, or untouched pages when negative).\n')
    for label, rows in mem.items():
        if rows[-1].get('sites'):
            p(f'#### Where OpenSSL\'s per-connection bytes live ({label})\n')
            p('| allocation site (OpenSSL 3.0 source) | bytes/conn |')
            p('|---|---|')
            for k, v in rows[-1]['sites'][:16]:
                p(f'| `{k}` | {v:.0f} |')
            p(f"| **sum of sites ≥ 8 B** | **{sum(v for _, v in rows[-1]['sites']):.0f}** |\n")
            p(f"SSL_new() alone: {rows[-1].get('ssl_new_bytes')} B; I/O object at accept: {rows[-1].get('io_new_bytes')} B.\n")

cpu = group(load('cpu.jsonl'))
if cpu:
    p('### CPU per request, `wrk -t1 -c50 -d10s` keep-alive GET (server on CPU 0, wrk on CPU 1)\n')
    p('| server | rounds: µs/req (utime+stime) | **median µs/req** | median µs/req (schedstat) | rounds: req/s | **median req/s** | latency avg | errors | 1-min load before |')
    p('|---|---|---|---|---|---|---|---|---|')
    for label, rows in cpu.items():
        errs = '; '.join(sorted({r['errors'] for r in rows if r['errors']} | ({f"non-2xx {sum(r['non2xx'] for r in rows)}"} if any(r['non2xx'] for r in rows) else set()))) or 'none'
        p(f"| {label} | {' / '.join(f(r['us_per_req']) for r in rows)} | **{f(med(rows, 'us_per_req'))}** "
          f"| {f(med(rows, 'us_per_req_sched'))} | {' / '.join('%.0f' % r['rps'] for r in rows)} | **{med(rows, 'rps'):.0f}** "
          f"| {rows[len(rows) // 2]['lat_avg']} | {errs} | {' / '.join(str(r.get('loadavg_before', '')) for r in rows)} |")
    p('')

ins = load('instr.jsonl')
if ins:
    p('### User-space instructions per request (callgrind, 10 conns × 1100 − 10 × 100 requests, ÷ 10 000)\n')
    p('| server | **total Ir/req** | libcrypto | libssl | libc | libevent | server code |')
    p('|---|---|---|---|---|---|---|')
    for r in ins:
        ir = r['ir']
        ev = sum(v for k, v in ir.items() if k.startswith('libevent'))
        srv = sum(v for k, v in ir.items() if k.startswith('srv_'))
        p(f"| {r['label']} | **{ir['TOTAL']:.0f}** | {ir.get('libcrypto.so.3', 0)} | {ir.get('libssl.so.3', 0)} "
          f"| {ir.get('libc.so.6', 0)} | {ev} | {srv} |")
    p('')

sysc = load('sys.jsonl')
if sysc:
    p('### System calls per request (strace -c during `wrk -c50 -d3s`)\n')
    p('| server | read | write | epoll_ctl | epoll_wait | total |')
    p('|---|---|---|---|---|---|')
    for r in sysc:
        if 'per_req' not in r:
            continue
        c = r['per_req']
        keys = ('read', 'write', 'epoll_ctl', 'epoll_wait')
        p(f"| {r['label']} | {c.get('read', 0):.2f} | {c.get('write', 0):.2f} | {c.get('epoll_ctl', 0):.2f} "
          f"| {c.get('epoll_wait', 0):.3f} | {sum(c.get(k, 0) for k in keys):.2f} |")
    for r in sysc:
        if 'hang' in r:
            p(f"\n{r['label']}: **{r['hang']}**")
    p('')

print('\n'.join(out))
