/* SPDX-License-Identifier: MIT
 * jsformat — email, uuid, date-time, date and uri checks (see jsformat.h). Each is a
 * hand-written scanner over the bytes, not a pattern: the grammars are small, and a scanner
 * is linear by construction and easy to hold to the RFC line by line.
 */
#include "lib/jsformat.h"

#include <string.h>

#include "core/util.h"

/* Indexed by enum jsformat. */
static const char *const fmt_names[] = { "", "email", "uuid", "date-time", "date", "uri" };

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
digits(const char *s, size_t n, int *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* RFC 3339 full-date: YYYY-MM-DD with a day that exists. */
static int
fmt_date(const char *s, size_t n)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, dim;

	if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) ||
	    !digits(s + 8, 2, &d))
		return 0;
	if (m < 1 || m > 12 || d < 1)
		return 0;
	dim = mdays[m - 1];
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		dim = 29;
	return d <= dim;
}

/* RFC 3339 date-time: full-date "T" HH:MM:SS[.frac] (Z | +HH:MM | -HH:MM); "t" and "z" as
 * the RFC allows; a leap second (:60) only at 23:59 UTC. */
static int
fmt_datetime(const char *s, size_t n)
{
	int hh, mm, ss, oh = 0, om = 0, sign = 0, t;
	size_t i;

	if (n < 20 || !fmt_date(s, 10) || (s[10] != 'T' && s[10] != 't'))
		return 0;
	s += 11;
	n -= 11;
	if (n < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 2, &hh) || !digits(s + 3, 2, &mm) ||
	    !digits(s + 6, 2, &ss))
		return 0;
	if (hh > 23 || mm > 59 || ss > 60)
		return 0;
	i = 8;
	if (s[i] == '.') {
		i++;
		if (i >= n || !is_digit((unsigned char)s[i]))
			return 0;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	}
	if (i >= n)
		return 0;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
		sign = 0;
	} else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':' &&
	    digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om)) {
		if (oh > 23 || om > 59)
			return 0;
		sign = s[i] == '+' ? 1 : -1;
	} else {
		return 0;
	}
	if (ss == 60) {
		t = hh * 60 + mm - sign * (oh * 60 + om);
		t = ((t % 1440) + 1440) % 1440;
		if (t != 23 * 60 + 59)
			return 0;
	}
	return 1;
}

static int
fmt_uuid(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (hex_digit((unsigned char)s[i]) < 0) {
			return 0;
		}
	}
	return 1;
}

/* A DNS host name: dot-separated labels of letters, digits and hyphens (1-63 each, no
 * leading or trailing hyphen), at most 253 bytes, at least `min_labels` labels. */
static int
hostname_ok(const char *s, size_t n, int min_labels)
{
	size_t i, st = 0;
	int labels = 0;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t l = i - st;
			if (l == 0 || l > 63 || s[st] == '-' || s[i - 1] == '-')
				return 0;
			labels++;
			st = i + 1;
			continue;
		}
		if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	}
	return labels >= min_labels;
}

/* addr-spec with a dot-atom local part and a host-name domain of two labels or more: no
 * quoted local parts, no comments, no address literals, ASCII only (no SMTPUTF8). */
static int
fmt_email(const char *s, size_t n)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at;
	size_t i, ln;

	if (n > 254 || (at = memchr(s, '@', n)) == NULL)
		return 0;
	ln = (size_t)(at - s);
	if (ln == 0 || ln > 64 || s[0] == '.' || s[ln - 1] == '.')
		return 0;
	for (i = 0; i < ln; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && (c == 0 || strchr(atext, c) == NULL))
			return 0;
	}
	return hostname_ok(at + 1, n - ln - 1, 2);
}

static int
uri_unreserved(int c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int
uri_subdelim(int c)
{
	return c != 0 && strchr("!$&'()*+,;=", c) != NULL;
}

/* Accepts a run of characters of the given class (and %HH); returns the index after it, or
 * (size_t)-1 on a bad %-escape. extra: characters allowed on top of unreserved/sub-delims. */
static size_t
uri_run(const char *s, size_t n, size_t i, const char *extra)
{
	while (i < n) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n || hex_digit((unsigned char)s[i + 1]) < 0 ||
			    hex_digit((unsigned char)s[i + 2]) < 0)
				return (size_t)-1;
			i += 3;
			continue;
		}
		if (uri_unreserved(c) || uri_subdelim(c) || (c != 0 && strchr(extra, c) != NULL)) {
			i++;
			continue;
		}
		break;
	}
	return i;
}

/* RFC 3986 URI (absolute: scheme required), ASCII only. */
static int
fmt_uri(const char *s, size_t n)
{
	size_t i = 0, j, e;

	if (n == 0 || !is_alpha((unsigned char)s[0]))
		return 0;
	while (i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
	    s[i] == '+' || s[i] == '-' || s[i] == '.'))
		i++;
	if (i >= n || s[i] != ':')
		return 0;
	i++;
	if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		i += 2;
		/* authority: [userinfo@]host[:port] */
		e = i;
		while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
			e++;
		j = i;
		{
			const char *atp = memchr(s + i, '@', e - i);
			if (atp != NULL) {
				size_t ue = (size_t)(atp - s);
				if (uri_run(s, ue, i, ":") != ue)
					return 0;
				j = ue + 1;
			}
		}
		if (j < e && s[j] == '[') {
			size_t k = j + 1;
			int colon = 0;
			while (k < e && s[k] != ']') {
				if (s[k] == ':')
					colon = 1;
				if (!uri_unreserved((unsigned char)s[k]) && !uri_subdelim((unsigned char)s[k]) &&
				    s[k] != ':')
					return 0;
				k++;
			}
			if (k >= e || !colon)
				return 0;
			j = k + 1;
		} else {
			size_t k = uri_run(s, e, j, "");
			if (k == (size_t)-1)
				return 0;
			j = k;
		}
		if (j < e && s[j] == ':') {
			j++;
			while (j < e && is_digit((unsigned char)s[j]))
				j++;
		}
		if (j != e)
			return 0;
		i = e;
	}
	/* path */
	j = uri_run(s, n, i, ":@/");
	if (j == (size_t)-1)
		return 0;
	i = j;
	if (i < n && s[i] == '?') {
		j = uri_run(s, n, i + 1, ":@/?");
		if (j == (size_t)-1)
			return 0;
		i = j;
	}
	if (i < n && s[i] == '#') {
		j = uri_run(s, n, i + 1, ":@/?");
		if (j == (size_t)-1)
			return 0;
		i = j;
	}
	return i == n;
}

int
jsformat_check(enum jsformat f, const char *s, size_t n)
{
	switch (f) {
	case JSFORMAT_EMAIL: return fmt_email(s, n);
	case JSFORMAT_UUID: return fmt_uuid(s, n);
	case JSFORMAT_DATETIME: return fmt_datetime(s, n);
	case JSFORMAT_DATE: return fmt_date(s, n);
	case JSFORMAT_URI: return fmt_uri(s, n);
	default: return 1;
	}
}

enum jsformat
jsformat_lookup(const char *name)
{
	size_t i;

	for (i = 1; i < ARRAY_LEN(fmt_names); i++)
		if (strcmp(name, fmt_names[i]) == 0)
			return (enum jsformat)i;
	return JSFORMAT_NONE;
}

const char *
jsformat_name(enum jsformat f)
{
	return (size_t)f < ARRAY_LEN(fmt_names) ? fmt_names[f] : "";
}
