#ifndef FLM_CLI_H
#define FLM_CLI_H

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>

#include "flm_msg.h"

struct json_object;
struct flm_cmd;

/* Exit codes: stable, documented in flm(1). */
#define FLM_EX_OK		0
#define FLM_EX_ERROR		1	/* the daemon refused or failed */
#define FLM_EX_USAGE		2
#define FLM_EX_NODAEMON		3	/* flmd not running / unreachable */
#define FLM_EX_PERM		4	/* not allowed to talk to flmd */
#define FLM_EX_BUSY		5	/* firewall apply: another awaits
					 * confirm */

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
	char		*key;		/* chat: blanked once read, see
					 * flm_chat.c; usage: a key id */
	int		 stream;
	const char	*origins;	/* security cors: comma-separated */
	const char	*methods;
	const char	*headers;
	long long	 max_age;	/* -1: not given, as below */
	int		 credentials;
	long long	 requests;
	long long	 tokens;
	const char	*before;
	const char	*since;
	int		 count;		/* 0: not given */
	const char	*client_certs;	/* proxy start */
	int		 nobearer;
	long long	 hsts;		/* -1: not given */
	const char	*out;		/* ca export, clients issue */
	long long	 days;		/* -1: not given */
	const char	*p12pass;	/* a file holding the password */
	const char	*backend;	/* firewall: nftables, ufw, firewalld */
	int		 timeout;	/* firewall apply: 0 not given */
	const char	*domains[16];	/* proxy start --mode https-acme */
	int		 ndomains;
	const char	*email;
	const char	*acme_dir;
	int		 acme_staging;
	const char	*challenge;
	const char	*acme_ca;	/* a PEM file */
	int		 acme_http_port;	/* 0: not given */
	struct json_object *scope;	/* api-keys: --models, --engines, ... */
	int		 passphrase;	/* backup: --passphrase */
	const char	*reason;	/* backup create --reason */
	const char	*against;	/* check --against */
	const char	*from[16];	/* migrate legacy: KIND:PATH */
	int		 nfrom;
	int		 apply;
	const struct flm_cmd *cmd;	/* the command given */
	const char	*cmd_name;	/* its words */
	char		**args;		/* positional arguments */
	int		 nargs;
};

/* flm.c */
void	print_json(struct json_object *);
int	cli_show(struct cli *, uint16_t, struct json_object *,
	    void (*)(struct json_object *));
void	print_result(struct cli *, struct json_object *,
	    void (*)(struct json_object *));
const char *jstr(struct json_object *, const char *);
const char *jdash(struct json_object *, const char *);
void	wipe_key(struct json_object *);
void	cli_usage(struct cli *, const char *) __attribute__((noreturn));

/* flm_chat.c */
int	cmd_chat(struct cli *, int, char **);

/* flm_security.c */
int	cmd_policy_show(struct cli *, int, char **);
int	cmd_policy_set(struct cli *, int, char **);
int	cmd_ip(struct cli *, int, char **);
int	cmd_cors(struct cli *, int, char **);
int	cmd_rate_limit(struct cli *, int, char **);
int	cmd_audit_verify(struct cli *, int, char **);
int	cmd_audit_archive(struct cli *, int, char **);
int	cmd_audit_tail(struct cli *, int, char **);
int	cmd_usage_show(struct cli *, int, char **);

/* flm_tls.c: files the command writes */
int	file_replace(const char *, const char *, mode_t);
/* flm_firewall.c */
int	cmd_firewall(struct cli *, int, char **);
/* flm_doctor.c */
int	cmd_doctor(struct cli *, int, char **);
/* flm_migrate.c */
int	cmd_migrate(struct cli *, int, char **);
/* flm_secrets.c */
int	cmd_credential(struct cli *, int, char **);
int	cmd_secrets(struct cli *, int, char **);
int	secret_read(const char *, char *, size_t);
/* flm_console.c */
int	cmd_console(struct cli *, int, char **);
/* flm_backup.c */
int	cmd_backup(struct cli *, int, char **);
int	cmd_check(struct cli *, int, char **);
int	cmd_master_rotate(struct cli *, int, char **);

/* flm_tls.c */
int	cmd_ca(struct cli *, int, char **);
int	cmd_clients(struct cli *, int, char **);
void	proxy_tls_lines(struct json_object *);

/* flm_term.c */
void	term_write(FILE *, const char *, size_t, int);
const char *term_str(struct json_object *);

/* flm_ctl.c */
int	cli_request(struct cli *, uint16_t, struct json_object *,
	    struct json_object **);
int	cli_request_fd(struct cli *, uint16_t, struct json_object *, int,
	    struct json_object **);

#endif
