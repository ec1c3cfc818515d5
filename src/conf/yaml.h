/* SPDX-License-Identifier: MIT
 * yaml — reads a YAML file with libyaml into a small node tree that keeps file:line:col
 * (counted from 1) for every node, so every config error can point at its source.
 * Scalars are expanded as they are read: ${NAME} and ${NAME:-default} from the environment
 * ("$$" is a literal "$"); an unset variable without default is an error at that scalar.
 * Anchors/aliases, tags other than the core ones, and multi-document files are refused
 * (a config file has no use for them and aliases allow "billion laughs" expansion).
 * Duplicate mapping keys are errors. Tree nodes are owned by the tree: ynode_free(root).
 */
#ifndef VISOR_YAML_H
#define VISOR_YAML_H

#include <stddef.h>

enum ynode_type { YN_SCALAR = 0, YN_SEQ, YN_MAP };

struct ynode;
struct ypair {
	struct ynode *key;      /* always a scalar */
	struct ynode *val;
};

struct ynode {
	enum ynode_type type;
	const char     *file;   /* points into the tree's own copy of the file name */
	int             line, col;
	/* YN_SCALAR: expanded text, NUL-terminated (len excludes the NUL); `plain` is 1 when
	 * unquoted (so `~`/`null` can be told from "null"). */
	char           *str;
	size_t          len;
	int             plain;
	int             had_var;   /* 1 when ${...} or $$ appeared (the value came from the env) */
	/* YN_SEQ: items[n]; YN_MAP: pairs[n], in file order. */
	struct ynode  **items;
	struct ypair   *pairs;
	size_t          n;
};

/* Error sink: called once per error with the position and message. */
typedef void (*yaml_err_fn)(void *arg, const char *file, int line, int col, const char *msg);

/* Parses `path`. Returns the root node (a mapping for a config file; an empty file gives an
 * empty mapping), or NULL after reporting at least one error through `err`. */
struct ynode *yaml_load_file(const char *path, yaml_err_fn err, void *arg);

/* The same for a buffer; `name` is used as the file in positions. For tests and fuzzing. */
struct ynode *yaml_load_buf(const char *name, const char *buf, size_t len, yaml_err_fn err, void *arg);

/* Mapping lookup by key (exact, case-sensitive). NULL when `map` is NULL or not a mapping. */
struct ynode *ynode_get(const struct ynode *map, const char *key);
/* Mapping lookup returning the key node (for positions of the key itself). */
struct ynode *ynode_key(const struct ynode *map, const char *key);

/* Walks a dotted path with numeric sequence indexes: "jwt.keys.0.file". NULL if absent. */
struct ynode *ynode_path(const struct ynode *root, const char *path);

void ynode_free(struct ynode *root);

#endif
