/* SPDX-License-Identifier: MIT
 * store — the operations the rate-limit, lockout and probe filters need, answered by Redis (the
 * store script — FCALL, or EVALSHA where Redis has no Functions (redis.c) — on the worker's own
 * connection (one per primary in a Redis Cluster): one call per operation, except rate-limit
 * checks, batched per event-loop pass — see "rate limits" below) or by the
 * process-wide memory store (mstore.c): without a redis section, and — with on_error: local —
 * whenever Redis is not up or does not answer within redis.timeout.
 *
 * Keys (all namespaced, all expiring on their own):
 *   visor:rl:<policy>:{<client>}   LIST (sliding log) or HASH (buckets)
 *   visor:lockout:<sha256 hex>     HASH {f = failures, u = locked until (ms)}
 *   visor:probe:{visor:bans}:<client>   LIST or HASH, like a policy (window 10 min)
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
#include "store/store.h"

#include <sys/queue.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "store/cluster.h"
#include "store/mstore.h"
#include "store/redis.h"
#include "core/util.h"
#include "core/worker.h"

#define BAN_CACHE_MS      30000
#define BAN_POLL_MS       1000
#define BAN_POLL_MAX      "10000"
#define MAX_LIMITS        16
#define ERR_LOG_EVERY_MS  10000
#define BATCH_MAX         64             /* requests per script call */
#define BATCH_BYTES       (64 * 1024)    /* their keys and values, give or take (>= 1 request) */
#define OP_POOL_MAX       256            /* keyless operations kept for reuse, per worker */

int64_t
store_clock_ms(void)
{
	/* monotonic, offset so that "now - window" never goes below zero */
	return now_ms() + ((int64_t)1 << 40);
}

/* ---- per worker -------------------------------------------------------------------------- */

enum op_kind { OP_RL = 1, OP_LOCK, OP_PROBE, OP_HIT, OP_LK_FAIL, OP_LK_OK };

struct rl_batch;
struct cl_split;

struct store_op {
	struct store_w   *sw;
	enum op_kind      kind;
	store_cb          cb;
	void             *arg;
	void             *q;           /* struct store_rlq / store_lockq (caller's memory) */
	struct redis_cmd *cmd;
	struct rcl_cmd   *ccmd;        /* the same, routed in a Redis Cluster */
	/* OP_RL: queued for the end of the pass (queued), then a slot of a batch in flight, or
	 * (Redis Cluster, keys on several nodes) parts in several batches */
	TAILQ_ENTRY(store_op) ql;
	struct rl_batch  *batch;
	struct cl_split  *split;
	unsigned          slot;
	unsigned          queued : 1;
	unsigned          waiting : 1; /* in sw->retryq: sent again after the next topology read */
	unsigned          retried : 1; /* sent again once already */
	/* what a fire-and-forget operation needs to be replayed on the memory store */
	int64_t           a, b, c;     /* limit/window/mode, after/base/max, ban_after/ban_for */
	size_t            klen;
	char              key[];       /* OP_HIT/OP_LK_*: the key; OP_PROBE: the client */
};

/* One script call of the batch operation: the rate-limit checks one worker queued during
 * one pass of its event loop, in order, consecutive identical checks (same keys, policies and
 * token: one client's burst) sent once as a run. A slot whose operation was cancelled is NULL;
 * its answer, when the reply comes, is skipped. */
struct rl_batch {
	struct store_w   *sw;
	struct redis_cmd *cmd;
	unsigned          n, live, nruns;
	int               answering;   /* store_cancel() leaves the batch to on_batch_reply */
	struct store_op  *slot[BATCH_MAX];
	signed char       part[BATCH_MAX];   /* the slot's part of a split check, or -1 */
	struct {
		unsigned first, k, nlim;
	} run[BATCH_MAX];
};

/* Redis Cluster: a check whose keys live on several nodes goes in parts, one per node, each
 * the check of its own keys (its policies, its revocation keys) in that node's batch. */
struct cl_part {
	struct rl_batch *b;            /* in flight as b->slot[slot]; NULL once answered */
	unsigned         slot;
	struct redis    *rd;           /* while the batches are built */
	uint32_t         mask;         /* its policies: bits of q->lim */
	int              flags;        /* its revocation keys: 1 jti, 2 sub */
	int              kind;         /* its segment's kind once answered (2: failed) */
	int64_t          now;          /* the node's clock then, for an undo */
};

struct cl_split {
	unsigned       n, pending;
	int            unsure;         /* a part failed without a reply: it may have recorded, so
	                                * the check is not sent again (on_error instead) */
	struct cl_part p[MAX_LIMITS + 2];
};

struct store_w {
	struct worker    *w;
	struct mstore    *mem;
	struct redis     *rd;          /* created with the first redis section, kept until fini */
	struct rcl       *cl;          /* created with the first redis.cluster, kept until fini */
	int               redis_on;    /* the current generation has a redis section */
	int               cl_on;       /* ... with redis.cluster: cl, not rd */
	enum redis_onerr  on_error;
	int               probes_on;
	struct event     *poll_ev;
	int               poll_busy;
	int64_t           err_logged_ms;
	/* rate-limit checks waiting for the end of the pass (flush_ev), in arrival order */
	TAILQ_HEAD(, store_op) rlq;
	unsigned          rlq_n;
	/* Redis Cluster: checks a stale slot map sent to the wrong node, waiting for the next
	 * topology read (or retry_ev) to be queued again */
	TAILQ_HEAD(, store_op) retryq;
	struct event     *retry_ev;
	struct event     *flush_ev;
	struct redis_args keys, args;  /* a batch's arguments, built in place (memory reused) */
	struct redis_args xargs;       /* Redis Cluster: 'xk', the keys, the arguments */
	struct store_op  *pool;        /* free keyless operations (linked through q) */
	unsigned          pool_n;
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

/* Redis (or the cluster's topology) is there to be asked. */
static int
st_up(const struct store_w *sw)
{
	return sw->cl_on ? rcl_is_up(sw->cl) : redis_is_up(sw->rd);
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
	else if (rp)
		log_warn("redis (worker %d): %s: unexpected reply", sw->w->id, what);
	else
		log_warn("redis (worker %d): %s", sw->w->id, what);
}

static struct store_op *
op_new(struct store_w *sw, enum op_kind kind, const char *key, size_t klen)
{
	struct store_op *op;

	if (klen == 0 && (op = sw->pool) != NULL) {
		sw->pool = op->q;
		sw->pool_n--;
		memset(op, 0, sizeof(*op));
	} else if ((op = calloc(1, sizeof(*op) + klen + 1)) == NULL) {
		return NULL;
	}
	op->sw = sw;
	op->kind = kind;
	op->klen = klen;
	if (klen)
		memcpy(op->key, key, klen);
	return op;
}

/* A keyless operation goes back to its worker's pool (memory is reused, not freed). */
static void
op_free(struct store_op *op)
{
	struct store_w *sw = op->sw;

	if (op->klen == 0 && sw->pool_n < OP_POOL_MAX) {
		op->q = sw->pool;
		sw->pool = op;
		sw->pool_n++;
		return;
	}
	free(op);
}

/* Completes a caller's operation: frees it first, so the callback may do anything. */
static void
op_finish(struct store_op *op, enum store_res res)
{
	store_cb cb = op->cb;
	void *arg = op->arg;

	op_free(op);
	if (cb)
		cb(arg, res);
}

/* A cancelled check leaves its slot of b. */
static void
batch_leave(struct rl_batch *b, unsigned slot)
{
	b->slot[slot] = NULL;
	if (--b->live == 0 && !b->answering) {
		redis_cmd_detach(b->cmd);            /* nobody left to answer: drop the reply */
		free(b);
	}
}

void
store_cancel(struct store_op *op)
{
	struct store_w *sw;
	struct rl_batch *b;
	unsigned i;

	if (op == NULL)
		return;
	sw = op->sw;
	if (op->queued) {
		TAILQ_REMOVE(&sw->rlq, op, ql);
		sw->rlq_n--;
	} else if (op->waiting) {
		TAILQ_REMOVE(&sw->retryq, op, ql);
	} else if ((b = op->batch) != NULL) {
		batch_leave(b, op->slot);
	} else if (op->split != NULL) {
		for (i = 0; i < op->split->n; i++)
			if (op->split->p[i].b != NULL)
				batch_leave(op->split->p[i].b, op->split->p[i].slot);
		free(op->split);
	} else {
		redis_cmd_detach(op->cmd);
		rcl_cmd_detach(op->ccmd);
	}
	op_free(op);
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

/* Sends the script call built in `a` (its first nkeys arguments are keys) for op, whose
 * reply goes to `reply` and then the caller's cb(arg). 0 with the pending op in *opp, or -1
 * (op freed) when the command could not even be queued. */
static int
op_send(struct store_w *sw, struct store_op *op, int nkeys, struct argv *a,
    redis_fn reply, store_cb cb, void *arg, struct store_op **opp)
{
	op->cb = cb;
	op->arg = arg;
	if (sw->cl_on)
		op->ccmd = rcl_script(sw->cl, nkeys, a->n, a->v, a->l, reply, op);
	else
		op->cmd = redis_script(sw->rd, nkeys, a->n, a->v, a->l, reply, op);
	if (op->cmd == NULL && op->ccmd == NULL) {
		free(op);
		return -1;
	}
	*opp = op;
	return 0;
}

/* ---- rate limits and revocation ------------------------------------------------------------
 *
 * store_rl() queues the check; the worker's flush_ev, activated by the first check of an
 * event-loop pass, runs after that pass's callbacks and sends the queue as batches: one
 * script call of the batch operation per BATCH_MAX checks (or BATCH_BYTES of arguments) —
 * per node in a Redis Cluster (cluster_send below).
 * The script evaluates them in order, each exactly as if it came alone, reading each key once
 * and writing it once — so the Redis work is one script call per pass rather than per request,
 * and a batch of requests from the same client costs little more than one. The batch has one
 * deadline; a failure (timeout, error, connection lost) answers each check as a failure of its
 * own would (on_error) — except, in a Redis Cluster, a refusal before anything was written (a
 * key the node no longer serves): those checks are sent again once, after the map is re-read
 * (rl_retry). */

static void
rl_memory(struct store_w *sw, struct store_rlq *q)
{
	mstore_rl(sw->mem, store_clock_ms(), q);
}

/* A check Redis could not answer: on_error decides. */
static void
rl_fail(struct store_op *op)
{
	struct store_w *sw = op->sw;

	if (local_ok(sw)) {
		rl_memory(sw, op->q);
		op_finish(op, STORE_OK);
	} else {
		op_finish(op, STORE_UNAVAILABLE);
	}
}

/* Redis Cluster: a check the node refused because its map was stale (a key the node does not
 * serve; the script stops before writing anything, Redis's own checks come first) is sent
 * again once, after the next topology read, as a MOVED reply would be followed. Anything
 * else, or a second failure: on_error. */
static void
rl_retry(struct store_op *op)
{
	struct store_w *sw = op->sw;
	struct timeval tv = { 0, 300 * 1000 };

	if (!sw->cl_on || op->retried) {
		rl_fail(op);
		return;
	}
	op->retried = 1;
	op->waiting = 1;
	TAILQ_INSERT_TAIL(&sw->retryq, op, ql);
	rcl_stale(sw->cl);
	if (!evtimer_pending(sw->retry_ev, NULL))
		evtimer_add(sw->retry_ev, &tv);  /* no topology read comes: go anyway */
}

/* After a topology read (or retry_ev): the waiting checks join the queue. */
static void
on_topology(void *arg)
{
	struct store_w *sw = arg;
	struct store_op *op;

	if (TAILQ_EMPTY(&sw->retryq))
		return;
	evtimer_del(sw->retry_ev);
	while ((op = TAILQ_FIRST(&sw->retryq)) != NULL) {
		TAILQ_REMOVE(&sw->retryq, op, ql);
		op->waiting = 0;
		op->queued = 1;
		TAILQ_INSERT_TAIL(&sw->rlq, op, ql);
		sw->rlq_n++;
	}
	event_active(sw->flush_ev, EV_TIMEOUT, 0);
}

static void
on_retry_tmo(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	on_topology(arg);
}

static int64_t
el_int(const struct redisReply *rp, size_t i)
{
	return rp->element[i]->integer;
}

/* A batch reply: {now, then per run the segments covering its requests in order}, a segment
 * being {1, c} (revoked), {2, 1} (failed), {3, c, answer} (c refused alike) or {0, c, answer}
 * (c admitted: the j-th, from 0, with rem - j on the policies that record), an answer being
 * adm, rem, reset per policy. 0 when rp has that shape for this batch. */
static int
batch_shape(const struct rl_batch *b, const struct redisReply *rp)
{
	size_t i, k = 1;
	unsigned r, done;
	int64_t kind, c;

	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements < 1)
		return -1;
	for (i = 0; i < rp->elements; i++)
		if (rp->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
	for (r = 0; r < b->nruns; r++) {
		for (done = 0; done < b->run[r].k; done += (unsigned)c) {
			if (k + 2 > rp->elements)
				return -1;
			kind = el_int(rp, k);
			c = el_int(rp, k + 1);
			k += 2;
			if (c < 1 || c > b->run[r].k - done || kind < 0 || kind > 3 ||
			    (kind == 2 && c != 1))
				return -1;
			if (kind == 0 || kind == 3) {
				if (k + 3 * (size_t)b->run[r].nlim > rp->elements)
					return -1;
				for (i = 0; i < b->run[r].nlim; i++)
					if ((uint64_t)el_int(rp, k + 3 * i) > 1)
						return -1;
				k += 3 * (size_t)b->run[r].nlim;
			}
		}
	}
	return k == rp->elements ? 0 : -1;
}

/* One check's answer from a segment (kind, j-th of it, its answer at rp->element[at]). */
static void
seg_answer(struct store_op *op, const struct redisReply *rp, int64_t kind, unsigned j, size_t at)
{
	struct store_rlq *q = op->q;
	size_t i;

	q->from_memory = 0;
	q->revoked = kind == 1;
	q->admitted = kind == 0;
	for (i = 0; (kind == 0 || kind == 3) && i < q->n; i++, at += 3) {
		struct store_limit *l = &q->lim[i];
		l->admitted = el_int(rp, at) != 0;
		l->remaining = el_int(rp, at + 1);
		if (kind == 0 && !l->check_only)
			l->remaining = MAX(l->remaining - (int64_t)j, 0);
		l->reset_ms = el_int(rp, at + 2);
	}
	op_finish(op, STORE_OK);
}

/* ---- Redis Cluster: checks in parts ---------------------------------------------------------
 *
 * When every part admitted, the check is admitted. When one refused, or found the token
 * revoked, the parts that admitted take their admission back (the script's undo, one call per
 * such part): all of a check's policies admit or none records, once the undo has run, as with
 * one node (docs/rate-limits.md, Redis Cluster). A part that failed fails the check (on_error),
 * the others' admissions taken back the same way. */

static void
on_undo_reply(void *arg, const struct redisReply *rp)
{
	struct store_w *sw = arg;

	if (rp == NULL || rp->type == REDIS_REPLY_ERROR)
		log_store_error(sw, "rate limit undo (Redis Cluster)", rp);
}

/* Takes back the admission part p recorded (its policies that record). */
static void
part_undo(struct store_w *sw, const struct store_rlq *q, const struct cl_part *p)
{
	struct redis_args ka = { 0 }, xa = { 0 };
	struct redis *rd = NULL;
	unsigned j, nk = 0;

	for (j = 0; j < q->n; j++) {
		if (!(p->mask & (1u << j)) || q->lim[j].check_only)
			continue;
		if (rd == NULL && (rd = rcl_route(sw->cl, q->lim[j].key, q->lim[j].klen)) == NULL)
			break;
		redis_args_str(&ka, q->lim[j].key, q->lim[j].klen);
		nk++;
	}
	if (rd != NULL && nk > 0) {
		redis_args_str(&xa, "xk", 2);
		redis_args_int(&xa, nk);
		if (sbuf_reserve(&xa.b, ka.b.len) == 0) {
			memcpy(xa.b.p + xa.b.len, ka.b.p, ka.b.len);
			xa.b.len += ka.b.len;
			xa.n += ka.n;
		}
		redis_args_str(&xa, "undo", 4);
		redis_args_str(&xa, "0", 1);
		redis_args_int(&xa, p->now);
		for (j = 0; j < q->n; j++) {
			if (!(p->mask & (1u << j)) || q->lim[j].check_only)
				continue;
			redis_args_int(&xa, q->lim[j].mode);
			redis_args_int(&xa, q->lim[j].window_ms);
		}
		redis_args_reset(&ka);             /* no declared keys (several slots) */
		if (redis_script_args(rd, &ka, &xa, on_undo_reply, sw) == NULL)
			on_undo_reply(sw, NULL);
	} else if (nk > 0 || rd == NULL) {
		on_undo_reply(sw, NULL);           /* the node went away: the admission stays */
	}
	redis_args_fini(&ka);
	redis_args_fini(&xa);
}

/* Every part answered: the check's answer. */
static void
split_done(struct store_op *op)
{
	struct store_w *sw = op->sw;
	struct store_rlq *q = op->q;
	struct cl_split *sp = op->split;
	int failed = 0, revoked = 0, all = 1;
	unsigned i, j;

	op->split = NULL;
	for (i = 0; i < sp->n; i++) {
		failed |= sp->p[i].kind == 2;
		revoked |= sp->p[i].kind == 1;
		all &= sp->p[i].kind == 0;
	}
	for (i = 0; !all && i < sp->n; i++) {
		if (sp->p[i].kind != 0)
			continue;
		part_undo(sw, q, &sp->p[i]);
		/* as if never counted: a refused check's remaining on an admitting policy */
		for (j = 0; j < q->n; j++)
			if ((sp->p[i].mask & (1u << j)) && !q->lim[j].check_only)
				q->lim[j].remaining = MIN(q->lim[j].remaining + 1, q->lim[j].limit);
	}
	if (failed) {
		/* the parts that admitted were taken back; one that may have run was not */
		if (sp->unsure)
			rl_fail(op);
		else
			rl_retry(op);
		free(sp);
		return;
	}
	free(sp);
	q->from_memory = 0;
	q->revoked = revoked;
	q->admitted = all;
	op_finish(op, STORE_OK);
}

/* Part pi's segment (kind, its answer at rp->element[at]; rp NULL: failed). */
static void
part_answer(struct store_op *op, int pi, const struct redisReply *rp, int64_t kind, size_t at)
{
	struct cl_split *sp = op->split;
	struct cl_part *p = &sp->p[pi];
	struct store_rlq *q = op->q;
	unsigned j;

	p->b = NULL;
	p->kind = rp != NULL ? (int)kind : 2;
	if (rp != NULL)
		p->now = el_int(rp, 0);
	for (j = 0; rp != NULL && (kind == 0 || kind == 3) && j < q->n; j++) {
		struct store_limit *l = &q->lim[j];
		if (!(p->mask & (1u << j)))
			continue;
		l->admitted = el_int(rp, at) != 0;
		l->remaining = el_int(rp, at + 1);
		l->reset_ms = el_int(rp, at + 2);
		at += 3;
	}
	if (--sp->pending == 0)
		split_done(op);
}

static void
on_batch_reply(void *arg, const struct redisReply *rp)
{
	struct rl_batch *b = arg;
	struct store_w *sw = b->sw;
	size_t k = 1;
	unsigned r, done, j, i;
	int64_t kind, c;
	int failed = 0;

	b->answering = 1;
	if (batch_shape(b, rp) < 0) {
		if (rp)
			log_store_error(sw, "rate limit script", rp);
		if (sw->cl_on)
			rcl_stale(sw->cl);       /* READONLY, CLUSTERDOWN, a node that left... */
		for (i = 0; i < b->n; i++) {
			struct store_op *op = b->slot[i];
			if (op == NULL)
				continue;                /* cancelled */
			b->slot[i] = NULL;
			op->batch = NULL;
			if (b->part[i] >= 0) {
				if (rp == NULL || rp->type != REDIS_REPLY_ERROR)
					op->split->unsure = 1;   /* no reply: it may have run */
				part_answer(op, b->part[i], NULL, 2, 0);
			}
			else if (rp != NULL && rp->type == REDIS_REPLY_ERROR)
				rl_retry(op);            /* refused before running: no write done */
			else
				rl_fail(op);             /* no reply: it may have run */
		}
		free(b);
		return;
	}
	for (r = 0; r < b->nruns; r++) {
		for (done = 0; done < b->run[r].k; done += (unsigned)c) {
			kind = el_int(rp, k);
			c = el_int(rp, k + 1);
			k += 2;
			for (j = 0; j < (unsigned)c; j++) {
				unsigned si = b->run[r].first + done + j;
				struct store_op *op = b->slot[si];
				if (op == NULL)
					continue;            /* cancelled */
				b->slot[si] = NULL;
				op->batch = NULL;
				if (kind == 2)
					failed++;
				if (b->part[si] >= 0)
					part_answer(op, b->part[si], rp, kind, k);
				else if (kind == 2)
					rl_retry(op);
				else
					seg_answer(op, rp, kind, j, k);
			}
			if (kind == 0 || kind == 3)
				k += 3 * (size_t)b->run[r].nlim;
		}
	}
	if (failed)
		/* in a Redis Cluster, most likely a key this node no longer serves (retried) */
		log_store_error(sw, sw->cl_on ? "rate limit script: a check touched a key of "
		    "another type or another node's" : "rate limit script: a check touched a key of "
		    "another type", NULL);
	free(b);
}

/* Two checks Redis would answer alike, given the same state: same keys, policies, token. */
static int
same_check(const struct store_rlq *a, const struct store_rlq *b)
{
	size_t i;
	int ra = a->revocation && (a->jti || a->sub), rb = b->revocation && (b->jti || b->sub);

	if (a->n != b->n || ra != rb)
		return 0;
	if (ra && (!a->jti != !b->jti || !a->sub != !b->sub || a->iat != b->iat ||
	    (a->jti && (a->jti_len != b->jti_len || memcmp(a->jti, b->jti, a->jti_len))) ||
	    (a->sub && (a->sub_len != b->sub_len || memcmp(a->sub, b->sub, a->sub_len)))))
		return 0;
	for (i = 0; i < a->n; i++) {
		const struct store_limit *x = &a->lim[i], *y = &b->lim[i];
		if (x->klen != y->klen || x->limit != y->limit || x->window_ms != y->window_ms ||
		    x->mode != y->mode || !x->check_only != !y->check_only ||
		    (x->key != y->key && memcmp(x->key, y->key, x->klen) != 0))
			return 0;
	}
	return 1;
}

/* A batch call's arguments start: no keys yet, the operation, Redis's clock, nruns runs. */
static void
batch_head(struct redis_args *ka, struct redis_args *va, unsigned nruns)
{
	redis_args_reset(ka);
	redis_args_reset(va);
	redis_args_str(va, "batch", 5);
	redis_args_str(va, "0", 1);
	redis_args_int(va, nruns);
}

static int
rev_flags(const struct store_rlq *q)
{
	return (q->revocation && q->jti ? 1 : 0) | (q->revocation && q->sub ? 2 : 0);
}

/* One run of the script's batch operation: its keys into ka, its numbers into va — the
 * policies in mask, the revocation keys in flags. Returns how many policies it has. */
static unsigned
put_run(struct redis_args *ka, struct redis_args *va, const struct store_rlq *q, unsigned count,
    uint32_t mask, int flags)
{
	unsigned j, nlim = 0;

	for (j = 0; j < q->n; j++)
		if (mask & (1u << j)) {
			redis_args_str(ka, q->lim[j].key, q->lim[j].klen);
			nlim++;
		}
	if (flags & 1)
		redis_args_str(ka, q->jti, q->jti_len);
	if (flags & 2)
		redis_args_str(ka, q->sub, q->sub_len);
	redis_args_int(va, count);
	redis_args_int(va, nlim);
	redis_args_int(va, flags);
	redis_args_int(va, q->iat);
	for (j = 0; j < q->n; j++)
		if (mask & (1u << j)) {
			redis_args_int(va, q->lim[j].limit);
			redis_args_int(va, q->lim[j].window_ms);
			redis_args_int(va, q->lim[j].mode);
			redis_args_str(va, q->lim[j].check_only ? "1" : "0", 1);
		}
	return nlim;
}

static struct rl_batch *
batch_new(struct store_w *sw)
{
	struct rl_batch *b = malloc(sizeof(*b));

	if (b != NULL) {
		b->sw = sw;
		b->n = b->live = b->nruns = 0;
		b->answering = 0;
		b->cmd = NULL;
	}
	return b;
}

/* Where check q's keys live: *rd when one node serves them all, else parts in sp (one per
 * node). -1 when a key's node is unknown or down. */
static int
cl_place(struct store_w *sw, const struct store_rlq *q, struct redis **rd, struct cl_split *sp)
{
	struct redis *x;
	unsigned j, i, n = (unsigned)q->n;
	int flags = rev_flags(q);

	*rd = NULL;
	sp->n = 0;
	for (j = 0; j < n + 2; j++) {
		const char *k = j < n ? q->lim[j].key : j == n ? q->jti : q->sub;
		size_t kl = j < n ? q->lim[j].klen : j == n ? q->jti_len : q->sub_len;
		if (j >= n && !(flags & (1 << (j - n))))
			continue;
		if ((x = rcl_route(sw->cl, k, kl)) == NULL)
			return -1;
		for (i = 0; i < sp->n && sp->p[i].rd != x; i++)
			;
		if (i == sp->n) {
			memset(&sp->p[i], 0, sizeof(sp->p[i]));
			sp->p[i].rd = x;
			sp->n++;
		}
		if (j < n)
			sp->p[i].mask |= 1u << j;
		else
			sp->p[i].flags |= 1 << (j - n);
	}
	if (sp->n == 1)
		*rd = sp->p[0].rd;
	return sp->n > 0 ? 0 : -1;
}

/* A part that could not be sent. Its check is answered once the others are sent too
 * (cluster_send's end): nothing may free a check while the batches are being built. */
static void
part_unsent(struct store_op *op, unsigned p)
{
	op->split->p[p].b = NULL;
	op->split->p[p].kind = 2;
	op->split->pending--;
}

/* A run's n checks fail (on_error); their entries become NULL. */
static void
run_fail(struct store_op **ops, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		rl_fail(ops[i]);
		ops[i] = NULL;
	}
}

/* Redis Cluster: the checks ops[0..m) (in the runs batch_send made) as one batch per node.
 * A run whose keys one node serves goes whole to that node; each check of a run whose keys
 * several nodes serve goes in parts (struct cl_split), one per node. */
static void
cluster_send(struct store_w *sw, struct store_op **ops, size_t m, unsigned nruns,
    const unsigned *first, const unsigned *count)
{
	struct redis *whole[BATCH_MAX], *nodes[BATCH_MAX];
	struct cl_split tmp;
	struct redis_args *ka = &sw->keys, *va = &sw->args, *xa = &sw->xargs;
	unsigned r, g, i, p, nn = 0;
	size_t o;

	/* where each run goes; ops[] entries answered already become NULL */
	for (r = 0; r < nruns; r++) {
		if (cl_place(sw, ops[first[r]]->q, &whole[r], &tmp) < 0) {
			rcl_stale(sw->cl);
			run_fail(ops + first[r], count[r]);
			continue;
		}
		for (i = 0; whole[r] == NULL && i < count[r]; i++) {
			struct store_op *op = ops[first[r] + i];
			if ((op->split = malloc(sizeof(*op->split))) == NULL) {
				rl_fail(op);
				ops[first[r] + i] = NULL;
				continue;
			}
			*op->split = tmp;
			op->split->pending = tmp.n;
		}
		for (i = 0; i < tmp.n; i++) {
			for (g = 0; g < nn && nodes[g] != tmp.p[i].rd; g++)
				;
			if (g == nn)
				nodes[nn++] = tmp.p[i].rd;    /* nn <= slots <= BATCH_MAX */
		}
	}
	for (g = 0; g < nn; g++) {
		struct rl_batch *b = batch_new(sw);
		unsigned nr = 0, si = 0;
		/* this node's slots: whole runs' checks, and split checks' parts */
		for (r = 0; b != NULL && r < nruns; r++) {
			if (ops[first[r]] != NULL && whole[r] == nodes[g]) {
				for (i = 0; i < count[r]; i++, si++) {
					b->slot[si] = ops[first[r] + i];
					b->part[si] = -1;
				}
				b->run[nr].first = si - count[r];
				b->run[nr++].k = count[r];
				continue;
			}
			for (i = 0; whole[r] == NULL && i < count[r]; i++) {
				struct store_op *op = ops[first[r] + i];
				for (p = 0; op != NULL && p < op->split->n; p++) {
					if (op->split->p[p].rd != nodes[g])
						continue;
					b->slot[si] = op;
					b->part[si] = (signed char)p;
					b->run[nr].first = si++;
					b->run[nr++].k = 1;
				}
			}
		}
		if (b == NULL)
			goto unsent;
		b->n = b->live = si;
		b->nruns = nr;
		batch_head(ka, va, nr);
		for (r = 0; r < nr; r++) {
			struct store_op *op = b->slot[b->run[r].first];
			const struct store_rlq *q = op->q;
			if (b->part[b->run[r].first] < 0) {
				b->run[r].nlim = put_run(ka, va, q, b->run[r].k,
				    (uint32_t)((1ull << q->n) - 1), rev_flags(q));
			} else {
				const struct cl_part *pt = &op->split->p[b->part[b->run[r].first]];
				b->run[r].nlim = put_run(ka, va, q, 1, pt->mask, pt->flags);
			}
		}
		/* 'xk', the keys, then the arguments: no key is declared, since they may be on
		 * several of this node's slots (the script is allowed that: cluster.h) */
		redis_args_reset(xa);
		redis_args_str(xa, "xk", 2);
		redis_args_int(xa, ka->n);
		o = xa->b.len;
		if (sbuf_reserve(&xa->b, ka->b.len + va->b.len) == 0) {
			memcpy(xa->b.p + o, ka->b.p, ka->b.len);
			memcpy(xa->b.p + o + ka->b.len, va->b.p, va->b.len);
			xa->b.len += ka->b.len + va->b.len;
			xa->n += ka->n + va->n;
		}
		redis_args_reset(ka);            /* no declared keys; ka has memory (keys were put) */
		b->cmd = redis_script_args(nodes[g], ka, xa, on_batch_reply, b);
		if (b->cmd == NULL) {
			free(b);
			goto unsent;
		}
		for (i = 0; i < si; i++) {
			struct store_op *op = b->slot[i];
			if (b->part[i] >= 0) {
				op->split->p[b->part[i]].b = b;
				op->split->p[b->part[i]].slot = i;
			} else {
				op->batch = b;
				op->slot = i;
			}
		}
		continue;
unsent:
		/* out of memory, or the connection just went: this node's checks fail (on_error) */
		for (r = 0; r < nruns; r++) {
			if (ops[first[r]] != NULL && whole[r] == nodes[g]) {
				run_fail(ops + first[r], count[r]);
				continue;
			}
			for (i = 0; whole[r] == NULL && i < count[r]; i++) {
				struct store_op *op = ops[first[r] + i];
				for (p = 0; op != NULL && p < op->split->n; p++)
					if (op->split->p[p].rd == nodes[g])
						part_unsent(op, p);
			}
		}
	}
	/* split checks none of whose parts could be sent: answered now */
	for (r = 0; r < nruns; r++)
		for (i = 0; whole[r] == NULL && i < count[r]; i++) {
			struct store_op *op = ops[first[r] + i];
			if (op != NULL && op->split->pending == 0)
				split_done(op);
		}
}

/* Sends the first checks of the queue (up to BATCH_MAX, about BATCH_BYTES) as one batch. */
static void
batch_send(struct store_w *sw)
{
	struct rl_batch *b = NULL;
	struct store_op *op, *ops[BATCH_MAX];
	size_t bytes = 0, i, j, m = 0;
	unsigned r, nruns = 0, first[BATCH_MAX], count[BATCH_MAX];

	TAILQ_FOREACH(op, &sw->rlq, ql) {
		const struct store_rlq *q = op->q;
		size_t need = 0;
		if (m == BATCH_MAX)
			break;
		if (m == 0 || !same_check(ops[m - 1]->q, q)) {
			need = 64 + 64 * q->n;
			for (j = 0; j < q->n; j++)
				need += q->lim[j].klen;
			if (q->revocation)
				need += (q->jti ? q->jti_len : 0) + (q->sub ? q->sub_len : 0);
			if (m > 0 && bytes + need > BATCH_BYTES)
				break;
			first[nruns] = (unsigned)m;
			count[nruns++] = 0;
		}
		bytes += need;
		count[nruns - 1]++;
		ops[m++] = op;
	}
	for (i = 0; i < m; i++) {
		TAILQ_REMOVE(&sw->rlq, ops[i], ql);
		ops[i]->queued = 0;
	}
	sw->rlq_n -= (unsigned)m;
	if (sw->redis_on && sw->cl_on && rcl_is_up(sw->cl)) {
		cluster_send(sw, ops, m, nruns, first, count);
		return;
	}
	if (sw->redis_on && !sw->cl_on && redis_is_up(sw->rd) && (b = batch_new(sw)) != NULL) {
		struct redis_args *ka = &sw->keys, *va = &sw->args;
		batch_head(ka, va, nruns);
		for (r = 0; r < nruns; r++) {
			const struct store_rlq *q = ops[first[r]]->q;
			b->run[r].first = first[r];
			b->run[r].k = count[r];
			b->run[r].nlim = put_run(ka, va, q, count[r], (uint32_t)((1ull << q->n) - 1),
			    rev_flags(q));
		}
		b->n = b->live = (unsigned)m;
		b->nruns = nruns;
		b->cmd = redis_script_args(sw->rd, ka, va, on_batch_reply, b);
		if (b->cmd == NULL) {
			free(b);
			b = NULL;
		}
	}
	for (i = 0; i < m; i++) {
		if (b) {
			ops[i]->batch = b;
			ops[i]->slot = (unsigned)i;
			b->slot[i] = ops[i];
			b->part[i] = -1;
		} else {
			rl_fail(ops[i]);             /* not sent: answered now (we are not in store_rl) */
		}
	}
}

/* The end of an event-loop pass: the checks it queued go out. */
static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct store_w *sw = arg;

	(void)fd;
	(void)what;
	while (!TAILQ_EMPTY(&sw->rlq))
		batch_send(sw);
}

/* Answers every queued check as a failure (the worker is going away). */
static void
rl_queue_fail(struct store_w *sw)
{
	struct store_op *op;

	while ((op = TAILQ_FIRST(&sw->rlq)) != NULL) {
		TAILQ_REMOVE(&sw->rlq, op, ql);
		sw->rlq_n--;
		op->queued = 0;
		rl_fail(op);
	}
	while ((op = TAILQ_FIRST(&sw->retryq)) != NULL) {
		TAILQ_REMOVE(&sw->retryq, op, ql);
		op->waiting = 0;
		rl_fail(op);
	}
}

enum store_res
store_rl(struct worker *w, struct store_rlq *q, store_cb cb, void *arg, struct store_op **opp)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op;

	*opp = NULL;
	q->revoked = 0;
	q->admitted = 0;
	q->from_memory = 0;
	if (!sw->redis_on) {
		rl_memory(sw, q);
		return STORE_OK;
	}
	if (q->n <= MAX_LIMITS && st_up(sw) && (op = op_new(sw, OP_RL, NULL, 0))) {
		op->cb = cb;
		op->arg = arg;
		op->q = q;
		op->queued = 1;
		TAILQ_INSERT_TAIL(&sw->rlq, op, ql);
		if (sw->rlq_n++ == 0)
			event_active(sw->flush_ev, EV_TIMEOUT, 0);
		*opp = op;
		return STORE_PENDING;
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
	const char *verb;
	struct argv a;

	if (!sw->redis_on) {
		fire_memory(op);
		free(op);
		return;
	}
	/* the script's verb, "0", then hit's and lk_fail's three numbers (lk_ok has none) */
	verb = op->kind == OP_HIT ? "hit" : op->kind == OP_LK_FAIL ? "lk_fail" : "lk_ok";
	a.n = a.nn = 0;
	arg_s(&a, op->key, op->klen);
	arg_s(&a, verb, strlen(verb));
	arg_s(&a, "0", 1);
	if (op->kind == OP_HIT || op->kind == OP_LK_FAIL) {
		arg_i(&a, op->a);
		arg_i(&a, op->b);
		arg_i(&a, op->c);
	}
	if (sw->cl_on)
		op->ccmd = rcl_script(sw->cl, 1, a.n, a.v, a.l, on_fire_reply, op);
	else if (redis_is_up(sw->rd))
		op->cmd = redis_script(sw->rd, 1, a.n, a.v, a.l, on_fire_reply, op);
	if (op->cmd == NULL && op->ccmd == NULL) {
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
	if (st_up(sw) && (op = op_new(sw, OP_LOCK, NULL, 0)) != NULL) {
		a.n = a.nn = 0;
		arg_s(&a, q->key, q->klen);
		arg_s(&a, "lk_check", 8);
		arg_s(&a, "0", 1);
		op->q = q;
		if (op_send(sw, op, 1, &a, on_lock_reply, cb, arg, opp) == 0)
			return STORE_PENDING;
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
	if (sw->redis_on && st_up(sw) && (op = op_new(sw, OP_PROBE, client, klen)) != NULL) {
		/* {visor:bans}: the counter shares the bans' Redis Cluster slot, so the probe that
		 * bans is one atomic script call there too */
		pl = mkkey(pk, "visor:probe:{visor:bans}:", client, klen);
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
		if (op_send(sw, op, 2, &a, on_probe_reply, cb, arg, opp) == 0)
			return STORE_PENDING;
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
	if (!sw->redis_on || !sw->probes_on || sw->poll_busy || !st_up(sw))
		return;
	snprintf(min, sizeof(min), "%lld", (long long)wall_ms());
	argv[2] = min;
	for (i = 0; i < 8; i++)
		lens[i] = strlen(argv[i]);
	if (sw->cl_on ? rcl_command(sw->cl, argv[1], lens[1], 8, argv, lens, on_poll_reply, sw) !=
	    NULL : redis_command(sw->rd, 8, argv, lens, on_poll_reply, sw) != NULL)
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
	TAILQ_INIT(&sw->rlq);
	TAILQ_INIT(&sw->retryq);
	sw->poll_ev = event_new(w->base, -1, EV_PERSIST, on_poll, sw);
	sw->flush_ev = event_new(w->base, -1, 0, on_flush, sw);
	sw->retry_ev = evtimer_new(w->base, on_retry_tmo, sw);
	if (sw->poll_ev == NULL || sw->flush_ev == NULL || sw->retry_ev == NULL || mem == NULL) {
		ev_free(&sw->poll_ev);
		ev_free(&sw->flush_ev);
		ev_free(&sw->retry_ev);
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
	if (c->redis.enabled && !c->redis.cluster && sw->rd == NULL) {
		/* published for store_ready on the admin (main) thread: a reload that enables
		 * Redis creates the client here, on the worker's thread */
		__atomic_store_n(&sw->rd, redis_new(w->base, &w->m, w->id, store_lua,
		    store_lua_len()), __ATOMIC_RELEASE);
		if (sw->rd == NULL)
			log_error("worker %d: cannot create the Redis client; using memory", w->id);
	}
	if (c->redis.enabled && c->redis.cluster && sw->cl == NULL) {
		__atomic_store_n(&sw->cl, rcl_new(w->base, &w->m, w->id, store_lua,
		    store_lua_len()), __ATOMIC_RELEASE);
		if (sw->cl == NULL)
			log_error("worker %d: cannot create the Redis Cluster client; using memory",
			    w->id);
		else
			rcl_hook(sw->cl, on_topology, sw);
	}
	/* off first: callbacks failed by a reconfiguration must see the new mode */
	sw->redis_on = 0;
	sw->cl_on = 0;
	if (sw->rd)
		redis_configure(sw->rd, c);      /* let go with redis.cluster */
	if (sw->cl)
		rcl_configure(sw->cl, c);        /* let go without */
	sw->cl_on = c->redis.enabled && c->redis.cluster && sw->cl != NULL;
	sw->redis_on = c->redis.enabled && (sw->cl_on || (!c->redis.cluster && sw->rd != NULL));
}

void
store_probes_on(struct worker *w, int on)
{
	struct store_w *sw = sw_of(w);

	if (sw != NULL)
		sw->probes_on = on;
}

void
store_worker_fini(struct worker *w)
{
	struct store_w *sw = sw_of(w);
	struct store_op *op;

	if (sw == NULL)
		return;
	sw->cl_on = 0;                  /* a check failed from here is not retried */
	rl_queue_fail(sw);              /* what the last pass queued: callbacks run now */
	redis_free(sw->rd);             /* fails what is in flight: callbacks run now */
	sw->rd = NULL;
	rcl_free(sw->cl);
	sw->cl = NULL;
	ev_free(&sw->poll_ev);
	ev_free(&sw->retry_ev);
	ev_free(&sw->flush_ev);
	while ((op = sw->pool) != NULL) {
		sw->pool = op->q;
		free(op);
	}
	redis_args_fini(&sw->keys);
	redis_args_fini(&sw->args);
	redis_args_fini(&sw->xargs);
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
		if (sw == NULL || !(c->redis.cluster ?
		    rcl_is_ready(__atomic_load_n(&sw->cl, __ATOMIC_ACQUIRE)) :
		    redis_is_up(__atomic_load_n(&sw->rd, __ATOMIC_ACQUIRE))))
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
