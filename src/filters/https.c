/* SPDX-License-Identifier: MIT
 * hsts — the first filter. On the plain listener it answers everything itself: 301 to the
 * https URL (Host without its port, the HTTPS listener's port unless 443, the target exactly
 * as received), except /healthz which visor answers 200. On HTTPS answers it sets
 * Strict-Transport-Security (replacing any upstream value). Never touches the upstream.
 * Owns the `hsts` section (its keys, and the lint's HSTS rules).
 */
#include "filters/https.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/lint.h"
#include "conf/schema.h"
#include "http/filter.h"
#include "http/req.h"

#define HSTS_MIN_AGE     31536000   /* one year, what the preload list requires */

/* ---- configuration ------------------------------------------------------------------------ */

static const struct ckey k_hsts[] = {
	{ .name = "max_age", .type = KT_DUR_S, .off = offsetof(struct hsts_sect, max_age),
	  .def = "31536000", .min = 0, .max = INT64_MAX,
	  .doc = "Strict-Transport-Security max-age, in seconds (or a duration such as 365d)." },
	{ .name = "include_subdomains", .type = KT_BOOL,
	  .off = offsetof(struct hsts_sect, include_subdomains),
	  .def = "true", .doc = "Adds includeSubDomains." },
	{ .name = "preload", .type = KT_BOOL, .off = offsetof(struct hsts_sect, preload),
	  .def = "false", .doc = "Adds preload (only once the domain qualifies)." },
};
static const struct csect s_hsts = CONF_SECT(k_hsts, NULL);

static const struct ckey k_top[] = {
	{ .name = "hsts", .type = KT_SECTION, .arg = &s_hsts, .flags = CK_OFF,
	  .en_off = offsetof(struct hsts_sect, off),
	  .doc = "Strict-Transport-Security on every HTTPS answer; off: none (the plain "
	  "listener still redirects)." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

static void
https_lint(struct lint *l, const void *sect)
{
	const struct hsts_sect *hs = sect;

	if (hs->off)
		return;
	/* A short max_age is how a rollout starts (and 0 is how HSTS is withdrawn): only the
	 * preload list has a floor. */
	if (hs->preload && hs->max_age < HSTS_MIN_AGE)
		conf_warn(l->ctx, lint_first(lint_node(l, "hsts.max_age"), lint_section(l, "hsts")),
		    "HSTS max_age is %lld s; the preload list (hsts.preload: true) needs at least "
		    "one year — set hsts.max_age: 31536000", (long long)hs->max_age);
	if (hs->preload && !hs->include_subdomains)
		conf_warn(l->ctx, lint_first(lint_node(l, "hsts.preload"), lint_section(l, "hsts")),
		    "hsts.preload is true without include_subdomains; the preload list "
		    "(hstspreload.org) refuses such a header — set hsts.include_subdomains: true");
}

struct https_conf {
	char   *value;                   /* NULL: hsts: off */
	size_t  len;
};

static int
https_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct hsts_sect *hs = sect;
	struct https_conf *h = calloc(1, sizeof(*h));
	char buf[128];

	(void)ctx;
	(void)c;
	if (h == NULL)
		return -1;
	if (hs->off) {                   /* no header of visor's; the app's own passes */
		*fconf = h;
		return 0;
	}
	snprintf(buf, sizeof(buf), "max-age=%lld%s%s", (long long)hs->max_age,
	    hs->include_subdomains ? "; includeSubDomains" : "",
	    hs->preload ? "; preload" : "");
	h->value = strdup(buf);
	if (h->value == NULL) {
		free(h);
		return -1;
	}
	h->len = strlen(buf);
	*fconf = h;
	return 0;
}

static void
https_conf_free(void *p)
{
	struct https_conf *h = p;

	if (h)
		free(h->value);
	free(h);
}

/* ---- the request ------------------------------------------------------------------------- */

/* The Host header without its port ("[::1]:8080" → "[::1]"). Host was validated. */
static size_t
host_only(const char *h, size_t n)
{
	size_t i;

	if (n && h[0] == '[') {
		for (i = 0; i < n; i++)
			if (h[i] == ']')
				return i + 1;
		return n;
	}
	for (i = 0; i < n; i++)
		if (h[i] == ':')
			return i;
	return n;
}

static enum verdict
https_on_request(struct req *r, const void *fconf, void *state)
{
	const char *host;
	size_t hl;
	char *loc;

	(void)fconf;
	(void)state;
	if (r->tls)
		return V_CONTINUE;
	if (strcmp(r->path, "/healthz") == 0) {
		req_respond_body(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
		r->log_reason = "healthz";
		return V_RESPOND;
	}
	host = req_header(r, "host", &hl);
	hl = host_only(host, hl);
	if (req_https_port(r) == 443)
		loc = arena_printf(&r->a, "https://%.*s%.*s", (int)hl, host, (int)r->h.target_len,
		    r->h.target);
	else
		loc = arena_printf(&r->a, "https://%.*s:%d%.*s", (int)hl, host, req_https_port(r),
		    (int)r->h.target_len, r->h.target);
	if (loc == NULL)
		return V_ERROR;
	req_respond(r, 301, NULL);
	hdrs_adds(&r->a, &r->out, "Location", loc);
	r->log_reason = "https redirect";
	return V_RESPOND;
}

static enum verdict
https_on_response(struct req *r, const void *fconf, void *state)
{
	const struct https_conf *h = fconf;

	(void)state;
	if (r->tls && h->value != NULL)
		hdrs_put(&r->a, &r->out, "Strict-Transport-Security", h->value, h->len);
	else if (!r->tls)
		hdrs_del(&r->out, "strict-transport-security");
	return V_CONTINUE;
}

const struct filter https_filter = {
	.name = "hsts", .always = 1,
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct hsts_sect), .conf_lint = https_lint,
	.conf_init = https_conf_init, .conf_free = https_conf_free,
	/* request */
	.on_request = https_on_request, .on_response = https_on_response,
};
