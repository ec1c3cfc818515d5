/* tlsio bench: TLS context, options, allocation accounting, stats dump.
 * Shared verbatim by srv_bev.c (A) and srv_raw.c (B). */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>
#include <openssl/err.h>

struct opts O = {
    .port = 8443, .cert = "run/cert.pem", .key = "run/key.pem",
    .release_buffers = 1, .tickets = 1, .cache_server = 1,
    .dirty_ok = 1, .rbuf = "evbuf",
};
struct counters C;
long long mem_live[M_N], mem_cnt[M_N], mem_allocs[M_N];

static char resp_buf[1024];
const char *RESP = resp_buf;
size_t RESP_LEN;
static const char *prog_name;

/* ---------------------------------------------------------------- memory */

static inline size_t usz(void *p) { return p ? malloc_usable_size(p) : 0; }

static void *acct_malloc(int cat, size_t n)
{
    void *p = malloc(n);
    if (p) { mem_live[cat] += usz(p); mem_cnt[cat]++; mem_allocs[cat]++; }
    return p;
}
static void *acct_realloc(int cat, void *old, size_t n)
{
    size_t o = usz(old);
    if (n == 0 && old) { mem_live[cat] -= o; mem_cnt[cat]--; free(old); return NULL; }
    void *p = realloc(old, n);
    if (!p) return NULL;
    mem_live[cat] += (long long)usz(p) - (long long)o;
    if (!old) { mem_cnt[cat]++; mem_allocs[cat]++; }
    return p;
}
static void acct_free(int cat, void *p)
{
    if (!p) return;
    mem_live[cat] -= usz(p); mem_cnt[cat]--;
    free(p);
}

void *app_malloc(size_t n) { return acct_malloc(M_APP, n); }
void *app_calloc(size_t n, size_t m)
{
    void *p = acct_malloc(M_APP, n * m);
    if (p) memset(p, 0, n * m);
    return p;
}
void *app_realloc(void *p, size_t n) { return acct_realloc(M_APP, p, n); }
void app_free(void *p) { acct_free(M_APP, p); }

static void *ev_malloc(size_t n) { return acct_malloc(M_EV, n); }
static void *ev_realloc(void *p, size_t n) { return acct_realloc(M_EV, p, n); }
static void ev_free(void *p) { acct_free(M_EV, p); }

/* OpenSSL: plain accounting, or (--sites) accounting per allocation site. */
#define NSITES 4096
struct site { const char *file; int line; long long live, cnt, tot; };
static struct site sites[NSITES];
struct sitehdr { uint32_t site; uint32_t pad; size_t n; };  /* 16 bytes, keeps alignment */

static uint32_t site_of(const char *file, int line)
{
    uintptr_t h = ((uintptr_t)file >> 3) * 2654435761u + (uintptr_t)line * 40503u;
    for (uint32_t i = 0; i < NSITES; i++) {
        uint32_t k = (uint32_t)((h + i) % NSITES);
        if (sites[k].file == file && sites[k].line == line) return k;
        if (!sites[k].file) { sites[k].file = file ? file : "?"; sites[k].line = line; return k; }
    }
    return 0;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    if (!O.sites) return acct_malloc(M_SSL, n);
    struct sitehdr *h = malloc(n + sizeof *h);
    if (!h) return NULL;
    h->site = site_of(file, line); h->n = n;
    sites[h->site].live += n; sites[h->site].cnt++; sites[h->site].tot++;
    mem_live[M_SSL] += n; mem_cnt[M_SSL]++; mem_allocs[M_SSL]++;
    return h + 1;
}
static void ossl_free(void *p, const char *file, int line)
{
    if (!O.sites) { acct_free(M_SSL, p); return; }
    if (!p) return;
    struct sitehdr *h = (struct sitehdr *)p - 1;
    sites[h->site].live -= h->n; sites[h->site].cnt--;
    mem_live[M_SSL] -= h->n; mem_cnt[M_SSL]--;
    free(h);
}
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    if (!O.sites) return acct_realloc(M_SSL, p, n);
    if (!p) return ossl_malloc(n, file, line);
    if (n == 0) { ossl_free(p, file, line); return NULL; }
    struct sitehdr *h = (struct sitehdr *)p - 1;
    size_t old = h->n; uint32_t s = h->site;
    struct sitehdr *nh = realloc(h, n + sizeof *nh);
    if (!nh) return NULL;
    nh->n = n;
    sites[s].live += (long long)n - (long long)old;
    mem_live[M_SSL] += (long long)n - (long long)old;
    return nh + 1;
}

/* ----------------------------------------------------------------- stats */

static long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256]; long v = -1; size_t kl = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = strtol(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

static void dump_stats(void)
{
    if (!O.stats_file) return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", O.stats_file);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    struct mallinfo2 mi = mallinfo2();
    fprintf(f, "{\"server\":\"%s\",\"conns\":%ld,\"accepted\":%ld,\"handshakes\":%ld,\"reqs\":%ld,"
               "\"eof_clean\":%ld,\"eof_dirty\":%ld,\"errors\":%ld,\"hs_errors\":%ld,"
               "\"ev_error_unexpected_eof\":%ld,\"ssl_new_bytes\":%ld,\"io_new_bytes\":%ld,"
               "\"rss_kb\":%ld,\"hwm_kb\":%ld,\"rss_anon_kb\":%ld,"
               "\"ssl_live\":%lld,\"ssl_cnt\":%lld,\"ev_live\":%lld,\"ev_cnt\":%lld,"
               "\"app_live\":%lld,\"app_cnt\":%lld,\"allocs\":%lld,"
               "\"heap_arena\":%zu,\"heap_inuse\":%zu,\"heap_free\":%zu,\"heap_mmap\":%zu",
            prog_name, C.conns, C.accepted, C.handshakes, C.reqs,
            C.eof_clean, C.eof_dirty, C.errors, C.hs_errors,
            C.ev_error_unexpected_eof, C.ssl_new_bytes, C.io_new_bytes,
            proc_status_kb("VmRSS"), proc_status_kb("VmHWM"), proc_status_kb("RssAnon"),
            mem_live[M_SSL], mem_cnt[M_SSL], mem_live[M_EV], mem_cnt[M_EV],
            mem_live[M_APP], mem_cnt[M_APP], mem_allocs[M_SSL] + mem_allocs[M_EV] + mem_allocs[M_APP],
            mi.arena, mi.uordblks, mi.fordblks, mi.hblkhd);
    if (O.sites) {
        fputs(",\"sites\":[", f);
        int first = 1;
        for (int i = 0; i < NSITES; i++) {
            if (!sites[i].file || !sites[i].tot) continue;
            const char *fn = sites[i].file, *s = strstr(fn, "ssl/");
            if (!s) s = strstr(fn, "crypto/");
            if (!s) s = strstr(fn, "providers/");
            fprintf(f, "%s[\"%s:%d\",%lld,%lld,%lld]", first ? "" : ",", s ? s : fn, sites[i].line,
                    sites[i].live, sites[i].cnt, sites[i].tot);
            first = 0;
        }
        fputs("]", f);
    }
    fputs("}\n", f);
    fclose(f);
    rename(tmp, O.stats_file);
}

static void on_usr1(evutil_socket_t s, short w, void *arg) { dump_stats(); }
static void on_term(evutil_socket_t s, short w, void *arg)
{
    event_base_loopexit((struct event_base *)arg, NULL);
}

static long activity, trimmed_at = -1;
void note_activity(void) { activity++; }
static void on_trim(evutil_socket_t s, short w, void *arg)
{
    if (activity != trimmed_at) { malloc_trim(0); trimmed_at = activity; }
}

void start_aux_events(struct event_base *base)
{
    struct event *e;
    e = evsignal_new(base, SIGUSR1, on_usr1, NULL); event_add(e, NULL);
    e = evsignal_new(base, SIGTERM, on_term, base); event_add(e, NULL);
    e = evsignal_new(base, SIGINT, on_term, base); event_add(e, NULL);
    if (O.trim_ms > 0) {
        struct timeval tv = { O.trim_ms / 1000, (O.trim_ms % 1000) * 1000 };
        e = event_new(base, -1, EV_PERSIST, on_trim, NULL);
        event_add(e, &tv);
    }
}

/* -------------------------------------------------------------- TLS, net */

int err_is_unexpected_eof(void)
{
    unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) { ERR_print_errors_fp(stderr); exit(1); }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (!O.tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (O.ignore_eof) SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (O.release_buffers) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    else SSL_CTX_clear_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, O.cache_server ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
    if (O.read_ahead) SSL_CTX_set_read_ahead(ctx, 1);
    if (O.suites) {
        if (!SSL_CTX_set_ciphersuites(ctx, O.suites)) { ERR_print_errors_fp(stderr); exit(1); }
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256") ||
        SSL_CTX_use_certificate_chain_file(ctx, O.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, O.key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return ctx;
}

struct event_base *make_base(void)
{
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    if (O.changelist) event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!b) { fprintf(stderr, "event_base_new failed\n"); exit(1); }
    return b;
}

static void (*accept_cb)(int fd);
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    C.accepted++;
    accept_cb(fd);
}

void start_listener(struct event_base *base, void (*cb)(int fd))
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)O.port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    accept_cb = cb;
    struct evconnlistener *l = evconnlistener_new_bind(base, on_accept, NULL,
        LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 4096, (struct sockaddr *)&sin, sizeof sin);
    if (!l) { perror("listen"); exit(1); }
}

size_t count_requests(const char *p, size_t n, size_t *used)
{
    size_t k = 0, off = 0;
    for (;;) {
        const char *e = memmem(p + off, n - off, "\r\n\r\n", 4);
        if (!e) break;
        off = (size_t)(e - p) + 4;
        k++;
    }
    *used = off;
    return k;
}

/* ------------------------------------------------------------------ init */

static void usage(void)
{
    fprintf(stderr,
        "usage: %s [-p port] [-c cert] [-k key] [--stats FILE] [--no-release-buffers]\n"
        "  [--no-tickets] [--cache off|server] [--read-ahead] [--ignore-eof] [--trim MS]\n"
        "  [--changelist] [--sites] [--suites LIST]  A: [--strict-shutdown] [--copy]  B: [--rbuf shared|conn|keep|evbuf] [--drain] [--lazy-release MS]\n",
        prog_name);
    exit(2);
}

void common_init(int argc, char **argv, const char *name)
{
    prog_name = name;
    int acct = 0, print_body = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--print-body")) print_body = 1;
        if (!strcmp(argv[i], "--sites")) O.sites = acct = 1;
        if (!strcmp(argv[i], "--stats")) acct = 1;
    }
    /* Accounting hooks only for memory runs (--stats/--sites), so CPU runs measure
     * the libraries' own allocators.  Must precede every OpenSSL/libevent allocation. */
    if (acct) {
        if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
            fprintf(stderr, "CRYPTO_set_mem_functions failed\n"); exit(1);
        }
        event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
    }

    static const struct option lo[] = {
        {"stats", 1, 0, 's'}, {"no-release-buffers", 0, 0, 'R'}, {"no-tickets", 0, 0, 'T'},
        {"cache", 1, 0, 'C'}, {"read-ahead", 0, 0, 'A'}, {"ignore-eof", 0, 0, 'E'},
        {"trim", 1, 0, 'M'}, {"changelist", 0, 0, 'L'}, {"sites", 0, 0, 'S'},
        {"strict-shutdown", 0, 0, 'D'}, {"copy", 0, 0, 'Y'}, {"rbuf", 1, 0, 'B'},
        {"drain", 0, 0, 'N'}, {"suites", 1, 0, 'U'}, {"print-body", 0, 0, 'P'}, {"lazy-release", 1, 0, 'Z'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:c:k:", lo, NULL)) != -1) {
        switch (c) {
        case 'p': O.port = atoi(optarg); break;
        case 'c': O.cert = optarg; break;
        case 'k': O.key = optarg; break;
        case 's': O.stats_file = optarg; break;
        case 'R': O.release_buffers = 0; break;
        case 'T': O.tickets = 0; break;
        case 'C': O.cache_server = strcmp(optarg, "off") != 0; break;
        case 'A': O.read_ahead = 1; break;
        case 'E': O.ignore_eof = 1; break;
        case 'M': O.trim_ms = atoi(optarg); break;
        case 'L': O.changelist = 1; break;
        case 'S': case 'P': break;
        case 'D': O.dirty_ok = 0; break;
        case 'Y': O.copy_resp = 1; break;
        case 'B': O.rbuf = optarg; break;
        case 'N': O.drain = 1; break;
        case 'U': O.suites = optarg; break;
        case 'Z': O.lazy_ms = atoi(optarg); break;
        default: usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);

    /* 329-byte JSON body, like a small API answer. */
    char body[400];
    int n = snprintf(body, sizeof body,
        "{\"id\":\"8f14e45f-ceea-467f-a0e6-0a1b2c3d4e5f\",\"status\":\"ok\",\"service\":\"orders\","
        "\"version\":\"1.4.2\",\"items\":[{\"sku\":\"A-1001\",\"qty\":2,\"price\":19.99},"
        "{\"sku\":\"B-2002\",\"qty\":1,\"price\":5.25}],\"total\":45.23,\"currency\":\"EUR\","
        "\"created\":\"2024-05-01T12:00:00Z\",\"pad\":\"");
    while (n < 329 - 2) body[n++] = 'x';
    body[n++] = '"'; body[n++] = '}'; body[n] = 0;
    if (print_body) { fputs(body, stdout); exit(0); }
    RESP_LEN = (size_t)snprintf(resp_buf, sizeof resp_buf,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n, body);
}
