/* SPDX-License-Identifier: MIT
 * tls — the OpenSSL 3 contexts of one conf generation: one server SSL_CTX per site, that is
 * per set of names, holding every certificate for those names (an ECDSA and an RSA one:
 * OpenSSL picks per handshake by what the client accepts, ECDSA when it takes both). The first
 * certificate's site is the default; SNI picks another whose certificate names the host.
 * ALPN "http/1.1" (h2 can be added to the list later), TLS 1.2/1.3 with the Mozilla
 * intermediate ciphers by default, session tickets with keys that rotate, no compression, no
 * renegotiation; and the client contexts for upstream.tls and rediss://, verifying the server.
 * Built on the main thread by conf_build; used read-only by workers (SSL_new is thread-safe
 * on a shared SSL_CTX). Freed with the generation, after the last SSL using it.
 */
#ifndef VISOR_TLS_H
#define VISOR_TLS_H

#include <openssl/ssl.h>

#include "conf/conf.h"

struct tls_rt;

/* Builds c->tls_rt from c->tls and c->upstream (main thread). Reads every certificate and key
 * file; reports problems to ctx at their YAML position: files that do not load, a key that
 * does not match, two certificates of one key type for the same names (errors); certificates
 * of different key types sharing some names but not all (warning). 0, or -1 on an error;
 * c->tls_rt is set either way and freed with the generation (conf_release_runtime). */
int  tls_build(struct conf_ctx *ctx, struct conf *c);
void tls_rt_free(struct tls_rt *t);
/* A server-side SSL for an accepted fd (accept state, RELEASE_BUFFERS). NULL on error. */
SSL *tls_new_ssl(struct tls_rt *t, int fd);
/* A client context for visor's own TLS clients (upstream re-encryption, JWKS fetches):
 * TLS >= 1.2, no compression or renegotiation, released buffers; with `verify`, the peer is
 * verified against ca_file (PEM bundle) or, when NULL, the system store. NULL with the
 * OpenSSL reason in err. Any thread. */
SSL_CTX *tls_client_ctx_new(int verify, const char *ca_file, char *err, size_t errlen);
/* The generation's Redis client context (rediss://; verification and client certificate
 * as redis.tls says), or NULL without TLS. Borrowed: a holder beyond the generation takes
 * its own reference (SSL_CTX_up_ref). */
SSL_CTX *tls_redis_ctx(const struct tls_rt *t);
/* A new Redis client context from c's redis.tls (owned by the caller), for a worker's own
 * use: OpenSSL's client-side handshake state in a context shared by several threads is
 * where ThreadSanitizer saw races. NULL with the reason in eb and, in *key, the redis.tls
 * key naming the file at fault (or NULL). Any thread. */
SSL_CTX *tls_redis_ctx_new(const struct conf *c, char *eb, size_t len, const char **key);
/* A client-side SSL towards an upstream (SNI + hostname verification). NULL on error. */
SSL *tls_new_upstream_ssl(struct tls_rt *t, int fd, const char *server_text);

#endif
