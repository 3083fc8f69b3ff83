/*
 * Small file helpers shared by the daemons and flm.  Only write, open
 * (O_RDONLY | O_DIRECTORY), fsync and close: flm-keyd calls them under
 * its seccomp allow-list.
 */
#ifndef FLM_FILEIO_H
#define FLM_FILEIO_H

#include <stddef.h>

int	fileio_write_all(int, const void *, size_t);
int	fileio_sync_dir(const char *);

#endif
