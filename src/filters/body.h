/* SPDX-License-Identifier: MIT
 * body — edge checks of request bodies (body_filter). This header is its configuration: each
 * route's `body` keys (conf_route_keys(cr, filter_id(&body_filter))), for the filter and the
 * tests.
 */
#ifndef VISOR_BODY_H
#define VISOR_BODY_H

#include <stdint.h>

#include "http/filter.h"

/* A route's `body`; owned by the conf, released by its rows. */
struct body_route {
	int      has_body;             /* the route has a body: section */
	char    *body_schema;          /* path to a JSON schema, or NULL */
	int64_t  body_max_size;        /* 0: client.max_body_size */
};

extern const struct filter body_filter;

#endif
