/* SPDX-License-Identifier: MIT
 * lockout — login lockout (issue 4). Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter lockout_filter = {
	.name = "lockout",
};
