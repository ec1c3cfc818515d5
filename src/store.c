/* SPDX-License-Identifier: MIT
 * store — placeholder lifecycle until the Redis/in-memory store lands.
 */
#include "store.h"

#include <stdlib.h>

struct mstore {
	int unused;
};

struct mstore *
mstore_new(void)
{
	return calloc(1, sizeof(struct mstore));
}

void
mstore_free(struct mstore *m)
{
	free(m);
}

int
store_worker_init(struct worker *w, struct mstore *mem)
{
	(void)w;
	(void)mem;
	return 0;
}

void
store_worker_conf(struct worker *w, const struct conf *c)
{
	(void)w;
	(void)c;
}

void
store_worker_fini(struct worker *w)
{
	(void)w;
}

int
store_ready(struct worker *const *ws, int n, const struct conf *c)
{
	(void)ws;
	(void)n;
	(void)c;
	return 1;
}
