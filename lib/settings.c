#include "config.h"

#include <ctype.h>
#include <string.h>

#include "proxylimits.h"
#include "settings.h"

const struct setting_def setting_defs[] = {
	{ "engines.ID.url",	SETTING_ENGINE_URL,
	    "http://HOST:PORT or https://HOST[:PORT]" },
	{ "engines.ID.kind",	SETTING_ENGINE_KIND,
	    "ollama|lmstudio|vllm|llamacpp" },
	{ "engines.ID.ca",	SETTING_ENGINE_CA,
	    "system, /path/of/ca.pem or sha256//BASE64 (https engines)" },
	{ "engines.ID.egress",	SETTING_ENGINE_EGRESS,
	    "default (egress.mode), direct, tor or socks5" },
	{ "engines.ID.priority", SETTING_ENGINE_PRIORITY,
	    "0-100 (default 50): pools.policy priority prefers the highest" },
	{ "proxy.LIMIT",	SETTING_PROXY_LIMIT,	NULL },
	{ "tls.names",		SETTING_TLS_NAMES,
	    "1-16 DNS names, comma-separated" },
	{ "tls.cert_lifetime",	SETTING_TLS_LIFETIME,
	    "0 (the mode's default) or 60-315360000 seconds" },
	{ "proxy.workers",	SETTING_PROXY_WORKERS,
	    "auto (one per online CPU, at most 64) or 1-64" },
	{ "acme.dns_hook",	SETTING_ACME_DNS_HOOK,
	    "/absolute/path of the DNS-01 hook" },
	{ "acme.dns_user",	SETTING_ACME_DNS_USER,
	    "the user the hook runs as (system mode; default nobody)" },
	{ "acme.dns_wait",	SETTING_ACME_DNS_WAIT,
	    "0-3600 seconds for a TXT record to spread (default 60)" },
	{ "egress.mode",	SETTING_EGRESS_MODE,
	    "direct (default), tor or socks5" },
	{ "egress.socks5",	SETTING_EGRESS_ENDPOINT,
	    "HOST:PORT of the SOCKS5 server" },
	{ "egress.tor",		SETTING_EGRESS_ENDPOINT,
	    "HOST:PORT of Tor's SOCKS port (default 127.0.0.1:9050)" },
	{ "egress.socks5_user",	SETTING_EGRESS_USER,
	    "the SOCKS5 user name (flm egress password set: its password)" },
	{ "egress.fail_open",	SETTING_EGRESS_FAIL_OPEN,
	    "no (default) or yes: go direct when the SOCKS server is down" },
	{ "pools.policy",	SETTING_POOLS_POLICY,
	    "least-outstanding (default), priority or round-robin" },
	{ "pools.affinity",	SETTING_POOLS_AFFINITY,
	    "none (default) or key: one API key, one engine of a pool" },
};
const int	setting_ndefs = sizeof(setting_defs) / sizeof(setting_defs[0]);

/* An engine id: 1-32 of a-z 0-9 - _. */
int
setting_id_valid(const char *id, size_t len)
{
	size_t	 i;

	if (len < 1 || len > 32)
		return 0;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)id[i]) &&
		    !isdigit((unsigned char)id[i]) && id[i] != '-' &&
		    id[i] != '_')
			return 0;
	return 1;
}

/*
 * The kind of setting key is, or -1 if no row of setting_defs matches
 * it; *ld is the limit of a proxy.LIMIT key.
 */
int
setting_find(const char *key, const struct limit_def **ld)
{
	const char	*dot;
	int		 i;

	*ld = NULL;
	if (strncmp(key, "engines.", 8) == 0 &&
	    (dot = strchr(key + 8, '.')) != NULL &&
	    setting_id_valid(key + 8, dot - (key + 8))) {
		if (strcmp(dot, ".url") == 0)
			return SETTING_ENGINE_URL;
		if (strcmp(dot, ".kind") == 0)
			return SETTING_ENGINE_KIND;
		if (strcmp(dot, ".ca") == 0)
			return SETTING_ENGINE_CA;
		if (strcmp(dot, ".egress") == 0)
			return SETTING_ENGINE_EGRESS;
		if (strcmp(dot, ".priority") == 0)
			return SETTING_ENGINE_PRIORITY;
		return -1;
	}
	if (strcmp(key, "proxy.workers") == 0)
		return SETTING_PROXY_WORKERS;
	if (strncmp(key, "proxy.", 6) == 0)
		return (*ld = limit_find(key + 6)) != NULL ?
		    SETTING_PROXY_LIMIT : -1;
	/* Only the fixed keys are left: no pattern row can equal key. */
	for (i = 0; i < setting_ndefs; i++)
		if (strcmp(setting_defs[i].key, key) == 0)
			return setting_defs[i].kind;
	return -1;
}
