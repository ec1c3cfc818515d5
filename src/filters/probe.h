/* SPDX-License-Identifier: MIT
 * probe — scanner probes and bans (probe_filter). This header is its configuration: the
 * parsed `probes` section (conf_sect(c, filter_id(&probe_filter))), for the filter and the
 * tests.
 */
#ifndef VISOR_PROBE_H
#define VISOR_PROBE_H

#include <stdint.h>

#include "conf/conf.h"
#include "http/filter.h"

/* The `probes` section; owned by the conf, released by its rows. */
struct probe_sect {
	int              enabled;       /* paths is not empty */
	struct conf_strs paths;
	int64_t          ban_after;
	int64_t          ban_for_ms;
};

extern const struct filter probe_filter;

#endif
