/* SPDX-License-Identifier: MIT
 * http — HTTP/1.1 message heads: llhttp glue (strict mode, Debian's node-llhttp sources),
 * header lists, and the framing checks llhttp leaves to us (Host count, Transfer-Encoding
 * other than exactly "chunked", request-target forms, versions).
 *
 * A parser collects one head's bytes contiguously in `raw` (header names/values as offsets
 * while parsing, since a head may arrive in pieces), pauses llhttp at the end of the head and
 * at the end of the message, and hands body bytes to its owner. http_head_take() moves the
 * finished head (raw bytes + header array) into a request's arena, so the parser can be
 * reused for the next message on a keep-alive connection.
 */
#ifndef VISOR_HTTP_H
#define VISOR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <llhttp.h>

#include "core/util.h"

struct hdr {
	const char *name;
	const char *val;
	uint32_t    nlen, vlen;
};

/* An ordered header list; entries point into memory that outlives the list (the request's
 * raw head or its arena). Storage for the array itself comes from the arena. */
struct hdrs {
	struct hdr *v;
	uint32_t    n, cap;
};

int  hdrs_add(struct arena *a, struct hdrs *h, const char *name, size_t nlen, const char *val,
    size_t vlen);
int  hdrs_adds(struct arena *a, struct hdrs *h, const char *name, const char *val);
/* First entry with that name (case-insensitive), or NULL. */
struct hdr *hdrs_get(const struct hdrs *h, const char *name);
struct hdr *hdrs_getn(const struct hdrs *h, const char *name, size_t nlen);
int  hdrs_count(const struct hdrs *h, const char *name);
/* Removes every entry with that name; returns how many. */
int  hdrs_del(struct hdrs *h, const char *name);
int  hdrs_deln(struct hdrs *h, const char *name, size_t nlen);
/* Removes every entry whose name starts with prefix (case-insensitive). */
void hdrs_del_prefix(struct hdrs *h, const char *prefix);
/* Replaces all entries of that name with one (value copied into the arena). */
int  hdrs_set(struct arena *a, struct hdrs *h, const char *name, const char *val, size_t vlen);
int  hdrs_sets(struct arena *a, struct hdrs *h, const char *name, const char *val);
/* hdrs_set without the copy: name and val must outlive the list (conf or arena strings). */
int  hdrs_put(struct arena *a, struct hdrs *h, const char *name, const char *val, size_t vlen);

/* Steps through a list (RFC 9110 §5.6.1: elements separated by `sep`, ',' or ';' for
 * cookies, optional whitespace around them, empty elements skipped): from *pos, the next
 * element in *tok / *tlen and 1; 0 at the end. Start with *pos = 0. */
int  http_list_next(const char *v, size_t vlen, char sep, size_t *pos, const char **tok,
    size_t *tlen);
/* Whether the comma-separated token list `v` contains `tok` (case-insensitive). */
int  http_list_has(const char *v, size_t vlen, const char *tok);
/* Hop-by-hop per RFC 9110 §7.6.1 plus the legacy ones (Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade). */
int  http_is_hop_by_hop(const char *name, size_t nlen);
/* Removes hop-by-hop headers and every header named by Connection. */
void http_strip_hop_by_hop(struct hdrs *h);
/* Removes every header whose name holds '_': CGI-style upstreams (PHP, WSGI, Rack) map
 * `X_User_Id` and `X-User-Id` to the same variable, so one would spoof the other. */
void http_drop_underscored(struct hdrs *h);
/* Standard reason phrase, "Unknown" for codes without one. */
const char *http_reason(int status);
/* Whether a response to `method` with `status` never has a body. */
int  http_status_no_body(int status);

/* ---- parsing -------------------------------------------------------------------- */

struct http_field {
	uint32_t no, nl, vo, vl;      /* offsets into raw */
};

enum http_perr {
	HTTP_OK = 0,
	HTTP_E_BAD,          /* 400 (request) / 502 (response) */
	HTTP_E_TOO_LARGE,    /* head over the size limit: 431 */
	HTTP_E_BODY_TOO_LARGE,
};

struct http_parser;
/* Owner hooks. Return 0 to go on, -1 to stop with an error. */
struct http_parser_ops {
	int (*on_head)(struct http_parser *p);            /* head complete (parser pauses after) */
	int (*on_body)(struct http_parser *p, const char *at, size_t n);
	int (*on_done)(struct http_parser *p);            /* message complete (parser pauses after) */
};

struct http_parser {
	llhttp_t                       ll;
	const struct http_parser_ops  *ops;
	void                          *owner;
	struct sbuf                    raw;       /* target + names + values of the current head */
	struct http_field             *fields;
	uint32_t                       nfields, capfields;
	uint32_t                       url_o, url_l;
	size_t                         head_bytes;
	size_t                         max_head;  /* 431 past it */
	uint32_t                       max_fields;
	int                            is_request;
	unsigned                       in_head : 1;
	unsigned                       head_done : 1;
	unsigned                       msg_done : 1;
	unsigned                       skip_body : 1;   /* response to HEAD */
	unsigned                       chunked : 1;
	unsigned                       name_open : 1;
	unsigned                       field_ready : 1; /* a name is complete, its value may come */
	unsigned                       trailers : 1;
	unsigned                       scan_lf : 1;     /* obs-fold scan: last head byte was LF */
	unsigned                       scan_end : 1;    /* obs-fold scan: blank line seen */
	unsigned                       scan_first : 1;  /* still in the request/status line */
	unsigned                       scan_sp : 1;     /* previous byte there was SP */
	enum http_perr                 err;
	const char                    *why;      /* reason for logs (static) */
};

void http_parser_init(struct http_parser *p, int is_request, const struct http_parser_ops *ops,
    void *owner, size_t max_head);
void http_parser_fini(struct http_parser *p);
/* Gives back the buffers kept between messages (an idle connection). */
void http_parser_trim(struct http_parser *p);
/* Prepares for the next message on the same stream (keeps allocations). */
void http_parser_next(struct http_parser *p);
/* Feeds bytes. Returns the number consumed (it stops early at the end of a head and at the
 * end of a message), or -1 on error (p->err, p->why). */
long http_parser_feed(struct http_parser *p, const char *data, size_t len);
/* The peer closed: completes a close-delimited message. 0 ok, -1 when the message was cut. */
int  http_parser_eof(struct http_parser *p);
/* Whether the current message is delimited by the connection closing (response only). */
int  http_parser_needs_eof(const struct http_parser *p);

/* A finished head, owned by a request: raw bytes (moved out of the parser) and headers. */
struct http_head {
	char        *raw;            /* unused (the head's bytes live in the request's arena) */
	int          method;         /* llhttp_method_t (request) */
	int          status;         /* response */
	const char  *target;         /* request-target as received (NUL-terminated) */
	size_t       target_len;
	int          major, minor;
	struct hdrs  hdrs;
	int          has_cl;
	uint64_t     content_length;
	int          chunked;
	int          keep_alive;     /* llhttp_should_keep_alive at head time */
};
/* Copies the parsed head into `h`: bytes and header array in the arena `a`, valid as long as
 * the arena. 0, or -1 on out of memory. */
int  http_head_take(struct http_parser *p, struct arena *a, struct http_head *h);
void http_head_fini(struct http_head *h);

/* Request-head checks beyond llhttp (docs/security.md, "Parsing and framing"): one Host, Transfer-Encoding
 * exactly "chunked", HTTP/1.0 or 1.1, origin-form target (absolute-form only when it names
 * the Host, then rewritten), no fragment. Returns NULL when fine, else a static reason. */
const char *http_request_check(struct http_head *h, struct arena *a);

#endif
