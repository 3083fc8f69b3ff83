/*
 * flm-keyd's seccomp allow-list: event loop, SQLite files, nothing
 * else.  No socket, connect, bind or execve: key material stays off
 * the network even if keyd is subverted.
 */
#include "config.h"

#include "keyd.h"
#include "sandbox.h"

void
keyd_sandbox(void)
{
	scmp_filter_ctx	 ctx = sandbox_begin();

	sandbox_allow_common(ctx);
	/* SQLite: its database, journal and WAL files in keyd's directory. */
	SANDBOX_ALLOW(ctx, openat);
	SANDBOX_ALLOW(ctx, pread64);
	SANDBOX_ALLOW(ctx, pwrite64);
	SANDBOX_ALLOW(ctx, fsync);
	SANDBOX_ALLOW(ctx, fdatasync);
	SANDBOX_ALLOW(ctx, ftruncate);
	SANDBOX_ALLOW(ctx, unlink);
	SANDBOX_ALLOW(ctx, rename);
	SANDBOX_ALLOW(ctx, access);
	SANDBOX_ALLOW(ctx, faccessat);
	SANDBOX_ALLOW(ctx, getcwd);
	SANDBOX_ALLOW(ctx, geteuid);
	SANDBOX_ALLOW(ctx, fchown);
	SANDBOX_ALLOW(ctx, fchmod);
	SANDBOX_ALLOW(ctx, stat);
	SANDBOX_ALLOW(ctx, lstat);
	SANDBOX_ALLOW(ctx, readlink);
	sandbox_load(ctx);
}
