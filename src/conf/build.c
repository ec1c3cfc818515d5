/* SPDX-License-Identifier: MIT
 * build — turns a parsed generation into what workers use: TLS contexts, each filter's
 * immutable config (filter->conf_init, from its own parsed section), and the route chains;
 * then the lint. Errors go to the same ctx as parse errors, with positions looked up in the
 * kept YAML tree.
 */
#include "conf/conf.h"
#include "http/filter.h"
#include "conf/lint.h"
#include "http/route.h"
#include "net/tls.h"

int
conf_build(struct conf_ctx *ctx, struct conf *c)
{
	size_t i;
	int rc = 0;

	if (tls_build(ctx, c) < 0)
		rc = -1;
	for (i = 0; filter_table[i]; i++) {
		const struct filter *f = filter_table[i];
		if (f->conf_init && f->conf_init(ctx, c, c->sect[i], &c->fconf[i]) < 0)
			rc = -1;
	}
	if (rc == 0 && route_build(ctx, c) < 0)
		rc = -1;
	if (rc < 0 && ctx->nerr == 0)
		conf_err(ctx, NULL, "cannot build the runtime configuration");
	lint_check(ctx, c);
	return rc;
}

void
conf_release_runtime(struct conf *c)
{
	size_t i;

	route_rt_free(c->route_rt);
	c->route_rt = NULL;
	for (i = 0; filter_table[i]; i++) {
		if (c->fconf[i] && filter_table[i]->conf_free)
			filter_table[i]->conf_free(c->fconf[i]);
		c->fconf[i] = NULL;
	}
	tls_rt_free(c->tls_rt);
	c->tls_rt = NULL;
}
