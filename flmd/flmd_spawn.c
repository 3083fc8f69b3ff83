/*
 * The spawner: flmd's children are started by a small process flmd
 * forks at start-up, before its own seccomp filter forbids execve and
 * fork for good.  It has no event loop, no database and no network; it
 * keeps only its socket to flmd and stderr (and syslog's socket in the
 * background), and reads one fixed request at a time:
 *
 *	flmd -> spawner	struct spawn_req { uint32_t proc; ... }, and by
 *			SCM_RIGHTS the child's channel to flmd and, if
 *			there is one, its end of the proxyd <-> keyd channel;
 *			or proc SPAWN_HOOK, the DNS-01 hook's program, user,
 *			operation, name and value, and one descriptor: the
 *			pipe its output goes to
 *	spawner -> flmd	struct spawn_ans { int32_t pid; int32_t err; }:
 *			pid > 0 started; 0 the binary is refused (the
 *			spawner logged why, or wrote it to a hook's pipe);
 *			-1 err is the errno
 *
 * on a SOCK_SEQPACKET socketpair, so each request is one record.  Any
 * request that is not exactly that (another size, another process id
 * than flm-keyd, flm-proxyd or the hook, no descriptor or more than
 * two, other control data, a hook's string unterminated) is logged and
 * ends the spawner: flmd, which sent it, must be subverted or broken,
 * and without its spawner flmd stops (it cannot fork a new one under
 * its filter) with exit status 1.
 *
 * A hook (acme.dns_hook, flm-config(5)) runs, in system mode, only if
 * root alone can change it, and as acme.dns_user (never root) with no
 * capability left; in every mode with a clean environment, stdin
 * /dev/null, in a session of its own that flmd kills whole when it
 * overruns.
 *
 * The spawner resolves and checks the binary itself, with the rules
 * flmd's start-up check uses (spawn_path), and starts the child with
 * clone(CLONE_PARENT): the child's parent is flmd, not the spawner, so
 * flmd waits for it, kills it and restarts it as it always did, and the
 * child's PR_SET_PDEATHSIG still follows flmd.  (A double fork to a
 * subreaper would do the same, but a death signal set before the
 * intermediate exits fires at once, one set after it races with flmd's
 * own death.)  The spawner has no children of its own to reap.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "acme.h"
#include "cover.h"
#include "flmd.h"
#include "log.h"
#include "sandbox.h"

#define SPAWN_HOOK	0x6b6f6f68	/* proc of a DNS-01 hook run */

struct spawn_req {
	uint32_t	 proc;		/* PROC_KEYD, PROC_PROXYD, SPAWN_HOOK */
	/* SPAWN_HOOK only, each NUL-terminated: */
	char		 hook[ACME_HOOK_MAX + 1];
	char		 user[ACME_USER_MAX + 1];
	char		 op[8];		/* add or remove */
	char		 name[ACME_DNS_NAME_MAX + 1];
	char		 value[ACME_DNS_VALUE_MAX + 1];
};

struct spawn_ans {
	int32_t		 pid;
	int32_t		 err;
};

#define SPAWN_ANSWER_SECS	10	/* flmd waits this long at most */
#define SPAWN_STOP_MS		1000	/* then SIGKILL at shutdown */

static void	 spawn_close_others(int);

/* flmd's side. */
static int	 spawn_sock = -1;
static pid_t	 spawn_pid;
/* The spawner's side: flmd's pid, the parent of every child. */
static pid_t	 spawn_flmd;

/*
 * Only root may be able to change a binary flmd runs as root: the file
 * and its directory belong to root and are writable by nobody else.
 */
static int
spawn_trusted(const char *path, char *err, size_t errsz)
{
	struct stat	 st;
	char		 dir[PATH_MAX], *slash;

	if (stat(path, &st) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errsz, "%s must be a file of root's that group "
		    "and others cannot write (owner uid %u, mode %03o)", path,
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (stat(slash != NULL ? dir : ".", &st) == -1 || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errsz, "%s: its directory must be root's and "
		    "not writable by group or others", path);
		return -1;
	}
	return 0;
}

/*
 * Which binary to run.  System mode: only the directory flmd -L names,
 * else LIBEXECDIR, and only a binary root alone can change; never one
 * found beside flmd or through the environment.  User mode: the
 * directory -L names, an environment override, the build tree beside
 * flmd (for running uninstalled), then LIBEXECDIR.  flmd's start-up
 * check and the spawner, before every start, both ask here.
 */
int
spawn_path(const struct flmd_proc *p, char *buf, size_t bufsz, char *err,
    size_t errsz)
{
	const char	*e;

	if (env->libexec_dir != NULL || !env->paths.user_mode) {
		snprintf(buf, bufsz, "%s/%s", env->libexec_dir != NULL ?
		    env->libexec_dir : LIBEXECDIR, p->name);
		return env->paths.user_mode ? 0 : spawn_trusted(buf, err,
		    errsz);
	}
	if ((e = getenv(p->env_path)) != NULL && *e != '\0') {
		snprintf(buf, bufsz, "%s", e);
		return 0;
	}
	/* Beside flmd in the build tree: as trusted as flmd itself. */
	if (*env->self_dir != '\0') {
		int	 n = snprintf(buf, bufsz, "%s/../%s/%s", env->self_dir,
			    p->name, p->name);

		if (n > 0 && (size_t)n < bufsz && access(buf, X_OK) == 0)
			return 0;
	}
	snprintf(buf, bufsz, "%s/%s", LIBEXECDIR, p->name);
	return 0;
}

/* In a new process: no signal blocked, none ignored (the spawner
 * ignores some, and an ignored signal stays so across exec). */
static void
spawn_signals_default(void)
{
	sigset_t	 set;

	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
}

/* In the new child: put the channels on their fixed descriptors. */
static void __attribute__((noreturn))
spawn_exec_child(const char *path, const char *name, int chfd, int peerfd)
{
	char		*argv[8];
	int		 argc = 0;

	/* Never let the first dup2 overwrite the peer's descriptor. */
	if (peerfd == FLM_CHAN_PARENT_FD &&
	    (peerfd = fcntl(peerfd, F_DUPFD_CLOEXEC, FLM_CHAN_PEER_FD + 1)) ==
	    -1)
		_exit(127);
	if (chfd != FLM_CHAN_PARENT_FD) {
		if (dup2(chfd, FLM_CHAN_PARENT_FD) == -1)
			_exit(127);
	} else if (fcntl(chfd, F_SETFD, 0) == -1)
		_exit(127);
	if (peerfd != -1) {
		if (peerfd != FLM_CHAN_PEER_FD) {
			if (dup2(peerfd, FLM_CHAN_PEER_FD) == -1)
				_exit(127);
		} else if (fcntl(peerfd, F_SETFD, 0) == -1)
			_exit(127);
	} else
		close(FLM_CHAN_PEER_FD);
	spawn_signals_default();
	/* A child must not outlive a flmd that was SIGKILLed, even one
	 * killed before the death signal was set. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != spawn_flmd)
		_exit(127);

	argv[argc++] = (char *)name;
	argv[argc++] = "-D";
	argv[argc++] = env->paths.statedir;
	if (env->paths.user_mode)
		argv[argc++] = "-u";
	if (env->foreground)
		argv[argc++] = "-d";
	if (env->verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	execv(path, argv);
	{
		char	 msg[PATH_MAX + 64];
		int	 n;

		n = snprintf(msg, sizeof(msg), "flmd: cannot exec %s: %s\n",
		    path, strerror(errno));
		if (n > 0)
			(void)!write(STDERR_FILENO, msg, (size_t)n);
	}
	_exit(127);
}

/* A new process whose parent is flmd, as fork(2) returns it. */
static pid_t
spawn_clone(void)
{
#if defined(__s390__) || defined(__s390x__)
	return (pid_t)syscall(SYS_clone, 0, CLONE_PARENT | SIGCHLD);
#else
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
#endif
}

static struct spawn_ans
spawn_one(enum flm_proc id, int chfd, int peerfd)
{
	struct spawn_ans	 ans = { -1, 0 };
	const struct flmd_proc	*p = proc_byid(id);
	char			 path[PATH_MAX], err[PATH_MAX + 128];
	pid_t			 pid;

	if (spawn_path(p, path, sizeof(path), err, sizeof(err)) == -1) {
		log_warnx("will not run %s: %s", p->name, err);
		ans.pid = 0;
		return ans;
	}
	if ((pid = spawn_clone()) == -1) {
		ans.err = errno;
		return ans;
	}
	if (pid == 0)
		spawn_exec_child(path, p->name, chfd, peerfd);
	log_debug("started %s (pid %ld) from %s", p->name, (long)pid, path);
	ans.pid = pid;
	return ans;
}

/* A refusal of a hook's run: logged, and said on its pipe for flmd. */
static struct spawn_ans
spawn_hook_refused(int outfd, const char *msg)
{
	struct spawn_ans	 ans = { 0, 0 };
	size_t			 n = strlen(msg);

	log_warnx("will not run the DNS hook: %s", msg);
	(void)!write(outfd, msg, n);
	return ans;
}

/* In the hook's process: its user, its descriptors, a clean start. */
static void __attribute__((noreturn))
spawn_exec_hook(const struct spawn_req *req, const struct passwd *pw,
    int outfd)
{
	char		*argv[5], *envp[5], home[PATH_MAX + 8];
	char		 user[ACME_USER_MAX + 8];
	int		 null;

	if (setsid() == -1 || dup2(outfd, STDOUT_FILENO) == -1 ||
	    dup2(outfd, STDERR_FILENO) == -1 ||
	    (null = open("/dev/null", O_RDONLY)) == -1 ||
	    dup2(null, STDIN_FILENO) == -1)
		_exit(126);
	spawn_close_others(-1);
	/* Root, or flmd.service's _flm with CAP_SETUID: the user and no
	 * capability left, checked (it exits with the reason if not). */
	if (pw != NULL)
		sandbox_drop_user(req->user, NULL);
	if (chdir("/") == -1)
		_exit(126);
	umask(077);
	spawn_signals_default();
	snprintf(home, sizeof(home), "HOME=%s", pw != NULL ? pw->pw_dir :
	    getenv("HOME") != NULL ? getenv("HOME") : "/");
	snprintf(user, sizeof(user), "USER=%s", pw != NULL ? pw->pw_name :
	    getenv("USER") != NULL ? getenv("USER") : "");
	envp[0] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
	    "/sbin:/bin";
	envp[1] = home;
	envp[2] = user;
	envp[3] = "LC_ALL=C";
	envp[4] = NULL;
	argv[0] = (char *)req->hook;
	argv[1] = (char *)req->op;
	argv[2] = (char *)req->name;
	argv[3] = (char *)req->value;
	argv[4] = NULL;
	execve(req->hook, argv, envp);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", req->hook,
	    strerror(errno));
	_exit(127);
}

/* A hook's request, its strings terminated: 1 if well formed. */
static int
spawn_hook_valid(const struct spawn_req *r)
{
	if (memchr(r->hook, '\0', sizeof(r->hook)) == NULL ||
	    memchr(r->user, '\0', sizeof(r->user)) == NULL ||
	    memchr(r->op, '\0', sizeof(r->op)) == NULL ||
	    memchr(r->name, '\0', sizeof(r->name)) == NULL ||
	    memchr(r->value, '\0', sizeof(r->value)) == NULL)
		return 0;
	return acme_hook_valid(r->hook) && acme_user_valid(r->user) &&
	    (strcmp(r->op, "add") == 0 || strcmp(r->op, "remove") == 0) &&
	    acme_dns_name_valid(r->name) &&
	    acme_b64url_valid(r->value, ACME_DNS_VALUE_MAX);
}

/*
 * Run the DNS-01 hook.  System mode: only a program root alone can
 * change, as acme.dns_user (never root, never flmd's own user with its
 * capabilities).  User mode: as the user.
 */
static struct spawn_ans
spawn_hook(const struct spawn_req *req, int outfd)
{
	struct spawn_ans	 ans = { -1, 0 };
	struct passwd		*pw = NULL;
	char			 err[PATH_MAX + 128];
	pid_t			 pid;

	if (!env->paths.user_mode) {
		if (spawn_trusted(req->hook, err, sizeof(err)) == -1)
			return spawn_hook_refused(outfd, err);
		if ((pw = getpwnam(req->user)) == NULL || pw->pw_uid == 0) {
			snprintf(err, sizeof(err), "acme.dns_user %s: no such "
			    "user, or root", req->user);
			return spawn_hook_refused(outfd, err);
		}
	} else if (access(req->hook, X_OK) == -1) {
		snprintf(err, sizeof(err), "%s: not an executable program",
		    req->hook);
		return spawn_hook_refused(outfd, err);
	}
	if ((pid = spawn_clone()) == -1) {
		ans.err = errno;
		return ans;
	}
	if (pid == 0)
		spawn_exec_hook(req, pw, outfd);
	log_debug("DNS hook %s %s %s (pid %ld)", req->hook, req->op,
	    req->name, (long)pid);
	ans.pid = pid;
	return ans;
}

/* Every descriptor but fd and 0, 1, 2 (close_range, or one by one). */
static void
spawn_close_others(int fd)
{
	long	 max, i;

	if (fd < 3) {
		if (syscall(SYS_close_range, 3, ~0U, 0) == 0)
			return;
	} else if ((fd == 3 || syscall(SYS_close_range, 3, fd - 1, 0) == 0) &&
	    syscall(SYS_close_range, fd + 1, ~0U, 0) == 0)
		return;
	if ((max = sysconf(_SC_OPEN_MAX)) < 0 || max > 65536)
		max = 65536;
	for (i = 3; i < max; i++)
		if (i != fd)
			close((int)i);
}

/*
 * The descriptors of a request: 1 or 2 in one SCM_RIGHTS message,
 * nothing else.  Every descriptor received is in fds or closed.
 */
static int
spawn_take_fds(struct msghdr *msg, int fds[2])
{
	struct cmsghdr	*c;
	int		 n = 0, bad = 0, k, i, fd;

	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
			if (n < 2)
				fds[n] = fd;
			else
				close(fd);
			n++;
		}
	}
	if (bad || n < 1 || n > 2) {
		for (i = 0; i < n && i < 2; i++)
			close(fds[i]);
		return -1;
	}
	return n;
}

static void __attribute__((noreturn))
spawn_main(int fd)
{
	struct spawn_req	 req;
	struct spawn_ans	 ans;
	struct msghdr		 msg;
	struct iovec		 iov;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(2 * sizeof(int))];
	}			 cm;
	sigset_t		 set;
	ssize_t			 n;
	int			 fds[2], nfd;

	spawn_flmd = getppid();
	/* Nothing of flmd's: not its control socket, not its syslog. */
	closelog();
	spawn_close_others(fd);
	log_init(env->foreground, env->verbose);
	/* flmd's signals (a terminal's ^C too) are for flmd: the
	 * spawner ends when flmd closes its socket or dies. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	flmd_sandbox_spawner();

	for (;;) {
		memset(&req, 0, sizeof(req));
		memset(&msg, 0, sizeof(msg));
		memset(&cm, 0, sizeof(cm));
		iov.iov_base = &req;
		iov.iov_len = sizeof(req);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			exit(0);		/* flmd is done */
		if (n == -1) {
			log_warn("spawner: recvmsg");
			exit(1);
		}
		nfd = spawn_take_fds(&msg, fds);
		if (n != (ssize_t)sizeof(req) ||
		    (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
		    nfd == -1 || (req.proc != PROC_KEYD &&
		    req.proc != PROC_PROXYD && req.proc != SPAWN_HOOK) ||
		    (req.proc == SPAWN_HOOK && (nfd != 1 ||
		    !spawn_hook_valid(&req)))) {
			log_warnx("spawner: malformed request (%zd bytes, "
			    "flags %#x, %d descriptors, process %u); exiting",
			    n, (unsigned)msg.msg_flags, nfd,
			    (unsigned)req.proc);
			if (nfd > 0) {
				close(fds[0]);
				if (nfd == 2)
					close(fds[1]);
			}
			exit(1);
		}
		if (req.proc == SPAWN_HOOK)
			ans = spawn_hook(&req, fds[0]);
		else
			ans = spawn_one((enum flm_proc)req.proc, fds[0],
			    nfd == 2 ? fds[1] : -1);
		close(fds[0]);
		if (nfd == 2)
			close(fds[1]);
		if (send(fd, &ans, sizeof(ans), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(ans)) {
			log_warn("spawner: send");
			exit(1);
		}
	}
}

/* At start-up, before flmd's filter: fork the spawner. */
void
spawn_start(void)
{
	struct timeval	 tv = { SPAWN_ANSWER_SECS, 0 };
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("spawner: socketpair");
	switch ((pid = fork())) {
	case -1:
		fatal("spawner: fork");
	case 0:
		/* flmd's start-up is flmd's to count, not the spawner's too. */
		COVER_RESET();
		close(sv[0]);
		spawn_main(sv[1]);
	default:
		break;
	}
	close(sv[1]);
	if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		fatal("spawner: SO_RCVTIMEO");
	spawn_sock = sv[0];
	spawn_pid = pid;
	log_debug("spawner started (pid %ld)", (long)pid);
}

/* Without its spawner flmd can start no child: stop, exit status 1. */
static void
spawn_lost(const char *why)
{
	log_warnx("the spawner (pid %ld) %s: flmd cannot start its children "
	    "any more; stopping", (long)spawn_pid, why);
	if (spawn_sock != -1) {
		close(spawn_sock);
		spawn_sock = -1;
	}
	env->exit_status = 1;
	if (!env->shutting_down) {
		env->shutting_down = 1;
		event_base_loopbreak(env->base);
	}
}

/* One request and its answer; -2 if the spawner is gone. */
static pid_t
spawn_request(struct spawn_req *req, const int *fds, int nfd, int *err)
{
	struct spawn_ans	 ans;
	struct msghdr		 msg;
	struct iovec		 iov = { req, sizeof(*req) };
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(2 * sizeof(int))];
	}			 cm;
	struct cmsghdr		*c;
	ssize_t			 n;

	*err = 0;
	if (spawn_sock == -1)
		return -2;
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	do
		n = sendmsg(spawn_sock, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(*req)) {
		spawn_lost("does not take requests");
		return -2;
	}
	do
		n = recv(spawn_sock, &ans, sizeof(ans), MSG_TRUNC);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(ans) || ans.pid < -1 ||
	    (ans.pid == -1 && ans.err <= 0)) {
		spawn_lost(n == 0 ? "is gone" : n == -1 ? "does not answer" :
		    "answers nonsense");
		return -2;
	}
	*err = ans.err;
	return (pid_t)ans.pid;
}

/*
 * Ask the spawner for a child: its pid (flmd's child), 0 if the binary
 * is refused (logged), -1 with *err an errno, or -2 if the spawner is
 * gone (flmd is stopping).  Takes none of the descriptors.
 */
pid_t
spawn_child(enum flm_proc id, int chfd, int peerfd, int *err)
{
	struct spawn_req	 req;
	int			 fds[2] = { chfd, peerfd };

	memset(&req, 0, sizeof(req));
	req.proc = (uint32_t)id;
	return spawn_request(&req, fds, peerfd != -1 ? 2 : 1, err);
}

/*
 * Run the DNS-01 hook "hook op name value" as user, its output to outfd:
 * as spawn_child; 0 refused, the reason written to outfd.  The strings
 * are the caller's, checked (lib/acme.c).
 */
pid_t
spawn_hook_run(const char *hook, const char *user, const char *op,
    const char *name, const char *value, int outfd, int *err)
{
	struct spawn_req	 req;

	memset(&req, 0, sizeof(req));
	req.proc = SPAWN_HOOK;
	if (strlen(hook) >= sizeof(req.hook) || strlen(user) >=
	    sizeof(req.user) || strlen(op) >= sizeof(req.op) ||
	    strlen(name) >= sizeof(req.name) || strlen(value) >=
	    sizeof(req.value)) {
		*err = ENAMETOOLONG;
		return -1;
	}
	memcpy(req.hook, hook, strlen(hook));
	memcpy(req.user, user, strlen(user));
	memcpy(req.op, op, strlen(op));
	memcpy(req.name, name, strlen(name));
	memcpy(req.value, value, strlen(value));
	return spawn_request(&req, &outfd, 1, err);
}

/* proc_reap: 1 if pid was the spawner. */
int
spawn_reaped(pid_t pid, int status)
{
	char	 why[64];

	if (pid != spawn_pid || pid <= 0)
		return 0;
	if (!env->shutting_down) {
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "died (signal %d)",
			    WTERMSIG(status));
		else
			snprintf(why, sizeof(why), "died (exit %d)",
			    WEXITSTATUS(status));
		spawn_lost(why);
	}
	spawn_pid = 0;
	return 1;
}

/* At shutdown: EOF ends the spawner; SIGKILL if it lingers. */
void
spawn_stop(void)
{
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	int		 waited;

	if (spawn_sock != -1) {
		close(spawn_sock);
		spawn_sock = -1;
	}
	for (waited = 0; spawn_pid > 0 && waited < SPAWN_STOP_MS;
	    waited += 20) {
		if (waitpid(spawn_pid, NULL, WNOHANG) == spawn_pid) {
			spawn_pid = 0;
			return;
		}
		nanosleep(&ts, NULL);
	}
	if (spawn_pid > 0) {
		log_warnx("the spawner did not stop; killing it");
		kill(spawn_pid, SIGKILL);
		waitpid(spawn_pid, NULL, 0);
		spawn_pid = 0;
	}
}
