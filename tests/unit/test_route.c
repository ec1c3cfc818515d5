/* SPDX-License-Identifier: MIT
 * Unit tests for src/http/route.c: path normalisation (issue 3 item 1: unreserved %XX decoded,
 * "//", "/./" and "/../" resolved, never above "/", %2F kept encoded) and first-match
 * prefix routing with methods, on a route table built by hand. */
#include <stdlib.h>

#include "t.h"
#include "http/route.h"

struct ncase { const char *in; const char *want; };   /* want NULL: refused (400) */

static void
test_normalize(void)
{
	static const struct ncase c[] = {
		{ "/", "/" },
		{ "/api/users", "/api/users" },
		{ "/api/users/", "/api/users/" },
		{ "/API/Users", "/API/Users" },              /* case kept; matching ignores it */
		/* merged slashes */
		{ "//api", "/api" },
		{ "///api//users///", "/api/users/" },
		{ "//", "/" },
		/* dot segments */
		{ "/api/../admin", "/admin" },
		{ "/api/./users", "/api/users" },
		{ "/api/users/.", "/api/users/" },
		{ "/api/users/..", "/api/" },
		{ "/api/users/../", "/api/" },
		{ "/a/b/c/../../d", "/a/d" },
		{ "/a/./b/./c/.", "/a/b/c/" },
		{ "/./api", "/api" },
		{ "/.", "/" },
		{ "/a/..", "/" },
		{ "/a/../", "/" },
		{ "/a//..//b", "/b" },
		{ "/...", "/..." },                          /* not a dot-segment */
		{ "/.../x", "/.../x" },
		{ "/..a/b", "/..a/b" },
		{ "/a../b", "/a../b" },
		{ "/.a", "/.a" },
		/* percent-decoding of unreserved characters only */
		{ "/%61pi/users", "/api/users" },
		{ "/%41PI", "/API" },
		{ "/a%2Db%2ec%5Fd%7Ee", "/a-b.c_d~e" },
		{ "/%7e", "/~" },
		{ "/api%2Fadmin", "/api%2Fadmin" },          /* '/' stays encoded */
		{ "/api%2fadmin", "/api%2Fadmin" },          /* hex upper-cased */
		{ "/a%20b", "/a%20b" },
		{ "/a%25b", "/a%25b" },                      /* no double decoding */
		{ "/a%252e%252e/b", "/a%252e%252e/b" },
		{ "/%3F", "/%3F" },
		{ "/%00", "/%00" },
		{ "/%C3%A9", "/%C3%A9" },
		{ "/%2e/api", "/api" },                      /* encoded dot-segments resolve too */
		{ "/api/%2e%2e/admin", "/admin" },
		{ "/api/.%2E/admin", "/admin" },
		{ "/api/%2e%2e%2fadmin", "/api/..%2Fadmin" }, /* %2F is not a separator */
		/* refused: above the root, malformed */
		{ "/..", NULL },
		{ "/../", NULL },
		{ "/../api", NULL },
		{ "/%2e%2e/", NULL },
		{ "/%2E%2E", NULL },
		{ "/.%2e/etc/passwd", NULL },
		{ "/a/../..", NULL },
		{ "/a/../../b", NULL },
		{ "/./..", NULL },
		{ "//..", NULL },
		{ "", NULL },
		{ "api", NULL },
		{ "*", NULL },
		{ "/%", NULL },
		{ "/%4", NULL },
		{ "/%zz", NULL },
		{ "/%4g", NULL },
		{ "/a%", NULL },
	};
	char out[256];
	size_t i;
	long n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(out, 0x55, sizeof(out));
		n = route_normalize(c[i].in, strlen(c[i].in), out);
		if (c[i].want == NULL) {
			T_CHECK(n == -1, "normalize(\"%s\") = %ld, want refused", c[i].in, n);
		} else {
			T_CHECK(n == (long)strlen(c[i].want) && strcmp(out, c[i].want) == 0,
			    "normalize(\"%s\") = %ld \"%s\", want \"%s\"", c[i].in, n,
			    n >= 0 ? out : "", c[i].want);
		}
	}
}

/* The output never outgrows the input (callers allocate len + 1): checked with exact-size
 * heap buffers so ASan sees any overrun. */
static void
test_normalize_bounds(void)
{
	static const char *const in[] = { "/", "//", "/.", "/./", "/a/.", "/a/..", "/%61",
	    "/%2f", "/a//", "/a/b/../..", "/%2e", "/x/%2e%2e", "/x/%2e%2e/" };
	size_t i, len;
	char *out;
	long n;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		len = strlen(in[i]);
		out = malloc(len + 1);
		T_OK(out != NULL);
		n = route_normalize(in[i], len, out);
		T_CHECK(n <= (long)len, "normalize(\"%s\") grew to %ld", in[i], n);
		free(out);
	}
	/* not NUL-terminated input: only len bytes are read */
	{
		char buf[8] = { '/', 'a', 'b', '/', '.', '.', 'X', 'Y' };
		char o[9];
		n = route_normalize(buf, 6, o);
		T_EQ_INT(n, 1);
		T_EQ_STR(o, "/");
	}
end:;
}

/* ---- matching --------------------------------------------------------------------------- */

static char *m_post[] = { "POST" };
static char *m_get[] = { "GET" };
static char *m_del[] = { "DELETE", "PUT" };

static struct conf_route routes[] = {
	{ .path = "/api/auth/" },
	{ .path = "/api/users", .methods = { m_post, 1 } },
	{ .path = "/api/items", .methods = { m_get, 1 } },
	{ .path = "/api/admin", .methods = { m_del, 2 } },
	{ .path = "/api/" },
	{ .path = "/" },
};

static struct route_ent ents[sizeof(routes) / sizeof(routes[0])];
static struct route_rt rt = { .v = ents, .n = sizeof(routes) / sizeof(routes[0]) };

static int
match(const char *path, const char *method)
{
	const struct route_ent *e = route_match(&rt, path, strlen(path), method);

	return e ? (int)e->idx : -1;
}

struct mcase { const char *path; const char *method; int want; };

static void
test_match(void)
{
	static const struct mcase c[] = {
		{ "/api/auth/login", "POST", 0 },
		{ "/api/auth/", "GET", 0 },
		{ "/API/AUTH/login", "POST", 0 },           /* case-insensitive */
		{ "/api/auth", "POST", 0 },                 /* "/api/auth/" covers the bare path */
		{ "/api/users", "POST", 1 },
		{ "/api/users/42", "POST", 1 },
		{ "/Api/Users", "POST", 1 },
		{ "/api/users", "GET", 4 },                 /* methods do not match: next rule */
		{ "/api/users", "post", 4 },                /* methods are case-sensitive */
		{ "/api/items", "GET", 2 },
		{ "/api/items", "HEAD", 2 },                /* HEAD meets rules listing GET */
		{ "/api/items", "POST", 4 },
		{ "/api/admin", "PUT", 3 },
		{ "/api/admin", "DELETE", 3 },
		{ "/api/admin", "HEAD", 4 },
		{ "/api/", "GET", 4 },
		{ "/API/", "GET", 4 },
		{ "/api/x/y", "PATCH", 4 },
		{ "/api", "GET", 4 },                       /* "/api/" covers the bare path */
		{ "/apix", "GET", 5 },
		{ "/", "GET", 5 },
		{ "/anything", "OPTIONS", 5 },
		{ "*", "OPTIONS", -1 },
	};
	struct route_rt empty = { .v = ents, .n = 0 };
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		ents[i].cr = &routes[i];
		ents[i].idx = i;
	}
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int got = match(c[i].path, c[i].method);
		T_CHECK(got == c[i].want, "%s %s matched route %d, want %d", c[i].method, c[i].path,
		    got, c[i].want);
	}
	T_OK(route_match(&empty, "/", 1, "GET") == NULL);
	/* the path length is what counts, not a NUL: "/api/users" cut to "/api/u" */
	T_EQ_INT(route_match(&rt, "/api/users", 6, "POST")->idx, 4);
end:;
}

/* Normalisation and matching together: what the request line says vs the rule it meets. */
static void
test_normalize_then_match(void)
{
	static const struct mcase c[] = {
		{ "/public/../api/users", "POST", 1 },
		{ "//api//users", "POST", 1 },
		{ "/%61pi/users", "POST", 1 },
		{ "/api/./auth/login", "POST", 0 },
		{ "/api/auth/../users", "POST", 1 },
		{ "/api/auth/..%2Fusers", "POST", 0 },      /* stays under /api/auth/ */
		{ "/api%2Fusers", "POST", 5 },              /* an encoded '/' is not a separator */
		{ "/API/users/", "POST", 1 },
	};
	char out[128];
	size_t i;
	long n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		n = route_normalize(c[i].path, strlen(c[i].path), out);
		T_CHECK(n > 0, "normalize(\"%s\") refused", c[i].path);
		if (n > 0)
			T_CHECK(match(out, c[i].method) == c[i].want, "%s %s (→ %s) matched %d, want %d",
			    c[i].method, c[i].path, out, match(out, c[i].method), c[i].want);
	}
}

/* A rule written "/api/" also covers "/api", which Express (non-strict routing) serves with
 * the same router; with the reference config, "GET /api" must meet "/api/" (auth: required),
 * not "/" (auth: off). */
static void
test_trailing_slash(void)
{
	T_EQ_INT(match("/api", "GET"), 4);
	T_EQ_INT(match("/api/auth", "POST"), 0);
	T_EQ_INT(match("/apix", "GET"), 5);
end:;
}
#define EXTRA , test_trailing_slash

T_MAIN(test_normalize, test_normalize_bounds, test_match, test_normalize_then_match EXTRA)
