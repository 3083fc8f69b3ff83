#ifndef FLM_CONSOLE_FILES_H
#define FLM_CONSOLE_FILES_H

#include <stddef.h>

/* flm console's static files, embedded (scripts/file2c.sh). */
struct console_file {
	const char		*path;
	const char		*type;
	const unsigned char	*data;
	size_t			 len;
};

extern const struct console_file	console_files[];
extern const size_t			console_files_count;

#endif
