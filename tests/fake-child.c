/*
 * fake-child: a subverted flm-proxyd (or, with -k, flm-keyd) for the
 * tests.  flmd starts it in user mode through FLM_PROXYD_PATH or
 * FLM_KEYD_PATH (a wrapper script that drops flmd's arguments); it
 * speaks the channel protocol on descriptor 3 by hand (docs/IPC_PROTOCOL.md
 * section 2), sends HELLO, carries out its actions in order, then reads
 * and discards whatever flmd sends until flmd closes the channel.
 *
 *   broken N		N IMSG_PEER_BROKEN, 10 ms apart
 *   log PRI TEXT	one IMSG_LOG of priority PRI
 *   flood N TEXT	N IMSG_LOG lines "TEXT I" of priority 6, at once
 *   engines N M	N IMSG_ENGINES_STATE of M engines with invented ids
 *   stats N...		once flmd sent an IMSG_PROXY_LISTEN, one
 *			IMSG_PROXY_STATS {ID: N} per N (N as JSON text)
 *   json TYPE TEXT	one message of type TYPE with TEXT as its payload
 *   answer TYPE TEXT	wait for a request of type TYPE from flmd, answer
 *			IMSG_KEY_RESULT with TEXT and the request's peerid
 *   sleep MS
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flm_msg.h"

#define FD		FLM_CHAN_PARENT_FD
#define HDR_SIZE	16

static unsigned long	 engine_serial;	/* ids are unique across messages */
static uint32_t		 in_peerid;	/* of the last frame read */
static uint32_t		 out_peerid;	/* of the next frame sent */

static void __attribute__((noreturn))
die(const char *what)
{
	fprintf(stderr, "fake-child: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
msleep(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
put_all(const void *p, size_t len)
{
	const char	*b = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(FD, b, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		b += n;
		len -= (size_t)n;
	}
}

/* One frame: the header in host order, as lib/chan.c writes it. */
static void
send_msg(uint16_t type, const void *payload, size_t len)
{
	unsigned char	 hdr[HDR_SIZE];
	uint16_t	 flags = 0;
	uint32_t	 total = (uint32_t)(HDR_SIZE + len), peerid = out_peerid;
	uint32_t	 pid = (uint32_t)getpid();

	memcpy(hdr, &type, 2);
	memcpy(hdr + 2, &flags, 2);
	memcpy(hdr + 4, &total, 4);
	memcpy(hdr + 8, &peerid, 4);
	memcpy(hdr + 12, &pid, 4);
	put_all(hdr, sizeof(hdr));
	if (len > 0)
		put_all(payload, len);
}

/* u32, u32, ..., then a string: u32 length and the bytes. */
static void
send_u32_string(uint16_t type, const uint32_t *u, int nu, const char *s)
{
	size_t		 slen = strlen(s), len = 4 * (size_t)nu + 4 + slen;
	unsigned char	*b;
	uint32_t	 l = (uint32_t)slen;

	if ((b = malloc(len)) == NULL)
		die("malloc");
	memcpy(b, u, 4 * (size_t)nu);
	memcpy(b + 4 * nu, &l, 4);
	memcpy(b + 4 * nu + 4, s, slen);
	send_msg(type, b, len);
	free(b);
}

static void
send_hello(int keyd)
{
	uint32_t	 u[2] = { FLM_PROTO_VERSION, keyd ? PROC_KEYD : PROC_PROXYD };

	send_u32_string(IMSG_HELLO, u, 2, "fake");
}

static void
send_log(uint32_t pri, const char *text)
{
	send_u32_string(IMSG_LOG, &pri, 1, text);
}

/* M verdicts of engines nobody configured, as proxyd would shape them. */
static void
send_engines(long m)
{
	char	*b;
	size_t	 cap = 128 + (size_t)m * 160, len = 0;
	long	 i;

	if ((b = malloc(cap)) == NULL)
		die("malloc");
	b[len++] = '[';
	for (i = 0; i < m; i++)
		len += (size_t)snprintf(b + len, cap - len, "%s{\"id\":"
		    "\"invented%lu\",\"kind\":\"ollama\",\"state\":"
		    "\"RunningHealthy\",\"models\":[]}", i ? "," : "",
		    engine_serial++);
	b[len++] = ']';
	send_msg(IMSG_ENGINES_STATE, b, len);
	free(b);
}

/* Read one frame into buf (payload NUL-terminated); its type, or -1. */
static int
read_msg(char *buf, size_t bufsz)
{
	unsigned char	 hdr[HDR_SIZE];
	uint32_t	 total;
	uint16_t	 type;
	size_t		 got = 0, len;
	ssize_t		 n;

	while (got < HDR_SIZE) {
		if ((n = read(FD, hdr + got, HDR_SIZE - got)) <= 0)
			return -1;
		got += (size_t)n;
	}
	memcpy(&type, hdr, 2);
	memcpy(&total, hdr + 4, 4);
	memcpy(&in_peerid, hdr + 8, 4);
	if (total < HDR_SIZE || total - HDR_SIZE >= bufsz)
		return -1;
	len = total - HDR_SIZE;
	for (got = 0; got < len; got += (size_t)n)
		if ((n = read(FD, buf + got, len - got)) <= 0)
			return -1;
	buf[len] = '\0';
	return type;
}

/* Wait for flmd's IMSG_PROXY_LISTEN and take the handle's id from it. */
static void
listener_id(char *id, size_t idsz)
{
	static char	 buf[256 * 1024];
	const char	*p, *q;
	int		 t;

	while ((t = read_msg(buf, sizeof(buf))) != -1) {
		if (t != IMSG_PROXY_LISTEN ||
		    (p = strstr(buf, "\"id\":")) == NULL ||
		    (p = strchr(p + 5, '"')) == NULL ||
		    (q = strchr(p + 1, '"')) == NULL)
			continue;
		snprintf(id, idsz, "%.*s", (int)(q - p - 1), p + 1);
		return;
	}
	fprintf(stderr, "fake-child: no PROXY_LISTEN\n");
	exit(1);
}

/* Wait for a request of this type, answer it with text as RESULT. */
static void
answer(int type, const char *text)
{
	static char	 buf[256 * 1024];
	int		 t;

	while ((t = read_msg(buf, sizeof(buf))) != -1) {
		if (t != type)
			continue;
		out_peerid = in_peerid;
		send_msg(IMSG_KEY_RESULT, text, strlen(text));
		out_peerid = 0;
		return;
	}
	fprintf(stderr, "fake-child: no request of type %d\n", type);
	exit(1);
}

static void
send_stats(const char *id, const char *n)
{
	char	 b[512];
	int	 len;

	len = snprintf(b, sizeof(b), "{\"%s\":%s}", id, n);
	send_msg(IMSG_PROXY_STATS, b, (size_t)len);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: fake-child [-k] action ...\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	char	 buf[4096], line[1100], id[128];
	int	 keyd = 0, i;
	long	 n, j, k;

	if (argc > 1 && strcmp(argv[1], "-k") == 0) {
		keyd = 1;
		argv++;
		argc--;
	}
	send_hello(keyd);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "broken") == 0 && i + 1 < argc) {
			n = atol(argv[++i]);
			for (j = 0; j < n; j++) {
				send_msg(IMSG_PEER_BROKEN, NULL, 0);
				msleep(10);
			}
		} else if (strcmp(argv[i], "log") == 0 && i + 2 < argc) {
			send_log((uint32_t)atol(argv[i + 1]), argv[i + 2]);
			i += 2;
		} else if (strcmp(argv[i], "flood") == 0 && i + 2 < argc) {
			n = atol(argv[i + 1]);
			for (j = 0; j < n; j++) {
				snprintf(line, sizeof(line), "%s %ld",
				    argv[i + 2], j);
				send_log(6, line);
			}
			i += 2;
		} else if (strcmp(argv[i], "engines") == 0 && i + 2 < argc) {
			n = atol(argv[i + 1]);
			k = atol(argv[i + 2]);
			for (j = 0; j < n; j++)
				send_engines(k);
			i += 2;
		} else if (strcmp(argv[i], "stats") == 0) {
			listener_id(id, sizeof(id));
			while (i + 1 < argc && strchr("-0123456789",
			    argv[i + 1][0]) != NULL)
				send_stats(id, argv[++i]);
		} else if (strcmp(argv[i], "json") == 0 && i + 2 < argc) {
			send_msg((uint16_t)atoi(argv[i + 1]), argv[i + 2],
			    strlen(argv[i + 2]));
			i += 2;
		} else if (strcmp(argv[i], "answer") == 0 && i + 2 < argc) {
			answer(atoi(argv[i + 1]), argv[i + 2]);
			i += 2;
		} else if (strcmp(argv[i], "sleep") == 0 && i + 1 < argc)
			msleep(atol(argv[++i]));
		else
			usage();
	}
	/* Stay up, as a child would, until flmd closes the channel. */
	while (read(FD, buf, sizeof(buf)) > 0)
		;
	return 0;
}
