/* PEM certificate chains, as keyd stores and proxyd serves them. */
#ifndef FLM_PEMCHAIN_H
#define FLM_PEMCHAIN_H

#include <stddef.h>

#include <openssl/x509.h>

STACK_OF(X509)	*pem_chain(const char *, size_t);

#endif
