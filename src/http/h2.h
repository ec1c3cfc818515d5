/* SPDX-License-Identifier: MIT
 * h2 — HTTP/2 to clients (RFC 9113) over a TLS connection that negotiated "h2" by ALPN.
 * libnghttp2 does the framing, HPACK and flow control; this module owns the session of one
 * connection and gives each stream a `struct req` with a transport (req.h `struct req_tx`),
 * so every policy runs per stream exactly as for an HTTP/1.1 request and the filters never
 * learn which protocol carried it. The upstream side stays HTTP/1.1 through the same pool.
 *
 * What a stream's head must be before it becomes a request (docs/security.md, "HTTP/2"):
 * everything nghttp2 checks (pseudo-headers present once and first, lower-case names, no
 * connection-specific header, TE only "trailers", no CR/LF/NUL, Content-Length matching the
 * DATA), plus :scheme https, :path in origin form (or "*" for OPTIONS), :authority equal to
 * Host when both come, and the checks an HTTP/1.1 head passes before req_start. Cookies are
 * joined with "; " as RFC 9113 §8.2.3 asks, so the upstream sees one Cookie header.
 *
 * Limits (all finite by default, docs/configuration.md `http2`): concurrent streams, the
 * per-stream and per-connection receive windows (request bodies in memory), client resets
 * per 10 s (rapid reset), control frames per 10 s (PING/SETTINGS/PRIORITY floods), the
 * header block's wire size and frame count (CONTINUATION floods), its decoded size
 * (client.max_header_size: 431; four times that: GOAWAY, an HPACK bomb), and timeouts.
 *
 * Ownership: the connection (conn.c) owns its h2 state (c->h2) once h2_begin took the sock
 * over; h2_free frees it with the connection. Each stream owns its request until the request
 * is finished; a request is never freed from inside a call that came from req.c or from
 * nghttp2: the stream marks it, and the connection's kick event frees it.
 */
#ifndef VISOR_H2_H
#define VISOR_H2_H

struct conn;
struct h2conn;

/* Why a stream or connection was refused, for visor_http2_refused_total{reason}. */
enum h2_refusal {
	H2R_MALFORMED = 0,   /* a stream reset for a protocol error in its head or body */
	H2R_HEAD,            /* a head refused with 400/431 after it was decoded */
	H2R_RAPID_RESET,     /* GOAWAY: too many client resets */
	H2R_FLOOD,           /* GOAWAY: too many control frames */
	H2R_HEADER_BLOCK,    /* GOAWAY: header block too large, too many CONTINUATIONs, HPACK bomb */
	H2R_TIMEOUT,         /* a stream or the connection timed out */
	H2R_REFUSED_STREAM,  /* over max_concurrent_streams */
	H2R_PROTOCOL,        /* GOAWAY: a connection error (bad preface, frame, window) */
	H2R_COUNT
};
extern const char *const h2_refusal_name[H2R_COUNT];

/* Whether the TLS connection negotiated h2 by ALPN. */
int  h2_negotiated(const struct conn *c);
/* Takes the connection over: sends the server preface and SETTINGS and reads frames. 0, or
 * -1 when out of memory (the caller closes). */
int  h2_begin(struct conn *c);
/* conn_flush for an h2 connection: frames what is queued and writes it. */
void h2_flush(struct h2conn *h);
/* The worker drains (SIGTERM): GOAWAY, open streams finish, then the connection closes. */
void h2_drain(struct h2conn *h);
/* conn_close: stops every stream's upstream from calling into a request that goes away. */
void h2_closing(struct h2conn *h);
/* conn_free: aborts (logs) the requests still open and frees everything (h2_begin's failure
 * path too, before any stream). */
void h2_free(struct h2conn *h);

#endif
