/*
 * keyd's certificates (issue 13): what flmd asks for (a handle's server
 * certificate, the local CA, client certificates), kept in security.db
 * with their private keys sealed (keyd_x509.c), and the server keys in
 * service held decrypted in OpenSSL's secure heap to sign handshakes
 * for proxyd.  proxyd never gets a private key: it gets the state
 * (keyd_tls_state) and asks for signatures (keyd_tls_sign).
 */
#include "config.h"

#include <sys/queue.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <sqlite3.h>

#include "db.h"
#include "doctor.h"
#include "jsonbuf.h"
#include "keyd.h"
#include "log.h"

#define TLS_HANDLE_MAX		64
#define TLS_NAMES_MAX		64
#define TLS_ADDRS_MAX		256
#define TLS_NAME_MAX		253
#define TLS_LIFETIME_MIN	60L
#define TLS_LIFETIME_MAX	(3650L * 86400)
#define TLS_DEV_LIFETIME	(365L * 86400)
#define TLS_CA_LIFETIME		(90L * 86400)
#define TLS_CLIENT_DAYS		365
#define TLS_RETIRED_SECS	600	/* a replaced key stays signable */
#define TLS_CHECK_SECS		60

#define PRIVATE_ONLY_MSG	"packaged-ca certifies private addresses " \
	"only (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, 100.64/10, " \
	"::1, fc00::/7, fe80::/10): %s; use dev-selfsigned"

/* A server certificate in service, or retired less than 10 min ago. */
struct tls_svc {
	TAILQ_ENTRY(tls_svc)	 entry;
	char			 id[FLM_CERT_ID_LEN + 1];
	char			 handle[TLS_HANDLE_MAX + 1];
	char			 mode[16];
	char			*names;		/* canonical JSON arrays */
	char			*addrs;
	char			*chain;		/* PEM, leaf first */
	X509			*x509;
	EVP_PKEY		*key;
	time_t			 not_before, not_after;
	time_t			 retired;	/* 0: in service */
	char			*alpn_name;	/* TLS-ALPN-01: its name */
	char			*directory;	/* https-acme: its CA's */
};

static TAILQ_HEAD(, tls_svc)	 tls_svcs = TAILQ_HEAD_INITIALIZER(tls_svcs);
static struct db		*tls_db;

/* What a request names, checked and in canonical order. */
struct tls_req {
	const char		*handle;
	const char		*mode;
	struct json_object	*names;		/* as given, deduplicated */
	struct json_object	*addrs;		/* canonical text */
	char			*names_key;	/* sorted JSON text */
	char			*addrs_key;
	long			 lifetime;
	int			 acme;		/* https-acme: the CA's */
	const char		*directory;	/* its ACME directory */
};

static void
req_free(struct tls_req *r)
{
	json_object_put(r->names);
	json_object_put(r->addrs);
	free(r->names_key);
	free(r->addrs_key);
	memset(r, 0, sizeof(*r));
}

static int
name_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > TLS_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

int
keyd_tls_label_valid(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > FLM_CERT_LABEL_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    s[i] == '-'))
			return 0;
	return 1;
}

int
keyd_tls_hex16(const char *s)
{
	size_t	 i;

	for (i = 0; i < FLM_CERT_ID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[i] == '\0';
}

static int
strcmp_json(const void *a, const void *b)
{
	return strcmp(json_object_get_string(*(struct json_object *const *)a),
	    json_object_get_string(*(struct json_object *const *)b));
}

static int
array_has(struct json_object *a, const char *s)
{
	size_t	 i;

	for (i = 0; i < json_object_array_length(a); i++)
		if (strcmp(json_object_get_string(
		    json_object_array_get_idx(a, i)), s) == 0)
			return 1;
	return 0;
}

/* Sorted JSON text of a string array: sets compare as strings. */
static char *
array_key(struct json_object *a)
{
	struct json_object	*c = NULL;
	char			*s;

	json_object_deep_copy(a, &c, NULL);
	json_object_array_sort(c, strcmp_json);
	s = strdup(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
	json_object_put(c);
	return s;
}

static int
req_names(struct json_object *req, struct tls_req *r, char *err, size_t errsz)
{
	struct json_object	*a, *v;
	size_t			 i, n;

	if (!json_object_object_get_ex(req, "names", &a) ||
	    !json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) == 0 || n > TLS_NAMES_MAX) {
		snprintf(err, errsz, "names: expected 1-%d DNS names",
		    TLS_NAMES_MAX);
		return -1;
	}
	r->names = json_object_new_array();
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) ||
		    !name_valid(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v))) {
			snprintf(err, errsz, "names: expected lower-case DNS "
			    "names of [a-z0-9.-], 1-253 characters");
			return -1;
		}
		if (!array_has(r->names, json_object_get_string(v)))
			json_object_array_add(r->names, json_object_get(v));
	}
	r->names_key = array_key(r->names);
	return 0;
}

/* Numeric addresses, canonical (inet_ntop), a zone dropped. */
static int
req_addrs(struct json_object *req, struct tls_req *r, char *err, size_t errsz)
{
	struct json_object	*a, *v;
	char			 buf[INET6_ADDRSTRLEN + 16], out[INET6_ADDRSTRLEN];
	uint8_t			 bin[16];
	size_t			 i, n;
	int			 af;

	r->addrs = json_object_new_array();
	if (!json_object_object_get_ex(req, "addrs", &a) ||
	    !json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > TLS_ADDRS_MAX) {
		snprintf(err, errsz, "addrs: expected up to %d numeric "
		    "addresses", TLS_ADDRS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_is_string_max(v, sizeof(buf) - 1)) {
			snprintf(err, errsz, "addrs: expected numeric "
			    "addresses");
			return -1;
		}
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
		buf[strcspn(buf, "%")] = '\0';
		af = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
		if (inet_pton(af, buf, bin) != 1 ||
		    inet_ntop(af, bin, out, sizeof(out)) == NULL) {
			snprintf(err, errsz, "addrs: %s is no numeric address",
			    buf);
			return -1;
		}
		if (!array_has(r->addrs, out))
			json_object_array_add(r->addrs,
			    json_object_new_string(out));
	}
	r->addrs_key = array_key(r->addrs);
	return 0;
}

static int
handle_valid(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > TLS_HANDLE_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!(isxdigit((unsigned char)s[i]) || s[i] == '.' ||
		    s[i] == ':' || s[i] == '[' || s[i] == ']'))
			return 0;
	return 1;
}

static int
req_ensure(struct json_object *req, struct tls_req *r, char *err,
    size_t errsz)
{
	struct json_object	*v;
	size_t			 i;

	memset(r, 0, sizeof(*r));
	if (!json_object_object_get_ex(req, "handle", &v) ||
	    !json_is_string_max(v, TLS_HANDLE_MAX) ||
	    !handle_valid(json_object_get_string(v))) {
		snprintf(err, errsz, "handle: expected ADDR:PORT");
		return -1;
	}
	r->handle = json_object_get_string(v);
	if (!json_object_object_get_ex(req, "mode", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    (strcmp(json_object_get_string(v), "dev-selfsigned") != 0 &&
	    strcmp(json_object_get_string(v), "packaged-ca") != 0 &&
	    strcmp(json_object_get_string(v), "https-acme") != 0)) {
		snprintf(err, errsz, "mode: expected dev-selfsigned, "
		    "packaged-ca or https-acme");
		return -1;
	}
	r->mode = json_object_get_string(v);
	r->acme = strcmp(r->mode, "https-acme") == 0;
	if (r->acme && (!json_object_object_get_ex(req, "acme", &v) ||
	    !json_object_object_get_ex(v, "directory", &v) ||
	    !json_is_string_max(v, 512))) {
		snprintf(err, errsz, "acme.directory: expected a URL");
		return -1;
	}
	if (r->acme)
		r->directory = json_object_get_string(v);
	r->lifetime = strcmp(r->mode, "packaged-ca") == 0 ? TLS_CA_LIFETIME :
	    TLS_DEV_LIFETIME;
	if (json_object_object_get_ex(req, "lifetime", &v)) {
		if (!json_is_int_range(v, TLS_LIFETIME_MIN, TLS_LIFETIME_MAX)) {
			snprintf(err, errsz, "lifetime: expected %ld-%ld "
			    "seconds", TLS_LIFETIME_MIN, TLS_LIFETIME_MAX);
			return -1;
		}
		r->lifetime = (long)json_object_get_int64(v);
	}
	if (req_names(req, r, err, errsz) == -1 ||
	    req_addrs(req, r, err, errsz) == -1)
		return -1;
	if (strcmp(r->mode, "packaged-ca") != 0)
		return 0;
	for (i = 0; i < json_object_array_length(r->addrs); i++) {
		const char *a = json_object_get_string(
		    json_object_array_get_idx(r->addrs, i));

		if (!keyd_x509_private_addr(a)) {
			snprintf(err, errsz, PRIVATE_ONLY_MSG, a);
			return -1;
		}
	}
	return 0;
}

/* The strings of a JSON array, for keyd_x509_*; freed by the caller. */
static const char **
array_strings(struct json_object *a, size_t *n)
{
	const char	**s;
	size_t		  i;

	*n = json_object_array_length(a);
	if ((s = calloc(*n + 1, sizeof(*s))) == NULL)
		fatal("%s", __func__);
	for (i = 0; i < *n; i++)
		s[i] = json_object_get_string(json_object_array_get_idx(a, i));
	return s;
}

static void
svc_free(struct tls_svc *s)
{
	EVP_PKEY_free(s->key);	/* the secure heap wipes the scalar */
	X509_free(s->x509);
	free(s->names);
	free(s->addrs);
	free(s->chain);
	free(s->alpn_name);
	free(s->directory);
	free(s);
}

static struct tls_svc *
svc_find(const char *handle)
{
	struct tls_svc	*s;

	TAILQ_FOREACH(s, &tls_svcs, entry)
		if (s->retired == 0 && s->alpn_name == NULL &&
		    strcmp(s->handle, handle) == 0)
			return s;
	return NULL;
}

static time_t	svc_renew_at(const struct tls_svc *);

/* What flmd shows of a certificate in service: keyd_x509_info and when
 * it is renewed. */
static struct json_object *
svc_info(const struct tls_svc *s)
{
	struct json_object	*o = keyd_x509_info(s->x509, s->id, s->mode);
	char			 when[32];

	keyd_x509_iso(svc_renew_at(s), when, sizeof(when));
	json_object_object_add(o, "renew_at", json_object_new_string(when));
	return o;
}

/* 1 if handle has a certificate in service that has not expired. */
int
keyd_tls_serving(const char *handle)
{
	struct tls_svc	*s = svc_find(handle);

	return s != NULL && s->not_after > time(NULL);
}

/* ---- the local CA ---------------------------------------------------- */

static X509		*tls_ca;	/* NULL: none made yet */
static char		 tls_ca_id[FLM_CERT_ID_LEN + 1];
static char		*tls_ca_pem;
static char		 tls_ca_created[40];
static struct json_object *tls_ca_names;	/* the DNS names it permits */

static void
ca_forget(void)
{
	X509_free(tls_ca);
	free(tls_ca_pem);
	json_object_put(tls_ca_names);
	tls_ca = NULL;
	tls_ca_pem = NULL;
	tls_ca_names = NULL;
}

static EVP_PKEY	*ca_key(void);

/*
 * The CA's certificate must be the one its sealed key belongs to:
 * whoever can write security.db but has no master key cannot slip in a
 * CA of their own (proxyd would trust client certificates from it).
 */
static int
ca_check(void)
{
	EVP_PKEY	*k;
	int		 ok;

	if (tls_ca == NULL)
		return -1;
	k = ca_key();
	ok = k != NULL && X509_check_private_key(tls_ca, k) == 1;
	EVP_PKEY_free(k);
	if (ok)
		return 0;
	log_warnx("the local CA %s in security.db does not match its sealed "
	    "key (changed outside flm-keyd): not used", tls_ca_id);
	ca_forget();
	return -1;
}

static int
ca_load(void)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(tls_db->h, "SELECT id, cert_pem, created_at, names "
	    "FROM certificates WHERE purpose = 'ca' AND replaced_at IS NULL "
	    "ORDER BY created_at DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ca_forget();
		snprintf(tls_ca_id, sizeof(tls_ca_id), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		tls_ca_pem = strdup((const char *)sqlite3_column_text(st, 1));
		snprintf(tls_ca_created, sizeof(tls_ca_created), "%s",
		    (const char *)sqlite3_column_text(st, 2));
		tls_ca_names = json_tokener_parse(
		    (const char *)sqlite3_column_text(st, 3));
		if (tls_ca_pem == NULL ||
		    (tls_ca = keyd_x509_from_pem(tls_ca_pem)) == NULL)
			log_warnx("the local CA's certificate in security.db "
			    "is unreadable");
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	return ca_check();
}

/* The CA's private key, unsealed for one signature: the caller frees. */
static EVP_PKEY *
ca_key(void)
{
	sqlite3_stmt	*st;
	EVP_PKEY	*k = NULL;

	if (sqlite3_prepare_v2(tls_db->h, "SELECT key_nonce, key_sealed FROM "
	    "certificates WHERE id = ? AND purpose = 'ca'", -1, &st, NULL) !=
	    SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, tls_ca_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		k = keyd_x509_unseal(keyd_tls_key(), tls_ca_id,
		    sqlite3_column_blob(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0),
		    sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1));
	sqlite3_finalize(st);
	if (k == NULL)
		log_warnx("the local CA's key does not unseal: security.db "
		    "was changed, or the master key is not the one it was "
		    "made with");
	return k;
}

/*
 * The row MAC (docs/DB_SCHEMA.md): over what says whose certificate a
 * row is and whether it is revoked.  Whoever can write security.db
 * without the master key cannot clear a revocation unnoticed.
 */
#define CERT_MAC_COLS	"id, purpose, serial, label, sha256, revoked_at"

static const struct keyd_rowmac cert_rows = {
	"certificates", "flm certificates row", CERT_MAC_COLS, 6, 0, 0
};

/* One row of certificates, its key sealed if it has one. */
static int
row_insert(const char *id, const char *purpose, const char *handle,
    const char *mode, const char *label, X509 *x, EVP_PKEY *key,
    const char *names, const char *addrs, const char *chain, char *err,
    size_t errsz)
{
	struct json_object	*info = keyd_x509_info(x, id, mode ? mode : "");
	sqlite3_stmt		*st;
	uint8_t			 nonce[KEYD_SEAL_NONCE], *ct = NULL;
	size_t			 ctlen = 0;
	char			*pem = chain != NULL ? strdup(chain) :
				    keyd_x509_pem(x);
	int			 rc = SQLITE_ERROR;

	if (pem == NULL || (key != NULL && keyd_x509_seal(keyd_tls_key(), id,
	    key, nonce, &ct, &ctlen) == -1)) {
		snprintf(err, errsz, "cannot encode the certificate");
		goto out;
	}
	if ((rc = sqlite3_prepare_v2(tls_db->h, "INSERT INTO certificates "
	    "(id, purpose, handle, mode, label, serial, subject, sans, names, "
	    "addrs, not_before, not_after, sha256, cert_pem, key_nonce, "
	    "key_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?1, ?6, ?7, ?8, ?9, ?10, "
	    "?11, ?12, ?13, ?14, ?15)", -1, &st, NULL)) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, handle, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, mode, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, label, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, json_object_get_string(json_object_object_get(
	    info, "subject")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, json_object_to_json_string_ext(
	    json_object_object_get(info, "sans"), JSON_C_TO_STRING_PLAIN), -1,
	    SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, names ? names : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, addrs ? addrs : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, json_object_get_string(
	    json_object_object_get(info, "not_before")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 11, json_object_get_string(
	    json_object_object_get(info, "not_after")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 12, json_object_get_string(
	    json_object_object_get(info, "sha256")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 13, pem, -1, SQLITE_STATIC);
	if (ct != NULL) {
		sqlite3_bind_blob(st, 14, nonce, sizeof(nonce), SQLITE_STATIC);
		sqlite3_bind_blob(st, 15, ct, (int)ctlen, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	rc = rc == SQLITE_DONE ? keyd_row_seal(&cert_rows, tls_db, id) : rc;
	if (rc != SQLITE_OK)
		snprintf(err, errsz, "security.db: %s", db_strerror(tls_db, rc));
out:
	free(ct);
	free(pem);
	json_object_put(info);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The local CA, made now if there is none.  *made says so. */
static int
ca_ensure(struct json_object *names, int *made, char *err, size_t errsz)
{
	EVP_PKEY	 *key;
	X509		 *x;
	const char	**n;
	size_t		  nn;
	char		  id[FLM_CERT_ID_LEN + 1], *nk;
	int		  rv;

	*made = 0;
	if (tls_ca != NULL)
		return 0;
	keyd_x509_serial(id);
	n = array_strings(names, &nn);
	if ((key = keyd_x509_keygen()) == NULL ||
	    (x = keyd_x509_ca(key, id, n, nn, time(NULL))) == NULL) {
		EVP_PKEY_free(key);
		free(n);
		snprintf(err, errsz, "cannot make the local CA");
		return -1;
	}
	free(n);
	nk = array_key(names);
	rv = row_insert(id, "ca", NULL, NULL, NULL, x, key, nk, NULL, NULL,
	    err, errsz);
	free(nk);
	EVP_PKEY_free(key);
	X509_free(x);
	if (rv == -1 || ca_load() == -1 || tls_ca == NULL) {
		if (rv != -1)
			snprintf(err, errsz, "cannot read the local CA back");
		return -1;
	}
	log_info("made the local CA %s", id);
	*made = 1;
	return 0;
}

static struct json_object *
ca_info(void)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*i = keyd_x509_info(tls_ca, tls_ca_id, "ca");

	json_object_object_add(o, "subject",
	    json_object_get(json_object_object_get(i, "subject")));
	json_object_object_add(o, "not_after",
	    json_object_get(json_object_object_get(i, "not_after")));
	json_object_object_add(o, "sha256",
	    json_object_get(json_object_object_get(i, "sha256")));
	json_object_object_add(o, "pem", json_object_new_string(tls_ca_pem));
	json_object_object_add(o, "permitted", keyd_x509_permitted(tls_ca));
	json_object_object_add(o, "created_at",
	    json_object_new_string(tls_ca_created));
	json_object_put(i);
	return o;
}

/* ---- server certificates --------------------------------------------- */

static struct tls_svc *
svc_new(const char *id, const char *handle, const char *mode,
    const char *names, const char *addrs, X509 *x, EVP_PKEY *key,
    const char *chain)
{
	struct tls_svc	*s;
	char		*leaf;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (leaf = keyd_x509_pem(x)) == NULL)
		fatal("%s", __func__);
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->handle, sizeof(s->handle), "%s", handle);
	snprintf(s->mode, sizeof(s->mode), "%s", mode);
	s->names = strdup(names);
	s->addrs = strdup(addrs);
	s->x509 = x;
	s->key = key;
	keyd_x509_times(x, &s->not_before, &s->not_after);
	/* packaged-ca: the chain carries the CA the leaf chains to;
	 * https-acme: the CA's intermediates, given. */
	if (chain != NULL) {
		s->chain = strdup(chain);
		free(leaf);
		if (s->chain == NULL)
			fatal("%s", __func__);
	} else if (strcmp(mode, "packaged-ca") == 0 && tls_ca_pem != NULL) {
		if (asprintf(&s->chain, "%s%s", leaf, tls_ca_pem) == -1)
			fatal("%s", __func__);
		free(leaf);
	} else
		s->chain = leaf;
	if (s->names == NULL || s->addrs == NULL)
		fatal("%s", __func__);
	TAILQ_INSERT_TAIL(&tls_svcs, s, entry);
	return s;
}

/* A row of the database into service: its key unsealed. */
static struct tls_svc *
svc_from_row(sqlite3_stmt *st)
{
	const char	*id = (const char *)sqlite3_column_text(st, 0), *mode;
	struct tls_svc	*s;
	EVP_PKEY	*key;
	X509		*x;

	key = keyd_x509_unseal(keyd_tls_key(), id, sqlite3_column_blob(st, 6),
	    (size_t)sqlite3_column_bytes(st, 6), sqlite3_column_blob(st, 7),
	    (size_t)sqlite3_column_bytes(st, 7));
	x = keyd_x509_from_pem((const char *)sqlite3_column_text(st, 5));
	if (key == NULL || x == NULL || X509_check_private_key(x, key) != 1) {
		log_warnx("certificate %s: its key does not unseal or does not "
		    "match (security.db changed?); a new one will be made", id);
		EVP_PKEY_free(key);
		X509_free(x);
		return NULL;
	}
	mode = (const char *)sqlite3_column_text(st, 2);
	s = svc_new(id, (const char *)sqlite3_column_text(st, 1), mode,
	    (const char *)sqlite3_column_text(st, 3),
	    (const char *)sqlite3_column_text(st, 4), x, key,
	    strcmp(mode, "https-acme") == 0 ?
	    (const char *)sqlite3_column_text(st, 5) : NULL);
	if (sqlite3_column_type(st, 8) == SQLITE_TEXT &&
	    (s->directory = strdup((const char *)sqlite3_column_text(st,
	    8))) == NULL)
		fatal("%s", __func__);
	return s;
}

#define SVC_COLS	"id, handle, mode, names, addrs, cert_pem, key_nonce, " \
	"key_sealed, directory"

/* Does the certificate fit the request, with a third of its life left? */
static int
svc_fits(const struct tls_svc *s, const struct tls_req *r, time_t now)
{
	/* ACME: the CA set the lifetime; any left serves while the
	 * renewal runs. */
	if (r->acme)
		return strcmp(s->mode, r->mode) == 0 &&
		    strcmp(s->names, r->names_key) == 0 &&
		    s->directory != NULL && r->directory != NULL &&
		    strcmp(s->directory, r->directory) == 0 &&
		    s->not_after > now + TLS_LIFETIME_MIN;
	return strcmp(s->mode, r->mode) == 0 &&
	    strcmp(s->names, r->names_key) == 0 &&
	    strcmp(s->addrs, r->addrs_key) == 0 &&
	    s->not_after - s->not_before == r->lifetime &&
	    (s->not_after - now) * 3 > s->not_after - s->not_before;
}

static void
svc_retire(struct tls_svc *s, time_t now)
{
	s->retired = now;
}

static int
db_exec(const char *sql, const char *arg)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(tls_db->h, sql, -1, &st, NULL)) !=
	    SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
db_exec2(const char *sql, const char *a1, const char *a2)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(tls_db->h, sql, -1, &st, NULL)) !=
	    SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a2, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A released certificate that still fits comes back into service. */
static struct tls_svc *
svc_reinstate(const struct tls_req *r, time_t now)
{
	sqlite3_stmt	*st;
	struct tls_svc	*s = NULL;

	if (sqlite3_prepare_v2(tls_db->h, "SELECT " SVC_COLS " FROM "
	    "certificates WHERE purpose = 'server' AND handle = ? AND "
	    "replaced_at IS NULL AND released_at IS NOT NULL ORDER BY "
	    "created_at DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, r->handle, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		s = svc_from_row(st);
	sqlite3_finalize(st);
	if (s == NULL)
		return NULL;
	if (!svc_fits(s, r, now)) {
		TAILQ_REMOVE(&tls_svcs, s, entry);
		svc_free(s);
		return NULL;
	}
	if (db_exec("UPDATE certificates SET released_at = NULL WHERE id = ?",
	    s->id) != SQLITE_OK)
		log_warnx("certificate %s: cannot note it in service", s->id);
	return s;
}

/* Is name one the local CA permits: one of its names, or below one? */
static int
ca_permits(const char *name)
{
	const char	*p;
	size_t		 i, nl = strlen(name), pl;

	for (i = 0; json_object_is_type(tls_ca_names, json_type_array) &&
	    i < json_object_array_length(tls_ca_names); i++) {
		p = json_object_get_string(json_object_array_get_idx(
		    tls_ca_names, i));
		pl = strlen(p);
		if (strcmp(name, p) == 0 || (nl > pl + 1 &&
		    strcmp(name + nl - pl, p) == 0 && name[nl - pl - 1] == '.'))
			return 1;
	}
	return 0;
}

/*
 * packaged-ca: the names the CA may certify, in the request's order.
 * The CA was made for the host's names of its day; a name added since
 * is left out (a client would refuse the whole certificate for it).
 */
static struct json_object *
ca_names_for(struct json_object *names, char *err, size_t errsz)
{
	struct json_object	*out = json_object_new_array();
	const char		*n;
	size_t			 i;

	for (i = 0; i < json_object_array_length(names); i++) {
		n = json_object_get_string(json_object_array_get_idx(names, i));
		if (ca_permits(n))
			json_object_array_add(out, json_object_new_string(n));
		else
			log_warnx("the local CA may not certify %s (it was made "
			    "for other names): left out of the certificate", n);
	}
	if (json_object_array_length(out) > 0)
		return out;
	json_object_put(out);
	snprintf(err, errsz, "the local CA may certify none of these names "
	    "(it was made for %s); use dev-selfsigned",
	    json_object_to_json_string_ext(tls_ca_names,
	    JSON_C_TO_STRING_PLAIN));
	return NULL;
}

/* A new key and certificate for the request; older ones replaced. */
static struct tls_svc *
svc_make(const struct tls_req *r, char *err, size_t errsz)
{
	EVP_PKEY	 *key, *cakey = NULL;
	X509		 *x = NULL;
	struct json_object *certnames = NULL;
	const char	**names, **addrs;
	size_t		  nn, na;
	char		  id[FLM_CERT_ID_LEN + 1];
	struct tls_svc	 *s, *old;
	int		  made, ca = strcmp(r->mode, "packaged-ca") == 0;

	if (ca && (ca_ensure(r->names, &made, err, errsz) == -1 ||
	    (certnames = ca_names_for(r->names, err, errsz)) == NULL ||
	    (cakey = ca_key()) == NULL)) {
		if (*err == '\0')
			snprintf(err, errsz, "the local CA's key does not "
			    "unseal");
		json_object_put(certnames);
		return NULL;
	}
	keyd_x509_serial(id);
	names = array_strings(ca ? certnames : r->names, &nn);
	addrs = array_strings(r->addrs, &na);
	if ((key = keyd_x509_keygen()) != NULL)
		x = keyd_x509_server(key, id, names, nn, addrs, na, time(NULL),
		    r->lifetime, ca ? tls_ca : NULL, cakey);
	free(names);
	free(addrs);
	json_object_put(certnames);
	EVP_PKEY_free(cakey);
	if (x == NULL) {
		EVP_PKEY_free(key);
		snprintf(err, errsz, "cannot make a certificate");
		return NULL;
	}
	if (sqlite3_exec(tls_db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK ||
	    db_exec("UPDATE certificates SET replaced_at = strftime('%Y-%m-%d"
	    "T%H:%M:%fZ', 'now') WHERE purpose = 'server' AND handle = ? AND "
	    "replaced_at IS NULL", r->handle) != SQLITE_OK ||
	    row_insert(id, "server", r->handle, r->mode, NULL, x, key,
	    r->names_key, r->addrs_key, NULL, err, errsz) == -1 ||
	    sqlite3_exec(tls_db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(tls_db->h, "ROLLBACK", NULL, NULL, NULL);
		if (*err == '\0')
			snprintf(err, errsz, "security.db: %s",
			    sqlite3_errmsg(tls_db->h));
		EVP_PKEY_free(key);
		X509_free(x);
		return NULL;
	}
	if ((old = svc_find(r->handle)) != NULL)
		svc_retire(old, time(NULL));
	s = svc_new(id, r->handle, r->mode, r->names_key, r->addrs_key, x, key,
	    NULL);
	log_info("certificate %s for %s (%s), valid %ld s", id, r->handle,
	    r->mode, r->lifetime);
	return s;
}

/* IMSG_TLS_ENSURE.  1: the state changed (push it), 0: it did not. */
int
keyd_tls_ensure(struct json_object *req, struct json_object **res, char *err,
    size_t errsz)
{
	struct tls_req	 r;
	struct tls_svc	*s;
	time_t		 now = time(NULL);
	int		 changed = 1;

	*err = '\0';
	if (req_ensure(req, &r, err, errsz) == -1) {
		req_free(&r);
		return -1;
	}
	if ((s = svc_find(r.handle)) != NULL && svc_fits(s, &r, now))
		changed = 0;
	else if ((s = svc_reinstate(&r, now)) == NULL && r.acme) {
		/* Only the CA makes it: keyd_acme_start orders one. */
		req_free(&r);
		return KEYD_TLS_ACME;
	} else if (s == NULL && (s = svc_make(&r, err, errsz)) == NULL) {
		req_free(&r);
		return -1;
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "cert", svc_info(s));
	req_free(&r);
	return changed;
}

/* The names of an ensure, checked, and their canonical text. */
int
keyd_tls_names(struct json_object *req, struct json_object **names,
    char **key, char *err, size_t errsz)
{
	struct tls_req	 r;

	memset(&r, 0, sizeof(r));
	if (req_names(req, &r, err, errsz) == -1) {
		req_free(&r);
		return -1;
	}
	*names = json_object_get(r.names);
	*key = r.names_key;
	r.names_key = NULL;
	req_free(&r);
	return 0;
}

/*
 * A certificate from the ACME CA (chain: leaf first) into service for
 * handle with key, which it takes; the one before retired.  0 and
 * *info, or -1 and err.
 */
int
keyd_tls_install(const char *handle, const char *names_key,
    const char *directory, STACK_OF(X509) *chain, EVP_PKEY *key,
    struct json_object **info, char *err, size_t errsz)
{
	X509		*leaf = sk_X509_value(chain, 0);
	char		 id[FLM_CERT_ID_LEN + 1], *pem = NULL, *p, *all;
	struct tls_svc	*s, *old;
	int		 i;

	*info = NULL;
	/* The chain as served: re-encoded, nothing of the CA's text. */
	for (i = 0; i < sk_X509_num(chain); i++) {
		if ((p = keyd_x509_pem(sk_X509_value(chain, i))) == NULL ||
		    asprintf(&all, "%s%s", pem ? pem : "", p) == -1)
			fatal("%s", __func__);
		free(p);
		free(pem);
		pem = all;
	}
	keyd_x509_serial(id);
	if (sqlite3_exec(tls_db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK ||
	    db_exec("UPDATE certificates SET replaced_at = strftime('%Y-%m-%d"
	    "T%H:%M:%fZ', 'now') WHERE purpose = 'server' AND handle = ? AND "
	    "replaced_at IS NULL", handle) != SQLITE_OK ||
	    row_insert(id, "server", handle, "https-acme", NULL, leaf, key,
	    names_key, "[]", pem, err, errsz) == -1 ||
	    db_exec2("UPDATE certificates SET directory = ?2 WHERE id = ?1",
	    id, directory) != SQLITE_OK ||
	    sqlite3_exec(tls_db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(tls_db->h, "ROLLBACK", NULL, NULL, NULL);
		if (*err == '\0')
			snprintf(err, errsz, "security.db: %s",
			    sqlite3_errmsg(tls_db->h));
		free(pem);
		return -1;
	}
	if ((old = svc_find(handle)) != NULL)
		svc_retire(old, time(NULL));
	X509_up_ref(leaf);
	s = svc_new(id, handle, "https-acme", names_key, "[]", leaf, key, pem);
	free(pem);
	if ((s->directory = strdup(directory)) == NULL)
		fatal("%s", __func__);
	*info = svc_info(s);
	return 0;
}

/*
 * TLS-ALPN-01: a challenge certificate for name on handle, its key
 * made here and signed with like a server key, for the order's time
 * only (never stored).  0, or -1.
 */
int
keyd_tls_challenge(const char *handle, const char *name, const char *keyauth)
{
	struct tls_svc	*s, *next;
	EVP_PKEY	*key;
	X509		*x = NULL;
	uint8_t		 digest[32];
	char		 id[FLM_CERT_ID_LEN + 1];

	for (s = TAILQ_FIRST(&tls_svcs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->alpn_name != NULL && strcmp(s->handle, handle) == 0 &&
		    strcmp(s->alpn_name, name) == 0) {
			TAILQ_REMOVE(&tls_svcs, s, entry);
			svc_free(s);
		}
	}
	crypto_hash_sha256(digest, (const unsigned char *)keyauth,
	    strlen(keyauth));
	keyd_x509_serial(id);
	if ((key = keyd_x509_keygen()) == NULL ||
	    (x = keyd_x509_alpn(key, id, name, digest, time(NULL))) == NULL) {
		EVP_PKEY_free(key);
		return -1;
	}
	s = svc_new(id, handle, "acme-tls-alpn", "[]", "[]", x, key, NULL);
	if ((s->alpn_name = strdup(name)) == NULL)
		fatal("%s", __func__);
	return 0;
}

/* The order ended: its challenge certificates go.  1 if there were. */
int
keyd_tls_challenge_clear(const char *handle)
{
	struct tls_svc	*s, *next;
	int		 n = 0;

	for (s = TAILQ_FIRST(&tls_svcs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->alpn_name != NULL && strcmp(s->handle, handle) == 0) {
			TAILQ_REMOVE(&tls_svcs, s, entry);
			svc_free(s);
			n = 1;
		}
	}
	return n;
}

/* IMSG_TLS_RELEASE: out of service; the row stays, marked released. */
int
keyd_tls_release(struct json_object *req, struct json_object **res, char *err,
    size_t errsz)
{
	struct json_object	*v;
	struct tls_svc		*s;

	if (!json_object_object_get_ex(req, "handle", &v) ||
	    !json_is_string_max(v, TLS_HANDLE_MAX)) {
		snprintf(err, errsz, "handle: expected ADDR:PORT");
		return -1;
	}
	*res = json_object_new_object();
	if ((s = svc_find(json_object_get_string(v))) == NULL)
		return 0;
	if (db_exec("UPDATE certificates SET released_at = strftime('%Y-%m-%d"
	    "T%H:%M:%fZ', 'now') WHERE id = ?", s->id) != SQLITE_OK)
		log_warnx("certificate %s: cannot note it released", s->id);
	/* Released: not signed with any more, at once. */
	TAILQ_REMOVE(&tls_svcs, s, entry);
	svc_free(s);
	return 1;
}

/* IMSG_CA_INFO. */
int
keyd_tls_ca_info(struct json_object *req, struct json_object **res, char *err,
    size_t errsz)
{
	struct tls_req	 r;
	int		 made;

	memset(&r, 0, sizeof(r));
	if (req_names(req, &r, err, errsz) == -1 ||
	    ca_ensure(r.names, &made, err, errsz) == -1) {
		req_free(&r);
		return -1;
	}
	req_free(&r);
	*res = json_object_new_object();
	json_object_object_add(*res, "ca", ca_info());
	return made;
}

/* ---- client certificates --------------------------------------------- */

static int
label_in_use(const char *label)
{
	sqlite3_stmt	*st;
	int		 found = 1;

	if (sqlite3_prepare_v2(tls_db->h, "SELECT 1 FROM certificates WHERE "
	    "purpose = 'client' AND label = ? AND revoked_at IS NULL", -1,
	    &st, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
	found = sqlite3_step(st) != SQLITE_DONE;
	sqlite3_finalize(st);
	return found;
}

/* IMSG_CLIENT_ISSUE: the key goes to the client, not into security.db. */
int
keyd_tls_client_issue(struct json_object *req, struct json_object **res,
    char *err, size_t errsz)
{
	struct json_object	*v, *info, *kp;
	struct tls_req		 r;
	EVP_PKEY		*key = NULL, *cakey = NULL;
	X509			*x = NULL;
	const char		*label;
	char			 id[FLM_CERT_ID_LEN + 1], *pem = NULL;
	int64_t			 days = TLS_CLIENT_DAYS;
	int			 made = 0, rv = -1;

	memset(&r, 0, sizeof(r));
	*err = '\0';
	if (!json_object_object_get_ex(req, "label", &v) ||
	    !json_is_string_max(v, FLM_CERT_LABEL_MAX) ||
	    !keyd_tls_label_valid(label = json_object_get_string(v))) {
		snprintf(err, errsz, "label: expected 1-%d of [A-Za-z0-9_-]",
		    FLM_CERT_LABEL_MAX);
		return -1;
	}
	if (json_object_object_get_ex(req, "days", &v)) {
		if (!json_is_int_range(v, 1, 3650)) {
			snprintf(err, errsz, "days: expected 1-3650");
			return -1;
		}
		days = json_object_get_int64(v);
	}
	if (label_in_use(label)) {
		snprintf(err, errsz, "a client certificate labelled %s is in "
		    "use; revoke it first or choose another label", label);
		return -1;
	}
	if (req_names(req, &r, err, errsz) == -1 ||
	    ca_ensure(r.names, &made, err, errsz) == -1)
		goto out;
	keyd_x509_serial(id);
	if ((cakey = ca_key()) == NULL || (key = keyd_x509_keygen()) == NULL ||
	    (x = keyd_x509_client(key, id, label, time(NULL), (long)days *
	    86400, tls_ca, cakey)) == NULL || (pem = keyd_x509_pem(x)) == NULL ||
	    (kp = keyd_x509_key_pem(key)) == NULL) {
		snprintf(err, errsz, "cannot make a client certificate");
		goto out;
	}
	if (row_insert(id, "client", NULL, NULL, label, x, NULL, NULL, NULL,
	    NULL, err, errsz) == -1) {
		json_object_put(kp);
		goto out;
	}
	info = keyd_x509_info(x, id, "client");
	*res = json_object_new_object();
	json_object_object_add(*res, "serial", json_object_new_string(id));
	json_object_object_add(*res, "label", json_object_new_string(label));
	json_object_object_add(*res, "not_after",
	    json_object_get(json_object_object_get(info, "not_after")));
	json_object_object_add(*res, "sha256",
	    json_object_get(json_object_object_get(info, "sha256")));
	json_object_object_add(*res, "cert", json_object_new_string(pem));
	json_object_object_add(*res, "key", kp);
	json_object_object_add(*res, "ca", json_object_new_string(tls_ca_pem));
	json_object_put(info);
	log_info("issued client certificate %s (%s)", id, label);
	/* Always a change: proxyd accepts it once it is in "clients". */
	rv = 1;
out:
	free(pem);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	req_free(&r);
	return rv;
}

static void
col_string(struct json_object *o, const char *k, sqlite3_stmt *st, int col)
{
	json_object_object_add(o, k, sqlite3_column_type(st, col) ==
	    SQLITE_NULL ? NULL : json_object_new_string(
	    (const char *)sqlite3_column_text(st, col)));
}

/* IMSG_CLIENT_LIST. */
int
keyd_tls_client_list(struct json_object **res, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(tls_db->h, "SELECT serial, label, "
	    "created_at, not_after, sha256, revoked_at FROM certificates "
	    "WHERE purpose = 'client' ORDER BY created_at, id", -1, &st,
	    NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "security.db: %s", db_strerror(tls_db, rc));
		return -1;
	}
	*res = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct json_object *o = json_object_new_object();

		col_string(o, "serial", st, 0);
		col_string(o, "label", st, 1);
		col_string(o, "created_at", st, 2);
		col_string(o, "not_after", st, 3);
		col_string(o, "sha256", st, 4);
		col_string(o, "revoked_at", st, 5);
		json_object_array_add(*res, o);
	}
	sqlite3_finalize(st);
	return 0;
}

/* IMSG_CLIENT_REVOKE {client: LABEL or SERIAL}. */
int
keyd_tls_client_revoke(struct json_object *req, struct json_object **res,
    char *err, size_t errsz)
{
	struct json_object	*v;
	sqlite3_stmt		*st;
	const char		*which;
	char			 serial[FLM_CERT_SERIAL_LEN + 1] = "";
	int			 rc, changed = 0;

	if (!json_object_object_get_ex(req, "client", &v) ||
	    !json_is_string_max(v, FLM_CERT_LABEL_MAX)) {
		snprintf(err, errsz, "which client? give its label or serial");
		return -1;
	}
	which = json_object_get_string(v);
	/* An unrevoked one of that label first, else that serial. */
	if (sqlite3_prepare_v2(tls_db->h, "SELECT serial, revoked_at IS NULL "
	    "FROM certificates WHERE purpose = 'client' AND (label = ?1 OR "
	    "serial = lower(?1)) ORDER BY revoked_at IS NULL DESC, created_at "
	    "DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "security.db: %s",
		    sqlite3_errmsg(tls_db->h));
		return -1;
	}
	sqlite3_bind_text(st, 1, which, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(serial, sizeof(serial), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		changed = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	if (*serial == '\0') {
		snprintf(err, errsz, "no client certificate %s", which);
		return -1;
	}
	if (changed && ((rc = db_exec("UPDATE certificates SET revoked_at = "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", serial)) !=
	    SQLITE_OK || (rc = keyd_row_seal(&cert_rows, tls_db, serial)) != SQLITE_OK)) {
		snprintf(err, errsz, "security.db: %s", db_strerror(tls_db, rc));
		return -1;
	}
	if (sqlite3_prepare_v2(tls_db->h, "SELECT serial, label, revoked_at "
	    "FROM certificates WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	*res = json_object_new_object();
	if (sqlite3_step(st) == SQLITE_ROW) {
		col_string(*res, "serial", st, 0);
		col_string(*res, "label", st, 1);
		col_string(*res, "revoked_at", st, 2);
	}
	sqlite3_finalize(st);
	if (changed)
		log_info("revoked client certificate %s", serial);
	return changed;
}

/* ---- proxyd: the state and the signatures ---------------------------- */

/*
 * The client serials of the state: "clients", the allow-list (issued,
 * not revoked, not expired, row intact), and "revoked".  proxyd accepts
 * only a listed client, so a row deleted or forged in security.db
 * without the master key takes a certificate out, never lets one in.
 */
static void
state_clients(struct json_object *ok, struct json_object *rev)
{
	sqlite3_stmt	*st;

	if (tls_db == NULL || tls_db->h == NULL ||
	    sqlite3_prepare_v2(tls_db->h, "SELECT " CERT_MAC_COLS ", mac, "
	    "not_after > strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
	    "FROM certificates WHERE purpose = 'client' "
	    "ORDER BY created_at DESC", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct json_object	*to;
		const char		*serial;
		int			 intact = keyd_row_intact(&cert_rows, st, 0);

		serial = (const char *)sqlite3_column_text(st, 2);
		/* A row failing its MAC is revoked too: its revocation
		 * may be what was cleared. */
		if (!intact)
			log_warnx("client certificate %s: its row in "
			    "security.db fails its MAC (changed outside "
			    "flm-keyd): not an allowed client, refused as "
			    "revoked", (const char *)sqlite3_column_text(st, 0));
		/* A forged serial proxyd would refuse the whole state
		 * for: no certificate of keyd's has it anyway. */
		if (serial == NULL || strlen(serial) != FLM_CERT_SERIAL_LEN ||
		    strspn(serial, "0123456789abcdef") != FLM_CERT_SERIAL_LEN)
			continue;
		if (!intact || sqlite3_column_type(st, 5) != SQLITE_NULL)
			to = rev;
		else if (sqlite3_column_int(st, 7))
			to = ok;
		else
			continue;	/* expired: neither */
		if (json_object_array_length(to) >= FLM_TLS_SERIALS_MAX) {
			/* The oldest go; one left out of "clients" is
			 * refused, which is the safe side. */
			log_warnx("client certificate %s: more than %d %s "
			    "client certificates; left out", serial,
			    FLM_TLS_SERIALS_MAX, to == ok ? "valid" :
			    "revoked");
			continue;
		}
		json_object_array_add(to, json_object_new_string(serial));
	}
	sqlite3_finalize(st);
}

/* {certs, client_ca, clients, revoked}: the whole public state. */
struct json_object *
keyd_tls_state(void)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*certs = json_object_new_array();
	struct json_object	*ok = json_object_new_array();
	struct json_object	*rev = json_object_new_array();
	struct tls_svc		*s;

	TAILQ_FOREACH(s, &tls_svcs, entry) {
		struct json_object *c;

		if (s->retired != 0)
			continue;
		c = json_object_new_object();
		json_object_object_add(c, "id", json_object_new_string(s->id));
		json_object_object_add(c, "handle",
		    json_object_new_string(s->handle));
		json_object_object_add(c, "chain",
		    json_object_new_string(s->chain));
		if (s->alpn_name != NULL) {
			json_object_object_add(c, "alpn",
			    json_object_new_string("acme-tls/1"));
			json_object_object_add(c, "name",
			    json_object_new_string(s->alpn_name));
		}
		json_object_array_add(certs, c);
	}
	json_object_object_add(o, "certs", certs);
	json_object_object_add(o, "client_ca", tls_ca_pem == NULL ? NULL :
	    json_object_new_string(tls_ca_pem));
	state_clients(ok, rev);
	json_object_object_add(o, "clients", ok);
	json_object_object_add(o, "revoked", rev);
	return o;
}

/* IMSG_TLS_SIGN, already checked for size, version and the id's NUL. */
void
keyd_tls_sign(const struct flm_tls_sign *req, struct flm_tls_signature *sig)
{
	struct tls_svc	*s;
	time_t		 now = time(NULL);
	size_t		 len = sizeof(sig->sig);

	memset(sig, 0, sizeof(*sig));
	sig->version = FLM_TLS_VERSION;
	sig->reqid = req->reqid;
	if (req->dlen != FLM_TLS_DIGEST_LEN) {
		log_warnx("flm-proxyd asked for a signature of a %u-byte "
		    "digest: refused", req->dlen);
		sig->result = FLM_TLS_REFUSED;
		return;
	}
	TAILQ_FOREACH(s, &tls_svcs, entry)
		if (strcmp(s->id, req->cert_id) == 0 && (s->retired == 0 ||
		    now - s->retired < TLS_RETIRED_SECS))
			break;
	if (s == NULL) {
		log_warnx("flm-proxyd asked for a signature by %s: no server "
		    "key of that id is in service", req->cert_id);
		sig->result = FLM_TLS_UNKNOWN;
		return;
	}
	if (keyd_x509_sign(s->key, req->digest, req->dlen, sig->sig, &len) ==
	    -1) {
		log_warnx("certificate %s: signing failed", s->id);
		sig->result = FLM_TLS_FAILED;
		return;
	}
	sig->siglen = (uint32_t)len;
	sig->result = FLM_TLS_OK;
}

/* ---- renewal ---------------------------------------------------------- */

/*
 * At two thirds of the lifetime, less a jitter of up to a twentieth of
 * it drawn from the certificate's id: many certificates made at once do
 * not all renew in the same second, and the time is the same each time
 * keyd works it out (flm proxy status, flm doctor, the timer).
 */
static time_t
svc_renew_at(const struct tls_svc *s)
{
	time_t		 life = s->not_after - s->not_before;
	uint32_t	 h = 2166136261u;
	const char	*p;

	for (p = s->id; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return s->not_before + life * 2 / 3 - (time_t)(h % (uint32_t)(life /
	    20 + 1));
}

/* Seconds until something is due: a renewal or a retired key's end. */
long
keyd_tls_next(void)
{
	struct tls_svc	*s;
	time_t		 now = time(NULL), due = now + TLS_CHECK_SECS, t;

	TAILQ_FOREACH(s, &tls_svcs, entry) {
		if (s->alpn_name != NULL)
			continue;	/* gone with its order */
		t = s->retired != 0 ? s->retired + TLS_RETIRED_SECS :
		    svc_renew_at(s);
		/* An ACME renewal, once due, is tried on each check. */
		if (s->retired == 0 && t <= now && strcmp(s->mode,
		    "https-acme") == 0)
			continue;
		if (t < due)
			due = t;
	}
	return due > now ? (long)(due - now) : 0;
}

/* A handle's certificate, made again for the same names and addresses. */
static struct tls_svc *
svc_renew(struct tls_svc *old)
{
	struct json_object	*req = json_object_new_object();
	struct tls_req		 r;
	struct tls_svc		*s = NULL;
	char			 err[512] = "";

	json_object_object_add(req, "handle",
	    json_object_new_string(old->handle));
	json_object_object_add(req, "mode", json_object_new_string(old->mode));
	json_object_object_add(req, "names", json_tokener_parse(old->names));
	json_object_object_add(req, "addrs", json_tokener_parse(old->addrs));
	json_object_object_add(req, "lifetime",
	    json_object_new_int64(old->not_after - old->not_before));
	if (req_ensure(req, &r, err, sizeof(err)) == 0)
		s = svc_make(&r, err, sizeof(err));
	if (s == NULL)
		log_warnx("certificate %s for %s: cannot renew it: %s",
		    old->id, old->handle, err);
	req_free(&r);
	json_object_put(req);
	return s;
}

/*
 * Renew what is due, forget retired keys past their 10 minutes.
 * Returns the renewed handles as [{handle, cert}] or NULL if none.
 */
struct json_object *
keyd_tls_tick(void (*acme_due)(const char *))
{
	struct json_object	*out = NULL, *o;
	struct tls_svc		*s, *next, *n;
	time_t			 now = time(NULL);

	for (s = TAILQ_FIRST(&tls_svcs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->retired != 0) {
			if (now - s->retired >= TLS_RETIRED_SECS) {
				TAILQ_REMOVE(&tls_svcs, s, entry);
				svc_free(s);
			}
			continue;
		}
		if (s->alpn_name != NULL || svc_renew_at(s) > now)
			continue;
		/* The CA renews these: an order, answered later. */
		if (strcmp(s->mode, "https-acme") == 0) {
			if (acme_due != NULL)
				acme_due(s->handle);
			continue;
		}
		if ((n = svc_renew(s)) == NULL)
			continue;
		if (out == NULL)
			out = json_object_new_array();
		o = json_object_new_object();
		json_object_object_add(o, "handle",
		    json_object_new_string(n->handle));
		json_object_object_add(o, "cert", svc_info(n));
		json_object_array_add(out, o);
	}
	return out;
}

/* At start: the CA and the server certificates left in service. */
void
keyd_tls_init(struct db *db)
{
	sqlite3_stmt	*st;

	tls_db = db;
	if (db->h == NULL || db->safe_mode)
		return;
	(void)ca_load();	/* none, or refused: logged */
	if (sqlite3_prepare_v2(db->h, "SELECT " SVC_COLS " FROM certificates "
	    "WHERE purpose = 'server' AND replaced_at IS NULL AND released_at "
	    "IS NULL ORDER BY created_at", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		(void)svc_from_row(st);
	sqlite3_finalize(st);
}

void
keyd_tls_free(void)
{
	struct tls_svc	*s;

	while ((s = TAILQ_FIRST(&tls_svcs)) != NULL) {
		TAILQ_REMOVE(&tls_svcs, s, entry);
		svc_free(s);
	}
	ca_forget();
}

/* ---- flm doctor ------------------------------------------------------ */

#define TLS_DOCTOR_WARN		(14L * 86400)	/* expiring soon */
#define TLS_DOCTOR_CERTS	16		/* listed at most */
#define TLS_DOCTOR_LATE		120		/* a renewal this late failed */

static void
doctor_cert(struct json_object *out, const char *name, time_t not_after,
    time_t renew_at, time_t now, const char *fix)
{
	char	 when[32];

	keyd_x509_iso(not_after, when, sizeof(when));
	if (not_after <= now)
		doctor_add(out, "certificates", name, "fail", fix,
		    "expired %s", when);
	else if (renew_at != 0 && now > renew_at + TLS_DOCTOR_LATE)
		doctor_add(out, "certificates", name, "warn", fix,
		    "renewal overdue since %ld s (see flm-keyd's log); "
		    "expires %s", (long)(now - renew_at), when);
	else if (not_after - now < TLS_DOCTOR_WARN)
		doctor_add(out, "certificates", name, "warn", fix,
		    "expires in %ld days (%s)", (long)((not_after - now) /
		    86400), when);
	else
		doctor_add(out, "certificates", name, "ok", NULL,
		    "valid until %s", when);
}

/*
 * The local CA and each server certificate in service: expired is a
 * failure, within 14 days (or a renewal that did not happen) a warning.
 */
void
keyd_tls_doctor(struct json_object *out)
{
	struct tls_svc	*s;
	time_t		 now = time(NULL), nb, na;
	char		 name[DOCTOR_NAME_MAX + 1];
	int		 n = 0, more = 0;

	if (tls_ca != NULL) {
		keyd_x509_times(tls_ca, &nb, &na);
		doctor_cert(out, "local CA", na, 0, now, "a new CA: see "
		    "flm(1) ca; clients must trust it again");
	} else
		doctor_add(out, "certificates", "local CA", "info", NULL,
		    "none made yet (packaged-ca or a client certificate "
		    "makes one)");
	TAILQ_FOREACH(s, &tls_svcs, entry) {
		if (s->retired != 0 || s->alpn_name != NULL)
			continue;
		if (n++ >= TLS_DOCTOR_CERTS) {
			more++;
			continue;
		}
		snprintf(name, sizeof(name), "server %.40s", s->handle);
		doctor_cert(out, name, s->not_after, svc_renew_at(s), now,
		    "flm proxy stop, then flm proxy start: a fresh "
		    "certificate");
	}
	if (more > 0)
		doctor_add(out, "certificates", "server", "skipped", NULL,
		    "%d more server certificates not listed", more);
}

/* One table's sealed keys, read under the old master key's TLS key and
 * sealed under the new one's; prefix makes the row id sealed with. */
static int
tls_remaster_table(struct db *db, const char *table, const char *prefix,
    int *n)
{
	sqlite3_stmt	*sel, *upd;
	unsigned char	 old[KEYD_MASTER_LEN];
	uint8_t		 nonce[KEYD_SEAL_NONCE], *ct;
	EVP_PKEY	*k;
	char		 sql[160], rowid[64];
	size_t		 ctlen;
	int		 rc;

	snprintf(sql, sizeof(sql), "SELECT id, key_nonce, key_sealed FROM %s "
	    "WHERE key_sealed IS NOT NULL", table);
	if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &sel, NULL)) != SQLITE_OK)
		return rc;
	snprintf(sql, sizeof(sql), "UPDATE %s SET key_nonce = ?, key_sealed = "
	    "? WHERE id = ?", table);
	if ((rc = sqlite3_prepare_v2(db->h, sql, -1, &upd, NULL)) !=
	    SQLITE_OK) {
		sqlite3_finalize(sel);
		return rc;
	}
	keyd_prev_derive(KEYD_DERIVE_TLS, 0, old);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		snprintf(rowid, sizeof(rowid), "%s%s", prefix,
		    (const char *)sqlite3_column_text(sel, 0));
		k = keyd_x509_unseal(old, rowid, sqlite3_column_blob(sel, 1),
		    (size_t)sqlite3_column_bytes(sel, 1),
		    sqlite3_column_blob(sel, 2),
		    (size_t)sqlite3_column_bytes(sel, 2));
		if (k == NULL) {
			log_warnx("%s %s: its key does not unseal; left as it "
			    "is", table, rowid);
			continue;
		}
		rc = keyd_x509_seal(keyd_tls_key(), rowid, k, nonce, &ct,
		    &ctlen);
		EVP_PKEY_free(k);
		if (rc == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		sqlite3_bind_blob(upd, 1, nonce, sizeof(nonce), SQLITE_STATIC);
		sqlite3_bind_blob(upd, 2, ct, (int)ctlen, SQLITE_STATIC);
		sqlite3_bind_text(upd, 3, (const char *)sqlite3_column_text(sel,
		    0), -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		free(ct);
		if (rc != SQLITE_DONE)
			break;
		(*n)++;
	}
	sodium_memzero(old, sizeof(old));
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * A master-key rotation, inside its transaction: the TLS and ACME
 * account keys sealed again, and every certificate row's MAC made
 * again, under the new master key.  *n: the keys moved.
 */
int
keyd_tls_remaster(struct db *db, int *n)
{
	sqlite3_stmt	*st;
	char		**ids = NULL, **nids;
	size_t		 nid = 0, i;
	int		 rc;

	*n = 0;
	if ((rc = tls_remaster_table(db, "certificates", "", n)) != SQLITE_OK ||
	    (rc = tls_remaster_table(db, "acme_accounts", "acme:", n)) !=
	    SQLITE_OK)
		return rc;
	if ((rc = sqlite3_prepare_v2(db->h, "SELECT id FROM certificates", -1,
	    &st, NULL)) != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nids = reallocarray(ids, nid + 1, sizeof(*ids))) == NULL ||
		    (nids[nid] = strdup((const char *)sqlite3_column_text(st,
		    0))) == NULL)
			fatal("%s", __func__);
		ids = nids;
		nid++;
	}
	sqlite3_finalize(st);
	rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	for (i = 0; i < nid; i++) {
		if (rc == SQLITE_OK)
			rc = keyd_row_seal(&cert_rows, db, ids[i]);
		free(ids[i]);
	}
	free(ids);
	return rc;
}
