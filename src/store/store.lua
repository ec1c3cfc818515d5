-- visor store script: every operation visor asks of Redis.
-- The algorithm is described in src/store/store.h and docs/rate-limits.md; src/store/mstore.c is the
-- same algorithm in C. ARGV[1] = operation, ARGV[2] = clock in ms (0: Redis TIME, so
-- every visor instance shares one clock). Keys come in KEYS, never built here.
--
-- One text, loaded one of two ways (src/store/redis.c chooses when it connects):
--   - a Functions library (Redis >= 7): redis.c puts "#!lua name=visor_<sha1>" and the line
--     "local FNAME = 'visor_<sha1>'" in front (sha1 of this text), and FUNCTION LOAD runs this
--     chunk once: it defines everything below and registers visor_<sha1>, so an FCALL runs
--     call() alone — none of the ~25 closures and tables built again per call;
--   - a script (Redis 6, or a server that refuses FUNCTION LOAD): SCRIPT LOAD, then each
--     EVALSHA runs the whole chunk, which defines everything and ends in call(KEYS, ARGV).
-- Either way call() answers the same arguments alike. A library's load sees no global but
-- `redis` (no tonumber, no math, no KEYS): the top level only defines; call() takes the rest.
local KEYS, ARGV, now = false, false, 0      -- the current call's
local NB = 60
local rcall, rpcall, tonum, floor, fmt          -- redis.call, redis.pcall, tonumber,
                                               -- math.floor, string.format: set by call()

-- floor(a / b), exactly, for whole numbers (a % b is the VM's own: no C call)
local function fdiv(a, b)
  local q = (a - a % b) / b
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

-- ---- keys seen once per run -----------------------------------------------------------
-- A batch evaluates many requests that share keys (one client, one user), so every
-- policy key goes through V: read from Redis at most once per run, changed in memory,
-- written once by flush(). The helpers below behave exactly like the Redis commands they
-- are named after, so the algorithm reads as if it talked to Redis directly, and a batch
-- answers exactly what the same requests sent one by one would. (Tables are built whole:
-- growing a Lua table field by field costs more than the Redis commands saved.)
--   LIST  s.h: items pushed during the run (newest last), in front of the stored list,
--         of which s.n0 - s.pop items remain (s.pop popped from its tail; s.m caches
--         LINDEX); s.gone: it became empty during the run (Redis deleted it and its TTL).
--   HASH  s.f: field -> value, for the fields read or written: a string, or false when
--         absent, as read; a number as written (the algorithm only writes numbers); DEL
--         when deleted (s.nd of them). Bucket fields are numbers, as Redis names them from
--         numbers. s.all: every other field is absent (after DEL); s.del: DEL first.
--         s.w, s.b, s.lo, s.c: the window last used, its bucket width, oldest live and
--         current bucket. s.wb: the bucket bk_add counted in (true: more than one).
--   s.px: PEXPIRE to apply (ms; only ever set right after a write, so the key exists).
local V, A, DEL = {}, {}, {}     -- V: set per call; A: scratch for arguments
local KL, nkl = {}, 0            -- the keys of V in the order opened (KL[1..nkl])
local HS, nhs, HS_MAX = {}, 0, 1024   -- HASH states by key, for reuse (see vopen)

-- Numbers go to Redis as strings made here: every number the algorithm writes is a whole
-- number, and "%d" costs Redis's Lua a fraction of the "%.14g" its own conversion uses (the
-- same digits below 1e14). A bucket's name is made once per call and key (istr's one entry).
local in_, is_ = false, ''
local function istr(x)
  if x ~= in_ then in_, is_ = x, fmt('%d', x) end
  return is_
end

-- tonumber, for strings that recur from call to call — an argument (a limit, a window, a
-- count), a bucket's lo and width, a log's oldest entries, TIME's seconds. In a library, a
-- memo of it (see the end of this chunk).
local num

-- The n numbers h[1..n] as arguments (a run's log entries: mostly one value, made once).
local function nums(h, n)
  local last, ls = false, ''
  for i = 1, n do
    local v = h[i]
    if v ~= last then last, ls = v, fmt('%d', v) end
    A[i] = ls
  end
  return unpack(A, 1, n)
end

-- Field x of f (named xs in Redis) into A[n+1..n+2] when written (a number); the new n.
local function hput(f, x, xs, n)
  local v = f[x]
  if type(v) ~= 'number' then return n end
  A[n + 1], A[n + 2] = xs, fmt('%d', v)
  return n + 2
end

local function flush_key(k, s)
  if s.t == 'l' then
    local nh = #s.h
    if s.gone then
      rcall('DEL', k)
      if nh > 0 then rcall('LPUSH', k, nums(s.h, nh)) end
    else
      if nh > 0 then rcall('LPUSH', k, nums(s.h, nh)) end
      if s.pop > 0 then rcall('LTRIM', k, 0, nh + s.n0 - s.pop - 1) end
    end
  elseif s.f then
    local f, n = s.f, 0
    if s.del then rcall('DEL', k) end
    if s.nd > 0 and not s.del then
      for x, v in pairs(f) do
        if v == DEL then
          n = n + 1
          A[n] = x
        end
      end
      if n > 0 then rcall('HDEL', k, unpack(A, 1, n)) end
      n = 0
    end
    local wb = s.wb
    if wb == true then
      for x, v in pairs(f) do
        if type(v) == 'number' then
          if type(x) == 'number' then x = istr(x) end
          A[n + 1], A[n + 2] = x, fmt('%d', v)
          n = n + 2
        end
      end
    else
      -- only lo, s, b and the one bucket bk_add counted in are ever written
      n = hput(f, 'lo', 'lo', hput(f, 's', 's', hput(f, 'b', 'b', n)))
      if wb then n = hput(f, wb, istr(wb), n) end
    end
    if n > 0 then rcall('HSET', k, unpack(A, 1, n)) end
  end
  if s.px then rcall('PEXPIRE', k, s.px) end
end

-- Writes every key out; the run's use of V ends here.
local function flush()
  for i = 1, nkl do
    local k = KL[i]
    flush_key(k, V[k])
  end
end

-- The state of key k seen as type t ('l' LIST, 'h' HASH). A LIST that is something else
-- is deleted, as the algorithm always did; the same key used as the other type within one
-- run (a policy whose limit crossed 128 in a reload) is written out first.
local function vopen(k, t)
  local s = V[k]
  if s then
    if s.t == t then return s end
    flush_key(k, s)
  end
  if not s then
    nkl = nkl + 1
    KL[nkl] = k
  end
  if t == 'l' then
    local n = rpcall('LLEN', k)
    if type(n) ~= 'number' then
      rcall('DEL', k)
      n = 0
    end
    s = {t = 'l', n0 = n, pop = 0, h = {}, m = {}, gone = false, px = false}
  else
    -- a HASH state is reset in place when its table is known from an earlier call (a
    -- library keeps HS between calls, bounded like NUMS): cheaper than building it
    s = HS[k]
    if s then
      s.f, s.all, s.del, s.nd, s.px, s.w, s.wb = false, false, false, 0, false, false, false
    else
      s = {t = 'h', f = false, all = false, del = false, nd = 0, px = false, w = false, b = 0,
        lo = 0, c = 0, wb = false}
      if nhs >= HS_MAX then HS, nhs = {}, 0 end
      HS[k], nhs = s, nhs + 1
    end
  end
  V[k] = s
  return s
end

local function llen(s)
  return s.n0 - s.pop + #s.h
end

local function lindex(k, s, i)
  local n = llen(s)
  if i < 0 then i = n + i end
  if i < 0 or i >= n then return false end
  local nh = #s.h
  if i < nh then return s.h[nh - i] end
  i = i - nh
  local v = s.m[i]
  if v == nil then
    v = rcall('LINDEX', k, i)
    s.m[i] = v
  end
  return v
end

local function emptied(s)
  if llen(s) == 0 then
    s.gone, s.px, s.h, s.pop = true, false, {}, s.n0
  end
end

local function rpop(s)
  if s.n0 - s.pop > 0 then
    s.pop = s.pop + 1
  elseif #s.h > 0 then
    table.remove(s.h, 1)
  end
  emptied(s)
end

-- LTRIM k 0 last
local function ltrim(s, last)
  local keep, nh = last + 1, #s.h
  if keep < nh then
    local h = {}
    for i = nh - keep + 1, nh do h[#h + 1] = s.h[i] end
    s.h, s.pop = h, s.n0
  elseif s.n0 - s.pop > keep - nh then
    s.pop = s.n0 - (keep - nh)
  end
  emptied(s)
end

local function hget(k, s, x)
  local v = s.f[x]
  if v == nil then
    if s.all then return false end
    v = rcall('HGET', k, x)
    s.f[x] = v
  end
  if v == DEL then return false end
  return v
end

local function hdel(s, x)
  if s.f[x] ~= DEL then
    s.f[x] = DEL
    s.nd = s.nd + 1
  end
end

local function hdelkey(s)
  s.f, s.all, s.del, s.nd, s.px = {}, true, true, 0, false
end

-- ---- the algorithm ---------------------------------------------------------------------

-- Sliding log: a LIST of admission times (ms), newest first; t counts while now - t < w.
local function log_read(k, limit, w, r)
  local s = vopen(k, 'l')
  local n = llen(s)
  local oldest
  while n > 0 do
    oldest = num(lindex(k, s, -1))
    if oldest and oldest > now - w then break end
    rpop(s)
    n = n - 1
  end
  r.n, r.reset, r.retry = n, w, w
  if n > 0 then r.reset = oldest + w - now end
  if n >= limit then r.retry = num(lindex(k, s, limit - 1)) + w - now end
  return r
end

-- Records c admissions at now (c > 1: a run of identical requests, as c calls would).
local function log_add(k, limit, w, r, trim, c)
  local s = vopen(k, 'l')
  local h = s.h
  for _ = 1, c do h[#h + 1] = now end
  local n = llen(s)
  if trim and n > limit then
    ltrim(s, limit - 1)
    n = limit
  end
  s.px = w
  if r.n == 0 then return n, w end
  return n, r.reset
end

-- Buckets: a HASH {lo = oldest bucket holding admissions, s = sum, b = width, <k> =
-- admissions in bucket k}; bucket k counts while now < (k + 1) * b + w. Steady state: one
-- HMGET, one HSET per key and run.
local function bk_read(k, limit, w, r)
  local h = vopen(k, 'h')
  if h.w ~= w then
    local b = fdiv(w + NB - 1, NB)
    h.w, h.b, h.lo, h.c = w, b, fdiv(now - w, b), fdiv(now, b)
  end
  local b, L, c = h.b, h.lo, h.c
  r.b, r.c, r.n, r.reset, r.retry, r.fresh, r.cur, r.oldest = b, c, 0, w, w, true, 0, false
  -- HMGET lo s b <c>, through the cache
  local f = h.f
  if not h.all and (not f or f.lo == nil or f.s == nil or f.b == nil or f[c] == nil) then
    local v = rpcall('HMGET', k, 'lo', 's', 'b', istr(c))
    if v.err then
      hdelkey(h)
      return r
    end
    if not f then
      f = {lo = v[1], s = v[2], b = v[3], [c] = v[4]}
      h.f = f
    else
      if f.lo == nil then f.lo = v[1] end
      if f.s == nil then f.s = v[2] end
      if f.b == nil then f.b = v[3] end
      if f[c] == nil then f[c] = v[4] end
    end
  end
  -- (lo, s and b are never deleted alone; nil: absent after a DEL)
  local v1, v2, v3 = f.lo or false, f.s or false, f.b or false
  local lo, sum, bb = num(v1), tonum(v2), num(v3)
  if not lo or not sum or bb ~= b then
    if v1 or v2 or v3 then hdelkey(h) end
    return r
  end
  local x = f[c]
  r.fresh, r.cur = false, x and x ~= DEL and tonum(x) or 0
  local pruned = false
  if lo < L then
    pruned = true
    if L - lo > NB + 1 then
      sum = 0
    else
      for i = lo, L - 1 do
        local x = num(hget(k, h, i))
        if x then
          sum = sum - x
          hdel(h, i)
        end
      end
    end
    lo = L
    if sum <= 0 then
      hdelkey(h)
      r.fresh, r.cur, sum = true, 0, 0
    end
  end
  r.n = sum
  if sum > 0 then
    if pruned then
      -- the stored lo is the oldest bucket holding admissions; after a prune, find it
      for i = lo, c do
        if hget(k, h, i) then
          r.oldest = i
          break
        end
      end
      h.f.lo, h.f.s = r.oldest or c, sum
    else
      r.oldest = lo
    end
    if r.oldest then r.reset = (r.oldest + 1) * b + w - now end
    if sum >= limit then
      local acc = 0
      for i = r.oldest or lo, c do
        local x = num(hget(k, h, i))
        if x then
          acc = acc + x
          if sum - acc < limit then
            r.retry = (i + 1) * b + w - now
            break
          end
        end
      end
    end
  end
  return r
end

local function bk_add(k, limit, w, r, cnt)
  local h = vopen(k, 'h')
  local c, b = r.c, r.b
  local oldest = r.oldest or c
  if c < oldest then oldest = c end
  local sum = r.n + cnt
  local f = h.f
  f[c], f.s = r.cur + cnt, sum
  if h.wb ~= c then h.wb = h.wb == false and c or true end
  -- lo as read (or as the prune set it) stays: not written again
  if oldest ~= r.oldest then f.lo = oldest end
  if r.fresh then f.b = b end
  -- the key lives as long as its newest bucket counts: set once per bucket
  if r.cur == 0 then h.px = (c + 1) * b + w - now end
  return sum, (oldest + 1) * b + w - now
end

-- A policy's state as read (reused from one request to the next).
local function pstate()
  return {n = 0, reset = 0, retry = 0, b = 0, c = 0, fresh = false, cur = 0, oldest = false,
    limit = 0, w = 0, log = false, chk = false}
end

local function hit(k, limit, w, mode)
  local r = pstate()
  if mode == 1 then return (log_add(k, limit, w, log_read(k, limit, w, r), true, 1)) end
  return (bk_add(k, limit, w, bk_read(k, limit, w, r), 1))
end

-- Revocation keys are only read (your auth service writes them): once per run.
local RV = false
local ST = {}

-- A run: `left` identical requests (same keys, same policies, same token) evaluated in order
-- at the same clock. Its policy keys are KEYS[ki..ki+n-1], then visor:revoked:<jti> (flags
-- bit 1), then visor:revoked-before:<sub> (flags bit 2); per policy ARGV[ai..ai+3] = limit,
-- window, mode (1 log, 2 buckets), check_only. Appends one segment covering the first c
-- requests of the run and returns c:
--   1, c                      revoked (all of them: nothing they read changes)
--   3, c, then adm, rem, reset per policy   refused (all of them: a refusal records nothing,
--                             so every later one reads what this one read)
--   0, c, then adm, rem, reset per policy   the first request's answer; the c requests are
--                             admitted, the j-th (from 0) with rem - j on the policies that
--                             record; every recording policy records c admissions, as c
--                             requests one by one would (c stops where one would be full)
-- All policies admit or none records.
local function rl_seg(out, ki, ai, n, flags, iat, left)
  local kj = ki + n
  local revoked = false
  if flags > 0 and not RV then RV = {} end
  if flags % 2 == 1 then
    local k = KEYS[kj]
    if RV[k] == nil then RV[k] = rcall('EXISTS', k) == 1 end
    revoked = RV[k]
    kj = kj + 1
  end
  if flags >= 2 and not revoked then
    local k = KEYS[kj]
    if RV[k] == nil then RV[k] = num(rcall('GET', k)) end
    local rb = RV[k]
    if rb and rb > iat then revoked = true end
  end
  local o = #out
  if revoked then
    out[o + 1], out[o + 2] = 1, left
    return left
  end
  local st, all = ST, true
  for i = 1, n do
    local a = ai + (i - 1) * 4
    local limit, w, log = num(ARGV[a]), num(ARGV[a + 1]), ARGV[a + 2] == '1'
    local s = st[i]
    if not s then
      s = pstate()
      st[i] = s
    end
    local k = KEYS[ki + i - 1]
    if log then log_read(k, limit, w, s) else bk_read(k, limit, w, s) end
    s.limit, s.w, s.log, s.chk = limit, w, log, ARGV[a + 3] == '1'
    if s.n >= limit then all = false end
  end
  local c = left
  if all then
    for i = 1, n do
      local s = st[i]
      if not s.chk and s.limit - s.n < c then c = s.limit - s.n end
    end
    out[o + 1], out[o + 2] = 0, c
  else
    out[o + 1], out[o + 2] = 3, c
  end
  o = o + 2
  for i = 1, n do
    local s = st[i]
    local adm, rem, reset = 1, s.limit - s.n, s.reset
    if s.n >= s.limit then
      adm, rem, reset = 0, 0, s.retry
    elseif all and s.chk then
      rem = s.limit - s.n - 1
    elseif all then
      local cnt
      if s.log then
        cnt, reset = log_add(KEYS[ki + i - 1], s.limit, s.w, s, false, c)
      else
        cnt, reset = bk_add(KEYS[ki + i - 1], s.limit, s.w, s, c)
      end
      rem = s.limit - (cnt - c + 1)
      if rem < 0 then rem = 0 end
    end
    out[o + 1], out[o + 2], out[o + 3] = adm, rem, reset
    o = o + 3
  end
  return c
end

-- ---- the operations ----------------------------------------------------------------------

-- One call: keys, args as Redis passes them (KEYS, ARGV).
local function call(keys, args)
  if not rcall then
    rcall, rpcall, tonum, floor, fmt = redis.call, redis.pcall, tonumber, math.floor,
      string.format
  end
  if args[1] == 'xk' then
    -- Redis Cluster: one call carries the checks of every slot this node serves, so the keys
    -- cannot be declared (declared keys must share one slot): ARGV = 'xk', nk, the nk keys,
    -- then the arguments as usual. Redis refuses a key this node does not serve (the call's
    -- flags allow several slots of one node), which fails only the check that touched it.
    local nk, K, AV = tonum(args[2]), {}, {}
    for i = 1, nk do K[i] = args[2 + i] end
    for i = 3 + nk, #args do AV[#AV + 1] = args[i] end
    keys, args = K, AV
  end
  KEYS, ARGV = keys, args
  local op = args[1]
  now = num(args[2])
  if now == 0 then
    local t = rcall('TIME')
    local us = t[2] + 0
    now = num(t[1]) * 1000 + (us - us % 1000) / 1000
  end
  V, RV, nkl = {}, false, 0
  if op == 'batch' then
    -- ARGV[3] = number of runs; per run: count, n, flags, iat, then limit, window, mode,
    -- check_only per policy; KEYS: each run's keys, in order. The requests are evaluated in
    -- order, each exactly as if it came alone. Reply: {now, then per run the segments covering
    -- its requests in order (see rl_seg); 2, 1 for a request that failed (a revocation key of
    -- another type, a policy key holding junk): it leaves what it changed before failing, as
    -- the script failing for it alone would, and the others go on}.
    local runs = num(ARGV[3])
    local out = {now}
    local ki, ai = 1, 4
    for _ = 1, runs do
      local left, n, flags, iat = num(ARGV[ai]), num(ARGV[ai + 1]), 0, 0
      if ARGV[ai + 2] ~= '0' then flags, iat = num(ARGV[ai + 2]), num(ARGV[ai + 3]) end
      while left > 0 do
        local o = #out
        local ok, c = pcall(rl_seg, out, ki, ai + 4, n, flags, iat, left)
        if not ok then
          for i = #out, o + 1, -1 do out[i] = nil end
          out[o + 1], out[o + 2], c = 2, 1, 1
        end
        left = left - c
      end
      ki = ki + n + flags % 2 + (flags >= 2 and 1 or 0)
      ai = ai + 4 + 4 * n
    end
    flush()
    return out
  elseif op == 'rl' then
    -- one request: ARGV[3] n, [4] flags, [5] iat, then per policy limit, window, mode,
    -- check_only. Reply: {1, now} when revoked, else {0, now, then adm, rem, reset per
    -- policy}.
    local out = {}
    rl_seg(out, 1, 6, num(ARGV[3]), num(ARGV[4]), num(ARGV[5]), 1)
    flush()
    if out[1] == 1 then return {1, now} end
    out[1], out[2] = 0, now
    return out
  elseif op == 'hit' then
    -- KEYS[1] policy key; ARGV[3] limit, [4] window, [5] mode
    local cnt = hit(KEYS[1], tonum(ARGV[3]), tonum(ARGV[4]), tonum(ARGV[5]))
    flush()
    return cnt
  elseif op == 'probe' then
    -- KEYS[1] visor:probe:<client>, KEYS[2] visor:bans; ARGV[3] ban_after, [4] window,
    -- [5] mode, [6] ban_for, [7] client
    local after, banfor = tonum(ARGV[3]), tonum(ARGV[6])
    local cnt = hit(KEYS[1], after, tonum(ARGV[4]), tonum(ARGV[5]))
    flush()
    if cnt < after then return {0, now, 0} end
    rcall('DEL', KEYS[1])
    rcall('ZADD', KEYS[2], now + banfor, ARGV[7])
    rcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if rcall('PTTL', KEYS[2]) < banfor then rcall('PEXPIRE', KEYS[2], banfor) end
    return {1, now, now + banfor}
  elseif op == 'lk_check' then
    local u = tonum(rcall('HGET', KEYS[1], 'u'))
    if u and u > now then return {1, u - now} end
    return {0, 0}
  elseif op == 'lk_fail' then
    -- ARGV[3] after, [4] base, [5] max: the lock doubles per failure past `after`, up to max
    local after, base, max = tonum(ARGV[3]), tonum(ARGV[4]), tonum(ARGV[5])
    local f = rcall('HINCRBY', KEYS[1], 'f', 1)
    local lock = 0
    if f >= after then
      lock = base
      local i = f - after
      while i > 0 and lock < max do
        lock = lock * 2
        i = i - 1
      end
      if lock > max then lock = max end
      rcall('HSET', KEYS[1], 'u', now + lock)
    end
    rcall('PEXPIRE', KEYS[1], lock + max)
    return {f, lock}
  elseif op == 'undo' then
    -- Redis Cluster: a check whose keys live on several nodes recorded its admission on one
    -- node while another refused it; take that admission back. ARGV[3] the recording call's
    -- clock, then per key: mode, window. A log loses one entry of that time, a bucket one count
    -- (the same admission, whichever request made it: they are indistinguishable).
    local t = tonum(ARGV[3])
    for i = 1, #KEYS do
      local k, mode, w = KEYS[i], ARGV[2 + 2 * i], tonum(ARGV[3 + 2 * i])
      if mode == '1' then
        pcall(rcall, 'LREM', k, 1, t)
      elseif rcall('TYPE', k).ok == 'hash' then
        local c = fdiv(t, fdiv(w + NB - 1, NB))
        if tonum(rcall('HGET', k, c) or 0) > 0 then
          if rcall('HINCRBY', k, c, -1) <= 0 then rcall('HDEL', k, c) end
          if rcall('HINCRBY', k, 's', -1) <= 0 then rcall('DEL', k) end
        end
      end
    end
    return 0
  elseif op == 'lk_ok' then
    return rcall('DEL', KEYS[1])
  end
  return redis.error_reply('visor: unknown store operation')
end

if redis.register_function then
  -- Redis's Lua makes a number of a string with strtod, twice per tonumber: more than the
  -- Redis commands around it cost. A library remembers the strings it has seen between
  -- calls (bounded: emptied past NUMS_MAX). Junk gives false where tonumber gives nil.
  local NUMS, nnums, NUMS_MAX = {}, 0, 2048
  num = function(x)
    local v = NUMS[x]
    if v == nil then
      if x == nil then return false end
      v = tonum(x) or false
      if nnums >= NUMS_MAX then NUMS, nnums = {}, 0 end
      NUMS[x], nnums = v, nnums + 1
    end
    return v
  end
  -- a library's load: FNAME comes from the line redis.c puts in front. allow-cross-slot-keys:
  -- a Redis Cluster node's call touches keys of several of its slots ('xk'); without the
  -- flag Redis would refuse it (it changes nothing elsewhere).
  redis.register_function{function_name = FNAME, callback = call,
    flags = {'allow-cross-slot-keys'}}
else
  -- a script: EVAL runs this chunk per call (Redis < 5 replicates scripts verbatim unless
  -- told otherwise, and TIME before a write needs effects replication)
  -- (a memo would be built and dropped at every call: plain tonumber)
  pcall(redis.replicate_commands)
  num = tonumber
  return call(_G.KEYS, _G.ARGV)
end
