/*
 * API keys another gateway issued (flm migrate legacy, docs/
 * MIGRATION_GUIDE.md).  A plain key is stored as Argon2id of the whole
 * token; a bcrypt hash is kept as it is until the key's first good use,
 * checked with crypt_r(3), then replaced by Argon2id.  Either is found
 * by its digest: BLAKE2b of the token keyed with a subkey of the master
 * key, UNIQUE-indexed.  A bcrypt row has no digest before that use (the
 * token is not known before): only those rows are tried one by one,
 * each try paid from the cold-check budget.
 * The digest key is the first master key's subkey; a master-key
 * rotation cannot make the digests again (it has no tokens), so from
 * the first rotation on the key is kept in keyd_state, sealed under the
 * master key's wrap key (keyd_legacy_key_seal, _load).
 */
#include "config.h"

#include <crypt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "apikey.h"
#include "db.h"
#include "keyd.h"
#include "legacy.h"
#include "log.h"

struct legacy_in {
	const char	*label;
	const char	*kind;		/* "plain" or "bcrypt" */
	const char	*secret;	/* plain: the token, wiped by the
					 * caller with the request */
	size_t		 len;
	char		 id[FLM_KEY_ID_LEN + 1];
	char		 digest[KEYD_LEGACY_HEX + 1];	/* plain only */
	char		 stored[160];	/* Argon2id, or the bcrypt hash */
};

void
keyd_legacy_digest(const char *tok, size_t len, char hex[KEYD_LEGACY_HEX + 1])
{
	uint8_t	 d[KEYD_LEGACY_HEX / 2];

	crypto_generichash(d, sizeof(d), (const unsigned char *)tok, len,
	    keyd_legacy_key(), KEYD_MASTER_LEN);
	sodium_bin2hex(hex, KEYD_LEGACY_HEX + 1, d, sizeof(d));
	sodium_memzero(d, sizeof(d));
}

#define LEGACY_KEY_STATE	"legacy_digest_key"
#define LEGACY_KEY_AD		"flm legacy digest key"
#define LEGACY_NPUB		crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define LEGACY_SEALED		(LEGACY_NPUB + KEYD_MASTER_LEN + \
				    crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* The digest key sealed under the current wrap key, into keyd_state:
 * inside a rotation's transaction. */
int
keyd_legacy_key_seal(struct db *db)
{
	unsigned char	 wrap[KEYD_MASTER_LEN], buf[LEGACY_SEALED];
	char		 hex[LEGACY_SEALED * 2 + 1];
	sqlite3_stmt	*st;
	int		 rc;

	keyd_wrap_key(wrap);
	randombytes_buf(buf, LEGACY_NPUB);
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + LEGACY_NPUB, NULL,
	    keyd_legacy_key(), KEYD_MASTER_LEN,
	    (const unsigned char *)LEGACY_KEY_AD, sizeof(LEGACY_KEY_AD) - 1,
	    NULL, buf, wrap);
	sodium_memzero(wrap, sizeof(wrap));
	sodium_bin2hex(hex, sizeof(hex), buf, sizeof(buf));
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT OR REPLACE INTO keyd_state "
	    "(name, value) VALUES ('" LEGACY_KEY_STATE "', ?)", -1, &st,
	    NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* At start: the digest key a rotation kept, if there is one. */
void
keyd_legacy_key_load(struct db *db)
{
	unsigned char	 wrap[KEYD_MASTER_LEN], buf[LEGACY_SEALED];
	unsigned char	 key[KEYD_MASTER_LEN];
	sqlite3_stmt	*st;
	const char	*hex;
	size_t		 bin;
	int		 ok = 0;

	if (db->h == NULL || sqlite3_prepare_v2(db->h, "SELECT value FROM "
	    "keyd_state WHERE name = '" LEGACY_KEY_STATE "'", -1, &st,
	    NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return;
	}
	hex = (const char *)sqlite3_column_text(st, 0);
	keyd_wrap_key(wrap);
	if (hex != NULL && sodium_hex2bin(buf, sizeof(buf), hex, strlen(hex),
	    NULL, &bin, NULL) == 0 && bin == sizeof(buf) &&
	    crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL,
	    buf + LEGACY_NPUB, bin - LEGACY_NPUB,
	    (const unsigned char *)LEGACY_KEY_AD, sizeof(LEGACY_KEY_AD) - 1,
	    buf, wrap) == 0)
		ok = 1;
	sqlite3_finalize(st);
	sodium_memzero(wrap, sizeof(wrap));
	if (ok)
		keyd_legacy_key_set(key);
	else
		log_warnx("security.db: the legacy keys' digest key does not "
		    "unseal under this master key: legacy keys will not be "
		    "found; see flm-keyd(8), RECOVERY");
	sodium_memzero(key, sizeof(key));
}

/* crypt_r's verdict on tok (NUL-terminated) and hash: 1 if it matches. */
static int
legacy_crypt_match(const char *tok, const char *hash)
{
	static struct crypt_data	 cd;	/* 32 KiB: not on the stack */
	const char			*out;
	size_t				 hl = strlen(hash);
	int				 ok;

	memset(&cd, 0, sizeof(cd));
	out = crypt_r(tok, hash, &cd);
	ok = out != NULL && strlen(out) == hl &&
	    sodium_memcmp(out, hash, hl) == 0;
	sodium_memzero(&cd, sizeof(cd));
	return ok;
}

struct legacy_cand {
	char	 id[FLM_KEY_ID_LEN + 1];
	char	 hash[LEGACY_BCRYPT_LEN + 1];
};

/* The unused bcrypt rows whose MAC holds (a row keyd did not write is
 * never tried, let alone re-hashed and sealed). */
static int
legacy_candidates(struct db *db, struct legacy_cand **out, size_t *n)
{
	struct legacy_cand	*c = NULL, *nc;
	sqlite3_stmt		*st;
	int			 rc;

	*out = NULL;
	*n = 0;
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT hash, " KEYD_KEY_MAC_COLS
	    ", mac FROM api_keys WHERE legacy = 'bcrypt' AND revoked_at IS "
	    "NULL", -1, &st, NULL)) != SQLITE_OK) {
		log_warnx("verify: %s", db_strerror(db, rc));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!keyd_row_intact(&keyd_key_rows, st, 1) ||
		    !legacy_bcrypt_valid((const char *)sqlite3_column_text(st,
		    0)))
			continue;
		if ((nc = reallocarray(c, *n + 1, sizeof(*c))) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		c = nc;
		snprintf(c[*n].id, sizeof(c[*n].id), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		snprintf(c[*n].hash, sizeof(c[*n].hash), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("verify: %s", db_strerror(db, rc));
		free(c);
		*n = 0;
		return -1;
	}
	*out = c;
	return 0;
}

/* Key id passed its bcrypt check: Argon2id and its digest from now on. */
static void
legacy_rehash(struct db *db, const char *id, const char *tok, size_t len,
    const char *hex)
{
	sqlite3_stmt	*st = NULL;
	char		 enc[160], err[128];
	int		 rc;

	if (db_writable(db, err, sizeof(err)) == -1) {
		log_warnx("legacy key %s: not re-hashed: %s", id, err);
		return;
	}
	if (keyd_key_hash(tok, len, enc, sizeof(enc)) == -1) {
		log_warnx("legacy key %s: cannot hash it", id);
		return;
	}
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL)) !=
	    SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_prepare_v2(db->h, "UPDATE api_keys SET hash = ?1, "
	    "digest = ?2, legacy = 'bcrypt-rehashed' WHERE id = ?3 AND "
	    "legacy = 'bcrypt'", -1, &st, NULL)) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, enc, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE ||
	    (rc = keyd_row_seal(&keyd_key_rows, db, id)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK)
		goto fail;
	log_info("legacy key %s: bcrypt hash replaced by Argon2id after its "
	    "first use", id);
	return;
fail:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	log_warnx("legacy key %s: not re-hashed: %s", id, db_strerror(db, rc));
}

/*
 * tok among the unused bcrypt rows: FLM_KEY_OK and its id (re-hashed
 * now, digest hex set), FLM_KEY_UNKNOWN, or FLM_KEY_UNAVAILABLE when
 * budget() says the cold checks are spent or the database fails.
 */
uint32_t
keyd_legacy_bcrypt(struct db *db, const char *tok, size_t len,
    const char *hex, char id[FLM_KEY_ID_LEN + 1], int (*budget)(void))
{
	struct legacy_cand	*c;
	char			 buf[FLM_TOKEN_MAX + 1];
	size_t			 i, n;
	uint32_t		 r = FLM_KEY_UNKNOWN;

	if (legacy_candidates(db, &c, &n) == -1)
		return FLM_KEY_UNAVAILABLE;
	if (n == 0)
		return FLM_KEY_UNKNOWN;		/* the usual case: no cost */
	memcpy(buf, tok, len);
	buf[len] = '\0';
	for (i = 0; i < n; i++) {
		if (budget() == -1) {
			r = FLM_KEY_UNAVAILABLE;
			break;
		}
		if (legacy_crypt_match(buf, c[i].hash)) {
			snprintf(id, FLM_KEY_ID_LEN + 1, "%s", c[i].id);
			legacy_rehash(db, id, tok, len, hex);
			r = FLM_KEY_OK;
			break;
		}
	}
	sodium_memzero(buf, sizeof(buf));
	free(c);
	return r;
}

static const char *
legacy_str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Entry i of the request into in, checked and hashed; -1 with err. */
static int
legacy_prepare(struct json_object *k, size_t i, struct legacy_in *in,
    char *err, size_t errsz)
{
	uint8_t		 rid[FLM_KEY_ID_LEN / 2];
	const char	*h;

	memset(in, 0, sizeof(*in));
	if (!json_object_is_type(k, json_type_object) ||
	    (in->label = legacy_str(k, "label")) == NULL ||
	    !apikey_label_valid(in->label) ||
	    (in->kind = legacy_str(k, "legacy")) == NULL) {
		snprintf(err, errsz, "keys[%zu]: expected {label (1-64 of "
		    "A-Z a-z 0-9 . _ -), legacy, secret or hash}", i);
		return -1;
	}
	randombytes_buf(rid, sizeof(rid));
	sodium_bin2hex(in->id, sizeof(in->id), rid, sizeof(rid));
	if (strcmp(in->kind, "bcrypt") == 0) {
		if ((h = legacy_str(k, "hash")) == NULL ||
		    !legacy_bcrypt_valid(h)) {
			snprintf(err, errsz, "key '%s': not a bcrypt hash "
			    "($2a$, $2b$ or $2y$)", in->label);
			return -1;
		}
		snprintf(in->stored, sizeof(in->stored), "%s", h);
		return 0;
	}
	if (strcmp(in->kind, "plain") != 0 ||
	    (in->secret = legacy_str(k, "secret")) == NULL ||
	    !apikey_legacy_valid(in->secret, (in->len = strlen(in->secret)))) {
		snprintf(err, errsz, "key '%s': a plain key is 1-%d printable "
		    "characters, no blank, not starting flm_", in->label,
		    FLM_TOKEN_MAX);
		return -1;
	}
	keyd_legacy_digest(in->secret, in->len, in->digest);
	if (keyd_key_hash(in->secret, in->len, in->stored,
	    sizeof(in->stored)) == -1) {
		snprintf(err, errsz, "key '%s': cannot hash it", in->label);
		return -1;
	}
	return 0;
}

static int
legacy_count(struct db *db, int64_t *n)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(db->h, "SELECT count(*) FROM api_keys",
	    -1, &st, NULL)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int
legacy_insert(struct db *db, const struct legacy_in *in, char *err,
    size_t errsz)
{
	sqlite3_stmt	*st;
	char		 now[32];
	int		 rc;

	keyd_now(now, sizeof(now));
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT INTO api_keys (id, label, "
	    "hash, created_at, legacy, digest) VALUES (?, ?, ?, ?, ?, ?)", -1,
	    &st, NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	sqlite3_bind_text(st, 1, in->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, in->label, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->stored, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, in->kind, -1, SQLITE_STATIC);
	if (in->secret != NULL)
		sqlite3_bind_text(st, 6, in->digest, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		rc = keyd_row_seal(&keyd_key_rows, db, in->id);
	else
		rc = sqlite3_extended_errcode(db->h);
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT_UNIQUE &&
	    strstr(sqlite3_errmsg(db->h), "label") != NULL)
		snprintf(err, errsz, "key '%s': a key with that label already "
		    "exists", in->label);
	else if (rc == SQLITE_CONSTRAINT_UNIQUE &&
	    strstr(sqlite3_errmsg(db->h), "digest") != NULL)
		snprintf(err, errsz, "key '%s': the same key is already "
		    "stored", in->label);
	else
		snprintf(err, errsz, "key '%s': %s", in->label,
		    db_strerror(db, rc));
	return -1;
}

/*
 * Read back what was written, inside the transaction: as many rows
 * more as imported, each found by its label with its id, kind and an
 * intact MAC, each plain one found by its digest.
 */
static int
legacy_postcheck(struct db *db, const struct legacy_in *in, size_t n,
    int64_t before, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int64_t		 after = -1;
	size_t		 i;
	int		 rc, ok;

	if ((rc = legacy_count(db, &after)) != SQLITE_OK ||
	    after != before + (int64_t)n) {
		snprintf(err, errsz, "%" PRId64 " keys stored, %" PRId64
		    " expected", after, before + (int64_t)n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((rc = sqlite3_prepare_v2(db->h, "SELECT legacy, "
		    KEYD_KEY_MAC_COLS ", mac, (SELECT id FROM api_keys WHERE "
		    "digest = ?2) FROM api_keys WHERE label = ?1", -1, &st,
		    NULL)) != SQLITE_OK) {
			snprintf(err, errsz, "%s", db_strerror(db, rc));
			return -1;
		}
		sqlite3_bind_text(st, 1, in[i].label, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, in[i].digest, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_ROW &&
		    strcmp((const char *)sqlite3_column_text(st, 1),
		    in[i].id) == 0 &&
		    sqlite3_column_type(st, 0) == SQLITE_TEXT &&
		    strcmp((const char *)sqlite3_column_text(st, 0),
		    in[i].kind) == 0;
		if (ok && !keyd_row_intact(&keyd_key_rows, st, 1)) {
			snprintf(err, errsz, "key '%s': its row fails its MAC",
			    in[i].label);
			sqlite3_finalize(st);
			return -1;
		}
		if (ok && in[i].secret != NULL && (sqlite3_column_type(st,
		    2 + KEYD_KEY_MAC_NCOLS) != SQLITE_TEXT || strcmp((const
		    char *)sqlite3_column_text(st, 2 + KEYD_KEY_MAC_NCOLS),
		    in[i].id) != 0)) {
			snprintf(err, errsz, "key '%s': not found by its digest",
			    in[i].label);
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
		if (!ok) {
			snprintf(err, errsz, "key '%s': not read back as "
			    "written", in[i].label);
			return -1;
		}
	}
	return 0;
}

static struct json_object *
legacy_result(const struct legacy_in *in, size_t n, int64_t total,
    struct json_object *policy)
{
	struct json_object	*res = json_object_new_object();
	struct json_object	*arr = json_object_new_array(), *o;
	size_t			 i;

	for (i = 0; i < n; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(
		    in[i].id));
		json_object_object_add(o, "label", json_object_new_string(
		    in[i].label));
		json_object_object_add(o, "legacy", json_object_new_string(
		    in[i].kind));
		json_object_array_add(arr, o);
	}
	json_object_object_add(res, "imported", json_object_new_int64(
	    (int64_t)n));
	json_object_object_add(res, "keys", arr);
	json_object_object_add(res, "count", json_object_new_int64(total));
	json_object_object_add(res, "policy", policy);
	return res;
}

/*
 * flm migrate legacy --apply: req {keys: [{label, legacy: "plain",
 * secret} or {label, legacy: "bcrypt", hash}], policy?}.  Every key and
 * the policy in one transaction, read back before it commits; any
 * failure rolls all of it back.  *res {imported, keys: [{id, label,
 * legacy}], count, policy}.
 */
int
keyd_legacy_import(struct db *db, struct json_object *req,
    struct json_object **res, char *err, size_t errsz)
{
	struct json_object	*keys, *pol = NULL;
	struct legacy_in	*in = NULL;
	char			 why[400];
	int64_t			 before = 0;
	size_t			 i, n;
	int			 rc, rv = -1;

	*res = NULL;
	if (!json_object_object_get_ex(req, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array) ||
	    (n = json_object_array_length(keys)) > KEYD_LEGACY_MAX) {
		snprintf(err, errsz, "keys: expected an array of at most %d",
		    KEYD_LEGACY_MAX);
		return -1;
	}
	if (db_writable(db, err, errsz) == -1)
		return -1;
	if (n > 0 && (in = calloc(n, sizeof(*in))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	/* The Argon2 runs before the write lock is taken. */
	for (i = 0; i < n; i++)
		if (legacy_prepare(json_object_array_get_idx(keys, i), i,
		    &in[i], err, errsz) == -1)
			goto done;
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL)) !=
	    SQLITE_OK || (rc = legacy_count(db, &before)) != SQLITE_OK) {
		snprintf(err, errsz, "nothing imported: %s",
		    db_strerror(db, rc));
		goto rollback;
	}
	for (i = 0; i < n; i++)
		if (legacy_insert(db, &in[i], why, sizeof(why)) == -1) {
			snprintf(err, errsz, "nothing imported (rolled back): "
			    "%s", why);
			goto rollback;
		}
	if (json_object_object_get(req, "policy") != NULL) {
		if (keyd_policy_set(db, req, &pol, why, sizeof(why)) == -1) {
			snprintf(err, errsz, "nothing imported (rolled back): "
			    "the policy: %s", why);
			goto rollback;
		}
	}
	if (legacy_postcheck(db, in, n, before, why, sizeof(why)) == -1) {
		snprintf(err, errsz, "the post-check failed: %s; rolled back: "
		    "nothing was imported", why);
		log_warnx("flm migrate legacy: %s", err);
		goto rollback;
	}
	if ((rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		snprintf(err, errsz, "nothing imported (rolled back): %s",
		    db_strerror(db, rc));
		goto rollback;
	}
	log_info("flm migrate legacy: %zu keys imported%s", n, pol != NULL ?
	    ", policy changed" : "");
	*res = legacy_result(in, n, before + (int64_t)n, pol);
	pol = NULL;
	rv = 0;
	goto done;
rollback:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	/* keyd_policy_set kept the new text as the last good one. */
	if (pol != NULL) {
		json_object_put(pol);
		pol = NULL;
		if (keyd_policy_get(db, &pol, why, sizeof(why)) == -1)
			log_warnx("security policy: %s", why);
	}
done:
	json_object_put(pol);
	if (in != NULL)
		sodium_memzero(in, n * sizeof(*in));
	free(in);
	return rv;
}
