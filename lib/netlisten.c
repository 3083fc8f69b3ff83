/*
 * /proc/net/tcp{,6} lines: "sl: local rem st tx:rx tr:when retr uid ...".
 * The kernel prints each 32-bit word of an address with %08X as the
 * host sees it in memory, so a word read back with strtoul and copied
 * as it is gives the address's bytes in network order again, on either
 * byte order.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netlisten.h"

/* n words of 8 hex digits, then ':' and a 4-digit port. */
static int
netlisten_addr(const char *s, size_t nwords, struct netlisten *nl)
{
	char		 word[9], *end;
	unsigned long	 v, port;
	uint32_t	 w;
	size_t		 i, j;

	for (i = 0; i < nwords; i++) {
		for (j = 0; j < 8; j++) {
			if (strchr("0123456789abcdefABCDEF", s[i * 8 + j]) ==
			    NULL || s[i * 8 + j] == '\0')
				return -1;
			word[j] = s[i * 8 + j];
		}
		word[8] = '\0';
		v = strtoul(word, NULL, 16);
		w = (uint32_t)v;
		memcpy(nl->addr + i * 4, &w, sizeof(w));
	}
	s += nwords * 8;
	if (*s != ':')
		return -1;
	port = strtoul(s + 1, &end, 16);
	if (end != s + 5 || port > 0xffff)
		return -1;
	nl->port = (uint16_t)port;
	return 0;
}

int
netlisten_parse(const char *line, int family, struct netlisten *nl)
{
	char		 local[40], rem[40], st[3];
	unsigned long	 uid;
	size_t		 nwords = family == AF_INET6 ? 4 : 1;
	int		 n;

	memset(nl, 0, sizeof(*nl));
	if (family != AF_INET && family != AF_INET6)
		return -1;
	/* sl: local rem st tx:rx tr:when retrnsmt uid */
	if (sscanf(line, " %*u: %39s %39s %2s %*x:%*x %*x:%*x %*x %lu%n",
	    local, rem, st, &uid, &n) != 4)
		return -1;
	if (strlen(local) != nwords * 8 + 5 ||
	    netlisten_addr(local, nwords, nl) == -1 ||
	    strlen(st) != 2 || strspn(st, "0123456789abcdefABCDEF") != 2)
		return -1;
	nl->family = family;
	nl->state = (int)strtol(st, NULL, 16);
	nl->uid = (uid_t)uid;
	return 0;
}

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* The IPv4 address an entry stands for, if it is one. */
static const uint8_t *
netlisten_v4(const struct netlisten *nl)
{
	if (nl->family == AF_INET)
		return nl->addr;
	if (memcmp(nl->addr, v4mapped, sizeof(v4mapped)) == 0)
		return nl->addr + 12;
	return NULL;
}

int
netlisten_loopback(const struct netlisten *nl)
{
	static const uint8_t	 lo6[16] = { [15] = 1 };
	const uint8_t		*v4;

	if ((v4 = netlisten_v4(nl)) != NULL)
		return v4[0] == 127;
	return memcmp(nl->addr, lo6, sizeof(lo6)) == 0;
}

int
netlisten_wildcard(const struct netlisten *nl)
{
	static const uint8_t	 any[16];
	const uint8_t		*v4;

	if ((v4 = netlisten_v4(nl)) != NULL)
		return memcmp(v4, any, 4) == 0;
	return memcmp(nl->addr, any, sizeof(any)) == 0;
}

void
netlisten_ntop(const struct netlisten *nl, char *buf, size_t sz)
{
	char		 tmp[INET6_ADDRSTRLEN];
	const uint8_t	*v4;

	if ((v4 = netlisten_v4(nl)) != NULL)
		inet_ntop(AF_INET, v4, tmp, sizeof(tmp));
	else
		inet_ntop(AF_INET6, nl->addr, tmp, sizeof(tmp));
	snprintf(buf, sz, "%s", tmp);
}

int
netlisten_scan(const char *path, int family, uint16_t port,
    struct netlisten *out, size_t max)
{
	struct netlisten	 nl;
	FILE			*f;
	char			 line[512];
	int			 n = 0;

	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (netlisten_parse(line, family, &nl) == -1 ||
		    nl.state != NETLISTEN_STATE_LISTEN || nl.port != port)
			continue;
		if ((size_t)n < max)
			out[n] = nl;
		n++;
	}
	fclose(f);
	return n;
}
