/* SPDX-License-Identifier: MIT
 * req — one request's life: head checks, routing, the filter chain (run / suspend /
 * resume / abort), edge answers, forwarding to the upstream with the body streamed both
 * ways, the response phase and the access log.
 *
 * Ownership: a req is created by its client connection when a head is complete and freed
 * by req_free when the answer has been queued, the request body consumed (or the client
 * connection is closing) and no filter is suspended. Everything a request allocates comes
 * from r->a (its arena), so pointers into a request stay valid exactly as long as it does.
 * A req holds one reference to the conf generation it started with. Worker thread only.
 */
#ifndef VISOR_REQ_H
#define VISOR_REQ_H

#include <stdint.h>
#include <event2/buffer.h>

#include "conf/conf.h"
#include "http/filter.h"
#include "http/http.h"
#include "http/upstream.h"
#include "core/util.h"

struct conn;
struct worker;
struct upconn;
struct route_ent;

enum req_phase {
	RP_HEAD = 0,       /* running on_request */
	RP_BODY_READ,      /* buffering the request body for on_request_body */
	RP_BODY_FILTERS,   /* running on_request_body */
	RP_UPSTREAM,       /* waiting for / talking to the upstream */
	RP_RESPONSE,       /* response head sent, streaming the body */
	RP_DONE,           /* answer queued */
};

/* X-Request-Id from a trusted peer is kept when it is 1-64 characters of [A-Za-z0-9._-]
 * (docs/errors.md); ids visor makes are 32 hex characters. */
#define REQ_ID_MAX 64

/* The client side of a request that is not its connection's own HTTP/1.1 stream: an HTTP/2
 * stream (h2.c). NULL in r->tx means conn.c's HTTP/1.1 paths, unchanged. The filters never
 * see which one carries a request; only req.c calls these. None of them frees the request:
 * `finished` and `feed` only schedule work the transport does from its own event. */
struct req_tx {
	/* The answer's head: r->status and r->out, plus Content-Length when has_len. nobody:
	 * no body follows (HEAD, 204, 304), the stream's answer ends with it. */
	void   (*head)(struct req *r, int has_len, uint64_t len, int nobody);
	void   (*body)(struct req *r, const char *p, size_t n);
	void   (*body_buf)(struct req *r, struct evbuffer *b);   /* moves b's bytes */
	void   (*end)(struct req *r);                 /* the answer's body is complete */
	void   (*flush)(struct req *r);               /* send what is queued now */
	size_t (*pending)(const struct req *r);       /* answer bytes the client has not taken */
	void   (*notify_drained)(struct req *r, size_t low); /* req_client_drained at <= low */
	void   (*reset)(struct req *r);               /* cut an answer already started */
	void   (*cont)(struct req *r);                /* 100 Continue */
	void   (*body_pause)(struct req *r);          /* stop taking request body bytes */
	void   (*body_resume)(struct req *r);
	int    (*body_paused)(const struct req *r);
	void   (*feed)(struct req *r);                /* deliver what arrived; finish if done */
	size_t   out_hwm;     /* pending answer bytes past which the upstream pauses (resumes
	                       * at a quarter): per stream, so smaller than HTTP/1.1's */
};

struct req {
	struct conn      *c;             /* the client connection (its address, listener) */
	const struct req_tx *tx;         /* NULL: HTTP/1.1 on c; else the stream carrying it */
	void             *tx_arg;        /* the transport's own (h2.c: its stream) */
	uint64_t          head_bytes;    /* tx: the head's decoded size, for the access log */
	struct worker    *w;
	struct conf      *conf;          /* one ref */
	struct arena      a;
	char              id[REQ_ID_MAX + 1];
	enum req_phase    phase;

	/* ---- request ---- */
	struct http_head  h;             /* as received; h.hdrs is what goes upstream */
	const char       *method;        /* "GET" */
	const char       *path;          /* normalised, NUL-terminated */
	size_t            path_len;
	const char       *query;         /* after '?', NULL when none (never logged) */
	size_t            query_len;
	const char       *ip;            /* client IP, trusted_proxies applied (docs/security.md) */
	int               ip_family;
	uint8_t           ip_bin[16];
	int               tls;           /* arrived on the HTTPS listener */
	const struct route_ent *route;   /* NULL: no route matched */
	/* The chain position. Request phases (RP_HEAD, RP_BODY_FILTERS): fidx is the number of
	 * chain entries already called, so chain->ids[fidx - 1] is the filter that ran last
	 * and, while `suspended`, the one waiting for req_resume. `entered` counts the entries
	 * whose on_request was reached (it never shrinks): those, and only those, get
	 * on_response and on_done. Response phase: fidx counts down from `entered`;
	 * chain->ids[fidx - 1] is the filter being called and, while `suspended` (only ever
	 * for a body peek), the one that is called again once the body is buffered. So in
	 * every phase, a suspended request's waiting filter is ids[fidx - 1]: req_abort gives
	 * it its on_abort. */
	const struct chain *chain;
	size_t            fidx;
	size_t            entered;
	void            **fstate;        /* per filter id, NULL when not in the chain */
	int               suspended;     /* a filter waits (req_resume, or the body peek) */

	/* Identity set by the jwt filter for the filters after it (rl keys, revocation). All
	 * strings live in the request arena. */
	const char       *user;          /* verified `sub`, NULL when anonymous */
	const char       *jti;           /* verified `jti`, NULL when absent */
	int64_t           iat;           /* verified `iat`, 0 when absent */
	int64_t           token_exp;     /* verified `exp`, 0 when absent */
	int               check_revocation;  /* jwt.revocation on and a token was accepted */
	/* Set with the identity by the filter that accepted the token: how a later filter (the
	 * revocation check, which shares the rate limits' store round trip) refuses it with
	 * that filter's answer, log reason and count. `reason` is an enum jwt_err (lib). */
	void            (*refuse_token)(struct req *r, int reason);
	int               cors_preflight;    /* the cors filter answered a preflight */

	/* request body */
	int               has_body;      /* Content-Length > 0 or chunked */
	int               body_done;     /* the client's body has been read to its end */
	uint64_t          body_max;      /* route body.max_size or client.max_body_size */
	uint64_t          body_seen;
	int               want_body;     /* a filter asked to see the whole body */
	uint64_t          want_body_max;
	struct evbuffer  *body;          /* buffered body (want_body) */
	int               upgrade;       /* asks for a protocol switch we tunnel (tunnel.c) */
	const char       *upgrade_val;   /* its Upgrade header, re-added upstream */
	size_t            upgrade_len;
	int               tunnel;        /* 101 sent: the connection is a byte tunnel now */
	int               tunnel_pending;/* 101 queued inside the parser: start after it returns */
	int               expect_continue;
	int               sent_continue;
	int               discard;       /* edge answer made: drop the rest of the body */

	/* ---- upstream ---- */
	struct upconn    *up;
	int               up_tries;
	struct up_tried   up_tried;      /* servers tried, for failover (upstream.c) */
	int64_t           t_start_us, t_up_us, t_up_head_us;
	int               up_reused;
	int               up_got_bytes;  /* the upstream started answering this request */
	uint64_t          up_body_sent;

	/* ---- response ---- */
	int               status;
	int               edge;          /* visor made this answer */
	struct http_head  rh;            /* upstream response head (when proxied) */
	struct hdrs       out;           /* headers to send */
	struct evbuffer  *rbody;         /* replacement/edge body, or NULL */
	int               resp_chunked;  /* re-chunk towards the client */
	int               resp_close;    /* close the client connection after this answer */
	int               head_sent;
	int               resp_done;
	int               want_resp_body;     /* buffer up to want_resp_max before on_response */
	size_t            want_resp_max;
	struct evbuffer  *resp_peek;     /* buffered response body for inspection */
	int               resp_dropping; /* upstream body is drained, not sent */
	int               up_done_early; /* the upstream finished before the head went out */
	uint64_t          bytes_out;     /* response body bytes sent */
	const char       *log_reason;    /* why visor answered (static), for the access log */
};

/* ---- for the connection (conn.c) ---- */
struct req *req_new(struct conn *c);          /* NULL on out of memory */
/* The head just parsed: checks, routing, chain. May answer at once. */
void req_start(struct req *r);
/* Answers a malformed head with `status` (400/431/408) and no chain but the `always` ones. */
void req_fail_head(struct req *r, int status, const char *why);
int  req_on_body(struct req *r, const char *p, size_t n);     /* client body bytes */
void req_on_body_done(struct req *r);
void req_abort(struct req *r);                 /* client gone: tear down, free */
void req_free(struct req *r);
/* Whether the request is finished on both sides (the conn may start the next one). */
int  req_finished(const struct req *r);
/* The client's output buffer drained below the low mark (resume the upstream). */
void req_client_drained(struct req *r);

/* ---- for upstream.c: the request's connection reports (worker thread) ---- */
/* u is connected (or taken from the pool) and is r's: write the request. */
void req_up_ready(struct req *r, struct upconn *u);
/* No connection could carry r (502/504 with `why` for the log); u, if any, is released. */
void req_up_failed(struct req *r, int status, const char *why);
int  req_up_head(struct req *r, struct upconn *u);              /* response head parsed */
int  req_up_body(struct req *r, const char *p, size_t n);
void req_up_done(struct req *r);                                /* response complete */
void req_up_drained(struct req *r);                             /* request output drained */
/* The 101 went out and the parser returned: log it and switch to tunnelling. */
void req_tunnel_go(struct req *r);

/* ---- for filters ---- */
/* Makes the answer: `status` with the JSON body {"error":msg,"requestId":id}. */
void req_respond(struct req *r, int status, const char *msg);
/* Same, with a caller-built body and content type. */
void req_respond_body(struct req *r, int status, const char *ctype, const char *body, size_t len);
/* Completes a suspended filter; `v` as on_request would have returned it. */
void req_resume(struct req *r, enum verdict v);
/* Asks for the whole request body (up to max) before on_request_body. */
void req_want_body(struct req *r, uint64_t max);
/* Asks to see up to `max` bytes of the response body before on_response is called. */
void req_want_resp_body(struct req *r, size_t max);
/* Replaces the response body (headers Content-Type/Length adjusted; upstream body drained). */
void req_replace_body(struct req *r, const char *ctype, const char *body, size_t len);
/* The default message for a status ("Bad gateway"). */
const char *req_status_message(int status);
/* A security event line on stdout: {"type":"security","event":...,"request_id",...}, the
 * path redacted (log_kv). `extra` is pre-rendered JSON members (",\"k\":v") or NULL,
 * written as it is: build any member that holds text visor did not write (a body, a header
 * value) with log_kv, which redacts secrets. */
void req_security_event(struct req *r, const char *event, const char *extra);
/* Request header value, NULL when absent; first occurrence. */
const char *req_header(const struct req *r, const char *name, size_t *len);
struct worker *req_worker(const struct req *r);
/* The public HTTPS port the client should be sent to (listen.redirect_port, else the first
 * HTTPS listener's), for the plain listener's 301. */
int req_https_port(const struct req *r);

#endif
