/* SPDX-License-Identifier: MIT
 * libFuzzer target for the pure half of src/filters/cors.c. The input is split at newlines into an
 * Origin value, an Access-Control-Request-Method value, an Access-Control-Request-Headers
 * value and a Host value, and each function's promises are checked:
 *   - cors_origin_normalize: the result fits, is NUL-terminated, has no upper-case letter in
 *     scheme or host, never keeps a default port, and normalising it again gives itself;
 *   - cors_origin_allowed: answers the same for an origin and for its normal form, and
 *     allows exactly what normalises to a listed origin ("*" entries never match);
 *   - cors_same_origin: "https://<host>" is its own origin whenever it normalises;
 *   - cors_headers_allowed: a list is allowed exactly when each of its elements is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "filters/cors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *origins[] = { "https://app.example.com", "http://localhost:3000", "null",
	"https://[::1]:8443", "*", "https://*.example.com", "HTTPS://Api.Example.com:0443" };
static char *methods[] = { "GET", "PUT", "DELETE" };
static char *headers[] = { "Content-Type", "Authorization", "X-Api-Key" };
static struct cors_conf *cc;

static void
setup(void)
{
	struct cors_sect c;

	memset(&c, 0, sizeof(c));
	c.enabled = 1;
	c.origins.v = origins;
	c.origins.n = sizeof(origins) / sizeof(origins[0]);
	c.methods.v = methods;
	c.methods.n = 3;
	c.headers.v = headers;
	c.headers.n = 3;
	cc = cors_conf_new(&c);
	if (cc == NULL || cc->n_origins != 5)
		abort();
}

/* The next newline-terminated piece of [*p, end). */
static const char *
piece(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *nl;

	if (s >= end) {
		*len = 0;
		return s;
	}
	nl = memchr(s, '\n', (size_t)(end - s));
	*len = nl ? (size_t)(nl - s) : (size_t)(end - s);
	*p = nl ? nl + 1 : end;
	return s;
}

static void
check_origin(const char *o, size_t ol)
{
	char a[CORS_ORIGIN_MAX], b[CORS_ORIGIN_MAX];
	long na, nb;
	size_t i, hs;
	int listed = 0;

	na = cors_origin_normalize(o, ol, a, sizeof(a));
	if (na < 0) {
		if (cors_origin_allowed(cc, o, ol))
			abort();          /* allowed without a normal form */
		return;
	}
	if ((size_t)na >= sizeof(a) || a[na] != '\0' || strlen(a) != (size_t)na)
		abort();
	nb = cors_origin_normalize(a, (size_t)na, b, sizeof(b));
	if (nb != na || memcmp(a, b, (size_t)na) != 0)
		abort();                  /* not idempotent */
	if (strcmp(a, "null") != 0) {
		const char *h = strstr(a, "://");
		if (h == NULL)
			abort();
		for (i = 0; i < (size_t)na; i++)
			if (a[i] >= 'A' && a[i] <= 'Z')
				abort();
		hs = (size_t)(h - a);
		if (strcmp(a + (size_t)na - (na >= 4 ? 4 : 0), ":443") == 0 &&
		    ((hs == 5 && memcmp(a, "https", 5) == 0) || (hs == 3 && memcmp(a, "wss", 3) == 0)))
			abort();
		if (strcmp(a + (size_t)na - (na >= 3 ? 3 : 0), ":80") == 0 &&
		    ((hs == 4 && memcmp(a, "http", 4) == 0) || (hs == 2 && memcmp(a, "ws", 2) == 0)))
			abort();
	}
	for (i = 0; i < cc->n_origins; i++)
		if (cc->origin_lens[i] == (size_t)na && memcmp(cc->origins[i], a, (size_t)na) == 0)
			listed = 1;
	if (cors_origin_allowed(cc, o, ol) != listed || cors_origin_allowed(cc, a, (size_t)na) != listed)
		abort();
	if (strchr(a, '*') != NULL && listed)
		abort();
}

static void
check_host(const char *h, size_t hl)
{
	char self[CORS_ORIGIN_MAX + 16], tmp[CORS_ORIGIN_MAX];

	if (hl + 8 >= CORS_ORIGIN_MAX)
		return;
	memcpy(self, "https://", 8);
	memcpy(self + 8, h, hl);
	if (hl > 0 && cors_origin_normalize(self, hl + 8, tmp, sizeof(tmp)) > 0 &&
	    !cors_same_origin(self, hl + 8, h, hl))
		abort();
}

static void
check_headers(const char *l, size_t n)
{
	size_t i = 0, s, e;
	int all = 1, got;

	got = cors_headers_allowed(cc, l, n);
	while (i < n) {
		while (i < n && (l[i] == ' ' || l[i] == '\t'))
			i++;
		s = i;
		while (i < n && l[i] != ',')
			i++;
		e = i;
		while (e > s && (l[e - 1] == ' ' || l[e - 1] == '\t'))
			e--;
		if (e > s && !cors_headers_allowed(cc, l + s, e - s))
			all = 0;
		if (i < n)
			i++;
	}
	if (got != all)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *o, *m, *h, *host;
	size_t ol, ml, hl, hol;

	if (cc == NULL)
		setup();
	o = piece(&p, end, &ol);
	m = piece(&p, end, &ml);
	h = piece(&p, end, &hl);
	host = piece(&p, end, &hol);
	check_origin(o, ol);
	check_origin((const char *)data, size);
	(void)cors_method_allowed(cc, m, ml);
	check_headers(h, hl);
	check_host(host, hol);
	(void)cors_same_origin(o, ol, host, hol);
	return 0;
}
