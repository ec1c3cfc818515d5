/* SPDX-License-Identifier: MIT
 * rl — rate limits (docs/rate-limits.md) and the JWT revocation check, as three rows of the
 * filter table (see "the built configuration" below): the route's policies keyed on the client
 * alone (ip, header:) are counted before CORS and the token can refuse the request; the `user`
 * and `ip+user` ones and `visor:revoked:<jti>` / `visor:revoked-before:<sub>` after the token.
 * Each check is ONE store operation: one atomic script (one Redis round trip), or the memory
 * store (store.c decides which).
 *
 * Keys: `visor:rl:<policy>:<client>` where <client> is the ip key (store_ip_key: IPv4 as is,
 * IPv6 by /56, as express-rate-limit 8), `user:<sub>` (the verified JWT sub; the ip key when
 * anonymous), `<ip key>|user:<sub>`, or `hdr:<first 32 hex of sha256(value)>` for
 * header:<Name> (the ip key when the header is missing) — header values are often API keys, so
 * they are never stored in clear.
 *
 * Answers: a refused request gets 429 (req_respond) with Retry-After (seconds until a request
 * would be admitted); a revoked token gets the jwt filter's 401 (r->refuse_token). Every answer
 * of a limited route that got past CORS — proxied or made by visor, 429 and 401 included —
 * carries the RateLimit headers of the most restrictive policy of both checks (a refusing one,
 * else the lowest remaining), in the
 * configured format, byte for byte as express-rate-limit 8 writes them; visor's values replace
 * any the upstream sent. With Redis unavailable and on_error: open the request passes without
 * headers; with closed it gets 503.
 *
 * `count: failures` policies only check when the request arrives; on_done records a hit
 * (fire and forget) when the answer is >= 400 and was not this module's own refusal.
 *
 * Owns `rate_limits`, `rate_limit_headers` and each route's `rate_limits` (rows, parse, the
 * lint's login-route rule). It reads no other filter's configuration: whether a request wants
 * the revocation check is what the jwt filter set on it (r->check_revocation).
 *
 * Must never: touch the request from a store reply after on_abort; count a request twice.
 */
#include "filters/ratelimit.h"
#include "filters/jwt.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "http/filter.h"
#include "lib/jwt_core.h"
#include "core/log.h"
#include "http/req.h"
#include "http/route.h"
#include "store/store.h"
#include "core/metrics.h"

#define RL_MAX_PER_ROUTE 16
#define RL_KEY_MAX       256          /* longer user/header values are hashed */

struct rl_pol {
	const struct rl_policy *p;
	char    *prefix;                 /* "visor:rl:<name>:{" (the client is the hash tag) */
	size_t   plen;
	int      mode;
	char    *d8name;                 /* "100-in-1min" */
};

struct rl_conf {
	struct rl_pol   *pol;            /* indexed like rate_limits.v */
	size_t           n;
	enum rl_hdrfmt   fmt;
	int              revocation;     /* an earlier filter may ask for the check
	                                  * (r->check_revocation): Redis is configured */
	enum redis_onerr on_error;
	int              role;           /* enum rl_role: which row of the table */
	size_t           fid;            /* ratelimit_filter's id: the route keys */
	size_t           cid, uid;       /* the client and user rows' ids: their states */
	unsigned char   *anon;           /* per route: no token is verified there, so user and
	                                  * ip+user policies key by the IP and go with the
	                                  * client row's check (one store operation, not two) */
	size_t           nroutes;
};

struct rl_state {
	struct filter_wait  w;              /* first: filter_wait_abort casts to it */
	struct store_rlq    q;
	struct store_limit *lim;
	const struct rl_pol **pol;
	const char        **comp;        /* the client part of each key (draft-8 pk) */
	size_t             *clen;
	int                 best;        /* policy the headers report */
	unsigned            checked : 1; /* the policies were evaluated: headers go out */
	unsigned            refused : 1;
	unsigned            revoked : 1;
	unsigned            unavailable : 1; /* the store did not answer (RL_CLIENT) */
	int64_t             wall_ms;     /* when evaluated (legacy X-RateLimit-Reset) */
};

/* ---- pure helpers (tests/unit/test_rl.c) --------------------------------------------------- */

/* JavaScript's Number#toString for finite v >= 1e-6: the shortest digits that read back as v,
 * in fixed notation. */
static void
js_number(double v, char *out, size_t n)
{
	char buf[40], digits[24], *e;
	int p, exp10, nd = 0, i;
	size_t o = 0;

	if (v == floor(v) && fabs(v) < 1e21) {
		snprintf(out, n, "%.0f", v);
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* buf = "d.ddddde+XX" */
	for (i = 0; buf[i] && buf[i] != 'e'; i++)
		if (buf[i] >= '0' && buf[i] <= '9' && nd < (int)sizeof(digits) - 1)
			digits[nd++] = buf[i];
	digits[nd] = '\0';
	e = strchr(buf, 'e');
	exp10 = e ? (int)strtol(e + 1, NULL, 10) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	if (v < 0 && o + 1 < n)
		out[o++] = '-';
	if (exp10 < 0) {
		if (o + 2 < n) {
			out[o++] = '0';
			out[o++] = '.';
		}
		for (i = -1; i > exp10 && o + 1 < n; i--)
			out[o++] = '0';
		for (i = 0; i < nd && o + 1 < n; i++)
			out[o++] = digits[i];
	} else {
		for (i = 0; i <= exp10 || i < nd; i++) {
			if (i == exp10 + 1 && o + 1 < n)
				out[o++] = '.';
			if (o + 1 < n)
				out[o++] = i < nd ? digits[i] : '0';
			if (i >= exp10 && i + 1 >= nd)
				break;
		}
	}
	out[o < n ? o : n - 1] = '\0';
}

/* express-rate-limit's default draft-8 policy name: "<limit>-in-<duration>". */
static void
rl_d8name(int64_t limit, int64_t window_ms, char *out, size_t n)
{
	double w = (double)window_ms, s = w / 1e3, m = w / (1e3 * 60), h = w / (1e3 * 60 * 60),
	    d = w / (1e3 * 60 * 60 * 24);
	char num[40];

	if (s < 60) {
		js_number(s, num, sizeof(num));
		snprintf(out, n, "%lld-in-%ssec", (long long)limit, num);
	} else if (m < 60) {
		js_number(m, num, sizeof(num));
		snprintf(out, n, "%lld-in-%smin", (long long)limit, num);
	} else if (h < 24) {
		js_number(h, num, sizeof(num));
		snprintf(out, n, "%lld-in-%shr%s", (long long)limit, num, h > 1 ? "s" : "");
	} else {
		js_number(d, num, sizeof(num));
		snprintf(out, n, "%lld-in-%sday%s", (long long)limit, num, d > 1 ? "s" : "");
	}
}

/* draft-8 partition key: base64 of the first 12 hex characters of sha256(key), as
 * express-rate-limit's getPartitionKey computes it. out: >= 17 bytes. */
static void
rl_pk(const char *key, size_t klen, char *out)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[13];

	if (EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, 6);
	for (i = 0; i < 6; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	/* 12 bytes → 16 base64 characters, no padding */
	for (i = 0; i < 4; i++) {
		uint32_t v = ((uint32_t)(unsigned char)hex[3 * i] << 16) |
		    ((uint32_t)(unsigned char)hex[3 * i + 1] << 8) | (unsigned char)hex[3 * i + 2];
		out[4 * i] = b64[(v >> 18) & 63];
		out[4 * i + 1] = b64[(v >> 12) & 63];
		out[4 * i + 2] = b64[(v >> 6) & 63];
		out[4 * i + 3] = b64[v & 63];
	}
	out[16] = '\0';
}

/* Seconds as express-rate-limit rounds them: ceil, never below 0. */
static int64_t
rl_secs(int64_t ms)
{
	if (ms <= 0)
		return 0;
	return (ms + 999) / 1000;
}

/* Every header name a format may use (an upstream's copies are replaced as a set). */
static const char *const rl_names[] = {
	"RateLimit", "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining",
	"RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
};

struct rl_hv {
	const char *name;
	char        val[192];
};

/* What the headers say about one policy. */
struct rl_info {
	int64_t     limit;
	int64_t     window_ms;
	int64_t     remaining;
	int64_t     reset_ms;
	int64_t     wall_ms;             /* now, for legacy's epoch reset */
	const char *d8name;
	const char *key;                 /* the client key (draft-8 pk) */
	size_t      klen;
};

/* The RateLimit headers of `fmt`, in express-rate-limit 8's order and bytes (Retry-After is
 * the caller's). Returns how many entries of out[4] were filled. */
static int
rl_format(enum rl_hdrfmt fmt, const struct rl_info *in, struct rl_hv *out)
{
	int64_t wsec = rl_secs(in->window_ms), reset = rl_secs(in->reset_ms);
	long long lim = (long long)in->limit, rem = (long long)MAX(in->remaining, 0);
	char pk[17];

	switch (fmt) {
	case RLH_DRAFT6:
		out[0].name = "RateLimit-Policy";
		snprintf(out[0].val, sizeof(out[0].val), "%lld;w=%lld", lim, (long long)wsec);
		out[1].name = "RateLimit-Limit";
		snprintf(out[1].val, sizeof(out[1].val), "%lld", lim);
		out[2].name = "RateLimit-Remaining";
		snprintf(out[2].val, sizeof(out[2].val), "%lld", rem);
		out[3].name = "RateLimit-Reset";
		snprintf(out[3].val, sizeof(out[3].val), "%lld", (long long)reset);
		return 4;
	case RLH_DRAFT7:
		out[0].name = "RateLimit-Policy";
		snprintf(out[0].val, sizeof(out[0].val), "%lld;w=%lld", lim, (long long)wsec);
		out[1].name = "RateLimit";
		snprintf(out[1].val, sizeof(out[1].val), "limit=%lld, remaining=%lld, reset=%lld",
		    lim, rem, (long long)reset);
		return 2;
	case RLH_DRAFT8:
		rl_pk(in->key, in->klen, pk);
		out[0].name = "RateLimit";
		snprintf(out[0].val, sizeof(out[0].val), "\"%s\"; r=%lld; t=%lld", in->d8name, rem,
		    (long long)reset);
		out[1].name = "RateLimit-Policy";
		snprintf(out[1].val, sizeof(out[1].val), "\"%s\"; q=%lld; w=%lld; pk=:%s:",
		    in->d8name, lim, (long long)wsec, pk);
		return 2;
	case RLH_LEGACY:
		out[0].name = "X-RateLimit-Limit";
		snprintf(out[0].val, sizeof(out[0].val), "%lld", lim);
		out[1].name = "X-RateLimit-Remaining";
		snprintf(out[1].val, sizeof(out[1].val), "%lld", rem);
		out[2].name = "X-RateLimit-Reset";
		snprintf(out[2].val, sizeof(out[2].val), "%lld",
		    (long long)((in->wall_ms + MAX(in->reset_ms, 0) + 999) / 1000));
		return 3;
	case RLH_OFF:
	default:
		return 0;
	}
}

/* Which policy the headers report: a refusing one (the longest wait), else the lowest
 * remaining (then the smallest limit, then the longest reset). */
static int
rl_pick(const struct store_limit *lim, size_t n)
{
	size_t i;
	int best = 0;

	for (i = 1; i < n; i++) {
		const struct store_limit *a = &lim[i], *b = &lim[best];
		if (a->admitted != b->admitted) {
			if (!a->admitted)
				best = (int)i;
			continue;
		}
		if (!a->admitted) {
			if (a->reset_ms > b->reset_ms)
				best = (int)i;
			continue;
		}
		if (a->remaining < b->remaining ||
		    (a->remaining == b->remaining && (a->limit < b->limit ||
		    (a->limit == b->limit && a->reset_ms > b->reset_ms))))
			best = (int)i;
	}
	return best;
}

static void
hex32(const char *s, size_t n, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, 16);
	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The client part of a policy's key for this request, in the arena. */
static const char *
rl_client(struct req *r, const struct rl_policy *p, const char *ipk, size_t ipl,
    size_t *len)
{
	const char *v = NULL;
	size_t vl = 0;
	char h[33];
	char *out;

	switch (p->key) {
	case RLK_USER:
	case RLK_IP_USER:
		if (r->user == NULL || r->user[0] == '\0')
			break;
		vl = strlen(r->user);
		if (vl > RL_KEY_MAX) {
			hex32(r->user, vl, h);
			out = p->key == RLK_USER ? arena_printf(&r->a, "user#%s", h) :
			    arena_printf(&r->a, "%.*s|user#%s", (int)ipl, ipk, h);
		} else {
			out = p->key == RLK_USER ? arena_printf(&r->a, "user:%s", r->user) :
			    arena_printf(&r->a, "%.*s|user:%s", (int)ipl, ipk, r->user);
		}
		if (out)
			*len = strlen(out);
		return out;
	case RLK_HEADER:
		v = p->header ? req_header(r, p->header, &vl) : NULL;
		if (v == NULL || vl == 0)
			break;
		hex32(v, vl, h);
		out = arena_printf(&r->a, "hdr:%s", h);
		if (out)
			*len = strlen(out);
		return out;
	case RLK_IP:
	default:
		break;
	}
	*len = ipl;
	return ipk;
}

/* ---- configuration: `rate_limits`, `rate_limit_headers` and each route's `rate_limits` ---- */

_Static_assert(sizeof(enum rl_hdrfmt) == sizeof(int), "enums are stored through int *");
_Static_assert(sizeof(enum rl_count) == sizeof(int), "enums are stored through int *");

static void
cf_rl_key(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct rl_policy *rl = p->base;
	const char *s;

	(void)k;
	(void)field;
	if ((s = conf_scalar_text(p, v, "ip, user, ip+user or header:<Name>")) == NULL)
		return;
	if (strcasecmp(s, "ip") == 0)
		rl->key = RLK_IP;
	else if (strcasecmp(s, "user") == 0)
		rl->key = RLK_USER;
	else if (strcasecmp(s, "ip+user") == 0)
		rl->key = RLK_IP_USER;
	else if (strncasecmp(s, "header:", 7) == 0 && conf_is_token(s + 7)) {
		free(rl->header);
		if ((rl->header = conf_strdup(p, v, s + 7)) != NULL)
			rl->key = RLK_HEADER;
	} else if (strncasecmp(s, "header:", 7) == 0)
		conf_err(p->ctx, v, "%s: '%s' is not a valid header name", p->path, conf_quote(p,
		    s + 7));
	else
		conf_err(p->ctx, v, "%s: expected ip, user, ip+user or header:<Name>, got '%s'",
		    p->path, conf_quote(p, s));
}

static void
rel_rl_key(const struct ckey *k, void *base)
{
	struct rl_policy *rl = base;

	(void)k;
	free(rl->header);
	rl->header = NULL;
}

static const struct cenum e_rlcount[] = { { "all", RLC_ALL }, { "failures", RLC_FAILURES },
    { NULL, 0 } };

static const struct ckey k_rl[] = {
	{ .name = "limit", .type = KT_INT, .off = offsetof(struct rl_policy, limit),
	  .min = 1, .max = 1000000000, .flags = CK_REQUIRED,
	  .doc = "Requests allowed per window." },
	{ .name = "window", .type = KT_DUR, .off = offsetof(struct rl_policy, window_ms),
	  .min = 1000, .max = INT64_MAX, .flags = CK_REQUIRED,
	  .doc = "Length of the window." },
	{ .name = "key", .type = KT_CUSTOM, .fn = cf_rl_key, .release = rel_rl_key, .def = "ip",
	  .flags = CK_SCALAR,
	  .tname = "`ip`, `user`, `ip+user` or `header:<Name>`",
	  .doc = "What is counted: client IP, JWT sub (falls back to the IP when anonymous), "
	    "both, or a request header's value." },
	{ .name = "count", .type = KT_ENUM, .off = offsetof(struct rl_policy, count),
	  .def = "all", .arg = e_rlcount,
	  .doc = "all: every request counts; failures: only answers >= 400 count." },
};
static const struct csect s_rl = CONF_SECT(k_rl, NULL);

static int
valid_policy_name(const char *s)
{
	if (*s == '\0')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
	    strlen(s);
}

static void
cf_rate_limits(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct rl_sect *rs = p->base;
	struct rl_policy *arr;
	void *saved = p->base;
	size_t i, old;

	(void)field;
	if (!conf_is_map(p, v, "a mapping of policy names to policies"))
		return;
	if ((arr = conf_items_alloc(p, v, v->n, sizeof(*arr))) == NULL)
		return;
	rs->rate_limits.v = arr;
	rs->rate_limits.n = v->n;
	for (i = 0; i < v->n; i++) {
		const struct ynode *key = v->pairs[i].key, *val = v->pairs[i].val;
		old = conf_path_key(p, key->str);
		if (strlen(key->str) != key->len || !valid_policy_name(key->str)) {
			conf_err(p->ctx, key, "%s: a policy name is made of letters, digits, '_' "
			    "and '-'", p->path);
		} else if ((arr[i].name = conf_strdup(p, key, key->str)) != NULL) {
			p->base = &arr[i];
			if (val->type != YN_MAP)
				conf_err(p->ctx, val, "%s: expected a mapping, got %s", p->path,
				    val->type == YN_SEQ ? "a list" :
				    conf_is_null(val) ? "an empty value" : "a scalar");
			else
				conf_walk(p, k->arg, val, key);
			p->base = saved;
		}
		conf_path_pop(p, old);
	}
}

static void
rel_rate_limits(const struct ckey *k, void *base)
{
	struct rl_sect *rs = base;
	size_t i;

	for (i = 0; i < rs->rate_limits.n; i++) {
		free(rs->rate_limits.v[i].name);
		conf_release(k->arg, &rs->rate_limits.v[i]);
	}
	free(rs->rate_limits.v);
	rs->rate_limits.v = NULL;
	rs->rate_limits.n = 0;
}

static const struct cenum e_rlh[] = { { "draft-6", RLH_DRAFT6 }, { "draft-7", RLH_DRAFT7 },
    { "draft-8", RLH_DRAFT8 }, { "legacy", RLH_LEGACY }, { "off", RLH_OFF }, { NULL, 0 } };

static const struct ckey k_top[] = {
	{ .name = "rate_limits", .type = KT_CUSTOM, .fn = cf_rate_limits,
	  .release = rel_rate_limits, .arg = &s_rl, .flags = CK_NAMED,
	  .tname = "mapping name → policy", .defdoc = "none",
	  .doc = "Named rate-limit policies, used by routes." },
	{ .name = "rate_limit_headers", .type = KT_ENUM,
	  .off = offsetof(struct rl_sect, rate_limit_headers), .def = "draft-6", .arg = e_rlh,
	  .doc = "RateLimit headers as express-rate-limit 8 emits them, or off." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

static void
cf_route_rls(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct rl_route *rt = p->base;
	const struct rl_sect *rs = p->sect;     /* parsed before routes */
	const char *cand[64], *s, *sug;
	const struct ynode *it;
	const struct ynode *lv = conf_list_node(p, v);
	long n = conf_list_count(p, lv, "a list of rate limit names");
	size_t i, j, old, nc;

	(void)field;
	if (n < 0)
		return;
	/* replaces what the field held, as conf_scalar_items does */
	conf_release_list(k, p->base);
	if ((rt->rate_limits = conf_items_alloc(p, v, (size_t)n, sizeof(*rt->rate_limits))) == NULL)
		return;
	for (nc = 0; nc < rs->rate_limits.n && nc < 64; nc++)
		cand[nc] = rs->rate_limits.v[nc].name;
	for (i = 0; i < (size_t)n; i++) {
		it = conf_item_at(lv, i);
		old = conf_item_push(p, lv, i);
		if ((s = conf_item_text(p, it)) != NULL) {
			for (j = 0; j < rs->rate_limits.n; j++)
				if (rs->rate_limits.v[j].name != NULL &&
				    strcmp(rs->rate_limits.v[j].name, s) == 0)
					break;
			if (j < rs->rate_limits.n)
				rt->rate_limits[rt->n_rate_limits++] = j;
			else if (rs->rate_limits.n == 0)
				conf_err(p->ctx, it, "%s: no rate limit named '%s' (rate_limits "
				    "defines none)", p->path, conf_quote(p, s));
			else if ((sug = conf_nearest(s, cand, nc)) != NULL)
				conf_err(p->ctx, it, "%s: no rate limit named '%s' in rate_limits "
				    "(did you mean '%s'?)", p->path, conf_quote(p, s), sug);
			else
				conf_err(p->ctx, it, "%s: no rate limit named '%s' in rate_limits",
				    p->path, conf_quote(p, s));
		}
		conf_path_pop(p, old);
	}
}

/* route rate_limits: indexes into rl_sect.rate_limits (cf_route_rls resolves the names) */
static const struct clist l_route_rls = { offsetof(struct rl_route, n_rate_limits),
    sizeof(size_t), NULL, NULL };

static const struct ckey k_route[] = {
	{ .name = "rate_limits", .type = KT_CUSTOM, .off = offsetof(struct rl_route, rate_limits),
	  .arg = &l_route_rls, .fn = cf_route_rls, .release = conf_release_list,
	  .tname = "list of policy names", .defdoc = "none",
	  .doc = "Policies from rate_limits applied to this route, in order." },
};
static const struct csect s_route = CONF_SECT(k_route, NULL);

/* ---- lint ---------------------------------------------------------------------------- */

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

/* Login routes without a rate limit (a route the core already reports as never used is
 * left to that warning). */
static void
rl_lint(struct lint *l, const void *sect)
{
	const struct conf *c = l->c;
	const struct conf_route *r;
	const struct rl_route *rr;
	const struct ynode *at;
	size_t i, j, id = filter_id(&ratelimit_filter);

	(void)sect;
	for (i = 0; i < c->routes.n; i++) {
		r = &c->routes.v[i];
		rr = conf_route_keys(r, id);
		if (lint_route_shadowed(c, i, &j))
			continue;
		at = lint_first(lint_node(l, "routes.%zu.path", i), lint_node(l, "routes.%zu", i));
		if (rr->n_rate_limits == 0 && login_path(r->path) && takes_writes(r))
			conf_warn(l->ctx, at, "routes[%zu] (%s) has no rate limit; login endpoints "
			    "get password guessing and credential stuffing — add rate_limits: [login] "
			    "with a policy such as login: { limit: 5, window: 60s, key: ip, count: "
			    "failures }", i, lint_quote(l, r->path));
	}
}

/* ---- the built configuration --------------------------------------------------------------- */

/* The module is three rows of the filter table, so that limits keyed on the client alone are
 * counted before anything can refuse the request, and answered where CORS still dresses the
 * answer (docs/rate-limits.md, "Order"):
 *   RL_CLIENT  ratelimit_client_filter, before cors: evaluates the route's ip and header:
 *              policies (one store operation) and only records the verdict, so a request
 *              that CORS or the token refuses later has been counted;
 *   RL_ANSWER  ratelimit_filter, between cors and jwt: answers 429 (or 503) for RL_CLIENT's
 *              verdict, and on the way back writes the one RateLimit report of the answer,
 *              the most restrictive policy of both checks (its response hook runs after
 *              the others' and before cors's, which exposes what it wrote);
 *   RL_USER    ratelimit_user_filter, after jwt: the user and ip+user policies and the
 *              revocation check, in one store operation; answers 429 or the token's 401.
 * Each row builds its own rl_conf from ratelimit_filter's keys (this module's only block). */
enum rl_role { RL_CLIENT, RL_ANSWER, RL_USER };

extern const struct filter ratelimit_client_filter, ratelimit_user_filter;

static void
rl_conf_free(void *p)
{
	struct rl_conf *rc = p;
	size_t i;

	if (rc == NULL)
		return;
	for (i = 0; i < rc->n; i++) {
		free(rc->pol[i].prefix);
		free(rc->pol[i].d8name);
	}
	free(rc->pol);
	free(rc->anon);
	free(rc);
}

/* Whether policy p is evaluated by rc's row on route ri: client-keyed policies by RL_CLIENT,
 * user-keyed ones by RL_USER — or by RL_CLIENT too where no token is ever verified (they key
 * by the IP there, so nothing is gained by waiting for the token). */
static int
rl_role_has(const struct rl_conf *rc, size_t ri, const struct rl_policy *p)
{
	int client = p->key == RLK_IP || p->key == RLK_HEADER ||
	    (ri < rc->nroutes && rc->anon[ri]);

	return rc->role == RL_CLIENT ? client : rc->role == RL_USER ? !client : 1;
}

static int
rl_build(struct conf_ctx *ctx, struct conf *c, int role, void **fconf)
{
	const struct rl_route *rr;
	struct rl_conf *rc;
	size_t i, used = 0, fid = filter_id(&ratelimit_filter);
	const struct rl_sect *rs = conf_sect(c, fid);
	char name[96];

	*fconf = NULL;
	for (i = 0; i < c->routes.n; i++) {
		rr = conf_route_keys(&c->routes.v[i], fid);
		used += rr->n_rate_limits;
		if (rr->n_rate_limits > RL_MAX_PER_ROUTE) {
			if (role == RL_ANSWER)      /* one message, from the keys' owner */
				conf_err(ctx, NULL, "routes[%zu]: at most %d rate limits per route", i,
				    RL_MAX_PER_ROUTE);
			return -1;
		}
	}
	/* The revocation check rides on RL_USER's store operation; the jwt filter asks for it
	 * per request (r->check_revocation), and only with a redis section (jwt.revocation
	 * needs one). Which routes it asks on is jwt's business, so with Redis every route's
	 * chain has RL_USER, and a request that neither is limited nor asks passes it at once. */
	if (used == 0 && !(role == RL_USER && c->redis.enabled))
		return 0;                    /* off: no route is limited, nothing to revoke */
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		goto oom;
	rc->role = role;
	rc->fid = fid;
	rc->cid = filter_id(&ratelimit_client_filter);
	rc->uid = filter_id(&ratelimit_user_filter);
	rc->fmt = rs->rate_limit_headers;
	rc->revocation = role == RL_USER && c->redis.enabled;
	rc->on_error = c->redis.on_error;
	rc->n = rs->rate_limits.n;
	rc->pol = calloc(rc->n ? rc->n : 1, sizeof(*rc->pol));
	rc->nroutes = c->routes.n;
	rc->anon = calloc(rc->nroutes ? rc->nroutes : 1, 1);
	if (rc->pol == NULL || rc->anon == NULL)
		goto oom;
	for (i = 0; i < rc->nroutes; i++)
		rc->anon[i] = !jwt_route_verifies(&c->routes.v[i]);
	for (i = 0; i < rc->n; i++) {
		const struct rl_policy *p = &rs->rate_limits.v[i];
		struct rl_pol *q = &rc->pol[i];
		size_t nl = strlen(p->name);
		q->p = p;
		q->mode = rl_mode_for(p->limit);
		q->plen = 9 + nl + 2;
		q->prefix = malloc(q->plen + 1);
		rl_d8name(p->limit, p->window_ms, name, sizeof(name));
		q->d8name = strdup(name);
		if (q->prefix == NULL || q->d8name == NULL)
			goto oom;
		memcpy(q->prefix, "visor:rl:", 9);
		memcpy(q->prefix + 9, p->name, nl);
		q->prefix[9 + nl] = ':';
		q->prefix[9 + nl + 1] = '{';
		q->prefix[q->plen] = '\0';
	}
	*fconf = rc;
	return 0;
oom:
	return conf_build_oom(ctx, rl_conf_free, rc, "rate limits");
}

static int
rl_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	(void)sect;
	return rl_build(ctx, c, RL_ANSWER, fconf);
}

static int
rl_client_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	(void)sect;
	return rl_build(ctx, c, RL_CLIENT, fconf);
}

static int
rl_user_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	(void)sect;
	return rl_build(ctx, c, RL_USER, fconf);
}

/* A row is in a route's chain when the route has a policy it evaluates (RL_ANSWER: any
 * policy), and RL_USER also on every route when the revocation check may be asked for. */
static int
rl_route_wants(const struct conf *c, const struct conf_route *cr, const void *rkeys,
    const void *fconf)
{
	const struct rl_conf *rc = fconf;
	const struct rl_route *rr;
	size_t i;

	(void)c;
	(void)rkeys;                         /* the row's own block; the policies are in fid's */
	if (cr == NULL || rc == NULL)
		return 0;
	if (rc->revocation)
		return 1;
	rr = conf_route_keys(cr, rc->fid);
	for (i = 0; i < rr->n_rate_limits; i++)
		if (rr->rate_limits[i] < rc->n && rl_role_has(rc, (size_t)(cr - c->routes.v),
		    rc->pol[rr->rate_limits[i]].p))
			return 1;
	return 0;
}

/* ---- the request ------------------------------------------------------------------------------ */

/* The state of row `id` for this request, NULL when the row is not in its chain (or, for
 * RL_ANSWER, which keeps none). */
static struct rl_state *
rl_row(struct req *r, size_t id)
{
	return r->fstate[id];
}

/* Whether a row of this module made the answer (429, the revoked token's 401): such an
 * answer is not a failure that `count: failures` policies record. */
static int
rl_answered(struct req *r, const struct rl_conf *rc)
{
	const struct rl_state *c = rl_row(r, rc->cid), *u = rl_row(r, rc->uid);

	return (c != NULL && c->refused) || (u != NULL && (u->refused || u->revoked));
}

static enum verdict
rl_refuse(struct req *r)
{
	METRIC_INC(filter_metrics(r), rate_limited);
	req_respond(r, 429, NULL);
	r->log_reason = "rate limit";
	return V_RESPOND;
}

/* The store answered. RL_CLIENT only records the verdict (RL_ANSWER acts on it, after cors);
 * RL_USER acts at once. */
static enum verdict
rl_decide(struct rl_state *st, int role)
{
	struct req *r = st->w.r;

	if (st->q.revoked) {
		st->revoked = 1;
		if (r->refuse_token)       /* set by whoever accepted the token */
			r->refuse_token(r, JWT_E_REVOKED);
		else
			req_respond(r, 401, NULL);
		return V_RESPOND;
	}
	st->wall_ms = wall_ms();
	if (st->q.n > 0) {
		st->checked = 1;
		st->best = rl_pick(st->lim, st->q.n);
	}
	if (!st->q.admitted) {
		st->refused = 1;
		if (role == RL_USER)
			return rl_refuse(r);
	}
	return V_CONTINUE;
}

static enum verdict
rl_unavailable(struct rl_state *st, int role)
{
	st->unavailable = 1;
	return role == RL_USER ? filter_store_unavailable(st->w.r) : V_CONTINUE;
}

static void
rl_on_store_client(void *arg, enum store_res res)
{
	struct rl_state *st = arg;

	filter_wait_resume(&st->w, res == STORE_OK ? rl_decide(st, RL_CLIENT) :
	    rl_unavailable(st, RL_CLIENT));
}

static void
rl_on_store_user(void *arg, enum store_res res)
{
	struct rl_state *st = arg;

	filter_wait_resume(&st->w, res == STORE_OK ? rl_decide(st, RL_USER) :
	    rl_unavailable(st, RL_USER));
}

/* A CORS preflight: answered by cors before anything that limits (a browser sends one ahead
 * of the real request, which is counted), as the cors package mounted first in Express does. */
static int
rl_preflight(struct req *r)
{
	return r->h.method == HTTP_OPTIONS &&
	    hdrs_getn(&r->h.hdrs, "access-control-request-method", 29) != NULL &&
	    hdrs_getn(&r->h.hdrs, "origin", 6) != NULL;
}

/* RL_CLIENT and RL_USER: the row's policies of the route (and, for RL_USER, the revocation
 * check) in one store operation. */
static enum verdict
rl_check(struct req *r, const struct rl_conf *rc, struct rl_state *st)
{
	const struct rl_route *rr = r->route ? conf_route_keys(r->route->cr, rc->fid) : NULL;
	char ipk[INET6_ADDRSTRLEN + 8];
	size_t ipl, i, j, n = 0, nr;
	int revo;

	st->w.r = r;
	if (rr == NULL)
		return V_CONTINUE;
	nr = MIN(rr->n_rate_limits, RL_MAX_PER_ROUTE);
	revo = rc->revocation && r->check_revocation;
	if (nr == 0 && !revo)
		return V_CONTINUE;
	if (rc->role == RL_CLIENT && rl_preflight(r))
		return V_CONTINUE;
	ipl = store_ip_key(r->ip_family, r->ip_bin, r->ip, ipk, sizeof(ipk));
	if (ipl == 0)
		return V_ERROR;
	if (nr > 0) {
		st->lim = arena_zalloc(&r->a, nr * sizeof(*st->lim));
		st->pol = arena_zalloc(&r->a, nr * sizeof(*st->pol));
		st->comp = arena_zalloc(&r->a, nr * sizeof(*st->comp));
		st->clen = arena_zalloc(&r->a, nr * sizeof(*st->clen));
		if (!st->lim || !st->pol || !st->comp || !st->clen)
			return V_ERROR;
	}
	for (i = 0; i < nr; i++) {
		size_t idx = rr->rate_limits[i], cl = 0;
		const struct rl_pol *p;
		const char *comp;
		char *key;
		if (idx >= rc->n || !rl_role_has(rc, r->route->idx, rc->pol[idx].p))
			continue;
		p = &rc->pol[idx];
		for (j = 0; j < n && st->pol[j] != p; j++)
			;
		if (j < n)
			continue;                /* the same policy twice counts once */
		comp = rl_client(r, p->p, ipk, ipl, &cl);
		if (comp == NULL)
			return V_ERROR;
		if (comp == ipk && (comp = arena_strndup(&r->a, ipk, ipl)) == NULL)
			return V_ERROR;
		/* visor:rl:<policy>:{<client>}: a client's policies share a Redis Cluster slot,
		 * so its check is one atomic script call (docs/rate-limits.md, key layout) */
		key = arena_alloc(&r->a, p->plen + cl + 2);
		if (key == NULL)
			return V_ERROR;
		memcpy(key, p->prefix, p->plen);
		memcpy(key + p->plen, comp, cl);
		key[p->plen + cl] = '}';
		key[p->plen + cl + 1] = '\0';
		st->pol[n] = p;
		st->comp[n] = comp;
		st->clen[n] = cl;
		st->lim[n].key = key;
		st->lim[n].klen = p->plen + cl + 1;
		st->lim[n].limit = p->p->limit;
		st->lim[n].window_ms = p->p->window_ms;
		st->lim[n].mode = p->mode;
		st->lim[n].check_only = p->p->count == RLC_FAILURES;
		n++;
	}
	st->q.lim = st->lim;
	st->q.n = n;
	if (revo) {
		st->q.revocation = 1;
		if (r->jti && r->jti[0]) {
			st->q.jti = arena_printf(&r->a, "visor:revoked:%s", r->jti);
			if (st->q.jti == NULL)
				return V_ERROR;
			st->q.jti_len = strlen(st->q.jti);
		}
		if (r->user && r->user[0]) {
			st->q.sub = arena_printf(&r->a, "visor:revoked-before:%s", r->user);
			if (st->q.sub == NULL)
				return V_ERROR;
			st->q.sub_len = strlen(st->q.sub);
		}
		st->q.iat = r->iat;
		if (st->q.jti == NULL && st->q.sub == NULL)
			st->q.revocation = 0;
	}
	if (n == 0 && !st->q.revocation)
		return V_CONTINUE;
	switch (store_rl(req_worker(r), &st->q, rc->role == RL_USER ? rl_on_store_user :
	    rl_on_store_client, st, &st->w.op)) {
	case STORE_PENDING:
		return V_SUSPEND;
	case STORE_OK:
		return rl_decide(st, rc->role);
	case STORE_UNAVAILABLE:
	default:
		return rl_unavailable(st, rc->role);
	}
}

static enum verdict
rl_on_request(struct req *r, const void *fconf, void *state)
{
	return rl_check(r, fconf, state);
}

/* RL_ANSWER: the verdict RL_CLIENT recorded, now that cors has seen the request. */
static enum verdict
rl_answer_on_request(struct req *r, const void *fconf, void *state)
{
	const struct rl_conf *rc = fconf;
	const struct rl_state *c = rl_row(r, rc->cid);

	(void)state;
	if (c == NULL)
		return V_CONTINUE;
	if (c->refused)
		return rl_refuse(r);
	if (c->unavailable)
		return filter_store_unavailable(r);   /* open: no limits, no headers */
	return V_CONTINUE;
}

/* RL_ANSWER, on the way back: one report per answer, of the most restrictive policy that
 * either check evaluated (a refusing one first), with Retry-After on visor's own 429. */
static enum verdict
rl_answer_on_response(struct req *r, const void *fconf, void *state)
{
	const struct rl_conf *rc = fconf;
	const struct rl_state *rows[2] = { rl_row(r, rc->cid), rl_row(r, rc->uid) }, *from[2], *st;
	struct store_limit two[2];
	struct rl_hv hv[4];
	struct rl_info in;
	const struct store_limit *l;
	int i, k;
	size_t n = 0;
	char ra[24];

	(void)state;
	for (i = 0; i < 2; i++)
		if (rows[i] != NULL && rows[i]->checked && rows[i]->q.n > 0) {
			from[n] = rows[i];
			two[n++] = rows[i]->lim[rows[i]->best];
		}
	if (n == 0)
		return V_CONTINUE;
	st = from[rl_pick(two, n)];
	l = &st->lim[st->best];
	in.limit = l->limit;
	in.window_ms = l->window_ms;
	in.remaining = l->remaining;
	in.reset_ms = l->reset_ms;
	in.wall_ms = st->wall_ms;
	in.d8name = st->pol[st->best]->d8name;
	in.key = st->comp[st->best];
	in.klen = st->clen[st->best];
	k = rl_format(rc->fmt, &in, hv);
	if (k > 0) {
		/* one report per answer: the upstream's own copies (its express-rate-limit, say)
		 * go, whatever their format, and visor's follow in express-rate-limit's order */
		for (i = 0; i < (int)ARRAY_LEN(rl_names); i++)
			hdrs_del(&r->out, rl_names[i]);
	}
	for (i = 0; i < k; i++) {
		char *v = arena_strndup(&r->a, hv[i].val, strlen(hv[i].val));
		if (v == NULL || hdrs_add(&r->a, &r->out, hv[i].name, strlen(hv[i].name), v,
		    strlen(v)) < 0)
			return V_ERROR;
	}
	if (st->refused && r->edge && r->status == 429) {
		snprintf(ra, sizeof(ra), "%lld", (long long)rl_secs(l->reset_ms));
		hdrs_sets(&r->a, &r->out, "Retry-After", ra);
	}
	return V_CONTINUE;
}

/* RL_CLIENT and RL_USER: a `count: failures` policy records the failure once the answer is
 * known — a 401 or a CORS 403 included, not this module's own refusals. */
static void
rl_on_done(struct req *r, const void *fconf, void *state)
{
	struct rl_state *st = state;
	size_t i;

	if (!st->checked || r->status < 400 || rl_answered(r, fconf))
		return;
	for (i = 0; i < st->q.n; i++)
		if (st->lim[i].check_only)
			store_rl_hit(req_worker(r), &st->lim[i]);
}

const struct filter ratelimit_client_filter = {
	.name = "rl-client", .state_size = sizeof(struct rl_state),
	.conf_init = rl_client_conf_init, .conf_free = rl_conf_free,
	.route_wants = rl_route_wants,
	.on_request = rl_on_request, .on_done = rl_on_done, .on_abort = filter_wait_abort,
};

const struct filter ratelimit_filter = {
	.name = "rl",
	/* configuration: the module's keys */
	.conf_keys = &s_top, .conf_size = sizeof(struct rl_sect), .route_keys = &s_route,
	.route_size = sizeof(struct rl_route), .conf_lint = rl_lint, .conf_init = rl_conf_init,
	.conf_free = rl_conf_free, .route_wants = rl_route_wants,
	/* request */
	.on_request = rl_answer_on_request, .on_response = rl_answer_on_response,
};

const struct filter ratelimit_user_filter = {
	.name = "rl-user", .state_size = sizeof(struct rl_state),
	.conf_init = rl_user_conf_init, .conf_free = rl_conf_free,
	.route_wants = rl_route_wants,
	.on_request = rl_on_request, .on_done = rl_on_done, .on_abort = filter_wait_abort,
};
