/* SPDX-License-Identifier: MIT
 * headers — the security headers filter (headers_filter): helmet's defaults merged with
 * `headers` on every answer, `remove_headers` stripped from upstream answers. This header is
 * its configuration: the parsed keys (conf_sect(c, filter_id(&headers_filter))), for the filter
 * and the tests.
 */
#ifndef VISOR_HEADERS_H
#define VISOR_HEADERS_H

#include "conf/conf.h"
#include "http/filter.h"

/* The `headers` and `remove_headers` keys; owned by the conf, released by their rows. */
struct headers_sect {
	struct conf_kvs  headers;       /* merged with the defaults; entries with "" removed */
	struct conf_strs headers_unset; /* names configured as "" (left to the upstream) */
	struct conf_strs remove_headers;
};

extern const struct filter headers_filter;

#endif
