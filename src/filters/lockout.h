/* SPDX-License-Identifier: MIT
 * lockout — per-account login backoff (lockout_filter). This header is its configuration:
 * the parsed `lockout` section (conf_sect(c, filter_id(&lockout_filter))), for the filter
 * and the tests.
 */
#ifndef VISOR_LOCKOUT_H
#define VISOR_LOCKOUT_H

#include <stdint.h>

#include "http/filter.h"

/* The `lockout` section; owned by the conf, released by its rows. */
struct lockout_sect {
	int     enabled;               /* the section is present */
	char   *path;
	char   *field;
	int64_t after;
	int64_t base_ms;
	int64_t max_ms;
};

extern const struct filter lockout_filter;

#endif
