/* SPDX-License-Identifier: MIT
 * metrics — Prometheus text from the sum of the workers' counters.
 */
#include "core/metrics.h"

#include <stdio.h>

#include "lib/jwt_core.h"
#include "core/log.h"
#include "core/worker.h"

const double metrics_up_le[METRICS_UP_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 1e300
};

void
metrics_count_request(struct metrics *m, int status)
{
	int cls = status / 100;

	if (cls < 1 || cls > 5)
		cls = 5;
	__atomic_add_fetch(&m->requests_class[cls], 1, __ATOMIC_RELAXED);
}

void
metrics_up_observe(struct metrics *m, int64_t us)
{
	double s = (double)us / 1e6;
	int i;

	for (i = 0; i < METRICS_UP_BUCKETS - 1 && s > metrics_up_le[i]; i++)
		;
	__atomic_add_fetch(&m->up_bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->up_count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->up_sum_us, (uint64_t)(us > 0 ? us : 0), __ATOMIC_RELAXED);
}

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void
metrics_render(struct sbuf *b, struct worker *const *ws, int n)
{
	struct metrics t = { 0 };
	uint64_t cum = 0;
	int i, k;

	for (i = 0; i < n; i++) {
		const struct metrics *m = &ws[i]->m;
		t.conns_total += LD(m->conns_total);
		t.conns_active += LD(m->conns_active);
		t.tls_handshake_failures += LD(m->tls_handshake_failures);
		for (k = 0; k < 6; k++)
			t.requests_class[k] += LD(m->requests_class[k]);
		for (k = 0; k < METRICS_UP_BUCKETS; k++)
			t.up_bucket[k] += LD(m->up_bucket[k]);
		t.up_count += LD(m->up_count);
		t.up_sum_us += LD(m->up_sum_us);
		t.up_connect_failures += LD(m->up_connect_failures);
		for (k = 0; k < METRICS_REASONS; k++)
			t.jwt_refused[k] += LD(m->jwt_refused[k]);
		t.rate_limited += LD(m->rate_limited);
		t.lockouts += LD(m->lockouts);
		t.scrubbed += LD(m->scrubbed);
		t.probes += LD(m->probes);
		t.redis_errors += LD(m->redis_errors);
	}
	sbuf_adds(b, "# HELP visor_connections_active Client connections open now.\n"
	    "# TYPE visor_connections_active gauge\n");
	sbuf_printf(b, "visor_connections_active %lld\n", (long long)t.conns_active);
	sbuf_adds(b, "# HELP visor_connections_total Client connections accepted.\n"
	    "# TYPE visor_connections_total counter\n");
	sbuf_printf(b, "visor_connections_total %llu\n", (unsigned long long)t.conns_total);
	sbuf_adds(b, "# HELP visor_tls_handshake_failures_total Failed TLS handshakes.\n"
	    "# TYPE visor_tls_handshake_failures_total counter\n");
	sbuf_printf(b, "visor_tls_handshake_failures_total %llu\n",
	    (unsigned long long)t.tls_handshake_failures);
	sbuf_adds(b, "# HELP visor_requests_total Answers sent, by status class.\n"
	    "# TYPE visor_requests_total counter\n");
	for (k = 1; k <= 5; k++)
		sbuf_printf(b, "visor_requests_total{class=\"%dxx\"} %llu\n", k,
		    (unsigned long long)t.requests_class[k]);
	sbuf_adds(b, "# HELP visor_upstream_response_seconds Time to the upstream's response head.\n"
	    "# TYPE visor_upstream_response_seconds histogram\n");
	for (k = 0; k < METRICS_UP_BUCKETS; k++) {
		cum += t.up_bucket[k];
		if (k == METRICS_UP_BUCKETS - 1)
			sbuf_printf(b, "visor_upstream_response_seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
		else
			sbuf_printf(b, "visor_upstream_response_seconds_bucket{le=\"%g\"} %llu\n",
			    metrics_up_le[k], (unsigned long long)cum);
	}
	sbuf_printf(b, "visor_upstream_response_seconds_sum %.6f\n", (double)t.up_sum_us / 1e6);
	sbuf_printf(b, "visor_upstream_response_seconds_count %llu\n", (unsigned long long)t.up_count);
	sbuf_adds(b, "# HELP visor_upstream_connect_failures_total Upstream connects refused or timed out.\n"
	    "# TYPE visor_upstream_connect_failures_total counter\n");
	sbuf_printf(b, "visor_upstream_connect_failures_total %llu\n",
	    (unsigned long long)t.up_connect_failures);
	sbuf_adds(b, "# HELP visor_jwt_refused_total Tokens refused, by reason.\n"
	    "# TYPE visor_jwt_refused_total counter\n");
	for (k = 1; k < JWT_E_COUNT && k < METRICS_REASONS; k++)
		sbuf_printf(b, "visor_jwt_refused_total{reason=\"%s\"} %llu\n",
		    jwt_err_name((enum jwt_err)k), (unsigned long long)t.jwt_refused[k]);
	sbuf_adds(b, "# HELP visor_rate_limited_total Requests refused by a rate limit.\n"
	    "# TYPE visor_rate_limited_total counter\n");
	sbuf_printf(b, "visor_rate_limited_total %llu\n", (unsigned long long)t.rate_limited);
	sbuf_adds(b, "# HELP visor_lockouts_total Requests refused by the login lockout.\n"
	    "# TYPE visor_lockouts_total counter\n");
	sbuf_printf(b, "visor_lockouts_total %llu\n", (unsigned long long)t.lockouts);
	sbuf_adds(b, "# HELP visor_scrubbed_total Upstream error bodies replaced.\n"
	    "# TYPE visor_scrubbed_total counter\n");
	sbuf_printf(b, "visor_scrubbed_total %llu\n", (unsigned long long)t.scrubbed);
	sbuf_adds(b, "# HELP visor_probes_total Scanner probes answered.\n"
	    "# TYPE visor_probes_total counter\n");
	sbuf_printf(b, "visor_probes_total %llu\n", (unsigned long long)t.probes);
	sbuf_adds(b, "# HELP visor_redis_errors_total Redis commands that failed or timed out.\n"
	    "# TYPE visor_redis_errors_total counter\n");
	sbuf_printf(b, "visor_redis_errors_total %llu\n", (unsigned long long)t.redis_errors);
	sbuf_adds(b, "# HELP visor_log_dropped_total Log lines dropped because stdout or stderr "
	    "was not read fast enough.\n# TYPE visor_log_dropped_total counter\n");
	sbuf_printf(b, "visor_log_dropped_total{stream=\"stdout\"} %llu\n",
	    (unsigned long long)log_dropped(1));
	sbuf_printf(b, "visor_log_dropped_total{stream=\"stderr\"} %llu\n",
	    (unsigned long long)log_dropped(2));
}
