/* SPDX-License-Identifier: MIT
 * libFuzzer: HTTP/2 from the client's first byte to the worker's state after the connection,
 * in one process and on one thread — h2.c (nghttp2 session, streams, the downgrade checks,
 * the limits, flow control) with req.c, the filter chain and the upstream pool behind it.
 *
 * Set-up (once): a throw-away certificate, an HS256 key file and two configurations (open;
 * CORS + optional JWT + in-memory rate limits + a body rule, with small limits), each made into
 * a real worker whose HTTPS listener has `plain = 2` (src/core/worker.h: no TLS, HTTP/2 from
 * the first byte, as if ALPN had chosen h2), and a fake upstream listening on 127.0.0.1 whose
 * accepted connections are driven by callbacks on the worker's own event_base.
 *
 * Input: byte 0 picks the configuration (bit 0) and how the upstream answers each request
 * head it sees (bits 1-2): 200 with a small body on a keep-alive connection; 500 with a stack
 * trace and close; a 200 KiB chunked answer and close; never (closed at the end: 502).
 * Bit 3: the client stops reading (its window and visor's output back up). The rest is
 * written to visor after the client preface, in pieces cut at every 0xfe 0xfe pair, with the
 * loop run between pieces, so that frames arrive in several reads; the seeds are made of
 * real frames (HPACK literals), see corpus/h2/.
 *
 * After the input: the client half-closes and the loop runs, every upstream connection closes
 * and the loop runs, the client closes and the loop runs. Invariants (abort): the loop settles
 * (MAX_PASSES), the worker is back to zero (no connection, none dead, nothing busy or idle in
 * the pool), and ASan/UBSan/LeakSanitizer find nothing. FUZZ_H2_DEBUG=1 prints the size and
 * first frame types of each read the client makes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/upstream.h"
#include "store/mstore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOCOV __attribute__((no_sanitize("coverage")))

#include "fuzz_env.h"
#define MAX_PASSES 4096
#define MAX_UPS    64

static const char *const yamls[2] = {
	"client: { header_timeout: 1h, idle_timeout: 1d, max_body_size: 1m }\n"
	"routes: [ { path: / } ]\n",
	"client: { header_timeout: 1h, idle_timeout: 1d, max_header_size: 1k, max_body_size: 64k }\n"
	"http2: { max_concurrent_streams: 8, max_resets: 20, max_control_frames: 50, "
	"window_size: 16k, connection_window: 64k }\n"
	"cors: { origins: [https://app.example.com], on_disallowed: reject }\n"
	"jwt:\n"
	"  algorithms: [HS256]\n"
	"  keys: [ { secret_file: %1$s/hs256.key } ]\n"
	"  claims_to_headers: { sub: X-User-Id }\n"
	"rate_limits: { lim: { limit: 5, window: 1h, key: ip } }\n"
	"routes:\n"
	"  - { path: /api/, auth: optional, rate_limits: [lim], body: { max_size: 2k } }\n"
	"  - { path: /, auth: off }\n",
};

struct upc {
	int            fd;
	struct event  *ev;
	size_t         heads;      /* request heads seen (CRLFCRLF) */
	size_t         answered;
	char           tail[3];    /* the last bytes of the previous read, for a split CRLFCRLF */
	size_t         ntail;
};

struct fz_conf {
	struct worker  *w;
	struct mstore  *mem;
	int             epfd, lfd, port;
	struct event   *lev;
};

static struct fz_conf confs[2];
static char tmpdir[64];
static struct {
	struct fz_conf  *cf;
	int              mode;
	int              no_read;
	int              cfd;
	struct event    *crev;
	struct upc       ups[MAX_UPS];
	size_t           nups;
} S;

NOCOV static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_h2: %s\n", what);
	abort();
}

/* ---- the fake upstream ------------------------------------------------------------------ */

static const char stack_body[] = "TypeError: x is undefined\n    at f (/app/src/a.js:1:2)\n";

NOCOV static void
up_close(struct upc *u)
{
	if (u->fd < 0)
		return;
	event_free(u->ev);
	close(u->fd);
	u->fd = -1;
}

NOCOV static void
up_answer(struct upc *u)
{
	char b[512];
	int n;

	while (u->answered < u->heads && u->fd >= 0) {
		u->answered++;
		switch (S.mode) {
		case 0:
			(void)!write(u->fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			    "Content-Length: 5\r\n\r\nhello", 66);
			break;
		case 1:
			n = snprintf(b, sizeof(b), "HTTP/1.1 500 Internal Server Error\r\n"
			    "Content-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			    sizeof(stack_body) - 1, stack_body);
			(void)!write(u->fd, b, (size_t)n);
			up_close(u);
			return;
		case 2: {
			static char chunk[8200];
			int i;
			(void)!write(u->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
			    "Connection: close\r\n\r\n", 66);
			if (chunk[0] == 0) {
				memcpy(chunk, "2000\r\n", 6);
				memset(chunk + 6, 'b', 8192);
				memcpy(chunk + 6 + 8192, "\r\n", 2);
			}
			/* best effort: what the socket takes (visor may not read all of it) */
			for (i = 0; i < 25; i++)
				if (write(u->fd, chunk, 8200) < 0)
					break;
			(void)!write(u->fd, "0\r\n\r\n", 5);
			up_close(u);
			return;
		}
		default:
			return;                 /* never: the close at the end makes it a 502 */
		}
	}
}

NOCOV static void
up_read(evutil_socket_t fd, short what, void *arg)
{
	struct upc *u = arg;
	char buf[16384 + 3];
	ssize_t n;
	size_t i, len;

	(void)what;
	memcpy(buf, u->tail, u->ntail);
	n = read(fd, buf + u->ntail, sizeof(buf) - u->ntail);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		up_close(u);
		return;
	}
	len = u->ntail + (size_t)n;
	for (i = 0; i + 3 < len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			u->heads++;
	u->ntail = len < 3 ? len : 3;
	memcpy(u->tail, buf + len - u->ntail, u->ntail);
	up_answer(u);
}

NOCOV static void
up_accept(evutil_socket_t fd, short what, void *arg)
{
	struct upc *u;
	int c;

	(void)what;
	(void)arg;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (S.nups >= MAX_UPS) {
			close(c);
			continue;
		}
		u = &S.ups[S.nups++];
		memset(u, 0, sizeof(*u));
		u->fd = c;
		u->ev = event_new(S.cf->w->base, c, EV_READ | EV_PERSIST, up_read, u);
		if (u->ev == NULL || event_add(u->ev, NULL) < 0)
			fail("upstream event");
	}
}

/* ---- set-up --------------------------------------------------------------------------------- */

NOCOV static void
conf_init(struct fz_conf *cf, int idx)
{
	char path[128], *yaml = NULL, *fmt = NULL;
	unsigned char before[128], after[128];
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	struct conf_ctx ctx;
	struct conf *c;
	int i, n = 0;

	memset(&ctx, 0, sizeof(ctx));
	cf->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cf->lfd < 0 || bind(cf->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(cf->lfd, 256) < 0 || getsockname(cf->lfd, (struct sockaddr *)&a, &al) < 0)
		fail("upstream listener");
	cf->port = ntohs(a.sin_port);
	if (asprintf(&fmt, "listen: { https: 127.0.0.1:0 }\nworkers: 1\n"
	    "tls: { certificates: [ { cert: %%1$s/cert.pem, key: %%1$s/key.pem } ] }\n"
	    "upstream: { servers: [127.0.0.1:%%2$d], keepalive: 4, connect_timeout: 1h, "
	    "timeout: 1d, idle_timeout: 1d }\nlog: { level: error, access: off }\n%s",
	    yamls[idx]) < 0)
		fail("oom");
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
	if (asprintf(&yaml, fmt, tmpdir, cf->port) < 0)
		fail("oom");
#pragma clang diagnostic pop
	snprintf(path, sizeof(path), "conf%d.yaml", idx);
	if (fz_write_file(tmpdir, path, yaml) < 0)
		fail("write");
	snprintf(path, sizeof(path), "%s/conf%d.yaml", tmpdir, idx);
	if ((c = conf_load(path, &ctx)) == NULL) {
		conf_ctx_print(&ctx, stderr);
		fail("conf_load");
	}
	if ((cf->mem = mstore_new()) == NULL)
		fail("mstore");
	fz_epoll_fds(before);
	if ((cf->w = worker_new(idx, c, cf->mem)) == NULL)
		fail("worker_new");
	fz_epoll_fds(after);
	for (i = 0; i < 1024; i++)
		if ((after[i / 8] & ~before[i / 8]) & (1u << (i % 8))) {
			cf->epfd = i;
			n++;
		}
	if (n != 1 || cf->w->n_listeners != 1 || cf->w->listeners[0].kind != LK_HTTPS)
		fail("worker set-up");
	cf->w->listeners[0].plain = 2;
	cf->lev = event_new(cf->w->base, cf->lfd, EV_READ | EV_PERSIST, up_accept, cf);
	if (cf->lev == NULL || event_add(cf->lev, NULL) < 0)
		fail("upstream accept event");
	conf_unref(c);
	conf_ctx_fini(&ctx);
	free(fmt);
	free(yaml);
}

NOCOV int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const files[] = { "cert.pem", "key.pem", "hs256.key", "conf0.yaml",
		"conf1.yaml" };
	char path[128];
	size_t i;
	int devnull;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
	log_set_level(LOG_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/visor-fuzz-h2-XXXXXX");
	if (mkdtemp(tmpdir) == NULL || fz_write_cert(tmpdir) < 0 ||
	    fz_write_file(tmpdir, "hs256.key", "visor-fuzz-hs256-secret-0123456789abcdef\n") < 0)
		fail("set-up");
	conf_init(&confs[0], 0);
	conf_init(&confs[1], 1);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	rmdir(tmpdir);
	S.cfd = -1;
	return 0;
}

/* ---- the loop and the client ------------------------------------------------------------ */

NOCOV static int
busy(void)
{
	struct pollfd pf = { .fd = S.cf->epfd, .events = POLLIN };

	if (event_base_get_num_events(S.cf->w->base, EVENT_BASE_COUNT_ACTIVE) > 0)
		return 1;
	return poll(&pf, 1, 0) > 0;
}

NOCOV static void
run(void)
{
	int i;

	for (i = 0; i < MAX_PASSES; i++) {
		event_base_loop(S.cf->w->base, EVLOOP_NONBLOCK);
		if (!busy())
			return;
	}
	fail("hang: the loop is still busy");
}

NOCOV static void
client_read(evutil_socket_t fd, short what, void *arg)
{
	char buf[65536];
	ssize_t n;

	(void)what;
	(void)arg;
	n = read(fd, buf, sizeof(buf));
	if (n > 0 && getenv("FUZZ_H2_DEBUG"))
		fprintf(stderr, "fuzz_h2: client read %zd bytes, frame types %d %d\n", n,
		    n > 3 ? (unsigned char)buf[3] : -1, n > 12 ? (unsigned char)buf[12] : -1);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		event_del(S.crev);
	}
}

/* Writes what the socket takes; the rest is dropped (the client gave up on it). */
NOCOV static void
client_write(const uint8_t *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(S.cfd, p, n);
		if (k <= 0) {
			if (k < 0 && errno == EAGAIN) {
				run();
				k = write(S.cfd, p, n);
				if (k <= 0)
					return;
			} else {
				return;
			}
		}
		p += k;
		n -= (size_t)k;
	}
}

NOCOV int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	    "\0\0\0\x04\0\0\0\0\0";       /* + an empty SETTINGS */
	struct sockaddr_in sa;
	struct worker *w;
	size_t i, start, busy_n, idle_n;
	int sv[2];

	if (size < 1)
		return 0;
	S.cf = &confs[data[0] & 1];
	S.mode = (data[0] >> 1) & 3;
	S.no_read = (data[0] >> 3) & 1;
	S.nups = 0;
	w = S.cf->w;
	if (mstore_entries(S.cf->mem) != 0)
		mstore_clear(S.cf->mem);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	S.cfd = sv[0];
	S.crev = event_new(w->base, S.cfd, EV_READ | EV_PERSIST, client_read, NULL);
	if (S.crev == NULL || (!S.no_read && event_add(S.crev, NULL) < 0))
		abort();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.7", &sa.sin_addr);
	sa.sin_port = htons(40000);
	conn_accept(w, &w->listeners[0], sv[1], (struct sockaddr *)&sa, (int)sizeof(sa));
	client_write(preface, sizeof(preface) - 1);
	run();
	for (start = i = 1; i <= size; i++) {
		if (i == size || (i + 1 < size && data[i] == 0xfe && data[i + 1] == 0xfe)) {
			client_write(data + start, i - start);
			run();
			start = i + 2;
			i++;
		}
	}
	/* the client is done sending; then the upstream goes; then the client */
	shutdown(S.cfd, SHUT_WR);
	if (S.no_read)
		event_add(S.crev, NULL);
	run();
	for (i = 0; i < S.nups; i++)
		up_close(&S.ups[i]);
	run();
	event_free(S.crev);
	close(S.cfd);
	S.cfd = -1;
	run();
	for (i = 0; i < S.nups; i++)
		up_close(&S.ups[i]);
	run();
	if (w->n_conns != 0 || !TAILQ_EMPTY(&w->conns) || !TAILQ_EMPTY(&w->dead))
		fail("a connection is left");
	up_pool_stats(w->pool, &busy_n, &idle_n);
	if (busy_n != 0)
		fail("an upstream connection is still busy");
	return 0;
}
