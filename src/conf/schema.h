/* SPDX-License-Identifier: MIT
 * schema — the configuration walker's API: the rows a module describes its YAML keys with
 * (nginx's ngx_command_t), and the helpers a custom parser needs. The core (conf.c) and every
 * filter (src/filters/) describe their keys with it; conf.c walks the rows (parse, defaults,
 * unknown keys with a suggestion, K_file), releases what they parsed, and prints
 * docs/configuration.md from the very same rows.
 *
 * A row (struct ckey) is one key: name, type, where its value lands (an offset in the struct
 * the current table describes, the "base"), its default written as YAML text and parsed by
 * the code that parses the user's value, bounds, and its documentation. A table (struct
 * csect) is a mapping's rows plus an optional cross-key check. Keys with structure of their
 * own get a custom parse function (KT_CUSTOM) but still a row, and a release function when
 * they allocate what the generic release cannot see.
 *
 * Names: the row types and constants keep the short schema sub-prefix of the `conf` module
 * (struct ckey, struct csect, struct cenum, struct cparse; KT_*, CK_*), as they fill tables;
 * every function is conf_*.
 *
 * All of it runs on the main thread, while a generation is parsed. Messages go through
 * conf_err with the node's position and the dotted path of the key (p->path): helpers that
 * report an error say so, and parsing goes on after an error (every error is collected).
 */
#ifndef VISOR_SCHEMA_H
#define VISOR_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

enum ckey_type {
	KT_INT = 0,     /* int64_t in [min, max] */
	KT_DUR,         /* int64_t milliseconds; bare integer = seconds */
	KT_DUR_S,       /* int64_t seconds, written as an integer or a duration */
	KT_SIZE,        /* int64_t bytes */
	KT_BOOL,        /* int */
	KT_STR,         /* char *, not empty, no control characters; released by free() */
	KT_ENUM,        /* int, from a struct cenum table (arg) */
	KT_STRS,        /* struct conf_strs, from a list or a single scalar; released */
	KT_SECTION,     /* nested mapping (arg: struct csect), same base struct */
	KT_CUSTOM       /* parse function fn; release function release */
};

#define CK_REQUIRED  0x001u  /* error when absent */
#define CK_OPTIONAL  0x002u  /* section: only parsed when present; sets the int at en_off */
#define CK_SCALAR    0x004u  /* custom: takes a scalar, so K_file works for it */
#define CK_ALWAYS    0x008u  /* custom: also called with v == NULL (computed default) */
#define CK_UPPER     0x020u  /* list: items upper-cased */
#define CK_TOKEN     0x040u  /* list: items are HTTP tokens */
#define CK_URLPATH   0x080u  /* list/string: items are URL paths */
#define CK_RESOLVE   0x100u  /* addresses: DNS names allowed (zeroed address, net/resolve) */
#define CK_LISTEN    0x200u  /* addresses: a listener (port 0 allowed, conflicts checked) */
#define CK_ITEMS     0x400u  /* custom list of mappings described by arg (docs: "key[]") */
#define CK_NAMED     0x800u  /* custom mapping of named mappings (docs: "key.<name>") */
#define CK_ROUTES    0x1000u /* the core's `routes`: items take each filter's route_keys too */
#define CK_OFF       0x2000u /* section: also takes `off` (or `false`): its defaults are parsed
                              * and the int at en_off is set to 1 (not with CK_OPTIONAL) */

struct cparse;
struct ckey;

/* Parses value v (NULL only for CK_ALWAYS rows whose key is absent) into field (the base
 * plus the row's offset); reports its own errors. */
typedef void (*ckey_parse_fn)(struct cparse *p, const struct ckey *k, const struct ynode *v,
    void *field);
/* Extra check of one string (KT_STR, KT_STRS items): 0, or -1 after an error at v. */
typedef int (*ckey_check_fn)(struct cparse *p, const struct ynode *v, const char *s);
/* Releases what the row's parser allocated in base (the struct its table describes); must
 * accept a base the parser never reached (zeroed). */
typedef void (*ckey_release_fn)(const struct ckey *k, void *base);

struct cenum {
	const char *name;
	int         value;
};

struct csect {
	const struct ckey *keys;
	size_t             nkeys;
	/* cross-key checks once the rows are parsed; map may be NULL (section absent) */
	void (*post)(struct cparse *p, const struct ynode *map, const struct ynode *where);
};

#define CONF_SECT(rows, post) { (rows), sizeof(rows) / sizeof((rows)[0]), (post) }

struct ckey {
	const char     *name;
	enum ckey_type  type;
	size_t          off;      /* field offset in the current base struct */
	const char     *def;      /* default, as YAML text; NULL: none */
	int64_t         min, max; /* numeric bounds (ms for durations, s for KT_DUR_S) */
	unsigned        flags;
	const void     *arg;      /* KT_ENUM: struct cenum[]; sections, item lists: struct csect */
	ckey_parse_fn   fn;       /* KT_CUSTOM */
	ckey_release_fn release;  /* KT_CUSTOM: frees what fn allocated; NULL: nothing to free */
	ckey_check_fn   check;    /* KT_STR, KT_STRS: extra check of each value */
	size_t          en_off;   /* CK_OPTIONAL, listen.http/admin: offset of an int flag set
	                           * when present; CK_OFF: set when the value is `off` */
	const char     *tname;    /* type as shown in docs (custom, lists, special strings) */
	const char     *defdoc;   /* default as shown in docs when `def` cannot say it */
	const char     *deftable; /* docs: the default (a mapping) gets its own table after the
	                           * reference, with this as its key column's title */
	const char     *doc;
};

struct conf_laddr;            /* listeners seen so far (conf.c) */

/* The parse context: what a row's parser may read and the message state. */
struct cparse {
	struct conf_ctx   *ctx;
	struct conf       *c;         /* the generation being parsed (core sections before the
	                               * filters', so a filter may read them) */
	void              *base;      /* struct the current table's offsets refer to */
	void              *sect;      /* the parsing filter's own section (its conf_keys block),
	                               * also while its route keys are parsed; NULL for the core */
	char               path[256]; /* dotted path of what is being parsed, for messages */
	size_t             plen;
	char               q[4][96];  /* rotating buffers for user text quoted in messages */
	int                qi;
	/* conf.c's own */
	struct conf_laddr *laddrs;
	size_t             nladdrs;
	struct ynode     **synth;     /* lists split out of ${VAR} scalars, freed after the parse */
	size_t             nsynth;
};

#define CONF_FIELD(p, k) ((void *)((char *)(p)->base + (k)->off))

/* ---- walking tables ------------------------------------------------------------------- */

/* Parses mapping `map` (NULL or empty: the section is absent) through the rows of `s` into
 * p->base: values given are parsed, absent ones get their default, required ones an error at
 * `where`. Unknown keys are reported with a suggestion; s->post runs last. */
void conf_walk(struct cparse *p, const struct csect *s, const struct ynode *map,
    const struct ynode *where);

/* A list of mappings, each parsed through `s` into an element of `size` bytes. Returns the
 * calloc'd array (NULL when empty or on error) and its length (elements that were not
 * mappings stay zeroed, and are counted). */
void *conf_parse_items(struct cparse *p, const struct ynode *v, const struct csect *s,
    size_t size, size_t *n_out);
/* A list of scalars (or one scalar, or a ${VAR} split on commas) parsed item by item into
 * an array of `size`-byte elements: item(text, elem, &err) returns 0 when it took the text,
 * or -1 with err, reported as "<path>[i]: <err>, got '<text>'" at the item. *arr is freed
 * and replaced (NULL when empty); *n counts the elements taken. `expect` names the list in
 * the message when v is not one. */
void conf_scalar_items(struct cparse *p, const struct ynode *v, const char *expect, size_t size,
    int (*item)(const char *s, void *elem, const char **err), void **arr, size_t *n);
/* A zeroed array of n elements of `size` bytes for the items of list (or mapping) v: NULL
 * when n is 0 or out of memory (reported at v) — either way the caller has nothing to fill. */
void *conf_items_alloc(struct cparse *p, const struct ynode *v, size_t n, size_t size);

/* A row whose value is a plain array (no pointer inside, so freeing it frees all) and its
 * count: .off is the array pointer's offset in the base, .arg points at one of these.
 * .release = conf_release_list serves any such row; .fn = conf_parse_list those whose
 * items are scalars parsed one by one (conf_scalar_items, with `item` and `expect`). */
struct clist {
	size_t      n_off;      /* the size_t count's offset in the same base */
	size_t      size;       /* bytes per element */
	int       (*item)(const char *s, void *elem, const char **err);
	const char *expect;     /* "a list of ...": the message when the value is not one */
};
void conf_parse_list(struct cparse *p, const struct ckey *k, const struct ynode *v, void *field);
void conf_release_list(const struct ckey *k, void *base);

/* Releases what the rows of `s` parsed into base: KT_STR and KT_STRS fields, nested
 * sections, and custom rows through their release function. base itself is not freed. */
void conf_release(const struct csect *s, void *base);
/* conf_release on each of n elements of `size` bytes, then free(arr). */
void conf_release_items(const struct csect *s, void *arr, size_t size, size_t n);
/* A release function for custom rows whose field (at the row's offset) is a conf_kvs. */
void conf_release_kvs(const struct ckey *k, void *base);

/* ---- paths and messages ---------------------------------------------------------------- */

/* Appends to p->path (printf-style); returns the old length, for conf_path_pop. */
size_t conf_path_push(struct cparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends ".name" (or "name" at the top). */
size_t conf_path_key(struct cparse *p, const char *name);
void   conf_path_pop(struct cparse *p, size_t old);
/* User text for a message: printable, at most ~80 bytes. Valid until 4 more calls. */
const char *conf_quote(struct cparse *p, const char *s);
/* "<path>: out of memory" at `at`. */
void conf_oom(struct cparse *p, const struct ynode *at);
/* strdup, or NULL after conf_oom. */
char *conf_strdup(struct cparse *p, const struct ynode *at, const char *s);
/* The suggestion for a misspelt name among `n` candidates (NULL entries skipped): a
 * case-insensitive match, else the nearest within edit distance 3, unless reaching it
 * rewrites every character. NULL when nothing is close. */
const char *conf_nearest(const char *s, const char *const *cand, size_t n);

/* ---- values ---------------------------------------------------------------------------- */

/* A plain null (empty, ~, null). */
int conf_is_null(const struct ynode *v);
/* "a mapping", "a list" or "an empty value": what a non-scalar or null value is. */
const char *conf_got(const struct ynode *v);
/* Whether v is a mapping. When it is not: 0, silently for a null (nothing given: the caller
 * keeps its default), else after "<path>: expected <what>, got a list|a scalar" at v. */
int conf_is_map(struct cparse *p, const struct ynode *v, const char *what);
/* An HTTP token (RFC 9110 tchar+). */
int conf_is_token(const char *s);
/* Holds a control character (< 0x20 or DEL). */
int conf_has_ctl(const char *s, size_t len);
/* The text of a scalar value, or NULL after an error naming what was expected. */
const char *conf_scalar_text(struct cparse *p, const struct ynode *v, const char *expect);
/* A string value (KT_STR semantics): not empty, no control characters; NULL after an error. */
const char *conf_string_text(struct cparse *p, const struct ynode *v);
/* A boolean value into *out: 0, or -1 after an error. */
int conf_bool_value(struct cparse *p, const struct ynode *v, int *out);
/* The value of v in the row's struct cenum table (k->arg), case-insensitively: 0, or -1
 * after an error listing the names (with a suggestion). */
int conf_enum_lookup(struct cparse *p, const struct ckey *k, const struct ynode *v, int *out);
/* A string check: starts with '/', no space, query or fragment (CK_URLPATH). */
int conf_check_urlpath(struct cparse *p, const struct ynode *v, const char *s);
/* A string check: an HTTP token (CK_TOKEN). */
int conf_check_token(struct cparse *p, const struct ynode *v, const char *s);
/* Parses the YAML text `text` (a row's default) into a tree the caller frees (ynode_free);
 * NULL after an "internal error" (a default that does not parse is a bug in the table). */
struct ynode *conf_default_tree(struct cparse *p, const char *text);

/* ---- lists: a list, or a single scalar standing for a list of one --------------------- */

/* v itself, or the list a ${VAR} scalar splits into on commas (owned by the parse). */
const struct ynode *conf_list_node(struct cparse *p, const struct ynode *v);
/* Number of items, or -1 after an error (a mapping, or null: "write [] for none"). */
long conf_list_count(struct cparse *p, const struct ynode *v, const char *expect);
const struct ynode *conf_item_at(const struct ynode *v, size_t i);
/* Pushes "[i]" when v is a list (a single scalar keeps the path); returns the old length. */
size_t conf_item_push(struct cparse *p, const struct ynode *v, size_t i);
/* One item's text: a scalar, not empty, no control characters; NULL after an error. */
const char *conf_item_text(struct cparse *p, const struct ynode *it);

/* ---- the shared value types ----------------------------------------------------------- */

void conf_strs_free(struct conf_strs *s);
int  conf_strs_append(struct conf_strs *s, const char *str);      /* 0, or -1: out of memory */
void conf_kvs_free(struct conf_kvs *kv);
int  conf_kvs_append(struct conf_kvs *kv, const char *key, const char *val);

/* ---- formatting (messages and docs) --------------------------------------------------- */

/* "15m", "1500ms", "0": the largest unit that divides ms. */
const char *conf_fmt_dur(char *buf, size_t len, int64_t ms);
/* "64k", "1m", "512": the largest binary unit that divides b. */
const char *conf_fmt_size(char *buf, size_t len, int64_t b);

#endif
