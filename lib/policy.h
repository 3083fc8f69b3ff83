/*
 * The security policy (security_policies row 'default'): parsed and
 * checked here for flm-keyd, which stores it, and for flm-proxyd, which
 * enforces it.  docs/SECURITY_FIREWALL_GUIDE.md describes each field.
 */
#ifndef FLM_POLICY_H
#define FLM_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define POLICY_MAX_CIDRS	1024
#define POLICY_MAX_ORIGINS	256
#define POLICY_MAX_HEADERS	64
#define POLICY_ORIGIN_MAX	256
#define POLICY_HEADER_MAX	64
#define POLICY_MAX_BYTES	(128 * 1024)	/* of the JSON text */

/* CORS methods, as a bit set. */
#define POLICY_M_GET		0x01
#define POLICY_M_POST		0x02
#define POLICY_M_HEAD		0x04
#define POLICY_M_OPTIONS	0x08

struct policy_cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];
	int		 prefix;
};

struct policy_rate {
	uint32_t	 requests;	/* per minute; 0: no limit */
	uint32_t	 tokens;	/* per minute; 0: no limit */
};

struct policy {
	struct policy_cidr	*allow;		/* empty: loopback only */
	size_t			 nallow;
	char			(*origins)[POLICY_ORIGIN_MAX];
	size_t			 norigins;
	int			 any_origin;	/* "*" */
	unsigned int		 methods;
	char			(*headers)[POLICY_HEADER_MAX]; /* lower case */
	size_t			 nheaders;
	uint32_t		 max_age;	/* s a preflight is cached */
	int			 credentials;
	struct policy_rate	 per_key;
	struct policy_rate	 per_ip;
	uint32_t		 auth_fail_max;
	uint32_t		 auth_fail_window;	/* s */
};

/* Parse and check a policy; -1 with err naming the field at fault.
 * Fields left out take their defaults. */
int	 policy_parse(struct json_object *, struct policy *, char *, size_t);
int	 policy_parse_text(const char *, size_t, struct policy *, char *,
	    size_t);
/* The default policy (loopback only); policy_free it too. */
void	 policy_defaults(struct policy *);
void	 policy_free(struct policy *);
/* The whole policy, every field spelled out: what keyd stores. */
struct json_object *policy_json(const struct policy *);

/* addr is numeric (IPv4, IPv6 or IPv4-mapped IPv6). */
int	 policy_ip_allowed(const struct policy *, const char *);
int	 policy_origin_allowed(const struct policy *, const char *, size_t);
int	 policy_cidr_parse(const char *, struct policy_cidr *, char *, size_t);
/* In one of n cidrs (n 0: loopback)?  -1 if addr is not an address. */
int	 policy_cidrs_match(const struct policy_cidr *, size_t, const char *);
struct json_object *policy_cidr_json(const struct policy_cidr *);
unsigned int	 policy_method_bit(const char *, size_t);
const char	*policy_method_name(unsigned int, size_t);

#endif
