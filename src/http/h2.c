/* SPDX-License-Identifier: MIT
 * h2 — HTTP/2 to clients: one nghttp2 server session per connection, one request per stream.
 *
 *   sock bytes ─▶ nghttp2_session_mem_recv ─▶ callbacks record: a stream's head (into its
 *   request's arena), its DATA (into s->in), END_STREAM, resets ─▶ after the pass: heads
 *   become requests (req_start), bodies are fed while the request takes them
 *   req.c ─▶ struct req_tx (h2_tx below) ─▶ submit_response / s->out ─▶ nghttp2_session_send
 *   ─▶ the sock's output (at most H2_OUT_MAX ahead of the socket)
 *
 * Nothing is freed from inside a callback: nghttp2's callbacks and the transport hooks only
 * set flags on the stream and activate the connection's kick event, which aborts requests
 * whose stream closed, hands on drained notifications, feeds bodies and frees finished
 * requests and closed streams. A stream outlives its request while its answer is still being
 * framed; a request never outlives its stream's struct.
 *
 * Receive windows are opened (nghttp2_session_consume) only as the request takes the bytes:
 * a stream holds at most http2.window_size unread bytes, a connection at most
 * http2.connection_window. The answer goes out as the client's windows allow; an upstream
 * that is faster is paused once its stream holds 64 KiB not yet framed (h2_tx.out_hwm), so
 * a connection's answers hold at most max_concurrent_streams × 64 KiB.
 */
#include "http/h2.h"

#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/req.h"
#include "http/upstream.h"

#define H2_WIN_MS        10000          /* the window resets and control frames are counted in */
#define H2_OUT_MAX       (64 * 1024)    /* framed bytes queued ahead of the socket */
#define H2_BLOCK_FRAMES  32             /* HEADERS + CONTINUATION frames in one header block */
#define H2_TICK_MS       1000           /* stream timeouts are checked this often */
#define H2_SLICE         (16 * 1024)    /* input handed to nghttp2 per call */
#define H2_TRIM_MS       1000           /* idle this long: the TLS record buffers go back */

const char *const h2_refusal_name[H2R_COUNT] = {
	"malformed", "head", "rapid_reset", "flood", "header_block", "timeout",
	"refused_stream", "protocol",
};

struct h2conn;

struct h2s {
	struct h2conn    *h;
	int32_t           id;
	struct req       *r;           /* NULL once finished (or never started) and freed */
	struct evbuffer  *in;          /* DATA the request has not taken yet */
	struct evbuffer  *out;         /* answer body not framed yet */
	const char       *meth, *scheme, *path, *auth;
	size_t            meth_len, scheme_len, path_len, auth_len;
	size_t            hdr_bytes;   /* decoded head size, as an HTTP/1.1 head would count it */
	size_t            drain_low;
	int64_t           born_ms, last_in_ms, last_out_ms;
	TAILQ_ENTRY(h2s)  link;
	unsigned          head_ready : 1;   /* END_HEADERS of the request head came */
	unsigned          started : 1;      /* req_start ran (or the head was refused) */
	unsigned          in_end : 1;       /* END_STREAM from the client */
	unsigned          head_out : 1;     /* our response head is submitted */
	unsigned          nobody : 1;       /* ... and it ended the stream */
	unsigned          out_end : 1;      /* the whole answer body is in s->out */
	unsigned          sent_end : 1;     /* END_STREAM left */
	unsigned          deferred : 1;     /* the data source waits for bytes (resume_data) */
	unsigned          body_paused : 1;  /* upstream backpressure: DATA is not fed */
	unsigned          too_large : 1;    /* head over client.max_header_size: 431 */
	unsigned          bad : 1;          /* reset for a malformed head: never started */
	unsigned          closed : 1;       /* nghttp2 closed the stream */
	unsigned          drain_armed : 1;
	unsigned          drained : 1;      /* s->out fell to drain_low: req_client_drained */
};

struct h2conn {
	struct conn      *c;
	nghttp2_session  *ss;
	struct event     *kick;
	struct event     *timer;
	TAILQ_HEAD(, h2s) streams;
	unsigned          nstreams;        /* open (not closed by nghttp2) */
	int               busy;            /* inside nghttp2 (recv or send) */
	int               want_send;
	int64_t           win_start_ms;
	unsigned          win_resets, win_ctrl;
	size_t            block_bytes;     /* wire size of the header block being received */
	unsigned          block_frames;
	int64_t           last_ms;         /* last frame either way */
	unsigned          goaway : 1;      /* we sent (or queued) a GOAWAY */
	unsigned          counted : 1;     /* the GOAWAY's reason is counted already */
	unsigned          blocked : 1;     /* the sock's output is full */
	unsigned          freeing : 1;
	unsigned          kicked : 1;
	unsigned          fatal : 1;       /* nghttp2 gave up: only the output leaves, then close */
	unsigned          ticking : 1;     /* the timer is on its one-second tick */
	unsigned          trimmed : 1;     /* TLS record buffers given back in this idle period */
};

static const struct req_tx h2_tx;
static void h2_kick(struct h2conn *h);
static void timer_arm(struct h2conn *h);

static struct worker *
W(const struct h2conn *h)
{
	return h->c->w;
}

static void
refusal(struct h2conn *h, enum h2_refusal why)
{
	METRIC_INC(&W(h)->m, h2_refused[why]);
}

/* A connection-level limit: GOAWAY with ENHANCE_YOUR_CALM (or PROTOCOL_ERROR), logged and
 * counted once; nghttp2 reads nothing more and the connection closes once it has left. */
static void
h2_refuse_conn(struct h2conn *h, enum h2_refusal why, uint32_t code, const char *what)
{
	if (h->counted)
		return;
	h->counted = 1;
	h->goaway = 1;
	refusal(h, why);
	log_warn("HTTP/2: GOAWAY to %s: %s", h->c->ip, what);
	nghttp2_session_terminate_session(h->ss, code);
}

/* Counts a frame in the current 10 s window; 1 when a limit is crossed. */
static void
win_roll(struct h2conn *h)
{
	int64_t now = now_ms();

	if (now - h->win_start_ms >= H2_WIN_MS) {
		h->win_start_ms = now;
		h->win_resets = 0;
		h->win_ctrl = 0;
	}
}

static void
count_ctrl(struct h2conn *h)
{
	win_roll(h);
	if (++h->win_ctrl > (unsigned)h->c->conf->http2.max_control_frames)
		h2_refuse_conn(h, H2R_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM,
		    "control frames over http2.max_control_frames in 10 s (flood)");
}

/* ---- streams ------------------------------------------------------------------------- */

static struct h2s *
stream_of(struct h2conn *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->ss, id);
}

static void
stream_free(struct h2s *s)
{
	TAILQ_REMOVE(&s->h->streams, s, link);
	evbuf_free(&s->in);
	evbuf_free(&s->out);
	free(s);
}

/* Whether the stream's request takes body bytes now (conn.c's body_flowing, per stream). */
static int
flowing(const struct h2s *s)
{
	const struct req *r = s->r;

	if (r == NULL || !s->started || s->body_paused || r->body_done)
		return 0;
	if (r->discard || r->phase == RP_BODY_READ)
		return 1;
	return (r->phase == RP_UPSTREAM || r->phase == RP_RESPONSE || r->phase == RP_DONE) &&
	    r->up != NULL && up_connected(r->up);
}

/* Hands what arrived of the body to the request while it takes it, opening the windows by
 * what it took; END_STREAM once everything before it was taken. */
static void
stream_feed(struct h2s *s)
{
	struct h2conn *h = s->h;
	struct evbuffer_iovec v;
	struct req *r = s->r;
	int rv;

	while (s->r == r && r != NULL && evbuffer_get_length(s->in) > 0 && flowing(s)) {
		evbuffer_peek(s->in, -1, NULL, &v, 1);
		rv = req_on_body(r, v.iov_base, v.iov_len);
		evbuffer_drain(s->in, v.iov_len);
		if (!s->closed)
			nghttp2_session_consume(h->ss, s->id, v.iov_len);
		else
			nghttp2_session_consume_connection(h->ss, v.iov_len);
		if (rv < 0) {
			int st = r->body_seen > r->body_max || (r->phase == RP_BODY_READ &&
			    r->body_seen > r->want_body_max) ? 413 : 400;
			req_fail_head(r, st, st == 413 ? "body over max_body_size" : "body refused");
			return;
		}
	}
	if (s->r == r && r != NULL && s->in_end && evbuffer_get_length(s->in) == 0 && flowing(s))
		req_on_body_done(r);
}

/* ---- the transport req.c drives (struct req_tx) -------------------------------------- */

static ssize_t
data_read(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *ud)
{
	struct h2s *s = src->ptr;
	int n;

	(void)ss;
	(void)id;
	(void)ud;
	n = evbuffer_remove(s->out, buf, len);
	if (n < 0)
		n = 0;
	if (n > 0)
		s->last_out_ms = now_ms();
	if (s->drain_armed && evbuffer_get_length(s->out) <= s->drain_low) {
		s->drain_armed = 0;
		s->drained = 1;
		h2_kick(s->h);
	}
	if (evbuffer_get_length(s->out) == 0 && s->out_end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return n;
	}
	if (n == 0) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return n;
}

static void
out_more(struct h2s *s)
{
	if (s->deferred && !s->closed) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->h->ss, s->id);
	}
}

/* Names HTTP/2 forbids (RFC 9113 §8.2.2), and Content-Length (visor writes its own): the
 * upstream's hop-by-hop headers are gone already, this keeps a filter's header from breaking
 * the stream. By length first: it runs for every header of every answer. */
static int
h2_skip(const char *n, size_t nl)
{
	switch (nl) {
	case 2:
		return ascii_casecmp_n(n, nl, "te", 2) == 0;
	case 7:
		return ascii_casecmp_n(n, nl, "upgrade", 7) == 0;
	case 10:
		return ascii_casecmp_n(n, nl, "connection", 10) == 0 ||
		    ascii_casecmp_n(n, nl, "keep-alive", 10) == 0;
	case 14:
		return ascii_casecmp_n(n, nl, "content-length", 14) == 0;
	case 16:
		return ascii_casecmp_n(n, nl, "proxy-connection", 16) == 0;
	case 17:
		return ascii_casecmp_n(n, nl, "transfer-encoding", 17) == 0;
	default:
		return 0;
	}
}

/* Values that differ on every answer: kept out of the HPACK dynamic table (4 KiB), where
 * each would evict the headers every answer repeats (helmet's, CSP above all), which would
 * then be Huffman-coded again for each answer (callgrind: half of nghttp2_session_send). */
static int
h2_unique(const char *ln, size_t nl)
{
	return (nl == 12 && memcmp(ln, "x-request-id", 12) == 0) ||
	    (nl == 4 && memcmp(ln, "date", 4) == 0) ||
	    (nl == 4 && memcmp(ln, "etag", 4) == 0) ||
	    (nl == 10 && memcmp(ln, "set-cookie", 10) == 0) ||
	    (nl == 13 && memcmp(ln, "last-modified", 13) == 0);
}

static void
tx_head(struct req *r, int has_len, uint64_t len, int nobody)
{
	struct h2s *s = r->tx_arg;
	nghttp2_data_provider prd;
	nghttp2_nv *nv;
	char *st, *cl = NULL, *lower;
	size_t names = 0;
	uint32_t i, n = 0;

	if (s->closed || s->head_out)
		return;
	s->head_out = 1;
	s->nobody = nobody;
	for (i = 0; i < r->out.n; i++)
		names += r->out.v[i].nlen;
	nv = arena_alloc(&r->a, (r->out.n + 2) * sizeof(*nv));
	lower = arena_alloc(&r->a, names + 1);     /* every name, lower-cased, in one block */
	st = arena_printf(&r->a, "%d", r->status);
	if (has_len)
		cl = arena_printf(&r->a, "%llu", (unsigned long long)len);
	if (nv == NULL || lower == NULL || st == NULL || (has_len && cl == NULL)) {
		nghttp2_submit_rst_stream(s->h->ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	nv[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st, 7, strlen(st),
	    NGHTTP2_NV_FLAG_NO_COPY_NAME };
	for (i = 0; i < r->out.n; i++) {
		const struct hdr *e = &r->out.v[i];
		char *ln = lower;
		uint32_t k;
		if (e->nlen == 0 || h2_skip(e->name, e->nlen))
			continue;
		for (k = 0; k < e->nlen; k++)
			ln[k] = ascii_lower(e->name[k]);
		lower += e->nlen;
		/* copied by nghttp2: the request (and its arena) may be freed before the frame
		 * leaves (a full socket, or the kick freeing a finished request first) */
		nv[n++] = (nghttp2_nv){ (uint8_t *)ln, (uint8_t *)(uintptr_t)e->val, e->nlen, e->vlen,
		    h2_unique(ln, e->nlen) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE };
	}
	if (has_len)
		nv[n++] = (nghttp2_nv){ (uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl),
		    NGHTTP2_NV_FLAG_NO_COPY_NAME };
	prd.source.ptr = s;
	prd.read_callback = data_read;
	if (nghttp2_submit_response(s->h->ss, s->id, nv, n, nobody ? NULL : &prd) != 0)
		nghttp2_submit_rst_stream(s->h->ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
	s->last_out_ms = now_ms();
}

static void
tx_body(struct req *r, const char *p, size_t n)
{
	struct h2s *s = r->tx_arg;

	if (s->closed || s->nobody || s->out_end)
		return;
	evbuffer_add(s->out, p, n);
	out_more(s);
}

static void
tx_body_buf(struct req *r, struct evbuffer *b)
{
	struct h2s *s = r->tx_arg;

	if (s->closed || s->nobody || s->out_end) {
		evbuffer_drain(b, evbuffer_get_length(b));
		return;
	}
	evbuffer_add_buffer(s->out, b);
	out_more(s);
}

static void
tx_end(struct req *r)
{
	struct h2s *s = r->tx_arg;

	s->out_end = 1;
	out_more(s);
}

static void
tx_flush(struct req *r)
{
	struct h2s *s = r->tx_arg;

	h2_flush(s->h);
}

static size_t
tx_pending(const struct req *r)
{
	const struct h2s *s = r->tx_arg;

	return evbuffer_get_length(s->out);
}

static void
tx_notify_drained(struct req *r, size_t low)
{
	struct h2s *s = r->tx_arg;

	s->drain_low = low;
	s->drain_armed = 1;
}

static void
tx_reset(struct req *r)
{
	struct h2s *s = r->tx_arg;

	if (!s->closed)
		nghttp2_submit_rst_stream(s->h->ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
	s->out_end = 1;
	evbuffer_drain(s->out, evbuffer_get_length(s->out));
	h2_kick(s->h);
}

static void
tx_cont(struct req *r)
{
	struct h2s *s = r->tx_arg;
	nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"100", 7, 3,
	    NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE };

	if (!s->closed)
		nghttp2_submit_headers(s->h->ss, NGHTTP2_FLAG_NONE, s->id, NULL, &nv, 1, NULL);
	h2_flush(s->h);
}

static void
tx_body_pause(struct req *r)
{
	struct h2s *s = r->tx_arg;

	s->body_paused = 1;
}

static void
tx_body_resume(struct req *r)
{
	struct h2s *s = r->tx_arg;

	s->body_paused = 0;
	h2_kick(s->h);
}

static int
tx_body_paused(const struct req *r)
{
	const struct h2s *s = r->tx_arg;

	return s->body_paused;
}

static void
tx_feed(struct req *r)
{
	struct h2s *s = r->tx_arg;

	h2_kick(s->h);
}

static const struct req_tx h2_tx = {
	.head = tx_head,
	.body = tx_body,
	.body_buf = tx_body_buf,
	.end = tx_end,
	.flush = tx_flush,
	.pending = tx_pending,
	.notify_drained = tx_notify_drained,
	.reset = tx_reset,
	.cont = tx_cont,
	.body_pause = tx_body_pause,
	.body_resume = tx_body_resume,
	.body_paused = tx_body_paused,
	.feed = tx_feed,
	/* 100 streams × 64 KiB: what one connection's answers may hold beyond the windows */
	.out_hwm = 64 * 1024,
};

/* ---- a head becomes a request ------------------------------------------------------------ */

static void
refuse_head(struct h2s *s, int status, const char *why)
{
	refusal(s->h, H2R_HEAD);
	s->r->body_done = 1;
	req_fail_head(s->r, status, why);
}

/* The HTTP methods llhttp knows (an HTTP/1.1 head with another is a 400 too). */
static int
method_id(const char *m, size_t ml)
{
	static const struct { const char *n; int id; } tab[] = {
#define H2_METHOD(num, name, string) { #string, HTTP_##name },
		HTTP_METHOD_MAP(H2_METHOD)
#undef H2_METHOD
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].n) == ml && memcmp(tab[i].n, m, ml) == 0)
			return tab[i].id;
	return -1;
}

/* Cookie crumbs (RFC 9113 §8.2.3) become one header, "; " between them. */
static int
join_cookies(struct req *r)
{
	struct sbuf b = { 0 };
	uint32_t i;
	char *v;
	int n = 0;

	if (hdrs_count(&r->h.hdrs, "cookie") < 2)
		return 0;
	for (i = 0; i < r->h.hdrs.n; i++) {
		const struct hdr *e = &r->h.hdrs.v[i];
		if (ascii_casecmp_n(e->name, e->nlen, "cookie", 6) != 0)
			continue;
		if (n++)
			sbuf_add(&b, "; ", 2);
		sbuf_add(&b, e->val, e->vlen);
	}
	v = b.oom ? NULL : arena_strndup(&r->a, b.p, b.len);
	sbuf_fini(&b);
	if (v == NULL)
		return -1;
	hdrs_del(&r->h.hdrs, "cookie");
	return hdrs_add(&r->a, &r->h.hdrs, "cookie", 6, v, strlen(v));
}

static void
stream_start(struct h2s *s)
{
	struct req *r = s->r;
	struct hdr *e;
	int m;

	s->started = 1;
	s->last_in_ms = s->last_out_ms = now_ms();
	METRIC_INC(&W(s->h)->m, h2_streams);
	r->head_bytes = s->hdr_bytes;
	r->h.major = 1;
	r->h.minor = 1;
	r->h.keep_alive = 1;
	r->h.target = s->path ? s->path : "";
	r->h.target_len = s->path_len;
	m = s->meth ? method_id(s->meth, s->meth_len) : -1;
	r->h.method = m < 0 ? HTTP_GET : m;
	if (s->too_large) {
		refuse_head(s, 431, "request head over client.max_header_size");
		return;
	}
	if (m < 0) {
		refuse_head(s, 400, "unknown method");
		return;
	}
	if (m == HTTP_CONNECT) {
		refuse_head(s, 400, "CONNECT not supported");
		return;
	}
	r->method = llhttp_method_name((llhttp_method_t)m);
	if (s->scheme == NULL || s->scheme_len != 5 || memcmp(s->scheme, "https", 5) != 0) {
		refuse_head(s, 400, ":scheme other than https");
		return;
	}
	if (s->path == NULL || !(s->path[0] == '/' ||
	    (s->path_len == 1 && s->path[0] == '*' && m == HTTP_OPTIONS))) {
		refuse_head(s, 400, ":path not in origin form");
		return;
	}
	if (s->auth) {
		int hosts = hdrs_count(&r->h.hdrs, "host");
		if (hosts == 0) {
			if (hdrs_add(&r->a, &r->h.hdrs, "host", 4, s->auth, s->auth_len) < 0) {
				refuse_head(s, 500, "out of memory");
				return;
			}
		} else if (hosts == 1) {
			e = hdrs_get(&r->h.hdrs, "host");
			if (ascii_casecmp_n(e->val, e->vlen, s->auth, s->auth_len) != 0) {
				refuse_head(s, 400, ":authority and Host disagree");
				return;
			}
		}
	}
	if (join_cookies(r) < 0) {
		refuse_head(s, 500, "out of memory");
		return;
	}
	if ((e = hdrs_get(&r->h.hdrs, "content-length")) != NULL) {
		uint64_t v = 0;
		uint32_t i;
		/* nghttp2 checked it is one number and will check it against the DATA */
		for (i = 0; i < e->vlen && e->val[i] >= '0' && e->val[i] <= '9' &&
		    v < (UINT64_MAX - 9) / 10; i++)
			v = v * 10 + (uint64_t)(e->val[i] - '0');
		r->h.has_cl = 1;
		r->h.content_length = v;
	} else if (s->in_end) {
		/* the whole body is here already: its length is known */
		r->h.has_cl = evbuffer_get_length(s->in) > 0;
		r->h.content_length = evbuffer_get_length(s->in);
	} else {
		r->h.chunked = 1;   /* towards the upstream: length unknown, re-chunked */
	}
	r->body_done = !r->h.chunked && r->h.content_length == 0;
	req_start(r);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static ssize_t
cb_send(nghttp2_session *ss, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct h2conn *h = ud;

	(void)ss;
	(void)flags;
	if (evbuffer_get_length(h->c->s.out) >= H2_OUT_MAX) {
		h->blocked = 1;
		return NGHTTP2_ERR_WOULDBLOCK;
	}
	if (evbuffer_add(h->c->s.out, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	h->last_ms = now_ms();
	return (ssize_t)len;
}

static int
cb_begin_frame(nghttp2_session *ss, const nghttp2_frame_hd *hd, void *ud)
{
	struct h2conn *h = ud;
	size_t max = (size_t)h->c->conf->client.max_header_size;

	(void)ss;
	h->last_ms = now_ms();
	h->trimmed = 0;
	if (hd->type == NGHTTP2_HEADERS) {
		h->block_bytes = hd->length;
		h->block_frames = 1;
	} else if (hd->type == NGHTTP2_CONTINUATION) {
		h->block_bytes += hd->length;
		h->block_frames++;
		if (hd->length == 0)
			count_ctrl(h);
	} else {
		return 0;
	}
	/* HPACK seldom grows a head; twice the decoded limit on the wire is never legitimate */
	if (h->block_frames > H2_BLOCK_FRAMES || h->block_bytes > 2 * max + 1024)
		h2_refuse_conn(h, H2R_HEADER_BLOCK, NGHTTP2_ENHANCE_YOUR_CALM,
		    "header block too large or in too many CONTINUATION frames");
	return 0;
}

static int
cb_begin_headers(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s;
	struct req *r;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST || h->counted)
		return 0;
	s = calloc(1, sizeof(*s));
	r = s ? req_new(h->c) : NULL;
	if (r == NULL || (s->in = evbuffer_new()) == NULL || (s->out = evbuffer_new()) == NULL) {
		if (r)
			req_free(r);
		if (s) {
			evbuf_free(&s->in);
			free(s);
		}
		log_warn("HTTP/2: cannot start a stream: out of memory");
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->h = h;
	s->id = f->hd.stream_id;
	s->r = r;
	s->born_ms = now_ms();
	r->tx = &h2_tx;
	r->tx_arg = s;
	TAILQ_INSERT_TAIL(&h->streams, s, link);
	h->nstreams++;
	nghttp2_session_set_stream_user_data(ss, s->id, s);
	if (!h->ticking)
		timer_arm(h);            /* from the idle wait to the stream tick */
	return 0;
}

static int
cb_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name, size_t nl,
    const uint8_t *val, size_t vl, uint8_t flags, void *ud)
{
	struct h2conn *h = ud;
	size_t max = (size_t)h->c->conf->client.max_header_size;
	struct h2s *s;
	struct req *r;
	char *n, *v;

	(void)flags;
	if (h->counted || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = stream_of(h, f->hd.stream_id);
	if (s == NULL || s->bad)
		return 0;
	/* as an HTTP/1.1 head counts it: name, ": ", value, CRLF */
	s->hdr_bytes += nl + vl + 4;
	if (s->hdr_bytes > 4 * max) {
		h2_refuse_conn(h, H2R_HEADER_BLOCK, NGHTTP2_ENHANCE_YOUR_CALM,
		    "decoded header block over four times client.max_header_size (HPACK bomb)");
		return 0;
	}
	if (s->hdr_bytes > max)
		s->too_large = 1;
	if (s->too_large || f->headers.cat != NGHTTP2_HCAT_REQUEST || (r = s->r) == NULL)
		return 0;          /* trailers: dropped, as an HTTP/1.1 body's are */
	n = arena_strndup(&r->a, (const char *)name, nl);
	v = arena_strndup(&r->a, (const char *)val, vl);
	if (n == NULL || v == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (nl > 0 && n[0] == ':') {
		/* nghttp2 lets each through once, before the regular ones */
		if (nl == 7 && memcmp(n, ":method", 7) == 0) {
			s->meth = v;
			s->meth_len = vl;
		} else if (nl == 7 && memcmp(n, ":scheme", 7) == 0) {
			s->scheme = v;
			s->scheme_len = vl;
		} else if (nl == 5 && memcmp(n, ":path", 5) == 0) {
			s->path = v;
			s->path_len = vl;
		} else if (nl == 10 && memcmp(n, ":authority", 10) == 0) {
			s->auth = v;
			s->auth_len = vl;
		}
		return 0;
	}
	if (hdrs_add(&r->a, &r->h.hdrs, n, nl, v, vl) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	(void)ss;
	return 0;
}

/* A field nghttp2 would drop silently (an invalid name or value character): the stream is
 * refused instead, as an HTTP/1.1 head with such a field gets a 400. */
static int
cb_invalid_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name, size_t nl,
    const uint8_t *val, size_t vl, uint8_t flags, void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s = stream_of(h, f->hd.stream_id);

	(void)name;
	(void)nl;
	(void)val;
	(void)vl;
	(void)flags;
	if (s && !s->bad) {
		s->bad = 1;
		log_debug("HTTP/2: stream %d from %s reset: invalid header field", (int)s->id,
		    h->c->ip);
		nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		    NGHTTP2_PROTOCOL_ERROR);
	}
	return 0;
}

static int
cb_frame_recv(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s = f->hd.stream_id ? stream_of(h, f->hd.stream_id) : NULL;

	(void)ss;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (s && (f->hd.flags & NGHTTP2_FLAG_END_HEADERS) &&
		    f->headers.cat == NGHTTP2_HCAT_REQUEST)
			s->head_ready = 1;
		if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			s->in_end = 1;
		break;
	case NGHTTP2_DATA:
		if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			s->in_end = 1;
		else if (f->hd.length == 0)
			count_ctrl(h);
		break;
	case NGHTTP2_RST_STREAM:
		win_roll(h);
		if (++h->win_resets > (unsigned)h->c->conf->http2.max_resets)
			h2_refuse_conn(h, H2R_RAPID_RESET, NGHTTP2_ENHANCE_YOUR_CALM,
			    "client resets over http2.max_resets in 10 s (rapid reset)");
		break;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			count_ctrl(h);
		break;
	case NGHTTP2_PRIORITY:
		count_ctrl(h);
		break;
	default:
		break;
	}
	return 0;
}

static int
cb_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s = stream_of(h, id);

	(void)flags;
	if (s == NULL || s->r == NULL || s->bad || (s->started && s->r->body_done)) {
		/* nobody will read it: the windows open again at once */
		nghttp2_session_consume(ss, id, len);
		return 0;
	}
	s->last_in_ms = now_ms();
	if (evbuffer_add(s->in, data, len) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int
cb_frame_send(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			break;
		s = stream_of(h, f->hd.stream_id);
		if (s == NULL)
			break;
		s->sent_end = 1;
		/* RFC 9113 §8.1: a complete answer before the whole request; the rest is not
		 * wanted */
		if (!s->in_end && !s->closed)
			nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
		break;
	case NGHTTP2_RST_STREAM:
		if (f->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR)
			refusal(h, H2R_MALFORMED);
		else if (f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
			refusal(h, H2R_REFUSED_STREAM);
		break;
	case NGHTTP2_GOAWAY:
		h->goaway = 1;
		if (f->goaway.error_code != NGHTTP2_NO_ERROR && !h->counted) {
			h->counted = 1;
			refusal(h, H2R_PROTOCOL);
			log_info("HTTP/2: GOAWAY to %s: protocol error %u", h->c->ip,
			    f->goaway.error_code);
		}
		break;
	default:
		break;
	}
	return 0;
}

static int
cb_stream_close(nghttp2_session *ss, int32_t id, uint32_t code, void *ud)
{
	struct h2conn *h = ud;
	struct h2s *s = stream_of(h, id);
	size_t n;

	(void)code;
	if (s == NULL || h->freeing)
		return 0;
	s->closed = 1;
	h->nstreams--;
	/* bytes nobody will take: the connection's window gets them back */
	if ((n = evbuffer_get_length(s->in)) > 0) {
		evbuffer_drain(s->in, n);
		nghttp2_session_consume_connection(ss, n);
	}
	nghttp2_session_set_stream_user_data(ss, id, NULL);
	h2_kick(h);
	return 0;
}

/* ---- the connection -------------------------------------------------------------------- */

/* The connection is done: it closes now, or once its output has left (the drained event). */
static void
close_when_sent(struct conn *c)
{
	if (evbuffer_get_length(c->s.out) == 0)
		conn_close(c);
	else
		sock_notify_drained(&c->s, 0);
}

static void
h2_check_end(struct h2conn *h)
{
	struct conn *c = h->c;

	if (c->dead || h->busy)
		return;
	if (nghttp2_session_want_read(h->ss) || nghttp2_session_want_write(h->ss))
		return;
	/* done (GOAWAY either way and no stream left): close once the output has left */
	close_when_sent(c);
}

/* Frames everything queued and writes it: one TLS write for all that the streams produced
 * since the last one. */
static void
h2_send(struct h2conn *h)
{
	struct conn *c = h->c;

	if (c->dead)
		return;
	if (h->fatal) {
		sock_flush(&c->s);
		return;
	}
	if (h->busy) {
		h->want_send = 1;
		return;
	}
	h->busy++;
	do {
		h->want_send = 0;
		if (nghttp2_session_send(h->ss) != 0) {
			h->busy--;
			conn_close(c);
			return;
		}
	} while (h->want_send && !h->blocked);
	h->busy--;
	sock_flush(&c->s);
	if (h->blocked)
		sock_notify_drained(&c->s, H2_OUT_MAX / 2);
	h2_check_end(h);
}

/* conn_flush and the transport's flush: the write happens from the kick event, after the
 * callbacks of this loop turn (upstream answers for many streams, typically) have queued
 * theirs, so they leave together — one write instead of one per stream. */
void
h2_flush(struct h2conn *h)
{
	h2_kick(h);
}

/* Everything the callbacks only marked: aborts, drained answers, bodies, frees; then the
 * write. */
static void
h2_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2conn *h = arg;
	struct h2s *s, *next;
	struct req *r;

	(void)fd;
	(void)what;
	h->kicked = 0;
	if (h->c->dead || h->fatal)
		return;
	for (s = TAILQ_FIRST(&h->streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		if ((r = s->r) != NULL) {
			if (!s->started) {
				if (s->closed || s->bad) {
					s->r = NULL;
					req_free(r);          /* refused before it was a request */
				}
			} else if (s->closed && !req_finished(r)) {
				s->r = NULL;
				req_abort(r);                 /* the client reset it: 499 */
			} else {
				if (s->drained) {
					s->drained = 0;
					req_client_drained(r);
				}
				if (s->r == r)
					stream_feed(s);
				if (s->r == r && req_finished(r)) {
					size_t left = evbuffer_get_length(s->in);
					s->r = NULL;
					req_free(r);
					if (left > 0) {     /* a body nobody will read */
						evbuffer_drain(s->in, left);
						if (!s->closed)
							nghttp2_session_consume(h->ss, s->id, left);
						else
							nghttp2_session_consume_connection(h->ss, left);
					}
					if (!s->closed && s->sent_end && !s->in_end)
						nghttp2_submit_rst_stream(h->ss, NGHTTP2_FLAG_NONE, s->id,
						    NGHTTP2_NO_ERROR);
				}
			}
		}
		if (s->r == NULL && s->closed)
			stream_free(s);
		if (h->c->dead)
			return;
	}
	h2_send(h);
}

static void
h2_kick(struct h2conn *h)
{
	if (!h->kicked && !h->c->dead) {
		h->kicked = 1;
		event_active(h->kick, EV_TIMEOUT, 0);
	}
}

/* nghttp2 gave up on the session (a bad preface, a flood it detects itself, too many
 * CONTINUATION frames): it cannot be used to send any more, so the GOAWAY is written here,
 * after whatever was framed already, and the connection closes once it has left. */
static void
h2_fatal(struct h2conn *h, int rv)
{
	struct conn *c = h->c;
	uint8_t g[17] = { 0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0 };
	uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(h->ss);
	uint32_t code = NGHTTP2_PROTOCOL_ERROR;
	enum h2_refusal why = H2R_PROTOCOL;
	struct h2s *s;

	if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
		code = NGHTTP2_ENHANCE_YOUR_CALM;
		why = H2R_HEADER_BLOCK;
	} else if (rv == NGHTTP2_ERR_FLOODED) {
		code = NGHTTP2_ENHANCE_YOUR_CALM;
		why = H2R_FLOOD;
	}
	if (!h->counted) {
		h->counted = 1;
		refusal(h, why);
		if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
			log_debug("HTTP/2: connection from %s closed: %s", c->ip, nghttp2_strerror(rv));
		else
			log_warn("HTTP/2: GOAWAY to %s: %s", c->ip, nghttp2_strerror(rv));
	}
	h->goaway = 1;
	g[9] = (uint8_t)(last >> 24);
	g[10] = (uint8_t)(last >> 16);
	g[11] = (uint8_t)(last >> 8);
	g[12] = (uint8_t)last;
	g[13] = (uint8_t)(code >> 24);
	g[14] = (uint8_t)(code >> 16);
	g[15] = (uint8_t)(code >> 8);
	g[16] = (uint8_t)code;
	evbuffer_drain(c->s.in, evbuffer_get_length(c->s.in));
	if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
		evbuffer_add(c->s.out, g, sizeof(g));
	h->fatal = 1;
	TAILQ_FOREACH(s, &h->streams, link)
		s->closed = 1;           /* the transport hooks do nothing more on them */
	sock_read_stop(&c->s);
	sock_flush(&c->s);
	close_when_sent(c);
}

static void
h2_input(struct h2conn *h)
{
	struct conn *c = h->c;
	struct evbuffer_iovec v;
	struct h2s *s, *next;
	ssize_t rv;
	size_t n;

	h->busy++;
	while (!c->dead && !h->counted && evbuffer_get_length(c->s.in) > 0) {
		evbuffer_peek(c->s.in, -1, NULL, &v, 1);
		n = v.iov_len < H2_SLICE ? v.iov_len : H2_SLICE;
		rv = nghttp2_session_mem_recv(h->ss, v.iov_base, n);
		if (rv < 0) {
			h->busy--;
			h2_fatal(h, (int)rv);
			return;
		}
		evbuffer_drain(c->s.in, (size_t)rv);
	}
	if (h->counted)     /* GOAWAY queued: nothing more is read */
		evbuffer_drain(c->s.in, evbuffer_get_length(c->s.in));
	h->busy--;
	/* heads that completed in this pass become requests; bodies go where they can */
	for (s = TAILQ_FIRST(&h->streams); s != NULL && !c->dead; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->head_ready && !s->started && !s->bad && !s->closed && s->r)
			stream_start(s);
		else if (s->started && s->r)
			stream_feed(s);
	}
	h2_kick(h);
	h2_send(h);
}

static void
h2_sock_cb(struct sock *sk, int ev, void *arg)
{
	struct h2conn *h = arg;
	struct conn *c = h->c;

	(void)sk;
	if (c->dead)
		return;
	if (ev & SOCK_EV_ERROR) {
		conn_close(c);
		return;
	}
	if (ev & SOCK_EV_DRAINED) {
		h->blocked = 0;
		if (h->fatal) {
			if (evbuffer_get_length(c->s.out) == 0)
				conn_close(c);
			return;
		}
		h2_send(h);
		if (c->dead)
			return;
	}
	if ((ev & SOCK_EV_READ) && !h->fatal)
		h2_input(h);
	if (!c->dead && (ev & SOCK_EV_EOF))
		conn_close(c);       /* an HTTP/2 client that stops sending is gone */
}

/* With streams open the timer ticks every second (their timeouts); without, it waits for
 * the rest of idle_timeout, so an idle connection costs no wake-ups. */
static void
timer_arm(struct h2conn *h)
{
	struct timeval tmp;
	int64_t ms = H2_TICK_MS;

	h->ticking = h->nstreams > 0;
	if (!h->ticking) {
		int64_t idle = W(h)->conf->client.idle_timeout_ms;
		if (!h->trimmed && idle > H2_TRIM_MS)
			idle = H2_TRIM_MS;
		ms = idle - (now_ms() - h->last_ms);
		if (ms < 1)
			ms = 1;
	}
	evtimer_add(h->timer, worker_timeout(W(h), ms, &tmp));
}

static void
stream_timeout(struct h2s *s, const char *why)
{
	struct h2conn *h = s->h;

	refusal(h, H2R_TIMEOUT);
	log_debug("HTTP/2: stream %d from %s: %s", (int)s->id, h->c->ip, why);
	if (s->r && s->started && !s->r->head_sent) {
		req_fail_head(s->r, 408, why);
	} else {
		nghttp2_submit_rst_stream(h->ss, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
		s->bad = 1;
	}
}

/* The connection's own timer (timer_arm): the idle close, TLS buffers trimmed, the streams'
 * header, body and send timeouts. */
static void
h2_timer(struct h2conn *h)
{
	const struct conf *cf = W(h)->conf;
	int64_t now = now_ms();
	struct h2s *s;

	if (h->c->dead || h->fatal)
		return;
	if (h->nstreams == 0) {
		/* as conn.c does for an idle HTTP/1.1 connection: ~34 KiB of TLS record buffers
		 * back after a second (OpenSSL refuses while it holds unread bytes) */
		if (!h->trimmed && now - h->last_ms >= H2_TRIM_MS &&
		    evbuffer_get_length(h->c->s.out) == 0) {
			h->trimmed = 1;
			if (h->c->s.ssl)
				SSL_free_buffers(h->c->s.ssl);
		}
		if (now - h->last_ms >= cf->client.idle_timeout_ms) {
			/* idle: a polite GOAWAY, then the close */
			if (!h->goaway) {
				h->goaway = 1;
				nghttp2_submit_goaway(h->ss, NGHTTP2_FLAG_NONE,
				    nghttp2_session_get_last_proc_stream_id(h->ss), NGHTTP2_NO_ERROR,
				    NULL, 0);
			}
			h2_send(h);
			if (!h->c->dead)
				conn_close(h->c);
			return;
		}
	}
	TAILQ_FOREACH(s, &h->streams, link) {
		if (s->closed || s->bad)
			continue;
		if (!s->started) {
			if (now - s->born_ms >= cf->client.header_timeout_ms)
				stream_timeout(s, "header timeout");
		} else if (s->r && !s->r->body_done && !s->body_paused &&
		    evbuffer_get_length(s->in) == 0 && now - s->last_in_ms >= cf->client.idle_timeout_ms) {
			stream_timeout(s, "body timeout");
		} else if (s->head_out && !s->sent_end && evbuffer_get_length(s->out) > 0 &&
		    now - s->last_out_ms >= cf->client.idle_timeout_ms) {
			/* the client keeps its window shut (or stopped reading) */
			stream_timeout(s, "send timeout (the client's window stays closed)");
		}
	}
	h2_kick(h);
}

static void
h2_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2conn *h = arg;

	(void)fd;
	(void)what;
	if (h->c->dead)
		return;
	h2_timer(h);
	if (!h->c->dead)
		timer_arm(h);
}

int
h2_negotiated(const struct conn *c)
{
	const unsigned char *p;
	unsigned int n = 0;

	if (c->s.ssl == NULL)
		return 0;
	SSL_get0_alpn_selected(c->s.ssl, &p, &n);
	return n == 2 && p[0] == 'h' && p[1] == '2';
}

int
h2_begin(struct conn *c)
{
	const struct conf *cf = c->conf;
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	struct h2conn *h;
	nghttp2_settings_entry set[4];
	int ok = 0;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -1;
	h->c = c;
	TAILQ_INIT(&h->streams);
	h->last_ms = h->win_start_ms = now_ms();
	if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, cb_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
	nghttp2_session_callbacks_set_on_invalid_header_callback(cbs, cb_invalid_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
	/* windows open as requests take the bytes, not as nghttp2 receives them */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	/* no priority tree of closed streams to grow */
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_max_settings(opt, 32);
	if (nghttp2_session_server_new2(&h->ss, cbs, h, opt) != 0)
		goto fail;
	set[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
	    (uint32_t)cf->http2.max_concurrent_streams };
	set[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
	    (uint32_t)cf->http2.window_size };
	set[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
	    (uint32_t)cf->client.max_header_size };
	set[3] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 };
	if (nghttp2_submit_settings(h->ss, NGHTTP2_FLAG_NONE, set, 4) != 0 ||
	    nghttp2_session_set_local_window_size(h->ss, NGHTTP2_FLAG_NONE, 0,
	    (int32_t)cf->http2.connection_window) != 0)
		goto fail;
	h->kick = event_new(c->w->base, -1, 0, h2_kick_cb, h);
	h->timer = evtimer_new(c->w->base, h2_timer_cb, h);
	if (h->kick == NULL || h->timer == NULL)
		goto fail;
	ok = 1;
fail:
	if (cbs)
		nghttp2_session_callbacks_del(cbs);
	if (opt)
		nghttp2_option_del(opt);
	if (!ok) {
		h2_free(h);             /* no stream yet; ss, kick, timer as far as they were made */
		return -1;
	}
	c->h2 = h;
	METRIC_INC(&c->w->m, h2_conns);
	conn_h2_begin(c, h2_sock_cb, h);
	timer_arm(h);
	h2_input(h);
	/* accepted before the drain: the streams of its first read are served (as conn.c keeps
	 * an HTTP/1.1 connection's first request), the GOAWAY names them */
	if (W(h)->draining && !c->dead)
		h2_drain(h);
	return 0;
}

void
h2_drain(struct h2conn *h)
{
	if (h->c->dead || h->goaway || h->fatal)
		return;
	h->goaway = 1;
	nghttp2_submit_goaway(h->ss, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ss),
	    NGHTTP2_NO_ERROR, NULL, 0);
	h2_send(h);
}

void
h2_closing(struct h2conn *h)
{
	struct h2s *s;

	evtimer_del(h->timer);
	event_del(h->kick);
	TAILQ_FOREACH(s, &h->streams, link) {
		if (s->r && s->r->up) {
			struct upconn *u = s->r->up;
			s->r->up = NULL;
			up_release(u, 0);
		}
	}
}

void
h2_free(struct h2conn *h)
{
	struct h2s *s;

	h->freeing = 1;
	nghttp2_session_del(h->ss);
	while ((s = TAILQ_FIRST(&h->streams)) != NULL) {
		if (s->r) {
			if (s->started)
				req_abort(s->r);
			else
				req_free(s->r);
			s->r = NULL;
		}
		stream_free(s);
	}
	ev_free(&h->kick);
	ev_free(&h->timer);
	free(h);
}
