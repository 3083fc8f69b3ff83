/*
 * libFuzzer target: lib/jscan.c and json-c's strict tokener judge
 * every input alike (tests/jscan-diff.c says how), with and without
 * the messages check; any difference aborts with the reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jscan-diff.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 why[300];

	if (jscan_diff((const char *)data, size, "role", why,
	    sizeof(why)) == JSCAN_DIFF_BAD ||
	    jscan_diff((const char *)data, size, NULL, why,
	    sizeof(why)) == JSCAN_DIFF_BAD) {
		fprintf(stderr, "jscan and json-c differ: %s\n", why);
		abort();
	}
	return 0;
}
