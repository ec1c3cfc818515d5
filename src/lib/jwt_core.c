/* SPDX-License-Identifier: MIT
 * jwt_core — compact JWS parsing, verification keys (PEM, certificates, JWK, JWKS, HMAC
 * secrets), signature checks and the registered-claims checks, with no socket and no global
 * mutable state. Signatures go through OpenSSL 3 EVP only (EVP_DigestVerify*, EVP_Q_mac,
 * EVP_PKEY_fromdata), JSON through jansson with duplicate members refused.
 *
 * What this file must never do: trust anything a token says about keys (jku, x5u, jwk, x5c
 * are never read), let a key verify an algorithm of another key type (an RSA public key is
 * never an HMAC secret), accept "none", compare MACs in variable time, or let OpenSSL's
 * error text or error queue leak out of a call: every public function that touches OpenSSL
 * removes the errors it queued before returning, so a worker thread's queue cannot grow.
 */
/* Hide every API deprecated in OpenSSL 3: using one is a compile error here, not a warning. */
#define OPENSSL_API_COMPAT 30000
#include "lib/jwt_core.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* A JWKS larger than this is refused: real ones hold a handful of keys, and a token without
 * a kid is tried against every key of its type, so the bound also bounds that work. */
#define JWT_MAX_JWKS_KEYS 64
/* RSA moduli above OpenSSL's own verification limit would only fail later, per request. */
#define JWT_RSA_MAX_BITS 16384
/* RFC 7518 §3.2: an HMAC key at least as long as the hash output. */
#define JWT_HMAC_MIN_SECRET 32

static const struct {
	const char *name;
	const char *md;       /* digest name for EVP; NULL for EdDSA (no pre-hash) */
	size_t      len;      /* HMAC tag / hash length, or the ECDSA scalar length */
} alg_tab[JWT_ALG_COUNT] = {
	[JWT_HS256] = { "HS256", "SHA256", 32 },
	[JWT_HS384] = { "HS384", "SHA384", 48 },
	[JWT_HS512] = { "HS512", "SHA512", 64 },
	[JWT_RS256] = { "RS256", "SHA256", 32 },
	[JWT_RS384] = { "RS384", "SHA384", 48 },
	[JWT_RS512] = { "RS512", "SHA512", 64 },
	[JWT_PS256] = { "PS256", "SHA256", 32 },
	[JWT_PS384] = { "PS384", "SHA384", 48 },
	[JWT_PS512] = { "PS512", "SHA512", 64 },
	[JWT_ES256] = { "ES256", "SHA256", 32 },
	[JWT_ES384] = { "ES384", "SHA384", 48 },
	[JWT_EDDSA] = { "EdDSA", NULL, 64 },
};

#define ALGS_HS (JWT_ALG_BIT(JWT_HS256) | JWT_ALG_BIT(JWT_HS384) | JWT_ALG_BIT(JWT_HS512))
#define ALGS_RSA (JWT_ALG_BIT(JWT_RS256) | JWT_ALG_BIT(JWT_RS384) | JWT_ALG_BIT(JWT_RS512) | \
	JWT_ALG_BIT(JWT_PS256) | JWT_ALG_BIT(JWT_PS384) | JWT_ALG_BIT(JWT_PS512))

/* The group orders: an ECDSA r or s must lie in [1, n-1]. OpenSSL checks this too; doing it
 * here first makes the CVE-2022-21449 shape (r = s = 0) fail without reaching any library. */
static const unsigned char p256_order[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};
static const unsigned char p384_order[48] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
	0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
};

/* Each reason's name behind the "jwt:" that tags it in the access log (jwt_err_tag);
 * jwt_err_name skips the tag. */
static const char *const err_names[JWT_E_COUNT] = {
	[JWT_OK] = "jwt:ok",
	[JWT_E_MALFORMED] = "jwt:malformed",
	[JWT_E_TOO_LARGE] = "jwt:too_large",
	[JWT_E_DUPLICATE_KEY] = "jwt:duplicate_key",
	[JWT_E_CRIT] = "jwt:crit",
	[JWT_E_ALG_NOT_ALLOWED] = "jwt:alg_not_allowed",
	[JWT_E_UNKNOWN_KID] = "jwt:unknown_kid",
	[JWT_E_NO_KEY] = "jwt:no_key",
	[JWT_E_BAD_SIGNATURE] = "jwt:bad_signature",
	[JWT_E_EXPIRED] = "jwt:expired",
	[JWT_E_NOT_YET_VALID] = "jwt:not_yet_valid",
	[JWT_E_IAT_FUTURE] = "jwt:iat_future",
	[JWT_E_BAD_ISSUER] = "jwt:bad_issuer",
	[JWT_E_BAD_AUDIENCE] = "jwt:bad_audience",
	[JWT_E_MISSING_CLAIM] = "jwt:missing_claim",
	[JWT_E_BAD_CLAIM] = "jwt:bad_claim",
	[JWT_E_REVOKED] = "jwt:revoked",
	[JWT_E_INTERNAL] = "jwt:internal",
	[JWT_E_NO_TOKEN] = "jwt:no_token",
	[JWT_E_AMBIGUOUS] = "jwt:ambiguous",
};

/* ---- small helpers ------------------------------------------------------------------- */

/* OpenSSL reports through a per-thread queue. We mark it on entry and pop back to the mark
 * on exit: what we queued is gone, what a caller had queued before (a TLS error it has yet
 * to read) stays. With an empty queue there is no mark and the pop empties it. */
static void
ossl_enter(void)
{
	ERR_set_mark();
}

static void
ossl_leave(void)
{
	ERR_pop_to_mark();
}

static char *
str_dup(const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	if ((p = malloc(n)) != NULL)
		memcpy(p, s, n);
	return p;
}

static int
has_substr(const unsigned char *h, size_t hlen, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; n <= hlen && i <= hlen - n; i++)
		if (memcmp(h + i, needle, n) == 0)
			return 1;
	return 0;
}

static int
b64u_digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long
jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;

	/* One leftover character carries 6 bits: never a whole byte, so never canonical. */
	if (len % 4 == 1 || len > (size_t)LONG_MAX / 3)
		return -1;
	for (i = 0; i < len; i++) {
		int d = b64u_digit((unsigned char)in[i]);

		if (d < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* The unused low bits of the last character must be zero (RFC 4648 §3.5): otherwise
	 * several strings decode alike and the signed bytes are not the bytes we parsed. */
	if (acc != 0)
		return -1;
	return (long)o;
}

/* Decodes the base64url string member `name` of `obj` into a fresh buffer.
 * 0, or -1 when absent, not a string, badly encoded or out of memory. */
static int
b64u_member(const json_t *obj, const char *name, unsigned char **out, size_t *outlen)
{
	const json_t *v = json_object_get(obj, name);
	const char *s;
	size_t n;
	unsigned char *buf;
	long r;

	*out = NULL;
	*outlen = 0;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > 16384)  /* far above any key we accept; bounds the allocation */
		return -1;
	if ((buf = malloc(n / 4 * 3 + 3)) == NULL)
		return -1;
	if ((r = jwt_b64url_decode(s, n, buf)) < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = (size_t)r;
	return 0;
}

/* ---- names ---------------------------------------------------------------------------- */

int
jwt_alg_parse(const char *name)
{
	int a;

	if (name == NULL)
		return -1;
	for (a = 0; a < JWT_ALG_COUNT; a++)
		if (strcmp(name, alg_tab[a].name) == 0)
			return a;
	return -1;
}

const char *
jwt_alg_name(enum jwt_alg a)
{
	if ((unsigned)a >= JWT_ALG_COUNT)
		return "unknown";
	return alg_tab[a].name;
}

const char *
jwt_err_name(enum jwt_err e)
{
	if ((unsigned)e >= JWT_E_COUNT)
		return "unknown";
	return err_names[e] + 4;
}

const char *
jwt_err_tag(enum jwt_err e)
{
	if ((unsigned)e >= JWT_E_COUNT)
		return "jwt";
	return err_names[e];
}

uint32_t
jwt_keytype_algs(enum jwt_keytype t)
{
	switch (t) {
	case JWT_KEY_HMAC:
		return ALGS_HS;
	case JWT_KEY_RSA:
		return ALGS_RSA;
	case JWT_KEY_EC_P256:
		return JWT_ALG_BIT(JWT_ES256);
	case JWT_KEY_EC_P384:
		return JWT_ALG_BIT(JWT_ES384);
	case JWT_KEY_ED25519:
		return JWT_ALG_BIT(JWT_EDDSA);
	}
	return 0;
}

/* The HS algorithms a secret of `len` bytes may serve (RFC 7518 §3.2). A configured secret
 * shorter than 32 bytes still serves HS256 (jwt_key_from_secret; the security lint warns):
 * what an existing Node app signs with is what visor must verify. */
static uint32_t
hmac_algs_for_len(size_t len)
{
	uint32_t m = 0;

	if (len > 0)
		m |= JWT_ALG_BIT(JWT_HS256);
	if (len >= 48)
		m |= JWT_ALG_BIT(JWT_HS384);
	if (len >= 64)
		m |= JWT_ALG_BIT(JWT_HS512);
	return m;
}

/* ---- keys and keysets ----------------------------------------------------------------- */

void
jwt_key_fini(struct jwt_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	if (k->secret != NULL)
		OPENSSL_clear_free(k->secret, k->secret_len);
	free(k->kid);
	memset(k, 0, sizeof(*k));
}

struct jwt_keyset *
jwt_keyset_new(void)
{
	struct jwt_keyset *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->refs = 1;
	return s;
}

struct jwt_keyset *
jwt_keyset_ref(struct jwt_keyset *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
jwt_keyset_unref(struct jwt_keyset *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* acq_rel: the thread that frees must see every other holder's last reads done. */
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < s->n; i++)
		jwt_key_fini(&s->v[i]);
	free(s->v);
	free(s);
}

/* Makes room for `extra` more keys, so a multi-key add either happens whole or not at all. */
static int
keyset_reserve(struct jwt_keyset *s, size_t extra)
{
	struct jwt_key *v;

	if (extra > SIZE_MAX / sizeof(*v) - s->n)
		return -1;
	if ((v = realloc(s->v, (s->n + extra) * sizeof(*v))) == NULL)
		return -1;
	s->v = v;
	return 0;
}

int
jwt_keyset_add(struct jwt_keyset *s, struct jwt_key *k)
{
	if (s == NULL || k == NULL || keyset_reserve(s, 1) != 0)
		return -1;
	s->v[s->n++] = *k;
	memset(k, 0, sizeof(*k));
	return 0;
}

/* ROCA (CVE-2017-15361): moduli from the flawed Infineon generator are 65537^a mod M, so
 * n mod p falls in the subgroup generated by 65537 for every small prime p of M. A random
 * modulus passes all 38 primes below with probability about 2^-150. */
static int
rsa_is_roca(const BIGNUM *n)
{
	static const unsigned short primes[] = {
		3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
		73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151,
		157, 163, 167,
	};
	size_t i;

	for (i = 0; i < sizeof(primes) / sizeof(primes[0]); i++) {
		unsigned p = primes[i], g = 65537u % p, x = 1, k;
		BN_ULONG r = BN_mod_word(n, p);
		int in = 0;

		if (r == (BN_ULONG)-1)
			return 0;
		for (k = 0; k < p; k++) {
			if (x == r) {
				in = 1;
				break;
			}
			x = x * g % p;
		}
		if (!in)
			return 0;
	}
	return 1;
}

static int
rsa_check(const EVP_PKEY *pk, const char **err)
{
	BIGNUM *n = NULL, *e = NULL;
	int bits, rc = -1;

	if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e)) {
		*err = "RSA key without modulus or exponent";
		goto fail;
	}
	bits = BN_num_bits(n);
	if (bits < 2048) {
		*err = "RSA key shorter than 2048 bits";
		goto fail;
	}
	if (bits > JWT_RSA_MAX_BITS) {
		*err = "RSA key longer than 16384 bits";
		goto fail;
	}
	if (!BN_is_odd(n)) {
		*err = "RSA modulus is even";
		goto fail;
	}
	/* e = 1 makes every "signature" its own message (Wycheproof exponentOne). */
	if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64) {
		*err = "RSA public exponent must be odd, greater than 1 and at most 64 bits";
		goto fail;
	}
	if (rsa_is_roca(n)) {
		*err = "RSA key has the ROCA fingerprint (CVE-2017-15361): regenerate it";
		goto fail;
	}
	rc = 0;
fail:
	BN_free(n);
	BN_free(e);
	return rc;
}

static int
ec_check(EVP_PKEY *pk, enum jwt_keytype *kt, const char **err)
{
	char name[64], enc[32];
	size_t nl = 0;
	EVP_PKEY_CTX *c = NULL;
	int rc = -1;

	if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
	    &nl)) {
		*err = "EC key without a named curve";
		goto fail;
	}
	if (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0)
		*kt = JWT_KEY_EC_P256;
	else if (strcmp(name, "secp384r1") == 0 || strcmp(name, "P-384") == 0)
		*kt = JWT_KEY_EC_P384;
	else {
		*err = "EC curve not supported (P-256 and P-384 only)";
		goto fail;
	}
	/* Explicit curve parameters are how CVE-2020-0601 smuggled a fake generator in; a
	 * key must name its curve. */
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
	    &nl) && strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
		*err = "EC key with explicit curve parameters";
		goto fail;
	}
	/* On the curve, not the point at infinity, coordinates in range, right order. */
	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_public_check(c) != 1) {
		*err = "EC public key is not a valid point of its curve";
		goto fail;
	}
	rc = 0;
fail:
	EVP_PKEY_CTX_free(c);
	return rc;
}

/* Decides the key type of a public key and applies the load-time policy. */
static int
pkey_classify(EVP_PKEY *pk, enum jwt_keytype *kt, const char **err)
{
	if (EVP_PKEY_is_a(pk, "RSA")) {
		*kt = JWT_KEY_RSA;
		return rsa_check(pk, err);
	}
	if (EVP_PKEY_is_a(pk, "EC"))
		return ec_check(pk, kt, err);
	if (EVP_PKEY_is_a(pk, "ED25519")) {
		*kt = JWT_KEY_ED25519;
		return 0;
	}
	*err = "unsupported key type (RSA, EC P-256/P-384 and Ed25519 only; RSA-PSS-restricted keys are not supported)";
	return -1;
}

/* Fills `out` around a checked public key (takes `pk`). */
static int
key_set_pkey(struct jwt_key *out, EVP_PKEY *pk, const char *kid, const char **err)
{
	enum jwt_keytype kt = JWT_KEY_RSA;

	if (pkey_classify(pk, &kt, err) != 0) {
		EVP_PKEY_free(pk);
		return -1;
	}
	out->type = kt;
	out->pkey = pk;
	out->algs = jwt_keytype_algs(kt);
	if (kid != NULL && (out->kid = str_dup(kid)) == NULL) {
		*err = "out of memory";
		jwt_key_fini(out);
		return -1;
	}
	return 0;
}

int
jwt_key_from_pem(const char *pem, size_t len, const char *kid, struct jwt_key *out,
    const char **err)
{
	BIO *bio = NULL;
	char *name = NULL, *hdr = NULL;
	unsigned char *der = NULL;
	long dlen = 0;
	EVP_PKEY *pk = NULL;
	const char *dummy;
	int rc = -1;

	if (err == NULL)
		err = &dummy;
	ossl_enter();
	memset(out, 0, sizeof(*out));
	if (pem == NULL || len == 0 || len > INT_MAX) {
		*err = "empty PEM";
		goto fail;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		*err = "out of memory";
		goto fail;
	}
	/* Walk every block: the first public key or certificate is the key, and any private
	 * key anywhere in the file refuses the whole file (it should never be on this host). */
	while (PEM_read_bio(bio, &name, &hdr, &der, &dlen)) {
		const unsigned char *p = der;
		int known = 1;

		if (strstr(name, "PRIVATE KEY") != NULL) {
			*err = "PEM holds a private key: give visor the public key or certificate only";
			goto fail;
		}
		if (pk == NULL) {
			if (strcmp(name, "PUBLIC KEY") == 0)
				pk = d2i_PUBKEY(NULL, &p, dlen);
			else if (strcmp(name, "RSA PUBLIC KEY") == 0)
				pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dlen);
			else if (strcmp(name, "CERTIFICATE") == 0) {
				/* A certificate is a key container here: its validity is not ours
				 * to judge, the operator chose it. The first one is the leaf. */
				X509 *x = d2i_X509(NULL, &p, dlen);

				if (x != NULL && p == der + dlen)
					pk = X509_get_pubkey(x);
				X509_free(x);
			} else
				known = 0;
			if (known && (pk == NULL || p != der + dlen)) {
				*err = "PEM block could not be decoded";
				goto fail;
			}
		}
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(der);
		name = hdr = NULL;
		der = NULL;
	}
	if (pk == NULL) {
		*err = "no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block in PEM";
		goto fail;
	}
	rc = key_set_pkey(out, pk, kid, err);
	pk = NULL;
fail:
	EVP_PKEY_free(pk);
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(der);
	BIO_free(bio);
	ossl_leave();
	return rc;
}

int
jwt_key_from_secret(const unsigned char *sec, size_t len, const char *kid,
    struct jwt_key *out, const char **err)
{
	const char *dummy;

	if (err == NULL)
		err = &dummy;
	memset(out, 0, sizeof(*out));
	if (sec == NULL || len == 0) {
		*err = "empty HMAC secret";
		return -1;
	}
	/* The classic algorithm-confusion setup is a public key file used as a secret: then
	 * anyone holding the public key can mint tokens. */
	if (has_substr(sec, len, "-----BEGIN")) {
		*err = "HMAC secret looks like a PEM key; a public key must never be an HMAC secret";
		return -1;
	}
	if ((out->secret = malloc(len)) == NULL)
		goto oom;
	memcpy(out->secret, sec, len);
	out->secret_len = len;
	out->type = JWT_KEY_HMAC;
	out->algs = hmac_algs_for_len(len);
	if (kid != NULL && (out->kid = str_dup(kid)) == NULL)
		goto oom;
	return 0;
oom:
	jwt_key_fini(out);
	*err = "out of memory";
	return -1;
}

/* EVP_PKEY from OSSL_PARAMs, public part only. */
static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(c);
	return pk;
}

static EVP_PKEY *
jwk_rsa(const json_t *jwk, const char **err)
{
	unsigned char *nb = NULL, *eb = NULL;
	size_t nl, el;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pk = NULL;

	if (b64u_member(jwk, "n", &nb, &nl) != 0 || b64u_member(jwk, "e", &eb, &el) != 0 ||
	    nl == 0 || el == 0) {
		*err = "RSA JWK needs base64url n and e";
		goto fail;
	}
	if ((n = BN_bin2bn(nb, (int)nl, NULL)) == NULL || (e = BN_bin2bn(eb, (int)el, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		*err = "out of memory";
		goto fail;
	}
	if ((pk = pkey_fromdata("RSA", params)) == NULL)
		*err = "RSA JWK rejected by OpenSSL";
fail:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return pk;
}

static EVP_PKEY *
jwk_ec(const json_t *jwk, const char **err)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 48];
	char group[16];
	size_t xl, yl, flen;
	OSSL_PARAM params[3];
	EVP_PKEY *pk = NULL;

	if (crv != NULL && strcmp(crv, "P-256") == 0) {
		flen = 32;
		memcpy(group, "prime256v1", sizeof("prime256v1"));
	} else if (crv != NULL && strcmp(crv, "P-384") == 0) {
		flen = 48;
		memcpy(group, "secp384r1", sizeof("secp384r1"));
	} else {
		*err = "EC JWK curve not supported (P-256 and P-384 only)";
		return NULL;
	}
	/* RFC 7518 §6.2.1.2: coordinates are exactly the field size; a short one usually
	 * means a key of another curve. */
	if (b64u_member(jwk, "x", &x, &xl) != 0 || b64u_member(jwk, "y", &y, &yl) != 0 ||
	    xl != flen || yl != flen) {
		*err = "EC JWK needs base64url x and y of the curve's size";
		goto fail;
	}
	pub[0] = 0x04;
	memcpy(pub + 1, x, flen);
	memcpy(pub + 1 + flen, y, flen);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * flen);
	params[2] = OSSL_PARAM_construct_end();
	if ((pk = pkey_fromdata("EC", params)) == NULL)
		*err = "EC JWK point is not on its curve";
fail:
	free(x);
	free(y);
	return pk;
}

static EVP_PKEY *
jwk_okp(const json_t *jwk, const char **err)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	unsigned char *x = NULL;
	size_t xl;
	OSSL_PARAM params[2];
	EVP_PKEY *pk = NULL;

	if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
		*err = "OKP JWK curve not supported (Ed25519 only)";
		return NULL;
	}
	if (b64u_member(jwk, "x", &x, &xl) != 0 || xl != 32) {
		*err = "Ed25519 JWK needs a 32-byte base64url x";
		goto fail;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, x, xl);
	params[1] = OSSL_PARAM_construct_end();
	if ((pk = pkey_fromdata("ED25519", params)) == NULL)
		*err = "Ed25519 JWK rejected by OpenSSL";
fail:
	free(x);
	return pk;
}

/* "use" and "key_ops" (RFC 7517 §4.2, §4.3): this key must be meant for verifying. */
static int
jwk_usage_ok(const json_t *jwk, const char **err)
{
	const json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops");
	size_t i;
	int verify = 0;

	if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
		*err = "JWK use is not \"sig\"";
		return -1;
	}
	if (ops == NULL)
		return 0;
	if (!json_is_array(ops)) {
		*err = "JWK key_ops is not an array";
		return -1;
	}
	for (i = 0; i < json_array_size(ops); i++) {
		const json_t *o = json_array_get(ops, i);

		if (!json_is_string(o)) {
			*err = "JWK key_ops holds a non-string";
			return -1;
		}
		if (strcmp(json_string_value(o), "verify") == 0)
			verify = 1;
	}
	if (!verify) {
		*err = "JWK key_ops does not include \"verify\"";
		return -1;
	}
	return 0;
}

int
jwt_key_from_jwk(const json_t *jwk, struct jwt_key *out, const char **err)
{
	static const char *const rsa_priv[] = { "d", "p", "q", "dp", "dq", "qi", "oth" };
	const json_t *kidv, *algv;
	const char *kty, *dummy;
	int alg = -1, rc = -1;
	size_t i;
	EVP_PKEY *pk = NULL;

	if (err == NULL)
		err = &dummy;
	ossl_enter();
	memset(out, 0, sizeof(*out));
	if (!json_is_object(jwk)) {
		*err = "JWK is not a JSON object";
		goto fail;
	}
	if ((kty = json_string_value(json_object_get(jwk, "kty"))) == NULL) {
		*err = "JWK without kty";
		goto fail;
	}
	if (jwk_usage_ok(jwk, err) != 0)
		goto fail;
	kidv = json_object_get(jwk, "kid");
	if (kidv != NULL && !json_is_string(kidv)) {
		*err = "JWK kid is not a string";
		goto fail;
	}
	if ((algv = json_object_get(jwk, "alg")) != NULL &&
	    (alg = jwt_alg_parse(json_string_value(algv))) < 0) {
		*err = "JWK alg is not a supported JWS algorithm";
		goto fail;
	}

	if (strcmp(kty, "oct") == 0) {
		unsigned char *k = NULL;
		size_t kl = 0;

		if (b64u_member(jwk, "k", &k, &kl) != 0 || kl == 0) {
			free(k);
			*err = "oct JWK needs a non-empty base64url k";
			goto fail;
		}
		if (kl < JWT_HMAC_MIN_SECRET) {
			OPENSSL_clear_free(k, kl);
			*err = "oct JWK shorter than 32 bytes (RFC 7518 3.2)";
			goto fail;
		}
		out->type = JWT_KEY_HMAC;
		out->secret = k;
		out->secret_len = kl;
		out->algs = hmac_algs_for_len(kl);
		if (kidv != NULL && (out->kid = str_dup(json_string_value(kidv))) == NULL) {
			*err = "out of memory";
			goto fail;
		}
	} else {
		if (strcmp(kty, "RSA") == 0) {
			for (i = 0; i < sizeof(rsa_priv) / sizeof(rsa_priv[0]); i++)
				if (json_object_get(jwk, rsa_priv[i]) != NULL) {
					*err = "JWK holds private RSA parameters";
					goto fail;
				}
			pk = jwk_rsa(jwk, err);
		} else if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
			if (json_object_get(jwk, "d") != NULL) {
				*err = "JWK holds a private key (d)";
				goto fail;
			}
			pk = kty[0] == 'E' ? jwk_ec(jwk, err) : jwk_okp(jwk, err);
		} else {
			*err = "JWK kty not supported (RSA, EC, OKP, oct)";
			goto fail;
		}
		if (pk == NULL)
			goto fail;
		if (key_set_pkey(out, pk, json_string_value(kidv), err) != 0)
			goto fail;
	}
	if (alg >= 0) {
		/* "alg" narrows, it never widens: an ES521 label on a P-256 key or an HS512
		 * label on a 32-byte secret makes the key unusable, not re-typed. */
		if (!(out->algs & JWT_ALG_BIT(alg))) {
			*err = out->type == JWT_KEY_HMAC ?
			    "JWK alg does not fit the key (or the secret is too short for it)" :
			    "JWK alg does not fit the key type";
			goto fail;
		}
		out->algs = JWT_ALG_BIT(alg);
	}
	rc = 0;
fail:
	if (rc != 0)
		jwt_key_fini(out);
	ossl_leave();
	return rc;
}

int
jwt_keyset_add_jwks(struct jwt_keyset *set, const char *json, size_t len, size_t *skipped,
    const char **err)
{
	json_t *root = NULL;
	const json_t *keys;
	json_error_t je;
	struct jwt_key *tmp = NULL;
	size_t n, i, j, cnt = 0, skip = 0;
	int sym = 0, asym = 0, rc = -1;
	const char *dummy, *kerr;

	if (err == NULL)
		err = &dummy;
	if (skipped != NULL)
		*skipped = 0;
	if (set == NULL || json == NULL) {
		*err = "no JWKS";
		return -1;
	}
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		*err = json_error_code(&je) == json_error_duplicate_key ?
		    "JWKS has a duplicate JSON member" : "JWKS is not valid JSON";
		goto fail;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		*err = "JWKS is not an object with a \"keys\" array";
		goto fail;
	}
	n = json_array_size(keys);
	if (n > JWT_MAX_JWKS_KEYS) {
		*err = "JWKS holds more than 64 keys";
		goto fail;
	}
	/* Wycheproof "DuplicateKid": two entries of one kty under one kid make "the key this
	 * token names" ambiguous, even when we would skip one of them (a key we cannot parse
	 * today may be the one the issuer signs with). RFC 7517 §4.5 allows a shared kid only
	 * across different kty, and so do we. */
	for (i = 0; i < n; i++) {
		const json_t *a = json_array_get(keys, i);
		const char *ak = json_string_value(json_object_get(a, "kid"));
		const char *at = json_string_value(json_object_get(a, "kty"));

		for (j = i + 1; ak != NULL && at != NULL && j < n; j++) {
			const json_t *b = json_array_get(keys, j);
			const char *bk = json_string_value(json_object_get(b, "kid"));
			const char *bt = json_string_value(json_object_get(b, "kty"));

			if (bk != NULL && bt != NULL && strcmp(ak, bk) == 0 && strcmp(at, bt) == 0) {
				*err = "JWKS has two keys of one kty with the same kid";
				goto fail;
			}
		}
	}
	if (n > 0 && (tmp = calloc(n, sizeof(*tmp))) == NULL) {
		*err = "out of memory";
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if (jwt_key_from_jwk(json_array_get(keys, i), &tmp[cnt], &kerr) != 0) {
			skip++;
			continue;
		}
		if (tmp[cnt].type == JWT_KEY_HMAC)
			sym = 1;
		else
			asym = 1;
		cnt++;
	}
	/* Wycheproof "MixedKeySet": a document that publishes secrets next to public keys was
	 * never meant to be served. Refuse the document, keep whatever set was there. */
	if (sym && asym) {
		*err = "JWKS mixes symmetric (oct) and asymmetric keys";
		goto fail;
	}
	if (keyset_reserve(set, cnt) != 0) {
		*err = "out of memory";
		goto fail;
	}
	for (i = 0; i < cnt; i++) {
		set->v[set->n++] = tmp[i];
		memset(&tmp[i], 0, sizeof(tmp[i]));
	}
	if (skipped != NULL)
		*skipped = skip;
	rc = 0;
fail:
	for (i = 0; i < cnt; i++)
		jwt_key_fini(&tmp[i]);
	free(tmp);
	json_decref(root);
	return rc;
}

/* ---- signatures ----------------------------------------------------------------------- */

/* One EVP_DigestVerify. 1 valid, 0 invalid, -1 internal failure. `md` NULL for EdDSA. */
static int
evp_verify(EVP_PKEY *pk, const char *md, int pss, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int rc = -1;

	if (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pk, NULL) != 1)
		goto fail;
	/* PS*: salt length equal to the hash length, MGF1 over the same hash (RFC 7518 §3.5).
	 * SALTLEN_DIGEST on verify demands exactly that length, unlike SALTLEN_AUTO. */
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md, NULL) <= 0))
		goto fail;
	/* Only exactly 1 is success: negative values are errors, not "true". */
	rc = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
fail:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int
hmac_verify(enum jwt_alg alg, const struct jwt_key *k, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	int ok;

	if (k->secret == NULL || k->secret_len == 0 || siglen != alg_tab[alg].len)
		return 0;
	if (EVP_Q_mac(NULL, "HMAC", NULL, alg_tab[alg].md, NULL, k->secret, k->secret_len,
	    msg, msglen, mac, sizeof(mac), &maclen) == NULL)
		return -1;
	ok = maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

/* 1 when 0 < v < n, for big-endian v and n of `len` bytes. */
static int
scalar_in_range(const unsigned char *v, const unsigned char *n, size_t len)
{
	unsigned char nz = 0;
	size_t i;

	for (i = 0; i < len; i++)
		nz |= v[i];
	return nz != 0 && memcmp(v, n, len) < 0;
}

/* DER INTEGER of a big-endian unsigned value: minimal length, a 0x00 in front when the top
 * bit is set. Returns the bytes written (at most 3 + len). */
static size_t
der_uint(unsigned char *o, const unsigned char *v, size_t len)
{
	size_t pad;

	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	pad = (v[0] & 0x80) ? 1 : 0;
	o[0] = 0x02;
	o[1] = (unsigned char)(len + pad);
	o[2] = 0;
	memcpy(o + 2 + pad, v, len);
	return 2 + pad + len;
}

/* JWS carries ECDSA as raw r||s (RFC 7518 §3.4); OpenSSL wants DER. Only the raw form of
 * the exact length is accepted, so a DER signature (or a DER-looking one) never passes. */
static int
ecdsa_verify(enum jwt_alg alg, const struct jwt_key *k, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen)
{
	size_t L = alg_tab[alg].len, dl;
	const unsigned char *order = alg == JWT_ES256 ? p256_order : p384_order;
	unsigned char der[2 + 2 * (3 + 48)];

	if (siglen != 2 * L || !scalar_in_range(sig, order, L) ||
	    !scalar_in_range(sig + L, order, L))
		return 0;
	dl = 2;
	dl += der_uint(der + dl, sig, L);
	dl += der_uint(der + dl, sig + L, L);
	der[0] = 0x30;                    /* SEQUENCE; at most 102 content bytes: short form */
	der[1] = (unsigned char)(dl - 2);
	return evp_verify(k->pkey, alg_tab[alg].md, 0, msg, msglen, der, dl);
}

/* 1 valid, 0 invalid, -1 internal failure. */
static int
sig_verify(enum jwt_alg alg, const struct jwt_key *key, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen)
{
	const char *want;

	if ((unsigned)alg >= JWT_ALG_COUNT || key == NULL || sig == NULL ||
	    (msg == NULL && msglen != 0))
		return 0;
	/* Both the key's own narrowing and its type must allow the algorithm: this is where
	 * algorithm confusion (HS256 against an RSA key) dies. */
	if (!(key->algs & JWT_ALG_BIT(alg)) || !(jwt_keytype_algs(key->type) & JWT_ALG_BIT(alg)))
		return 0;
	if (key->type == JWT_KEY_HMAC)
		return hmac_verify(alg, key, msg, msglen, sig, siglen);
	if (key->pkey == NULL)
		return 0;
	want = key->type == JWT_KEY_RSA ? "RSA" : key->type == JWT_KEY_ED25519 ? "ED25519" : "EC";
	if (!EVP_PKEY_is_a(key->pkey, want))
		return 0;
	switch (key->type) {
	case JWT_KEY_RSA:
		/* RFC 8017 §8.2.2 step 1: the signature is exactly k bytes. */
		if (siglen != (size_t)EVP_PKEY_get_size(key->pkey))
			return 0;
		return evp_verify(key->pkey, alg_tab[alg].md, alg >= JWT_PS256, msg, msglen,
		    sig, siglen);
	case JWT_KEY_EC_P256:
	case JWT_KEY_EC_P384:
		return ecdsa_verify(alg, key, msg, msglen, sig, siglen);
	case JWT_KEY_ED25519:
		if (siglen != 64)
			return 0;
		return evp_verify(key->pkey, NULL, 0, msg, msglen, sig, siglen);
	case JWT_KEY_HMAC:
		break;
	}
	return 0;
}

int
jwt_sig_verify(enum jwt_alg alg, const struct jwt_key *key, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen)
{
	int r;

	ossl_enter();
	r = sig_verify(alg, key, msg, msglen, sig, siglen);
	ossl_leave();
	return r == 1;
}

/* ---- tokens --------------------------------------------------------------------------- */

void
jwt_token_fini(struct jwt_token *t)
{
	if (t == NULL)
		return;
	json_decref(t->header);
	json_decref(t->payload);
	free(t->sig);
	memset(t, 0, sizeof(*t));
}

/* Decodes one JSON object part; duplicates anywhere inside (jansson checks every nested
 * object with JSON_REJECT_DUPLICATES) refuse it. Trailing bytes after the object refuse it. */
static enum jwt_err
json_part(const unsigned char *buf, size_t len, json_t **out)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL) {
		switch (json_error_code(&je)) {
		case json_error_duplicate_key:
			return JWT_E_DUPLICATE_KEY;
		case json_error_out_of_memory:
			return JWT_E_INTERNAL;
		default:
			return JWT_E_MALFORMED;
		}
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return JWT_E_MALFORMED;
	}
	*out = j;
	return JWT_OK;
}

/* The parser behind jwt_parse. With `raw_payload`, the payload is only checked as strict
 * base64url and not decoded as JSON (JWS test vectors sign arbitrary bytes). */
static enum jwt_err
parse_compact(const char *tok, size_t len, uint32_t allowed, int raw_payload,
    struct jwt_token *out)
{
	unsigned char buf[JWT_MAX_TOKEN / 4 * 3 + 3];
	const char *d1, *d2, *p;
	const json_t *v;
	size_t hlen, plen, slen;
	long n;
	int a;
	enum jwt_err rc = JWT_E_MALFORMED;

	memset(out, 0, sizeof(*out));
	if (tok == NULL)
		return JWT_E_MALFORMED;
	if (len > JWT_MAX_TOKEN)
		return JWT_E_TOO_LARGE;
	if ((d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL)
		return JWT_E_MALFORMED;
	p = d2 + 1;
	if (memchr(p, '.', len - (size_t)(p - tok)) != NULL)
		return JWT_E_MALFORMED;
	hlen = (size_t)(d1 - tok);
	plen = (size_t)(d2 - d1 - 1);
	slen = len - (size_t)(p - tok);
	if (hlen == 0 || slen == 0 || (plen == 0 && !raw_payload))
		return JWT_E_MALFORMED;

	if ((n = jwt_b64url_decode(tok, hlen, buf)) < 0)
		goto fail;
	if ((rc = json_part(buf, (size_t)n, &out->header)) != JWT_OK)
		goto fail;
	rc = JWT_E_MALFORMED;
	v = json_object_get(out->header, "alg");
	if (!json_is_string(v))
		goto fail;
	/* Exact, case-sensitive names: "none", "NONE", "nOnE" are all simply unknown. */
	a = jwt_alg_parse(json_string_value(v));
	if (a < 0 || !(allowed & JWT_ALG_BIT(a))) {
		rc = JWT_E_ALG_NOT_ALLOWED;
		goto fail;
	}
	out->alg = (enum jwt_alg)a;
	/* We implement no extension, so any critical one is one we would ignore. */
	if ((v = json_object_get(out->header, "crit")) != NULL &&
	    (!json_is_array(v) || json_array_size(v) != 0)) {
		rc = JWT_E_CRIT;
		goto fail;
	}
	/* RFC 7797 unencoded payloads change what is signed; never. */
	if ((v = json_object_get(out->header, "b64")) != NULL && !json_is_true(v))
		goto fail;
	if ((v = json_object_get(out->header, "kid")) != NULL) {
		if (!json_is_string(v))
			goto fail;
		out->kid = json_string_value(v);
	}
	/* jku, x5u, jwk, x5c, x5t: deliberately never looked at. */

	if ((n = jwt_b64url_decode(d1 + 1, plen, buf)) < 0)
		goto fail;
	if (!raw_payload && (rc = json_part(buf, (size_t)n, &out->payload)) != JWT_OK)
		goto fail;
	rc = JWT_E_MALFORMED;

	if ((out->sig = malloc(slen / 4 * 3 + 3)) == NULL) {
		rc = JWT_E_INTERNAL;
		goto fail;
	}
	if ((n = jwt_b64url_decode(p, slen, out->sig)) <= 0)
		goto fail;
	out->siglen = (size_t)n;
	out->signing_input = tok;
	out->signing_len = (size_t)(d2 - tok);
	return JWT_OK;
fail:
	jwt_token_fini(out);
	return rc;
}

enum jwt_err
jwt_parse(const char *tok, size_t len, uint32_t allowed, struct jwt_token *out)
{
	return parse_compact(tok, len, allowed, 0, out);
}

enum jwt_err
jwt_verify_sig(const struct jwt_token *t, const struct jwt_keyset *const *sets, size_t nsets)
{
	size_t i, j;
	int kid_seen = 0, tried = 0, internal = 0, r;

	if (t == NULL || t->sig == NULL || (unsigned)t->alg >= JWT_ALG_COUNT)
		return JWT_E_MALFORMED;
	ossl_enter();
	for (i = 0; i < nsets; i++) {
		const struct jwt_keyset *s = sets != NULL ? sets[i] : NULL;

		for (j = 0; s != NULL && j < s->n; j++) {
			const struct jwt_key *k = &s->v[j];

			if (t->kid != NULL) {
				if (k->kid == NULL || strcmp(k->kid, t->kid) != 0)
					continue;
				kid_seen = 1;
			}
			if (!(k->algs & JWT_ALG_BIT(t->alg)))
				continue;
			tried = 1;
			r = sig_verify(t->alg, k, (const unsigned char *)t->signing_input,
			    t->signing_len, t->sig, t->siglen);
			if (r == 1) {
				ossl_leave();
				return JWT_OK;
			}
			if (r < 0)
				internal = 1;
		}
	}
	ossl_leave();
	if (t->kid != NULL && !kid_seen)
		return JWT_E_UNKNOWN_KID;
	if (!tried)
		return JWT_E_NO_KEY;
	return internal ? JWT_E_INTERNAL : JWT_E_BAD_SIGNATURE;
}

/* ---- claims --------------------------------------------------------------------------- */

/* A NumericDate member as a double (exact for any plausible time: below 2^53).
 * 0 absent, 1 present and numeric, -1 present and not a JSON number. */
static int
numeric_date(const json_t *payload, const char *name, double *out)
{
	const json_t *v = json_object_get(payload, name);

	if (v == NULL)
		return 0;
	if (json_is_integer(v))
		*out = (double)json_integer_value(v);
	else if (json_is_real(v))
		*out = json_real_value(v);
	else
		return -1;
	return isfinite(*out) ? 1 : -1;
}

static int
string_claim_ok(const json_t *payload, const char *name)
{
	const json_t *v = json_object_get(payload, name);

	return v == NULL || json_is_string(v);
}

enum jwt_err
jwt_check_claims(const json_t *payload, const struct jwt_claims_policy *p, int64_t now)
{
	const json_t *aud, *iss;
	double exp = 0, nbf = 0, iat = 0;
	int has_exp, has_nbf, has_iat;
	int64_t leeway;
	size_t i, j;

	if (!json_is_object(payload) || p == NULL)
		return JWT_E_MALFORMED;
	/* Clamped so now ± leeway can never overflow whatever the configuration says. */
	leeway = p->leeway_s < 0 ? 0 : p->leeway_s > 315360000 ? 315360000 : p->leeway_s;
	if (now > INT64_MAX / 2 || now < INT64_MIN / 2)
		return JWT_E_INTERNAL;

	/* Types first: a claim of the wrong type is refused even when no policy reads it,
	 * since the filter maps claims to headers and the revocation check reads jti. */
	if ((has_exp = numeric_date(payload, "exp", &exp)) < 0 ||
	    (has_nbf = numeric_date(payload, "nbf", &nbf)) < 0 ||
	    (has_iat = numeric_date(payload, "iat", &iat)) < 0)
		return JWT_E_BAD_CLAIM;
	if (!string_claim_ok(payload, "iss") || !string_claim_ok(payload, "sub") ||
	    !string_claim_ok(payload, "jti"))
		return JWT_E_BAD_CLAIM;
	aud = json_object_get(payload, "aud");
	if (aud != NULL && !json_is_string(aud)) {
		if (!json_is_array(aud))
			return JWT_E_BAD_CLAIM;
		for (i = 0; i < json_array_size(aud); i++)
			if (!json_is_string(json_array_get(aud, i)))
				return JWT_E_BAD_CLAIM;
	}

	for (i = 0; p->required != NULL && i < p->n_required; i++)
		if (p->required[i] != NULL && json_object_get(payload, p->required[i]) == NULL)
			return JWT_E_MISSING_CLAIM;

	if (has_exp && !(exp > (double)(now - leeway)))
		return JWT_E_EXPIRED;
	if (has_nbf && nbf > (double)(now + leeway))
		return JWT_E_NOT_YET_VALID;
	if (has_iat && iat > (double)(now + leeway))
		return JWT_E_IAT_FUTURE;

	if (p->issuer != NULL) {
		iss = json_object_get(payload, "iss");
		if (iss == NULL || strcmp(json_string_value(iss), p->issuer) != 0 ||
		    json_string_length(iss) != strlen(p->issuer))
			return JWT_E_BAD_ISSUER;
	}
	if (p->audience != NULL && p->n_audience > 0) {
		int match = 0;

		if (aud == NULL)
			return JWT_E_BAD_AUDIENCE;
		for (i = 0; !match && i < p->n_audience; i++) {
			if (p->audience[i] == NULL)
				continue;
			if (json_is_string(aud))
				match = strcmp(json_string_value(aud), p->audience[i]) == 0;
			else
				for (j = 0; !match && j < json_array_size(aud); j++)
					match = strcmp(json_string_value(json_array_get(aud, j)),
					    p->audience[i]) == 0;
		}
		if (!match)
			return JWT_E_BAD_AUDIENCE;
	}
	return JWT_OK;
}

enum jwt_err
jwt_verify(const char *tok, size_t len, uint32_t allowed, const struct jwt_keyset *const *sets,
    size_t nsets, const struct jwt_claims_policy *p, int64_t now, struct jwt_token *out)
{
	enum jwt_err rc;

	if ((rc = jwt_parse(tok, len, allowed, out)) != JWT_OK)
		return rc;
	if ((rc = jwt_verify_sig(out, sets, nsets)) != JWT_OK ||
	    (p != NULL && (rc = jwt_check_claims(out->payload, p, now)) != JWT_OK))
		jwt_token_fini(out);
	return rc;
}
