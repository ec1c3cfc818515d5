/* SPDX-License-Identifier: MIT
 * jwks — the JWKS-over-HTTPS fetcher (see jwks.h for the contract).
 *
 * Threads. The registry (the list of sources) and each source's reference count live under
 * one process-wide mutex, taken only by conf_init (main), by the last unref of a generation
 * and by the helper thread when it looks for work: never per request. Everything about a
 * fetch in progress (DNS ticket, socket, parser, timers) belongs to the helper thread alone.
 * What workers read — the keyset, its version, the attempt counter — is published with
 * atomics, the keyset pointer itself under the source's own mutex.
 *
 * Lifetime of a source: created by jwks_src_get with one reference per generation naming
 * it; when the last reference goes, it is marked dead and the helper thread (which may be
 * mid-fetch) unlinks and frees it; before the helper thread exists, the unref frees it on
 * the spot. The helper thread is stopped and joined by an atexit handler, after main has
 * joined the workers and dropped the last generation.
 */
#include "lib/jwks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http/http.h"
#include "core/log.h"
#include "net/sock.h"
#include "net/tls.h"
#include "core/util.h"

struct dns_ticket;

struct jwks_src {
	struct jwks_src    *next;        /* registry link (fetcher.mu) */
	char               *url;         /* as configured */
	char               *url_log;     /* without the query: what logs show */
	char               *host, *port, *path;
	int                 host_is_ip;
	int                 refs;        /* fetcher.mu */
	int                 dead;        /* fetcher.mu: no generation holds it any more */
	int                 active;      /* atomic: fetching was asked for */
	int                 want;        /* atomic: a worker asked for a refetch now */
	int                 busy;        /* atomic: a fetch is running */
	int64_t             kick_ms;     /* atomic: last granted kick */
	uint64_t            ver;         /* atomic; written under mu */
	uint64_t            attempts;    /* atomic */
	pthread_mutex_t     mu;
	struct jwt_keyset  *ks;          /* mu */

	/* ---- helper thread only ---- */
	struct event       *timer;       /* next scheduled fetch */
	int                 armed;       /* timer made and first fetch scheduled */
	int                 fails;       /* consecutive failures */
	unsigned char       body_sha[SHA256_DIGEST_LENGTH];   /* of the last good document */
	int                 have_sha;
	/* the fetch in progress */
	struct dns_ticket  *dns;
	struct evutil_addrinfo *ai, *cur;
	struct sock         s;
	int                 s_on;
	struct http_parser  hp;
	int                 hp_on;
	struct sbuf         body;
	struct event       *deadline;
	int                 status;
	int64_t             max_age;
	const char         *why;         /* reason of a failure, static */
};

/* evdns callbacks may come after the fetch they served was cancelled: they hold a ticket,
 * never the source, and the source clears the ticket's pointer when it lets go. */
struct dns_ticket {
	struct jwks_src                     *src;
	struct evdns_getaddrinfo_request    *req;
};

static struct {
	pthread_mutex_t     mu;
	struct jwks_src    *list;
	int                 started, failed, stopping, atexit_set;
	pthread_t           thr;
	struct event_base  *base;
	struct evdns_base  *dns;
	SSL_CTX            *ctx;
	int                 efd;
	struct event       *wake;
} fetcher = { .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

static uint64_t g_ver;                   /* atomic: source versions, process-wide unique */

static void fetch_start(struct jwks_src *s);
static void fetch_end(struct jwks_src *s, int ok);

/* ---- pure helpers -------------------------------------------------------------------- */

static char *
dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static int
host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_';
}

int
jwks_url_parse(const char *url, char **host, char **port, char **path, const char **err)
{
	const char *a, *ae, *h, *he, *pp = NULL, *pe = NULL, *ps, *pend;
	size_t i, n;
	long pv = 0;

	*host = *port = *path = NULL;
	if (url == NULL || strncasecmp(url, "https://", 8) != 0) {
		*err = "not an https:// URL";
		return -1;
	}
	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) {
			*err = "control character or space in the URL";
			return -1;
		}
	a = url + 8;
	ae = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(ae - a)) != NULL) {
		*err = "user information in the URL";
		return -1;
	}
	if (a < ae && *a == '[') {
		h = a + 1;
		he = memchr(h, ']', (size_t)(ae - h));
		if (he == NULL || he == h) {
			*err = "bad IPv6 address in the URL";
			return -1;
		}
		for (const char *c = h; c < he; c++)
			if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
			    (*c >= 'A' && *c <= 'F') || *c == ':' || *c == '.')) {
				*err = "bad IPv6 address in the URL";
				return -1;
			}
		if (he + 1 < ae) {
			if (he[1] != ':') {
				*err = "bad host in the URL";
				return -1;
			}
			pp = he + 2;
			pe = ae;
		}
	} else {
		h = a;
		he = memchr(a, ':', (size_t)(ae - a));
		if (he != NULL) {
			pp = he + 1;
			pe = ae;
		} else {
			he = ae;
		}
		if (he == h) {
			*err = "empty host in the URL";
			return -1;
		}
		for (const char *c = h; c < he; c++)
			if (!host_char(*c)) {
				*err = "bad host in the URL";
				return -1;
			}
	}
	if (pp != NULL) {
		if (pp == pe || pe - pp > 5) {
			*err = "bad port in the URL";
			return -1;
		}
		for (const char *c = pp; c < pe; c++) {
			if (*c < '0' || *c > '9') {
				*err = "bad port in the URL";
				return -1;
			}
			pv = pv * 10 + (*c - '0');
		}
		if (pv < 1 || pv > 65535) {
			*err = "bad port in the URL";
			return -1;
		}
	}
	ps = ae;
	pend = ps + strcspn(ps, "#");
	n = (size_t)(pend - ps);
	*host = dupn(h, (size_t)(he - h));
	*port = pp ? dupn(pp, (size_t)(pe - pp)) : dupn("443", 3);
	if (n == 0 || *ps == '?') {
		/* "https://h" or "https://h?q": the path is "/" */
		char *t = malloc(n + 2);
		if (t != NULL) {
			t[0] = '/';
			memcpy(t + 1, ps, n);
			t[n + 1] = '\0';
		}
		*path = t;
	} else {
		*path = dupn(ps, n);
	}
	if (*host == NULL || *port == NULL || *path == NULL) {
		free(*host);
		free(*port);
		free(*path);
		*host = *port = *path = NULL;
		*err = "out of memory";
		return -1;
	}
	return 0;
}

int64_t
jwks_cache_max_age(const char *v, size_t n)
{
	size_t pos = 0, tl;
	const char *t;
	int64_t found = -1;

	while (http_list_next(v, n, ',', &pos, &t, &tl)) {
		if (ascii_casecmp_n(t, tl, "no-store", 8) == 0 ||
		    ascii_casecmp_n(t, tl, "no-cache", 8) == 0)
			return 0;
		if (tl > 8 && ascii_casecmp_n(t, 8, "max-age=", 8) == 0) {
			const char *d = t + 8, *de = t + tl;
			int64_t x = 0;
			if (de > d && *d == '"' && de[-1] == '"' && de - d >= 2) {
				d++;
				de--;
			}
			if (d == de)
				return -1;
			for (; d < de; d++) {
				if (*d < '0' || *d > '9')
					return -1;
				if (x < INT64_C(1) << 40)
					x = x * 10 + (*d - '0');
			}
			found = x;
		}
	}
	return found;
}

int64_t
jwks_ttl(int64_t max_age)
{
	if (max_age < 0)
		return JWKS_TTL_DEFAULT_S;
	if (max_age < JWKS_TTL_MIN_S)
		return JWKS_TTL_MIN_S;
	if (max_age > JWKS_TTL_MAX_S)
		return JWKS_TTL_MAX_S;
	return max_age;
}

/* ---- sources: registry and publication ----------------------------------------------- */

static void
src_free(struct jwks_src *s)
{
	if (s == NULL)
		return;
	jwt_keyset_unref(s->ks);
	pthread_mutex_destroy(&s->mu);
	free(s->url);
	free(s->url_log);
	free(s->host);
	free(s->port);
	free(s->path);
	free(s);
}

const char *
jwks_src_url(const struct jwks_src *s)
{
	return s->url_log;
}

struct jwks_src *
jwks_src_get(const char *url, const char **err)
{
	struct jwks_src *s;
	struct in6_addr a6;
	struct in_addr a4;

	pthread_mutex_lock(&fetcher.mu);
	for (s = fetcher.list; s != NULL; s = s->next)
		if (!s->dead && strcmp(s->url, url) == 0) {
			s->refs++;
			pthread_mutex_unlock(&fetcher.mu);
			return s;
		}
	pthread_mutex_unlock(&fetcher.mu);

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		*err = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->refs = 1;
	s->kick_ms = INT64_MIN / 2;
	if (jwks_url_parse(url, &s->host, &s->port, &s->path, err) < 0) {
		src_free(s);
		return NULL;
	}
	s->url = strdup(url);
	s->url_log = dupn(url, strcspn(url, "?#"));
	if (s->url == NULL || s->url_log == NULL) {
		*err = "out of memory";
		src_free(s);
		return NULL;
	}
	s->host_is_ip = inet_pton(AF_INET, s->host, &a4) == 1 ||
	    inet_pton(AF_INET6, s->host, &a6) == 1;
	pthread_mutex_lock(&fetcher.mu);
	s->next = fetcher.list;
	fetcher.list = s;
	pthread_mutex_unlock(&fetcher.mu);
	return s;
}

static void
wake_helper(void)
{
	uint64_t one = 1;

	if (fetcher.efd >= 0 && write(fetcher.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARN, "jwks: cannot wake the fetcher");
}

void
jwks_src_unref(struct jwks_src *s)
{
	struct jwks_src **pp;
	int handoff = 0;

	if (s == NULL)
		return;
	pthread_mutex_lock(&fetcher.mu);
	if (--s->refs > 0) {
		pthread_mutex_unlock(&fetcher.mu);
		return;
	}
	if (fetcher.started && !fetcher.stopping) {
		/* The helper thread may be mid-fetch: it unlinks and frees. */
		s->dead = 1;
		handoff = 1;
	} else if (!fetcher.started) {
		for (pp = &fetcher.list; *pp; pp = &(*pp)->next)
			if (*pp == s) {
				*pp = s->next;
				break;
			}
	} else {
		s->dead = 1;        /* stopping: the atexit handler frees it after the join */
		handoff = 2;
	}
	pthread_mutex_unlock(&fetcher.mu);
	if (handoff == 1)
		wake_helper();
	else if (handoff == 0)
		src_free(s);
}

uint64_t
jwks_src_version(const struct jwks_src *s)
{
	return __atomic_load_n(&s->ver, __ATOMIC_ACQUIRE);
}

struct jwt_keyset *
jwks_src_keyset(struct jwks_src *s, uint64_t *ver)
{
	struct jwt_keyset *ks;

	pthread_mutex_lock(&s->mu);
	ks = jwt_keyset_ref(s->ks);
	*ver = __atomic_load_n(&s->ver, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->mu);
	return ks;
}

uint64_t
jwks_src_attempts(const struct jwks_src *s)
{
	return __atomic_load_n(&s->attempts, __ATOMIC_ACQUIRE);
}

int
jwks_src_busy(const struct jwks_src *s)
{
	return __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE);
}

int
jwks_src_kick(struct jwks_src *s, int64_t now)
{
	int64_t last = __atomic_load_n(&s->kick_ms, __ATOMIC_RELAXED);

	for (;;) {
		if (now - last < JWKS_KICK_MS)
			return 0;
		if (__atomic_compare_exchange_n(&s->kick_ms, &last, now, 0, __ATOMIC_ACQ_REL,
		    __ATOMIC_RELAXED))
			break;
	}
	__atomic_store_n(&s->want, 1, __ATOMIC_RELEASE);
	jwks_src_activate(s);
	wake_helper();
	return 1;
}

/* Installs a new keyset (takes `ks`); readers see the version change. Helper thread. */
static void
publish(struct jwks_src *s, struct jwt_keyset *ks)
{
	struct jwt_keyset *old;

	pthread_mutex_lock(&s->mu);
	old = s->ks;
	s->ks = ks;
	__atomic_store_n(&s->ver, __atomic_add_fetch(&g_ver, 1, __ATOMIC_RELAXED),
	    __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->mu);
	jwt_keyset_unref(old);
}

/* ---- the helper thread --------------------------------------------------------------- */

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fetch_start(arg);
}

/* Looks at the registry: retires dead sources, arms new ones, serves kicks. */
static void
scan(void)
{
	struct jwks_src *s, **pp, *dead = NULL;

	pthread_mutex_lock(&fetcher.mu);
	for (pp = &fetcher.list; (s = *pp) != NULL;) {
		if (s->dead) {
			*pp = s->next;
			s->next = dead;
			dead = s;
			continue;
		}
		pp = &s->next;
		if (!__atomic_load_n(&s->active, __ATOMIC_ACQUIRE))
			continue;
		if (!s->armed) {
			s->timer = evtimer_new(fetcher.base, on_timer, s);
			if (s->timer == NULL)
				continue;
			s->armed = 1;
			__atomic_store_n(&s->want, 1, __ATOMIC_RELAXED);
		}
		if (__atomic_exchange_n(&s->want, 0, __ATOMIC_ACQ_REL) && !s->busy)
			ev_timer_in(s->timer, 0);
	}
	pthread_mutex_unlock(&fetcher.mu);
	while ((s = dead) != NULL) {
		dead = s->next;
		if (s->busy)
			fetch_end(s, -1);
		ev_free(&s->timer);
		src_free(s);
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	(void)what;
	(void)arg;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (__atomic_load_n(&fetcher.stopping, __ATOMIC_ACQUIRE)) {
		event_base_loopbreak(fetcher.base);
		return;
	}
	scan();
}

static void *
helper_main(void *arg)
{
	struct jwks_src *s;
	int i;

	(void)arg;
	scan();
	event_base_dispatch(fetcher.base);
	/* Stopping: end every fetch here, on the thread that owns them. */
	pthread_mutex_lock(&fetcher.mu);
	for (s = fetcher.list; s != NULL; s = s->next) {
		if (s->busy)
			fetch_end(s, -1);
		ev_free(&s->timer);
		s->armed = 0;
	}
	pthread_mutex_unlock(&fetcher.mu);
	/* Let cancelled DNS lookups deliver their (cancel) callbacks and free their tickets. */
	for (i = 0; i < 4; i++)
		event_base_loop(fetcher.base, EVLOOP_NONBLOCK);
	return NULL;
}

static void
helper_stop(void)
{
	struct jwks_src *s, **pp;

	pthread_mutex_lock(&fetcher.mu);
	if (!fetcher.started) {
		pthread_mutex_unlock(&fetcher.mu);
		return;
	}
	fetcher.stopping = 1;
	pthread_mutex_unlock(&fetcher.mu);
	wake_helper();
	pthread_join(fetcher.thr, NULL);
	pthread_mutex_lock(&fetcher.mu);
	/* Retired sources are ours to free now; live ones (a generation still held somewhere,
	 * which only happens on an abnormal exit) stay reachable from the list. */
	for (pp = &fetcher.list; (s = *pp) != NULL;) {
		if (s->dead) {
			*pp = s->next;
			src_free(s);
		} else {
			pp = &s->next;
		}
	}
	fetcher.started = 0;
	pthread_mutex_unlock(&fetcher.mu);
	if (fetcher.dns)
		evdns_base_free(fetcher.dns, 0);
	fetcher.dns = NULL;
	ev_free(&fetcher.wake);
	if (fetcher.base)
		event_base_free(fetcher.base);
	fetcher.base = NULL;
	SSL_CTX_free(fetcher.ctx);
	fetcher.ctx = NULL;
	if (fetcher.efd >= 0)
		close(fetcher.efd);
	fetcher.efd = -1;
}

static SSL_CTX *
client_ctx(void)
{
	char eb[256];
	SSL_CTX *c = tls_client_ctx_new(1, NULL, eb, sizeof(eb));

	if (c == NULL)
		log_warn("jwks: cannot make a TLS client context (%s); jwks_url keys will not load",
		    eb);
	return c;
}

/* Starts the helper thread once. fetcher.mu held. 0 or -1. */
static int
helper_start(void)
{
	sigset_t all, old;
	int rc;

	if (fetcher.started)
		return 0;
	if (fetcher.failed)
		return -1;
	fetcher.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fetcher.base = fetcher.efd >= 0 ? event_base_new() : NULL;
	if (fetcher.base == NULL)
		goto fail;
	fetcher.dns = evdns_base_new(fetcher.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (fetcher.dns == NULL)
		fetcher.dns = evdns_base_new(fetcher.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	fetcher.ctx = client_ctx();
	fetcher.wake = event_new(fetcher.base, fetcher.efd, EV_READ | EV_PERSIST, on_wake, NULL);
	if (fetcher.dns == NULL || fetcher.ctx == NULL || fetcher.wake == NULL || event_add(fetcher.wake, NULL) < 0)
		goto fail;
	/* Signals belong to the main thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&fetcher.thr, NULL, helper_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		goto fail;
	fetcher.started = 1;
	if (!fetcher.atexit_set && atexit(helper_stop) == 0)
		fetcher.atexit_set = 1;
	return 0;
fail:
	log_error("jwks: cannot start the fetcher thread; jwks_url keys will not load");
	fetcher.failed = 1;
	ev_free(&fetcher.wake);
	if (fetcher.dns)
		evdns_base_free(fetcher.dns, 0);
	if (fetcher.base)
		event_base_free(fetcher.base);
	SSL_CTX_free(fetcher.ctx);
	if (fetcher.efd >= 0)
		close(fetcher.efd);
	fetcher.wake = NULL;
	fetcher.dns = NULL;
	fetcher.base = NULL;
	fetcher.ctx = NULL;
	fetcher.efd = -1;
	return -1;
}

void
jwks_src_activate(struct jwks_src *s)
{
	int rc;

	if (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&fetcher.mu);
	rc = fetcher.stopping ? -1 : helper_start();
	if (rc == 0)
		__atomic_store_n(&s->active, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fetcher.mu);
	if (rc == 0)
		wake_helper();
}

/* ---- one fetch (helper thread) ------------------------------------------------------- */

static int
p_head(struct http_parser *p)
{
	struct jwks_src *s = p->owner;
	uint32_t i;

	s->status = llhttp_get_status_code(&p->ll);
	if (s->status != 200) {
		s->why = s->status >= 300 && s->status < 400 ? "redirect (not followed)" :
		    "status other than 200";
		return -1;
	}
	if ((p->ll.flags & F_CONTENT_LENGTH) && p->ll.content_length > JWKS_MAX_BODY) {
		s->why = "document larger than 1 MiB";
		return -1;
	}
	for (i = 0; i < p->nfields; i++) {
		const struct http_field *f = &p->fields[i];
		if (ascii_casecmp_n(p->raw.p + f->no, f->nl, "cache-control", 13) == 0) {
			int64_t m = jwks_cache_max_age(p->raw.p + f->vo, f->vl);
			if (m >= 0 && (s->max_age < 0 || m < s->max_age))
				s->max_age = m;
		}
	}
	return 0;
}

static int
p_body(struct http_parser *p, const char *at, size_t n)
{
	struct jwks_src *s = p->owner;

	if (s->body.len + n > JWKS_MAX_BODY) {
		s->why = "document larger than 1 MiB";
		return -1;
	}
	sbuf_add(&s->body, at, n);
	return s->body.oom ? -1 : 0;
}

static int
p_done(struct http_parser *p)
{
	(void)p;
	return 0;
}

static const struct http_parser_ops parser_ops = { p_head, p_body, p_done };

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct jwks_src *s = arg;

	(void)fd;
	(void)what;
	s->why = "timed out";
	fetch_end(s, 0);
}

/* Feeds what arrived; 1 when the response is complete, 0 for more, -1 on error. */
static int
feed(struct jwks_src *s)
{
	struct evbuffer_iovec v;
	long n;

	while (evbuffer_get_length(s->s.in) > 0) {
		if (evbuffer_peek(s->s.in, -1, NULL, &v, 1) < 1)
			return -1;
		n = http_parser_feed(&s->hp, v.iov_base, v.iov_len);
		if (n < 0) {
			if (s->why == NULL)
				s->why = "malformed HTTP response";
			return -1;
		}
		evbuffer_drain(s->s.in, (size_t)n);
		if (s->hp.msg_done)
			return 1;
	}
	return 0;
}

static void connect_next(struct jwks_src *s);

static void
on_sock(struct sock *sk, int ev, void *arg)
{
	struct jwks_src *s = arg;
	int r;

	(void)sk;
	if (ev & SOCK_EV_CONNECTED) {
		struct sbuf b = { 0 };
		sbuf_printf(&b, "GET %s HTTP/1.1\r\nHost: %s%s%s", s->path,
		    strchr(s->host, ':') ? "[" : "", s->host, strchr(s->host, ':') ? "]" : "");
		if (strcmp(s->port, "443") != 0)
			sbuf_printf(&b, ":%s", s->port);
		sbuf_adds(&b, "\r\nAccept: application/jwk-set+json, application/json\r\n"
		    "User-Agent: visor\r\nConnection: close\r\n\r\n");
		if (b.oom) {
			sbuf_fini(&b);
			s->why = "out of memory";
			fetch_end(s, 0);
			return;
		}
		evbuffer_add(s->s.out, b.p, b.len);
		sbuf_fini(&b);
		sock_flush(&s->s);
		sock_read_start(&s->s);
	}
	if (ev & SOCK_EV_READ) {
		r = feed(s);
		if (r != 0) {
			fetch_end(s, r > 0);
			return;
		}
	}
	if (ev & SOCK_EV_ERROR) {
		long vr = s->s.ssl ? SSL_get_verify_result(s->s.ssl) : X509_V_OK;
		if (vr != X509_V_OK) {
			log_warn("jwks: %s: certificate not trusted: %s", s->url_log,
			    X509_verify_cert_error_string(vr));
			s->why = "certificate verification failed";
			fetch_end(s, 0);
			return;
		}
		if (s->s.bytes_in == 0 && s->cur && s->cur->ai_next) {
			connect_next(s);
			return;
		}
		s->why = s->s.bytes_in ? "connection error" : "cannot connect";
		fetch_end(s, 0);
		return;
	}
	if (ev & SOCK_EV_EOF) {
		r = feed(s);
		if (r == 0 && http_parser_eof(&s->hp) == 0 && s->hp.msg_done)
			r = 1;
		if (r <= 0 && s->why == NULL)
			s->why = "connection closed before the end of the response";
		fetch_end(s, r > 0);
	}
}

/* Tries the next resolved address (s->cur moves forward). */
static void
connect_next(struct jwks_src *s)
{
	SSL *ssl;
	int fd;

	if (s->s_on) {
		sock_fini(&s->s);
		s->s_on = 0;
	}
	for (s->cur = s->cur ? s->cur->ai_next : s->ai; s->cur; s->cur = s->cur->ai_next) {
		if (s->cur->ai_family != AF_INET && s->cur->ai_family != AF_INET6)
			continue;
		if ((fd = sock_tcp_socket(s->cur->ai_family)) < 0)
			continue;
		ssl = SSL_new(fetcher.ctx);
		if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
			SSL_free(ssl);
			ERR_clear_error();
			close(fd);
			continue;
		}
		SSL_set_connect_state(ssl);
		if (s->host_is_ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s->host) != 1)
				goto bad;
		} else if (SSL_set_tlsext_host_name(ssl, s->host) != 1 ||
		    SSL_set1_host(ssl, s->host) != 1) {
			goto bad;
		}
		if (sock_init(&s->s, fetcher.base, fd, ssl, on_sock, s) < 0)
			goto bad;
		s->s_on = 1;
		if (sock_connect(&s->s, s->cur->ai_addr, s->cur->ai_addrlen) < 0) {
			sock_fini(&s->s);
			s->s_on = 0;
			continue;
		}
		return;
bad:
		SSL_free(ssl);
		ERR_clear_error();
		close(fd);
	}
	s->why = "cannot connect";
	fetch_end(s, 0);
}

static void
on_dns(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct dns_ticket *t = arg;
	struct jwks_src *s = t->src;

	free(t);
	if (s == NULL) {                      /* the fetch was cancelled meanwhile */
		if (ai)
			evutil_freeaddrinfo(ai);
		return;
	}
	s->dns = NULL;
	if (err != 0 || ai == NULL) {
		if (ai)
			evutil_freeaddrinfo(ai);
		s->why = "cannot resolve the host";
		fetch_end(s, 0);
		return;
	}
	s->ai = ai;
	s->cur = NULL;
	connect_next(s);
}

static void
fetch_start(struct jwks_src *s)
{
	struct evutil_addrinfo hints;
	struct dns_ticket *t;
	struct evdns_getaddrinfo_request *req;

	if (s->busy)
		return;
	__atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&s->want, 0, __ATOMIC_RELAXED);
	s->status = 0;
	s->max_age = -1;
	s->why = NULL;
	sbuf_reset(&s->body);
	s->body.oom = 0;
	http_parser_init(&s->hp, 0, &parser_ops, s, 64 * 1024);
	s->hp_on = 1;
	if (s->deadline == NULL)
		s->deadline = evtimer_new(fetcher.base, on_deadline, s);
	if (s->deadline == NULL) {
		s->why = "out of memory";
		fetch_end(s, 0);
		return;
	}
	ev_timer_in(s->deadline, JWKS_FETCH_TIMEOUT_MS);
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		s->why = "out of memory";
		fetch_end(s, 0);
		return;
	}
	t->src = s;
	s->dns = t;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* The callback may run before this returns (numeric hosts, /etc/hosts): then it has
	 * already freed the ticket and cleared s->dns. */
	req = evdns_getaddrinfo(fetcher.dns, s->host, s->port, &hints, on_dns, t);
	if (req != NULL && s->dns == t)
		t->req = req;
}

/* Ends the fetch in progress: ok 1 = a complete 200 response, 0 = failed, -1 = cancelled
 * (the source is being freed; nothing is published or scheduled). */
static void
fetch_end(struct jwks_src *s, int ok)
{
	struct jwt_keyset *ks = NULL;
	unsigned char sha[SHA256_DIGEST_LENGTH];
	const char *err = NULL;
	size_t skipped = 0, have = 0;
	int64_t next_ms;

	if (!s->busy)
		return;
	if (s->dns) {
		struct dns_ticket *t = s->dns;
		t->src = NULL;
		s->dns = NULL;
		if (t->req)
			evdns_getaddrinfo_cancel(t->req);    /* its callback frees the ticket */
		else
			free(t);
	}
	ev_free(&s->deadline);
	if (s->s_on) {
		sock_fini(&s->s);
		s->s_on = 0;
	}
	if (s->hp_on) {
		http_parser_fini(&s->hp);
		s->hp_on = 0;
	}
	if (s->ai) {
		evutil_freeaddrinfo(s->ai);
		s->ai = NULL;
		s->cur = NULL;
	}
	if (ok < 0) {
		sbuf_fini(&s->body);
		__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
		return;
	}
	if (ok) {
		SHA256((const unsigned char *)(s->body.p ? s->body.p : ""), s->body.len, sha);
		if (s->have_sha && memcmp(sha, s->body_sha, sizeof(sha)) == 0) {
			/* Same document: keep the published set (and the workers' token caches). */
			ok = 2;
		} else if ((ks = jwt_keyset_new()) == NULL) {
			ok = 0;
			s->why = "out of memory";
		} else if (jwt_keyset_add_jwks(ks, s->body.p ? s->body.p : "", s->body.len,
		    &skipped, &err) < 0) {
			ok = 0;
			s->why = err;
		} else if (ks->n == 0) {
			ok = 0;
			s->why = "no usable key in the document";
		}
	}
	sbuf_fini(&s->body);
	pthread_mutex_lock(&s->mu);
	have = s->ks ? s->ks->n : 0;
	pthread_mutex_unlock(&s->mu);
	if (ok) {
		s->fails = 0;
		next_ms = jwks_ttl(s->max_age) * 1000;
		if (ok == 1) {
			log_info("jwks: %zu key%s from %s (%zu skipped), next refresh in %llds",
			    ks->n, ks->n == 1 ? "" : "s", s->url_log, skipped,
			    (long long)(next_ms / 1000));
			memcpy(s->body_sha, sha, sizeof(sha));
			s->have_sha = 1;
			publish(s, ks);
			ks = NULL;
		} else {
			log_debug("jwks: %s unchanged, next refresh in %llds", s->url_log,
			    (long long)(next_ms / 1000));
		}
	} else {
		jwt_keyset_unref(ks);
		s->fails++;
		next_ms = JWKS_RETRY_MIN_MS;
		for (int i = 1; i < s->fails && next_ms < JWKS_RETRY_MAX_MS; i++)
			next_ms *= 2;
		if (next_ms > JWKS_RETRY_MAX_MS)
			next_ms = JWKS_RETRY_MAX_MS;
		log_warn("jwks: fetching %s failed: %s; %s, retry in %llds", s->url_log,
		    s->why ? s->why : "error", have ? "keeping the last good keys" : "no keys yet",
		    (long long)(next_ms / 1000));
	}
	/* attempts moves before busy clears: a worker that saw busy set waits for attempts to
	 * move; one that sees it clear has the published set already (see jwt.c). */
	__atomic_add_fetch(&s->attempts, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
	if (s->timer)
		ev_timer_in(s->timer, next_ms);
}
