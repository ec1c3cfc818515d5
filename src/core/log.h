/* SPDX-License-Identifier: MIT
 * log — every line visor writes. stderr: lifecycle and error messages, one JSON object per
 * line ({"time","level","msg",...}). stdout: the access log and security events, one JSON
 * object per line, built from an allowlist of fields so tokens, cookies and query strings
 * cannot reach it.
 *
 * Text visor did not write itself — a path, an upstream's error body, a header value, a
 * formatted message — can still quote a secret (a connection string in a stack trace, a
 * token in a path). It reaches a line only through log_kv / log_kv_excerpt or log_msg,
 * which run it through lib/redact: URL userinfo, Bearer/Basic credentials, JWT-shaped
 * strings and the values of secret-named keys become "[redacted]" (docs/operations.md).
 *
 * Logging never blocks traffic. While visor runs, two writer threads, one per stream, do
 * every write(2) to fd 1 and 2; the threads that make lines only append them to a queue in
 * memory: stdout lines to their worker's own queue (no lock), stderr lines (rare: lifecycle,
 * errors) to one shared queue under a mutex. A queue holds at most LOG_Q_MAX bytes not yet
 * written: past that, a line is dropped and counted (log_dropped, visor_log_dropped_total),
 * and a stderr line says how many once the reader takes lines again. So a stalled reader (a
 * paused log shipper, `docker logs` back-pressure) stalls its writer thread alone, and a
 * stalled stdout never holds stderr back. Lines are written whole, one producer's lines in
 * order, never interleaved with another's.
 *
 * Before log_writer_start and after log_writer_stop (start-up, `visor -t`, tests), lines are
 * written directly, blocking.
 */
#ifndef VISOR_LOG_H
#define VISOR_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/util.h"

/* Bytes a queue may hold that the writer has not written yet (per worker). */
#define LOG_Q_MAX (1u << 20)

/* Process-wide threshold, set by main at start and on reload. */
void log_set_level(enum log_level lvl);
int  log_enabled(enum log_level lvl);

/* printf-style message; extra is an optional string of pre-rendered JSON members
 * (",\"k\":\"v\"") appended to the object, or NULL. The formatted message (at most 1023
 * bytes) is redacted as log_kv does, since its arguments may quote untrusted text; extra is
 * written as it is. Any thread. */
void log_msg(enum log_level lvl, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, NULL, __VA_ARGS__); } while (0)
/* Appends ": <strerror(errno)>" (relayd's log_warn vs log_warnx). */
void log_errno(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts a stdout JSON line in b: {"time":"...","type":"<type>" — the caller appends
 * members with log_kv (untrusted text), sbuf_json_kv (text visor made: ids, addresses,
 * fixed reasons) or sbuf_printf (numbers), and ends it with log_line_end. */
void log_line_begin(struct sbuf *b, const char *type);
void log_line_end(struct sbuf *b);

/* Appends "\"key\":\"<s>\"" (a leading comma when b->len > 1, as sbuf_json_kv) for text
 * visor did not write: JSON-escaped, every secret lib/redact recognises replaced by
 * "[redacted]". s[0..n) is any bytes (NULL when n is 0). A text with no ':', '=', blank or
 * "eyJ" — most paths — costs one table look-up per byte more than sbuf_json_kv. Any
 * thread; out of memory sets b->oom. */
void log_kv(struct sbuf *b, const char *key, const char *s, size_t n);
/* The same for the start of a longer text (a body's first 4 KiB): a URL authority, a
 * JWT-shaped run or a credential that the cut ends is redacted even though incomplete. */
void log_kv_excerpt(struct sbuf *b, const char *key, const char *s, size_t n);

/* ---- the writer (main thread) ------------------------------------------------------ */

/* From now on lines go through the writer thread. 0, or -1 (lines stay direct). */
int  log_writer_start(void);
/* Writes what every queue holds and stops the thread, waiting at most `wait_ms` for a
 * stalled reader (what is left then is lost). Lines are direct again afterwards. */
void log_writer_stop(int64_t wait_ms);
/* Lines dropped so far on stdout (fd 1) or stderr (fd 2). Any thread. */
uint64_t log_dropped(int fd);

/* ---- a producer's queue ----------------------------------------------------------- */

/* A worker's stdout queue, created and freed by its owner (log_q_free hands what is left
 * to the writer, which frees the queue). Only the owner's thread appends to it and flushes
 * it, at the end of a loop turn. */
struct log_q;
struct log_q *log_q_new(void);
void log_q_free(struct log_q *q);
/* The buffer to build one line in: remember its length before, build, then call
 * log_q_line_done with that length, which drops the line past the bound. */
struct sbuf *log_q_out(struct log_q *q);
void log_q_line_done(struct log_q *q, size_t mark);
/* Bytes appended and not handed to the writer yet. */
size_t log_q_pending(const struct log_q *q);
/* Hands what was appended to the writer (or writes it, when there is no writer). */
void log_q_flush(struct log_q *q);

#endif
