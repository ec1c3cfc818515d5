/* SPDX-License-Identifier: MIT
 * lint — the security lint of `visor -t`: the framework (positions, quoting, the helpers of
 * lint.h) and the core's rules; one function per rule, each reading the typed configuration
 * and pointing its warning at the YAML node a reviewer would circle. The rules are the
 * mistakes Node.js teams keep shipping (docs/lint.md has the list, with the reasons):
 *
 *   listen    no http listener (no redirect to HTTPS)
 *   tls       min_version TLSv1 / TLSv1.1
 *   upstream  tls.verify: false
 *   client    trusted_proxies holding a /0
 *   redis     no password on a non-loopback host; a password written inline; on_error: open;
 *             rediss:// with insecure_skip_verify
 *   routes    routes that can never match; routes: []
 *
 * and, through each filter's conf_lint, in table order: hsts (https.c), headers' CSP
 * (headers.c), errors (scrub.c), cors (cors.c), jwt (jwt.c), login routes without a rate
 * limit (ratelimit.c).
 *
 * Must never: fire on the reference configuration (conf/visor.yaml); quote a
 * secret; touch the configuration. A rule that cannot be decided without guessing is left out.
 */
#include "conf/lint.h"

#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "core/util.h"
#include "http/filter.h"

/* ---- helpers ------------------------------------------------------------------------------ */

const char *
lint_quote(struct lint *l, const char *s)
{
	return str_printable(l->q[l->qi++ & 3], sizeof(l->q[0]), s);
}

const struct ynode *
lint_node(const struct lint *l, const char *fmt, ...)
{
	char path[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return ynode_path(l->c->tree, path);
}

const struct ynode *
lint_first(const struct ynode *a, const struct ynode *b)
{
	return a != NULL ? a : b;
}

const struct ynode *
lint_item(const struct ynode *list, size_t i)
{
	if (list != NULL && list->type == YN_SEQ && i < list->n)
		return list->items[i];
	return list;
}

const struct ynode *
lint_section(const struct lint *l, const char *name)
{
	return lint_first(ynode_key(l->c->tree, name), l->c->tree);
}

int
lint_loopback_host(const char *h, size_t n)
{
	size_t i, dots = 0;

	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	if (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0)
		return 1;
	if ((n == 5 && memcmp(h, "[::1]", 5) == 0) || (n == 3 && memcmp(h, "::1", 3) == 0))
		return 1;
	if (n < 9 || memcmp(h, "127.", 4) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.')
			dots++;
		else if (h[i] < '0' || h[i] > '9')
			return 0;
	}
	return dots == 3;
}

/* ---- tls, trusted proxies, upstream, listen ---------------------------------------------- */

static void
lint_tls(struct lint *l)
{
	const struct ynode *at;
	const char *v;

	/* Explicit: the enum puts 1.0 and 1.1 after 1.3, so order means nothing. */
	if (l->c->tls.min_version != TLS_MIN_10 && l->c->tls.min_version != TLS_MIN_11)
		return;
	at = lint_node(l, "tls.min_version");
	v = at != NULL && at->type == YN_SCALAR ? at->str :
	    l->c->tls.min_version == TLS_MIN_10 ? "TLSv1" : "TLSv1.1";
	conf_warn(l->ctx, lint_first(at, lint_section(l, "tls")),
	    "tls.min_version is %s; TLS 1.0 and 1.1 "
	    "are deprecated (RFC 8996) and lack modern cipher suites — set tls.min_version: "
	    "TLSv1.2", lint_quote(l, v));
}

/* Warns at each /0 entry of the CIDR list `key` (in `section`): it matches every address,
 * so `who` (what anyone may then do) can pick the client address visor believes. */
static void
lint_open_cidrs(struct lint *l, const char *section, const char *key,
    const struct units_cidr *v, size_t n, const char *who)
{
	const struct ynode *list = lint_node(l, "%s", key), *at;
	const char *text;
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].bits != 0)
			continue;
		at = lint_item(list, i);
		text = at != NULL && at->type == YN_SCALAR ? at->str :
		    v[i].family == AF_INET6 ? "::/0" : "0.0.0.0/0";
		conf_warn(l->ctx, lint_first(at, lint_section(l, section)),
		    "%s[%zu] is %s: %s and pick the IP that rate limits, bans and logs see — list "
		    "only your load balancers' addresses", key, i, lint_quote(l, text), who);
	}
}

static void
lint_proxies(struct lint *l)
{
	const struct conf *c = l->c;

	lint_open_cidrs(l, "client", "client.trusted_proxies", c->client.trusted_proxies,
	    c->client.n_trusted_proxies,
	    "every peer is trusted, so any client can write X-Forwarded-For");
	lint_open_cidrs(l, "listen", "listen.proxy_protocol", c->listen.proxy_protocol,
	    c->listen.n_proxy_protocol,
	    "any client that reaches visor directly can send a PROXY header");
}

static void
lint_upstream(struct lint *l)
{
	if (l->c->upstream.tls_enabled && !l->c->upstream.tls_verify)
		conf_warn(l->ctx, lint_first(lint_node(l, "upstream.tls.verify"), lint_section(l,
		    "upstream")),
		    "upstream.tls.verify is false: anyone on the network path can impersonate the "
		    "upstream and read every request, tokens included — set verify: true (with "
		    "upstream.tls.ca for a private CA)");
}

static void
lint_listen(struct lint *l)
{
	if (!l->c->listen.has_http)
		conf_warn(l->ctx, lint_section(l, "listen"),
		    "no listen.http: clients that start on "
		    "http:// are never redirected to HTTPS — add listen.http (e.g. 0.0.0.0:8080; it "
		    "answers 301 to https)");
}

/* ---- routes ----------------------------------------------------------------------------- */

/* Every request route b matches, route a (earlier) matches too: a's path is a prefix of b's
 * (ASCII case-insensitive, as route_match compares) and a's methods cover b's. */
static int
covers(const struct conf_route *a, const struct conf_route *b)
{
	size_t al = strlen(a->path), i, j;

	if (strlen(b->path) < al || strncasecmp(a->path, b->path, al) != 0)
		return 0;
	if (a->methods.n == 0)
		return 1;
	if (b->methods.n == 0)
		return 0;
	for (i = 0; i < b->methods.n; i++) {
		const char *m = b->methods.v[i];
		for (j = 0; j < a->methods.n; j++)
			if (strcmp(a->methods.v[j], m) == 0 ||
			    (strcmp(m, "HEAD") == 0 && strcmp(a->methods.v[j], "GET") == 0))
				break;
		if (j == a->methods.n)
			return 0;
	}
	return 1;
}

int
lint_route_shadowed(const struct conf *c, size_t i, size_t *by)
{
	size_t j;

	for (j = 0; j < i && j < c->routes.n; j++)
		if (covers(&c->routes.v[j], &c->routes.v[i])) {
			*by = j;
			return 1;
		}
	return 0;
}

static void
lint_routes(struct lint *l)
{
	const struct conf *c = l->c;
	const struct conf_route *r;
	const struct ynode *at;
	size_t i, j;

	if (c->routes.n == 0) {
		conf_warn(l->ctx, lint_first(lint_node(l, "routes"), l->c->tree),
		    "routes is empty: every "
		    "request is answered 404 — add at least one route, e.g. - path: /");
		return;
	}
	for (i = 0; i < c->routes.n; i++) {
		r = &c->routes.v[i];
		at = lint_first(lint_node(l, "routes.%zu.path", i), lint_node(l, "routes.%zu", i));
		if (lint_route_shadowed(c, i, &j))
			conf_warn(l->ctx, at, "routes[%zu] (%s) is never used: routes[%zu] (%s) comes "
			    "first and matches every request it would (first match wins) — move "
			    "routes[%zu] above routes[%zu]", i, lint_quote(l, r->path), j,
			    lint_quote(l, c->routes.v[j].path), i, j);
	}
}

/* ---- redis ------------------------------------------------------------------------------ */

/* The first of these host:port nodes that is not on loopback, or NULL. */
static const char *
lint_exposed(const struct conf_strs *nodes, int defport)
{
	char host[256];
	const char *err;
	size_t i;
	int port;

	for (i = 0; i < nodes->n; i++)
		if (conf_hostport(nodes->v[i], host, sizeof(host), &port, defport, &err) == 0 &&
		    !lint_loopback_host(host, strlen(host)))
			return nodes->v[i];
	return NULL;
}

/* redis.sentinel: the URL's host:port are unused; passwords as for the URL. */
static void
lint_sentinel(struct lint *l, const struct ynode *url)
{
	const struct conf *c = l->c;
	const struct ynode *pw = lint_node(l, "redis.sentinel.password");
	const char *n;

	if (url != NULL && c->redis.host != NULL && c->redis.sentinel_master != NULL &&
	    (strcmp(c->redis.host, c->redis.sentinel_master) != 0 || c->redis.port != 6379))
		conf_warn(l->ctx, url, "redis.url names %s:%d, which is not used with "
		    "redis.sentinel (the primary's address comes from the sentinels) — write "
		    "redis[s]://[[user]:password@]%s[/db]", lint_quote(l, c->redis.host),
		    c->redis.port, lint_quote(l, c->redis.sentinel_master));
	if (c->redis.password == NULL && (n = lint_exposed(&c->redis.sentinel_nodes, 26379)))
		conf_warn(l->ctx, lint_first(url, lint_section(l, "redis")),
		    "redis.url has no password and the sentinels are on the network (%s): "
		    "anyone who reaches the primary can reset rate limits and lockouts and "
		    "lift revocations — set requirepass (or an ACL user) and give it in "
		    "redis.url: ${REDIS_URL}", lint_quote(l, n));
	if (pw != NULL && !pw->had_var)
		conf_warn(l->ctx, pw, "redis.sentinel.password is written in the file: use "
		    "password_file: /run/secrets/sentinel_password or ${SENTINEL_PASSWORD}");
}

/* redis.cluster: as for the sentinels, the URL names no server. */
static void
lint_cluster(struct lint *l, const struct ynode *url)
{
	const struct conf *c = l->c;
	const char *n;

	if (url != NULL && c->redis.host != NULL &&
	    (strcmp(c->redis.host, "cluster") != 0 || c->redis.port != 6379))
		conf_warn(l->ctx, url, "redis.url names %s:%d, which is not used with "
		    "redis.cluster (the nodes come from redis.cluster.nodes and the cluster "
		    "itself) — write redis[s]://[[user]:password@]cluster",
		    lint_quote(l, c->redis.host), c->redis.port);
	if (c->redis.password == NULL && (n = lint_exposed(&c->redis.cluster_nodes, 6379)))
		conf_warn(l->ctx, lint_first(url, lint_section(l, "redis")),
		    "redis.url has no password and the cluster is on the network (%s): "
		    "anyone who reaches it can reset rate limits and lockouts and lift "
		    "revocations — set requirepass (or an ACL user) on every node and give "
		    "it in redis.url: ${REDIS_URL}", lint_quote(l, n));
}

static void
lint_redis(struct lint *l)
{
	const struct conf *c = l->c;
	const struct ynode *map = ynode_get(l->c->tree, "redis"), *url;
	int from_file = 0;

	if (!c->redis.enabled)
		return;
	if ((url = ynode_get(map, "url")) == NULL && (url = ynode_get(map, "url_file")) != NULL)
		from_file = 1;
	if (c->redis.sentinel)
		lint_sentinel(l, url);
	else if (c->redis.cluster)
		lint_cluster(l, url);
	else if (c->redis.password == NULL && c->redis.host != NULL &&
	    !lint_loopback_host(c->redis.host, strlen(c->redis.host)))
		conf_warn(l->ctx, lint_first(url, lint_section(l, "redis")),
		    "redis.url has no password and "
		    "points to %s: anyone who reaches it can reset rate limits and lockouts and "
		    "lift revocations — set requirepass (or an ACL user) on the server and "
		    "redis.url: ${REDIS_URL} with the password", lint_quote(l, c->redis.host));
	if (c->redis.password != NULL && url != NULL && !from_file && !url->had_var)
		conf_warn(l->ctx, url, "redis.url carries a password written in the file: anyone "
		    "who can read the config can reach the store — give it as url: ${REDIS_URL} or "
		    "url_file: /run/secrets/redis_url");
	if (c->redis.tls && c->redis.tls_insecure)
		conf_warn(l->ctx, lint_first(lint_node(l, "redis.tls.insecure_skip_verify"),
		    lint_section(l, "redis")),
		    "redis.tls.insecure_skip_verify is true: anyone on the network path can "
		    "impersonate Redis, read the password and answer every limit check — remove it "
		    "(with redis.tls.ca_file for a private CA)");
	if (c->redis.on_error == REDIS_OPEN)
		conf_warn(l->ctx, lint_first(lint_node(l, "redis.on_error"), lint_section(l,
		    "redis")),
		    "redis.on_error is open: while Redis is unreachable no rate limit or lockout "
		    "is enforced, so whoever can disturb Redis gets unlimited login attempts — use "
		    "local (the same limits in memory) or closed (503)");
}

/* ---- entry ------------------------------------------------------------------------------ */

void
lint_check(struct conf_ctx *ctx, const struct conf *c)
{
	const struct filter *f;
	struct lint l;
	size_t i;

	if (ctx == NULL || c == NULL || ctx->nerr > 0)
		return;
	memset(&l, 0, sizeof(l));
	l.ctx = ctx;
	l.c = c;
	lint_listen(&l);
	lint_tls(&l);
	lint_upstream(&l);
	lint_proxies(&l);
	lint_redis(&l);
	lint_routes(&l);
	for (i = 0; (f = filter_table[i]) != NULL; i++)
		if (f->conf_lint != NULL)
			f->conf_lint(&l, c->sect[i]);
}
