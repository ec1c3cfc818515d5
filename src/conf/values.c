/* SPDX-License-Identifier: MIT
 * units — the pure parsers behind every value of the configuration file: integers,
 * durations, sizes, booleans, socket addresses, CIDRs, status ranges, and the edit distance
 * used for "did you mean". Each takes the whole string or refuses it: no leading or
 * trailing spaces, no signs where none make sense, no silent truncation, no overflow.
 * Nothing here allocates, keeps state or does I/O, except units_addr_resolve(), which asks
 * the resolver once at load time; everything is fuzzed (tests/fuzz/fuzz_units.c).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/values.h"

#define DUR_MAX_MS  (100LL * 365 * 86400 * 1000)   /* 100 years */
#define SIZE_MAX_B  (1LL << 40)                      /* 1 TiB */

static int
set_err(const char **err, const char *msg)
{
	if (err != NULL)
		*err = msg;
	return -1;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Reads the leading decimal digits of s into *out (no sign). Returns the number of digits,
 * 0 when there are none, -1 on overflow past INT64_MAX. */
static int
digits(const char *s, int64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (is_digit(s[n])) {
		unsigned d = (unsigned)(s[n] - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		n++;
	}
	*out = (int64_t)v;
	return n;
}

int
units_int(const char *s, int64_t min, int64_t max, int64_t *out, const char **err)
{
	int64_t v;
	int neg = 0, n;

	if (s == NULL || *s == '\0')
		return set_err(err, "expected an integer");
	if (*s == '-' && min < 0) {
		neg = 1;
		s++;
	}
	n = digits(s, &v);
	if (n < 0)
		return set_err(err, "integer out of range");
	if (n == 0 || s[n] != '\0')
		return set_err(err, "expected an integer");
	if (neg)
		v = -v;
	if (v < min || v > max)
		return set_err(err, "integer out of range");
	*out = v;
	return 0;
}

/* The decimal number *s starts with, into *v; *s is left after it (at the unit). 0, or -1
 * with err: `syntax` when there is none, `too_large` past the range digits() reads. */
static int
lead_number(const char **s, int64_t *v, const char *syntax, const char *too_large,
    const char **err)
{
	int n;

	if (*s == NULL)
		return set_err(err, syntax);
	n = digits(*s, v);
	if (n < 0)
		return set_err(err, too_large);
	if (n == 0)
		return set_err(err, syntax);
	*s += n;
	return 0;
}

/* v * mult into *out: 0, or -1 with err `too_large` when that passes max. */
static int
scaled(int64_t v, int64_t mult, int64_t max, int64_t *out, const char *too_large,
    const char **err)
{
	if (v > max / mult)
		return set_err(err, too_large);
	*out = v * mult;
	return 0;
}

int
units_duration_ms(const char *s, int64_t *out_ms, const char **err)
{
	static const char syntax[] = "expected a duration such as 500ms, 30s, 15m, 2h or 7d";
	static const char big[] = "duration too large (at most 100 years)";
	int64_t v, mult;

	if (lead_number(&s, &v, syntax, big, err) < 0)
		return -1;
	if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (*s == '\0' || strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(s, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(s, "d") == 0)
		mult = 86400 * 1000;
	else
		return set_err(err, syntax);
	return scaled(v, mult, DUR_MAX_MS, out_ms, big, err);
}

int
units_size(const char *s, int64_t *out, const char **err)
{
	static const char syntax[] = "expected a size such as 512, 16k, 1m or 2g";
	static const char big[] = "size too large (at most 1 TiB)";
	int64_t v, mult = 1;

	if (lead_number(&s, &v, syntax, big, err) < 0)
		return -1;
	switch (lower(*s)) {
	case 'k': mult = 1LL << 10; s++; break;
	case 'm': mult = 1LL << 20; s++; break;
	case 'g': mult = 1LL << 30; s++; break;
	default: break;
	}
	/* "16k", "16kb", "16KiB"; a bare "b" only means bytes ("512b"), never "512ib". */
	if (mult > 1 && lower(s[0]) == 'i' && lower(s[1]) == 'b')
		s += 2;
	else if (lower(*s) == 'b')
		s++;
	if (*s != '\0')
		return set_err(err, syntax);
	return scaled(v, mult, SIZE_MAX_B, out, big, err);
}

int
units_bool(const char *s, int *out, const char **err)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	if (s != NULL) {
		for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcasecmp(s, yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcasecmp(s, no[i]) == 0) {
				*out = 0;
				return 0;
			}
		}
	}
	return set_err(err, "expected true or false");
}

/* Splits "host:port", "[v6]:port", ":port" or "port" into a NUL-terminated host (empty
 * for all interfaces), whether it was bracketed, and the port. */
static int
split_hostport(const char *s, int allow_zero, char *host, size_t hostlen, int *bracketed,
    int *port, const char **err)
{
	const char *portstr, *colon, *p;
	size_t hl;
	int64_t v;

	if (s == NULL || *s == '\0')
		return set_err(err, "expected an address such as 0.0.0.0:8443 or [::1]:8443");
	*bracketed = 0;
	if (*s == '[') {
		p = strchr(s, ']');
		if (p == NULL)
			return set_err(err, "missing ']' after an IPv6 address");
		if (p[1] != ':')
			return set_err(err, "missing port (expected [address]:port)");
		hl = (size_t)(p - s - 1);
		s++;
		portstr = p + 2;
		*bracketed = 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			portstr = s;        /* "8443": port only */
			hl = 0;
		} else {
			if (memchr(s, ':', (size_t)(colon - s)) != NULL)
				return set_err(err, "IPv6 addresses must be in brackets, as in [::1]:8443");
			hl = (size_t)(colon - s);
			portstr = colon + 1;
		}
	}
	if (hl >= hostlen)
		return set_err(err, "host name too long");
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (units_int(portstr, allow_zero ? 0 : 1, 65535, &v, NULL) < 0)
		return set_err(err, allow_zero ? "port must be a number from 0 to 65535" :
		    "port must be a number from 1 to 65535");
	*port = (int)v;
	return 0;
}

/* Numeric (or empty / "*" / "localhost") host to an address. 0, or -1 when not numeric. */
static int
numeric_addr(const char *host, int bracketed, int port, struct units_addr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (bracketed) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	out->len = sizeof(*sin);
	if (*host == '\0' || strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcasecmp(host, "localhost") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	return 0;
}

int
units_addr(const char *s, int allow_zero, struct units_addr *out, const char **err)
{
	char host[256];
	int port, br;

	if (split_hostport(s, allow_zero, host, sizeof(host), &br, &port, err) < 0)
		return -1;
	if (numeric_addr(host, br, port, out) < 0)
		return set_err(err, br ? "not a valid IPv6 address" :
		    "expected a numeric IP address or localhost (no host names here)");
	return 0;
}

/* RFC 1123 host name: labels of letters, digits and '-', separated by dots ('_' tolerated
 * for container names). Refusing anything else keeps odd bytes away from the resolver. */
static int
valid_hostname(const char *h)
{
	size_t n = 0, label = 0;

	for (; h[n] != '\0'; n++) {
		char c = h[n];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
		    c == '-' || c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return n > 0 && n <= 253;
}

static int
addr_name(const char *s, int resolve, struct units_addr *out, const char **err)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	int port, br;

	if (split_hostport(s, 0, host, sizeof(host), &br, &port, err) < 0)
		return -1;
	if (numeric_addr(host, br, port, out) == 0)
		return 0;
	if (br)
		return set_err(err, "not a valid IPv6 address");
	if (!valid_hostname(host))
		return set_err(err, "not a valid host name");
	if (!resolve) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return set_err(err, "cannot resolve the host name");
	memset(out, 0, sizeof(*out));
	if (res->ai_addrlen > sizeof(out->ss)) {
		freeaddrinfo(res);
		return set_err(err, "cannot resolve the host name");
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	if (out->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&out->ss)->sin_port = htons((uint16_t)port);
	else if (out->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons((uint16_t)port);
	else
		return set_err(err, "cannot resolve the host name");
	return 0;
}

int
units_addr_resolve(const char *s, struct units_addr *out, const char **err)
{
	return addr_name(s, 1, out, err);
}

int
units_addr_unresolved(const char *s, struct units_addr *out, const char **err)
{
	return addr_name(s, 0, out, err);
}

const char *
units_addr_str(const struct units_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	} else if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

int
units_addr_eq(const struct units_addr *a, const struct units_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

int
units_addrs_eq(const struct units_addr *a, size_t an, const struct units_addr *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return 0;
	for (i = 0; i < an; i++)
		if (!units_addr_eq(&a[i], &b[i]))
			return 0;
	return 1;
}

/* The part of s before its first `sep` (all of s when there is none) into buf[cap] as a
 * string, *sep_at at that separator (NULL: none). 0, or -1 when the part is empty or does
 * not fit: "10.0.0.0/8" -> "10.0.0.0", "500-599" -> "500". */
static int
head_before(const char *s, char sep, char *buf, size_t cap, const char **sep_at)
{
	size_t n;

	*sep_at = strchr(s, sep);
	n = *sep_at != NULL ? (size_t)(*sep_at - s) : strlen(s);
	if (n == 0 || n >= cap)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

int
units_cidr(const char *s, struct units_cidr *out, const char **err)
{
	static const char syntax[] = "expected an address or CIDR such as 10.0.0.0/8 or fd00::/8";
	char ip[INET6_ADDRSTRLEN];
	const char *slash;
	int64_t bits;
	int i, maxbits;

	if (s == NULL || *s == '\0' || head_before(s, '/', ip, sizeof(ip), &slash) < 0)
		return set_err(err, syntax);
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, ip, out->addr) == 1) {
		out->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
		out->family = AF_INET6;
		maxbits = 128;
	} else {
		return set_err(err, syntax);
	}
	bits = maxbits;
	if (slash != NULL && units_int(slash + 1, 0, maxbits, &bits, NULL) < 0)
		return set_err(err, out->family == AF_INET ? "prefix length must be 0 to 32" :
		    "prefix length must be 0 to 128");
	out->bits = (int)bits;
	for (i = 0; i < maxbits / 8; i++) {
		int keep = out->bits - i * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
		if (out->addr[i] & (uint8_t)~mask)
			return set_err(err, "host bits must be zero (10.0.0.0/8, not 10.1.2.3/8)");
	}
	return 0;
}

int
units_cidr_match(const struct units_cidr *c, int family, const uint8_t *addr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t a6[16];
	int i, bits;

	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	if (c->family == AF_INET6 && family == AF_INET) {
		/* A v6 CIDR such as ::ffff:0:0/96 also covers plain IPv4 peers. */
		memcpy(a6, mapped, 12);
		memcpy(a6 + 12, addr, 4);
		addr = a6;
		family = AF_INET6;
	}
	if (c->family != family)
		return 0;
	bits = c->bits;
	for (i = 0; bits > 0; i++, bits -= 8) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((addr[i] & mask) != (c->addr[i] & mask))
			return 0;
	}
	return 1;
}

int
units_status_range(const char *s, int *lo, int *hi, const char **err)
{
	static const char syntax[] = "expected a status code such as 502 or a range such as 500-599";
	char a[8];
	const char *dash;
	int64_t l, h;

	if (s == NULL || head_before(s, '-', a, sizeof(a), &dash) < 0)
		return set_err(err, syntax);
	if (units_int(a, 0, 999, &l, NULL) < 0)
		return set_err(err, syntax);
	h = l;
	if (dash != NULL && units_int(dash + 1, 0, 999, &h, NULL) < 0)
		return set_err(err, syntax);
	if (l < 100 || l > 599 || h < 100 || h > 599)
		return set_err(err, "status codes are 100 to 599");
	if (l > h)
		return set_err(err, "a range must go from low to high, as in 500-599");
	*lo = (int)l;
	*hi = (int)h;
	return 0;
}

/* Levenshtein distance computed in a diagonal band of width 2*cap+1 (Ukkonen): cells
 * outside it are already > cap, which is all the caller wants to know. The band lives on
 * the stack, so cap is clamped to EDIT_MAXCAP; "did you mean" uses 3. */
#define EDIT_MAXCAP 127

int
units_edit_distance(const char *a, const char *b, int cap)
{
	int band[2 * EDIT_MAXCAP + 2];
	size_t n = strlen(a), m = strlen(b), i;
	int k, d, inf, best;

	if (cap <= 0)
		return 0;
	k = cap > EDIT_MAXCAP ? EDIT_MAXCAP : cap;
	inf = k + 1;
	if ((n > m ? n - m : m - n) > (size_t)k)
		return cap;
	/* band[d] holds D[i][j] with j = i + d - k; band[2k+1] is a sentinel. */
	for (d = 0; d <= 2 * k + 1; d++)
		band[d] = d >= k && d <= 2 * k ? d - k : inf;
	for (i = 1; i <= n; i++) {
		best = inf;
		for (d = 0; d <= 2 * k; d++) {
			long j = (long)i + d - k;
			int v;
			if (j < 0 || (size_t)j > m) {
				v = inf;
			} else if (j == 0) {
				v = (int)(i < (size_t)inf ? i : (size_t)inf);
			} else {
				/* diagonal band[d] and up band[d+1] are still row i-1;
				 * left band[d-1] is already row i. */
				v = band[d] + (a[i - 1] != b[j - 1]);
				if (band[d + 1] + 1 < v)
					v = band[d + 1] + 1;
				if (d > 0 && band[d - 1] + 1 < v)
					v = band[d - 1] + 1;
				if (v > inf)
					v = inf;
			}
			band[d] = v;
			if (v < best)
				best = v;
		}
		if (best >= inf)
			return cap;
	}
	d = (int)((long)m - (long)n) + k;
	return band[d] > k ? cap : band[d];
}
