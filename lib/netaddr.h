/* Numeric socket addresses: FLM resolves no names where it listens or
 * connects. */
#ifndef FLM_NETADDR_H
#define FLM_NETADDR_H

#include <sys/socket.h>

int	netaddr_parse(const char *, int, struct sockaddr_storage *,
	    socklen_t *);

#endif
