/* SPDX-License-Identifier: MIT
 * scrub — error scrubbing (issue 3). Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter scrub_filter = {
	.name = "scrub",
};
