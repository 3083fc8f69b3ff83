/*
 * flm-proxyd's seccomp allow-list: sockets yes, execve no, and files
 * only for reading (certificates, resolver configuration).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <fcntl.h>

#include "proxyd.h"
#include "sandbox.h"

void
proxyd_sandbox(void)
{
	scmp_filter_ctx	 ctx = sandbox_begin();

	sandbox_allow_common(ctx);
	/* Files: read-only, never created or truncated. */
	SANDBOX_ALLOW_ARG(ctx, openat, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC,
	    O_RDONLY));
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
	/* libevent sizes its reads with FIONREAD; no other ioctl. */
	SANDBOX_ALLOW_ARG(ctx, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	sandbox_load(ctx);
}
