/* SPDX-License-Identifier: MIT
 * route — normalisation (RFC 3986 §6.2.2 syntax-based, restricted to what cannot change
 * meaning: unreserved %XX decoded, hex upper-cased, "//" merged, dot-segments removed) and
 * first-match prefix routing with per-route filter chains.
 */
#include "http/route.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int
unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

long
route_normalize(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, o = 0, seg;
	char *tmp;

	if (len == 0 || in[0] != '/')
		return -1;
	/* Pass 1: percent-decoding of unreserved characters into out. */
	while (i < len) {
		if (in[i] == '%') {
			int h, l;
			if (i + 2 >= len)
				return -1;
			h = hex_digit(in[i + 1]);
			l = hex_digit(in[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			if (unreserved(h * 16 + l)) {
				out[o++] = (char)(h * 16 + l);
			} else {
				out[o++] = '%';
				out[o++] = hex[h];
				out[o++] = hex[l];
			}
			i += 3;
			continue;
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
	/* Pass 2: segments, in place (the output never outruns the input). */
	tmp = out;
	len = o;
	i = 0;
	o = 0;
	while (i < len) {
		/* here tmp[i] == '/' */
		while (i < len && tmp[i] == '/')
			i++;
		seg = i;
		while (i < len && tmp[i] != '/')
			i++;
		if (i - seg == 1 && tmp[seg] == '.') {
			if (i == len) {
				out[o++] = '/';
			}
			continue;
		}
		if (i - seg == 2 && tmp[seg] == '.' && tmp[seg + 1] == '.') {
			if (o == 0)
				return -1;            /* climbs above "/" */
			while (o > 0 && out[o - 1] != '/')
				o--;
			/* o now sits after the parent's '/': remove that slash too, it is re-added */
			if (o > 0)
				o--;
			if (i == len)
				out[o++] = '/';
			continue;
		}
		if (i - seg == 0) {
			/* trailing slash (or path "/") */
			out[o++] = '/';
			continue;
		}
		out[o++] = '/';
		memmove(out + o, tmp + seg, i - seg);
		o += i - seg;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return (long)o;
}

static int
method_match(const struct conf_route *cr, const char *method)
{
	size_t i;

	if (cr->methods.n == 0)
		return 1;
	for (i = 0; i < cr->methods.n; i++) {
		if (strcmp(cr->methods.v[i], method) == 0)
			return 1;
		if (strcmp(method, "HEAD") == 0 && strcmp(cr->methods.v[i], "GET") == 0)
			return 1;
	}
	return 0;
}

const struct route_ent *
route_match(const struct route_rt *rt, const char *path, size_t len, const char *method)
{
	size_t i, pl;

	for (i = 0; i < rt->n; i++) {
		const struct conf_route *cr = rt->v[i].cr;
		pl = strlen(cr->path);
		if (!method_match(cr, method))
			continue;
		if (pl <= len && ascii_casecmp_n(path, pl, cr->path, pl) == 0)
			return &rt->v[i];
		/* "/api/" also covers "/api": Express (non-strict routing) serves both with the
		 * same router, so the bare path must not fall through to a laxer rule. */
		if (pl > 1 && cr->path[pl - 1] == '/' && len == pl - 1 &&
		    ascii_casecmp_n(path, len, cr->path, len) == 0)
			return &rt->v[i];
	}
	return NULL;
}

static void
chain_build(struct chain *ch, const struct conf *c, const struct conf_route *cr, int always_only)
{
	size_t i;

	ch->n = 0;
	for (i = 0; filter_table[i]; i++) {
		const struct filter *f = filter_table[i];
		if (always_only && !f->always)
			continue;
		if (f->conf_init && c->fconf[i] == NULL)
			continue;           /* disabled in this generation */
		if (f->route_wants && !f->route_wants(c, cr, cr != NULL ? cr->keys[i] : NULL,
		    c->fconf[i]))
			continue;
		ch->ids[ch->n++] = (unsigned char)i;
	}
}

/* Lets each filter set the route's core settings from its keys (body.max_size). */
static void
route_init(const struct conf *c, struct route_ent *re)
{
	size_t i;

	for (i = 0; filter_table[i]; i++)
		if (filter_table[i]->route_init != NULL)
			filter_table[i]->route_init(re, re->cr->keys[i], c->fconf[i]);
}

int
route_build(struct conf_ctx *ctx, struct conf *c)
{
	struct route_rt *rt;
	size_t i;

	rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		goto oom;
	rt->n = c->routes.n;
	rt->v = calloc(rt->n ? rt->n : 1, sizeof(*rt->v));
	if (rt->v == NULL)
		goto oom;
	for (i = 0; i < rt->n; i++) {
		rt->v[i].cr = &c->routes.v[i];
		rt->v[i].idx = i;
		chain_build(&rt->v[i].chain, c, &c->routes.v[i], 0);
		route_init(c, &rt->v[i]);
	}
	chain_build(&rt->base, c, NULL, 1);
	/* The plain listener only redirects: the always-on filters (hsts makes the 301). */
	rt->plain = rt->base;
	/* Unrouted requests still meet probes and CORS, then get 404. */
	chain_build(&rt->noroute, c, NULL, 0);
	c->route_rt = rt;
	return 0;
oom:
	route_rt_free(rt);
	conf_err(ctx, NULL, "out of memory building routes");
	return -1;
}

void
route_rt_free(struct route_rt *rt)
{
	if (rt == NULL)
		return;
	free(rt->v);
	free(rt);
}
