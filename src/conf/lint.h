/* SPDX-License-Identifier: MIT
 * lint — the security lint of `visor -t` (docs/lint.md): warnings, never errors, for the
 * settings that load fine but leave a Node.js API exposed (wildcard or http:// CORS origins,
 * short HSTS, TLS below 1.2, trusting every proxy, weak or inline HMAC secrets, login routes
 * without a rate limit, unverified upstream TLS, no HTTP→HTTPS redirect, weak CSP, ...).
 * Each warning sits at the file:line:col of the offending YAML node and names the fix.
 * docs/lint.md lists every rule.
 *
 * This module is the framework and the core's rules (listen, tls, upstream, client, redis,
 * routes); each policy's rules live in its filter (filter->conf_lint), which lint_check calls
 * after the core's, in table order, with the helpers below.
 *
 * It reads the typed configuration and the kept YAML tree (for positions and for what the
 * typed fields cannot say: whether a secret came from ${VAR} or a *_file key). It never
 * changes the configuration and never fails a load: `--strict` is what turns its warnings
 * into a non-zero exit (main.c).
 */
#ifndef VISOR_LINT_H
#define VISOR_LINT_H

#include <stddef.h>

struct conf_ctx;
struct conf;
struct conf_route;
struct ynode;

/* One lint run: where warnings go (conf_warn(l->ctx, at, ...)) and what is reviewed. */
struct lint {
	struct conf_ctx   *ctx;
	const struct conf *c;
	char               q[4][100];  /* rotating buffers for user text in messages */
	int                qi;
};

/* Adds one warning to ctx per finding in `c`, a fully parsed generation (c->tree may be NULL:
 * then warnings carry no position). Does nothing when ctx already holds errors: a file that
 * does not load is not reviewed, so its errors are not buried under warnings. Main thread
 * (called once per generation from conf_build). */
void lint_check(struct conf_ctx *ctx, const struct conf *c);

/* ---- for the rules ----------------------------------------------------------------------- */

/* User text for a message: printable, at most ~80 bytes. Valid until 4 more calls. */
const char *lint_quote(struct lint *l, const char *s);

/* The node at a dotted path ("cors.origins.0"), NULL when absent or without a tree. */
const struct ynode *lint_node(const struct lint *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The first of a, b that is not NULL. */
const struct ynode *lint_first(const struct ynode *a, const struct ynode *b);

/* Item i of a list node as the parser reads it (a single scalar stands for a list of one);
 * the list itself when the item cannot be found. */
const struct ynode *lint_item(const struct ynode *list, size_t i);

/* The key node of a top-level section, for warnings about what the section lacks; the root
 * (line 1) when the section is absent. */
const struct ynode *lint_section(const struct lint *l, const char *name);

/* Secure-context hosts (W3C Secure Contexts, "potentially trustworthy"): localhost and
 * *.localhost, 127.0.0.0/8, [::1]. `h` is the host as written, `n` its length. */
int lint_loopback_host(const char *h, size_t n);

/* Whether routes[i] can never match because an earlier route matches every request it would
 * (the core warns about it): then *by is that route's index. A policy's route rules skip
 * such a route, so it gets one warning, that one. */
int lint_route_shadowed(const struct conf *c, size_t i, size_t *by);

#endif
