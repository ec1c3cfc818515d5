/* SPDX-License-Identifier: MIT
 * redis — a worker's async Redis connection (contract in redis.h).
 *
 * States: DOWN (waiting for the backoff timer), CONNECTING (resolving, connecting, the TLS
 * handshake, or sending AUTH / SELECT / FUNCTION LOAD (or SCRIPT LOAD) — one deadline covers
 * all of it), UP. Only UP accepts commands: a request never waits on a connection that is not
 * known to work.
 *
 * The store script is called as a Redis Functions function when the server takes the library
 * (FUNCTION LOAD, Redis >= 7: the script's definitions are built once, not at every call —
 * see src/store/store.lua), else by EVALSHA (Redis 6, a server or ACL user without FUNCTION).
 * The choice is made per connection, by the handshake's FUNCTION LOAD answer.
 *
 * Deadlines: a command past its deadline is failed alone; `owed` counts the replies the live
 * connection still owes (timed-out commands included) and `last_io_ms` is the last reply (or
 * when the connection started owing): owing for dead_ms without a word is what kills it.
 *
 * The socket is visor's own (net/sock: plain or TLS, the same code for both), because Debian's
 * hiredis 0.14 speaks no TLS; hiredis keeps what it is good at, the RESP reader (redisReader)
 * and the formatting of the handshake's commands. A connection (struct rconn) keeps the
 * commands whose replies it owes in send order (`wait`): Redis answers in that order, so each
 * parsed reply belongs to the head of the list. A timed-out or detached command stays there
 * (its fn cleared) until its reply, or the connection, is gone.
 *
 * Writes: commands go into the socket's output buffer and one deferred event per worker turn
 * (`wflush_ev`) writes them, so a pass's commands leave in one write (or one TLS record), as
 * hiredis's libevent adapter did with its write event.
 *
 * Freeing: a connection we give up on is unhooked at once (rd->conn cleared, its commands
 * failed to their callers) and freed from a deferred event on the next loop turn, never from
 * inside its own socket callback, which may be walking its replies.
 */
#include "store/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sock.h"
#include "net/tls.h"
#include "store/sentinel.h"

#define BACKOFF_MIN_MS   25
#define BACKOFF_MAX_MS   500
#define DEAD_MIN_MS      1000            /* silence, with replies owed, that kills a connection */
#define DEAD_TIMEOUTS    4               /* ... or this many timeouts when that is longer */
#define KEEPALIVE_IDLE_S 15              /* TCP keepalive, as hiredis's redisEnableKeepAlive */

enum rstate { RS_DOWN = 0, RS_CONNECTING, RS_UP };

struct redis_cmd {
	TAILQ_ENTRY(redis_cmd) link;     /* rd->q: unanswered, live, in deadline order */
	STAILQ_ENTRY(redis_cmd) rlink;   /* conn->wait: replies owed, in send order */
	struct redis *rd;
	redis_fn      fn;
	void         *arg;
	int64_t       deadline;
	unsigned      in_q : 1;
	unsigned      script : 1;
	unsigned      retried : 1;
	unsigned      hs : 1;            /* a handshake step (AUTH, SELECT, ROLE, FUNCTION LOAD,
	                                  * SCRIPT LOAD) */
	unsigned      role : 1;          /* the ROLE step: the server must be a primary */
	unsigned      fnload : 1;        /* FUNCTION LOAD (a handshake step, or a reload) */
	unsigned      fcall : 1;         /* script: sent as FCALL (else EVALSHA) */
	int           argc;
	size_t        rest;              /* script: offset of the arguments after the sha or the
	                                  * function's name */
	size_t        len;
	char          buf[];             /* the RESP-formatted command */
};

/* One connection; owned by rd->conn while live, by rd->dying once given up. */
struct rconn {
	struct rconn *next;              /* rd->dying */
	struct redis *rd;
	struct sock   s;
	int           s_on;
	int           dead;
	redisReader  *rr;
	STAILQ_HEAD(, redis_cmd) wait;
};

struct redis {
	struct event_base *base;
	struct metrics    *m;
	int                wid;
	const char        *script;       /* NULL: a sentinel connection (PING handshake) */
	size_t             script_len;
	char               sha[41];
	char              *lib;          /* the script as a Functions library (FUNCTION LOAD) */
	size_t             lib_len;
	char               fname[47];    /* its one function: visor_<sha> */
	int                fcall;        /* the live connection took the library: FCALL; 0:
	                                  * EVALSHA */
	int                fn_logged;    /* the library's refusal was logged */

	/* redis.sentinel: the primary's address (host, port) comes from the sentinels */
	struct sentinel   *sn;
	char              *sn_master;    /* for the log */
	int                asking;       /* connect_start waits for the sentinels' answer */
	int                moved;        /* the primary changed: log the next "connected" */

	/* the sentinel module's hooks on its own connections */
	void             (*state_fn)(void *arg, int up);
	void              *state_arg;
	redis_fn           push_fn;      /* replies nobody asked for (SUBSCRIBE messages) */
	void              *push_arg;

	/* configuration in force */
	int                configured;
	char              *host;
	int                port;
	char              *user, *pass;
	int                db;
	int64_t            timeout_ms;
	int64_t            dead_ms;
	int                tls;          /* rediss:// */
	char              *tls_ca, *tls_cert, *tls_key, *tls_name;
	int                tls_insecure;
	SSL_CTX           *ctx;          /* ours: built for the latest generation's settings */
	SSL_CTX           *ctx_gen;      /* a reference to the generation's context it was built
	                                  * for (held, so its address is never reused meanwhile) */

	/* connection */
	struct rconn      *conn;
	int                state;        /* enum rstate; read by other threads */
	int                handshake;    /* replies still due before UP */
	int64_t            last_io_ms;   /* last reply, or when the connection started owing one */
	int                owed;         /* replies owed by the live connection (UP commands) */
	int                backoff_ms;
	int                outage_logged;
	int                ever_up;
	struct rconn      *dying;
	TAILQ_HEAD(, redis_cmd) q;       /* sent, unanswered, in send order (= deadline order) */
	struct event      *tmo_ev;
	int                tmo_armed;
	int64_t            tmo_at;
	struct event      *retry_ev;
	struct event      *reap_ev;
	struct event      *wflush_ev;
	int                wflush_on;
	struct evdns_base *dns;
	struct evdns_getaddrinfo_request *dnsreq;
};

static void connect_start(struct redis *rd);
static int send_fnload(struct redis *rd, struct rconn *conn, int hs);
static int send_scriptload(struct redis *rd, struct rconn *conn);

/* How the log names a client: the store's connection, or one to a sentinel. */
#define KIND(rd) ((rd)->script != NULL ? "redis" : "redis sentinel")

/* ---- small helpers ---------------------------------------------------------------------- */

static void
set_state(struct redis *rd, int st)
{
	__atomic_store_n(&rd->state, st, __ATOMIC_RELEASE);
}

int
redis_is_up(const struct redis *rd)
{
	return rd != NULL && __atomic_load_n(&rd->state, __ATOMIC_ACQUIRE) == RS_UP;
}

static int
streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static char *
dup_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
is_ip_literal(const char *h)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

/* ---- failing and dropping ----------------------------------------------------------------- */

/* Every command waiting on the connection fails now (when their replies come, or their
 * connection is freed, they find fn == NULL). Callers may send again from inside fn: the
 * state is no longer UP, so nothing is sent. */
static void
fail_queue(struct redis *rd)
{
	struct redis_cmd *c;
	redis_fn fn;

	while ((c = TAILQ_FIRST(&rd->q)) != NULL) {
		TAILQ_REMOVE(&rd->q, c, link);
		c->in_q = 0;
		fn = c->fn;
		c->fn = NULL;
		if (fn)
			fn(c->arg, NULL);
	}
}

static void
schedule_retry(struct redis *rd)
{
	if (!rd->configured)
		return;
	ev_timer_in(rd->retry_ev, rd->backoff_ms);
	rd->backoff_ms = MIN(rd->backoff_ms * 2, BACKOFF_MAX_MS);
}

/* The connection is gone (rd->conn already cleared by the caller). */
static void
conn_lost(struct redis *rd, const char *why)
{
	int was_up = rd->state == RS_UP;

	set_state(rd, RS_DOWN);
	rd->handshake = 0;
	rd->owed = 0;
	if ((was_up || !rd->outage_logged) && rd->host == NULL) {
		/* sentinel mode before any primary was named */
		log_msg(LOG_WARN, NULL, "redis sentinel %s (worker %d): cannot connect: %s",
		    rd->sn_master ? rd->sn_master : "-", rd->wid, why ? why : "error");
		rd->outage_logged = 1;
	} else if (was_up || !rd->outage_logged) {
		log_msg(LOG_WARN, NULL, "%s %s:%d (worker %d): %s: %s", KIND(rd), rd->host,
		    rd->port, rd->wid, was_up ? "connection lost" : "cannot connect",
		    why ? why : "error");
		rd->outage_logged = 1;
	}
	if (was_up)
		METRIC_INC(rd->m, redis_errors);
	evtimer_del(rd->retry_ev);
	schedule_retry(rd);
	/* before the callbacks, which may move this client elsewhere (sentinel.c) */
	if (rd->state_fn)
		rd->state_fn(rd->state_arg, 0);
	fail_queue(rd);
}

/* Frees a connection that is no longer rd->conn, outside its own callbacks. A command still
 * listening (there should be none: fail_queue ran) hears NULL. */
static void
conn_free(struct rconn *conn)
{
	struct redis_cmd *c;
	redis_fn fn;

	while ((c = STAILQ_FIRST(&conn->wait)) != NULL) {
		STAILQ_REMOVE_HEAD(&conn->wait, rlink);
		if (c->in_q) {
			TAILQ_REMOVE(&c->rd->q, c, link);
			c->in_q = 0;
		}
		fn = c->fn;
		c->fn = NULL;
		if (fn)
			fn(c->arg, NULL);
		free(c);
	}
	if (conn->s_on)
		sock_fini(&conn->s);
	if (conn->rr)
		redisReaderFree(conn->rr);
	free(conn);
}

/* We give up on the live connection: unhook it now, free it on the next loop turn. */
static void
drop_conn(struct redis *rd, const char *why)
{
	struct rconn *conn = rd->conn;

	if (conn == NULL)
		return;
	rd->conn = NULL;
	conn->dead = 1;
	conn->next = rd->dying;
	rd->dying = conn;
	event_active(rd->reap_ev, EV_TIMEOUT, 0);
	conn_lost(rd, why);
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct redis *rd = arg;
	struct rconn *conn;

	(void)fd;
	(void)what;
	while ((conn = rd->dying) != NULL) {
		rd->dying = conn->next;
		conn_free(conn);
	}
}

/* ---- writing -------------------------------------------------------------------------------- */

static void
on_wflush(evutil_socket_t fd, short what, void *arg)
{
	struct redis *rd = arg;

	(void)fd;
	(void)what;
	rd->wflush_on = 0;
	if (rd->conn != NULL)
		sock_flush(&rd->conn->s);
}

/* The commands appended this turn leave together, from the loop. */
static void
wflush_soon(struct redis *rd)
{
	if (!rd->wflush_on) {
		rd->wflush_on = 1;
		event_active(rd->wflush_ev, EV_TIMEOUT, 0);
	}
}

/* ---- replies ------------------------------------------------------------------------------- */

/* ROLE's answer: "master" first, or the name of what the server is instead. */
static const char *
role_of(const redisReply *rp)
{
	if (rp->type != REDIS_REPLY_ARRAY || rp->elements < 1 || rp->element[0] == NULL ||
	    (rp->element[0]->type != REDIS_REPLY_STRING &&
	    rp->element[0]->type != REDIS_REPLY_STATUS))
		return "unknown";
	if (strcmp(rp->element[0]->str, "master") == 0)
		return NULL;
	return rp->element[0]->str;
}

/* An error reply that starts with s. */
static int
err_is(const redisReply *rp, const char *s)
{
	size_t n = strlen(s);

	return rp->type == REDIS_REPLY_ERROR && rp->len >= n && memcmp(rp->str, s, n) == 0;
}

/* FUNCTION LOAD's answer: the library is there (loaded now, or by another worker or instance
 * of the same visor: same text, same name), or the server will not take it — Redis 6 (unknown
 * command), an ACL user without FUNCTION, a managed service that refuses it — and calls go as
 * EVALSHA. 1: FCALL. */
static int
fnload_ok(struct redis *rd, const redisReply *rp)
{
	if (rp->type != REDIS_REPLY_ERROR || (rp->len >= 14 && memmem(rp->str, rp->len,
	    "already exists", 14) != NULL))
		return 1;
	if (!rd->fn_logged)
		log_info("redis %s:%d (worker %d): FUNCTION LOAD refused (%.*s): the store script "
		    "goes by EVALSHA", rd->host, rd->port, rd->wid, (int)MIN(rp->len, 120),
		    rp->str);
	rd->fn_logged = 1;
	return 0;
}

static void
on_handshake(struct redis *rd, const redisReply *rp, int role, int fnload)
{
	const char *r;

	if (role && rp->type != REDIS_REPLY_ERROR && (r = role_of(rp)) != NULL) {
		/* the sentinels' answer is stale (a demoted primary, a replica): drop it, ask
		 * them again after the backoff */
		char why[160];
		snprintf(why, sizeof(why), "not a primary (ROLE says %.40s): asking the sentinels "
		    "again", r);
		drop_conn(rd, why);
		return;
	}
	if (fnload) {
		if (!(rd->fcall = fnload_ok(rd, rp))) {
			/* the script's way instead: one more step before UP */
			if (send_scriptload(rd, rd->conn) < 0) {
				drop_conn(rd, "cannot queue the handshake");
				return;
			}
			wflush_soon(rd);
		}
	} else if (rp->type == REDIS_REPLY_ERROR) {
		char why[160];
		/* Redis's own words ("WRONGPASS ...", "ERR DB index is out of range"); no secrets */
		snprintf(why, sizeof(why), "handshake refused: %.*s", (int)MIN(rp->len, 120),
		    rp->str);
		rd->outage_logged = 0;        /* a new reason deserves a line */
		drop_conn(rd, why);
		return;
	}
	if (--rd->handshake > 0)
		return;
	set_state(rd, RS_UP);
	evtimer_del(rd->retry_ev);
	rd->backoff_ms = BACKOFF_MIN_MS;
	if (rd->outage_logged || !rd->ever_up || rd->moved)
		log_info("%s %s:%d (worker %d): connected%s", KIND(rd), rd->host, rd->port, rd->wid,
		    rd->tls ? " (TLS)" : "");
	rd->outage_logged = 0;
	rd->moved = 0;
	rd->ever_up = 1;
	if (rd->state_fn)
		rd->state_fn(rd->state_arg, 1);
}

/* NOSCRIPT: the script left Redis's cache (SCRIPT FLUSH, a failover to a replica that never
 * saw it). EVAL puts it back; EVALSHA works again after. "ERR Function not found": the library
 * is gone (FUNCTION FLUSH, a failover to a server that never had it): FUNCTION LOAD puts it
 * back, and this command goes as EVAL, which works whatever that load answers. 1 when resent. */
static int
resend_eval(struct redis *rd, struct rconn *conn, struct redis_cmd *c)
{
	struct evbuffer *out = conn->s.out;

	c->retried = 1;
	if (c->fcall && send_fnload(rd, conn, 0) < 0)
		return 0;
	if (evbuffer_add_printf(out, "*%d\r\n$4\r\nEVAL\r\n$%zu\r\n", c->argc,
	    rd->script_len) < 0 ||
	    evbuffer_add(out, rd->script, rd->script_len) < 0 ||
	    evbuffer_add(out, "\r\n", 2) < 0 ||
	    evbuffer_add(out, c->buf + c->rest, c->len - c->rest) < 0)
		return 0;            /* the stream is broken now: the reply never matches; drop */
	STAILQ_INSERT_TAIL(&conn->wait, c, rlink);
	rd->owed++;
	wflush_soon(rd);
	log_info("redis (worker %d): %s, sent it again", rd->wid, c->fcall ?
	    "function not loaded (Function not found)" : "script not cached (NOSCRIPT)");
	return 1;
}

/* One parsed reply, for the head of conn->wait. */
static void
on_reply(struct redis *rd, struct rconn *conn, redisReply *rp)
{
	struct redis_cmd *c = STAILQ_FIRST(&conn->wait);
	redis_fn fn;

	if (c == NULL && rd->push_fn) {
		rd->push_fn(rd->push_arg, rp);       /* a subscribed connection's message */
		freeReplyObject(rp);
		return;
	}
	if (c == NULL) {
		freeReplyObject(rp);
		drop_conn(rd, "a reply nobody asked for");
		return;
	}
	STAILQ_REMOVE_HEAD(&conn->wait, rlink);
	rd->last_io_ms = now_ms();
	if (c->hs) {
		int role = c->role, fnload = c->fnload;
		free(c);
		on_handshake(rd, rp, role, fnload);
		freeReplyObject(rp);
		return;
	}
	if (rd->owed > 0)
		rd->owed--;
	if (c->fnload) {
		/* a reload: when refused now, calls go as EVALSHA from here on */
		if (!fnload_ok(rd, rp))
			rd->fcall = 0;
		free(c);
		freeReplyObject(rp);
		return;
	}
	if (c->script && !c->retried && c->fn && (c->fcall ?
	    err_is(rp, "ERR Function not found") : err_is(rp, "NOSCRIPT"))) {
		freeReplyObject(rp);
		if (resend_eval(rd, conn, c))
			return;               /* same cmd, same place in the deadline queue */
		STAILQ_INSERT_HEAD(&conn->wait, c, rlink);    /* freed with the connection */
		drop_conn(rd, "out of memory");
		return;
	}
	if (c->in_q) {
		TAILQ_REMOVE(&rd->q, c, link);
		c->in_q = 0;
	}
	fn = c->fn;
	c->fn = NULL;
	if (fn)
		fn(c->arg, rp);
	free(c);
	if (rd->sn != NULL && rp->type == REDIS_REPLY_ERROR && rp->len >= 7 &&
	    ((rp->len >= 8 && memcmp(rp->str, "READONLY", 8) == 0) ||
	    memcmp(rp->str, "LOADING", 7) == 0)) {
		/* a failover we have not heard of: this server is a replica now, or a new
		 * primary still loading; the caller got the error (its on_error applies) and
		 * the sentinels are asked again at once */
		char why[80];
		snprintf(why, sizeof(why), "%.8s reply: asking the sentinels again",
		    rp->str[0] == 'R' ? "READONLY" : "LOADING");
		freeReplyObject(rp);
		rd->backoff_ms = BACKOFF_MIN_MS;
		drop_conn(rd, why);
		return;
	}
	freeReplyObject(rp);
}

/* What went wrong on a socket, for the log: the certificate check, TLS, or the system. */
static void
sock_why(struct rconn *conn, int err, char *why, size_t len)
{
	long vr = conn->s.ssl ? SSL_get_verify_result(conn->s.ssl) : X509_V_OK;
	char eb[200];

	if (vr != X509_V_OK) {
		snprintf(why, len, "TLS: certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
	} else if (conn->s.ssl_err != 0) {
		ERR_error_string_n(conn->s.ssl_err, eb, sizeof(eb));
		snprintf(why, len, "TLS: %s", eb);
	} else if (err != 0) {
		snprintf(why, len, "%s", strerror(err));
	} else {
		snprintf(why, len, "I/O error");
	}
}

static void
on_sock(struct sock *s, int ev, void *arg)
{
	struct rconn *conn = arg;
	struct redis *rd = conn->rd;
	struct evbuffer_iovec v;
	void *reply;
	int err = errno;
	char why[256];

	if (conn->dead)
		return;
	if (ev & SOCK_EV_CONNECTED)
		sock_read_start(s);
	if (ev & SOCK_EV_READ) {
		while (evbuffer_peek(s->in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
			if (redisReaderFeed(conn->rr, v.iov_base, v.iov_len) != REDIS_OK) {
				drop_conn(rd, "out of memory");
				return;
			}
			evbuffer_drain(s->in, v.iov_len);
		}
		for (;;) {
			reply = NULL;
			if (redisReaderGetReply(conn->rr, &reply) != REDIS_OK) {
				snprintf(why, sizeof(why), "protocol error: %s", conn->rr->errstr);
				drop_conn(rd, why);
				return;
			}
			if (reply == NULL)
				break;
			on_reply(rd, conn, reply);
			if (conn->dead)
				return;
		}
		sock_read_start(s);           /* input consumed: reading may resume */
	}
	if (ev & SOCK_EV_ERROR) {
		sock_why(conn, err, why, sizeof(why));
		drop_conn(rd, why);
	} else if (ev & SOCK_EV_EOF) {
		drop_conn(rd, "closed by the server");
	}
}

/* ---- connecting ----------------------------------------------------------------------------- */

#define HS_ROLE   1                      /* ROLE, whose answer must say "master" */
#define HS_FNLOAD 2                      /* FUNCTION LOAD, whose answer picks FCALL or EVALSHA */
#define HS_NOT    4                      /* not a handshake step: a reload, answered by nobody */

/* Appends one handshake command (formatted by hiredis) and its place in the reply order;
 * flags: HS_*. */
static int
send_hs_flag(struct redis *rd, struct rconn *conn, int argc, const char **argv,
    const size_t *lens, int flags)
{
	struct redis_cmd *c;
	char *cmd = NULL;
	int n;

	n = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (n < 0 || (c = calloc(1, sizeof(*c))) == NULL) {
		redisFreeCommand(cmd);
		return -1;
	}
	if (evbuffer_add(conn->s.out, cmd, (size_t)n) < 0) {
		redisFreeCommand(cmd);
		free(c);
		return -1;
	}
	if (n > 0 && argc > 1 && argv[0][0] == 'A')
		explicit_bzero(cmd, (size_t)n);       /* AUTH: the password */
	redisFreeCommand(cmd);
	c->rd = rd;
	c->hs = !(flags & HS_NOT);
	c->role = (flags & HS_ROLE) != 0;
	c->fnload = (flags & HS_FNLOAD) != 0;
	STAILQ_INSERT_TAIL(&conn->wait, c, rlink);
	if (c->hs)
		rd->handshake++;
	else
		rd->owed++;
	return 0;
}

static int
send_hs(struct redis *rd, struct rconn *conn, int argc, const char **argv, const size_t *lens)
{
	return send_hs_flag(rd, conn, argc, argv, lens, 0);
}

/* FUNCTION LOAD of the library: a handshake step (hs), or a reload after "Function not
 * found" that nobody waits for. */
static int
send_fnload(struct redis *rd, struct rconn *conn, int hs)
{
	const char *argv[3] = { "FUNCTION", "LOAD", rd->lib };
	size_t lens[3] = { 8, 4, rd->lib_len };

	return send_hs_flag(rd, conn, 3, argv, lens, HS_FNLOAD | (hs ? 0 : HS_NOT));
}

/* SCRIPT LOAD, the handshake's last step when the server refused the library. */
static int
send_scriptload(struct redis *rd, struct rconn *conn)
{
	const char *argv[3] = { "SCRIPT", "LOAD", rd->script };
	size_t lens[3] = { 6, 4, rd->script_len };

	return send_hs_flag(rd, conn, 3, argv, lens, 0);
}

/* A client SSL for the connection: SNI and the name (or IP) the certificate must carry. */
static SSL *
new_ssl(struct redis *rd, int fd)
{
	const char *name = rd->tls_name ? rd->tls_name : rd->host;
	SSL *ssl = SSL_new(rd->ctx);

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		goto fail;
	SSL_set_connect_state(ssl);
	/* one busy connection per worker: keep its record buffers instead of freeing them each
	 * time they empty (the context's default, made for many idle clients) */
	SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	if (is_ip_literal(name)) {
		/* SNI carries host names only (RFC 6066 §3); IPs verify against IP SANs */
		if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
			goto fail;
	} else {
		if (SSL_set_tlsext_host_name(ssl, name) != 1)
			goto fail;
		if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && SSL_set1_host(ssl, name) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

static void
keepalive(int fd)
{
	int on = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_IDLE_S / 3, cnt = 3;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Opens the socket to sa and queues the handshake (AUTH, SELECT, SCRIPT LOAD), which leaves
 * as soon as the connect (and the TLS handshake, which the first write starts) completes. */
static void
connect_addr(struct redis *rd, const struct sockaddr *sa, socklen_t salen)
{
	struct rconn *conn;
	const char *argv[3];
	size_t lens[3];
	char dbs[16], why[160];
	SSL *ssl = NULL;
	int fd, n;

	if (rd->tls && rd->ctx == NULL) {
		conn_lost(rd, "no TLS context");
		return;
	}
	if ((conn = calloc(1, sizeof(*conn))) == NULL) {
		conn_lost(rd, "out of memory");
		return;
	}
	conn->rd = rd;
	STAILQ_INIT(&conn->wait);
	if ((conn->rr = redisReaderCreate()) == NULL) {
		conn_free(conn);
		conn_lost(rd, "out of memory");
		return;
	}
	if ((fd = sock_tcp_socket(sa->sa_family)) < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		conn_free(conn);
		conn_lost(rd, why);
		return;
	}
	keepalive(fd);
	if (rd->tls && (ssl = new_ssl(rd, fd)) == NULL) {
		close(fd);
		conn_free(conn);
		conn_lost(rd, "cannot set up TLS");
		return;
	}
	if (sock_init(&conn->s, rd->base, fd, ssl, on_sock, conn) < 0) {
		SSL_free(ssl);
		close(fd);
		conn_free(conn);
		conn_lost(rd, "out of memory");
		return;
	}
	conn->s_on = 1;
	rd->conn = conn;
	rd->handshake = 0;
	if (rd->pass) {
		n = 0;
		argv[n] = "AUTH";
		lens[n++] = 4;
		if (rd->user) {
			argv[n] = rd->user;
			lens[n++] = strlen(rd->user);
		}
		argv[n] = rd->pass;
		lens[n++] = strlen(rd->pass);
		if (send_hs(rd, conn, n, argv, lens) < 0)
			goto fail;
	}
	if (rd->db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", rd->db);
		argv[0] = "SELECT";
		lens[0] = 6;
		argv[1] = dbs;
		lens[1] = strlen(dbs);
		if (send_hs(rd, conn, 2, argv, lens) < 0)
			goto fail;
	}
	if (rd->sn != NULL) {
		/* the sentinels may lag behind a failover: only a primary will do */
		argv[0] = "ROLE";
		lens[0] = 4;
		if (send_hs_flag(rd, conn, 1, argv, lens, HS_ROLE) < 0)
			goto fail;
	}
	rd->fcall = 0;
	if (rd->script != NULL) {
		if (send_fnload(rd, conn, 1) < 0)
			goto fail;
	} else {
		argv[0] = "PING";             /* a sentinel: up once it answers */
		lens[0] = 4;
		if (send_hs(rd, conn, 1, argv, lens) < 0)
			goto fail;
	}
	if (sock_connect(&conn->s, sa, salen) < 0) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		drop_conn(rd, why);
		return;
	}
	/* connect + TLS + handshake deadline */
	ev_timer_in(rd->retry_ev, MAX(1000, rd->timeout_ms * 4));
	return;
fail:
	drop_conn(rd, "cannot queue the handshake");
}

static void
connect_ai(struct redis *rd, const struct evutil_addrinfo *res)
{
	struct sockaddr_storage ss;

	if (res->ai_addrlen > sizeof(ss) || (res->ai_family != AF_INET &&
	    res->ai_family != AF_INET6)) {
		conn_lost(rd, "bad address from the resolver");
		return;
	}
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	connect_addr(rd, (const struct sockaddr *)&ss, (socklen_t)res->ai_addrlen);
}

static void
on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
	struct redis *rd = arg;

	rd->dnsreq = NULL;
	if (result == EVUTIL_EAI_CANCEL)
		return;
	if (result != 0 || res == NULL) {
		char why[160];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", rd->host,
		    evutil_gai_strerror(result));
		if (res)
			evutil_freeaddrinfo(res);
		conn_lost(rd, why);
		return;
	}
	connect_ai(rd, res);
	evutil_freeaddrinfo(res);
}

static void
connect_host(struct redis *rd)
{
	struct evutil_addrinfo hints, *res = NULL;
	struct evdns_getaddrinfo_request *req;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int r;

	if (!rd->configured || rd->conn || rd->dnsreq || rd->host == NULL)
		return;
	set_state(rd, RS_CONNECTING);
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, rd->host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)rd->port);
		connect_addr(rd, (const struct sockaddr *)&sin, sizeof(sin));
		return;
	}
	if (inet_pton(AF_INET6, rd->host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)rd->port);
		connect_addr(rd, (const struct sockaddr *)&sin6, sizeof(sin6));
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	if (rd->dns == NULL)
		rd->dns = evdns_base_new(rd->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (rd->dns == NULL) {
		/* no resolver: look it up the blocking way (this worker waits for the lookup) */
		char port[8];
		snprintf(port, sizeof(port), "%d", rd->port);
		r = evutil_getaddrinfo(rd->host, port, &hints, &res);
		if (r != 0 || res == NULL) {
			char why[160];
			snprintf(why, sizeof(why), "cannot resolve %s: %s", rd->host,
			    evutil_gai_strerror(r));
			if (res)
				evutil_freeaddrinfo(res);
			conn_lost(rd, why);
			return;
		}
		connect_ai(rd, res);
		evutil_freeaddrinfo(res);
		return;
	}
	/* deadline for the lookup too */
	ev_timer_in(rd->retry_ev, MAX(1000, rd->timeout_ms * 4));
	{
		char port[8];
		snprintf(port, sizeof(port), "%d", rd->port);
		req = evdns_getaddrinfo(rd->dns, rd->host, port, &hints, on_dns, rd);
	}
	if (req)
		rd->dnsreq = req;            /* else the callback already ran */
}

/* Connects; with redis.sentinel every attempt first asks the sentinels where the primary is
 * (a connection lost is how a failover often shows first). One deadline covers the question,
 * the connect and the handshake. */
static void
connect_start(struct redis *rd)
{
	if (!rd->configured || rd->conn || rd->dnsreq || rd->asking)
		return;
	if (rd->sn == NULL) {
		connect_host(rd);
		return;
	}
	set_state(rd, RS_CONNECTING);
	rd->asking = 1;
	ev_timer_in(rd->retry_ev, MAX(1000, rd->timeout_ms * 4));
	sentinel_ask(rd->sn);                 /* answers later, through on_primary */
}

/* The sentinels' answer (host NULL: none of them knew), or a +switch-master message
 * (switched): the primary is host:port. */
static void
on_primary(void *arg, const char *host, int port, int switched)
{
	struct redis *rd = arg;
	int changed;
	char *h;

	if (!rd->configured || rd->sn == NULL)
		return;
	if (host == NULL) {
		if (rd->asking) {
			rd->asking = 0;
			evtimer_del(rd->retry_ev);
			conn_lost(rd, "no sentinel could name the primary");
		}
		return;
	}
	if (!switched && !rd->asking)
		return;                       /* a late answer to a question given up on */
	changed = rd->host == NULL || strcmp(rd->host, host) != 0 || rd->port != port;
	if (changed) {
		if ((h = strdup(host)) == NULL)
			return;                   /* the next question tries again */
		if (rd->host != NULL) {
			log_msg(LOG_WARN, NULL, "redis sentinel %s (worker %d): the primary moved "
			    "from %s:%d to %s:%d%s", rd->sn_master, rd->wid, rd->host, rd->port, h,
			    port, switched ? " (+switch-master)" : "");
			METRIC_INC(rd->m, redis_failovers);
		} else {
			log_info("redis sentinel %s (worker %d): the primary is %s:%d",
			    rd->sn_master, rd->wid, h, port);
		}
		free(rd->host);
		rd->host = h;
		rd->port = port;
		rd->moved = 1;                /* "connected" says when the move is done */
		if (rd->dnsreq) {
			struct evdns_getaddrinfo_request *req = rd->dnsreq;
			rd->dnsreq = NULL;
			evdns_getaddrinfo_cancel(req);
		}
	}
	if (rd->asking) {
		rd->asking = 0;
		evtimer_del(rd->retry_ev);
		connect_host(rd);
		return;
	}
	if (!changed || !switched)
		return;                       /* the next connect uses it */
	/* +switch-master: follow now, whatever the connection was doing */
	if (rd->conn)
		drop_conn(rd, "the sentinels switched the primary");
	evtimer_del(rd->retry_ev);
	rd->backoff_ms = BACKOFF_MIN_MS;
	connect_host(rd);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct redis *rd = arg;

	(void)fd;
	(void)what;
	if (!rd->configured)
		return;
	if (rd->state == RS_CONNECTING) {
		/* the question, the connect, the lookup or the handshake took too long */
		if (rd->asking) {
			rd->asking = 0;
			conn_lost(rd, "the sentinels did not answer in time");
		} else if (rd->dnsreq) {
			struct evdns_getaddrinfo_request *req = rd->dnsreq;
			rd->dnsreq = NULL;
			evdns_getaddrinfo_cancel(req);
			conn_lost(rd, "name lookup timed out");
		} else if (rd->conn) {
			drop_conn(rd, rd->tls ? "connect, TLS or handshake timed out" :
			    "connect or handshake timed out");
		} else {
			conn_lost(rd, "connect timed out");
		}
		return;
	}
	if (rd->state == RS_DOWN)
		connect_start(rd);
}

/* ---- command deadlines -------------------------------------------------------------------- */

/* The timer fires at the first deadline, or when the connection would have owed a reply for
 * dead_ms, whichever comes first. */
static void
arm_tmo(struct redis *rd)
{
	struct redis_cmd *c = TAILQ_FIRST(&rd->q);
	int64_t at = INT64_MAX;

	if (c)
		at = c->deadline;
	if (rd->conn && rd->owed > 0)
		at = MIN(at, rd->last_io_ms + rd->dead_ms);
	if (at == INT64_MAX || (rd->tmo_armed && rd->tmo_at <= at))
		return;
	rd->tmo_armed = 1;
	rd->tmo_at = at;
	ev_timer_in(rd->tmo_ev, at - now_ms() + 1);
}

static void
on_tmo(evutil_socket_t fd, short what, void *arg)
{
	struct redis *rd = arg;
	struct redis_cmd *c;
	int64_t now = now_ms();
	redis_fn fn;
	char why[64];

	(void)fd;
	(void)what;
	rd->tmo_armed = 0;
	while ((c = TAILQ_FIRST(&rd->q)) != NULL && c->deadline <= now) {
		TAILQ_REMOVE(&rd->q, c, link);
		c->in_q = 0;
		fn = c->fn;
		c->fn = NULL;
		METRIC_INC(rd->m, redis_errors);
		if (fn)
			fn(c->arg, NULL);        /* its reply, if it ever comes, is dropped */
	}
	if (rd->conn && rd->state == RS_UP && rd->owed > 0 && now - rd->last_io_ms >= rd->dead_ms) {
		/* not a word for dead_ms while replies are owed: the connection is stuck */
		snprintf(why, sizeof(why), "no reply for %lld ms", (long long)(now - rd->last_io_ms));
		drop_conn(rd, why);
		return;
	}
	arm_tmo(rd);
}

/* ---- commands ------------------------------------------------------------------------------ */

/* Decimal digits of v into p (no NUL); returns the count. */
static size_t
put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* "$<len>\r\n<bytes>\r\n" at p; returns the bytes written. */
static size_t
put_bulk(char *p, const char *s, size_t n)
{
	size_t o = 0;

	p[o++] = '$';
	o += put_u64(p + o, n);
	p[o++] = '\r';
	p[o++] = '\n';
	memcpy(p + o, s, n);
	o += n;
	p[o++] = '\r';
	p[o++] = '\n';
	return o;
}

/* Room for the head of a command: "*<total>\r\n", and for a script "$7\r\nEVALSHA\r\n" and
 * "$40\r\n<sha>\r\n" (or FCALL and the function's name, shorter and longer), and
 * "$<n>\r\n<nkeys>\r\n". */
#define HEAD_MAX (1 + 20 + 2 + (1 + 1 + 2 + 7 + 2) + (1 + 2 + 2 + 46 + 2) + (1 + 20 + 2 + 20 + 2))

/* A command record with room for `need` bytes of RESP, its head written; NULL when the
 * connection is not up or on out of memory. */
static struct redis_cmd *
cmd_new(struct redis *rd, int script, int nkeys, int nargs, size_t need)
{
	struct redis_cmd *c;
	size_t o = 0, nkl;
	char nk[20];

	if (!redis_is_up(rd) || rd->conn == NULL || nargs < 0 || nkeys < 0)
		return NULL;
	if ((c = malloc(sizeof(*c) + HEAD_MAX + need)) == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->argc = nargs + (script ? 3 : 0);
	c->buf[o++] = '*';
	o += put_u64(c->buf + o, (uint64_t)c->argc);
	c->buf[o++] = '\r';
	c->buf[o++] = '\n';
	if (script) {
		nkl = put_u64(nk, (uint64_t)nkeys);
		if (rd->fcall) {
			o += put_bulk(c->buf + o, "FCALL", 5);
			o += put_bulk(c->buf + o, rd->fname, 46);
			c->fcall = 1;
		} else {
			o += put_bulk(c->buf + o, "EVALSHA", 7);
			o += put_bulk(c->buf + o, rd->sha, 40);
		}
		c->rest = o;
		o += put_bulk(c->buf + o, nk, nkl);
	}
	c->rd = rd;
	c->script = script != 0;
	c->len = o;
	return c;
}

/* Queues c (fully formatted) on the connection and starts its deadline (the queue stays in deadline
 * order: every command gets the same timeout). */
static struct redis_cmd *
cmd_send(struct redis *rd, struct redis_cmd *c, redis_fn fn, void *arg)
{
	int64_t now;

	c->fn = fn;
	c->arg = arg;
	if (evbuffer_add(rd->conn->s.out, c->buf, c->len) < 0) {
		free(c);
		return NULL;
	}
	STAILQ_INSERT_TAIL(&rd->conn->wait, c, rlink);
	wflush_soon(rd);
	now = now_ms();
	if (rd->owed++ == 0)
		rd->last_io_ms = now;        /* owing starts now */
	c->deadline = now + rd->timeout_ms;
	TAILQ_INSERT_TAIL(&rd->q, c, link);
	c->in_q = 1;
	arm_tmo(rd);
	return c;
}

/* Formats argv (after an optional EVALSHA <sha> / FCALL <name>, and <nkeys>) in RESP, in one allocation
 * with the command's record, and sends it. No printf on this path. */
static struct redis_cmd *
send_cmd(struct redis *rd, int script, int nkeys, int argc, const char **argv,
    const size_t *lens, redis_fn fn, void *arg)
{
	struct redis_cmd *c;
	size_t need = 0;
	int i;

	for (i = 0; i < argc; i++)
		need += 1 + 20 + 2 + lens[i] + 2;
	if ((c = cmd_new(rd, script, nkeys, argc, need)) == NULL)
		return NULL;
	for (i = 0; i < argc; i++)
		c->len += put_bulk(c->buf + c->len, argv[i], lens[i]);
	return cmd_send(rd, c, fn, arg);
}

struct redis_cmd *
redis_script(struct redis *rd, int nkeys, int argc, const char **argv, const size_t *lens,
    redis_fn fn, void *arg)
{
	return send_cmd(rd, 1, nkeys, argc, argv, lens, fn, arg);
}

struct redis_cmd *
redis_script_args(struct redis *rd, const struct redis_args *keys, const struct redis_args *args,
    redis_fn fn, void *arg)
{
	struct redis_cmd *c;

	if (keys->b.oom || args->b.oom)
		return NULL;
	c = cmd_new(rd, 1, keys->n, keys->n + args->n, keys->b.len + args->b.len);
	if (c == NULL)
		return NULL;
	memcpy(c->buf + c->len, keys->b.p, keys->b.len);
	c->len += keys->b.len;
	memcpy(c->buf + c->len, args->b.p, args->b.len);
	c->len += args->b.len;
	return cmd_send(rd, c, fn, arg);
}

struct redis_cmd *
redis_command(struct redis *rd, int argc, const char **argv, const size_t *lens, redis_fn fn,
    void *arg)
{
	return send_cmd(rd, 0, 0, argc, argv, lens, fn, arg);
}

/* ---- arguments built in place ---------------------------------------------------------------- */

void
redis_args_str(struct redis_args *a, const char *s, size_t n)
{
	if (sbuf_reserve(&a->b, 1 + 20 + 2 + n + 2) < 0)
		return;
	a->b.len += put_bulk(a->b.p + a->b.len, s, n);
	a->n++;
}

void
redis_args_int(struct redis_args *a, int64_t v)
{
	char tmp[21];
	size_t n = 0;

	if (v < 0)
		tmp[n++] = '-';
	n += put_u64(tmp + n, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
	redis_args_str(a, tmp, n);
}

void
redis_args_reset(struct redis_args *a)
{
	sbuf_reset(&a->b);
	a->b.oom = 0;
	a->n = 0;
}

void
redis_args_fini(struct redis_args *a)
{
	sbuf_fini(&a->b);
	a->n = 0;
}

void
redis_cmd_detach(struct redis_cmd *c)
{
	if (c == NULL)
		return;
	c->fn = NULL;
	c->arg = NULL;
	if (c->in_q) {
		TAILQ_REMOVE(&c->rd->q, c, link);
		c->in_q = 0;
	}
}

/* ---- life ------------------------------------------------------------------------------------- */

/* SHA-1 of s in hex, as EVALSHA names a script. */
static int
sha1_hex(const char *s, size_t n, char hex[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(s, n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	for (i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

char *
redis_library(const char *script, size_t len, size_t *outlen)
{
	char sha[41], *lib;
	const char *nl;
	size_t head;
	int n;

	if (sha1_hex(script, len, sha) < 0)
		return NULL;
	if (len >= 2 && script[0] == '#' && script[1] == '!' &&
	    (nl = memchr(script, '\n', len)) != NULL) {
		len -= (size_t)(nl + 1 - script);
		script = nl + 1;
	}
	head = 2 * (11 + 6 + 40) + 32;
	if ((lib = malloc(head + len + 1)) == NULL)
		return NULL;
	n = snprintf(lib, head, "#!lua name=visor_%s\nlocal FNAME = 'visor_%s'\n", sha, sha);
	if (n < 0 || (size_t)n >= head) {
		free(lib);
		return NULL;
	}
	memcpy(lib + n, script, len);
	lib[(size_t)n + len] = '\0';
	*outlen = (size_t)n + len;
	return lib;
}

struct redis *
redis_new(struct event_base *base, struct metrics *m, int worker_id, const char *script,
    size_t script_len)
{
	struct redis *rd;
	rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	rd->base = base;
	rd->m = m;
	rd->wid = worker_id;
	rd->script = script;
	rd->script_len = script_len;
	rd->backoff_ms = BACKOFF_MIN_MS;
	TAILQ_INIT(&rd->q);
	if (script != NULL) {
		if (sha1_hex(script, script_len, rd->sha) < 0)
			goto fail;
		if ((rd->lib = redis_library(script, script_len, &rd->lib_len)) == NULL)
			goto fail;
		snprintf(rd->fname, sizeof(rd->fname), "visor_%s", rd->sha);
	}
	rd->tmo_ev = evtimer_new(base, on_tmo, rd);
	rd->retry_ev = evtimer_new(base, on_retry, rd);
	rd->reap_ev = event_new(base, -1, 0, on_reap, rd);
	rd->wflush_ev = event_new(base, -1, 0, on_wflush, rd);
	if (!rd->tmo_ev || !rd->retry_ev || !rd->reap_ev || !rd->wflush_ev)
		goto fail;
	return rd;
fail:
	redis_free(rd);
	return NULL;
}

static void
free_settings(struct redis *rd)
{
	if (rd->pass)
		explicit_bzero(rd->pass, strlen(rd->pass));
	free(rd->host);
	free(rd->user);
	free(rd->pass);
	free(rd->tls_ca);
	free(rd->tls_cert);
	free(rd->tls_key);
	free(rd->tls_name);
	free(rd->sn_master);
	rd->sn_master = NULL;
	rd->host = rd->user = rd->pass = NULL;
	rd->tls_ca = rd->tls_cert = rd->tls_key = rd->tls_name = NULL;
	SSL_CTX_free(rd->ctx);
	SSL_CTX_free(rd->ctx_gen);
	rd->ctx = NULL;
	rd->ctx_gen = NULL;
}

static void
unconfigure(struct redis *rd)
{
	rd->configured = 0;
	evtimer_del(rd->retry_ev);
	sentinel_free(rd->sn);
	rd->sn = NULL;
	rd->asking = 0;
	if (rd->dnsreq) {
		struct evdns_getaddrinfo_request *req = rd->dnsreq;
		rd->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (rd->conn)
		drop_conn(rd, "configuration changed");
	set_state(rd, RS_DOWN);
	fail_queue(rd);
	free_settings(rd);
}

/* The same server (or the same sentinels), the same credentials, the same TLS settings. */
static int
same_settings(const struct redis *rd, const struct conf *c, const char *host, int port,
    const char *user, const char *pass, int db)
{
	if ((rd->sn != NULL) != (rd->script != NULL && c->redis.sentinel))
		return 0;
	if (rd->sn != NULL ? !sentinel_same(rd->sn, c) :
	    !(streq_null(rd->host, host) && rd->port == port))
		return 0;
	return streq_null(rd->user, user) && streq_null(rd->pass, pass) &&
	    rd->db == db && rd->tls == c->redis.tls &&
	    (!rd->tls || (streq_null(rd->tls_ca, c->redis.tls_ca) &&
	    streq_null(rd->tls_cert, c->redis.tls_cert) &&
	    streq_null(rd->tls_key, c->redis.tls_key) &&
	    streq_null(rd->tls_name, c->redis.tls_server_name) &&
	    rd->tls_insecure == c->redis.tls_insecure));
}

/* The worker's own TLS context for the generation's settings (later connections use the
 * newest): built here rather than shared with the other workers, whose handshakes would
 * otherwise race inside OpenSSL's shared client state (seen by ThreadSanitizer). If the
 * files cannot be read again since the load checked them, the generation's context is
 * shared instead (logged). */
static void
take_ctx(struct redis *rd, const struct conf *c)
{
	SSL_CTX *gen = c->redis.tls ? tls_redis_ctx(c->tls_rt) : NULL, *ctx = NULL;
	const char *key;
	char eb[256];

	if (gen == rd->ctx_gen)
		return;
	if (gen != NULL && (ctx = tls_redis_ctx_new(c, eb, sizeof(eb), &key)) == NULL) {
		log_warn("redis: cannot build this worker's TLS context (%s%s%s); sharing the "
		    "configuration's", key ? key : "", key ? ": " : "", eb);
		if (SSL_CTX_up_ref(gen) == 1)
			ctx = gen;
	}
	if (gen != NULL && SSL_CTX_up_ref(gen) != 1) {
		SSL_CTX_free(ctx);     /* cannot hold it: build again next time */
		ctx = NULL;
		gen = NULL;
	}
	SSL_CTX_free(rd->ctx);
	SSL_CTX_free(rd->ctx_gen);
	rd->ctx = ctx;
	rd->ctx_gen = gen;
}

/* Applies settings: the server (NULL with sentinels: asked on each connect), the credentials,
 * the db, the URL's TLS settings. Reconnects only when something changed. */
static void
configure(struct redis *rd, const struct conf *c, const char *host, int port,
    const char *user, const char *pass, int db, int64_t timeout_ms)
{
	int sentinel = rd->script != NULL && c->redis.sentinel;

	rd->timeout_ms = timeout_ms > 0 ? timeout_ms : 50;
	rd->dead_ms = MAX(DEAD_MIN_MS, DEAD_TIMEOUTS * rd->timeout_ms);
	if (rd->configured && same_settings(rd, c, host, port, user, pass, db)) {
		take_ctx(rd, c);
		if (rd->sn)
			sentinel_conf(rd->sn, c);
		return;
	}
	if (rd->configured)
		unconfigure(rd);
	rd->host = sentinel ? NULL : dup_null(host ? host : "127.0.0.1");
	rd->user = dup_null(user);
	rd->pass = dup_null(pass);
	rd->port = sentinel ? 0 : port;
	rd->db = db;
	rd->tls = c->redis.tls;
	rd->tls_insecure = c->redis.tls_insecure;
	if (rd->tls) {
		rd->tls_ca = dup_null(c->redis.tls_ca);
		rd->tls_cert = dup_null(c->redis.tls_cert);
		rd->tls_key = dup_null(c->redis.tls_key);
		rd->tls_name = dup_null(c->redis.tls_server_name);
	}
	if (sentinel) {
		rd->sn_master = dup_null(c->redis.sentinel_master);
		rd->sn = sentinel_new(rd->base, rd->m, rd->wid, c, on_primary, rd);
	}
	if ((!sentinel && rd->host == NULL) || (sentinel && (!rd->sn || !rd->sn_master)) ||
	    (user && !rd->user) || (pass && !rd->pass) || (rd->tls && ((c->redis.tls_ca &&
	    !rd->tls_ca) || (c->redis.tls_cert && !rd->tls_cert) || (c->redis.tls_key &&
	    !rd->tls_key) || (c->redis.tls_server_name && !rd->tls_name)))) {
		log_error("redis (worker %d): out of memory", rd->wid);
		sentinel_free(rd->sn);
		rd->sn = NULL;
		free_settings(rd);
		return;
	}
	take_ctx(rd, c);
	rd->configured = 1;
	rd->outage_logged = 0;
	rd->backoff_ms = BACKOFF_MIN_MS;
	connect_start(rd);
}

void
redis_configure(struct redis *rd, const struct conf *c)
{
	if (!c->redis.enabled || c->redis.cluster) {   /* a cluster has its own (cluster.c) */
		if (rd->configured)
			unconfigure(rd);
		return;
	}
	configure(rd, c, c->redis.host, c->redis.port, c->redis.username, c->redis.password,
	    c->redis.db, c->redis.timeout_ms);
}

void
redis_configure_node(struct redis *rd, const struct conf *c, const char *host, int port,
    int64_t timeout_ms)
{
	configure(rd, c, host, port, c->redis.sentinel_user, c->redis.sentinel_pass, 0,
	    timeout_ms);
}

void
redis_configure_at(struct redis *rd, const struct conf *c, const char *host, int port)
{
	configure(rd, c, host, port, c->redis.username, c->redis.password, 0,
	    c->redis.timeout_ms);
}

void
redis_retarget(struct redis *rd, const char *host, int port, int64_t delay_ms)
{
	void (*fn)(void *, int) = rd->state_fn;
	char *h;

	if (!rd->configured || (h = strdup(host)) == NULL)
		return;
	free(rd->host);
	rd->host = h;
	rd->port = port;
	if (rd->dnsreq) {
		struct evdns_getaddrinfo_request *req = rd->dnsreq;
		rd->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	rd->state_fn = NULL;                  /* leaving on purpose is no failure to report */
	if (rd->conn)
		drop_conn(rd, "moving to another server");
	rd->state_fn = fn;
	evtimer_del(rd->retry_ev);
	set_state(rd, RS_DOWN);
	rd->backoff_ms = BACKOFF_MIN_MS;
	rd->outage_logged = 0;
	if (delay_ms <= 0)
		connect_start(rd);
	else
		ev_timer_in(rd->retry_ev, delay_ms);
}

void
redis_hooks(struct redis *rd, void (*state_fn)(void *arg, int up), redis_fn push_fn,
    void *arg)
{
	rd->state_fn = state_fn;
	rd->state_arg = arg;
	rd->push_fn = push_fn;
	rd->push_arg = arg;
}

int
redis_is_down(const struct redis *rd)
{
	return rd == NULL || __atomic_load_n(&rd->state, __ATOMIC_ACQUIRE) == RS_DOWN;
}

void
redis_free(struct redis *rd)
{
	struct rconn *conn;

	if (rd == NULL)
		return;
	rd->configured = 0;
	rd->state_fn = NULL;
	rd->push_fn = NULL;
	sentinel_free(rd->sn);
	rd->sn = NULL;
	if (rd->dnsreq) {
		struct evdns_getaddrinfo_request *req = rd->dnsreq;
		rd->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	set_state(rd, RS_DOWN);
	conn = rd->conn;
	rd->conn = NULL;
	fail_queue(rd);
	if (conn)
		conn_free(conn);              /* not in a callback: the worker has stopped */
	on_reap(-1, 0, rd);
	if (rd->dns)
		evdns_base_free(rd->dns, 0);
	if (rd->tmo_ev)
		event_free(rd->tmo_ev);
	if (rd->retry_ev)
		event_free(rd->retry_ev);
	if (rd->reap_ev)
		event_free(rd->reap_ev);
	if (rd->wflush_ev)
		event_free(rd->wflush_ev);
	free_settings(rd);
	free(rd->lib);
	free(rd);
}
