/* SPDX-License-Identifier: MIT
 * yaml — turns libyaml's event stream into the small node tree of yaml.h, keeping
 * file:line:col (from 1) on every node so that every later config error can point at its
 * source. Scalars are expanded as they arrive (${NAME}, ${NAME:-default}, $$), so the rest
 * of visor never sees a variable reference.
 *
 * It refuses what a configuration file has no use for and what makes YAML dangerous or
 * ambiguous: anchors and aliases (exponential "billion laughs" expansion), tags other than
 * the core ones, more than one document, duplicate mapping keys (the second would silently
 * win), non-scalar keys, and nesting deeper than YAML_MAX_DEPTH (the tree is walked
 * recursively). It keeps going after errors that do not break the structure, so one run
 * reports them all; on any error the whole tree is dropped and NULL is returned.
 * It never prints: every message goes through the caller's yaml_err_fn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libyaml's header has the same name as ours: src/ is on the quote path only (-iquote), so
 * <yaml.h> is libyaml's and "yaml.h" is ours. */
#include <yaml.h>

#include "conf/yaml.h"
#include "core/util.h"

#define YAML_MAX_DEPTH    64
#define YAML_MAX_FILE     (8 << 20)
#define YAML_MAX_VARDEPTH 8         /* ${A:-${B:-...}} */
#define YAML_MAX_VARNAME  255

/* The root node shares its allocation with the tree's copy of the file name, so that
 * ynode_free(root) is one free() more than for any other node. */
struct yroot {
	struct ynode node;              /* first: &root->node == root */
	char         file[];
};

struct ybuild {
	yaml_err_fn          err;
	void                *arg;
	const char          *file;
	const unsigned char *buf;
	size_t               len;
	struct ynode        *top;           /* the document's node, once it started */
	struct ynode        *stack[YAML_MAX_DEPTH];
	int                  depth;
	int                  nerr;
	int                  fatal;         /* stop reading: the structure is broken */
};

struct ystr {
	char   *p;
	size_t  n, cap;
	int     oom;
};

static void yerr(struct ybuild *, int, int, const char *, ...)
	__attribute__((format(printf, 4, 5)));

static void
yerr(struct ybuild *b, int line, int col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->nerr++;
	if (b->err != NULL)
		b->err(b->arg, b->file, line, col, msg);
}

/* A short, printable rendering of user text for messages (no control bytes in a terminal). */
static const char *
show(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (i < len && o + 4 >= dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

static void
sb_add(struct ystr *sb, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (sb->oom)
		return;
	if (sb->n + n + 1 > sb->cap) {
		ncap = sb->cap ? sb->cap : 64;
		while (ncap < sb->n + n + 1)
			ncap *= 2;
		np = realloc(sb->p, ncap);
		if (np == NULL) {
			sb->oom = 1;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
	memcpy(sb->p + sb->n, s, n);
	sb->n += n;
	sb->p[sb->n] = '\0';
}

static int
is_name_char(char c, int first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    (!first && c >= '0' && c <= '9');
}

/* Appends s[0..len) to out with ${NAME}, ${NAME:-default} and $$ expanded. A lone '$'
 * stays as it is (passwords, regexes). The default is expanded in turn. Returns 0, or -1
 * after reporting each problem at (line, col). */
static int
expand(struct ybuild *b, int line, int col, const char *s, size_t len, struct ystr *out,
    int depth, int *had_var)
{
	char name[YAML_MAX_VARNAME + 1], tmp[64];
	const char *d, *inner, *val;
	size_t i = 0, k, j, ilen, nlen;
	int rc = 0, lvl, hasdef;

	while (i < len) {
		d = memchr(s + i, '$', len - i);
		if (d == NULL) {
			sb_add(out, s + i, len - i);
			break;
		}
		k = (size_t)(d - s);
		sb_add(out, s + i, k - i);
		if (k + 1 < len && s[k + 1] == '$') {
			sb_add(out, "$", 1);
			*had_var = 1;
			i = k + 2;
			continue;
		}
		if (k + 1 >= len || s[k + 1] != '{') {
			sb_add(out, "$", 1);
			i = k + 1;
			continue;
		}
		*had_var = 1;
		for (j = k + 2, lvl = 1; j < len; j++) {
			if (s[j] == '{')
				lvl++;
			else if (s[j] == '}' && --lvl == 0)
				break;
		}
		if (j >= len) {
			yerr(b, line, col, "unterminated '${' (write $$ for a literal '$')");
			return -1;
		}
		inner = s + k + 2;
		ilen = j - (k + 2);
		for (nlen = 0; nlen < ilen && is_name_char(inner[nlen], nlen == 0); nlen++)
			;
		hasdef = nlen < ilen;
		if (nlen == 0 || (hasdef && (ilen - nlen < 2 || inner[nlen] != ':' ||
		    inner[nlen + 1] != '-'))) {
			yerr(b, line, col, "invalid variable reference '${%s}' (expected ${NAME} or "
			    "${NAME:-default})", show(tmp, sizeof(tmp), inner, ilen));
			rc = -1;
			i = j + 1;
			continue;
		}
		if (nlen > YAML_MAX_VARNAME) {
			yerr(b, line, col, "variable name too long");
			rc = -1;
			i = j + 1;
			continue;
		}
		memcpy(name, inner, nlen);
		name[nlen] = '\0';
		val = getenv(name);
		/* As in the shell, ":-" also applies to a variable that is set but empty. */
		if (val != NULL && (*val != '\0' || !hasdef)) {
			sb_add(out, val, strlen(val));
		} else if (hasdef) {
			if (depth >= YAML_MAX_VARDEPTH) {
				yerr(b, line, col, "variable defaults nested too deeply");
				rc = -1;
			} else if (expand(b, line, col, inner + nlen + 2, ilen - nlen - 2, out,
			    depth + 1, had_var) < 0) {
				rc = -1;
			}
		} else {
			yerr(b, line, col, "environment variable '%s' is not set", name);
			rc = -1;
		}
		i = j + 1;
	}
	return rc;
}

static struct ynode *
node_new(struct ybuild *b, enum ynode_type type, const yaml_mark_t *m)
{
	struct ynode *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->file = b->file;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static void
node_free(struct ynode *n)
{
	size_t i;

	if (n == NULL)
		return;
	if (n->type == YN_MAP) {
		for (i = 0; i < n->n; i++) {
			node_free(n->pairs[i].key);
			node_free(n->pairs[i].val);
		}
	} else if (n->type == YN_SEQ) {
		for (i = 0; i < n->n; i++)
			node_free(n->items[i]);
	}
	free(n->pairs);
	free(n->items);
	free(n->str);
	free(n);
}

void
ynode_free(struct ynode *root)
{
	/* The root is a struct yroot; freeing its address frees the file name with it. */
	node_free(root);
}

/* Room for one more element in an array whose capacity is implicit: it grows at 4, 8,
 * 16, ..., so a node needs no capacity field. */
static int
grow(void **arr, size_t n, size_t elem)
{
	void *p;
	size_t cap;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return 0;
	cap = n == 0 ? 4 : n * 2;
	p = realloc(*arr, cap * elem);
	if (p == NULL)
		return -1;
	*arr = p;
	return 0;
}

static int
key_eq(const struct ynode *a, const struct ynode *b)
{
	return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

/* Attaches a node to the container on top of the stack (or makes it the document's node).
 * Takes ownership of `n` in every case. */
static int
attach(struct ybuild *b, struct ynode *n)
{
	struct ynode *parent;
	char tmp[64];
	size_t i;

	if (b->depth == 0) {
		if (b->top == NULL) {
			b->top = n;
			return 0;
		}
		node_free(n);
		return -1;
	}
	parent = b->stack[b->depth - 1];
	if (parent->type == YN_SEQ) {
		if (grow((void **)&parent->items, parent->n, sizeof(*parent->items)) < 0)
			goto oom;
		parent->items[parent->n++] = n;
		return 0;
	}
	if (parent->n > 0 && parent->pairs[parent->n - 1].val == NULL) {
		parent->pairs[parent->n - 1].val = n;
		return 0;
	}
	if (n->type != YN_SCALAR) {
		yerr(b, n->line, n->col, "a mapping key must be a scalar");
		b->fatal = 1;
		node_free(n);
		return -1;
	}
	for (i = 0; i < parent->n; i++) {
		if (key_eq(parent->pairs[i].key, n)) {
			yerr(b, n->line, n->col, "duplicate key '%s' (first at line %d)",
			    show(tmp, sizeof(tmp), n->str, n->len), parent->pairs[i].key->line);
			break;
		}
	}
	if (grow((void **)&parent->pairs, parent->n, sizeof(*parent->pairs)) < 0)
		goto oom;
	parent->pairs[parent->n].key = n;
	parent->pairs[parent->n].val = NULL;
	parent->n++;
	return 0;
oom:
	yerr(b, n->line, n->col, "out of memory");
	b->fatal = 1;
	node_free(n);
	return -1;
}

static int
check_anchor_tag(struct ybuild *b, const yaml_mark_t *m, const yaml_char_t *anchor,
    const yaml_char_t *tag)
{
	static const char *const core[] = { "str", "int", "bool", "null", "float", "seq", "map" };
	static const char prefix[] = "tag:yaml.org,2002:";
	char tmp[64];
	size_t i;

	if (anchor != NULL)
		yerr(b, (int)m->line + 1, (int)m->column + 1, "anchors (&%s) are not allowed",
		    show(tmp, sizeof(tmp), (const char *)anchor, strlen((const char *)anchor)));
	if (tag == NULL || strcmp((const char *)tag, "!") == 0)
		return 0;
	if (strncmp((const char *)tag, prefix, sizeof(prefix) - 1) == 0)
		for (i = 0; i < sizeof(core) / sizeof(core[0]); i++)
			if (strcmp((const char *)tag + sizeof(prefix) - 1, core[i]) == 0)
				return 0;
	yerr(b, (int)m->line + 1, (int)m->column + 1, "tag '%s' is not allowed",
	    show(tmp, sizeof(tmp), (const char *)tag, strlen((const char *)tag)));
	return -1;
}

static void
on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
	struct ystr sb = { NULL, 0, 0, 0 };
	struct ynode *n;
	const char *raw = (const char *)ev->data.scalar.value;
	size_t rawlen = ev->data.scalar.length;
	int had = 0;

	check_anchor_tag(b, &ev->start_mark, ev->data.scalar.anchor, ev->data.scalar.tag);
	n = node_new(b, YN_SCALAR, &ev->start_mark);
	if (n == NULL)
		goto oom;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	/* "!!str null" is the string "null", as if quoted. */
	if (ev->data.scalar.tag != NULL &&
	    strcmp((const char *)ev->data.scalar.tag, YAML_STR_TAG) == 0)
		n->plain = 0;
	if (expand(b, n->line, n->col, raw, rawlen, &sb, 0, &had) < 0) {
		/* keep the raw text so the structure stays whole for later errors */
		sb.n = 0;
		sb_add(&sb, raw, rawlen);
	}
	sb_add(&sb, "", 0);
	if (sb.oom) {
		free(sb.p);
		node_free(n);
		goto oom;
	}
	n->str = sb.p;
	n->len = sb.n;
	n->had_var = had;
	attach(b, n);
	return;
oom:
	yerr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, "out of memory");
	b->fatal = 1;
}

static void
on_start(struct ybuild *b, const yaml_event_t *ev, enum ynode_type type)
{
	const yaml_char_t *anchor, *tag;
	struct ynode *n;

	if (type == YN_MAP) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	check_anchor_tag(b, &ev->start_mark, anchor, tag);
	if (b->depth >= YAML_MAX_DEPTH) {
		yerr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
		    "nested more than %d levels deep", YAML_MAX_DEPTH);
		b->fatal = 1;
		return;
	}
	n = node_new(b, type, &ev->start_mark);
	if (n == NULL) {
		yerr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
		    "out of memory");
		b->fatal = 1;
		return;
	}
	if (attach(b, n) < 0)
		return;
	b->stack[b->depth++] = n;
}

static void
on_alias(struct ybuild *b, const yaml_event_t *ev)
{
	struct ynode *n;
	char tmp[64];
	const char *a = (const char *)ev->data.alias.anchor;

	yerr(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
	    "aliases (*%s) are not allowed", show(tmp, sizeof(tmp), a, strlen(a)));
	/* An empty scalar stands in for it, so that the mapping stays well-formed. */
	n = node_new(b, YN_SCALAR, &ev->start_mark);
	if (n == NULL || (n->str = calloc(1, 1)) == NULL) {
		node_free(n);
		b->fatal = 1;
		return;
	}
	n->plain = 1;
	attach(b, n);
}

/* Line and column of a byte offset (libyaml's reader errors only carry the offset). */
static void
offset_pos(const struct ybuild *b, size_t off, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < b->len; i++) {
		if (b->buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if ((b->buf[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

/* Whether the line of offset `off` holds a `${` up to it: an unquoted ${VAR} inside a flow
 * collection ({ url: ${REDIS_URL} }) is read by YAML as a nested mapping, and the syntax
 * error libyaml reports says nothing of variables. */
static int
flow_var_on_line(const struct ybuild *b, size_t off)
{
	size_t s = off < b->len ? off : b->len, i;

	while (s > 0 && b->buf[s - 1] != '\n')
		s--;
	for (i = s; i + 1 < b->len && i <= off && b->buf[i] != '\n'; i++)
		if (b->buf[i] == '$' && b->buf[i + 1] == '{')
			return 1;
	return 0;
}

static void
parser_error(struct ybuild *b, const yaml_parser_t *p)
{
	static const char hint[] = "; an unquoted ${VAR} inside { } or [ ] reads as a nested "
	    "mapping: quote it (\"${VAR}\") or write the section in block style";
	int line, col, var;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		yerr(b, 0, 0, "out of memory");
		break;
	case YAML_READER_ERROR:
		offset_pos(b, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			yerr(b, line, col, "invalid input: %s (byte 0x%02X)",
			    p->problem ? p->problem : "unreadable", (unsigned)p->problem_value & 0xff);
		else
			yerr(b, line, col, "invalid input: %s", p->problem ? p->problem : "unreadable");
		break;
	default:
		var = p->context != NULL && strstr(p->context, "flow") != NULL &&
		    flow_var_on_line(b, p->problem_mark.index);
		if (p->context != NULL)
			yerr(b, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
			    "syntax error: %s (%s at %d:%d)%s", p->problem ? p->problem : "?",
			    p->context, (int)p->context_mark.line + 1,
			    (int)p->context_mark.column + 1, var ? hint : "");
		else
			yerr(b, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
			    "syntax error: %s", p->problem ? p->problem : "?");
		break;
	}
	b->fatal = 1;
}

struct ynode *
yaml_load_buf(const char *name, const char *buf, size_t len, yaml_err_fn err, void *arg)
{
	struct yroot *r;
	struct ybuild b;
	yaml_parser_t parser;
	yaml_event_t ev;
	size_t nlen;
	int ndocs = 0, done = 0;

	if (name == NULL)
		name = "-";
	nlen = strlen(name);
	r = calloc(1, sizeof(*r) + nlen + 1);
	if (r == NULL) {
		if (err != NULL)
			err(arg, name, 0, 0, "out of memory");
		return NULL;
	}
	memcpy(r->file, name, nlen + 1);
	memset(&b, 0, sizeof(b));
	b.err = err;
	b.arg = arg;
	b.file = r->file;
	b.buf = (const unsigned char *)buf;
	b.len = len;

	if (!yaml_parser_initialize(&parser)) {
		yerr(&b, 0, 0, "out of memory");
		free(r);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, b.buf, len);
	while (!done && !b.fatal) {
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(&b, &parser);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > 1) {
				yerr(&b, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				    "only one YAML document is allowed in a configuration file");
				done = 1;
			}
			break;
		case YAML_ALIAS_EVENT:
			on_alias(&b, &ev);
			break;
		case YAML_SCALAR_EVENT:
			on_scalar(&b, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			on_start(&b, &ev, YN_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			on_start(&b, &ev, YN_MAP);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (b.depth > 0)
				b.depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);

	if (b.nerr > 0) {
		node_free(b.top);
		free(r);
		return NULL;
	}
	if (b.top == NULL || (b.top->type == YN_SCALAR && b.top->plain && b.top->len == 0)) {
		/* An empty file (or document) is an empty configuration. */
		node_free(b.top);
		r->node.type = YN_MAP;
		r->node.file = r->file;
		r->node.line = 1;
		r->node.col = 1;
		return &r->node;
	}
	r->node = *b.top;           /* children have no parent pointers: moving is safe */
	free(b.top);
	return &r->node;
}

struct ynode *
yaml_load_file(const char *path, yaml_err_fn err, void *arg)
{
	struct ynode *root;
	char msg[256];
	size_t len;
	char *buf;

	if ((buf = file_read_all(path, YAML_MAX_FILE, &len)) == NULL) {
		if (err == NULL)
			return NULL;
		if (errno == EFBIG)
			snprintf(msg, sizeof(msg), "file is larger than 8 MiB");
		else
			snprintf(msg, sizeof(msg), "cannot read the file: %s", strerror(errno));
		err(arg, path, 0, 0, msg);
		return NULL;
	}
	root = yaml_load_buf(path, buf, len, err, arg);
	free(buf);
	return root;
}

/* The pair of `map` whose key is exactly `key`, or NULL. */
static const struct ypair *
ynode_pair(const struct ynode *map, const char *key)
{
	size_t i, kl;

	if (map == NULL || map->type != YN_MAP || key == NULL)
		return NULL;
	kl = strlen(key);
	for (i = 0; i < map->n; i++)
		if (map->pairs[i].key->len == kl && memcmp(map->pairs[i].key->str, key, kl) == 0)
			return &map->pairs[i];
	return NULL;
}

struct ynode *
ynode_key(const struct ynode *map, const char *key)
{
	const struct ypair *pr = ynode_pair(map, key);

	return pr ? pr->key : NULL;
}

struct ynode *
ynode_get(const struct ynode *map, const char *key)
{
	const struct ypair *pr = ynode_pair(map, key);

	return pr ? pr->val : NULL;
}

struct ynode *
ynode_path(const struct ynode *root, const char *path)
{
	const struct ynode *n = root;
	char seg[256];
	const char *dot;
	size_t len, idx, i;

	if (root == NULL || path == NULL)
		return NULL;
	while (n != NULL && *path != '\0') {
		dot = strchr(path, '.');
		len = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (len >= sizeof(seg))
			return NULL;
		memcpy(seg, path, len);
		seg[len] = '\0';
		if (n->type == YN_MAP) {
			n = ynode_get(n, seg);
		} else if (n->type == YN_SEQ) {
			if (len == 0 || len > 9)
				return NULL;
			for (idx = 0, i = 0; i < len; i++) {
				if (seg[i] < '0' || seg[i] > '9')
					return NULL;
				idx = idx * 10 + (size_t)(seg[i] - '0');
			}
			n = idx < n->n ? n->items[idx] : NULL;
		} else {
			return NULL;
		}
		path += len;
		if (*path == '.')
			path++;
	}
	/* Cast away const: the caller owns the tree and gets back a node of it. */
	return (struct ynode *)(uintptr_t)n;
}
