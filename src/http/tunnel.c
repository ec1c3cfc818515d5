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

/* Both ends of one tunnel, in the request's arena (it lives as long as the connection). */
struct tunnel {
	struct req  *r;
	struct conn *c;
	struct sock *cs;       /* the client's, lent by conn_tunnel_begin */
	struct sock *us;       /* the upstream's, lent by up_tunnel */
};

static void
tunnel_idle(struct tunnel *t)
{
	conn_tunnel_idle(t->c, t->r->conf->client.idle_timeout_ms);
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

/* Moves what `from` read (or, when `from` drained, what `to` may now read again) on a
 * read or drained event of `from`, and counts the tunnel as busy. */
static void
tunnel_move(struct tunnel *t, int ev, struct sock *from, struct sock *to)
{
	if (!(ev & (SOCK_EV_READ | SOCK_EV_DRAINED)))
		return;
	tunnel_idle(t);
	pump(from, to);
	if (ev & SOCK_EV_DRAINED)
		pump(to, from);
}

static void
on_client(struct sock *s, int ev, void *arg)
{
	struct tunnel *t = arg;

	(void)s;
	if (conn_is_dead(t->c))
		return;
	if (t->r->up == NULL || (ev & SOCK_EV_ERROR)) {
		conn_close(t->c);
		return;
	}
	tunnel_move(t, ev, t->cs, t->us);
	if (ev & SOCK_EV_EOF) {
		/* flush what the client sent last, then close both */
		pump(t->cs, t->us);
		conn_close(t->c);
	}
}

static void
on_upstream(struct sock *s, int ev, void *arg)
{
	struct tunnel *t = arg;

	(void)s;
	if (conn_is_dead(t->c) || t->r->up == NULL)
		return;
	if (ev & SOCK_EV_ERROR) {
		conn_close(t->c);
		return;
	}
	tunnel_move(t, ev, t->us, t->cs);
	if (ev & SOCK_EV_EOF) {
		pump(t->us, t->cs);
		/* the last bytes leave, then the connection closes (its own closing path) */
		t->r->resp_close = 1;
		conn_tunnel_end(t->c);
	}
}

void
tunnel_start(struct req *r)
{
	struct tunnel *t;

	if (r->up == NULL || (t = arena_zalloc(&r->a, sizeof(*t))) == NULL) {
		conn_close(r->c);
		return;
	}
	t->r = r;
	t->c = r->c;
	r->tunnel = 1;
	t->us = up_tunnel(r->up, on_upstream, t);
	t->cs = conn_tunnel_begin(r->c, on_client, t);
	t->cs->rmax = TUNNEL_LWM;
	t->us->rmax = TUNNEL_LWM;
	/* bytes that came behind the heads are already tunnel data */
	pump(t->us, t->cs);
	pump(t->cs, t->us);
	tunnel_idle(t);
	/* A sock reports its EOF once, to whoever owned it then: an upstream FIN read together
	 * with the 101, or a client that half-closed while its handshake was being answered,
	 * came before these callbacks. Act on it now, or the tunnel waits for the idle timer. */
	if (t->us->eof)
		on_upstream(t->us, SOCK_EV_EOF, t);
	else if (t->cs->eof)
		on_client(t->cs, SOCK_EV_EOF, t);
}
