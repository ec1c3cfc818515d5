/* SPDX-License-Identifier: MIT
 * conn — client connections. One request at a time per connection: after a head is parsed
 * the parser stays paused until the request is finished, so pipelined requests are read,
 * answered and logged strictly in order, and a client can never make visor buffer more than
 * one read window (sock rmax) of input ahead of the request it is serving.
 *
 * Timers: one per connection. Before and between requests it bounds the wait for a head
 * (header_timeout from the first byte, or from accept for the first request) and the
 * keep-alive idle time (idle_timeout); during a request it bounds inactivity of the body.
 * For a listen.proxy_protocol peer, header_timeout from accept covers the PROXY header too.
 */
#include "http/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/log.h"
#include "http/h2.h"
#include "http/req.h"
#include "net/proxyproto.h"
#include "net/tls.h"
#include "http/upstream.h"

#define LINGER_MS      2000
#define IDLE_TRIM_MS   1000   /* a keep-alive connection idle this long gives its TLS buffers back */
#define KEEP_BUFS_CONNS 128   /* above this many connections per worker, buffers go at once */
#define LINGER_BYTES   (256 * 1024)

static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_sock_cb(struct sock *s, int ev, void *arg);
static void conn_pp_read(evutil_socket_t fd, short what, void *arg);
static int  conn_p_head(struct http_parser *p);
static int  conn_p_body(struct http_parser *p, const char *at, size_t n);
static int  conn_p_done(struct http_parser *p);

static const struct http_parser_ops conn_parser_ops = {
	.on_head = conn_p_head,
	.on_body = conn_p_body,
	.on_done = conn_p_done,
};

static void
timer_set(struct conn *c, int64_t ms)
{
	struct timeval tmp;

	evtimer_add(c->timer, worker_timeout(c->w, ms, &tmp));
}

/* Called by the worker's reaper only, never with a caller above it in the stack. */
void
conn_free(struct conn *c)
{
	struct worker *w = c->w;

	TAILQ_REMOVE(&w->dead, c, link);
	if (c->req) {
		req_abort(c->req);
		c->req = NULL;
	}
	if (c->h2)
		h2_free(c->h2);
	ev_free(&c->timer);
	ev_free(&c->pp_ev);
	free(c->pp_buf);
	http_parser_fini(&c->hp);
	sock_fini(&c->s);
	conf_unref(c->conf);
	free(c);
	worker_conn_closed(w);
}

/* Marks the connection dead and hands it to the reaper: whoever called this, and everyone
 * above in the stack, may still look at the conn and its request until the loop turns.
 * Every entry point checks c->dead first. */
void
conn_close(struct conn *c)
{
	struct worker *w = c->w;
	struct req *r = c->req;

	if (c->dead)
		return;
	c->dead = 1;
	sock_read_stop(&c->s);
	evtimer_del(c->timer);
	if (c->pp_ev)
		event_del(c->pp_ev);
	if (c->h2)
		h2_closing(c->h2);
	if (r && r->up) {
		/* stop the upstream from calling into a request that is going away */
		struct upconn *u = r->up;
		r->up = NULL;
		up_release(u, 0);
	}
	TAILQ_REMOVE(&w->conns, c, link);
	TAILQ_INSERT_TAIL(&w->dead, c, link);
	w->n_conns--;
	__atomic_sub_fetch(&w->m.conns_active, 1, __ATOMIC_RELAXED);
	worker_reap_kick(w);
}

static void
addr_text(struct conn *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			/* Dual-stack listener: treat ::ffff:1.2.3.4 as the IPv4 client it is. */
			c->family = AF_INET;
			memcpy(c->ip_bin, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			c->family = AF_INET6;
			memcpy(c->ip_bin, &s6->sin6_addr, 16);
		}
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		c->family = AF_INET;
		memcpy(c->ip_bin, &s4->sin_addr, 4);
	}
	inet_ntop(c->family, c->ip_bin, c->ip, sizeof(c->ip));
}

/* Whether the socket's peer must send a PROXY header (listen.proxy_protocol). */
static int
pp_listed(const struct conf *cf, const struct conn *c)
{
	size_t i;

	for (i = 0; i < cf->listen.n_proxy_protocol; i++)
		if (units_cidr_match(&cf->listen.proxy_protocol[i], c->family, c->ip_bin))
			return 1;
	return 0;
}

void
conn_accept(struct worker *w, struct listener *l, int fd, const struct sockaddr *sa, int salen)
{
	struct conf *cf = w->conf;
	struct conn *c;
	SSL *ssl = NULL;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->w = w;
	c->kind = l->kind;
	c->conf = conf_ref(cf);
	memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
	addr_text(c, sa);
	if (l->kind == LK_HTTPS && !l->plain) {
		ssl = tls_new_ssl(cf->tls_rt, fd);
		if (ssl == NULL)
			goto fail;
	}
	c->plain_h2 = l->kind == LK_HTTPS && l->plain == 2;
	c->https_port = cf->listen.redirect_port ? (int)cf->listen.redirect_port :
	    cf->listen.https.n ?
	    ntohs(((const struct sockaddr_in *)&cf->listen.https.v[0].ss)->sin_port) : 443;
	c->timer = evtimer_new(w->base, conn_on_timer, c);
	if (c->timer == NULL)
		goto fail;
	if (pp_listed(cf, c)) {
		/* its own event on the raw socket: the sock (and TLS) start after the header */
		c->pp_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_pp_read, c);
		if (c->pp_ev == NULL)
			goto fail;
	}
	if (sock_init(&c->s, w->base, fd, ssl, conn_sock_cb, c) < 0)
		goto fail;
	ssl = NULL;
	fd = -1;
	http_parser_init(&c->hp, 1, &conn_parser_ops, c, (size_t)cf->client.max_header_size);
	c->st = c->pp_ev ? CS_PROXY : CS_IDLE;
	c->head_start_ms = now_ms();
	TAILQ_INSERT_TAIL(&w->conns, c, link);
	w->n_conns++;
	if (w->n_conns > w->n_conns_peak)
		w->n_conns_peak = w->n_conns;
	METRIC_INC(&w->m, conns_total);
	__atomic_add_fetch(&w->m.conns_active, 1, __ATOMIC_RELAXED);
	timer_set(c, cf->client.header_timeout_ms);
	if (c->st == CS_PROXY)
		event_add(c->pp_ev, NULL);
	else
		sock_read_start(&c->s);
	return;
fail:
	log_warn("cannot accept a connection: out of memory");
	if (ssl)
		SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	if (c) {
		ev_free(&c->timer);
		ev_free(&c->pp_ev);
		conf_unref(c->conf);
		free(c);
	}
}

/* ---- PROXY protocol header ---------------------------------------------------------- */

/* A listed peer that did not send a valid header: closed, counted and logged (a balancer
 * whose PROXY setting is off, or a client reaching visor around it). */
static void
pp_refuse(struct conn *c, const char *why)
{
	METRIC_INC(&c->w->m, proxy_refused);
	log_warn("PROXY protocol: closed a connection from %s (listen.proxy_protocol): %s",
	    c->ip, why);
	conn_close(c);
}

/* The header is whole: its client address replaces the peer's, once, before TLS or HTTP
 * sees a byte; everything after the header is left in the socket for them. LOCAL (a
 * balancer's own health check) and UNKNOWN / UNSPEC / UNIX keep the socket's addresses. */
static void
pp_done(struct conn *c, const struct pp_result *res)
{
	char was[INET6_ADDRSTRLEN];

	if (res->has_addr) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		if (res->family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, res->src, 4);
			s4->sin_port = htons(res->src_port);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, res->src, 16);
			s6->sin6_port = htons(res->src_port);
		}
		memcpy(was, c->ip, sizeof(was));
		c->peer = ss;
		addr_text(c, (const struct sockaddr *)&ss);
		log_debug("PROXY v%d header from %s: client %s", res->version, was, c->ip);
	}
	free(c->pp_buf);
	c->pp_buf = NULL;
	event_del(c->pp_ev);         /* freed with the connection */
	c->st = CS_IDLE;
	sock_read_start(&c->s);
}

/* Reads the header without taking a byte that follows it: peek at what has arrived, and
 * consume what the parser says is header — all of it while the header is incomplete (the
 * parser promises those bytes are all header), exactly the header's length once whole. */
static void
conn_pp_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct pp_result res;
	const char *why = "malformed";
	enum pp_status st;
	ssize_t k, take;

	(void)what;
	if (c->dead)
		return;
	if (c->pp_buf == NULL && (c->pp_buf = malloc(PP_MAX)) == NULL) {
		log_warn("cannot read a PROXY header: out of memory");
		conn_close(c);
		return;
	}
	k = recv(fd, c->pp_buf + c->pp_len, PP_MAX - c->pp_len, MSG_PEEK);
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (k <= 0) {
		/* A connect-and-close before any byte is a balancer's TCP health check. */
		if (k == 0 && c->pp_len > 0)
			pp_refuse(c, "the connection ended inside the header");
		else
			conn_close(c);
		return;
	}
	st = pp_parse(c->pp_buf, c->pp_len + (size_t)k, &res, &why);
	if (st == PP_BAD) {
		pp_refuse(c, why);
		return;
	}
	take = st == PP_OK ? (ssize_t)(res.len - c->pp_len) : k;
	if (recv(fd, c->pp_buf + c->pp_len, (size_t)take, 0) != take) {
		conn_close(c);          /* bytes the kernel just showed us are gone: a reset */
		return;
	}
	c->pp_len += (size_t)take;
	if (st == PP_OK)
		pp_done(c, &res);
}

/* ---- parser callbacks ------------------------------------------------------------- */

static int
conn_p_head(struct http_parser *p)
{
	struct conn *c = p->owner;
	struct req *r;

	r = req_new(c);
	if (r == NULL) {
		p->err = HTTP_E_BAD;
		p->why = "out of memory";
		return -1;
	}
	if (http_head_take(p, &r->a, &r->h) < 0) {
		req_free(r);
		p->err = HTTP_E_BAD;
		p->why = "out of memory";
		return -1;
	}
	c->req = r;
	c->st = CS_REQ;
	return 0;
}

static int
conn_p_body(struct http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->owner;

	if (c->req == NULL)
		return -1;
	return req_on_body(c->req, at, n);
}

static int
conn_p_done(struct http_parser *p)
{
	struct conn *c = p->owner;

	if (c->req)
		req_on_body_done(c->req);
	return 0;
}

/* ---- input ------------------------------------------------------------------------ */

/* The client closed its sending side (sock eof) or reset the connection. A reset ends it at
 * once: nothing can reach the peer. A half-close is acted on once every byte the client sent
 * before it has been parsed — here from the end of each input pass as well as from the sock
 * event, because the EOF event comes once and a pipelined request after it may start long
 * after (when the one before it finishes): what was received whole is served, what was cut
 * short (a head, a body) can never complete and is aborted. */
static void
conn_eof(struct conn *c)
{
	struct req *r = c->req;

	if (c->dead || !c->s.eof || c->feeding)
		return;
	if (c->s.reset) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->s.in) > 0 && c->st != CS_LINGER)
		return;              /* parsed first: the pass that consumes it calls us again */
	switch (c->st) {
	case CS_IDLE:
	case CS_HEAD:
	case CS_LINGER:
	case CS_TUNNEL:
	case CS_PROXY:
	case CS_H2:
		conn_close(c);
		break;
	case CS_CLOSING:
		break;               /* the answer drains first, then the close */
	case CS_REQ:
		if (r == NULL) {
			conn_close(c);
		} else if (r->body_done) {
			/* whole: served, and the connection closes after its answer */
		} else if (!r->discard) {
			conn_close(c);   /* the body was cut short: an abort (499) */
		} else {
			/* the body being dropped after an edge answer will never come */
			r->resp_close = 1;
			if (req_finished(r))
				conn_req_done(c);
		}
		break;
	}
}

/* Answers a head that could not be parsed. The connection closes after the answer. */
static void
conn_head_error(struct conn *c)
{
	int status = c->hp.err == HTTP_E_TOO_LARGE ? 431 : 400;
	struct req *r = c->req;

	if (r == NULL) {
		r = req_new(c);
		if (r == NULL) {
			conn_close(c);
			return;
		}
		c->req = r;
	}
	c->st = CS_REQ;
	req_fail_head(r, status, c->hp.why ? c->hp.why : "malformed request");
}

/* Whether the current request takes client bytes now. */
static int
body_flowing(const struct conn *c)
{
	const struct req *r = c->req;

	if (r == NULL || c->body_paused || r->body_done)
		return 0;
	if (r->discard)
		return 1;
	if (r->phase == RP_BODY_READ)
		return 1;
	return (r->phase == RP_UPSTREAM || r->phase == RP_RESPONSE || r->phase == RP_DONE) &&
	    r->up != NULL && up_connected(r->up);
}

void
conn_feed(struct conn *c)
{
	struct evbuffer_iovec v;
	long n;

	if (c->feeding || c->dead)
		return;
	c->feeding = 1;
	while (!c->dead) {
		if (c->st == CS_IDLE || c->st == CS_HEAD) {
			if (evbuffer_get_length(c->s.in) == 0)
				break;
			if (c->st == CS_IDLE) {
				c->st = CS_HEAD;
				if (c->nreq > 0) {
					c->head_start_ms = now_ms();
					timer_set(c, c->w->conf->client.header_timeout_ms);
				}
			}
			evbuffer_peek(c->s.in, -1, NULL, &v, 1);
			n = http_parser_feed(&c->hp, v.iov_base, v.iov_len);
			if (n < 0) {
				conn_head_error(c);
				if (!c->dead && c->req && req_finished(c->req))
					conn_req_done(c);
				break;
			}
			evbuffer_drain(c->s.in, (size_t)n);
			if (c->st != CS_REQ)
				continue;
			/* Head complete. A request without body completes its message now
			 * (llhttp runs on_message_complete on the next, possibly empty, call). */
			if (!c->hp.msg_done && !c->req->h.chunked && c->req->h.content_length == 0) {
				if (http_parser_feed(&c->hp, "", 0) < 0) {
					conn_head_error(c);
					if (!c->dead && c->req && req_finished(c->req))
						conn_req_done(c);
					break;
				}
			}
			c->nreq++;
			evtimer_del(c->timer);
			req_start(c->req);
			if (!c->dead && c->req && req_finished(c->req))
				conn_req_done(c);
			continue;
		}
		if (c->st == CS_REQ) {
			if (!body_flowing(c) || evbuffer_get_length(c->s.in) == 0)
				break;
			evbuffer_peek(c->s.in, -1, NULL, &v, 1);
			n = http_parser_feed(&c->hp, v.iov_base, v.iov_len);
			if (n < 0) {
				/* A bad chunk or an oversize body while streaming. */
				if (c->req) {
					req_fail_head(c->req, c->hp.err == HTTP_E_BODY_TOO_LARGE ? 413 : 400,
					    c->hp.why ? c->hp.why : "malformed body");
					if (!c->dead && c->req && req_finished(c->req))
						conn_req_done(c);
				} else {
					conn_close(c);
				}
				break;
			}
			evbuffer_drain(c->s.in, (size_t)n);
			if (c->req && c->req->body_done)
				evtimer_del(c->timer);
			else
				timer_set(c, c->w->conf->client.idle_timeout_ms);
			if (c->req && req_finished(c->req))
				conn_req_done(c);
			continue;
		}
		if (c->st == CS_LINGER || c->st == CS_CLOSING) {
			evbuffer_drain(c->s.in, evbuffer_get_length(c->s.in));
			break;
		}
		break;
	}
	c->feeding = 0;
	/* request-body bytes fed in this pass leave in one write */
	if (!c->dead && c->req && c->req->up && up_connected(c->req->up))
		up_flush(c->req->up);
	conn_eof(c);
	/* With a full input window and nobody consuming, the sock stops reading by itself
	 * (rmax); when the window has room again it must read on. */
	if (!c->dead && c->st != CS_LINGER)
		sock_read_start(&c->s);
}

void
conn_body_pause(struct conn *c)
{
	c->body_paused = 1;
	sock_read_stop(&c->s);
}

void
conn_body_resume(struct conn *c)
{
	if (!c->body_paused || c->dead)
		return;
	c->body_paused = 0;
	sock_read_start(&c->s);
	conn_feed(c);
}

/* ---- output and request completion ------------------------------------------------ */

void
conn_flush(struct conn *c)
{
	if (c->h2)
		h2_flush(c->h2);
	else
		sock_flush(&c->s);
}

static void
conn_start_linger(struct conn *c)
{
	if (c->w->draining) {
		conn_close(c);
		return;
	}
	c->st = CS_LINGER;
	sock_shutdown_write(&c->s);
	evbuffer_drain(c->s.in, evbuffer_get_length(c->s.in));
	c->s.rmax = LINGER_BYTES;
	sock_read_start(&c->s);
	timer_set(c, LINGER_MS);
}

void
conn_req_done(struct conn *c)
{
	struct req *r = c->req;
	int close_after;

	close_after = r->resp_close || !r->body_done || c->w->draining;
	c->req = NULL;
	req_free(r);
	if (close_after) {
		c->st = CS_CLOSING;
		sock_read_stop(&c->s);
		sock_notify_drained(&c->s, 0);
		timer_set(c, c->w->conf->client.idle_timeout_ms);
		return;
	}
	http_parser_next(&c->hp);
	c->st = CS_IDLE;
	c->body_paused = 0;
	c->s.rmax = 64 * 1024;
	/* TLS record buffers (~34 KiB) are kept across requests only while the worker has few
	 * connections — the busy keep-alive case, where freeing and re-allocating them per
	 * request costs ~3% CPU — and given back after IDLE_TRIM_MS idle. With many
	 * connections they go at once, so idle connections never hold them. */
	if (c->w->n_conns > KEEP_BUFS_CONNS) {
		if (c->s.ssl)
			SSL_free_buffers(c->s.ssl);
		http_parser_trim(&c->hp);
		c->idle_trimmed = 1;
		timer_set(c, c->w->conf->client.idle_timeout_ms);
	} else {
		c->idle_trimmed = 0;
		timer_set(c, MIN(IDLE_TRIM_MS, c->w->conf->client.idle_timeout_ms));
	}
	sock_read_start(&c->s);
	/* Next pipelined request (conn_feed is re-entrancy safe: inside a feed it returns). */
	conn_feed(c);
}

void
conn_drain(struct conn *c)
{
	/* Idle keep-alive connections and finished ones lingering for the client's last bytes
	 * go now; the others close after their current request (conn_req_done checks
	 * w->draining), or when shutdown_timeout cuts them. A connection accepted but not yet
	 * asked anything (handshake or PROXY header under way, first head not sent: accepted
	 * during shutdown_delay, or just before SIGTERM) keeps its first request, answered with
	 * Connection: close: closing it would fail a request the client could not know to
	 * retry. header_timeout and shutdown_timeout still bound it. HTTP/2: GOAWAY, and the
	 * streams open finish. */
	if (c->h2) {
		h2_drain(c->h2);
		return;
	}
	if ((c->st == CS_IDLE && c->nreq > 0 && evbuffer_get_length(c->s.in) == 0) ||
	    c->st == CS_LINGER || c->st == CS_TUNNEL ||
	    (c->st == CS_CLOSING && evbuffer_get_length(c->s.out) == 0))
		conn_close(c);
}

void
conn_reload(struct conn *c)
{
	if (c->h2 && !c->dead)
		h2_drain(c->h2);
}

int
conn_is_dead(const struct conn *c)
{
	return c->dead;
}

/* ---- HTTP/2 takeover --------------------------------------------------------------- */

void
conn_h2_begin(struct conn *c, sock_cb cb, void *arg)
{
	c->st = CS_H2;
	evtimer_del(c->timer);
	c->s.cb = cb;
	c->s.arg = arg;
}

/* ---- tunnel takeover -------------------------------------------------------------- */

struct sock *
conn_tunnel_begin(struct conn *c, sock_cb cb, void *arg)
{
	c->st = CS_TUNNEL;
	c->s.cb = cb;
	c->s.arg = arg;
	return &c->s;
}

void
conn_tunnel_idle(struct conn *c, int64_t ms)
{
	timer_set(c, ms);
}

void
conn_tunnel_end(struct conn *c)
{
	c->st = CS_CLOSING;
	c->s.cb = conn_sock_cb;
	c->s.arg = c;
	sock_read_stop(&c->s);
	sock_notify_drained(&c->s, 0);
}

/* ---- events ----------------------------------------------------------------------- */

static void
conn_sock_cb(struct sock *s, int ev, void *arg)
{
	struct conn *c = arg;

	(void)s;
	if (c->dead)
		return;
	if (ev & SOCK_EV_ERROR) {
		if (c->nreq == 0 && c->s.ssl && !SSL_is_init_finished(c->s.ssl)) {
			char eb[160];
			METRIC_INC(&c->w->m, tls_handshake_failures);
			ERR_error_string_n(c->s.ssl_err, eb, sizeof(eb));
			if (log_enabled(LOG_DEBUG))
				log_debug("TLS handshake failed from %s: %s", c->ip, eb);
		}
		conn_close(c);
		goto out;
	}
	if (ev & SOCK_EV_DRAINED) {
		if (c->st == CS_CLOSING) {
			if (evbuffer_get_length(c->s.out) == 0) {
				if (c->s.eof)
					conn_close(c);
				else
					conn_start_linger(c);
				goto out;
			}
		} else if (c->req) {
			req_client_drained(c->req);
		}
	}
	if (ev & SOCK_EV_READ) {
		c->got_bytes = 1;
		if (c->st == CS_IDLE && c->nreq == 0 && c->h2 == NULL &&
		    (h2_negotiated(c) || c->plain_h2)) {
			/* ALPN chose h2: its preface is what arrived */
			if (h2_begin(c) < 0) {
				log_warn("cannot start HTTP/2: out of memory");
				conn_close(c);
			}
			goto out;
		}
		if (c->st == CS_LINGER) {
			evbuffer_drain(c->s.in, evbuffer_get_length(c->s.in));
		} else {
			conn_feed(c);
		}
	}
	if (ev & SOCK_EV_EOF)
		conn_eof(c);
out:
	return;
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->dead)
		return;
	switch (c->st) {
	case CS_IDLE:
		if (c->nreq > 0 && !c->idle_trimmed &&
		    c->w->conf->client.idle_timeout_ms > IDLE_TRIM_MS) {
			/* still idle after a second: the 16 KiB record buffers go back (refused
			 * while OpenSSL holds unread bytes, then they stay) */
			c->idle_trimmed = 1;
			if (c->s.ssl && SSL_free_buffers(c->s.ssl))
				c->w->trimmed++;
			http_parser_trim(&c->hp);
			timer_set(c, c->w->conf->client.idle_timeout_ms - IDLE_TRIM_MS);
			break;
		}
		if (c->nreq == 0 && c->s.ssl && SSL_is_init_finished(c->s.ssl) && !h2_negotiated(c)) {
			/* A TLS client that sent nothing in header_timeout gets the 408 too (not one
			 * that chose h2: an HTTP/1.1 answer would be garbage to it; it is closed). */
			c->st = CS_HEAD;
			c->hp.err = HTTP_E_BAD;
			c->req = req_new(c);
			if (c->req) {
				c->st = CS_REQ;
				req_fail_head(c->req, 408, "header timeout");
				goto finish;
			}
		}
		conn_close(c);
		break;
	case CS_HEAD:
		c->req = c->req ? c->req : req_new(c);
		if (c->req == NULL) {
			conn_close(c);
			break;
		}
		c->st = CS_REQ;
		req_fail_head(c->req, 408, "header timeout");
		goto finish;
	case CS_REQ:
		/* The client stopped sending its body. */
		if (c->req && !c->req->body_done) {
			if (!c->req->head_sent) {
				req_fail_head(c->req, 408, "body timeout");
				goto finish;
			}
			conn_close(c);
		}
		break;
	case CS_CLOSING:
	case CS_LINGER:
	case CS_TUNNEL:            /* idle tunnel */
	case CS_H2:                /* not armed: h2.c has its own timer */
		conn_close(c);
		break;
	case CS_PROXY:
		pp_refuse(c, c->pp_len ? "the header did not complete within client.header_timeout" :
		    "no PROXY header within client.header_timeout");
		break;
	}
	return;
finish:
	if (!c->dead && c->req && req_finished(c->req))
		conn_req_done(c);
}
