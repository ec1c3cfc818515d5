/* SPDX-License-Identifier: MIT
 * metrics — per-worker counters, summed on scrape. Each worker writes only its own struct
 * (plain stores, relaxed atomics), the admin thread reads them all: no lock, no contention,
 * and a scrape that sees a counter one request late is fine.
 */
#ifndef VISOR_METRICS_H
#define VISOR_METRICS_H

#include <stdint.h>

#include "core/util.h"

#define METRICS_UP_BUCKETS 12
#define METRICS_REASONS    24

struct metrics {
	uint64_t conns_total;
	int64_t  conns_active;
	uint64_t tls_handshake_failures;
	uint64_t proxy_refused;                 /* listen.proxy_protocol peers without a header */
	uint64_t requests_class[6];             /* [1]=1xx ... [5]=5xx */
	uint64_t up_bucket[METRICS_UP_BUCKETS]; /* cumulative at scrape time, not here */
	uint64_t up_count;
	uint64_t up_sum_us;
	uint64_t up_connect_failures;
	uint64_t jwt_refused[METRICS_REASONS];  /* by enum jwt_err */
	uint64_t rate_limited;
	uint64_t lockouts;
	uint64_t scrubbed;
	uint64_t probes;
	uint64_t redis_errors;
	uint64_t redis_failovers;               /* primary changes followed (redis.sentinel) */
	uint64_t redis_redirects;               /* MOVED/ASK followed (redis.cluster) */
	uint64_t redis_refreshes;               /* topologies read (redis.cluster) */
	uint64_t h2_conns;                      /* connections that negotiated h2 */
	uint64_t h2_streams;                    /* streams that carried a request */
	uint64_t h2_refused[8];                 /* by enum h2_refusal (http/h2.h) */
};

/* Upper bounds of the upstream latency buckets, in seconds (the last is +Inf). */
extern const double metrics_up_le[METRICS_UP_BUCKETS];

void metrics_count_request(struct metrics *m, int status);
void metrics_up_observe(struct metrics *m, int64_t us);
#define METRIC_INC(m, field) __atomic_add_fetch(&(m)->field, 1, __ATOMIC_RELAXED)

/* Renders the Prometheus text of the sum of `n` workers' metrics into b. */
struct worker;
void metrics_render(struct sbuf *b, struct worker *const *ws, int n);

#endif
