/*
 * The differential judge of lib/jscan.c against json-c, shared by
 * tests/unit/test_jscan.c (fixed seed, in make check) and
 * tests/fuzz/fuzz_jscan.c (libFuzzer, in make fuzz and CI).
 */
#ifndef JSCAN_DIFF_H
#define JSCAN_DIFF_H

#include <stddef.h>
#include <stdint.h>

enum {
	JSCAN_DIFF_BOTH_TAKE = 0,	/* and every field agrees */
	JSCAN_DIFF_BOTH_REFUSE,
	JSCAN_DIFF_STRICT,	/* json-c takes it, jscan: not RFC 8259 */
	JSCAN_DIFF_BAD,		/* they differ: why says how */
};

struct jscan_diff_stats {
	size_t	 cases, both_take, both_refuse, strict;
};

int	 jscan_diff(const char *, size_t, const char *, char *, size_t);
int	 jscan_diff_run(uint64_t, size_t, const char *,
	    struct jscan_diff_stats *, char *, size_t, char **, size_t *);

#endif
