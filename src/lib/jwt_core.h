/* SPDX-License-Identifier: MIT
 * jwt_core — the socket-free half of JWT verification: compact JWS parsing, key loading
 * (PEM, JWK, JWKS, HMAC secrets) and signature checks through OpenSSL 3 EVP, and the
 * registered-claims checks. All JSON through jansson. No I/O except what the caller hands
 * in, no global mutable state: every function is safe from any thread on its own objects.
 *
 * Refusals carry a precise reason (enum jwt_err) for logs and metrics; callers show clients
 * only the generic 401 (docs/jwt.md). Never trusts jku/x5u/jwk/x5c from a token header.
 */
#ifndef VISOR_JWT_CORE_H
#define VISOR_JWT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>

enum jwt_alg {
	JWT_HS256 = 0, JWT_HS384, JWT_HS512,
	JWT_RS256, JWT_RS384, JWT_RS512,
	JWT_PS256, JWT_PS384, JWT_PS512,
	JWT_ES256, JWT_ES384,
	JWT_EDDSA,
	JWT_ALG_COUNT
};
#define JWT_ALG_BIT(a) (1u << (a))

/* "HS256" → JWT_HS256 (exact, case-sensitive). -1 when unknown (including "none"). */
int jwt_alg_parse(const char *name);
const char *jwt_alg_name(enum jwt_alg a);

enum jwt_keytype { JWT_KEY_HMAC = 0, JWT_KEY_RSA, JWT_KEY_EC_P256, JWT_KEY_EC_P384, JWT_KEY_ED25519 };

/* The algorithms a key type may ever verify: HMAC → HS*, RSA → RS* and PS*, P-256 → ES256,
 * P-384 → ES384, Ed25519 → EdDSA. This is what makes algorithm confusion impossible. */
uint32_t jwt_keytype_algs(enum jwt_keytype t);

/* One verification key. Owned by its keyset; jwt_key_fini frees the fields. */
struct jwt_key {
	enum jwt_keytype type;
	char            *kid;          /* NULL when none */
	EVP_PKEY        *pkey;         /* public key (NULL for HMAC) */
	unsigned char   *secret;       /* HMAC secret (NULL otherwise) */
	size_t           secret_len;
	uint32_t         algs;         /* jwt_keytype_algs(type), narrowed by a JWK "alg" */
};
void jwt_key_fini(struct jwt_key *k);

/* A set of keys: reference-counted (atomic) so a worker can keep verifying with the set it
 * holds while a JWKS refresh installs a new one. Immutable once shared: one thread builds it
 * (jwt_keyset_add, jwt_keyset_add_jwks), publishes it, and from then on every thread only
 * reads it (OpenSSL 3 allows concurrent verifies with one EVP_PKEY). */
struct jwt_keyset {
	int             refs;
	struct jwt_key *v;
	size_t          n;
};
struct jwt_keyset *jwt_keyset_new(void);
struct jwt_keyset *jwt_keyset_ref(struct jwt_keyset *s);
void jwt_keyset_unref(struct jwt_keyset *s);               /* NULL: no-op */
/* Appends (takes ownership of *k's fields, zeroes *k). 0 or -1 (ENOMEM). */
int jwt_keyset_add(struct jwt_keyset *s, struct jwt_key *k);

/* PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY") or certificate ("CERTIFICATE").
 * RSA under 2048 bits, EC curves other than P-256/P-384, and private keys are refused.
 * 0, or -1 with *err set to a static message. */
int jwt_key_from_pem(const char *pem, size_t len, const char *kid, struct jwt_key *out,
    const char **err);
/* HMAC secret (copied). Empty secrets are refused, and so are secrets that contain a PEM
 * armour line (a public key used as an HMAC secret is the algorithm-confusion setup). algs is
 * narrowed to the HS* whose hash fits: 1..47 bytes → HS256, 48..63 → HS256/384, 64+ → all
 * three. Secrets under 32 bytes (below RFC 7518 §3.2's "at least the hash size") are
 * accepted for HS256 only, because that is what existing Node apps sign with; the security
 * lint warns about them (visor -t --strict refuses). oct JWKs stay at >= 32 bytes. */
int jwt_key_from_secret(const unsigned char *sec, size_t len, const char *kid,
    struct jwt_key *out, const char **err);
/* One JWK object (RFC 7517/7518/8037): kty RSA (n, e), EC (crv P-256/P-384, x, y; the
 * point must be on the curve), OKP (crv Ed25519, x), oct (k). A JWK holding private
 * parameters (d, p, q, ...) is refused; "use" other than "sig" and "key_ops" without
 * "verify" are refused; "alg", when present, narrows the key's algs (and must fit its type). */
int jwt_key_from_jwk(const json_t *jwk, struct jwt_key *out, const char **err);
/* A JWKS document {"keys":[...]}: adds every usable key to `set`; keys that are unusable
 * (unsupported kty/crv, private, wrong use, malformed, too weak) are skipped and counted in
 * *skipped. -1 when the document itself is not a JWKS (err set), and also when it holds
 * more than 64 keys, mixes usable oct secrets with usable asymmetric keys, or has two
 * entries of the same kty with the same kid (Wycheproof MixedKeySet / DuplicateKid). On -1 nothing is added to `set`. */
int jwt_keyset_add_jwks(struct jwt_keyset *set, const char *json, size_t len, size_t *skipped,
    const char **err);

/* Signature check of `sig` over `msg` with `key` under `alg`. 1 valid, 0 invalid (including
 * alg not allowed for this key, wrong lengths, ECDSA r or s zero or >= n, DER-encoded ECDSA).
 * HMAC compares in constant time. */
int jwt_sig_verify(enum jwt_alg alg, const struct jwt_key *key, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen);

enum jwt_err {
	JWT_OK = 0,
	JWT_E_MALFORMED,       /* not three base64url parts, bad alphabet, padding, not JSON objects */
	JWT_E_TOO_LARGE,       /* over JWT_MAX_TOKEN */
	JWT_E_DUPLICATE_KEY,   /* a JSON object with a repeated member */
	JWT_E_CRIT,            /* "crit" present and not empty */
	JWT_E_ALG_NOT_ALLOWED, /* none, unknown, or not in the allowlist */
	JWT_E_UNKNOWN_KID,     /* kid given and no key has it */
	JWT_E_NO_KEY,          /* no key of the algorithm's type */
	JWT_E_BAD_SIGNATURE,
	JWT_E_EXPIRED,
	JWT_E_NOT_YET_VALID,   /* nbf in the future beyond leeway */
	JWT_E_IAT_FUTURE,      /* iat in the future beyond leeway */
	JWT_E_BAD_ISSUER,
	JWT_E_BAD_AUDIENCE,
	JWT_E_MISSING_CLAIM,   /* a required claim is absent */
	JWT_E_BAD_CLAIM,       /* exp/nbf/iat not a number, iss not a string, aud malformed */
	JWT_E_REVOKED,         /* set by the caller (Redis check) */
	JWT_E_INTERNAL,        /* out of memory, OpenSSL failure */
	JWT_E_NO_TOKEN,        /* set by the filter: a protected route and no token at all */
	JWT_E_AMBIGUOUS,       /* set by the filter: header and cookie carry different tokens */
	JWT_E_COUNT
};
/* Stable snake_case reason code for logs and metrics: "malformed", "bad_signature",
 * "expired", "alg_not_allowed", "unknown_kid", "revoked", ... */
const char *jwt_err_name(enum jwt_err e);
/* The same name tagged for the access log: "jwt:malformed", ...; "jwt" out of range. */
const char *jwt_err_tag(enum jwt_err e);

#define JWT_MAX_TOKEN 8192

/* A parsed compact JWS. Points into the caller's token buffer (which must outlive it) and
 * owns the decoded JSON and signature. */
struct jwt_token {
	json_t        *header;
	json_t        *payload;
	enum jwt_alg   alg;
	const char    *kid;            /* from header (borrowed from `header`), NULL if absent */
	const char    *signing_input;  /* "<b64 header>.<b64 payload>" */
	size_t         signing_len;
	unsigned char *sig;
	size_t         siglen;
};

/* Strict parse: three base64url parts without padding, strict alphabet (no whitespace),
 * header and payload JSON objects without duplicate members, "alg" a string naming an
 * algorithm in `allowed` (bit set), "crit" absent or empty, "kid" a string if present,
 * "b64": false refused. Never dereferences jku/x5u/jwk/x5c. On error *out is cleared. */
enum jwt_err jwt_parse(const char *tok, size_t len, uint32_t allowed, struct jwt_token *out);
/* Frees what a parsed token owns and zeroes it; safe on a cleared token, and twice. *out of
 * jwt_parse is overwritten without being freed: fini a previous token before reusing it. */
void jwt_token_fini(struct jwt_token *t);

/* Finds the key and checks the signature: with a kid, only keys with that kid are tried
 * (none → JWT_E_UNKNOWN_KID); without, every key whose algs include the token's alg. */
enum jwt_err jwt_verify_sig(const struct jwt_token *t, const struct jwt_keyset *const *sets,
    size_t nsets);

struct jwt_claims_policy {
	const char        *issuer;       /* NULL: not checked */
	const char *const *audience;     /* NULL/0: not checked; match any */
	size_t             n_audience;
	int64_t            leeway_s;
	const char *const *required;     /* claim names that must be present */
	size_t             n_required;
};
/* exp (now < exp + leeway), nbf (now >= nbf - leeway), iat (<= now + leeway), iss, aud
 * (string or array of strings), required claims. Numeric dates must be JSON numbers. */
enum jwt_err jwt_check_claims(const json_t *payload, const struct jwt_claims_policy *p,
    int64_t now);

/* The whole pipeline: jwt_parse, jwt_verify_sig, then jwt_check_claims when `p` is not NULL.
 * On JWT_OK, *out holds the token (the caller reads claims, then jwt_token_fini); on any
 * error *out is cleared. `tok` must outlive *out. */
enum jwt_err jwt_verify(const char *tok, size_t len, uint32_t allowed,
    const struct jwt_keyset *const *sets, size_t nsets, const struct jwt_claims_policy *p,
    int64_t now, struct jwt_token *out);

/* base64url without padding (strict). Returns decoded length or -1. out must hold
 * len*3/4+3 bytes. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
