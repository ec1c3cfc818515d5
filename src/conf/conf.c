/* SPDX-License-Identifier: MIT
 * conf — the typed configuration (docs/configuration.md), read from the node tree of yaml.c: the
 * generic walker over the rows of schema.h, the core's own rows, and the generations.
 *
 * Rows describe every key: its name, type, where it lands (offsetof in the struct its table
 * describes), its default written as YAML text and parsed by the very code that parses the
 * user's value, its bounds and a one-line meaning. The parser walks the rows (nginx's command
 * table); conf_doc_markdown() walks the same rows to print the reference, so the
 * documentation cannot drift from the parser. Keys with structure of their own (addresses,
 * routes, ...) have a custom parse function but still a row.
 *
 * The core's rows live here (listen, workers, shutdown_*, tls, upstream, client, redis, the
 * routes' path and methods, log); every policy's rows live in its filter (filter->conf_keys,
 * filter->route_keys). One mapping may be described by several tables, each parsing into its
 * own struct (a "group"): the top level is the core's sections, then each filter's keys in
 * table order, then routes and log; a route is its core keys, then each filter's route keys.
 * Unknown keys are checked against all of them at once. The order is what cross-section
 * defaults need: redis before jwt (revocation), jwt and rate_limits before routes (the auth
 * default, policy names). This file includes http/filter.h for that table and nothing else
 * of a policy: it never reads a filter's block.
 *
 * Every error is collected with its file:line:col and parsing goes on (relayd), so one
 * `visor -t` run shows them all. Nothing here opens a socket or a TLS context: files are
 * only read for `K_file` keys (secrets); the files a config merely names (certificates,
 * keys, schemas) are checked by conf_build() in build.c. Upstream host names are only
 * checked here: net/resolve resolves them at run time (docs/deployment.md).
 *
 * Generations are reference-counted with atomics; the last conf_unref() releases the
 * runtime objects first (conf_release_runtime), then the typed fields (by their rows) and
 * the tree.
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
#include "conf/schema.h"
#include "core/util.h"
#include "http/filter.h"

_Static_assert(sizeof(enum tls_minver) == sizeof(int), "enums are stored through int *");
_Static_assert(sizeof(enum redis_onerr) == sizeof(int), "enums are stored through int *");

#define CONF_MAX_KEYS   64           /* rows of one mapping, all its tables together */
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
	if (ctx->shown_as != NULL && ctx->file != NULL && strcmp(file, ctx->file) == 0)
		file = ctx->shown_as;
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

int
conf_build_oom(struct conf_ctx *ctx, void (*free_fn)(void *), void *built, const char *what)
{
	if (built != NULL)
		free_fn(built);
	conf_err(ctx, NULL, "out of memory building %s", what);
	return -1;
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

/* ---- small helpers ------------------------------------------------------------------ */

size_t
conf_path_push(struct cparse *p, const char *fmt, ...)
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

size_t
conf_path_key(struct cparse *p, const char *name)
{
	return p->plen == 0 ? conf_path_push(p, "%s", name) : conf_path_push(p, ".%s", name);
}

void
conf_path_pop(struct cparse *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

const char *
conf_quote(struct cparse *p, const char *s)
{
	return str_printable(p->q[p->qi++ & 3], sizeof(p->q[0]), s);
}

int
conf_is_null(const struct ynode *v)
{
	return v->type == YN_SCALAR && v->plain && (v->len == 0 || strcmp(v->str, "~") == 0 ||
	    strcmp(v->str, "null") == 0 || strcmp(v->str, "Null") == 0 ||
	    strcmp(v->str, "NULL") == 0);
}

int
conf_is_map(struct cparse *p, const struct ynode *v, const char *what)
{
	if (v->type == YN_MAP)
		return 1;
	if (!conf_is_null(v))
		conf_err(p->ctx, v, "%s: expected %s, got %s", p->path, what,
		    v->type == YN_SEQ ? "a list" : "a scalar");
	return 0;
}

const char *
conf_got(const struct ynode *v)
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

int
conf_is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar(*s))
			return 0;
	return 1;
}

int
conf_has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

static void
upcase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

char *
conf_strdup(struct cparse *p, const struct ynode *at, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		conf_oom(p, at);
	return d;
}

void
conf_oom(struct cparse *p, const struct ynode *at)
{
	conf_err(p->ctx, at, "%s: out of memory", p->path);
}

const char *
conf_fmt_dur(char *buf, size_t len, int64_t ms)
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

const char *
conf_fmt_size(char *buf, size_t len, int64_t b)
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
fmt_bound(char *buf, size_t len, enum ckey_type t, int64_t v)
{
	if (t == KT_DUR)
		return conf_fmt_dur(buf, len, v);
	if (t == KT_DUR_S)
		return v > INT64_MAX / 1000 ? "forever" : conf_fmt_dur(buf, len, v * 1000);
	if (t == KT_SIZE)
		return conf_fmt_size(buf, len, v);
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* The suggestion for a misspelt name among `n` candidates: a case-insensitive match, else
 * the nearest within edit distance 3, unless reaching it rewrites every character ('x' is
 * not a typo of 'off'). NULL when nothing is close. */
const char *
conf_nearest(const char *s, const char *const *cand, size_t n)
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
const char *
conf_scalar_text(struct cparse *p, const struct ynode *v, const char *expect)
{
	if (v->type != YN_SCALAR || conf_is_null(v)) {
		conf_err(p->ctx, v, "%s: expected %s, got %s", p->path, expect, conf_got(v));
		return NULL;
	}
	if (strlen(v->str) != v->len) {
		conf_err(p->ctx, v, "%s: must not contain a NUL byte", p->path);
		return NULL;
	}
	return v->str;
}

/* A string value (KT_STR semantics): not empty, no control characters. */
const char *
conf_string_text(struct cparse *p, const struct ynode *v)
{
	const char *s = conf_scalar_text(p, v, "a string");

	if (s == NULL)
		return NULL;
	if (*s == '\0') {
		conf_err(p->ctx, v, "%s must not be empty", p->path);
		return NULL;
	}
	if (conf_has_ctl(s, v->len)) {
		conf_err(p->ctx, v, "%s: control characters are not allowed", p->path);
		return NULL;
	}
	return s;
}

/* "<path>: <why>, got '<text>'" at `at`: a value (or list item) its parser refused. */
static void
value_err(struct cparse *p, const struct ynode *at, const char *why, const char *s)
{
	conf_err(p->ctx, at, "%s: %s, got '%s'", p->path, why, conf_quote(p, s));
}

int
conf_bool_value(struct cparse *p, const struct ynode *v, int *out)
{
	const char *s, *err;

	if ((s = conf_scalar_text(p, v, "true or false")) == NULL)
		return -1;
	if (units_bool(s, out, &err) < 0) {
		value_err(p, v, err, s);
		return -1;
	}
	return 0;
}

/* The scalar v (`what`: "a duration", "a size") through a units_* parser into *x, its text
 * in *s for later messages: 0, or -1 after the error at v. */
static int
units_value(struct cparse *p, const struct ynode *v, const char *what,
    int (*parse)(const char *s, int64_t *out, const char **err), int64_t *x, const char **s)
{
	const char *err;

	if ((*s = conf_scalar_text(p, v, what)) == NULL)
		return -1;
	if (parse(*s, x, &err) < 0) {
		value_err(p, v, err, *s);
		return -1;
	}
	return 0;
}

static int
check_bounds(struct cparse *p, const struct ckey *k, const struct ynode *v, int64_t x)
{
	char lo[32], hi[32];

	if (x >= k->min && x <= k->max)
		return 0;
	if (k->max == INT64_MAX)
		conf_err(p->ctx, v, "%s must be at least %s, got '%s'", p->path,
		    fmt_bound(lo, sizeof(lo), k->type, k->min), conf_quote(p, v->str));
	else
		conf_err(p->ctx, v, "%s must be between %s and %s, got '%s'", p->path,
		    fmt_bound(lo, sizeof(lo), k->type, k->min),
		    fmt_bound(hi, sizeof(hi), k->type, k->max), conf_quote(p, v->str));
	return -1;
}

int
conf_enum_lookup(struct cparse *p, const struct ckey *k, const struct ynode *v, int *out)
{
	const struct cenum *e = k->arg;
	const char *cand[16], *s, *sug;
	char list[256];
	size_t i, n = 0, o = 0;

	if ((s = conf_scalar_text(p, v, "a string")) == NULL)
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
	sug = conf_nearest(s, cand, n);
	if (sug != NULL)
		conf_err(p->ctx, v, "%s: expected one of %s, got '%s' (did you mean '%s'?)",
		    p->path, list, conf_quote(p, s), sug);
	else
		conf_err(p->ctx, v, "%s: expected one of %s, got '%s'", p->path, list, conf_quote(p,
		    s));
	return -1;
}

/* A list written as one ${VAR} (how Docker and Kubernetes pass settings) splits on commas:
 * TRUSTED="10.0.0.0/8, 192.168.0.0/16" gives two items, an empty value gives []. A list
 * written in YAML, or a scalar without ${...}, is left as it is. The items keep the scalar's
 * position for messages. */
const struct ynode *
conf_list_node(struct cparse *p, const struct ynode *v)
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
list_synth_free(struct cparse *p)
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
long
conf_list_count(struct cparse *p, const struct ynode *v, const char *expect)
{
	if (v->type == YN_SEQ)
		return (long)v->n;
	if (v->type == YN_MAP || conf_is_null(v)) {
		conf_err(p->ctx, v, "%s: expected %s, got %s%s", p->path, expect, conf_got(v),
		    v->type == YN_MAP ? "" : " (write [] for none)");
		return -1;
	}
	return 1;
}

const struct ynode *
conf_item_at(const struct ynode *v, size_t i)
{
	return v->type == YN_SEQ ? v->items[i] : v;
}

size_t
conf_item_push(struct cparse *p, const struct ynode *v, size_t i)
{
	return v->type == YN_SEQ ? conf_path_push(p, "[%zu]", i) : p->plen;
}

/* The text of one list item: a scalar, not empty, no NUL or control characters. A plain
 * `null` stays the text "null" here (an origin may be "null"). */
const char *
conf_item_text(struct cparse *p, const struct ynode *it)
{
	if (it->type != YN_SCALAR) {
		conf_err(p->ctx, it, "%s: expected a string, got %s", p->path, conf_got(it));
		return NULL;
	}
	if (it->len == 0 || (it->plain && strcmp(it->str, "~") == 0)) {
		conf_err(p->ctx, it, "%s: empty item", p->path);
		return NULL;
	}
	if (strlen(it->str) != it->len || conf_has_ctl(it->str, it->len)) {
		conf_err(p->ctx, it, "%s: control characters are not allowed", p->path);
		return NULL;
	}
	return it->str;
}

int
conf_check_urlpath(struct cparse *p, const struct ynode *v, const char *s)
{
	if (*s != '/') {
		conf_err(p->ctx, v, "%s: '%s' must start with '/'", p->path, conf_quote(p, s));
		return -1;
	}
	if (strpbrk(s, " ?#") != NULL) {
		conf_err(p->ctx, v, "%s: '%s' must be a plain path (no spaces, query or fragment)",
		    p->path, conf_quote(p, s));
		return -1;
	}
	return 0;
}

int
conf_check_token(struct cparse *p, const struct ynode *v, const char *s)
{
	if (!conf_is_token(s)) {
		conf_err(p->ctx, v, "%s: '%s' is not a valid HTTP token", p->path, conf_quote(p,
		    s));
		return -1;
	}
	return 0;
}

void
conf_strs_free(struct conf_strs *s)
{
	strv_free(s->v, s->n);
	s->v = NULL;
	s->n = 0;
}

int
conf_strs_append(struct conf_strs *s, const char *str)
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

void
conf_kvs_free(struct conf_kvs *kv)
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

int
conf_kvs_append(struct conf_kvs *kv, const char *key, const char *val)
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

static void
parse_strs(struct cparse *p, const struct ckey *k, const struct ynode *v, struct conf_strs *out)
{
	const struct ynode *it;
	const char *s;
	const struct ynode *lv = conf_list_node(p, v);
	long n = conf_list_count(p, lv, "a list");
	size_t i, old;
	char *d;

	if (n < 0)
		return;
	conf_strs_free(out);
	if (n > 0 && (out->v = calloc((size_t)n, sizeof(*out->v))) == NULL) {
		conf_oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = conf_item_at(lv, i);
		old = conf_item_push(p, lv, i);
		s = conf_item_text(p, it);
		if (s != NULL && (k->flags & CK_TOKEN) && conf_check_token(p, it, s) < 0)
			s = NULL;
		if (s != NULL && (k->flags & CK_URLPATH) && conf_check_urlpath(p, it, s) < 0)
			s = NULL;
		if (s != NULL && k->check != NULL && k->check(p, it, s) < 0)
			s = NULL;
		if (s != NULL && (d = conf_strdup(p, it, s)) != NULL) {
			if (k->flags & CK_UPPER)
				upcase(d);
			out->v[out->n++] = d;
		}
		conf_path_pop(p, old);
	}
}

/* ---- the walker ---------------------------------------------------------------------- */

/* One table of a mapping and the struct its offsets refer to: a mapping may be described by
 * several (the top level: the core's and each filter's; a route: its core keys and each
 * filter's route keys). */
struct cgroup {
	const struct csect *s;
	void               *base;
	void               *sect;      /* p->sect while its rows are parsed */
};

static void walk_groups(struct cparse *p, const struct cgroup *g, size_t ng,
    const struct ynode *map, const struct ynode *where);

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
parse_value(struct cparse *p, const struct ckey *k, const struct ynode *v,
    const struct ynode *keynode)
{
	void *field = CONF_FIELD(p, k);
	const char *s, *err;
	int64_t x;
	int b;

	switch (k->type) {
	case KT_SECTION:
		if (k->flags & CK_OPTIONAL)
			*(int *)(void *)((char *)p->base + k->en_off) = 1;
		if ((k->flags & CK_OFF) && v->type == YN_SCALAR && !conf_is_null(v)) {
			s = v->str;
			if (strcasecmp(s, "off") != 0 && strcasecmp(s, "false") != 0) {
				conf_err(p->ctx, v, "%s: expected a mapping or off, got '%s'", p->path,
				    conf_quote(p, s));
				return;
			}
			*(int *)(void *)((char *)p->base + k->en_off) = 1;
			conf_walk(p, k->arg, NULL, keynode);     /* its defaults: nothing dangles */
			return;
		}
		conf_walk(p, k->arg, v, keynode);
		return;
	case KT_CUSTOM:
		k->fn(p, k, v, field);
		return;
	case KT_STRS:
		parse_strs(p, k, v, field);
		return;
	case KT_ENUM:
		if (conf_enum_lookup(p, k, v, &b) == 0)
			*(int *)field = b;
		return;
	case KT_STR:
		if ((s = conf_string_text(p, v)) == NULL)
			return;
		if ((k->flags & CK_URLPATH) && conf_check_urlpath(p, v, s) < 0)
			return;
		if (k->check != NULL && k->check(p, v, s) < 0)
			return;
		free(*(char **)field);
		*(char **)field = conf_strdup(p, v, s);
		return;
	case KT_BOOL:
		if (conf_bool_value(p, v, &b) == 0)
			*(int *)field = b;
		return;
	case KT_INT:
		if ((s = conf_scalar_text(p, v, "an integer")) == NULL)
			return;
		if (units_int(s, INT64_MIN, INT64_MAX, &x, &err) < 0) {
			if (strcmp(err, "integer out of range") != 0) {
				value_err(p, v, err, s);
				return;
			}
			x = s[0] == '-' ? INT64_MIN : INT64_MAX;  /* too long: say the bounds */
		}
		break;
	case KT_DUR:
	case KT_DUR_S:
		if (units_value(p, v, "a duration", units_duration_ms, &x, &s) < 0)
			return;
		if (k->type == KT_DUR_S) {
			if (x % 1000 != 0) {
				conf_err(p->ctx, v, "%s: must be a whole number of seconds, got '%s'",
				    p->path, conf_quote(p, s));
				return;
			}
			x /= 1000;
		}
		break;
	case KT_SIZE:
		if (units_value(p, v, "a size", units_size, &x, &s) < 0)
			return;
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
	struct cparse *p = arg;

	/* A default that does not parse is a bug in the table; make it loud. */
	conf_err(p->ctx, NULL, "internal error: default of %s (%s:%d:%d): %s", p->path, file,
	    line, col, msg);
}

struct ynode *
conf_default_tree(struct cparse *p, const char *text)
{
	return yaml_load_buf("<default>", text, strlen(text), default_err, p);
}

static void
parse_default(struct cparse *p, const struct ckey *k)
{
	struct ynode *n;

	if ((n = conf_default_tree(p, k->def)) == NULL)
		return;
	parse_value(p, k, n, n);
	ynode_free(n);
}

/* Reads a K_file: the whole regular file, trailing newlines dropped. NULL after an error. */
static char *
read_value_file(struct cparse *p, const struct ynode *v, const char *path, size_t *lenp)
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
		    conf_quote(p, path));
		goto fail;
	}
	if (st.st_size > CONF_MAX_SECRET) {
		conf_err(p->ctx, v, "%s_file: '%s' is larger than 1 MiB", p->path, conf_quote(p,
		    path));
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		conf_oom(p, v);
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
	conf_err(p->ctx, v, "%s_file: cannot read '%s': %s", p->path, conf_quote(p, path),
	    strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void
parse_from_file(struct cparse *p, const struct ckey *k, const struct ynode *v,
    const struct ynode *keynode)
{
	struct ynode syn;
	const char *path;
	size_t len;
	char *buf;

	if (v->type != YN_SCALAR || conf_is_null(v) || v->len == 0 || strlen(v->str) != v->len) {
		conf_err(p->ctx, v, "%s_file: expected a file path, got %s", p->path,
		    v->type == YN_SCALAR && !conf_is_null(v) ? "an empty string" : conf_got(v));
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

/* The rows of a mapping's tables, flattened: rows[i] belongs to g[grp[i]]. */
struct rows {
	const struct ckey *k[CONF_MAX_KEYS];
	unsigned char      grp[CONF_MAX_KEYS];
	size_t             n;
};

static void
rows_of(struct rows *r, const struct cgroup *g, size_t ng)
{
	size_t i, j;

	r->n = 0;
	for (j = 0; j < ng; j++)
		for (i = 0; i < g[j].s->nkeys && r->n < CONF_MAX_KEYS; i++) {
			r->k[r->n] = &g[j].s->keys[i];
			r->grp[r->n++] = (unsigned char)j;
		}
}

static int
find_row(const struct rows *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->k[i]->name, name) == 0)
			return (int)i;
	return -1;
}

/* "secret_file" → the row of "secret", when that is a scalar key. */
static int
find_file_row(const struct rows *r, const struct ynode *key)
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
	i = find_row(r, name);
	return i >= 0 && is_scalar_key(r->k[i]) ? i : -1;
}

/* Suggestions come from every table of the mapping, in row order (the first of two equally
 * near names wins). */
static void
unknown_key(struct cparse *p, const struct rows *r, const struct ynode *key)
{
	const char *cand[2 * CONF_MAX_KEYS], *sug;
	char files[CONF_MAX_KEYS][64];
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		cand[n++] = r->k[i]->name;
		if (is_scalar_key(r->k[i])) {
			snprintf(files[i], sizeof(files[i]), "%s_file", r->k[i]->name);
			cand[n++] = files[i];
		}
	}
	sug = conf_nearest(key->str, cand, n);
	if (p->plen > 0 && sug != NULL)
		conf_err(p->ctx, key, "unknown key '%s' in %s (did you mean '%s'?)",
		    conf_quote(p, key->str), p->path, sug);
	else if (p->plen > 0)
		conf_err(p->ctx, key, "unknown key '%s' in %s", conf_quote(p, key->str), p->path);
	else if (sug != NULL)
		conf_err(p->ctx, key, "unknown key '%s' (did you mean '%s'?)", conf_quote(p,
		    key->str), sug);
	else
		conf_err(p->ctx, key, "unknown key '%s'", conf_quote(p, key->str));
}

/* Parses mapping `map` (NULL or empty: the section is absent) through the tables of g, each
 * into its own base: values given are parsed, absent ones get their default, required ones
 * an error at `where`; unknown keys are reported once, against all the tables. The tables
 * are parsed in order, each followed by its post check. */
static void
walk_groups(struct cparse *p, const struct cgroup *g, size_t ng, const struct ynode *map,
    const struct ynode *where)
{
	const struct ynode *given[CONF_MAX_KEYS], *gkey[CONF_MAX_KEYS];
	char fromfile[CONF_MAX_KEYS];
	void *saved_base = p->base, *saved_sect = p->sect;
	const struct ckey *k;
	struct rows rows;
	size_t i, j, old;
	int r, ff;

	if (map != NULL && conf_is_null(map))
		map = NULL;         /* "section:" with nothing under it */
	if (map != NULL && !conf_is_map(p, map, "a mapping"))
		return;
	rows_of(&rows, g, ng);
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
		r = find_row(&rows, key->str);
		if (r < 0 && (r = find_file_row(&rows, key)) >= 0)
			ff = 1;
		if (r < 0) {
			unknown_key(p, &rows, key);
			continue;
		}
		if (given[r] != NULL) {
			old = conf_path_key(p, rows.k[r]->name);
			conf_err(p->ctx, key, "%s: give either '%s' or '%s_file', not both", p->path,
			    rows.k[r]->name, rows.k[r]->name);
			conf_path_pop(p, old);
			continue;
		}
		given[r] = map->pairs[i].val;
		gkey[r] = key;
		fromfile[r] = (char)ff;
	}
	for (i = 0, j = 0; j < ng; j++) {
		p->base = g[j].base;
		p->sect = g[j].sect;
		for (; i < rows.n && rows.grp[i] == j; i++) {
			k = rows.k[i];
			old = conf_path_key(p, k->name);
			if (given[i] != NULL && fromfile[i])
				parse_from_file(p, k, given[i], gkey[i]);
			else if (given[i] != NULL)
				parse_value(p, k, given[i], gkey[i]);
			else if (k->flags & CK_OPTIONAL) {
				/* absent optional section: stays disabled */
			} else if (k->flags & CK_ALWAYS)
				k->fn(p, k, NULL, CONF_FIELD(p, k));
			else if (k->def != NULL)
				parse_default(p, k);
			else if (k->type == KT_SECTION)
				conf_walk(p, k->arg, NULL, where);   /* absent: its own defaults */
			else if (k->flags & CK_REQUIRED)
				conf_err(p->ctx, where, "%s is required", p->path);
			conf_path_pop(p, old);
		}
		if (g[j].s->post != NULL)
			g[j].s->post(p, map, where);
	}
	p->base = saved_base;
	p->sect = saved_sect;
}

void
conf_walk(struct cparse *p, const struct csect *s, const struct ynode *map,
    const struct ynode *where)
{
	struct cgroup g = { s, p->base, p->sect };

	walk_groups(p, &g, 1, map, where);
}

void
conf_scalar_items(struct cparse *p, const struct ynode *v, const char *expect, size_t size,
    int (*item)(const char *s, void *elem, const char **err), void **arr, size_t *n)
{
	const struct ynode *lv = conf_list_node(p, v), *it;
	long cnt = conf_list_count(p, lv, expect);
	const char *s, *err;
	size_t i, old;
	char *a;

	if (cnt < 0)
		return;
	free(*arr);
	*arr = NULL;
	*n = 0;
	if ((a = conf_items_alloc(p, v, (size_t)cnt, size)) == NULL)
		return;
	*arr = a;
	for (i = 0; i < (size_t)cnt; i++) {
		it = conf_item_at(lv, i);
		old = conf_item_push(p, lv, i);
		if ((s = conf_item_text(p, it)) != NULL) {
			if (item(s, a + *n * size, &err) == 0)
				(*n)++;
			else
				value_err(p, it, err, s);
		}
		conf_path_pop(p, old);
	}
}

void *
conf_items_alloc(struct cparse *p, const struct ynode *v, size_t n, size_t size)
{
	void *arr;

	if (n == 0)
		return NULL;
	if ((arr = calloc(n, size)) == NULL)
		conf_oom(p, v);
	return arr;
}

void
conf_parse_list(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const struct clist *cl = k->arg;

	conf_scalar_items(p, v, cl->expect, cl->size, cl->item, (void **)field,
	    (size_t *)(void *)((char *)p->base + cl->n_off));
}

void
conf_release_list(const struct ckey *k, void *base)
{
	const struct clist *cl = k->arg;
	void **arr = (void **)(void *)((char *)base + k->off);

	free(*arr);
	*arr = NULL;
	*(size_t *)(void *)((char *)base + cl->n_off) = 0;
}

void *
conf_parse_items(struct cparse *p, const struct ynode *v, const struct csect *s, size_t size,
    size_t *n_out)
{
	void *arr, *saved = p->base;
	size_t i, old;

	*n_out = 0;
	if (v->type != YN_SEQ) {
		conf_err(p->ctx, v, "%s: expected a list, got %s", p->path,
		    v->type == YN_MAP ? "a mapping" : conf_is_null(v) ? "an empty value" :
		    "a scalar");
		return NULL;
	}
	if ((arr = conf_items_alloc(p, v, v->n, size)) == NULL)
		return NULL;
	for (i = 0; i < v->n; i++) {
		old = conf_path_push(p, "[%zu]", i);
		p->base = (char *)arr + i * size;
		if (v->items[i]->type != YN_MAP)
			conf_err(p->ctx, v->items[i], "%s: expected a mapping, got %s", p->path,
			    v->items[i]->type == YN_SEQ ? "a list" : "a scalar");
		else
			conf_walk(p, s, v->items[i], v->items[i]);
		p->base = saved;
		conf_path_pop(p, old);
	}
	*n_out = v->n;
	return arr;
}

/* ---- releasing what the rows parsed ----------------------------------------------------- */

void
conf_release(const struct csect *s, void *base)
{
	const struct ckey *k;
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		k = &s->keys[i];
		switch (k->type) {
		case KT_STR:
			free(*(char **)(void *)((char *)base + k->off));
			*(char **)(void *)((char *)base + k->off) = NULL;
			break;
		case KT_STRS:
			conf_strs_free((struct conf_strs *)(void *)((char *)base + k->off));
			break;
		case KT_SECTION:
			conf_release(k->arg, base);
			break;
		case KT_CUSTOM:
			if (k->release != NULL)
				k->release(k, base);
			break;
		default:
			break;
		}
	}
}

void
conf_release_items(const struct csect *s, void *arr, size_t size, size_t n)
{
	size_t i;

	for (i = 0; arr != NULL && i < n; i++)
		conf_release(s, (char *)arr + i * size);
	free(arr);
}

void
conf_release_kvs(const struct ckey *k, void *base)
{
	conf_kvs_free((struct conf_kvs *)(void *)((char *)base + k->off));
}

/* ---- custom keys: listen, workers, tls, upstream, client ------------------------------ */

/* A listener, remembered for the address-conflict check. */
struct conf_laddr {
	struct units_addr a;
	struct ynode      at;       /* position only */
	const char       *key;
};

static void
remember_listener(struct cparse *p, const struct units_addr *a, const struct ynode *at,
    const char *key)
{
	struct conf_laddr *n;

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
parse_addr(struct cparse *p, const struct ckey *k, const struct ynode *it, const char *s,
    struct units_addr *out)
{
	const char *err;

	if (k->flags & CK_RESOLVE) {
		/* a name is left zeroed (AF_UNSPEC) for net/resolve: loading, `visor -t` and
		 * SIGHUP never wait for DNS */
		if (units_addr_unresolved(s, out, &err) == 0)
			return 0;
	} else if (units_addr(s, (k->flags & CK_LISTEN) != 0, out, &err) == 0) {
		if (k->flags & CK_LISTEN)
			remember_listener(p, out, it, k->name);
		return 0;
	}
	value_err(p, it, err, s);
	return -1;
}

static void
addrs_free(struct conf_addrs *a)
{
	strv_free(a->text, a->n);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static void
rel_addrs(const struct ckey *k, void *base)
{
	addrs_free((struct conf_addrs *)(void *)((char *)base + k->off));
}

static void
cf_addrs(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct conf_addrs *out = field;
	const struct ynode *it;
	const char *s;
	const struct ynode *lv = conf_list_node(p, v);
	long n = conf_list_count(p, lv, "an address or a list of addresses");
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
		conf_oom(p, v);
		return;
	}
	for (i = 0; i < (size_t)n; i++) {
		it = conf_item_at(lv, i);
		old = conf_item_push(p, lv, i);
		if ((s = conf_item_text(p, it)) != NULL &&
		    parse_addr(p, k, it, s, &out->v[out->n]) == 0 &&
		    (out->text[out->n] = conf_strdup(p, it, s)) != NULL)
			out->n++;
		conf_path_pop(p, old);
	}
}

/* listen.http / listen.admin: one address, and the int at en_off says it is there. */
static void
cf_addr1(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *s;

	if ((s = conf_scalar_text(p, v, "an address")) == NULL)
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
post_listen(struct cparse *p, const struct ynode *map, const struct ynode *where)
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
cf_workers(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	const char *s;
	int64_t x;
	long n;

	if ((s = conf_scalar_text(p, v, "auto or a number")) == NULL)
		return;
	if (strcasecmp(s, "auto") == 0) {
		/* in a container: its CPU limit, not the host's core count */
		n = cpu_count_available();
		*(int *)field = (int)(n < k->min ? k->min : n > k->max ? k->max : n);
		return;
	}
	if (units_int(s, k->min, k->max, &x, NULL) < 0) {
		conf_err(p->ctx, v, "%s must be auto or a number from %lld to %lld, got '%s'",
		    p->path, (long long)k->min, (long long)k->max, conf_quote(p, s));
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
cf_certs(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	(void)field;
	p->c->tls.certs = conf_parse_items(p, v, k->arg, sizeof(struct conf_cert),
	    &p->c->tls.n_certs);
	if (v->type == YN_SEQ && v->n == 0)
		conf_err(p->ctx, v, "%s: at least one certificate is required", p->path);
}

static void
rel_certs(const struct ckey *k, void *base)
{
	struct conf *c = base;

	conf_release_items(k->arg, c->tls.certs, sizeof(struct conf_cert), c->tls.n_certs);
	c->tls.certs = NULL;
	c->tls.n_certs = 0;
}

static int
cidr_item(const char *s, void *elem, const char **err)
{
	return units_cidr(s, elem, err);
}

/* The two CIDR lists, listen.proxy_protocol and client.trusted_proxies (conf_parse_list). */
static const struct clist l_pp_cidrs = { offsetof(struct conf, listen.n_proxy_protocol),
    sizeof(struct units_cidr), cidr_item, "a list of addresses or CIDRs" };
static const struct clist l_trusted_cidrs = { offsetof(struct conf, client.n_trusted_proxies),
    sizeof(struct units_cidr), cidr_item, "a list of addresses or CIDRs" };

/* ---- redis ------------------------------------------------------------------------------ */

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
		hi = hex_digit(s[i + 1]);
		lo = hex_digit(s[i + 2]);
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
cf_redis_url(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	static const char form[] = "redis[s]://[[user]:password@]host[:port][/db]";
	const char *s, *rest, *at, *colon, *hp, *slash, *h, *he, *pe;
	char tmp[256];
	int64_t x;
	int bad;

	(void)k;
	(void)field;
	if ((s = conf_string_text(p, v)) == NULL)
		return;
	/* The URL may hold a password: messages never quote it. */
	p->c->redis.tls = strncasecmp(s, "rediss://", 9) == 0;
	if (!p->c->redis.tls && strncasecmp(s, "redis://", 8) != 0) {
		conf_err(p->ctx, v, "%s: expected a URL of the form %s", p->path, form);
		return;
	}
	rest = s + (p->c->redis.tls ? 9 : 8);
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
	conf_oom(p, v);
}

/* The URL and password are secrets: wiped before they are freed. */
static void
rel_redis_url(const struct ckey *k, void *base)
{
	struct conf *c = base;

	(void)k;
	if (c->redis.password != NULL)
		explicit_bzero(c->redis.password, strlen(c->redis.password));
	if (c->redis.url != NULL)
		explicit_bzero(c->redis.url, strlen(c->redis.url));
	free(c->redis.url);
	free(c->redis.host);
	free(c->redis.password);
	free(c->redis.username);
	c->redis.url = c->redis.host = c->redis.password = c->redis.username = NULL;
}

int
conf_hostport(const char *s, char *host, size_t hlen, int *port, int defport, const char **err)
{
	const char *h = s, *he, *colon;
	int64_t x;
	char tmp[8];

	if (*s == '[') {
		h = s + 1;
		if ((he = strchr(h, ']')) == NULL)
			goto badhost;
		colon = he[1] == ':' ? he + 1 : NULL;
		if (he[1] != '\0' && colon == NULL)
			goto badhost;
	} else {
		colon = strrchr(s, ':');
		he = colon != NULL ? colon : s + strlen(s);
		if (colon != NULL && memchr(s, ':', (size_t)(colon - s)) != NULL) {
			*err = "an IPv6 address must be written in brackets, as [::1]:26379";
			return -1;
		}
	}
	if (he == h || (size_t)(he - h) >= hlen)
		goto badhost;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	if (strspn(host, *s == '[' ? "0123456789abcdefABCDEF:." :
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != strlen(host))
		goto badhost;
	*port = defport;
	if (colon != NULL) {
		if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(tmp) ||
		    units_int(colon + 1, 1, 65535, &x, NULL) < 0) {
			*err = "the port must be a number from 1 to 65535";
			return -1;
		}
		*port = (int)x;
	}
	return 0;
badhost:
	*err = "expected host:port";
	return -1;
}

/* host:port, the port defaulting to defport. */
static int
check_node(struct cparse *p, const struct ynode *v, const char *s, int defport)
{
	char host[256];
	const char *err = NULL;
	int port;

	if (conf_hostport(s, host, sizeof(host), &port, defport, &err) == 0)
		return 0;
	conf_err(p->ctx, v, "%s: %s, got '%s'", p->path, err, conf_quote(p, s));
	return -1;
}

static int
check_sentinel_node(struct cparse *p, const struct ynode *v, const char *s)
{
	return check_node(p, v, s, 26379);
}

/* A section's `nodes`: an empty list is an error at the list (a missing key is reported as
 * required; bad items at themselves). */
static void
nodes_needed(struct cparse *p, const struct ynode *map, size_t have, const char *what)
{
	const struct ynode *n = ynode_get(map, "nodes");

	if (map != NULL && have == 0 && n != NULL && (n->type != YN_SEQ || n->n == 0))
		conf_err(p->ctx, n, "%s.nodes: at least one %s (host:port) is needed", p->path,
		    what);
}

/* The sentinel section: a master name and at least one node. */
static void
post_sentinel(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	nodes_needed(p, map, p->c->redis.sentinel_nodes.n, "sentinel");
}

static int
check_cluster_node(struct cparse *p, const struct ynode *v, const char *s)
{
	return check_node(p, v, s, 6379);
}

static void
post_cluster(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	nodes_needed(p, map, p->c->redis.cluster_nodes.n, "cluster node");
}

/* The redis section as a whole: a cluster has neither sentinels nor databases. */
static void
post_redis(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	const struct ynode *cl = ynode_get(map, "cluster");

	if (map == NULL || cl == NULL || !p->c->redis.cluster)
		return;
	if (p->c->redis.sentinel)
		conf_err(p->ctx, cl, "%s.cluster: a Redis Cluster has no sentinels: use "
		    "redis.cluster or redis.sentinel, not both", p->path);
	if (p->c->redis.db != 0)
		conf_err(p->ctx, ynode_get(map, "url"), "%s.url: a Redis Cluster has only "
		    "database 0, got /%d", p->path, p->c->redis.db);
}

/* ---- routes: the core keys, then each filter's ----------------------------------------- */

static const struct ckey k_route[] = {
	{ .name = "path", .type = KT_STR, .off = offsetof(struct conf_route, path),
	  .flags = CK_REQUIRED | CK_URLPATH, .doc = "Path prefix the route matches." },
	{ .name = "methods", .type = KT_STRS, .off = offsetof(struct conf_route, methods),
	  .flags = CK_UPPER | CK_TOKEN, .tname = "list of methods", .defdoc = "any",
	  .doc = "Methods the route matches (upper-cased); absent: any method." },
};
static const struct csect s_route = CONF_SECT(k_route, NULL);

/* Appends to g each filter's table (its route keys when `route`, else its top-level keys),
 * in table order, with the block it parses into: blocks[i], allocated here when `alloc`
 * (blocks may be NULL for the docs). A filter's own top-level block rides along (sect,
 * for route keys that depend on it). *nomem is set when a block could not be allocated
 * (that filter's keys are then left out). Returns the new count. */
static size_t
filter_groups(struct conf *c, void **blocks, int route, int alloc, struct cgroup *g, size_t n,
    int *nomem)
{
	const struct filter *f;
	const struct csect *keys;
	size_t i;

	for (i = 0; (f = filter_table[i]) != NULL; i++) {
		keys = route ? f->route_keys : f->conf_keys;
		if (keys == NULL)
			continue;
		if (alloc && (blocks[i] = calloc(1, route ? f->route_size : f->conf_size)) == NULL) {
			*nomem = 1;
			continue;
		}
		g[n++] = (struct cgroup){ keys, blocks != NULL ? blocks[i] : NULL,
		    c != NULL ? c->sect[i] : NULL };
	}
	return n;
}

/* The tables of one route: its core keys, then the route keys of each filter that has some,
 * in table order (c and cr may be NULL for the docs). Returns how many. */
static size_t
route_groups(struct conf *c, struct conf_route *cr, int alloc, struct cgroup *g, int *nomem)
{
	g[0] = (struct cgroup){ &s_route, cr, NULL };
	return filter_groups(c, cr != NULL ? cr->keys : NULL, 1, alloc, g, 1, nomem);
}

static void
cf_routes(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field)
{
	struct cgroup g[1 + CONF_MAX_FILTERS];
	struct conf_route *arr;
	size_t i, ng, old;
	int nomem;

	(void)k;
	(void)field;
	if (v->type != YN_SEQ) {
		conf_err(p->ctx, v, "%s: expected a list, got %s", p->path,
		    v->type == YN_MAP ? "a mapping" : conf_is_null(v) ? "an empty value" :
		    "a scalar");
		return;
	}
	if ((arr = conf_items_alloc(p, v, v->n, sizeof(*arr))) == NULL)
		return;
	p->c->routes.v = arr;
	p->c->routes.n = v->n;
	for (i = 0; i < v->n; i++) {
		old = conf_path_push(p, "[%zu]", i);
		nomem = 0;
		ng = route_groups(p->c, &arr[i], 1, g, &nomem);
		if (nomem)
			conf_oom(p, v->items[i]);
		else if (v->items[i]->type != YN_MAP)
			conf_err(p->ctx, v->items[i], "%s: expected a mapping, got %s", p->path,
			    v->items[i]->type == YN_SEQ ? "a list" : "a scalar");
		else
			walk_groups(p, g, ng, v->items[i], v->items[i]);
		conf_path_pop(p, old);
	}
}

static void
rel_routes(const struct ckey *k, void *base)
{
	struct conf *c = base;
	const struct filter *f;
	size_t i, j;

	(void)k;
	for (i = 0; i < c->routes.n; i++) {
		conf_release(&s_route, &c->routes.v[i]);
		for (j = 0; (f = filter_table[j]) != NULL; j++) {
			if (c->routes.v[i].keys[j] == NULL)
				continue;
			conf_release(f->route_keys, c->routes.v[i].keys[j]);
			free(c->routes.v[i].keys[j]);
		}
	}
	free(c->routes.v);
	c->routes.v = NULL;
	c->routes.n = 0;
}

/* ---- the tables ----------------------------------------------------------------------- */

#define OFF(f) offsetof(struct conf, f)

static const struct ckey k_listen[] = {
	{ .name = "https", .type = KT_CUSTOM, .fn = cf_addrs, .release = rel_addrs,
	  .off = OFF(listen.https),
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
	{ .name = "proxy_protocol", .type = KT_CUSTOM, .off = OFF(listen.proxy_protocol),
	  .fn = conf_parse_list, .release = conf_release_list, .arg = &l_pp_cidrs,
	  .def = "[]", .tname = "list of CIDRs",
	  .doc = "Peers (L4 load balancers) that put a PROXY protocol v1 or v2 header before "
	  "every connection on the https and http listeners: its client address replaces the "
	  "peer's for X-Forwarded-For, rate limits, bans and logs. A listed peer that sends no "
	  "valid header within client.header_timeout is closed; other peers may not send one. "
	  "Not on the admin listener (docs/deployment.md)." },
};
static const struct csect s_listen = { k_listen, sizeof(k_listen) / sizeof(k_listen[0]),
    post_listen };

static const struct cenum e_minver[] = { { "TLSv1.2", TLS_MIN_12 }, { "TLSv1.3", TLS_MIN_13 },
    { "TLSv1", TLS_MIN_10 }, { "TLSv1.0", TLS_MIN_10 }, { "TLSv1.1", TLS_MIN_11 }, { NULL, 0 } };

static const struct ckey k_tls[] = {
	{ .name = "certificates", .type = KT_CUSTOM, .fn = cf_certs, .release = rel_certs,
	  .arg = &s_cert,
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

static void
post_resolve(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	char a[32], b[32];

	if (p->c->upstream.resolve_max_ms < p->c->upstream.resolve_min_ms)
		conf_err(p->ctx, map ? map : where, "%s: max (%s) is below min (%s)", p->path,
		    conf_fmt_dur(a, sizeof(a), p->c->upstream.resolve_max_ms),
		    conf_fmt_dur(b, sizeof(b), p->c->upstream.resolve_min_ms));
}

static const struct ckey k_resolve[] = {
	{ .name = "min", .type = KT_DUR, .off = OFF(upstream.resolve_min_ms), .def = "1s",
	  .min = 100, .max = 3600000,
	  .doc = "Floor of a name's TTL: a name is never asked again sooner (a TTL of 0 too). "
	    "Also the first wait after a failed lookup, doubling up to `max`." },
	{ .name = "max", .type = KT_DUR, .off = OFF(upstream.resolve_max_ms), .def = "60s",
	  .min = 100, .max = 86400000,
	  .doc = "Ceiling of a name's TTL: a moved address is followed within this at most." },
	{ .name = "nameservers", .type = KT_CUSTOM, .fn = cf_addrs, .release = rel_addrs,
	  .off = OFF(upstream.resolve_ns), .tname = "list of IP:port", .defdoc = "/etc/resolv.conf",
	  .doc = "DNS servers asked instead of those of /etc/resolv.conf (whose search domains "
	    "and ndots then no longer apply). Read at start; a change needs a restart." },
};
static const struct csect s_resolve = CONF_SECT(k_resolve, post_resolve);

static const struct ckey k_upstream[] = {
	{ .name = "servers", .type = KT_CUSTOM, .fn = cf_addrs, .release = rel_addrs,
	  .off = OFF(upstream.servers),
	  .def = "[127.0.0.1:3000]", .flags = CK_RESOLVE, .tname = "host:port or list",
	  .doc = "Round robin. A host name is resolved at run time and followed on its TTL "
	    "(`resolve`): each of its A/AAAA records is a server. A failing server is taken out "
	    "and probed back." },
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
	{ .name = "resolve", .type = KT_SECTION, .arg = &s_resolve,
	  .doc = "How host names in `servers` are followed (docs/deployment.md)." },
};
static const struct csect s_upstream = { k_upstream,
    sizeof(k_upstream) / sizeof(k_upstream[0]), NULL };

static const struct ckey k_client[] = {
	{ .name = "trusted_proxies", .type = KT_CUSTOM, .off = OFF(client.trusted_proxies),
	  .fn = conf_parse_list, .release = conf_release_list, .arg = &l_trusted_cidrs,
	  .def = "[]",
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

static const struct ckey k_http2[] = {
	{ .name = "enabled", .type = KT_BOOL, .off = OFF(http2.enabled), .def = "true",
	  .doc = "ALPN offers `h2, http/1.1` on the https listeners (false: `http/1.1` only). "
	    "Every policy runs per stream as per HTTP/1.1 request; the upstream side stays "
	    "HTTP/1.1. Prior-knowledge h2c (no TLS) is always refused." },
	{ .name = "max_concurrent_streams", .type = KT_INT,
	  .off = OFF(http2.max_concurrent_streams), .def = "100", .min = 1, .max = 1000,
	  .doc = "Streams a client may have open on one connection (SETTINGS); one more is "
	    "refused (RST_STREAM REFUSED_STREAM)." },
	{ .name = "window_size", .type = KT_SIZE, .off = OFF(http2.window_size), .def = "64k",
	  .min = 16 << 10, .max = 16 << 20,
	  .doc = "Request body bytes one stream may have in flight: its window is reopened only "
	    "as the upstream takes them." },
	{ .name = "connection_window", .type = KT_SIZE, .off = OFF(http2.connection_window),
	  .def = "1m", .min = 64 << 10, .max = 256 << 20,
	  .doc = "Request body bytes all streams of a connection may have in flight: the bound on "
	    "what one connection's uploads hold in memory." },
	{ .name = "max_resets", .type = KT_INT, .off = OFF(http2.max_resets), .def = "200",
	  .min = 1, .max = 1000000,
	  .doc = "Streams the client may reset (RST_STREAM) in 10 s; past it the connection "
	    "gets GOAWAY ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487)." },
	{ .name = "max_control_frames", .type = KT_INT, .off = OFF(http2.max_control_frames),
	  .def = "1000", .min = 10, .max = 1000000,
	  .doc = "PING, SETTINGS, PRIORITY, empty DATA and zero-length CONTINUATION frames "
	    "a client may send in 10 s; past it, GOAWAY ENHANCE_YOUR_CALM (flood)." },
};
static const struct csect s_http2 = { k_http2, sizeof(k_http2) / sizeof(k_http2[0]), NULL };

static const struct cenum e_onerr[] = { { "local", REDIS_LOCAL }, { "open", REDIS_OPEN },
    { "closed", REDIS_CLOSED }, { NULL, 0 } };

static const struct ckey k_redistls[] = {
	{ .name = "ca_file", .type = KT_STR, .off = OFF(redis.tls_ca), .defdoc = "system store",
	  .doc = "PEM bundle of the CAs trusted for the Redis server's certificate." },
	{ .name = "cert_file", .type = KT_STR, .off = OFF(redis.tls_cert), .defdoc = "none",
	  .doc = "Client certificate (PEM chain), for a server with `tls-auth-clients yes`." },
	{ .name = "key_file", .type = KT_STR, .off = OFF(redis.tls_key), .defdoc = "none",
	  .doc = "The client certificate's private key (PEM)." },
	{ .name = "server_name", .type = KT_STR, .off = OFF(redis.tls_server_name),
	  .defdoc = "the URL's host",
	  .doc = "SNI and the name checked against the server's certificate (an IP address is "
	    "checked against its IP SANs)." },
	{ .name = "insecure_skip_verify", .type = KT_BOOL, .off = OFF(redis.tls_insecure),
	  .def = "false",
	  .doc = "Accept any certificate and name (encryption without authentication; "
	    "`visor -t` warns)." },
};
static const struct csect s_redistls = { k_redistls,
    sizeof(k_redistls) / sizeof(k_redistls[0]), NULL };

static const struct ckey k_redissentinel[] = {
	{ .name = "master", .type = KT_STR, .off = OFF(redis.sentinel_master),
	  .flags = CK_REQUIRED,
	  .doc = "The master name the sentinels monitor (`sentinel monitor <name> ...`)." },
	{ .name = "nodes", .type = KT_STRS, .off = OFF(redis.sentinel_nodes),
	  .flags = CK_REQUIRED, .check = check_sentinel_node, .tname = "list of host:port",
	  .doc = "The sentinels, asked in this order (the next one when one fails); port "
	    "default 26379, IPv6 as `[::1]:26379`." },
	{ .name = "username", .type = KT_STR, .off = OFF(redis.sentinel_user), .defdoc = "none",
	  .doc = "ACL user for the sentinels (`AUTH user password`)." },
	{ .name = "password", .type = KT_STR, .off = OFF(redis.sentinel_pass), .defdoc = "none",
	  .doc = "The sentinels' password (`requirepass` in sentinel.conf); prefer "
	    "`password_file`. The primary's credentials are the URL's." },
};
static const struct csect s_redissentinel = CONF_SECT(k_redissentinel, post_sentinel);

static const struct ckey k_rediscluster[] = {
	{ .name = "nodes", .type = KT_STRS, .off = OFF(redis.cluster_nodes),
	  .flags = CK_REQUIRED, .check = check_cluster_node, .tname = "list of host:port",
	  .doc = "Seed nodes, asked for the cluster's topology (`CLUSTER SLOTS`) in this order; "
	    "any primary or replica will do, visor finds the others. Port default 6379, IPv6 as "
	    "`[::1]:6379`." },
};
static const struct csect s_rediscluster = CONF_SECT(k_rediscluster, post_cluster);

static const struct ckey k_redis[] = {
	{ .name = "url", .type = KT_CUSTOM, .fn = cf_redis_url, .release = rel_redis_url,
	  .def = "redis://127.0.0.1:6379/0",
	  .flags = CK_SCALAR, .tname = "redis[s]:// URL",
	  .doc = "redis[s]://[[user]:password@]host[:port][/db]; db 0 to 1000. rediss:// speaks TLS, "
	    "verifying the certificate and the host name against the system store (see `tls`)." },
	{ .name = "timeout", .type = KT_DUR, .off = OFF(redis.timeout_ms), .def = "50ms",
	  .min = 1, .max = 60000, .doc = "Per command." },
	{ .name = "on_error", .type = KT_ENUM, .off = OFF(redis.on_error), .def = "local",
	  .arg = e_onerr,
	  .doc = "Redis unreachable: local = in-memory store with the same limits; open = allow; "
	    "closed = 503." },
	{ .name = "tls", .type = KT_SECTION, .arg = &s_redistls, .flags = CK_OPTIONAL,
	  .en_off = OFF(redis.tls_section),
	  .doc = "TLS settings for a rediss:// URL (a redis:// URL with this section is an "
	    "error)." },
	{ .name = "sentinel", .type = KT_SECTION, .arg = &s_redissentinel, .flags = CK_OPTIONAL,
	  .en_off = OFF(redis.sentinel),
	  .doc = "Find the primary through Redis Sentinel and follow its failovers; the URL's "
	    "host:port are then unused (write the master name as its host). rediss:// means TLS "
	    "to the sentinels and the primary alike." },
	{ .name = "cluster", .type = KT_SECTION, .arg = &s_rediscluster, .flags = CK_OPTIONAL,
	  .en_off = OFF(redis.cluster),
	  .doc = "Use a Redis Cluster (Redis 7 or later): one connection per primary per worker, "
	    "each check sent to the node serving its keys, MOVED/ASK followed. The URL's host:port "
	    "are then unused (write `cluster` as its host) and its db must be 0; rediss:// means "
	    "TLS to every node." },
};
static const struct csect s_redis = CONF_SECT(k_redis, post_redis);

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

/* The top level is these two tables with each filter's conf_keys between them (root_groups):
 * the core's sections first (redis before jwt: the revocation default), the filters' in
 * table order (jwt and rate_limits before routes: the auth default, policy names), routes
 * (their core keys, then each filter's route keys), and log. */
static const struct ckey k_core[] = {
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
	{ .name = "http2", .type = KT_SECTION, .arg = &s_http2,
	  .doc = "HTTP/2 to clients (docs/security.md, \"HTTP/2\")." },
	{ .name = "redis", .type = KT_SECTION, .arg = &s_redis, .flags = CK_OPTIONAL,
	  .en_off = OFF(redis.enabled),
	  .doc = "Shared store for rate limits, lockout and revocation; absent: in-memory "
	    "(one instance only)." },
};
static const struct csect s_core = CONF_SECT(k_core, NULL);

static const struct ckey k_tail[] = {
	{ .name = "routes", .type = KT_CUSTOM, .fn = cf_routes, .release = rel_routes,
	  .arg = &s_route, .def = "[{path: /}]", .flags = CK_ITEMS | CK_ROUTES,
	  .tname = "list of routes", .doc = "First match wins; no match = 404." },
	{ .name = "log", .type = KT_SECTION, .arg = &s_log, .doc = "Logging." },
};
static const struct csect s_tail = CONF_SECT(k_tail, NULL);

/* The tables of the top level (see k_core), each filter's into its block of c->sect
 * (c may be NULL for the docs). */
static size_t
root_groups(struct conf *c, int alloc, struct cgroup *g, int *nomem)
{
	size_t n;

	g[0] = (struct cgroup){ &s_core, c, NULL };
	n = filter_groups(c, c != NULL ? c->sect : NULL, 0, alloc, g, 1, nomem);
	g[n++] = (struct cgroup){ &s_tail, c, NULL };
	return n;
}

/* ---- parse, free, load, refs ---------------------------------------------------------- */

int
conf_parse(struct conf_ctx *ctx, const struct ynode *root, struct conf *c)
{
	struct cgroup g[2 + CONF_MAX_FILTERS];
	struct cparse p;
	int nerr0 = ctx->nerr, nomem = 0;
	size_t ng;

	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.c = c;
	p.base = c;
	if (root == NULL || root->type != YN_MAP) {
		conf_err(ctx, root, "the configuration must be a mapping of keys to values");
		return -1;
	}
	ng = root_groups(c, 1, g, &nomem);
	if (nomem) {
		conf_err(ctx, NULL, "out of memory");
		return -1;
	}
	walk_groups(&p, g, ng, root, root);
	free(p.laddrs);
	list_synth_free(&p);
	return ctx->nerr > nerr0 ? -1 : 0;
}

void
conf_free(struct conf *c)
{
	const struct filter *f;
	size_t i;

	if (c == NULL)
		return;
	conf_release_runtime(c);
	conf_release(&s_core, c);
	for (i = 0; (f = filter_table[i]) != NULL; i++) {
		if (c->sect[i] == NULL)
			continue;
		conf_release(f->conf_keys, c->sect[i]);
		free(c->sect[i]);
	}
	conf_release(&s_tail, c);
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
		md_cell(out,
		    k->tname != NULL ? k->tname : k->flags & CK_URLPATH ? "path" : "string");
		return;
	case KT_ENUM:
		for (e = k->arg, i = 0; e[i].name != NULL; i++)
			fprintf(out, "%s`%s`", i ? ", " : "", e[i].name);
		return;
	case KT_STRS:
		md_cell(out, k->tname != NULL ? k->tname : "list of strings");
		return;
	case KT_SECTION:
		fputs(k->flags & CK_OPTIONAL ? "section, optional" : k->flags & CK_OFF ?
		    "section, or off" : "section", out);
		return;
	case KT_CUSTOM:
		md_cell(out, k->tname != NULL ? k->tname : "");
		return;
	}
}

/* One table of the reference: the rows of every group (a mapping's tables), then a table for
 * each nested section, item list and named mapping, in row order. */
static void
md_table(FILE *out, const struct cgroup *g, size_t ng, const char *title)
{
	struct cgroup sg[1 + CONF_MAX_FILTERS];
	const struct ckey *k;
	struct rows rows;
	char sub[128];
	size_t i, nsg;

	rows_of(&rows, g, ng);
	fprintf(out, "## %s\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
	    title[0] ? title : "Top level");
	for (i = 0; i < rows.n; i++) {
		k = rows.k[i];
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
	for (i = 0; i < rows.n; i++) {
		k = rows.k[i];
		if (k->type != KT_SECTION && !(k->flags & (CK_ITEMS | CK_NAMED)))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s%s", title, title[0] ? "." : "", k->name,
		    k->flags & CK_ITEMS ? "[]" : k->flags & CK_NAMED ? ".<name>" : "");
		if (k->flags & CK_ROUTES) {
			nsg = route_groups(NULL, NULL, 0, sg, NULL);
		} else {
			sg[0] = (struct cgroup){ k->arg, NULL, NULL };
			nsg = 1;
		}
		md_table(out, sg, nsg, sub);
	}
}

static void
doc_quiet(void *arg, const char *file, int line, int col, const char *msg)
{
	(void)arg; (void)file; (void)line; (void)col; (void)msg;
}

/* The default of a row with `deftable` (a mapping) as its own table. */
static void
md_default_table(FILE *out, const struct ckey *k)
{
	struct ynode *h;
	size_t i;

	h = yaml_load_buf("<default>", k->def, strlen(k->def), doc_quiet, NULL);
	fprintf(out, "## Default `%s`\n\n| %s | value |\n|---|---|\n", k->name, k->deftable);
	for (i = 0; h != NULL && h->type == YN_MAP && i < h->n; i++) {
		fprintf(out, "| `%s` | `", h->pairs[i].key->str);
		md_cell(out, h->pairs[i].val->str);
		fputs("` |\n", out);
	}
	ynode_free(h);
}

void
conf_doc_markdown(FILE *out)
{
	struct cgroup g[2 + CONF_MAX_FILTERS];
	struct rows rows;
	size_t i, ng;

	fputs("Values: durations take ms, s, m, h, d (a bare number is seconds); sizes take k, m, "
	    "g (binary; a bare number is bytes); booleans are true/false, yes/no or on/off. A "
	    "list may be given as a single value. `${NAME}` and `${NAME:-default}` expand from "
	    "the environment in every value (`$$` is a literal `$`). Any scalar key `K` may be "
	    "given as `K_file: /path` instead: the value is then that file's contents, trailing "
	    "newlines removed.\n\n", out);
	ng = root_groups(NULL, 0, g, NULL);
	md_table(out, g, ng, "");
	rows_of(&rows, g, ng);
	for (i = 0; i < rows.n; i++)
		if (rows.k[i]->deftable != NULL && rows.k[i]->def != NULL)
			md_default_table(out, rows.k[i]);
}
