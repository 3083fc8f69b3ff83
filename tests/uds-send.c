/*
 * uds-send: a raw client for flmd's control socket in tests.
 *   uds-send PATH            send standard input, then report whether
 *                            the server closed the connection (exit 0)
 *                            or kept it open for 2 s (exit 1)
 *   uds-send -w MS PATH      the same, waiting MS ms, and say how long
 *                            the server took to close it
 *   uds-send -r PATH         send standard input, then print what the
 *                            server sent, raw, until it closed (exit 0)
 *                            or 2 s passed (exit 1)
 *   uds-send -n N PATH [MS]  open N connections at once and print how
 *                            many the server closed within 1 s; with
 *                            MS, keep the others open MS ms more
 *   uds-send -p              print a free TCP port on 127.0.0.1
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
uds_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 if the peer closed within ms, reading (and counting) what it sent;
 * copied to out unless NULL. */
static int
uds_closed_within(int fd, int ms, size_t *got, FILE *out)
{
	struct pollfd	 pfd = { .fd = fd, .events = POLLIN };
	char		 buf[4096];
	ssize_t		 n;

	for (;;) {
		if (poll(&pfd, 1, ms) <= 0)
			return 0;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			return 1;
		*got += n;
		if (out != NULL)
			fwrite(buf, 1, n, out);
	}
}

static long
uds_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
uds_send(const char *path, int ms, int timed, int raw)
{
	char	 buf[4096];
	size_t	 got = 0;
	ssize_t	 n;
	long	 t0;
	int	 fd, closed;

	if ((fd = uds_connect(path)) == -1) {
		perror("connect");
		return 2;
	}
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
		if (write(fd, buf, n) != n)
			break;
	t0 = uds_ms();
	closed = uds_closed_within(fd, ms, &got, raw ? stdout : NULL);
	if (!raw && timed)
		printf("%s after %zu bytes in %ld ms\n", closed ? "closed" :
		    "open", got, uds_ms() - t0);
	else if (!raw)
		printf("%s after %zu bytes\n", closed ? "closed" : "open",
		    got);
	close(fd);
	return closed ? 0 : 1;
}

static int
uds_many(const char *path, int n, int hold)
{
	int	*fds, i, closed = 0;
	size_t	 got;

	if ((fds = calloc(n, sizeof(int))) == NULL)
		return 2;
	for (i = 0; i < n; i++)
		if ((fds[i] = uds_connect(path)) == -1) {
			perror("connect");
			return 2;
		}
	for (i = 0; i < n; i++) {
		got = 0;
		closed += uds_closed_within(fds[i], i == 0 ? 1000 : 50, &got,
		    NULL);
	}
	printf("%d\n", closed);
	fflush(stdout);
	if (hold > 0)
		poll(NULL, 0, hold);
	for (i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("free port");
		return 2;
	}
	printf("%d\n", ntohs(sin.sin_port));
	close(fd);
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc == 2 && strcmp(argv[1], "-p") == 0)
		return free_port();
	if (argc == 4 && strcmp(argv[1], "-n") == 0)
		return uds_many(argv[3], atoi(argv[2]), 0);
	if (argc == 5 && strcmp(argv[1], "-n") == 0)
		return uds_many(argv[3], atoi(argv[2]), atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "-w") == 0)
		return uds_send(argv[3], atoi(argv[2]), 1, 0);
	if (argc == 3 && strcmp(argv[1], "-r") == 0)
		return uds_send(argv[2], 2000, 0, 1);
	if (argc == 2)
		return uds_send(argv[1], 2000, 0, 0);
	fprintf(stderr, "usage: uds-send [-n N | -w MS | -r] path [hold-ms]\n");
	return 2;
}
