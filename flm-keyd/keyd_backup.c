/*
 * Backups (flm backup): security.db and flmd's config.db, each copied
 * with SQLite's online backup (never the files of a live WAL database),
 * and the audit archives, sealed in one file with libsodium's
 * secretstream under a key derived from the master key, or, for a copy
 * kept off the machine, from a passphrase through Argon2id.  Each
 * carries the master key its rows are sealed under: a passphrase copy
 * must outlive that key, and a copy sealed again after a rotation
 * (keyd_backup_rekey) restores the key its rows need.
 *
 * A file: a header (below), then chunks "u32 length, ciphertext" of at
 * most BK_CHUNK bytes each, the first authenticating the header, the
 * last tagged FINAL and followed by nothing.  Inside, records "u8 type,
 * u64 length, bytes": the manifest (JSON) first, END last.  A file cut
 * short, altered anywhere or with bytes after its end is refused whole.
 *
 * Restore checks all of it before anything is touched, then stages the
 * files beside the live ones as "restore.NAME"; flmd commits with its
 * marker, restore.ready, and restarts keyd, which renames them into
 * place before it opens anything (keyd_backup_finish).  A crash before
 * the marker leaves the old state, after it the new one.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>
#include <sqlite3.h>

#include "db.h"
#include "fileio.h"
#include "keyd.h"
#include "log.h"
#include "statesum.h"

#define BK_MAGIC	"FLM-BACKUP-1\n\0\0\0"
#define BK_MAGIC_LEN	16
#define BK_HDR_LEN	104
#define BK_SS_HDR	crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define BK_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define BK_CHUNK	65536
#define BK_KIND_MASTER	1
#define BK_KIND_PASS	2
#define BK_SUFFIX	".flmbak"
#define BK_MANIFEST_MAX	(1024 * 1024)
#define BK_PREFIX	"restore."
#define BK_STALE_SECS	3600	/* staged, never committed: discarded */

enum bk_record {
	BK_END = 0,
	BK_MANIFEST,
	BK_SECURITY,
	BK_CONFIG,
	BK_MASTER,
	BK_ARCHIVE,	/* u16 name length, name, the file */
};

struct bk_io {
	int		 fd;
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t		 hdr[BK_HDR_LEN];
	uint8_t		*buf;		/* BK_CHUNK + BK_ABYTES */
	size_t		 n, off;
	int		 first, final;
	char		*err;
	size_t		 errsz;
};

/* Locked memory for what passes in clear, taken before the sandbox
 * (sodium_malloc locks pages: mlock is not on keyd's allow-list). */
struct bk_secret {
	uint8_t		 rbuf[BK_CHUNK + BK_ABYTES];	/* reading */
	uint8_t		 wbuf[BK_CHUNK + BK_ABYTES];	/* writing */
	unsigned char	 rkey[KEYD_MASTER_LEN];
	unsigned char	 wkey[KEYD_MASTER_LEN];
	unsigned char	 master[KEYD_MASTER_LEN];	/* a backup's */
	unsigned char	 ak[KEYD_MASTER_LEN];		/* its audit key */
};

static void	 bk_shred(const char *);

static struct bk_secret	*bk_sec;
/* Set while a restore keeps the state it replaces: that backup is
 * sealed for the master key the restore puts in place. */
static const unsigned char *bk_seal_for;
/* Set while a restore keeps the state it replaces: the backup it reads
 * (in backups/), which pruning passes over. */
static const char *bk_reading;
/* The pre-restore backup of the restore staged last, when it is sealed
 * for the master key that restore brings: useless if it is aborted. */
static char	 bk_pre_other[PATH_MAX];
static int	 bk_config_fd = -1;	/* flmd's config.db, for the next */

void
keyd_backup_init(void)
{
	if ((bk_sec = sodium_malloc(sizeof(*bk_sec))) == NULL)
		fatalx("cannot allocate locked memory for backups");
}

/* At start: a backup whose writing a crash cut short is removed. */
void
keyd_backup_tidy(void)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];

	if ((d = opendir(KEYD_BACKUP_DIR)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".flm-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", KEYD_BACKUP_DIR,
		    de->d_name);
		bk_shred(path);
		log_info("removed %s: a backup never finished", path);
	}
	closedir(d);
}

void
keyd_backup_free(void)
{
	sodium_free(bk_sec);	/* wiped first */
	bk_sec = NULL;
	if (bk_config_fd != -1)
		close(bk_config_fd);
	bk_config_fd = -1;
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	int	 i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_le64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int __attribute__((format(printf, 2, 3)))
bk_fail(struct bk_io *io, const char *fmt, ...)
{
	va_list	 ap;

	if (io->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(io->err, io->errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* len bytes, or 0 at a clean end of file, -1 otherwise. */
static ssize_t
bk_read_all(int fd, void *p, size_t len)
{
	uint8_t	*b = p;
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if ((n = read(fd, b + got, len - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got == len ? (ssize_t)len : got == 0 ? 0 : -1;
}

static void
bk_keyid(const unsigned char *key, uint8_t id[16])
{
	crypto_generichash(id, 16, (const uint8_t *)"flm backup key id", 17,
	    key, KEYD_MASTER_LEN);
}

/* The key of a header: from the master key, or the passphrase. */
static int
bk_key(const uint8_t *hdr, const char *pass, unsigned char *key, char *err,
    size_t errsz)
{
	uint64_t	 ops = get_le64(hdr + 64), mem = get_le64(hdr + 72);
	uint8_t		 id[16];

	if (hdr[16] == BK_KIND_MASTER) {
		keyd_backup_key(key);
		bk_keyid(key, id);
		if (sodium_memcmp(id, hdr + 32, sizeof(id)) == 0)
			return 0;
		snprintf(err, errsz, "this backup was made under another "
		    "master key; restore one made under keyd's key, or a "
		    "passphrase backup (flm-keyd(8), RECOVERY)");
		return -1;
	}
	if (hdr[16] != BK_KIND_PASS) {
		snprintf(err, errsz, "not an FLM backup: unknown kind %u",
		    (unsigned int)hdr[16]);
		return -1;
	}
	if (pass == NULL) {
		snprintf(err, errsz, "this backup is sealed with a passphrase: "
		    "give it with --passphrase");
		return -1;
	}
	/* A crafted header must not make keyd spend a gigabyte. */
	if (ops < crypto_pwhash_OPSLIMIT_INTERACTIVE ||
	    ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    mem < crypto_pwhash_MEMLIMIT_INTERACTIVE ||
	    mem > crypto_pwhash_MEMLIMIT_MODERATE) {
		snprintf(err, errsz, "not an FLM backup: Argon2id limits out "
		    "of range");
		return -1;
	}
	if (crypto_pwhash(key, KEYD_MASTER_LEN, pass, strlen(pass), hdr + 48,
	    ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		snprintf(err, errsz, "not enough memory for Argon2id");
		return -1;
	}
	return 0;
}

static int
bk_flush(struct bk_io *w, unsigned char tag)
{
	uint8_t			 c[BK_CHUNK + BK_ABYTES], len[4];
	unsigned long long	 clen;

	crypto_secretstream_xchacha20poly1305_push(&w->st, c, &clen, w->buf,
	    w->n, w->first ? w->hdr : NULL, w->first ? BK_HDR_LEN : 0, tag);
	w->first = 0;
	w->n = 0;
	len[0] = (uint8_t)clen;
	len[1] = (uint8_t)(clen >> 8);
	len[2] = (uint8_t)(clen >> 16);
	len[3] = (uint8_t)(clen >> 24);
	if (fileio_write_all(w->fd, len, 4) == -1 ||
	    fileio_write_all(w->fd, c, (size_t)clen) == -1)
		return bk_fail(w, "cannot write the backup: %s",
		    strerror(errno));
	return 0;
}

static int
bk_put(struct bk_io *w, const void *p, size_t len)
{
	const uint8_t	*b = p;
	size_t		 k;

	while (len > 0) {
		k = BK_CHUNK - w->n < len ? BK_CHUNK - w->n : len;
		memcpy(w->buf + w->n, b, k);
		w->n += k;
		b += k;
		len -= k;
		if (w->n == BK_CHUNK && bk_flush(w,
		    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) == -1)
			return -1;
	}
	return 0;
}

static int
bk_begin(struct bk_io *w, enum bk_record type, uint64_t len)
{
	uint8_t	 h[9];

	h[0] = (uint8_t)type;
	put_le64(h + 1, len);
	return bk_put(w, h, sizeof(h));
}

static int
bk_record(struct bk_io *w, enum bk_record type, const void *p, size_t len)
{
	return bk_begin(w, type, len) == -1 || bk_put(w, p, len) == -1 ?
	    -1 : 0;
}

/* The next chunk, checked; at the FINAL one, the file must end. */
static int
bk_fill(struct bk_io *r)
{
	uint8_t			 c[BK_CHUNK + BK_ABYTES], len[4], extra;
	unsigned long long	 mlen;
	unsigned char		 tag;
	size_t			 clen;

	/* More wanted after the FINAL chunk: sealed whole, but short. */
	if (r->final)
		return bk_fail(r, "the backup is malformed: it ends before "
		    "its last record (records missing)");
	switch (bk_read_all(r->fd, len, 4)) {
	case 4:
		break;
	case 0:
		return bk_fail(r, "the backup is truncated: it stops after "
		    "a whole chunk, before its last");
	default:
		return bk_fail(r, "the backup is truncated");
	}
	clen = (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 |
	    (size_t)len[3] << 24;
	if (clen < BK_ABYTES || clen > sizeof(c))
		return bk_fail(r, "the backup is malformed: a chunk of a "
		    "wrong size");
	if (bk_read_all(r->fd, c, clen) != (ssize_t)clen)
		return bk_fail(r, "the backup is truncated");
	if (crypto_secretstream_xchacha20poly1305_pull(&r->st, r->buf, &mlen,
	    &tag, c, clen, r->first ? r->hdr : NULL, r->first ? BK_HDR_LEN :
	    0) != 0)
		return bk_fail(r, "the backup fails authentication: altered, "
		    "or the wrong key or passphrase");
	r->first = 0;
	r->n = (size_t)mlen;
	r->off = 0;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		r->final = 1;
		if (bk_read_all(r->fd, &extra, 1) != 0)
			return bk_fail(r, "the backup is malformed: bytes "
			    "after its end");
	}
	return 0;
}

static int
bk_get(struct bk_io *r, void *p, size_t len)
{
	uint8_t	*b = p;
	size_t	 k;

	while (len > 0) {
		if (r->off == r->n && bk_fill(r) == -1)
			return -1;
		k = r->n - r->off < len ? r->n - r->off : len;
		memcpy(b, r->buf + r->off, k);
		r->off += k;
		b += k;
		len -= k;
	}
	return 0;
}

/* flmd's config.db image (a memfd it sent), whole; NULL on error. */
static uint8_t *
bk_config_image(size_t *size, char *err, size_t errsz)
{
	struct stat	 st;
	uint8_t		*img;

	if (bk_config_fd == -1) {
		snprintf(err, errsz, "flmd sent no copy of config.db");
		return NULL;
	}
	if (fstat(bk_config_fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size > INT32_MAX || lseek(bk_config_fd, 0, SEEK_SET) == -1 ||
	    (img = sqlite3_malloc64((sqlite3_uint64)st.st_size)) == NULL) {
		snprintf(err, errsz, "flmd's copy of config.db is unusable");
		return NULL;
	}
	if (bk_read_all(bk_config_fd, img, (size_t)st.st_size) !=
	    (ssize_t)st.st_size) {
		sqlite3_free(img);
		snprintf(err, errsz, "flmd's copy of config.db is short");
		return NULL;
	}
	*size = (size_t)st.st_size;
	db_image_unwal(img, *size);
	return img;
}

/* flmd's config.db image for the next create or restore; keyd owns fd. */
void
keyd_backup_config(int fd)
{
	if (bk_config_fd != -1)
		close(bk_config_fd);
	bk_config_fd = fd;
}

static struct json_object *
bk_state(sqlite3 *sec, sqlite3 *cfg, struct json_object *proxies)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*v;

	if ((v = statesum_keys(sec)) != NULL)
		json_object_object_add(o, "keys", v);
	if ((v = statesum_policy(sec)) != NULL)
		json_object_object_add(o, "policy", v);
	if (cfg != NULL && (proxies = statesum_proxies(cfg)) != NULL)
		json_object_object_add(o, "proxies", proxies);
	else if (proxies != NULL)
		json_object_object_add(o, "proxies", json_object_get(proxies));
	return o;
}

static int64_t
bk_audit_last(sqlite3 *h, uint8_t link[KEYD_CHAIN_LEN])
{
	sqlite3_stmt	*st;
	int64_t		 id = 0;

	memset(link, 0, KEYD_CHAIN_LEN);
	if (sqlite3_prepare_v2(h, "SELECT last_id, last_chain FROM audit_head "
	    "WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == KEYD_CHAIN_LEN) {
		id = sqlite3_column_int64(st, 0);
		memcpy(link, sqlite3_column_blob(st, 1), KEYD_CHAIN_LEN);
	}
	sqlite3_finalize(st);
	return id;
}

static int
bk_schema_version(sqlite3 *h)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(h, "SELECT max(version) FROM "
	    "schema_migrations", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The audit archives security.db names: each as one record. */
static int
bk_put_archives(struct bk_io *w, sqlite3 *h)
{
	sqlite3_stmt	*st;
	const char	*name;
	uint8_t		 buf[BK_CHUNK], nl[2];
	struct stat	 sb;
	off_t		 left;
	ssize_t		 n;
	size_t		 len;
	int		 fd, rc = 0;

	if (sqlite3_prepare_v2(h, "SELECT file FROM audit_archives ORDER BY "
	    "first_id", -1, &st, NULL) != SQLITE_OK)
		return 0;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if ((len = strlen(name)) > 255 || strchr(name, '/') != NULL ||
		    (fd = open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
			rc = bk_fail(w, "cannot read the audit archive %s",
			    name);
			break;
		}
		if (fstat(fd, &sb) == -1) {
			close(fd);
			rc = bk_fail(w, "cannot read the audit archive %s",
			    name);
			break;
		}
		nl[0] = (uint8_t)len;
		nl[1] = 0;
		rc = bk_begin(w, BK_ARCHIVE, 2 + len + (uint64_t)sb.st_size);
		if (rc == 0)
			rc = bk_put(w, nl, 2) == -1 || bk_put(w, name, len) ==
			    -1 ? -1 : 0;
		/* Archives never change: exactly the size stat saw. */
		for (left = sb.st_size; rc == 0 && left > 0; left -= n) {
			n = read(fd, buf, left < (off_t)sizeof(buf) ?
			    (size_t)left : sizeof(buf));
			if (n <= 0)
				rc = bk_fail(w, "cannot read the audit archive "
				    "%s", name);
			else
				rc = bk_put(w, buf, (size_t)n);
		}
		close(fd);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
bk_name_ok(const char *name)
{
	size_t	 len = strlen(name), sl = sizeof(BK_SUFFIX) - 1;

	return len > 4 + sl && len < 128 && strncmp(name, "flm-", 4) == 0 &&
	    strcmp(name + len - sl, BK_SUFFIX) == 0 &&
	    strchr(name, '/') == NULL;
}

static int
bk_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The backups, oldest first (their names begin with the time). */
static char **
bk_names_in(const char *dir, size_t *n)
{
	DIR		*d;
	struct dirent	*de;
	char		**v = NULL, **nv;
	size_t		 cap = 0;

	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!bk_name_ok(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				fatal("%s", __func__);
			v = nv;
		}
		if ((v[*n] = strdup(de->d_name)) == NULL)
			fatal("%s", __func__);
		(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), bk_namecmp);
	return v;
}

static char **
bk_names(size_t *n)
{
	return bk_names_in(KEYD_BACKUP_DIR, n);
}

static void
bk_names_free(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/* Zeros over the whole file, synced, then unlinked: removed securely. */
static void
bk_shred(const char *path)
{
	uint8_t		 zero[BK_CHUNK];
	struct stat	 st;
	off_t		 left;
	int		 fd;

	memset(zero, 0, sizeof(zero));
	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		if (fstat(fd, &st) == 0)
			for (left = st.st_size; left > 0; left -= BK_CHUNK)
				if (fileio_write_all(fd, zero, left < BK_CHUNK ?
				    (size_t)left : BK_CHUNK) == -1)
					break;
		(void)fsync(fd);
		close(fd);
	}
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("cannot remove %s", path);
}

/*
 * The oldest beyond KEYD_BACKUP_KEEP removed, but the one a restore
 * reads: it is neither removed nor counted (the restore may yet fail,
 * and the admin try it again); the next backup prunes it as any other.
 */
static void
bk_prune(void)
{
	char	**v, path[PATH_MAX];
	size_t	 n, i, left;

	v = bk_names(&n);
	left = n;
	for (i = 0; i < n; i++)
		if (bk_reading != NULL && strcmp(v[i], bk_reading) == 0)
			left--;
	for (i = 0; i < n && left > KEYD_BACKUP_KEEP; i++) {
		if (bk_reading != NULL && strcmp(v[i], bk_reading) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", KEYD_BACKUP_DIR, v[i]);
		bk_shred(path);
		log_info("removed the old backup %s", v[i]);
		left--;
	}
	bk_names_free(v, n);
}

static int
bk_reason_ok(const char *r)
{
	size_t	 i;

	for (i = 0; r[i] != '\0'; i++)
		if ((r[i] < 'a' || r[i] > 'z') && r[i] != '-')
			return 0;
	return i > 0 && i <= 16;
}

/* The newest backup's age in seconds, or -1 when there is none. */
static long
bk_newest_age(char *name, size_t namesz)
{
	struct stat	 st;
	char		**v, path[PATH_MAX];
	size_t		 n;
	long		 age = -1;

	v = bk_names(&n);
	if (n > 0) {
		snprintf(path, sizeof(path), "%s/%s", KEYD_BACKUP_DIR,
		    v[n - 1]);
		snprintf(name, namesz, "%s", v[n - 1]);
		if (stat(path, &st) == 0)
			age = (long)(time(NULL) - st.st_mtime);
	}
	bk_names_free(v, n);
	return age;
}

static struct json_object *
bk_manifest(struct db *db, sqlite3 *cfg, const char *created,
    const char *reason, const char *kind)
{
	struct json_object	*m = json_object_new_object();
	uint8_t			 link[KEYD_CHAIN_LEN];

	json_object_object_add(m, "format", json_object_new_int(1));
	json_object_object_add(m, "created", json_object_new_string(created));
	json_object_object_add(m, "reason", json_object_new_string(reason));
	json_object_object_add(m, "kind", json_object_new_string(kind));
	json_object_object_add(m, "flm_version",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(m, "security_version",
	    json_object_new_int(db->version));
	json_object_object_add(m, "config_version",
	    json_object_new_int(bk_schema_version(cfg)));
	json_object_object_add(m, "audit_last_id",
	    json_object_new_int64(bk_audit_last(db->h, link)));
	json_object_object_add(m, "state", bk_state(db->h, cfg, NULL));
	return m;
}

/* The header and the stream's key: 0, or -1 with err set. */
static int
bk_seal_start(struct bk_io *w, const char *pass, time_t now)
{
	unsigned char	*key = bk_sec->wkey;
	int		 rc = 0;

	memset(w->hdr, 0, BK_HDR_LEN);
	memcpy(w->hdr, BK_MAGIC, BK_MAGIC_LEN);
	put_le64(w->hdr + 24, (uint64_t)now);
	if (pass == NULL) {
		w->hdr[16] = BK_KIND_MASTER;
		if (bk_seal_for != NULL)
			keyd_backup_key_of(bk_seal_for, key);
		else
			keyd_backup_key(key);
		bk_keyid(key, w->hdr + 32);
	} else {
		w->hdr[16] = BK_KIND_PASS;
		randombytes_buf(w->hdr + 48, 16);
		put_le64(w->hdr + 64, crypto_pwhash_OPSLIMIT_MODERATE);
		put_le64(w->hdr + 72, crypto_pwhash_MEMLIMIT_MODERATE);
		if (crypto_pwhash(key, KEYD_MASTER_LEN, pass, strlen(pass),
		    w->hdr + 48, crypto_pwhash_OPSLIMIT_MODERATE,
		    crypto_pwhash_MEMLIMIT_MODERATE,
		    crypto_pwhash_ALG_ARGON2ID13) != 0)
			rc = bk_fail(w, "not enough memory for Argon2id");
	}
	if (rc == 0)
		crypto_secretstream_xchacha20poly1305_init_push(&w->st,
		    w->hdr + BK_HDR_LEN - BK_SS_HDR, key);
	sodium_memzero(key, KEYD_MASTER_LEN);
	return rc;
}

/* Everything, sealed into the open file w->fd. */
static int
bk_write(struct bk_io *w, struct db *db, sqlite3 *cfg, uint8_t *cimg,
    size_t csize, struct json_object *manifest)
{
	uint8_t			*simg;
	size_t			 ssize;
	const char		*m;
	unsigned char		*master;
	int			 rc;

	(void)cfg;
	if ((simg = db_image(db->h, &ssize)) == NULL)
		return bk_fail(w, "cannot copy security.db: %s",
		    sqlite3_errmsg(db->h));
	if (fileio_write_all(w->fd, w->hdr, BK_HDR_LEN) == -1) {
		sqlite3_free(simg);
		return bk_fail(w, "cannot write the backup: %s",
		    strerror(errno));
	}
	m = json_object_to_json_string_ext(manifest, JSON_C_TO_STRING_PLAIN);
	rc = bk_record(w, BK_MANIFEST, m, strlen(m));
	if (rc == 0)
		rc = bk_record(w, BK_SECURITY, simg, ssize);
	sqlite3_free(simg);
	if (rc == 0)
		rc = bk_record(w, BK_CONFIG, cimg, csize);
	/* The key its rows are sealed under, in either kind: a backup
	 * sealed again after a rotation still restores with its own. */
	if (rc == 0) {
		master = bk_sec->wkey;
		keyd_master_export(master);
		rc = bk_record(w, BK_MASTER, master, KEYD_MASTER_LEN);
		sodium_memzero(master, KEYD_MASTER_LEN);
	}
	if (rc == 0)
		rc = bk_put_archives(w, db->h);
	if (rc == 0)
		rc = bk_record(w, BK_END, NULL, 0);
	if (rc == 0)
		rc = bk_flush(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	/* What was sealed is still in the buffer: wiped. */
	sodium_memzero(w->buf, BK_CHUNK + BK_ABYTES);
	return rc;
}

/*
 * flm backup create: a new backup in backups/, the oldest beyond
 * KEYD_BACKUP_KEEP removed.  max_age > 0: only if the newest is older
 * (the daily one).
 */
int
keyd_backup_create(struct db *db, const char *reason, const char *pass,
    long max_age, struct json_object **res, char *err, size_t errsz)
{
	struct bk_io		 w;
	struct json_object	*manifest;
	struct timespec		 ts;
	struct tm		 tm;
	sqlite3			*cfg;
	uint8_t			*cimg;
	size_t			 csize;
	char			 name[96], tmp[128], when[40], created[40];
	char			 newest[128];
	long			 age;
	int			 rc;

	if (!bk_reason_ok(reason)) {
		snprintf(err, errsz, "a reason is 1-16 of a-z and -");
		return -1;
	}
	if (db->h == NULL) {
		snprintf(err, errsz, "security.db is not open: %s",
		    db->safe_reason);
		return -1;
	}
	if (max_age > 0 && (age = bk_newest_age(newest, sizeof(newest))) >= 0 &&
	    age < max_age) {
		*res = json_object_new_object();
		json_object_object_add(*res, "skipped",
		    json_object_new_string(newest));
		return 0;
	}
	if ((cimg = bk_config_image(&csize, err, errsz)) == NULL)
		return -1;
	if ((cfg = db_image_open(cimg, csize)) == NULL) {
		sqlite3_free(cimg);
		snprintf(err, errsz, "flmd's copy of config.db is not a "
		    "database");
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%S", &tm);
	snprintf(name, sizeof(name), "flm-%s.%03ldZ-%s%s", when,
	    ts.tv_nsec / 1000000, reason, BK_SUFFIX);
	keyd_iso(ts.tv_sec, ts.tv_nsec / 1000000, created, sizeof(created));
	manifest = bk_manifest(db, cfg, created, reason, pass != NULL ?
	    "passphrase" : "master");

	memset(&w, 0, sizeof(w));
	w.err = err;
	w.errsz = errsz;
	err[0] = '\0';
	w.first = 1;
	w.buf = bk_sec->wbuf;
	snprintf(tmp, sizeof(tmp), "%s/.%s", KEYD_BACKUP_DIR, name);
	if ((w.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		rc = bk_fail(&w, "cannot create the backup: %s",
		    strerror(errno));
	else {
		rc = bk_seal_start(&w, pass, ts.tv_sec);
		if (rc == 0)
			rc = bk_write(&w, db, cfg, cimg, csize, manifest);
		if (rc == 0 && fsync(w.fd) == -1)
			rc = bk_fail(&w, "cannot write the backup: %s",
			    strerror(errno));
		if (close(w.fd) == -1 && rc == 0)
			rc = bk_fail(&w, "cannot write the backup: %s",
			    strerror(errno));
		snprintf(newest, sizeof(newest), "%s/%s", KEYD_BACKUP_DIR,
		    name);
		if (rc == 0 && rename(tmp, newest) == -1)
			rc = bk_fail(&w, "cannot write the backup: %s",
			    strerror(errno));
		if (rc == -1)
			unlink(tmp);
	}
	sqlite3_close(cfg);
	sqlite3_free(cimg);
	json_object_put(manifest);
	sodium_memzero(&w.st, sizeof(w.st));
	if (rc == -1)
		return -1;
	(void)fileio_sync_dir(KEYD_BACKUP_DIR);
	log_info("backup %s made (%s)", name, reason);
	bk_prune();
	*res = json_object_new_object();
	json_object_object_add(*res, "file", json_object_new_string(name));
	json_object_object_add(*res, "created",
	    json_object_new_string(created));
	json_object_object_add(*res, "reason", json_object_new_string(reason));
	json_object_object_add(*res, "kind", json_object_new_string(
	    pass != NULL ? "passphrase" : "master"));
	return 0;
}

/* A backup to read: the admin's descriptor, or one of backups/. */
static int
bk_open(int fd, const char *name, char *err, size_t errsz)
{
	char	 path[PATH_MAX];

	if (fd != -1)
		return fd;
	if (name == NULL || !bk_name_ok(name)) {
		snprintf(err, errsz, "no such backup: name one flm backup list "
		    "shows, or a file");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", KEYD_BACKUP_DIR, name);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		snprintf(err, errsz, errno == ENOENT ? "no such backup: %s "
		    "(flm backup list shows them)" : "backup %s: %s", name,
		    strerror(errno));
	return fd;
}

/* A reader of the admin's descriptor or of backups/NAME, errors into
 * err: 0, or -1 with err set. */
static int
bk_reader_open(struct bk_io *r, int fd, const char *name, char *err,
    size_t errsz)
{
	memset(r, 0, sizeof(*r));
	r->err = err;
	r->errsz = errsz;
	err[0] = '\0';
	r->buf = bk_sec->rbuf;
	if ((r->fd = bk_open(fd, name, err, errsz)) == -1)
		return -1;
	return 0;
}

/* Done reading: the backups/ file closed (the admin's descriptor is
 * the caller's), what passed in clear wiped. */
static void
bk_reader_close(struct bk_io *r, int fd)
{
	if (r->fd != -1 && r->fd != fd)
		close(r->fd);
	r->fd = -1;
	sodium_memzero(bk_sec->rbuf, sizeof(bk_sec->rbuf));
	sodium_memzero(&r->st, sizeof(r->st));
}

/* The header read and checked, the stream opened: 0, or -1. */
static int
bk_unseal_start(struct bk_io *r, const char *pass)
{
	unsigned char	*key = bk_sec->rkey;
	int		 rc;

	if (bk_read_all(r->fd, r->hdr, BK_HDR_LEN) != BK_HDR_LEN ||
	    memcmp(r->hdr, BK_MAGIC, BK_MAGIC_LEN) != 0)
		return bk_fail(r, "not an FLM backup (no FLM-BACKUP-1 "
		    "header)");
	if ((rc = bk_key(r->hdr, pass, key, r->err, r->errsz)) == 0 &&
	    crypto_secretstream_xchacha20poly1305_init_pull(&r->st,
	    r->hdr + BK_HDR_LEN - BK_SS_HDR, key) != 0)
		rc = bk_fail(r, "the backup is malformed: its stream header "
		    "is invalid");
	sodium_memzero(key, KEYD_MASTER_LEN);
	r->first = 1;
	return rc;
}

/* A record's type and length. */
static int
bk_next(struct bk_io *r, uint8_t *type, uint64_t *len)
{
	uint8_t	 h[9];

	if (bk_get(r, h, sizeof(h)) == -1)
		return -1;
	*type = h[0];
	*len = get_le64(h + 1);
	return 0;
}

static struct json_object *
bk_read_manifest(struct bk_io *r)
{
	struct json_object	*m;
	uint64_t		 len;
	uint8_t			 type;
	char			*buf;

	if (bk_next(r, &type, &len) == -1)
		return NULL;
	if (type != BK_MANIFEST || len == 0 || len > BK_MANIFEST_MAX) {
		bk_fail(r, "the backup is malformed: no manifest first");
		return NULL;
	}
	if ((buf = calloc(1, (size_t)len + 1)) == NULL)
		fatal("%s", __func__);
	if (bk_get(r, buf, (size_t)len) == -1) {
		free(buf);
		return NULL;
	}
	m = json_tokener_parse(buf);
	free(buf);
	if (m == NULL || !json_object_is_type(m, json_type_object)) {
		json_object_put(m);
		bk_fail(r, "the backup is malformed: its manifest is not a "
		    "JSON object");
		return NULL;
	}
	return m;
}

/* len bytes of the stream into a new file path. */
static int
bk_stage_file(struct bk_io *r, const char *path, uint64_t len)
{
	uint8_t	 buf[BK_CHUNK];
	size_t	 k;
	int	 fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return bk_fail(r, "cannot stage the restore: %s",
		    strerror(errno));
	while (rc == 0 && len > 0) {
		k = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		if ((rc = bk_get(r, buf, k)) == 0 &&
		    (rc = fileio_write_all(fd, buf, k)) == -1)
			bk_fail(r, "cannot stage the restore: %s",
			    strerror(errno));
		len -= k;
	}
	sodium_memzero(buf, sizeof(buf));
	if (rc == 0 && fsync(fd) == -1)
		rc = bk_fail(r, "cannot stage the restore: %s",
		    strerror(errno));
	close(fd);
	return rc;
}

/* Every staged file gone: a restore abandoned or never committed. */
static void
bk_discard(const char *dir, int older_only)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, BK_PREFIX, sizeof(BK_PREFIX) - 1) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (older_only && (lstat(path, &st) == -1 ||
		    time(NULL) - st.st_mtime < BK_STALE_SECS))
			continue;
		bk_shred(path);
	}
	closedir(d);
}

/* A staged database: whole, and of a schema this keyd knows. */
static int
bk_check_db(struct bk_io *r, const char *path, int newest)
{
	sqlite3		*h;
	sqlite3_stmt	*st;
	int		 ok = 0, v;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && db_harden(h) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &st, NULL) ==
	    SQLITE_OK) {
		ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)
		    sqlite3_column_text(st, 0), "ok") == 0;
		sqlite3_finalize(st);
	}
	v = ok ? bk_schema_version(h) : -1;
	sqlite3_close(h);
	if (!ok)
		return bk_fail(r, "the backup's %s is corrupt", path +
		    sizeof(BK_PREFIX) - 1);
	if (v < 1 || v > newest)
		return bk_fail(r, "the backup's %s has a schema this FLM does "
		    "not know (made by a newer one?)", path +
		    sizeof(BK_PREFIX) - 1);
	return 0;
}

/* The records after the manifest, staged; *master set if it has one. */
static int
bk_stage_all(struct bk_io *r, unsigned char *master, int *has_master)
{
	uint64_t	 len;
	uint8_t		 type, nl[2];
	char		 name[256], path[300];
	int		 sec = 0, cfg = 0;

	for (;;) {
		if (bk_next(r, &type, &len) == -1)
			return -1;
		switch (type) {
		case BK_END:
			if (len != 0)
				return bk_fail(r, "the backup is malformed: "
				    "its end record has a length");
			if (!sec || !cfg)
				return bk_fail(r, "the backup is malformed: "
				    "records missing (no %s)", !sec ?
				    "security.db" : "config.db");
			/* Nothing more: the FINAL tag ends the file. */
			if (r->off == r->n && !r->final && bk_fill(r) == -1)
				return -1;
			if (r->off != r->n || !r->final)
				return bk_fail(r, "the backup is malformed: "
				    "records after its end");
			return 0;
		case BK_SECURITY:
		case BK_CONFIG:
			if ((type == BK_SECURITY ? sec++ : cfg++) != 0)
				return bk_fail(r, "the backup is malformed: a "
				    "database twice");
			if (bk_stage_file(r, type == BK_SECURITY ? BK_PREFIX
			    "security.db" : BK_PREFIX "config.db", len) == -1)
				return -1;
			break;
		case BK_MASTER:
			if (len != KEYD_MASTER_LEN || *has_master)
				return bk_fail(r, "the backup is malformed: a "
				    "master key where none belongs");
			if (bk_get(r, master, KEYD_MASTER_LEN) == -1)
				return -1;
			*has_master = 1;
			break;
		case BK_ARCHIVE:
			if (len < 2 || bk_get(r, nl, 2) == -1 || nl[1] != 0 ||
			    nl[0] == 0 || len < 2U + nl[0] ||
			    bk_get(r, name, nl[0]) == -1)
				return bk_fail(r, "the backup is malformed: an "
				    "archive without a name");
			name[nl[0]] = '\0';
			if (strncmp(name, "audit-archive-", 14) != 0 ||
			    strchr(name, '/') != NULL)
				return bk_fail(r, "the backup is malformed: an "
				    "archive named %s", name);
			snprintf(path, sizeof(path), BK_PREFIX "%s", name);
			if (bk_stage_file(r, path, len - 2 - nl[0]) == -1)
				return -1;
			break;
		default:
			return bk_fail(r, "the backup is malformed: unknown "
			    "record");
		}
	}
}

/* The restored master key, beside the live one until committed. */
static int
bk_stage_master(struct bk_io *r, const unsigned char *master)
{
	char	 hex[KEYD_MASTER_LEN * 2 + 2];
	int	 fd, ok;

	sodium_bin2hex(hex, sizeof(hex), master, KEYD_MASTER_LEN);
	hex[KEYD_MASTER_LEN * 2] = '\n';
	if ((fd = open(BK_PREFIX KEYD_MASTER_FILE, O_WRONLY | O_CREAT |
	    O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		sodium_memzero(hex, sizeof(hex));
		return bk_fail(r, "cannot stage the master key: %s",
		    strerror(errno));
	}
	ok = fileio_write_all(fd, hex, KEYD_MASTER_LEN * 2 + 1) == 0 &&
	    fsync(fd) == 0;
	close(fd);
	sodium_memzero(hex, sizeof(hex));
	return ok ? 0 : bk_fail(r, "cannot stage the master key: %s",
	    strerror(errno));
}

/* The anchor the restored audit trail starts with. */
static int
bk_stage_anchor(struct bk_io *r, const unsigned char *master, int other)
{
	sqlite3		*h;
	unsigned char	*ak = bk_sec->ak;
	uint8_t		 link[KEYD_CHAIN_LEN];
	int64_t		 last = 0;
	int		 rc;

	if (sqlite3_open_v2(BK_PREFIX "security.db", &h, SQLITE_OPEN_READONLY,
	    NULL) == SQLITE_OK && db_harden(h) == SQLITE_OK)
		last = bk_audit_last(h, link);
	else
		memset(link, 0, sizeof(link));
	sqlite3_close(h);
	if (other)
		keyd_master_audit_key(master, ak);
	else
		memcpy(ak, keyd_audit_key(), KEYD_MASTER_LEN);
	rc = keyd_anchor_stage(BK_PREFIX "audit.anchor", last, link,
	    (int64_t)get_le64(r->hdr + 24), ak);
	sodium_memzero(ak, KEYD_MASTER_LEN);
	return rc == 0 ? 0 : bk_fail(r, "cannot stage the audit anchor: %s",
	    strerror(errno));
}

/*
 * flm backup restore: the backup read whole and checked, its files
 * staged, the live state kept as one more backup, and flmd handed its
 * config.db (*cfgfd); flmd commits (keyd_backup_finish).
 */
int
keyd_backup_restore(struct db *db, int fd, const char *name,
    const char *pass, struct json_object **res, int *cfgfd, char *err,
    size_t errsz)
{
	struct bk_io		 r;
	struct json_object	*m = NULL, *kept = NULL, *v;
	unsigned char		*master = bk_sec->master;
	int			 rc = -1, has_master = 0, other = 0, made;

	*cfgfd = -1;
	if (bk_reader_open(&r, fd, name, err, errsz) == -1)
		return -1;
	bk_discard(".", 0);
	if (bk_unseal_start(&r, pass) == -1 ||
	    (m = bk_read_manifest(&r)) == NULL ||
	    bk_stage_all(&r, master, &has_master) == -1 ||
	    bk_check_db(&r, BK_PREFIX "security.db",
	    security_migrations[security_migrations_count - 1].version) == -1 ||
	    bk_check_db(&r, BK_PREFIX "config.db",
	    config_migrations[config_migrations_count - 1].version) == -1)
		goto out;
	other = has_master && !keyd_master_is(master);
	if (other && !keyd_master_replaceable()) {
		snprintf(err, errsz, "this backup was made under another master "
		    "key, and keyd's comes from %s, which keyd cannot replace: "
		    "see flm-keyd(8), RECOVERY", keyd_master_source());
		goto out;
	}
	if ((other && bk_stage_master(&r, master) == -1) ||
	    bk_stage_anchor(&r, master, other) == -1)
		goto out;
	/* The state replaced stays as one more backup, which the key put
	 * in place must open. */
	bk_seal_for = other ? master : NULL;
	bk_reading = fd == -1 ? name : NULL;
	made = keyd_backup_create(db, "pre-restore", NULL, 0, &kept, err,
	    errsz);
	bk_seal_for = NULL;
	bk_reading = NULL;
	bk_pre_other[0] = '\0';
	if (made == 0 && other)
		snprintf(bk_pre_other, sizeof(bk_pre_other), "%s/%s",
		    KEYD_BACKUP_DIR, json_object_get_string(
		    json_object_object_get(kept, "file")));
	if (made == -1) {
		char	 why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errsz, "cannot keep the current state as a "
		    "backup (%s); nothing was restored", why);
		goto out;
	}
	if ((*cfgfd = open(BK_PREFIX "config.db", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		bk_fail(&r, "cannot hand config.db to flmd: %s",
		    strerror(errno));
		goto out;
	}
	unlink(BK_PREFIX "config.db");
	*res = json_object_new_object();
	if (json_object_object_get_ex(m, "created", &v))
		json_object_object_add(*res, "created", json_object_get(v));
	if (json_object_object_get_ex(m, "reason", &v))
		json_object_object_add(*res, "reason", json_object_get(v));
	if (json_object_object_get_ex(m, "state", &v))
		json_object_object_add(*res, "state", json_object_get(v));
	json_object_object_add(*res, "kept", json_object_get(
	    json_object_object_get(kept, "file")));
	json_object_object_add(*res, "master_key", json_object_new_string(
	    other ? "restored" : "unchanged"));
	log_info("backup of %s staged for restore",
	    json_object_get_string(json_object_object_get(m, "created")));
	rc = 0;
out:
	if (rc == -1)
		bk_discard(".", 0);
	bk_reader_close(&r, fd);
	sodium_memzero(master, KEYD_MASTER_LEN);
	json_object_put(m);
	json_object_put(kept);
	return rc;
}

/*
 * flmd did not commit the restore staged last (its copy of config.db or
 * its marker failed): the staged files go now, the master key's copy
 * overwritten first, rather than at the next restore or a start an
 * hour on.
 */
void
keyd_backup_abort(void)
{
	bk_discard(".", 0);
	log_info("restore not committed by flmd: its staged files removed");
	/* Sealed for a master key keyd does not get: no one could open it. */
	if (bk_pre_other[0] != '\0') {
		bk_shred(bk_pre_other);
		log_info("%s removed: it was sealed for the master key of the "
		    "restore not committed", bk_pre_other);
		bk_pre_other[0] = '\0';
	}
}

/*
 * flm check: the state summary of a backup (its manifest), or with no
 * backup, of the live security.db and the proxies flmd gives.
 */
int
keyd_backup_state(struct db *db, int fd, const char *name, const char *pass,
    struct json_object *proxies, struct json_object **res, char *err,
    size_t errsz)
{
	struct bk_io		 r;
	struct json_object	*m, *v;

	if (fd == -1 && name == NULL) {
		if (db->h == NULL) {
			snprintf(err, errsz, "security.db is not open: %s",
			    db->safe_reason);
			return -1;
		}
		*res = bk_state(db->h, NULL, proxies);
		return 0;
	}
	if (bk_reader_open(&r, fd, name, err, errsz) == -1)
		return -1;
	m = bk_unseal_start(&r, pass) == -1 ? NULL : bk_read_manifest(&r);
	bk_reader_close(&r, fd);
	if (m == NULL)
		return -1;
	*res = json_object_object_get_ex(m, "state", &v) ?
	    json_object_get(v) : json_object_new_object();
	json_object_put(m);
	return 0;
}

/* flm backup list: newest first, with what the headers say. */
int
keyd_backup_list(struct json_object **res, char *err, size_t errsz)
{
	struct json_object	*o;
	struct stat		 st;
	uint8_t			 hdr[BK_HDR_LEN];
	char			**v, path[PATH_MAX], when[40];
	const char		*reason;
	size_t			 n, i;
	int			 fd;

	(void)err;
	(void)errsz;
	v = bk_names(&n);
	*res = json_object_new_array();
	for (i = n; i > 0; i--) {
		snprintf(path, sizeof(path), "%s/%s", KEYD_BACKUP_DIR,
		    v[i - 1]);
		if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if (fstat(fd, &st) == -1 || bk_read_all(fd, hdr, BK_HDR_LEN) !=
		    BK_HDR_LEN || memcmp(hdr, BK_MAGIC, BK_MAGIC_LEN) != 0) {
			close(fd);
			continue;
		}
		close(fd);
		o = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(
		    v[i - 1]));
		keyd_iso((time_t)get_le64(hdr + 24), 0, when, sizeof(when));
		json_object_object_add(o, "created",
		    json_object_new_string(when));
		/* flm-TIME-REASON.flmbak */
		reason = strchr(v[i - 1] + 4, '-');
		json_object_object_add(o, "reason", json_object_new_string_len(
		    reason != NULL ? reason + 1 : "", reason != NULL ?
		    (int)(strlen(reason + 1) - (sizeof(BK_SUFFIX) - 1)) : 0));
		json_object_object_add(o, "kind", json_object_new_string(
		    hdr[16] == BK_KIND_PASS ? "passphrase" : "master"));
		json_object_object_add(o, "bytes",
		    json_object_new_int64((int64_t)st.st_size));
		json_object_array_add(*res, o);
	}
	bk_names_free(v, n);
	return 0;
}

/*
 * At keyd's start, before the master key file is read or security.db
 * opened: with flmd's marker, the staged files renamed into place (each
 * rename once: a crash between them is finished by the next start);
 * without it, staged files left from an abandoned restore removed.
 * Returns whether a restore was finished.
 */
int
keyd_backup_finish(const char *dir, const char *marker)
{
	struct dirent	*de;
	DIR		*d;
	char		 from[PATH_MAX], to[PATH_MAX], **v = NULL, **nv;
	size_t		 n = 0, i;

	if (access(marker, F_OK) == -1) {
		bk_discard(dir, 1);
		return 0;
	}
	/* Named first, renamed after: never while the directory is read. */
	if ((d = opendir(dir)) == NULL)
		fatal("%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, BK_PREFIX, sizeof(BK_PREFIX) - 1) != 0 ||
		    strcmp(de->d_name, BK_PREFIX "config.db") == 0)
			continue;
		if ((nv = reallocarray(v, n + 1, sizeof(*v))) == NULL ||
		    (nv[n] = strdup(de->d_name)) == NULL)
			fatal("%s", __func__);
		v = nv;
		n++;
	}
	closedir(d);
	for (i = 0; i < n; i++) {
		const char	*live = v[i] + sizeof(BK_PREFIX) - 1;

		if (strcmp(live, "security.db") == 0) {
			/* The old database's journal must not meet the new. */
			snprintf(to, sizeof(to), "%s/security.db-wal", dir);
			if (unlink(to) == -1 && errno != ENOENT)
				fatal("%s", to);
			snprintf(to, sizeof(to), "%s/security.db-shm", dir);
			if (unlink(to) == -1 && errno != ENOENT)
				fatal("%s", to);
		}
		snprintf(from, sizeof(from), "%s/%s", dir, v[i]);
		snprintf(to, sizeof(to), "%s/%s", dir, live);
		if (rename(from, to) == -1)
			fatal("restore: rename %s", from);
	}
	bk_names_free(v, n);
	(void)fileio_sync_dir(dir);
	log_info("restore finished: %zu file%s put in place", n,
	    n == 1 ? "" : "s");
	return 1;
}

/* One backup sealed under oldkey, sealed again under the current key:
 * 1 done, 0 not one of oldkey's, -1 on error. */
static int
bk_rekey_one(const char *dir, const char *name, const unsigned char *oldkey,
    const unsigned char *newkey)
{
	struct bk_io	 r, w;
	uint8_t		 id[16];
	char		 path[PATH_MAX], tmp[PATH_MAX], err[256] = "";
	int		 rc = -1;

	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	r.err = w.err = err;
	r.errsz = w.errsz = sizeof(err);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s", dir, name);
	if ((r.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	bk_keyid(oldkey, id);
	if (bk_read_all(r.fd, r.hdr, BK_HDR_LEN) != BK_HDR_LEN ||
	    memcmp(r.hdr, BK_MAGIC, BK_MAGIC_LEN) != 0 ||
	    r.hdr[16] != BK_KIND_MASTER ||
	    sodium_memcmp(r.hdr + 32, id, sizeof(id)) != 0) {
		close(r.fd);
		return 0;
	}
	memcpy(w.hdr, r.hdr, BK_HDR_LEN);
	bk_keyid(newkey, w.hdr + 32);
	crypto_secretstream_xchacha20poly1305_init_push(&w.st,
	    w.hdr + BK_HDR_LEN - BK_SS_HDR, newkey);
	if (crypto_secretstream_xchacha20poly1305_init_pull(&r.st,
	    r.hdr + BK_HDR_LEN - BK_SS_HDR, oldkey) != 0 ||
	    (w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		close(r.fd);
		return -1;
	}
	r.buf = bk_sec->rbuf;
	w.buf = bk_sec->wbuf;
	r.first = w.first = 1;
	if (fileio_write_all(w.fd, w.hdr, BK_HDR_LEN) == 0) {
		/* Chunk for chunk: the same records, the same FINAL. */
		while (bk_fill(&r) == 0) {
			memcpy(w.buf, r.buf, r.n);
			w.n = r.n;
			if (bk_flush(&w, r.final ?
			    crypto_secretstream_xchacha20poly1305_TAG_FINAL :
			    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) ==
			    -1)
				break;
			if (r.final) {
				rc = 0;
				break;
			}
		}
	}
	if (rc == 0 && fsync(w.fd) == -1)
		rc = -1;
	close(w.fd);
	close(r.fd);
	sodium_memzero(bk_sec->rbuf, sizeof(bk_sec->rbuf));
	sodium_memzero(bk_sec->wbuf, sizeof(bk_sec->wbuf));
	sodium_memzero(&r.st, sizeof(r.st));
	sodium_memzero(&w.st, sizeof(w.st));
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -1;
	if (rc == -1) {
		unlink(tmp);
		log_warnx("backup %s: not sealed again under the new master "
		    "key (%s); it opens only with the old one", name,
		    err[0] ? err : strerror(errno));
		return -1;
	}
	return 1;
}

/*
 * A master-key rotation, once committed and before the old key file is
 * replaced: the backups in dir sealed with the old backup key sealed
 * again with the new one, so the generations kept stay usable.  Those
 * already done are skipped: a crash in the middle is finished by the
 * next start (keyd_rotate_finish).  How many were.
 */
int
keyd_backup_rekey(const char *dir, const unsigned char *oldkey,
    const unsigned char *newkey)
{
	char	**v;
	size_t	 n, i;
	int	 done = 0;

	v = bk_names_in(dir, &n);
	for (i = 0; i < n; i++)
		if (bk_rekey_one(dir, v[i], oldkey, newkey) == 1)
			done++;
	bk_names_free(v, n);
	(void)fileio_sync_dir(dir);
	return done;
}
