/*
 * The audit chain's anchor outside security.db: a small file in keyd's
 * directory, audit.anchor, with the newest row keyd has seen and its
 * link, under a MAC (docs/DB_SCHEMA.md).  It only moves forward.  A
 * security.db restored from a copy, or one whose rows and head were all
 * deleted, starts a chain that verifies by itself; against the anchor
 * it shows: fewer rows, or another link at the anchor's row.
 *
 * keyd then keeps serving (refusing keys would punish the users, not
 * the intruder) but says so loudly: in the log, in flm status and in
 * flm audit verify, which fails.  The anchor is frozen with what was
 * seen until the admin, having looked, moves it aside (flm-keyd(8)).
 * The head also goes to the log every so often, so a copy lives off
 * the machine where syslog is shipped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "db.h"
#include "keyd.h"
#include "log.h"

#define ANCHOR_FILE	"audit.anchor"
#define ANCHOR_TMP	"audit.anchor.tmp"
#define ANCHOR_MAGIC1	"flm-audit-anchor-1"
#define ANCHOR_MAGIC	"flm-audit-anchor-2"	/* and the restore */
#define ANCHOR_LOG_SECS	300	/* the head to the log, at most this often */

struct anchor {
	int64_t		 last_id;
	uint8_t		 link[KEYD_CHAIN_LEN];
	int64_t		 since_id;	/* rows up to it predate the anchor */
	int64_t		 since;		/* when it was started, unix time */
	int64_t		 rollback;	/* -1, or the database's id when seen */
	int64_t		 restored;	/* 0, or the restored backup's time */
	int64_t		 restored_at;	/* when flm backup restore ran */
	int		 v1;		/* read from a version 1 file */
	uint8_t		 mac[KEYD_CHAIN_LEN];
};

enum anchor_state {
	ANCHOR_UNKNOWN,		/* no database to hold it against */
	ANCHOR_OK,
	ANCHOR_ROLLBACK,
	ANCHOR_ALTERED
};

static const char *const anchor_names[] = {
	[ANCHOR_UNKNOWN] = "unknown",
	[ANCHOR_OK] = "ok",
	[ANCHOR_ROLLBACK] = "rollback",
	[ANCHOR_ALTERED] = "altered",
};

static struct anchor		 anc;
static enum anchor_state	 anc_state = ANCHOR_UNKNOWN;
static char			 anc_msg[256];
static int64_t			 logged_id = -1;
static time_t			 logged_at;

static void
anchor_mac(const struct anchor *a, const unsigned char *key,
    uint8_t out[KEYD_CHAIN_LEN])
{
	crypto_generichash_state	 h;
	const char			*magic = a->v1 ? ANCHOR_MAGIC1 :
					    ANCHOR_MAGIC;

	crypto_generichash_init(&h, key, KEYD_MASTER_LEN, KEYD_CHAIN_LEN);
	crypto_generichash_update(&h, (const uint8_t *)magic, strlen(magic));
	keyd_mac_i64(&h, a->last_id);
	crypto_generichash_update(&h, a->link, KEYD_CHAIN_LEN);
	keyd_mac_i64(&h, a->since_id);
	keyd_mac_i64(&h, a->since);
	keyd_mac_i64(&h, a->rollback);
	if (!a->v1) {
		keyd_mac_i64(&h, a->restored);
		keyd_mac_i64(&h, a->restored_at);
	}
	crypto_generichash_final(&h, out, KEYD_CHAIN_LEN);
}

int
keyd_anchor_exists(void)
{
	return access(ANCHOR_FILE, F_OK) == 0;
}

/* 1 and *a, 0 if there is none, -1 if it is malformed or its MAC fails. */
static int
anchor_read(struct anchor *a)
{
	char		 buf[512], magic[32], link[80], mac[80];
	uint8_t		 want[KEYD_CHAIN_LEN];
	long long	 last, since_id, since, rollback, restored = 0;
	long long	 restored_at = 0;
	ssize_t		 n;
	size_t		 bin;
	int		 fd, ok;

	memset(a, 0, sizeof(*a));
	if ((fd = open(ANCHOR_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (strncmp(buf, ANCHOR_MAGIC1 " ", sizeof(ANCHOR_MAGIC1)) == 0) {
		a->v1 = 1;
		ok = sscanf(buf, "%31s %lld %79s %lld %lld %lld %79s", magic,
		    &last, link, &since_id, &since, &rollback, mac) == 7;
	} else
		ok = sscanf(buf, "%31s %lld %79s %lld %lld %lld %lld %lld "
		    "%79s", magic, &last, link, &since_id, &since, &rollback,
		    &restored, &restored_at, mac) == 9 &&
		    strcmp(magic, ANCHOR_MAGIC) == 0;
	if (!ok ||
	    sodium_hex2bin(a->link, sizeof(a->link), link, strlen(link), NULL,
	    &bin, NULL) != 0 || bin != KEYD_CHAIN_LEN ||
	    sodium_hex2bin(a->mac, sizeof(a->mac), mac, strlen(mac), NULL,
	    &bin, NULL) != 0 || bin != KEYD_CHAIN_LEN)
		return -1;
	a->last_id = last;
	a->since_id = since_id;
	a->since = since;
	a->rollback = rollback;
	a->restored = restored;
	a->restored_at = restored_at;
	anchor_mac(a, keyd_audit_key(), want);
	return sodium_memcmp(want, a->mac, KEYD_CHAIN_LEN) == 0 ? 1 : -1;
}

/* path's text for a, MAC'd under key (always version 2). */
static int
anchor_format(struct anchor *a, const unsigned char *key, char *buf,
    size_t sz)
{
	char	 link[KEYD_CHAIN_LEN * 2 + 1], mac[sizeof(link)];

	a->v1 = 0;
	anchor_mac(a, key, a->mac);
	sodium_bin2hex(link, sizeof(link), a->link, KEYD_CHAIN_LEN);
	sodium_bin2hex(mac, sizeof(mac), a->mac, KEYD_CHAIN_LEN);
	return snprintf(buf, sz, "%s %" PRId64 " %s %" PRId64 " %" PRId64
	    " %" PRId64 " %" PRId64 " %" PRId64 " %s\n", ANCHOR_MAGIC,
	    a->last_id, link, a->since_id, a->since, a->rollback, a->restored,
	    a->restored_at, mac);
}

/* A synced file: 0, or -1 (nothing left behind). */
static int
anchor_put(const char *path, const char *buf, int len)
{
	int	 fd, ok = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) != -1) {
		ok = write(fd, buf, (size_t)len) == len && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
	}
	if (!ok)
		unlink(path);
	return ok ? 0 : -1;
}

/* Whole or not at all: a temporary file, synced, renamed over. */
static void
anchor_write(struct anchor *a)
{
	char	 buf[512];
	int	 fd, len;

	len = anchor_format(a, keyd_audit_key(), buf, sizeof(buf));
	if (anchor_put(ANCHOR_TMP, buf, len) == -1 ||
	    rename(ANCHOR_TMP, ANCHOR_FILE) == -1) {
		log_warn("cannot write %s", ANCHOR_FILE);
		unlink(ANCHOR_TMP);
		return;
	}
	/* The rename itself, on disk. */
	if ((fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
}

static void
anchor_rollback(int64_t dbid)
{
	anc_state = ANCHOR_ROLLBACK;
	snprintf(anc_msg, sizeof(anc_msg), "rollback or deletion detected: "
	    "anchor at id %" PRId64 ", database at %" PRId64, anc.last_id,
	    dbid);
	log_warnx("audit trail: %s (security.db was restored from an older "
	    "copy, or rows were deleted); see flm-keyd(8)", anc_msg);
}

/* Does the database still hold the chain the anchor saw?  0, or -1
 * and a rollback recorded (the anchor frozen with it). */
static int
anchor_hold(struct db *db)
{
	struct keyd_audit_pos	 pos;
	uint8_t			 link[KEYD_CHAIN_LEN];
	int			 have;

	/* An altered head is verify's to report; the anchor waits. */
	if ((have = keyd_audit_pos(db, &pos)) == -1 ||
	    (have == 0 && anc.last_id == 0))
		return 0;
	if (have == 1 && pos.last_id >= anc.last_id &&
	    (keyd_audit_link(db, anc.last_id, link) == 0 ?
	    sodium_memcmp(link, anc.link, KEYD_CHAIN_LEN) == 0 :
	    anc.last_id <= pos.archived_through)) {
		/* Not found but archived: inside a file, verify walks it. */
		if (pos.last_id != anc.last_id) {
			anc.last_id = pos.last_id;
			memcpy(anc.link, pos.last_chain, KEYD_CHAIN_LEN);
			anchor_write(&anc);
		}
		return 0;
	}
	anc.rollback = have == 1 ? pos.last_id : 0;
	anchor_write(&anc);
	anchor_rollback(anc.rollback);
	return -1;
}

/* At start, once security.db is open and its chain begun. */
void
keyd_anchor_start(struct db *db)
{
	struct keyd_audit_pos	 pos;
	int			 r;

	if (db->h == NULL)
		return;
	if ((r = anchor_read(&anc)) == -1) {
		anc_state = ANCHOR_ALTERED;
		snprintf(anc_msg, sizeof(anc_msg), "%s is malformed or its MAC "
		    "does not match (altered, or made under another master "
		    "key)", ANCHOR_FILE);
		log_warnx("audit trail: %s; see flm-keyd(8)", anc_msg);
		return;
	}
	if (r == 0) {
		if (keyd_audit_pos(db, &pos) != 1)
			memset(&pos, 0, sizeof(pos));
		memset(&anc, 0, sizeof(anc));
		anc.last_id = anc.since_id = pos.last_id;
		memcpy(anc.link, pos.last_chain, KEYD_CHAIN_LEN);
		anc.since = (int64_t)time(NULL);
		anc.rollback = -1;
		if (db->safe_mode)
			return;
		anchor_write(&anc);
		if (anc.since_id > 0)
			log_warnx("audit trail: no anchor until now; one starts "
			    "at row %" PRId64 ": a rollback before it cannot be "
			    "ruled out", anc.since_id);
		anc_state = ANCHOR_OK;
		return;
	}
	if (anc.rollback >= 0) {
		anchor_rollback(anc.rollback);
		return;
	}
	if (anchor_hold(db) == 0)
		anc_state = ANCHOR_OK;
}

/* On the flush timer: the anchor moved on, the head logged now and
 * then.  1 when the state changed (flmd should hear of it). */
int
keyd_anchor_tick(struct db *db)
{
	time_t	 now = time(NULL);
	char	 hex[17];

	if (anc_state != ANCHOR_OK || db->h == NULL || db->safe_mode)
		return 0;
	if (anchor_hold(db) == -1)
		return 1;
	if (anc.last_id != logged_id && now - logged_at >= ANCHOR_LOG_SECS) {
		sodium_bin2hex(hex, sizeof(hex), anc.link, 8);
		log_info("audit head: row %" PRId64 ", link %s...", anc.last_id,
		    hex);
		logged_id = anc.last_id;
		logged_at = now;
	}
	return 0;
}

/*
 * flm backup restore: the anchor of the restored database, staged as
 * path, under the audit key the restored suite will have.  It starts at
 * the restored head (the backup vouches for the rows before it) and
 * says which backup it came from, so verify reports a restore, not a
 * rollback.
 */
int
keyd_anchor_stage(const char *path, int64_t last_id,
    const uint8_t link[KEYD_CHAIN_LEN], int64_t restored,
    const unsigned char *auditkey)
{
	struct anchor	 a;
	char		 buf[512];

	memset(&a, 0, sizeof(a));
	a.last_id = last_id;
	memcpy(a.link, link, KEYD_CHAIN_LEN);
	a.since = a.restored_at = (int64_t)time(NULL);
	a.rollback = -1;
	a.restored = restored;
	return anchor_put(path, buf, anchor_format(&a, auditkey, buf,
	    sizeof(buf)));
}

/*
 * A master-key rotation: the anchor as it stands, MAC'd under the new
 * audit key, staged as path (renamed into place once the rotation
 * commits).  1 staged, 0 nothing to stage (no anchor read, or one
 * already reported altered), -1 on error.
 */
int
keyd_anchor_restage(const char *path)
{
	struct anchor	 a = anc;
	char		 buf[512];

	if (anc_state != ANCHOR_OK && anc_state != ANCHOR_ROLLBACK)
		return 0;
	return anchor_put(path, buf, anchor_format(&a, keyd_audit_key(), buf,
	    sizeof(buf))) == 0 ? 1 : -1;
}

/* For flm status: the integrity object of DB_STATE. */
void
keyd_anchor_state(struct json_object *in)
{
	json_object_object_add(in, "audit_anchor",
	    json_object_new_string(anchor_names[anc_state]));
	if (anc_state == ANCHOR_ROLLBACK || anc_state == ANCHOR_ALTERED)
		json_object_object_add(in, "audit_problem",
		    json_object_new_string(anc_msg));
}

/*
 * For flm audit verify: the anchor, and what it cannot rule out.  The
 * problem to report, or NULL.
 */
const char *
keyd_anchor_verify(struct json_object *res)
{
	struct json_object	*o = json_object_new_object();
	char			 when[32], warn[200];

	json_object_object_add(o, "state",
	    json_object_new_string(anchor_names[anc_state]));
	if (anc_state == ANCHOR_OK || anc_state == ANCHOR_ROLLBACK) {
		keyd_iso((time_t)anc.since, 0, when, sizeof(when));
		json_object_object_add(o, "last_id",
		    json_object_new_int64(anc.last_id));
		json_object_object_add(o, "since_id",
		    json_object_new_int64(anc.since_id));
		json_object_object_add(o, "since", json_object_new_string(when));
		if (anc.restored > 0) {
			char	 from[32], at[32], note[160];

			keyd_iso((time_t)anc.restored, 0, from, sizeof(from));
			keyd_iso((time_t)anc.restored_at, 0, at, sizeof(at));
			snprintf(note, sizeof(note), "restored from the backup "
			    "of %s on %s", from, at);
			json_object_object_add(res, "restored",
			    json_object_new_string(note));
		}
		if (anc.since_id > 0) {
			snprintf(warn, sizeof(warn), "the anchor was started "
			    "at row %" PRId64 " on %s: a rollback before it "
			    "cannot be ruled out", anc.since_id, when);
			json_object_object_add(res, "warning",
			    json_object_new_string(warn));
		}
	} else
		json_object_object_add(res, "warning", json_object_new_string(
		    "no audit anchor: a rollback cannot be ruled out"));
	json_object_object_add(res, "anchor", o);
	return anc_state == ANCHOR_ROLLBACK || anc_state == ANCHOR_ALTERED ?
	    anc_msg : NULL;
}
