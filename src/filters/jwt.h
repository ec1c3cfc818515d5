/* SPDX-License-Identifier: MIT
 * jwt — the JWT filter (docs/jwt.md): finds the token
 * (Authorization: Bearer, else the configured cookie), verifies it with jwt_core against the
 * keys of the request's generation (PEM files, secrets, jwks_file) and the JWKS sources
 * (jwks.c), sets the identity later filters use (r->user, r->jti, r->iat, r->token_exp,
 * r->check_revocation) and the claims_to_headers headers for the upstream, and drops the
 * client's own copies of those headers on every route.
 *
 * Answers: no token on an `auth: required` route → 401 with exactly
 * `WWW-Authenticate: Bearer realm="api"`; any bad token (also on `optional`) → 401 with
 * exactly `WWW-Authenticate: Bearer error="invalid_token"`; two Authorization headers → 400.
 * The reason (jwt_err_name) goes to the access log as "jwt:<reason>" and to
 * visor_jwt_refused_total{reason}; the client never sees it.
 *
 * A per-worker cache of verified tokens (keyed by SHA-256 of the whole token) makes a reused
 * token cost one hash; exp/nbf/iat are still checked on every hit. See docs/jwt.md.
 */
#ifndef VISOR_JWT_H
#define VISOR_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "conf/conf.h"
#include "http/filter.h"
#include "lib/jwt_core.h"

struct req;

/* ---- configuration (parsed by conf.c through the filter's rows) -------------------------- */

enum auth_mode { AUTH_OFF = 0, AUTH_OPTIONAL, AUTH_REQUIRED };

struct jwt_sect_key {            /* exactly one of file / jwks_file / jwks_url / secret */
	char   *file;                 /* PEM public key or certificate */
	char   *jwks_file;
	char   *jwks_url;
	char   *secret;               /* HMAC secret bytes (from secret_file or secret: ${VAR}) */
	size_t  secret_len;
	char   *kid;                  /* optional, for file / secret */
};

/* The `jwt` section (conf_sect(c, filter_id(&jwt_filter))); owned by the conf, released by
 * its rows (secrets wiped). */
struct jwt_sect {
	int                  enabled;   /* the section is present */
	uint32_t             algorithms;/* bit set of JWT_ALG_* (jwt_core.h) */
	struct conf_strs     algorithm_names;
	struct jwt_sect_key *keys;
	size_t               n_keys;
	char                *issuer;    /* NULL: not checked */
	struct conf_strs     audience;  /* n == 0: not checked; any of them matches */
	int64_t              leeway_ms;
	struct conf_strs     required_claims;
	char                *cookie;    /* NULL: no cookie */
	struct conf_kvs      claims_to_headers; /* claim → header name */
	int                  revocation;/* sets r->check_revocation for the rl filter */
};

/* A route's `auth` (conf_route_keys(cr, filter_id(&jwt_filter))). */
struct jwt_route {
	enum auth_mode auth;
};

extern const struct filter jwt_filter;

/* Whether requests on this route may carry a verified token (auth optional or required): on
 * the others r->user is never set. At build time, for the rate-limit rows. */
int jwt_route_verifies(const struct conf_route *cr);

/* Makes the 401 answer for a refused token: the JSON body, `WWW-Authenticate: Bearer
 * error="invalid_token"`, r->log_reason = "jwt:<reason>" (static), and counts
 * m.jwt_refused[reason]. `reason` is an enum jwt_err (JWT_E_REVOKED from the revocation
 * check in rl.c). The caller returns V_RESPOND (or resumes with it). Worker thread. */
void jwt_refuse(struct req *r, int reason);

/* "jwt:<reason>" for an enum jwt_err: a static string for logs. */
const char *jwt_log_reason(int reason);

/* ---- pure helpers (unit-tested) ------------------------------------------------------ */

/* An Authorization value: 1 when its scheme is Bearer (case-insensitive), with the token in
 * *tok and *tlen (tlen 0 when the value is "Bearer" alone); 0 for any other scheme. */
int jwt_bearer(const char *v, size_t n, const char **tok, size_t *tlen);

/* Looks for cookie `name` (exact, case-sensitive) in one Cookie header value. Returns 0 when
 * absent, 1 with the value (surrounding DQUOTEs removed) in *val and *vlen, -1 when the name
 * appears twice with different values. A value already found (*val != NULL on entry) counts
 * as a previous occurrence, so several Cookie headers can be scanned in turn. */
int jwt_cookie(const char *v, size_t n, const char *name, size_t nlen, const char **val,
    size_t *vlen);

/* Whether `s` may be sent as a header value: HTAB, SP, visible ASCII and obs-text only (no
 * CR, LF, NUL or other control characters, no DEL). */
int jwt_header_value_ok(const char *s, size_t n);

/* The header text of a claim: strings as they are, numbers as JSON numbers (integers exact,
 * reals in the shortest form that reads back equal), anything else JSON-encoded compactly.
 * 0 with a malloc'd NUL-terminated *out, 1 when the text is not a valid header value (the
 * claim must not be forwarded), -1 on out of memory. */
int jwt_claim_text(const json_t *v, char **out, size_t *len);

#endif
