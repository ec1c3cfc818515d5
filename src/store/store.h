/* SPDX-License-Identifier: MIT
 * store — where rate-limit counters, lockouts, probe bans and revocations live: Redis (one
 * async hiredis connection per worker, redis.c) or, without a redis section (or while Redis is
 * away with on_error: local), the process-wide in-memory store shared by the workers
 * (mstore.c). Both run the same algorithms, described once here and in docs/rate-limits.md:
 * the Lua script in store.c and the C code in mstore.c are two spellings of it, and
 * tests/unit/test_store.c runs the same sequences through both and compares every answer.
 *
 * The filters (rl.c, lockout.c, probe.c) call the operations below and never see which store
 * answered. An operation either completes at once (STORE_OK: the in-memory store answered, the
 * results are in the caller's struct), is in flight (STORE_PENDING: the callback runs exactly
 * once later, from the worker's thread, unless store_cancel() was called first), or cannot be
 * answered (STORE_UNAVAILABLE: Redis is down or timed out and on_error is open or closed — the
 * caller applies that policy). With on_error: local a Redis failure is answered by the memory
 * store, so callers never see STORE_UNAVAILABLE in that mode.
 *
 * Never blocks; never calls a callback from inside the call that started the operation.
 */
#ifndef VISOR_STORE_H
#define VISOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct worker;
struct mstore;

/* ---- the algorithm, shared by the Lua script and the memory store ------------------------
 *
 * A policy `limit` per `window` (w ms) admits a request only if fewer than `limit` requests
 * were admitted in the window-long interval ending now, so no window-long interval ever holds
 * more than `limit` admissions. Two representations:
 *
 *  LOG     limit <= RL_LOG_MAX: the exact sliding log — the admission times (ms), newest first,
 *          at most `limit` of them; a time t counts while now - t < w.
 *  BUCKET  larger limits: the window is cut into buckets of b = ceil(w / RL_BUCKETS) ms; bucket
 *          k (times in [k*b, (k+1)*b)) counts while now < (k+1)*b + w, so every admission of the
 *          last w ms is counted, plus at most b ms more. Never more than `limit` in any window;
 *          at least `limit` admitted in any interval of w + b (b <= w/60 + 1 ms: within 1.7%).
 *          O(1) memory per key: at most RL_BUCKETS + 1 live buckets.
 *
 * For each request and policy: count = admissions still counted; admitted iff count < limit
 * (all of a request's policies must admit, then every one records the admission; a refused
 * request records nothing). `count: failures` policies only check (count < limit) and record
 * a hit later, from on_done, when the answer is >= 400.
 *   remaining = limit - count - 1 when admitted (the request itself is counted, as
 *               express-rate-limit reports it), limit - count otherwise, never below 0;
 *   reset_ms  = time until the oldest counted admission stops counting (remaining grows),
 *               or w when nothing is counted;
 *   refused:    reset_ms = the time until a request would be admitted (Retry-After).
 */
#define RL_LOG_MAX   128
#define RL_BUCKETS   60
#define RL_RING      64              /* memory store bucket ring, > RL_BUCKETS + 1 */

enum rl_mode { RL_MODE_LOG = 1, RL_MODE_BUCKET = 2 };

static inline int
rl_mode_for(int64_t limit)
{
	return limit <= RL_LOG_MAX ? RL_MODE_LOG : RL_MODE_BUCKET;
}

static inline int64_t
rl_bucket_ms(int64_t window_ms)
{
	return (window_ms + RL_BUCKETS - 1) / RL_BUCKETS;
}

/* Probes are counted per client over this interval (docs/security.md, probes). */
#define PROBE_WINDOW_MS (10 * 60 * 1000)

/* One policy to evaluate for a request. The key is the full store key
 * ("visor:rl:<policy>:<client>"); it must stay valid until the operation completes. */
struct store_limit {
	const char *key;
	size_t      klen;
	int64_t     limit;
	int64_t     window_ms;
	int         mode;            /* enum rl_mode */
	int         check_only;      /* count: failures */
	/* results */
	int         admitted;
	int64_t     remaining;
	int64_t     reset_ms;
};

/* A request's whole check: every policy, and the JWT revocation check, in one round trip. */
struct store_rlq {
	struct store_limit *lim;
	size_t              n;
	int                 revocation;   /* check jti / sub below */
	const char         *jti;          /* NULL: no jti key to look at */
	size_t              jti_len;
	const char         *sub;          /* NULL: no revoked-before key */
	size_t              sub_len;
	int64_t             iat;
	/* results */
	int                 revoked;
	int                 admitted;     /* every policy admitted (and not revoked) */
	int                 from_memory;  /* answered by the memory store */
};

struct store_lockq {
	const char *key;                  /* visor:lockout:<sha256 hex> */
	size_t      klen;
	/* results */
	int         locked;
	int64_t     retry_ms;
};

enum store_res { STORE_OK = 0, STORE_PENDING, STORE_UNAVAILABLE };

struct store_op;                      /* an operation in flight (opaque) */
/* res is STORE_OK (results filled in) or STORE_UNAVAILABLE. */
typedef void (*store_cb)(void *arg, enum store_res res);

/* ---- lifecycle (called by the core: main.c, worker.c, admin.c) ---------------------------- */

/* Process-wide in-memory store: created by main before the workers, freed after them. */
struct mstore *mstore_new(void);
void mstore_free(struct mstore *m);

/* Per worker, on its own thread's base (called from worker_new / apply_conf / worker_free). */
int  store_worker_init(struct worker *w, struct mstore *mem);
void store_worker_conf(struct worker *w, const struct conf *c);
void store_worker_fini(struct worker *w);

/* For /readyz with on_error: closed: 1 when every worker's Redis connection is up (or no
 * Redis is configured), 0 otherwise. Main thread; reads the workers' flags racily. */
int  store_ready(struct worker *const *ws, int n, const struct conf *c);

/* ---- operations (worker thread) ---------------------------------------------------------- */

/* Evaluates a request's policies and revocation. q (and the keys it points to) must stay valid
 * until the callback ran or store_cancel(*op). On STORE_PENDING *op is set. */
enum store_res store_rl(struct worker *w, struct store_rlq *q, store_cb cb, void *arg,
    struct store_op **op);
/* Records one hit on a `count: failures` policy (fire and forget). Copies what it needs. */
void store_rl_hit(struct worker *w, const struct store_limit *l);

/* Is this account locked? Same contract as store_rl. */
enum store_res store_lockout_check(struct worker *w, struct store_lockq *q, store_cb cb,
    void *arg, struct store_op **op);
/* The login's answer: failed (>= 400) counts and may lock, success resets. Fire and forget. */
void store_lockout_result(struct worker *w, const char *key, size_t klen, int failed,
    int64_t after, int64_t base_ms, int64_t max_ms);

/* Counts one probe from `ipkey` (ip_key form). When it reaches ban_after the client is banned
 * for ban_for_ms (shared through Redis); the callback runs once the count is recorded, so the
 * next request already sees the ban. Returns STORE_OK when counted at once (memory). Probes
 * are always counted somewhere: in memory while Redis is away, whatever on_error says. */
enum store_res store_probe(struct worker *w, const char *ipkey, size_t klen, int64_t ban_after,
    int64_t ban_for_ms, store_cb cb, void *arg, struct store_op **op);
/* Whether ipkey is banned now (process-wide cache; no round trip). */
int  store_banned(struct worker *w, const char *ipkey, size_t klen);
/* Whether probe detection is on in the worker's generation: bans decided by other instances
 * are polled from Redis (visor:bans) only then. Set by the probe filter's worker_conf, right
 * after store_worker_conf. Worker thread. */
void store_probes_on(struct worker *w, int on);

/* Detaches an operation in flight: its callback will not run and it no longer touches the
 * caller's memory. NULL is a no-op. */
void store_cancel(struct store_op *op);

/* The key for a client IP, as express-rate-limit 8's ipKeyGenerator makes it: an IPv4 address
 * as is; IPv6 grouped by its /56 network ("2001:db8:abcd:1200::/56"); ::a.b.c.d as a.b.c.d.
 * `ip` is the text of (family, bin). Writes a NUL-terminated key into out (>= 52 bytes);
 * returns its length, 0 on error. */
size_t store_ip_key(int family, const uint8_t bin[16], const char *ip, char *out, size_t outlen);

/* The store's clock (ms, monotonic, never near 0) used for the memory store. */
int64_t store_clock_ms(void);

/* The Lua script, src/store/store.lua embedded at build time (store_lua.c), and its length. */
extern const char store_lua[];
size_t store_lua_len(void);

#endif
