/* SPDX-License-Identifier: MIT
 * sentinel — finding and following a Sentinel-managed primary (contract in sentinel.h).
 *
 * Two struct redis clients without a script (redis.c does the sockets, TLS, AUTH, deadlines
 * and backoff): `q` for questions, `sub` for the +switch-master subscription. Their state
 * changes arrive through redis_hooks() and are acted upon from a deferred event (`kick_ev`),
 * never from inside the client's own call chain, so a sentinel that refuses at once cannot
 * recurse into the next one.
 *
 * A question round: `tried` counts the sentinels that failed it; the round ends with an
 * answer, or with host NULL once each of the n sentinels failed once. Rotating the question
 * connection is redis_retarget(q, next, 0): the next sentinel is tried at once, which is
 * bounded by n per round. The subscription moves on after 200 ms so that, with every
 * sentinel down, it costs five connects a second, not a busy loop.
 */
#include "store/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "conf/values.h"
#include "core/log.h"
#include "core/util.h"
#include "store/redis.h"

#define SUB_ROTATE_MS  200
#define ASK_MIN_MS     250                /* per question, at least */
#define CHANNEL        "+switch-master"
/* After a +switch-master, the other sentinels learn the new configuration from each other's
 * hello messages (every 2 s): for this long an answer that disagrees with the message is
 * taken as stale and the message's address is used (ROLE still verifies it). */
#define SWITCH_TRUST_MS 5000

struct snode {
	char host[256];
	int  port;
};

struct sentinel {
	struct event_base *base;
	int                wid;
	sentinel_fn        fn;
	void              *arg;

	char              *master;
	char              *user, *pass;
	char             **spec;          /* the nodes as configured (for sentinel_same) */
	struct snode      *nodes;
	int                n;

	struct redis      *q, *sub;
	int                qi, si;        /* their sentinels, indexes into nodes */
	struct redis_cmd  *qcmd, *subcmd;
	int                asking, tried;
	int                q_failed, sub_failed, subscribed;
	int                logged_fail;
	struct event      *kick_ev;
	char               sw_host[256];  /* the last +switch-master's primary, and when */
	int                sw_port;
	int64_t            sw_at;
};

static void kick(struct sentinel *s);

static void
on_q_state(void *arg, int up)
{
	struct sentinel *s = arg;

	if (!up)
		s->q_failed = 1;
	kick(s);
}

static void
on_sub_state(void *arg, int up)
{
	struct sentinel *s = arg;

	s->subscribed = 0;
	if (!up)
		s->sub_failed = 1;
	kick(s);
}

/* "<master> <old ip> <old port> <new ip> <new port>" from +switch-master. */
static void
on_push(void *arg, const struct redisReply *rp)
{
	struct sentinel *s = arg;
	char name[256], oh[256], nh[256];
	int op, np;
	const struct redisReply *ch, *msg;

	if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 3)
		return;
	ch = rp->element[1];
	msg = rp->element[2];
	if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING ||
	    strcmp(ch->str, CHANNEL) != 0 || msg->len > 800)
		return;
	if (sscanf(msg->str, "%255s %255s %d %255s %d", name, oh, &op, nh, &np) != 5 ||
	    np < 1 || np > 65535)
		return;
	if (strcmp(name, s->master) != 0)
		return;
	log_info("redis sentinel %s (worker %d): +switch-master %s:%d -> %s:%d", s->master,
	    s->wid, oh, op, nh, np);
	snprintf(s->sw_host, sizeof(s->sw_host), "%s", nh);
	s->sw_port = np;
	s->sw_at = now_ms();
	s->fn(s->arg, nh, np, 1);
}

static void
on_sub_reply(void *arg, const struct redisReply *rp)
{
	struct sentinel *s = arg;

	s->subcmd = NULL;
	if (rp != NULL && rp->type == REDIS_REPLY_ARRAY) {
		s->subscribed = 1;
		return;
	}
	/* refused (ACL) or timed out: try another sentinel */
	s->sub_failed = 1;
	kick(s);
}

/* The question failed on sentinel qi: the next one, or the end of the round. */
static void
fail_node(struct sentinel *s, const char *why)
{
	if (!s->logged_fail)
		log_msg(LOG_WARN, NULL, "redis sentinel %s (worker %d): sentinel %s:%d: %s",
		    s->master, s->wid, s->nodes[s->qi].host, s->nodes[s->qi].port, why);
	s->qi = (s->qi + 1) % s->n;
	s->q_failed = 0;
	redis_retarget(s->q, s->nodes[s->qi].host, s->nodes[s->qi].port, 0);
	if (++s->tried >= s->n) {
		s->logged_fail = 1;           /* once per outage */
		s->asking = 0;
		s->fn(s->arg, NULL, 0, 0);
		return;
	}
	kick(s);
}

static void
on_q_reply(void *arg, const struct redisReply *rp)
{
	struct sentinel *s = arg;
	const struct redisReply *h, *p;
	int64_t port;
	char why[160];

	s->qcmd = NULL;
	if (!s->asking)
		return;
	if (rp == NULL) {
		fail_node(s, "no answer (timed out or connection lost)");
		return;
	}
	if (rp->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "refused: %.100s", rp->str);
		fail_node(s, why);
		return;
	}
	if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 2) {
		fail_node(s, "does not know the master (get-master-addr-by-name: nil)");
		return;
	}
	h = rp->element[0];
	p = rp->element[1];
	if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING || h->len == 0 ||
	    h->len >= sizeof(s->nodes[0].host) || units_int(p->str, 1, 65535, &port, NULL) < 0) {
		fail_node(s, "a malformed answer");
		return;
	}
	s->asking = 0;
	s->logged_fail = 0;
	if (s->sw_at != 0 && now_ms() - s->sw_at < SWITCH_TRUST_MS &&
	    (strcmp(h->str, s->sw_host) != 0 || port != s->sw_port)) {
		log_msg(LOG_DEBUG, NULL, "redis sentinel %s (worker %d): sentinel %s:%d still names "
		    "%s:%lld, %s:%d since +switch-master: taking the latter", s->master, s->wid,
		    s->nodes[s->qi].host, s->nodes[s->qi].port, h->str, (long long)port,
		    s->sw_host, s->sw_port);
		s->fn(s->arg, s->sw_host, s->sw_port, 0);
		return;
	}
	s->fn(s->arg, h->str, (int)port, 0);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct sentinel *s = arg;
	const char *argv[3];
	size_t lens[3];

	(void)fd;
	(void)what;
	if (s->sub_failed) {
		s->sub_failed = 0;
		s->subscribed = 0;
		if (s->subcmd) {
			redis_cmd_detach(s->subcmd);
			s->subcmd = NULL;
		}
		s->si = (s->si + 1) % s->n;
		redis_retarget(s->sub, s->nodes[s->si].host, s->nodes[s->si].port, SUB_ROTATE_MS);
	} else if (!s->subscribed && s->subcmd == NULL && redis_is_up(s->sub)) {
		argv[0] = "SUBSCRIBE";
		lens[0] = 9;
		argv[1] = CHANNEL;
		lens[1] = strlen(CHANNEL);
		s->subcmd = redis_command(s->sub, 2, argv, lens, on_sub_reply, s);
	}
	if (!s->asking || s->qcmd != NULL)
		return;
	if (redis_is_up(s->q)) {
		argv[0] = "SENTINEL";
		lens[0] = 8;
		argv[1] = "get-master-addr-by-name";
		lens[1] = strlen(argv[1]);
		argv[2] = s->master;
		lens[2] = strlen(s->master);
		s->qcmd = redis_command(s->q, 3, argv, lens, on_q_reply, s);
		if (s->qcmd == NULL)
			fail_node(s, "cannot send the question");
	} else if (s->q_failed || redis_is_down(s->q)) {
		fail_node(s, "cannot connect");
	}
	/* else: connecting; its state change kicks again */
}

static void
kick(struct sentinel *s)
{
	event_active(s->kick_ev, EV_TIMEOUT, 0);
}

void
sentinel_ask(struct sentinel *s)
{
	if (s == NULL || s->asking)
		return;
	s->asking = 1;
	s->tried = 0;
	kick(s);
}

static int64_t
ask_timeout(const struct conf *c)
{
	return MAX(c->redis.timeout_ms, ASK_MIN_MS);
}

struct sentinel *
sentinel_new(struct event_base *base, struct metrics *m, int worker_id, const struct conf *c,
    sentinel_fn fn, void *arg)
{
	struct sentinel *s;
	const char *err = NULL;
	size_t i, n = c->redis.sentinel_nodes.n;

	if (n == 0 || c->redis.sentinel_master == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->wid = worker_id;
	s->fn = fn;
	s->arg = arg;
	s->n = (int)n;
	s->master = strdup(c->redis.sentinel_master);
	s->user = c->redis.sentinel_user ? strdup(c->redis.sentinel_user) : NULL;
	s->pass = c->redis.sentinel_pass ? strdup(c->redis.sentinel_pass) : NULL;
	s->nodes = calloc(n, sizeof(*s->nodes));
	s->spec = calloc(n, sizeof(*s->spec));
	if (!s->master || !s->nodes || !s->spec || (c->redis.sentinel_user && !s->user) ||
	    (c->redis.sentinel_pass && !s->pass))
		goto fail;
	for (i = 0; i < n; i++) {
		if ((s->spec[i] = strdup(c->redis.sentinel_nodes.v[i])) == NULL)
			goto fail;
		if (conf_hostport(s->spec[i], s->nodes[i].host, sizeof(s->nodes[i].host),
		    &s->nodes[i].port, 26379, &err) < 0)
			goto fail;            /* checked by the configuration: cannot happen */
	}
	s->kick_ev = event_new(base, -1, 0, on_kick, s);
	s->q = redis_new(base, m, worker_id, NULL, 0);
	s->sub = redis_new(base, m, worker_id, NULL, 0);
	if (!s->kick_ev || !s->q || !s->sub)
		goto fail;
	redis_hooks(s->q, on_q_state, NULL, s);
	redis_hooks(s->sub, on_sub_state, on_push, s);
	/* the subscription on another sentinel than the questions when there is one: losing
	 * one sentinel then costs at most one of the two */
	s->si = s->n > 1 ? 1 : 0;
	redis_configure_node(s->q, c, s->nodes[0].host, s->nodes[0].port, ask_timeout(c));
	redis_configure_node(s->sub, c, s->nodes[s->si].host, s->nodes[s->si].port,
	    ask_timeout(c));
	return s;
fail:
	sentinel_free(s);
	return NULL;
}

int
sentinel_same(const struct sentinel *s, const struct conf *c)
{
	size_t i;

	if (c->redis.sentinel_master == NULL || strcmp(s->master, c->redis.sentinel_master) != 0 ||
	    (size_t)s->n != c->redis.sentinel_nodes.n)
		return 0;
	if ((s->user == NULL) != (c->redis.sentinel_user == NULL) || (s->user &&
	    strcmp(s->user, c->redis.sentinel_user) != 0))
		return 0;
	if ((s->pass == NULL) != (c->redis.sentinel_pass == NULL) || (s->pass &&
	    strcmp(s->pass, c->redis.sentinel_pass) != 0))
		return 0;
	for (i = 0; i < (size_t)s->n; i++)
		if (strcmp(s->spec[i], c->redis.sentinel_nodes.v[i]) != 0)
			return 0;
	return 1;
}

void
sentinel_conf(struct sentinel *s, const struct conf *c)
{
	redis_configure_node(s->q, c, s->nodes[s->qi].host, s->nodes[s->qi].port, ask_timeout(c));
	redis_configure_node(s->sub, c, s->nodes[s->si].host, s->nodes[s->si].port,
	    ask_timeout(c));
}

void
sentinel_free(struct sentinel *s)
{
	int i;

	if (s == NULL)
		return;
	s->asking = 0;
	redis_cmd_detach(s->qcmd);
	redis_cmd_detach(s->subcmd);
	s->qcmd = s->subcmd = NULL;
	redis_free(s->q);
	redis_free(s->sub);
	if (s->kick_ev)
		event_free(s->kick_ev);
	if (s->pass)
		explicit_bzero(s->pass, strlen(s->pass));
	free(s->pass);
	free(s->user);
	free(s->master);
	for (i = 0; s->spec && i < s->n; i++)
		free(s->spec[i]);
	free(s->spec);
	free(s->nodes);
	free(s);
}
