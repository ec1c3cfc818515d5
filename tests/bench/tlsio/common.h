/* tlsio bench: what both servers share (TLS context, options, accounting).
 * Standalone benchmark code, not part of the visor build. */
#ifndef TLSIO_COMMON_H
#define TLSIO_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <event2/event.h>

struct opts {
    int port;
    const char *cert, *key;
    int release_buffers;   /* SSL_MODE_RELEASE_BUFFERS (default on) */
    int tickets;           /* TLS session tickets (default on; off = SSL_OP_NO_TICKET) */
    int cache_server;      /* SSL_SESS_CACHE_SERVER (default) vs SSL_SESS_CACHE_OFF */
    int read_ahead;        /* SSL_CTX_set_read_ahead */
    int ignore_eof;        /* SSL_OP_IGNORE_UNEXPECTED_EOF */
    int trim_ms;           /* >0: malloc_trim(0) from a timer when conns came/went */
    int changelist;        /* EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST */
    int sites;             /* per-allocation-site accounting of OpenSSL memory */
    const char *suites;    /* TLS 1.3 ciphersuites, server order enforced when set */
    const char *stats_file;/* SIGUSR1 writes a JSON line here */
    /* A (bufferevent_openssl) */
    int dirty_ok;          /* bufferevent_openssl_set_allow_dirty_shutdown(1) */
    int copy_resp;         /* bufferevent_write (copy) instead of evbuffer_add_reference */
    /* B (raw) */
    const char *rbuf;      /* shared | conn | keep | evbuf */
    int drain;             /* keep calling SSL_read until WANT_READ */
    int lazy_ms;           /* >0: SSL_free_buffers() on conns idle for a whole sweep period */
};

extern struct opts O;

/* The fixed response: 329-byte JSON body plus headers. */
extern const char *RESP;
extern size_t RESP_LEN;

/* Counters reported by the stats dump. */
struct counters {
    long conns, accepted, handshakes, reqs;
    long eof_clean, eof_dirty, errors, hs_errors;
    long ev_error_unexpected_eof;  /* A: BEV_EVENT_ERROR whose cause was an unclean EOF */
    long ssl_new_bytes;            /* OpenSSL bytes allocated by the last SSL_new() */
    long io_new_bytes;             /* libevent+app bytes for the last connection's I/O object */
};
extern struct counters C;

enum { M_SSL, M_EV, M_APP, M_N };
extern long long mem_live[M_N], mem_cnt[M_N], mem_allocs[M_N];

void *app_malloc(size_t n);
void *app_calloc(size_t n, size_t m);
void *app_realloc(void *p, size_t n);
void app_free(void *p);

/* Parse argv; installs allocation hooks; returns 0 or exits. */
void common_init(int argc, char **argv, const char *name);
SSL_CTX *make_ctx(void);
struct event_base *make_base(void);
/* Listener: calls cb(fd) for every accepted non-blocking socket. */
void start_listener(struct event_base *base, void (*cb)(int fd));
void start_aux_events(struct event_base *base);
void note_activity(void);
/* Is the error queue's reason "unexpected eof while reading"? */
int err_is_unexpected_eof(void);

/* Returns the number of complete requests (ending in CRLFCRLF) in p[0..n) and
 * sets *used to the bytes they occupy. */
size_t count_requests(const char *p, size_t n, size_t *used);

#endif
