/* SPDX-License-Identifier: MIT
 * hsts — the first filter. On the plain listener it answers everything itself: 301 to the
 * https URL (Host without its port, the HTTPS listener's port unless 443, the target exactly
 * as received), except /healthz which visor answers 200. On HTTPS answers it sets
 * Strict-Transport-Security (replacing any upstream value). Never touches the upstream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/filter.h"
#include "http/req.h"

struct hsts_conf {
	char   *value;
	size_t  len;
};

static int
hsts_conf_init(struct conf_ctx *ctx, struct conf *c, void **fconf)
{
	struct hsts_conf *h = calloc(1, sizeof(*h));
	char buf[128];

	(void)ctx;
	if (h == NULL)
		return -1;
	snprintf(buf, sizeof(buf), "max-age=%lld%s%s", (long long)c->hsts.max_age,
	    c->hsts.include_subdomains ? "; includeSubDomains" : "",
	    c->hsts.preload ? "; preload" : "");
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
hsts_conf_free(void *p)
{
	struct hsts_conf *h = p;

	if (h)
		free(h->value);
	free(h);
}

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
hsts_on_request(struct req *r, const void *fconf, void *state)
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
hsts_on_response(struct req *r, const void *fconf, void *state)
{
	const struct hsts_conf *h = fconf;

	(void)state;
	if (r->tls)
		hdrs_put(&r->a, &r->out, "Strict-Transport-Security", h->value, h->len);
	else
		hdrs_del(&r->out, "strict-transport-security");
	return V_CONTINUE;
}

const struct filter hsts_filter = {
	.name = "hsts",
	.always = 1,
	.conf_init = hsts_conf_init,
	.conf_free = hsts_conf_free,
	.on_request = hsts_on_request,
	.on_response = hsts_on_response,
};
