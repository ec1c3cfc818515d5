/* SPDX-License-Identifier: MIT
 * worker — one event-loop thread. Each worker owns its event_base, its own listening
 * sockets (SO_REUSEPORT, so the kernel spreads connections without a shared accept lock),
 * its client connections, its upstream pool, its per-filter state (caches, the Redis
 * connection) and its metrics. Nothing on the request path is shared with another thread.
 *
 * The main thread talks to a worker only through its mailbox (an eventfd): "a new conf
 * generation is waiting in w->next", "new upstream addresses are waiting in w->next_dns"
 * (net/resolve) and "drain". Worker structs are created and freed by
 * main; everything inside is touched only by the worker's own thread once it runs.
 */
#ifndef VISOR_WORKER_H
#define VISOR_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "http/filter.h"
#include "core/log.h"
#include "core/metrics.h"

enum listen_kind { LK_HTTPS = 0, LK_HTTP };

struct listener {
	struct worker          *w;
	struct evconnlistener  *l;
	enum listen_kind        kind;
	int                     port;
	int                     plain;   /* in-process tests and fuzzing only: an LK_HTTPS
	                                  * listener whose connections skip TLS but are otherwise
	                                  * HTTPS (routes, filters); 2: and they speak HTTP/2
	                                  * from the first byte, as if ALPN had chosen h2
	                                  * (fuzz_h2); never set by visor itself */
};

struct conn;
struct up_pool;

struct worker {
	int                 id;
	pthread_t           thr;
	struct event_base  *base;
	struct conf        *conf;           /* current generation, one ref */
	struct conf        *next;           /* handed over by main (atomic exchange) */
	struct resolve_set *next_dns;       /* upstream names' addresses, the same way */
	int                 mbox_fd;        /* eventfd */
	struct event       *mbox_ev;
	int                 stop;           /* atomic: drain requested */
	int                 draining;
	int64_t             drain_deadline_ms;
	struct event       *drain_timer;

	struct listener    *listeners;
	size_t              n_listeners;
	int                 accepting;

	TAILQ_HEAD(conn_q, conn) conns;
	TAILQ_HEAD(, conn)  dead;           /* closed, freed by the reaper next turn */
	struct event       *reap_ev;
	int64_t             n_conns;

	struct up_pool     *pool;
	struct mstore      *mem;            /* process-wide in-memory store (main owns it) */
	void               *store;          /* per-worker store state (store.c) */
	void               *fstate[CONF_MAX_FILTERS];
	struct metrics      m;
	struct sbuf         scratch;        /* head serialisation, reused by every request */
	unsigned            trimmed;        /* TLS buffers given back since the last heap trim */
	int64_t             n_conns_peak;   /* connections since the last heap trim */
	uint64_t            trim_reqs;      /* requests answered at the last trim check */
	int                 trim_busy;      /* requests came since the last heap trim */
	struct event       *trim_ev;
	struct log_q       *logq;           /* this worker's lines, handed to the log writer */
	struct event       *log_ev;
	int                 log_pending;
	struct {
		int64_t               ms;
		const struct timeval *tv;
	}                   tmo[16];        /* libevent common timeouts in use (worker_timeout) */
	unsigned char       rnd[1024];      /* CSPRNG output not handed out yet */
	size_t              rnd_left;
	char                date[32];       /* cached IMF-fixdate */
	int64_t             date_s;
	int                 exit_code;
	int                 done_fd;        /* main's eventfd, told when the loop ends */
};

/* Creates the worker and binds its listeners (SO_REUSEPORT) for c's addresses.
 * -1 with the reason logged. Main thread. */
struct mstore;
struct worker *worker_new(int id, struct conf *c, struct mstore *mem);
/* Spawns the thread. When its loop has ended (drained), the thread adds 1 to the eventfd
 * `done_fd` (borrowed; -1: none), so main learns it without polling. */
int  worker_start(struct worker *w, int done_fd);
/* Main thread: hand a new generation over (takes a ref) / ask to drain. */
void worker_post_conf(struct worker *w, struct conf *c);
void worker_post_stop(struct worker *w);
/* Main thread: new addresses for the upstream names (takes a reference to s). */
struct resolve_set;
void worker_post_dns(struct worker *w, struct resolve_set *s);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Worker thread helpers. */
void worker_log_kick(struct worker *w);       /* hand the lines over at the end of this turn */
const char *worker_date(struct worker *w);    /* cached Date header value */
/* n (<= 64) bytes from OpenSSL's CSPRNG, drawn in 1 KiB batches: RAND_bytes per request
 * costs a getpid() (fork detection) and a DRBG call each. 0 or -1. */
int  worker_random(struct worker *w, void *out, size_t n);
/* A timeval for evtimer_add that puts the event on libevent's queue for that duration
 * (O(1) add and delete instead of heap operations): every connection uses the same few
 * durations. Falls back to a plain timeval (in *tmp) when the queues are exhausted. */
const struct timeval *worker_timeout(struct worker *w, int64_t ms, struct timeval *tmp);
/* A new 128-bit request id as 32 lowercase hex characters. */
int  worker_request_id(struct worker *w, char out[33]);
void worker_conn_closed(struct worker *w);    /* a conn went away: accept again if paused */
void worker_reap_kick(struct worker *w);      /* free dead conns at the end of this turn */

#endif
