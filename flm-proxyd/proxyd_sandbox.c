/*
 * flm-proxyd's sandbox: sockets yes, execve no, and no file at all.
 * Everything it reads from files (libcurl, OpenSSL) it reads before;
 * engines are numeric addresses, so no resolver files either.  Landlock
 * refuses every open (EACCES) and the seccomp filter kills on one.
 */
#include "config.h"

#include <sys/socket.h>

#include "proxyd.h"
#include "sandbox.h"

void
proxyd_sandbox(void)
{
	scmp_filter_ctx	 ctx;

	/* Landlock first: its own calls are not on the allow-list. */
	sandbox_landlock(NULL, 0);
	ctx = sandbox_begin();
	sandbox_allow_common(ctx);
	/* Network: IPv4 and IPv6 clients and upstreams. */
	SANDBOX_ALLOW_ARG(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
	SANDBOX_ALLOW_ARG(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	SANDBOX_ALLOW(ctx, connect);
	SANDBOX_ALLOW(ctx, accept4);
	SANDBOX_ALLOW(ctx, shutdown);
	SANDBOX_ALLOW(ctx, getsockopt);
	SANDBOX_ALLOW(ctx, setsockopt);
	SANDBOX_ALLOW(ctx, getsockname);
	SANDBOX_ALLOW(ctx, getpeername);
	/* No ioctl at all: proxyd reads its sockets itself (libevent's
	 * evbuffer_read would ask FIONREAD first). */
	sandbox_load(ctx);
}
