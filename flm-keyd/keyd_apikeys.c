/*
 * API keys in security.db: created here, verified here, and nowhere
 * else.  Only Argon2id encoded hashes are stored; the key text exists
 * in keyd only while it is made or checked, then is wiped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "apikey.h"
#include "db.h"
#include "jsonbuf.h"
#include "keycache.h"
#include "keyd.h"
#include "log.h"

#define KEYD_GRACE_MAX	(30 * 86400)	/* rotation overlap, at most */

/* Times are stored as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ": they sort as text. */
void
keyd_iso(time_t t, long ms, char *buf, size_t sz)
{
	struct tm	 tm;
	size_t		 n;

	gmtime_r(&t, &tm);
	n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sz - n, ".%03ldZ", ms);
}

void
keyd_now(char *buf, size_t sz)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	keyd_iso(ts.tv_sec, ts.tv_nsec / 1000000, buf, sz);
}

static time_t
keyd_epoch(const char *iso)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (iso == NULL || strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/* A duration: N followed by s, m, h, d or w.  -1 if it is not one. */
static long
keyd_duration(const char *s)
{
	char	*end;
	long	 n;

	if (*s < '0' || *s > '9')
		return -1;
	n = strtol(s, &end, 10);
	if (n < 0 || n > 100L * 365 * 86400 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 's':	return n;
	case 'm':	return n * 60;
	case 'h':	return n * 3600;
	case 'd':	return n * 86400;
	case 'w':	return n * 7 * 86400;
	default:	return -1;
	}
}

/* WHEN: a duration from now, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC). */
int
keyd_parse_when(const char *when, time_t now, time_t *out)
{
	struct tm	 tm;
	const char	*end;
	long		 d;

	if ((d = keyd_duration(when)) >= 0) {
		*out = now + d;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(when, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL &&
	    (strcmp(end, "Z") == 0 || *end == '\0')) {
		*out = timegm(&tm);
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(when, "%Y-%m-%d", &tm)) != NULL && *end == '\0') {
		*out = timegm(&tm);
		return 0;
	}
	return -1;
}

/* The same, but a duration reaches back: --since 1h, --before 30d. */
int
keyd_parse_since(const char *when, time_t now, time_t *out)
{
	long	 d;

	if ((d = keyd_duration(when)) >= 0) {
		*out = now - d;
		return 0;
	}
	return keyd_parse_when(when, now, out);
}

/* The Argon2id encoded hash of len bytes of secret (a legacy key is
 * hashed whole: it has no id to strip). */
int
keyd_key_hash(const char *secret, size_t len, char *encoded, size_t encsz)
{
	uint8_t	 salt[KEYD_ARGON2_SALT];

	randombytes_buf(salt, sizeof(salt));
	return argon2id_hash_encoded(KEYD_ARGON2_T, KEYD_ARGON2_M_KIB,
	    KEYD_ARGON2_P, secret, len, salt, sizeof(salt),
	    KEYD_ARGON2_HASH, encoded, encsz) == ARGON2_OK ? 0 : -1;
}

static int
keyd_hash(const char *secret, char *encoded, size_t encsz)
{
	return keyd_key_hash(secret, FLM_KEY_SECRET_LEN, encoded, encsz);
}

/*
 * flm_<id>_<secret> into key (FLM_KEY_LEN + 1 bytes): a fresh secret,
 * and a fresh id too unless id already holds one (rotation).
 */
static void
keyd_key_generate(char *key, char id[FLM_KEY_ID_LEN + 1])
{
	uint8_t	 rid[FLM_KEY_ID_LEN / 2], rsecret[32];
	char	 secret[FLM_KEY_SECRET_LEN + 1];

	if (id[0] == '\0') {
		randombytes_buf(rid, sizeof(rid));
		sodium_bin2hex(id, FLM_KEY_ID_LEN + 1, rid, sizeof(rid));
	}
	randombytes_buf(rsecret, sizeof(rsecret));
	sodium_bin2base64(secret, sizeof(secret), rsecret, sizeof(rsecret),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(key, FLM_KEY_LEN + 1, "%s%s_%s", FLM_KEY_PREFIX, id, secret);
	sodium_memzero(rsecret, sizeof(rsecret));
	sodium_memzero(secret, sizeof(secret));
}

/* The row of ID or LABEL: 0 and its id, or -1 and err. */
static int
keyd_key_find(struct db *db, const char *which, char id[FLM_KEY_ID_LEN + 1],
    char *label, size_t labelsz, int *revoked, int *intact, char *err,
    size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc;

	/* An id wins over a label that happens to spell another key's id. */
	rc = sqlite3_prepare_v2(db->h, "SELECT id, label, revoked_at IS NOT "
	    "NULL, " KEYD_KEY_MAC_COLS ", mac FROM api_keys WHERE id = ?1 OR "
	    "label = ?1 ORDER BY id = ?1 DESC LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	sqlite3_bind_text(st, 1, which, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			snprintf(err, errsz, "no key with id or label '%s'",
			    which);
		else
			snprintf(err, errsz, "%s", db_strerror(db, rc));
		sqlite3_finalize(st);
		return -1;
	}
	snprintf(id, FLM_KEY_ID_LEN + 1, "%s", sqlite3_column_text(st, 0));
	snprintf(label, labelsz, "%s", sqlite3_column_text(st, 1));
	*revoked = sqlite3_column_int(st, 2);
	*intact = keyd_row_intact(&keyd_key_rows, st, 3);
	sqlite3_finalize(st);
	return 0;
}

/* Run one statement with text parameters (NULL binds NULL). */
static int
keyd_exec(struct db *db, const char *sql, int n, const char **args,
    char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc, i;

	if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	for (i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	rc = sqlite3_extended_errcode(db->h);
	if (rc == SQLITE_CONSTRAINT_UNIQUE &&
	    strstr(sqlite3_errmsg(db->h), "label") != NULL)
		snprintf(err, errsz, "a key with that label already exists");
	else
		snprintf(err, errsz, "cannot store the key: %s",
		    db_strerror(db, rc));
	return -1;
}

/* keyd_exec, and key id's row sealed with it: one transaction. */
static int
keyd_exec_sealed(struct db *db, const char *sql, int n, const char **args,
    const char *id, char *err, size_t errsz)
{
	int	 rc;

	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "cannot store the key: %s",
		    db_strerror(db, rc));
		return -1;
	}
	if (keyd_exec(db, sql, n, args, err, errsz) == -1)
		goto fail;
	if ((rc = keyd_row_seal(&keyd_key_rows, db, id)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		snprintf(err, errsz, "cannot store the key: %s",
		    db_strerror(db, rc));
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static struct json_object *
keyd_key_json(const char *id, const char *label, const char *key,
    const char *created)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "label", json_object_new_string(label));
	if (key != NULL)
		json_object_object_add(o, "key", json_object_new_string(key));
	if (created != NULL)
		json_object_object_add(o, "created_at",
		    json_object_new_string(created));
	return o;
}

/*
 * A new key: *result gets {id, label, key, created_at, expires_at} (the
 * only time the key text leaves keyd), or -1 and err says why.
 */
int
keyd_key_create(struct db *db, const char *label, const char *expires,
    const char *scope, struct json_object **result, char *err, size_t errsz)
{
	char	 key[FLM_KEY_LEN + 1], id[FLM_KEY_ID_LEN + 1] = "";
	char	 hash[160], now[32], exp[32];
	const char *args[6];
	time_t	 t, tnow = time(NULL);
	int	 rv = -1;

	*result = NULL;
	if (!apikey_label_valid(label)) {
		snprintf(err, errsz, "invalid label: use 1-64 characters of "
		    "A-Z a-z 0-9 . _ -");
		return -1;
	}
	if (expires != NULL) {
		if (keyd_parse_when(expires, tnow, &t) == -1) {
			snprintf(err, errsz, "--expires %s: expected a "
			    "duration (30d, 12h, 90m, 2w) or a UTC date "
			    "(2027-01-31 or 2027-01-31T12:00:00Z)", expires);
			return -1;
		}
		if (t <= tnow) {
			snprintf(err, errsz, "--expires %s is in the past",
			    expires);
			return -1;
		}
		keyd_iso(t, 0, exp, sizeof(exp));
	}
	if (db_writable(db, err, errsz) == -1)
		return -1;
	keyd_key_generate(key, id);
	if (keyd_hash(key + 4 + FLM_KEY_ID_LEN + 1, hash, sizeof(hash)) == -1) {
		snprintf(err, errsz, "cannot hash the key");
		goto done;
	}
	keyd_now(now, sizeof(now));
	args[0] = id;
	args[1] = label;
	args[2] = hash;
	args[3] = now;
	args[4] = expires ? exp : NULL;
	args[5] = scope;
	if (keyd_exec_sealed(db, "INSERT INTO api_keys (id, label, hash, "
	    "created_at, expires_at, scope) VALUES (?, ?, ?, ?, ?, ?)", 6,
	    args, id, err, errsz) == -1)
		goto done;
	*result = keyd_key_json(id, label, key, now);
	json_object_object_add(*result, "expires_at",
	    expires ? json_object_new_string(exp) : NULL);
	json_object_object_add(*result, "scope", scope != NULL ?
	    json_parse_buf(scope, strlen(scope)) : NULL);
	log_info("created key %s (%s)", id, label);
	rv = 0;
done:
	sodium_memzero(key, sizeof(key));
	return rv;
}

static struct json_object *
keyd_col(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	return json_object_new_string((const char *)sqlite3_column_text(st, i));
}

/* Every key: what it is and how it stands; never a hash. */
int
keyd_key_list(struct db *db, struct json_object **result, char *err,
    size_t errsz)
{
	sqlite3_stmt	*st;
	char		 now[32];
	int		 rc;

	if (db->h == NULL) {
		snprintf(err, errsz, "security.db is not open: %s",
		    db->safe_reason);
		return -1;
	}
	keyd_now(now, sizeof(now));
	rc = sqlite3_prepare_v2(db->h, "SELECT id, label, created_at, "
	    "last_used_at, expires_at, revoked_at, prev_expires_at, "
	    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
	    "WHEN expires_at IS NOT NULL AND expires_at <= ?1 THEN 'expired' "
	    "ELSE 'active' END, " KEYD_KEY_MAC_COLS ", mac FROM api_keys "
	    "ORDER BY created_at", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	*result = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct json_object	*o = json_object_new_object();

		json_object_object_add(o, "id", keyd_col(st, 0));
		json_object_object_add(o, "label", keyd_col(st, 1));
		json_object_object_add(o, "created_at", keyd_col(st, 2));
		json_object_object_add(o, "last_used_at", keyd_col(st, 3));
		json_object_object_add(o, "expires_at", keyd_col(st, 4));
		json_object_object_add(o, "revoked_at", keyd_col(st, 5));
		if (sqlite3_column_type(st, 6) != SQLITE_NULL &&
		    strcmp((const char *)sqlite3_column_text(st, 6), now) > 0)
			json_object_object_add(o, "previous_secret_until",
			    keyd_col(st, 6));
		json_object_object_add(o, "scope", sqlite3_column_type(st,
		    16) == SQLITE_NULL ? NULL : json_parse_buf((const char *)
		    sqlite3_column_text(st, 16), (size_t)sqlite3_column_bytes(
		    st, 16)));
		/* Imported by flm migrate legacy: how it is stored now. */
		if (sqlite3_column_type(st, 17) != SQLITE_NULL)
			json_object_object_add(o, "legacy", keyd_col(st, 17));
		/* A row keyd did not write is refused, whatever it says. */
		if (keyd_row_intact(&keyd_key_rows, st, 8))
			json_object_object_add(o, "state", keyd_col(st, 7));
		else {
			json_object_object_add(o, "state",
			    json_object_new_string("refused"));
			json_object_object_add(o, "integrity",
			    json_object_new_string("altered"));
		}
		json_object_array_add(*result, o);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_object_put(*result);
		*result = NULL;
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	return 0;
}

/* Revoke ID or LABEL; *result {id, label, revoked_at}, id for caches. */
int
keyd_key_revoke(struct db *db, const char *which, char id[FLM_KEY_ID_LEN + 1],
    struct json_object **result, char *err, size_t errsz)
{
	char		 label[80], now[32];
	const char	*args[2];
	int		 revoked, intact;

	*result = NULL;
	if (db_writable(db, err, errsz) == -1 ||
	    keyd_key_find(db, which, id, label, sizeof(label), &revoked,
	    &intact, err, errsz) == -1)
		return -1;
	/* An altered row may be revoked (that is the cure), not used. */
	if (revoked && !intact)
		revoked = 0;
	if (revoked) {
		snprintf(err, errsz, "key %s (%s) is already revoked", id,
		    label);
		return -1;
	}
	keyd_now(now, sizeof(now));
	args[0] = now;
	args[1] = id;
	if (keyd_exec_sealed(db, "UPDATE api_keys SET revoked_at = ?, "
	    "prev_hash = NULL, prev_expires_at = NULL WHERE id = ?", 2, args,
	    id, err, errsz) == -1)
		return -1;
	if (!intact) {
		log_warnx("revoked key %s (%s), whose row had been altered "
		    "outside flm-keyd", id, label);
		keyd_integrity_changed();
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "id", json_object_new_string(id));
	json_object_object_add(*result, "label", json_object_new_string(label));
	json_object_object_add(*result, "revoked_at",
	    json_object_new_string(now));
	log_info("revoked key %s (%s)", id, label);
	return 0;
}

/*
 * Rotate ID or LABEL: a new secret under the same id and label; the
 * old one stays valid for grace (a duration, NULL for none).
 */
int
keyd_key_rotate(struct db *db, const char *which, const char *grace,
    char id[FLM_KEY_ID_LEN + 1], struct json_object **result, char *err,
    size_t errsz)
{
	char		 label[80], now[32], until[32], hash[160];
	char		 key[FLM_KEY_LEN + 1];
	const char	*args[4];
	long		 g = 0;
	int		 revoked, intact, rv = -1;

	*result = NULL;
	if (grace != NULL && ((g = keyd_duration(grace)) < 0 ||
	    g > KEYD_GRACE_MAX)) {
		snprintf(err, errsz, "--grace %s: expected a duration up to "
		    "30d (90s, 10m, 1h, 7d)", grace);
		return -1;
	}
	if (db_writable(db, err, errsz) == -1 ||
	    keyd_key_find(db, which, id, label, sizeof(label), &revoked,
	    &intact, err, errsz) == -1)
		return -1;
	if (!intact) {
		snprintf(err, errsz, "key %s (%s): its row was altered outside "
		    "flm-keyd (its MAC does not match); revoke it and create a "
		    "new one", id, label);
		return -1;
	}
	if (revoked) {
		snprintf(err, errsz, "key %s (%s) is revoked; create a new "
		    "one", id, label);
		return -1;
	}
	keyd_key_generate(key, id);	/* same id, new secret */
	if (keyd_hash(key + 4 + FLM_KEY_ID_LEN + 1, hash, sizeof(hash)) == -1) {
		snprintf(err, errsz, "cannot hash the key");
		goto done;
	}
	keyd_now(now, sizeof(now));
	keyd_iso(time(NULL) + g, 0, until, sizeof(until));
	args[0] = hash;
	args[1] = g > 0 ? until : NULL;
	args[2] = id;
	/* A legacy key becomes an flm key: its old token has no grace
	 * (it is not of the flm_ form the grace applies to). */
	if (keyd_exec_sealed(db, g > 0 ?
	    "UPDATE api_keys SET prev_hash = CASE WHEN legacy IS NULL THEN "
	    "hash END, hash = ?1, prev_expires_at = CASE WHEN legacy IS NULL "
	    "THEN ?2 END, legacy = NULL, digest = NULL WHERE id = ?3" :
	    "UPDATE api_keys SET prev_hash = NULL, hash = ?1, "
	    "prev_expires_at = ?2, legacy = NULL, digest = NULL WHERE id = ?3",
	    3, args, id, err, errsz) == -1)
		goto done;
	*result = keyd_key_json(id, label, key, NULL);
	json_object_object_add(*result, "rotated_at", json_object_new_string(now));
	json_object_object_add(*result, "previous_secret_until",
	    g > 0 ? json_object_new_string(until) : NULL);
	log_info("rotated key %s (%s), old secret valid for %lds", id, label,
	    g);
	rv = 0;
done:
	sodium_memzero(key, sizeof(key));
	return rv;
}

struct keyd_row {
	char	 hash[160];
	char	 prev_hash[160];
	char	 legacy[16];		/* "" for keys keyd made */
	time_t	 prev_until;
	time_t	 expires;
	int	 revoked;
};

/*
 * The stored state of the key whose col ("id" or "digest") is val, its
 * id into id; or a verdict that ends the check.
 */
static uint32_t
keyd_key_lookup(struct db *db, const char *col, const char *val,
    char id[FLM_KEY_ID_LEN + 1], struct keyd_row *row)
{
	sqlite3_stmt	*st;
	char		 sql[320];
	int		 rc;

	memset(row, 0, sizeof(*row));
	snprintf(sql, sizeof(sql), "SELECT hash, revoked_at IS NOT NULL, "
	    "expires_at, prev_hash, prev_expires_at, " KEYD_KEY_MAC_COLS
	    ", mac FROM api_keys WHERE %s = ?", col);
	rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("verify: %s", db_strerror(db, rc));
		return FLM_KEY_UNAVAILABLE;
	}
	sqlite3_bind_text(st, 1, val, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc != SQLITE_DONE)
			log_warnx("verify: %s", db_strerror(db, rc));
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? FLM_KEY_UNKNOWN : FLM_KEY_UNAVAILABLE;
	}
	snprintf(id, FLM_KEY_ID_LEN + 1, "%s",
	    (const char *)sqlite3_column_text(st, 5));
	/* Inserted or altered without the master key: as good as revoked. */
	if (!keyd_row_intact(&keyd_key_rows, st, 5)) {
		static time_t	 last;
		static char	 lastid[FLM_KEY_ID_LEN + 1];
		time_t		 now = time(NULL);

		sqlite3_finalize(st);
		/* Once a second per row at most: each request naming it
		 * would rescan the table; the flush timer rescans anyway. */
		if (now != last || strcmp(id, lastid) != 0) {
			last = now;
			snprintf(lastid, sizeof(lastid), "%s", id);
			log_warnx("key %s: its row in security.db fails its "
			    "MAC (altered or inserted outside flm-keyd): "
			    "refused", id);
			keyd_integrity_changed();
		}
		return FLM_KEY_REVOKED;
	}
	snprintf(row->hash, sizeof(row->hash), "%s",
	    (const char *)sqlite3_column_text(st, 0));
	row->revoked = sqlite3_column_int(st, 1);
	row->expires = keyd_epoch((const char *)sqlite3_column_text(st, 2));
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		snprintf(row->prev_hash, sizeof(row->prev_hash), "%s",
		    (const char *)sqlite3_column_text(st, 3));
		row->prev_until = keyd_epoch(
		    (const char *)sqlite3_column_text(st, 4));
	}
	if (sqlite3_column_type(st, 5 + 9) != SQLITE_NULL)
		snprintf(row->legacy, sizeof(row->legacy), "%s",
		    (const char *)sqlite3_column_text(st, 5 + 9));
	sqlite3_finalize(st);
	return FLM_KEY_OK;
}

/*
 * Argon2 runs (cache misses) are budgeted: a subverted proxyd sending
 * wrong secrets for a real id must not turn keyd into a CPU furnace.
 * A token bucket, KEYD_COLD_PER_SEC a second, bursts of KEYD_COLD_BURST;
 * beyond it the answer is "unavailable" (proxyd says 503, retry).
 * A bcrypt check of a legacy key costs the same (cost 10 is ~Argon2's).
 */
static int
keyd_cold_budget(void)
{
	static double		 tokens = KEYD_COLD_BURST;
	static struct timespec	 last;
	static time_t		 warned;
	struct timespec		 now;
	double			 dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (last.tv_sec != 0 || last.tv_nsec != 0) {
		dt = (double)(now.tv_sec - last.tv_sec) +
		    (double)(now.tv_nsec - last.tv_nsec) / 1e9;
		tokens += dt * KEYD_COLD_PER_SEC;
		if (tokens > KEYD_COLD_BURST)
			tokens = KEYD_COLD_BURST;
	}
	last = now;
	if (tokens >= 1) {
		tokens -= 1;
		return 0;
	}
	if (warned != now.tv_sec) {
		warned = now.tv_sec;
		log_warnx("more than %d uncached key checks a second from "
		    "flm-proxyd: answering 'unavailable' to the rest",
		    KEYD_COLD_PER_SEC);
	}
	return -1;
}

/* argon2id_verify of len bytes, within the budget: ARGON2_OK, -1 (no
 * match) or 1 (over budget). */
static int
keyd_argon2_len(const char *hash, const char *secret, size_t len)
{
	if (keyd_cold_budget() == -1)
		return 1;
	/* argon2id_verify compares in constant time. */
	return argon2id_verify(hash, secret, len) == ARGON2_OK ?
	    ARGON2_OK : -1;
}

static int
keyd_argon2(const char *hash, const char *secret)
{
	return keyd_argon2_len(hash, secret, FLM_KEY_SECRET_LEN);
}

/* The row passed its secret check: is it in force?  Cache a yes. */
static uint32_t
keyd_key_standing(struct keycache *kc, const uint8_t dig[KEYCACHE_DIGEST],
    const char *id, const struct keyd_row *row, time_t until,
    uint64_t *valid_until)
{
	time_t	 now = time(NULL);

	if (row->revoked)
		return FLM_KEY_REVOKED;
	if (row->expires != 0 && now >= row->expires)
		return FLM_KEY_EXPIRED;
	if (row->expires != 0 && (until == 0 || row->expires < until))
		until = row->expires;
	*valid_until = (uint64_t)until;
	/* By the digest of the whole token: one token never passes for
	 * another, a legacy one included. */
	keycache_put(kc, dig, id, *valid_until);
	return FLM_KEY_OK;
}

/*
 * A legacy token (no flm_ prefix): found by its keyed digest, checked
 * with Argon2id; else, among the imported bcrypt rows not yet used,
 * each tried with crypt(3) (keyd_legacy.c) within the cold budget; the
 * one that matches is re-hashed as Argon2id and gets its digest.
 */
static uint32_t
keyd_key_verify_legacy(struct db *db, struct keycache *kc, const char *token,
    size_t len, const uint8_t dig[KEYCACHE_DIGEST],
    char id[FLM_KEY_ID_LEN + 1], uint64_t *valid_until)
{
	struct keyd_row	 row;
	char		 hex[KEYD_LEGACY_HEX + 1];
	uint32_t	 r;
	int		 a;

	keyd_legacy_digest(token, len, hex);
	r = keyd_key_lookup(db, "digest", hex, id, &row);
	if (r == FLM_KEY_UNKNOWN) {
		id[0] = '\0';
		r = keyd_legacy_bcrypt(db, token, len, hex, id,
		    keyd_cold_budget);
		if (r != FLM_KEY_OK)
			return r;
		/* Re-read as it now stands: its MAC checked again. */
		if ((r = keyd_key_lookup(db, "id", id, id, &row)) !=
		    FLM_KEY_OK)
			return r;
	} else if (r == FLM_KEY_OK) {
		if (strcmp(row.legacy, "bcrypt") == 0)
			a = -1;		/* a digest it cannot have yet */
		else
			a = keyd_argon2_len(row.hash, token, len);
		sodium_memzero(&row.hash, sizeof(row.hash));
		if (a == 1)
			return FLM_KEY_UNAVAILABLE;
		if (a != ARGON2_OK)
			return FLM_KEY_BAD_SECRET;
	} else
		return r;
	sodium_memzero(&row.hash, sizeof(row.hash));
	sodium_memzero(&row.prev_hash, sizeof(row.prev_hash));
	return keyd_key_standing(kc, dig, id, &row, 0, valid_until);
}

/*
 * Is token a valid key?  A cached verdict costs a hash; an unknown or
 * malformed key costs no Argon2.  *valid_until bounds how long the
 * caller may cache a yes (0: no expiry).
 */
uint32_t
keyd_key_verify(struct db *db, struct keycache *kc, const char *token,
    size_t len, char id[FLM_KEY_ID_LEN + 1], uint64_t *valid_until)
{
	struct keycache_entry	*ce;
	struct keyd_row		 row;
	const char		*secret;
	uint8_t			 dig[KEYCACHE_DIGEST];
	time_t			 now = time(NULL), until = 0;
	uint32_t		 r;
	int			 a, legacy = 0;

	id[0] = '\0';
	*valid_until = 0;
	if (apikey_parse(token, len, id, &secret) == -1) {
		if (!apikey_legacy_valid(token, len))
			return FLM_KEY_MALFORMED;
		legacy = 1;
	}
	keycache_digest(kc, token, len, dig);
	if ((ce = keycache_get(kc, dig, now)) != NULL) {
		snprintf(id, FLM_KEY_ID_LEN + 1, "%s", ce->key_id);
		*valid_until = ce->valid_until;
		return FLM_KEY_OK;
	}
	if (db->h == NULL)
		return FLM_KEY_UNAVAILABLE;
	if (legacy)
		return keyd_key_verify_legacy(db, kc, token, len, dig, id,
		    valid_until);
	if ((r = keyd_key_lookup(db, "id", id, id, &row)) != FLM_KEY_OK)
		return r;
	if (row.legacy[0] != '\0')
		a = -1;		/* its token is the legacy one, not flm_ */
	else if ((a = keyd_argon2(row.hash, secret)) == -1) {
		if (row.prev_hash[0] == '\0' || now >= row.prev_until)
			r = FLM_KEY_BAD_SECRET;
		else if ((a = keyd_argon2(row.prev_hash, secret)) == ARGON2_OK)
			until = row.prev_until;	/* the rotated-out secret */
		else if (a == -1)
			r = FLM_KEY_BAD_SECRET;
	}
	if (a == -1)
		r = FLM_KEY_BAD_SECRET;
	if (a == 1)
		r = FLM_KEY_UNAVAILABLE;	/* over budget */
	sodium_memzero(&row.hash, sizeof(row.hash));
	sodium_memzero(&row.prev_hash, sizeof(row.prev_hash));
	if (r != FLM_KEY_OK)
		return r;
	return keyd_key_standing(kc, dig, id, &row, until, valid_until);
}

/*
 * A key's scope replaced (scope NULL: no limits of its own); *result
 * {id, label, scope}, id for proxyd's caches.
 */
int
keyd_key_scope(struct db *db, const char *which, const char *scope,
    char id[FLM_KEY_ID_LEN + 1], struct json_object **result, char *err,
    size_t errsz)
{
	char		 label[128];
	const char	*args[2];
	int		 revoked, intact;

	*result = NULL;
	if (db_writable(db, err, errsz) == -1 || keyd_key_find(db, which, id,
	    label, sizeof(label), &revoked, &intact, err, errsz) == -1)
		return -1;
	if (!intact) {
		snprintf(err, errsz, "key %s: its row fails its MAC (altered "
		    "outside flm-keyd); revoke it and make another", id);
		return -1;
	}
	if (revoked) {
		snprintf(err, errsz, "key %s is revoked", id);
		return -1;
	}
	args[0] = scope;
	args[1] = id;
	if (keyd_exec_sealed(db, "UPDATE api_keys SET scope = ? WHERE id = ?",
	    2, args, id, err, errsz) == -1)
		return -1;
	*result = keyd_key_json(id, label, NULL, NULL);
	json_object_object_add(*result, "scope", scope != NULL ?
	    json_parse_buf(scope, strlen(scope)) : NULL);
	log_info("key %s (%s): scope %s", id, label, scope != NULL ? scope :
	    "cleared");
	return 0;
}

/*
 * Key id's scope text into buf ("" none), read with its row's MAC
 * checked (a verdict from keyd's cache reads the row only here): the
 * verdict, FLM_KEY_OK or why not.
 */
uint32_t
keyd_key_scope_get(struct db *db, const char *id, char *buf, size_t sz)
{
	sqlite3_stmt	*st;
	uint32_t	 r = FLM_KEY_UNAVAILABLE;

	buf[0] = '\0';
	if (db->h == NULL || sqlite3_prepare_v2(db->h, "SELECT "
	    KEYD_KEY_MAC_COLS ", mac FROM api_keys WHERE id = ?", -1, &st,
	    NULL) != SQLITE_OK)
		return FLM_KEY_UNAVAILABLE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		if (!keyd_row_intact(&keyd_key_rows, st, 0))
			r = FLM_KEY_REVOKED;
		else if (sqlite3_column_type(st, 8) == SQLITE_NULL)
			r = FLM_KEY_OK;
		else if ((size_t)sqlite3_column_bytes(st, 8) < sz) {
			snprintf(buf, sz, "%s", (const char *)
			    sqlite3_column_text(st, 8));
			r = FLM_KEY_OK;
		}
		break;
	case SQLITE_DONE:
		r = FLM_KEY_UNKNOWN;	/* deleted since it was cached */
		break;
	}
	sqlite3_finalize(st);
	return r;
}

/* Is there a key with this id?  KEY_USED names only real ones. */
int
keyd_key_exists(struct db *db, const char *id)
{
	sqlite3_stmt	*st;
	int		 found = 0;

	if (db->h == NULL || sqlite3_prepare_v2(db->h, "SELECT 1 FROM "
	    "api_keys WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* last_used_at for a batch of ids, in one transaction. */
void
keyd_key_touch(struct db *db, char (*ids)[FLM_KEY_ID_LEN + 1], size_t n)
{
	sqlite3_stmt	*st;
	char		 now[32];
	size_t		 i;

	if (n == 0 || db->h == NULL || db->safe_mode)
		return;
	keyd_now(now, sizeof(now));
	if (sqlite3_exec(db->h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(db->h, "UPDATE api_keys SET last_used_at = ? "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, ids[i], -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("last_used_at: %s", sqlite3_errmsg(db->h));
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	}
}
