/* SPDX-License-Identifier: MIT
 * Unit tests for src/conf/values.c: each parser against tables of accepted and refused inputs,
 * with the exact values and messages the configuration layer relies on. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "t.h"
#include "conf/values.h"

struct icase { const char *s; int64_t min, max; int ok; int64_t want; };

static void
test_int(void)
{
	static const struct icase c[] = {
		{ "0", 0, 10, 1, 0 }, { "10", 0, 10, 1, 10 }, { "11", 0, 10, 0, 0 },
		{ "-1", 0, 10, 0, 0 }, { "-1", -5, 10, 1, -1 }, { "+1", -5, 10, 0, 0 },
		{ "", 0, 10, 0, 0 }, { " 1", 0, 10, 0, 0 }, { "1 ", 0, 10, 0, 0 },
		{ "1x", 0, 10, 0, 0 }, { "007", 0, 10, 1, 7 }, { "-", -5, 5, 0, 0 },
		{ "9223372036854775807", 0, INT64_MAX, 1, INT64_MAX },
		{ "9223372036854775808", 0, INT64_MAX, 0, 0 },
		{ "99999999999999999999999", 0, INT64_MAX, 0, 0 },
		{ "-9223372036854775807", INT64_MIN, 0, 1, -INT64_MAX },
	};
	const char *err;
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = -42;
		err = NULL;
		int rc = units_int(c[i].s, c[i].min, c[i].max, &v, &err);
		T_CHECK((rc == 0) == c[i].ok, "units_int(\"%s\") rc=%d", c[i].s, rc);
		if (c[i].ok)
			T_CHECK(v == c[i].want, "units_int(\"%s\") = %" PRId64, c[i].s, v);
		else
			T_CHECK(err != NULL && v == -42, "units_int(\"%s\") err/untouched", c[i].s);
	}
	T_EQ_INT(units_int("abc", 0, 1, &v, &err), -1);
	T_EQ_STR(err, "expected an integer");
	T_EQ_INT(units_int("5", 0, 1, &v, &err), -1);
	T_EQ_STR(err, "integer out of range");
	T_EQ_INT(units_int(NULL, 0, 1, &v, NULL), -1);
end:;
}

struct scase { const char *s; int ok; int64_t want; };

static void
test_duration(void)
{
	static const struct scase c[] = {
		{ "0", 1, 0 }, { "30", 1, 30000 }, { "30s", 1, 30000 }, { "1500ms", 1, 1500 },
		{ "15m", 1, 900000 }, { "2h", 1, 7200000 }, { "7d", 1, 604800000 },
		{ "365d", 1, 31536000000LL }, { "36500d", 1, 3153600000000LL },
		{ "36501d", 0, 0 }, { "3153600000000ms", 1, 3153600000000LL },
		{ "3153600000001ms", 0, 0 }, { "", 0, 0 }, { "s", 0, 0 }, { "1.5s", 0, 0 },
		{ "10 s", 0, 0 }, { "-1s", 0, 0 }, { "1S", 0, 0 }, { "1w", 0, 0 },
		{ "1sec", 0, 0 }, { "1mss", 0, 0 }, { "99999999999999999999s", 0, 0 },
	};
	const char *err;
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = -1;
		int rc = units_duration_ms(c[i].s, &v, &err);
		T_CHECK((rc == 0) == c[i].ok, "duration(\"%s\") rc=%d", c[i].s, rc);
		if (c[i].ok)
			T_CHECK(v == c[i].want, "duration(\"%s\") = %" PRId64, c[i].s, v);
	}
	T_EQ_INT(units_duration_ms("10x", &v, &err), -1);
	T_EQ_STR(err, "expected a duration such as 500ms, 30s, 15m, 2h or 7d");
	T_EQ_INT(units_duration_ms("40000d", &v, &err), -1);
	T_EQ_STR(err, "duration too large (at most 100 years)");
end:;
}

static void
test_size(void)
{
	static const struct scase c[] = {
		{ "0", 1, 0 }, { "512", 1, 512 }, { "512b", 1, 512 }, { "512B", 1, 512 },
		{ "16k", 1, 16384 }, { "16K", 1, 16384 }, { "16kb", 1, 16384 },
		{ "16KiB", 1, 16384 }, { "16kib", 1, 16384 }, { "1m", 1, 1048576 },
		{ "1MB", 1, 1048576 }, { "2g", 1, 2147483648LL }, { "1024g", 1, 1LL << 40 },
		{ "1025g", 0, 0 }, { "1099511627776", 1, 1LL << 40 }, { "1099511627777", 0, 0 },
		{ "512ib", 0, 0 }, { "1t", 0, 0 }, { "k", 0, 0 }, { "", 0, 0 }, { "1 k", 0, 0 },
		{ "1kk", 0, 0 }, { "1kbb", 0, 0 }, { "-1", 0, 0 }, { "1.5m", 0, 0 },
	};
	const char *err;
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = -1;
		int rc = units_size(c[i].s, &v, &err);
		T_CHECK((rc == 0) == c[i].ok, "size(\"%s\") rc=%d", c[i].s, rc);
		if (c[i].ok)
			T_CHECK(v == c[i].want, "size(\"%s\") = %" PRId64, c[i].s, v);
	}
	T_EQ_INT(units_size("12q", &v, &err), -1);
	T_EQ_STR(err, "expected a size such as 512, 16k, 1m or 2g");
	T_EQ_INT(units_size("2000g", &v, &err), -1);
	T_EQ_STR(err, "size too large (at most 1 TiB)");
end:;
}

static void
test_bool(void)
{
	static const struct scase c[] = {
		{ "true", 1, 1 }, { "TRUE", 1, 1 }, { "yes", 1, 1 }, { "On", 1, 1 },
		{ "false", 1, 0 }, { "no", 1, 0 }, { "OFF", 1, 0 }, { "1", 0, 0 },
		{ "0", 0, 0 }, { "", 0, 0 }, { "truee", 0, 0 }, { "y", 0, 0 },
	};
	const char *err;
	int v;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = -1;
		int rc = units_bool(c[i].s, &v, &err);
		T_CHECK((rc == 0) == c[i].ok, "bool(\"%s\") rc=%d", c[i].s, rc);
		if (c[i].ok)
			T_CHECK(v == c[i].want, "bool(\"%s\") = %d", c[i].s, v);
	}
	T_EQ_INT(units_bool("maybe", &v, &err), -1);
	T_EQ_STR(err, "expected true or false");
end:;
}

struct acase { const char *s; int allow_zero; const char *want; };

static void
test_addr(void)
{
	static const struct acase c[] = {
		{ "0.0.0.0:8443", 0, "0.0.0.0:8443" }, { "127.0.0.1:1", 0, "127.0.0.1:1" },
		{ ":8080", 0, "0.0.0.0:8080" }, { "8080", 0, "0.0.0.0:8080" },
		{ "*:80", 0, "0.0.0.0:80" }, { "localhost:9090", 0, "127.0.0.1:9090" },
		{ "LOCALHOST:9090", 0, "127.0.0.1:9090" }, { "[::1]:443", 0, "[::1]:443" },
		{ "[::]:443", 0, "[::]:443" }, { "[2001:db8::1]:65535", 0, "[2001:db8::1]:65535" },
		{ "0.0.0.0:0", 1, "0.0.0.0:0" },
		{ "0.0.0.0:0", 0, NULL }, { "0.0.0.0:65536", 0, NULL }, { "0.0.0.0:", 0, NULL },
		{ "0.0.0.0", 0, NULL }, { "::1:443", 0, NULL }, { "[::1]", 0, NULL },
		{ "[::1]443", 0, NULL }, { "[::1:443", 0, NULL }, { "[1.2.3.4]:80", 0, NULL },
		{ "example.com:80", 0, NULL }, { "1.2.3:80", 0, NULL }, { "", 0, NULL },
		{ "1.2.3.4:+80", 0, NULL }, { "1.2.3.4:80 ", 0, NULL }, { " 1.2.3.4:80", 0, NULL },
	};
	struct units_addr a;
	const char *err;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int rc = units_addr(c[i].s, c[i].allow_zero, &a, &err);
		T_CHECK((rc == 0) == (c[i].want != NULL), "addr(\"%s\") rc=%d", c[i].s, rc);
		if (rc == 0 && c[i].want != NULL)
			T_CHECK(strcmp(units_addr_str(&a, buf, sizeof(buf)), c[i].want) == 0,
			    "addr(\"%s\") = %s", c[i].s, buf);
	}
	T_EQ_INT(units_addr("::1:443", 0, &a, &err), -1);
	T_EQ_STR(err, "IPv6 addresses must be in brackets, as in [::1]:8443");
	T_EQ_INT(units_addr("api:443", 0, &a, &err), -1);
	T_EQ_STR(err, "expected a numeric IP address or localhost (no host names here)");
	T_EQ_INT(units_addr("1.2.3.4:0", 0, &a, &err), -1);
	T_EQ_STR(err, "port must be a number from 1 to 65535");
	T_EQ_INT(a.len == 0 || 1, 1);
	T_EQ_INT(units_addr("1.2.3.4:80", 0, &a, &err), 0);
	T_EQ_INT(a.len, sizeof(struct sockaddr_in));
	T_EQ_INT(units_addr("[::1]:80", 0, &a, &err), 0);
	T_EQ_INT(a.len, sizeof(struct sockaddr_in6));
end:;
}

static void
test_addr_resolve(void)
{
	struct units_addr a;
	const char *err;
	char buf[64];

	T_EQ_INT(units_addr_resolve("127.0.0.1:3000", &a, &err), 0);
	T_EQ_STR(units_addr_str(&a, buf, sizeof(buf)), "127.0.0.1:3000");
	T_EQ_INT(units_addr_resolve("localhost:3000", &a, &err), 0);
	T_EQ_STR(units_addr_str(&a, buf, sizeof(buf)), "127.0.0.1:3000");
	T_EQ_INT(units_addr_resolve("[::1]:3000", &a, &err), 0);
	T_EQ_STR(units_addr_str(&a, buf, sizeof(buf)), "[::1]:3000");
	T_EQ_INT(units_addr_resolve("api:0", &a, &err), -1);
	T_EQ_STR(err, "port must be a number from 1 to 65535");
	T_EQ_INT(units_addr_resolve("bad host:80", &a, &err), -1);
	T_EQ_STR(err, "not a valid host name");
	T_EQ_INT(units_addr_resolve("a..b:80", &a, &err), -1);
	T_EQ_STR(err, "not a valid host name");
	T_EQ_INT(units_addr_resolve("[zz]:80", &a, &err), -1);
	T_EQ_STR(err, "not a valid IPv6 address");
	/* the syntax half alone: a name leaves the address zeroed, a number is parsed */
	T_EQ_INT(units_addr_unresolved("api.internal:3000", &a, &err), 0);
	T_EQ_INT(a.ss.ss_family, AF_UNSPEC);
	T_EQ_INT(units_addr_unresolved("10.1.2.3:3000", &a, &err), 0);
	T_EQ_STR(units_addr_str(&a, buf, sizeof(buf)), "10.1.2.3:3000");
	T_EQ_INT(units_addr_unresolved("a_b-c.d:1", &a, &err), 0);
	T_EQ_INT(units_addr_unresolved("-a.b:1", &a, &err), 0);
	T_EQ_INT(units_addr_unresolved("a/b:1", &a, &err), -1);
	T_EQ_STR(err, "not a valid host name");
	T_EQ_INT(units_addr_unresolved(".a:1", &a, &err), -1);
	T_EQ_INT(units_addr_unresolved("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b:1",
	    &a, &err), -1);
	T_EQ_INT(units_addr_unresolved("a:", &a, &err), -1);
	/* .invalid is reserved (RFC 6761): never resolves, and fails without a network. */
	T_EQ_INT(units_addr_resolve("visor-test.invalid:80", &a, &err), -1);
	T_EQ_STR(err, "cannot resolve the host name");
end:;
}

static void
test_cidr(void)
{
	struct units_cidr c;
	const char *err;
	uint8_t a4[4], a6[16];

	T_EQ_INT(units_cidr("10.0.0.0/8", &c, &err), 0);
	T_EQ_INT(c.family, AF_INET);
	T_EQ_INT(c.bits, 8);
	inet_pton(AF_INET, "10.200.3.4", a4);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 1);
	inet_pton(AF_INET, "11.0.0.1", a4);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 0);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", a6);
	T_EQ_INT(units_cidr_match(&c, AF_INET6, a6), 1);
	inet_pton(AF_INET6, "2001:db8::1", a6);
	T_EQ_INT(units_cidr_match(&c, AF_INET6, a6), 0);

	T_EQ_INT(units_cidr("192.168.1.7", &c, &err), 0);
	T_EQ_INT(c.bits, 32);
	inet_pton(AF_INET, "192.168.1.7", a4);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 1);
	inet_pton(AF_INET, "192.168.1.8", a4);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 0);

	T_EQ_INT(units_cidr("0.0.0.0/0", &c, &err), 0);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 1);
	T_EQ_INT(units_cidr_match(&c, AF_INET6, a6), 0);

	T_EQ_INT(units_cidr("fd00::/8", &c, &err), 0);
	T_EQ_INT(c.family, AF_INET6);
	inet_pton(AF_INET6, "fd12::1", a6);
	T_EQ_INT(units_cidr_match(&c, AF_INET6, a6), 1);
	inet_pton(AF_INET6, "fe80::1", a6);
	T_EQ_INT(units_cidr_match(&c, AF_INET6, a6), 0);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 0);

	T_EQ_INT(units_cidr("::ffff:0:0/96", &c, &err), 0);
	T_EQ_INT(units_cidr_match(&c, AF_INET, a4), 1);

	T_EQ_INT(units_cidr("11.0.0.0/7", &c, &err), -1);
	T_EQ_STR(err, "host bits must be zero (10.0.0.0/8, not 10.1.2.3/8)");
	T_EQ_INT(units_cidr("10.1.2.3/33", &c, &err), -1);
	T_EQ_STR(err, "prefix length must be 0 to 32");
	T_EQ_INT(units_cidr("::/129", &c, &err), -1);
	T_EQ_STR(err, "prefix length must be 0 to 128");
	T_EQ_INT(units_cidr("10.0.0.0/", &c, &err), -1);
	T_EQ_INT(units_cidr("/8", &c, &err), -1);
	T_EQ_STR(err, "expected an address or CIDR such as 10.0.0.0/8 or fd00::/8");
	T_EQ_INT(units_cidr("example.com/8", &c, &err), -1);
	T_EQ_INT(units_cidr("10.0.0.0/+8", &c, &err), -1);
	T_EQ_INT(units_cidr("10.128.0.0/9", &c, &err), 0);
	T_EQ_INT(units_cidr("10.64.0.0/9", &c, &err), -1);
end:;
}

static void
test_status_range(void)
{
	const char *err;
	int lo = 0, hi = 0;

	T_EQ_INT(units_status_range("502", &lo, &hi, &err), 0);
	T_EQ_INT(lo, 502);
	T_EQ_INT(hi, 502);
	T_EQ_INT(units_status_range("500-599", &lo, &hi, &err), 0);
	T_EQ_INT(lo, 500);
	T_EQ_INT(hi, 599);
	T_EQ_INT(units_status_range("100-100", &lo, &hi, &err), 0);
	T_EQ_INT(units_status_range("599-500", &lo, &hi, &err), -1);
	T_EQ_STR(err, "a range must go from low to high, as in 500-599");
	T_EQ_INT(units_status_range("600", &lo, &hi, &err), -1);
	T_EQ_STR(err, "status codes are 100 to 599");
	T_EQ_INT(units_status_range("99", &lo, &hi, &err), -1);
	T_EQ_INT(units_status_range("5xx", &lo, &hi, &err), -1);
	T_EQ_STR(err, "expected a status code such as 502 or a range such as 500-599");
	T_EQ_INT(units_status_range("500-", &lo, &hi, &err), -1);
	T_EQ_INT(units_status_range("-500", &lo, &hi, &err), -1);
	T_EQ_INT(units_status_range("500 - 599", &lo, &hi, &err), -1);
	T_EQ_INT(units_status_range("", &lo, &hi, &err), -1);
	T_EQ_INT(units_status_range("500-599-600", &lo, &hi, &err), -1);
end:;
}

static void
test_edit_distance(void)
{
	T_EQ_INT(units_edit_distance("max_bdy_size", "max_body_size", 4), 1);
	T_EQ_INT(units_edit_distance("kitten", "sitting", 10), 3);
	T_EQ_INT(units_edit_distance("kitten", "sitting", 2), 2);
	T_EQ_INT(units_edit_distance("", "abc", 10), 3);
	T_EQ_INT(units_edit_distance("abc", "", 10), 3);
	T_EQ_INT(units_edit_distance("same", "same", 3), 0);
	T_EQ_INT(units_edit_distance("abc", "xyz", 3), 3);
	T_EQ_INT(units_edit_distance("abcd", "xyzw", 3), 3);
	T_EQ_INT(units_edit_distance("a", "abcdefgh", 3), 3);
	T_EQ_INT(units_edit_distance("workers", "wrkers", 3), 1);
	T_EQ_INT(units_edit_distance("ab", "ba", 5), 2);
	T_EQ_INT(units_edit_distance("flaw", "lawn", 5), 2);
	T_EQ_INT(units_edit_distance("x", "y", 0), 0);
	T_EQ_INT(units_edit_distance("intention", "execution", 100), 5);
	T_EQ_INT(units_edit_distance("intention", "execution", 1000), 5);
end:;
}

/* The banded computation must agree with the textbook one whenever the distance <= cap. */
static int
ref_distance(const char *a, const char *b)
{
	int d[16][16];
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
test_edit_distance_random(void)
{
	uint32_t seed = 12345;
	char a[12], b[12];
	int iter, cap;

	for (iter = 0; iter < 20000; iter++) {
		size_t n, m, i;
		seed = seed * 1103515245 + 12345;
		n = (seed >> 16) % 11;
		seed = seed * 1103515245 + 12345;
		m = (seed >> 16) % 11;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			a[i] = (char)('a' + (seed >> 16) % 3);
		}
		a[n] = '\0';
		for (i = 0; i < m; i++) {
			seed = seed * 1103515245 + 12345;
			b[i] = (char)('a' + (seed >> 16) % 3);
		}
		b[m] = '\0';
		for (cap = 1; cap <= 12; cap++) {
			int want = ref_distance(a, b);
			if (want > cap)
				want = cap;
			int got = units_edit_distance(a, b, cap);
			if (got != want) {
				T_FAILF("edit(\"%s\",\"%s\",%d) = %d, want %d", a, b, cap, got, want);
			}
		}
	}
	T_OK(1);
end:;
}

T_MAIN(test_int, test_duration, test_size, test_bool, test_addr, test_addr_resolve,
    test_cidr, test_status_range, test_edit_distance, test_edit_distance_random)
