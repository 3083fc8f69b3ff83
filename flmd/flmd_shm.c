/*
 * The rate-limit region every flm-proxyd worker shares (lib/shm.h): a
 * memfd made once and kept open by flmd for the suite's life, so that
 * the counts survive a worker's restart.  flmd writes the header once
 * and never reads the region again: what a worker writes there is no
 * concern of flmd's.  Sealed to its size, so that no worker can shrink
 * it under the others (a mapping past the end would fault).
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "shm.h"

static int	 shm_rl_fd = -1;

static int
shm_create(void)
{
	struct rl_shm_hdr	 h;
	int			 fd;

	fd = memfd_create("flm-ratelimit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1) {
		log_warn("memfd_create");
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.magic = RL_SHM_MAGIC;
	h.version = RL_SHM_VERSION;
	h.nslots = RL_SHM_SLOTS;
	h.slot_size = sizeof(struct rl_slot);
	if (ftruncate(fd, (off_t)RL_SHM_SIZE) == -1 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) == -1) {
		log_warn("rate-limit region");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A descriptor of the region for one worker (the caller's to pass on
 * and close), or -1: that worker then counts alone.
 */
int
shm_ratelimit_fd(size_t *size)
{
	int	 fd;

	if (shm_rl_fd == -1 && (shm_rl_fd = shm_create()) == -1)
		return -1;
	if ((fd = fcntl(shm_rl_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("%s", __func__);
		return -1;
	}
	*size = RL_SHM_SIZE;
	return fd;
}
