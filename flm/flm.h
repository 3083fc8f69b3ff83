#ifndef FLM_CLI_H
#define FLM_CLI_H

#include <stdint.h>

#include "flm_msg.h"

struct json_object;

/* Exit codes: stable, documented in flm(1). */
#define FLM_EX_OK		0
#define FLM_EX_ERROR		1	/* the daemon refused or failed */
#define FLM_EX_USAGE		2
#define FLM_EX_NODAEMON		3	/* flmd not running / unreachable */
#define FLM_EX_PERM		4	/* not allowed to talk to flmd */

struct cli {
	const char	*dir;
	int		 json;
	const char	*label;
	const char	*bind;
	const char	*mode;
	int		 port;
	int		 port_set;
	const char	*expires;
	const char	*grace;
	int		 noauth;
	const char	*engine;
	const char	*model;
	char		*key;		/* blanked once read, see flm_chat.c */
	int		 stream;
	char		**args;		/* positional arguments */
};

/* flm.c */
void	print_json(struct json_object *);

/* flm_chat.c */
int	cmd_chat(struct cli *, int, char **);

/* flm_ctl.c */
int	cli_request(struct cli *, uint16_t, struct json_object *,
	    struct json_object **);

#endif
