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
	const char	*name;
	int		(*fn)(struct cli *, int, char **);
	const char	*usage;
};

static int	cmd_status(struct cli *, int, char **);
static int	cmd_version(struct cli *, int, char **);

static const struct flm_cmd cmds[] = {
	{ "status",	cmd_status,	"status [--json]" },
	{ "version",	cmd_version,	"version [--json]" },
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

/* Every command takes --json; anything else is a usage error. */
static int
cli_opts(struct cli *c, const char *usage_line, int argc, char **argv)
{
	static const struct option	 opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	int				 ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			c->json = 1;
			break;
		default:
			fprintf(stderr, "usage: flm %s\n", usage_line);
			exit(FLM_EX_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "flm: unexpected argument '%s'\n"
		    "usage: flm %s\n", argv[optind], usage_line);
		exit(FLM_EX_USAGE);
	}
	return 0;
}

static void
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

	if (!json_object_object_get_ex(o, key, &v))
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
}

static int
cmd_status(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL;
	int			 rc;

	cli_opts(c, "status [--json]", argc, argv);
	if ((rc = cli_request(c, IMSG_CTL_STATUS, NULL, &res)) != 0)
		return rc;
	if (c->json || !isatty(STDOUT_FILENO))
		print_json(res);
	else
		status_table(res);
	json_object_put(res);
	return FLM_EX_OK;
}

static int
cmd_version(struct cli *c, int argc, char **argv)
{
	struct json_object	*o;

	cli_opts(c, "version [--json]", argc, argv);
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
	for (i = 0; i < NCMDS; i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(&cli, argc, argv);
	fprintf(stderr, "flm: unknown command '%s'\n", argv[0]);
	usage();
}
