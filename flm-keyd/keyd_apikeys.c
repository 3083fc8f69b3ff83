/*
 * API keys in security.db: created here, verified here, and nowhere
 * else.  Only Argon2id encoded hashes are stored; the key text exists
 * in keyd only while it is made or checked, then is wiped.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "apikey.h"
#include "db.h"
#include "keyd.h"
#include "log.h"

static void
keyd_now(char *buf, size_t sz)
{
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sz - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static int
keyd_hash(const char *secret, char *encoded, size_t encsz)
{
	uint8_t	 salt[KEYD_ARGON2_SALT];

	randombytes_buf(salt, sizeof(salt));
	return argon2id_hash_encoded(KEYD_ARGON2_T, KEYD_ARGON2_M_KIB,
	    KEYD_ARGON2_P, secret, FLM_KEY_SECRET_LEN, salt, sizeof(salt),
	    KEYD_ARGON2_HASH, encoded, encsz) == ARGON2_OK ? 0 : -1;
}

/* flm_<id>_<secret> into key (FLM_KEY_LEN + 1 bytes). */
static void
keyd_key_generate(char *key, char id[FLM_KEY_ID_LEN + 1])
{
	uint8_t	 rid[FLM_KEY_ID_LEN / 2], rsecret[32];
	char	 secret[FLM_KEY_SECRET_LEN + 1];

	randombytes_buf(rid, sizeof(rid));
	randombytes_buf(rsecret, sizeof(rsecret));
	sodium_bin2hex(id, FLM_KEY_ID_LEN + 1, rid, sizeof(rid));
	sodium_bin2base64(secret, sizeof(secret), rsecret, sizeof(rsecret),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(key, FLM_KEY_LEN + 1, "%s%s_%s", FLM_KEY_PREFIX, id, secret);
	sodium_memzero(rsecret, sizeof(rsecret));
	sodium_memzero(secret, sizeof(secret));
}

static int
keyd_key_insert(struct db *db, const char *id, const char *label,
    const char *hash, const char *now, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc;

	rc = sqlite3_prepare_v2(db->h, "INSERT INTO api_keys (id, label, "
	    "hash, created_at) VALUES (?, ?, ?, ?)", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	rc = sqlite3_extended_errcode(db->h);
	if (rc == SQLITE_CONSTRAINT_UNIQUE &&
	    strstr(sqlite3_errmsg(db->h), "label") != NULL)
		snprintf(err, errsz, "a key labelled '%s' already exists",
		    label);
	else
		snprintf(err, errsz, "cannot store the key: %s",
		    db_strerror(db, rc));
	return -1;
}

/*
 * A new key: *result gets {id, label, key, created_at} (the only time
 * the key text leaves keyd), or -1 and err says why.
 */
int
keyd_key_create(struct db *db, const char *label, struct json_object **result,
    char *err, size_t errsz)
{
	char	 key[FLM_KEY_LEN + 1], id[FLM_KEY_ID_LEN + 1];
	char	 hash[160], now[32];
	int	 rv = -1;

	*result = NULL;
	if (!apikey_label_valid(label)) {
		snprintf(err, errsz, "invalid label: use 1-64 characters of "
		    "A-Z a-z 0-9 . _ -");
		return -1;
	}
	if (db_writable(db, err, errsz) == -1)
		return -1;
	keyd_key_generate(key, id);
	if (keyd_hash(key + 4 + FLM_KEY_ID_LEN + 1, hash, sizeof(hash)) == -1) {
		snprintf(err, errsz, "cannot hash the key");
		goto done;
	}
	keyd_now(now, sizeof(now));
	if (keyd_key_insert(db, id, label, hash, now, err, errsz) == -1)
		goto done;
	*result = json_object_new_object();
	json_object_object_add(*result, "id", json_object_new_string(id));
	json_object_object_add(*result, "label", json_object_new_string(label));
	json_object_object_add(*result, "key", json_object_new_string(key));
	json_object_object_add(*result, "created_at",
	    json_object_new_string(now));
	log_info("created key %s (%s)", id, label);
	rv = 0;
done:
	sodium_memzero(key, sizeof(key));
	return rv;
}

/* The stored state of key id: 0 and hash/revoked/expired, or a result. */
static uint32_t
keyd_key_lookup(struct db *db, const char *id, char *hash, size_t hashsz,
    int *revoked, int *expired)
{
	sqlite3_stmt	*st;
	char		 now[32];
	int		 rc;

	keyd_now(now, sizeof(now));
	rc = sqlite3_prepare_v2(db->h, "SELECT hash, revoked_at IS NOT NULL, "
	    "expires_at IS NOT NULL AND expires_at <= ? FROM api_keys "
	    "WHERE id = ?", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("verify: %s", db_strerror(db, rc));
		return FLM_KEY_UNAVAILABLE;
	}
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return FLM_KEY_UNKNOWN;
	}
	if (rc != SQLITE_ROW) {
		log_warnx("verify: %s", db_strerror(db, rc));
		sqlite3_finalize(st);
		return FLM_KEY_UNAVAILABLE;
	}
	snprintf(hash, hashsz, "%s", (const char *)sqlite3_column_text(st, 0));
	*revoked = sqlite3_column_int(st, 1);
	*expired = sqlite3_column_int(st, 2);
	sqlite3_finalize(st);
	return FLM_KEY_OK;
}

/* Is token a valid key?  An unknown or malformed one costs no Argon2. */
uint32_t
keyd_key_verify(struct db *db, const char *token, size_t len,
    char id[FLM_KEY_ID_LEN + 1])
{
	const char	*secret;
	char		 hash[160];
	int		 revoked = 0, expired = 0;
	uint32_t	 r;

	id[0] = '\0';
	if (db->h == NULL)
		return FLM_KEY_UNAVAILABLE;
	if (apikey_parse(token, len, id, &secret) == -1)
		return FLM_KEY_MALFORMED;
	if ((r = keyd_key_lookup(db, id, hash, sizeof(hash), &revoked,
	    &expired)) != FLM_KEY_OK)
		return r;
	/* argon2id_verify compares in constant time. */
	if (argon2id_verify(hash, secret, FLM_KEY_SECRET_LEN) != ARGON2_OK)
		return FLM_KEY_BAD_SECRET;
	if (revoked)
		return FLM_KEY_REVOKED;
	if (expired)
		return FLM_KEY_EXPIRED;
	return FLM_KEY_OK;
}
