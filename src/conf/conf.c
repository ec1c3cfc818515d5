/* SPDX-License-Identifier: MIT
 * conf — the typed configuration of CONTRACT §2, read from the node tree of yaml.c.
 *
 * One table describes every key: its name, type, where it lands in struct conf (offsetof),
 * its default written as YAML text and parsed by the very code that parses the user's value,
 * its bounds and a one-line meaning. The parser walks the tables (nginx's command table);
 * conf_doc_markdown() walks the same tables to print the reference, so the documentation
 * cannot drift from the parser. Keys with structure of their own (addresses, headers,
 * routes, ...) have a custom parse function but still a row.
 *
 * Every error is collected with its file:line:col and parsing goes on (relayd), so one
 * `visor -t` run shows them all. Nothing here opens a socket or a TLS context: files are
 * only read for `K_file` keys (secrets); the files a config merely names (certificates,
 * keys, schemas) are checked by conf_build() in runtime.c. Upstream host names are resolved
 * here, once, unless ctx->no_resolve.
 *
 * Generations are reference-counted with atomics; the last conf_unref() releases the
 * runtime objects first (conf_release_runtime), then the typed fields and the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/util.h"
#include "lib/jwt_core.h"

_Static_assert(sizeof(enum auth_mode) == sizeof(int), "enums are stored through int *");
_Static_assert(sizeof(enum tls_minver) == sizeof(int), "enums are stored through int *");
_Static_assert(sizeof(enum rl_hdrfmt) == sizeof(int), "enums are stored through int *");

#define CONF_MAX_KEYS   32           /* rows per table */
#define CONF_MAX_SECRET (1 << 20)    /* K_file contents */

/* ---- messages ------------------------------------------------------------------- */

void
conf_msg_add(struct conf_ctx *ctx, enum conf_level lvl, const char *file, int line, int col,
    const char *fmt, va_list ap)
{
	struct conf_msg *m, *nm;
	size_t ncap;
	char *text = NULL;

	if (lvl == CONF_ERROR)
		ctx->nerr++;
	else
		ctx->nwarn++;
	if (ctx->nmsgs == ctx->cap) {
		ncap = ctx->cap ? ctx->cap * 2 : 16;
		nm = realloc(ctx->msgs, ncap * sizeof(*nm));
		if (nm == NULL)
			return;     /* still counted: the load fails, the text is lost */
		ctx->msgs = nm;
		ctx->cap = ncap;
	}
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	if (file == NULL)
		file = ctx->file != NULL ? ctx->file : "-";
	m = &ctx->msgs[ctx->nmsgs++];
	m->level = lvl;
	m->file = strdup(file);
	m->line = line;
	m->col = col;
	m->text = text;
}

static void msg_at(struct conf_ctx *, enum conf_level, const struct ynode *, const char *,
    va_list) __attribute__((format(printf, 4, 0)));

static void
msg_at(struct conf_ctx *ctx, enum conf_level lvl, const struct ynode *at, const char *fmt,
    va_list ap)
{
	if (at != NULL)
		conf_msg_add(ctx, lvl, at->file, at->line, at->col, fmt, ap);
	else
		conf_msg_add(ctx, lvl, ctx->file, 0, 0, fmt, ap);
}

void
conf_err(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_at(ctx, CONF_ERROR, at, fmt, ap);
	va_end(ap);
}

void
conf_warn(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_at(ctx, CONF_WARNING, at, fmt, ap);
	va_end(ap);
}

static int
msg_cmp(const void *a, const void *b, void *arg)
{
	const struct conf_msg *msgs = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct conf_msg *x = &msgs[i], *y = &msgs[j];

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return i < j ? -1 : i > j;    /* stable: same position keeps report order */
}

void
conf_ctx_print(const struct conf_ctx *ctx, FILE *out)
{
	size_t *idx, i;

	idx = malloc((ctx->nmsgs ? ctx->nmsgs : 1) * sizeof(*idx));
	for (i = 0; i < ctx->nmsgs; i++)
		if (idx != NULL)
			idx[i] = i;
	if (idx != NULL)
		qsort_r(idx, ctx->nmsgs, sizeof(*idx), msg_cmp, ctx->msgs);
	for (i = 0; i < ctx->nmsgs; i++) {
		const struct conf_msg *m = &ctx->msgs[idx != NULL ? idx[i] : i];
		const char *lvl = m->level == CONF_ERROR ? "error" : "warning";
		const char *file = m->file != NULL ? m->file : "-";
		const char *text = m->text != NULL ? m->text : "(out of memory)";
		if (m->line > 0)
			fprintf(out, "%s:%d:%d: %s: %s\n", file, m->line, m->col, lvl, text);
		else
			fprintf(out, "%s: %s: %s\n", file, lvl, text);
	}
	free(idx);
}

void
conf_ctx_fini(struct conf_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nmsgs; i++) {
		free(ctx->msgs[i].file);
		free(ctx->msgs[i].text);
	}
	free(ctx->msgs);
	ctx->msgs = NULL;
	ctx->nmsgs = ctx->cap = 0;
	ctx->nerr = ctx->nwarn = 0;
}

/* ---- the schema ---------------------------------------------------------------------- */

enum ktype {
	KT_INT = 0,     /* int64_t in [min, max] */
	KT_DUR,         /* int64_t milliseconds; bare integer = seconds */
	KT_DUR_S,       /* int64_t seconds, written as an integer or a duration */
	KT_SIZE,        /* int64_t bytes */
	KT_BOOL,        /* int */
	KT_STR,         /* char *, not empty, no control characters */
	KT_ENUM,        /* int, from a struct cenum table */
	KT_STRS,        /* struct conf_strs, from a list or a single scalar */
	KT_SECTION,     /* nested mapping, same base struct */
	KT_CUSTOM       /* parse function */
};

#define CK_REQUIRED  0x001u  /* error when absent */
#define CK_OPTIONAL  0x002u  /* section: only parsed when present; sets the int at en_off */
#define CK_SCALAR    0x004u  /* custom: takes a scalar, so K_file works for it */
#define CK_ALWAYS    0x008u  /* custom: also called with v == NULL (computed default) */
#define CK_UPPER     0x020u  /* list: items upper-cased */
#define CK_TOKEN     0x040u  /* list: items are HTTP tokens */
#define CK_URLPATH   0x080u  /* list/string: items are URL paths */
#define CK_RESOLVE   0x100u  /* addresses: DNS names allowed, resolved now */
#define CK_LISTEN    0x200u  /* addresses: a listener (port 0 allowed, conflicts checked) */
#define CK_ITEMS     0x400u  /* custom list of mappings described by arg (docs: "key[]") */
#define CK_NAMED     0x800u  /* custom mapping of named mappings (docs: "key.<name>") */

struct pctx;
struct ckey;
typedef void (*kparse_fn)(struct pctx *, const struct ckey *, const struct ynode *, void *);
typedef int (*kcheck_fn)(struct pctx *, const struct ynode *, const char *);

struct cenum {
	const char *name;
	int         value;
};

struct csect {
	const struct ckey *keys;
	size_t             nkeys;
	/* cross-key checks once the rows are parsed; map may be NULL (section absent) */
	void (*post)(struct pctx *, const struct ynode *map, const struct ynode *where);
};

struct ckey {
	const char   *name;
	enum ktype    type;
	size_t        off;      /* field offset in the current base struct */
	const char   *def;      /* default, as YAML text; NULL: none */
	int64_t       min, max; /* numeric bounds (ms for durations, s for KT_DUR_S) */
	unsigned      flags;
	const void   *arg;      /* KT_ENUM: struct cenum[]; sections and item lists: struct csect */
	kparse_fn     fn;       /* KT_CUSTOM */
	kcheck_fn     check;    /* KT_STR, KT_STRS: extra check of each value */
	size_t        en_off;   /* CK_OPTIONAL, listen.http/admin: offset of an int flag */
	const char   *tname;    /* type as shown in docs (custom, lists) */
	const char   *defdoc;   /* default as shown in docs when `def` cannot say it */
	const char   *doc;
};

/* A listener, remembered for the address-conflict check. */
struct laddr {
	struct units_addr a;
	struct ynode      at;       /* position only */
	const char       *key;
};

struct pctx {
	struct conf_ctx *ctx;
	struct conf     *c;
	void            *base;      /* struct the current table's offsets refer to */
	char             path[256]; /* dotted path of what is being parsed, for messages */
	size_t           plen;
	char             q[4][96];  /* rotating buffers for user text quoted in messages */
	int              qi;
	struct laddr    *laddrs;
	size_t           nladdrs;
	struct ynode   **synth;     /* lists split out of ${VAR} scalars, freed after the parse */
	size_t           nsynth;
};

#define FIELD(p, k) ((void *)((char *)(p)->base + (k)->off))

/* ---- small helpers ------------------------------------------------------------------ */

static void oom(struct pctx *p, const struct ynode *at);

static size_t path_push(struct pctx *, const char *, ...) __attribute__((format(printf, 2, 3)));

static size_t
path_push(struct pctx *p, const char *fmt, ...)
{
	size_t old = p->plen;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(p->path + p->plen, sizeof(p->path) - p->plen, fmt, ap);
	va_end(ap);
	if (r > 0)
		p->plen += (size_t)r;
	if (p->plen >= sizeof(p->path))
		p->plen = sizeof(p->path) - 1;
	return old;
}

static size_t
path_key(struct pctx *p, const char *name)
{
	return p->plen == 0 ? path_push(p, "%s", name) : path_push(p, ".%s", name);
}

static void
path_pop(struct pctx *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

/* User text for a message: printable, at most ~80 bytes. Valid until 4 more calls. */
static const char *
qs(struct pctx *p, const char *s)
{
	return str_printable(p->q[p->qi++ & 3], sizeof(p->q[0]), s);
}

static int
is_null(const struct ynode *v)
{
	return v->type == YN_SCALAR && v->plain && (v->len == 0 || strcmp(v->str, "~") == 0 ||
	    strcmp(v->str, "null") == 0 || strcmp(v->str, "Null") == 0 ||
	    strcmp(v->str, "NULL") == 0);
}

static const char *
got(const struct ynode *v)
{
	if (v->type == YN_MAP)
		return "a mapping";
	if (v->type == YN_SEQ)
		return "a list";
	return "an empty value";
}

static int
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar(*s))
			return 0;
	return 1;
}

static int
has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* A header value may hold SP, HTAB, VCHAR and obs-text; never NUL, CR, LF or other CTLs. */
static int
bad_field_value(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

static void
upcase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static char *
xstrdup(struct pctx *p, const struct ynode *at, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		oom(p, at);
	return d;
}

static void
oom(struct pctx *p, const struct ynode *at)
{
	conf_err(p->ctx, at, "%s: out of memory", p->path);
}

static const char *
fmt_dur(char *buf, size_t len, int64_t ms)
{
	static const struct { int64_t mult; const char *unit; } u[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
	};
	size_t i;

	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		if (ms != 0 && ms % u[i].mult == 0) {
			snprintf(buf, len, "%lld%s", (long long)(ms / u[i].mult), u[i].unit);
			return buf;
		}
	snprintf(buf, len, ms == 0 ? "%lld" : "%lldms", (long long)ms);
	return buf;
}

static const char *
fmt_size(char *buf, size_t len, int64_t b)
{
	if (b != 0 && b % (1LL << 30) == 0)
		snprintf(buf, len, "%lldg", (long long)(b >> 30));
	else if (b != 0 && b % (1LL << 20) == 0)
		snprintf(buf, len, "%lldm", (long long)(b >> 20));
	else if (b != 0 && b % (1LL << 10) == 0)
		snprintf(buf, len, "%lldk", (long long)(b >> 10));
	else
		snprintf(buf, len, "%lld", (long long)b);
	return buf;
}

static const char *
fmt_bound(char *buf, size_t len, enum ktype t, int64_t v)
{
	if (t == KT_DUR)
		return fmt_dur(buf, len, v);
	if (t == KT_DUR_S)
		return v > INT64_MAX / 1000 ? "forever" : fmt_dur(buf, len, v * 1000);
	if (t == KT_SIZE)
		return fmt_size(buf, len, v);
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* The suggestion for a misspelt name among `n` candidates: a case-insensitive match, else
 * the nearest within edit distance 3, unless reaching it rewrites every character ('x' is
 * not a typo of 'off'). NULL when nothing is close. */
static const char *
nearest(const char *s, const char *const *cand, size_t n)
{
	const char *best = NULL;
	int bestd = 4, d;
	size_t i;

	for (i = 0; i < n; i++)
		if (cand[i] != NULL && strcasecmp(s, cand[i]) == 0)
			return cand[i];
	for (i = 0; i < n; i++) {
		if (cand[i] == NULL)
			continue;
		d = units_edit_distance(s, cand[i], 4);
		if (d < bestd && (size_t)d < (strlen(s) > strlen(cand[i]) ? strlen(s) :
		    strlen(cand[i]))) {
			bestd = d;
			best = cand[i];
		}
	}
	return best;
}

/* ---- scalar values ------------------------------------------------------------------ */

/* The text of a scalar value, or NULL after an error naming what was expected. */
static const char *
scalar_text(struct pctx *p, const struct ynode *v, const char *expect)
{
	if (v->type != YN_SCALAR || is_null(v)) {
		conf_err(p->ctx, v, "%s: expected %s, got %s", p->path, expect, got(v));
		return NULL;
	}
	if (strlen(v->str) != v->len) {
		conf_err(p->ctx, v, "%s: must not contain a NUL byte", p->path);
		return NULL;
	}
	return v->str;
}

/* A string value (KT_STR semantics): not empty, no control characters. */
static const char *
string_text(struct pctx *p, const struct ynode *v)
{
	const char *s = scalar_text(p, v, "a string");

	if (s == NULL)
		return NULL;
	if (*s == '\0') {
		conf_err(p->ctx, v, "%s must not be empty", p->path);
		return NULL;
	}
	if (has_ctl(s, v->len)) {
		conf_err(p->ctx, v, "%s: control characters are not allowed", p->path);
		return NULL;
	}
	return s;
}

static int
check_bounds(struct pctx *p, const struct ckey *k, const struct ynode *v, int64_t x)
{
	char lo[32], hi[32];

	if (x >= k->min && x <= k->max)
		return 0;
	if (k->max == INT64_MAX)
		conf_err(p->ctx, v, "%s must be at least %s, got '%s'", p->path,
		    fmt_bound(lo, sizeof(lo), k->type, k->min), qs(p, v->str));
	else
		conf_err(p->ctx, v, "%s must be between %s and %s, got '%s'", p->path,
		    fmt_bound(lo, sizeof(lo), k->type, k->min),
		    fmt_bound(hi, sizeof(hi), k->type, k->max), qs(p, v->str));
	return -1;
}

static int
enum_lookup(struct pctx *p, const struct ckey *k, const struct ynode *v, int *out)
{
	const struct cenum *e = k->arg;
	const char *cand[16], *s, *sug;
	char list[256];
	size_t i, n = 0, o = 0;

	if ((s = scalar_text(p, v, "a string")) == NULL)
		return -1;
	for (i = 0; e[i].name != NULL; i++) {
		if (strcasecmp(s, e[i].name) == 0) {
			*out = e[i].value;
			return 0;
		}
		if (n < sizeof(cand) / sizeof(cand[0]))
			cand[n++] = e[i].name;
		if (o < sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
			    e[i].name);
	}
	sug = nearest(s, cand, n);
	if (sug != NULL)
		conf_err(p->ctx, v, "%s: expected one of %s, got '%s' (did you mean '%s'?)",
		    p->path, list, qs(p, s), sug);
	else
		conf_err(p->ctx, v, "%s: expected one of %s, got '%s'", p->path, list, qs(p, s));
	return -1;
}

/* A list written as one ${VAR} (how Docker and Kubernetes pass settings) splits on commas:
 * TRUSTED="10.0.0.0/8, 192.168.0.0/16" gives two items, an empty value gives []. A list
 * written in YAML, or a scalar without ${...}, is left as it is. The items keep the scalar's
 * position for messages. */
static const struct ynode *
list_node(struct pctx *p, const struct ynode *v)
{
	struct ynode *seq, **keep;
	const char *s, *e, *q;
	size_t n = 0, i;

	if (v->type != YN_SCALAR || !v->had_var)
		return v;
	for (s = v->str; *s; s = *e ? e + 1 : e) {
		e = strchr(s, ',');
		if (e == NULL)
			e = s + strlen(s);
		for (q = s; q < e && (*q == ' ' || *q == '\t'); q++)
			;
		if (q < e)
			n++;
	}
	keep = realloc(p->synth, (p->nsynth + 1) * sizeof(*keep));
	seq = calloc(1, sizeof(*seq) + n * (sizeof(struct ynode *) + sizeof(struct ynode)));
	if (keep == NULL || seq == NULL) {
		if (keep)
			p->synth = keep;
		free(seq);
		conf_err(p->ctx, v, "%s: out of memory", p->path);
		return v;
	}
	p->synth = keep;
	p->synth[p->nsynth++] = seq;
	*seq = *v;
	seq->type = YN_SEQ;
	seq->str = NULL;
	seq->len = 0;
	seq->n = n;
	seq->items = (struct ynode **)(seq + 1);
	struct ynode *it = (struct ynode *)(seq->items + n);
	for (i = 0, s = v->str; *s && i < n; s = *e ? e + 1 : e) {
		size_t len;
		e = strchr(s, ',');
		if (e == NULL)
			e = s + strlen(s);
		for (q = s; q < e && (*q == ' ' || *q == '\t'); q++)
			;
		len = (size_t)(e - q);
		while (len > 0 && (q[len - 1] == ' ' || q[len - 1] == '\t'))
			len--;
		if (len == 0)
			continue;
		it[i] = *v;
		it[i].str = strndup(q, len);
		it[i].len = it[i].str ? len : 0;
		if (it[i].str == NULL)
			it[i].str = (char *)(uintptr_t)"";
		seq->items[i] = &it[i];
		i++;
	}
	return seq;
}

static void
list_synth_free(struct pctx *p)
{
	size_t i, k;

	for (i = 0; i < p->nsynth; i++) {
		for (k = 0; k < p->synth[i]->n; k++)
			if (p->synth[i]->items[k]->len > 0)
				free(p->synth[i]->items[k]->str);
		free(p->synth[i]);
	}
	free(p->synth);
}

/* Number of items of a value that may be a list or a single scalar, or -1 after an error. */
static long
list_count(struct pctx *p, const struct ynode *v, const char *expect)
{
	if (v->type == YN_SEQ)
		return (long)v->n;
	if (v->type == YN_MAP || is_null(v)) {
		conf_err(p->ctx, v, "%s: expected %s, got %s%s", p->path, expect, got(v),
		    v->type == YN_MAP ? "" : " (write [] for none)");
		return -1;
	}
	return 1;
}

static const struct ynode *
item_at(const struct ynode *v, size_t i)
{
	return v->type == YN_SEQ ? v->items[i] : v;
}

static size_t
item_push(struct pctx *p, const struct ynode *v, size_t i)
{
	return v->type == YN_SEQ ? path_push(p, "[%zu]", i) : p->plen;
}

/* The text of one list item: a scalar, not empty, no NUL or control characters. A plain
 * `null` stays the text "null" here (an origin may be "null"). */
static const char *
item_text(struct pctx *p, const struct ynode *it)
{
	if (it->type != YN_SCALAR) {
		conf_err(p->ctx, it, "%s: expected a string, got %s", p->path, got(it));
		return NULL;
	}
	if (it->len == 0 || (it->plain && strcmp(it->str, "~") == 0)) {
		conf_err(p->ctx, it, "%s: empty item", p->path);
		return NULL;
	}
	if (strlen(it->str) != it->len || has_ctl(it->str, it->len)) {
		conf_err(p->ctx, it, "%s: control characters are not allowed", p->path);
		return NULL;
	}
	return it->str;
}

static int
check_urlpath(struct pctx *p, const struct ynode *v, const char *s)
{
	if (*s != '/') {
		conf_err(p->ctx, v, "%s: '%s' must start with '/'", p->path, qs(p, s));
		return -1;
	}
	if (strpbrk(s, " ?#") != NULL) {
		conf_err(p->ctx, v, "%s: '%s' must be a plain path (no spaces, query or fragment)",
		    p->path, qs(p, s));
		return -1;
	}
	return 0;
}

static int
check_token(struct pctx *p, const struct ynode *v, const char *s)
{
	if (!is_token(s)) {
		conf_err(p->ctx, v, "%s: '%s' is not a valid HTTP token", p->path, qs(p, s));
		return -1;
	}
	return 0;
}

static void
strs_free(struct conf_strs *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void
parse_strs(struct pctx *p, const struct ckey *k, const struct ynode *v, struct conf_strs *out)
{
	const struct ynode *it;
	const char *s;
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "a list");
	size_t i, old;
	char *d;

	if (n < 0)
		return;
	strs_free(out);
	if (n > 0 && (out->v = calloc((size_t)n, sizeof(*out->v))) == NULL) {
		oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		s = item_text(p, it);
		if (s != NULL && (k->flags & CK_TOKEN) && check_token(p, it, s) < 0)
			s = NULL;
		if (s != NULL && (k->flags & CK_URLPATH) && check_urlpath(p, it, s) < 0)
			s = NULL;
		if (s != NULL && k->check != NULL && k->check(p, it, s) < 0)
			s = NULL;
		if (s != NULL && (d = xstrdup(p, it, s)) != NULL) {
			if (k->flags & CK_UPPER)
				upcase(d);
			out->v[out->n++] = d;
		}
		path_pop(p, old);
	}
}

/* ---- the walker ---------------------------------------------------------------------- */

static void walk(struct pctx *p, const struct csect *s, const struct ynode *map,
    const struct ynode *where);

static int
is_scalar_key(const struct ckey *k)
{
	switch (k->type) {
	case KT_INT: case KT_DUR: case KT_DUR_S: case KT_SIZE: case KT_BOOL: case KT_STR:
	case KT_ENUM:
		return 1;
	case KT_CUSTOM:
		return (k->flags & CK_SCALAR) != 0;
	default:
		return 0;
	}
}

static void
parse_value(struct pctx *p, const struct ckey *k, const struct ynode *v,
    const struct ynode *keynode)
{
	void *field = FIELD(p, k);
	const char *s, *err;
	int64_t x;
	int b;

	switch (k->type) {
	case KT_SECTION:
		if (k->flags & CK_OPTIONAL)
			*(int *)(void *)((char *)p->base + k->en_off) = 1;
		walk(p, k->arg, v, keynode);
		return;
	case KT_CUSTOM:
		k->fn(p, k, v, field);
		return;
	case KT_STRS:
		parse_strs(p, k, v, field);
		return;
	case KT_ENUM:
		if (enum_lookup(p, k, v, &b) == 0)
			*(int *)field = b;
		return;
	case KT_STR:
		if ((s = string_text(p, v)) == NULL)
			return;
		if ((k->flags & CK_URLPATH) && check_urlpath(p, v, s) < 0)
			return;
		if (k->check != NULL && k->check(p, v, s) < 0)
			return;
		free(*(char **)field);
		*(char **)field = xstrdup(p, v, s);
		return;
	case KT_BOOL:
		if ((s = scalar_text(p, v, "true or false")) == NULL)
			return;
		if (units_bool(s, &b, &err) < 0)
			conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, qs(p, s));
		else
			*(int *)field = b;
		return;
	case KT_INT:
		if ((s = scalar_text(p, v, "an integer")) == NULL)
			return;
		if (units_int(s, INT64_MIN, INT64_MAX, &x, &err) < 0) {
			if (strcmp(err, "integer out of range") != 0) {
				conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, qs(p, s));
				return;
			}
			x = s[0] == '-' ? INT64_MIN : INT64_MAX;  /* too long: say the bounds */
		}
		break;
	case KT_DUR:
	case KT_DUR_S:
		if ((s = scalar_text(p, v, "a duration")) == NULL)
			return;
		if (units_duration_ms(s, &x, &err) < 0) {
			conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, qs(p, s));
			return;
		}
		if (k->type == KT_DUR_S) {
			if (x % 1000 != 0) {
				conf_err(p->ctx, v, "%s: must be a whole number of seconds, got '%s'",
				    p->path, qs(p, s));
				return;
			}
			x /= 1000;
		}
		break;
	case KT_SIZE:
		if ((s = scalar_text(p, v, "a size")) == NULL)
			return;
		if (units_size(s, &x, &err) < 0) {
			conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, qs(p, s));
			return;
		}
		break;
	default:
		return;
	}
	if (check_bounds(p, k, v, x) == 0)
		*(int64_t *)field = x;
}

static void
default_err(void *arg, const char *file, int line, int col, const char *msg)
{
	struct pctx *p = arg;

	/* A default that does not parse is a bug in the table; make it loud. */
	conf_err(p->ctx, NULL, "internal error: default of %s (%s:%d:%d): %s", p->path, file,
	    line, col, msg);
}

static void
parse_default(struct pctx *p, const struct ckey *k)
{
	struct ynode *n;

	n = yaml_load_buf("<default>", k->def, strlen(k->def), default_err, p);
	if (n == NULL)
		return;
	parse_value(p, k, n, n);
	ynode_free(n);
}

/* Reads a K_file: the whole regular file, trailing newlines dropped. NULL after an error. */
static char *
read_value_file(struct pctx *p, const struct ynode *v, const char *path, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not hang the load; only regular files are read. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		goto fail_errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		conf_err(p->ctx, v, "%s_file: cannot read '%s': not a regular file", p->path,
		    qs(p, path));
		goto fail;
	}
	if (st.st_size > CONF_MAX_SECRET) {
		conf_err(p->ctx, v, "%s_file: '%s' is larger than 1 MiB", p->path, qs(p, path));
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		oom(p, v);
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail_errno;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	*lenp = len;
	return buf;
fail_errno:
	conf_err(p->ctx, v, "%s_file: cannot read '%s': %s", p->path, qs(p, path), strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void
parse_from_file(struct pctx *p, const struct ckey *k, const struct ynode *v,
    const struct ynode *keynode)
{
	struct ynode syn;
	const char *path;
	size_t len;
	char *buf;

	if (v->type != YN_SCALAR || is_null(v) || v->len == 0 || strlen(v->str) != v->len) {
		conf_err(p->ctx, v, "%s_file: expected a file path, got %s", p->path,
		    v->type == YN_SCALAR && !is_null(v) ? "an empty string" : got(v));
		return;
	}
	path = v->str;
	if ((buf = read_value_file(p, v, path, &len)) == NULL)
		return;
	/* The contents stand in for the value, at the position of the path. */
	memset(&syn, 0, sizeof(syn));
	syn.type = YN_SCALAR;
	syn.file = v->file;
	syn.line = v->line;
	syn.col = v->col;
	syn.str = buf;
	syn.len = len;
	parse_value(p, k, &syn, keynode);
	explicit_bzero(buf, len);   /* K_file is how secrets arrive: leave no copy behind */
	free(buf);
}

static int
find_row(const struct csect *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* "secret_file" → the row of "secret", when that is a scalar key. */
static int
find_file_row(const struct csect *s, const struct ynode *key)
{
	char name[128];
	size_t n;
	int i;

	if (key->len <= 5 || key->len - 5 >= sizeof(name) ||
	    strcmp(key->str + key->len - 5, "_file") != 0)
		return -1;
	n = key->len - 5;
	memcpy(name, key->str, n);
	name[n] = '\0';
	i = find_row(s, name);
	return i >= 0 && is_scalar_key(&s->keys[i]) ? i : -1;
}

static void
unknown_key(struct pctx *p, const struct csect *s, const struct ynode *key)
{
	const char *cand[2 * CONF_MAX_KEYS], *sug;
	char files[CONF_MAX_KEYS][64];
	size_t i, n = 0;

	for (i = 0; i < s->nkeys && i < CONF_MAX_KEYS; i++) {
		cand[n++] = s->keys[i].name;
		if (is_scalar_key(&s->keys[i])) {
			snprintf(files[i], sizeof(files[i]), "%s_file", s->keys[i].name);
			cand[n++] = files[i];
		}
	}
	sug = nearest(key->str, cand, n);
	if (p->plen > 0 && sug != NULL)
		conf_err(p->ctx, key, "unknown key '%s' in %s (did you mean '%s'?)",
		    qs(p, key->str), p->path, sug);
	else if (p->plen > 0)
		conf_err(p->ctx, key, "unknown key '%s' in %s", qs(p, key->str), p->path);
	else if (sug != NULL)
		conf_err(p->ctx, key, "unknown key '%s' (did you mean '%s'?)", qs(p, key->str), sug);
	else
		conf_err(p->ctx, key, "unknown key '%s'", qs(p, key->str));
}

/* Parses mapping `map` (NULL or empty: the section is absent) through the rows of `s`:
 * values given are parsed, absent ones get their default, required ones an error at
 * `where`. Unknown keys are reported with a suggestion. */
static void
walk(struct pctx *p, const struct csect *s, const struct ynode *map, const struct ynode *where)
{
	const struct ynode *given[CONF_MAX_KEYS], *gkey[CONF_MAX_KEYS];
	char fromfile[CONF_MAX_KEYS];
	const struct ckey *k;
	size_t i, old;
	int r, ff;

	if (map != NULL && map->type != YN_MAP) {
		if (!is_null(map)) {
			conf_err(p->ctx, map, "%s: expected a mapping, got %s", p->path,
			    map->type == YN_SEQ ? "a list" : "a scalar");
			return;
		}
		map = NULL;         /* "section:" with nothing under it */
	}
	memset(given, 0, sizeof(given));
	memset(gkey, 0, sizeof(gkey));
	memset(fromfile, 0, sizeof(fromfile));
	for (i = 0; map != NULL && i < map->n; i++) {
		const struct ynode *key = map->pairs[i].key;
		ff = 0;
		if (strlen(key->str) != key->len) {     /* "a\0b" is not "a" */
			conf_err(p->ctx, key, "%s%sa key must not contain a NUL byte", p->path,
			    p->plen ? ": " : "");
			continue;
		}
		r = find_row(s, key->str);
		if (r < 0 && (r = find_file_row(s, key)) >= 0)
			ff = 1;
		if (r < 0 || (size_t)r >= CONF_MAX_KEYS) {
			unknown_key(p, s, key);
			continue;
		}
		if (given[r] != NULL) {
			old = path_key(p, s->keys[r].name);
			conf_err(p->ctx, key, "%s: give either '%s' or '%s_file', not both", p->path,
			    s->keys[r].name, s->keys[r].name);
			path_pop(p, old);
			continue;
		}
		given[r] = map->pairs[i].val;
		gkey[r] = key;
		fromfile[r] = (char)ff;
	}
	for (i = 0; i < s->nkeys && i < CONF_MAX_KEYS; i++) {
		k = &s->keys[i];
		old = path_key(p, k->name);
		if (given[i] != NULL && fromfile[i])
			parse_from_file(p, k, given[i], gkey[i]);
		else if (given[i] != NULL)
			parse_value(p, k, given[i], gkey[i]);
		else if (k->flags & CK_OPTIONAL) {
			/* absent optional section: stays disabled */
		} else if (k->flags & CK_ALWAYS)
			k->fn(p, k, NULL, FIELD(p, k));
		else if (k->def != NULL)
			parse_default(p, k);
		else if (k->type == KT_SECTION)
			walk(p, k->arg, NULL, where);   /* absent: its own defaults */
		else if (k->flags & CK_REQUIRED)
			conf_err(p->ctx, where, "%s is required", p->path);
		path_pop(p, old);
	}
	if (s->post != NULL)
		s->post(p, map, where);
}

/* A list of mappings, each parsed through `s` into an element of `size` bytes.
 * Returns the calloc'd array (NULL when empty or on error) and its length. */
static void *
parse_items(struct pctx *p, const struct ynode *v, const struct csect *s, size_t size,
    size_t *n_out)
{
	void *arr, *saved = p->base;
	size_t i, old;

	*n_out = 0;
	if (v->type != YN_SEQ) {
		conf_err(p->ctx, v, "%s: expected a list, got %s", p->path,
		    v->type == YN_MAP ? "a mapping" : is_null(v) ? "an empty value" : "a scalar");
		return NULL;
	}
	if (v->n == 0)
		return NULL;
	if ((arr = calloc(v->n, size)) == NULL) {
		oom(p, v);
		return NULL;
	}
	for (i = 0; i < v->n; i++) {
		old = path_push(p, "[%zu]", i);
		p->base = (char *)arr + i * size;
		if (v->items[i]->type != YN_MAP)
			conf_err(p->ctx, v->items[i], "%s: expected a mapping, got %s", p->path,
			    v->items[i]->type == YN_SEQ ? "a list" : "a scalar");
		else
			walk(p, s, v->items[i], v->items[i]);
		p->base = saved;
		path_pop(p, old);
	}
	*n_out = v->n;
	return arr;
}

/* ---- custom keys: listen, workers, tls, upstream, client ------------------------------ */

static void
remember_listener(struct pctx *p, const struct units_addr *a, const struct ynode *at,
    const char *key)
{
	struct laddr *n;

	n = realloc(p->laddrs, (p->nladdrs + 1) * sizeof(*n));
	if (n == NULL)
		return;
	p->laddrs = n;
	n = &p->laddrs[p->nladdrs++];
	n->a = *a;
	memset(&n->at, 0, sizeof(n->at));
	n->at.file = at->file;
	n->at.line = at->line;
	n->at.col = at->col;
	n->key = key;
}

/* One address; 0 or -1 after an error. */
static int
parse_addr(struct pctx *p, const struct ckey *k, const struct ynode *it, const char *s,
    struct units_addr *out)
{
	const char *err;

	if (k->flags & CK_RESOLVE) {
		if ((p->ctx->no_resolve ? units_addr_unresolved(s, out, &err) :
		    units_addr_resolve(s, out, &err)) == 0)
			return 0;
	} else if (units_addr(s, (k->flags & CK_LISTEN) != 0, out, &err) == 0) {
		if (k->flags & CK_LISTEN)
			remember_listener(p, out, it, k->name);
		return 0;
	}
	conf_err(p->ctx, it, "%s: %s, got '%s'", p->path, err, qs(p, s));
	return -1;
}

static void
addrs_free(struct conf_addrs *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->text[i]);
	free(a->text);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static void
cf_addrs(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_addrs *out = field;
	const struct ynode *it;
	const char *s;
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "an address or a list of addresses");
	size_t i, old;

	if (n < 0)
		return;
	addrs_free(out);
	if (n == 0) {
		conf_err(p->ctx, v, "%s: at least one address is required", p->path);
		return;
	}
	out->v = calloc((size_t)n, sizeof(*out->v));
	out->text = calloc((size_t)n, sizeof(*out->text));
	if (out->v == NULL || out->text == NULL) {
		oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		if ((s = item_text(p, it)) != NULL &&
		    parse_addr(p, k, it, s, &out->v[out->n]) == 0 &&
		    (out->text[out->n] = xstrdup(p, it, s)) != NULL)
			out->n++;
		path_pop(p, old);
	}
}

/* listen.http / listen.admin: one address, and the int at en_off says it is there. */
static void
cf_addr1(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *s;

	if ((s = scalar_text(p, v, "an address")) == NULL)
		return;
	if (parse_addr(p, k, v, s, field) == 0)
		*(int *)(void *)((char *)p->base + k->en_off) = 1;
}

static int
addr_overlap(const struct units_addr *a, const struct units_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		if (x->sin_port != y->sin_port || x->sin_port == 0)
			return 0;
		/* SO_REUSEPORT would let a wildcard and a specific address share the port
		 * and split the traffic: treat it as the same listener. */
		return x->sin_addr.s_addr == y->sin_addr.s_addr || x->sin_addr.s_addr == 0 ||
		    y->sin_addr.s_addr == 0;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		if (x->sin6_port != y->sin6_port || x->sin6_port == 0)
			return 0;
		return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 ||
		    memcmp(&x->sin6_addr, &in6addr_any, 16) == 0 ||
		    memcmp(&y->sin6_addr, &in6addr_any, 16) == 0;
	}
	return 0;
}

static void
post_listen(struct pctx *p, const struct ynode *map, const struct ynode *where)
{
	char buf[64];
	size_t i, j;

	(void)map;
	(void)where;
	for (i = 1; i < p->nladdrs; i++)
		for (j = 0; j < i; j++)
			if (addr_overlap(&p->laddrs[i].a, &p->laddrs[j].a)) {
				conf_err(p->ctx, &p->laddrs[i].at, "listen.%s: %s is already used "
				    "by listen.%s (line %d)", p->laddrs[i].key,
				    units_addr_str(&p->laddrs[i].a, buf, sizeof(buf)),
				    p->laddrs[j].key, p->laddrs[j].at.line);
				break;
			}
}

static void
cf_workers(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *s;
	int64_t x;
	long n;

	if ((s = scalar_text(p, v, "auto or a number")) == NULL)
		return;
	if (strcasecmp(s, "auto") == 0) {
		/* in a container: its CPU limit, not the host's core count */
		n = cpu_count_available();
		*(int *)field = (int)(n < k->min ? k->min : n > k->max ? k->max : n);
		return;
	}
	if (units_int(s, k->min, k->max, &x, NULL) < 0) {
		conf_err(p->ctx, v, "%s must be auto or a number from %lld to %lld, got '%s'",
		    p->path, (long long)k->min, (long long)k->max, qs(p, s));
		return;
	}
	*(int *)field = (int)x;
}

static const struct ckey k_cert[] = {
	{ .name = "cert", .type = KT_STR, .off = offsetof(struct conf_cert, cert),
	  .flags = CK_REQUIRED, .doc = "PEM certificate chain (leaf first)." },
	{ .name = "key", .type = KT_STR, .off = offsetof(struct conf_cert, key),
	  .flags = CK_REQUIRED, .doc = "PEM private key, RSA or ECDSA." },
};
static const struct csect s_cert = { k_cert, sizeof(k_cert) / sizeof(k_cert[0]), NULL };

static void
cf_certs(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	(void)field;
	p->c->tls.certs = parse_items(p, v, k->arg, sizeof(struct conf_cert), &p->c->tls.n_certs);
	if (v->type == YN_SEQ && v->n == 0)
		conf_err(p->ctx, v, "%s: at least one certificate is required", p->path);
}

static void
cf_cidrs(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const struct ynode *it;
	const char *s, *err;
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "a list of addresses or CIDRs");
	size_t i, old;

	(void)k;
	(void)field;
	if (n < 0)
		return;
	free(p->c->client.trusted_proxies);
	p->c->client.trusted_proxies = NULL;
	p->c->client.n_trusted_proxies = 0;
	if (n == 0)
		return;
	p->c->client.trusted_proxies = calloc((size_t)n, sizeof(struct units_cidr));
	if (p->c->client.trusted_proxies == NULL) {
		oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		if ((s = item_text(p, it)) != NULL) {
			if (units_cidr(s, &p->c->client.trusted_proxies[p->c->client.n_trusted_proxies],
			    &err) == 0)
				p->c->client.n_trusted_proxies++;
			else
				conf_err(p->ctx, it, "%s: %s, got '%s'", p->path, err, qs(p, s));
		}
		path_pop(p, old);
	}
}

/* ---- headers --------------------------------------------------------------------------- */

static const char headers_default[] =
    "{Content-Security-Policy: \"default-src 'self';base-uri 'self';font-src 'self' https: "
    "data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
    "upgrade-insecure-requests\", "
    "Cross-Origin-Opener-Policy: same-origin, "
    "Cross-Origin-Resource-Policy: same-origin, "
    "Origin-Agent-Cluster: \"?1\", "
    "Referrer-Policy: no-referrer, "
    "X-Content-Type-Options: nosniff, "
    "X-DNS-Prefetch-Control: \"off\", "
    "X-Download-Options: noopen, "
    "X-Frame-Options: SAMEORIGIN, "
    "X-Permitted-Cross-Domain-Policies: none, "
    "X-XSS-Protection: \"0\"}";

static void
kvs_free(struct conf_kvs *kv)
{
	size_t i;

	for (i = 0; i < kv->n; i++) {
		free(kv->v[i].key);
		free(kv->v[i].val);
	}
	free(kv->v);
	kv->v = NULL;
	kv->n = 0;
}

static int
kvs_append(struct conf_kvs *kv, const char *key, const char *val)
{
	struct conf_kv *n;

	n = realloc(kv->v, (kv->n + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	kv->v = n;
	n[kv->n].key = strdup(key);
	n[kv->n].val = strdup(val);
	if (n[kv->n].key == NULL || n[kv->n].val == NULL) {
		free(n[kv->n].key);
		free(n[kv->n].val);
		return -1;
	}
	kv->n++;
	return 0;
}

static int
strs_append(struct conf_strs *s, const char *str)
{
	char **n, *d;

	if ((d = strdup(str)) == NULL)
		return -1;
	n = realloc(s->v, (s->n + 1) * sizeof(*n));
	if (n == NULL) {
		free(d);
		return -1;
	}
	s->v = n;
	s->v[s->n++] = d;
	return 0;
}

/* Headers visor owns: setting them here would break framing or another section. */
static const char *
header_owner(const char *name)
{
	static const char *const framing[] = { "Content-Length", "Transfer-Encoding",
	    "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", "Host", "Proxy-Connection",
	    "X-Request-Id", "Content-Type" };
	size_t i;

	for (i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (strcasecmp(name, framing[i]) == 0)
			return "is managed by visor";
	if (strcasecmp(name, "Strict-Transport-Security") == 0)
		return "is set by the hsts section";
	if (strncasecmp(name, "Access-Control-", 15) == 0)
		return "is set by the cors section";
	return NULL;
}

static void
merge_headers(struct pctx *p, const struct ynode *map)
{
	struct conf_kvs *kv = &p->c->headers;
	const struct ynode *key, *val;
	const char *owner, *s;
	size_t i, j, old;

	if (map->type != YN_MAP) {
		if (!is_null(map))
			conf_err(p->ctx, map, "%s: expected a mapping of header names to values, got %s",
			    p->path, map->type == YN_SEQ ? "a list" : "a scalar");
		return;
	}
	for (i = 0; i < map->n; i++) {
		key = map->pairs[i].key;
		val = map->pairs[i].val;
		old = path_key(p, key->str);
		if (strlen(key->str) != key->len || !is_token(key->str)) {
			conf_err(p->ctx, key, "%s: '%s' is not a valid header name", p->path,
			    qs(p, key->str));
			goto next;
		}
		if ((owner = header_owner(key->str)) != NULL) {
			conf_err(p->ctx, key, "%s: %s %s and cannot be set here", p->path,
			    key->str, owner);
			goto next;
		}
		for (j = 0; j < i; j++)
			if (strcasecmp(map->pairs[j].key->str, key->str) == 0)
				break;
		if (j < i) {
			conf_err(p->ctx, key, "%s: header '%s' is given twice (first at line %d)",
			    p->path, key->str, map->pairs[j].key->line);
			goto next;
		}
		if (val->type != YN_SCALAR) {
			conf_err(p->ctx, val, "%s: expected a string, got %s", p->path, got(val));
			goto next;
		}
		s = is_null(val) ? "" : val->str;
		if (bad_field_value(s, is_null(val) ? 0 : val->len)) {
			conf_err(p->ctx, val, "%s: header values must not contain CR, LF, NUL or "
			    "other control characters", p->path);
			goto next;
		}
		for (j = 0; j < kv->n; j++)
			if (strcasecmp(kv->v[j].key, key->str) == 0)
				break;
		if (*s == '\0') {
			/* "" = visor does not set it (an upstream's own value passes) */
			if (j < kv->n) {
				free(kv->v[j].key);
				free(kv->v[j].val);
				memmove(&kv->v[j], &kv->v[j + 1], (kv->n - j - 1) * sizeof(kv->v[0]));
				kv->n--;
			}
			if (strs_append(&p->c->headers_unset, key->str) < 0)
				oom(p, key);
		} else if (j < kv->n) {
			char *d = strdup(s);
			if (d == NULL) {
				oom(p, val);
				goto next;
			}
			free(kv->v[j].val);
			kv->v[j].val = d;      /* the default's spelling and position stay */
		} else if (kvs_append(kv, key->str, s) < 0) {
			oom(p, val);
		}
next:
		path_pop(p, old);
	}
}

static void
cf_headers(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct ynode *def;

	(void)field;
	kvs_free(&p->c->headers);
	strs_free(&p->c->headers_unset);
	def = yaml_load_buf("<default>", k->def, strlen(k->def), default_err, p);
	if (def != NULL) {
		merge_headers(p, def);
		ynode_free(def);
	}
	if (v != NULL)
		merge_headers(p, v);
}

/* ---- cors ------------------------------------------------------------------------------- */

/* "scheme://host[:port]" exactly, or "null"; a wildcard is kept as text (it never matches,
 * and the lint warns). */
static int
check_origin(struct pctx *p, const struct ynode *v, const char *s)
{
	const char *h, *e;
	int64_t port;

	if (strcmp(s, "null") == 0 || strcmp(s, "*") == 0 || strstr(s, "*.") != NULL)
		return 0;
	h = s;
	if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z')))
		goto bad;
	while ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
	    *h == '+' || *h == '-' || *h == '.')
		h++;
	if (strncmp(h, "://", 3) != 0)
		goto bad;
	h += 3;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL || e == h + 1)
			goto bad;
		for (h++; h < e; h++)
			if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f') ||
			    (*h >= 'A' && *h <= 'F') || *h == ':' || *h == '.'))
				goto bad;
		h = e + 1;
	} else {
		e = h;
		while ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '-' || *h == '.' || *h == '_')
			h++;
		if (h == e)
			goto bad;
	}
	if (*h == ':') {
		e = h + 1;
		h = e + strspn(e, "0123456789");
		if (h == e || h - e > 5 || (*h != '\0' && *h != '/'))
			goto bad;
		char digits[8];
		memcpy(digits, e, (size_t)(h - e));
		digits[h - e] = '\0';
		if (units_int(digits, 1, 65535, &port, NULL) < 0)
			goto bad;
	}
	if (*h == '/') {
		conf_err(p->ctx, v, "%s: '%s' must not have a path (an origin is "
		    "scheme://host[:port], without a trailing '/')", p->path, qs(p, s));
		return -1;
	}
	if (*h == '\0')
		return 0;
bad:
	conf_err(p->ctx, v, "%s: '%s' is not an origin (expected scheme://host[:port] or null)",
	    p->path, qs(p, s));
	return -1;
}

/* ---- redis ------------------------------------------------------------------------------ */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into a new string; *bad set on a malformed escape or %00.
 * NULL on either error or out of memory. */
static char *
pct_decode(const char *s, size_t n, int *bad)
{
	char *d = malloc(n + 1), *o = d;
	size_t i;
	int hi, lo;

	*bad = 0;
	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n)
			goto bad;
		hi = hexval(s[i + 1]);
		lo = hexval(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			goto bad;
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	return d;
bad:
	free(d);
	*bad = 1;
	return NULL;
}

static void
cf_redis_url(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	static const char form[] = "redis://[[user]:password@]host[:port][/db]";
	const char *s, *rest, *at, *colon, *hp, *slash, *h, *he, *pe;
	char tmp[256];
	int64_t x;
	int bad;

	(void)k;
	(void)field;
	if ((s = string_text(p, v)) == NULL)
		return;
	/* The URL may hold a password: messages never quote it. */
	if (strncasecmp(s, "rediss://", 9) == 0) {
		conf_err(p->ctx, v, "%s: rediss:// (TLS) is not supported; use redis://", p->path);
		return;
	}
	if (strncasecmp(s, "redis://", 8) != 0) {
		conf_err(p->ctx, v, "%s: expected a URL of the form %s", p->path, form);
		return;
	}
	rest = s + 8;
	at = strrchr(rest, '@');        /* the last one: a password may hold '@', '/', '#' */
	hp = at != NULL ? at + 1 : rest;
	if (strpbrk(hp, "?#") != NULL) {
		conf_err(p->ctx, v, "%s: query parameters are not supported (expected %s)", p->path,
		    form);
		return;
	}
	if (at != NULL) {
		colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon == NULL) {
			conf_err(p->ctx, v, "%s: credentials must be written as [user]:password@ "
			    "(expected %s)", p->path, form);
			return;
		}
		if (colon > rest) {
			p->c->redis.username = pct_decode(rest, (size_t)(colon - rest), &bad);
			if (bad)
				goto badpct;
			if (p->c->redis.username == NULL)
				goto nomem;
		}
		if (at > colon + 1) {
			p->c->redis.password = pct_decode(colon + 1, (size_t)(at - colon - 1), &bad);
			if (bad)
				goto badpct;
			if (p->c->redis.password == NULL)
				goto nomem;
		}
	}
	slash = strchr(hp, '/');
	he = slash != NULL ? slash : hp + strlen(hp);
	if (*hp == '[') {
		/* [v6]:port — the host ends at ']' */
		h = hp + 1;
		pe = memchr(hp, ']', (size_t)(he - hp));
		if (pe == NULL)
			goto badhost;
		colon = pe + 1 < he ? pe + 1 : NULL;
		if (colon != NULL && *colon != ':')
			goto badhost;
	} else {
		h = hp;
		colon = memchr(hp, ':', (size_t)(he - hp));
		pe = colon != NULL ? colon : he;
	}
	if ((size_t)(pe - h) >= sizeof(tmp) || pe == h)
		goto badhost;
	memcpy(tmp, h, (size_t)(pe - h));
	tmp[pe - h] = '\0';
	if (strspn(tmp, *hp == '[' ? "0123456789abcdefABCDEF:." :
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != strlen(tmp))
		goto badhost;
	if ((p->c->redis.host = strdup(tmp)) == NULL)
		goto nomem;
	p->c->redis.port = 6379;
	if (colon != NULL) {
		size_t pl = (size_t)(he - colon - 1);
		if (pl == 0 || pl >= 8) {
			conf_err(p->ctx, v, "%s: the port must be a number from 1 to 65535", p->path);
			return;
		}
		memcpy(tmp, colon + 1, pl);
		tmp[pl] = '\0';
		if (units_int(tmp, 1, 65535, &x, NULL) < 0) {
			conf_err(p->ctx, v, "%s: the port must be a number from 1 to 65535", p->path);
			return;
		}
		p->c->redis.port = (int)x;
	}
	p->c->redis.db = 0;
	if (slash != NULL && slash[1] != '\0') {
		if (units_int(slash + 1, 0, 1000, &x, NULL) < 0) {
			conf_err(p->ctx, v, "%s: the database must be a number from 0 to 1000",
			    p->path);
			return;
		}
		p->c->redis.db = (int)x;
	}
	if ((p->c->redis.url = strdup(s)) == NULL)
		goto nomem;
	return;
badhost:
	conf_err(p->ctx, v, "%s: missing or invalid host (expected %s)", p->path, form);
	return;
badpct:
	conf_err(p->ctx, v, "%s: invalid %%-escape in the credentials", p->path);
	return;
nomem:
	oom(p, v);
}

/* ---- jwt ------------------------------------------------------------------------------ */

static void
cf_algs(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *cand[JWT_ALG_COUNT], *s, *sug;
	const struct ynode *it;
	char list[160];
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "a list of algorithms");
	size_t i, old, o = 0;
	int a;

	(void)k;
	(void)field;
	if (n < 0)
		return;
	for (a = 0; a < JWT_ALG_COUNT; a++) {
		cand[a] = jwt_alg_name((enum jwt_alg)a);
		if (o < sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", a ? " " : "",
			    cand[a]);
	}
	p->c->jwt.algorithms = 0;
	strs_free(&p->c->jwt.algorithm_names);
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		if ((s = item_text(p, it)) == NULL)
			goto next;
		if (strcasecmp(s, "none") == 0) {
			conf_err(p->ctx, it, "%s: the 'none' algorithm is never accepted", p->path);
			goto next;
		}
		if ((a = jwt_alg_parse(s)) < 0) {
			sug = nearest(s, cand, JWT_ALG_COUNT);
			if (sug != NULL)
				conf_err(p->ctx, it, "%s: unknown algorithm '%s' (did you mean '%s'?)",
				    p->path, qs(p, s), sug);
			else
				conf_err(p->ctx, it, "%s: unknown algorithm '%s' (expected one of %s)",
				    p->path, qs(p, s), list);
			goto next;
		}
		if (!(p->c->jwt.algorithms & JWT_ALG_BIT(a))) {
			p->c->jwt.algorithms |= JWT_ALG_BIT(a);
			if (strs_append(&p->c->jwt.algorithm_names, jwt_alg_name((enum jwt_alg)a)) < 0)
				oom(p, it);
		}
next:
		path_pop(p, old);
	}
	if (n == 0)
		conf_err(p->ctx, v, "%s: at least one algorithm is required", p->path);
}

static int
check_https_url(struct pctx *p, const struct ynode *v, const char *s)
{
	if (strncasecmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/') {
		conf_err(p->ctx, v, "%s: must be an https:// URL, got '%s'", p->path, qs(p, s));
		return -1;
	}
	if (strchr(s, ' ') != NULL) {
		conf_err(p->ctx, v, "%s: '%s' is not a valid URL", p->path, qs(p, s));
		return -1;
	}
	return 0;
}

/* jwt.keys[].secret: bytes, possibly binary when read from secret_file. */
static void
cf_secret(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_jwt_key *key = p->base;

	(void)k;
	(void)field;
	if (v->type != YN_SCALAR || is_null(v)) {
		conf_err(p->ctx, v, "%s: expected a string, got %s", p->path, got(v));
		return;
	}
	if (v->len == 0) {
		conf_err(p->ctx, v, "%s must not be empty", p->path);
		return;
	}
	if ((key->secret = malloc(v->len + 1)) == NULL) {
		oom(p, v);
		return;
	}
	memcpy(key->secret, v->str, v->len);
	key->secret[v->len] = '\0';
	key->secret_len = v->len;
}

static void
post_jwt_key(struct pctx *p, const struct ynode *map, const struct ynode *where)
{
	static const char *const kinds[] = { "file", "jwks_file", "jwks_url", "secret" };
	const char *found[4];
	const struct ynode *kid;
	char name[32];
	size_t i, n = 0;

	if (map == NULL)
		return;
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s_file", kinds[i]);
		if (ynode_key(map, kinds[i]) != NULL || ynode_key(map, name) != NULL)
			found[n++] = kinds[i];
	}
	if (n == 0)
		conf_err(p->ctx, where, "%s: one of file, jwks_file, jwks_url, secret or "
		    "secret_file is required", p->path);
	else if (n > 1)
		conf_err(p->ctx, where, "%s: give only one of file, jwks_file, jwks_url or secret "
		    "(found %s and %s)", p->path, found[0], found[1]);
	kid = ynode_key(map, "kid");
	if (kid == NULL)
		kid = ynode_key(map, "kid_file");
	if (n == 1 && kid != NULL && strncmp(found[0], "jwks", 4) == 0)
		conf_err(p->ctx, kid, "%s.kid: a JWKS names its own keys; kid only applies to "
		    "file and secret keys", p->path);
}

static const struct ckey k_jwtkey[] = {
	{ .name = "file", .type = KT_STR, .off = offsetof(struct conf_jwt_key, file),
	  .doc = "PEM public key or certificate (RSA >= 2048 bits, P-256, P-384 or Ed25519)." },
	{ .name = "jwks_file", .type = KT_STR, .off = offsetof(struct conf_jwt_key, jwks_file),
	  .doc = "JWKS document on disk; re-read on SIGHUP." },
	{ .name = "jwks_url", .type = KT_STR, .off = offsetof(struct conf_jwt_key, jwks_url),
	  .check = check_https_url,
	  .doc = "https:// URL of a JWKS: cached, refreshed, kid-aware." },
	{ .name = "secret", .type = KT_CUSTOM, .fn = cf_secret, .flags = CK_SCALAR,
	  .tname = "string",
	  .doc = "HMAC secret for HS256/384/512; give it as ${VAR} or secret_file, never inline." },
	{ .name = "kid", .type = KT_STR, .off = offsetof(struct conf_jwt_key, kid),
	  .doc = "Key id matched against the token's kid (file and secret keys)." },
};
static const struct csect s_jwtkey = { k_jwtkey, sizeof(k_jwtkey) / sizeof(k_jwtkey[0]),
    post_jwt_key };

static void
cf_jwt_keys(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	(void)field;
	p->c->jwt.keys = parse_items(p, v, k->arg, sizeof(struct conf_jwt_key), &p->c->jwt.n_keys);
	if (v->type == YN_SEQ && v->n == 0)
		conf_err(p->ctx, v, "%s: at least one key is required", p->path);
}

static void
cf_claims_to_headers(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_kvs *kv = field;
	const struct ynode *key, *val;
	size_t i, j, old;

	(void)k;
	if (v->type != YN_MAP) {
		if (!is_null(v))
			conf_err(p->ctx, v, "%s: expected a mapping of claim names to header names, "
			    "got %s", p->path, v->type == YN_SEQ ? "a list" : "a scalar");
		return;
	}
	for (i = 0; i < v->n; i++) {
		key = v->pairs[i].key;
		val = v->pairs[i].val;
		old = path_key(p, key->str);
		if (key->len == 0 || strlen(key->str) != key->len || has_ctl(key->str, key->len)) {
			conf_err(p->ctx, key, "%s: invalid claim name", p->path);
		} else if (val->type != YN_SCALAR || is_null(val)) {
			conf_err(p->ctx, val, "%s: expected a header name, got %s", p->path, got(val));
		} else if (strlen(val->str) != val->len || !is_token(val->str)) {
			conf_err(p->ctx, val, "%s: '%s' is not a valid header name", p->path,
			    qs(p, val->str));
		} else {
			for (j = 0; j < kv->n; j++)
				if (strcasecmp(kv->v[j].val, val->str) == 0)
					break;
			if (j < kv->n)
				conf_err(p->ctx, val, "%s: header '%s' already carries claim '%s'",
				    p->path, qs(p, val->str), qs(p, kv->v[j].key));
			else if (kvs_append(kv, key->str, val->str) < 0)
				oom(p, val);
		}
		path_pop(p, old);
	}
}

static void
cf_revocation(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *s, *err;
	int b;

	(void)k;
	if (v == NULL) {
		*(int *)field = p->c->redis.enabled;
		return;
	}
	if ((s = scalar_text(p, v, "true or false")) == NULL)
		return;
	if (units_bool(s, &b, &err) < 0) {
		conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, qs(p, s));
		return;
	}
	if (b && !p->c->redis.enabled) {
		conf_err(p->ctx, v, "%s needs a redis section", p->path);
		return;
	}
	*(int *)field = b;
}

/* ---- rate limits ---------------------------------------------------------------------- */

static void
cf_rl_key(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_rate_limit *rl = p->base;
	const char *s;

	(void)k;
	(void)field;
	if ((s = scalar_text(p, v, "ip, user, ip+user or header:<Name>")) == NULL)
		return;
	if (strcasecmp(s, "ip") == 0)
		rl->key = RLK_IP;
	else if (strcasecmp(s, "user") == 0)
		rl->key = RLK_USER;
	else if (strcasecmp(s, "ip+user") == 0)
		rl->key = RLK_IP_USER;
	else if (strncasecmp(s, "header:", 7) == 0 && is_token(s + 7)) {
		free(rl->header);
		if ((rl->header = xstrdup(p, v, s + 7)) != NULL)
			rl->key = RLK_HEADER;
	} else if (strncasecmp(s, "header:", 7) == 0)
		conf_err(p->ctx, v, "%s: '%s' is not a valid header name", p->path, qs(p, s + 7));
	else
		conf_err(p->ctx, v, "%s: expected ip, user, ip+user or header:<Name>, got '%s'",
		    p->path, qs(p, s));
}

static const struct cenum e_rlcount[] = { { "all", RLC_ALL }, { "failures", RLC_FAILURES },
    { NULL, 0 } };

static const struct ckey k_rl[] = {
	{ .name = "limit", .type = KT_INT, .off = offsetof(struct conf_rate_limit, limit),
	  .min = 1, .max = 1000000000, .flags = CK_REQUIRED,
	  .doc = "Requests allowed per window." },
	{ .name = "window", .type = KT_DUR, .off = offsetof(struct conf_rate_limit, window_ms),
	  .min = 1000, .max = INT64_MAX, .flags = CK_REQUIRED,
	  .doc = "Length of the window." },
	{ .name = "key", .type = KT_CUSTOM, .fn = cf_rl_key, .def = "ip", .flags = CK_SCALAR,
	  .tname = "`ip`, `user`, `ip+user` or `header:<Name>`",
	  .doc = "What is counted: client IP, JWT sub (falls back to the IP when anonymous), "
	    "both, or a request header's value." },
	{ .name = "count", .type = KT_ENUM, .off = offsetof(struct conf_rate_limit, count),
	  .def = "all", .arg = e_rlcount,
	  .doc = "all: every request counts; failures: only answers >= 400 count." },
};
static const struct csect s_rl = { k_rl, sizeof(k_rl) / sizeof(k_rl[0]), NULL };

static int
valid_policy_name(const char *s)
{
	if (*s == '\0')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
	    strlen(s);
}

static void
cf_rate_limits(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_rate_limit *arr;
	void *saved = p->base;
	size_t i, old;

	(void)field;
	if (v->type != YN_MAP) {
		if (!is_null(v))
			conf_err(p->ctx, v, "%s: expected a mapping of policy names to policies, "
			    "got %s", p->path, v->type == YN_SEQ ? "a list" : "a scalar");
		return;
	}
	if (v->n == 0)
		return;
	if ((arr = calloc(v->n, sizeof(*arr))) == NULL) {
		oom(p, v);
		return;
	}
	p->c->rate_limits.v = arr;
	p->c->rate_limits.n = v->n;
	for (i = 0; i < v->n; i++) {
		const struct ynode *key = v->pairs[i].key, *val = v->pairs[i].val;
		old = path_key(p, key->str);
		if (strlen(key->str) != key->len || !valid_policy_name(key->str)) {
			conf_err(p->ctx, key, "%s: a policy name is made of letters, digits, '_' "
			    "and '-'", p->path);
		} else if ((arr[i].name = xstrdup(p, key, key->str)) != NULL) {
			p->base = &arr[i];
			if (val->type != YN_MAP)
				conf_err(p->ctx, val, "%s: expected a mapping, got %s", p->path,
				    val->type == YN_SEQ ? "a list" : is_null(val) ? "an empty value" :
				    "a scalar");
			else
				walk(p, k->arg, val, key);
			p->base = saved;
		}
		path_pop(p, old);
	}
}

/* ---- lockout -------------------------------------------------------------------------- */

static void
post_lockout(struct pctx *p, const struct ynode *map, const struct ynode *where)
{
	const struct ynode *at;
	char a[32], b[32];

	if (p->c->lockout.max_ms == 0 || p->c->lockout.base_ms == 0 ||
	    p->c->lockout.max_ms >= p->c->lockout.base_ms)
		return;
	at = ynode_get(map, "max");
	if (at == NULL)
		at = ynode_get(map, "base");
	conf_err(p->ctx, at != NULL ? at : where, "lockout.max (%s) must not be less than "
	    "lockout.base (%s)", fmt_dur(a, sizeof(a), p->c->lockout.max_ms),
	    fmt_dur(b, sizeof(b), p->c->lockout.base_ms));
}

/* ---- routes --------------------------------------------------------------------------- */

static const struct cenum e_auth[] = { { "off", AUTH_OFF }, { "optional", AUTH_OPTIONAL },
    { "required", AUTH_REQUIRED }, { NULL, 0 } };

static void
cf_route_auth(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	int a;

	if (v == NULL) {
		*(int *)field = p->c->jwt.enabled ? AUTH_REQUIRED : AUTH_OFF;
		return;
	}
	if (enum_lookup(p, k, v, &a) < 0)
		return;
	if (a != AUTH_OFF && !p->c->jwt.enabled) {
		conf_err(p->ctx, v, "%s: '%s' needs a jwt section", p->path, qs(p, v->str));
		return;
	}
	*(int *)field = a;
}

static void
cf_route_rls(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_route *rt = p->base;
	const char *cand[64], *s, *sug;
	const struct ynode *it;
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "a list of rate limit names");
	size_t i, j, old, nc;

	(void)k;
	(void)field;
	if (n < 0)
		return;
	free(rt->rate_limits);
	rt->rate_limits = NULL;
	rt->n_rate_limits = 0;
	if (n == 0)
		return;
	if ((rt->rate_limits = calloc((size_t)n, sizeof(*rt->rate_limits))) == NULL) {
		oom(p, v);
		return;
	}
	for (nc = 0; nc < p->c->rate_limits.n && nc < 64; nc++)
		cand[nc] = p->c->rate_limits.v[nc].name;
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		if ((s = item_text(p, it)) != NULL) {
			for (j = 0; j < p->c->rate_limits.n; j++)
				if (p->c->rate_limits.v[j].name != NULL &&
				    strcmp(p->c->rate_limits.v[j].name, s) == 0)
					break;
			if (j < p->c->rate_limits.n)
				rt->rate_limits[rt->n_rate_limits++] = j;
			else if (p->c->rate_limits.n == 0)
				conf_err(p->ctx, it, "%s: no rate limit named '%s' (rate_limits "
				    "defines none)", p->path, qs(p, s));
			else if ((sug = nearest(s, cand, nc)) != NULL)
				conf_err(p->ctx, it, "%s: no rate limit named '%s' in rate_limits "
				    "(did you mean '%s'?)", p->path, qs(p, s), sug);
			else
				conf_err(p->ctx, it, "%s: no rate limit named '%s' in rate_limits",
				    p->path, qs(p, s));
		}
		path_pop(p, old);
	}
}

static const struct ckey k_body[] = {
	{ .name = "schema", .type = KT_STR, .off = offsetof(struct conf_route, body_schema),
	  .doc = "JSON Schema file the body must satisfy (none: JSON well-formedness and the "
	    "`__proto__`/`constructor`/`prototype` checks only)." },
	{ .name = "max_size", .type = KT_SIZE, .off = offsetof(struct conf_route, body_max_size),
	  .def = "0", .min = 0, .max = 64LL << 30,
	  .doc = "Largest body for this route; 0 = client.max_body_size." },
};
static const struct csect s_body = { k_body, sizeof(k_body) / sizeof(k_body[0]), NULL };

static const struct ckey k_route[] = {
	{ .name = "path", .type = KT_STR, .off = offsetof(struct conf_route, path),
	  .flags = CK_REQUIRED | CK_URLPATH, .doc = "Path prefix the route matches." },
	{ .name = "methods", .type = KT_STRS, .off = offsetof(struct conf_route, methods),
	  .flags = CK_UPPER | CK_TOKEN, .tname = "list of methods", .defdoc = "any",
	  .doc = "Methods the route matches (upper-cased); absent: any method." },
	{ .name = "auth", .type = KT_CUSTOM, .fn = cf_route_auth, .arg = e_auth,
	  .off = offsetof(struct conf_route, auth), .flags = CK_SCALAR | CK_ALWAYS,
	  .tname = "`off`, `optional` or `required`",
	  .defdoc = "`required` with a jwt section, else `off`",
	  .doc = "JWT: required = 401 without a valid token; optional = verified when present." },
	{ .name = "rate_limits", .type = KT_CUSTOM, .fn = cf_route_rls,
	  .tname = "list of policy names", .defdoc = "none",
	  .doc = "Policies from rate_limits applied to this route, in order." },
	{ .name = "body", .type = KT_SECTION, .arg = &s_body, .flags = CK_OPTIONAL,
	  .en_off = offsetof(struct conf_route, has_body),
	  .doc = "Edge body checks: JSON only (415 otherwise), size, optional schema." },
};
static const struct csect s_route = { k_route, sizeof(k_route) / sizeof(k_route[0]), NULL };

static void
cf_routes(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	(void)field;
	p->c->routes.v = parse_items(p, v, k->arg, sizeof(struct conf_route), &p->c->routes.n);
}

/* ---- errors, probes -------------------------------------------------------------------- */

static void
cf_scrub(struct pctx *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const struct ynode *it;
	const char *s, *err;
	const struct ynode *lv = list_node(p, v);
	long n = list_count(p, lv, "a list of status codes and ranges");
	size_t i, old;
	int lo, hi;

	(void)k;
	(void)field;
	if (n < 0)
		return;
	free(p->c->errors.scrub);
	p->c->errors.scrub = NULL;
	p->c->errors.n_scrub = 0;
	if (n == 0)
		return;
	if ((p->c->errors.scrub = calloc((size_t)n, sizeof(*p->c->errors.scrub))) == NULL) {
		oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = item_at(lv, i);
		old = item_push(p, lv, i);
		if ((s = item_text(p, it)) != NULL) {
			if (units_status_range(s, &lo, &hi, &err) == 0) {
				p->c->errors.scrub[p->c->errors.n_scrub].lo = lo;
				p->c->errors.scrub[p->c->errors.n_scrub].hi = hi;
				p->c->errors.n_scrub++;
			} else {
				conf_err(p->ctx, it, "%s: %s, got '%s'", p->path, err, qs(p, s));
			}
		}
		path_pop(p, old);
	}
}

static void
post_probes(struct pctx *p, const struct ynode *map, const struct ynode *where)
{
	(void)map;
	(void)where;
	p->c->probes.enabled = p->c->probes.paths.n > 0;
}

/* ---- the tables ----------------------------------------------------------------------- */

#define OFF(f) offsetof(struct conf, f)

static const struct ckey k_listen[] = {
	{ .name = "https", .type = KT_CUSTOM, .fn = cf_addrs, .off = OFF(listen.https),
	  .def = "0.0.0.0:8443", .flags = CK_LISTEN, .tname = "address or list of addresses",
	  .doc = "TLS listeners." },
	{ .name = "http", .type = KT_CUSTOM, .fn = cf_addr1, .off = OFF(listen.http),
	  .en_off = OFF(listen.has_http), .flags = CK_SCALAR | CK_LISTEN, .tname = "address",
	  .defdoc = "none",
	  .doc = "Plain listener: answers 301 to https, except /healthz." },
	{ .name = "admin", .type = KT_CUSTOM, .fn = cf_addr1, .off = OFF(listen.admin),
	  .en_off = OFF(listen.has_admin), .flags = CK_SCALAR | CK_LISTEN, .tname = "address",
	  .defdoc = "none",
	  .doc = "Plain-HTTP admin listener: /healthz, /readyz, /metrics (bind it to loopback)." },
	{ .name = "redirect_port", .type = KT_INT, .off = OFF(listen.redirect_port), .def = "0",
	  .min = 0, .max = 65535, .defdoc = "the first https listener's port",
	  .doc = "Port clients use for HTTPS, put in the plain listener's 301 Location (443 is "
	  "left out): set it when a container or load balancer maps another port to visor's." },
};
static const struct csect s_listen = { k_listen, sizeof(k_listen) / sizeof(k_listen[0]),
    post_listen };

static const struct cenum e_minver[] = { { "TLSv1.2", TLS_MIN_12 }, { "TLSv1.3", TLS_MIN_13 },
    { "TLSv1", TLS_MIN_10 }, { "TLSv1.0", TLS_MIN_10 }, { "TLSv1.1", TLS_MIN_11 }, { NULL, 0 } };

static const struct ckey k_tls[] = {
	{ .name = "certificates", .type = KT_CUSTOM, .fn = cf_certs, .arg = &s_cert,
	  .flags = CK_REQUIRED | CK_ITEMS, .tname = "list of {cert, key}",
	  .doc = "Certificates; the first is the default, the others are chosen by SNI." },
	{ .name = "min_version", .type = KT_ENUM, .off = OFF(tls.min_version), .def = "TLSv1.2",
	  .arg = e_minver, .doc = "Oldest TLS version accepted. TLSv1 and TLSv1.1 are read only so `visor -t` can warn: visor never negotiates below TLS 1.2." },
	{ .name = "ciphers", .type = KT_STR, .off = OFF(tls.ciphers),
	  .def = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305",
	  .defdoc = "Mozilla intermediate",
	  .doc = "TLS 1.2 cipher list, OpenSSL syntax." },
	{ .name = "ciphersuites", .type = KT_STR, .off = OFF(tls.ciphersuites),
	  .def = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
	  .doc = "TLS 1.3 cipher suites, OpenSSL syntax." },
	{ .name = "session_tickets", .type = KT_BOOL, .off = OFF(tls.session_tickets),
	  .def = "true", .doc = "Stateless session resumption (keys rotate on reload)." },
};
static const struct csect s_tls = { k_tls, sizeof(k_tls) / sizeof(k_tls[0]), NULL };

static const struct ckey k_uptls[] = {
	{ .name = "verify", .type = KT_BOOL, .off = OFF(upstream.tls_verify), .def = "true",
	  .doc = "Verify the upstream's certificate and name." },
	{ .name = "ca", .type = KT_STR, .off = OFF(upstream.tls_ca), .defdoc = "system store",
	  .doc = "PEM bundle of the CAs trusted for the upstream." },
	{ .name = "server_name", .type = KT_STR, .off = OFF(upstream.tls_server_name),
	  .defdoc = "none", .doc = "SNI and name checked against the upstream's certificate." },
};
static const struct csect s_uptls = { k_uptls, sizeof(k_uptls) / sizeof(k_uptls[0]), NULL };

static const struct ckey k_upstream[] = {
	{ .name = "servers", .type = KT_CUSTOM, .fn = cf_addrs, .off = OFF(upstream.servers),
	  .def = "[127.0.0.1:3000]", .flags = CK_RESOLVE, .tname = "host:port or list",
	  .doc = "Round robin; host names are resolved once, at load. A failing server is "
	    "taken out and probed back." },
	{ .name = "keepalive", .type = KT_INT, .off = OFF(upstream.keepalive), .def = "64",
	  .min = 0, .max = 100000, .doc = "Idle upstream connections kept per worker." },
	{ .name = "connect_timeout", .type = KT_DUR, .off = OFF(upstream.connect_timeout_ms),
	  .def = "2s", .min = 1, .max = 3600000, .doc = "TCP (and TLS) connect to an upstream." },
	{ .name = "timeout", .type = KT_DUR, .off = OFF(upstream.timeout_ms), .def = "30s",
	  .min = 1, .max = 86400000,
	  .doc = "Wait for the upstream's response head once the request is sent (504 after)." },
	{ .name = "idle_timeout", .type = KT_DUR, .off = OFF(upstream.idle_timeout_ms),
	  .def = "4s", .min = 1, .max = 86400000,
	  .doc = "How long an idle pooled connection is kept; stay below Node's 5 s "
	    "keepAliveTimeout." },
	{ .name = "tls", .type = KT_SECTION, .arg = &s_uptls, .flags = CK_OPTIONAL,
	  .en_off = OFF(upstream.tls_enabled),
	  .doc = "Re-encrypt to the upstream; present = enabled." },
};
static const struct csect s_upstream = { k_upstream,
    sizeof(k_upstream) / sizeof(k_upstream[0]), NULL };

static const struct ckey k_client[] = {
	{ .name = "trusted_proxies", .type = KT_CUSTOM, .fn = cf_cidrs, .def = "[]",
	  .tname = "list of CIDRs",
	  .doc = "Peers whose X-Forwarded-For is believed (empty: none)." },
	{ .name = "header_timeout", .type = KT_DUR, .off = OFF(client.header_timeout_ms),
	  .def = "10s", .min = 1, .max = 3600000,
	  .doc = "The whole request head must arrive within this (408 after)." },
	{ .name = "idle_timeout", .type = KT_DUR, .off = OFF(client.idle_timeout_ms),
	  .def = "60s", .min = 1, .max = 86400000, .doc = "Keep-alive idle time." },
	{ .name = "max_header_size", .type = KT_SIZE, .off = OFF(client.max_header_size),
	  .def = "16k", .min = 1 << 10, .max = 1 << 20, .doc = "Request head limit (431 past it)." },
	{ .name = "max_body_size", .type = KT_SIZE, .off = OFF(client.max_body_size),
	  .def = "1m", .min = 0, .max = 64LL << 30, .doc = "Request body limit (413 past it)." },
	{ .name = "max_connections", .type = KT_INT, .off = OFF(client.max_connections),
	  .def = "10000", .min = 1, .max = 1000000, .doc = "Client connections per worker." },
	{ .name = "allow_underscores", .type = KT_BOOL, .off = OFF(client.allow_underscores),
	  .def = "false",
	  .doc = "Forward request headers whose names hold `_`. Off: they are dropped, since "
	    "CGI-style upstreams read `X_User_Id` as `X-User-Id` (nginx's "
	    "underscores_in_headers)." },
};
static const struct csect s_client = { k_client, sizeof(k_client) / sizeof(k_client[0]), NULL };

static const struct ckey k_hsts[] = {
	{ .name = "max_age", .type = KT_DUR_S, .off = OFF(hsts.max_age), .def = "31536000",
	  .min = 0, .max = INT64_MAX,
	  .doc = "Strict-Transport-Security max-age, in seconds (or a duration such as 365d)." },
	{ .name = "include_subdomains", .type = KT_BOOL, .off = OFF(hsts.include_subdomains),
	  .def = "true", .doc = "Adds includeSubDomains." },
	{ .name = "preload", .type = KT_BOOL, .off = OFF(hsts.preload), .def = "false",
	  .doc = "Adds preload (only once the domain qualifies)." },
};
static const struct csect s_hsts = { k_hsts, sizeof(k_hsts) / sizeof(k_hsts[0]), NULL };

static const struct cenum e_onbad[] = { { "reject", CORS_REJECT }, { "omit", CORS_OMIT },
    { NULL, 0 } };

static const struct ckey k_cors[] = {
	{ .name = "origins", .type = KT_STRS, .off = OFF(cors.origins), .check = check_origin,
	  .flags = CK_REQUIRED, .tname = "list of origins",
	  .doc = "Allowed origins, exactly scheme://host[:port] (or null); compared after "
	    "lower-casing and dropping a default port. No wildcards." },
	{ .name = "credentials", .type = KT_BOOL, .off = OFF(cors.credentials), .def = "false",
	  .doc = "Sends Access-Control-Allow-Credentials: true." },
	{ .name = "methods", .type = KT_STRS, .off = OFF(cors.methods),
	  .def = "[GET, POST, PUT, PATCH, DELETE]", .flags = CK_UPPER | CK_TOKEN,
	  .tname = "list of methods", .doc = "Methods a preflight may ask for." },
	{ .name = "headers", .type = KT_STRS, .off = OFF(cors.headers),
	  .def = "[Content-Type, Authorization]", .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Request headers a preflight may ask for." },
	{ .name = "expose", .type = KT_STRS, .off = OFF(cors.expose), .def = "[X-Request-Id]",
	  .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Access-Control-Expose-Headers." },
	{ .name = "max_age", .type = KT_DUR_S, .off = OFF(cors.max_age), .def = "86400",
	  .min = 0, .max = INT64_MAX, .doc = "Access-Control-Max-Age, in seconds." },
	{ .name = "on_disallowed", .type = KT_ENUM, .off = OFF(cors.on_disallowed),
	  .def = "reject", .arg = e_onbad,
	  .doc = "A request from an origin not listed: reject = 403; omit = forwarded without "
	    "CORS headers." },
};
static const struct csect s_cors = { k_cors, sizeof(k_cors) / sizeof(k_cors[0]), NULL };

static const struct cenum e_onerr[] = { { "local", REDIS_LOCAL }, { "open", REDIS_OPEN },
    { "closed", REDIS_CLOSED }, { NULL, 0 } };

static const struct ckey k_redis[] = {
	{ .name = "url", .type = KT_CUSTOM, .fn = cf_redis_url, .def = "redis://127.0.0.1:6379/0",
	  .flags = CK_SCALAR, .tname = "redis:// URL",
	  .doc = "redis://[[user]:password@]host[:port][/db]; db 0 to 1000. rediss:// is not "
	    "supported." },
	{ .name = "timeout", .type = KT_DUR, .off = OFF(redis.timeout_ms), .def = "50ms",
	  .min = 1, .max = 60000, .doc = "Per command." },
	{ .name = "on_error", .type = KT_ENUM, .off = OFF(redis.on_error), .def = "local",
	  .arg = e_onerr,
	  .doc = "Redis unreachable: local = in-memory store with the same limits; open = allow; "
	    "closed = 503." },
};
static const struct csect s_redis = { k_redis, sizeof(k_redis) / sizeof(k_redis[0]), NULL };

static const struct ckey k_jwt[] = {
	{ .name = "algorithms", .type = KT_CUSTOM, .fn = cf_algs, .def = "[RS256, ES256]",
	  .tname = "list of algorithms",
	  .doc = "Allowlist from HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 "
	    "ES384 EdDSA; none is never accepted." },
	{ .name = "keys", .type = KT_CUSTOM, .fn = cf_jwt_keys, .arg = &s_jwtkey,
	  .flags = CK_REQUIRED | CK_ITEMS, .tname = "list of keys",
	  .doc = "Verification keys; a key is only used with algorithms of its own type." },
	{ .name = "issuer", .type = KT_STR, .off = OFF(jwt.issuer), .defdoc = "not checked",
	  .doc = "Required iss." },
	{ .name = "audience", .type = KT_STRS, .off = OFF(jwt.audience), .defdoc = "not checked",
	  .tname = "string or list", .doc = "Accepted aud values (any one matches)." },
	{ .name = "leeway", .type = KT_DUR, .off = OFF(jwt.leeway_ms), .def = "30s", .min = 0,
	  .max = 3600000, .doc = "Clock skew allowed on exp, nbf and iat." },
	{ .name = "required_claims", .type = KT_STRS, .off = OFF(jwt.required_claims),
	  .def = "[exp]", .tname = "list of claim names",
	  .doc = "Claims a token must carry." },
	{ .name = "cookie", .type = KT_STR, .off = OFF(jwt.cookie), .check = check_token,
	  .defdoc = "none", .doc = "Also read the token from this cookie." },
	{ .name = "claims_to_headers", .type = KT_CUSTOM, .fn = cf_claims_to_headers,
	  .off = OFF(jwt.claims_to_headers), .tname = "mapping claim → header",
	  .defdoc = "none",
	  .doc = "Claims sent upstream as headers; the same headers from the client are dropped." },
	{ .name = "revocation", .type = KT_CUSTOM, .fn = cf_revocation, .off = OFF(jwt.revocation),
	  .flags = CK_SCALAR | CK_ALWAYS, .tname = "boolean",
	  .defdoc = "true with a redis section, else false",
	  .doc = "Reject a jti found at `visor:revoked:<jti>` and tokens whose iat precedes "
	    "`visor:revoked-before:<sub>` (unix seconds); needs redis." },
};
static const struct csect s_jwt = { k_jwt, sizeof(k_jwt) / sizeof(k_jwt[0]), NULL };

static const struct cenum e_rlh[] = { { "draft-6", RLH_DRAFT6 }, { "draft-7", RLH_DRAFT7 },
    { "draft-8", RLH_DRAFT8 }, { "legacy", RLH_LEGACY }, { "off", RLH_OFF }, { NULL, 0 } };

static const struct ckey k_lockout[] = {
	{ .name = "path", .type = KT_STR, .off = OFF(lockout.path), .flags = CK_REQUIRED | CK_URLPATH,
	  .doc = "Login path whose failures count." },
	{ .name = "field", .type = KT_STR, .off = OFF(lockout.field), .def = "email",
	  .doc = "Body field naming the account (JSON or form; lower-cased)." },
	{ .name = "after", .type = KT_INT, .off = OFF(lockout.after), .def = "5", .min = 1,
	  .max = 1000, .doc = "Failures allowed before the first lock." },
	{ .name = "base", .type = KT_DUR, .off = OFF(lockout.base_ms), .def = "1s", .min = 1,
	  .max = 86400000, .doc = "First lock; doubles with each further failure." },
	{ .name = "max", .type = KT_DUR, .off = OFF(lockout.max_ms), .def = "15m", .min = 1,
	  .max = 30LL * 86400000, .doc = "Longest lock (at least base)." },
};
static const struct csect s_lockout = { k_lockout, sizeof(k_lockout) / sizeof(k_lockout[0]),
    post_lockout };

static const struct ckey k_errors[] = {
	{ .name = "scrub", .type = KT_CUSTOM, .fn = cf_scrub, .def = "[500-599]",
	  .tname = "list of codes and ranges",
	  .doc = "Upstream answers with these statuses get the generic JSON body (original "
	    "logged with the request id)." },
	{ .name = "stack_traces", .type = KT_BOOL, .off = OFF(errors.stack_traces), .def = "true",
	  .doc = "Also scrub any 4xx body that carries a stack trace." },
};
static const struct csect s_errors = { k_errors, sizeof(k_errors) / sizeof(k_errors[0]), NULL };

static const struct ckey k_probes[] = {
	{ .name = "paths", .type = KT_STRS, .off = OFF(probes.paths), .flags = CK_URLPATH,
	  .def = "[/.env, /.git/, /wp-admin, /wp-login.php, /phpmyadmin, /server-status]",
	  .tname = "list of path prefixes",
	  .doc = "Scanner paths answered 404 and counted; [] turns probe detection off." },
	{ .name = "ban_after", .type = KT_INT, .off = OFF(probes.ban_after), .def = "10", .min = 1,
	  .max = 1000000, .doc = "Probes per IP within 10 minutes before a ban." },
	{ .name = "ban_for", .type = KT_DUR, .off = OFF(probes.ban_for_ms), .def = "1h",
	  .min = 1000, .max = 30LL * 86400000, .doc = "Ban length (403 to every request)." },
};
static const struct csect s_probes = { k_probes, sizeof(k_probes) / sizeof(k_probes[0]),
    post_probes };

static const struct cenum e_level[] = { { "error", LOG_ERROR }, { "warn", LOG_WARN },
    { "info", LOG_INFO }, { "debug", LOG_DEBUG }, { NULL, 0 } };
static const struct cenum e_access[] = { { "stdout", ACCESS_STDOUT }, { "off", ACCESS_OFF },
    { NULL, 0 } };

static const struct ckey k_log[] = {
	{ .name = "level", .type = KT_ENUM, .off = OFF(log.level), .def = "info", .arg = e_level,
	  .doc = "Lifecycle and error messages on stderr (JSON lines) at this level and above." },
	{ .name = "access", .type = KT_ENUM, .off = OFF(log.access), .def = "stdout",
	  .arg = e_access, .doc = "Access log: one JSON object a line on stdout, or off." },
};
static const struct csect s_log = { k_log, sizeof(k_log) / sizeof(k_log[0]), NULL };

/* Order matters: redis before jwt (revocation default), jwt and rate_limits before routes
 * (auth default, policy names). */
static const struct ckey k_root[] = {
	{ .name = "listen", .type = KT_SECTION, .arg = &s_listen, .doc = "Listening addresses." },
	{ .name = "workers", .type = KT_CUSTOM, .fn = cf_workers, .off = OFF(workers),
	  .def = "auto", .min = 1, .max = 256, .flags = CK_SCALAR,
	  .tname = "`auto` or integer, 1–256",
	  .doc = "Event-loop threads; auto = the number of online CPUs." },
	{ .name = "shutdown_delay", .type = KT_DUR, .off = OFF(shutdown_delay_ms),
	  .def = "0s", .min = 0, .max = 3600000,
	  .doc = "On SIGTERM/SIGINT, /readyz answers 503 at once and visor keeps accepting for "
	    "this long, so load balancers stop sending before the listeners close." },
	{ .name = "shutdown_timeout", .type = KT_DUR, .off = OFF(shutdown_timeout_ms),
	  .def = "15s", .min = 0, .max = 86400000,
	  .doc = "After shutdown_delay, how long in-flight requests may take before visor exits." },
	{ .name = "tls", .type = KT_SECTION, .arg = &s_tls, .doc = "TLS termination." },
	{ .name = "upstream", .type = KT_SECTION, .arg = &s_upstream,
	  .doc = "The Node.js servers behind visor." },
	{ .name = "client", .type = KT_SECTION, .arg = &s_client,
	  .doc = "Limits and timeouts on the client side." },
	{ .name = "hsts", .type = KT_SECTION, .arg = &s_hsts,
	  .doc = "Strict-Transport-Security on every HTTPS answer." },
	{ .name = "headers", .type = KT_CUSTOM, .fn = cf_headers, .def = headers_default,
	  .flags = CK_ALWAYS, .tname = "mapping name → value",
	  .defdoc = "the 11 headers listed below",
	  .doc = "Security headers set on every HTTPS answer, merged over the defaults name by "
	    "name (case-insensitive); \"\" = visor does not set it (the upstream's own passes)." },
	{ .name = "remove_headers", .type = KT_STRS, .off = OFF(remove_headers),
	  .def = "[X-Powered-By, Server]", .flags = CK_TOKEN, .tname = "list of headers",
	  .doc = "Stripped from upstream answers; when given, replaces the default list." },
	{ .name = "cors", .type = KT_SECTION, .arg = &s_cors, .flags = CK_OPTIONAL,
	  .en_off = OFF(cors.enabled),
	  .doc = "CORS allowlist; absent: no CORS headers, cross-origin requests pass." },
	{ .name = "redis", .type = KT_SECTION, .arg = &s_redis, .flags = CK_OPTIONAL,
	  .en_off = OFF(redis.enabled),
	  .doc = "Shared store for rate limits, lockout and revocation; absent: in-memory "
	    "(one instance only)." },
	{ .name = "jwt", .type = KT_SECTION, .arg = &s_jwt, .flags = CK_OPTIONAL,
	  .en_off = OFF(jwt.enabled), .doc = "JWT verification at the edge." },
	{ .name = "rate_limits", .type = KT_CUSTOM, .fn = cf_rate_limits, .arg = &s_rl,
	  .flags = CK_NAMED, .tname = "mapping name → policy", .defdoc = "none",
	  .doc = "Named rate-limit policies, used by routes." },
	{ .name = "rate_limit_headers", .type = KT_ENUM, .off = OFF(rate_limit_headers),
	  .def = "draft-6", .arg = e_rlh,
	  .doc = "RateLimit headers as express-rate-limit 8 emits them, or off." },
	{ .name = "lockout", .type = KT_SECTION, .arg = &s_lockout, .flags = CK_OPTIONAL,
	  .en_off = OFF(lockout.enabled),
	  .doc = "Per-account backoff on a login path, keyed by a body field." },
	{ .name = "routes", .type = KT_CUSTOM, .fn = cf_routes, .arg = &s_route, .def = "[{path: /}]",
	  .flags = CK_ITEMS, .tname = "list of routes",
	  .doc = "First match wins; no match = 404." },
	{ .name = "errors", .type = KT_SECTION, .arg = &s_errors,
	  .doc = "Scrubbing of upstream error bodies." },
	{ .name = "probes", .type = KT_SECTION, .arg = &s_probes,
	  .doc = "Scanner detection and bans." },
	{ .name = "log", .type = KT_SECTION, .arg = &s_log, .doc = "Logging." },
};
static const struct csect s_root = { k_root, sizeof(k_root) / sizeof(k_root[0]), NULL };

/* ---- parse, free, load, refs ---------------------------------------------------------- */

int
conf_parse(struct conf_ctx *ctx, const struct ynode *root, struct conf *c)
{
	struct pctx p;
	int nerr0 = ctx->nerr;

	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.c = c;
	p.base = c;
	if (root == NULL || root->type != YN_MAP) {
		conf_err(ctx, root, "the configuration must be a mapping of keys to values");
		return -1;
	}
	walk(&p, &s_root, root, root);
	free(p.laddrs);
	list_synth_free(&p);
	return ctx->nerr > nerr0 ? -1 : 0;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	conf_release_runtime(c);
	addrs_free(&c->listen.https);
	for (i = 0; i < c->tls.n_certs; i++) {
		free(c->tls.certs[i].cert);
		free(c->tls.certs[i].key);
	}
	free(c->tls.certs);
	free(c->tls.ciphers);
	free(c->tls.ciphersuites);
	addrs_free(&c->upstream.servers);
	free(c->upstream.tls_ca);
	free(c->upstream.tls_server_name);
	free(c->client.trusted_proxies);
	kvs_free(&c->headers);
	strs_free(&c->headers_unset);
	strs_free(&c->remove_headers);
	strs_free(&c->cors.origins);
	strs_free(&c->cors.methods);
	strs_free(&c->cors.headers);
	strs_free(&c->cors.expose);
	if (c->redis.password != NULL)
		explicit_bzero(c->redis.password, strlen(c->redis.password));
	if (c->redis.url != NULL)
		explicit_bzero(c->redis.url, strlen(c->redis.url));
	free(c->redis.url);
	free(c->redis.host);
	free(c->redis.password);
	free(c->redis.username);
	strs_free(&c->jwt.algorithm_names);
	for (i = 0; i < c->jwt.n_keys; i++) {
		struct conf_jwt_key *k = &c->jwt.keys[i];
		free(k->file);
		free(k->jwks_file);
		free(k->jwks_url);
		if (k->secret != NULL)
			explicit_bzero(k->secret, k->secret_len);
		free(k->secret);
		free(k->kid);
	}
	free(c->jwt.keys);
	free(c->jwt.issuer);
	strs_free(&c->jwt.audience);
	strs_free(&c->jwt.required_claims);
	free(c->jwt.cookie);
	kvs_free(&c->jwt.claims_to_headers);
	for (i = 0; i < c->rate_limits.n; i++) {
		free(c->rate_limits.v[i].name);
		free(c->rate_limits.v[i].header);
	}
	free(c->rate_limits.v);
	free(c->lockout.path);
	free(c->lockout.field);
	for (i = 0; i < c->routes.n; i++) {
		free(c->routes.v[i].path);
		strs_free(&c->routes.v[i].methods);
		free(c->routes.v[i].rate_limits);
		free(c->routes.v[i].body_schema);
	}
	free(c->routes.v);
	free(c->errors.scrub);
	strs_free(&c->probes.paths);
	ynode_free(c->tree);
	free(c->file);
	memset(c, 0, sizeof(*c));
}

void
conf_yaml_err(void *arg, const char *file, int line, int col, const char *msg)
{
	struct conf_ctx *ctx = arg;
	struct ynode at;

	memset(&at, 0, sizeof(at));
	at.file = file;
	at.line = line;
	at.col = col;
	conf_err(ctx, &at, "%s", msg);
}

struct conf *
conf_load(const char *path, struct conf_ctx *ctx)
{
	static uint64_t generation;
	struct conf *c;
	int nerr0 = ctx->nerr;

	ctx->file = path;
	ctx->root = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->file = strdup(path)) == NULL) {
		conf_err(ctx, NULL, "out of memory");
		goto fail;
	}
	if ((c->tree = yaml_load_file(path, conf_yaml_err, ctx)) == NULL)
		goto fail;
	ctx->root = c->tree;
	if (conf_parse(ctx, c->tree, c) < 0)
		goto fail;
	if (conf_build(ctx, c) < 0 || ctx->nerr > nerr0)
		goto fail;
	c->refs = 1;
	c->generation = __atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
	return c;
fail:
	ctx->root = NULL;       /* the tree goes with the conf */
	if (c != NULL) {
		conf_free(c);
		free(c);
	}
	return NULL;
}

struct conf *
conf_ref(struct conf *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
conf_unref(struct conf *c)
{
	if (c == NULL)
		return;
	/* acq_rel: the thread that frees sees every write made under the other refs */
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	conf_free(c);
	free(c);
}

int
conf_scrub_status(const struct conf *c, int st)
{
	size_t i;

	for (i = 0; i < c->errors.n_scrub; i++)
		if (st >= c->errors.scrub[i].lo && st <= c->errors.scrub[i].hi)
			return 1;
	return 0;
}

/* ---- documentation -------------------------------------------------------------------- */

/* Writes s into a markdown table cell ('|' escaped). */
static void
md_cell(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", out);
		else
			fputc(*s, out);
	}
}

static void
md_type(FILE *out, const struct ckey *k)
{
	char lo[32], hi[32];
	const struct cenum *e;
	size_t i;

	switch (k->type) {
	case KT_INT:
	case KT_DUR:
	case KT_DUR_S:
	case KT_SIZE:
		fputs(k->type == KT_INT ? "integer" : k->type == KT_SIZE ? "size" :
		    k->type == KT_DUR ? "duration" : "seconds or duration", out);
		if (k->max == INT64_MAX)
			fprintf(out, ", ≥ %s", fmt_bound(lo, sizeof(lo), k->type, k->min));
		else
			fprintf(out, ", %s–%s", fmt_bound(lo, sizeof(lo), k->type, k->min),
			    fmt_bound(hi, sizeof(hi), k->type, k->max));
		return;
	case KT_BOOL:
		fputs("boolean", out);
		return;
	case KT_STR:
		fputs(k->check == check_https_url ? "https:// URL" :
		    k->flags & CK_URLPATH ? "path" : "string", out);
		return;
	case KT_ENUM:
		for (e = k->arg, i = 0; e[i].name != NULL; i++)
			fprintf(out, "%s`%s`", i ? ", " : "", e[i].name);
		return;
	case KT_STRS:
		md_cell(out, k->tname != NULL ? k->tname : "list of strings");
		return;
	case KT_SECTION:
		fputs(k->flags & CK_OPTIONAL ? "section, optional" : "section", out);
		return;
	case KT_CUSTOM:
		md_cell(out, k->tname != NULL ? k->tname : "");
		return;
	}
}

static void
md_table(FILE *out, const struct csect *s, const char *title)
{
	char sub[128];
	const struct ckey *k;
	size_t i;

	fprintf(out, "## %s\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
	    title[0] ? title : "Top level");
	for (i = 0; i < s->nkeys; i++) {
		k = &s->keys[i];
		fprintf(out, "| `%s` | ", k->name);
		md_type(out, k);
		fputs(" | ", out);
		if (k->defdoc != NULL) {
			md_cell(out, k->defdoc);
		} else if (k->def != NULL) {
			fputc('`', out);
			md_cell(out, k->def);
			fputc('`', out);
		} else if (k->flags & CK_REQUIRED) {
			fputs("required", out);
		} else if (k->type == KT_SECTION) {
			fputs(k->flags & CK_OPTIONAL ? "absent" : "see below", out);
		} else {
			fputs("none", out);
		}
		fputs(" | ", out);
		md_cell(out, k->doc != NULL ? k->doc : "");
		fputs(" |\n", out);
	}
	fputc('\n', out);
	for (i = 0; i < s->nkeys; i++) {
		k = &s->keys[i];
		if (k->type != KT_SECTION && !(k->flags & (CK_ITEMS | CK_NAMED)))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s%s", title, title[0] ? "." : "", k->name,
		    k->flags & CK_ITEMS ? "[]" : k->flags & CK_NAMED ? ".<name>" : "");
		md_table(out, k->arg, sub);
	}
}

static void
doc_header(void *arg, const char *file, int line, int col, const char *msg)
{
	(void)arg; (void)file; (void)line; (void)col; (void)msg;
}

void
conf_doc_markdown(FILE *out)
{
	struct ynode *h;
	size_t i;

	fputs("Values: durations take ms, s, m, h, d (a bare number is seconds); sizes take k, m, "
	    "g (binary; a bare number is bytes); booleans are true/false, yes/no or on/off. A "
	    "list may be given as a single value. `${NAME}` and `${NAME:-default}` expand from "
	    "the environment in every value (`$$` is a literal `$`). Any scalar key `K` may be "
	    "given as `K_file: /path` instead: the value is then that file's contents, trailing "
	    "newlines removed.\n\n", out);
	md_table(out, &s_root, "");
	h = yaml_load_buf("<default>", headers_default, strlen(headers_default), doc_header, NULL);
	fputs("## Default `headers`\n\n| header | value |\n|---|---|\n", out);
	for (i = 0; h != NULL && i < h->n; i++) {
		fprintf(out, "| `%s` | `", h->pairs[i].key->str);
		md_cell(out, h->pairs[i].val->str);
		fputs("` |\n", out);
	}
	ynode_free(h);
}
