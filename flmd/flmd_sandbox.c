/*
 * flmd's seccomp filter, loaded once start-up is done.  A deny-list,
 * not an allow-list: flmd binds sockets of every kind its children are
 * handed, runs SQLite, resolves engine names and reads the users and
 * groups of its clients.  flmd's children are started by the spawner
 * (flmd_spawn.c), forked before this filter and not under it, so what
 * is forbidden here binds flmd alone:
 *
 * - new programs and new processes: execve, execveat, fork, vfork, a
 *   clone that is not a thread (clone3 says ENOSYS, so that a thread
 *   library falls back to clone, which is judged by its flags);
 * - outbound TCP: Landlock (ABI 4) refuses every TCP connect, to any
 *   address and port (EACCES), and seccomp refuses SCTP and MPTCP
 *   sockets, TCP Fast Open (MSG_FASTOPEN, a connect by sendto or
 *   sendmsg) and io_uring, which Landlock or seccomp would not see.
 *   connect(2) itself stays allowed: getaddrinfo connects UDP sockets
 *   to the name servers and to pick a source address, NSS (nscd,
 *   systemd-userdb) and syslog(3) connect UNIX sockets, and seccomp
 *   cannot see the address a connect is for.  Without Landlock ABI 4
 *   flmd says so once and TCP connect stays allowed;
 * - reading or writing another process's memory, kernel modules, new
 *   kernels, BPF, mounts and namespaces, clocks, raw and packet
 *   sockets: never needed by flmd nor its children.
 *
 * The spawner loads that last part alone (flmd_sandbox_spawner): its
 * children inherit it as they inherited flmd's filter before, and need
 * none of it.  A forbidden call fails with EPERM; other architectures'
 * calling conventions kill.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <sched.h>

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

/* flmd neither runs a program nor makes a process after start-up. */
static void
flmd_sandbox_procs(scmp_filter_ctx ctx)
{
	SANDBOX_DENY(ctx, execve);
	SANDBOX_DENY(ctx, execveat);
	SANDBOX_DENY(ctx, fork);
	SANDBOX_DENY(ctx, vfork);
#if defined(__s390__) || defined(__s390x__)
	SANDBOX_DENY_ARG(ctx, clone, 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
#else
	SANDBOX_DENY_ARG(ctx, clone, 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
#endif
	/* Its flags are in memory seccomp cannot read: "not here". */
	sandbox_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3",
	    0);
}

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP	262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN	0x20000000
#endif

/* What connects without connect(2), or past Landlock's TCP rule. */
static void
flmd_sandbox_connect(scmp_filter_ctx ctx)
{
	const int	 fams[] = { AF_INET, AF_INET6 };
	size_t		 i;

	for (i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		SANDBOX_DENY_ARG(ctx, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[i]),
		    SCMP_A2(SCMP_CMP_EQ, IPPROTO_SCTP));
		SANDBOX_DENY_ARG(ctx, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[i]),
		    SCMP_A2(SCMP_CMP_EQ, IPPROTO_MPTCP));
	}
	SANDBOX_DENY_ARG(ctx, sendto, 1,
	    SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN));
	SANDBOX_DENY_ARG(ctx, sendmsg, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN));
	SANDBOX_DENY_ARG(ctx, sendmmsg, 1,
	    SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN));
	SANDBOX_DENY(ctx, io_uring_setup);
	SANDBOX_DENY(ctx, io_uring_enter);
	SANDBOX_DENY(ctx, io_uring_register);
}

static scmp_filter_ctx
flmd_sandbox_begin(void)
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
	return ctx;
}

/* The spawner, and through it every child: the common part only. */
void
flmd_sandbox_spawner(void)
{
	sandbox_load(flmd_sandbox_begin());
	log_debug("spawner: seccomp deny-list loaded");
}

void
flmd_sandbox(void)
{
	scmp_filter_ctx	 ctx;

	if (!sandbox_landlock_notcpconnect())
		log_warnx("Landlock has no network rules here (ABI 4 needed): "
		    "flmd's outbound TCP connections are not refused");
	ctx = flmd_sandbox_begin();
	flmd_sandbox_procs(ctx);
	flmd_sandbox_connect(ctx);
	sandbox_load(ctx);
	log_debug("seccomp deny-list loaded: no execve, no new process, no "
	    "TCP connect");
}
