/* SPDX-License-Identifier: MIT
 * tunnel — byte splicing for upgraded connections (WebSocket). Both socks get new owner
 * callbacks; each direction moves whole evbuffer chains (no copy) from one side's input to
 * the other's output, pausing the reader while the writer holds more than the high mark.
 * Either side's EOF or error, or the idle timer, closes the client connection, which
 * releases the upstream connection with it.
 */
#include "http/tunnel.h"

#include <string.h>

#include "http/conn.h"
#include "http/http.h"
#include "core/log.h"
#include "http/req.h"
#include "http/upstream.h"

#define TUNNEL_HWM (256 * 1024)
#define TUNNEL_LWM (64 * 1024)

int
tunnel_wanted(const struct req *r)
{
	struct hdr *up, *cn;

	if (r->h.method != HTTP_GET || r->h.minor != 1 || r->has_body)
		return 0;
	/* WebSocket only: any other switch (h2c above all) would let the client talk to the
	 * upstream past every per-request rule visor enforces — the "h2c smuggling" attack. */
	if (hdrs_count(&r->h.hdrs, "upgrade") != 1)
		return 0;
	up = hdrs_get(&r->h.hdrs, "upgrade");
	cn = hdrs_get(&r->h.hdrs, "connection");
	return ascii_casecmp_n(up->val, up->vlen, "websocket", 9) == 0 && cn &&
	    http_list_has(cn->val, cn->vlen, "upgrade");
}

static void
tunnel_idle(struct req *r)
{
	struct timeval tv;
	int64_t ms = r->conf->client.idle_timeout_ms;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(r->c->timer, &tv);
}

/* Moves what `from` has read into `to`'s output; pauses `from` when `to` is full. */
static void
pump(struct sock *from, struct sock *to)
{
	if (evbuffer_get_length(from->in) > 0) {
		evbuffer_add_buffer(to->out, from->in);
		sock_flush(to);
	}
	if (evbuffer_get_length(to->out) > TUNNEL_HWM) {
		sock_read_stop(from);
		sock_notify_drained(to, TUNNEL_LWM);
	} else {
		sock_read_start(from);
	}
}

static void
on_client(struct sock *s, int ev, void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;
	struct upconn *u = r->up;

	(void)s;
	if (c->dead)
		return;
	if (u == NULL || (ev & SOCK_EV_ERROR)) {
		conn_close(c);
		return;
	}
	if (ev & (SOCK_EV_READ | SOCK_EV_DRAINED)) {
		tunnel_idle(r);
		pump(&c->s, &u->s);
		if (ev & SOCK_EV_DRAINED)
			pump(&u->s, &c->s);       /* the client drained: the upstream may read again */
	}
	if (ev & SOCK_EV_EOF) {
		/* flush what the client sent last, then close both */
		pump(&c->s, &u->s);
		conn_close(c);
	}
}

static void
on_upstream(struct sock *s, int ev, void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;
	struct upconn *u = r->up;

	(void)s;
	if (c->dead || u == NULL)
		return;
	if (ev & SOCK_EV_ERROR) {
		conn_close(c);
		return;
	}
	if (ev & (SOCK_EV_READ | SOCK_EV_DRAINED)) {
		tunnel_idle(r);
		pump(&u->s, &c->s);
		if (ev & SOCK_EV_DRAINED)
			pump(&c->s, &u->s);
	}
	if (ev & SOCK_EV_EOF) {
		pump(&u->s, &c->s);
		/* let the last bytes leave, then close (conn's closing path) */
		c->st = CS_CLOSING;
		sock_read_stop(&c->s);
		sock_notify_drained(&c->s, 0);
		c->s.cb = conn_sock_cb;
		c->s.arg = c;
		r->resp_close = 1;
	}
}

void
tunnel_start(struct req *r)
{
	struct conn *c = r->c;
	struct upconn *u = r->up;

	if (u == NULL) {
		conn_close(c);
		return;
	}
	r->tunnel = 1;
	c->st = CS_TUNNEL;
	u->tunnel = 1;
	evtimer_del(u->timer);
	c->s.cb = on_client;
	c->s.arg = r;
	u->s.cb = on_upstream;
	u->s.arg = r;
	c->s.rmax = TUNNEL_LWM;
	u->s.rmax = TUNNEL_LWM;
	/* bytes that came behind the heads are already tunnel data */
	pump(&u->s, &c->s);
	pump(&c->s, &u->s);
	tunnel_idle(r);
}
