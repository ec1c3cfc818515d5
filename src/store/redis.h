/* SPDX-License-Identifier: MIT
 * redis — one worker's connection to Redis on the worker's event_base, never a blocking
 * call: visor's own socket (net/sock, plain for redis://, TLS for rediss:// with the
 * generation's client context from net/tls) and hiredis's RESP reader.
 *
 *  - connects (host names resolved with evdns, asynchronously), for rediss:// verifies the
 *    certificate and the name (the URL's host or redis.tls.server_name) before sending a byte,
 *    authenticates (AUTH, with the ACL user when the URL has one), selects the db, loads the
 *    store script (FUNCTION LOAD of redis_library(script); SCRIPT LOAD when the server refuses
 *    that) and only then reports itself up; reconnects with a backoff of
 *    25 ms doubling to 500 ms, and gives a connect plus TLS plus handshake max(1 s,
 *    4 x timeout) before trying again;
 *  - every command has a deadline (redis.timeout): a command past it is answered "failed" to
 *    its caller at once, and its late reply, when it comes, finds nobody waiting; the other
 *    commands keep waiting for theirs. The deadlines are kept in send order (a FIFO connection
 *    answers in that order), so one timer per connection serves them all. Only a connection
 *    that stays silent much longer — max(1 s, 4 x timeout) with replies owed — or fails is
 *    declared dead and replaced: a slow reply under a CPU burst costs the commands it delays,
 *    not every command in flight;
 *  - a loop turn's commands leave together, in one write, from a deferred event;
 *  - script calls go out as FCALL visor_<sha1 of the script> when the connection's FUNCTION
 *    LOAD took the library, else as EVALSHA <sha1>; a NOSCRIPT answer (SCRIPT FLUSH, a failover
 *    to a replica that never saw the script) resends that command once as EVAL with the script
 *    text, which also puts the script back in Redis's cache; "ERR Function not found"
 *    (FUNCTION FLUSH, a server that never had the library) sends FUNCTION LOAD again and
 *    resends that command once as EVAL;
 *  - never frees a connection from inside its own socket callback: a connection we give up
 *    on is unhooked at once and freed from a deferred event on the next loop turn;
 *  - with redis.sentinel (sentinel.c) the address is not the URL's: every connect first asks
 *    the sentinels for the primary (the question shares the connect deadline), the handshake
 *    adds ROLE (not "master": dropped, asked again after the backoff), a READONLY or LOADING
 *    reply is passed to its caller and then drops the connection and asks again at once, and
 *    a +switch-master naming our master reconnects at once. Each change of primary is logged
 *    and counted in m->redis_failovers.
 *
 * Ownership: a struct redis belongs to one worker (store.c); everything runs on the worker's
 * thread except redis_is_up(), which any thread may read. A callback runs at most once, with the
 * reply or NULL (timeout, connection lost), never after redis_cmd_detach() and never from inside
 * the call that sent the command.
 */
#ifndef VISOR_REDIS_H
#define VISOR_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "core/metrics.h"
#include "core/util.h"

struct redis;
struct redis_cmd;
struct redisReply;

/* reply: the parsed reply (possibly an error reply), or NULL when the command failed. */
typedef void (*redis_fn)(void *arg, const struct redisReply *reply);

/* A disconnected client for `base`; counts failures in m->redis_errors. NULL on OOM. The
 * script (kept by the caller) is what EVAL and SCRIPT LOAD send as it is; it may start with a
 * "#!lua flags=..." line. */
struct redis *redis_new(struct event_base *base, struct metrics *m, int worker_id,
    const char *script, size_t script_len);
/* Applies a generation's redis section: connects, or reconnects when the address, the
 * credentials, the db or the TLS settings changed; a new timeout applies to the next
 * commands, a new generation's TLS context to the next connection. */
void redis_configure(struct redis *rd, const struct conf *c);
/* Fails every command in flight (callbacks run with NULL) and frees everything. NULL: no-op. */
void redis_free(struct redis *rd);
/* 1 when connected, authenticated and the script is loaded. Any thread (racy read). */
int  redis_is_up(const struct redis *rd);

/* ---- for sentinel.c: connections to the sentinels themselves ------------------------------
 * redis_new(..., NULL, 0) makes a client with no script: its handshake is AUTH (the
 * sentinels' credentials) and PING. */
/* Settings for such a client: host:port, redis.sentinel's username/password, the URL's TLS
 * settings, this command timeout. */
void redis_configure_node(struct redis *rd, const struct conf *c, const char *host, int port,
    int64_t timeout_ms);
/* ---- for cluster.c: one client per cluster node ---------------------------------------------
 * The URL's credentials and TLS settings and redis.timeout, at host:port, db 0; reconnects
 * only when something changed. */
void redis_configure_at(struct redis *rd, const struct conf *c, const char *host, int port);
/* Moves a configured client to host:port (same settings): the live connection is dropped
 * (without a state_fn call) and the new one starts after delay_ms (0: now). */
void redis_retarget(struct redis *rd, const char *host, int port, int64_t delay_ms);
/* state_fn(arg, 1) when the connection is up, (arg, 0) when it failed or was lost (also from
 * inside redis_configure_node / redis_retarget when the new connect fails at once; never for
 * the connection redis_retarget or redis_free leave on purpose); push_fn(arg, reply) for replies no command waits for (SUBSCRIBE messages). */
void redis_hooks(struct redis *rd, void (*state_fn)(void *arg, int up), redis_fn push_fn,
    void *arg);
/* 1 when not connected and not trying to (waiting for the backoff). Worker thread. */
int  redis_is_down(const struct redis *rd);

/* Arguments built in place, already in RESP ("$<len>\r\n<bytes>\r\n" each), so a caller with
 * many of them (a batch) needs no argv array. Zero-initialised is empty; reset keeps memory.
 * Out of memory sets b.oom (later appends are no-ops), as for any sbuf. */
struct redis_args {
	struct sbuf b;
	int         n;                   /* arguments */
};
void redis_args_str(struct redis_args *a, const char *s, size_t n);
void redis_args_int(struct redis_args *a, int64_t v);
void redis_args_reset(struct redis_args *a);
void redis_args_fini(struct redis_args *a);

/* The script as a Functions library, FUNCTION LOAD's text: "#!lua name=visor_<sha1>", the
 * line "local FNAME = 'visor_<sha1>'" (the name of the function it must register), then the
 * script without its first line when that is a "#!" line (the library states its flags when
 * it registers). sha1 is the script's as given. Malloc'd, NUL-terminated; NULL on OOM. */
char *redis_library(const char *script, size_t len, size_t *outlen);

/* FCALL visor_<sha1> or EVALSHA <sha1> (see above), nkeys argv[0..argc) (the keys first). NULL when not sent (not up, or out of
 * memory): fn will not be called. Arguments are copied. */
struct redis_cmd *redis_script(struct redis *rd, int nkeys, int argc, const char **argv,
    const size_t *lens, redis_fn fn, void *arg);
/* The same with the keys and the other arguments built in place (copied). */
struct redis_cmd *redis_script_args(struct redis *rd, const struct redis_args *keys,
    const struct redis_args *args, redis_fn fn, void *arg);
/* Any other command, same contract. */
struct redis_cmd *redis_command(struct redis *rd, int argc, const char **argv,
    const size_t *lens, redis_fn fn, void *arg);
/* The caller is no longer interested: fn will not run and arg is forgotten. */
void redis_cmd_detach(struct redis_cmd *c);

#endif
