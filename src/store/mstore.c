/* SPDX-License-Identifier: MIT
 * mstore — the in-memory store (see mstore.h for the contract and store.h for the algorithm).
 *
 * Layout: MSTORE_SHARDS shards, each a mutex, a chained hash table and an LRU list of entries.
 * An entry is one malloc: header, payload (the sliding log's ring of times, or the bucket ring),
 * then the key bytes. Entries never outlive their expiry for long: every operation reaps a few
 * expired entries from its shard's LRU tail, and inserts evict from the tail when over budget.
 *
 * Must never: hold two shard locks out of ascending order (deadlock), keep a pointer to an entry
 * across an insert into the same shard (an insert may evict it), or block on anything but a
 * shard mutex.
 */
#include "store/mstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/util.h"

enum mkind { MK_LOG = 1, MK_BUCKET, MK_LOCK, MK_BAN };

struct ment {
	struct ment *hnext;
	struct ment *prev, *next;        /* LRU: shard->head is the most recently used */
	uint64_t     h;
	int64_t      expire;             /* store clock ms; the entry is dead from then on */
	size_t       size;               /* accounted bytes */
	uint32_t     klen;
	uint8_t      kind;
	union {
		struct { uint32_t cap, n, head; } log;   /* ring of cap times; head = newest */
		struct { int64_t lo, s, b; } bk;        /* oldest possibly live bucket, sum, width */
		struct { int64_t fails, until; } lk;
		struct { int64_t until; } ban;
	} u;
	int64_t      pay[];              /* log: times[cap]; bucket: counts[RL_RING]; then the key */
};

struct mshard {
	pthread_mutex_t mu;
	struct ment   **tab;
	size_t          mask;
	size_t          n;
	size_t          bytes, max;
	struct ment    *head, *tail;
	char            pad[64];         /* keep hot shards on separate cache lines */
};

struct mstore {
	struct mshard shard[MSTORE_SHARDS];
	uint64_t      k0, k1;            /* SipHash key */
	int64_t       n_bans;            /* atomic: live ban entries (fast path of mstore_banned) */
};

/* ---- hashing: SipHash-2-4 -------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); } while (0)

static uint64_t
siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + (len & ~(size_t)7);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	int i;

	for (; p != end; p += 8) {
		memcpy(&m, p, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < (int)(len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static inline struct mshard *
shard_of(struct mstore *m, uint64_t h)
{
	return &m->shard[h >> 58];      /* top 6 bits: 64 shards; the low bits pick the chain */
}

static inline int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- store and shards -------------------------------------------------------------------- */

struct mstore *
mstore_new_sized(size_t max_bytes)
{
	struct mstore *m;
	unsigned char key[16];
	size_t i;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	if (RAND_bytes(key, sizeof(key)) != 1) {
		/* No entropy source: still usable, only less resistant to chosen-key flooding. */
		memset(key, 0x5a, sizeof(key));
	}
	memcpy(&m->k0, key, 8);
	memcpy(&m->k1, key + 8, 8);
	for (i = 0; i < MSTORE_SHARDS; i++) {
		struct mshard *sh = &m->shard[i];
		pthread_mutex_init(&sh->mu, NULL);
		sh->mask = 63;
		sh->tab = calloc(sh->mask + 1, sizeof(*sh->tab));
		sh->max = max_bytes / MSTORE_SHARDS;
		if (sh->max < 4096)
			sh->max = 4096;
		if (sh->tab == NULL) {
			mstore_free(m);
			return NULL;
		}
	}
	return m;
}

struct mstore *
mstore_new(void)
{
	return mstore_new_sized(MSTORE_DEFAULT_MAX);
}

void
mstore_free(struct mstore *m)
{
	struct ment *e, *n;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < MSTORE_SHARDS; i++) {
		struct mshard *sh = &m->shard[i];
		for (e = sh->head; e; e = n) {
			n = e->next;
			free(e);
		}
		free(sh->tab);
		pthread_mutex_destroy(&sh->mu);
	}
	free(m);
}

static inline const char *
ment_key(const struct ment *e)
{
	size_t words = e->kind == MK_LOG ? e->u.log.cap : e->kind == MK_BUCKET ? RL_RING : 0;

	return (const char *)(e->pay + words);
}

static void
lru_unlink(struct mshard *sh, struct ment *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		sh->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		sh->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct mshard *sh, struct ment *e)
{
	e->prev = NULL;
	e->next = sh->head;
	if (sh->head)
		sh->head->prev = e;
	sh->head = e;
	if (sh->tail == NULL)
		sh->tail = e;
}

static void
ment_drop(struct mstore *m, struct mshard *sh, struct ment *e)
{
	struct ment **pp = &sh->tab[e->h & sh->mask];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(sh, e);
	sh->n--;
	sh->bytes -= e->size;
	if (e->kind == MK_BAN)
		__atomic_sub_fetch(&m->n_bans, 1, __ATOMIC_RELAXED);
	free(e);
}

/* Frees up to `n` expired entries from the LRU tail. */
static void
reap(struct mstore *m, struct mshard *sh, int64_t now, int n)
{
	while (n-- > 0 && sh->tail && sh->tail->expire <= now)
		ment_drop(m, sh, sh->tail);
}

static void
grow(struct mshard *sh)
{
	size_t nsz = (sh->mask + 1) * 2, i;
	struct ment **nt, *e, *nx;

	if (nsz > ((size_t)1 << 24))
		return;
	nt = calloc(nsz, sizeof(*nt));
	if (nt == NULL)
		return;                  /* longer chains, still correct */
	for (i = 0; i <= sh->mask; i++) {
		for (e = sh->tab[i]; e; e = nx) {
			nx = e->hnext;
			e->hnext = nt[e->h & (nsz - 1)];
			nt[e->h & (nsz - 1)] = e;
		}
	}
	free(sh->tab);
	sh->tab = nt;
	sh->mask = nsz - 1;
}

/* The live entry for key, touched (LRU), or NULL. An expired one is freed; one of another
 * kind (a policy that changed from log to buckets) too, as the Lua script does on WRONGTYPE. */
static struct ment *
get(struct mstore *m, struct mshard *sh, uint64_t h, const char *key, size_t klen, int kind,
    int64_t now)
{
	struct ment *e;

	for (e = sh->tab[h & sh->mask]; e; e = e->hnext)
		if (e->h == h && e->klen == klen && memcmp(ment_key(e), key, klen) == 0)
			break;
	if (e == NULL)
		return NULL;
	if (e->expire <= now || e->kind != kind) {
		ment_drop(m, sh, e);
		return NULL;
	}
	if (sh->head != e) {
		lru_unlink(sh, e);
		lru_push(sh, e);
	}
	return e;
}

/* A new entry (the key must not be present). Evicts from the LRU tail to stay in budget.
 * NULL on out of memory. */
static struct ment *
make(struct mstore *m, struct mshard *sh, uint64_t h, const char *key, size_t klen, int kind,
    uint32_t cap, int64_t now)
{
	size_t words = kind == MK_LOG ? cap : kind == MK_BUCKET ? RL_RING : 0;
	size_t sz = sizeof(struct ment) + words * sizeof(int64_t) + klen + 1;
	struct ment *e;

	reap(m, sh, now, 8);
	while (sh->tail && sh->bytes + sz + 32 > sh->max)
		ment_drop(m, sh, sh->tail);
	e = calloc(1, sz);
	if (e == NULL)
		return NULL;
	e->h = h;
	e->kind = (uint8_t)kind;
	e->klen = (uint32_t)klen;
	e->size = sz + 32;               /* malloc overhead, roughly */
	if (kind == MK_LOG)
		e->u.log.cap = cap;
	memcpy((char *)(e->pay + words), key, klen);
	e->hnext = sh->tab[h & sh->mask];
	sh->tab[h & sh->mask] = e;
	lru_push(sh, e);
	sh->n++;
	sh->bytes += e->size;
	if (kind == MK_BAN)
		__atomic_add_fetch(&m->n_bans, 1, __ATOMIC_RELAXED);
	if (sh->n > sh->mask + 1)
		grow(sh);
	return e;
}

/* ---- sliding log --------------------------------------------------------------------------- */

static inline int64_t
log_at(const struct ment *e, uint32_t i)        /* i = 0: newest */
{
	return e->pay[(e->u.log.head + e->u.log.cap - i) % e->u.log.cap];
}

static void
log_prune(struct ment *e, int64_t now, int64_t w)
{
	while (e->u.log.n > 0 && log_at(e, e->u.log.n - 1) <= now - w)
		e->u.log.n--;
}

static void
log_push(struct ment *e, int64_t t)
{
	e->u.log.head = (e->u.log.head + 1) % e->u.log.cap;
	e->pay[e->u.log.head] = t;
	if (e->u.log.n < e->u.log.cap)
		e->u.log.n++;
}

/* The entry for a log of capacity `cap`: reallocated (newest times kept) when the policy's
 * limit changed. */
static struct ment *
log_entry(struct mstore *m, struct mshard *sh, uint64_t h, const struct store_limit *l,
    int64_t now)
{
	struct ment *e = get(m, sh, h, l->key, l->klen, MK_LOG, now), *ne;
	uint32_t cap = (uint32_t)l->limit, i, keep;
	int64_t tmp[RL_LOG_MAX];

	if (e && e->u.log.cap == cap)
		return e;
	keep = 0;
	if (e) {
		log_prune(e, now, l->window_ms);
		keep = MIN(e->u.log.n, cap);
		for (i = 0; i < keep; i++)
			tmp[i] = log_at(e, i);
		ment_drop(m, sh, e);
	}
	ne = make(m, sh, h, l->key, l->klen, MK_LOG, cap, now);
	if (ne == NULL)
		return NULL;
	for (i = keep; i-- > 0;)
		log_push(ne, tmp[i]);
	ne->expire = keep ? tmp[0] + l->window_ms : now + l->window_ms;
	return ne;
}

/* ---- buckets --------------------------------------------------------------------------------- */

static inline int64_t *
bk_cnt(struct ment *e, int64_t k)
{
	return &e->pay[(uint64_t)k & (RL_RING - 1)];
}

static void
bk_prune(struct ment *e, int64_t now, int64_t w, int64_t b)
{
	int64_t L = floordiv(now - w, b), k;

	if (e->u.bk.b != b) {
		/* the window changed: the old buckets mean nothing now */
		memset(e->pay, 0, RL_RING * sizeof(int64_t));
		e->u.bk.s = 0;
		e->u.bk.lo = L;
		e->u.bk.b = b;
		return;
	}
	if (e->u.bk.lo < L) {
		if (L - e->u.bk.lo > RL_BUCKETS + 1) {
			memset(e->pay, 0, RL_RING * sizeof(int64_t));
			e->u.bk.s = 0;
		} else {
			for (k = e->u.bk.lo; k < L; k++) {
				e->u.bk.s -= *bk_cnt(e, k);
				*bk_cnt(e, k) = 0;
			}
		}
		e->u.bk.lo = L;
	}
}

/* The oldest bucket holding admissions (lo moves up to it), or -1. */
static int64_t
bk_oldest(struct ment *e, int64_t c)
{
	int64_t k;

	for (k = e->u.bk.lo; k <= c; k++) {
		if (*bk_cnt(e, k) != 0) {
			e->u.bk.lo = k;
			return k;
		}
	}
	return -1;
}

/* ---- one policy ------------------------------------------------------------------------------ */

struct lstate {
	int64_t count;
	int64_t retry_ms;                /* when refused */
	int64_t reset_ms;                /* when not committed */
};

/* Reads (and prunes) a policy's state at now. */
static void
lim_read(struct mstore *m, const struct store_limit *l, int64_t now, struct lstate *st)
{
	uint64_t h = siphash(m->k0, m->k1, l->key, l->klen);
	struct mshard *sh = shard_of(m, h);
	int64_t w = l->window_ms, b, c, k, acc;
	struct ment *e;

	st->count = 0;
	st->retry_ms = w;
	st->reset_ms = w;
	if (l->mode == RL_MODE_LOG) {
		e = get(m, sh, h, l->key, l->klen, MK_LOG, now);
		if (e == NULL)
			return;
		log_prune(e, now, w);
		st->count = e->u.log.n;
		if (st->count > 0)
			st->reset_ms = log_at(e, e->u.log.n - 1) + w - now;
		if (st->count >= l->limit)
			st->retry_ms = log_at(e, (uint32_t)l->limit - 1) + w - now;
		return;
	}
	b = rl_bucket_ms(w);
	c = floordiv(now, b);
	e = get(m, sh, h, l->key, l->klen, MK_BUCKET, now);
	if (e == NULL)
		return;
	bk_prune(e, now, w, b);
	st->count = e->u.bk.s;
	if ((k = bk_oldest(e, c)) >= 0)
		st->reset_ms = (k + 1) * b + w - now;
	if (st->count >= l->limit) {
		for (acc = 0, k = e->u.bk.lo; k <= c; k++) {
			acc += *bk_cnt(e, k);
			if (*bk_cnt(e, k) != 0 && e->u.bk.s - acc < l->limit) {
				st->retry_ms = (k + 1) * b + w - now;
				break;
			}
		}
	}
}

/* Records one admission (or failure hit) of l at now; returns the count after it and sets
 * *reset_ms. -1 on out of memory (nothing recorded). */
static int64_t
lim_add(struct mstore *m, const struct store_limit *l, int64_t now, int64_t *reset_ms)
{
	uint64_t h = siphash(m->k0, m->k1, l->key, l->klen);
	struct mshard *sh = shard_of(m, h);
	int64_t w = l->window_ms, b, c, k;
	struct ment *e;

	if (l->mode == RL_MODE_LOG) {
		e = log_entry(m, sh, h, l, now);
		if (e == NULL)
			return -1;
		log_prune(e, now, w);
		log_push(e, now);
		e->expire = now + w;
		*reset_ms = log_at(e, e->u.log.n - 1) + w - now;
		return e->u.log.n;
	}
	b = rl_bucket_ms(w);
	c = floordiv(now, b);
	e = get(m, sh, h, l->key, l->klen, MK_BUCKET, now);
	if (e == NULL) {
		e = make(m, sh, h, l->key, l->klen, MK_BUCKET, 0, now);
		if (e == NULL)
			return -1;
		e->u.bk.b = b;
		e->u.bk.lo = floordiv(now - w, b);
	}
	bk_prune(e, now, w, b);
	if (c < e->u.bk.lo)
		e->u.bk.lo = c;
	(*bk_cnt(e, c))++;
	e->u.bk.s++;
	e->expire = (c + 1) * b + w;
	k = bk_oldest(e, c);
	*reset_ms = (k + 1) * b + w - now;
	return e->u.bk.s;
}

/* ---- locking several shards ---------------------------------------------------------------- */

static size_t
lock_set(struct mstore *m, const struct store_limit *lim, size_t n, unsigned char *ids)
{
	size_t i, j, k = 0;
	unsigned char id, t;

	for (i = 0; i < n; i++) {
		id = (unsigned char)(siphash(m->k0, m->k1, lim[i].key, lim[i].klen) >> 58);
		for (j = 0; j < k && ids[j] != id; j++)
			;
		if (j == k)
			ids[k++] = id;
	}
	for (i = 1; i < k; i++)          /* insertion sort: at most a handful */
		for (j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	for (i = 0; i < k; i++)
		pthread_mutex_lock(&m->shard[ids[i]].mu);
	return k;
}

static void
unlock_set(struct mstore *m, const unsigned char *ids, size_t k)
{
	while (k-- > 0)
		pthread_mutex_unlock(&m->shard[ids[k]].mu);
}

/* ---- operations ------------------------------------------------------------------------------ */

void
mstore_rl(struct mstore *m, int64_t now, struct store_rlq *q)
{
	unsigned char ids[MSTORE_SHARDS];
	struct lstate st;
	size_t i, k;
	int all = 1;

	q->revoked = 0;
	q->from_memory = 1;
	if (q->n > MSTORE_SHARDS) {
		/* more policies than shards cannot happen (CONF_MAX is far lower); refuse safely */
		q->admitted = 0;
		return;
	}
	k = lock_set(m, q->lim, q->n, ids);
	for (i = 0; i < q->n; i++) {
		struct store_limit *l = &q->lim[i];
		lim_read(m, l, now, &st);
		l->admitted = st.count < l->limit;
		if (!l->admitted) {
			all = 0;
			l->remaining = 0;
			l->reset_ms = st.retry_ms;
		} else {
			l->remaining = l->limit - st.count - 1;
			l->reset_ms = st.reset_ms;
		}
	}
	if (all) {
		for (i = 0; i < q->n; i++) {
			struct store_limit *l = &q->lim[i];
			int64_t reset, cnt;
			if (l->check_only)
				continue;
			cnt = lim_add(m, l, now, &reset);
			if (cnt >= 0) {
				l->remaining = MAX(l->limit - cnt, 0);
				l->reset_ms = reset;
			}
		}
	} else {
		/* nothing recorded: the admitting policies report their state without this request */
		for (i = 0; i < q->n; i++) {
			struct store_limit *l = &q->lim[i];
			if (l->admitted)
				l->remaining++;
		}
	}
	unlock_set(m, ids, k);
	q->admitted = all;
}

int64_t
mstore_hit(struct mstore *m, int64_t now, const struct store_limit *l)
{
	uint64_t h = siphash(m->k0, m->k1, l->key, l->klen);
	struct mshard *sh = shard_of(m, h);
	int64_t reset, cnt;

	pthread_mutex_lock(&sh->mu);
	cnt = lim_add(m, l, now, &reset);
	pthread_mutex_unlock(&sh->mu);
	return cnt;
}

int64_t
lockout_lock_ms(int64_t fails, int64_t after, int64_t base_ms, int64_t max_ms)
{
	int64_t lock, i;

	if (fails < after)
		return 0;
	lock = base_ms;
	for (i = fails - after; i > 0 && lock < max_ms; i--)
		lock *= 2;
	return lock > max_ms ? max_ms : lock;
}

void
mstore_lockout_check(struct mstore *m, int64_t now, struct store_lockq *q)
{
	uint64_t h = siphash(m->k0, m->k1, q->key, q->klen);
	struct mshard *sh = shard_of(m, h);
	struct ment *e;

	q->locked = 0;
	q->retry_ms = 0;
	pthread_mutex_lock(&sh->mu);
	e = get(m, sh, h, q->key, q->klen, MK_LOCK, now);
	if (e && e->u.lk.until > now) {
		q->locked = 1;
		q->retry_ms = e->u.lk.until - now;
	}
	pthread_mutex_unlock(&sh->mu);
}

int64_t
mstore_lockout_fail(struct mstore *m, int64_t now, const char *key, size_t klen, int64_t after,
    int64_t base_ms, int64_t max_ms)
{
	uint64_t h = siphash(m->k0, m->k1, key, klen);
	struct mshard *sh = shard_of(m, h);
	struct ment *e;
	int64_t lock = 0;

	pthread_mutex_lock(&sh->mu);
	e = get(m, sh, h, key, klen, MK_LOCK, now);
	if (e == NULL)
		e = make(m, sh, h, key, klen, MK_LOCK, 0, now);
	if (e) {
		e->u.lk.fails++;
		lock = lockout_lock_ms(e->u.lk.fails, after, base_ms, max_ms);
		if (lock > 0)
			e->u.lk.until = now + lock;
		e->expire = now + lock + max_ms;
	}
	pthread_mutex_unlock(&sh->mu);
	return lock;
}

void
mstore_lockout_ok(struct mstore *m, const char *key, size_t klen)
{
	uint64_t h = siphash(m->k0, m->k1, key, klen);
	struct mshard *sh = shard_of(m, h);
	struct ment *e;

	pthread_mutex_lock(&sh->mu);
	e = get(m, sh, h, key, klen, MK_LOCK, INT64_MIN);
	if (e)
		ment_drop(m, sh, e);
	pthread_mutex_unlock(&sh->mu);
}

void
mstore_ban(struct mstore *m, int64_t now, const char *key, size_t klen, int64_t until)
{
	uint64_t h = siphash(m->k0, m->k1, key, klen);
	struct mshard *sh = shard_of(m, h);
	struct ment *e;

	if (until <= now)
		return;
	pthread_mutex_lock(&sh->mu);
	e = get(m, sh, h, key, klen, MK_BAN, now);
	if (e == NULL)
		e = make(m, sh, h, key, klen, MK_BAN, 0, now);
	if (e && until > e->u.ban.until) {
		e->u.ban.until = until;
		e->expire = until;
	}
	pthread_mutex_unlock(&sh->mu);
}

int
mstore_probe(struct mstore *m, int64_t now, const char *key, size_t klen, const char *ban_key,
    size_t ban_klen, int64_t ban_after, int64_t ban_for_ms)
{
	struct store_limit l = { .key = key, .klen = klen, .limit = ban_after,
	    .window_ms = PROBE_WINDOW_MS, .mode = rl_mode_for(ban_after) };
	uint64_t h = siphash(m->k0, m->k1, key, klen);
	struct mshard *sh = shard_of(m, h);
	struct ment *e;
	int64_t cnt, reset;

	pthread_mutex_lock(&sh->mu);
	cnt = lim_add(m, &l, now, &reset);
	if (cnt >= ban_after) {
		/* the count starts over after a ban */
		e = get(m, sh, h, key, klen, l.mode == RL_MODE_LOG ? MK_LOG : MK_BUCKET, now);
		if (e)
			ment_drop(m, sh, e);
	}
	pthread_mutex_unlock(&sh->mu);
	if (cnt < ban_after)
		return 0;
	mstore_ban(m, now, ban_key, ban_klen, now + ban_for_ms);
	return 1;
}

int
mstore_banned(struct mstore *m, int64_t now, const char *key, size_t klen, int64_t *until)
{
	uint64_t h;
	struct mshard *sh;
	struct ment *e;
	int r = 0;

	if (__atomic_load_n(&m->n_bans, __ATOMIC_RELAXED) == 0)
		return 0;
	h = siphash(m->k0, m->k1, key, klen);
	sh = shard_of(m, h);
	pthread_mutex_lock(&sh->mu);
	e = get(m, sh, h, key, klen, MK_BAN, now);
	if (e && e->u.ban.until > now) {
		r = 1;
		if (until)
			*until = e->u.ban.until;
	}
	pthread_mutex_unlock(&sh->mu);
	return r;
}

void
mstore_clear(struct mstore *m)
{
	struct ment *e, *n;
	size_t i;

	for (i = 0; i < MSTORE_SHARDS; i++) {
		struct mshard *sh = &m->shard[i];
		pthread_mutex_lock(&sh->mu);
		for (e = sh->head; e; e = n) {
			n = e->next;
			free(e);
		}
		memset(sh->tab, 0, (sh->mask + 1) * sizeof(*sh->tab));
		sh->head = sh->tail = NULL;
		sh->n = 0;
		sh->bytes = 0;
		pthread_mutex_unlock(&sh->mu);
	}
	__atomic_store_n(&m->n_bans, 0, __ATOMIC_RELAXED);
}

/* The sum over the shards of the size_t counter at offset `off` in struct mshard, each
 * read under its shard's lock. */
static size_t
shard_sum(struct mstore *m, size_t off)
{
	size_t i, n = 0;

	for (i = 0; i < MSTORE_SHARDS; i++) {
		pthread_mutex_lock(&m->shard[i].mu);
		n += *(const size_t *)(const void *)((const char *)&m->shard[i] + off);
		pthread_mutex_unlock(&m->shard[i].mu);
	}
	return n;
}

size_t
mstore_entries(struct mstore *m)
{
	return shard_sum(m, offsetof(struct mshard, n));
}

size_t
mstore_bytes(struct mstore *m)
{
	return shard_sum(m, offsetof(struct mshard, bytes));
}
