/*
 * bk-reseal IN OUT N < PASSPHRASE: the passphrase backup IN sealed again
 * into OUT, under the same key and a fresh stream, with its last N
 * records left out (END is the last).  OUT is authentic and ends with
 * its FINAL chunk, but before records it should have: what flm-keyd
 * must refuse as records missing (backup.t).  The format is
 * docs/DB_SCHEMA.md section 6; only what the test needs is checked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define HDR_LEN		104
#define CHUNK		65536
#define SS_HDR		crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ABYTES		crypto_secretstream_xchacha20poly1305_ABYTES
#define KIND_PASS	2
#define MAX_RECORDS	4096

static void __attribute__((noreturn))
die(const char *why)
{
	fprintf(stderr, "bk-reseal: %s\n", why);
	exit(1);
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* IN's plaintext, whole; *len its length. */
static uint8_t *
unseal(FILE *in, uint8_t *hdr, const unsigned char *key, size_t *len)
{
	crypto_secretstream_xchacha20poly1305_state	 st;
	uint8_t			 c[CHUNK + ABYTES], lb[4], *pt = NULL;
	unsigned long long	 mlen;
	unsigned char		 tag = 0;
	size_t			 clen;
	int			 first = 1;

	*len = 0;
	if (crypto_secretstream_xchacha20poly1305_init_pull(&st,
	    hdr + HDR_LEN - SS_HDR, key) != 0)
		die("a bad stream header");
	while (tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		if (fread(lb, 1, 4, in) != 4)
			die("IN is truncated");
		clen = (size_t)lb[0] | (size_t)lb[1] << 8 |
		    (size_t)lb[2] << 16 | (size_t)lb[3] << 24;
		if (clen < ABYTES || clen > sizeof(c) ||
		    fread(c, 1, clen, in) != clen)
			die("IN is malformed");
		if ((pt = realloc(pt, *len + clen)) == NULL)
			die("out of memory");
		if (crypto_secretstream_xchacha20poly1305_pull(&st,
		    pt + *len, &mlen, &tag, c, clen, first ? hdr : NULL,
		    first ? HDR_LEN : 0) != 0)
			die("IN fails authentication: the wrong passphrase?");
		first = 0;
		*len += (size_t)mlen;
	}
	return pt;
}

static void
seal(FILE *out, uint8_t *hdr, const unsigned char *key, const uint8_t *pt,
    size_t len)
{
	crypto_secretstream_xchacha20poly1305_state	 st;
	uint8_t			 c[CHUNK + ABYTES], lb[4];
	unsigned long long	 clen;
	size_t			 off = 0, k;
	int			 first = 1, last;

	crypto_secretstream_xchacha20poly1305_init_push(&st,
	    hdr + HDR_LEN - SS_HDR, key);
	if (fwrite(hdr, 1, HDR_LEN, out) != HDR_LEN)
		die("cannot write OUT");
	do {
		k = len - off < CHUNK ? len - off : CHUNK;
		last = off + k == len;
		crypto_secretstream_xchacha20poly1305_push(&st, c, &clen,
		    pt + off, k, first ? hdr : NULL, first ? HDR_LEN : 0,
		    last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL :
		    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
		lb[0] = (uint8_t)clen;
		lb[1] = (uint8_t)(clen >> 8);
		lb[2] = (uint8_t)(clen >> 16);
		lb[3] = (uint8_t)(clen >> 24);
		if (fwrite(lb, 1, 4, out) != 4 ||
		    fwrite(c, 1, (size_t)clen, out) != (size_t)clen)
			die("cannot write OUT");
		first = 0;
		off += k;
	} while (!last);
}

int
main(int argc, char **argv)
{
	FILE		*in, *out;
	uint8_t		 hdr[HDR_LEN], *pt;
	unsigned char	 key[32];
	char		 pass[512];
	size_t		 len, off, ends[MAX_RECORDS], n = 0, drop;

	if (argc != 4 || sodium_init() < 0)
		die("usage: bk-reseal IN OUT N < PASSPHRASE");
	drop = (size_t)strtoul(argv[3], NULL, 10);
	if (fgets(pass, sizeof(pass), stdin) == NULL)
		die("no passphrase on standard input");
	pass[strcspn(pass, "\r\n")] = '\0';
	if ((in = fopen(argv[1], "rb")) == NULL)
		die("cannot open IN");
	if (fread(hdr, 1, HDR_LEN, in) != HDR_LEN || hdr[16] != KIND_PASS)
		die("IN is not a passphrase backup");
	/* The key of bk_key in flm-keyd/keyd_backup.c. */
	if (crypto_pwhash(key, sizeof(key), pass, strlen(pass), hdr + 48,
	    le64(hdr + 64), (size_t)le64(hdr + 72),
	    crypto_pwhash_ALG_ARGON2ID13) != 0)
		die("not enough memory for Argon2id");
	pt = unseal(in, hdr, key, &len);
	fclose(in);
	/* Records: u8 type, u64 length, the bytes. */
	for (off = 0; off + 9 <= len && n < MAX_RECORDS; n++) {
		off += 9 + (size_t)le64(pt + off + 1);
		ends[n] = off;
	}
	if (off != len || drop == 0 || drop >= n)
		die("N must leave the manifest and drop at least END");
	if ((out = fopen(argv[2], "wb")) == NULL)
		die("cannot create OUT");
	seal(out, hdr, key, pt, ends[n - drop - 1]);
	if (fclose(out) != 0)
		die("cannot write OUT");
	sodium_memzero(key, sizeof(key));
	free(pt);
	return 0;
}
