/* SPDX-License-Identifier: MIT
 * Unit tests for src/conf/lint.c: for each rule, the exact line `visor -t` prints (position and
 * text) when it fires, and silence on the safe variant; the reference configurations
 * (conf/visor.yaml and the full reference block below) produce no warning. The config is parsed with
 * conf_parse (no DNS, no certificate or key files) and linted directly. Run from the
 * repository root. */
#include <stdlib.h>
#include <unistd.h>

#include "t.h"
#include "conf/conf.h"
#include "conf/lint.h"
#include "filters/cors.h"
#include "filters/jwt.h"
#include "http/filter.h"

/* Lines 1 and 2 of most sources: valid, with the http listener, so nothing fires. */
#define BASE "listen: {https: 127.0.0.1:8443, http: 127.0.0.1:8080}\n" \
	"tls: {certificates: [{cert: a.crt, key: a.key}]}\n"
/* "t.yaml:LINE:COL: warning: MSG\n" */
#define W(pos, msg) "t.yaml:" pos ": warning: " msg "\n"

#define SECRET_FILE "/tmp/visor-test-lint.secret"

static struct conf C;
static struct conf_ctx X;
static char *out;

static void
reset(void)
{
	conf_free(&C);          /* frees C.tree too */
	conf_ctx_fini(&X);
	memset(&X, 0, sizeof(X));
	free(out);
	out = NULL;
}

static const char *
print(void)
{
	size_t len;
	FILE *f;

	free(out);
	out = NULL;
	f = open_memstream(&out, &len);
	conf_ctx_print(&X, f);
	fclose(f);
	return out;
}

/* Parses `src` (as t.yaml) and lints it; returns what `visor -t` would print. */
static const char *
lint_src(const char *name, const char *src)
{
	struct ynode *r;

	reset();
	X.no_resolve = 1;
	X.file = name;
	r = name[0] == '/' || strncmp(name, "conf/", 5) == 0 ?
	    yaml_load_file(name, conf_yaml_err, &X) : yaml_load_buf(name, src, strlen(src), conf_yaml_err, &X);
	if (r != NULL) {
		if (conf_parse(&X, r, &C) == 0) {
			C.tree = r;
			lint_check(&X, &C);
		} else {
			ynode_free(r);
		}
	}
	return print();
}

static const char *
lint(const char *src)
{
	return lint_src("t.yaml", src);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* ---- clean configurations ------------------------------------------------------------------ */

/* The full reference configuration, every documented key (comments dropped). */
static const char contract_yaml[] =
    "listen:\n"
    "  https: 0.0.0.0:8443\n"
    "  http: 0.0.0.0:8080\n"
    "  admin: 127.0.0.1:9090\n"
    "workers: auto\n"
    "shutdown_timeout: 15s\n"
    "tls:\n"
    "  certificates:\n"
    "    - cert: conf/tls/dev.crt\n"
    "      key: conf/tls/dev.key\n"
    "  min_version: TLSv1.2\n"
    "  session_tickets: true\n"
    "upstream:\n"
    "  servers: [127.0.0.1:3000]\n"
    "  keepalive: 64\n"
    "  connect_timeout: 2s\n"
    "  timeout: 30s\n"
    "client:\n"
    "  trusted_proxies: []\n"
    "  header_timeout: 10s\n"
    "  idle_timeout: 60s\n"
    "  max_header_size: 16k\n"
    "  max_body_size: 1m\n"
    "  max_connections: 10000\n"
    "hsts:\n"
    "  max_age: 31536000\n"
    "  include_subdomains: true\n"
    "  preload: false\n"
    "headers:\n"
    "  Content-Security-Policy: \"default-src 'self';base-uri 'self';font-src 'self' https: "
    "data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
    "upgrade-insecure-requests\"\n"
    "  Cross-Origin-Opener-Policy: same-origin\n"
    "  Cross-Origin-Resource-Policy: same-origin\n"
    "  Origin-Agent-Cluster: \"?1\"\n"
    "  Referrer-Policy: no-referrer\n"
    "  X-Content-Type-Options: nosniff\n"
    "  X-DNS-Prefetch-Control: \"off\"\n"
    "  X-Download-Options: noopen\n"
    "  X-Frame-Options: SAMEORIGIN\n"
    "  X-Permitted-Cross-Domain-Policies: none\n"
    "  X-XSS-Protection: \"0\"\n"
    "remove_headers: [X-Powered-By, Server]\n"
    "cors:\n"
    "  origins: [https://app.example.com]\n"
    "  credentials: true\n"
    "  methods: [GET, POST, PUT, PATCH, DELETE]\n"
    "  headers: [Content-Type, Authorization]\n"
    "  expose: [X-Request-Id]\n"
    "  max_age: 86400\n"
    "  on_disallowed: reject\n"
    "redis:\n"
    "  url: ${REDIS_URL:-redis://127.0.0.1:6379/0}\n"
    "  timeout: 50ms\n"
    "  on_error: local\n"
    "jwt:\n"
    "  algorithms: [RS256, ES256]\n"
    "  keys:\n"
    "    - file: conf/keys/jwt.pub.pem\n"
    "  issuer: https://auth.example.com\n"
    "  audience: api.example.com\n"
    "  leeway: 30s\n"
    "  required_claims: [exp]\n"
    "  cookie: access_token\n"
    "  claims_to_headers:\n"
    "    sub: X-User-Id\n"
    "    role: X-User-Role\n"
    "  revocation: true\n"
    "rate_limits:\n"
    "  api:   { limit: 100, window: 60s, key: ip }\n"
    "  user:  { limit: 600, window: 60s, key: user }\n"
    "  login: { limit: 5,   window: 60s, key: ip, count: failures }\n"
    "rate_limit_headers: draft-6\n"
    "lockout:\n"
    "  path: /api/auth/login\n"
    "  field: email\n"
    "  after: 5\n"
    "  base: 1s\n"
    "  max: 15m\n"
    "routes:\n"
    "  - path: /api/auth/\n"
    "    auth: off\n"
    "    rate_limits: [login]\n"
    "  - path: /api/users\n"
    "    methods: [POST]\n"
    "    auth: required\n"
    "    rate_limits: [api, user]\n"
    "    body: { schema: conf/schemas/create-user.json, max_size: 64k }\n"
    "  - path: /api/\n"
    "    auth: required\n"
    "    rate_limits: [api, user]\n"
    "  - path: /\n"
    "    auth: off\n"
    "    rate_limits: [api]\n"
    "errors:\n"
    "  scrub: [500-599]\n"
    "  stack_traces: true\n"
    "probes:\n"
    "  paths: [/.env, /.git/, /wp-admin, /wp-login.php, /phpmyadmin, /server-status]\n"
    "  ban_after: 10\n"
    "  ban_for: 1h\n"
    "log:\n"
    "  level: info\n"
    "  access: stdout\n";

static void
test_reference_clean(void)
{
	unsetenv("REDIS_URL");
	T_EQ_STR(lint(BASE), "");
	T_EQ_INT(X.nwarn, 0);
	T_EQ_STR(lint(contract_yaml), "");
	T_EQ_INT(X.nerr, 0);
	T_EQ_INT(X.nwarn, 0);
	T_EQ_STR(lint_src("conf/visor.yaml", NULL), "");
	T_EQ_INT(X.nerr, 0);
	T_EQ_INT(X.nwarn, 0);
	T_OK(((const struct jwt_sect *)conf_sect(&C, filter_id(&jwt_filter)))->enabled &&
	    ((const struct cors_sect *)conf_sect(&C, filter_id(&cors_filter)))->enabled &&
	    C.redis.enabled && C.routes.n == 4);
end:;
}

/* A file with errors is not reviewed; no tree means no positions (and no crash). */
static void
test_errors_first(void)
{
	struct ynode *r;
	static const char src[] = "listen: {https: 127.0.0.1:8443}\n"
	    "tls: {certificates: [{cert: a.crt, key: a.key}], min_version: TLSv1}\n";

	reset();
	X.no_resolve = 1;
	X.file = "t.yaml";
	r = yaml_load_buf("t.yaml", src, strlen(src), conf_yaml_err, &X);
	T_OK(r != NULL);
	T_EQ_INT(conf_parse(&X, r, &C), 0);
	C.tree = r;
	conf_err(&X, NULL, "cannot build the runtime configuration");
	lint_check(&X, &C);
	T_EQ_STR(print(), "t.yaml: error: cannot build the runtime configuration\n");
	T_EQ_INT(X.nwarn, 0);

	conf_ctx_fini(&X);
	X.file = "t.yaml";
	C.tree = NULL;
	lint_check(&X, &C);
	T_EQ_INT(X.nwarn, 2);
	T_EQ_STR(print(),
	    "t.yaml: warning: no listen.http: clients that start on http:// are never redirected "
	    "to HTTPS — add listen.http (e.g. 0.0.0.0:8080; it answers 301 to https)\n"
	    "t.yaml: warning: tls.min_version is TLSv1; TLS 1.0 and 1.1 are deprecated (RFC 8996) "
	    "and lack modern cipher suites — set tls.min_version: TLSv1.2\n");
	ynode_free(r);
	lint_check(NULL, &C);
	lint_check(&X, NULL);
end:;
}

/* ---- listen, tls, upstream, client, hsts ---------------------------------------------------- */

#define MSG_NO_HTTP "no listen.http: clients that start on http:// are never redirected to " \
	"HTTPS — add listen.http (e.g. 0.0.0.0:8080; it answers 301 to https)"

static void
test_listen_http(void)
{
	T_EQ_STR(lint("workers: 2\nlisten: {https: 127.0.0.1:8443}\n"
	    "tls: {certificates: [{cert: a.crt, key: a.key}]}\n"), W("2:1", MSG_NO_HTTP));
	/* no listen section at all: the file's first line */
	T_EQ_STR(lint("tls: {certificates: [{cert: a.crt, key: a.key}]}\n"), W("1:1", MSG_NO_HTTP));
	T_EQ_STR(lint("listen:\n  https: 127.0.0.1:8443\n  http: 127.0.0.1:8080\n"
	    "tls: {certificates: [{cert: a.crt, key: a.key}]}\n"), "");
end:;
}

#define TLSV(v) "listen: {https: 127.0.0.1:8443, http: 127.0.0.1:8080}\n" \
	"tls:\n  certificates: [{cert: a.crt, key: a.key}]\n  min_version: " v "\n"
#define MSG_TLS(v) "tls.min_version is " v "; TLS 1.0 and 1.1 are deprecated (RFC 8996) and " \
	"lack modern cipher suites — set tls.min_version: TLSv1.2"

static void
test_tls_min_version(void)
{
	T_EQ_STR(lint(TLSV("TLSv1.1")), W("4:16", MSG_TLS("TLSv1.1")));
	T_EQ_INT(C.tls.min_version, TLS_MIN_11);
	T_EQ_STR(lint(TLSV("TLSv1")), W("4:16", MSG_TLS("TLSv1")));
	T_EQ_STR(lint(TLSV("TLSv1.0")), W("4:16", MSG_TLS("TLSv1.0")));
	T_EQ_INT(C.tls.min_version, TLS_MIN_10);
	T_EQ_STR(lint(TLSV("TLSv1.2")), "");
	T_EQ_STR(lint(TLSV("TLSv1.3")), "");     /* TLS_MIN_13 < TLS_MIN_10 in the enum */
	T_EQ_INT(C.tls.min_version, TLS_MIN_13);
end:;
}

#define MSG_VERIFY "upstream.tls.verify is false: anyone on the network path can impersonate " \
	"the upstream and read every request, tokens included — set verify: true (with " \
	"upstream.tls.ca for a private CA)"

static void
test_upstream_verify(void)
{
	T_EQ_STR(lint(BASE "upstream:\n  servers: [127.0.0.1:3000]\n  tls: {verify: false}\n"),
	    W("5:17", MSG_VERIFY));
	T_EQ_STR(lint(BASE "upstream:\n  servers: [127.0.0.1:3000]\n  tls: {verify: true}\n"), "");
	T_EQ_STR(lint(BASE "upstream:\n  tls: {server_name: api.internal}\n"), "");
	T_EQ_STR(lint(BASE "upstream: {servers: [127.0.0.1:3000]}\n"), "");
end:;
}

#define MSG_TRUST_ALL(i, t) "client.trusted_proxies[" i "] is " t ": every peer is trusted, so " \
	"any client can write X-Forwarded-For and pick the IP that rate limits, bans and logs " \
	"see — list only your load balancers' addresses"

static void
test_trusted_proxies(void)
{
	T_EQ_STR(lint(BASE "client:\n  trusted_proxies: [10.0.0.0/8, 0.0.0.0/0, \"::/0\", "
	    "fd00::/8]\n"),
	    W("4:33", MSG_TRUST_ALL("1", "0.0.0.0/0")) W("4:44", MSG_TRUST_ALL("2", "::/0")));
	T_EQ_STR(lint(BASE "client:\n  trusted_proxies:\n    - 192.168.0.0/16\n    - 0.0.0.0/0\n"),
	    W("6:7", MSG_TRUST_ALL("1", "0.0.0.0/0")));
	T_EQ_STR(lint(BASE "client: {trusted_proxies: 0.0.0.0/0}\n"),
	    W("3:27", MSG_TRUST_ALL("0", "0.0.0.0/0")));
	/* broad but not everything; a single address; none */
	T_EQ_STR(lint(BASE "client: {trusted_proxies: [0.0.0.0/1, 10.0.0.0/8, 10.1.2.3, \"::1\"]}\n"),
	    "");
	T_EQ_STR(lint(BASE "client: {trusted_proxies: []}\n"), "");
end:;
}

#define MSG_HSTS(n) "HSTS max_age is " n " s; the preload list (hsts.preload: true) needs at " \
	"least one year — set hsts.max_age: 31536000"
#define MSG_PRELOAD "hsts.preload is true without include_subdomains; the preload list " \
	"(hstspreload.org) refuses such a header — set hsts.include_subdomains: true"

static void
test_hsts(void)
{
	/* the one-year floor is the preload list's: a short max_age alone is a rollout */
	T_EQ_STR(lint(BASE "hsts:\n  max_age: 86400\n"), "");
	T_EQ_STR(lint(BASE "hsts: {max_age: 0}\n"), "");
	T_EQ_STR(lint(BASE "hsts:\n  max_age: 86400\n  preload: true\n"), W("4:12", MSG_HSTS("86400")));
	T_EQ_STR(lint(BASE "hsts: {max_age: 0, preload: true}\n"), W("3:17", MSG_HSTS("0")));
	T_EQ_STR(lint(BASE "hsts: {max_age: 364d, preload: true}\n"), W("3:17", MSG_HSTS("31449600")));
	T_EQ_STR(lint(BASE "hsts: {max_age: 31535999, preload: true}\n"),
	    W("3:17", MSG_HSTS("31535999")));
	T_EQ_STR(lint(BASE "hsts: {max_age: 365d, preload: true}\n"), "");
	/* off: no header, nothing to warn about */
	T_EQ_STR(lint(BASE "hsts: off\n"), "");
	T_EQ_STR(lint(BASE "hsts: false\n"), "");
	T_EQ_STR(lint(BASE "hsts: {max_age: 63072000, preload: true}\n"), "");
	T_EQ_STR(lint(BASE "hsts:\n  include_subdomains: false\n  preload: true\n"),
	    W("5:12", MSG_PRELOAD));
	T_EQ_STR(lint(BASE "hsts: {include_subdomains: false}\n"), "");
end:;
}

/* ---- headers: CSP --------------------------------------------------------------------------- */

#define CSP(v) BASE "headers:\n  Content-Security-Policy: \"" v "\"\n"
#define CSP_AT "4:28"
#define MSG_EVAL(d) "headers.Content-Security-Policy: " d " allows 'unsafe-eval', so " \
	"injected strings reach eval() and new Function() — remove 'unsafe-eval' (and the code " \
	"that needs it)"
#define MSG_STAR(d) "headers.Content-Security-Policy: " d " allows '*', any host — list the " \
	"hosts it needs, or 'self'"
#define MSG_INLINE(d) "headers.Content-Security-Policy: " d " allows 'unsafe-inline' without " \
	"a nonce or hash, so injected <script> and on* handlers run — use nonces or hashes, or " \
	"move inline scripts to files"
#define MSG_ANYURL(d) "headers.Content-Security-Policy: " d " allows scripts from any https:, " \
	"http: or data: URL — list the script hosts it needs, or 'self'"

static void
test_csp(void)
{
	T_EQ_STR(lint(CSP("default-src 'self'; script-src 'self' 'unsafe-eval'")),
	    W(CSP_AT, MSG_EVAL("script-src")));
	T_EQ_STR(lint(CSP("default-src 'self' 'UNSAFE-EVAL'")), W(CSP_AT, MSG_EVAL("default-src")));
	T_EQ_STR(lint(CSP("default-src 'self';img-src *")), W(CSP_AT, MSG_STAR("img-src")));
	T_EQ_STR(lint(CSP("default-src *")), W(CSP_AT, MSG_STAR("default-src")));
	/* the header name is case-insensitive; the position is the value's */
	T_EQ_STR(lint(BASE "headers: {content-security-policy: \"script-src 'self' 'unsafe-eval'\"}\n"),
	    W("3:36", MSG_EVAL("script-src")));
	T_EQ_STR(lint(CSP("default-src 'self'; script-src 'self' 'unsafe-inline'")),
	    W(CSP_AT, MSG_INLINE("script-src")));
	T_EQ_STR(lint(CSP("default-src 'self' 'unsafe-inline'")),
	    W(CSP_AT, MSG_INLINE("default-src")));
	T_EQ_STR(lint(CSP("script-src 'self' https:")), W(CSP_AT, MSG_ANYURL("script-src")));
	T_EQ_STR(lint(CSP("script-src-elem 'self' data:")),
	    W(CSP_AT, MSG_ANYURL("script-src-elem")));
	T_EQ_STR(lint(CSP("script-src 'unsafe-eval' 'unsafe-inline' *")),
	    W(CSP_AT, MSG_EVAL("script-src")) W(CSP_AT, MSG_STAR("script-src"))
	    W(CSP_AT, MSG_INLINE("script-src")));

	/* safe: the defaults, nonces and hashes, strict-dynamic, style 'unsafe-inline',
	 * host wildcards, wasm-unsafe-eval, a script-src that overrides default-src */
	T_EQ_STR(lint(BASE), "");
	T_EQ_STR(lint(CSP("default-src 'self';style-src 'self' https: 'unsafe-inline';font-src "
	    "https: data:;img-src 'self' data: https://*.example.com")), "");
	T_EQ_STR(lint(CSP("script-src 'self' 'nonce-r4nd0m' 'unsafe-inline'")), "");
	T_EQ_STR(lint(CSP("script-src 'sha256-abc=' 'unsafe-inline'")), "");
	T_EQ_STR(lint(CSP("script-src 'nonce-r4nd0m' 'strict-dynamic' https: 'unsafe-inline'")), "");
	T_EQ_STR(lint(CSP("script-src 'self' 'wasm-unsafe-eval'")), "");
	T_EQ_STR(lint(CSP("default-src 'self' 'unsafe-inline' https:; script-src 'self'")), "");
	T_EQ_STR(lint(CSP("default-src 'none'; script-src https://cdn.example.com")), "");
	T_EQ_STR(lint(CSP("default-src 'self'; report-uri https://r.example.com/*")), "");
	/* "" = visor does not set it: nothing to review */
	T_EQ_STR(lint(BASE "headers: {Content-Security-Policy: \"\"}\n"), "");
end:;
}

/* ---- cors ----------------------------------------------------------------------------------- */

#define MSG_WILD(i, o) "cors.origins[" i "]: '" o "' is a wildcard; visor compares origins " \
	"exactly, so it matches nothing, and a wildcard would trust every site or subdomain — " \
	"list each allowed origin exactly, e.g. https://app.example.com"
#define MSG_HTTP(i, o, h) "cors.origins[" i "]: '" o "' is plain http; anyone on the network " \
	"can inject script into that origin and read your API through it — use https://" h
#define MSG_NULL(i) "cors.origins[" i "] is 'null': sandboxed iframes, data: URLs and file: " \
	"pages send Origin: null, so any site can claim it — remove 'null' from cors.origins"
#define MSG_CRED "cors.credentials is true with an empty cors.origins; credentials need an " \
	"allowlist of exact origins — list them in cors.origins, or set cors.credentials: false"

static void
test_cors(void)
{
	T_EQ_STR(lint(BASE "cors:\n  origins: [\"*\"]\n"), W("4:13", MSG_WILD("0", "*")));
	T_EQ_STR(lint(BASE "cors:\n  origins:\n    - https://app.example.com\n"
	    "    - https://*.example.com\n"), W("6:7", MSG_WILD("1", "https://*.example.com")));
	T_EQ_STR(lint(BASE "cors: {origins: \"*\"}\n"), W("3:17", MSG_WILD("0", "*")));
	T_EQ_STR(lint(BASE "cors: {origins: [http://app.example.com]}\n"),
	    W("3:18", MSG_HTTP("0", "http://app.example.com", "app.example.com")));
	T_EQ_STR(lint(BASE "cors: {origins: [https://a.example, HTTP://B.example:8080]}\n"),
	    W("3:37", MSG_HTTP("1", "HTTP://B.example:8080", "B.example:8080")));
	T_EQ_STR(lint(BASE "cors: {origins: [http://localhost.evil.com, http://127.0.0.1.evil.com]}\n"),
	    W("3:18", MSG_HTTP("0", "http://localhost.evil.com", "localhost.evil.com"))
	    W("3:45", MSG_HTTP("1", "http://127.0.0.1.evil.com", "127.0.0.1.evil.com")));
	T_EQ_STR(lint(BASE "cors: {origins: [https://app.example.com, \"null\"]}\n"),
	    W("3:43", MSG_NULL("1")));
	T_EQ_STR(lint(BASE "cors:\n  origins: []\n  credentials: true\n"), W("5:16", MSG_CRED));

	/* safe: https, loopback http (secure contexts), credentials with an allowlist */
	T_EQ_STR(lint(BASE "cors:\n  origins: [https://app.example.com, https://admin.example.com:8443,"
	    " http://localhost:3000, http://LOCALHOST, http://127.0.0.1:8080, http://127.1.2.3, "
	    "\"http://[::1]:5173\", http://app.localhost:3000]\n  credentials: true\n"), "");
	T_EQ_STR(lint(BASE "cors: {origins: [], credentials: false}\n"), "");
end:;
}

/* ---- jwt ------------------------------------------------------------------------------------ */

#define HS_ONLY "jwt:\n  algorithms: [HS256]\n  keys:\n"
#define MSG_INLINE_SECRET(i) "jwt.keys[" i "].secret is written in the file: anyone who can " \
	"read the config (repository, image, ConfigMap) can mint tokens — give it as secret: " \
	"${JWT_SECRET} or secret_file: /run/secrets/jwt"
#define MSG_SHORT(i, k, v, n) "jwt.keys[" i "]." k " " v " " n " bytes; an HMAC secret under " \
	"32 bytes (RFC 7518 §3.2) can be brute-forced offline from one token — use 32 random " \
	"bytes or more (openssl rand -base64 48)"

static void
test_jwt_secrets(void)
{
	setenv("LINT_SECRET_LONG", "0123456789abcdef0123456789abcdef", 1);  /* 32 bytes */
	setenv("LINT_SECRET_SHORT", "0123456789abcdef0123456789abcde", 1);  /* 31 bytes */

	T_EQ_STR(lint(BASE HS_ONLY "    - secret: 0123456789abcdef0123456789abcdef0123\n"),
	    W("6:15", MSG_INLINE_SECRET("0")));
	T_EQ_STR(lint(BASE HS_ONLY "    - secret: changeme\n"),
	    W("6:15", MSG_INLINE_SECRET("0")) W("6:15", MSG_SHORT("0", "secret", "is", "8")));
	T_EQ_STR(lint(BASE HS_ONLY "    - {kid: a, secret: \"${LINT_SECRET_LONG}\"}\n"
	    "    - {kid: b, secret: \"${LINT_SECRET_SHORT}\"}\n"),
	    W("7:24", MSG_SHORT("1", "secret", "is", "31")));
	T_EQ_STR(lint(BASE HS_ONLY "    - secret: ${LINT_SECRET_LONG}\n"), "");

	write_file(SECRET_FILE, "short-but-from-a-file\n");
	T_EQ_STR(lint(BASE HS_ONLY "    - secret_file: " SECRET_FILE "\n"),
	    W("6:20", MSG_SHORT("0", "secret_file", "holds", "21")));
	write_file(SECRET_FILE, "a-secret-of-at-least-thirty-two-bytes\n");
	T_EQ_STR(lint(BASE HS_ONLY "    - secret_file: " SECRET_FILE "\n"), "");
end:
	unlink(SECRET_FILE);
}

#define KEY_ENV "    - secret: ${LINT_SECRET_LONG}\n"
#define MSG_MIXED(h, p) "jwt.algorithms mixes HMAC (" h ") with public-key algorithms (" p \
	"): any holder of the HMAC secret can mint tokens beside your private key's, and mixed " \
	"families are what algorithm-confusion attacks exploit — allow one family (RFC 8725 §3.1)"
#define MSG_EXP "jwt.required_claims does not include exp: a token without exp is accepted " \
	"forever, even once leaked — add exp to jwt.required_claims"
#define MSG_AUD(i) "jwt.audience is not set and jwt.keys[" i "] is a JWKS URL: a token the " \
	"identity provider issued for another application is accepted here — set jwt.audience " \
	"to this API's identifier"
#define MSG_ALLOFF "jwt is configured but every route has auth: off, so no token is ever " \
	"checked — set auth: required (or optional) on the routes that need it"

static void
test_jwt(void)
{
	setenv("LINT_SECRET_LONG", "0123456789abcdef0123456789abcdef", 1);

	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [RS256, HS512, ES256, HS256]\n  keys:\n" KEY_ENV),
	    W("4:15", MSG_MIXED("HS256", "RS256")));
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256, HS384, HS512]\n  keys:\n" KEY_ENV), "");
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [RS256, PS256, ES256, EdDSA]\n  keys:\n"
	    "    - file: k.pem\n"), "");

	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV
	    "  required_claims: [sub]\n"), W("7:20", MSG_EXP));
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV
	    "  required_claims: []\n"), W("7:20", MSG_EXP));
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV
	    "  required_claims: [sub, exp]\n"), "");

	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [RS256]\n  keys:\n    - file: k.pem\n"
	    "    - jwks_url: https://idp.example.com/.well-known/jwks.json\n"),
	    W("3:1", MSG_AUD("1")));
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [RS256]\n  audience: [api.example.com]\n  keys:\n"
	    "    - jwks_url: https://idp.example.com/.well-known/jwks.json\n"), "");
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [RS256]\n  keys:\n    - jwks_file: jwks.json\n"), "");

	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV
	    "routes:\n  - {path: /api/, auth: off}\n  - {path: /, auth: off}\n"),
	    W("3:1", MSG_ALLOFF));
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV
	    "routes:\n  - {path: /api/, auth: optional}\n  - {path: /, auth: off}\n"), "");
	/* the default route takes auth: required when jwt is present */
	T_EQ_STR(lint(BASE "jwt:\n  algorithms: [HS256]\n  keys:\n" KEY_ENV), "");
	T_EQ_STR(lint(BASE "routes:\n  - {path: /, auth: off}\n"), "");
end:;
}

/* ---- routes --------------------------------------------------------------------------------- */

#define RL BASE "rate_limits: {api: {limit: 100, window: 60s}}\nroutes:\n"
#define MSG_LOGIN(i, p) "routes[" i "] (" p ") has no rate limit; login endpoints get " \
	"password guessing and credential stuffing — add rate_limits: [login] with a policy such " \
	"as login: { limit: 5, window: 60s, key: ip, count: failures }"
#define MSG_SHADOW(j, pj, i, pi) "routes[" j "] (" pj ") is never used: routes[" i "] (" pi \
	") comes first and matches every request it would (first match wins) — move routes[" j \
	"] above routes[" i "]"
#define MSG_EMPTY "routes is empty: every request is answered 404 — add at least one route, " \
	"e.g. - path: /"

static void
test_login_routes(void)
{
	T_EQ_STR(lint(RL "  - path: /api/auth/\n  - path: /\n    rate_limits: [api]\n"),
	    W("5:11", MSG_LOGIN("0", "/api/auth/")));
	T_EQ_STR(lint(RL "  - {path: /login}\n  - {path: /v1/Login/, methods: [POST]}\n"
	    "  - {path: /api/auth}\n  - {path: /signin, rate_limits: []}\n"),
	    W("5:12", MSG_LOGIN("0", "/login")) W("6:12", MSG_LOGIN("1", "/v1/Login/"))
	    W("7:12", MSG_LOGIN("2", "/api/auth")) W("8:12", MSG_LOGIN("3", "/signin")));
	/* safe: rate-limited, GET-only (the form), or only look-alike segments */
	T_EQ_STR(lint(RL "  - {path: /api/auth/, rate_limits: [api]}\n"
	    "  - {path: /login, methods: [GET, HEAD]}\n  - {path: /authors}\n  - {path: /api/authz/}\n"
	    "  - {path: /blogin}\n  - {path: /oauth-login-help}\n  - {path: /}\n"), "");
end:;
}

static void
test_shadowed_routes(void)
{
	T_EQ_STR(lint(RL "  - path: /\n    rate_limits: [api]\n  - path: /api/\n"
	    "    rate_limits: [api]\n"), W("7:11", MSG_SHADOW("1", "/api/", "0", "/")));
	/* HEAD is covered by GET; prefixes compare case-insensitively, as route_match does */
	T_EQ_STR(lint(RL "  - {path: /API, methods: [GET, POST]}\n  - {path: /api/x, methods: [HEAD]}\n"),
	    W("6:12", MSG_SHADOW("1", "/api/x", "0", "/API")));
	/* a shadowed login route: the shadowing is what matters */
	T_EQ_STR(lint(RL "  - {path: /}\n  - {path: /login}\n"),
	    W("6:12", MSG_SHADOW("1", "/login", "0", "/")));
	/* safe: specific first, disjoint methods, a methods-restricted first route */
	T_EQ_STR(lint(RL "  - {path: /api/users, methods: [POST]}\n  - {path: /api/}\n  - {path: /}\n"),
	    "");
	T_EQ_STR(lint(RL "  - {path: /api/, methods: [POST]}\n  - {path: /api/, methods: [GET]}\n"
	    "  - {path: /api/}\n"), "");
	T_EQ_STR(lint(RL "  - {path: /api, methods: [GET]}\n  - {path: /api/x}\n"), "");
	T_EQ_STR(lint(BASE "routes: []\n"), W("3:9", MSG_EMPTY));
end:;
}

/* ---- errors, redis -------------------------------------------------------------------------- */

#define MSG_SCRUB "errors.scrub does not include 500: Node's default error handlers send " \
	"stack traces and driver messages in 500 answers — add 500-599 to errors.scrub"
#define MSG_REDIS_NOPW(h) "redis.url has no password and points to " h ": anyone who reaches " \
	"it can reset rate limits and lockouts and lift revocations — set requirepass (or an ACL " \
	"user) on the server and redis.url: ${REDIS_URL} with the password"
#define MSG_REDIS_INLINE "redis.url carries a password written in the file: anyone who can " \
	"read the config can reach the store — give it as url: ${REDIS_URL} or url_file: " \
	"/run/secrets/redis_url"
#define MSG_OPEN "redis.on_error is open: while Redis is unreachable no rate limit or lockout " \
	"is enforced, so whoever can disturb Redis gets unlimited login attempts — use local " \
	"(the same limits in memory) or closed (503)"

#define MSG_INSECURE "redis.tls.insecure_skip_verify is true: anyone on the network path can " \
	"impersonate Redis, read the password and answer every limit check — remove it (with " \
	"redis.tls.ca_file for a private CA)"

static void
test_errors_scrub(void)
{
	T_EQ_STR(lint(BASE "errors:\n  scrub: [502, 503]\n"), W("4:10", MSG_SCRUB));
	T_EQ_STR(lint(BASE "errors: {scrub: []}\n"), W("3:17", MSG_SCRUB));
	T_EQ_STR(lint(BASE "errors: {scrub: [404, 500-599]}\n"), "");
	T_EQ_STR(lint(BASE "errors: {scrub: [500]}\n"), "");
end:;
}

static void
test_redis(void)
{
	setenv("LINT_REDIS_URL", "redis://:s3cret@10.0.0.5:6379/0", 1);

	T_EQ_STR(lint(BASE "redis:\n  url: redis://10.0.0.5:6379/0\n"),
	    W("4:8", MSG_REDIS_NOPW("10.0.0.5")));
	T_EQ_STR(lint(BASE "redis: {url: \"redis://redis.internal\"}\n"),
	    W("3:14", MSG_REDIS_NOPW("redis.internal")));
	T_EQ_STR(lint(BASE "redis:\n  url: redis://:hunter2@10.0.0.5:6379/0\n"),
	    W("4:8", MSG_REDIS_INLINE));
	T_OK(strstr(out, "hunter2") == NULL);
	T_EQ_STR(lint(BASE "redis: {url: \"redis://:pw@127.0.0.1:6379\"}\n"), W("3:14", MSG_REDIS_INLINE));
	T_EQ_STR(lint(BASE "redis: {on_error: open}\n"), W("3:19", MSG_OPEN));
	T_EQ_STR(lint(BASE "redis:\n  url: rediss://localhost\n  tls:\n"
	    "    insecure_skip_verify: true\n"), W("6:27", MSG_INSECURE));
	T_EQ_STR(lint(BASE "redis:\n  url: rediss://localhost\n  tls:\n"
	    "    insecure_skip_verify: false\n"), "");

	/* safe: loopback without password, password from the environment, local/closed */
	T_EQ_STR(lint(BASE "redis: {url: \"redis://127.0.0.1:6379/0\"}\n"), "");
	T_EQ_STR(lint(BASE "redis: {url: \"redis://localhost\"}\n"), "");
	T_EQ_STR(lint(BASE "redis: {url: \"redis://[::1]:6379\"}\n"), "");
	T_EQ_STR(lint(BASE "redis: {url: \"${LINT_REDIS_URL}\"}\n"), "");
	T_EQ_STR(lint(BASE "redis: {}\n"), "");
	T_EQ_STR(lint(BASE "redis: {on_error: closed}\n"), "");
	T_EQ_STR(lint(BASE "redis: {on_error: local}\n"), "");
end:;
}

static void
cleanup(void)
{
	reset();
}

T_MAIN(test_reference_clean, test_errors_first, test_listen_http, test_tls_min_version,
    test_upstream_verify, test_trusted_proxies, test_hsts, test_csp, test_cors,
    test_jwt_secrets, test_jwt, test_login_routes, test_shadowed_routes, test_errors_scrub,
    test_redis, cleanup)
