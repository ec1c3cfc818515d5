/* SPDX-License-Identifier: MIT
 * jschema — the pure half of the body filter: parses a request body as strict JSON and
 * checks it against a compiled JSON Schema (a documented subset of 2020-12, see
 * docs/body-checks.md). No sockets, no globals, no locks: a compiled schema is immutable and
 * shared by every worker thread; each check keeps its state on the stack and in the arena
 * the caller passes.
 *
 * What it must never do: echo a body value in a message (messages name a JSON pointer and a
 * rule, never a value), accept what it cannot check (unknown keywords are compile errors, not
 * ignored), or take unbounded time or memory (nesting, schema size, pattern programs and the
 * work of one check are all bounded; patterns run on lib/regex, which never backtracks).
 */
#ifndef VISOR_JSCHEMA_H
#define VISOR_JSCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/util.h"
#include "lib/regex.h"

#define JSCHEMA_MAX_DEPTH        64          /* instance nesting (arrays and objects) */
#define JSCHEMA_MAX_SCHEMA_SIZE  (1u << 20)  /* schema text, bytes */
#define JSCHEMA_MAX_SCHEMA_DEPTH 128         /* schema document nesting */
#define JSCHEMA_MAX_INPLACE      32          /* $ref/allOf/anyOf/oneOf/not chained on one value */
#define JSCHEMA_MAX_PATTERN      REGEX_MAX_PATTERN   /* pattern source, bytes (1024) */
#define JSCHEMA_MAX_PROG         REGEX_MAX_PROG      /* compiled instructions (2048) */
#define JSCHEMA_MAX_REPEAT       REGEX_MAX_REPEAT    /* the n and m of {n,m} (1000) */
#define JSCHEMA_WORK_BUDGET      (2u << 20)  /* work units per check, plus ...              */
#define JSCHEMA_WORK_PER_BYTE    16          /* ... this many per body byte (jschema_check);
                                              * a unit is one pattern thread step, a value
                                              * check costs 4: ~20 ns each, so a check costs
                                              * at most ~40 ms + about twice the parse time */
#define JSCHEMA_MAX_POINTER      256         /* bytes of a JSON pointer shown in a message */

struct jschema;

/* A schema compile error. `pointer` locates the offending keyword in the schema document
 * (RFC 6901, "" for the root); line/col locate it in the schema text (from 1, 0 = unknown). */
struct jschema_cerr {
	char pointer[256];
	int  line, col;
	char msg[256];
};

/* Compiles the schema text (JSON, UTF-8, at most JSCHEMA_MAX_SCHEMA_SIZE bytes). Returns the
 * schema (free with jschema_free), or NULL with `err` filled: invalid JSON, a keyword or
 * format visor does not implement, a keyword with a wrong value, a $ref that is not local or
 * does not resolve, a $ref cycle that never descends into the instance, a pattern outside
 * the supported syntax or over the complexity bounds. Any thread. */
struct jschema *jschema_compile(const char *text, size_t len, struct jschema_cerr *err);
void jschema_free(struct jschema *s);           /* NULL is a no-op */
/* Whether the root schema lists `required` members (an empty body cannot satisfy it). */
int jschema_root_requires(const struct jschema *s);

/* The outcome of a check. On failure `msg` is the client-facing message ("Invalid JSON",
 * "Invalid body: /profile/zip does not match the pattern"), `pointer` the failing location
 * ("/" for the root: RFC 6901's "" is shown as "/") and `rule` the keyword or check that
 * failed ("json", "depth", "forbidden-key", "complexity", "type", "pattern"...). */
enum jschema_status { JSCHEMA_OK = 0, JSCHEMA_INVALID, JSCHEMA_NOMEM };
struct jschema_result {
	char        msg[JSCHEMA_MAX_POINTER + 200];
	char        pointer[JSCHEMA_MAX_POINTER + 8];
	const char *rule;
};

/* Parses `buf` as one JSON text: nesting at most JSCHEMA_MAX_DEPTH, UTF-8 only, no duplicate
 * keys (after unescaping), no NaN/Infinity, numbers as doubles (what the Node upstream
 * sees), any top-level value. Then refuses any object key "__proto__", "constructor" or
 * "prototype" at any depth (the first in document order is reported). On JSCHEMA_OK *out
 * holds the document (json_decref it). Any thread. */
enum jschema_status jschema_load(const char *buf, size_t len, json_t **out,
    struct jschema_result *res);

/* Checks `inst` against `s`; the reported failure is the first in document order (see
 * docs/body-checks.md). Scratch memory comes from `a` (released with the arena). The work
 * budget is JSCHEMA_WORK_BUDGET; past it the check fails with rule "complexity". */
enum jschema_status jschema_validate(const struct jschema *s, const json_t *inst, struct arena *a,
    struct jschema_result *res);

/* jschema_load, then jschema_validate when `s` is not NULL, with a work budget of
 * JSCHEMA_WORK_BUDGET + JSCHEMA_WORK_PER_BYTE * len. */
enum jschema_status jschema_check(const struct jschema *s, const char *buf, size_t len,
    struct arena *a, struct jschema_result *res);

/* The pattern engine on its own (tests, fuzzing): compiles `pat` (lib/regex.h: an ECMA-262
 * subset) and searches `subject` with the budget a body of `slen` bytes gets. Returns 1 match, 0 no
 * match, -1 pattern refused (reason in err), -2 the search ran out of its work budget. */
int jschema_regex_search(const char *pat, size_t plen, const char *subject, size_t slen,
    char *err, size_t errlen);

/* The format checks on their own (lib/jsformat.h): `name` is one of email, uuid, date-time,
 * date, uri. Returns 1 valid, 0 invalid, -1 unknown format. */
int jschema_format_check(const char *name, const char *s, size_t len);

#endif
