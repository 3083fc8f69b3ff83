/*
 * flm-keyd's sandbox: Landlock lets it open files beneath its own
 * directory only (security.db, its journal, WAL and audit archives) and
 * keeps it off TCP; the seccomp allow-list below admits the event loop
 * and SQLite, nothing else.  No socket, connect, bind or execve: key
 * material stays off the network even if keyd is subverted.
 */
#include "config.h"

#include <linux/keyctl.h>

#include "keyd.h"
#include "sandbox.h"

void
keyd_sandbox(const char *dir, long keyring)
{
	scmp_filter_ctx	 ctx;

	/* Landlock first: its own calls are not on the allow-list. */
	sandbox_landlock(dir, 1);
	ctx = sandbox_begin();

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
	/* flm backup list, and the three generations: backups/ read. */
	SANDBOX_ALLOW(ctx, getdents64);
	/* sodium_free() of the master and audit keys at exit: it wipes,
	 * then unlocks, then unmaps. */
	SANDBOX_ALLOW(ctx, munlock);
	/* A rotation of a key from the kernel keyring: that key updated,
	 * no other keyctl operation and no other key. */
	if (keyring != -1)
		SANDBOX_ALLOW_ARG(ctx, keyctl, 2,
		    SCMP_A0(SCMP_CMP_EQ, KEYCTL_UPDATE),
		    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)keyring));
	sandbox_load(ctx);
}
