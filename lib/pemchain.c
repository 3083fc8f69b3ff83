/* Every certificate of a PEM text: one parser for keyd and proxyd. */
#include "config.h"

#include <limits.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "pemchain.h"

/* The certificates, leaf first; NULL if none parses. */
STACK_OF(X509) *
pem_chain(const char *pem, size_t len)
{
	STACK_OF(X509)	*sk;
	BIO		*b;
	X509		*x;

	if (len > INT_MAX || (sk = sk_X509_new_null()) == NULL)
		return NULL;
	if ((b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		sk_X509_free(sk);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	ERR_clear_error();	/* the end of the PEM reads as an error */
	BIO_free(b);
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}
