/* Server B: SSL_read/SSL_write driven directly on a non-blocking socket with
 * one struct event per connection.  Same request handling and TLS context as A.
 *
 * Read buffer (--rbuf):
 *   evbuf  : per-connection evbuffer, SSL_read into evbuffer_reserve_space(4096)
 *   shared : SSL_read into one process-wide 16 KiB scratch buffer; only the
 *            bytes of an incomplete request are kept per connection
 *   conn   : 4 KiB malloc'd per read burst, freed when the burst ends
 *   keep   : 4 KiB malloc'd per connection, kept for its whole life
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

enum { RB_EVBUF, RB_SHARED, RB_CONN, RB_KEEP };
#define RB_SIZE 4096
#define MAX_PEND 65536

struct conn {
    struct event ev;
    SSL *ssl;
    int fd;
    short evflags;           /* what ev is registered for */
    unsigned hs_done : 1;
    unsigned rd_wants_wr : 1;  /* SSL_read said WANT_WRITE */
    unsigned wr_wants_rd : 1;  /* SSL_write said WANT_READ */
    unsigned wr_blocked : 1;   /* SSL_write said WANT_WRITE */
    unsigned busy : 1;         /* I/O since the last lazy-release sweep */
    unsigned bufs_held : 1;    /* OpenSSL may hold its record buffers */
    struct conn *next, *prev;  /* all connections (lazy-release sweep) */
    uint32_t pending;        /* responses not yet taken by SSL_write */
    char *pend;              /* bytes of an incomplete request (non-evbuf modes) */
    uint32_t pend_len, pend_cap;
    char *rbuf;              /* RB_KEEP */
    struct evbuffer *evb;    /* RB_EVBUF */
};

static struct event_base *base;
static SSL_CTX *ctx;
static int rbmode;
static char shared_rbuf[16384];
static struct conn *conns_head;

static void on_io(evutil_socket_t fd, short what, void *arg);

static void set_events(struct conn *c, short want)
{
    if (want == c->evflags) return;
    event_del(&c->ev);
    event_assign(&c->ev, base, c->fd, want | EV_PERSIST, on_io, c);
    event_add(&c->ev, NULL);
    c->evflags = want;
}

static void close_conn(struct conn *c)
{
    if (c->prev) c->prev->next = c->next; else conns_head = c->next;
    if (c->next) c->next->prev = c->prev;
    event_del(&c->ev);
    SSL_free(c->ssl);
    close(c->fd);
    if (c->evb) evbuffer_free(c->evb);
    app_free(c->pend);
    app_free(c->rbuf);
    app_free(c);
    C.conns--;
    note_activity();
}

/* Write every queued response. 0 = done or blocked, -1 = connection dead. */
static int flush(struct conn *c)
{
    c->wr_blocked = c->wr_wants_rd = 0;
    while (c->pending) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, RESP, (int)RESP_LEN);
        if (r > 0) { c->pending--; continue; }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_WRITE: c->wr_blocked = 1; return 0;   /* retry same buf+len */
        case SSL_ERROR_WANT_READ:  c->wr_wants_rd = 1; return 0;
        default: C.errors++; return -1;
        }
    }
    return 0;
}

/* Feed plaintext to the "parser"; keeps an incomplete request in c->pend. */
static int consume(struct conn *c, const char *p, size_t n)
{
    if (c->pend_len) {
        if (c->pend_len + n > MAX_PEND) return -1;
        if (c->pend_len + n > c->pend_cap) {
            c->pend_cap = (uint32_t)(c->pend_len + n);
            c->pend = app_realloc(c->pend, c->pend_cap);
        }
        memcpy(c->pend + c->pend_len, p, n);
        c->pend_len += (uint32_t)n;
        p = c->pend; n = c->pend_len;
    }
    size_t used, k = count_requests(p, n, &used);
    c->pending += (uint32_t)k;
    C.reqs += (long)k;
    size_t left = n - used;
    if (c->pend_len) {
        if (left == 0) { app_free(c->pend); c->pend = NULL; c->pend_len = c->pend_cap = 0; }
        else { memmove(c->pend, c->pend + used, left); c->pend_len = (uint32_t)left; }
    } else if (left) {
        if (left > MAX_PEND) return -1;
        c->pend_cap = (uint32_t)(left < 512 ? 512 : left);
        c->pend = app_malloc(c->pend_cap);
        memcpy(c->pend, p + used, left);
        c->pend_len = (uint32_t)left;
    }
    return 0;
}

static int consume_evb(struct conn *c)
{
    for (;;) {
        struct evbuffer_ptr p = evbuffer_search(c->evb, "\r\n\r\n", 4, NULL);
        if (p.pos < 0) break;
        evbuffer_drain(c->evb, (size_t)p.pos + 4);
        c->pending++;
        C.reqs++;
    }
    return evbuffer_get_length(c->evb) > MAX_PEND ? -1 : 0;
}

/* Classify a failed SSL_read. 0 = wait for I/O, -1 = connection over. */
static int read_failed(struct conn *c, int n)
{
    int e = SSL_get_error(c->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:  c->rd_wants_wr = 0; return 0;
    case SSL_ERROR_WANT_WRITE: c->rd_wants_wr = 1; return 0;
    case SSL_ERROR_ZERO_RETURN: C.eof_clean++; return -1;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (n == 0 || errno == 0 || errno == ECONNRESET)) C.eof_dirty++;
        else C.errors++;
        return -1;
    case SSL_ERROR_SSL:
        /* OpenSSL 3 reports a peer that closes without close_notify this way. */
        if (err_is_unexpected_eof()) C.eof_dirty++;
        else C.errors++;
        return -1;
    default: C.errors++; return -1;
    }
}

static int do_read(struct conn *c)
{
    for (;;) {
        char *buf; size_t cap;
        struct evbuffer_iovec iov;
        switch (rbmode) {
        case RB_EVBUF:
            if (evbuffer_reserve_space(c->evb, RB_SIZE, &iov, 1) < 1) return -1;
            buf = iov.iov_base; cap = iov.iov_len;
            break;
        case RB_SHARED: buf = shared_rbuf; cap = sizeof shared_rbuf; break;
        case RB_CONN: buf = app_malloc(RB_SIZE); cap = RB_SIZE; break;
        default:
            if (!c->rbuf) c->rbuf = app_malloc(RB_SIZE);
            buf = c->rbuf; cap = RB_SIZE;
            break;
        }
        if (cap > INT32_MAX) cap = INT32_MAX;
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, (int)cap);
        if (n <= 0) {
            if (rbmode == RB_CONN) app_free(buf);
            return read_failed(c, n);
        }
        c->rd_wants_wr = 0;
        int bad;
        if (rbmode == RB_EVBUF) {
            iov.iov_len = (size_t)n;
            evbuffer_commit_space(c->evb, &iov, 1);
            bad = consume_evb(c);
        } else {
            bad = consume(c, buf, (size_t)n);
            if (rbmode == RB_CONN) app_free(buf);
        }
        if (bad) { C.errors++; return -1; }
        if (c->pending && flush(c) < 0) return -1;
        /* Level-triggered epoll reports the socket again if more is there; only
         * bytes already inside OpenSSL need another SSL_read now.  --drain reads
         * until WANT_READ like a classic loop (one more read() per wake-up). */
        if (!O.drain && !SSL_has_pending(c->ssl)) return 0;
    }
}

/* --lazy-release: with SSL_MODE_RELEASE_BUFFERS off, OpenSSL keeps its ~17 KiB read
 * and write buffers between records (no malloc/free per record on busy connections);
 * a sweep gives them back for connections that did no I/O for a whole period. */
static void on_sweep(evutil_socket_t s, short w, void *arg)
{
    for (struct conn *c = conns_head; c; c = c->next) {
        if (!c->busy && c->bufs_held && c->hs_done && !c->pending) {
            if (SSL_free_buffers(c->ssl)) c->bufs_held = 0;
        }
        c->busy = 0;
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    c->busy = 1;
    c->bufs_held = 1;
    if (!c->hs_done) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:  set_events(c, EV_READ); return;
            case SSL_ERROR_WANT_WRITE: set_events(c, EV_WRITE); return;
            default: C.hs_errors++; close_conn(c); return;
            }
        }
        c->hs_done = 1;
        C.handshakes++;
        note_activity();
        what |= EV_READ;  /* the request often follows the client's Finished */
    }
    if ((c->pending || c->wr_wants_rd) && flush(c) < 0) { close_conn(c); return; }
    if (((what & EV_READ) && !c->rd_wants_wr) || (c->rd_wants_wr && (what & EV_WRITE)))
        if (do_read(c) < 0) { close_conn(c); return; }
    short want = 0;
    if (!c->rd_wants_wr || c->wr_wants_rd) want |= EV_READ;
    if (c->rd_wants_wr || c->wr_blocked) want |= EV_WRITE;
    set_events(c, want);
}

static void on_accept_fd(int fd)
{
    long s0 = (long)mem_live[M_SSL], e0 = (long)(mem_live[M_EV] + mem_live[M_APP]);
    struct conn *c = app_calloc(1, sizeof *c);
    c->ssl = SSL_new(ctx);
    long s1 = (long)mem_live[M_SSL];
    if (!c->ssl || !SSL_set_fd(c->ssl, fd)) { close(fd); SSL_free(c->ssl); app_free(c); return; }
    SSL_set_accept_state(c->ssl);
    c->fd = fd;
    if (rbmode == RB_EVBUF) c->evb = evbuffer_new();
    event_assign(&c->ev, base, fd, EV_READ | EV_PERSIST, on_io, c);
    event_add(&c->ev, NULL);
    c->evflags = EV_READ;
    c->next = conns_head;
    if (conns_head) conns_head->prev = c;
    conns_head = c;
    C.ssl_new_bytes = s1 - s0;
    C.io_new_bytes = (long)(mem_live[M_EV] + mem_live[M_APP]) - e0;
    C.conns++;
}

int main(int argc, char **argv)
{
    common_init(argc, argv, "B-raw");
    if (!strcmp(O.rbuf, "evbuf")) rbmode = RB_EVBUF;
    else if (!strcmp(O.rbuf, "shared")) rbmode = RB_SHARED;
    else if (!strcmp(O.rbuf, "conn")) rbmode = RB_CONN;
    else if (!strcmp(O.rbuf, "keep")) rbmode = RB_KEEP;
    else { fprintf(stderr, "bad --rbuf\n"); return 2; }
    base = make_base();
    ctx = make_ctx();
    start_listener(base, on_accept_fd);
    start_aux_events(base);
    if (O.lazy_ms > 0) {
        struct timeval tv = { O.lazy_ms / 1000, (O.lazy_ms % 1000) * 1000 };
        event_add(event_new(base, -1, EV_PERSIST, on_sweep, NULL), &tv);
    }
    fprintf(stderr, "B(%s) listening on 127.0.0.1:%d pid %d\n", O.rbuf, O.port, (int)getpid());
    event_base_dispatch(base);
    return 0;
}
