/* SPDX-License-Identifier: MIT
 * Unit tests for the JWT filter glue (src/filters/jwt.c, included to reach its statics) and the
 * pure parts of the JWKS fetcher (src/lib/jwks.c): token extraction (Bearer, cookies, both),
 * claims → header text, the verified-token cache (hits, exp on every hit, key epochs,
 * generations, the negative cache, LRU eviction), identities, the configuration half
 * (keys, warnings, errors with positions), URL parsing and Cache-Control. */
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "t.h"
#include "filters/jwt.c"
#include "core/worker.h"

/* ---- helpers ------------------------------------------------------------------------- */

static char *
b64u(const unsigned char *in, size_t n)
{
	char *o = malloc(n * 4 / 3 + 8), *p;
	int len = EVP_EncodeBlock((unsigned char *)o, in, (int)n);

	while (len > 0 && o[len - 1] == '=')
		len--;
	o[len] = '\0';
	for (p = o; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return o;
}

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef-unit";

/* HS256 token over raw header and payload JSON. Caller frees. */
static char *
hs256(const char *hdr, const char *payload, const unsigned char *key, size_t klen)
{
	char *h = b64u((const unsigned char *)hdr, strlen(hdr));
	char *p = b64u((const unsigned char *)payload, strlen(payload));
	size_t n = strlen(h) + strlen(p) + 2;
	char *in = malloc(n), *sig, *out;
	unsigned char mac[32];
	unsigned int ml = 0;

	snprintf(in, n, "%s.%s", h, p);
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)in, strlen(in), mac, &ml);
	sig = b64u(mac, ml);
	n = strlen(in) + strlen(sig) + 2;
	out = malloc(n);
	snprintf(out, n, "%s.%s", in, sig);
	free(h);
	free(p);
	free(in);
	free(sig);
	return out;
}

static struct jwt_conf *
mk_conf(const char *const *claims, const char *const *headers, size_t nch)
{
	struct jwt_conf *jc = calloc(1, sizeof(*jc));
	struct jwt_key k;
	const char *err;
	size_t i;

	jc->id = 1000;
	jc->algs = JWT_ALG_BIT(JWT_HS256);
	jc->keys = jwt_keyset_new();
	jwt_key_from_secret(SECRET, sizeof(SECRET) - 1, NULL, &k, &err);
	jwt_keyset_add(jc->keys, &k);
	jc->policy.leeway_s = 0;
	jc->ch = calloc(nch ? nch : 1, sizeof(*jc->ch));
	for (i = 0; i < nch; i++) {
		jc->ch[i].claim = claims[i];
		jc->ch[i].header = headers[i];
		jc->ch[i].hlen = strlen(headers[i]);
	}
	jc->nch = nch;
	return jc;
}

static struct worker W;
static struct jwt_wstate *WS;

static void
ws_up(void)
{
	void *p = NULL;

	memset(&W, 0, sizeof(W));
	W.base = event_base_new();
	jwt_worker_init(&W, &p);
	WS = p;
}

static void
ws_down(void)
{
	jwt_worker_fini(&W, WS);
	event_base_free(W.base);
	WS = NULL;
}

static struct req R;

static void
req_up(void)
{
	memset(&R, 0, sizeof(R));
	arena_init(&R.a, 4096);
	memcpy(R.id, "00000000000000000000000000000000", 33);
	R.w = &W;
}

/* ---- extraction ---------------------------------------------------------------------- */

static void
t_bearer(void)
{
	static const struct {
		const char *v;
		int rc;
		const char *tok;
	} c[] = {
		{ "Bearer abc.def.ghi", 1, "abc.def.ghi" },
		{ "bearer abc", 1, "abc" },
		{ "BEARER abc", 1, "abc" },
		{ "bEaReR   abc", 1, "abc" },
		{ "Bearer\tabc", 1, "abc" },
		{ "Bearer", 1, "" },
		{ "Bearer ", 1, "" },
		{ "Bearerabc", 0, NULL },
		{ "Basic YWxhZGRpbjpvcGVuc2VzYW1l", 0, NULL },
		{ "Bear abc", 0, NULL },
		{ "", 0, NULL },
		{ "Token abc", 0, NULL },
		{ "Bearer a b", 1, "a b" },     /* refused later by the strict parser */
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		const char *t = NULL;
		size_t tl = 0;
		int rc = jwt_bearer(c[i].v, strlen(c[i].v), &t, &tl);
		T_CHECK(rc == c[i].rc, "bearer '%s': rc %d", c[i].v, rc);
		if (rc == 1 && c[i].tok)
			T_CHECK(tl == strlen(c[i].tok) && memcmp(t, c[i].tok, tl) == 0,
			    "bearer '%s': token '%.*s'", c[i].v, (int)tl, t);
	}
}

static void
t_cookie(void)
{
	static const struct {
		const char *v;
		int rc;
		const char *val;
	} c[] = {
		{ "access_token=abc", 1, "abc" },
		{ "a=1; access_token=abc; b=2", 1, "abc" },
		{ "a=1;access_token=abc;b=2", 1, "abc" },
		{ "  access_token = abc  ", 1, "abc" },
		{ "access_token=\"abc\"", 1, "abc" },
		{ "access_token=\"\"", 1, "" },
		{ "access_token=", 1, "" },
		{ "Access_Token=abc", 0, NULL },
		{ "access_token_2=abc", 0, NULL },
		{ "xaccess_token=abc", 0, NULL },
		{ "access_token", 0, NULL },
		{ "", 0, NULL },
		{ ";;;", 0, NULL },
		{ "access_token=abc; access_token=abc", 1, "abc" },
		{ "access_token=abc; access_token=abd", -1, NULL },
		{ "access_token=a=b", 1, "a=b" },
	};
	size_t i;
	const char *v;
	size_t vl;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		int rc;
		v = NULL;
		vl = 0;
		rc = jwt_cookie(c[i].v, strlen(c[i].v), "access_token", 12, &v, &vl);
		T_CHECK(rc == c[i].rc, "cookie '%s': rc %d", c[i].v, rc);
		if (rc == 1 && c[i].val)
			T_CHECK(vl == strlen(c[i].val) && memcmp(v, c[i].val, vl) == 0,
			    "cookie '%s': value '%.*s'", c[i].v, (int)vl, v);
	}
	/* across two Cookie headers */
	v = NULL;
	T_EQ_INT(jwt_cookie("a=1", 3, "access_token", 12, &v, &vl), 0);
	T_EQ_INT(jwt_cookie("access_token=x", 14, "access_token", 12, &v, &vl), 1);
	T_EQ_INT(jwt_cookie("b=2", 3, "access_token", 12, &v, &vl), 1);
	T_EQ_INT(jwt_cookie("access_token=x", 14, "access_token", 12, &v, &vl), 1);
	T_EQ_INT(jwt_cookie("access_token=y", 14, "access_token", 12, &v, &vl), -1);
end:;
}

static void
add_hdr(const char *n, const char *v)
{
	hdrs_add(&R.a, &R.h.hdrs, n, strlen(n), v, strlen(v));
}

static void
t_extract(void)
{
	struct jwt_conf *jc = mk_conf(NULL, NULL, 0);
	const char *t;
	size_t tl;

	jc->cookie = "sid";
	jc->cookie_len = 3;
	req_up();
	T_EQ_INT(extract(&R, jc, &t, &tl), 0);
	add_hdr("Accept", "*/*");
	add_hdr("authorization", "Basic eDp5");
	T_EQ_INT(extract(&R, jc, &t, &tl), 0);
	add_hdr("Cookie", "a=1; sid=tok1");
	T_EQ_INT(extract(&R, jc, &t, &tl), 1);
	T_OK(tl == 4 && memcmp(t, "tok1", 4) == 0);
	arena_free(&R.a);

	req_up();
	add_hdr("Authorization", "Bearer tok1");
	add_hdr("Cookie", "sid=tok1");
	T_EQ_INT(extract(&R, jc, &t, &tl), 1);
	T_OK(tl == 4 && memcmp(t, "tok1", 4) == 0);
	add_hdr("Cookie", "sid=tok2");            /* a second Cookie header disagrees */
	T_EQ_INT(extract(&R, jc, &t, &tl), -1);
	arena_free(&R.a);

	req_up();
	add_hdr("Authorization", "Bearer tok1");
	add_hdr("Cookie", "sid=tok2");
	T_EQ_INT(extract(&R, jc, &t, &tl), -1);
	arena_free(&R.a);

	req_up();
	add_hdr("Authorization", "Bearer tok1");
	add_hdr("AUTHORIZATION", "Bearer tok1");
	T_EQ_INT(extract(&R, jc, &t, &tl), -2);
	arena_free(&R.a);

	/* without a configured cookie, cookies are never read */
	jc->cookie = NULL;
	req_up();
	add_hdr("Cookie", "sid=tok1");
	T_EQ_INT(extract(&R, jc, &t, &tl), 0);
end:
	arena_free(&R.a);
	jwt_conf_free(jc);
}

/* ---- claims → header text ------------------------------------------------------------ */

static void
t_claim_text(void)
{
	static const struct {
		const char *json;
		int rc;
		const char *text;
	} c[] = {
		{ "\"alice\"", 0, "alice" },
		{ "\"\"", 0, "" },
		{ "\"caf\\u00e9\"", 0, "caf\xc3\xa9" },
		{ "\"a\\tb\"", 0, "a\tb" },
		{ "\"a\\r\\nX-Evil: 1\"", 1, NULL },
		{ "\"a\\nb\"", 1, NULL },
		{ "\"a\\u007fb\"", 1, NULL },
		{ "\"a\\u0001b\"", 1, NULL },
		{ "42", 0, "42" },
		{ "-7", 0, "-7" },
		{ "9007199254740993", 0, "9007199254740993" },
		{ "1.5", 0, "1.5" },
		{ "0.1", 0, "0.1" },
		{ "1e21", 0, "1e+21" },
		{ "true", 0, "true" },
		{ "false", 0, "false" },
		{ "null", 0, "null" },
		{ "[1,\"a\",true]", 0, "[1,\"a\",true]" },
		{ "{\"a\": {\"b\": [1, 2]}}", 0, "{\"a\":{\"b\":[1,2]}}" },
		{ "[\"x\\ny\"]", 0, "[\"x\\ny\"]" },          /* escaped by JSON: safe */
		{ "[\"x\\u007fy\"]", 1, NULL },                 /* DEL is not escaped by JSON */
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		json_error_t je;
		json_t *v = json_loads(c[i].json, JSON_DECODE_ANY, &je);
		char *out = NULL;
		size_t n = 0;
		int rc;

		if (v == NULL) {
			T_CHECK(0, "bad fixture %s", c[i].json);
			continue;
		}
		rc = jwt_claim_text(v, &out, &n);
		T_CHECK(rc == c[i].rc, "claim %s: rc %d", c[i].json, rc);
		if (rc == 0 && c[i].text)
			T_CHECK(n == strlen(c[i].text) && strcmp(out, c[i].text) == 0,
			    "claim %s: text '%s'", c[i].json, out);
		if (rc != 0)
			T_CHECK(out == NULL, "claim %s: no output on refusal", c[i].json);
		free(out);
		json_decref(v);
	}
	T_OK(jwt_header_value_ok("a b\tc\x80\xff", 7));
	T_OK(!jwt_header_value_ok("a\0b", 3));
	T_OK(!jwt_header_value_ok("a\rb", 3));
	T_OK(!jwt_header_value_ok("\x7f", 1));
end:;
}

/* ---- identities ------------------------------------------------------------------------ */

static void
t_ident(void)
{
	static const char *const cl[] = { "sub", "role", "evil", "n" };
	static const char *const hd[] = { "X-User-Id", "X-Role", "X-Evil", "X-N" };
	struct jwt_conf *jc = mk_conf(cl, hd, 4);
	struct jwt_ident *id = NULL;
	json_t *p;

	ws_up();
	req_up();
	p = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:f}", "sub", "alice", "role", "admin",
	    "evil", "x\r\ny", "n", 7, "jti", "j-1", "iat", (json_int_t)1000, "exp",
	    (json_int_t)2000, "nbf", 999.5);
	T_EQ_INT(ident_build(jc, &R, p, &id), JWT_OK);
	T_EQ_STR(id->sub, "alice");
	T_EQ_STR(id->jti, "j-1");
	T_EQ_INT(id->iat, 1000);
	T_EQ_INT(id->exp, 2000);
	T_OK(id->has_exp && id->has_iat && id->has_nbf);
	T_EQ_INT(id->nh, 3);                    /* evil left out */
	T_EQ_STR(id->h[0].val, "alice");
	T_EQ_STR(jc->ch[id->h[1].idx].header, "X-Role");
	T_EQ_STR(id->h[2].val, "7");
	/* accept_token copies into the request and adds the headers */
	T_EQ_INT(accept_token(&R, jc, id), 0);
	T_EQ_STR(R.user, "alice");
	T_EQ_STR(R.jti, "j-1");
	T_EQ_INT(R.iat, 1000);
	T_EQ_INT(R.token_exp, 2000);
	T_EQ_INT(R.h.hdrs.n, 3);
	T_OK(hdrs_get(&R.h.hdrs, "x-role") != NULL);
	T_OK(hdrs_get(&R.h.hdrs, "x-evil") == NULL);
	T_OK(R.user != id->sub);                /* a copy in the arena */
	free(id);
	id = NULL;
	/* time checks as jwt_check_claims makes them */
	{
		struct jwt_ident t = { .has_exp = 1, .exp_d = 100, .has_nbf = 1, .nbf_d = 50,
		    .has_iat = 1, .iat_d = 40 };
		T_EQ_INT(ident_times(&t, 99, 0), JWT_OK);
		T_EQ_INT(ident_times(&t, 100, 0), JWT_E_EXPIRED);
		T_EQ_INT(ident_times(&t, 104, 5), JWT_OK);
		T_EQ_INT(ident_times(&t, 105, 5), JWT_E_EXPIRED);
		T_EQ_INT(ident_times(&t, 49, 0), JWT_E_NOT_YET_VALID);
		T_EQ_INT(ident_times(&t, 45, 5), JWT_OK);
		T_EQ_INT(ident_times(&t, 39, 0), JWT_E_NOT_YET_VALID);
		t.has_nbf = 0;
		T_EQ_INT(ident_times(&t, 39, 0), JWT_E_IAT_FUTURE);
		T_EQ_INT(ident_times(&t, 39, 1), JWT_OK);
	}
end:
	free(id);
	json_decref(p);
	arena_free(&R.a);
	ws_down();
	jwt_conf_free(jc);
}

/* ---- the cache -------------------------------------------------------------------------- */

static void
t_cache(void)
{
	static const char *const cl[] = { "sub" };
	static const char *const hd[] = { "X-User-Id" };
	struct jwt_conf *jc = mk_conf(cl, hd, 1);
	struct jwt_keyset *keys = jc->keys, *empty = jwt_keyset_new();
	struct jwt_ident *id;
	unsigned char key[32];
	char payload[256], *good, *bad, *noexp;
	int64_t now = 1700000000;
	int kid = 0;

	ws_up();
	req_up();
	snprintf(payload, sizeof(payload), "{\"sub\":\"u1\",\"exp\":%lld}", (long long)(now + 10));
	good = hs256("{\"alg\":\"HS256\"}", payload, SECRET, sizeof(SECRET) - 1);
	snprintf(payload, sizeof(payload), "{\"sub\":\"u1\",\"exp\":%lld}", (long long)(now + 10000));
	bad = hs256("{\"alg\":\"HS256\"}", payload, (const unsigned char *)"another-secret-another-secret!!!", 32);
	noexp = hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"u2\"}", SECRET, sizeof(SECRET) - 1);

	/* miss, verify, insert */
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now, &id, &kid), JWT_OK);
	T_EQ_STR(id->sub, "u1");
	SHA256((const unsigned char *)good, strlen(good), key);
	T_OK(cache_find(WS, key) != NULL);
	T_EQ_INT(cache_find(WS, key)->expire, now + 10 + 0 + 1);
	/* a hit never looks at the keys: with none left it still answers from the cache */
	jc->keys = empty;
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now + 5, &id, &kid), JWT_OK);
	/* ... but exp is checked on every hit */
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now + 10, &id, &kid), JWT_E_EXPIRED);
	jc->policy.leeway_s = 3;     /* (a real leeway change is a new generation) */
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now + 10, &id, &kid), JWT_OK);
	jc->policy.leeway_s = 0;
	/* a new key epoch (a JWKS change) retires the entry: with no key, NO_KEY */
	WS->epoch++;
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now, &id, &kid), JWT_E_NO_KEY);
	T_OK(cache_find(WS, key) == NULL);
	jc->keys = keys;
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now, &id, &kid), JWT_OK);
	/* another generation (conf id) never shares entries */
	jc->id++;
	jc->keys = empty;
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now, &id, &kid), JWT_E_NO_KEY);
	jc->keys = keys;
	/* claims are checked before any signature: an expired token is never verified */
	T_EQ_INT(verify(WS, jc, &R, good, strlen(good), now + 100, &id, &kid), JWT_E_EXPIRED);

	/* negative cache: a bad signature, then the same token costs one hash */
	T_EQ_INT(verify(WS, jc, &R, bad, strlen(bad), now, &id, &kid), JWT_E_BAD_SIGNATURE);
	SHA256((const unsigned char *)bad, strlen(bad), key);
	T_OK(neg_slot(WS, key)->expire == now + JWT_NEG_TTL_S);
	jc->keys = empty;            /* with no key the answer would be NO_KEY: it comes from the cache */
	T_EQ_INT(verify(WS, jc, &R, bad, strlen(bad), now + 1, &id, &kid), JWT_E_BAD_SIGNATURE);
	T_EQ_INT(verify(WS, jc, &R, bad, strlen(bad), now + JWT_NEG_TTL_S, &id, &kid), JWT_E_NO_KEY);
	jc->keys = keys;

	/* a token without exp lives JWT_NOEXP_TTL_S in the cache */
	T_EQ_INT(verify(WS, jc, &R, noexp, strlen(noexp), now, &id, &kid), JWT_OK);
	SHA256((const unsigned char *)noexp, strlen(noexp), key);
	T_EQ_INT(cache_find(WS, key)->expire, now + JWT_NOEXP_TTL_S);

	/* over 8 KiB: refused before hashing */
	{
		char *huge = malloc(JWT_MAX_TOKEN + 2);
		memset(huge, 'a', JWT_MAX_TOKEN + 1);
		huge[JWT_MAX_TOKEN + 1] = '\0';
		T_EQ_INT(verify(WS, jc, &R, huge, JWT_MAX_TOKEN + 1, now, &id, &kid), JWT_E_TOO_LARGE);
		free(huge);
	}
end:
	jc->keys = keys;
	jwt_keyset_unref(empty);
	free(good);
	free(bad);
	free(noexp);
	arena_free(&R.a);
	ws_down();
	jwt_conf_free(jc);
}

/* LRU within a set, and the bound: never more than SETS * WAYS entries. */
static void
t_cache_lru(void)
{
	unsigned char k[6][32];
	struct jwt_ident *ids[6];
	int i, n = 0;
	size_t j;

	ws_up();
	for (i = 0; i < 6; i++) {
		memset(k[i], 0, 32);
		k[i][31] = (unsigned char)i;          /* same first 4 bytes: the same set */
		ids[i] = calloc(1, sizeof(struct jwt_ident));
	}
	for (i = 0; i < 4; i++)
		cache_put(WS, k[i], 1, 100, ids[i]);
	for (i = 0; i < 4; i++)
		T_OK(cache_find(WS, k[i]) != NULL);
	/* touch 0, 2, 3: 1 is the least recently used */
	cache_find(WS, k[0])->used = ++WS->clock;
	cache_find(WS, k[2])->used = ++WS->clock;
	cache_find(WS, k[3])->used = ++WS->clock;
	cache_put(WS, k[4], 1, 100, ids[4]);
	T_OK(cache_find(WS, k[1]) == NULL);
	T_OK(cache_find(WS, k[4]) != NULL);
	T_OK(cache_find(WS, k[0]) != NULL);
	/* re-putting a present key replaces it in place */
	cache_put(WS, k[4], 2, 200, ids[5]);
	T_EQ_INT(cache_find(WS, k[4])->conf_id, 2);
	for (j = 0; j < (size_t)JWT_CACHE_SETS * JWT_CACHE_WAYS; j++)
		n += WS->cache[j].id != NULL;
	T_EQ_INT(n, 4);
end:
	ws_down();
}

/* ---- configuration ------------------------------------------------------------------------ */

/* conf_parse + jwt_conf_init on a YAML text; the messages `visor -t` would print in *out. */
static int
conf_run(const char *src, char **out, struct jwt_conf **jcp)
{
	struct conf c;
	struct conf_ctx x;
	struct ynode *r;
	void *fc = NULL;
	size_t len;
	FILE *f;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	memset(&x, 0, sizeof(x));
	x.no_resolve = 1;
	x.file = "t.yaml";
	r = yaml_load_buf("t.yaml", src, strlen(src), conf_yaml_err, &x);
	if (r != NULL && conf_parse(&x, r, &c) == 0) {
		c.tree = r;
		rc = jwt_conf_init(&x, &c, conf_sect(&c, filter_id(&jwt_filter)), &fc);
		c.tree = NULL;
	}
	f = open_memstream(out, &len);
	conf_ctx_print(&x, f);
	fclose(f);
	if (jcp)
		*jcp = fc;
	else
		jwt_conf_free(fc);
	ynode_free(r);
	conf_free(&c);
	conf_ctx_fini(&x);
	return rc;
}

#define BASE "listen: {https: 127.0.0.1:8443}\ntls: {certificates: [{cert: a.crt, key: a.key}]}\n" \
	"upstream: {servers: [127.0.0.1:3000]}\n"

static void
t_conf(void)
{
	char dir[] = "/tmp/visor-test-jwt-XXXXXX", path[256], src[2048], *out = NULL;
	struct jwt_conf *jc = NULL;
	EVP_PKEY *pk = NULL;
	FILE *f;

	T_OK(mkdtemp(dir) != NULL);
	/* a P-256 public key file */
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	snprintf(path, sizeof(path), "%s/ec.pem", dir);
	f = fopen(path, "w");
	PEM_write_PUBKEY(f, pk);
	fclose(f);

	/* a short secret loads (HS256 only) with no message; the EC key serves ES256 */
	snprintf(src, sizeof(src), BASE "jwt:\n  algorithms: [HS256, ES256]\n  keys:\n"
	    "    - secret: short\n    - file: %s\n      kid: e1\n", path);
	T_EQ_INT(conf_run(src, &out, &jc), 0);
	T_EQ_STR(out, "");
	T_OK(jc != NULL && jc->keys->n == 2);
	T_EQ_INT(jc->keys->v[0].algs, JWT_ALG_BIT(JWT_HS256));
	T_EQ_STR(jc->keys->v[1].kid, "e1");
	jwt_conf_free(jc);
	jc = NULL;
	free(out);
	out = NULL;

	/* a key no allowed algorithm can use: a warning at its position */
	snprintf(src, sizeof(src), BASE "jwt:\n  algorithms: [RS256]\n  keys:\n"
	    "    - file: %s\n", path);
	T_EQ_INT(conf_run(src, &out, NULL), 0);
	T_OK(strstr(out, "t.yaml:7:13: warning: jwt.keys: this key can only verify ES256, and "
	    "jwt.algorithms allows RS256") != NULL);
	free(out);
	out = NULL;

	/* errors name the file and the position of the value */
	snprintf(src, sizeof(src), BASE "jwt:\n  algorithms: [RS256]\n  keys:\n"
	    "    - file: %s/missing.pem\n    - jwks_file: %s\n", dir, path);
	T_EQ_INT(conf_run(src, &out, NULL), -1);
	T_OK(strstr(out, "t.yaml:7:13: error: jwt.keys[0].file: cannot read") != NULL);
	T_OK(strstr(out, "t.yaml:8:18: error: jwt.keys[1].jwks_file: ") != NULL);
	T_OK(strstr(out, "not valid JSON") != NULL);
	free(out);
	out = NULL;

	/* a JWKS file with nothing usable is an error; one with a skipped key, a warning */
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	f = fopen(path, "w");
	fputs("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}]}", f);
	fclose(f);
	snprintf(src, sizeof(src), BASE "jwt:\n  algorithms: [RS256]\n  keys:\n"
	    "    - jwks_file: %s\n", path);
	T_EQ_INT(conf_run(src, &out, NULL), -1);
	T_OK(strstr(out, "holds no usable key (1 skipped)") != NULL);
	free(out);
	out = NULL;

	/* a secret that is a PEM public key: refused (algorithm confusion setup) */
	snprintf(src, sizeof(src), BASE "jwt:\n  algorithms: [HS256]\n  keys:\n"
	    "    - secret: \"-----BEGIN PUBLIC KEY-----\"\n");
	T_EQ_INT(conf_run(src, &out, NULL), -1);
	T_OK(strstr(out, "t.yaml:7:15: error: jwt.keys[0].secret: HMAC secret looks like a PEM key") != NULL);
	free(out);
	out = NULL;

	/* jwks_url: registered (not fetched: nothing is activated here), two generations share it */
	{
		struct jwt_conf *a = NULL, *b = NULL;
		const char *u = BASE "jwt:\n  keys:\n    - jwks_url: https://idp.example/jwks?x=1\n";
		T_EQ_INT(conf_run(u, &out, &a), 0);
		free(out);
		out = NULL;
		T_EQ_INT(conf_run(u, &out, &b), 0);
		T_OK(a && b && a->nsrcs == 1 && b->nsrcs == 1 && a->srcs[0] == b->srcs[0]);
		T_EQ_STR(jwks_src_url(a->srcs[0]), "https://idp.example/jwks");
		T_EQ_INT(jwks_src_version(a->srcs[0]), 0);
		jwt_conf_free(a);
		jwt_conf_free(b);
		free(out);
		out = NULL;
	}
end:
	free(out);
	EVP_PKEY_free(pk);
	snprintf(path, sizeof(path), "%s/ec.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	unlink(path);
	rmdir(dir);
}

static void
t_reasons(void)
{
	int e;

	for (e = 1; e < JWT_E_COUNT; e++) {
		const char *s = jwt_log_reason(e);
		T_CHECK(strncmp(s, "jwt:", 4) == 0 && strcmp(s + 4, jwt_err_name((enum jwt_err)e)) == 0,
		    "reason %d: %s vs %s", e, s, jwt_err_name((enum jwt_err)e));
	}
	T_EQ_STR(jwt_log_reason(0), "jwt");
	T_EQ_STR(jwt_log_reason(JWT_E_COUNT), "jwt");
	T_OK(JWT_E_COUNT <= METRICS_REASONS);
end:;
}

/* ---- jwks.c pure helpers --------------------------------------------------------------- */

static void
t_jwks_url(void)
{
	static const struct {
		const char *url, *host, *port, *path;
	} ok[] = {
		{ "https://idp.example/.well-known/jwks.json", "idp.example", "443", "/.well-known/jwks.json" },
		{ "https://idp.example", "idp.example", "443", "/" },
		{ "HTTPS://idp.example:8443/k?v=1#frag", "idp.example", "8443", "/k?v=1" },
		{ "https://127.0.0.1:9/x", "127.0.0.1", "9", "/x" },
		{ "https://[::1]:4443/jwks", "::1", "4443", "/jwks" },
		{ "https://[2001:db8::1]/", "2001:db8::1", "443", "/" },
		{ "https://h?q", "h", "443", "/?q" },
	};
	static const char *const bad[] = {
		"http://idp.example/", "https://", "https:///x", "https://user@idp.example/",
		"https://idp.example:0/", "https://idp.example:65536/", "https://idp.example:/",
		"https://idp.example:12a/", "https://[::1/", "https://[]/", "https://[::1]x/",
		"https://idp example/", "https://idp.example/a b", "https://idp.example/\r\n",
		"https://idp%2eexample/", "ftp://x/",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(ok); i++) {
		char *h, *p, *pa;
		const char *err = NULL;
		int rc = jwks_url_parse(ok[i].url, &h, &p, &pa, &err);
		T_CHECK(rc == 0, "url %s: %s", ok[i].url, err ? err : "");
		if (rc == 0)
			T_CHECK(strcmp(h, ok[i].host) == 0 && strcmp(p, ok[i].port) == 0 &&
			    strcmp(pa, ok[i].path) == 0, "url %s: %s %s %s", ok[i].url, h, p, pa);
		if (rc == 0) {
			free(h);
			free(p);
			free(pa);
		}
	}
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		char *h, *p, *pa;
		const char *err = NULL;
		int rc = jwks_url_parse(bad[i], &h, &p, &pa, &err);
		T_CHECK(rc == -1 && err != NULL && h == NULL, "url %s accepted", bad[i]);
	}
}

static void
t_cache_control(void)
{
	static const struct {
		const char *v;
		int64_t age;
	} c[] = {
		{ "max-age=300", 300 },
		{ "public, max-age=3600, must-revalidate", 3600 },
		{ "Max-Age=5", 5 },
		{ "max-age=\"120\"", 120 },
		{ "no-cache", 0 },
		{ "max-age=600, no-store", 0 },
		{ "public", -1 },
		{ "", -1 },
		{ "max-age=", -1 },
		{ "max-age=12x", -1 },
		{ "max-age=-1", -1 },
		{ "s-maxage=10", -1 },
		{ "max-age=99999999999999999999999", INT64_C(1) << 40 },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		int64_t a = jwks_cache_max_age(c[i].v, strlen(c[i].v));
		T_CHECK(a == c[i].age || (c[i].age == (INT64_C(1) << 40) && a >= c[i].age),
		    "cache-control '%s': %lld", c[i].v, (long long)a);
	}
	T_EQ_INT(jwks_ttl(-1), JWKS_TTL_DEFAULT_S);
	T_EQ_INT(jwks_ttl(0), JWKS_TTL_MIN_S);
	T_EQ_INT(jwks_ttl(59), 60);
	T_EQ_INT(jwks_ttl(61), 61);
	T_EQ_INT(jwks_ttl(86401), JWKS_TTL_MAX_S);
	T_EQ_INT(jwks_ttl(INT64_C(1) << 40), JWKS_TTL_MAX_S);
end:;
}

/* The unknown-kid limiter: one kick per 30 s per source. */
static void
t_kick(void)
{
	const char *err = NULL;
	struct jwks_src *s = jwks_src_get("https://127.0.0.1:1/never", &err);
	int64_t t = now_ms();

	T_OK(s != NULL);
	/* jwks_src_kick activates the source (the fetcher thread starts; port 1 refuses) */
	T_EQ_INT(jwks_src_kick(s, t), 1);
	T_EQ_INT(jwks_src_kick(s, t + 1), 0);
	T_EQ_INT(jwks_src_kick(s, t + JWKS_KICK_MS - 1), 0);
	T_EQ_INT(jwks_src_kick(s, t + JWKS_KICK_MS), 1);
	/* the failed fetch is counted as an attempt, and no keys appear */
	for (int i = 0; i < 200 && jwks_src_attempts(s) == 0; i++)
		usleep(10000);
	T_OK(jwks_src_attempts(s) >= 1);
	T_EQ_INT(jwks_src_version(s), 0);
end:
	jwks_src_unref(s);
}

T_MAIN(t_bearer, t_cookie, t_extract, t_claim_text, t_ident, t_cache, t_cache_lru, t_conf,
    t_reasons, t_jwks_url, t_cache_control, t_kick)
