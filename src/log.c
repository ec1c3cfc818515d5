/* SPDX-License-Identifier: MIT
 * log — JSON lines on stderr (lifecycle, errors) and stdout (access log, security events).
 * A line is composed in memory and written with one write(2); stdout batches are flushed
 * under a mutex so a batch larger than PIPE_BUF from one worker is never split by another's.
 * The mutex is taken once per batch (an event-loop turn), not once per request.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

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

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;        /* a closed stdout/stderr must never take visor down */
		}
		p += w;
		n -= (size_t)w;
	}
}

static void log_vmsg(enum log_level lvl, const char *extra, const char *suffix, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

static void
log_vmsg(enum log_level lvl, const char *extra, const char *suffix, const char *fmt, va_list ap)
{
	char msg[1024], ts[40];
	struct sbuf b = { 0 };
	int n;

	if (!log_enabled(lvl))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	iso8601_now(ts, sizeof(ts));
	sbuf_add(&b, "{\"time\":\"", 9);
	sbuf_adds(&b, ts);
	sbuf_add(&b, "\",\"level\":\"", 11);
	sbuf_adds(&b, level_names[lvl]);
	sbuf_add(&b, "\",\"msg\":\"", 9);
	sbuf_add_json(&b, msg, (size_t)n);
	if (suffix) {
		sbuf_add(&b, ": ", 2);
		sbuf_add_json(&b, suffix, strlen(suffix));
	}
	sbuf_addc(&b, '"');
	if (extra)
		sbuf_adds(&b, extra);
	sbuf_add(&b, "}\n", 2);
	if (!b.oom)
		write_all(2, b.p, b.len);
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

void
log_out_write(const char *line, size_t len)
{
	pthread_mutex_lock(&out_lock);
	write_all(1, line, len);
	pthread_mutex_unlock(&out_lock);
}

void
log_out_flush(struct log_out *o)
{
	if (o->buf.len == 0)
		return;
	if (!o->buf.oom)
		log_out_write(o->buf.p, o->buf.len);
	sbuf_reset(&o->buf);
	o->buf.oom = 0;
	/* Don't let one burst keep a large buffer forever. */
	if (o->buf.cap > 1 << 20)
		sbuf_fini(&o->buf);
}
