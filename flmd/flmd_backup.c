/*
 * flm backup, flmd's part: keyd seals and keeps the backups (it alone
 * holds the key), flmd gives it an online copy of config.db with each
 * request, and commits a restore keyd staged.
 *
 * The commit: config.db's staged copy written beside it, then the
 * marker restore.ready (its rename is the commit point), then the suite
 * restarted in place: children stopped, config.db swapped and reopened,
 * keyd started again, which finishes its side before it opens anything
 * and says so in its first DB_STATE; only then is the marker dropped.
 * A crash anywhere before the marker leaves the old state; after it,
 * the next start finishes the restore (backup_finish, keyd's own).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "chan.h"
#include "fileio.h"
#include "flmd.h"
#include "log.h"

#define BACKUP_DAILY_SECS	86400
#define BACKUP_TICK_SECS	3600	/* is the daily one due? */
#define CONFIG_STAGED		"config.db.restore"
#define BACKUP_PATH		(PATH_MAX + 64)	/* statedir, a name */

static struct event	*backup_ev_tick;

static void
backup_path(char *buf, size_t sz, const char *name)
{
	snprintf(buf, sz, "%s/%s", env->paths.statedir, name);
}

/* An online copy of config.db in a memfd, for keyd; -1 on error. */
int
backup_config_fd(char *err, size_t errsz)
{
	uint8_t		*img;
	size_t		 size;
	int		 fd;

	if (config_db.h == NULL) {
		snprintf(err, errsz, "config.db is not open: %s",
		    config_db.safe_reason);
		return -1;
	}
	if ((img = db_image(config_db.h, &size)) == NULL) {
		snprintf(err, errsz, "cannot copy config.db: %s",
		    db_strerror(&config_db, sqlite3_extended_errcode(
		    config_db.h)));
		return -1;
	}
	if ((fd = memfd_create("flm-config", MFD_CLOEXEC)) == -1) {
		snprintf(err, errsz, "memfd_create: %s", strerror(errno));
		sqlite3_free(img);
		return -1;
	}
	if (fileio_write_all(fd, img, size) == -1) {
		snprintf(err, errsz, "cannot copy config.db: %s",
		    strerror(errno));
		close(fd);
		sqlite3_free(img);
		return -1;
	}
	sqlite3_free(img);
	return fd;
}

/* config.db's copy to keyd, ahead of a CREATE or RESTORE: 0 or -1. */
int
backup_send_config(char *err, size_t errsz)
{
	struct chan	*ch = proc_chan(PROC_KEYD);
	int		 fd;

	if (ch == NULL) {
		snprintf(err, errsz, "flm-keyd is not running (see flm "
		    "status); try again");
		return -1;
	}
	if ((fd = backup_config_fd(err, errsz)) == -1)
		return -1;
	if (chan_compose(ch, IMSG_BACKUP_CONFIG, 0, fd, NULL, 0) == -1) {
		snprintf(err, errsz, "flm-keyd's channel is full; try again");
		return -1;
	}
	return 0;
}

/* fd's bytes into path, synced: 0 or -1. */
static int
backup_copy(int fd, const char *path)
{
	char	 buf[65536];
	ssize_t	 n;
	int	 out, ok = 1;

	if (lseek(fd, 0, SEEK_SET) == -1 || (out = open(path, O_WRONLY |
	    O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
		return -1;
	while (ok && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			ok = errno == EINTR;
			continue;
		}
		ok = fileio_write_all(out, buf, (size_t)n) == 0;
	}
	ok = ok && fsync(out) == 0;
	ok = close(out) == 0 && ok;
	if (!ok)
		unlink(path);
	return ok ? 0 : -1;
}

static void
backup_restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	flmd_restart("a backup was restored");
}

/*
 * keyd staged a restore and sent config.db's copy (fd): stage it, set
 * the marker, answer flm, and restart the suite to commit.  0, or -1
 * and nothing committed.
 */
int
backup_staged(int fd, char *err, size_t errsz)
{
	struct timeval	 tv = { 0, 200 * 1000 };	/* the answer first */
	char		 staged[BACKUP_PATH], marker[BACKUP_PATH];
	char		 tmp[BACKUP_PATH + 8];
	int		 mfd, ok;

	backup_path(staged, sizeof(staged), CONFIG_STAGED);
	backup_path(marker, sizeof(marker), FLM_RESTORE_MARKER);
	snprintf(tmp, sizeof(tmp), "%s.tmp", marker);
	if (fd == -1 || backup_copy(fd, staged) == -1) {
		snprintf(err, errsz, "cannot stage config.db: %s; nothing "
		    "was restored", fd == -1 ? "keyd sent no copy" :
		    strerror(errno));
		return -1;
	}
	if ((mfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errsz, "cannot write %s: %s; nothing was "
		    "restored", tmp, strerror(errno));
		unlink(staged);
		return -1;
	}
	ok = fileio_write_all(mfd, "restore\n", 8) == 0 && fsync(mfd) == 0;
	ok = close(mfd) == 0 && ok;
	if (!ok || rename(tmp, marker) == -1) {
		snprintf(err, errsz, "cannot write %s: %s; nothing was "
		    "restored", marker, strerror(errno));
		unlink(tmp);
		unlink(staged);
		return -1;
	}
	(void)fileio_sync_dir(env->paths.statedir);
	log_info("restore committed; restarting the suite to finish it");
	if (event_base_once(env->base, -1, EV_TIMEOUT, backup_restart_cb,
	    NULL, &tv) == -1)
		fatalx("cannot schedule the restart");
	return 0;
}

/*
 * A restore keyd staged and flmd does not commit: keyd removes its
 * staged files now (the master key's copy among them).
 */
void
backup_abort(void)
{
	struct chan	*ch = proc_chan(PROC_KEYD);

	if (ch == NULL || chan_compose(ch, IMSG_BACKUP_ABORT, 0, -1, NULL,
	    0) == -1)
		log_warnx("cannot tell flm-keyd the restore was not "
		    "committed: its staged files stay until its next start "
		    "an hour on");
}

/*
 * At start and at each restart, before config.db opens: with the
 * marker, config.db's staged copy put in place (keyd does its side).
 */
void
backup_finish(void)
{
	char	 staged[BACKUP_PATH], marker[BACKUP_PATH], live[BACKUP_PATH];
	char	 side[BACKUP_PATH + 8];

	backup_path(marker, sizeof(marker), FLM_RESTORE_MARKER);
	backup_path(staged, sizeof(staged), CONFIG_STAGED);
	if (access(marker, F_OK) == -1) {
		if (unlink(staged) == 0)
			log_info("removed %s: a restore never committed",
			    staged);
		return;
	}
	if (access(staged, F_OK) == -1)
		return;		/* already in place */
	backup_path(live, sizeof(live), CONFIG_DB_NAME);
	/* The old database's journal must not meet the new. */
	snprintf(side, sizeof(side), "%s-wal", live);
	if (unlink(side) == -1 && errno != ENOENT)
		fatal("%s", side);
	snprintf(side, sizeof(side), "%s-shm", live);
	if (unlink(side) == -1 && errno != ENOENT)
		fatal("%s", side);
	if (rename(staged, live) == -1)
		fatal("restore: rename %s", staged);
	(void)fileio_sync_dir(env->paths.statedir);
	log_info("restore: config.db put in place");
}

/* keyd's DB_STATE: once it says it finished a restore, the marker goes. */
void
backup_keyd_state(struct json_object *o)
{
	struct json_object	*v;
	char			 marker[BACKUP_PATH];

	if (!json_object_object_get_ex(o, "restored", &v) ||
	    !json_object_get_boolean(v))
		return;
	backup_path(marker, sizeof(marker), FLM_RESTORE_MARKER);
	if (unlink(marker) == 0) {
		(void)fileio_sync_dir(env->paths.statedir);
		log_info("restore finished");
	}
}

/* Every hour: a daily backup, if the newest is a day old. */
static void
backup_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct json_object	*req;
	char			 err[256];

	(void)fd;
	(void)ev;
	(void)arg;
	if (env->shutting_down)
		return;
	if (backup_send_config(err, sizeof(err)) == -1) {
		log_warnx("daily backup: %s", err);
		return;
	}
	req = json_object_new_object();
	json_object_object_add(req, "reason", json_object_new_string("daily"));
	json_object_object_add(req, "max_age",
	    json_object_new_int(BACKUP_DAILY_SECS));
	(void)proc_forward(PROC_KEYD, IMSG_BACKUP_CREATE, BACKUP_REQ, req);
	json_object_put(req);
}

/* keyd's answer to a backup flmd asked for itself. */
void
backup_daily_reply(int ok, struct json_object *o)
{
	struct json_object	*v;

	if (!ok)
		log_warnx("backup failed: %s",
		    json_object_get_string(json_object_object_get(o, "error")));
	else if (json_object_object_get_ex(o, "file", &v))
		log_info("backup %s made", json_object_get_string(v));
}

/* A backup before a change flmd makes (a migration): queued to keyd
 * ahead of the change.  0, or -1 with err. */
int
backup_before(const char *reason, char *err, size_t errsz)
{
	struct json_object	*req;
	int			 r;

	if (backup_send_config(err, errsz) == -1)
		return -1;
	req = json_object_new_object();
	json_object_object_add(req, "reason", json_object_new_string(reason));
	r = proc_forward(PROC_KEYD, IMSG_BACKUP_CREATE, BACKUP_REQ, req);
	json_object_put(req);
	if (r == -1)
		snprintf(err, errsz, "flm-keyd is not running");
	return r;
}

void
backup_init(void)
{
	struct timeval	 tv = { BACKUP_TICK_SECS, 0 };

	if (backup_ev_tick != NULL)
		return;
	backup_ev_tick = event_new(env->base, -1, EV_PERSIST, backup_tick,
	    NULL);
	if (backup_ev_tick == NULL || event_add(backup_ev_tick, &tv) == -1)
		fatalx("backup timer");
}

void
backup_cleanup(void)
{
	if (backup_ev_tick != NULL)
		event_free(backup_ev_tick);
	backup_ev_tick = NULL;
}
