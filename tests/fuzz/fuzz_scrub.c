/* SPDX-License-Identifier: MIT
 * libFuzzer: the stack-trace detector that decides whether a 4xx body is scrubbed. It reads
 * untrusted upstream bytes of any length and content: it must never read out of bounds,
 * and it must be deterministic.
 */
#include <stdint.h>
#include <stdlib.h>

#include "filters/scrub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int a = scrub_has_stack_trace((const char *)data, size);
	int b = scrub_has_stack_trace((const char *)data, size);

	if (a != b)
		abort();
	return 0;
}
