/* SPDX-License-Identifier: MIT
 * runtime — builds a generation's runtime objects (TLS contexts, filter configs, route
 * chains) from its typed fields, and frees them. Placeholder until the core lands. */
#include "conf.h"

int
conf_build(struct conf_ctx *ctx, struct conf *c)
{
	(void)ctx; (void)c;
	return 0;
}

void
conf_release_runtime(struct conf *c)
{
	(void)c;
}
