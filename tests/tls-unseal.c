/*
 * tls-unseal: for tests only.  Given keyd's state directory (its
 * master key and security.db) and a certificate id or a handle, prints
 * the private scalar of that server (or CA) key in hex, unsealed with
 * keyd's own code, so a test can look for it where it must not be
 * (proxyd's memory).  Needs what keyd needs: the master key.
 *   tls-unseal DIR ID|ADDR:PORT
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sqlite3.h>

#include "keyd.h"
#include "log.h"

int
main(int argc, char *argv[])
{
	char		 path[4096], hex[65];
	unsigned char	 scalar[32];
	sqlite3		*db;
	sqlite3_stmt	*st;
	EVP_PKEY	*key = NULL;
	BIGNUM		*bn = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: tls-unseal DIR ID|ADDR:PORT\n");
		return 2;
	}
	log_init(1, 0);
	if (sodium_init() == -1)
		return 1;
	keyd_master_load(argv[1], geteuid(), NULL);
	snprintf(path, sizeof(path), "%s/security.db", argv[1]);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, "SELECT id, key_nonce, "
	    "key_sealed FROM certificates WHERE key_sealed IS NOT NULL AND "
	    "(id = ?1 OR (handle = ?1 AND replaced_at IS NULL)) ORDER BY "
	    "created_at DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		key = keyd_x509_unseal(keyd_tls_key(),
		    (const char *)sqlite3_column_text(st, 0),
		    sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1),
		    sqlite3_column_blob(st, 2),
		    (size_t)sqlite3_column_bytes(st, 2));
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (key == NULL ||
	    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
	    BN_bn2binpad(bn, scalar, sizeof(scalar)) != sizeof(scalar)) {
		fprintf(stderr, "tls-unseal: no key of %s unseals\n", argv[2]);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), scalar, sizeof(scalar));
	printf("%s\n", hex);
	BN_clear_free(bn);
	EVP_PKEY_free(key);
	keyd_master_free();
	return 0;
}
