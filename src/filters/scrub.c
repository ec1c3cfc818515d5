/* SPDX-License-Identifier: MIT
 * scrub — error scrubbing (docs/errors.md). An upstream answer whose
 * status is in errors.scrub, or (errors.stack_traces) a 4xx whose body holds a stack trace or
 * driver error text, keeps its status and headers but its body becomes
 * {"error":"<message>","requestId":"<id>"}; the original body's first 4 KiB go to stdout as
 * one `scrubbed_error` security event with the request id. Edge answers (r->edge) are
 * visor's own and never touched.
 *
 * The response phase runs this filter on the upstream's head:
 *   - status in errors.scrub: the body is replaced at once (so it can never leak, even if
 *     nothing more arrives), and the first 4 KiB are buffered (req_want_resp_body) only to
 *     log them; HEAD and empty bodies log an empty excerpt without waiting;
 *   - 4xx (stack_traces on) with a body that may fit in 64 KiB (identity coding): up to
 *     64 KiB are buffered; a complete body is run through scrub_has_stack_trace; a larger one
 *     passes untouched, as it would cost unbounded buffering to decide.
 * The core calls on_response a second time once the buffer is ready; the state tells the two
 * calls apart. The core drains what is left of a replaced body, so the upstream connection
 * stays reusable.
 *
 * Never logs anything but the excerpt, the status and the reason; never inspects an edge answer.
 */
#include "filters/scrub.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "http/filter.h"
#include "http/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/req.h"

/* ---- the detector ------------------------------------------------------------------------ */

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_word(int c)
{
	return is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z') || c == '_';
}

static const char *
find(const char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle));
}

/* Steps back over ":<digits>" ending at *e; 0 when s[..*e) does not end so. */
static int
colon_number_back(const char *s, size_t *e)
{
	size_t d = *e;

	while (*e > 0 && is_digit((unsigned char)s[*e - 1]))
		(*e)--;
	if (*e == d || *e == 0 || s[*e - 1] != ':')
		return 0;
	(*e)--;
	return 1;
}

/* "path:line:col" where path looks like a file: has '/' or '\', or is a node: builtin. */
static int
loc_ok(const char *s, size_t n)
{
	size_t e = n;

	if (!colon_number_back(s, &e) || !colon_number_back(s, &e) || e == 0)
		return 0;
	if (e >= 5 && memcmp(s, "node:", 5) == 0)
		return 1;
	return memchr(s, '/', e) != NULL || memchr(s, '\\', e) != NULL;
}

/* An HTML tag that ends a text line: <br>, </x>, <p>, <pre>, <li>, <div>, <td>, <span>.
 * Other '<' are text ("at Object.<anonymous> (/app/x.js:1:2)" in a JSON or text stack). */
static int
line_tag(const char *p, size_t n)
{
	static const char *const tags[] = { "br", "/", "p>", "p ", "pre", "li", "div", "td",
	    "span" };
	size_t i, l;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		l = strlen(tags[i]);
		if (n > l && ascii_casecmp_n(p + 1, l, tags[i], l) == 0)
			return 1;
	}
	return 0;
}

/* Splits p at line boundaries — a newline, a JSON "\n" / "\r" escape, a JSON string's quote,
 * an HTML line tag — starting at s. Returns the end of the segment; *next is where the next
 * one starts. Every byte belongs to one segment, so a scan over all of them is linear. */
static size_t
seg_end(const char *p, size_t n, size_t s, size_t *next)
{
	size_t k = s, t;

	while (k < n) {
		char c = p[k];
		if (c == '\n' || c == '\r' || c == '"') {
			*next = k + 1;
			return k;
		}
		if (c == '\\' && k + 1 < n) {
			if (p[k + 1] == 'n' || p[k + 1] == 'r' || p[k + 1] == '"') {
				*next = k + 2;
				return k;
			}
			k += 2;        /* an escaped character ("\\\\" in a Windows path) */
			continue;
		}
		if (c == '<' && line_tag(p + k, n - k)) {
			for (t = k + 1; t < n && t < k + 256 && p[t] != '>'; t++)
				;
			*next = t < n && p[t] == '>' ? t + 1 : k + 1;
			return k;
		}
		k++;
	}
	*next = n;
	return n;
}

/* Whether the segment p[0..n) is a V8 frame line: indentation (spaces, tabs, &nbsp;, a JSON
 * "\t"), "at ", then "[async ][new ]path:line:col" or "fn (path:line:col)". */
static int
frame_line(const char *p, size_t n)
{
	size_t k = 0, t, j, c;

	for (;;) {
		if (k < n && (p[k] == ' ' || p[k] == '\t'))
			k++;
		else if (n - k >= 6 && (memcmp(p + k, "&nbsp;", 6) == 0 ||
		    memcmp(p + k, "&#160;", 6) == 0))
			k += 6;
		else if (n - k >= 2 && p[k] == '\\' && p[k + 1] == 't')
			k += 2;
		else
			break;
	}
	if (n - k < 3 || memcmp(p + k, "at ", 3) != 0)
		return 0;
	k += 3;
	if (n - k >= 6 && memcmp(p + k, "async ", 6) == 0)
		k += 6;
	if (n - k >= 4 && memcmp(p + k, "new ", 4) == 0)
		k += 4;
	for (t = k; t < n && p[t] != ' ' && p[t] != '(' && p[t] != ')'; t++)
		;
	if (t > k && loc_ok(p + k, t - k))
		return 1;
	for (j = k + 1; j < n; j = c) {
		if (p[j] != '(' || p[j - 1] != ' ') {
			c = j + 1;
			continue;
		}
		for (c = j + 1; c < n && p[c] != ')' && p[c] != '('; c++)
			;
		if (c < n && p[c] == ')' && loc_ok(p + j + 1, c - j - 1))
			return 1;
	}
	return 0;
}

static int
has_v8_frame(const char *p, size_t n)
{
	size_t i = 0, e, next;

	while (i < n) {
		e = seg_end(p, n, i, &next);
		if (e - i >= 3 && frame_line(p + i, e - i))
			return 1;
		i = next;
	}
	return 0;
}

/* A JSON "stack"-like key whose value (string or array) names an Error or holds frames. */
static int
has_stack_key(const char *p, size_t n)
{
	static const char *const keys[] = { "\"stack\"", "\"stackTrace\"", "\"stack_trace\"",
	    "\"stacktrace\"" };
	size_t k, i, s, lim;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char *q = p, *e = p + n;
		size_t kl = strlen(keys[k]);
		while ((q = memmem(q, (size_t)(e - q), keys[k], kl)) != NULL) {
			i = (size_t)(q - p) + kl;
			q += kl;
			while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
				i++;
			if (i >= n || p[i] != ':')
				continue;
			i++;
			while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
				i++;
			if (i >= n || (p[i] != '"' && p[i] != '['))
				continue;
			/* the value: to the closing quote (string) or bracket (array), 16 KiB at most */
			s = i;
			lim = n - s > 16384 ? s + 16384 : n;
			if (p[i] == '"') {
				for (i++; i < lim && p[i] != '"'; i++)
					if (p[i] == '\\')
						i++;
			} else {
				for (i++; i < lim && p[i] != ']'; i++)
					;
			}
			if (i > lim)
				i = lim;
			if (find(p + s, i - s, "Error") || find(p + s, i - s, "Exception") ||
			    has_v8_frame(p + s + 1, i - s - 1))
				return 1;
			q = p + i;         /* on after the value: linear overall */
		}
	}
	return 0;
}

/* `prefix` at a word boundary, then at least `min` characters of [A-Z_]. */
static int
has_code(const char *p, size_t n, const char *prefix, size_t min)
{
	const char *q = p, *e = p + n;
	size_t pl = strlen(prefix), i, j;

	while ((q = memmem(q, (size_t)(e - q), prefix, pl)) != NULL) {
		i = (size_t)(q - p);
		q += pl;
		if (i > 0 && is_word((unsigned char)p[i - 1]))
			continue;
		for (j = i + pl; j < n && (is_upper((unsigned char)p[j]) || p[j] == '_'); j++)
			;
		if (j - i - pl >= min && (j == n || !is_word((unsigned char)p[j])))
			return 1;
	}
	return 0;
}

/* `what` somewhere after `first`, within `win` bytes of it. */
static int
has_pair(const char *p, size_t n, const char *first, const char *what, size_t win)
{
	const char *q = p, *e = p + n;
	size_t fl = strlen(first), rest;

	while ((q = memmem(q, (size_t)(e - q), first, fl)) != NULL) {
		q += fl;
		rest = (size_t)(e - q);
		if (find(q, rest < win ? rest : win, what))
			return 1;
	}
	return 0;
}

static int
has_driver_error(const char *p, size_t n)
{
	static const char *const needles[] = {
		/* Node system errors */
		"ECONNREFUSED", "getaddrinfo ENOTFOUND", "getaddrinfo EAI_AGAIN",
		"connect ETIMEDOUT", "connect EHOSTUNREACH", "connect ENETUNREACH",
		"read ECONNRESET", "write EPIPE", "\"syscall\":",
		/* PostgreSQL (pg) */
		"violates unique constraint", "violates foreign key constraint",
		"violates not-null constraint", "violates check constraint",
		"syntax error at or near", "syntax error at end of input",
		"password authentication failed for user", "no pg_hba.conf entry",
		/* MySQL (mysql2) */
		"\"sqlMessage\"", "\"sqlState\"", "You have an error in your SQL syntax",
		"Duplicate entry '",
		/* SQLite */
		"no such table: ", "no such column: ", "UNIQUE constraint failed: ",
		"NOT NULL constraint failed: ", "FOREIGN KEY constraint failed",
		/* MongoDB / Mongoose */
		"E11000 duplicate key error", "MongoServerError", "MongoNetworkError",
		"MongoServerSelectionError", "MongooseServerSelectionError", "MongoError",
		"MongooseError", "ValidatorError", "\"name\":\"CastError\"",
		/* ORMs */
		"SequelizeDatabaseError", "SequelizeUniqueConstraintError",
		"SequelizeForeignKeyConstraintError", "SequelizeConnectionError",
		"SequelizeConnectionRefusedError", "PrismaClientKnownRequestError",
		"PrismaClientUnknownRequestError", "PrismaClientValidationError",
		"PrismaClientInitializationError", "QueryFailedError",
		/* Python */
		"Traceback (most recent call last)",
	};
	size_t i;

	for (i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
		if (find(p, n, needles[i]))
			return 1;
	if (has_code(p, n, "ER_", 3) || has_code(p, n, "SQLITE_", 2))
		return 1;
	/* pg: a serialised DatabaseError; "Key (email)=(x) already exists."; missing objects */
	if (find(p, n, "\"severity\":\"") && find(p, n, "\"routine\":\""))
		return 1;
	if (has_pair(p, n, "Key (", ")=(", 128))
		return 1;
	/* mongodb: a duplicate-key error serialised without its message (driver 4/5) */
	if (find(p, n, "\"keyPattern\":") && find(p, n, "\"keyValue\":"))
		return 1;
	if (has_pair(p, n, "relation \"", "does not exist", 192) ||
	    has_pair(p, n, "relation \\\"", "does not exist", 192) ||
	    has_pair(p, n, "column \"", "does not exist", 192) ||
	    has_pair(p, n, "column \\\"", "does not exist", 192))
		return 1;
	/* Mongoose CastError message */
	return has_pair(p, n, "Cast to ", " failed for value", 64);
}

int
scrub_has_stack_trace(const char *p, size_t n)
{
	if (p == NULL || n == 0)
		return 0;
	return has_v8_frame(p, n) || has_stack_key(p, n) || has_driver_error(p, n);
}

/* ---- configuration ------------------------------------------------------------------------ */

static int
range_item(const char *s, void *elem, const char **err)
{
	struct scrub_range *r = elem;

	return units_status_range(s, &r->lo, &r->hi, err);
}

static const struct clist l_scrub = { offsetof(struct scrub_sect, n_scrub),
    sizeof(struct scrub_range), range_item, "a list of status codes and ranges" };

static const struct ckey k_errors[] = {
	{ .name = "scrub", .type = KT_CUSTOM, .off = offsetof(struct scrub_sect, scrub),
	  .fn = conf_parse_list, .release = conf_release_list, .arg = &l_scrub,
	  .def = "[500-599]", .tname = "list of codes and ranges",
	  .doc = "Upstream answers with these statuses get the generic JSON body (original "
	    "logged with the request id)." },
	{ .name = "stack_traces", .type = KT_BOOL, .off = offsetof(struct scrub_sect, stack_traces),
	  .def = "true", .doc = "Also scrub any 4xx body that carries a stack trace." },
};
static const struct csect s_errors = CONF_SECT(k_errors, NULL);

static const struct ckey k_top[] = {
	{ .name = "errors", .type = KT_SECTION, .arg = &s_errors,
	  .doc = "Scrubbing of upstream error bodies." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

static int
scrub_listed(const struct scrub_sect *ss, int st)
{
	size_t i;

	for (i = 0; i < ss->n_scrub; i++)
		if (st >= ss->scrub[i].lo && st <= ss->scrub[i].hi)
			return 1;
	return 0;
}

int
scrub_status(const struct conf *c, int st)
{
	return scrub_listed(conf_sect(c, filter_id(&scrub_filter)), st);
}

static void
scrub_lint(struct lint *l, const void *sect)
{
	if (!scrub_listed(sect, 500))
		conf_warn(l->ctx, lint_first(lint_node(l, "errors.scrub"), lint_section(l,
		    "errors")),
		    "errors.scrub does not include 500: Node's default error handlers send stack "
		    "traces and driver messages in 500 answers — add 500-599 to errors.scrub");
}

/* ---- the filter --------------------------------------------------------------------------- */

struct scrub_conf {
	const struct scrub_sect *s;   /* the generation's section (errors.scrub) */
	int                      stack_traces;
};

enum scrub_phase {
	SP_NONE = 0,       /* the head not seen yet */
	SP_EXCERPT,        /* replaced; waiting for the first 4 KiB to log */
	SP_INSPECT,        /* 4xx; waiting for up to 64 KiB to decide */
	SP_DONE,
};

struct scrub_state {
	enum scrub_phase phase;
};

static int
scrub_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct scrub_sect *ss = sect;
	struct scrub_conf *sc;

	(void)c;
	*fconf = NULL;
	if (ss->n_scrub == 0 && !ss->stack_traces)
		return 0;          /* nothing to do: off */
	if ((sc = calloc(1, sizeof(*sc))) == NULL) {
		conf_err(ctx, NULL, "errors: out of memory");
		return -1;
	}
	sc->s = ss;
	sc->stack_traces = ss->stack_traces;
	*fconf = sc;
	return 0;
}

static void
scrub_conf_free(void *fconf)
{
	free(fconf);
}

/* The generic body in place of the upstream's. */
static void
replace(struct req *r)
{
	struct sbuf b = { 0 };
	const char *msg = req_status_message(r->status);

	sbuf_adds(&b, "{\"error\":\"");
	sbuf_add_json(&b, msg, strlen(msg));
	sbuf_adds(&b, "\",\"requestId\":\"");
	sbuf_add_json(&b, r->id, strlen(r->id));
	sbuf_adds(&b, "\"}");
	if (b.oom) {
		/* Never let the original through: an empty JSON body still hides it. */
		req_replace_body(r, "application/json", "{}", 2);
	} else {
		req_replace_body(r, "application/json", b.p, b.len);
	}
	sbuf_fini(&b);
}

/* Cuts n back so that p[0..n) does not end inside a UTF-8 sequence. */
static size_t
utf8_cut(const char *p, size_t n)
{
	size_t k = n, back = 0;

	while (k > 0 && back < 4 && ((unsigned char)p[k - 1] & 0xC0) == 0x80) {
		k--;
		back++;
	}
	if (k > 0 && (unsigned char)p[k - 1] >= 0xC0) {
		unsigned char lead = (unsigned char)p[k - 1];
		size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
		if (back + 1 < need)
			return k - 1;     /* incomplete sequence at the end: drop it */
	}
	return n;
}

/* The scrubbed_error event: status, why, and the first 4 KiB of what the upstream sent. */
static void
log_event(struct req *r, const char *reason, const char *p, size_t n, int truncated)
{
	struct sbuf b = { 0 };

	if (n > SCRUB_EXCERPT_MAX) {
		n = SCRUB_EXCERPT_MAX;
		truncated = 1;
	}
	if (truncated)
		n = utf8_cut(p, n);
	sbuf_printf(&b, ",\"status\":%d,\"reason\":\"%s\"", r->status, reason);
	/* the app's words without its secrets; a cut excerpt may end inside one */
	if (truncated)
		log_kv_excerpt(&b, "excerpt", p, n);
	else
		log_kv(&b, "excerpt", p, n);
	sbuf_printf(&b, ",\"truncated\":%s", truncated ? "true" : "false");
	req_security_event(r, "scrubbed_error", b.oom ? NULL : b.p);
	sbuf_fini(&b);
	METRIC_INC(filter_metrics(r), scrubbed);
}

/* Whether the upstream body is in a coding the detector cannot read (gzip, br...). */
static int
encoded(const struct req *r)
{
	const struct hdr *h = hdrs_get(&r->out, "content-encoding");

	return h != NULL && ascii_casecmp_n(h->val, h->vlen, "identity", 8) != 0;
}

static enum verdict
scrub_on_response(struct req *r, const void *fconf, void *state)
{
	const struct scrub_conf *sc = fconf;
	struct scrub_state *st = state;
	int head = r->h.method == HTTP_HEAD, empty;
	size_t len;
	const char *p;

	if (r->edge) {
		st->phase = SP_DONE;
		return V_CONTINUE;
	}
	switch (st->phase) {
	case SP_NONE:
		break;
	case SP_EXCERPT:
		/* second call: the body is already replaced; log what the upstream said */
		st->phase = SP_DONE;
		len = r->resp_peek ? evbuffer_get_length(r->resp_peek) : 0;
		p = len ? (const char *)evbuffer_pullup(r->resp_peek,
		    (ev_ssize_t)MIN(len, (size_t)SCRUB_EXCERPT_MAX)) : "";
		if (p == NULL) {
			p = "";
			len = 0;
		}
		log_event(r, "status", p, len, len > SCRUB_EXCERPT_MAX ||
		    !(r->up_done_early || (r->rh.has_cl && r->rh.content_length <= len)));
		return V_CONTINUE;
	case SP_INSPECT:
		st->phase = SP_DONE;
		if (r->resp_peek == NULL)
			return V_CONTINUE;
		len = evbuffer_get_length(r->resp_peek);
		/* complete: the upstream finished, or all Content-Length bytes are here */
		if (len > SCRUB_INSPECT_MAX ||
		    !(r->up_done_early || (r->rh.has_cl && r->rh.content_length <= len)))
			return V_CONTINUE;      /* larger than the window: passes untouched */
		p = (const char *)evbuffer_pullup(r->resp_peek, -1);
		if (p == NULL || !scrub_has_stack_trace(p, len))
			return V_CONTINUE;
		log_event(r, "stack_trace", p, len, 0);
		replace(r);
		return V_CONTINUE;
	case SP_DONE:
	default:
		return V_CONTINUE;
	}
	st->phase = SP_DONE;
	empty = head || http_status_no_body(r->status) ||
	    (r->rh.has_cl && r->rh.content_length == 0);
	if (scrub_listed(sc->s, r->status)) {
		/* Replaced now, whatever happens next; the wait is only for the log's excerpt. */
		replace(r);
		if (empty) {
			log_event(r, "status", "", 0, 0);
			return V_CONTINUE;
		}
		st->phase = SP_EXCERPT;
		req_want_resp_body(r, SCRUB_EXCERPT_MAX);
		return V_SUSPEND;
	}
	if (!sc->stack_traces || r->status < 400 || r->status > 499 || empty || encoded(r))
		return V_CONTINUE;
	if (r->rh.has_cl && r->rh.content_length > SCRUB_INSPECT_MAX)
		return V_CONTINUE;          /* larger than the window: not inspected */
	st->phase = SP_INSPECT;
	req_want_resp_body(r, SCRUB_INSPECT_MAX);
	return V_SUSPEND;
}

const struct filter scrub_filter = {
	.name = "scrub", .state_size = sizeof(struct scrub_state),
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct scrub_sect), .conf_lint = scrub_lint,
	.conf_init = scrub_conf_init, .conf_free = scrub_conf_free,
	/* request */
	.on_response = scrub_on_response,
};
