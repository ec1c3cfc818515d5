/* SPDX-License-Identifier: MIT
 * rl — rate limits (issue 4). Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter rl_filter = {
	.name = "rl",
};
