#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "log.h"


/* Words for the user, with what to do about it where we know. */
const char *
db_strerror(struct db *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return "the disk is full: free some space; nothing stored "
		    "was lost";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "the database is locked by another process: stop it "
		    "(is a sqlite3 shell open on the file?)";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "the database file is corrupt or not an SQLite "
		    "database: move it aside and restore a backup";
	case SQLITE_READONLY:
		return "the database is read-only: check the file's owner "
		    "and mode";
	case SQLITE_CANTOPEN:
		return "the database cannot be opened: check the directory's "
		    "owner and mode";
	case SQLITE_IOERR:
		return "I/O error on the database: check the disk";
	default:
		return db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
	}
}

static void __attribute__((format(printf, 2, 3)))
db_enter_safe_mode(struct db *db, const char *fmt, ...)
{
	va_list	 ap;

	db->safe_mode = 1;
	va_start(ap, fmt);
	vsnprintf(db->safe_reason, sizeof(db->safe_reason), fmt, ap);
	va_end(ap);
	log_warnx("%s: safe mode (read-only): %s", db->path, db->safe_reason);
	/* Enforced by SQLite itself too, not only by our checks. */
	if (db->h)
		sqlite3_exec(db->h, "PRAGMA query_only=ON", NULL, NULL, NULL);
}

static int
db_exec(struct db *db, const char *sql)
{
	return sqlite3_exec(db->h, sql, NULL, NULL, NULL);
}

static int
db_current_version(struct db *db, int *version)
{
	sqlite3_stmt	*st;
	int		 rc;

	rc = sqlite3_prepare_v2(db->h, "SELECT COALESCE(MAX(version), 0) "
	    "FROM schema_migrations", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int
db_apply(struct db *db, const struct db_migration *m)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = db_exec(db, "BEGIN IMMEDIATE")) != SQLITE_OK ||
	    (rc = db_exec(db, m->sql)) != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(db->h, "INSERT INTO schema_migrations "
	    "(version, name) VALUES (?, ?)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int(st, 1, m->version);
	sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK :
	    sqlite3_extended_errcode(db->h);
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return rc;
	return db_exec(db, "COMMIT");
}

/* One transaction per migration; the first failure stops the run. */
static int
db_migrate(struct db *db, const struct db_migration *m, size_t n)
{
	size_t		 i;
	int		 rc;

	rc = db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	    "applied_at TEXT NOT NULL DEFAULT "
	    "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
	if (rc != SQLITE_OK) {
		db_enter_safe_mode(db, "cannot prepare migrations: %s",
		    db_strerror(db, rc));
		return -1;
	}
	if ((rc = db_current_version(db, &db->version)) != SQLITE_OK) {
		db_enter_safe_mode(db, "cannot read schema_migrations: %s",
		    db_strerror(db, rc));
		return -1;
	}
	if (n > 0 && db->version > m[n - 1].version) {
		db_enter_safe_mode(db, "database schema %d is newer than this "
		    "FLM knows (%d); upgrade FLM", db->version,
		    m[n - 1].version);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (m[i].version <= db->version)
			continue;
		if ((rc = db_apply(db, &m[i])) != SQLITE_OK) {
			char	 why[256];

			/* Read the message before ROLLBACK replaces it. */
			snprintf(why, sizeof(why), "%s", db_strerror(db, rc));
			db_exec(db, "ROLLBACK");
			db_enter_safe_mode(db, "migration %s failed: %s; the "
			    "database is as it was after the last good "
			    "migration", m[i].name, why);
			return -1;
		}
		db->version = m[i].version;
		log_info("%s: applied migration %s", db->path, m[i].name);
	}
	return 0;
}

/* journal_mode answers with the mode in force rather than failing. */
static int
db_wal(struct db *db)
{
	sqlite3_stmt	*st;
	int		 rc;

	rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0),
		    "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
	else
		rc = sqlite3_extended_errcode(db->h);
	sqlite3_finalize(st);
	return rc;
}

/*
 * An existing database file must be ours: owned by the uid that opens
 * it (another user could have planted or could still change it), and
 * not writable by others.  DB_SECURE wants it 0600; a looser mode is
 * tightened, not refused, since we own the file and can fix it.  0, or
 * -1 and why.
 */
static int
db_check_file(const char *path, int flags, char *err, size_t errsz)
{
	struct stat	 st;
	mode_t		 bad = (flags & DB_SECURE) ? 077 : 022;
	int		 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;	/* made 0600 by db_open */
		snprintf(err, errsz, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		snprintf(err, errsz, "%s is not a regular file", path);
	else if (st.st_uid != geteuid())
		snprintf(err, errsz, "%s is owned by uid %u, not by uid %u "
		    "that runs this process: someone else made or can change "
		    "it; check it, then chown it", path,
		    (unsigned int)st.st_uid, (unsigned int)geteuid());
	else if ((st.st_mode & bad) != 0 &&
	    fchmod(fd, st.st_mode & 0777 & ~bad) == -1)
		snprintf(err, errsz, "%s has mode %03o and cannot be made "
		    "private: %s", path, (unsigned int)st.st_mode & 0777,
		    strerror(errno));
	else {
		if ((st.st_mode & bad) != 0)
			log_warnx("%s had mode %03o; made it %03o (others "
			    "may have read or changed it before)", path,
			    (unsigned int)st.st_mode & 0777,
			    (unsigned int)(st.st_mode & 0777 & ~bad));
		rv = 0;
	}
	close(fd);
	return rv;
}

/*
 * A database file is not trusted not to be hostile: none of the SQL
 * that corrupts a file on purpose (writable_schema and its kin), and a
 * page's cells checked before they are used.  Every connection FLM
 * opens on a database goes through here, the one a restore put in
 * place among them: another process wrote it.  trusted_schema stays
 * on: FLM's own CHECK constraints call json_valid(), which SQLite
 * 3.40 does not count as innocuous, and FLM registers no function of
 * its own that a schema could call.  0, or an SQLite error code.
 */
int
db_harden(struct sqlite3 *h)
{
	int	 rc;

	if ((rc = sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1,
	    (int *)NULL)) != SQLITE_OK)
		return rc;
	return sqlite3_exec(h, "PRAGMA cell_size_check=ON", NULL, NULL, NULL);
}

/*
 * Open path (created 0600 if missing), set the pragmas, migrate.  A
 * failure after the file opened leaves db usable in safe mode: returns
 * 0 and sets db->safe_mode.  -1 only when there is no handle at all.
 */
int
db_open(struct db *db, const char *path, int flags, int busy_ms,
    const struct db_migration *m, size_t n)
{
	char	 why[sizeof(db->safe_reason) - 64];
	mode_t	 old;
	int	 rc;

	memset(db, 0, sizeof(*db));
	snprintf(db->path, sizeof(db->path), "%s", path);
	if (db_check_file(path, flags, why, sizeof(why)) == -1) {
		db_enter_safe_mode(db, "%s", why);
		return -1;
	}
	old = umask(077);
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		db_enter_safe_mode(db, "cannot open %s: %s", path,
		    db_strerror(db, rc));
		sqlite3_close(db->h);
		db->h = NULL;
		return -1;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, busy_ms > 0 ? busy_ms : DB_BUSY_MS);
	/* Temporary tables in memory: keyd's sandbox has no /tmp. */
	if ((rc = db_harden(db->h)) != SQLITE_OK ||
	    (rc = db_exec(db, "PRAGMA temp_store=MEMORY")) != SQLITE_OK ||
	    (rc = db_exec(db, "PRAGMA foreign_keys=ON")) != SQLITE_OK ||
	    (rc = db_wal(db)) != SQLITE_OK ||
	    (rc = db_exec(db, "PRAGMA synchronous=NORMAL")) != SQLITE_OK ||
	    ((flags & DB_SECURE) &&
	    (rc = db_exec(db, "PRAGMA secure_delete=ON")) != SQLITE_OK)) {
		db_enter_safe_mode(db, "cannot set up %s: %s", path,
		    db_strerror(db, rc));
		return 0;
	}
	/*
	 * SQLite quietly opens a write-protected file read-only; without
	 * this, db_writable() would say yes to a database that cannot be.
	 */
	if (db_migrate(db, m, n) == 0 &&
	    sqlite3_db_readonly(db->h, "main") == 1)
		db_enter_safe_mode(db, "cannot write %s: %s", path,
		    db_strerror(db, SQLITE_READONLY));
	return 0;
}

/* 0 if writes may go ahead; else -1 and why, with how to recover. */
int
db_writable(struct db *db, char *err, size_t errsz)
{
	if (!db->safe_mode && db->h != NULL)
		return 0;
	snprintf(err, errsz, "%s is in read-only safe mode (%s); fix the "
	    "cause and restart flmd", db->path, db->safe_reason);
	return -1;
}

void
db_close(struct db *db)
{
	if (db->h != NULL) {
		sqlite3_close(db->h);
		db->h = NULL;
	}
}

/*
 * PRAGMA quick_check, at most a few hundred pages' worth of problems
 * read: 0 intact, 1 damaged (its first complaint in out), -1 it could
 * not be run (why in out).
 */
int
db_quick_check(struct db *db, char *out, size_t outsz)
{
	sqlite3_stmt	*st;
	const char	*line;
	int		 rc, r = -1;

	if (db->h == NULL) {
		snprintf(out, outsz, "not open");
		return -1;
	}
	if ((rc = sqlite3_prepare_v2(db->h, "PRAGMA quick_check(1)", -1, &st,
	    NULL)) != SQLITE_OK) {
		snprintf(out, outsz, "%s", db_strerror(db, rc));
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		line = (const char *)sqlite3_column_text(st, 0);
		r = line != NULL && strcmp(line, "ok") == 0 ? 0 : 1;
		snprintf(out, outsz, "%s", line != NULL ? line : "no answer");
	} else
		snprintf(out, outsz, "%s", db_strerror(db, rc));
	sqlite3_finalize(st);
	return r;
}

/*
 * An online copy of h (SQLite's backup, never the file of a live WAL
 * database) as one image, made a rollback-journal one: sqlite3_free it.
 * NULL on error.
 */
uint8_t *
db_image(struct sqlite3 *h, size_t *size)
{
	sqlite3		*mem;
	sqlite3_backup	*b;
	sqlite3_int64	 n = 0;
	uint8_t		*img = NULL;

	*size = 0;
	if (sqlite3_open(":memory:", &mem) != SQLITE_OK ||
	    db_harden(mem) != SQLITE_OK) {
		sqlite3_close(mem);
		return NULL;
	}
	if ((b = sqlite3_backup_init(mem, "main", h, "main")) != NULL) {
		(void)sqlite3_backup_step(b, -1);
		if (sqlite3_backup_finish(b) == SQLITE_OK)
			img = sqlite3_serialize(mem, "main", &n, 0);
	}
	sqlite3_close(mem);
	if (img == NULL)
		return NULL;
	*size = (size_t)n;
	db_image_unwal(img, *size);
	return img;
}

/*
 * An image opened read-only in a private, hardened connection; img
 * stays the caller's and must outlive it.  NULL on error.
 */
struct sqlite3 *
db_image_open(uint8_t *img, size_t size)
{
	sqlite3	*h;

	db_image_unwal(img, size);
	if (sqlite3_open(":memory:", &h) != SQLITE_OK ||
	    db_harden(h) != SQLITE_OK ||
	    sqlite3_deserialize(h, "main", img, (sqlite3_int64)size,
	    (sqlite3_int64)size, SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	return h;
}

/*
 * A database image (sqlite3_serialize, or a file read whole) says "WAL"
 * in its header when its source was: then it opens only beside a -wal
 * file.  Made a rollback-journal database, it opens anywhere; db_open
 * makes it WAL again once it is live.
 */
void
db_image_unwal(uint8_t *img, size_t size)
{
	/* The file format's read and write versions, bytes 18 and 19. */
	if (img != NULL && size >= 100 && img[18] == 2 && img[19] == 2)
		img[18] = img[19] = 1;
}
