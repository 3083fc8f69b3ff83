/*
 * bcrypt-hash [PREFIX] < TOKEN: crypt(3) of the first line of standard
 * input with a fresh salt of PREFIX ($2b$ at cost 10 by default, as the
 * legacy gateways of docs/MIGRATION_GUIDE.md made them; $6$ or $1$ for
 * the schemes flm migrate legacy refuses).  For migrate.t: no package
 * of a minimal Debian makes bcrypt hashes.
 */
#include <crypt.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	static struct crypt_data	 cd;
	const char			*prefix = argc > 1 ? argv[1] : "$2b$";
	char				 tok[512], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char			*out;

	if (fgets(tok, sizeof(tok), stdin) == NULL) {
		fprintf(stderr, "bcrypt-hash: no token on standard input\n");
		return 1;
	}
	tok[strcspn(tok, "\r\n")] = '\0';
	if (crypt_gensalt_rn(prefix, prefix[1] == '2' ? 10 : 0, NULL, 0, salt,
	    sizeof(salt)) == NULL) {
		fprintf(stderr, "bcrypt-hash: %s: no such scheme\n", prefix);
		return 1;
	}
	out = crypt_r(tok, salt, &cd);
	if (out == NULL || out[0] == '*') {
		fprintf(stderr, "bcrypt-hash: crypt_r failed\n");
		return 1;
	}
	puts(out);
	return 0;
}
