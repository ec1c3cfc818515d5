/* SPDX-License-Identifier: MIT
 * libFuzzer target for the configuration layer: the input is a YAML file. It goes through
 * yaml_load_buf (libyaml events, positions, ${VAR} expansion, refusals), then conf_parse on
 * a zeroed conf (every schema row, custom parser, default and cross-key check), then
 * conf_free; the messages are sorted and printed to /dev/null. Host names are never
 * resolved (ctx.no_resolve). *_file keys may read small regular files: harmless.
 * What it looks for: crashes, leaks on error paths, undefined behaviour, and any error
 * reported without a position inside the input (line 0 is only for whole-file problems).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	setenv("VISOR_FUZZ", "1", 1);
	setenv("VISOR_FUZZ_EMPTY", "", 1);
	setenv("VISOR_FUZZ_ADDR", "127.0.0.1:3000", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_ctx ctx;
	struct conf c;
	struct ynode *root;
	size_t i;

	memset(&ctx, 0, sizeof(ctx));
	memset(&c, 0, sizeof(c));
	ctx.file = "fuzz.yaml";
	ctx.no_resolve = 1;
	root = yaml_load_buf("fuzz.yaml", (const char *)data, size, conf_yaml_err, &ctx);
	if (root != NULL) {
		(void)ynode_path(root, "jwt.keys.0.file");
		(void)ynode_path(root, "routes.1");
		if (conf_parse(&ctx, root, &c) == 0 && ctx.nerr != 0)
			abort();        /* success must mean no error */
		/* Every message about the tree points inside it. */
		for (i = 0; i < ctx.nmsgs; i++)
			if (ctx.msgs[i].line <= 0 || ctx.msgs[i].col <= 0)
				abort();
		conf_free(&c);
		ynode_free(root);
	}
	if (devnull != NULL)
		conf_ctx_print(&ctx, devnull);
	conf_ctx_fini(&ctx);
	return 0;
}
