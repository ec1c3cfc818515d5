/* SPDX-License-Identifier: MIT
 * store_lua — src/store/store.lua, the store's algorithm in Redis, embedded at build time as
 * a NUL-terminated string. The script is a real .lua file (read, diffed and linted as Lua);
 * the assembler's .incbin copies its bytes in, so there is no generated source and nothing
 * to keep in step by hand. Paths are relative to the repository root, where every build
 * (make, tests/fuzz/run.sh, the Dockerfile) runs the compiler.
 */
#include <stddef.h>

#include "store/store.h"

__asm__(
	"	.section .rodata\n"
	"	.global store_lua\n"
	"	.type store_lua, @object\n"
	"store_lua:\n"
	"	.incbin \"src/store/store.lua\"\n"
	"store_lua_end_:\n"
	"	.byte 0\n"
	"	.size store_lua, . - store_lua\n"
	"	.previous\n");

size_t
store_lua_len(void)
{
	extern const char store_lua_end_[] __asm__("store_lua_end_");

	return (size_t)(store_lua_end_ - store_lua);
}
