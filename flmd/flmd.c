/*
 * flmd: the FLM supervisor.  Owns the control socket, starts flm-keyd
 * and flm-proxyd, restarts them when they die, and stops them all.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "flmd.h"
#include "log.h"
#include "sandbox.h"

struct flmd	*env;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: flmd [-dsv] [-D statedir] [-L libexecdir]\n");
	exit(2);
}

static void
flmd_mkdir(const char *path, mode_t mode, const char *owner)
{
	struct passwd	*pw;

	struct stat	 st;

	if (mkdir(path, mode) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (stat(path, &st) == -1)
		fatal("stat %s", path);
	/* Only what is not so already: flmd.service's flmd is not root,
	 * and tmpfiles.d made these as they should be. */
	if ((st.st_mode & 07777) != mode && chmod(path, mode) == -1)
		fatal("chmod %s", path);
	if (owner == NULL)
		return;
	if ((pw = getpwnam(owner)) == NULL)
		fatalx("user %s does not exist: create the FLM system users "
		    "(systemd-sysusers flm.conf) or run in user mode with "
		    "-D DIR", owner);
	if ((st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid) &&
	    chown(path, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s (systemd-tmpfiles --create flm.conf makes it "
		    "%s's)", path, owner);
}

/* System mode: refuse to start rather than crash-loop the children. */
static void
flmd_check_users(void)
{
	const char	*users[] = { FLM_KEYD_USER, FLM_PROXYD_USER };
	size_t		 i;

	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (getpwnam(users[i]) == NULL)
			fatalx("user %s does not exist: create the FLM system "
			    "users (systemd-sysusers flm.conf) or run in user "
			    "mode with -D DIR", users[i]);
}

/*
 * The state directory: 0711 so the children's users can reach their
 * own subdirectories but list nothing; keyd's subdirectory is its own.
 */
static void
flmd_prepare_dirs(void)
{
	struct flm_paths	*p = &env->paths;
	int			 sys = !p->user_mode;

	flmd_mkdir(p->statedir, sys ? 0711 : 0700, NULL);
	if (sys && strcmp(p->rundir, p->statedir) != 0)
		flmd_mkdir(p->rundir, 0755, NULL);
	flmd_mkdir(p->keyddir, 0700, sys ? FLM_KEYD_USER : NULL);
	flmd_mkdir(p->emptydir, 0555, NULL);
}

static void
flmd_pidfile(void)
{
	char	 buf[32];
	int	 fd, n;

	if ((fd = open(env->paths.pidfile, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
		fatal("open %s", env->paths.pidfile);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, n) != n)
		fatal("write %s", env->paths.pidfile);
	close(fd);
}

static void
flmd_sig(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (env->draining) {
			/* A second signal: nothing waits any longer. */
			log_info("signal %d while draining: stopping now",
			    (int)sig);
			env->draining = 0;
			event_base_loopbreak(env->base);
			break;
		}
		if (env->shutting_down)
			break;
		log_info("shutting down on signal %d", (int)sig);
		env->shutting_down = 1;
		/* Streams under way finish first; the loop ends with them. */
		if (proc_drain() == -1)
			event_base_loopbreak(env->base);
		break;
	case SIGHUP:
		/* Settings are read afresh; listeners and keys are untouched. */
		log_info("reloading");
		proc_reload_all();
		proc_send_limits();
		proc_send_engines();
		break;
	case SIGCHLD:
		proc_reap();
		break;
	default:
		break;
	}
}

/*
 * The suite restarted in place (flmd cannot exec itself under its
 * filter): children stopped, config.db closed, a committed restore put
 * in place, and everything started again as at start-up.  The control
 * socket and its clients stay.
 */
void
flmd_restart(const char *why)
{
	log_info("restarting the suite: %s", why);
	env->shutting_down = 1;
	proc_shutdown_all();
	engines_sent(NULL);
	proxy_cleanup();
	config_close();
	backup_finish();
	config_open();
	env->shutting_down = 0;
	proc_init();
	proxy_restore();
	proc_start_all();
}

static void
flmd_self_dir(void)
{
	char	 exe[PATH_MAX];
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[n] = '\0';
	snprintf(env->self_dir, sizeof(env->self_dir), "%s", dirname(exe));
}

int
main(int argc, char *argv[])
{
	static struct flmd	 flmd;
	struct event		*sigs[5];
	const int		 signos[5] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD,
				    SIGPIPE };
	const char		*dir = NULL;
	char			 err[256];
	int			 ch, i, sys = 0;

	env = &flmd;
	/* Errors in the arguments carry flmd's name too, not log.c's flm
	 * (on stderr: the log starts in the foreground). */
	log_procname("flmd");
	while ((ch = getopt(argc, argv, "dD:L:sv")) != -1) {
		switch (ch) {
		case 'd':
			env->foreground = 1;
			break;
		case 's':
			sys = 1;
			break;
		case 'D':
			dir = optarg;
			break;
		case 'L':
			if (*optarg != '/')
				fatalx("-L needs an absolute directory");
			env->libexec_dir = optarg;
			break;
		case 'v':
			env->verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init(1, env->verbose);
	if (paths_init(&env->paths, dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* -s: system mode (users, chroots) in the state directory given. */
	if (sys)
		env->paths.user_mode = 0;
	/* flmd.service: not root, but able to start the children as
	 * their users. */
	if (!env->paths.user_mode && geteuid() != 0 &&
	    !(sandbox_has_cap(CAP_SETUID) && sandbox_has_cap(CAP_SETGID)))
		fatalx("system mode needs root, or CAP_SETUID and CAP_SETGID "
		    "as flmd.service gives them; for user mode give a state "
		    "directory: flmd -d -D DIR (or set FLM_STATE_DIR)");
	flmd_self_dir();
	if (!env->paths.user_mode)
		flmd_check_users();
	if (proc_check_binaries() == -1)
		fatalx("cannot run the children as root from there: install "
		    "them (make install) or name a directory of root's with "
		    "-L");
	flmd_prepare_dirs();
	control_bind();

	if (!env->foreground && daemon(0, 0) == -1)
		fatal("daemon");
	log_init(env->foreground, env->verbose);
	/* Before anything else is open, and before the filter forbids
	 * fork and execve: the process that will start the children. */
	spawn_start();

	clock_gettime(CLOCK_MONOTONIC, &env->started);
	env->started_wall = time(NULL);
	if ((env->base = event_base_new()) == NULL)
		fatalx("event_base_new");

	control_init();
	flmd_pidfile();

	for (i = 0; i < 5; i++) {
		if (signos[i] == SIGPIPE) {
			signal(SIGPIPE, SIG_IGN);
			sigs[i] = NULL;
			continue;
		}
		sigs[i] = evsignal_new(env->base, signos[i], flmd_sig, NULL);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot install signal handler %d", signos[i]);
	}

	backup_finish();
	config_open();
	proc_init();
	proxy_restore();
	/* Start-up is done: what none of us needs is gone for good. */
	flmd_sandbox();
	proc_start_all();
	backup_init();
	log_info("started in %s mode, state %s, control %s",
	    env->paths.user_mode ? "user" : "system", env->paths.statedir,
	    env->paths.sock);

	/* A spawner already lost stops flmd before the loop runs. */
	if (!env->shutting_down)
		event_base_dispatch(env->base);

	doctor_cleanup();
	backup_cleanup();
	migrate_cleanup();
	control_cleanup();
	proc_shutdown_all();
	spawn_stop();
	engines_sent(NULL);
	acme_dns_cleanup();
	proxy_cleanup();
	config_close();
	unlink(env->paths.pidfile);
	for (i = 0; i < 5; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	event_base_free(env->base);
	log_info("stopped");
	return env->exit_status;
}
