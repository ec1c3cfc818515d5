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
	"-- visor store script: every operation visor asks of Redis, one EVALSHA each.\n"
	"-- The algorithm is described in src/store.h and docs/rate-limits.md; src/mstore.c is the\n"
	"-- same algorithm in C. ARGV[1] = operation, ARGV[2] = clock in ms (0: Redis TIME, so every\n"
	"-- visor instance shares one clock). Keys come in KEYS, never built here.\n"
	"pcall(redis.replicate_commands)\n"
	"local op, now = ARGV[1], tonumber(ARGV[2])\n"
	"if now == 0 then\n"
	"  local t = redis.call('TIME')\n"
	"  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"end\n"
	"local NB = 60\n"
	"\n"
	"local function fdiv(a, b)\n"
	"  local q = math.floor(a / b)\n"
	"  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end\n"
	"  return q\n"
	"end\n"
	"\n"
	"-- Sliding log: a LIST of admission times (ms), newest first; t counts while now - t < w.\n"
	"local function log_read(k, limit, w)\n"
	"  local n = redis.pcall('LLEN', k)\n"
	"  if type(n) ~= 'number' then redis.call('DEL', k); n = 0 end\n"
	"  local oldest\n"
	"  while n > 0 do\n"
	"    oldest = tonumber(redis.call('LINDEX', k, -1))\n"
	"    if oldest and oldest > now - w then break end\n"
	"    redis.call('RPOP', k)\n"
	"    n = n - 1\n"
	"  end\n"
	"  local s = {n = n, reset = w, retry = w}\n"
	"  if n > 0 then s.reset = oldest + w - now end\n"
	"  if n >= limit then s.retry = tonumber(redis.call('LINDEX', k, limit - 1)) + w - now end\n"
	"  return s\n"
	"end\n"
	"\n"
	"local function log_add(k, limit, w, s, trim)\n"
	"  local n = redis.call('LPUSH', k, now)\n"
	"  if trim and n > limit then\n"
	"    redis.call('LTRIM', k, 0, limit - 1)\n"
	"    n = limit\n"
	"  end\n"
	"  redis.call('PEXPIRE', k, w)\n"
	"  if s.n == 0 then return n, w end\n"
	"  return n, s.reset\n"
	"end\n"
	"\n"
	"-- Buckets: a HASH {lo = oldest bucket holding admissions, s = sum, b = width, <k> = admissions\n"
	"-- in bucket k}; bucket k counts while now < (k + 1) * b + w. Steady state: one HMGET, one HSET.\n"
	"local function bk_read(k, limit, w)\n"
	"  local b = fdiv(w + NB - 1, NB)\n"
	"  local L, c = fdiv(now - w, b), fdiv(now, b)\n"
	"  local s = {b = b, c = c, n = 0, reset = w, retry = w, fresh = true, cur = 0}\n"
	"  local v = redis.pcall('HMGET', k, 'lo', 's', 'b', c)\n"
	"  if v.err then\n"
	"    redis.call('DEL', k)\n"
	"    return s\n"
	"  end\n"
	"  local lo, sum, bb = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])\n"
	"  if not lo or not sum or bb ~= b then\n"
	"    if v[1] or v[2] or v[3] then redis.call('DEL', k) end\n"
	"    return s\n"
	"  end\n"
	"  s.fresh, s.cur = false, tonumber(v[4]) or 0\n"
	"  local pruned = false\n"
	"  if lo < L then\n"
	"    pruned = true\n"
	"    if L - lo > NB + 1 then\n"
	"      sum = 0\n"
	"    else\n"
	"      for i = lo, L - 1 do\n"
	"        local x = tonumber(redis.call('HGET', k, i))\n"
	"        if x then\n"
	"          sum = sum - x\n"
	"          redis.call('HDEL', k, i)\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    lo = L\n"
	"    if sum <= 0 then\n"
	"      redis.call('DEL', k)\n"
	"      s.fresh, s.cur, sum = true, 0, 0\n"
	"    end\n"
	"  end\n"
	"  s.n = sum\n"
	"  if sum > 0 then\n"
	"    if pruned then\n"
	"      -- the stored lo is the oldest bucket holding admissions; after a prune, find it again\n"
	"      for i = lo, c do\n"
	"        if redis.call('HEXISTS', k, i) == 1 then\n"
	"          s.oldest = i\n"
	"          break\n"
	"        end\n"
	"      end\n"
	"      redis.call('HSET', k, 'lo', s.oldest or c, 's', sum)\n"
	"    else\n"
	"      s.oldest = lo\n"
	"    end\n"
	"    if s.oldest then s.reset = (s.oldest + 1) * b + w - now end\n"
	"    if sum >= limit then\n"
	"      local acc = 0\n"
	"      for i = s.oldest or lo, c do\n"
	"        local x = tonumber(redis.call('HGET', k, i))\n"
	"        if x then\n"
	"          acc = acc + x\n"
	"          if sum - acc < limit then\n"
	"            s.retry = (i + 1) * b + w - now\n"
	"            break\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  return s\n"
	"end\n"
	"\n"
	"local function bk_add(k, limit, w, s)\n"
	"  local c, b = s.c, s.b\n"
	"  local oldest = s.oldest or c\n"
	"  if c < oldest then oldest = c end\n"
	"  local sum = s.n + 1\n"
	"  if s.fresh then\n"
	"    redis.call('HSET', k, c, 1, 'lo', oldest, 's', sum, 'b', b)\n"
	"  else\n"
	"    redis.call('HSET', k, c, s.cur + 1, 'lo', oldest, 's', sum)\n"
	"  end\n"
	"  -- the key lives as long as its newest bucket counts: set once per bucket\n"
	"  if s.cur == 0 then redis.call('PEXPIRE', k, (c + 1) * b + w - now) end\n"
	"  return sum, (oldest + 1) * b + w - now\n"
	"end\n"
	"\n"
	"local function hit(k, limit, w, mode)\n"
	"  if mode == 1 then return (log_add(k, limit, w, log_read(k, limit, w), true)) end\n"
	"  return (bk_add(k, limit, w, bk_read(k, limit, w)))\n"
	"end\n"
	"\n"
	"if op == 'rl' then\n"
	"  -- KEYS: the n policy keys, then visor:revoked:<jti> (flags bit 1), then\n"
	"  -- visor:revoked-before:<sub> (flags bit 2). ARGV[3] n, [4] flags, [5] iat, then per policy\n"
	"  -- limit, window, mode (1 log, 2 buckets), check_only. All policies admit or none records.\n"
	"  local n, flags, iat = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"  local ki = n + 1\n"
	"  if flags % 2 == 1 then\n"
	"    if redis.call('EXISTS', KEYS[ki]) == 1 then return {1, now} end\n"
	"    ki = ki + 1\n"
	"  end\n"
	"  if flags >= 2 then\n"
	"    local rb = tonumber(redis.call('GET', KEYS[ki]))\n"
	"    if rb and rb > iat then return {1, now} end\n"
	"  end\n"
	"  local st, all = {}, true\n"
	"  for i = 1, n do\n"
	"    local a = 6 + (i - 1) * 4\n"
	"    local limit, w, mode = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
	"    local s\n"
	"    if mode == 1 then s = log_read(KEYS[i], limit, w) else s = bk_read(KEYS[i], limit, w) end\n"
	"    s.limit, s.w, s.mode, s.chk = limit, w, mode, ARGV[a + 3] == '1'\n"
	"    if s.n >= limit then all = false end\n"
	"    st[i] = s\n"
	"  end\n"
	"  local out = {0, now}\n"
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
	"        cnt, reset = log_add(KEYS[i], s.limit, s.w, s, false)\n"
	"      else\n"
	"        cnt, reset = bk_add(KEYS[i], s.limit, s.w, s)\n"
	"      end\n"
	"      rem = math.max(s.limit - cnt, 0)\n"
	"    end\n"
	"    out[#out + 1] = adm\n"
	"    out[#out + 1] = rem\n"
	"    out[#out + 1] = reset\n"
	"  end\n"
	"  return out\n"
	"elseif op == 'hit' then\n"
	"  -- KEYS[1] policy key; ARGV[3] limit, [4] window, [5] mode\n"
	"  return hit(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))\n"
	"elseif op == 'probe' then\n"
	"  -- KEYS[1] visor:probe:<client>, KEYS[2] visor:bans; ARGV[3] ban_after, [4] window,\n"
	"  -- [5] mode, [6] ban_for, [7] client\n"
	"  local after, banfor = tonumber(ARGV[3]), tonumber(ARGV[6])\n"
	"  local cnt = hit(KEYS[1], after, tonumber(ARGV[4]), tonumber(ARGV[5]))\n"
	"  if cnt < after then return {0, now, 0} end\n"
	"  redis.call('DEL', KEYS[1])\n"
	"  redis.call('ZADD', KEYS[2], now + banfor, ARGV[7])\n"
	"  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"  if redis.call('PTTL', KEYS[2]) < banfor then redis.call('PEXPIRE', KEYS[2], banfor) end\n"
	"  return {1, now, now + banfor}\n"
	"elseif op == 'lk_check' then\n"
	"  local u = tonumber(redis.call('HGET', KEYS[1], 'u'))\n"
	"  if u and u > now then return {1, u - now} end\n"
	"  return {0, 0}\n"
	"elseif op == 'lk_fail' then\n"
	"  -- ARGV[3] after, [4] base, [5] max: the lock doubles per failure past `after`, up to max\n"
	"  local after, base, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
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
