/*
 * mem-grep: how many times a string occurs in a running process's
 * memory, as a debugger would read it (/proc/PID/mem; root, or a
 * dumpable process of ours).  For tests that secrets were wiped.
 *   mem-grep PID STRING   prints the count; exit 2 if the memory
 *                         cannot be read at all
 *   mem-grep -x PID HEX   the same for the bytes HEX spells (a key)
 * Mappings that are not readable, and reservations over 1 GiB (the
 * sanitizers' shadow memory), are skipped.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK		(1024 * 1024)
#define BIG		(1024ULL * 1024 * 1024)

/* Occurrences of s in [a, b) of mem, across chunk boundaries. */
static long
scan(int mem, uint64_t a, uint64_t b, const char *s, size_t n, char *buf)
{
	uint64_t	 off;
	size_t		 keep = 0, len, i;
	ssize_t		 r;
	long		 count = 0;

	for (off = a; off < b; off += (uint64_t)r) {
		len = b - off < CHUNK ? (size_t)(b - off) : CHUNK;
		if ((r = pread(mem, buf + keep, len, (off_t)off)) <= 0)
			return count;	/* a hole: what was read counts */
		len = keep + (size_t)r;
		for (i = 0; i + n <= len; i++)
			if (memcmp(buf + i, s, n) == 0)
				count++;
		/* The last n - 1 bytes may start a match in the next chunk. */
		keep = len < n - 1 ? len : n - 1;
		memmove(buf, buf + len - keep, keep);
	}
	return count;
}

/* HEX decoded in place; its length in bytes, 0 if it is no hex. */
static size_t
hex_decode(char *s)
{
	size_t		 i, len = strlen(s);
	unsigned int	 v;

	if (len == 0 || len % 2 != 0)
		return 0;
	for (i = 0; i < len / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    strchr("0123456789abcdefABCDEF", s[2 * i]) == NULL ||
		    strchr("0123456789abcdefABCDEF", s[2 * i + 1]) == NULL)
			return 0;
		s[i] = (char)v;
	}
	return len / 2;
}

int
main(int argc, char *argv[])
{
	char		 path[64], line[512], perm[8], *buf;
	uint64_t	 a, b;
	FILE		*maps;
	long		 count = 0;
	int		 mem, readable = 0;
	size_t		 n;

	if (argc == 4 && strcmp(argv[1], "-x") == 0) {
		argv++;
		if ((n = hex_decode(argv[2])) == 0) {
			fprintf(stderr, "mem-grep: -x needs an even count of "
			    "hex digits\n");
			return 2;
		}
	} else if (argc != 3 || (n = strlen(argv[2])) == 0) {
		fprintf(stderr, "usage: mem-grep [-x] PID STRING|HEX\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	if ((maps = fopen(path, "r")) == NULL)
		return 2;
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	if ((mem = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (buf = malloc(CHUNK + n)) == NULL)
		return 2;
	while (fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &a, &b,
		    perm) != 3 || perm[0] != 'r' || b - a > BIG ||
		    strstr(line, "[vvar") != NULL ||
		    strstr(line, "[vsyscall]") != NULL)
			continue;
		if (pread(mem, buf, 1, (off_t)a) == 1)
			readable = 1;
		count += scan(mem, a, b, argv[2], n, buf);
	}
	printf("%ld\n", count);
	free(buf);
	close(mem);
	fclose(maps);
	return readable ? 0 : 2;
}
