/*
 * tls-hs: full TLS handshakes a second against 127.0.0.1:PORT, for make
 * bench (scripts/bench.sh).  One process, non-blocking sockets, one
 * epoll loop: -c connections at once, each a new TCP connection, a new
 * TLS session (none is ever resumed: no session is kept, and tickets
 * are not asked for), then "GET PATH HTTP/1.0", read to the server's
 * close, and the next connection.  A cheap client, so that on a small
 * machine the server, not the client, is what runs out of CPU (openssl
 * s_time costs its client more than nginx's handshake costs nginx;
 * wrk resumes its sessions when it reconnects).  After -t seconds it
 * prints
 *
 *	tls-hs RATE DONE FAILED RESUMED
 *
 * RATE the handshakes a second that ended in an HTTP 200, DONE their
 * number, FAILED connections that failed or had no 200, RESUMED those
 * that were resumed sessions (0, or the measure is not of full
 * handshakes), and exits 0 if at least one was done and none failed.
 *
 *	usage: tls-hs -p PORT [-c CONNS] [-t SECONDS] [-P PATH]
 *
 * Certificates are not verified: this measures, it trusts nothing.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum hs_state { S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ };

struct hs_conn {
	int		 fd;
	SSL		*ssl;
	enum hs_state	 state;
	size_t		 got;		/* bytes of the answer read */
	char		 head[16];	/* its first bytes: "HTTP/1.x 200" */
};

static SSL_CTX		*ctx;
static int		 ep;
static struct sockaddr_in sin_srv;
static char		 req[512];
static size_t		 reqlen;
static unsigned long	 ndone, nfailed, nresumed;

static void
hs_usage(void)
{
	fprintf(stderr, "usage: tls-hs -p PORT [-c CONNS] [-t SECONDS] "
	    "[-P PATH]\n");
	exit(2);
}

static long
hs_num(const char *s, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
		hs_usage();
	return v;
}

static double
hs_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait for the socket to be readable or writable, as OpenSSL wants. */
static void
hs_want(struct hs_conn *c, int out)
{
	struct epoll_event	 ev = { .events = out ? EPOLLOUT : EPOLLIN,
	    .data.ptr = c };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		perror("tls-hs: epoll_ctl");
		exit(1);
	}
}

/* A new TCP connection in the slot; its TLS session comes once it is up. */
static void
hs_open(struct hs_conn *c)
{
	struct epoll_event	 ev = { .events = EPOLLOUT, .data.ptr = c };
	int			 one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		perror("tls-hs: socket");
		exit(1);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin_srv, sizeof(sin_srv)) == -1
	    && errno != EINPROGRESS) {
		perror("tls-hs: connect");
		exit(1);
	}
	c->state = S_CONNECT;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		perror("tls-hs: epoll_ctl");
		exit(1);
	}
}

/* The connection ended: counted, freed, and the next one opened. */
static void
hs_close(struct hs_conn *c, int ok)
{
	if (ok)
		ndone++;
	else
		nfailed++;
	SSL_free(c->ssl);		/* no session kept: none resumed */
	close(c->fd);			/* also leaves the epoll set */
	hs_open(c);
}

/* After an SSL call returned r <= 0: wait (0) or failed (-1). */
static int
hs_ssl_wait(struct hs_conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		hs_want(c, 0);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		hs_want(c, 1);
		return 0;
	default:
		ERR_clear_error();
		return -1;
	}
}

static void
hs_read(struct hs_conn *c)
{
	char	 buf[4096];
	size_t	 n;
	int	 r;

	for (;;) {
		r = SSL_read(c->ssl, buf, sizeof(buf));
		if (r > 0) {
			n = sizeof(c->head) - 1 - c->got;
			if (c->got < sizeof(c->head) - 1)
				memcpy(c->head + c->got, buf,
				    (size_t)r < n ? (size_t)r : n);
			c->got += r;
			continue;
		}
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			hs_want(c, 0);
			return;
		case SSL_ERROR_ZERO_RETURN:
		case SSL_ERROR_SYSCALL:	/* closed without close_notify */
			ERR_clear_error();
			hs_close(c, strncmp(c->head, "HTTP/1.", 7) == 0 &&
			    strncmp(c->head + 8, " 200", 4) == 0);
			return;
		default:
			ERR_clear_error();
			hs_close(c, 0);
			return;
		}
	}
}

static void
hs_step(struct hs_conn *c)
{
	socklen_t	 len = sizeof(int);
	int		 err = 0, r;

	switch (c->state) {
	case S_CONNECT:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			hs_close(c, 0);
			return;
		}
		if ((c->ssl = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(c->ssl, c->fd) != 1) {
			fprintf(stderr, "tls-hs: SSL_new failed\n");
			exit(1);
		}
		SSL_set_connect_state(c->ssl);
		c->state = S_HANDSHAKE;
		/* FALLTHROUGH */
	case S_HANDSHAKE:
		if ((r = SSL_do_handshake(c->ssl)) != 1) {
			if (hs_ssl_wait(c, r) == -1)
				hs_close(c, 0);
			return;
		}
		if (SSL_session_reused(c->ssl))
			nresumed++;
		c->state = S_WRITE;
		/* FALLTHROUGH */
	case S_WRITE:
		if ((r = SSL_write(c->ssl, req, reqlen)) <= 0) {
			if (hs_ssl_wait(c, r) == -1)
				hs_close(c, 0);
			return;
		}
		c->state = S_READ;
		/* FALLTHROUGH */
	case S_READ:
		hs_read(c);
		return;
	}
}

int
main(int argc, char *argv[])
{
	struct epoll_event	 evs[256];
	struct hs_conn		*conns;
	const char		*path = "/healthz";
	double			 t0, t1, secs = 4;
	long			 port = 0, nconn = 16, i;
	int			 ch, n;

	while ((ch = getopt(argc, argv, "c:p:P:t:")) != -1) {
		switch (ch) {
		case 'c':
			nconn = hs_num(optarg, 1, 10000);
			break;
		case 'p':
			port = hs_num(optarg, 1, 65535);
			break;
		case 'P':
			path = optarg;
			break;
		case 't':
			secs = hs_num(optarg, 1, 3600);
			break;
		default:
			hs_usage();
		}
	}
	if (port == 0 || optind != argc || path[0] != '/' ||
	    strpbrk(path, " \r\n") != NULL)
		hs_usage();
	reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n"
	    "Host: 127.0.0.1:%ld\r\n\r\n", path, port);
	if (reqlen >= sizeof(req))
		hs_usage();
	sin_srv.sin_family = AF_INET;
	sin_srv.sin_port = htons(port);
	sin_srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* A server that closes first is an error counted, not a SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		fprintf(stderr, "tls-hs: SSL_CTX_new failed\n");
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("tls-hs: epoll_create1");
		return 1;
	}
	if ((conns = calloc(nconn, sizeof(*conns))) == NULL) {
		perror("tls-hs: calloc");
		return 1;
	}
	t0 = hs_now();
	for (i = 0; i < nconn; i++)
		hs_open(&conns[i]);
	while ((t1 = hs_now()) - t0 < secs) {
		n = epoll_wait(ep, evs, 256, 100);
		if (n == -1 && errno != EINTR) {
			perror("tls-hs: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++)
			hs_step(evs[i].data.ptr);
	}
	printf("tls-hs %.0f %lu %lu %lu\n", ndone / (t1 - t0), ndone,
	    nfailed, nresumed);
	for (i = 0; i < nconn; i++) {
		SSL_free(conns[i].ssl);
		close(conns[i].fd);
	}
	free(conns);
	SSL_CTX_free(ctx);
	close(ep);
	return ndone > 0 && nfailed == 0 ? 0 : 1;
}
