/* SPDX-License-Identifier: MIT
 * log — every line visor writes. stderr: lifecycle and error messages, one JSON object per
 * line ({"time","level","msg",...}). stdout: the access log and security events, one JSON
 * object per line, built from an allowlist of fields so tokens, cookies and query strings
 * cannot reach it. Lines are written with a single write(2) each (or per batch of whole
 * lines), so threads never interleave inside a line.
 */
#ifndef VISOR_LOG_H
#define VISOR_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "conf.h"
#include "util.h"

/* Process-wide threshold, set by main at start and on reload (a plain int read racily by
 * workers is fine: a stale level for one line is harmless). */
void log_set_level(enum log_level lvl);
int  log_enabled(enum log_level lvl);

/* printf-style message; extra is an optional string of pre-rendered JSON members
 * (",\"k\":\"v\"") appended to the object, or NULL. */
void log_msg(enum log_level lvl, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, NULL, __VA_ARGS__); } while (0)
/* Appends ": <strerror(errno)>" (relayd's log_warn vs log_warnx). */
void log_errno(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* stdout sink, owned by one worker (or main): whole lines are appended, then flushed by the
 * owner (log_out_flush) at the end of an event-loop turn or when large. */
struct log_out {
	struct sbuf buf;
};
/* Starts a stdout JSON line in b: {"time":"...","type":"<type>" — the caller appends
 * members with sbuf_json_kv / sbuf_printf and ends it with log_line_end. */
void log_line_begin(struct sbuf *b, const char *type);
void log_line_end(struct sbuf *b);
/* Writes all complete lines in `o` to stdout and empties it. */
void log_out_flush(struct log_out *o);
/* Writes one finished line (built with log_line_begin/end) to stdout immediately. */
void log_out_write(const char *line, size_t len);

#endif
