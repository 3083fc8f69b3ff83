/*
 * flm: the admin command.  A thin client of flmd's control socket:
 * the daemon enforces, the command only helps.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flm.h"

struct flm_cmd {
	const char	*name;		/* one or two words */
	int		(*fn)(struct cli *, int, char **);
	const char	*opts;		/* long options it takes, see cli_opts */
	int		 nargs;		/* positional arguments */
	const char	*usage;
};

static int	cmd_status(struct cli *, int, char **);
static int	cmd_version(struct cli *, int, char **);
static int	cmd_key_create(struct cli *, int, char **);
static int	cmd_key_list(struct cli *, int, char **);
static int	cmd_engines(struct cli *, int, char **);
static int	cmd_key_change(struct cli *, int, char **);
static int	cmd_proxy(struct cli *, int, char **);
static int	cmd_config(struct cli *, int, char **);
static void	wipe_key(struct json_object *);
static void	print_result(struct cli *, struct json_object *,
		    void (*)(struct json_object *));

static const struct flm_cmd cmds[] = {
	{ "status",		cmd_status,	"j",	0,
	    "status [--json]" },
	{ "version",		cmd_version,	"j",	0,
	    "version [--json]" },
	{ "api-keys create",	cmd_key_create,	"jle",	0,
	    "api-keys create --label NAME [--expires WHEN] [--json]" },
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
	{ "proxy start",	cmd_proxy,	"jpbmn",	0,
	    "proxy start [--port N] [--bind ADDR] [--mode local-http] "
	    "[--bench-no-auth] [--json]" },
	{ "proxy stop",		cmd_proxy,	"jp",	0,
	    "proxy stop [--port N] [--json]" },
	{ "proxy status",	cmd_proxy,	"j",	0,
	    "proxy status [--json]" },
	{ "config get",		cmd_config,	"j",	1,
	    "config get KEY [--json]" },
	{ "config set",		cmd_config,	"j",	2,
	    "config set KEY VALUE [--json]" },
	{ "config list",	cmd_config,	"j",	0,
	    "config list [--json]" },
	{ "chat",		cmd_chat,	"jMSKp",	1,
	    "chat [--model M] [--stream] [--key KEY] [--port N] [--json] "
	    "MESSAGE" },
};
#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void __attribute__((noreturn))
usage(void)
{
	size_t	 i;

	fprintf(stderr, "usage: flm [-D statedir] command [args]\n"
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

/*
 * The options a command allows, by letter: j --json, l --label,
 * p --port, b --bind, m --mode, e --expires, g --grace,
 * n --bench-no-auth, E --engine, M --model, S --stream, K --key.  The
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
		{ "bench-no-auth", no_argument, NULL, 'n' },
		{ "engine", required_argument, NULL, 'E' },
		{ "model", required_argument, NULL, 'M' },
		{ "stream", no_argument, NULL, 'S' },
		{ "key", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 }
	};
	char				*end;
	long				 n;
	int				 ch;

	optind = 0;	/* glibc: a full reset, permutation state too */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
			n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || n < 0 ||
			    n > 65535)
				cmd_usage(cmd, "--port: expected 0-65535");
			c->port = (int)n;
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
		case 'n':
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
		}
	}
	if (argc - optind != cmd->nargs)
		cmd_usage(cmd, argc - optind > cmd->nargs ?
		    "too many arguments" : "missing argument");
	c->args = argv + optind;
}

void
print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object	*v;

	/* A JSON null reads as absent. */
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "";
	return json_object_get_string(v);
}

static void
status_table(struct json_object *res)
{
	struct json_object	*procs, *p;
	size_t			 i, n;

	printf("mode %s, state %s\n", jstr(res, "mode"),
	    jstr(res, "state_dir"));
	printf("%-12s %8s %10s %8s %-12s %s\n", "PROCESS", "PID", "UPTIME",
	    "RESTARTS", "STATE", "VERSION");
	if (!json_object_object_get_ex(res, "processes", &procs))
		return;
	n = json_object_array_length(procs);
	for (i = 0; i < n; i++) {
		p = json_object_array_get_idx(procs, i);
		printf("%-12s %8s %9ss %8s %-12s %s\n", jstr(p, "name"),
		    jstr(p, "pid"), jstr(p, "uptime_s"), jstr(p, "restarts"),
		    jstr(p, "state"), jstr(p, "version"));
	}
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
	struct json_object	*res = NULL;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_request(c, IMSG_CTL_STATUS, NULL, &res)) != 0)
		return rc;
	print_result(c, res, status_table);
	json_object_put(res);
	return FLM_EX_OK;
}

/* Print a result as JSON (--json or not a terminal) or via table(). */
static void
print_result(struct cli *c, struct json_object *res,
    void (*table)(struct json_object *))
{
	if (c->json || !isatty(STDOUT_FILENO) || table == NULL)
		print_json(res);
	else
		table(res);
}

static int
cmd_key_create(struct cli *c, int argc, char **argv)
{
	struct json_object	*req, *res = NULL;
	int			 rc;

	(void)argc;
	(void)argv;
	if (c->label == NULL)
		cmd_usage(&cmds[2], "--label is required");
	req = json_object_new_object();
	json_object_object_add(req, "label", json_object_new_string(c->label));
	if (c->expires != NULL)
		json_object_object_add(req, "expires",
		    json_object_new_string(c->expires));
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
static void
wipe_key(struct json_object *res)
{
	const char	*k = jstr(res, "key");

	explicit_bzero((char *)k, strlen(k));
}

static const char *
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
	printf("%-16s %-20s %-8s %-24s %-24s %s\n", "ID", "LABEL", "STATE",
	    "CREATED", "LAST USED", "EXPIRES");
	for (i = 0; i < n; i++) {
		struct json_object	*k = json_object_array_get_idx(res, i);

		printf("%-16s %-20s %-8s %-24s %-24s %s\n", jstr(k, "id"),
		    jstr(k, "label"), jstr(k, "state"), jstr(k, "created_at"),
		    jdash(k, "last_used_at"), jdash(k, "expires_at"));
	}
}

static int
cmd_key_list(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_request(c, IMSG_CTL_KEY_LIST, NULL, &res)) != 0)
		return rc;
	print_result(c, res, key_table);
	json_object_put(res);
	return FLM_EX_OK;
}

/* revoke and rotate: the daemon answers only once proxyd obeys. */
static int
cmd_key_change(struct cli *c, int argc, char **argv)
{
	struct json_object	*req, *res = NULL;
	int			 rotate = strcmp(argv[1], "rotate") == 0, rc;

	(void)argc;
	req = json_object_new_object();
	json_object_object_add(req, "key", json_object_new_string(c->args[0]));
	if (c->grace != NULL)
		json_object_object_add(req, "grace",
		    json_object_new_string(c->grace));
	rc = cli_request(c, rotate ? IMSG_CTL_KEY_ROTATE : IMSG_CTL_KEY_REVOKE,
	    req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if (c->json)
		print_json(res);
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

static void
engines_table(struct json_object *res)
{
	size_t	 i, n = json_object_array_length(res);

	printf("%-10s %-9s %-26s %-16s %-8s %6s %8s  %s\n", "ID", "KIND",
	    "URL", "STATE", "VERSION", "MODELS", "LATENCY", "REASON");
	for (i = 0; i < n; i++) {
		struct json_object	*e = json_object_array_get_idx(res, i);

		printf("%-10s %-9s %-26s %-16s %-8s %6s %6sms  %s\n",
		    jstr(e, "id"), jstr(e, "kind"), jstr(e, "base_url"),
		    jstr(e, "state"), jdash(e, "version"),
		    jstr(e, "model_count"), jstr(e, "latency_ms"),
		    jstr(e, "reason"));
	}
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
	printf("%-48s %-16s %-8s %-10s %s\n", "MODEL", "ENGINE STATE",
	    "QUANT", "PARAMS", "CONTEXT");
	for (i = 0; i < n; i++) {
		struct json_object	*m = json_object_array_get_idx(res, i);

		printf("%-48s %-16s %-8s %-10s %s\n", jstr(m, "id"),
		    jstr(m, "engine_state"), jdash(m, "quantization"),
		    jdash(m, "parameters"), jdash(m, "context_length"));
	}
}

static int
cmd_engines(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = NULL, *res = NULL;
	int			 models = strcmp(argv[0], "models") == 0, rc;

	(void)argc;
	if (models) {
		req = json_object_new_object();
		if (c->engine != NULL)
			json_object_object_add(req, "engine",
			    json_object_new_string(c->engine));
	}
	rc = cli_request(c, models ? IMSG_CTL_MODELS_LIST :
	    IMSG_CTL_ENGINES_DETECT, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	print_result(c, res, models ? models_table : engines_table);
	json_object_put(res);
	return FLM_EX_OK;
}

static void
proxy_table(struct json_object *res)
{
	size_t	 i, n;

	if (!json_object_is_type(res, json_type_array)) {
		print_json(res);
		return;
	}
	n = json_object_array_length(res);
	if (n == 0) {
		printf("no proxy is running\n");
		return;
	}
	printf("%-24s %-12s %8s %10s %-8s %-16s %s\n", "ID", "MODE", "PID",
	    "REQUESTS", "EGRESS", "KEY CHECKS", "CERTIFICATE");
	for (i = 0; i < n; i++) {
		struct json_object	*h = json_object_array_get_idx(res, i);

		printf("%-24s %-12s %8s %10s %-8s %-16s %s\n", jstr(h, "id"),
		    jstr(h, "mode"), jstr(h, "pid"), jstr(h, "requests"),
		    jstr(h, "egress"),
		    jstr(h, "key_checks"), jstr(h, "certificate"));
	}
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
	}
	rc = cli_request(c, type, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if (type == IMSG_CTL_PROXY_START && !c->json && isatty(STDOUT_FILENO))
		printf("proxy listening on http://%s:%s/v1 (%s)\n",
		    jstr(res, "bind"), jstr(res, "port"), jstr(res, "mode"));
	else
		print_result(c, res, proxy_table);
	json_object_put(res);
	return FLM_EX_OK;
}

static void
config_table(struct json_object *res)
{
	json_object_object_foreach(res, k, v)
		printf("%s = %s\n", k, json_object_get_string(v));
}

static int
cmd_config(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = NULL, *res = NULL;
	uint16_t		 type;
	int			 rc;

	(void)argc;
	if (strcmp(argv[1], "list") == 0)
		type = IMSG_CTL_CONFIG_LIST;
	else {
		type = strcmp(argv[1], "get") == 0 ? IMSG_CTL_CONFIG_GET :
		    IMSG_CTL_CONFIG_SET;
		req = json_object_new_object();
		json_object_object_add(req, "key",
		    json_object_new_string(c->args[0]));
		if (type == IMSG_CTL_CONFIG_SET)
			json_object_object_add(req, "value",
			    json_object_new_string(c->args[1]));
	}
	rc = cli_request(c, type, req, &res);
	json_object_put(req);
	if (rc != 0)
		return rc;
	print_result(c, res, config_table);
	json_object_put(res);
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

int
main(int argc, char *argv[])
{
	struct cli	 cli;
	size_t		 i;
	int		 ch;

	memset(&cli, 0, sizeof(cli));
	/* '+': stop at the command word; its options are its own. */
	while ((ch = getopt(argc, argv, "+D:")) != -1) {
		switch (ch) {
		case 'D':
			cli.dir = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	for (i = 0; i < NCMDS; i++) {
		const char	*sp = strchr(cmds[i].name, ' ');
		size_t		 l = sp ? (size_t)(sp - cmds[i].name) :
				    strlen(cmds[i].name);
		int		 words = sp ? 2 : 1;

		if (strncmp(argv[0], cmds[i].name, l) != 0 ||
		    argv[0][l] != '\0')
			continue;
		if (sp != NULL && (argc < 2 || strcmp(argv[1], sp + 1) != 0))
			continue;
		cli_opts(&cli, &cmds[i], argc - words + 1, argv + words - 1);
		return cmds[i].fn(&cli, argc, argv);
	}
	fprintf(stderr, "flm: unknown command '%s%s%s'\n", argv[0],
	    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	usage();
}
