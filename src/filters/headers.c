/* SPDX-License-Identifier: MIT
 * hdrs — security headers (helmet's defaults merged key by key with `headers`) on every
 * answer, proxied or made by visor; one value each, replacing the upstream's. Headers set
 * to "" are left to the upstream. `remove_headers` are stripped from upstream answers.
 * Runs on every request, so the work is one pass over the answer's headers with lengths
 * precomputed per generation, then appends that copy nothing (values live in the conf).
 * Owns the `headers` and `remove_headers` keys, and the lint's CSP rules.
 */
#include "filters/headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "http/filter.h"
#include "http/req.h"

/* ---- configuration ------------------------------------------------------------------------ */

static const char headers_default[] =
    "{Content-Security-Policy: \"default-src 'self';base-uri 'self';font-src 'self' https: "
    "data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
    "upgrade-insecure-requests\", "
    "Cross-Origin-Opener-Policy: same-origin, "
    "Cross-Origin-Resource-Policy: same-origin, "
    "Origin-Agent-Cluster: \"?1\", "
    "Referrer-Policy: no-referrer, "
    "X-Content-Type-Options: nosniff, "
    "X-DNS-Prefetch-Control: \"off\", "
    "X-Download-Options: noopen, "
    "X-Frame-Options: SAMEORIGIN, "
    "X-Permitted-Cross-Domain-Policies: none, "
    "X-XSS-Protection: \"0\"}";

/* Headers visor owns: setting them here would break framing or another section. */
static const char *
header_owner(const char *name)
{
	static const char *const framing[] = { "Content-Length", "Transfer-Encoding",
	    "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", "Host", "Proxy-Connection",
	    "X-Request-Id", "Content-Type" };
	size_t i;

	for (i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (strcasecmp(name, framing[i]) == 0)
			return "is managed by visor";
	if (strcasecmp(name, "Strict-Transport-Security") == 0)
		return "is set by the hsts section";
	if (strncasecmp(name, "Access-Control-", 15) == 0)
		return "is set by the cors section";
	return NULL;
}

/* A header value may hold SP, HTAB, VCHAR and obs-text; never NUL, CR, LF or other CTLs. */
static int
bad_field_value(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

static void
merge_headers(struct cparse *p, const struct ynode *map)
{
	struct headers_sect *hs = p->base;
	struct conf_kvs *kv = &hs->headers;
	const struct ynode *key, *val;
	const char *owner, *s;
	size_t i, j, old;

	if (!conf_is_map(p, map, "a mapping of header names to values"))
		return;
	for (i = 0; i < map->n; i++) {
		key = map->pairs[i].key;
		val = map->pairs[i].val;
		old = conf_path_key(p, key->str);
		if (strlen(key->str) != key->len || !conf_is_token(key->str)) {
			conf_err(p->ctx, key, "%s: '%s' is not a valid header name", p->path,
			    conf_quote(p, key->str));
			goto next;
		}
		if ((owner = header_owner(key->str)) != NULL) {
			conf_err(p->ctx, key, "%s: %s %s and cannot be set here", p->path,
			    key->str, owner);
			goto next;
		}
		for (j = 0; j < i; j++)
			if (strcasecmp(map->pairs[j].key->str, key->str) == 0)
				break;
		if (j < i) {
			conf_err(p->ctx, key, "%s: header '%s' is given twice (first at line %d)",
			    p->path, key->str, map->pairs[j].key->line);
			goto next;
		}
		if (val->type != YN_SCALAR) {
			conf_err(p->ctx, val, "%s: expected a string, got %s", p->path,
			    conf_got(val));
			goto next;
		}
		s = conf_is_null(val) ? "" : val->str;
		if (bad_field_value(s, conf_is_null(val) ? 0 : val->len)) {
			conf_err(p->ctx, val, "%s: header values must not contain CR, LF, NUL or "
			    "other control characters", p->path);
			goto next;
		}
		for (j = 0; j < kv->n; j++)
			if (strcasecmp(kv->v[j].key, key->str) == 0)
				break;
		if (*s == '\0') {
			/* "" = visor does not set it (an upstream's own value passes) */
			if (j < kv->n) {
				free(kv->v[j].key);
				free(kv->v[j].val);
				memmove(&kv->v[j], &kv->v[j + 1], (kv->n - j - 1) * sizeof(kv->v[0]));
				kv->n--;
			}
			if (conf_strs_append(&hs->headers_unset, key->str) < 0)
				conf_oom(p, key);
		} else if (j < kv->n) {
			char *d = strdup(s);
			if (d == NULL) {
				conf_oom(p, val);
				goto next;
			}
			free(kv->v[j].val);
			kv->v[j].val = d;      /* the default's spelling and position stay */
		} else if (conf_kvs_append(kv, key->str, s) < 0) {
			conf_oom(p, val);
		}
next:
		conf_path_pop(p, old);
	}
}

static void
cf_headers(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct headers_sect *hs = p->base;
	struct ynode *def;

	(void)field;
	conf_kvs_free(&hs->headers);
	conf_strs_free(&hs->headers_unset);
	if ((def = conf_default_tree(p, k->def)) != NULL) {
		merge_headers(p, def);
		ynode_free(def);
	}
	if (v != NULL)
		merge_headers(p, v);
}


static void
rel_headers(const struct ckey *k, void *base)
{
	struct headers_sect *hs = base;

	(void)k;
	conf_kvs_free(&hs->headers);
	conf_strs_free(&hs->headers_unset);
}

static const struct ckey k_top[] = {
	{ .name = "headers", .type = KT_CUSTOM, .fn = cf_headers, .release = rel_headers,
	  .def = headers_default, .flags = CK_ALWAYS, .tname = "mapping name → value",
	  .defdoc = "the 11 headers listed below", .deftable = "header",
	  .doc = "Security headers set on every HTTPS answer, merged over the defaults name by "
	    "name (case-insensitive); \"\" = visor does not set it (the upstream's own passes)." },
	{ .name = "remove_headers", .type = KT_STRS, .off = offsetof(struct headers_sect,
	    remove_headers),
	  .def = "[X-Powered-By, Server]", .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Stripped from upstream answers; when given, replaces the default list." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

/* ---- lint: Content-Security-Policy ------------------------------------------------------ */

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
		    "the code that needs it)", lint_quote(l, name));
	if (csp_has(src, e, "*"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows '*', any host — "
		    "list the hosts it needs, or 'self'", lint_quote(l, name));
	/* Script directives; default-src stands for script-src when that is absent. */
	script = strcasecmp(name, "script-src") == 0 || strcasecmp(name, "script-src-elem") == 0 ||
	    strcasecmp(name, "script-src-attr") == 0 ||
	    (!has_script_src && strcasecmp(name, "default-src") == 0);
	if (!script)
		return;
	if (!csp_has_nonce(src, e, &sd) && csp_has(src, e, "'unsafe-inline'"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows 'unsafe-inline' "
		    "without a nonce or hash, so injected <script> and on* handlers run — use "
		    "nonces or hashes, or move inline scripts to files", lint_quote(l, name));
	if (sd)
		return;
	if (csp_has(src, e, "https:") || csp_has(src, e, "http:") || csp_has(src, e, "data:"))
		conf_warn(l->ctx, at, "headers.Content-Security-Policy: %s allows scripts from any "
		    "https:, http: or data: URL — list the script hosts it needs, or 'self'",
		    lint_quote(l, name));
}

static void
headers_lint(struct lint *l, const void *sect)
{
	const struct headers_sect *hs = sect;
	const struct ynode *at;
	const char *v, *s, *e;
	size_t i;
	int has_script_src;

	for (i = 0; i < hs->headers.n; i++)
		if (strcasecmp(hs->headers.v[i].key, "Content-Security-Policy") == 0)
			break;
	if (i == hs->headers.n)
		return;
	v = hs->headers.v[i].val;
	at = lint_first(get_case(ynode_get(l->c->tree, "headers"), "Content-Security-Policy"),
	    lint_section(l, "headers"));
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


/* ---- the filter ------------------------------------------------------------------------------ */

struct hname {
	const char *s;
	size_t      n;
};

struct headers_conf {
	struct hname *set;       /* names visor sets */
	const char  **val;
	size_t       *vlen;
	size_t        nset;
	struct hname *rm;        /* names stripped from upstream answers */
	size_t        nrm;
};

static void
headers_conf_free(void *p)
{
	struct headers_conf *h = p;

	if (h == NULL)
		return;
	free(h->set);
	free(h->val);
	free(h->vlen);
	free(h->rm);
	free(h);
}

static int
headers_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct headers_sect *hs = sect;
	struct headers_conf *h;
	size_t i;

	(void)ctx;
	(void)c;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -1;
	h->nset = hs->headers.n;
	h->nrm = hs->remove_headers.n;
	h->set = calloc(h->nset + 1, sizeof(*h->set));
	h->val = calloc(h->nset + 1, sizeof(*h->val));
	h->vlen = calloc(h->nset + 1, sizeof(*h->vlen));
	h->rm = calloc(h->nrm + 1, sizeof(*h->rm));
	if (!h->set || !h->val || !h->vlen || !h->rm) {
		headers_conf_free(h);
		return -1;
	}
	for (i = 0; i < h->nset; i++) {
		h->set[i].s = hs->headers.v[i].key;
		h->set[i].n = strlen(hs->headers.v[i].key);
		h->val[i] = hs->headers.v[i].val;
		h->vlen[i] = strlen(hs->headers.v[i].val);
	}
	for (i = 0; i < h->nrm; i++) {
		h->rm[i].s = hs->remove_headers.v[i];
		h->rm[i].n = strlen(hs->remove_headers.v[i]);
	}
	*fconf = h;
	return 0;
}

static int
in_list(const struct hname *l, size_t n, const char *name, size_t nl)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i].n == nl && ascii_casecmp_n(l[i].s, l[i].n, name, nl) == 0)
			return 1;
	return 0;
}

static enum verdict
headers_on_response(struct req *r, const void *fconf, void *state)
{
	const struct headers_conf *h = fconf;
	struct hdrs *o = &r->out;
	uint32_t i, j = 0;
	size_t k;

	(void)state;
	for (i = 0; i < o->n; i++) {
		const struct hdr *e = &o->v[i];
		if (in_list(h->set, h->nset, e->name, e->nlen))
			continue;           /* replaced below: one value, never two */
		if (!r->edge && in_list(h->rm, h->nrm, e->name, e->nlen))
			continue;
		if (i != j)
			o->v[j] = o->v[i];
		j++;
	}
	o->n = j;
	for (k = 0; k < h->nset; k++)
		if (hdrs_add(&r->a, o, h->set[k].s, h->set[k].n, h->val[k], h->vlen[k]) < 0)
			return V_ERROR;
	return V_CONTINUE;
}

const struct filter headers_filter = {
	.name = "hdrs", .always = 1,
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct headers_sect), .conf_lint = headers_lint,
	.conf_init = headers_conf_init, .conf_free = headers_conf_free,
	/* request */
	.on_response = headers_on_response,
};
