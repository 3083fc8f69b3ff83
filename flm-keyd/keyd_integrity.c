/*
 * Rows that decide who gets in carry a MAC by keyd: each api_keys row
 * and the policy row, keyed with a subkey of the master key (docs/
 * DB_SCHEMA.md).  Whoever can write security.db without the master key
 * can insert a key hash, clear revoked_at, move expires_at or widen the
 * policy, but cannot make the MAC that keyd asks for before it trusts
 * the row.  last_used_at is left out: written in batches, it decides
 * nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <sqlite3.h>

#include "db.h"
#include "keyd.h"
#include "log.h"

#define SEALED_MARK	"rows_sealed_at"

/* Keyed-hash input with lengths and NULLs kept apart: the row MACs and
 * the audit chain (keyd_audit.c). */
void
keyd_mac_i64(crypto_generichash_state *h, int64_t v)
{
	uint8_t	 b[8];
	int	 i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	crypto_generichash_update(h, b, sizeof(b));
}

void
keyd_mac_str(crypto_generichash_state *h, const char *s)
{
	uint8_t	 tag = s != NULL;

	crypto_generichash_update(h, &tag, 1);
	if (s == NULL)
		return;
	keyd_mac_i64(h, (int64_t)strlen(s));
	crypto_generichash_update(h, (const uint8_t *)s, strlen(s));
}

const struct keyd_rowmac keyd_key_rows = {
	"api_keys", "flm api_keys row", KEYD_KEY_MAC_COLS, KEYD_KEY_MAC_NCOLS,
	3,	/* scope, legacy, digest: rows without them keep their MACs */
	2	/* legacy, digest: tagged, so scope cannot pass for either */
};

/* The MAC of t's row in columns col.. of st (t->cols, in order). */
static void
row_mac(const struct keyd_rowmac *t, sqlite3_stmt *st, int col,
    uint8_t mac[KEYD_ROW_MAC_LEN])
{
	crypto_generichash_state	 h;
	int				 i;

	crypto_generichash_init(&h, keyd_row_key(), KEYD_MASTER_LEN,
	    KEYD_ROW_MAC_LEN);
	crypto_generichash_update(&h, (const uint8_t *)t->domain,
	    strlen(t->domain));
	for (i = 0; i < t->ncols; i++) {
		if (i >= t->ncols - t->nopt &&
		    sqlite3_column_type(st, col + i) == SQLITE_NULL)
			continue;
		/* Its position first: an optional value hashed bare would
		 * hash the same in the next optional column. */
		if (i >= t->ncols - t->ntagged)
			keyd_mac_i64(&h, -1 - (int64_t)i);
		keyd_mac_str(&h, sqlite3_column_type(st, col + i) ==
		    SQLITE_NULL ? NULL :
		    (const char *)sqlite3_column_text(st, col + i));
	}
	crypto_generichash_final(&h, mac, KEYD_ROW_MAC_LEN);
}

/* Does the blob after t's columns col.. of st MAC that row? */
int
keyd_row_intact(const struct keyd_rowmac *t, struct sqlite3_stmt *st,
    int col)
{
	uint8_t	 want[KEYD_ROW_MAC_LEN];
	int	 maccol = col + t->ncols;

	if (sqlite3_column_type(st, maccol) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, maccol) != KEYD_ROW_MAC_LEN)
		return 0;
	row_mac(t, st, col, want);
	return sodium_memcmp(want, sqlite3_column_blob(st, maccol),
	    KEYD_ROW_MAC_LEN) == 0;
}

/* MAC t's row id as it now stands: after every write keyd makes. */
int
keyd_row_seal(const struct keyd_rowmac *t, struct db *db, const char *id)
{
	sqlite3_stmt	*st;
	uint8_t		 mac[KEYD_ROW_MAC_LEN];
	char		 sql[256];
	int		 rc;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE id = ?", t->cols,
	    t->table);
	if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row_mac(t, st, 0, mac);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
	snprintf(sql, sizeof(sql), "UPDATE %s SET mac = ? WHERE id = ?",
	    t->table);
	if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_blob(st, 1, mac, sizeof(mac), SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The policy row's MAC: over its id and its text. */
void
keyd_policy_mac(const char *text, uint8_t mac[KEYD_ROW_MAC_LEN])
{
	crypto_generichash_state	 h;

	crypto_generichash_init(&h, keyd_row_key(), KEYD_MASTER_LEN,
	    KEYD_ROW_MAC_LEN);
	crypto_generichash_update(&h, (const uint8_t *)"flm policy row", 14);
	keyd_mac_str(&h, "default");
	keyd_mac_str(&h, text);
	crypto_generichash_final(&h, mac, KEYD_ROW_MAC_LEN);
}

int
keyd_policy_intact(struct sqlite3_stmt *st, int textcol, int maccol)
{
	uint8_t	 want[KEYD_ROW_MAC_LEN];

	if (sqlite3_column_type(st, maccol) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, maccol) != KEYD_ROW_MAC_LEN ||
	    sqlite3_column_type(st, textcol) != SQLITE_TEXT)
		return 0;
	keyd_policy_mac((const char *)sqlite3_column_text(st, textcol), want);
	return sodium_memcmp(want, sqlite3_column_blob(st, maccol),
	    KEYD_ROW_MAC_LEN) == 0;
}

static int
seal_policy(struct db *db)
{
	sqlite3_stmt	*st;
	uint8_t		 mac[KEYD_ROW_MAC_LEN];
	int		 rc;

	if ((rc = sqlite3_prepare_v2(db->h, "SELECT policy_json FROM "
	    "security_policies WHERE id = 'default' AND mac IS NULL", -1,
	    &st, NULL)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		keyd_policy_mac((const char *)sqlite3_column_text(st, 0), mac);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	if ((rc = sqlite3_prepare_v2(db->h, "UPDATE security_policies SET "
	    "mac = ? WHERE id = 'default'", -1, &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_blob(st, 1, mac, sizeof(mac), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Every key row without a MAC, sealed; how many in *n. */
static int
seal_keys(struct db *db, int *n)
{
	sqlite3_stmt	*st;
	char		(*ids)[FLM_KEY_ID_LEN + 1] = NULL, (*nids)[FLM_KEY_ID_LEN + 1];
	int		 i, rc;

	*n = 0;
	/* Read first: sealing writes the table being read. */
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT id FROM api_keys WHERE "
	    "mac IS NULL", -1, &st, NULL)) != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nids = reallocarray(ids, (size_t)*n + 1,
		    sizeof(*ids))) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		ids = nids;
		snprintf(ids[(*n)++], sizeof(*ids), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	for (i = 0; i < *n && rc == SQLITE_OK; i++)
		rc = keyd_row_seal(&keyd_key_rows, db, ids[i]);
	free(ids);
	return rc;
}

/*
 * A master-key rotation, inside its transaction: every key row and the
 * policy row MAC'd again under the new master key's row key.
 */
int
keyd_rows_remaster(struct db *db, int *n)
{
	int	 rc;

	if ((rc = sqlite3_exec(db->h, "UPDATE api_keys SET mac = NULL; "
	    "UPDATE security_policies SET mac = NULL", NULL, NULL, NULL)) !=
	    SQLITE_OK)
		return rc;
	if ((rc = seal_keys(db, n)) != SQLITE_OK)
		return rc;
	return seal_policy(db);
}

static int
sealed_before(struct db *db)
{
	sqlite3_stmt	*st;
	int		 found = 0;

	if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM keyd_state WHERE name = "
	    "'" SEALED_MARK "'", -1, &st, NULL) != SQLITE_OK)
		return 0;
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/*
 * The rows from before migration 004 have no MAC: the first start
 * after it (keyd has the master key) seals them, once, and notes it.
 * Never again: with the note or the audit anchor (keyd has run with row
 * MACs) present, a row without a MAC is one keyd did not write.
 */
void
keyd_integrity_init(struct db *db, int anchored)
{
	int	 n = 0, rc;

	if (db->h == NULL || db->safe_mode || sealed_before(db))
		return;
	if (anchored) {
		log_warnx("security.db has lost keyd's note that its rows were "
		    "sealed; rows without a MAC stay refused");
		return;
	}
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK ||
	    (rc = seal_keys(db, &n)) != SQLITE_OK ||
	    (rc = seal_policy(db)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db->h, "INSERT INTO keyd_state (name, value) "
	    "VALUES ('" SEALED_MARK "', strftime('%Y-%m-%dT%H:%M:%fZ', "
	    "'now'))", NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		log_warnx("cannot seal the existing key rows: %s",
		    db_strerror(db, rc));
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	log_info("sealed %d existing key rows and the policy row with "
	    "their MACs", n);
}

/* How many key rows fail their MAC, and whether the policy row holds. */
void
keyd_integrity_scan(struct db *db, int64_t *bad_keys, int *policy_ok)
{
	sqlite3_stmt	*st;

	*bad_keys = 0;
	*policy_ok = 1;
	if (db->h == NULL)
		return;
	if (sqlite3_prepare_v2(db->h, "SELECT " KEYD_KEY_MAC_COLS ", mac "
	    "FROM api_keys", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			if (!keyd_row_intact(&keyd_key_rows, st, 0))
				(*bad_keys)++;
		sqlite3_finalize(st);
	}
	/* No policy row is the default policy: loopback only, safe. */
	if (sqlite3_prepare_v2(db->h, "SELECT policy_json, mac FROM "
	    "security_policies WHERE id = 'default'", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*policy_ok = keyd_policy_intact(st, 0, 1);
		sqlite3_finalize(st);
	}
}
