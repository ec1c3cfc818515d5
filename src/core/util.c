/* SPDX-License-Identifier: MIT
 * util — growable buffers, the request arena, JSON escaping, clocks and ids.
 * Everything is reentrant; the only shared resource is OpenSSL's per-thread DRBG.
 */
#include "core/util.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

/* ---- sbuf ---------------------------------------------------------------------- */

void
sbuf_fini(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *
str_printable(char *d, size_t cap, const char *s)
{
	size_t i, o = 0;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && o + 4 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		d[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (s[i] != '\0') {
		memcpy(d + o, "...", 3);
		o += 3;
	}
	d[o] = '\0';
	return d;
}

int
sbuf_reserve(struct sbuf *b, size_t extra)
{
	size_t need, ncap;
	char *np;

	if (b->oom)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (np == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

void
sbuf_add_slow(struct sbuf *b, const void *p, size_t n)
{
	if (n == 0 || sbuf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

void
sbuf_addc_slow(struct sbuf *b, char c)
{
	if (sbuf_reserve(b, 1) < 0)
		return;
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

void
sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (b->oom)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if (b->p == NULL || (size_t)n >= b->cap - b->len) {
		if (sbuf_reserve(b, (size_t)n) < 0)
			return;
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sbuf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
sbuf_add_u64(struct sbuf *b, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sbuf_add(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void
sbuf_add_json(struct sbuf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0, k;
	uint32_t cp;

	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		sbuf_add(b, s + i - run, run);
		run = 0;
		if (c >= 0x80) {
			k = utf8_decode(s + i, n - i, &cp);
			if (k == 0) {
				sbuf_add(b, "\\ufffd", 6);
				i++;
			} else {
				sbuf_add(b, s + i, k);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"':  sbuf_add(b, "\\\"", 2); break;
		case '\\': sbuf_add(b, "\\\\", 2); break;
		case '\n': sbuf_add(b, "\\n", 2); break;
		case '\r': sbuf_add(b, "\\r", 2); break;
		case '\t': sbuf_add(b, "\\t", 2); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			sbuf_add(b, e, 6);
		}
		}
		i++;
	}
	sbuf_add(b, s + i - run, run);
}

void
sbuf_json_kv(struct sbuf *b, const char *key, const char *s, size_t n)
{
	if (b->len > 1)
		sbuf_addc(b, ',');
	sbuf_addc(b, '"');
	sbuf_adds(b, key);
	sbuf_add(b, "\":\"", 3);
	sbuf_add_json(b, s, n);
	sbuf_addc(b, '"');
}

const char *
sbuf_cstr(struct sbuf *b)
{
	return b->p && !b->oom ? b->p : "";
}

void
sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* Unicode table 3-7, the well-formed sequences: the lead byte fixes the length, and the range
 * allowed for the second byte is what rules out overlongs (E0, F0), surrogates (ED) and code
 * points past U+10FFFF (F4). Lead bytes in no row (80-C1, F5-FF) start nothing. */
static const struct {
	unsigned char first, last;      /* lead bytes */
	unsigned char len;
	unsigned char lo, hi;           /* the second byte */
} utf8_rows[] = {
	{ 0xc2, 0xdf, 2, 0x80, 0xbf },
	{ 0xe0, 0xe0, 3, 0xa0, 0xbf },
	{ 0xe1, 0xec, 3, 0x80, 0xbf },
	{ 0xed, 0xed, 3, 0x80, 0x9f },
	{ 0xee, 0xef, 3, 0x80, 0xbf },
	{ 0xf0, 0xf0, 4, 0x90, 0xbf },
	{ 0xf1, 0xf3, 4, 0x80, 0xbf },
	{ 0xf4, 0xf4, 4, 0x80, 0x8f },
};

size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	uint32_t v;
	size_t len, k, r;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	for (r = 0; r < ARRAY_LEN(utf8_rows) && c > utf8_rows[r].last; r++)
		;
	if (r == ARRAY_LEN(utf8_rows) || c < utf8_rows[r].first)
		return 0;
	len = utf8_rows[r].len;
	v = c & (0x7fu >> len);              /* the lead byte's payload bits */
	if (n < len || s[1] < utf8_rows[r].lo || s[1] > utf8_rows[r].hi)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	*cp = v;
	return len;
}

/* ---- arena --------------------------------------------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t            used, size;
	_Alignas(16) unsigned char data[];
};

void
arena_init(struct arena *a, size_t blk_size)
{
	a->head = NULL;
	a->fixed = NULL;
	a->blk_size = blk_size ? blk_size : 4096;
}

void
arena_init_buf(struct arena *a, void *buf, size_t len, size_t blk_size)
{
	struct arena_blk *b = buf;

	arena_init(a, blk_size);
	if (len <= sizeof(*b))
		return;
	b->next = NULL;
	b->used = 0;
	b->size = len - sizeof(*b);
	a->head = a->fixed = b;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = a->head;
	size_t sz;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (b == NULL || b->size - b->used < n) {
		sz = n > a->blk_size - sizeof(*b) ? n : a->blk_size - sizeof(*b);
		b = malloc(sizeof(*b) + sz);
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->size = sz;
		/* A large allocation goes behind the current block so its free space stays usable. */
		if (a->head != NULL && n > a->blk_size / 2) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	p = b->data + b->used;
	b->used += n;
	return p;
}

void *
arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char tmp[256], *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = arena_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	if ((size_t)n < sizeof(tmp)) {
		memcpy(p, tmp, (size_t)n + 1);
	} else {
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return p;
}

void
arena_free(struct arena *a)
{
	struct arena_blk *b, *nb;

	for (b = a->head; b; b = nb) {
		nb = b->next;
		if (b != a->fixed)
			free(b);
	}
	a->head = NULL;
	a->fixed = NULL;
}

/* ---- ASCII --------------------------------------------------------------------- */

int
ascii_casecmp(const char *a, const char *b)
{
	return ascii_casecmp_n(a, strlen(a), b, strlen(b));
}

int
ascii_prefix_case(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	return n >= pl && ascii_casecmp_n(s, pl, prefix, pl) == 0;
}

/* ---- time and ids ------------------------------------------------------------------- */

/* clk in units of 1/div s: 1000 for ms, 1000000 for us */
static int64_t
clock_in(clockid_t clk, int64_t div)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * div + ts.tv_nsec / (1000000000 / div);
}

int64_t
now_ms(void)
{
	return clock_in(CLOCK_MONOTONIC, 1000);
}

int64_t
now_us(void)
{
	return clock_in(CLOCK_MONOTONIC, 1000000);
}

int64_t
wall_s(void)
{
	return (int64_t)time(NULL);
}

int64_t
wall_ms(void)
{
	return clock_in(CLOCK_REALTIME, 1000);
}

void
iso8601_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void
http_date(int64_t t, char *buf, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
	    mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* quota/period from a cgroup file pair, as a CPU count rounded up; 0 when unlimited/absent. */
static int
cgroup_quota_cpus(void)
{
	char *s;
	long long q = -1, per = 0;
	int n = 0;

	if ((s = file_read_all("/sys/fs/cgroup/cpu.max", 128, NULL)) != NULL) {
		if (strncmp(s, "max", 3) != 0 && sscanf(s, "%lld %lld", &q, &per) != 2)
			q = -1;
		free(s);
	} else if ((s = file_read_all("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", 64, NULL)) != NULL) {
		char *t = file_read_all("/sys/fs/cgroup/cpu/cpu.cfs_period_us", 64, NULL);
		if (t == NULL || sscanf(s, "%lld", &q) != 1 || sscanf(t, "%lld", &per) != 1)
			q = -1;
		free(s);
		free(t);
	}
	if (q > 0 && per > 0)
		n = (int)((q + per - 1) / per);
	return n;
}

int
cpu_count_available(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	int q;

	if (n < 1)
		n = 1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 &&
	    CPU_COUNT(&set) < n)
		n = CPU_COUNT(&set);
	q = cgroup_quota_cpus();
	if (q > 0 && q < n)
		n = q;
	return (int)n;
}

char *
file_read_all(const char *path, size_t max, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	buf = malloc(cap);
	if (buf == NULL)
		goto fail;
	for (;;) {
		if (len + 1 >= cap) {
			char *nb, probe;
			if (cap > max) {
				/* Full at exactly max bytes: legal only if the file ends here. */
				n = read(fd, &probe, 1);
				if (n == 0)
					break;
				errno = n < 0 ? errno : EFBIG;
				goto fail;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = realloc(buf, cap);
			if (nb == NULL)
				goto fail;
			buf = nb;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

void
strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- libevent objects ---------------------------------------------------------- */

void
ev_timer_in(struct event *ev, int64_t ms)
{
	struct timeval tv = tv_ms(ms);

	evtimer_add(ev, &tv);
}

void
ev_free(struct event **p)
{
	if (*p != NULL)
		event_free(*p);
	*p = NULL;
}

void
evbuf_free(struct evbuffer **p)
{
	if (*p != NULL)
		evbuffer_free(*p);
	*p = NULL;
}
