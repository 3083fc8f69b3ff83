#ifndef KEYD_H
#define KEYD_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>
#include <openssl/x509.h>

#include "flm_msg.h"
#include "paths.h"

struct db;
struct json_object;
struct sqlite3_stmt;
struct crypto_generichash_blake2b_state;

/* Argon2id parameters (docs/DB_SCHEMA.md): no weaker than OWASP's. */
#define KEYD_ARGON2_T		2
#define KEYD_ARGON2_M_KIB	19456	/* 19 MiB */
#define KEYD_ARGON2_P		1
#define KEYD_ARGON2_SALT	16
#define KEYD_ARGON2_HASH	32

#define KEYD_MASTER_LEN		32
#define KEYD_DB_NAME		"security.db"

/* Uncached key checks (Argon2 runs) a second, and the burst allowed. */
#define KEYD_COLD_PER_SEC	10
#define KEYD_COLD_BURST		20

struct keycache;

/* keyd_apikeys.c */
void		 keyd_iso(time_t, long, char *, size_t);
void		 keyd_now(char *, size_t);
int		 keyd_key_hash(const char *, size_t, char *, size_t);
int		 keyd_parse_when(const char *, time_t, time_t *);
int		 keyd_parse_since(const char *, time_t, time_t *);
int		 keyd_key_create(struct db *, const char *, const char *,
		    const char *, struct json_object **, char *, size_t);
int		 keyd_key_scope(struct db *, const char *, const char *,
		    char [FLM_KEY_ID_LEN + 1], struct json_object **, char *,
		    size_t);
uint32_t	 keyd_key_scope_get(struct db *, const char *, char *, size_t);
int		 keyd_key_list(struct db *, struct json_object **, char *,
		    size_t);
int		 keyd_key_revoke(struct db *, const char *,
		    char [FLM_KEY_ID_LEN + 1], struct json_object **, char *,
		    size_t);
int		 keyd_key_rotate(struct db *, const char *, const char *,
		    char [FLM_KEY_ID_LEN + 1], struct json_object **, char *,
		    size_t);
uint32_t	 keyd_key_verify(struct db *, struct keycache *, const char *,
		    size_t, char [FLM_KEY_ID_LEN + 1], uint64_t *);
int		 keyd_key_exists(struct db *, const char *);
void		 keyd_key_touch(struct db *, char (*)[FLM_KEY_ID_LEN + 1],
		    size_t);

/* keyd_legacy.c: keys imported by flm migrate legacy */
#define KEYD_LEGACY_HEX		64	/* hex of a 32-byte keyed BLAKE2b */
#define KEYD_LEGACY_MAX		200	/* keys per import: each costs an
					 * Argon2 run while keyd waits */
void		 keyd_legacy_digest(const char *, size_t,
		    char [KEYD_LEGACY_HEX + 1]);
uint32_t	 keyd_legacy_bcrypt(struct db *, const char *, size_t,
		    const char *, char [FLM_KEY_ID_LEN + 1], int (*)(void));
int		 keyd_legacy_import(struct db *, struct json_object *,
		    struct json_object **, char *, size_t);

/* keyd_masterkey.c */
const unsigned char *keyd_legacy_key(void);
int		 keyd_legacy_key_seal(struct db *);
void		 keyd_legacy_key_load(struct db *);
void		 keyd_master_load(const char *, uid_t, void (*)(void));
const unsigned char *keyd_audit_key(void);
const unsigned char *keyd_row_key(void);
const unsigned char *keyd_tls_key(void);
void		 keyd_secret_key(uint64_t, unsigned char [KEYD_MASTER_LEN]);
void		 keyd_master_free(void);
void		 keyd_backup_key(unsigned char [KEYD_MASTER_LEN]);
void		 keyd_backup_key_of(const unsigned char *,
		    unsigned char [KEYD_MASTER_LEN]);
void		 keyd_master_export(unsigned char [KEYD_MASTER_LEN]);
int		 keyd_master_is(const unsigned char *);
void		 keyd_master_audit_key(const unsigned char *,
		    unsigned char [KEYD_MASTER_LEN]);
int		 keyd_master_replaceable(void);
long		 keyd_master_keyring_id(void);
int		 keyd_master_keyring_update(const unsigned char *);
void		 keyd_master_adopt(const unsigned char *);
void		 keyd_legacy_key_set(const unsigned char *);
#define KEYD_MASTER_ID_LEN	16	/* hex */
enum { KEYD_DERIVE_AUDIT, KEYD_DERIVE_TLS, KEYD_DERIVE_WRAP,
    KEYD_DERIVE_SECRET, KEYD_DERIVE_BACKUP };
void		 keyd_master_switch(const unsigned char *);
void		 keyd_master_back(void);
void		 keyd_master_forget(void);
void		 keyd_master_id_of(const unsigned char *,
		    char [KEYD_MASTER_ID_LEN + 1]);
void		 keyd_master_id(char [KEYD_MASTER_ID_LEN + 1]);
void		 keyd_prev_derive(int, uint64_t, unsigned char [KEYD_MASTER_LEN]);
void		 keyd_wrap_key(unsigned char [KEYD_MASTER_LEN]);
const char	*keyd_master_source(void);
uid_t		 keyd_master_owner(void);
#define KEYD_MASTER_FILE	"master.key"

/* keyd_secrets.c */
#define KEYD_SECRET_MAX		4096	/* bytes of one secret */
int		 keyd_secret_set(struct db *, const char *, const char *,
		    struct json_object **, char *, size_t);
int		 keyd_secret_clear(struct db *, const char *,
		    struct json_object **, char *, size_t);
int		 keyd_secrets_rotate(struct db *, struct json_object **, char *,
		    size_t);
int		 keyd_secrets_list(struct db *, struct json_object **, char *,
		    size_t);
struct json_object *keyd_engine_creds(struct db *, struct json_object *);
void		 keyd_creds_wipe(struct json_object *);

/* keyd_policy.c */
int		 keyd_policy_get(struct db *, struct json_object **, char *,
		    size_t);
int		 keyd_policy_set(struct db *, struct json_object *,
		    struct json_object **, char *, size_t);
void		 keyd_policy_free(void);

/* keyd_audit.c */
#define KEYD_CHAIN_LEN	32
struct keyd_audit_pos {
	int64_t		 last_id;
	uint8_t		 last_chain[KEYD_CHAIN_LEN];
	int64_t		 archived_through;
};
int		 keyd_audit_pos(struct db *, struct keyd_audit_pos *);
int		 keyd_audit_link(struct db *, int64_t, uint8_t [KEYD_CHAIN_LEN]);
int		 keyd_audit_init(struct db *);
void		 keyd_audit_close(void);
int		 keyd_audit_valid(const struct flm_audit_record *);
void		 keyd_audit_clamp(struct flm_audit_record *, size_t);
struct chan;
struct event_base;
int		 keyd_audit_queue(struct event_base *, struct db *,
		    struct chan *, uint64_t, const struct flm_audit_record *,
		    size_t);
void		 keyd_audit_forget(struct chan *);
int		 keyd_audit_write(struct db *, const struct flm_audit_record *,
		    size_t);
int		 keyd_audit_verify(struct db *, struct json_object **, char *,
		    size_t);
int		 keyd_audit_remaster(struct db *, char *, size_t);
int		 keyd_audit_archive(struct db *, const char *, struct json_object **,
		    char *, size_t);
int		 keyd_audit_tail(struct db *, int64_t, struct json_object **, char *,
		    size_t);
int		 keyd_audit_usage(struct db *, const char *, const char *,
		    struct json_object **, char *, size_t);

/* keyd_integrity.c: keyed-hash input with lengths and NULLs kept apart */
void		 keyd_mac_i64(struct crypto_generichash_blake2b_state *,
		    int64_t);
void		 keyd_mac_str(struct crypto_generichash_blake2b_state *,
		    const char *);

/* keyd_integrity.c: the columns an api_keys row's MAC covers, in order */
#define KEYD_ROW_MAC_LEN	32
#define KEYD_KEY_MAC_COLS	"id, label, hash, created_at, revoked_at, " \
	"expires_at, prev_hash, prev_expires_at, scope, legacy, digest"
#define KEYD_KEY_MAC_NCOLS	11
/* A table whose rows carry a MAC in the column after cols. */
struct keyd_rowmac {
	const char	*table;
	const char	*domain;	/* hashed first: one table's row
					 * never passes for another's */
	const char	*cols;		/* the columns covered, in order */
	int		 ncols;
	int		 nopt;		/* the last ones, MACed when set */
	int		 ntagged;	/* the last of those, each hashed after
					 * its position: a value cannot move
					 * from one to another */
};
extern const struct keyd_rowmac keyd_key_rows;
int		 keyd_row_intact(const struct keyd_rowmac *,
		    struct sqlite3_stmt *, int);
int		 keyd_row_seal(const struct keyd_rowmac *, struct db *,
		    const char *);
void		 keyd_policy_mac(const char *, uint8_t [KEYD_ROW_MAC_LEN]);
int		 keyd_policy_intact(struct sqlite3_stmt *, int, int);
void		 keyd_integrity_init(struct db *, int);
int		 keyd_rows_remaster(struct db *, int *);
int		 keyd_tls_remaster(struct db *, int *);
int		 keyd_secrets_remaster(struct db *, int *, char *, size_t);
void		 keyd_integrity_scan(struct db *, int64_t *, int *);

/* keyd.c: a row failed its MAC; tell flmd (flm status) */
void		 keyd_integrity_changed(void);

/* keyd_anchor.c: the audit chain's anchor outside security.db */
void		 keyd_anchor_start(struct db *);
int		 keyd_anchor_tick(struct db *);
int		 keyd_anchor_exists(void);
void		 keyd_anchor_state(struct json_object *);
const char	*keyd_anchor_verify(struct json_object *);
int		 keyd_anchor_restage(const char *);
int		 keyd_anchor_stage(const char *, int64_t,
		    const uint8_t [KEYD_CHAIN_LEN], int64_t,
		    const unsigned char *);

/* keyd_rotate.c: flm security master-key rotate */
void		 keyd_rotate_init(int);
void		 keyd_rotate_free(void);
void		 keyd_rotate_finish(const char *);
void		 keyd_rotate_note(struct db *);
int		 keyd_master_rotate(struct db *, struct json_object **, char *,
		    size_t);

/* keyd_backup.c: flm backup, flm check */
#define KEYD_BACKUP_DIR		FLM_BACKUP_SUBDIR
#define KEYD_BACKUP_KEEP	3	/* generations */
void		 keyd_backup_init(void);
void		 keyd_backup_tidy(void);
int		 keyd_backup_rekey(const char *, const unsigned char *,
		    const unsigned char *);
void		 keyd_backup_free(void);
int		 keyd_backup_finish(const char *, const char *);
void		 keyd_backup_config(int);
void		 keyd_backup_abort(void);
int		 keyd_backup_create(struct db *, const char *, const char *,
		    long, struct json_object **, char *, size_t);
int		 keyd_backup_list(struct json_object **, char *, size_t);
int		 keyd_backup_restore(struct db *, int, const char *,
		    const char *, struct json_object **, int *, char *,
		    size_t);
int		 keyd_backup_state(struct db *, int, const char *, const char *,
		    struct json_object *, struct json_object **, char *,
		    size_t);

/* keyd_x509.c: keys, certificates, sealing (no database, no channel) */
#define KEYD_SEAL_NONCE		24	/* crypto_aead_xchacha20poly1305_ietf */
#define KEYD_SEAL_ABYTES	16
#define KEYD_FP_LEN		(32 * 3)	/* "AB:...:EF" and a NUL */
#define KEYD_CA_LIFETIME	(3650L * 86400)
#define KEYD_SECURE_HEAP	(256 * 1024)
void		 keyd_x509_init(void);
int		 keyd_x509_private_addr(const char *);
void		 keyd_x509_serial(char [FLM_CERT_SERIAL_LEN + 1]);
EVP_PKEY	*keyd_x509_keygen(void);
int		 keyd_x509_seal(const unsigned char *, const char *, EVP_PKEY *,
		    uint8_t [KEYD_SEAL_NONCE], uint8_t **, size_t *);
EVP_PKEY	*keyd_x509_unseal(const unsigned char *, const char *,
		    const uint8_t *, size_t, const uint8_t *, size_t);
X509		*keyd_x509_ca(EVP_PKEY *, const char *, const char *const *,
		    size_t, time_t);
X509		*keyd_x509_server(EVP_PKEY *, const char *, const char *const *,
		    size_t, const char *const *, size_t, time_t, long, X509 *,
		    EVP_PKEY *);
X509		*keyd_x509_client(EVP_PKEY *, const char *, const char *,
		    time_t, long, X509 *, EVP_PKEY *);
char		*keyd_x509_pem(X509 *);
struct json_object *keyd_x509_key_pem(EVP_PKEY *);
X509		*keyd_x509_from_pem(const char *);
void		 keyd_x509_fingerprint(X509 *, char [KEYD_FP_LEN]);
void		 keyd_x509_times(X509 *, time_t *, time_t *);
void		 keyd_x509_iso(time_t, char *, size_t);
struct json_object *keyd_x509_info(X509 *, const char *, const char *);
struct json_object *keyd_x509_permitted(X509 *);
int		 keyd_x509_sign(EVP_PKEY *, const uint8_t *, size_t, uint8_t *,
		    size_t *);

#define KEYD_ES256_LEN		64
int		 keyd_b64url(const void *, size_t, char *, size_t);
int		 keyd_x509_es256(EVP_PKEY *, const void *, size_t,
		    uint8_t [KEYD_ES256_LEN]);
int		 keyd_x509_jwk(EVP_PKEY *, char *, size_t);
int		 keyd_x509_csr(EVP_PKEY *, const char *const *, size_t,
		    unsigned char **, size_t *);
X509		*keyd_x509_alpn(EVP_PKEY *, const char *, const char *,
		    const uint8_t [32], time_t);

/* keyd_tls.c: certificates kept, pushed to proxyd, signed with */
void		 keyd_tls_init(struct db *);
void		 keyd_tls_free(void);
int		 keyd_tls_label_valid(const char *);
int		 keyd_tls_hex16(const char *);
#define KEYD_TLS_ACME	2	/* keyd_tls_ensure: the CA must issue one */
int		 keyd_tls_ensure(struct json_object *, struct json_object **,
		    char *, size_t);
int		 keyd_tls_names(struct json_object *, struct json_object **,
		    char **, char *, size_t);
int		 keyd_tls_install(const char *, const char *, const char *,
		    STACK_OF(X509) *, EVP_PKEY *, struct json_object **, char *,
		    size_t);
int		 keyd_tls_challenge(const char *, const char *, const char *);
int		 keyd_tls_challenge_clear(const char *);
int		 keyd_tls_release(struct json_object *, struct json_object **,
		    char *, size_t);
int		 keyd_tls_ca_info(struct json_object *, struct json_object **,
		    char *, size_t);
int		 keyd_tls_client_issue(struct json_object *,
		    struct json_object **, char *, size_t);
int		 keyd_tls_client_list(struct json_object **, char *, size_t);
int		 keyd_tls_client_revoke(struct json_object *,
		    struct json_object **, char *, size_t);
struct json_object *keyd_tls_state(void);
void		 keyd_tls_sign(const struct flm_tls_sign *,
		    struct flm_tls_signature *);
long		 keyd_tls_next(void);
void		 keyd_tls_doctor(struct json_object *);
int		 keyd_tls_serving(const char *);

/* keyd_acme.c: ACME accounts, orders run by proxyd, signed here */
struct chan_msg;
void		 keyd_acme_init(struct db *);
void		 keyd_acme_free(void);
int		 keyd_acme_start(struct json_object *, uint32_t, char *,
		    size_t);
void		 keyd_acme_keep(struct json_object *);
void		 keyd_acme_due(const char *);
void		 keyd_acme_forget(const char *);
void		 keyd_acme_peer_down(struct chan *);
void		 keyd_acme_peer_up(void);
void		 keyd_acme_sign(struct chan *, struct chan_msg *);
void		 keyd_acme_account(struct chan *, struct chan_msg *);
void		 keyd_acme_done(struct chan *, struct chan_msg *);
void		 keyd_acme_dns_done(struct chan *, struct chan_msg *);
void		 keyd_acme_doctor(struct json_object *);
void		 keyd_acme_tick(void);
long		 keyd_acme_next(long);

/* keyd.c, for keyd_acme.c: workers, and the ensure left waiting */
struct chan	*keyd_any_peer(void);
void		 keyd_peers_json(uint16_t, uint64_t, struct json_object *);
uint64_t	 keyd_after_applied(void (*)(void *), void *);
void		 keyd_tls_changed_seq(uint64_t);
int		 keyd_parent_json(uint16_t, uint32_t, struct json_object *);
void		 keyd_tls_pending_failed(uint32_t, const char *);
void		 keyd_tls_installed(uint32_t, const char *,
		    struct json_object *);
void		 keyd_tls_changed(void);

/* keyd_doctor.c: flm doctor's facts only keyd sees */
struct json_object *keyd_doctor(struct db *, const char *, int);
struct json_object *keyd_tls_tick(void (*)(const char *));

/* keyd_sandbox.c */
void	keyd_sandbox(const char *, long);

#endif
