/* SPDX-License-Identifier: MIT
 * libFuzzer: the whole request path, in one process and on one thread. A client connection
 * goes from its first byte through conn (parsing, keep-alive, pipelining), req (checks,
 * routing, the filter chain, edge answers), the upstream pool and the response phase to a
 * fake upstream whose answers also come from the input; then the connection is closed and
 * the worker must be left exactly as it was.
 *
 * Set-up (LLVMFuzzerInitialize, once): a throw-away EC certificate, an HS256 secret and a
 * JSON schema are written to a temp dir, one YAML file per configuration of the matrix below
 * is loaded with conf_load() and a real worker is made from each with worker_new(); the temp
 * dir is removed again (everything was read at load). Each configuration also gets the fake
 * upstream: a listening TCP socket on 127.0.0.1 (an ephemeral port, named in the YAML's
 * upstream.servers) whose connections are accepted and read by callbacks on the worker's own
 * event_base. Nothing is made per input but the sockets of that input.
 *
 * Per input: a socketpair, one end handed to conn_accept() as if accepted on the worker's
 * HTTPS listener. TLS in a fuzz loop would be wasted work, so that listener has `plain` set
 * (src/core/worker.h: the one seam this harness needs in src/) — the connection skips TLS and is
 * HTTPS in every other respect (routes, filters, HSTS). The worker's event_base is driven
 * here with event_base_loop(EVLOOP_NONBLOCK), pass after pass, until nothing can move: no
 * active event and libevent's epoll descriptor not readable (found in /proc/self/fd when the
 * worker is made). Readiness of the epoll descriptor covers visor's sockets and the harness's
 * own (they are events on the same base), so a pass that would do something is never
 * skipped, and a loop that keeps being ready for MAX_PASSES passes is reported as a hang.
 * Timers are never waited for: every timeout in the configurations is an hour or more.
 *
 * Input format. Byte 0 picks the set-up:
 *   bits 0-1  the configuration (CONF_*, below)
 *   bits 2-3  3: the plain listener (301 to https, /healthz); else the HTTPS one
 *   bit 4     the client's address is IPv6 (else IPv4); trusted in the configurations that
 *             have trusted_proxies, untrusted in the others
 * Then records, each a tag byte then its operands (a length runs at most to the end):
 *   tag & 7 = 0  client bytes: 1 length byte, then the bytes, written to the client socket
 *             1  client bytes: 2 length bytes (little-endian), then the bytes; with tag bit
 *                3, no bytes follow: that many bytes of filler ('a', a bulk body), or that
 *                many 4 KiB units when the tag's bits 4-7 are all set (0xf9)
 *             2  upstream answer: 1 length byte, then the bytes; sent to the oldest upstream
 *                connection that has unanswered request bytes, as soon as one has
 *             3  upstream more: 1 length byte, then the bytes; sent at once to the connection
 *                last answered (continuations: 1xx then the final answer, a body in pieces);
 *                with none open, it waits like an answer
 *             4  upstream close (tag bit 3: reset) the connection last answered, after
 *                what was queued for it; with none open, the next connection that gets
 *                request bytes is closed unanswered. Tag bit 4 instead: the upstream stops
 *                (or starts again) reading its connections
 *             5  run the event loop until nothing moves
 *             6  client half-close (shutdown SHUT_WR); tag bit 3: close instead, leaving
 *                unread what visor sent since the last pass, so that visor sees a reset.
 *                Tag bit 4 instead: the client stops (or starts again) reading
 *             7  upstream answer with 2 length bytes; with tag bit 3, filler as for 1 ('b',
 *                0xff for 4 KiB units), sent like "more"
 * Filler is bounded to BULK_MAX bytes per input; it and the two read switches are there for
 * the watermarks (a body or an answer backing up and resuming).
 * Upstream actions run in input order (an action waits until it can run; those still
 * waiting when the input ends are dropped). Unused tag bits are ignored.
 *
 * When the records are done: the client half-closes and the loop runs (a request fully
 * received is still answered), every upstream connection is closed and the loop runs (what
 * waited for an answer gets its 502), then the client end is closed and the loop runs.
 *
 * Invariants, abort() when broken:
 *   - the worker is back to zero: no connection (n_conns == 0, the dead list empty), no
 *     upstream connection busy or idle in the pool;
 *   - everything visor wrote to the client parses (llhttp, response mode; which answers are
 *     to HEAD is known by running visor's own request parser over what the client sent) as
 *     HTTP/1.1 responses, a stream cut only inside a body (the upstream died mid-answer) or
 *     after a whole response, tunnel bytes only after a 101, nothing after a
 *     Connection: close; the only interim answer is visor's own bare 100 Continue;
 *   - every final answer has one X-Request-Id; on HTTPS one Strict-Transport-Security and
 *     one X-Content-Type-Options, on the plain listener none; never X-Powered-By or Server;
 *     no Access-Control-* where the configuration has no cors section;
 *   - an answer body visor made itself ({"error":...,"requestId":...}) says only one of
 *     visor's fixed messages (no parser reason, upstream failure text, path...) and carries
 *     the answer's own request id; a status in errors.scrub always has exactly that body; a
 *     4xx body of up to 64 KiB that reached the client whole carries no stack trace when
 *     errors.stack_traces is on;
 *   - the loop settles (MAX_PASSES), and ASan/UBSan/LeakSanitizer find nothing.
 *
 * Regressions: the bugs this target found (and those it was written to find) have seeds of
 * their own in corpus/proxy/, named after what they broke (regress_*, written by
 * proxy_seeds.py); a fix undone makes the corpus replay (CI) abort.
 *
 * Where this goes beyond the plain design, and why:
 *   - the pool's busy and idle counts come from up_pool_stats (upstream.c keeps its
 *     structs private);
 *   - the in-memory store is emptied (mstore_clear) when the last input left entries in it:
 *     rate limits, lockouts and probe bans would otherwise carry over from input to input,
 *     and an input would not mean the same thing twice;
 *   - visor's side of each upstream connection gets a 16 KiB SO_SNDBUF when the fake
 *     upstream accepts it: loopback TCP would otherwise take 4 MiB before a stalled upstream
 *     made a request body wait (conn_body_pause); the fake upstream's listening socket has a
 *     16 KiB SO_RCVBUF for the same reason;
 *   - the fake upstream's pool connections are all closed at the end of each input, so no
 *     input starts with a pooled connection left by the one before.
 *
 * Speed: no file I/O and no worker creation per input; one TCP connection to the fake
 * upstream per input that reaches it; the harness's own functions are not instrumented for
 * coverage (NOCOV).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>
#include <llhttp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "filters/cors.h"
#include "http/conn.h"
#include "core/log.h"
#include "store/mstore.h"
#include "http/req.h"
#include "filters/scrub.h"
#include "store/store.h"
#include "http/upstream.h"
#include "core/worker.h"

/* The harness's own code is left out of the coverage libFuzzer steers by: only visor's
 * (and the llhttp it shares with the checks) should count as progress. */
#define NOCOV __attribute__((no_sanitize("coverage")))

#include "fuzz_env.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PASSES  4096        /* loop passes with something ready before it is a hang */
#define MAX_UPS     32          /* upstream connections per input; more are closed at once */
#define MAX_ACTS    512
#define MAX_STEPS   2048
#define MAX_REQS    512         /* requests whose method is remembered (HEAD answers) */
#define OUT_MAX     (8 << 20)   /* client output kept for the checks */
#define BODY_MAX    (SCRUB_INSPECT_MAX + 1)
#define BULK_MAX    (1 << 20)   /* filler bytes per input, both sides together: enough for
                                 * a body or an answer to back up past the watermarks */

/* The HS256 key of the jwt configurations; proxy.dict and the seeds carry tokens signed
 * with it ({"sub":"alice","exp":4102444800,"role":"admin"} and others). */
#define HS256_SECRET "visor-fuzz-hs256-secret-0123456789abcdef"

#define SCHEMA \
	"{\"type\":\"object\",\"required\":[\"name\"],\"additionalProperties\":false," \
	"\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":32}," \
	"\"email\":{\"type\":\"string\",\"format\":\"email\"}," \
	"\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150}," \
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":4}}}\n"

/* ---- the configurations ------------------------------------------------------------- */

/* Common part: %1$s the temp dir, %2$d the fake upstream's port, %3$d upstream.keepalive.
 * Every timeout is long, so no timer fires while an input runs. */
#define COMMON \
	"listen: { https: 127.0.0.1:0, http: 127.0.0.1:0, redirect_port: 8443 }\n" \
	"workers: 1\n" \
	"tls:\n" \
	"  certificates: [ { cert: %1$s/cert.pem, key: %1$s/key.pem } ]\n" \
	"upstream:\n" \
	"  servers: [127.0.0.1:%2$d]\n" \
	"  keepalive: %3$d\n" \
	"  connect_timeout: 1h\n" \
	"  timeout: 1d\n" \
	"  idle_timeout: 1d\n"

enum { CONF_OPEN = 0, CONF_JWT, CONF_LIMITS, CONF_ALL, NCONF };

struct fz_conf {
	const char     *name;
	const char     *yaml;          /* appended to COMMON, same arguments */
	int             keepalive;
	int             trusted;       /* the client's address is a trusted proxy */
	struct worker  *w;
	struct mstore  *mem;
	int             epfd;          /* libevent's epoll descriptor of w->base */
	int             lfd;           /* the fake upstream's listening socket */
	int             port;
	struct event   *lev;
};

static struct fz_conf confs[NCONF] = {
	[CONF_OPEN] = {
		/* no trusted proxies, no CORS, no auth; default scrubbing and probes */
		.name = "open", .keepalive = 64,
		.yaml =
		"client: { header_timeout: 1h, idle_timeout: 1d, max_body_size: 8m }\n"
		"routes:\n"
		"  - { path: /ws/ }\n"
		"  - { path: / }\n"
		"log: { level: error, access: stdout }\n",
	},
	[CONF_JWT] = {
		/* trusted proxies, JWT (required / optional / off), CORS rejecting */
		.name = "jwt", .keepalive = 2, .trusted = 1,
		.yaml =
		"client:\n"
		"  trusted_proxies: [10.0.0.0/8, \"2001:db8::/32\"]\n"
		"  header_timeout: 1h\n"
		"  idle_timeout: 1d\n"
		"cors:\n"
		"  origins: [https://app.example.com, \"null\"]\n"
		"  credentials: true\n"
		"  on_disallowed: reject\n"
		"jwt:\n"
		"  algorithms: [HS256]\n"
		"  keys: [ { secret_file: %1$s/hs256.key } ]\n"
		"  required_claims: [exp]\n"
		"  cookie: access_token\n"
		"  claims_to_headers: { sub: X-User-Id, role: X-User-Role }\n"
		"routes:\n"
		"  - { path: /api/public/, auth: off }\n"
		"  - { path: /api/opt/, auth: optional }\n"
		"  - { path: /ws/, auth: required }\n"
		"  - { path: /api/, auth: required }\n"
		"  - { path: /, auth: optional }\n"
		"errors: { scrub: [500-599], stack_traces: true }\n"
		"log: { level: error, access: off }\n",
	},
	[CONF_LIMITS] = {
		/* in-memory rate limits, lockout, body rules, small limits, CORS omitting, no
		 * upstream keep-alive */
		.name = "limits", .keepalive = 0,
		.yaml =
		"client: { header_timeout: 1h, idle_timeout: 1d, max_header_size: 1k, max_body_size: 4k }\n"
		"cors: { origins: [https://app.example.com], on_disallowed: omit }\n"
		"rate_limits:\n"
		"  api:    { limit: 3, window: 1h, key: ip }\n"
		"  login:  { limit: 2, window: 1h, key: ip, count: failures }\n"
		"  apikey: { limit: 2, window: 1h, key: \"header:X-Api-Key\" }\n"
		"rate_limit_headers: draft-7\n"
		"lockout: { path: /api/auth/login, field: email, after: 2, base: 1h, max: 1d }\n"
		"routes:\n"
		"  - { path: /api/auth/, rate_limits: [login] }\n"
		"  - path: /api/users\n"
		"    methods: [POST, PUT]\n"
		"    rate_limits: [api]\n"
		"    body: { schema: %1$s/schema.json, max_size: 512 }\n"
		"  - { path: /api/json/, body: {} }\n"
		"  - { path: /api/, rate_limits: [api, apikey] }\n"
		"  - { path: /ws/ }\n"
		"  - { path: / }\n"
		"errors: { scrub: [500-503], stack_traces: false }\n"
		"probes: { paths: [/.env, /.git/, /wp-admin], ban_after: 2, ban_for: 1h }\n"
		"log: { level: error, access: stdout }\n",
	},
	[CONF_ALL] = {
		/* everything at once: trusted proxies, JWT with per-user limits, body schema,
		 * custom headers, CORS omitting, quick probe bans, a partial scrub list */
		.name = "all", .keepalive = 1, .trusted = 1,
		.yaml =
		"client:\n"
		"  trusted_proxies: [10.0.0.0/8, \"2001:db8::/32\"]\n"
		"  header_timeout: 1h\n"
		"  idle_timeout: 1d\n"
		"  max_body_size: 16k\n"
		"hsts: { max_age: 60, include_subdomains: false }\n"
		"headers: { X-Frame-Options: DENY, Content-Security-Policy: \"\" }\n"
		"remove_headers: [X-Powered-By, Server, X-Internal]\n"
		"cors:\n"
		"  origins: [https://app.example.com, \"http://localhost:3000\"]\n"
		"  methods: [GET, POST]\n"
		"  headers: [Content-Type, Authorization, X-Api-Key]\n"
		"  max_age: 0\n"
		"  on_disallowed: omit\n"
		"jwt:\n"
		"  algorithms: [HS256]\n"
		"  keys: [ { secret_file: %1$s/hs256.key } ]\n"
		"  required_claims: [exp, sub]\n"
		"rate_limits:\n"
		"  user:   { limit: 3, window: 1h, key: user }\n"
		"  ipuser: { limit: 5, window: 1h, key: ip+user }\n"
		"routes:\n"
		"  - path: /api/users\n"
		"    methods: [POST]\n"
		"    auth: required\n"
		"    rate_limits: [user]\n"
		"    body: { schema: %1$s/schema.json, max_size: 1k }\n"
		"  - { path: /api/, auth: required, rate_limits: [user, ipuser] }\n"
		"  - { path: /ws/, auth: optional }\n"
		"  - { path: /, auth: off, rate_limits: [ipuser] }\n"
		"errors: { scrub: [500, 502-504], stack_traces: true }\n"
		"probes: { paths: [/.env], ban_after: 1, ban_for: 1h }\n"
		"log: { level: error, access: off }\n",
	},
};

/* ---- per-input state ---------------------------------------------------------------- */

enum { ACT_ANSWER = 0, ACT_MORE, ACT_FILL, ACT_CLOSE, ACT_RESET };

struct act {
	int          kind;
	const char  *p;            /* into the input */
	size_t       n;
};

enum { ST_CSEND = 0, ST_CSHUT, ST_CRESET, ST_CPAUSE, ST_UPPAUSE, ST_UP, ST_RUN };

struct step {
	int     kind;
	size_t  n;                 /* ST_CSEND: bytes of the client stream released */
	struct act a;              /* ST_UP */
};

struct upc {                   /* the fake upstream's end of one connection */
	int              fd;       /* -1: closed */
	struct event    *ev, *wev;
	struct evbuffer *out;      /* answer bytes visor has not taken yet */
	int              pending;  /* request bytes arrived since the last answer */
	int              closing;  /* close once `out` is written */
};

struct fz {
	struct fz_conf     *cf;
	struct event_base  *base;
	int                 https;

	/* client side: the stream is the concatenation of every client record */
	int                 cfd;           /* our end; -1 when closed */
	struct event       *crev, *cwev;
	char               *cin;
	size_t              cin_cap;
	size_t              crel;          /* released by the records so far */
	size_t              csent;         /* written to the socket */
	int                 c_wdead;       /* visor closed its end: nothing more can be sent */
	int                 shut_wanted, shut_done;
	int                 c_eof;         /* visor closed its end */
	int                 cut_ok;        /* we reset: an answer may be cut anywhere */
	char               *out;           /* everything visor wrote to the client */
	size_t              out_len, out_cap;
	int                 out_over;

	/* upstream side */
	struct upc          ups[MAX_UPS];
	size_t              nups;
	int                 cur;           /* connection last acted on, -1 when none */
	struct act          acts[MAX_ACTS];
	size_t              nacts, ahead;
	int                 closing_up;    /* end of input: every connection closes */
	int                 c_paused;      /* the client does not read (visor's output backs up) */
	int                 up_paused;     /* the upstream does not read (request bodies back up) */
	size_t              nbulk;         /* filler bytes planned */

	struct step         steps[MAX_STEPS];
	size_t              nsteps;
};

static struct fz S;
static int debug;                      /* FUZZ_PROXY_DEBUG=1: print each client stream */
static char tmpdir[64];

/* ---- reporting ------------------------------------------------------------------------ */

static void dump_out(void);

NOCOV static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

NOCOV static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_proxy: invariant broken (configuration %s, %s listener): ",
	    S.cf ? S.cf->name : "?", S.https ? "https" : "plain");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_out();
	abort();
}

/* The client output, escaped, for the report (bounded). */
NOCOV static void
dump_out(void)
{
	size_t i, n = S.out_len < 4096 ? S.out_len : 4096;

	fprintf(stderr, "fuzz_proxy: client received %zu bytes:\n\"", S.out_len);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)S.out[i];
		if (ch == '\n')
			fputs("\\n\"\n\"", stderr);
		else if (ch == '\r')
			fputs("\\r", stderr);
		else if (ch == '"' || ch == '\\')
			fprintf(stderr, "\\%c", ch);
		else if (ch < 32 || ch > 126)
			fprintf(stderr, "\\x%02x", ch);
		else
			fputc(ch, stderr);
	}
	fputs(n < S.out_len ? "\"...\n" : "\"\n", stderr);
}

/* ---- set-up ------------------------------------------------------------------------------ */

static void fu_on_accept(evutil_socket_t fd, short what, void *arg);

NOCOV static int
upstream_listen(struct fz_conf *cf)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int rcvbuf = 16384;

	cf->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cf->lfd < 0)
		return -1;
	/* A small receive window (inherited by accepted sockets): when the fake upstream
	 * stops reading, a request body backs up in visor after a few dozen KiB instead of
	 * the megabytes loopback TCP would otherwise absorb. */
	setsockopt(cf->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(cf->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(cf->lfd, 256) < 0 ||
	    getsockname(cf->lfd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	cf->port = ntohs(a.sin_port);
	return 0;
}

NOCOV static int
conf_init(struct fz_conf *cf, int idx)
{
	char path[128], *yaml = NULL, *fmt = NULL;
	unsigned char before[128], after[128];
	struct conf_ctx ctx;
	struct conf *c = NULL;
	int i, n = 0;

	memset(&ctx, 0, sizeof(ctx));
	if (upstream_listen(cf) < 0)
		goto fail;
	if (asprintf(&fmt, "%s%s", COMMON, cf->yaml) < 0)
		goto fail;
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
	/* fmt is COMMON and one of the fixed texts in confs[] */
	if (asprintf(&yaml, fmt, tmpdir, cf->port, cf->keepalive) < 0) {
#pragma clang diagnostic pop
		yaml = NULL;
		goto fail;
	}
	snprintf(path, sizeof(path), "conf%d.yaml", idx);
	if (fz_write_file(tmpdir, path, yaml) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/conf%d.yaml", tmpdir, idx);
	c = conf_load(path, &ctx);
	if (c == NULL) {
		conf_ctx_print(&ctx, stderr);
		goto fail;
	}
	cf->mem = mstore_new();
	if (cf->mem == NULL)
		goto fail;
	fz_epoll_fds(before);
	cf->w = worker_new(idx, c, cf->mem);
	if (cf->w == NULL)
		goto fail;
	fz_epoll_fds(after);
	cf->epfd = -1;
	for (i = 0; i < 1024; i++) {
		if ((after[i / 8] & ~before[i / 8]) & (1u << (i % 8))) {
			cf->epfd = i;
			n++;
		}
	}
	if (n != 1 || strcmp(event_base_get_method(cf->w->base), "epoll") != 0) {
		fprintf(stderr, "fuzz_proxy: cannot find the worker's epoll descriptor\n");
		goto fail;
	}
	/* The worker's HTTPS listener takes our socketpairs without TLS (src/core/worker.h). Both
	 * of its listeners stay bound but unused: nobody connects to them. */
	if (cf->w->n_listeners != 2 || cf->w->listeners[0].kind != LK_HTTPS ||
	    cf->w->listeners[1].kind != LK_HTTP)
		goto fail;
	cf->w->listeners[0].plain = 1;
	cf->lev = event_new(cf->w->base, cf->lfd, EV_READ | EV_PERSIST, fu_on_accept, cf);
	if (cf->lev == NULL || event_add(cf->lev, NULL) < 0)
		goto fail;
	conf_unref(c);
	conf_ctx_fini(&ctx);
	free(fmt);
	free(yaml);
	return 0;
fail:
	fprintf(stderr, "fuzz_proxy: cannot set up configuration %s\n", cf->name);
	conf_unref(c);
	conf_ctx_fini(&ctx);
	free(fmt);
	free(yaml);
	return -1;
}

NOCOV static void
rm_tmpdir(void)
{
	static const char *const files[] = { "cert.pem", "key.pem", "hs256.key", "schema.json",
		"conf0.yaml", "conf1.yaml", "conf2.yaml", "conf3.yaml" };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

NOCOV int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e;
	int i, devnull;

	(void)argc;
	(void)argv;
	e = getenv("FUZZ_PROXY_DEBUG");
	debug = e != NULL && strcmp(e, "1") == 0;
	/* visor writes to sockets the client may have closed: EPIPE, never a signal (as main.c) */
	signal(SIGPIPE, SIG_IGN);
	/* the access log goes to stdout; libFuzzer reports on stderr */
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
	log_set_level(LOG_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/visor-fuzz-proxy-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		goto fail;
	if (fz_write_cert(tmpdir) < 0 || fz_write_file(tmpdir, "hs256.key", HS256_SECRET "\n") < 0 ||
	    fz_write_file(tmpdir, "schema.json", SCHEMA) < 0)
		goto fail;
	for (i = 0; i < NCONF; i++)
		if (conf_init(&confs[i], i) < 0)
			goto fail;
	rm_tmpdir();
	memset(&S, 0, sizeof(S));
	S.cfd = -1;
	S.cur = -1;
	return 0;
fail:
	fprintf(stderr, "fuzz_proxy: set-up failed\n");
	rm_tmpdir();
	exit(1);
}

/* ---- the event loop ------------------------------------------------------------------- */

/* Whether a pass could do anything now: an event is active, or a descriptor registered in
 * the base is ready. Timers are not waited for (none is due within an input). */
NOCOV static int
busy(void)
{
	struct pollfd pf = { .fd = S.cf->epfd, .events = POLLIN };

	if (event_base_get_num_events(S.base, EVENT_BASE_COUNT_ACTIVE) > 0)
		return 1;
	return poll(&pf, 1, 0) > 0;
}

NOCOV static void
run(const char *stage)
{
	int i;

	for (i = 0; i < MAX_PASSES; i++) {
		event_base_loop(S.base, EVLOOP_NONBLOCK);
		if (!busy())
			return;
	}
	fail("hang: the loop is still busy after %d passes (%s; %lld connections)",
	    MAX_PASSES, stage, (long long)S.cf->w->n_conns);
}

/* ---- the client side ------------------------------------------------------------------- */

NOCOV static void
out_reserve(size_t n)
{
	char *p;
	size_t cap;

	if (S.out_cap - S.out_len >= n)
		return;
	cap = S.out_cap ? S.out_cap : 65536;
	while (cap - S.out_len < n)
		cap *= 2;
	if ((p = realloc(S.out, cap)) == NULL)
		abort();
	S.out = p;
	S.out_cap = cap;
}

NOCOV static void
client_close(void)
{
	if (S.cfd < 0)
		return;
	event_free(S.crev);
	event_free(S.cwev);
	S.crev = S.cwev = NULL;
	close(S.cfd);
	S.cfd = -1;
}

NOCOV static void
client_flush(void)
{
	ssize_t n;

	if (S.cfd < 0)
		return;
	while (S.csent < S.crel && !S.c_wdead) {
		n = send(S.cfd, S.cin + S.csent, S.crel - S.csent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			S.csent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(S.cwev, NULL);
			return;
		}
		/* visor closed its end: the rest can never arrive */
		S.c_wdead = 1;
		break;
	}
	if (S.shut_wanted && !S.shut_done) {
		shutdown(S.cfd, SHUT_WR);
		S.shut_done = 1;
	}
}

NOCOV static void
on_client_read(evutil_socket_t fd, short what, void *arg)
{
	char sink[16384];
	ssize_t n;

	(void)what;
	(void)arg;
	for (;;) {
		size_t room;
		if (S.out_len < OUT_MAX) {
			out_reserve(16384);
			room = S.out_cap - S.out_len;
			n = recv(fd, S.out + S.out_len, room, MSG_DONTWAIT);
			if (n > 0)
				S.out_len += (size_t)n;
		} else {
			room = sizeof(sink);
			n = recv(fd, sink, room, MSG_DONTWAIT);
			if (n > 0)
				S.out_over = 1;
		}
		if (n > 0 && (size_t)n < room)
			return;        /* drained; an EOF behind it wakes the event again */
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF (or an error): visor closed; stop listening or the loop never settles */
		S.c_eof = 1;
		event_del(S.crev);
		return;
	}
}

NOCOV static void
on_client_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	client_flush();
}

/* The client stops or resumes reading (visor's output backs up: it must pause the
 * upstream, then resume it when the client drains). */
NOCOV static void
client_pause(int on)
{
	S.c_paused = on;
	if (S.cfd < 0 || S.c_eof)
		return;
	if (on)
		event_del(S.crev);
	else
		event_add(S.crev, NULL);
}

/* Closes our end with what visor sent since the last pass still unread: for an AF_UNIX
 * stream that makes visor's next read fail with ECONNRESET (a client reset). The unread
 * bytes are peeked first so the checks still see them. */
NOCOV static void
client_reset(void)
{
	int avail = 0;
	ssize_t n;

	if (S.cfd < 0)
		return;
	if (ioctl(S.cfd, FIONREAD, &avail) == 0 && avail > 0 && S.out_len + (size_t)avail <= OUT_MAX) {
		out_reserve((size_t)avail);
		n = recv(S.cfd, S.out + S.out_len, (size_t)avail, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			S.out_len += (size_t)n;
	}
	S.cut_ok = 1;
	client_close();
}

/* ---- the fake upstream ---------------------------------------------------------------- */

NOCOV static void
fu_close(struct upc *u, int reset)
{
	struct linger lg = { 1, 0 };

	if (u->fd < 0)
		return;
	if (reset)
		setsockopt(u->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	event_free(u->ev);
	event_free(u->wev);
	evbuffer_free(u->out);
	u->ev = u->wev = NULL;
	u->out = NULL;
	close(u->fd);
	u->fd = -1;
	if (S.cur >= 0 && &S.ups[S.cur] == u)
		S.cur = -1;
}

/* Writes what visor takes now; the rest when the socket is writable again. */
NOCOV static void
fu_flush(struct upc *u)
{
	int k;

	while (evbuffer_get_length(u->out) > 0) {
		k = evbuffer_write(u->out, u->fd);
		if (k > 0)
			continue;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(u->wev, NULL);
			return;
		}
		fu_close(u, 0);      /* visor closed it */
		return;
	}
	event_del(u->wev);
	if (u->closing)
		fu_close(u, 0);
}

NOCOV static void
fu_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fu_flush(arg);
}

/* Filler for bulk bodies: added by reference, never copied. */
static const char filler[4096] = { [0 ... 4095] = 'b' };

/* Runs the queued upstream actions, in order, as far as they can run now. */
NOCOV static void
fu_pump(void)
{
	struct act *a;
	struct upc *u;
	size_t i, n;
	int t;

	while (S.ahead < S.nacts && !S.closing_up) {
		a = &S.acts[S.ahead];
		t = -1;
		if (a->kind != ACT_ANSWER && S.cur >= 0 && S.ups[S.cur].fd >= 0 &&
		    !S.ups[S.cur].closing) {
			t = S.cur;
		} else {
			for (i = 0; i < S.nups; i++) {
				if (S.ups[i].fd >= 0 && !S.ups[i].closing && S.ups[i].pending) {
					t = (int)i;
					break;
				}
			}
		}
		if (t < 0)
			return;        /* waits for request bytes */
		S.ahead++;
		u = &S.ups[t];
		u->pending = 0;
		S.cur = t;
		switch (a->kind) {
		case ACT_ANSWER:
		case ACT_MORE:
			evbuffer_add(u->out, a->p, a->n);
			fu_flush(u);
			break;
		case ACT_FILL:
			for (n = a->n; n > 0; n -= MIN(n, sizeof(filler)))
				evbuffer_add_reference(u->out, filler, MIN(n, sizeof(filler)), NULL, NULL);
			fu_flush(u);
			break;
		case ACT_CLOSE:
			/* after what was queued for it: an answer, then the close */
			u->closing = 1;
			S.cur = -1;
			fu_flush(u);
			break;
		case ACT_RESET:
			fu_close(u, 1);
			break;
		}
	}
}

/* The upstream stops or resumes reading its connections (request bodies back up in
 * visor, which must pause the client). */
NOCOV static void
fu_pause(int on)
{
	size_t i;

	S.up_paused = on;
	for (i = 0; i < S.nups; i++) {
		if (S.ups[i].fd < 0)
			continue;
		if (on)
			event_del(S.ups[i].ev);
		else
			event_add(S.ups[i].ev, NULL);
	}
}

NOCOV static void
fu_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct upc *u = arg;
	char buf[16384];
	ssize_t n;
	int got = 0;

	(void)what;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			got = 1;
			if ((size_t)n < sizeof(buf))
				break;        /* drained; an EOF behind it wakes the event again */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		fu_close(u, 0);      /* visor closed this connection */
		return;
	}
	if (!got)
		return;
	if (S.closing_up) {
		fu_close(u, 0);
		return;
	}
	u->pending = 1;
	fu_pump();
}

/* Visor's side of each upstream connection gets a small send buffer (loopback TCP would
 * otherwise take 4 MiB from visor before its own buffer fills and the request body has to
 * wait): a slow upstream is then a few hundred KiB away, not megabytes. A buffer size only;
 * nothing visor does changes. */
NOCOV static void
small_sndbuf(void)
{
	struct conn *c;
	int sz = 16384;

	TAILQ_FOREACH(c, &S.cf->w->conns, link)
		if (c->req && c->req->up && up_sock_fd(c->req->up) >= 0)
			setsockopt(up_sock_fd(c->req->up), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

NOCOV static void
fu_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct upc *u;
	int fd;

	(void)what;
	(void)arg;
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (S.closing_up || S.nups == MAX_UPS) {
			close(fd);
			continue;
		}
		u = &S.ups[S.nups];
		u->fd = fd;
		u->pending = u->closing = 0;
		u->ev = event_new(S.base, fd, EV_READ | EV_PERSIST, fu_on_read, u);
		u->wev = event_new(S.base, fd, EV_WRITE, fu_on_write, u);
		u->out = evbuffer_new();
		if (u->ev == NULL || u->wev == NULL || u->out == NULL ||
		    (!S.up_paused && event_add(u->ev, NULL) < 0))
			abort();
		S.nups++;
		small_sndbuf();
	}
}

NOCOV static void
fu_close_all(void)
{
	size_t i;

	S.closing_up = 1;
	for (i = 0; i < S.nups; i++)
		fu_close(&S.ups[i], 0);
}

/* ---- the checks of the client's stream ------------------------------------------------ */

/* The methods of the requests in what the client sent, in order (to know which answers
 * are to HEAD), parsed by visor's own http_parser (llhttp plus its start-line scan and head
 * limit) driven as conn.c drives it: a head visor refuses is not counted (its 400 has a
 * body), a refused HEAD that did parse is (its 400 has none). Visor closes after either. */
struct reqs {
	struct http_parser  hp;
	int                 m[MAX_REQS];
	int                 n;
};

NOCOV static int
rq_on_head(struct http_parser *p)
{
	struct reqs *q = p->owner;

	if (q->n < MAX_REQS)
		q->m[q->n++] = (int)llhttp_get_method(&p->ll);
	return 0;
}

NOCOV static int
rq_on_body(struct http_parser *p, const char *at, size_t n)
{
	(void)p;
	(void)at;
	(void)n;
	return 0;
}

NOCOV static int
rq_on_done(struct http_parser *p)
{
	(void)p;
	return 0;
}

static const struct http_parser_ops rq_ops = { rq_on_head, rq_on_body, rq_on_done };

NOCOV static void
reqs_parse(struct reqs *q, const char *s, size_t n, size_t max_head)
{
	size_t off = 0;
	long k;
	int rounds = 0;

	q->n = 0;
	http_parser_init(&q->hp, 1, &rq_ops, q, max_head);
	while (off < n && q->n < MAX_REQS && rounds++ < 4 * MAX_REQS) {
		k = http_parser_feed(&q->hp, s + off, n - off);
		if (k < 0)
			break;
		off += (size_t)k;
		/* at the end of a head: a message without a body completes on an empty feed */
		if (q->hp.head_done && !q->hp.msg_done && http_parser_feed(&q->hp, "", 0) < 0)
			break;
		if (q->hp.msg_done)
			http_parser_next(&q->hp);
	}
	http_parser_fini(&q->hp);
}

static const char *const messages[] = {
	/* req_status_message() and the body filter's fixed texts */
	"Moved permanently", "Bad request", "Unauthorized", "Forbidden", "Not found",
	"Method not allowed", "Request timeout", "Payload too large", "Unsupported media type",
	"Expectation failed", "Too many requests", "Request header fields too large",
	"Internal server error", "Not implemented", "Bad gateway", "Service unavailable",
	"Gateway timeout", "OK", "Invalid JSON",
};

struct resp {
	llhttp_t        p;
	const struct reqs *q;
	int             nfinal;        /* final answers completed */
	int             in_head;
	int             head_done;
	int             tunnel;
	/* the answer being parsed */
	int             status;
	int             head_req;      /* it answers a HEAD */
	char            name[64];
	size_t          nl;
	char            val[256];
	size_t          vl;
	int             nhdrs, n_id, n_sts, n_xcto, n_acao, n_pb, n_server, encoded, json;
	char            id[72];
	char           *body;
	size_t          blen, bcap;
	int             btrunc;
};

NOCOV static int
rs_on_message_begin(llhttp_t *p)
{
	struct resp *r = p->data;

	r->in_head = 1;
	r->head_done = 0;
	r->nl = r->vl = 0;
	r->nhdrs = r->n_id = r->n_sts = r->n_xcto = r->n_acao = r->n_pb = r->n_server = 0;
	r->encoded = r->json = 0;
	r->id[0] = '\0';
	r->blen = 0;
	r->btrunc = 0;
	return 0;
}

NOCOV static int
rs_on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct resp *r = p->data;

	if (r->nl + n < sizeof(r->name)) {
		memcpy(r->name + r->nl, at, n);
		r->nl += n;
	} else {
		r->nl = sizeof(r->name);     /* too long to be one we look at */
	}
	return 0;
}

NOCOV static int
rs_on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct resp *r = p->data;

	if (r->vl + n < sizeof(r->val)) {
		memcpy(r->val + r->vl, at, n);
		r->vl += n;
	} else {
		r->vl = sizeof(r->val);
	}
	return 0;
}

NOCOV static int
is(const struct resp *r, const char *name)
{
	size_t n = strlen(name);

	return r->nl == n && strncasecmp(r->name, name, n) == 0;
}

NOCOV static int
rs_on_header_value_complete(llhttp_t *p)
{
	struct resp *r = p->data;
	size_t n = r->vl < sizeof(r->val) ? r->vl : 0;

	r->nhdrs++;
	if (is(r, "x-request-id")) {
		r->n_id++;
		if (n < sizeof(r->id)) {
			memcpy(r->id, r->val, n);
			r->id[n] = '\0';
		}
	} else if (is(r, "strict-transport-security")) {
		r->n_sts++;
	} else if (is(r, "x-content-type-options")) {
		r->n_xcto++;
	} else if (r->nl > 15 && strncasecmp(r->name, "access-control-", 15) == 0 &&
	    r->nl < sizeof(r->name)) {
		r->n_acao++;
	} else if (is(r, "x-powered-by")) {
		r->n_pb++;
	} else if (is(r, "server")) {
		r->n_server++;
	} else if (is(r, "content-encoding")) {
		if (!(n == 8 && strncasecmp(r->val, "identity", 8) == 0))
			r->encoded = 1;
	} else if (is(r, "content-type")) {
		r->json = n >= 16 && strncasecmp(r->val, "application/json", 16) == 0;
	}
	r->nl = r->vl = 0;
	return 0;
}

NOCOV static int
rs_on_headers_complete(llhttp_t *p)
{
	struct resp *r = p->data;
	int st = (int)llhttp_get_status_code(p);

	r->in_head = 0;
	r->head_done = 1;
	r->status = st;
	if (st >= 100 && st < 200 && st != 101) {
		/* Interim answers are never forwarded; visor's own 100 Continue (Expect) is bare. */
		if (st != 100 || r->nhdrs != 0)
			fail("interim answer %d with %d header(s) before answer %d: a 1xx from the "
			    "upstream reached the client", st, r->nhdrs, r->nfinal);
		return 0;
	}
	r->head_req = r->nfinal < r->q->n && r->q->m[r->nfinal] == HTTP_HEAD;
	if (r->n_id != 1)
		fail("answer %d (%d) has %d X-Request-Id headers", r->nfinal, st, r->n_id);
	if (S.https && (r->n_sts != 1 || r->n_xcto != 1))
		fail("HTTPS answer %d (%d) has %d Strict-Transport-Security and %d "
		    "X-Content-Type-Options headers", r->nfinal, st, r->n_sts, r->n_xcto);
	if (!S.https && r->n_sts != 0)
		fail("plain answer %d (%d) has Strict-Transport-Security", r->nfinal, st);
	if (r->n_pb || r->n_server)
		fail("answer %d (%d) has X-Powered-By or Server", r->nfinal, st);
	if (r->n_acao && !((const struct cors_sect *)conf_sect(S.cf->w->conf,
	    filter_id(&cors_filter)))->enabled)
		fail("answer %d (%d) has Access-Control-* without a cors section", r->nfinal, st);
	if (st == 101) {
		r->tunnel = 1;
		return 2;              /* the rest of the stream is the tunnel's */
	}
	return r->head_req ? 1 : 0;
}

NOCOV static int
rs_on_body(llhttp_t *p, const char *at, size_t n)
{
	struct resp *r = p->data;
	char *nb;
	size_t cap;

	if (r->btrunc || r->blen + n > BODY_MAX) {
		r->btrunc = 1;
		return 0;
	}
	if (r->bcap - r->blen < n) {
		cap = r->bcap ? r->bcap : 4096;
		while (cap - r->blen < n)
			cap *= 2;
		if ((nb = realloc(r->body, cap)) == NULL)
			abort();
		r->body = nb;
		r->bcap = cap;
	}
	memcpy(r->body + r->blen, at, n);
	r->blen += n;
	return 0;
}

/* Whether body is visor's own {"error":"<msg>","requestId":"<id>"}; *msg, *id point into it. */
NOCOV static int
visor_json(const char *b, size_t n, const char **msg, size_t *ml, const char **id, size_t *il)
{
	static const char pre[] = "{\"error\":\"", mid[] = "\",\"requestId\":\"", end[] = "\"}";
	const char *m, *e;

	if (n < sizeof(pre) - 1 + sizeof(mid) - 1 + sizeof(end) - 1 ||
	    memcmp(b, pre, sizeof(pre) - 1) != 0 || memcmp(b + n - 2, end, 2) != 0)
		return 0;
	m = b + sizeof(pre) - 1;
	e = memmem(m, (size_t)(b + n - m), mid, sizeof(mid) - 1);
	if (e == NULL)
		return 0;
	*msg = m;
	*ml = (size_t)(e - m);
	*id = e + sizeof(mid) - 1;
	*il = (size_t)(b + n - 2 - *id);
	return 1;
}

NOCOV static int
message_ok(const char *m, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		if (strlen(messages[i]) == n && memcmp(messages[i], m, n) == 0)
			return 1;
	/* the body filter's schema messages name a place in the client's own body */
	return n > 14 && memcmp(m, "Invalid body: ", 14) == 0;
}

NOCOV static int
hex32(const char *s, size_t n)
{
	size_t i;

	if (n != 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

NOCOV static int
rs_on_message_complete(llhttp_t *p)
{
	struct resp *r = p->data;
	const struct conf *c = S.cf->w->conf;
	const struct scrub_sect *errors = conf_sect(c, filter_id(&scrub_filter));
	const char *m, *id;
	size_t ml, il;
	int st = r->status, mine;

	if (st >= 100 && st < 200 && st != 101)
		return 0;
	r->nfinal++;
	if (r->head_req || r->btrunc || http_status_no_body(st))
		return 0;
	mine = visor_json(r->body, r->blen, &m, &ml, &id, &il);
	/* An upstream could echo a client-chosen id in such a body; a 32-hex id is visor's. */
	if (mine && hex32(id, il) && (!message_ok(m, ml) || il != strlen(r->id) ||
	    memcmp(id, r->id, il) != 0))
		fail("answer %d (%d): visor's body says %.*s (request id %.*s, header %s)",
		    r->nfinal - 1, st, (int)ml, m, (int)il, id, r->id);
	if (S.https && scrub_status(c, st)) {
		char want[160];
		const char *msg = req_status_message(st);
		int wl = snprintf(want, sizeof(want), "{\"error\":\"%s\",\"requestId\":\"%s\"}", msg, r->id);
		if (!r->json || (size_t)wl != r->blen || memcmp(want, r->body, r->blen) != 0)
			fail("answer %d: status %d is in errors.scrub but its body is not the generic one",
			    r->nfinal - 1, st);
	}
	if (S.https && errors->stack_traces && st >= 400 && st <= 499 && !r->encoded && !mine &&
	    r->blen <= SCRUB_INSPECT_MAX && scrub_has_stack_trace(r->body, r->blen))
		fail("answer %d: a %d body with a stack trace reached the client", r->nfinal - 1, st);
	return 0;
}

NOCOV static void
check_stream(const struct reqs *q)
{
	static struct resp r;          /* its body buffer is kept between inputs */
	llhttp_settings_t st;
	llhttp_errno_t e;

	llhttp_settings_init(&st);
	st.on_message_begin = rs_on_message_begin;
	st.on_header_field = rs_on_header_field;
	st.on_header_value = rs_on_header_value;
	st.on_header_value_complete = rs_on_header_value_complete;
	st.on_headers_complete = rs_on_headers_complete;
	st.on_body = rs_on_body;
	st.on_message_complete = rs_on_message_complete;
	llhttp_init(&r.p, HTTP_RESPONSE, &st);
	r.p.data = &r;
	r.q = q;
	r.nfinal = r.in_head = r.head_done = r.tunnel = 0;
	if (S.out_over || S.out_len == 0)
		return;
	e = llhttp_execute(&r.p, S.out, S.out_len);
	if (e == HPE_PAUSED_UPGRADE && r.tunnel)
		return;
	if (e != HPE_OK)
		fail("the client's stream is not HTTP at byte %zu: %s (%s)",
		    (size_t)(llhttp_get_error_pos(&r.p) - S.out), llhttp_errno_name(e),
		    llhttp_get_error_reason(&r.p));
	if (r.in_head && !S.cut_ok)
		fail("the client's stream ends inside a response head");
	/* A close-delimited body ends here; a body cut short is what an upstream dying
	 * mid-answer leaves (visor can only cut the stream then). */
	(void)llhttp_finish(&r.p);
}

/* ---- the end of an input -------------------------------------------------------------- */

NOCOV static void
check_worker(void)
{
	struct worker *w = S.cf->w;
	struct conn *c;
	size_t busy, idle;

	if (w->n_conns != 0 || !TAILQ_EMPTY(&w->conns)) {
		c = TAILQ_FIRST(&w->conns);
		if (c == NULL)
			fail("n_conns is %lld with no connection listed", (long long)w->n_conns);
		fail("%lld client connection(s) left after the client closed (first: state %d, "
		    "sock eof %d reading %d, %zu bytes unread; request %s: phase %d, status %d, "
		    "resp_done %d, body_done %d, discard %d, suspended %d, up %s)",
		    (long long)w->n_conns, (int)c->st, c->s.eof, c->s.reading,
		    evbuffer_get_length(c->s.in), c->req ? c->req->id : "-",
		    c->req ? (int)c->req->phase : -1, c->req ? c->req->status : -1,
		    c->req ? c->req->resp_done : -1, c->req ? c->req->body_done : -1,
		    c->req ? c->req->discard : -1, c->req ? c->req->suspended : -1,
		    c->req && c->req->up ? "yes" : "no");
	}
	if (!TAILQ_EMPTY(&w->dead))
		fail("a dead connection was never reaped");
	up_pool_stats(w->pool, &busy, &idle);
	if (busy != 0 || idle != 0)
		fail("the upstream pool still holds %zu busy and %zu idle connection(s)", busy, idle);
}

NOCOV static void
finish(void)
{
	struct reqs *q;

	/* 1. the client half-closes: what it sent in full is still answered; both sides read
	 * again */
	if (S.c_paused)
		client_pause(0);
	if (S.up_paused)
		fu_pause(0);
	S.shut_wanted = 1;
	client_flush();
	run("client half-close");
	/* 2. every upstream connection goes: whatever waits for an answer gets its 502 */
	fu_close_all();
	run("upstream close");
	/* 3. the client goes */
	client_flush();
	client_close();
	run("client close");
	/* the stream first: a broken answer explains a stuck connection better than its state */
	if (debug) {
		fprintf(stderr, "fuzz_proxy: configuration %s, %s listener, %zu client bytes sent, "
		    "%zu upstream connections\n", S.cf->name, S.https ? "https" : "plain", S.csent,
		    S.nups);
		dump_out();
	}
	q = malloc(sizeof(*q));
	if (q == NULL)
		abort();
	/* only answers to HEAD need the requests parsed: skip it when there can be none */
	q->n = 0;
	if (S.csent >= 4 && memmem(S.cin, S.csent, "HEAD", 4) != NULL)
		reqs_parse(q, S.cin, S.csent, (size_t)S.cf->w->conf->client.max_header_size);
	check_stream(q);
	free(q);
	check_worker();
}

/* ---- one input ------------------------------------------------------------------------ */

NOCOV static int
cin_reserve(size_t n)
{
	char *p;
	size_t cap;

	if (S.cin_cap >= n)
		return 0;
	cap = S.cin_cap ? S.cin_cap : 4096;
	while (cap < n)
		cap *= 2;
	if ((p = realloc(S.cin, cap)) == NULL)
		abort();
	S.cin = p;
	S.cin_cap = cap;
	return 0;
}

/* Splits the input into steps; the client stream is gathered into S.cin. 0, or -1 when the
 * input is too long for the tables (ignored). */
NOCOV static int
plan(const uint8_t *d, size_t n)
{
	size_t i = 0, len, fill;
	struct step *s;
	unsigned t;
	int bulk;

	S.nsteps = 0;
	S.crel = 0;
	cin_reserve(1);            /* never a NULL stream, even an empty one */
	while (i < n) {
		if (S.nsteps == MAX_STEPS)
			return -1;
		s = &S.steps[S.nsteps++];
		memset(s, 0, sizeof(*s));
		t = d[i++];
		len = 0;
		bulk = ((t & 7) == 1 || (t & 7) == 7) && (t & 8);
		switch (t & 7) {
		case 0:
		case 2:
		case 3:
			len = i < n ? d[i++] : 0;
			break;
		case 1:
		case 7:
			len = i < n ? d[i++] : 0;
			len |= (size_t)(i < n ? d[i++] : 0) << 8;
			break;
		}
		if (bulk) {
			/* a byte per unit, or 4 KiB with the tag's high bits all set: a megabyte only
			 * when asked for by name, as it costs dozens of ordinary inputs */
			fill = MIN(len * ((t & 0xf0) == 0xf0 ? 4096 : 1), BULK_MAX - S.nbulk);
			S.nbulk += fill;
			len = 0;
		} else if (len > n - i) {
			len = n - i;
		}
		switch (t & 7) {
		case 0:
		case 1:
			s->kind = ST_CSEND;
			s->n = bulk ? fill : len;
			if (cin_reserve(S.crel + s->n) < 0)
				return -1;
			if (bulk)
				memset(S.cin + S.crel, 'a', fill);
			else
				memcpy(S.cin + S.crel, d + i, len);
			S.crel += s->n;
			break;
		case 2:
		case 7:
		case 3:
			s->kind = ST_UP;
			s->a.kind = bulk ? ACT_FILL : (t & 7) == 3 ? ACT_MORE : ACT_ANSWER;
			s->a.p = bulk ? NULL : (const char *)d + i;
			s->a.n = bulk ? fill : len;
			break;
		case 4:
			if (t & 16) {
				s->kind = ST_UPPAUSE;
				break;
			}
			s->kind = ST_UP;
			s->a.kind = (t & 8) ? ACT_RESET : ACT_CLOSE;
			break;
		case 5:
			s->kind = ST_RUN;
			break;
		case 6:
			s->kind = (t & 16) ? ST_CPAUSE : (t & 8) ? ST_CRESET : ST_CSHUT;
			break;
		}
		i += len;
	}
	S.crel = 0;
	return 0;
}

/* An empty in-memory store when the last input left anything in it. */
NOCOV static void
fresh_store(struct fz_conf *cf)
{
	if (mstore_entries(cf->mem) != 0)
		mstore_clear(cf->mem);
}

NOCOV static void
reset_state(void)
{
	S.cfd = -1;
	S.crev = S.cwev = NULL;
	S.crel = S.csent = 0;
	S.c_wdead = S.shut_wanted = S.shut_done = S.c_eof = S.cut_ok = 0;
	S.out_len = 0;
	S.out_over = 0;
	S.nups = 0;
	S.cur = -1;
	S.nacts = S.ahead = 0;
	S.closing_up = 0;
	S.c_paused = S.up_paused = 0;
	S.nbulk = 0;
}

NOCOV int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct listener *li;
	socklen_t sl;
	int sv[2];
	size_t i;

	if (size < 1)
		return 0;
	reset_state();
	S.cf = &confs[data[0] & 3];
	S.base = S.cf->w->base;
	S.https = ((data[0] >> 2) & 3) != 3;
	if (plan(data + 1, size - 1) < 0)
		return 0;
	fresh_store(S.cf);

	memset(&ss, 0, sizeof(ss));
	if (data[0] & 16) {
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, S.cf->trusted ? "2001:db8::7" : "2001:db9::7", &s6->sin6_addr);
		s6->sin6_port = htons(40000);
		sl = sizeof(*s6);
	} else {
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, S.cf->trusted ? "10.0.0.7" : "203.0.113.7", &s4->sin_addr);
		s4->sin_port = htons(40000);
		sl = sizeof(*s4);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	S.cfd = sv[0];
	S.crev = event_new(S.base, S.cfd, EV_READ | EV_PERSIST, on_client_read, NULL);
	S.cwev = event_new(S.base, S.cfd, EV_WRITE, on_client_write, NULL);
	if (S.crev == NULL || S.cwev == NULL || event_add(S.crev, NULL) < 0)
		abort();
	li = &S.cf->w->listeners[S.https ? 0 : 1];
	conn_accept(S.cf->w, li, sv[1], (struct sockaddr *)&ss, (int)sl);

	for (i = 0; i < S.nsteps; i++) {
		struct step *s = &S.steps[i];
		switch (s->kind) {
		case ST_CSEND:
			S.crel += s->n;
			client_flush();
			break;
		case ST_CSHUT:
			S.shut_wanted = 1;
			client_flush();
			break;
		case ST_CRESET:
			client_reset();
			break;
		case ST_CPAUSE:
			client_pause(!S.c_paused);
			break;
		case ST_UPPAUSE:
			fu_pause(!S.up_paused);
			break;
		case ST_UP:
			if (S.nacts < MAX_ACTS) {
				S.acts[S.nacts++] = s->a;
				fu_pump();
			}
			break;
		case ST_RUN:
			run("input");
			break;
		}
	}
	finish();
	return 0;
}
