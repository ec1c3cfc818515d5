/* SPDX-License-Identifier: MIT
 * redact — secrets out of log text. Given raw text (an upstream error body, a request path,
 * a message), appends it to an sbuf with every secret the rules below recognise replaced by
 * the constant marker "[redacted]". Everything visor logs that it did not write itself goes
 * through here (core/log.h: log_kv, log_msg), so a stack trace that quotes a connection
 * string or a token never reaches stdout or stderr with it.
 *
 * What is caught (ASCII case-insensitive throughout):
 *
 *   1. URL userinfo: after "://" (also JSON's ":\/\/", and a single slash after a scheme of
 *      two alphanumerics or more, as in a path whose slashes were merged), any scheme, the
 *      text up to the LAST '@' of the authority becomes the marker:
 *      postgres://app:s3cret@db:5432/app → postgres://[redacted]@db:5432/app; redis://:pw@h,
 *      mongodb+srv://u:p@c.example.net, http://user@host (no password) alike. The authority
 *      is the text after the separator up to whitespace, a control byte, a quote (" ' `),
 *      < >, a backslash that is not \\ or \/, or the next scheme separator. A candidate that
 *      holds '/', '?' or '#' before its '@' is taken only when it has a ':' before that
 *      separator followed by something other than a port number (user:pa/ss@host is caught,
 *      https://host/u/bob@example.com and http://host:8080/a@b are not); otherwise the last
 *      '@' before the first '/', '?' or '#' ends it, as in any URL parser (u@h/x@y).
 *   2. Credentials after an HTTP auth scheme: "Bearer <token68>" and "Basic <token68>" as
 *      whole words followed by blanks, as in an Authorization header or in prose. A token
 *      that is only lower-case letters and shorter than 20 bytes is taken for prose ("bearer
 *      token", "basic validation") and kept; "Bearer realm=..." / error="..." (a challenge's
 *      auth-params) are kept.
 *   3. JWT-shaped strings anywhere: "eyJ" then base64url runs joined by at least two dots
 *      (JWS compact, an empty signature included; JWE's five segments; extra segments go
 *      with it). The whole token becomes the marker.
 *   4. Values of keys named like secrets. A key is a run of [A-Za-z0-9_.-] (its last 64
 *      bytes are what counts); it names a secret when, lower-cased with '_', '-' and '.'
 *      removed, it contains password, passwd, passphrase, pwd, secret, token, apikey,
 *      accesskey, accountkey, authorization, private, credential, session, cookie,
 *      signature or csrf — or when one of its words (split at _ - . and lower→Upper camel
 *      case) is auth, pass, pw, sig, sid, jwt, otp or creds — unless it ends in "error" or
 *      "exception" (TokenExpiredError: jwt expired is an error name, not a key). The value
 *      is found in these forms:
 *        - JSON / JS / Python: "key": v, 'key': v, \"key\": v (JSON inside a JSON string),
 *          &quot;key&quot;: v (HTML-escaped), also with = or => for :. v is a quoted
 *          string (its content is replaced, the quotes stay), an object or array (replaced
 *          whole, brackets included, nesting and strings followed), or a scalar up to , } ]
 *          or a blank. The bare literals null, true, false and undefined are kept.
 *        - key=value, key = value, key=>value: query strings, form bodies, libpq and ADO
 *          connection strings (password=s3cret;), env dumps (DB_PASSWORD=x). An unquoted
 *          value ends at a blank, a control byte, & ; , a quote, < > or a backslash.
 *        - key: value lines (YAML, HTTP headers, util.inspect): the key must start a line
 *          (after a newline, a JSON "\n", an HTML tag's '>' or an entity's ';'), open a
 *          string, or follow '{' or ','; the value runs to the end of the line (a newline,
 *          a JSON "\n", an HTML tag), to a raw '"' when the key sits inside a JSON string,
 *          and also to , } ) after '{' or ','. Authorization, Proxy-Authorization, Cookie
 *          and Set-Cookie lines are caught wherever they start. A key named by a word only
 *          (auth, jwt...) takes a line value only when it is one token: "jwt: claim not
 *          forwarded" is a message's prefix, "auth: s3cret" a value.
 *   With REDACT_CUT (the text is the start of a longer one, e.g. a 4 KiB excerpt), a URL
 *   authority, a JWT-shaped run (8 bytes or more) or a credential that reaches the end is
 *   redacted even though it may be incomplete.
 *
 * What is not caught, deliberately or by construction: a bare secret with nothing naming it
 * (an opaque API key alone in prose, a password in a sentence); a key not on the list
 * (dsn, key, pin, hash); a "key: value" in the middle of a sentence ("Invalid token:
 * expected 3 parts" is prose and stays); userinfo in a percent-encoded URL
 * (postgres%3A%2F%2F...) or in a connection string with no "://" (Go's user:pass@tcp(...));
 * a URL password with a '/', '?' or '#' whose text before it is all digits; an unquoted
 * value's part after a blank or a terminator listed above (password=ab cd keeps "cd"); a
 * line value's part after a raw '"' when the key sits inside a JSON string; a lower-case
 * bearer token shorter than 20 bytes. False positives cost only text: a redacted value is
 * never longer than the marker's 10 bytes plus its surroundings, and the text around it is
 * kept byte for byte.
 *
 * Guarantees: one forward pass, O(n) for any input (every look-ahead consumes what it reads
 * or is bounded, and a failed JWT or URL scan is never repeated over the same bytes), no
 * allocation but the output sbuf's growth, no regex. Every replaced span starts and ends on
 * an ASCII byte or an end of the input, so valid UTF-8 stays valid. The output is at most
 * n + 9 bytes per marker written. Running the rules again on it finds nothing new: what a
 * second pass would replace always holds a marker already (it may merge a marker with text
 * around it, as when a replaced value held the byte that ended a URL authority). Pure and
 * thread-safe.
 */
#ifndef VISOR_REDACT_H
#define VISOR_REDACT_H

#include <stddef.h>

#include "core/util.h"

#define REDACT_MARK     "[redacted]"
#define REDACT_MARK_LEN 10

/* redact_append flags. */
#define REDACT_JSON 1u   /* append the kept text JSON-escaped (sbuf_add_json) */
#define REDACT_CUT  2u   /* s is the start of a longer text: see above */

/* Appends s[0..n) (any bytes, not NUL-terminated; NULL when n is 0) to out with every
 * secret replaced by REDACT_MARK, raw or JSON-escaped (REDACT_JSON: what sbuf_add_json
 * would append, so the result is always a valid JSON string body). Returns how many spans
 * were replaced that did not hold the marker already (0: nothing new to hide). Out of
 * memory sets out->oom, as every sbuf append does. */
size_t redact_append(struct sbuf *out, const char *s, size_t n, unsigned flags);

/* 0 when no rule can match s[0..n) — it holds none of ':', '=', a blank, "eyJ" — so the
 * caller may append it as it is; 1 otherwise. Costs one table look-up per byte: the access
 * log runs it on every request's path. */
int redact_maybe(const char *s, size_t n);

#endif
