/* SPDX-License-Identifier: MIT
 * filter — the one interface every policy implements (hsts, hdrs, scrub, probe, cors, jwt,
 * rl, lockout, body). The core knows nothing about any policy: it builds a chain per route
 * from the table in filter.c and drives it; adding a policy is one row there and one file.
 *
 * Request phase, in table order: on_request(req) returns
 *   V_CONTINUE  next filter;
 *   V_RESPOND   the filter made the answer (req_respond) — the chain stops;
 *   V_SUSPEND   an async operation (a Redis call, a timer) is outstanding; its completion
 *               calls req_resume(req, verdict) exactly once, from the worker's thread;
 *   V_ERROR     500 Internal server error, reason logged.
 * If a filter asked for the request body (req_want_body), the core reads it whole after the
 * head phase and calls on_request_body the same way, in the same order.
 * Response phase, in reverse order, only for filters that were entered (edge answers count,
 * so a 401 still gets CORS, security headers and HSTS): on_response(req) may rewrite the
 * response headers or replace the body (req_replace_body). It returns V_CONTINUE or
 * V_ERROR (logged, the answer goes on), or V_SUSPEND after req_want_resp_body(max): the
 * core buffers up to max bytes of the upstream's body (or all of it, when shorter) and
 * calls the same on_response again, then goes on. There is no other wait in this phase
 * (no req_resume): a V_SUSPEND without req_want_resp_body is logged and ignored.
 * on_done(req) runs once the answer is complete (after the log line): counting failures.
 * on_abort(req) runs for a filter that is suspended when the request dies (client gone):
 * it must detach its pending operation from the request (the reply must not touch it).
 *
 * Configuration: each filter owns its YAML keys (src/conf/schema.h rows), parsed by the
 * core's walker (conf.c) into blocks only the filter knows the type of:
 *   conf_keys / conf_size     its top-level keys (a filter may own several: headers and
 *                             remove_headers), parsed into a zeroed block of conf_size bytes
 *                             (conf_sect(c, id)), after the core's sections and before routes,
 *                             in table order;
 *   route_keys / route_size   the keys it adds to each route (jwt's auth, body's body),
 *                             parsed into a block per route (conf_route_keys(cr, id)), after
 *                             the route's core keys, in table order;
 *   conf_lint                 its `visor -t` warnings (conf/lint.h), after the core's, in
 *                             table order, only for a file that loads.
 * The rows release what they parse (conf_release), so a filter writes no free for them. A
 * filter reads only the core's struct conf fields and its own blocks, never another filter's.
 * Per generation (main thread): conf_init builds the filter's immutable config from its section
 * (NULL fconf = disabled everywhere); route_wants says whether a route's chain includes it;
 * route_init may set the route's core fields (struct route_ent) from the filter's keys.
 * Per-worker state: worker_init/worker_fini (caches, connections), owned by the worker;
 * worker_conf runs on the worker's thread when it takes a new generation.
 */
#ifndef VISOR_FILTER_H
#define VISOR_FILTER_H

#include <stddef.h>

#include "conf/conf.h"

struct csect;
struct lint;
struct req;
struct route_ent;
struct worker;

enum verdict { V_CONTINUE = 0, V_RESPOND, V_SUSPEND, V_ERROR };

struct filter {
	const char   *name;
	size_t        state_size;      /* per-request scratch, zeroed, from the request arena */
	int           always;          /* also runs on edge answers made before routing (400, 408...) */
	/* configuration: the filter's keys, parsed by conf.c (main thread) */
	const struct csect *conf_keys; /* top-level rows; NULL: none */
	size_t        conf_size;       /* the block they parse into */
	const struct csect *route_keys;/* rows added to each route; NULL: none */
	size_t        route_size;      /* the block they parse into, per route */
	void         (*conf_lint)(struct lint *l, const void *sect);
	/* per generation (main thread): sect is conf_sect(c, id), NULL without conf_keys */
	int          (*conf_init)(struct conf_ctx *ctx, struct conf *c, const void *sect,
	                  void **fconf);
	void         (*conf_free)(void *fconf);
	/* cr NULL: requests no route matches, edge answers; rkeys: conf_route_keys(cr, id) */
	int          (*route_wants)(const struct conf *c, const struct conf_route *cr,
	                  const void *rkeys, const void *fconf);
	void         (*route_init)(struct route_ent *re, const void *rkeys, const void *fconf);
	/* per worker */
	int          (*worker_init)(struct worker *w, void **wstate);
	void         (*worker_fini)(struct worker *w, void *wstate);
	void         (*worker_conf)(struct worker *w, void *wstate, const struct conf *c); /* new generation */
	enum verdict (*on_request)(struct req *r, const void *fconf, void *state);
	enum verdict (*on_request_body)(struct req *r, const void *fconf, void *state);
	enum verdict (*on_response)(struct req *r, const void *fconf, void *state);
	void         (*on_done)(struct req *r, const void *fconf, void *state);
	void         (*on_abort)(struct req *r, void *state);
};

/* The table, in chain order, NULL-terminated; a filter's id is its index. */
extern const struct filter *const filter_table[];
size_t filter_count(void);
/* The id of a filter of the table (its index): what conf_sect, conf_route_keys and
 * conf->fconf are indexed by. Configuration time; a request-time hook keeps it in its fconf. */
size_t filter_id(const struct filter *f);

/* A chain: the filters a request runs, with their ids. Built per route per generation. */
struct chain {
	unsigned char ids[CONF_MAX_FILTERS];
	size_t        n;
};

/* ---- what a filter may reach of the worker running a request ---------------------------
 * Filters never include core/worker.h or http/conn.h: the worker's counters, the filter's
 * own per-worker state (made by its worker_init) and, through req_worker(), the opaque
 * handle the store API takes. Worker thread. */
struct metrics;
struct event_base;
struct metrics *filter_metrics(struct req *r);
void *filter_wstate(struct req *r, size_t id);   /* id: filter_id(), kept in the fconf */
/* The worker's event loop, for a filter's own timers (worker_init gets the worker). */
struct event_base *filter_event_base(struct worker *w);

/* ---- a filter that waits for the store ---------------------------------------------------
 * ratelimit, lockout and probe put this first in their per-request state: their on_abort is
 * filter_wait_abort (the pending operation is cancelled, so its reply never touches the
 * request), and their store callback ends with filter_wait_resume. */
struct store_op;
struct filter_wait {
	struct req      *r;
	struct store_op *op;     /* the pending store operation, NULL when none */
};
void filter_wait_abort(struct req *r, void *state);
/* The reply came: the operation is over; the request goes on with verdict v. */
void filter_wait_resume(struct filter_wait *w, enum verdict v);
/* The store could not answer (Redis down): with redis.on_error closed the request gets 503
 * ("redis unavailable" in the log) and V_RESPOND; otherwise V_CONTINUE, unchecked. */
enum verdict filter_store_unavailable(struct req *r);

#endif
