/* Server A: TLS I/O through libevent's bufferevent_openssl.
 * Answers every request ("...\r\n\r\n") on a keep-alive connection with RESP. */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

static struct event_base *base;
static SSL_CTX *ctx;

static void close_conn(struct bufferevent *bev)
{
    bufferevent_free(bev);  /* BEV_OPT_CLOSE_ON_FREE: SSL_free + close(fd) */
    C.conns--;
    note_activity();
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    for (;;) {
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (p.pos < 0) break;
        evbuffer_drain(in, (size_t)p.pos + 4);
        C.reqs++;
        /* A proxy would move the upstream's evbuffer chains here (no copy); a
         * reference to the constant is the closest stand-in. --copy copies. */
        if (O.copy_resp) bufferevent_write(bev, RESP, RESP_LEN);
        else evbuffer_add_reference(out, RESP, RESP_LEN, NULL, NULL);
    }
    if (evbuffer_get_length(in) > 65536) close_conn(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_CONNECTED) {
        C.handshakes++;
        note_activity();
        return;
    }
    if (what & BEV_EVENT_EOF) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) C.eof_clean++;
        else C.eof_dirty++;
    } else if (what & BEV_EVENT_ERROR) {
        /* libevent 2.1.12 has already moved the OpenSSL error queue into the
         * bufferevent; look at what it saved. */
        unsigned long e;
        int unexpected_eof = 0;
        while ((e = bufferevent_get_openssl_error(bev)))
            if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                unexpected_eof = 1;
        if (unexpected_eof) C.ev_error_unexpected_eof++;
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (!SSL_is_init_finished(ssl)) C.hs_errors++;
        else C.errors++;
    }
    close_conn(bev);
}

static void on_accept_fd(int fd)
{
    long s0 = (long)mem_live[M_SSL], e0 = (long)(mem_live[M_EV] + mem_live[M_APP]);
    SSL *ssl = SSL_new(ctx);
    long s1 = (long)mem_live[M_SSL];
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl,
        BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) { SSL_free(ssl); close(fd); return; }
    C.ssl_new_bytes = s1 - s0;
    C.io_new_bytes = (long)(mem_live[M_EV] + mem_live[M_APP]) - e0;
    if (O.dirty_ok) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    C.conns++;
}

int main(int argc, char **argv)
{
    common_init(argc, argv, "A-bufferevent_openssl");
    base = make_base();
    ctx = make_ctx();
    start_listener(base, on_accept_fd);
    start_aux_events(base);
    fprintf(stderr, "A listening on 127.0.0.1:%d pid %d\n", O.port, (int)getpid());
    event_base_dispatch(base);
    return 0;
}
