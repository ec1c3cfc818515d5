/* SPDX-License-Identifier: MIT
 * body — request body checks. Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter body_filter = {
	.name = "body",
};
