/* SPDX-License-Identifier: MIT
 * admin — the plain-HTTP admin listener, on the main thread: GET /healthz (the process
 * serves), /readyz (every upstream host name has an address, and an upstream server accepts
 * a TCP connection right now), /metrics
 * (Prometheus text summed over the workers). One request per connection, 4 KiB heads,
 * 5 s to send it: it is an operator's port, not a public one.
 */
#ifndef VISOR_ADMIN_H
#define VISOR_ADMIN_H

#include <event2/event.h>

#include "conf/conf.h"

struct worker;
struct admin;

struct admin *admin_new(struct event_base *base, const struct conf *c, struct worker *const *ws,
    int nw);
void admin_set_conf(struct admin *a, const struct conf *c);  /* borrowed; main keeps a ref */
/* The upstream names' resolver (borrowed): /readyz asks it, /metrics shows its counters. */
struct resolve;
void admin_set_resolve(struct admin *a, struct resolve *r);
/* The process is shutting down: /readyz answers 503 from now on, so load balancers take
 * visor out while it still serves (shutdown_delay). /healthz stays 200. */
void admin_set_draining(struct admin *a);
void admin_free(struct admin *a);

/* A check /readyz also requires (Redis with on_error: closed); registered by that module. */
typedef int (*admin_ready_fn)(void *arg);   /* 1 ready, 0 not */

#endif
