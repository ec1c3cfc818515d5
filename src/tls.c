/* SPDX-License-Identifier: MIT
 * tls — server and upstream-client contexts. Memory matters here (a target of <= 10 KiB
 * per idle keep-alive TLS connection): SSL_MODE_RELEASE_BUFFERS drops the 16 KiB record
 * buffers of idle connections, and stateless tickets keep no per-session cache.
 * A handshake failure is the peer's problem, never ours: it is logged by conn.c at debug.
 */
#include "tls.h"

#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"

struct tls_rt {
	SSL_CTX  **ctx;          /* per certificate; ctx[0] is the default */
	size_t     n;
	SSL_CTX   *up;           /* upstream client, when upstream.tls */
	char      *up_name;      /* server_name to verify, or NULL: the host of each server */
};

static const unsigned char alpn_h11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };

static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	/* Only http/1.1 for now; a client offering nothing we speak gets no ALPN (not fatal,
	 * so plain HTTP/1.1 clients without ALPN keep working). */
	if (SSL_select_next_proto(&sel, outlen, alpn_h11, sizeof(alpn_h11), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* SNI: switch to the context whose certificate matches the name (X509_check_host handles
 * wildcards and SANs). Unknown names keep the default certificate. */
static int
on_sni(SSL *ssl, int *al, void *arg)
{
	struct tls_rt *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t i;

	(void)al;
	if (name == NULL || t->n < 2)
		return SSL_TLSEXT_ERR_OK;
	for (i = 1; i < t->n; i++) {
		X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);
		if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, t->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static void
ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
}

static SSL_CTX *
server_ctx(struct conf_ctx *ctx, struct conf *c, size_t i)
{
	const struct conf_cert *ce = &c->tls.certs[i];
	char eb[256];
	char path[32];
	SSL_CTX *s;
	long opts;
	int minv;

	snprintf(path, sizeof(path), "tls.certificates.%zu.cert", i);
	s = SSL_CTX_new(TLS_server_method());
	if (s == NULL)
		goto ossl_fail;
	switch ((int)c->tls.min_version) {
	case TLS_MIN_13: minv = TLS1_3_VERSION; break;
	default:         minv = TLS1_2_VERSION; break;
	}
	/* TLSv1/TLSv1.1 are accepted in the file only so the lint can warn; OpenSSL 3 at the
	 * default security level refuses them anyway, and visor never goes below 1.2. */
	SSL_CTX_set_min_proto_version(s, minv);
	opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF;
	if (!c->tls.session_tickets)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(s, (uint64_t)opts);
	/* No SSL_MODE_RELEASE_BUFFERS: freeing and re-allocating the record buffers on every
	 * request costs ~1,300 instructions; conn.c frees them with SSL_free_buffers once a
	 * connection has been idle for a second instead, so idle connections still hold none. */
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read() per TLS record batch instead of header + body reads. */
	SSL_CTX_set_read_ahead(s, 1);
	/* Stateless tickets only: no server-side session cache to grow with clients. */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(s, c->tls.session_tickets ? 1 : 0);
	if (c->tls.ciphers && SSL_CTX_set_cipher_list(s, c->tls.ciphers) != 1) {
		conf_err(ctx, ynode_path(c->tree, "tls.ciphers"), "no usable cipher in tls.ciphers");
		goto fail;
	}
	if (c->tls.ciphersuites && SSL_CTX_set_ciphersuites(s, c->tls.ciphersuites) != 1) {
		conf_err(ctx, ynode_path(c->tree, "tls.ciphersuites"),
		    "no usable suite in tls.ciphersuites");
		goto fail;
	}
	SSL_CTX_set1_groups_list(s, "X25519:P-256:P-384");
	if (SSL_CTX_use_certificate_chain_file(s, ce->cert) != 1) {
		ssl_err_text(eb, sizeof(eb));
		conf_err(ctx, ynode_path(c->tree, path), "cannot load certificate %s: %s", ce->cert, eb);
		goto fail;
	}
	snprintf(path, sizeof(path), "tls.certificates.%zu.key", i);
	if (SSL_CTX_use_PrivateKey_file(s, ce->key, SSL_FILETYPE_PEM) != 1) {
		ssl_err_text(eb, sizeof(eb));
		conf_err(ctx, ynode_path(c->tree, path), "cannot load key %s: %s", ce->key, eb);
		goto fail;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		ERR_clear_error();
		conf_err(ctx, ynode_path(c->tree, path), "key %s does not match certificate %s",
		    ce->key, ce->cert);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(s, on_alpn, NULL);
	return s;
ossl_fail:
	ssl_err_text(eb, sizeof(eb));
	conf_err(ctx, NULL, "TLS context: %s", eb);
fail:
	SSL_CTX_free(s);
	ERR_clear_error();
	return NULL;
}

static SSL_CTX *
upstream_ctx(struct conf_ctx *ctx, struct conf *c)
{
	SSL_CTX *s;
	char eb[256];

	s = SSL_CTX_new(TLS_client_method());
	if (s == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (c->upstream.tls_verify) {
		SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
		if (c->upstream.tls_ca) {
			if (SSL_CTX_load_verify_locations(s, c->upstream.tls_ca, NULL) != 1) {
				ssl_err_text(eb, sizeof(eb));
				conf_err(ctx, ynode_path(c->tree, "upstream.tls.ca"),
				    "cannot load CA %s: %s", c->upstream.tls_ca, eb);
				SSL_CTX_free(s);
				return NULL;
			}
		} else if (SSL_CTX_set_default_verify_paths(s) != 1) {
			ERR_clear_error();
		}
	} else {
		SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
	}
	return s;
fail:
	ssl_err_text(eb, sizeof(eb));
	conf_err(ctx, NULL, "upstream TLS context: %s", eb);
	return NULL;
}

int
tls_build(struct conf_ctx *ctx, struct conf *c)
{
	struct tls_rt *t;
	size_t i;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	c->tls_rt = t;
	t->ctx = calloc(c->tls.n_certs ? c->tls.n_certs : 1, sizeof(*t->ctx));
	if (t->ctx == NULL)
		return -1;
	for (i = 0; i < c->tls.n_certs; i++) {
		t->ctx[i] = server_ctx(ctx, c, i);
		if (t->ctx[i] == NULL)
			return -1;
		t->n++;
	}
	for (i = 0; i < t->n; i++) {
		SSL_CTX_set_tlsext_servername_callback(t->ctx[i], on_sni);
		SSL_CTX_set_tlsext_servername_arg(t->ctx[i], t);
	}
	if (c->upstream.tls_enabled) {
		t->up = upstream_ctx(ctx, c);
		if (t->up == NULL)
			return -1;
		if (c->upstream.tls_server_name)
			t->up_name = strdup(c->upstream.tls_server_name);
	}
	return 0;
}

void
tls_rt_free(struct tls_rt *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	free(t->ctx);
	SSL_CTX_free(t->up);
	free(t->up_name);
	free(t);
}

SSL *
tls_new_ssl(struct tls_rt *t, int fd)
{
	SSL *s;

	if (t == NULL || t->n == 0)
		return NULL;
	s = SSL_new(t->ctx[0]);
	if (s == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (SSL_set_fd(s, fd) != 1) {
		SSL_free(s);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(s);
	return s;
}

SSL *
tls_new_upstream_ssl(struct tls_rt *t, int fd, const char *server_text)
{
	char host[256], *name;
	unsigned char ipbuf[16];
	SSL *s;
	size_t n;

	if (t == NULL || t->up == NULL)
		return NULL;
	if (t->up_name) {
		name = t->up_name;
	} else {
		/* "host:port" or "[v6]:port" → host */
		const char *colon = strrchr(server_text, ':');
		n = colon ? (size_t)(colon - server_text) : strlen(server_text);
		if (n && server_text[0] == '[') {
			server_text++;
			n -= 2;
		}
		if (n >= sizeof(host))
			n = sizeof(host) - 1;
		memcpy(host, server_text, n);
		host[n] = '\0';
		name = host;
	}
	s = SSL_new(t->up);
	if (s == NULL)
		goto fail;
	if (SSL_set_fd(s, fd) != 1)
		goto fail;
	SSL_set_connect_state(s);
	/* SNI carries host names only (RFC 6066 §3), never IP literals. */
	if (inet_pton(AF_INET, name, ipbuf) != 1 && inet_pton(AF_INET6, name, ipbuf) != 1)
		SSL_set_tlsext_host_name(s, name);
	if (SSL_get_verify_mode(s) & SSL_VERIFY_PEER) {
		/* IP literals verify against IP SANs, names against DNS SANs. */
		X509_VERIFY_PARAM *vp = SSL_get0_param(s);
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
			ERR_clear_error();
			if (SSL_set1_host(s, name) != 1)
				goto fail;
		}
	}
	return s;
fail:
	SSL_free(s);
	ERR_clear_error();
	return NULL;
}
