/* SPDX-License-Identifier: MIT
 * conf — the typed configuration (docs/configuration.md) and its generations.
 *
 * A `struct conf` is one generation: built once by conf_load() from one YAML file, then
 * immutable and shared by every worker thread. It is reference-counted (atomically): the
 * main thread holds one reference for the current generation, each worker one, and each
 * in-flight request one, so SIGHUP can swap generations while old requests finish with the
 * one they started with. conf_unref() of the last reference frees everything, including
 * the runtime objects built from it (SSL_CTXs, filter configs, route chains).
 *
 * Loading has two halves:
 *   conf_parse()  — schema-driven: YAML tree → the typed fields below, every error collected
 *                   with file:line:col (conf.c walks the core's rows and each filter's, see
 *                   schema.h; the same rows generate docs/configuration.md);
 *   conf_build()  — runtime objects from the typed fields: TLS contexts, filter configs,
 *                   route chains, key material (build.c; may report errors too).
 * struct conf holds the core's settings; each policy's section is an opaque block owned by
 * its filter (conf_sect), and so are its keys of each route (conf_route_keys).
 * Every string below is owned by the conf (freed by conf_unref). Durations are in ms.
 */
#ifndef VISOR_CONF_H
#define VISOR_CONF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/values.h"
#include "conf/yaml.h"

/* ---- messages: errors and warnings with positions --------------------------- */

enum conf_level { CONF_ERROR = 0, CONF_WARNING };

struct conf_msg {
	enum conf_level level;
	char           *file;
	int             line, col;   /* from 1; 0 when the message has no position */
	char           *text;
};

/* Collects messages while a file is loaded. Zero-initialise, then conf_ctx_fini(). */
struct conf_ctx {
	const char      *file;
	const char      *shown_as;   /* when set, messages name `file` so: a wrapper loads a
	                              * derived copy of the file the user gave (the container's
	                              * entrypoint, docs/deployment.md) */
	struct ynode    *root;       /* the parsed tree (owned by the conf being built) */
	struct conf_msg *msgs;
	size_t           nmsgs, cap;
	int              nerr, nwarn;
	int              no_resolve;  /* no longer read: upstream host names are never resolved at
	                               * load (net/resolve follows them at run time) and always
	                               * leave their address zeroed; kept for existing callers */
};

/* Adds an error/warning at node `at` (NULL: at the file, line 0). printf-style. */
void conf_err(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* For a builder that ran out of memory half-way (a filter's conf_init): frees what it built
 * so far through free_fn (unless `built` is NULL), reports "out of memory building <what>"
 * and returns -1, the builder's answer. */
int conf_build_oom(struct conf_ctx *ctx, void (*free_fn)(void *), void *built, const char *what);
/* A yaml_err_fn (yaml.h) reporting the parser's messages through conf_err; arg: the ctx. */
void conf_yaml_err(void *arg, const char *file, int line, int col, const char *msg);
void conf_warn(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Position-explicit form (libyaml syntax errors, etc). */
void conf_msg_add(struct conf_ctx *ctx, enum conf_level lvl, const char *file, int line, int col,
    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
/* Prints "FILE:LINE:COL: error|warning: text" lines (sorted by position) to `out`. */
void conf_ctx_print(const struct conf_ctx *ctx, FILE *out);
void conf_ctx_fini(struct conf_ctx *ctx);

/* ---- typed values: the core's ------------------------------------------------------ */

/* Policies keep their own enums and section structs in their filter (src/filters/); only what
 * the core reads lives here. */
enum redis_onerr  { REDIS_LOCAL = 0, REDIS_OPEN, REDIS_CLOSED };
enum log_level    { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum access_log   { ACCESS_STDOUT = 0, ACCESS_OFF };
enum tls_minver   { TLS_MIN_12 = 0, TLS_MIN_13, TLS_MIN_10, TLS_MIN_11 };  /* 1.0/1.1: lint warns */

struct conf_strs {                /* a YAML sequence of scalars */
	char  **v;
	size_t  n;
};

struct conf_kv {                  /* one entry of a name → value mapping, in file order */
	char *key;
	char *val;
};
struct conf_kvs {
	struct conf_kv *v;
	size_t          n;
};

struct conf_addrs {
	struct units_addr *v;
	char             **text;      /* as written, for logs and metrics */
	size_t             n;
};

struct conf_cert {
	char *cert;                   /* PEM chain path */
	char *key;                    /* PEM key path */
};

/* The most filters the table may hold (filter.c); a filter's id is its index there. */
#define CONF_MAX_FILTERS 16

/* A route: the core keys (what route_match reads), then one opaque block per filter that adds
 * keys to routes (filter->route_keys: jwt's auth, rl's rate_limits, body's body), parsed into
 * a zeroed block of filter->route_size bytes; NULL for the other filters. Read it with
 * conf_route_keys(). Owned by the conf, like everything it points to. */
struct conf_route {
	char            *path;        /* prefix, starts with '/' */
	struct conf_strs methods;     /* upper-case; n == 0: any method */
	void            *keys[CONF_MAX_FILTERS];
};

/* Runtime objects built by conf_build(); opaque here. */
struct tls_rt;
struct route_rt;

struct conf {
	int             refs;         /* atomic; see conf_ref/conf_unref */
	char           *file;
	struct ynode   *tree;         /* kept for positions (lint, filter conf errors) */
	uint64_t        generation;   /* 1, 2, ... per process */

	struct {
		struct conf_addrs https;   /* at least one */
		int               has_http;
		struct units_addr http;
		int               has_admin;
		struct units_addr admin;
		int64_t           redirect_port;   /* public HTTPS port for the 301; 0: the first
		                                    * https listener's own port */
		struct units_cidr *proxy_protocol; /* peers that must send a PROXY header on the
		                                    * https and http listeners (conn.c) */
		size_t             n_proxy_protocol;
	} listen;

	int             workers;      /* resolved: "auto" → number of online CPUs */
	int64_t         shutdown_delay_ms;   /* keep accepting this long after SIGTERM */
	int64_t         shutdown_timeout_ms;

	struct {
		struct conf_cert *certs;
		size_t            n_certs;
		enum tls_minver   min_version;
		char             *ciphers;        /* TLS 1.2 cipher list (OpenSSL syntax) */
		char             *ciphersuites;   /* TLS 1.3 suites */
		int               session_tickets;
	} tls;

	struct {
		struct conf_addrs servers;
		int64_t           keepalive;      /* idle connections kept per worker */
		int64_t           connect_timeout_ms;
		int64_t           timeout_ms;     /* response head after the request was sent */
		int64_t           idle_timeout_ms;/* idle pooled connection lifetime (below Node's 5 s) */
		int               tls_enabled;
		int               tls_verify;
		char             *tls_ca;
		char             *tls_server_name;
		int64_t           resolve_min_ms; /* floor and ceiling of a name's TTL */
		int64_t           resolve_max_ms;
		struct conf_addrs resolve_ns;     /* n == 0: /etc/resolv.conf */
	} upstream;

	struct {
		struct units_cidr *trusted_proxies;
		size_t             n_trusted_proxies;
		int64_t            header_timeout_ms;
		int64_t            idle_timeout_ms;
		int64_t            max_header_size;
		int64_t            max_body_size;
		int64_t            max_connections;  /* per worker */
		int                allow_underscores;/* forward header names holding '_' */
	} client;

	struct {                       /* HTTP/2 to clients (http/h2.c, docs/security.md) */
		int                enabled;         /* ALPN offers h2 before http/1.1 */
		int64_t            max_concurrent_streams;
		int64_t            window_size;     /* per stream: what one stream may buffer */
		int64_t            connection_window;
		int64_t            max_resets;      /* client RST_STREAMs per 10 s, then GOAWAY */
		int64_t            max_control_frames; /* PING/SETTINGS/PRIORITY/... per 10 s */
	} http2;

	struct {                       /* the store behind rate limits, lockout and revocation */
		int              enabled;       /* the section is present */
		char            *url;
		char            *host;          /* parsed from url */
		int              port;
		char            *password;      /* NULL when none */
		char            *username;      /* NULL when none (ACL user) */
		int              db;
		int64_t          timeout_ms;
		enum redis_onerr on_error;
		int              tls;           /* rediss:// */
		int              tls_section;   /* redis.tls is present */
		char            *tls_ca;        /* NULL: the system store */
		char            *tls_cert, *tls_key;   /* client certificate, or NULL */
		char            *tls_server_name;      /* NULL: the URL's host */
		int              tls_insecure;  /* insecure_skip_verify */
		/* redis.sentinel: the primary's address comes from these sentinels; the URL then
		 * gives only the scheme, the credentials and the db (docs/rate-limits.md) */
		int              sentinel;      /* the section is present */
		char            *sentinel_master;
		struct conf_strs sentinel_nodes;/* host:port, checked by conf_hostport */
		char            *sentinel_user, *sentinel_pass;   /* NULL when none */
		/* redis.cluster: a Redis Cluster found through these seed nodes; the URL then gives
		 * only the scheme and the credentials (docs/rate-limits.md) */
		int              cluster;       /* the section is present */
		struct conf_strs cluster_nodes; /* host:port, checked by conf_hostport */
	} redis;

	struct {
		struct conf_route *v;
		size_t             n;
	} routes;

	struct {
		enum log_level  level;
		enum access_log access;
	} log;

	/* Each filter's own top-level section (filter->conf_keys), parsed into a zeroed block of
	 * filter->conf_size bytes, indexed by filter id; NULL for a filter without keys. Only
	 * its filter (and the tests) know the type: read it with conf_sect(). */
	void            *sect[CONF_MAX_FILTERS];

	/* ---- runtime, built by conf_build() ---- */
	struct tls_rt   *tls_rt;
	struct route_rt *route_rt;
	void            *fconf[CONF_MAX_FILTERS];   /* per filter, indexed by filter id */
};

/* A filter's parsed section (a struct its own file declares), by filter id (filter_id()):
 * never NULL after a successful conf_parse for a filter with conf_keys. */
static inline const void *
conf_sect(const struct conf *c, size_t id)
{
	return c->sect[id];
}

/* A filter's keys of one route (a struct its own file declares), by filter id: never NULL
 * after a successful conf_parse for a filter with route_keys. */
static inline const void *
conf_route_keys(const struct conf_route *cr, size_t id)
{
	return cr->keys[id];
}

/* Loads `path`: parse, validate, build. Returns a generation with one reference, or NULL
 * when any error was reported in ctx (ctx->file is set to path by the call). Warnings do
 * not fail the load. Reads the environment and the files the config names. Main thread. */
struct conf *conf_load(const char *path, struct conf_ctx *ctx);

/* The schema half, separately (tests, fuzzing): fills `c` (zeroed by the caller) from
 * `root`. Returns 0, or -1 when errors were added to ctx. Does not touch the filesystem
 * except for *_file keys and the files whose contents the config embeds (secrets). */
int conf_parse(struct conf_ctx *ctx, const struct ynode *root, struct conf *c);

/* The runtime half (build.c). 0 or -1 with errors in ctx. */
int conf_build(struct conf_ctx *ctx, struct conf *c);
/* Frees what conf_build made (build.c); called by conf_unref/conf_free first. Tolerates a
 * partial build. */
void conf_release_runtime(struct conf *c);

/* Frees the typed fields of a conf that never got refs (after a failed parse). */
void conf_free(struct conf *c);

struct conf *conf_ref(struct conf *c);          /* any thread; returns c */
void conf_unref(struct conf *c);                /* any thread; NULL is a no-op */

/* Splits "host:port" ("[v6]:port"; the port may be left out for defport) into host (NUL-
 * terminated, at most hlen - 1 bytes) and *port. 0, or -1 with *err set. Any thread. */
int conf_hostport(const char *s, char *host, size_t hlen, int *port, int defport,
    const char **err);

/* Writes docs/configuration.md's body (every key, type, default, meaning) from the same
 * tables the parser uses: the core's and each filter's, in parse order. */
void conf_doc_markdown(FILE *out);

#endif
