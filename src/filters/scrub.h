/* SPDX-License-Identifier: MIT
 * scrub — the pure half of error scrubbing (docs/errors.md): the detector that
 * decides whether an upstream error body leaks internals. Unit-tested with real samples and
 * fuzzed; the filter glue is in scrub.c. Also the filter's configuration: the parsed
 * `errors` section (conf_sect(c, filter_id(&scrub_filter))).
 */
#ifndef VISOR_SCRUB_H
#define VISOR_SCRUB_H

#include <stddef.h>

#include "http/filter.h"

struct scrub_range {
	int lo, hi;
};

/* The `errors` section; owned by the conf, released by its rows. */
struct scrub_sect {
	struct scrub_range *scrub;
	size_t              n_scrub;
	int                 stack_traces;
};

extern const struct filter scrub_filter;

/* Whether status `st` falls in errors.scrub of generation c. Any thread. */
int scrub_status(const struct conf *c, int st);

/* How much of a 4xx body is inspected for a stack trace: larger bodies pass untouched. */
#define SCRUB_INSPECT_MAX (64 * 1024)
/* How much of a scrubbed body is logged with the scrubbed_error event. */
#define SCRUB_EXCERPT_MAX 4096

/* Whether the body `p` (n bytes, any content, not NUL-terminated) carries what a Node.js
 * application leaks when it sends an error as it is:
 *   - V8 stack frames: a line (real newline, JSON "\n", HTML <br>) indented by spaces, tabs
 *     or &nbsp; then "at fn (path:line:col)" or "at path:line:col", where path holds a '/' or
 *     '\' or starts with "node:" — Error.stack as text, as JSON, and Express's (finalhandler's)
 *     development HTML error page;
 *   - a JSON "stack" / "stackTrace" / "stack_trace" key whose value names an Error or an
 *     Exception or holds frames;
 *   - Node system errors (ECONNREFUSED, "getaddrinfo ENOTFOUND" ..., a serialised "syscall");
 *   - database driver errors: PostgreSQL (pg: constraint violations, "syntax error at or
 *     near", missing relation/column, a serialised error with "severity" and "routine"),
 *     MySQL (mysql2: ER_* codes, "sqlMessage", "sqlState"), SQLite (SQLITE_* codes,
 *     "no such table"), MongoDB/Mongoose (E11000, Mongo*Error, CastError, ValidatorError),
 *     ORM error names (Sequelize, Prisma, TypeORM), and Python tracebacks.
 * Ordinary text with "at" in it ("Meet at 10:30", "look at /docs") is not a trace.
 * Pure; thread-safe; linear in n (bounded look-arounds). */
int scrub_has_stack_trace(const char *p, size_t n);

#endif
