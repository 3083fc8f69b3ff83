/*
 * ptrace-inject PID open PATH | PID call NR [ARG...] | PID exec PATH |
 * PID connect PORT: make a running process make a system call, as a
 * debugger (or an attacker who owns a process that may ptrace it)
 * could, and say what became of it.  The call is injected at the
 * process's next syscall-entry stop, so its seccomp filter and Landlock
 * domain judge it like any call of its own (seccomp runs after that
 * stop since Linux 4.8).  Afterwards the process's registers are
 * restored and its own call is restarted.
 *
 * exec: execve(PATH, {PATH, NULL}, NULL); once it succeeds the process
 * runs PATH and is left to it.  connect: socket(AF_INET, SOCK_STREAM),
 * connect to 127.0.0.1:PORT, close; a refused socket says so too.
 *
 * Prints and exits: "opened fd N" / "returned N" / "executed PATH" /
 * "connected" 0; "refused: ENAME" 1; "killed: signal N" 2; "attach:
 * ENAME" 3 (ptrace not allowed); 64 usage; 77 an architecture it does
 * not know (tests skip).
 */
#include "config.h"

#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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
/* From a call's exit stop: the syscall instruction again, for nr. */
static void
pi_rewind(struct user_regs_struct *r, const struct user_regs_struct *entry,
    long nr)
{
	r->rax = nr;
	r->rip = entry->rip - 2;
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

static struct user_regs_struct	 pi_saved;	/* at the entry stop */
static int			 pi_at_entry;
static unsigned long		 pi_scratch;	/* data put in its stack */
static long			 pi_old[64];
static size_t			 pi_oldlen;

/* Seize the process and stop it at its next syscall entry. */
static int
pi_attach(void)
{
	int	 st;

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
	pi_getregs(&pi_saved);
	pi_at_entry = 1;
	return 0;
}

/* Put len bytes below the red zone of the interrupted frame. */
static unsigned long
pi_put(const void *data, size_t len)
{
	if (len > sizeof(pi_old)) {
		fprintf(stderr, "argument too long\n");
		exit(64);
	}
	pi_scratch = (PI_SP(pi_saved) - PI_REDZONE - sizeof(pi_old)) & ~15UL;
	pi_poke(pi_scratch, data, len, pi_old, 1);
	pi_oldlen = len;
	return pi_scratch;
}

/* One call, from the entry stop or the last injected call's exit. */
static long
pi_call(long nr, const long a[6])
{
	struct user_regs_struct	 r = pi_saved;

	if (!pi_at_entry) {
		pi_getregs(&r);
		pi_rewind(&r, &pi_saved, nr);
		pi_set_call(&r, nr, a);
		pi_setregs(&r);
		pi_to_syscall_stop(0);	/* the entry, for nr */
	} else {
		pi_set_call(&r, nr, a);
		pi_setregs(&r);
	}
	pi_at_entry = 0;
	pi_to_syscall_stop(0);		/* its exit, or the process is dead */
	pi_getregs(&r);
	return (long)PI_RET(r);
}

/* Its own memory, registers and call back; let it go. */
static void
pi_finish(void)
{
	int	 st, sig;

	if (pi_oldlen > 0)
		pi_poke(pi_scratch, pi_old, pi_oldlen, pi_old, 0);
	pi_restart(&pi_saved);
	pi_setregs(&pi_saved);
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
}

static int
pi_refused(long ret)
{
	if (ret < 0 && ret > -4096) {
		printf("refused: %s\n", pi_errname((int)-ret));
		return 1;
	}
	return 0;
}

static int
pi_inject(long nr, long a[6], const char *path)
{
	long	 ret;
	int	 rc;

	if ((rc = pi_attach()) != 0)
		return rc;
	if (path != NULL)
		a[1] = (long)pi_put(path, strlen(path) + 1);
	ret = pi_call(nr, a);
	pi_finish();
	if (pi_refused(ret))
		return 1;
	if (nr == SYS_openat)
		printf("opened fd %ld\n", ret);
	else
		printf("returned %ld\n", ret);
	return 0;
}

/* execve(path, {path, NULL}, NULL): the argv array, then the string. */
static int
pi_exec(const char *path)
{
	char		 buf[sizeof(pi_old)];
	unsigned long	 at;
	size_t		 plen = strlen(path) + 1;
	long		 a[6] = { 0 }, ret, ptrs[2];
	int		 rc;

	if (plen > sizeof(buf) - sizeof(ptrs)) {
		fprintf(stderr, "path too long\n");
		exit(64);
	}
	if ((rc = pi_attach()) != 0)
		return rc;
	/* Where pi_put will put it: the same address, computed first. */
	at = (PI_SP(pi_saved) - PI_REDZONE - sizeof(pi_old)) & ~15UL;
	ptrs[0] = (long)(at + sizeof(ptrs));
	ptrs[1] = 0;
	memcpy(buf, ptrs, sizeof(ptrs));
	memcpy(buf + sizeof(ptrs), path, plen);
	if (pi_put(buf, sizeof(ptrs) + plen) != at) {
		fprintf(stderr, "scratch moved\n");
		exit(4);
	}
	a[0] = (long)ptrs[0];
	a[1] = (long)at;
	ret = pi_call(SYS_execve, a);
	if (ret == 0) {
		/* Another program now: nothing of the old to restore. */
		if (ptrace(PTRACE_DETACH, pi_pid, NULL, NULL) == -1) {
			perror("PTRACE_DETACH");
			exit(4);
		}
		printf("executed %s\n", path);
		return 0;
	}
	pi_finish();
	return pi_refused(ret) ? 1 : (printf("returned %ld\n", ret), 0);
}

/* socket, connect to 127.0.0.1:port, close. */
static int
pi_connect(int port)
{
	struct sockaddr_in	 sin;
	long			 a[6] = { 0 }, fd, ret;
	int			 rc;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((rc = pi_attach()) != 0)
		return rc;
	a[0] = AF_INET;
	a[1] = SOCK_STREAM | SOCK_CLOEXEC;
	fd = pi_call(SYS_socket, a);
	if (fd < 0) {
		pi_finish();
		return pi_refused(fd);
	}
	a[0] = fd;
	a[1] = (long)pi_put(&sin, sizeof(sin));
	a[2] = sizeof(sin);
	ret = pi_call(SYS_connect, a);
	memset(a, 0, sizeof(a));
	a[0] = fd;
	(void)pi_call(SYS_close, a);
	pi_finish();
	if (pi_refused(ret))
		return 1;
	printf("connected\n");
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
	    strcmp(argv[2], "call") != 0 && strcmp(argv[2], "exec") != 0 &&
	    strcmp(argv[2], "connect") != 0) || argc > 10) {
		fprintf(stderr, "usage: ptrace-inject PID open PATH\n"
		    "       ptrace-inject PID call NR [ARG...]\n"
		    "       ptrace-inject PID exec PATH\n"
		    "       ptrace-inject PID connect PORT\n");
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
	if (strcmp(argv[2], "exec") == 0)
		return pi_exec(argv[3]);
	if (strcmp(argv[2], "connect") == 0)
		return pi_connect((int)strtol(argv[3], NULL, 10));
	nr = strtol(argv[3], NULL, 0);
	for (i = 4; i < argc; i++)
		a[i - 4] = strtol(argv[i], NULL, 0);
	return pi_inject(nr, a, NULL);
#endif
}
