/* SPDX-License-Identifier: MIT
 * Unit tests for src/conf/yaml.c: node positions, variable expansion, and the exact message and
 * position of every refusal (aliases, anchors, tags, documents, duplicate keys, syntax). */
#include <stdlib.h>
#include <unistd.h>

#include "t.h"
#include "conf/yaml.h"

/* Collects "file:line:col: msg" lines. */
struct errs {
	char   text[4096];
	int    n;
};

static void
collect(void *arg, const char *file, int line, int col, const char *msg)
{
	struct errs *e = arg;
	size_t l = strlen(e->text);

	snprintf(e->text + l, sizeof(e->text) - l, "%s:%d:%d: %s\n", file, line, col, msg);
	e->n++;
}

static struct ynode *
load(const char *src, struct errs *e)
{
	memset(e, 0, sizeof(*e));
	return yaml_load_buf("t.yaml", src, strlen(src), collect, e);
}

static void
test_positions(void)
{
	struct errs e;
	struct ynode *r, *n;

	r = load("a: 1\nb:\n  - x\n  - \"y\"\n  -   z: 'q'\nc: {d: e}\n", &e);
	T_OK(r != NULL);
	T_EQ_INT(e.n, 0);
	T_EQ_INT(r->type, YN_MAP);
	T_EQ_INT(r->n, 3);
	T_EQ_STR(r->file, "t.yaml");
	n = ynode_get(r, "a");
	T_EQ_STR(n->str, "1");
	T_EQ_INT(n->len, 1);
	T_EQ_INT(n->line, 1);
	T_EQ_INT(n->col, 4);
	T_EQ_INT(n->plain, 1);
	n = ynode_key(r, "b");
	T_EQ_INT(n->line, 2);
	T_EQ_INT(n->col, 1);
	n = ynode_get(r, "b");
	T_EQ_INT(n->type, YN_SEQ);
	T_EQ_INT(n->n, 3);
	T_EQ_INT(n->items[0]->line, 3);
	T_EQ_INT(n->items[0]->col, 5);
	T_EQ_STR(n->items[1]->str, "y");
	T_EQ_INT(n->items[1]->plain, 0);
	T_EQ_INT(n->items[1]->col, 5);
	n = ynode_path(r, "b.2.z");
	T_OK(n != NULL);
	T_EQ_STR(n->str, "q");
	T_EQ_INT(n->line, 5);
	T_EQ_INT(n->col, 10);
	T_EQ_INT(n->plain, 0);
	n = ynode_path(r, "b.2");
	T_EQ_INT(n->type, YN_MAP);
	T_EQ_INT(n->line, 5);
	T_EQ_INT(n->col, 7);
	T_EQ_STR(ynode_path(r, "c.d")->str, "e");
	T_EQ_INT(ynode_path(r, "c.d")->col, 8);
	T_OK(ynode_path(r, "b.3") == NULL);
	T_OK(ynode_path(r, "b.x") == NULL);
	T_OK(ynode_path(r, "a.x") == NULL);
	T_OK(ynode_path(r, "zz") == NULL);
	T_OK(ynode_path(r, "") == r);
	T_OK(ynode_get(n, "a") == NULL);
	T_OK(ynode_get(NULL, "a") == NULL);
	T_OK(ynode_key(ynode_get(r, "b"), "a") == NULL);
end:
	ynode_free(r);
}

static void
test_empty(void)
{
	static const char *const src[] = { "", "\n", "# only a comment\n", "---\n", "---\n...\n" };
	struct errs e;
	struct ynode *r;
	size_t i;

	for (i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
		r = load(src[i], &e);
		T_CHECK(r != NULL && r->type == YN_MAP && r->n == 0 && r->line == 1 && r->col == 1,
		    "empty document %zu", i);
		T_CHECK(e.n == 0, "no error for empty document %zu", i);
		ynode_free(r);
	}
	/* a non-mapping document is returned as it is; conf refuses it */
	r = load("- a\n", &e);
	T_OK(r != NULL);
	T_EQ_INT(r->type, YN_SEQ);
	ynode_free(r);
	r = load("hello", &e);
	T_OK(r != NULL);
	T_EQ_INT(r->type, YN_SCALAR);
	T_EQ_STR(r->str, "hello");
	ynode_free(r);
	r = load("\"\"", &e);
	T_OK(r != NULL);
	T_EQ_INT(r->type, YN_SCALAR);
	T_EQ_INT(r->len, 0);
	ynode_free(r);
	r = NULL;
end:
	ynode_free(r);
}

static void
test_plain_and_tags(void)
{
	struct errs e;
	struct ynode *r;

	r = load("a: ~\nb: null\nc: 'null'\nd: !!str null\ne: off\nf: !!int 3\ng:\n", &e);
	T_OK(r != NULL);
	T_EQ_INT(ynode_get(r, "a")->plain, 1);
	T_EQ_STR(ynode_get(r, "a")->str, "~");
	T_EQ_INT(ynode_get(r, "b")->plain, 1);
	T_EQ_INT(ynode_get(r, "c")->plain, 0);
	T_EQ_INT(ynode_get(r, "d")->plain, 0);
	T_EQ_STR(ynode_get(r, "d")->str, "null");
	T_EQ_STR(ynode_get(r, "e")->str, "off");
	T_EQ_STR(ynode_get(r, "f")->str, "3");
	T_EQ_STR(ynode_get(r, "g")->str, "");
	T_EQ_INT(ynode_get(r, "g")->plain, 1);
	ynode_free(r);

	r = load("a: !custom x\nb: !!binary aGk=\nc: !!set {x}\n", &e);
	T_OK(r == NULL);
	T_EQ_INT(e.n, 3);
	T_EQ_STR(e.text,
	    "t.yaml:1:4: tag '!custom' is not allowed\n"
	    "t.yaml:2:4: tag 'tag:yaml.org,2002:binary' is not allowed\n"
	    "t.yaml:3:4: tag 'tag:yaml.org,2002:set' is not allowed\n");
end:;
}

static void
test_expansion(void)
{
	struct errs e;
	struct ynode *r = NULL;

	setenv("VISOR_T_A", "alpha", 1);
	setenv("VISOR_T_EMPTY", "", 1);
	unsetenv("VISOR_T_UNSET");
	r = load("a: ${VISOR_T_A}\n"
	    "b: x${VISOR_T_A}y${VISOR_T_A}\n"
	    "c: ${VISOR_T_UNSET:-def}\n"
	    "d: ${VISOR_T_EMPTY:-def}\n"
	    "e: '${VISOR_T_EMPTY}'\n"
	    "f: pa$word and $$ and $\n"
	    "g: ${VISOR_T_UNSET:-${VISOR_T_A}}\n"
	    "h: ${VISOR_T_UNSET:-}\n"
	    "i: ${VISOR_T_UNSET:-a:b}c\n"
	    "j: plain\n"
	    "${VISOR_T_A}: key\n"
	    "k: \"${VISOR_T_UNSET:-{x}}\"\n", &e);
	T_OK(r != NULL);
	T_EQ_STR(ynode_get(r, "a")->str, "alpha");
	T_EQ_INT(ynode_get(r, "a")->had_var, 1);
	T_EQ_STR(ynode_get(r, "b")->str, "xalphayalpha");
	T_EQ_STR(ynode_get(r, "c")->str, "def");
	T_EQ_STR(ynode_get(r, "d")->str, "def");
	T_EQ_STR(ynode_get(r, "e")->str, "");
	T_EQ_INT(ynode_get(r, "e")->len, 0);
	T_EQ_STR(ynode_get(r, "f")->str, "pa$word and $ and $");
	T_EQ_INT(ynode_get(r, "f")->had_var, 1);
	T_EQ_STR(ynode_get(r, "g")->str, "alpha");
	T_EQ_STR(ynode_get(r, "h")->str, "");
	T_EQ_STR(ynode_get(r, "i")->str, "a:bc");
	T_EQ_STR(ynode_get(r, "j")->str, "plain");
	T_EQ_INT(ynode_get(r, "j")->had_var, 0);
	T_EQ_STR(ynode_get(r, "alpha")->str, "key");
	T_EQ_STR(ynode_get(r, "k")->str, "{x}");
	ynode_free(r);

	r = load("a: ok\n"
	    "b: ${VISOR_T_UNSET}\n"
	    "c:\n  - \"${VISOR_T_A}${VISOR_T_UNSET}${VISOR_T_UNSET2}\"\n"
	    "d: ${VISOR_T_A\n"
	    "e: ${1BAD}\n"
	    "f: ${A-b}\n"
	    "g: ${}\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text,
	    "t.yaml:2:4: environment variable 'VISOR_T_UNSET' is not set\n"
	    "t.yaml:4:5: environment variable 'VISOR_T_UNSET' is not set\n"
	    "t.yaml:4:5: environment variable 'VISOR_T_UNSET2' is not set\n"
	    "t.yaml:5:4: unterminated '${' (write $$ for a literal '$')\n"
	    "t.yaml:6:4: invalid variable reference '${1BAD}' (expected ${NAME} or ${NAME:-default})\n"
	    "t.yaml:7:4: invalid variable reference '${A-b}' (expected ${NAME} or ${NAME:-default})\n"
	    "t.yaml:8:4: invalid variable reference '${}' (expected ${NAME} or ${NAME:-default})\n");
end:;
}

static void
test_refusals(void)
{
	struct errs e;
	struct ynode *r;

	r = load("a: &x 1\nb: *x\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:4: anchors (&x) are not allowed\n"
	    "t.yaml:2:4: aliases (*x) are not allowed\n");

	r = load("base: &b {a: 1}\nother:\n  <<: *b\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:7: anchors (&b) are not allowed\n"
	    "t.yaml:3:7: aliases (*b) are not allowed\n");

	r = load("a: 1\n---\nb: 2\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:2:1: only one YAML document is allowed in a configuration file\n");

	r = load("a: 1\nb: 2\na: 3\nc:\n  x: 1\n  x: 2\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:3:1: duplicate key 'a' (first at line 1)\n"
	    "t.yaml:6:3: duplicate key 'x' (first at line 5)\n");

	/* keys are compared after expansion */
	setenv("VISOR_T_K", "a", 1);
	r = load("a: 1\n${VISOR_T_K}: 2\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:2:1: duplicate key 'a' (first at line 1)\n");

	r = load("? [a, b]\n: 1\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:3: a mapping key must be a scalar\n");

	r = load("a: 1\nb: [1, 2\n", &e);
	T_OK(r == NULL);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.text, "t.yaml:3:1: syntax error: did not find expected ',' or ']' "
	    "(while parsing a flow sequence at 2:4)\n");

	/* an unquoted ${VAR} in a flow collection: the hint; quoted, or in block style, it loads */
	r = load("redis: { url: ${REDIS_URL} }\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:16: syntax error: did not find expected ',' or '}' (while "
	    "parsing a flow mapping at 1:8); an unquoted ${VAR} inside { } or [ ] reads as a "
	    "nested mapping: quote it (\"${VAR}\") or write the section in block style\n");
	r = load("u: [a, ${X}]\n", &e);
	T_OK(r == NULL);
	T_OK(strstr(e.text, "an unquoted ${VAR}") != NULL);
	setenv("VISOR_T_U", "redis://h:1", 1);
	r = load("redis: { url: \"${VISOR_T_U}\" }\n", &e);
	T_OK(r != NULL);
	ynode_free(r);
	r = load("a: {b: 1\n", &e);       /* no variable: no hint */
	T_OK(r == NULL);
	T_OK(strstr(e.text, "${VAR}") == NULL);

	r = load("a: 1\n b: 2\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:2:3: syntax error: mapping values are not allowed in this context\n");

	r = load("a: 1\n\tb: 2\n", &e);
	T_OK(r == NULL);
	T_EQ_INT(e.n, 1);

	r = yaml_load_buf("bin.yaml", "a: \x01\n", 6, collect, &e);
	T_OK(r == NULL);
end:;
}

static void
test_depth(void)
{
	char src[1024];
	struct errs e;
	struct ynode *r;
	int i;

	for (i = 0; i < 64; i++)
		src[i] = '[';
	for (i = 0; i < 64; i++)
		src[64 + i] = ']';
	src[128] = '\0';
	r = load(src, &e);
	T_OK(r != NULL);
	ynode_free(r);
	for (i = 0; i < 65; i++)
		src[i] = '[';
	for (i = 0; i < 65; i++)
		src[65 + i] = ']';
	src[130] = '\0';
	r = load(src, &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:65: nested more than 64 levels deep\n");
end:;
}

static void
test_file(void)
{
	char path[] = "/tmp/visor-test-yaml-XXXXXX";
	struct errs e;
	struct ynode *r;
	int fd;

	memset(&e, 0, sizeof(e));
	r = yaml_load_file("/nonexistent/visor.yaml", collect, &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "/nonexistent/visor.yaml:0:0: cannot read the file: "
	    "No such file or directory\n");

	fd = mkstemp(path);
	T_OK(fd >= 0);
	T_EQ_INT(write(fd, "x:\n  y: z\n", 10), 10);
	close(fd);
	memset(&e, 0, sizeof(e));
	r = yaml_load_file(path, collect, &e);
	unlink(path);
	T_OK(r != NULL);
	T_EQ_STR(r->file, path);
	T_EQ_STR(ynode_path(r, "x.y")->file, path);
	T_EQ_INT(ynode_path(r, "x.y")->line, 2);
	ynode_free(r);

	memset(&e, 0, sizeof(e));
	r = yaml_load_file("/tmp", collect, &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "/tmp:0:0: cannot read the file: Is a directory\n");
end:;
}

static void
test_big_map(void)
{
	/* many keys: grows the implicit-capacity arrays through several doublings */
	char *src = malloc(20000), *p = src;
	struct errs e;
	struct ynode *r = NULL;
	int i;

	for (i = 0; i < 1000; i++)
		p += snprintf(p, 20, "k%d: [%d]\n", i, i);
	r = load(src, &e);
	T_OK(r != NULL);
	T_EQ_INT(r->n, 1000);
	T_EQ_STR(ynode_get(r, "k999")->items[0]->str, "999");
	T_EQ_INT(ynode_key(r, "k999")->line, 1000);
end:
	ynode_free(r);
	free(src);
}

static void
test_expansion_limits(void)
{
	char src[1024], name[300], want[600];
	struct errs e;
	struct ynode *r = NULL;
	int i;

	/* a long value grows the expansion buffer several times */
	setenv("VISOR_T_LONG", "0123456789012345678901234567890123456789", 1);
	r = load("a: ${VISOR_T_LONG}${VISOR_T_LONG}${VISOR_T_LONG}${VISOR_T_LONG}${VISOR_T_LONG}"
	    "${VISOR_T_LONG}${VISOR_T_LONG}${VISOR_T_LONG}\n", &e);
	T_OK(r != NULL);
	T_EQ_INT(ynode_get(r, "a")->len, 320);
	ynode_free(r);
	r = NULL;

	for (i = 0; i < 256; i++)
		name[i] = 'A';
	name[256] = '\0';
	snprintf(src, sizeof(src), "a: ${%s}\n", name);
	r = load(src, &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:4: variable name too long\n");

	/* defaults may nest 8 deep; the 9th level is refused */
	unsetenv("VISOR_T_UNSET");
	r = load("a: ${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-"
	    "${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-x}}}}}}}}\n", &e);
	T_OK(r != NULL);
	T_EQ_STR(ynode_get(r, "a")->str, "x");
	ynode_free(r);
	r = load("a: ${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-"
	    "${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-${VISOR_T_UNSET:-x}"
	    "}}}}}}}}\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:4: variable defaults nested too deeply\n");
	/* a default that itself names an unset variable */
	r = load("a: ${VISOR_T_UNSET:-${VISOR_T_UNSET2}}\n", &e);
	T_OK(r == NULL);
	snprintf(want, sizeof(want), "t.yaml:1:4: environment variable 'VISOR_T_UNSET2' is not set\n");
	T_EQ_STR(e.text, want);
	/* user text in messages is shown printable and short */
	r = load("a: \"${\\e[31m}\"\nb: \"${xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-}\"\n", &e);
	T_OK(r == NULL);
	T_EQ_STR(e.text, "t.yaml:1:4: invalid variable reference '${?[31m}' (expected ${NAME} or "
	    "${NAME:-default})\n"
	    "t.yaml:2:4: invalid variable reference '${xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "...}' (expected ${NAME} or ${NAME:-default})\n");
	r = NULL;
end:
	ynode_free(r);
}

T_MAIN(test_positions, test_empty, test_plain_and_tags, test_expansion, test_refusals,
    test_depth, test_file, test_big_map, test_expansion_limits)
