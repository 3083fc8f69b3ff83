/*
 * The keys flm config set accepts: one table that flmd validates by,
 * flm config keys lists and make check-man holds flm-config(5) to.
 */
#ifndef FLM_SETTINGS_H
#define FLM_SETTINGS_H

#include <stddef.h>

struct limit_def;

enum setting_kind {
	SETTING_ENGINE_URL,		/* engines.ID.url */
	SETTING_ENGINE_KIND,		/* engines.ID.kind */
	SETTING_ENGINE_CA,		/* engines.ID.ca */
	SETTING_ENGINE_EGRESS,		/* engines.ID.egress */
	SETTING_ENGINE_PRIORITY,	/* engines.ID.priority */
	SETTING_PROXY_LIMIT,		/* proxy.NAME: lib/proxylimits.c */
	SETTING_TLS_NAMES,		/* tls.names */
	SETTING_TLS_LIFETIME,		/* tls.cert_lifetime */
	SETTING_PROXY_WORKERS,		/* proxy.workers */
	SETTING_ACME_DNS_HOOK,		/* acme.dns_hook */
	SETTING_ACME_DNS_USER,		/* acme.dns_user */
	SETTING_ACME_DNS_WAIT,		/* acme.dns_wait */
	SETTING_EGRESS_MODE,		/* egress.mode */
	SETTING_EGRESS_ENDPOINT,	/* egress.socks5, egress.tor */
	SETTING_EGRESS_USER,		/* egress.socks5_user */
	SETTING_EGRESS_FAIL_OPEN,	/* egress.fail_open */
	SETTING_POOLS_POLICY,		/* pools.policy */
	SETTING_POOLS_AFFINITY,		/* pools.affinity */
};

struct setting_def {
	const char		*key;	/* ID: an engine id; LIMIT: a limit */
	enum setting_kind	 kind;
	const char		*value;	/* what it takes; NULL: the limit's */
};

extern const struct setting_def	 setting_defs[];
extern const int		 setting_ndefs;

int	setting_id_valid(const char *, size_t);
int	setting_find(const char *, const struct limit_def **);

#endif
