/*
 * Unit tests for keyd's certificates (flm-keyd/keyd_x509.c and
 * keyd_tls.c, linked whole): the local CA's critical name constraints
 * judged by OpenSSL's own verifier, sealed keys that open only with
 * their key and row id, and keyd_tls_* on a real security.db made by
 * the compiled-in migrations, under a master key file in a fresh
 * directory.  Nothing is mocked.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <sqlite3.h>

#include "db.h"
#include "jsonbuf.h"
#include "keyd.h"

static const char *const names[] = { "flmhost", "flmhost.lan", "localhost" };

/* Does leaf verify against ca as trust anchor, for a TLS server? */
static int
verify(X509 *ca, X509 *leaf, int *err)
{
	X509_STORE	*store = X509_STORE_new();
	X509_STORE_CTX	*ctx = X509_STORE_CTX_new();
	int		 ok;

	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(ctx);
	*err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

struct ca_fx {
	EVP_PKEY	*key;
	X509		*ca;
};

static int
ca_setup(void **state)
{
	struct ca_fx	*f = calloc(1, sizeof(*f));
	char		 serial[FLM_CERT_SERIAL_LEN + 1];

	keyd_x509_serial(serial);
	f->key = keyd_x509_keygen();
	f->ca = keyd_x509_ca(f->key, serial, names, 3, time(NULL));
	assert_non_null(f->ca);
	*state = f;
	return 0;
}

static int
ca_teardown(void **state)
{
	struct ca_fx	*f = *state;

	X509_free(f->ca);
	EVP_PKEY_free(f->key);
	free(f);
	return 0;
}

/* The constraints are there, critical, and name what the contract says. */
static void
test_ca_name_constraints_critical(void **state)
{
	struct ca_fx		*f = *state;
	struct json_object	*p = keyd_x509_permitted(f->ca);
	const char		*text;
	int			 crit = -1, i;

	i = X509_get_ext_by_NID(f->ca, NID_name_constraints, -1);
	assert_true(i >= 0);
	crit = X509_EXTENSION_get_critical(X509_get_ext(f->ca, i));
	assert_int_equal(crit, 1);
	assert_int_equal(X509_check_ca(f->ca), 1);
	text = json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_non_null(strstr(text, "\"DNS:flmhost\""));
	assert_non_null(strstr(text, "\"DNS:localhost\""));
	assert_non_null(strstr(text, "\"IP:10.0.0.0/8\""));
	assert_non_null(strstr(text, "\"IP:172.16.0.0/12\""));
	assert_non_null(strstr(text, "\"IP:100.64.0.0/10\""));
	assert_non_null(strstr(text, "\"IP:fc00::/7\""));
	assert_non_null(strstr(text, "\"IP:::1/128\""));
	assert_null(strstr(text, "0.0.0.0/0"));
	json_object_put(p);
}

/* A server certificate for the host's names and a private address. */
static void
test_server_private_verifies(void **state)
{
	struct ca_fx		*f = *state;
	const char *const	 addrs[] = { "192.168.1.20", "127.0.0.2",
				    "fe80::1" };
	char			 serial[FLM_CERT_SERIAL_LEN + 1];
	EVP_PKEY		*k = keyd_x509_keygen();
	X509			*x;
	int			 err;

	keyd_x509_serial(serial);
	x = keyd_x509_server(k, serial, names, 3, addrs, 3, time(NULL), 3600,
	    f->ca, f->key);
	assert_non_null(x);
	assert_int_equal(verify(f->ca, x, &err), 1);
	assert_int_equal(X509_check_host(x, "flmhost.lan", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "192.168.1.20", 0), 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* One crafted with the CA's key for a public name or address fails. */
static void
test_server_public_refused_by_constraints(void **state)
{
	struct ca_fx		*f = *state;
	const char *const	 pub[] = { "www.example.com" };
	const char *const	 paddr[] = { "8.8.8.8" };
	char			 serial[FLM_CERT_SERIAL_LEN + 1];
	EVP_PKEY		*k = keyd_x509_keygen();
	X509			*x;
	int			 err;

	keyd_x509_serial(serial);
	x = keyd_x509_server(k, serial, pub, 1, NULL, 0, time(NULL), 3600,
	    f->ca, f->key);
	assert_non_null(x);
	assert_int_equal(verify(f->ca, x, &err), 0);
	assert_int_equal(err, X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(x);
	x = keyd_x509_server(k, serial, names, 1, paddr, 1, time(NULL), 3600,
	    f->ca, f->key);
	assert_non_null(x);
	assert_int_equal(verify(f->ca, x, &err), 0);
	assert_int_equal(err, X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_private_addr(void **state)
{
	(void)state;
	assert_true(keyd_x509_private_addr("10.1.2.3"));
	assert_true(keyd_x509_private_addr("172.31.255.255"));
	assert_false(keyd_x509_private_addr("172.32.0.1"));
	assert_true(keyd_x509_private_addr("100.127.0.1"));
	assert_false(keyd_x509_private_addr("100.128.0.1"));
	assert_true(keyd_x509_private_addr("::1"));
	assert_true(keyd_x509_private_addr("fd12::1"));
	assert_true(keyd_x509_private_addr("fe80::1"));
	assert_false(keyd_x509_private_addr("2001:db8::1"));
	assert_false(keyd_x509_private_addr("8.8.8.8"));
	assert_false(keyd_x509_private_addr("::ffff:10.0.0.1"));
}

/* Round trip; a flipped byte, another row id or another key: nothing. */
static void
test_seal_unseal(void **state)
{
	unsigned char	 k[32], k2[32], *der = NULL;
	uint8_t		 nonce[KEYD_SEAL_NONCE], *ct;
	size_t		 ctlen;
	EVP_PKEY	*key = keyd_x509_keygen(), *back;
	int		 dlen, i;

	(void)state;
	randombytes_buf(k, sizeof(k));
	randombytes_buf(k2, sizeof(k2));
	assert_int_equal(keyd_x509_seal(k, "1a2b3c4d5e6f7081", key, nonce,
	    &ct, &ctlen), 0);
	back = keyd_x509_unseal(k, "1a2b3c4d5e6f7081", nonce, sizeof(nonce),
	    ct, ctlen);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(key, back), 1);
	EVP_PKEY_free(back);
	/* The sealed blob holds no DER of the key, nor its scalar. */
	dlen = i2d_PrivateKey(key, &der);
	assert_true(dlen > 32);
	assert_int_equal(ctlen, (size_t)dlen + KEYD_SEAL_ABYTES);
	for (i = 0; i + 32 <= dlen; i++)
		assert_null(memmem(ct, ctlen, der + i, 32));
	OPENSSL_clear_free(der, (size_t)dlen);
	assert_null(keyd_x509_unseal(k, "1a2b3c4d5e6f7082", nonce,
	    sizeof(nonce), ct, ctlen));
	assert_null(keyd_x509_unseal(k2, "1a2b3c4d5e6f7081", nonce,
	    sizeof(nonce), ct, ctlen));
	ct[ctlen / 2] ^= 1;
	assert_null(keyd_x509_unseal(k, "1a2b3c4d5e6f7081", nonce,
	    sizeof(nonce), ct, ctlen));
	free(ct);
	EVP_PKEY_free(key);
}

/* ---- keyd_tls on a real security.db ------------------------------------ */

struct db_fx {
	char		 dir[64];
	struct db	 db;
};

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
db_setup(void **state)
{
	struct db_fx	*f = calloc(1, sizeof(*f));
	char		 path[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/flm-tls-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* The file provider, not a keyring or credentials a test host has. */
	unsetenv("CREDENTIALS_DIRECTORY");
	keyd_master_load(f->dir, geteuid(), NULL);
	snprintf(path, sizeof(path), "%s/security.db", f->dir);
	assert_int_equal(db_open(&f->db, path, DB_SECURE, 0,
	    security_migrations, security_migrations_count), 0);
	keyd_tls_init(&f->db);
	*state = f;
	return 0;
}

static int
db_teardown(void **state)
{
	struct db_fx	*f = *state;

	keyd_tls_free();
	db_close(&f->db);
	keyd_master_free();
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct json_object *
req(const char *text)
{
	struct json_object *o = json_parse_buf(text, strlen(text));

	assert_non_null(o);
	return o;
}

static const char *
get_str(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object	*v = json_object_object_get(o, path1);

	if (path2 != NULL)
		v = json_object_object_get(v, path2);
	return json_object_get_string(v);
}

/* Same request, same certificate; other addresses, a new one; public
 * addresses refused for packaged-ca; signing only with keys in service. */
static void
test_ensure_release_sign(void **state)
{
	struct json_object	*r, *res = NULL, *res2 = NULL;
	struct flm_tls_sign	 sreq;
	struct flm_tls_signature sig;
	char			 err[512], id[FLM_CERT_ID_LEN + 1];

	(void)state;
	r = req("{\"handle\":\"127.0.0.2:8443\",\"mode\":\"dev-selfsigned\","
	    "\"names\":[\"flmhost\",\"localhost\"],\"addrs\":[\"127.0.0.2\"]}");
	assert_int_equal(keyd_tls_ensure(r, &res, err, sizeof(err)), 1);
	snprintf(id, sizeof(id), "%s", get_str(res, "cert", "id"));
	assert_string_equal(get_str(res, "cert", "subject"), "CN=flmhost");
	assert_string_equal(get_str(res, "cert", "issuer"), "CN=flmhost");
	assert_int_equal(keyd_tls_ensure(r, &res2, err, sizeof(err)), 0);
	assert_string_equal(get_str(res2, "cert", "id"), id);
	json_object_put(res2);
	json_object_put(r);

	memset(&sreq, 0, sizeof(sreq));
	sreq.version = FLM_TLS_VERSION;
	sreq.dlen = FLM_TLS_DIGEST_LEN;
	snprintf(sreq.cert_id, sizeof(sreq.cert_id), "%s", id);
	keyd_tls_sign(&sreq, &sig);
	assert_int_equal(sig.result, FLM_TLS_OK);
	assert_true(sig.siglen > 8 && sig.siglen <= 72);
	sreq.dlen = 48;
	keyd_tls_sign(&sreq, &sig);
	assert_int_equal(sig.result, FLM_TLS_REFUSED);

	/* Names change: a new certificate; the old key signs a while. */
	r = req("{\"handle\":\"127.0.0.2:8443\",\"mode\":\"dev-selfsigned\","
	    "\"names\":[\"flmhost\",\"localhost\"],\"addrs\":[\"127.0.0.2\","
	    "\"127.0.0.3\"]}");
	assert_int_equal(keyd_tls_ensure(r, &res2, err, sizeof(err)), 1);
	assert_string_not_equal(get_str(res2, "cert", "id"), id);
	sreq.dlen = FLM_TLS_DIGEST_LEN;
	keyd_tls_sign(&sreq, &sig);
	assert_int_equal(sig.result, FLM_TLS_OK);
	json_object_put(r);

	/* Released: not signed with, at once. */
	snprintf(sreq.cert_id, sizeof(sreq.cert_id), "%s",
	    get_str(res2, "cert", "id"));
	r = req("{\"handle\":\"127.0.0.2:8443\"}");
	json_object_put(res);
	assert_int_equal(keyd_tls_release(r, &res, err, sizeof(err)), 1);
	keyd_tls_sign(&sreq, &sig);
	assert_int_equal(sig.result, FLM_TLS_UNKNOWN);
	json_object_put(r);
	json_object_put(res);
	json_object_put(res2);

	r = req("{\"handle\":\"0.0.0.0:8443\",\"mode\":\"packaged-ca\","
	    "\"names\":[\"flmhost\"],\"addrs\":[\"10.0.0.5\",\"8.8.4.4\"]}");
	assert_int_equal(keyd_tls_ensure(r, &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "private addresses only"));
	assert_non_null(strstr(err, "8.8.4.4; use dev-selfsigned"));
	json_object_put(r);
}

/* packaged-ca: chained to the CA; the CA's key is never signed with. */
static void
test_packaged_ca_and_clients(void **state)
{
	struct json_object	*r, *res = NULL, *st;
	struct flm_tls_sign	 sreq;
	struct flm_tls_signature sig;
	char			 err[512];
	X509			*ca, *leaf;
	int			 verr;

	(void)state;
	r = req("{\"names\":[\"flmhost\",\"localhost\"],\"addrs\":[]}");
	assert_int_equal(keyd_tls_ca_info(r, &res, err, sizeof(err)), 1);
	ca = keyd_x509_from_pem(get_str(res, "ca", "pem"));
	assert_non_null(ca);
	json_object_put(res);
	json_object_put(r);

	r = req("{\"handle\":\"127.0.0.2:8443\",\"mode\":\"packaged-ca\","
	    "\"names\":[\"flmhost\",\"localhost\"],\"addrs\":[\"127.0.0.2\"]}");
	assert_int_equal(keyd_tls_ensure(r, &res, err, sizeof(err)), 1);
	st = keyd_tls_state();
	leaf = keyd_x509_from_pem(json_object_get_string(
	    json_object_object_get(json_object_array_get_idx(
	    json_object_object_get(st, "certs"), 0), "chain")));
	assert_non_null(leaf);
	assert_int_equal(verify(ca, leaf, &verr), 1);
	assert_non_null(json_object_object_get(st, "client_ca"));
	json_object_put(st);
	json_object_put(res);
	json_object_put(r);

	/* Names the CA was not made for are left out; none left: refused. */
	r = req("{\"handle\":\"127.0.0.2:9443\",\"mode\":\"packaged-ca\","
	    "\"names\":[\"newname\",\"localhost\"],\"addrs\":[]}");
	assert_int_equal(keyd_tls_ensure(r, &res, err, sizeof(err)), 1);
	assert_string_equal(get_str(res, "cert", "subject"), "CN=localhost");
	json_object_put(res);
	json_object_put(r);
	r = req("{\"handle\":\"127.0.0.2:9444\",\"mode\":\"packaged-ca\","
	    "\"names\":[\"newname\"],\"addrs\":[]}");
	assert_int_equal(keyd_tls_ensure(r, &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "may certify none of these names"));
	json_object_put(r);

	/* The CA's id is no server key in service. */
	memset(&sreq, 0, sizeof(sreq));
	sreq.version = FLM_TLS_VERSION;
	sreq.dlen = FLM_TLS_DIGEST_LEN;
	{
		ASN1_INTEGER	*s = X509_get_serialNumber(ca);
		BIGNUM		*bn = ASN1_INTEGER_to_BN(s, NULL);
		char		*hex = BN_bn2hex(bn);

		for (char *c = hex; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(sreq.cert_id, sizeof(sreq.cert_id), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
	}
	keyd_tls_sign(&sreq, &sig);
	assert_int_equal(sig.result, FLM_TLS_UNKNOWN);

	/* A client certificate; its label taken until revoked. */
	r = req("{\"label\":\"laptop-1\",\"days\":30,\"names\":[\"flmhost\"],"
	    "\"addrs\":[]}");
	assert_int_equal(keyd_tls_client_issue(r, &res, err, sizeof(err)), 1);
	assert_non_null(strstr(get_str(res, "key", NULL), "BEGIN PRIVATE KEY"));
	{
		/* The key is the certificate's, and the CA issued it. */
		BIO	 *b = BIO_new_mem_buf(get_str(res, "key", NULL), -1);
		EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		X509	 *cx = keyd_x509_from_pem(get_str(res, "cert", NULL));

		assert_non_null(pk);
		assert_non_null(cx);
		assert_int_equal(X509_check_private_key(cx, pk), 1);
		assert_int_equal(X509_verify(cx, X509_get0_pubkey(ca)), 1);
		BIO_free(b);
		EVP_PKEY_free(pk);
		X509_free(cx);
	}
	json_object_put(res);
	assert_int_equal(keyd_tls_client_issue(r, &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));
	json_object_put(r);
	r = req("{\"client\":\"laptop-1\"}");
	assert_int_equal(keyd_tls_client_revoke(r, &res, err, sizeof(err)), 1);
	assert_non_null(get_str(res, "revoked_at", NULL));
	json_object_put(res);
	json_object_put(r);
	st = keyd_tls_state();
	assert_int_equal(json_object_array_length(json_object_object_get(st,
	    "revoked")), 1);
	json_object_put(st);
	/* The revocation cleared in the database (no master key needed):
	 * the row fails its MAC and stays refused. */
	{
		struct db_fx	*f = *state;

		assert_int_equal(sqlite3_exec(f->db.h, "UPDATE certificates "
		    "SET revoked_at = NULL WHERE purpose = 'client'", NULL,
		    NULL, NULL), SQLITE_OK);
	}
	st = keyd_tls_state();
	assert_int_equal(json_object_array_length(json_object_object_get(st,
	    "revoked")), 1);
	json_object_put(st);
	X509_free(leaf);
	X509_free(ca);
}

/* Whether serial is in the state's member ("clients" or "revoked"). */
static int
state_has(const char *member, const char *serial)
{
	struct json_object	*st = keyd_tls_state(), *a;
	size_t			 i;
	int			 found = 0;

	a = json_object_object_get(st, member);
	assert_true(json_object_is_type(a, json_type_array));
	for (i = 0; i < json_object_array_length(a); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(a,
		    i)), serial) == 0)
			found = 1;
	json_object_put(st);
	return found;
}

static void
issue(const char *label, char serial[FLM_CERT_SERIAL_LEN + 1])
{
	struct json_object	*r, *res = NULL;
	char			 text[128], err[512];

	snprintf(text, sizeof(text), "{\"label\":\"%s\",\"names\":"
	    "[\"flmhost\"],\"addrs\":[]}", label);
	r = req(text);
	/* A change proxyd must hear of: the new serial is allowed. */
	assert_int_equal(keyd_tls_client_issue(r, &res, err, sizeof(err)), 1);
	snprintf(serial, FLM_CERT_SERIAL_LEN + 1, "%s",
	    get_str(res, "serial", NULL));
	json_object_put(res);
	json_object_put(r);
}

/*
 * "clients", the allow-list: issued, not revoked, not expired, row
 * intact.  What security.db's writer can do without the master key
 * (delete a row, copy one under another serial) only takes a serial
 * out of it.
 */
static void
test_clients_allow_list(void **state)
{
	struct db_fx		*f = *state;
	struct json_object	*r, *res = NULL;
	char			 a[FLM_CERT_SERIAL_LEN + 1];
	char			 b[FLM_CERT_SERIAL_LEN + 1];
	char			 c[FLM_CERT_SERIAL_LEN + 1], err[512];

	issue("alice", a);
	issue("bob", b);
	issue("carol", c);
	assert_true(state_has("clients", a));
	assert_true(state_has("clients", b));
	assert_false(state_has("revoked", a));
	r = req("{\"client\":\"alice\"}");
	assert_int_equal(keyd_tls_client_revoke(r, &res, err, sizeof(err)), 1);
	json_object_put(res);
	json_object_put(r);
	assert_false(state_has("clients", a));
	assert_true(state_has("revoked", a));
	/* Her row deleted: out of both lists, so still refused. */
	assert_int_equal(sqlite3_exec(f->db.h, "DELETE FROM certificates "
	    "WHERE label IN ('alice', 'carol')", NULL, NULL, NULL), SQLITE_OK);
	assert_false(state_has("revoked", a));
	assert_false(state_has("clients", a));
	assert_false(state_has("clients", c));
	/* bob's row copied under another serial: its MAC fails. */
	assert_int_equal(sqlite3_exec(f->db.h, "INSERT INTO certificates (id, "
	    "purpose, label, serial, subject, not_before, not_after, sha256, "
	    "cert_pem, mac) SELECT '7777777777777777', purpose, label, "
	    "'7777777777777777', subject, not_before, not_after, sha256, "
	    "cert_pem, mac FROM certificates WHERE label = 'bob'", NULL, NULL,
	    NULL), SQLITE_OK);
	assert_false(state_has("clients", "7777777777777777"));
	assert_true(state_has("revoked", "7777777777777777"));
	assert_true(state_has("clients", b));
	/* One whose serial proxyd would refuse the whole state for (upper
	 * case): left out of both lists. */
	assert_int_equal(sqlite3_exec(f->db.h, "INSERT INTO certificates (id, "
	    "purpose, label, serial, subject, not_before, not_after, sha256, "
	    "cert_pem) SELECT '8888888888888888', purpose, label, "
	    "'ABCDEF0123456789', subject, not_before, not_after, sha256, "
	    "cert_pem FROM certificates WHERE label = 'bob' AND serial != "
	    "'7777777777777777'", NULL, NULL, NULL), SQLITE_OK);
	assert_false(state_has("revoked", "ABCDEF0123456789"));
	assert_false(state_has("clients", "ABCDEF0123456789"));
	/* Expired (by its row): neither allowed nor listed revoked. */
	assert_int_equal(sqlite3_exec(f->db.h, "UPDATE certificates SET "
	    "not_after = '2001-01-01T00:00:00Z' WHERE label = 'bob' AND "
	    "serial != '7777777777777777'", NULL, NULL, NULL), SQLITE_OK);
	assert_false(state_has("clients", b));
	assert_false(state_has("revoked", b));
}

/* A CA certificate swapped in security.db (no master key needed for
 * that) is not trusted: it does not match the sealed key. */
static void
test_ca_swapped_refused(void **state)
{
	struct db_fx		*f = *state;
	struct json_object	*r, *res = NULL, *st;
	EVP_PKEY		*k = keyd_x509_keygen();
	X509			*evil;
	sqlite3_stmt		*s;
	char			 err[512], serial[FLM_CERT_SERIAL_LEN + 1];
	char			*pem;

	r = req("{\"names\":[\"flmhost\"],\"addrs\":[]}");
	assert_int_equal(keyd_tls_ca_info(r, &res, err, sizeof(err)), 1);
	json_object_put(res);
	keyd_x509_serial(serial);
	evil = keyd_x509_ca(k, serial, names, 1, time(NULL));
	pem = keyd_x509_pem(evil);
	assert_int_equal(sqlite3_prepare_v2(f->db.h, "UPDATE certificates SET "
	    "cert_pem = ? WHERE purpose = 'ca'", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, pem, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	/* keyd starts again on that database. */
	keyd_tls_free();
	keyd_tls_init(&f->db);
	st = keyd_tls_state();
	assert_null(json_object_object_get(st, "client_ca"));
	json_object_put(st);
	/* Asked again, it makes a CA of its own, not the swapped one. */
	assert_int_equal(keyd_tls_ca_info(r, &res, err, sizeof(err)), 1);
	assert_string_not_equal(get_str(res, "ca", "pem"), pem);
	json_object_put(res);
	json_object_put(r);
	free(pem);
	X509_free(evil);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_ca_name_constraints_critical, ca_setup, ca_teardown),
		cmocka_unit_test_setup_teardown(test_server_private_verifies,
		    ca_setup, ca_teardown),
		cmocka_unit_test_setup_teardown(
		    test_server_public_refused_by_constraints, ca_setup,
		    ca_teardown),
		cmocka_unit_test(test_private_addr),
		cmocka_unit_test(test_seal_unseal),
		cmocka_unit_test_setup_teardown(test_ensure_release_sign,
		    db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_clients_allow_list,
		    db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_packaged_ca_and_clients,
		    db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_ca_swapped_refused,
		    db_setup, db_teardown),
	};

	if (sodium_init() == -1)
		return 1;
	keyd_x509_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
