/*
 * sandbox-probe ROLE ACTION: apply the real keyd or proxyd sandbox
 * (Landlock and seccomp; keyd's directory is the current one, as in
 * flm-keyd), then try one thing.  Integration tests read the result:
 * exit 0 "allowed", or death by SIGSYS / a failed call when refused.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd.h"
#include "proxyd.h"
#include "sandbox.h"

static int
probe(const char *action, const char *arg)
{
	int	 fd;

	if (strcmp(action, "socket") == 0)
		fd = socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(action, "unix-socket") == 0)
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (strcmp(action, "open-read") == 0)
		fd = open(arg, O_RDONLY);
	else if (strcmp(action, "open-write") == 0)
		fd = open(arg, O_WRONLY | O_CREAT, 0600);
	else if (strcmp(action, "exec") == 0) {
		char	*argv[] = { "true", NULL };

		execv("/bin/true", argv);
		fd = -1;
	} else {
		fprintf(stderr, "unknown action %s\n", action);
		return 2;
	}
	if (fd == -1) {
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
	if (strcmp(argv[1], "keyd") == 0)
		keyd_sandbox(".");
	else if (strcmp(argv[1], "proxyd") == 0)
		proxyd_sandbox();
	else if (strcmp(argv[1], "none") != 0) {
		fprintf(stderr, "unknown role %s\n", argv[1]);
		return 2;
	}
	return probe(argv[2], argc > 3 ? argv[3] : "/dev/null");
}
