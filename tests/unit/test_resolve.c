/* SPDX-License-Identifier: MIT
 * Unit tests for the pure parts of src/net/resolve.c: the TTL clamp, the retry backoff after
 * failed lookups, and the record sets (canonical order, duplicates, the diff that decides
 * whether the workers get a new list). The lookups themselves run against a real DNS server
 * in tests/integration/resolve.test.mjs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "t.h"
#include "net/resolve.h"

static struct units_addr
A(const char *ip, int port)
{
	struct units_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)&a.ss;
		s->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s->sin6_addr);
		s->sin6_port = htons((uint16_t)port);
		a.len = sizeof(*s);
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)(void *)&a.ss;
		s->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s->sin_addr);
		s->sin_port = htons((uint16_t)port);
		a.len = sizeof(*s);
	}
	return a;
}

static const char *
str(const struct units_addr *a)
{
	static char buf[4][80];
	static int i;

	i = (i + 1) % 4;
	return units_addr_str(a, buf[i], sizeof(buf[i]));
}

static void
test_ttl(void)
{
	/* ttl seconds, min ms, max ms → ms */
	static const int64_t c[][4] = {
		{ 0, 1000, 60000, 1000 },          /* 0 (do not cache) is the floor, not a loop */
		{ 1, 1000, 60000, 1000 },
		{ 30, 1000, 60000, 30000 },
		{ 60, 1000, 60000, 60000 },
		{ 3600, 1000, 60000, 60000 },      /* a day-long TTL still re-asked every minute */
		{ -5, 1000, 60000, 1000 },
		{ 2147483647, 1000, 60000, 60000 },
		{ INT64_MAX, 100, 86400000, 86400000 },  /* no overflow */
		{ 5, 100, 100, 100 },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		T_CHECK(resolve_ttl_ms(c[i][0], c[i][1], c[i][2]) == c[i][3],
		    "ttl %" PRId64 " in [%" PRId64 ", %" PRId64 "] = %" PRId64, c[i][0], c[i][1],
		    c[i][2], resolve_ttl_ms(c[i][0], c[i][1], c[i][2]));
}

static void
test_retry(void)
{
	T_EQ_INT(resolve_retry_ms(1, 1000, 60000), 1000);
	T_EQ_INT(resolve_retry_ms(2, 1000, 60000), 2000);
	T_EQ_INT(resolve_retry_ms(3, 1000, 60000), 4000);
	T_EQ_INT(resolve_retry_ms(7, 1000, 60000), 60000);      /* 64 s clamped */
	T_EQ_INT(resolve_retry_ms(4000000000u, 1000, 60000), 60000);
	T_EQ_INT(resolve_retry_ms(3, 5000, 5000), 5000);
	T_EQ_INT(resolve_retry_ms(2, 200, 300), 300);
end:;
}

static void
test_canon(void)
{
	struct units_addr v[6];
	size_t n;

	v[0] = A("10.0.0.3", 3000);
	v[1] = A("10.0.0.1", 3000);
	v[2] = A("::1", 3000);
	v[3] = A("10.0.0.3", 3000);        /* the same record twice (two answers, or A twice) */
	v[4] = A("10.0.0.1", 80);
	v[5] = A("10.0.0.2", 3000);
	n = resolve_canon(v, 6);
	T_EQ_INT(n, 5);
	T_EQ_STR(str(&v[0]), "10.0.0.1:80");
	T_EQ_STR(str(&v[1]), "10.0.0.1:3000");
	T_EQ_STR(str(&v[2]), "10.0.0.2:3000");
	T_EQ_STR(str(&v[3]), "10.0.0.3:3000");
	T_EQ_STR(str(&v[4]), "[::1]:3000");   /* AF_INET6 after AF_INET */
	T_EQ_INT(resolve_canon(v, 0), 0);
	T_EQ_INT(resolve_canon(v, 1), 1);
end:;
}

static void
test_diff(void)
{
	struct units_addr a[3], b[3];
	size_t add, rem;

	a[0] = A("10.0.0.1", 3000);
	a[1] = A("10.0.0.2", 3000);
	a[2] = A("10.0.0.3", 3000);
	b[0] = A("10.0.0.2", 3000);
	b[1] = A("10.0.0.4", 3000);
	b[2] = A("fd00::1", 3000);
	resolve_canon(a, 3);
	resolve_canon(b, 3);
	resolve_diff(a, 3, b, 3, &add, &rem);
	T_EQ_INT(add, 2);
	T_EQ_INT(rem, 2);
	resolve_diff(a, 3, a, 3, &add, &rem);           /* the same answer: nothing to publish */
	T_EQ_INT(add + rem, 0);
	resolve_diff(NULL, 0, b, 3, &add, &rem);        /* first answer */
	T_EQ_INT(add, 3);
	T_EQ_INT(rem, 0);
	resolve_diff(a, 3, NULL, 0, &add, &rem);
	T_EQ_INT(add, 0);
	T_EQ_INT(rem, 3);
	resolve_diff(a, 2, a, 3, &add, &rem);           /* one record more */
	T_EQ_INT(add, 1);
	T_EQ_INT(rem, 0);
	b[0] = A("10.0.0.1", 3001);                     /* same address, other port: another server */
	resolve_diff(a, 1, b, 1, &add, &rem);
	T_EQ_INT(add, 1);
	T_EQ_INT(rem, 1);
end:;
}

static void
test_hosts(void)
{
	static const char text[] =
	    "127.0.0.1\tlocalhost\n"
	    "::1 localhost ip6-localhost\n"
	    "# 10.0.0.9 app\n"
	    "172.17.0.1 host.docker.internal   # extra_hosts: host-gateway\n"
	    "10.0.0.5 web App api\n"
	    "fe80::1%eth0 app\n"
	    "not-an-ip app\n"
	    "fd00::5 app\n"
	    "10.0.0.5 app\n"
	    "10.0.0.4 apps app.example\n";
	char path[] = "/tmp/test_resolve_hostsXXXXXX";
	struct units_addr v[4];
	FILE *f;
	int fd;

	fd = mkstemp(path);
	T_OK(fd >= 0);
	f = fdopen(fd, "w");
	T_OK(f != NULL);
	fputs(text, f);
	fclose(f);
	/* every line naming it, any case, duplicates dropped, canonical order; comments and
	 * unparsable addresses skipped */
	T_EQ_INT(resolve_hosts(path, "app", 3000, v, 4), 2);
	T_EQ_STR(str(&v[0]), "10.0.0.5:3000");
	T_EQ_STR(str(&v[1]), "[fd00::5]:3000");
	T_EQ_INT(resolve_hosts(path, "HOST.docker.internal", 80, v, 4), 1);
	T_EQ_STR(str(&v[0]), "172.17.0.1:80");
	T_EQ_INT(resolve_hosts(path, "ap", 80, v, 4), 0);
	T_EQ_INT(resolve_hosts(path, "example", 80, v, 4), 0);
	T_EQ_INT(resolve_hosts(path, "app", 80, v, 1), 1);         /* at most max */
	T_EQ_INT(resolve_hosts("/nonexistent/hosts", "app", 80, v, 4), 0);
end:
	unlink(path);
}

T_MAIN(test_ttl, test_retry, test_canon, test_diff, test_hosts)
