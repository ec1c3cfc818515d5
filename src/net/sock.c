/* SPDX-License-Identifier: MIT
 * sock — non-blocking plain/TLS stream. Reads go straight from SSL_read into space reserved
 * in the input evbuffer; writes coalesce up to one TLS record (16 KiB) per SSL_write. The
 * two TLS cross-wants (a read that needs the socket writable during a key update, a write
 * that needs it readable) are tracked so neither direction can stall. Callbacks are only
 * ever made from event handlers, after the sock is done touching itself.
 */
#include "net/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/util.h"

#define SOCK_READ_CHUNK  4096
#define SOCK_READ_BUDGET (256 * 1024)   /* per event: keep other connections served */
#define SOCK_TLS_RECORD  16384
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

static void on_rev(evutil_socket_t fd, short what, void *arg);
static void on_wev(evutil_socket_t fd, short what, void *arg);

/* Arms or disarms ev when that changes anything (epoll_ctl is a syscall); returns `on`. */
static unsigned
ev_switch(struct event *ev, int on, unsigned was)
{
	if (on && !was)
		event_add(ev, NULL);
	else if (!on && was)
		event_del(ev);
	return on != 0;
}

static void
rev_set(struct sock *s, int on)
{
	s->rev_on = ev_switch(s->rev, on, s->rev_on);
}

static void
wev_set(struct sock *s, int on)
{
	s->wev_on = ev_switch(s->wev, on, s->wev_on);
}

/* Whether the read event must be armed: the owner reads and there is room, or a pending
 * SSL_write waits for readability. */
static void
rev_update(struct sock *s)
{
	int want = (s->reading && !s->eof && !s->failed &&
	    evbuffer_get_length(s->in) < s->rmax) || s->w_wants_r;

	rev_set(s, want && !s->failed);
}

static void
on_dev(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	int ev = (int)s->pending_ev;

	(void)fd;
	(void)what;
	s->pending_ev = 0;
	if (ev)
		s->cb(s, ev, s->arg);
}

/* Schedule `ev` for the owner from the loop (never synchronously). A separate event, so
 * that toggling the write event can never cancel a pending delivery. */
static void
defer_ev(struct sock *s, int ev)
{
	if (s->dev == NULL) {
		s->dev = event_new(event_get_base(s->rev), -1, 0, on_dev, s);
		if (s->dev == NULL) {
			s->failed = 1;       /* cannot tell the owner; the next I/O will */
			return;
		}
	}
	s->pending_ev |= (unsigned)ev;
	event_active(s->dev, EV_TIMEOUT, 0);
}

int
sock_tcp_socket(int family)
{
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
sock_init(struct sock *s, struct event_base *base, int fd, SSL *ssl, sock_cb cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_rev, s);
	s->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_wev, s);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	if (!s->rev || !s->wev || !s->in || !s->out)
		goto fail;
	s->fd = fd;
	s->ssl = ssl;
	s->cb = cb;
	s->arg = arg;
	s->rmax = 64 * 1024;
	return 0;
fail:
	sock_fini(s);                /* fd and ssl are not ours yet: s->fd is -1, s->ssl NULL */
	errno = ENOMEM;
	return -1;
}

/* Everything is freed and forgotten (NULL, -1): sock_init's failure path runs it, and the
 * owner may run it again on the failed sock (sock.h). */
void
sock_fini(struct sock *s)
{
	ev_free(&s->dev);
	ev_free(&s->rev);
	ev_free(&s->wev);
	if (s->ssl) {
		/* Best-effort close_notify; never wait for the peer's. */
		if (!s->failed && SSL_is_init_finished(s->ssl))
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
		ERR_clear_error();
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	evbuf_free(&s->in);
	evbuf_free(&s->out);
}

static void
note_ssl_error(struct sock *s)
{
	unsigned long e = ERR_peek_error();

	if (s->ssl_err == 0)
		s->ssl_err = e;
	ERR_clear_error();
}

/* Reads what is available. Returns SOCK_EV_* bits for the owner. */
static int
do_read(struct sock *s)
{
	struct evbuffer_iovec v;
	size_t total = 0;
	int ev = 0, r, e;

	while (!s->eof && !s->failed && total < SOCK_READ_BUDGET &&
	    evbuffer_get_length(s->in) < s->rmax) {
		if (evbuffer_reserve_space(s->in, SOCK_READ_CHUNK, &v, 1) < 1) {
			s->failed = 1;
			break;
		}
		if (s->ssl) {
			/* The error queue is kept empty (note_ssl_error clears it), so SSL_get_error
			 * below is reliable without clearing before every call. */
			r = SSL_read(s->ssl, v.iov_base, (int)MIN_SZ(v.iov_len, SOCK_READ_CHUNK));
			if (r > 0) {
				v.iov_len = (size_t)r;
				evbuffer_commit_space(s->in, &v, 1);
				total += (size_t)r;
				/* With read-ahead OpenSSL took what the socket had; if it holds nothing
				 * more, stop here instead of paying a read() that returns EAGAIN. The
				 * level-triggered event brings us back if more arrives. */
				if (!SSL_has_pending(s->ssl))
					break;
				continue;
			}
			e = SSL_get_error(s->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				break;
			if (e == SSL_ERROR_WANT_WRITE) {
				s->r_wants_w = 1;
				wev_set(s, 1);
				break;
			}
			if (e == SSL_ERROR_ZERO_RETURN) {
				s->eof = 1;
				break;
			}
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
			    (errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
				/* Peer vanished without close_notify: an EOF for our purposes. */
				s->eof = 1;
				s->reset = errno == ECONNRESET;
				ERR_clear_error();
				break;
			}
			note_ssl_error(s);
			s->failed = 1;
			break;
		} else {
			ssize_t n = read(s->fd, v.iov_base, v.iov_len);
			if (n > 0) {
				v.iov_len = (size_t)n;
				evbuffer_commit_space(s->in, &v, 1);
				total += (size_t)n;
				if ((size_t)n < SOCK_READ_CHUNK)
					break;   /* drained the socket; skip the EAGAIN syscall */
				continue;
			}
			if (n == 0) {
				s->eof = 1;
				break;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET) {
				s->eof = 1;
				s->reset = 1;
				break;
			}
			s->failed = 1;
			break;
		}
	}
	s->bytes_in += total;
	if (total)
		ev |= SOCK_EV_READ;
	if (s->eof)
		ev |= SOCK_EV_EOF;
	if (s->failed)
		ev |= SOCK_EV_ERROR;
	/* More TLS plaintext may sit decrypted inside OpenSSL with nothing left on the socket
	 * to wake us: come back from the loop instead of stalling. */
	if (s->ssl && !s->eof && !s->failed && total >= SOCK_READ_BUDGET && SSL_has_pending(s->ssl))
		event_active(s->rev, EV_READ, 0);
	return ev;
}

/* Writes what the socket takes. Returns 0, or -1 when the stream failed. */
static int
do_write(struct sock *s)
{
	size_t len, n;
	unsigned char *p;
	int r, e;

	while ((len = evbuffer_get_length(s->out)) > 0) {
		if (s->ssl) {
			n = len < SOCK_TLS_RECORD ? len : SOCK_TLS_RECORD;
			p = evbuffer_pullup(s->out, (ssize_t)n);
			if (p == NULL) {
				s->failed = 1;
				return -1;
			}
			r = SSL_write(s->ssl, p, (int)n);
			if (r > 0) {
				evbuffer_drain(s->out, (size_t)r);
				s->bytes_out += (size_t)r;
				continue;
			}
			e = SSL_get_error(s->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE) {
				wev_set(s, 1);
				return 0;
			}
			if (e == SSL_ERROR_WANT_READ) {
				s->w_wants_r = 1;
				rev_update(s);
				wev_set(s, 0);
				return 0;
			}
			note_ssl_error(s);
			s->failed = 1;
			return -1;
		} else {
			int w = evbuffer_write_atmost(s->out, s->fd, -1);
			if (w > 0) {
				s->bytes_out += (size_t)w;
				continue;
			}
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				wev_set(s, 1);
				return 0;
			}
			if (w < 0 && errno == EINTR)
				continue;
			s->failed = 1;
			return -1;
		}
	}
	if (!s->r_wants_w && !s->connecting)
		wev_set(s, 0);
	return 0;
}

void
sock_flush(struct sock *s)
{
	if (s->failed || s->connecting || s->w_wants_r)
		return;
	if (do_write(s) < 0) {
		defer_ev(s, SOCK_EV_ERROR);
		return;
	}
	if (s->drain_armed && evbuffer_get_length(s->out) <= s->drain_low) {
		s->drain_armed = 0;
		defer_ev(s, SOCK_EV_DRAINED);
	}
}

void
sock_notify_drained(struct sock *s, size_t low)
{
	s->drain_low = low;
	s->drain_armed = 1;
	if (evbuffer_get_length(s->out) <= low) {
		s->drain_armed = 0;
		defer_ev(s, SOCK_EV_DRAINED);
	}
}

void
sock_read_start(struct sock *s)
{
	/* Also the call an owner makes after consuming input: reading pauses by itself when
	 * the input window is full, and only resumes when re-evaluated here. */
	s->reading = 1;
	rev_update(s);
	/* Bytes already decrypted inside OpenSSL don't make the socket readable again. */
	if (s->ssl && s->rev_on && SSL_has_pending(s->ssl))
		event_active(s->rev, EV_READ, 0);
}

void
sock_read_stop(struct sock *s)
{
	if (!s->reading)
		return;
	s->reading = 0;
	rev_update(s);
}

int
sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t len)
{
	if (connect(s->fd, sa, len) < 0 && errno != EINPROGRESS)
		return -1;
	s->connecting = 1;
	wev_set(s, 1);
	return 0;
}

void
sock_shutdown_write(struct sock *s)
{
	if (s->ssl && !s->failed)
		SSL_shutdown(s->ssl);
	ERR_clear_error();
	shutdown(s->fd, SHUT_WR);
}

static void
on_rev(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	int ev = 0;

	(void)fd;
	(void)what;
	if (s->w_wants_r) {
		s->w_wants_r = 0;
		if (do_write(s) < 0)
			ev |= SOCK_EV_ERROR;
		else if (s->drain_armed && evbuffer_get_length(s->out) <= s->drain_low) {
			s->drain_armed = 0;
			ev |= SOCK_EV_DRAINED;
		}
	}
	if (s->reading && !(ev & SOCK_EV_ERROR))
		ev |= do_read(s);
	rev_update(s);
	if (ev)
		s->cb(s, ev, s->arg);
}

static void
on_wev(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	int ev, err = 0;
	socklen_t el = sizeof(err);

	(void)fd;
	(void)what;
	ev = 0;
	if (s->connecting) {
		s->connecting = 0;
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
			errno = err;
			s->failed = 1;
			wev_set(s, 0);
			ev |= SOCK_EV_ERROR;
			goto deliver;
		}
		ev |= SOCK_EV_CONNECTED;
	}
	if (s->r_wants_w) {
		s->r_wants_w = 0;
		if (s->reading)
			ev |= do_read(s);
	}
	if (!s->failed && do_write(s) < 0)
		ev |= SOCK_EV_ERROR;
	if (s->drain_armed && evbuffer_get_length(s->out) <= s->drain_low) {
		s->drain_armed = 0;
		ev |= SOCK_EV_DRAINED;
	}
	rev_update(s);
deliver:
	if (ev)
		s->cb(s, ev, s->arg);
}
