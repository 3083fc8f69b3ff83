#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "log.h"
#include "sandbox.h"

static struct child	*child_self;	/* for the log sink */

/* In the background a child's log lines go to flmd, which logs them. */
static void
child_log(int pri, const char *line)
{
	struct mbuf	 b = { 0 };

	if (child_self == NULL || child_self->parent == NULL)
		return;
	mbuf_put_u32(&b, (uint32_t)pri);
	mbuf_put_string(&b, line);
	chan_compose_mbuf(child_self->parent, IMSG_LOG, 0, -1, &b);
}

static void __attribute__((noreturn))
child_usage(const char *name)
{
	fprintf(stderr, "usage: %s [-duv] -D statedir\n"
	    "%s is started by flmd(8), never by hand.\n", name, name);
	exit(2);
}

static void
child_sig(evutil_socket_t sig, short ev, void *arg)
{
	struct child	*c = arg;

	(void)ev;
	if (sig == SIGTERM || sig == SIGINT)
		event_base_loopexit(c->base, NULL);
}

static void
child_parent_closed(struct chan *ch, const char *reason, void *arg)
{
	struct child	*c = arg;

	(void)ch;
	/* Without flmd there is nobody to serve: leave. */
	if (reason != NULL)
		log_warnx("channel to flmd: %s", reason);
	event_base_loopexit(c->base, NULL);
}

/* keyd's slot of a peer channel, or -1; proxyd's single peer is 0. */
static int
child_peer_slot(struct child *c, struct chan *ch)
{
	int	 i;

	if (c->proc != PROC_KEYD)
		return c->peer == ch ? 0 : -1;
	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (c->peers[i] == ch)
			return i;
	return -1;
}

static void
child_peer_forget(struct child *c, int slot)
{
	struct chan	*ch;

	if (c->proc == PROC_KEYD) {
		ch = c->peers[slot];
		c->peers[slot] = NULL;
	} else {
		ch = c->peer;
		c->peer = NULL;
	}
	/* ch only names what the callee had queued for it: being closed,
	 * it is not used. */
	if (c->peer_down != NULL)
		c->peer_down(ch, slot);
}

static void
child_peer_closed(struct chan *ch, const char *reason, void *arg)
{
	struct child	*c = arg;
	struct mbuf	 b = { 0 };
	int		 slot = child_peer_slot(c, ch);

	/*
	 * Tell flmd.  keyd's word gets that proxyd worker restarted;
	 * proxyd's gets proxyd itself restarted (flmd trusts it less),
	 * rate-limited.  Either way flmd hands the survivor a fresh channel.
	 */
	if (reason != NULL) {
		log_warnx("channel to %s: %s; dropped",
		    flm_proc_name(c->proc == PROC_KEYD ? PROC_PROXYD :
		    PROC_KEYD), reason);
		/* keyd names the worker; a channel of no slot is none. */
		if (c->proc == PROC_KEYD)
			mbuf_put_u32(&b, (uint32_t)slot);
		if (c->proc != PROC_KEYD || slot != -1)
			chan_compose_mbuf(c->parent, IMSG_PEER_BROKEN, 0, -1,
			    &b);
		mbuf_free(&b);
	}
	chan_free(ch);
	if (slot != -1)
		child_peer_forget(c, slot);
}

static void
child_peer_attach(struct child *c, int fd, int slot)
{
	struct chan	**pp = c->proc == PROC_KEYD ? &c->peers[slot] :
			    &c->peer;

	if (*pp != NULL) {
		/* A new channel means a new peer: the old one is gone. */
		chan_free(*pp);
		child_peer_forget(c, slot);
	}
	*pp = chan_new(c->base, fd, c->proc, 0, c->peer_cb,
	    child_peer_closed, c);
	if (*pp == NULL) {
		log_warnx("cannot set up peer channel");
		close(fd);
		return;
	}
	chan_expect_peer(*pp, c->proc == PROC_KEYD ? PROC_PROXYD :
	    PROC_KEYD);
	if (c->peer_up != NULL)
		c->peer_up(*pp);
}

static void
child_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct child	*c = arg;
	uint32_t	 slot;

	switch (m->hdr.type) {
	case IMSG_PEER_CHANNEL:
		if (m->fd == -1 || msg_get_u32(m, &slot) == -1 ||
		    slot >= FLM_WORKERS_MAX || msg_end(m) == -1) {
			chan_fail(ch, "malformed PEER_CHANNEL");
			return;
		}
		/* proxyd has one keyd: the index is keyd's business. */
		child_peer_attach(c, m->fd, c->proc == PROC_KEYD ?
		    (int)slot : 0);
		m->fd = -1;
		return;
	case IMSG_RELOAD:
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed RELOAD");
			return;
		}
		log_info("reload requested");
		break;
	default:
		break;
	}
	if (c->parent_cb != NULL)
		c->parent_cb(ch, m, c);
	else if (m->hdr.type != IMSG_RELOAD)
		chan_fail(ch, "unexpected message type %u", m->hdr.type);
}

static int
child_is_socket(int fd)
{
	struct stat	 st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Parse the command line flmd gave us and attach the channels. */
void
child_init(struct child *c, enum flm_proc proc, int argc, char **argv)
{
	const char	*name = flm_proc_name(proc);
	const char	*dir = NULL;
	const int	 signos[4] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE };
	char		 err[256];
	int		 ch, user_mode = 0, i;

	/* Before anything secret is in memory. */
	sandbox_nodump();
	c->proc = proc;
	while ((ch = getopt(argc, argv, "dD:uv")) != -1) {
		switch (ch) {
		case 'd':
			c->foreground = 1;
			break;
		case 'D':
			dir = optarg;
			break;
		case 'u':
			user_mode = 1;
			break;
		case 'v':
			c->verbose++;
			break;
		default:
			child_usage(name);
		}
	}
	if (optind != argc || dir == NULL)
		child_usage(name);
	/* Never syslog's own socket: see child_log(). */
	log_init(1, c->verbose);
	log_procname(name);
	if (!child_is_socket(FLM_CHAN_PARENT_FD))
		fatalx("no channel on descriptor %d: %s is started by flmd",
		    FLM_CHAN_PARENT_FD, name);
	if (paths_init(&c->paths, dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	c->paths.user_mode = user_mode;
	/* Trapping instead of killing is for development, never system mode. */
	sandbox_debug = user_mode && getenv("FLM_SANDBOX_DEBUG") != NULL;

	if ((c->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	for (i = 0; i < 4; i++) {
		if (signos[i] == SIGPIPE || signos[i] == SIGHUP) {
			/* flmd sends RELOAD; a stray HUP must not kill us. */
			signal(signos[i], SIG_IGN);
			c->sigs[i] = NULL;
			continue;
		}
		c->sigs[i] = evsignal_new(c->base, signos[i], child_sig, c);
		if (c->sigs[i] == NULL || evsignal_add(c->sigs[i], NULL) == -1)
			fatalx("signal setup");
	}
	c->parent = chan_new(c->base, FLM_CHAN_PARENT_FD, proc, CHAN_FDPASS,
	    child_parent_dispatch, child_parent_closed, c);
	if (c->parent == NULL)
		fatalx("cannot set up channel to flmd");
	chan_expect_peer(c->parent, PROC_FLMD);
	child_self = c;
	if (!c->foreground)
		log_sink(child_log);
	/* keyd gets its workers' channels by PEER_CHANNEL only. */
	if (proc != PROC_KEYD && child_is_socket(FLM_CHAN_PEER_FD))
		child_peer_attach(c, FLM_CHAN_PEER_FD, 0);
}

/* System mode without root: become user before the files only user may
 * read (sandbox_become_user); child_drop still follows. */
void
child_become(struct child *c, const char *user)
{
	if (!c->paths.user_mode)
		sandbox_become_user(user);
}

/* System mode: become user (chrooted to root if given); user mode: chdir. */
void
child_drop(struct child *c, const char *user, const char *root)
{
	if (c->paths.user_mode) {
		if (root != NULL && chdir(root) == -1)
			fatal("chdir %s", root);
		return;
	}
	sandbox_drop_user(user, root);
}

/*
 * Serve until flmd or a signal says stop.  The event base and the
 * channels outlive the loop: the process's own cleanup still frees
 * events, listeners and bufferevents of the base (a bufferevent is
 * finalized through its base), and then child_exit() frees them.
 */
int
child_run(struct child *c)
{
	event_base_dispatch(c->base);
	log_debug("exiting");
	return 0;
}

/* Last: once nothing of the process's own is left on the base. */
void
child_exit(struct child *c)
{
	int	 i;

	/* Lines logged so far go to flmd if it still listens; none later. */
	if (c->parent != NULL)
		(void)chan_flush(c->parent);
	log_sink(NULL);
	child_self = NULL;
	chan_free(c->peer);
	c->peer = NULL;
	for (i = 0; i < FLM_WORKERS_MAX; i++) {
		chan_free(c->peers[i]);
		c->peers[i] = NULL;
	}
	chan_free(c->parent);
	c->parent = NULL;
	for (i = 0; i < 4; i++) {
		if (c->sigs[i] != NULL)
			event_free(c->sigs[i]);
		c->sigs[i] = NULL;
	}
	/* Runs the finalizers of the bufferevents freed above. */
	event_base_free(c->base);
	c->base = NULL;
}
