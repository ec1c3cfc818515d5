/* SPDX-License-Identifier: MIT
 * sock — a byte stream over a non-blocking socket, plain or TLS, driven by libevent.
 *
 * visor drives SSL_read/SSL_write itself instead of using bufferevent_openssl: one read
 * event and one write event per socket, input and output evbuffers that hold no memory
 * while empty, and no extra copy layer (see docs/architecture.md for the measurement).
 *
 * The owner reads s->in and appends to s->out, then calls sock_flush(). Everything the
 * owner hears comes through one callback, always called from the event loop (never from
 * inside a sock_* call the owner made), and it is the last thing a sock function does, so
 * the owner may free the sock from inside its callback.
 *
 * Ownership: the sock owns fd, SSL, events and buffers from sock_init until sock_fini; the
 * owner embeds the struct and calls sock_fini exactly once. Single thread: the worker's.
 */
#ifndef VISOR_SOCK_H
#define VISOR_SOCK_H

#include <stddef.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <openssl/ssl.h>

enum {
	SOCK_EV_READ      = 1,   /* new bytes in s->in */
	SOCK_EV_DRAINED   = 2,   /* s->out fell to the armed low mark (see sock_notify_drained) */
	SOCK_EV_EOF       = 4,   /* peer closed its side (bytes read before it are in s->in) */
	SOCK_EV_ERROR     = 8,   /* I/O or TLS error; the stream is unusable */
	SOCK_EV_CONNECTED = 16,  /* outgoing connect() completed */
};

struct sock;
typedef void (*sock_cb)(struct sock *s, int events, void *arg);

struct sock {
	int              fd;
	SSL             *ssl;          /* NULL: plain TCP */
	struct event    *rev, *wev;
	struct event    *dev;          /* deferred delivery, made on first use */
	struct evbuffer *in, *out;
	sock_cb          cb;
	void            *arg;
	size_t           rmax;         /* reading pauses while in >= rmax */
	size_t           drain_low;
	unsigned         reading : 1;      /* owner wants bytes */
	unsigned         connecting : 1;
	unsigned         eof : 1;
	unsigned         reset : 1;   /* the eof was a reset (ECONNRESET): nothing can reach the peer */
	unsigned         failed : 1;
	unsigned         r_wants_w : 1;    /* SSL_read needs the socket writable */
	unsigned         w_wants_r : 1;    /* SSL_write needs the socket readable */
	unsigned         drain_armed : 1;
	unsigned         rev_on : 1, wev_on : 1;
	unsigned         pending_ev : 8;   /* events to deliver from the loop */
	unsigned long    ssl_err;          /* first OpenSSL error code, for logs */
	size_t           bytes_in, bytes_out;
};

/* Takes ownership of fd (non-blocking) and ssl (may be NULL). 0, or -1 (ENOMEM) in which case
 * the caller still owns fd and ssl. Reading starts stopped. */
int  sock_init(struct sock *s, struct event_base *base, int fd, SSL *ssl, sock_cb cb, void *arg);
void sock_fini(struct sock *s);          /* closes; safe on a zeroed or failed sock */

void sock_read_start(struct sock *s);
void sock_read_stop(struct sock *s);
/* Writes as much of s->out as the socket takes now; the rest goes when writable. */
void sock_flush(struct sock *s);
/* Deliver SOCK_EV_DRAINED once when s->out holds <= low bytes. */
void sock_notify_drained(struct sock *s, size_t low);
/* Starts a non-blocking connect; SOCK_EV_CONNECTED or SOCK_EV_ERROR follows. -1 on an
 * immediate failure (errno set). */
int  sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t len);
/* Half-close our sending side (after a final answer, lingering close). */
void sock_shutdown_write(struct sock *s);

/* A non-blocking, close-on-exec TCP socket for `family` with TCP_NODELAY. -1 on error. */
int  sock_tcp_socket(int family);

#endif
