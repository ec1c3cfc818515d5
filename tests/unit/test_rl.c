/* SPDX-License-Identifier: MIT
 * Unit tests for the pure parts of the rate-limit filter (src/filters/ratelimit.c, included to reach its
 * statics) and of the client keys (store_ip_key). Every expected string below was captured
 * from express-rate-limit 8.7.5 (ipKeyGenerator, getPartitionKey, the default draft-8
 * identifier and the header setters) running in Node 20 — see docs/rate-limits.md. */
#include "../../src/filters/ratelimit.c"

#include "t.h"

struct ipcase { const char *ip; const char *key; const char *pk; };

/* express-rate-limit: ipKeyGenerator(ip) and the draft-8 pk of that key */
static const struct ipcase ipcases[] = {
	{ "127.0.0.1", "127.0.0.1", "MTJjYTE3YjQ5YWYy" },
	{ "10.0.0.255", "10.0.0.255", "MjZmZWFhZTQ4M2I2" },
	{ "2001:db8:abcd:12ff:1:2:3:4", "2001:db8:abcd:1200::/56", "NWM1MGM4MWIwNTdm" },
	{ "::1", "::/56", "YmIwY2Q1MTM2YWU1" },
	{ "::", "::/56", "YmIwY2Q1MTM2YWU1" },
	{ "2001:0:0:12ab::1", "2001:0:0:1200::/56", "ZTdkZDhmMTJkYzI3" },
	{ "fe80::1", "fe80::/56", "OGUzMjYyZGY2ZTQ4" },
	{ "2001:db8:0:0:1::", "2001:db8::/56", "OGZhOTA1YmUyMmZm" },
	{ "::1.2.3.4", "1.2.3.4", "NjY5NGY4M2M5ZjQ3" },
	{ "2a00:1450:4001:82a::200e", "2a00:1450:4001:800::/56", "YWQ2MWZjMTMzM2Ex" },
	{ "2001:db8:ab:ff00::1", "2001:db8:ab:ff00::/56", "NjUzZjA2YTM4ZjQ3" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ff00::/56",
	  "MjI4NGYyYTYzYzg0" },
	{ "0:0:0:ff::1", "::/56", "YmIwY2Q1MTM2YWU1" },
	{ "1:0:0:0:0:0:0:0", "1::/56", "NjUzOGNiNmRjN2Zl" },
};

static void
test_ip_keys(void)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(ipcases); i++) {
		uint8_t bin[16] = { 0 };
		char text[INET6_ADDRSTRLEN], key[64], pk[17];
		int fam = strchr(ipcases[i].ip, ':') ? AF_INET6 : AF_INET;
		size_t n;

		/* as conn.c / req.c make r->ip: inet_pton then inet_ntop */
		T_CHECK(inet_pton(fam, ipcases[i].ip, bin) == 1, "pton %s", ipcases[i].ip);
		inet_ntop(fam, bin, text, sizeof(text));
		n = store_ip_key(fam, bin, text, key, sizeof(key));
		T_CHECK(n == strlen(ipcases[i].key) && strcmp(key, ipcases[i].key) == 0,
		    "key(%s) = \"%s\", want \"%s\"", ipcases[i].ip, key, ipcases[i].key);
		rl_pk(key, n, pk);
		T_CHECK(strcmp(pk, ipcases[i].pk) == 0, "pk(%s) = %s, want %s", key, pk,
		    ipcases[i].pk);
	}
	{
		char small[8];
		uint8_t bin[16] = { 0 };
		T_EQ_INT(store_ip_key(AF_INET, bin, "1.2.3.4", small, sizeof(small)), 0);
	}
end:;
}

struct ncase { int64_t limit, w; const char *name; };

static void
test_names(void)
{
	static const struct ncase c[] = {
		{ 7, 1000, "7-in-1sec" }, { 7, 1500, "7-in-1.5sec" }, { 7, 2000, "7-in-2sec" },
		{ 7, 59000, "7-in-59sec" }, { 100, 60000, "100-in-1min" },
		{ 7, 90000, "7-in-1.5min" }, { 7, 100000, "7-in-1.6666666666666667min" },
		{ 7, 3600000, "7-in-1hr" }, { 7, 7200000, "7-in-2hrs" },
		{ 7, 5400000, "7-in-1.5hrs" }, { 7, 86400000, "7-in-1day" },
		{ 7, 172800000, "7-in-2days" }, { 7, 129600000, "7-in-1.5days" },
		{ 7, 90000000, "7-in-1.0416666666666667days" }, { 5, 61000, "5-in-1.0166666666666666min" },
		{ 600, 1234567, "600-in-20.576116666666667min" },
	};
	char buf[96];
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		rl_d8name(c[i].limit, c[i].w, buf, sizeof(buf));
		T_CHECK(strcmp(buf, c[i].name) == 0, "name(%lld, %lld) = %s, want %s",
		    (long long)c[i].limit, (long long)c[i].w, buf, c[i].name);
	}
	js_number(123.5, buf, sizeof(buf));
	T_EQ_STR(buf, "123.5");
	js_number(0.05, buf, sizeof(buf));
	T_EQ_STR(buf, "0.05");
	js_number(1e20, buf, sizeof(buf));
	T_EQ_STR(buf, "100000000000000000000");
	js_number(1.1, buf, sizeof(buf));
	T_EQ_STR(buf, "1.1");
	js_number(25.000000000000004, buf, sizeof(buf));
	T_EQ_STR(buf, "25.000000000000004");
end:;
}

/* The captured headers: standardHeaders draft-6/7/8 (legacyHeaders off) and legacy, limit
 * 100 per 60 s, first request from 127.0.0.1; and a limit of 1, second request (429). */
static void
test_format(void)
{
	struct rl_hv hv[4];
	struct rl_info in = { .limit = 100, .window_ms = 60000, .remaining = 99,
	    .reset_ms = 60000, .wall_ms = 1795854031377, .d8name = "100-in-1min",
	    .key = "127.0.0.1", .klen = 9 };
	int n;

	n = rl_format(RLH_DRAFT6, &in, hv);
	T_EQ_INT(n, 4);
	T_EQ_STR(hv[0].name, "RateLimit-Policy");
	T_EQ_STR(hv[0].val, "100;w=60");
	T_EQ_STR(hv[1].name, "RateLimit-Limit");
	T_EQ_STR(hv[1].val, "100");
	T_EQ_STR(hv[2].name, "RateLimit-Remaining");
	T_EQ_STR(hv[2].val, "99");
	T_EQ_STR(hv[3].name, "RateLimit-Reset");
	T_EQ_STR(hv[3].val, "60");

	n = rl_format(RLH_DRAFT7, &in, hv);
	T_EQ_INT(n, 2);
	T_EQ_STR(hv[0].name, "RateLimit-Policy");
	T_EQ_STR(hv[0].val, "100;w=60");
	T_EQ_STR(hv[1].name, "RateLimit");
	T_EQ_STR(hv[1].val, "limit=100, remaining=99, reset=60");

	n = rl_format(RLH_DRAFT8, &in, hv);
	T_EQ_INT(n, 2);
	T_EQ_STR(hv[0].name, "RateLimit");
	T_EQ_STR(hv[0].val, "\"100-in-1min\"; r=99; t=60");
	T_EQ_STR(hv[1].name, "RateLimit-Policy");
	T_EQ_STR(hv[1].val, "\"100-in-1min\"; q=100; w=60; pk=:MTJjYTE3YjQ5YWYy:");

	/* legacy: the reset is an epoch second (Math.ceil(resetTime / 1000)) */
	n = rl_format(RLH_LEGACY, &in, hv);
	T_EQ_INT(n, 3);
	T_EQ_STR(hv[0].name, "X-RateLimit-Limit");
	T_EQ_STR(hv[0].val, "100");
	T_EQ_STR(hv[1].name, "X-RateLimit-Remaining");
	T_EQ_STR(hv[1].val, "99");
	T_EQ_STR(hv[2].name, "X-RateLimit-Reset");
	T_EQ_STR(hv[2].val, "1795854092");

	T_EQ_INT(rl_format(RLH_OFF, &in, hv), 0);

	in.limit = 1;
	in.remaining = 0;
	in.d8name = "1-in-1min";
	n = rl_format(RLH_DRAFT8, &in, hv);
	T_EQ_STR(hv[0].val, "\"1-in-1min\"; r=0; t=60");
	T_EQ_STR(hv[1].val, "\"1-in-1min\"; q=1; w=60; pk=:MTJjYTE3YjQ5YWYy:");
	/* rounding: ceil of the milliseconds, windows too; never negative */
	in.window_ms = 1500;
	in.reset_ms = 1001;
	n = rl_format(RLH_DRAFT6, &in, hv);
	T_EQ_STR(hv[0].val, "1;w=2");
	T_EQ_STR(hv[3].val, "2");
	in.reset_ms = -5;
	in.remaining = -3;
	n = rl_format(RLH_DRAFT7, &in, hv);
	T_EQ_STR(hv[1].val, "limit=1, remaining=0, reset=0");
	T_EQ_INT(rl_secs(1), 1);
	T_EQ_INT(rl_secs(1000), 1);
	T_EQ_INT(rl_secs(1001), 2);
	T_EQ_INT(rl_secs(0), 0);
end:;
}

static void
test_pick(void)
{
	struct store_limit l[3];

	memset(l, 0, sizeof(l));
	l[0].admitted = 1, l[0].limit = 100, l[0].remaining = 99, l[0].reset_ms = 60000;
	l[1].admitted = 1, l[1].limit = 600, l[1].remaining = 599, l[1].reset_ms = 60000;
	T_EQ_INT(rl_pick(l, 2), 0);
	l[1].remaining = 10;
	T_EQ_INT(rl_pick(l, 2), 1);
	l[0].remaining = 10;
	T_EQ_INT(rl_pick(l, 2), 0);         /* tie: the smaller limit */
	l[2].admitted = 0, l[2].limit = 1000, l[2].remaining = 0, l[2].reset_ms = 5;
	T_EQ_INT(rl_pick(l, 3), 2);         /* a refusing policy always wins */
	l[0].admitted = 0, l[0].remaining = 0, l[0].reset_ms = 9000;
	T_EQ_INT(rl_pick(l, 3), 0);         /* the longest wait among refusals */
end:;
}

T_MAIN(test_ip_keys, test_names, test_format, test_pick)
