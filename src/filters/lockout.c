/* SPDX-License-Identifier: MIT
 * lockout — per-account login backoff (docs/rate-limits.md, lockout).
 *
 * A POST whose normalised path is `lockout.path` (ASCII case-insensitively, one trailing slash
 * ignored, as Express routes) has its body buffered (up to 16 KiB) and the account read from
 * its `field`: a top-level JSON string (the last one when the key repeats, as JSON.parse does)
 * or the first `field=` of an application/x-www-form-urlencoded body. The account is trimmed
 * and ASCII lower-cased, and only its SHA-256 is stored: `visor:lockout:<hex>`.
 *
 * Locked accounts get 429 with Retry-After (the remaining lock, rounded up to a second) and
 * never reach the upstream. The upstream's answer decides the rest (on_done, fire and
 * forget): >= 400 is a failure — after `after` of them the account is locked for `base`,
 * doubling per further failure up to `max`; < 400 clears the record. Answers visor made
 * itself (a rate-limit 429, a body 400, a 502) say nothing about the password and count for
 * nothing. A body without the field, or of another type, passes untouched. Owns the
 * `lockout` section.
 */
#include "filters/lockout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "conf/schema.h"
#include "http/filter.h"
#include "core/log.h"
#include "http/req.h"
#include "store/store.h"
#include "core/metrics.h"

#define LOCKOUT_BODY_MAX (16 * 1024)

struct lk_conf {
	char   *path;
	size_t  plen;                    /* without a trailing slash */
	char   *field;
	size_t  flen;
	int64_t after, base_ms, max_ms;
};

struct lk_state {
	struct filter_wait  w;              /* first: filter_wait_abort casts to it */
	struct store_lockq q;
	char              *key;
	size_t             klen;
	unsigned           active : 1;   /* login request: body wanted */
	unsigned           refused : 1;
};

/* ---- pure helpers (unit-tested through the integration suite) ------------------------------- */

static size_t
trim_slash(const char *p, size_t n)
{
	return n > 1 && p[n - 1] == '/' ? n - 1 : n;
}

/* application/x-www-form-urlencoded decoding of s[0..n) into out (room for n bytes). */
static size_t
form_decode(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	int h, l;

	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && (h = hex_digit(s[i + 1])) >= 0 &&
		    (l = hex_digit(s[i + 2])) >= 0) {
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

/* The first value of `field` in a form body, decoded into the arena. */
static char *
form_field(struct arena *a, const char *body, size_t n, const char *field, size_t flen,
    size_t *vlen)
{
	const char *p = body, *end = body + n, *amp, *eq;
	char *name, *val;
	size_t nl;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq) {
			name = arena_alloc(a, (size_t)(eq - p) + 1);
			if (name == NULL)
				return NULL;
			nl = form_decode(p, (size_t)(eq - p), name);
			if (nl == flen && memcmp(name, field, flen) == 0) {
				val = arena_alloc(a, (size_t)(amp - eq));
				if (val == NULL)
					return NULL;
				*vlen = form_decode(eq + 1, (size_t)(amp - eq - 1), val);
				return val;
			}
		}
		p = amp + 1;
	}
	return NULL;
}

/* The media type of a Content-Type value: 1 JSON, 2 form, 0 other. */
static int
body_kind(const char *ct, size_t n)
{
	size_t i = 0, e;

	if (ct == NULL)
		return 0;
	while (i < n && (ct[i] == ' ' || ct[i] == '\t'))
		i++;
	for (e = i; e < n && ct[e] != ';' && ct[e] != ' ' && ct[e] != '\t'; e++)
		;
	if (ascii_casecmp_n(ct + i, e - i, "application/json", 16) == 0)
		return 1;
	if (e - i > 5 && ascii_casecmp_n(ct + e - 5, 5, "+json", 5) == 0)
		return 1;
	if (ascii_casecmp_n(ct + i, e - i, "application/x-www-form-urlencoded", 33) == 0)
		return 2;
	return 0;
}

/* The store key for the account in the body, in the arena; NULL when there is none. */
static char *
account_key(struct req *r, const struct lk_conf *lc, size_t *klen)
{
	const char *ct, *body, *v = NULL;
	size_t ctl = 0, n, vl = 0, s, e, i;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *root = NULL;
	char *low, *key;
	int kind;

	if (r->body == NULL || (n = evbuffer_get_length(r->body)) == 0)
		return NULL;
	ct = req_header(r, "content-type", &ctl);
	kind = body_kind(ct, ctl);
	if (kind == 0)
		return NULL;
	body = (const char *)evbuffer_pullup(r->body, -1);
	if (body == NULL)
		return NULL;
	if (kind == 1) {
		json_t *f;
		root = json_loadb(body, n, 0, NULL);
		if (root == NULL || !json_is_object(root))
			goto out;
		f = json_object_get(root, lc->field);
		if (f == NULL || !json_is_string(f))
			goto out;
		v = json_string_value(f);
		vl = json_string_length(f);
	} else {
		v = form_field(&r->a, body, n, lc->field, lc->flen, &vl);
		if (v == NULL)
			goto out;
	}
	for (s = 0; s < vl && (v[s] == ' ' || v[s] == '\t' || v[s] == '\r' || v[s] == '\n'); s++)
		;
	for (e = vl; e > s && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' ||
	    v[e - 1] == '\n'); e--)
		;
	if (e == s) {
		v = NULL;
		goto out;
	}
	low = arena_alloc(&r->a, e - s);
	if (low == NULL) {
		v = NULL;
		goto out;
	}
	for (i = s; i < e; i++)
		low[i - s] = ascii_lower(v[i]);
	if (EVP_Digest(low, e - s, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		v = NULL;
		goto out;
	}
	key = arena_alloc(&r->a, 14 + 64 + 1);
	if (key == NULL) {
		v = NULL;
		goto out;
	}
	memcpy(key, "visor:lockout:", 14);
	for (i = 0; i < 32; i++)
		snprintf(key + 14 + 2 * i, 3, "%02x", md[i]);
	json_decref(root);
	*klen = 14 + 64;
	return key;
out:
	json_decref(root);
	return NULL;
}

/* ---- configuration: the `lockout` section --------------------------------------------------- */

static void
post_lockout(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	const struct lockout_sect *ls = p->base;
	const struct ynode *at;
	char a[32], b[32];

	if (ls->max_ms == 0 || ls->base_ms == 0 || ls->max_ms >= ls->base_ms)
		return;
	at = ynode_get(map, "max");
	if (at == NULL)
		at = ynode_get(map, "base");
	conf_err(p->ctx, at != NULL ? at : where, "lockout.max (%s) must not be less than "
	    "lockout.base (%s)", conf_fmt_dur(a, sizeof(a), ls->max_ms),
	    conf_fmt_dur(b, sizeof(b), ls->base_ms));
}

#define OFF(f) offsetof(struct lockout_sect, f)

static const struct ckey k_lockout[] = {
	{ .name = "path", .type = KT_STR, .off = OFF(path), .flags = CK_REQUIRED | CK_URLPATH,
	  .doc = "Login path whose failures count." },
	{ .name = "field", .type = KT_STR, .off = OFF(field), .def = "email",
	  .doc = "Body field naming the account (JSON or form; lower-cased)." },
	{ .name = "after", .type = KT_INT, .off = OFF(after), .def = "5", .min = 1,
	  .max = 1000, .doc = "Failures allowed before the first lock." },
	{ .name = "base", .type = KT_DUR, .off = OFF(base_ms), .def = "1s", .min = 1,
	  .max = 86400000, .doc = "First lock; doubles with each further failure." },
	{ .name = "max", .type = KT_DUR, .off = OFF(max_ms), .def = "15m", .min = 1,
	  .max = 30LL * 86400000, .doc = "Longest lock (at least base)." },
};
static const struct csect s_lockout = CONF_SECT(k_lockout, post_lockout);

static const struct ckey k_top[] = {
	{ .name = "lockout", .type = KT_SECTION, .arg = &s_lockout, .flags = CK_OPTIONAL,
	  .en_off = OFF(enabled),
	  .doc = "Per-account backoff on a login path, keyed by a body field." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

#undef OFF

/* ---- the built configuration ---------------------------------------------------------------- */

static void
lk_conf_free(void *p)
{
	struct lk_conf *lc = p;

	if (lc == NULL)
		return;
	free(lc->path);
	free(lc->field);
	free(lc);
}

static int
lk_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct lockout_sect *ls = sect;
	struct lk_conf *lc;

	(void)c;
	*fconf = NULL;
	if (!ls->enabled || ls->path == NULL)
		return 0;
	lc = calloc(1, sizeof(*lc));
	if (lc == NULL)
		goto oom;
	lc->path = strdup(ls->path);
	lc->field = strdup(ls->field ? ls->field : "email");
	if (lc->path == NULL || lc->field == NULL)
		goto oom;
	lc->plen = trim_slash(lc->path, strlen(lc->path));
	lc->flen = strlen(lc->field);
	lc->after = ls->after;
	lc->base_ms = ls->base_ms;
	lc->max_ms = ls->max_ms;
	*fconf = lc;
	return 0;
oom:
	return conf_build_oom(ctx, lk_conf_free, lc, "the lockout");
}

/* The routes whose prefix covers the login path (and that take POST). */
static int
lk_route_wants(const struct conf *c, const struct conf_route *cr, const void *rkeys,
    const void *fconf)
{
	const struct lk_conf *lc = fconf;
	size_t i, pl;

	(void)c;
	(void)rkeys;
	if (cr == NULL || lc == NULL)
		return 0;
	/* the route's prefix must match the login path, with or without its trailing slash */
	pl = strlen(cr->path);
	if (!(pl <= lc->plen && ascii_casecmp_n(lc->path, pl, cr->path, pl) == 0) &&
	    !(pl == lc->plen + 1 && cr->path[pl - 1] == '/' &&
	    ascii_casecmp_n(lc->path, lc->plen, cr->path, lc->plen) == 0))
		return 0;
	if (cr->methods.n == 0)
		return 1;
	for (i = 0; i < cr->methods.n; i++)
		if (strcmp(cr->methods.v[i], "POST") == 0)
			return 1;
	return 0;
}

/* ---- the request ---------------------------------------------------------------------------------- */

static enum verdict
lk_on_request(struct req *r, const void *fconf, void *state)
{
	const struct lk_conf *lc = fconf;
	struct lk_state *st = state;
	size_t pl;

	st->w.r = r;
	if (strcmp(r->method, "POST") != 0)
		return V_CONTINUE;
	pl = trim_slash(r->path, r->path_len);
	if (pl != lc->plen || ascii_casecmp_n(r->path, pl, lc->path, lc->plen) != 0)
		return V_CONTINUE;
	st->active = 1;
	req_want_body(r, LOCKOUT_BODY_MAX);
	return V_CONTINUE;
}

static enum verdict
lk_decide(struct lk_state *st)
{
	struct req *r = st->w.r;

	if (!st->q.locked)
		return V_CONTINUE;
	st->refused = 1;
	METRIC_INC(filter_metrics(r), lockouts);
	req_respond(r, 429, NULL);
	r->log_reason = "lockout";
	return V_RESPOND;
}

static enum verdict
lk_unavailable(struct lk_state *st)
{
	if (st->w.r->conf->redis.on_error == REDIS_CLOSED)
		st->key = NULL;              /* refused unchecked: count nothing */
	return filter_store_unavailable(st->w.r);
}

static void
lk_on_store(void *arg, enum store_res res)
{
	struct lk_state *st = arg;

	filter_wait_resume(&st->w, res == STORE_OK ? lk_decide(st) : lk_unavailable(st));
}

static enum verdict
lk_on_request_body(struct req *r, const void *fconf, void *state)
{
	const struct lk_conf *lc = fconf;
	struct lk_state *st = state;

	if (!st->active)
		return V_CONTINUE;
	st->key = account_key(r, lc, &st->klen);
	if (st->key == NULL)
		return V_CONTINUE;
	st->q.key = st->key;
	st->q.klen = st->klen;
	switch (store_lockout_check(req_worker(r), &st->q, lk_on_store, st, &st->w.op)) {
	case STORE_PENDING:
		return V_SUSPEND;
	case STORE_OK:
		return lk_decide(st);
	case STORE_UNAVAILABLE:
	default:
		return lk_unavailable(st);
	}
}

static enum verdict
lk_on_response(struct req *r, const void *fconf, void *state)
{
	struct lk_state *st = state;
	char ra[24];
	int64_t s;

	(void)fconf;
	if (!st->refused || !r->edge || r->status != 429)
		return V_CONTINUE;
	s = (st->q.retry_ms + 999) / 1000;
	snprintf(ra, sizeof(ra), "%lld", (long long)(s < 1 ? 1 : s));
	hdrs_sets(&r->a, &r->out, "Retry-After", ra);
	return V_CONTINUE;
}

static void
lk_on_done(struct req *r, const void *fconf, void *state)
{
	const struct lk_conf *lc = fconf;
	struct lk_state *st = state;

	if (!st->active || st->key == NULL || st->refused || r->edge)
		return;
	store_lockout_result(req_worker(r), st->key, st->klen, r->status >= 400, lc->after, lc->base_ms,
	    lc->max_ms);
}

const struct filter lockout_filter = {
	.name = "lockout", .state_size = sizeof(struct lk_state),
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct lockout_sect), .conf_init = lk_conf_init,
	.conf_free = lk_conf_free, .route_wants = lk_route_wants,
	/* request */
	.on_request = lk_on_request, .on_request_body = lk_on_request_body,
	.on_response = lk_on_response, .on_done = lk_on_done, .on_abort = filter_wait_abort,
};
