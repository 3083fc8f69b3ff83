/*
 * The control socket flm(1) talks to.  Peers are checked with
 * SO_PEERCRED, connections are capped in all and per uid, an idle
 * client is closed, and a client that sends anything malformed loses
 * its connection, never the daemon.
 */
#include "config.h"

#include <sys/fsuid.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "flmd.h"
#include "legacy.h"
#include "log.h"
#include "settings.h"
#include "statesum.h"

#define CONTROL_MAX_CLIENTS	32
#define CONTROL_MAX_PER_UID	16	/* one admin cannot take every slot */
#define CONTROL_IDLE_SECS	10	/* silent or mid-frame: closed */
#define CONTROL_BACKLOG		16

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	uint32_t		 id;
	struct chan		*chan;
	uid_t			 uid;
	pid_t			 pid;
	enum flm_proc		 waiting;	/* a child owes us an answer */
	uint32_t		 reqid;		/* the client's request id */
	uint16_t		 reqtype;	/* what was asked */
	char			 engine[40];	/* models list --engine */
	struct json_object	*pending;	/* a proxy start awaiting its
						 * egress pre-flight */
	struct event		*ev_idle;
};

static TAILQ_HEAD(, ctl_conn)	 ctl_conns = TAILQ_HEAD_INITIALIZER(ctl_conns);
static int			 ctl_nconns;
static uint32_t			 ctl_nextid = 1;
static int			 ctl_fd = -1;
static struct event		*ctl_ev_accept;
static struct event		*ctl_ev_pause;

static void	control_accept(evutil_socket_t, short, void *);
static void	control_dispatch(struct chan *, struct chan_msg *, void *);
static void	control_closed(struct chan *, const char *, void *);
static void	control_error(struct ctl_conn *, uint32_t, int, const char *);
static void	control_drop(struct ctl_conn *);

/* Before daemonising, so that "already running" reaches the terminal. */
void
control_bind(void)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	struct group		*gr;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, env->paths.sock, sizeof(env->paths.sock));

	/* A socket that answers belongs to a running flmd: do not steal it. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		fatalx("flmd is already running (control socket %s answers)",
		    env->paths.sock);
	close(fd);
	if (unlink(env->paths.sock) == -1 && errno != ENOENT)
		fatal("unlink %s", env->paths.sock);

	if ((ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		fatal("socket");
	/* Made with the admin group (CAP_SETGID, which system mode has):
	 * no chown, which flmd.service's flmd may not do. */
	gr = env->paths.user_mode ? NULL : getgrnam(FLM_ADMIN_GROUP);
	if (gr != NULL)
		(void)setfsgid(gr->gr_gid);
	old = umask(S_IXUSR | S_IXGRP | S_IRWXO);
	if (bind(ctl_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", env->paths.sock);
	umask(old);
	if (gr != NULL)
		(void)setfsgid(getegid());
	if (chmod(env->paths.sock, 0660) == -1)
		fatal("chmod %s", env->paths.sock);
	if (gr != NULL && (stat(env->paths.sock, &st) == -1 ||
	    st.st_gid != gr->gr_gid))
		fatalx("%s: cannot give it group %s", env->paths.sock,
		    FLM_ADMIN_GROUP);
	if (listen(ctl_fd, CONTROL_BACKLOG) == -1)
		fatal("listen %s", env->paths.sock);
}

void
control_init(void)
{
	ctl_ev_accept = event_new(env->base, ctl_fd, EV_READ | EV_PERSIST,
	    control_accept, NULL);
	ctl_ev_pause = evtimer_new(env->base, control_accept, NULL);
	if (ctl_ev_accept == NULL || ctl_ev_pause == NULL ||
	    event_add(ctl_ev_accept, NULL) == -1)
		fatalx("control: event setup failed");
}

void
control_cleanup(void)
{
	struct ctl_conn	*c;

	while ((c = TAILQ_FIRST(&ctl_conns)) != NULL)
		control_drop(c);
	if (ctl_ev_accept) {
		event_free(ctl_ev_accept);
		event_free(ctl_ev_pause);
		ctl_ev_accept = ctl_ev_pause = NULL;
	}
	if (ctl_fd != -1) {
		close(ctl_fd);
		ctl_fd = -1;
		unlink(env->paths.sock);
	}
}

/* root, flmd's own user, or a member of group flmadm. */
static int
control_peer_allowed(uid_t uid, gid_t gid)
{
	struct group	*gr;
	struct passwd	*pw;
	gid_t		 groups[64];
	int		 n = 64, i;

	if (uid == 0 || uid == geteuid())
		return 1;
	if ((gr = getgrnam(FLM_ADMIN_GROUP)) == NULL)
		return 0;
	if (gid == gr->gr_gid)
		return 1;
	if ((pw = getpwuid(uid)) == NULL ||
	    getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return 1;
	return 0;
}

/* A client has CONTROL_IDLE_SECS from now to send its next request. */
static void
control_idle_arm(struct ctl_conn *c)
{
	struct timeval	 tv = { CONTROL_IDLE_SECS, 0 };

	evtimer_add(c->ev_idle, &tv);
}

/*
 * Silent, or stopped mid-frame, for CONTROL_IDLE_SECS: the slot goes
 * back.  A client waiting for a child's answer is not idle.
 */
static void
control_idle(evutil_socket_t fd, short ev, void *arg)
{
	struct ctl_conn	*c = arg;

	(void)fd;
	(void)ev;
	if (c->waiting != PROC_NONE) {
		control_idle_arm(c);
		return;
	}
	log_warnx("control: client pid %ld sent no request for %d s; closed",
	    (long)c->pid, CONTROL_IDLE_SECS);
	control_drop(c);
}

static int
control_uid_count(uid_t uid)
{
	struct ctl_conn	*c;
	int		 n = 0;

	TAILQ_FOREACH(c, &ctl_conns, entry)
		if (c->uid == uid)
			n++;
	return n;
}

static void
control_accept(evutil_socket_t fd, short ev, void *arg)
{
	struct ctl_conn	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	int		 cfd;

	(void)fd;
	(void)arg;
	if (ev & EV_TIMEOUT) {		/* the pause after EMFILE is over */
		event_add(ctl_ev_accept, NULL);
		return;
	}
	if ((cfd = accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC |
	    SOCK_NONBLOCK)) == -1) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: stop accepting for a second. */
			struct timeval	 tv = { 1, 0 };

			log_warn("control: accept");
			event_del(ctl_ev_accept);
			evtimer_add(ctl_ev_pause, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(cfd);
		return;
	}
	if (ctl_nconns >= CONTROL_MAX_CLIENTS) {
		log_warnx("control: too many clients (%d), refusing pid %ld",
		    ctl_nconns, (long)cred.pid);
		close(cfd);
		return;
	}
	if (control_uid_count(cred.uid) >= CONTROL_MAX_PER_UID) {
		log_warnx("control: uid %ld has %d connections already, "
		    "refusing pid %ld", (long)cred.uid, CONTROL_MAX_PER_UID,
		    (long)cred.pid);
		close(cfd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("control: calloc");
		close(cfd);
		return;
	}
	c->id = ctl_nextid++;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->ev_idle = evtimer_new(env->base, control_idle, c);
	/* A backup to restore or check comes as the admin's descriptor. */
	c->chan = chan_new(env->base, cfd, PROC_FLMD, CHAN_FDPASS,
	    control_dispatch,
	    control_closed, c);
	if (c->chan == NULL || c->ev_idle == NULL) {
		if (c->chan != NULL)
			chan_free(c->chan);
		else
			close(cfd);
		if (c->ev_idle != NULL)
			event_free(c->ev_idle);
		free(c);
		return;
	}
	control_idle_arm(c);
	chan_expect_peer(c->chan, PROC_CLI);
	TAILQ_INSERT_TAIL(&ctl_conns, c, entry);
	ctl_nconns++;
	if (!control_peer_allowed(cred.uid, cred.gid)) {
		log_warnx("control: refused uid %ld (pid %ld): not root, "
		    "the daemon's user, or in group %s", (long)cred.uid,
		    (long)cred.pid, FLM_ADMIN_GROUP);
		control_error(c, 0, EPERM, "permission denied: "
		    "run as root or as a member of group " FLM_ADMIN_GROUP);
		chan_fail(c->chan, "permission denied");
	}
}

static void
control_drop(struct ctl_conn *c)
{
	TAILQ_REMOVE(&ctl_conns, c, entry);
	ctl_nconns--;
	event_free(c->ev_idle);
	chan_free(c->chan);
	json_object_put(c->pending);
	free(c);
}

static void
control_closed(struct chan *ch, const char *reason, void *arg)
{
	struct ctl_conn	*c = arg;

	(void)ch;
	if (reason != NULL && strcmp(reason, "permission denied") != 0)
		log_warnx("control: client pid %ld: %s", (long)c->pid, reason);
	control_drop(c);
}

static struct json_object *
control_db_json(struct db *db)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_int(db->version));
	json_object_object_add(o, "safe_mode",
	    json_object_new_boolean(db->safe_mode));
	if (db->safe_mode)
		json_object_object_add(o, "reason",
		    json_object_new_string(db->safe_reason));
	return o;
}

static void
control_status(struct ctl_conn *c, uint32_t peerid)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "mode", json_object_new_string(
	    env->paths.user_mode ? "user" : "system"));
	json_object_object_add(o, "state_dir",
	    json_object_new_string(env->paths.statedir));
	json_object_object_add(o, "socket",
	    json_object_new_string(env->paths.sock));
	json_object_object_add(o, "protocol",
	    json_object_new_int(FLM_PROTO_VERSION));
	json_object_object_add(o, "processes", proc_status_json());
	json_object_object_add(o, "config_db", control_db_json(&config_db));
	chan_compose_json(c->chan, IMSG_CTL_RESULT, peerid, o);
	json_object_put(o);
}

static void
control_error(struct ctl_conn *c, uint32_t peerid, int code, const char *msg)
{
	chan_compose_error(c->chan, IMSG_CTL_ERROR, peerid, code, msg);
}

static void
control_reply(struct ctl_conn *c, uint32_t peerid, struct json_object *o)
{
	chan_compose_json(c->chan, IMSG_CTL_RESULT, peerid, o);
	json_object_put(o);
}

static struct ctl_conn *
control_byid(uint32_t id)
{
	struct ctl_conn	*c;

	TAILQ_FOREACH(c, &ctl_conns, entry)
		if (c->id == id)
			return c;
	return NULL;
}

/* A child's answer to a forwarded request goes to the asking client. */
void
control_relay(uint32_t id, uint16_t type, struct json_object *o)
{
	struct ctl_conn	*c;

	if ((c = control_byid(id)) == NULL || c->waiting == PROC_NONE)
		return;		/* the client left meanwhile */
	c->waiting = PROC_NONE;
	control_idle_arm(c);
	/* keyd's answers: a new key's text among them. */
	chan_compose_secret(c->chan, type, c->reqid, o, "key");
}

/* A step of a long request (an ACME order): the client keeps waiting. */
void
control_progress(uint32_t id, struct json_object *o)
{
	struct ctl_conn	*c;

	if ((c = control_byid(id)) == NULL || c->waiting == PROC_NONE)
		return;
	chan_compose_json(c->chan, IMSG_CTL_PROGRESS, c->reqid, o);
}

/* flmd's own error for a waiting client (flmd_proxy.c's continuation). */
void
control_relay_error(uint32_t id, int code, const char *msg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(code));
	control_relay(id, IMSG_CTL_ERROR, o);
	json_object_put(o);
}

void
control_proc_gone(enum flm_proc proc)
{
	struct ctl_conn	*c;

	TAILQ_FOREACH(c, &ctl_conns, entry) {
		if (c->waiting != proc)
			continue;
		json_object_put(c->pending);
		c->pending = NULL;
		c->waiting = PROC_NONE;
		control_idle_arm(c);
		control_error(c, c->reqid, EAGAIN, "the request "
		    "was lost: the process that owed the answer stopped; "
		    "try again");
	}
}

static void
control_forward(struct ctl_conn *c, enum flm_proc proc, uint16_t type,
    uint32_t peerid, struct json_object *req)
{
	if (proc_forward(proc, type, c->id, req) == -1) {
		control_error(c, peerid, EAGAIN, proc == PROC_KEYD ?
		    "flm-keyd is not running (see flm status); try again" :
		    "flm-proxyd is not running (see flm status); try again");
		return;
	}
	c->waiting = proc;
	c->reqid = peerid;
	c->reqtype = type;
}

/* Without the per-model lists: flm engines detect. */
static struct json_object *
control_detect_view(struct json_object *arr)
{
	struct json_object	*out = json_object_new_array(), *e, *c;
	size_t			 i;

	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		c = json_object_new_object();
		json_object_object_foreach(e, k, v)
			if (strcmp(k, "models") != 0)
				json_object_object_add(c, k,
				    json_object_get(v));
		json_object_array_add(out, c);
	}
	return out;
}

/*
 * Each model's pool: the usable engines with a model of that name, by
 * which a bare name is balanced (flm://pool/NAME), when more than one.
 */
static void
control_models_pools(struct json_object *arr, struct json_object *out)
{
	struct json_object	*e, *ms, *m, *pool, *v;
	const char		*name, *state;
	size_t			 i, j, k;

	for (k = 0; k < json_object_array_length(out); k++) {
		m = json_object_array_get_idx(out, k);
		name = json_object_get_string(json_object_object_get(m,
		    "model"));
		if (name == NULL)
			continue;
		pool = json_object_new_array();
		for (i = 0; i < json_object_array_length(arr); i++) {
			e = json_object_array_get_idx(arr, i);
			state = json_object_get_string(json_object_object_get(e,
			    "state"));
			if (state == NULL || strncmp(state, "Running", 7) != 0 ||
			    !json_object_object_get_ex(e, "models", &ms))
				continue;
			for (j = 0; j < json_object_array_length(ms); j++) {
				v = json_object_object_get(
				    json_object_array_get_idx(ms, j), "model");
				if (v != NULL && strcmp(json_object_get_string(v),
				    name) == 0)
					json_object_array_add(pool,
					    json_object_get(json_object_object_get(
					    e, "id")));
			}
		}
		if (json_object_array_length(pool) > 1)
			json_object_object_add(m, "pool", pool);
		else
			json_object_put(pool);
	}
}

/* Every model of usable engines (or of one): flm models list. */
static struct json_object *
control_models_view(struct json_object *arr, const char *only)
{
	struct json_object	*out = json_object_new_array(), *e, *ms, *m;
	const char		*id, *state;
	size_t			 i, j;

	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		id = json_object_get_string(json_object_object_get(e, "id"));
		state = json_object_get_string(json_object_object_get(e,
		    "state"));
		if (*only != '\0' && strcmp(only, id) != 0)
			continue;
		if (!json_object_object_get_ex(e, "models", &ms))
			continue;
		for (j = 0; j < json_object_array_length(ms); j++) {
			m = json_object_get(json_object_array_get_idx(ms, j));
			json_object_object_add(m, "engine_state",
			    json_object_new_string(state));
			json_object_array_add(out, m);
		}
	}
	control_models_pools(arr, out);
	return out;
}

static int
control_engine_known(struct json_object *arr, const char *id)
{
	size_t	 i;

	for (i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(json_object_get_string(json_object_object_get(
		    json_object_array_get_idx(arr, i), "id")), id) == 0)
			return 1;
	return 0;
}

void
control_engines_reply(uint32_t id, struct json_object *arr)
{
	struct ctl_conn		*c;
	struct json_object	*view;

	if ((c = control_byid(id)) == NULL || c->waiting != PROC_PROXYD)
		return;
	c->waiting = PROC_NONE;
	control_idle_arm(c);
	if (c->reqtype == IMSG_CTL_MODELS_LIST && c->engine[0] != '\0' &&
	    !control_engine_known(arr, c->engine)) {
		char	 msg[128];

		snprintf(msg, sizeof(msg), "no engine '%s': see flm engines "
		    "detect", c->engine);
		control_error(c, c->reqid, ENOENT, msg);
		return;
	}
	view = c->reqtype == IMSG_ENGINES_DETECT ? control_detect_view(arr) :
	    control_models_view(arr, c->engine);
	chan_compose_json(c->chan, IMSG_CTL_RESULT, c->reqid, view);
	json_object_put(view);
}

/* flm doctor's answer (flmd_doctor.c), keyd's checks merged in. */
void
control_doctor_done(uint32_t id, struct json_object *res)
{
	struct ctl_conn	*c;

	if ((c = control_byid(id)) == NULL || c->waiting != PROC_FLMD) {
		json_object_put(res);
		return;		/* the client left meanwhile */
	}
	c->waiting = PROC_NONE;
	control_idle_arm(c);
	control_reply(c, c->reqid, res);
}

/* flm doctor: flmd's checks now, keyd's when it answers. */
static void
control_doctor(struct ctl_conn *c, uint32_t peerid)
{
	/* Waiting on flmd itself: no child's end cancels it. */
	c->waiting = PROC_FLMD;
	c->reqid = peerid;
	c->reqtype = IMSG_CTL_DOCTOR;
	doctor_start(c->id);
}

/*
 * flm engines credential set|clear ID: keyd seals or forgets it.  Only
 * a configured engine gets one; one no longer configured may still be
 * cleared.  flmd carries the secret and keeps no copy (wiped by the
 * caller with the request).
 */
static void
control_credential(struct ctl_conn *c, uint16_t type, uint32_t peerid,
    struct json_object *req)
{
	struct json_object	*e, *s, *ids, *fw;
	char			 name[64];
	const char		*id;
	int			 rc, known;

	if (json_object_object_get_ex(req, "egress", &e) &&
	    json_object_get_boolean(e))
		snprintf(name, sizeof(name), "egress:socks5");
	else if (!json_object_object_get_ex(req, "engine", &e) ||
	    !json_object_is_type(e, json_type_string) ||
	    !setting_id_valid(json_object_get_string(e),
	    (size_t)json_object_get_string_len(e))) {
		control_error(c, peerid, EINVAL, "an engine id is needed "
		    "(1-32 of a-z 0-9 - _)");
		return;
	} else {
		id = json_object_get_string(e);
		ids = config_engine_ids();
		known = json_object_object_get_ex(ids, id, NULL);
		json_object_put(ids);
		if (type == IMSG_CTL_CREDENTIAL_SET && !known) {
			snprintf(name, sizeof(name), "no engine %s is "
			    "configured", id);
			control_error(c, peerid, ENOENT, name);
			return;
		}
		snprintf(name, sizeof(name), "engine:%s", id);
	}
	fw = json_object_new_object();
	json_object_object_add(fw, "name", json_object_new_string(name));
	if (type == IMSG_CTL_CREDENTIAL_CLEAR)
		rc = proc_forward(PROC_KEYD, IMSG_SECRET_CLEAR, c->id, fw);
	else if (!json_object_object_get_ex(req, "secret", &s) ||
	    !json_object_is_type(s, json_type_string)) {
		json_object_put(fw);
		control_error(c, peerid, EINVAL, "a secret is needed");
		return;
	} else {
		json_object_object_add(fw, "secret", json_object_get(s));
		rc = proc_forward_secret(PROC_KEYD, IMSG_SECRET_SET, c->id, fw,
		    "secret");
	}
	json_object_put(fw);
	if (rc == -1) {
		control_error(c, peerid, EAGAIN, "flm-keyd is not running (see "
		    "flm status); try again");
		return;
	}
	c->waiting = PROC_KEYD;
	c->reqid = peerid;
	c->reqtype = type;
}

/* flm migrate legacy --apply: flmd_migrate.c answers once keyd has. */
static void
control_migrate(struct ctl_conn *c, uint32_t peerid, struct json_object *req)
{
	char	 err[600];

	if (migrate_start(c->id, req, err, sizeof(err)) == -1) {
		control_error(c, peerid, EINVAL, err);
		return;
	}
	c->waiting = PROC_KEYD;
	c->reqid = peerid;
	c->reqtype = IMSG_CTL_MIGRATE_APPLY;
}

/* The secret a request carried, gone before the request is freed. */
static void
control_wipe_secret(struct json_object *req)
{
	struct json_object	*s;

	if (json_object_object_get_ex(req, "secret", &s) &&
	    json_object_is_type(s, json_type_string))
		explicit_bzero((char *)json_object_get_string(s),
		    json_object_get_string_len(s));
}

static void
control_wipe_passphrase(struct json_object *req)
{
	struct json_object	*s;

	if (json_object_object_get_ex(req, "passphrase", &s) &&
	    json_object_is_type(s, json_type_string))
		explicit_bzero((char *)json_object_get_string(s),
		    json_object_get_string_len(s));
}

/*
 * flm backup create|list|restore, flm check: keyd decides, flmd adds
 * config.db's copy (create, restore) or the remembered proxies (check
 * of the live state).  fd: the admin's backup file, or -1.
 */
static void
control_backup(struct ctl_conn *c, uint16_t t, uint32_t id,
    struct json_object *req, int fd)
{
	struct chan		*ch = proc_chan(PROC_KEYD);
	struct json_object	*v;
	struct stat		 st;
	char			 err[256];
	uint32_t		 peer = c->id;
	uint16_t		 kt = IMSG_BACKUP_STATE;
	int			 r;

	if (fd != -1 && (t == IMSG_CTL_BACKUP_CREATE ||
	    t == IMSG_CTL_BACKUP_LIST || fstat(fd, &st) == -1 ||
	    !S_ISREG(st.st_mode))) {
		close(fd);
		control_error(c, id, EINVAL, "a backup is a regular file");
		return;
	}
	if (ch == NULL) {
		if (fd != -1)
			close(fd);
		control_error(c, id, EAGAIN, "flm-keyd is not running (see "
		    "flm status); try again");
		return;
	}
	/* Only flmd's own timer asks for a daily one; only flmd knows
	 * the proxies. */
	if (req != NULL) {
		json_object_object_del(req, "max_age");
		json_object_object_del(req, "proxies");
	}
	if (t == IMSG_CTL_BACKUP_CREATE || t == IMSG_CTL_BACKUP_RESTORE) {
		kt = t == IMSG_CTL_BACKUP_CREATE ? IMSG_BACKUP_CREATE :
		    IMSG_BACKUP_RESTORE;
		if (t == IMSG_CTL_BACKUP_RESTORE)
			peer |= BACKUP_REQ;
		if (backup_send_config(err, sizeof(err)) == -1) {
			if (fd != -1)
				close(fd);
			control_error(c, id, EIO, err);
			return;
		}
	} else if (t == IMSG_CTL_BACKUP_LIST)
		kt = IMSG_BACKUP_LIST;
	else if (fd == -1 && !json_object_object_get_ex(req, "name", &v)) {
		if (config_db.h == NULL ||
		    (v = statesum_proxies(config_db.h)) == NULL) {
			control_error(c, id, EIO, "cannot read the proxies "
			    "from config.db");
			return;
		}
		json_object_object_add(req, "proxies", v);
	}
	if (kt == IMSG_BACKUP_LIST)
		r = chan_compose(ch, kt, peer, -1, NULL, 0);
	else
		r = chan_compose_json_fd(ch, kt, peer, fd, req, "passphrase");
	control_wipe_passphrase(req);
	if (r == -1) {
		control_error(c, id, EAGAIN, "flm-keyd's channel is full; try "
		    "again");
		return;
	}
	c->waiting = PROC_KEYD;
	c->reqid = id;
	c->reqtype = t;
}

/* keyd's answer to a restore (fd: config.db's staged copy), or to the
 * daily backup (id 0). */
void
control_backup_reply(uint32_t id, int ok, struct json_object *o, int fd)
{
	struct ctl_conn	*c;
	char		 err[512];

	if (id == 0) {
		backup_daily_reply(ok, o);
		if (fd != -1)
			close(fd);
		return;
	}
	/* Only a restore an admin asked for, and waits for, commits. */
	if (ok && ((c = control_byid(id)) == NULL || c->waiting != PROC_KEYD ||
	    c->reqtype != IMSG_CTL_BACKUP_RESTORE)) {
		log_warnx("flm-keyd answered a restore nobody waits for; "
		    "ignored");
		backup_abort();
		if (fd != -1)
			close(fd);
		return;
	}
	if (ok && backup_staged(fd, err, sizeof(err)) == -1) {
		backup_abort();
		if (fd != -1)
			close(fd);
		control_relay_error(id, EIO, err);
		return;
	}
	if (fd != -1)
		close(fd);
	control_relay(id, ok ? IMSG_CTL_RESULT : IMSG_CTL_ERROR, o);
}

/* flm engines trust ID: the listener's new owner is accepted. */
static void
control_trust(struct ctl_conn *c, uint32_t peerid, struct json_object *req)
{
	struct json_object	*e, *res = NULL;
	char			 err[256];
	int			 code;

	if (!json_object_object_get_ex(req, "engine", &e) ||
	    !json_object_is_type(e, json_type_string)) {
		control_error(c, peerid, EINVAL, "an engine id is needed");
		return;
	}
	if ((code = engines_trust(json_object_get_string(e), &res, err,
	    sizeof(err))) != 0) {
		control_error(c, peerid, code, err);
		return;
	}
	control_reply(c, peerid, res);
}

static void
control_config(struct ctl_conn *c, uint16_t type, uint32_t peerid,
    struct json_object *req)
{
	struct json_object	*k, *v, *all, *res;
	char			 err[1024];

	if (type == IMSG_CTL_CONFIG_LIST) {
		control_reply(c, peerid, config_list(NULL));
		return;
	}
	if (!json_object_object_get_ex(req, "key", &k) ||
	    !json_object_is_type(k, json_type_string)) {
		control_error(c, peerid, EINVAL, "a key is needed");
		return;
	}
	if (type == IMSG_CTL_CONFIG_GET) {
		all = config_list(NULL);
		if (!json_object_object_get_ex(all, json_object_get_string(k),
		    &v)) {
			json_object_put(all);
			control_error(c, peerid, ENOENT,
			    "not set");
			return;
		}
		res = json_object_new_object();
		json_object_object_add(res, json_object_get_string(k),
		    json_object_get(v));
		json_object_put(all);
		control_reply(c, peerid, res);
		return;
	}
	if (!json_object_object_get_ex(req, "value", &v) || (v != NULL &&
	    !json_object_is_type(v, json_type_string))) {
		control_error(c, peerid, EINVAL, "a value is needed");
		return;
	}
	/* A null value: flm config unset. */
	if ((v != NULL ? config_set(json_object_get_string(k),
	    json_object_get_string(v), err, sizeof(err)) :
	    config_unset(json_object_get_string(k), err, sizeof(err))) == -1) {
		control_error(c, peerid, v != NULL ? EINVAL : ENOENT, err);
		return;
	}
	if (strncmp(json_object_get_string(k), "engines.", 8) == 0 ||
	    strncmp(json_object_get_string(k), "egress.", 7) == 0)
		proc_send_engines();
	if (strcmp(json_object_get_string(k), "proxy.workers") == 0)
		proc_workers_apply();
	else if (strncmp(json_object_get_string(k), "proxy.", 6) == 0 ||
	    strncmp(json_object_get_string(k), "pools.", 6) == 0)
		proc_send_limits();
	res = json_object_new_object();
	json_object_object_add(res, json_object_get_string(k),
	    json_object_get(v));
	control_reply(c, peerid, res);
}

/*
 * flm proxy start with egress.mode tor or socks5: is its server up?
 * proxyd tries (flmd makes no TCP connection); the start goes on when
 * it answers.  1 if the start waits or was refused here.
 */
static int
control_egress_preflight(struct ctl_conn *c, uint32_t peerid,
    struct json_object *req)
{
	struct json_object	*eg = config_egress(NULL), *v;
	char			 msg[600];

	if (eg == NULL)
		return 0;
	if (json_object_object_get_ex(eg, "error", &v)) {
		snprintf(msg, sizeof(msg), "PROXY_INVALID_CONFIG: %s",
		    json_object_get_string(v));
		json_object_put(eg);
		control_error(c, peerid, EINVAL, msg);
		return 1;
	}
	json_object_put(eg);
	if (proc_forward(PROC_PROXYD, IMSG_EGRESS_CHECK, c->id, NULL) == -1) {
		control_error(c, peerid, EAGAIN, "flm-proxyd is not running "
		    "(see flm status); try again");
		return 1;
	}
	c->pending = json_object_get(req);
	c->waiting = PROC_PROXYD;
	c->reqid = peerid;
	c->reqtype = IMSG_CTL_PROXY_START;
	return 1;
}

static void	control_proxy_run(struct ctl_conn *, uint16_t, uint32_t,
		    struct json_object *);

/* The pre-flight's answer: the start goes on, or is refused (unless
 * egress.fail_open, when requests would go direct instead). */
void
control_egress_checked(uint32_t id, struct json_object *o)
{
	struct ctl_conn		*c;
	struct json_object	*req, *v;
	char			 msg[700], buf[8];

	if ((c = control_byid(id)) == NULL || c->pending == NULL ||
	    c->waiting != PROC_PROXYD)
		return;
	c->waiting = PROC_NONE;
	control_idle_arm(c);
	req = c->pending;
	if (!json_object_get_boolean(json_object_object_get(o, "ok")) &&
	    strcmp(config_value("egress.fail_open", "no", buf, sizeof(buf)),
	    "yes") != 0) {
		v = json_object_object_get(o, "error");
		snprintf(msg, sizeof(msg), "PROXY_INVALID_CONFIG: %s; nothing "
		    "would reach the engines (start the SOCKS server, or set "
		    "egress.mode direct)", v != NULL ?
		    json_object_get_string(v) : "the egress is down");
		control_error(c, c->reqid, EHOSTUNREACH, msg);
	} else
		control_proxy_run(c, IMSG_CTL_PROXY_START, c->reqid, req);
	c->pending = NULL;
	json_object_put(req);
}

static void
control_proxy(struct ctl_conn *c, uint16_t type, uint32_t peerid,
    struct json_object *req)
{
	if (type == IMSG_CTL_PROXY_STATUS) {
		control_reply(c, peerid, proxy_status());
		return;
	}
	if (type == IMSG_CTL_PROXY_START &&
	    control_egress_preflight(c, peerid, req))
		return;
	control_proxy_run(c, type, peerid, req);
}

static void
control_proxy_run(struct ctl_conn *c, uint16_t type, uint32_t peerid,
    struct json_object *req)
{
	struct json_object	*res = NULL;
	char			 err[512];
	int			 r;

	r = type == IMSG_CTL_PROXY_START ?
	    proxy_start(req, c->id, &res, err, sizeof(err)) :
	    proxy_stop(req, &res, err, sizeof(err));
	if (r == -1)
		control_error(c, peerid, EINVAL, err);
	else if (r == 0)
		control_reply(c, peerid, res);
	else {
		/* A TLS handle: answered when keyd has its certificate. */
		c->waiting = PROC_KEYD;
		c->reqid = peerid;
		c->reqtype = type;
	}
}

/*
 * The local CA and client certificates are keyd's; flmd adds what they
 * are to name (the host's names and addresses) and carries the answer.
 * CLIENT_ISSUE's answer holds the client's private key: control_relay
 * sends it with the secret-wiping path (member "key").
 */
static void
control_tls(struct ctl_conn *c, uint16_t type, uint32_t peerid,
    struct json_object *req)
{
	struct json_object	*o = NULL, *v;
	uint16_t		 ktype;

	switch (type) {
	case IMSG_CTL_CA_INFO:
		ktype = IMSG_CA_INFO;
		o = json_object_new_object();
		tls_add_subject(o, NULL);
		break;
	case IMSG_CTL_CLIENT_ISSUE:
		ktype = IMSG_CLIENT_ISSUE;
		o = json_object_new_object();
		if (json_object_object_get_ex(req, "label", &v))
			json_object_object_add(o, "label", json_object_get(v));
		if (json_object_object_get_ex(req, "days", &v))
			json_object_object_add(o, "days", json_object_get(v));
		tls_add_subject(o, NULL);
		break;
	case IMSG_CTL_CLIENT_LIST:
		ktype = IMSG_CLIENT_LIST;
		break;
	default:
		ktype = IMSG_CLIENT_REVOKE;
		o = json_object_get(req);
		break;
	}
	control_forward(c, PROC_KEYD, ktype, peerid, o);
	json_object_put(o);
}

/*
 * flm firewall: the facts its rules are made of, flmd's alone: where
 * the proxy listens and where the engines are (the four built-in ones
 * too).  The allowlist is keyd's (IMSG_CTL_POLICY_GET).  flm, running
 * as root, checks each address and port again before any becomes a rule.
 */
/* Of each object of all (an array, put here), its members id, k and port. */
static struct json_object *
control_pick(struct json_object *all, const char *k)
{
	const char		*keys[3] = { "id", k, "port" };
	struct json_object	*arr, *o, *v;
	size_t			 i, j;

	arr = json_object_new_array();
	for (i = 0; i < json_object_array_length(all); i++) {
		v = json_object_array_get_idx(all, i);
		o = json_object_new_object();
		for (j = 0; j < 3; j++)
			json_object_object_add(o, keys[j], json_object_get(
			    json_object_object_get(v, keys[j])));
		json_object_array_add(arr, o);
	}
	json_object_put(all);
	return arr;
}

static struct json_object *
control_firewall_plan(void)
{
	struct json_object	*res;

	res = json_object_new_object();
	json_object_object_add(res, "proxies",
	    control_pick(proxy_status(), "bind"));
	json_object_object_add(res, "engines",
	    control_pick(config_engines(), "addr"));
	return res;
}

/* Requests without a payload, and those with one JSON object. */
static int
control_args(struct chan *ch, struct chan_msg *m, int json,
    struct json_object **req)
{
	*req = NULL;
	if (json ? msg_get_object(m, req) == 0 : msg_end(m) == 0)
		return 0;
	chan_fail(ch, "malformed request type %u", m->hdr.type);
	return -1;
}

static void
control_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct ctl_conn		*c = arg;
	struct json_object	*req;
	uint16_t		 t = m->hdr.type;
	uint32_t		 id = m->hdr.peerid;

	if (c->waiting != PROC_NONE) {
		chan_fail(ch, "request type %u while another is pending", t);
		return;
	}
	control_idle_arm(c);
	switch (t) {
	case IMSG_CTL_STATUS:
	case IMSG_CTL_PROXY_STATUS:
	case IMSG_CTL_CONFIG_LIST:
	case IMSG_CTL_KEY_LIST:
	case IMSG_CTL_ENGINES_DETECT:
	case IMSG_CTL_POLICY_GET:
	case IMSG_CTL_AUDIT_VERIFY:
	case IMSG_CTL_CA_INFO:
	case IMSG_CTL_CLIENT_LIST:
	case IMSG_CTL_FIREWALL_PLAN:
	case IMSG_CTL_DOCTOR:
	case IMSG_CTL_SECRETS_ROTATE:
	case IMSG_CTL_SECRETS_LIST:
	case IMSG_CTL_BACKUP_LIST:
	case IMSG_CTL_MASTER_ROTATE:
		if (control_args(ch, m, 0, &req) == -1)
			return;
		break;
	case IMSG_CTL_BACKUP_CREATE:
	case IMSG_CTL_BACKUP_RESTORE:
	case IMSG_CTL_CHECK:
		/* A passphrase may be in the raw bytes. */
		if (control_args(ch, m, 1, &req) == -1) {
			msg_wipe(m);
			return;
		}
		msg_wipe(m);
		break;
	case IMSG_CTL_POLICY_SET:
	case IMSG_CTL_AUDIT_ARCHIVE:
	case IMSG_CTL_AUDIT_TAIL:
	case IMSG_CTL_USAGE:
	case IMSG_CTL_MODELS_LIST:
	case IMSG_CTL_KEY_REVOKE:
	case IMSG_CTL_KEY_ROTATE:
	case IMSG_CTL_KEY_SCOPE:
	case IMSG_CTL_KEY_CREATE:
	case IMSG_CTL_PROXY_START:
	case IMSG_CTL_PROXY_STOP:
	case IMSG_CTL_CONFIG_GET:
	case IMSG_CTL_CONFIG_SET:
	case IMSG_CTL_ENGINES_TRUST:
	case IMSG_CTL_CLIENT_ISSUE:
	case IMSG_CTL_CLIENT_REVOKE:
	case IMSG_CTL_CREDENTIAL_CLEAR:
		if (control_args(ch, m, 1, &req) == -1)
			return;
		break;
	case IMSG_CTL_CREDENTIAL_SET:
	case IMSG_CTL_MIGRATE_APPLY:
		/* The raw bytes held the secret: wiped however it went. */
		if (control_args(ch, m, 1, &req) == -1) {
			msg_wipe(m);
			return;
		}
		msg_wipe(m);
		break;
	default:
		chan_fail(ch, "unknown request type %u", t);
		return;
	}
	/* Draining: the listeners are closed for good. */
	if (env->shutting_down && t == IMSG_CTL_PROXY_START) {
		control_error(c, id, EAGAIN, "flmd is stopping: no proxy "
		    "starts now");
		json_object_put(req);
		return;
	}
	switch (t) {
	case IMSG_CTL_STATUS:
		control_status(c, id);
		break;
	case IMSG_CTL_KEY_CREATE:
		control_forward(c, PROC_KEYD, IMSG_KEY_CREATE, id, req);
		break;
	case IMSG_CTL_KEY_LIST:
		control_forward(c, PROC_KEYD, IMSG_KEY_LIST, id, NULL);
		break;
	case IMSG_CTL_KEY_REVOKE:
		control_forward(c, PROC_KEYD, IMSG_KEY_REVOKE, id, req);
		break;
	case IMSG_CTL_KEY_ROTATE:
		control_forward(c, PROC_KEYD, IMSG_KEY_ROTATE, id, req);
		break;
	case IMSG_CTL_KEY_SCOPE:
		control_forward(c, PROC_KEYD, IMSG_KEY_SCOPE, id, req);
		break;
	case IMSG_CTL_ENGINES_DETECT:
		control_forward(c, PROC_PROXYD, IMSG_ENGINES_DETECT, id, NULL);
		break;
	case IMSG_CTL_ENGINES_TRUST:
		control_trust(c, id, req);
		break;
	case IMSG_CTL_DOCTOR:
		control_doctor(c, id);
		break;
	/* keyd decides these; flmd only carries them. */
	case IMSG_CTL_POLICY_GET:
		control_forward(c, PROC_KEYD, IMSG_POLICY_GET, id, NULL);
		break;
	case IMSG_CTL_POLICY_SET:
		control_forward(c, PROC_KEYD, IMSG_POLICY_SET, id, req);
		break;
	case IMSG_CTL_AUDIT_VERIFY:
		control_forward(c, PROC_KEYD, IMSG_AUDIT_VERIFY, id, NULL);
		break;
	case IMSG_CTL_AUDIT_ARCHIVE:
		control_forward(c, PROC_KEYD, IMSG_AUDIT_ARCHIVE, id, req);
		break;
	case IMSG_CTL_AUDIT_TAIL:
		control_forward(c, PROC_KEYD, IMSG_AUDIT_TAIL, id, req);
		break;
	case IMSG_CTL_USAGE:
		control_forward(c, PROC_KEYD, IMSG_USAGE, id, req);
		break;
	case IMSG_CTL_MODELS_LIST: {
		struct json_object	*e;

		c->engine[0] = '\0';
		if (json_object_object_get_ex(req, "engine", &e) &&
		    json_object_is_type(e, json_type_string))
			snprintf(c->engine, sizeof(c->engine), "%s",
			    json_object_get_string(e));
		control_forward(c, PROC_PROXYD, IMSG_ENGINES_DETECT, id, NULL);
		c->reqtype = IMSG_CTL_MODELS_LIST;
		break;
	}
	case IMSG_CTL_PROXY_START:
	case IMSG_CTL_PROXY_STOP:
	case IMSG_CTL_PROXY_STATUS:
		control_proxy(c, t, id, req);
		break;
	case IMSG_CTL_CA_INFO:
	case IMSG_CTL_CLIENT_ISSUE:
	case IMSG_CTL_CLIENT_LIST:
	case IMSG_CTL_CLIENT_REVOKE:
		control_tls(c, t, id, req);
		break;
	case IMSG_CTL_FIREWALL_PLAN:
		control_reply(c, id, control_firewall_plan());
		break;
	case IMSG_CTL_CREDENTIAL_SET:
	case IMSG_CTL_CREDENTIAL_CLEAR:
		control_credential(c, t, id, req);
		control_wipe_secret(req);
		break;
	case IMSG_CTL_SECRETS_ROTATE:
		control_forward(c, PROC_KEYD, IMSG_SECRETS_ROTATE, id, NULL);
		break;
	case IMSG_CTL_SECRETS_LIST:
		control_forward(c, PROC_KEYD, IMSG_SECRETS_LIST, id, NULL);
		break;
	case IMSG_CTL_MASTER_ROTATE:
		control_forward(c, PROC_KEYD, IMSG_MASTER_ROTATE, id, NULL);
		break;
	case IMSG_CTL_BACKUP_CREATE:
	case IMSG_CTL_BACKUP_LIST:
	case IMSG_CTL_BACKUP_RESTORE:
	case IMSG_CTL_CHECK:
		control_backup(c, t, id, req, m->fd);
		m->fd = -1;
		control_wipe_passphrase(req);
		break;
	case IMSG_CTL_MIGRATE_APPLY:
		control_migrate(c, id, req);
		legacy_json_wipe(req);
		break;
	default:
		control_config(c, t, id, req);
		break;
	}
	json_object_put(req);
}
