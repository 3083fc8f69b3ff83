/*
 * ACME (RFC 8555): the account key, every JWS and every certificate key
 * are keyd's; flm-proxyd speaks HTTP to the CA.  proxyd asks for each
 * signed request by operation, and keyd writes the payload itself: an
 * account with the configured contact, an order for the handle's names,
 * an empty challenge answer, a CSR of a key made here, or an empty
 * POST-as-GET, each to a URL of the handle's directory.  So a proxyd
 * that is taken over can fetch, order and answer for these names with
 * this account, but cannot revoke, deactivate, change the account key
 * or order any other name.  The certificate it brings back is served
 * only if its key is the one made here and it names every name.
 */
#include "config.h"

#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <sqlite3.h>

#include "acme.h"
#include "chan.h"
#include "db.h"
#include "doctor.h"
#include "jsonbuf.h"
#include "keyd.h"
#include "log.h"
#include "pemchain.h"

#define ACME_NONCE_MAX		256
#define ACME_TOKEN_MAX		128
#define ACME_ERROR_MAX		1024
#define ACME_CA_MAX		(64 * 1024)
#define ACME_CHAIN_MAX		(64 * 1024)
#define ACME_TOKENS_MAX		64	/* pending challenges, all handles */
#define ACME_BACKOFF_MIN	60	/* seconds after a failed order */
#define ACME_BACKOFF_MAX	(6 * 3600)
#define ACME_WAIT_MAX		(7 * 86400)	/* a CA's Retry-After */
#define ACME_THUMB_LEN		44	/* 32 bytes base64url, NUL */
#define ACME_NAMES_MAX		16	/* names of an order (flmd's limit) */
#define ACME_KEYAUTH_MAX	(ACME_TOKEN_MAX + ACME_THUMB_LEN + 2)

/* A DNS-01 TXT record flmd's hook publishes for an order, and the
 * challenge answer that waits for it. */
struct acme_dns {
	char		 name[ACME_DNS_NAME_MAX + 1];
	char		 value[ACME_DNS_VALUE_MAX + 1];
	int		 published;
	uint32_t	 reqid;		/* the add asked of flmd; 0: none */
	uint32_t	 signid;	/* proxyd's ACME_SIGN waiting */
	char		 url[ACME_URL_MAX + 1];
	char		 nonce[ACME_NONCE_MAX + 1];
};

/* A handle served by ACME: its settings, and its order while one runs. */
struct acme_job {
	TAILQ_ENTRY(acme_job)	 entry;
	char			 handle[72];
	char			 directory[ACME_URL_MAX + 1];
	size_t			 originlen;	/* "https://host[:port]/" */
	char			 email[ACME_EMAIL_MAX + 1];
	char			 challenge[16];
	char			*ca;		/* the CA's TLS roots, PEM */
	char			 resolve[300];	/* HOST:PORT:ADDR, flmd's */
	struct json_object	*names;
	char			*names_key;
	char			 account_id[FLM_CERT_ID_LEN + 1];
	EVP_PKEY		*account;
	char			 jwk[160];
	char			 thumb[ACME_THUMB_LEN];
	char			 kid[ACME_URL_MAX + 1];
	EVP_PKEY		*certkey;	/* made at finalize */
	struct chan		*worker;	/* NULL: no order running */
	int			 queued;	/* waits for a worker to run it */
	uint32_t		 peerid;	/* flmd's ensure waiting, or 0 */
	time_t			 retry_at;
	int			 failures;
	struct json_object	*tokens;	/* [{token, keyauth}] */
	struct acme_dns		 dns[ACME_NAMES_MAX];
	int			 ndns;
	char			 error[256];	/* the last failure */
};

static TAILQ_HEAD(, acme_job)	 acme_jobs = TAILQ_HEAD_INITIALIZER(acme_jobs);
static struct db		*acme_db;
static uint32_t			 acme_dns_nextid;

static char	*payload_for(struct acme_job *, const char *, char *, size_t);
static char	*jws_make(struct acme_job *, const char *, const char *,
		    const char *, const char *, char *, size_t);
static void	 signed_reply(struct chan *, uint32_t, const char *,
		    const char *);
static int	 job_run(struct acme_job *, char *, size_t);
static void	 challenge_sign(struct acme_job *, uint32_t, const char *,
		    const char *);
static void	 job_failed(struct acme_job *, const char *, long);

static struct acme_job *
job_find(const char *handle)
{
	struct acme_job	*j;

	TAILQ_FOREACH(j, &acme_jobs, entry)
		if (strcmp(j->handle, handle) == 0)
			return j;
	return NULL;
}

static void
job_free(struct acme_job *j)
{
	TAILQ_REMOVE(&acme_jobs, j, entry);
	free(j->ca);
	json_object_put(j->names);
	free(j->names_key);
	EVP_PKEY_free(j->account);
	EVP_PKEY_free(j->certkey);
	json_object_put(j->tokens);
	free(j);
}

/* ---- what proxyd and flmd may send ------------------------------------ */

/* ---- the account -------------------------------------------------------- */

static void
account_row(const char *id, char *rowid, size_t sz)
{
	snprintf(rowid, sz, "acme:%s", id);
}

/* This directory's account key, made and stored the first time. */
static int
account_load(struct acme_job *j, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	uint8_t		 nonce[KEYD_SEAL_NONCE], *ct = NULL;
	size_t		 ctlen;
	char		 rowid[32];
	const char	*kid;
	int		 rc;

	if (j->account != NULL)
		return 0;
	if (sqlite3_prepare_v2(acme_db->h, "SELECT id, kid, key_nonce, "
	    "key_sealed FROM acme_accounts WHERE directory = ?", -1, &st,
	    NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, j->directory, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(j->account_id, sizeof(j->account_id), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		kid = (const char *)sqlite3_column_text(st, 1);
		if (kid != NULL && acme_url_valid(kid, NULL))
			snprintf(j->kid, sizeof(j->kid), "%s", kid);
		account_row(j->account_id, rowid, sizeof(rowid));
		j->account = keyd_x509_unseal(keyd_tls_key(), rowid,
		    sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st,
		    2), sqlite3_column_blob(st, 3),
		    (size_t)sqlite3_column_bytes(st, 3));
		sqlite3_finalize(st);
		if (j->account == NULL) {
			snprintf(err, errsz, "the ACME account key for %s does "
			    "not unseal (security.db changed?)", j->directory);
			return -1;
		}
		return 0;
	}
	sqlite3_finalize(st);
	keyd_x509_serial(j->account_id);
	account_row(j->account_id, rowid, sizeof(rowid));
	if ((j->account = keyd_x509_keygen()) == NULL ||
	    keyd_x509_seal(keyd_tls_key(), rowid, j->account, nonce, &ct,
	    &ctlen) == -1) {
		snprintf(err, errsz, "cannot make an ACME account key");
		return -1;
	}
	if (sqlite3_prepare_v2(acme_db->h, "INSERT INTO acme_accounts (id, "
	    "directory, email, key_nonce, key_sealed) VALUES (?, ?, ?, ?, ?)",
	    -1, &st, NULL) != SQLITE_OK) {
		free(ct);
		goto dberr;
	}
	sqlite3_bind_text(st, 1, j->account_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, j->directory, -1, SQLITE_STATIC);
	if (j->email[0] != '\0')
		sqlite3_bind_text(st, 3, j->email, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, nonce, sizeof(nonce), SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, ct, (int)ctlen, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(ct);
	if (rc == SQLITE_DONE) {
		log_info("ACME account key %s made for %s", j->account_id,
		    j->directory);
		return 0;
	}
dberr:
	snprintf(err, errsz, "security.db: %s", sqlite3_errmsg(acme_db->h));
	EVP_PKEY_free(j->account);
	j->account = NULL;
	return -1;
}

/* The JWK and its RFC 7638 thumbprint, for key authorizations. */
static int
account_thumb(struct acme_job *j)
{
	uint8_t	 h[32];

	if (keyd_x509_jwk(j->account, j->jwk, sizeof(j->jwk)) == -1)
		return -1;
	crypto_hash_sha256(h, (const unsigned char *)j->jwk, strlen(j->jwk));
	return keyd_b64url(h, sizeof(h), j->thumb, sizeof(j->thumb));
}

/* ---- orders -------------------------------------------------------------- */

/* Every pending key authorization, to every worker: any of them may
 * take the CA's HTTP-01 request.  seq: to be confirmed, or 0. */
static void
tokens_push(uint64_t seq)
{
	struct json_object	*all = json_object_new_array();
	struct acme_job		*j;
	size_t			 i;

	TAILQ_FOREACH(j, &acme_jobs, entry)
		for (i = 0; i < json_object_array_length(j->tokens); i++)
			json_object_array_add(all, json_object_get(
			    json_object_array_get_idx(j->tokens, i)));
	keyd_peers_json(IMSG_ACME_TOKENS, seq, all);
	json_object_put(all);
}

/* A new worker: it gets the answers pending (it may take the CA's),
 * and the orders that waited for one. */
void
keyd_acme_peer_up(void)
{
	struct acme_job	*j, *next;
	char		 err[256];
	int		 pending = 0;

	for (j = TAILQ_FIRST(&acme_jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, entry);
		if (json_object_array_length(j->tokens) > 0)
			pending = 1;
		if (!j->queued)
			continue;
		j->queued = 0;
		if (job_run(j, err, sizeof(err)) == -1)
			job_failed(j, err, 0);
	}
	if (pending)
		tokens_push(0);
}

/*
 * The key authorization TOKEN.THUMBPRINT (RFC 8555 §8.1) of a challenge
 * for name, which must be one the order names.  0, or -1 and err.
 */
static int
job_keyauth(struct acme_job *j, const char *what, const char *token,
    const char *name, char *ka, char *err, size_t errsz)
{
	size_t	 i;

	for (i = 0; name != NULL && i < json_object_array_length(j->names);
	    i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(
		    j->names, i)), name) == 0)
			break;
	if (name == NULL || i == json_object_array_length(j->names)) {
		snprintf(err, errsz, "a %s challenge for a name not ordered",
		    what);
		return -1;
	}
	snprintf(ka, ACME_KEYAUTH_MAX, "%s.%s", token, j->thumb);
	return 0;
}

/* Ask flmd for one TXT record's add or remove. */
static int
dns_send(struct acme_job *j, const char *op, struct acme_dns *d)
{
	struct json_object	*o = json_object_new_object();
	int			 rc;

	json_object_object_add(o, "handle", json_object_new_string(j->handle));
	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "value", json_object_new_string(d->value));
	if (strcmp(op, "add") == 0 && (d->reqid = ++acme_dns_nextid) == 0)
		d->reqid = ++acme_dns_nextid;
	rc = keyd_parent_json(IMSG_ACME_DNS, strcmp(op, "add") == 0 ?
	    d->reqid : 0, o);
	json_object_put(o);
	return rc;
}

/* The order is over: every record it had published goes (flmd removes
 * one still being added once it is). */
static void
dns_clear(struct acme_job *j)
{
	int	 i;

	for (i = 0; i < j->ndns; i++)
		dns_send(j, "remove", &j->dns[i]);
	j->ndns = 0;
}

/*
 * DNS-01: the TXT record of a challenge of name, published by flmd's
 * hook before the CA is told to look.  1: it is, sign now; 0: asked
 * for, the signature waits (dns_done); -1 and err.
 */
static int
dns_add(struct acme_job *j, uint32_t signid, const char *token,
    const char *name, const char *url, const char *nonce, char *err,
    size_t errsz)
{
	struct acme_dns	*d = NULL;
	char		 ka[ACME_KEYAUTH_MAX];
	char		 value[ACME_DNS_VALUE_MAX + 1];
	uint8_t		 h[32];
	int		 k;

	if (job_keyauth(j, "DNS-01", token, name, ka, err, errsz) == -1)
		return -1;
	/* base64url(SHA-256(key authorization)), RFC 8555 §8.4 */
	crypto_hash_sha256(h, (const unsigned char *)ka, strlen(ka));
	if (keyd_b64url(h, sizeof(h), value, sizeof(value)) == -1)
		return -1;
	for (k = 0; k < j->ndns; k++)
		if (strcmp(j->dns[k].name + sizeof(ACME_DNS_PREFIX) - 1,
		    name) == 0)
			d = &j->dns[k];
	if (d != NULL && strcmp(d->value, value) == 0) {
		if (d->published)
			return 1;
		snprintf(err, errsz, "the TXT record of %s is still being "
		    "published", name);
		return -1;
	}
	if (d != NULL)		/* a new challenge for the name */
		dns_send(j, "remove", d);
	else if (j->ndns < ACME_NAMES_MAX)
		d = &j->dns[j->ndns++];
	else {
		snprintf(err, errsz, "too many DNS-01 records");
		return -1;
	}
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s%s", ACME_DNS_PREFIX, name);
	snprintf(d->value, sizeof(d->value), "%s", value);
	snprintf(d->url, sizeof(d->url), "%s", url);
	snprintf(d->nonce, sizeof(d->nonce), "%s", nonce);
	d->signid = signid;
	if (dns_send(j, "add", d) == -1) {
		snprintf(err, errsz, "cannot ask flmd for the TXT record");
		j->ndns--;
		return -1;
	}
	log_info("ACME order for %s: TXT %s asked of flmd's acme.dns_hook",
	    j->handle, d->name);
	return 0;
}

/* IMSG_ACME_DNS_DONE: flmd's hook added a record (or could not); the
 * challenge answer that waited for it is signed now, or refused. */
void
keyd_acme_dns_done(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o = NULL;
	struct acme_job		*j;
	struct acme_dns		*d = NULL;
	const char		*error = NULL;
	uint32_t		 signid;
	int			 k;

	if (msg_get_object(m, &o) == -1 || m->hdr.peerid == 0 ||
	    (json_object_object_get(o, "error") != NULL && (error =
	    json_get_string(o, "error", 1024)) == NULL)) {
		json_object_put(o);
		chan_fail(ch, "malformed ACME_DNS_DONE");
		return;
	}
	TAILQ_FOREACH(j, &acme_jobs, entry) {
		for (k = 0; k < j->ndns; k++)
			if (j->dns[k].reqid == m->hdr.peerid)
				d = &j->dns[k];
		if (d != NULL)
			break;
	}
	if (d == NULL || j->worker == NULL) {
		json_object_put(o);
		return;		/* the order ended meanwhile */
	}
	d->reqid = 0;
	if (error == NULL) {
		d->published = 1;
		challenge_sign(j, d->signid, d->url, d->nonce);
		json_object_put(o);
		return;
	}
	signid = d->signid;
	*d = j->dns[--j->ndns];		/* never added: nothing to remove */
	log_warnx("ACME challenge for %s not signed: %s", j->handle, error);
	signed_reply(j->worker, signid, NULL, error);
	json_object_put(o);
}

static void
job_end(struct acme_job *j)
{
	int	 had = json_object_array_length(j->tokens) > 0;

	if (keyd_tls_challenge_clear(j->handle))
		keyd_tls_changed();
	j->worker = NULL;
	EVP_PKEY_free(j->certkey);
	j->certkey = NULL;
	json_object_put(j->tokens);
	j->tokens = json_object_new_array();
	if (had)
		tokens_push(0);
	dns_clear(j);
}

/* flmd shows the last failure in flm proxy status. */
static void
job_report(struct acme_job *j)
{
	struct json_object	*o = json_object_new_object();
	char			 when[32];

	keyd_x509_iso(j->retry_at, when, sizeof(when));
	json_object_object_add(o, "handle", json_object_new_string(j->handle));
	json_object_object_add(o, "error", json_object_new_string(j->error));
	json_object_object_add(o, "failures", json_object_new_int(j->failures));
	json_object_object_add(o, "next_try", json_object_new_string(when));
	keyd_parent_json(IMSG_ACME_FAILED, 0, o);
	json_object_put(o);
}

/* An order failed: the next one after a back-off, or after the CA's
 * Retry-After (a rate limit) if that is longer. */
static void
job_failed(struct acme_job *j, const char *why, long ca_wait)
{
	long	 wait = ACME_BACKOFF_MIN;
	int	 i;

	job_end(j);
	for (i = 0; i < j->failures && wait < ACME_BACKOFF_MAX; i++)
		wait *= 2;
	if (wait > ACME_BACKOFF_MAX)
		wait = ACME_BACKOFF_MAX;
	if (ca_wait > wait)
		wait = ca_wait;
	j->failures++;
	j->retry_at = time(NULL) + wait;
	snprintf(j->error, sizeof(j->error), "%s", why);
	log_warnx("ACME order for %s failed: %s (next try in %ld s)",
	    j->handle, why, wait);
	job_report(j);
	if (j->peerid != 0)
		keyd_tls_pending_failed(j->peerid, why);
	j->peerid = 0;
}

/* Hand the order to a proxyd worker. */
static int
job_run(struct acme_job *j, char *err, size_t errsz)
{
	struct json_object	*o;
	struct chan		*w;

	if ((w = keyd_any_peer()) == NULL) {
		snprintf(err, errsz, "flm-proxyd is not running: it speaks to "
		    "the ACME server");
		return -1;
	}
	o = json_object_new_object();
	json_object_object_add(o, "handle", json_object_new_string(j->handle));
	json_object_object_add(o, "directory",
	    json_object_new_string(j->directory));
	json_object_object_add(o, "challenge",
	    json_object_new_string(j->challenge));
	json_object_object_add(o, "names", json_object_get(j->names));
	json_object_object_add(o, "thumbprint",
	    json_object_new_string(j->thumb));
	if (j->ca != NULL)
		json_object_object_add(o, "ca", json_object_new_string(j->ca));
	if (j->resolve[0] != '\0')
		json_object_object_add(o, "resolve",
		    json_object_new_string(j->resolve));
	if (chan_compose_json(w, IMSG_ACME_ORDER, 0, o) == -1) {
		json_object_put(o);
		snprintf(err, errsz, "the ACME order is too large for a "
		    "message");
		return -1;
	}
	json_object_put(o);
	j->worker = w;
	log_info("ACME order for %s (%s) handed to flm-proxyd", j->handle,
	    j->names_key);
	return 0;
}

/* The "acme" member of an ensure into j, with its names. */
static int
job_settings(struct acme_job *j, struct json_object *req, char *err,
    size_t errsz)
{
	struct json_object	*a, *names;
	const char		*s;
	char			*key;

	if (keyd_tls_names(req, &names, &key, err, errsz) == -1)
		return -1;
	json_object_put(j->names);
	free(j->names_key);
	j->names = names;
	j->names_key = key;

	if (!json_object_object_get_ex(req, "acme", &a) ||
	    !json_object_is_type(a, json_type_object) ||
	    (s = json_get_string(a, "directory", ACME_URL_MAX)) == NULL ||
	    !acme_url_valid(s, &j->originlen)) {
		snprintf(err, errsz, "acme.directory: expected an https URL");
		return -1;
	}
	snprintf(j->directory, sizeof(j->directory), "%s", s);
	j->email[0] = '\0';
	if (json_object_object_get(a, "email") != NULL) {
		if ((s = json_get_string(a, "email", ACME_EMAIL_MAX)) == NULL ||
		    !acme_email_valid(s)) {
			snprintf(err, errsz, "acme.email: expected an e-mail "
			    "address");
			return -1;
		}
		snprintf(j->email, sizeof(j->email), "%s", s);
	}
	if ((s = json_get_string(a, "challenge", 15)) == NULL ||
	    (strcmp(s, "http-01") != 0 && strcmp(s, "tls-alpn-01") != 0 &&
	    strcmp(s, "dns-01") != 0)) {
		snprintf(err, errsz, "acme.challenge: expected http-01, "
		    "tls-alpn-01 or dns-01");
		return -1;
	}
	snprintf(j->challenge, sizeof(j->challenge), "%s", s);
	j->resolve[0] = '\0';
	if (json_object_object_get(a, "resolve") != NULL) {
		if ((s = json_get_string(a, "resolve", sizeof(j->resolve) - 1)) ==
		    NULL || strspn(s, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-[]") != strlen(s)) {
			snprintf(err, errsz, "acme.resolve: expected "
			    "HOST:PORT:ADDR");
			return -1;
		}
		snprintf(j->resolve, sizeof(j->resolve), "%s", s);
	}
	free(j->ca);
	j->ca = NULL;
	if (json_object_object_get(a, "ca") != NULL) {
		if ((s = json_get_string(a, "ca", ACME_CA_MAX)) == NULL ||
		    strstr(s, "-----BEGIN CERTIFICATE-----") == NULL) {
			snprintf(err, errsz, "acme.ca: expected PEM "
			    "certificates");
			return -1;
		}
		if ((j->ca = strdup(s)) == NULL)
			fatal("%s", __func__);
	}
	return 0;
}

/* The job of an ensure's handle, new if need be (*isnew). */
static struct acme_job *
job_for(struct json_object *req, int *isnew)
{
	struct acme_job	*j;
	const char	*handle = json_get_string(req, "handle", 71);

	*isnew = 0;
	if (handle == NULL)
		return NULL;
	if ((j = job_find(handle)) != NULL)
		return j;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("%s", __func__);
	snprintf(j->handle, sizeof(j->handle), "%s", handle);
	j->tokens = json_object_new_array();
	TAILQ_INSERT_TAIL(&acme_jobs, j, entry);
	*isnew = 1;
	return j;
}

/*
 * IMSG_TLS_ENSURE of an https-acme handle with no certificate to serve
 * (keyd_tls_ensure said KEYD_TLS_ACME): an order starts, and flmd's
 * peerid is answered when it ends.  0, or -1 and err.
 */
int
keyd_acme_start(struct json_object *req, uint32_t peerid, char *err,
    size_t errsz)
{
	struct acme_job	*j;
	int		 isnew;

	if ((j = job_for(req, &isnew)) == NULL) {
		snprintf(err, errsz, "handle: expected ADDR:PORT");
		return -1;
	}
	if (!isnew && (j->worker != NULL || j->queued)) {
		snprintf(err, errsz, "an ACME order for %s is running",
		    j->handle);
		return -1;
	}
	if (job_settings(j, req, err, errsz) == -1)
		goto fail;
	/* The directory may have changed: its account is loaded anew. */
	if (!isnew && j->account != NULL) {
		EVP_PKEY_free(j->account);
		j->account = NULL;
		j->kid[0] = '\0';
	}
	if (account_load(j, err, errsz) == -1 || account_thumb(j) == -1) {
		if (*err == '\0')
			snprintf(err, errsz, "the ACME account key is unusable");
		goto fail;
	}
	/* At flmd's start keyd may be up before proxyd: the order waits. */
	if (keyd_any_peer() == NULL) {
		log_info("ACME order for %s waits for flm-proxyd", j->handle);
		j->queued = 1;
	} else if (job_run(j, err, errsz) == -1)
		goto fail;
	j->peerid = peerid;
	return 0;
fail:
	if (isnew)
		job_free(j);
	return -1;
}

/* Settings of a handle that is served from a stored certificate: kept
 * for its renewal. */
void
keyd_acme_keep(struct json_object *req)
{
	struct acme_job	*j;
	char		 err[256];
	int		 isnew;

	if ((j = job_for(req, &isnew)) == NULL || j->worker != NULL)
		return;
	if (job_settings(j, req, err, sizeof(err)) == -1) {
		log_warnx("ACME settings of %s: %s", j->handle, err);
		if (isnew)
			job_free(j);
		return;
	}
	EVP_PKEY_free(j->account);
	j->account = NULL;
	j->kid[0] = '\0';
}

/* A certificate of handle is due for renewal: an order, unless one runs
 * or the last failure's back-off has not passed. */
void
keyd_acme_due(const char *handle)
{
	struct acme_job	*j;
	char		 err[256] = "";

	if ((j = job_find(handle)) == NULL || j->worker != NULL || j->queued ||
	    time(NULL) < j->retry_at)
		return;
	if (account_load(j, err, sizeof(err)) == -1 || account_thumb(j) ==
	    -1 || job_run(j, err, sizeof(err)) == -1) {
		job_failed(j, *err ? err : "the ACME account key is unusable",
		    0);
		return;
	}
	log_info("ACME: renewing the certificate of %s", handle);
}

/* The handle stopped: its settings go, an order running is dropped. */
void
keyd_acme_forget(const char *handle)
{
	struct acme_job	*j;

	if ((j = job_find(handle)) == NULL)
		return;
	if (j->peerid != 0)
		keyd_tls_pending_failed(j->peerid, "the proxy was stopped");
	job_end(j);
	job_free(j);
}

/* A worker went away: the orders it ran fail, and are tried again. */
void
keyd_acme_peer_down(struct chan *ch)
{
	struct acme_job	*j;

	TAILQ_FOREACH(j, &acme_jobs, entry)
		if (j->worker == ch)
			job_failed(j, "flm-proxyd stopped during the order", 0);
}

/* ---- the signed requests ------------------------------------------------ */

/* The payload keyd writes for op; NULL if op is not one it signs. */
static char *
payload_for(struct acme_job *j, const char *op, char *err, size_t errsz)
{
	struct json_object	*o, *ids, *id;
	const char		**names;
	unsigned char		*der = NULL;
	char			*out = NULL, *csr;
	size_t			 i, n, len;

	if (strcmp(op, "get") == 0)
		return strdup("");
	if (strcmp(op, "challenge") == 0)
		return strdup("{}");
	o = json_object_new_object();
	if (strcmp(op, "new-account") == 0) {
		json_object_object_add(o, "termsOfServiceAgreed",
		    json_object_new_boolean(1));
		if (j->email[0] != '\0') {
			char	 mailto[ACME_EMAIL_MAX + 8];

			snprintf(mailto, sizeof(mailto), "mailto:%s", j->email);
			ids = json_object_new_array();
			json_object_array_add(ids,
			    json_object_new_string(mailto));
			json_object_object_add(o, "contact", ids);
		}
	} else if (strcmp(op, "new-order") == 0) {
		ids = json_object_new_array();
		for (i = 0; i < json_object_array_length(j->names); i++) {
			id = json_object_new_object();
			json_object_object_add(id, "type",
			    json_object_new_string("dns"));
			json_object_object_add(id, "value", json_object_get(
			    json_object_array_get_idx(j->names, i)));
			json_object_array_add(ids, id);
		}
		json_object_object_add(o, "identifiers", ids);
	} else if (strcmp(op, "finalize") == 0) {
		/* One key per order: a finalize sent again reuses it. */
		if (j->certkey == NULL && (j->certkey =
		    keyd_x509_keygen()) == NULL) {
			snprintf(err, errsz, "cannot make a certificate key");
			goto out;
		}
		n = json_object_array_length(j->names);
		if ((names = calloc(n, sizeof(*names))) == NULL)
			fatal("%s", __func__);
		for (i = 0; i < n; i++)
			names[i] = json_object_get_string(
			    json_object_array_get_idx(j->names, i));
		if (keyd_x509_csr(j->certkey, names, n, &der, &len) == -1) {
			free(names);
			snprintf(err, errsz, "cannot make the CSR");
			goto out;
		}
		free(names);
		if ((csr = malloc(len * 4 / 3 + 4)) == NULL)
			fatal("%s", __func__);
		keyd_b64url(der, len, csr, len * 4 / 3 + 4);
		OPENSSL_free(der);
		json_object_object_add(o, "csr", json_object_new_string(csr));
		free(csr);
	} else {
		snprintf(err, errsz, "operation %s is not one keyd signs", op);
		goto out;
	}
	out = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(o);
	return out;
}

/* A flattened JWS (RFC 7515 §7.2.2) of payload to url, signed ES256. */
static char *
jws_make(struct acme_job *j, const char *op, const char *url,
    const char *nonce, const char *payload, char *err, size_t errsz)
{
	uint8_t	 sig[KEYD_ES256_LEN];
	char	 prot[ACME_URL_MAX * 2 + 512], *bp, *bl, *input, *out = NULL;
	char	 bs[96];
	size_t	 plen = strlen(payload), n;

	/* A new account says its key; everything else names the account. */
	if (strcmp(op, "new-account") == 0)
		n = (size_t)snprintf(prot, sizeof(prot), "{\"alg\":\"ES256\","
		    "\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}", j->jwk,
		    nonce, url);
	else if (j->kid[0] == '\0') {
		snprintf(err, errsz, "no ACME account yet: new-account first");
		return NULL;
	} else
		n = (size_t)snprintf(prot, sizeof(prot), "{\"alg\":\"ES256\","
		    "\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}", j->kid,
		    nonce, url);
	if (n >= sizeof(prot))
		return NULL;
	bp = malloc(n * 4 / 3 + 4);
	bl = malloc(plen * 4 / 3 + 4);
	input = malloc(n * 4 / 3 + plen * 4 / 3 + 8);
	if (bp == NULL || bl == NULL || input == NULL)
		fatal("%s", __func__);
	keyd_b64url(prot, n, bp, n * 4 / 3 + 4);
	if (plen > 0)
		keyd_b64url(payload, plen, bl, plen * 4 / 3 + 4);
	else
		bl[0] = '\0';
	snprintf(input, n * 4 / 3 + plen * 4 / 3 + 8, "%s.%s", bp, bl);
	if (keyd_x509_es256(j->account, input, strlen(input), sig) == 0 &&
	    keyd_b64url(sig, sizeof(sig), bs, sizeof(bs)) == 0 &&
	    asprintf(&out, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\"}", bp, bl, bs) == -1)
		out = NULL;
	if (out == NULL)
		snprintf(err, errsz, "signing failed");
	free(bp);
	free(bl);
	free(input);
	return out;
}

/* A challenge is answered: its key authorization is served from now. */
static int
token_add(struct acme_job *j, const char *token)
{
	struct json_object	*t;
	struct acme_job		*k;
	char			 ka[ACME_TOKEN_MAX + ACME_THUMB_LEN + 2];
	size_t			 i, total = 0;

	for (i = 0; i < json_object_array_length(j->tokens); i++)
		if (strcmp(json_object_get_string(json_object_object_get(
		    json_object_array_get_idx(j->tokens, i), "token")),
		    token) == 0)
			return 0;
	TAILQ_FOREACH(k, &acme_jobs, entry)
		total += json_object_array_length(k->tokens);
	if (total >= ACME_TOKENS_MAX)
		return -1;
	snprintf(ka, sizeof(ka), "%s.%s", token, j->thumb);
	t = json_object_new_object();
	json_object_object_add(t, "token", json_object_new_string(token));
	json_object_object_add(t, "keyauth", json_object_new_string(ka));
	json_object_object_add(t, "handle", json_object_new_string(j->handle));
	json_object_array_add(j->tokens, t);
	return 0;
}

/* TLS-ALPN-01: the challenge certificate for one of the order's names,
 * served before the CA is told to look. */
static int
alpn_add(struct acme_job *j, const char *token, const char *name, char *err,
    size_t errsz)
{
	char	 ka[ACME_KEYAUTH_MAX];

	if (job_keyauth(j, "TLS-ALPN-01", token, name, ka, err, errsz) == -1)
		return -1;
	if (keyd_tls_challenge(j->handle, name, ka) == -1) {
		snprintf(err, errsz, "cannot make the challenge certificate");
		return -1;
	}
	return 0;
}

/* The challenge answer, signed: to the worker that runs j's order. */
static void
challenge_sign(struct acme_job *j, uint32_t signid, const char *url,
    const char *nonce)
{
	char	 err[256] = "", *payload, *jws = NULL;

	if ((payload = payload_for(j, "challenge", err, sizeof(err))) != NULL)
		jws = jws_make(j, "challenge", url, nonce, payload, err,
		    sizeof(err));
	if (jws == NULL)
		log_warnx("ACME challenge for %s not signed: %s", j->handle,
		    err);
	signed_reply(j->worker, signid, jws, err);
	free(payload);
	free(jws);
}

/* A challenge answer that waits for every worker to serve its proof. */
struct acme_ready {
	char		 handle[72];
	uint32_t	 signid;
	char		 url[ACME_URL_MAX + 1];
	char		 nonce[ACME_NONCE_MAX + 1];
};

/* keyd_after_applied's: every worker serves the proof now (or one that
 * did not in time is being restarted): the CA may look. */
static void
challenge_ready(void *arg)
{
	struct acme_ready	*r = arg;
	struct acme_job		*j;

	if ((j = job_find(r->handle)) != NULL && j->worker != NULL) {
		log_debug("ACME challenge for %s: its proof is out on every "
		    "worker", j->handle);
		challenge_sign(j, r->signid, r->url, r->nonce);
	}
	free(r);
}

/*
 * Before a challenge is answered its proof must be out: the key
 * authorization on every worker (HTTP-01: any of them may take the
 * CA's request), the challenge certificate likewise (TLS-ALPN-01), the
 * TXT record in the DNS (DNS-01).  1: sign now; 0: signed later; -1
 * and err.
 */
static int
challenge_prepare(struct acme_job *j, uint32_t signid, const char *token,
    const char *name, const char *url, const char *nonce, char *err,
    size_t errsz)
{
	struct acme_ready	*r;
	uint64_t		 seq;

	if (strcmp(j->challenge, "dns-01") == 0)
		return dns_add(j, signid, token, name, url, nonce, err, errsz);
	if (strcmp(j->challenge, "http-01") == 0 && token_add(j, token) ==
	    -1) {
		snprintf(err, errsz, "too many pending challenges");
		return -1;
	}
	if (strcmp(j->challenge, "tls-alpn-01") == 0 && alpn_add(j, token,
	    name, err, errsz) == -1)
		return -1;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("%s", __func__);
	snprintf(r->handle, sizeof(r->handle), "%s", j->handle);
	r->signid = signid;
	snprintf(r->url, sizeof(r->url), "%s", url);
	snprintf(r->nonce, sizeof(r->nonce), "%s", nonce);
	seq = keyd_after_applied(challenge_ready, r);
	if (strcmp(j->challenge, "http-01") == 0)
		tokens_push(seq);
	else
		keyd_tls_changed_seq(seq);
	return 0;
}

/* The order of handle that ch runs, or NULL (logged). */
static struct acme_job *
job_of(struct chan *ch, const char *handle, const char *what)
{
	struct acme_job	*j;

	if (handle == NULL || (j = job_find(handle)) == NULL ||
	    j->worker != ch) {
		log_warnx("flm-proxyd sent %s for %s, which has no order it "
		    "runs: refused", what, handle ? handle : "no handle");
		return NULL;
	}
	return j;
}

static void
signed_reply(struct chan *ch, uint32_t peerid, const char *jws,
    const char *error)
{
	struct json_object	*o = json_object_new_object();

	if (jws != NULL)
		json_object_object_add(o, "jws", json_object_new_string(jws));
	else
		json_object_object_add(o, "error",
		    json_object_new_string(error));
	chan_compose_json(ch, IMSG_ACME_SIGNED, peerid, o);
	json_object_put(o);
}

/* IMSG_ACME_SIGN: malformed closes the channel; a request keyd will not
 * sign is answered with the reason. */
void
keyd_acme_sign(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL;
	struct acme_job		*j;
	const char		*handle, *op, *url, *nonce, *token = NULL;
	const char		*name = NULL;
	char			 err[256] = "", *payload = NULL, *jws = NULL;
	int			 rc;

	if (msg_get_object(m, &req) == -1 ||
	    (handle = json_get_string(req, "handle", 71)) == NULL ||
	    (op = json_get_string(req, "op", 16)) == NULL ||
	    (url = json_get_string(req, "url", ACME_URL_MAX)) == NULL ||
	    (nonce = json_get_string(req, "nonce", ACME_NONCE_MAX)) == NULL ||
	    (json_object_object_get(req, "token") != NULL && (token =
	    json_get_string(req, "token", ACME_TOKEN_MAX)) == NULL) ||
	    (json_object_object_get(req, "name") != NULL && (name =
	    json_get_string(req, "name", 253)) == NULL)) {
		log_warnx("flm-proxyd sent a malformed ACME_SIGN");
		chan_fail(ch, "malformed ACME_SIGN");
		json_object_put(req);
		return;
	}
	if ((j = job_of(ch, handle, "ACME_SIGN")) == NULL)
		snprintf(err, sizeof(err), "no order for %s", handle);
	else if (!acme_url_valid(url, NULL) || strncmp(url, j->directory,
	    j->originlen) != 0)
		snprintf(err, sizeof(err), "%s is not a URL of %.*s", url,
		    (int)j->originlen, j->directory);
	else if (!acme_b64url_valid(nonce, ACME_NONCE_MAX))
		snprintf(err, sizeof(err), "the nonce is not base64url");
	else if (strcmp(op, "challenge") == 0 && (token == NULL ||
	    !acme_b64url_valid(token, ACME_TOKEN_MAX)))
		snprintf(err, sizeof(err), "a challenge needs its token");
	else if (strcmp(op, "challenge") == 0 && (rc = challenge_prepare(j,
	    m->hdr.peerid, token, name, url, nonce, err, sizeof(err))) != 1) {
		if (rc == 0) {		/* signed once the proof is out */
			json_object_put(req);
			return;
		}
	} else if ((payload = payload_for(j, op, err,
	    sizeof(err))) != NULL)
		jws = jws_make(j, op, url, nonce, payload, err, sizeof(err));
	if (jws == NULL)
		log_warnx("ACME %s for %s not signed: %s", op, handle, err);
	signed_reply(ch, m->hdr.peerid, jws, err);
	free(payload);
	free(jws);
	json_object_put(req);
}

/* IMSG_ACME_ACCOUNT: the account's URL, kept for the requests after. */
void
keyd_acme_account(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL;
	struct acme_job		*j;
	sqlite3_stmt		*st;
	const char		*handle, *kid;

	if (msg_get_object(m, &req) == -1 ||
	    (handle = json_get_string(req, "handle", 71)) == NULL ||
	    (kid = json_get_string(req, "kid", ACME_URL_MAX)) == NULL) {
		log_warnx("flm-proxyd sent a malformed ACME_ACCOUNT");
		chan_fail(ch, "malformed ACME_ACCOUNT");
		json_object_put(req);
		return;
	}
	if ((j = job_of(ch, handle, "ACME_ACCOUNT")) == NULL ||
	    !acme_url_valid(kid, NULL) || strncmp(kid, j->directory,
	    j->originlen) != 0) {
		if (j != NULL)
			log_warnx("flm-proxyd sent an account URL outside "
			    "the ACME server: refused");
		json_object_put(req);
		return;
	}
	if (strcmp(j->kid, kid) != 0) {
		snprintf(j->kid, sizeof(j->kid), "%s", kid);
		if (sqlite3_prepare_v2(acme_db->h, "UPDATE acme_accounts SET "
		    "kid = ? WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, j->account_id, -1,
			    SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				log_warnx("ACME account %s: cannot store its "
				    "URL: %s", j->account_id,
				    sqlite3_errmsg(acme_db->h));
			sqlite3_finalize(st);
		}
		log_info("ACME account %s is %s", j->account_id, kid);
	}
	json_object_put(req);
}

/* The chain fits the order: the leaf's key is ours, it names every
 * name and is in its lifetime. */
static int
chain_fits(struct acme_job *j, STACK_OF(X509) *sk, char *err, size_t errsz)
{
	X509	*leaf = sk_X509_value(sk, 0);
	time_t	 nb, na, now = time(NULL);
	size_t	 i;
	const char *n;

	if (j->certkey == NULL || X509_check_private_key(leaf,
	    j->certkey) != 1) {
		snprintf(err, errsz, "the certificate is not for the key of "
		    "the CSR");
		return -1;
	}
	for (i = 0; i < json_object_array_length(j->names); i++) {
		n = json_object_get_string(json_object_array_get_idx(j->names,
		    i));
		if (X509_check_host(leaf, n, strlen(n),
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1) {
			snprintf(err, errsz, "the certificate does not name "
			    "%s", n);
			return -1;
		}
	}
	keyd_x509_times(leaf, &nb, &na);
	if (na <= now || nb > now + 86400) {
		snprintf(err, errsz, "the certificate is not valid now");
		return -1;
	}
	return 0;
}

/* IMSG_ACME_DONE: the chain checked and served, or the order's error. */
void
keyd_acme_done(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *info = NULL;
	STACK_OF(X509)		*sk = NULL;
	struct acme_job		*j;
	struct json_object	*v;
	const char		*handle, *chain = NULL, *why = NULL;
	char			 err[512] = "";
	uint32_t		 peerid;
	long			 wait = 0;

	if (msg_get_object(m, &req) == -1 ||
	    (handle = json_get_string(req, "handle", 71)) == NULL ||
	    ((chain = json_get_string(req, "chain", ACME_CHAIN_MAX)) == NULL &&
	    (why = json_get_string(req, "error", ACME_ERROR_MAX)) == NULL) ||
	    (json_object_object_get_ex(req, "retry_after", &v) &&
	    (!json_is_int_range(v, 0, ACME_WAIT_MAX) ||
	    (wait = json_object_get_int64(v)) < 0))) {
		log_warnx("flm-proxyd sent a malformed ACME_DONE");
		chan_fail(ch, "malformed ACME_DONE");
		json_object_put(req);
		return;
	}
	if ((j = job_of(ch, handle, "ACME_DONE")) == NULL) {
		json_object_put(req);
		return;
	}
	if (why != NULL) {
		job_failed(j, why, wait);
		json_object_put(req);
		return;
	}
	if ((sk = pem_chain(chain, strlen(chain))) == NULL)
		snprintf(err, sizeof(err), "the CA's answer holds no "
		    "certificate");
	else if (chain_fits(j, sk, err, sizeof(err)) == 0 &&
	    keyd_tls_install(j->handle, j->names_key, j->directory, sk,
	    j->certkey, &info,
	    err, sizeof(err)) == 0)
		j->certkey = NULL;	/* now the certificate's */
	sk_X509_pop_free(sk, X509_free);
	if (info == NULL) {
		job_failed(j, err, 0);
		json_object_put(req);
		return;
	}
	peerid = j->peerid;
	j->peerid = 0;
	j->failures = 0;
	j->retry_at = 0;
	j->error[0] = '\0';
	job_end(j);
	log_info("ACME certificate for %s installed, valid until %s",
	    j->handle, json_object_get_string(json_object_object_get(info,
	    "not_after")));
	keyd_tls_installed(peerid, j->handle, info);
	json_object_put(req);
}

/* flm doctor: a warning per handle whose orders keep failing (a
 * certificate in service serves on until it expires). */
void
keyd_acme_doctor(struct json_object *out)
{
	struct acme_job	*j;
	char		 name[DOCTOR_NAME_MAX + 1], when[32];

	TAILQ_FOREACH(j, &acme_jobs, entry) {
		if (j->failures == 0)
			continue;
		snprintf(name, sizeof(name), "ACME %.40s", j->handle);
		keyd_x509_iso(j->retry_at, when, sizeof(when));
		doctor_add(out, "certificates", name, "warn", "see flm-keyd's "
		    "log and docs/TLS.md (ACME); flm proxy status shows the "
		    "last error", "%d order%s failed in a row, the last: "
		    "%.200s; next try %s; %s", j->failures, j->failures > 1 ?
		    "s" : "", j->error, when, keyd_tls_serving(j->handle) ?
		    "the certificate in service serves until it expires" :
		    "no valid certificate: the proxy waits");
	}
}

/* Seconds until the tick should try a failed order again, or limit. */
long
keyd_acme_next(long limit)
{
	struct acme_job	*j;
	time_t		 now = time(NULL);

	TAILQ_FOREACH(j, &acme_jobs, entry)
		if (j->failures > 0 && j->worker == NULL && !j->queued &&
		    j->retry_at - now < limit)
			limit = j->retry_at > now ? (long)(j->retry_at - now) : 0;
	return limit;
}

/*
 * A handle with no certificate at all (restored at start, its order
 * failed) has no renewal to bring its next order: the tick does, once
 * the back-off has passed.
 */
void
keyd_acme_tick(void)
{
	struct acme_job	*j, *next;

	for (j = TAILQ_FIRST(&acme_jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, entry);
		if (j->failures > 0 && j->worker == NULL &&
		    !keyd_tls_serving(j->handle))
			keyd_acme_due(j->handle);
	}
}

void
keyd_acme_init(struct db *db)
{
	acme_db = db;
}

void
keyd_acme_free(void)
{
	struct acme_job	*j;

	while ((j = TAILQ_FIRST(&acme_jobs)) != NULL)
		job_free(j);
}
