/* SPDX-License-Identifier: MIT
 * Unit tests for jwt_core: base64url, JSON strictness, key loading policy, every algorithm
 * round trip with keys generated at test time (no private key is ever committed), an
 * attack corpus, the claims checks, RFC 7515 / 7520 / 8037 examples and every case of the
 * Wycheproof files in tests/unit/data/wycheproof/. Includes the .c to reach its statics.
 */
#include "../../src/lib/jwt_core.c"
#include "t.h"

#include <pthread.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>

#define WP_DIR "tests/unit/data/wycheproof/"
#define ALL_ALGS ((1u << JWT_ALG_COUNT) - 1)

/* ---- helpers ---------------------------------------------------------------------------- */

static char *
b64u(const unsigned char *in, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *o = malloc(n / 3 * 4 + 5), *p = o;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = tab[v >> 18];
		*p++ = tab[(v >> 12) & 63];
		*p++ = tab[(v >> 6) & 63];
		*p++ = tab[v & 63];
	}
	if (n - i == 1) {
		*p++ = tab[in[i] >> 2];
		*p++ = tab[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		*p++ = tab[v >> 10];
		*p++ = tab[(v >> 4) & 63];
		*p++ = tab[(v & 15) << 2];
	}
	*p = 0;
	return o;
}

static char *
b64us(const char *s)
{
	return b64u((const unsigned char *)s, strlen(s));
}

static unsigned char *
unhex(const char *h, size_t *n)
{
	size_t l = strlen(h), i;
	unsigned char *o = malloc(l / 2 + 1);

	for (i = 0; i + 1 < l; i += 2) {
		unsigned v;
		sscanf(h + i, "%2x", &v);
		o[i / 2] = (unsigned char)v;
	}
	*n = l / 2;
	return o;
}

static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *o = malloc(la + lb + lc + 3);

	memcpy(o, a, la);
	o[la] = '.';
	memcpy(o + la + 1, b, lb);
	o[la + 1 + lb] = '.';
	memcpy(o + la + lb + 2, c, lc + 1);
	return o;
}

/* Raw signature over msg, as a JWS would carry it. */
static unsigned char *
sign_raw(enum jwt_alg alg, EVP_PKEY *priv, const unsigned char *sec, size_t seclen,
    const unsigned char *msg, size_t msglen, size_t *siglen)
{
	unsigned char *sig = NULL, *der = NULL;
	size_t dl = 0;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;

	if (alg <= JWT_HS512) {
		sig = malloc(EVP_MAX_MD_SIZE);
		if (!EVP_Q_mac(NULL, "HMAC", NULL, alg_tab[alg].md, NULL, sec, seclen, msg, msglen,
		    sig, EVP_MAX_MD_SIZE, siglen)) {
			free(sig);
			return NULL;
		}
		return sig;
	}
	ctx = EVP_MD_CTX_new();
	if (EVP_DigestSignInit_ex(ctx, &pctx, alg_tab[alg].md, NULL, NULL, priv, NULL) != 1)
		goto fail;
	if (alg >= JWT_PS256 && alg <= JWT_PS512 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
		goto fail;
	if (EVP_DigestSign(ctx, NULL, &dl, msg, msglen) != 1)
		goto fail;
	der = malloc(dl);
	if (EVP_DigestSign(ctx, der, &dl, msg, msglen) != 1)
		goto fail;
	if (alg == JWT_ES256 || alg == JWT_ES384) {
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
		const BIGNUM *r, *s;
		size_t L = alg_tab[alg].len;

		ECDSA_SIG_get0(es, &r, &s);
		sig = malloc(2 * L);
		BN_bn2binpad(r, sig, (int)L);
		BN_bn2binpad(s, sig + L, (int)L);
		ECDSA_SIG_free(es);
		*siglen = 2 * L;
		free(der);
		der = NULL;
	} else {
		sig = der;
		der = NULL;
		*siglen = dl;
	}
fail:
	free(der);
	EVP_MD_CTX_free(ctx);
	return sig;
}

/* "<b64 hdr>.<b64 payload>.<b64 sig>" for a header and payload given as text. */
static char *
mk_token(const char *hdr, const char *payload, enum jwt_alg alg, EVP_PKEY *priv,
    const unsigned char *sec, size_t seclen)
{
	char *h = b64us(hdr), *p = b64us(payload), *si, *s, *tok;
	unsigned char *sig;
	size_t sl = 0;

	si = malloc(strlen(h) + strlen(p) + 2);
	memcpy(si, h, strlen(h));
	si[strlen(h)] = '.';
	memcpy(si + strlen(h) + 1, p, strlen(p) + 1);
	sig = sign_raw(alg, priv, sec, seclen, (unsigned char *)si, strlen(si), &sl);
	s = sig ? b64u(sig, sl) : strdup("");
	tok = cat3(h, p, s);
	free(h);
	free(p);
	free(si);
	free(s);
	free(sig);
	return tok;
}

static char *
pem_pub(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *o;
	long n;

	PEM_write_bio_PUBKEY(b, pk);
	n = BIO_get_mem_data(b, &data);
	o = malloc((size_t)n + 1);
	memcpy(o, data, (size_t)n);
	o[n] = 0;
	BIO_free(b);
	return o;
}

static char *
pem_encode(EVP_PKEY *pk, int selection, const char *structure)
{
	OSSL_ENCODER_CTX *e = OSSL_ENCODER_CTX_new_for_pkey(pk, selection, "PEM", structure, NULL);
	unsigned char *d = NULL;
	size_t n = 0;
	char *o;

	if (e == NULL || !OSSL_ENCODER_to_data(e, &d, &n)) {
		OSSL_ENCODER_CTX_free(e);
		return NULL;
	}
	OSSL_ENCODER_CTX_free(e);
	o = malloc(n + 1);
	memcpy(o, d, n);
	o[n] = 0;
	OPENSSL_free(d);
	return o;
}

static int
load_pem(const char *pem, const char *kid, struct jwt_key *k, const char **err)
{
	return jwt_key_from_pem(pem, strlen(pem), kid, k, err);
}

static int
load_jwk_str(const char *js, struct jwt_key *k, const char **err)
{
	json_error_t je;
	json_t *j = json_loads(js, 0, &je);
	int r;

	if (j == NULL) {
		*err = "test: bad JSON";
		return -1;
	}
	r = jwt_key_from_jwk(j, k, err);
	json_decref(j);
	return r;
}

/* A keyset holding copies of the given keys (EVP_PKEY up-ref'd). */
static struct jwt_keyset *
set_of(const struct jwt_key *const *keys, size_t n)
{
	struct jwt_keyset *s = jwt_keyset_new();
	size_t i;

	for (i = 0; i < n; i++) {
		struct jwt_key k = *keys[i];

		if (k.pkey)
			EVP_PKEY_up_ref(k.pkey);
		if (k.secret) {
			k.secret = malloc(k.secret_len);
			memcpy(k.secret, keys[i]->secret, k.secret_len);
		}
		k.kid = keys[i]->kid ? strdup(keys[i]->kid) : NULL;
		jwt_keyset_add(s, &k);
	}
	return s;
}

static enum jwt_err
check_tok(const char *tok, uint32_t allowed, const struct jwt_keyset *s)
{
	struct jwt_token t;
	enum jwt_err rc = jwt_parse(tok, strlen(tok), allowed, &t);

	if (rc == JWT_OK)
		rc = jwt_verify_sig(&t, &s, 1);
	jwt_token_fini(&t);
	return rc;
}

/* Test keys, generated once. */
static EVP_PKEY *k_rsa, *k_rsa2, *k_p256, *k_p384, *k_ed, *k_p256b;
static struct jwt_key pub_rsa, pub_p256, pub_p384, pub_ed, hmac64;
static unsigned char secret64[64];

static void
t_setup(void)
{
	const char *err = NULL;
	char *pem;

	k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	k_rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	k_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k_p256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	T_OK(k_rsa && k_rsa2 && k_p256 && k_p256b && k_p384 && k_ed);
	for (size_t i = 0; i < sizeof(secret64); i++)
		secret64[i] = (unsigned char)(i * 7 + 3);
	pem = pem_pub(k_rsa);
	T_EQ_INT(load_pem(pem, "rsa1", &pub_rsa, &err), 0);
	free(pem);
	pem = pem_pub(k_p256);
	T_EQ_INT(load_pem(pem, "ec1", &pub_p256, &err), 0);
	free(pem);
	pem = pem_pub(k_p384);
	T_EQ_INT(load_pem(pem, NULL, &pub_p384, &err), 0);
	free(pem);
	pem = pem_pub(k_ed);
	T_EQ_INT(load_pem(pem, "ed1", &pub_ed, &err), 0);
	free(pem);
	T_EQ_INT(jwt_key_from_secret(secret64, sizeof(secret64), "hs1", &hmac64, &err), 0);
	T_EQ_INT(pub_rsa.type, JWT_KEY_RSA);
	T_EQ_INT(pub_p256.type, JWT_KEY_EC_P256);
	T_EQ_INT(pub_p384.type, JWT_KEY_EC_P384);
	T_EQ_INT(pub_ed.type, JWT_KEY_ED25519);
end:;
}

static void
t_teardown(void)
{
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_rsa2);
	EVP_PKEY_free(k_p256);
	EVP_PKEY_free(k_p256b);
	EVP_PKEY_free(k_p384);
	EVP_PKEY_free(k_ed);
	jwt_key_fini(&pub_rsa);
	jwt_key_fini(&pub_p256);
	jwt_key_fini(&pub_p384);
	jwt_key_fini(&pub_ed);
	jwt_key_fini(&hmac64);
	T_OK(ERR_peek_error() == 0);
end:;
}

/* ---- base64url, names, JSON ------------------------------------------------------------- */

static void
t_b64url(void)
{
	static const struct { const char *in; long n; const char *out; } v[] = {
		{ "", 0, "" }, { "Zg", 1, "f" }, { "Zm8", 2, "fo" }, { "Zm9v", 3, "foo" },
		{ "Zm9vYg", 4, "foob" }, { "-_8", 2, "\xfb\xff" },
		{ "Zh", -1, NULL },      /* non-zero unused bits */
		{ "Zm9=", -1, NULL }, { "Zm9v=", -1, NULL }, { "Z", -1, NULL }, { "Zm9vY", -1, NULL },
		{ "Zm 9v", -1, NULL }, { "Zm9v\n", -1, NULL }, { "+/8", -1, NULL },
		{ "Zm9v\x80", -1, NULL }, { "AB", -1, NULL }, { "AA", 1, "\0" },
	};
	unsigned char out[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		long n = jwt_b64url_decode(v[i].in, strlen(v[i].in), out);

		T_CHECK(n == v[i].n, "b64url %zu: \"%s\" gave %ld", i, v[i].in, n);
		if (n > 0 && v[i].out)
			T_CHECK(memcmp(out, v[i].out, (size_t)n) == 0, "b64url %zu bytes", i);
	}
	/* an embedded NUL is simply a bad character */
	T_EQ_INT(jwt_b64url_decode("Zm\0v", 4, out), -1);
end:;
}

static void
t_names(void)
{
	for (int a = 0; a < JWT_ALG_COUNT; a++)
		T_EQ_INT(jwt_alg_parse(jwt_alg_name((enum jwt_alg)a)), a);
	T_EQ_INT(jwt_alg_parse("none"), -1);
	T_EQ_INT(jwt_alg_parse("NONE"), -1);
	T_EQ_INT(jwt_alg_parse("hs256"), -1);
	T_EQ_INT(jwt_alg_parse("HS256 "), -1);
	T_EQ_INT(jwt_alg_parse("ES512"), -1);
	T_EQ_INT(jwt_alg_parse(NULL), -1);
	T_EQ_STR(jwt_alg_name(JWT_EDDSA), "EdDSA");
	T_EQ_STR(jwt_alg_name((enum jwt_alg)99), "unknown");
	T_EQ_STR(jwt_err_name(JWT_E_BAD_SIGNATURE), "bad_signature");
	T_EQ_STR(jwt_err_name(JWT_E_UNKNOWN_KID), "unknown_kid");
	T_EQ_STR(jwt_err_name(JWT_E_ALG_NOT_ALLOWED), "alg_not_allowed");
	T_EQ_STR(jwt_err_name(JWT_E_REVOKED), "revoked");
	T_EQ_STR(jwt_err_name(JWT_E_COUNT), "unknown");
	for (int e = 0; e < JWT_E_COUNT; e++)
		T_CHECK(err_names[e] != NULL, "err name %d", e);
	T_EQ_INT(jwt_keytype_algs(JWT_KEY_RSA), ALGS_RSA);
	T_EQ_INT(jwt_keytype_algs(JWT_KEY_HMAC), ALGS_HS);
	T_EQ_INT(jwt_keytype_algs(JWT_KEY_EC_P256), JWT_ALG_BIT(JWT_ES256));
	T_EQ_INT(jwt_keytype_algs(JWT_KEY_EC_P384), JWT_ALG_BIT(JWT_ES384));
	T_EQ_INT(jwt_keytype_algs(JWT_KEY_ED25519), JWT_ALG_BIT(JWT_EDDSA));
end:;
}

/* jansson's JSON_REJECT_DUPLICATES must hold at every depth, and after unescaping. */
static void
t_json_strict(void)
{
	static const struct { const char *js; enum jwt_err want; } v[] = {
		{ "{\"a\":1}", JWT_OK },
		{ "{\"a\":1,\"a\":1}", JWT_E_DUPLICATE_KEY },
		{ "{\"x\":{\"b\":1,\"b\":2}}", JWT_E_DUPLICATE_KEY },
		{ "{\"x\":[1,{\"c\":{\"d\":{\"e\":1,\"e\":1}}}]}", JWT_E_DUPLICATE_KEY },
		{ "{\"a\":1,\"\\u0061\":2}", JWT_E_DUPLICATE_KEY },
		{ "{\"a\":1}x", JWT_E_MALFORMED },
		{ "{\"a\":1} ", JWT_OK },
		{ "[1]", JWT_E_MALFORMED },
		{ "\"s\"", JWT_E_MALFORMED },
		{ "{\"a\":\"\\u0000\"}", JWT_E_MALFORMED },
		{ "{\"\\u0000\":1}", JWT_E_MALFORMED },
		{ "{\"a\":\"\xff\"}", JWT_E_MALFORMED },
		{ "{\"a\":1e999}", JWT_E_MALFORMED },
		{ "{\"a\":99999999999999999999}", JWT_E_MALFORMED },
		{ "", JWT_E_MALFORMED },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		json_t *j = NULL;
		enum jwt_err rc = json_part((const unsigned char *)v[i].js, strlen(v[i].js), &j);

		T_CHECK(rc == v[i].want, "json %zu (%s): %s", i, v[i].js, jwt_err_name(rc));
		json_decref(j);
	}
	{
		/* deep nesting stops at jansson's depth limit rather than the stack */
		char deep[4200];
		json_t *j = NULL;

		deep[0] = '{';
		memcpy(deep + 1, "\"a\":", 4);
		memset(deep + 5, '[', 4100);
		T_EQ_INT(json_part((unsigned char *)deep, 4105, &j), JWT_E_MALFORMED);
	}
end:;
}

/* ---- round trips ------------------------------------------------------------------------ */

static void
t_roundtrip_all_algs(void)
{
	const struct jwt_key *keys[] = { &pub_rsa, &pub_p256, &pub_p384, &pub_ed, &hmac64 };
	struct jwt_keyset *s = set_of(keys, 5);
	static const char *payload = "{\"sub\":\"u1\",\"exp\":4102444800}";

	for (int a = 0; a < JWT_ALG_COUNT; a++) {
		EVP_PKEY *pk = a <= JWT_HS512 ? NULL : a <= JWT_PS512 ? k_rsa : a == JWT_ES256 ?
		    k_p256 : a == JWT_ES384 ? k_p384 : k_ed;
		char hdr[64], *tok;

		/* with the right kid, without a kid, and with a wrong kid */
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", jwt_alg_name((enum jwt_alg)a));
		tok = mk_token(hdr, payload, (enum jwt_alg)a, pk, secret64, 64);
		T_CHECK(check_tok(tok, ALL_ALGS, s) == JWT_OK, "%s no kid", jwt_alg_name((enum jwt_alg)a));
		T_CHECK(check_tok(tok, ALL_ALGS & ~JWT_ALG_BIT(a), s) == JWT_E_ALG_NOT_ALLOWED,
		    "%s not allowed", jwt_alg_name((enum jwt_alg)a));
		free(tok);
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\"}",
		    jwt_alg_name((enum jwt_alg)a), a <= JWT_HS512 ? "hs1" : a <= JWT_PS512 ? "rsa1" :
		    a == JWT_ES256 ? "ec1" : a == JWT_EDDSA ? "ed1" : "nokid");
		tok = mk_token(hdr, payload, (enum jwt_alg)a, pk, secret64, 64);
		T_CHECK(check_tok(tok, ALL_ALGS, s) == (a == JWT_ES384 ? JWT_E_UNKNOWN_KID : JWT_OK),
		    "%s kid", jwt_alg_name((enum jwt_alg)a));
		free(tok);
	}
	jwt_keyset_unref(s);
	T_OK(ERR_peek_error() == 0);
end:;
}

/* A PS token never verifies as RS and the reverse: same key, other padding. */
static void
t_rs_ps_cross(void)
{
	const struct jwt_key *keys[] = { &pub_rsa };
	struct jwt_keyset *s = set_of(keys, 1);
	char *a = mk_token("{\"alg\":\"RS256\"}", "{}", JWT_RS256, k_rsa, NULL, 0);
	char *b = mk_token("{\"alg\":\"PS256\"}", "{}", JWT_PS256, k_rsa, NULL, 0);
	char *h1 = b64us("{\"alg\":\"PS256\"}"), *h2 = b64us("{\"alg\":\"RS256\"}");
	char *x = cat3(h1, "e30", strrchr(a, '.') + 1), *y = cat3(h2, "e30", strrchr(b, '.') + 1);

	T_EQ_INT(check_tok(a, ALL_ALGS, s), JWT_OK);
	T_EQ_INT(check_tok(b, ALL_ALGS, s), JWT_OK);
	T_EQ_INT(check_tok(x, ALL_ALGS, s), JWT_E_BAD_SIGNATURE);
	T_EQ_INT(check_tok(y, ALL_ALGS, s), JWT_E_BAD_SIGNATURE);
end:
	free(a); free(b); free(h1); free(h2); free(x); free(y);
	jwt_keyset_unref(s);
}

/* ---- key loading policy ----------------------------------------------------------------- */

static void
t_pem_policy(void)
{
	struct jwt_key k;
	const char *err = NULL;
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY *expl = NULL;
	char *pem = NULL, *priv = NULL, *both = NULL, *pkcs1 = NULL, *cert = NULL;
	X509 *x = NULL;
	BIO *b = NULL;

	T_OK(small && p521 && k1 && ed448 && x25519);
	pem = pem_pub(small);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);
	T_EQ_STR(err, "RSA key shorter than 2048 bits");
	free(pem);
	pem = pem_pub(p521);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);
	free(pem);
	pem = pem_pub(k1);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);
	free(pem);
	pem = pem_pub(ed448);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);
	free(pem);
	pem = pem_pub(x25519);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);
	free(pem);
	pem = NULL;

	/* private keys: refused alone and next to a public key */
	priv = pem_encode(k_rsa, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
	T_OK(priv != NULL);
	T_EQ_INT(load_pem(priv, NULL, &k, &err), -1);
	T_OK(strstr(err, "private") != NULL);
	pem = pem_pub(k_rsa);
	both = malloc(strlen(pem) + strlen(priv) + 1);
	snprintf(both, strlen(pem) + strlen(priv) + 1, "%s%s", pem, priv);
	T_EQ_INT(load_pem(both, NULL, &k, &err), -1);
	free(priv);
	priv = pem_encode(k_p256, EVP_PKEY_KEYPAIR, "type-specific");  /* EC PRIVATE KEY */
	T_OK(priv && strstr(priv, "EC PRIVATE KEY"));
	T_EQ_INT(load_pem(priv, NULL, &k, &err), -1);

	/* PKCS#1 "RSA PUBLIC KEY" */
	pkcs1 = pem_encode(k_rsa, EVP_PKEY_PUBLIC_KEY, "type-specific");
	T_OK(pkcs1 && strstr(pkcs1, "BEGIN RSA PUBLIC KEY"));
	T_EQ_INT(load_pem(pkcs1, "p1", &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_RSA);
	T_EQ_STR(k.kid, "p1");
	T_EQ_INT(k.algs, ALGS_RSA);
	jwt_key_fini(&k);

	/* a self-signed certificate carries the key */
	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k_p256);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"visor-test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	T_OK(X509_sign(x, k_p256, EVP_sha256()) > 0);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	{
		char *d;
		long n = BIO_get_mem_data(b, &d);
		cert = malloc((size_t)n + 1);
		memcpy(cert, d, (size_t)n);
		cert[n] = 0;
	}
	T_EQ_INT(load_pem(cert, NULL, &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_EC_P256);
	T_EQ_INT(EVP_PKEY_eq(k.pkey, k_p256), 1);
	jwt_key_fini(&k);

	/* explicit curve parameters (CVE-2020-0601 shape) */
	expl = EVP_PKEY_dup(k_p256);
	T_OK(EVP_PKEY_set_utf8_string_param(expl, OSSL_PKEY_PARAM_EC_ENCODING,
	    OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
	free(pem);
	pem = pem_pub(expl);
	T_EQ_INT(load_pem(pem, NULL, &k, &err), -1);

	/* garbage */
	T_EQ_INT(load_pem("hello", NULL, &k, &err), -1);
	T_EQ_INT(jwt_key_from_pem("", 0, NULL, &k, &err), -1);
	T_EQ_INT(load_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", NULL, &k, &err), -1);
	T_OK(k.pkey == NULL && k.kid == NULL);
	T_OK(ERR_peek_error() == 0);
end:
	free(pem); free(priv); free(both); free(pkcs1); free(cert);
	X509_free(x);
	BIO_free(b);
	EVP_PKEY_free(small); EVP_PKEY_free(p521); EVP_PKEY_free(k1); EVP_PKEY_free(ed448);
	EVP_PKEY_free(x25519); EVP_PKEY_free(expl);
}

static void
t_secret_policy(void)
{
	unsigned char s[80];
	struct jwt_key k;
	const char *err = NULL;
	char *pem = pem_pub(k_rsa);

	memset(s, 'x', sizeof(s));
	T_EQ_INT(jwt_key_from_secret(s, 0, NULL, &k, &err), -1);
	T_EQ_INT(jwt_key_from_secret(NULL, 5, NULL, &k, &err), -1);
	/* under 32 bytes: accepted, HS256 only (the security lint warns about it) */
	T_EQ_INT(jwt_key_from_secret(s, 31, NULL, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS256));
	jwt_key_fini(&k);
	T_EQ_INT(jwt_key_from_secret(s, 1, NULL, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS256));
	jwt_key_fini(&k);
	T_EQ_INT(jwt_key_from_secret(s, 32, NULL, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS256));
	T_EQ_INT(k.type, JWT_KEY_HMAC);
	T_OK(k.kid == NULL);
	jwt_key_fini(&k);
	T_EQ_INT(jwt_key_from_secret(s, 48, "a", &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS256) | JWT_ALG_BIT(JWT_HS384));
	jwt_key_fini(&k);
	T_EQ_INT(jwt_key_from_secret(s, 64, "a", &k, &err), 0);
	T_EQ_INT(k.algs, ALGS_HS);
	jwt_key_fini(&k);
	/* a public key file configured as a secret */
	T_EQ_INT(jwt_key_from_secret((unsigned char *)pem, strlen(pem), NULL, &k, &err), -1);
	T_OK(strstr(err, "PEM") != NULL);
end:
	free(pem);
}

static char *
bn_b64u(EVP_PKEY *pk, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *o;

	EVP_PKEY_get_bn_param(pk, param, &bn);
	n = BN_bn2bin(bn, buf);
	o = b64u(buf, (size_t)n);
	BN_free(bn);
	return o;
}

static char *
ec_jwk(EVP_PKEY *pk, const char *crv, size_t L, const char *extra, int flip_y)
{
	unsigned char pub[1 + 2 * 48];
	size_t pl = 0;
	char *x, *y, *o = malloc(1024);

	EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &pl);
	if (flip_y)
		pub[pl - 1] ^= 1;
	x = b64u(pub + 1, L);
	y = b64u(pub + 1 + L, L);
	snprintf(o, 1024, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", crv, x, y, extra);
	free(x);
	free(y);
	return o;
}

static void
t_jwk_policy(void)
{
	struct jwt_key k;
	const char *err = NULL;
	char *n = bn_b64u(k_rsa, OSSL_PKEY_PARAM_RSA_N), *js = malloc(4096), *ej = NULL;
	unsigned char edpub[32];
	size_t el = 0;
	char *ex = NULL;

	memset(&k, 0, sizeof(k));
	snprintf(js, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"kid\":\"r\",\"use\":\"sig\"}", n);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_RSA);
	T_EQ_STR(k.kid, "r");
	T_EQ_INT(k.algs, ALGS_RSA);
	T_EQ_INT(EVP_PKEY_eq(k.pkey, k_rsa), 1);
	jwt_key_fini(&k);
	snprintf(js, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"alg\":\"PS384\"}", n);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_PS384));
	jwt_key_fini(&k);
	snprintf(js, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"key_ops\":[\"verify\"]}", n);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	jwt_key_fini(&k);
	/* refusals */
	static const struct { const char *kty, *rest; } bad_rsa[] = {
		{ "RSA", ",\"e\":\"AQAB\",\"d\":\"AQAB\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"use\":\"enc\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"use\":1" },
		{ "RSA", ",\"e\":\"AQAB\",\"key_ops\":[\"sign\"]" },
		{ "RSA", ",\"e\":\"AQAB\",\"key_ops\":\"verify\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"alg\":\"ES256\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"alg\":\"none\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"alg\":\"RSA-OAEP\"" },
		{ "RSA", ",\"e\":\"AQAB\",\"kid\":5" },
		{ "RSA", ",\"e\":\"AQ\"" },
		{ "RSA", ",\"e\":\"Ag\"" },
		{ "RSA", ",\"e\":\"AQAB=\"" },
		{ "RSA", "" },
		{ "rsa", ",\"e\":\"AQAB\"" },
		{ "RSA-PSS", ",\"e\":\"AQAB\"" },
	};
	for (size_t i = 0; i < sizeof(bad_rsa) / sizeof(bad_rsa[0]); i++) {
		snprintf(js, 4096, "{\"kty\":\"%s\",\"n\":\"%s\"%s}", bad_rsa[i].kty, n, bad_rsa[i].rest);
		T_CHECK(load_jwk_str(js, &k, &err) == -1 && k.pkey == NULL, "bad rsa jwk %zu", i);
	}
	snprintf(js, 4096, "{\"n\":\"%s\",\"e\":\"AQAB\"}", n);
	T_EQ_INT(load_jwk_str(js, &k, &err), -1);
	T_EQ_INT(load_jwk_str("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", &k, &err), -1);
	T_EQ_INT(load_jwk_str("[]", &k, &err), -1);

	/* EC */
	ej = ec_jwk(k_p256, "P-256", 32, ",\"kid\":\"e\"", 0);
	T_EQ_INT(load_jwk_str(ej, &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_EC_P256);
	T_EQ_INT(EVP_PKEY_eq(k.pkey, k_p256), 1);
	jwt_key_fini(&k);
	free(ej);
	ej = ec_jwk(k_p384, "P-384", 48, ",\"alg\":\"ES384\"", 0);
	T_EQ_INT(load_jwk_str(ej, &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_EC_P384);
	jwt_key_fini(&k);
	free(ej);
	ej = ec_jwk(k_p256, "P-256", 32, "", 1);       /* off the curve */
	T_EQ_INT(load_jwk_str(ej, &k, &err), -1);
	free(ej);
	ej = ec_jwk(k_p256, "P-384", 32, "", 0);       /* wrong curve for the coordinates */
	T_EQ_INT(load_jwk_str(ej, &k, &err), -1);
	free(ej);
	ej = ec_jwk(k_p256, "P-256", 32, ",\"alg\":\"ES384\"", 0);
	T_EQ_INT(load_jwk_str(ej, &k, &err), -1);
	free(ej);
	ej = ec_jwk(k_p256, "P-256", 32, ",\"d\":\"AAAA\"", 0);
	T_EQ_INT(load_jwk_str(ej, &k, &err), -1);
	free(ej);
	ej = ec_jwk(k_p256, "secp256k1", 32, "", 0);
	T_EQ_INT(load_jwk_str(ej, &k, &err), -1);
	free(ej);
	ej = NULL;

	/* OKP */
	EVP_PKEY_get_raw_public_key(k_ed, edpub, &(size_t){ 32 });
	ex = b64u(edpub, 32);
	snprintf(js, 4096, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	T_EQ_INT(k.type, JWT_KEY_ED25519);
	T_EQ_INT(EVP_PKEY_eq(k.pkey, k_ed), 1);
	jwt_key_fini(&k);
	snprintf(js, 4096, "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"}", ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), -1);
	snprintf(js, 4096, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"d\":\"%s\"}", ex, ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), -1);
	T_EQ_INT(load_jwk_str("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}", &k, &err), -1);

	/* oct */
	free(ex);
	ex = b64u(secret64, 64);
	snprintf(js, 4096, "{\"kty\":\"oct\",\"k\":\"%s\",\"alg\":\"HS512\"}", ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS512));
	T_EQ_INT(k.secret_len, 64);
	jwt_key_fini(&k);
	free(ex);
	ex = b64u(secret64, 32);
	snprintf(js, 4096, "{\"kty\":\"oct\",\"k\":\"%s\",\"alg\":\"HS384\"}", ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), -1);
	snprintf(js, 4096, "{\"kty\":\"oct\",\"k\":\"%s\"}", ex);
	T_EQ_INT(load_jwk_str(js, &k, &err), 0);
	T_EQ_INT(k.algs, JWT_ALG_BIT(JWT_HS256));
	jwt_key_fini(&k);
	T_EQ_INT(load_jwk_str("{\"kty\":\"oct\",\"k\":\"\"}", &k, &err), -1);
	T_EQ_INT(load_jwk_str("{\"kty\":\"oct\"}", &k, &err), -1);
	el = 0;
	(void)el;
	T_OK(ERR_peek_error() == 0);
end:
	free(n); free(js); free(ej); free(ex);
}

static void
t_jwks(void)
{
	struct jwt_keyset *s = jwt_keyset_new();
	size_t skipped = 99;
	const char *err = NULL;
	char *ej = ec_jwk(k_p256, "P-256", 32, ",\"kid\":\"a\"", 0);
	char *ej2 = ec_jwk(k_p256b, "P-256", 32, ",\"kid\":\"b\"", 0);
	char *ej3 = ec_jwk(k_p256b, "P-256", 32, ",\"kid\":\"a\"", 0);
	char *ejenc = ec_jwk(k_p256b, "P-256", 32, ",\"kid\":\"a\",\"use\":\"enc\"", 0);
	char *oct = b64u(secret64, 64), *doc = malloc(8192), *big = NULL;

#define JWKS(...) (snprintf(doc, 8192, __VA_ARGS__), jwt_keyset_add_jwks(s, doc, strlen(doc), &skipped, &err))
	T_EQ_INT(JWKS("{\"keys\":[%s,%s,{\"kty\":\"foo\"},{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", ej, ej2), 0);
	T_EQ_INT(skipped, 2);
	T_EQ_INT(s->n, 2);
	/* duplicate kid within one kty: refused whole, set unchanged, even when one of the
	 * two would be skipped (use: enc, or unparsable) */
	T_EQ_INT(JWKS("{\"keys\":[%s,%s]}", ej, ej3), -1);
	T_EQ_INT(s->n, 2);
	T_EQ_INT(JWKS("{\"keys\":[%s,%s]}", ej, ejenc), -1);
	T_EQ_INT(JWKS("{\"keys\":[%s,{\"kty\":\"EC\",\"kid\":\"a\"}]}", ej), -1);
	T_EQ_INT(s->n, 2);
	/* the same kid across key types is allowed (RFC 7517 4.5) */
	T_EQ_INT(JWKS("{\"keys\":[%s,{\"kty\":\"OKP\",\"kid\":\"a\"}]}", ej), 0);
	T_EQ_INT(skipped, 1);
	T_EQ_INT(s->n, 3);
	/* mixed symmetric and asymmetric */
	T_EQ_INT(JWKS("{\"keys\":[%s,{\"kty\":\"oct\",\"k\":\"%s\"}]}", ej2, oct), -1);
	T_EQ_INT(s->n, 3);
	T_EQ_INT(JWKS("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\",\"kid\":\"o\"}]}", oct), 0);
	T_EQ_INT(s->n, 4);
	T_EQ_INT(JWKS("{\"keys\":[]}"), 0);
	T_EQ_INT(JWKS("{\"keys\":{}}"), -1);
	T_EQ_INT(JWKS("[]"), -1);
	T_EQ_INT(JWKS("{\"keys\":[],\"keys\":[]}"), -1);
	T_EQ_INT(JWKS("{\"keys\":[%s]", ej), -1);
	T_EQ_INT(jwt_keyset_add_jwks(s, NULL, 0, &skipped, &err), -1);
	/* more than 64 keys */
	big = malloc(70 * 4 + 16);
	{
		size_t o = (size_t)snprintf(big, 16, "{\"keys\":[{}");
		for (int i = 1; i < 65; i++)
			o += (size_t)snprintf(big + o, 4, ",{}");
		snprintf(big + o, 3, "]}");
	}
	T_EQ_INT(jwt_keyset_add_jwks(s, big, strlen(big), &skipped, &err), -1);
	T_EQ_INT(s->n, 4);
	/* refcounting */
	T_OK(jwt_keyset_ref(s) == s);
	T_EQ_INT(s->refs, 2);
	jwt_keyset_unref(s);
	T_EQ_INT(s->refs, 1);
	jwt_keyset_unref(NULL);
	T_OK(jwt_keyset_ref(NULL) == NULL);
#undef JWKS
end:
	jwt_keyset_unref(s);
	free(ej); free(ej2); free(ej3); free(ejenc); free(oct); free(doc); free(big);
}

/* ---- attack corpus ---------------------------------------------------------------------- */

static void
t_attacks(void)
{
	const struct jwt_key *rk[] = { &pub_rsa };
	const struct jwt_key *ek[] = { &pub_p256 };
	const struct jwt_key *mixed[] = { &pub_rsa, &hmac64, &pub_p256, &pub_ed };
	struct jwt_keyset *rs = set_of(rk, 1), *es = set_of(ek, 1), *ms = set_of(mixed, 4);
	char *pem = pem_pub(k_rsa), *tok = NULL, *tok2 = NULL, *x = NULL, *h = NULL, *p = NULL;
	char *s = NULL, *big = NULL;
	const char *pl = "{\"sub\":\"u\"}";
	struct jwt_token t;
	struct jwt_key tmp;
	const char *err;

	memset(&t, 0, sizeof(t));
	/* alg none, any case, with and without a signature */
	static const char *const nones[] = { "none", "NONE", "nOnE", "None", "", "HS256 " };
	for (size_t i = 0; i < sizeof(nones) / sizeof(nones[0]); i++) {
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", nones[i]);
		h = b64us(hdr);
		x = cat3(h, "e30", "");
		T_CHECK(check_tok(x, ALL_ALGS, ms) == JWT_E_MALFORMED, "alg %s empty sig", nones[i]);
		free(x);
		x = cat3(h, "e30", "c2ln");
		T_CHECK(check_tok(x, ALL_ALGS, ms) == JWT_E_ALG_NOT_ALLOWED, "alg %s", nones[i]);
		free(x);
		free(h);
		x = h = NULL;
	}
	T_EQ_INT(check_tok("eyJhbGciOm51bGx9.e30.c2ln", ALL_ALGS, ms), JWT_E_MALFORMED); /* alg null */
	x = cat3((h = b64us("{\"alg\":[\"HS256\"]}")), "e30", "c2ln");
	T_EQ_INT(check_tok(x, ALL_ALGS, ms), JWT_E_MALFORMED);
	free(x); free(h); x = h = NULL;
	x = cat3((h = b64us("{\"typ\":\"JWT\"}")), "e30", "c2ln");
	T_EQ_INT(check_tok(x, ALL_ALGS, ms), JWT_E_MALFORMED);
	free(x); free(h); x = h = NULL;

	/* HS256 signed with the RSA public key's PEM bytes (algorithm confusion) */
	tok = mk_token("{\"alg\":\"HS256\"}", pl, JWT_HS256, NULL, (unsigned char *)pem, strlen(pem));
	T_EQ_INT(check_tok(tok, ALL_ALGS, rs), JWT_E_NO_KEY);     /* no HMAC key at all */
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_BAD_SIGNATURE); /* an HMAC key, another secret */
	T_EQ_INT(check_tok(tok, JWT_ALG_BIT(JWT_RS256), rs), JWT_E_ALG_NOT_ALLOWED);
	T_EQ_INT(jwt_sig_verify(JWT_HS256, &pub_rsa, (unsigned char *)"a", 1, (unsigned char *)"b", 1), 0);
	free(tok);
	tok = mk_token("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", pl, JWT_HS256, NULL,
	    (unsigned char *)pem, strlen(pem));
	T_EQ_INT(check_tok(tok, ALL_ALGS, rs), JWT_E_NO_KEY);
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_NO_KEY);
	/* ... and the PEM can never be loaded as a secret in the first place */
	T_EQ_INT(jwt_key_from_secret((unsigned char *)pem, strlen(pem), NULL, &tmp, &err), -1);
	free(tok);
	/* the same with the DER of the key, and EC/Ed keys' PEM */
	tok = mk_token("{\"alg\":\"HS256\",\"kid\":\"ec1\"}", pl, JWT_HS256, NULL,
	    (unsigned char *)pem, strlen(pem));
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_NO_KEY);
	free(tok);
	/* other key-type confusions: ES256 token on the RSA key, EdDSA on EC, RS on Ed */
	tok = mk_token("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", pl, JWT_ES256, k_p256, NULL, 0);
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_NO_KEY);
	free(tok);
	tok = mk_token("{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}", pl, JWT_EDDSA, k_ed, NULL, 0);
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_NO_KEY);
	free(tok);
	tok = mk_token("{\"alg\":\"ES384\"}", pl, JWT_ES384, k_p384, NULL, 0);
	T_EQ_INT(check_tok(tok, ALL_ALGS, ms), JWT_E_NO_KEY);      /* P-256 key never does ES384 */
	free(tok);

	/* stripped / swapped / modified */
	tok = mk_token("{\"alg\":\"RS256\"}", pl, JWT_RS256, k_rsa, NULL, 0);
	tok2 = mk_token("{\"alg\":\"RS256\"}", "{\"sub\":\"admin\"}", JWT_RS256, k_rsa, NULL, 0);
	T_EQ_INT(check_tok(tok, ALL_ALGS, rs), JWT_OK);
	T_EQ_INT(check_tok(tok2, ALL_ALGS, rs), JWT_OK);
	x = strdup(tok);
	strrchr(x, '.')[1] = 0;
	T_EQ_INT(check_tok(x, ALL_ALGS, rs), JWT_E_MALFORMED);          /* h.p. */
	*strrchr(x, '.') = 0;
	T_EQ_INT(check_tok(x, ALL_ALGS, rs), JWT_E_MALFORMED);          /* h.p */
	free(x);
	h = strndup(tok, (size_t)(strchr(tok, '.') - tok));
	p = b64us("{\"sub\":\"admin\"}");
	x = cat3(h, p, strrchr(tok, '.') + 1);                          /* payload swapped */
	T_EQ_INT(check_tok(x, ALL_ALGS, rs), JWT_E_BAD_SIGNATURE);
	free(x);
	x = cat3(h, "e30", strrchr(tok2, '.') + 1);                     /* other token's sig */
	T_EQ_INT(check_tok(x, ALL_ALGS, rs), JWT_E_BAD_SIGNATURE);
	free(x);
	free(p);
	p = b64us("{\"sub\":\"u\"} ");                                  /* same JSON, other bytes */
	x = cat3(h, p, strrchr(tok, '.') + 1);
	T_EQ_INT(check_tok(x, ALL_ALGS, rs), JWT_E_BAD_SIGNATURE);
	free(x);
	x = NULL;
	/* signature by another RSA key */
	free(tok2);
	tok2 = mk_token("{\"alg\":\"RS256\"}", pl, JWT_RS256, k_rsa2, NULL, 0);
	T_EQ_INT(check_tok(tok2, ALL_ALGS, rs), JWT_E_BAD_SIGNATURE);

	/* kid games: only an unknown kid, nothing is opened or queried */
	static const char *const kids[] = {
		"../../../../etc/passwd", "/dev/null", "' OR '1'='1", "x'; DROP TABLE keys; --",
		"rsa1\\u0000", "RSA1", "rsa1 ", "", "http://evil.example/key.pem",
	};
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		char hdr[128];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kids[i]);
		free(tok2);
		tok2 = mk_token(hdr, pl, JWT_RS256, k_rsa, NULL, 0);
		enum jwt_err rc = check_tok(tok2, ALL_ALGS, rs);
		T_CHECK(rc == (i == 4 ? JWT_E_MALFORMED : JWT_E_UNKNOWN_KID), "kid %s: %s", kids[i],
		    jwt_err_name(rc));
	}
	free(tok2);
	tok2 = mk_token("{\"alg\":\"RS256\",\"kid\":7}", pl, JWT_RS256, k_rsa, NULL, 0);
	T_EQ_INT(check_tok(tok2, ALL_ALGS, rs), JWT_E_MALFORMED);
	free(tok2);
	tok2 = NULL;

	/* embedded jwk (CVE-2018-0114 shape) and jku: the attacker's own key signs */
	{
		char *aj = ec_jwk(k_p256b, "P-256", 32, "", 0), hdr[1024];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"jwk\":%s}", aj);
		tok2 = mk_token(hdr, pl, JWT_ES256, k_p256b, NULL, 0);
		T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(tok2);
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"jwk\":%s}", aj);
		tok2 = mk_token(hdr, pl, JWT_ES256, k_p256b, NULL, 0);
		T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(tok2);
		tok2 = mk_token("{\"alg\":\"ES256\",\"jku\":\"http://127.0.0.1:1/jwks.json\"}", pl,
		    JWT_ES256, k_p256b, NULL, 0);
		T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(tok2);
		tok2 = mk_token("{\"alg\":\"ES256\",\"x5u\":\"http://127.0.0.1:1/c.pem\",\"x5c\":[\"AAAA\"]}",
		    pl, JWT_ES256, k_p256b, NULL, 0);
		T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(tok2);
		/* and the genuine key still works with the same extra headers present */
		tok2 = mk_token("{\"alg\":\"ES256\",\"jku\":\"http://127.0.0.1:1/jwks.json\"}", pl,
		    JWT_ES256, k_p256, NULL, 0);
		T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_OK);
		free(tok2);
		tok2 = NULL;
		free(aj);
	}

	/* header shapes */
	static const struct { const char *hdr; enum jwt_err want; } hs[] = {
		{ "not json", JWT_E_MALFORMED },
		{ "[\"alg\",\"ES256\"]", JWT_E_MALFORMED },
		{ "{\"alg\":\"ES256\"}garbage", JWT_E_MALFORMED },
		{ "{\"alg\":\"ES256\",\"alg\":\"ES256\"}", JWT_E_DUPLICATE_KEY },
		{ "{\"alg\":\"ES256\",\"alg\":\"none\"}", JWT_E_DUPLICATE_KEY },
		{ "{\"alg\":\"ES256\",\"x\":{\"y\":1,\"y\":2}}", JWT_E_DUPLICATE_KEY },
		{ "{\"alg\":\"ES256\",\"crit\":[\"exp\"]}", JWT_E_CRIT },
		{ "{\"alg\":\"ES256\",\"crit\":\"b64\"}", JWT_E_CRIT },
		{ "{\"alg\":\"ES256\",\"crit\":[]}", JWT_OK },
		{ "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}", JWT_E_CRIT },
		{ "{\"alg\":\"ES256\",\"b64\":false}", JWT_E_MALFORMED },
		{ "{\"alg\":\"ES256\",\"b64\":0}", JWT_E_MALFORMED },
		{ "{\"alg\":\"ES256\",\"b64\":true}", JWT_OK },
		{ "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"cty\":\"x\",\"x5t\":\"y\"}", JWT_OK },
		{ "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", JWT_OK },
		{ "{\"alg\":\"ES256\",\"kid\":null}", JWT_E_MALFORMED },
		{ " {\"alg\":\"ES256\"}\n", JWT_OK },
	};
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
		tok2 = mk_token(hs[i].hdr, pl, JWT_ES256, k_p256, NULL, 0);
		enum jwt_err rc = check_tok(tok2, ALL_ALGS, es);
		T_CHECK(rc == hs[i].want, "header %s: %s", hs[i].hdr, jwt_err_name(rc));
		free(tok2);
		tok2 = NULL;
	}
	/* payload shapes (JSON mode) */
	static const struct { const char *pl; enum jwt_err want; } ps[] = {
		{ "{}", JWT_OK }, { "[]", JWT_E_MALFORMED }, { "\"foo\"", JWT_E_MALFORMED },
		{ "foo", JWT_E_MALFORMED }, { "{\"a\":1,\"a\":2}", JWT_E_DUPLICATE_KEY },
		{ "{\"a\":{\"b\":[{\"c\":1,\"c\":1}]}}", JWT_E_DUPLICATE_KEY }, { "", JWT_E_MALFORMED },
		{ "{\"a\":1}{}", JWT_E_MALFORMED },
	};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		tok2 = mk_token("{\"alg\":\"ES256\"}", ps[i].pl, JWT_ES256, k_p256, NULL, 0);
		enum jwt_err rc = check_tok(tok2, ALL_ALGS, es);
		T_CHECK(rc == ps[i].want, "payload %s: %s", ps[i].pl, jwt_err_name(rc));
		free(tok2);
		tok2 = NULL;
	}

	/* ES256 with a DER signature, r = s = 0, r = s = n, r or s >= n, wrong lengths */
	{
		unsigned char der[80], raw[64], *sg;
		size_t dl = sizeof(der), sl = 0;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		const char *msg = "eyJhbGciOiJFUzI1NiJ9.e30";
		char *sb;

		EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, k_p256, NULL);
		T_OK(EVP_DigestSign(c, der, &dl, (const unsigned char *)msg, strlen(msg)) == 1);
		EVP_MD_CTX_free(c);
		sb = b64u(der, dl);
		free(x);
		x = cat3("eyJhbGciOiJFUzI1NiJ9", "e30", sb);
		T_EQ_INT(check_tok(x, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(sb);
		/* the same signature in raw form passes: the DER one failed for its shape only */
		sg = sign_raw(JWT_ES256, k_p256, NULL, 0, (const unsigned char *)msg, strlen(msg), &sl);
		sb = b64u(sg, sl);
		free(x);
		x = cat3("eyJhbGciOiJFUzI1NiJ9", "e30", sb);
		T_EQ_INT(check_tok(x, ALL_ALGS, es), JWT_OK);
		free(sb);
		/* raw || extra zero, truncated */
		memcpy(raw, sg, 64);
		T_EQ_INT(jwt_sig_verify(JWT_ES256, &pub_p256, (const unsigned char *)msg, strlen(msg), raw, 64), 1);
		T_EQ_INT(jwt_sig_verify(JWT_ES256, &pub_p256, (const unsigned char *)msg, strlen(msg), raw, 63), 0);
		free(sg);
		memset(raw, 0, 64);
		T_EQ_INT(jwt_sig_verify(JWT_ES256, &pub_p256, (const unsigned char *)msg, strlen(msg), raw, 64), 0);
		sb = b64u(raw, 64);
		free(x);
		x = cat3("eyJhbGciOiJFUzI1NiJ9", "e30", sb);
		T_EQ_INT(check_tok(x, ALL_ALGS, es), JWT_E_BAD_SIGNATURE);
		free(sb);
		memcpy(raw, p256_order, 32);
		memcpy(raw + 32, p256_order, 32);
		T_EQ_INT(jwt_sig_verify(JWT_ES256, &pub_p256, (const unsigned char *)msg, strlen(msg), raw, 64), 0);
		T_EQ_INT(scalar_in_range(p256_order, p256_order, 32), 0);
		raw[31] -= 1;   /* n - 1 is in range */
		T_EQ_INT(scalar_in_range(raw, p256_order, 32), 1);
		memset(raw, 0xff, 32);
		T_EQ_INT(scalar_in_range(raw, p256_order, 32), 0);
	}
	/* the constants match OpenSSL's own group orders */
	{
		EC_GROUP *g1 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
		EC_GROUP *g2 = EC_GROUP_new_by_curve_name(NID_secp384r1);
		unsigned char o1[32], o2[48];

		BN_bn2binpad(EC_GROUP_get0_order(g1), o1, 32);
		BN_bn2binpad(EC_GROUP_get0_order(g2), o2, 48);
		T_OK(memcmp(o1, p256_order, 32) == 0);
		T_OK(memcmp(o2, p384_order, 48) == 0);
		EC_GROUP_free(g1);
		EC_GROUP_free(g2);
	}

	/* size, padding, whitespace, part counts, empty parts */
	big = malloc(JWT_MAX_TOKEN + 2);
	memset(big, 'A', JWT_MAX_TOKEN + 1);
	big[0] = 'e';
	big[10] = '.';
	big[20] = '.';
	T_EQ_INT(jwt_parse(big, JWT_MAX_TOKEN + 1, ALL_ALGS, &t), JWT_E_TOO_LARGE);
	T_OK(t.header == NULL && t.sig == NULL);
	T_EQ_INT(jwt_parse(big, 1u << 20, ALL_ALGS, &t), JWT_E_TOO_LARGE);
	T_EQ_INT(jwt_parse(big, JWT_MAX_TOKEN, ALL_ALGS, &t), JWT_E_MALFORMED);
	{
		/* a genuine token of exactly JWT_MAX_TOKEN bytes still passes */
		char *pad = malloc(8192), *bigtok;
		size_t need;

		free(tok2);
		tok2 = mk_token("{\"alg\":\"ES256\"}", "{\"p\":\"\"}", JWT_ES256, k_p256, NULL, 0);
		need = (JWT_MAX_TOKEN - strlen(tok2)) / 4 * 3;
		snprintf(pad, 8192, "{\"p\":\"%0*d\"}", (int)need, 0);
		bigtok = mk_token("{\"alg\":\"ES256\"}", pad, JWT_ES256, k_p256, NULL, 0);
		T_OK(strlen(bigtok) <= JWT_MAX_TOKEN && strlen(bigtok) > JWT_MAX_TOKEN - 8);
		T_EQ_INT(check_tok(bigtok, ALL_ALGS, es), JWT_OK);
		free(bigtok);
		free(pad);
	}
	free(tok2);
	tok2 = mk_token("{\"alg\":\"ES256\"}", "{\"a\":1}", JWT_ES256, k_p256, NULL, 0);
	T_EQ_INT(check_tok(tok2, ALL_ALGS, es), JWT_OK);
	{
		size_t L = strlen(tok2);
		char *m = malloc(L + 8);
		const char *d1 = strchr(tok2, '.'), *d2 = strrchr(tok2, '.');
		size_t i1 = (size_t)(d1 - tok2), i2 = (size_t)(d2 - tok2);
		static const char *const ins[] = { "=", "==", " ", "\t", "\n", "\r\n", "+", "/", "%", "\\" };

		/* insert at: start, end of header, start of payload, end of payload, in sig, end */
		size_t at[] = { 0, i1, i1 + 1, i2, i2 + 3, L };
		for (size_t a = 0; a < sizeof(at) / sizeof(at[0]); a++)
			for (size_t j = 0; j < sizeof(ins) / sizeof(ins[0]); j++) {
				size_t il = strlen(ins[j]);
				memcpy(m, tok2, at[a]);
				memcpy(m + at[a], ins[j], il);
				memcpy(m + at[a] + il, tok2 + at[a], L - at[a] + 1);
				enum jwt_err rc = check_tok(m, ALL_ALGS, es);
				T_CHECK(rc == JWT_E_MALFORMED, "insert '%s' at %zu: %s", ins[j], at[a],
				    jwt_err_name(rc));
			}
		/* NUL inside the given length */
		memcpy(m, tok2, L + 1);
		m[5] = 0;
		T_EQ_INT(jwt_parse(m, L, ALL_ALGS, &t), JWT_E_MALFORMED);
		free(m);
	}
	static const char *const shapes[] = {
		"", ".", "..", "...", "a", "a.b", "a.b.c.d", "a.b.c.", ".a.b", "a..b", "e30.e30.",
		"eyJhbGciOiJFUzI1NiJ9.e30", "eyJhbGciOiJFUzI1NiJ9.e30.AA.AA",
		"eyJhbGciOiJFUzI1NiJ9..AAAA", ".e30.AAAA", "eyJhbGciOiJFUzI1NiJ9.e30.",
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		enum jwt_err rc = jwt_parse(shapes[i], strlen(shapes[i]), ALL_ALGS, &t);
		T_CHECK(rc == JWT_E_MALFORMED, "shape \"%s\": %s", shapes[i], jwt_err_name(rc));
		T_CHECK(t.header == NULL && t.payload == NULL && t.sig == NULL, "cleared %zu", i);
	}
	T_EQ_INT(jwt_parse(NULL, 5, ALL_ALGS, &t), JWT_E_MALFORMED);
	T_EQ_INT(jwt_verify_sig(&t, NULL, 0), JWT_E_MALFORMED);
	T_OK(ERR_peek_error() == 0);
end:
	free(pem); free(tok); free(tok2); free(x); free(h); free(p); free(s); free(big);
	jwt_keyset_unref(rs);
	jwt_keyset_unref(es);
	jwt_keyset_unref(ms);
}

/* Wycheproof-style cross check on many keys: kid-less token tried against every key. */
static void
t_key_selection(void)
{
	const struct jwt_key *ks[] = { &pub_p256, &pub_rsa, &pub_ed };
	struct jwt_keyset *a = set_of(ks, 1), *b = set_of(ks + 1, 2);
	const struct jwt_keyset *both[] = { a, NULL, b };
	char *tok = mk_token("{\"alg\":\"EdDSA\"}", "{}", JWT_EDDSA, k_ed, NULL, 0);
	char *tok2 = mk_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", "{}", JWT_EDDSA, k_ed, NULL, 0);
	char *tok3 = mk_token("{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}", "{}", JWT_EDDSA, k_ed, NULL, 0);
	struct jwt_token t;

	T_EQ_INT(jwt_parse(tok, strlen(tok), ALL_ALGS, &t), JWT_OK);
	T_EQ_INT(jwt_verify_sig(&t, both, 3), JWT_OK);
	T_EQ_INT(jwt_verify_sig(&t, both, 1), JWT_E_NO_KEY);
	T_EQ_INT(jwt_verify_sig(&t, NULL, 0), JWT_E_NO_KEY);
	jwt_token_fini(&t);
	T_EQ_INT(jwt_parse(tok2, strlen(tok2), ALL_ALGS, &t), JWT_OK);
	T_EQ_STR(t.kid, "ed1");
	T_EQ_INT(jwt_verify_sig(&t, both, 3), JWT_OK);
	T_EQ_INT(jwt_verify_sig(&t, both, 1), JWT_E_UNKNOWN_KID);
	jwt_token_fini(&t);
	T_EQ_INT(jwt_parse(tok3, strlen(tok3), ALL_ALGS, &t), JWT_OK);
	T_EQ_INT(jwt_verify_sig(&t, both, 3), JWT_E_NO_KEY);
	jwt_token_fini(&t);
	jwt_token_fini(&t);     /* twice is harmless */
end:
	jwt_token_fini(&t);
	free(tok); free(tok2); free(tok3);
	jwt_keyset_unref(a);
	jwt_keyset_unref(b);
}

/* ---- claims ----------------------------------------------------------------------------- */

static enum jwt_err
claims(const char *js, const struct jwt_claims_policy *p, int64_t now)
{
	json_t *j = json_loads(js, 0, NULL);
	enum jwt_err rc = jwt_check_claims(j, p, now);

	json_decref(j);
	return rc;
}

static void
t_claims(void)
{
	const char *auds[] = { "api.example.com", "other" };
	const char *req[] = { "exp", "sub" };
	struct jwt_claims_policy none = { 0 }, p = {
		.issuer = "https://auth.example.com", .audience = auds, .n_audience = 2,
		.leeway_s = 30, .required = req, .n_required = 2,
	};
	const int64_t now = 1700000000;
	static const struct { const char *js; int pol; int64_t now; enum jwt_err want; } v[] = {
		{ "{}", 0, now, JWT_OK },
		{ "{\"exp\":1700000001}", 0, now, JWT_OK },
		{ "{\"exp\":1700000000}", 0, now, JWT_E_EXPIRED },
		{ "{\"exp\":1699999999}", 0, now, JWT_E_EXPIRED },
		{ "{\"exp\":1700000000.5}", 0, now, JWT_OK },
		{ "{\"exp\":1e300}", 0, now, JWT_OK },
		{ "{\"exp\":-1e300}", 0, now, JWT_E_EXPIRED },
		{ "{\"exp\":9223372036854775807}", 0, now, JWT_OK },
		{ "{\"exp\":-9223372036854775808}", 0, now, JWT_E_EXPIRED },
		{ "{\"exp\":\"1800000000\"}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"exp\":true}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"exp\":null}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"exp\":[1800000000]}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"nbf\":1700000000}", 0, now, JWT_OK },
		{ "{\"nbf\":1700000001}", 0, now, JWT_E_NOT_YET_VALID },
		{ "{\"nbf\":\"x\"}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"iat\":1700000000}", 0, now, JWT_OK },
		{ "{\"iat\":1700000001}", 0, now, JWT_E_IAT_FUTURE },
		{ "{\"iat\":{}}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"iss\":5}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"sub\":5}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"jti\":[]}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"aud\":5}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"aud\":[\"a\",5]}", 0, now, JWT_E_BAD_CLAIM },
		{ "{\"aud\":[]}", 0, now, JWT_OK },
		/* with the policy: leeway 30 s */
		{ "{\"exp\":1699999971,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"api.example.com\"}", 1, now, JWT_OK },
		{ "{\"exp\":1699999970,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"api.example.com\"}", 1, now, JWT_E_EXPIRED },
		{ "{\"exp\":1800000000,\"nbf\":1700000030,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_OK },
		{ "{\"exp\":1800000000,\"nbf\":1700000031,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_E_NOT_YET_VALID },
		{ "{\"exp\":1800000000,\"iat\":1700000030,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_OK },
		{ "{\"exp\":1800000000,\"iat\":1700000031,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_E_IAT_FUTURE },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":[\"x\",\"api.example.com\"]}", 1, now, JWT_OK },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":[\"x\",\"y\"]}", 1, now, JWT_E_BAD_AUDIENCE },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":[]}", 1, now, JWT_E_BAD_AUDIENCE },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\"}", 1, now, JWT_E_BAD_AUDIENCE },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"API.example.com\"}", 1, now, JWT_E_BAD_AUDIENCE },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com/\",\"aud\":\"other\"}", 1, now, JWT_E_BAD_ISSUER },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://AUTH.example.com\",\"aud\":\"other\"}", 1, now, JWT_E_BAD_ISSUER },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"iss\":\"https://auth.example.co\",\"aud\":\"other\"}", 1, now, JWT_E_BAD_ISSUER },
		{ "{\"exp\":1800000000,\"sub\":\"u\",\"aud\":\"other\"}", 1, now, JWT_E_BAD_ISSUER },
		{ "{\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_E_MISSING_CLAIM },
		{ "{\"exp\":1800000000,\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", 1, now, JWT_E_MISSING_CLAIM },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		enum jwt_err rc = claims(v[i].js, v[i].pol ? &p : &none, v[i].now);
		T_CHECK(rc == v[i].want, "claims %zu %s: %s (want %s)", i, v[i].js, jwt_err_name(rc),
		    jwt_err_name(v[i].want));
	}
	/* absurd leeway values are clamped, never overflow */
	p.leeway_s = INT64_MAX;     /* clamped to 10 years */
	T_EQ_INT(claims("{\"exp\":1384640001,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", &p, now), JWT_OK);
	T_EQ_INT(claims("{\"exp\":1384640000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", &p, now), JWT_E_EXPIRED);
	T_EQ_INT(claims("{\"exp\":1,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", &p, now), JWT_E_EXPIRED);
	p.leeway_s = -5;
	T_EQ_INT(claims("{\"exp\":1700000001,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", &p, now), JWT_OK);
	T_EQ_INT(claims("{\"exp\":1700000000,\"sub\":\"u\",\"iss\":\"https://auth.example.com\",\"aud\":\"other\"}", &p, now), JWT_E_EXPIRED);
	T_EQ_INT(jwt_check_claims(NULL, &p, now), JWT_E_MALFORMED);
end:;
}

static void
t_verify_pipeline(void)
{
	const struct jwt_key *ks[] = { &pub_p256 };
	struct jwt_keyset *s = set_of(ks, 1);
	const struct jwt_keyset *sets[] = { s };
	const char *aud[] = { "api" };
	struct jwt_claims_policy p = { .issuer = "iss", .audience = aud, .n_audience = 1 };
	char *good = mk_token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
	    "{\"iss\":\"iss\",\"aud\":\"api\",\"sub\":\"u1\",\"exp\":2000}", JWT_ES256, k_p256, NULL, 0);
	struct jwt_token t;

	T_EQ_INT(jwt_verify(good, strlen(good), JWT_ALG_BIT(JWT_ES256), sets, 1, &p, 1000, &t), JWT_OK);
	T_EQ_STR(json_string_value(json_object_get(t.payload, "sub")), "u1");
	T_EQ_INT(t.alg, JWT_ES256);
	jwt_token_fini(&t);
	T_EQ_INT(jwt_verify(good, strlen(good), JWT_ALG_BIT(JWT_ES256), sets, 1, &p, 2000, &t), JWT_E_EXPIRED);
	T_OK(t.payload == NULL && t.header == NULL && t.sig == NULL);
	T_EQ_INT(jwt_verify(good, strlen(good), JWT_ALG_BIT(JWT_RS256), sets, 1, &p, 1000, &t), JWT_E_ALG_NOT_ALLOWED);
	T_EQ_INT(jwt_verify(good, strlen(good), ALL_ALGS, sets, 1, NULL, 99999, &t), JWT_OK);
	jwt_token_fini(&t);
end:
	free(good);
	jwt_keyset_unref(s);
}

/* The error queue: what we queue is gone after every call; what the caller had stays. */
static void
t_error_queue(void)
{
	const struct jwt_key *ks[] = { &pub_rsa, &pub_p256 };
	struct jwt_keyset *s = set_of(ks, 2);
	struct jwt_key k;
	const char *err;
	unsigned char junk[256];

	memset(junk, 0x41, sizeof(junk));
	ERR_clear_error();
	T_EQ_INT(jwt_sig_verify(JWT_RS256, &pub_rsa, junk, 10, junk, 256), 0);
	T_EQ_INT(jwt_sig_verify(JWT_PS256, &pub_rsa, junk, 10, junk, 256), 0);
	T_EQ_INT(jwt_sig_verify(JWT_ES256, &pub_p256, junk, 10, junk, 64), 0);
	T_EQ_INT(jwt_sig_verify(JWT_EDDSA, &pub_ed, junk, 10, junk, 64), 0);
	T_EQ_INT(load_pem("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", NULL, &k, &err), -1);
	T_EQ_INT(load_jwk_str("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", &k, &err), -1);
	T_OK(ERR_peek_error() == 0);
	ERR_raise_data(ERR_LIB_USER, 42, "caller's own");
	T_EQ_INT(jwt_sig_verify(JWT_RS256, &pub_rsa, junk, 10, junk, 256), 0);
	T_EQ_INT(load_pem("junk", NULL, &k, &err), -1);
	T_EQ_INT(ERR_GET_REASON(ERR_peek_last_error()), 42);
	ERR_clear_error();
end:
	ERR_clear_error();
	jwt_keyset_unref(s);
}

/* Several threads verify against one shared keyset (what workers do). */
struct thr_arg {
	const struct jwt_keyset *s;
	const char *toks[3];
	int ok;
};

static void *
thr_main(void *p)
{
	struct thr_arg *a = p;

	for (int i = 0; i < 60; i++)
		for (int j = 0; j < 3; j++)
			if (check_tok(a->toks[j], ALL_ALGS, a->s) == JWT_OK)
				a->ok++;
	if (ERR_peek_error() != 0)
		a->ok = -1;
	return NULL;
}

static void
t_threads(void)
{
	const struct jwt_key *ks[] = { &pub_rsa, &pub_p256, &pub_ed, &hmac64 };
	struct jwt_keyset *s = set_of(ks, 4);
	char *t1 = mk_token("{\"alg\":\"PS256\"}", "{}", JWT_PS256, k_rsa, NULL, 0);
	char *t2 = mk_token("{\"alg\":\"ES256\"}", "{}", JWT_ES256, k_p256, NULL, 0);
	char *t3 = mk_token("{\"alg\":\"HS512\"}", "{}", JWT_HS512, NULL, secret64, 64);
	struct thr_arg a[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		a[i] = (struct thr_arg){ .s = s, .toks = { t1, t2, t3 } };
		pthread_create(&th[i], NULL, thr_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		T_CHECK(a[i].ok == 180, "thread %d verified %d of 180", i, a[i].ok);
	}
	free(t1); free(t2); free(t3);
	jwt_keyset_unref(s);
}

/* ---- RFC examples ----------------------------------------------------------------------- */

static void
t_rfc7515(void)
{
	/* A.1: HS256 with the oct key of A.1.1 */
	static const char a1[] =
	    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	static const char a1k[] =
	    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}";
	/* A.3: ES256 with the P-256 key of A.3.1 */
	static const char a3[] =
	    "eyJhbGciOiJFUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
	static const char a3k[] =
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
	    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
	/* A.2: RS256 with the RSA key of A.2.1 */
	static const char a2[] =
	    "eyJhbGciOiJSUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
	static const char a2k[] =
	    "{\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\"}";
	static const struct { const char *tok, *key; } v[] = { { a1, a1k }, { a2, a2k }, { a3, a3k } };
	const char *aud[] = { "x" };
	struct jwt_claims_policy pol = { .issuer = "joe" };
	struct jwt_claims_policy pol_aud = { .audience = aud, .n_audience = 1 };

	for (size_t i = 0; i < 3; i++) {
		struct jwt_key k;
		const char *err = NULL;
		const struct jwt_key *kp[] = { &k };
		struct jwt_keyset *s;
		const struct jwt_keyset *sets[1];
		struct jwt_token t;
		char *bad;

		T_CHECK(load_jwk_str(v[i].key, &k, &err) == 0, "RFC 7515 A.%zu key: %s", i + 1, err);
		s = set_of(kp, 1);
		sets[0] = s;
		T_CHECK(jwt_verify(v[i].tok, strlen(v[i].tok), ALL_ALGS, sets, 1, &pol, 1300819379, &t) == JWT_OK,
		    "RFC 7515 A.%zu verifies", i + 1);
		T_CHECK(json_is_true(json_object_get(t.payload, "http://example.com/is_root")),
		    "RFC 7515 A.%zu claims", i + 1);
		jwt_token_fini(&t);
		T_CHECK(jwt_verify(v[i].tok, strlen(v[i].tok), ALL_ALGS, sets, 1, &pol, 1300819380, &t) == JWT_E_EXPIRED,
		    "RFC 7515 A.%zu expired", i + 1);
		T_CHECK(jwt_verify(v[i].tok, strlen(v[i].tok), ALL_ALGS, sets, 1, &pol_aud, 1300819379, &t) == JWT_E_BAD_AUDIENCE,
		    "RFC 7515 A.%zu aud", i + 1);
		bad = strdup(v[i].tok);
		bad[strlen(bad) - 2] ^= 1;   /* flip a bit of the signature's last-but-one char */
		T_CHECK(jwt_verify(bad, strlen(bad), ALL_ALGS, sets, 1, NULL, 0, &t) != JWT_OK,
		    "RFC 7515 A.%zu tampered", i + 1);
		free(bad);
		jwt_keyset_unref(s);
		jwt_key_fini(&k);
	}
}

static void
t_rfc8037(void)
{
	/* RFC 8037 A.1-A.4: Ed25519 key, signature of "Example of Ed25519 signing". */
	static const char tok[] =
	    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
	    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
	static const char jwk[] =
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
	static const char d_b64[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
	struct jwt_key k;
	const char *err = NULL;
	const struct jwt_key *kp[] = { &k };
	struct jwt_keyset *s = NULL;
	struct jwt_token t;
	unsigned char d[32], x[32], sig[64];
	size_t xl = 32, sl = 64;
	EVP_PKEY *priv = NULL;
	EVP_MD_CTX *c = NULL;

	memset(&t, 0, sizeof(t));
	T_EQ_INT(load_jwk_str(jwk, &k, &err), 0);
	s = set_of(kp, 1);
	/* the payload is not JSON: the signature layer, as for Wycheproof */
	T_EQ_INT(parse_compact(tok, strlen(tok), ALL_ALGS, 1, &t), JWT_OK);
	T_EQ_INT(jwt_verify_sig(&t, (const struct jwt_keyset *const *)&s, 1), JWT_OK);
	jwt_token_fini(&t);
	T_EQ_INT(jwt_parse(tok, strlen(tok), ALL_ALGS, &t), JWT_E_MALFORMED);
	/* cross-check the typed-in vector: d derives x, and signing again gives the same bytes */
	T_EQ_INT(jwt_b64url_decode(d_b64, strlen(d_b64), d), 32);
	priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, 32);
	T_OK(priv != NULL);
	EVP_PKEY_get_raw_public_key(priv, x, &xl);
	T_OK(EVP_PKEY_eq(priv, k.pkey) == 1);
	c = EVP_MD_CTX_new();
	EVP_DigestSignInit_ex(c, NULL, NULL, NULL, NULL, priv, NULL);
	T_OK(EVP_DigestSign(c, sig, &sl, (const unsigned char *)tok,
	    (size_t)(strrchr(tok, '.') - tok)) == 1);
	{
		char *b = b64u(sig, sl);
		T_EQ_STR(b, strrchr(tok, '.') + 1);
		free(b);
	}
end:
	jwt_token_fini(&t);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(priv);
	jwt_keyset_unref(s);
	jwt_key_fini(&k);
}

/* RFC 7520 §4 examples, as carried by the Wycheproof JWS file (group comment "rfc7520"):
 * 4.1 RS256 (Figure 13), 4.2 PS384 (Figure 20), 4.4 HS256 (Figure 35). 4.3 is ES512, an
 * algorithm visor does not implement; it must be refused. */
static void
t_rfc7520(void)
{
	json_error_t je;
	json_t *root = json_load_file(WP_DIR "json_web_signature_test.json", 0, &je);
	const json_t *groups = json_object_get(root, "testGroups"), *g;
	size_t i;
	int seen = 0;

	T_OK(root != NULL);
	json_array_foreach(groups, i, g) {
		json_t *key;
		const json_t *tc = json_array_get(json_object_get(g, "tests"), 0);
		const char *tok = json_string_value(json_object_get(tc, "jws"));
		const char *fig = json_string_value(json_object_get(tc, "comment"));
		struct jwt_key k;
		const char *err = NULL;
		const struct jwt_key *kp[] = { &k };
		struct jwt_keyset *s;
		struct jwt_token t;
		enum jwt_err rc;

		if (strcmp(json_string_value(json_object_get(g, "comment")), "rfc7520") != 0)
			continue;
		key = json_deep_copy(json_object_get(g, "public") ? json_object_get(g, "public") :
		    json_object_get(g, "private"));
		/* The Wycheproof copy labels the 4.2 key "alg":"PS256" while Figure 20 is PS384;
		 * the RFC's own key (Figure 3) carries no "alg". */
		json_object_del(key, "alg");
		rc = jwt_key_from_jwk(key, &k, &err) == 0 ? JWT_OK : JWT_E_NO_KEY;
		json_decref(key);
		if (strcmp(fig, "Figure27") == 0) {
			T_CHECK(rc != JWT_OK, "RFC 7520 4.3 (ES512, P-521) refused at key load");
			seen++;
			continue;
		}
		T_CHECK(rc == JWT_OK, "RFC 7520 %s key: %s", fig, err);
		if (rc != JWT_OK)
			continue;
		s = set_of(kp, 1);
		rc = parse_compact(tok, strlen(tok), ALL_ALGS, 1, &t);
		if (rc == JWT_OK)
			rc = jwt_verify_sig(&t, (const struct jwt_keyset *const *)&s, 1);
		T_CHECK(rc == JWT_OK, "RFC 7520 %s: %s", fig, jwt_err_name(rc));
		jwt_token_fini(&t);
		jwt_keyset_unref(s);
		jwt_key_fini(&k);
		seen++;
	}
	T_EQ_INT(seen, 5);      /* 4.4 appears twice in the file */
end:
	json_decref(root);
}

/* ---- Wycheproof --------------------------------------------------------------------------- */

struct wp {
	const char *file;
	int valid_ok, invalid_ok, acc, acc_yes, policy, contradictory;
};

/* Cases Wycheproof calls valid that visor refuses on purpose; each is printed. */
static const char *
wp_policy(const char *file, long id)
{
	if (strcmp(file, "json_web_signature_test.json") != 0)
		return NULL;
	switch (id) {
	case 346: case 350:
		return "token is PS384 (RFC 7520 Figure 20) but the JWK says \"alg\":\"PS256\"; a JWK alg narrows the key";
	case 347: case 351:
		return "ES512 / P-521 is not an algorithm visor implements";
	case 372: case 373:
		return "a '?' inside base64url; the MAC is over the text without it; strict alphabet";
	}
	return NULL;
}

static void
wp_case(struct wp *w, const json_t *tc, int accepted)
{
	const char *res = json_string_value(json_object_get(tc, "result"));
	long id = (long)json_integer_value(json_object_get(tc, "tcId"));
	const char *why = wp_policy(w->file, id);

	if (strcmp(res, "valid") == 0 && why != NULL) {
		T_CHECK(!accepted, "wycheproof %s tcId %ld: policy refusal expected", w->file, id);
		printf("  wycheproof %s tcId %ld: valid, refused by policy: %s\n", w->file, id, why);
		w->policy++;
	} else if (strcmp(res, "valid") == 0) {
		T_CHECK(accepted, "wycheproof %s tcId %ld (%s): valid refused", w->file, id,
		    json_string_value(json_object_get(tc, "comment")));
		w->valid_ok += accepted;
	} else if (strcmp(res, "invalid") == 0) {
		T_CHECK(!accepted, "wycheproof %s tcId %ld (%s): invalid accepted", w->file, id,
		    json_string_value(json_object_get(tc, "comment")));
		w->invalid_ok += !accepted;
	} else {
		T_CHECK(1, "acceptable");
		w->acc++;
		w->acc_yes += accepted;
	}
}

static void
wp_report(const struct wp *w)
{
	char name[128];
	size_t n = strlen(w->file) - strlen("_test.json");

	memcpy(name, w->file, n);
	name[n] = 0;
	printf("wycheproof %s: %d valid ok, %d invalid refused, %d acceptable (%d accepted)",
	    name, w->valid_ok, w->invalid_ok, w->acc, w->acc_yes);
	if (w->policy)
		printf(", %d valid refused by documented policy", w->policy);
	if (w->contradictory)
		printf(", %d invalid byte-identical to a valid case (not counted)", w->contradictory);
	printf("\n");
}

static json_t *
wp_load(const char *file)
{
	char path[256];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), WP_DIR "%s", file);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		printf("FAIL cannot load %s: %s\n", path, je.text);
	return j;
}

/* Keys of a signature-file group, from its JWK and from its PEM; both must load. */
static int
wp_group_keys(const json_t *g, struct jwt_key *kj, struct jwt_key *kp)
{
	const json_t *jwk = json_object_get(g, "publicKeyJwk");
	const char *pem = json_string_value(json_object_get(g, "publicKeyPem")), *err = NULL;
	int ok = 1;

	memset(kj, 0, sizeof(*kj));
	memset(kp, 0, sizeof(*kp));
	json_t *made = NULL;

	if (jwk == NULL)
		jwk = json_object_get(g, "keyJwk");
	if (jwk == NULL) {
		/* a few ECDSA groups carry no JWK: build one from the uncompressed point */
		const json_t *pk = json_object_get(g, "publicKey");
		const char *unc = json_string_value(json_object_get(pk, "uncompressed"));
		const char *curve = json_string_value(json_object_get(pk, "curve"));

		if (unc != NULL && curve != NULL) {
			size_t ul, L;
			unsigned char *u = unhex(unc, &ul);
			char *x, *y;

			L = (ul - 1) / 2;
			x = b64u(u + 1, L);
			y = b64u(u + 1 + L, L);
			made = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv",
			    strcmp(curve, "secp256r1") == 0 ? "P-256" : "P-384", "x", x, "y", y);
			jwk = made;
			free(u);
			free(x);
			free(y);
		}
	}
	if (jwk == NULL) {
		printf("FAIL wycheproof group without a usable JWK\n");
		ok = 0;
	}
	if (jwk != NULL && jwt_key_from_jwk(jwk, kj, &err) != 0) {
		printf("FAIL wycheproof group JWK refused: %s\n", err);
		ok = 0;
	}
	if (pem != NULL && load_pem(pem, NULL, kp, &err) != 0) {
		printf("FAIL wycheproof group PEM refused: %s\n", err);
		ok = 0;
	}
	json_decref(made);
	return ok;
}

static void
wp_sigfile(const char *file, enum jwt_alg alg)
{
	struct wp w = { .file = file };
	json_t *root = wp_load(file);
	const json_t *g, *tc;
	size_t i, j;

	T_OK(root != NULL);
	json_array_foreach(json_object_get(root, "testGroups"), i, g) {
		struct jwt_key kj, kp;
		int have = wp_group_keys(g, &kj, &kp);

		T_CHECK(have, "%s group %zu keys", file, i);
		json_array_foreach(json_object_get(g, "tests"), j, tc) {
			size_t ml, sl;
			unsigned char *m = unhex(json_string_value(json_object_get(tc, "msg")), &ml);
			unsigned char *s = unhex(json_string_value(json_object_get(tc, "sig")), &sl);
			int a1 = have && jwt_sig_verify(alg, &kj, m, ml, s, sl);
			int a2 = have && jwt_sig_verify(alg, &kp, m, ml, s, sl);

			T_CHECK(a1 == a2, "%s tcId %lld: JWK and PEM keys disagree", file,
			    (long long)json_integer_value(json_object_get(tc, "tcId")));
			wp_case(&w, tc, a1 && a2);
			free(m);
			free(s);
		}
		jwt_key_fini(&kj);
		jwt_key_fini(&kp);
	}
	wp_report(&w);
	T_OK(ERR_peek_error() == 0);
end:
	json_decref(root);
}

static void
t_wp_ecdsa_p256(void)
{
	wp_sigfile("ecdsa_secp256r1_sha256_p1363_test.json", JWT_ES256);
}

static void
t_wp_ecdsa_p384(void)
{
	wp_sigfile("ecdsa_secp384r1_sha384_p1363_test.json", JWT_ES384);
}

static void
t_wp_rsa_pkcs1(void)
{
	wp_sigfile("rsa_signature_2048_sha256_test.json", JWT_RS256);
}

static void
t_wp_rsa_pss(void)
{
	wp_sigfile("rsa_pss_2048_sha256_mgf1_32_test.json", JWT_PS256);
}

static void
t_wp_ed25519(void)
{
	wp_sigfile("ed25519_test.json", JWT_EDDSA);
}

/* HMAC-SHA256. Keys are built by hand so 16-byte keys reach the MAC; truncated tags are
 * never a valid JWS HS256 signature (RFC 7518 §3.2: the full 32 bytes), so in the 128-bit
 * tag groups every case, Wycheproof-valid or not, must be refused. */
static void
t_wp_hmac(void)
{
	struct wp w = { .file = "hmac_sha256_test.json" };
	json_t *root = wp_load(w.file);
	const json_t *g, *tc;
	size_t i, j;
	int trunc_refused = 0, trunc_total = 0, short_keys_loaded = 0;

	T_OK(root != NULL);
	json_array_foreach(json_object_get(root, "testGroups"), i, g) {
		long tagbits = (long)json_integer_value(json_object_get(g, "tagSize"));

		json_array_foreach(json_object_get(g, "tests"), j, tc) {
			size_t kl, ml, sl;
			unsigned char *key = unhex(json_string_value(json_object_get(tc, "key")), &kl);
			unsigned char *m = unhex(json_string_value(json_object_get(tc, "msg")), &ml);
			unsigned char *s = unhex(json_string_value(json_object_get(tc, "tag")), &sl);
			struct jwt_key k = { .type = JWT_KEY_HMAC, .secret = key, .secret_len = kl,
			    .algs = JWT_ALG_BIT(JWT_HS256) };
			struct jwt_key viapolicy;
			const char *err;
			int acc = jwt_sig_verify(JWT_HS256, &k, m, ml, s, sl);

			if (tagbits == 256)
				wp_case(&w, tc, acc);
			else {
				trunc_total++;
				trunc_refused += !acc;
				T_CHECK(!acc, "hmac tcId %lld: truncated tag accepted",
				    (long long)json_integer_value(json_object_get(tc, "tcId")));
			}
			/* and the load policy: configured secrets under 32 bytes load for HS256
			 * only, and verify exactly like a hand-built key */
			if (kl > 0 && kl < 32) {
				T_CHECK(jwt_key_from_secret(key, kl, NULL, &viapolicy, &err) == 0 &&
				    viapolicy.algs == JWT_ALG_BIT(JWT_HS256) &&
				    jwt_sig_verify(JWT_HS256, &viapolicy, m, ml, s, sl) == acc,
				    "short hmac key: not HS256-only or verifies differently");
				jwt_key_fini(&viapolicy);
				short_keys_loaded++;
			}
			free(key);
			free(m);
			free(s);
		}
	}
	wp_report(&w);
	printf("wycheproof hmac_sha256 (128-bit tags): %d of %d refused (JWS needs the full tag); "
	    "%d keys under 32 bytes loaded HS256-only\n", trunc_refused, trunc_total, short_keys_loaded);
end:
	json_decref(root);
}

/* The JWS file: parse (payload is raw bytes, not claims) and verify with the group's key. */
static void
t_wp_jws(void)
{
	struct wp w = { .file = "json_web_signature_test.json" };
	json_t *root = wp_load(w.file), *valid = NULL;
	const json_t *g, *tc;
	size_t i, j;

	T_OK(root != NULL);
	json_array_foreach(json_object_get(root, "testGroups"), i, g) {
		const json_t *kjs = json_object_get(g, "public");
		struct jwt_key k;
		const char *err = NULL;
		struct jwt_keyset *s = NULL;
		int have;

		if (kjs == NULL)
			kjs = json_object_get(g, "private");
		/* This group's valid token texts, to spot "invalid" cases with the same bytes
		 * under the same key. */
		json_decref(valid);
		valid = json_object();
		json_array_foreach(json_object_get(g, "tests"), j, tc)
			if (json_is_string(json_object_get(tc, "jws")) &&
			    strcmp(json_string_value(json_object_get(tc, "result")), "valid") == 0)
				json_object_set_new(valid, json_string_value(json_object_get(tc, "jws")),
				    json_integer(json_integer_value(json_object_get(tc, "tcId"))));
		have = jwt_key_from_jwk(kjs, &k, &err) == 0;
		if (have) {
			const struct jwt_key *kp[] = { &k };
			s = set_of(kp, 1);
		}
		json_array_foreach(json_object_get(g, "tests"), j, tc) {
			const json_t *jv = json_object_get(tc, "jws");
			char *txt = json_is_string(jv) ? strdup(json_string_value(jv)) :
			    json_dumps(jv, JSON_COMPACT);
			struct jwt_token t;
			enum jwt_err rc = parse_compact(txt, strlen(txt), ALL_ALGS, 1, &t);

			const json_t *twin = json_object_get(valid, txt);

			if (rc == JWT_OK)
				rc = have ? jwt_verify_sig(&t, (const struct jwt_keyset *const *)&s, 1) :
				    JWT_E_NO_KEY;
			if (twin != NULL && strcmp(json_string_value(json_object_get(tc, "result")),
			    "invalid") == 0) {
				/* No verifier can accept one and refuse the other: report, and check
				 * we answer both alike. Their names say '=' padding, which this copy
				 * lacks; t_attacks checks padding on its own. */
				T_CHECK(rc == JWT_OK, "twin of a valid case");
				printf("  wycheproof %s tcId %lld (%s): labelled invalid but byte-identical "
				    "to valid tcId %lld; not counted\n", w.file,
				    (long long)json_integer_value(json_object_get(tc, "tcId")),
				    json_string_value(json_object_get(tc, "comment")),
				    (long long)json_integer_value(twin));
				w.contradictory++;
			} else
				wp_case(&w, tc, rc == JWT_OK);
			jwt_token_fini(&t);
			free(txt);
		}
		jwt_keyset_unref(s);
		if (have)
			jwt_key_fini(&k);
	}
	wp_report(&w);
	T_OK(ERR_peek_error() == 0);
end:
	json_decref(valid);
	json_decref(root);
}

/* The JWK file: load the group's key set as a JWKS, then parse and verify. */
static void
t_wp_jwk(void)
{
	struct wp w = { .file = "json_web_key_test.json" };
	json_t *root = wp_load(w.file);
	const json_t *g, *tc;
	size_t i, j;

	T_OK(root != NULL);
	json_array_foreach(json_object_get(root, "testGroups"), i, g) {
		const json_t *kjs = json_object_get(g, "public");
		struct jwt_keyset *s = jwt_keyset_new();
		char *doc;
		size_t skipped = 0;
		const char *err = NULL;
		int have;

		if (kjs == NULL)
			kjs = json_object_get(g, "private");
		doc = json_dumps(kjs, JSON_COMPACT);
		have = jwt_keyset_add_jwks(s, doc, strlen(doc), &skipped, &err) == 0;
		free(doc);
		json_array_foreach(json_object_get(g, "tests"), j, tc) {
			const char *tok = json_string_value(json_object_get(tc, "jws"));
			struct jwt_token t;
			enum jwt_err rc = parse_compact(tok, strlen(tok), ALL_ALGS, 1, &t);

			if (rc == JWT_OK)
				rc = have ? jwt_verify_sig(&t, (const struct jwt_keyset *const *)&s, 1) :
				    JWT_E_NO_KEY;
			wp_case(&w, tc, rc == JWT_OK);
			jwt_token_fini(&t);
		}
		jwt_keyset_unref(s);
	}
	wp_report(&w);
	T_OK(ERR_peek_error() == 0);
end:
	json_decref(root);
}

/* The ROCA detector flags the Wycheproof ROCA key and none of a few fresh keys. */
static void
t_roca(void)
{
	json_t *root = wp_load("json_web_key_test.json");
	const json_t *g;
	size_t i;
	int found = 0;

	T_OK(root != NULL);
	json_array_foreach(json_object_get(root, "testGroups"), i, g) {
		const json_t *k = json_array_get(json_object_get(json_object_get(g, "public"), "keys"), 0);
		unsigned char *nb;
		size_t nl;
		BIGNUM *n;
		struct jwt_key key;
		const char *err = NULL;

		if (strcmp(json_string_value(json_object_get(g, "comment")), "jws_rsa_roca_key") != 0)
			continue;
		T_OK(b64u_member(k, "n", &nb, &nl) == 0);
		n = BN_bin2bn(nb, (int)nl, NULL);
		T_EQ_INT(rsa_is_roca(n), 1);
		T_EQ_INT(jwt_key_from_jwk(k, &key, &err), -1);
		T_OK(strstr(err, "ROCA") != NULL);
		BN_free(n);
		free(nb);
		found = 1;
	}
	T_OK(found);
	{
		BIGNUM *n = NULL;
		EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
		T_EQ_INT(rsa_is_roca(n), 0);
		BN_free(n);
		n = NULL;
		EVP_PKEY_get_bn_param(k_rsa2, OSSL_PKEY_PARAM_RSA_N, &n);
		T_EQ_INT(rsa_is_roca(n), 0);
		BN_free(n);
	}
end:
	json_decref(root);
}

T_MAIN(t_setup, t_b64url, t_names, t_json_strict, t_roundtrip_all_algs, t_rs_ps_cross,
    t_pem_policy, t_secret_policy, t_jwk_policy, t_jwks, t_attacks, t_key_selection, t_claims,
    t_verify_pipeline, t_error_queue, t_threads, t_rfc7515, t_rfc8037, t_rfc7520, t_roca,
    t_wp_jws, t_wp_jwk, t_wp_ecdsa_p256, t_wp_ecdsa_p384, t_wp_rsa_pkcs1, t_wp_rsa_pss,
    t_wp_ed25519, t_wp_hmac, t_teardown)
