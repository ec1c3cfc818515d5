/* SPDX-License-Identifier: MIT
 * lint — the security lint of `visor -t`: one function per rule, each reading the typed
 * configuration and pointing its warning at the YAML node a reviewer would circle. The rules
 * are the mistakes Node.js teams keep shipping (docs/lint.md has the list, with the reasons):
 *
 *   cors      wildcard, http:// (outside localhost) and `null` origins; credentials with an
 *             empty allowlist
 *   hsts      max_age under a year; preload without include_subdomains
 *   tls       min_version TLSv1 / TLSv1.1
 *   client    trusted_proxies holding a /0
 *   jwt       HMAC secrets under 32 bytes or written inline; HS* mixed with public-key
 *             algorithms; exp not required; a JWKS URL without audience; jwt configured but
 *             every route auth: off
 *   routes    login/auth routes without a rate limit; routes that can never match; routes: []
 *   upstream  tls.verify: false
 *   listen    no http listener (no redirect to HTTPS)
 *   headers   CSP with 'unsafe-eval', a '*' source, or inline/any-host scripts
 *   errors    500 not scrubbed
 *   redis     no password on a non-loopback host; a password written inline; on_error: open
 *
 * Must never: fire on the reference configuration (conf/visor.yaml, CONTRACT §2); quote a
 * secret; touch the configuration. A rule that cannot be decided without guessing is left out.
 */
#include "conf/lint.h"

#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "lib/jwt_core.h"
#include "core/util.h"

#define HMAC_MIN_SECRET  32         /* bytes: HS256's hash size, RFC 7518 §3.2 */
#define HSTS_MIN_AGE     31536000   /* one year, what the preload list requires */

struct lint {
	struct conf_ctx   *ctx;
	const struct conf *c;
	char               q[4][100];  /* rotating buffers for user text in messages */
	int                qi;
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* User text for a message: printable, at most ~80 bytes. Valid until 4 more calls. */
static const char *
q(struct lint *l, const char *s)
{
	return str_printable(l->q[l->qi++ & 3], sizeof(l->q[0]), s);
}

static const struct ynode *node_at(const struct lint *, const char *, ...)
	__attribute__((format(printf, 2, 3)));

/* The node at a dotted path ("cors.origins.0"), NULL when absent or without a tree. */
static const struct ynode *
node_at(const struct lint *l, const char *fmt, ...)
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

/* The first of a, b that is not NULL. */
static const struct ynode *
first(const struct ynode *a, const struct ynode *b)
{
	return a != NULL ? a : b;
}

/* Item i of a list node as conf.c reads it (a single scalar stands for a list of one);
 * the list itself when the item cannot be found. */
static const struct ynode *
item(const struct ynode *list, size_t i)
{
	if (list != NULL && list->type == YN_SEQ && i < list->n)
		return list->items[i];
	return list;
}

/* The key node of a top-level section, for warnings about what the section lacks; the root
 * (line 1) when the section is absent. */
static const struct ynode *
section(const struct lint *l, const char *name)
{
	return first(ynode_key(l->c->tree, name), l->c->tree);
}

/* Mapping value by key, ASCII case-insensitive (header names). */
static const struct ynode *
get_case(const struct ynode *map, const char *key)
{
	size_t i;

	if (map == NULL || map->type != YN_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (strcasecmp(map->pairs[i].key->str, key) == 0)
			return map->pairs[i].val;
	return NULL;
}

static int
strs_has(const struct conf_strs *s, const char *v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return 1;
	return 0;
}

/* Secure-context hosts (W3C Secure Contexts, "potentially trustworthy"): localhost and
 * *.localhost, 127.0.0.0/8, [::1]. `h` is the host as written, `n` its length. */
static int
loopback_host(const char *h, size_t n)
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

/* ---- cors ------------------------------------------------------------------------------- */

static void
lint_cors(struct lint *l)
{
	const struct conf *c = l->c;
	const struct ynode *list, *at;
	const char *o, *h, *e;
	size_t i;

	if (!c->cors.enabled)
		return;
	list = node_at(l, "cors.origins");
	for (i = 0; i < c->cors.origins.n; i++) {
		o = c->cors.origins.v[i];
		at = item(list, i);
		if (strchr(o, '*') != NULL) {
			conf_warn(l->ctx, at, "cors.origins[%zu]: '%s' is a wildcard; visor compares "
			    "origins exactly, so it matches nothing, and a wildcard would trust every "
			    "site or subdomain — list each allowed origin exactly, e.g. "
			    "https://app.example.com", i, q(l, o));
			continue;
		}
		if (strcmp(o, "null") == 0) {
			conf_warn(l->ctx, at, "cors.origins[%zu] is 'null': sandboxed iframes, data: "
			    "URLs and file: pages send Origin: null, so any site can claim it — remove "
			    "'null' from cors.origins", i);
			continue;
		}
		if (strncasecmp(o, "http://", 7) != 0)
			continue;
		h = o + 7;
		if (*h == '[')
			e = strchr(h, ']') != NULL ? strchr(h, ']') + 1 : h + strlen(h);
		else
			e = h + strcspn(h, ":");
		if (loopback_host(h, (size_t)(e - h)))
			continue;
		conf_warn(l->ctx, at, "cors.origins[%zu]: '%s' is plain http; anyone on the "
		    "network can inject script into that origin and read your API through it — "
		    "use https://%s", i, q(l, o), q(l, h));
	}
	if (c->cors.credentials && c->cors.origins.n == 0)
		conf_warn(l->ctx, first(node_at(l, "cors.credentials"), section(l, "cors")),
		    "cors.credentials is true with an empty cors.origins; credentials need an "
		    "allowlist of exact origins — list them in cors.origins, or set "
		    "cors.credentials: false");
}

/* ---- hsts, tls, trusted proxies, upstream, listen ----------------------------------------- */

static void
lint_hsts(struct lint *l)
{
	const struct conf *c = l->c;

	if (c->hsts.max_age < HSTS_MIN_AGE)
		conf_warn(l->ctx, first(node_at(l, "hsts.max_age"), section(l, "hsts")),
		    "HSTS max_age is %lld s; browsers need at least one year (31536000) for "
		    "preload — set hsts.max_age: 31536000", (long long)c->hsts.max_age);
	if (c->hsts.preload && !c->hsts.include_subdomains)
		conf_warn(l->ctx, first(node_at(l, "hsts.preload"), section(l, "hsts")),
		    "hsts.preload is true without include_subdomains; the preload list "
		    "(hstspreload.org) refuses such a header — set hsts.include_subdomains: true");
}

static void
lint_tls(struct lint *l)
{
	const struct ynode *at;
	const char *v;

	/* Explicit: the enum puts 1.0 and 1.1 after 1.3, so order means nothing. */
	if (l->c->tls.min_version != TLS_MIN_10 && l->c->tls.min_version != TLS_MIN_11)
		return;
	at = node_at(l, "tls.min_version");
	v = at != NULL && at->type == YN_SCALAR ? at->str :
	    l->c->tls.min_version == TLS_MIN_10 ? "TLSv1" : "TLSv1.1";
	conf_warn(l->ctx, first(at, section(l, "tls")), "tls.min_version is %s; TLS 1.0 and 1.1 "
	    "are deprecated (RFC 8996) and lack modern cipher suites — set tls.min_version: "
	    "TLSv1.2", q(l, v));
}

static void
lint_proxies(struct lint *l)
{
	const struct conf *c = l->c;
	const struct ynode *list = node_at(l, "client.trusted_proxies"), *at;
	const char *text;
	size_t i;

	for (i = 0; i < c->client.n_trusted_proxies; i++) {
		if (c->client.trusted_proxies[i].bits != 0)
			continue;
		at = item(list, i);
		text = at != NULL && at->type == YN_SCALAR ? at->str :
		    c->client.trusted_proxies[i].family == AF_INET6 ? "::/0" : "0.0.0.0/0";
		conf_warn(l->ctx, first(at, section(l, "client")), "client.trusted_proxies[%zu] is "
		    "%s: every peer is trusted, so any client can write X-Forwarded-For and pick "
		    "the IP that rate limits, bans and logs see — list only your load balancers' "
		    "addresses", i, q(l, text));
	}
}

static void
lint_upstream(struct lint *l)
{
	if (l->c->upstream.tls_enabled && !l->c->upstream.tls_verify)
		conf_warn(l->ctx, first(node_at(l, "upstream.tls.verify"), section(l, "upstream")),
		    "upstream.tls.verify is false: anyone on the network path can impersonate the "
		    "upstream and read every request, tokens included — set verify: true (with "
		    "upstream.tls.ca for a private CA)");
}

static void
lint_listen(struct lint *l)
{
	if (!l->c->listen.has_http)
		conf_warn(l->ctx, section(l, "listen"), "no listen.http: clients that start on "
		    "http:// are never redirected to HTTPS — add listen.http (e.g. 0.0.0.0:8080; it "
		    "answers 301 to https)");
}

/* ---- jwt -------------------------------------------------------------------------------- */

#define HS_ALGS (JWT_ALG_BIT(JWT_HS256) | JWT_ALG_BIT(JWT_HS384) | JWT_ALG_BIT(JWT_HS512))

static void
lint_jwt_secrets(struct lint *l)
{
	const struct conf *c = l->c;
	const struct ynode *map, *sn;
	const char *name;
	size_t i;

	for (i = 0; i < c->jwt.n_keys; i++) {
		const struct conf_jwt_key *k = &c->jwt.keys[i];
		if (k->secret == NULL)
			continue;
		map = node_at(l, "jwt.keys.%zu", i);
		name = "secret";
		if ((sn = ynode_get(map, "secret")) == NULL &&
		    (sn = ynode_get(map, "secret_file")) != NULL)
			name = "secret_file";
		/* had_var: the text came from the environment; a *_file key reads a file. Either
		 * keeps the secret out of the repository, the image and the ConfigMap. */
		if (sn != NULL && strcmp(name, "secret") == 0 && !sn->had_var)
			conf_warn(l->ctx, sn, "jwt.keys[%zu].secret is written in the file: anyone who "
			    "can read the config (repository, image, ConfigMap) can mint tokens — give "
			    "it as secret: ${JWT_SECRET} or secret_file: /run/secrets/jwt", i);
		if (k->secret_len < HMAC_MIN_SECRET)
			conf_warn(l->ctx, first(sn, map), "jwt.keys[%zu].%s %s %zu bytes; an HMAC "
			    "secret under 32 bytes (RFC 7518 §3.2) can be brute-forced offline from one "
			    "token — use 32 random bytes or more (openssl rand -base64 48)", i, name,
			    strcmp(name, "secret") == 0 ? "is" : "holds", k->secret_len);
	}
}

static void
lint_jwt(struct lint *l)
{
	const struct conf *c = l->c;
	const char *hs = NULL, *pk = NULL;
	size_t i;
	int a;

	if (!c->jwt.enabled)
		return;
	lint_jwt_secrets(l);
	if ((c->jwt.algorithms & HS_ALGS) && (c->jwt.algorithms & ~HS_ALGS)) {
		for (a = 0; a < JWT_ALG_COUNT; a++) {
			if (!(c->jwt.algorithms & JWT_ALG_BIT(a)))
				continue;
			if (hs == NULL && (HS_ALGS & JWT_ALG_BIT(a)))
				hs = jwt_alg_name((enum jwt_alg)a);
			if (pk == NULL && !(HS_ALGS & JWT_ALG_BIT(a)))
				pk = jwt_alg_name((enum jwt_alg)a);
		}
		conf_warn(l->ctx, first(node_at(l, "jwt.algorithms"), section(l, "jwt")),
		    "jwt.algorithms mixes HMAC (%s) with public-key algorithms (%s): any holder of "
		    "the HMAC secret can mint tokens beside your private key's, and mixed families "
		    "are what algorithm-confusion attacks exploit — allow one family (RFC 8725 "
		    "§3.1)", hs, pk);
	}
	if (!strs_has(&c->jwt.required_claims, "exp"))
		conf_warn(l->ctx, first(node_at(l, "jwt.required_claims"), section(l, "jwt")),
		    "jwt.required_claims does not include exp: a token without exp is accepted "
		    "forever, even once leaked — add exp to jwt.required_claims");
	if (c->jwt.audience.n == 0) {
		for (i = 0; i < c->jwt.n_keys; i++)
			if (c->jwt.keys[i].jwks_url != NULL)
				break;
		if (i < c->jwt.n_keys)
			conf_warn(l->ctx, section(l, "jwt"), "jwt.audience is not set and jwt.keys[%zu] "
			    "is a JWKS URL: a token the identity provider issued for another "
			    "application is accepted here — set jwt.audience to this API's identifier",
			    i);
	}
	for (i = 0; i < c->routes.n; i++)
		if (c->routes.v[i].auth != AUTH_OFF)
			break;
	if (c->routes.n > 0 && i == c->routes.n)
		conf_warn(l->ctx, section(l, "jwt"), "jwt is configured but every route has auth: "
		    "off, so no token is ever checked — set auth: required (or optional) on the "
		    "routes that need it");
}

/* ---- routes ----------------------------------------------------------------------------- */

/* A path segment (case-insensitive, as routes match) that names a credential endpoint. */
static int
login_path(const char *path)
{
	static const char *const names[] = { "auth", "login", "signin", "sign-in" };
	const char *s = path, *e;
	size_t i, n;

	while (*s != '\0') {
		s += strspn(s, "/");
		e = s + strcspn(s, "/");
		n = (size_t)(e - s);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (n == strlen(names[i]) && strncasecmp(s, names[i], n) == 0)
				return 1;
		s = e;
	}
	return 0;
}

/* Whether the route can receive a request that carries credentials: any method, or one
 * that is not GET/HEAD/OPTIONS (a GET-only /login serves the form). */
static int
takes_writes(const struct conf_route *r)
{
	size_t i;

	if (r->methods.n == 0)
		return 1;
	for (i = 0; i < r->methods.n; i++)
		if (strcmp(r->methods.v[i], "GET") != 0 && strcmp(r->methods.v[i], "HEAD") != 0 &&
		    strcmp(r->methods.v[i], "OPTIONS") != 0)
			return 1;
	return 0;
}

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

static void
lint_routes(struct lint *l)
{
	const struct conf *c = l->c;
	const struct conf_route *r;
	const struct ynode *at;
	size_t i, j;

	if (c->routes.n == 0) {
		conf_warn(l->ctx, first(node_at(l, "routes"), l->c->tree), "routes is empty: every "
		    "request is answered 404 — add at least one route, e.g. - path: /");
		return;
	}
	for (i = 0; i < c->routes.n; i++) {
		r = &c->routes.v[i];
		at = first(node_at(l, "routes.%zu.path", i), node_at(l, "routes.%zu", i));
		for (j = 0; j < i; j++)
			if (covers(&c->routes.v[j], r))
				break;
		if (j < i) {
			conf_warn(l->ctx, at, "routes[%zu] (%s) is never used: routes[%zu] (%s) comes "
			    "first and matches every request it would (first match wins) — move "
			    "routes[%zu] above routes[%zu]", i, q(l, r->path), j,
			    q(l, c->routes.v[j].path), i, j);
			continue;
		}
		if (r->n_rate_limits == 0 && login_path(r->path) && takes_writes(r))
			conf_warn(l->ctx, at, "routes[%zu] (%s) has no rate limit; login endpoints "
			    "get password guessing and credential stuffing — add rate_limits: [login] "
			    "with a policy such as login: { limit: 5, window: 60s, key: ip, count: "
			    "failures }", i, q(l, r->path));
	}
}

/* ---- headers: Content-Security-Policy --------------------------------------------------- */

#define CSP_WS " \t"

/* The next whitespace-separated token of [*s, e): 1 with *tok, *n set and *s past it, 0 at
 * the end. */
static int
csp_next(const char **s, const char *e, const char **tok, size_t *n)
{
	*s += strspn(*s, CSP_WS);
	if (*s >= e)
		return 0;
	*tok = *s;
	*n = strcspn(*s, CSP_WS);
	if (*s + *n > e)
		*n = (size_t)(e - *s);
	*s += *n;
	return 1;
}

/* Whether the source list [s, e) holds `tok` (ASCII case-insensitive, whole token). */
static int
csp_has(const char *s, const char *e, const char *tok)
{
	const char *t;
	size_t n, tl = strlen(tok);

	while (csp_next(&s, e, &t, &n))
		if (n == tl && strncasecmp(t, tok, n) == 0)
			return 1;
	return 0;
}

/* Whether the source list [s, e) holds a nonce or hash source, or 'strict-dynamic': CSP 2+
 * browsers then ignore 'unsafe-inline' (and, with strict-dynamic, host and scheme sources). */
static int
csp_has_nonce(const char *s, const char *e, int *strict_dynamic)
{
	const char *t;
	size_t n;
	int r = 0;

	*strict_dynamic = csp_has(s, e, "'strict-dynamic'");
	while (csp_next(&s, e, &t, &n))
		if ((n > 7 && strncasecmp(t, "'nonce-", 7) == 0) ||
		    (n > 8 && (strncasecmp(t, "'sha256-", 8) == 0 ||
		    strncasecmp(t, "'sha384-", 8) == 0 || strncasecmp(t, "'sha512-", 8) == 0)))
			r = 1;
	return r || *strict_dynamic;
}

/* One directive "name src src ..." in [s, e). */
static void
csp_directive(struct lint *l, const struct ynode *at, const char *s, const char *e,
    int has_script_src)
{
	char name[48];
	const char *src;
	size_t n;
	int script, sd;

	s += strspn(s, CSP_WS);
	n = strcspn(s, CSP_WS);
	if (s >= e || n == 0)
		return;
	if (s + n > e)
		n = (size_t)(e - s);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, s, n);
	name[n] = '\0';
	src = s + n;
	if (csp_has(src, e, "'unsafe-eval'"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows 'unsafe-eval', so "
		    "injected strings reach eval() and new Function() — remove 'unsafe-eval' (and "
		    "the code that needs it)", q(l, name));
	if (csp_has(src, e, "*"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows '*', any host — "
		    "list the hosts it needs, or 'self'", q(l, name));
	/* Script directives; default-src stands for script-src when that is absent. */
	script = strcasecmp(name, "script-src") == 0 || strcasecmp(name, "script-src-elem") == 0 ||
	    strcasecmp(name, "script-src-attr") == 0 ||
	    (!has_script_src && strcasecmp(name, "default-src") == 0);
	if (!script)
		return;
	if (!csp_has_nonce(src, e, &sd) && csp_has(src, e, "'unsafe-inline'"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows 'unsafe-inline' "
		    "without a nonce or hash, so injected <script> and on* handlers run — use "
		    "nonces or hashes, or move inline scripts to files", q(l, name));
	if (sd)
		return;
	if (csp_has(src, e, "https:") || csp_has(src, e, "http:") || csp_has(src, e, "data:"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows scripts from any "
		    "https:, http: or data: URL — list the script hosts it needs, or 'self'",
		    q(l, name));
}

static void
lint_csp(struct lint *l)
{
	const struct conf *c = l->c;
	const struct ynode *at;
	const char *v, *s, *e;
	size_t i;
	int has_script_src;

	for (i = 0; i < c->headers.n; i++)
		if (strcasecmp(c->headers.v[i].key, "Content-Security-Policy") == 0)
			break;
	if (i == c->headers.n)
		return;
	v = c->headers.v[i].val;
	at = first(get_case(ynode_get(c->tree, "headers"), "Content-Security-Policy"),
	    section(l, "headers"));
	has_script_src = 0;
	for (s = v; *s != '\0'; s = *e ? e + 1 : e) {
		e = s + strcspn(s, ";");
		s += strspn(s, CSP_WS);
		if ((size_t)(e - s) >= 10 && strncasecmp(s, "script-src", 10) == 0 &&
		    (e - s == 10 || strchr(CSP_WS, s[10]) != NULL))
			has_script_src = 1;
	}
	for (s = v; *s != '\0'; s = *e ? e + 1 : e) {
		e = s + strcspn(s, ";");
		csp_directive(l, at, s, e, has_script_src);
	}
}

/* ---- errors, redis ---------------------------------------------------------------------- */

static void
lint_errors(struct lint *l)
{
	if (!conf_scrub_status(l->c, 500))
		conf_warn(l->ctx, first(node_at(l, "errors.scrub"), section(l, "errors")),
		    "errors.scrub does not include 500: Node's default error handlers send stack "
		    "traces and driver messages in 500 answers — add 500-599 to errors.scrub");
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
	if (c->redis.password == NULL && c->redis.host != NULL &&
	    !loopback_host(c->redis.host, strlen(c->redis.host)))
		conf_warn(l->ctx, first(url, section(l, "redis")), "redis.url has no password and "
		    "points to %s: anyone who reaches it can reset rate limits and lockouts and "
		    "lift revocations — set requirepass (or an ACL user) on the server and "
		    "redis.url: ${REDIS_URL} with the password", q(l, c->redis.host));
	if (c->redis.password != NULL && url != NULL && !from_file && !url->had_var)
		conf_warn(l->ctx, url, "redis.url carries a password written in the file: anyone "
		    "who can read the config can reach the store — give it as url: ${REDIS_URL} or "
		    "url_file: /run/secrets/redis_url");
	if (c->redis.on_error == REDIS_OPEN)
		conf_warn(l->ctx, first(node_at(l, "redis.on_error"), section(l, "redis")),
		    "redis.on_error is open: while Redis is unreachable no rate limit or lockout "
		    "is enforced, so whoever can disturb Redis gets unlimited login attempts — use "
		    "local (the same limits in memory) or closed (503)");
}

/* ---- entry ------------------------------------------------------------------------------ */

void
lint_check(struct conf_ctx *ctx, const struct conf *c)
{
	struct lint l;

	if (ctx == NULL || c == NULL || ctx->nerr > 0)
		return;
	memset(&l, 0, sizeof(l));
	l.ctx = ctx;
	l.c = c;
	lint_listen(&l);
	lint_tls(&l);
	lint_upstream(&l);
	lint_proxies(&l);
	lint_hsts(&l);
	lint_csp(&l);
	lint_cors(&l);
	lint_redis(&l);
	lint_jwt(&l);
	lint_routes(&l);
	lint_errors(&l);
}
