/*
 * ptrace-inject PID open PATH | PID call NR [ARG...]: make a running
 * process make one system call, as a debugger (or an attacker who owns
 * a process that may ptrace it) could, and say what became of it.  The
 * call is injected at the process's next syscall-entry stop, so its
 * seccomp filter and Landlock domain judge it like any call of its own
 * (seccomp runs after that stop since Linux 4.8).  Afterwards the
 * process's registers are restored and its own call is restarted.
 *
 * Prints and exits: "opened fd N" / "returned N" 0; "refused: ENAME" 1;
 * "killed: signal N" 2; "attach: ENAME" 3 (ptrace not allowed); 64
 * usage; 77 an architecture it does not know (tests skip).
 */
#include "config.h"

#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#define PI_NR(r)	((r).orig_rax)
#define PI_RET(r)	((r).rax)
#define PI_SP(r)	((r).rsp)
#define PI_REDZONE	128
static void
pi_set_call(struct user_regs_struct *r, long nr, const long a[6])
{
	r->orig_rax = nr;
	r->rdi = a[0];
	r->rsi = a[1];
	r->rdx = a[2];
	r->r10 = a[3];
	r->r8 = a[4];
	r->r9 = a[5];
}
/* Back to the process's own call: re-run its syscall instruction. */
static void
pi_restart(struct user_regs_struct *r)
{
	r->rax = r->orig_rax;
	r->rip -= 2;
}
#else
#define PI_UNSUPPORTED
#endif

static pid_t	 pi_pid;

static const char *
pi_errname(int e)
{
	const char	*n = strerrorname_np(e);

	return n != NULL ? n : "unknown";
}

#ifndef PI_UNSUPPORTED
/* Wait for the next stop; exits with "killed" if the process died. */
static int
pi_wait(void)
{
	int	 st;

	for (;;) {
		if (waitpid(pi_pid, &st, __WALL) == -1) {
			if (errno == EINTR)
				continue;
			perror("waitpid");
			exit(4);
		}
		if (WIFSIGNALED(st)) {
			printf("killed: signal %d\n", WTERMSIG(st));
			exit(2);
		}
		if (WIFEXITED(st)) {
			printf("killed: exited %d\n", WEXITSTATUS(st));
			exit(2);
		}
		return st;
	}
}

static void
pi_getregs(struct user_regs_struct *r)
{
	struct iovec	 iov = { r, sizeof(*r) };

	if (ptrace(PTRACE_GETREGSET, pi_pid, (void *)1 /* NT_PRSTATUS */,
	    &iov) == -1) {
		perror("PTRACE_GETREGSET");
		exit(4);
	}
}

static void
pi_setregs(struct user_regs_struct *r)
{
	struct iovec	 iov = { r, sizeof(*r) };

	if (ptrace(PTRACE_SETREGSET, pi_pid, (void *)1, &iov) == -1) {
		perror("PTRACE_SETREGSET");
		exit(4);
	}
}

/* Run to the next syscall stop, passing real signals on. */
static void
pi_to_syscall_stop(int sig)
{
	int	 st;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pi_pid, NULL,
		    (void *)(long)sig) == -1) {
			perror("PTRACE_SYSCALL");
			exit(4);
		}
		st = pi_wait();
		sig = 0;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			return;
		/* A real signal is delivered; ptrace's own stops are not. */
		if (st >> 16 == 0 && WSTOPSIG(st) != SIGTRAP)
			sig = WSTOPSIG(st);
	}
}

static int
pi_syscall_op(void)
{
	struct __ptrace_syscall_info	 si;

	if (ptrace(PTRACE_GET_SYSCALL_INFO, pi_pid, (void *)sizeof(si),
	    &si) == -1) {
		perror("PTRACE_GET_SYSCALL_INFO");
		exit(4);
	}
	return si.op;
}

/* Copy len bytes to the tracee at addr, word by word; old keeps what
 * was there. */
static void
pi_poke(unsigned long addr, const void *data, size_t len, long *old,
    int save)
{
	size_t	 i, nw = (len + sizeof(long) - 1) / sizeof(long);
	long	 w;

	for (i = 0; i < nw; i++) {
		unsigned long	 a = addr + i * sizeof(long);

		if (save) {
			errno = 0;
			old[i] = ptrace(PTRACE_PEEKDATA, pi_pid, (void *)a,
			    NULL);
			if (errno != 0) {
				perror("PTRACE_PEEKDATA");
				exit(4);
			}
		}
		w = 0;
		memcpy(&w, (const char *)data + i * sizeof(long),
		    len - i * sizeof(long) < sizeof(long) ?
		    len - i * sizeof(long) : sizeof(long));
		if (ptrace(PTRACE_POKEDATA, pi_pid, (void *)a,
		    (void *)w) == -1) {
			perror("PTRACE_POKEDATA");
			exit(4);
		}
	}
}

static int
pi_inject(long nr, long a[6], const char *path)
{
	struct user_regs_struct	 saved, r;
	long			 old[64];
	unsigned long		 scratch = 0;
	size_t			 plen = 0;
	long			 ret;
	int			 st, sig;

	if (ptrace(PTRACE_SEIZE, pi_pid, NULL,
	    (void *)PTRACE_O_TRACESYSGOOD) == -1) {
		printf("attach: %s\n", pi_errname(errno));
		return 3;
	}
	if (ptrace(PTRACE_INTERRUPT, pi_pid, NULL, NULL) == -1) {
		perror("PTRACE_INTERRUPT");
		exit(4);
	}
	st = pi_wait();
	/* The interrupted call restarts (or the loop makes its next one):
	 * stop at its entry. */
	pi_to_syscall_stop(st >> 16 == 0 && WSTOPSIG(st) != SIGTRAP ?
	    WSTOPSIG(st) : 0);
	while (pi_syscall_op() != PTRACE_SYSCALL_INFO_ENTRY)
		pi_to_syscall_stop(0);
	pi_getregs(&saved);
	r = saved;
	if (path != NULL) {
		plen = strlen(path) + 1;
		if (plen > sizeof(old)) {
			fprintf(stderr, "path too long\n");
			exit(64);
		}
		/* Below the red zone of the interrupted frame. */
		scratch = (PI_SP(saved) - PI_REDZONE - sizeof(old)) & ~15UL;
		pi_poke(scratch, path, plen, old, 1);
		a[1] = (long)scratch;
	}
	pi_set_call(&r, nr, a);
	pi_setregs(&r);
	pi_to_syscall_stop(0);		/* its exit, or the process is dead */
	pi_getregs(&r);
	ret = (long)PI_RET(r);
	if (path != NULL)
		pi_poke(scratch, old, plen, old, 0);
	pi_restart(&saved);
	pi_setregs(&saved);
	/*
	 * A seccomp kill still reports the syscall's exit (registers
	 * rolled back) and kills on the way out: only the next stop (the
	 * restarted call's entry, or a signal) says the process lives.
	 */
	if (ptrace(PTRACE_SYSCALL, pi_pid, NULL, NULL) == -1) {
		perror("PTRACE_SYSCALL");
		exit(4);
	}
	st = pi_wait();
	sig = st >> 16 == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80) &&
	    WSTOPSIG(st) != SIGTRAP ? WSTOPSIG(st) : 0;
	if (ptrace(PTRACE_DETACH, pi_pid, NULL, (void *)(long)sig) == -1) {
		perror("PTRACE_DETACH");
		exit(4);
	}
	if (ret < 0 && ret > -4096) {
		printf("refused: %s\n", pi_errname((int)-ret));
		return 1;
	}
	if (nr == SYS_openat)
		printf("opened fd %ld\n", ret);
	else
		printf("returned %ld\n", ret);
	return 0;
}
#endif

int
main(int argc, char *argv[])
{
	long	 nr, a[6] = { 0 };
	int	 i;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 4 || (strcmp(argv[2], "open") != 0 &&
	    strcmp(argv[2], "call") != 0) || argc > 10) {
		fprintf(stderr, "usage: ptrace-inject PID open PATH\n"
		    "       ptrace-inject PID call NR [ARG...]\n");
		return 64;
	}
#ifdef PI_UNSUPPORTED
	(void)nr;
	(void)a;
	(void)i;
	printf("unsupported architecture\n");
	return 77;
#else
	pi_pid = (pid_t)strtol(argv[1], NULL, 10);
	/* Never hang a test: the kernel detaches a dead tracer. */
	alarm(10);
	if (strcmp(argv[2], "open") == 0) {
		a[0] = AT_FDCWD;
		a[2] = O_RDONLY | O_CLOEXEC;
		return pi_inject(SYS_openat, a, argv[3]);
	}
	nr = strtol(argv[3], NULL, 0);
	for (i = 4; i < argc; i++)
		a[i - 4] = strtol(argv[i], NULL, 0);
	return pi_inject(nr, a, NULL);
#endif
}
