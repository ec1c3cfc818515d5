/* SPDX-License-Identifier: MIT
 * cors — CORS allowlist (issue 3). Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter cors_filter = {
	.name = "cors",
};
