/* SPDX-License-Identifier: MIT
 * upstream — the worker's side towards the Node servers: round-robin choice among the
 * servers that are up, a per-worker keep-alive pool (bounded by upstream.keepalive, idle
 * connections dropped after upstream.idle_timeout or when the server closes them), connect
 * with connect_timeout, passive failure detection with active probing back, optional TLS
 * re-encryption with verification, and the response parser feeding the request.
 *
 * A host name in upstream.servers stands for the addresses net/resolve last found for it
 * (up_pool_dns): one server per address; a literal address is one server, as written.
 *
 * Ownership: the pool belongs to the worker; an upconn belongs to the pool while idle and
 * to exactly one request while busy (req->up / up->req). up_release hands it back.
 */
#ifndef VISOR_UPSTREAM_H
#define VISOR_UPSTREAM_H

#include <stdint.h>

#include "http/http.h"
#include "net/sock.h"

struct worker;
struct req;
struct conf;

/* The servers one request has tried, so failover never tries one twice and ends when every
 * server has been: a bit per index of the pool's list, the first 64 inline, more words from
 * the request's arena. Zeroed with the request; only upstream.c reads or writes it. */
struct up_tried {
	uint64_t   bits;
	uint64_t  *more;
	size_t     nmore;          /* words in more */
	uint64_t   epoch;          /* the pool's list these indexes refer to (a new DNS answer or
	                            * generation renumbers the list: the set starts again) */
};

/* One connection to an upstream server. Private to upstream.c: the request drives it through
 * the functions below. Owned by the pool while idle, by exactly one request while busy. */
struct upconn;
struct up_server;

struct up_pool *up_pool_new(struct worker *w);
void up_pool_free(struct up_pool *p);
/* A new generation: rebuild the server list; idle connections to other servers close. */
void up_pool_conf(struct up_pool *p, const struct conf *c);
/* New addresses for the host names of upstream.servers (net/resolve; takes over the
 * reference `s`): each address is a server, listed after the names' order in the config.
 * Servers whose address went away are retired: their idle connections close, requests on
 * them finish and their connections are not pooled again. Worker thread. */
struct resolve_set;
void up_pool_dns(struct up_pool *p, struct resolve_set *s);
/* Number of servers considered up (for /readyz-like checks inside the worker). */
int  up_pool_servers_up(const struct up_pool *p);
/* Connections held now: carrying a request (or connecting) and idle in the pool. */
void up_pool_stats(const struct up_pool *p, size_t *busy, size_t *idle);
/* The socket of a connection (in-process tests set buffer sizes on it). */
int  up_sock_fd(const struct upconn *u);

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

/* ---- what the request does with its connection (worker thread) ------------------------ */

/* Where the request's bytes go (head, then body); up_flush writes them. */
struct evbuffer *up_output(struct upconn *u);
/* The connection is established and carries the request (not connecting, not idle). */
int  up_connected(const struct upconn *u);
/* Whether everything of the request has been handed over (up_request_sent was called). */
int  up_sent_all(const struct upconn *u);
/* SOCK_EV_DRAINED-style: req_up_drained is called once the output holds <= low bytes. */
void up_notify_drained(struct upconn *u, size_t low);
int  up_paused(const struct upconn *u);
/* The parsed response head, moved into the request's arena (req_up_head calls it). 0/-1. */
int  up_take_head(struct upconn *u, struct arena *a, struct http_head *h);
/* The response was complete without waiting for the server to close (the connection can be
 * pooled again if the request was sent whole). */
int  up_framed(const struct upconn *u);
/* A 101: the connection becomes a byte tunnel (never pooled again). Its sock's events go to
 * cb(arg) from now on; returns the sock. Released with the client connection (up_release). */
struct sock *up_tunnel(struct upconn *u, sock_cb cb, void *arg);

#endif
