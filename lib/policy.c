/*
 * The security policy: one JSON document, checked field by field so
 * that an admin's mistake is refused with the name of the field at
 * fault, never half applied.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "jsonbuf.h"
#include "policy.h"

#define RATE_MAX_REQUESTS	1000000
#define RATE_MAX_TOKENS		1000000000
#define CORS_MAX_AGE		86400

struct pctx {
	char	*err;
	size_t	 errsz;
};

static int
perr(struct pctx *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct pctx *p, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

void
policy_defaults(struct policy *pol)
{
	/* What the openai clients send across origins. */
	static const char *const headers[] = { "authorization",
	    "content-type" };
	size_t	 i;

	memset(pol, 0, sizeof(*pol));
	pol->methods = POLICY_M_GET | POLICY_M_POST;
	pol->max_age = 600;
	pol->auth_fail_max = 20;
	pol->auth_fail_window = 60;
	/* Out of memory: no header allowed, which is only stricter. */
	if ((pol->headers = calloc(2, sizeof(*pol->headers))) == NULL)
		return;
	for (i = 0; i < 2; i++)
		snprintf(pol->headers[pol->nheaders++], POLICY_HEADER_MAX, "%s",
		    headers[i]);
}

void
policy_free(struct policy *pol)
{
	free(pol->allow);
	free(pol->origins);
	free(pol->headers);
	memset(pol, 0, sizeof(*pol));
}

/* Only the names in known[]: a typo must not pass as a default. */
static int
check_fields(struct pctx *p, struct json_object *o, const char *where,
    const char *const known[])
{
	size_t	 i;

	if (!json_object_is_type(o, json_type_object))
		return perr(p, "%s: expected an object", where);
	json_object_object_foreach(o, k, v) {
		(void)v;
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return perr(p, "%s%s%s: unknown field", where,
			    *where ? "." : "", k);
	}
	return 0;
}

static int
get_uint(struct pctx *p, struct json_object *o, const char *key,
    const char *where, uint32_t min, uint32_t max, uint32_t *out)
{
	struct json_object	*v;
	int64_t			 n;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < min || n > max)
		return perr(p, "%s.%s: expected an integer %u-%u", where, key,
		    min, max);
	*out = (uint32_t)n;
	return 0;
}

static int
get_array(struct pctx *p, struct json_object *o, const char *key,
    const char *where, size_t max, struct json_object **arr)
{
	*arr = NULL;
	if (!json_object_object_get_ex(o, key, arr))
		return 0;
	if (!json_object_is_type(*arr, json_type_array))
		return perr(p, "%s%s%s: expected an array of strings", where,
		    *where ? "." : "", key);
	if (json_object_array_length(*arr) > max)
		return perr(p, "%s%s%s: %zu entries; at most %zu are allowed",
		    where, *where ? "." : "", key,
		    json_object_array_length(*arr), max);
	return 0;
}

static const char *
array_str(struct pctx *p, struct json_object *arr, size_t i,
    const char *where)
{
	struct json_object	*v = json_object_array_get_idx(arr, i);
	const char		*s;

	if (!json_object_is_type(v, json_type_string)) {
		perr(p, "%s[%zu]: expected a string", where, i);
		return NULL;
	}
	/* "10.0.0.0/8\u0000…" must not pass for what precedes the NUL. */
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		perr(p, "%s[%zu]: a string with a NUL character", where, i);
		return NULL;
	}
	return s;
}

/* "10.0.0.0/8", "2001:db8::/32", or an address alone (one host). */
int
policy_cidr_parse(const char *s, struct policy_cidr *c, char *err,
    size_t errsz)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	long		 n;
	int		 max, i, bits;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errsz, "not an IPv4 or IPv6 CIDR");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errsz, "not an IPv4 or IPv6 address");
		return -1;
	}
	c->prefix = max;
	if (slash != NULL) {
		n = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || !isdigit((unsigned char)
		    *slash) || n < 0 || n > max) {
			snprintf(err, errsz, "prefix length must be 0-%d", max);
			return -1;
		}
		c->prefix = (int)n;
	}
	/* ::ffff:a.b.c.d/n is IPv4: clients are matched that way. */
	if (c->family == AF_INET6 && c->prefix >= 96 &&
	    memcmp(c->addr, "\0\0\0\0\0\0\0\0\0\0\377\377", 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->prefix -= 96;
		max = 32;
	}
	for (i = c->prefix; i < max; i++) {
		bits = c->addr[i / 8] & (0x80 >> (i % 8));
		if (bits) {
			snprintf(err, errsz, "host bits are set after /%d",
			    c->prefix);
			return -1;
		}
	}
	return 0;
}

static int
parse_allowlist(struct pctx *p, struct json_object *root,
    struct policy *pol)
{
	struct json_object	*arr;
	const char		*s;
	char			 why[128];
	size_t			 i, n;

	if (get_array(p, root, "ip_allowlist", "", POLICY_MAX_CIDRS,
	    &arr) == -1)
		return -1;
	if (arr == NULL || (n = json_object_array_length(arr)) == 0)
		return 0;
	if ((pol->allow = calloc(n, sizeof(*pol->allow))) == NULL)
		return perr(p, "out of memory");
	for (i = 0; i < n; i++) {
		if ((s = array_str(p, arr, i, "ip_allowlist")) == NULL)
			return -1;
		if (policy_cidr_parse(s, &pol->allow[i], why,
		    sizeof(why)) == -1)
			return perr(p, "ip_allowlist[%zu]: \"%.64s\": %s", i, s,
			    why);
		pol->nallow++;
	}
	return 0;
}

/* scheme://host[:port], as browsers send it: no path, no trailing dot
 * games; compared as lower case. */
static int
origin_valid(const char *s, char *out, size_t outsz)
{
	const char	*h;
	size_t		 i, len = strlen(s);

	if (len >= outsz)
		return 0;
	if (strncasecmp(s, "https://", 8) == 0)
		h = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		h = s + 7;
	else
		return 0;
	if (*h == '\0' || *h == ':')
		return 0;
	for (i = 0; h[i] != '\0'; i++)
		if (!isalnum((unsigned char)h[i]) && strchr("-.:[]",
		    h[i]) == NULL)
			return 0;
	for (i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	return 1;
}

static int
token_valid(const char *s)
{
	size_t	 i;

	if (*s == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
			return 0;
	return 1;
}

static int
parse_origins(struct pctx *p, struct json_object *cors, struct policy *pol)
{
	struct json_object	*arr;
	const char		*s;
	size_t			 i, n;

	if (get_array(p, cors, "allowed_origins", "cors", POLICY_MAX_ORIGINS,
	    &arr) == -1)
		return -1;
	if (arr == NULL || (n = json_object_array_length(arr)) == 0)
		return 0;
	if ((pol->origins = calloc(n, sizeof(*pol->origins))) == NULL)
		return perr(p, "out of memory");
	for (i = 0; i < n; i++) {
		if ((s = array_str(p, arr, i, "cors.allowed_origins")) == NULL)
			return -1;
		if (strcmp(s, "*") == 0) {
			pol->any_origin = 1;
			continue;
		}
		if (!origin_valid(s, pol->origins[pol->norigins],
		    POLICY_ORIGIN_MAX))
			return perr(p, "cors.allowed_origins[%zu]: \"%.64s\": "
			    "expected \"*\" or scheme://host[:port] with no "
			    "path", i, s);
		pol->norigins++;
	}
	return 0;
}

static const struct {
	const char	*name;
	unsigned int	 bit;
} policy_methods[] = {
	{ "GET",	POLICY_M_GET },
	{ "POST",	POLICY_M_POST },
	{ "HEAD",	POLICY_M_HEAD },
	{ "OPTIONS",	POLICY_M_OPTIONS },
};
#define NMETHODS	(sizeof(policy_methods) / sizeof(policy_methods[0]))

/* A method's bit, by its exact name (RFC 9110 §9.1: case-sensitive). */
unsigned int
policy_method_bit(const char *m, size_t len)
{
	size_t	 i;

	for (i = 0; i < NMETHODS; i++)
		if (strlen(policy_methods[i].name) == len &&
		    memcmp(policy_methods[i].name, m, len) == 0)
			return policy_methods[i].bit;
	return 0;
}

/* The name of the i-th method of the set, in order; NULL past the last. */
const char *
policy_method_name(unsigned int set, size_t i)
{
	size_t	 j;

	for (j = 0; j < NMETHODS; j++)
		if ((set & policy_methods[j].bit) && i-- == 0)
			return policy_methods[j].name;
	return NULL;
}

static int
parse_methods(struct pctx *p, struct json_object *cors, struct policy *pol)
{
	struct json_object	*arr;
	const char		*s;
	size_t			 i, j;

	if (get_array(p, cors, "allowed_methods", "cors", NMETHODS * 2,
	    &arr) == -1)
		return -1;
	if (arr == NULL)
		return 0;
	pol->methods = 0;
	for (i = 0; i < json_object_array_length(arr); i++) {
		if ((s = array_str(p, arr, i, "cors.allowed_methods")) == NULL)
			return -1;
		for (j = 0; j < NMETHODS; j++)
			if (strcasecmp(s, policy_methods[j].name) == 0)
				break;
		if (j == NMETHODS)
			return perr(p, "cors.allowed_methods[%zu]: \"%.32s\": "
			    "expected GET, POST, HEAD or OPTIONS", i, s);
		pol->methods |= policy_methods[j].bit;
	}
	return 0;
}

static int
parse_headers(struct pctx *p, struct json_object *cors, struct policy *pol)
{
	struct json_object	*arr;
	const char		*s;
	size_t			 i, j, n;

	if (get_array(p, cors, "allowed_headers", "cors", POLICY_MAX_HEADERS,
	    &arr) == -1)
		return -1;
	if (arr == NULL)
		return 0;	/* the defaults */
	free(pol->headers);
	pol->headers = NULL;
	pol->nheaders = 0;
	if ((n = json_object_array_length(arr)) == 0)
		return 0;
	if ((pol->headers = calloc(n, sizeof(*pol->headers))) == NULL)
		return perr(p, "out of memory");
	for (i = 0; i < n; i++) {
		if ((s = array_str(p, arr, i, "cors.allowed_headers")) == NULL)
			return -1;
		if (!token_valid(s) || strlen(s) >= POLICY_HEADER_MAX)
			return perr(p, "cors.allowed_headers[%zu]: \"%.64s\": "
			    "not a header name", i, s);
		for (j = 0; s[j] != '\0'; j++)
			pol->headers[pol->nheaders][j] =
			    (char)tolower((unsigned char)s[j]);
		pol->nheaders++;
	}
	return 0;
}

static int
parse_cors(struct pctx *p, struct json_object *root, struct policy *pol)
{
	static const char *const known[] = { "allowed_origins",
	    "allowed_methods", "allowed_headers", "max_age",
	    "allow_credentials", NULL };
	struct json_object	*cors, *v;

	/* Absent, the defaults; null is not an object (check_fields). */
	if (!json_object_object_get_ex(root, "cors", &cors))
		return 0;
	if (check_fields(p, cors, "cors", known) == -1 ||
	    parse_origins(p, cors, pol) == -1 ||
	    parse_methods(p, cors, pol) == -1 ||
	    parse_headers(p, cors, pol) == -1 ||
	    get_uint(p, cors, "max_age", "cors", 0, CORS_MAX_AGE,
	    &pol->max_age) == -1)
		return -1;
	if (json_object_object_get_ex(cors, "allow_credentials", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return perr(p, "cors.allow_credentials: expected true "
			    "or false");
		pol->credentials = json_object_get_boolean(v);
	}
	/* The Fetch standard refuses credentials with a wildcard origin. */
	if (pol->credentials && pol->any_origin)
		return perr(p, "cors.allow_credentials: cannot be true when "
		    "allowed_origins has \"*\"; list the origins");
	return 0;
}

static int
parse_rate(struct pctx *p, struct json_object *rl, const char *key,
    struct policy_rate *r)
{
	static const char *const known[] = { "requests_per_minute",
	    "tokens_per_minute", NULL };
	struct json_object	*o;
	char			 where[32];

	if (!json_object_object_get_ex(rl, key, &o))
		return 0;
	snprintf(where, sizeof(where), "rate_limit.%s", key);
	if (check_fields(p, o, where, known) == -1 ||
	    get_uint(p, o, "requests_per_minute", where, 0, RATE_MAX_REQUESTS,
	    &r->requests) == -1 ||
	    get_uint(p, o, "tokens_per_minute", where, 0, RATE_MAX_TOKENS,
	    &r->tokens) == -1)
		return -1;
	return 0;
}

static int
parse_limits(struct pctx *p, struct json_object *root, struct policy *pol)
{
	static const char *const rknown[] = { "per_key", "per_ip", NULL };
	static const char *const aknown[] = { "max", "window_seconds", NULL };
	struct json_object	*o;

	if (json_object_object_get_ex(root, "rate_limit", &o) &&
	    (check_fields(p, o, "rate_limit", rknown) == -1 ||
	    parse_rate(p, o, "per_key", &pol->per_key) == -1 ||
	    parse_rate(p, o, "per_ip", &pol->per_ip) == -1))
		return -1;
	if (json_object_object_get_ex(root, "auth_failures", &o) &&
	    (check_fields(p, o, "auth_failures", aknown) == -1 ||
	    get_uint(p, o, "max", "auth_failures", 1, 100000,
	    &pol->auth_fail_max) == -1 ||
	    get_uint(p, o, "window_seconds", "auth_failures", 1, 86400,
	    &pol->auth_fail_window) == -1))
		return -1;
	return 0;
}

int
policy_parse(struct json_object *in, struct policy *pol, char *err,
    size_t errsz)
{
	static const char *const known[] = { "ip_allowlist", "cors",
	    "rate_limit", "auth_failures", NULL };
	struct pctx		 p = { err, errsz };

	*err = '\0';
	/* Fields left out keep these. */
	policy_defaults(pol);
	if (in == NULL || !json_object_is_type(in, json_type_object))
		perr(&p, "the policy must be a JSON object");
	else if (check_fields(&p, in, "", known) == 0 &&
	    parse_allowlist(&p, in, pol) == 0 &&
	    parse_cors(&p, in, pol) == 0 &&
	    parse_limits(&p, in, pol) == 0)
		return 0;
	policy_free(pol);
	return -1;
}

int
policy_parse_text(const char *text, size_t len, struct policy *pol,
    char *err, size_t errsz)
{
	struct json_object	*o;
	int			 rv;

	/* As policy_parse leaves it on a refusal: nothing to free. */
	memset(pol, 0, sizeof(*pol));
	if (len > POLICY_MAX_BYTES) {
		snprintf(err, errsz, "the policy is %zu bytes; at most %d are "
		    "accepted", len, POLICY_MAX_BYTES);
		return -1;
	}
	if ((o = json_parse_buf(text, len)) == NULL) {
		snprintf(err, errsz, "the policy is not valid JSON");
		return -1;
	}
	rv = policy_parse(o, pol, err, errsz);
	json_object_put(o);
	return rv;
}

struct json_object *
policy_cidr_json(const struct policy_cidr *c)
{
	char	 a[INET6_ADDRSTRLEN], s[INET6_ADDRSTRLEN + 8];

	inet_ntop(c->family, c->addr, a, sizeof(a));
	snprintf(s, sizeof(s), "%s/%d", a, c->prefix);
	return json_object_new_string(s);
}

static struct json_object *
rate_json(const struct policy_rate *r)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "requests_per_minute",
	    json_object_new_int64(r->requests));
	json_object_object_add(o, "tokens_per_minute",
	    json_object_new_int64(r->tokens));
	return o;
}

struct json_object *
policy_json(const struct policy *pol)
{
	struct json_object	*o = json_object_new_object(), *a, *c, *rl;
	const char		*s;
	size_t			 i;

	a = json_object_new_array();
	for (i = 0; i < pol->nallow; i++)
		json_object_array_add(a, policy_cidr_json(&pol->allow[i]));
	json_object_object_add(o, "ip_allowlist", a);
	c = json_object_new_object();
	a = json_object_new_array();
	if (pol->any_origin)
		json_object_array_add(a, json_object_new_string("*"));
	for (i = 0; i < pol->norigins; i++)
		json_object_array_add(a,
		    json_object_new_string(pol->origins[i]));
	json_object_object_add(c, "allowed_origins", a);
	a = json_object_new_array();
	for (i = 0; (s = policy_method_name(pol->methods, i)) != NULL; i++)
		json_object_array_add(a, json_object_new_string(s));
	json_object_object_add(c, "allowed_methods", a);
	a = json_object_new_array();
	for (i = 0; i < pol->nheaders; i++)
		json_object_array_add(a,
		    json_object_new_string(pol->headers[i]));
	json_object_object_add(c, "allowed_headers", a);
	json_object_object_add(c, "max_age", json_object_new_int64(pol->max_age));
	json_object_object_add(c, "allow_credentials",
	    json_object_new_boolean(pol->credentials));
	json_object_object_add(o, "cors", c);
	rl = json_object_new_object();
	json_object_object_add(rl, "per_key", rate_json(&pol->per_key));
	json_object_object_add(rl, "per_ip", rate_json(&pol->per_ip));
	json_object_object_add(o, "rate_limit", rl);
	c = json_object_new_object();
	json_object_object_add(c, "max",
	    json_object_new_int64(pol->auth_fail_max));
	json_object_object_add(c, "window_seconds",
	    json_object_new_int64(pol->auth_fail_window));
	json_object_object_add(o, "auth_failures", c);
	return o;
}

static int
cidr_match(const struct policy_cidr *c, const uint8_t *a)
{
	int	 full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->addr, a, (size_t)full) != 0)
		return 0;
	return rest == 0 ||
	    ((c->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Is numeric addr in one of the n cidrs?  -1: not an address. */
int
policy_cidrs_match(const struct policy_cidr *c, size_t n, const char *addr)
{
	uint8_t		 a[16];
	int		 family;
	size_t		 i;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (inet_pton(AF_INET, addr, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, a) == 1) {
		family = AF_INET6;
		/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	} else
		return -1;
	if (n == 0)	/* loopback */
		return family == AF_INET ? a[0] == 127 :
		    memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
	for (i = 0; i < n; i++)
		if (c[i].family == family && cidr_match(&c[i], a))
			return 1;
	return 0;
}

int
policy_ip_allowed(const struct policy *pol, const char *addr)
{
	return policy_cidrs_match(pol->allow, pol->nallow, addr) == 1;
}

int
policy_origin_allowed(const struct policy *pol, const char *o, size_t len)
{
	size_t	 i;

	if (pol->any_origin)
		return 1;
	for (i = 0; i < pol->norigins; i++)
		if (strlen(pol->origins[i]) == len &&
		    strncasecmp(pol->origins[i], o, len) == 0)
			return 1;
	return 0;
}
