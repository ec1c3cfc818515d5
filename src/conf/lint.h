/* SPDX-License-Identifier: MIT
 * lint — the security lint of `visor -t` (CONTRACT §1): warnings, never errors, for the
 * settings that load fine but leave a Node.js API exposed (wildcard or http:// CORS origins,
 * short HSTS, TLS below 1.2, trusting every proxy, weak or inline HMAC secrets, login routes
 * without a rate limit, unverified upstream TLS, no HTTP→HTTPS redirect, weak CSP, ...).
 * Each warning sits at the file:line:col of the offending YAML node and names the fix.
 * docs/lint.md lists every rule.
 *
 * It reads the typed configuration and the kept YAML tree (for positions and for what the
 * typed fields cannot say: whether a secret came from ${VAR} or a *_file key). It never
 * changes the configuration and never fails a load: `--strict` is what turns its warnings
 * into a non-zero exit (main.c).
 */
#ifndef VISOR_LINT_H
#define VISOR_LINT_H

struct conf_ctx;
struct conf;

/* Adds one warning to ctx per finding in `c`, a fully parsed generation (c->tree may be NULL:
 * then warnings carry no position). Does nothing when ctx already holds errors: a file that
 * does not load is not reviewed, so its errors are not buried under warnings. Main thread
 * (called once per generation from conf_build). */
void lint_check(struct conf_ctx *ctx, const struct conf *c);

#endif
