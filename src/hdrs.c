/* SPDX-License-Identifier: MIT
 * hdrs — security headers (helmet's defaults merged key by key with `headers`) on every
 * answer, proxied or made by visor; one value each, replacing the upstream's. Headers set
 * to "" are left to the upstream. `remove_headers` are stripped from upstream answers.
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "req.h"

static enum verdict
hdrs_on_response(struct req *r, const void *fconf, void *state)
{
	const struct conf *c = r->conf;
	size_t i;

	(void)fconf;
	(void)state;
	if (!r->edge)
		for (i = 0; i < c->remove_headers.n; i++)
			hdrs_del(&r->out, c->remove_headers.v[i]);
	for (i = 0; i < c->headers.n; i++)
		hdrs_put(&r->a, &r->out, c->headers.v[i].key, c->headers.v[i].val,
		    strlen(c->headers.v[i].val));
	return V_CONTINUE;
}

const struct filter hdrs_filter = {
	.name = "hdrs",
	.always = 1,
	.on_response = hdrs_on_response,
};
