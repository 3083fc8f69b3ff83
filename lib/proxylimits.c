#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxylimits.h"

const struct limit_def limit_defs[] = {
	{ "max_header_bytes",	1024, 1 << 20, 32 * 1024, "bytes" },
	{ "max_body_bytes",	1024, 1LL << 30, 8 << 20, "bytes" },
	{ "header_timeout",	1, 3600, 30, "seconds" },
	{ "idle_timeout",	1, 3600, 60, "seconds" },
	{ "upstream_timeout",	1, 86400, 300, "seconds" },
	{ "max_connections",	1, 1 << 20, 4096, "connections" },
	{ "write_timeout",	1, 3600, 60, "seconds" },
	{ "drain_timeout",	0, 300, 10, "seconds" },
	{ "breaker_failures",	1, 1000, 3, "failures" },
	{ "breaker_secs",	1, 3600, 30, "seconds" },
};
const int	limit_ndefs = sizeof(limit_defs) / sizeof(limit_defs[0]);

const struct limit_def *
limit_find(const char *name)
{
	int	 i;

	for (i = 0; i < limit_ndefs; i++)
		if (strcmp(limit_defs[i].name, name) == 0)
			return &limit_defs[i];
	return NULL;
}

/* A decimal integer in the limit's range. */
int
limit_parse(const struct limit_def *d, const char *s, long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 ||
	    *v < d->min || *v > d->max)
		return -1;
	return 0;
}
