/* SPDX-License-Identifier: MIT
 * Unit tests for src/store/cluster.c's key slots: rcl_slot against the slots a Redis 7 server
 * gives (CLUSTER KEYSLOT), hash tags included, and the property the key layout relies on —
 * one client's policy keys, and a probe counter with visor:bans, share a slot. */
#include <stdio.h>
#include <string.h>

#include "t.h"
#include "store/cluster.h"

/* Each value from `redis-cli cluster keyslot KEY` (Redis 7.0.15). */
static const struct { const char *k; unsigned slot; } known[] = {
	{ "", 0 }, { "a", 15495 }, { "foo", 12182 }, { "123456789", 12739 },
	{ "1.1.1.1", 5858 }, { "visor:rl:api:{1.1.1.1}", 5858 },
	{ "{user1000}.following", 3443 }, { "{user1000}.followers", 3443 },
	{ "foo{}{bar}", 8363 },          /* an empty tag: the whole key */
	{ "foo{{bar}}zap", 4015 },       /* the tag is "{bar" */
	{ "foo{bar}{zap}", 5061 },       /* the first tag only */
	{ "visor:bans", 11745 }, { "visor:probe:{visor:bans}:1.2.3.4", 11745 },
	{ "visor:rl:a:{}", 3370 }, { "visor:rl:a:{user:a}b}", 12527 },
	{ "{", 4092 }, { "}", 12090 }, { "x{y", 2740 },
	{ "2001:db8:abcd:1200::/56", 5333 }, { "visor:revoked:abc", 2316 },
};

static void
test_known(void)
{
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		T_CHECK(rcl_slot(known[i].k, strlen(known[i].k)) == known[i].slot,
		    "slot(\"%s\") = %u, want %u", known[i].k,
		    rcl_slot(known[i].k, strlen(known[i].k)), known[i].slot);
}

static void
test_layout(void)
{
	static const char *clients[] = { "10.0.0.1", "user:alice", "10.0.0.1|user:alice",
	    "hdr:0123456789abcdef0123456789abcdef", "2001:db8::/56", "user:a}b", "user:{x}" };
	char k1[128], k2[128];
	size_t i;

	for (i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
		int n1 = snprintf(k1, sizeof(k1), "visor:rl:api:{%s}", clients[i]);
		int n2 = snprintf(k2, sizeof(k2), "visor:rl:login-burst:{%s}", clients[i]);
		T_CHECK(rcl_slot(k1, (size_t)n1) == rcl_slot(k2, (size_t)n2),
		    "one client's policies share a slot: %s", clients[i]);
		n1 = snprintf(k1, sizeof(k1), "visor:probe:{visor:bans}:%s", clients[i]);
		T_CHECK(rcl_slot(k1, (size_t)n1) == rcl_slot("visor:bans", 10),
		    "a probe counter shares visor:bans's slot: %s", clients[i]);
	}
	/* a key with NUL bytes and a long key stay in range */
	T_OK(rcl_slot("a\0b", 3) < RCL_SLOTS);
	memset(k1, 'z', sizeof(k1));
	T_OK(rcl_slot(k1, sizeof(k1)) < RCL_SLOTS);
end:;
}

T_MAIN(test_known, test_layout)
