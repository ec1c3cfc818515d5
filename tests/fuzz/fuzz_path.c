/* SPDX-License-Identifier: MIT
 * libFuzzer target for route_normalize and route_match (src/http/route.c). The output buffer is
 * exactly len + 1 bytes on the heap, as req.c allocates it, so ASan catches any overrun.
 * A normalised path must: start with '/', be no longer than the input, hold no "//", no "."
 * or ".." segment, only upper-case %XX escapes of characters that are not unreserved, and
 * normalise to itself. route_match must agree with a plain case-insensitive prefix check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/route.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
check_normal(const char *p, size_t n)
{
	size_t i, s;

	if (n == 0 || p[0] != '/' || p[n] != '\0')
		abort();
	for (i = 0; i < n; i++) {
		if (p[i] == '/' && i + 1 < n && p[i + 1] == '/')
			abort();
		if (p[i] == '%') {
			int h, l;
			if (i + 2 >= n)
				abort();
			h = hexval(p[i + 1]);
			l = hexval(p[i + 2]);
			if (h < 0 || l < 0 || unreserved(h * 16 + l))
				abort();
		}
	}
	for (i = 0; i < n; i = s) {
		/* p[i] == '/' */
		s = i + 1;
		while (s < n && p[s] != '/')
			s++;
		if ((s - i - 1 == 1 && p[i + 1] == '.') ||
		    (s - i - 1 == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
			abort();
	}
}

static char *m_post[] = { "POST" };
static struct conf_route routes[] = {
	{ .path = "/api/auth/" },
	{ .path = "/api/users", .methods = { m_post, 1 } },
	{ .path = "/api/" },
	{ .path = "/Admin" },
};
static struct route_ent ents[4];
static struct route_rt rt = { .v = ents, .n = 4 };

static void
check_match(const char *p, size_t n, const char *method)
{
	const struct route_ent *e = route_match(&rt, p, n, method);
	size_t i, want = 4;

	for (i = 0; i < 4; i++) {
		size_t pl = strlen(routes[i].path);
		if (pl <= n && ascii_casecmp_n(p, pl, routes[i].path, pl) == 0 &&
		    (routes[i].methods.n == 0 || strcmp(method, "POST") == 0)) {
			want = i;
			break;
		}
	}
	if ((e == NULL) != (want == 4) || (e && e->idx != want))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out, *again;
	long n, m;
	size_t i;

	if (ents[0].cr == NULL)
		for (i = 0; i < 4; i++) {
			ents[i].cr = &routes[i];
			ents[i].idx = i;
		}
	out = malloc(size + 1);
	if (out == NULL)
		return 0;
	n = route_normalize((const char *)data, size, out);
	if (n >= 0) {
		if ((size_t)n > size)
			abort();
		check_normal(out, (size_t)n);
		again = malloc((size_t)n + 1);
		if (again == NULL)
			abort();
		m = route_normalize(out, (size_t)n, again);
		if (m != n || memcmp(out, again, (size_t)n) != 0)
			abort();
		free(again);
		check_match(out, (size_t)n, "GET");
		check_match(out, (size_t)n, "POST");
	} else if (size > 0 && data[0] == '/') {
		/* refused: a bad escape, or a climb above the root */
		int bad_pct = 0, dots = 0;
		for (i = 0; i < size; i++)
			if (data[i] == '%' && (i + 2 >= size ||
			    hexval((char)(data[i + 1] >= 'a' ? data[i + 1] - 32 : data[i + 1])) < 0 ||
			    hexval((char)(data[i + 2] >= 'a' ? data[i + 2] - 32 : data[i + 2])) < 0))
				bad_pct = 1;
		for (i = 0; i + 1 < size; i++)
			if (data[i] == '.' || data[i] == '%')
				dots = 1;
		if (!bad_pct && !dots)
			abort();
	}
	free(out);
	return 0;
}
