/* ACME names every process checks alike (flmd, keyd, proxyd). */
#ifndef FLM_ACME_H
#define FLM_ACME_H

#include <stddef.h>

#define ACME_URL_MAX	512
#define ACME_EMAIL_MAX	254
/* DNS-01 (flm-config(5) acme.dns_*): the hook flmd's spawner runs. */
#define ACME_HOOK_MAX		255	/* an absolute path */
#define ACME_USER_MAX		32	/* a user name */
#define ACME_DNS_PREFIX		"_acme-challenge."
#define ACME_DNS_NAME_MAX	(16 + 253)
#define ACME_DNS_VALUE_MAX	43	/* base64url of a SHA-256 */
#define ACME_DNS_WAIT_MAX	3600	/* acme.dns_wait, seconds */

int	acme_url_valid(const char *, size_t *);
int	acme_email_valid(const char *);
int	acme_b64url_valid(const char *, size_t);
int	acme_hook_valid(const char *);
int	acme_user_valid(const char *);
int	acme_dns_name_valid(const char *);

#endif
