/* SPDX-License-Identifier: MIT
 * Unit tests for scrub_has_stack_trace (src/filters/scrub.c): real error bodies Node.js apps send
 * (Error.stack from Node 18/20 as text and as JSON, Express 4/5 finalhandler development
 * pages, pg / mysql2 / sqlite3 / mongodb / mongoose errors serialised with res.json(err),
 * Node system errors) must be caught; ordinary error bodies with "at" in them must not. */
#include <stdlib.h>

#include "t.h"
#include "filters/scrub.h"

/* ---- caught ---------------------------------------------------------------------------- */

static const char node20_text[] =
    "TypeError: Cannot read properties of undefined (reading 'id')\n"
    "    at getUser (/app/src/routes/users.js:42:27)\n"
    "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n"
    "    at next (/app/node_modules/express/lib/router/route.js:144:13)\n"
    "    at Route.dispatch (/app/node_modules/express/lib/router/route.js:114:3)\n"
    "    at /app/node_modules/express/lib/router/index.js:284:15\n"
    "    at Function.process_params (/app/node_modules/express/lib/router/index.js:346:12)\n";

static const char node18_esm[] =
    "Error: boom\n"
    "    at file:///app/server.mjs:12:11\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
    "    at async Promise.all (index 0)\n";

/* one frame each: top-level module code, a node: builtin, an async frame, a constructor */
static const char one_frame_anon[] = "Error: x\n    at Object.<anonymous> (/app/index.js:3:9)";
static const char one_frame_builtin[] = "Error: x\n    at EventEmitter.emit (node:events:517:28)";
static const char one_frame_async[] = "Error: x\n    at async handler (/srv/api/h.js:10:5)";
static const char one_frame_new[] = "Error: x\n    at new Client (/srv/node_modules/pg/lib/client.js:40:5)";
static const char one_frame_crlf[] = "Error: x\r\n\tat run (/srv/a.js:1:2)\r\n";
static const char one_frame_windows[] = "Error: x\n    at main (C:\\app\\src\\main.js:7:3)";

/* res.status(400).json({ message: err.message, stack: err.stack }) */
static const char json_stack[] =
    "{\"message\":\"Cannot read properties of undefined (reading 'id')\",\"stack\":\"TypeError: "
    "Cannot read properties of undefined (reading 'id')\\n    at getUser (/app/src/routes/users.js:"
    "42:27)\\n    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer"
    ".js:95:5)\"}";

/* frames in JSON without the "stack" key (e.g. { error: String(err.stack) }) */
static const char json_frames_other_key[] =
    "{\"error\":\"Error: nope\\n    at Object.<anonymous> (/app/index.js:3:9)\\n    at Module._compile "
    "(node:internal/modules/cjs/loader:1256:14)\"}";

/* a stack split into an array of trimmed lines */
static const char json_frame_array[] =
    "{\"trace\":[\"Error: nope\",\"at handler (/app/routes/a.js:5:11)\",\"at next (/app/x.js:1:2)\"]}";

/* Windows paths inside JSON: escaped backslashes, and "\\n" in "\\node_modules" is not a newline */
static const char json_windows[] =
    "{\"error\":\"Error: x\\n    at Layer.handle (C:\\\\app\\\\node_modules\\\\express\\\\lib\\\\router"
    "\\\\layer.js:95:5)\"}";

/* "stack" key alone, without frames (stack trimmed to its first line) */
static const char json_stack_key_only[] = "{\"error\":\"boom\",\"stack\":\"Error: boom\"}";
static const char json_stack_key_spaced[] = "{ \"stack\" :\n \"ValidationException: bad\" }";
static const char json_stack_array[] = "{\"stackTrace\":[\"TypeError: x\",\"  at f (a)\"]}";

/* Express 4.18 finalhandler, NODE_ENV=development, body-parser's 400 on bad JSON */
static const char express4_dev[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
    "</head>\n<body>\n<pre>SyntaxError: Unexpected token } in JSON at position 9<br> &nbsp; &nbsp;"
    "at JSON.parse (&lt;anonymous&gt;)<br> &nbsp; &nbsp;at parse (/app/node_modules/body-parser/lib/"
    "types/json.js:89:19)<br> &nbsp; &nbsp;at /app/node_modules/body-parser/lib/read.js:128:18<br> "
    "&nbsp; &nbsp;at AsyncResource.runInAsyncScope (node:async_hooks:203:9)<br> &nbsp; &nbsp;at "
    "invokeCallback (/app/node_modules/raw-body/index.js:238:16)</pre>\n</body>\n</html>\n";

/* Express 5 (finalhandler 2), a thrown error with err.status = 422 */
static const char express5_dev[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
    "</head>\n<body>\n<pre>Error: invalid widget<br> &nbsp; &nbsp;at /app/app.js:14:15<br> &nbsp; "
    "&nbsp;at Layer.handleRequest (/app/node_modules/router/lib/layer.js:152:17)<br> &nbsp; &nbsp;at "
    "next (/app/node_modules/router/lib/route.js:157:13)</pre>\n</body>\n</html>\n";

/* pg DatabaseError through res.status(409).json(err) */
static const char pg_unique[] =
    "{\"length\":205,\"name\":\"error\",\"severity\":\"ERROR\",\"code\":\"23505\",\"detail\":\"Key "
    "(email)=(a@b.c) already exists.\",\"schema\":\"public\",\"table\":\"users\",\"constraint\":"
    "\"users_email_key\",\"file\":\"nbtinsert.c\",\"line\":\"663\",\"routine\":\"_bt_check_unique\"}";
static const char pg_message[] =
    "{\"error\":\"duplicate key value violates unique constraint \\\"users_email_key\\\"\"}";
static const char pg_relation[] = "{\"error\":\"relation \\\"users\\\" does not exist\"}";
static const char pg_column_text[] = "column \"emial\" does not exist";
static const char pg_syntax[] = "{\"message\":\"syntax error at or near \\\"FORM\\\"\"}";
static const char pg_detail[] = "{\"detail\":\"Key (team_id)=(7) is not present in table \\\"teams\\\".\"}";
static const char pg_auth[] = "password authentication failed for user \"api\"";

/* mysql2 */
static const char mysql_dup[] =
    "{\"message\":\"Duplicate entry 'a@b.c' for key 'users.email'\",\"code\":\"ER_DUP_ENTRY\","
    "\"errno\":1062,\"sqlState\":\"23000\",\"sqlMessage\":\"Duplicate entry 'a@b.c' for key "
    "'users.email'\",\"sql\":\"INSERT INTO users (email) VALUES ('a@b.c')\"}";
static const char mysql_code_only[] = "{\"code\":\"ER_NO_SUCH_TABLE\",\"errno\":1146}";
static const char mysql_syntax[] =
    "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server "
    "version for the right syntax to use near 'FORM users' at line 1";

/* sqlite3 / better-sqlite3 */
static const char sqlite_err[] = "{\"error\":\"SQLITE_CONSTRAINT: UNIQUE constraint failed: users.email\"}";
static const char sqlite_code[] = "{\"errno\":19,\"code\":\"SQLITE_CONSTRAINT\"}";
static const char sqlite_table[] = "{\"error\":\"no such table: userz\"}";

/* mongodb driver 4/5 through res.json(err): no message, the duplicate-key shape */
static const char mongo_v5[] =
    "{\"index\":0,\"code\":11000,\"keyPattern\":{\"email\":1},\"keyValue\":{\"email\":\"a@b.c\"}}";
/* mongodb driver 6: errorResponse holds errmsg */
static const char mongo_v6[] =
    "{\"errorResponse\":{\"index\":0,\"code\":11000,\"errmsg\":\"E11000 duplicate key error "
    "collection: test.users index: email_1 dup key: { email: \\\"a@b.c\\\" }\"},\"index\":0,"
    "\"code\":11000}";
static const char mongoose_validation[] =
    "{\"errors\":{\"email\":{\"name\":\"ValidatorError\",\"message\":\"Path `email` is required.\","
    "\"properties\":{\"message\":\"Path `email` is required.\",\"type\":\"required\",\"path\":"
    "\"email\"},\"kind\":\"required\",\"path\":\"email\"}},\"_message\":\"User validation failed\","
    "\"name\":\"ValidationError\",\"message\":\"User validation failed: email: Path `email` is "
    "required.\"}";
static const char mongoose_cast[] =
    "{\"stringValue\":\"\\\"abc\\\"\",\"valueType\":\"string\",\"kind\":\"ObjectId\",\"value\":"
    "\"abc\",\"path\":\"_id\",\"reason\":{},\"name\":\"CastError\",\"message\":\"Cast to ObjectId "
    "failed for value \\\"abc\\\" (type string) at path \\\"_id\\\" for model \\\"User\\\"\"}";
static const char mongoose_select[] =
    "MongooseServerSelectionError: connect ECONNREFUSED ::1:27017";

/* Node system errors */
static const char econnrefused_text[] = "{\"error\":\"connect ECONNREFUSED 127.0.0.1:5432\"}";
static const char econnrefused_json[] =
    "{\"errno\":-111,\"code\":\"ECONNREFUSED\",\"syscall\":\"connect\",\"address\":\"127.0.0.1\","
    "\"port\":5432}";
static const char enotfound[] = "{\"error\":\"getaddrinfo ENOTFOUND db.internal\"}";
static const char syscall_only[] = "{\"errno\":-13,\"code\":\"EACCES\",\"syscall\":\"open\",\"path\":\"/etc/app/key.pem\"}";

/* ORMs and other runtimes */
static const char sequelize[] = "{\"name\":\"SequelizeUniqueConstraintError\",\"errors\":[]}";
static const char prisma[] = "{\"name\":\"PrismaClientKnownRequestError\",\"code\":\"P2002\"}";
static const char typeorm[] = "{\"name\":\"QueryFailedError\",\"query\":\"SELECT 1\"}";
static const char python[] = "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n";

/* ---- passed ---------------------------------------------------------------------------- */

static const char *const clean[] = {
	"",
	"Bad Request",
	"Meet at 10:30",
	"Meet at 10:30:45 at the entrance",
	"{\"error\":\"Not found\"}",
	"{\"error\":\"User not found\",\"requestId\":\"abc\"}",
	"{\"error\":\"Error: invalid token\"}",
	"{\"message\":\"Store opens at 10:30:00, see /docs/hours\"}",
	"{\"error\":\"Invalid input\",\"details\":[{\"field\":\"email\",\"message\":\"must be at "
	    "most 254 characters\"}]}",
	"{\"message\":\"Validation failed:\\n    at least 8 characters\\n    at most 64 characters\"}",
	"{\"message\":\"Error at line 3, column 14\"}",
	"{\"error\":\"look at /docs/errors:1:2 for help\"}",
	"{\"error\":\"Something went wrong at checkout\",\"at\":\"2024-05-01T10:30:00Z\"}",
	"{\"retryAt\":\"10:30:00\",\"message\":\"try again\\n    at 10:30:00\"}",
	"Please try again\n    at 10:30:45 tomorrow\n",
	"{\"stack\":\"MEAN\",\"team\":\"web\"}",
	"{\"techStack\":[\"node\",\"postgres\"]}",
	"{\"type\":\"stack\",\"error\":\"overflow\"}",
	"{\"error\":\"USER_NOT_FOUND\",\"code\":\"ORDER_LIMIT\"}",
	"{\"error\":\"the relation between a and b does not exist\"}",
	"{\"error\":\"SQLITE is not supported\"}",
	"{\"error\":\"Cast to string\"}",
	"{\"error\":\"Key (optional) missing\"}",
	/* Express's 404 page in production and development */
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
	    "</head>\n<body>\n<pre>Cannot GET /nope</pre>\n</body>\n</html>\n",
	/* finalhandler in production: the status text only */
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
	    "</head>\n<body>\n<pre>Bad Request</pre>\n</body>\n</html>\n",
	"<ul><li>at home: 10:30:45</li><li>at work (room 12:30:45)</li></ul>",
	"{\"errors\":[{\"path\":\"/profile/zip\",\"message\":\"must match pattern\"}]}",
	"    at (/app/x.js:1:2",                /* no closing parenthesis */
	"    at f (x.js:1:2)",                  /* no directory: not a file path */
	"    at f (/app/x.js:1)",               /* line without column */
	"    at f (/app/x.js::2)",
	"    at f (:1:2)",
	"    at \n",
	"at",
};

struct sample { const char *name; const char *p; size_t n; };
#define S(x) { #x, x, sizeof(x) - 1 }

static void
test_caught(void)
{
	static const struct sample s[] = {
		S(node20_text), S(node18_esm), S(one_frame_anon), S(one_frame_builtin),
		S(one_frame_async), S(one_frame_new), S(one_frame_crlf), S(one_frame_windows),
		S(json_stack), S(json_frames_other_key), S(json_frame_array), S(json_windows),
		S(json_stack_key_only), S(json_stack_key_spaced), S(json_stack_array),
		S(express4_dev), S(express5_dev),
		S(pg_unique), S(pg_message), S(pg_relation), S(pg_column_text), S(pg_syntax),
		S(pg_detail), S(pg_auth),
		S(mysql_dup), S(mysql_code_only), S(mysql_syntax),
		S(sqlite_err), S(sqlite_code), S(sqlite_table),
		S(mongo_v5), S(mongo_v6), S(mongoose_validation), S(mongoose_cast), S(mongoose_select),
		S(econnrefused_text), S(econnrefused_json), S(enotfound), S(syscall_only),
		S(sequelize), S(prisma), S(typeorm), S(python),
	};
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		T_CHECK(scrub_has_stack_trace(s[i].p, s[i].n) == 1, "%s not caught", s[i].name);
}

static void
test_clean(void)
{
	size_t i;

	for (i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
		T_CHECK(scrub_has_stack_trace(clean[i], strlen(clean[i])) == 0,
		    "false positive on \"%s\"", clean[i]);
	T_EQ_INT(scrub_has_stack_trace(NULL, 0), 0);
	T_EQ_INT(scrub_has_stack_trace("x", 0), 0);
end:;
}

/* The body is not NUL-terminated and may hold NULs; the detector reads only n bytes. */
static void
test_bounds(void)
{
	char *p;
	size_t n = sizeof(node20_text) - 1, i;

	/* every prefix of a trace: never reads past the end (ASan), and the full one is caught */
	for (i = 0; i <= n; i++) {
		p = malloc(i ? i : 1);
		T_OK(p != NULL);
		memcpy(p, node20_text, i);
		(void)scrub_has_stack_trace(p, i);
		free(p);
	}
	/* a frame cut before its column is not a frame */
	T_EQ_INT(scrub_has_stack_trace("Error\n    at f (/a.js:1:", 24), 0);
	/* NULs around a frame */
	{
		static const char z[] = "\0\0Error\0\n    at f (/a/b.js:1:2)\0";
		T_EQ_INT(scrub_has_stack_trace(z, sizeof(z) - 1), 1);
	}
end:;
}

/* A large body of near-misses stays fast (the scan is linear). */
static void
test_pathological(void)
{
	size_t n = SCRUB_INSPECT_MAX, i;
	char *p = malloc(n);
	static const char *const unit[] = { "> at ", "\"at (", "Key (", "\"stack\":[", "at at ",
	    "    at f (", "USER_", "\\\\" };
	size_t u;

	T_OK(p != NULL);
	for (u = 0; u < sizeof(unit) / sizeof(unit[0]); u++) {
		size_t ul = strlen(unit[u]);
		for (i = 0; i < n; i++)
			p[i] = unit[u][i % ul];
		T_CHECK(scrub_has_stack_trace(p, n) == 0, "unit \"%s\" repeated", unit[u]);
	}
	/* a real frame after 60 KiB of padding is still found */
	memset(p, ' ', n);
	memcpy(p + 61440, "\n    at f (/a/b.js:1:2)\n", 24);
	T_EQ_INT(scrub_has_stack_trace(p, n), 1);
end:
	free(p);
}

T_MAIN(test_caught, test_clean, test_bounds, test_pathological)
