/*
 * The audit trail: rows proxyd sends, written here in one transaction
 * per batch, each chained to its predecessor by a MAC under a key
 * derived from the master key.  The head row says where the chain ends
 * and how far archiving has gone, so a missing tail shows too.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "apikey.h"
#include "chan.h"
#include "db.h"
#include "keyd.h"
#include "log.h"

#define CHAIN_LEN	KEYD_CHAIN_LEN
/* A lock on security.db must not stall key checks: retry later. */
#define AUDIT_BUSY_MS	200
#define AUDIT_REQID_LEN	24		/* "flm-" 16 hex, NUL */
#define AUDIT_ROWS_PER_INSERT	64	/* 896 parameters */
#define AUDIT_NCOLS		15	/* parameters a row */
/* As many records as every proxyd worker may have in flight: a resent
 * record may be that far back, behind the other workers' records. */
#define AUDIT_RESEND_WINDOW	(FLM_AUDIT_INFLIGHT * FLM_AUDIT_BATCH_MAX * \
				    FLM_WORKERS_MAX)
#define TAIL_MAX	500	/* the answer fits one message */
#define AUDIT_SKEW_MS	2000	/* a clock step between stamp and batch */

struct audit_head {
	int64_t		 last_id;
	uint8_t		 last_chain[CHAIN_LEN];
	int64_t		 archived_through;
	uint8_t		 archived_chain[CHAIN_LEN];
	uint8_t		 mac[CHAIN_LEN];
};

/* One row as hashed: NULL text and NULL numbers are kept apart from
 * empty and zero. */
struct audit_row {
	int64_t		 id;
	const char	*request_id, *key_id, *addr, *endpoint, *model;
	int64_t		 status, latency;
	int64_t		 prompt, completion;	/* -1: NULL */
	const char	*created_at;
	const char	*cert_serial, *cert_label;	/* NULL: none */
	const char	*scope;				/* NULL: none */
};

static const char *const audit_scopes[FLM_SCOPE_MAX] = {
	[FLM_SCOPE_ALLOWED] = "allowed",
	[FLM_SCOPE_DENIED_ENDPOINT] = "denied: endpoint",
	[FLM_SCOPE_DENIED_ADDRESS] = "denied: address",
	[FLM_SCOPE_DENIED_MODEL] = "denied: model",
};

static const char	*col_text(sqlite3_stmt *, int);

static const char *const audit_endpoints[FLM_AUDIT_EP_MAX] = {
	[FLM_AUDIT_EP_MODELS] = "/v1/models",
	[FLM_AUDIT_EP_CHAT] = "/v1/chat/completions",
	[FLM_AUDIT_EP_COMPLETIONS] = "/v1/completions",
	[FLM_AUDIT_EP_EMBEDDINGS] = "/v1/embeddings",
	[FLM_AUDIT_EP_MESSAGES] = "/v1/messages",
	[FLM_AUDIT_EP_OLLAMA_CHAT] = "/api/chat",
	[FLM_AUDIT_EP_OLLAMA_GENERATE] = "/api/generate",
	[FLM_AUDIT_EP_OLLAMA_EMBED] = "/api/embed",
	[FLM_AUDIT_EP_OLLAMA_EMBEDDINGS] = "/api/embeddings",
	[FLM_AUDIT_EP_OLLAMA_TAGS] = "/api/tags",
	[FLM_AUDIT_EP_OLLAMA_SHOW] = "/api/show",
	[FLM_AUDIT_EP_OLLAMA_VERSION] = "/api/version",
	[FLM_AUDIT_EP_RESPONSES] = "/v1/responses",
	[FLM_AUDIT_EP_COUNT_TOKENS] = "/v1/messages/count_tokens",
};

/*
 * What the write path runs for every batch, prepared once and reset
 * after each use: parsing was a good part of a batch's cost.
 */
enum audit_sql {
	AS_HEAD_READ, AS_HEAD_WRITE, AS_MAX_ID, AS_BEGIN, AS_COMMIT,
	AS_ROLLBACK, AS_N
};
static const char *const audit_sql[AS_N] = {
	[AS_HEAD_READ] = "SELECT last_id, last_chain, archived_through, "
	    "archived_chain, mac FROM audit_head WHERE id = 1",
	[AS_HEAD_WRITE] = "INSERT OR REPLACE INTO audit_head (id, last_id, "
	    "last_chain, archived_through, archived_chain, mac, updated_at) "
	    "VALUES (1, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
	[AS_MAX_ID] = "SELECT coalesce(max(id), 0) FROM audit_logs",
	[AS_BEGIN] = "BEGIN IMMEDIATE",
	[AS_COMMIT] = "COMMIT",
	[AS_ROLLBACK] = "ROLLBACK",
};
static sqlite3_stmt	*audit_stmts[AS_N];

static int
audit_stmt(struct db *db, enum audit_sql k, sqlite3_stmt **st)
{
	int	 rc;

	if (audit_stmts[k] == NULL && (rc = sqlite3_prepare_v2(db->h,
	    audit_sql[k], -1, &audit_stmts[k], NULL)) != SQLITE_OK)
		return rc;
	*st = audit_stmts[k];
	return SQLITE_OK;
}

/* A statement without result rows, run once: SQLITE_OK or the error. */
static int
audit_run(struct db *db, enum audit_sql k)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = audit_stmt(db, k, &st)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * The keyed hash's state after its key block: a copy of it starts each
 * row's hash, one BLAKE2b compression fewer a row than an init.  Made
 * per write and per verify, so a new master key is always used.
 */
static void
audit_chain_key(crypto_generichash_state *h)
{
	crypto_generichash_init(h, keyd_audit_key(), KEYD_MASTER_LEN,
	    CHAIN_LEN);
}

static void
audit_chain_from(const crypto_generichash_state *key,
    const uint8_t prev[CHAIN_LEN], const struct audit_row *r,
    uint8_t out[CHAIN_LEN])
{
	crypto_generichash_state	 h;

	memcpy(&h, key, sizeof(h));
	crypto_generichash_update(&h, prev, CHAIN_LEN);
	keyd_mac_i64(&h, r->id);
	keyd_mac_str(&h, r->request_id);
	keyd_mac_str(&h, r->key_id);
	keyd_mac_str(&h, r->addr);
	keyd_mac_str(&h, r->endpoint);
	keyd_mac_str(&h, r->model);
	keyd_mac_i64(&h, r->status);
	keyd_mac_i64(&h, r->latency);
	keyd_mac_i64(&h, r->prompt);
	keyd_mac_i64(&h, r->completion);
	keyd_mac_str(&h, r->created_at);
	/* Only when there: rows from before migration 005 keep their
	 * hashes. */
	if (r->cert_serial != NULL || r->cert_label != NULL) {
		keyd_mac_str(&h, r->cert_serial);
		keyd_mac_str(&h, r->cert_label);
	}
	/* Likewise for migration 008's. */
	if (r->scope != NULL) {
		crypto_generichash_update(&h, (const uint8_t *)"scope", 5);
		keyd_mac_str(&h, r->scope);
	}
	crypto_generichash_final(&h, out, CHAIN_LEN);
	sodium_memzero(&h, sizeof(h));
}

/*
 * The audit keys of earlier master keys (docs/DB_SCHEMA.md,
 * "audit_keys"): rows first..last were chained under key.  Loaded for
 * one verify, unsealed with the current master key's wrap key.
 */
struct audit_seg {
	int64_t		 first, last;
	unsigned char	 key[KEYD_MASTER_LEN];
};
static struct audit_seg	*audit_segs;
static size_t		 audit_nsegs;

/* The key row id was chained under: an earlier one's, or the current. */
static const unsigned char *
audit_key_for(int64_t id)
{
	size_t	 i;

	for (i = 0; i < audit_nsegs; i++)
		if (id >= audit_segs[i].first && id <= audit_segs[i].last)
			return audit_segs[i].key;
	return keyd_audit_key();
}

static void
audit_chain(const uint8_t prev[CHAIN_LEN], const struct audit_row *r,
    uint8_t out[CHAIN_LEN])
{
	crypto_generichash_state	 key;

	crypto_generichash_init(&key, audit_key_for(r->id), KEYD_MASTER_LEN,
	    CHAIN_LEN);
	audit_chain_from(&key, prev, r, out);
	sodium_memzero(&key, sizeof(key));
}

static void
audit_head_mac_with(const unsigned char *key, const struct audit_head *hd,
    uint8_t out[CHAIN_LEN])
{
	crypto_generichash_state	 h;

	crypto_generichash_init(&h, key, KEYD_MASTER_LEN, CHAIN_LEN);
	crypto_generichash_update(&h, (const uint8_t *)"flm audit head", 14);
	keyd_mac_i64(&h, hd->last_id);
	crypto_generichash_update(&h, hd->last_chain, CHAIN_LEN);
	keyd_mac_i64(&h, hd->archived_through);
	crypto_generichash_update(&h, hd->archived_chain, CHAIN_LEN);
	crypto_generichash_final(&h, out, CHAIN_LEN);
}

static void
audit_head_mac(const struct audit_head *hd, uint8_t out[CHAIN_LEN])
{
	audit_head_mac_with(keyd_audit_key(), hd, out);
}

static int
blob32(sqlite3_stmt *st, int col, uint8_t out[CHAIN_LEN])
{
	if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, col) != CHAIN_LEN)
		return -1;
	memcpy(out, sqlite3_column_blob(st, col), CHAIN_LEN);
	return 0;
}

/* 1 and the head, 0 if there is none yet, -1 on trouble (rc set). */
static int
head_read(struct db *db, struct audit_head *hd, int *rc)
{
	sqlite3_stmt	*st;
	int		 r = -1;

	memset(hd, 0, sizeof(*hd));
	if ((*rc = audit_stmt(db, AS_HEAD_READ, &st)) != SQLITE_OK)
		return -1;
	if ((*rc = sqlite3_step(st)) == SQLITE_DONE)
		r = 0;
	else if (*rc == SQLITE_ROW) {
		hd->last_id = sqlite3_column_int64(st, 0);
		hd->archived_through = sqlite3_column_int64(st, 2);
		if (blob32(st, 1, hd->last_chain) == 0 &&
		    blob32(st, 3, hd->archived_chain) == 0 &&
		    blob32(st, 4, hd->mac) == 0)
			r = 1;
		else
			r = 2;	/* present but mangled */
		*rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	return r;
}

static int
head_write(struct db *db, struct audit_head *hd)
{
	sqlite3_stmt	*st;
	int		 rc;

	audit_head_mac(hd, hd->mac);
	if ((rc = audit_stmt(db, AS_HEAD_WRITE, &st)) != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, hd->last_id);
	sqlite3_bind_blob(st, 2, hd->last_chain, CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, hd->archived_through);
	sqlite3_bind_blob(st, 4, hd->archived_chain, CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, hd->mac, CHAIN_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One number from SQL that gives one; 0 when it cannot. */
static int64_t
audit_number(struct db *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 n = 0;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int64_t
max_id(struct db *db)
{
	sqlite3_stmt	*st;
	int64_t		 n = 0;

	if (audit_stmt(db, AS_MAX_ID, &st) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/*
 * Where the chain stands, for the anchor outside security.db: 1 and
 * *pos from a head whose MAC holds, 0 when there is no head, -1 when
 * it is unreadable or altered.
 */
int
keyd_audit_pos(struct db *db, struct keyd_audit_pos *pos)
{
	struct audit_head	 hd;
	uint8_t			 mac[CHAIN_LEN];
	int			 rc, have;

	memset(pos, 0, sizeof(*pos));
	if (db->h == NULL || (have = head_read(db, &hd, &rc)) == -1 ||
	    have == 2)
		return -1;
	if (have == 0)
		return 0;
	audit_head_mac(&hd, mac);
	if (sodium_memcmp(mac, hd.mac, CHAIN_LEN) != 0)
		return -1;
	pos->last_id = hd.last_id;
	memcpy(pos->last_chain, hd.last_chain, CHAIN_LEN);
	pos->archived_through = hd.archived_through;
	return 1;
}

/*
 * The link of row id as this database has it: a live row's chain, or
 * the end of an archive.  0, or -1 when the database cannot say (the
 * row is gone, or in the middle of an archive).
 */
int
keyd_audit_link(struct db *db, int64_t id, uint8_t chain[KEYD_CHAIN_LEN])
{
	sqlite3_stmt	*st;
	int		 r = -1;

	if (id == 0) {
		memset(chain, 0, CHAIN_LEN);	/* the chain's start */
		return 0;
	}
	if (sqlite3_prepare_v2(db->h, "SELECT chain FROM audit_logs WHERE "
	    "id = ?1 UNION ALL SELECT last_chain FROM audit_archives WHERE "
	    "last_id = ?1 LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && blob32(st, 0, chain) == 0)
		r = 0;
	sqlite3_finalize(st);
	return r;
}

/* The first row of the chain this database holds: archived or live. */
static void
audit_genesis(struct db *db, struct json_object *res)
{
	struct json_object	*g = json_object_new_object();
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(db->h, "SELECT id, created_at, 'live' FROM "
	    "audit_logs WHERE id = (SELECT min(id) FROM audit_logs) UNION ALL "
	    "SELECT first_id, NULL, file FROM audit_archives ORDER BY 1 "
	    "LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			json_object_object_add(g, "id",
			    json_object_new_int64(sqlite3_column_int64(st, 0)));
			json_object_object_add(g, "created_at",
			    col_text(st, 1) == NULL ? NULL :
			    json_object_new_string(col_text(st, 1)));
			json_object_object_add(g, "in",
			    json_object_new_string(col_text(st, 2)));
		}
		sqlite3_finalize(st);
	}
	json_object_object_add(res, "genesis", g);
}

/* A new trail starts with its head, so a head that is gone shows. */
int
keyd_audit_init(struct db *db)
{
	struct audit_head	 hd;
	int			 rc;

	if (db->h == NULL || db->safe_mode)
		return 0;
	if (head_read(db, &hd, &rc) != 0 || max_id(db) != 0)
		return 0;
	if ((rc = head_write(db, &hd)) != SQLITE_OK) {
		log_warnx("audit: cannot start the chain: %s",
		    db_strerror(db, rc));
		return -1;
	}
	return 0;
}

/* Checked here, not trusted: proxyd is the less privileged peer. */
int
keyd_audit_valid(const struct flm_audit_record *a)
{
	size_t	 i;

	if (a->version != FLM_AUDIT_VERSION ||
	    (a->flags & ~FLM_AUDIT_F_RESENT) != 0 || a->endpoint == 0 ||
	    a->endpoint >= FLM_AUDIT_EP_MAX || a->status < 100 ||
	    a->status > 599 || a->time_ms <= 0 || a->prompt_tokens < -1 ||
	    a->completion_tokens < -1 || a->scope >= FLM_SCOPE_MAX)
		return 0;
	if (memchr(a->key_id, '\0', sizeof(a->key_id)) == NULL ||
	    memchr(a->addr, '\0', sizeof(a->addr)) == NULL ||
	    memchr(a->model, '\0', sizeof(a->model)) == NULL ||
	    memchr(a->cert_serial, '\0', sizeof(a->cert_serial)) == NULL ||
	    memchr(a->cert_label, '\0', sizeof(a->cert_label)) == NULL)
		return 0;
	/* The client certificate: none, or a serial and a label. */
	if ((a->cert_serial[0] != '\0' && !keyd_tls_hex16(a->cert_serial)) ||
	    (a->cert_label[0] != '\0' &&
	    !keyd_tls_label_valid(a->cert_label)))
		return 0;
	if (a->key_id[0] != '\0' && !apikey_id_valid(a->key_id))
		return 0;
	for (i = 0; a->addr[i] != '\0'; i++)
		if (strchr("0123456789abcdefABCDEF.:", a->addr[i]) == NULL)
			return 0;
	for (i = 0; a->model[i] != '\0'; i++)
		if ((unsigned char)a->model[i] < 0x20 || a->model[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * proxyd's clock is keyd's (one host), so a record from the future is
 * a lie: one far ahead would stop archiving, which cuts by time, for
 * good.  Such times are stored as keyd's now.
 */
void
keyd_audit_clamp(struct flm_audit_record *recs, size_t n)
{
	struct timespec	 ts;
	int64_t		 now;
	size_t		 i, clamped = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (i = 0; i < n; i++)
		if (recs[i].time_ms > now + AUDIT_SKEW_MS) {
			recs[i].time_ms = now;
			clamped++;
		}
	if (clamped > 0)
		log_warnx("flm-proxyd sent %zu audit records dated in the "
		    "future; stored with keyd's time", clamped);
}

/* "flm-" and 16 lower-case hex digits, written out: snprintf was a
 * good part of a row's cost. */
static void
audit_reqid(const struct flm_audit_record *a, char buf[AUDIT_REQID_LEN])
{
	static const char	 hex[] = "0123456789abcdef";
	int			 i;

	memcpy(buf, "flm-", 4);
	for (i = 0; i < 16; i++)
		buf[4 + i] = hex[(a->reqid >> (60 - 4 * i)) & 0xf];
	buf[20] = '\0';
}

static int
reqid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Records proxyd sent before, to a keyd that did not acknowledge them:
 * if they were written, they are among the newest rows (no more can be
 * in flight), so only those are looked at.  The ids of those rows,
 * sorted, into *ids; their number, or -1.
 */
static int
audit_recent(struct db *db, int64_t newest, char (**ids)[AUDIT_REQID_LEN])
{
	sqlite3_stmt	*st;
	int		 n = 0, rc;

	*ids = calloc(AUDIT_RESEND_WINDOW, sizeof(**ids));
	if (*ids == NULL || sqlite3_prepare_v2(db->h, "SELECT request_id "
	    "FROM audit_logs WHERE id > ? ORDER BY request_id", -1, &st, NULL) !=
	    SQLITE_OK) {
		free(*ids);
		return -1;
	}
	sqlite3_bind_int64(st, 1, newest - AUDIT_RESEND_WINDOW);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < AUDIT_RESEND_WINDOW)
		snprintf((*ids)[n++], AUDIT_REQID_LEN, "%s",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	/* Sorted by SQLite: glibc's qsort may ask sysinfo(2), which the
	 * sandbox does not allow. */
	return n;
}

static int
audit_written(const struct flm_audit_record *a,
    char (*ids)[AUDIT_REQID_LEN], int n)
{
	char	 id[AUDIT_REQID_LEN];

	if (!(a->flags & FLM_AUDIT_F_RESENT) || n <= 0)
		return 0;
	audit_reqid(a, id);
	return bsearch(id, ids, (size_t)n, sizeof(*ids), reqid_cmp) != NULL;
}

/* keyd_iso, with the date and time of the last second kept: a batch's
 * records mostly share theirs. */
#define AUDIT_WHEN_LEN	25		/* YYYY-MM-DDTHH:MM:SS.mmmZ, NUL */
static void
audit_when(int64_t ms, char buf[AUDIT_WHEN_LEN])
{
	static time_t	 sec = -1;
	static char	 last[32];
	time_t		 t = (time_t)(ms / 1000);
	int		 m = (int)(ms % 1000);

	if (t != sec) {
		keyd_iso(t, 0, last, sizeof(last));
		sec = t;
	}
	/* "YYYY-MM-DDTHH:MM:SS." then the milliseconds and Z. */
	memcpy(buf, last, 20);
	buf[20] = (char)('0' + m / 100);
	buf[21] = (char)('0' + m / 10 % 10);
	buf[22] = (char)('0' + m % 10);
	buf[23] = 'Z';
	buf[24] = '\0';
}

/* A row's bound text, alive until its INSERT has run: bound without a
 * copy. */
struct audit_txt {
	char	 reqid[AUDIT_REQID_LEN];
	char	 when[AUDIT_WHEN_LEN];
	char	 serial[FLM_CERT_SERIAL_LEN + 1];
	uint8_t	 chain[CHAIN_LEN];
};

/* The row's values at parameters base + 1 ..., and the chain moved on. */
static void
audit_bind(sqlite3_stmt *st, int base, const crypto_generichash_state *key,
    struct audit_head *hd, int64_t id, const struct flm_audit_record *a,
    struct audit_txt *t)
{
	struct audit_row	 r;
	size_t			 i;

	/* Serials are stored in lower case, as keyd makes them. */
	for (i = 0; i < sizeof(t->serial); i++)
		t->serial[i] = (char)tolower((unsigned char)a->cert_serial[i]);
	audit_reqid(a, t->reqid);
	audit_when(a->time_ms, t->when);
	r.id = id;
	r.request_id = t->reqid;
	r.key_id = a->key_id[0] ? a->key_id : NULL;
	r.addr = a->addr[0] ? a->addr : NULL;
	r.endpoint = audit_endpoints[a->endpoint];
	r.model = a->model[0] ? a->model : NULL;
	r.status = a->status;
	r.latency = a->latency_ms;
	r.prompt = a->prompt_tokens;
	r.completion = a->completion_tokens;
	r.created_at = t->when;
	r.cert_serial = t->serial[0] ? t->serial : NULL;
	r.cert_label = a->cert_label[0] ? a->cert_label : NULL;
	r.scope = audit_scopes[a->scope];
	audit_chain_from(key, hd->last_chain, &r, t->chain);
	/* Every text outlives the step: a, t and the endpoint table. */
#define BIND_TEXT(i, s) (s) == NULL ? sqlite3_bind_null(st, base + i) : \
	sqlite3_bind_text(st, base + i, s, -1, SQLITE_STATIC)
#define BIND_NUM(i, v) (v) < 0 ? sqlite3_bind_null(st, base + i) : \
	sqlite3_bind_int64(st, base + i, v)
	sqlite3_bind_int64(st, base + 1, r.id);
	sqlite3_bind_text(st, base + 2, t->reqid, 20, SQLITE_STATIC);
	BIND_TEXT(3, r.key_id);
	BIND_TEXT(4, r.addr);
	BIND_TEXT(5, r.endpoint);
	BIND_TEXT(6, r.model);
	sqlite3_bind_int64(st, base + 7, r.status);
	sqlite3_bind_int64(st, base + 8, r.latency);
	BIND_NUM(9, r.prompt);
	BIND_NUM(10, r.completion);
	sqlite3_bind_text(st, base + 11, t->when, AUDIT_WHEN_LEN - 1,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, base + 12, t->chain, CHAIN_LEN, SQLITE_STATIC);
	BIND_TEXT(13, r.cert_serial);
	BIND_TEXT(14, r.cert_label);
	BIND_TEXT(15, r.scope);
#undef BIND_TEXT
#undef BIND_NUM
	hd->last_id = r.id;
	memcpy(hd->last_chain, t->chain, CHAIN_LEN);
}

/* One INSERT of k rows: a batch costs a few statements, not one each. */
static int
audit_prepare(struct db *db, int k, sqlite3_stmt **st)
{
	char	 sql[200 + AUDIT_ROWS_PER_INSERT * 40];
	size_t	 n;
	int	 i;

	n = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO audit_logs (id, "
	    "request_id, api_key_id, client_addr, endpoint, model, status, "
	    "latency_ms, prompt_tokens, completion_tokens, created_at, chain, "
	    "cert_serial, cert_label, scope) VALUES ");
	for (i = 0; i < k && n < sizeof(sql); i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
		    "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", i ? "," : "");
	return sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
}

/*
 * INSERTs of 64, 32, ... 1 rows, each prepared once: a batch is full
 * ones and then at most one of each smaller size.  audit_ins[i] has
 * 2^i rows.
 */
#define AUDIT_INS_SIZES	7		/* 1 .. AUDIT_ROWS_PER_INSERT */
static sqlite3_stmt	*audit_ins[AUDIT_INS_SIZES];

static int
audit_insert(struct db *db, struct audit_head *hd, int64_t next,
    const struct flm_audit_record *recs, const size_t *todo, size_t m)
{
	static struct audit_txt		 txt[AUDIT_ROWS_PER_INSERT];
	crypto_generichash_state	 key;
	sqlite3_stmt			*st;
	size_t				 i, j, k;
	int				 rc = SQLITE_OK, b;

	audit_chain_key(&key);
	for (i = 0; i < m && rc == SQLITE_OK; i += k) {
		for (b = AUDIT_INS_SIZES - 1; (size_t)1 << b > m - i; b--)
			;
		k = (size_t)1 << b;
		if (audit_ins[b] == NULL &&
		    (rc = audit_prepare(db, (int)k, &audit_ins[b])) != SQLITE_OK)
			break;
		st = audit_ins[b];
		for (j = 0; j < k; j++)
			audit_bind(st, (int)j * AUDIT_NCOLS, &key, hd, next++,
			    &recs[todo[i + j]], &txt[j]);
		if ((rc = sqlite3_step(st)) == SQLITE_DONE)
			rc = SQLITE_OK;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	sodium_memzero(&key, sizeof(key));
	return rc;
}

static void	audit_queue_free(void);

void
keyd_audit_close(void)
{
	int	 i;

	for (i = 0; i < AUDIT_INS_SIZES; i++) {
		sqlite3_finalize(audit_ins[i]);
		audit_ins[i] = NULL;
	}
	for (i = 0; i < AS_N; i++) {
		sqlite3_finalize(audit_stmts[i]);
		audit_stmts[i] = NULL;
	}
	audit_queue_free();
}

/* All n records in one transaction: all of them are written, or none. */
int
keyd_audit_write(struct db *db, const struct flm_audit_record *recs, size_t n)
{
	struct audit_head	 hd;
	char			(*recent)[AUDIT_REQID_LEN] = NULL;
	size_t			*todo = NULL;
	int64_t			 next;
	size_t			 i, m;
	int			 rc, have, nrecent = 0;

	if (db->h == NULL || db->safe_mode)
		return -1;
	if ((todo = reallocarray(NULL, n, sizeof(*todo))) == NULL) {
		rc = SQLITE_NOMEM;
		goto fail;
	}
	sqlite3_busy_timeout(db->h, AUDIT_BUSY_MS);
	rc = audit_run(db, AS_BEGIN);
	sqlite3_busy_timeout(db->h, DB_BUSY_MS);
	if (rc != SQLITE_OK)
		goto fail;
	if ((have = head_read(db, &hd, &rc)) == -1)
		goto fail;
	if (have == 2) {
		log_warnx("audit_head is mangled; writing on from the newest "
		    "row (flm audit verify will report it)");
		memset(&hd, 0, sizeof(hd));
	}
	/* Past any row slipped in behind keyd's back: verify shows it. */
	next = max_id(db);
	if (next < hd.last_id)
		next = hd.last_id;
	next++;
	for (i = 0; i < n; i++)
		if (recs[i].flags & FLM_AUDIT_F_RESENT) {
			if ((nrecent = audit_recent(db, next - 1,
			    &recent)) == -1) {
				rc = SQLITE_NOMEM;
				goto fail;
			}
			break;
		}
	for (i = m = 0; i < n; i++)
		if (!audit_written(&recs[i], recent, nrecent))
			todo[m++] = i;
	free(recent);
	recent = NULL;
	if ((rc = audit_insert(db, &hd, next, recs, todo, m)) != SQLITE_OK)
		goto fail;
	if ((rc = head_write(db, &hd)) != SQLITE_OK ||
	    (rc = audit_run(db, AS_COMMIT)) != SQLITE_OK)
		goto fail;
	free(todo);
	return 0;
fail:
	log_warnx("audit: %zu records not written yet: %s", n,
	    db_strerror(db, rc));
	free(recent);
	free(todo);
	if (!sqlite3_get_autocommit(db->h))
		audit_run(db, AS_ROLLBACK);
	return -1;
}

/*
 * Group commit: batches are queued as they are read and written when
 * the event loop has dispatched everything that was readable, so all
 * the batches waiting then (a backlog on one channel, or several
 * proxyd's) share one transaction and one WAL append.  Each is
 * acknowledged once that commit is done, in the order it came.
 */
#define AUDIT_GROUP_MAX	(4 * FLM_AUDIT_INFLIGHT * FLM_AUDIT_BATCH_MAX)

struct audit_waiting {
	struct chan	*ch;
	uint64_t	 seq;
	size_t		 n;		/* its records, in gq's order */
};

static struct flm_audit_record	*gq;		/* records queued */
static size_t			 gq_n, gq_cap;
static struct audit_waiting	*gw;		/* their batches */
static size_t			 gw_n, gw_cap;
static struct event		*gq_ev;
static struct db		*gq_db;

static void
audit_group_write(evutil_socket_t fd, short ev, void *arg)
{
	struct flm_audit_ack	 ack;
	size_t			 i;
	int			 ok;

	(void)fd;
	(void)ev;
	(void)arg;
	if (gw_n == 0)
		return;
	ok = keyd_audit_write(gq_db, gq, gq_n) == 0;
	memset(&ack, 0, sizeof(ack));
	ack.version = FLM_AUDIT_VERSION;
	ack.ok = ok;
	for (i = 0; i < gw_n; i++) {
		ack.seq = gw[i].seq;
		chan_compose(gw[i].ch, IMSG_AUDIT_ACK, 0, -1, &ack,
		    sizeof(ack));
	}
	gq_n = gw_n = 0;
}

/*
 * A checked batch from ch, acknowledged after the next group commit;
 * -1 if keyd has no room for it (memory).
 */
int
keyd_audit_queue(struct event_base *base, struct db *db, struct chan *ch,
    uint64_t seq, const struct flm_audit_record *recs, size_t n)
{
	void	*p;
	size_t	 cap;

	if (gq_ev == NULL && (gq_ev = event_new(base, -1, 0,
	    audit_group_write, NULL)) == NULL)
		return -1;
	/* A group is bounded: past it, what waits is written first. */
	if (gq_n + n > AUDIT_GROUP_MAX)
		audit_group_write(-1, 0, NULL);
	if (gq_n + n > gq_cap) {
		cap = gq_cap == 0 ? FLM_AUDIT_BATCH_MAX : gq_cap;
		while (cap < gq_n + n)
			cap *= 2;
		if ((p = reallocarray(gq, cap, sizeof(*gq))) == NULL)
			goto nomem;
		gq = p;
		gq_cap = cap;
	}
	if (gw_n == gw_cap) {
		cap = gw_cap == 0 ? FLM_AUDIT_INFLIGHT : 2 * gw_cap;
		if ((p = reallocarray(gw, cap, sizeof(*gw))) == NULL)
			goto nomem;
		gw = p;
		gw_cap = cap;
	}
	memcpy(gq + gq_n, recs, n * sizeof(*recs));
	gq_n += n;
	gw[gw_n].ch = ch;
	gw[gw_n].seq = seq;
	gw[gw_n++].n = n;
	gq_db = db;
	/* Runs after every event active now: the rest of the reads. */
	if (!event_pending(gq_ev, EV_TIMEOUT, NULL))
		event_active(gq_ev, EV_TIMEOUT, 0);
	return 0;
nomem:
	/* Acks go in order: what waits first, then this one's refusal. */
	audit_group_write(-1, 0, NULL);
	return -1;
}

/*
 * ch is going away (NULL: every peer): its batches are not written
 * and not acknowledged; its proxyd sends them again to a new channel.
 * The records of other channels stay queued.
 */
void
keyd_audit_forget(struct chan *ch)
{
	size_t	 i, j, r, w, n;

	for (i = j = r = w = 0; i < gw_n; i++) {
		n = gw[i].n;
		if (ch == NULL || gw[i].ch == ch) {
			r += n;
			continue;
		}
		memmove(gq + w, gq + r, n * sizeof(*gq));
		gw[j++] = gw[i];
		r += n;
		w += n;
	}
	gq_n = w;
	gw_n = j;
}

static void
audit_queue_free(void)
{
	free(gq);
	free(gw);
	gq = NULL;
	gw = NULL;
	gq_n = gq_cap = gw_n = gw_cap = 0;
	if (gq_ev != NULL)
		event_free(gq_ev);
	gq_ev = NULL;
}

static void
problem(struct json_object *res, int64_t id, const char *kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
problem(struct json_object *res, int64_t id, const char *kind,
    const char *fmt, ...)
{
	struct json_object	*p = json_object_new_object();
	char			 msg[256];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(p, "id", json_object_new_int64(id));
	json_object_object_add(p, "kind", json_object_new_string(kind));
	json_object_object_add(p, "message", json_object_new_string(msg));
	json_object_object_add(res, "problem", p);
	json_object_object_add(res, "ok", json_object_new_boolean(0));
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL :
	    (const char *)sqlite3_column_text(st, i);
}

static int64_t
col_num(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(st, i);
}

#define AUDIT_COLUMNS	"id, request_id, api_key_id, client_addr, endpoint, " \
	"model, status, latency_ms, prompt_tokens, completion_tokens, " \
	"created_at, chain, cert_serial, cert_label, scope"
/* Archives made before migration 008 have no scope column, */
#define AUDIT_COLUMNS_007	"id, request_id, api_key_id, client_addr, " \
	"endpoint, model, status, latency_ms, prompt_tokens, " \
	"completion_tokens, created_at, chain, cert_serial, cert_label, NULL"
/* and those before migration 005 no certificate columns. */
#define AUDIT_COLUMNS_OLD	"id, request_id, api_key_id, client_addr, " \
	"endpoint, model, status, latency_ms, prompt_tokens, " \
	"completion_tokens, created_at, chain, NULL, NULL, NULL"

static void
row_read(sqlite3_stmt *st, struct audit_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->request_id = col_text(st, 1);
	r->key_id = col_text(st, 2);
	r->addr = col_text(st, 3);
	r->endpoint = col_text(st, 4);
	r->model = col_text(st, 5);
	r->status = sqlite3_column_int64(st, 6);
	r->latency = sqlite3_column_int64(st, 7);
	r->prompt = col_num(st, 8);
	r->completion = col_num(st, 9);
	r->created_at = col_text(st, 10);
	r->cert_serial = col_text(st, 12);
	r->cert_label = col_text(st, 13);
	r->scope = col_text(st, 14);
}

/* Does schema's audit_logs have the certificate columns (005)? */
static int
has_col(struct db *db, const char *schema, const char *col)
{
	sqlite3_stmt	*st;
	char		*sql;
	int		 found = 0;

	sql = sqlite3_mprintf("SELECT 1 FROM pragma_table_info('audit_logs', "
	    "%Q) WHERE name = %Q", schema, col);
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) == SQLITE_OK) {
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	sqlite3_free(sql);
	return found;
}


/*
 * Walk the rows of schema's audit_logs, which must be first..last and
 * chained from prev; stop at the first that does not fit.  *prev ends
 * as the last link.  where names an archive in the messages.
 */
static int
verify_span(struct db *db, const char *schema, int64_t first, int64_t last,
    uint8_t prev[CHAIN_LEN], const char *where, struct json_object *res)
{
	sqlite3_stmt		*st;
	struct audit_row	 r;
	uint8_t			 want[CHAIN_LEN], have[CHAIN_LEN];
	int64_t			 expect = first;
	char			*sql;
	int			 rc;

	sql = sqlite3_mprintf("SELECT %s FROM %w.audit_logs ORDER BY id",
	    has_col(db, schema, "scope") ? AUDIT_COLUMNS :
	    has_col(db, schema, "cert_serial") ? AUDIT_COLUMNS_007 :
	    AUDIT_COLUMNS_OLD,
	    schema);
	rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_read(st, &r);
		if (r.id < expect || r.id > last) {
			problem(res, r.id, "inserted", "%srow %" PRId64 " was "
			    "inserted: it is outside the chain keyd recorded "
			    "(rows %" PRId64 "-%" PRId64 ")", where, r.id,
			    first, last);
			break;
		}
		if (r.id > expect) {
			problem(res, expect, "missing", "%srow %" PRId64 " is "
			    "missing%s: the chain jumps from row %" PRId64
			    " to row %" PRId64, where, expect, r.id > expect + 1 ?
			    " (and those after it)" : "", expect - 1, r.id);
			break;
		}
		audit_chain(prev, &r, want);
		if (blob32(st, 11, have) == -1 ||
		    sodium_memcmp(want, have, CHAIN_LEN) != 0) {
			problem(res, r.id, "altered", "%srow %" PRId64 " was "
			    "altered: its chain does not match its content",
			    where, r.id);
			break;
		}
		memcpy(prev, have, CHAIN_LEN);
		expect++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (json_object_object_get(res, "problem") == NULL && expect <= last)
		problem(res, expect, "missing", "%srows %" PRId64 "-%" PRId64
		    " are missing: the newest rows were deleted", where,
		    expect, last);
	return SQLITE_OK;
}

static int
verify_rows(struct db *db, const struct audit_head *hd,
    struct json_object *res)
{
	uint8_t	 prev[CHAIN_LEN];
	int	 rc;

	memcpy(prev, hd->archived_chain, CHAIN_LEN);
	if ((rc = verify_span(db, "main", hd->archived_through + 1,
	    hd->last_id, prev, "", res)) != SQLITE_OK)
		return rc;
	if (json_object_object_get(res, "problem") == NULL &&
	    sodium_memcmp(prev, hd->last_chain, CHAIN_LEN) != 0)
		problem(res, hd->last_id, "head", "the audit head does not "
		    "match row %" PRId64, hd->last_id);
	return SQLITE_OK;
}

static void
archive_mac_with(const unsigned char *key, int64_t first, int64_t last,
    const uint8_t prev[CHAIN_LEN], const uint8_t end[CHAIN_LEN],
    uint8_t mac[CHAIN_LEN])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, key, KEYD_MASTER_LEN, CHAIN_LEN);
	crypto_generichash_update(&h, (const uint8_t *)"flm audit archive", 17);
	keyd_mac_i64(&h, first);
	keyd_mac_i64(&h, last);
	crypto_generichash_update(&h, prev, CHAIN_LEN);
	crypto_generichash_update(&h, end, CHAIN_LEN);
	crypto_generichash_final(&h, mac, CHAIN_LEN);
}

static void
archive_mac(int64_t first, int64_t last, const uint8_t prev[CHAIN_LEN],
    const uint8_t end[CHAIN_LEN], uint8_t mac[CHAIN_LEN])
{
	archive_mac_with(keyd_audit_key(), first, last, prev, end, mac);
}

/* An archive made under an earlier master key carries that key's MAC. */
static int
archive_mac_ok(int64_t first, int64_t last, const uint8_t prev[CHAIN_LEN],
    const uint8_t end[CHAIN_LEN], const uint8_t mac[CHAIN_LEN])
{
	uint8_t	 want[CHAIN_LEN];
	size_t	 i;

	archive_mac(first, last, prev, end, want);
	if (sodium_memcmp(want, mac, CHAIN_LEN) == 0)
		return 1;
	for (i = 0; i < audit_nsegs; i++) {
		archive_mac_with(audit_segs[i].key, first, last, prev, end,
		    want);
		if (sodium_memcmp(want, mac, CHAIN_LEN) == 0)
			return 1;
	}
	return 0;
}

/* An archive file as schema arc, for one copy or one check. */
static int
audit_attach(struct db *db, const char *file)
{
	char	*sql;
	int	 rc;

	sql = sqlite3_mprintf("ATTACH %Q AS arc", file);
	rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	return rc;
}

struct archive_ent {
	char		 file[64];
	int64_t		 first, last;
	uint8_t		 end[CHAIN_LEN];
};

/* One archive: its own record, MAC'd, and its rows from prev on. */
static int
verify_archive(struct db *db, const struct archive_ent *a,
    uint8_t prev[CHAIN_LEN], struct json_object *res)
{
	sqlite3_stmt	*st = NULL;
	uint8_t		 p[CHAIN_LEN], e[CHAIN_LEN], mac[CHAIN_LEN];
	char		 where[96];
	int		 rc, ok = 0;

	snprintf(where, sizeof(where), "archive %s: ", a->file);
	/* ATTACH would make an empty one. */
	if (access(a->file, R_OK) == -1) {
		problem(res, a->first, "archive", "%sthe file is missing "
		    "(rows %" PRId64 "-%" PRId64 ")", where, a->first, a->last);
		return SQLITE_OK;
	}
	if ((rc = audit_attach(db, a->file)) != SQLITE_OK) {
		problem(res, a->first, "archive", "%scannot be opened: %s",
		    where, sqlite3_errmsg(db->h));
		return SQLITE_OK;
	}
	if (sqlite3_prepare_v2(db->h, "SELECT first_id, last_id, prev_chain, "
	    "last_chain, mac FROM arc.archive_info", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_int64(st, 0) == a->first &&
	    sqlite3_column_int64(st, 1) == a->last &&
	    blob32(st, 2, p) == 0 && blob32(st, 3, e) == 0 &&
	    blob32(st, 4, mac) == 0) {
		ok = archive_mac_ok(a->first, a->last, p, e, mac) &&
		    sodium_memcmp(p, prev, CHAIN_LEN) == 0 &&
		    sodium_memcmp(e, a->end, CHAIN_LEN) == 0;
	}
	sqlite3_finalize(st);
	if (!ok)
		problem(res, a->first, "archive", "%sits record of the rows "
		    "it holds was altered, or it is not the archive keyd made",
		    where);
	else if ((rc = verify_span(db, "arc", a->first, a->last, prev, where,
	    res)) == SQLITE_OK && json_object_object_get(res, "problem") ==
	    NULL && sodium_memcmp(prev, a->end, CHAIN_LEN) != 0)
		problem(res, a->last, "archive", "%sits last row does not end "
		    "the chain it recorded", where);
	sqlite3_exec(db->h, "DETACH arc", NULL, NULL, NULL);
	return rc;
}

/* What an earlier audit key is sealed with: its rows. */
static void
seg_ad(int64_t first, int64_t last, uint8_t ad[24])
{
	int	 i;

	memcpy(ad, "flmaudk\0", 8);
	for (i = 0; i < 8; i++) {
		ad[8 + i] = (uint8_t)((uint64_t)first >> (8 * i));
		ad[16 + i] = (uint8_t)((uint64_t)last >> (8 * i));
	}
}

static void
audit_segs_free(void)
{
	if (audit_segs != NULL)
		sodium_memzero(audit_segs, audit_nsegs * sizeof(*audit_segs));
	free(audit_segs);
	audit_segs = NULL;
	audit_nsegs = 0;
}

/* The earlier audit keys, for one verify; a problem if one does not
 * unseal. */
static int
audit_segs_load(struct db *db, struct json_object *res)
{
	sqlite3_stmt		*st;
	struct audit_seg	*ns;
	unsigned char		 wrap[KEYD_MASTER_LEN];
	uint8_t			 ad[24];
	unsigned long long	 len;
	int			 rc;

	audit_segs_free();
	if (sqlite3_prepare_v2(db->h, "SELECT first_id, last_id, nonce, "
	    "sealed FROM audit_keys ORDER BY first_id", -1, &st, NULL) !=
	    SQLITE_OK)
		return SQLITE_OK;	/* a database from before them */
	keyd_wrap_key(wrap);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((ns = reallocarray(audit_segs, audit_nsegs + 1,
		    sizeof(*ns))) == NULL)
			fatal("%s", __func__);
		audit_segs = ns;
		ns = &audit_segs[audit_nsegs];
		ns->first = sqlite3_column_int64(st, 0);
		ns->last = sqlite3_column_int64(st, 1);
		seg_ad(ns->first, ns->last, ad);
		if (sqlite3_column_bytes(st, 2) !=
		    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
		    sqlite3_column_bytes(st, 3) != KEYD_MASTER_LEN +
		    crypto_aead_xchacha20poly1305_ietf_ABYTES ||
		    crypto_aead_xchacha20poly1305_ietf_decrypt(ns->key, &len,
		    NULL, sqlite3_column_blob(st, 3), (unsigned long long)
		    sqlite3_column_bytes(st, 3), ad, sizeof(ad),
		    sqlite3_column_blob(st, 2), wrap) != 0) {
			problem(res, ns->first, "key", "the audit key of rows %"
			    PRId64 "-%" PRId64 " does not unseal: audit_keys "
			    "was altered", ns->first, ns->last);
			break;
		}
		audit_nsegs++;
	}
	sodium_memzero(wrap, sizeof(wrap));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* key sealed for rows first..last under wrap, into the table. */
static int
seg_store(struct db *db, int64_t id, int64_t first, int64_t last,
    const unsigned char *key, const unsigned char *wrap)
{
	sqlite3_stmt		*st;
	uint8_t			 ad[24];
	unsigned char		 nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char		 ct[KEYD_MASTER_LEN +
				    crypto_aead_xchacha20poly1305_ietf_ABYTES];
	unsigned long long	 clen;
	int			 rc;

	seg_ad(first, last, ad);
	randombytes_buf(nonce, sizeof(nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, key,
	    KEYD_MASTER_LEN, ad, sizeof(ad), NULL, nonce, wrap);
	if ((rc = sqlite3_prepare_v2(db->h, id > 0 ? "UPDATE audit_keys SET "
	    "nonce = ?1, sealed = ?2 WHERE id = ?3" : "INSERT INTO audit_keys "
	    "(nonce, sealed, first_id, last_id) VALUES (?1, ?2, ?4, ?5)", -1,
	    &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_blob(st, 1, nonce, sizeof(nonce), SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, ct, (int)clen, SQLITE_STATIC);
	if (id > 0)
		sqlite3_bind_int64(st, 3, id);
	else {
		sqlite3_bind_int64(st, 4, first);
		sqlite3_bind_int64(st, 5, last);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * A master-key rotation, inside its transaction (the new key current,
 * the old in keyd_prev): the rows chained so far become a segment whose
 * key is kept sealed under the new master key; the earlier segments'
 * keys are sealed again; the head is MAC'd under the new key.  The
 * head must verify under the old key first: a forged one is not
 * laundered.  -1: the head does not verify (err set).
 */
int
keyd_audit_remaster(struct db *db, char *err, size_t errsz)
{
	struct audit_head	 hd;
	struct audit_seg	*s;
	unsigned char		 old[KEYD_MASTER_LEN], wrap[KEYD_MASTER_LEN];
	unsigned char		 oldwrap[KEYD_MASTER_LEN];
	uint8_t			 mac[CHAIN_LEN];
	size_t			 i;
	int64_t			 first = 1;
	int			 have, rc = SQLITE_OK;

	keyd_prev_derive(KEYD_DERIVE_AUDIT, 0, old);
	keyd_prev_derive(KEYD_DERIVE_WRAP, 0, oldwrap);
	keyd_wrap_key(wrap);
	if ((have = head_read(db, &hd, &rc)) == -1 || have == 2 ||
	    (have == 1 && (audit_head_mac_with(old, &hd, mac),
	    sodium_memcmp(mac, hd.mac, CHAIN_LEN) != 0))) {
		snprintf(err, errsz, "the audit head does not verify: run flm "
		    "audit verify; the master key was not rotated");
		rc = -1;
		goto out;
	}
	/* The earlier segments, unsealed with the old wrap key. */
	audit_segs_free();
	{
		sqlite3_stmt		*st;
		uint8_t			 ad[24];
		unsigned long long	 len;
		int64_t			 *ids = NULL;

		if ((rc = sqlite3_prepare_v2(db->h, "SELECT id, first_id, "
		    "last_id, nonce, sealed FROM audit_keys ORDER BY first_id",
		    -1, &st, NULL)) != SQLITE_OK)
			goto out;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if ((s = reallocarray(audit_segs, audit_nsegs + 1,
			    sizeof(*s))) == NULL ||
			    (ids = reallocarray(ids, audit_nsegs + 1,
			    sizeof(*ids))) == NULL)
				fatal("%s", __func__);
			audit_segs = s;
			s = &audit_segs[audit_nsegs];
			ids[audit_nsegs] = sqlite3_column_int64(st, 0);
			s->first = sqlite3_column_int64(st, 1);
			s->last = sqlite3_column_int64(st, 2);
			seg_ad(s->first, s->last, ad);
			if (sqlite3_column_bytes(st, 3) !=
			    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
			    sqlite3_column_bytes(st, 4) != KEYD_MASTER_LEN +
			    crypto_aead_xchacha20poly1305_ietf_ABYTES ||
			    crypto_aead_xchacha20poly1305_ietf_decrypt(s->key,
			    &len, NULL, sqlite3_column_blob(st, 4),
			    (unsigned long long)sqlite3_column_bytes(st, 4), ad,
			    sizeof(ad), sqlite3_column_blob(st, 3), oldwrap) !=
			    0) {
				rc = -2;
				break;
			}
			first = s->last + 1;
			audit_nsegs++;
		}
		sqlite3_finalize(st);
		for (i = 0; rc == SQLITE_DONE && i < audit_nsegs; i++)
			rc = seg_store(db, ids[i], audit_segs[i].first,
			    audit_segs[i].last, audit_segs[i].key, wrap) ==
			    SQLITE_OK ? SQLITE_DONE : SQLITE_ERROR;
		free(ids);
		if (rc == -2) {
			snprintf(err, errsz, "an earlier audit key does not "
			    "unseal: audit_keys was altered; the master key "
			    "was not rotated");
			rc = -1;
			goto out;
		}
		if (rc != SQLITE_DONE)
			goto out;
		rc = SQLITE_OK;
	}
	/* The rows so far: a segment of the old key's. */
	if (have == 1 && hd.last_id >= first &&
	    (rc = seg_store(db, 0, first, hd.last_id, old, wrap)) != SQLITE_OK)
		goto out;
	if (have == 1)
		rc = head_write(db, &hd);
out:
	audit_segs_free();
	sodium_memzero(old, sizeof(old));
	sodium_memzero(wrap, sizeof(wrap));
	sodium_memzero(oldwrap, sizeof(oldwrap));
	if (rc > 0)
		snprintf(err, errsz, "security.db: %s", db_strerror(db, rc));
	return rc == SQLITE_OK ? 0 : -1;
}

/* Every archive keyd made, in order, from row 1 to the head's mark. */
static int
verify_archives(struct db *db, const struct audit_head *hd,
    struct json_object *res, int64_t *narch)
{
	struct archive_ent	*a = NULL, *na;
	sqlite3_stmt		*st;
	uint8_t			 prev[CHAIN_LEN];
	int64_t			 expect = 1;
	size_t			 i, n = 0;
	int			 rc;

	/* Read first: ATTACH cannot run while a statement reads. */
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT file, first_id, last_id, "
	    "last_chain FROM audit_archives ORDER BY first_id", -1, &st,
	    NULL)) != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((na = reallocarray(a, n + 1, sizeof(*a))) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		a = na;
		snprintf(a[n].file, sizeof(a[n].file), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		a[n].first = sqlite3_column_int64(st, 1);
		a[n].last = sqlite3_column_int64(st, 2);
		if (blob32(st, 3, a[n].end) == -1)
			memset(a[n].end, 0, CHAIN_LEN);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(a);
		return rc;
	}
	memset(prev, 0, CHAIN_LEN);
	rc = SQLITE_OK;
	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		if (a[i].first != expect) {
			problem(res, expect, "archive", "rows %" PRId64 "-%"
			    PRId64 " are in no archive keyd recorded", expect,
			    a[i].first - 1);
			break;
		}
		rc = verify_archive(db, &a[i], prev, res);
		if (json_object_object_get(res, "problem") != NULL)
			break;
		expect = a[i].last + 1;
	}
	free(a);
	*narch = (int64_t)i;
	if (rc == SQLITE_OK && json_object_object_get(res, "problem") ==
	    NULL && (expect != hd->archived_through + 1 ||
	    sodium_memcmp(prev, hd->archived_chain, CHAIN_LEN) != 0))
		problem(res, expect, "archive", "rows %" PRId64 "-%" PRId64
		    " were archived, but not to an archive keyd recorded",
		    expect, hd->archived_through);
	return rc;
}

int
keyd_audit_verify(struct db *db, struct json_object **res, char *err,
    size_t errsz)
{
	struct audit_head	 hd;
	uint8_t			 mac[CHAIN_LEN];
	int64_t			 rows, narch = 0;
	const char		*why;
	int			 rc, have;

	*res = json_object_new_object();
	json_object_object_add(*res, "ok", json_object_new_boolean(1));
	if ((rc = sqlite3_exec(db->h, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	if ((rc = audit_segs_load(db, *res)) != SQLITE_OK)
		goto fail;
	if ((have = head_read(db, &hd, &rc)) == -1)
		goto fail;
	if (have == 0)
		problem(*res, 0, "head", "the audit head is gone: the trail "
		    "cannot be checked against keyd's record of it");
	else if (have == 2)
		problem(*res, 0, "head", "the audit head was altered: its "
		    "fields are malformed");
	else if (have == 1 && (audit_head_mac(&hd, mac),
	    sodium_memcmp(mac, hd.mac, CHAIN_LEN) != 0))
		problem(*res, hd.last_id, "head", "the audit head was altered: "
		    "its MAC does not match (or the master key changed)");
	else if ((rc = verify_rows(db, &hd, *res)) != SQLITE_OK)
		goto fail;
	rows = audit_number(db, "SELECT count(*) FROM audit_logs");
	sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
	/* Then the archives, which the live rows carry on from. */
	if (have == 1 && json_object_object_get(*res, "problem") == NULL &&
	    (rc = verify_archives(db, &hd, *res, &narch)) != SQLITE_OK) {
		audit_segs_free();
		snprintf(err, errsz, "cannot read the audit archives: %s",
		    db_strerror(db, rc));
		json_object_put(*res);
		*res = NULL;
		return -1;
	}
	/* One segment per master key the trail has known. */
	json_object_object_add(*res, "key_segments",
	    json_object_new_int64((int64_t)audit_nsegs + 1));
	audit_segs_free();
	json_object_object_add(*res, "archives", json_object_new_int64(narch));
	json_object_object_add(*res, "rows", json_object_new_int64(rows));
	json_object_object_add(*res, "first_id",
	    json_object_new_int64(hd.archived_through + 1));
	json_object_object_add(*res, "last_id",
	    json_object_new_int64(hd.last_id));
	json_object_object_add(*res, "archived_through",
	    json_object_new_int64(hd.archived_through));
	audit_genesis(db, *res);
	if ((why = keyd_anchor_verify(*res)) != NULL &&
	    json_object_object_get(*res, "problem") == NULL)
		problem(*res, hd.last_id, "rollback", "%s", why);
	return 0;
fail:
	audit_segs_free();
	snprintf(err, errsz, "cannot read the audit trail: %s",
	    db_strerror(db, rc));
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	json_object_put(*res);
	*res = NULL;
	return -1;
}

static struct json_object *
row_json(sqlite3_stmt *st)
{
	struct json_object	*o = json_object_new_object();
	struct audit_row	 r;

	row_read(st, &r);
#define TEXT(s) ((s) == NULL ? NULL : json_object_new_string(s))
#define NUM(v) ((v) < 0 ? NULL : json_object_new_int64(v))
	json_object_object_add(o, "id", json_object_new_int64(r.id));
	json_object_object_add(o, "request_id", TEXT(r.request_id));
	json_object_object_add(o, "key_id", TEXT(r.key_id));
	json_object_object_add(o, "client_addr", TEXT(r.addr));
	json_object_object_add(o, "endpoint", TEXT(r.endpoint));
	json_object_object_add(o, "model", TEXT(r.model));
	json_object_object_add(o, "status", json_object_new_int64(r.status));
	json_object_object_add(o, "latency_ms",
	    json_object_new_int64(r.latency));
	json_object_object_add(o, "prompt_tokens", NUM(r.prompt));
	json_object_object_add(o, "completion_tokens", NUM(r.completion));
	json_object_object_add(o, "created_at", TEXT(r.created_at));
	json_object_object_add(o, "cert_serial", TEXT(r.cert_serial));
	json_object_object_add(o, "cert_label", TEXT(r.cert_label));
	json_object_object_add(o, "scope", TEXT(r.scope));
#undef TEXT
#undef NUM
	return o;
}

int
keyd_audit_tail(struct db *db, int64_t count, struct json_object **res,
    char *err, size_t errsz)
{
	struct json_object	*arr;
	sqlite3_stmt		*st;
	int			 rc;

	if (count < 1 || count > TAIL_MAX) {
		snprintf(err, errsz, "count: expected 1-%d", TAIL_MAX);
		return -1;
	}
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT * FROM (SELECT "
	    AUDIT_COLUMNS " FROM audit_logs ORDER BY id DESC LIMIT ?) "
	    "ORDER BY id", -1, &st, NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	sqlite3_bind_int64(st, 1, count);
	arr = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_object_array_add(arr, row_json(st));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		json_object_put(arr);
		return -1;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "records", arr);
	return 0;
}

int
keyd_audit_usage(struct db *db, const char *key, const char *since,
    struct json_object **res, char *err, size_t errsz)
{
	struct json_object	*arr, *o;
	sqlite3_stmt		*st;
	int			 rc;

	if ((rc = sqlite3_prepare_v2(db->h, "SELECT api_key_id, model, "
	    "count(*), sum(coalesce(prompt_tokens, 0)), "
	    "sum(coalesce(completion_tokens, 0)) FROM audit_logs WHERE "
	    "(?1 IS NULL OR api_key_id = ?1) AND (?2 IS NULL OR "
	    "created_at >= ?2) GROUP BY api_key_id, model "
	    "ORDER BY api_key_id, model", -1, &st, NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	if (key != NULL)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (since != NULL)
		sqlite3_bind_text(st, 2, since, -1, SQLITE_STATIC);
	arr = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_object_new_object();
		json_object_object_add(o, "key_id", col_text(st, 0) == NULL ?
		    NULL : json_object_new_string(col_text(st, 0)));
		json_object_object_add(o, "model", col_text(st, 1) == NULL ?
		    NULL : json_object_new_string(col_text(st, 1)));
		json_object_object_add(o, "requests",
		    json_object_new_int64(sqlite3_column_int64(st, 2)));
		json_object_object_add(o, "prompt_tokens",
		    json_object_new_int64(sqlite3_column_int64(st, 3)));
		json_object_object_add(o, "completion_tokens",
		    json_object_new_int64(sqlite3_column_int64(st, 4)));
		json_object_array_add(arr, o);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		json_object_put(arr);
		return -1;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "since", since == NULL ? NULL :
	    json_object_new_string(since));
	json_object_object_add(*res, "usage", arr);
	return 0;
}

/* The rows before the cut, into a new file of their own. */
static int
archive_copy(struct db *db, const char *file, int64_t first, int64_t cut,
    const uint8_t prev[CHAIN_LEN], const uint8_t last[CHAIN_LEN])
{
	sqlite3_stmt	*st = NULL;
	uint8_t		 mac[CHAIN_LEN];
	int		 rc;

	if ((rc = audit_attach(db, file)) != SQLITE_OK)
		return rc;
	archive_mac(first, cut, prev, last, mac);
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE; "
	    "CREATE TABLE arc.audit_logs AS SELECT * FROM main.audit_logs "
	    "WHERE 0; CREATE TABLE arc.archive_info (first_id INTEGER NOT "
	    "NULL, last_id INTEGER NOT NULL, prev_chain BLOB NOT NULL, "
	    "last_chain BLOB NOT NULL, created_at TEXT NOT NULL DEFAULT "
	    "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), mac BLOB NOT NULL)",
	    NULL, NULL, NULL)) != SQLITE_OK)
		goto out;
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT INTO arc.audit_logs "
	    "SELECT * FROM main.audit_logs WHERE id <= ?", -1, &st, NULL)) !=
	    SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, cut);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT INTO arc.archive_info "
	    "(first_id, last_id, prev_chain, last_chain, mac) VALUES (?, ?, "
	    "?, ?, ?)", -1, &st, NULL)) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, cut);
	sqlite3_bind_blob(st, 3, prev, CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, last, CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, mac, CHAIN_LEN, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(db->h, "DETACH arc", NULL, NULL, NULL);
	return rc;
}

/* The archive, in security.db: flm audit verify walks them all. */
static int
archive_record(struct db *db, const char *file, int64_t first, int64_t last,
    const uint8_t chain[CHAIN_LEN])
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(db->h, "INSERT INTO audit_archives "
	    "(file, first_id, last_id, last_chain) VALUES (?, ?, ?, ?)", -1,
	    &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, first);
	sqlite3_bind_int64(st, 3, last);
	sqlite3_bind_blob(st, 4, chain, CHAIN_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The newest row before `before`, and its chain: the cut. */
static int
archive_cut(struct db *db, const char *before, int64_t *cut,
    uint8_t chain[CHAIN_LEN])
{
	sqlite3_stmt	*st;
	int		 rc;

	/* Rows are cut by id: a prefix, so the chain stays whole. */
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT id, chain FROM audit_logs "
	    "WHERE id < coalesce((SELECT min(id) FROM audit_logs WHERE "
	    "created_at >= ?1), (SELECT max(id) + 1 FROM audit_logs)) "
	    "ORDER BY id DESC LIMIT 1", -1, &st, NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, before, -1, SQLITE_STATIC);
	*cut = 0;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*cut = sqlite3_column_int64(st, 0);
		if (blob32(st, 1, chain) == -1)
			rc = SQLITE_CORRUPT;
		else
			rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_finalize(st);
	return rc;
}

int
keyd_audit_archive(struct db *db, const char *before, struct json_object **res,
    char *err, size_t errsz)
{
	struct audit_head	 hd;
	sqlite3_stmt		*st;
	uint8_t			 chain[CHAIN_LEN];
	char			 file[64], hex[CHAIN_LEN * 2 + 1];
	struct tm		 tm;
	time_t			 now = time(NULL);
	int64_t			 cut, from;
	size_t			 n;
	int			 rc, have;

	if (db_writable(db, err, errsz) == -1)
		return -1;
	if ((have = head_read(db, &hd, &rc)) != 1) {
		snprintf(err, errsz, have == -1 ? "%s" : "the audit head is "
		    "missing or malformed: run flm audit verify first",
		    db_strerror(db, rc));
		return -1;
	}
	if ((rc = archive_cut(db, before, &cut, chain)) != SQLITE_OK)
		goto fail;
	*res = json_object_new_object();
	if (cut <= hd.archived_through) {
		json_object_object_add(*res, "archived",
		    json_object_new_int64(0));
		return 0;
	}
	gmtime_r(&now, &tm);
	n = strftime(file, sizeof(file), "audit-archive-%Y%m%dT%H%M%SZ", &tm);
	snprintf(file + n, sizeof(file) - n, "-%" PRId64 ".db", cut);
	if ((rc = archive_copy(db, file, hd.archived_through + 1, cut,
	    hd.archived_chain, chain)) != SQLITE_OK) {
		json_object_put(*res);
		goto fail;
	}
	/* Then move the mark, which is what lets the rows be deleted. */
	from = hd.archived_through;
	hd.archived_through = cut;
	memcpy(hd.archived_chain, chain, CHAIN_LEN);
	if ((rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL)) !=
	    SQLITE_OK || (rc = head_write(db, &hd)) != SQLITE_OK ||
	    (rc = archive_record(db, file, from + 1, cut, chain)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(db->h, "DELETE FROM audit_logs WHERE "
	    "id <= ?", -1, &st, NULL)) != SQLITE_OK) {
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		json_object_put(*res);
		goto fail;
	}
	sqlite3_bind_int64(st, 1, cut);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || (rc = sqlite3_exec(db->h, "COMMIT", NULL,
	    NULL, NULL)) != SQLITE_OK) {
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		json_object_put(*res);
		goto fail;
	}
	sodium_bin2hex(hex, sizeof(hex), chain, CHAIN_LEN);
	json_object_object_add(*res, "archived",
	    json_object_new_int64(cut - from));
	json_object_object_add(*res, "file", json_object_new_string(file));
	json_object_object_add(*res, "through_id", json_object_new_int64(cut));
	json_object_object_add(*res, "chain_head", json_object_new_string(hex));
	log_info("audit: rows through %" PRId64 " archived to %s", cut, file);
	return 0;
fail:
	*res = NULL;
	snprintf(err, errsz, "the audit trail was not archived: %s",
	    db_strerror(db, rc));
	return -1;
}
