/*
 * The master key, from the first provider that has one: systemd
 * credentials (flmd's unit passes them), the kernel keyring (a "user"
 * key flm:master in a keyring keyd inherits), else a key file in keyd's
 * directory, made on the first start.
 * It lives in locked, guarded memory and is wiped on exit; what keyd
 * needs (the audit chain's key) is derived from it, never sent.
 * A rotation (keyd_rotate.c) replaces a key file, or the keyring key's
 * payload (KEYCTL_UPDATE on the key keyd read, the one call on it keyd's
 * sandbox admits).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/keyctl.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keyd.h"
#include "log.h"

#define MASTER_FILE		KEYD_MASTER_FILE
#define MASTER_CRED		"flm-master-key"
#define MASTER_KEYRING		"flm:master"
#define MASTER_HEX		(KEYD_MASTER_LEN * 2)
#define AUDIT_SUBKEY_ID		1
#define ROWS_SUBKEY_ID		2	/* api_keys and policy rows */
#define TLS_SUBKEY_ID		3	/* sealed TLS private keys */
#define WRAP_SUBKEY_ID		5	/* earlier audit keys, sealed */
#define LEGACY_SUBKEY_ID	4	/* digests of legacy API keys: the
					 * first master key's, then kept
					 * sealed (keyd_legacy.c) */
#define SECRET_CONTEXT		"flmsecrt"	/* data keys of secrets */
#define AUDIT_CONTEXT		"flmaudit"	/* crypto_kdf_CONTEXTBYTES */
#define BACKUP_CONTEXT		"flmbckup"	/* the key of backups */

static unsigned char	*keyd_master;
static unsigned char	*keyd_auditkey;
static unsigned char	*keyd_rowkey;
static unsigned char	*keyd_tlskey;
static unsigned char	*keyd_prev;	/* during a rotation: the old key */
static unsigned char	*keyd_legacykey;
static const char	*keyd_master_from = "";	/* flm doctor */
static uid_t		 keyd_master_uid;	/* the key file's owner,
						 * besides root */
static long		 keyd_keyring_id = -1;	/* the keyring key read */

/* 32 raw bytes, or 64 hex digits and an optional newline. */
static int
master_decode(const char *buf, size_t len, unsigned char *out)
{
	size_t	 bin;

	if (len == KEYD_MASTER_LEN) {
		memcpy(out, buf, KEYD_MASTER_LEN);
		return 0;
	}
	if (len == MASTER_HEX + 1 && buf[MASTER_HEX] == '\n')
		len--;
	if (len != MASTER_HEX || sodium_hex2bin(out, KEYD_MASTER_LEN, buf,
	    len, NULL, &bin, NULL) != 0 || bin != KEYD_MASTER_LEN)
		return -1;
	return 0;
}

static int
master_read(const char *path, int private, unsigned char *out)
{
	struct stat	 st;
	char		 buf[MASTER_HEX + 2];
	ssize_t		 n;
	int		 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		log_warn("%s: cannot read it as uid %u", path,
		    (unsigned int)geteuid());
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file", path);
		goto out;
	}
	/* Another user's file could be a key they chose, and they keep
	 * the power to change it. */
	if (private && st.st_uid != keyd_master_uid && st.st_uid != 0) {
		log_warnx("%s: owned by uid %u, not by uid %u of flm-keyd; "
		    "check where it came from, then chown it", path,
		    (unsigned int)st.st_uid, (unsigned int)keyd_master_uid);
		goto out;
	}
	if (private && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		log_warnx("%s: readable by others (mode %03o); chmod 600 it",
		    path, (unsigned int)st.st_mode & 0777);
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n > 0 && master_decode(buf, (size_t)n, out) == 0)
		rv = 0;
	else
		log_warnx("%s: expected 64 hex digits (a 256-bit key)", path);
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rv;
}

/* 1: no such key (or no keyrings here); 0: read; -1: unusable. */
static int
master_keyring(unsigned char *out)
{
	char	 buf[MASTER_HEX + 2];
	long	 id, n;
	int	 rv = -1;

	/* No callout: keyd never asks /sbin/request-key to make one. */
	if ((id = syscall(SYS_request_key, "user", MASTER_KEYRING, NULL,
	    0)) == -1)
		return 1;
	n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof(buf));
	if (n > 0 && (size_t)n <= sizeof(buf) &&
	    master_decode(buf, (size_t)n, out) == 0) {
		keyd_keyring_id = id;
		rv = 0;
	} else
		log_warnx("kernel keyring key %s: expected 64 hex digits (a "
		    "256-bit key)", MASTER_KEYRING);
	sodium_memzero(buf, sizeof(buf));
	return rv;
}

/* The first start: a fresh key, written once, never overwritten. */
static int
master_create(const char *path, unsigned char *out)
{
	char	 hex[MASTER_HEX + 2];
	int	 fd, rv = -1;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return -1;
	/* keyd's user's, even when made as root: flmd.service's keyd
	 * reads it as that user. */
	if (geteuid() == 0 && keyd_master_uid != 0 &&
	    fchown(fd, keyd_master_uid, (gid_t)-1) == -1) {
		log_warn("%s: chown", path);
		close(fd);
		unlink(path);
		return -1;
	}
	randombytes_buf(out, KEYD_MASTER_LEN);
	sodium_bin2hex(hex, sizeof(hex), out, KEYD_MASTER_LEN);
	hex[MASTER_HEX] = '\n';
	if (write(fd, hex, MASTER_HEX + 1) == MASTER_HEX + 1 && fsync(fd) == 0)
		rv = 0;
	sodium_memzero(hex, sizeof(hex));
	close(fd);
	if (rv == -1)
		unlink(path);
	else
		log_info("created a new master key in %s", path);
	return rv;
}

/* The keys derived from keyd_master, made read-only with it. */
static void
master_derive(void)
{
	crypto_kdf_derive_from_key(keyd_auditkey, KEYD_MASTER_LEN,
	    AUDIT_SUBKEY_ID, AUDIT_CONTEXT, keyd_master);
	crypto_kdf_derive_from_key(keyd_rowkey, KEYD_MASTER_LEN,
	    ROWS_SUBKEY_ID, AUDIT_CONTEXT, keyd_master);
	crypto_kdf_derive_from_key(keyd_tlskey, KEYD_MASTER_LEN,
	    TLS_SUBKEY_ID, AUDIT_CONTEXT, keyd_master);
	sodium_mprotect_readonly(keyd_master);
	sodium_mprotect_readonly(keyd_tlskey);
	sodium_mprotect_readonly(keyd_auditkey);
	sodium_mprotect_readonly(keyd_rowkey);
}

static void
master_writable(void)
{
	sodium_mprotect_readwrite(keyd_master);
	sodium_mprotect_readwrite(keyd_tlskey);
	sodium_mprotect_readwrite(keyd_auditkey);
	sodium_mprotect_readwrite(keyd_rowkey);
}

/*
 * flm security master-key rotate (keyd_rotate.c): next becomes the key
 * everything derives from; the old one stays in keyd_prev, for reading
 * what it sealed, until keyd_master_forget.  back: undo, after a
 * failure.
 */
void
keyd_master_switch(const unsigned char *next)
{
	master_writable();
	sodium_mprotect_readwrite(keyd_prev);
	memcpy(keyd_prev, keyd_master, KEYD_MASTER_LEN);
	memcpy(keyd_master, next, KEYD_MASTER_LEN);
	sodium_mprotect_readonly(keyd_prev);
	master_derive();
}

void
keyd_master_back(void)
{
	master_writable();
	sodium_mprotect_readwrite(keyd_prev);
	memcpy(keyd_master, keyd_prev, KEYD_MASTER_LEN);
	sodium_memzero(keyd_prev, KEYD_MASTER_LEN);
	sodium_mprotect_noaccess(keyd_prev);
	master_derive();
}

void
keyd_master_forget(void)
{
	sodium_mprotect_readwrite(keyd_prev);
	sodium_memzero(keyd_prev, KEYD_MASTER_LEN);
	sodium_mprotect_noaccess(keyd_prev);
}

/* A key's id: a keyed hash, short, that says nothing of the key. */
void
keyd_master_id_of(const unsigned char *key, char out[KEYD_MASTER_ID_LEN + 1])
{
	uint8_t	 h[KEYD_MASTER_ID_LEN / 2];

	crypto_generichash(h, sizeof(h), (const uint8_t *)"flm master key id",
	    17, key, KEYD_MASTER_LEN);
	sodium_bin2hex(out, KEYD_MASTER_ID_LEN + 1, h, sizeof(h));
}

void
keyd_master_id(char out[KEYD_MASTER_ID_LEN + 1])
{
	keyd_master_id_of(keyd_master, out);
}

/* What the previous key (during a rotation) derived. */
void
keyd_prev_derive(int which, uint64_t id, unsigned char out[KEYD_MASTER_LEN])
{
	switch (which) {
	case KEYD_DERIVE_AUDIT:
		crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN,
		    AUDIT_SUBKEY_ID, AUDIT_CONTEXT, keyd_prev);
		break;
	case KEYD_DERIVE_TLS:
		crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN,
		    TLS_SUBKEY_ID, AUDIT_CONTEXT, keyd_prev);
		break;
	case KEYD_DERIVE_WRAP:
		crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN,
		    WRAP_SUBKEY_ID, AUDIT_CONTEXT, keyd_prev);
		break;
	case KEYD_DERIVE_SECRET:
		crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, id,
		    SECRET_CONTEXT, keyd_prev);
		break;
	default:
		crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, 1,
		    BACKUP_CONTEXT, keyd_prev);
		break;
	}
}

/* The key that seals the earlier audit keys (keyd_audit.c). */
void
keyd_wrap_key(unsigned char out[KEYD_MASTER_LEN])
{
	crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, WRAP_SUBKEY_ID,
	    AUDIT_CONTEXT, keyd_master);
}

/* Before the chroot: the credentials directory lies outside it, and
 * belongs to flmd's user.  owner: who the key file may belong to,
 * besides root; become: the step to that user, if flmd is not root. */
void
keyd_master_load(const char *dir, uid_t owner, void (*become)(void))
{
	char		 path[PATH_MAX];
	const char	*cred = getenv("CREDENTIALS_DIRECTORY");
	const char	*from = "systemd credentials";
	int		 r = 1;

	keyd_master_uid = owner;

	if ((keyd_master = sodium_malloc(KEYD_MASTER_LEN)) == NULL ||
	    (keyd_prev = sodium_malloc(KEYD_MASTER_LEN)) == NULL ||
	    (keyd_auditkey = sodium_malloc(KEYD_MASTER_LEN)) == NULL ||
	    (keyd_rowkey = sodium_malloc(KEYD_MASTER_LEN)) == NULL ||
	    (keyd_tlskey = sodium_malloc(KEYD_MASTER_LEN)) == NULL ||
	    (keyd_legacykey = sodium_malloc(KEYD_MASTER_LEN)) == NULL)
		fatalx("cannot allocate locked memory for the master key");
	if (cred != NULL && *cred != '\0') {
		snprintf(path, sizeof(path), "%s/%s", cred, MASTER_CRED);
		/* systemd owns the credential's mode. */
		if ((r = master_read(path, 0, keyd_master)) == -1)
			fatalx("%s: unusable master key", path);
	}
	if (r == 1 && (from = "the kernel keyring",
	    r = master_keyring(keyd_master)) == -1)
		fatalx("kernel keyring key %s: unusable master key",
		    MASTER_KEYRING);
	/* become() finishes a rotation, which must know where the key
	 * is kept. */
	if (r == 0)
		keyd_master_from = from;
	/* The file is keyd's user's when flmd is not root. */
	if (become != NULL)
		become();
	if (r == 1) {
		from = MASTER_FILE;
		snprintf(path, sizeof(path), "%s/%s", dir, MASTER_FILE);
		if ((r = master_read(path, 1, keyd_master)) == 1)
			r = master_create(path, keyd_master);
		if (r != 0)
			fatalx("%s: no usable master key; see flm-keyd(8)",
			    path);
	}
	log_info("master key from %s", from);
	keyd_master_from = from;
	/* Until security.db says otherwise (keyd_legacy_key_load). */
	crypto_kdf_derive_from_key(keyd_legacykey, KEYD_MASTER_LEN,
	    LEGACY_SUBKEY_ID, AUDIT_CONTEXT, keyd_master);
	sodium_mprotect_readonly(keyd_legacykey);
	master_derive();
	sodium_mprotect_noaccess(keyd_prev);
}

/* Where the key came from: "systemd credentials", "the kernel keyring"
 * or MASTER_FILE; "" before keyd_master_load. */
const char *
keyd_master_source(void)
{
	return keyd_master_from;
}

/* The uid the key file must belong to, besides root (master_read's
 * rule): keyd's user, or in user mode the user. */
uid_t
keyd_master_owner(void)
{
	return keyd_master_uid;
}

const unsigned char *
keyd_row_key(void)
{
	return keyd_rowkey;
}

/* The data key of sealed secrets with key id id (keyd_secrets.c). */
void
keyd_secret_key(uint64_t id, unsigned char out[KEYD_MASTER_LEN])
{
	crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, id, SECRET_CONTEXT,
	    keyd_master);
}

const unsigned char *
keyd_tls_key(void)
{
	return keyd_tlskey;
}

/* The key backups are sealed with (keyd_backup.c). */
void
keyd_backup_key(unsigned char out[KEYD_MASTER_LEN])
{
	crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, 1, BACKUP_CONTEXT,
	    keyd_master);
}

/* The backup key another master key gives: a restore's pre-restore
 * backup is sealed for the key the restore puts in place. */
void
keyd_backup_key_of(const unsigned char *master,
    unsigned char out[KEYD_MASTER_LEN])
{
	crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, 1, BACKUP_CONTEXT,
	    master);
}

/* The master key itself: each backup holds the key its rows are
 * sealed under. */
void
keyd_master_export(unsigned char out[KEYD_MASTER_LEN])
{
	memcpy(out, keyd_master, KEYD_MASTER_LEN);
}

int
keyd_master_is(const unsigned char *key)
{
	return sodium_memcmp(key, keyd_master, KEYD_MASTER_LEN) == 0;
}

/* The audit key another master key gives: a restored anchor's. */
void
keyd_master_audit_key(const unsigned char *master,
    unsigned char out[KEYD_MASTER_LEN])
{
	crypto_kdf_derive_from_key(out, KEYD_MASTER_LEN, AUDIT_SUBKEY_ID,
	    AUDIT_CONTEXT, master);
}

/* Whether keyd may replace the key: only a key file of its own. */
int
keyd_master_replaceable(void)
{
	return strcmp(keyd_master_from, MASTER_FILE) == 0;
}

/* The kernel keyring key the master key came from, or -1: keyd's
 * sandbox lets it update that key only. */
long
keyd_master_keyring_id(void)
{
	return keyd_keyring_id;
}

/* A rotation's new key into the keyring key, as 64 hex digits (what
 * master_keyring reads): 0, or -1 with errno. */
int
keyd_master_keyring_update(const unsigned char *key)
{
	char	 hex[MASTER_HEX + 1];
	long	 rc;

	if (keyd_keyring_id == -1) {
		errno = ENOKEY;
		return -1;
	}
	sodium_bin2hex(hex, sizeof(hex), key, KEYD_MASTER_LEN);
	rc = syscall(SYS_keyctl, KEYCTL_UPDATE, keyd_keyring_id, hex,
	    (size_t)MASTER_HEX);
	sodium_memzero(hex, sizeof(hex));
	return rc == -1 ? -1 : 0;
}

/* At start, before the keys are derived: a rotation finished after the
 * keyring key was read makes the new key keyd's. */
void
keyd_master_adopt(const unsigned char *key)
{
	memcpy(keyd_master, key, KEYD_MASTER_LEN);
}

/* The key of legacy API keys' digests (keyd_legacy.c).  It does not
 * follow the master key: the digests cannot be made again without the
 * tokens. */
const unsigned char *
keyd_legacy_key(void)
{
	return keyd_legacykey;
}

void
keyd_legacy_key_set(const unsigned char *key)
{
	sodium_mprotect_readwrite(keyd_legacykey);
	memcpy(keyd_legacykey, key, KEYD_MASTER_LEN);
	sodium_mprotect_readonly(keyd_legacykey);
}

const unsigned char *
keyd_audit_key(void)
{
	return keyd_auditkey;
}

void
keyd_master_free(void)
{
	/* sodium_free wipes before it unmaps. */
	sodium_free(keyd_master);
	sodium_free(keyd_auditkey);
	sodium_free(keyd_rowkey);
	sodium_free(keyd_tlskey);
	sodium_free(keyd_prev);
	sodium_free(keyd_legacykey);
	keyd_master = keyd_auditkey = keyd_rowkey = keyd_tlskey = NULL;
	keyd_prev = keyd_legacykey = NULL;
}
