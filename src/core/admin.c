/* SPDX-License-Identifier: MIT
 * admin — a deliberately small HTTP/1.x server for operators. Uses libevent bufferevents:
 * it is not on the request path, so simplicity wins over the hand-driven sockets of conn.c.
 */
#include "core/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "core/log.h"
#include "core/metrics.h"
#include "net/resolve.h"
#include "store/store.h"
#include "core/util.h"
#include "core/worker.h"

#define ADMIN_MAX_HEAD 4096

struct admin {
	struct event_base     *base;
	struct evconnlistener *l;
	const struct conf     *conf;
	struct worker *const  *ws;
	int                    nw;
	int                    draining;
	struct resolve        *res;     /* borrowed; NULL in tests without one */
};

struct admin_conn {
	struct admin       *a;
	struct bufferevent *bev;
	/* /readyz probes */
	struct bufferevent **probes;
	size_t              nprobes, failed;
	int                 answered;
	int                 head;           /* HEAD request: no body */
};

static void
ac_free(struct admin_conn *ac)
{
	size_t i;

	for (i = 0; i < ac->nprobes; i++)
		if (ac->probes[i])
			bufferevent_free(ac->probes[i]);
	free(ac->probes);
	if (ac->bev)
		bufferevent_free(ac->bev);
	free(ac);
}

static void
on_written(struct bufferevent *bev, void *arg)
{
	struct admin_conn *ac = arg;

	(void)bev;
	if (evbuffer_get_length(bufferevent_get_output(ac->bev)) == 0)
		ac_free(ac);
}

static void
reply(struct admin_conn *ac, int status, const char *ctype, const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(ac->bev);

	ac->answered = 1;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, status == 200 ? "OK" :
	    status == 503 ? "Service Unavailable" : status == 404 ? "Not Found" :
	    status == 405 ? "Method Not Allowed" : "Bad Request", ctype, len);
	if (!ac->head)
		evbuffer_add(out, body, len);
	bufferevent_setcb(ac->bev, NULL, on_written, NULL, ac);
	bufferevent_disable(ac->bev, EV_READ);
	bufferevent_enable(ac->bev, EV_WRITE);
}

static void
reply_json(struct admin_conn *ac, int status, const char *body)
{
	reply(ac, status, "application/json", body, strlen(body));
}

static void
probe_cb(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *ac = arg;
	size_t i;

	for (i = 0; i < ac->nprobes; i++) {
		if (ac->probes[i] == bev) {
			bufferevent_free(bev);
			ac->probes[i] = NULL;
			break;
		}
	}
	if (ac->answered)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		reply_json(ac, 200, "{\"status\":\"ready\"}");
		return;
	}
	if (++ac->failed == ac->nprobes)
		reply_json(ac, 503, "{\"status\":\"not ready\"}");
}

static void
readyz(struct admin_conn *ac)
{
	const struct conf *c = ac->a->conf;
	const struct conf_addrs *sv = &c->upstream.servers;
	struct resolve_set *dns = NULL;
	const struct units_addr *a;
	struct timeval tv;
	size_t i, k, na, n = 0;
	char why[400], body[512];

	if (ac->a->draining) {
		reply_json(ac, 503, "{\"status\":\"draining\"}");
		return;
	}
	/* A name nothing answered for yet: say which (names are [A-Za-z0-9._-]:port, no
	 * escaping needed). */
	if (ac->a->res && resolve_missing(ac->a->res, c, why, sizeof(why))) {
		snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":\"%s\"}", why);
		reply_json(ac, 503, body);
		return;
	}
	if (ac->a->res)
		dns = resolve_current(ac->a->res);
	/* every server: the literal addresses, and each address of each name */
	for (i = 0; i < sv->n; i++) {
		if (sv->v[i].ss.ss_family != AF_UNSPEC)
			n++;
		else if (resolve_set_find(dns, sv->text[i], &na) != NULL)
			n += na;
	}
	tv = tv_ms(c->upstream.connect_timeout_ms);
	ac->probes = calloc(n ? n : 1, sizeof(*ac->probes));
	if (ac->probes == NULL || n == 0) {
		resolve_set_unref(dns);
		reply_json(ac, 503, "{\"status\":\"not ready\"}");
		return;
	}
	/* With on_error: closed a Redis outage means 503s, so not ready either. */
	if (!store_ready(ac->a->ws, ac->a->nw, c)) {
		resolve_set_unref(dns);
		reply_json(ac, 503, "{\"status\":\"not ready\"}");
		return;
	}
	ac->nprobes = n;
	n = 0;
	for (i = 0; i < sv->n; i++) {
		if (sv->v[i].ss.ss_family != AF_UNSPEC) {
			a = &sv->v[i];
			na = 1;
		} else if ((a = resolve_set_find(dns, sv->text[i], &na)) == NULL) {
			continue;
		}
		for (k = 0; k < na && n < ac->nprobes; k++, n++) {
			struct bufferevent *b = bufferevent_socket_new(ac->a->base, -1,
			    BEV_OPT_CLOSE_ON_FREE);
			if (b == NULL) {
				ac->failed++;
				continue;
			}
			ac->probes[n] = b;
			bufferevent_setcb(b, NULL, NULL, probe_cb, ac);
			bufferevent_set_timeouts(b, &tv, &tv);
			if (bufferevent_socket_connect(b, (struct sockaddr *)(uintptr_t)&a[k].ss,
			    (int)a[k].len) < 0) {
				bufferevent_free(b);
				ac->probes[n] = NULL;
				ac->failed++;
			}
		}
	}
	resolve_set_unref(dns);
	if (ac->failed == ac->nprobes && !ac->answered)
		reply_json(ac, 503, "{\"status\":\"not ready\"}");
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct admin_conn *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char line[512], *sp1, *sp2, *q;
	size_t n;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > ADMIN_MAX_HEAD)
			reply_json(ac, 400, "{\"error\":\"Bad request\"}");
		return;
	}
	n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	q = strstr(line, "\r\n");
	if (q)
		*q = '\0';
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		reply_json(ac, 400, "{\"error\":\"Bad request\"}");
		return;
	}
	*sp1 = *sp2 = '\0';
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0';
	ac->head = strcmp(line, "HEAD") == 0;
	if (strcmp(line, "GET") != 0 && !ac->head) {
		reply_json(ac, 405, "{\"error\":\"Method not allowed\"}");
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (strcmp(sp1 + 1, "/healthz") == 0) {
		reply_json(ac, 200, "{\"status\":\"ok\"}");
	} else if (strcmp(sp1 + 1, "/readyz") == 0) {
		readyz(ac);
	} else if (strcmp(sp1 + 1, "/metrics") == 0) {
		struct sbuf b = { 0 };
		metrics_render(&b, ac->a->ws, ac->a->nw);
		if (ac->a->res)
			resolve_metrics(ac->a->res, &b);
		reply(ac, 200, "text/plain; version=0.0.4; charset=utf-8", sbuf_cstr(&b), b.len);
		sbuf_fini(&b);
	} else {
		reply_json(ac, 404, "{\"error\":\"Not found\"}");
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	ac_free(arg);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct admin *a = arg;
	struct admin_conn *ac;
	struct timeval tv = { 5, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	ac = calloc(1, sizeof(*ac));
	if (ac == NULL) {
		close(fd);
		return;
	}
	ac->a = a;
	ac->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (ac->bev == NULL) {
		close(fd);
		free(ac);
		return;
	}
	bufferevent_setcb(ac->bev, on_read, NULL, on_event, ac);
	bufferevent_set_timeouts(ac->bev, &tv, &tv);
	bufferevent_setwatermark(ac->bev, EV_READ, 0, ADMIN_MAX_HEAD + 1);
	bufferevent_enable(ac->bev, EV_READ);
}

struct admin *
admin_new(struct event_base *base, const struct conf *c, struct worker *const *ws, int nw)
{
	struct admin *a;
	char buf[80];

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->base = base;
	a->conf = c;
	a->ws = ws;
	a->nw = nw;
	a->l = evconnlistener_new_bind(base, on_accept, a,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64,
	    (const struct sockaddr *)&c->listen.admin.ss, (int)c->listen.admin.len);
	if (a->l == NULL) {
		log_errno(LOG_ERROR, "cannot listen on admin %s",
		    units_addr_str(&c->listen.admin, buf, sizeof(buf)));
		free(a);
		return NULL;
	}
	return a;
}

void
admin_set_conf(struct admin *a, const struct conf *c)
{
	a->conf = c;
}

void
admin_set_resolve(struct admin *a, struct resolve *r)
{
	a->res = r;
}

void
admin_set_draining(struct admin *a)
{
	a->draining = 1;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	evconnlistener_free(a->l);
	free(a);
}
