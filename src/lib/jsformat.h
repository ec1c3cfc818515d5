/* SPDX-License-Identifier: MIT
 * jsformat — the string formats JSON Schema's "format" keyword asserts in visor: email,
 * uuid, date-time, date and uri, each a strict, ASCII-only reading of its RFC (the exact
 * grammar accepted is in docs/body-checks.md, "format"). A format that is not listed here is
 * not half-supported: jschema refuses it when it compiles a schema.
 *
 * Pure functions: no allocation, no globals, any thread. A check reads s[0..n) only (s need
 * not be NUL-terminated and may contain NUL, which no format accepts), in O(n), and says
 * valid or not, never why: a caller's message names the format, never the value.
 */
#ifndef VISOR_JSFORMAT_H
#define VISOR_JSFORMAT_H

#include <stddef.h>

enum jsformat {
	JSFORMAT_NONE = 0,      /* no format: every string is valid */
	JSFORMAT_EMAIL,         /* RFC 5321 Mailbox: dot-atom @ a host name of 2+ labels */
	JSFORMAT_UUID,          /* RFC 9562 (ex 4122) 8-4-4-4-12 hex digits, any case */
	JSFORMAT_DATETIME,      /* RFC 3339 date-time, offset required, :60 only at 23:59 UTC */
	JSFORMAT_DATE,          /* RFC 3339 full-date, a day that exists */
	JSFORMAT_URI,           /* RFC 3986 URI: absolute (a scheme), ASCII */
};

/* The names, as a schema author reads them in a refusal. */
#define JSFORMAT_NAMES "email, uuid, date-time, date, uri"

/* The format called `name` (NUL-terminated, case-sensitive), or JSFORMAT_NONE. */
enum jsformat jsformat_lookup(const char *name);

/* The name of `f` ("date-time"); "" for JSFORMAT_NONE or a value out of range. */
const char *jsformat_name(enum jsformat f);

/* 1 when s[0..n) is valid for `f`, else 0 (JSFORMAT_NONE: 1). */
int jsformat_check(enum jsformat f, const char *s, size_t n);

#endif
