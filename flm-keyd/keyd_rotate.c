/*
 * flm security master-key rotate: a new master key, and everything the
 * old one sealed or MAC'd moved under it -- key and policy row MACs,
 * TLS and ACME account keys, engine secrets, the audit head; the audit
 * rows chained so far become a segment whose key is kept sealed under
 * the new master key (keyd_audit.c), so the trail verifies across it.
 *
 * Crash safety: the new key (master.key.new) and the anchor under the
 * new audit key (audit.anchor.new) are written and synced first; the
 * database transaction, which also records the new key's id in
 * keyd_state, is the commit point; the staged files are renamed into
 * place after it, the old key file overwritten.  A crash before the
 * commit leaves the old key and the old rows; the next start removes
 * what was staged.  A crash after it leaves a database under the new
 * key: the next start finds that and finishes the renames
 * (keyd_rotate_finish), before the key is read.
 *
 * A key from the kernel keyring is rotated the same way, the keyring
 * key updated where the key file would be replaced (master.key.new is
 * the staged key either way); a key from systemd credentials is the
 * admin's to replace.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cover.h"
#include "db.h"
#include "fileio.h"
#include "keyd.h"
#include "log.h"

#define ROT_KEY_NEW	KEYD_MASTER_FILE ".new"
#define ROT_ANCHOR	"audit.anchor"
#define ROT_ANCHOR_NEW	"audit.anchor.new"
#define ROT_STATE	"master_key_id"
#define ROT_HEX		(KEYD_MASTER_LEN * 2)

static unsigned char	*rot_next;	/* the new key, locked */
static const char	*rot_crash;	/* tests: where to die (user mode) */

/* Before the sandbox: locked memory needs mlock. */
void
keyd_rotate_init(int user_mode)
{
	if ((rot_next = sodium_malloc(KEYD_MASTER_LEN)) == NULL)
		fatalx("cannot allocate locked memory for a new master key");
	/* A crash at each step, as kill -9 would leave it: for the tests
	 * of a user-mode suite only, whose user owns every file anyway. */
	if (user_mode)
		rot_crash = getenv("FLM_TEST_ROTATE_CRASH");
}

void
keyd_rotate_free(void)
{
	sodium_free(rot_next);
	rot_next = NULL;
}

static void
rot_step(const char *step)
{
	if (rot_crash != NULL && strcmp(rot_crash, step) == 0) {
		log_warnx("FLM_TEST_ROTATE_CRASH: dying after step %s", step);
		COVER_DUMP();
		_exit(99);
	}
}

/* The old key file's bytes overwritten, the new file renamed over it. */
static int
rot_swap_key(const char *dir)
{
	char	 from[PATH_MAX], to[PATH_MAX], zero[ROT_HEX + 1];
	int	 fd, rc;

	snprintf(from, sizeof(from), "%s/%s", dir, ROT_KEY_NEW);
	snprintf(to, sizeof(to), "%s/%s", dir, KEYD_MASTER_FILE);
	/* Opened before the rename: then its blocks are the old key's. */
	fd = open(to, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if ((rc = rename(from, to)) == 0 && fd != -1) {
		memset(zero, 0, sizeof(zero));
		if (write(fd, zero, sizeof(zero)) != (ssize_t)sizeof(zero) ||
		    fsync(fd) == -1)
			log_warn("the old master key's bytes were not "
			    "overwritten");
	}
	if (fd != -1)
		close(fd);
	return rc;
}

/* The staged key wiped and removed. */
static void
rot_drop_staged(const char *dir)
{
	char	 path[PATH_MAX], zero[ROT_HEX + 1];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, ROT_KEY_NEW);
	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		memset(zero, 0, sizeof(zero));
		(void)!write(fd, zero, sizeof(zero));
		(void)fsync(fd);
		close(fd);
	}
	unlink(path);
}

/*
 * The new key where the old one is kept: the key file replaced, or the
 * keyring key updated and the staged file dropped.  A keyring that
 * refuses keeps master.key.new, which the next start tries again with.
 */
static int
rot_place_key(const char *dir, const unsigned char *key)
{
	if (keyd_master_keyring_id() == -1)
		return rot_swap_key(dir);
	if (keyd_master_keyring_update(key) == -1) {
		log_warn("the kernel keyring key was not updated; %s/%s holds "
		    "the master key until it is", dir, ROT_KEY_NEW);
		return 0;
	}
	rot_drop_staged(dir);
	return 0;
}

/*
 * The staged files into place, in an order each step of which a later
 * start can finish: the anchor; the backups kept, sealed again from the
 * old backup key to the new while the old key is still kept; the key.
 * How many backups were sealed again.
 */
static int
rot_finish_files(const char *dir, int live, const unsigned char *oldbk,
    const unsigned char *newbk, const unsigned char *key)
{
	char	 from[PATH_MAX], to[PATH_MAX];
	int	 n;

	snprintf(from, sizeof(from), "%s/%s", dir, ROT_ANCHOR_NEW);
	snprintf(to, sizeof(to), "%s/%s", dir, ROT_ANCHOR);
	if (rename(from, to) == -1 && errno != ENOENT)
		fatal("rename %s", from);
	if (live)
		rot_step("anchor");
	snprintf(from, sizeof(from), "%s/%s", dir, KEYD_BACKUP_DIR);
	n = keyd_backup_rekey(from, oldbk, newbk);
	if (live)
		rot_step("backups");
	if (rot_place_key(dir, key) == -1 && errno != ENOENT)
		fatal("rename %s/%s", dir, ROT_KEY_NEW);
	(void)fileio_sync_dir(dir);
	return n;
}

/* 32 bytes from a key file of 64 hex digits: 0, or -1. */
static int
rot_read_key(const char *path, unsigned char key[KEYD_MASTER_LEN])
{
	char	 hex[ROT_HEX + 2];
	size_t	 bin;
	ssize_t	 n;
	int	 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, hex, sizeof(hex));
	close(fd);
	if (n >= ROT_HEX && sodium_hex2bin(key, KEYD_MASTER_LEN, hex, ROT_HEX,
	    NULL, &bin, NULL) == 0 && bin == KEYD_MASTER_LEN)
		rc = 0;
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

static void
rot_discard(const char *dir)
{
	char	 path[PATH_MAX];

	rot_drop_staged(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, ROT_ANCHOR_NEW);
	unlink(path);
	(void)fileio_sync_dir(dir);
}

/* The id keyd_state says the sealed rows are under, or "". */
static void
rot_db_id(sqlite3 *h, char out[KEYD_MASTER_ID_LEN + 1])
{
	sqlite3_stmt	*st;

	out[0] = '\0';
	if (sqlite3_prepare_v2(h, "SELECT value FROM keyd_state WHERE name = '"
	    ROT_STATE "'", -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, KEYD_MASTER_ID_LEN + 1, "%s",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/*
 * At start, before the master key file is read: a rotation that
 * committed is finished (its database is under the new key), one that
 * did not is abandoned.
 */
void
keyd_rotate_finish(const char *dir)
{
	char		 path[PATH_MAX];
	char		 want[KEYD_MASTER_ID_LEN + 1];
	char		 have[KEYD_MASTER_ID_LEN + 1];
	unsigned char	 key[KEYD_MASTER_LEN], old[KEYD_MASTER_LEN];
	unsigned char	 newbk[KEYD_MASTER_LEN], oldbk[KEYD_MASTER_LEN];
	sqlite3		*h = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, ROT_KEY_NEW);
	if (access(path, F_OK) == -1)
		return;
	if (rot_read_key(path, key) == -1) {
		log_warnx("%s is not a key: an unfinished rotation, "
		    "abandoned", path);
		rot_discard(dir);
		return;
	}
	keyd_master_id_of(key, want);
	snprintf(path, sizeof(path), "%s/%s", dir, KEYD_DB_NAME);
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK)
		rot_db_id(h, have);
	else
		have[0] = '\0';
	sqlite3_close(h);
	if (strcmp(want, have) != 0) {
		sodium_memzero(key, sizeof(key));
		rot_discard(dir);
		log_warnx("a master-key rotation that had not committed was "
		    "abandoned: the master key stays as it was");
		return;
	}
	keyd_backup_key_of(key, newbk);
	snprintf(path, sizeof(path), "%s/%s", dir, KEYD_MASTER_FILE);
	/* The old key gone already: the backups were done before.  The
	 * keyring's key, read before this, is the old one or the new. */
	if (keyd_master_keyring_id() != -1) {
		keyd_master_export(old);
		keyd_backup_key_of(old, oldbk);
	} else if (rot_read_key(path, old) == 0)
		keyd_backup_key_of(old, oldbk);
	else
		memcpy(oldbk, newbk, sizeof(oldbk));
	rot_finish_files(dir, 0, oldbk, newbk, key);
	if (keyd_master_keyring_id() != -1)
		keyd_master_adopt(key);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(old, sizeof(old));
	sodium_memzero(newbk, sizeof(newbk));
	sodium_memzero(oldbk, sizeof(oldbk));
	log_info("a master-key rotation that had committed was finished: "
	    "the master key is now %s", want);
}

/* After the database opens: its rows' key id noted, or checked. */
void
keyd_rotate_note(struct db *db)
{
	sqlite3_stmt	*st;
	char		 mine[KEYD_MASTER_ID_LEN + 1];
	char		 have[KEYD_MASTER_ID_LEN + 1];

	if (db->h == NULL || db->safe_mode)
		return;
	keyd_master_id(mine);
	rot_db_id(db->h, have);
	if (strcmp(have, mine) == 0)
		return;
	if (have[0] != '\0') {
		log_warnx("security.db was sealed under master key %s, and "
		    "keyd's is %s: its rows will fail their MACs; see "
		    "flm-keyd(8), RECOVERY", have, mine);
		return;
	}
	if (sqlite3_prepare_v2(db->h, "INSERT INTO keyd_state (name, value) "
	    "VALUES ('" ROT_STATE "', ?)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, mine, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("security.db: cannot note the master key's id");
	sqlite3_finalize(st);
}

static int
rot_write_key(const unsigned char *key)
{
	char	 hex[ROT_HEX + 2];
	int	 fd, ok;

	sodium_bin2hex(hex, sizeof(hex), key, KEYD_MASTER_LEN);
	hex[ROT_HEX] = '\n';
	if ((fd = open(ROT_KEY_NEW, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		sodium_memzero(hex, sizeof(hex));
		return -1;
	}
	ok = write(fd, hex, ROT_HEX + 1) == ROT_HEX + 1 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	sodium_memzero(hex, sizeof(hex));
	return ok ? 0 : -1;
}

/* Everything moved under the new key, inside the transaction. */
static int
rot_reseal(struct db *db, struct json_object *res, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	char		 id[KEYD_MASTER_ID_LEN + 1];
	int		 n, rc;

	if ((rc = keyd_rows_remaster(db, &n)) != SQLITE_OK)
		goto dberr;
	json_object_object_add(res, "key_rows", json_object_new_int(n));
	if ((rc = keyd_tls_remaster(db, &n)) != SQLITE_OK)
		goto dberr;
	json_object_object_add(res, "tls_keys", json_object_new_int(n));
	if (keyd_secrets_remaster(db, &n, err, errsz) == -1)
		return -1;
	json_object_object_add(res, "secrets", json_object_new_int(n));
	if (keyd_audit_remaster(db, err, errsz) == -1)
		return -1;
	if ((rc = keyd_legacy_key_seal(db)) != SQLITE_OK)
		goto dberr;
	keyd_master_id(id);
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT OR REPLACE INTO keyd_state "
	    "(name, value) VALUES ('" ROT_STATE "', ?)", -1, &st, NULL)) !=
	    SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto dberr;
	json_object_object_add(res, "master_key_id",
	    json_object_new_string(id));
	return 0;
dberr:
	snprintf(err, errsz, "security.db: %s", db_strerror(db, rc));
	return -1;
}

int
keyd_master_rotate(struct db *db, struct json_object **res, char *err,
    size_t errsz)
{
	unsigned char	 oldbk[KEYD_MASTER_LEN], newbk[KEYD_MASTER_LEN];
	unsigned char	 key[KEYD_MASTER_LEN];
	int		 rc, n;

	*res = NULL;
	if (!keyd_master_replaceable() && keyd_master_keyring_id() == -1) {
		snprintf(err, errsz, "keyd's master key comes from %s, which "
		    "keyd cannot replace: rotate it where it is kept, see "
		    "flm-keyd(8)", keyd_master_source());
		return -1;
	}
	/* The keyring key rewritten with its own value: one that may not
	 * be updated is found before anything is staged. */
	if (keyd_master_keyring_id() != -1) {
		keyd_master_export(key);
		rc = keyd_master_keyring_update(key);
		sodium_memzero(key, sizeof(key));
		if (rc == -1) {
			snprintf(err, errsz, "the kernel keyring key %s cannot "
			    "be updated by keyd (%s): give its possessor the "
			    "write permission (keyctl setperm); the master key "
			    "was not rotated", "flm:master", strerror(errno));
			return -1;
		}
	}
	if (db_writable(db, err, errsz) == -1)
		return -1;
	randombytes_buf(rot_next, KEYD_MASTER_LEN);
	if (rot_write_key(rot_next) == -1) {
		snprintf(err, errsz, "cannot write %s: %s; the master key was "
		    "not rotated", ROT_KEY_NEW, strerror(errno));
		unlink(ROT_KEY_NEW);
		return -1;
	}
	keyd_master_switch(rot_next);
	sodium_memzero(rot_next, KEYD_MASTER_LEN);
	if (keyd_anchor_restage(ROT_ANCHOR_NEW) == -1) {
		snprintf(err, errsz, "cannot write %s; the master key was not "
		    "rotated", ROT_ANCHOR_NEW);
		goto undo;
	}
	rot_step("staged");
	*res = json_object_new_object();
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		snprintf(err, errsz, "security.db: %s", db_strerror(db, rc));
		goto undo;
	}
	if (rot_reseal(db, *res, err, errsz) == -1)
		goto rollback;
	rot_step("sealed");
	if ((rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		snprintf(err, errsz, "security.db: %s", db_strerror(db, rc));
		goto rollback;
	}
	rot_step("committed");
	/* The kept backups follow the key, else they would be lost. */
	keyd_prev_derive(KEYD_DERIVE_BACKUP, 0, oldbk);
	keyd_backup_key(newbk);
	keyd_master_export(key);
	n = rot_finish_files(".", 1, oldbk, newbk, key);
	sodium_memzero(key, sizeof(key));
	json_object_object_add(*res, "backups", json_object_new_int(n));
	sodium_memzero(oldbk, sizeof(oldbk));
	sodium_memzero(newbk, sizeof(newbk));
	keyd_master_forget();
	log_info("master key rotated: now %s", json_object_get_string(
	    json_object_object_get(*res, "master_key_id")));
	return 0;
rollback:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
undo:
	json_object_put(*res);
	*res = NULL;
	keyd_master_back();
	rot_discard(".");
	return -1;
}
