/* SPDX-License-Identifier: MIT
 * libFuzzer: the log redactor (src/lib/redact.c). It reads untrusted bytes of any length and
 * content — an upstream's error body, a client's path — on the way to a log line. Besides
 * never reading out of bounds, for every input and with and without REDACT_CUT:
 *   - nothing is left to find: redacting the output again returns 0 (whatever a second
 *     pass would replace holds a marker already) and never adds a marker or a byte;
 *   - the output grows only by markers: len(out) <= len(in) + 9 per marker in the output;
 *   - with no marker in the output, the output is the input byte for byte;
 *   - valid UTF-8 in gives valid UTF-8 out (replaced spans start and end on ASCII bytes);
 *   - the JSON form (REDACT_JSON) is exactly sbuf_add_json of the raw form, so a log line
 *     built with it is valid JSON whatever the input;
 *   - redact_maybe() == 0 means the input comes out unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "lib/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
utf8_valid(const char *p, size_t n)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		if ((unsigned char)p[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = utf8_decode((const unsigned char *)p + i, n - i, &cp)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

static size_t
markers(const char *p, size_t n)
{
	size_t c = 0;
	const char *e, *q;

	if (n == 0)
		return 0;
	e = p + n;
	while ((q = memmem(p, (size_t)(e - p), REDACT_MARK, REDACT_MARK_LEN)) != NULL) {
		c++;
		p = q + REDACT_MARK_LEN;
	}
	return c;
}

static void
check(const char *in, size_t n, unsigned flags)
{
	struct sbuf out = { 0 }, again = { 0 }, js = { 0 }, esc = { 0 };
	size_t c, c2, m;

	c = redact_append(&out, in, n, flags);
	if (out.oom)
		abort();
	m = markers(out.p, out.len);
	if (out.len > n + (REDACT_MARK_LEN - 1) * m)
		abort();
	if (c > 0 && m == 0)
		abort();
	if (m == 0 && (out.len != n || (n && memcmp(out.p, in, n) != 0)))
		abort();
	if (!redact_maybe(in, n) && (out.len != n || (n && memcmp(out.p, in, n) != 0)))
		abort();
	if (utf8_valid(in, n) && !utf8_valid(out.p, out.len))
		abort();
	c2 = out.len ? redact_append(&again, out.p, out.len, flags) : 0;
	if (c2 != 0 || again.len > out.len || markers(again.p, again.len) > m)
		abort();
	redact_append(&js, in, n, flags | REDACT_JSON);
	if (out.len)
		sbuf_add_json(&esc, out.p, out.len);
	if (js.len != esc.len || (js.len && memcmp(js.p, esc.p, js.len) != 0))
		abort();
	sbuf_fini(&out);
	sbuf_fini(&again);
	sbuf_fini(&js);
	sbuf_fini(&esc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check((const char *)data, size, 0);
	check((const char *)data, size, REDACT_CUT);
	return 0;
}
