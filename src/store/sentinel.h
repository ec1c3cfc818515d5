/* SPDX-License-Identifier: MIT
 * sentinel — one worker's view of a Redis Sentinel set (redis.sentinel), for the worker's
 * Redis client (redis.c), on the worker's event_base, never a blocking call.
 *
 *  - sentinel_ask() asks the sentinels, in the configured order, `SENTINEL
 *    get-master-addr-by-name <master>`; a sentinel that cannot be reached, times out (the
 *    redis timeout, at least 250 ms) or does not know the master passes the question to the
 *    next one; the question connection stays on the sentinel that last answered. The answer
 *    (or, after every sentinel failed in one round, host NULL) comes through fn, never from
 *    inside sentinel_ask;
 *  - one more connection per worker is SUBSCRIBEd to +switch-master on one sentinel (the next
 *    one, 200 ms later, when it fails): a message naming our master is passed on at once
 *    (switched = 1), so every worker follows a failover as soon as its sentinel announces it.
 *    Per worker rather than per process: everything stays on the worker's loop, with no
 *    cross-thread hand-off, at the cost of one idle connection per worker on a sentinel.
 *
 * Ownership: the worker's struct redis owns its struct sentinel; worker thread only. fn never
 * runs after sentinel_free().
 */
#ifndef VISOR_SENTINEL_H
#define VISOR_SENTINEL_H

#include <event2/event.h>

#include "conf/conf.h"
#include "core/metrics.h"

struct sentinel;

/* host:port is the primary (host NULL: no sentinel could say); switched: from +switch-master. */
typedef void (*sentinel_fn)(void *arg, const char *host, int port, int switched);

/* Connects to c's sentinels; NULL on OOM. */
struct sentinel *sentinel_new(struct event_base *base, struct metrics *m, int worker_id,
    const struct conf *c, sentinel_fn fn, void *arg);
/* 1 when c names the same master, sentinels and sentinel credentials. */
int  sentinel_same(const struct sentinel *s, const struct conf *c);
/* A new generation with the same sentinels: later connections take its TLS context. */
void sentinel_conf(struct sentinel *s, const struct conf *c);
/* Asks where the primary is (no-op while a question is out). */
void sentinel_ask(struct sentinel *s);
/* NULL: no-op. */
void sentinel_free(struct sentinel *s);

#endif
