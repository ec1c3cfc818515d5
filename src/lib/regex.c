/* SPDX-License-Identifier: MIT
 * regex — an ECMA-262 subset compiled to a Pike VM program (see regex.h for the syntax and
 * the contract).
 *
 * How it stays linear: a pattern is parsed into a small tree (in a temporary arena), every
 * class becomes a sorted list of code point ranges, and the tree is emitted as a program of
 * CHAR / ANY / CLASS / SPLIT / JMP / assertion / MATCH instructions, repetitions expanded
 * (x{2,4} is xx(x(x)?)?), which is why its size is bounded before it is emitted. A search
 * advances every live thread over one code point at a time, in lockstep (Thompson/Pike): a
 * thread is a program counter, two threads at the same counter are one, so at most m are
 * live per code point, and no path is ever tried twice. There are no captures to track, so
 * a thread carries nothing else.
 *
 * Never let a pattern or a subject decide how much work is done beyond O(n x m), and never
 * quote either in a reason.
 */
#include "lib/regex.h"

#include <stdlib.h>
#include <string.h>

#define CP_NONE 0xffffffffu     /* "no character": before the start, after the end */
#define CP_BAD  0xfffffffeu     /* an invalid UTF-8 sequence */

/* Decodes the code point at s[*i] (*i < n) and advances *i. An invalid sequence (overlong,
 * surrogate, > U+10FFFF, truncated: see utf8_decode) yields CP_BAD and consumes one byte.
 * ASCII, the common case in patterns and subjects, stays inline. */
static uint32_t
utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	uint32_t cp = s[*i];
	size_t k;

	if (cp < 0x80) {
		(*i)++;
		return cp;
	}
	k = utf8_decode(s + *i, n - *i, &cp);
	if (k == 0) {
		(*i)++;
		return CP_BAD;
	}
	*i += k;
	return cp;
}

enum rx_kind { RX_EMPTY = 0, RX_CHAR, RX_ANY, RX_CLASS, RX_BOL, RX_EOL, RX_WORDB, RX_NWORDB,
	RX_CAT, RX_ALT, RX_REP };

#define RX_INF 0xffffffffu

struct rx_node {
	enum rx_kind    k;
	uint32_t        c;          /* CHAR: code point; CLASS: class index */
	uint32_t        min, max;   /* REP */
	struct rx_node *a, *b;
};

enum rx_op { OP_CHAR = 0, OP_ANY, OP_CLASS, OP_SPLIT, OP_JMP, OP_MATCH, OP_BOL, OP_EOL,
	OP_WORDB, OP_NWORDB };

struct rx_inst {
	uint32_t op;
	uint32_t x, y;
};

struct rx_cls {
	uint32_t off, n;            /* into rng */
};

/* The compiled program: written once by regex_compile, read-only after, so threads share it. */
struct regex {
	struct rx_inst *prog;
	uint32_t        n;
	uint32_t      (*rng)[2];
	struct rx_cls  *cls;
	int             anchored;   /* starts with ^: only position 0 can match */
};

struct rx_parse {
	const unsigned char *s;
	size_t               n, i;
	struct arena        *a;      /* AST; temporary */
	int                  depth;
	const char          *err;
	uint32_t           (*rng)[2];
	size_t               nrng, caprng;
	struct rx_cls       *cls;
	size_t               ncls, capcls;
	/* the class being built */
	uint32_t           (*tmp)[2];
	size_t               ntmp, captmp;
};

static const uint32_t set_digit[][2] = { { '0', '9' } };
static const uint32_t set_word[][2] = { { '0', '9' }, { 'A', 'Z' }, { '_', '_' }, { 'a', 'z' } };
static const uint32_t set_space[][2] = { { 0x09, 0x0d }, { 0x20, 0x20 }, { 0xa0, 0xa0 },
	{ 0x1680, 0x1680 }, { 0x2000, 0x200a }, { 0x2028, 0x2029 }, { 0x202f, 0x202f },
	{ 0x205f, 0x205f }, { 0x3000, 0x3000 }, { 0xfeff, 0xfeff } };

static struct rx_node *
rx_new(struct rx_parse *p, enum rx_kind k)
{
	struct rx_node *n = arena_zalloc(p->a, sizeof(*n));

	if (n == NULL) {
		p->err = "out of memory";
		return NULL;
	}
	n->k = k;
	return n;
}

static int
rx_tmp_add(struct rx_parse *p, uint32_t lo, uint32_t hi)
{
	if (p->ntmp == p->captmp) {
		size_t nc = p->captmp ? p->captmp * 2 : 16;
		void *t;
		if (nc > 65536) {
			p->err = "character class too large";
			return -1;
		}
		t = realloc(p->tmp, nc * sizeof(*p->tmp));
		if (t == NULL) {
			p->err = "out of memory";
			return -1;
		}
		p->tmp = t;
		p->captmp = nc;
	}
	p->tmp[p->ntmp][0] = lo;
	p->tmp[p->ntmp][1] = hi;
	p->ntmp++;
	return 0;
}

static int
rx_tmp_set(struct rx_parse *p, const uint32_t (*set)[2], size_t n, int neg)
{
	size_t i;
	uint32_t lo = 0;

	if (!neg) {
		for (i = 0; i < n; i++)
			if (rx_tmp_add(p, set[i][0], set[i][1]) < 0)
				return -1;
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (set[i][0] > lo && rx_tmp_add(p, lo, set[i][0] - 1) < 0)
			return -1;
		lo = set[i][1] + 1;
	}
	return lo <= 0x10ffff ? rx_tmp_add(p, lo, 0x10ffff) : 0;
}

static int
cmp_range(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sorts and merges the temporary ranges, complements them when `neg`, and stores them as a
 * class; returns its index, or -1. */
static long
rx_tmp_commit(struct rx_parse *p, int neg)
{
	size_t i, m = 0, base;
	uint32_t lo;

	if (p->ntmp > 1)
		qsort(p->tmp, p->ntmp, sizeof(*p->tmp), cmp_range);
	for (i = 0; i < p->ntmp; i++) {
		if (m > 0 && p->tmp[i][0] <= p->tmp[m - 1][1] + 1) {
			if (p->tmp[i][1] > p->tmp[m - 1][1])
				p->tmp[m - 1][1] = p->tmp[i][1];
		} else {
			p->tmp[m][0] = p->tmp[i][0];
			p->tmp[m][1] = p->tmp[i][1];
			m++;
		}
	}
	p->ntmp = m;
	if (p->ncls == p->capcls) {
		size_t nc = p->capcls ? p->capcls * 2 : 8;
		void *t = realloc(p->cls, nc * sizeof(*p->cls));
		if (t == NULL)
			goto oom;
		p->cls = t;
		p->capcls = nc;
	}
	base = p->nrng;
	if (p->nrng + m + 1 > p->caprng) {
		size_t nc = (p->nrng + m + 1) * 2;
		void *t = realloc(p->rng, nc * sizeof(*p->rng));
		if (t == NULL)
			goto oom;
		p->rng = t;
		p->caprng = nc;
	}
	if (!neg) {
		for (i = 0; i < m; i++) {
			p->rng[p->nrng][0] = p->tmp[i][0];
			p->rng[p->nrng][1] = p->tmp[i][1];
			p->nrng++;
		}
	} else {
		lo = 0;
		for (i = 0; i < m; i++) {
			if (p->tmp[i][0] > lo) {
				p->rng[p->nrng][0] = lo;
				p->rng[p->nrng][1] = p->tmp[i][0] - 1;
				p->nrng++;
			}
			lo = p->tmp[i][1] + 1;
		}
		if (lo <= 0x10ffff) {
			p->rng[p->nrng][0] = lo;
			p->rng[p->nrng][1] = 0x10ffff;
			p->nrng++;
		}
	}
	p->cls[p->ncls].off = (uint32_t)base;
	p->cls[p->ncls].n = (uint32_t)(p->nrng - base);
	p->ntmp = 0;
	return (long)p->ncls++;
oom:
	p->err = "out of memory";
	return -1;
}

static int
rx_eof(const struct rx_parse *p)
{
	return p->i >= p->n;
}

/* Reads exactly `k` hex digits; -1 when they are not there. */
static long
rx_hex(struct rx_parse *p, int k)
{
	long v = 0;
	int i, h;

	if (p->n - p->i < (size_t)k)
		return -1;
	for (i = 0; i < k; i++) {
		h = hex_digit(p->s[p->i + (size_t)i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	p->i += (size_t)k;
	return v;
}

static int
is_syntax_char(uint32_t c)
{
	return c < 0x80 && strchr("^$\\.*+?()[]{}|/", (int)c) != NULL && c != 0;
}

/* What an escape after '\' stands for. Sets *set (d D w W s S as 1..6) for class escapes,
 * *assert (b B as 1, 2) outside classes, else *cp. Returns 0, or -1 with p->err. */
static int
rx_escape(struct rx_parse *p, int in_class, uint32_t *cp, int *set, int *assert)
{
	uint32_t c;
	long v, lo;

	*set = 0;
	*assert = 0;
	if (rx_eof(p)) {
		p->err = "pattern ends with a backslash";
		return -1;
	}
	c = utf8_next(p->s, p->n, &p->i);
	switch (c) {
	case 'd': *set = 1; return 0;
	case 'D': *set = 2; return 0;
	case 'w': *set = 3; return 0;
	case 'W': *set = 4; return 0;
	case 's': *set = 5; return 0;
	case 'S': *set = 6; return 0;
	case 'b':
		if (in_class) {
			*cp = 0x08;
			return 0;
		}
		*assert = 1;
		return 0;
	case 'B':
		if (in_class) {
			p->err = "\\B inside a character class";
			return -1;
		}
		*assert = 2;
		return 0;
	case 't': *cp = '\t'; return 0;
	case 'n': *cp = '\n'; return 0;
	case 'v': *cp = '\v'; return 0;
	case 'f': *cp = '\f'; return 0;
	case 'r': *cp = '\r'; return 0;
	case '0':
		if (!rx_eof(p) && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			p->err = "octal escapes are not supported";
			return -1;
		}
		*cp = 0;
		return 0;
	case 'c':
		if (!rx_eof(p) && ((p->s[p->i] >= 'a' && p->s[p->i] <= 'z') ||
		    (p->s[p->i] >= 'A' && p->s[p->i] <= 'Z'))) {
			*cp = (uint32_t)(p->s[p->i] % 32);
			p->i++;
			return 0;
		}
		p->err = "invalid \\c escape";
		return -1;
	case 'x':
		v = rx_hex(p, 2);
		if (v < 0) {
			p->err = "invalid \\x escape";
			return -1;
		}
		*cp = (uint32_t)v;
		return 0;
	case 'u':
		if (!rx_eof(p) && p->s[p->i] == '{') {
			p->i++;
			v = 0;
			lo = 0;
			while (!rx_eof(p) && hex_digit(p->s[p->i]) >= 0) {
				v = v * 16 + hex_digit(p->s[p->i]);
				p->i++;
				if (v > 0x10ffff || ++lo > 8)
					break;
			}
			if (lo == 0 || v > 0x10ffff || rx_eof(p) || p->s[p->i] != '}') {
				p->err = "invalid \\u{...} escape";
				return -1;
			}
			p->i++;
			*cp = (uint32_t)v;
			return 0;
		}
		v = rx_hex(p, 4);
		if (v < 0) {
			p->err = "invalid \\u escape";
			return -1;
		}
		/* A surrogate pair written as two escapes is one code point (u mode). */
		if (v >= 0xd800 && v <= 0xdbff && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
		    p->s[p->i + 1] == 'u') {
			size_t save = p->i;
			p->i += 2;
			lo = rx_hex(p, 4);
			if (lo >= 0xdc00 && lo <= 0xdfff)
				v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
			else
				p->i = save;
		}
		*cp = (uint32_t)v;
		return 0;
	case '-':
		if (in_class) {
			*cp = '-';
			return 0;
		}
		p->err = "invalid escape \\-";
		return -1;
	default:
		break;
	}
	if (c >= '1' && c <= '9') {
		p->err = "backreferences are not supported";
		return -1;
	}
	if (c == 'k') {
		p->err = "named backreferences are not supported";
		return -1;
	}
	if (c == 'p' || c == 'P') {
		p->err = "Unicode property escapes are not supported";
		return -1;
	}
	if (is_syntax_char(c)) {
		*cp = c;
		return 0;
	}
	p->err = "invalid escape";
	return -1;
}

static const uint32_t (*set_ranges(int set, size_t *n, int *neg))[2]
{
	*neg = (set % 2) == 0;
	switch ((set + 1) / 2) {
	case 1:
		*n = ARRAY_LEN(set_digit);
		return set_digit;
	case 2:
		*n = ARRAY_LEN(set_word);
		return set_word;
	default:
		*n = ARRAY_LEN(set_space);
		return set_space;
	}
}

/* One class atom: a code point (*cp) or a class escape (*set). 0, or -1. */
static int
rx_class_atom(struct rx_parse *p, uint32_t *cp, int *set)
{
	int assert;

	*set = 0;
	if (rx_eof(p)) {
		p->err = "unterminated character class";
		return -1;
	}
	if (p->s[p->i] == '\\') {
		p->i++;
		return rx_escape(p, 1, cp, set, &assert);
	}
	*cp = utf8_next(p->s, p->n, &p->i);
	if (*cp == CP_BAD) {
		p->err = "invalid UTF-8 in the pattern";
		return -1;
	}
	return 0;
}

static struct rx_node *
rx_class(struct rx_parse *p)
{
	struct rx_node *n;
	uint32_t lo, hi;
	int neg = 0, set, set2;
	const uint32_t (*sr)[2];
	size_t sn;
	int sneg;
	long idx;

	/* the '[' is consumed */
	if (!rx_eof(p) && p->s[p->i] == '^') {
		neg = 1;
		p->i++;
	}
	p->ntmp = 0;
	for (;;) {
		if (rx_eof(p)) {
			p->err = "unterminated character class";
			return NULL;
		}
		if (p->s[p->i] == ']') {
			p->i++;
			break;
		}
		if (rx_class_atom(p, &lo, &set) < 0)
			return NULL;
		if (!rx_eof(p) && p->s[p->i] == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
			p->i++;
			if (rx_class_atom(p, &hi, &set2) < 0)
				return NULL;
			if (set || set2) {
				p->err = "a class escape cannot bound a range";
				return NULL;
			}
			if (lo > hi) {
				p->err = "range out of order in character class";
				return NULL;
			}
			if (rx_tmp_add(p, lo, hi) < 0)
				return NULL;
			continue;
		}
		if (set) {
			sr = set_ranges(set, &sn, &sneg);
			if (rx_tmp_set(p, sr, sn, sneg) < 0)
				return NULL;
		} else if (rx_tmp_add(p, lo, lo) < 0) {
			return NULL;
		}
	}
	idx = rx_tmp_commit(p, neg);
	if (idx < 0)
		return NULL;
	if ((n = rx_new(p, RX_CLASS)) == NULL)
		return NULL;
	n->c = (uint32_t)idx;
	return n;
}

static struct rx_node *rx_disj(struct rx_parse *p);

/* Reads a decimal count for {n,m}; -1 when none. Values past the bound saturate. */
static long
rx_count(struct rx_parse *p)
{
	long v = 0;
	size_t start = p->i;

	while (!rx_eof(p) && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		if (v <= 100000000)
			v = v * 10 + (p->s[p->i] - '0');
		p->i++;
	}
	return p->i == start ? -1 : v;
}

static struct rx_node *
rx_atom(struct rx_parse *p, int *quantifiable)
{
	struct rx_node *n;
	uint32_t c, cp;
	int set, assert;
	const uint32_t (*sr)[2];
	size_t sn;
	int sneg;
	long idx;

	*quantifiable = 1;
	c = p->s[p->i];
	switch (c) {
	case '.':
		p->i++;
		return rx_new(p, RX_ANY);
	case '^':
		p->i++;
		*quantifiable = 0;
		return rx_new(p, RX_BOL);
	case '$':
		p->i++;
		*quantifiable = 0;
		return rx_new(p, RX_EOL);
	case '[':
		p->i++;
		return rx_class(p);
	case '(':
		p->i++;
		if (++p->depth > REGEX_MAX_GROUPS) {
			p->err = "groups nested too deeply";
			return NULL;
		}
		if (!rx_eof(p) && p->s[p->i] == '?') {
			p->i++;
			if (!rx_eof(p) && p->s[p->i] == ':') {
				p->i++;
			} else if (!rx_eof(p) && p->s[p->i] == '<' && p->i + 1 < p->n &&
			    p->s[p->i + 1] != '=' && p->s[p->i + 1] != '!') {
				/* (?<name>...): a plain group here, as nothing can refer to it */
				size_t st = ++p->i;
				while (!rx_eof(p) && (p->s[p->i] == '_' || p->s[p->i] == '$' ||
				    (p->s[p->i] >= 'a' && p->s[p->i] <= 'z') ||
				    (p->s[p->i] >= 'A' && p->s[p->i] <= 'Z') ||
				    (p->i > st && p->s[p->i] >= '0' && p->s[p->i] <= '9')))
					p->i++;
				if (p->i == st || rx_eof(p) || p->s[p->i] != '>') {
					p->err = "invalid group name";
					return NULL;
				}
				p->i++;
			} else {
				p->err = "lookaround assertions are not supported";
				return NULL;
			}
		}
		n = rx_disj(p);
		if (n == NULL)
			return NULL;
		if (rx_eof(p) || p->s[p->i] != ')') {
			p->err = "missing )";
			return NULL;
		}
		p->i++;
		p->depth--;
		return n;
	case ')':
		p->err = "unmatched )";
		return NULL;
	case '*':
	case '+':
	case '?':
	case '{':
		p->err = "nothing to repeat";
		return NULL;
	case ']':
	case '}':
		p->err = "lone ] or } (escape it)";
		return NULL;
	case '\\':
		p->i++;
		if (rx_escape(p, 0, &cp, &set, &assert) < 0)
			return NULL;
		if (assert) {
			*quantifiable = 0;
			return rx_new(p, assert == 1 ? RX_WORDB : RX_NWORDB);
		}
		if (set) {
			p->ntmp = 0;
			sr = set_ranges(set, &sn, &sneg);
			if (rx_tmp_set(p, sr, sn, sneg) < 0)
				return NULL;
			if ((idx = rx_tmp_commit(p, 0)) < 0)
				return NULL;
			if ((n = rx_new(p, RX_CLASS)) == NULL)
				return NULL;
			n->c = (uint32_t)idx;
			return n;
		}
		if ((n = rx_new(p, RX_CHAR)) == NULL)
			return NULL;
		n->c = cp;
		return n;
	default:
		cp = utf8_next(p->s, p->n, &p->i);
		if (cp == CP_BAD) {
			p->err = "invalid UTF-8 in the pattern";
			return NULL;
		}
		if ((n = rx_new(p, RX_CHAR)) == NULL)
			return NULL;
		n->c = cp;
		return n;
	}
}

static struct rx_node *
rx_term(struct rx_parse *p)
{
	struct rx_node *a, *r;
	long lo, hi;
	int q;

	a = rx_atom(p, &q);
	if (a == NULL || rx_eof(p))
		return a;
	switch (p->s[p->i]) {
	case '*': lo = 0; hi = -1; p->i++; break;
	case '+': lo = 1; hi = -1; p->i++; break;
	case '?': lo = 0; hi = 1; p->i++; break;
	case '{':
		p->i++;
		lo = rx_count(p);
		if (lo < 0) {
			p->err = "lone { (escape it)";
			return NULL;
		}
		hi = lo;
		if (!rx_eof(p) && p->s[p->i] == ',') {
			p->i++;
			hi = rx_count(p);      /* -1: unbounded */
		}
		if (rx_eof(p) || p->s[p->i] != '}') {
			p->err = "invalid {n,m} quantifier";
			return NULL;
		}
		p->i++;
		if (hi >= 0 && hi < lo) {
			p->err = "numbers out of order in {n,m}";
			return NULL;
		}
		if (lo > REGEX_MAX_REPEAT || hi > REGEX_MAX_REPEAT) {
			p->err = "repetition count over 1000";
			return NULL;
		}
		break;
	default:
		return a;
	}
	if (!q) {
		p->err = "an assertion cannot be repeated";
		return NULL;
	}
	if (!rx_eof(p) && p->s[p->i] == '?')
		p->i++;                 /* lazy: same answer for a search */
	r = rx_new(p, RX_REP);
	if (r == NULL)
		return NULL;
	r->a = a;
	r->min = (uint32_t)lo;
	r->max = hi < 0 ? RX_INF : (uint32_t)hi;
	return r;
}

static struct rx_node *
rx_alt(struct rx_parse *p)
{
	struct rx_node *acc = NULL, *t, *c;

	while (!rx_eof(p) && p->s[p->i] != '|' && p->s[p->i] != ')') {
		t = rx_term(p);
		if (t == NULL)
			return NULL;
		if (acc == NULL) {
			acc = t;
			continue;
		}
		if ((c = rx_new(p, RX_CAT)) == NULL)
			return NULL;
		c->a = acc;
		c->b = t;
		acc = c;
	}
	return acc ? acc : rx_new(p, RX_EMPTY);
}

static struct rx_node *
rx_disj(struct rx_parse *p)
{
	struct rx_node *acc, *t, *c;

	acc = rx_alt(p);
	while (acc != NULL && !rx_eof(p) && p->s[p->i] == '|') {
		p->i++;
		t = rx_alt(p);
		if (t == NULL)
			return NULL;
		if ((c = rx_new(p, RX_ALT)) == NULL)
			return NULL;
		c->a = acc;
		c->b = t;
		acc = c;
	}
	return acc;
}

#define RX_SAT ((uint64_t)1 << 40)

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a + b > RX_SAT ? RX_SAT : a + b;
}

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return a > RX_SAT / b ? RX_SAT : a * b;
}

/* Instructions `n` compiles to (saturating). */
static uint64_t
rx_size(const struct rx_node *n)
{
	uint64_t e;

	switch (n->k) {
	case RX_EMPTY:
		return 0;
	case RX_CAT:
		return sat_add(rx_size(n->a), rx_size(n->b));
	case RX_ALT:
		return sat_add(sat_add(rx_size(n->a), rx_size(n->b)), 2);
	case RX_REP:
		e = rx_size(n->a);
		if (n->max == RX_INF)
			return sat_add(sat_mul(n->min, e), e + 2);
		return sat_add(sat_mul(n->min, e), sat_mul(n->max - n->min, e + 1));
	default:
		return 1;
	}
}

/* The instruction of each atom kind (rx_emit). */
static const uint32_t atom_op[] = {
	[RX_CHAR] = OP_CHAR, [RX_CLASS] = OP_CLASS, [RX_ANY] = OP_ANY, [RX_BOL] = OP_BOL,
	[RX_EOL] = OP_EOL, [RX_WORDB] = OP_WORDB, [RX_NWORDB] = OP_NWORDB,
};

static void
rx_emit(struct regex *re, const struct rx_node *n)
{
	uint32_t i, l1, first;
	struct rx_inst *in;

	switch (n->k) {
	case RX_EMPTY:
		return;
	case RX_CHAR:
	case RX_CLASS:
	case RX_ANY:
	case RX_BOL:
	case RX_EOL:
	case RX_WORDB:
	case RX_NWORDB:
		/* an atom: one instruction, with the code point or class index it tests */
		re->prog[re->n++] = (struct rx_inst){ atom_op[n->k],
		    n->k == RX_CHAR || n->k == RX_CLASS ? n->c : 0, 0 };
		return;
	case RX_CAT:
		rx_emit(re, n->a);
		rx_emit(re, n->b);
		return;
	case RX_ALT:
		l1 = re->n++;
		rx_emit(re, n->a);
		i = re->n++;
		re->prog[l1] = (struct rx_inst){ OP_SPLIT, l1 + 1, re->n };
		rx_emit(re, n->b);
		re->prog[i] = (struct rx_inst){ OP_JMP, re->n, 0 };
		return;
	case RX_REP:
		for (i = 0; i < n->min; i++)
			rx_emit(re, n->a);
		if (n->max == RX_INF) {
			l1 = re->n++;
			rx_emit(re, n->a);
			re->prog[re->n] = (struct rx_inst){ OP_JMP, l1, 0 };
			re->n++;
			re->prog[l1] = (struct rx_inst){ OP_SPLIT, l1 + 1, re->n };
			return;
		}
		/* x{n,m}: each optional copy may skip to the common end */
		first = re->n;
		for (i = n->min; i < n->max; i++) {
			l1 = re->n++;
			re->prog[l1] = (struct rx_inst){ OP_SPLIT, l1 + 1, 0 };
			rx_emit(re, n->a);
		}
		for (i = first; i < re->n; i++) {
			in = &re->prog[i];
			if (in->op == OP_SPLIT && in->y == 0 && in->x == i + 1)
				in->y = re->n;
		}
		return;
	}
}

/* Compiles `pat` into `re`, with memory from `a`. 0, or -1 with *err. */
static int
rx_compile(const char *pat, size_t plen, struct arena *a, struct regex *re, const char **err)
{
	struct rx_parse p;
	struct arena tmp;
	struct rx_node *ast;
	uint64_t size;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	memset(re, 0, sizeof(*re));
	if (plen > REGEX_MAX_PATTERN) {
		*err = "pattern longer than 1024 bytes";
		return -1;
	}
	arena_init(&tmp, 4096);
	p.s = (const unsigned char *)pat;
	p.n = plen;
	p.a = &tmp;
	ast = rx_disj(&p);
	if (ast != NULL && !rx_eof(&p)) {
		p.err = "unmatched )";
		ast = NULL;
	}
	if (ast == NULL)
		goto out;
	size = sat_add(rx_size(ast), 1);
	if (size > REGEX_MAX_PROG) {
		p.err = "pattern too complex (over 2048 instructions once repetitions are expanded)";
		goto out;
	}
	re->prog = arena_alloc(a, (size_t)size * sizeof(*re->prog));
	re->cls = arena_alloc(a, (p.ncls ? p.ncls : 1) * sizeof(*re->cls));
	re->rng = arena_alloc(a, (p.nrng ? p.nrng : 1) * sizeof(*re->rng));
	if (re->prog == NULL || re->cls == NULL || re->rng == NULL) {
		p.err = "out of memory";
		goto out;
	}
	if (p.ncls)
		memcpy(re->cls, p.cls, p.ncls * sizeof(*re->cls));
	if (p.nrng)
		memcpy(re->rng, p.rng, p.nrng * sizeof(*re->rng));
	rx_emit(re, ast);
	re->prog[re->n++] = (struct rx_inst){ OP_MATCH, 0, 0 };
	re->anchored = re->prog[0].op == OP_BOL;
	rc = 0;
out:
	if (rc < 0)
		*err = p.err ? p.err : "invalid pattern";
	free(p.rng);
	free(p.cls);
	free(p.tmp);
	arena_free(&tmp);
	return rc;
}

struct regex *
regex_compile(const char *pat, size_t len, struct arena *a, const char **why)
{
	struct regex *re = arena_zalloc(a, sizeof(*re));

	if (re == NULL) {
		*why = "out of memory";
		return NULL;
	}
	return rx_compile(pat, len, a, re, why) == 0 ? re : NULL;
}

uint32_t
regex_size(const struct regex *re)
{
	return re->n;
}

/* Per-search scratch: two thread lists, a visit mark per instruction, a stack. */
struct regex_scratch {
	uint32_t *cur, *nxt, *mark, *stack;
	uint32_t  cap;
	uint32_t  gen;
};

static int
rx_scratch_init(struct regex_scratch *sc, uint32_t cap, struct arena *a)
{
	uint32_t *m = arena_zalloc(a, (size_t)cap * 4 * sizeof(uint32_t));

	if (m == NULL)
		return -1;
	sc->cur = m;
	sc->nxt = m + cap;
	sc->mark = m + 2 * (size_t)cap;
	sc->stack = m + 3 * (size_t)cap;
	sc->cap = cap;
	sc->gen = 0;
	return 0;
}

struct regex_scratch *
regex_scratch_new(struct arena *a, uint32_t size)
{
	struct regex_scratch *sc = arena_alloc(a, sizeof(*sc));

	if (sc == NULL || rx_scratch_init(sc, size, a) < 0)
		return NULL;
	return sc;
}

static void
rx_newgen(struct regex_scratch *sc)
{
	if (++sc->gen == 0) {
		memset(sc->mark, 0, sc->cap * sizeof(uint32_t));
		sc->gen = 1;
	}
}

static int
cp_word(uint32_t c)
{
	return c < 0x80 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '_');
}

static int
cls_has(const struct regex *re, uint32_t idx, uint32_t c)
{
	const struct rx_cls *k = &re->cls[idx];
	uint32_t lo = 0, hi = k->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c < re->rng[k->off + mid][0])
			hi = mid;
		else if (c > re->rng[k->off + mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

/* Adds `pc` and its epsilon closure at a position between `prev` and `here` to list.
 * Returns 1 when MATCH is reached. */
static int
rx_add(const struct regex *re, struct regex_scratch *sc, uint32_t *list, uint32_t *cnt, uint32_t pc,
    uint32_t prev, uint32_t here, uint64_t *budget)
{
	uint32_t sp = 0;
	const struct rx_inst *in;

	if (sc->mark[pc] == sc->gen)
		return 0;
	sc->mark[pc] = sc->gen;
	sc->stack[sp++] = pc;
	while (sp > 0) {
		pc = sc->stack[--sp];
		in = &re->prog[pc];
		if (*budget > 0)
			(*budget)--;
		switch (in->op) {
		case OP_MATCH:
			return 1;
		case OP_JMP:
			goto push_x;
		case OP_SPLIT:
			if (sc->mark[in->y] != sc->gen) {
				sc->mark[in->y] = sc->gen;
				sc->stack[sp++] = in->y;
			}
			goto push_x;
		case OP_BOL:
			if (prev == CP_NONE)
				goto push_next;
			continue;
		case OP_EOL:
			if (here == CP_NONE)
				goto push_next;
			continue;
		case OP_WORDB:
			if (cp_word(prev) != cp_word(here))
				goto push_next;
			continue;
		case OP_NWORDB:
			if (cp_word(prev) == cp_word(here))
				goto push_next;
			continue;
		default:
			list[(*cnt)++] = pc;
			continue;
		}
push_next:
		if (sc->mark[pc + 1] != sc->gen) {
			sc->mark[pc + 1] = sc->gen;
			sc->stack[sp++] = pc + 1;
		}
		continue;
push_x:
		if (sc->mark[in->x] != sc->gen) {
			sc->mark[in->x] = sc->gen;
			sc->stack[sp++] = in->x;
		}
	}
	return 0;
}

int
regex_search(const struct regex *re, struct regex_scratch *sc, const char *str, size_t n,
    uint64_t *budget)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t *cur = sc->cur, *nxt = sc->nxt, *t, ncur = 0, nnxt, k, prev = CP_NONE, here, after;
	size_t i = 0, j;
	const struct rx_inst *in;
	int ok;

	here = n ? utf8_next(s, n, &i) : CP_NONE;
	if (here == CP_BAD)
		here = 0xfffd;
	rx_newgen(sc);
	if (rx_add(re, sc, cur, &ncur, 0, prev, here, budget))
		return 1;
	while (here != CP_NONE) {
		if (*budget == 0)
			return -1;
		if (ncur == 0 && re->anchored)
			return 0;
		j = i;
		after = j < n ? utf8_next(s, n, &j) : CP_NONE;
		if (after == CP_BAD)
			after = 0xfffd;
		rx_newgen(sc);
		nnxt = 0;
		for (k = 0; k < ncur; k++) {
			in = &re->prog[cur[k]];
			switch (in->op) {
			case OP_CHAR:
				ok = here == in->x;
				break;
			case OP_ANY:
				ok = here != '\n' && here != '\r' && here != 0x2028 && here != 0x2029;
				break;
			case OP_CLASS:
				ok = cls_has(re, in->x, here);
				break;
			default:
				ok = 0;
				break;
			}
			if (ok && rx_add(re, sc, nxt, &nnxt, cur[k] + 1, here, after, budget))
				return 1;
		}
		if (*budget >= ncur)
			*budget -= ncur;
		else
			*budget = 0;
		if (!re->anchored && rx_add(re, sc, nxt, &nnxt, 0, here, after, budget))
			return 1;
		t = cur;
		cur = nxt;
		nxt = t;
		ncur = nnxt;
		prev = here;
		here = after;
		i = j;
	}
	return 0;
}
