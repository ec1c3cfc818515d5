/* SPDX-License-Identifier: MIT
 * cluster — one worker's view of a Redis Cluster (redis.cluster): which primary serves each of
 * the 16384 hash slots, and one store connection (redis.c, with the store script) per primary.
 *
 *  - the topology is read with CLUSTER SLOTS from any node that is up (the seeds of
 *    redis.cluster.nodes first, then whichever primaries are known): at start, every
 *    RCL_IDLE_REFRESH_MS, and soon (at most every 100 ms) after a MOVED, a lost primary, or a
 *    caller's rcl_stale() — every 250 ms while some slot has no live primary (a failover in
 *    progress). A node that no longer serves slots is dropped (a replica named as a seed
 *    too: the seeds are connected again when no node is left to ask), a new primary gets a
 *    connection;
 *  - rcl_route() names the connection serving a key's slot (hash tags as Redis computes them),
 *    or NULL while that is unknown or down: the caller's on_error applies then;
 *  - rcl_script()/rcl_command() send a command routed by a key and follow MOVED (the slot's
 *    owner is updated at once, the topology read again) and ASK (ASKING, then the command, on
 *    the named node), at most RCL_REDIRECTS times; CLUSTERDOWN, TRYAGAIN and any other error
 *    reach the caller as they came;
 *  - the store script is sent with a first line `#!lua flags=allow-cross-slot-keys` (Redis 7):
 *    a node's batch touches keys of several of its slots (store.c passes them in ARGV).
 *
 * Ownership: a struct rcl belongs to one worker (store.c), like its connections; everything runs
 * on the worker's thread except rcl_is_up() and rcl_is_ready(). Callbacks follow redis.h's contract: at most once,
 * with the reply or NULL, never after rcl_cmd_detach(), never from inside the sending call.
 */
#ifndef VISOR_CLUSTER_H
#define VISOR_CLUSTER_H

#include <stddef.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "core/metrics.h"
#include "store/redis.h"

#define RCL_SLOTS            16384
#define RCL_REDIRECTS        3
#define RCL_IDLE_REFRESH_MS  10000

struct rcl;
struct rcl_cmd;

/* A worker's cluster client, not configured yet. NULL on OOM. */
struct rcl *rcl_new(struct event_base *base, struct metrics *m, int worker_id,
    const char *script, size_t script_len);
/* Applies a generation: with redis.cluster, (re)connects to the seeds and reads the topology
 * (connections whose settings did not change are kept); without, drops every connection. */
void rcl_configure(struct rcl *cl, const struct conf *c);
/* Fails what is in flight (callbacks run with NULL) and frees everything. NULL: no-op. */
void rcl_free(struct rcl *cl);
/* 1 when every slot has a known primary (checks are sent; those of a node that is down fail
 * alone). Any thread (racy read). */
int  rcl_is_up(const struct rcl *cl);
/* 1 when, besides, every primary's connection is up (for /readyz with on_error: closed). Any
 * thread (racy read). */
int  rcl_is_ready(const struct rcl *cl);

/* The slot of a key, as Redis computes it (CRC16 of the hash tag, or of the whole key). */
unsigned rcl_slot(const char *key, size_t len);
/* The live connection serving key's slot, or NULL (unknown, or that node is down). */
struct redis *rcl_route(struct rcl *cl, const char *key, size_t len);
/* fn(arg) after each topology read (successful or not), from the worker's loop: checks a
 * stale map sent to the wrong node may be sent again. */
void rcl_hook(struct rcl *cl, void (*fn)(void *arg), void *arg);
/* A reply showed the map is out of date (a check reached a node that does not serve its
 * key): read the topology again soon. */
void rcl_stale(struct rcl *cl);

/* The store script with nkeys keys (argv[0..nkeys), nkeys >= 1, in one slot), routed by
 * argv[0]; or any command routed by `key`. NULL when not sent (no live node for the slot, out
 * of memory): fn will not be called. Arguments are copied. */
struct rcl_cmd *rcl_script(struct rcl *cl, int nkeys, int argc, const char **argv,
    const size_t *lens, redis_fn fn, void *arg);
struct rcl_cmd *rcl_command(struct rcl *cl, const char *key, size_t klen, int argc,
    const char **argv, const size_t *lens, redis_fn fn, void *arg);
/* The caller is no longer interested: fn will not run. */
void rcl_cmd_detach(struct rcl_cmd *c);

#endif
