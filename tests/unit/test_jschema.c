/* SPDX-License-Identifier: MIT
 * Unit tests for src/lib/jschema.c: strict JSON loading (depth, duplicates, UTF-8, forbidden keys),
 * every supported keyword with the exact client message (pointer + rule, never a value),
 * document order of the reported failure, the pattern engine (lib/regex.c, through
 * jschema_regex_search), the formats (lib/jsformat.c, through jschema_format_check), the
 * compile errors (keyword, position in the schema text) and the work bounds. Run from the
 * repository root (reads conf/schemas/create-user.json). */
#include <dirent.h>
#include <stdlib.h>
#include <time.h>

#include "t.h"
#include "lib/jschema.h"

static char out[1024];

/* Compiles `schema` (NULL: none), checks `inst` (n bytes); returns "ok", "nomem", the client
 * message, or "COMPILE: <msg>". */
static const char *
checkn(const char *schema, const char *inst, size_t n)
{
	struct jschema_cerr ce;
	struct jschema *s = NULL;
	struct jschema_result res;
	struct arena a;
	enum jschema_status st;

	if (schema != NULL) {
		s = jschema_compile(schema, strlen(schema), &ce);
		if (s == NULL) {
			snprintf(out, sizeof(out), "COMPILE: %s", ce.msg);
			return out;
		}
	}
	arena_init(&a, 4096);
	st = jschema_check(s, inst, n, &a, &res);
	arena_free(&a);
	jschema_free(s);
	if (st == JSCHEMA_OK)
		return "ok";
	if (st == JSCHEMA_NOMEM)
		return "nomem";
	snprintf(out, sizeof(out), "%s", res.msg);
	return out;
}

static const char *
check(const char *schema, const char *inst)
{
	return checkn(schema, inst, strlen(inst));
}

struct vcase {
	const char *schema, *inst, *want;
};

static void
run_cases(const struct vcase *c, size_t n)
{
	size_t i;
	const char *got;

	for (i = 0; i < n; i++) {
		got = check(c[i].schema, c[i].inst);
		T_CHECK(strcmp(got, c[i].want) == 0, "case %zu: schema %s inst %s: got \"%s\" want \"%s\"",
		    i, c[i].schema ? c[i].schema : "(none)", c[i].inst, got, c[i].want);
	}
}

#define IB "Invalid body: "

static void
test_json(void)
{
	static const struct vcase c[] = {
		{ NULL, "{}", "ok" },
		{ NULL, "[1,2,{\"a\":null}]", "ok" },
		{ NULL, " \"s\"\n", "ok" },                   /* any top-level value */
		{ NULL, "1e-400", "ok" },
		{ NULL, "123456789012345678901234567890", "ok" },
		{ NULL, "{\"a\":1", "Invalid JSON" },
		{ NULL, "{\"a\":1} x", "Invalid JSON" },
		{ NULL, "{\"a\":1}{}", "Invalid JSON" },
		{ NULL, "NaN", "Invalid JSON" },
		{ NULL, "[Infinity]", "Invalid JSON" },
		{ NULL, "1e400", "Invalid JSON" },
		{ NULL, "{\"a\":1,\"a\":2}", "Invalid JSON" },
		{ NULL, "{\"a\":1,\"\\u0061\":2}", "Invalid JSON" },  /* duplicate after unescaping */
		{ NULL, "[1,]", "Invalid JSON" },
		{ NULL, "01", "Invalid JSON" },
		{ NULL, "", "Invalid JSON" },
		{ NULL, "   ", "Invalid JSON" },
		{ NULL, "'a'", "Invalid JSON" },
		{ NULL, "{a:1}", "Invalid JSON" },
		{ NULL, "\"\\ud800\"", "Invalid JSON" },          /* lone surrogate */
		{ NULL, "\"\xff\"", "Invalid JSON" },             /* invalid UTF-8 */
		{ NULL, "\"\xed\xa0\x80\"", "Invalid JSON" },     /* UTF-8 encoded surrogate */
		{ NULL, "\"\xc0\xaf\"", "Invalid JSON" },         /* overlong */
		{ NULL, "\xef\xbb\xbf{}", "Invalid JSON" },       /* BOM */
		{ NULL, "\"a\tb\"", "Invalid JSON" },             /* raw control character */
		{ NULL, "{\"a\\u0000\":1}", "Invalid JSON" },     /* NUL in a key */
		{ NULL, "[\"a\\u0000b\"]", "ok" },                /* NUL in a value */
		{ NULL, "// x\n{}", "Invalid JSON" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_depth(void)
{
	char buf[512];
	size_t i;

	for (i = 0; i < 64; i++)
		buf[i] = '[';
	for (i = 0; i < 64; i++)
		buf[64 + i] = ']';
	T_EQ_STR(checkn(NULL, buf, 128), "ok");
	memmove(buf + 1, buf, 128);
	buf[0] = '[';
	buf[129] = ']';
	T_EQ_STR(checkn(NULL, buf, 130), IB "nested deeper than 64 levels");
	/* objects count too, and brackets inside strings do not */
	{
		struct sbuf b = { 0 };
		for (i = 0; i < 65; i++)
			sbuf_adds(&b, "{\"a\":");
		sbuf_adds(&b, "1");
		for (i = 0; i < 65; i++)
			sbuf_adds(&b, "}");
		T_EQ_STR(check(NULL, sbuf_cstr(&b)), IB "nested deeper than 64 levels");
		sbuf_fini(&b);
	}
	T_EQ_STR(check(NULL, "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]"),
	    "ok");
	T_EQ_STR(check(NULL, "[\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]"),
	    "ok");
	/* a bomb far past jansson's own limit is refused before parsing */
	{
		size_t n = 200000;
		char *b = malloc(n);
		T_OK(b != NULL);
		memset(b, '[', n);
		T_EQ_STR(checkn(NULL, b, n), IB "nested deeper than 64 levels");
		free(b);
	}
end:;
}

static void
test_forbidden(void)
{
	static const struct vcase c[] = {
		{ NULL, "{\"__proto__\":{}}", IB "/__proto__ is a forbidden key" },
		{ NULL, "{\"constructor\":1}", IB "/constructor is a forbidden key" },
		{ NULL, "{\"prototype\":null}", IB "/prototype is a forbidden key" },
		{ NULL, "{\"profile\":{\"a\":1,\"__proto__\":{\"isAdmin\":true}}}",
		  IB "/profile/__proto__ is a forbidden key" },
		{ NULL, "[{\"constructor\":{\"prototype\":1}}]", IB "/0/constructor is a forbidden key" },
		{ NULL, "{\"a\":[0,{\"b\":{\"__proto__\":1}}]}", IB "/a/1/b/__proto__ is a forbidden key" },
		{ NULL, "{\"\\u005f_proto__\":1}", IB "/__proto__ is a forbidden key" },
		{ NULL, "{\"a\":{\"prototype\":1},\"constructor\":1}", IB "/a/prototype is a forbidden key" },
		{ NULL, "{\"k\":\"__proto__\",\"l\":[\"constructor\"]}", "ok" },   /* values are fine */
		{ NULL, "{\"__proto\":1,\"Constructor\":1,\"prototypes\":1}", "ok" },
		/* checked before the schema, even when the schema would allow the key */
		{ "{\"properties\":{\"constructor\":{}}}", "{\"constructor\":1}",
		  IB "/constructor is a forbidden key" },
		{ "{\"type\":\"string\"}", "{\"a/b\":{\"__proto__\":1}}", IB "/a~1b/__proto__ is a forbidden key" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_types(void)
{
	static const struct vcase c[] = {
		{ "{\"type\":\"string\"}", "\"x\"", "ok" },
		{ "{\"type\":\"string\"}", "1", IB "/ must be a string" },
		{ "{\"type\":\"integer\"}", "1", "ok" },
		{ "{\"type\":\"integer\"}", "1.0", "ok" },          /* 2020-12: zero fraction */
		{ "{\"type\":\"integer\"}", "1e2", "ok" },
		{ "{\"type\":\"integer\"}", "-0", "ok" },
		{ "{\"type\":\"integer\"}", "1.5", IB "/ must be an integer" },
		{ "{\"type\":\"integer\"}", "\"1\"", IB "/ must be an integer" },
		{ "{\"type\":\"integer\"}", "123456789012345678901234567890", "ok" },
		{ "{\"type\":\"number\"}", "1", "ok" },
		{ "{\"type\":\"number\"}", "1.5", "ok" },
		{ "{\"type\":\"number\"}", "\"1\"", IB "/ must be a number" },
		{ "{\"type\":\"object\"}", "[]", IB "/ must be an object" },
		{ "{\"type\":\"array\"}", "{}", IB "/ must be an array" },
		{ "{\"type\":\"boolean\"}", "0", IB "/ must be a boolean" },
		{ "{\"type\":\"boolean\"}", "false", "ok" },
		{ "{\"type\":\"null\"}", "false", IB "/ must be null" },
		{ "{\"type\":[\"string\",\"null\"]}", "null", "ok" },
		{ "{\"type\":[\"string\",\"null\"]}", "1", IB "/ must be null or a string" },
		{ "{\"type\":[\"integer\",\"string\",\"boolean\"]}", "1.5",
		  IB "/ must be a boolean, a string or an integer" },
		{ "true", "{\"anything\":[1]}", "ok" },
		{ "false", "1", IB "/ is not allowed" },
		{ "{}", "[1,\"a\",{}]", "ok" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_const_enum(void)
{
	static const struct vcase c[] = {
		{ "{\"const\":1}", "1.0", "ok" },
		{ "{\"const\":1}", "2", IB "/ is not the allowed value" },
		{ "{\"const\":\"a\"}", "\"a\"", "ok" },
		{ "{\"const\":\"a\"}", "\"b\"", IB "/ is not the allowed value" },
		{ "{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1.0,\"x\"]}", "ok" },
		{ "{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[\"x\",1]}", IB "/ is not the allowed value" },
		{ "{\"const\":null}", "false", IB "/ is not the allowed value" },
		{ "{\"enum\":[\"user\",\"admin\"]}", "\"admin\"", "ok" },
		{ "{\"enum\":[\"user\",\"admin\"]}", "\"root\"", IB "/ is not one of the allowed values" },
		{ "{\"enum\":[null,{\"b\":1,\"a\":2}]}", "{\"a\":2,\"b\":1}", "ok" },
		{ "{\"enum\":[null,{\"b\":1,\"a\":2}]}", "{\"a\":2}", IB "/ is not one of the allowed values" },
		{ "{\"enum\":[]}", "1", IB "/ is not one of the allowed values" },
		{ "{\"enum\":[1,true]}", "1", "ok" },
		{ "{\"enum\":[1,true]}", "true", "ok" },
		{ "{\"enum\":[0]}", "-0", "ok" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_numbers(void)
{
	static const struct vcase c[] = {
		{ "{\"minimum\":13}", "13", "ok" },
		{ "{\"minimum\":13}", "12.99", IB "/ must be >= 13" },
		{ "{\"exclusiveMinimum\":0}", "0", IB "/ must be > 0" },
		{ "{\"exclusiveMinimum\":0}", "1e-300", "ok" },
		{ "{\"maximum\":1.5}", "1.6", IB "/ must be <= 1.5" },
		{ "{\"maximum\":1.5}", "1.5", "ok" },
		{ "{\"exclusiveMaximum\":10}", "10", IB "/ must be < 10" },
		{ "{\"minimum\":-2.5e-7}", "-1", IB "/ must be >= -2.5e-07" },
		{ "{\"maximum\":9007199254740991}", "9007199254740993", IB "/ must be <= 9007199254740991" },
		{ "{\"maximum\":100}", "123456789012345678901234567890", IB "/ must be <= 100" },
		{ "{\"multipleOf\":5}", "10", "ok" },
		{ "{\"multipleOf\":5}", "12", IB "/ must be a multiple of 5" },
		{ "{\"multipleOf\":0.1}", "0.3", "ok" },
		{ "{\"multipleOf\":0.1}", "0.7", "ok" },
		{ "{\"multipleOf\":0.01}", "19.99", "ok" },
		{ "{\"multipleOf\":0.1}", "0.35", IB "/ must be a multiple of 0.1" },
		{ "{\"multipleOf\":1}", "1.0000000001", IB "/ must be a multiple of 1" },
		{ "{\"multipleOf\":1}", "1e300", "ok" },
		{ "{\"multipleOf\":1e-300}", "1e300", IB "/ must be a multiple of 1e-300" },
		{ "{\"multipleOf\":3}", "0", "ok" },
		{ "{\"minimum\":5}", "\"a\"", "ok" },          /* applies to numbers only */
		{ "{\"multipleOf\":2}", "[3]", "ok" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_strings(void)
{
	static const struct vcase c[] = {
		{ "{\"minLength\":2}", "\"\xc3\xa9\"", IB "/ must be at least 2 characters long" },
		{ "{\"minLength\":2}", "\"\xc3\xa9\xc3\xa9\"", "ok" },
		{ "{\"maxLength\":2}", "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"", "ok" },   /* 2 code points */
		{ "{\"maxLength\":2}", "\"\\ud83d\\ude00\\ud83d\\ude00x\"",
		  IB "/ must be at most 2 characters long" },
		{ "{\"maxLength\":1}", "\"ab\"", IB "/ must be at most 1 character long" },
		{ "{\"minLength\":1}", "\"\"", IB "/ must be at least 1 character long" },
		{ "{\"maxLength\":0}", "\"\"", "ok" },
		{ "{\"maxLength\":3}", "\"a\\u0000b\"", "ok" },
		{ "{\"pattern\":\"^[0-9]{5}$\"}", "\"12345\"", "ok" },
		{ "{\"pattern\":\"^[0-9]{5}$\"}", "\"1234\"", IB "/ does not match the pattern" },
		{ "{\"pattern\":\"^[0-9]{5}$\"}", "\"12345\\n\"", IB "/ does not match the pattern" },
		{ "{\"pattern\":\"a\"}", "\"xax\"", "ok" },                 /* unanchored search */
		{ "{\"pattern\":\"^\\\\p\"}", "\"x\"", "COMPILE: unsupported or invalid pattern: "
		  "Unicode property escapes are not supported" },
		{ "{\"format\":\"email\"}", "\"a@b.co\"", "ok" },
		{ "{\"format\":\"email\"}", "\"a@b\"", IB "/ is not a valid email" },
		{ "{\"format\":\"uuid\"}", "\"x\"", IB "/ is not a valid uuid" },
		{ "{\"format\":\"date-time\"}", "\"2024-01-01\"", IB "/ is not a valid date-time" },
		{ "{\"format\":\"date\"}", "\"2024-02-30\"", IB "/ is not a valid date" },
		{ "{\"format\":\"uri\"}", "\"/x\"", IB "/ is not a valid uri" },
		{ "{\"format\":\"email\"}", "5", "ok" },                     /* strings only */
		{ "{\"maxLength\":1,\"pattern\":\"^a$\"}", "\"bb\"", IB "/ must be at most 1 character long" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_arrays(void)
{
	static const struct vcase c[] = {
		{ "{\"minItems\":1}", "[]", IB "/ must have at least 1 item" },
		{ "{\"minItems\":2}", "[1]", IB "/ must have at least 2 items" },
		{ "{\"maxItems\":2}", "[1,2,3]", IB "/ must have at most 2 items" },
		{ "{\"maxItems\":2}", "[1,2]", "ok" },
		{ "{\"uniqueItems\":true}", "[1,2,1.0]", IB "/ must not contain duplicate items" },
		{ "{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]",
		  IB "/ must not contain duplicate items" },
		{ "{\"uniqueItems\":true}", "[0,-0]", IB "/ must not contain duplicate items" },
		{ "{\"uniqueItems\":true}", "[[1],[1,1],[\"1\"],{\"1\":1},\"a\",\"b\",null,false,true,0]", "ok" },
		{ "{\"uniqueItems\":true}", "[null,null]", IB "/ must not contain duplicate items" },
		{ "{\"uniqueItems\":false}", "[1,1]", "ok" },
		{ "{\"items\":{\"type\":\"string\"}}", "[\"a\",2]", IB "/1 must be a string" },
		{ "{\"items\":{\"type\":\"string\"}}", "[]", "ok" },
		{ "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}],\"items\":false}",
		  "[\"a\",1,true]", IB "/2 is not allowed" },
		{ "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}],\"items\":false}",
		  "[\"a\"]", "ok" },
		{ "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}]}", "[\"a\",\"b\",3]",
		  IB "/1 must be a number" },
		{ "{\"prefixItems\":[{\"type\":\"string\"}]}", "[\"a\",{},3]", "ok" },
		{ "{\"items\":{\"type\":\"string\"}}", "{\"0\":1}", "ok" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_objects(void)
{
	static const struct vcase c[] = {
		{ "{\"required\":[\"email\",\"name\"]}", "{\"name\":\"x\"}", IB "/email is required" },
		{ "{\"required\":[\"email\",\"name\"]}", "{}", IB "/email is required" },
		{ "{\"required\":[\"email\"]}", "[]", "ok" },
		{ "{\"properties\":{\"a\":{\"type\":\"string\"}},\"additionalProperties\":false}",
		  "{\"a\":\"x\",\"b\":1}", IB "/b is not allowed" },
		{ "{\"additionalProperties\":{\"type\":\"number\"}}", "{\"x\":\"s\"}", IB "/x must be a number" },
		{ "{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
		  "{\"x-a\":\"s\",\"y\":1}", IB "/y is not allowed" },
		{ "{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
		  "{\"x-a\":1}", IB "/x-a must be a string" },
		{ "{\"properties\":{\"x-a\":{\"minimum\":0}},\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}}}",
		  "{\"x-a\":1.5}", IB "/x-a must be an integer" },          /* both apply */
		{ "{\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}", "{\"ok\":1,\"Bad\":2}",
		  IB "/Bad is not an allowed property name" },
		{ "{\"propertyNames\":{\"maxLength\":3}}", "{\"abc\":1}", "ok" },
		{ "{\"minProperties\":1}", "{}", IB "/ must have at least 1 property" },
		{ "{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", IB "/ must have at most 1 property" },
		{ "{\"maxProperties\":2}", "{\"a\":1,\"b\":2}", "ok" },
		{ "{\"properties\":{\"a\":false}}", "{\"a\":1}", IB "/a is not allowed" },
		{ "{\"properties\":{\"a\":false}}", "{\"b\":1}", "ok" },
		/* pointers escape ~ and / (RFC 6901) */
		{ "{\"properties\":{\"a/b\":{\"properties\":{\"m~n\":{\"type\":\"string\"}}}}}",
		  "{\"a/b\":{\"m~n\":1}}", IB "/a~1b/m~0n must be a string" },
		{ "{\"properties\":{\"tags\":{\"items\":{\"maxLength\":3}}}}",
		  "{\"tags\":[\"ok\",\"toolong\"]}", IB "/tags/1 must be at most 3 characters long" },
		{ "{\"properties\":{\"profile\":{\"required\":[\"zip\"]}}}", "{\"profile\":{}}",
		  IB "/profile/zip is required" },
		{ "{\"required\":[\"a/b\"]}", "{}", IB "/a~1b is required" },
		{ "{\"additionalProperties\":false}", "{\"\xc3\xa9\":1}", IB "/\xc3\xa9 is not allowed" },
		{ "{\"additionalProperties\":false}", "{\"\":1}", IB "/ is not allowed" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_combinators(void)
{
	static const struct vcase c[] = {
		{ "{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", IB "/ must be >= 2" },
		{ "{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "2", "ok" },
		{ "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "null", "ok" },
		{ "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "1",
		  IB "/ does not match any of the allowed schemas" },
		{ "{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "1",
		  IB "/ matches more than one of the schemas (oneOf)" },
		{ "{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "1.5", "ok" },
		{ "{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "\"s\"",
		  IB "/ does not match any of the schemas (oneOf)" },
		{ "{\"not\":{\"type\":\"null\"}}", "null", IB "/ matches a schema it must not match" },
		{ "{\"not\":{\"type\":\"null\"}}", "0", "ok" },
		{ "{\"properties\":{\"a\":{\"anyOf\":[{\"const\":1},{\"const\":2}]}}}", "{\"a\":3}",
		  IB "/a does not match any of the allowed schemas" },
		/* $ref */
		{ "{\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":1}},"
		  "\"properties\":{\"n\":{\"$ref\":\"#/$defs/pos\"}}}", "{\"n\":0}", IB "/n must be >= 1" },
		{ "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"child\":{\"$ref\":\"#/$defs/node\"}},"
		  "\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}",
		  "{\"child\":{\"child\":{\"x\":1}}}", IB "/child/child/x is not allowed" },
		{ "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", "[[[]],[1]]", IB "/1/0 must be an array" },
		{ "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", "[[[]],[]]", "ok" },
		{ "{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c~d\":{\"minLength\":2}},"
		  "\"allOf\":[{\"$ref\":\"#/$defs/a~1b\"},{\"$ref\":\"#/$defs/c~0d\"}]}", "\"x\"",
		  IB "/ must be at least 2 characters long" },
		{ "{\"$ref\":\"#/$defs/s\",\"maxLength\":1,\"$defs\":{\"s\":{\"type\":\"string\"}}}", "\"ab\"",
		  IB "/ must be at most 1 character long" },
	};
	run_cases(c, ARRAY_LEN(c));
}

/* The first failure in document order: a value before its members, members in the order
 * the body has them, whichever keyword found them. */
static void
test_order(void)
{
	static const struct vcase c[] = {
		{ "{\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}}}",
		  "{\"b\":1,\"a\":2}", IB "/b must be a string" },
		{ "{\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}}}",
		  "{\"a\":1,\"b\":2}", IB "/a must be a string" },
		{ "{\"required\":[\"z\"],\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":1}",
		  IB "/z is required" },
		{ "{\"allOf\":[{\"properties\":{\"b\":{\"type\":\"string\"}}}],"
		  "\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":1,\"b\":2}", IB "/a must be a string" },
		{ "{\"allOf\":[{\"properties\":{\"b\":{\"type\":\"string\"}}}],"
		  "\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"b\":1,\"a\":2}", IB "/b must be a string" },
		{ "{\"allOf\":[{\"properties\":{\"a\":{\"properties\":{\"x\":{\"type\":\"string\"}}}}},"
		  "{\"properties\":{\"a\":{\"minProperties\":5}}}]}", "{\"a\":{\"x\":1}}",
		  IB "/a must have at least 5 properties" },
		{ "{\"properties\":{\"a\":{\"type\":\"string\"}},\"anyOf\":[{\"required\":[\"x\"]},{\"required\":[\"y\"]}]}",
		  "{\"a\":1}", IB "/ does not match any of the allowed schemas" },
		{ "{\"items\":{\"properties\":{\"n\":{\"type\":\"integer\"}}}}",
		  "[{\"n\":1},{\"n\":\"x\"},{\"n\":\"y\"}]", IB "/1/n must be an integer" },
		{ "{\"properties\":{\"a\":{\"items\":{\"type\":\"string\"}},\"b\":{\"type\":\"string\"}}}",
		  "{\"a\":[\"x\",[1]],\"b\":5}", IB "/a/1 must be a string" },
		/* the same value: keyword order (type first) */
		{ "{\"minLength\":5,\"type\":\"string\",\"pattern\":\"^x\"}", "\"ab\"",
		  IB "/ must be at least 5 characters long" },
		{ "{\"enum\":[\"a\"],\"type\":\"string\"}", "1", IB "/ must be a string" },
	};
	run_cases(c, ARRAY_LEN(c));
}

static void
test_result_fields(void)
{
	struct jschema_cerr ce;
	struct jschema_result res;
	struct jschema *s;
	struct arena a;
	char key[600], body[700];

	arena_init(&a, 4096);
	{
		static const char sch[] =
		    "{\"properties\":{\"profile\":{\"properties\":{\"zip\":{\"pattern\":\"^[0-9]{5}$\"}}}}}";
		s = jschema_compile(sch, strlen(sch), &ce);
	}
	T_OK(s != NULL);
	T_EQ_INT(jschema_check(s, "{\"profile\":{\"zip\":\"1234x\"}}", 27, &a, &res), JSCHEMA_INVALID);
	T_EQ_STR(res.msg, IB "/profile/zip does not match the pattern");
	T_EQ_STR(res.pointer, "/profile/zip");
	T_EQ_STR(res.rule, "pattern");
	T_OK(strstr(res.msg, "1234x") == NULL);
	T_EQ_INT(jschema_check(s, "{\"profile\":{\"zip\":\"12345\"}}", 27, &a, &res), JSCHEMA_OK);
	T_EQ_INT(jschema_check(s, "{\"__proto__\":1}", 15, &a, &res), JSCHEMA_INVALID);
	T_EQ_STR(res.rule, "forbidden-key");
	T_EQ_STR(res.pointer, "/__proto__");
	T_EQ_INT(jschema_check(s, "{", 1, &a, &res), JSCHEMA_INVALID);
	T_EQ_STR(res.rule, "json");
	T_EQ_STR(res.msg, "Invalid JSON");
	jschema_free(s);
	/* a long key is cut in the pointer (at a character boundary), the message stays bounded */
	s = jschema_compile("{\"additionalProperties\":false}", 30, &ce);
	T_OK(s != NULL);
	memset(key, 'k', sizeof(key));
	memcpy(key + 250, "\xc3\xa9\xc3\xa9\xc3\xa9", 6);
	snprintf(body, sizeof(body), "{\"%.*s\":1}", 590, key);
	T_EQ_INT(jschema_check(s, body, strlen(body), &a, &res), JSCHEMA_INVALID);
	T_OK(strlen(res.pointer) <= JSCHEMA_MAX_POINTER);
	T_OK(strcmp(res.pointer + strlen(res.pointer) - 3, "...") == 0);
	T_OK(strstr(res.msg, " is not allowed") != NULL);
	T_OK(strncmp(res.pointer, "/kkkk", 5) == 0);
	jschema_free(s);
	T_EQ_INT(jschema_root_requires(NULL), 0);
end:
	arena_free(&a);
}

static void
test_root_requires(void)
{
	static const struct { const char *schema; int want; } c[] = {
		{ "{\"required\":[\"a\"]}", 1 },
		{ "{\"required\":[]}", 0 },
		{ "{\"type\":\"object\"}", 0 },
		{ "{\"properties\":{\"a\":{\"required\":[\"b\"]}}}", 0 },
		{ "{\"allOf\":[{\"type\":\"object\"},{\"required\":[\"a\"]}]}", 1 },
		{ "{\"$ref\":\"#/$defs/x\",\"$defs\":{\"x\":{\"required\":[\"a\"]}}}", 1 },
		{ "{\"anyOf\":[{\"required\":[\"a\"]},{}]}", 0 },
		{ "false", 1 },
		{ "true", 0 },
	};
	struct jschema_cerr ce;
	struct jschema *s;
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		s = jschema_compile(c[i].schema, strlen(c[i].schema), &ce);
		T_CHECK(s != NULL, "case %zu compiles: %s", i, ce.msg);
		T_CHECK(jschema_root_requires(s) == c[i].want, "case %zu: root_requires", i);
		jschema_free(s);
	}
}

struct ccase {
	const char *schema;
	const char *msg;        /* prefix of the expected message */
	const char *pointer;
	int line, col;
};

static void
test_compile_errors(void)
{
	static const struct ccase c[] = {
		{ "{\"if\":{}}", "unsupported keyword \"if\"", "/if", 1, 2 },
		{ "{\"properties\":{\"a\":{\"contains\":{}}}}", "unsupported keyword \"contains\"",
		  "/properties/a/contains", 1, 21 },
		{ "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a\": {\"foo\": 1}\n  }\n}",
		  "unsupported keyword \"foo\"", "/properties/a/foo", 4, 11 },
		{ "{\"properties\":{\"a~b/c\":{\"readOnly\":true}}}", "unsupported keyword \"readOnly\"",
		  "/properties/a~0b~1c/readOnly", 1, 25 },
		{ "{\"properties\":{\"\\u0061\":{\"x\":1}}}", "unsupported keyword \"x\"", "/properties/a/x", 1, 26 },
		{ "{\"allOf\":[{},{\"definitions\":{}}]}", "unsupported keyword \"definitions\"",
		  "/allOf/1/definitions", 1, 15 },
		{ "{\"dependentRequired\":{}}", "unsupported keyword", "/dependentRequired", 1, 2 },
		{ "{\"format\":\"ipv4\"}", "unsupported format \"ipv4\"", "/format", 1, 2 },
		{ "{\"type\":\"str\"}", "\"type\" must be one of", "/type", 1, 2 },
		{ "{\"type\":[]}", "\"type\" must be one of", "/type", 1, 2 },
		{ "{\"type\":[\"string\",\"string\"]}", "\"type\" lists \"string\" twice", "/type", 1, 2 },
		{ "{\"minLength\":-1}", "\"minLength\" must be a non-negative integer", "/minLength", 1, 2 },
		{ "{\"maxItems\":1.5}", "\"maxItems\" must be a non-negative integer", "/maxItems", 1, 2 },
		{ "{\"minimum\":\"1\"}", "\"minimum\" must be a number", "/minimum", 1, 2 },
		{ "{\"exclusiveMinimum\":true}", "\"exclusiveMinimum\" must be a number", "/exclusiveMinimum", 1, 2 },
		{ "{\"multipleOf\":0}", "\"multipleOf\" must be a number greater than 0", "/multipleOf", 1, 2 },
		{ "{\"uniqueItems\":1}", "\"uniqueItems\" must be a boolean", "/uniqueItems", 1, 2 },
		{ "{\"required\":[\"a\",\"a\"]}", "\"required\" lists a name twice", "/required", 1, 2 },
		{ "{\"required\":\"a\"}", "\"required\" must be an array of strings", "/required", 1, 2 },
		{ "{\"enum\":1}", "\"enum\" must be an array", "/enum", 1, 2 },
		{ "{\"items\":[{}]}", "\"items\" must be a schema (2020-12)", "/items", 1, 2 },
		{ "{\"prefixItems\":[]}", "\"prefixItems\" must be a non-empty array", "/prefixItems", 1, 2 },
		{ "{\"anyOf\":{}}", "\"anyOf\" must be a non-empty array", "/anyOf", 1, 2 },
		{ "{\"properties\":[]}", "\"properties\" must be an object", "/properties", 1, 2 },
		{ "{\"properties\":{\"a\":1}}", "a schema must be an object or a boolean", "/properties/a", 1, 16 },
		{ "[]", "a schema must be an object or a boolean", "", 1, 1 },
		{ "{\"not\":null}", "a schema must be an object or a boolean", "/not", 1, 2 },
		{ "{\"pattern\":\"(?=a)\"}", "unsupported or invalid pattern: lookaround", "/pattern", 1, 2 },
		{ "{\"pattern\":\"(a)\\\\1\"}", "unsupported or invalid pattern: backreferences", "/pattern", 1, 2 },
		{ "{\"pattern\":\"a{1001}\"}", "unsupported or invalid pattern: repetition count", "/pattern", 1, 2 },
		{ "{\"pattern\":\"(a{1000}){1000}\"}", "unsupported or invalid pattern: pattern too complex",
		  "/pattern", 1, 2 },
		{ "{\"pattern\":1}", "\"pattern\" must be a string", "/pattern", 1, 2 },
		{ "{\"patternProperties\":{\"[\":{}}}", "unsupported or invalid pattern: unterminated",
		  "/patternProperties/[", 1, 23 },
		{ "{\"$ref\":\"other.json#/a\"}", "\"$ref\" must be \"#\" or \"#/$defs/<name>\"", "/$ref", 1, 2 },
		{ "{\"$ref\":\"#/properties/a\"}", "\"$ref\" must be", "/$ref", 1, 2 },
		{ "{\"$ref\":\"#/$defs/missing\"}", "\"$ref\": no schema at #/$defs/missing", "/$ref", 0, 0 },
		{ "{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}}}", "$ref cycle", "/$defs/a", 0, 0 },
		{ "{\"$ref\":\"#\"}", "$ref cycle", "", 0, 0 },
		{ "{\"$defs\":{\"a\":{\"allOf\":[{\"$ref\":\"#/$defs/b\"}]},\"b\":{\"not\":{\"$ref\":\"#/$defs/a\"}}}}",
		  "$ref cycle", NULL, 0, 0 },
		{ "{\"type\": }", "invalid JSON:", "", 1, 10 },
		{ "{\"type\":\"string\",\"type\":\"number\"}", "invalid JSON: duplicate object key", "", 1, 0 },
		{ "{\"$defs\":[]}", "\"$defs\" must be an object of schemas", "/$defs", 1, 2 },
	};
	struct jschema_cerr ce;
	struct jschema *s;
	size_t i;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		s = jschema_compile(c[i].schema, strlen(c[i].schema), &ce);
		T_CHECK(s == NULL, "case %zu: %s compiled", i, c[i].schema);
		if (s != NULL) {
			jschema_free(s);
			continue;
		}
		T_CHECK(strncmp(ce.msg, c[i].msg, strlen(c[i].msg)) == 0, "case %zu: msg \"%s\" want \"%s\"",
		    i, ce.msg, c[i].msg);
		if (c[i].pointer)
			T_CHECK(strcmp(ce.pointer, c[i].pointer) == 0, "case %zu: pointer \"%s\" want \"%s\"",
			    i, ce.pointer, c[i].pointer);
		if (c[i].line)
			T_CHECK(ce.line == c[i].line, "case %zu: line %d want %d", i, ce.line, c[i].line);
		if (c[i].col)
			T_CHECK(ce.col == c[i].col, "case %zu: col %d want %d", i, ce.col, c[i].col);
	}
}

static void
test_compile_ok(void)
{
	static const char *const ok[] = {
		"{\"title\":\"x\",\"description\":\"y\",\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
		"\"$id\":\"https://example.com/s\",\"$comment\":\"c\",\"default\":1,\"examples\":[1,2]}",
		"true", "false", "{}",
		"{\"$defs\":{\"unused\":{\"type\":\"string\"}}}",
		"{\"$defs\":{\"t\":{\"properties\":{\"c\":{\"$ref\":\"#/$defs/t\"}}}},\"$ref\":\"#/$defs/t\"}",
		"{\"properties\":{\"a\":{\"$ref\":\"#\"}}}",
		"{\"minimum\":13,\"maximum\":1}",       /* unsatisfiable is allowed */
	};
	struct jschema_cerr ce;
	struct jschema *s;
	char *text;
	size_t i, len;

	for (i = 0; i < ARRAY_LEN(ok); i++) {
		s = jschema_compile(ok[i], strlen(ok[i]), &ce);
		T_CHECK(s != NULL, "case %zu: %s: %s at %s", i, ok[i], ce.msg, ce.pointer);
		jschema_free(s);
	}
	/* the example schema in conf/ compiles and behaves as its name says */
	text = file_read_all("conf/schemas/create-user.json", JSCHEMA_MAX_SCHEMA_SIZE, &len);
	T_OK(text != NULL);
	s = jschema_compile(text, len, &ce);
	T_CHECK(s != NULL, "create-user.json: %s at %s", ce.msg, ce.pointer);
	if (s != NULL) {
		struct jschema_result res;
		struct arena a;
		static const struct { const char *body, *want; } u[] = {
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\"}", "ok" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"role\":\"admin\","
			  "\"profile\":{\"zip\":\"12345\",\"age\":30}}", "ok" },
			{ "{\"name\":\"Ann\"}", IB "/email is required" },
			{ "{\"email\":\"nope\",\"name\":\"Ann\"}", IB "/email is not a valid email" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"\"}", IB "/name must be at least 1 character long" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"role\":\"root\"}",
			  IB "/role is not one of the allowed values" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"profile\":{\"zip\":\"1234\"}}",
			  IB "/profile/zip does not match the pattern" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"profile\":{\"age\":13.5}}",
			  IB "/profile/age must be an integer" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"profile\":{\"age\":12}}",
			  IB "/profile/age must be >= 13" },
			{ "{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"isAdmin\":true}", IB "/isAdmin is not allowed" },
			{ "[]", IB "/ must be an object" },
		};
		for (i = 0; i < ARRAY_LEN(u); i++) {
			enum jschema_status st;
			arena_init(&a, 4096);
			st = jschema_check(s, u[i].body, strlen(u[i].body), &a, &res);
			arena_free(&a);
			T_CHECK(strcmp(st == JSCHEMA_OK ? "ok" : res.msg, u[i].want) == 0,
			    "create-user case %zu: got \"%s\"", i, st == JSCHEMA_OK ? "ok" : res.msg);
		}
		T_OK(jschema_root_requires(s));
		jschema_free(s);
	}
end:
	free(text);
}

/* Every example schema in conf/schemas/ compiles, and the two newer ones behave as documented. */
static void
test_example_schemas(void)
{
	static const struct { const char *file, *body, *want; } c[] = {
		{ "update-user.json", "{\"name\":\"Ann\"}", "ok" },
		{ "update-user.json", "{}", IB "/ must have at least 1 property" },
		{ "update-user.json", "{\"profile\":{\"website\":null,\"zip\":\"12345\"}}", "ok" },
		{ "update-user.json", "{\"profile\":{\"website\":\"not a uri\"}}", IB "/profile/website is not a valid uri" },
		{ "update-user.json", "{\"tags\":[\"a\",\"a\"]}", IB "/tags must not contain duplicate items" },
		{ "update-user.json", "{\"tags\":[\"ok\",\"Bad\"]}", IB "/tags/1 does not match the pattern" },
		{ "create-order.json", "{\"customerId\":\"123e4567-e89b-12d3-a456-426614174000\",\"items\":"
		  "[{\"sku\":\"ABC-1234\",\"quantity\":2,\"unitPrice\":19.99}],\"payment\":{\"method\":\"sepa\","
		  "\"iban\":\"DE89370400440532013000\"}}", "ok" },
		{ "create-order.json", "{\"customerId\":\"123e4567-e89b-12d3-a456-426614174000\",\"items\":"
		  "[{\"sku\":\"ABC-1234\",\"quantity\":0}],\"payment\":{\"method\":\"card\",\"token\":\"tok_0123456789abcdef\"}}",
		  IB "/items/0/quantity must be >= 1" },
		{ "create-order.json", "{\"customerId\":\"123e4567-e89b-12d3-a456-426614174000\",\"items\":"
		  "[{\"sku\":\"ABC-1234\",\"quantity\":1,\"unitPrice\":1.001}],\"payment\":{\"method\":\"card\",\"token\":\"tok_0123456789abcdef\"}}",
		  IB "/items/0/unitPrice must be a multiple of 0.01" },
		{ "create-order.json", "{\"customerId\":\"123e4567-e89b-12d3-a456-426614174000\",\"items\":"
		  "[{\"sku\":\"ABC-1234\",\"quantity\":1}],\"payment\":{\"method\":\"cash\"}}",
		  IB "/payment does not match any of the schemas (oneOf)" },
		{ "create-order.json", "{\"items\":[]}", IB "/customerId is required" },
	};
	struct jschema_cerr ce;
	struct jschema_result res;
	struct jschema *s;
	struct arena a;
	struct dirent *de;
	char path[512], *text;
	size_t i, len;
	DIR *d;
	int n = 0;

	d = opendir("conf/schemas");
	T_OK(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "conf/schemas/%s", de->d_name);
		text = file_read_all(path, JSCHEMA_MAX_SCHEMA_SIZE, &len);
		T_CHECK(text != NULL, "%s: unreadable", path);
		if (text == NULL)
			continue;
		s = jschema_compile(text, len, &ce);
		T_CHECK(s != NULL, "%s:%d:%d: %s at %s", path, ce.line, ce.col, ce.msg, ce.pointer);
		jschema_free(s);
		free(text);
		n++;
	}
	closedir(d);
	T_OK(n >= 3);
	for (i = 0; i < ARRAY_LEN(c); i++) {
		enum jschema_status st;
		snprintf(path, sizeof(path), "conf/schemas/%s", c[i].file);
		text = file_read_all(path, JSCHEMA_MAX_SCHEMA_SIZE, &len);
		s = text ? jschema_compile(text, len, &ce) : NULL;
		free(text);
		T_CHECK(s != NULL, "%s does not compile", path);
		if (s == NULL)
			continue;
		arena_init(&a, 4096);
		st = jschema_check(s, c[i].body, strlen(c[i].body), &a, &res);
		arena_free(&a);
		jschema_free(s);
		T_CHECK(strcmp(st == JSCHEMA_OK ? "ok" : res.msg, c[i].want) == 0, "%s case %zu: got \"%s\"",
		    c[i].file, i, st == JSCHEMA_OK ? "ok" : res.msg);
	}
end:;
}

struct rcase {
	const char *pat, *subj;
	int want;
};

static void
test_regex(void)
{
	static const struct rcase c[] = {
		{ "abc", "xabcx", 1 }, { "^abc$", "abc", 1 }, { "^abc$", "abcd", 0 }, { "^abc$", "abc\n", 0 },
		{ "$", "", 1 }, { "", "", 1 }, { "", "x", 1 }, { "^$", "x", 0 },
		{ "a|b", "b", 1 }, { "a|b", "c", 0 }, { "^(ab)+c$", "ababc", 1 }, { "^(ab)+c$", "abac", 0 },
		{ "^a{2,3}$", "a", 0 }, { "^a{2,3}$", "aaa", 1 }, { "^a{2,3}$", "aaaa", 0 },
		{ "^a{2,}$", "aaaaa", 1 }, { "^a{2}$", "aa", 1 }, { "^a{0}$", "", 1 }, { "^(a|)+$", "aa", 1 },
		{ "^a?b*c+$", "c", 1 }, { "^a?b*c+$", "abbcc", 1 }, { "^a?b*c+$", "aab", 0 },
		{ "\\d+", "x9", 1 }, { "^\\D$", "5", 0 }, { "^\\w+$", "a_1Z", 1 }, { "^\\W$", "\xc3\xa9", 1 },
		{ "\\s", "a\xc2\xa0" "b", 1 }, { "^\\S+$", "a\xe2\x80\xa8" "b", 0 },
		{ "^.$", "\xc3\xa9", 1 }, { "^.$", "\xf0\x9f\x98\x80", 1 }, { "^.$", "\n", 0 }, { "^.$", "\r", 0 },
		{ "^[a-c]+$", "abcab", 1 }, { "^[^a-c]$", "d", 1 }, { "^[^a-c]$", "a", 0 },
		{ "[-a]", "-", 1 }, { "[a-]", "-", 1 }, { "^[\\d-]$", "-", 1 }, { "^[\\w.]+$", "a.b", 1 },
		{ "^[^\\d]$", "x", 1 }, { "^[\\D]$", "1", 0 }, { "^[]$", "", 0 }, { "^[^]$", "\n", 1 },
		{ "^[\\]]$", "]", 1 }, { "^[\\b]$", "\b", 1 }, { "^[\\u00e0-\\u00ff]$", "\xc3\xa9", 1 },
		{ "\\bfoo\\b", "a foo b", 1 }, { "\\bfoo\\b", "afoo", 0 }, { "\\Bfoo", "afoo", 1 },
		{ "^\\u00e9$", "\xc3\xa9", 1 }, { "^\\u{1F600}$", "\xf0\x9f\x98\x80", 1 },
		{ "^\\uD83D\\uDE00$", "\xf0\x9f\x98\x80", 1 }, { "^\\x41\\t\\n$", "A\t\n", 1 },
		{ "^\\cJ$", "\n", 1 }, { "^\\0$", "", 0 }, { "^\\/\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\$", "/.*+?()[]{}|^$\\", 1 },
		{ "(?:a|b)c", "bc", 1 }, { "(?<n>a)b", "ab", 1 }, { "a*?b", "aab", 1 }, { "^a+?$", "aaa", 1 },
		{ "^a{1,2}?$", "aa", 1 }, { "^[\\s\\S]*$", "any\nthing", 1 },
		{ "^(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", 0 },
		{ "^(a|a)*$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0 },
		{ "^(a*)*b$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
		{ "\xc3\xa9+", "x\xc3\xa9\xc3\xa9", 1 },
		/* refused */
		{ "(?=a)", "a", -1 }, { "(?!a)", "a", -1 }, { "(?<=a)", "a", -1 }, { "(?<!a)", "a", -1 },
		{ "(a)\\1", "aa", -1 }, { "\\k<n>", "", -1 }, { "\\p{L}", "a", -1 }, { "\\P{L}", "a", -1 },
		{ "a**", "a", -1 }, { "*a", "a", -1 }, { "+", "", -1 }, { "(a", "a", -1 }, { "a)", "a", -1 },
		{ "[a", "a", -1 }, { "a{2,1}", "a", -1 }, { "{", "{", -1 }, { "}", "}", -1 }, { "]", "]", -1 },
		{ "a{1001}", "a", -1 }, { "\\q", "q", -1 }, { "^*", "", -1 }, { "\\b+", "", -1 },
		{ "[z-a]", "a", -1 }, { "\\c1", "", -1 }, { "\\00", "", -1 }, { "[\\d-z]", "", -1 },
		{ "\\", "", -1 }, { "\\xg0", "", -1 }, { "\\u12", "", -1 }, { "\\u{110000}", "", -1 },
		{ "a{,3}", "a", -1 }, { "(?<1a>x)", "x", -1 }, { "[\\B]", "", -1 }, { "\\-", "-", -1 },
		{ "\xff", "", -1 }, { "((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))", "a", -1 },
	};
	char err[128];
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		err[0] = '\0';
		r = jschema_regex_search(c[i].pat, strlen(c[i].pat), c[i].subj, strlen(c[i].subj), err,
		    sizeof(err));
		T_CHECK(r == c[i].want, "regex case %zu /%s/ on \"%s\": %d want %d (%s)", i, c[i].pat,
		    c[i].subj, r, c[i].want, err);
	}
	T_EQ_INT(jschema_regex_search("^a\\u0000b$", 10, "a\0b", 3, err, sizeof(err)), 1);
end:;
}

/* UTF-8 in patterns and subjects, decoded strictly (RFC 3629): overlongs, surrogates, code
 * points above U+10FFFF, bytes that cannot start a sequence and truncated sequences are
 * invalid. An invalid pattern is refused; in a subject each byte of an invalid sequence is
 * one U+FFFD, so a search never fails on text jansson would not have produced anyway. */
static void
test_regex_utf8(void)
{
	static const struct rcase c[] = {
		/* the edges of each length are characters */
		{ "^.$", "\xc2\x80", 1 }, { "^.$", "\xdf\xbf", 1 }, { "^.$", "\xe0\xa0\x80", 1 },
		{ "^.$", "\xed\x9f\xbf", 1 }, { "^.$", "\xee\x80\x80", 1 }, { "^.$", "\xef\xbf\xbf", 1 },
		{ "^.$", "\xf0\x90\x80\x80", 1 }, { "^.$", "\xf4\x8f\xbf\xbf", 1 },
		{ "^\\u{10FFFF}$", "\xf4\x8f\xbf\xbf", 1 }, { "^\\uD7FF$", "\xed\x9f\xbf", 1 },
		/* invalid subjects: one U+FFFD per byte */
		{ "^\\uFFFD\\uFFFD$", "\xc0\xaf", 1 },                          /* overlong / */
		{ "^\\uFFFD\\uFFFD$", "\xc1\xbf", 1 },
		{ "^\\uFFFD{3}$", "\xe0\x80\xaf", 1 },                           /* overlong, 3 bytes */
		{ "^\\uFFFD{3}$", "\xe0\x9f\xbf", 1 },
		{ "^\\uFFFD{4}$", "\xf0\x80\x80\xaf", 1 },                       /* overlong, 4 bytes */
		{ "^\\uFFFD{4}$", "\xf0\x8f\xbf\xbf", 1 },
		{ "^\\uFFFD{3}$", "\xed\xa0\x80", 1 },                           /* surrogate D800 */
		{ "^\\uFFFD{3}$", "\xed\xbf\xbf", 1 },                           /* surrogate DFFF */
		{ "^\\uFFFD{4}$", "\xf4\x90\x80\x80", 1 },                       /* U+110000 */
		{ "^\\uFFFD{4}$", "\xf5\x80\x80\x80", 1 },
		{ "^\\uFFFD$", "\xff", 1 }, { "^\\uFFFD$", "\x80", 1 }, { "^\\uFFFD$", "\xfe", 1 },
		{ "^\\uFFFD\\uFFFDa$", "\xe2\x82" "a", 1 },                       /* truncated, then ASCII */
		{ "^\\uFFFD\\uFFFD$", "\xe2\x82", 1 },                           /* truncated at the end */
		{ "^\\uFFFD{3}$", "\xf0\x9f\x98", 1 },
		{ "^\\uFFFD\\u20AC$", "\xe2\xe2\x82\xac", 1 },                   /* resynchronises */
		{ "^.$", "\xed\xa0\x80", 0 }, { "^.$", "\xc0\xaf", 0 }, { "^.$", "\xe2\x82", 0 },
		/* invalid patterns are refused */
		{ "\xc0\xaf", "", -1 }, { "\xe0\x80\xaf", "", -1 }, { "\xf0\x80\x80\xaf", "", -1 },
		{ "\xed\xa0\x80", "", -1 }, { "\xf4\x90\x80\x80", "", -1 }, { "\xf8\x88\x80\x80\x80", "", -1 },
		{ "a\xe2\x82", "", -1 }, { "\xe2\x82" "a", "", -1 }, { "[\xe2\x82]", "", -1 },
		{ "[a-\xed\xa0\x80]", "", -1 }, { "\x80", "", -1 },
		{ "^[\xc2\x80-\xf4\x8f\xbf\xbf]$", "\xf4\x8f\xbf\xbf", 1 },
	};
	char err[128];
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		err[0] = '\0';
		r = jschema_regex_search(c[i].pat, strlen(c[i].pat), c[i].subj, strlen(c[i].subj), err,
		    sizeof(err));
		T_CHECK(r == c[i].want, "utf-8 case %zu: %d want %d (%s)", i, r, c[i].want, err);
		if (c[i].want == -1)
			T_CHECK(strcmp(err, "invalid UTF-8 in the pattern") == 0, "utf-8 case %zu: \"%s\"",
			    i, err);
	}
}

/* No catastrophic backtracking: classic exponential patterns on long subjects finish fast;
 * the worst case runs into the work budget instead of the CPU. */
static void
test_regex_bounds(void)
{
	size_t n = 100000;
	char *s = malloc(n + 1);
	char err[128];
	clock_t t0;
	double secs;
	int r;

	T_OK(s != NULL);
	memset(s, 'a', n);
	s[n] = '\0';
	t0 = clock();
	r = jschema_regex_search("^(a+)+$", 7, s, n - 1, err, sizeof(err));
	T_EQ_INT(r, 1);
	s[n - 1] = '!';
	r = jschema_regex_search("^(a|aa)*(a+)+$", 14, s, n, err, sizeof(err));
	T_EQ_INT(r, 0);
	r = jschema_regex_search("(x+x+)+y", 8, s, n, err, sizeof(err));
	T_EQ_INT(r, 0);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	T_CHECK(secs < 10.0, "exponential patterns took %.2fs", secs);
	/* ~1000 live states per character: the budget stops it */
	t0 = clock();
	r = jschema_regex_search("a{0,1000}b", 10, s, 30000, err, sizeof(err));
	T_EQ_INT(r, -2);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	T_CHECK(secs < 10.0, "budgeted search took %.2fs", secs);
end:
	free(s);
}

static void
test_formats(void)
{
	static const struct { const char *fmt, *s; int want; } c[] = {
		{ "email", "a@b.co", 1 }, { "email", "first.last+tag@sub.example.com", 1 },
		{ "email", "x_y!#$%&'*/=?^`{|}~-@a-b.io", 1 }, { "email", "A@B.CO", 1 },
		{ "email", "a@b", 0 }, { "email", "@b.co", 0 }, { "email", "a@", 0 }, { "email", "a..b@c.co", 0 },
		{ "email", ".a@b.co", 0 }, { "email", "a.@b.co", 0 }, { "email", "a@-b.co", 0 },
		{ "email", "a@b-.co", 0 }, { "email", "a b@c.co", 0 }, { "email", "\xc3\xa9@b.co", 0 },
		{ "email", "a@b..co", 0 }, { "email", "a@b.co.", 0 }, { "email", "a@b@c.co", 0 },
		{ "email", "\"a\"@b.co", 0 }, { "email", "a@[127.0.0.1]", 0 },
		{ "email", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.co", 0 },
		{ "uuid", "123e4567-e89b-12d3-a456-426614174000", 1 },
		{ "uuid", "123E4567-E89B-12D3-A456-426614174000", 1 },
		{ "uuid", "00000000-0000-0000-0000-000000000000", 1 },
		{ "uuid", "123e4567e89b12d3a456426614174000", 0 },
		{ "uuid", "123e4567-e89b-12d3-a456-42661417400g", 0 },
		{ "uuid", "urn:uuid:123e4567-e89b-12d3-a456-426614174000", 0 },
		{ "uuid", "{123e4567-e89b-12d3-a456-426614174000}", 0 },
		{ "date", "2024-02-29", 1 }, { "date", "2000-02-29", 1 }, { "date", "2023-02-29", 0 },
		{ "date", "1900-02-29", 0 }, { "date", "2024-13-01", 0 }, { "date", "2024-00-10", 0 },
		{ "date", "2024-1-01", 0 }, { "date", "2024-04-31", 0 }, { "date", "2024-12-31", 1 },
		{ "date", "2024-01-00", 0 }, { "date", "2024/01/01", 0 }, { "date", "2024-01-01T00:00:00Z", 0 },
		{ "date-time", "2024-01-01T00:00:00Z", 1 }, { "date-time", "2024-01-01t00:00:00z", 1 },
		{ "date-time", "2024-01-01T23:59:60Z", 1 }, { "date-time", "2024-01-01T22:59:60Z", 0 },
		{ "date-time", "2024-01-01T23:59:60+01:00", 0 }, { "date-time", "2024-01-01T00:59:60+01:00", 1 },
		{ "date-time", "2024-01-01T00:00:00.123456+05:30", 1 }, { "date-time", "2024-01-01T00:00:00", 0 },
		{ "date-time", "2024-01-01 00:00:00Z", 0 }, { "date-time", "2024-01-01T24:00:00Z", 0 },
		{ "date-time", "2024-01-01T00:00:00.Z", 0 }, { "date-time", "2024-01-01T00:00:00+24:00", 0 },
		{ "date-time", "2024-02-30T00:00:00Z", 0 }, { "date-time", "2024-01-01T00:60:00Z", 0 },
		{ "date-time", "2024-01-01T00:00:00+0100", 0 }, { "date-time", "2024-01-01T0:00:00Z", 0 },
		{ "uri", "https://example.com", 1 }, { "uri", "https://user:pw@example.com:8443/p/a?q=1#f", 1 },
		{ "uri", "urn:isbn:0451450523", 1 }, { "uri", "mailto:a@b.co", 1 }, { "uri", "http://[::1]:80/", 1 },
		{ "uri", "file:///etc/x", 1 }, { "uri", "https://example.com/a%20b", 1 }, { "uri", "x:", 1 },
		{ "uri", "/relative", 0 }, { "uri", "example.com", 0 }, { "uri", "http://exa mple.com", 0 },
		{ "uri", "http://%zz", 0 }, { "uri", "http://x/#a#b", 0 }, { "uri", "https://\xc3\xa9.com", 0 },
		{ "uri", "1http://x", 0 }, { "uri", "http://[::1/", 0 }, { "uri", "http://x:80a/", 0 },
		{ "uri", "http://x/a%2", 0 }, { "uri", "", 0 }, { "uri", "http://x/<script>", 0 },
		{ "ipv4", "1.2.3.4", -1 },
	};
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(c); i++) {
		r = jschema_format_check(c[i].fmt, c[i].s, strlen(c[i].s));
		T_CHECK(r == c[i].want, "format case %zu %s \"%s\": %d want %d", i, c[i].fmt, c[i].s, r,
		    c[i].want);
	}
}

/* Exponential in-place fan-out ($ref DAG) and huge inputs end in "too complex", in bounded
 * time, never in a hang. */
static void
test_budget(void)
{
	struct sbuf sch = { 0 }, body = { 0 };
	clock_t t0;
	double secs;
	int i;

	sbuf_adds(&sch, "{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/d0\"},\"$defs\":{");
	for (i = 0; i < 15; i++)
		sbuf_printf(&sch, "\"d%d\":{\"allOf\":[{\"$ref\":\"#/$defs/d%d\"},{\"$ref\":\"#/$defs/d%d\"}]},",
		    i, i + 1, i + 1);
	sbuf_adds(&sch, "\"d15\":{\"type\":\"integer\"}}}");
	sbuf_adds(&body, "[0");
	for (i = 0; i < 600; i++)
		sbuf_adds(&body, ",0");
	sbuf_adds(&body, "]");
	t0 = clock();
	T_EQ_STR(check(sbuf_cstr(&sch), sbuf_cstr(&body)), IB "too complex to check");
	T_EQ_STR(check(sbuf_cstr(&sch), "[0,1]"), "ok");
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	T_CHECK(secs < 10.0, "fan-out took %.2fs", secs);
	/* one more level of in-place applicators than allowed is a compile error */
	sbuf_reset(&sch);
	sbuf_adds(&sch, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
	for (i = 0; i < 20; i++)
		sbuf_printf(&sch, "\"d%d\":{\"allOf\":[{\"$ref\":\"#/$defs/d%d\"}]},", i, i + 1);
	sbuf_adds(&sch, "\"d20\":{}}}");
	T_EQ_STR(check(sbuf_cstr(&sch), "1"),
	    "COMPILE: more than 32 levels of $ref/allOf/anyOf/oneOf/not applied to one value");
	/* uniqueItems on a large array is n log n, not n^2 */
	sbuf_reset(&body);
	sbuf_adds(&body, "[0");
	for (i = 1; i < 100000; i++)
		sbuf_printf(&body, ",%d", i);
	sbuf_adds(&body, "]");
	t0 = clock();
	T_EQ_STR(check("{\"uniqueItems\":true}", sbuf_cstr(&body)), "ok");
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	T_CHECK(secs < 10.0, "uniqueItems on 100000 items took %.2fs", secs);
	/* a long string against a heavy pattern runs into the budget */
	sbuf_reset(&body);
	sbuf_addc(&body, '"');
	for (i = 0; i < 40000; i++)
		sbuf_addc(&body, 'a');
	sbuf_addc(&body, '"');
	T_EQ_STR(check("{\"pattern\":\"a{0,1000}b\"}", sbuf_cstr(&body)), IB "too complex to check");
	T_EQ_STR(check("{\"pattern\":\"^a+$\"}", sbuf_cstr(&body)), "ok");
	/* the schema text itself is bounded */
	{
		size_t big = JSCHEMA_MAX_SCHEMA_SIZE + 1;
		char *t = malloc(big);
		struct jschema_cerr ce;
		T_OK(t != NULL);
		memset(t, ' ', big);
		t[0] = '{';
		t[big - 1] = '}';
		T_OK(jschema_compile(t, big, &ce) == NULL);
		T_EQ_STR(ce.msg, "schema larger than 1 MiB");
		free(t);
	}
end:
	sbuf_fini(&sch);
	sbuf_fini(&body);
}

T_MAIN(test_json, test_depth, test_forbidden, test_types, test_const_enum, test_numbers,
    test_strings, test_arrays, test_objects, test_combinators, test_order, test_result_fields,
    test_root_requires, test_compile_errors, test_compile_ok, test_example_schemas, test_regex,
    test_regex_utf8, test_regex_bounds, test_formats, test_budget)
