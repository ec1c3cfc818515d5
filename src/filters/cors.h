/* SPDX-License-Identifier: MIT
 * cors — the pure half of the CORS policy (docs/cors.md): origin
 * normalisation, the allowlist built once per configuration generation, and the preflight
 * checks. No request, no socket, no allocation after cors_conf_new: the filter glue in
 * cors.c calls these on every request, the unit tests and the fuzzer call them directly.
 *
 * Origins compare as the Fetch standard serialises them: scheme and host lower-cased, the
 * scheme's default port dropped (http/ws 80, https/wss 443), leading zeros of a port
 * dropped. "null" is its own origin and only matches a listed "null". A configured "*" or
 * "*.x" (or anything else that is not scheme://host[:port]) is kept out of the list: it
 * never matches anything.
 */
#ifndef VISOR_CORS_H
#define VISOR_CORS_H

#include <stddef.h>

#include "conf/conf.h"
#include "http/filter.h"

/* Longest normalised origin visor compares; a longer Origin header is never allowed. */
#define CORS_ORIGIN_MAX 512

enum cors_onbad { CORS_REJECT = 0, CORS_OMIT };

/* The `cors` section as parsed (conf_sect(c, filter_id(&cors_filter))); owned by the conf,
 * released by its rows. */
struct cors_sect {
	int               enabled;      /* the section is present */
	int               ws_enabled;   /* a `websocket` section is present */
	struct conf_strs  ws_origins;   /* websocket.origins, as written */
	struct conf_strs  origins;      /* as written */
	int               credentials;
	struct conf_strs  methods;
	struct conf_strs  headers;
	struct conf_strs  expose;
	int64_t           max_age;      /* seconds */
	enum cors_onbad   on_disallowed;
};

extern const struct filter cors_filter;

/* Immutable, built by cors_conf_new from one generation's `cors` section, freed by
 * cors_conf_free. Every string is NUL-terminated and lives in the struct's own blocks, so
 * the filter can hand them to hdrs_put without copying. */
struct cors_conf {
	size_t      fid;           /* the filter's id (its per-worker state) */
	int         cors_on;       /* a `cors` section: CORS answers (else WebSocket checks only) */
	char      **origins;       /* normalised allowlist (unusable entries left out) */
	size_t     *origin_lens;
	size_t      n_origins;
	char      **ws_origins;    /* websocket.origins, normalised: allowed for upgrades too */
	size_t     *ws_origin_lens;
	size_t      n_ws_origins;
	char      **methods;       /* as configured (upper-case) */
	size_t      n_methods;
	char      **headers;       /* as configured; compared case-insensitively */
	size_t      n_headers;
	int         credentials;
	int         omit;          /* on_disallowed: omit */
	char       *allow_methods; /* "GET, POST, ..." or NULL when the list is empty */
	size_t      allow_methods_len;
	char       *allow_headers; /* "Content-Type, Authorization" or NULL */
	size_t      allow_headers_len;
	char       *expose;        /* "X-Request-Id" or NULL */
	size_t      expose_len;
	char        max_age[24];   /* decimal seconds */
	size_t      max_age_len;
};

/* Normalises the origin `in` (len bytes, not NUL-terminated) into `out` (outsz bytes, the
 * result NUL-terminated). Accepts "null" and scheme "://" host [":" port] with nothing after:
 * scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), host = a name of ALPHA / DIGIT / "-" /
 * "." / "_" / "~" or an IP literal "[" HEXDIG / ":" / "." "]", port = decimal up to 65535
 * (empty = default). Returns the normalised length, or -1 when `in` is not such an origin
 * or the result does not fit. Pure; thread-safe. */
long cors_origin_normalize(const char *in, size_t len, char *out, size_t outsz);

/* Builds the allowlist and the header values from a `cors` section. Returns NULL on out of
 * memory. Main thread (conf_init). */
struct cors_conf *cors_conf_new(const struct cors_sect *cs);
void cors_conf_free(struct cors_conf *cc);        /* NULL is a no-op */

/* Whether the Origin header value `o` (olen bytes, as received) is in the allowlist. */
int cors_origin_allowed(const struct cors_conf *cc, const char *o, size_t olen);
/* The same for a WebSocket upgrade: cors.origins and websocket.origins both allow. */
int cors_ws_origin_allowed(const struct cors_conf *cc, const char *o, size_t olen);

/* Whether the origin `o` is the request's own https origin, https://<host> (host as in the
 * Host header, port optional). */
int cors_same_origin(const char *o, size_t olen, const char *host, size_t hlen);

/* Preflight checks. Access-Control-Request-Method `m` must be a method token that is listed
 * (case-sensitively: methods are case-sensitive, and a browser compares them that way) or
 * CORS-safelisted (GET, HEAD, POST). `list` is one Access-Control-Request-Headers value: each
 * comma-separated name must be a token that is listed (case-insensitively) or a CORS-safelisted
 * name (Accept, Accept-Language, Content-Language, Content-Type, Range); empty elements are
 * ignored. Return 1 when allowed, 0 when not. */
int cors_method_allowed(const struct cors_conf *cc, const char *m, size_t mlen);
int cors_headers_allowed(const struct cors_conf *cc, const char *list, size_t len);
/* The first name of `list` that cors_headers_allowed refuses, in *name / *nlen: 1, or 0 when
 * every name is allowed. */
int cors_header_refused(const struct cors_conf *cc, const char *list, size_t len,
    const char **name, size_t *nlen);

/* The headers visor itself may send that a page needs to read (WWW-Authenticate to tell "no
 * token" from an invalid one, Retry-After and the RateLimit headers): exposed, on top of
 * cors.expose, on every answer that carries them. NULL-terminated. */
extern const char *const cors_expose_always[];

#endif
