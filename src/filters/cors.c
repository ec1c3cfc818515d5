/* SPDX-License-Identifier: MIT
 * cors — the CORS allowlist (docs/cors.md), as the Fetch standard expects a
 * server to behave. Off when the section is absent (conf_init leaves fconf NULL): then no
 * CORS header is ever sent, and the core still strips the upstream's Access-Control-*.
 *
 * Request phase (on_request), for a request with exactly one Origin header:
 *   - allowed origin, OPTIONS with Access-Control-Request-Method: a preflight, answered here
 *     with 204 (method and headers checked, 403 without Access-Control-* when either is not
 *     listed); it never reaches jwt or the upstream (r->cors_preflight);
 *   - allowed origin, anything else: forwarded; the answer gets the CORS headers;
 *   - same origin (Origin is https://<Host>): not cross-origin, forwarded untouched;
 *   - any other origin (or a malformed one, or two Origin headers): 403 (reject) or
 *     forwarded without CORS headers (omit).
 * Response phase (on_response, also on edge answers made after this filter: 401, 429, 502)
 * adds the headers the request-phase decision calls for, and `Vary: Origin` on every answer:
 * with an allowlist, every answer's headers depend on Origin (Fetch, "CORS protocol and HTTP
 * caches"), including the answers to requests without one.
 *
 * Never sends "*" (so never "*" with credentials); Access-Control-Allow-Origin is the Origin
 * exactly as the browser sent it. Per request: no allocation but the Vary merge (arena).
 * Owns the `cors` section (its keys, the origin syntax check, the lint's CORS rules).
 */
#include "filters/cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "core/log.h"
#include "http/filter.h"
#include "http/http.h"
#include "http/req.h"

/* ---- origins ----------------------------------------------------------------------------- */

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

long
cors_origin_normalize(const char *in, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, s, sl, ps, pe;
	unsigned long port = 0;
	int has_port = 0;

	if (outsz == 0)
		return -1;
	if (len == 4 && memcmp(in, "null", 4) == 0) {
		if (outsz < 5)
			return -1;
		memcpy(out, "null", 5);
		return 4;
	}
	/* scheme */
	if (len == 0 || !is_alpha((unsigned char)in[0]))
		return -1;
	while (i < len && (is_alpha((unsigned char)in[i]) || is_digit((unsigned char)in[i]) ||
	    in[i] == '+' || in[i] == '-' || in[i] == '.'))
		i++;
	if (len - i < 3 || memcmp(in + i, "://", 3) != 0)
		return -1;
	if (i + 3 >= outsz)
		return -1;
	for (s = 0; s < i; s++)
		out[o++] = ascii_lower(in[s]);
	sl = i;
	memcpy(out + o, "://", 3);
	o += 3;
	i += 3;
	/* host */
	s = i;
	if (i < len && in[i] == '[') {
		i++;
		while (i < len && (is_hex((unsigned char)in[i]) || in[i] == ':' || in[i] == '.'))
			i++;
		if (i >= len || in[i] != ']' || i == s + 1)
			return -1;
		i++;
	} else {
		while (i < len && (is_alpha((unsigned char)in[i]) || is_digit((unsigned char)in[i]) ||
		    in[i] == '-' || in[i] == '.' || in[i] == '_' || in[i] == '~'))
			i++;
		if (i == s)
			return -1;
	}
	if (o + (i - s) >= outsz)
		return -1;
	for (; s < i; s++)
		out[o++] = ascii_lower(in[s]);
	/* port */
	if (i < len) {
		if (in[i] != ':')
			return -1;
		i++;
		ps = i;
		while (i < len && in[i] == '0')
			i++;
		pe = i;
		while (i < len && is_digit((unsigned char)in[i])) {
			if (i - pe >= 5)
				return -1;
			port = port * 10 + (unsigned long)(in[i] - '0');
			i++;
		}
		if (i != len || port > 65535)
			return -1;
		has_port = i > ps;         /* ":" alone means the default port (URL standard) */
	}
	if (has_port) {
		long dflt = -1;
		if ((sl == 4 && memcmp(out, "http", 4) == 0) || (sl == 2 && memcmp(out, "ws", 2) == 0))
			dflt = 80;
		else if ((sl == 5 && memcmp(out, "https", 5) == 0) ||
		    (sl == 3 && memcmp(out, "wss", 3) == 0))
			dflt = 443;
		if ((long)port != dflt) {
			char pb[8];
			int n = snprintf(pb, sizeof(pb), ":%lu", port);
			if (n < 0 || o + (size_t)n >= outsz)
				return -1;
			memcpy(out + o, pb, (size_t)n);
			o += (size_t)n;
		}
	}
	out[o] = '\0';
	return (long)o;
}

/* Whether the Origin value `o` normalises to one of list[0..n). */
static int
origin_in(char *const *list, const size_t *lens, size_t n, const char *o, size_t olen)
{
	char buf[CORS_ORIGIN_MAX];
	long bl;
	size_t i;

	if (n == 0 || olen >= CORS_ORIGIN_MAX)
		return 0;
	bl = cors_origin_normalize(o, olen, buf, sizeof(buf));
	if (bl < 0)
		return 0;
	for (i = 0; i < n; i++)
		if (lens[i] == (size_t)bl && memcmp(list[i], buf, (size_t)bl) == 0)
			return 1;
	return 0;
}

int
cors_origin_allowed(const struct cors_conf *cc, const char *o, size_t olen)
{
	return cc != NULL && origin_in(cc->origins, cc->origin_lens, cc->n_origins, o, olen);
}

int
cors_ws_origin_allowed(const struct cors_conf *cc, const char *o, size_t olen)
{
	return cc != NULL && (cors_origin_allowed(cc, o, olen) ||
	    origin_in(cc->ws_origins, cc->ws_origin_lens, cc->n_ws_origins, o, olen));
}

int
cors_same_origin(const char *o, size_t olen, const char *host, size_t hlen)
{
	char self[CORS_ORIGIN_MAX], a[CORS_ORIGIN_MAX], b[CORS_ORIGIN_MAX];
	long na, nb;

	if (hlen == 0 || olen >= CORS_ORIGIN_MAX || hlen + 8 >= CORS_ORIGIN_MAX)
		return 0;
	memcpy(self, "https://", 8);
	memcpy(self + 8, host, hlen);
	na = cors_origin_normalize(self, hlen + 8, a, sizeof(a));
	nb = cors_origin_normalize(o, olen, b, sizeof(b));
	return na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0;
}

/* ---- preflight checks --------------------------------------------------------------------- */

static int
is_tchar(int c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
cors_method_allowed(const struct cors_conf *cc, const char *m, size_t mlen)
{
	static const char *const safelisted[] = { "GET", "HEAD", "POST" };
	size_t i;

	if (mlen == 0)
		return 0;
	for (i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)m[i]))
			return 0;
	for (i = 0; i < sizeof(safelisted) / sizeof(safelisted[0]); i++)
		if (strlen(safelisted[i]) == mlen && memcmp(safelisted[i], m, mlen) == 0)
			return 1;
	for (i = 0; i < cc->n_methods; i++)
		if (strlen(cc->methods[i]) == mlen && memcmp(cc->methods[i], m, mlen) == 0)
			return 1;
	return 0;
}

static int
header_allowed(const struct cors_conf *cc, const char *h, size_t n)
{
	static const char *const safelisted[] = { "accept", "accept-language", "content-language",
	    "content-type", "range" };
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)h[i]))
			return 0;
	for (i = 0; i < sizeof(safelisted) / sizeof(safelisted[0]); i++)
		if (ascii_casecmp_n(h, n, safelisted[i], strlen(safelisted[i])) == 0)
			return 1;
	for (i = 0; i < cc->n_headers; i++)
		if (ascii_casecmp_n(h, n, cc->headers[i], strlen(cc->headers[i])) == 0)
			return 1;
	return 0;
}

int
cors_header_refused(const struct cors_conf *cc, const char *list, size_t len,
    const char **name, size_t *nlen)
{
	size_t pos = 0;

	while (http_list_next(list, len, ',', &pos, name, nlen))
		if (!header_allowed(cc, *name, *nlen))
			return 1;
	return 0;
}

int
cors_headers_allowed(const struct cors_conf *cc, const char *list, size_t len)
{
	const char *t;
	size_t n;

	return !cors_header_refused(cc, list, len, &t, &n);
}

const char *const cors_expose_always[] = { "WWW-Authenticate", "Retry-After", "RateLimit",
    "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", NULL };

/* ---- configuration: the `cors` section ------------------------------------------------------ */

_Static_assert(sizeof(enum cors_onbad) == sizeof(int), "enums are stored through int *");

/* "scheme://host[:port]" exactly, or "null"; a wildcard is kept as text (it never matches,
 * and the lint warns). */
static int
check_origin(struct cparse *p, const struct ynode *v, const char *s)
{
	const char *h, *e;
	int64_t port;

	if (strcmp(s, "null") == 0 || strcmp(s, "*") == 0 || strstr(s, "*.") != NULL)
		return 0;
	h = s;
	if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z')))
		goto bad;
	while ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
	    *h == '+' || *h == '-' || *h == '.')
		h++;
	if (strncmp(h, "://", 3) != 0)
		goto bad;
	h += 3;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL || e == h + 1)
			goto bad;
		for (h++; h < e; h++)
			if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f') ||
			    (*h >= 'A' && *h <= 'F') || *h == ':' || *h == '.'))
				goto bad;
		h = e + 1;
	} else {
		e = h;
		while ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '-' || *h == '.' || *h == '_')
			h++;
		if (h == e)
			goto bad;
	}
	if (*h == ':') {
		e = h + 1;
		h = e + strspn(e, "0123456789");
		if (h == e || h - e > 5 || (*h != '\0' && *h != '/'))
			goto bad;
		char digits[8];
		memcpy(digits, e, (size_t)(h - e));
		digits[h - e] = '\0';
		if (units_int(digits, 1, 65535, &port, NULL) < 0)
			goto bad;
	}
	if (*h == '/') {
		conf_err(p->ctx, v, "%s: '%s' must not have a path (an origin is "
		    "scheme://host[:port], without a trailing '/')", p->path, conf_quote(p, s));
		return -1;
	}
	if (*h == '\0')
		return 0;
bad:
	conf_err(p->ctx, v, "%s: '%s' is not an origin (expected scheme://host[:port] or null)",
	    p->path, conf_quote(p, s));
	return -1;
}

static const struct cenum e_onbad[] = { { "reject", CORS_REJECT }, { "omit", CORS_OMIT },
    { NULL, 0 } };

static const struct ckey k_cors[] = {
	{ .name = "origins", .type = KT_STRS, .off = offsetof(struct cors_sect, origins),
	  .check = check_origin, .flags = CK_REQUIRED, .tname = "list of origins",
	  .doc = "Allowed origins, exactly scheme://host[:port] (or null); compared after "
	    "lower-casing and dropping a default port. No wildcards." },
	{ .name = "credentials", .type = KT_BOOL, .off = offsetof(struct cors_sect, credentials),
	  .def = "false", .doc = "Sends Access-Control-Allow-Credentials: true." },
	{ .name = "methods", .type = KT_STRS, .off = offsetof(struct cors_sect, methods),
	  .def = "[GET, POST, PUT, PATCH, DELETE]", .flags = CK_UPPER | CK_TOKEN,
	  .tname = "list of methods", .doc = "Methods a preflight may ask for." },
	{ .name = "headers", .type = KT_STRS, .off = offsetof(struct cors_sect, headers),
	  .def = "[Content-Type, Authorization]", .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Request headers a preflight may ask for." },
	{ .name = "expose", .type = KT_STRS, .off = offsetof(struct cors_sect, expose),
	  .def = "[X-Request-Id]", .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Access-Control-Expose-Headers." },
	{ .name = "max_age", .type = KT_DUR_S, .off = offsetof(struct cors_sect, max_age),
	  .def = "86400", .min = 0, .max = INT64_MAX,
	  .doc = "Access-Control-Max-Age, in seconds." },
	{ .name = "on_disallowed", .type = KT_ENUM, .off = offsetof(struct cors_sect,
	    on_disallowed),
	  .def = "reject", .arg = e_onbad,
	  .doc = "A request from an origin not listed: reject = 403; omit = forwarded without "
	    "CORS headers." },
};
static const struct csect s_cors = CONF_SECT(k_cors, NULL);


static const struct ckey k_websocket[] = {
	{ .name = "origins", .type = KT_STRS, .off = offsetof(struct cors_sect, ws_origins),
	  .check = check_origin, .def = "[]", .tname = "list of origins",
	  .doc = "Origins allowed to open a WebSocket, on top of cors.origins and the request's "
	    "own origin; any other Origin gets 403." },
};
static const struct csect s_websocket = CONF_SECT(k_websocket, NULL);

static const struct ckey k_top[] = {
	{ .name = "cors", .type = KT_SECTION, .arg = &s_cors, .flags = CK_OPTIONAL,
	  .en_off = offsetof(struct cors_sect, enabled),
	  .doc = "CORS allowlist; absent: no CORS headers, cross-origin requests pass. It is also "
	    "the WebSocket Origin check: an upgrade from an origin not allowed gets 403, whatever "
	    "on_disallowed says." },
	{ .name = "websocket", .type = KT_SECTION, .arg = &s_websocket, .flags = CK_OPTIONAL,
	  .en_off = offsetof(struct cors_sect, ws_enabled),
	  .doc = "WebSocket Origin check (browsers apply no CORS to WebSockets); present with or "
	    "without cors." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

static void
cors_lint(struct lint *l, const void *sect)
{
	const struct cors_sect *cs = sect;
	const struct ynode *list, *at;
	const char *o, *h, *e;
	size_t i;

	if (!cs->enabled)
		return;
	list = lint_node(l, "cors.origins");
	for (i = 0; i < cs->origins.n; i++) {
		o = cs->origins.v[i];
		at = lint_item(list, i);
		if (strchr(o, '*') != NULL) {
			conf_warn(l->ctx, at, "cors.origins[%zu]: '%s' is a wildcard; visor compares "
			    "origins exactly, so it matches nothing, and a wildcard would trust every "
			    "site or subdomain — list each allowed origin exactly, e.g. "
			    "https://app.example.com", i, lint_quote(l, o));
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
		if (lint_loopback_host(h, (size_t)(e - h)))
			continue;
		conf_warn(l->ctx, at, "cors.origins[%zu]: '%s' is plain http; anyone on the "
		    "network can inject script into that origin and read your API through it — "
		    "use https://%s", i, lint_quote(l, o), lint_quote(l, h));
	}
	if (cs->credentials && cs->origins.n == 0)
		conf_warn(l->ctx, lint_first(lint_node(l, "cors.credentials"), lint_section(l,
		    "cors")),
		    "cors.credentials is true with an empty cors.origins; credentials need an "
		    "allowlist of exact origins — list them in cors.origins, or set "
		    "cors.credentials: false");
}


/* ---- the built allowlist ------------------------------------------------------------------ */

/* "a, b, c" from a list, malloc'd; NULL with *len 0 when the list is empty. -1 on oom. */
static int
join(const struct conf_strs *s, char **out, size_t *len)
{
	size_t i, n = 0;
	char *p;

	*out = NULL;
	*len = 0;
	if (s->n == 0)
		return 0;
	for (i = 0; i < s->n; i++)
		n += strlen(s->v[i]) + 2;
	if ((p = malloc(n + 1)) == NULL)
		return -1;
	n = 0;
	for (i = 0; i < s->n; i++) {
		size_t l = strlen(s->v[i]);
		if (i) {
			memcpy(p + n, ", ", 2);
			n += 2;
		}
		memcpy(p + n, s->v[i], l);
		n += l;
	}
	p[n] = '\0';
	*out = p;
	*len = n;
	return 0;
}

static int
dup_list(const struct conf_strs *s, char ***out, size_t *n)
{
	size_t i;

	*n = 0;
	*out = calloc(s->n ? s->n : 1, sizeof(char *));
	if (*out == NULL)
		return -1;
	for (i = 0; i < s->n; i++) {
		if (((*out)[i] = strdup(s->v[i])) == NULL)
			return -1;
		*n = i + 1;
	}
	return 0;
}

/* The normalised allowlist of a list of origins (unusable entries left out). 0 or -1. */
static int
origins_new(const struct conf_strs *s, char ***list, size_t **lens, size_t *n)
{
	char buf[CORS_ORIGIN_MAX];
	size_t i;
	long bl;

	*n = 0;
	*list = calloc(s->n ? s->n : 1, sizeof(char *));
	*lens = calloc(s->n ? s->n : 1, sizeof(size_t));
	if (*list == NULL || *lens == NULL)
		return -1;
	for (i = 0; i < s->n; i++) {
		bl = cors_origin_normalize(s->v[i], strlen(s->v[i]), buf, sizeof(buf));
		if (bl < 0)
			continue;      /* "*", "*.x": never matches (the lint warns) */
		if (((*list)[*n] = strdup(buf)) == NULL)
			return -1;
		(*lens)[(*n)++] = (size_t)bl;
	}
	return 0;
}

struct cors_conf *
cors_conf_new(const struct cors_sect *cs)
{
	struct cors_conf *cc;
	long n;

	if ((cc = calloc(1, sizeof(*cc))) == NULL)
		return NULL;
	cc->cors_on = cs->enabled;
	if (origins_new(&cs->origins, &cc->origins, &cc->origin_lens, &cc->n_origins) < 0 ||
	    origins_new(&cs->ws_origins, &cc->ws_origins, &cc->ws_origin_lens,
	    &cc->n_ws_origins) < 0)
		goto fail;
	if (dup_list(&cs->methods, &cc->methods, &cc->n_methods) < 0 ||
	    dup_list(&cs->headers, &cc->headers, &cc->n_headers) < 0 ||
	    join(&cs->methods, &cc->allow_methods, &cc->allow_methods_len) < 0 ||
	    join(&cs->headers, &cc->allow_headers, &cc->allow_headers_len) < 0 ||
	    join(&cs->expose, &cc->expose, &cc->expose_len) < 0)
		goto fail;
	cc->credentials = cs->credentials;
	cc->omit = cs->on_disallowed == CORS_OMIT;
	n = snprintf(cc->max_age, sizeof(cc->max_age), "%lld", (long long)cs->max_age);
	cc->max_age_len = n > 0 ? (size_t)n : 0;
	return cc;
fail:
	cors_conf_free(cc);
	return NULL;
}

void
cors_conf_free(struct cors_conf *cc)
{
	if (cc == NULL)
		return;
	strv_free(cc->origins, cc->n_origins);
	free(cc->origin_lens);
	strv_free(cc->ws_origins, cc->n_ws_origins);
	free(cc->ws_origin_lens);
	strv_free(cc->methods, cc->n_methods);
	strv_free(cc->headers, cc->n_headers);
	free(cc->allow_methods);
	free(cc->allow_headers);
	free(cc->expose);
	free(cc);
}

/* ---- the filter --------------------------------------------------------------------------- */

enum cors_kind {
	CORS_K_UNSET = 0,          /* on_request did not run: add nothing */
	CORS_K_NO_ORIGIN,          /* not a CORS request */
	CORS_K_SAME_ORIGIN,        /* Origin is the request's own https origin */
	CORS_K_ALLOWED,            /* actual request from a listed origin */
	CORS_K_PREFLIGHT,          /* answered 204 here */
	CORS_K_PREFLIGHT_DENIED,   /* answered 403 here: method or header not listed */
	CORS_K_REJECTED,           /* answered 403 here: origin not listed */
	CORS_K_OMITTED,            /* forwarded without CORS headers */
};

struct cors_state {
	enum cors_kind kind;
	const char    *origin;     /* the Origin value as received (request head memory) */
	size_t         olen;
};

static const char VARY_ORIGIN[] = "Origin";
static const char VARY_PREFLIGHT[] =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

static int
cors_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct cors_sect *cs = sect;

	(void)c;
	*fconf = NULL;
	if (!cs->enabled && !cs->ws_enabled)
		return 0;
	if ((*fconf = cors_conf_new(cs)) == NULL) {
		conf_err(ctx, NULL, "cors: out of memory");
		return -1;
	}
	((struct cors_conf *)*fconf)->fid = filter_id(&cors_filter);
	return 0;
}

static void
cors_conf_free_cb(void *fconf)
{
	cors_conf_free(fconf);
}

/* Adds `toks` (joined: the same names ", "-separated) to the answer's Vary, keeping what the
 * upstream sent, with no duplicate and nothing added to "Vary: *". Several Vary lines are
 * merged into one when something has to be appended (the merged value lives in the arena). */
static void
vary_add(struct req *r, const char *const *toks, size_t ntoks, const char *joined,
    size_t joinedlen)
{
	struct hdrs *o = &r->out;
	uint32_t i;
	size_t t, total = 0, n = 0;
	unsigned missing = 0;
	int any = 0;
	char *v;

	for (i = 0; i < o->n; i++)
		if (ascii_casecmp_n(o->v[i].name, o->v[i].nlen, "vary", 4) == 0) {
			any = 1;
			if (http_list_has(o->v[i].val, o->v[i].vlen, "*"))
				return;
			total += o->v[i].vlen + 2;
		}
	if (!any) {
		hdrs_put(&r->a, o, "Vary", joined, joinedlen);
		return;
	}
	for (t = 0; t < ntoks; t++) {
		int found = 0;
		for (i = 0; i < o->n && !found; i++)
			if (ascii_casecmp_n(o->v[i].name, o->v[i].nlen, "vary", 4) == 0)
				found = http_list_has(o->v[i].val, o->v[i].vlen, toks[t]);
		if (!found)
			missing |= 1u << t;
	}
	if (missing == 0)
		return;
	if ((v = arena_alloc(&r->a, total + joinedlen + 2)) == NULL)
		return;
	for (i = 0; i < o->n; i++)
		if (ascii_casecmp_n(o->v[i].name, o->v[i].nlen, "vary", 4) == 0 &&
		    o->v[i].vlen > 0) {
			memcpy(v + n, o->v[i].val, o->v[i].vlen);
			n += o->v[i].vlen;
			memcpy(v + n, ", ", 2);
			n += 2;
		}
	for (t = 0; t < ntoks; t++)
		if (missing & (1u << t)) {
			size_t l = strlen(toks[t]);
			memcpy(v + n, toks[t], l);
			n += l;
			memcpy(v + n, ", ", 2);
			n += 2;
		}
	n -= 2;                    /* the last ", " */
	v[n] = '\0';
	hdrs_put(&r->a, o, "Vary", v, n);
}

static const char *const VARY_ORIGIN_T[] = { "Origin" };
static const char *const VARY_PREFLIGHT_T[] = { "Origin", "Access-Control-Request-Method",
    "Access-Control-Request-Headers" };
#define VARY_ORIGIN_ADD(r) vary_add(r, VARY_ORIGIN_T, 1, VARY_ORIGIN, sizeof(VARY_ORIGIN) - 1)
#define VARY_PREFLIGHT_ADD(r) vary_add(r, VARY_PREFLIGHT_T, 3, VARY_PREFLIGHT, \
    sizeof(VARY_PREFLIGHT) - 1)

/* The Origin of the request: 1 with it in *o / *ol when there is exactly one, 0 when there
 * is none, -1 when there are several (never allowed). */
static int
one_origin(const struct req *r, const char **o, size_t *ol)
{
	const struct hdrs *h = &r->h.hdrs;
	int n = 0;
	uint32_t i;

	for (i = 0; i < h->n; i++)
		if (ascii_casecmp_n(h->v[i].name, h->v[i].nlen, "origin", 6) == 0) {
			*o = h->v[i].val;
			*ol = h->v[i].vlen;
			n++;
		}
	return n > 1 ? -1 : n;
}

static int
same_origin(const struct req *r, const char *o, size_t ol)
{
	size_t hl = 0;
	const char *host = req_header(r, "host", &hl);

	return host != NULL && cors_same_origin(o, ol, host, hl);
}

/* One warning per refused name per minute per worker: the browser only says "CORS error",
 * the operator needs to know which header (or method) and which key allows it. */
struct cors_wstate {
	struct {
		char    name[64];
		int64_t at;
	}       seen[32];
	size_t  next;
};

#define CORS_WARN_EVERY_MS 60000

static void
warn_refused(struct req *r, const struct cors_conf *cc, const char *what, const char *key,
    const char *name, size_t nlen, const char *origin, size_t olen)
{
	struct cors_wstate *ws = filter_wstate(r, cc->fid);
	char nm[64], og[96];
	int64_t now = now_ms();
	size_t i;

	if (ws == NULL)
		return;
	if (nlen >= sizeof(nm))
		nlen = sizeof(nm) - 1;
	memcpy(nm, name, nlen);
	nm[nlen] = '\0';
	for (i = 0; i < ARRAY_LEN(ws->seen); i++)
		if (ascii_casecmp(ws->seen[i].name, nm) == 0) {
			if (now - ws->seen[i].at < CORS_WARN_EVERY_MS)
				return;
			break;
		}
	if (i == ARRAY_LEN(ws->seen)) {
		i = ws->next;
		ws->next = (ws->next + 1) % ARRAY_LEN(ws->seen);
		memcpy(ws->seen[i].name, nm, nlen + 1);
	}
	ws->seen[i].at = now;
	memcpy(og, origin, MIN(olen, sizeof(og) - 1));
	og[MIN(olen, sizeof(og) - 1)] = '\0';
	log_warn("cors: a preflight from %s asked for the %s '%s', which %s does not list, so "
	    "the browser reports a CORS error; add it to %s to allow it (said once a minute)",
	    str_printable(og, sizeof(og), og), what, str_printable(nm, sizeof(nm), nm), key, key);
}

static int
cors_worker_init(struct worker *w, void **wstate)
{
	(void)w;
	*wstate = calloc(1, sizeof(struct cors_wstate));
	return *wstate != NULL ? 0 : -1;
}

static void
cors_worker_fini(struct worker *w, void *wstate)
{
	(void)w;
	free(wstate);
}

static enum verdict
cors_on_request(struct req *r, const void *fconf, void *state)
{
	const struct cors_conf *cc = fconf;
	struct cors_state *st = state;
	const struct hdr *acrm;
	const struct hdrs *h = &r->h.hdrs;
	const char *origin = NULL, *name;
	size_t olen = 0, nlen;
	int k;
	uint32_t i;

	k = one_origin(r, &origin, &olen);
	/* Browsers apply no CORS to WebSockets: the upgrade carries the user's cookies from any
	 * page, so the allowlist is the only Origin check there is (CSWSH). No Origin: not a
	 * browser. */
	if (r->upgrade && k != 0 && (k < 0 || (!cors_ws_origin_allowed(cc, origin, olen) &&
	    !same_origin(r, origin, olen)))) {
		st->kind = CORS_K_REJECTED;
		r->log_reason = "cors: WebSocket from an origin not allowed";
		req_respond(r, 403, NULL);
		return V_RESPOND;
	}
	if (r->upgrade) {
		st->kind = CORS_K_OMITTED;     /* checked above; a 101 needs no CORS header */
		return V_CONTINUE;
	}
	if (!cc->cors_on)
		return V_CONTINUE;
	if (k == 0) {
		st->kind = CORS_K_NO_ORIGIN;
		return V_CONTINUE;
	}
	if (k < 0 || !cors_origin_allowed(cc, origin, olen)) {
		if (k > 0 && same_origin(r, origin, olen)) {
			st->kind = CORS_K_SAME_ORIGIN;
			return V_CONTINUE;
		}
		if (cc->omit) {
			st->kind = CORS_K_OMITTED;
			return V_CONTINUE;
		}
		st->kind = CORS_K_REJECTED;
		r->log_reason = "cors: origin not allowed";
		req_respond(r, 403, NULL);
		return V_RESPOND;
	}
	st->origin = origin;
	st->olen = olen;
	acrm = hdrs_getn(h, "access-control-request-method", 29);
	if (r->h.method != HTTP_OPTIONS || acrm == NULL) {
		st->kind = CORS_K_ALLOWED;
		return V_CONTINUE;
	}
	/* A preflight: answered here, before any filter that wants a token. */
	r->cors_preflight = 1;
	if (!cors_method_allowed(cc, acrm->val, acrm->vlen)) {
		warn_refused(r, cc, "method", "cors.methods", acrm->val, acrm->vlen, origin, olen);
		goto denied;
	}
	for (i = 0; i < h->n; i++) {
		const struct hdr *e = &h->v[i];
		if (e->nlen == 30 &&
		    ascii_casecmp_n(e->name, e->nlen, "access-control-request-headers", 30) == 0 &&
		    cors_header_refused(cc, e->val, e->vlen, &name, &nlen)) {
			warn_refused(r, cc, "header", "cors.headers", name, nlen, origin, olen);
			goto denied;
		}
	}
	st->kind = CORS_K_PREFLIGHT;
	r->log_reason = "cors preflight";
	req_respond_body(r, 204, "application/json", "", 0);
	hdrs_del(&r->out, "content-type");   /* a 204 has no content */
	return V_RESPOND;
denied:
	st->kind = CORS_K_PREFLIGHT_DENIED;
	r->log_reason = "cors: preflight method or header not allowed";
	req_respond(r, 403, NULL);
	return V_RESPOND;
}

/* Access-Control-Expose-Headers: cors.expose, plus each header of cors_expose_always the
 * answer carries (a 401's WWW-Authenticate, a 429's Retry-After, the RateLimit headers) and
 * cors.expose does not already name. */
static void
expose_put(struct req *r, const struct cors_conf *cc)
{
	struct sbuf b = { 0 };
	size_t i;

	if (cc->expose)
		sbuf_add(&b, cc->expose, cc->expose_len);
	for (i = 0; cors_expose_always[i] != NULL; i++) {
		const char *n = cors_expose_always[i];
		if (hdrs_get(&r->out, n) == NULL ||
		    (cc->expose && http_list_has(cc->expose, cc->expose_len, n)))
			continue;
		if (b.len)
			sbuf_add(&b, ", ", 2);
		sbuf_adds(&b, n);
	}
	if (b.len && !b.oom)
		hdrs_set(&r->a, &r->out, "Access-Control-Expose-Headers", b.p, b.len);
	sbuf_fini(&b);
}

static enum verdict
cors_on_response(struct req *r, const void *fconf, void *state)
{
	const struct cors_conf *cc = fconf;
	struct cors_state *st = state;
	struct arena *a = &r->a;
	struct hdrs *o = &r->out;

	/* the plain listener only redirects to https, where CORS is answered */
	if (!cc->cors_on || !r->tls)
		return V_CONTINUE;
	if (st->kind == CORS_K_UNSET) {
		/* An answer made before the request reached this filter (400, 408, 413, 414, 431 from
		 * the core, before routing too): the page still needs to read it. */
		const char *origin = NULL;
		size_t olen = 0;
		if (one_origin(r, &origin, &olen) == 1 && cors_origin_allowed(cc, origin, olen)) {
			st->kind = CORS_K_ALLOWED;
			st->origin = origin;
			st->olen = olen;
		} else {
			st->kind = CORS_K_NO_ORIGIN;
		}
	}
	switch (st->kind) {
	case CORS_K_PREFLIGHT:
		hdrs_put(a, o, "Access-Control-Allow-Origin", st->origin, st->olen);
		if (cc->credentials)
			hdrs_put(a, o, "Access-Control-Allow-Credentials", "true", 4);
		if (cc->allow_methods)
			hdrs_put(a, o, "Access-Control-Allow-Methods", cc->allow_methods,
			    cc->allow_methods_len);
		if (cc->allow_headers)
			hdrs_put(a, o, "Access-Control-Allow-Headers", cc->allow_headers,
			    cc->allow_headers_len);
		hdrs_put(a, o, "Access-Control-Max-Age", cc->max_age, cc->max_age_len);
		VARY_PREFLIGHT_ADD(r);
		break;
	case CORS_K_PREFLIGHT_DENIED:
		VARY_PREFLIGHT_ADD(r);
		break;
	case CORS_K_ALLOWED:
		hdrs_put(a, o, "Access-Control-Allow-Origin", st->origin, st->olen);
		if (cc->credentials)
			hdrs_put(a, o, "Access-Control-Allow-Credentials", "true", 4);
		expose_put(r, cc);
		VARY_ORIGIN_ADD(r);
		break;
	default:
		VARY_ORIGIN_ADD(r);
		break;
	}
	return V_CONTINUE;
}

/* `always`: answers made before routing (the base chain) get CORS headers too. */
const struct filter cors_filter = {
	.name = "cors", .always = 1, .state_size = sizeof(struct cors_state),
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct cors_sect), .conf_lint = cors_lint,
	.conf_init = cors_conf_init, .conf_free = cors_conf_free_cb,
	/* worker */
	.worker_init = cors_worker_init, .worker_fini = cors_worker_fini,
	/* request */
	.on_request = cors_on_request, .on_response = cors_on_response,
};
