/* SPDX-License-Identifier: MIT
 * probe — scanner probes and bans. Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter probe_filter = {
	.name = "probe",
};
