/*
 * Who owns an engine's listening socket?  The kernel says it in
 * /proc/net/tcp and /proc/net/tcp6 (the uid column of a LISTEN line).
 * Both are opened once, before the sandbox, and read again from the
 * start through the kept descriptors (lseek, read): proxyd opens no
 * file after setup.  An engine whose owner changed since flmd recorded
 * it (a local user bound its port while it was down) gets no prompt.
 */
#include "config.h"

#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proxyd.h"

#define OWNER_LISTEN	0x0a	/* TCP_LISTEN in the st column */

static int	 owner_fd[2] = { -1, -1 };	/* tcp, tcp6 */

/* Before the sandbox (and the chroot of system mode). */
void
owner_init(void)
{
	static const char *const path[2] = { "/proc/net/tcp",
	    "/proc/net/tcp6" };
	int	 i;

	for (i = 0; i < 2; i++)
		if ((owner_fd[i] = open(path[i], O_RDONLY | O_CLOEXEC)) == -1)
			log_warn("%s: engine listeners' owners unknown",
			    path[i]);
}

void
owner_cleanup(void)
{
	int	 i;

	for (i = 0; i < 2; i++) {
		if (owner_fd[i] != -1)
			close(owner_fd[i]);
		owner_fd[i] = -1;
	}
}

/* "HEX:PORT" of a line, as the kernel prints it: the address words in
 * host order, which memcpy of the in_addr/in6_addr gives here too. */
static int
owner_parse_addr(const char *s, int v6, uint8_t *addr, int *port)
{
	uint32_t	 w[4];
	unsigned int	 p;
	int		 i, nw = v6 ? 4 : 1;
	char		 word[9];

	for (i = 0; i < nw; i++, s += 8) {
		memcpy(word, s, 8);
		word[8] = '\0';
		if (strspn(word, "0123456789ABCDEFabcdef") != 8)
			return -1;
		w[i] = (uint32_t)strtoul(word, NULL, 16);
	}
	if (*s != ':' || sscanf(s + 1, "%4x", &p) != 1)
		return -1;
	memcpy(addr, w, nw * 4);
	*port = (int)p;
	return 0;
}

/* How well a listener bound to laddr serves want: 2 exactly, 1 as a
 * wildcard, 0 not. */
static int
owner_match(const uint8_t *laddr, int lv6, const uint8_t *want, int wv6)
{
	static const uint8_t	 any[16], mapped[12] = { [10] = 0xff,
	    [11] = 0xff };

	if (lv6 == wv6 && memcmp(laddr, want, wv6 ? 16 : 4) == 0)
		return 2;
	if (!lv6)
		return !wv6 && memcmp(laddr, any, 4) == 0;
	/* An IPv4 engine can be served by a v4-mapped or a dual-stack
	 * IPv6 listener. */
	if (!wv6 && memcmp(laddr, mapped, 12) == 0 &&
	    memcmp(laddr + 12, want, 4) == 0)
		return 2;
	return memcmp(laddr, any, 16) == 0;
}

struct owner_scan {
	uint8_t		 want[16];
	int		 wv6;
	int		 port;
	int		 best;		/* the best match so far */
	int64_t		 uid;		/* its owner; -2 two owners tie */
};

/* One line; 1 if it is in another state than LISTEN. */
static int
owner_line(struct owner_scan *sc, const char *line, int v6)
{
	uint8_t		 laddr[16];
	unsigned int	 st;
	unsigned long	 uid;
	const char	*p;
	int		 port, m, n;

	/* "  sl: LOCAL REMOTE ST TXQ:RXQ TR:WHEN RETR UID ..." */
	if ((p = strchr(line, ':')) == NULL)
		return 0;
	for (p++; *p == ' '; p++)
		;
	/* The state is the fourth field: past the listeners, stop. */
	if ((n = sscanf(p, "%*s %*s %x %*s %*s %*s %lu", &st, &uid)) >= 1 &&
	    st != OWNER_LISTEN)
		return 1;
	if (n != 2 || uid > UINT32_MAX ||
	    owner_parse_addr(p, v6, laddr, &port) == -1 || port != sc->port)
		return 0;
	if ((m = owner_match(laddr, v6, sc->want, sc->wv6)) == 0 ||
	    m < sc->best)
		return 0;
	if (m > sc->best)
		sc->uid = (int64_t)uid;
	else if (sc->uid != (int64_t)uid)
		sc->uid = -2;	/* SO_REUSEPORT by two users */
	sc->best = m;
	return 0;
}

/*
 * The LISTEN lines of one file, read afresh from its start.  The kernel
 * lists its listening sockets before all others (tcp_get_idx: the
 * listening hash, then the established one), so the first line in
 * another state ends the search: a check costs the number of listeners,
 * not of connections (every new engine connection makes one, and a
 * busy proxy has thousands of connections).
 */
static int
owner_read(struct owner_scan *sc, int fd, int v6)
{
	char	 buf[16384], *nl, *line;
	size_t	 have = 0;
	ssize_t	 n = 0;
	int	 done = 0;

	if (fd == -1)		/* no such table here (no IPv6): nothing */
		return 0;
	if (lseek(fd, 0, SEEK_SET) == -1)
		return -1;
	while (!done) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		for (line = buf; !done && (nl = strchr(line, '\n')) != NULL;
		    line = nl + 1) {
			*nl = '\0';
			done = owner_line(sc, line, v6);
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0;	/* no line is that long: skip it */
	}
	return done || n == 0 ? 0 : -1;
}

/*
 * The uid owning the socket that listens for addr:port, -1 if unknown
 * (nothing listens here, or another host), -2 if listeners of two
 * owners share the port.
 */
static int64_t
owner_of(const char *addr, int port)
{
	struct owner_scan	 sc;

	memset(&sc, 0, sizeof(sc));
	sc.port = port;
	sc.uid = -1;
	if (inet_pton(AF_INET, addr, sc.want) == 1)
		sc.wv6 = 0;
	else if (inet_pton(AF_INET6, addr, sc.want) == 1)
		sc.wv6 = 1;
	else
		return -1;
	if (owner_read(&sc, owner_fd[0], 0) == -1 ||
	    owner_read(&sc, owner_fd[1], 1) == -1)
		log_warn("reading the listeners' owners");
	return sc.uid;
}

/*
 * Is e's listener still owned by the uid flmd recorded?  0 yes (or
 * nothing recorded, or not knowable); -1 no, with why.
 */
int
owner_check(const struct proxyd_engine *e, int64_t *uid, char *why,
    size_t sz)
{
	*uid = owner_of(e->addr, e->port);
	if (e->owner < 0 || *uid == -1 || *uid == e->owner)
		return 0;
	if (*uid == -2)
		snprintf(why, sz, "listeners of more than one user share "
		    "port %d, recorded owner uid %lld; flm engines trust %s "
		    "accepts them", e->port, (long long)e->owner, e->id);
	else
		snprintf(why, sz, "the listener on port %d now belongs to "
		    "uid %lld, not uid %lld as recorded; flm engines trust "
		    "%s accepts the change", e->port, (long long)*uid,
		    (long long)e->owner, e->id);
	return -1;
}
