/* SPDX-License-Identifier: MIT
 * tls — server and upstream-client contexts. Memory matters here (a target of <= 10 KiB
 * per idle keep-alive TLS connection): SSL_MODE_RELEASE_BUFFERS drops the 16 KiB record
 * buffers of idle connections, and stateless tickets keep no per-session cache.
 * A handshake failure is the peer's problem, never ours: it is logged by conn.c at debug.
 *
 * Certificates are grouped into sites: every certificate of tls.certificates that serves
 * exactly the same names (DNS and IP SANs, or the subject CN when there is no DNS SAN;
 * compared as sets, ignoring case) goes into one SSL_CTX, each with its chain in the slot of
 * its key type. OpenSSL then picks one per handshake from what the client accepts (TLS 1.3:
 * signature algorithms; TLS 1.2: the cipher suite), with the server's order deciding when the
 * client takes several (SSL_OP_CIPHER_SERVER_PREFERENCE): ECDSA before RSA in OpenSSL's
 * signature list and in the default cipher list. A site can hold one certificate per key type
 * (RSA, RSA-PSS, ECDSA of any curve, Ed25519, Ed448): a second one would replace the first in
 * its slot, so it is a configuration error. The site of the first certificate is the default;
 * SNI picks another site whose certificate names the host.
 */
#include "net/tls.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/util.h"

struct tls_rt {
	SSL_CTX  **ctx;          /* per site; ctx[0] is the default; NULL where a build failed */
	size_t     n;
	SSL_CTX   *up;           /* upstream client, when upstream.tls */
	char      *up_name;      /* server_name to verify, or NULL: the host of each server */
	SSL_CTX   *redis;        /* Redis client, for a rediss:// URL */
};

/* One entry of tls.certificates while tls_build groups them; freed at the end of the build. */
struct certinfo {
	X509      *leaf;         /* the first certificate of the cert file */
	char     **names;        /* lower case, sorted, unique */
	size_t     nnames;
	int        ktype;        /* EVP_PKEY_RSA, EVP_PKEY_EC...: one OpenSSL slot each */
	size_t     site;
};

static const unsigned char alpn_h11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
static const unsigned char alpn_h2[] = { 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };

static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	unsigned char *sel;

	(void)ssl;
	/* arg: http2.enabled of the generation the context belongs to. Ours in our order: h2
	 * first when on (SSL_select_next_proto takes the server's preference). A client
	 * offering nothing we speak gets no ALPN (not fatal, so HTTP/1.1 clients without ALPN
	 * keep working). */
	if (arg != NULL ? SSL_select_next_proto(&sel, outlen, alpn_h2, sizeof(alpn_h2), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED :
	    SSL_select_next_proto(&sel, outlen, alpn_h11, sizeof(alpn_h11), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* SNI: switch to the first site after the default whose certificate matches the name
 * (X509_check_host handles wildcards and SANs; every certificate of a site has the same names,
 * so the site's current one answers for all). Unknown names keep the default site. The
 * choice between a site's certificates comes later in the handshake, made by OpenSSL. */
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

/* A server context with every setting but the certificates, the same for all sites. */
static SSL_CTX *
server_ctx(struct conf_ctx *ctx, struct conf *c)
{
	char eb[256];
	SSL_CTX *s;
	long opts;
	int minv;

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
	/* SSL_OP_CIPHER_SERVER_PREFERENCE also makes the server's signature algorithm list the
	 * preference (OpenSSL's tls1_set_shared_sigalgs): a client that takes ECDSA and RSA, in
	 * whatever order, gets ECDSA from a site that has both (tests/integration/tls-certs). */
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
	/* the flag travels as the callback's argument: non-NULL offers h2 */
	SSL_CTX_set_alpn_select_cb(s, on_alpn, c->http2.enabled ? (void *)s : NULL);
	return s;
ossl_fail:
	ssl_err_text(eb, sizeof(eb));
	conf_err(ctx, NULL, "TLS context: %s", eb);
fail:
	SSL_CTX_free(s);
	ERR_clear_error();
	return NULL;
}

/* Keys are read without a passphrase: an encrypted key is an error, never a prompt on the
 * terminal of a daemon (docs/deployment.md: keys are PEM, unencrypted). `u` is an int set
 * to 1 when the key asked for one. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

/* Loads certificate i (chain, then key) into the site context s. `leaf` is the certificate
 * tls_build read from the same file. The chain goes to the slot of the leaf's key type,
 * which becomes the current one; the key must match that leaf, whatever else the site
 * holds. 0, or -1 with the error reported at tls.certificates.i. */
static int
load_pair(struct conf_ctx *ctx, struct conf *c, SSL_CTX *s, size_t i, X509 *leaf)
{
	const struct conf_cert *ce = &c->tls.certs[i];
	EVP_PKEY *key = NULL;
	BIO *in = NULL;
	char eb[256];
	char path[48];
	int encrypted = 0;

	snprintf(path, sizeof(path), "tls.certificates.%zu.cert", i);
	if (SSL_CTX_use_certificate_chain_file(s, ce->cert) != 1) {
		ssl_err_text(eb, sizeof(eb));
		conf_err(ctx, ynode_path(c->tree, path), "cannot load certificate %s: %s", ce->cert, eb);
		goto fail;
	}
	/* Read twice (for the names, then as a chain): a file replaced in between (a rotation
	 * under way) would pair a key with the wrong certificate. */
	if (X509_cmp(SSL_CTX_get0_certificate(s), leaf) != 0) {
		conf_err(ctx, ynode_path(c->tree, path), "certificate %s changed while it was read",
		    ce->cert);
		goto fail;
	}
	snprintf(path, sizeof(path), "tls.certificates.%zu.key", i);
	in = BIO_new_file(ce->key, "r");
	if (in)
		key = PEM_read_bio_PrivateKey(in, NULL, no_passphrase, &encrypted);
	if (key == NULL) {
		ssl_err_text(eb, sizeof(eb));
		if (encrypted)
			snprintf(eb, sizeof(eb), "it is encrypted (visor reads unencrypted PEM keys)");
		conf_err(ctx, ynode_path(c->tree, path), "cannot load key %s: %s", ce->key, eb);
		goto fail;
	}
	/* Checked against this pair's leaf, not the context's current slot: a key of another
	 * type would land in another slot and match the other certificate there. */
	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		conf_err(ctx, ynode_path(c->tree, path), "key %s does not match certificate %s",
		    ce->key, ce->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(s, key) != 1) {
		ssl_err_text(eb, sizeof(eb));
		conf_err(ctx, ynode_path(c->tree, path), "cannot load key %s: %s", ce->key, eb);
		goto fail;
	}
	EVP_PKEY_free(key);
	BIO_free(in);
	return 0;
fail:
	EVP_PKEY_free(key);
	BIO_free(in);
	ERR_clear_error();
	return -1;
}

/* ---- grouping certificates into sites ------------------------------------------- */

static const char *
ktype_name(int t)
{
	const char *sn;

	switch (t) {
	case EVP_PKEY_RSA:     return "RSA";
	case EVP_PKEY_RSA_PSS: return "RSA-PSS";
	case EVP_PKEY_EC:      return "ECDSA";
	case EVP_PKEY_ED25519: return "Ed25519";
	case EVP_PKEY_ED448:   return "Ed448";
	default:
		sn = OBJ_nid2sn(t);
		return sn ? sn : "unknown";
	}
}

static int
name_add(struct certinfo *ci, const unsigned char *v, size_t len)
{
	char *p, **nv;
	size_t i;

	/* An embedded NUL never matches a host name (X509_check_host refuses it too). */
	if (len == 0 || memchr(v, '\0', len))
		return 0;
	nv = realloc(ci->names, (ci->nnames + 1) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	ci->names = nv;
	p = malloc(len + 1);
	if (p == NULL)
		return -1;
	for (i = 0; i < len; i++)
		p[i] = (char)tolower(v[i]);
	p[len] = '\0';
	ci->names[ci->nnames++] = p;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names a certificate serves: its DNS and IP SANs, and its subject CNs when it has no
 * DNS SAN (when X509_check_host would look at them). Sorted and unique. 0 or -1 (memory). */
static int
cert_names(struct certinfo *ci)
{
	GENERAL_NAMES *gens;
	X509_NAME *subj;
	int i, n, has_dns = 0, rc = 0;
	size_t j, k;

	gens = X509_get_ext_d2i(ci->leaf, NID_subject_alt_name, NULL, NULL);
	n = gens ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; i < n && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[INET6_ADDRSTRLEN];
		const unsigned char *d;
		int len;

		if (g->type == GEN_DNS) {
			has_dns = 1;
			d = ASN1_STRING_get0_data(g->d.dNSName);
			rc = name_add(ci, d, (size_t)ASN1_STRING_length(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			if ((len == 4 && inet_ntop(AF_INET, d, ip, sizeof(ip))) ||
			    (len == 16 && inet_ntop(AF_INET6, d, ip, sizeof(ip))))
				rc = name_add(ci, (const unsigned char *)ip, strlen(ip));
		}
	}
	GENERAL_NAMES_free(gens);
	subj = X509_get_subject_name(ci->leaf);
	for (i = -1; rc == 0 && !has_dns && subj &&
	    (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0; ) {
		unsigned char *u = NULL;
		X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);

		n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
		if (n > 0)
			rc = name_add(ci, u, (size_t)n);
		OPENSSL_free(u);
	}
	if (rc < 0)
		return -1;
	if (ci->nnames > 1)
		qsort(ci->names, ci->nnames, sizeof(*ci->names), name_cmp);
	for (j = k = 0; j < ci->nnames; j++) {
		if (k > 0 && strcmp(ci->names[k - 1], ci->names[j]) == 0)
			free(ci->names[j]);
		else
			ci->names[k++] = ci->names[j];
	}
	ci->nnames = k;
	return 0;
}

static int
names_equal(const struct certinfo *a, const struct certinfo *b)
{
	size_t i;

	if (a->nnames != b->nnames)
		return 0;
	for (i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

/* "a, b, c" into buf (cut with "..." when long), for messages. */
static const char *
names_text(const struct certinfo *ci, char *buf, size_t len)
{
	size_t i, off = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < ci->nnames && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", ci->names[i]);
		if (w < 0 || (size_t)w >= len - off) {
			if (len > 4)
				memcpy(buf + len - 4, "...", 4);
			break;
		}
		off += (size_t)w;
	}
	return ci->nnames ? buf : "no name";
}

/* A name both serve (the first in sort order), or NULL. */
static const char *
name_shared(const struct certinfo *a, const struct certinfo *b)
{
	size_t i = 0, j = 0;
	int d;

	while (i < a->nnames && j < b->nnames) {
		d = strcmp(a->names[i], b->names[j]);
		if (d == 0)
			return a->names[i];
		if (d < 0)
			i++;
		else
			j++;
	}
	return NULL;
}

/* Reads certificate i's leaf, names and key type. 0, or -1 with the error reported. */
static int
cert_info(struct conf_ctx *ctx, struct conf *c, size_t i, struct certinfo *ci)
{
	const struct conf_cert *ce = &c->tls.certs[i];
	char eb[256];
	char path[48];
	BIO *in;

	snprintf(path, sizeof(path), "tls.certificates.%zu.cert", i);
	in = BIO_new_file(ce->cert, "r");
	if (in)
		ci->leaf = PEM_read_bio_X509_AUX(in, NULL, NULL, NULL);
	BIO_free(in);
	if (ci->leaf == NULL) {
		ssl_err_text(eb, sizeof(eb));
		conf_err(ctx, ynode_path(c->tree, path), "cannot load certificate %s: %s", ce->cert, eb);
		return -1;
	}
	ci->ktype = EVP_PKEY_get_id(X509_get0_pubkey(ci->leaf));
	if (cert_names(ci) < 0) {
		conf_err(ctx, ynode_path(c->tree, path), "out of memory");
		return -1;
	}
	return 0;
}

/* Puts each certificate in a site (ci[i].site; the certificate's own site numbers follow
 * the order of first appearance, so site 0 is the first certificate's) and returns the
 * number of sites, or 0 after reporting two certificates of one key type for the same
 * names. Warns about certificates of different key types that share some names but not
 * all: they look like a pair but are served apart. */
static size_t
group_sites(struct conf_ctx *ctx, struct conf *c, struct certinfo *ci, size_t n)
{
	size_t i, j, nsites = 0;
	const char *shared;
	char path[48], names[128];
	int bad = 0;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "tls.certificates.%zu.cert", i);
		for (j = 0; j < i && !names_equal(&ci[i], &ci[j]); j++)
			;
		ci[i].site = j < i ? ci[j].site : nsites++;
		for (j = 0; j < i; j++) {
			if (ci[j].site == ci[i].site && ci[j].ktype == ci[i].ktype) {
				conf_err(ctx, ynode_path(c->tree, path), "tls.certificates.%zu: a second "
				    "%s certificate for the names of tls.certificates.%zu (%s): a site "
				    "holds one certificate per key type (one ECDSA and one RSA, say)",
				    i, ktype_name(ci[i].ktype), j, names_text(&ci[i], names, sizeof(names)));
				bad = 1;
				break;
			}
		}
		for (j = 0; j < i; j++) {
			if (ci[j].site == ci[i].site || ci[j].ktype == ci[i].ktype)
				continue;
			if ((shared = name_shared(&ci[i], &ci[j])) != NULL) {
				conf_warn(ctx, ynode_path(c->tree, path), "tls.certificates.%zu (%s) shares "
				    "the name %s with tls.certificates.%zu (%s) but not all names: they are "
				    "served apart, not as a pair picked by what the client accepts (give "
				    "both the same names)", i, ktype_name(ci[i].ktype), shared, j,
				    ktype_name(ci[j].ktype));
				break;
			}
		}
	}
	return bad ? 0 : nsites;
}

SSL_CTX *
tls_client_ctx_new(int verify, const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *s;

	s = SSL_CTX_new(TLS_client_method());
	if (s == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* clients of visor's own (upstream, JWKS) are few and mostly idle between uses */
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!verify) {
		SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
		return s;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(s, ca_file, NULL) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(s) != 1) {
		/* no system store: every verification fails, which the caller's logs show */
		ERR_clear_error();
	}
	return s;
fail:
	ssl_err_text(err, errlen);
	SSL_CTX_free(s);
	return NULL;
}

static SSL_CTX *
upstream_ctx(struct conf_ctx *ctx, struct conf *c)
{
	SSL_CTX *s;
	char eb[256];

	s = tls_client_ctx_new(c->upstream.tls_verify, c->upstream.tls_ca, eb, sizeof(eb));
	if (s == NULL && c->upstream.tls_ca)
		conf_err(ctx, ynode_path(c->tree, "upstream.tls.ca"), "cannot load CA %s: %s",
		    c->upstream.tls_ca, eb);
	else if (s == NULL)
		conf_err(ctx, NULL, "upstream TLS context: %s", eb);
	return s;
}

/* A Redis client context as redis.tls says (verification unless insecure_skip_verify, the
 * client certificate when one is given), or NULL with the reason in eb and, in *key, the
 * redis.tls key that names the file at fault (NULL when none does). */
SSL_CTX *
tls_redis_ctx_new(const struct conf *c, char *eb, size_t len, const char **key)
{
	SSL_CTX *x;

	*key = c->redis.tls_ca ? "redis.tls.ca_file" : NULL;
	x = tls_client_ctx_new(!c->redis.tls_insecure, c->redis.tls_ca, eb, len);
	if (x == NULL || c->redis.tls_cert == NULL)
		return x;
	*key = "redis.tls.cert_file";
	if (SSL_CTX_use_certificate_chain_file(x, c->redis.tls_cert) != 1)
		goto fail;
	*key = "redis.tls.key_file";
	if (SSL_CTX_use_PrivateKey_file(x, c->redis.tls_key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(x) != 1) {
		ERR_clear_error();
		snprintf(eb, len, "%s does not match the certificate %s", c->redis.tls_key,
		    c->redis.tls_cert);
		SSL_CTX_free(x);
		return NULL;
	}
	return x;
fail:
	ssl_err_text(eb, len);
	SSL_CTX_free(x);
	return NULL;
}

/* The Redis client context (rediss://) of a generation: built once at load so that `visor -t`
 * reports a bad file at the key that names it; each worker builds its own from the same
 * settings (tls_redis_ctx_new), so no SSL_CTX is shared between the workers' Redis
 * handshakes. */
static int
redis_ctx(struct conf_ctx *ctx, struct conf *c, struct tls_rt *t)
{
	const struct ynode *tree = c->tree;
	const char *key;
	char eb[256];

	if (!c->redis.tls) {
		if (c->redis.tls_section)
			conf_err(ctx, ynode_path(tree, "redis.tls"), "redis.tls is set but redis.url "
			    "is redis:// (plain TCP): use rediss:// to connect with TLS");
		return c->redis.tls_section ? -1 : 0;
	}
	if (!c->redis.tls_cert != !c->redis.tls_key) {
		conf_err(ctx, ynode_path(tree, c->redis.tls_cert ? "redis.tls.cert_file" :
		    "redis.tls.key_file"), "redis.tls: cert_file and key_file go together");
		return -1;
	}
	t->redis = tls_redis_ctx_new(c, eb, sizeof(eb), &key);
	if (t->redis != NULL)
		return 0;
	if (key == NULL)
		conf_err(ctx, NULL, "redis TLS context: %s", eb);
	else if (strcmp(key, "redis.tls.ca_file") == 0)
		conf_err(ctx, ynode_path(tree, key), "cannot load CA %s: %s", c->redis.tls_ca, eb);
	else if (strcmp(key, "redis.tls.key_file") == 0 && strstr(eb, "does not match") != NULL)
		conf_err(ctx, ynode_path(tree, key), "%s", eb);
	else
		conf_err(ctx, ynode_path(tree, key), "cannot load %s: %s",
		    strcmp(key, "redis.tls.cert_file") == 0 ? c->redis.tls_cert :
		    c->redis.tls_key, eb);
	return -1;
}

SSL_CTX *
tls_redis_ctx(const struct tls_rt *t)
{
	return t ? t->redis : NULL;
}

int
tls_build(struct conf_ctx *ctx, struct conf *c)
{
	struct certinfo *ci = NULL;
	struct tls_rt *t;
	size_t i, j, n = c->tls.n_certs, nsites;
	int rc = -1, rrc = 0;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	c->tls_rt = t;
	if (c->redis.enabled && redis_ctx(ctx, c, t) < 0)
		rrc = -1;
	ci = calloc(n ? n : 1, sizeof(*ci));
	if (ci == NULL)
		goto done;
	for (i = 0, rc = 0; i < n; i++)
		if (cert_info(ctx, c, i, &ci[i]) < 0)
			rc = -1;
	if (rc < 0 || (nsites = group_sites(ctx, c, ci, n)) == 0) {
		rc = -1;
		goto done;
	}
	t->ctx = calloc(nsites, sizeof(*t->ctx));
	if (t->ctx == NULL) {
		rc = -1;
		goto done;
	}
	/* A failed site stays NULL: the build fails, and tls_rt_free frees the others. */
	t->n = nsites;
	for (j = 0; j < nsites; j++) {
		t->ctx[j] = server_ctx(ctx, c);
		if (t->ctx[j] == NULL) {
			rc = -1;
			continue;
		}
		for (i = 0; i < n; i++) {
			if (ci[i].site == j && load_pair(ctx, c, t->ctx[j], i, ci[i].leaf) < 0) {
				SSL_CTX_free(t->ctx[j]);
				t->ctx[j] = NULL;
				rc = -1;
				break;
			}
		}
		if (t->ctx[j]) {
			SSL_CTX_set_tlsext_servername_callback(t->ctx[j], on_sni);
			SSL_CTX_set_tlsext_servername_arg(t->ctx[j], t);
		}
	}
	if (c->upstream.tls_enabled) {
		t->up = upstream_ctx(ctx, c);
		if (t->up == NULL)
			rc = -1;
		else if (c->upstream.tls_server_name)
			t->up_name = strdup(c->upstream.tls_server_name);
	}
done:
	for (i = 0; ci && i < n; i++) {
		X509_free(ci[i].leaf);
		for (j = 0; j < ci[i].nnames; j++)
			free(ci[i].names[j]);
		free(ci[i].names);
	}
	free(ci);
	return rrc < 0 ? -1 : rc;
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
	SSL_CTX_free(t->redis);
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
