/*
 * Sealed secrets in security.db: the credentials proxyd sends upstream
 * (an engine's API key), which keyd alone can read.  Each row is sealed
 * with XChaCha20-Poly1305 under a data key derived from the master key
 * for the row's key id; the name and key id are associated data, so a
 * row copied to another name or key id does not open.  flm secrets
 * rotate adds a key id and seals every row again under it, in one
 * transaction.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "db.h"
#include "keyd.h"
#include "log.h"

#define SECRET_NONCE	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SECRET_ABYTES	crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SECRET_NAME_MAX	64

/* A credential goes into an HTTP header: visible ASCII, no quote or
 * backslash (no credential scheme uses them), 1-4096 bytes. */
static int
secret_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > KEYD_SECRET_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

/* engine:ID, ID as an engine id of flm-config(5), or egress:socks5
 * (the SOCKS5 server's password). */
static int
secret_name_valid(const char *name)
{
	size_t	 i, n;

	if (strcmp(name, "egress:socks5") == 0)
		return 1;
	if (strncmp(name, "engine:", 7) != 0)
		return 0;
	n = strlen(name + 7);
	if (n < 1 || n > 32)
		return 0;
	for (i = 7; name[i] != '\0'; i++)
		if (!(name[i] >= 'a' && name[i] <= 'z') &&
		    !(name[i] >= '0' && name[i] <= '9') && name[i] != '-' &&
		    name[i] != '_')
			return 0;
	return 1;
}

static int
secret_name_check(const char *name, char *err, size_t errsz)
{
	if (secret_name_valid(name))
		return 0;
	snprintf(err, errsz, "not a secret's name: engine:ID or egress:socks5 "
	    "expected");
	return -1;
}

/* The associated data: the name, a NUL, the key id. */
static size_t
secret_ad(const char *name, int64_t kid, unsigned char *ad, size_t sz)
{
	size_t	 n = strlen(name) + 1;

	if (n + 8 > sz)
		return 0;
	memcpy(ad, name, n);
	memcpy(ad + n, &kid, 8);
	return n + 8;
}

/* *ct (malloc'd) = value sealed for name under key id kid. */
static int
secret_seal(const char *name, int64_t kid, const char *value, size_t len,
    unsigned char nonce[SECRET_NONCE], unsigned char **ct, size_t *ctlen)
{
	unsigned char		 k[KEYD_MASTER_LEN], ad[SECRET_NAME_MAX + 16];
	unsigned long long	 clen;

	if ((*ct = malloc(len + SECRET_ABYTES)) == NULL)
		return -1;
	keyd_secret_key((uint64_t)kid, k);
	randombytes_buf(nonce, SECRET_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(*ct, &clen,
	    (const unsigned char *)value, len, ad, secret_ad(name, kid, ad,
	    sizeof(ad)), NULL, nonce, k);
	sodium_memzero(k, sizeof(k));
	*ctlen = (size_t)clen;
	return 0;
}

/* Set while a master-key rotation reads what the old key sealed. */
static int	 secret_from_prev;

/* The clear value (malloc'd, NUL-ended: the caller wipes and frees it),
 * or NULL if the row does not open. */
static char *
secret_open(const char *name, int64_t kid, const void *nonce,
    size_t noncelen, const void *ct, size_t ctlen)
{
	unsigned char		 k[KEYD_MASTER_LEN], ad[SECRET_NAME_MAX + 16];
	unsigned long long	 len;
	char			*v;
	int			 rc;

	if (noncelen != SECRET_NONCE || ctlen <= SECRET_ABYTES ||
	    ctlen > KEYD_SECRET_MAX + SECRET_ABYTES ||
	    (v = malloc(ctlen)) == NULL)
		return NULL;
	if (secret_from_prev)
		keyd_prev_derive(KEYD_DERIVE_SECRET, (uint64_t)kid, k);
	else
		keyd_secret_key((uint64_t)kid, k);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)v,
	    &len, NULL, ct, ctlen, ad, secret_ad(name, kid, ad, sizeof(ad)),
	    nonce, k);
	sodium_memzero(k, sizeof(k));
	if (rc != 0 || !secret_valid(v, (size_t)len)) {
		sodium_memzero(v, ctlen);
		free(v);
		return NULL;
	}
	v[len] = '\0';
	return v;
}

static int64_t
secret_current_kid(struct db *db)
{
	sqlite3_stmt	*st;
	int64_t		 kid = -1;

	if (sqlite3_prepare_v2(db->h, "SELECT MAX(id) FROM secret_keys", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		kid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return kid;
}

static int
secret_db_error(struct db *db, int rc, char *err, size_t errsz)
{
	snprintf(err, errsz, "security.db: %s", db_strerror(db, rc));
	return -1;
}

int
keyd_secret_set(struct db *db, const char *name, const char *value,
    struct json_object **res, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	unsigned char	 nonce[SECRET_NONCE], *ct;
	size_t		 ctlen;
	int64_t		 kid;
	int		 rc;

	if (db_writable(db, err, errsz) == -1)
		return -1;
	if (secret_name_check(name, err, errsz) == -1)
		return -1;
	if (!secret_valid(value, strlen(value)) || (strncmp(name, "egress:",
	    7) == 0 && strlen(value) > 255)) {
		snprintf(err, errsz, "a credential is 1-%d visible ASCII "
		    "characters (a SOCKS5 password 1-255), without quotes or "
		    "backslashes", KEYD_SECRET_MAX);
		return -1;
	}
	if ((kid = secret_current_kid(db)) < 1) {
		snprintf(err, errsz, "security.db has no data key for secrets");
		return -1;
	}
	if (secret_seal(name, kid, value, strlen(value), nonce, &ct,
	    &ctlen) == -1) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	rc = sqlite3_prepare_v2(db->h, "INSERT INTO secrets (name, key_id, "
	    "nonce, sealed) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO "
	    "UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, "
	    "sealed = excluded.sealed, updated_at = strftime('%Y-%m-%dT%H:%M:"
	    "%fZ', 'now')", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, kid);
		sqlite3_bind_blob(st, 3, nonce, sizeof(nonce), SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, ct, (int)ctlen, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK :
		    sqlite3_extended_errcode(db->h);
		sqlite3_finalize(st);
	}
	free(ct);
	if (rc != SQLITE_OK)
		return secret_db_error(db, rc, err, errsz);
	*res = json_object_new_object();
	json_object_object_add(*res, "name", json_object_new_string(name));
	json_object_object_add(*res, "key_id", json_object_new_int64(kid));
	json_object_object_add(*res, "sealed", json_object_new_boolean(1));
	log_info("secret %s sealed under data key %lld", name, (long long)kid);
	return 0;
}

int
keyd_secret_clear(struct db *db, const char *name, struct json_object **res,
    char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc, n = 0;

	if (db_writable(db, err, errsz) == -1)
		return -1;
	if (secret_name_check(name, err, errsz) == -1)
		return -1;
	rc = sqlite3_prepare_v2(db->h, "DELETE FROM secrets WHERE name = ?1",
	    -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK :
		    sqlite3_extended_errcode(db->h);
		n = sqlite3_changes(db->h);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK)
		return secret_db_error(db, rc, err, errsz);
	if (n == 0) {
		snprintf(err, errsz, "no credential is set for %s", name);
		return -1;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "name", json_object_new_string(name));
	json_object_object_add(*res, "cleared", json_object_new_boolean(1));
	log_info("secret %s cleared", name);
	return 0;
}

/* Every row opened under its key id and sealed under kid. */
static int
secret_reseal_all(struct db *db, int64_t kid, int *n, char *err, size_t errsz)
{
	sqlite3_stmt	*sel, *upd = NULL;
	unsigned char	 nonce[SECRET_NONCE], *ct;
	const char	*name;
	char		*v;
	size_t		 ctlen;
	int		 rc;

	*n = 0;
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT name, key_id, nonce, "
	    "sealed FROM secrets", -1, &sel, NULL)) != SQLITE_OK)
		return secret_db_error(db, rc, err, errsz);
	if ((rc = sqlite3_prepare_v2(db->h, "UPDATE secrets SET key_id = ?1, "
	    "nonce = ?2, sealed = ?3, updated_at = strftime('%Y-%m-%dT%H:%M:"
	    "%fZ', 'now') WHERE name = ?4", -1, &upd, NULL)) != SQLITE_OK) {
		sqlite3_finalize(sel);
		return secret_db_error(db, rc, err, errsz);
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t	 k = kid != 0 ? kid : sqlite3_column_int64(sel, 1);

		name = (const char *)sqlite3_column_text(sel, 0);
		if ((v = secret_open(name, sqlite3_column_int64(sel, 1),
		    sqlite3_column_blob(sel, 2), sqlite3_column_bytes(sel, 2),
		    sqlite3_column_blob(sel, 3),
		    sqlite3_column_bytes(sel, 3))) == NULL) {
			snprintf(err, errsz, "secret %.64s does not open: "
			    "security.db was changed without the master key "
			    "(clear it and set it again)", name);
			rc = SQLITE_ERROR;
			break;
		}
		rc = secret_seal(name, k, v, strlen(v), nonce, &ct, &ctlen);
		sodium_memzero(v, strlen(v));
		free(v);
		if (rc == -1) {
			snprintf(err, errsz, "out of memory");
			rc = SQLITE_NOMEM;
			break;
		}
		sqlite3_bind_int64(upd, 1, k);
		sqlite3_bind_blob(upd, 2, nonce, sizeof(nonce), SQLITE_STATIC);
		sqlite3_bind_blob(upd, 3, ct, (int)ctlen, SQLITE_STATIC);
		sqlite3_bind_text(upd, 4, name, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		free(ct);
		if (rc != SQLITE_DONE) {
			rc = sqlite3_extended_errcode(db->h);
			secret_db_error(db, rc, err, errsz);
			break;
		}
		(*n)++;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
keyd_secrets_rotate(struct db *db, struct json_object **res, char *err,
    size_t errsz)
{
	int64_t	 kid;
	int	 rc, n;

	if (db_writable(db, err, errsz) == -1)
		return -1;
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return secret_db_error(db, rc, err, errsz);
	if ((rc = sqlite3_exec(db->h, "INSERT INTO secret_keys DEFAULT VALUES",
	    NULL, NULL, NULL)) != SQLITE_OK) {
		secret_db_error(db, rc, err, errsz);
		goto fail;
	}
	kid = sqlite3_last_insert_rowid(db->h);
	if (secret_reseal_all(db, kid, &n, err, errsz) == -1)
		goto fail;
	if ((rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		secret_db_error(db, rc, err, errsz);
		goto fail;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "key_id", json_object_new_int64(kid));
	json_object_object_add(*res, "resealed", json_object_new_int(n));
	log_info("secrets: %d sealed again under data key %lld", n,
	    (long long)kid);
	return 0;
fail:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* A master-key rotation, inside its transaction: every secret read
 * under the old key, sealed again under the new, same data key id. */
int
keyd_secrets_remaster(struct db *db, int *n, char *err, size_t errsz)
{
	int	 rc;

	secret_from_prev = 1;
	rc = secret_reseal_all(db, 0, n, err, errsz);
	secret_from_prev = 0;
	return rc;
}

int
keyd_secrets_list(struct db *db, struct json_object **res, char *err,
    size_t errsz)
{
	sqlite3_stmt	*st;
	struct json_object *o;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(db->h, "SELECT name, key_id, created_at, "
	    "updated_at FROM secrets ORDER BY name", -1, &st, NULL)) !=
	    SQLITE_OK)
		return secret_db_error(db, rc, err, errsz);
	*res = json_object_new_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(
		    (const char *)sqlite3_column_text(st, 0)));
		json_object_object_add(o, "key_id", json_object_new_int64(
		    sqlite3_column_int64(st, 1)));
		json_object_object_add(o, "created_at", json_object_new_string(
		    (const char *)sqlite3_column_text(st, 2)));
		json_object_object_add(o, "updated_at", json_object_new_string(
		    (const char *)sqlite3_column_text(st, 3)));
		json_object_array_add(*res, o);
	}
	sqlite3_finalize(st);
	return 0;
}

static int
secret_id_in(struct json_object *ids, const char *id)
{
	size_t	 i;

	for (i = 0; i < json_object_array_length(ids); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(ids,
		    i)), id) == 0)
			return 1;
	return 0;
}

/*
 * The credentials of the engines in ids (flmd's list), as {id: secret},
 * and the SOCKS5 password as "egress:socks5": nothing for an engine not
 * configured.  The caller wipes them with keyd_creds_wipe.
 */
struct json_object *
keyd_engine_creds(struct db *db, struct json_object *ids)
{
	struct json_object	*o = json_object_new_object();
	sqlite3_stmt		*st;
	const char		*name;
	char			*v;
	int			 egress;

	if (ids == NULL || db->h == NULL || sqlite3_prepare_v2(db->h,
	    "SELECT name, key_id, nonce, sealed FROM secrets", -1, &st,
	    NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		egress = strcmp(name, "egress:socks5") == 0;
		if (!egress && (strncmp(name, "engine:", 7) != 0 ||
		    !secret_id_in(ids, name + 7)))
			continue;
		if ((v = secret_open(name, sqlite3_column_int64(st, 1),
		    sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2),
		    sqlite3_column_blob(st, 3),
		    sqlite3_column_bytes(st, 3))) == NULL) {
			log_warnx("secret %s does not open: security.db was "
			    "changed without the master key; not sent", name);
			continue;
		}
		json_object_object_add(o, egress ? name : name + 7,
		    json_object_new_string(v));
		sodium_memzero(v, strlen(v));
		free(v);
	}
	sqlite3_finalize(st);
	return o;
}

void
keyd_creds_wipe(struct json_object *o)
{
	json_object_object_foreach(o, k, v) {
		(void)k;
		sodium_memzero((char *)json_object_get_string(v),
		    json_object_get_string_len(v));
	}
	json_object_put(o);
}
