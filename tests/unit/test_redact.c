/* SPDX-License-Identifier: MIT
 * Unit tests for the log redactor (src/lib/redact.c): one table of cases per rule, the
 * near-misses that must stay byte for byte, overlapping patterns, the JSON and cut forms,
 * UTF-8 and binary garbage, and long inputs that must stay linear. The table says the whole
 * expected output, so a case documents the rule as well as it tests it.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "t.h"
#include "core/log.h"
#include "lib/redact.h"

struct rcase {
	const char *in;
	const char *want;      /* NULL: the input unchanged */
	unsigned    flags;
};

#define R "[redacted]"

/* ---- 1. URL userinfo ---------------------------------------------------------------- */
static const struct rcase url_cases[] = {
	{ "postgres://app:s3cret@db:5432/app", "postgres://" R "@db:5432/app", 0 },
	{ "postgresql://app:s3cret@db/app?sslmode=require", "postgresql://" R "@db/app?sslmode=require", 0 },
	{ "mysql://root:pw@127.0.0.1:3306/shop", "mysql://" R "@127.0.0.1:3306/shop", 0 },
	{ "mongodb://u:p@h1:27017,h2:27017/db?replicaSet=rs0", "mongodb://" R "@h1:27017,h2:27017/db?replicaSet=rs0", 0 },
	{ "mongodb+srv://user:pass@cluster0.abcde.mongodb.net/app", "mongodb+srv://" R "@cluster0.abcde.mongodb.net/app", 0 },
	{ "redis://:hunter2@cache:6379/0", "redis://" R "@cache:6379/0", 0 },
	{ "rediss://default:pw@cache:6380", "rediss://" R "@cache:6380", 0 },
	{ "amqp://guest:guest@rabbit:5672/", "amqp://" R "@rabbit:5672/", 0 },
	{ "https://user:pw@api.example.com/x", "https://" R "@api.example.com/x", 0 },
	{ "ftp://anonymous@ftp.example.org/pub", "ftp://" R "@ftp.example.org/pub", 0 },
	/* the last '@' of the authority: a password holding '@' goes whole */
	{ "postgres://app:p@ss@db/app", "postgres://" R "@db/app", 0 },
	/* unencoded '/', '#', '?' in a password: a ':' that is not a port's says userinfo */
	{ "postgres://app:pa/ss@db/app", "postgres://" R "@db/app", 0 },
	{ "postgres://app:p#ss@db/app", "postgres://" R "@db/app", 0 },
	/* in text, in JSON, in JSON with escaped slashes, in HTML */
	{ "Error: connect to postgres://app:s3cret@db:5432/app failed", "Error: connect to postgres://" R "@db:5432/app failed", 0 },
	{ "{\"url\":\"postgres://app:s3cret@db/app\"}", "{\"url\":\"postgres://" R "@db/app\"}", 0 },
	{ "{\"url\":\"postgres:\\/\\/app:s3cret@db\\/app\"}", "{\"url\":\"postgres:\\/\\/" R "@db\\/app\"}", 0 },
	{ "<a href=\"https://u:p@x.example\">", "<a href=\"https://" R "@x.example\">", 0 },
	{ "(mysql://a:b@h)", "(mysql://" R "@h)", 0 },
	/* two URLs, each its own */
	{ "a=postgres://u:p@h/db?fallback=postgres://u2:p2@h2", "a=postgres://" R "@h/db?fallback=postgres://" R "@h2", 0 },
	/* an '@' in the path too: the authority's own ends the userinfo */
	{ "https://u@example.com/users/bob@example.com", "https://" R "@example.com/users/bob@example.com", 0 },
	/* a path whose slashes a proxy merged; not a drive letter */
	{ "/proxy/https:/u:p@example.com/x", "/proxy/https:/" R "@example.com/x", 0 },
	{ "C:/Users/bob@example.com", NULL, 0 },
	/* a JSON "\\" in the password is part of it */
	{ "\"redis://:p\\\\w@h\"", "\"redis://" R "@h\"", 0 },
};

/* ---- 2. Bearer / Basic / Authorization ----------------------------------------------- */
static const struct rcase auth_cases[] = {
	{ "Authorization: Bearer abc.DEF-123", "Authorization: " R, 0 },
	{ "authorization: basic dXNlcjpwYXNz\r\nHost: x", "authorization: " R "\r\nHost: x", 0 },
	{ "Proxy-Authorization: Basic YTpi", "Proxy-Authorization: " R, 0 },
	{ "sent header Authorization: token ghp_abc123 to upstream", "sent header Authorization: " R, 0 },
	{ "failed with Bearer mF_9.B5f-4.1JqM, retrying", "failed with Bearer " R ", retrying", 0 },
	{ "BEARER sk_live_abcdef", "BEARER " R, 0 },
	{ "Basic dXNlcjpwYXNz=", "Basic " R, 0 },
	{ "\"Basic dXNlcjpwYXNzMQ==\"", "\"Basic " R "\"", 0 },
	{ "Bearer abcdefghijklmnopqrstuvwxyz", "Bearer " R, 0 },
	/* a header dump inside a JSON string: up to the string's end */
	{ "{\"req\":\"GET /\\nAuthorization: Bearer x.Y\\nHost: a\"}", "{\"req\":\"GET /\\nAuthorization: " R "\\nHost: a\"}", 0 },
	/* HTML: up to the tag */
	{ "<pre>Authorization: Bearer x.Y<br>next</pre>", "<pre>Authorization: " R "<br>next</pre>", 0 },
	{ "Cookie: connect.sid=s%3Aabc; theme=dark\nX: y", "Cookie: " R "\nX: y", 0 },
	{ "Set-Cookie: sid=1; Path=/; HttpOnly", "Set-Cookie: " R, 0 },
};

/* ---- 3. JWT-shaped ------------------------------------------------------------------- */
#define JWT "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
static const struct rcase jwt_cases[] = {
	{ JWT, R, 0 },
	{ "token " JWT " rejected", "token " R " rejected", 0 },
	{ "/api/verify/" JWT, "/api/verify/" R, 0 },
	{ "{\"t\":\"" JWT "\"}", "{\"t\":\"" R "\"}", 0 },
	/* a sentence's full stop after it stays */
	{ "got " JWT ". Next", "got " R ". Next", 0 },
	/* alg none: an empty signature */
	{ "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", R, 0 },
	/* JWE: five segments, the second empty with "dir" */
	{ "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv_iv.cipher-text.tag_tag", R, 0 },
	/* glued to a word: still a token */
	{ "tok=" JWT, "tok=" R, 0 },
	{ "x" JWT, "x" R, 0 },
};

/* ---- 4. values of secret keys -------------------------------------------------------- */
static const struct rcase key_cases[] = {
	/* JSON */
	{ "{\"password\":\"s3cret\"}", "{\"password\":\"" R "\"}", 0 },
	{ "{\"password\": 123, \"user\": \"app\"}", "{\"password\": " R ", \"user\": \"app\"}", 0 },
	{ "{ \"token\" : \"a\\\"b\" }", "{ \"token\" : \"" R "\" }", 0 },
	{ "{\"access_token\":\"x\",\"refresh_token\":\"y\",\"id_token\":\"z\",\"expires_in\":3600}",
	  "{\"access_token\":\"" R "\",\"refresh_token\":\"" R "\",\"id_token\":\"" R "\",\"expires_in\":3600}", 0 },
	{ "{\"apiKey\":\"k\",\"api_key\":\"k\",\"X-API-Key\":\"k\",\"apikey\":\"k\"}",
	  "{\"apiKey\":\"" R "\",\"api_key\":\"" R "\",\"X-API-Key\":\"" R "\",\"apikey\":\"" R "\"}", 0 },
	{ "{\"client_secret\":\"c\",\"private_key\":\"-----BEGIN\",\"clientCredentials\":\"q\"}",
	  "{\"client_secret\":\"" R "\",\"private_key\":\"" R "\",\"clientCredentials\":\"" R "\"}", 0 },
	{ "{\"auth\":{\"user\":\"app\",\"pass\":\"x\"},\"host\":\"db\"}", "{\"auth\":" R ",\"host\":\"db\"}", 0 },
	{ "{\"session\":[\"a\",\"b]\"],\"n\":1}", "{\"session\":" R ",\"n\":1}", 0 },
	{ "{\"token\":null,\"secret\":true,\"pwd\":false}", NULL, 0 },
	{ "{\"password\":\"\"}", NULL, 0 },
	/* JSON inside a JSON string, Python, Ruby, HTML-escaped */
	{ "{\"body\":\"{\\\"password\\\":\\\"s3\\\\\\\"c\\\"}\"}", "{\"body\":\"{\\\"password\\\":\\\"" R "\\\"}\"}", 0 },
	{ "{'password': 's3cret', 'user': 'app'}", "{'password': '" R "', 'user': 'app'}", 0 },
	{ "{\"password\"=>\"s3cret\"}", "{\"password\"=>\"" R "\"}", 0 },
	{ "&quot;secret&quot;:&quot;x&quot;,&quot;id&quot;:1", "&quot;secret&quot;:&quot;" R "&quot;,&quot;id&quot;:1", 0 },
	/* key=value */
	{ "GET /login?user=app&password=s3cret&next=/", "GET /login?user=app&password=" R "&next=/", 0 },
	{ "host=db user=app password=s3cret dbname=app", "host=db user=app password=" R " dbname=app", 0 },
	{ "Server=db;User Id=app;Password=s3cret;Database=x", "Server=db;User Id=app;Password=" R ";Database=x", 0 },
	{ "DB_PASSWORD=s3cret\nPGPASSWORD=x\nAWS_SECRET_ACCESS_KEY=y\n", "DB_PASSWORD=" R "\nPGPASSWORD=" R "\nAWS_SECRET_ACCESS_KEY=" R "\n", 0 },
	{ "--password=x --api-key=y", "--password=" R " --api-key=" R, 0 },
	{ "password = 'two words'", "password = '" R "'", 0 },
	{ "AccountName=acct;AccountKey=abc+/==;EndpointSuffix=core", "AccountName=acct;AccountKey=" R ";EndpointSuffix=core", 0 },
	{ "X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc&sig=zz", "X-Amz-Credential=" R "&X-Amz-Signature=" R "&sig=" R, 0 },
	/* key: value lines */
	{ "password: hunter2\nuser: app", "password: " R "\nuser: app", 0 },
	{ "db:\n  password: hunter2\n  host: db", "db:\n  password: " R "\n  host: db", 0 },
	{ "- secret: x\n- name: y", "- secret: " R "\n- name: y", 0 },
	{ "X-Api-Key: k-123\r\nAccept: */*", "X-Api-Key: " R "\r\nAccept: */*", 0 },
	{ "{ host: 'db', password: 's3cret', port: 5432 }", "{ host: 'db', password: '" R "', port: 5432 }", 0 },
	{ "{ pin: 1, authToken: abc, x: 2 }", "{ pin: 1, authToken: " R ", x: 2 }", 0 },
	{ "Error: x\\n    password: y\\n    at f", "Error: x\\n    password: " R "\\n    at f", 0 },
	{ "{\"m\":\"password: s3cret\",\"n\":1}", "{\"m\":\"password: " R "\",\"n\":1}", 0 },
	{ "<br> &nbsp; &nbsp;password: s3cret<br>", "<br> &nbsp; &nbsp;password: " R "<br>", 0 },
	{ "basicAuth: x\nsmtp_pass: y\nDB_PW: z\nuserPass: w", "basicAuth: " R "\nsmtp_pass: " R "\nDB_PW: " R "\nuserPass: " R, 0 },
	/* a name, not a word: the whole line value */
	{ "password: correct horse battery staple\nx", "password: " R "\nx", 0 },
};

/* ---- near-misses: must stay byte for byte --------------------------------------------- */
static const struct rcase kept_cases[] = {
	{ "https://example.com/users/bob@example.com", NULL, 0 },
	{ "https://medium.com/@bob/post", NULL, 0 },
	{ "http://host:8080/a@b", NULL, 0 },
	{ "https://x.example?email=a@b.c", NULL, 0 },
	{ "mailto:bob@example.com and git@github.com:org/repo", NULL, 0 },
	{ "Invalid scheme, expected connection string to start with \"mongodb://\" or \"mongodb+srv://\"", NULL, 0 },
	{ "error: password authentication failed for user \"app\"", NULL, 0 },
	{ "Access denied for user 'app'@'172.18.0.3' (using password: YES)", NULL, 0 },
	{ "MongoServerError: bad auth : Authentication failed.", NULL, 0 },
	{ "TokenExpiredError: jwt expired", NULL, 0 },
	{ "JsonWebTokenError: invalid token", NULL, 0 },
	{ "Invalid token: expected 3 parts", NULL, 0 },
	{ "missing bearer token", NULL, 0 },
	{ "basic validation failed", NULL, 0 },
	{ "WWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\"", NULL, 0 },
	{ "Bearer realm=api", NULL, 0 },
	{ "eyJ alone, eyJhbGciOiJIUzI1NiJ9.eyJzdWIi two segments", NULL, 0 },
	{ "{\"author\":\"Ann\",\"oauth\":\"on\",\"passenger\":2,\"bypass\":1,\"tokens_left\":null}", NULL, 0 },
	{ "if (token === undefined) return; a != b; x <= y", NULL, 0 },
	{ "token == 1", NULL, 0 },
	{ "    at Object.<anonymous> (/app/src/session.js:10:5)\n    at token.js:1:2", NULL, 0 },
	{ "C++ std::string token::value() at fe80::1", NULL, 0 },
	{ "Key (email)=(a@b.c) already exists.", NULL, 0 },
	{ "{\"code\":\"ER_ACCESS_DENIED_ERROR\",\"errno\":1045,\"sqlState\":\"28000\"}", NULL, 0 },
	/* a message's prefix named by a word: prose after it stays */
	{ "jwt: claim not forwarded to the upstream: its value holds control characters", NULL, 0 },
	{ "auth: login failed for user 42", NULL, 0 },
	{ "password", NULL, 0 },
	{ "password=", NULL, 0 },
	{ "://", NULL, 0 },
	{ "://@host", NULL, 0 },
	{ "", NULL, 0 },
	{ "/api/items/123", NULL, 0 },
};

/* ---- overlapping patterns ------------------------------------------------------------ */
static const struct rcase overlap_cases[] = {
	/* the key decides first; its value goes whole */
	{ "token=" JWT "&x=1", "token=" R "&x=1", 0 },
	{ "Authorization: Bearer " JWT, "Authorization: " R, 0 },
	{ "{\"authorization\":\"Bearer " JWT "\"}", "{\"authorization\":\"" R "\"}", 0 },
	{ "DATABASE_URL=postgres://app:s3cret@db/app", "DATABASE_URL=postgres://" R "@db/app", 0 },
	{ "password=postgres://a:b@h", "password=" R, 0 },
	/* a JWT as userinfo, a secret key inside a URL's query */
	{ "https://" JWT "@h/x", "https://" R "@h/x", 0 },
	/* '#' does not end a value (passwords hold it): the fragment goes with it */
	{ "https://api.example.com/cb?code=x&access_token=y#z", "https://api.example.com/cb?code=x&access_token=" R, 0 },
	{ "redis://u:p@h/0?password=q", "redis://" R "@h/0?password=" R, 0 },
	/* Bearer then a key that is not its token */
	{ "Bearer token=abc", "Bearer token=" R, 0 },
	/* two rules back to back */
	{ "Basic YTpi,Bearer x.Y", "Basic " R ",Bearer " R, 0 },
	{ JWT JWT, R, 0 },
};

/* ---- JSON form and cut text ----------------------------------------------------------- */
static const struct rcase json_cases[] = {
	{ "pw=\"s\"\n\x01", "pw=\\\"" R "\\\"\\n\\u0001", REDACT_JSON },
	{ "a\\b \"password\":\"x\"", "a\\\\b \\\"password\\\":\\\"" R "\\\"", REDACT_JSON },
	{ "caf\xc3\xa9 token=\xff", "caf\xc3\xa9 token=" R, REDACT_JSON },
	{ "plain \xff\xfe path", "plain \\ufffd\\ufffd path", REDACT_JSON },
};
static const struct rcase cut_cases[] = {
	{ "connect to postgres://app:s3c", "connect to postgres://" R, REDACT_CUT },
	{ "connect to postgres://app:s3c", NULL, 0 },
	{ "then https://docs.example.com/errors", NULL, REDACT_CUT },
	{ "token is eyJhbGciOiJI", "token is " R, REDACT_CUT },
	{ "token is eyJhbGciOiJI", NULL, 0 },
	{ "Bearer ab", "Bearer " R, REDACT_CUT },
	{ "Bearer ab", NULL, 0 },
	{ "{\"password\":\"s3cr", "{\"password\":\"" R, REDACT_CUT },
	{ "{\"password\":\"s3cr", "{\"password\":\"" R, 0 },
};

static int
run_cases(const char *name, const struct rcase *c, size_t nc)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < nc; i++) {
		struct sbuf o = { 0 };
		const char *want = c[i].want ? c[i].want : c[i].in;
		size_t cnt = redact_append(&o, c[i].in, strlen(c[i].in), c[i].flags);
		int same = o.len == strlen(want) && memcmp(sbuf_cstr(&o), want, o.len) == 0;
		T_CHECK(same, "%s[%zu]: \"%s\"\n   got  \"%s\"\n   want \"%s\"", name, i, c[i].in,
		    sbuf_cstr(&o), want);
		/* nothing replaced exactly when nothing changed (no case holds a marker) */
		T_CHECK((cnt == 0) == (strcmp(want, c[i].in) == 0 && !(c[i].flags & REDACT_JSON)) ||
		    (c[i].flags & REDACT_JSON), "%s[%zu]: count %zu", name, i, cnt);
		bad += !same;
		sbuf_fini(&o);
	}
	return bad;
}

static void
test_tables(void)
{
	run_cases("url", url_cases, ARRAY_LEN(url_cases));
	run_cases("auth", auth_cases, ARRAY_LEN(auth_cases));
	run_cases("jwt", jwt_cases, ARRAY_LEN(jwt_cases));
	run_cases("key", key_cases, ARRAY_LEN(key_cases));
	run_cases("kept", kept_cases, ARRAY_LEN(kept_cases));
	run_cases("overlap", overlap_cases, ARRAY_LEN(overlap_cases));
	run_cases("json", json_cases, ARRAY_LEN(json_cases));
	run_cases("cut", cut_cases, ARRAY_LEN(cut_cases));
}

/* The marker met again is not a new secret, and a second pass changes nothing. */
static void
test_idempotent(void)
{
	static const char *const in[] = {
		"postgres://app:s3cret@db/app password=x {\"token\":\"y\"} Bearer Z1 " JWT,
		"Cookie: a=b\n{ secret: [1, 2] }\n",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(in); i++) {
		struct sbuf a = { 0 }, b = { 0 };
		T_OK(redact_append(&a, in[i], strlen(in[i]), 0) > 0);
		T_EQ_INT(redact_append(&b, a.p, a.len, 0), 0);
		T_EQ_STR(sbuf_cstr(&b), sbuf_cstr(&a));
		sbuf_fini(&a);
		sbuf_fini(&b);
	}
end:;
}

/* redact_maybe is the access log's pre-check: no false negative on any case above. */
static void
test_maybe(void)
{
	T_EQ_INT(redact_maybe("/api/items/123", 14), 0);
	T_EQ_INT(redact_maybe("/static/app.9f8e7d.js", 21), 0);
	T_EQ_INT(redact_maybe("", 0), 0);
	T_EQ_INT(redact_maybe("/a:b", 4), 1);
	T_EQ_INT(redact_maybe("/a=b", 4), 1);
	T_EQ_INT(redact_maybe("/a b", 4), 1);
	T_EQ_INT(redact_maybe("/eyJx", 5), 1);
	T_EQ_INT(redact_maybe("/eyj", 4), 0);
	T_EQ_INT(redact_maybe("J", 1), 0);
end:;
}

/* Bytes that are not UTF-8, NULs and controls pass through (raw) and never split a secret. */
static void
test_binary(void)
{
	static const char in[] = "\x00\xff password=\xc3\xa9t\xc3\xa9\x00 \xe2\x82 eyJ\x80.\x80.\x80 \x01://\xfe:\xfe@h";
	static const char want[] = "\x00\xff password=" R "\x00 \xe2\x82 eyJ\x80.\x80.\x80 \x01://" R "@h";
	struct sbuf o = { 0 };

	redact_append(&o, in, sizeof(in) - 1, 0);
	T_EQ_INT(o.len, sizeof(want) - 1);
	T_OK(memcmp(o.p, want, o.len) == 0);
end:
	sbuf_fini(&o);
}

/* 4 MiB of each pathological unit: linear (a quadratic scan would take hours). */
static void
test_long(void)
{
	static const char *const unit[] = {
		"eyJ", "eyJa.", "://", "://a", ":\\/\\/x:", "a=", "\"k\":", "\"password\":\"",
		"Bearer ", "Basic a ", "{[", "password: ", "\\\"", "&quot;", "-", "@", "token=[",
		"a:b@", "x ", "{\"session\":{",
	};
	size_t n = 4u << 20, i, u;
	char *p = malloc(n);
	clock_t t0;
	double secs;

	T_OK(p != NULL);
	for (u = 0; u < ARRAY_LEN(unit); u++) {
		struct sbuf o = { 0 };
		size_t ul = strlen(unit[u]);
		for (i = 0; i < n; i++)
			p[i] = unit[u][i % ul];
		t0 = clock();
		redact_append(&o, p, n, 0);
		redact_append(&o, p, n, REDACT_CUT | REDACT_JSON);
		secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
		T_CHECK(secs < 2.0 && !o.oom, "unit \"%s\": %.2f s", unit[u], secs);
		sbuf_fini(&o);
	}
	/* a secret after 4 MiB of near-misses is still found */
	memset(p, 'e', n);
	memcpy(p + n - 20, " password=s3cret", 16);
	{
		struct sbuf o = { 0 };
		T_EQ_INT(redact_append(&o, p, n - 4, 0), 1);
		T_OK(o.len == n - 4 - 6 + REDACT_MARK_LEN);
		sbuf_fini(&o);
	}
end:
	free(p);
}

/* The log side: log_kv members, and log_msg's stderr line (captured through fd 2). */
static void
test_log(void)
{
	struct sbuf b = { 0 };
	char line[2048];
	FILE *tf = tmpfile();
	int saved = -1;
	size_t n;

	sbuf_addc(&b, '{');
	log_kv(&b, "path", "/a/" JWT, strlen("/a/" JWT));
	log_kv(&b, "p", "/plain\"q", 8);
	log_kv_excerpt(&b, "excerpt", "x token=ab\ncd", 13);
	sbuf_addc(&b, '}');
	T_EQ_STR(sbuf_cstr(&b), "{\"path\":\"/a/" R "\",\"p\":\"/plain\\\"q\",\"excerpt\":\"x token=" R "\\ncd\"}");

	T_OK(tf != NULL);
	saved = dup(2);
	T_OK(saved >= 0 && dup2(fileno(tf), 2) == 2);
	log_warn("jwks: fetching %s failed: %s", "https://u:pw@keys.example.com/jwks.json",
	    "Authorization: Bearer abc.DEF");
	dup2(saved, 2);
	rewind(tf);
	n = fread(line, 1, sizeof(line) - 1, tf);
	line[n] = '\0';
	T_OK(strstr(line, "\"msg\":\"jwks: fetching https://" R "@keys.example.com/jwks.json "
	    "failed: Authorization: " R "\"}") != NULL);
	T_OK(strstr(line, "pw@") == NULL && strstr(line, "abc.DEF") == NULL);
end:
	if (saved >= 0)
		close(saved);
	if (tf)
		fclose(tf);
	sbuf_fini(&b);
}

T_MAIN(test_tables, test_idempotent, test_maybe, test_binary, test_long, test_log)
