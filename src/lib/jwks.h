/* SPDX-License-Identifier: MIT
 * jwks — JWKS documents fetched over HTTPS (`jwt.keys[].jwks_url`), shared by every worker.
 *
 * One process-wide source per URL (struct jwks_src), held by the conf generations that name
 * it, so a SIGHUP that keeps the URL keeps the keys already fetched. The fetching happens on
 * one helper thread with its own event_base (never a worker's): DNS through evdns, a
 * non-blocking connect, TLS through sock.c with the system trust store
 * (SSL_CTX_set_default_verify_paths, which honours SSL_CERT_FILE / SSL_CERT_DIR) and the
 * host name checked against the certificate, the response parsed by http.c's llhttp glue.
 * Redirects are not followed (a JWKS URL that moves is an incident, not a hint).
 *
 * Publication: a source holds the last good keyset behind a mutex and a version number
 * (process-wide unique, 0 = nothing loaded yet). Readers compare the version with one
 * atomic load and take the mutex only when it changed (jwt.c keeps a per-worker view), so
 * the request path takes no lock. A failed fetch never replaces the last good set.
 *
 * Refresh: after a success, Cache-Control max-age clamped to [JWKS_TTL_MIN_S,
 * JWKS_TTL_MAX_S] (JWKS_TTL_DEFAULT_S without one); after a failure, 5 s doubling up to
 * 5 min. jwks_src_kick() lets a worker that met an unknown kid ask for one refetch, granted
 * at most once per JWKS_KICK_MS per source in the process.
 *
 * What this module must never do: block a worker, follow a redirect, trust a certificate
 * the trust store does not, or let a failing endpoint take away keys that were good.
 */
#ifndef VISOR_JWKS_H
#define VISOR_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/jwt_core.h"

#define JWKS_TTL_MIN_S        60
#define JWKS_TTL_MAX_S        86400
#define JWKS_TTL_DEFAULT_S    600
#define JWKS_KICK_MS          30000       /* unknown kid: at most one refetch per 30 s */
#define JWKS_FETCH_TIMEOUT_MS 10000       /* connect + TLS + whole response */
#define JWKS_RETRY_MIN_MS     5000
#define JWKS_RETRY_MAX_MS     300000
#define JWKS_MAX_BODY         (1024 * 1024)

struct jwks_src;

/* The source for `url` (an https:// URL): the existing one when a live generation already
 * names it (one more reference), else a new one with one reference that fetches nothing until
 * jwks_src_activate. NULL with *err set (static text) when the URL is not usable or on out of
 * memory. Main thread (conf_init). */
struct jwks_src *jwks_src_get(const char *url, const char **err);
/* Drops a reference (NULL: no-op). The last one retires the source; its keyset lives on in
 * whoever holds a reference to it. Any thread. */
void jwks_src_unref(struct jwks_src *s);
/* Starts fetching (and the helper thread, on first use). Idempotent, cheap after the first
 * call (one atomic load). Any thread. Never called by `visor -t`. */
void jwks_src_activate(struct jwks_src *s);

/* The current version: 0 until a first successful fetch. One atomic load. Any thread. */
uint64_t jwks_src_version(const struct jwks_src *s);
/* The current keyset with a reference for the caller (NULL when none yet), and its version
 * in *ver. Takes the source's mutex: call only when jwks_src_version changed. */
struct jwt_keyset *jwks_src_keyset(struct jwks_src *s, uint64_t *ver);
/* Fetch attempts finished so far (success or failure), and whether one is running now. */
uint64_t jwks_src_attempts(const struct jwks_src *s);
int      jwks_src_busy(const struct jwks_src *s);
/* Asks for a refetch now (a token named a kid no key has). 1 when granted (no other kick in
 * the last JWKS_KICK_MS for this source), 0 when refused. Any thread. */
int      jwks_src_kick(struct jwks_src *s, int64_t now_ms);
const char *jwks_src_url(const struct jwks_src *s);

/* ---- pure helpers (unit-tested) ------------------------------------------------------ */

/* Splits an https:// URL: host (brackets removed for IPv6), port ("443" by default) and
 * path with query ("/" by default; fragment dropped). Refuses userinfo, empty hosts, bad
 * ports, and control characters or spaces. 0 with malloc'd strings, or -1 (err set). */
int jwks_url_parse(const char *url, char **host, char **port, char **path, const char **err);
/* max-age from a Cache-Control value: seconds, 0 for no-store / no-cache, -1 when absent or
 * malformed. */
int64_t jwks_cache_max_age(const char *v, size_t n);
/* The refresh interval in seconds for a max-age (-1: none given): clamped to the bounds. */
int64_t jwks_ttl(int64_t max_age);

#endif
