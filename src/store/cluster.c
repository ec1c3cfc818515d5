/* SPDX-License-Identifier: MIT
 * cluster — a worker's Redis Cluster client: the slot map and one connection per primary.
 * Contract in cluster.h; the key layout that keeps a check on one node in store.c and
 * docs/rate-limits.md.
 */
#include "store/cluster.h"

#include <sys/queue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "core/util.h"

#define REFRESH_MIN_MS    100            /* between two topology reads */
#define REFRESH_RETRY_MS  250            /* while a slot has no live primary */
#define NODES_MAX         1000           /* Redis's own advice for a cluster's size */
#define SHEBANG           "#!lua flags=allow-cross-slot-keys\n"

struct rcl_node {
	struct rcl   *cl;
	char         *host;
	int           port;
	struct redis *rd;
	int           slots;             /* slots it serves in the map */
	int           dead;              /* unhooked, waiting for the reaper */
};

struct rcl_cmd {
	TAILQ_ENTRY(rcl_cmd) link;       /* cl->cmds */
	struct rcl       *cl;
	redis_fn          fn;
	void             *arg;
	struct redis_cmd *inner;         /* on the node it was last sent to */
	int               script, nkeys, argc, redirects;
	const char      **argv;
	size_t           *lens;
};

struct rcl {
	struct event_base *base;
	struct metrics    *m;
	int                wid;
	char              *script;       /* SHEBANG + the store script */
	size_t             script_len;
	const struct conf *c;            /* the generation in force (the worker holds it) */

	struct rcl_node  **nodes;
	size_t             n, cap;
	uint16_t           map[RCL_SLOTS];   /* node index + 1; 0: no known primary */
	int                up;           /* every slot mapped; read by other threads */
	int                ready;        /* ... and every primary connected; the same */
	uint64_t           logged;       /* the primaries' addresses in the last topology logged */
	int                was_up;

	struct redis_cmd  *asking;       /* CLUSTER SLOTS in flight */
	struct rcl_node   *asked;
	unsigned           ask_next;     /* round robin over the nodes */
	int                again;        /* read again once the one in flight answers */
	int64_t            last_ms;
	struct event      *refresh_ev;
	struct rcl_node  **dying;        /* dropped nodes, freed on the next loop turn */
	size_t             ndying, capdying;
	struct event      *reap_ev;
	TAILQ_HEAD(, rcl_cmd) cmds;
	void             (*topo_fn)(void *arg);   /* rcl_hook */
	void              *topo_arg;
};

/* ---- slots --------------------------------------------------------------------------------- */

/* CRC16-CCITT (XMODEM), Redis Cluster's key hash. */
static uint16_t
crc16(const char *p, size_t n)
{
	uint16_t crc = 0;
	size_t i;
	int b;

	for (i = 0; i < n; i++) {
		crc ^= (uint16_t)((uint8_t)p[i] << 8);
		for (b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned
rcl_slot(const char *key, size_t len)
{
	size_t s, e;

	/* the hash tag: between the first '{' and the first '}' after it, when not empty */
	for (s = 0; s < len && key[s] != '{'; s++)
		;
	if (s < len) {
		for (e = s + 1; e < len && key[e] != '}'; e++)
			;
		if (e < len && e > s + 1)
			return crc16(key + s + 1, e - s - 1) & (RCL_SLOTS - 1);
	}
	return crc16(key, len) & (RCL_SLOTS - 1);
}

/* ---- nodes --------------------------------------------------------------------------------- */

static void refresh_soon(struct rcl *cl, int64_t min_gap_ms);

static void
set_up(struct rcl *cl, int up)
{
	__atomic_store_n(&cl->up, up, __ATOMIC_RELEASE);
}

static int degraded(const struct rcl *cl);

static void
set_ready(struct rcl *cl)
{
	__atomic_store_n(&cl->ready, !degraded(cl), __ATOMIC_RELEASE);
}

/* A node's connection came up or went away. Runs inside redis.c: only timers are touched. */
static void
on_node_state(void *arg, int up)
{
	struct rcl_node *nd = arg;
	struct rcl *cl = nd->cl;

	if (nd->dead)
		return;
	set_ready(cl);
	if (!up && nd->slots > 0)
		refresh_soon(cl, REFRESH_MIN_MS);      /* a failover may be under way */
	else if (up && cl->asking == NULL && !cl->up)
		refresh_soon(cl, 0);                   /* someone to ask, at last */
}

static struct rcl_node *
node_find(struct rcl *cl, const char *host, int port, size_t *idx)
{
	size_t i;

	for (i = 0; i < cl->n; i++)
		if (cl->nodes[i]->port == port && strcmp(cl->nodes[i]->host, host) == 0) {
			if (idx)
				*idx = i;
			return cl->nodes[i];
		}
	return NULL;
}

/* The node at host:port, connected with the generation's credentials; created when new.
 * NULL when out of memory or too many nodes. */
static struct rcl_node *
node_get(struct rcl *cl, const char *host, int port, size_t *idx)
{
	struct rcl_node *nd = node_find(cl, host, port, idx), **v;

	if (nd != NULL || cl->c == NULL)
		return nd;
	if (cl->n == NODES_MAX)
		return NULL;
	if (cl->n == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 8;
		if ((v = realloc(cl->nodes, cap * sizeof(*v))) == NULL)
			return NULL;
		cl->nodes = v;
		cl->cap = cap;
	}
	if ((nd = calloc(1, sizeof(*nd))) == NULL || (nd->host = strdup(host)) == NULL)
		goto fail;
	nd->cl = cl;
	nd->port = port;
	nd->rd = redis_new(cl->base, cl->m, cl->wid, cl->script, cl->script_len);
	if (nd->rd == NULL)
		goto fail;
	if (idx)
		*idx = cl->n;
	cl->nodes[cl->n++] = nd;
	redis_hooks(nd->rd, on_node_state, NULL, nd);
	redis_configure_at(nd->rd, cl->c, host, port);
	return nd;
fail:
	if (nd)
		free(nd->host);
	free(nd);
	return NULL;
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct rcl *cl = arg;
	size_t i;

	(void)fd;
	(void)what;
	/* redis_free fails the node's commands: their callbacks run here, not inside redis.c */
	for (i = 0; i < cl->ndying; i++) {
		redis_free(cl->dying[i]->rd);
		free(cl->dying[i]->host);
		free(cl->dying[i]);
	}
	cl->ndying = 0;
}

/* Takes node i out of the list (the map is rebuilt by the caller); freed on the next loop
 * turn, since we may be inside one of its callbacks. */
static int
node_drop(struct rcl *cl, size_t i)
{
	struct rcl_node *nd = cl->nodes[i];

	if (cl->ndying == cl->capdying) {
		size_t cap = cl->capdying ? cl->capdying * 2 : 8;
		struct rcl_node **v = realloc(cl->dying, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		cl->dying = v;
		cl->capdying = cap;
	}
	nd->dead = 1;
	redis_hooks(nd->rd, NULL, NULL, NULL);
	if (cl->asked == nd)
		cl->asked = NULL;
	cl->dying[cl->ndying++] = nd;
	memmove(cl->nodes + i, cl->nodes + i + 1, (cl->n - i - 1) * sizeof(*cl->nodes));
	cl->n--;
	event_active(cl->reap_ev, EV_TIMEOUT, 0);
	return 0;
}

/* ---- the topology -------------------------------------------------------------------------- */

static int
node_addr(const redisReply *e, const char *dflt, char *host, size_t hlen, int *port)
{
	const redisReply *h, *p;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
		return -1;
	h = e->element[0];
	p = e->element[1];
	if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_INTEGER ||
	    p->integer < 1 || p->integer > 65535)
		return -1;
	/* "" or "?": the node does not know its own address; it is the one we asked */
	if (h->len == 0 || (h->len == 1 && h->str[0] == '?'))
		snprintf(host, hlen, "%s", dflt);
	else if (h->len < hlen)
		snprintf(host, hlen, "%.*s", (int)h->len, h->str);
	else
		return -1;
	*port = (int)p->integer;
	return 0;
}

/* A new set of primaries (a failover, a node added or removed): one line naming them. */
static void
log_topology(const struct rcl *cl, int prim, int mapped)
{
	char list[400];
	size_t i, o = 0;

	list[0] = '\0';
	for (i = 0; i < cl->n && o < sizeof(list) - 64; i++)
		if (cl->nodes[i]->slots > 0)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s:%d (%d)",
			    o ? ", " : "", cl->nodes[i]->host, cl->nodes[i]->port,
			    cl->nodes[i]->slots);
	if (i < cl->n)
		snprintf(list + o, sizeof(list) - o, ", ...");
	if (mapped == RCL_SLOTS)
		log_info("redis cluster (worker %d): %d primaries serve the 16384 slots: %s",
		    cl->wid, prim, list);
	else
		log_warn("redis cluster (worker %d): %d slots have no primary; %d primaries "
		    "known: %s", cl->wid, RCL_SLOTS - mapped, prim, list);
}

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]. */
static int
apply_slots(struct rcl *cl, const redisReply *rp, const char *asked_host)
{
	uint16_t *map;
	size_t i, j;
	int mapped = 0, prim = 0;
	uint64_t sig = 0;
	char host[256];
	int port;

	if (rp->type != REDIS_REPLY_ARRAY)
		return -1;
	if ((map = calloc(RCL_SLOTS, sizeof(*map))) == NULL)
		return -1;
	for (i = 0; i < rp->elements; i++) {
		const redisReply *r = rp->element[i];
		size_t idx;
		long long s;
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
		    r->element[0]->type != REDIS_REPLY_INTEGER ||
		    r->element[1]->type != REDIS_REPLY_INTEGER ||
		    r->element[0]->integer < 0 || r->element[1]->integer >= RCL_SLOTS ||
		    r->element[0]->integer > r->element[1]->integer ||
		    node_addr(r->element[2], asked_host, host, sizeof(host), &port) < 0)
			goto bad;
		if (node_get(cl, host, port, &idx) == NULL)
			goto bad;
		for (s = r->element[0]->integer; s <= r->element[1]->integer; s++)
			map[s] = (uint16_t)(idx + 1);
	}
	/* nodes serving nothing now go (replicas named as seeds included: the seeds are
	 * connected again when no node is left to ask); the map follows the list's new indexes */
	for (i = 0; i < cl->n; i++)
		cl->nodes[i]->slots = 0;
	for (i = 0; i < RCL_SLOTS; i++)
		if (map[i])
			cl->nodes[map[i] - 1]->slots++;
	for (i = cl->n; i-- > 0;) {
		if (cl->nodes[i]->slots > 0)
			continue;
		if (node_drop(cl, i) < 0)
			continue;                /* kept (out of memory): dropped next time */
		for (j = 0; j < RCL_SLOTS; j++)
			if (map[j] > i + 1)
				map[j]--;
	}
	memcpy(cl->map, map, sizeof(cl->map));
	free(map);
	for (i = 0; i < RCL_SLOTS; i++)
		mapped += cl->map[i] != 0;
	for (i = 0; i < cl->n; i++) {
		uint64_t h = 1469598103934665603ull;       /* FNV-1a of host, then port */
		const char *c;
		if (cl->nodes[i]->slots == 0)
			continue;
		prim++;
		for (c = cl->nodes[i]->host; *c; c++)
			h = (h ^ (uint8_t)*c) * 1099511628211ull;
		sig += (h ^ (uint64_t)cl->nodes[i]->port) * 1099511628211ull;
	}
	if (sig != cl->logged || (mapped == RCL_SLOTS) != cl->was_up)
		log_topology(cl, prim, mapped);
	cl->logged = sig;
	cl->was_up = mapped == RCL_SLOTS;
	set_up(cl, mapped == RCL_SLOTS);
	set_ready(cl);
	return 0;
bad:
	free(map);
	return -1;
}

/* 1 when some slot's primary is unknown or its connection is not up. */
static int
degraded(const struct rcl *cl)
{
	size_t i;

	if (!cl->up)
		return 1;
	for (i = 0; i < cl->n; i++)
		if (cl->nodes[i]->slots > 0 && !redis_is_up(cl->nodes[i]->rd))
			return 1;
	return 0;
}

/* Connects to the seeds of redis.cluster.nodes (those not connected already). */
static void
connect_seeds(struct rcl *cl)
{
	char host[256];
	const char *err;
	size_t i;
	int port;

	for (i = 0; cl->c != NULL && i < cl->c->redis.cluster_nodes.n; i++)
		if (conf_hostport(cl->c->redis.cluster_nodes.v[i], host, sizeof(host), &port,
		    6379, &err) == 0)
			(void)node_get(cl, host, port, NULL);   /* checked at load */
}

/* The checks waiting for a new map may go (store.c re-sends what a stale map misrouted). */
static void
topology_read(struct rcl *cl)
{
	if (cl->topo_fn)
		cl->topo_fn(cl->topo_arg);
}

static void
on_slots(void *arg, const struct redisReply *rp)
{
	struct rcl *cl = arg;
	struct rcl_node *asked = cl->asked;
	char why[160];

	cl->asking = NULL;
	cl->asked = NULL;
	cl->last_ms = now_ms();
	METRIC_INC(cl->m, redis_refreshes);
	if (rp == NULL || asked == NULL || apply_slots(cl, rp, asked->host) < 0) {
		if (rp != NULL && rp->type == REDIS_REPLY_ERROR)
			snprintf(why, sizeof(why), "%.*s", (int)MIN(rp->len, 120), rp->str);
		else
			snprintf(why, sizeof(why), "%s", rp == NULL ? "no answer" : "unexpected reply");
		log_warn("redis cluster (worker %d): cannot read the topology: %s", cl->wid, why);
		cl->again = 0;
		ev_timer_in(cl->refresh_ev, REFRESH_RETRY_MS);
		topology_read(cl);
		return;
	}
	if (cl->again) {
		cl->again = 0;
		refresh_soon(cl, REFRESH_MIN_MS);
	} else {
		ev_timer_in(cl->refresh_ev, degraded(cl) ? REFRESH_RETRY_MS : RCL_IDLE_REFRESH_MS);
	}
	topology_read(cl);
}

static void
on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct rcl *cl = arg;
	const char *argv[2] = { "CLUSTER", "SLOTS" };
	size_t lens[2] = { 7, 5 }, i;

	(void)fd;
	(void)what;
	if (cl->c == NULL || cl->asking != NULL)
		return;
	/* round robin over the nodes that are up: a node that keeps answering an old map does
	 * not have the last word */
	for (i = 0; i < cl->n; i++) {
		struct rcl_node *nd = cl->nodes[(cl->ask_next + i) % cl->n];
		if (!redis_is_up(nd->rd))
			continue;
		cl->ask_next = (unsigned)((cl->ask_next + i + 1) % cl->n);
		cl->asking = redis_command(nd->rd, 2, argv, lens, on_slots, cl);
		if (cl->asking != NULL) {
			cl->asked = nd;
			return;
		}
	}
	/* nobody to ask: the seeds again (a node coming up asks, on_node_state); meanwhile,
	 * poll */
	connect_seeds(cl);
	ev_timer_in(cl->refresh_ev, REFRESH_RETRY_MS);
}

/* Reads the topology within min_gap_ms of the last read (now if that is past). */
static void
refresh_soon(struct rcl *cl, int64_t min_gap_ms)
{
	int64_t wait = cl->last_ms + min_gap_ms - now_ms();

	if (cl->asking != NULL) {
		cl->again = 1;
		return;
	}
	ev_timer_in(cl->refresh_ev, wait > 0 ? wait : 0);
}

void
rcl_stale(struct rcl *cl)
{
	if (cl != NULL && cl->c != NULL)
		refresh_soon(cl, REFRESH_MIN_MS);
}

struct redis *
rcl_route(struct rcl *cl, const char *key, size_t len)
{
	unsigned i = cl->map[rcl_slot(key, len)];
	struct redis *rd;

	if (i == 0 || i > cl->n)
		return NULL;
	rd = cl->nodes[i - 1]->rd;
	return redis_is_up(rd) ? rd : NULL;
}

int
rcl_is_up(const struct rcl *cl)
{
	return cl != NULL && __atomic_load_n(&cl->up, __ATOMIC_ACQUIRE);
}

int
rcl_is_ready(const struct rcl *cl)
{
	return cl != NULL && __atomic_load_n(&cl->ready, __ATOMIC_ACQUIRE);
}

/* ---- routed commands ----------------------------------------------------------------------- */

static void on_inner(void *arg, const struct redisReply *rp);

static void
cmd_free(struct rcl_cmd *c)
{
	TAILQ_REMOVE(&c->cl->cmds, c, link);
	free(c);
}

static int
cmd_send(struct rcl_cmd *c, struct redis *rd, int asking)
{
	if (asking) {
		const char *a[1] = { "ASKING" };
		size_t l[1] = { 6 };
		/* the same connection answers in order: ASKING applies to the next command */
		if (redis_command(rd, 1, a, l, NULL, NULL) == NULL)
			return -1;
	}
	c->inner = c->script ?
	    redis_script(rd, c->nkeys, c->argc, c->argv, c->lens, on_inner, c) :
	    redis_command(rd, c->argc, c->argv, c->lens, on_inner, c);
	return c->inner != NULL ? 0 : -1;
}

/* "MOVED <slot> <host>:<port>" / "ASK ...": 0 with the slot and the address. */
static int
parse_redirect(const char *s, size_t n, unsigned *slot, char *host, size_t hlen, int *port)
{
	char buf[300], *p, *colon, *end;
	long v;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((p = strchr(buf, ' ')) == NULL)
		return -1;
	v = strtol(p + 1, &end, 10);
	if (end == p + 1 || *end != ' ' || v < 0 || v >= RCL_SLOTS)
		return -1;
	*slot = (unsigned)v;
	p = end + 1;
	if ((colon = strrchr(p, ':')) == NULL || colon == p || (size_t)(colon - p) >= hlen)
		return -1;
	v = strtol(colon + 1, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return -1;
	/* an IPv6 address comes without brackets: everything before the last ':' */
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	*port = (int)v;
	return 0;
}

static void
on_inner(void *arg, const struct redisReply *rp)
{
	struct rcl_cmd *c = arg;
	struct rcl *cl = c->cl;
	redis_fn fn;
	int moved = 0, ask = 0;

	c->inner = NULL;
	if (rp != NULL && rp->type == REDIS_REPLY_ERROR && c->redirects < RCL_REDIRECTS) {
		moved = rp->len > 6 && memcmp(rp->str, "MOVED ", 6) == 0;
		ask = rp->len > 4 && memcmp(rp->str, "ASK ", 4) == 0;
	}
	if (moved || ask) {
		char host[256];
		unsigned slot;
		int port;
		size_t idx;
		struct rcl_node *nd;
		if (parse_redirect(rp->str, rp->len, &slot, host, sizeof(host), &port) == 0 &&
		    (nd = node_get(cl, host, port, &idx)) != NULL) {
			METRIC_INC(cl->m, redis_redirects);
			c->redirects++;
			if (moved) {
				/* the slot moved for good: send there from now on, and read the rest
				 * of the map again */
				if (cl->map[slot] != 0)
					cl->nodes[cl->map[slot] - 1]->slots--;
				cl->map[slot] = (uint16_t)(idx + 1);
				nd->slots++;
				rcl_stale(cl);
			}
			if (redis_is_up(nd->rd) && cmd_send(c, nd->rd, ask) == 0)
				return;
		}
		rp = NULL;                     /* could not follow it: a failure */
	}
	fn = c->fn;
	c->fn = NULL;
	if (fn)
		fn(c->arg, rp);
	cmd_free(c);
}

static struct rcl_cmd *
routed(struct rcl *cl, int script, int nkeys, const char *key, size_t klen, int argc,
    const char **argv, const size_t *lens, redis_fn fn, void *arg)
{
	struct rcl_cmd *c;
	struct redis *rd;
	size_t need = 0;
	char *p;
	int i;

	if (cl == NULL || argc < 1 || (rd = rcl_route(cl, key, klen)) == NULL)
		return NULL;
	for (i = 0; i < argc; i++)
		need += lens[i];
	c = malloc(sizeof(*c) + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + need + 1);
	if (c == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->argv = (const char **)(void *)(c + 1);
	c->lens = (size_t *)(void *)(c->argv + argc);
	p = (char *)(c->lens + argc);
	for (i = 0; i < argc; i++) {
		memcpy(p, argv[i], lens[i]);
		c->argv[i] = p;
		c->lens[i] = lens[i];
		p += lens[i];
	}
	c->cl = cl;
	c->fn = fn;
	c->arg = arg;
	c->script = script;
	c->nkeys = nkeys;
	c->argc = argc;
	TAILQ_INSERT_TAIL(&cl->cmds, c, link);
	if (cmd_send(c, rd, 0) < 0) {
		cmd_free(c);
		return NULL;
	}
	return c;
}

struct rcl_cmd *
rcl_script(struct rcl *cl, int nkeys, int argc, const char **argv, const size_t *lens,
    redis_fn fn, void *arg)
{
	if (nkeys < 1 || nkeys > argc)
		return NULL;
	return routed(cl, 1, nkeys, argv[0], lens[0], argc, argv, lens, fn, arg);
}

struct rcl_cmd *
rcl_command(struct rcl *cl, const char *key, size_t klen, int argc, const char **argv,
    const size_t *lens, redis_fn fn, void *arg)
{
	return routed(cl, 0, 0, key, klen, argc, argv, lens, fn, arg);
}

void
rcl_cmd_detach(struct rcl_cmd *c)
{
	if (c == NULL)
		return;
	redis_cmd_detach(c->inner);
	cmd_free(c);
}

/* ---- life ---------------------------------------------------------------------------------- */

struct rcl *
rcl_new(struct event_base *base, struct metrics *m, int worker_id, const char *script,
    size_t script_len)
{
	struct rcl *cl = calloc(1, sizeof(*cl));

	if (cl == NULL)
		return NULL;
	cl->base = base;
	cl->m = m;
	cl->wid = worker_id;
	TAILQ_INIT(&cl->cmds);
	cl->script_len = sizeof(SHEBANG) - 1 + script_len;
	if ((cl->script = malloc(cl->script_len + 1)) == NULL)
		goto fail;
	memcpy(cl->script, SHEBANG, sizeof(SHEBANG) - 1);
	memcpy(cl->script + sizeof(SHEBANG) - 1, script, script_len);
	cl->script[cl->script_len] = '\0';
	cl->refresh_ev = evtimer_new(base, on_refresh, cl);
	cl->reap_ev = event_new(base, -1, 0, on_reap, cl);
	if (cl->refresh_ev == NULL || cl->reap_ev == NULL)
		goto fail;
	return cl;
fail:
	rcl_free(cl);
	return NULL;
}

/* Every node goes (their commands fail now, callbacks included). */
static void
drop_all(struct rcl *cl)
{
	/* the map empty before any node's callbacks run (redis_free): a caller asking for a
	 * route from one of them finds none */
	memset(cl->map, 0, sizeof(cl->map));
	set_up(cl, 0);
	__atomic_store_n(&cl->ready, 0, __ATOMIC_RELEASE);
	cl->logged = 0;
	cl->was_up = 0;
	if (cl->asking != NULL) {
		redis_cmd_detach(cl->asking);
		cl->asking = NULL;
	}
	cl->asked = NULL;
	if (cl->refresh_ev)
		evtimer_del(cl->refresh_ev);
	while (cl->n > 0 && node_drop(cl, cl->n - 1) == 0)
		;
	while (cl->n > 0) {                  /* out of memory for the reaper's list: free now */
		struct rcl_node *nd = cl->nodes[--cl->n];
		nd->dead = 1;
		redis_hooks(nd->rd, NULL, NULL, NULL);
		redis_free(nd->rd);
		free(nd->host);
		free(nd);
	}
	on_reap(-1, 0, cl);
	cl->c = NULL;
}

void
rcl_configure(struct rcl *cl, const struct conf *c)
{
	size_t i;

	if (!c->redis.enabled || !c->redis.cluster) {
		drop_all(cl);
		return;
	}
	cl->c = c;
	/* settings that did not change keep the connection (redis.c decides) */
	for (i = 0; i < cl->n; i++)
		redis_configure_at(cl->nodes[i]->rd, c, cl->nodes[i]->host, cl->nodes[i]->port);
	if (cl->n == 0)
		connect_seeds(cl);
	refresh_soon(cl, 0);
}

void
rcl_hook(struct rcl *cl, void (*fn)(void *arg), void *arg)
{
	cl->topo_fn = fn;
	cl->topo_arg = arg;
}

void
rcl_free(struct rcl *cl)
{
	struct rcl_cmd *c;

	if (cl == NULL)
		return;
	drop_all(cl);
	while ((c = TAILQ_FIRST(&cl->cmds)) != NULL) {   /* none left, as every node failed its */
		redis_fn fn = c->fn;
		void *arg = c->arg;
		redis_cmd_detach(c->inner);
		cmd_free(c);
		if (fn)
			fn(arg, NULL);
	}
	ev_free(&cl->refresh_ev);
	ev_free(&cl->reap_ev);
	free(cl->nodes);
	free(cl->dying);
	free(cl->script);
	free(cl);
}
