/* SPDX-License-Identifier: MIT
 * units — pure parsers for the values a config file holds: numbers, durations, sizes,
 * host:port addresses, CIDRs, status-code ranges. No allocation unless stated, no global
 * state, no I/O: safe from any thread, unit-tested and fuzzed. On failure each returns -1
 * and, when `err` is not NULL, points it at a static English message for the config error.
 */
#ifndef VISOR_UNITS_H
#define VISOR_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Decimal integer in [min, max]; no sign unless min < 0, no spaces, no trailing bytes. */
int units_int(const char *s, int64_t min, int64_t max, int64_t *out, const char **err);

/* Duration: integer followed by ms, s, m, h or d; a bare integer is seconds.
 * Result in milliseconds, in [0, 100 years]. "1500ms", "30s", "15m", "2h", "7d". */
int units_duration_ms(const char *s, int64_t *out_ms, const char **err);

/* Size: integer followed by k, m or g (binary, case-insensitive, optional trailing "b"
 * or "ib"); a bare integer is bytes. "16k" = 16384. Result in [0, 1 TiB]. */
int units_size(const char *s, int64_t *out, const char **err);

/* Boolean: true/false, yes/no, on/off (case-insensitive). */
int units_bool(const char *s, int *out, const char **err);

/* A socket address "host:port", "[v6]:port" or ":port"/"port" (all interfaces, IPv4).
 * host must be a numeric IPv4/IPv6 address or "localhost" (127.0.0.1); port 1..65535,
 * or 0 when allow_zero. No DNS: visor resolves nothing at run time. */
struct units_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};
int units_addr(const char *s, int allow_zero, struct units_addr *out, const char **err);

/* Same as units_addr but also accepts a DNS host name (upstream servers), resolved once,
 * synchronously, with getaddrinfo (config load only, never on the request path). */
int units_addr_resolve(const char *s, struct units_addr *out, const char **err);

/* units_addr_resolve without the resolver, for tests and fuzzing: a numeric address is
 * parsed as usual; a host name is only checked for syntax and leaves *out zeroed
 * (ss_family AF_UNSPEC). */
int units_addr_unresolved(const char *s, struct units_addr *out, const char **err);

/* Formats an address as "1.2.3.4:80" or "[::1]:80" into buf (>= 64 bytes). */
const char *units_addr_str(const struct units_addr *a, char *buf, size_t len);
/* Whether a and b are the same address: family, address and port (the len bytes). */
int units_addr_eq(const struct units_addr *a, const struct units_addr *b);
/* Whether a[0..an) and b[0..bn) list the same addresses in the same order. */
int units_addrs_eq(const struct units_addr *a, size_t an, const struct units_addr *b, size_t bn);

/* CIDR "10.0.0.0/8", "::1/128"; a bare address means /32 or /128. Host bits must be zero. */
struct units_cidr {
	int     family;         /* AF_INET or AF_INET6 */
	uint8_t addr[16];       /* network byte order; IPv4 uses the first 4 bytes */
	int     bits;
};
int units_cidr(const char *s, struct units_cidr *out, const char **err);

/* Whether the address (AF_INET: 4 bytes, AF_INET6: 16 bytes, v4-mapped v6 treated as v4)
 * lies in the CIDR. */
int units_cidr_match(const struct units_cidr *c, int family, const uint8_t *addr);

/* Status code or range: "500", "500-599"; codes in 100..599, lo <= hi. */
int units_status_range(const char *s, int *lo, int *hi, const char **err);

/* Levenshtein distance, capped at `cap` (returns cap when larger); for "did you mean". */
int units_edit_distance(const char *a, const char *b, int cap);

#endif
