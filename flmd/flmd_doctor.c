/*
 * flm doctor, flmd's part: the facts flmd sees (engines listening past
 * FLM, the state directory's modes and owners, config.db, the
 * children), then flm-keyd's (IMSG_DOCTOR), merged into one answer.  A
 * keyd that does not answer in DOCTOR_KEYD_SECS is reported as such;
 * the rest is still answered.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
#include "doctor.h"
#include "flmd.h"
#include "log.h"
#include "netlisten.h"

#define DOCTOR_KEYD_SECS	5
#define DOCTOR_LISTENERS	8	/* per engine port, listed at most */

struct doctor_req {
	TAILQ_ENTRY(doctor_req)	 entry;
	uint32_t		 id;		/* DOCTOR_REQ | n, to keyd */
	uint32_t		 ctl;		/* the control client */
	struct json_object	*checks;
	struct event		*timeout;
};

static TAILQ_HEAD(, doctor_req)	 doctor_reqs =
    TAILQ_HEAD_INITIALIZER(doctor_reqs);
static uint32_t			 doctor_next;

/* ---- engines reachable around FLM ------------------------------------- */

/* How to make an engine of this kind listen on loopback only. */
static const char *
doctor_engine_fix(const char *kind)
{
	if (strcmp(kind, "ollama") == 0)
		return "OLLAMA_HOST=127.0.0.1:11434; under systemd: systemctl "
		    "edit ollama, add [Service] Environment=OLLAMA_HOST="
		    "127.0.0.1, restart it; or flm firewall apply";
	if (strcmp(kind, "vllm") == 0)
		return "start vLLM with --host 127.0.0.1; or flm firewall "
		    "apply";
	if (strcmp(kind, "llamacpp") == 0)
		return "start llama-server with --host 127.0.0.1 (or "
		    "LLAMA_ARG_HOST=127.0.0.1); or flm firewall apply";
	if (strcmp(kind, "lmstudio") == 0)
		return "LM Studio: Developer, Settings: turn off \"Serve on "
		    "Local Network\"; or flm firewall apply";
	return "make the engine listen on 127.0.0.1 only; or flm firewall "
	    "apply";
}

/* The listeners on one port, both families: how many, -1 unreadable. */
static int
doctor_listeners(uint16_t port, struct netlisten *nl, size_t max)
{
	size_t	 used;
	int	 n4, n6;

	n4 = netlisten_scan(NETLISTEN_TCP4, AF_INET, port, nl, max);
	if (n4 < 0 && errno != ENOENT)
		return -1;
	if (n4 < 0)
		n4 = 0;
	used = (size_t)n4 < max ? (size_t)n4 : max;
	n6 = netlisten_scan(NETLISTEN_TCP6, AF_INET6, port, nl + used,
	    max - used);
	if (n6 < 0)
		n6 = 0;		/* no IPv6 here */
	return n4 + n6;
}

static void
doctor_engine(struct json_object *out, struct json_object *e)
{
	struct netlisten	 nl[DOCTOR_LISTENERS];
	const char		*id, *kind, *addr;
	char			 name[DOCTOR_NAME_MAX + 1], a[64], open[256];
	char			 what[48];
	int			 port, n, i, bad = 0;
	size_t			 off = 0;

	id = json_object_get_string(json_object_object_get(e, "id"));
	kind = json_object_get_string(json_object_object_get(e, "kind"));
	addr = json_object_get_string(json_object_object_get(e, "addr"));
	port = json_object_get_int(json_object_object_get(e, "port"));
	snprintf(name, sizeof(name), "%.40s", id);
	/* A custom engine's id says not what it is. */
	snprintf(what, sizeof(what), "%s%.30s%s", strcmp(id, kind) ? "a " : "",
	    strcmp(id, kind) ? kind : "", strcmp(id, kind) ? " engine, " : "");
	if ((n = doctor_listeners((uint16_t)port, nl, DOCTOR_LISTENERS)) < 0) {
		doctor_add(out, "engines", name, "skipped", NULL,
		    "cannot read %s: %s", NETLISTEN_TCP4, strerror(errno));
		return;
	}
	open[0] = '\0';
	for (i = 0; i < n && i < DOCTOR_LISTENERS; i++) {
		if (netlisten_loopback(&nl[i]))
			continue;
		netlisten_ntop(&nl[i], a, sizeof(a));
		if (off < sizeof(open))
			off += snprintf(open + off, sizeof(open) - off,
			    "%s%s%s%s:%d (uid %u)", bad ? ", " : "",
			    nl[i].family == AF_INET6 && strchr(a, ':') ?
			    "[" : "", a, nl[i].family == AF_INET6 &&
			    strchr(a, ':') ? "]" : "", port,
			    (unsigned int)nl[i].uid);
		bad++;
	}
	if (bad > 0)
		doctor_add(out, "engines", name, "fail",
		    doctor_engine_fix(kind), "%slistens on %s: reachable "
		    "around FLM", what, open);
	else if (n > 0)
		doctor_add(out, "engines", name, "ok", NULL, "%slistens on "
		    "loopback only, port %d", what, port);
	else if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0)
		doctor_add(out, "engines", name, "info", NULL, "%snothing "
		    "listens on port %d (see flm engines detect)", what, port);
	else
		doctor_add(out, "engines", name, "info", NULL, "%son %s:%d, "
		    "not on this host: its exposure is that host's", what,
		    addr, port);
}

static void
doctor_engines(struct json_object *out)
{
	struct json_object	*arr = config_engines();
	size_t			 i;

	for (i = 0; i < json_object_array_length(arr) &&
	    i < DOCTOR_MAX_CHECKS / 4; i++)
		doctor_engine(out, json_object_array_get_idx(arr, i));
	json_object_put(arr);
}

/* ---- the state directory ---------------------------------------------- */

struct doctor_path {
	const char	*name;
	const char	*path;
	mode_t		 mode;		/* what flmd makes */
	mode_t		 never;		/* bits that are a failure */
	const char	*user;		/* NULL: flmd's own uid or root */
	const char	*group;		/* NULL: any */
};

static void
doctor_path(struct json_object *out, const struct doctor_path *d)
{
	struct stat	 st;
	struct passwd	*pw;
	struct group	*gr;
	uid_t		 uid = geteuid();
	char		 fix[DOCTOR_FIX_MAX + 1];
	mode_t		 m;

	if (d->user != NULL && !env->paths.user_mode) {
		if ((pw = getpwnam(d->user)) == NULL) {
			doctor_add(out, "state directory", d->name, "fail",
			    "systemd-sysusers flm.conf", "user %s does not "
			    "exist", d->user);
			return;
		}
		uid = pw->pw_uid;
	}
	if (lstat(d->path, &st) == -1) {
		if (errno == EACCES)
			doctor_add(out, "state directory", d->name, "skipped",
			    NULL, "%s: flmd may not look (flm-keyd checks "
			    "its own directory)", d->path);
		else if (errno == ENOENT)
			doctor_add(out, "state directory", d->name, "info",
			    NULL, "%s: not made yet", d->path);
		else
			doctor_add(out, "state directory", d->name, "fail",
			    NULL, "%s: %s", d->path, strerror(errno));
		return;
	}
	m = st.st_mode & 07777;
	/* flmd's own may also be root's: tmpfiles.d makes some. */
	if (st.st_uid != uid && (d->user != NULL || st.st_uid != 0)) {
		snprintf(fix, sizeof(fix), "check who changed it, then chown "
		    "%u %s", (unsigned int)uid, d->path);
		doctor_add(out, "state directory", d->name, "fail", fix,
		    "%s is owned by uid %u, not %u", d->path,
		    (unsigned int)st.st_uid, (unsigned int)uid);
	} else if ((m & d->never) != 0) {
		snprintf(fix, sizeof(fix), "chmod %04o %s",
		    (unsigned int)d->mode, d->path);
		doctor_add(out, "state directory", d->name, "fail", fix,
		    "%s is mode %04o: open to %s", d->path, (unsigned int)m,
		    (m & d->never & 07) ? "every user" : "its group");
	} else if (d->group != NULL && !env->paths.user_mode &&
	    (gr = getgrnam(d->group)) != NULL && st.st_gid != gr->gr_gid) {
		snprintf(fix, sizeof(fix), "restart flmd (it sets group %s)",
		    d->group);
		doctor_add(out, "state directory", d->name, "warn", fix,
		    "%s: group %u, not %s: its members cannot use flm",
		    d->path, (unsigned int)st.st_gid, d->group);
	} else if (m != d->mode) {
		snprintf(fix, sizeof(fix), "chmod %04o %s",
		    (unsigned int)d->mode, d->path);
		doctor_add(out, "state directory", d->name, "warn", fix,
		    "%s is mode %04o, flmd makes it %04o", d->path,
		    (unsigned int)m, (unsigned int)d->mode);
	} else
		doctor_add(out, "state directory", d->name, "ok", NULL,
		    "%s mode %04o, uid %u", d->path, (unsigned int)m,
		    (unsigned int)st.st_uid);
}

/* docs/DB_SCHEMA.md and flmd(8) FILES: what each must be. */
static void
doctor_state(struct json_object *out)
{
	struct flm_paths	*p = &env->paths;
	int			 sys = !p->user_mode;
	char			 cdb[PATH_MAX + 16], sdb[PATH_MAX + 16];
	struct doctor_path	 d[] = {
		{ "state dir", p->statedir, sys ? 0711 : 0700, 022, NULL,
		  NULL },
		{ "keyd dir", p->keyddir, 0700, 077, FLM_KEYD_USER, NULL },
		{ "empty dir", p->emptydir, 0555, 022, NULL, NULL },
		{ "socket", p->sock, 0660, 007, NULL, FLM_ADMIN_GROUP },
		{ "config.db", cdb, 0600, 022, NULL, NULL },
		{ "security.db", sdb, 0600, 077, FLM_KEYD_USER, NULL },
	};
	size_t			 i;

	snprintf(cdb, sizeof(cdb), "%s/config.db", p->statedir);
	snprintf(sdb, sizeof(sdb), "%s/security.db", p->keyddir);
	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		doctor_path(out, &d[i]);
	if (sys && strcmp(p->rundir, p->statedir) != 0) {
		struct doctor_path	 r = { "run dir", p->rundir, 0755, 022,
					    NULL, NULL };

		doctor_path(out, &r);
	}
}

/* ---- config.db and the processes ---------------------------------------- */

static void
doctor_config_db(struct json_object *out)
{
	char	 why[256];
	int	 newest = config_migrations[config_migrations_count - 1].
		    version;

	if (config_db.safe_mode || config_db.h == NULL)
		doctor_add(out, "databases", "config.db", "fail",
		    "fix the cause, then restart flmd (see flmd(8))",
		    "safe mode (read-only): %.300s", config_db.h == NULL ?
		    "not open" : config_db.safe_reason);
	else if (db_quick_check(&config_db, why, sizeof(why)) != 0)
		doctor_add(out, "databases", "config.db", "fail",
		    "restore config.db from a backup, or move it away and "
		    "set the configuration again", "quick_check: %.300s", why);
	else if (config_db.version != newest)
		doctor_add(out, "databases", "config.db", "warn",
		    "restart flmd to apply the migrations",
		    "schema version %d, this flmd's is %d", config_db.version,
		    newest);
	else
		doctor_add(out, "databases", "config.db", "ok", NULL,
		    "intact, schema version %d, writable", config_db.version);
}

/* Seccomp mode 2 (a filter) in /proc/PID/status: 1 yes, 0 no, -1 ?. */
static int
doctor_seccomp(long pid)
{
	char	 path[64], line[256];
	FILE	*f;
	int	 rv = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Seccomp:", 8) == 0) {
			rv = atoi(line + 8) == 2;
			break;
		}
	fclose(f);
	return rv;
}

static void
doctor_procs(struct json_object *out)
{
	struct json_object	*arr = proc_status_json(), *p;
	const char		*name, *state;
	long			 pid;
	size_t			 i;
	int			 sc;

	for (i = 0; i < json_object_array_length(arr); i++) {
		p = json_object_array_get_idx(arr, i);
		name = json_object_get_string(json_object_object_get(p,
		    "name"));
		state = json_object_get_string(json_object_object_get(p,
		    "state"));
		pid = (long)json_object_get_int64(json_object_object_get(p,
		    "pid"));
		if (strcmp(state, "running") != 0) {
			doctor_add(out, "processes", name, "fail",
			    "see flm status and flmd's log", "%s", state);
			continue;
		}
		/* flmd's own filter comes after start-up: it is there. */
		if ((sc = doctor_seccomp(pid)) == 0)
			doctor_add(out, "processes", name, "fail",
			    "restart flmd; see its log", "running, pid %ld, "
			    "without its seccomp filter", pid);
		else
			doctor_add(out, "processes", name, "ok", NULL,
			    "running, pid %ld%s", pid, sc == 1 ?
			    ", sandboxed (seccomp)" : "");
	}
	json_object_put(arr);
}

/* ---- keyd's part, and the answer ------------------------------------- */

static void
doctor_finish(struct doctor_req *r, struct json_object *keyd_checks)
{
	struct json_object	*res = json_object_new_object(), *c;
	size_t			 i;
	int			 ok = 1;

	for (i = 0; keyd_checks != NULL &&
	    i < json_object_array_length(keyd_checks); i++)
		json_object_array_add(r->checks, json_object_get(
		    json_object_array_get_idx(keyd_checks, i)));
	for (i = 0; i < json_object_array_length(r->checks); i++) {
		c = json_object_array_get_idx(r->checks, i);
		if (doctor_needs_attention(json_object_get_string(
		    json_object_object_get(c, "status"))))
			ok = 0;
	}
	json_object_object_add(res, "ok", json_object_new_boolean(ok));
	json_object_object_add(res, "checks", r->checks);
	r->checks = NULL;
	control_doctor_done(r->ctl, res);
	TAILQ_REMOVE(&doctor_reqs, r, entry);
	event_free(r->timeout);
	free(r);
}

static void
doctor_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct doctor_req	*r = arg;

	(void)fd;
	(void)ev;
	doctor_add(r->checks, "keyd", "flm-keyd", "fail", "see flm status "
	    "and flmd's log", "flm-keyd did not answer in %d s: its checks "
	    "(master key, security.db, audit chain, certificates) are "
	    "missing", DOCTOR_KEYD_SECS);
	doctor_finish(r, NULL);
}

/* flm doctor from control client ctl: the answer goes back by id. */
void
doctor_start(uint32_t ctl)
{
	struct doctor_req	*r;
	struct timeval		 tv = { DOCTOR_KEYD_SECS, 0 };

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->ctl = ctl;
	r->id = DOCTOR_REQ | (++doctor_next & ~(DOCTOR_REQ | PROXY_TLS_REQ));
	r->checks = json_object_new_array();
	if ((r->timeout = evtimer_new(env->base, doctor_timeout, r)) == NULL)
		fatalx("doctor: evtimer_new");
	TAILQ_INSERT_TAIL(&doctor_reqs, r, entry);
	doctor_engines(r->checks);
	doctor_state(r->checks);
	doctor_config_db(r->checks);
	doctor_procs(r->checks);
	if (proc_forward(PROC_KEYD, IMSG_DOCTOR, r->id, NULL) == -1) {
		doctor_add(r->checks, "keyd", "flm-keyd", "fail",
		    "see flm status and flmd's log", "flm-keyd is not "
		    "running: its checks are missing");
		doctor_finish(r, NULL);
		return;
	}
	evtimer_add(r->timeout, &tv);
}

/* keyd's answer: {checks: [...]} as lib/doctor.h has them, or an error. */
void
doctor_keyd_reply(uint32_t id, int ok, struct json_object *o)
{
	struct doctor_req	*r;
	struct json_object	*checks = NULL;

	TAILQ_FOREACH(r, &doctor_reqs, entry)
		if (r->id == id)
			break;
	if (r == NULL)
		return;		/* too late: reported as not answering */
	if (!ok || !json_object_is_type(o, json_type_object) ||
	    json_object_object_length(o) != 1 ||
	    !json_object_object_get_ex(o, "checks", &checks) ||
	    !doctor_checks_valid(checks, DOCTOR_MAX_CHECKS)) {
		doctor_add(r->checks, "keyd", "flm-keyd", "fail",
		    "see flmd's log", "flm-keyd's answer was %s%.200s",
		    ok ? "malformed" : "an error: ", ok ? "" :
		    json_object_get_string(json_object_object_get(o,
		    "error")));
		if (ok)
			log_warnx("doctor: malformed answer from flm-keyd");
		checks = NULL;
	}
	doctor_finish(r, checks);
}

/* keyd stopped: whatever it owed is not coming. */
void
doctor_keyd_gone(void)
{
	struct doctor_req	*r;

	while ((r = TAILQ_FIRST(&doctor_reqs)) != NULL) {
		doctor_add(r->checks, "keyd", "flm-keyd", "fail",
		    "see flm status and flmd's log", "flm-keyd stopped "
		    "before it answered");
		doctor_finish(r, NULL);
	}
}

void
doctor_cleanup(void)
{
	struct doctor_req	*r;

	while ((r = TAILQ_FIRST(&doctor_reqs)) != NULL) {
		TAILQ_REMOVE(&doctor_reqs, r, entry);
		event_free(r->timeout);
		json_object_put(r->checks);
		free(r);
	}
}
