/*
 * flm: the admin command.  A thin client of flmd's control socket:
 * the daemon enforces, the command only helps.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flm.h"
#include "proxylimits.h"
#include "settings.h"

struct flm_cmd {
	const char	*name;		/* one to three words */
	int		(*fn)(struct cli *, int, char **);
	const char	*opts;		/* long options it takes, see cli_opts */
	int		 nargs;		/* positional arguments; -N: 0 to N */
	const char	*usage;
};

static int	cmd_status(struct cli *, int, char **);
static int	cmd_version(struct cli *, int, char **);
static int	cmd_key_create(struct cli *, int, char **);
static int	cmd_key_list(struct cli *, int, char **);
static int	cmd_engines(struct cli *, int, char **);
static int	cmd_engines_trust(struct cli *, int, char **);
static int	cmd_key_change(struct cli *, int, char **);
static int	cmd_proxy(struct cli *, int, char **);
static int	cmd_config(struct cli *, int, char **);
static int	cmd_config_keys(struct cli *, int, char **);
static void	cli_opts_security(struct cli *, const struct flm_cmd *, int);
static void	cli_opts_scope(struct cli *, const struct flm_cmd *, int);

static const struct flm_cmd cmds[] = {
	{ "status",		cmd_status,	"j",	0,
	    "status [--json]" },
	{ "version",		cmd_version,	"j",	0,
	    "version [--json]" },
	{ "doctor",		cmd_doctor,	"j",	0,
	    "doctor [--json]" },
	{ "api-keys create",	cmd_key_create,	"jleQJIUVZ",	0,
	    "api-keys create --label NAME [--expires WHEN] [--models GLOB]... "
	    "[--engines ID]... [--cidr CIDR]... [--endpoints LIST] "
	    "[--rpm N] [--tpm N] [--json]" },
	{ "api-keys scope",	cmd_key_change,	"jQJIUVZ",	1,
	    "api-keys scope ID|LABEL [--models GLOB]... [--engines ID]... "
	    "[--cidr CIDR]... [--endpoints LIST] [--rpm N] [--tpm N] "
	    "[--json]" },
	{ "api-keys list",	cmd_key_list,	"j",	0,
	    "api-keys list [--json]" },
	{ "api-keys revoke",	cmd_key_change,	"j",	1,
	    "api-keys revoke ID|LABEL [--json]" },
	{ "api-keys rotate",	cmd_key_change,	"jg",	1,
	    "api-keys rotate ID|LABEL [--grace DURATION] [--json]" },
	{ "engines detect",	cmd_engines,	"j",	0,
	    "engines detect [--json]" },
	{ "models list",	cmd_engines,	"jE",	0,
	    "models list [--engine ID] [--json]" },
	{ "engines trust",	cmd_engines_trust, "j",	1,
	    "engines trust ID [--json]" },
	{ "engines credential set", cmd_credential, "j", 1,
	    "engines credential set ID [--json]" },
	{ "engines credential clear", cmd_credential, "j", 1,
	    "engines credential clear ID [--json]" },
	{ "egress password set", cmd_credential, "j",	0,
	    "egress password set [--json]" },
	{ "egress password clear", cmd_credential, "j",	0,
	    "egress password clear [--json]" },
	{ "secrets list",	cmd_secrets,	"j",	0,
	    "secrets list [--json]" },
	{ "backup create",	cmd_backup,	"jxz",	0,
	    "backup create [--passphrase] [--reason WORD] [--json]" },
	{ "backup list",	cmd_backup,	"j",	0,
	    "backup list [--json]" },
	{ "backup restore",	cmd_backup,	"jx",	1,
	    "backup restore FILE|NAME [--passphrase] [--json]" },
	{ "security master-key rotate", cmd_master_rotate, "j", 0,
	    "security master-key rotate [--json]" },
	{ "check",		cmd_check,	"jxk",	0,
	    "check [--against DIR|FILE|NAME] [--passphrase] [--json]" },
	{ "secrets rotate",	cmd_secrets,	"j",	0,
	    "secrets rotate [--json]" },
	{ "proxy start",	cmd_proxy,	"jpbmNcWhiuyYGFR",	0,
	    "proxy start [--port N] [--bind ADDR] [--mode local-http|"
	    "dev-selfsigned|packaged-ca|https-acme] [--client-certs "
	    "off|optional|required] [--no-bearer] [--hsts SECONDS] "
	    "[--domain NAME]... [--email ADDR] [--acme-directory URL | "
	    "--acme-staging] [--challenge http-01|tls-alpn-01|dns-01] "
	    "[--acme-ca FILE] [--acme-http-port N] [--bench-no-auth] "
	    "[--json]" },
	{ "proxy stop",		cmd_proxy,	"jp",	0,
	    "proxy stop [--port N] [--json]" },
	{ "proxy status",	cmd_proxy,	"j",	0,
	    "proxy status [--json]" },
	{ "ca export",		cmd_ca,		"jO",	0,
	    "ca export [--out FILE] [--json]" },
	{ "ca status",		cmd_ca,		"j",	0,
	    "ca status [--json]" },
	{ "ca trust",		cmd_ca,		"j",	0,
	    "ca trust [--json]" },
	{ "ca untrust",		cmd_ca,		"j",	0,
	    "ca untrust [--json]" },
	{ "clients issue",	cmd_clients,	"jOdP",	1,
	    "clients issue LABEL --out PREFIX [--days N] "
	    "[--p12-password-file FILE] [--json]" },
	{ "clients list",	cmd_clients,	"j",	0,
	    "clients list [--json]" },
	{ "clients revoke",	cmd_clients,	"j",	1,
	    "clients revoke LABEL|SERIAL [--json]" },
	{ "config get",		cmd_config,	"j",	1,
	    "config get KEY [--json]" },
	{ "config unset",	cmd_config,	"j",	1,
	    "config unset KEY [--json]" },
	{ "config set",		cmd_config,	"j",	2,
	    "config set KEY VALUE [--json]" },
	{ "config list",	cmd_config,	"j",	0,
	    "config list [--json]" },
	{ "config keys",	cmd_config_keys, "j",	0,
	    "config keys [--json]" },
	{ "chat",		cmd_chat,	"jMSKp",	1,
	    "chat [--model M] [--stream] [--key KEY] [--port N] [--json] "
	    "MESSAGE" },
	{ "security policy show", cmd_policy_show, "j",	0,
	    "security policy show [--json]" },
	{ "security policy set", cmd_policy_set, "j",	-1,
	    "security policy set [FILE] [--json]" },
	{ "security ip allow",	cmd_ip,		"j",	1,
	    "security ip allow CIDR [--json]" },
	{ "security ip deny",	cmd_ip,		"j",	1,
	    "security ip deny CIDR [--json]" },
	{ "security cors",	cmd_cors,	"joXHAC", 0,
	    "security cors [--origins LIST] [--methods LIST] "
	    "[--headers LIST] [--max-age N] [--credentials yes|no] "
	    "[--json]" },
	{ "security rate-limit key", cmd_rate_limit, "jrT", 0,
	    "security rate-limit key [--requests N] [--tokens N] [--json]" },
	{ "security rate-limit ip", cmd_rate_limit, "jrT", 0,
	    "security rate-limit ip [--requests N] [--tokens N] [--json]" },
	{ "audit verify",	cmd_audit_verify, "j",	0,
	    "audit verify [--json]" },
	{ "audit archive",	cmd_audit_archive, "jB", 0,
	    "audit archive --before WHEN [--json]" },
	{ "audit tail",		cmd_audit_tail,	"jn",	0,
	    "audit tail [-n N | --count N] [--json]" },
	{ "usage",		cmd_usage_show,	"jKs",	0,
	    "usage [--key ID] [--since WHEN] [--json]" },
	{ "migrate legacy",	cmd_migrate,	"jfaO",	0,
	    "migrate legacy --from KIND:PATH [--from KIND:PATH]... [--apply] "
	    "[--out DIR] [--json]" },
	{ "console",		cmd_console,	"p",	0,
	    "console [--port N]" },
	{ "firewall preview",	cmd_firewall,	"w",	0,
	    "firewall preview [--backend nftables|ufw|firewalld]" },
	{ "firewall apply",	cmd_firewall,	"wt",	0,
	    "firewall apply [--backend nftables|ufw|firewalld] "
	    "[--timeout SECONDS]" },
	{ "firewall confirm",	cmd_firewall,	"",	0,
	    "firewall confirm" },
	{ "firewall rollback",	cmd_firewall,	"",	0,
	    "firewall rollback" },
};
#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void __attribute__((noreturn))
usage(void)
{
	size_t	 i;

	fprintf(stderr, "usage: flm [-D statedir] command [args]\n"
	    "       flm -T\n"
	    "commands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(stderr, "  flm %s\n", cmds[i].usage);
	fprintf(stderr, "See flm(1).\n");
	exit(FLM_EX_USAGE);
}

static void __attribute__((noreturn))
cmd_usage(const struct flm_cmd *cmd, const char *why)
{
	if (why != NULL)
		fprintf(stderr, "flm: %s\n", why);
	fprintf(stderr, "usage: flm %s\n", cmd->usage);
	exit(FLM_EX_USAGE);
}

void
cli_usage(struct cli *c, const char *why)
{
	cmd_usage(c->cmd, why);
}

/* A decimal integer min..max for option name, or a usage error. */
static long long
opt_num(const struct flm_cmd *cmd, const char *name, long long min,
    long long max)
{
	char		 why[80];
	char		*end;
	long long	 n;

	n = strtoll(optarg, &end, 10);
	if (*optarg == '\0' || *end != '\0' || n < min || n > max) {
		snprintf(why, sizeof(why), "--%s: expected %lld-%lld", name,
		    min, max);
		cmd_usage(cmd, why);
	}
	return n;
}

/*
 * flm -T: the command table for tools (the bash completion, make
 * check-man), one line a command, tab-separated: its words; its
 * options, as --name or, when it takes a value, --name=VALUE with
 * VALUE as the usage string names it; its positional arguments.  A
 * usage string that disagrees with the option letters or nargs is an
 * error: the manual and the completion are checked against it.
 */
static int	 table_bad;

static void
table_warn(const struct flm_cmd *cmd, const char *why, const char *what)
{
	fprintf(stderr, "flm: table: %s: %s %s\n", cmd->name, why, what);
	table_bad = 1;
}

/* Just past where opt stands in usage as a whole word; NULL if not. */
static const char *
usage_find(const char *usage, const char *opt)
{
	const char	*p;
	size_t		 l = strlen(opt);

	for (p = usage; (p = strstr(p, opt)) != NULL; p += l)
		if ((p == usage || p[-1] == ' ' || p[-1] == '[') &&
		    strchr(" ]|", p[l]) != NULL)
			return p + l;
	return NULL;
}

/* A value follows an option in usage: "--port N", not "--json]". */
static size_t
usage_value(const char *p)
{
	if (*p != ' ' || strchr("[-|", p[1]) != NULL)
		return 0;
	return strcspn(p + 1, " ]");
}

static void
table_flag(const struct flm_cmd *cmd, const char *flag, int has_arg,
    const char **sep)
{
	const char	*p;
	size_t		 l;

	if ((p = usage_find(cmd->usage, flag)) == NULL) {
		table_warn(cmd, "the usage string lacks", flag);
		return;
	}
	l = usage_value(p);
	if ((l > 0) != (has_arg == required_argument))
		table_warn(cmd, l > 0 ? "the usage string gives a value to" :
		    "the usage string gives no value to", flag);
	printf("%s%s%s%.*s", *sep, flag, l > 0 ? "=" : "", (int)l, p + 1);
	*sep = " ";
}

/* Whether flag (--name or -n) is one the command takes. */
static int
table_takes(const struct flm_cmd *cmd, const struct option *opts,
    const char *flag)
{
	if (strcmp(flag, "-n") == 0)
		return strchr(cmd->opts, 'n') != NULL;
	for (; opts->name != NULL; opts++)
		if (strncmp(flag, "--", 2) == 0 &&
		    strcmp(opts->name, flag + 2) == 0)
			return strchr(cmd->opts, opts->val) != NULL;
	return 0;
}

/* The positional arguments: what is neither a word, an option nor
 * an option's value. */
static void
table_args(const struct flm_cmd *cmd, const struct option *opts)
{
	char		 buf[512], flag[64], *tok, *last;
	const char	*p, *sep = "";
	int		 w = 1, skip = 0, req = 0, opt = 0;

	for (p = cmd->name; *p != '\0'; p++)
		w += *p == ' ';
	snprintf(buf, sizeof(buf), "%s", cmd->usage);
	for (tok = strtok_r(buf, " ", &last); tok != NULL;
	    tok = strtok_r(NULL, " ", &last)) {
		if (w > 0) {
			w--;
			continue;
		}
		if (skip && strchr("[-|", *tok) == NULL) {
			skip = 0;	/* the value of the option before */
			continue;
		}
		skip = 0;
		if (strcmp(tok, "|") == 0)
			continue;
		p = tok + strspn(tok, "[");
		if (*p == '-') {
			snprintf(flag, sizeof(flag), "%.*s",
			    (int)strcspn(p, "]"), p);
			if (!table_takes(cmd, opts, flag))
				table_warn(cmd, "the usage string names an "
				    "option it does not take:", flag);
			skip = tok[strlen(tok) - 1] != ']';
			continue;
		}
		printf("%s%s", sep, tok);
		sep = " ";
		if (*tok == '[')
			opt++;
		else
			req++;
	}
	if (cmd->nargs >= 0 ? (req != cmd->nargs || opt != 0) :
	    (req != 0 || opt != -cmd->nargs))
		table_warn(cmd, "the usage string disagrees with", "nargs");
}

static void
table_row(const struct flm_cmd *cmd, const struct option *opts)
{
	const char		*sep = "";
	const struct option	*o;
	const char		*l;

	printf("%s\t", cmd->name);
	for (l = cmd->opts; *l != '\0'; l++) {
		char	 letter[2] = { *l, '\0' };

		for (o = opts; o->name != NULL && o->val != *l; o++)
			;
		if (o->name == NULL)
			table_warn(cmd, "no long option has the letter",
			    letter);
	}
	for (o = opts; o->name != NULL; o++) {
		char	 flag[64];

		if (strchr(cmd->opts, o->val) == NULL)
			continue;
		snprintf(flag, sizeof(flag), "--%s", o->name);
		table_flag(cmd, flag, o->has_arg, &sep);
		if (o->val == 'n')	/* the one short option */
			table_flag(cmd, "-n", o->has_arg, &sep);
	}
	putchar('\t');
	table_args(cmd, opts);
	putchar('\n');
}

/*
 * The options a command allows, by letter: j --json, l --label,
 * p --port, b --bind, m --mode, e --expires, g --grace,
 * N --bench-no-auth, E --engine, M --model, S --stream, K --key,
 * o --origins, X --methods, H --headers, A --max-age, C --credentials,
 * r --requests, T --tokens, B --before, s --since, n -n/--count,
 * c --client-certs, W --no-bearer, h --hsts, O --out, d --days,
 * P --p12-password-file, w --backend, t --timeout, i --domain,
 * u --email, y --acme-directory, Y --acme-staging, G --challenge,
 * F --acme-ca, R --acme-http-port, f --from, a --apply.  The
 * daemon validates values; here we only refuse what cannot be a request
 * at all.
 */
static void
cli_opts(struct cli *c, const struct flm_cmd *cmd, int argc, char **argv)
{
	static const struct option	 opts[] = {
		{ "json",  no_argument,       NULL, 'j' },
		{ "label", required_argument, NULL, 'l' },
		{ "port",  required_argument, NULL, 'p' },
		{ "bind",  required_argument, NULL, 'b' },
		{ "mode",  required_argument, NULL, 'm' },
		{ "expires", required_argument, NULL, 'e' },
		{ "grace", required_argument, NULL, 'g' },
		{ "bench-no-auth", no_argument, NULL, 'N' },
		{ "engine", required_argument, NULL, 'E' },
		{ "model", required_argument, NULL, 'M' },
		{ "stream", no_argument, NULL, 'S' },
		{ "key", required_argument, NULL, 'K' },
		{ "origins", required_argument, NULL, 'o' },
		{ "methods", required_argument, NULL, 'X' },
		{ "headers", required_argument, NULL, 'H' },
		{ "max-age", required_argument, NULL, 'A' },
		{ "credentials", required_argument, NULL, 'C' },
		{ "requests", required_argument, NULL, 'r' },
		{ "tokens", required_argument, NULL, 'T' },
		{ "before", required_argument, NULL, 'B' },
		{ "since", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "client-certs", required_argument, NULL, 'c' },
		{ "no-bearer", no_argument, NULL, 'W' },
		{ "hsts", required_argument, NULL, 'h' },
		{ "out", required_argument, NULL, 'O' },
		{ "days", required_argument, NULL, 'd' },
		{ "p12-password-file", required_argument, NULL, 'P' },
		{ "backend", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "domain", required_argument, NULL, 'i' },
		{ "email", required_argument, NULL, 'u' },
		{ "acme-directory", required_argument, NULL, 'y' },
		{ "acme-staging", no_argument, NULL, 'Y' },
		{ "challenge", required_argument, NULL, 'G' },
		{ "acme-ca", required_argument, NULL, 'F' },
		{ "acme-http-port", required_argument, NULL, 'R' },
		{ "models", required_argument, NULL, 'Q' },
		{ "engines", required_argument, NULL, 'J' },
		{ "cidr", required_argument, NULL, 'I' },
		{ "endpoints", required_argument, NULL, 'U' },
		{ "rpm", required_argument, NULL, 'V' },
		{ "tpm", required_argument, NULL, 'Z' },
		{ "passphrase", no_argument, NULL, 'x' },
		{ "reason", required_argument, NULL, 'z' },
		{ "against", required_argument, NULL, 'k' },
		{ "from", required_argument, NULL, 'f' },
		{ "apply", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 }
	};
	int				 ch, n, max;

	/* flm -T: the options as getopt_long knows them, not a copy. */
	if (c == NULL) {
		table_row(cmd, opts);
		return;
	}
	optind = 0;	/* glibc: a full reset, permutation state too */
	opterr = 0;
	/* -n is the one short option: as in tail(1). */
	while ((ch = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (ch == '?' || ch == ':' || strchr(cmd->opts, ch) == NULL)
			cmd_usage(cmd, "unknown or incomplete option");
		switch (ch) {
		case 'j':
			c->json = 1;
			break;
		case 'l':
			c->label = optarg;
			break;
		case 'p':
			c->port = (int)opt_num(cmd, "port", 0, 65535);
			c->port_set = 1;
			break;
		case 'b':
			c->bind = optarg;
			break;
		case 'm':
			c->mode = optarg;
			break;
		case 'e':
			c->expires = optarg;
			break;
		case 'g':
			c->grace = optarg;
			break;
		case 'N':
			c->noauth = 1;
			break;
		case 'E':
			c->engine = optarg;
			break;
		case 'M':
			c->model = optarg;
			break;
		case 'S':
			c->stream = 1;
			break;
		case 'K':
			c->key = optarg;
			break;
		case 'c':
			c->client_certs = optarg;
			break;
		case 'W':
			c->nobearer = 1;
			break;
		case 'h':
			c->hsts = opt_num(cmd, "hsts", 0, 63072000);
			break;
		case 'O':
			c->out = optarg;
			break;
		case 'f':
			if (c->nfrom == (int)(sizeof(c->from) /
			    sizeof(c->from[0])))
				cmd_usage(cmd, "at most 16 --from");
			c->from[c->nfrom++] = optarg;
			break;
		case 'a':
			c->apply = 1;
			break;
		case 'd':
			c->days = opt_num(cmd, "days", 1, 3650);
			break;
		case 'P':
			c->p12pass = optarg;
			break;
		case 'w':
			c->backend = optarg;
			break;
		case 't':
			c->timeout = (int)opt_num(cmd, "timeout", 1, 3600);
			break;
		case 'i':
			if (c->ndomains == (int)(sizeof(c->domains) /
			    sizeof(c->domains[0])))
				cmd_usage(cmd, "at most 16 --domain");
			c->domains[c->ndomains++] = optarg;
			break;
		case 'u':
			c->email = optarg;
			break;
		case 'y':
			c->acme_dir = optarg;
			break;
		case 'Y':
			c->acme_staging = 1;
			break;
		case 'G':
			c->challenge = optarg;
			break;
		case 'F':
			c->acme_ca = optarg;
			break;
		case 'x':
			c->passphrase = 1;
			break;
		case 'z':
			c->reason = optarg;
			break;
		case 'k':
			c->against = optarg;
			break;
		case 'R':
			c->acme_http_port = (int)opt_num(cmd, "acme-http-port",
			    1, 65535);
			break;
		case 'Q':
		case 'J':
		case 'I':
		case 'U':
		case 'V':
		case 'Z':
			cli_opts_scope(c, cmd, ch);
			break;
		default:
			cli_opts_security(c, cmd, ch);
			break;
		}
	}
	n = argc - optind;
	max = cmd->nargs < 0 ? -cmd->nargs : cmd->nargs;
	if (n > max || (cmd->nargs >= 0 && n < cmd->nargs))
		cmd_usage(cmd, n > max ? "too many arguments" :
		    "missing argument");
	c->args = argv + optind;
	c->nargs = n;
}

/*
 * A key's scope, as the options give it: lists (repeated, or comma-
 * separated) and limits.  keyd checks every word of it.
 */
static void
cli_opts_scope(struct cli *c, const struct flm_cmd *cmd, int ch)
{
	static const struct {
		int		 ch;
		const char	*key;
	} lists[] = {
		{ 'Q', "models" }, { 'J', "engines" }, { 'I', "cidr" },
		{ 'U', "endpoints" },
	};
	struct json_object	*a;
	const char		*s, *e;
	size_t			 i;

	if (c->scope == NULL)
		c->scope = json_object_new_object();
	if (ch == 'V' || ch == 'Z') {
		json_object_object_add(c->scope, ch == 'V' ? "rpm" : "tpm",
		    json_object_new_int64(opt_num(cmd, ch == 'V' ? "rpm" :
		    "tpm", 1, 1000000000)));
		return;
	}
	for (i = 0; lists[i].ch != ch; i++)
		;
	if (!json_object_object_get_ex(c->scope, lists[i].key, &a)) {
		a = json_object_new_array();
		json_object_object_add(c->scope, lists[i].key, a);
	}
	for (s = optarg; *s != '\0'; s = *e != '\0' ? e + 1 : e) {
		e = strchrnul(s, ',');
		if (e > s)
			json_object_array_add(a, json_object_new_string_len(s,
			    (int)(e - s)));
	}
}

/* The options of security, audit and usage. */
static void
cli_opts_security(struct cli *c, const struct flm_cmd *cmd, int ch)
{
	switch (ch) {
	case 'o':
		c->origins = optarg;
		break;
	case 'X':
		c->methods = optarg;
		break;
	case 'H':
		c->headers = optarg;
		break;
	case 'A':
		c->max_age = opt_num(cmd, "max-age", 0, 86400);
		break;
	case 'C':
		if (strcmp(optarg, "yes") == 0)
			c->credentials = 1;
		else if (strcmp(optarg, "no") == 0)
			c->credentials = 0;
		else
			cmd_usage(cmd, "--credentials: expected yes or no");
		break;
	case 'r':
		c->requests = opt_num(cmd, "requests", 0, 1000000);
		break;
	case 'T':
		c->tokens = opt_num(cmd, "tokens", 0, 1000000000);
		break;
	case 'B':
		c->before = optarg;
		break;
	case 's':
		c->since = optarg;
		break;
	case 'n':
		c->count = (int)opt_num(cmd, "count", 1, 500);
		break;
	}
}

void
print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object	*v;

	/* A JSON null reads as absent. */
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "";
	return term_str(v);
}

/* Rows refused or a rollback seen by keyd: next to SAFE MODE. */
static void
status_integrity(struct json_object *p)
{
	struct json_object	*db, *in;
	int64_t			 bad;

	if (!json_object_object_get_ex(p, "database", &db) ||
	    !json_object_object_get_ex(db, "integrity", &in))
		return;
	bad = json_object_get_int64(json_object_object_get(in, "bad_keys"));
	if (bad > 0)
		printf("%s: %lld API key rows in %s fail their MAC and are "
		    "refused: see flm-keyd(8)\n", jstr(p, "name"),
		    (long long)bad, jstr(db, "db"));
	if (*jstr(in, "audit_problem"))
		printf("%s: audit trail: %s: see flm-keyd(8)\n",
		    jstr(p, "name"), jstr(in, "audit_problem"));
	if (strcmp(jstr(in, "policy"), "altered") == 0)
		printf("%s: the security policy in %s was altered outside "
		    "flm-keyd and is not applied: see flm-keyd(8)\n",
		    jstr(p, "name"), jstr(db, "db"));
}

/* One process row: a proxyd worker is flm-proxyd[N]. */
static void
status_proc_row(struct json_object *p)
{
	char	 name[32];

	if (json_object_object_get(p, "worker") != NULL)
		snprintf(name, sizeof(name), "%s[%s]", jstr(p, "name"),
		    jstr(p, "worker"));
	else
		snprintf(name, sizeof(name), "%s", jstr(p, "name"));
	printf("%-14s %8s %9ss %8s %-12s %s\n", name, jstr(p, "pid"),
	    jstr(p, "uptime_s"), jstr(p, "restarts"), jstr(p, "state"),
	    jstr(p, "version"));
}

static void
status_table(struct json_object *res)
{
	struct json_object	*procs, *p;
	size_t			 i, n;

	printf("mode %s, state %s\n", jstr(res, "mode"),
	    jstr(res, "state_dir"));
	printf("%-14s %8s %10s %8s %-12s %s\n", "PROCESS", "PID", "UPTIME",
	    "RESTARTS", "STATE", "VERSION");
	if (!json_object_object_get_ex(res, "processes", &procs))
		return;
	n = json_object_array_length(procs);
	for (i = 0; i < n; i++)
		status_proc_row(json_object_array_get_idx(procs, i));
	/* A database in safe mode is the first thing an admin must see. */
	for (i = 0; i < n; i++) {
		struct json_object	*db;

		p = json_object_array_get_idx(procs, i);
		if (json_object_object_get_ex(p, "database", &db) &&
		    json_object_get_boolean(json_object_object_get(db,
		    "safe_mode")))
			printf("%s: %s in SAFE MODE (read-only): %s\n",
			    jstr(p, "name"), jstr(db, "db"),
			    jstr(db, "reason"));
		status_integrity(p);
	}
	if (json_object_object_get_ex(res, "config_db", &procs) &&
	    json_object_get_boolean(json_object_object_get(procs,
	    "safe_mode")))
		printf("flmd: config.db in SAFE MODE (read-only): %s\n",
		    jstr(procs, "reason"));
}

static int
cmd_status(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_show(c, IMSG_CTL_STATUS, NULL, status_table);
}

/* Print a result as JSON (--json or not a terminal) or via table(). */
void
print_result(struct cli *c, struct json_object *res,
    void (*table)(struct json_object *))
{
	if (c->json || !isatty(STDOUT_FILENO) || table == NULL)
		print_json(res);
	else
		table(res);
}

/* The commonest command: one request (req freed), its answer printed. */
int
cli_show(struct cli *c, uint16_t type, struct json_object *req,
    void (*table)(struct json_object *))
{
	struct json_object	*res = NULL;
	int			 rc;

	rc = cli_request(c, type, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	print_result(c, res, table);
	json_object_put(res);
	return FLM_EX_OK;
}

static int
cmd_key_create(struct cli *c, int argc, char **argv)
{
	struct json_object	*req, *res = NULL;
	int			 rc;

	(void)argc;
	(void)argv;
	if (c->label == NULL)
		cli_usage(c, "--label is required");
	req = json_object_new_object();
	json_object_object_add(req, "label", json_object_new_string(c->label));
	if (c->expires != NULL)
		json_object_object_add(req, "expires",
		    json_object_new_string(c->expires));
	if (c->scope != NULL)
		json_object_object_add(req, "scope", json_object_get(c->scope));
	rc = cli_request(c, IMSG_CTL_KEY_CREATE, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if (c->json)
		print_json(res);
	else {
		printf("%s\n", jstr(res, "key"));
		fprintf(stderr, "flm: created key %s (label %s); it is shown "
		    "only this once: store it now\n", jstr(res, "id"),
		    jstr(res, "label"));
	}
	wipe_key(res);
	json_object_put(res);
	return FLM_EX_OK;
}

/* The key text is printed once and not left in freed memory. */
void
wipe_key(struct json_object *res)
{
	const char	*k = json_object_get_string(json_object_object_get(res,
			    "key"));

	if (k != NULL)
		explicit_bzero((char *)k, strlen(k));
}

const char *
jdash(struct json_object *o, const char *key)
{
	const char	*s = jstr(o, key);

	return *s ? s : "-";
}

static void
key_table(struct json_object *res)
{
	size_t	 i, n = json_object_array_length(res);

	if (n == 0) {
		printf("no keys; create one with: flm api-keys create "
		    "--label NAME\n");
		return;
	}
	printf("%-16s %-20s %-8s %-24s %-24s %-24s %-16s %s\n", "ID",
	    "LABEL", "STATE", "CREATED", "LAST USED", "EXPIRES", "LEGACY",
	    "SCOPE");
	for (i = 0; i < n; i++) {
		struct json_object	*k = json_object_array_get_idx(res, i);
		struct json_object	*sc = json_object_object_get(k, "scope");

		/* LEGACY: imported by flm migrate legacy, and how kept. */
		printf("%-16s %-20s %-8s %-24s %-24s %-24s %-16s %s\n",
		    jstr(k, "id"), jstr(k, "label"), jstr(k, "state"),
		    jstr(k, "created_at"), jdash(k, "last_used_at"),
		    jdash(k, "expires_at"), jdash(k, "legacy"),
		    sc != NULL ? json_object_to_json_string_ext(sc,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) :
		    "-");
	}
}

static int
cmd_key_list(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_show(c, IMSG_CTL_KEY_LIST, NULL, key_table);
}

/* revoke, rotate and scope: the daemon answers only once proxyd obeys. */
static int
cmd_key_change(struct cli *c, int argc, char **argv)
{
	struct json_object	*req, *res = NULL;
	int			 rotate = strcmp(argv[1], "rotate") == 0, rc;
	int			 scope = strcmp(argv[1], "scope") == 0;

	(void)argc;
	req = json_object_new_object();
	json_object_object_add(req, "key", json_object_new_string(c->args[0]));
	if (c->grace != NULL)
		json_object_object_add(req, "grace",
		    json_object_new_string(c->grace));
	/* scope with no option: the key's limits are lifted. */
	if (scope)
		json_object_object_add(req, "scope", json_object_get(c->scope));
	rc = cli_request(c, scope ? IMSG_CTL_KEY_SCOPE : rotate ?
	    IMSG_CTL_KEY_ROTATE : IMSG_CTL_KEY_REVOKE, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if (c->json)
		print_json(res);
	else if (scope)
		printf("key %s (%s): %s\n", jstr(res, "id"), jstr(res, "label"),
		    json_object_object_get(res, "scope") != NULL ?
		    json_object_to_json_string_ext(json_object_object_get(res,
		    "scope"), JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE) : "no limits of its own");
	else if (rotate) {
		printf("%s\n", jstr(res, "key"));
		fprintf(stderr, "flm: rotated key %s (%s); the new key is shown "
		    "only this once%s%s\n", jstr(res, "id"), jstr(res, "label"),
		    *jstr(res, "previous_secret_until") ?
		    "; the old one works until " : "; the old one no longer "
		    "works", jstr(res, "previous_secret_until"));
	} else
		printf("revoked key %s (%s)\n", jstr(res, "id"),
		    jstr(res, "label"));
	wipe_key(res);
	json_object_put(res);
	return FLM_EX_OK;
}

/*
 * Whom an engine's prompts go to: the listener's owner changed since
 * it was recorded (proxyd refuses it), or cannot be known (an engine
 * trusted by its address alone).
 */
static void
engines_warn(struct json_object *e)
{
	const char	*state = jstr(e, "state");

	if (strcmp(state, "OwnerChanged") == 0)
		fprintf(stderr, "flm: warning: engine %s: %s\n", jstr(e, "id"),
		    jstr(e, "reason"));
	else if (strncmp(state, "Running", 7) == 0 &&
	    json_object_object_get(e, "owner_uid") == NULL)
		fprintf(stderr, "flm: warning: engine %s: the owner of its "
		    "listener cannot be known; it is trusted by its address "
		    "alone\n", jstr(e, "id"));
}

static void
engines_table(struct json_object *res)
{
	size_t	 i, n = json_object_array_length(res);

	printf("%-10s %-9s %-26s %-16s %-8s %6s %8s %6s %-9s  %s\n", "ID",
	    "KIND", "URL", "STATE", "VERSION", "MODELS", "LATENCY", "OWNER",
	    "BREAKER", "REASON");
	for (i = 0; i < n; i++) {
		struct json_object	*e = json_object_array_get_idx(res, i);
		struct json_object	*b = json_object_object_get(e, "breaker");

		printf("%-10s %-9s %-26s %-16s %-8s %6s %6sms %6s %-9s  %s\n",
		    jstr(e, "id"), jstr(e, "kind"), jstr(e, "base_url"),
		    jstr(e, "state"), jdash(e, "version"),
		    jstr(e, "model_count"), jstr(e, "latency_ms"),
		    jdash(e, "owner_uid"), b != NULL ? jstr(b, "state") : "-",
		    jstr(e, "reason"));
	}
}

static void
trust_table(struct json_object *res)
{
	printf("engine %s: recorded listener owner %s forgotten; the next "
	    "probe records the present one\n", jstr(res, "engine"),
	    jdash(res, "forgotten_owner_uid"));
}

/* flm engines trust ID: accept a new owner of the engine's listener. */
static int
cmd_engines_trust(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = json_object_new_object();

	(void)argc;
	(void)argv;
	json_object_object_add(req, "engine",
	    json_object_new_string(c->args[0]));
	return cli_show(c, IMSG_CTL_ENGINES_TRUST, req, trust_table);
}

static void
models_table(struct json_object *res)
{
	size_t	 i, n = json_object_array_length(res);

	if (n == 0) {
		printf("no models: is an engine running? see flm engines "
		    "detect\n");
		return;
	}
	printf("%-48s %-16s %-8s %-10s %-8s %s\n", "MODEL", "ENGINE STATE",
	    "QUANT", "PARAMS", "CONTEXT", "POOL");
	for (i = 0; i < n; i++) {
		struct json_object	*m = json_object_array_get_idx(res, i);
		struct json_object	*p = json_object_object_get(m, "pool");
		char			 pool[256] = "-";
		size_t			 j, off = 0;

		for (j = 0; p != NULL && j < json_object_array_length(p) &&
		    off < sizeof(pool); j++)
			off += (size_t)snprintf(pool + off, sizeof(pool) - off,
			    "%s%s", j ? "," : "", json_object_get_string(
			    json_object_array_get_idx(p, j)));
		printf("%-48s %-16s %-8s %-10s %-8s %s\n", jstr(m, "id"),
		    jstr(m, "engine_state"), jdash(m, "quantization"),
		    jdash(m, "parameters"), jdash(m, "context_length"), pool);
	}
}

static int
cmd_engines(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = NULL, *res = NULL;
	int			 models = strcmp(argv[0], "models") == 0, rc;
	size_t			 i;

	(void)argc;
	if (models) {
		req = json_object_new_object();
		if (c->engine != NULL)
			json_object_object_add(req, "engine",
			    json_object_new_string(c->engine));
	}
	if (models)
		return cli_show(c, IMSG_CTL_MODELS_LIST, req, models_table);
	if ((rc = cli_request(c, IMSG_CTL_ENGINES_DETECT, NULL, &res)) != 0)
		return rc;
	print_result(c, res, engines_table);
	/* Warnings go to stderr whatever the format of the answer. */
	for (i = 0; i < json_object_array_length(res); i++)
		engines_warn(json_object_array_get_idx(res, i));
	json_object_put(res);
	return FLM_EX_OK;
}

static void
proxy_table(struct json_object *res)
{
	struct json_object	*w;
	size_t			 i, n;

	if (!json_object_is_type(res, json_type_array)) {
		print_json(res);
		return;
	}
	n = json_object_array_length(res);
	if (n == 0) {
		printf("no proxy is running\n");
		return;
	}
	printf("%-24s %-14s %8s %10s %-8s %-16s %s\n", "ID", "MODE", "PID",
	    "REQUESTS", "EGRESS", "KEY CHECKS", "CLIENT CERTS");
	for (i = 0; i < n; i++) {
		struct json_object	*h = json_object_array_get_idx(res, i);

		printf("%-24s %-14s %8s %10s %-8s %-16s %s\n", jstr(h, "id"),
		    jstr(h, "mode"), jstr(h, "pid"), jstr(h, "requests"),
		    jstr(h, "egress"), jstr(h, "key_checks"),
		    jstr(h, "client_certs"));
		proxy_tls_lines(h);
	}
	/* Every handle is served by the same workers: shown once. */
	if (!json_object_object_get_ex(json_object_array_get_idx(res, 0),
	    "worker_processes", &w))
		return;
	printf("\n%-14s %8s %10s %8s %-12s %s\n", "WORKER", "PID", "UPTIME",
	    "RESTARTS", "STATE", "VERSION");
	for (i = 0; i < json_object_array_length(w); i++)
		status_proc_row(json_object_array_get_idx(w, i));
}

/* The PEM of --acme-ca, read here: flmd may not be able to. */
static char *
read_pem(const char *path)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(path, "re")) == NULL) {
		fprintf(stderr, "flm: --acme-ca %s: %s\n", path,
		    strerror(errno));
		return NULL;
	}
	if ((buf = malloc(64 * 1024 + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, 64 * 1024 + 1, f);
	fclose(f);
	if (n > 64 * 1024) {
		fprintf(stderr, "flm: --acme-ca %s: larger than 64 KiB\n",
		    path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* --domain and the other https-acme options as {acme: {...}}. */
static int
proxy_acme_args(struct cli *c, struct json_object *req)
{
	struct json_object	*a, *d;
	char			*pem;
	int			 i;

	if (c->ndomains == 0 && c->email == NULL && c->acme_dir == NULL &&
	    !c->acme_staging && c->challenge == NULL && c->acme_ca == NULL &&
	    c->acme_http_port == 0)
		return FLM_EX_OK;
	if (c->acme_dir != NULL && c->acme_staging) {
		fprintf(stderr, "flm: --acme-directory or --acme-staging, "
		    "not both\n");
		return FLM_EX_USAGE;
	}
	a = json_object_new_object();
	d = json_object_new_array();
	for (i = 0; i < c->ndomains; i++)
		json_object_array_add(d, json_object_new_string(c->domains[i]));
	json_object_object_add(a, "domains", d);
	if (c->email != NULL)
		json_object_object_add(a, "email",
		    json_object_new_string(c->email));
	if (c->acme_dir != NULL)
		json_object_object_add(a, "directory",
		    json_object_new_string(c->acme_dir));
	if (c->acme_staging)
		json_object_object_add(a, "staging",
		    json_object_new_boolean(1));
	if (c->challenge != NULL)
		json_object_object_add(a, "challenge",
		    json_object_new_string(c->challenge));
	if (c->acme_http_port != 0)
		json_object_object_add(a, "http_port",
		    json_object_new_int(c->acme_http_port));
	if (c->acme_ca != NULL) {
		if ((pem = read_pem(c->acme_ca)) == NULL) {
			json_object_put(a);
			return FLM_EX_ERROR;
		}
		json_object_object_add(a, "ca", json_object_new_string(pem));
		free(pem);
	}
	json_object_object_add(req, "acme", a);
	return FLM_EX_OK;
}

static int
cmd_proxy(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = NULL, *res = NULL;
	uint16_t		 type;
	int			 rc;

	(void)argc;
	if (strcmp(argv[1], "status") == 0)
		type = IMSG_CTL_PROXY_STATUS;
	else {
		type = strcmp(argv[1], "start") == 0 ? IMSG_CTL_PROXY_START :
		    IMSG_CTL_PROXY_STOP;
		req = json_object_new_object();
		if (c->port_set)
			json_object_object_add(req, "port",
			    json_object_new_int(c->port));
		if (c->bind)
			json_object_object_add(req, "bind",
			    json_object_new_string(c->bind));
		if (c->mode)
			json_object_object_add(req, "mode",
			    json_object_new_string(c->mode));
		if (c->noauth)
			json_object_object_add(req, "auth",
			    json_object_new_boolean(0));
		if (c->client_certs)
			json_object_object_add(req, "client_certs",
			    json_object_new_string(c->client_certs));
		if (c->nobearer)
			json_object_object_add(req, "bearer",
			    json_object_new_boolean(0));
		if (c->hsts >= 0)
			json_object_object_add(req, "hsts",
			    json_object_new_int((int)c->hsts));
		if ((rc = proxy_acme_args(c, req)) != FLM_EX_OK) {
			json_object_put(req);
			return rc;
		}
	}
	rc = cli_request(c, type, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if (type == IMSG_CTL_PROXY_START && !c->json &&
	    isatty(STDOUT_FILENO)) {
		printf("proxy listening on %s://%s:%s/v1 (%s)\n",
		    strcmp(jstr(res, "mode"), "local-http") == 0 ? "http" :
		    "https", jstr(res, "bind"), jstr(res, "port"),
		    jstr(res, "mode"));
		proxy_tls_lines(res);
	} else
		print_result(c, res, proxy_table);
	json_object_put(res);
	return FLM_EX_OK;
}

static void
config_table(struct json_object *res)
{
	json_object_object_foreach(res, k, v) {
		if (v == NULL)
			printf("%s unset\n", k);
		else
			printf("%s = %s\n", k, term_str(v));
	}
}

static int
cmd_config(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = NULL;
	uint16_t		 type;

	(void)argc;
	if (strcmp(argv[1], "list") == 0)
		type = IMSG_CTL_CONFIG_LIST;
	else {
		type = strcmp(argv[1], "get") == 0 ? IMSG_CTL_CONFIG_GET :
		    IMSG_CTL_CONFIG_SET;
		req = json_object_new_object();
		json_object_object_add(req, "key",
		    json_object_new_string(c->args[0]));
		/* unset: a null value, the setting forgotten. */
		if (type == IMSG_CTL_CONFIG_SET)
			json_object_object_add(req, "value",
			    strcmp(argv[1], "unset") == 0 ? NULL :
			    json_object_new_string(c->args[1]));
	}
	return cli_show(c, type, req, config_table);
}

static void
keys_table(struct json_object *res)
{
	size_t	 i, n = json_object_array_length(res);

	for (i = 0; i < n; i++) {
		struct json_object	*k = json_object_array_get_idx(res, i);

		printf("%-24s %s\n", jstr(k, "key"), jstr(k, "value"));
	}
}

static void
keys_add(struct json_object *arr, const char *key, const char *value)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "value", json_object_new_string(value));
	json_object_array_add(arr, o);
}

/*
 * flm config keys: what config set accepts, from the table flmd
 * validates by (lib/settings.c); no daemon is asked.
 */
static int
cmd_config_keys(struct cli *c, int argc, char **argv)
{
	struct json_object	*arr = json_object_new_array(), *o;
	const struct limit_def	*ld;
	char			 key[80], val[160];
	int			 i, j;

	(void)argc;
	(void)argv;
	for (i = 0; i < setting_ndefs; i++) {
		if (setting_defs[i].kind != SETTING_PROXY_LIMIT) {
			keys_add(arr, setting_defs[i].key,
			    setting_defs[i].value);
			continue;
		}
		for (j = 0; j < limit_ndefs; j++) {
			ld = &limit_defs[j];
			snprintf(key, sizeof(key), "proxy.%s", ld->name);
			snprintf(val, sizeof(val), "%lld-%lld %s, default %lld",
			    ld->min, ld->max, ld->unit, ld->def);
			keys_add(arr, key, val);
			o = json_object_array_get_idx(arr,
			    json_object_array_length(arr) - 1);
			json_object_object_add(o, "min",
			    json_object_new_int64(ld->min));
			json_object_object_add(o, "max",
			    json_object_new_int64(ld->max));
			json_object_object_add(o, "default",
			    json_object_new_int64(ld->def));
		}
	}
	print_result(c, arr, keys_table);
	json_object_put(arr);
	return FLM_EX_OK;
}

static int
cmd_version(struct cli *c, int argc, char **argv)
{
	struct json_object	*o;

	(void)argc;
	(void)argv;
	if (!c->json) {
		printf("flm %s (protocol %d)\n", PACKAGE_VERSION,
		    FLM_PROTO_VERSION);
		return FLM_EX_OK;
	}
	o = json_object_new_object();
	json_object_object_add(o, "version",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "protocol",
	    json_object_new_int(FLM_PROTO_VERSION));
	print_json(o);
	json_object_put(o);
	return FLM_EX_OK;
}

/* How many words of argv name is, all of them; 0 if it is not. */
static int
cmd_match(const char *name, int argc, char **argv)
{
	size_t	 l;
	int	 w;

	for (w = 0; *name != '\0'; w++) {
		l = strcspn(name, " ");
		if (w == argc || strncmp(argv[w], name, l) != 0 ||
		    argv[w][l] != '\0')
			return 0;
		name += l + (name[l] == ' ');
	}
	return w;
}

int
main(int argc, char *argv[])
{
	struct cli	 cli;
	size_t		 i;
	int		 ch, words;

	memset(&cli, 0, sizeof(cli));
	cli.max_age = cli.requests = cli.tokens = cli.credentials = -1;
	cli.hsts = cli.days = -1;
	/* '+': stop at the command word; its options are its own. */
	while ((ch = getopt(argc, argv, "+D:T")) != -1) {
		switch (ch) {
		case 'D':
			cli.dir = optarg;
			break;
		case 'T':
			for (i = 0; i < NCMDS; i++)
				cli_opts(NULL, &cmds[i], 0, NULL);
			return table_bad ? FLM_EX_ERROR : FLM_EX_OK;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	for (i = 0; i < NCMDS; i++) {
		if ((words = cmd_match(cmds[i].name, argc, argv)) == 0)
			continue;
		cli.cmd = &cmds[i];
		cli.cmd_name = cmds[i].name;
		cli_opts(&cli, &cmds[i], argc - words + 1, argv + words - 1);
		ch = cmds[i].fn(&cli, argc, argv);
		json_object_put(cli.scope);
		return ch;
	}
	fprintf(stderr, "flm: unknown command '%s%s%s'\n", argv[0],
	    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	usage();
}
