#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fileio.h"

/* All of buf written, across signals and short writes: 0, or -1 and
 * errno. */
int
fileio_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	ssize_t			 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {		/* never for a file; do not spin */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A directory synced, so that the renames and unlinks in it last a
 * crash: 0, or -1 and errno. */
int
fileio_sync_dir(const char *dir)
{
	int	 fd, rc, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}
