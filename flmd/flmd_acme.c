/*
 * https-acme as flmd sees it: the options of flm proxy start checked
 * and completed (the directory, the challenge, the names), the CA's
 * host resolved here (proxyd resolves nothing), and the progress
 * proxyd reports checked before the admin's terminal shows it.  The
 * protocol is proxyd's (proxyd_acme.c), the keys keyd's (keyd_acme.c).
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "acme.h"
#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"

#define ACME_LE		"https://acme-v02.api.letsencrypt.org/directory"
#define ACME_LE_STAGING	"https://acme-staging-v02.api.letsencrypt.org/" \
	"directory"
#define ACME_MAX_NAMES	16
#define ACME_CA_MAX	(64 * 1024)
#define ACME_HTTP_PORT	80
#define ACME_DETAIL_MAX	1024

static const char *const acme_challenges[] = {
	"http-01", "tls-alpn-01", "dns-01", NULL
};

/*
 * flm proxy start's "acme" member (or a saved profile's), checked, into
 * a new object: {domains, email?, directory, challenge, ca?, http_port}.
 * NULL and err if it is wrong.
 */
struct json_object *
acme_opts(struct json_object *req, char *err, size_t errsz)
{
	struct json_object	*a, *v, *out, *doms;
	const char		*s, *dir = ACME_LE;
	char			 name[254], hook[ACME_HOOK_MAX + 1];
	size_t			 i, n, j;
	int			 k;

	if (!json_object_object_get_ex(req, "acme", &a) ||
	    !json_object_is_type(a, json_type_object) ||
	    !json_object_object_get_ex(a, "domains", &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0 || n > ACME_MAX_NAMES) {
		snprintf(err, errsz, "--mode https-acme needs --domain NAME "
		    "(1 to %d of them)", ACME_MAX_NAMES);
		return NULL;
	}
	out = json_object_new_object();
	doms = json_object_new_array();
	json_object_object_add(out, "domains", doms);
	for (i = 0; i < n; i++) {
		s = json_object_get_string(json_object_array_get_idx(v, i));
		if (s == NULL || strlen(s) >= sizeof(name))
			goto badname;
		for (j = 0; s[j] != '\0'; j++)
			name[j] = (char)tolower((unsigned char)s[j]);
		name[j] = '\0';
		/* A public DNS name: dotted, no trailing dot, no wildcard
		 * (FLM serves each name it orders). */
		if (!tls_name_valid(name, j) || strchr(name, '.') == NULL ||
		    name[0] == '.' || name[0] == '-' || name[j - 1] == '.')
			goto badname;
		json_object_array_add(doms, json_object_new_string(name));
	}
	if (json_object_object_get(a, "email") != NULL) {
		if ((s = json_get_string(a, "email", ACME_EMAIL_MAX)) == NULL ||
		    !acme_email_valid(s)) {
			snprintf(err, errsz, "--email: expected an e-mail "
			    "address");
			goto fail;
		}
		json_object_object_add(out, "email", json_object_new_string(s));
	}
	if (json_object_object_get_ex(a, "staging", &v) &&
	    json_object_get_boolean(v))
		dir = ACME_LE_STAGING;
	if (json_object_object_get(a, "directory") != NULL) {
		if ((s = json_get_string(a, "directory", ACME_URL_MAX)) == NULL ||
		    !acme_url_valid(s, NULL)) {
			snprintf(err, errsz, "--acme-directory: expected an "
			    "https URL of at most %d bytes", ACME_URL_MAX);
			goto fail;
		}
		dir = s;
	}
	json_object_object_add(out, "directory", json_object_new_string(dir));
	s = "http-01";
	if (json_object_object_get(a, "challenge") != NULL &&
	    (s = json_get_string(a, "challenge", 16)) == NULL)
		s = "";
	for (k = 0; acme_challenges[k] != NULL; k++)
		if (strcmp(s, acme_challenges[k]) == 0)
			break;
	if (acme_challenges[k] == NULL) {
		snprintf(err, errsz, "--challenge %s: expected http-01, "
		    "tls-alpn-01 or dns-01", s);
		goto fail;
	}
	if (strcmp(s, "dns-01") == 0 && !acme_hook_valid(config_value(
	    "acme.dns_hook", "", hook, sizeof(hook)))) {
		snprintf(err, errsz, "--challenge dns-01 needs a hook that "
		    "publishes the TXT records: flm config set acme.dns_hook "
		    "/path/to/hook (flm-config(5))");
		goto fail;
	}
	json_object_object_add(out, "challenge", json_object_new_string(s));
	if (json_object_object_get(a, "ca") != NULL) {
		if ((s = json_get_string(a, "ca", ACME_CA_MAX)) == NULL ||
		    strstr(s, "-----BEGIN CERTIFICATE-----") == NULL) {
			snprintf(err, errsz, "--acme-ca: expected PEM "
			    "certificates, at most %d bytes", ACME_CA_MAX);
			goto fail;
		}
		json_object_object_add(out, "ca", json_object_new_string(s));
	}
	k = ACME_HTTP_PORT;
	if (json_object_object_get_ex(a, "http_port", &v)) {
		if (!json_is_int_range(v, 1, 65535)) {
			snprintf(err, errsz, "acme.http_port: expected 1-65535");
			goto fail;
		}
		k = json_object_get_int(v);
	}
	json_object_object_add(out, "http_port", json_object_new_int(k));
	return out;
badname:
	snprintf(err, errsz, "--domain: expected public DNS names of "
	    "[a-z0-9.-] with at least one dot, no wildcard");
fail:
	json_object_put(out);
	return NULL;
}

/*
 * The "acme" member of keyd's ensure: what keyd and proxyd need, the
 * CA's host resolved ("HOST:PORT:ADDR" for curl) if it is a name.
 */
struct json_object *
acme_ensure_args(struct json_object *opts)
{
	struct json_object	*o = json_object_new_object(), *v, *eg;
	struct addrinfo		 hints, *res;
	const char		*dir, *h, *e, *portp;
	char			 host[256], addr[INET6_ADDRSTRLEN], r[400];
	char			 port[8] = "443";
	size_t			 len;

	json_object_object_foreach(opts, k, val)
		if (strcmp(k, "domains") != 0 && strcmp(k, "http_port") != 0)
			json_object_object_add(o, k, json_object_get(val));
	if (!json_object_object_get_ex(opts, "directory", &v))
		return o;
	/* Through SOCKS the server resolves the CA's name: a lookup here
	 * would leak it. */
	if ((eg = config_egress(NULL)) != NULL) {
		json_object_put(eg);
		return o;
	}
	dir = json_object_get_string(v);
	h = dir + 8;
	e = h + strcspn(h, "/");
	if (*h == '[')
		return o;	/* an IPv6 literal: nothing to resolve */
	portp = memchr(h, ':', (size_t)(e - h));
	len = (size_t)((portp ? portp : e) - h);
	if (len == 0 || len >= sizeof(host))
		return o;
	memcpy(host, h, len);
	host[len] = '\0';
	if (portp != NULL && (size_t)(e - portp - 1) < sizeof(port))
		snprintf(port, sizeof(port), "%.*s", (int)(e - portp - 1),
		    portp + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) == 0) {
		freeaddrinfo(res);
		return o;	/* numeric already */
	}
	hints.ai_flags = 0;
	if (getaddrinfo(host, NULL, &hints, &res) != 0) {
		log_warnx("ACME: cannot resolve %s; the order will fail",
		    host);
		return o;
	}
	if (getnameinfo(res->ai_addr, res->ai_addrlen, addr, sizeof(addr),
	    NULL, 0, NI_NUMERICHOST) == 0) {
		snprintf(r, sizeof(r), "%s:%s:%s%s%s", host, port,
		    res->ai_family == AF_INET6 ? "[" : "", addr,
		    res->ai_family == AF_INET6 ? "]" : "");
		json_object_object_add(o, "resolve", json_object_new_string(r));
	}
	freeaddrinfo(res);
	return o;
}

/* proxyd's IMSG_ACME_PROGRESS: {handle, step, ms, detail?}, bounded. */
int
acme_progress_valid(struct json_object *o)
{
	static const char *const steps[] = { "directory", "account", "order",
	    "challenge", "finalize", "certificate", "failed", NULL };
	struct json_object	*v;
	const char		*s;
	int			 i;

	if (!json_object_is_type(o, json_type_object) ||
	    json_object_object_length(o) > 4 ||
	    (s = json_get_string(o, "handle", 79)) == NULL ||
	    (s = json_get_string(o, "step", 16)) == NULL ||
	    !json_object_object_get_ex(o, "ms", &v) ||
	    !json_is_int_range(v, 0, 86400000))
		return 0;
	for (i = 0; steps[i] != NULL; i++)
		if (strcmp(s, steps[i]) == 0)
			break;
	if (steps[i] == NULL)
		return 0;
	if (json_object_object_get(o, "detail") != NULL &&
	    (s = json_get_string(o, "detail", ACME_DETAIL_MAX)) == NULL)
		return 0;
	/* Nothing else: four members at most, these. */
	json_object_object_foreach(o, k, val) {
		(void)val;
		if (strcmp(k, "handle") != 0 && strcmp(k, "step") != 0 &&
		    strcmp(k, "ms") != 0 && strcmp(k, "detail") != 0)
			return 0;
	}
	return 1;
}
