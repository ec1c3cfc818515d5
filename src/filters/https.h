/* SPDX-License-Identifier: MIT
 * https — the first filter (https_filter): the plain listener's 301 to https and /healthz, and
 * Strict-Transport-Security on HTTPS answers. This header is its configuration: the parsed
 * `hsts` section (conf_sect(c, filter_id(&https_filter))), for the filter and the tests.
 */
#ifndef VISOR_HTTPS_H
#define VISOR_HTTPS_H

#include <stdint.h>

#include "http/filter.h"

/* The `hsts` section; owned by the conf, released by its rows. */
struct hsts_sect {
	int64_t max_age;             /* seconds */
	int     include_subdomains;
	int     preload;
	int     off;                 /* `hsts: off`: no Strict-Transport-Security header */
};

extern const struct filter https_filter;

#endif
