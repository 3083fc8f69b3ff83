/*
 * flmd's children: start each through the spawner (flmd_spawn.c), its
 * channel on a fixed descriptor; restart the dead with back-off; wire
 * each proxyd worker to keyd.  keyd is procs[0]; proxy.workers
 * flm-proxyd processes are procs[1 + i], each supervised on its own.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"
#include "shm.h"

#define NPROCS	(1 + FLM_WORKERS_MAX)
static struct flmd_proc	 procs[NPROCS];
static int		 proc_nworkers = 1;	/* proxy.workers in force */

static void	proc_spawn(struct flmd_proc *);
static void	proc_dispatch(struct chan *, struct chan_msg *, void *);
static void	proc_chan_closed(struct chan *, const char *, void *);
static void	proc_complaint_cb(evutil_socket_t, short, void *);
static void	proc_send_engine_ids(struct json_object *);
static struct json_object *proc_egress(void);

/* keyd, or proxyd worker 0 (who probes engines for flm). */
struct flmd_proc *
proc_byid(enum flm_proc id)
{
	if (id == PROC_KEYD)
		return &procs[0];
	if (id == PROC_PROXYD)
		return &procs[1];
	return NULL;
}

struct flmd_proc *
proc_worker(int i)
{
	return i >= 0 && i < FLM_WORKERS_MAX ? &procs[1 + i] : NULL;
}

int
proc_nworkers_get(void)
{
	return proc_nworkers;
}

/* A slot beyond proxy.workers: drained, not restarted. */
static int
proc_retired(const struct flmd_proc *p)
{
	return p->worker >= proc_nworkers;
}

/* Shown and counted: keyd, the workers wanted, and those still draining. */
static int
proc_in_use(const struct flmd_proc *p)
{
	return p->worker < proc_nworkers || p->pid > 0;
}

static struct flmd_proc *
proc_bypid(pid_t pid)
{
	size_t	 i;

	for (i = 0; i < NPROCS; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	return NULL;
}


long
proc_uptime(const struct timespec *since)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec);
}

/* A restart due; or, for a retired worker, its drain overdue. */
static void
proc_restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct flmd_proc	*p = arg;

	(void)fd;
	(void)ev;
	if (env->shutting_down)
		return;
	if (p->pid > 0) {
		if (proc_retired(p)) {
			log_warnx("%s did not finish draining in time; "
			    "stopping it", p->label);
			kill(p->pid, SIGKILL);
		}
		return;
	}
	proc_spawn(p);
}

/* The table's fixed part: who each slot is. */
static void
proc_table(void)
{
	size_t	 i;

	procs[0].id = PROC_KEYD;
	procs[0].name = "flm-keyd";
	procs[0].user = FLM_KEYD_USER;
	procs[0].env_path = "FLM_KEYD_PATH";
	procs[0].worker = -1;
	snprintf(procs[0].label, sizeof(procs[0].label), "flm-keyd");
	for (i = 1; i < NPROCS; i++) {
		procs[i].id = PROC_PROXYD;
		procs[i].name = "flm-proxyd";
		procs[i].user = FLM_PROXYD_USER;
		procs[i].env_path = "FLM_PROXYD_PATH";
		procs[i].worker = (int)i - 1;
		/* Worker 0 keeps the name every log reader knows. */
		if (i == 1)
			snprintf(procs[i].label, sizeof(procs[i].label),
			    "flm-proxyd");
		else
			snprintf(procs[i].label, sizeof(procs[i].label),
			    "flm-proxyd[%zu]", i - 1);
	}
}

void
proc_init(void)
{
	size_t	 i;

	proc_table();
	(void)config_workers_parse("auto");	/* the CPUs, before the sandbox */
	proc_nworkers = config_workers();
	for (i = 0; i < NPROCS; i++) {
		procs[i].ev_restart = evtimer_new(env->base, proc_restart_cb,
		    &procs[i]);
		procs[i].ev_complaint = evtimer_new(env->base,
		    proc_complaint_cb, &procs[i]);
		if (procs[i].ev_restart == NULL ||
		    procs[i].ev_complaint == NULL)
			fatalx("evtimer_new");
	}
}

void
proc_start_all(void)
{
	size_t	 i;

	/* keyd first: each worker's peer channel then goes straight to it. */
	for (i = 0; i < NPROCS; i++)
		if (!proc_retired(&procs[i]))
			proc_spawn(&procs[i]);
}

/* At start-up: refuse to run rather than crash-loop on a bad binary. */
int
proc_check_binaries(void)
{
	char	 path[PATH_MAX], err[PATH_MAX + 128];
	size_t	 i;

	proc_table();
	for (i = 0; i < 2; i++)		/* every worker runs one binary */
		if (spawn_path(&procs[i], path, sizeof(path), err,
		    sizeof(err)) == -1) {
			log_warnx("will not run %s: %s", procs[i].name, err);
			return -1;
		}
	return 0;
}

/*
 * A fresh keyd <-> worker channel: one end to keyd (PEER_CHANNEL with
 * the worker's index), the other to the worker, or into *wfd for a
 * worker about to be spawned.
 */
static int
proc_wire(struct flmd_proc *w, int *wfd)
{
	struct flmd_proc	*keyd = &procs[0];
	uint32_t		 idx = (uint32_t)w->worker;
	int			 pp[2];

	if (keyd->chan == NULL)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pp) == -1)
		return -1;
	if (chan_compose(keyd->chan, IMSG_PEER_CHANNEL, 0, pp[0], &idx,
	    sizeof(idx)) == -1)
		log_warnx("cannot hand flm-keyd its channel to %s", w->label);
	if (wfd != NULL)
		*wfd = pp[1];
	else if (w->chan == NULL || chan_compose(w->chan, IMSG_PEER_CHANNEL,
	    0, pp[1], &idx, sizeof(idx)) == -1)
		log_warnx("cannot hand %s its channel to flm-keyd", w->label);
	return 0;
}

/* A new worker learns who it is, then its limits, engines, listeners. */
static void
proc_worker_setup(struct flmd_proc *p)
{
	struct json_object	*o;
	uint32_t		 wn[2];

	wn[0] = (uint32_t)p->worker;
	wn[1] = (uint32_t)proc_nworkers;
	chan_compose(p->chan, IMSG_PROXY_WORKER, 0, -1, wn, sizeof(wn));
	proc_send_shm(p->chan);	/* before any listener */
	o = config_limits();
	chan_compose_json(p->chan, IMSG_PROXY_LIMITS, 0, o);
	json_object_put(o);
	o = proc_egress();
	chan_compose_json(p->chan, IMSG_EGRESS, 0, o);
	json_object_put(o);
	o = config_engines();
	chan_compose_json(p->chan, IMSG_ENGINES, 0, o);
	engines_sent(o);	/* takes it: the owners are checked against it */
	proxy_send_all(p->chan);
}

/*
 * The spawner starts the child (flmd itself may not fork or exec once
 * its filter is loaded); the child is still flmd's own.
 */
static void
proc_spawn(struct flmd_proc *p)
{
	int			 sp[2], pp = -1, err;
	size_t			 i;
	pid_t			 pid;

	if (p->pid > 0 || proc_retired(p))
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		goto retry;
	/* A worker's channel to keyd, whenever keyd is alive. */
	if (p->id == PROC_PROXYD && proc_wire(p, &pp) == -1) {
		close(sp[0]);
		close(sp[1]);
		goto retry;
	}
	pid = spawn_child(p->id, sp[1], pp, &err);
	close(sp[1]);
	if (pp != -1)
		close(pp);
	if (pid <= 0) {
		close(sp[0]);
		if (pid == -2)		/* no spawner: flmd is stopping */
			return;
		if (pid == 0)		/* the spawner said why */
			goto later;
		errno = err;
		goto retry;
	}
	p->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	p->started_wall = time(NULL);
	/* keyd hands over config.db's copy of a restore by descriptor. */
	p->chan = chan_new(env->base, sp[0], PROC_FLMD, p->id == PROC_KEYD ?
	    CHAN_FDPASS : 0, proc_dispatch,
	    proc_chan_closed, p);
	if (p->chan == NULL)
		fatalx("%s: cannot set up channel", p->label);
	chan_expect_peer(p->chan, p->id);
	if (p->id == PROC_PROXYD) {
		proc_worker_setup(p);
		return;
	}
	/* A new keyd: the engines' ids, a channel to every worker, and the
	 * TLS handles. */
	{
		struct json_object	*arr = config_engines();

		proc_send_engine_ids(arr);
		json_object_put(arr);
	}
	for (i = 1; i < NPROCS; i++)
		if (procs[i].chan != NULL && proc_wire(&procs[i], NULL) == -1)
			log_warn("%s: no channel to flm-keyd", procs[i].label);
	proxy_tls_ensure_all();
	return;
retry:
	log_warn("cannot start %s", p->label);
later:
	{
		struct timeval	 tv = { 1, 0 };

		evtimer_add(p->ev_restart, &tv);
	}
}

/*
 * A new key passed through on its way to flm: leave no copy behind, in
 * o's string, in o, or on the stack where parsing it spilled.
 */
static void
proc_wipe_key(struct json_object *o)
{
	struct json_object	*k;

	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "key", &k) &&
	    json_object_is_type(k, json_type_string))
		explicit_bzero((char *)json_object_get_string(k),
		    json_object_get_string_len(k));
	json_object_put(o);
	chan_stack_scrub();
}

/*
 * PEER_BROKEN: only the more trusted side may get the other restarted.
 * keyd's word about proxyd is honoured at once.  proxyd's about keyd is
 * not (a subverted proxyd could crash-loop keyd with it): proxyd itself
 * is restarted, which gives both a fresh peer channel, and at most once
 * in PROC_COMPLAINT_SECS; a complaint within that window is held for one
 * restart at the window's end, so neither side can be looped.
 */
static void
proc_peer_broken(struct flmd_proc *p, struct flmd_proc *w)
{
	struct flmd_proc	*peer = &procs[0];
	struct timespec		 now;
	struct timeval		 tv = { 0, 0 };
	long			 since;

	if (p->id == PROC_KEYD) {
		log_warnx("%s reports a protocol error from %s; restarting "
		    "it", p->name, w->label);
		if (w->pid > 0)
			kill(w->pid, SIGKILL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	since = (long)(now.tv_sec - p->complained.tv_sec);
	if (p->complaints > 0 && since < PROC_COMPLAINT_SECS) {
		if (p->complaints_held++ == 0) {
			log_warnx("%s (pid %ld) complains about %s again within "
			    "%d s; %s stays up, %s is restarted in %ld s",
			    p->label, (long)p->pid, peer->name,
			    PROC_COMPLAINT_SECS, peer->name, p->label,
			    PROC_COMPLAINT_SECS - since);
			p->complaint_pid = p->pid;
			tv.tv_sec = PROC_COMPLAINT_SECS - since;
			evtimer_add(p->ev_complaint, &tv);
		}
		return;
	}
	log_warnx("%s (pid %ld) reports a protocol error from %s; restarting "
	    "%s, not %s", p->label, (long)p->pid, peer->name, p->label,
	    peer->name);
	p->complained = now;
	p->complaints++;
	p->complaints_held = 0;
	if (p->pid > 0)
		kill(p->pid, SIGKILL);
}

/* The end of a complaint window: restart the complainer if still there. */
static void
proc_complaint_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct flmd_proc	*p = arg;

	(void)fd;
	(void)ev;
	if (p->complaints_held == 0 || env->shutting_down)
		return;
	log_warnx("%s: %u complaints held in the last %d s", p->label,
	    p->complaints_held, PROC_COMPLAINT_SECS);
	if (p->pid <= 0 || p->pid != p->complaint_pid) {
		p->complaints_held = 0;		/* it restarted meanwhile */
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &p->complained);
	p->complaints++;
	p->complaints_held = 0;
	kill(p->pid, SIGKILL);
}

/* Say how many lines of a child the log rate limit dropped. */
static void
proc_log_summary(struct flmd_proc *p)
{
	if (p->log_dropped == 0)
		return;
	log_warnx("%s: %lu log lines suppressed (more than %d a second)",
	    p->label, p->log_dropped, PROC_LOG_RATE);
	p->log_dropped = 0;
}

/* The token bucket: 1 if the child may log one more line now. */
static int
proc_log_allow(struct flmd_proc *p)
{
	struct timespec	 now;
	double		 elapsed;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - p->log_refill.tv_sec) +
	    (double)(now.tv_nsec - p->log_refill.tv_nsec) / 1e9;
	p->log_refill = now;
	p->log_tokens += elapsed * PROC_LOG_RATE;
	if (p->log_tokens > PROC_LOG_BURST)
		p->log_tokens = PROC_LOG_BURST;
	if (p->log_tokens < 1) {
		p->log_dropped++;
		return 0;
	}
	p->log_tokens -= 1;
	return 1;
}

/*
 * A child's log line: rate-limited, its priority clamped to LOG_ERR at
 * most (LOG_EMERG is written to every terminal), escaped by log_relay.
 */
static void
proc_log(struct chan *ch, struct flmd_proc *p, struct chan_msg *m)
{
	uint32_t	 pri;
	char		 line[LOG_RELAY_MAX];

	if (msg_get_u32(m, &pri) == -1 || pri > LOG_DEBUG ||
	    msg_get_string(m, line, sizeof(line)) == -1 ||
	    msg_end(m) == -1) {
		chan_fail(ch, "malformed LOG");
		return;
	}
	if (!proc_log_allow(p))
		return;
	proc_log_summary(p);
	if (pri < PROC_LOG_MAXPRI)
		pri = PROC_LOG_MAXPRI;
	log_relay((int)pri, p->name, (long)p->pid, line);
}

/* keyd's integrity report: {bad_keys, policy, audit_anchor, audit_problem?}. */
static int
proc_integrity_valid(struct json_object *o)
{
	int	 n = 0;

	if (!json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach(o, k, v) {
		if ((strcmp(k, "bad_keys") == 0 &&
		    json_is_int_range(v, 0, INT64_MAX)) ||
		    (strcmp(k, "policy") == 0 && json_is_string_max(v, 16)) ||
		    (strcmp(k, "audit_anchor") == 0 &&
		    json_is_string_max(v, 16)))
			n++;
		else if (strcmp(k, "audit_problem") != 0 ||
		    !json_is_string_max(v, 511))
			return 0;
	}
	return n == 3;
}

/*
 * keyd's {db, version, safe_mode, reason?, integrity?}: these members,
 * these types.
 */
static int
proc_db_state_valid(struct json_object *o)
{
	int	 n = 0;

	json_object_object_foreach(o, k, v) {
		if ((strcmp(k, "db") == 0 && json_is_string_max(v, 64)) ||
		    (strcmp(k, "version") == 0 &&
		    json_is_int_range(v, 0, INT32_MAX)) ||
		    (strcmp(k, "safe_mode") == 0 &&
		    json_object_is_type(v, json_type_boolean)))
			n++;
		else if ((strcmp(k, "reason") == 0 &&
		    json_is_string_max(v, 511)) || (strcmp(k, "restored") ==
		    0 && json_object_is_type(v, json_type_boolean)))
			continue;
		else if (strcmp(k, "integrity") != 0 ||
		    !proc_integrity_valid(v))
			return 0;
	}
	return n == 3;
}

/* The JSON payload of a child's message, if small enough to parse. */
static int
proc_get_json(struct chan_msg *m, size_t max, struct json_object **o)
{
	*o = NULL;
	if (m->len - m->off > max)
		return -1;
	return msg_get_json(m, o);
}

/* A worker's own count of requests served (checked: proxy_stats_valid). */
static void
proc_requests(struct flmd_proc *p, struct json_object *o)
{
	json_object_object_foreach(o, k, v) {
		(void)k;
		if (p->requests < UINT64_MAX / 2)
			p->requests += (uint64_t)json_object_get_int64(v);
	}
}

/*
 * PEER_BROKEN: keyd names the worker (u32), a worker names nobody (its
 * peer is keyd).  *w: the worker concerned, NULL if that slot is empty.
 */
static int
proc_broken_worker(struct flmd_proc *p, struct chan_msg *m,
    struct flmd_proc **w)
{
	uint32_t	 idx;

	*w = p;
	if (p->id != PROC_KEYD)
		return msg_end(m);
	if (msg_get_u32(m, &idx) == -1 || idx >= FLM_WORKERS_MAX ||
	    msg_end(m) == -1)
		return -1;
	*w = procs[1 + idx].pid > 0 ? &procs[1 + idx] : NULL;
	return 0;
}

/*
 * Every message from a child is checked before use: a child is less
 * privileged than flmd, and one that sends anything malformed loses its
 * channel (and is restarted), never flmd.
 */
static void
proc_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct flmd_proc	*p = arg;
	struct flmd_proc	*w = NULL;
	struct json_object	*o = NULL;
	char			 why[160];

	switch (m->hdr.type) {
	case IMSG_LOG:
		proc_log(ch, p, m);
		break;
	case IMSG_DB_STATE:
		if (p->id != PROC_KEYD ||
		    proc_get_json(m, PROC_DB_STATE_MAX, &o) == -1 ||
		    !json_object_is_type(o, json_type_object) ||
		    !proc_db_state_valid(o)) {
			json_object_put(o);
			chan_fail(ch, "malformed DB_STATE");
			return;
		}
		backup_keyd_state(o);
		json_object_put(p->db_state);
		p->db_state = o;
		break;
	case IMSG_KEY_RESULT:
	case IMSG_KEY_ERROR:
		if (p->id != PROC_KEYD || msg_get_json(m, &o) == -1) {
			chan_fail(ch, "malformed key reply");
			return;
		}
		msg_wipe(m);	/* a new key's text, parsed into o */
		if (m->hdr.peerid & PROXY_TLS_REQ)	/* flmd's own */
			proxy_tls_reply(m->hdr.peerid, m->hdr.type ==
			    IMSG_KEY_RESULT, o);
		else if (m->hdr.peerid & DOCTOR_REQ)	/* flmd's own */
			doctor_keyd_reply(m->hdr.peerid, m->hdr.type ==
			    IMSG_KEY_RESULT, o);
		else if (m->hdr.peerid & BACKUP_REQ) {	/* a restore */
			control_backup_reply(m->hdr.peerid & ~BACKUP_REQ,
			    m->hdr.type == IMSG_KEY_RESULT, o, m->fd);
			m->fd = -1;
		}
		else if (m->hdr.peerid & MIGRATE_REQ)	/* flmd's own */
			migrate_keyd_reply(m->hdr.peerid & ~MIGRATE_REQ,
			    m->hdr.type == IMSG_KEY_RESULT, o);
		else
			control_relay(m->hdr.peerid, m->hdr.type ==
			    IMSG_KEY_RESULT ? IMSG_CTL_RESULT : IMSG_CTL_ERROR,
			    o);
		proc_wipe_key(o);
		break;
	case IMSG_TLS_RENEWED:
		if (p->id != PROC_KEYD || msg_get_json(m, &o) == -1) {
			chan_fail(ch, "malformed TLS_RENEWED");
			return;
		}
		proxy_tls_renewed(o);
		json_object_put(o);
		break;
	case IMSG_ENGINES_STATE:
		if (p->id != PROC_PROXYD || msg_get_json(m, &o) == -1) {
			chan_fail(ch, "malformed ENGINES_STATE");
			return;
		}
		if (!engines_valid(o, why, sizeof(why))) {
			json_object_put(o);
			chan_fail(ch, "malformed ENGINES_STATE: %s", why);
			return;
		}
		/* Only worker 0 answers flm's requests; the others' reports
		 * are periodic ones. */
		engines_state(p->worker == 0 ? m->hdr.peerid : 0, o);
		json_object_put(o);
		break;
	case IMSG_EGRESS_STATE:
		if (p->id != PROC_PROXYD || msg_get_json(m, &o) == -1 ||
		    !proxy_egress_valid(o)) {
			json_object_put(o);
			chan_fail(ch, "malformed EGRESS_STATE");
			return;
		}
		proxy_egress_state(p->worker == 0 ? m->hdr.peerid : 0, o);
		json_object_put(o);
		break;
	case IMSG_PROXY_STATS:
		if (p->id != PROC_PROXYD ||
		    proc_get_json(m, PROC_STATS_MAX, &o) == -1 ||
		    !json_object_is_type(o, json_type_object) ||
		    !proxy_stats_valid(o)) {
			json_object_put(o);
			chan_fail(ch, "malformed PROXY_STATS");
			return;
		}
		proxy_stats(o);
		proc_requests(p, o);
		json_object_put(o);
		break;
	case IMSG_ACME_PROGRESS:
		if (p->id != PROC_PROXYD ||
		    proc_get_json(m, PROC_STATS_MAX, &o) == -1 ||
		    !acme_progress_valid(o)) {
			json_object_put(o);
			chan_fail(ch, "malformed ACME_PROGRESS");
			return;
		}
		proxy_acme_progress(o);
		json_object_put(o);
		break;
	case IMSG_ACME_FAILED:
		if (p->id != PROC_KEYD ||
		    proc_get_json(m, PROC_STATS_MAX, &o) == -1 ||
		    proxy_acme_failed(o) == -1) {
			json_object_put(o);
			chan_fail(ch, "malformed ACME_FAILED");
			return;
		}
		json_object_put(o);
		break;
	case IMSG_ACME_DNS:
		if (p->id != PROC_KEYD ||
		    proc_get_json(m, PROC_STATS_MAX, &o) == -1 ||
		    !json_object_is_type(o, json_type_object) ||
		    acme_dns_request(m->hdr.peerid, o) == -1) {
			json_object_put(o);
			chan_fail(ch, "malformed ACME_DNS");
			return;
		}
		json_object_put(o);
		break;
	case IMSG_PEER_BROKEN:
		if (proc_broken_worker(p, m, &w) == -1) {
			chan_fail(ch, "malformed PEER_BROKEN");
			return;
		}
		if (w != NULL)
			proc_peer_broken(p, w);
		break;
	default:
		chan_fail(ch, "unexpected message type %u from %s",
		    m->hdr.type, p->name);
		break;
	}
}

/* A broken channel means a broken child: kill it, SIGCHLD restarts it. */
static void
proc_chan_closed(struct chan *ch, const char *reason, void *arg)
{
	struct flmd_proc	*p = arg;

	if (reason != NULL && !env->shutting_down)
		log_warnx("%s (pid %ld): %s; restarting it", p->label,
		    (long)p->pid, reason);
	chan_free(ch);
	p->chan = NULL;
	/* A drained worker closes its channel on its way out: let it. */
	if (reason == NULL && proc_retired(p))
		return;
	if (p->id == PROC_KEYD) {
		proxy_keyd_gone();
		doctor_keyd_gone();
	}
	/* flm's requests go to keyd or worker 0 only. */
	if (p->worker <= 0)
		control_proc_gone(p->id);
	if (p->pid > 0 && !env->shutting_down)
		kill(p->pid, SIGKILL);
}

/* "exit N" or "signal N", as flm status shows it. */
static void
proc_exit_status(struct flmd_proc *p, int status)
{
	if (WIFSIGNALED(status))
		snprintf(p->last_exit, sizeof(p->last_exit), "signal %d",
		    WTERMSIG(status));
	else
		snprintf(p->last_exit, sizeof(p->last_exit), "exit %d",
		    WEXITSTATUS(status));
}

static void
proc_schedule_restart(struct flmd_proc *p, int status)
{
	struct timeval	 tv;
	long		 ran = proc_uptime(&p->started);

	proc_exit_status(p, status);

	/* A child that ran a while gets a fresh start at once. */
	if (ran >= PROC_STABLE_SECS) {
		p->quick_deaths = 0;
		p->backoff_ms = 0;
		p->crashloop = 0;
	} else {
		p->quick_deaths++;
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 :
		    PROC_BACKOFF_MIN_MS;
		if (p->backoff_ms > PROC_BACKOFF_MAX_MS)
			p->backoff_ms = PROC_BACKOFF_MAX_MS;
	}
	if (p->quick_deaths >= PROC_CRASHLOOP && !p->crashloop) {
		p->crashloop = 1;
		log_warnx("%s is in a crash loop (%u quick deaths, last %s); "
		    "retrying every %d ms at most, see its log", p->label,
		    p->quick_deaths, p->last_exit, PROC_BACKOFF_MAX_MS);
	}
	proc_log_summary(p);
	log_warnx("%s (pid %ld) died after %lds (%s); restart in %d ms",
	    p->label, (long)p->pid, ran, p->last_exit, p->backoff_ms);
	p->pid = 0;
	p->restarts++;
	/* The next one reports its database afresh. */
	json_object_put(p->db_state);
	p->db_state = NULL;
	tv.tv_sec = p->backoff_ms / 1000;
	tv.tv_usec = (p->backoff_ms % 1000) * 1000;
	evtimer_add(p->ev_restart, &tv);
}

/* flmd stops waiting for proxyd's drain: what is left is cut. */
static void
proc_drain_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (!env->draining)
		return;
	log_warnx("flm-proxyd did not finish draining in time; stopping "
	    "the workers");
	env->draining = 0;
	event_base_loopbreak(env->base);
}

/* Workers still running. */
static int
proc_workers_alive(void)
{
	size_t	 i;
	int	 n = 0;

	for (i = 1; i < NPROCS; i++)
		if (procs[i].pid > 0)
			n++;
	return n;
}

/*
 * SIGTERM: every worker stops accepting and finishes what is under way
 * (IMSG_PROXY_DRAIN), keyd still writing their audit records; flmd
 * closes its own copies of the listeners, so that the ports are free at
 * once.  The loop ends when the last worker has exited (proc_reap), or
 * proxy.drain_timeout and a slack later.  -1: nothing to drain.
 */
int
proc_drain(void)
{
	struct timeval		 tv = { 0, 0 };
	long long		 secs = config_limit("drain_timeout");
	size_t			 i;
	int			 n = 0;

	for (i = 1; i < NPROCS; i++)
		if (procs[i].pid > 0 && procs[i].chan != NULL &&
		    chan_compose(procs[i].chan, IMSG_PROXY_DRAIN, 0, -1, NULL,
		    0) == 0)
			n++;
	if (n == 0)
		return -1;
	proxy_cleanup();
	if (env->ev_drain == NULL && (env->ev_drain = evtimer_new(env->base,
	    proc_drain_timeout, NULL)) == NULL)
		return -1;
	tv.tv_sec = (time_t)secs + PROC_DRAIN_SLACK_SECS;
	evtimer_add(env->ev_drain, &tv);
	env->draining = 1;
	log_info("draining flm-proxyd (%d workers): up to %lld s for the "
	    "requests under way (proxy.drain_timeout)", n, secs);
	return 0;
}

/* A worker beyond proxy.workers has drained: its slot starts afresh. */
static void
proc_retire_done(struct flmd_proc *p, int status)
{
	proc_exit_status(p, status);
	log_info("%s (pid %ld) drained and stopped (%s)", p->label,
	    (long)p->pid, p->last_exit);
	proc_log_summary(p);
	evtimer_del(p->ev_restart);
	evtimer_del(p->ev_complaint);
	p->pid = 0;
	p->restarts = 0;
	p->requests = 0;
	p->quick_deaths = 0;
	p->backoff_ms = 0;
	p->crashloop = 0;
	p->complaints = 0;
	p->complaints_held = 0;
	p->last_exit[0] = '\0';
}

/*
 * proxy.workers changed: start the workers now wanted; drain the ones
 * beyond (IMSG_PROXY_DRAIN, as at shutdown), killed if still there past
 * proxy.drain_timeout and a slack.
 */
void
proc_workers_apply(void)
{
	struct timeval	 tv = { 0, 0 };
	int		 n = config_workers(), old = proc_nworkers, i;

	if (n == old || env->shutting_down)
		return;
	proc_nworkers = n;
	log_info("proxy.workers: %d flm-proxyd processes (were %d)", n, old);
	tv.tv_sec = (time_t)config_limit("drain_timeout") +
	    PROC_DRAIN_SLACK_SECS;
	for (i = 0; i < FLM_WORKERS_MAX; i++) {
		struct flmd_proc	*p = &procs[1 + i];

		if (i < n) {
			/* Wanted: start it, unless it runs (or waits for
			 * its back-off, or still drains: SIGCHLD restarts). */
			if (p->pid == 0 && !evtimer_pending(p->ev_restart,
			    NULL))
				proc_spawn(p);
			continue;
		}
		if (p->pid > 0 && p->chan != NULL) {
			log_info("%s (pid %ld): draining", p->label,
			    (long)p->pid);
			chan_compose(p->chan, IMSG_PROXY_DRAIN, 0, -1, NULL, 0);
			evtimer_add(p->ev_restart, &tv);
		} else if (p->pid > 0)
			kill(p->pid, SIGTERM);
		else
			evtimer_del(p->ev_restart);
	}
}

/* SIGCHLD: collect every dead child. */
void
proc_reap(void)
{
	struct flmd_proc	*p;
	pid_t			 pid;
	int			 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (spawn_reaped(pid, status) || acme_dns_reaped(pid, status))
			continue;
		if ((p = proc_bypid(pid)) == NULL)
			continue;
		if (p->chan != NULL) {
			chan_free(p->chan);
			p->chan = NULL;
			if (p->id == PROC_KEYD)
				doctor_keyd_gone();
			if (p->worker <= 0)
				control_proc_gone(p->id);
		}
		if (env->shutting_down) {
			/* Asked to stop, a child exits 0: anything else is
			 * a bug of its own (an abort on its way out). */
			proc_exit_status(p, status);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				log_debug("%s (pid %ld) stopped (%s)", p->name,
				    (long)p->pid, p->last_exit);
			else
				log_warnx("%s (pid %ld) did not stop cleanly "
				    "(%s)", p->name, (long)p->pid,
				    p->last_exit);
			p->pid = 0;
			continue;
		}
		if (proc_retired(p)) {
			proc_retire_done(p, status);
			continue;
		}
		proc_schedule_restart(p, status);
	}
	/* The drain is over when the last worker is. */
	if (env->draining && proc_workers_alive() == 0) {
		log_info("flm-proxyd drained");
		env->draining = 0;
		event_base_loopbreak(env->base);
	}
}

void
proc_reload_all(void)
{
	size_t	 i;

	for (i = 0; i < NPROCS; i++)
		if (procs[i].chan != NULL)
			chan_compose(procs[i].chan, IMSG_RELOAD, 0, -1, NULL, 0);
}

int
proc_alive_count(void)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < NPROCS; i++)
		if (procs[i].pid > 0)
			n++;
	return n;
}

/*
 * Ask every child to stop, proxyd first (drained or not, it writes no
 * more audit records once gone) and then keyd; SIGKILL whoever is still
 * there after grace.
 */
int
proc_shutdown_all(void)
{
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	size_t		 i;
	int		 waited;

	for (i = 0; i < NPROCS; i++) {
		evtimer_del(procs[i].ev_restart);
		evtimer_del(procs[i].ev_complaint);
	}
	if (env->ev_drain != NULL) {
		event_free(env->ev_drain);
		env->ev_drain = NULL;
	}
	for (i = 1; i < NPROCS; i++)
		if (procs[i].pid > 0)
			kill(procs[i].pid, SIGTERM);
	for (waited = 0; waited < PROC_KILL_GRACE_MS; waited += 20) {
		proc_reap();
		if (proc_workers_alive() == 0)
			break;
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < NPROCS; i++)
		if (procs[i].pid > 0 && procs[i].id != PROC_PROXYD)
			kill(procs[i].pid, SIGTERM);
	for (waited = 0; waited < PROC_KILL_GRACE_MS; waited += 20) {
		proc_reap();
		if (proc_alive_count() == 0)
			break;
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < NPROCS; i++) {
		if (procs[i].pid > 0) {
			log_warnx("%s did not stop in time; killing it",
			    procs[i].label);
			kill(procs[i].pid, SIGKILL);
			waitpid(procs[i].pid, NULL, 0);
			procs[i].pid = 0;
		}
		if (procs[i].chan != NULL) {
			chan_free(procs[i].chan);
			procs[i].chan = NULL;
		}
		event_free(procs[i].ev_restart);
		procs[i].ev_restart = NULL;
		event_free(procs[i].ev_complaint);
		procs[i].ev_complaint = NULL;
		json_object_put(procs[i].db_state);
		procs[i].db_state = NULL;
	}
	return 0;
}

static const char *
proc_state(const struct flmd_proc *p)
{
	if (p->pid > 0 && proc_retired(p))
		return "draining";
	if (p->pid == 0)
		return p->crashloop ? "crash-loop" : "restarting";
	if (p->chan == NULL || !chan_ready(p->chan))
		return "starting";
	/* A run past the stable mark ends a crash loop. */
	if (p->crashloop && proc_uptime(&p->started) < PROC_STABLE_SECS)
		return "crash-loop";
	return "running";
}

static struct json_object *
proc_entry_json(const char *name, long pid, long uptime, unsigned restarts,
    const char *version, const char *state)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "pid", json_object_new_int64(pid));
	json_object_object_add(o, "uptime_s", json_object_new_int64(uptime));
	json_object_object_add(o, "restarts", json_object_new_int(restarts));
	json_object_object_add(o, "version", json_object_new_string(version));
	json_object_object_add(o, "state", json_object_new_string(state));
	return o;
}

struct json_object *
proc_status_json(void)
{
	struct json_object	*arr = json_object_new_array();
	struct json_object	*o;
	size_t			 i;

	json_object_array_add(arr, proc_entry_json("flmd", (long)getpid(),
	    proc_uptime(&env->started), 0, PACKAGE_VERSION, "running"));
	for (i = 0; i < NPROCS; i++) {
		const struct flmd_proc	*p = &procs[i];
		int			 up = p->pid > 0 && p->chan != NULL &&
					    chan_ready(p->chan);

		if (!proc_in_use(p))
			continue;
		o = proc_entry_json(p->name, (long)p->pid,
		    p->pid > 0 ? proc_uptime(&p->started) : 0, p->restarts,
		    up ? chan_peer_version(p->chan) : "", proc_state(p));
		if (p->worker >= 0) {
			json_object_object_add(o, "worker",
			    json_object_new_int(p->worker));
			json_object_object_add(o, "requests",
			    json_object_new_int64((int64_t)p->requests));
		}
		if (*p->last_exit)
			json_object_object_add(o, "last_exit",
			    json_object_new_string(p->last_exit));
		if (p->db_state != NULL)
			json_object_object_add(o, "database",
			    json_object_get(p->db_state));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* The workers' rows of proc_status_json, for flm proxy status. */
struct json_object *
proc_workers_status_json(void)
{
	struct json_object	*all = proc_status_json(), *arr, *o;
	size_t			 i;

	arr = json_object_new_array();
	for (i = 0; i < json_object_array_length(all); i++) {
		o = json_object_array_get_idx(all, i);
		if (json_object_object_get(o, "worker") != NULL)
			json_object_array_add(arr, json_object_get(o));
	}
	json_object_put(all);
	return arr;
}

struct chan *
proc_chan(enum flm_proc id)
{
	struct flmd_proc	*p = proc_byid(id);

	return p != NULL ? p->chan : NULL;
}

/* A control request for a child; its answer comes back with peerid. */
int
proc_forward(enum flm_proc id, uint16_t type, uint32_t peerid,
    struct json_object *o)
{
	struct chan	*ch = proc_chan(id);

	/* A child still starting answers once it is up: queue it. */
	if (ch == NULL)
		return -1;
	if (o == NULL)
		return chan_compose(ch, type, peerid, -1, NULL, 0);
	return chan_compose_json(ch, type, peerid, o);
}

/* The same for a request holding a secret: the member secret of o;
 * the queued copy is wiped once written. */
int
proc_forward_secret(enum flm_proc id, uint16_t type, uint32_t peerid,
    struct json_object *o, const char *secret)
{
	struct chan	*ch = proc_chan(id);

	if (ch == NULL)
		return -1;
	return chan_compose_secret(ch, type, peerid, o, secret);
}

/* The channel of worker i, NULL if none is up. */
struct chan *
proc_worker_chan(int i)
{
	struct flmd_proc	*p = proc_worker(i);

	return p != NULL ? p->chan : NULL;
}

/* One message to every worker with a channel. */
void
proc_workers_json(uint16_t type, struct json_object *o)
{
	size_t	 i;

	for (i = 1; i < NPROCS; i++)
		if (procs[i].chan != NULL)
			chan_compose_json(procs[i].chan, type, 0, o);
}

/* To keyd, the ids of the engines proxyd was sent: only their
 * credentials go to proxyd. */
static void
proc_send_engine_ids(struct json_object *arr)
{
	struct json_object	*ids = json_object_new_array();
	size_t			 i;

	for (i = 0; i < json_object_array_length(arr); i++)
		json_object_array_add(ids, json_object_get(json_object_object_get(
		    json_object_array_get_idx(arr, i), "id")));
	if (procs[0].chan != NULL)
		chan_compose_json(procs[0].chan, IMSG_ENGINE_IDS, 0, ids);
	json_object_put(ids);
}

/* egress.mode's SOCKS5 server ({}: direct), before the engines. */
static struct json_object *
proc_egress(void)
{
	struct json_object	*o = config_egress(NULL);

	return o != NULL ? o : json_object_new_object();
}

void
proc_send_engines(void)
{
	struct json_object	*arr = config_engines(), *eg = proc_egress();

	proc_workers_json(IMSG_EGRESS, eg);
	json_object_put(eg);
	proc_workers_json(IMSG_ENGINES, arr);
	proc_send_engine_ids(arr);
	engines_sent(arr);	/* takes it: the owners are checked against it */
}

/* The shared rate-limit region, before any listener: no request is
 * counted in a worker's private region once the suite has one. */
void
proc_send_shm(struct chan *ch)
{
	size_t		 size;
	uint32_t	 sz;
	int		 fd;

	if ((fd = shm_ratelimit_fd(&size)) == -1)
		return;
	sz = (uint32_t)size;
	chan_compose(ch, IMSG_PROXY_SHM, 0, fd, &sz, sizeof(sz));
}

void
proc_send_limits(void)
{
	struct json_object	*o = config_limits();

	proc_workers_json(IMSG_PROXY_LIMITS, o);
	json_object_put(o);
}
