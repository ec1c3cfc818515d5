/* SPDX-License-Identifier: MIT
 * upstream — the worker's side towards the Node servers: round-robin choice among the
 * servers that are up, a per-worker keep-alive pool (bounded by upstream.keepalive, idle
 * connections dropped after upstream.idle_timeout or when the server closes them), connect
 * with connect_timeout, passive failure detection with active probing back, optional TLS
 * re-encryption with verification, and the response parser feeding the request.
 *
 * Ownership: the pool belongs to the worker; an upconn belongs to the pool while idle and
 * to exactly one request while busy (req->up / up->req). up_release hands it back.
 */
#ifndef VISOR_UPSTREAM_H
#define VISOR_UPSTREAM_H

#include <stdint.h>
#include <sys/queue.h>

#include "http/http.h"
#include "net/sock.h"

struct worker;
struct req;
struct conf;

enum up_state { UP_CONNECTING = 0, UP_IDLE, UP_BUSY };

/* The servers one request has tried, so failover never tries one twice and ends when every
 * server has been: a bit per index of the pool's list, the first 64 inline, more words from
 * the request's arena. Zeroed with the request; only upstream.c reads or writes it. */
struct up_tried {
	uint64_t   bits;
	uint64_t  *more;
	size_t     nmore;          /* words in more */
};

struct up_server;

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

struct up_pool *up_pool_new(struct worker *w);
void up_pool_free(struct up_pool *p);
/* A new generation: rebuild the server list; idle connections to other servers close. */
void up_pool_conf(struct up_pool *p, const struct conf *c);
/* Number of servers considered up (for /readyz-like checks inside the worker). */
int  up_pool_servers_up(const struct up_pool *p);

/* Gets a connection for r: an idle one (unless `fresh`) or a new connect, from a server r
 * has not tried yet. The request is told through req_up_ready / req_up_failed. 0, or -1 when
 * nothing could even be attempted (502). */
int  up_acquire(struct up_pool *p, struct req *r, int fresh);
/* Forgets which servers r tried: a retry after a pooled connection went stale is not the
 * server's failure. */
void up_tried_reset(struct req *r);
/* The request is done with it. reusable: the response was complete and well-framed and the
 * request fully sent. */
void up_release(struct upconn *u, int reusable);
/* Request side flush after writing to u->s.out. */
void up_flush(struct upconn *u);
/* Arms the response timeout (upstream.timeout) now that the request is sent. */
void up_request_sent(struct upconn *u);
void up_pause(struct upconn *u);
void up_resume(struct upconn *u);

/* Callbacks into req.c */
void req_up_ready(struct req *r, struct upconn *u);
void req_up_failed(struct req *r, int status, const char *why);
int  req_up_head(struct req *r, struct upconn *u);              /* response head parsed */
int  req_up_body(struct req *r, const char *p, size_t n);
void req_up_done(struct req *r);                                /* response complete */
void req_up_drained(struct req *r);                             /* upstream out drained */

#endif
