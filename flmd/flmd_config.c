/*
 * config.db, owned by flmd: validated settings and the engine list
 * that proxyd may connect to (it connects nowhere else).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "acme.h"
#include "db.h"
#include "flmd.h"
#include "log.h"
#include "proxylimits.h"
#include "settings.h"

#define CONFIG_CA_MAX	(16 * 1024)	/* an engine's CA file */

struct db	 config_db;

static const struct {
	const char	*kind;
	const char	*url;
} engine_defaults[] = {
	{ "ollama",	"http://127.0.0.1:11434" },
	{ "lmstudio",	"http://127.0.0.1:1234" },
	{ "vllm",	"http://127.0.0.1:8000" },
	{ "llamacpp",	"http://127.0.0.1:8080" },
};
#define NDEFAULTS	(sizeof(engine_defaults) / sizeof(engine_defaults[0]))

void
config_open(void)
{
	char	 path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s", env->paths.statedir,
	    CONFIG_DB_NAME);
	db_open(&config_db, path, 0, 0, config_migrations,
	    config_migrations_count);
}

void
config_close(void)
{
	db_close(&config_db);
}

static int
config_kind_valid(const char *kind)
{
	size_t	 i;

	for (i = 0; i < NDEFAULTS; i++)
		if (strcmp(kind, engine_defaults[i].kind) == 0)
			return 1;
	return 0;
}

/*
 * http://HOST[:PORT] or https://HOST[:PORT] with an optional trailing
 * slash; *tls says which (the port defaults to 80 or 443).
 */
int
config_parse_url(const char *url, char *host, size_t hostsz, int *port,
    int *tls)
{
	const char	*p, *colon, *end;
	char		*e;
	long		 n;
	size_t		 hlen, len = strlen(url);

	if (len > 0 && url[len - 1] == '/')
		len--;
	end = url + len;
	if (strncmp(url, "http://", 7) == 0) {
		*tls = 0;
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		*tls = 1;
		p = url + 8;
	} else
		return -1;
	if (*p == '[') {		/* [v6addr] or [v6addr]:port */
		if ((colon = memchr(p, ']', end - p)) == NULL)
			return -1;
		hlen = colon - p - 1;
		p++;
		colon++;
		if (colon < end && *colon != ':')
			return -1;
	} else {
		colon = memchr(p, ':', end - p);
		hlen = (colon != NULL ? colon : end) - p;
		if (colon == NULL)
			colon = end;
	}
	if (hlen == 0 || hlen >= hostsz || memchr(p, '/', hlen) != NULL ||
	    memchr(p, '@', hlen) != NULL)
		return -1;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (colon == end) {
		*port = *tls ? 443 : 80;
		return 0;
	}
	errno = 0;
	n = strtol(colon + 1, &e, 10);
	if (errno || n < 1 || n > 65535 || e != end || !isdigit(
	    (unsigned char)colon[1]))
		return -1;
	*port = (int)n;
	return 0;
}

/* tls.names: a comma list of 1-16 DNS names. */
static int
config_valid_names(const char *key, const char *value, char *err,
    size_t errsz)
{
	const char	*p, *e;
	int		 n = 0;

	for (p = value; ; p = e + 1) {
		e = p + strcspn(p, ",");
		if (!tls_name_valid(p, (size_t)(e - p)) || ++n > 16)
			break;
		if (*e == '\0')
			return 0;
	}
	snprintf(err, errsz, "%s: expected 1-16 DNS names (1-253 of "
	    "a-z 0-9 . -), comma-separated", key);
	return -1;
}

/* A decimal integer from min to max, or -1. */
static long long
config_int(const char *value, long long min, long long max)
{
	char		*end;
	long long	 x;

	errno = 0;
	x = strtoll(value, &end, 10);
	if (errno != 0 || *value == '\0' || *end != '\0' || x < min ||
	    x > max)
		return -1;
	return x;
}

/* tls.cert_lifetime: seconds, 0 for the mode's default. */
static int
config_valid_lifetime(const char *key, const char *value, char *err,
    size_t errsz)
{
	long long	 x = config_int(value, 0, 315360000);

	if (x == 0 || x >= 60)
		return 0;
	snprintf(err, errsz, "%s: expected 0 (the mode's default) or "
	    "60-315360000 seconds", key);
	return -1;
}

/* engines.ID.kind: one of the kinds, and not for a built-in engine. */
static int
config_valid_kind(const char *key, const char *value, char *err,
    size_t errsz)
{
	const char	*id = key + 8;
	size_t		 n = strchr(id, '.') - id;
	char		 buf[40];

	snprintf(buf, sizeof(buf), "%.*s", (int)n, id);
	if (config_kind_valid(buf)) {
		snprintf(err, errsz, "%s: the built-in engine %s is always "
		    "of kind %s", key, buf, buf);
		return -1;
	}
	if (config_kind_valid(value))
		return 0;
	snprintf(err, errsz, "%s: expected ollama, lmstudio, vllm or "
	    "llamacpp", key);
	return -1;
}

/* acme.dns_*: the hook's program, its user, the propagation wait. */
static int
config_valid_acme(int kind, const char *key, const char *value, char *err,
    size_t errsz)
{
	struct stat	 st;

	switch (kind) {
	case SETTING_ACME_DNS_HOOK:
		if (!acme_hook_valid(value)) {
			snprintf(err, errsz, "%s: expected an absolute path of "
			    "at most %d bytes", key, ACME_HOOK_MAX);
			return -1;
		}
		if (stat(value, &st) == -1 || !S_ISREG(st.st_mode) ||
		    (st.st_mode & 0111) == 0) {
			snprintf(err, errsz, "%s: %s is not an executable "
			    "file", key, value);
			return -1;
		}
		/* The spawner checks again before each run. */
		if (!env->paths.user_mode && (st.st_uid != 0 ||
		    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)) {
			snprintf(err, errsz, "%s: %s must be root's and not "
			    "writable by group or others", key, value);
			return -1;
		}
		return 0;
	case SETTING_ACME_DNS_USER:
		if (acme_user_valid(value) && strcmp(value, "root") != 0)
			return 0;
		snprintf(err, errsz, "%s: expected a user name other than "
		    "root", key);
		return -1;
	default:
		if (config_int(value, 0, ACME_DNS_WAIT_MAX) >= 0)
			return 0;
		snprintf(err, errsz, "%s: expected 0-%d seconds", key,
		    ACME_DNS_WAIT_MAX);
		return -1;
	}
}

/* sha256//BASE64: the SHA-256 of an engine's public key, as curl pins. */
static int
config_pin_valid(const char *v)
{
	size_t	 i;

	if (strncmp(v, "sha256//", 8) != 0 || strlen(v) != 8 + 44 ||
	    v[8 + 43] != '=')
		return 0;
	for (i = 8; i < 8 + 43; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '+' &&
		    v[i] != '/')
			return 0;
	return 1;
}

/*
 * The PEM certificates of an engine's CA file into buf (NUL-ended);
 * -1 with why.  Read by flmd, sent to proxyd: proxyd opens no file.
 */
static int
config_ca_read(const char *path, char *buf, size_t sz, char *why,
    size_t whysz)
{
	FILE	*f;
	size_t	 n;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(why, whysz, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sz, f);
	fclose(f);
	if (n == sz) {
		snprintf(why, whysz, "%s is larger than %zu bytes", path,
		    sz - 1);
		return -1;
	}
	buf[n] = '\0';
	if (strlen(buf) != n || strstr(buf, "-----BEGIN CERTIFICATE-----") ==
	    NULL) {
		snprintf(why, whysz, "%s holds no PEM certificate", path);
		return -1;
	}
	return 0;
}

/* engines.ID.ca: system, a CA file's absolute path, or a key pin. */
static int
config_valid_ca(const char *key, const char *value, char *err,
    size_t errsz)
{
	char	 buf[CONFIG_CA_MAX + 1], why[PATH_MAX + 64];

	if (strcmp(value, "system") == 0 || config_pin_valid(value))
		return 0;
	if (value[0] != '/' || strlen(value) >= PATH_MAX) {
		snprintf(err, errsz, "%s: expected system, the absolute path "
		    "of a PEM CA file, or sha256//BASE64 (the engine's public "
		    "key pin)", key);
		return -1;
	}
	if (config_ca_read(value, buf, sizeof(buf), why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errsz, "%s: %s", key, why);
	return -1;
}

/* HOST:PORT or [V6]:PORT, the port required. */
static int
config_hostport(const char *v, char *host, size_t hostsz, int *port)
{
	char	 url[300];
	int	 tls;

	if (strlen(v) > 280 || strchr(v, '/') != NULL ||
	    (v[0] == '[' ? strstr(v, "]:") : strrchr(v, ':')) == NULL)
		return -1;
	snprintf(url, sizeof(url), "http://%s", v);
	return config_parse_url(url, host, hostsz, port, &tls);
}

static const char *const egress_modes[] = { "direct", "tor", "socks5" };

static int
config_egress_mode_valid(const char *v)
{
	size_t	 i;

	for (i = 0; i < 3; i++)
		if (strcmp(v, egress_modes[i]) == 0)
			return 1;
	return 0;
}

/* egress.* and engines.ID.egress. */
static int
config_valid_egress(int kind, const char *key, const char *value, char *err,
    size_t errsz)
{
	char	 host[256];
	size_t	 i;
	int	 port;

	switch (kind) {
	case SETTING_ENGINE_EGRESS:
		if (strcmp(value, "default") == 0 ||
		    config_egress_mode_valid(value))
			return 0;
		snprintf(err, errsz, "%s: expected default, direct, tor or "
		    "socks5", key);
		return -1;
	case SETTING_EGRESS_MODE:
		if (config_egress_mode_valid(value))
			return 0;
		snprintf(err, errsz, "%s: expected direct, tor or socks5", key);
		return -1;
	case SETTING_EGRESS_ENDPOINT:
		if (config_hostport(value, host, sizeof(host), &port) == 0)
			return 0;
		snprintf(err, errsz, "%s: expected HOST:PORT", key);
		return -1;
	case SETTING_EGRESS_USER:
		for (i = 0; value[i] != '\0'; i++)
			if (value[i] < 0x21 || value[i] > 0x7e)
				break;
		if (i > 0 && i <= 255 && value[i] == '\0')
			return 0;
		snprintf(err, errsz, "%s: expected 1-255 visible characters",
		    key);
		return -1;
	default:
		if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0)
			return 0;
		snprintf(err, errsz, "%s: expected yes or no", key);
		return -1;
	}
}

/* A key no row of setting_defs matches: name those there are. */
static int
config_unknown(const char *key, char *err, size_t errsz)
{
	char	 known[640];
	size_t	 off = 0;
	int	 i;

	known[0] = '\0';
	for (i = 0; i < setting_ndefs && off < sizeof(known); i++)
		off += snprintf(known + off, sizeof(known) - off, "%s%s",
		    i > 0 ? ", " : "", setting_defs[i].key);
	snprintf(err, errsz, "unknown setting '%s'; known: %s (ID: 1-32 of "
	    "a-z 0-9 - _; see flm-config(5))", key, known);
	return -1;
}

/* Validate key = value by setting_defs; err says what is expected. */
int
config_validate(const char *key, const char *value, char *err, size_t errsz)
{
	const struct limit_def	*ld;
	char		 host[256];
	long long	 x;
	int		 port, tls;

	switch (setting_find(key, &ld)) {
	case SETTING_ENGINE_URL:
		if (config_parse_url(value, host, sizeof(host), &port,
		    &tls) == 0)
			return 0;
		snprintf(err, errsz, "%s: expected http://HOST:PORT or "
		    "https://HOST:PORT", key);
		return -1;
	case SETTING_ENGINE_CA:
		return config_valid_ca(key, value, err, errsz);
	case SETTING_ENGINE_PRIORITY:
		if (config_int(value, 0, 100) >= 0)
			return 0;
		snprintf(err, errsz, "%s: expected 0-100", key);
		return -1;
	case SETTING_POOLS_POLICY:
		if (strcmp(value, "least-outstanding") == 0 ||
		    strcmp(value, "priority") == 0 ||
		    strcmp(value, "round-robin") == 0)
			return 0;
		snprintf(err, errsz, "%s: expected least-outstanding, priority "
		    "or round-robin", key);
		return -1;
	case SETTING_POOLS_AFFINITY:
		if (strcmp(value, "none") == 0 || strcmp(value, "key") == 0)
			return 0;
		snprintf(err, errsz, "%s: expected none or key", key);
		return -1;
	case SETTING_ENGINE_EGRESS:
	case SETTING_EGRESS_MODE:
	case SETTING_EGRESS_ENDPOINT:
	case SETTING_EGRESS_USER:
	case SETTING_EGRESS_FAIL_OPEN:
		return config_valid_egress(setting_find(key, &ld), key, value,
		    err, errsz);
	case SETTING_ENGINE_KIND:
		return config_valid_kind(key, value, err, errsz);
	case SETTING_PROXY_LIMIT:
		if (limit_parse(ld, value, &x) == 0)
			return 0;
		snprintf(err, errsz, "%s: expected an integer from %lld to "
		    "%lld (%s)", key, ld->min, ld->max, ld->unit);
		return -1;
	case SETTING_TLS_NAMES:
		return config_valid_names(key, value, err, errsz);
	case SETTING_TLS_LIFETIME:
		return config_valid_lifetime(key, value, err, errsz);
	case SETTING_PROXY_WORKERS:
		if (config_workers_parse(value) > 0)
			return 0;
		snprintf(err, errsz, "%s: expected auto or an integer from 1 "
		    "to %d", key, FLM_WORKERS_MAX);
		return -1;
	case SETTING_ACME_DNS_HOOK:
	case SETTING_ACME_DNS_USER:
	case SETTING_ACME_DNS_WAIT:
		return config_valid_acme(setting_find(key, &ld), key, value,
		    err, errsz);
	}
	return config_unknown(key, err, errsz);
}

/* Store value under key (value NULL: forget the key).  0, or -1 with why. */
static int
config_store(const char *key, const char *value, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (db_writable(&config_db, err, errsz) == -1)
		return -1;
	rc = sqlite3_prepare_v2(config_db.h, value == NULL ?
	    "DELETE FROM settings WHERE key = ?1" :
	    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON "
	    "CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at "
	    "= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (value != NULL)
			sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK :
		    sqlite3_extended_errcode(config_db.h);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "cannot store %s: %s", key,
		    db_strerror(&config_db, rc));
		return -1;
	}
	return 0;
}

int
config_set(const char *key, const char *value, char *err, size_t errsz)
{
	if (config_validate(key, value, err, errsz) == -1)
		return -1;
	return config_store(key, value, err, errsz);
}

/* Forget key (flm config unset): one of setting_defs, and set. */
int
config_unset(const char *key, char *err, size_t errsz)
{
	const struct limit_def	*ld;
	struct json_object	*o;
	int			 set;

	if (setting_find(key, &ld) == -1)
		return config_unknown(key, err, errsz);
	o = config_list(key);
	set = json_object_object_get_ex(o, key, NULL);
	json_object_put(o);
	if (!set) {
		snprintf(err, errsz, "%s is not set", key);
		return -1;
	}
	return config_store(key, NULL, err, errsz);
}

/* All settings as a JSON object; prefix NULL for all. */
struct json_object *
config_list(const char *prefix)
{
	struct json_object	*o = json_object_new_object();
	sqlite3_stmt		*st;

	if (config_db.h == NULL || sqlite3_prepare_v2(config_db.h,
	    "SELECT key, value FROM settings ORDER BY key", -1, &st,
	    NULL) != SQLITE_OK)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char	*k = (const char *)sqlite3_column_text(st, 0);

		if (prefix != NULL && strncmp(k, prefix, strlen(prefix)) != 0)
			continue;
		json_object_object_add(o, k, json_object_new_string(
		    (const char *)sqlite3_column_text(st, 1)));
	}
	sqlite3_finalize(st);
	return o;
}

/* Resolve host here: proxyd gets addresses, never names. */
static int
config_resolve(const char *host, char *addr, size_t addrsz)
{
	struct addrinfo	 hints, *res;
	int		 r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0)
		return -1;
	r = getnameinfo(res->ai_addr, res->ai_addrlen, addr, addrsz, NULL, 0,
	    NI_NUMERICHOST);
	freeaddrinfo(res);
	return r == 0 ? 0 : -1;
}

/*
 * The owner recorded for an engine's listener: settings
 * engines.ID.owner = "UID ADDR PORT", kept apart from the settings flm
 * config set may change.  -1 if none, or recorded for another address
 * (the URL changed: the owner there is learnt afresh).
 */
int64_t
config_owner(const char *id, const char *addr, int port)
{
	sqlite3_stmt	*st;
	char		 raddr[INET6_ADDRSTRLEN], key[64];
	long long	 uid = -1;
	int		 rport;

	snprintf(key, sizeof(key), "engines.%s.owner", id);
	if (config_db.h == NULL || sqlite3_prepare_v2(config_db.h,
	    "SELECT value FROM settings WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW || sscanf((const char *)
	    sqlite3_column_text(st, 0), "%lld %45s %d", &uid, raddr,
	    &rport) != 3 || strcmp(raddr, addr) != 0 || rport != port ||
	    uid < 0 || uid > UINT32_MAX)
		uid = -1;
	sqlite3_finalize(st);
	return uid;
}

/* Record uid as the owner of id's listener at addr:port, or forget it
 * (uid -1).  0, or -1 with why. */
int
config_owner_set(const char *id, int64_t uid, const char *addr, int port,
    char *err, size_t errsz)
{
	char		 key[64], val[128];

	snprintf(key, sizeof(key), "engines.%s.owner", id);
	snprintf(val, sizeof(val), "%lld %s %d", (long long)uid, addr, port);
	return config_store(key, uid < 0 ? NULL : val, err, errsz);
}

/* How proxyd verifies an https engine: engines.ID.ca (unset: system). */
static void
config_engine_ca(struct json_object *e, const char *id, const char *ca)
{
	char	 buf[CONFIG_CA_MAX + 1], why[PATH_MAX + 64];

	if (ca == NULL || strcmp(ca, "system") == 0)
		return;
	if (config_pin_valid(ca)) {
		json_object_object_add(e, "pin", json_object_new_string(ca));
		return;
	}
	if (config_ca_read(ca, buf, sizeof(buf), why, sizeof(why)) == -1) {
		/* Never a silent downgrade: proxyd refuses the engine. */
		log_warnx("engine %s: engines.%s.ca: %s", id, id, why);
		json_object_object_add(e, "ca_error",
		    json_object_new_string(why));
		return;
	}
	json_object_object_add(e, "ca_pem", json_object_new_string(buf));
}

/* Going direct when the SOCKS server is down (egress.fail_open). */
static int
config_fail_open(void)
{
	char	 buf[8];

	return strcmp(config_value("egress.fail_open", "no", buf,
	    sizeof(buf)), "yes") == 0;
}

/*
 * How proxyd reaches an engine (its engines.ID.egress, or with id NULL
 * or "default" there, egress.mode): NULL for direct, else the SOCKS5
 * server {mode, addr, port, user?, fail_open?}, or {mode, error} when it
 * is not set or cannot be resolved (proxyd then refuses the engine:
 * nothing goes direct by mistake).
 */
struct json_object *
config_egress(const char *id)
{
	struct json_object	*o;
	char			 key[64], mode[16], ep[300], u[300];
	char			 host[256], addr[INET6_ADDRSTRLEN], why[400];
	const char		*m = NULL;
	int			 port;

	if (id != NULL) {
		snprintf(key, sizeof(key), "engines.%s.egress", id);
		m = config_value(key, NULL, mode, sizeof(mode));
	}
	if (m == NULL || strcmp(m, "default") == 0)
		m = config_value("egress.mode", "direct", mode, sizeof(mode));
	if (strcmp(m, "direct") == 0)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "mode", json_object_new_string(m));
	if (strcmp(m, "tor") == 0)
		snprintf(ep, sizeof(ep), "%s", config_value("egress.tor",
		    "127.0.0.1:9050", u, sizeof(u)));
	else if (config_value("egress.socks5", NULL, ep, sizeof(ep)) == NULL) {
		json_object_object_add(o, "error", json_object_new_string(
		    "egress socks5: egress.socks5 is not set"));
		return o;
	}
	if (config_hostport(ep, host, sizeof(host), &port) == -1 ||
	    config_resolve(host, addr, sizeof(addr)) == -1) {
		snprintf(why, sizeof(why), "egress %s: cannot resolve %s", m,
		    ep);
		json_object_object_add(o, "error", json_object_new_string(why));
		return o;
	}
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "port", json_object_new_int(port));
	if (strcmp(m, "socks5") == 0 && config_value("egress.socks5_user",
	    NULL, u, sizeof(u)) != NULL)
		json_object_object_add(o, "user", json_object_new_string(u));
	if (config_fail_open())
		json_object_object_add(o, "fail_open",
		    json_object_new_boolean(1));
	return o;
}

static void
config_engine_add(struct json_object *arr, const char *id, const char *kind,
    const char *url, const char *ca)
{
	struct json_object	*e, *eg = config_egress(id), *v;
	char			 host[256], addr[INET6_ADDRSTRLEN] = "";
	int64_t			 owner;
	int			 port, tls;

	/* Through SOCKS the server resolves the name (socks5h): a lookup
	 * here would leak it, unless going direct is allowed anyway. */
	if (config_parse_url(url, host, sizeof(host), &port, &tls) == -1 ||
	    ((eg == NULL || json_object_object_get_ex(eg, "fail_open",
	    NULL)) && config_resolve(host, addr, sizeof(addr)) == -1)) {
		log_warnx("engine %s: cannot use %s", id, url);
		json_object_put(eg);
		return;
	}
	e = json_object_new_object();
	json_object_object_add(e, "id", json_object_new_string(id));
	json_object_object_add(e, "kind", json_object_new_string(kind));
	json_object_object_add(e, "host", json_object_new_string(host));
	json_object_object_add(e, "addr", json_object_new_string(addr));
	json_object_object_add(e, "port", json_object_new_int(port));
	if (tls) {
		json_object_object_add(e, "tls", json_object_new_boolean(1));
		config_engine_ca(e, id, ca);
	}
	if (eg != NULL && json_object_object_get_ex(eg, "error", &v)) {
		log_warnx("engine %s: %s: refused", id,
		    json_object_get_string(v));
		json_object_object_add(e, "egress_error", json_object_get(v));
		json_object_put(eg);
	} else if (eg != NULL)
		json_object_object_add(e, "socks", eg);
	{
		char	 pk[64], pv[8];

		snprintf(pk, sizeof(pk), "engines.%s.priority", id);
		if (config_value(pk, NULL, pv, sizeof(pv)) != NULL)
			json_object_object_add(e, "priority",
			    json_object_new_int(config_int(pv, 0, 100)));
	}
	if (*addr != '\0' && (owner = config_owner(id, addr, port)) >= 0)
		json_object_object_add(e, "owner_uid",
		    json_object_new_int64(owner));
	json_object_array_add(arr, e);
}

/*
 * The engines' own variables, as the engines read them: OLLAMA_HOST
 * ("host", "host:port", ":port", with or without http://) and
 * llama-server's LLAMA_ARG_HOST / LLAMA_ARG_PORT.  A wildcard bind
 * address is reached on loopback.
 */
static const char *
config_env_url(const char *kind, char *buf, size_t sz)
{
	const char	*h, *p;
	char		 host[256];
	int		 port;

	if (strcmp(kind, "ollama") == 0 && (h = getenv("OLLAMA_HOST")) &&
	    *h != '\0') {
		if (strncmp(h, "http://", 7) == 0)
			h += 7;
		snprintf(host, sizeof(host), "%s", h);
		port = 11434;
		if ((p = strrchr(host, ':')) != NULL && strchr(p, ']') == NULL) {
			port = atoi(p + 1);
			host[p - host] = '\0';
		}
		if (*host == '\0' || strcmp(host, "0.0.0.0") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		snprintf(buf, sz, "http://%s:%d", host, port);
		return buf;
	}
	if (strcmp(kind, "llamacpp") == 0 && ((h = getenv("LLAMA_ARG_HOST")) ||
	    getenv("LLAMA_ARG_PORT"))) {
		p = getenv("LLAMA_ARG_PORT");
		snprintf(buf, sz, "http://%s:%s", h == NULL || *h == '\0' ||
		    strcmp(h, "0.0.0.0") == 0 ? "127.0.0.1" : h,
		    p ? p : "8080");
		return buf;
	}
	return NULL;
}

/*
 * The id of the engine an "engines.ID.url" setting adds, into id; NULL
 * for other settings and for the four defaults.
 */
static const char *
config_custom_id(const char *key, char *id, size_t idsz)
{
	const char	*dot = strrchr(key, '.');
	size_t		 n;

	if (strncmp(key, "engines.", 8) != 0 || dot == NULL ||
	    dot < key + 8 || strcmp(dot, ".url") != 0)
		return NULL;
	n = dot - (key + 8);
	snprintf(id, idsz, "%.*s", (int)n, key + 8);
	return config_kind_valid(id) ? NULL : id;
}

/* set's engines.ID.NAME, or NULL. */
static const char *
config_engine_setting(struct json_object *set, const char *id,
    const char *name)
{
	struct json_object	*v;
	char			 key[128];

	snprintf(key, sizeof(key), "engines.%s.%s", id, name);
	return json_object_object_get_ex(set, key, &v) ?
	    json_object_get_string(v) : NULL;
}

/*
 * The engines proxyd may use: the four defaults (the engines' own
 * variables, unless a setting says otherwise) and every engines.ID.url
 * in settings.
 */
struct json_object *
config_engines(void)
{
	struct json_object	*arr = json_object_new_array();
	struct json_object	*set = config_list("engines.");
	char			 key[128];
	size_t			 i;

	for (i = 0; i < NDEFAULTS; i++) {
		struct json_object	*u;
		const char		*url;
		char			 envurl[300];

		snprintf(key, sizeof(key), "engines.%s.url",
		    engine_defaults[i].kind);
		if (json_object_object_get_ex(set, key, &u))
			url = json_object_get_string(u);
		else if ((url = config_env_url(engine_defaults[i].kind, envurl,
		    sizeof(envurl))) == NULL)
			url = engine_defaults[i].url;
		config_engine_add(arr, engine_defaults[i].kind,
		    engine_defaults[i].kind, url, config_engine_setting(set,
		    engine_defaults[i].kind, "ca"));
	}
	json_object_object_foreach(set, k, v) {
		char		 id[40];
		struct json_object *kv;

		if (config_custom_id(k, id, sizeof(id)) == NULL)
			continue;
		snprintf(key, sizeof(key), "engines.%s.kind", id);
		if (!json_object_object_get_ex(set, key, &kv)) {
			log_warnx("engine %s: no engines.%s.kind set; "
			    "ignored", id, id);
			continue;
		}
		config_engine_add(arr, id, json_object_get_string(kv),
		    json_object_get_string(v), config_engine_setting(set, id,
		    "ca"));
	}
	json_object_put(set);
	return arr;
}

/*
 * The ids of the engines config_engines() may name, as {id: kind},
 * without resolving any host: what proxyd may report on.
 */
struct json_object *
config_engine_ids(void)
{
	struct json_object	*ids = json_object_new_object();
	struct json_object	*set = config_list("engines.");
	char			 key[128];
	size_t			 i;

	for (i = 0; i < NDEFAULTS; i++)
		json_object_object_add(ids, engine_defaults[i].kind,
		    json_object_new_string(engine_defaults[i].kind));
	json_object_object_foreach(set, k, v) {
		char		 id[40];
		struct json_object *kv;

		(void)v;
		if (config_custom_id(k, id, sizeof(id)) == NULL)
			continue;
		snprintf(key, sizeof(key), "engines.%s.kind", id);
		if (json_object_object_get_ex(set, key, &kv))
			json_object_object_add(ids, id, json_object_get(kv));
	}
	json_object_put(set);
	return ids;
}

/* The proxy.* limits, as numbers for proxyd (unset: its defaults). */
struct json_object *
config_limits(void)
{
	struct json_object	*set = config_list("proxy."), *o, *v;
	const struct limit_def	*ld;
	char			 key[64];
	long long		 n;
	int			 i;

	o = json_object_new_object();
	for (i = 0; i < limit_ndefs; i++) {
		ld = &limit_defs[i];
		snprintf(key, sizeof(key), "proxy.%s", ld->name);
		if (json_object_object_get_ex(set, key, &v) &&
		    limit_parse(ld, json_object_get_string(v), &n) == 0)
			json_object_object_add(o, ld->name,
			    json_object_new_int64(n));
	}
	json_object_put(set);
	/* The pools' rules ride along: proxyd reads them with these. */
	json_object_object_add(o, "pool_policy", json_object_new_string(
	    config_value("pools.policy", "least-outstanding", key,
	    sizeof(key))));
	json_object_object_add(o, "pool_affinity", json_object_new_string(
	    config_value("pools.affinity", "none", key, sizeof(key))));
	return o;
}

/* proxy.workers: auto (the online CPUs, 1 to FLM_WORKERS_MAX) or 1-64;
 * 0 if value is neither. */
int
config_workers_parse(const char *value)
{
	static long	 ncpu;		/* first asked before the sandbox */
	char		*end;
	long		 n;

	if (strcmp(value, "auto") == 0) {
		if (ncpu == 0 && (ncpu = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
			ncpu = 1;
		return ncpu > FLM_WORKERS_MAX ? FLM_WORKERS_MAX : (int)ncpu;
	}
	if (*value < '1' || *value > '9')
		return 0;
	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > FLM_WORKERS_MAX)
		return 0;
	return (int)n;
}

/*
 * The number of flm-proxyd workers proxy.workers asks for now; unset,
 * FLM_PROXY_WORKERS if valid (flmd(8)), else auto.
 */
int
config_workers(void)
{
	struct json_object	*o = config_list("proxy.workers"), *v;
	const char		*e;
	int			 n = 0;

	if (json_object_object_get_ex(o, "proxy.workers", &v))
		n = config_workers_parse(json_object_get_string(v));
	else if ((e = getenv("FLM_PROXY_WORKERS")) != NULL)
		n = config_workers_parse(e);
	json_object_put(o);
	return n > 0 ? n : config_workers_parse("auto");
}

/* One proxy.* limit: its stored value, else its default. */
long long
config_limit(const char *name)
{
	const struct limit_def	*ld = limit_find(name);
	struct json_object	*o, *v;
	long long		 n;

	if (ld == NULL)
		fatalx("config_limit: no limit %s", name);
	o = config_limits();
	n = json_object_object_get_ex(o, name, &v) ?
	    json_object_get_int64(v) : ld->def;
	json_object_put(o);
	return n;
}

/* One setting's stored value, copied to buf; def if it is not set. */
const char *
config_value(const char *key, const char *def, char *buf, size_t bufsz)
{
	struct json_object	*o = config_list(key), *v;
	const char		*r = def;

	if (json_object_object_get_ex(o, key, &v)) {
		snprintf(buf, bufsz, "%s", json_object_get_string(v));
		r = buf;
	}
	json_object_put(o);
	return r;
}

/* acme.dns_wait, seconds. */
int
config_dns_wait(void)
{
	char		 buf[16];
	long long	 x;

	x = config_int(config_value("acme.dns_wait", "60", buf, sizeof(buf)),
	    0, ACME_DNS_WAIT_MAX);
	return x < 0 ? 60 : (int)x;
}
