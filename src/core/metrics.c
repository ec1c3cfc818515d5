/* SPDX-License-Identifier: MIT
 * metrics — Prometheus text from the sum of the workers' counters.
 */
#include "core/metrics.h"

#include <stdio.h>

#include "lib/jwt_core.h"
#include "http/h2.h"
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

/* The HELP and TYPE lines of metric visor_<name>. */
static void
head(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP visor_%s %s\n# TYPE visor_%s %s\n", name, help, name, type);
}

/* A counter with one value. */
static void
one(struct sbuf *b, const char *name, const char *help, uint64_t v)
{
	head(b, name, "counter", help);
	sbuf_printf(b, "visor_%s %llu\n", name, (unsigned long long)v);
}

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
		t.proxy_refused += LD(m->proxy_refused);
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
		t.redis_failovers += LD(m->redis_failovers);
		t.redis_redirects += LD(m->redis_redirects);
		t.redis_refreshes += LD(m->redis_refreshes);
		t.h2_conns += LD(m->h2_conns);
		t.h2_streams += LD(m->h2_streams);
		for (k = 0; k < H2R_COUNT; k++)
			t.h2_refused[k] += LD(m->h2_refused[k]);
	}
	head(b, "connections_active", "gauge", "Client connections open now.");
	sbuf_printf(b, "visor_connections_active %lld\n", (long long)t.conns_active);
	one(b, "connections_total", "Client connections accepted.", t.conns_total);
	one(b, "tls_handshake_failures_total", "Failed TLS handshakes.", t.tls_handshake_failures);
	one(b, "proxy_protocol_refused_total", "Connections from a listen.proxy_protocol peer "
	    "closed without a valid PROXY header.", t.proxy_refused);
	head(b, "requests_total", "counter", "Answers sent, by status class.");
	for (k = 1; k <= 5; k++)
		sbuf_printf(b, "visor_requests_total{class=\"%dxx\"} %llu\n", k,
		    (unsigned long long)t.requests_class[k]);
	head(b, "upstream_response_seconds", "histogram", "Time to the upstream's response head.");
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
	one(b, "upstream_connect_failures_total", "Upstream connects refused or timed out.",
	    t.up_connect_failures);
	head(b, "jwt_refused_total", "counter", "Tokens refused, by reason.");
	for (k = 1; k < JWT_E_COUNT && k < METRICS_REASONS; k++)
		sbuf_printf(b, "visor_jwt_refused_total{reason=\"%s\"} %llu\n",
		    jwt_err_name((enum jwt_err)k), (unsigned long long)t.jwt_refused[k]);
	one(b, "rate_limited_total", "Requests refused by a rate limit.", t.rate_limited);
	one(b, "lockouts_total", "Requests refused by the login lockout.", t.lockouts);
	one(b, "scrubbed_total", "Upstream error bodies replaced.", t.scrubbed);
	one(b, "probes_total", "Scanner probes answered.", t.probes);
	one(b, "redis_errors_total", "Redis commands that failed or timed out.", t.redis_errors);
	one(b, "redis_failovers_total", "Moves to a new Redis primary named by the sentinels, "
	    "counted by each worker (a failover counts once per worker).", t.redis_failovers);
	one(b, "redis_cluster_redirects_total", "MOVED and ASK replies followed to another "
	    "Redis Cluster node.", t.redis_redirects);
	one(b, "redis_cluster_refreshes_total", "Redis Cluster topologies read (CLUSTER SLOTS), "
	    "counted by each worker.", t.redis_refreshes);
	one(b, "http2_connections_total", "Client connections that negotiated HTTP/2.",
	    t.h2_conns);
	one(b, "http2_streams_total", "HTTP/2 streams that carried a request.", t.h2_streams);
	head(b, "http2_refused_total", "counter",
	    "HTTP/2 streams reset or refused and connections sent GOAWAY for an error, by reason.");
	for (k = 0; k < H2R_COUNT; k++)
		sbuf_printf(b, "visor_http2_refused_total{reason=\"%s\"} %llu\n",
		    h2_refusal_name[k], (unsigned long long)t.h2_refused[k]);
	head(b, "log_dropped_total", "counter",
	    "Log lines dropped because stdout or stderr was not read fast enough.");
	sbuf_printf(b, "visor_log_dropped_total{stream=\"stdout\"} %llu\n",
	    (unsigned long long)log_dropped(1));
	sbuf_printf(b, "visor_log_dropped_total{stream=\"stderr\"} %llu\n",
	    (unsigned long long)log_dropped(2));
}
