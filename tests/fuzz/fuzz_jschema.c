/* SPDX-License-Identifier: MIT
 * libFuzzer target for src/lib/jschema.c and the two libraries under it, regex.c (patterns)
 * and jsformat.c (formats). The input is split at the first NUL byte: the part before is a
 * schema, the part after a request body. Each run
 *   - compiles the schema (any text: most are refused, which must be clean too), and checks the
 *     body against it; a refusal's message must start with "Invalid", hold at most the
 *     bounded pointer, and never contain the body when the body is a long distinctive value;
 *   - checks the body without a schema (well-formedness and forbidden keys);
 *   - uses the schema part as a pattern and the body as its subject, through the pattern
 *     engine alone, and the body under every format.
 * A second input shape, starting with the byte 0x01, wraps the schema part into
 * {"pattern": <json string>} so the pattern compiler is reached with arbitrary text.
 * Every work bound must hold: ASan/UBSan and libFuzzer's -timeout catch the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_result(enum jschema_status st, const struct jschema_result *res)
{
	if (st != JSCHEMA_INVALID)
		return;
	if (strncmp(res->msg, "Invalid", 7) != 0 || res->rule == NULL)
		abort();
	if (strlen(res->pointer) > JSCHEMA_MAX_POINTER)
		abort();
	if (strlen(res->msg) >= sizeof(res->msg))
		abort();
}

/* {"pattern": "<text as a JSON string>"} */
static char *
wrap_pattern(const char *p, size_t n, size_t *outlen)
{
	char *o = malloc(n * 6 + 32), *w;
	size_t i;

	if (o == NULL)
		return NULL;
	w = o;
	memcpy(w, "{\"pattern\":\"", 12);
	w += 12;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\') {
			*w++ = '\\';
			*w++ = (char)c;
		} else if (c < 0x20) {
			static const char hx[] = "0123456789abcdef";
			memcpy(w, "\\u00", 4);
			w[4] = hx[c >> 4];
			w[5] = hx[c & 15];
			w += 6;
		} else {
			*w++ = (char)c;
		}
	}
	memcpy(w, "\"}", 2);
	w += 2;
	*outlen = (size_t)(w - o);
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fmts[] = { "email", "uuid", "date-time", "date", "uri" };
	const char *in = (const char *)data, *nul, *schema, *body;
	size_t slen, blen, i;
	struct jschema_cerr ce;
	struct jschema_result res;
	struct jschema *s;
	struct arena a;
	enum jschema_status st;
	char *wrapped = NULL, err[128];
	int pattern_mode = 0;

	if (size > 256 * 1024)
		return 0;
	if (size > 0 && data[0] == 0x01) {
		pattern_mode = 1;
		in++;
		size--;
	}
	nul = memchr(in, '\0', size);
	schema = in;
	slen = nul ? (size_t)(nul - in) : size;
	body = nul ? nul + 1 : in + size;
	blen = nul ? size - slen - 1 : 0;

	if (pattern_mode) {
		wrapped = wrap_pattern(schema, slen, &slen);
		if (wrapped == NULL)
			return 0;
		schema = wrapped;
	}

	arena_init(&a, 4096);
	s = jschema_compile(schema, slen, &ce);
	if (s == NULL) {
		if (ce.msg[0] == '\0')
			abort();
	} else {
		st = jschema_check(s, body, blen, &a, &res);
		check_result(st, &res);
		(void)jschema_root_requires(s);
		jschema_free(s);
	}
	st = jschema_check(NULL, body, blen, &a, &res);
	check_result(st, &res);
	arena_free(&a);

	if (!pattern_mode && slen <= JSCHEMA_MAX_PATTERN)
		(void)jschema_regex_search(schema, slen, body, blen, err, sizeof(err));
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (jschema_format_check(fmts[i], body, blen) < 0)
			abort();
	free(wrapped);
	return 0;
}
