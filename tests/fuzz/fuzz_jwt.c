/* SPDX-License-Identifier: MIT
 * libFuzzer target for jwt_core. Each input is tried as a compact JWS (jwt_parse, then
 * jwt_verify_sig against a fixed keyset holding one key of every type, then
 * jwt_check_claims on whatever payload parsed, since claims code must be safe before a
 * signature is known good), as a JWKS document, as a PEM file and as base64url text.
 * The keys are public test vectors (RFC 7515 A.2/A.3, RFC 8037 A, Wycheproof); the HMAC
 * secret is a fixed string, so seeds signed with it reach the MAC comparison.
 *
 * Inputs starting with '{' are also read as "<header JSON>\n<payload JSON>\n<signature>":
 * the harness base64url-encodes the parts itself (mutating JSON inside base64 is hard for
 * a fuzzer), and with an empty signature signs the result with the HMAC secret, so random
 * headers and claims reach the checks that run only after a good signature.
 *
 * Build (until tests/fuzz/run.sh exists):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc $(pkg-config --cflags jansson openssl) \
 *     tests/fuzz/fuzz_jwt.c src/lib/jwt_core.c $(pkg-config --libs jansson openssl) -o /tmp/fuzz_jwt
 *   /tmp/fuzz_jwt tests/fuzz/corpus/jwt/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "lib/jwt_core.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJc"
    "yQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG"
    "6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg"
    "665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91"
    "kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHv"
    "RVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec384\",\"crv\":\"P-384\",\"x\":\"LaV92hCJJ2pUP5_9rAv_DZdsrXHrcoDn2b_Z"
    "_uS9svIPR_-IgnQ4l3LZjMV1ITiq\",\"y\":\"S20FTWnc8-JexJ34cHFeNIg7GDYZfXb4rZYuePZXG7x0B7DWCR-eTY"
    "jwFCdEBhdP\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIa"
    "aPcHURo\"}"
    "]}";

/* 64 bytes: serves HS256, HS384 and HS512. */
static const char fuzz_secret[] =
    "visor-fuzz-hmac-secret-0123456789abcdef0123456789abcdef012345678";

static struct jwt_keyset *fuzz_rsa_ec, *fuzz_hmac;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct jwt_key k;
	const char *err = NULL;
	size_t skipped = 0;

	(void)argc;
	(void)argv;
	fuzz_rsa_ec = jwt_keyset_new();
	fuzz_hmac = jwt_keyset_new();
	if (fuzz_rsa_ec == NULL || fuzz_hmac == NULL ||
	    jwt_keyset_add_jwks(fuzz_rsa_ec, fuzz_jwks, sizeof(fuzz_jwks) - 1, &skipped, &err) != 0 ||
	    skipped != 0 || fuzz_rsa_ec->n != 4 ||
	    jwt_key_from_secret((const unsigned char *)fuzz_secret, sizeof(fuzz_secret) - 1, "hs",
	    &k, &err) != 0 || jwt_keyset_add(fuzz_hmac, &k) != 0)
		abort();
	return 0;
}

static size_t
b64u_enc(const unsigned char *in, size_t n, char *o)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, k = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		o[k++] = tab[v >> 18];
		o[k++] = tab[(v >> 12) & 63];
		o[k++] = tab[(v >> 6) & 63];
		o[k++] = tab[v & 63];
	}
	if (n - i == 1) {
		o[k++] = tab[in[i] >> 2];
		o[k++] = tab[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		o[k++] = tab[v >> 10];
		o[k++] = tab[(v >> 4) & 63];
		o[k++] = tab[(v & 15) << 2];
	}
	return k;
}

/* The structured mode: builds and checks a token from raw JSON parts. */
static void
structured(const uint8_t *data, size_t size, const struct jwt_keyset *const *sets,
    const struct jwt_claims_policy *pol)
{
	const uint8_t *nl1, *nl2;
	size_t hl, pl, sl, k;
	char *tok;
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	struct jwt_token t;

	if ((nl1 = memchr(data, '\n', size)) == NULL ||
	    (nl2 = memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - data))) == NULL)
		return;
	hl = (size_t)(nl1 - data);
	pl = (size_t)(nl2 - nl1 - 1);
	sl = size - (size_t)(nl2 + 1 - data);
	if ((tok = malloc((hl + pl + sl + 64) / 3 * 4 + 16)) == NULL)
		return;
	k = b64u_enc(data, hl, tok);
	tok[k++] = '.';
	k += b64u_enc(nl1 + 1, pl, tok + k);
	if (sl == 0) {
		if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, fuzz_secret,
		    sizeof(fuzz_secret) - 1, (unsigned char *)tok, k, mac, sizeof(mac), &maclen) == NULL)
			abort();
		tok[k++] = '.';
		k += b64u_enc(mac, maclen, tok + k);
	} else {
		tok[k++] = '.';
		k += b64u_enc(nl2 + 1, sl, tok + k);
	}
	if (jwt_verify(tok, k, (1u << JWT_ALG_COUNT) - 1, sets, 2, pol, 1700000000, &t) == JWT_OK)
		jwt_token_fini(&t);
	free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const aud[] = { "api", "other" };
	static const char *const req[] = { "exp", "sub" };
	const struct jwt_claims_policy pol = {
		.issuer = "https://issuer", .audience = aud, .n_audience = 2, .leeway_s = 30,
		.required = req, .n_required = 2,
	};
	const struct jwt_keyset *sets[] = { fuzz_rsa_ec, fuzz_hmac };
	const char *tok = (const char *)data, *err = NULL;
	struct jwt_token t;
	struct jwt_keyset *s;
	struct jwt_key k;
	unsigned char *buf;
	size_t skipped;

	/* 1. as a token */
	if (jwt_parse(tok, size, (1u << JWT_ALG_COUNT) - 1, &t) == JWT_OK) {
		(void)jwt_verify_sig(&t, sets, 2);
		(void)jwt_verify_sig(&t, sets + 1, 1);
		(void)jwt_check_claims(t.payload, &pol, 1700000000);
		jwt_token_fini(&t);
	}
	if (size > 0 && data[0] == '{')
		structured(data, size, sets, &pol);
	/* 2. as a JWKS document */
	if ((s = jwt_keyset_new()) != NULL) {
		(void)jwt_keyset_add_jwks(s, tok, size, &skipped, &err);
		jwt_keyset_unref(s);
	}
	/* 3. as a PEM file */
	if (jwt_key_from_pem(tok, size, "k", &k, &err) == 0)
		jwt_key_fini(&k);
	/* 4. as base64url */
	if ((buf = malloc(size / 4 * 3 + 3)) != NULL) {
		(void)jwt_b64url_decode(tok, size, buf);
		free(buf);
	}
	/* Every call must leave the thread's OpenSSL error queue as it found it (empty). */
	if (ERR_peek_error() != 0)
		abort();
	return 0;
}
