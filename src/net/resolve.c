/* SPDX-License-Identifier: MIT
 * resolve — upstream host names followed on their TTL (contract and the one-resolver choice:
 * resolve.h).
 *
 * A name is a struct rname, keyed by the server as written ("app:3000"): its last good
 * address set, a timer for the next lookup and at most one lookup in flight. A lookup (struct
 * rq) asks A and AAAA at once and ends when both answered; the union of their records is the
 * new set, the smaller TTL says when to ask again. No record at all is a failure: the last
 * good set stays, the next try comes after `min`, doubling up to `max`.
 *
 * evdns runs a callback after evdns_cancel_request, later, from the loop: a lookup is never
 * cancelled. A name that goes away (SIGHUP) only detaches its lookup (rq->n = NULL) and the
 * answer, when it comes, is dropped; resolve_free frees the evdns_base without callbacks
 * (fail_requests 0) once the loop has ended, then every rq left.
 *
 * Options: randomize-case off (several container DNS forwarders answer in lower case, which
 * evdns would take for a spoof and time out on), a lookup waits 2 s and is tried twice.
 */
#include "net/resolve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/dns.h>

#include "core/log.h"

#define RESOLV_CONF       "/etc/resolv.conf"
#define HOSTS_FILE        "/etc/hosts"
#define HOSTS_MAX         16      /* addresses taken from /etc/hosts for one name */
#define FAIL_LOG_EVERY_MS 60000   /* a failing name is logged once, then at most this often */

struct rq;

struct rname {
	struct resolve     *r;
	char               *key;        /* as written: "app:3000" */
	char                host[256];
	int                 port;
	struct units_addr  *v;          /* last good set, canonical (resolve_canon) */
	size_t              n;
	struct event       *timer;
	struct rq          *q;          /* lookup in flight */
	unsigned            fails;      /* consecutive failed lookups */
	const char         *last_err;   /* static text */
	int64_t             fail_logged_ms;
	uint64_t            fail_unlogged;
	uint64_t            lookups, failures, changes;
	int                 seen;       /* resolve_conf's mark */
	TAILQ_ENTRY(rname)  link;
};

struct rq_fam {
	struct rq *q;
	int        family;
	int        err;
	int        done;
};

struct rq {
	struct resolve     *r;
	struct rname       *n;          /* NULL: the name went away, drop the answer */
	struct rq_fam       f4, f6;
	struct units_addr  *v;
	size_t              nv, cap;
	int64_t             ttl;        /* smallest TTL of the records, -1: none */
	int                 hosts;      /* the answer came from /etc/hosts */
	LIST_ENTRY(rq)      link;
};

struct resolve_ent {
	char              *key;
	struct units_addr *v;
	size_t             n;
};

struct resolve_set {
	int                 refs;
	struct resolve_ent *e;
	size_t              n;
};

struct resolve {
	struct event_base     *base;
	struct evdns_base     *dns;
	struct conf_addrs      ns_used;     /* the nameservers dns was made with (copies) */
	int                    ns_resolv;   /* dns reads /etc/resolv.conf */
	int64_t                min_ms, max_ms;
	TAILQ_HEAD(, rname)    names;
	LIST_HEAD(, rq)        queries;
	struct resolve_set    *cur;
	resolve_change_fn      cb;
	void                  *arg;
};

/* ---- pure parts ------------------------------------------------------------------------ */

int64_t
resolve_ttl_ms(int64_t ttl_s, int64_t min_ms, int64_t max_ms)
{
	int64_t ms;

	if (ttl_s < 0)
		ttl_s = 0;
	ms = ttl_s > INT64_MAX / 1000 ? INT64_MAX : ttl_s * 1000;
	if (ms < min_ms)
		ms = min_ms;
	if (ms > max_ms)
		ms = max_ms;
	return ms;
}

int64_t
resolve_retry_ms(unsigned fails, int64_t min_ms, int64_t max_ms)
{
	int64_t ms = min_ms;

	while (fails-- > 1 && ms < max_ms)
		ms *= 2;
	return ms > max_ms ? max_ms : ms;
}

/* Address bytes x[0..n) against y[0..n), then the ports (network order in, compared as
 * numbers). */
static int
addr_port_cmp(const void *x, const void *y, size_t n, uint16_t xport, uint16_t yport)
{
	int c = memcmp(x, y, n);

	if (c)
		return c;
	return ntohs(xport) < ntohs(yport) ? -1 : ntohs(xport) > ntohs(yport);
}

static int
addr_cmp(const struct units_addr *a, const struct units_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return a->ss.ss_family < b->ss.ss_family ? -1 : 1;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)&a->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)&b->ss;
		return addr_port_cmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr), x->sin_port,
		    y->sin_port);
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)&a->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)&b->ss;
		return addr_port_cmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr),
		    x->sin6_port, y->sin6_port);
	}
	return 0;
}

static int
addr_qcmp(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

size_t
resolve_canon(struct units_addr *v, size_t n)
{
	size_t i, k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), addr_qcmp);
	for (i = 1; i < n; i++)
		if (addr_cmp(&v[k], &v[i]) != 0)
			v[++k] = v[i];
	return k + 1;
}

void
resolve_diff(const struct units_addr *a, size_t na, const struct units_addr *b, size_t nb,
    size_t *added, size_t *removed)
{
	size_t i = 0, j = 0;
	int c;

	*added = *removed = 0;
	while (i < na || j < nb) {
		c = i == na ? 1 : j == nb ? -1 : addr_cmp(&a[i], &b[j]);
		if (c < 0) {
			(*removed)++;
			i++;
		} else if (c > 0) {
			(*added)++;
			j++;
		} else {
			i++;
			j++;
		}
	}
}

size_t
resolve_hosts(const char *path, const char *host, int port, struct units_addr *out, size_t max)
{
	char line[1024], *p, *tok, *save;
	unsigned char ip[16];
	size_t n = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		int fam;
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		if (inet_pton(AF_INET, tok, ip) == 1)
			fam = AF_INET;
		else if (inet_pton(AF_INET6, tok, ip) == 1)
			fam = AF_INET6;
		else
			continue;           /* a zone index (fe80::1%eth0) or junk */
		while ((p = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
			struct units_addr *a = &out[n];
			if (strcasecmp(p, host) != 0)
				continue;
			memset(a, 0, sizeof(*a));
			if (fam == AF_INET) {
				struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&a->ss;
				sin->sin_family = AF_INET;
				memcpy(&sin->sin_addr, ip, 4);
				sin->sin_port = htons((uint16_t)port);
				a->len = sizeof(*sin);
			} else {
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&a->ss;
				sin6->sin6_family = AF_INET6;
				memcpy(&sin6->sin6_addr, ip, 16);
				sin6->sin6_port = htons((uint16_t)port);
				a->len = sizeof(*sin6);
			}
			n++;
			break;
		}
	}
	fclose(f);
	return resolve_canon(out, n);
}

/* ---- snapshots --------------------------------------------------------------------------- */

static void
set_free(struct resolve_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->e[i].key);
		free(s->e[i].v);
	}
	free(s->e);
	free(s);
}

struct resolve_set *
resolve_set_ref(struct resolve_set *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
resolve_set_unref(struct resolve_set *s)
{
	if (s != NULL && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		set_free(s);
}

const struct units_addr *
resolve_set_find(const struct resolve_set *s, const char *key, size_t *n)
{
	size_t i;

	*n = 0;
	if (s == NULL)
		return NULL;
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->e[i].key, key) == 0) {
			*n = s->e[i].n;
			return s->e[i].n ? s->e[i].v : NULL;
		}
	}
	return NULL;
}

/* A snapshot of every name now; NULL: out of memory (the previous one stays). */
static struct resolve_set *
set_build(struct resolve *r)
{
	struct resolve_set *s;
	struct rname *nm;
	size_t n = 0;

	TAILQ_FOREACH(nm, &r->names, link)
		n++;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->refs = 1;
	if (n && (s->e = calloc(n, sizeof(*s->e))) == NULL)
		goto fail;
	TAILQ_FOREACH(nm, &r->names, link) {
		struct resolve_ent *e = &s->e[s->n++];
		if ((e->key = strdup(nm->key)) == NULL)
			goto fail;
		if (nm->n) {
			if ((e->v = malloc(nm->n * sizeof(*e->v))) == NULL)
				goto fail;
			memcpy(e->v, nm->v, nm->n * sizeof(*e->v));
			e->n = nm->n;
		}
	}
	return s;
fail:
	set_free(s);
	return NULL;
}

static void
publish(struct resolve *r)
{
	struct resolve_set *s = set_build(r);

	if (s == NULL) {
		log_error("upstream names: out of memory; the workers keep the previous addresses");
		return;
	}
	resolve_set_unref(r->cur);
	r->cur = s;
	if (r->cb)
		r->cb(r->arg, s);
}

/* ---- lookups ------------------------------------------------------------------------------ */

static void lookup_start(struct rname *nm);

static const char *
dns_err_text(int err)
{
	switch (err) {
	case DNS_ERR_NONE:         return "no address record";
	/* evdns treats a SERVFAIL as a timeout (some servers send it for "confused"): both end
	 * as DNS_ERR_TIMEOUT once the attempts are spent */
	case DNS_ERR_TIMEOUT:      return "timeout or SERVFAIL";
	case DNS_ERR_NOTEXIST:     return "NXDOMAIN";
	case DNS_ERR_SERVERFAILED: return "SERVFAIL";
	case DNS_ERR_REFUSED:      return "REFUSED";
	case DNS_ERR_NODATA:       return "no address record";
	case DNS_ERR_FORMAT:       return "format error";
	case DNS_ERR_TRUNCATED:    return "truncated answer";
	default:                   return "lookup failed";
	}
}

static void
timer_in(struct rname *nm, int64_t ms)
{
	ev_timer_in(nm->timer, ms);
}

static void
rq_free(struct rq *q)
{
	LIST_REMOVE(q, link);
	free(q->v);
	free(q);
}

static const char *
addr_list(const struct units_addr *v, size_t n, char *buf, size_t len)
{
	size_t i, off = 0;
	char one[80];

	buf[0] = '\0';
	for (i = 0; i < n && off + 1 < len; i++) {
		int k = snprintf(buf + off, len - off, "%s%s", i ? " " : "",
		    units_addr_str(&v[i], one, sizeof(one)));
		if (k < 0 || (size_t)k >= len - off)
			break;
		off += (size_t)k;
	}
	return buf;
}

static void
lookup_failed(struct rname *nm, const char *why)
{
	struct resolve *r = nm->r;
	int64_t now = now_ms(), next;

	nm->fails++;
	nm->failures++;
	nm->last_err = why;
	next = resolve_retry_ms(nm->fails, r->min_ms, r->max_ms);
	/* one line when a streak starts, then one a minute with the count */
	if (nm->fails == 1 || now - nm->fail_logged_ms >= FAIL_LOG_EVERY_MS) {
		if (nm->n)
			log_warn("upstream name %s: lookup failed (%s), %llu more since the last line; "
			    "keeping its %zu address%s; next try in %lld ms", nm->key, why,
			    (unsigned long long)nm->fail_unlogged, nm->n, nm->n == 1 ? "" : "es",
			    (long long)next);
		else
			log_warn("upstream name %s: lookup failed (%s), %llu more since the last line; "
			    "no address known yet; next try in %lld ms", nm->key, why,
			    (unsigned long long)nm->fail_unlogged, (long long)next);
		nm->fail_logged_ms = now;
		nm->fail_unlogged = 0;
	} else {
		nm->fail_unlogged++;
	}
	timer_in(nm, next);
}

static void
lookup_done(struct rq *q)
{
	struct rname *nm = q->n;
	struct resolve *r = q->r;
	size_t added, removed;
	char was[512], now[512];
	int64_t next;

	if (nm == NULL) {
		rq_free(q);
		return;
	}
	nm->q = NULL;
	if (q->nv == 0) {
		/* A's error unless A merely had no record */
		int e = (q->f4.err && q->f4.err != DNS_ERR_NODATA) ? q->f4.err : q->f6.err;
		rq_free(q);
		lookup_failed(nm, dns_err_text(e));
		return;
	}
	q->nv = resolve_canon(q->v, q->nv);
	/* /etc/hosts has no TTL: read again every `max`, so an edit is followed */
	next = q->hosts ? r->max_ms : resolve_ttl_ms(q->ttl, r->min_ms, r->max_ms);
	if (nm->fails)
		log_info("upstream name %s resolves again after %u failed lookup%s", nm->key,
		    nm->fails, nm->fails == 1 ? "" : "s");
	nm->fails = 0;
	nm->fail_unlogged = 0;
	resolve_diff(nm->v, nm->n, q->v, q->nv, &added, &removed);
	if (added || removed) {
		log_info("upstream name %s now resolves to %s (was: %s; %s %lld s, next lookup in "
		    "%lld ms)", nm->key, addr_list(q->v, q->nv, now, sizeof(now)),
		    nm->n ? addr_list(nm->v, nm->n, was, sizeof(was)) : "nothing",
		    q->hosts ? HOSTS_FILE ", no TTL; read again in" : "TTL",
		    (long long)(q->hosts ? next / 1000 : q->ttl), (long long)next);
		free(nm->v);
		nm->v = q->v;
		nm->n = q->nv;
		q->v = NULL;
		nm->changes++;
		rq_free(q);
		publish(r);
	} else {
		rq_free(q);
	}
	timer_in(nm, next);
}

static void
on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct rq_fam *f = arg;
	struct rq *q = f->q;
	int i;

	f->done = 1;
	f->err = result;
	if (result == DNS_ERR_NONE && q->n != NULL && count > 0 &&
	    ((type == DNS_IPv4_A && f->family == AF_INET) ||
	    (type == DNS_IPv6_AAAA && f->family == AF_INET6))) {
		struct units_addr *nv = realloc(q->v, (q->cap + (size_t)count) * sizeof(*nv));
		if (nv != NULL) {
			q->v = nv;
			q->cap += (size_t)count;
			for (i = 0; i < count; i++) {
				struct units_addr *a = &q->v[q->nv++];
				memset(a, 0, sizeof(*a));
				if (f->family == AF_INET) {
					struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&a->ss;
					sin->sin_family = AF_INET;
					memcpy(&sin->sin_addr, (const char *)addresses + 4 * i, 4);
					sin->sin_port = htons((uint16_t)q->n->port);
					a->len = sizeof(*sin);
				} else {
					struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&a->ss;
					sin6->sin6_family = AF_INET6;
					memcpy(&sin6->sin6_addr, (const char *)addresses + 16 * i, 16);
					sin6->sin6_port = htons((uint16_t)q->n->port);
					a->len = sizeof(*sin6);
				}
			}
			if (q->ttl < 0 || ttl < q->ttl)
				q->ttl = ttl < 0 ? 0 : ttl;
		}
	}
	if (q->f4.done && q->f6.done)
		lookup_done(q);
}

static void
lookup_start(struct rname *nm)
{
	struct resolve *r = nm->r;
	struct rq *q;

	if (nm->q != NULL || r->dns == NULL)
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		lookup_failed(nm, "out of memory");
		return;
	}
	q->r = r;
	q->n = nm;
	q->ttl = -1;
	q->f4.q = q->f6.q = q;
	q->f4.family = AF_INET;
	q->f6.family = AF_INET6;
	LIST_INSERT_HEAD(&r->queries, q, link);
	nm->q = q;
	nm->lookups++;
	/* "files" before "dns", as glibc's default nsswitch: a name Docker or podman wrote into
	 * /etc/hosts (extra_hosts, host.containers.internal) is taken from there */
	{
		struct units_addr h[HOSTS_MAX];
		size_t nh = resolve_hosts(HOSTS_FILE, nm->host, nm->port, h, HOSTS_MAX);
		if (nh > 0 && (q->v = malloc(nh * sizeof(*q->v))) != NULL) {
			memcpy(q->v, h, nh * sizeof(*q->v));
			q->nv = q->cap = nh;
			q->hosts = 1;
			q->f4.done = q->f6.done = 1;
			lookup_done(q);
			return;
		}
	}
	/* evdns calls back from the loop, never from inside these calls; NULL: not sent */
	if (evdns_base_resolve_ipv4(r->dns, nm->host, 0, on_answer, &q->f4) == NULL) {
		q->f4.done = 1;
		q->f4.err = DNS_ERR_UNKNOWN;
	}
	if (evdns_base_resolve_ipv6(r->dns, nm->host, 0, on_answer, &q->f6) == NULL) {
		q->f6.done = 1;
		q->f6.err = DNS_ERR_UNKNOWN;
	}
	if (q->f4.done && q->f6.done)
		lookup_done(q);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lookup_start(arg);
}

/* ---- names --------------------------------------------------------------------------------- */

static void
name_free(struct rname *nm)
{
	if (nm->q)
		nm->q->n = NULL;        /* its answer is dropped when it comes */
	ev_free(&nm->timer);
	free(nm->v);
	free(nm->key);
	free(nm);
}

static struct rname *
name_new(struct resolve *r, const char *key)
{
	struct rname *nm;
	const char *colon = strrchr(key, ':');
	size_t hl;

	/* conf checked it: host:port, a host name (never bracketed) */
	if (colon == NULL || (hl = (size_t)(colon - key)) == 0 || hl >= sizeof(nm->host))
		return NULL;
	if ((nm = calloc(1, sizeof(*nm))) == NULL)
		return NULL;
	nm->r = r;
	memcpy(nm->host, key, hl);
	nm->host[hl] = '\0';
	nm->port = (int)strtol(colon + 1, NULL, 10);
	nm->key = strdup(key);
	nm->timer = evtimer_new(r->base, on_timer, nm);
	if (nm->key == NULL || nm->timer == NULL) {
		name_free(nm);
		return NULL;
	}
	return nm;
}

static int
dns_make(struct resolve *r, const struct conf *c)
{
	const struct conf_addrs *ns = &c->upstream.resolve_ns;
	size_t i;
	int rc;

	r->dns = evdns_base_new(r->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (r->dns == NULL)
		goto fail;
	if (ns->n == 0) {
		r->ns_resolv = 1;
		/* search domains and ndots matter: Kubernetes' "app" is app.<ns>.svc.cluster.local */
		rc = evdns_base_resolv_conf_parse(r->dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH |
		    DNS_OPTION_MISC, RESOLV_CONF);
		if (rc != 0)
			log_warn("upstream names: cannot read %s (error %d); asking 127.0.0.1",
			    RESOLV_CONF, rc);
	} else {
		r->ns_used.v = calloc(ns->n, sizeof(*r->ns_used.v));
		if (r->ns_used.v == NULL)
			goto fail;
		for (i = 0; i < ns->n; i++) {
			if (evdns_base_nameserver_sockaddr_add(r->dns,
			    (const struct sockaddr *)&ns->v[i].ss, ns->v[i].len, 0) != 0) {
				char buf[80];
				log_error("upstream names: cannot use nameserver %s",
				    units_addr_str(&ns->v[i], buf, sizeof(buf)));
				goto fail;
			}
			r->ns_used.v[r->ns_used.n++] = ns->v[i];
		}
	}
	evdns_base_set_option(r->dns, "randomize-case", "0");
	evdns_base_set_option(r->dns, "timeout", "2");
	evdns_base_set_option(r->dns, "attempts", "2");
	return 0;
fail:
	if (r->dns)
		evdns_base_free(r->dns, 0);
	r->dns = NULL;
	free(r->ns_used.v);
	memset(&r->ns_used, 0, sizeof(r->ns_used));
	return -1;
}

/* evdns's own messages ("Nameserver ... has failed") would go straight to fd 2, past the log
 * writer and not as JSON: they become debug lines (ours say what matters, rate-limited).
 * Process-wide, so the Redis client's evdns lines too. */
static void
on_evdns_log(int is_warning, const char *msg)
{
	log_debug("evdns%s: %s", is_warning ? " warning" : "", msg);
}

struct resolve *
resolve_new(struct event_base *base, resolve_change_fn cb, void *arg)
{
	struct resolve *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	evdns_set_log_fn(on_evdns_log);
	r->base = base;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INIT(&r->names);
	LIST_INIT(&r->queries);
	r->cur = set_build(r);
	if (r->cur == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

int
resolve_conf(struct resolve *r, const struct conf *c)
{
	const struct conf_addrs *sv = &c->upstream.servers, *ns = &c->upstream.resolve_ns;
	struct rname *nm, *next;
	size_t i;
	int changed = 0, rc = 0;

	r->min_ms = c->upstream.resolve_min_ms;
	r->max_ms = c->upstream.resolve_max_ms;
	TAILQ_FOREACH(nm, &r->names, link)
		nm->seen = 0;
	for (i = 0; i < sv->n; i++) {
		if (sv->v[i].ss.ss_family != AF_UNSPEC)
			continue;               /* a literal address: nothing to follow */
		TAILQ_FOREACH(nm, &r->names, link)
			if (strcmp(nm->key, sv->text[i]) == 0)
				break;
		if (nm == NULL) {
			if (r->dns == NULL && dns_make(r, c) < 0) {
				rc = -1;
				continue;
			}
			if ((nm = name_new(r, sv->text[i])) == NULL) {
				log_error("upstream name %s: out of memory", sv->text[i]);
				rc = -1;
				continue;
			}
			TAILQ_INSERT_TAIL(&r->names, nm, link);
			changed = 1;
			lookup_start(nm);
		}
		nm->seen = 1;
	}
	for (nm = TAILQ_FIRST(&r->names); nm; nm = next) {
		next = TAILQ_NEXT(nm, link);
		if (!nm->seen) {
			TAILQ_REMOVE(&r->names, nm, link);
			name_free(nm);
			changed = 1;
		}
	}
	if (r->dns && ((ns->n == 0) != r->ns_resolv ||
	    (!r->ns_resolv && !units_addrs_eq(r->ns_used.v, r->ns_used.n, ns->v, ns->n))))
		log_warn("reload: upstream.resolve.nameservers changes take effect only after a "
		    "restart");
	if (changed)
		publish(r);
	return rc;
}

struct resolve_set *
resolve_current(struct resolve *r)
{
	return resolve_set_ref(r->cur);
}

int
resolve_missing(const struct resolve *r, const struct conf *c, char *why, size_t n)
{
	const struct conf_addrs *sv = &c->upstream.servers;
	const struct rname *nm;
	size_t i;

	for (i = 0; i < sv->n; i++) {
		if (sv->v[i].ss.ss_family != AF_UNSPEC)
			continue;
		TAILQ_FOREACH(nm, &r->names, link)
			if (strcmp(nm->key, sv->text[i]) == 0)
				break;
		if (nm != NULL && nm->n > 0)
			continue;
		if (nm != NULL && nm->last_err)
			snprintf(why, n, "upstream name %s has no address yet (%s)", sv->text[i],
			    nm->last_err);
		else
			snprintf(why, n, "upstream name %s has no address yet", sv->text[i]);
		return 1;
	}
	return 0;
}

/* The per-name families of /metrics, in the order they are rendered. */
enum dns_family { DF_LOOKUPS = 0, DF_FAILURES, DF_CHANGES, DF_ADDRESSES };
static const struct {
	const char *name, *type, *help;
} dns_families[] = {
	[DF_LOOKUPS] = { "visor_upstream_dns_lookups_total", "counter",
	    "DNS lookups (A and AAAA) of an upstream name." },
	[DF_FAILURES] = { "visor_upstream_dns_failures_total", "counter",
	    "Lookups that brought no address (timeout, NXDOMAIN, SERVFAIL, no record); the last "
	    "good addresses were kept." },
	[DF_CHANGES] = { "visor_upstream_dns_changes_total", "counter",
	    "Answers that changed an upstream name's addresses." },
	[DF_ADDRESSES] = { "visor_upstream_dns_addresses", "gauge",
	    "Addresses known now for an upstream name (0: none yet, /readyz answers 503)." },
};

static uint64_t
dns_family_value(const struct rname *nm, enum dns_family f)
{
	switch (f) {
	case DF_LOOKUPS:
		return nm->lookups;
	case DF_FAILURES:
		return nm->failures;
	case DF_CHANGES:
		return nm->changes;
	case DF_ADDRESSES:
		return nm->n;
	}
	return 0;
}

void
resolve_metrics(const struct resolve *r, struct sbuf *b)
{
	const struct rname *nm;
	size_t f;

	if (TAILQ_EMPTY(&r->names))
		return;
	for (f = 0; f < ARRAY_LEN(dns_families); f++) {
		sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", dns_families[f].name,
		    dns_families[f].help, dns_families[f].name, dns_families[f].type);
		TAILQ_FOREACH(nm, &r->names, link)
			sbuf_printf(b, "%s{name=\"%s\"} %llu\n", dns_families[f].name, nm->key,
			    (unsigned long long)dns_family_value(nm, (enum dns_family)f));
	}
}

void
resolve_free(struct resolve *r)
{
	struct rname *nm;
	struct rq *q;

	if (r == NULL)
		return;
	/* fail_requests 0: evdns drops what is in flight without calling back */
	if (r->dns)
		evdns_base_free(r->dns, 0);
	while ((q = LIST_FIRST(&r->queries)) != NULL)
		rq_free(q);
	while ((nm = TAILQ_FIRST(&r->names)) != NULL) {
		TAILQ_REMOVE(&r->names, nm, link);
		nm->q = NULL;
		name_free(nm);
	}
	free(r->ns_used.v);
	resolve_set_unref(r->cur);
	free(r);
}
