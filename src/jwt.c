/* SPDX-License-Identifier: MIT
 * jwt — JWT verification (issue 5). Placeholder: passes every request through until implemented.
 */
#include "filter.h"

const struct filter jwt_filter = {
	.name = "jwt",
};
