/* SPDX-License-Identifier: MIT
 * hdrs — security headers (helmet's defaults merged key by key with `headers`) on every
 * answer, proxied or made by visor; one value each, replacing the upstream's. Headers set
 * to "" are left to the upstream. `remove_headers` are stripped from upstream answers.
 * Runs on every request, so the work is one pass over the answer's headers with lengths
 * precomputed per generation, then appends that copy nothing (values live in the conf).
 */
#include <stdlib.h>
#include <string.h>

#include "http/filter.h"
#include "http/req.h"

struct hname {
	const char *s;
	size_t      n;
};

struct hdrs_conf {
	struct hname *set;       /* names visor sets */
	const char  **val;
	size_t       *vlen;
	size_t        nset;
	struct hname *rm;        /* names stripped from upstream answers */
	size_t        nrm;
};

static void
hdrs_conf_free(void *p)
{
	struct hdrs_conf *h = p;

	if (h == NULL)
		return;
	free(h->set);
	free(h->val);
	free(h->vlen);
	free(h->rm);
	free(h);
}

static int
hdrs_conf_init(struct conf_ctx *ctx, struct conf *c, void **fconf)
{
	struct hdrs_conf *h;
	size_t i;

	(void)ctx;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -1;
	h->nset = c->headers.n;
	h->nrm = c->remove_headers.n;
	h->set = calloc(h->nset + 1, sizeof(*h->set));
	h->val = calloc(h->nset + 1, sizeof(*h->val));
	h->vlen = calloc(h->nset + 1, sizeof(*h->vlen));
	h->rm = calloc(h->nrm + 1, sizeof(*h->rm));
	if (!h->set || !h->val || !h->vlen || !h->rm) {
		hdrs_conf_free(h);
		return -1;
	}
	for (i = 0; i < h->nset; i++) {
		h->set[i].s = c->headers.v[i].key;
		h->set[i].n = strlen(c->headers.v[i].key);
		h->val[i] = c->headers.v[i].val;
		h->vlen[i] = strlen(c->headers.v[i].val);
	}
	for (i = 0; i < h->nrm; i++) {
		h->rm[i].s = c->remove_headers.v[i];
		h->rm[i].n = strlen(c->remove_headers.v[i]);
	}
	*fconf = h;
	return 0;
}

static int
in_list(const struct hname *l, size_t n, const char *name, size_t nl)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i].n == nl && ascii_casecmp_n(l[i].s, l[i].n, name, nl) == 0)
			return 1;
	return 0;
}

static enum verdict
hdrs_on_response(struct req *r, const void *fconf, void *state)
{
	const struct hdrs_conf *h = fconf;
	struct hdrs *o = &r->out;
	uint32_t i, j = 0;
	size_t k;

	(void)state;
	for (i = 0; i < o->n; i++) {
		const struct hdr *e = &o->v[i];
		if (in_list(h->set, h->nset, e->name, e->nlen))
			continue;           /* replaced below: one value, never two */
		if (!r->edge && in_list(h->rm, h->nrm, e->name, e->nlen))
			continue;
		if (i != j)
			o->v[j] = o->v[i];
		j++;
	}
	o->n = j;
	for (k = 0; k < h->nset; k++)
		if (hdrs_add(&r->a, o, h->set[k].s, h->set[k].n, h->val[k], h->vlen[k]) < 0)
			return V_ERROR;
	return V_CONTINUE;
}

const struct filter hdrs_filter = {
	.name = "hdrs",
	.always = 1,
	.conf_init = hdrs_conf_init,
	.conf_free = hdrs_conf_free,
	.on_response = hdrs_on_response,
};
