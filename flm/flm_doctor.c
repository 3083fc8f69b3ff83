/*
 * flm doctor: what needs an admin's attention, and how to fix it.
 * flmd answers with its checks and flm-keyd's (IMSG_CTL_DOCTOR); flm
 * adds what any admin's process sees for itself: the clock and the
 * host firewall.  Exit 0: nothing needs attention; 1: something does.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "doctor.h"
#include "flm.h"

/* No clock is right before this flm was written (2026-12-01). */
#define DOCTOR_CLOCK_FLOOR	1796083200LL
#define DOCTOR_WIDTH		80
#define DOCTOR_NFT_MAX		(1024 * 1024)	/* of ruleset text read */

extern char	**environ;

/* ---- the clock ------------------------------------------------------- */

static void
doctor_clock(struct json_object *out)
{
	struct timex	 tx;
	time_t		 now = time(NULL);
	int		 st;

	if ((long long)now < DOCTOR_CLOCK_FLOOR)
		doctor_add(out, "clock", "wall clock", "fail", "set the clock "
		    "(timedatectl set-time, or enable systemd-timesyncd or "
		    "chrony)", "the clock says %lld, before this flm was "
		    "built: certificates and the audit trail go wrong",
		    (long long)now);
	memset(&tx, 0, sizeof(tx));
	if ((st = ntp_adjtime(&tx)) == -1) {
		doctor_add(out, "clock", "synchronisation", "skipped", NULL,
		    "ntp_adjtime: %s", strerror(errno));
		return;
	}
	if (st == TIME_ERROR || (tx.status & STA_UNSYNC))
		doctor_add(out, "clock", "synchronisation", "warn",
		    "systemctl enable --now systemd-timesyncd (or install "
		    "chrony)", "the kernel's clock is not synchronised "
		    "(no NTP)");
	else
		doctor_add(out, "clock", "synchronisation", "ok", NULL,
		    "synchronised (estimated error %ld us)", (long)tx.esterror);
}

/* ---- the host firewall ------------------------------------------------ */

/* ufw's own switch: ENABLED=yes in /etc/ufw/ufw.conf. */
static int
doctor_ufw(void)
{
	FILE	*f;
	char	 line[256];
	int	 on = 0;

	if ((f = fopen("/etc/ufw/ufw.conf", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "ENABLED=", 8) == 0)
			on = strncmp(line + 8, "yes", 3) == 0;
	fclose(f);
	return on;
}

/* firewalld: its pid file, naming a live firewalld. */
static int
doctor_firewalld(void)
{
	char	 buf[64], path[64];
	FILE	*f;
	long	 pid = 0;

	if ((f = fopen("/run/firewalld.pid", "re")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL)
		pid = strtol(buf, NULL, 10);
	fclose(f);
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	buf[0] = '\0';
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return strncmp(buf, "firewalld", 9) == 0;
}

/*
 * As root: nft's ruleset has a chain hooked on input.  1 yes, 0 no, -1
 * no nft or it failed.  nft runs without a shell, stdin closed.
 */
static int
doctor_nft(void)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft" };
	char			*argv[] = { "nft", "list", "ruleset", NULL };
	posix_spawn_file_actions_t fa;
	const char		*nft = NULL;
	char			*buf;
	size_t			 len = 0;
	ssize_t			 n;
	pid_t			 pid;
	int			 p[2], status, rv = -1;
	size_t			 i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0) {
			nft = paths[i];
			break;
		}
	if (nft == NULL || pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if ((buf = malloc(DOCTOR_NFT_MAX + 1)) == NULL) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, nft, &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while (pid > 0 && len < DOCTOR_NFT_MAX && (n = read(p[0], buf + len,
	    DOCTOR_NFT_MAX - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	buf[len] = '\0';
	if (pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rv = strstr(buf, "hook input") != NULL;
	free(buf);
	return rv;
}

static void
doctor_firewall(struct json_object *out)
{
	const char	*fix = "flm firewall preview, then flm firewall apply";
	int		 nft;

	if (doctor_ufw())
		doctor_add(out, "firewall", "host firewall", "ok", NULL,
		    "ufw is enabled (/etc/ufw/ufw.conf)");
	else if (doctor_firewalld())
		doctor_add(out, "firewall", "host firewall", "ok", NULL,
		    "firewalld is running");
	else if (geteuid() != 0)
		doctor_add(out, "firewall", "host firewall", "skipped", NULL,
		    "neither ufw nor firewalld; the nftables ruleset needs "
		    "root to read: run flm doctor as root");
	else if ((nft = doctor_nft()) == 1)
		doctor_add(out, "firewall", "host firewall", "ok", NULL,
		    "nftables has a chain on the input hook");
	else if (nft == 0)
		doctor_add(out, "firewall", "host firewall", "warn", fix,
		    "no firewall: nftables has no input chain, no ufw, no "
		    "firewalld");
	else
		doctor_add(out, "firewall", "host firewall", "warn", fix,
		    "no ufw, no firewalld, and nft could not list the "
		    "ruleset");
}

/* ---- output ----------------------------------------------------------- */

/* text, wrapped at DOCTOR_WIDTH, its lines after the first indented. */
static void
doctor_wrap(const char *text, size_t col, size_t indent)
{
	size_t	 len, word;

	while (*text != '\0') {
		while (*text == ' ')
			text++;
		word = strcspn(text, " ");
		len = strlen(text);
		if (col > indent && col + 1 + word > DOCTOR_WIDTH) {
			printf("\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			putchar(' ');
			col++;
		}
		fwrite(text, 1, word, stdout);
		col += word;
		text += word < len ? word : len;
	}
	putchar('\n');
}

static void
doctor_table(struct json_object *res)
{
	struct json_object	*checks, *c;
	const char		*group = "", *status;
	char			 head[DOCTOR_NAME_MAX + 16];
	size_t			 i;

	if (!json_object_object_get_ex(res, "checks", &checks))
		return;
	for (i = 0; i < json_object_array_length(checks); i++) {
		c = json_object_array_get_idx(checks, i);
		if (strcmp(group, jstr(c, "group")) != 0) {
			group = jstr(c, "group");
			printf("%s%s\n", i > 0 ? "\n" : "", group);
		}
		status = jstr(c, "status");
		/* Upper case for what needs attention: seen at a glance. */
		snprintf(head, sizeof(head), "  %-7s %s:",
		    strcmp(status, "fail") == 0 ? "FAIL" :
		    strcmp(status, "warn") == 0 ? "WARN" : status,
		    jstr(c, "name"));
		fputs(head, stdout);
		doctor_wrap(jstr(c, "detail"), strlen(head), 10);
		if (*jstr(c, "fix") != '\0') {
			fputs("          fix: ", stdout);
			doctor_wrap(jstr(c, "fix"), 15, 15);
		}
	}
	printf("\n%s\n", json_object_get_boolean(json_object_object_get(res,
	    "ok")) ? "nothing needs attention" :
	    "something needs attention: see WARN and FAIL above");
}

/*
 * The checks by group, in the order an admin reads them: what runs,
 * what is exposed, what is stored, then the host.  Groups not named
 * here keep their place after these.
 */
static struct json_object *
doctor_sort(struct json_object *checks)
{
	static const char *const order[] = {
		"processes", "keyd", "engines", "firewall", "state directory",
		"master key", "databases", "audit", "certificates", "clock"
	};
	struct json_object	*out = json_object_new_array(), *c;
	const size_t		 ng = sizeof(order) / sizeof(order[0]);
	size_t			 g, i, k, n = json_object_array_length(checks);
	const char		*grp;

	/* Round ng (one past the known groups) takes the others. */
	for (g = 0; g <= ng; g++)
		for (i = 0; i < n; i++) {
			c = json_object_array_get_idx(checks, i);
			grp = jstr(c, "group");
			for (k = 0; k < ng; k++)
				if (strcmp(grp, order[k]) == 0)
					break;
			if (k == g)
				json_object_array_add(out, json_object_get(c));
		}
	return out;
}

int
cmd_doctor(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *checks, *ch;
	size_t			 i;
	int			 rc, ok = 1;

	(void)argc;
	(void)argv;
	if ((rc = cli_request(c, IMSG_CTL_DOCTOR, NULL, &res)) != 0)
		return rc;
	if (!json_object_object_get_ex(res, "checks", &checks) ||
	    !json_object_is_type(checks, json_type_array)) {
		fprintf(stderr, "flm: malformed answer from flmd\n");
		json_object_put(res);
		return FLM_EX_ERROR;
	}
	doctor_clock(checks);
	doctor_firewall(checks);
	for (i = 0; i < json_object_array_length(checks); i++) {
		ch = json_object_array_get_idx(checks, i);
		if (doctor_needs_attention(jstr(ch, "status")))
			ok = 0;
	}
	json_object_object_add(res, "ok", json_object_new_boolean(ok));
	json_object_object_add(res, "checks", doctor_sort(checks));
	print_result(c, res, doctor_table);
	json_object_put(res);
	return ok ? FLM_EX_OK : FLM_EX_ERROR;
}
