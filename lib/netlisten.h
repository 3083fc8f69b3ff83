/*
 * Listening TCP sockets as the kernel lists them in /proc/net/tcp and
 * /proc/net/tcp6: what flm doctor reads to see an engine reachable
 * around FLM.  No privilege needed; the lines of every user are there.
 */
#ifndef FLM_NETLISTEN_H
#define FLM_NETLISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETLISTEN_TCP4		"/proc/net/tcp"
#define NETLISTEN_TCP6		"/proc/net/tcp6"
#define NETLISTEN_STATE_LISTEN	0x0a

struct netlisten {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* network order; v4 in the first 4 */
	uint16_t	 port;
	int		 state;		/* TCP_LISTEN is 0x0a */
	uid_t		 uid;
};

/* One line of /proc/net/tcp (AF_INET) or tcp6: 0, or -1 (a header,
 * or not such a line). */
int	 netlisten_parse(const char *, int, struct netlisten *);
/* 1 if the address is loopback only: 127/8, ::1, ::ffff:127/104. */
int	 netlisten_loopback(const struct netlisten *);
/* 1 if it is a wildcard: 0.0.0.0, ::, ::ffff:0.0.0.0. */
int	 netlisten_wildcard(const struct netlisten *);
/* The address as text; an IPv4-mapped one as its IPv4 form. */
void	 netlisten_ntop(const struct netlisten *, char *, size_t);
/*
 * Every socket listening on port, from the file given (one of the two
 * above) of family: at most max into out.  Returns how many were found
 * (which may exceed max), or -1 with errno when the file cannot be read.
 */
int	 netlisten_scan(const char *, int, uint16_t, struct netlisten *,
	    size_t);

#endif
