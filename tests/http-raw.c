/*
 * http-raw: a raw HTTP client for the proxy tests, for what curl will
 * not send (bare LF, pipelining, slow heads, half-closes).
 *   http-raw [-s MS | -u US] [-t MS] [-c] [-p] [-n N] PORT
 * sends standard input to 127.0.0.1:PORT (one byte every MS ms with
 * -s, every US µs with -u), with -c shuts the write side down after,
 * then prints what comes
 * back until the server closes (exit 0) or -t MS pass (exit 2).
 * With -n N it opens N connections, sends nothing, and prints how many
 * the server answered or closed within -t MS (default 5000).
 * With -p it never reads: a small receive buffer, the request sent,
 * then -t MS of silence, as a client that stopped reading (exit 2).
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
raw_connect(int port, int rcvbuf)
{
	struct sockaddr_in	 sin;
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
	    sizeof(rcvbuf)) == -1) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("http-raw: connect");
		exit(1);
	}
	return fd;
}

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print what fd says until it closes (0) or the deadline (2). */
static int
raw_read(int fd, long deadline)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	char		 buf[65536];
	ssize_t		 n;
	long		 left;

	while ((left = deadline - now_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			return 0;
		fwrite(buf, 1, n, stdout);
		fflush(stdout);
	}
	return 2;
}

static int
raw_many(int port, int n, long ms)
{
	struct pollfd	*pfd = calloc(n, sizeof(*pfd));
	long		 deadline = now_ms() + ms;
	int		 i, done = 0;

	if (pfd == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		pfd[i].fd = raw_connect(port, 0);
		pfd[i].events = POLLIN;
	}
	while (now_ms() < deadline)
		if (poll(pfd, n, (int)(deadline - now_ms())) < 0)
			break;
	for (i = 0; i < n; i++)
		if (pfd[i].revents & (POLLIN | POLLHUP))
			done++;
	printf("%d\n", done);
	free(pfd);
	return 0;
}

int
main(int argc, char *argv[])
{
	char	 buf[65536];
	long	 slow = 0, tmo = 5000;	/* slow: ns between bytes */
	ssize_t	 n, i;
	int	 ch, fd, half = 0, many = 0, pause = 0;

	while ((ch = getopt(argc, argv, "cn:ps:t:u:")) != -1) {
		switch (ch) {
		case 'c':
			half = 1;
			break;
		case 'p':
			pause = 1;
			break;
		case 'n':
			many = atoi(optarg);
			break;
		case 's':
			slow = atol(optarg) * 1000000;
			break;
		case 'u':
			slow = atol(optarg) * 1000;
			break;
		case 't':
			tmo = atol(optarg);
			break;
		default:
			return 1;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: http-raw [-s MS | -u US] [-t MS] [-c] "
		    "[-p] [-n N] PORT\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);	/* a server that closes first */
	if (many > 0)
		return raw_many(atoi(argv[optind]), many, tmo);
	fd = raw_connect(atoi(argv[optind]), pause ? 1024 : 0);
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i += slow ? 1 : n) {
			if (write(fd, buf + i, slow ? 1 : n) < 0)
				return raw_read(fd, now_ms() + tmo);
			if (slow) {
				struct timespec	 ts = { slow / 1000000000,
				    slow % 1000000000 };

				nanosleep(&ts, NULL);
			}
		}
	}
	if (half)
		shutdown(fd, SHUT_WR);
	if (pause) {
		struct timespec	 ts = { tmo / 1000, tmo % 1000 * 1000000 };

		nanosleep(&ts, NULL);
		return 2;
	}
	return raw_read(fd, now_ms() + tmo);
}
