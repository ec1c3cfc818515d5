/* SPDX-License-Identifier: MIT
 * http — llhttp glue and header lists. llhttp is built in strict mode from Debian's
 * node-llhttp sources, so visor parses exactly like the Node upstream, only stricter: it
 * already refuses CL+TE, repeated Content-Length, bad chunk sizes, bare LF, invalid
 * token/value bytes. What llhttp allows but visor refuses (docs/security.md) (two Host, TE codings other
 * than a lone "chunked", odd target forms) is checked in http_request_check().
 */
#include "http/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- header lists ------------------------------------------------------------- */

int
hdrs_add(struct arena *a, struct hdrs *h, const char *name, size_t nlen, const char *val,
    size_t vlen)
{
	struct hdr *nv;

	if (h->n == h->cap) {
		uint32_t ncap = h->cap ? h->cap * 2 : 16;
		nv = arena_alloc(a, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		if (h->n)
			memcpy(nv, h->v, h->n * sizeof(*nv));
		h->v = nv;      /* the old array stays in the arena until the request ends */
		h->cap = ncap;
	}
	h->v[h->n].name = name;
	h->v[h->n].nlen = (uint32_t)nlen;
	h->v[h->n].val = val;
	h->v[h->n].vlen = (uint32_t)vlen;
	h->n++;
	return 0;
}

int
hdrs_adds(struct arena *a, struct hdrs *h, const char *name, const char *val)
{
	return hdrs_add(a, h, name, strlen(name), val, strlen(val));
}

struct hdr *
hdrs_getn(const struct hdrs *h, const char *name, size_t nlen)
{
	uint32_t i;

	for (i = 0; i < h->n; i++)
		if (ascii_casecmp_n(h->v[i].name, h->v[i].nlen, name, nlen) == 0)
			return &h->v[i];
	return NULL;
}

struct hdr *
hdrs_get(const struct hdrs *h, const char *name)
{
	return hdrs_getn(h, name, strlen(name));
}

int
hdrs_count(const struct hdrs *h, const char *name)
{
	size_t nl = strlen(name);
	uint32_t i;
	int c = 0;

	for (i = 0; i < h->n; i++)
		if (ascii_casecmp_n(h->v[i].name, h->v[i].nlen, name, nl) == 0)
			c++;
	return c;
}

/* Removes, in place and in order, every entry `drop` says yes to; returns how many. */
static int
hdrs_drop(struct hdrs *h, int (*drop)(const struct hdr *e, const void *arg), const void *arg)
{
	uint32_t i, j = 0;

	for (i = 0; i < h->n; i++) {
		if (drop(&h->v[i], arg))
			continue;
		if (i != j)
			h->v[j] = h->v[i];
		j++;
	}
	i = h->n - j;
	h->n = j;
	return (int)i;
}

struct hdr_name {
	const char *name;
	size_t      nlen;
};

static int
named(const struct hdr *e, const void *arg)
{
	const struct hdr_name *n = arg;

	return ascii_casecmp_n(e->name, e->nlen, n->name, n->nlen) == 0;
}

int
hdrs_deln(struct hdrs *h, const char *name, size_t nlen)
{
	struct hdr_name n = { name, nlen };

	return hdrs_drop(h, named, &n);
}

int
hdrs_del(struct hdrs *h, const char *name)
{
	return hdrs_deln(h, name, strlen(name));
}

static int
prefixed(const struct hdr *e, const void *prefix)
{
	return ascii_prefix_case(e->name, e->nlen, prefix);
}

void
hdrs_del_prefix(struct hdrs *h, const char *prefix)
{
	hdrs_drop(h, prefixed, prefix);
}

int
hdrs_set(struct arena *a, struct hdrs *h, const char *name, const char *val, size_t vlen)
{
	char *v = arena_strndup(a, val, vlen);

	return v ? hdrs_put(a, h, name, v, vlen) : -1;
}

int
hdrs_put(struct arena *a, struct hdrs *h, const char *name, const char *v, size_t vlen)
{
	struct hdr *e;

	e = hdrs_get(h, name);
	if (e) {
		/* Keep the first occurrence's position, drop the rest. */
		uint32_t idx = (uint32_t)(e - h->v);
		const char *nm = e->name;
		uint32_t nl = e->nlen;
		hdrs_deln(h, nm, nl);
		if (hdrs_add(a, h, name, strlen(name), v, vlen) < 0)
			return -1;
		/* move the new last entry back to idx */
		struct hdr tmp = h->v[h->n - 1];
		memmove(&h->v[idx + 1], &h->v[idx], (h->n - 1 - idx) * sizeof(tmp));
		h->v[idx] = tmp;
		return 0;
	}
	return hdrs_add(a, h, name, strlen(name), v, vlen);
}

int
hdrs_sets(struct arena *a, struct hdrs *h, const char *name, const char *val)
{
	return hdrs_set(a, h, name, val, strlen(val));
}

int
http_list_next(const char *v, size_t vlen, char sep, size_t *pos, const char **tok,
    size_t *tlen)
{
	size_t i = *pos, s, e;

	while (i < vlen) {
		while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == sep))
			i++;
		s = i;
		while (i < vlen && v[i] != sep)
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s) {
			*pos = i;
			*tok = v + s;
			*tlen = e - s;
			return 1;
		}
	}
	*pos = vlen;
	return 0;
}

int
http_list_has(const char *v, size_t vlen, const char *tok)
{
	size_t tl = strlen(tok), pos = 0, n;
	const char *t;

	while (http_list_next(v, vlen, ',', &pos, &t, &n))
		if (ascii_casecmp_n(t, n, tok, tl) == 0)
			return 1;
	return 0;
}

int
http_is_hop_by_hop(const char *n, size_t l)
{
	if (l >= 6 && ascii_casecmp_n(n, 6, "proxy-", 6) == 0)
		return 1;
	switch (l) {
	case 2:  return ascii_casecmp_n(n, l, "te", 2) == 0;
	case 7:  return ascii_casecmp_n(n, l, "trailer", 7) == 0 ||
		    ascii_casecmp_n(n, l, "upgrade", 7) == 0;
	case 10: return ascii_casecmp_n(n, l, "connection", 10) == 0 ||
		    ascii_casecmp_n(n, l, "keep-alive", 10) == 0;
	case 17: return ascii_casecmp_n(n, l, "transfer-encoding", 17) == 0;
	default: return 0;
	}
}

/* marked by http_strip_hop_by_hop (nlen 0), or hop-by-hop by name */
static int
hop_by_hop(const struct hdr *e, const void *arg)
{
	(void)arg;
	return e->nlen == 0 || http_is_hop_by_hop(e->name, e->nlen);
}

void
http_strip_hop_by_hop(struct hdrs *h)
{
	uint32_t i, k;

	/* Names listed in Connection go too (RFC 9110 §7.6.1). */
	for (i = 0; i < h->n; i++) {
		const char *t;
		size_t pos = 0, tl;
		if (ascii_casecmp_n(h->v[i].name, h->v[i].nlen, "connection", 10) != 0)
			continue;
		while (http_list_next(h->v[i].val, h->v[i].vlen, ',', &pos, &t, &tl))
			for (k = 0; k < h->n; k++)
				if (k != i && ascii_casecmp_n(h->v[k].name, h->v[k].nlen, t, tl) == 0)
					h->v[k].nlen = 0;   /* mark */
	}
	hdrs_drop(h, hop_by_hop, NULL);
}

static int
underscored(const struct hdr *e, const void *arg)
{
	(void)arg;
	return memchr(e->name, '_', e->nlen) != NULL;
}

void
http_drop_underscored(struct hdrs *h)
{
	hdrs_drop(h, underscored, NULL);
}

const char *
http_reason(int st)
{
	switch (st) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 207: return "Multi-Status";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 418: return "I'm a Teapot";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Entity";
	case 423: return "Locked";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default:  return "Unknown";
	}
}

int
http_status_no_body(int st)
{
	return (st >= 100 && st < 200) || st == 204 || st == 304;
}

/* ---- parser -------------------------------------------------------------------- */

/* The http_parser an llhttp callback belongs to. */
#define parser_of(ll) ((struct http_parser *)(ll)->data)

static int
parse_fail(struct http_parser *p, enum http_perr e, const char *why)
{
	p->err = e;
	p->why = why;
	return -1;
}

/* The head and message flags a new message starts without: llhttp's message begin and
 * http_parser_next (the caller's "next message") both clear them. */
static void
parser_msg_reset(struct http_parser *p)
{
	p->head_done = 0;
	p->msg_done = 0;
	p->name_open = 0;
	p->field_ready = 0;
}

static int
cb_message_begin(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	sbuf_reset(&p->raw);             /* kept across messages: no allocation per head */
	p->raw.oom = 0;
	p->nfields = 0;
	p->url_o = p->url_l = 0;
	p->head_bytes = 0;
	p->in_head = 1;
	p->trailers = 0;
	parser_msg_reset(p);
	return 0;
}

/* Appends a piece of the head to raw and counts it in *len. 0, or -1 out of memory. */
static int
raw_add(struct http_parser *p, const char *at, size_t n, uint32_t *len)
{
	sbuf_add(&p->raw, at, n);
	*len += (uint32_t)n;
	return p->raw.oom ? -1 : 0;
}

static int
cb_url(llhttp_t *ll, const char *at, size_t n)
{
	struct http_parser *p = parser_of(ll);

	return raw_add(p, at, n, &p->url_l);
}

static int
cb_url_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	sbuf_addc(&p->raw, '\0');
	return p->raw.oom ? -1 : 0;
}

static struct http_field *
cur_field(struct http_parser *p, int create)
{
	if (create) {
		if (p->nfields >= p->max_fields)
			return NULL;
		if (p->nfields == p->capfields) {
			uint32_t nc = p->capfields ? p->capfields * 2 : 32;
			struct http_field *nf = realloc(p->fields, nc * sizeof(*nf));
			if (nf == NULL)
				return NULL;
			p->fields = nf;
			p->capfields = nc;
		}
		memset(&p->fields[p->nfields], 0, sizeof(p->fields[0]));
		p->fields[p->nfields].no = (uint32_t)p->raw.len;
		p->fields[p->nfields].vo = UINT32_MAX;
	}
	return &p->fields[p->nfields];
}

static int
cb_header_field(llhttp_t *ll, const char *at, size_t n)
{
	struct http_parser *p = parser_of(ll);
	struct http_field *f;

	if (p->head_done) {
		p->trailers = 1;      /* trailers are parsed (for framing) and dropped */
		return 0;
	}
	f = cur_field(p, !p->name_open);
	if (f == NULL)
		return parse_fail(p, HTTP_E_TOO_LARGE, "too many header fields");
	p->name_open = 1;
	return raw_add(p, at, n, &f->nl);
}

static int
cb_header_field_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	if (p->head_done)
		return 0;
	if (!p->name_open || p->fields[p->nfields].nl == 0)
		return parse_fail(p, HTTP_E_BAD, "empty header name");
	p->name_open = 0;
	p->field_ready = 1;
	sbuf_addc(&p->raw, '\0');
	return p->raw.oom ? -1 : 0;
}

static int
cb_header_value(llhttp_t *ll, const char *at, size_t n)
{
	struct http_parser *p = parser_of(ll);
	struct http_field *f;

	if (p->head_done)
		return 0;
	if (!p->field_ready)           /* llhttp skips the name callbacks for ": value" */
		return parse_fail(p, HTTP_E_BAD, "empty header name");
	f = &p->fields[p->nfields];
	if (f->vo == UINT32_MAX)
		f->vo = (uint32_t)p->raw.len;
	return raw_add(p, at, n, &f->vl);
}

static int
cb_header_value_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);
	struct http_field *f;

	if (p->head_done)
		return 0;
	if (!p->field_ready)
		return parse_fail(p, HTTP_E_BAD, "empty header name");
	p->field_ready = 0;
	f = &p->fields[p->nfields];
	if (f->vo == UINT32_MAX)
		f->vo = (uint32_t)p->raw.len;
	/* llhttp keeps trailing whitespace in the value; RFC 9110 §5.5 says it is not part of it. */
	while (f->vl > 0 && (p->raw.p[f->vo + f->vl - 1] == ' ' || p->raw.p[f->vo + f->vl - 1] == '\t'))
		f->vl--;
	sbuf_addc(&p->raw, '\0');
	p->nfields++;
	return p->raw.oom ? -1 : 0;
}

static int
cb_headers_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	p->in_head = 0;
	p->head_done = 1;
	p->chunked = (ll->flags & F_CHUNKED) != 0;
	if (p->ops->on_head(p) < 0) {
		if (p->err == HTTP_OK)
			parse_fail(p, HTTP_E_BAD, "rejected by owner");
		return -1;
	}
	if (p->skip_body)
		ll->flags |= F_SKIPBODY;
	return HPE_PAUSED;
}

static int
cb_body(llhttp_t *ll, const char *at, size_t n)
{
	struct http_parser *p = parser_of(ll);

	/* llhttp closes an open body span at the end of every execute, with no bytes when the
	 * pass had none: a zero-length chunk towards the client would end its body early. */
	if (n == 0)
		return 0;
	if (p->ops->on_body(p, at, n) < 0) {
		if (p->err == HTTP_OK)
			parse_fail(p, HTTP_E_BAD, "body refused");
		return HPE_USER;
	}
	return 0;
}

static int
cb_message_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	p->msg_done = 1;
	if (p->ops->on_done(p) < 0) {
		if (p->err == HTTP_OK)
			parse_fail(p, HTTP_E_BAD, "rejected by owner");
		return -1;
	}
	return HPE_PAUSED;
}

static const llhttp_settings_t http_settings = {
	.on_message_begin = cb_message_begin,
	.on_url = cb_url,
	.on_url_complete = cb_url_complete,
	.on_header_field = cb_header_field,
	.on_header_field_complete = cb_header_field_complete,
	.on_header_value = cb_header_value,
	.on_header_value_complete = cb_header_value_complete,
	.on_headers_complete = cb_headers_complete,
	.on_body = cb_body,
	.on_message_complete = cb_message_complete,
};

void
http_parser_init(struct http_parser *p, int is_request, const struct http_parser_ops *ops,
    void *owner, size_t max_head)
{
	memset(p, 0, sizeof(*p));
	llhttp_init(&p->ll, is_request ? HTTP_REQUEST : HTTP_RESPONSE, &http_settings);
	p->ll.data = p;
	p->ops = ops;
	p->owner = owner;
	p->is_request = is_request;
	p->max_head = max_head;
	p->max_fields = 256;
}

void
http_parser_fini(struct http_parser *p)
{
	sbuf_fini(&p->raw);
	free(p->fields);
	p->fields = NULL;
	p->nfields = p->capfields = 0;
}

void
http_parser_trim(struct http_parser *p)
{
	sbuf_fini(&p->raw);
	free(p->fields);
	p->fields = NULL;
	p->capfields = 0;
	p->nfields = 0;
}

void
http_parser_next(struct http_parser *p)
{
	parser_msg_reset(p);
	p->in_head = 0;
	p->skip_body = 0;
	p->chunked = 0;
	p->err = HTTP_OK;
	p->why = NULL;
}

/* llhttp accepts obs-fold (a header line starting with SP/HTAB continues the previous
 * value); visor refuses it (docs/security.md), as RFC 9112 §5.2 allows. Any LF in a head followed by SP or
 * HTAB is a fold (or whitespace before the first field, equally refused). Scans only up to
 * the blank line that ends the head; the state survives heads split across reads. */
static int
obs_fold_scan(struct http_parser *p, const char *d, size_t n)
{
	const char *q = d, *end = d + n, *lf;

	if (p->scan_end || n == 0)
		return 0;
	/* The request line: llhttp takes "GET  / HTTP/1.1"; RFC 9112 §3 has exactly one SP
	 * between the parts, and a proxy that splits differently from its peer is a smuggling
	 * vector, so refuse (responses are not checked: a reason phrase may hold spaces). */
	while (p->scan_first && q < end) {
		if (*q == ' ') {
			if (p->scan_sp)
				return -1;
			p->scan_sp = 1;
		} else {
			p->scan_sp = 0;
			if (*q == '\n') {
				p->scan_first = 0;
				p->scan_lf = 1;
			}
		}
		q++;
	}
	if (q == end)
		return 0;
	/* From here: every LF must be followed by a field name or the blank line. */
	for (;;) {
		if (p->scan_lf) {
			p->scan_lf = 0;
			if (*q == ' ' || *q == '\t')
				return -1;
			if (*q == '\r' || *q == '\n') {
				p->scan_end = 1;
				return 0;
			}
		}
		lf = memchr(q, '\n', (size_t)(end - q));
		if (lf == NULL)
			return 0;
		p->scan_lf = 1;
		q = lf + 1;
		if (q == end)
			return 0;
	}
}

long
http_parser_feed(struct http_parser *p, const char *data, size_t len)
{
	size_t n = len, used;
	llhttp_errno_t e;
	int limited = 0, was_head = !p->head_done;

	if (p->err != HTTP_OK)
		return -1;
	/* Bound the head: hand llhttp at most what is left of max_head while no head is done. */
	if (!p->head_done) {
		size_t room = p->max_head > p->head_bytes ? p->max_head - p->head_bytes : 0;
		if (n > room) {
			n = room;
			limited = 1;
		}
	}
	if (!p->head_done) {
		if (!p->in_head) {
			/* A new message may start in this chunk: reset the scan. Leading SP or a
			 * doubled SP in the start line is refused as well. */
			p->scan_lf = 0;
			p->scan_end = 0;
			p->scan_first = p->is_request;
			p->scan_sp = 1;
		}
		if (obs_fold_scan(p, data, n) < 0) {
			p->err = HTTP_E_BAD;
			p->why = "obs-fold or malformed start line";
			return -1;
		}
	}
	e = llhttp_execute(&p->ll, data, n);
	if (e == HPE_OK) {
		used = n;
	} else if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		used = (size_t)(llhttp_get_error_pos(&p->ll) - data);
		if (e == HPE_PAUSED_UPGRADE)
			llhttp_resume_after_upgrade(&p->ll);
		else
			llhttp_resume(&p->ll);
	} else {
		if (p->err == HTTP_OK) {
			p->err = HTTP_E_BAD;
			p->why = llhttp_get_error_reason(&p->ll);
			if (p->why == NULL)
				p->why = llhttp_errno_name(e);
		}
		return -1;
	}
	/* message_begin zeroed head_bytes inside llhttp_execute, so this counts from there */
	if (was_head)
		p->head_bytes += used;
	if (!p->head_done && limited && used == n) {
		p->err = HTTP_E_TOO_LARGE;
		p->why = "head too large";
		return -1;
	}
	return (long)used;
}

int
http_parser_eof(struct http_parser *p)
{
	llhttp_errno_t e;

	/* A head just parsed leaves llhttp paused before it has chosen how the body ends; an
	 * empty pass moves it into the read-until-close state, so that finish completes the
	 * message instead of calling the EOF premature. */
	if (p->head_done && !p->msg_done && http_parser_feed(p, "", 0) < 0)
		return -1;
	e = llhttp_finish(&p->ll);

	if (e == HPE_OK || e == HPE_PAUSED)
		return p->msg_done || !p->in_head ? 0 : -1;
	return -1;
}

int
http_parser_needs_eof(const struct http_parser *p)
{
	return llhttp_message_needs_eof(&p->ll);
}

int
http_head_take(struct http_parser *p, struct arena *a, struct http_head *h)
{
	uint32_t i;
	struct hdr *v = NULL;
	char *raw;

	memset(h, 0, sizeof(*h));
	if (p->raw.oom)
		return -1;
	/* The head's bytes move into the request's arena (one copy of a few hundred bytes),
	 * so the parser keeps its buffer for the next message on the connection. */
	raw = arena_alloc(a, p->raw.len + 1);
	if (raw == NULL)
		return -1;
	if (p->raw.len)
		memcpy(raw, p->raw.p, p->raw.len);
	raw[p->raw.len] = '\0';
	if (p->nfields) {
		v = arena_alloc(a, p->nfields * sizeof(*v));
		if (v == NULL)
			return -1;
	}
	for (i = 0; i < p->nfields; i++) {
		v[i].name = raw + p->fields[i].no;
		v[i].nlen = p->fields[i].nl;
		v[i].val = raw + p->fields[i].vo;
		v[i].vlen = p->fields[i].vl;
	}
	h->hdrs.v = v;
	h->hdrs.n = h->hdrs.cap = p->nfields;
	h->raw = NULL;                   /* arena-owned */
	h->target = raw + p->url_o;
	h->target_len = p->url_l;
	if (p->url_l == 0)
		h->target = "";
	h->method = llhttp_get_method(&p->ll);
	h->status = llhttp_get_status_code(&p->ll);
	h->major = llhttp_get_http_major(&p->ll);
	h->minor = llhttp_get_http_minor(&p->ll);
	h->chunked = p->chunked;
	h->has_cl = (p->ll.flags & F_CONTENT_LENGTH) != 0;
	h->content_length = h->has_cl ? p->ll.content_length : 0;
	h->keep_alive = llhttp_should_keep_alive(&p->ll);
	sbuf_reset(&p->raw);
	/* a huge head should not pin its buffer for the connection's life */
	if (p->raw.cap > 16 * 1024)
		sbuf_fini(&p->raw);
	return 0;
}

void
http_head_fini(struct http_head *h)
{
	free(h->raw);
	h->raw = NULL;
}

const char *
http_request_check(struct http_head *h, struct arena *a)
{
	struct hdr *host, *te;
	const char *t = h->target;
	size_t tl = h->target_len, i;

	if (h->major != 1 || h->minor > 1)
		return "unsupported HTTP version";
	if (hdrs_count(&h->hdrs, "host") != 1)
		return "missing or repeated Host";
	host = hdrs_get(&h->hdrs, "host");
	if (host->vlen == 0)
		return "empty Host";
	for (i = 0; i < host->vlen; i++) {
		char c = host->val[i];
		/* reg-name / IP-literal / port characters only (RFC 3986 §3.2.2) */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~'))
			return "invalid Host";
	}
	if (hdrs_count(&h->hdrs, "transfer-encoding") > 1)
		return "repeated Transfer-Encoding";
	te = hdrs_get(&h->hdrs, "transfer-encoding");
	if (te && ascii_casecmp_n(te->val, te->vlen, "chunked", 7) != 0)
		return "transfer coding other than chunked";
	/* RFC 9112 §6.1: an HTTP/1.0 recipient may not know chunked, so the framing is faulty */
	if (te && h->minor == 0)
		return "Transfer-Encoding in HTTP/1.0";
	if (h->method == HTTP_CONNECT)
		return "CONNECT not supported";
	if (tl == 0)
		return "empty target";
	for (i = 0; i < tl; i++)
		if (t[i] == '#' || (unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return "invalid target";
	if (t[0] == '/')
		return NULL;
	if (tl == 1 && t[0] == '*' && h->method == HTTP_OPTIONS)
		return NULL;
	/* absolute-form: accepted only when it names the Host it arrived with (RFC 9112 §3.2.2
	 * lets the target override Host; refusing a mismatch keeps both views identical). */
	if (ascii_prefix_case(t, tl, "http://") || ascii_prefix_case(t, tl, "https://")) {
		const char *auth = strstr(t, "//") + 2, *path;
		size_t al;
		path = auth;
		while (*path && *path != '/' && *path != '?')
			path++;
		al = (size_t)(path - auth);
		if (al == 0 || memchr(auth, '@', al))
			return "invalid absolute-form target";
		if (ascii_casecmp_n(auth, al, host->val, host->vlen) != 0)
			return "absolute-form target names another host";
		if (*path == '\0') {
			h->target = "/";
			h->target_len = 1;
		} else if (*path == '?') {
			char *nt = arena_printf(a, "/%s", path);
			if (nt == NULL)
				return "out of memory";
			h->target = nt;
			h->target_len = strlen(nt);
		} else {
			h->target = path;
			h->target_len = tl - (size_t)(path - t);
		}
		return NULL;
	}
	return "invalid target form";
}
