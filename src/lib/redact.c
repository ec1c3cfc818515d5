/* SPDX-License-Identifier: MIT
 * redact — one forward pass over the text. The pass keeps what it has not written yet
 * (s[done..i)) and writes it in spans, so the common case, a text with no secret, is one
 * copy (or one JSON escape). At each byte it knows three things, enough for every rule:
 *   - the start of the current run of key characters [A-Za-z0-9_.-] (a key, a word, a
 *     base64url run), checked once, when the run ends, against what follows it;
 *   - the "line context": whether the last thing that was not a blank started a line (a
 *     newline, JSON's \n, an HTML '>' or ';'), opened an object ('{' ','), was a quote, or
 *     anything else — a "key: value" line counts only at the start of one;
 *   - the quote token that ended right before the current run, if any, so "key", 'key',
 *     \"key\" and &quot;key&quot; are JSON keys when the same quote closes them.
 * Each rule either consumes what it reads (the secret is replaced, the pass goes on after
 * it) or reads a bounded stretch that the pass reads once more; the two unbounded scans that
 * can fail (a JWT-shaped run without its dots, a URL authority without '@') are never
 * repeated over the same bytes. Hence O(n) whatever the input.
 */
#include "lib/redact.h"

#include <string.h>

#define NONE ((size_t)-1)
/* the bytes of a key that count: a longer run is not a name anyone wrote */
#define KEY_MAX 64

enum qkind { Q_NONE = 0, Q_DQ, Q_SQ, Q_BT, Q_EDQ, Q_ESQ, Q_HDQ, Q_HSQ };
enum lctx { LC_LINE = 0, LC_ESC, LC_OPEN, LC_QUOTE, LC_OTHER };
enum form { F_JSON = 0, F_KV, F_LINE };

struct rd {
	struct sbuf *out;
	const char  *s;
	size_t       n;
	size_t       done;      /* s[0..done) is in out */
	size_t       count;
	unsigned     flags;
};

/* Secret-naming words: only as a whole word of the key (auth, not author or oauth). The
 * substrings (password, token...) are in key_secret's switch. */
static const struct {
	const char *w;
	size_t      l;
} key_words[] = {
	{ "auth", 4 }, { "pass", 4 }, { "pw", 2 }, { "sig", 3 }, { "sid", 3 }, { "jwt", 3 },
	{ "otp", 3 }, { "creds", 5 },
};
/* auth-params of a challenge: "Bearer realm=" is not a credential */
static const char *const auth_params[] = {
	"realm", "error", "error_description", "error_uri", "scope", "charset", "nonce",
	"opaque", "algorithm", "qop", "stale", "domain", "username", "uri", "response", "cnonce",
	"nc", "userhash",
};

/* ---- bytes ------------------------------------------------------------------------ */

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_b64u(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

/* Byte classes for the pass: K a key character [A-Za-z0-9_.-]; S a byte that can follow a
 * key as its separator (a blank, ':', '=', or the start of a quote token: " ' ` \ &). */
#define K 1
#define S 2
static const unsigned char cls[256] = {
	/*        0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f */
	/* 0x */  0, 0, 0, 0, 0, 0, 0, 0, 0, S, 0, 0, 0, 0, 0, 0,
	/* 1x */  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 2x */  S, 0, S, 0, 0, 0, S, S, 0, 0, 0, 0, 0, K, K, 0,   /* sp " & ' - . */
	/* 3x */  K, K, K, K, K, K, K, K, K, K, S, 0, 0, S, 0, 0,   /* 0-9 : = */
	/* 4x */  0, K, K, K, K, K, K, K, K, K, K, K, K, K, K, K,
	/* 5x */  K, K, K, K, K, K, K, K, K, K, K, 0, S, 0, 0, K,   /* \ _ */
	/* 6x */  S, K, K, K, K, K, K, K, K, K, K, K, K, K, K, K,   /* ` */
	/* 7x */  K, K, K, K, K, K, K, K, K, K, K, 0, 0, 0, 0, 0,
};
#undef K
#undef S
#define C_KEY 1
#define C_SEP 2

static int
is_key(unsigned char c)
{
	return cls[c] & C_KEY;
}

/* RFC 9110 token68, '=' padding apart */
static int
is_t68(unsigned char c)
{
	return is_key(c) || c == '~' || c == '+' || c == '/';
}

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
has(const char *s, size_t n, size_t i, const char *lit)
{
	size_t l = strlen(lit);

	return n - i >= l && memcmp(s + i, lit, l) == 0;
}

/* The quote token at s[i]: its length (0: none) and kind. */
static size_t
quote_at(const char *s, size_t n, size_t i, int *k)
{
	switch (s[i]) {
	case '"':
		*k = Q_DQ;
		return 1;
	case '\'':
		*k = Q_SQ;
		return 1;
	case '`':
		*k = Q_BT;
		return 1;
	case '\\':
		if (i + 1 < n && s[i + 1] == '"') {
			*k = Q_EDQ;
			return 2;
		}
		if (i + 1 < n && s[i + 1] == '\'') {
			*k = Q_ESQ;
			return 2;
		}
		return 0;
	case '&':
		*k = Q_HDQ;
		if (has(s, n, i, "&quot;"))
			return 6;
		if (has(s, n, i, "&#34;"))
			return 5;
		*k = Q_HSQ;
		if (has(s, n, i, "&#39;"))
			return 5;
		if (has(s, n, i, "&#x27;"))
			return 6;
		return 0;
	default:
		return 0;
	}
}

static int
quote_is(const char *s, size_t n, size_t i, int kind)
{
	int k;

	return quote_at(s, n, i, &k) > 0 && k == kind;
}

/* ---- output --------------------------------------------------------------------------- */

static void
put(struct rd *r, size_t a, size_t b)
{
	if (b <= a)
		return;
	if (r->flags & REDACT_JSON)
		sbuf_add_json(r->out, r->s + a, b - a);
	else
		sbuf_add(r->out, r->s + a, b - a);
}

/* s[a..b) becomes the marker. Spans are disjoint, so the memmem costs O(n) in all. */
static void
replace(struct rd *r, size_t a, size_t b)
{
	put(r, r->done, a);
	/* a span around a marker is the marker met again, not a new secret */
	if (memmem(r->s + a, b - a, REDACT_MARK, REDACT_MARK_LEN) == NULL)
		r->count++;
	sbuf_add(r->out, REDACT_MARK, REDACT_MARK_LEN);
	r->done = b;
}

/* ---- keys --------------------------------------------------------------------------- */

static int
word_sep(unsigned char c)
{
	return c == '_' || c == '-' || c == '.';
}

/* Whether k[j] starts a word of the key: after _ - . or at a lower→Upper change. */
static int
word_start(const char *k, size_t j)
{
	return j == 0 || word_sep((unsigned char)k[j - 1]) ||
	    (is_upper((unsigned char)k[j]) && !is_upper((unsigned char)k[j - 1]));
}

/* Whether a word of the key ends at e (the next one starts, or a digit follows). */
static int
word_end(const char *k, size_t m, size_t e)
{
	return e == m || word_sep((unsigned char)k[e]) || is_digit((unsigned char)k[e]) ||
	    (is_upper((unsigned char)k[e]) && !is_upper((unsigned char)k[e - 1]));
}

#define AT(lit) (left >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0)

/* How sure a key's name is of naming a secret. */
enum { KS_NONE = 0, KS_WORD, KS_NAME, KS_STRONG };

/* How the key k[0..m) (m <= KEY_MAX) names a secret: KS_STRONG (Authorization, Cookie: its
 * "key: value" line is one wherever it starts), KS_NAME (password, token...: a substring),
 * KS_WORD (auth, jwt...: a whole word, which a message's "jwt: ..." prefix also is), or
 * KS_NONE. One pass over the key, lower-cased with _ - . removed, looking for the substrings
 * only where their first letter is; then the words, only where a word starts. weak: 0 when
 * only a strong key would count (a "key:" in the middle of a sentence). */
static int
key_secret(const char *k, size_t m, int weak)
{
	char norm[KEY_MAX];
	const char *p;
	size_t i, j, l, nl = 0, left;
	int found = 0, strong = 0;

	for (i = 0; i < m; i++) {
		unsigned char c = (unsigned char)k[i];
		if (is_alpha(c) || is_digit(c))
			norm[nl++] = ascii_lower((char)c);
	}
	/* TokenExpiredError, SessionException: names of errors, not keys */
	if ((nl >= 5 && memcmp(norm + nl - 5, "error", 5) == 0) ||
	    (nl >= 9 && memcmp(norm + nl - 9, "exception", 9) == 0))
		return KS_NONE;
	for (i = 0; i < nl; i++) {
		p = norm + i;
		left = nl - i;
		switch (*p) {
		case 'a':
			if (AT("authorization"))
				strong = 1;
			else if (AT("apikey") || AT("accesskey") || AT("accountkey"))
				found = 1;
			break;
		case 'c':
			if (AT("cookie"))
				strong = 1;
			else if (AT("credential") || AT("csrf"))
				found = 1;
			break;
		case 'p':
			if (AT("passw") || AT("passphrase") || AT("pwd") || AT("private"))
				found = 1;
			break;
		case 's':
			if (AT("secret") || AT("session") || AT("signature"))
				found = 1;
			break;
		case 't':
			if (AT("token"))
				found = 1;
			break;
		default:
			break;
		}
	}
	if (strong)
		return KS_STRONG;
	if (found)
		return KS_NAME;
	if (!weak)
		return KS_NONE;
	for (j = 0; j < m; j++) {
		if (!is_alpha((unsigned char)k[j]) || !word_start(k, j))
			continue;
		for (i = 0; i < ARRAY_LEN(key_words); i++) {
			l = key_words[i].l;
			if (j + l <= m && ascii_casecmp_n(k + j, l, key_words[i].w, l) == 0 &&
			    word_end(k, m, j + l))
				return KS_WORD;
		}
	}
	return KS_NONE;
}

#undef AT

/* null, true, false, undefined: a value that tells something and hides nothing */
static int
literal(const char *v, size_t l)
{
	return (l == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "true", 4) == 0)) ||
	    (l == 5 && memcmp(v, "false", 5) == 0) || (l == 9 && memcmp(v, "undefined", 9) == 0);
}

/* ---- values ------------------------------------------------------------------------- */

/* The end of a quoted value's content from c (just after an opening quote of kind k): the
 * closing quote, or the line break or end of text that cuts it short. */
static size_t
quoted_end(const char *s, size_t n, size_t c, int k)
{
	char qc = k == Q_DQ || k == Q_EDQ ? '"' : k == Q_BT ? '`' : '\'';
	size_t i = c;

	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n' || ch == '\r')
			return i;
		switch (k) {
		case Q_DQ:
		case Q_SQ:
		case Q_BT:
			if (ch == '\\') {
				i += 2;
				continue;
			}
			if (ch == (unsigned char)qc)
				return i;
			break;
		case Q_EDQ:
		case Q_ESQ:
			/* a string inside a JSON string: \" closes it, \\\" is a quote within */
			if (ch == '\\' && i + 1 < n) {
				if (s[i + 1] == qc)
					return i;
				if (s[i + 1] == '\\' && i + 3 < n && s[i + 2] == '\\' && s[i + 3] == qc)
					i += 4;
				else
					i += 2;
				continue;
			}
			if (ch == '"')       /* the enclosing string ends */
				return i;
			break;
		default:                     /* HTML entities: no escapes inside */
			if (ch == '<' || (ch == '&' && quote_is(s, n, i, k)))
				return i;
			break;
		}
		i++;
	}
	return n;
}

/* The end of an object or array starting at v: after its closing bracket, or the end of the
 * text. Strings in raw quotes are skipped, so a bracket inside one does not count. */
static size_t
container_end(const char *s, size_t n, size_t v)
{
	size_t i = v, depth = 0;

	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (--depth == 0)
				return i + 1;
		} else if (ch == '"' || ch == '\'') {
			for (i++; i < n && (unsigned char)s[i] != ch; i++)
				if (s[i] == '\\')
					i++;
			if (i >= n)
				return n;
		} else if (ch == '\\') {
			i++;
		}
		i++;
	}
	return n;
}

/* The end of a "key: value" line's value from v; inq: the quote that closes the string the
 * key sits in (Q_NONE: none); open: after '{' or ',', where , } ) also end it. */
static size_t
line_end(const char *s, size_t n, size_t v, int inq, int open)
{
	size_t i;

	for (i = v; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\r')
			break;
		if (c == '\\' && i + 1 < n && (s[i + 1] == 'n' || s[i + 1] == 'r'))
			break;
		if (c == '<' && i + 1 < n && (is_alpha((unsigned char)s[i + 1]) || s[i + 1] == '/' ||
		    s[i + 1] == '!'))
			break;
		/* not ']': the marker ends with one */
		if (open && (c == ',' || c == '}' || c == ')'))
			break;
		if (inq != Q_NONE && (c == '"' || c == '\'' || c == '`' || c == '\\' || c == '&') &&
		    quote_is(s, n, i, inq))
			break;
	}
	while (i > v && is_blank((unsigned char)s[i - 1]))
		i--;
	return i;
}

static int
kv_stop(unsigned char c)
{
	return c <= ' ' || c == 0x7f || c == '&' || c == ';' || c == ',' || c == '"' || c == '\'' ||
	    c == '`' || c == '<' || c == '>' || c == '\\';
}

static int
scalar_stop(unsigned char c)
{
	return c <= ' ' || c == 0x7f || c == ',' || c == '}' || c == ']' || c == '"' || c == '\'' ||
	    c == '`' || c == '<' || c == '\\';
}

/* ---- the rules ---------------------------------------------------------------------- */

/* "Bearer" / "Basic" ended at s[i], a blank: the credential after it, as [*a, *b). */
static int
auth_scheme(const struct rd *r, size_t i, size_t *a, size_t *b)
{
	const char *s = r->s;
	size_t n = r->n, j = i, t, p;
	int low = 1;
	unsigned char c;

	while (j < n && is_blank((unsigned char)s[j]))
		j++;
	t = j;
	while (j < n && is_t68((unsigned char)s[j])) {
		if (!(s[j] >= 'a' && s[j] <= 'z'))
			low = 0;
		j++;
	}
	if (j == t)
		return 0;
	p = j;
	while (j < n && s[j] == '=')
		j++;
	if (j < n) {
		c = (unsigned char)s[j];
		if (!(c <= ' ' || c == 0x7f || c == ',' || c == ';' || c == '"' || c == '\'' ||
		    c == '`' || c == '\\' || c == '<' || c == '>' || c == ')' || c == ']' ||
		    c == '}' || c == '&'))
			return 0;
		/* realm="api": an auth-param, not a token */
		if (j == p + 1 && (c == '"' || c == '\'' || c == '\\')) {
			size_t k;
			for (k = 0; k < ARRAY_LEN(auth_params); k++)
				if (ascii_casecmp_n(s + t, p - t, auth_params[k],
				    strlen(auth_params[k])) == 0)
					return 0;
		}
		if (low && j == p && p - t < 20)
			return 0;
	} else if (!(r->flags & REDACT_CUT) && low && j == p && p - t < 20) {
		return 0;
	}
	*a = t;
	*b = j;
	return 1;
}

/* The key run s[ks..ke) ended at s[ke]: a secret value after it, as [*a, *b), the pass
 * going on at *next. ctx/cq: the line context (and its quote) where the run started; q: the
 * quote token right before the run, if any. */
static int
key_rule(const struct rd *r, size_t ks, size_t ke, int ctx, int cq, int q, size_t *a,
    size_t *b, size_t *next)
{
	const char *s = r->s;
	size_t n = r->n, m = ke - ks, j, v, ql, e;
	int k, form, strong, ks_level, inq;

	if (is_blank((unsigned char)s[ke]) &&
	    ((m == 6 && ascii_casecmp_n(s + ks, 6, "bearer", 6) == 0) ||
	    (m == 5 && ascii_casecmp_n(s + ks, 5, "basic", 5) == 0))) {
		if (!auth_scheme(r, ke, a, b))
			return 0;
		*next = *b;
		return 1;
	}
	/* the separator, which says the form */
	j = ke;
	if (q != Q_NONE && quote_is(s, n, j, q)) {
		j += quote_at(s, n, j, &k);
		while (j < n && is_ws((unsigned char)s[j]))
			j++;
		if (j >= n || (s[j] != ':' && s[j] != '='))
			return 0;
		j += s[j] == '=' && j + 1 < n && s[j + 1] == '>' ? 2 : 1;
		while (j < n && is_ws((unsigned char)s[j]))
			j++;
		form = F_JSON;
	} else if (s[ke] == ':') {
		/* not a scheme's "://", not C++'s or IPv6's "::" */
		if (ke + 1 < n && (s[ke + 1] == ':' || s[ke + 1] == '/' ||
		    (s[ke + 1] == '\\' && ke + 2 < n && s[ke + 2] == '/')))
			return 0;
		j = ke + 1;
		while (j < n && is_blank((unsigned char)s[j]))
			j++;
		form = F_LINE;
	} else {
		while (j < n && is_blank((unsigned char)s[j]))
			j++;
		if (j >= n || s[j] != '=' || (j + 1 < n && s[j + 1] == '='))
			return 0;
		j += j + 1 < n && s[j + 1] == '>' ? 2 : 1;
		while (j < n && is_blank((unsigned char)s[j]))
			j++;
		form = F_KV;
	}
	if (m > KEY_MAX) {
		ks = ke - KEY_MAX;
		m = KEY_MAX;
	}
	/* a "key: value" in a sentence counts only for Authorization and Cookie */
	ks_level = key_secret(s + ks, m, !(form == F_LINE && ctx == LC_OTHER));
	if (ks_level == KS_NONE)
		return 0;
	strong = ks_level == KS_STRONG;
	if (form == F_LINE && !strong && ctx == LC_OTHER)
		return 0;
	v = j;
	if (v >= n)
		return 0;
	inq = q != Q_NONE ? q : ctx == LC_QUOTE ? cq : ctx == LC_ESC ? Q_DQ : Q_NONE;
	if (form == F_LINE && strong) {
		/* a header line: all of it, whatever quotes it holds */
		*a = v;
		*b = *next = line_end(s, n, v, inq, ctx == LC_OPEN);
	} else if ((ql = quote_at(s, n, v, &k)) > 0) {
		*a = v + ql;
		*b = *next = quoted_end(s, n, *a, k);
	} else if (s[v] == '{' || s[v] == '[') {
		*a = v;
		*b = *next = container_end(s, n, v);
	} else {
		if (form == F_LINE) {
			e = line_end(s, n, v, inq, ctx == LC_OPEN);
			/* "jwt: claim not forwarded": a message's prefix, not a key; a word-named
			 * key's line value counts only as one token */
			if (ks_level == KS_WORD && (memchr(s + v, ' ', e - v) != NULL ||
			    memchr(s + v, '\t', e - v) != NULL))
				return 0;
		} else {
			for (e = v; e < n; e++)
				if (form == F_KV ? kv_stop((unsigned char)s[e]) :
				    scalar_stop((unsigned char)s[e]))
					break;
		}
		if (literal(s + v, e - v))
			return 0;
		*a = v;
		*b = *next = e;
	}
	return *b > *a;
}

/* The length of the scheme separator at s[j] (0: none): "://", JSON's ":\/\/", or one
 * slash after a scheme of two alphanumerics or more ("https:/u:p@h" is how a URL looks in a
 * path after a proxy, visor included, merged its slashes; "C:/x" is not one). */
static size_t
scheme_sep(const char *s, size_t n, size_t j)
{
	if (s[j] != ':')
		return 0;
	if (j + 2 < n && s[j + 1] == '/' && s[j + 2] == '/')
		return 3;
	if (j + 4 < n && s[j + 1] == '\\' && s[j + 2] == '/' && s[j + 3] == '\\' && s[j + 4] == '/')
		return 5;
	if (j < 2 || !(is_alpha((unsigned char)s[j - 1]) || is_digit((unsigned char)s[j - 1])) ||
	    !(is_alpha((unsigned char)s[j - 2]) || is_digit((unsigned char)s[j - 2])))
		return 0;
	if (j + 1 < n && s[j + 1] == '/')
		return 2;
	if (j + 2 < n && s[j + 1] == '\\' && s[j + 2] == '/')
		return 3;
	return 0;
}

/* A ':' before the first '/', '?' or '#' that is not a port's: user:pa/ss@. */
static int
userinfo_shape(const char *s, size_t colon, size_t sep)
{
	size_t k;

	if (colon == NONE || colon > sep)
		return 0;
	if (colon + 1 == sep)
		return 1;
	for (k = colon + 1; k < sep; k++)
		if (!is_digit((unsigned char)s[k]))
			return 1;
	return 0;
}

/* At the ':' of "://": the userinfo, as [*a, *b) (*b is its '@' or the end of the text). */
static int
url_rule(const struct rd *r, size_t i, size_t *a, size_t *b)
{
	const char *s = r->s;
	size_t n = r->n, t, j, at = NONE, at0 = NONE, sep = NONE, colon = NONE, l;
	unsigned char c;

	if ((l = scheme_sep(s, n, i)) == 0)
		return 0;
	t = i + l;
	for (j = t; j < n; j++) {
		c = (unsigned char)s[j];
		if (c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '`' || c == '<' || c == '>')
			break;
		if (c == '\\') {
			if (j + 1 < n && s[j + 1] == '/') {
				if (sep == NONE)
					sep = j;
				j++;
				continue;
			}
			if (j + 1 < n && s[j + 1] == '\\') {
				j++;
				continue;
			}
			break;
		}
		if (c == ':' && scheme_sep(s, n, j))
			break;               /* the next URL's: its own scan */
		if (c == '@') {
			at = j;
			if (sep == NONE)
				at0 = j;
		} else if ((c == '/' || c == '?' || c == '#') && sep == NONE)
			sep = j;
		else if (c == ':' && sep == NONE && colon == NONE)
			colon = j;
	}
	if (at != NONE && at > t && (sep == NONE || sep > at || userinfo_shape(s, colon, sep))) {
		*a = t;
		*b = at;
		return 1;
	}
	/* the last '@' is in the path or the query: the authority's own, if any */
	if (at0 != NONE && at0 > t) {
		*a = t;
		*b = at0;
		return 1;
	}
	if (at == NONE && j == n && j > t && (r->flags & REDACT_CUT) &&
	    (sep == NONE || userinfo_shape(s, colon, sep))) {
		*a = t;
		*b = n;
		return 1;
	}
	return 0;
}

/* At "eyJ": the JWT-shaped token's end in *b, or (none) where a retry is useless in *wm. */
static int
jwt_rule(const struct rd *r, size_t i, size_t *b, size_t *wm)
{
	const char *s = r->s;
	size_t n = r->n, j, dots = 0;

	for (j = i + 3; j < n; j++) {
		if (s[j] == '.')
			dots++;
		else if (!is_b64u((unsigned char)s[j]))
			break;
	}
	if (dots >= 2) {
		/* a sentence's full stop is not a segment */
		while (dots > 2 && s[j - 1] == '.') {
			j--;
			dots--;
		}
		*b = j;
		return 1;
	}
	if (j == n && (r->flags & REDACT_CUT) && j - i >= 8) {
		*b = n;
		return 1;
	}
	*wm = j;
	return 0;
}

static int
next_ctx(unsigned char c, int cur)
{
	switch (c) {
	case '\n': case '\r': case '>': case ';':
		return LC_LINE;
	case ' ': case '\t': case '\f': case '\v':
		return cur;
	case '{': case ',':
		return LC_OPEN;
	default:
		return LC_OTHER;
	}
}

/* ---- the pass ------------------------------------------------------------------------- */

static const unsigned char trig[256] = {
	[':'] = 1, ['='] = 1, [' '] = 1, ['\t'] = 1, ['J'] = 2,
};

int
redact_maybe(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;

	/* one load and one test per byte: the access log runs this on every path */
	for (; p < e; p++) {
		if (trig[*p] == 0)
			continue;
		if (trig[*p] == 1 || (p - (const unsigned char *)s >= 2 && p[-1] == 'y' && p[-2] == 'e'))
			return 1;
	}
	return 0;
}

size_t
redact_append(struct sbuf *out, const char *s, size_t n, unsigned flags)
{
	struct rd r = { .out = out, .s = s, .n = n, .flags = flags };
	size_t i = 0, run = NONE, jwt_wm = 0, qend = NONE, a, b, nx, ql;
	int lctx = LC_LINE, lq = Q_NONE, run_ctx = LC_LINE, run_cq = Q_NONE, run_q = Q_NONE, k;
	unsigned char c;

	if (n == 0)
		return 0;
	if (!redact_maybe(s, n)) {
		put(&r, 0, n);
		return 0;
	}
	while (i < n) {
		c = (unsigned char)s[i];
		if (is_key(c)) {
			if (c == 'e' && i >= jwt_wm && i + 2 < n && s[i + 1] == 'y' && s[i + 2] == 'J' &&
			    jwt_rule(&r, i, &b, &jwt_wm)) {
				replace(&r, i, b);
				i = b;
				run = NONE;
				lctx = LC_OTHER;
				continue;
			}
			if (run == NONE) {
				run = i;
				run_ctx = lctx;
				run_cq = lq;
				run_q = qend == i ? lq : Q_NONE;
			}
			i++;
			continue;
		}
		if (run != NONE) {
			if ((cls[c] & C_SEP) &&
			    key_rule(&r, run, i, run_ctx, run_cq, run_q, &a, &b, &nx)) {
				replace(&r, a, b);
				i = nx;
				run = NONE;
				lctx = LC_OTHER;
				continue;
			}
			/* a YAML list's "- " keeps the line's start */
			for (a = run; a < i && s[a] == '-'; a++)
				;
			if (a < i)
				lctx = LC_OTHER;
			run = NONE;
		}
		if (c == ':' && url_rule(&r, i, &a, &b)) {
			replace(&r, a, b);
			i = b;
			lctx = LC_OTHER;
			continue;
		}
		if ((ql = quote_at(s, n, i, &k)) > 0) {
			lctx = LC_QUOTE;
			lq = k;
			i += ql;
			qend = i;
			continue;
		}
		if (c == '\\' && i + 1 < n) {
			/* JSON escapes: \n and \r end a line inside a string, the others are one
			 * character each; a backslash before anything else is a byte like any */
			switch (s[i + 1]) {
			case 'n': case 'r':
				lctx = LC_ESC;
				i += 2;
				continue;
			case 't':
				i += 2;
				continue;
			case '\\': case '/': case 'b': case 'f': case 'u':
				lctx = LC_OTHER;
				i += 2;
				continue;
			default:
				break;
			}
		}
		lctx = next_ctx(c, lctx);
		i++;
	}
	put(&r, r.done, n);
	return r.count;
}
