/*
 * flmd's seccomp filter, loaded once start-up is done.  A deny-list,
 * not an allow-list: a filter is inherited across fork and execve, so
 * whatever flmd forbids its children cannot do either, and between them
 * they need sockets of every kind flmd binds, connect (proxyd), chroot
 * and setresuid (system mode), keyctl (the keyring master key), Landlock
 * and seccomp.  What is forbidden here none of them ever needs: reading
 * or writing another process's memory, kernel modules, new kernels,
 * BPF, mounts and namespaces, clocks, raw and packet sockets.  The call
 * fails with EPERM; other architectures' calling conventions kill.
 */
#include "config.h"

#include <sys/socket.h>

#include "flmd.h"
#include "log.h"
#include "sandbox.h"

/* Another process's memory, and the kernel itself. */
static void
flmd_sandbox_kernel(scmp_filter_ctx ctx)
{
	SANDBOX_DENY(ctx, ptrace);
	SANDBOX_DENY(ctx, process_vm_readv);
	SANDBOX_DENY(ctx, process_vm_writev);
	SANDBOX_DENY(ctx, kcmp);
	SANDBOX_DENY(ctx, kexec_load);
	SANDBOX_DENY(ctx, kexec_file_load);
	SANDBOX_DENY(ctx, init_module);
	SANDBOX_DENY(ctx, finit_module);
	SANDBOX_DENY(ctx, delete_module);
	SANDBOX_DENY(ctx, bpf);
	SANDBOX_DENY(ctx, perf_event_open);
	SANDBOX_DENY(ctx, userfaultfd);
	SANDBOX_DENY(ctx, iopl);
	SANDBOX_DENY(ctx, ioperm);
	SANDBOX_DENY(ctx, reboot);
	SANDBOX_DENY(ctx, swapon);
	SANDBOX_DENY(ctx, swapoff);
	SANDBOX_DENY(ctx, acct);
	SANDBOX_DENY(ctx, syslog);
	SANDBOX_DENY(ctx, quotactl);
	SANDBOX_DENY(ctx, vhangup);
	SANDBOX_DENY(ctx, settimeofday);
	SANDBOX_DENY(ctx, clock_settime);
	SANDBOX_DENY(ctx, clock_adjtime);
	SANDBOX_DENY(ctx, adjtimex);
	/* Files by handle, past every directory permission. */
	SANDBOX_DENY(ctx, open_by_handle_at);
	SANDBOX_DENY(ctx, name_to_handle_at);
}

/* Mounts and namespaces: the chroot is the only change of root. */
static void
flmd_sandbox_mounts(scmp_filter_ctx ctx)
{
	SANDBOX_DENY(ctx, mount);
	SANDBOX_DENY(ctx, umount2);
	SANDBOX_DENY(ctx, pivot_root);
	SANDBOX_DENY(ctx, move_mount);
	SANDBOX_DENY(ctx, open_tree);
	SANDBOX_DENY(ctx, fsopen);
	SANDBOX_DENY(ctx, fsconfig);
	SANDBOX_DENY(ctx, fsmount);
	SANDBOX_DENY(ctx, fspick);
	SANDBOX_DENY(ctx, mount_setattr);
	SANDBOX_DENY(ctx, unshare);
	SANDBOX_DENY(ctx, setns);
}

/* Sniffing and forging traffic: raw and packet sockets. */
static void
flmd_sandbox_sockets(scmp_filter_ctx ctx)
{
	SANDBOX_DENY_ARG(ctx, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_PACKET));
	SANDBOX_DENY_ARG(ctx, socket, 2, SCMP_A0(SCMP_CMP_EQ, AF_INET),
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
	SANDBOX_DENY_ARG(ctx, socket, 2, SCMP_A0(SCMP_CMP_EQ, AF_INET6),
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
}

void
flmd_sandbox(void)
{
	scmp_filter_ctx	 ctx;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		fatalx("seccomp_init failed");
	/* A deny-list must not be stepped round through x32 or i386. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS) != 0)
		fatalx("seccomp: cannot kill on a foreign architecture");
	flmd_sandbox_kernel(ctx);
	flmd_sandbox_mounts(ctx);
	flmd_sandbox_sockets(ctx);
	sandbox_load(ctx);
	log_debug("seccomp deny-list loaded");
}
