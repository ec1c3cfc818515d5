/* SPDX-License-Identifier: MIT
 * worker — one thread, one event_base, its own SO_REUSEPORT listeners. The main thread
 * reaches a worker only through the eventfd mailbox; the exchange of conf generations is a
 * single atomic pointer swap, so the request path never takes a lock.
 */
#include "core/worker.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "http/conn.h"
#include "store/store.h"
#include "http/upstream.h"
#include "net/resolve.h"

#define ACCEPT_BACKLOG 4096

static int
bind_listener(const struct units_addr *a)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, ACCEPT_BACKLOG) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *li = arg;
	struct worker *w = li->w;
	int one = 1;

	(void)l;
	if (w->draining) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	conn_accept(w, li, fd, sa, salen);
	if (w->n_conns >= w->conf->client.max_connections && w->accepting) {
		size_t i;
		/* At the per-worker cap: leave new connections in the kernel queue (SO_REUSEPORT
		 * hashes some to the other workers) until one closes. */
		for (i = 0; i < w->n_listeners; i++)
			evconnlistener_disable(w->listeners[i].l);
		w->accepting = 0;
	}
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct listener *li = arg;
	int e = EVUTIL_SOCKET_ERROR();

	(void)l;
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
		log_msg(LOG_WARN, NULL, "worker %d: accept: %s", li->w->id, strerror(e));
}

void
worker_conn_closed(struct worker *w)
{
	size_t i;

	if (!w->accepting && !w->draining && w->n_conns < w->conf->client.max_connections) {
		for (i = 0; i < w->n_listeners; i++)
			evconnlistener_enable(w->listeners[i].l);
		w->accepting = 1;
	}
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&w->dead)) != NULL)
		conn_free(c);
	if (w->draining && w->n_conns == 0)
		event_base_loopexit(w->base, NULL);
}

void
worker_reap_kick(struct worker *w)
{
	event_active(w->reap_ev, EV_TIMEOUT, 0);
}

/* glibc keeps freed memory in its arenas; after a burst of connections (or many TLS buffers
 * given back), and once traffic stops after a busy spell, return the free pages to the OS,
 * so RSS follows what is in use (the soak measured the arenas creeping up by a few per cent
 * over a million requests otherwise). At most once a second, only when there is something
 * to give back. */
static void
on_trim(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t reqs = 0;
	int idle, k;

	(void)fd;
	(void)what;
	for (k = 1; k <= 5; k++)
		reqs += __atomic_load_n(&w->m.requests_class[k], __ATOMIC_RELAXED);
	idle = reqs == w->trim_reqs;
	w->trim_reqs = reqs;
	if (!idle)
		w->trim_busy = 1;
	if (w->trimmed >= 64 || w->n_conns_peak - w->n_conns >= 256 || (idle && w->trim_busy)) {
		malloc_trim(64 * 1024);
		w->trimmed = 0;
		w->n_conns_peak = w->n_conns;
		w->trim_busy = 0;
	}
}

static void
on_log_flush(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	w->log_pending = 0;
	log_q_flush(w->logq);
}

void
worker_log_kick(struct worker *w)
{
	/* a long turn hands its lines over in 64 KiB batches rather than all at its end */
	if (log_q_pending(w->logq) > 64 * 1024) {
		log_q_flush(w->logq);
		return;
	}
	if (!w->log_pending) {
		w->log_pending = 1;
		event_active(w->log_ev, EV_TIMEOUT, 0);
	}
}


int
worker_random(struct worker *w, void *out, size_t n)
{
	if (n > 64)
		return -1;
	if (w->rnd_left < n) {
		if (RAND_bytes(w->rnd, sizeof(w->rnd)) != 1)
			return -1;
		w->rnd_left = sizeof(w->rnd);
	}
	memcpy(out, w->rnd + sizeof(w->rnd) - w->rnd_left, n);
	/* never hand the same bytes out twice */
	OPENSSL_cleanse(w->rnd + sizeof(w->rnd) - w->rnd_left, n);
	w->rnd_left -= n;
	return 0;
}

const struct timeval *
worker_timeout(struct worker *w, int64_t ms, struct timeval *tmp)
{
	size_t i;

	*tmp = tv_ms(ms);
	for (i = 0; i < ARRAY_LEN(w->tmo) && w->tmo[i].tv; i++)
		if (w->tmo[i].ms == ms)
			return w->tmo[i].tv;
	if (i == ARRAY_LEN(w->tmo))
		return tmp;
	w->tmo[i].tv = event_base_init_common_timeout(w->base, tmp);
	if (w->tmo[i].tv == NULL)
		return tmp;
	w->tmo[i].ms = ms;
	return w->tmo[i].tv;
}

int
worker_request_id(struct worker *w, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	int i;

	if (worker_random(w, b, sizeof(b)) < 0)
		return -1;
	for (i = 0; i < 16; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
	return 0;
}

const char *
worker_date(struct worker *w)
{
	int64_t t = wall_s();

	if (t != w->date_s) {
		w->date_s = t;
		http_date(t, w->date, sizeof(w->date));
	}
	return w->date;
}

static void
apply_conf(struct worker *w, struct conf *c)
{
	struct conf *old = w->conf;
	struct conn *cn, *nx;
	size_t i;

	/* Everyone below may still compare with the old generation: drop it last. */
	w->conf = c;
	up_pool_conf(w->pool, c);
	store_worker_conf(w, c);
	for (i = 0; filter_table[i]; i++)
		if (filter_table[i]->worker_conf)
			filter_table[i]->worker_conf(w, w->fstate[i], c);
	for (cn = TAILQ_FIRST(&w->conns); cn != NULL; cn = nx) {
		nx = TAILQ_NEXT(cn, link);   /* a connection with nothing open closes at once */
		conn_reload(cn);
	}
	conf_unref(old);
}

static void
drain_check(struct worker *w)
{
	struct conn *c, *n;

	for (c = TAILQ_FIRST(&w->conns); c; c = n) {
		n = TAILQ_NEXT(c, link);
		conn_drain(c);
	}
	if (w->n_conns == 0)
		event_base_loopexit(w->base, NULL);
}

static void
on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct conn *c, *n;

	(void)fd;
	(void)what;
	/* shutdown_timeout is over: whatever is left is cut. */
	for (c = TAILQ_FIRST(&w->conns); c; c = n) {
		n = TAILQ_NEXT(c, link);
		conn_close(c);
	}
	event_base_loopexit(w->base, NULL);
}

static void
on_mbox(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct conf *c;
	struct resolve_set *dns;
	uint64_t v;
	size_t i;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	c = __atomic_exchange_n(&w->next, NULL, __ATOMIC_ACQ_REL);
	if (c)
		apply_conf(w, c);
	dns = __atomic_exchange_n(&w->next_dns, NULL, __ATOMIC_ACQ_REL);
	if (dns)
		up_pool_dns(w->pool, dns);
	if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && !w->draining) {
		struct timeval tv;
		w->draining = 1;
		for (i = 0; i < w->n_listeners; i++) {
			evconnlistener_free(w->listeners[i].l);
			w->listeners[i].l = NULL;
		}
		w->n_listeners = 0;
		tv = tv_ms(w->conf->shutdown_timeout_ms);
		w->drain_timer = evtimer_new(w->base, on_drain_timer, w);
		if (w->drain_timer)
			evtimer_add(w->drain_timer, &tv);
		drain_check(w);
	}
}

static int
add_listener(struct worker *w, const struct units_addr *a, enum listen_kind kind)
{
	struct listener *li = &w->listeners[w->n_listeners];
	int fd;

	fd = bind_listener(a);
	if (fd < 0) {
		char buf[80];
		log_errno(LOG_ERROR, "cannot listen on %s", units_addr_str(a, buf, sizeof(buf)));
		return -1;
	}
	li->w = w;
	li->kind = kind;
	li->port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	li->l = evconnlistener_new(w->base, on_accept, li, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (li->l == NULL) {
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(li->l, on_accept_error);
	w->n_listeners++;
	return 0;
}

struct worker *
worker_new(int id, struct conf *c, struct mstore *mem)
{
	struct event_config *cfg;
	struct worker *w;
	size_t i, nl;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->id = id;
	w->mbox_fd = -1;
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->dead);
	/* Only this worker's thread ever touches its base (main talks through the eventfd), so
	 * it goes without the per-base lock evthread_use_pthreads() would otherwise add to every
	 * event operation; libevent's process-wide state keeps its locks. */
	if ((cfg = event_config_new()) == NULL)
		goto fail;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (w->base == NULL)
		goto fail;
	w->mbox_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->mbox_fd < 0)
		goto fail;
	w->mbox_ev = event_new(w->base, w->mbox_fd, EV_READ | EV_PERSIST, on_mbox, w);
	w->reap_ev = event_new(w->base, -1, 0, on_reap, w);
	w->log_ev = event_new(w->base, -1, 0, on_log_flush, w);
	w->trim_ev = event_new(w->base, -1, EV_PERSIST, on_trim, w);
	w->logq = log_q_new();
	if (!w->mbox_ev || !w->reap_ev || !w->log_ev || !w->trim_ev || !w->logq)
		goto fail;
	event_add(w->mbox_ev, NULL);
	{
		struct timeval one = { 1, 0 };
		event_add(w->trim_ev, &one);
	}
	w->pool = up_pool_new(w);
	if (w->pool == NULL)
		goto fail;
	nl = c->listen.https.n + (c->listen.has_http ? 1 : 0);
	w->listeners = calloc(nl, sizeof(*w->listeners));
	if (w->listeners == NULL)
		goto fail;
	for (i = 0; i < c->listen.https.n; i++)
		if (add_listener(w, &c->listen.https.v[i], LK_HTTPS) < 0)
			goto fail;
	if (c->listen.has_http && add_listener(w, &c->listen.http, LK_HTTP) < 0)
		goto fail;
	w->accepting = 1;
	w->mem = mem;
	if (store_worker_init(w, mem) < 0) {
		log_error("worker %d: cannot initialise the store", id);
		goto fail;
	}
	for (i = 0; filter_table[i]; i++) {
		if (filter_table[i]->worker_init &&
		    filter_table[i]->worker_init(w, &w->fstate[i]) < 0) {
			log_error("worker %d: cannot initialise %s", id, filter_table[i]->name);
			goto fail;
		}
	}
	apply_conf(w, conf_ref(c));
	return w;
fail:
	worker_free(w);
	return NULL;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t one = 1;

	event_base_dispatch(w->base);
	log_q_flush(w->logq);
	if (w->done_fd >= 0 && write(w->done_fd, &one, sizeof(one)) < 0)
		log_errno(LOG_ERROR, "worker %d: cannot tell main it stopped", w->id);
	return NULL;
}

int
worker_start(struct worker *w, int done_fd)
{
	w->done_fd = done_fd;
	return pthread_create(&w->thr, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void
mbox_ring(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->mbox_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERROR, "worker %d mailbox", w->id);
}

void
worker_post_conf(struct worker *w, struct conf *c)
{
	struct conf *old = __atomic_exchange_n(&w->next, conf_ref(c), __ATOMIC_ACQ_REL);

	conf_unref(old);     /* a generation the worker never picked up */
	mbox_ring(w);
}

void
worker_post_dns(struct worker *w, struct resolve_set *s)
{
	/* a snapshot the worker never picked up is simply replaced */
	resolve_set_unref(__atomic_exchange_n(&w->next_dns, resolve_set_ref(s), __ATOMIC_ACQ_REL));
	mbox_ring(w);
}

void
worker_post_stop(struct worker *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	mbox_ring(w);
}

void
worker_join(struct worker *w)
{
	pthread_join(w->thr, NULL);
}

void
worker_free(struct worker *w)
{
	struct conn *c;
	size_t i;

	if (w == NULL)
		return;
	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		conn_close(c);
	while ((c = TAILQ_FIRST(&w->dead)) != NULL)
		conn_free(c);
	for (i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].l)
			evconnlistener_free(w->listeners[i].l);
	free(w->listeners);
	for (i = 0; filter_table[i]; i++)
		if (filter_table[i]->worker_fini && w->fstate[i])
			filter_table[i]->worker_fini(w, w->fstate[i]);
	up_pool_free(w->pool);
	store_worker_fini(w);
	log_q_free(w->logq);
	sbuf_fini(&w->scratch);
	ev_free(&w->drain_timer);
	ev_free(&w->mbox_ev);
	ev_free(&w->reap_ev);
	ev_free(&w->log_ev);
	ev_free(&w->trim_ev);
	if (w->mbox_fd >= 0)
		close(w->mbox_fd);
	conf_unref(__atomic_exchange_n(&w->next, NULL, __ATOMIC_ACQ_REL));
	resolve_set_unref(__atomic_exchange_n(&w->next_dns, NULL, __ATOMIC_ACQ_REL));
	conf_unref(w->conf);
	if (w->base)
		event_base_free(w->base);
	free(w);
}
