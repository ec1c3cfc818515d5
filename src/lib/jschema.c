/* SPDX-License-Identifier: MIT
 * jschema — strict JSON loading and a JSON Schema (2020-12 subset) validator for request
 * bodies. See jschema.h for the contract and docs/body-checks.md for the supported subset.
 *
 * Layout of this file:
 *   1. small helpers (UTF-8 length and encoding, numbers, JSON pointers)
 *   2. the pattern engine (lib/regex) and the formats (lib/jsformat) on their own, as tests
 *      and the fuzzer reach them
 *   3. the schema compiler: every keyword is known or refused; positions of compile errors
 *      are found again in the schema text
 *   4. loading a body: nesting pre-scan, jansson, forbidden keys
 *   5. validation: the first failure in document order, within a work budget
 *
 * Never put a body value into a message; never trust a compiled schema from anywhere but
 * jschema_compile.
 */
#include "lib/jschema.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsformat.h"

/* ==== 1. helpers ======================================================================== */

/* Code points in a valid UTF-8 string: every byte that is not a continuation byte. */
static uint64_t
utf8_count(const char *s, size_t n)
{
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static size_t
utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int
is_integral(double d)
{
	return isfinite(d) && floor(d) == d;
}

/* A schema number as short as it round-trips ("13", "0.1", "1e+300"). */
static void
fmt_num(double d, char *buf, size_t len)
{
	int prec;

	if (is_integral(d) && fabs(d) < 1e17) {
		snprintf(buf, len, "%.0f", d);
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* A JSON number as a double; 0 when `x` is not a number. */
static int
jnum(const json_t *x, double *d)
{
	if (json_is_real(x)) {
		*d = json_real_value(x);
		return 1;
	}
	if (json_is_integer(x)) {
		*d = (double)json_integer_value(x);
		return 1;
	}
	return 0;
}

/* A JSON pointer builder with a hard size bound; past it the pointer ends in "...". */
struct ptrbuf {
	char   *p;
	size_t  cap, len;
	int     cut;
};

static void
ptr_raw(struct ptrbuf *b, const char *s, size_t n)
{
	size_t room;

	if (b->cut)
		return;
	room = b->cap - 1 - b->len;
	if (n > room) {
		/* Cut at a UTF-8 boundary, leaving room for "...". */
		size_t k = room > 3 ? room - 3 : 0;
		while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
		if (k > n)
			k = n;
		memcpy(b->p + b->len, s, k);
		b->len += k;
		memcpy(b->p + b->len, "...", b->cap - 1 - b->len >= 3 ? 3 : b->cap - 1 - b->len);
		b->len += b->cap - 1 - b->len >= 3 ? 3 : b->cap - 1 - b->len;
		b->cut = 1;
	} else {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
	b->p[b->len] = '\0';
}

/* Appends "/" and the RFC 6901 escaped reference token (~ as ~0, / as ~1). */
static void
ptr_key(struct ptrbuf *b, const char *k, size_t n)
{
	size_t i, s = 0;

	ptr_raw(b, "/", 1);
	for (i = 0; i < n; i++) {
		if (k[i] != '~' && k[i] != '/')
			continue;
		ptr_raw(b, k + s, i - s);
		ptr_raw(b, k[i] == '~' ? "~0" : "~1", 2);
		s = i + 1;
	}
	ptr_raw(b, k + s, n - s);
}

static void
ptr_idx(struct ptrbuf *b, size_t idx)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "/%zu", idx);

	ptr_raw(b, t, (size_t)n);
}

/* ==== 2. patterns and formats on their own ================================================ */

int
jschema_regex_search(const char *pat, size_t plen, const char *subject, size_t slen, char *err,
    size_t errlen)
{
	struct arena a;
	const struct regex *re;
	struct regex_scratch *sc;
	const char *why = NULL;
	uint64_t budget = JSCHEMA_WORK_BUDGET + (uint64_t)JSCHEMA_WORK_PER_BYTE * slen;
	int rc;

	arena_init(&a, 8192);
	if ((re = regex_compile(pat, plen, &a, &why)) == NULL) {
		if (err && errlen)
			snprintf(err, errlen, "%s", why);
		arena_free(&a);
		return -1;
	}
	if ((sc = regex_scratch_new(&a, regex_size(re))) == NULL) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		arena_free(&a);
		return -1;
	}
	rc = regex_search(re, sc, subject, slen, &budget);
	arena_free(&a);
	return rc < 0 ? -2 : rc;
}

int
jschema_format_check(const char *name, const char *s, size_t len)
{
	enum jsformat f = jsformat_lookup(name);

	return f == JSFORMAT_NONE ? -1 : jsformat_check(f, s, len);
}

/* ==== 3. the schema compiler ================================================================= */

enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_NUM = 16, T_STR = 32, T_INT = 64 };

/* Presence bits for keywords with a scalar value. */
enum {
	H_TYPE = 1u << 0, H_CONST = 1u << 1, H_ENUM = 1u << 2, H_MINIMUM = 1u << 3,
	H_MAXIMUM = 1u << 4, H_XMIN = 1u << 5, H_XMAX = 1u << 6, H_MULT = 1u << 7,
	H_MINLEN = 1u << 8, H_MAXLEN = 1u << 9, H_MINITEMS = 1u << 10, H_MAXITEMS = 1u << 11,
	H_UNIQUE = 1u << 12, H_MINPROPS = 1u << 13, H_MAXPROPS = 1u << 14,
};

struct js_node;

struct js_prop {
	const char     *key;
	size_t          klen;
	struct js_node *s;
};

struct js_patprop {
	const struct regex *re;
	struct js_node     *s;
};

struct js_node {
	int                 boolean;     /* -1: an object schema; 0: false; 1: true */
	uint32_t            has;
	unsigned            types;
	const char         *type_text;   /* "a string or null" */
	const json_t       *cnst;
	const json_t       *enm;
	double              minimum, maximum, xmin, xmax, mult;
	uint64_t            min_len, max_len, min_items, max_items, min_props, max_props;
	const struct regex *pattern;
	enum jsformat       format;
	struct js_prop     *props;       /* sorted by key */
	size_t              nprops;
	struct js_patprop  *pprops;
	size_t              npprops;
	struct js_node     *addl;
	struct js_node     *pnames;
	const char        **req;
	size_t             *reqlen;
	size_t              nreq;
	struct js_node    **prefix;
	size_t              nprefix;
	struct js_node     *items;
	struct js_node    **all, **any, **one;
	size_t              nall, nany, none;
	struct js_node     *not;
	struct js_node     *ref;
	const char         *ref_text;    /* until resolved */
	const json_t       *src;
	const char         *where;       /* pointer into the schema document */
	int                 color, ipdepth;
	struct js_node     *next;        /* every node, for resolution and checks */
};

struct jschema {
	struct arena     a;
	json_t          *doc;
	struct js_node  *root;
	struct js_node  *nodes;
	uint32_t         max_prog;
};

struct cseg {
	const char *key;      /* NULL: an array index */
	size_t      idx;
};

struct cctx {
	struct jschema      *s;
	struct jschema_cerr *err;
	const char          *text;
	size_t               len;
	int                  failed;
	struct cseg          path[JSCHEMA_MAX_SCHEMA_DEPTH * 2 + 8];
	int                  plen;
};

static void locate(const char *text, size_t len, const struct cseg *path, int plen, int *line,
    int *col);

static void
cpath_render(const struct cseg *path, int plen, char *out, size_t cap)
{
	struct ptrbuf b = { out, cap, 0, 0 };
	int i;

	out[0] = '\0';
	for (i = 0; i < plen; i++) {
		if (path[i].key)
			ptr_key(&b, path[i].key, strlen(path[i].key));
		else
			ptr_idx(&b, path[i].idx);
	}
}

/* Records the first compile error, at the current path (plus `key` when not NULL). */
static void cerr(struct cctx *cc, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
cerr(struct cctx *cc, const char *key, const char *fmt, ...)
{
	va_list ap;
	int plen = cc->plen;

	if (cc->failed)
		return;
	cc->failed = 1;
	if (key && plen < (int)ARRAY_LEN(cc->path)) {
		cc->path[plen].key = key;
		cc->path[plen].idx = 0;
		plen++;
	}
	cpath_render(cc->path, plen, cc->err->pointer, sizeof(cc->err->pointer));
	locate(cc->text, cc->len, cc->path, plen, &cc->err->line, &cc->err->col);
	va_start(ap, fmt);
	vsnprintf(cc->err->msg, sizeof(cc->err->msg), fmt, ap);
	va_end(ap);
}

static int
cpush_key(struct cctx *cc, const char *k)
{
	if (cc->plen >= (int)ARRAY_LEN(cc->path)) {
		cerr(cc, NULL, "schema nested too deeply");
		return -1;
	}
	cc->path[cc->plen].key = k;
	cc->path[cc->plen].idx = 0;
	cc->plen++;
	return 0;
}

static int
cpush_idx(struct cctx *cc, size_t i)
{
	if (cc->plen >= (int)ARRAY_LEN(cc->path)) {
		cerr(cc, NULL, "schema nested too deeply");
		return -1;
	}
	cc->path[cc->plen].key = NULL;
	cc->path[cc->plen].idx = i;
	cc->plen++;
	return 0;
}

static struct js_node *compile_node(struct cctx *cc, const json_t *j);

/* A keyword's value that must be a non-negative integer. */
/* Whether keyword kw's value passed its JSON type test `ok`; if not, after "\"kw\" must
 * be <what>". */
static int
c_is(struct cctx *cc, const char *kw, int ok, const char *what)
{
	if (!ok)
		cerr(cc, kw, "\"%s\" must be %s", kw, what);
	return ok;
}

/* Zeroed arena room for n (at least one: an empty value still gets a pointer) elements of
 * `size` bytes for keyword kw; NULL after "out of memory" at kw. */
static void *
c_alloc(struct cctx *cc, const char *kw, size_t n, size_t size)
{
	void *p = arena_zalloc(&cc->s->a, (n ? n : 1) * size);

	if (p == NULL)
		cerr(cc, kw, "out of memory");
	return p;
}

static int
c_count(struct cctx *cc, const char *kw, const json_t *v, uint64_t *out)
{
	double d;

	if (!jnum(v, &d) || !is_integral(d) || d < 0 || d > 9007199254740992.0) {
		cerr(cc, kw, "\"%s\" must be a non-negative integer", kw);
		return -1;
	}
	*out = (uint64_t)d;
	return 0;
}

static int
c_number(struct cctx *cc, const char *kw, const json_t *v, double *out)
{
	if (!jnum(v, out) || !isfinite(*out)) {
		cerr(cc, kw, "\"%s\" must be a number", kw);
		return -1;
	}
	return 0;
}

/* A keyword whose value is one schema. */
static struct js_node *
c_sub(struct cctx *cc, const char *kw, const json_t *v)
{
	struct js_node *n;

	if (cpush_key(cc, kw) < 0)
		return NULL;
	n = compile_node(cc, v);
	cc->plen--;
	return n;
}

/* A keyword whose value is a non-empty array of schemas. */
static struct js_node **
c_subs(struct cctx *cc, const char *kw, const json_t *v, size_t *np)
{
	struct js_node **out;
	size_t i, n;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		cerr(cc, kw, "\"%s\" must be a non-empty array of schemas", kw);
		return NULL;
	}
	n = json_array_size(v);
	if ((out = c_alloc(cc, kw, n, sizeof(*out))) == NULL)
		return NULL;
	if (cpush_key(cc, kw) < 0)
		return NULL;
	for (i = 0; i < n; i++) {
		if (cpush_idx(cc, i) < 0)
			return NULL;
		out[i] = compile_node(cc, json_array_get(v, i));
		cc->plen--;
		if (out[i] == NULL)
			return NULL;
	}
	cc->plen--;
	*np = n;
	return out;
}

static const struct regex *
c_pattern(struct cctx *cc, const char *kw, const char *src, size_t len)
{
	const struct regex *re;
	const char *why = NULL;

	re = regex_compile(src, len, &cc->s->a, &why);
	if (re == NULL) {
		cerr(cc, kw, "unsupported or invalid pattern: %s", why);
		return NULL;
	}
	/* one scratch per check serves every pattern of the schema */
	if (regex_size(re) > cc->s->max_prog)
		cc->s->max_prog = regex_size(re);
	return re;
}

static int
cmp_prop(const void *a, const void *b)
{
	const struct js_prop *x = a, *y = b;
	size_t m = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, m);

	if (c != 0)
		return c;
	return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static const char *const type_names[] = { "null", "boolean", "object", "array", "number",
	"string", "integer" };
static const char *const type_text[] = { "null", "a boolean", "an object", "an array",
	"a number", "a string", "an integer" };

static int
c_type(struct cctx *cc, struct js_node *n, const json_t *v)
{
	const json_t *t;
	size_t i, k, cnt = 0, nv;
	char buf[160];
	size_t bl = 0;
	unsigned bits = 0;

	nv = json_is_array(v) ? json_array_size(v) : 1;
	if ((!json_is_string(v) && !json_is_array(v)) || nv == 0)
		goto bad;
	for (i = 0; i < nv; i++) {
		t = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_string(t))
			goto bad;
		for (k = 0; k < ARRAY_LEN(type_names); k++)
			if (strcmp(json_string_value(t), type_names[k]) == 0)
				break;
		if (k == ARRAY_LEN(type_names))
			goto bad;
		if (bits & (1u << k)) {
			cerr(cc, "type", "\"type\" lists \"%s\" twice", type_names[k]);
			return -1;
		}
		bits |= 1u << k;
	}
	n->types = bits;
	buf[0] = '\0';
	for (k = 0; k < ARRAY_LEN(type_names); k++) {
		if (!(bits & (1u << k)))
			continue;
		cnt++;
		bl += (size_t)snprintf(buf + bl, sizeof(buf) - bl, "%s%s",
		    cnt == 1 ? "" : (cnt == (size_t)__builtin_popcount(bits) ? " or " : ", "),
		    type_text[k]);
		if (bl >= sizeof(buf))
			bl = sizeof(buf) - 1;
	}
	n->type_text = arena_strndup(&cc->s->a, buf, strlen(buf));
	if (n->type_text == NULL) {
		cerr(cc, "type", "out of memory");
		return -1;
	}
	n->has |= H_TYPE;
	return 0;
bad:
	cerr(cc, "type", "\"type\" must be one of null, boolean, object, array, number, string, "
	    "integer, or a non-empty array of them");
	return -1;
}

static int
c_properties(struct cctx *cc, struct js_node *n, const json_t *v)
{
	const char *k;
	const json_t *sv;
	size_t i = 0;

	if (!c_is(cc, "properties", json_is_object(v), "an object of schemas"))
		return -1;
	n->nprops = json_object_size(v);
	if ((n->props = c_alloc(cc, "properties", n->nprops, sizeof(*n->props))) == NULL)
		return -1;
	if (cpush_key(cc, "properties") < 0)
		return -1;
	json_object_foreach((json_t *)(uintptr_t)v, k, sv) {
		n->props[i].key = k;
		n->props[i].klen = strlen(k);
		n->props[i].s = c_sub(cc, k, sv);
		if (n->props[i].s == NULL)
			return -1;
		i++;
	}
	cc->plen--;
	qsort(n->props, n->nprops, sizeof(*n->props), cmp_prop);
	return 0;
}

static int
c_pattern_properties(struct cctx *cc, struct js_node *n, const json_t *v)
{
	const char *k;
	const json_t *sv;
	const struct regex *re;
	size_t i = 0;

	if (!c_is(cc, "patternProperties", json_is_object(v), "an object of schemas"))
		return -1;
	n->npprops = json_object_size(v);
	n->pprops = c_alloc(cc, "patternProperties", n->npprops, sizeof(*n->pprops));
	if (n->pprops == NULL)
		return -1;
	if (cpush_key(cc, "patternProperties") < 0)
		return -1;
	json_object_foreach((json_t *)(uintptr_t)v, k, sv) {
		re = c_pattern(cc, k, k, strlen(k));
		if (re == NULL)
			return -1;
		n->pprops[i].re = re;
		n->pprops[i].s = c_sub(cc, k, sv);
		if (n->pprops[i].s == NULL)
			return -1;
		i++;
	}
	cc->plen--;
	return 0;
}

static int
c_required(struct cctx *cc, struct js_node *n, const json_t *v)
{
	size_t i, j;

	if (!json_is_array(v))
		goto bad;
	n->nreq = json_array_size(v);
	if ((n->req = c_alloc(cc, "required", n->nreq, sizeof(*n->req))) == NULL ||
	    (n->reqlen = c_alloc(cc, "required", n->nreq, sizeof(*n->reqlen))) == NULL)
		return -1;
	for (i = 0; i < n->nreq; i++) {
		const json_t *e = json_array_get(v, i);
		if (!json_is_string(e))
			goto bad;
		n->req[i] = json_string_value(e);
		n->reqlen[i] = json_string_length(e);
		for (j = 0; j < i; j++)
			if (n->reqlen[j] == n->reqlen[i] && memcmp(n->req[j], n->req[i], n->reqlen[i]) == 0) {
				cerr(cc, "required", "\"required\" lists a name twice");
				return -1;
			}
	}
	return 0;
bad:
	cerr(cc, "required", "\"required\" must be an array of strings");
	return -1;
}

static int
c_ref(struct cctx *cc, struct js_node *n, const json_t *v)
{
	const char *r;

	if (!c_is(cc, "$ref", json_is_string(v), "a string"))
		return -1;
	r = json_string_value(v);
	if (strcmp(r, "#") != 0 && (strncmp(r, "#/$defs/", 8) != 0 || r[8] == '\0' ||
	    strchr(r + 8, '/') != NULL || strchr(r, '%') != NULL ||
	    json_string_length(v) != strlen(r))) {
		cerr(cc, "$ref", "\"$ref\" must be \"#\" or \"#/$defs/<name>\" (local references only)");
		return -1;
	}
	n->ref_text = r;
	return 0;
}

/* Annotations: accepted and ignored. */
static const char *const kw_ignored[] = { "title", "description", "$schema", "$id", "$comment",
	"default", "examples" };

/* The bounds: one number (c_number, a double) or one count (c_count, a uint64_t), stored
 * at `off` in the node, with the flag that says it was given. */
static const struct {
	const char *name;
	uint32_t    flag;
	size_t      off;
	int         count;
} kw_bounds[] = {
	{ "minimum", H_MINIMUM, offsetof(struct js_node, minimum), 0 },
	{ "maximum", H_MAXIMUM, offsetof(struct js_node, maximum), 0 },
	{ "exclusiveMinimum", H_XMIN, offsetof(struct js_node, xmin), 0 },
	{ "exclusiveMaximum", H_XMAX, offsetof(struct js_node, xmax), 0 },
	{ "minLength", H_MINLEN, offsetof(struct js_node, min_len), 1 },
	{ "maxLength", H_MAXLEN, offsetof(struct js_node, max_len), 1 },
	{ "minItems", H_MINITEMS, offsetof(struct js_node, min_items), 1 },
	{ "maxItems", H_MAXITEMS, offsetof(struct js_node, max_items), 1 },
	{ "minProperties", H_MINPROPS, offsetof(struct js_node, min_props), 1 },
	{ "maxProperties", H_MAXPROPS, offsetof(struct js_node, max_props), 1 },
};

static int
c_keyword(struct cctx *cc, struct js_node *n, const char *k, const json_t *v)
{
	size_t i;
	double d;
	char *f;

	for (i = 0; i < ARRAY_LEN(kw_ignored); i++)
		if (strcmp(k, kw_ignored[i]) == 0)
			return 0;
	if (strcmp(k, "type") == 0)
		return c_type(cc, n, v);
	if (strcmp(k, "const") == 0) {
		n->cnst = v;
		n->has |= H_CONST;
		return 0;
	}
	if (strcmp(k, "enum") == 0) {
		if (!c_is(cc, k, json_is_array(v), "an array"))
			return -1;
		n->enm = v;
		n->has |= H_ENUM;
		return 0;
	}
	for (i = 0; i < ARRAY_LEN(kw_bounds); i++) {
		if (strcmp(k, kw_bounds[i].name) != 0)
			continue;
		n->has |= kw_bounds[i].flag;
		f = (char *)n + kw_bounds[i].off;
		return kw_bounds[i].count ? c_count(cc, k, v, (uint64_t *)(void *)f) :
		    c_number(cc, k, v, (double *)(void *)f);
	}
	if (strcmp(k, "multipleOf") == 0) {
		n->has |= H_MULT;
		if (!jnum(v, &d) || !isfinite(d) || d <= 0) {
			cerr(cc, k, "\"multipleOf\" must be a number greater than 0");
			return -1;
		}
		n->mult = d;
		return 0;
	}
	if (strcmp(k, "uniqueItems") == 0) {
		if (!c_is(cc, k, json_is_boolean(v), "a boolean"))
			return -1;
		if (json_is_true(v))
			n->has |= H_UNIQUE;
		return 0;
	}
	if (strcmp(k, "pattern") == 0) {
		if (!c_is(cc, k, json_is_string(v), "a string"))
			return -1;
		n->pattern = c_pattern(cc, k, json_string_value(v), json_string_length(v));
		return n->pattern ? 0 : -1;
	}
	if (strcmp(k, "format") == 0) {
		if (!c_is(cc, k, json_is_string(v), "a string"))
			return -1;
		n->format = jsformat_lookup(json_string_value(v));
		if (n->format == JSFORMAT_NONE) {
			cerr(cc, k, "unsupported format \"%.64s\" (supported: " JSFORMAT_NAMES ")",
			    json_string_value(v));
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "properties") == 0)
		return c_properties(cc, n, v);
	if (strcmp(k, "patternProperties") == 0)
		return c_pattern_properties(cc, n, v);
	if (strcmp(k, "additionalProperties") == 0)
		return (n->addl = c_sub(cc, k, v)) ? 0 : -1;
	if (strcmp(k, "propertyNames") == 0)
		return (n->pnames = c_sub(cc, k, v)) ? 0 : -1;
	if (strcmp(k, "required") == 0)
		return c_required(cc, n, v);
	if (strcmp(k, "items") == 0) {
		if (json_is_array(v)) {
			cerr(cc, k, "\"items\" must be a schema (2020-12); use \"prefixItems\" for a "
			    "tuple");
			return -1;
		}
		return (n->items = c_sub(cc, k, v)) ? 0 : -1;
	}
	if (strcmp(k, "prefixItems") == 0)
		return (n->prefix = c_subs(cc, k, v, &n->nprefix)) ? 0 : -1;
	if (strcmp(k, "allOf") == 0)
		return (n->all = c_subs(cc, k, v, &n->nall)) ? 0 : -1;
	if (strcmp(k, "anyOf") == 0)
		return (n->any = c_subs(cc, k, v, &n->nany)) ? 0 : -1;
	if (strcmp(k, "oneOf") == 0)
		return (n->one = c_subs(cc, k, v, &n->none)) ? 0 : -1;
	if (strcmp(k, "not") == 0)
		return (n->not = c_sub(cc, k, v)) ? 0 : -1;
	if (strcmp(k, "$ref") == 0)
		return c_ref(cc, n, v);
	if (strcmp(k, "$defs") == 0) {
		const char *dk;
		const json_t *dv;
		if (!c_is(cc, k, json_is_object(v), "an object of schemas"))
			return -1;
		if (cpush_key(cc, k) < 0)
			return -1;
		json_object_foreach((json_t *)(uintptr_t)v, dk, dv)
			if (c_sub(cc, dk, dv) == NULL)
				return -1;
		cc->plen--;
		return 0;
	}
	cerr(cc, k, "unsupported keyword \"%.64s\"", k);
	return -1;
}

static struct js_node *
compile_node(struct cctx *cc, const json_t *j)
{
	struct js_node *n;
	const char *k;
	const json_t *v;
	char where[256];

	if (cc->failed)
		return NULL;
	n = arena_zalloc(&cc->s->a, sizeof(*n));
	if (n == NULL) {
		cerr(cc, NULL, "out of memory");
		return NULL;
	}
	n->src = j;
	n->boolean = -1;
	cpath_render(cc->path, cc->plen, where, sizeof(where));
	n->where = arena_strndup(&cc->s->a, where, strlen(where));
	n->next = cc->s->nodes;
	cc->s->nodes = n;
	if (json_is_boolean(j)) {
		n->boolean = json_is_true(j);
		return n;
	}
	if (!json_is_object(j)) {
		cerr(cc, NULL, "a schema must be an object or a boolean");
		return NULL;
	}
	json_object_foreach((json_t *)(uintptr_t)j, k, v)
		if (c_keyword(cc, n, k, v) < 0)
			return NULL;
	return n;
}

/* Resolves every $ref to its node. */
static int
resolve_refs(struct cctx *cc)
{
	struct js_node *n, *m;
	const json_t *target, *defs;
	char name[512];

	for (n = cc->s->nodes; n; n = n->next) {
		if (n->ref_text == NULL)
			continue;
		if (strcmp(n->ref_text, "#") == 0) {
			n->ref = cc->s->root;
			continue;
		}
		/* the name is a JSON pointer token: ~1 is '/', ~0 is '~' */
		{
			const char *r = n->ref_text + 8;
			size_t o = 0;
			for (; *r && o < sizeof(name) - 1; r++) {
				if (r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
					name[o++] = r[1] == '0' ? '~' : '/';
					r++;
				} else {
					name[o++] = *r;
				}
			}
			name[o] = '\0';
		}
		defs = json_object_get(cc->s->doc, "$defs");
		target = defs ? json_object_get(defs, name) : NULL;
		for (m = cc->s->nodes; target && m; m = m->next)
			if (m->src == target && m->where && strncmp(m->where, "/$defs/", 7) == 0)
				break;
		if (target == NULL || m == NULL) {
			snprintf(cc->err->pointer, sizeof(cc->err->pointer), "%s/$ref", n->where);
			cc->err->line = cc->err->col = 0;
			snprintf(cc->err->msg, sizeof(cc->err->msg), "\"$ref\": no schema at %.128s",
			    n->ref_text);
			cc->failed = 1;
			return -1;
		}
		n->ref = m;
	}
	return 0;
}

/* Longest chain of in-place applicators ($ref, allOf, anyOf, oneOf, not) from `n`; -1 on a
 * cycle (a schema that applies itself to the same value forever), -2 when over the bound. */
static int
ip_depth(struct js_node *n, int level)
{
	struct js_node **lists[3];
	size_t counts[3], i, l;
	int d, best = 0;

	if (n->color == 2)
		return n->ipdepth;
	if (n->color == 1)
		return -1;
	if (level > JSCHEMA_MAX_INPLACE)
		return -2;
	n->color = 1;
	lists[0] = n->all;
	counts[0] = n->nall;
	lists[1] = n->any;
	counts[1] = n->nany;
	lists[2] = n->one;
	counts[2] = n->none;
	for (l = 0; l < 3; l++)
		for (i = 0; i < counts[l]; i++) {
			d = ip_depth(lists[l][i], level + 1);
			if (d < 0)
				return d;
			best = MAX(best, d);
		}
	if (n->not) {
		d = ip_depth(n->not, level + 1);
		if (d < 0)
			return d;
		best = MAX(best, d);
	}
	if (n->ref) {
		d = ip_depth(n->ref, level + 1);
		if (d < 0)
			return d;
		best = MAX(best, d);
	}
	n->color = 2;
	n->ipdepth = best + 1;
	if (n->ipdepth > JSCHEMA_MAX_INPLACE)
		return -2;
	return n->ipdepth;
}

static int
check_inplace(struct cctx *cc)
{
	struct js_node *n;
	int d;

	for (n = cc->s->nodes; n; n = n->next) {
		d = ip_depth(n, 0);
		if (d >= 0)
			continue;
		snprintf(cc->err->pointer, sizeof(cc->err->pointer), "%s", n->where);
		cc->err->line = cc->err->col = 0;
		snprintf(cc->err->msg, sizeof(cc->err->msg), "%s", d == -1 ?
		    "$ref cycle: the schema applies itself to the same value without descending "
		    "into a property or item" :
		    "more than 32 levels of $ref/allOf/anyOf/oneOf/not applied to one value");
		cc->failed = 1;
		return -1;
	}
	return 0;
}

/* Nesting of a JSON text, counted on its bytes (strings skipped). 0 when within `max`. */
static int
nesting_over(const char *buf, size_t len, int max)
{
	size_t i;
	int depth = 0, in_str = 0;

	for (i = 0; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '[' || c == '{') {
			if (++depth > max)
				return 1;
		} else if (c == ']' || c == '}')
			depth--;
	}
	return 0;
}

struct jschema *
jschema_compile(const char *text, size_t len, struct jschema_cerr *err)
{
	struct jschema *s;
	struct cctx cc;
	json_error_t je;
	struct js_node *n;

	memset(err, 0, sizeof(*err));
	if (len > JSCHEMA_MAX_SCHEMA_SIZE) {
		snprintf(err->msg, sizeof(err->msg), "schema larger than 1 MiB");
		return NULL;
	}
	if (nesting_over(text, len, JSCHEMA_MAX_SCHEMA_DEPTH)) {
		snprintf(err->msg, sizeof(err->msg), "schema nested deeper than %d levels",
		    JSCHEMA_MAX_SCHEMA_DEPTH);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	arena_init(&s->a, 16384);
	s->doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
	    JSON_DECODE_INT_AS_REAL, &je);
	if (s->doc == NULL) {
		err->line = je.line > 0 ? je.line : 0;
		err->col = je.column > 0 ? je.column : 0;
		/* jansson's text names the token, which is the schema author's own */
		snprintf(err->msg, sizeof(err->msg), "invalid JSON: %s", je.text);
		goto fail;
	}
	memset(&cc, 0, sizeof(cc));
	cc.s = s;
	cc.err = err;
	cc.text = text;
	cc.len = len;
	s->root = compile_node(&cc, s->doc);
	if (s->root == NULL || cc.failed)
		goto fail;
	if (resolve_refs(&cc) < 0 || check_inplace(&cc) < 0)
		goto fail;
	for (n = s->nodes; n; n = n->next)
		n->color = 0;
	return s;
fail:
	if (err->msg[0] == '\0')
		snprintf(err->msg, sizeof(err->msg), "invalid schema");
	jschema_free(s);
	return NULL;
}

void
jschema_free(struct jschema *s)
{
	if (s == NULL)
		return;
	json_decref(s->doc);
	arena_free(&s->a);
	free(s);
}

/* Whether `n`, or what it applies in place as a conjunction ($ref, allOf), lists required
 * members or is the false schema. */
static int
node_requires(const struct js_node *n, int depth)
{
	size_t i;

	if (n == NULL || depth > JSCHEMA_MAX_INPLACE + 1)
		return 0;
	if (n->boolean >= 0)
		return n->boolean == 0;
	if (n->nreq > 0 || node_requires(n->ref, depth + 1))
		return 1;
	for (i = 0; i < n->nall; i++)
		if (node_requires(n->all[i], depth + 1))
			return 1;
	return 0;
}

int
jschema_root_requires(const struct jschema *s)
{
	return s != NULL && node_requires(s->root, 0);
}

/* ---- positions of compile errors in the schema text ---- */

struct scan {
	const unsigned char *s;
	size_t               n, i;
};

static void
sc_ws(struct scan *t)
{
	while (t->i < t->n && (t->s[t->i] == ' ' || t->s[t->i] == '\t' || t->s[t->i] == '\n' ||
	    t->s[t->i] == '\r'))
		t->i++;
}

static void
sc_string(struct scan *t)
{
	t->i++;                                   /* the quote */
	while (t->i < t->n && t->s[t->i] != '"')
		t->i += t->s[t->i] == '\\' ? 2 : 1;
	t->i++;
}

/* Skips one value (the text is valid JSON: jansson read it first). */
static void
sc_value(struct scan *t)
{
	int depth = 0;
	unsigned char c;

	sc_ws(t);
	if (t->i >= t->n)
		return;
	c = t->s[t->i];
	if (c != '"' && c != '{' && c != '[') {
		while (t->i < t->n && (c = t->s[t->i]) != 0 && strchr(",]} \t\r\n", c) == NULL)
			t->i++;
		return;
	}
	/* a string, an object or an array: a string alone leaves depth at 0, ending the loop */
	do {
		if (t->i >= t->n)
			return;
		c = t->s[t->i];
		if (c == '"') {
			sc_string(t);
			continue;
		}
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		t->i++;
	} while (depth > 0);
}

/* Whether the JSON string at t->i (with its quotes) decodes to `key`. Advances past it. */
static int
sc_key_eq(struct scan *t, const char *key)
{
	size_t kl = strlen(key), o = 0;
	char u[4];
	int eq = 1;

	t->i++;
	while (t->i < t->n && t->s[t->i] != '"') {
		uint32_t cp;
		size_t w;
		if (t->s[t->i] == '\\' && t->i + 1 < t->n) {
			unsigned char e = t->s[t->i + 1];
			t->i += 2;
			switch (e) {
			case 'b': cp = 8; break;
			case 'f': cp = 12; break;
			case 'n': cp = 10; break;
			case 'r': cp = 13; break;
			case 't': cp = 9; break;
			case 'u': {
				long v = 0;
				int k;
				for (k = 0; k < 4 && t->i < t->n; k++, t->i++)
					v = v * 16 + MAX(hex_digit(t->s[t->i]), 0);
				if (v >= 0xd800 && v <= 0xdbff && t->i + 6 <= t->n && t->s[t->i] == '\\' &&
				    t->s[t->i + 1] == 'u') {
					long lo = 0;
					t->i += 2;
					for (k = 0; k < 4 && t->i < t->n; k++, t->i++)
						lo = lo * 16 + MAX(hex_digit(t->s[t->i]), 0);
					v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
				}
				cp = (uint32_t)v;
				break;
			}
			default: cp = e; break;
			}
			w = utf8_put(u, cp);
			if (o + w > kl || memcmp(key + o, u, w) != 0)
				eq = 0;
			o += w;
			continue;
		}
		if (o >= kl || key[o] != (char)t->s[t->i])
			eq = 0;
		o++;
		t->i++;
	}
	t->i++;
	return eq && o == kl;
}

static void
locate(const char *text, size_t len, const struct cseg *path, int plen, int *line, int *col)
{
	struct scan t = { (const unsigned char *)text, len, 0 };
	size_t at = 0, i, k;
	int seg;

	*line = *col = 0;
	if (text == NULL)
		return;
	sc_ws(&t);
	at = t.i;
	for (seg = 0; seg < plen; seg++) {
		sc_ws(&t);
		if (t.i >= t.n)
			return;
		if (path[seg].key) {
			int found = 0;
			if (t.s[t.i] != '{')
				return;
			t.i++;
			for (;;) {
				sc_ws(&t);
				if (t.i >= t.n || t.s[t.i] != '"')
					return;
				at = t.i;
				found = sc_key_eq(&t, path[seg].key);
				sc_ws(&t);
				t.i++;                     /* ':' */
				if (found)
					break;
				sc_value(&t);
				sc_ws(&t);
				if (t.i >= t.n || t.s[t.i] != ',')
					return;
				t.i++;
			}
		} else {
			if (t.s[t.i] != '[')
				return;
			t.i++;
			for (k = 0; k < path[seg].idx; k++) {
				sc_value(&t);
				sc_ws(&t);
				if (t.i >= t.n || t.s[t.i] != ',')
					return;
				t.i++;
			}
			sc_ws(&t);
			at = t.i;
		}
	}
	*line = 1;
	*col = 1;
	for (i = 0; i < at && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

/* ==== 4. loading a body ===================================================================== */

struct vseg {
	const char *key;      /* NULL: array index */
	size_t      klen;
	size_t      idx;
	uint32_t    ord;      /* position among its siblings, for document order */
};

static void
result_clear(struct jschema_result *res)
{
	res->msg[0] = '\0';
	res->pointer[0] = '\0';
	res->rule = NULL;
}

/* Renders path[0..n) (+ member) as a pointer, "/" for the root. */
static void
render_ptr(const struct vseg *path, int n, const char *member, size_t mlen, char *out, size_t cap)
{
	struct ptrbuf b = { out, MIN(cap, JSCHEMA_MAX_POINTER + 1), 0, 0 };
	int i;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (path[i].key)
			ptr_key(&b, path[i].key, path[i].klen);
		else
			ptr_idx(&b, path[i].idx);
	}
	if (member)
		ptr_key(&b, member, mlen);
	if (b.len == 0)
		ptr_raw(&b, "/", 1);
}

static void
result_set(struct jschema_result *res, const char *rule, const char *text)
{
	res->rule = rule;
	if (res->pointer[0])
		snprintf(res->msg, sizeof(res->msg), "Invalid body: %s %s", res->pointer, text);
	else
		snprintf(res->msg, sizeof(res->msg), "%s", text);
}

static int
key_forbidden(const char *k)
{
	return strcmp(k, "__proto__") == 0 || strcmp(k, "constructor") == 0 ||
	    strcmp(k, "prototype") == 0;
}

/* The first forbidden key in document order (pre-order). 1 when found (res set). */
static int
forbidden_walk(const json_t *x, struct vseg *path, int depth, struct jschema_result *res)
{
	const char *k;
	json_t *val;
	size_t i;

	if (depth > JSCHEMA_MAX_DEPTH)
		return 0;           /* cannot happen: nesting was checked before parsing */
	if (json_is_object(x)) {
		json_object_foreach((json_t *)(uintptr_t)x, k, val) {
			path[depth].key = k;
			path[depth].klen = strlen(k);
			if (key_forbidden(k)) {
				render_ptr(path, depth + 1, NULL, 0, res->pointer, sizeof(res->pointer));
				result_set(res, "forbidden-key", "is a forbidden key");
				return 1;
			}
			if (forbidden_walk(val, path, depth + 1, res))
				return 1;
		}
	} else if (json_is_array(x)) {
		for (i = 0; i < json_array_size(x); i++) {
			path[depth].key = NULL;
			path[depth].idx = i;
			if (forbidden_walk(json_array_get(x, i), path, depth + 1, res))
				return 1;
		}
	}
	return 0;
}

enum jschema_status
jschema_load(const char *buf, size_t len, json_t **out, struct jschema_result *res)
{
	struct vseg path[JSCHEMA_MAX_DEPTH + 2];
	json_error_t je;
	json_t *doc;

	*out = NULL;
	result_clear(res);
	if (nesting_over(buf, len, JSCHEMA_MAX_DEPTH)) {
		result_set(res, "depth", "Invalid body: nested deeper than 64 levels");
		return JSCHEMA_INVALID;
	}
	doc = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
	    JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
	if (doc == NULL) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return JSCHEMA_NOMEM;
		/* never jansson's text: it quotes the body */
		result_set(res, "json", "Invalid JSON");
		return JSCHEMA_INVALID;
	}
	if (forbidden_walk(doc, path, 0, res)) {
		json_decref(doc);
		return JSCHEMA_INVALID;
	}
	*out = doc;
	return JSCHEMA_OK;
}

/* ==== 5. validation ========================================================================= */

#define MAX_CALLS 4096      /* nested validate() calls; the compile-time bounds stay far below */

struct vctx {
	const struct jschema  *s;
	struct arena          *a;
	struct jschema_result *res;
	uint64_t               budget;
	int                    over, oom;
	int                    collect;   /* 1: record the first failure; 0: a yes/no probe */
	int                    calls;
	struct vseg            path[JSCHEMA_MAX_DEPTH + 2];
	int                    plen;
	int                    has_err;
	uint32_t               err_ord[JSCHEMA_MAX_DEPTH + 2];
	int                    err_len;
	struct regex_scratch  *rx;        /* made on the first pattern, for max_prog */
};

static int
charge(struct vctx *v, uint64_t units)
{
	if (v->budget < units) {
		v->budget = 0;
		v->over = 1;
		return 0;
	}
	v->budget -= units;
	return 1;
}

/* Whether the current location comes before the recorded failure in document order (a
 * value precedes its members; siblings go by position). True when nothing is recorded. */
static int
cur_before_err(const struct vctx *v)
{
	int i, n = MIN(v->plen, v->err_len);

	if (!v->has_err)
		return 1;
	for (i = 0; i < n; i++)
		if (v->path[i].ord != v->err_ord[i])
			return v->path[i].ord < v->err_ord[i];
	return v->plen < v->err_len;
}

/* Collecting, and nothing found from here on could precede what is recorded. */
static int
blocked(const struct vctx *v)
{
	return v->collect && !cur_before_err(v);
}

static void vfail(struct vctx *v, const char *member, size_t mlen, const char *rule,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A failure at the current location (its pointer extended by `member` for `required`). */
static void
vfail(struct vctx *v, const char *member, size_t mlen, const char *rule, const char *fmt, ...)
{
	char text[160];
	va_list ap;
	int i;

	if (!v->collect || v->over || !cur_before_err(v))
		return;
	v->has_err = 1;
	v->err_len = v->plen;
	for (i = 0; i < v->plen; i++)
		v->err_ord[i] = v->path[i].ord;
	render_ptr(v->path, v->plen, member, mlen, v->res->pointer, sizeof(v->res->pointer));
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	result_set(v->res, rule, text);
}

/* The count bounds, each a min/max pair counted in one unit: how their messages read. */
struct count_rule {
	uint32_t    hmin, hmax;
	const char *kmin, *kmax;
	const char *verb, *one, *many, *tail;
};
static const struct count_rule cr_len = { H_MINLEN, H_MAXLEN, "minLength", "maxLength",
	"be", "character", "characters", " long" };
static const struct count_rule cr_items = { H_MINITEMS, H_MAXITEMS, "minItems", "maxItems",
	"have", "item", "items", "" };
static const struct count_rule cr_props = { H_MINPROPS, H_MAXPROPS, "minProperties",
	"maxProperties", "have", "property", "properties", "" };

/* Whether `got` falls outside the node's bounds of rule r (min first, each only when the
 * schema gives it): 1 after the failure ("must have at least 2 items"), else 0. */
static int
count_fails(struct vctx *v, const struct js_node *n, const struct count_rule *r, uint64_t min,
    uint64_t max, uint64_t got)
{
	const char *kw, *side;
	uint64_t b;

	if ((n->has & r->hmin) && got < min) {
		kw = r->kmin;
		side = "least";
		b = min;
	} else if ((n->has & r->hmax) && got > max) {
		kw = r->kmax;
		side = "most";
		b = max;
	} else {
		return 0;
	}
	vfail(v, NULL, 0, kw, "must %s at %s %llu %s%s", r->verb, side, (unsigned long long)b,
	    b == 1 ? r->one : r->many, r->tail);
	return 1;
}

static int
push_key(struct vctx *v, const char *k, size_t kl, uint32_t ord)
{
	if (v->plen >= (int)ARRAY_LEN(v->path)) {
		v->over = 1;
		return -1;
	}
	v->path[v->plen].key = k;
	v->path[v->plen].klen = kl;
	v->path[v->plen].ord = ord;
	v->plen++;
	return 0;
}

static int
push_idx(struct vctx *v, size_t i)
{
	if (v->plen >= (int)ARRAY_LEN(v->path)) {
		v->over = 1;
		return -1;
	}
	v->path[v->plen].key = NULL;
	v->path[v->plen].idx = i;
	v->path[v->plen].ord = (uint32_t)i;
	v->plen++;
	return 0;
}

static int
pattern_run(struct vctx *v, const struct regex *re, const char *s, size_t n)
{
	int r;

	if (v->rx == NULL) {
		v->rx = regex_scratch_new(v->a, v->s->max_prog ? v->s->max_prog : 1);
		if (v->rx == NULL) {
			v->oom = v->over = 1;
			return -1;
		}
	}
	r = regex_search(re, v->rx, s, n, &v->budget);
	if (r < 0 || v->budget == 0) {
		v->over = 1;
		return -1;
	}
	return r;
}

/* JSON equality as JSON Schema defines it: numbers by value (1 equals 1.0), objects
 * regardless of member order. */
static int
jeq(struct vctx *v, const json_t *a, const json_t *b)
{
	double x, y;
	const char *k;
	json_t *av;
	size_t i;

	if (!charge(v, 2))
		return 0;
	if (jnum(a, &x) && jnum(b, &y))
		return x == y;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		    memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!jeq(v, json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)(uintptr_t)a, k, av) {
			const json_t *bv = json_object_get(b, k);
			if (bv == NULL || !jeq(v, av, bv))
				return 0;
		}
		return 1;
	default:
		return 1;           /* true, false, null: the type is the value */
	}
}

static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
bytes_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ n);
}

/* A hash consistent with jeq (equal values hash equal). */
static uint64_t
jhash(struct vctx *v, const json_t *x)
{
	const char *k;
	json_t *xv;
	uint64_t h, bits;
	double d;
	size_t i;

	if (!charge(v, 2))
		return 0;
	if (jnum(x, &d)) {
		if (d == 0)
			d = 0;          /* -0 equals 0 */
		memcpy(&bits, &d, sizeof(bits));
		return mix64(bits ^ 0x6e756dULL);
	}
	switch (json_typeof(x)) {
	case JSON_STRING:
		charge(v, json_string_length(x) / 64);
		return bytes_hash(json_string_value(x), json_string_length(x));
	case JSON_ARRAY:
		h = 0x617272ULL;
		for (i = 0; i < json_array_size(x); i++)
			h = mix64(h * 31 + jhash(v, json_array_get(x, i)));
		return h;
	case JSON_OBJECT:
		h = 0;
		json_object_foreach((json_t *)(uintptr_t)x, k, xv)
			h += mix64(bytes_hash(k, strlen(k)) ^ (jhash(v, xv) * 0x9e3779b97f4a7c15ULL));
		return mix64(h ^ 0x6f626aULL ^ json_object_size(x));
	case JSON_TRUE:
		return 1;
	case JSON_FALSE:
		return 2;
	default:
		return 3;
	}
}

struct hidx {
	uint64_t h;
	size_t   i;
};

static int
hidx_less(const struct hidx *x, const struct hidx *y)
{
	return x->h != y->h ? x->h < y->h : x->i < y->i;
}

static void
hidx_sift(struct hidx *a, size_t root, size_t n)
{
	struct hidx t;
	size_t c;

	while ((c = 2 * root + 1) < n) {
		if (c + 1 < n && hidx_less(&a[c], &a[c + 1]))
			c++;
		if (!hidx_less(&a[root], &a[c]))
			return;
		t = a[root];
		a[root] = a[c];
		a[c] = t;
		root = c;
	}
}

/* Heapsort: n log n in place (glibc's qsort may malloc; a check allocates only from jansson
 * and the request arena). */
static void
hidx_sort(struct hidx *a, size_t n)
{
	struct hidx t;
	size_t i;

	for (i = n / 2; i-- > 0;)
		hidx_sift(a, i, n);
	for (i = n; i-- > 1;) {
		t = a[0];
		a[0] = a[i];
		a[i] = t;
		hidx_sift(a, 0, i);
	}
}

/* 1 when two items are equal; hashes sort the candidates, jeq decides. */
static int
has_dup(struct vctx *v, const json_t *arr)
{
	size_t n = json_array_size(arr), i, j, k;
	struct hidx *hs;

	if (n < 2)
		return 0;
	if (n > SIZE_MAX / sizeof(*hs) || (hs = arena_alloc(v->a, n * sizeof(*hs))) == NULL) {
		v->oom = v->over = 1;
		return 0;
	}
	for (i = 0; i < n; i++) {
		hs[i].h = jhash(v, json_array_get(arr, i));
		hs[i].i = i;
	}
	if (v->over)
		return 0;
	charge(v, n);
	hidx_sort(hs, n);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && hs[j].h == hs[i].h; j++)
			;
		for (k = i; k < j; k++) {
			size_t m;
			for (m = k + 1; m < j; m++) {
				if (jeq(v, json_array_get(arr, hs[k].i), json_array_get(arr, hs[m].i)))
					return 1;
				if (v->over)
					return 0;
			}
		}
	}
	return 0;
}

static int
multiple_of(double x, double m)
{
	double q, r;

	if (is_integral(x) && is_integral(m) && fabs(x) < 9007199254740992.0 &&
	    m < 9007199254740992.0)
		return fmod(x, m) == 0;
	q = x / m;
	if (!isfinite(q))
		return 0;
	r = nearbyint(q);
	/* a few ulps of slack, so that 0.3 is a multiple of 0.1 as in decimal */
	return fabs(q - r) <= 4 * DBL_EPSILON * fabs(q);
}

static int validate(struct vctx *v, const struct js_node *n, const json_t *x);

static int
probe(struct vctx *v, const struct js_node *n, const json_t *x)
{
	int save = v->collect, r;

	v->collect = 0;
	r = validate(v, n, x);
	v->collect = save;
	return r && !v->over;
}

static const struct js_prop *
prop_find(const struct js_node *n, const char *k, size_t kl)
{
	struct js_prop key = { k, kl, NULL };

	if (n->nprops == 0)
		return NULL;
	return bsearch(&key, n->props, n->nprops, sizeof(*n->props), cmp_prop);
}

/* One object member against properties / patternProperties / additionalProperties and
 * propertyNames; the member is the current location. */
static int
member(struct vctx *v, const struct js_node *n, const char *k, size_t kl, const json_t *val)
{
	const struct js_prop *p;
	size_t i;
	int matched = 0, ok = 1, r;

	if (n->pnames) {
		json_t *ks = json_stringn_nocheck(k, kl);
		if (ks == NULL) {
			v->oom = v->over = 1;
			return 0;
		}
		r = probe(v, n->pnames, ks);
		json_decref(ks);
		if (v->over)
			return 0;
		if (!r) {
			vfail(v, NULL, 0, "propertyNames", "is not an allowed property name");
			return 0;
		}
	}
	if ((p = prop_find(n, k, kl)) != NULL) {
		matched = 1;
		if (!validate(v, p->s, val)) {
			ok = 0;
			if (!v->collect || blocked(v) || v->over)
				return 0;
		}
	}
	for (i = 0; i < n->npprops; i++) {
		r = pattern_run(v, n->pprops[i].re, k, kl);
		if (r < 0)
			return 0;
		if (!r)
			continue;
		matched = 1;
		if (!validate(v, n->pprops[i].s, val)) {
			ok = 0;
			if (!v->collect || blocked(v) || v->over)
				return 0;
		}
	}
	if (!matched && n->addl && !validate(v, n->addl, val))
		ok = 0;
	return ok;
}

static unsigned
inst_type(const json_t *x, double *d)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT: return T_OBJ;
	case JSON_ARRAY: return T_ARR;
	case JSON_STRING: return T_STR;
	case JSON_TRUE:
	case JSON_FALSE: return T_BOOL;
	case JSON_NULL: return T_NULL;
	default:
		jnum(x, d);
		return is_integral(*d) ? T_NUM | T_INT : T_NUM;
	}
}

#define FAIL(rule, ...) do { vfail(v, NULL, 0, rule, __VA_ARGS__); ok = 0; goto out; } while (0)
/* after an in-place or member check failed: stop unless an earlier failure may still come */
#define STOP_IF_DONE() do { if (!v->collect || v->over || blocked(v)) goto out; } while (0)

static int
validate(struct vctx *v, const struct js_node *n, const json_t *x)
{
	char nb[40];
	double d = 0;
	unsigned t;
	size_t i, sz;
	int ok = 1, r;

	if (v->over || !charge(v, 4))
		return 0;
	if (n->boolean == 1)
		return 1;
	if (n->boolean == 0) {
		vfail(v, NULL, 0, "false", "is not allowed");
		return 0;
	}
	if (blocked(v))
		return 0;
	if (++v->calls > MAX_CALLS) {
		v->over = 1;
		v->calls--;
		return 0;
	}
	t = inst_type(x, &d);
	if ((n->has & H_TYPE) && !(n->types & t))
		FAIL("type", "must be %s", n->type_text);
	if ((n->has & H_CONST) && !jeq(v, x, n->cnst))
		FAIL("const", "is not the allowed value");
	if (n->has & H_ENUM) {
		for (i = 0; i < json_array_size(n->enm); i++)
			if (jeq(v, x, json_array_get(n->enm, i)))
				break;
		if (i == json_array_size(n->enm))
			FAIL("enum", "is not one of the allowed values");
	}
	if (t & T_NUM) {
		if ((n->has & H_MINIMUM) && d < n->minimum) {
			fmt_num(n->minimum, nb, sizeof(nb));
			FAIL("minimum", "must be >= %s", nb);
		}
		if ((n->has & H_XMIN) && d <= n->xmin) {
			fmt_num(n->xmin, nb, sizeof(nb));
			FAIL("exclusiveMinimum", "must be > %s", nb);
		}
		if ((n->has & H_MAXIMUM) && d > n->maximum) {
			fmt_num(n->maximum, nb, sizeof(nb));
			FAIL("maximum", "must be <= %s", nb);
		}
		if ((n->has & H_XMAX) && d >= n->xmax) {
			fmt_num(n->xmax, nb, sizeof(nb));
			FAIL("exclusiveMaximum", "must be < %s", nb);
		}
		if ((n->has & H_MULT) && !multiple_of(d, n->mult)) {
			fmt_num(n->mult, nb, sizeof(nb));
			FAIL("multipleOf", "must be a multiple of %s", nb);
		}
	} else if (t == T_STR) {
		const char *s = json_string_value(x);
		size_t sl = json_string_length(x);
		if (n->has & (H_MINLEN | H_MAXLEN)) {
			uint64_t cps;
			if (!charge(v, sl / 64))
				goto out;
			cps = utf8_count(s, sl);
			if (count_fails(v, n, &cr_len, n->min_len, n->max_len, cps)) {
				ok = 0;
				goto out;
			}
		}
		if (n->pattern) {
			r = pattern_run(v, n->pattern, s, sl);
			if (r < 0)
				goto fail_quiet;
			if (r == 0)
				FAIL("pattern", "does not match the pattern");
		}
		if (n->format) {
			if (!charge(v, sl / 16))
				goto fail_quiet;
			if (!jsformat_check(n->format, s, sl))
				FAIL("format", "is not a valid %s", jsformat_name(n->format));
		}
	} else if (t == T_ARR) {
		sz = json_array_size(x);
		if (count_fails(v, n, &cr_items, n->min_items, n->max_items, sz)) {
			ok = 0;
			goto out;
		}
		if (n->has & H_UNIQUE) {
			r = has_dup(v, x);
			if (v->over)
				goto fail_quiet;
			if (r)
				FAIL("uniqueItems", "must not contain duplicate items");
		}
	} else if (t == T_OBJ) {
		sz = json_object_size(x);
		if (count_fails(v, n, &cr_props, n->min_props, n->max_props, sz)) {
			ok = 0;
			goto out;
		}
		for (i = 0; i < n->nreq; i++) {
			if (!charge(v, 1))
				goto fail_quiet;
			if (json_object_getn(x, n->req[i], n->reqlen[i]) == NULL) {
				vfail(v, n->req[i], n->reqlen[i], "required", "is required");
				ok = 0;
				goto out;
			}
		}
	}
	/* in place: $ref and allOf report their own failures; the others answer yes/no */
	if (n->ref && !validate(v, n->ref, x)) {
		ok = 0;
		STOP_IF_DONE();
	}
	for (i = 0; i < n->nall; i++) {
		if (!validate(v, n->all[i], x)) {
			ok = 0;
			STOP_IF_DONE();
		}
	}
	if (n->nany) {
		for (i = 0; i < n->nany; i++)
			if (probe(v, n->any[i], x))
				break;
		if (v->over)
			goto fail_quiet;
		if (i == n->nany)
			FAIL("anyOf", "does not match any of the allowed schemas");
	}
	if (n->none) {
		size_t hits = 0;
		for (i = 0; i < n->none && hits < 2; i++)
			hits += (size_t)probe(v, n->one[i], x);
		if (v->over)
			goto fail_quiet;
		if (hits == 0)
			FAIL("oneOf", "does not match any of the schemas (oneOf)");
		if (hits > 1)
			FAIL("oneOf", "matches more than one of the schemas (oneOf)");
	}
	if (n->not) {
		r = probe(v, n->not, x);
		if (v->over)
			goto fail_quiet;
		if (r)
			FAIL("not", "matches a schema it must not match");
	}
	/* members and items, in document order */
	if (t == T_OBJ && (n->nprops || n->npprops || n->addl || n->pnames)) {
		const char *k;
		json_t *mv;
		uint32_t ord = 0;
		json_object_foreach((json_t *)(uintptr_t)x, k, mv) {
			if (push_key(v, k, strlen(k), ord++) < 0)
				goto fail_quiet;
			if (blocked(v)) {
				v->plen--;
				break;
			}
			r = member(v, n, k, v->path[v->plen - 1].klen, mv);
			v->plen--;
			if (!r) {
				ok = 0;
				if (!v->collect || v->over)
					break;
			}
		}
	} else if (t == T_ARR && (n->nprefix || n->items)) {
		sz = json_array_size(x);
		for (i = 0; i < sz; i++) {
			const struct js_node *sch = i < n->nprefix ? n->prefix[i] : n->items;
			if (sch == NULL)
				break;
			if (push_idx(v, i) < 0)
				goto fail_quiet;
			if (blocked(v)) {
				v->plen--;
				break;
			}
			r = validate(v, sch, json_array_get(x, i));
			v->plen--;
			if (!r) {
				ok = 0;
				if (!v->collect || v->over)
					break;
			}
		}
	}
out:
	v->calls--;
	return ok && !v->over;
fail_quiet:
	v->calls--;
	return 0;
}

static enum jschema_status
validate_with(const struct jschema *s, const json_t *inst, struct arena *a, uint64_t budget,
    struct jschema_result *res)
{
	struct vctx *v;
	int ok;

	result_clear(res);
	v = arena_zalloc(a, sizeof(*v));
	if (v == NULL)
		return JSCHEMA_NOMEM;
	v->s = s;
	v->a = a;
	v->res = res;
	v->budget = budget;
	v->collect = 1;
	ok = validate(v, s->root, inst);
	if (v->oom)
		return JSCHEMA_NOMEM;
	if (v->over) {
		snprintf(res->pointer, sizeof(res->pointer), "/");
		res->rule = "complexity";
		snprintf(res->msg, sizeof(res->msg), "Invalid body: too complex to check");
		return JSCHEMA_INVALID;
	}
	if (!ok && !v->has_err) {
		/* every failure records itself; this is a safety net */
		snprintf(res->pointer, sizeof(res->pointer), "/");
		result_set(res, "schema", "does not match the schema");
	}
	return ok ? JSCHEMA_OK : JSCHEMA_INVALID;
}

enum jschema_status
jschema_validate(const struct jschema *s, const json_t *inst, struct arena *a,
    struct jschema_result *res)
{
	return validate_with(s, inst, a, JSCHEMA_WORK_BUDGET, res);
}

enum jschema_status
jschema_check(const struct jschema *s, const char *buf, size_t len, struct arena *a,
    struct jschema_result *res)
{
	enum jschema_status st;
	json_t *doc;

	st = jschema_load(buf, len, &doc, res);
	if (st != JSCHEMA_OK || s == NULL) {
		json_decref(doc);
		return st;
	}
	st = validate_with(s, doc, a, JSCHEMA_WORK_BUDGET + (uint64_t)JSCHEMA_WORK_PER_BYTE * len, res);
	json_decref(doc);
	return st;
}
