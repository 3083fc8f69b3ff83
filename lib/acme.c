/*
 * What an ACME URL and contact address may be, as flmd checks the
 * admin's options, keyd what it signs and proxyd what the CA sends.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "acme.h"

/*
 * An https URL of at most ACME_URL_MAX bytes, printable, with no space,
 * quote or backslash (it goes into JSON text as it is).  *originlen, if
 * asked for, covers "https://host[:port]/".
 */
int
acme_url_valid(const char *s, size_t *originlen)
{
	const char	*p, *q;

	if (strlen(s) > ACME_URL_MAX || strncmp(s, "https://", 8) != 0 ||
	    (p = strchr(s + 8, '/')) == NULL || p == s + 8)
		return 0;
	for (q = s; *q != '\0'; q++)
		if (*q <= ' ' || *q >= 0x7f || *q == '"' || *q == '\\')
			return 0;
	if (originlen != NULL)
		*originlen = (size_t)(p - s) + 1;
	return 1;
}

/* 1 to max characters of the base64url alphabet (RFC 4648 §5). */
int
acme_b64url_valid(const char *s, size_t max)
{
	size_t	 n = strlen(s);

	return n > 0 && n <= max && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* local@domain of [A-Za-z0-9.@+_-], at most ACME_EMAIL_MAX bytes. */
int
acme_email_valid(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n == 0 || n > ACME_EMAIL_MAX || strchr(s, '@') == NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(".@+_-", s[i]) == NULL)
			return 0;
	return 1;
}

/* An absolute path of printable bytes, at most ACME_HOOK_MAX. */
int
acme_hook_valid(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n < 2 || n > ACME_HOOK_MAX || s[0] != '/')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return 0;
	return 1;
}

/* A user name as useradd(8) makes them: [a-z_][a-z0-9_-]*, 1-32. */
int
acme_user_valid(const char *s)
{
	size_t	 n = strlen(s);

	return n > 0 && n <= ACME_USER_MAX && (islower((unsigned char)s[0]) ||
	    s[0] == '_') && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789"
	    "_-") == n;
}

/* _acme-challenge.NAME, NAME of [a-z0-9.-], 1-253 bytes. */
int
acme_dns_name_valid(const char *s)
{
	size_t	 p = sizeof(ACME_DNS_PREFIX) - 1, n = strlen(s);

	return n > p && n <= ACME_DNS_NAME_MAX &&
	    strncmp(s, ACME_DNS_PREFIX, p) == 0 && s[p] != '.' &&
	    s[p] != '-' && strspn(s + p, "abcdefghijklmnopqrstuvwxyz"
	    "0123456789.-") == n - p;
}
