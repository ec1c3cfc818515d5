/* SPDX-License-Identifier: MIT
 * store — where rate-limit counters, lockouts, probe bans and revocations live: Redis (one
 * async hiredis connection per worker) or, without a redis section (or while Redis is away
 * with on_error: local), the process-wide in-memory store shared by the workers.
 *
 * Lifecycle hooks called by the core (main.c, worker.c, admin.c); the operations themselves
 * are declared below them by the module that implements them.
 */
#ifndef VISOR_STORE_H
#define VISOR_STORE_H

#include "conf.h"

struct worker;
struct mstore;

/* Process-wide in-memory store: created by main before the workers, freed after them. */
struct mstore *mstore_new(void);
void mstore_free(struct mstore *m);

/* Per worker, on its own thread's base (called from worker_new / apply_conf / worker_free). */
int  store_worker_init(struct worker *w, struct mstore *mem);
void store_worker_conf(struct worker *w, const struct conf *c);
void store_worker_fini(struct worker *w);

/* For /readyz with on_error: closed: 1 when every worker's Redis connection is up (or no
 * Redis is configured), 0 otherwise. Main thread; reads the workers' flags racily. */
int  store_ready(struct worker *const *ws, int n, const struct conf *c);

#endif
