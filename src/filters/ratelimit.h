/* SPDX-License-Identifier: MIT
 * ratelimit — rate limits and the revocation check: three rows of the filter table
 * (ratelimit_client_filter before cors, ratelimit_filter after it, ratelimit_user_filter after
 * jwt; ratelimit.c says why). ratelimit_filter owns the keys. This header is their
 * configuration: the parsed `rate_limits` / `rate_limit_headers` keys (conf_sect(c,
 * filter_id(&ratelimit_filter))) and each route's `rate_limits` (conf_route_keys(cr, id)), for the
 * filter and the tests.
 */
#ifndef VISOR_RATELIMIT_H
#define VISOR_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "http/filter.h"

enum rl_keykind   { RLK_IP = 0, RLK_USER, RLK_IP_USER, RLK_HEADER };
enum rl_count     { RLC_ALL = 0, RLC_FAILURES };
enum rl_hdrfmt    { RLH_DRAFT6 = 0, RLH_DRAFT7, RLH_DRAFT8, RLH_LEGACY, RLH_OFF };

/* One named policy of `rate_limits`. */
struct rl_policy {
	char            *name;
	int64_t          limit;       /* >= 1 */
	int64_t          window_ms;   /* >= 1000 */
	enum rl_keykind  key;
	char            *header;      /* key: header:<Name> */
	enum rl_count    count;
};

/* `rate_limits` and `rate_limit_headers`; owned by the conf, released by their rows. */
struct rl_sect {
	struct {
		struct rl_policy *v;
		size_t            n;
	} rate_limits;
	enum rl_hdrfmt rate_limit_headers;
};

/* A route's `rate_limits`. */
struct rl_route {
	size_t *rate_limits;          /* indexes into rate_limits.v */
	size_t  n_rate_limits;
};

extern const struct filter ratelimit_filter;

#endif
