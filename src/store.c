/* SPDX-License-Identifier: MIT
 * store — the operations the rate-limit, lockout and probe filters need, answered by Redis (one
 * EVALSHA of the script below per operation, on the worker's own connection) or by the
 * process-wide memory store (mstore.c): without a redis section, and — with on_error: local —
 * whenever Redis is not up or does not answer within redis.timeout.
 *
 * Keys (all namespaced, all expiring on their own):
 *   visor:rl:<policy>:<client>     LIST (sliding log) or HASH (buckets)
 *   visor:lockout:<sha256 hex>     HASH {f = failures, u = locked until (ms)}
 *   visor:probe:<client>           LIST or HASH, like a policy (window 10 min)
 *   visor:bans                     ZSET client -> banned until (ms); polled every second
 *   visor:revoked:<jti>, visor:revoked-before:<sub>   read only (written by the user's auth)
 *
 * Bans are checked without a round trip: each worker polls visor:bans once a second into the
 * memory store (entries cached for at most BAN_CACHE_MS past the last poll that saw them, so a
 * ban lifted in Redis lifts everywhere within that time), and a probe that bans installs the
 * ban locally as soon as its reply arrives.
 *
 * Must never: block; call a caller's callback from inside the call that started the operation;
 * write into a caller's query after store_cancel(); format user data into a command string
 * (every key and value goes as a separate argument).
 */
#include "store.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "mstore.h"
#include "redis.h"
#include "util.h"
#include "worker.h"

#define BAN_CACHE_MS      30000
#define BAN_POLL_MS       1000
#define BAN_POLL_MAX      "10000"
#define MAX_LIMITS        16
#define ERR_LOG_EVERY_MS  10000

/* The script: the algorithm of store.h, in Redis. Keep it in step with mstore.c —
 * tests/unit/test_store.c runs both on the same inputs and compares every answer. */
const char store_lua[] =
	"-- visor store script: every operation visor asks of Redis.\n"
	"-- The algorithm is described in src/store.h and docs/rate-limits.md; src/mstore.c is the\n"
	"-- same algorithm in C. ARGV[1] = operation, ARGV[2] = clock in ms (0: Redis TIME, so\n"
	"-- every visor instance shares one clock). Keys come in KEYS, never built here.\n"
	"pcall(redis.replicate_commands)\n"
	"local op, now = ARGV[1], tonumber(ARGV[2])\n"
	"if now == 0 then\n"
	"  local t = redis.call('TIME')\n"
	"  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"end\n"
	"local NB = 60\n"
	"local rcall, rpcall, tostr, tonum = redis.call, redis.pcall, tostring, tonumber\n"
	"\n"
	"local function fdiv(a, b)\n"
	"  local q = math.floor(a / b)\n"
	"  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end\n"
	"  return q\n"
	"end\n"
	"\n"
	"-- ---- keys seen once per run -----------------------------------------------------------\n"
	"-- A batch evaluates many requests that share keys (one client, one user), so every\n"
	"-- policy key goes through V: read from Redis at most once per run, changed in memory,\n"
	"-- written once by flush(). The helpers below behave exactly like the Redis commands they\n"
	"-- are named after, so the algorithm reads as if it talked to Redis directly, and a batch\n"
	"-- answers exactly what the same requests sent one by one would.\n"
	"--   LIST  s.h: items pushed during the run (newest last), in front of the stored list,\n"
	"--         of which s.n0 - s.pop items remain (s.pop popped from its tail; s.m caches\n"
	"--         LINDEX); s.gone: it became empty during the run (Redis deleted it and its TTL).\n"
	"--   HASH  s.f: field -> value (false: absent) for the fields read or written; s.all:\n"
	"--         every other field is absent (after DEL); s.o, s.c: the changed fields, in order;\n"
	"--         s.del: DEL first.\n"
	"--   s.px: PEXPIRE to apply (ms), set by the run.\n"
	"local V, touched = {}, {}\n"
	"\n"
	"local function flush_key(k, s)\n"
	"  if s.t == 'l' then\n"
	"    local keep = s.n0 - s.pop\n"
	"    if s.gone then\n"
	"      rcall('DEL', k)\n"
	"      if #s.h > 0 then rcall('LPUSH', k, unpack(s.h)) end\n"
	"    else\n"
	"      if #s.h > 0 then rcall('LPUSH', k, unpack(s.h)) end\n"
	"      if s.pop > 0 then rcall('LTRIM', k, 0, #s.h + keep - 1) end\n"
	"    end\n"
	"  else\n"
	"    if s.del then rcall('DEL', k) end\n"
	"    local set, del = {}, {}\n"
	"    for i = 1, #s.o do\n"
	"      local f = s.o[i]\n"
	"      local v = s.f[f]\n"
	"      if v then\n"
	"        set[#set + 1] = f\n"
	"        set[#set + 1] = v\n"
	"      elseif not s.del then\n"
	"        del[#del + 1] = f\n"
	"      end\n"
	"    end\n"
	"    if #del > 0 then rcall('HDEL', k, unpack(del)) end\n"
	"    if #set > 0 then rcall('HSET', k, unpack(set)) end\n"
	"  end\n"
	"  if s.px then rcall('PEXPIRE', k, s.px) end\n"
	"end\n"
	"\n"
	"local function flush()\n"
	"  for i = 1, #touched do\n"
	"    local k = touched[i]\n"
	"    local s = V[k]\n"
	"    if s then\n"
	"      flush_key(k, s)\n"
	"      V[k] = nil\n"
	"    end\n"
	"  end\n"
	"  touched = {}\n"
	"end\n"
	"\n"
	"-- The state of key k seen as type t ('l' LIST, 'h' HASH). A LIST that is something else\n"
	"-- is deleted, as the algorithm always did; the same key used as the other type within one\n"
	"-- run (a policy whose limit crossed 128 in a reload) is written out first.\n"
	"local function vopen(k, t)\n"
	"  local s = V[k]\n"
	"  if s then\n"
	"    if s.t == t then return s end\n"
	"    flush_key(k, s)\n"
	"  end\n"
	"  if t == 'l' then\n"
	"    local n = rpcall('LLEN', k)\n"
	"    if type(n) ~= 'number' then\n"
	"      rcall('DEL', k)\n"
	"      n = 0\n"
	"    end\n"
	"    s = {t = 'l', n0 = n, pop = 0, h = {}, m = {}}\n"
	"  else\n"
	"    s = {t = 'h', f = {}, o = {}, c = {}}\n"
	"  end\n"
	"  V[k] = s\n"
	"  touched[#touched + 1] = k\n"
	"  return s\n"
	"end\n"
	"\n"
	"local function llen(s)\n"
	"  return s.n0 - s.pop + #s.h\n"
	"end\n"
	"\n"
	"local function lindex(k, s, i)\n"
	"  local n = llen(s)\n"
	"  if i < 0 then i = n + i end\n"
	"  if i < 0 or i >= n then return false end\n"
	"  local nh = #s.h\n"
	"  if i < nh then return s.h[nh - i] end\n"
	"  i = i - nh\n"
	"  local v = s.m[i]\n"
	"  if v == nil then\n"
	"    v = rcall('LINDEX', k, i)\n"
	"    s.m[i] = v\n"
	"  end\n"
	"  return v\n"
	"end\n"
	"\n"
	"local function emptied(s)\n"
	"  if llen(s) == 0 then\n"
	"    s.gone, s.px, s.h, s.pop = true, nil, {}, s.n0\n"
	"  end\n"
	"end\n"
	"\n"
	"local function rpop(s)\n"
	"  if s.n0 - s.pop > 0 then\n"
	"    s.pop = s.pop + 1\n"
	"  elseif #s.h > 0 then\n"
	"    table.remove(s.h, 1)\n"
	"  end\n"
	"  emptied(s)\n"
	"end\n"
	"\n"
	"local function lpush(s, v)\n"
	"  s.h[#s.h + 1] = v\n"
	"  return llen(s)\n"
	"end\n"
	"\n"
	"-- LTRIM k 0 last\n"
	"local function ltrim(s, last)\n"
	"  local keep, nh = last + 1, #s.h\n"
	"  if keep < nh then\n"
	"    local h = {}\n"
	"    for i = nh - keep + 1, nh do h[#h + 1] = s.h[i] end\n"
	"    s.h, s.pop = h, s.n0\n"
	"  elseif s.n0 - s.pop > keep - nh then\n"
	"    s.pop = s.n0 - (keep - nh)\n"
	"  end\n"
	"  emptied(s)\n"
	"end\n"
	"\n"
	"-- PEXPIRE (only ever called right after a write, so the key exists)\n"
	"local function pexpire(s, ms)\n"
	"  s.px = ms\n"
	"end\n"
	"\n"
	"local function hget(k, s, f)\n"
	"  f = tostr(f)\n"
	"  local v = s.f[f]\n"
	"  if v == nil then\n"
	"    if s.all then return false end\n"
	"    v = rcall('HGET', k, f)\n"
	"    s.f[f] = v\n"
	"  end\n"
	"  return v\n"
	"end\n"
	"\n"
	"local function hset(s, f, v)\n"
	"  f = tostr(f)\n"
	"  if not s.c[f] then\n"
	"    s.c[f] = true\n"
	"    s.o[#s.o + 1] = f\n"
	"  end\n"
	"  s.f[f] = v\n"
	"end\n"
	"\n"
	"local function hdel(s, f)\n"
	"  hset(s, f, false)\n"
	"end\n"
	"\n"
	"local function hdelkey(s)\n"
	"  s.f, s.o, s.c, s.all, s.del, s.px = {}, {}, {}, true, true, nil\n"
	"end\n"
	"\n"
	"-- ---- the algorithm ---------------------------------------------------------------------\n"
	"\n"
	"-- Sliding log: a LIST of admission times (ms), newest first; t counts while now - t < w.\n"
	"local function log_read(k, limit, w)\n"
	"  local s = vopen(k, 'l')\n"
	"  local n = llen(s)\n"
	"  local oldest\n"
	"  while n > 0 do\n"
	"    oldest = tonum(lindex(k, s, -1))\n"
	"    if oldest and oldest > now - w then break end\n"
	"    rpop(s)\n"
	"    n = n - 1\n"
	"  end\n"
	"  local r = {n = n, reset = w, retry = w}\n"
	"  if n > 0 then r.reset = oldest + w - now end\n"
	"  if n >= limit then r.retry = tonum(lindex(k, s, limit - 1)) + w - now end\n"
	"  return r\n"
	"end\n"
	"\n"
	"local function log_add(k, limit, w, r, trim)\n"
	"  local s = vopen(k, 'l')\n"
	"  local n = lpush(s, now)\n"
	"  if trim and n > limit then\n"
	"    ltrim(s, limit - 1)\n"
	"    n = limit\n"
	"  end\n"
	"  pexpire(s, w)\n"
	"  if r.n == 0 then return n, w end\n"
	"  return n, r.reset\n"
	"end\n"
	"\n"
	"-- Buckets: a HASH {lo = oldest bucket holding admissions, s = sum, b = width, <k> =\n"
	"-- admissions in bucket k}; bucket k counts while now < (k + 1) * b + w. Steady state: one\n"
	"-- HMGET, one HSET per key and run.\n"
	"local function bk_read(k, limit, w)\n"
	"  local h = vopen(k, 'h')\n"
	"  local b = fdiv(w + NB - 1, NB)\n"
	"  local L, c = fdiv(now - w, b), fdiv(now, b)\n"
	"  local r = {b = b, c = c, n = 0, reset = w, retry = w, fresh = true, cur = 0}\n"
	"  -- HMGET lo s b <c>, through the cache\n"
	"  local f, cs = h.f, tostr(c)\n"
	"  if not h.all and (f.lo == nil or f.s == nil or f.b == nil or f[cs] == nil) then\n"
	"    local v = rpcall('HMGET', k, 'lo', 's', 'b', cs)\n"
	"    if v.err then\n"
	"      hdelkey(h)\n"
	"      return r\n"
	"    end\n"
	"    if f.lo == nil then f.lo = v[1] end\n"
	"    if f.s == nil then f.s = v[2] end\n"
	"    if f.b == nil then f.b = v[3] end\n"
	"    if f[cs] == nil then f[cs] = v[4] end\n"
	"  end\n"
	"  local v1, v2, v3 = f.lo or false, f.s or false, f.b or false\n"
	"  local lo, sum, bb = tonum(v1), tonum(v2), tonum(v3)\n"
	"  if not lo or not sum or bb ~= b then\n"
	"    if v1 or v2 or v3 then hdelkey(h) end\n"
	"    return r\n"
	"  end\n"
	"  r.fresh, r.cur = false, tonum(f[cs] or false) or 0\n"
	"  local pruned = false\n"
	"  if lo < L then\n"
	"    pruned = true\n"
	"    if L - lo > NB + 1 then\n"
	"      sum = 0\n"
	"    else\n"
	"      for i = lo, L - 1 do\n"
	"        local x = tonum(hget(k, h, i))\n"
	"        if x then\n"
	"          sum = sum - x\n"
	"          hdel(h, i)\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    lo = L\n"
	"    if sum <= 0 then\n"
	"      hdelkey(h)\n"
	"      r.fresh, r.cur, sum = true, 0, 0\n"
	"    end\n"
	"  end\n"
	"  r.n = sum\n"
	"  if sum > 0 then\n"
	"    if pruned then\n"
	"      -- the stored lo is the oldest bucket holding admissions; after a prune, find it\n"
	"      for i = lo, c do\n"
	"        if hget(k, h, i) then\n"
	"          r.oldest = i\n"
	"          break\n"
	"        end\n"
	"      end\n"
	"      hset(h, 'lo', r.oldest or c)\n"
	"      hset(h, 's', sum)\n"
	"    else\n"
	"      r.oldest = lo\n"
	"    end\n"
	"    if r.oldest then r.reset = (r.oldest + 1) * b + w - now end\n"
	"    if sum >= limit then\n"
	"      local acc = 0\n"
	"      for i = r.oldest or lo, c do\n"
	"        local x = tonum(hget(k, h, i))\n"
	"        if x then\n"
	"          acc = acc + x\n"
	"          if sum - acc < limit then\n"
	"            r.retry = (i + 1) * b + w - now\n"
	"            break\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  return r\n"
	"end\n"
	"\n"
	"local function bk_add(k, limit, w, r)\n"
	"  local h = vopen(k, 'h')\n"
	"  local c, b = r.c, r.b\n"
	"  local oldest = r.oldest or c\n"
	"  if c < oldest then oldest = c end\n"
	"  local sum = r.n + 1\n"
	"  hset(h, c, r.cur + 1)\n"
	"  hset(h, 'lo', oldest)\n"
	"  hset(h, 's', sum)\n"
	"  if r.fresh then hset(h, 'b', b) end\n"
	"  -- the key lives as long as its newest bucket counts: set once per bucket\n"
	"  if r.cur == 0 then pexpire(h, (c + 1) * b + w - now) end\n"
	"  return sum, (oldest + 1) * b + w - now\n"
	"end\n"
	"\n"
	"local function hit(k, limit, w, mode)\n"
	"  if mode == 1 then return (log_add(k, limit, w, log_read(k, limit, w), true)) end\n"
	"  return (bk_add(k, limit, w, bk_read(k, limit, w)))\n"
	"end\n"
	"\n"
	"-- Revocation keys are only read (your auth service writes them): once per run.\n"
	"local RX, RG = {}, {}\n"
	"\n"
	"-- One request's check: its n policy keys from KEYS[ki], then visor:revoked:<jti> (flags\n"
	"-- bit 1), then visor:revoked-before:<sub> (flags bit 2); per policy ARGV[ai..ai+3] = limit,\n"
	"-- window, mode (1 log, 2 buckets), check_only. Appends 1 (revoked), or 0 and adm, rem,\n"
	"-- reset per policy, to out. All policies admit or none records. Returns the next ki, ai.\n"
	"local function rl_one(out, ki, ai, n, flags, iat)\n"
	"  local kj = ki + n\n"
	"  local revoked = false\n"
	"  if flags % 2 == 1 then\n"
	"    local k = KEYS[kj]\n"
	"    if RX[k] == nil then RX[k] = rcall('EXISTS', k) == 1 end\n"
	"    revoked = RX[k]\n"
	"    kj = kj + 1\n"
	"  end\n"
	"  if flags >= 2 then\n"
	"    if not revoked then\n"
	"      local k = KEYS[kj]\n"
	"      if RG[k] == nil then RG[k] = tonum(rcall('GET', k)) or false end\n"
	"      local rb = RG[k]\n"
	"      if rb and rb > iat then revoked = true end\n"
	"    end\n"
	"    kj = kj + 1\n"
	"  end\n"
	"  local an = ai + 4 * n\n"
	"  if revoked then\n"
	"    out[#out + 1] = 1\n"
	"    return kj, an\n"
	"  end\n"
	"  out[#out + 1] = 0\n"
	"  local st, all = {}, true\n"
	"  for i = 1, n do\n"
	"    local a = ai + (i - 1) * 4\n"
	"    local limit, w, mode = tonum(ARGV[a]), tonum(ARGV[a + 1]), tonum(ARGV[a + 2])\n"
	"    local s\n"
	"    local k = KEYS[ki + i - 1]\n"
	"    if mode == 1 then s = log_read(k, limit, w) else s = bk_read(k, limit, w) end\n"
	"    s.limit, s.w, s.mode, s.chk = limit, w, mode, ARGV[a + 3] == '1'\n"
	"    if s.n >= limit then all = false end\n"
	"    st[i] = s\n"
	"  end\n"
	"  for i = 1, n do\n"
	"    local s = st[i]\n"
	"    local adm, rem, reset = 1, s.limit - s.n, s.reset\n"
	"    if s.n >= s.limit then\n"
	"      adm, rem, reset = 0, 0, s.retry\n"
	"    elseif all and s.chk then\n"
	"      rem = s.limit - s.n - 1\n"
	"    elseif all then\n"
	"      local cnt\n"
	"      if s.mode == 1 then\n"
	"        cnt, reset = log_add(KEYS[ki + i - 1], s.limit, s.w, s, false)\n"
	"      else\n"
	"        cnt, reset = bk_add(KEYS[ki + i - 1], s.limit, s.w, s)\n"
	"      end\n"
	"      rem = math.max(s.limit - cnt, 0)\n"
	"    end\n"
	"    out[#out + 1] = adm\n"
	"    out[#out + 1] = rem\n"
	"    out[#out + 1] = reset\n"
	"  end\n"
	"  return kj, an\n"
	"end\n"
	"\n"
	"if op == 'batch' then\n"
	"  -- ARGV[3] = m requests; then per request: n, flags, iat and 4 values per policy (as in\n"
	"  -- rl_one); KEYS: each request's keys, in order. The requests are evaluated in order, each\n"
	"  -- exactly as if it came alone. Reply: {now, then per request: 1 (revoked), or 0 and adm,\n"
	"  -- rem, reset per policy}.\n"
	"  local m = tonum(ARGV[3])\n"
	"  local out = {now}\n"
	"  local ki, ai = 1, 4\n"
	"  for _ = 1, m do\n"
	"    local n, flags, iat = tonum(ARGV[ai]), tonum(ARGV[ai + 1]), tonum(ARGV[ai + 2])\n"
	"    ki, ai = rl_one(out, ki, ai + 3, n, flags, iat)\n"
	"  end\n"
	"  flush()\n"
	"  return out\n"
	"elseif op == 'rl' then\n"
	"  -- one request: ARGV[3] n, [4] flags, [5] iat, then per policy limit, window, mode,\n"
	"  -- check_only. Reply: {1, now} when revoked, else {0, now, then adm, rem, reset per policy}.\n"
	"  local out = {}\n"
	"  rl_one(out, 1, 6, tonum(ARGV[3]), tonum(ARGV[4]), tonum(ARGV[5]))\n"
	"  flush()\n"
	"  if out[1] == 1 then return {1, now} end\n"
	"  table.insert(out, 2, now)\n"
	"  return out\n"
	"elseif op == 'hit' then\n"
	"  -- KEYS[1] policy key; ARGV[3] limit, [4] window, [5] mode\n"
	"  local cnt = hit(KEYS[1], tonum(ARGV[3]), tonum(ARGV[4]), tonum(ARGV[5]))\n"
	"  flush()\n"
	"  return cnt\n"
	"elseif op == 'probe' then\n"
	"  -- KEYS[1] visor:probe:<client>, KEYS[2] visor:bans; ARGV[3] ban_after, [4] window,\n"
	"  -- [5] mode, [6] ban_for, [7] client\n"
	"  local after, banfor = tonum(ARGV[3]), tonum(ARGV[6])\n"
	"  local cnt = hit(KEYS[1], after, tonum(ARGV[4]), tonum(ARGV[5]))\n"
	"  flush()\n"
	"  if cnt < after then return {0, now, 0} end\n"
	"  redis.call('DEL', KEYS[1])\n"
	"  redis.call('ZADD', KEYS[2], now + banfor, ARGV[7])\n"
	"  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"  if redis.call('PTTL', KEYS[2]) < banfor then redis.call('PEXPIRE', KEYS[2], banfor) end\n"
	"  return {1, now, now + banfor}\n"
	"elseif op == 'lk_check' then\n"
	"  local u = tonum(redis.call('HGET', KEYS[1], 'u'))\n"
	"  if u and u > now then return {1, u - now} end\n"
	"  return {0, 0}\n"
	"elseif op == 'lk_fail' then\n"
	"  -- ARGV[3] after, [4] base, [5] max: the lock doubles per failure past `after`, up to max\n"
	"  local after, base, max = tonum(ARGV[3]), tonum(ARGV[4]), tonum(ARGV[5])\n"
	"  local f = redis.call('HINCRBY', KEYS[1], 'f', 1)\n"
	"  local lock = 0\n"
	"  if f >= after then\n"
	"    lock = base\n"
	"    local i = f - after\n"
	"    while i > 0 and lock < max do\n"
	"      lock = lock * 2\n"
	"      i = i - 1\n"
	"    end\n"
	"    if lock > max then lock = max end\n"
	"    redis.call('HSET', KEYS[1], 'u', now + lock)\n"
	"  end\n"
	"  redis.call('PEXPIRE', KEYS[1], lock + max)\n"
	"  return {f, lock}\n"
	"elseif op == 'lk_ok' then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return redis.error_reply('visor: unknown store operation')\n";

size_t
store_lua_len(void)
{
	return sizeof(store_lua) - 1;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
store_clock_ms(void)
{
	/* monotonic, offset so that "now - window" never goes below zero */
	return now_ms() + ((int64_t)1 << 40);
}

/* ---- per worker -------------------------------------------------------------------------- */

struct store_w {
	struct worker    *w;
	struct mstore    *mem;
	struct redis     *rd;          /* created with the first redis section, kept until fini */
	int               redis_on;    /* the current generation has a redis section */
	enum redis_onerr  on_error;
	int               probes_on;
	struct event     *poll_ev;
	int               poll_busy;
	int64_t           err_logged_ms;
};

enum op_kind { OP_RL = 1, OP_LOCK, OP_PROBE, OP_HIT, OP_LK_FAIL, OP_LK_OK };

struct store_op {
	struct store_w   *sw;
	enum op_kind      kind;
	store_cb          cb;
	void             *arg;
	void             *q;           /* struct store_rlq / store_lockq (caller's memory) */
	struct redis_cmd *cmd;
	/* what a fire-and-forget operation needs to be replayed on the memory store */
	int64_t           a, b, c;     /* limit/window/mode, after/base/max, ban_after/ban_for */
	size_t            klen;
	char              key[];       /* OP_HIT/OP_LK_*: the key; OP_PROBE: the client */
};

static struct store_w *
sw_of(struct worker *w)
{
	return w->store;
}

static int
local_ok(const struct store_w *sw)
{
	return !sw->redis_on || sw->on_error == REDIS_LOCAL;
}

static void
log_store_error(struct store_w *sw, const char *what, const struct redisReply *rp)
{
	int64_t now = now_ms();

	METRIC_INC(&sw->w->m, redis_errors);
	if (sw->err_logged_ms && now - sw->err_logged_ms < ERR_LOG_EVERY_MS)
		return;
	sw->err_logged_ms = now;
	if (rp && rp->type == REDIS_REPLY_ERROR)
		log_warn("redis (worker %d): %s failed: %.*s", sw->w->id, what,
		    (int)MIN(rp->len, 200), rp->str);
	else
		log_warn("redis (worker %d): %s: unexpected reply", sw->w->id, what);
}

static struct store_op *
op_new(struct store_w *sw, enum op_kind kind, const char *key, size_t klen)
{
	struct store_op *op = calloc(1, sizeof(*op) + klen + 1);

	if (op == NULL)
		return NULL;
	op->sw = sw;
	op->kind = kind;
	op->klen = klen;
	if (klen)
		memcpy(op->key, key, klen);
	return op;
}

/* Completes a caller's operation: frees it first, so the callback may do anything. */
static void
op_finish(struct store_op *op, enum store_res res)
{
	store_cb cb = op->cb;
	void *arg = op->arg;

	free(op);
	if (cb)
		cb(arg, res);
}

void
store_cancel(struct store_op *op)
{
	if (op == NULL)
		return;
	redis_cmd_detach(op->cmd);
	free(op);
}

static int
int_elem(const struct redisReply *rp, size_t i, int64_t *v)
{
	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || i >= rp->elements ||
	    rp->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	*v = rp->element[i]->integer;
	return 0;
}

/* Argument vector for one script call; numbers are formatted into `num`. */
struct argv {
	const char *v[8 + 4 * MAX_LIMITS];
	size_t      l[8 + 4 * MAX_LIMITS];
	char        num[6 + 4 * MAX_LIMITS][24];
	int         n, nn;
};

static void
arg_s(struct argv *a, const char *s, size_t n)
{
	a->v[a->n] = s;
	a->l[a->n++] = n;
}

/* A number argument (no printf: this runs per request). */
static void
arg_i(struct argv *a, int64_t x)
{
	char *p = a->num[a->nn++], tmp[24];
	uint64_t v = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
	size_t n = 0, i, o = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (x < 0)
		p[o++] = '-';
	for (i = 0; i < n; i++)
		p[o++] = tmp[n - 1 - i];
	arg_s(a, p, o);
}

/* ---- rate limits and revocation ------------------------------------------------------------ */

static void
rl_memory(struct store_w *sw, struct store_rlq *q)
{
	mstore_rl(sw->mem, store_clock_ms(), q);
}

static int
rl_parse(struct store_rlq *q, const struct redisReply *rp)
{
	int64_t v, adm, rem, reset;
	size_t i;

	if (int_elem(rp, 0, &v) < 0)
		return -1;
	q->from_memory = 0;
	q->revoked = v != 0;
	if (q->revoked) {
		q->admitted = 0;
		return 0;
	}
	if (rp->elements != 2 + 3 * q->n)
		return -1;
	q->admitted = 1;
	for (i = 0; i < q->n; i++) {
		if (int_elem(rp, 2 + 3 * i, &adm) < 0 || int_elem(rp, 3 + 3 * i, &rem) < 0 ||
		    int_elem(rp, 4 + 3 * i, &reset) < 0)
			return -1;
		q->lim[i].admitted = adm != 0;
		q->lim[i].remaining = rem;
		q->lim[i].reset_ms = reset;
		if (!adm)
			q->admitted = 0;
	}
	return 0;
}

static void
on_rl_reply(void *arg, const struct redisReply *rp)
{
	struct store_op *op = arg;
	struct store_w *sw = op->sw;
	struct store_rlq *q = op->q;

	if (rp && rl_parse(q, rp) == 0) {
		op_finish(op, STORE_OK);
		return;
	}
	if (rp)
		log_store_error(sw, "rate limit script", rp);
	if (local_ok(sw)) {
		rl_memory(sw, q);
		op_finish(op, STORE_OK);
	} else {
		op_finish(op, STORE_UNAVAILABLE);
	}
}

enum store_res
store_rl(struct worker *w, struct store_rlq *q, store_cb cb, void *arg, struct store_op **opp)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op;
	struct argv a;
	size_t i;
	int flags = 0, nkeys;

	*opp = NULL;
	q->revoked = 0;
	q->admitted = 0;
	q->from_memory = 0;
	if (!sw->redis_on) {
		rl_memory(sw, q);
		return STORE_OK;
	}
	if (q->n <= MAX_LIMITS && redis_is_up(sw->rd) && (op = op_new(sw, OP_RL, NULL, 0))) {
		a.n = a.nn = 0;
		for (i = 0; i < q->n; i++)
			arg_s(&a, q->lim[i].key, q->lim[i].klen);
		if (q->revocation && q->jti) {
			arg_s(&a, q->jti, q->jti_len);
			flags |= 1;
		}
		if (q->revocation && q->sub) {
			arg_s(&a, q->sub, q->sub_len);
			flags |= 2;
		}
		nkeys = a.n;
		arg_s(&a, "rl", 2);
		arg_s(&a, "0", 1);
		arg_i(&a, (int64_t)q->n);
		arg_i(&a, flags);
		arg_i(&a, q->iat);
		for (i = 0; i < q->n; i++) {
			arg_i(&a, q->lim[i].limit);
			arg_i(&a, q->lim[i].window_ms);
			arg_i(&a, q->lim[i].mode);
			arg_s(&a, q->lim[i].check_only ? "1" : "0", 1);
		}
		op->cb = cb;
		op->arg = arg;
		op->q = q;
		op->cmd = redis_script(sw->rd, nkeys, a.n, a.v, a.l, on_rl_reply, op);
		if (op->cmd) {
			*opp = op;
			return STORE_PENDING;
		}
		free(op);
	}
	if (local_ok(sw)) {
		rl_memory(sw, q);
		return STORE_OK;
	}
	return STORE_UNAVAILABLE;
}

/* ---- fire and forget: failure hits, lockout results ------------------------------------------ */

static void
fire_memory(struct store_op *op)
{
	struct store_w *sw = op->sw;
	struct store_limit l;

	switch (op->kind) {
	case OP_HIT:
		memset(&l, 0, sizeof(l));
		l.key = op->key;
		l.klen = op->klen;
		l.limit = op->a;
		l.window_ms = op->b;
		l.mode = (int)op->c;
		mstore_hit(sw->mem, store_clock_ms(), &l);
		break;
	case OP_LK_FAIL:
		mstore_lockout_fail(sw->mem, store_clock_ms(), op->key, op->klen, op->a, op->b, op->c);
		break;
	case OP_LK_OK:
		mstore_lockout_ok(sw->mem, op->key, op->klen);
		break;
	default:
		break;
	}
}

static void
on_fire_reply(void *arg, const struct redisReply *rp)
{
	struct store_op *op = arg;

	if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
		if (rp)
			log_store_error(op->sw, "store update", rp);
		if (local_ok(op->sw))
			fire_memory(op);
	}
	free(op);
}

static void
fire(struct store_w *sw, struct store_op *op)
{
	struct argv a;

	if (!sw->redis_on) {
		fire_memory(op);
		free(op);
		return;
	}
	a.n = a.nn = 0;
	arg_s(&a, op->key, op->klen);
	switch (op->kind) {
	case OP_HIT:
		arg_s(&a, "hit", 3);
		arg_s(&a, "0", 1);
		arg_i(&a, op->a);
		arg_i(&a, op->b);
		arg_i(&a, op->c);
		break;
	case OP_LK_FAIL:
		arg_s(&a, "lk_fail", 7);
		arg_s(&a, "0", 1);
		arg_i(&a, op->a);
		arg_i(&a, op->b);
		arg_i(&a, op->c);
		break;
	default:
		arg_s(&a, "lk_ok", 5);
		arg_s(&a, "0", 1);
		break;
	}
	op->cmd = redis_is_up(sw->rd) ? redis_script(sw->rd, 1, a.n, a.v, a.l, on_fire_reply, op) :
	    NULL;
	if (op->cmd == NULL) {
		if (local_ok(sw))
			fire_memory(op);
		free(op);
	}
}

void
store_rl_hit(struct worker *w, const struct store_limit *l)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op = op_new(sw, OP_HIT, l->key, l->klen);

	if (op == NULL)
		return;
	op->a = l->limit;
	op->b = l->window_ms;
	op->c = l->mode;
	fire(sw, op);
}

void
store_lockout_result(struct worker *w, const char *key, size_t klen, int failed, int64_t after,
    int64_t base_ms, int64_t max_ms)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op = op_new(sw, failed ? OP_LK_FAIL : OP_LK_OK, key, klen);

	if (op == NULL)
		return;
	op->a = after;
	op->b = base_ms;
	op->c = max_ms;
	fire(sw, op);
}

/* ---- lockout check ----------------------------------------------------------------------------- */

static void
on_lock_reply(void *arg, const struct redisReply *rp)
{
	struct store_op *op = arg;
	struct store_w *sw = op->sw;
	struct store_lockq *q = op->q;
	int64_t locked, retry;

	if (int_elem(rp, 0, &locked) == 0 && int_elem(rp, 1, &retry) == 0) {
		q->locked = locked != 0;
		q->retry_ms = retry;
		op_finish(op, STORE_OK);
		return;
	}
	if (rp)
		log_store_error(sw, "lockout script", rp);
	if (local_ok(sw)) {
		mstore_lockout_check(sw->mem, store_clock_ms(), q);
		op_finish(op, STORE_OK);
	} else {
		op_finish(op, STORE_UNAVAILABLE);
	}
}

enum store_res
store_lockout_check(struct worker *w, struct store_lockq *q, store_cb cb, void *arg,
    struct store_op **opp)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op;
	struct argv a;

	*opp = NULL;
	q->locked = 0;
	q->retry_ms = 0;
	if (!sw->redis_on) {
		mstore_lockout_check(sw->mem, store_clock_ms(), q);
		return STORE_OK;
	}
	if (redis_is_up(sw->rd) && (op = op_new(sw, OP_LOCK, NULL, 0)) != NULL) {
		a.n = a.nn = 0;
		arg_s(&a, q->key, q->klen);
		arg_s(&a, "lk_check", 8);
		arg_s(&a, "0", 1);
		op->cb = cb;
		op->arg = arg;
		op->q = q;
		op->cmd = redis_script(sw->rd, 1, a.n, a.v, a.l, on_lock_reply, op);
		if (op->cmd) {
			*opp = op;
			return STORE_PENDING;
		}
		free(op);
	}
	if (local_ok(sw)) {
		mstore_lockout_check(sw->mem, store_clock_ms(), q);
		return STORE_OK;
	}
	return STORE_UNAVAILABLE;
}

/* ---- probes and bans ----------------------------------------------------------------------------- */

/* "visor:<what>:<client>" into buf (room for 16 + klen bytes). */
static size_t
mkkey(char *buf, const char *what, const char *client, size_t klen)
{
	size_t n = strlen(what);

	memcpy(buf, what, n);
	memcpy(buf + n, client, klen);
	buf[n + klen] = '\0';
	return n + klen;
}

static void
probe_memory(struct store_w *sw, const char *client, size_t klen, int64_t ban_after,
    int64_t ban_for_ms)
{
	char pk[INET6_ADDRSTRLEN + 64], bk[INET6_ADDRSTRLEN + 64];
	size_t pl, bl;

	if (klen > INET6_ADDRSTRLEN + 32)
		return;
	pl = mkkey(pk, "visor:probe:", client, klen);
	bl = mkkey(bk, "visor:ban:", client, klen);
	mstore_probe(sw->mem, store_clock_ms(), pk, pl, bk, bl, ban_after, ban_for_ms);
}

/* A ban known from Redis: cached until its end, but never longer than BAN_CACHE_MS past the
 * moment Redis confirmed it (polls refresh it). `rem` = ms left on the ban. */
static void
ban_cache(struct store_w *sw, const char *client, size_t klen, int64_t rem)
{
	char bk[INET6_ADDRSTRLEN + 64];
	size_t bl;
	int64_t now = store_clock_ms();

	if (rem <= 0 || klen > INET6_ADDRSTRLEN + 32)
		return;
	bl = mkkey(bk, "visor:ban:", client, klen);
	mstore_ban(sw->mem, now, bk, bl, now + MIN(rem, BAN_CACHE_MS));
}

static void
on_probe_reply(void *arg, const struct redisReply *rp)
{
	struct store_op *op = arg;
	struct store_w *sw = op->sw;
	int64_t banned, now, until;

	if (int_elem(rp, 0, &banned) == 0 && int_elem(rp, 1, &now) == 0 &&
	    int_elem(rp, 2, &until) == 0) {
		if (banned)
			ban_cache(sw, op->key, op->klen, until - now);
	} else {
		if (rp)
			log_store_error(sw, "probe script", rp);
		probe_memory(sw, op->key, op->klen, op->a, op->b);
	}
	op_finish(op, STORE_OK);
}

enum store_res
store_probe(struct worker *w, const char *client, size_t klen, int64_t ban_after,
    int64_t ban_for_ms, store_cb cb, void *arg, struct store_op **opp)
{
	struct store_w *sw = sw_of(w);
	char pk[INET6_ADDRSTRLEN + 64];
	struct store_op *op;
	struct argv a;
	size_t pl;

	*opp = NULL;
	if (klen > INET6_ADDRSTRLEN + 32)
		return STORE_OK;
	if (sw->redis_on && redis_is_up(sw->rd) &&
	    (op = op_new(sw, OP_PROBE, client, klen)) != NULL) {
		pl = mkkey(pk, "visor:probe:", client, klen);
		a.n = a.nn = 0;
		arg_s(&a, pk, pl);
		arg_s(&a, "visor:bans", 10);
		arg_s(&a, "probe", 5);
		arg_s(&a, "0", 1);
		arg_i(&a, ban_after);
		arg_i(&a, PROBE_WINDOW_MS);
		arg_i(&a, rl_mode_for(ban_after));
		arg_i(&a, ban_for_ms);
		arg_s(&a, client, klen);
		op->a = ban_after;
		op->b = ban_for_ms;
		op->cb = cb;
		op->arg = arg;
		op->cmd = redis_script(sw->rd, 2, a.n, a.v, a.l, on_probe_reply, op);
		if (op->cmd) {
			*opp = op;
			return STORE_PENDING;
		}
		free(op);
	}
	probe_memory(sw, client, klen, ban_after, ban_for_ms);
	return STORE_OK;
}

int
store_banned(struct worker *w, const char *client, size_t klen)
{
	struct store_w *sw = sw_of(w);
	char bk[INET6_ADDRSTRLEN + 64];
	size_t bl;

	if (klen > INET6_ADDRSTRLEN + 32)
		return 0;
	bl = mkkey(bk, "visor:ban:", client, klen);
	return mstore_banned(sw->mem, store_clock_ms(), bk, bl, NULL);
}

static void
on_poll_reply(void *arg, const struct redisReply *rp)
{
	struct store_w *sw = arg;
	int64_t wall = wall_ms(), score;
	size_t i;

	sw->poll_busy = 0;
	if (rp == NULL)
		return;
	if (rp->type != REDIS_REPLY_ARRAY) {
		log_store_error(sw, "ban poll", rp);
		return;
	}
	for (i = 0; i + 1 < rp->elements; i += 2) {
		const struct redisReply *m = rp->element[i], *s = rp->element[i + 1];
		char buf[32];
		if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
		    s->len == 0 || s->len >= sizeof(buf))
			continue;
		memcpy(buf, s->str, s->len);
		buf[s->len] = '\0';
		score = (int64_t)strtod(buf, NULL);
		ban_cache(sw, m->str, m->len, score - wall);
	}
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct store_w *sw = arg;
	const char *argv[8] = { "ZRANGEBYSCORE", "visor:bans", NULL, "+inf", "WITHSCORES",
	    "LIMIT", "0", BAN_POLL_MAX };
	size_t lens[8];
	char min[24];
	int i;

	(void)fd;
	(void)what;
	if (!sw->redis_on || !sw->probes_on || sw->poll_busy || !redis_is_up(sw->rd))
		return;
	snprintf(min, sizeof(min), "%lld", (long long)wall_ms());
	argv[2] = min;
	for (i = 0; i < 8; i++)
		lens[i] = strlen(argv[i]);
	if (redis_command(sw->rd, 8, argv, lens, on_poll_reply, sw))
		sw->poll_busy = 1;
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

int
store_worker_init(struct worker *w, struct mstore *mem)
{
	struct store_w *sw = calloc(1, sizeof(*sw));
	struct timeval tv = { BAN_POLL_MS / 1000, (BAN_POLL_MS % 1000) * 1000 };

	if (sw == NULL)
		return -1;
	sw->w = w;
	sw->mem = mem;
	sw->poll_ev = event_new(w->base, -1, EV_PERSIST, on_poll, sw);
	if (sw->poll_ev == NULL || mem == NULL) {
		if (sw->poll_ev)
			event_free(sw->poll_ev);
		free(sw);
		return -1;
	}
	event_add(sw->poll_ev, &tv);
	w->store = sw;
	return 0;
}

void
store_worker_conf(struct worker *w, const struct conf *c)
{
	struct store_w *sw = sw_of(w);

	if (sw == NULL)
		return;
	sw->on_error = c->redis.on_error;
	sw->probes_on = c->probes.enabled;
	if (c->redis.enabled && sw->rd == NULL) {
		sw->rd = redis_new(w->base, &w->m, w->id, store_lua, store_lua_len());
		if (sw->rd == NULL)
			log_error("worker %d: cannot create the Redis client; using memory", w->id);
	}
	/* off first: callbacks failed by a reconfiguration must see the new mode */
	sw->redis_on = 0;
	if (sw->rd)
		redis_configure(sw->rd, c);
	sw->redis_on = c->redis.enabled && sw->rd != NULL;
}

void
store_worker_fini(struct worker *w)
{
	struct store_w *sw = sw_of(w);

	if (sw == NULL)
		return;
	redis_free(sw->rd);             /* fails what is in flight: callbacks run now */
	sw->rd = NULL;
	if (sw->poll_ev)
		event_free(sw->poll_ev);
	free(sw);
	w->store = NULL;
}

int
store_ready(struct worker *const *ws, int n, const struct conf *c)
{
	int i;

	if (!c->redis.enabled || c->redis.on_error != REDIS_CLOSED)
		return 1;
	for (i = 0; i < n; i++) {
		const struct store_w *sw = ws[i] ? ws[i]->store : NULL;
		if (sw == NULL || !redis_is_up(sw->rd))
			return 0;
	}
	return 1;
}

/* ---- keys ------------------------------------------------------------------------------------------ */

size_t
store_ip_key(int family, const uint8_t bin[16], const char *ip, char *out, size_t outlen)
{
	static const uint8_t zero12[12];
	uint8_t net[16];
	size_t n;

	if (outlen < INET6_ADDRSTRLEN + 4)
		return 0;
	if (family != AF_INET6) {
		n = strlen(ip);
		if (n >= outlen)
			return 0;
		memcpy(out, ip, n + 1);
		return n;
	}
	/* ::a.b.c.d (IPv4-compatible, written with a dot) is the IPv4 client, as in
	 * express-rate-limit; any other IPv6 address is grouped by its /56 */
	if (memcmp(bin, zero12, 12) == 0 && strchr(ip, '.') != NULL) {
		if (inet_ntop(AF_INET, bin + 12, out, (socklen_t)outlen) == NULL)
			return 0;
		return strlen(out);
	}
	memcpy(net, bin, 7);
	memset(net + 7, 0, 9);
	if (inet_ntop(AF_INET6, net, out, (socklen_t)outlen) == NULL)
		return 0;
	n = strlen(out);
	memcpy(out + n, "/56", 4);
	return n + 3;
}
