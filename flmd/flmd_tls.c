/*
 * What a TLS handle's certificate names, as flmd decides it: the host's
 * DNS names and the addresses the handle is reached at.  keyd makes
 * the certificate; flmd only says what it must cover, and checks the
 * description keyd sends back before it shows it or keeps it.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"
#include "netaddr.h"

#define TLS_NAME_MAX	253
#define TLS_MAX_NAMES	16
#define TLS_MAX_ADDRS	64
#define TLS_MAX_SANS	(TLS_MAX_NAMES + TLS_MAX_ADDRS)
#define TLS_DN_MAX	256
#define TLS_TIME_MAX	32

/* 1-253 of [a-z0-9.-]: the contract's DNS name. */
int
tls_name_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len < 1 || len > TLS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-')
			return 0;
	return 1;
}

static int
tls_names_has(struct json_object *arr, const char *s)
{
	size_t	 i;

	for (i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(
		    arr, i)), s) == 0)
			return 1;
	return 0;
}

/* Lower-cased; a name that is not a DNS name is left out, once said. */
static void
tls_names_add(struct json_object *arr, const char *s, size_t len)
{
	char	 n[TLS_NAME_MAX + 1];
	size_t	 i;

	if (len == 0 || len > TLS_NAME_MAX ||
	    json_object_array_length(arr) >= TLS_MAX_NAMES)
		return;
	for (i = 0; i < len; i++)
		n[i] = (char)tolower((unsigned char)s[i]);
	n[len] = '\0';
	if (!tls_name_valid(n, len)) {
		log_warnx("tls: '%s' is not a DNS name; not certified", n);
		return;
	}
	if (!tls_names_has(arr, n))
		json_object_array_add(arr, json_object_new_string(n));
}

/*
 * The host's fully qualified name.  getaddrinfo may ask a name server,
 * so it is asked once per host name and remembered: a renamed host asks
 * again, a host whose resolver is down pays the wait once.
 */
static const char *
tls_fqdn(const char *host)
{
	static char		 asked[TLS_NAME_MAX + 1];
	static char		 fqdn[TLS_NAME_MAX + 1];
	struct addrinfo		 hints, *res;

	if (strcmp(asked, host) == 0)
		return fqdn;
	snprintf(asked, sizeof(asked), "%s", host);
	fqdn[0] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return fqdn;
	if (res->ai_canonname != NULL)
		snprintf(fqdn, sizeof(fqdn), "%s", res->ai_canonname);
	freeaddrinfo(res);
	return fqdn;
}

/*
 * tls.names (a comma list) if set, else the host name and its FQDN;
 * localhost always.  A new array.
 */
struct json_object *
tls_names(void)
{
	struct json_object	*arr = json_object_new_array(), *all, *v;
	char			 host[TLS_NAME_MAX + 1];
	const char		*p, *e, *fq;

	all = config_list("tls.");
	if (json_object_object_get_ex(all, "tls.names", &v)) {
		for (p = json_object_get_string(v); *p != '\0'; p = e) {
			e = p + strcspn(p, ",");
			tls_names_add(arr, p, (size_t)(e - p));
			if (*e == ',')
				e++;
		}
	} else if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		tls_names_add(arr, host, strlen(host));
		fq = tls_fqdn(host);
		tls_names_add(arr, fq, strlen(fq));
	}
	json_object_put(all);
	tls_names_add(arr, "localhost", strlen("localhost"));
	return arr;
}

/* Every address of every interface of family fam (AF_UNSPEC: both). */
static void
tls_addrs_ifaces(struct json_object *arr, int fam)
{
	struct ifaddrs	*ifa, *i;
	char		 s[INET6_ADDRSTRLEN];
	const void	*a;

	if (getifaddrs(&ifa) == -1) {
		log_warn("tls: getifaddrs");
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL ||
		    json_object_array_length(arr) >= TLS_MAX_ADDRS)
			continue;
		if (i->ifa_addr->sa_family == AF_INET &&
		    (fam == AF_UNSPEC || fam == AF_INET))
			a = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6 &&
		    (fam == AF_UNSPEC || fam == AF_INET6))
			a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(i->ifa_addr->sa_family, a, s, sizeof(s)) !=
		    NULL && !tls_names_has(arr, s))
			json_object_array_add(arr, json_object_new_string(s));
	}
	freeifaddrs(ifa);
}

/*
 * The addresses a handle bound to bind is reached at: that address, or
 * for 0.0.0.0 every IPv4 address and for :: every address (a :: socket
 * takes IPv4 too).  NULL: every address, for the CA and client
 * certificates.  A new array, numeric and canonical.
 */
struct json_object *
tls_addrs(const char *bind)
{
	struct json_object	*arr = json_object_new_array();
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 s[INET6_ADDRSTRLEN];
	const void		*a;

	if (bind == NULL || netaddr_parse(bind, 0, &ss, &len) == -1) {
		tls_addrs_ifaces(arr, AF_UNSPEC);
		return arr;
	}
	if (ss.ss_family == AF_INET) {
		a = &((struct sockaddr_in *)&ss)->sin_addr;
		if (((const struct in_addr *)a)->s_addr == htonl(INADDR_ANY)) {
			tls_addrs_ifaces(arr, AF_INET);
			return arr;
		}
	} else {
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)a)) {
			tls_addrs_ifaces(arr, AF_UNSPEC);
			return arr;
		}
	}
	if (inet_ntop(ss.ss_family, a, s, sizeof(s)) != NULL)
		json_object_array_add(arr, json_object_new_string(s));
	return arr;
}

/* {names, addrs} added to a request for keyd. */
void
tls_add_subject(struct json_object *o, const char *bind)
{
	json_object_object_add(o, "names", tls_names());
	json_object_object_add(o, "addrs", tls_addrs(bind));
}

static int
tls_hex_valid(struct json_object *v, size_t min, size_t max)
{
	const char	*s;
	size_t		 i, n;

	if (!json_is_string_max(v, max))
		return 0;
	s = json_object_get_string(v);
	n = strlen(s);
	if (n < min || n != (size_t)json_object_get_string_len(v))
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* "AB:CD:...": 32 upper-case hex pairs. */
static int
tls_sha256_valid(struct json_object *v)
{
	const char	*s;
	size_t		 i;

	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) != 95)
		return 0;
	s = json_object_get_string(v);
	for (i = 0; i < 95; i++)
		if (i % 3 == 2 ? s[i] != ':' : !(isdigit((unsigned char)s[i]) ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

/* A printable string of 1..max bytes, no NUL inside. */
static int
tls_text_valid(struct json_object *v, size_t max)
{
	const char	*s;
	size_t		 i, n;

	if (!json_is_string_max(v, max))
		return 0;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!isprint((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
tls_sans_valid(struct json_object *v)
{
	size_t	 i, n;

	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) > TLS_MAX_SANS)
		return 0;
	for (i = 0; i < n; i++)
		if (!tls_text_valid(json_object_array_get_idx(v, i),
		    TLS_NAME_MAX + 4))
			return 0;
	return 1;
}

/*
 * keyd's CERTINFO, checked member by member before flmd keeps or shows
 * it: keyd is more trusted, but a wrong answer is logged and dropped,
 * never stored.  mode NULL: any TLS mode.
 */
int
tls_certinfo_valid(struct json_object *c, const char *mode)
{
	struct json_object	*v;

	if (!json_object_is_type(c, json_type_object))
		return 0;
	if (!json_object_object_get_ex(c, "id", &v) || !tls_hex_valid(v, 16,
	    16) || !json_object_object_get_ex(c, "mode", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    (strcmp(json_object_get_string(v), "dev-selfsigned") != 0 &&
	    strcmp(json_object_get_string(v), "packaged-ca") != 0 &&
	    strcmp(json_object_get_string(v), "https-acme") != 0) ||
	    (mode != NULL && strcmp(json_object_get_string(v), mode) != 0))
		return 0;
	if (!json_object_object_get_ex(c, "subject", &v) ||
	    !tls_text_valid(v, TLS_DN_MAX) ||
	    !json_object_object_get_ex(c, "issuer", &v) ||
	    !tls_text_valid(v, TLS_DN_MAX) ||
	    !json_object_object_get_ex(c, "not_before", &v) ||
	    !tls_text_valid(v, TLS_TIME_MAX) ||
	    !json_object_object_get_ex(c, "not_after", &v) ||
	    !tls_text_valid(v, TLS_TIME_MAX))
		return 0;
	if (!json_object_object_get_ex(c, "sans", &v) || !tls_sans_valid(v) ||
	    !json_object_object_get_ex(c, "sha256", &v) ||
	    !tls_sha256_valid(v) ||
	    !json_object_object_get_ex(c, "serial", &v) ||
	    !tls_hex_valid(v, 1, 64))
		return 0;
	if (json_object_object_get_ex(c, "renew_at", &v) &&
	    !tls_text_valid(v, TLS_TIME_MAX))
		return 0;
	return 1;
}
