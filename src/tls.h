/* SPDX-License-Identifier: MIT
 * tls — the OpenSSL 3 contexts of one conf generation: one server SSL_CTX per certificate
 * (the first is the default; SNI picks another whose certificate names the host), ALPN
 * "http/1.1" (h2 can be added to the list later), TLS 1.2/1.3 with the Mozilla intermediate
 * ciphers by default, session tickets with keys that rotate, no compression, no
 * renegotiation; and the client context for upstream.tls, verifying the server.
 * Built on the main thread by conf_build; used read-only by workers (SSL_new is thread-safe
 * on a shared SSL_CTX). Freed with the generation, after the last SSL using it.
 */
#ifndef VISOR_TLS_H
#define VISOR_TLS_H

#include <openssl/ssl.h>

#include "conf.h"

struct tls_rt;

int  tls_build(struct conf_ctx *ctx, struct conf *c);
void tls_rt_free(struct tls_rt *t);
/* A server-side SSL for an accepted fd (accept state, RELEASE_BUFFERS). NULL on error. */
SSL *tls_new_ssl(struct tls_rt *t, int fd);
/* A client-side SSL towards an upstream (SNI + hostname verification). NULL on error. */
SSL *tls_new_upstream_ssl(struct tls_rt *t, int fd, const char *server_text);

#endif
