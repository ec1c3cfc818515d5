/* SPDX-License-Identifier: MIT
 * libFuzzer target for src/conf/values.c. The input (up to its first NUL) is offered to every
 * parser, and each result is checked against what the parser promises: numbers within
 * their bounds, addresses that format and parse back to the same socket address, a CIDR
 * that contains its own network address, status ranges in order. For the edit distance the
 * input is split at the first newline and compared with a plain dynamic-programming
 * reference, and the distance must be symmetric. No DNS: units_addr_resolve is not called
 * (units_addr_unresolved covers its syntax half).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/values.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same_addr(const struct units_addr *a, const struct units_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family || a->len != b->len)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* Textbook Levenshtein for short strings, as the reference. */
static int
ref_distance(const char *a, const char *b)
{
	int d[33][33];
	size_t n = strlen(a), m = strlen(b), i, j;

	for (i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (i = 1; i <= n; i++)
		for (j = 1; j <= m; j++) {
			int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			d[i][j] = v;
		}
	return d[n][m];
}

static void
check_edit(const char *s)
{
	const char *nl = strchr(s, '\n');
	char a[256], b[256];
	size_t n;
	int cap, d, want;

	if (nl == NULL || (size_t)(nl - s) >= sizeof(a) || strlen(nl + 1) >= sizeof(b))
		return;
	n = (size_t)(nl - s);
	memcpy(a, s, n);
	a[n] = '\0';
	memcpy(b, nl + 1, strlen(nl + 1) + 1);
	cap = n > 0 ? (unsigned char)a[0] % 12 : 3;
	d = units_edit_distance(a, b, cap);
	if (d != units_edit_distance(b, a, cap))
		abort();
	if (d < 0 || (cap > 0 && d > cap))
		abort();
	if (units_edit_distance(a, a, cap) != 0)
		abort();
	if (strlen(a) <= 32 && strlen(b) <= 32 && cap > 0) {
		want = ref_distance(a, b);
		if (want > cap)
			want = cap;
		if (d != want)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct units_addr a, a2;
	struct units_cidr c;
	const char *err;
	char *s, buf[64];
	int64_t v;
	int b, lo, hi;

	if (size > 4096)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (units_int(s, 0, 100, &v, &err) == 0 && (v < 0 || v > 100))
		abort();
	if (units_int(s, -5, 5, &v, &err) == 0 && (v < -5 || v > 5))
		abort();
	if (units_int(s, INT64_MIN, INT64_MAX, &v, &err) < 0 && err == NULL)
		abort();
	if (units_duration_ms(s, &v, &err) == 0 && (v < 0 || v > 100LL * 365 * 86400 * 1000))
		abort();
	if (units_size(s, &v, &err) == 0 && (v < 0 || v > (1LL << 40)))
		abort();
	if (units_bool(s, &b, &err) == 0 && b != 0 && b != 1)
		abort();
	if (units_addr(s, size & 1, &a, &err) == 0) {
		units_addr_str(&a, buf, sizeof(buf));
		if (units_addr(buf, 1, &a2, &err) < 0 || !same_addr(&a, &a2))
			abort();
	}
	if (units_addr_unresolved(s, &a, &err) == 0 && a.ss.ss_family != 0) {
		units_addr_str(&a, buf, sizeof(buf));
		if (units_addr(buf, 0, &a2, &err) < 0 || !same_addr(&a, &a2))
			abort();
	}
	if (units_cidr(s, &c, &err) == 0) {
		if (c.family != AF_INET && c.family != AF_INET6)
			abort();
		if (c.bits < 0 || c.bits > (c.family == AF_INET ? 32 : 128))
			abort();
		if (!units_cidr_match(&c, c.family, c.addr))
			abort();
		if (c.family == AF_INET) {
			uint8_t m[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
			memcpy(m + 12, c.addr, 4);
			if (!units_cidr_match(&c, AF_INET6, m))
				abort();
		}
	}
	if (units_status_range(s, &lo, &hi, &err) == 0 && (lo < 100 || hi > 599 || lo > hi))
		abort();
	check_edit(s);
	free(s);
	return 0;
}
