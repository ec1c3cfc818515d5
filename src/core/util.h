/* SPDX-License-Identifier: MIT
 * util — the small pieces every module uses: a growable byte buffer (sbuf), a request
 * arena, JSON string escaping that always yields valid JSON, ASCII case helpers, the one
 * UTF-8 decoder and hex-digit helper, clocks and request ids, free-and-forget for libevent
 * events and buffers. No global state; nothing here
 * blocks.
 */
#ifndef VISOR_UTIL_H
#define VISOR_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Growable byte buffer. Zero-initialised is empty and valid. `p` is NUL-terminated whenever
 * len > 0 or after sbuf_cstr(). Out of memory sets `oom` and makes later appends no-ops, so
 * a caller checks once at the end. Owner frees with sbuf_fini. */
struct sbuf {
	char   *p;
	size_t  len, cap;
	int     oom;
};
void sbuf_fini(struct sbuf *b);
/* s (NULL: "") copied into d[cap] (cap >= 4) for a message: control bytes become '?', and
 * text that does not fit ends in "...". Returns d. */
char *str_printable(char *d, size_t cap, const char *s);
int  sbuf_reserve(struct sbuf *b, size_t extra);    /* 0 or -1 (oom set) */
void sbuf_add_slow(struct sbuf *b, const void *p, size_t n);
/* Appends n bytes (inline fast path when there is room). */
static inline void
sbuf_add(struct sbuf *b, const void *p, size_t n)
{
	if (b->len + n < b->cap) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
		b->p[b->len] = '\0';
		return;
	}
	sbuf_add_slow(b, p, n);
}
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addc_slow(struct sbuf *b, char c);
static inline void
sbuf_addc(struct sbuf *b, char c)
{
	if (b->len + 1 < b->cap) {
		b->p[b->len++] = c;
		b->p[b->len] = '\0';
		return;
	}
	sbuf_addc_slow(b, c);
}
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sbuf_add_u64(struct sbuf *b, uint64_t v);
/* Appends `s` as a JSON string body (no quotes): escapes ", \, control characters, and
 * replaces invalid UTF-8 with U+FFFD, so the output is always valid JSON. */
void sbuf_add_json(struct sbuf *b, const char *s, size_t n);
/* Appends "\"key\":\"<escaped>\"" (with a leading comma when b->len > 1). */
void sbuf_json_kv(struct sbuf *b, const char *key, const char *s, size_t n);
const char *sbuf_cstr(struct sbuf *b);              /* "" when empty */
void sbuf_reset(struct sbuf *b);                    /* len = 0, keeps memory */

/* Bump allocator for one request's lifetime: many small allocations, one free. Blocks are
 * malloc'd on demand; arena_free releases all. Returns NULL on out of memory. */
struct arena_blk;
struct arena {
	struct arena_blk *head;
	struct arena_blk *fixed;     /* caller-provided first block, never freed here */
	size_t            blk_size;
};
void  arena_init(struct arena *a, size_t blk_size);
/* The same, with `buf` (len bytes, 16-aligned, owned by the caller) as the first block. */
void  arena_init_buf(struct arena *a, void *buf, size_t len, size_t blk_size);
void *arena_alloc(struct arena *a, size_t n);        /* 16-byte aligned, not zeroed */
void *arena_zalloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  arena_free(struct arena *a);

/* ASCII helpers (HTTP is case-insensitive ASCII, never locale-dependent). */
static inline char ascii_lower_(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }
/* 0 when equal (ASCII case-insensitive). */
static inline int
ascii_casecmp_n(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return 1;
	for (i = 0; i < an; i++)
		if (a[i] != b[i] && ascii_lower_(a[i]) != ascii_lower_(b[i]))
			return 1;
	return 0;
}
int  ascii_casecmp(const char *a, const char *b);
int  ascii_prefix_case(const char *s, size_t n, const char *prefix);  /* 1 when s starts with */
static inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Milliseconds (negative: 0) as a struct timeval, for libevent's timers. */
static inline struct timeval
tv_ms(int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return tv;
}

/* Decodes the UTF-8 sequence at s[0..n) (n >= 1): returns its length (1 to 4) with its code
 * point in *cp, or 0 when s does not start with a well-formed sequence (RFC 3629; Unicode
 * table 3-7): an overlong form, a surrogate (U+D800..U+DFFF), a code point above U+10FFFF,
 * a byte that cannot start a sequence (80-BF, C0, C1, F5-FF), a byte that is not a
 * continuation byte, or a sequence cut short by the end of s. *cp is untouched on 0. A
 * caller that carries on skips one byte and tries again (sbuf_add_json, lib/regex): every
 * byte of a bad sequence then counts as one error, never swallowing a valid character. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* The value of a hex digit (0-9, a-f, A-F), or -1 (any other int, EOF included). */
static inline int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Monotonic milliseconds / microseconds, and wall-clock seconds. */
int64_t now_ms(void);
int64_t now_us(void);
int64_t wall_s(void);
int64_t wall_ms(void);
/* "2026-11-28T07:32:54.123Z" into buf (>= 32 bytes). */
void iso8601_now(char *buf, size_t len);
/* RFC 9110 IMF-fixdate "Sat, 28 Nov 2026 07:32:54 GMT" (29 chars + NUL) for t. */
void http_date(int64_t t, char *buf, size_t len);


/* CPUs this process may actually use: online CPUs, narrowed by its affinity mask and by a
 * cgroup CPU quota (v2 cpu.max, v1 cfs_quota_us/period_us), rounded up; at least 1. */
int cpu_count_available(void);

/* Reads a whole file (up to max bytes) into a malloc'd NUL-terminated buffer. NULL with
 * errno set: EFBIG when the file is larger than max, EISDIR for a directory. */
char *file_read_all(const char *path, size_t max, size_t *len);

/* Frees v[0..n) and v (NULL v: nothing): the malloc'd string vectors that configurations
 * build, whose n counts only the strings made so far when a build stops half-way. */
void strv_free(char **v, size_t n);

/* Frees the libevent event / buffer *p points at, if any, and sets *p to NULL: the one
 * owning field of a struct is released by its _free or its constructor's failure path,
 * which may find it never made (libevent's own _free functions take no NULL). */
struct event;
struct evbuffer;
void ev_free(struct event **p);
void evbuf_free(struct evbuffer **p);
/* evtimer_add in ms (an armed timer moves to the new time). */
void ev_timer_in(struct event *ev, int64_t ms);

#endif
