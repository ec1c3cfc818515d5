/* SPDX-License-Identifier: MIT
 * conn — one client connection: TLS (or plain for the redirect listener), the keep-alive
 * loop, head parsing with header_timeout / idle_timeout, pipelined requests answered in
 * order (one request at a time; the next head is parsed only when the current request is
 * finished), and a lingering close after answers that leave unread input.
 *
 * On a listener whose peer is in listen.proxy_protocol the connection first reads that peer's
 * PROXY header straight from the socket (peeking, then consuming exactly the header's bytes,
 * so TLS starts on the byte after it) and takes the client address it carries.
 *
 * Ownership: created on accept by its worker, freed by conn_close (deferred to the loop when
 * called from inside a callback of its own). Owns its sock, its parser and its current req.
 */
#ifndef VISOR_CONN_H
#define VISOR_CONN_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "http/http.h"
#include "net/sock.h"
#include "core/worker.h"

enum conn_state {
	CS_IDLE = 0,      /* between requests (keep-alive) */
	CS_HEAD,          /* reading a head */
	CS_REQ,           /* a request is in progress */
	CS_CLOSING,       /* flushing the last answer, then close */
	CS_LINGER,        /* our side shut; reading and dropping what the client still sends */
	CS_TUNNEL,        /* upgraded (WebSocket): bytes spliced to the upstream (tunnel.c) */
	CS_H2,            /* HTTP/2 (h2.c): the sock's events go to the session */
	CS_PROXY,         /* a listen.proxy_protocol peer: reading its PROXY header, before TLS
	                   * or HTTP sees a byte (the sock is not reading yet) */
};

struct conn {
	struct worker      *w;
	struct conf        *conf;            /* generation it was accepted with (one ref): its
	                                      * SSL_CTX and SNI table must outlive the handshake
	                                      * and the SSL; requests use the current one */
	struct sock         s;
	struct http_parser  hp;
	struct req         *req;
	struct h2conn      *h2;              /* CS_H2: the session and its streams (h2.c) */
	enum conn_state     st;
	enum listen_kind    kind;
	int                 https_port;      /* for the redirect Location */
	struct sockaddr_storage peer;            /* the client: the socket's peer, or the
	                                      * address a PROXY header carried */
	char                ip[INET6_ADDRSTRLEN];
	int                 family;
	uint8_t             ip_bin[16];
	struct event       *timer;
	struct event       *pp_ev;           /* CS_PROXY: the raw socket's read event */
	uint8_t            *pp_buf;          /* CS_PROXY: header bytes so far (PP_MAX) */
	size_t              pp_len;
	TAILQ_ENTRY(conn)   link;
	unsigned            nreq;
	int64_t             head_start_ms;
	unsigned            got_bytes : 1;   /* anything arrived since the last request */
	unsigned            dead : 1;
	unsigned            feeding : 1;    /* an input pass or a request entry (req_resume) runs:
	                                      * conn_feed returns at once, that frame feeds last */
	unsigned            body_paused : 1; /* reading stopped for upstream backpressure */
	unsigned            idle_trimmed : 1;/* TLS buffers freed in this idle period */
	unsigned            plain_h2 : 1;    /* a `plain: 2` listener's (fuzz_h2): h2 without TLS */
};

/* Accept path: takes ownership of fd. */
void conn_accept(struct worker *w, struct listener *l, int fd, const struct sockaddr *sa, int salen);
/* Marks it dead; the worker's reaper frees it (and its request) on the next loop turn. */
void conn_close(struct conn *c);
void conn_free(struct conn *c);        /* reaper only */
/* The current request is finished: log it, free it, go on with the next or close. */
void conn_req_done(struct conn *c);
/* Bytes for the client: append to c->s.out then call this. */
void conn_flush(struct conn *c);
/* Request body streaming: pause/resume feeding the client's bytes (backpressure). */
void conn_body_pause(struct conn *c);
void conn_body_resume(struct conn *c);
/* Feed pending input to the parser (after a pause). */
void conn_feed(struct conn *c);
/* Worker is draining: close idle connections, mark others to close after their request. */
void conn_drain(struct conn *c);
/* A new generation (SIGHUP): an HTTP/2 connection gets a GOAWAY (its open streams finish) so
 * its long-lived client moves to the new certificates and limits; HTTP/1.1 ones go on. */
void conn_reload(struct conn *c);
int  conn_is_dead(const struct conn *c);

/* ---- HTTP/2 takes the connection over (h2.c) ---- */
/* After ALPN chose h2: the sock's events go to cb(arg); conn's own timer stops (h2.c keeps
 * its own). conn_flush, conn_drain, conn_close and conn_free hand over to h2.c. */
void conn_h2_begin(struct conn *c, sock_cb cb, void *arg);

/* ---- a WebSocket tunnel takes the connection over (tunnel.c) ---- */
/* From now on the client sock's events go to cb(arg) and the connection only closes; returns
 * the sock, still owned by the connection. */
struct sock *conn_tunnel_begin(struct conn *c, sock_cb cb, void *arg);
/* (Re)arms the tunnel's idle timer: the connection closes after ms without traffic. */
void conn_tunnel_idle(struct conn *c, int64_t ms);
/* The upstream side ended: the connection takes its sock back, lets what is queued leave,
 * then closes. */
void conn_tunnel_end(struct conn *c);

#endif
