/* SPDX-License-Identifier: MIT
 * libFuzzer target for src/net/proxyproto.c. Each input is parsed as the bytes a listed peer
 * sent, and the verdict is checked against the contract in proxyproto.h: an accepted header
 * lies within the input, reads the same from a buffer cut at its end (nothing after it is
 * looked at), and every shorter cut of it is PP_MORE; a refusal has a reason; PP_MORE never
 * comes for more bytes than a header can take. The input is copied into a buffer of exactly
 * its size so ASan sees any read past n.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same(const struct pp_result *a, const struct pp_result *b)
{
	if (a->len != b->len || a->version != b->version || a->has_addr != b->has_addr ||
	    a->family != b->family || a->local != b->local ||
	    memcmp(a->src, b->src, 16) != 0 || memcmp(a->dst, b->dst, 16) != 0 ||
	    a->src_port != b->src_port || a->dst_port != b->dst_port)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_result r, r2;
	const char *why = NULL;
	enum pp_status st, st2;
	uint8_t *b;
	size_t k;

	b = malloc(size ? size : 1);
	if (b == NULL)
		return 0;
	memcpy(b, data, size);
	st = pp_parse(size ? b : NULL, size, &r, &why);
	switch (st) {
	case PP_OK:
		if (r.len == 0 || r.len > size || r.len > PP_MAX || (r.version != 1 && r.version != 2))
			abort();
		if (r.has_addr != (r.family == AF_INET || r.family == AF_INET6))
			abort();
		if (r.version == 1 && r.len > PP_V1_MAX)
			abort();
		/* The same header alone, in a buffer that ends where it does. */
		if (r.len < size) {
			uint8_t *c = malloc(r.len);
			if (c == NULL)
				break;
			memcpy(c, b, r.len);
			st2 = pp_parse(c, r.len, &r2, &why);
			if (st2 != PP_OK)
				abort();
			same(&r, &r2);
			free(c);
		}
		/* Shorter cuts are PP_MORE: byte by byte for short headers, a few for long. */
		for (k = 0; k < r.len; k += r.len <= 128 ? 1 : 1 + r.len / 16) {
			if (pp_parse(k ? b : NULL, k, &r2, &why) != PP_MORE)
				abort();
		}
		if (pp_parse(b, r.len - 1, &r2, &why) != PP_MORE && r.len > 1)
			abort();
		break;
	case PP_MORE:
		if (size >= PP_MAX)
			abort();
		break;
	case PP_BAD:
		if (why == NULL || *why == '\0')
			abort();
		break;
	default:
		abort();
	}
	free(b);
	return 0;
}
