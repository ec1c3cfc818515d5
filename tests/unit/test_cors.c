/* SPDX-License-Identifier: MIT
 * Unit tests for the pure half of src/filters/cors.c: origin normalisation (docs/cors.md, "CORS
 * origins"), the allowlist built from a config, same-origin detection and the preflight
 * method / header checks. */
#include <stdlib.h>

#include "t.h"
#include "conf/conf.h"
#include "filters/cors.h"

struct ncase { const char *in; const char *want; };   /* want NULL: refused */

static void
test_normalize(void)
{
	static const struct ncase c[] = {
		{ "https://app.example.com", "https://app.example.com" },
		{ "https://App.Example.COM", "https://app.example.com" },
		{ "HTTPS://app.example.com", "https://app.example.com" },
		{ "https://app.example.com:443", "https://app.example.com" },
		{ "https://app.example.com:0443", "https://app.example.com" },
		{ "https://app.example.com:8443", "https://app.example.com:8443" },
		{ "https://app.example.com:08443", "https://app.example.com:8443" },
		{ "https://app.example.com:80", "https://app.example.com:80" },
		{ "http://app.example.com:80", "http://app.example.com" },
		{ "http://app.example.com:443", "http://app.example.com:443" },
		{ "http://localhost:3000", "http://localhost:3000" },
		{ "wss://x.test:443", "wss://x.test" },
		{ "ws://x.test:80", "ws://x.test" },
		{ "https://x.test:", "https://x.test" },          /* empty port = default */
		{ "https://x.test:0", "https://x.test:0" },
		{ "https://x.test:65535", "https://x.test:65535" },
		{ "https://[::1]:443", "https://[::1]" },
		{ "https://[FE80::1]:8443", "https://[fe80::1]:8443" },
		{ "https://127.0.0.1:8443", "https://127.0.0.1:8443" },
		{ "app+x.y-z://h", "app+x.y-z://h" },
		{ "chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop" },
		{ "https://a_b.example~x", "https://a_b.example~x" },
		{ "null", "null" },
		/* refused */
		{ "", NULL }, { "NULL", NULL }, { "null ", NULL }, { "*", NULL },
		{ "https://*.example.com", NULL }, { "*.example.com", NULL },
		{ "https://app.example.com/", NULL }, { "https://app.example.com/x", NULL },
		{ "https://app.example.com?x", NULL }, { "https://app.example.com#x", NULL },
		{ "https://user@app.example.com", NULL }, { "https://", NULL },
		{ "https:/app.example.com", NULL }, { "app.example.com", NULL },
		{ "1https://x", NULL }, { "https://x:65536", NULL }, { "https://x:123456", NULL },
		{ "https://x:-1", NULL }, { "https://x:1a", NULL }, { "https://x: 1", NULL },
		{ "https://[]", NULL }, { "https://[::1", NULL }, { "https://[::g]", NULL },
		{ "https://x y", NULL }, { " https://x", NULL }, { "https://x ", NULL },
		{ "https://x\r", NULL }, { "https://ex\xc3\xa4mple.com", NULL },
		{ "https://x:443:443", NULL },
	};
	char out[CORS_ORIGIN_MAX];
	size_t i;
	long n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		n = cors_origin_normalize(c[i].in, strlen(c[i].in), out, sizeof(out));
		if (c[i].want == NULL) {
			T_CHECK(n == -1, "normalize(\"%s\") = %ld, want refused", c[i].in, n);
		} else {
			T_CHECK(n == (long)strlen(c[i].want) && strcmp(out, c[i].want) == 0,
			    "normalize(\"%s\") = %ld \"%s\", want \"%s\"", c[i].in, n, n >= 0 ? out : "",
			    c[i].want);
		}
	}
	/* an embedded NUL is not part of any origin */
	T_EQ_INT(cors_origin_normalize("https://a\0b", 11, out, sizeof(out)), -1);
	/* the output bound is respected */
	T_EQ_INT(cors_origin_normalize("https://app.example.com", 23, out, 10), -1);
	T_EQ_INT(cors_origin_normalize("https://app.example.com", 23, out, 23), -1);
	T_EQ_INT(cors_origin_normalize("https://app.example.com", 23, out, 24), 23);
	T_EQ_INT(cors_origin_normalize("https://x:8443", 14, out, 12), -1);
	T_EQ_INT(cors_origin_normalize("null", 4, out, 4), -1);
	T_EQ_INT(cors_origin_normalize("null", 4, out, 0), -1);
end:;
}

static char *strs1[] = { "https://App.example.com:443", "http://localhost:3000", "*",
	"https://*.example.com", "https://api.example.com:8443" };
static char *strs_null[] = { "null", "https://app.example.com" };
static char *meth[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
static char *hdrs[] = { "Content-Type", "Authorization", "X-Requested-With" };
static char *expose[] = { "X-Request-Id", "RateLimit" };

static struct cors_conf *
mkconf(char **origins, size_t n, int credentials, int with_lists)
{
	struct cors_sect c;

	memset(&c, 0, sizeof(c));
	c.enabled = 1;
	c.origins.v = origins;
	c.origins.n = n;
	c.credentials = credentials;
	if (with_lists) {
		c.methods.v = meth;
		c.methods.n = 5;
		c.headers.v = hdrs;
		c.headers.n = 3;
		c.expose.v = expose;
		c.expose.n = 2;
	}
	c.max_age = 86400;
	c.on_disallowed = CORS_OMIT;
	return cors_conf_new(&c);
}

static int
allowed(const struct cors_conf *cc, const char *o)
{
	return cors_origin_allowed(cc, o, strlen(o));
}

static void
test_allowlist(void)
{
	struct cors_conf *cc = mkconf(strs1, 5, 1, 1), *cn = NULL, *ce = NULL;
	char big[CORS_ORIGIN_MAX + 16];

	T_OK(cc != NULL);
	/* "*" and "*.example.com" are left out: never match */
	T_EQ_INT(cc->n_origins, 3);
	T_EQ_STR(cc->origins[0], "https://app.example.com");
	T_EQ_STR(cc->allow_methods, "GET, POST, PUT, PATCH, DELETE");
	T_EQ_STR(cc->allow_headers, "Content-Type, Authorization, X-Requested-With");
	T_EQ_STR(cc->expose, "X-Request-Id, RateLimit");
	T_EQ_STR(cc->max_age, "86400");
	T_EQ_INT(cc->credentials, 1);
	T_EQ_INT(cc->omit, 1);

	T_OK(allowed(cc, "https://app.example.com"));
	T_OK(allowed(cc, "https://APP.example.com"));
	T_OK(allowed(cc, "https://app.example.com:443"));
	T_OK(allowed(cc, "HTTPS://app.example.com:443"));
	T_OK(allowed(cc, "http://localhost:3000"));
	T_OK(allowed(cc, "https://api.example.com:8443"));
	T_OK(!allowed(cc, "https://api.example.com"));        /* port mismatch */
	T_OK(!allowed(cc, "http://app.example.com"));          /* scheme mismatch */
	T_OK(!allowed(cc, "https://app.example.com:8443"));
	T_OK(!allowed(cc, "http://localhost:3001"));
	T_OK(!allowed(cc, "http://localhost"));
	T_OK(!allowed(cc, "https://evil.example.com"));       /* no wildcard */
	T_OK(!allowed(cc, "https://*.example.com"));
	T_OK(!allowed(cc, "*"));
	T_OK(!allowed(cc, "null"));                             /* not listed */
	T_OK(!allowed(cc, "https://app.example.com.evil.test"));
	T_OK(!allowed(cc, "https://evilapp.example.com"));
	T_OK(!allowed(cc, "https://app.example.co"));
	T_OK(!allowed(cc, "https://app.example.com/"));
	T_OK(!allowed(cc, ""));
	memset(big, 'a', sizeof(big));
	memcpy(big, "https://", 8);
	T_OK(!cors_origin_allowed(cc, big, sizeof(big)));
	T_OK(!cors_origin_allowed(NULL, "https://app.example.com", 23));

	cn = mkconf(strs_null, 2, 0, 0);
	T_OK(cn != NULL);
	T_OK(allowed(cn, "null"));
	T_OK(!allowed(cn, "Null"));
	T_OK(allowed(cn, "https://app.example.com"));
	T_OK(cn->allow_methods == NULL && cn->allow_headers == NULL && cn->expose == NULL);

	ce = mkconf(NULL, 0, 0, 0);
	T_OK(ce != NULL);
	T_EQ_INT(ce->n_origins, 0);
	T_OK(!allowed(ce, "https://app.example.com"));
	T_OK(!allowed(ce, "null"));
end:
	cors_conf_free(cc);
	cors_conf_free(cn);
	cors_conf_free(ce);
	cors_conf_free(NULL);
}

static int
same(const char *o, const char *host)
{
	return cors_same_origin(o, strlen(o), host, strlen(host));
}

static void
test_same_origin(void)
{
	T_OK(same("https://api.example.com", "api.example.com"));
	T_OK(same("https://api.example.com", "API.example.com"));
	T_OK(same("https://api.example.com", "api.example.com:443"));
	T_OK(same("https://api.example.com:443", "api.example.com"));
	T_OK(same("https://localhost:8443", "localhost:8443"));
	T_OK(same("https://[::1]:8443", "[::1]:8443"));
	T_OK(!same("http://api.example.com", "api.example.com"));   /* visor's origin is https */
	T_OK(!same("https://localhost:8444", "localhost:8443"));
	T_OK(!same("https://localhost", "localhost:8443"));
	T_OK(!same("https://evil.test", "api.example.com"));
	T_OK(!same("null", "api.example.com"));
	T_OK(!same("https://api.example.com", ""));
	T_OK(!same("https://api.example.com", "api.example.com/x"));
	T_OK(!same("", "api.example.com"));
end:;
}

static int
meth_ok(const struct cors_conf *cc, const char *m)
{
	return cors_method_allowed(cc, m, strlen(m));
}

static int
hdrs_ok(const struct cors_conf *cc, const char *l)
{
	return cors_headers_allowed(cc, l, strlen(l));
}

static void
test_preflight_checks(void)
{
	struct cors_conf *cc = mkconf(strs1, 5, 1, 1), *ce = mkconf(strs1, 5, 1, 0);

	T_OK(cc != NULL && ce != NULL);
	T_OK(meth_ok(cc, "PUT"));
	T_OK(meth_ok(cc, "DELETE"));
	T_OK(meth_ok(cc, "PATCH"));
	T_OK(!meth_ok(cc, "patch"));          /* methods are case-sensitive (Fetch) */
	T_OK(!meth_ok(cc, "OPTIONS"));
	T_OK(!meth_ok(cc, "TRACE"));
	T_OK(!meth_ok(cc, "CONNECT"));
	T_OK(!meth_ok(cc, ""));
	T_OK(!meth_ok(cc, "PUT "));
	T_OK(!meth_ok(cc, "PUT,DELETE"));
	T_OK(!meth_ok(cc, "P(T"));
	/* CORS-safelisted methods never need listing */
	T_OK(meth_ok(ce, "GET"));
	T_OK(meth_ok(ce, "HEAD"));
	T_OK(meth_ok(ce, "POST"));
	T_OK(!meth_ok(ce, "PUT"));
	T_OK(!meth_ok(ce, "get"));

	T_OK(hdrs_ok(cc, ""));
	T_OK(hdrs_ok(cc, "content-type"));
	T_OK(hdrs_ok(cc, "authorization,content-type"));
	T_OK(hdrs_ok(cc, "Authorization, Content-Type"));
	T_OK(hdrs_ok(cc, " x-requested-with ,\tauthorization\t"));
	T_OK(hdrs_ok(cc, "authorization,,content-type,"));
	T_OK(hdrs_ok(cc, ","));
	T_OK(!hdrs_ok(cc, "x-api-key"));
	T_OK(!hdrs_ok(cc, "authorization,x-api-key"));
	T_OK(!hdrs_ok(cc, "x-api-key,authorization"));
	T_OK(!hdrs_ok(cc, "authorizatio"));
	T_OK(!hdrs_ok(cc, "authorizationx"));
	T_OK(!hdrs_ok(cc, "author ization"));
	T_OK(!hdrs_ok(cc, "x:y"));
	/* CORS-safelisted names need no listing */
	T_OK(hdrs_ok(ce, "accept,accept-language,content-language,content-type,range"));
	T_OK(hdrs_ok(ce, "Accept"));
	T_OK(!hdrs_ok(ce, "authorization"));
	T_OK(!hdrs_ok(ce, "cookie"));
end:
	cors_conf_free(cc);
	cors_conf_free(ce);
}

T_MAIN(test_normalize, test_allowlist, test_same_origin, test_preflight_checks)
