/*
 * Unit tests for lib/db.c: real SQLite files in a fresh directory per
 * test, the real compiled-in migrations, and a second sqlite3
 * connection wherever a file has to be inspected or held locked.
 * Nothing of the library under test is mocked.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db.h"

#define BUSY_MS		100	/* short: the locked test waits this long */
#define GARBAGE_SIZE	8192

struct fx {
	char		 dir[64];
	char		 path[PATH_MAX];
	struct db	 db;
};

static const struct db_migration	mig_a[] = {
	{ 1, "001_a", "CREATE TABLE a(x);" },
};
static const struct db_migration	mig_ab[] = {
	{ 1, "001_a", "CREATE TABLE a(x);" },
	{ 2, "002_b", "CREATE TABLE b(y);" },
};
static const struct db_migration	mig_bad[] = {
	{ 1, "001_a", "CREATE TABLE a(x);" },
	{ 2, "002_b", "CREATE TABLE b(; syntax error" },
};
static const struct db_migration	mig_partial[] = {
	{ 1, "001_a", "CREATE TABLE a(x);" },
	{ 2, "002_c", "CREATE TABLE c(z); CREATE TABLE c(z);" },
};

/* ---- fixtures ------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/flm-test-db.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/test.db", f->dir);
	*state = f;
	return 0;
}

/* Pre-order: give every directory back to its owner before removal. */
static int
rm_chmod_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(p, 0700);
	return 0;
}

static int
rm_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(p) == -1 ? -1 : 0;
	return unlink(p) == -1 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;
	int		 rc;

	db_close(&f->db);
	nftw(f->dir, rm_chmod_cb, 8, FTW_PHYS);
	rc = nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* ---- inspecting files through a connection of our own -------------------- */

static sqlite3 *
raw_open(const char *path)
{
	sqlite3	*h = NULL;

	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	sqlite3_extended_result_codes(h, 1);
	return h;
}

static void
raw_exec(sqlite3 *h, const char *sql)
{
	char	*err = NULL;
	int	 rc;

	rc = sqlite3_exec(h, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : sqlite3_errstr(rc));
}

/* First column of the first row as an int; the query must work. */
static int
q_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt	*st;
	int		 v;

	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
q_text(sqlite3 *h, const char *sql, char *buf, size_t sz)
{
	sqlite3_stmt		*st;
	const unsigned char	*t;

	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	t = sqlite3_column_text(st, 0);
	assert_non_null(t);
	snprintf(buf, sz, "%s", (const char *)t);
	sqlite3_finalize(st);
}

static int
table_exists(sqlite3 *h, const char *name)
{
	sqlite3_stmt	*st;
	int		 n;

	assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM "
	    "sqlite_master WHERE type = 'table' AND name = ?", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Run sql on h; return SQLite's result code and its message. */
static int
try_exec(sqlite3 *h, const char *sql, char *msg, size_t sz)
{
	char	*err = NULL;
	int	 rc;

	rc = sqlite3_exec(h, sql, NULL, NULL, &err);
	snprintf(msg, sz, "%s", err ? err : "");
	sqlite3_free(err);
	return rc;
}

static void
assert_contains(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", s, sub);
}

static void
assert_mode(const char *path, mode_t want)
{
	struct stat	 sb;

	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, want);
}

static size_t
read_all(const char *path, unsigned char *buf, size_t sz)
{
	ssize_t	 n;
	size_t	 off = 0;
	int	 fd;

	assert_true((fd = open(path, O_RDONLY)) != -1);
	while (off < sz && (n = read(fd, buf + off, sz - off)) > 0)
		off += n;
	close(fd);
	return off;
}

static void
write_all(const char *path, const unsigned char *buf, size_t len, mode_t mode)
{
	int	 fd;

	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) !=
	    -1);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Checks common to every healthy, writable FLM database. */
static void
assert_healthy(struct fx *f, int version)
{
	char	 err[1024];

	assert_int_equal(f->db.safe_mode, 0);
	assert_string_equal(f->db.safe_reason, "");
	assert_non_null(f->db.h);
	assert_string_equal(f->db.path, f->path);
	assert_int_equal(f->db.version, version);
	assert_int_equal(db_writable(&f->db, err, sizeof(err)), 0);
	assert_int_equal(q_int(f->db.h, "PRAGMA query_only"), 0);
}

/* Checks common to every database left in safe mode. */
static void
assert_safe_mode(struct fx *f, const char *why)
{
	char	 err[1024];

	assert_int_equal(f->db.safe_mode, 1);
	assert_contains(f->db.safe_reason, why);
	memset(err, 0, sizeof(err));
	assert_int_equal(db_writable(&f->db, err, sizeof(err)), -1);
	assert_contains(err, f->path);
	assert_contains(err, "read-only safe mode");
	assert_contains(err, f->db.safe_reason);
	assert_contains(err, "restart flmd");
	if (f->db.h != NULL)
		assert_int_equal(q_int(f->db.h, "PRAGMA query_only"), 1);
}

/* ---- fresh databases ----------------------------------------------------- */

static void
assert_fresh_common(struct fx *f, const struct db_migration *m, size_t n)
{
	char	 buf[64], wal[PATH_MAX + 8];
	size_t	 i;

	assert_true(n > 0);
	assert_healthy(f, m[n - 1].version);
	assert_mode(f->path, 0600);
	/* The WAL is open while db is: it must not be readable either. */
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_mode(wal, 0600);
	q_text(f->db.h, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	assert_int_equal(q_int(f->db.h, "PRAGMA foreign_keys"), 1);
	assert_int_equal(q_int(f->db.h, "PRAGMA temp_store"), 2);
	assert_int_equal(q_int(f->db.h, "PRAGMA synchronous"), 1);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "schema_migrations"), (int)n);
	assert_int_equal(q_int(f->db.h, "SELECT max(version) FROM "
	    "schema_migrations"), m[n - 1].version);
	for (i = 0; i < n; i++) {
		sqlite3_stmt	*st;

		assert_int_equal(sqlite3_prepare_v2(f->db.h, "SELECT name, "
		    "applied_at FROM schema_migrations WHERE version = ?", -1,
		    &st, NULL), SQLITE_OK);
		sqlite3_bind_int(st, 1, m[i].version);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal(sqlite3_column_text(st, 0), m[i].name);
		assert_int_equal(sqlite3_column_bytes(st, 1),
		    (int)strlen("2000-01-01T00:00:00.000Z"));
		sqlite3_finalize(st);
	}
}

static void
test_fresh_security(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;
	char		 buf[64];

	assert_true(security_migrations_count > 0);
	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_fresh_common(f, security_migrations, security_migrations_count);
	assert_int_equal(q_int(f->db.h, "PRAGMA secure_delete"), 1);

	/* What a second process sees in the file itself. */
	h = raw_open(f->path);
	q_text(h, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	assert_int_equal(table_exists(h, "schema_migrations"), 1);
	assert_int_equal(table_exists(h, "api_keys"), 1);
	assert_int_equal(table_exists(h, "security_policies"), 1);
	assert_int_equal(table_exists(h, "audit_logs"), 1);
	assert_int_equal(table_exists(h, "rate_limit_states"), 1);
	assert_int_equal(table_exists(h, "certificates"), 1);
	assert_int_equal(table_exists(h, "secrets"), 1);
	assert_int_equal(table_exists(h, "settings"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM security_policies"),
	    1);
	q_text(h, "SELECT id FROM security_policies", buf, sizeof(buf));
	assert_string_equal(buf, "default");
	q_text(h, "SELECT policy_json FROM security_policies", buf,
	    sizeof(buf));
	assert_string_equal(buf, "{}");
	assert_int_equal(q_int(h, "SELECT count(*) FROM api_keys"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM audit_logs"), 0);
	sqlite3_close(h);
}

static void
test_fresh_config(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;
	char		 buf[64];

	assert_true(config_migrations_count > 0);
	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS,
	    config_migrations, config_migrations_count), 0);
	assert_fresh_common(f, config_migrations, config_migrations_count);
	/* Off unless asked for, or unless SQLite was built with it on. */
	assert_int_equal(q_int(f->db.h, "PRAGMA secure_delete"),
	    sqlite3_compileoption_used("SECURE_DELETE") ? 1 : 0);

	h = raw_open(f->path);
	q_text(h, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	assert_int_equal(table_exists(h, "settings"), 1);
	assert_int_equal(table_exists(h, "engines_cache"), 1);
	assert_int_equal(table_exists(h, "proxy_profiles"), 1);
	assert_int_equal(table_exists(h, "api_keys"), 0);
	assert_int_equal(table_exists(h, "secrets"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM settings"), 0);
	sqlite3_close(h);
}

/* A mode the caller's umask would allow must not leak into the file. */
static void
test_fresh_mode_ignores_umask(void **state)
{
	struct fx	*f = *state;
	mode_t		 old;

	old = umask(0);
	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	/* db_open puts the caller's umask back. */
	assert_int_equal(umask(old), 0);
	assert_healthy(f, security_migrations[security_migrations_count - 1].
	    version);
	assert_mode(f->path, 0600);
}

/* ---- running again ------------------------------------------------------- */

static void
test_rerun(void **state)
{
	struct fx	*f = *state;
	char		 before[64], after[64];
	int		 n;

	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_healthy(f, security_migrations[security_migrations_count - 1].
	    version);
	n = q_int(f->db.h, "SELECT count(*) FROM schema_migrations");
	assert_int_equal(n, (int)security_migrations_count);
	q_text(f->db.h, "SELECT group_concat(applied_at) FROM "
	    "schema_migrations", before, sizeof(before));
	raw_exec(f->db.h, "INSERT INTO api_keys (id, label, hash) VALUES "
	    "('k1', 'laptop', '$argon2id$v=19$m=65536,t=3,p=1$x$y')");
	db_close(&f->db);
	assert_null(f->db.h);

	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_healthy(f, security_migrations[security_migrations_count - 1].
	    version);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "schema_migrations"), n);
	q_text(f->db.h, "SELECT group_concat(applied_at) FROM "
	    "schema_migrations", after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM api_keys"), 1);
	q_text(f->db.h, "SELECT label FROM api_keys WHERE id = 'k1'", after,
	    sizeof(after));
	assert_string_equal(after, "laptop");
	/* The seed row of 001 was not inserted a second time. */
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "security_policies"), 1);
}

static void
test_incremental(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_a, 1), 0);
	assert_healthy(f, 1);
	assert_int_equal(table_exists(f->db.h, "a"), 1);
	assert_int_equal(table_exists(f->db.h, "b"), 0);
	raw_exec(f->db.h, "INSERT INTO a VALUES (42)");
	db_close(&f->db);

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_healthy(f, 2);
	db_close(&f->db);

	h = raw_open(f->path);
	assert_int_equal(table_exists(h, "a"), 1);
	assert_int_equal(table_exists(h, "b"), 1);
	assert_int_equal(q_int(h, "SELECT x FROM a"), 42);
	assert_int_equal(q_int(h, "SELECT count(*) FROM schema_migrations"),
	    2);
	assert_int_equal(q_int(h, "SELECT count(*) FROM schema_migrations "
	    "WHERE version = 2 AND name = '002_b'"), 1);
	sqlite3_close(h);
}

/* ---- failing migrations -------------------------------------------------- */

static void
test_failing_migration(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;
	char		 msg[256];
	int		 rc;

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_bad, 2), 0);
	assert_non_null(f->db.h);
	assert_safe_mode(f, "002_b");
	assert_contains(f->db.safe_reason, "syntax error");
	assert_contains(f->db.safe_reason, "last good migration");
	assert_int_equal(f->db.version, 1);

	/* 001 stays, readable through the same handle. */
	assert_int_equal(table_exists(f->db.h, "a"), 1);
	assert_int_equal(table_exists(f->db.h, "b"), 0);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM a"), 0);
	assert_int_equal(q_int(f->db.h, "SELECT max(version) FROM "
	    "schema_migrations"), 1);
	assert_int_equal(sqlite3_get_autocommit(f->db.h), 1);

	/* SQLite itself refuses writes, not only db_writable(). */
	rc = try_exec(f->db.h, "INSERT INTO a VALUES (1)", msg, sizeof(msg));
	assert_int_equal(rc & 0xff, SQLITE_READONLY);
	rc = try_exec(f->db.h, "CREATE TABLE z(q)", msg, sizeof(msg));
	assert_int_equal(rc & 0xff, SQLITE_READONLY);
	db_close(&f->db);

	h = raw_open(f->path);
	assert_int_equal(q_int(h, "SELECT count(*) FROM a"), 0);
	assert_int_equal(table_exists(h, "z"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM schema_migrations"),
	    1);
	sqlite3_close(h);
}

static void
test_partial_migration_rolled_back(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_partial,
	    2), 0);
	assert_safe_mode(f, "002_c");
	assert_contains(f->db.safe_reason, "already exists");
	assert_int_equal(f->db.version, 1);
	assert_int_equal(table_exists(f->db.h, "c"), 0);
	db_close(&f->db);

	/* Nothing of 002 reached the file either. */
	h = raw_open(f->path);
	assert_int_equal(table_exists(h, "a"), 1);
	assert_int_equal(table_exists(h, "c"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM schema_migrations"),
	    1);
	sqlite3_close(h);

	/* A fixed 002 applies on the next start. */
	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_healthy(f, 2);
	assert_int_equal(table_exists(f->db.h, "b"), 1);
}

/* ---- the schema's own rules ---------------------------------------------- */

static void
test_audit_append_only(void **state)
{
	struct fx	*f = *state;
	char		 msg[256];
	int		 rc;

	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_healthy(f, security_migrations[security_migrations_count - 1].
	    version);
	rc = try_exec(f->db.h, "INSERT INTO audit_logs (request_id, endpoint, "
	    "status, latency_ms) VALUES ('r1', '/v1/chat/completions', 200, "
	    "12)", msg, sizeof(msg));
	assert_int_equal(rc, SQLITE_OK);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM audit_logs"), 1);

	rc = try_exec(f->db.h, "UPDATE audit_logs SET status = 500", msg,
	    sizeof(msg));
	assert_int_not_equal(rc, SQLITE_OK);
	assert_contains(msg, "append-only");
	rc = try_exec(f->db.h, "DELETE FROM audit_logs", msg, sizeof(msg));
	assert_int_not_equal(rc, SQLITE_OK);
	assert_contains(msg, "append-only");

	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM audit_logs"), 1);
	assert_int_equal(q_int(f->db.h, "SELECT status FROM audit_logs"), 200);
	/* Appending still works after the refusals. */
	rc = try_exec(f->db.h, "INSERT INTO audit_logs (request_id, endpoint, "
	    "status, latency_ms) VALUES ('r2', '/v1/models', 401, 1)", msg,
	    sizeof(msg));
	assert_int_equal(rc, SQLITE_OK);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM audit_logs"), 2);
}

static void
test_policies_check(void **state)
{
	struct fx	*f = *state;
	char		 msg[256];
	int		 rc;

	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_healthy(f, security_migrations[security_migrations_count - 1].
	    version);
	rc = try_exec(f->db.h, "INSERT INTO security_policies (id, "
	    "policy_json) VALUES ('other', '{}')", msg, sizeof(msg));
	assert_int_equal(rc, SQLITE_CONSTRAINT_CHECK);
	rc = try_exec(f->db.h, "UPDATE security_policies SET id = 'other'",
	    msg, sizeof(msg));
	assert_int_equal(rc, SQLITE_CONSTRAINT_CHECK);
	rc = try_exec(f->db.h, "UPDATE security_policies SET policy_json = "
	    "'not json'", msg, sizeof(msg));
	assert_int_equal(rc, SQLITE_CONSTRAINT_CHECK);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "security_policies WHERE id = 'default' AND policy_json = '{}'"),
	    1);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "security_policies"), 1);
}

/* ---- files FLM cannot use -------------------------------------------------- */

static void
test_newer_schema(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;

	h = raw_open(f->path);
	raw_exec(h, "CREATE TABLE schema_migrations (version INTEGER PRIMARY "
	    "KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT '')");
	raw_exec(h, "INSERT INTO schema_migrations (version, name) VALUES "
	    "(99, '099_future')");
	sqlite3_close(h);

	assert_int_equal(db_open(&f->db, f->path, DB_SECURE, BUSY_MS,
	    security_migrations, security_migrations_count), 0);
	assert_safe_mode(f, "newer");
	assert_contains(f->db.safe_reason, "99");
	assert_contains(f->db.safe_reason, "upgrade FLM");
	assert_int_equal(f->db.version, 99);
	/* Nothing of ours was applied to the future schema. */
	assert_int_equal(table_exists(f->db.h, "api_keys"), 0);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "schema_migrations"), 1);
}

static void
test_corrupt_file(void **state)
{
	struct fx	*f = *state;
	unsigned char	 garbage[GARBAGE_SIZE], after[GARBAGE_SIZE + 1];
	uint32_t	 x = 0x12345678;
	struct stat	 sb;
	char		 side[PATH_MAX + 8];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(garbage); i++) {
		x = x * 1103515245 + 12345;
		garbage[i] = x >> 16;
	}
	memcpy(garbage, "NOT an SQLite db", 16);
	write_all(f->path, garbage, sizeof(garbage), 0600);

	rc = db_open(&f->db, f->path, DB_SECURE, BUSY_MS, security_migrations,
	    security_migrations_count);
	assert_true(rc == 0 || rc == -1);
	assert_int_equal(f->db.safe_mode, 1);
	assert_contains(f->db.safe_reason, "corrupt");
	assert_contains(f->db.safe_reason, "restore a backup");
	if (rc == 0) {
		char	 err[1024];

		assert_non_null(f->db.h);
		assert_int_equal(db_writable(&f->db, err, sizeof(err)), -1);
		assert_contains(err, "corrupt");
	} else
		assert_null(f->db.h);
	db_close(&f->db);

	/* Byte for byte what was there, and nothing written beside it. */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_size, GARBAGE_SIZE);
	assert_int_equal(read_all(f->path, after, sizeof(after)),
	    GARBAGE_SIZE);
	assert_memory_equal(after, garbage, GARBAGE_SIZE);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	assert_int_equal(stat(side, &sb), -1);
	snprintf(side, sizeof(side), "%s-journal", f->path);
	assert_int_equal(stat(side, &sb), -1);
}

static void
test_locked_file(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;
	char		 buf[64];

	h = raw_open(f->path);
	q_text(h, "PRAGMA journal_mode=WAL", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	raw_exec(h, "BEGIN EXCLUSIVE");
	raw_exec(h, "CREATE TABLE other(w)");

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_non_null(f->db.h);
	assert_safe_mode(f, "locked");
	assert_int_equal(f->db.version, 0);
	assert_int_equal(table_exists(f->db.h, "a"), 0);
	db_close(&f->db);

	raw_exec(h, "COMMIT");
	sqlite3_close(h);

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_healthy(f, 2);
	assert_int_equal(table_exists(f->db.h, "a"), 1);
	assert_int_equal(table_exists(f->db.h, "b"), 1);
	assert_int_equal(table_exists(f->db.h, "other"), 1);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM "
	    "schema_migrations"), 2);
}

/* The lock taken between schema_migrations and the first migration. */
static void
test_locked_before_migration(void **state)
{
	struct fx	*f = *state;
	sqlite3		*h;

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_a, 1), 0);
	assert_healthy(f, 1);
	db_close(&f->db);

	h = raw_open(f->path);
	raw_exec(h, "BEGIN IMMEDIATE");
	raw_exec(h, "INSERT INTO a VALUES (7)");
	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_safe_mode(f, "locked");
	assert_contains(f->db.safe_reason, "002_b");
	assert_int_equal(f->db.version, 1);
	assert_int_equal(table_exists(f->db.h, "b"), 0);
	db_close(&f->db);
	raw_exec(h, "COMMIT");
	sqlite3_close(h);

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_ab, 2), 0);
	assert_healthy(f, 2);
	assert_int_equal(q_int(f->db.h, "SELECT x FROM a"), 7);
}

static void
test_no_directory(void **state)
{
	struct fx	*f = *state;
	char		 path[PATH_MAX + 16];
	struct stat	 sb;

	snprintf(path, sizeof(path), "%s/missing/test.db", f->dir);
	assert_int_equal(db_open(&f->db, path, 0, BUSY_MS, mig_a, 1), -1);
	assert_null(f->db.h);
	assert_int_equal(f->db.safe_mode, 1);
	assert_contains(f->db.safe_reason, "cannot open");
	assert_contains(f->db.safe_reason, "directory");
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
}

/*
 * Read-only file or directory.  Root ignores modes, so as root the
 * open runs in a child that became nobody; the child only reports and
 * the asserts stay here.
 */
struct ro_result {
	int	 rc;
	int	 safe_mode;
	int	 have_h;
	int	 writable;
	int	 insert_rc;
	int	 version;
	char	 reason[512];
};

static int
drop_to_nobody(const char *dir, const char *path)
{
	struct passwd	*pw;
	uid_t		 uid = 65534;
	gid_t		 gid = 65534;

	if ((pw = getpwnam("nobody")) != NULL) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (chown(dir, uid, gid) == -1 || chown(path, uid, gid) == -1)
		return -1;
	if (setgroups(0, NULL) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1 || geteuid() == 0)
		return -1;
	return 0;
}

static void
run_readonly(struct fx *f, mode_t dirmode, mode_t filemode,
    const struct db_migration *m, size_t nm, struct ro_result *r)
{
	struct db	 db;
	char		 err[1024];
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], status;

	assert_int_equal(pipe(p), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		close(p[0]);
		memset(r, 0, sizeof(*r));
		r->rc = -2;
		if (geteuid() == 0 && drop_to_nobody(f->dir, f->path) == -1)
			_exit(3);
		if (chmod(f->path, filemode) == -1 ||
		    chmod(f->dir, dirmode) == -1)
			_exit(4);
		r->rc = db_open(&db, f->path, 0, BUSY_MS, m, nm);
		r->safe_mode = db.safe_mode;
		r->have_h = db.h != NULL;
		r->version = db.version;
		r->writable = db_writable(&db, err, sizeof(err));
		snprintf(r->reason, sizeof(r->reason), "%s", db.safe_reason);
		r->insert_rc = db.h == NULL ? -1 :
		    sqlite3_exec(db.h, "INSERT INTO a VALUES (1)", NULL, NULL,
		    NULL);
		db_close(&db);
		chmod(f->dir, 0700);
		chmod(f->path, 0600);
		n = write(p[1], r, sizeof(*r));
		_exit(n == (ssize_t)sizeof(*r) ? 0 : 5);
	}
	close(p[1]);
	assert_int_equal(read(p[0], r, sizeof(*r)), (ssize_t)sizeof(*r));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
make_db_a(struct fx *f)
{
	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_a, 1), 0);
	assert_healthy(f, 1);
	raw_exec(f->db.h, "INSERT INTO a VALUES (5)");
	db_close(&f->db);
}

static void
assert_still_a(struct fx *f)
{
	sqlite3	*h;

	h = raw_open(f->path);
	assert_int_equal(q_int(h, "SELECT count(*) FROM a"), 1);
	assert_int_equal(q_int(h, "SELECT x FROM a"), 5);
	assert_int_equal(table_exists(h, "b"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM schema_migrations"),
	    1);
	sqlite3_close(h);
}

static void
test_readonly_file(void **state)
{
	struct fx		*f = *state;
	struct ro_result	 r;

	make_db_a(f);
	run_readonly(f, 0700, 0400, mig_ab, 2, &r);
	/* Safe mode, or no handle at all: never a writable-looking db. */
	assert_true(r.rc == 0 || r.rc == -1);
	assert_int_equal(r.safe_mode, 1);
	assert_int_equal(r.writable, -1);
	assert_true(r.reason[0] != '\0');
	assert_contains(r.reason, "read-only");
	assert_int_not_equal(r.insert_rc, SQLITE_OK);
	assert_still_a(f);
}

/* Nothing to migrate: the file's mode alone must be noticed. */
static void
test_readonly_file_current(void **state)
{
	struct fx		*f = *state;
	struct ro_result	 r;

	make_db_a(f);
	run_readonly(f, 0700, 0400, mig_a, 1, &r);
	assert_true(r.rc == 0 || r.rc == -1);
	assert_int_equal(r.safe_mode, 1);
	assert_int_equal(r.writable, -1);
	assert_contains(r.reason, "read-only");
	assert_int_not_equal(r.insert_rc, SQLITE_OK);
	assert_still_a(f);
}

static void
test_readonly_dir(void **state)
{
	struct fx		*f = *state;
	struct ro_result	 r;

	make_db_a(f);
	run_readonly(f, 0500, 0600, mig_ab, 2, &r);
	assert_true(r.rc == 0 || r.rc == -1);
	assert_int_equal(r.safe_mode, 1);
	assert_int_equal(r.writable, -1);
	assert_true(r.reason[0] != '\0');
	assert_int_not_equal(r.insert_rc, SQLITE_OK);
	assert_still_a(f);
}

/* ---- words for the user -------------------------------------------------- */

static void
test_strerror(void **state)
{
	struct fx	*f = *state;

	(void)f;
	assert_contains(db_strerror(&f->db, SQLITE_FULL), "disk is full");
	assert_contains(db_strerror(&f->db, SQLITE_FULL), "nothing stored "
	    "was lost");
	assert_contains(db_strerror(&f->db, SQLITE_BUSY), "locked");
	assert_contains(db_strerror(&f->db, SQLITE_BUSY_SNAPSHOT), "locked");
	assert_contains(db_strerror(&f->db, SQLITE_LOCKED), "locked");
	assert_contains(db_strerror(&f->db, SQLITE_CORRUPT), "corrupt");
	assert_contains(db_strerror(&f->db, SQLITE_CORRUPT_INDEX), "corrupt");
	assert_contains(db_strerror(&f->db, SQLITE_NOTADB), "corrupt");
	assert_contains(db_strerror(&f->db, SQLITE_READONLY), "read-only");
	assert_contains(db_strerror(&f->db, SQLITE_READONLY_DBMOVED),
	    "read-only");
	assert_contains(db_strerror(&f->db, SQLITE_CANTOPEN), "directory");
	assert_contains(db_strerror(&f->db, SQLITE_IOERR_WRITE), "I/O error");
	/* Anything else: SQLite's own words. */
	assert_null(f->db.h);
	assert_string_equal(db_strerror(&f->db, SQLITE_MISMATCH),
	    sqlite3_errstr(SQLITE_MISMATCH));
}

/* An image of a WAL database, deserialized: unreadable until it is made
 * a rollback-journal one; other images are left as they are. */
static int
image_count(const uint8_t *img, sqlite3_int64 size)
{
	sqlite3		*h;
	sqlite3_stmt	*st;
	uint8_t		*copy;
	int		 n = -1;

	assert_non_null(copy = sqlite3_malloc64((sqlite3_uint64)size));
	memcpy(copy, img, (size_t)size);
	assert_int_equal(sqlite3_open(":memory:", &h), SQLITE_OK);
	assert_int_equal(sqlite3_deserialize(h, "main", copy, size, size,
	    SQLITE_DESERIALIZE_READONLY | SQLITE_DESERIALIZE_FREEONCLOSE),
	    SQLITE_OK);
	if (sqlite3_prepare_v2(h, "SELECT count(*) FROM a", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return n;
}

static void
test_image_unwal(void **state)
{
	struct fx	*f = *state;
	sqlite3_int64	 size = 0;
	uint8_t		*img, head[100];

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_a, 1), 0);
	raw_exec(f->db.h, "INSERT INTO a VALUES (1), (2)");
	assert_non_null(img = sqlite3_serialize(f->db.h, "main", &size, 0));
	assert_true(size >= 100);
	assert_int_equal(img[18], 2);
	assert_int_equal(image_count(img, size), -1);

	db_image_unwal(img, (size_t)size);
	assert_int_equal(img[18], 1);
	assert_int_equal(img[19], 1);
	assert_int_equal(image_count(img, size), 2);
	db_image_unwal(img, (size_t)size);	/* once is enough */
	assert_int_equal(image_count(img, size), 2);
	sqlite3_free(img);

	/* Too short to be a database, or NULL: untouched. */
	memset(head, 2, sizeof(head));
	db_image_unwal(head, sizeof(head) - 1);
	assert_int_equal(head[18], 2);
	db_image_unwal(NULL, 4096);
}

/* The connections of db_open and db_image_open alike. */
static void
assert_hardened(sqlite3 *h)
{
	int	 on = -1;

	assert_int_equal(sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, -1,
	    &on), SQLITE_OK);
	assert_int_equal(on, 1);
	assert_int_equal(q_int(h, "PRAGMA cell_size_check"), 1);
}

/* The schema cannot be rewritten by hand through writable_schema. */
static int
schema_rewrite(sqlite3 *h)
{
	raw_exec(h, "PRAGMA writable_schema=ON");
	return sqlite3_exec(h, "UPDATE sqlite_schema SET sql = "
	    "'CREATE TABLE a(y)' WHERE name = 'a'", NULL, NULL, NULL);
}

static void
test_hardened(void **state)
{
	struct fx	*f = *state;
	uint8_t		*img;
	size_t		 size;
	sqlite3		*h;
	char		 scratch[PATH_MAX];

	/* Without db_harden, SQLite lets it through. */
	snprintf(scratch, sizeof(scratch), "%s/scratch.db", f->dir);
	h = raw_open(scratch);
	raw_exec(h, "CREATE TABLE a(x)");
	assert_int_equal(schema_rewrite(h), SQLITE_OK);
	sqlite3_close(h);

	assert_int_equal(db_open(&f->db, f->path, 0, BUSY_MS, mig_a, 1), 0);
	assert_int_equal(f->db.safe_mode, 0);
	assert_hardened(f->db.h);
	assert_int_not_equal(schema_rewrite(f->db.h), SQLITE_OK);
	assert_int_equal(q_int(f->db.h, "SELECT count(*) FROM sqlite_schema "
	    "WHERE sql = 'CREATE TABLE a(x)'"), 1);

	/* An image of it, opened as keyd opens a backup's. */
	assert_non_null(img = db_image(f->db.h, &size));
	assert_int_equal(img[18], 1);		/* not WAL any more */
	assert_non_null(h = db_image_open(img, size));
	assert_int_equal(q_int(h, "SELECT count(*) FROM a"), 0);
	assert_hardened(h);
	sqlite3_close(h);
	sqlite3_free(img);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fresh_security),
		T(test_fresh_config),
		T(test_fresh_mode_ignores_umask),
		T(test_rerun),
		T(test_incremental),
		T(test_failing_migration),
		T(test_partial_migration_rolled_back),
		T(test_audit_append_only),
		T(test_policies_check),
		T(test_newer_schema),
		T(test_corrupt_file),
		T(test_locked_file),
		T(test_locked_before_migration),
		T(test_no_directory),
		T(test_readonly_file),
		T(test_readonly_file_current),
		T(test_readonly_dir),
		T(test_strerror),
		T(test_image_unwal),
		T(test_hardened),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
