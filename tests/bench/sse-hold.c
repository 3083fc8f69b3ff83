/*
 * sse-hold: hold N server-sent-event streams open at once, for make
 * bench (scripts/bench.sh).  One process, non-blocking sockets, one
 * libevent loop (epoll).  Every connection sends the same streaming
 * POST and waits for its first "data:" line; at most -c connections
 * are in that phase at once, so a listen queue never overflows.  Once
 * every stream has its first chunk (or failed, or -t passed) it prints
 *
 *	ready R failed F pending P ms T
 *
 * on standard output and keeps reading (and dropping) what the streams
 * send until SIGTERM, SIGINT or -s seconds; then it prints
 *
 *	held H closed C bytes B
 *
 * and exits 0 if all N streams reached their first chunk and were
 * still open, 1 otherwise.
 *
 *	usage: sse-hold -p PORT -n N -b BODY [-P PATH] [-H 'Name: value']...
 *	    [-c CONCURRENT] [-t TIMEOUT_S] [-s HOLD_S]
 *
 * Only 127.0.0.1 is ever connected to.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MAX_HEADERS	8
#define MAX_HEAD	(64 * 1024)

enum st { S_IDLE, S_WAIT, S_STREAM, S_DONE };

struct conn {
	struct bufferevent	*bev;
	enum st			 st;
	int			 head_done;
};

static struct event_base	*base;
static struct sockaddr_in	 dst;
static char			*request;
static size_t			 reqlen;
static struct conn		*conns;
static int			 nconns;	/* -n */
static int			 maxpending = 256;	/* -c */
static int			 next;		/* first not yet started */
static int			 pending;	/* started, no first chunk */
static int			 ready;		/* first chunk seen */
static int			 failed;	/* never got one */
static int			 closed;	/* ended after its first */
static int			 reported;	/* the ready line is out */
static unsigned long long	 bytes;
static struct timespec		 t0;
static char			 firsterr[200];

static void	conn_start(void);

static long long
elapsed_ms(void)
{
	struct timespec	 t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)(t.tv_sec - t0.tv_sec) * 1000 +
	    (t.tv_nsec - t0.tv_nsec) / 1000000;
}

static void
report_ready(void)
{
	if (reported)
		return;
	reported = 1;
	printf("ready %d failed %d pending %d ms %lld\n", ready, failed,
	    pending + (nconns - next), elapsed_ms());
	fflush(stdout);
	if (firsterr[0] != '\0')
		fprintf(stderr, "sse-hold: first failure: %s\n", firsterr);
}

static void
check_ready(void)
{
	if (ready + failed == nconns)
		report_ready();
}

static void
conn_fail(struct conn *c, const char *why, const char *detail)
{
	if (firsterr[0] == '\0')
		snprintf(firsterr, sizeof(firsterr), "%s%s%.120s", why,
		    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	if (c->st == S_WAIT) {
		pending--;
		failed++;
	} else if (c->st == S_STREAM)
		closed++;
	c->st = S_DONE;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (!reported)
		conn_start();
	check_ready();
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 p;
	size_t			 n = evbuffer_get_length(in);
	char			 line[128];
	size_t			 ll;

	bytes += n;
	if (c->st == S_STREAM) {
		evbuffer_drain(in, n);
		return;
	}
	if (!c->head_done) {
		p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (p.pos == -1) {
			if (n > MAX_HEAD)
				conn_fail(c, "answer head too large", NULL);
			return;
		}
		ll = evbuffer_copyout(in, line, sizeof(line) - 1);
		line[ll] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "HTTP/1.1 200 ", 13) != 0 &&
		    strncmp(line, "HTTP/1.0 200 ", 13) != 0) {
			conn_fail(c, "status", line);
			return;
		}
		c->head_done = 1;
		evbuffer_drain(in, (size_t)p.pos + 4);
	}
	/* Chunk-size lines may come first; the event is what counts. */
	p = evbuffer_search(in, "data:", 5, NULL);
	if (p.pos == -1) {
		if (evbuffer_get_length(in) > 4)
			evbuffer_drain(in, evbuffer_get_length(in) - 4);
		return;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
	c->st = S_STREAM;
	pending--;
	ready++;
	if (!reported)
		conn_start();
	check_ready();
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	char		 buf[64];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		conn_fail(c, c->st == S_STREAM ? "stream ended" :
		    "closed before the first chunk", NULL);
	else {
		snprintf(buf, sizeof(buf), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_fail(c, "socket error", buf);
	}
}

/* Start connections until maxpending are waiting for a first chunk. */
static void
conn_start(void)
{
	static int	 starting;
	struct conn	*c;
	int		 on = 1;

	if (starting)
		return;		/* a failed connect, from the loop below */
	starting = 1;
	while (next < nconns && pending < maxpending) {
		c = &conns[next++];
		c->st = S_WAIT;
		pending++;
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL) {
			c->st = S_DONE;
			pending--;
			failed++;
			snprintf(firsterr, sizeof(firsterr), "out of memory");
			continue;
		}
		bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&dst,
		    sizeof(dst)) == -1) {
			conn_fail(c, "connect", strerror(errno));
			continue;
		}
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
		    &on, sizeof(on));
		/* One request for all: shared, never copied. */
		evbuffer_add_reference(bufferevent_get_output(c->bev), request,
		    reqlen, NULL, NULL);
		bufferevent_enable(c->bev, EV_READ);
	}
	starting = 0;
}

static void
on_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (firsterr[0] == '\0')
		snprintf(firsterr, sizeof(firsterr), "timed out waiting for "
		    "first chunks");
	report_ready();
}

static void
on_stop(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	report_ready();
	event_base_loopbreak(base);
}

static void
usage(void)
{
	fprintf(stderr, "usage: sse-hold -p PORT -n N -b BODY [-P PATH] "
	    "[-H 'Name: value']... [-c CONCURRENT] [-t TIMEOUT_S] "
	    "[-s HOLD_S]\n");
	exit(2);
}

static long
num(const char *s, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
		usage();
	return v;
}

int
main(int argc, char *argv[])
{
	const char	*path = "/v1/chat/completions", *body = NULL;
	const char	*hdr[MAX_HEADERS];
	struct event	*tmo, *sterm, *sint, *shold = NULL;
	struct timeval	 tv = { 60, 0 }, hold = { 0, 0 };
	struct rlimit	 rl;
	size_t		 sz;
	FILE		*f;
	int		 ch, i, nhdr = 0, port = 0, held = 0;

	while ((ch = getopt(argc, argv, "b:c:H:n:p:P:s:t:")) != -1) {
		switch (ch) {
		case 'b':
			body = optarg;
			break;
		case 'c':
			maxpending = (int)num(optarg, 1, 100000);
			break;
		case 'H':
			if (nhdr == MAX_HEADERS)
				usage();
			hdr[nhdr++] = optarg;
			break;
		case 'n':
			nconns = (int)num(optarg, 1, 1000000);
			break;
		case 'p':
			port = (int)num(optarg, 1, 65535);
			break;
		case 'P':
			path = optarg;
			break;
		case 's':
			hold.tv_sec = num(optarg, 1, 86400);
			break;
		case 't':
			tv.tv_sec = num(optarg, 1, 86400);
			break;
		default:
			usage();
		}
	}
	if (port == 0 || nconns == 0 || body == NULL || optind != argc)
		usage();

	/* One descriptor per stream, and a few more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)nconns + 16) {
		fprintf(stderr, "sse-hold: %d streams need %d descriptors; "
		    "the limit is %llu\n", nconns, nconns + 16,
		    (unsigned long long)rl.rlim_cur);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	if ((f = open_memstream(&request, &sz)) == NULL) {
		perror("sse-hold: open_memstream");
		return 2;
	}
	fprintf(f, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	    "Content-Type: application/json\r\nAccept: text/event-stream\r\n",
	    path, port);
	for (i = 0; i < nhdr; i++)
		fprintf(f, "%s\r\n", hdr[i]);
	fprintf(f, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	if (fclose(f) != 0) {
		perror("sse-hold: request");
		return 2;
	}
	reqlen = sz;

	if ((conns = calloc((size_t)nconns, sizeof(*conns))) == NULL ||
	    (base = event_base_new()) == NULL) {
		fprintf(stderr, "sse-hold: out of memory\n");
		return 2;
	}
	tmo = evtimer_new(base, on_timeout, NULL);
	sterm = evsignal_new(base, SIGTERM, on_stop, NULL);
	sint = evsignal_new(base, SIGINT, on_stop, NULL);
	if (hold.tv_sec > 0)
		shold = evtimer_new(base, on_stop, NULL);
	if (tmo == NULL || sterm == NULL || sint == NULL ||
	    (hold.tv_sec > 0 && shold == NULL) ||
	    evtimer_add(tmo, &tv) == -1 || evsignal_add(sterm, NULL) == -1 ||
	    evsignal_add(sint, NULL) == -1 ||
	    (shold != NULL && evtimer_add(shold, &hold) == -1)) {
		fprintf(stderr, "sse-hold: libevent setup failed\n");
		return 2;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	conn_start();
	check_ready();
	event_base_dispatch(base);

	for (i = 0; i < nconns; i++) {
		if (conns[i].st == S_STREAM)
			held++;
		if (conns[i].bev != NULL)
			bufferevent_free(conns[i].bev);
	}
	printf("held %d closed %d bytes %llu\n", held, closed, bytes);
	fflush(stdout);
	event_free(tmo);
	event_free(sterm);
	event_free(sint);
	if (shold != NULL)
		event_free(shold);
	event_base_free(base);
	free(conns);
	free(request);
	return held == nconns ? 0 : 1;
}
