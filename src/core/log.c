/* SPDX-License-Identifier: MIT
 * log — JSON lines on stderr (lifecycle, errors) and stdout (access log, security events),
 * each stream written by its own thread, so that a reader that stops reading never stops a
 * worker, and a stalled stdout never holds stderr back.
 *
 * stdout: a worker appends whole lines to its queue's fill buffer, on its own thread, with
 * no lock. At the end of its loop turn it publishes them as a batch: an atomic push on the
 * queue's pending stack. The stdout writer takes each queue's stack with one exchange,
 * writes the batches in order and hands a written batch back for reuse (the queue's spare
 * slot), so a busy worker allocates nothing per turn. It sleeps on an eventfd and is woken
 * only when it said it was idle, so a busy writer costs producers no syscall.
 *
 * stderr: any thread appends a finished line to one shared buffer under a mutex and signals
 * the stderr writer. stderr lines are rare (lifecycle, errors): a lock per line is cheaper
 * than the machinery above.
 *
 * What a queue may hold unwritten is bounded (LOG_Q_MAX): past it a line is dropped and
 * counted. Both are process-wide by nature: fd 1 and 2 are.
 */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/redact.h"

struct log_batch {
	struct log_batch *next;
	struct sbuf       out;
};

struct log_q {
	struct log_q     *next;          /* the registry (O.mu) */
	struct sbuf       out;           /* being filled: the owner's thread only */
	struct log_batch *pending;       /* published, newest first (atomic) */
	struct log_batch *spare;         /* written, for reuse (atomic exchange) */
	size_t            inflight;      /* bytes published, not written yet (atomic) */
	int               dead;          /* the owner let go; the writer frees it (atomic) */
};

/* The stdout writer and its queues. */
static struct {
	pthread_mutex_t  mu;             /* registry */
	struct log_q    *qs;
	int              efd;
	pthread_t        thr;
	int              running;        /* atomic: lines go through the writer */
	int              stop;           /* atomic */
	int              idle;           /* atomic: the writer sleeps or is about to */
	int              done;           /* under D.mu */
} O = { .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

/* The stderr writer and its one queue. */
static struct {
	pthread_mutex_t  mu;
	pthread_cond_t   cv;
	struct sbuf      fill;           /* under mu */
	int              running;        /* under mu (atomic reads elsewhere) */
	int              stop;           /* under mu */
	pthread_t        thr;
	int              done;           /* under D.mu */
} E = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Both writers' ends, for a stop with a deadline. */
static struct {
	pthread_mutex_t  mu;
	pthread_cond_t   cv;
} D = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static uint64_t dropped[3];          /* atomic, by fd */
static uint64_t reported;            /* atomic: dropped lines already reported */

static int log_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level lvl)
{
	__atomic_store_n(&log_level, (int)lvl, __ATOMIC_RELAXED);
}

int
log_enabled(enum log_level lvl)
{
	return (int)lvl <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/* 0, or -1 when the stream is gone (a closed stdout must never take visor down). */
static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint64_t
count_lines(const char *p, size_t len)
{
	const char *e = p + len;
	uint64_t n = 0;

	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void
drop(int fd, uint64_t lines)
{
	if (lines)
		__atomic_add_fetch(&dropped[fd], lines, __ATOMIC_RELAXED);
}

uint64_t
log_dropped(int fd)
{
	return fd == 1 || fd == 2 ? __atomic_load_n(&dropped[fd], __ATOMIC_RELAXED) : 0;
}

static void err_line(const char *p, size_t n);

/* After a write went through (the reader is back): one stderr line saying how many were
 * lost since the last such line. Either writer may call it. */
static void
report_drops(void)
{
	uint64_t o = log_dropped(1), e = log_dropped(2), now = o + e, was;
	char line[300], ts[40];
	int n;

	was = __atomic_load_n(&reported, __ATOMIC_RELAXED);
	if (now == was || !__atomic_compare_exchange_n(&reported, &was, now, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		return;
	iso8601_now(ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"warn\",\"msg\":\"log: %llu "
	    "lines dropped because stdout/stderr were not read fast enough (in all: stdout %llu, "
	    "stderr %llu)\"}\n", ts, (unsigned long long)(now - was), (unsigned long long)o,
	    (unsigned long long)e);
	if (n > 0 && (size_t)n < sizeof(line))
		err_line(line, (size_t)n);
}

/* ---- stderr ---------------------------------------------------------------------- */

/* A finished stderr line from any thread. */
static void
err_line(const char *p, size_t n)
{
	pthread_mutex_lock(&E.mu);
	if (!E.running) {
		pthread_mutex_unlock(&E.mu);
		if (write_all(2, p, n) < 0)
			drop(2, 1);
		return;
	}
	if (E.fill.len + n > LOG_Q_MAX) {
		drop(2, 1);
	} else {
		sbuf_add(&E.fill, p, n);
		pthread_cond_signal(&E.cv);
	}
	pthread_mutex_unlock(&E.mu);
}

static void
writer_done(int *flag)
{
	pthread_mutex_lock(&D.mu);
	*flag = 1;
	pthread_cond_broadcast(&D.cv);
	pthread_mutex_unlock(&D.mu);
}

static void *
err_main(void *arg)
{
	struct sbuf w = { 0 }, t;

	(void)arg;
	pthread_mutex_lock(&E.mu);
	for (;;) {
		while (E.fill.len == 0 && !E.stop)
			pthread_cond_wait(&E.cv, &E.mu);
		if (E.fill.len == 0)
			break;
		t = w; w = E.fill; E.fill = t;
		sbuf_reset(&E.fill);
		pthread_mutex_unlock(&E.mu);
		if (w.oom || write_all(2, w.p, w.len) < 0)
			drop(2, count_lines(w.p, w.len));
		else
			report_drops();
		sbuf_reset(&w);
		w.oom = 0;
		if (w.cap > LOG_Q_MAX)
			sbuf_fini(&w);
		pthread_mutex_lock(&E.mu);
	}
	pthread_mutex_unlock(&E.mu);
	sbuf_fini(&w);
	writer_done(&E.done);
	return NULL;
}

/* ---- stdout queues (owner side) ------------------------------------------------------ */

static void
wake_writer(void)
{
	uint64_t one = 1;

	/* a failed write leaves the batch for the writer's next pass: it only wakes later */
	if (__atomic_exchange_n(&O.idle, 0, __ATOMIC_SEQ_CST))
		(void)!write(O.efd, &one, sizeof(one));
}

/* Hands the fill buffer to the writer as one batch (or writes it: no writer). */
static void
q_publish(struct log_q *q)
{
	struct log_batch *b;
	struct sbuf t;
	size_t n = q->out.len;

	if (n == 0)
		return;
	if (!__atomic_load_n(&O.running, __ATOMIC_ACQUIRE)) {
		if (write_all(1, q->out.p, n) < 0)
			drop(1, count_lines(q->out.p, n));
		sbuf_reset(&q->out);
		return;
	}
	b = __atomic_exchange_n(&q->spare, NULL, __ATOMIC_ACQUIRE);
	if (b == NULL && (b = calloc(1, sizeof(*b))) == NULL) {
		drop(1, count_lines(q->out.p, n));
		sbuf_reset(&q->out);
		return;
	}
	/* the batch takes the filled buffer, the queue keeps the batch's empty one */
	t = b->out; b->out = q->out; q->out = t;
	__atomic_add_fetch(&q->inflight, n, __ATOMIC_RELAXED);
	b->next = __atomic_load_n(&q->pending, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&q->pending, &b->next, b, 1, __ATOMIC_SEQ_CST,
	    __ATOMIC_RELAXED))
		;
	wake_writer();
}

struct log_q *
log_q_new(void)
{
	struct log_q *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	pthread_mutex_lock(&O.mu);
	q->next = O.qs;
	O.qs = q;
	pthread_mutex_unlock(&O.mu);
	return q;
}

static void
batch_free(struct log_batch *b)
{
	if (b == NULL)
		return;
	sbuf_fini(&b->out);
	free(b);
}

static void
q_destroy(struct log_q *q)
{
	struct log_batch *b, *n;

	for (b = q->pending; b; b = n) {
		n = b->next;
		batch_free(b);
	}
	batch_free(q->spare);
	sbuf_fini(&q->out);
	free(q);
}

static void
q_unlink(struct log_q *q)
{
	struct log_q **pp;

	for (pp = &O.qs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
}

void
log_q_free(struct log_q *q)
{
	if (q == NULL)
		return;
	q_publish(q);
	pthread_mutex_lock(&O.mu);
	if (__atomic_load_n(&O.running, __ATOMIC_ACQUIRE)) {
		/* the writer frees it once its batches are out */
		__atomic_store_n(&q->dead, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&O.mu);
		wake_writer();
		return;
	}
	q_unlink(q);
	pthread_mutex_unlock(&O.mu);
	q_destroy(q);
}

struct sbuf *
log_q_out(struct log_q *q)
{
	return &q->out;
}

void
log_q_line_done(struct log_q *q, size_t mark)
{
	if (q->out.oom || q->out.len + __atomic_load_n(&q->inflight, __ATOMIC_RELAXED) > LOG_Q_MAX) {
		q->out.len = mark;
		q->out.oom = 0;
		drop(1, 1);
	}
}

size_t
log_q_pending(const struct log_q *q)
{
	return q->out.len;
}

void
log_q_flush(struct log_q *q)
{
	q_publish(q);
	/* one burst must not keep a large buffer for the queue's life */
	if (q->out.cap > LOG_Q_MAX)
		sbuf_fini(&q->out);
}

/* ---- lines ------------------------------------------------------------------------ */

static void log_vmsg(enum log_level lvl, const char *extra, const char *suffix, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

static void
log_vmsg(enum log_level lvl, const char *extra, const char *suffix, const char *fmt, va_list ap)
{
	char msg[1024], ts[40];
	struct sbuf b = { 0 };
	unsigned rf = REDACT_JSON;
	int n;

	if (!log_enabled(lvl))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg)) {
		n = sizeof(msg) - 1;
		rf |= REDACT_CUT;       /* a secret may straddle the cut */
	}
	iso8601_now(ts, sizeof(ts));
	sbuf_add(&b, "{\"time\":\"", 9);
	sbuf_adds(&b, ts);
	sbuf_add(&b, "\",\"level\":\"", 11);
	sbuf_adds(&b, level_names[lvl]);
	sbuf_add(&b, "\",\"msg\":\"", 9);
	/* the arguments may be anything: an upstream's error, a URL from the configuration */
	redact_append(&b, msg, (size_t)n, rf);
	if (suffix) {
		sbuf_add(&b, ": ", 2);
		sbuf_add_json(&b, suffix, strlen(suffix));
	}
	sbuf_addc(&b, '"');
	if (extra)
		sbuf_adds(&b, extra);
	sbuf_add(&b, "}\n", 2);
	if (!b.oom)
		err_line(b.p, b.len);
	sbuf_fini(&b);
}

void
log_msg(enum log_level lvl, const char *extra, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, extra, NULL, fmt, ap);
	va_end(ap);
}

void
log_errno(enum log_level lvl, const char *fmt, ...)
{
	char eb[128];
	const char *es;
	int e = errno;
	va_list ap;

	es = strerror_r(e, eb, sizeof(eb));
	va_start(ap, fmt);
	log_vmsg(lvl, NULL, es, fmt, ap);
	va_end(ap);
}

void
log_line_begin(struct sbuf *b, const char *type)
{
	char ts[40];

	iso8601_now(ts, sizeof(ts));
	sbuf_add(b, "{\"time\":\"", 9);
	sbuf_adds(b, ts);
	sbuf_add(b, "\",\"type\":\"", 10);
	sbuf_adds(b, type);
	sbuf_addc(b, '"');
}

void
log_line_end(struct sbuf *b)
{
	sbuf_add(b, "}\n", 2);
}

static void
kv_redacted(struct sbuf *b, const char *key, const char *s, size_t n, unsigned flags)
{
	if (n == 0)
		s = "";
	/* the access log's common case (a path with no ':', '=', blank or "eyJ"): no pass */
	if (!redact_maybe(s, n)) {
		sbuf_json_kv(b, key, s, n);
		return;
	}
	if (b->len > 1)
		sbuf_addc(b, ',');
	sbuf_addc(b, '"');
	sbuf_adds(b, key);
	sbuf_add(b, "\":\"", 3);
	redact_append(b, s, n, REDACT_JSON | flags);
	sbuf_addc(b, '"');
}

void
log_kv(struct sbuf *b, const char *key, const char *s, size_t n)
{
	kv_redacted(b, key, s, n, 0);
}

void
log_kv_excerpt(struct sbuf *b, const char *key, const char *s, size_t n)
{
	kv_redacted(b, key, s, n, REDACT_CUT);
}

/* ---- the stdout writer ------------------------------------------------------------ */

struct work {
	struct log_q     *q;
	struct log_batch *b;         /* oldest first */
	int               free_q;    /* the queue is dead: free it after its batches */
};

/* Takes the queues' published batches and writes them, without holding the registry lock
 * while writing (a stalled reader must not block a queue's creation or release). At most
 * DRAIN_QS queues a pass; the rest are taken by the next. Returns how much it did. */
#define DRAIN_QS 64
static size_t
drain_all(void)
{
	struct work wk[DRAIN_QS];
	struct log_q *q, **pp;
	struct log_batch *b, *n, *rev;
	size_t nw = 0, i, nb = 0, ok = 0;

	pthread_mutex_lock(&O.mu);
	for (pp = &O.qs; (q = *pp) != NULL && nw < DRAIN_QS;) {
		int dead = __atomic_load_n(&q->dead, __ATOMIC_ACQUIRE);
		b = __atomic_exchange_n(&q->pending, NULL, __ATOMIC_ACQUIRE);
		if (b == NULL && !dead) {
			pp = &q->next;
			continue;
		}
		for (rev = NULL; b; b = n) {
			n = b->next;
			b->next = rev;
			rev = b;
		}
		wk[nw].q = q;
		wk[nw].b = rev;
		wk[nw].free_q = dead;
		nw++;
		if (dead)
			*pp = q->next;       /* unlinked: nobody but us knows it now */
		else
			pp = &q->next;
	}
	pthread_mutex_unlock(&O.mu);
	for (i = 0; i < nw; i++) {
		q = wk[i].q;
		for (b = wk[i].b; b; b = n) {
			n = b->next;
			if (b->out.oom || write_all(1, b->out.p, b->out.len) < 0)
				drop(1, count_lines(b->out.p, b->out.len));
			else
				ok++;
			nb++;
			__atomic_sub_fetch(&q->inflight, b->out.len, __ATOMIC_RELAXED);
			sbuf_reset(&b->out);
			b->out.oom = 0;
			b->next = NULL;
			if (!wk[i].free_q && b->out.cap <= LOG_Q_MAX &&
			    __atomic_load_n(&q->spare, __ATOMIC_RELAXED) == NULL)
				b = __atomic_exchange_n(&q->spare, b, __ATOMIC_RELEASE);
			batch_free(b);
		}
		if (wk[i].free_q)
			q_destroy(q);
	}
	if (ok)
		report_drops();
	/* a full pass may have left queues for the next one */
	return nb + (nw == DRAIN_QS);
}

static void *
out_main(void *arg)
{
	uint64_t v;

	(void)arg;
	for (;;) {
		__atomic_store_n(&O.idle, 0, __ATOMIC_SEQ_CST);
		if (drain_all() > 0)
			continue;
		/* say we sleep, then look once more: a batch pushed before its producer saw
		 * `idle` is found here, one pushed after wakes us through the eventfd */
		__atomic_store_n(&O.idle, 1, __ATOMIC_SEQ_CST);
		if (drain_all() > 0)
			continue;
		if (__atomic_load_n(&O.stop, __ATOMIC_ACQUIRE))
			break;
		if (read(O.efd, &v, sizeof(v)) < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	writer_done(&O.done);
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

int
log_writer_start(void)
{
	sigset_t all, old;
	int rc;

	if (__atomic_load_n(&O.running, __ATOMIC_ACQUIRE))
		return 0;
	O.efd = eventfd(0, EFD_CLOEXEC);           /* blocking: the writer sleeps in read */
	if (O.efd < 0)
		return -1;
	O.stop = E.stop = 0;
	O.done = E.done = 0;
	/* signals belong to the main thread's loop */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	__atomic_store_n(&O.running, 1, __ATOMIC_RELEASE);
	rc = pthread_create(&O.thr, NULL, out_main, NULL);
	if (rc != 0) {
		__atomic_store_n(&O.running, 0, __ATOMIC_RELEASE);
	} else {
		pthread_mutex_lock(&E.mu);
		E.running = 1;
		pthread_mutex_unlock(&E.mu);
		rc = pthread_create(&E.thr, NULL, err_main, NULL);
		if (rc != 0) {
			pthread_mutex_lock(&E.mu);
			E.running = 0;
			pthread_mutex_unlock(&E.mu);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return 0;
	if (__atomic_load_n(&O.running, __ATOMIC_ACQUIRE))
		log_writer_stop(0);
	return -1;
}

/* Waits until *flag is set or the deadline passes. */
static int
wait_done(const int *flag, const struct timespec *dl)
{
	int done;

	pthread_mutex_lock(&D.mu);
	while (!*flag)
		if (pthread_cond_timedwait(&D.cv, &D.mu, dl) != 0)
			break;
	done = *flag;
	pthread_mutex_unlock(&D.mu);
	return done;
}

void
log_writer_stop(int64_t wait_ms)
{
	struct timespec dl;
	uint64_t one = 1;
	int err_on;

	if (!__atomic_load_n(&O.running, __ATOMIC_ACQUIRE))
		return;
	/* new stdout lines go direct; the writers finish what they hold */
	__atomic_store_n(&O.running, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&O.stop, 1, __ATOMIC_RELEASE);
	(void)!write(O.efd, &one, sizeof(one));
	pthread_mutex_lock(&E.mu);
	err_on = E.running;
	E.stop = 1;
	pthread_cond_signal(&E.cv);
	pthread_mutex_unlock(&E.mu);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)(wait_ms / 1000);
	dl.tv_nsec += (long)((wait_ms % 1000) * 1000000);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	if (wait_done(&O.done, &dl)) {
		pthread_join(O.thr, NULL);
		close(O.efd);
		O.efd = -1;
	} else {
		pthread_detach(O.thr);    /* stalled reader: what is left is lost with the process */
	}
	if (err_on) {
		if (wait_done(&E.done, &dl))
			pthread_join(E.thr, NULL);
		else
			pthread_detach(E.thr);
	}
	/* from here on stderr lines are direct too (the thread is gone or abandoned) */
	pthread_mutex_lock(&E.mu);
	E.running = 0;
	pthread_mutex_unlock(&E.mu);
}
