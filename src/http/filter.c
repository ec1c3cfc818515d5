/* SPDX-License-Identifier: MIT
 * filter — the table of policies, in chain order. The order is the design (see
 * docs/architecture.md): redirect/HSTS and headers first so every answer gets them, then
 * scrubbing, probes; the limits keyed on the client alone (counted before anything may refuse
 * the request, so token guessing is limited too), CORS (a preflight is answered before any
 * token is asked for; a disallowed Origin still counted), the answer to those limits (after
 * CORS, so a browser can read its 429), JWT, the per-user limits and the revocation check
 * (they need the verified token; one Redis round trip), lockout and body checks last, as
 * they need the body. docs/rate-limits.md, "Order". It is also the order in which their
 * configuration keys are parsed, linted and documented (after the core's sections, before
 * routes): jwt and rate_limits before routes is what the routes' defaults need.
 */
#include "http/filter.h"

#include <stdlib.h>

#include "core/worker.h"
#include "http/req.h"
#include "store/store.h"

extern const struct filter https_filter, headers_filter, scrub_filter, probe_filter,
    ratelimit_client_filter, cors_filter, ratelimit_filter, jwt_filter, ratelimit_user_filter,
    lockout_filter, body_filter;

const struct filter *const filter_table[] = {
	&https_filter,
	&headers_filter,
	&scrub_filter,
	&probe_filter,
	&ratelimit_client_filter,
	&cors_filter,
	&ratelimit_filter,
	&jwt_filter,
	&ratelimit_user_filter,
	&lockout_filter,
	&body_filter,
	NULL,
};

size_t
filter_count(void)
{
	return sizeof(filter_table) / sizeof(filter_table[0]) - 1;
}

size_t
filter_id(const struct filter *f)
{
	size_t i;

	for (i = 0; filter_table[i] != NULL; i++)
		if (filter_table[i] == f)
			return i;
	abort();                /* a filter outside the table: a bug, never a config error */
}

struct metrics *
filter_metrics(struct req *r)
{
	return &req_worker(r)->m;
}

void *
filter_wstate(struct req *r, size_t id)
{
	return req_worker(r)->fstate[id];
}

struct event_base *
filter_event_base(struct worker *w)
{
	return w->base;
}

void
filter_wait_abort(struct req *r, void *state)
{
	struct filter_wait *w = state;

	(void)r;
	store_cancel(w->op);
	w->op = NULL;
}

void
filter_wait_resume(struct filter_wait *w, enum verdict v)
{
	w->op = NULL;
	req_resume(w->r, v);
}

enum verdict
filter_store_unavailable(struct req *r)
{
	if (r->conf->redis.on_error != REDIS_CLOSED)
		return V_CONTINUE;
	req_respond(r, 503, NULL);
	r->log_reason = "redis unavailable";
	return V_RESPOND;
}
