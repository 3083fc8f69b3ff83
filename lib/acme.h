/* ACME names every process checks alike (flmd, keyd, proxyd). */
#ifndef FLM_ACME_H
#define FLM_ACME_H

#include <stddef.h>

#define ACME_URL_MAX	512
#define ACME_EMAIL_MAX	254

int	acme_url_valid(const char *, size_t *);
int	acme_email_valid(const char *);
int	acme_b64url_valid(const char *, size_t);

#endif
