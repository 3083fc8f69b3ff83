/*
 * keyring-run [-o OUT] DESC FILE CMD [ARG...]: run CMD in a new session
 * keyring that holds a "user" key DESC with the contents of FILE, as an
 * admin would with keyctl(1); for the master key tests.  With -o, CMD
 * runs as a child (TERM and INT passed on to it) and, once it has
 * exited, what DESC holds then is written to OUT: a rotation's new key.
 * Exit 77 (skip) when this kernel or sandbox has no keyrings.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/keyctl.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pid_t	 child = -1;

static void
pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* DESC's payload now into out; 0 or 1. */
static int
save(const char *desc, const char *out)
{
	char	 buf[4096];
	long	 id, n;
	int	 fd;

	if ((id = syscall(SYS_request_key, "user", desc, NULL, 0)) == -1 ||
	    (n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof(buf))) < 0) {
		perror(desc);
		return 1;
	}
	if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, buf, (size_t)n) != n || close(fd) == -1) {
		perror(out);
		return 1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	char		 buf[4096];
	struct sigaction sa;
	const char	*out = NULL;
	ssize_t		 n;
	int		 fd, status;

	if (argc > 2 && strcmp(argv[1], "-o") == 0) {
		out = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: keyring-run [-o OUT] DESC FILE CMD "
		    "[ARG...]\n");
		return 2;
	}
	if ((fd = open(argv[2], O_RDONLY)) == -1 ||
	    (n = read(fd, buf, sizeof(buf))) <= 0) {
		perror(argv[2]);
		return 2;
	}
	close(fd);
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) == -1 ||
	    syscall(SYS_add_key, "user", argv[1], buf, (size_t)n,
	    KEY_SPEC_SESSION_KEYRING) == -1) {
		perror("keyring");
		return 77;
	}
	if (out == NULL) {
		execvp(argv[3], argv + 3);
		perror(argv[3]);
		return 127;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pass_on;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((child = fork()) == -1) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		/* A KILL of this process (a test's cleanup) reaches CMD. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp(argv[3], argv + 3);
		perror(argv[3]);
		_exit(127);
	}
	while (waitpid(child, &status, 0) == -1)
		if (errno != EINTR) {
			perror("waitpid");
			return 2;
		}
	if (save(argv[1], out) != 0)
		return 2;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
