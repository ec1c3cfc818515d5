/* SPDX-License-Identifier: MIT
 * proxyproto — the PROXY protocol parser (see proxyproto.h for what is accepted).
 *
 * Both versions are decided by their first byte ('P' for v1, '\r' for v2's signature), so a
 * TLS ClientHello (0x16) or an HTTP request line is refused at its first byte and never waits
 * for a timeout. v1 is checked loosely while incomplete (a prefix of "PROXY ", printable bytes,
 * the 107-byte bound) and strictly once its CRLF is in; v2 checks its fixed 16 bytes as they
 * come and the address block and TLVs once the announced length is in.
 */
#include "net/proxyproto.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

#define BAD(reason) do { if (why) *why = (reason); return PP_BAD; } while (0)

/* ---- v1 ------------------------------------------------------------------------------- */

/* A decimal number 0..max without leading zeros or sign, the whole of s[0..n). */
static int
v1_num(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Four dotted decimal numbers 0..255 without leading zeros (inet_pton(AF_INET) is exactly
 * that on glibc, but its laxer cousins are not: the check is ours). */
static int
v1_ip4(const char *s, size_t n, uint8_t *out)
{
	size_t i, start = 0;
	int part = 0;
	unsigned v;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (part > 3 || v1_num(s + start, i - start, 255, &v) < 0)
			return -1;
		out[part++] = (uint8_t)v;
		start = i + 1;
	}
	return part == 4 ? 0 : -1;
}

static int
v1_ip6(const char *s, size_t n, uint8_t *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	for (i = 0; i < n; i++)
		if (!(s[i] == ':' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/* The next field of line[*pos..end) up to a single space (or end); -1 on an empty field. */
static int
v1_field(const char *line, size_t end, size_t *pos, const char **f, size_t *fn)
{
	size_t i = *pos;

	while (i < end && line[i] != ' ')
		i++;
	if (i == *pos)
		return -1;
	*f = line + *pos;
	*fn = i - *pos;
	*pos = i < end ? i + 1 : i;
	return 0;
}

static enum pp_status
parse_v1(const uint8_t *buf, size_t n, struct pp_result *res, const char **why)
{
	static const char pre[] = "PROXY ";
	const char *line = (const char *)buf;
	const char *f[4];
	size_t fn[4], pos, end = 0, i;
	unsigned port;
	int k, fam;

	for (i = 0; i < n && i < sizeof(pre) - 1; i++)
		if (buf[i] != (uint8_t)pre[i])
			BAD("v1: no \"PROXY \" prefix");
	/* Find the CRLF within the bound; before it only printable ASCII. */
	for (i = 0; i < n && i < PP_V1_MAX; i++) {
		if (buf[i] == '\r') {
			if (i + 1 == n)
				break;              /* the LF may follow */
			if (buf[i + 1] != '\n')
				BAD("v1: CR without LF");
			end = i;
			break;
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			BAD("v1: a control or non-ASCII byte");
	}
	if (end == 0) {
		if (n >= PP_V1_MAX)
			BAD("v1: no CRLF within 107 bytes");
		return PP_MORE;
	}
	if (end + 2 > PP_V1_MAX)
		BAD("v1: line longer than 107 bytes");
	/* line[6..end): protocol and the four fields, single spaces between. */
	pos = sizeof(pre) - 1;
	if (end - pos >= 7 && memcmp(line + pos, "UNKNOWN", 7) == 0 &&
	    (end - pos == 7 || line[pos + 7] == ' ')) {
		/* The rest of the line is ignored, as the specification asks. */
		res->len = end + 2;
		res->version = 1;
		return PP_OK;
	}
	if (end - pos >= 5 && memcmp(line + pos, "TCP4 ", 5) == 0)
		fam = AF_INET;
	else if (end - pos >= 5 && memcmp(line + pos, "TCP6 ", 5) == 0)
		fam = AF_INET6;
	else
		BAD("v1: protocol is not TCP4, TCP6 or UNKNOWN");
	pos += 5;
	for (k = 0; k < 4; k++) {
		if (v1_field(line, end, &pos, &f[k], &fn[k]) < 0)
			BAD("v1: an empty field or a double space");
	}
	if (pos != end || line[end - 1] == ' ')
		BAD("v1: more than four fields after the protocol");
	if (fam == AF_INET) {
		if (v1_ip4(f[0], fn[0], res->src) < 0 || v1_ip4(f[1], fn[1], res->dst) < 0)
			BAD("v1: bad IPv4 address");
	} else {
		if (v1_ip6(f[0], fn[0], res->src) < 0 || v1_ip6(f[1], fn[1], res->dst) < 0)
			BAD("v1: bad IPv6 address");
	}
	if (v1_num(f[2], fn[2], 65535, &port) < 0)
		BAD("v1: bad source port");
	res->src_port = (uint16_t)port;
	if (v1_num(f[3], fn[3], 65535, &port) < 0)
		BAD("v1: bad destination port");
	res->dst_port = (uint16_t)port;
	res->len = end + 2;
	res->version = 1;
	res->has_addr = 1;
	res->family = fam;
	return PP_OK;
}

/* ---- v2 ------------------------------------------------------------------------------- */

/* TLVs fill b[0..n) exactly; their values are not interpreted. */
static int
v2_tlvs(const uint8_t *b, size_t n)
{
	size_t i = 0, l;

	while (i < n) {
		if (n - i < 3)
			return -1;
		l = ((size_t)b[i + 1] << 8) | b[i + 2];
		if (l > n - i - 3)
			return -1;
		i += 3 + l;
	}
	return 0;
}

/* An INET (n = 4) or INET6 (n = 16) address block: source and destination address in
 * network order, then source and destination port, big-endian. */
static void
v2_addrs(struct pp_result *res, const uint8_t *a, size_t n, int family)
{
	memcpy(res->src, a, n);
	memcpy(res->dst, a + n, n);
	res->src_port = (uint16_t)((a[2 * n] << 8) | a[2 * n + 1]);
	res->dst_port = (uint16_t)((a[2 * n + 2] << 8) | a[2 * n + 3]);
	res->family = family;
	res->has_addr = 1;
}

static enum pp_status
parse_v2(const uint8_t *buf, size_t n, struct pp_result *res, const char **why)
{
	size_t i, len, alen;
	const uint8_t *a;
	uint8_t fam = 0;

	for (i = 0; i < n && i < sizeof(v2_sig); i++)
		if (buf[i] != v2_sig[i])
			BAD("v2: bad signature");
	if (n > 12) {
		if ((buf[12] >> 4) != 2)
			BAD("v2: version is not 2");
		if ((buf[12] & 0x0f) > 1)
			BAD("v2: command is neither LOCAL nor PROXY");
	}
	if (n > 13 && (buf[12] & 0x0f) == 1) {
		/* LOCAL ignores the family byte; PROXY takes the ones the specification defines
		 * and refuses the rest (UDP: this is a stream). */
		fam = buf[13];
		if (fam != 0x00 && fam != 0x11 && fam != 0x21 && fam != 0x31 && fam != 0x32)
			BAD(fam == 0x12 || fam == 0x22 ? "v2: UDP over a stream connection" :
			    "v2: unknown address family or transport");
	}
	if (n < PP_V2_HDR)
		return PP_MORE;
	len = ((size_t)buf[14] << 8) | buf[15];
	if (len > PP_V2_MAX_LEN)
		BAD("v2: header longer than 4096 bytes");
	if (n < PP_V2_HDR + len)
		return PP_MORE;
	res->len = PP_V2_HDR + len;
	res->version = 2;
	if ((buf[12] & 0x0f) == 0) {
		res->local = 1;     /* the block is discarded unread */
		return PP_OK;
	}
	a = buf + PP_V2_HDR;
	switch (fam) {
	case 0x11:
		alen = 12;
		break;
	case 0x21:
		alen = 36;
		break;
	case 0x31:
	case 0x32:
		alen = 216;
		break;
	default:            /* UNSPEC: no address, the block is not defined, skipped */
		return PP_OK;
	}
	if (len < alen)
		BAD("v2: address block shorter than its family needs");
	if (v2_tlvs(a + alen, len - alen) < 0)
		BAD("v2: a TLV overruns the header");
	if (fam == 0x11)
		v2_addrs(res, a, 4, AF_INET);
	else if (fam == 0x21)
		v2_addrs(res, a, 16, AF_INET6);
	return PP_OK;
}

enum pp_status
pp_parse(const uint8_t *buf, size_t n, struct pp_result *res, const char **why)
{
	memset(res, 0, sizeof(*res));
	res->family = AF_UNSPEC;
	if (n == 0)
		return PP_MORE;
	if (buf[0] == 'P')
		return parse_v1(buf, n, res, why);
	if (buf[0] == v2_sig[0])
		return parse_v2(buf, n, res, why);
	BAD("not a PROXY protocol header");
}
