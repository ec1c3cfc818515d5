/* SPDX-License-Identifier: MIT
 * req — one request from its parsed head to its access-log line.
 *
 *   head ─▶ checks ─▶ route ─▶ on_request… ─▶ [body buffered ─▶ on_request_body…]
 *        ─▶ upstream (pooled) ─▶ head + body streamed ─▶ response head
 *        ─▶ on_response… (reverse) ─▶ head + body streamed to the client ─▶ log, on_done
 *
 * Any step may end in an edge answer (req_respond), which still runs on_response of the
 * filters entered so far. A filter that returns V_SUSPEND leaves the request parked until
 * req_resume(); if the client leaves first, on_abort detaches it.
 *
 * Never frees a request from inside a filter hook: answers are recorded by req_respond and
 * sent by the driver after the hook returned.
 */
#include "http/req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/conn.h"
#include "core/log.h"
#include "http/route.h"
#include "http/tunnel.h"
#include "http/upstream.h"
#include "core/worker.h"

#define STREAM_HWM   (256 * 1024)    /* pause the source above this much pending output */
#define STREAM_LWM   (64 * 1024)     /* ... and resume below this */
#define DISCARD_MAX  (64 * 1024)     /* drain a refused request's body up to this, else close */
#define REQ_ALLOC    4096            /* a request and the first block of its arena */
#define REQ_HDR      ((sizeof(struct req) + 15) & ~(size_t)15)

static void chain_run(struct req *r);
static void body_filters_run(struct req *r);
static void resp_filters_run(struct req *r);
static void resp_send_head(struct req *r);
static void req_complete(struct req *r);
static void go_upstream(struct req *r, int fresh);

/* ---- messages ------------------------------------------------------------------- */

const char *
req_status_message(int st)
{
	switch (st) {
	case 301: return "Moved permanently";
	case 400: return "Bad request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not found";
	case 405: return "Method not allowed";
	case 408: return "Request timeout";
	case 413: return "Payload too large";
	case 415: return "Unsupported media type";
	case 417: return "Expectation failed";
	case 429: return "Too many requests";
	case 431: return "Request header fields too large";
	case 500: return "Internal server error";
	case 501: return "Not implemented";
	case 502: return "Bad gateway";
	case 503: return "Service unavailable";
	case 504: return "Gateway timeout";
	default:
		if (st >= 500)
			return "Internal server error";
		if (st >= 400)
			return "Bad request";
		return "OK";
	}
}

/* ---- life ----------------------------------------------------------------------- */

struct req *
req_new(struct conn *c)
{
	struct worker *w = c->w;
	struct req *r;

	/* One allocation: the request, then the first block of its arena (most requests never
	 * need a second). Only the struct is zeroed; the arena needs no zeroing. */
	r = malloc(REQ_ALLOC);
	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	arena_init_buf(&r->a, (char *)r + REQ_HDR, REQ_ALLOC - REQ_HDR, 4096);
	r->fstate = arena_zalloc(&r->a, CONF_MAX_FILTERS * sizeof(void *));
	if (r->fstate == NULL || worker_request_id(w, r->id) < 0) {
		arena_free(&r->a);
		free(r);
		return NULL;
	}
	r->c = c;
	r->w = w;
	r->conf = conf_ref(w->conf);
	r->tls = c->kind == LK_HTTPS;
	r->t_start_us = now_us();
	r->ip = c->ip;
	r->ip_family = c->family;
	memcpy(r->ip_bin, c->ip_bin, 16);
	r->method = "-";
	r->path = "-";
	r->body_max = (uint64_t)r->conf->client.max_body_size;
	r->chain = &r->conf->route_rt->base;
	return r;
}

void
req_free(struct req *r)
{
	if (r == NULL)
		return;
	if (r->up) {
		up_release(r->up, 0);
		r->up = NULL;
	}
	evbuf_free(&r->body);
	evbuf_free(&r->rbody);
	evbuf_free(&r->resp_peek);
	http_head_fini(&r->h);
	http_head_fini(&r->rh);
	conf_unref(r->conf);
	arena_free(&r->a);
	free(r);
}

static void access_log(struct req *r);

void
req_abort(struct req *r)
{
	const struct filter *f;
	size_t id;

	if (r->suspended && r->fidx > 0) {
		id = r->chain->ids[r->fidx - 1];
		f = filter_table[id];
		if (f->on_abort)
			f->on_abort(r, r->fstate[id]);
		r->suspended = 0;
	}
	if (!r->resp_done) {
		/* Never answered in full: logged and counted all the same, with nginx's "client
		 * closed request" when no answer had started (a partial answer keeps its status). */
		if (r->status == 0)
			r->status = 499;
		metrics_count_request(&r->w->m, r->status);
		access_log(r);
	}
	req_free(r);
}

int
req_finished(const struct req *r)
{
	/* a tunnel lives as long as its connection */
	return r->resp_done && !r->suspended && !r->tunnel && !r->tunnel_pending &&
	    (r->body_done || r->resp_close);
}

/* The conn decides what comes next; never from inside the parser (conn_feed checks). */
static void
req_maybe_finish(struct req *r)
{
	struct conn *c = r->c;

	if (r->tx) {
		if (req_finished(r))
			r->tx->feed(r);         /* the transport frees it from its own event */
		return;
	}
	if (!req_finished(r) || c->feeding)
		return;
	if (c->req == r)
		conn_req_done(c);
}

/* ---- the client side: HTTP/1.1 on the connection, or the request's transport ---------- */

static void
cli_flush(struct req *r)
{
	if (r->tx)
		r->tx->flush(r);
	else
		conn_flush(r->c);
}

/* An answer already started cannot be finished: cut it. */
static void
cli_cut(struct req *r)
{
	if (r->tx)
		r->tx->reset(r);
	else
		conn_close(r->c);
}

static void
cli_continue(struct req *r)
{
	if (r->tx) {
		r->tx->cont(r);
	} else {
		evbuffer_add(r->c->s.out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_flush(r->c);
	}
	r->sent_continue = 1;
}

/* Feeds what the client sent of the body (the request can take it now). */
static void
cli_feed(struct req *r)
{
	if (r->tx)
		r->tx->feed(r);
	else
		conn_feed(r->c);
}

/* ---- helpers for filters ------------------------------------------------------------ */

struct worker *
req_worker(const struct req *r)
{
	return r->w;
}

int
req_https_port(const struct req *r)
{
	return r->c->https_port;
}

const char *
req_header(const struct req *r, const char *name, size_t *len)
{
	struct hdr *h = hdrs_get(&r->h.hdrs, name);

	if (h == NULL)
		return NULL;
	if (len)
		*len = h->vlen;
	return h->val;
}

void
req_want_body(struct req *r, uint64_t max)
{
	r->want_body = 1;
	if (r->want_body_max == 0 || max < r->want_body_max)
		r->want_body_max = max;
}

void
req_want_resp_body(struct req *r, size_t max)
{
	r->want_resp_body = 1;
	r->want_resp_max = max;
}

static void
out_reset(struct req *r)
{
	memset(&r->out, 0, sizeof(r->out));
	evbuf_free(&r->rbody);
}

void
req_respond_body(struct req *r, int status, const char *ctype, const char *body, size_t len)
{
	out_reset(r);
	if ((r->rbody = evbuffer_new()) == NULL) {
		r->resp_close = 1;
		return;
	}
	r->status = status;
	r->edge = 1;
	hdrs_adds(&r->a, &r->out, "Content-Type", ctype);
	evbuffer_add(r->rbody, body, len);
}

void
req_respond(struct req *r, int status, const char *msg)
{
	struct sbuf b = { 0 };

	if (msg == NULL)
		msg = req_status_message(status);
	sbuf_adds(&b, "{\"error\":\"");
	sbuf_add_json(&b, msg, strlen(msg));
	sbuf_adds(&b, "\",\"requestId\":\"");
	sbuf_adds(&b, r->id);
	sbuf_adds(&b, "\"}");
	if (b.oom) {
		sbuf_fini(&b);
		r->status = status;
		r->edge = 1;
		r->resp_close = 1;
		return;
	}
	req_respond_body(r, status, "application/json", b.p, b.len);
	sbuf_fini(&b);
}

void
req_replace_body(struct req *r, const char *ctype, const char *body, size_t len)
{
	if (r->rbody == NULL && (r->rbody = evbuffer_new()) == NULL) {
		r->resp_close = 1;
		return;
	}
	evbuffer_drain(r->rbody, evbuffer_get_length(r->rbody));
	evbuffer_add(r->rbody, body, len);
	hdrs_sets(&r->a, &r->out, "Content-Type", ctype);
	hdrs_del(&r->out, "content-encoding");
	hdrs_del(&r->out, "content-range");
	hdrs_del(&r->out, "etag");
	hdrs_del(&r->out, "last-modified");
	r->resp_dropping = 1;
}

void
req_security_event(struct req *r, const char *event, const char *extra)
{
	struct sbuf b = { 0 };

	log_line_begin(&b, "security");
	sbuf_json_kv(&b, "event", event, strlen(event));
	sbuf_json_kv(&b, "request_id", r->id, strlen(r->id));
	sbuf_json_kv(&b, "client_ip", r->ip, strlen(r->ip));
	sbuf_json_kv(&b, "method", r->method, strlen(r->method));
	log_kv(&b, "path", r->path, strlen(r->path));
	if (extra)
		sbuf_adds(&b, extra);
	log_line_end(&b);
	if (!b.oom) {
		struct sbuf *o = log_q_out(r->w->logq);
		size_t mark = o->len;
		sbuf_add(o, b.p, b.len);
		log_q_line_done(r->w->logq, mark);
		worker_log_kick(r->w);
	}
	sbuf_fini(&b);
}

/* ---- client IP and forwarding identity ------------------------------------------------ */

static int
ip_trusted(const struct conf *cf, int family, const uint8_t *bin)
{
	size_t i;

	for (i = 0; i < cf->client.n_trusted_proxies; i++)
		if (units_cidr_match(&cf->client.trusted_proxies[i], family, bin))
			return 1;
	return 0;
}

static int
parse_ip(const char *s, size_t n, int *family, uint8_t *bin)
{
	char tmp[INET6_ADDRSTRLEN + 8];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, bin) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)bin)) {
			memmove(bin, bin + 12, 4);
			*family = AF_INET;
		} else {
			*family = AF_INET6;
		}
		return 0;
	}
	return -1;
}

/* docs/security.md, "Identity the app can trust": the socket peer, unless it is a trusted proxy; then the right-most
 * X-Forwarded-For address that is not itself trusted. Returns whether the peer is trusted. */
static int
client_ip(struct req *r)
{
	const struct conf *cf = r->conf;
	struct hdr *h;
	uint32_t i;
	int fam;
	uint8_t bin[16];

	if (!ip_trusted(cf, r->c->family, r->c->ip_bin))
		return 0;
	/* Walk every XFF header, last header last, right to left. */
	for (i = r->h.hdrs.n; i-- > 0;) {
		const char *v, *e, *s;
		h = &r->h.hdrs.v[i];
		if (ascii_casecmp_n(h->name, h->nlen, "x-forwarded-for", 15) != 0)
			continue;
		v = h->val;
		e = v + h->vlen;
		while (e > v) {
			const char *end = e;
			s = end;
			while (s > v && s[-1] != ',')
				s--;
			e = s > v ? s - 1 : v;
			while (s < end && (*s == ' ' || *s == '\t'))
				s++;
			while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (end == s)
				continue;
			if (parse_ip(s, (size_t)(end - s), &fam, bin) < 0)
				return 1;      /* garbage in the chain: stop at the proxy */
			if (!ip_trusted(cf, fam, bin)) {
				char *t = arena_alloc(&r->a, INET6_ADDRSTRLEN);
				if (t && inet_ntop(fam, bin, t, INET6_ADDRSTRLEN)) {
					r->ip = t;
					r->ip_family = fam;
					memcpy(r->ip_bin, bin, 16);
				}
				return 1;
			}
		}
	}
	return 1;
}

static int
request_id_ok(const char *v, size_t n)
{
	size_t i;

	if (n == 0 || n > REQ_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* ---- the head ---------------------------------------------------------------------- */

static void
send_edge(struct req *r)
{
	/* The `always` filters (HSTS, security headers) lead the table: they apply to every
	 * answer, also one made by a filter before them in the chain (the plain listener's 301). */
	while (r->entered < r->chain->n && filter_table[r->chain->ids[r->entered]]->always)
		r->entered++;
	r->fidx = r->entered;
	r->phase = RP_DONE;
	resp_filters_run(r);
}

/* An edge answer the core makes outside any filter hook. */
static void
core_answer(struct req *r, int status, const char *why)
{
	r->log_reason = why;
	req_respond(r, status, NULL);
	send_edge(r);
}

/* The upstream is gone while a filter was looking at the start of its answer's body (scrub):
 * that answer will never be whole, so the wait ends here and visor's own answer goes out. */
static void
peek_abandon(struct req *r)
{
	if (r->suspended && r->resp_peek) {
		r->suspended = 0;
		evbuffer_free(r->resp_peek);
		r->resp_peek = NULL;
	}
}

void
req_fail_head(struct req *r, int status, const char *why)
{
	if (log_enabled(LOG_DEBUG))
		log_debug("request refused from %s: %d %s", r->c->ip, status, why);
	r->resp_close = 1;          /* the stream position is unknown now: close after */
	r->chain = r->tls || r->c->kind == LK_HTTPS ? &r->conf->route_rt->base :
	    &r->conf->route_rt->plain;
	r->fidx = r->entered = r->chain->n;
	r->body_done = 1;
	if (r->up) {
		up_release(r->up, 0);
		r->up = NULL;
	}
	/* a body that failed (a bad chunk, over max_body_size) after the upstream's answer began:
	 * the peek at that answer can never end now */
	peek_abandon(r);
	if (r->head_sent) {
		/* Too late for an answer: cut the connection. */
		r->resp_done = 1;
		cli_cut(r);
		return;
	}
	core_answer(r, status, why);
}

void
req_start(struct req *r)
{
	const struct conf *cf = r->conf;
	const char *why, *q;
	struct hdr *h;
	size_t plen;
	char *np;
	long nl;
	int trusted;

	r->method = llhttp_method_name((llhttp_method_t)r->h.method);
	why = http_request_check(&r->h, &r->a);
	if (why) {
		req_fail_head(r, 400, why);
		return;
	}
	if (r->h.method == HTTP_TRACE) {
		/* cross-site tracing: an API has no use for TRACE, and it echoes credentials */
		r->resp_close = !r->h.keep_alive;
		r->chain = r->tls ? &r->conf->route_rt->base : &r->conf->route_rt->plain;
		r->fidx = r->entered = r->chain->n;
		r->has_body = r->h.chunked || r->h.content_length > 0;
		r->log_reason = "TRACE is not allowed";
		req_respond(r, 405, NULL);
		hdrs_sets(&r->a, &r->out, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
		send_edge(r);
		return;
	}
	/* path and query */
	q = memchr(r->h.target, '?', r->h.target_len);
	plen = q ? (size_t)(q - r->h.target) : r->h.target_len;
	if (q) {
		r->query = q + 1;
		r->query_len = r->h.target_len - plen - 1;
	}
	if (r->h.target_len == 1 && r->h.target[0] == '*') {
		r->path = "*";
		r->path_len = 1;
	} else {
		np = arena_alloc(&r->a, plen + 1);
		if (np == NULL) {
			req_fail_head(r, 500, "out of memory");
			return;
		}
		nl = route_normalize(r->h.target, plen, np);
		if (nl < 0) {
			req_fail_head(r, 400, "path escapes the root or is malformed");
			return;
		}
		r->path = np;
		r->path_len = (size_t)nl;
	}
	trusted = client_ip(r);
	if (trusted && (h = hdrs_get(&r->h.hdrs, "x-request-id")) && request_id_ok(h->val, h->vlen) &&
	    h->vlen < sizeof(r->id)) {
		memcpy(r->id, h->val, h->vlen);
		r->id[h->vlen] = '\0';
	}
	r->resp_close = !r->h.keep_alive;
	r->has_body = r->h.chunked || r->h.content_length > 0;
	if (!r->has_body && !r->tx)
		r->body_done = r->c->hp.msg_done;    /* a transport sets it before req_start */
	if ((h = hdrs_get(&r->h.hdrs, "expect")) != NULL) {
		if (ascii_casecmp_n(h->val, h->vlen, "100-continue", 12) == 0 && r->has_body)
			r->expect_continue = 1;
		hdrs_del(&r->h.hdrs, "expect");
	}
	if (tunnel_wanted(r)) {
		struct hdr *u = hdrs_get(&r->h.hdrs, "upgrade");
		r->upgrade = 1;
		r->upgrade_val = u->val;
		r->upgrade_len = u->vlen;
	}
	/* The forwarded view: hop-by-hop out; identity headers are visor's alone. */
	http_strip_hop_by_hop(&r->h.hdrs);
	if (!cf->client.allow_underscores)
		http_drop_underscored(&r->h.hdrs);
	hdrs_del(&r->h.hdrs, "content-length");
	if (!trusted) {
		hdrs_del_prefix(&r->h.hdrs, "x-forwarded-");
		hdrs_del(&r->h.hdrs, "forwarded");
		hdrs_del(&r->h.hdrs, "x-real-ip");
	}
	if (r->h.has_cl && r->h.content_length > (uint64_t)cf->client.max_body_size) {
		req_fail_head(r, 413, "Content-Length over max_body_size");
		return;
	}
	if (!r->tls) {
		r->chain = &cf->route_rt->plain;
	} else {
		r->route = route_match(cf->route_rt, r->path, r->path_len, r->method);
		r->chain = r->route ? &r->route->chain : &cf->route_rt->noroute;
		/* a route's body.max_size can only lower client.max_body_size */
		if (r->route && r->route->body_max > 0 && r->route->body_max < r->body_max)
			r->body_max = r->route->body_max;
	}
	if (r->h.has_cl && r->h.content_length > r->body_max) {
		req_fail_head(r, 413, "Content-Length over the route's max_size");
		return;
	}
	r->phase = RP_HEAD;
	chain_run(r);
}

/* ---- the chain ----------------------------------------------------------------------- */

/* What to do with a filter's verdict in the request phases. 1: keep going. */
static int
verdict_apply(struct req *r, enum verdict v, const char *fname)
{
	switch (v) {
	case V_CONTINUE:
		return 1;
	case V_SUSPEND:
		r->suspended = 1;
		return 0;
	case V_RESPOND:
		if (r->status == 0)
			req_respond(r, 500, NULL);
		if (r->log_reason == NULL)
			r->log_reason = fname;
		send_edge(r);
		return 0;
	case V_ERROR:
	default:
		log_warn("filter %s failed on request %s", fname, r->id);
		r->log_reason = fname;
		req_respond(r, 500, NULL);
		send_edge(r);
		return 0;
	}
}

/* Makes filter `id`'s per-request state (zeroed, from the arena) the first time it is
 * needed. 0, or -1 when out of memory. */
static int
fstate_make(struct req *r, unsigned id)
{
	size_t n = filter_table[id]->state_size;

	if (r->fstate[id] != NULL || n == 0)
		return 0;
	r->fstate[id] = arena_zalloc(&r->a, n);
	return r->fstate[id] != NULL ? 0 : -1;
}

/* Calls the request-phase hook (on_request, or on_request_body when `body`) of each filter
 * from fidx on. 1 when every filter let the request through; 0 when one answered, failed or
 * waits (its verdict applied). */
static int
chain_walk(struct req *r, int body)
{
	const struct filter *f;
	enum verdict (*hook)(struct req *, const void *, void *);
	unsigned id;

	while (r->fidx < r->chain->n) {
		id = r->chain->ids[r->fidx];
		f = filter_table[id];
		if (fstate_make(r, id) < 0) {
			core_answer(r, 500, "out of memory");
			return 0;
		}
		r->fidx++;
		if (!body)
			r->entered = r->fidx;
		hook = body ? f->on_request_body : f->on_request;
		if (hook != NULL && !verdict_apply(r, hook(r, r->conf->fconf[id], r->fstate[id]),
		    f->name))
			return 0;
	}
	return 1;
}

static void
chain_run(struct req *r)
{
	if (!chain_walk(r, 0))
		return;
	/* Every filter let it through. */
	if (!r->tls || r->route == NULL) {
		core_answer(r, 404, r->tls ? "no route" : "plain listener");
		return;
	}
	if (r->want_body && r->has_body) {
		r->phase = RP_BODY_READ;
		r->body = evbuffer_new();
		if (r->body == NULL) {
			core_answer(r, 500, "out of memory");
			return;
		}
		if (r->expect_continue && !r->sent_continue)
			cli_continue(r);
		if (r->body_done) {
			r->phase = RP_BODY_FILTERS;
			r->fidx = 0;
			body_filters_run(r);
		}
		/* else conn_feed streams the body into r->body; req_on_body_done continues */
		return;
	}
	if (r->want_body) {
		r->phase = RP_BODY_FILTERS;
		r->fidx = 0;
		body_filters_run(r);
		return;
	}
	go_upstream(r, 0);
}

static void
body_filters_run(struct req *r)
{
	if (!chain_walk(r, 1))
		return;
	r->fidx = r->entered;
	go_upstream(r, 0);
}

void
req_resume(struct req *r, enum verdict v)
{
	const char *fname = "filter";
	struct conn *c = r->c;
	int outer;

	if (!r->suspended || c->dead || r->head_sent)
		return;             /* a dead connection's request only waits for the reaper */
	r->suspended = 0;
	if (r->fidx > 0)
		fname = filter_table[r->chain->ids[r->fidx - 1]]->name;
	if (r->tx) {
		/* The transport never frees a request but from its own event, so the chain
		 * runs here without a guard; feed then schedules the body and the finish. */
		if (r->phase == RP_HEAD && verdict_apply(r, v, fname))
			chain_run(r);
		else if (r->phase == RP_BODY_FILTERS && verdict_apply(r, v, fname))
			body_filters_run(r);
		else if (r->phase != RP_HEAD && r->phase != RP_BODY_FILTERS)
			log_error("filter %s resumed request %s outside the request phase", fname,
			    r->id);
		r->tx->feed(r);
		return;
	}
	/* This is an entry from outside the connection's input (a store reply, a timer). While
	 * the chain goes on, conn_feed is held off (its calls return at once), so nothing frees
	 * r under us; at the end, one conn_feed feeds what the request can take now — the body
	 * that arrived with the head, for RP_BODY_READ or the upstream — and moves on when it
	 * is finished. (Inside an input pass already, that pass does it.) */
	outer = !c->feeding;
	c->feeding = 1;
	switch (r->phase) {
	case RP_HEAD:
		if (verdict_apply(r, v, fname))
			chain_run(r);
		break;
	case RP_BODY_FILTERS:
		if (verdict_apply(r, v, fname))
			body_filters_run(r);
		break;
	default:
		/* a response-phase wait is a body peek, ended by peek_ready, never by a resume */
		log_error("filter %s resumed request %s outside the request phase", fname, r->id);
		break;
	}
	if (!outer)
		return;
	c->feeding = 0;
	if (c->dead)
		return;
	if (req_finished(r)) {
		if (c->req == r)
			conn_req_done(c);       /* r is freed; the next pipelined request starts */
		return;
	}
	conn_feed(c);                   /* may free r */
}

/* ---- request body ------------------------------------------------------------------------ */

int
req_on_body(struct req *r, const char *p, size_t n)
{
	struct upconn *u = r->up;
	struct evbuffer *out;

	r->body_seen += n;
	if (r->body_seen > r->body_max) {
		r->c->hp.err = HTTP_E_BODY_TOO_LARGE;
		r->c->hp.why = "body over max_body_size";
		return -1;
	}
	if (r->discard)
		return 0;
	if (r->phase == RP_BODY_READ) {
		if (r->body_seen > r->want_body_max) {
			r->c->hp.err = HTTP_E_BODY_TOO_LARGE;
			r->c->hp.why = "body over the inspected size";
			return -1;
		}
		return evbuffer_add(r->body, p, n);
	}
	if (u == NULL)
		return -1;
	out = up_output(u);
	if (r->h.chunked) {
		char hx[24];
		int hl = snprintf(hx, sizeof(hx), "%zx\r\n", n);
		evbuffer_add(out, hx, (size_t)hl);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
	} else {
		evbuffer_add(out, p, n);
	}
	r->up_body_sent += n;
	if (evbuffer_get_length(out) > STREAM_HWM &&
	    !(r->tx ? r->tx->body_paused(r) : r->c->body_paused)) {
		up_flush(u);
		if (r->tx)
			r->tx->body_pause(r);
		else
			conn_body_pause(r->c);
		up_notify_drained(u, STREAM_LWM);
	}
	return 0;
}

void
req_on_body_done(struct req *r)
{
	r->body_done = 1;
	if (r->discard)
		return;                     /* conn_feed sees req_finished */
	if (r->phase == RP_BODY_READ) {
		r->phase = RP_BODY_FILTERS;
		r->fidx = 0;
		body_filters_run(r);
		return;
	}
	if (r->up && up_connected(r->up)) {
		if (r->h.chunked)
			evbuffer_add(up_output(r->up), "0\r\n\r\n", 5);
		up_flush(r->up);
		up_request_sent(r->up);
	}
}

void
req_up_drained(struct req *r)
{
	if (r->tx)
		r->tx->body_resume(r);
	else
		conn_body_resume(r->c);
}

/* ---- upstream ------------------------------------------------------------------------------ */

static void
go_upstream(struct req *r, int fresh)
{
	r->phase = RP_UPSTREAM;
	r->t_up_us = now_us();
	r->up_tries++;
	if (up_acquire(r->w->pool, r, fresh) < 0)
		core_answer(r, 502, "no upstream server");
}

static void
add_hdr(struct sbuf *b, const char *n, size_t nl, const char *v, size_t vl)
{
	sbuf_add(b, n, nl);
	sbuf_add(b, ": ", 2);
	sbuf_add(b, v, vl);
	sbuf_add(b, "\r\n", 2);
}

void
req_up_ready(struct req *r, struct upconn *u)
{
	const struct conf *cf = r->conf;
	struct sbuf *bp = &r->w->scratch, b;
	struct hdr *h, *host;
	uint32_t i;
	int trusted, whole;

	r->up = u;
	/* the worker's scratch buffer: no allocation per request once it has grown */
	sbuf_reset(bp);
	bp->oom = 0;
	b = *bp;
	sbuf_reserve(&b, 1024);
	sbuf_adds(&b, r->method);
	sbuf_addc(&b, ' ');
	sbuf_add(&b, r->path, r->path_len);
	if (r->query) {
		sbuf_addc(&b, '?');
		sbuf_add(&b, r->query, r->query_len);
	}
	sbuf_add(&b, " HTTP/1.1\r\n", 11);
	trusted = ip_trusted(cf, r->c->family, r->c->ip_bin);
	for (i = 0; i < r->h.hdrs.n; i++) {
		h = &r->h.hdrs.v[i];
		/* identity headers are rebuilt below */
		if (ascii_casecmp_n(h->name, h->nlen, "x-forwarded-for", 15) == 0 ||
		    ascii_casecmp_n(h->name, h->nlen, "x-forwarded-proto", 17) == 0 ||
		    ascii_casecmp_n(h->name, h->nlen, "x-forwarded-host", 16) == 0 ||
		    ascii_casecmp_n(h->name, h->nlen, "x-real-ip", 9) == 0 ||
		    ascii_casecmp_n(h->name, h->nlen, "x-request-id", 12) == 0)
			continue;
		add_hdr(&b, h->name, h->nlen, h->val, h->vlen);
	}
	/* X-Forwarded-For: a trusted proxy's chain plus the peer; otherwise the peer only. */
	sbuf_adds(&b, "X-Forwarded-For: ");
	if (trusted) {
		int first = 1;
		for (i = 0; i < r->h.hdrs.n; i++) {
			h = &r->h.hdrs.v[i];
			if (ascii_casecmp_n(h->name, h->nlen, "x-forwarded-for", 15) != 0 || h->vlen == 0)
				continue;
			if (!first)
				sbuf_add(&b, ", ", 2);
			sbuf_add(&b, h->val, h->vlen);
			first = 0;
		}
		if (!first)
			sbuf_add(&b, ", ", 2);
	}
	sbuf_adds(&b, r->c->ip);
	sbuf_add(&b, "\r\n", 2);
	sbuf_adds(&b, r->tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
	host = hdrs_get(&r->h.hdrs, "host");
	if (host)
		add_hdr(&b, "X-Forwarded-Host", 16, host->val, host->vlen);
	add_hdr(&b, "X-Real-IP", 9, r->ip, strlen(r->ip));
	add_hdr(&b, "X-Request-Id", 12, r->id, strlen(r->id));
	if (r->upgrade) {
		/* hop-by-hop by nature, but the switch itself is what the upstream must see */
		sbuf_adds(&b, "Connection: upgrade\r\n");
		add_hdr(&b, "Upgrade", 7, r->upgrade_val, r->upgrade_len);
	} else if (cf->upstream.keepalive == 0) {
		sbuf_adds(&b, "Connection: close\r\n");
	}
	if (r->body) {
		sbuf_printf(&b, "Content-Length: %zu\r\n\r\n", evbuffer_get_length(r->body));
	} else if (r->has_body) {
		if (r->h.chunked)
			sbuf_adds(&b, "Transfer-Encoding: chunked\r\n\r\n");
		else
			sbuf_printf(&b, "Content-Length: %llu\r\n\r\n",
			    (unsigned long long)r->h.content_length);
	} else if (r->h.has_cl) {
		sbuf_add(&b, "Content-Length: 0\r\n\r\n", 21);  /* as it came (a POST with no body) */
	} else {
		sbuf_add(&b, "\r\n", 2);
	}
	*bp = b;
	if (b.oom) {
		r->up = NULL;
		up_release(u, 0);
		core_answer(r, 500, "out of memory");
		return;
	}
	evbuffer_add(up_output(u), b.p, b.len);
	if (r->body) {
		/* by reference: the buffered body stays for a retry on another connection */
		evbuffer_add_buffer_reference(up_output(u), r->body);
		whole = 1;
	} else {
		/* no body; or (cannot happen here) a body consumed by a refusal path */
		whole = !r->has_body || r->body_done;
	}
	if (whole) {
		up_flush(u);
		up_request_sent(u);
	} else {
		/* conn_feed streams the body and flushes head and first bytes together */
		if (r->expect_continue && !r->sent_continue)
			cli_continue(r);
		cli_feed(r);
	}
}

/* RFC 9110 §9.2.2: safe to send twice. */
static int
method_idempotent(int m)
{
	return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
	    m == HTTP_DELETE || m == HTTP_TRACE;
}

void
req_up_failed(struct req *r, int status, const char *why)
{
	struct upconn *u = r->up;

	if (u) {
		up_release(u, 0);
		r->up = NULL;
	}
	log_msg(LOG_WARN, NULL, "upstream failed for request %s: %s", r->id, why);
	if (r->head_sent) {
		/* Part of the answer is out: all that is left is to cut the stream. */
		r->resp_done = 1;
		r->resp_close = 1;
		req_complete(r);
		cli_cut(r);
		return;
	}
	/* A reused pooled connection may have been closed by the server just before we used
	 * it: one more try on a fresh connection (to any server, this one included) is safe
	 * when no body byte has left yet. */
	if (status == 502 && r->up_reused && r->up_body_sent == 0 && !r->up_got_bytes &&
	    r->up_tries < 3 && method_idempotent(r->h.method)) {
		r->up_reused = 0;
		up_tried_reset(r);
		go_upstream(r, 1);
		/* No server left answers 502 inside go_upstream: this is an upstream event, not
		 * a parser pass, so nobody above will move the connection on but us. */
		req_maybe_finish(r);
		return;
	}
	r->phase = RP_DONE;
	r->log_reason = why;
	peek_abandon(r);                     /* the client gets the 502 */
	/* the request body may be half-sent: never reuse this client stream */
	if (!r->body_done)
		r->resp_close = 1;
	req_respond(r, status, NULL);
	/* Response filters run as for any edge answer, so CORS and headers still apply. */
	r->fidx = r->entered;
	send_edge(r);
	req_maybe_finish(r);
}

int
req_up_head(struct req *r, struct upconn *u)
{
	struct hdrs *o;
	struct hdr *h;
	uint32_t i;

	if (up_take_head(u, &r->a, &r->rh) < 0)
		return -1;
	r->t_up_head_us = now_us();
	metrics_up_observe(&r->w->m, r->t_up_head_us - r->t_up_us);
	r->status = r->rh.status;
	r->phase = RP_RESPONSE;
	out_reset(r);
	o = &r->out;
	/* room for the upstream's headers plus what the filters add, in one arena block */
	o->v = arena_alloc(&r->a, (r->rh.hdrs.n + 24) * sizeof(*o->v));
	if (o->v == NULL)
		return -1;
	o->cap = r->rh.hdrs.n + 24;
	if (r->status == 101) {
		struct hdr *uh = hdrs_get(&r->rh.hdrs, "upgrade");
		if (uh && hdrs_add(&r->a, o, "Upgrade", 7, uh->val, uh->vlen) < 0)
			return -1;
	}
	http_strip_hop_by_hop(&r->rh.hdrs);
	for (i = 0; i < r->rh.hdrs.n; i++) {
		h = &r->rh.hdrs.v[i];
		if (ascii_casecmp_n(h->name, h->nlen, "content-length", 14) == 0)
			continue;
		/* Only visor decides CORS (docs/cors.md). */
		if (ascii_prefix_case(h->name, h->nlen, "access-control-"))
			continue;
		if (hdrs_add(&r->a, o, h->name, h->nlen, h->val, h->vlen) < 0)
			return -1;
	}
	resp_filters_run(r);
	return 0;
}

/* ---- response phase ------------------------------------------------------------------------ */

static void
resp_filters_run(struct req *r)
{
	const struct filter *f;
	unsigned id;
	enum verdict v;

	/* fidx counts down through the entered filters (reverse order). */
	if (r->suspended)
		return;
	if (r->fidx > r->entered)
		r->fidx = r->entered;
	while (r->fidx > 0) {
		id = r->chain->ids[r->fidx - 1];
		f = filter_table[id];
		if (f->on_response == NULL || fstate_make(r, id) < 0) {
			r->fidx--;
			continue;
		}
		r->want_resp_body = 0;
		v = f->on_response(r, r->conf->fconf[id], r->fstate[id]);
		if (v == V_SUSPEND && r->want_resp_body) {
			if (!r->edge && r->resp_peek == NULL && r->up) {
				/* buffer up to want_resp_max, then call this same filter again (fidx
				 * stays on it, so an abort meanwhile reaches its on_abort) */
				r->resp_peek = evbuffer_new();
				if (r->resp_peek) {
					r->suspended = 1;
					return;
				}
			}
			/* cannot buffer (an edge answer, or the body is already here): go on */
		} else if (v == V_SUSPEND) {
			/* the response phase has no other wait (filter.h): a bug in the filter */
			log_error("filter %s suspended the response of %s without asking for its body",
			    f->name, r->id);
		} else if (v == V_ERROR) {
			log_warn("filter %s failed on the response of %s", f->name, r->id);
		}
		r->fidx--;
	}
	resp_send_head(r);
}

/* The buffered response body reached its bound or its end: back to the waiting filter. */
static void
peek_ready(struct req *r)
{
	r->suspended = 0;
	resp_filters_run(r);
}

/* resp_send_head for a transport: no framing to choose (the stream delimits the body), the
 * same headers, the same Content-Length rules, the same completion. */
static void
resp_send_head_tx(struct req *r, int nobody)
{
	size_t blen = r->rbody ? evbuffer_get_length(r->rbody) : 0;

	if (r->edge)
		hdrs_sets(&r->a, &r->out, "Date", worker_date(r->w));
	if (r->rbody)
		r->tx->head(r, !http_status_no_body(r->status), blen, nobody || blen == 0);
	else if (!r->edge && r->rh.has_cl)
		r->tx->head(r, 1, r->rh.content_length, nobody || r->rh.content_length == 0);
	else
		r->tx->head(r, 0, 0, nobody || r->edge);
	if (r->rbody) {
		if (!nobody && blen) {
			r->bytes_out += blen;
			r->tx->body_buf(r, r->rbody);
		}
		if (r->resp_peek)
			evbuffer_drain(r->resp_peek, evbuffer_get_length(r->resp_peek));
		r->resp_dropping = r->up != NULL;
	} else if (r->resp_peek) {
		size_t pl = evbuffer_get_length(r->resp_peek);
		if (pl && !nobody) {
			r->tx->body_buf(r, r->resp_peek);
			r->bytes_out += pl;
		}
	}
	evbuf_free(&r->resp_peek);
	if (r->edge || r->up == NULL || r->up_done_early) {
		r->tx->end(r);
		r->tx->flush(r);
		req_complete(r);
	}
}

static void
resp_send_head(struct req *r)
{
	struct conn *c = r->c;
	struct sbuf *bp = &r->w->scratch, b;
	struct hdr *h;
	uint32_t i;
	int no_body, is_head = r->h.method == HTTP_HEAD;
	size_t blen = 0;

	if (r->head_sent)
		return;
	r->head_sent = 1;
	no_body = http_status_no_body(r->status);
	hdrs_sets(&r->a, &r->out, "X-Request-Id", r->id);
	/* An edge answer while a small body is still coming: read and drop it and keep the
	 * connection (a 401 on a POST shouldn't cost the client a new TLS handshake); a large
	 * or chunked one closes the connection after the answer instead. */
	if (r->edge && !r->body_done) {
		if (!r->resp_close && r->h.has_cl && r->h.content_length - r->body_seen <= DISCARD_MAX)
			r->discard = 1;
		else
			r->resp_close = 1;
	}
	if (c->w->draining)
		r->resp_close = 1;
	if (r->tx) {
		resp_send_head_tx(r, no_body || is_head);
		return;
	}
	sbuf_reset(bp);
	bp->oom = 0;
	b = *bp;
	sbuf_reserve(&b, 1024);
	sbuf_add(&b, "HTTP/1.1 ", 9);
	sbuf_add_u64(&b, (uint64_t)r->status);
	sbuf_addc(&b, ' ');
	sbuf_adds(&b, http_reason(r->status));
	sbuf_add(&b, "\r\n", 2);
	for (i = 0; i < r->out.n; i++) {
		h = &r->out.v[i];
		add_hdr(&b, h->name, h->nlen, h->val, h->vlen);
	}
	if (r->edge)
		add_hdr(&b, "Date", 4, worker_date(r->w), strlen(worker_date(r->w)));
	if (r->rbody) {
		blen = evbuffer_get_length(r->rbody);
		if (!no_body) {
			sbuf_add(&b, "Content-Length: ", 16);
			sbuf_add_u64(&b, blen);
			sbuf_add(&b, "\r\n", 2);
		}
		r->resp_chunked = 0;
	} else if (!r->edge) {
		if (no_body) {
			/* nothing */
		} else if (r->rh.has_cl) {
			sbuf_add(&b, "Content-Length: ", 16);
			sbuf_add_u64(&b, r->rh.content_length);
			sbuf_add(&b, "\r\n", 2);
		} else if (is_head) {
			/* length unknown: say nothing */
		} else if (r->h.minor >= 1) {
			sbuf_adds(&b, "Transfer-Encoding: chunked\r\n");
			r->resp_chunked = 1;
		} else {
			r->resp_close = 1;  /* HTTP/1.0 client: the close delimits the body */
		}
	}
	if (r->status == 101 && !r->edge)
		sbuf_adds(&b, "Connection: upgrade\r\n");
	else if (r->resp_close)
		sbuf_adds(&b, "Connection: close\r\n");
	else if (r->h.minor == 0)
		sbuf_adds(&b, "Connection: keep-alive\r\n");
	sbuf_add(&b, "\r\n", 2);
	*bp = b;
	if (b.oom) {
		conn_close(c);
		return;
	}
	evbuffer_add(c->s.out, b.p, b.len);
	if (r->rbody) {
		if (!is_head && !no_body) {
			r->bytes_out += blen;
			evbuffer_add_buffer(c->s.out, r->rbody);
		}
		if (r->resp_peek)
			evbuffer_drain(r->resp_peek, evbuffer_get_length(r->resp_peek));
		r->resp_dropping = r->up != NULL;
	} else if (r->resp_peek) {
		/* inspected but kept: send what was buffered */
		size_t pl = evbuffer_get_length(r->resp_peek);
		if (pl) {
			if (r->resp_chunked) {
				char hx[24];
				int hl = snprintf(hx, sizeof(hx), "%zx\r\n", pl);
				evbuffer_add(c->s.out, hx, (size_t)hl);
				evbuffer_add_buffer(c->s.out, r->resp_peek);
				evbuffer_add(c->s.out, "\r\n", 2);
			} else {
				evbuffer_add_buffer(c->s.out, r->resp_peek);
			}
			r->bytes_out += pl;
		}
	}
	evbuf_free(&r->resp_peek);
	if (r->status == 101 && !r->edge) {
		/* switched: the upstream hands over once its parser call returns (up_feed) */
		r->tunnel_pending = 1;
		conn_flush(c);
		return;
	}
	if (r->edge || r->up == NULL || r->up_done_early) {
		if (r->resp_chunked)
			evbuffer_add(c->s.out, "0\r\n\r\n", 5);
		conn_flush(c);
		req_complete(r);
	}
	/* else: the body usually arrived in the same read; up_feed flushes once at the end, so
	 * head and body leave in one TLS record */
}

int
req_up_body(struct req *r, const char *p, size_t n)
{
	struct conn *c = r->c;

	if (r->resp_peek && !r->head_sent) {
		size_t have = evbuffer_get_length(r->resp_peek);
		evbuffer_add(r->resp_peek, p, n);
		if (have + n >= r->want_resp_max)
			peek_ready(r);
		return 0;
	}
	if (r->resp_dropping || r->h.method == HTTP_HEAD)
		return 0;
	if (r->tx) {
		r->tx->body(r, p, n);
		r->bytes_out += n;
		if (r->tx->pending(r) > r->tx->out_hwm && r->up && !up_paused(r->up)) {
			r->tx->flush(r);
			up_pause(r->up);
			r->tx->notify_drained(r, r->tx->out_hwm / 4);
		}
		return 0;
	}
	if (r->resp_chunked) {
		char hx[24];
		int hl = snprintf(hx, sizeof(hx), "%zx\r\n", n);
		evbuffer_add(c->s.out, hx, (size_t)hl);
		evbuffer_add(c->s.out, p, n);
		evbuffer_add(c->s.out, "\r\n", 2);
	} else {
		evbuffer_add(c->s.out, p, n);
	}
	r->bytes_out += n;
	if (evbuffer_get_length(c->s.out) > STREAM_HWM && r->up && !up_paused(r->up)) {
		conn_flush(c);
		up_pause(r->up);
		sock_notify_drained(&c->s, STREAM_LWM);
	}
	return 0;
}

void
req_tunnel_go(struct req *r)
{
	r->tunnel_pending = 0;
	r->tunnel = 1;
	req_complete(r);          /* the access log line of the handshake (status 101) */
	tunnel_start(r);
}

void
req_client_drained(struct req *r)
{
	if (r->up && up_paused(r->up))
		up_resume(r->up);
}

void
req_up_done(struct req *r)
{
	struct upconn *u = r->up;
	int reusable;

	reusable = u && up_sent_all(u) && r->body_done && up_framed(u);
	if (r->resp_peek && !r->head_sent) {
		/* the whole body fit in the inspection window */
		r->up_done_early = 1;
		if (u) {
			up_release(u, reusable);
			r->up = NULL;
		}
		/* and it came before the whole request body (an early 401/404/413 from the app):
		 * nobody will read the rest, so this client stream ends with the answer */
		if (!r->body_done)
			r->resp_close = 1;
		peek_ready(r);
		req_maybe_finish(r);
		return;
	}
	if (u) {
		up_release(u, reusable);
		r->up = NULL;
	}
	/* The upstream answered before the whole body came: this client stream cannot go on. */
	if (!r->body_done)
		r->resp_close = 1;
	if (!r->head_sent) {
		/* a filter is still suspended on the response; it will send */
		r->up_done_early = 1;
		return;
	}
	if (r->tx)
		r->tx->end(r);
	else if (r->resp_chunked && !r->edge)
		evbuffer_add(r->c->s.out, "0\r\n\r\n", 5);
	cli_flush(r);
	req_complete(r);
	req_maybe_finish(r);
}

/* ---- completion ------------------------------------------------------------------------------ */

static void
access_log(struct req *r)
{
	struct sbuf *b = log_q_out(r->w->logq);
	size_t mark = b->len;
	int64_t now = now_us();

	if (r->conf->log.access == ACCESS_OFF)
		return;
	log_line_begin(b, "access");
	sbuf_json_kv(b, "request_id", r->id, strlen(r->id));
	sbuf_json_kv(b, "client_ip", r->ip, strlen(r->ip));
	sbuf_json_kv(b, "method", r->method, strlen(r->method));
	/* the client's text: a token in a path must not reach the log (docs/operations.md) */
	log_kv(b, "path", r->path, strlen(r->path));
	sbuf_printf(b, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f",
	    r->status, (unsigned long long)((r->tx ? r->head_bytes : r->c->hp.head_bytes) +
	    r->body_seen),
	    (unsigned long long)r->bytes_out, (double)(now - r->t_start_us) / 1000.0);
	if (r->t_up_head_us)
		sbuf_printf(b, ",\"upstream_ms\":%.3f", (double)(r->t_up_head_us - r->t_up_us) / 1000.0);
	else
		sbuf_adds(b, ",\"upstream_ms\":null");
	if (r->edge && r->log_reason)
		sbuf_json_kv(b, "reason", r->log_reason, strlen(r->log_reason));
	log_line_end(b);
	log_q_line_done(r->w->logq, mark);
	worker_log_kick(r->w);
}

static void
req_complete(struct req *r)
{
	const struct filter *f;
	size_t i;
	unsigned id;

	if (r->resp_done)
		return;
	r->resp_done = 1;
	r->phase = RP_DONE;
	metrics_count_request(&r->w->m, r->status);
	access_log(r);
	for (i = 0; i < r->entered; i++) {
		id = r->chain->ids[i];
		f = filter_table[id];
		if (f->on_done)
			f->on_done(r, r->conf->fconf[id], r->fstate[id]);
	}
}
