/* SPDX-License-Identifier: MIT
 * body — edge checks of request bodies on routes with a `body:` rule (docs/body-checks.md):
 *
 *   on_request       a request with a body must be `application/json` (or `application/<x>+json`,
 *                    charset utf-8 if one is given, no Content-Encoding) or it gets 415 before
 *                    any body byte is read; then the whole body is asked for, up to the route's
 *                    body.max_size (the core answers 413 past it, by Content-Length or while
 *                    reading). A POST/PUT/PATCH without a body on a route whose schema requires
 *                    members gets 400 "Invalid body: / is required"; other bodiless requests pass.
 *   on_request_body  the buffered body must be one strict JSON text (jschema_load: UTF-8, no
 *                    duplicate keys, nesting <= 64, no __proto__/constructor/prototype keys)
 *                    and satisfy the route's schema; else 400 naming the JSON pointer and the
 *                    rule, never a value. A body that passes is forwarded byte for byte (the core
 *                    sends r->body with its Content-Length).
 *
 * Schemas are compiled once per configuration generation (conf_init, main thread) and shared
 * read-only by the workers; a check allocates only from jansson (the parsed body, freed before
 * the hook returns, so a worker holds at most one parsed body at a time) and the request arena.
 * Owns each route's `body` keys; sets the route's core body limit (route_init).
 */
#include "filters/body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/schema.h"
#include "http/filter.h"
#include "lib/jschema.h"
#include "core/log.h"
#include "http/req.h"
#include "http/route.h"

/* ---- configuration: each route's `body` ------------------------------------------------- */

static const struct ckey k_body[] = {
	{ .name = "schema", .type = KT_STR, .off = offsetof(struct body_route, body_schema),
	  .doc = "JSON Schema file the body must satisfy (none: JSON well-formedness and the "
	    "`__proto__`/`constructor`/`prototype` checks only)." },
	{ .name = "max_size", .type = KT_SIZE, .off = offsetof(struct body_route, body_max_size),
	  .def = "0", .min = 0, .max = 64LL << 30,
	  .doc = "Largest body for this route; 0 = client.max_body_size." },
};
static const struct csect s_body = CONF_SECT(k_body, NULL);

static const struct ckey k_route[] = {
	{ .name = "body", .type = KT_SECTION, .arg = &s_body, .flags = CK_OPTIONAL,
	  .en_off = offsetof(struct body_route, has_body),
	  .doc = "Edge body checks: JSON only (415 otherwise), size, optional schema." },
};
static const struct csect s_route = CONF_SECT(k_route, NULL);

/* ---- the built configuration ------------------------------------------------------------ */

struct body_rule {
	int             on;          /* the route has a body rule */
	struct jschema *schema;      /* NULL: well-formedness and forbidden keys only */
};

struct body_conf {
	size_t            n;         /* conf.routes.n */
	struct body_rule *v;         /* indexed like conf.routes.v */
};

static void
body_conf_free(void *p)
{
	struct body_conf *bc = p;
	size_t i;

	if (bc == NULL)
		return;
	for (i = 0; i < bc->n; i++)
		jschema_free(bc->v[i].schema);
	free(bc->v);
	free(bc);
}

/* Reads and compiles routes[i].body.schema; errors at the YAML value, with the schema file's
 * own position in the message. 0 or -1. */
static int
load_schema(struct conf_ctx *ctx, const struct conf *c, size_t i, const char *path,
    struct jschema **out)
{
	struct jschema_cerr ce;
	const struct ynode *at;
	char key[64];
	char *text;
	size_t len;

	snprintf(key, sizeof(key), "routes.%zu.body.schema", i);
	at = ynode_path(c->tree, key);
	text = file_read_all(path, JSCHEMA_MAX_SCHEMA_SIZE, &len);
	if (text == NULL) {
		if (errno == EFBIG)
			conf_err(ctx, at, "routes[%zu].body.schema: %s is larger than 1 MiB", i, path);
		else
			conf_err(ctx, at, "routes[%zu].body.schema: cannot read %s: %s", i, path,
			    strerror(errno));
		return -1;
	}
	*out = jschema_compile(text, len, &ce);
	free(text);
	if (*out != NULL)
		return 0;
	if (ce.line > 0)
		conf_err(ctx, at, "routes[%zu].body.schema: %s:%d:%d: %s%s%s", i, path, ce.line,
		    ce.col, ce.msg, ce.pointer[0] ? " at #" : "", ce.pointer);
	else
		conf_err(ctx, at, "routes[%zu].body.schema: %s: %s%s%s", i, path, ce.msg,
		    ce.pointer[0] ? " at #" : "", ce.pointer);
	return -1;
}

static int
body_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct body_route *br;
	struct body_conf *bc;
	size_t i, id = filter_id(&body_filter);
	int rc = 0, any = 0;

	(void)sect;
	*fconf = NULL;
	for (i = 0; i < c->routes.n; i++)
		any |= ((const struct body_route *)conf_route_keys(&c->routes.v[i], id))->has_body;
	if (!any)
		return 0;                    /* no body rule anywhere: the filter is off */
	bc = calloc(1, sizeof(*bc));
	if (bc == NULL || (bc->v = calloc(c->routes.n, sizeof(*bc->v))) == NULL) {
		free(bc);
		conf_err(ctx, NULL, "out of memory");
		return -1;
	}
	bc->n = c->routes.n;
	for (i = 0; i < c->routes.n; i++) {
		br = conf_route_keys(&c->routes.v[i], id);
		if (!br->has_body)
			continue;
		bc->v[i].on = 1;
		if (br->body_schema != NULL &&
		    load_schema(ctx, c, i, br->body_schema, &bc->v[i].schema) < 0)
			rc = -1;              /* keep going: report every route's schema */
	}
	if (rc < 0) {
		body_conf_free(bc);
		return -1;
	}
	*fconf = bc;
	return 0;
}

static int
body_route_wants(const struct conf *c, const struct conf_route *cr, const void *rkeys,
    const void *fconf)
{
	const struct body_route *br = rkeys;

	(void)c;
	(void)fconf;
	return cr != NULL && br->has_body;
}

/* A route's body.max_size can only lower client.max_body_size: the core applies it (req.c)
 * when the route is matched, before any body byte is read. */
static void
body_route_init(struct route_ent *re, const void *rkeys, const void *fconf)
{
	const struct body_route *br = rkeys;

	(void)fconf;
	re->body_max = br->has_body && br->body_max_size > 0 ? (uint64_t)br->body_max_size : 0;
}

/* ---- the request ------------------------------------------------------------------------ */

static const struct body_rule *
route_rule(const struct req *r, const void *fconf)
{
	const struct body_conf *bc = fconf;

	if (bc == NULL || r->route == NULL || r->route->idx >= bc->n || !bc->v[r->route->idx].on)
		return NULL;
	return &bc->v[r->route->idx];
}

static int
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether a Content-Type value names JSON: application/json or application/<x>+json, any
 * case, parameters allowed but a charset must be utf-8 (RFC 8259 §8.1: JSON is UTF-8). */
static int
ctype_is_json(const char *v, size_t n)
{
	size_t i = 0, ts, te, ss, se;

	while (i < n && is_ows(v[i]))
		i++;
	ts = i;
	while (i < n && is_tchar(v[i]))
		i++;
	te = i;
	if (i >= n || v[i] != '/')
		return 0;
	ss = ++i;
	while (i < n && is_tchar(v[i]))
		i++;
	se = i;
	if (ascii_casecmp_n(v + ts, te - ts, "application", 11) != 0 || se == ss)
		return 0;
	if (ascii_casecmp_n(v + ss, se - ss, "json", 4) != 0 &&
	    !(se - ss > 5 && ascii_casecmp_n(v + se - 5, 5, "+json", 5) == 0))
		return 0;
	/* parameters: *( OWS ";" OWS [ name "=" value ] ) */
	for (;;) {
		size_t ns, ne, vs, ve;
		while (i < n && is_ows(v[i]))
			i++;
		if (i == n)
			return 1;
		if (v[i] != ';')
			return 0;
		i++;
		while (i < n && is_ows(v[i]))
			i++;
		if (i == n || v[i] == ';')
			continue;
		ns = i;
		while (i < n && is_tchar(v[i]))
			i++;
		ne = i;
		if (ne == ns || i >= n || v[i] != '=')
			return 0;
		vs = ++i;
		if (i < n && v[i] == '"') {
			vs = ++i;
			while (i < n && v[i] != '"') {
				if (v[i] == '\\')
					i++;
				i++;
			}
			if (i >= n)
				return 0;
			ve = i++;
		} else {
			while (i < n && is_tchar(v[i]))
				i++;
			ve = i;
			if (ve == vs)
				return 0;
		}
		/* a quoted value is compared as written: "utf-8" has nothing to unescape */
		if (ascii_casecmp_n(v + ns, ne - ns, "charset", 7) == 0 &&
		    ascii_casecmp_n(v + vs, ve - vs, "utf-8", 5) != 0)
			return 0;
	}
}

static int
method_carries_body(const struct req *r)
{
	return strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
	    strcmp(r->method, "PATCH") == 0;
}

/* The answer to a request that has no body (or an empty one). */
static enum verdict
no_body(struct req *r, const struct body_rule *br)
{
	if (br->schema != NULL && method_carries_body(r) && jschema_root_requires(br->schema)) {
		req_respond(r, 400, "Invalid body: / is required");
		r->log_reason = "body: empty";
		return V_RESPOND;
	}
	return V_CONTINUE;
}

static enum verdict
body_on_request(struct req *r, const void *fconf, void *state)
{
	const struct body_rule *br = route_rule(r, fconf);
	struct hdr *h;

	(void)state;
	if (br == NULL)
		return V_CONTINUE;
	if (!r->has_body)
		return no_body(r, br);
	/* one Content-Type, naming JSON; nothing else could be checked */
	if (hdrs_count(&r->h.hdrs, "content-type") != 1 ||
	    (h = hdrs_get(&r->h.hdrs, "content-type")) == NULL || !ctype_is_json(h->val, h->vlen)) {
		req_respond(r, 415, NULL);
		r->log_reason = "body: not application/json";
		return V_RESPOND;
	}
	/* a compressed body cannot be checked (RFC 9110 §15.5.16: 415 for a content coding);
	 * more than one Content-Encoding line is refused whatever they say */
	if ((h = hdrs_get(&r->h.hdrs, "content-encoding")) != NULL &&
	    (hdrs_count(&r->h.hdrs, "content-encoding") != 1 ||
	    ascii_casecmp_n(h->val, h->vlen, "identity", 8) != 0)) {
		req_respond(r, 415, NULL);
		r->log_reason = "body: content-encoding";
		return V_RESPOND;
	}
	req_want_body(r, r->body_max);
	return V_CONTINUE;
}

static enum verdict
body_on_request_body(struct req *r, const void *fconf, void *state)
{
	const struct body_rule *br = route_rule(r, fconf);
	struct jschema_result res;
	enum jschema_status st;
	const char *p;
	size_t len;

	(void)state;
	if (br == NULL || !r->has_body)
		return V_CONTINUE;
	len = r->body ? evbuffer_get_length(r->body) : 0;
	if (len == 0)
		return no_body(r, br);        /* chunked with no data */
	p = (const char *)evbuffer_pullup(r->body, -1);
	if (p == NULL)
		return V_ERROR;
	st = jschema_check(br->schema, p, len, &r->a, &res);
	if (st == JSCHEMA_OK)
		return V_CONTINUE;
	if (st == JSCHEMA_NOMEM)
		return V_ERROR;
	req_respond(r, 400, res.msg);
	r->log_reason = arena_printf(&r->a, "body: %s", res.rule ? res.rule : "invalid");
	if (r->log_reason == NULL)
		r->log_reason = "body";
	if (res.rule && strcmp(res.rule, "forbidden-key") == 0) {
		struct sbuf x = { 0 };
		sbuf_addc(&x, ',');
		sbuf_json_kv(&x, "pointer", res.pointer, strlen(res.pointer));
		if (!x.oom)
			req_security_event(r, "prototype_pollution", sbuf_cstr(&x));
		sbuf_fini(&x);
	}
	return V_RESPOND;
}

const struct filter body_filter = {
	.name = "body",
	/* configuration */
	.route_keys = &s_route, .route_size = sizeof(struct body_route), .conf_init = body_conf_init,
	.conf_free = body_conf_free, .route_wants = body_route_wants, .route_init = body_route_init,
	/* request */
	.on_request = body_on_request, .on_request_body = body_on_request_body,
};
