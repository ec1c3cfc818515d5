/* SPDX-License-Identifier: MIT
 * probe — scanner probes and bans (docs/rate-limits.md, probes).
 *
 * Runs on every HTTPS request, routed or not, before CORS and JWT: a banned client gets 403
 * (security event "banned") whatever the path; a request whose normalised path starts with
 * one of `probes.paths` (ASCII case-insensitively, like routes) gets 404 (security event
 * "probe") and is counted against its client — the same client key as rate limits (IPv6 by
 * /56). `ban_after` probes within 10 minutes ban the client for `ban_for`.
 *
 * Cost for normal requests: the ban lookup in the process-wide memory store (an atomic read
 * when nothing is banned, else one shard lookup) — never a Redis round trip. Bans decided by
 * any instance reach this one through store.c's once-a-second poll of visor:bans; a probe
 * waits for its own count to be recorded, so the request after the banning probe is already
 * refused. Probes are counted in memory while Redis is away, whatever on_error says.
 * Owns the `probes` section; tells the store whether to poll bans (worker_conf).
 */
#include "filters/probe.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "conf/schema.h"
#include "http/filter.h"
#include "core/log.h"
#include "http/req.h"
#include "store/store.h"
#include "core/metrics.h"

/* ---- configuration ------------------------------------------------------------------------ */

static void
post_probes(struct cparse *p, const struct ynode *map, const struct ynode *where)
{
	struct probe_sect *ps = p->base;

	(void)map;
	(void)where;
	ps->enabled = ps->paths.n > 0;
}

static const struct ckey k_probes[] = {
	{ .name = "paths", .type = KT_STRS, .off = offsetof(struct probe_sect, paths),
	  .flags = CK_URLPATH,
	  .def = "[/.env, /.git/, /wp-admin, /wp-login.php, /phpmyadmin, /server-status]",
	  .tname = "list of path prefixes",
	  .doc = "Scanner paths answered 404 and counted; [] turns probe detection off." },
	{ .name = "ban_after", .type = KT_INT, .off = offsetof(struct probe_sect, ban_after),
	  .def = "10", .min = 1, .max = 1000000,
	  .doc = "Probes per IP within 10 minutes before a ban." },
	{ .name = "ban_for", .type = KT_DUR, .off = offsetof(struct probe_sect, ban_for_ms),
	  .def = "1h", .min = 1000, .max = 30LL * 86400000,
	  .doc = "Ban length (403 to every request)." },
};
static const struct csect s_probes = CONF_SECT(k_probes, post_probes);

static const struct ckey k_top[] = {
	{ .name = "probes", .type = KT_SECTION, .arg = &s_probes,
	  .doc = "Scanner detection and bans." },
};
static const struct csect s_top = CONF_SECT(k_top, NULL);

struct pr_conf {
	char   **paths;
	size_t  *lens;
	size_t   n;
	int64_t  ban_after;
	int64_t  ban_for_ms;
};

struct pr_state {
	struct filter_wait  w;              /* first: filter_wait_abort casts to it */
	char             ipk[INET6_ADDRSTRLEN + 8];
	size_t           ipl;
};

static void
pr_conf_free(void *p)
{
	struct pr_conf *pc = p;

	if (pc == NULL)
		return;
	strv_free(pc->paths, pc->n);
	free(pc->lens);
	free(pc);
}

static int
pr_conf_init(struct conf_ctx *ctx, struct conf *c, const void *sect, void **fconf)
{
	const struct probe_sect *ps = sect;
	struct pr_conf *pc;
	size_t i;

	(void)c;
	*fconf = NULL;
	if (!ps->enabled || ps->paths.n == 0)
		return 0;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		goto oom;
	pc->paths = calloc(ps->paths.n, sizeof(*pc->paths));
	pc->lens = calloc(ps->paths.n, sizeof(*pc->lens));
	if (pc->paths == NULL || pc->lens == NULL)
		goto oom;
	for (i = 0; i < ps->paths.n; i++) {
		if ((pc->paths[i] = strdup(ps->paths.v[i])) == NULL)
			goto oom;
		pc->lens[i] = strlen(pc->paths[i]);
		pc->n++;
	}
	pc->ban_after = ps->ban_after > 0 ? ps->ban_after : 10;
	pc->ban_for_ms = ps->ban_for_ms > 0 ? ps->ban_for_ms : 3600000;
	*fconf = pc;
	return 0;
oom:
	return conf_build_oom(ctx, pr_conf_free, pc, "probes");
}

/* The store polls bans decided elsewhere only while probes are on (store.c). */
static void
pr_worker_conf(struct worker *w, void *wstate, const struct conf *c)
{
	const struct probe_sect *ps = conf_sect(c, filter_id(&probe_filter));

	(void)wstate;
	store_probes_on(w, ps != NULL && ps->enabled);
}

/* ---- the request ------------------------------------------------------------------------- */

static int
pr_is_probe(const struct pr_conf *pc, const char *path, size_t len)
{
	size_t i;

	for (i = 0; i < pc->n; i++)
		if (pc->lens[i] <= len && ascii_casecmp_n(path, pc->lens[i], pc->paths[i],
		    pc->lens[i]) == 0)
			return 1;
	return 0;
}

static enum verdict
pr_answer(struct pr_state *st)
{
	struct req *r = st->w.r;

	req_security_event(r, "probe", store_banned(req_worker(r), st->ipk, st->ipl) ?
	    ",\"banned\":true" : NULL);
	req_respond(r, 404, NULL);
	r->log_reason = "probe";
	return V_RESPOND;
}

static void
pr_on_store(void *arg, enum store_res res)
{
	struct pr_state *st = arg;

	(void)res;
	filter_wait_resume(&st->w, pr_answer(st));
}

static enum verdict
pr_on_request(struct req *r, const void *fconf, void *state)
{
	const struct pr_conf *pc = fconf;
	struct pr_state *st = state;

	st->w.r = r;
	st->ipl = store_ip_key(r->ip_family, r->ip_bin, r->ip, st->ipk, sizeof(st->ipk));
	if (st->ipl == 0)
		return V_CONTINUE;
	if (store_banned(req_worker(r), st->ipk, st->ipl)) {
		req_security_event(r, "banned", NULL);
		req_respond(r, 403, NULL);
		r->log_reason = "banned";
		return V_RESPOND;
	}
	if (!pr_is_probe(pc, r->path, r->path_len))
		return V_CONTINUE;
	METRIC_INC(filter_metrics(r), probes);
	if (store_probe(req_worker(r), st->ipk, st->ipl, pc->ban_after, pc->ban_for_ms, pr_on_store, st,
	    &st->w.op) == STORE_PENDING)
		return V_SUSPEND;
	return pr_answer(st);
}

const struct filter probe_filter = {
	.name = "probe", .state_size = sizeof(struct pr_state),
	/* configuration */
	.conf_keys = &s_top, .conf_size = sizeof(struct probe_sect), .conf_init = pr_conf_init,
	.conf_free = pr_conf_free,
	/* worker */
	.worker_conf = pr_worker_conf,
	/* request */
	.on_request = pr_on_request, .on_abort = filter_wait_abort,
};
