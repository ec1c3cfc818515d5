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
 * Per-generation config: conf_init builds the filter's immutable config from the typed conf
 * (NULL fconf = disabled everywhere); route_wants says whether a route's chain includes it;
 * route_init may set the route's core fields (struct route_ent) from the filter's keys. A
 * filter reads the core's settings and its own, never another filter's.
 * Per-worker state: worker_init/worker_fini (caches, connections), owned by the worker;
 * worker_conf runs on the worker's thread when it takes a new generation.
 */
#ifndef VISOR_FILTER_H
#define VISOR_FILTER_H

#include <stddef.h>

#include "conf/conf.h"

struct req;
struct route_ent;
struct worker;

enum verdict { V_CONTINUE = 0, V_RESPOND, V_SUSPEND, V_ERROR };

struct filter {
	const char   *name;
	size_t        state_size;      /* per-request scratch, zeroed, from the request arena */
	int           always;          /* also runs on edge answers made before routing (400, 408...) */
	int          (*conf_init)(struct conf_ctx *ctx, struct conf *c, void **fconf);
	void         (*conf_free)(void *fconf);
	int          (*route_wants)(const struct conf *c, const struct conf_route *rt, const void *fconf);
	void         (*route_init)(struct route_ent *re, const struct conf_route *rt, const void *fconf);
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

/* A chain: the filters a request runs, with their ids. Built per route per generation. */
struct chain {
	unsigned char ids[CONF_MAX_FILTERS];
	size_t        n;
};

#endif
