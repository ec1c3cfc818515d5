/* SPDX-License-Identifier: MIT
 * libFuzzer: the HTTP/1.1 message parser both ways. The first byte picks request or response
 * and how the input is split into reads (heads arriving in pieces are the normal case); the
 * rest is fed through http_parser_feed exactly as conn.c / upstream.c do — heads taken into an
 * arena, the request checks of docs/security.md run, body bytes counted, pipelined messages
 * continued. Checks the invariants the proxy relies on: a parsed head's headers lie inside
 * it, the feed never consumes more than it was given, errors are sticky.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "core/util.h"

struct fz {
	struct arena      a;
	struct http_head  h;
	int               heads;
	int               have_head;
	uint64_t          body;
};

static int
on_head(struct http_parser *p)
{
	struct fz *f = p->owner;

	if (http_head_take(p, &f->a, &f->h) < 0)
		return -1;
	f->have_head = 1;
	f->heads++;
	for (uint32_t i = 0; i < f->h.hdrs.n; i++) {
		if (f->h.hdrs.v[i].nlen == 0)
			abort();          /* empty names are refused by the parser */
		if (memchr(f->h.hdrs.v[i].val, '\n', f->h.hdrs.v[i].vlen))
			abort();          /* no LF may survive into a value */
	}
	if (p->is_request)
		(void)http_request_check(&f->h, &f->a);
	return 0;
}

static int
on_body(struct http_parser *p, const char *at, size_t n)
{
	struct fz *f = p->owner;

	(void)at;
	f->body += n;
	return 0;
}

static int
on_done(struct http_parser *p)
{
	(void)p;
	return 0;
}

static const struct http_parser_ops ops = { on_head, on_body, on_done };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_parser p;
	struct fz f;
	size_t off = 0, step;
	long n;
	int rounds = 0;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	arena_init(&f.a, 4096);
	http_parser_init(&p, !(data[0] & 1), &ops, &f, 8192);
	step = (data[0] >> 1) ? (data[0] >> 1) : 1;      /* 1..127-byte reads */
	data++;
	size--;
	while (off < size && rounds++ < 100000) {
		size_t len = size - off < step ? size - off : step;
		n = http_parser_feed(&p, (const char *)data + off, len);
		if (n < 0) {
			/* errors are sticky: the next feed refuses too */
			if (http_parser_feed(&p, (const char *)data + off, len) != -1)
				abort();
			break;
		}
		if ((size_t)n > len)
			abort();
		off += (size_t)n;
		if (p.msg_done) {
			http_parser_next(&p);
			continue;
		}
		if (p.head_done && n == 0 && len > 0 && !p.msg_done) {
			/* paused right at the end of a head: go on with the body */
			continue;
		}
	}
	if (!p.head_done || !p.msg_done)
		(void)http_parser_eof(&p);
	http_parser_fini(&p);
	arena_free(&f.a);
	return 0;
}
