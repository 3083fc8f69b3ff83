/*
 * sandbox-probe ROLE ACTION: apply the real keyd or proxyd sandbox
 * (Landlock and seccomp; keyd's directory is the current one, as in
 * flm-keyd), then try one thing.  Integration tests read the result:
 * exit 0 "allowed", or death by SIGSYS / a failed call when refused.
 * mmap-shared maps a memfd made before the sandbox, as flmd hands
 * proxyd its rate-limit region; mmap-exec and mprotect-exec ask for
 * executable memory.  open-gcov, access and mkdir do what gcov does at
 * exit: a coverage build admits that open below FLM_COVERAGE_DIR only,
 * and refuses the others (EACCES) rather than kill.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd.h"
#include "proxyd.h"
#include "sandbox.h"

/* A descriptor to map, made before the sandbox as flmd makes it. */
static int	 shm_fd = -1;

static int
probe_map(const char *action)
{
	void	*p;

	if (strcmp(action, "mmap-shared") == 0)
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd,
		    0);
	else if (strcmp(action, "mmap-exec") == 0)
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED &&
		    mprotect(p, 4096, PROT_READ | PROT_EXEC) == -1)
			p = MAP_FAILED;
	}
	if (p == MAP_FAILED) {
		printf("refused: %s\n", strerror(errno));
		return 1;
	}
	printf("allowed\n");
	return 0;
}

static int
probe(const char *action, const char *arg)
{
	int	 r;	/* a descriptor, or 0: allowed; -1: refused */

	if (strncmp(action, "mmap-", 5) == 0 ||
	    strcmp(action, "mprotect-exec") == 0)
		return probe_map(action);
	if (strcmp(action, "socket") == 0)
		r = socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(action, "unix-socket") == 0)
		r = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (strcmp(action, "open-read") == 0)
		r = open(arg, O_RDONLY);
	else if (strcmp(action, "open-write") == 0)
		r = open(arg, O_WRONLY | O_CREAT, 0600);
	else if (strcmp(action, "open-gcov") == 0)	/* gcov's own flags */
		r = open(arg, O_RDWR | O_CREAT, 0600);
	else if (strcmp(action, "mkdir") == 0)
		r = mkdir(arg, 0700);
	else if (strcmp(action, "access") == 0)
		r = access(arg, F_OK);
	else if (strcmp(action, "exec") == 0) {
		char	*argv[] = { "true", NULL };

		execv("/bin/true", argv);
		r = -1;
	} else {
		fprintf(stderr, "unknown action %s\n", action);
		return 2;
	}
	if (r == -1) {
		printf("refused: %s\n", strerror(errno));
		return 1;
	}
	printf("allowed\n");
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: sandbox-probe keyd|proxyd action "
		    "[path]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	sandbox_debug = getenv("FLM_SANDBOX_DEBUG") != NULL;
	if ((shm_fd = memfd_create("probe", MFD_CLOEXEC)) == -1 ||
	    ftruncate(shm_fd, 4096) == -1) {
		perror("memfd_create");
		return 2;
	}
	if (strcmp(argv[1], "keyd") == 0)
		keyd_sandbox(".", -1);
	else if (strcmp(argv[1], "proxyd") == 0)
		proxyd_sandbox();
	else if (strcmp(argv[1], "none") != 0) {
		fprintf(stderr, "unknown role %s\n", argv[1]);
		return 2;
	}
	return probe(argv[2], argc > 3 ? argv[3] : "/dev/null");
}
