/* SPDX-License-Identifier: MIT
 * conf — the typed configuration (CONTRACT §2) and its generations.
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
 *                   with file:line:col (conf.c; the table also generates docs/configuration.md);
 *   conf_build()  — runtime objects from the typed fields: TLS contexts, filter configs,
 *                   route chains, key material (runtime.c; may report errors too).
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
	struct ynode    *root;       /* the parsed tree (owned by the conf being built) */
	struct conf_msg *msgs;
	size_t           nmsgs, cap;
	int              nerr, nwarn;
	int              no_resolve;  /* tests, fuzzing: upstream host names are checked for syntax
	                               * only, never resolved (their address is left zeroed) */
};

/* Adds an error/warning at node `at` (NULL: at the file, line 0). printf-style. */
void conf_err(struct conf_ctx *ctx, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
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

/* ---- typed values ------------------------------------------------------------ */

enum auth_mode    { AUTH_OFF = 0, AUTH_OPTIONAL, AUTH_REQUIRED };
enum rl_keykind   { RLK_IP = 0, RLK_USER, RLK_IP_USER, RLK_HEADER };
enum rl_count     { RLC_ALL = 0, RLC_FAILURES };
enum rl_hdrfmt    { RLH_DRAFT6 = 0, RLH_DRAFT7, RLH_DRAFT8, RLH_LEGACY, RLH_OFF };
enum redis_onerr  { REDIS_LOCAL = 0, REDIS_OPEN, REDIS_CLOSED };
enum cors_onbad   { CORS_REJECT = 0, CORS_OMIT };
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

struct conf_jwt_key {             /* exactly one of file / jwks_file / jwks_url / secret */
	char   *file;                 /* PEM public key or certificate */
	char   *jwks_file;
	char   *jwks_url;
	char   *secret;               /* HMAC secret bytes (from secret_file or secret: ${VAR}) */
	size_t  secret_len;
	char   *kid;                  /* optional, for file / secret */
};

struct conf_rate_limit {
	char            *name;
	int64_t          limit;       /* >= 1 */
	int64_t          window_ms;   /* >= 1000 */
	enum rl_keykind  key;
	char            *header;      /* key: header:<Name> */
	enum rl_count    count;
};

struct conf_status_range {
	int lo, hi;
};

struct conf_route {
	char           *path;         /* prefix, starts with '/' */
	struct conf_strs methods;     /* upper-case; n == 0: any method */
	enum auth_mode  auth;
	size_t         *rate_limits;  /* indexes into conf.rate_limits.v */
	size_t          n_rate_limits;
	int             has_body;
	char           *body_schema;  /* path to a JSON schema, or NULL */
	int64_t         body_max_size;/* 0: client.max_body_size */
};

/* Runtime objects built by conf_build(); opaque here. */
struct tls_rt;
struct route_rt;

#define CONF_MAX_FILTERS 16

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

	struct {
		int64_t max_age;           /* seconds */
		int     include_subdomains;
		int     preload;
	} hsts;

	struct conf_kvs  headers;      /* merged with the defaults; entries with "" removed */
	struct conf_strs headers_unset;/* names configured as "" (left to the upstream) */
	struct conf_strs remove_headers;

	struct {
		int               enabled;      /* the section is present */
		struct conf_strs  origins;      /* as written */
		int               credentials;
		struct conf_strs  methods;
		struct conf_strs  headers;
		struct conf_strs  expose;
		int64_t           max_age;      /* seconds */
		enum cors_onbad   on_disallowed;
	} cors;

	struct {
		int              enabled;       /* the section is present */
		char            *url;
		char            *host;          /* parsed from url */
		int              port;
		char            *password;      /* NULL when none */
		char            *username;      /* NULL when none (ACL user) */
		int              db;
		int64_t          timeout_ms;
		enum redis_onerr on_error;
	} redis;

	struct {
		int                  enabled;   /* the section is present */
		uint32_t             algorithms;/* bit set of JWT_ALG_* (jwt.h) */
		struct conf_strs     algorithm_names;
		struct conf_jwt_key *keys;
		size_t               n_keys;
		char                *issuer;    /* NULL: not checked */
		struct conf_strs     audience;  /* n == 0: not checked; any of them matches */
		int64_t              leeway_ms;
		struct conf_strs     required_claims;
		char                *cookie;    /* NULL: no cookie */
		struct conf_kvs      claims_to_headers; /* claim → header name */
		int                  revocation;
	} jwt;

	struct {
		struct conf_rate_limit *v;
		size_t                  n;
	} rate_limits;
	enum rl_hdrfmt  rate_limit_headers;

	struct {
		int     enabled;               /* the section is present */
		char   *path;
		char   *field;
		int64_t after;
		int64_t base_ms;
		int64_t max_ms;
	} lockout;

	struct {
		struct conf_route *v;
		size_t             n;
	} routes;

	struct {
		struct conf_status_range *scrub;
		size_t                    n_scrub;
		int                       stack_traces;
	} errors;

	struct {
		int              enabled;
		struct conf_strs paths;
		int64_t          ban_after;
		int64_t          ban_for_ms;
	} probes;

	struct {
		enum log_level  level;
		enum access_log access;
	} log;

	/* ---- runtime, built by conf_build() ---- */
	struct tls_rt   *tls_rt;
	struct route_rt *route_rt;
	void            *fconf[CONF_MAX_FILTERS];   /* per filter, indexed by filter id */
};

/* Loads `path`: parse, validate, build. Returns a generation with one reference, or NULL
 * when any error was reported in ctx (ctx->file is set to path by the call). Warnings do
 * not fail the load. Reads the environment and the files the config names. Main thread. */
struct conf *conf_load(const char *path, struct conf_ctx *ctx);

/* The schema half, separately (tests, fuzzing): fills `c` (zeroed by the caller) from
 * `root`. Returns 0, or -1 when errors were added to ctx. Does not touch the filesystem
 * except for *_file keys and the files whose contents the config embeds (secrets). */
int conf_parse(struct conf_ctx *ctx, const struct ynode *root, struct conf *c);

/* The runtime half (runtime.c). 0 or -1 with errors in ctx. */
int conf_build(struct conf_ctx *ctx, struct conf *c);
/* Frees what conf_build made (runtime.c); called by conf_unref/conf_free first. Tolerates a
 * partial build. */
void conf_release_runtime(struct conf *c);

/* Frees the typed fields of a conf that never got refs (after a failed parse). */
void conf_free(struct conf *c);

struct conf *conf_ref(struct conf *c);          /* any thread; returns c */
void conf_unref(struct conf *c);                /* any thread; NULL is a no-op */

/* Writes docs/configuration.md's body (every key, type, default, meaning) from the same
 * table the parser uses. */
void conf_doc_markdown(FILE *out);

/* Status `st` falls in errors.scrub. */
int conf_scrub_status(const struct conf *c, int st);

#endif
