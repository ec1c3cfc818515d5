/* SPDX-License-Identifier: MIT
 * jwt — the JWT filter glue around jwt_core (issue 5; contract in jwt.h, design in
 * docs/jwt.md).
 *
 *   rows          the `jwt` section and each route's `auth`: keys, parse, lint rules.
 *   conf_init     (main thread, per generation) reads every key file and jwks_file, loads
 *                 the secrets, and takes a reference on the JWKS source of each jwks_url:
 *                 SIGHUP re-reads them all, and a bad file keeps the old generation.
 *   on_request    drops the client's claims_to_headers copies (every route); on auth
 *                 routes: token → SHA-256 → per-worker cache (hit: time checks only) or
 *                 parse → claims → signature; identity and claim headers on success.
 *   suspension    only for JWKS sources: a token whose kid (or key type) no loaded key has
 *                 waits, bounded, for the refetch it triggers (or the one already running),
 *                 then is checked once more. A per-worker 20 ms timer polls the sources'
 *                 attempt counters while anything waits; nothing crosses threads but atomics.
 *
 * Must never: accept a token on a failed check, tell the client why, let a cached entry
 * outlive its keys (cache entries carry the generation and the key epoch), forward a claim
 * value holding control characters, or block the worker.
 */
#include "filters/jwt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "http/filter.h"
#include "lib/jwks.h"
#include "core/log.h"
#include "http/req.h"
#include "http/route.h"
#include "core/metrics.h"

#define JWT_CACHE_SETS    2048           /* x WAYS = 8192 verified tokens per worker */
#define JWT_CACHE_WAYS    4
#define JWT_NEG_SLOTS     1024           /* tokens whose signature failed, per worker */
#define JWT_NEG_TTL_S     300
#define JWT_NOEXP_TTL_S   300            /* cache lifetime of a token without exp */
#define JWT_MAX_VIEWS     16
#define JWT_WAIT_MS       3000           /* longest a request waits for a JWKS refetch */
#define JWT_TICK_MS       20
#define JWT_MAX_KEYFILE   (1024 * 1024)

/* ---- configuration (one per generation, immutable) ----------------------------------- */

struct jwt_claimhdr {
	const char *claim;           /* conf strings: live as long as the generation */
	const char *header;
	size_t      hlen;
};

struct jwt_conf {
	uint64_t                  id;        /* process-wide unique: cache entries name it */
	uint32_t                  algs;
	struct jwt_keyset        *keys;      /* file, secret and jwks_file keys (never NULL) */
	struct jwks_src         **srcs;
	size_t                    nsrcs;
	struct jwt_claims_policy  policy;
	const char              **aud;
	const char              **req;
	const char               *cookie;
	size_t                    cookie_len;
	struct jwt_claimhdr      *ch;
	size_t                    nch;
	int                       revocation;
	size_t                    fid;       /* this filter's id: its route keys */
};

/* ---- verified identities (cached) ---------------------------------------------------- */

struct jwt_hval {
	uint32_t  idx;                /* into jwt_conf.ch */
	uint32_t  len;
	char     *val;
};

/* One malloc'd block: the struct, the header values, then the strings. */
struct jwt_ident {
	const char      *sub, *jti;   /* NULL when absent */
	size_t           sub_len, jti_len;
	int64_t          iat, exp;    /* for the request: 0 when absent */
	unsigned         has_exp : 1, has_nbf : 1, has_iat : 1;
	double           exp_d, nbf_d, iat_d;
	size_t           nh;
	struct jwt_hval  h[];
};

struct jwt_centry {
	unsigned char      key[SHA256_DIGEST_LENGTH];
	uint64_t           conf_id, epoch, used;
	int64_t            expire;        /* unix seconds */
	struct jwt_ident  *id;            /* NULL: empty slot */
};

struct jwt_nentry {
	unsigned char  key[SHA256_DIGEST_LENGTH];
	uint64_t       conf_id, epoch;
	int64_t        expire;            /* 0: empty */
	int            reason;
};

struct jwt_view {
	struct jwks_src    *src;
	uint64_t            ver;
	struct jwt_keyset  *ks;
};

struct jwt_rstate;
TAILQ_HEAD(jwt_waitq, jwt_rstate);

struct jwt_wstate {
	struct worker      *w;
	struct jwt_centry  *cache;
	struct jwt_nentry  *neg;
	uint64_t            clock;        /* LRU stamps */
	uint64_t            epoch;        /* moves whenever a JWKS view changes */
	struct jwt_view     views[JWT_MAX_VIEWS];
	size_t              nviews;
	struct jwt_waitq    waiting, ready;
	struct event       *tick;
	int                 tick_on;
	/* the cache key's digest, fetched once: SHA256() fetches and allocates on every call */
	EVP_MD             *sha256;
	EVP_MD_CTX         *mdctx;
};

/* Per request (filter state, zeroed, from the arena). */
struct jwt_rstate {
	TAILQ_ENTRY(jwt_rstate)  link;
	int                      queued;  /* 0, 1 = in ws->waiting, 2 = in ws->ready */
	struct jwt_wstate       *ws;
	struct req              *r;
	const struct jwt_conf   *jc;
	const char              *tok;
	size_t                   len;
	uint64_t                *snap;    /* attempts per source when the wait began */
	int64_t                  deadline_ms;
};

extern const struct filter jwt_filter;

/* ---- pure helpers -------------------------------------------------------------------- */

const char *
jwt_log_reason(int reason)
{
	if (reason <= 0 || reason >= JWT_E_COUNT)
		return "jwt";
	return jwt_err_tag((enum jwt_err)reason);
}

int
jwt_bearer(const char *v, size_t n, const char **tok, size_t *tlen)
{
	size_t i = 6;

	if (n < 6 || ascii_casecmp_n(v, 6, "bearer", 6) != 0)
		return 0;
	if (n > 6 && v[6] != ' ' && v[6] != '\t')
		return 0;                 /* "Bearerx": another scheme */
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	*tok = v + i;
	*tlen = n - i;
	return 1;
}

int
jwt_cookie(const char *v, size_t n, const char *name, size_t nlen, const char **val,
    size_t *vlen)
{
	size_t pos = 0, tl, eq, ne, vs, ve;
	const char *t;
	int found = *val != NULL;

	while (http_list_next(v, n, ';', &pos, &t, &tl)) {
		for (eq = 0; eq < tl && t[eq] != '='; eq++)
			;
		if (eq == tl)
			continue;
		for (ne = eq; ne > 0 && (t[ne - 1] == ' ' || t[ne - 1] == '\t'); ne--)
			;
		for (vs = eq + 1, ve = tl; vs < ve && (t[vs] == ' ' || t[vs] == '\t'); vs++)
			;
		if (ne != nlen || memcmp(t, name, nlen) != 0)
			continue;
		if (ve - vs >= 2 && t[vs] == '"' && t[ve - 1] == '"') {
			vs++;
			ve--;
		}
		if (found) {
			if (*vlen != ve - vs || memcmp(*val, t + vs, ve - vs) != 0)
				return -1;
			continue;
		}
		*val = t + vs;
		*vlen = ve - vs;
		found = 1;
	}
	return found;
}

int
jwt_header_value_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\t')
			continue;
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

int
jwt_claim_text(const json_t *v, char **out, size_t *len)
{
	char buf[64], *p = NULL;
	size_t n;
	int prec;

	*out = NULL;
	*len = 0;
	if (json_is_string(v)) {
		n = json_string_length(v);
		if ((p = malloc(n + 1)) == NULL)
			return -1;
		memcpy(p, json_string_value(v), n);
		p[n] = '\0';
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if ((p = strdup(buf)) == NULL)
			return -1;
		n = strlen(p);
	} else if (json_is_real(v) && isfinite(json_real_value(v))) {
		double d = json_real_value(v);
		/* The shortest form that reads back as the same double (as JavaScript prints). */
		for (prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		if ((p = strdup(buf)) == NULL)
			return -1;
		n = strlen(p);
	} else {
		p = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (p == NULL)
			return -1;
		n = strlen(p);
	}
	if (!jwt_header_value_ok(p, n)) {
		free(p);
		return 1;
	}
	*out = p;
	*len = n;
	return 0;
}

/* ---- refusals ------------------------------------------------------------------------ */

void
jwt_refuse(struct req *r, int reason)
{
	if (reason <= 0 || reason >= JWT_E_COUNT)
		reason = JWT_E_INTERNAL;
	req_respond(r, 401, NULL);
	hdrs_adds(&r->a, &r->out, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	r->log_reason = jwt_log_reason(reason);
	METRIC_INC(filter_metrics(r), jwt_refused[reason]);
}

static void
refuse_missing(struct req *r)
{
	req_respond(r, 401, NULL);
	hdrs_adds(&r->a, &r->out, "WWW-Authenticate", "Bearer realm=\"api\"");
	r->log_reason = jwt_log_reason(JWT_E_NO_TOKEN);
	METRIC_INC(filter_metrics(r), jwt_refused[JWT_E_NO_TOKEN]);
}

/* ---- configuration ------------------------------------------------------------------- */

/* ---- configuration: the `jwt` section and each route's `auth` ------------------------ */

_Static_assert(sizeof(enum auth_mode) == sizeof(int), "enums are stored through int *");

static void
cf_algs(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct jwt_sect *js = p->base;
	const char *cand[JWT_ALG_COUNT], *s, *sug;
	const struct ynode *it;
	char list[160];
	const struct ynode *lv = conf_list_node(p, v);
	long n = conf_list_count(p, lv, "a list of algorithms");
	size_t i, old, o = 0;
	int a;

	(void)k;
	(void)field;
	if (n < 0)
		return;
	for (a = 0; a < JWT_ALG_COUNT; a++) {
		cand[a] = jwt_alg_name((enum jwt_alg)a);
		if (o < sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", a ? " " : "",
			    cand[a]);
	}
	js->algorithms = 0;
	conf_strs_free(&js->algorithm_names);
	for (i = 0; i < (size_t)n; i++) {
		it = conf_item_at(lv, i);
		old = conf_item_push(p, lv, i);
		if ((s = conf_item_text(p, it)) == NULL)
			goto next;
		if (strcasecmp(s, "none") == 0) {
			conf_err(p->ctx, it, "%s: the 'none' algorithm is never accepted", p->path);
			goto next;
		}
		if ((a = jwt_alg_parse(s)) < 0) {
			sug = conf_nearest(s, cand, JWT_ALG_COUNT);
			if (sug != NULL)
				conf_err(p->ctx, it, "%s: unknown algorithm '%s' (did you mean '%s'?)",
				    p->path, conf_quote(p, s), sug);
			else
				conf_err(p->ctx, it, "%s: unknown algorithm '%s' (expected one of %s)",
				    p->path, conf_quote(p, s), list);
			goto next;
		}
		if (!(js->algorithms & JWT_ALG_BIT(a))) {
			js->algorithms |= JWT_ALG_BIT(a);
			if (conf_strs_append(&js->algorithm_names,
			    jwt_alg_name((enum jwt_alg)a)) < 0)
				conf_oom(p, it);
		}
next:
		conf_path_pop(p, old);
	}
	if (n == 0)
		conf_err(p->ctx, v, "%s: at least one algorithm is required", p->path);
}

static void
rel_algs(const struct ckey *k, void *base)
{
	struct jwt_sect *js = base;

	(void)k;
	conf_strs_free(&js->algorithm_names);
	js->algorithms = 0;
}

static int
check_https_url(struct cparse *p, const struct ynode *v, const char *s)
{
	if (strncasecmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/') {
		conf_err(p->ctx, v, "%s: must be an https:// URL, got '%s'", p->path, conf_quote(p,
		    s));
		return -1;
	}
	if (strchr(s, ' ') != NULL) {
		conf_err(p->ctx, v, "%s: '%s' is not a valid URL", p->path, conf_quote(p, s));
		return -1;
	}
	return 0;
}

/* jwt.keys[].secret: bytes, possibly binary when read from secret_file. */
static void
cf_secret(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct jwt_sect_key *key = p->base;

	(void)k;
	(void)field;
	if (v->type != YN_SCALAR || conf_is_null(v)) {
		conf_err(p->ctx, v, "%s: expected a string, got %s", p->path, conf_got(v));
		return;
	}
	if (v->len == 0) {
		conf_err(p->ctx, v, "%s must not be empty", p->path);
		return;
	}
	if ((key->secret = malloc(v->len + 1)) == NULL) {
		conf_oom(p, v);
		return;
	}
	memcpy(key->secret, v->str, v->len);
	key->secret[v->len] = '\0';
	key->secret_len = v->len;
}

/* A secret is wiped before it is freed. */
static void
rel_secret(const struct ckey *k, void *base)
{
	struct jwt_sect_key *key = base;

	(void)k;
	if (key->secret != NULL)
		explicit_bzero(key->secret, key->secret_len);
	free(key->secret);
	key->secret = NULL;
	key->secret_len = 0;
}

static void
post_jwt_key(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	static const char *const kinds[] = { "file", "jwks_file", "jwks_url", "secret" };
	const char *found[4];
	const struct ynode *kid;
	char name[32];
	size_t i, n = 0;

	if (map == NULL)
		return;
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s_file", kinds[i]);
		if (ynode_key(map, kinds[i]) != NULL || ynode_key(map, name) != NULL)
			found[n++] = kinds[i];
	}
	if (n == 0)
		conf_err(p->ctx, where, "%s: one of file, jwks_file, jwks_url, secret or "
		    "secret_file is required", p->path);
	else if (n > 1)
		conf_err(p->ctx, where, "%s: give only one of file, jwks_file, jwks_url or secret "
		    "(found %s and %s)", p->path, found[0], found[1]);
	kid = ynode_key(map, "kid");
	if (kid == NULL)
		kid = ynode_key(map, "kid_file");
	if (n == 1 && kid != NULL && strncmp(found[0], "jwks", 4) == 0)
		conf_err(p->ctx, kid, "%s.kid: a JWKS names its own keys; kid only applies to "
		    "file and secret keys", p->path);
}

static const struct ckey k_jwtkey[] = {
	{ .name = "file", .type = KT_STR, .off = offsetof(struct jwt_sect_key, file),
	  .doc = "PEM public key or certificate (RSA >= 2048 bits, P-256, P-384 or Ed25519)." },
	{ .name = "jwks_file", .type = KT_STR, .off = offsetof(struct jwt_sect_key, jwks_file),
	  .doc = "JWKS document on disk; re-read on SIGHUP." },
	{ .name = "jwks_url", .type = KT_STR, .off = offsetof(struct jwt_sect_key, jwks_url),
	  .check = check_https_url, .tname = "https:// URL",
	  .doc = "https:// URL of a JWKS: cached, refreshed, kid-aware." },
	{ .name = "secret", .type = KT_CUSTOM, .fn = cf_secret, .release = rel_secret,
	  .flags = CK_SCALAR, .tname = "string",
	  .doc = "HMAC secret for HS256/384/512; give it as ${VAR} or secret_file, never inline." },
	{ .name = "kid", .type = KT_STR, .off = offsetof(struct jwt_sect_key, kid),
	  .doc = "Key id matched against the token's kid (file and secret keys)." },
};
static const struct csect s_jwtkey = CONF_SECT(k_jwtkey, post_jwt_key);

static void
cf_jwt_keys(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct jwt_sect *js = p->base;

	(void)field;
	js->keys = conf_parse_items(p, v, k->arg, sizeof(struct jwt_sect_key), &js->n_keys);
	if (v->type == YN_SEQ && v->n == 0)
		conf_err(p->ctx, v, "%s: at least one key is required", p->path);
}

static void
rel_jwt_keys(const struct ckey *k, void *base)
{
	struct jwt_sect *js = base;

	conf_release_items(k->arg, js->keys, sizeof(struct jwt_sect_key), js->n_keys);
	js->keys = NULL;
	js->n_keys = 0;
}

static void
cf_claims_to_headers(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_kvs *kv = field;
	const struct ynode *key, *val;
	size_t i, j, old;

	(void)k;
	if (!conf_is_map(p, v, "a mapping of claim names to header names"))
		return;
	for (i = 0; i < v->n; i++) {
		key = v->pairs[i].key;
		val = v->pairs[i].val;
		old = conf_path_key(p, key->str);
		if (key->len == 0 || strlen(key->str) != key->len || conf_has_ctl(key->str,
		    key->len)) {
			conf_err(p->ctx, key, "%s: invalid claim name", p->path);
		} else if (val->type != YN_SCALAR || conf_is_null(val)) {
			conf_err(p->ctx, val, "%s: expected a header name, got %s", p->path,
			    conf_got(val));
		} else if (strlen(val->str) != val->len || !conf_is_token(val->str)) {
			conf_err(p->ctx, val, "%s: '%s' is not a valid header name", p->path,
			    conf_quote(p, val->str));
		} else {
			for (j = 0; j < kv->n; j++)
				if (strcasecmp(kv->v[j].val, val->str) == 0)
					break;
			if (j < kv->n)
				conf_err(p->ctx, val, "%s: header '%s' already carries claim '%s'",
				    p->path, conf_quote(p, val->str), conf_quote(p, kv->v[j].key));
			else if (conf_kvs_append(kv, key->str, val->str) < 0)
				conf_oom(p, val);
		}
		conf_path_pop(p, old);
	}
}

static void
cf_revocation(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	int b;

	(void)k;
	/* redis is the core's, parsed before every filter's section */
	if (v == NULL) {
		*(int *)field = p->c->redis.enabled;
		return;
	}
	if (conf_bool_value(p, v, &b) < 0)
		return;
	if (b && !p->c->redis.enabled) {
		conf_err(p->ctx, v, "%s needs a redis section", p->path);
		return;
	}
	*(int *)field = b;
}

#define OFF(f) offsetof(struct jwt_sect, f)

static const struct ckey k_jwt[] = {
	{ .name = "algorithms", .type = KT_CUSTOM, .fn = cf_algs, .release = rel_algs,
	  .def = "[RS256, ES256]", .tname = "list of algorithms",
	  .doc = "Allowlist from HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 "
	    "ES384 EdDSA; none is never accepted." },
	{ .name = "keys", .type = KT_CUSTOM, .fn = cf_jwt_keys, .release = rel_jwt_keys,
	  .arg = &s_jwtkey, .flags = CK_REQUIRED | CK_ITEMS, .tname = "list of keys",
	  .doc = "Verification keys; a key is only used with algorithms of its own type." },
	{ .name = "issuer", .type = KT_STR, .off = OFF(issuer), .defdoc = "not checked",
	  .doc = "Required iss." },
	{ .name = "audience", .type = KT_STRS, .off = OFF(audience), .defdoc = "not checked",
	  .tname = "string or list", .doc = "Accepted aud values (any one matches)." },
	{ .name = "leeway", .type = KT_DUR, .off = OFF(leeway_ms), .def = "30s", .min = 0,
	  .max = 3600000, .doc = "Clock skew allowed on exp, nbf and iat." },
	{ .name = "required_claims", .type = KT_STRS, .off = OFF(required_claims),
	  .def = "[exp]", .tname = "list of claim names",
	  .doc = "Claims a token must carry." },
	{ .name = "cookie", .type = KT_STR, .off = OFF(cookie), .check = conf_check_token,
	  .defdoc = "none", .doc = "Also read the token from this cookie." },
	{ .name = "claims_to_headers", .type = KT_CUSTOM, .fn = cf_claims_to_headers,
	  .release = conf_release_kvs, .off = OFF(claims_to_headers),
	  .tname = "mapping claim → header", .defdoc = "none",
	  .doc = "Claims sent upstream as headers; the same headers from the client are dropped." },
	{ .name = "revocation", .type = KT_CUSTOM, .fn = cf_revocation, .off = OFF(revocation),
	  .flags = CK_SCALAR | CK_ALWAYS, .tname = "boolean",
	  .defdoc = "true with a redis section, else false",
	  .doc = "Reject a jti found at `visor:revoked:<jti>` and tokens whose iat precedes "
	    "`visor:revoked-before:<sub>` (unix seconds); needs redis." },
};
static const struct csect s_jwt = CONF_SECT(k_jwt, NULL);

static const struct ckey k_top[] = {
	{ .name = "jwt", .type = KT_SECTION, .arg = &s_jwt, .flags = CK_OPTIONAL,
	  .en_off = OFF(enabled), .doc = "JWT verification at the edge." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

#undef OFF

static const struct cenum e_auth[] = { { "off", AUTH_OFF }, { "optional", AUTH_OPTIONAL },
    { "required", AUTH_REQUIRED }, { NULL, 0 } };

static void
cf_route_auth(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const struct jwt_sect *js = p->sect;    /* parsed before routes */
	int a;

	if (v == NULL) {
		*(int *)field = js->enabled ? AUTH_REQUIRED : AUTH_OFF;
		return;
	}
	if (conf_enum_lookup(p, k, v, &a) < 0)
		return;
	if (a != AUTH_OFF && !js->enabled) {
		conf_err(p->ctx, v, "%s: '%s' needs a jwt section", p->path, conf_quote(p, v->str));
		return;
	}
	*(int *)field = a;
}

static const struct ckey k_route[] = {
	{ .name = "auth", .type = KT_CUSTOM, .fn = cf_route_auth, .arg = e_auth,
	  .off = offsetof(struct jwt_route, auth), .flags = CK_SCALAR | CK_ALWAYS,
	  .tname = "`off`, `optional` or `required`",
	  .defdoc = "`required` with a jwt section, else `off`",
	  .doc = "JWT: required = 401 without a valid token; optional = verified when present." },
};
static const struct csect s_route = CONF_SECT(k_route, NULL);

/* ---- lint ---------------------------------------------------------------------------- */

#define HMAC_MIN_SECRET  32         /* bytes: HS256's hash size, RFC 7518 §3.2 */

static int
strs_has(const struct conf_strs *s, const char *v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return 1;
	return 0;
}

#define HS_ALGS (JWT_ALG_BIT(JWT_HS256) | JWT_ALG_BIT(JWT_HS384) | JWT_ALG_BIT(JWT_HS512))

static void
lint_jwt_secrets(struct lint *l, const struct jwt_sect *js)
{
	const struct ynode *map, *sn;
	const char *name;
	size_t i;

	for (i = 0; i < js->n_keys; i++) {
		const struct jwt_sect_key *k = &js->keys[i];
		if (k->secret == NULL)
			continue;
		map = lint_node(l, "jwt.keys.%zu", i);
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
			conf_warn(l->ctx, lint_first(sn, map),
			    "jwt.keys[%zu].%s %s %zu bytes; an HMAC "
			    "secret under 32 bytes (RFC 7518 §3.2) can be brute-forced offline from one "
			    "token — use 32 random bytes or more (openssl rand -base64 48)", i, name,
			    strcmp(name, "secret") == 0 ? "is" : "holds", k->secret_len);
	}
}

static void
jwt_lint(struct lint *l, const void *sect)
{
	const struct conf *c = l->c;
	const struct jwt_sect *js = sect;
	const struct jwt_route *jr;
	const char *hs = NULL, *pk = NULL;
	size_t i;
	int a;

	if (!js->enabled)
		return;
	lint_jwt_secrets(l, js);
	if ((js->algorithms & HS_ALGS) && (js->algorithms & ~HS_ALGS)) {
		for (a = 0; a < JWT_ALG_COUNT; a++) {
			if (!(js->algorithms & JWT_ALG_BIT(a)))
				continue;
			if (hs == NULL && (HS_ALGS & JWT_ALG_BIT(a)))
				hs = jwt_alg_name((enum jwt_alg)a);
			if (pk == NULL && !(HS_ALGS & JWT_ALG_BIT(a)))
				pk = jwt_alg_name((enum jwt_alg)a);
		}
		conf_warn(l->ctx, lint_first(lint_node(l, "jwt.algorithms"), lint_section(l,
		    "jwt")),
		    "jwt.algorithms mixes HMAC (%s) with public-key algorithms (%s): any holder of "
		    "the HMAC secret can mint tokens beside your private key's, and mixed families "
		    "are what algorithm-confusion attacks exploit — allow one family (RFC 8725 "
		    "§3.1)", hs, pk);
	}
	if (!strs_has(&js->required_claims, "exp"))
		conf_warn(l->ctx, lint_first(lint_node(l, "jwt.required_claims"), lint_section(l,
		    "jwt")),
		    "jwt.required_claims does not include exp: a token without exp is accepted "
		    "forever, even once leaked — add exp to jwt.required_claims");
	if (js->audience.n == 0) {
		for (i = 0; i < js->n_keys; i++)
			if (js->keys[i].jwks_url != NULL)
				break;
		if (i < js->n_keys)
			conf_warn(l->ctx, lint_section(l, "jwt"),
			    "jwt.audience is not set and jwt.keys[%zu] "
			    "is a JWKS URL: a token the identity provider issued for another "
			    "application is accepted here — set jwt.audience to this API's identifier",
			    i);
	}
	for (i = 0; i < c->routes.n; i++) {
		jr = conf_route_keys(&c->routes.v[i], filter_id(&jwt_filter));
		if (jr->auth != AUTH_OFF)
			break;
	}
	if (c->routes.n > 0 && i == c->routes.n)
		conf_warn(l->ctx, lint_section(l, "jwt"),
		    "jwt is configured but every route has auth: "
		    "off, so no token is ever checked — set auth: required (or optional) on the "
		    "routes that need it");
}

/* ---- the built configuration -------------------------------------------------------- */

static void
jwt_conf_free(void *p)
{
	struct jwt_conf *jc = p;
	size_t i;

	if (jc == NULL)
		return;
	jwt_keyset_unref(jc->keys);
	for (i = 0; i < jc->nsrcs; i++)
		jwks_src_unref(jc->srcs[i]);
	free(jc->srcs);
	free(jc->aud);
	free(jc->req);
	free(jc->ch);
	free(jc);
}

/* The YAML node of jwt.keys.<i>.<name>, or of <name>_file when the value came from a file. */
static const struct ynode *
key_node(const struct conf *c, size_t i, const char *name)
{
	char path[96];
	const struct ynode *n;

	snprintf(path, sizeof(path), "jwt.keys.%zu.%s", i, name);
	if ((n = ynode_path(c->tree, path)) != NULL)
		return n;
	snprintf(path, sizeof(path), "jwt.keys.%zu.%s_file", i, name);
	if ((n = ynode_path(c->tree, path)) != NULL)
		return n;
	snprintf(path, sizeof(path), "jwt.keys.%zu", i);
	return ynode_path(c->tree, path);
}

static void
alg_list(uint32_t algs, char *buf, size_t len)
{
	size_t o = 0;
	int a;

	buf[0] = '\0';
	for (a = 0; a < JWT_ALG_COUNT && o < len; a++)
		if (algs & JWT_ALG_BIT(a))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " " : "",
			    jwt_alg_name((enum jwt_alg)a));
}

/* A key that can verify none of the allowed algorithms is a configuration mistake (an HMAC
 * secret while algorithms lists only RS256, say): warn, the file is otherwise fine. */
static void
warn_useless(struct conf_ctx *ctx, const struct ynode *at, const char *what, uint32_t key_algs,
    uint32_t allowed)
{
	char have[96], want[160];

	if (key_algs & allowed)
		return;
	alg_list(key_algs, have, sizeof(have));
	alg_list(allowed, want, sizeof(want));
	conf_warn(ctx, at, "jwt.keys: %s can only verify %s, and jwt.algorithms allows %s: it "
	    "will never be used", what, have, want);
}

/* Reads the file `path` of jwt.keys[i].<name>; NULL after the error at `at`. */
static char *
read_key_file(struct conf_ctx *ctx, const struct ynode *at, size_t i, const char *name,
    const char *path, size_t *len)
{
	char *buf = file_read_all(path, JWT_MAX_KEYFILE, len);

	if (buf == NULL)
		conf_err(ctx, at, "jwt.keys[%zu].%s: cannot read '%s': %s", i, name, path,
		    strerror(errno));
	return buf;
}

/* Adds key k (from a file or a secret; `what` names it in the warning) to jc's keyset: 0, or
 * -1 after "out of memory" at `at`, k freed. */
static int
add_key(struct conf_ctx *ctx, struct jwt_conf *jc, const struct ynode *at, const char *what,
    struct jwt_key *k)
{
	warn_useless(ctx, at, what, k->algs, jc->algs);
	if (jwt_keyset_add(jc->keys, k) == 0)
		return 0;
	jwt_key_fini(k);
	conf_err(ctx, at, "out of memory");
	return -1;
}

static int
load_keys(struct conf_ctx *ctx, struct conf *c, const struct jwt_sect *js, struct jwt_conf *jc)
{
	size_t i, len, skipped, before, j;
	struct jwt_key k;
	const char *err;
	char *buf;
	int rc = 0;
	uint32_t got;

	for (i = 0; i < js->n_keys; i++) {
		const struct jwt_sect_key *ck = &js->keys[i];
		const struct ynode *at;

		memset(&k, 0, sizeof(k));
		if (ck->file) {
			at = key_node(c, i, "file");
			if ((buf = read_key_file(ctx, at, i, "file", ck->file, &len)) == NULL) {
				rc = -1;
				continue;
			}
			if (jwt_key_from_pem(buf, len, ck->kid, &k, &err) < 0) {
				conf_err(ctx, at, "jwt.keys[%zu].file: '%s': %s", i, ck->file, err);
				free(buf);
				rc = -1;
				continue;
			}
			free(buf);
			if (add_key(ctx, jc, at, "this key", &k) < 0)
				rc = -1;
		} else if (ck->secret) {
			at = key_node(c, i, "secret");
			if (jwt_key_from_secret((const unsigned char *)ck->secret, ck->secret_len,
			    ck->kid, &k, &err) < 0) {
				conf_err(ctx, at, "jwt.keys[%zu].secret: %s", i, err);
				rc = -1;
				continue;
			}
			if (add_key(ctx, jc, at, "this secret", &k) < 0)
				rc = -1;
		} else if (ck->jwks_file) {
			at = key_node(c, i, "jwks_file");
			if ((buf = read_key_file(ctx, at, i, "jwks_file", ck->jwks_file, &len)) == NULL) {
				rc = -1;
				continue;
			}
			before = jc->keys->n;
			if (jwt_keyset_add_jwks(jc->keys, buf, len, &skipped, &err) < 0) {
				conf_err(ctx, at, "jwt.keys[%zu].jwks_file: '%s': %s", i,
				    ck->jwks_file, err);
				free(buf);
				rc = -1;
				continue;
			}
			free(buf);
			if (jc->keys->n == before) {
				conf_err(ctx, at, "jwt.keys[%zu].jwks_file: '%s' holds no usable key "
				    "(%zu skipped)", i, ck->jwks_file, skipped);
				rc = -1;
				continue;
			}
			if (skipped)
				conf_warn(ctx, at, "jwt.keys[%zu].jwks_file: %zu key%s of '%s' skipped "
				    "(private, unsupported, too weak or not for signatures)", i,
				    skipped, skipped == 1 ? "" : "s", ck->jwks_file);
			for (got = 0, j = before; j < jc->keys->n; j++)
				got |= jc->keys->v[j].algs;
			warn_useless(ctx, at, "this JWKS", got, jc->algs);
		} else if (ck->jwks_url) {
			struct jwks_src *s, **nv;
			at = key_node(c, i, "jwks_url");
			if ((s = jwks_src_get(ck->jwks_url, &err)) == NULL) {
				conf_err(ctx, at, "jwt.keys[%zu].jwks_url: %s", i, err);
				rc = -1;
				continue;
			}
			nv = realloc(jc->srcs, (jc->nsrcs + 1) * sizeof(*nv));
			if (nv == NULL) {
				jwks_src_unref(s);
				conf_err(ctx, at, "out of memory");
				rc = -1;
				continue;
			}
			jc->srcs = nv;
			jc->srcs[jc->nsrcs++] = s;
		}
	}
	if (jc->nsrcs > JWT_MAX_VIEWS / 2) {
		conf_err(ctx, ynode_path(c->tree, "jwt.keys"), "jwt.keys: at most %d jwks_url keys",
		    JWT_MAX_VIEWS / 2);
		rc = -1;
	}
	return rc;
}

/* The strings of s as the const array jwt_core's policy takes (NULL when s is empty); the
 * strings stay the section's, the array is the caller's. 0, or -1 out of memory. */
static int
strs_view(const struct conf_strs *s, const char ***out)
{
	size_t i;

	*out = NULL;
	if (s->n == 0)
		return 0;
	if ((*out = calloc(s->n, sizeof(**out))) == NULL)
		return -1;
	for (i = 0; i < s->n; i++)
		(*out)[i] = s->v[i];
	return 0;
}

static int
jwt_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	static uint64_t ids;
	const struct jwt_sect *js = sect;
	struct jwt_conf *jc;
	size_t i;

	*fconf = NULL;
	if (!js->enabled)
		return 0;
	if (js->claims_to_headers.n > 64) {
		conf_err(ctx, ynode_path(c->tree, "jwt.claims_to_headers"),
		    "jwt.claims_to_headers: at most 64 claims");
		return -1;
	}
	if ((jc = calloc(1, sizeof(*jc))) == NULL || (jc->keys = jwt_keyset_new()) == NULL)
		goto oom;
	jc->id = __atomic_add_fetch(&ids, 1, __ATOMIC_RELAXED);
	jc->fid = filter_id(&jwt_filter);
	jc->algs = js->algorithms;
	jc->revocation = js->revocation;
	jc->cookie = js->cookie;
	jc->cookie_len = jc->cookie ? strlen(jc->cookie) : 0;
	jc->policy.issuer = js->issuer;
	jc->policy.leeway_s = js->leeway_ms / 1000;
	if (strs_view(&js->audience, &jc->aud) < 0 || strs_view(&js->required_claims, &jc->req) < 0)
		goto oom;
	jc->policy.audience = jc->aud;
	jc->policy.n_audience = js->audience.n;
	jc->policy.required = jc->req;
	jc->policy.n_required = js->required_claims.n;
	if (js->claims_to_headers.n) {
		jc->ch = calloc(js->claims_to_headers.n, sizeof(*jc->ch));
		if (jc->ch == NULL)
			goto oom;
		for (i = 0; i < js->claims_to_headers.n; i++) {
			jc->ch[i].claim = js->claims_to_headers.v[i].key;
			jc->ch[i].header = js->claims_to_headers.v[i].val;
			jc->ch[i].hlen = strlen(jc->ch[i].header);
		}
		jc->nch = js->claims_to_headers.n;
	}
	if (load_keys(ctx, c, js, jc) < 0) {
		jwt_conf_free(jc);
		return -1;
	}
	*fconf = jc;
	return 0;
oom:
	jwt_conf_free(jc);
	conf_err(ctx, ynode_path(c->tree, "jwt"), "jwt: out of memory");
	return -1;
}

/* Every route meets the filter when claims_to_headers is set (the client's copies of those
 * headers are dropped everywhere); otherwise only routes with auth. cr is NULL for the
 * chain of requests no route matches. */
static int
jwt_route_wants(const struct conf *c, const struct conf_route *cr, const void *rkeys,
    const void *fconf)
{
	const struct jwt_conf *jc = fconf;
	const struct jwt_route *jr = rkeys;

	(void)c;
	if (jc->nch > 0)
		return 1;
	return cr != NULL && jr->auth != AUTH_OFF;
}

int
jwt_route_verifies(const struct conf_route *cr)
{
	const struct jwt_route *jr = conf_route_keys(cr, filter_id(&jwt_filter));

	return jr != NULL && jr->auth != AUTH_OFF;      /* AUTH_OFF without a jwt section */
}

/* ---- per-worker state ---------------------------------------------------------------- */

static void
views_clear(struct jwt_wstate *ws)
{
	size_t i;

	for (i = 0; i < ws->nviews; i++)
		jwt_keyset_unref(ws->views[i].ks);
	ws->nviews = 0;
	ws->epoch++;
}

/* This worker's view of a JWKS source: one atomic load when nothing changed; on a change,
 * the source's mutex once and a new key epoch (which retires every cached verdict). */
static const struct jwt_keyset *
view_get(struct jwt_wstate *ws, struct jwks_src *src)
{
	uint64_t cur = jwks_src_version(src);
	struct jwt_view *v = NULL;
	size_t i;

	for (i = 0; i < ws->nviews; i++)
		if (ws->views[i].src == src) {
			v = &ws->views[i];
			break;
		}
	if (v != NULL && v->ver == cur)
		return v->ks;
	if (v == NULL) {
		if (ws->nviews == JWT_MAX_VIEWS)
			return NULL;     /* cannot happen: keysets() makes room first */
		v = &ws->views[ws->nviews++];
		memset(v, 0, sizeof(*v));
		v->src = src;
		jwks_src_activate(src);
	}
	jwt_keyset_unref(v->ks);
	v->ks = jwks_src_keyset(src, &v->ver);
	ws->epoch++;
	return v->ks;
}

/* The keysets for jc, in order: the generation's own keys, then each JWKS source's. */
static size_t
keysets(struct jwt_wstate *ws, const struct jwt_conf *jc, const struct jwt_keyset **sets)
{
	size_t i, n = 0;
	const struct jwt_keyset *ks;

	sets[n++] = jc->keys;
	/* Room for every source of jc before taking any: clearing views while gathering would
	 * drop keysets already handed out. Generations overlap rarely; nsrcs <= MAX_VIEWS / 2. */
	if (ws->nviews + jc->nsrcs > JWT_MAX_VIEWS)
		views_clear(ws);
	for (i = 0; i < jc->nsrcs; i++)
		if ((ks = view_get(ws, jc->srcs[i])) != NULL)
			sets[n++] = ks;
	return n;
}

/* Whether any source moved past the version this worker verified with. */
static int
views_stale(struct jwt_wstate *ws, const struct jwt_conf *jc)
{
	size_t i, j;

	for (i = 0; i < jc->nsrcs; i++) {
		uint64_t cur = jwks_src_version(jc->srcs[i]);
		for (j = 0; j < ws->nviews; j++)
			if (ws->views[j].src == jc->srcs[i])
				break;
		if (j == ws->nviews || ws->views[j].ver != cur)
			return 1;
	}
	return 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg);

/* Also jwt_worker_init's failure path: any field may still be NULL. */
static void
jwt_worker_fini(struct worker *w, void *wstate)
{
	struct jwt_wstate *ws = wstate;
	size_t i;

	(void)w;
	if (ws == NULL)
		return;
	for (i = 0; ws->cache != NULL && i < (size_t)JWT_CACHE_SETS * JWT_CACHE_WAYS; i++)
		free(ws->cache[i].id);
	views_clear(ws);
	ev_free(&ws->tick);
	EVP_MD_CTX_free(ws->mdctx);
	EVP_MD_free(ws->sha256);
	free(ws->cache);
	free(ws->neg);
	free(ws);
}

static int
jwt_worker_init(struct worker *w, void **wstate)
{
	struct jwt_wstate *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return -1;
	ws->w = w;
	TAILQ_INIT(&ws->waiting);
	TAILQ_INIT(&ws->ready);
	ws->cache = calloc((size_t)JWT_CACHE_SETS * JWT_CACHE_WAYS, sizeof(*ws->cache));
	ws->neg = calloc(JWT_NEG_SLOTS, sizeof(*ws->neg));
	ws->tick = evtimer_new(filter_event_base(w), on_tick, ws);
	ws->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ws->mdctx = EVP_MD_CTX_new();
	if (ws->cache == NULL || ws->neg == NULL || ws->tick == NULL || ws->sha256 == NULL ||
	    ws->mdctx == NULL) {
		jwt_worker_fini(w, ws);     /* frees what was made */
		return -1;
	}
	*wstate = ws;
	return 0;
}

/* A new generation: start its JWKS sources fetching (the first generation's from the main
 * thread, before any request) and forget the views of the old one. */
static void
jwt_worker_conf(struct worker *w, void *wstate, const struct conf *c)
{
	struct jwt_wstate *ws = wstate;
	const struct jwt_conf *jc;
	size_t i, id = filter_id(&jwt_filter);

	(void)w;
	if (ws == NULL || id >= CONF_MAX_FILTERS)
		return;
	views_clear(ws);
	if ((jc = c->fconf[id]) == NULL)
		return;
	for (i = 0; i < jc->nsrcs; i++)
		jwks_src_activate(jc->srcs[i]);
}

/* ---- the verified-token cache -------------------------------------------------------- */

static uint32_t
key_hash(const unsigned char *k)
{
	uint32_t h;

	memcpy(&h, k, sizeof(h));     /* SHA-256 output: any 32 bits are uniform */
	return h;
}

static struct jwt_centry *
cache_find(struct jwt_wstate *ws, const unsigned char *key)
{
	struct jwt_centry *set = &ws->cache[(key_hash(key) & (JWT_CACHE_SETS - 1)) * JWT_CACHE_WAYS];
	int i;

	for (i = 0; i < JWT_CACHE_WAYS; i++)
		if (set[i].id != NULL && memcmp(set[i].key, key, SHA256_DIGEST_LENGTH) == 0)
			return &set[i];
	return NULL;
}

/* Takes `id`. The victim: an empty way, else the least recently used one. */
static void
cache_put(struct jwt_wstate *ws, const unsigned char *key, uint64_t conf_id, int64_t expire,
    struct jwt_ident *id)
{
	struct jwt_centry *set = &ws->cache[(key_hash(key) & (JWT_CACHE_SETS - 1)) * JWT_CACHE_WAYS];
	struct jwt_centry *e = cache_find(ws, key);
	int i;

	if (e == NULL) {
		e = &set[0];
		for (i = 0; i < JWT_CACHE_WAYS; i++) {
			if (set[i].id == NULL) {
				e = &set[i];
				break;
			}
			if (set[i].used < e->used)
				e = &set[i];
		}
	}
	free(e->id);
	memcpy(e->key, key, SHA256_DIGEST_LENGTH);
	e->conf_id = conf_id;
	e->epoch = ws->epoch;
	e->expire = expire;
	e->used = ++ws->clock;
	e->id = id;
}

static void
cache_drop(struct jwt_centry *e)
{
	free(e->id);
	memset(e, 0, sizeof(*e));
}

static struct jwt_nentry *
neg_slot(struct jwt_wstate *ws, const unsigned char *key)
{
	return &ws->neg[key_hash(key) & (JWT_NEG_SLOTS - 1)];
}

/* ---- identities ---------------------------------------------------------------------- */

/* exp/nbf/iat against now, as jwt_check_claims does them (same comparisons, same leeway). */
static enum jwt_err
ident_times(const struct jwt_ident *id, int64_t now, int64_t leeway)
{
	if (id->has_exp && !(id->exp_d > (double)(now - leeway)))
		return JWT_E_EXPIRED;
	if (id->has_nbf && id->nbf_d > (double)(now + leeway))
		return JWT_E_NOT_YET_VALID;
	if (id->has_iat && id->iat_d > (double)(now + leeway))
		return JWT_E_IAT_FUTURE;
	return JWT_OK;
}

static int
num_claim(const json_t *p, const char *name, double *out)
{
	const json_t *v = json_object_get(p, name);

	if (json_is_integer(v))
		*out = (double)json_integer_value(v);
	else if (json_is_real(v))
		*out = json_real_value(v);
	else
		return 0;
	return 1;
}

static int64_t
clamp_i64(double d)
{
	if (!(d > -9.2e18))
		return INT64_MIN;
	if (!(d < 9.2e18))
		return INT64_MAX;
	return (int64_t)d;
}

/* Builds the identity of a verified token. Claim values that are not valid header values are
 * left out and logged. JWT_OK, JWT_E_BAD_CLAIM (sub or jti holding a NUL: it would truncate
 * the rate-limit and revocation keys) or JWT_E_INTERNAL. */
static enum jwt_err
ident_build(const struct jwt_conf *jc, struct req *r, const json_t *p, struct jwt_ident **out)
{
	const json_t *sub = json_object_get(p, "sub"), *jti = json_object_get(p, "jti");
	char *txt[64] = { 0 };
	size_t tl[64], i, n = 0, size, nch = jc->nch < 64 ? jc->nch : 64;
	struct jwt_ident *id;
	char *q;
	enum jwt_err rc = JWT_E_INTERNAL;
	int k;

	*out = NULL;
	if ((sub && strlen(json_string_value(sub)) != json_string_length(sub)) ||
	    (jti && strlen(json_string_value(jti)) != json_string_length(jti)))
		return JWT_E_BAD_CLAIM;
	size = sizeof(*id);
	for (i = 0; i < nch; i++) {
		const json_t *v = json_object_get(p, jc->ch[i].claim);
		if (v == NULL)
			continue;
		k = jwt_claim_text(v, &txt[i], &tl[i]);
		if (k < 0)
			goto out;
		if (k > 0) {
			char extra[200];
			struct sbuf b = { 0 };
			sbuf_json_kv(&b, "request_id", r->id, strlen(r->id));
			sbuf_json_kv(&b, "claim", jc->ch[i].claim, strlen(jc->ch[i].claim));
			snprintf(extra, sizeof(extra), ",%s", sbuf_cstr(&b));
			sbuf_fini(&b);
			log_msg(LOG_WARN, extra, "jwt: claim not forwarded to the upstream: its value "
			    "holds control characters");
			continue;
		}
		size += sizeof(struct jwt_hval) + tl[i] + 1;
		n++;
	}
	if (sub)
		size += json_string_length(sub) + 1;
	if (jti)
		size += json_string_length(jti) + 1;
	if ((id = calloc(1, size)) == NULL)
		goto out;
	q = (char *)&id->h[n];
	for (i = 0; i < nch; i++) {
		if (txt[i] == NULL)
			continue;
		id->h[id->nh].idx = (uint32_t)i;
		id->h[id->nh].len = (uint32_t)tl[i];
		id->h[id->nh].val = q;
		memcpy(q, txt[i], tl[i] + 1);
		q += tl[i] + 1;
		id->nh++;
	}
	if (sub) {
		id->sub_len = json_string_length(sub);
		memcpy(q, json_string_value(sub), id->sub_len + 1);
		id->sub = q;
		q += id->sub_len + 1;
	}
	if (jti) {
		id->jti_len = json_string_length(jti);
		memcpy(q, json_string_value(jti), id->jti_len + 1);
		id->jti = q;
	}
	id->has_exp = num_claim(p, "exp", &id->exp_d);
	id->has_nbf = num_claim(p, "nbf", &id->nbf_d);
	id->has_iat = num_claim(p, "iat", &id->iat_d);
	id->exp = id->has_exp ? clamp_i64(id->exp_d) : 0;
	id->iat = id->has_iat ? clamp_i64(id->iat_d) : 0;
	*out = id;
	rc = JWT_OK;
out:
	for (i = 0; i < nch; i++)
		free(txt[i]);
	return rc;
}

/* ---- verification -------------------------------------------------------------------- */

/* The cache key: SHA-256 of the whole token (a collision would hand one token another's
 * identity, so nothing shorter or unkeyed). */
static void
token_key(struct jwt_wstate *ws, const char *tok, size_t len, unsigned char *key)
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex2(ws->mdctx, ws->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(ws->mdctx, tok, len) != 1 ||
	    EVP_DigestFinal_ex(ws->mdctx, key, &n) != 1 || n != SHA256_DIGEST_LENGTH)
		SHA256((const unsigned char *)tok, len, key);
}

/* Verifies `tok` for a request of generation jc. On JWT_OK, *idp points at the cached
 * identity (valid until the next cache operation on this worker: copy what you need). */
static enum jwt_err
verify(struct jwt_wstate *ws, const struct jwt_conf *jc, struct req *r, const char *tok,
    size_t len, int64_t now, struct jwt_ident **idp, int *has_kid)
{
	const struct jwt_keyset *sets[1 + JWT_MAX_VIEWS];
	unsigned char key[SHA256_DIGEST_LENGTH];
	struct jwt_centry *e;
	struct jwt_nentry *ne;
	struct jwt_token t;
	struct jwt_ident *id;
	enum jwt_err rc;
	size_t nsets;
	int64_t expire;

	*idp = NULL;
	if (len > JWT_MAX_TOKEN)
		return JWT_E_TOO_LARGE;
	/* Views first: a JWKS change moves the epoch before the cache is consulted. */
	nsets = keysets(ws, jc, sets);
	token_key(ws, tok, len, key);
	if ((e = cache_find(ws, key)) != NULL) {
		if (e->conf_id == jc->id && e->epoch == ws->epoch && e->expire > now) {
			rc = ident_times(e->id, now, jc->policy.leeway_s);
			if (rc != JWT_OK)
				return rc;
			e->used = ++ws->clock;
			*idp = e->id;
			return JWT_OK;
		}
		cache_drop(e);
	}
	ne = neg_slot(ws, key);
	if (ne->expire > now && ne->conf_id == jc->id && ne->epoch == ws->epoch &&
	    memcmp(ne->key, key, sizeof(key)) == 0)
		return (enum jwt_err)ne->reason;

	/* Cheap checks before the signature (as Envoy does): an expired, early, wrongly
	 * addressed or incomplete token never costs a signature verification. */
	if ((rc = jwt_parse(tok, len, jc->algs, &t)) != JWT_OK)
		return rc;
	*has_kid = t.kid != NULL;
	if ((rc = jwt_check_claims(t.payload, &jc->policy, now)) != JWT_OK)
		goto done;
	rc = jwt_verify_sig(&t, sets, nsets);
	if (rc == JWT_E_BAD_SIGNATURE) {
		/* The same forged token again costs one hash, not another verification. */
		memcpy(ne->key, key, sizeof(key));
		ne->conf_id = jc->id;
		ne->epoch = ws->epoch;
		ne->expire = now + JWT_NEG_TTL_S;
		ne->reason = rc;
		goto done;
	}
	if (rc != JWT_OK)
		goto done;
	if ((rc = ident_build(jc, r, t.payload, &id)) != JWT_OK)
		goto done;
	if (id->has_exp)
		expire = id->exp_d > 9e15 ? INT64_MAX / 2 :
		    (int64_t)floor(id->exp_d) + jc->policy.leeway_s + 1;
	else
		expire = now + JWT_NOEXP_TTL_S;
	cache_put(ws, key, jc->id, expire, id);
	*idp = id;
done:
	jwt_token_fini(&t);
	return rc;
}

/* Hands the identity to the filters after this one and the claims to the upstream. */
static int
accept_token(struct req *r, const struct jwt_conf *jc, const struct jwt_ident *id)
{
	size_t i;
	char *v;

	if (id->sub && (r->user = arena_strndup(&r->a, id->sub, id->sub_len)) == NULL)
		return -1;
	if (id->jti && (r->jti = arena_strndup(&r->a, id->jti, id->jti_len)) == NULL)
		return -1;
	r->iat = id->iat;
	r->token_exp = id->exp;
	r->check_revocation = jc->revocation;
	r->refuse_token = jwt_refuse;
	for (i = 0; i < id->nh; i++) {
		const struct jwt_claimhdr *ch = &jc->ch[id->h[i].idx];
		/* copied: the cache entry may be evicted while the request is in flight */
		if ((v = arena_strndup(&r->a, id->h[i].val, id->h[i].len)) == NULL ||
		    hdrs_add(&r->a, &r->h.hdrs, ch->header, ch->hlen, v, id->h[i].len) < 0)
			return -1;
	}
	return 0;
}

static void wait_enqueue(struct jwt_wstate *ws, struct jwt_rstate *st);

/* Starts waiting for the JWKS sources when that can help: a fetch is running, or a kick is
 * granted. 1 when the request now waits. */
static int
wait_for_keys(struct jwt_wstate *ws, struct jwt_rstate *st)
{
	const struct jwt_conf *jc = st->jc;
	struct req *r = st->r;
	int64_t now = now_ms();
	size_t i;
	int any = 0;

	if (st->snap == NULL && (st->snap = arena_alloc(&r->a, jc->nsrcs * sizeof(*st->snap))) == NULL)
		return 0;
	for (i = 0; i < jc->nsrcs; i++) {
		/* attempts before busy: see fetch_end in jwks.c */
		st->snap[i] = jwks_src_attempts(jc->srcs[i]);
		if (jwks_src_busy(jc->srcs[i]) || jwks_src_kick(jc->srcs[i], now))
			any = 1;
		else
			st->snap[i] = UINT64_MAX;
	}
	if (!any)
		return 0;
	st->deadline_ms = now + JWT_WAIT_MS;
	wait_enqueue(ws, st);
	return 1;
}

/* Verifies the request's token and applies the outcome. `may_wait`: allowed to suspend. */
static enum verdict
token_check(struct jwt_wstate *ws, struct jwt_rstate *st, int may_wait)
{
	struct req *r = st->r;
	const struct jwt_conf *jc = st->jc;
	struct jwt_ident *id;
	enum jwt_err rc;
	int64_t now = wall_s();
	int has_kid = 0;

	rc = verify(ws, jc, r, st->tok, st->len, now, &id, &has_kid);
	/* Keys a JWKS refetch could bring: a kid nobody has, or (without a kid) no key of the
	 * token's type yet. A kid that names a key of another type is not worth a fetch. */
	if ((rc == JWT_E_UNKNOWN_KID || (rc == JWT_E_NO_KEY && !has_kid)) && jc->nsrcs > 0) {
		/* A JWKS source moved while we looked: look again with the new keys. */
		if (views_stale(ws, jc))
			rc = verify(ws, jc, r, st->tok, st->len, now, &id, &has_kid);
		if ((rc == JWT_E_UNKNOWN_KID || (rc == JWT_E_NO_KEY && !has_kid)) && may_wait &&
		    wait_for_keys(ws, st))
			return V_SUSPEND;
	}
	if (rc == JWT_OK) {
		if (accept_token(r, jc, id) < 0) {
			r->log_reason = "jwt: out of memory";
			return V_ERROR;
		}
		return V_CONTINUE;
	}
	if (rc == JWT_E_INTERNAL) {
		METRIC_INC(filter_metrics(r), jwt_refused[JWT_E_INTERNAL]);
		log_warn("jwt: internal error verifying a token for request %s", r->id);
		return V_ERROR;
	}
	jwt_refuse(r, rc);
	return V_RESPOND;
}

/* ---- waiting for a JWKS refetch ------------------------------------------------------ */

static void
tick_arm(struct jwt_wstate *ws)
{
	struct timeval tv = { 0, JWT_TICK_MS * 1000 };

	if (!ws->tick_on) {
		evtimer_add(ws->tick, &tv);
		ws->tick_on = 1;
	}
}

static void
wait_enqueue(struct jwt_wstate *ws, struct jwt_rstate *st)
{
	st->ws = ws;
	st->queued = 1;
	TAILQ_INSERT_TAIL(&ws->waiting, st, link);
	tick_arm(ws);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct jwt_wstate *ws = arg;
	struct jwt_rstate *st, *nx;
	int64_t now = now_ms();
	size_t i;
	int go;
	enum verdict v;

	(void)fd;
	(void)what;
	ws->tick_on = 0;
	for (st = TAILQ_FIRST(&ws->waiting); st != NULL; st = nx) {
		nx = TAILQ_NEXT(st, link);
		go = now >= st->deadline_ms;
		for (i = 0; !go && i < st->jc->nsrcs; i++)
			go = st->snap[i] != UINT64_MAX &&
			    jwks_src_attempts(st->jc->srcs[i]) != st->snap[i];
		if (!go)
			continue;
		TAILQ_REMOVE(&ws->waiting, st, link);
		TAILQ_INSERT_TAIL(&ws->ready, st, link);
		st->queued = 2;
	}
	if (!TAILQ_EMPTY(&ws->waiting))
		tick_arm(ws);
	/* Resuming may run the rest of a request and start the next one on its connection
	 * (which may queue itself again): take them one by one off the ready list. */
	while ((st = TAILQ_FIRST(&ws->ready)) != NULL) {
		TAILQ_REMOVE(&ws->ready, st, link);
		st->queued = 0;
		v = token_check(ws, st, 0);
		req_resume(st->r, v);
	}
}

/* ---- the filter hooks ---------------------------------------------------------------- */

/* Finds the token. 1 with *tok and *len, 0 when there is none, -1 when the header and the
 * cookie (or two cookies) disagree, -2 for two Authorization headers. */
static int
extract(const struct req *r, const struct jwt_conf *jc, const char **tok, size_t *len)
{
	const char *ht = NULL, *ct = NULL;
	size_t hl = 0, cl = 0;
	uint32_t i;
	int nauth = 0, has_h = 0, has_c = 0, k;

	for (i = 0; i < r->h.hdrs.n; i++) {
		const struct hdr *h = &r->h.hdrs.v[i];
		if (ascii_casecmp_n(h->name, h->nlen, "authorization", 13) == 0) {
			if (++nauth > 1)
				return -2;
			has_h = jwt_bearer(h->val, h->vlen, &ht, &hl);
		} else if (jc->cookie && ascii_casecmp_n(h->name, h->nlen, "cookie", 6) == 0) {
			k = jwt_cookie(h->val, h->vlen, jc->cookie, jc->cookie_len, &ct, &cl);
			if (k < 0)
				return -1;
			has_c |= k;
		}
	}
	if (has_h && has_c && (hl != cl || memcmp(ht, ct, hl) != 0))
		return -1;
	if (has_h) {
		*tok = ht;
		*len = hl;
		return 1;
	}
	if (has_c) {
		*tok = ct;
		*len = cl;
		return 1;
	}
	return 0;
}

static enum verdict
jwt_on_request(struct req *r, const void *fconf, void *state)
{
	const struct jwt_conf *jc = fconf;
	struct jwt_rstate *st = state;
	struct jwt_wstate *ws;
	const struct jwt_route *jr = r->route ? conf_route_keys(r->route->cr, jc->fid) : NULL;
	enum auth_mode mode = jr != NULL ? jr->auth : AUTH_OFF;
	size_t i;
	int k;

	/* Only visor speaks for the token: never the client, on any route. */
	for (i = 0; i < jc->nch; i++)
		hdrs_deln(&r->h.hdrs, jc->ch[i].header, jc->ch[i].hlen);
	if (mode == AUTH_OFF)
		return V_CONTINUE;
	k = extract(r, jc, &st->tok, &st->len);
	if (k == -2) {
		req_respond(r, 400, NULL);
		r->log_reason = "jwt: two Authorization headers";
		return V_RESPOND;
	}
	if (k == -1) {
		jwt_refuse(r, JWT_E_AMBIGUOUS);
		return V_RESPOND;
	}
	if (k == 0) {
		if (mode == AUTH_OPTIONAL)
			return V_CONTINUE;
		refuse_missing(r);
		return V_RESPOND;
	}
	if ((ws = filter_wstate(r, jc->fid)) == NULL)
		return V_ERROR;
	st->r = r;
	st->jc = jc;
	return token_check(ws, st, 1);
}

static void
jwt_on_abort(struct req *r, void *state)
{
	struct jwt_rstate *st = state;

	(void)r;
	if (st == NULL || st->ws == NULL)
		return;
	if (st->queued == 1)
		TAILQ_REMOVE(&st->ws->waiting, st, link);
	else if (st->queued == 2)
		TAILQ_REMOVE(&st->ws->ready, st, link);
	st->queued = 0;
}

const struct filter jwt_filter = {
	.name = "jwt", .state_size = sizeof(struct jwt_rstate),
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct jwt_sect), .route_keys = &s_route,
	.route_size = sizeof(struct jwt_route), .conf_lint = jwt_lint, .conf_init = jwt_conf_init,
	.conf_free = jwt_conf_free, .route_wants = jwt_route_wants,
	/* worker */
	.worker_init = jwt_worker_init, .worker_fini = jwt_worker_fini,
	.worker_conf = jwt_worker_conf,
	/* request */
	.on_request = jwt_on_request, .on_abort = jwt_on_abort,
};
