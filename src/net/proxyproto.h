/* SPDX-License-Identifier: MIT
 * proxyproto — the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that
 * an L4 load balancer (AWS NLB, HAProxy `send-proxy`, most cloud TCP balancers) puts in front
 * of the client's first byte, so the server learns the address the balancer accepted.
 *
 * A pure parser: bytes in, a verdict and the addresses out. No socket, no allocation, no
 * global state; any thread. It never reads past `n`, and never claims a byte beyond the
 * header's own end: what follows (a TLS ClientHello, an HTTP request) is the caller's.
 *
 * What it accepts (anything else is PP_BAD with a reason):
 *   v1  "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 likewise, or "PROXY UNKNOWN"
 *       followed by anything printable up to the CRLF; exactly one space between fields,
 *       IPv4 as four decimal numbers 0..255 without leading zeros, IPv6 in any form
 *       inet_pton(3) reads, ports 0..65535 without leading zeros; at most 107 bytes.
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, family/transport
 *       UNSPEC, TCP over IPv4 or IPv6, or UNIX stream/datagram; a length of at most
 *       PP_V2_MAX_LEN; for PROXY over IPv4/IPv6 the address block, then TLVs, each of
 *       which must fit exactly in what the length announces (their values are skipped:
 *       PP2_TYPE_SSL, PP2_TYPE_AWS, NOOP... are not interpreted). LOCAL discards the whole
 *       block unread, as the specification says. UDP over a stream connection is refused.
 */
#ifndef VISOR_PROXYPROTO_H
#define VISOR_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>

/* The longest v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses). */
#define PP_V1_MAX      107
/* The fixed part of a v2 header (signature, version/command, family, length). */
#define PP_V2_HDR      16
/* The longest v2 block visor reads after those 16 bytes: addresses and TLVs. Balancers send
 * tens of bytes (an IPv6 address block is 36, AWS's VPC endpoint TLV about 30); nginx's
 * bound for the whole header is 4096 too. */
#define PP_V2_MAX_LEN  (4096 - PP_V2_HDR)
/* The most bytes a header can take: a reader's buffer size. */
#define PP_MAX         (PP_V2_HDR + PP_V2_MAX_LEN)

enum pp_status {
	PP_OK = 0,     /* a whole, valid header: res->len bytes */
	PP_MORE,       /* valid so far, not whole: every byte given belongs to the header */
	PP_BAD,        /* not a valid header (whatever follows) */
};

/* What a header says. */
struct pp_result {
	size_t   len;          /* header bytes, signature to the last TLV or the CRLF */
	int      version;      /* 1 or 2 */
	int      has_addr;     /* 0: keep the connection's own addresses (v2 LOCAL, v1 UNKNOWN,
	                        * v2 UNSPEC or UNIX) */
	int      family;       /* AF_INET or AF_INET6 when has_addr, else AF_UNSPEC */
	uint8_t  src[16];      /* network byte order; IPv4 in the first 4 bytes */
	uint8_t  dst[16];
	uint16_t src_port;     /* host byte order */
	uint16_t dst_port;
	int      local;        /* v2 LOCAL command (a balancer's own health check) */
};

/* Parses the header at the start of buf[0..n). PP_OK fills *res (res->len <= n, and the same
 * verdict and length come back for any longer buffer with the same start); PP_MORE: the
 * bytes so far are a valid beginning, all of them header, and more must come; PP_BAD sets
 * *why (a static string for the log, never NULL when why is given). buf may be NULL when n
 * is 0. */
enum pp_status pp_parse(const uint8_t *buf, size_t n, struct pp_result *res, const char **why);

#endif
