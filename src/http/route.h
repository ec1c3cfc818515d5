/* SPDX-License-Identifier: MIT
 * route — path normalisation and the route table. Routes are matched on the normalised
 * path (unreserved %XX decoded, "//" merged, dot-segments resolved, never above "/"), by
 * prefix, first match wins, ASCII case-insensitively: Express routes case-insensitively by
 * default, so /API/x must not slip past a rule written for /api/. The normalised path is
 * also what visor forwards, so the upstream acts on exactly the path visor checked.
 */
#ifndef VISOR_ROUTE_H
#define VISOR_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "http/filter.h"

struct route_ent {
	const struct conf_route *cr;
	size_t                   idx;
	struct chain             chain;
	/* core per-route settings a filter sets at build time (filter->route_init) */
	uint64_t                 body_max;  /* body limit below client.max_body_size; 0: none */
};

struct route_rt {
	struct route_ent *v;
	size_t            n;
	struct chain      plain;     /* plain listener: redirect + headers */
	struct chain      base;      /* edge answers before routing (400, 408, 431...) */
	struct chain      noroute;   /* requests no route matches (answered 404) */
};

/* Normalises the path part of a request-target into out (room for len + 1 bytes).
 * Returns the new length, or -1 when it is malformed (bad %XX, not starting with '/') or
 * climbs above the root ("/../x"). */
long route_normalize(const char *in, size_t len, char *out);

/* First route whose prefix and method match. HEAD also matches routes listing GET. */
const struct route_ent *route_match(const struct route_rt *rt, const char *path, size_t len,
    const char *method);

/* Builds c->route_rt: the chains from the filter table (route_wants) and each route's core
 * settings (route_init), filters in table order. 0 or -1. */
int  route_build(struct conf_ctx *ctx, struct conf *c);
void route_rt_free(struct route_rt *rt);

#endif
