/* SPDX-License-Identifier: MIT
 * Unit tests for src/net/proxyproto.c: a table of whole headers (valid v1 and v2 of every
 * family and command, TLVs, every malformed shape) with the exact verdict, length and
 * addresses; and for each of them the contract's two promises about partial and longer
 * input: every proper prefix of a valid header is PP_MORE (fed byte by byte, as a slow peer
 * sends it), a refused one never turns valid by adding bytes, and bytes after a valid header
 * (a TLS ClientHello, an HTTP request) change neither the verdict nor the length. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "t.h"
#include "net/proxyproto.h"

/* The table leaves trailing fields zero: a refused case has no version or addresses. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define SIG      "\r\n\r\n\0\r\nQUIT\n"
#define B(s)     (const uint8_t *)(s), sizeof(s) - 1

struct ppcase {
	const char    *name;
	const uint8_t *b;
	size_t         n;
	int            st;          /* PP_OK or PP_BAD (whole input) */
	int            version, has_addr, family, local;
	const char    *src, *dst;   /* text, when has_addr */
	unsigned       sport, dport;
};

/* A v2 PROXY TCP4 192.0.2.1:4660 -> 198.51.100.2:443 address block. */
#define A4 "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\x12\x34" "\x01\xbb"
/* A v2 PROXY TCP6 2001:db8::1:4660 -> 2001:db8::2:443 address block. */
#define A6 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" \
	   "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x12\x34" "\x01\xbb"

static char unix_block[16 + 220];
static char long_v2[16 + 4081];

static const struct ppcase cases[] = {
	/* ---- v1, valid ---- */
	{ "v1 tcp4", B("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), PP_OK, 1, 1,
	  AF_INET, 0, "192.0.2.1", "198.51.100.2", 56324, 443 },
	{ "v1 tcp4 zeros", B("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), PP_OK, 1, 1,
	  AF_INET, 0, "0.0.0.0", "255.255.255.255", 0, 65535 },
	{ "v1 tcp6", B("PROXY TCP6 2001:db8::1 2001:db8::2 4660 443\r\n"), PP_OK, 1, 1,
	  AF_INET6, 0, "2001:db8::1", "2001:db8::2", 4660, 443 },
	{ "v1 tcp6 mapped", B("PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n"), PP_OK, 1, 1,
	  AF_INET6, 0, "::ffff:192.0.2.9", "::1", 1, 2 },
	{ "v1 tcp6 longest", B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), PP_OK, 1, 1, AF_INET6, 0,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	  65535, 65535 },
	{ "v1 unknown", B("PROXY UNKNOWN\r\n"), PP_OK, 1, 0, AF_UNSPEC, 0, NULL, NULL, 0, 0 },
	{ "v1 unknown rest", B("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
	  PP_OK, 1, 0, AF_UNSPEC, 0, NULL, NULL, 0, 0 },
	/* ---- v1, refused ---- */
	{ "v1 lower", B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 no space", B("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 tcp5", B("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 udp4", B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 unknownx", B("PROXY UNKNOWNX\r\n"), PP_BAD },
	{ "v1 empty", B("PROXY \r\n"), PP_BAD },
	{ "v1 double space", B("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 double space 2", B("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 trailing space", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), PP_BAD },
	{ "v1 three fields", B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), PP_BAD },
	{ "v1 five fields", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), PP_BAD },
	{ "v1 tab", B("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 lf only", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), PP_BAD },
	{ "v1 cr cr", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"), PP_BAD },
	{ "v1 nul", B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 high byte", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xc3\xa9\r\n"), PP_BAD },
	{ "v1 ip4 256", B("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 lead zero", B("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 three parts", B("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 five parts", B("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 empty part", B("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 sign", B("PROXY TCP4 1.+2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip4 hex", B("PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 tcp4 with v6", B("PROXY TCP4 ::1 ::1 1 2\r\n"), PP_BAD },
	{ "v1 tcp6 with v4", B("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), PP_BAD },
	{ "v1 ip6 bad", B("PROXY TCP6 2001:db8:::1 ::1 1 2\r\n"), PP_BAD },
	{ "v1 ip6 zone", B("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), PP_BAD },
	{ "v1 ip6 brackets", B("PROXY TCP6 [::1] ::1 1 2\r\n"), PP_BAD },
	{ "v1 port 65536", B("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), PP_BAD },
	{ "v1 port 99999", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), PP_BAD },
	{ "v1 port 6 digits", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 000001\r\n"), PP_BAD },
	{ "v1 port lead zero", B("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), PP_BAD },
	{ "v1 port sign", B("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), PP_BAD },
	{ "v1 port letters", B("PROXY TCP4 1.2.3.4 5.6.7.8 http 2\r\n"), PP_BAD },
	{ "v1 too long", B("PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), PP_BAD },
	{ "v1 never ends", B("PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), PP_BAD },
	/* ---- v2, valid ---- */
	{ "v2 proxy tcp4", B(SIG "\x21\x11\x00\x0c" A4), PP_OK, 2, 1, AF_INET, 0,
	  "192.0.2.1", "198.51.100.2", 4660, 443 },
	{ "v2 proxy tcp6", B(SIG "\x21\x21\x00\x24" A6), PP_OK, 2, 1, AF_INET6, 0,
	  "2001:db8::1", "2001:db8::2", 4660, 443 },
	{ "v2 proxy tcp4 tlvs", B(SIG "\x21\x11\x00\x31" A4
	  "\x20\x00\x0f" "\x01" "\x00\x00\x00\x00" "\x21\x00\x07" "TLSv1.3"     /* SSL + VERSION */
	  "\x04\x00\x00"                                                      /* NOOP, empty */
	  "\xea\x00\x0d" "\x01" "vpce-0123abc"),                             /* AWS VPC endpoint */
	  PP_OK, 2, 1, AF_INET, 0, "192.0.2.1", "198.51.100.2", 4660, 443 },
	{ "v2 proxy tcp6 tlv", B(SIG "\x21\x21\x00\x2a" A6 "\x01\x00\x03" "h2x"), PP_OK, 2, 1,
	  AF_INET6, 0, "2001:db8::1", "2001:db8::2", 4660, 443 },
	{ "v2 local", B(SIG "\x20\x00\x00\x00"), PP_OK, 2, 0, AF_UNSPEC, 1 },
	{ "v2 local with block", B(SIG "\x20\x11\x00\x0c" A4), PP_OK, 2, 0, AF_UNSPEC, 1 },
	{ "v2 local odd family", B(SIG "\x20\xff\x00\x03" "abc"), PP_OK, 2, 0, AF_UNSPEC, 1 },
	{ "v2 local bad tlv", B(SIG "\x20\x11\x00\x0e" A4 "\x01\x00"), PP_OK, 2, 0, AF_UNSPEC, 1 },
	{ "v2 proxy unspec", B(SIG "\x21\x00\x00\x00"), PP_OK, 2, 0, AF_UNSPEC, 0 },
	{ "v2 proxy unspec block", B(SIG "\x21\x00\x00\x05" "12345"), PP_OK, 2, 0, AF_UNSPEC, 0 },
	/* ---- v2, refused ---- */
	{ "v2 bad sig", B("\r\n\r\n\0\r\nQUIT\r" "\x21\x11\x00\x0c" A4), PP_BAD },
	{ "v2 version 1", B(SIG "\x11\x11\x00\x0c" A4), PP_BAD },
	{ "v2 version 3", B(SIG "\x31\x11\x00\x0c" A4), PP_BAD },
	{ "v2 command 2", B(SIG "\x22\x11\x00\x0c" A4), PP_BAD },
	{ "v2 command f", B(SIG "\x2f\x11\x00\x0c" A4), PP_BAD },
	{ "v2 udp4", B(SIG "\x21\x12\x00\x0c" A4), PP_BAD },
	{ "v2 udp6", B(SIG "\x21\x22\x00\x24" A6), PP_BAD },
	{ "v2 family 4", B(SIG "\x21\x41\x00\x0c" A4), PP_BAD },
	{ "v2 inet unspec transport", B(SIG "\x21\x10\x00\x0c" A4), PP_BAD },
	{ "v2 transport 3", B(SIG "\x21\x13\x00\x0c" A4), PP_BAD },
	{ "v2 tcp4 short", B(SIG "\x21\x11\x00\x0b" "\xc0\x00\x02\x01\xc6\x33\x64\x02\x12\x34\x01"),
	  PP_BAD },
	{ "v2 tcp6 short", B(SIG "\x21\x21\x00\x0c" A4), PP_BAD },
	{ "v2 tcp4 empty", B(SIG "\x21\x11\x00\x00"), PP_BAD },
	{ "v2 tlv truncated head", B(SIG "\x21\x11\x00\x0e" A4 "\x01\x00"), PP_BAD },
	{ "v2 tlv overruns", B(SIG "\x21\x11\x00\x10" A4 "\x01\x00\x02" "a"), PP_BAD },
	{ "v2 tlv huge", B(SIG "\x21\x11\x00\x0f" A4 "\x01\xff\xff"), PP_BAD },
	{ "v2 too long", B(SIG "\x21\x11\x0f\xf1"), PP_BAD },
	{ "v2 max length", B(SIG "\x21\x11\xff\xff"), PP_BAD },
	/* ---- neither ---- */
	{ "tls hello", B("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), PP_BAD },
	{ "http", B("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), PP_BAD },
	{ "post", B("POST / HTTP/1.1\r\n\r\n"), PP_BAD },
	{ "nul", B("\0"), PP_BAD },
};

/* Filled at start: cases too large to write as literals. */
static struct ppcase built[2];

static void
build(void)
{
	size_t i;

	/* v2 PROXY UNIX stream: 216 address bytes (two 108-byte paths), one TLV. */
	memcpy(unix_block, SIG "\x21\x31\x00\xdc", 16);
	memset(unix_block + 16, 0, 216);
	memcpy(unix_block + 16, "/run/lb.sock", 12);
	memcpy(unix_block + 16 + 216, "\x04\x00\x01" "z", 4);
	unix_block[15] = (char)(216 + 4);
	built[0] = (struct ppcase){ "v2 proxy unix", (const uint8_t *)unix_block, 16 + 220, PP_OK,
	    2, 0, AF_UNSPEC, 0 };
	/* The longest block accepted: 4080 bytes, an IPv4 block and one NOOP TLV. */
	memcpy(long_v2, SIG "\x21\x11\x0f\xf0" A4, 28);
	long_v2[28] = 0x04;
	long_v2[29] = (char)((4080 - 12 - 3) >> 8);
	long_v2[30] = (char)((4080 - 12 - 3) & 0xff);
	for (i = 31; i < 16 + 4080; i++)
		long_v2[i] = 'n';
	built[1] = (struct ppcase){ "v2 longest", (const uint8_t *)long_v2, 16 + 4080, PP_OK, 2, 1,
	    AF_INET, 0, "192.0.2.1", "198.51.100.2", 4660, 443 };
}

static int
same_addr(int family, const uint8_t *bin, const char *want)
{
	char t[INET6_ADDRSTRLEN];

	return inet_ntop(family, bin, t, sizeof(t)) != NULL && strcmp(t, want) == 0;
}

static void
check_case(const struct ppcase *c)
{
	static const char tail[] = "\x16\x03\x01 GET / HTTP/1.1\r\n\r\nPROXY TCP4";
	struct pp_result r;
	const char *why = NULL;
	enum pp_status st;
	uint8_t *more;
	size_t k;
	int seen_bad = 0;

	st = pp_parse(c->b, c->n, &r, &why);
	T_CHECK((int)st == c->st, "%s: status %d, want %d (%s)", c->name, st, c->st,
	    st == PP_BAD && why ? why : "");
	if (st == PP_BAD)
		T_CHECK(why != NULL && *why != '\0', "%s: a reason", c->name);
	if (c->st == PP_OK && st == PP_OK) {
		T_CHECK(r.len == c->n, "%s: len %zu, want %zu", c->name, r.len, c->n);
		T_CHECK(r.version == c->version, "%s: version %d", c->name, r.version);
		T_CHECK(r.has_addr == c->has_addr, "%s: has_addr %d", c->name, r.has_addr);
		T_CHECK(r.family == c->family, "%s: family %d", c->name, r.family);
		T_CHECK(r.local == c->local, "%s: local %d", c->name, r.local);
		if (c->has_addr) {
			T_CHECK(same_addr(r.family, r.src, c->src), "%s: src", c->name);
			T_CHECK(same_addr(r.family, r.dst, c->dst), "%s: dst", c->name);
			T_CHECK(r.src_port == c->sport && r.dst_port == c->dport,
			    "%s: ports %u %u", c->name, r.src_port, r.dst_port);
		}
	}
	/* Every prefix, one byte more each time: a valid header is PP_MORE all the way; a
	 * refused one may look valid for a while, but once refused stays refused. */
	for (k = 0; k < c->n; k++) {
		st = pp_parse(k ? c->b : NULL, k, &r, &why);
		if (c->st == PP_OK)
			T_CHECK(st == PP_MORE, "%s: prefix %zu gives %d", c->name, k, st);
		else if (seen_bad)
			T_CHECK(st == PP_BAD, "%s: prefix %zu valid again", c->name, k);
		else
			T_CHECK(st != PP_OK, "%s: prefix %zu accepted", c->name, k);
		seen_bad |= st == PP_BAD;
	}
	/* What follows the header is not the parser's. */
	more = malloc(c->n + sizeof(tail));
	if (more == NULL)
		return;
	memcpy(more, c->b, c->n);
	memcpy(more + c->n, tail, sizeof(tail));
	st = pp_parse(more, c->n + sizeof(tail), &r, &why);
	T_CHECK((int)st == c->st, "%s + tail: status %d", c->name, st);
	if (st == PP_OK)
		T_CHECK(r.len == c->n, "%s + tail: len %zu", c->name, r.len);
	free(more);
}

static void
test_table(void)
{
	size_t i;

	build();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	for (i = 0; i < sizeof(built) / sizeof(built[0]); i++)
		check_case(&built[i]);
}

static void
test_unix_dgram(void)
{
	struct pp_result r;
	const char *why = NULL;

	unix_block[13] = 0x32;
	T_EQ_INT(pp_parse((const uint8_t *)unix_block, 16 + 220, &r, &why), PP_OK);
	T_EQ_INT(r.has_addr, 0);
	unix_block[13] = 0x31;
	/* One byte short of the UNIX address block. */
	unix_block[14] = 0;
	unix_block[15] = (char)215;
	T_EQ_INT(pp_parse((const uint8_t *)unix_block, 16 + 215, &r, &why), PP_BAD);
	unix_block[15] = (char)(216 + 4);
end:
	return;
}

/* Reasons are precise enough for a log line. */
static void
test_reasons(void)
{
	struct pp_result r;
	const char *why = NULL;

	T_EQ_INT(pp_parse((const uint8_t *)"\x16\x03\x01", 3, &r, &why), PP_BAD);
	T_EQ_STR(why, "not a PROXY protocol header");
	T_EQ_INT(pp_parse(B(SIG "\x21\x12\x00\x0c" A4), &r, &why), PP_BAD);
	T_EQ_STR(why, "v2: UDP over a stream connection");
	T_EQ_INT(pp_parse(B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), &r, &why), PP_BAD);
	T_EQ_STR(why, "v1: a control or non-ASCII byte");
	/* The first byte decides: "P" alone could still be v1, "\r" v2. */
	T_EQ_INT(pp_parse((const uint8_t *)"P", 1, &r, &why), PP_MORE);
	T_EQ_INT(pp_parse((const uint8_t *)"\r", 1, &r, &why), PP_MORE);
	T_EQ_INT(pp_parse((const uint8_t *)"G", 1, &r, &why), PP_BAD);
	/* A v2 header refuses an unknown family before its block arrives. */
	T_EQ_INT(pp_parse(B(SIG "\x21\x41"), &r, &why), PP_BAD);
	/* ...and an oversized length before the 4 KiB it announces. */
	T_EQ_INT(pp_parse(B(SIG "\x21\x11\x10\x00"), &r, &why), PP_BAD);
	T_EQ_STR(why, "v2: header longer than 4096 bytes");
end:
	return;
}

T_MAIN(test_table, test_unix_dgram, test_reasons)
