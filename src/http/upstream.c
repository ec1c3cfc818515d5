/* SPDX-License-Identifier: MIT
 * upstream — per-worker pool of connections to the Node servers.
 *
 * Choice: round robin over the servers that are up. A server that refuses a connection or
 * does not accept it within connect_timeout is taken out for a backoff (1 s doubling to
 * 30 s) and probed back by a plain TCP connect; while every server is out, the one due
 * soonest is still tried, so recovery never waits for a probe. A request whose connect fails
 * moves on to the next untried server before it gets 502/504.
 *
 * Names: a host name in upstream.servers is as many servers as net/resolve found addresses
 * for it. A new answer or generation rebuilds the list (pool_build): a server with the same
 * text and address keeps its state (idle connections, backoff); one that is gone is retired
 * — idle connections closed, busy ones finish and are never pooled again — and freed with
 * its last connection. The list's epoch moves on, so a request's tried set (indexes into the
 * list) starts again rather than mean other servers.
 *
 * Reuse: a connection returns to the pool only after a complete, well-framed response to a
 * fully sent request, with nothing extra buffered; idle ones are dropped after idle_timeout,
 * when the server closes them, or beyond `keepalive` per worker.
 */
#include "http/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "http/conn.h"
#include "core/log.h"
#include "http/req.h"
#include "net/resolve.h"
#include "net/tls.h"
#include "core/worker.h"

#define BACKOFF_MIN_MS  1000
#define BACKOFF_MAX_MS  30000

enum up_state { UP_CONNECTING = 0, UP_IDLE, UP_BUSY };

struct upconn {
	struct sock          s;
	struct http_parser   hp;
	struct up_pool      *pool;
	struct up_server    *srv;
	struct req          *req;
	struct event        *timer;
	TAILQ_ENTRY(upconn)  link;
	enum up_state        st;
	unsigned             nreq;
	int                  got_bytes;      /* any response byte for the current request */
	int                  dead;
	int                  in_cb;
	int                  paused;         /* reading stopped: client output is full */
	int                  head_done;
	int                  sent_all;       /* the whole request has been written */
	int                  tunnel;         /* spliced to a client (never pooled again) */
};

struct up_server {
	struct up_pool      *pool;
	struct units_addr    addr;
	char                *name;            /* as written in upstream.servers (TLS name) */
	char                *label;           /* for logs: the name, and the address of a host
	                                       * name's record */
	unsigned             idx;
	int                  mark;            /* pool_build: kept in the new list */
	int                  down;
	int64_t              retry_at_ms;
	int64_t              backoff_ms;
	struct event        *probe_timer;
	struct event        *probe_ev;
	int                  probe_fd;
	int                  busy;            /* upconns pointing here */
	int                  retired;         /* not in the current generation */
	TAILQ_HEAD(upconn_q, upconn) idle;
	size_t               nidle;
	TAILQ_ENTRY(up_server) rlink;
};

struct up_pool {
	struct worker       *w;
	struct up_server   **srv;
	size_t               nsrv;
	size_t               rr;
	const struct conf   *conf;            /* borrowed; the worker holds the ref */
	size_t               nidle;
	TAILQ_HEAD(, up_server) retired;
	struct resolve_set  *dns;             /* addresses of the host names; one reference */
	uint64_t             epoch;           /* moves on when the list changes */
};

static void up_on_sock(struct sock *s, int ev, void *arg);
static void up_on_timer(evutil_socket_t fd, short what, void *arg);
static int  up_p_head(struct http_parser *p);
static int  up_p_body(struct http_parser *p, const char *at, size_t n);
static int  up_p_done(struct http_parser *p);
static void up_close(struct upconn *u);
static void server_probe_schedule(struct up_server *s);

static const struct http_parser_ops up_parser_ops = {
	.on_head = up_p_head,
	.on_body = up_p_body,
	.on_done = up_p_done,
};

static void
timer_ms(struct worker *w, struct event *ev, int64_t ms)
{
	struct timeval tmp;

	evtimer_add(ev, worker_timeout(w, ms, &tmp));
}

/* ---- servers ------------------------------------------------------------------------- */

static void
server_free(struct up_server *s)
{
	struct upconn *u;

	while ((u = TAILQ_FIRST(&s->idle)) != NULL)
		up_close(u);
	ev_free(&s->probe_timer);
	ev_free(&s->probe_ev);
	if (s->probe_fd >= 0)
		close(s->probe_fd);
	free(s->name);
	free(s->label);
	free(s);
}

static void
server_maybe_free(struct up_server *s)
{
	if (s->retired && s->busy == 0 && s->nidle == 0) {
		TAILQ_REMOVE(&s->pool->retired, s, rlink);
		server_free(s);
	}
}

static void
server_up(struct up_server *s)
{
	if (s->down)
		log_info("upstream %s is back", s->label);
	s->down = 0;
	s->backoff_ms = 0;
	if (s->probe_timer)
		evtimer_del(s->probe_timer);
}

static void
server_down(struct up_server *s, const char *why)
{
	int64_t now = now_ms();

	if (!s->down)
		log_warn("upstream %s taken out: %s", s->label, why);
	s->down = 1;
	s->backoff_ms = s->backoff_ms ? MIN(s->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
	s->retry_at_ms = now + s->backoff_ms;
	if (!s->retired)
		server_probe_schedule(s);
}

static void
server_probe_done(struct up_server *s, int ok)
{
	ev_free(&s->probe_ev);
	if (s->probe_fd >= 0) {
		close(s->probe_fd);
		s->probe_fd = -1;
	}
	if (ok)
		server_up(s);
	else if (s->down)
		server_down(s, "probe failed");
}

static void
server_probe_on_ev(evutil_socket_t fd, short what, void *arg)
{
	struct up_server *s = arg;
	int err = 0;
	socklen_t el = sizeof(err);

	if (what & EV_TIMEOUT) {
		server_probe_done(s, 0);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	server_probe_done(s, err == 0);
}

static void
server_probe_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct up_server *s = arg;
	struct timeval tv;
	int64_t ct = s->pool->conf->upstream.connect_timeout_ms;

	(void)fd;
	(void)what;
	if (!s->down || s->probe_fd >= 0)
		return;
	s->probe_fd = sock_tcp_socket(s->addr.ss.ss_family);
	if (s->probe_fd < 0) {
		server_probe_schedule(s);
		return;
	}
	if (connect(s->probe_fd, (struct sockaddr *)&s->addr.ss, s->addr.len) < 0 &&
	    errno != EINPROGRESS) {
		server_probe_done(s, 0);
		return;
	}
	s->probe_ev = event_new(s->pool->w->base, s->probe_fd, EV_WRITE, server_probe_on_ev, s);
	if (s->probe_ev == NULL) {
		server_probe_done(s, 0);
		return;
	}
	tv = tv_ms(ct);
	event_add(s->probe_ev, &tv);
}

static void
server_probe_schedule(struct up_server *s)
{
	if (s->probe_timer == NULL)
		s->probe_timer = evtimer_new(s->pool->w->base, server_probe_on_timer, s);
	if (s->probe_timer)
		timer_ms(s->pool->w, s->probe_timer, s->backoff_ms ? s->backoff_ms : BACKOFF_MIN_MS);
}

struct up_pool *
up_pool_new(struct worker *w)
{
	struct up_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->w = w;
	TAILQ_INIT(&p->retired);
	return p;
}

/* Out of the list: idle connections close, busy ones finish (up_release never pools them). */
static void
server_retire(struct up_server *s)
{
	struct upconn *u;

	while ((u = TAILQ_FIRST(&s->idle)) != NULL)
		up_close(u);
	if (s->probe_timer)
		evtimer_del(s->probe_timer);
	s->retired = 1;
	TAILQ_INSERT_TAIL(&s->pool->retired, s, rlink);
	server_maybe_free(s);
}

static void
retire_all(struct up_pool *p)
{
	size_t i;

	for (i = 0; i < p->nsrv; i++)
		server_retire(p->srv[i]);
	free(p->srv);
	p->srv = NULL;
	p->nsrv = 0;
}

static struct up_server *
server_new(struct up_pool *p, const struct units_addr *a, const char *text, int named)
{
	struct up_server *s = calloc(1, sizeof(*s));
	char buf[80];
	size_t n;

	if (s == NULL)
		return NULL;
	s->pool = p;
	s->addr = *a;
	s->probe_fd = -1;
	TAILQ_INIT(&s->idle);
	s->name = strdup(text);
	n = strlen(text) + sizeof(buf) + 4;
	if ((s->label = malloc(n)) != NULL) {
		if (named)
			snprintf(s->label, n, "%s (%s)", text, units_addr_str(a, buf, sizeof(buf)));
		else
			snprintf(s->label, n, "%s", text);
	}
	if (s->name == NULL || s->label == NULL) {
		free(s->name);
		free(s->label);
		free(s);
		return NULL;
	}
	return s;
}

/* The list from the generation's servers and the names' addresses; `fresh`: keep nothing of
 * the old list. On out of memory the old list stays. */
static void
pool_build(struct up_pool *p, int fresh)
{
	const struct conf_addrs *sv = &p->conf->upstream.servers;
	struct up_server **ns, **old = p->srv, *s;
	const struct units_addr *a;
	size_t nold = p->nsrv, cap = 0, nw = 0, i, j, k, na;
	int changed;

	for (i = 0; i < sv->n; i++) {
		if (sv->v[i].ss.ss_family != AF_UNSPEC)
			cap++;
		else if (resolve_set_find(p->dns, sv->text[i], &na) != NULL)
			cap += na;
	}
	if ((ns = calloc(cap ? cap : 1, sizeof(*ns))) == NULL) {
		log_error("worker %d: out of memory for the upstream list; the old one stays",
		    p->w->id);
		return;
	}
	for (j = 0; j < nold; j++)
		old[j]->mark = 0;
	for (i = 0; i < sv->n; i++) {
		int named = sv->v[i].ss.ss_family == AF_UNSPEC;
		if (named) {
			a = resolve_set_find(p->dns, sv->text[i], &na);
		} else {
			a = &sv->v[i];
			na = 1;
		}
		for (k = 0; k < na && nw < cap; k++) {
			s = NULL;
			for (j = 0; !fresh && j < nold; j++) {
				if (!old[j]->mark && units_addr_eq(&old[j]->addr, &a[k]) &&
				    strcmp(old[j]->name, sv->text[i]) == 0) {
					s = old[j];
					break;
				}
			}
			if (s == NULL && (s = server_new(p, &a[k], sv->text[i], named)) == NULL)
				continue;
			s->mark = 1;
			s->idx = (unsigned)nw;
			ns[nw++] = s;
		}
	}
	changed = nw != nold;
	for (j = 0; j < nold; j++) {
		if (j < nw && ns[j] != old[j])
			changed = 1;
		if (!old[j]->mark)
			server_retire(old[j]);
	}
	free(old);
	p->srv = ns;
	p->nsrv = nw;
	if (changed)
		p->epoch++;
	if (p->rr >= nw)
		p->rr = 0;
}

void
up_pool_conf(struct up_pool *p, const struct conf *c)
{
	/* re-encryption: connections made under another generation's TLS context go */
	int fresh = p->conf && (p->conf->upstream.tls_enabled || c->upstream.tls_enabled);

	p->conf = c;
	pool_build(p, fresh);
}

void
up_pool_dns(struct up_pool *p, struct resolve_set *s)
{
	resolve_set_unref(p->dns);
	p->dns = s;
	if (p->conf)
		pool_build(p, 0);
}

void
up_pool_free(struct up_pool *p)
{
	struct up_server *s;

	if (p == NULL)
		return;
	retire_all(p);
	while ((s = TAILQ_FIRST(&p->retired)) != NULL) {
		TAILQ_REMOVE(&p->retired, s, rlink);
		server_free(s);
	}
	resolve_set_unref(p->dns);
	free(p);
}

int
up_pool_servers_up(const struct up_pool *p)
{
	size_t i;
	int n = 0;

	for (i = 0; i < p->nsrv; i++)
		n += !p->srv[i]->down;
	return n;
}

static int
tried_has(const struct up_tried *t, size_t i)
{
	if (i < 64)
		return (t->bits >> i) & 1;
	i -= 64;
	return i / 64 < t->nmore && ((t->more[i / 64] >> (i % 64)) & 1);
}

/* -1 when the set cannot grow (out of memory): the caller stops failing over. */
static int
tried_add(struct up_tried *t, struct arena *a, size_t i)
{
	if (i < 64) {
		t->bits |= (uint64_t)1 << i;
		return 0;
	}
	i -= 64;
	if (i / 64 >= t->nmore) {
		size_t n = i / 64 + 1;
		uint64_t *m = arena_zalloc(a, n * sizeof(*m));
		if (m == NULL)
			return -1;
		if (t->nmore)
			memcpy(m, t->more, t->nmore * sizeof(*m));
		t->more = m;
		t->nmore = n;
	}
	t->more[i / 64] |= (uint64_t)1 << (i % 64);
	return 0;
}

void
up_pool_stats(const struct up_pool *p, size_t *busy, size_t *idle)
{
	struct up_server *s;
	size_t i, b = 0;

	for (i = 0; i < p->nsrv; i++)
		b += (size_t)p->srv[i]->busy;
	TAILQ_FOREACH(s, &p->retired, rlink)
		b += (size_t)s->busy;
	*busy = b;
	*idle = p->nidle;
}

int
up_sock_fd(const struct upconn *u)
{
	return u->s.fd;
}

/* Round robin over servers that are up and not yet tried by this request; if none, the
 * untried one that is due soonest. NULL when every server has been tried. */
static struct up_server *
pick(struct up_pool *p, const struct up_tried *tried)
{
	struct up_server *best = NULL, *s;
	int64_t now = now_ms();
	size_t i, k;

	for (k = 0; k < p->nsrv; k++) {
		i = (p->rr + k) % p->nsrv;
		s = p->srv[i];
		if (tried_has(tried, i))
			continue;
		if (!s->down || s->retry_at_ms <= now) {
			p->rr = i + 1;
			return s;
		}
		if (best == NULL || s->retry_at_ms < best->retry_at_ms)
			best = s;
	}
	return best;
}

/* ---- connections ---------------------------------------------------------------------- */

static void
up_close(struct upconn *u)
{
	struct up_server *s = u->srv;
	struct up_pool *p = u->pool;

	if (u->in_cb) {
		u->dead = 1;
		return;
	}
	if (u->st == UP_IDLE) {
		TAILQ_REMOVE(&s->idle, u, link);
		s->nidle--;
		p->nidle--;
	} else {
		s->busy--;
	}
	ev_free(&u->timer);
	http_parser_fini(&u->hp);
	sock_fini(&u->s);
	free(u);
	server_maybe_free(s);
}

static int
start_connect(struct up_pool *p, struct up_server *s, struct req *r)
{
	const struct conf *c = p->conf;
	struct upconn *u;
	SSL *ssl = NULL;
	int fd;

	fd = sock_tcp_socket(s->addr.ss.ss_family);
	if (fd < 0)
		return -1;
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		close(fd);
		return -1;
	}
	if (c->upstream.tls_enabled) {
		ssl = tls_new_upstream_ssl(c->tls_rt, fd, s->name);
		if (ssl == NULL) {
			free(u);
			close(fd);
			return -1;
		}
	}
	if (sock_init(&u->s, p->w->base, fd, ssl, up_on_sock, u) < 0) {
		if (ssl)
			SSL_free(ssl);
		free(u);
		close(fd);
		return -1;
	}
	u->timer = evtimer_new(p->w->base, up_on_timer, u);
	if (u->timer == NULL) {
		sock_fini(&u->s);
		free(u);
		return -1;
	}
	u->pool = p;
	u->srv = s;
	u->st = UP_CONNECTING;
	u->req = r;
	r->up = u;
	s->busy++;
	http_parser_init(&u->hp, 0, &up_parser_ops, u, 64 * 1024);
	if (sock_connect(&u->s, (struct sockaddr *)&s->addr.ss, s->addr.len) < 0) {
		/* immediate refusal: let the event path handle it uniformly */
		u->s.failed = 1;
		r->up = NULL;
		u->req = NULL;
		up_close(u);
		return -1;
	}
	timer_ms(u->pool->w, u->timer, c->upstream.connect_timeout_ms);
	return 0;
}

void
up_tried_reset(struct req *r)
{
	memset(&r->up_tried, 0, sizeof(r->up_tried));
}

int
up_acquire(struct up_pool *p, struct req *r, int fresh)
{
	struct up_server *s;
	struct upconn *u;

	if (r->up_tried.epoch != p->epoch) {
		/* the list was renumbered since this request last tried: its indexes mean other
		 * servers now (bounded: the list changes at most once per DNS answer or reload) */
		up_tried_reset(r);
		r->up_tried.epoch = p->epoch;
	}
	while ((s = pick(p, &r->up_tried)) != NULL) {
		if (tried_add(&r->up_tried, &r->a, s->idx) < 0)
			return -1;
		/* LIFO: the most recently used connection is the least likely to be timed out. */
		if (!fresh && (u = TAILQ_LAST(&s->idle, upconn_q)) != NULL) {
			TAILQ_REMOVE(&s->idle, u, link);
			s->nidle--;
			p->nidle--;
			s->busy++;
			u->st = UP_BUSY;
			u->req = r;
			u->got_bytes = 0;
			u->sent_all = 0;
			u->head_done = 0;
			u->nreq++;
			evtimer_del(u->timer);
			http_parser_next(&u->hp);
			r->up_reused = 1;
			req_up_ready(r, u);
			return 0;
		}
		if (start_connect(p, s, r) == 0)
			return 0;
		METRIC_INC(&p->w->m, up_connect_failures);
		server_down(s, strerror(errno));
	}
	return -1;
}

/* A connect failed: next server, or the answer. */
static void
connect_failed(struct upconn *u, int status, const char *why)
{
	struct req *r = u->req;
	struct up_pool *p = u->pool;

	METRIC_INC(&p->w->m, up_connect_failures);
	server_down(u->srv, why);
	u->req = NULL;
	if (r)
		r->up = NULL;
	up_close(u);
	if (r == NULL)
		return;
	if (up_acquire(p, r, 0) == 0)
		return;
	req_up_failed(r, status, why);
}

void
up_release(struct upconn *u, int reusable)
{
	struct up_pool *p = u->pool;
	struct up_server *s = u->srv;
	const struct conf *c = p->conf;

	u->req = NULL;
	if (!reusable || u->tunnel || u->st != UP_BUSY || s->retired || u->s.failed || u->s.eof ||
	    evbuffer_get_length(u->s.in) > 0 || evbuffer_get_length(u->s.out) > 0 ||
	    !u->hp.msg_done || !u->hp.ll.flags || !llhttp_should_keep_alive(&u->hp.ll) ||
	    (int64_t)p->nidle >= c->upstream.keepalive) {
		up_close(u);
		return;
	}
	s->busy--;
	u->st = UP_IDLE;
	u->paused = 0;
	TAILQ_INSERT_TAIL(&s->idle, u, link);
	s->nidle++;
	p->nidle++;
	sock_read_start(&u->s);       /* to notice the server closing it */
	timer_ms(u->pool->w, u->timer, c->upstream.idle_timeout_ms);
}

void
up_flush(struct upconn *u)
{
	sock_flush(&u->s);
}

struct evbuffer *
up_output(struct upconn *u)
{
	return u->s.out;
}

int
up_connected(const struct upconn *u)
{
	return u->st == UP_BUSY;
}

int
up_sent_all(const struct upconn *u)
{
	return u->sent_all;
}

void
up_notify_drained(struct upconn *u, size_t low)
{
	sock_notify_drained(&u->s, low);
}

int
up_paused(const struct upconn *u)
{
	return u->paused;
}

int
up_take_head(struct upconn *u, struct arena *a, struct http_head *h)
{
	return http_head_take(&u->hp, a, h);
}

int
up_framed(const struct upconn *u)
{
	return !http_parser_needs_eof(&u->hp);
}

struct sock *
up_tunnel(struct upconn *u, sock_cb cb, void *arg)
{
	u->tunnel = 1;
	evtimer_del(u->timer);
	u->s.cb = cb;
	u->s.arg = arg;
	return &u->s;
}

void
up_request_sent(struct upconn *u)
{
	u->sent_all = 1;
	if (!u->head_done)
		timer_ms(u->pool->w, u->timer, u->pool->conf->upstream.timeout_ms);
}

void
up_pause(struct upconn *u)
{
	u->paused = 1;
	sock_read_stop(&u->s);
}

static void up_feed(struct upconn *u);
static void up_leave(struct upconn *u);

void
up_resume(struct upconn *u)
{
	if (!u->paused)
		return;
	u->paused = 0;
	sock_read_start(&u->s);
	up_feed(u);
}

/* ---- parser ------------------------------------------------------------------------- */

static int
up_p_head(struct http_parser *p)
{
	struct upconn *u = p->owner;
	int st = llhttp_get_status_code(&p->ll);

	if (u->req == NULL)
		return -1;
	if (st == 101 && !u->req->upgrade) {
		p->why = "101 from upstream to a request that did not ask to switch";
		return -1;
	}
	/* RFC 9112 §6.3: the answer to a HEAD, and any 1xx, 204 or 304, ends with its head,
	 * whatever Content-Length or Transfer-Encoding it carries (llhttp would read a body
	 * they announce; Node's own client skips it the same way). What follows is not ours. */
	if (u->req->h.method == HTTP_HEAD || http_status_no_body(st))
		p->skip_body = 1;
	if (st >= 100 && st < 200 && st != 101) {
		/* informational (100, 102, 103): not forwarded; the final answer follows (a
		 * 100 the client did not ask for must never pass for the final answer) */
		u->head_done = 0;
		return 0;
	}
	u->head_done = 1;
	evtimer_del(u->timer);
	if (req_up_head(u->req, u) < 0) {
		p->why = "out of memory";
		return -1;
	}
	return 0;
}

static int
up_p_body(struct http_parser *p, const char *at, size_t n)
{
	struct upconn *u = p->owner;

	if (u->req == NULL)
		return -1;
	return req_up_body(u->req, at, n);
}

static int
up_p_done(struct http_parser *p)
{
	struct upconn *u = p->owner;

	(void)u;
	return 0;
}

/* The connection failed under its request: 502 with the reason (`why` NULL: from the state). */
static void
up_fail(struct upconn *u, const char *why)
{
	struct req *r = u->req;

	if (why == NULL)
		why = (u->s.ssl && !SSL_is_init_finished(u->s.ssl)) ?
		    "upstream TLS handshake failed" : u->got_bytes ?
		    "upstream closed mid-response" : "upstream closed the connection";
	u->req = NULL;
	r->up = NULL;
	up_close(u);          /* in a callback: only marked */
	req_up_failed(r, 502, why);
}

/* The server closed its side and every byte it sent has been parsed. An answer delimited by
 * the close (no Content-Length, not chunked) is complete now, body or not (RFC 9112 §6.3);
 * anything else was cut short. */
static void
up_eof(struct upconn *u)
{
	if (u->head_done && http_parser_needs_eof(&u->hp) && http_parser_eof(&u->hp) == 0 &&
	    u->hp.msg_done) {
		req_up_done(u->req);
		return;
	}
	up_fail(u, NULL);
}

/* Feeds buffered response bytes while the request can take them. */
static void
up_feed(struct upconn *u)
{
	struct evbuffer_iovec v;
	struct conn *client = u->req ? u->req->c : NULL;
	struct req *r;
	long n;

	u->in_cb++;
	if (u->dead)
		goto out;
	while (!u->dead && u->st == UP_BUSY && (r = u->req) != NULL && !u->paused) {
		size_t avail = evbuffer_get_length(u->s.in);
		/* A head just parsed may complete its message with zero more bytes (HEAD, 204,
		 * 304, Content-Length: 0): llhttp only says so on its next call. */
		int finish_empty = avail == 0 && u->head_done && !u->hp.msg_done &&
		    (u->hp.skip_body || (!http_parser_needs_eof(&u->hp) &&
		    u->hp.ll.content_length == 0 && !(u->hp.ll.flags & F_CHUNKED)));
		if (avail == 0 && !finish_empty)
			break;
		if (avail) {
			evbuffer_peek(u->s.in, -1, NULL, &v, 1);
		} else {
			v.iov_base = (void *)(uintptr_t)"";
			v.iov_len = 0;
		}
		n = http_parser_feed(&u->hp, v.iov_base, v.iov_len);
		if (n < 0) {
			up_fail(u, u->hp.why ? u->hp.why : "malformed response");
			goto out;
		}
		evbuffer_drain(u->s.in, (size_t)n);
		u->got_bytes = 1;
		r->up_got_bytes = 1;
		if (u->dead || u->req != r)
			break;          /* the request let go of this connection while parsing */
		if (r->tunnel_pending) {
			/* what follows the 101 head is tunnel data, not HTTP */
			client = NULL;
			req_tunnel_go(r);
			goto out;
		}
		if (u->hp.msg_done) {
			if (!u->head_done) {
				/* end of a 1xx: go on with the final response */
				http_parser_next(&u->hp);
				continue;
			}
			req_up_done(r);    /* releases u: pooled, or marked dead and closed below */
			goto out;
		}
		/* between reads of a slow body, upstream.timeout still applies */
		if (u->head_done)
			timer_ms(u->pool->w, u->timer, u->pool->conf->upstream.timeout_ms);
	}
	/* The server closed and everything it sent before has been parsed (at once, or after a
	 * pause for the client to drain): the answer ends here, whole or cut. */
	if (!u->dead && u->st == UP_BUSY && u->req != NULL && u->s.eof &&
	    evbuffer_get_length(u->s.in) == 0) {
		client = NULL;       /* up_eof flushes the client itself */
		up_eof(u);
	}
out:
	/* One write for everything this pass produced (a conn is only freed by the reaper). */
	if (client && !client->dead)
		conn_flush(client);
	/* input consumed: let the socket read again if the window had filled */
	if (!u->dead && u->st == UP_BUSY && !u->paused && !u->tunnel)
		sock_read_start(&u->s);
	up_leave(u);
}

/* ---- events --------------------------------------------------------------------------- */

/* Ends a callback: an upconn marked dead while callbacks ran is closed now. */
static void
up_leave(struct upconn *u)
{
	if (--u->in_cb == 0 && u->dead) {
		u->dead = 0;
		up_close(u);
	}
}

static void
up_on_sock(struct sock *s, int ev, void *arg)
{
	struct upconn *u = arg;
	struct req *r;

	(void)s;
	u->in_cb++;
	if (u->dead)
		goto out;
	if (u->st == UP_IDLE) {
		/* anything on an idle connection (bytes, EOF, error) ends it */
		if (ev & (SOCK_EV_READ | SOCK_EV_EOF | SOCK_EV_ERROR))
			up_close(u);
		goto out;
	}
	if (u->st == UP_CONNECTING) {
		if (ev & SOCK_EV_ERROR) {
			u->in_cb--;
			connect_failed(u, 502, errno == ECONNREFUSED ? "connection refused" :
			    "connect failed");
			return;
		}
		if (ev & SOCK_EV_CONNECTED) {
			u->st = UP_BUSY;
			u->nreq = 1;
			evtimer_del(u->timer);
			server_up(u->srv);
			sock_read_start(&u->s);
			r = u->req;
			if (r == NULL)
				up_close(u);
			else
				req_up_ready(r, u);
		}
		goto out;
	}
	/* UP_BUSY */
	r = u->req;
	if (r == NULL) {
		up_close(u);
		goto out;
	}
	if (ev & SOCK_EV_DRAINED)
		req_up_drained(r);
	if (u->dead || u->req != r)
		goto out;
	if (ev & SOCK_EV_ERROR) {
		up_fail(u, NULL);
		goto out;
	}
	/* up_feed also acts on an EOF once every byte before it has been parsed */
	if (ev & (SOCK_EV_READ | SOCK_EV_EOF))
		up_feed(u);
out:
	up_leave(u);
}

static void
up_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *u = arg;
	struct req *r = u->req;

	(void)fd;
	(void)what;
	switch (u->st) {
	case UP_IDLE:
		up_close(u);
		break;
	case UP_CONNECTING:
		connect_failed(u, 504, "connect timeout");
		break;
	case UP_BUSY:
		u->in_cb++;
		u->req = NULL;
		if (r)
			r->up = NULL;
		up_close(u);
		if (r)
			req_up_failed(r, 504, "upstream timeout");
		up_leave(u);
		break;
	}
}
