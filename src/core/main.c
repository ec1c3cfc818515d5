/* SPDX-License-Identifier: MIT
 * main — the command line (README.md, docs/operations.md), signals and the worker threads.
 *
 *   visor [-c FILE]        run
 *   visor -t [--strict]    check the file: FILE:LINE:COL: error|warning: message on stderr
 *   visor -V               versions of visor and every linked library
 *
 * The main thread owns the current conf generation, the admin listener and the signal
 * handling; SIGHUP loads a new generation and hands it to the workers (an invalid file is
 * logged and ignored). SIGTERM/SIGINT drain: /readyz turns 503 at once, the workers keep
 * accepting for shutdown_delay (load balancers notice first), then stop accepting and
 * finish in-flight requests for up to shutdown_timeout; the admin listener answers until the
 * last worker is done, and the process exits 0. A second signal skips what is left of
 * shutdown_delay.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "core/admin.h"
#include "conf/conf.h"
#include "core/log.h"
#include "net/resolve.h"
#include "store/store.h"
#include "core/worker.h"

#ifndef VISOR_VERSION
#define VISOR_VERSION "0.0.0"
#endif
#define DEFAULT_CONF "conf/visor.yaml"



struct visor {
	const char        *path;
	const char        *shown;        /* how messages name it (--config-name), else path */
	struct conf       *conf;
	struct event_base *base;
	struct worker    **ws;
	int                nw;           /* created */
	int                nstarted;     /* threads running (a prefix of ws) */
	struct admin      *admin;
	struct resolve    *res;          /* upstream names (one resolver for every worker) */
	struct mstore     *mem;
	int                stopping;     /* SIGTERM/SIGINT seen: /readyz 503 */
	int                workers_told; /* the workers were asked to drain */
	struct event      *delay_ev;     /* shutdown_delay */
	int                done_fd;      /* eventfd: each worker adds 1 when its loop ends */
	struct event      *done_ev;
	uint64_t           ndone;
};

static void
usage(void)
{
	fprintf(stderr, "usage: visor [-c FILE]\n"
	    "       visor -t [--strict] [-c FILE]\n"
	    "       visor -V\n"
	    "  --config-name NAME  name FILE so in messages (a wrapper that runs a copy of it)\n");
}

static void
print_versions(void)
{
	printf("visor %s\n", VISOR_VERSION);
	printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("libevent %s\n", event_get_version());
	printf("jansson %s\n", jansson_version_str());
	printf("hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	printf("libyaml %s\n", yaml_get_version_string());
	printf("llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
}

/* Config messages on a running server: JSON lines on stderr. */
static void
log_conf_msgs(const struct conf_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nmsgs; i++) {
		const struct conf_msg *m = &ctx->msgs[i];
		char extra[512];
		struct sbuf b = { 0 };
		sbuf_json_kv(&b, "file", m->file ? m->file : "", m->file ? strlen(m->file) : 0);
		snprintf(extra, sizeof(extra), ",%s,\"line\":%d,\"col\":%d", sbuf_cstr(&b), m->line, m->col);
		sbuf_fini(&b);
		log_msg(m->level == CONF_ERROR ? LOG_ERROR : LOG_WARN, extra, "config: %s", m->text);
	}
}

/* `visor -t`: the messages, then one line that says how the test went, as nginx -t does
 * (scripts read the exit status; people read the last line). */
static int
check_only(const char *path, const char *shown, int strict)
{
	struct conf_ctx ctx = { 0 };
	struct conf *c;
	int rc;

	ctx.shown_as = shown;
	c = conf_load(path, &ctx);
	conf_ctx_print(&ctx, stderr);
	rc = (c == NULL || ctx.nerr > 0 || (strict && ctx.nwarn > 0)) ? 1 : 0;
	if (rc == 0 && ctx.nwarn == 0)
		fprintf(stderr, "visor: configuration file %s test is successful\n", shown);
	else if (rc == 0)
		fprintf(stderr, "visor: configuration file %s test is successful, with %d warning%s\n",
		    shown, ctx.nwarn, ctx.nwarn == 1 ? "" : "s");
	else if (ctx.nerr > 0 || c == NULL)
		fprintf(stderr, "visor: configuration file %s test failed: %d error%s\n", shown,
		    ctx.nerr, ctx.nerr == 1 ? "" : "s");
	else
		fprintf(stderr, "visor: configuration file %s test failed: %d warning%s with "
		    "--strict\n", shown, ctx.nwarn, ctx.nwarn == 1 ? "" : "s");
	conf_unref(c);
	conf_ctx_fini(&ctx);
	return rc;
}

/* The listen addresses must not change on reload: sockets are bound once per worker. */
static int
same_listeners(const struct conf *a, const struct conf *b)
{
	if (a->listen.has_http != b->listen.has_http || a->listen.has_admin != b->listen.has_admin ||
	    a->workers != b->workers)
		return 0;
	if (!units_addrs_eq(a->listen.https.v, a->listen.https.n, b->listen.https.v,
	    b->listen.https.n))
		return 0;
	if (a->listen.has_http && !units_addr_eq(&a->listen.http, &b->listen.http))
		return 0;
	if (a->listen.has_admin && !units_addr_eq(&a->listen.admin, &b->listen.admin))
		return 0;
	return 1;
}

static void
reload(struct visor *v)
{
	struct conf_ctx ctx = { 0 };
	struct conf *c;
	int i;

	ctx.shown_as = v->shown;
	c = conf_load(v->path, &ctx);
	log_conf_msgs(&ctx);
	conf_ctx_fini(&ctx);
	if (c == NULL) {
		log_error("reload refused: %s has errors; the running configuration stays", v->shown);
		return;
	}
	if (!same_listeners(v->conf, c))
		log_warn("reload: changes to listen or workers take effect only after a restart");
	log_set_level(c->log.level);
	/* names new to this generation are asked now; until answered they have no server */
	resolve_conf(v->res, c);
	for (i = 0; i < v->nw; i++)
		worker_post_conf(v->ws[i], c);
	if (v->admin)
		admin_set_conf(v->admin, c);
	conf_unref(v->conf);
	v->conf = c;
	log_msg(LOG_INFO, NULL, "configuration reloaded (generation %llu)",
	    (unsigned long long)c->generation);
}

/* A new snapshot of the upstream names' addresses: every worker picks it up. */
static void
on_dns(void *arg, struct resolve_set *s)
{
	struct visor *v = arg;
	int i;

	for (i = 0; i < v->nw; i++)
		worker_post_dns(v->ws[i], s);
}

/* The end of shutdown_delay (or a second signal): the workers close their listeners and
 * finish what is in flight within shutdown_timeout. Main's loop, and the admin listener on
 * it, runs on until the last worker is done (on_worker_done). */
static void
stop_workers(struct visor *v)
{
	int i;

	if (v->workers_told)
		return;
	v->workers_told = 1;
	log_info("no longer accepting; finishing in-flight requests");
	for (i = 0; i < v->nstarted; i++)
		worker_post_stop(v->ws[i]);
}

static void
on_delay_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stop_workers(arg);
}

static void
on_worker_done(evutil_socket_t fd, short what, void *arg)
{
	struct visor *v = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		v->ndone += n;
	if (v->ndone >= (uint64_t)v->nstarted)
		event_base_loopexit(v->base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct visor *v = arg;
	struct timeval tv;
	int64_t ms;

	(void)what;
	if (sig == SIGHUP) {
		if (!v->stopping)
			reload(v);
		return;
	}
	if (v->stopping) {
		/* a second SIGTERM/SIGINT: no more waiting for the balancers */
		stop_workers(v);
		return;
	}
	v->stopping = 1;
	if (v->admin)
		admin_set_draining(v->admin);
	ms = v->conf->shutdown_delay_ms;
	log_info("%s: draining: /readyz answers 503, accepting for %lld ms more (shutdown_delay), "
	    "then up to %lld ms for in-flight requests (shutdown_timeout)",
	    sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)ms,
	    (long long)v->conf->shutdown_timeout_ms);
	if (ms <= 0) {
		stop_workers(v);
		return;
	}
	tv = tv_ms(ms);
	v->delay_ev = evtimer_new(v->base, on_delay_over, v);
	if (v->delay_ev == NULL || evtimer_add(v->delay_ev, &tv) < 0)
		stop_workers(v);
}

/* Refuse to share a port with another process: SO_REUSEPORT would let two visors (or a
 * stale one) split the traffic silently. A plain bind fails if anyone holds the port. */
static int
ports_free(const struct conf *c)
{
	const struct units_addr *a[34];
	size_t n = 0, i;
	char buf[80];
	int fd, one = 1;

	for (i = 0; i < c->listen.https.n && n < 32; i++)
		a[n++] = &c->listen.https.v[i];
	if (c->listen.has_http)
		a[n++] = &c->listen.http;
	for (i = 0; i < n; i++) {
		fd = socket(a[i]->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (a[i]->ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&a[i]->ss, a[i]->len) < 0) {
			log_errno(LOG_ERROR, "cannot listen on %s", units_addr_str(a[i], buf, sizeof(buf)));
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int
run(const char *path, const char *shown)
{
	struct visor v = { 0 };
	struct conf_ctx ctx = { 0 };
	struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
	sigset_t all, old;
	int i, rc = 1;

	v.path = path;
	v.shown = shown;
	v.done_fd = -1;
	ctx.shown_as = shown;
	v.conf = conf_load(path, &ctx);
	log_conf_msgs(&ctx);
	conf_ctx_fini(&ctx);
	if (v.conf == NULL) {
		log_error("%s: configuration has errors, not starting", shown);
		return 1;
	}
	log_set_level(v.conf->log.level);
	signal(SIGPIPE, SIG_IGN);
	/* from here on no thread writes to stdout/stderr itself: a stalled reader costs lines,
	 * never requests */
	if (log_writer_start() < 0)
		log_warn("cannot start the log writer thread: log lines are written directly");
	v.base = event_base_new();
	if (v.base == NULL)
		goto out;
	if (ports_free(v.conf) < 0)
		goto out;
	v.res = resolve_new(v.base, on_dns, &v);
	if (v.res == NULL)
		goto out;
	v.mem = mstore_new();
	v.ws = calloc((size_t)v.conf->workers, sizeof(*v.ws));
	if (v.ws == NULL || v.mem == NULL)
		goto out;
	for (i = 0; i < v.conf->workers; i++) {
		v.ws[i] = worker_new(i, v.conf, v.mem);
		if (v.ws[i] == NULL)
			goto out;
		v.nw++;
	}
	if (v.conf->listen.has_admin) {
		v.admin = admin_new(v.base, v.conf, v.ws, v.nw);
		if (v.admin == NULL)
			goto out;
		admin_set_resolve(v.admin, v.res);
	}
	/* asynchronous: the first answers arrive once the loop runs (resolve.h, "Startup") */
	if (resolve_conf(v.res, v.conf) < 0)
		log_warn("upstream names cannot be followed; /readyz stays 503 for them");
	sig_term = evsignal_new(v.base, SIGTERM, on_signal, &v);
	sig_int = evsignal_new(v.base, SIGINT, on_signal, &v);
	sig_hup = evsignal_new(v.base, SIGHUP, on_signal, &v);
	if (!sig_term || !sig_int || !sig_hup)
		goto out;
	evsignal_add(sig_term, NULL);
	evsignal_add(sig_int, NULL);
	evsignal_add(sig_hup, NULL);
	v.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v.done_fd < 0)
		goto out;
	v.done_ev = event_new(v.base, v.done_fd, EV_READ | EV_PERSIST, on_worker_done, &v);
	if (v.done_ev == NULL || event_add(v.done_ev, NULL) < 0)
		goto out;
	/* Worker threads inherit a mask with every signal blocked: signals are main's alone
	 * (its libevent loop handles them), never a worker's in the middle of a request. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < v.nw; i++) {
		if (worker_start(v.ws[i], v.done_fd) < 0)
			break;
		v.nstarted++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (v.nstarted < v.nw) {
		log_errno(LOG_ERROR, "cannot start worker %d", v.nstarted);
		stop_workers(&v);
		goto join;
	}
	log_msg(LOG_INFO, NULL, "visor %s started: %d workers, config %s", VISOR_VERSION, v.nw, shown);
	event_base_dispatch(v.base);
	rc = 0;
join:
	for (i = 0; i < v.nstarted; i++)
		worker_join(v.ws[i]);
	if (rc == 0)
		log_info("stopped");
out:
	ev_free(&v.delay_ev);
	ev_free(&v.done_ev);
	if (v.done_fd >= 0)
		close(v.done_fd);
	admin_free(v.admin);
	ev_free(&sig_term);
	ev_free(&sig_int);
	ev_free(&sig_hup);
	/* what was started: a reload may carry another `workers` (ignored until a restart) */
	for (i = 0; v.ws && i < v.nw; i++)
		worker_free(v.ws[i]);
	free(v.ws);
	resolve_free(v.res);
	mstore_free(v.mem);
	conf_unref(v.conf);
	if (v.base)
		event_base_free(v.base);
	/* a stalled reader gets two seconds more; what it has not taken then is lost */
	log_writer_stop(2000);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONF, *shown = NULL;
	int test = 0, strict = 0, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--config-name") == 0 && i + 1 < argc) {
			shown = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0) {
			test = 1;
		} else if (strcmp(argv[i], "--strict") == 0) {
			strict = 1;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			print_versions();
			return 0;
		} else if (strcmp(argv[i], "--config-reference") == 0) {
			/* docs/configuration.md is this output: the parser's own table */
			conf_doc_markdown(stdout);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage();
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	if (strict && !test) {
		usage();
		return 2;
	}
	if (shown == NULL)
		shown = path;
	if (test)
		return check_only(path, shown, strict);
	/* Before any event_base exists: libevent's process-wide state (signals, its RNG, debug
	 * maps) is shared by the worker threads. */
	if (evthread_use_pthreads() < 0) {
		fprintf(stderr, "visor: libevent has no pthreads support\n");
		return 1;
	}
	return run(path, shown);
}
