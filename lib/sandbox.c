#include "config.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <linux/capability.h>
#include <linux/landlock.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

int	sandbox_debug;	/* trap and name forbidden calls (user mode only) */
static int sandbox_loaded;
/* System mode without a chroot: Landlock is the only view of files. */
static int sandbox_need_landlock;

#if defined(__SANITIZE_ADDRESS__)
int	__lsan_is_turned_off(void);

/*
 * LeakSanitizer stops the world with clone+ptrace, which no sandbox of
 * ours allows: a sandboxed process skips the exit-time leak check
 * (every other ASan check stays on; valgrind covers its leaks).
 */
int
__lsan_is_turned_off(void)
{
	return sandbox_loaded;
}
#endif

/*
 * Early in every child: no ptrace by processes of the same user, no
 * /proc/PID/mem for them, and no core file that could hold key material.
 */
void
sandbox_nodump(void)
{
	const struct rlimit	 none = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");
	if (setrlimit(RLIMIT_CORE, &none) == -1)
		fatal("setrlimit(RLIMIT_CORE)");
}

/*
 * Landlock, by raw system calls: this system's <linux/landlock.h> may
 * predate the kernel, so the newer rights are spelt out here.
 */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER	(1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)
#endif
#define SANDBOX_LL_NET_BIND_TCP		(1ULL << 0)
#define SANDBOX_LL_NET_CONNECT_TCP	(1ULL << 1)
#define SANDBOX_LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)
#define SANDBOX_LL_SCOPE_SIGNAL		(1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; its size tells the kernel
 * how many of the fields we fill. */
struct sandbox_ll_attr {
	uint64_t	 fs;
	uint64_t	 net;
	uint64_t	 scoped;
};

/* What SQLite does in keyd's directory; never execute, no devices,
 * no sockets, fifos or symbolic links. */
#define SANDBOX_LL_DB_RIGHTS	(LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | \
	LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)

#ifdef FLM_COVERAGE
/* Coverage builds only: gcov's .gcda files, made or merged at exit. */
#define SANDBOX_LL_GCOV_RIGHTS	(LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG)
#endif

static int
sandbox_ll_abi(void)
{
	long	 abi;

	abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

/* Every filesystem right this ABI knows: all of them handled. */
static uint64_t
sandbox_ll_fs_rights(int abi)
{
	uint64_t	 r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* Allow rights beneath dir (or on one file); one that is not there is
 * no error unless it must be (ASan's /proc in a chroot). */
static void
sandbox_ll_allow(int rfd, const char *dir, uint64_t rights, int must)
{
	struct landlock_path_beneath_attr	 pb;
	int					 fd;

	if ((fd = open(dir, O_PATH | O_CLOEXEC)) == -1) {
		if (must)
			fatal("landlock: %s", dir);
		return;
	}
	memset(&pb, 0, sizeof(pb));
	pb.parent_fd = fd;
	pb.allowed_access = rights;
	if (syscall(__NR_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
	    &pb, 0) == -1)
		fatal("landlock_add_rule %s", dir);
	close(fd);
}

/*
 * Filesystem isolation under the seccomp filter: with dir NULL no file
 * can be opened at all, else only beneath dir.  notcp: no TCP bind or
 * connect either (ABI 4).  Signals and abstract UNIX sockets stay
 * within the process (ABI 6).  Without Landlock, or with an older ABI,
 * one warning and seccomp (and the chroot in system mode) alone; with
 * no chroot in system mode either, the process exits.
 */
void
sandbox_landlock(const char *dir, int notcp)
{
	struct sandbox_ll_attr	 attr;
	size_t			 attrsz = sizeof(attr.fs);
	int			 abi, rfd;

	if ((abi = sandbox_ll_abi()) == 0) {
		if (sandbox_need_landlock)
			fatalx("neither a chroot (no CAP_SYS_CHROOT) nor "
			    "Landlock (not in this kernel): nothing would "
			    "limit the files this process sees; give flmd "
			    "CAP_SYS_CHROOT (see flmd(8))");
		log_warnx("Landlock is not available: files are guarded by "
		    "seccomp (and the chroot in system mode) only");
		return;
	}
	memset(&attr, 0, sizeof(attr));
	attr.fs = sandbox_ll_fs_rights(abi);
	if (notcp) {
		if (abi >= 4) {
			attr.net = SANDBOX_LL_NET_BIND_TCP |
			    SANDBOX_LL_NET_CONNECT_TCP;
			attrsz = offsetof(struct sandbox_ll_attr, scoped);
		} else
			log_warnx("Landlock ABI %d has no network rules: TCP "
			    "is refused by seccomp only", abi);
	}
	if (abi >= 6) {
		attr.scoped = SANDBOX_LL_SCOPE_ABSTRACT_UNIX |
		    SANDBOX_LL_SCOPE_SIGNAL;
		attrsz = sizeof(attr);
	}
	rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, attrsz, 0);
	if (rfd == -1)
		fatal("landlock_create_ruleset");
	if (dir != NULL)
		sandbox_ll_allow(rfd, dir, SANDBOX_LL_DB_RIGHTS & attr.fs, 1);
#ifdef FLM_COVERAGE
	sandbox_ll_allow(rfd, FLM_COVERAGE_DIR, SANDBOX_LL_GCOV_RIGHTS &
	    attr.fs, 0);
#endif
#if defined(__SANITIZE_ADDRESS__)
	/* The sanitizer runtime reads its own maps and, to symbolize a
	 * report, its own executable: reading, in ASan builds only. */
	sandbox_ll_allow(rfd, "/proc/self", LANDLOCK_ACCESS_FS_READ_FILE |
	    LANDLOCK_ACCESS_FS_READ_DIR, 0);
	sandbox_ll_allow(rfd, "/proc/self/exe", LANDLOCK_ACCESS_FS_READ_FILE,
	    0);
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (syscall(__NR_landlock_restrict_self, rfd, 0) == -1)
		fatal("landlock_restrict_self");
	close(rfd);
	log_debug("landlock ABI %d: %s", abi, dir == NULL ? "no files" :
	    "files beneath its directory only");
}

/*
 * flmd: no TCP connect (ABI 4), and nothing else: no filesystem right
 * handled, no scope (flmd signals children outside its domain).  UDP
 * and UNIX sockets connect as before.  0 if this kernel cannot.
 */
int
sandbox_landlock_notcpconnect(void)
{
	struct sandbox_ll_attr	 attr;
	int			 rfd;

	if (sandbox_ll_abi() < 4)
		return 0;
	memset(&attr, 0, sizeof(attr));
	attr.net = SANDBOX_LL_NET_CONNECT_TCP;
	rfd = (int)syscall(__NR_landlock_create_ruleset, &attr,
	    offsetof(struct sandbox_ll_attr, scoped), 0);
	if (rfd == -1)
		fatal("landlock_create_ruleset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (syscall(__NR_landlock_restrict_self, rfd, 0) == -1)
		fatal("landlock_restrict_self");
	close(rfd);
	return 1;
}

static struct passwd *
sandbox_user(const char *user)
{
	struct passwd	*pw;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s does not exist: create it (systemd-sysusers "
		    "flm.conf) or run in user mode with -D DIR", user);
	return pw;
}

/* user's uid and gid, all three of each, and its group alone. */
static void
sandbox_setids(const struct passwd *pw, const char *user)
{
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
}

/* The capability sets of this process, as capget(2) gives them. */
static int
sandbox_caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct	 h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capget, &h, d);
}

/* Whether cap is in the effective set: flmd.service starts flmd as its
 * own user with a few capabilities rather than as root. */
int
sandbox_has_cap(int cap)
{
	struct __user_cap_data_struct	 d[2];

	if (sandbox_caps(d) == -1)
		return 0;
	return (d[cap / 32].effective & (1U << (cap % 32))) != 0;
}

/*
 * Started without root (flmd.service): become user now and keep the
 * capabilities a change between two other users keeps, so that files
 * only user may read can be read before sandbox_drop_user.  As root,
 * nothing: root reads them and the drop does it all.
 */
void
sandbox_become_user(const char *user)
{
	if (geteuid() != 0)
		sandbox_setids(sandbox_user(user), user);
}

/* Every capability gone, ambient ones too: a change of uid between two
 * users other than root leaves them all in place. */
static void
sandbox_caps_clear(void)
{
	struct __user_cap_header_struct	 h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	 d[2];

	memset(d, 0, sizeof(d));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		fatal("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
	if (syscall(SYS_capset, &h, d) == -1)
		fatal("capset");
	if (sandbox_caps(d) == -1)
		fatal("capget");
	if (d[0].permitted | d[1].permitted | d[0].effective | d[1].effective |
	    d[0].inheritable | d[1].inheritable)
		fatalx("capabilities left after the privilege drop");
}

/*
 * System mode only: chroot (if given and allowed) and become user for
 * good.  Without root or CAP_SYS_CHROOT (flmd.service) the process only
 * changes into root, and Landlock must then limit what it sees.
 * Verified: a process that could switch back is not allowed to run.
 */
void
sandbox_drop_user(const char *user, const char *root)
{
	struct passwd	*pw;
	uid_t		 ru, eu, su;
	gid_t		 rg, eg, sg;

	pw = sandbox_user(user);
	if (root != NULL && (geteuid() == 0 ||
	    sandbox_has_cap(CAP_SYS_CHROOT))) {
		if (chroot(root) == -1)
			fatal("chroot %s", root);
		if (chdir("/") == -1)
			fatal("chdir /");
	} else if (root != NULL) {
		if (chdir(root) == -1)
			fatal("chdir %s", root);
		sandbox_need_landlock = 1;
	}
	sandbox_setids(pw, user);
	sandbox_caps_clear();
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		fatal("getresuid");
	if (ru != pw->pw_uid || eu != pw->pw_uid || su != pw->pw_uid ||
	    rg != pw->pw_gid || eg != pw->pw_gid || sg != pw->pw_gid)
		fatalx("privilege drop to %s incomplete", user);
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		fatalx("privilege drop to %s is reversible", user);
}

static void
sandbox_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char	 buf[96];
	int	 n;

	(void)sig;
	(void)ctx;
	n = snprintf(buf, sizeof(buf),
	    "sandbox: forbidden system call %d, exiting\n", si->si_syscall);
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n);
	_exit(159);
}

/*
 * Deny by default: a forbidden call kills the whole process.  With
 * FLM_SANDBOX_DEBUG set the call is trapped and named on stderr first.
 */
scmp_filter_ctx
sandbox_begin(void)
{
	scmp_filter_ctx	 ctx;
	uint32_t	 act = SCMP_ACT_KILL_PROCESS;

	if (sandbox_debug) {
		struct sigaction	 sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sandbox_sigsys;
		sa.sa_flags = SA_SIGINFO;
		if (sigaction(SIGSYS, &sa, NULL) == -1)
			fatal("sigaction SIGSYS");
		act = SCMP_ACT_TRAP;
	}
	if ((ctx = seccomp_init(act)) == NULL)
		fatalx("seccomp_init failed");
	/* Only the native ABI: no x32 or i386 back door. */
	if (seccomp_arch_exist(ctx, SCMP_ARCH_NATIVE) != 0)
		fatalx("seccomp: native architecture missing");
	return ctx;
}

void
sandbox_rule(scmp_filter_ctx ctx, uint32_t act, int nr, const char *name,
    unsigned int ncmp, ...)
{
	struct scmp_arg_cmp	 cmp[4];
	va_list			 ap;
	unsigned int		 i;
	int			 r;

	if (nr == __NR_SCMP_ERROR)	/* not on this architecture */
		return;
	if (ncmp > 4)
		fatalx("seccomp: too many conditions for %s", name);
	va_start(ap, ncmp);
	for (i = 0; i < ncmp; i++)
		cmp[i] = va_arg(ap, struct scmp_arg_cmp);
	va_end(ap);
	r = seccomp_rule_add_array(ctx, act, nr, ncmp, cmp);
	if (r != 0)
		fatalx("seccomp: cannot add a rule for %s: %s", name,
		    strerror(-r));
}

#ifdef FLM_COVERAGE
/*
 * Coverage builds only (./configure --enable-coverage, never shipped).
 * At exit gcov merges the process's counters into .gcda files below
 * FLM_COVERAGE_DIR: openat(O_RDWR | O_CREAT), fcntl (a lock, F_GETFL),
 * fstat, read, lseek, write, close (strace).  Only that open is added,
 * with exactly those flags, and Landlock admits it below
 * FLM_COVERAGE_DIR alone (sandbox_landlock).  Where it fails (a chroot,
 * another user) gcov looks for the directories with access(F_OK) and
 * makes them (mkdir): both fail, so that the process loses its counters
 * but is not killed at exit.  A process's own unconditional rule for a
 * call (keyd's openat and access) overrides these conditional ones.
 */
static void
sandbox_coverage(scmp_filter_ctx ctx)
{
	SANDBOX_ALLOW_ARG(ctx, openat, 1,
	    SCMP_A2(SCMP_CMP_EQ, O_RDWR | O_CREAT));
	sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(access), "access",
	    1, SCMP_A1(SCMP_CMP_EQ, F_OK));
	sandbox_rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(mkdir), "mkdir", 0);
}
#endif

/* What any libevent daemon of ours needs once it is serving. */
void
sandbox_allow_common(scmp_filter_ctx ctx)
{
#ifdef FLM_COVERAGE
	sandbox_coverage(ctx);
#endif
	SANDBOX_ALLOW(ctx, read);
	SANDBOX_ALLOW(ctx, readv);
	SANDBOX_ALLOW(ctx, write);
	SANDBOX_ALLOW(ctx, writev);
	SANDBOX_ALLOW(ctx, recvmsg);
	SANDBOX_ALLOW(ctx, sendmsg);
	SANDBOX_ALLOW(ctx, recvfrom);
	SANDBOX_ALLOW(ctx, sendto);
	SANDBOX_ALLOW(ctx, close);
	SANDBOX_ALLOW(ctx, fcntl);
	SANDBOX_ALLOW(ctx, fstat);
	SANDBOX_ALLOW(ctx, newfstatat);
	SANDBOX_ALLOW(ctx, lseek);
	SANDBOX_ALLOW(ctx, epoll_wait);
	SANDBOX_ALLOW(ctx, epoll_pwait);
	SANDBOX_ALLOW(ctx, epoll_ctl);
	SANDBOX_ALLOW(ctx, poll);
	SANDBOX_ALLOW(ctx, ppoll);
	SANDBOX_ALLOW(ctx, brk);
	/* Memory, shared memory too (proxyd's rate-limit region), but
	 * never executable: no new code once the filter is in. */
	SANDBOX_ALLOW_ARG(ctx, mmap, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	SANDBOX_ALLOW_ARG(ctx, mprotect, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	SANDBOX_ALLOW(ctx, munmap);
	SANDBOX_ALLOW(ctx, mremap);
	SANDBOX_ALLOW(ctx, madvise);
	SANDBOX_ALLOW(ctx, futex);
	SANDBOX_ALLOW(ctx, clock_gettime);
	SANDBOX_ALLOW(ctx, gettimeofday);
	SANDBOX_ALLOW(ctx, clock_nanosleep);
	SANDBOX_ALLOW(ctx, nanosleep);
	SANDBOX_ALLOW(ctx, getpid);
	SANDBOX_ALLOW(ctx, gettid);
	SANDBOX_ALLOW(ctx, getrandom);
	SANDBOX_ALLOW(ctx, rt_sigaction);
	SANDBOX_ALLOW(ctx, rt_sigprocmask);
	SANDBOX_ALLOW(ctx, rt_sigreturn);
	SANDBOX_ALLOW(ctx, restart_syscall);
	SANDBOX_ALLOW(ctx, exit);
	SANDBOX_ALLOW(ctx, exit_group);
#if defined(__SANITIZE_ADDRESS__)
	/* The sanitizer runtime's own needs when it writes a report. */
	SANDBOX_ALLOW(ctx, sigaltstack);
	SANDBOX_ALLOW(ctx, prctl);
	SANDBOX_ALLOW(ctx, readlink);
	SANDBOX_ALLOW_ARG(ctx, openat, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT, O_RDONLY));
	SANDBOX_ALLOW(ctx, getdents64);
	SANDBOX_ALLOW(ctx, sched_yield);
	SANDBOX_ALLOW(ctx, getrlimit);
	SANDBOX_ALLOW(ctx, prlimit64);
	SANDBOX_ALLOW(ctx, getppid);
	SANDBOX_ALLOW(ctx, tgkill);
	SANDBOX_ALLOW(ctx, ioctl);	/* isatty() on the report's stream */
	SANDBOX_ALLOW_ARG(ctx, open, 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT, O_RDONLY));
#endif
}

void
sandbox_load(scmp_filter_ctx ctx)
{
	int	 r;

	/* seccomp_load sets no_new_privs (SCMP_FLTATR_CTL_NNP defaults on). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if ((r = seccomp_load(ctx)) != 0)
		fatalx("seccomp_load: %s", strerror(-r));
	sandbox_loaded = 1;
	seccomp_release(ctx);
}
