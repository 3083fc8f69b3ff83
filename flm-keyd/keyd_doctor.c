/*
 * flm doctor's facts that only keyd can see: where the master key came
 * from and who could read its file, security.db's health, the audit
 * chain, keyd's certificates, and the wall clock against the newest
 * audit record.  No key material and no path beyond keyd's directory:
 * what an admin of flm may know (docs/THREAT_MODEL.md).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "db.h"
#include "doctor.h"
#include "keyd.h"

/* Larger trails are left to flm audit verify: keyd answers proxyd too. */
#define KEYD_DOCTOR_AUDIT_MAX	100000
/* Nor is a huge security.db read through from here. */
#define KEYD_DOCTOR_DB_MAX	(512LL * 1024 * 1024)
/* Audit records are stamped by proxyd's clock: a little skew is no fault. */
#define KEYD_DOCTOR_SKEW_MS	5000

/* The key file (if it is the provider) and keyd's directory. */
static void
doctor_masterkey(struct json_object *out, const char *dir)
{
	struct stat	 st;
	const char	*from = keyd_master_source();
	char		 fix[DOCTOR_FIX_MAX];
	int		 file = strcmp(from, KEYD_MASTER_FILE) == 0;

	if (stat(".", &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(fix, sizeof(fix), "chmod 700 %s", dir);
		doctor_add(out, "master key", "keyd directory", "fail", fix,
		    "%s is mode %04o: others may reach security.db and the "
		    "key file", dir, (unsigned int)st.st_mode & 07777);
	} else
		doctor_add(out, "master key", "keyd directory", "ok", NULL,
		    "%s is keyd's alone", dir);
	if (lstat(KEYD_MASTER_FILE, &st) == -1) {
		doctor_add(out, "master key", "provider", "ok", NULL,
		    "the key comes from %s", from);
		return;
	}
	snprintf(fix, sizeof(fix), "chmod 600 %s/%s", dir, KEYD_MASTER_FILE);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		doctor_add(out, "master key", "provider", "fail", fix,
		    "%s%s is mode %04o: group or others can read the key",
		    file ? "" : "an unused ", file ? KEYD_MASTER_FILE
		    ", where the key comes from," : KEYD_MASTER_FILE,
		    (unsigned int)st.st_mode & 07777);
	else if (st.st_uid != keyd_master_owner() && st.st_uid != 0) {
		snprintf(fix, sizeof(fix), "check where it came from, then "
		    "chown %u %s/%s", (unsigned int)keyd_master_owner(), dir,
		    KEYD_MASTER_FILE);
		doctor_add(out, "master key", "provider", "fail", fix,
		    "%s is owned by uid %u, not by uid %u that reads it",
		    KEYD_MASTER_FILE, (unsigned int)st.st_uid,
		    (unsigned int)keyd_master_owner());
	} else if (file)
		doctor_add(out, "master key", "provider", "ok", NULL,
		    "the key comes from %s (mode %04o); systemd-creds or the "
		    "kernel keyring keep it off the disk", KEYD_MASTER_FILE,
		    (unsigned int)st.st_mode & 07777);
	else
		doctor_add(out, "master key", "provider", "info", NULL,
		    "the key comes from %s; an unused %s lies in keyd's "
		    "directory", from, KEYD_MASTER_FILE);
}

static int64_t
doctor_number(struct db *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 n = -1;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
doctor_db(struct json_object *out, struct db *db)
{
	char	 why[256];
	int	 newest = security_migrations[security_migrations_count - 1].
		    version;
	int64_t	 size;

	if (db->safe_mode || db->h == NULL) {
		doctor_add(out, "databases", "security.db", "fail",
		    "fix the cause, then restart flmd (see flm-keyd(8))",
		    "safe mode (read-only): %.300s", db->h == NULL ?
		    "not open" : db->safe_reason);
		return;
	}
	size = doctor_number(db, "SELECT page_count * page_size FROM "
	    "pragma_page_count, pragma_page_size");
	if (size > KEYD_DOCTOR_DB_MAX)
		doctor_add(out, "databases", "security.db", "skipped", NULL,
		    "%lld MiB: too large to check here; run sqlite3 "
		    "security.db 'PRAGMA quick_check' on a copy",
		    (long long)(size >> 20));
	else if (db_quick_check(db, why, sizeof(why)) != 0)
		doctor_add(out, "databases", "security.db", "fail",
		    "restore security.db from a backup (see flm-keyd(8))",
		    "quick_check: %.300s", why);
	else if (db->version != newest)
		doctor_add(out, "databases", "security.db", "warn",
		    "restart flmd to apply the migrations",
		    "schema version %d, this flm-keyd's is %d", db->version,
		    newest);
	else
		doctor_add(out, "databases", "security.db", "ok", NULL,
		    "intact, schema version %d, writable", db->version);
}

/* The same verification as flm audit verify, when the trail is small. */
static void
doctor_audit(struct json_object *out, struct db *db)
{
	struct json_object	*res = NULL, *p;
	char			 err[512];
	int64_t			 n;

	if (db->safe_mode || db->h == NULL) {
		doctor_add(out, "audit", "audit chain", "skipped", NULL,
		    "security.db is in safe mode");
		return;
	}
	n = doctor_number(db, "SELECT coalesce(max(id), 0) FROM audit_logs");
	if (n > KEYD_DOCTOR_AUDIT_MAX) {
		doctor_add(out, "audit", "audit chain", "skipped",
		    "flm audit verify", "%lld records: more than doctor "
		    "verifies (%d)", (long long)n, KEYD_DOCTOR_AUDIT_MAX);
		return;
	}
	if (keyd_audit_verify(db, &res, err, sizeof(err)) == -1) {
		doctor_add(out, "audit", "audit chain", "fail",
		    "flm audit verify", "%.300s", err);
		return;
	}
	if (json_object_object_get_ex(res, "problem", &p))
		doctor_add(out, "audit", "audit chain", "fail",
		    "flm audit verify; see flm-keyd(8)", "record %lld: %.300s",
		    (long long)json_object_get_int64(json_object_object_get(p,
		    "id")), json_object_get_string(json_object_object_get(p,
		    "message")));
	else
		doctor_add(out, "audit", "audit chain", "ok", NULL,
		    "intact: %lld live rows, %lld archives",
		    (long long)json_object_get_int64(json_object_object_get(
		    res, "rows")), (long long)json_object_get_int64(
		    json_object_object_get(res, "archives")));
	json_object_put(res);
}

/* A wall clock behind the newest audit record went back in time. */
static void
doctor_clock(struct json_object *out, struct db *db)
{
	int64_t	 ahead;

	if (db->h == NULL) {
		doctor_add(out, "clock", "audit order", "skipped", NULL,
		    "security.db is not open");
		return;
	}
	ahead = doctor_number(db, "SELECT CAST((julianday(created_at) - "
	    "julianday('now')) * 86400000 AS INTEGER) FROM audit_logs "
	    "ORDER BY id DESC LIMIT 1");
	if (ahead == -1 && doctor_number(db, "SELECT count(*) FROM "
	    "audit_logs") <= 0)
		doctor_add(out, "clock", "audit order", "ok", NULL,
		    "no audit record yet");
	else if (ahead > KEYD_DOCTOR_SKEW_MS)
		doctor_add(out, "clock", "audit order", "fail",
		    "set the clock right (timedatectl; chrony or "
		    "systemd-timesyncd)", "the clock is %lld s behind the "
		    "newest audit record", (long long)(ahead / 1000));
	else
		doctor_add(out, "clock", "audit order", "ok", NULL,
		    "the clock is past the newest audit record");
}

struct json_object *
keyd_doctor(struct db *db, const char *dir, int renewing)
{
	struct json_object	*res = json_object_new_object();
	struct json_object	*checks = json_object_new_array();

	doctor_masterkey(checks, dir);
	doctor_db(checks, db);
	doctor_audit(checks, db);
	doctor_clock(checks, db);
	if (db->h != NULL && !db->safe_mode) {
		keyd_tls_doctor(checks);
		keyd_acme_doctor(checks);
		if (renewing)
			doctor_add(checks, "certificates", "renewal", "ok",
			    NULL, "renewal timer armed: next check in %ld s",
			    keyd_tls_next());
		else
			doctor_add(checks, "certificates", "renewal", "fail",
			    "restart flmd", "the renewal timer is not armed");
	} else
		doctor_add(checks, "certificates", "certificates", "skipped",
		    NULL, "security.db is in safe mode");
	json_object_object_add(res, "checks", checks);
	return res;
}
