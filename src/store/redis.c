/* SPDX-License-Identifier: MIT
 * redis — a worker's async Redis connection (contract in redis.h).
 *
 * States: DOWN (waiting for the backoff timer), CONNECTING (resolving, connecting, or sending
 * AUTH / SELECT / SCRIPT LOAD — one deadline covers all of it), UP. Only UP accepts commands:
 * a request never waits on a connection that is not known to work.
 *
 * Deadlines: a command past its deadline is failed alone; `owed` counts the replies the live
 * connection still owes (timed-out commands included) and `last_io_ms` is the last reply (or
 * when the connection started owing): owing for dead_ms without a word is what kills it.
 *
 * Events: hiredis's own libevent adapter. (Writing each pass's commands at the end of that
 * pass through hooks of our own was tried: 0.88 against the adapter's 0.78 in one pair of
 * ratelimit.sh runs, 0.79 against 0.82 in the next — no difference the bench can see.)
 *
 * hiredis 0.14 rules this file lives by: a context whose connect fails is freed by hiredis
 * right after onConnect(REDIS_ERR); one that loses its connection is freed right after the
 * pending callbacks ran with a NULL reply and onDisconnect; redisAsyncFree() runs the pending
 * callbacks with NULL too. So `rd->ac` is cleared in every one of those callbacks before anything
 * else can send on it, and contexts we drop ourselves go to `dying`, freed by reap_ev outside
 * any hiredis callback.
 */
#include "store/redis.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/dns.h>
#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>
#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"

#define BACKOFF_MIN_MS   25
#define BACKOFF_MAX_MS   500
#define DEAD_MIN_MS      1000            /* silence, with replies owed, that kills a connection */
#define DEAD_TIMEOUTS    4               /* ... or this many timeouts when that is longer */

enum rstate { RS_DOWN = 0, RS_CONNECTING, RS_UP };

struct redis_cmd {
	TAILQ_ENTRY(redis_cmd) link;
	struct redis *rd;
	redis_fn      fn;
	void         *arg;
	int64_t       deadline;
	unsigned      in_q : 1;
	unsigned      script : 1;
	unsigned      retried : 1;
	int           argc;
	size_t        rest;              /* script: offset of the arguments after the sha */
	size_t        len;
	char          buf[];             /* the RESP-formatted command */
};

struct dying {
	struct dying      *next;
	redisAsyncContext *ac;
};

struct redis {
	struct event_base *base;
	struct metrics    *m;
	int                wid;
	const char        *script;
	size_t             script_len;
	char               sha[41];

	/* configuration in force */
	int                configured;
	char              *host;
	int                port;
	char              *user, *pass;
	int                db;
	int64_t            timeout_ms;
	int64_t            dead_ms;

	/* connection */
	redisAsyncContext *ac;
	int                state;        /* enum rstate; read by other threads */
	int                handshake;    /* replies still due before UP */
	int64_t            last_io_ms;   /* last reply, or when the connection started owing one */
	int                owed;         /* replies owed by the live connection (UP commands) */
	int                backoff_ms;
	int                outage_logged;
	int                ever_up;
	struct dying      *dying;
	TAILQ_HEAD(, redis_cmd) q;       /* sent, unanswered, in send order (= deadline order) */
	struct event      *tmo_ev;
	int                tmo_armed;
	int64_t            tmo_at;
	struct event      *retry_ev;
	struct event      *reap_ev;
	struct evdns_base *dns;
	struct evdns_getaddrinfo_request *dnsreq;
};

static void connect_start(struct redis *rd);
static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

/* ---- small helpers ---------------------------------------------------------------------- */

static void
timer_in(struct event *ev, int64_t ms)
{
	struct timeval tv = tv_ms(ms);

	evtimer_add(ev, &tv);
}

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

/* ---- failing and dropping ----------------------------------------------------------------- */

/* Every command waiting on the connection fails now (their hiredis callbacks, when they come,
 * find fn == NULL). Callers may send again from inside fn: rd->ac is already NULL or fine. */
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
	timer_in(rd->retry_ev, rd->backoff_ms);
	rd->backoff_ms = MIN(rd->backoff_ms * 2, BACKOFF_MAX_MS);
}

/* The connection is gone (rd->ac already cleared by the caller). */
static void
conn_lost(struct redis *rd, const char *why)
{
	int was_up = rd->state == RS_UP;

	set_state(rd, RS_DOWN);
	rd->handshake = 0;
	rd->owed = 0;
	if (was_up || !rd->outage_logged) {
		log_msg(LOG_WARN, NULL, "redis %s:%d (worker %d): %s: %s",
		    rd->host ? rd->host : "-", rd->port, rd->wid,
		    was_up ? "connection lost" : "cannot connect", why ? why : "error");
		rd->outage_logged = 1;
	}
	if (was_up)
		METRIC_INC(rd->m, redis_errors);
	evtimer_del(rd->retry_ev);
	schedule_retry(rd);
	fail_queue(rd);
}

/* We give up on the live context: unhook it now, free it on the next loop turn. */
static void
drop_ctx(struct redis *rd, const char *why)
{
	redisAsyncContext *ac = rd->ac;
	struct dying *d;

	if (ac == NULL)
		return;
	rd->ac = NULL;
	d = malloc(sizeof(*d));
	if (d) {
		d->ac = ac;
		d->next = rd->dying;
		rd->dying = d;
		event_active(rd->reap_ev, EV_TIMEOUT, 0);
	} else {
		/* cannot defer: close its socket so hiredis frees it on its next read */
		redisAsyncDisconnect(ac);
	}
	conn_lost(rd, why);
}

static void
dying_forget(struct redis *rd, const redisAsyncContext *ac)
{
	struct dying **pp, *d;

	for (pp = &rd->dying; (d = *pp) != NULL; pp = &d->next) {
		if (d->ac == ac) {
			*pp = d->next;
			free(d);
			return;
		}
	}
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct redis *rd = arg;
	struct dying *d;

	(void)fd;
	(void)what;
	while ((d = rd->dying) != NULL) {
		redisAsyncContext *ac = d->ac;
		rd->dying = d->next;
		free(d);
		redisAsyncFree(ac);          /* callbacks: NULL replies, onDisconnect — all stale */
	}
}

/* ---- hiredis connection callbacks ---------------------------------------------------------- */

static void
on_connect(const redisAsyncContext *cac, int status)
{
	struct redis *rd = cac->data;

	if (cac != rd->ac) {
		if (status != REDIS_OK)
			dying_forget(rd, cac);    /* hiredis frees it after this returns */
		return;
	}
	if (status != REDIS_OK) {
		rd->ac = NULL;                /* hiredis frees it after this returns */
		conn_lost(rd, cac->errstr[0] ? cac->errstr : "connect failed");
	}
	/* else: the handshake replies decide */
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
	struct redis *rd = cac->data;

	(void)status;
	if (cac != rd->ac) {
		dying_forget(rd, cac);
		return;
	}
	rd->ac = NULL;
	conn_lost(rd, cac->err ? cac->errstr : "closed by the server");
}

static void
on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *rd = priv;
	redisReply *rp = reply;

	if (ac != rd->ac || rp == NULL)
		return;          /* stale context, or it is going away (its disconnect callback runs) */
	rd->last_io_ms = now_ms();
	if (rp->type == REDIS_REPLY_ERROR) {
		char why[160];
		/* Redis's own words ("WRONGPASS ...", "ERR DB index is out of range"); no secrets */
		snprintf(why, sizeof(why), "handshake refused: %.*s", (int)MIN(rp->len, 120),
		    rp->str);
		rd->outage_logged = 0;        /* a new reason deserves a line */
		drop_ctx(rd, why);
		return;
	}
	if (--rd->handshake > 0)
		return;
	set_state(rd, RS_UP);
	evtimer_del(rd->retry_ev);
	rd->backoff_ms = BACKOFF_MIN_MS;
	if (rd->outage_logged || !rd->ever_up)
		log_info("redis %s:%d (worker %d): connected", rd->host, rd->port, rd->wid);
	rd->outage_logged = 0;
	rd->ever_up = 1;
}

static int
send_argv(struct redis *rd, int argc, const char **argv, const size_t *lens)
{
	if (redisAsyncCommandArgv(rd->ac, on_handshake, rd, argc, argv, lens) != REDIS_OK)
		return -1;
	rd->handshake++;
	return 0;
}

static void
connect_addr(struct redis *rd, const char *ip)
{
	redisAsyncContext *ac;
	const char *argv[3];
	size_t lens[3];
	char dbs[16];
	int64_t dl;

	ac = redisAsyncConnect(ip, rd->port);
	if (ac == NULL) {
		conn_lost(rd, "out of memory");
		return;
	}
	if (ac->err) {
		char why[128];
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);           /* ours, not in a callback */
		conn_lost(rd, why);
		return;
	}
	ac->data = rd;
	if (redisLibeventAttach(ac, rd->base) != REDIS_OK) {
		redisAsyncFree(ac);
		conn_lost(rd, "cannot attach to the event loop");
		return;
	}
	redisEnableKeepAlive(&ac->c);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rd->ac = ac;
	rd->handshake = 0;
	/* pipelined: hiredis buffers them until the connection is established */
	if (rd->pass) {
		int n = 0;
		argv[n] = "AUTH";
		lens[n++] = 4;
		if (rd->user) {
			argv[n] = rd->user;
			lens[n++] = strlen(rd->user);
		}
		argv[n] = rd->pass;
		lens[n++] = strlen(rd->pass);
		if (send_argv(rd, n, argv, lens) < 0)
			goto fail;
	}
	if (rd->db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", rd->db);
		argv[0] = "SELECT";
		lens[0] = 6;
		argv[1] = dbs;
		lens[1] = strlen(dbs);
		if (send_argv(rd, 2, argv, lens) < 0)
			goto fail;
	}
	argv[0] = "SCRIPT";
	lens[0] = 6;
	argv[1] = "LOAD";
	lens[1] = 4;
	argv[2] = rd->script;
	lens[2] = rd->script_len;
	if (send_argv(rd, 3, argv, lens) < 0)
		goto fail;
	/* connect + handshake deadline */
	dl = MAX(1000, rd->timeout_ms * 4);
	timer_in(rd->retry_ev, dl);
	return;
fail:
	drop_ctx(rd, "cannot send the handshake");
}

static void
on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
	struct redis *rd = arg;
	char ip[INET6_ADDRSTRLEN];
	const void *a;

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
	if (res->ai_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)res->ai_addr)->sin6_addr;
	else
		a = &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
	if (inet_ntop(res->ai_family, a, ip, sizeof(ip)) == NULL) {
		evutil_freeaddrinfo(res);
		conn_lost(rd, "bad address from the resolver");
		return;
	}
	evutil_freeaddrinfo(res);
	connect_addr(rd, ip);
}

static void
connect_start(struct redis *rd)
{
	unsigned char tmp[16];
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	if (!rd->configured || rd->ac || rd->dnsreq)
		return;
	set_state(rd, RS_CONNECTING);
	if (inet_pton(AF_INET, rd->host, tmp) == 1 || inet_pton(AF_INET6, rd->host, tmp) == 1) {
		connect_addr(rd, rd->host);
		return;
	}
	if (rd->dns == NULL)
		rd->dns = evdns_base_new(rd->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (rd->dns == NULL) {
		/* no resolver: let hiredis resolve (blocks this worker for the lookup) */
		connect_addr(rd, rd->host);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* deadline for the lookup too */
	timer_in(rd->retry_ev, MAX(1000, rd->timeout_ms * 4));
	req = evdns_getaddrinfo(rd->dns, rd->host, NULL, &hints, on_dns, rd);
	if (req)
		rd->dnsreq = req;            /* else the callback already ran */
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
		/* the connect, the lookup or the handshake took too long */
		if (rd->dnsreq) {
			struct evdns_getaddrinfo_request *req = rd->dnsreq;
			rd->dnsreq = NULL;
			evdns_getaddrinfo_cancel(req);
			conn_lost(rd, "name lookup timed out");
		} else if (rd->ac) {
			drop_ctx(rd, "connect or handshake timed out");
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
	if (rd->ac && rd->owed > 0)
		at = MIN(at, rd->last_io_ms + rd->dead_ms);
	if (at == INT64_MAX || (rd->tmo_armed && rd->tmo_at <= at))
		return;
	rd->tmo_armed = 1;
	rd->tmo_at = at;
	timer_in(rd->tmo_ev, at - now_ms() + 1);
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
	if (rd->ac && rd->state == RS_UP && rd->owed > 0 && now - rd->last_io_ms >= rd->dead_ms) {
		/* not a word for dead_ms while replies are owed: the connection is stuck */
		snprintf(why, sizeof(why), "no reply for %lld ms", (long long)(now - rd->last_io_ms));
		drop_ctx(rd, why);
		return;
	}
	arm_tmo(rd);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void
cmd_free(struct redis_cmd *c)
{
	free(c);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_cmd *c = priv;
	struct redis *rd = c->rd;
	redisReply *rp = reply;
	redis_fn fn;

	if (rp == NULL) {
		/* the context is being freed: if it is the live one, nobody may send on it now */
		if (ac == rd->ac) {
			rd->ac = NULL;
			if (c->in_q) {
				TAILQ_REMOVE(&rd->q, c, link);
				c->in_q = 0;
			}
			fn = c->fn;
			c->fn = NULL;
			conn_lost(rd, ac->err ? ac->errstr : "connection closed");
			if (fn)
				fn(c->arg, NULL);
		} else if (c->fn) {
			if (c->in_q) {
				TAILQ_REMOVE(&rd->q, c, link);
				c->in_q = 0;
			}
			fn = c->fn;
			c->fn = NULL;
			fn(c->arg, NULL);
		}
		cmd_free(c);
		return;
	}
	if (ac == rd->ac) {
		rd->last_io_ms = now_ms();
		if (rd->owed > 0)
			rd->owed--;
	}
	if (rp->type == REDIS_REPLY_ERROR && c->script && !c->retried && c->fn &&
	    rp->len >= 8 && memcmp(rp->str, "NOSCRIPT", 8) == 0 && ac == rd->ac) {
		/* the script left Redis's cache: EVAL puts it back; EVALSHA works again after */
		struct sbuf b = { 0 };
		sbuf_printf(&b, "*%d\r\n$4\r\nEVAL\r\n$%zu\r\n", c->argc, rd->script_len);
		sbuf_add(&b, rd->script, rd->script_len);
		sbuf_add(&b, "\r\n", 2);
		sbuf_add(&b, c->buf + c->rest, c->len - c->rest);
		c->retried = 1;
		if (!b.oom && redisAsyncFormattedCommand(ac, on_reply, c, b.p, b.len) == REDIS_OK) {
			sbuf_fini(&b);
			rd->owed++;
			log_info("redis (worker %d): script not cached (NOSCRIPT), sent it again",
			    rd->wid);
			return;               /* same cmd, same place in the deadline queue */
		}
		sbuf_fini(&b);
	}
	if (c->in_q) {
		TAILQ_REMOVE(&rd->q, c, link);
		c->in_q = 0;
	}
	fn = c->fn;
	c->fn = NULL;
	if (fn)
		fn(c->arg, rp);
	cmd_free(c);
}

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

/* Room for the head of a command: "*<total>\r\n", and for a script "$7\r\nEVALSHA\r\n",
 * "$40\r\n<sha>\r\n" and "$<n>\r\n<nkeys>\r\n". */
#define HEAD_MAX (1 + 20 + 2 + (1 + 1 + 2 + 7 + 2) + (1 + 2 + 2 + 40 + 2) + (1 + 20 + 2 + 20 + 2))

/* A command record with room for `need` bytes of RESP, its head written; NULL when the
 * connection is not up or on out of memory. */
static struct redis_cmd *
cmd_new(struct redis *rd, int script, int nkeys, int nargs, size_t need)
{
	struct redis_cmd *c;
	size_t o = 0, nkl;
	char nk[20];

	if (!redis_is_up(rd) || rd->ac == NULL || nargs < 0 || nkeys < 0)
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
		o += put_bulk(c->buf + o, "EVALSHA", 7);
		o += put_bulk(c->buf + o, rd->sha, 40);
		c->rest = o;
		o += put_bulk(c->buf + o, nk, nkl);
	}
	c->rd = rd;
	c->script = script != 0;
	c->len = o;
	return c;
}

/* Hands c (fully formatted) to hiredis and starts its deadline (the queue stays in deadline
 * order: every command gets the same timeout). */
static struct redis_cmd *
cmd_send(struct redis *rd, struct redis_cmd *c, redis_fn fn, void *arg)
{
	int64_t now;

	c->fn = fn;
	c->arg = arg;
	if (redisAsyncFormattedCommand(rd->ac, on_reply, c, c->buf, c->len) != REDIS_OK) {
		free(c);
		return NULL;
	}
	now = now_ms();
	if (rd->owed++ == 0)
		rd->last_io_ms = now;        /* owing starts now */
	c->deadline = now + rd->timeout_ms;
	TAILQ_INSERT_TAIL(&rd->q, c, link);
	c->in_q = 1;
	arm_tmo(rd);
	return c;
}

/* Formats argv (after an optional EVALSHA <sha> <nkeys> prefix) in RESP, in one allocation
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

struct redis *
redis_new(struct event_base *base, struct metrics *m, int worker_id, const char *script,
    size_t script_len)
{
	struct redis *rd;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

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
	if (EVP_Digest(script, script_len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		goto fail;
	for (i = 0; i < 20; i++)
		snprintf(rd->sha + 2 * i, 3, "%02x", md[i]);
	rd->tmo_ev = evtimer_new(base, on_tmo, rd);
	rd->retry_ev = evtimer_new(base, on_retry, rd);
	rd->reap_ev = event_new(base, -1, 0, on_reap, rd);
	if (!rd->tmo_ev || !rd->retry_ev || !rd->reap_ev)
		goto fail;
	return rd;
fail:
	redis_free(rd);
	return NULL;
}

static void
unconfigure(struct redis *rd)
{
	rd->configured = 0;
	evtimer_del(rd->retry_ev);
	if (rd->dnsreq) {
		struct evdns_getaddrinfo_request *req = rd->dnsreq;
		rd->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (rd->ac)
		drop_ctx(rd, "configuration changed");
	set_state(rd, RS_DOWN);
	fail_queue(rd);
	free(rd->host);
	free(rd->user);
	free(rd->pass);
	rd->host = rd->user = rd->pass = NULL;
}

void
redis_configure(struct redis *rd, const struct conf *c)
{
	if (!c->redis.enabled) {
		if (rd->configured)
			unconfigure(rd);
		return;
	}
	rd->timeout_ms = c->redis.timeout_ms > 0 ? c->redis.timeout_ms : 50;
	rd->dead_ms = MAX(DEAD_MIN_MS, DEAD_TIMEOUTS * rd->timeout_ms);
	if (rd->configured && streq_null(rd->host, c->redis.host) && rd->port == c->redis.port &&
	    streq_null(rd->user, c->redis.username) && streq_null(rd->pass, c->redis.password) &&
	    rd->db == c->redis.db)
		return;
	if (rd->configured)
		unconfigure(rd);
	rd->host = dup_null(c->redis.host ? c->redis.host : "127.0.0.1");
	rd->user = dup_null(c->redis.username);
	rd->pass = dup_null(c->redis.password);
	rd->port = c->redis.port;
	rd->db = c->redis.db;
	if (rd->host == NULL || (c->redis.username && !rd->user) ||
	    (c->redis.password && !rd->pass)) {
		log_error("redis (worker %d): out of memory", rd->wid);
		free(rd->host);
		free(rd->user);
		free(rd->pass);
		rd->host = rd->user = rd->pass = NULL;
		return;
	}
	rd->configured = 1;
	rd->outage_logged = 0;
	rd->backoff_ms = BACKOFF_MIN_MS;
	connect_start(rd);
}

void
redis_free(struct redis *rd)
{
	redisAsyncContext *ac;

	if (rd == NULL)
		return;
	rd->configured = 0;
	if (rd->dnsreq) {
		struct evdns_getaddrinfo_request *req = rd->dnsreq;
		rd->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	set_state(rd, RS_DOWN);
	fail_queue(rd);
	ac = rd->ac;
	rd->ac = NULL;
	if (ac)
		redisAsyncFree(ac);           /* not in a callback: the worker has stopped */
	on_reap(-1, 0, rd);
	if (rd->dns)
		evdns_base_free(rd->dns, 0);
	if (rd->tmo_ev)
		event_free(rd->tmo_ev);
	if (rd->retry_ev)
		event_free(rd->retry_ev);
	if (rd->reap_ev)
		event_free(rd->reap_ev);
	free(rd->host);
	free(rd->user);
	free(rd->pass);
	free(rd);
}
