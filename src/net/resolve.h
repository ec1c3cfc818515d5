/* SPDX-License-Identifier: MIT
 * resolve — follows the host names of upstream.servers at run time (docs/deployment.md,
 * "Upstreams that move"): each name is asked for its A and AAAA records with libevent's evdns,
 * asked again when the answer's TTL runs out (clamped to upstream.resolve.min/max), and every
 * record is one server. A lookup that fails (timeout, NXDOMAIN, SERVFAIL, no record) keeps the
 * last good set; it is logged (rate-limited) and counted in /metrics.
 *
 * One resolver, on the main thread, whose results every worker picks up — not an evdns_base
 * per worker: the DNS traffic and the log lines do not grow with `workers`, every worker
 * switches to a new address set at the same moment (a request can never see two answers of
 * different ages on two workers), and /readyz and /metrics, which run on the main thread
 * too, read the resolver's state without a lock. A worker never waits for DNS: it keeps a
 * reference to an immutable snapshot (struct resolve_set) handed over through its mailbox.
 *
 * Startup is asynchronous (as HAProxy's `init-addr none`, Envoy's strict DNS): nothing is
 * resolved at load, so `visor -t`, start and SIGHUP never wait for DNS and never fail on a
 * name that does not resolve yet (Compose starts containers in any order). Until a name has
 * an address, /readyz answers 503 and says which name, and a request that only such a name
 * could serve gets 502.
 *
 * A name listed in /etc/hosts is taken from there first (glibc's "files dns" order; Docker's
 * extra_hosts, podman's host.containers.internal), read again every `max`.
 *
 * Nothing here waits on the network: /etc/resolv.conf is read once, when the first name is
 * configured, /etc/hosts (a local file) at each lookup of a name.
 */
#ifndef VISOR_RESOLVE_H
#define VISOR_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/util.h"

struct resolve;

/* The addresses known for every name at one moment: immutable once published, reference-
 * counted (atomic), so a worker reads it without a lock and drops it when the next arrives.
 * Created by the resolver; freed by the last resolve_set_unref. */
struct resolve_set;

/* Called on the main thread each time a new snapshot is published; `s` is borrowed (take a
 * reference to keep it). */
typedef void (*resolve_change_fn)(void *arg, struct resolve_set *s);

/* A resolver on `base` (main thread); no name, no DNS socket yet. NULL: out of memory. */
struct resolve *resolve_new(struct event_base *base, resolve_change_fn cb, void *arg);
/* Cancels nothing that could call back later: frees the evdns_base without callbacks and
 * every lookup in flight. After the main loop has ended. NULL is a no-op. */
void resolve_free(struct resolve *r);
/* Takes the names of c's upstream.servers: new names are asked at once, names no longer
 * there are forgotten (their answers, when they come, are dropped), the others keep their
 * addresses and timers. The first call with a name creates the evdns_base (nameservers from
 * c, else /etc/resolv.conf); later nameserver changes are logged and need a restart.
 * Publishes a snapshot when the list of names changed. 0, or -1 (logged). */
int  resolve_conf(struct resolve *r, const struct conf *c);
/* The current snapshot, with a new reference (never NULL once resolve_new succeeded). */
struct resolve_set *resolve_current(struct resolve *r);
/* 1 when some host name of c's upstream.servers has no address known at all, with the
 * reason in why ("upstream name app:3000 has no address yet (timeout)"); else 0. */
int  resolve_missing(const struct resolve *r, const struct conf *c, char *why, size_t n);
/* Prometheus text of the resolver's counters (docs/operations.md) appended to b. */
void resolve_metrics(const struct resolve *r, struct sbuf *b);

struct resolve_set *resolve_set_ref(struct resolve_set *s);
void resolve_set_unref(struct resolve_set *s);           /* NULL: no-op */
/* The addresses (port set) known for a server written `key` ("app:3000"), *n of them;
 * NULL with *n = 0 when none. Valid as long as the caller holds s. Any thread. */
const struct units_addr *resolve_set_find(const struct resolve_set *s, const char *key,
    size_t *n);

/* ---- the pure parts (tests/unit/test_resolve.c) ---------------------------------------- */

/* When to ask again after an answer with this TTL (seconds): ttl clamped to [min, max]. */
int64_t resolve_ttl_ms(int64_t ttl_s, int64_t min_ms, int64_t max_ms);
/* Sorts v and drops duplicates (family, address, port); returns the new count. */
size_t  resolve_canon(struct units_addr *v, size_t n);
/* Compares two canonical sets: how many of b are not in a (added) and of a not in b
 * (removed). Both 0: the same set. */
void    resolve_diff(const struct units_addr *a, size_t na, const struct units_addr *b,
    size_t nb, size_t *added, size_t *removed);
/* The addresses /etc/hosts-style file `path` gives `host` (case-insensitive, every line that
 * names it, at most max), with `port`, canonical (resolve_canon); 0: none, or no file. */
size_t  resolve_hosts(const char *path, const char *host, int port, struct units_addr *out,
    size_t max);
/* Next wait after `fails` consecutive failed lookups (>= 1): min doubling up to max. */
int64_t resolve_retry_ms(unsigned fails, int64_t min_ms, int64_t max_ms);

#endif
