#!/usr/bin/env python3
"""Self instruction counts (Ir) per shared object from a callgrind output file.
   cgsplit.py FILE            -> JSON {object: Ir}
   cgsplit.py SMALL BIG N     -> per-request Ir by object: (BIG - SMALL) / N"""
import json, re, sys
from collections import defaultdict

def split(path):
    names, cur, skip, tot = {}, '?', False, defaultdict(int)
    for line in open(path, errors='replace'):
        if skip:                      # the line after calls= is the call's inclusive cost
            skip = False; continue
        c = line[0]
        if c.isdigit() or c in '+-*':
            parts = line.split()
            if len(parts) > 1: tot[cur] += int(parts[1])
            continue
        if line.startswith('ob='):
            m = re.match(r'ob=(?:\((\d+)\))?\s*(.*)', line.strip())
            if m.group(2): names[m.group(1)] = m.group(2)
            cur = names.get(m.group(1), m.group(2) or '?')
            cur = cur.rsplit('/', 1)[-1]
        elif line.startswith('cob='):    # object names are defined at first use, also in cob=
            m = re.match(r'cob=\((\d+)\)\s*(.+)', line.strip())
            if m: names[m.group(1)] = m.group(2)
        elif line.startswith('calls='):
            skip = True
    return tot

if len(sys.argv) == 2:
    print(json.dumps(split(sys.argv[1]), indent=1))
else:
    a, b, n = split(sys.argv[1]), split(sys.argv[2]), float(sys.argv[3])
    keys = sorted(set(a) | set(b), key=lambda k: -(b.get(k, 0) - a.get(k, 0)))
    res = {k: round((b.get(k, 0) - a.get(k, 0)) / n) for k in keys}
    res = {k: v for k, v in res.items() if abs(v) >= 5}
    res['TOTAL'] = round(sum(b.values()) - sum(a.values())) / n
    print(json.dumps(res))
