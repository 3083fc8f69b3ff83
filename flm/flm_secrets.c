/*
 * flm engines credential set|clear ID, flm secrets rotate|list: the
 * secrets flm-keyd seals.  A secret is read from the terminal (not
 * echoed) or from standard input, never from the command line, where
 * ps(1) and shell history would show it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flm.h"

#define SECRET_MAX	4096

/* One line from fd into buf (NUL-ended, without its newline); -1 if
 * empty, too long or unreadable. */
static int
secret_read_fd(int fd, char *buf, size_t sz)
{
	size_t	 n = 0;
	ssize_t	 r;
	char	 ch;

	for (;;) {
		r = read(fd, &ch, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || ch == '\n')
			break;
		if (n + 1 >= sz)
			return -1;
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* From the terminal, echo off; or the first line of standard input. */
int
secret_read(const char *prompt, char *buf, size_t sz)
{
	struct termios	 old, quiet;
	int		 rc, tty = isatty(STDIN_FILENO);

	if (!tty)
		return secret_read_fd(STDIN_FILENO, buf, sz);
	if (tcgetattr(STDIN_FILENO, &old) == -1)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	rc = secret_read_fd(STDIN_FILENO, buf, sz);
	tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fputc('\n', stderr);
	return rc;
}

static void
credential_table(struct json_object *res)
{
	struct json_object	*v;

	const char		*name = jstr(res, "name");

	if (strcmp(name, "egress:socks5") == 0)
		printf("the SOCKS5 password: %s\n", json_object_object_get_ex(
		    res, "cleared", &v) ? "cleared" : "sealed");
	else if (json_object_object_get_ex(res, "cleared", &v))
		printf("%s: credential cleared\n", name + 7);
	else
		printf("%s: credential sealed (data key %s); proxyd sends it "
		    "as Authorization: Bearer\n", name + 7,
		    jstr(res, "key_id"));
}

int
cmd_credential(struct cli *c, int argc, char **argv)
{
	struct json_object	*req = json_object_new_object();
	char			 buf[SECRET_MAX + 2], prompt[80];
	int			 rc, egress = strncmp(c->cmd_name, "egress",
				    6) == 0;
	int			 set = strcmp(c->cmd_name + strlen(c->cmd_name) - 3,
				    "set") == 0;

	(void)argc;
	(void)argv;
	if (egress)
		json_object_object_add(req, "egress",
		    json_object_new_boolean(1));
	else
		json_object_object_add(req, "engine",
		    json_object_new_string(c->args[0]));
	if (set) {
		if (egress)
			snprintf(prompt, sizeof(prompt), "SOCKS5 password: ");
		else
			snprintf(prompt, sizeof(prompt), "Credential for "
			    "engine %.32s: ", c->args[0]);
		if (secret_read(prompt, buf, sizeof(buf)) == -1) {
			json_object_put(req);
			explicit_bzero(buf, sizeof(buf));
			fprintf(stderr, "flm: no credential read: give one line "
			    "of 1-%d characters on the terminal or standard "
			    "input\n", SECRET_MAX);
			return FLM_EX_USAGE;
		}
		json_object_object_add(req, "secret",
		    json_object_new_string(buf));
		explicit_bzero(buf, sizeof(buf));
	}
	rc = cli_show(c, set ?
	    IMSG_CTL_CREDENTIAL_SET : IMSG_CTL_CREDENTIAL_CLEAR, req,
	    credential_table);
	return rc;
}

static void
secrets_table(struct json_object *res)
{
	size_t	 i, n;

	if (json_object_is_type(res, json_type_object)) {
		printf("%s secrets sealed again under data key %s\n",
		    jstr(res, "resealed"), jstr(res, "key_id"));
		return;
	}
	if ((n = json_object_array_length(res)) == 0) {
		printf("no secrets\n");
		return;
	}
	printf("%-40s %-8s %s\n", "NAME", "KEY ID", "UPDATED");
	for (i = 0; i < n; i++) {
		struct json_object	*s = json_object_array_get_idx(res, i);

		printf("%-40s %-8s %s\n", jstr(s, "name"), jstr(s, "key_id"),
		    jstr(s, "updated_at"));
	}
}

int
cmd_secrets(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_show(c, strcmp(c->cmd_name, "secrets rotate") == 0 ?
	    IMSG_CTL_SECRETS_ROTATE : IMSG_CTL_SECRETS_LIST, NULL,
	    secrets_table);
}
