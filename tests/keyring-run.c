/*
 * keyring-run DESC FILE CMD [ARG...]: run CMD in a new session keyring
 * that holds a "user" key DESC with the contents of FILE, as an admin
 * would with keyctl(1); for the master key tests.  Exit 77 (skip) when
 * this kernel or sandbox has no keyrings.
 */
#include <sys/syscall.h>

#include <linux/keyctl.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	char	 buf[4096];
	ssize_t	 n;
	int	 fd;

	if (argc < 4) {
		fprintf(stderr, "usage: keyring-run DESC FILE CMD [ARG...]\n");
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
	execvp(argv[3], argv + 3);
	perror(argv[3]);
	return 127;
}
