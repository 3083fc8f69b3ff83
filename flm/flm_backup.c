/*
 * flm backup create|list|restore, flm check: keyd seals, keeps and
 * restores the backups; the command reads the admin's file and hands
 * flmd its descriptor, and compares two states for check.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flm.h"

#define PASS_MIN	12
#define PASS_MAX	1024

/* --passphrase: read (twice on a terminal when making one) into req. */
static int
backup_passphrase(struct cli *c, struct json_object *req, int confirm)
{
	char	 a[PASS_MAX + 2], b[PASS_MAX + 2];
	int	 ok;

	if (!c->passphrase)
		return 0;
	if (secret_read("Backup passphrase: ", a, sizeof(a)) == -1 ||
	    strlen(a) < PASS_MIN) {
		explicit_bzero(a, sizeof(a));
		fprintf(stderr, "flm: no passphrase read: give one line of "
		    "%d-%d characters on the terminal or standard input\n",
		    PASS_MIN, PASS_MAX);
		return -1;
	}
	if (confirm && isatty(STDIN_FILENO)) {
		ok = secret_read("Again: ", b, sizeof(b)) == 0 &&
		    strcmp(a, b) == 0;
		explicit_bzero(b, sizeof(b));
		if (!ok) {
			explicit_bzero(a, sizeof(a));
			fprintf(stderr, "flm: the passphrases differ\n");
			return -1;
		}
	}
	json_object_object_add(req, "passphrase", json_object_new_string(a));
	explicit_bzero(a, sizeof(a));
	return 0;
}

static void
backup_wipe(struct json_object *req)
{
	struct json_object	*s;

	if (json_object_object_get_ex(req, "passphrase", &s))
		explicit_bzero((char *)json_object_get_string(s),
		    json_object_get_string_len(s));
}

/* A path (it has a slash, or names a file here) or a backup's name:
 * the descriptor, or -1 and the name put in req. */
static int
backup_source(const char *arg, struct json_object *req)
{
	struct stat	 st;
	int		 fd;

	if (strchr(arg, '/') == NULL && stat(arg, &st) == -1) {
		json_object_object_add(req, "name",
		    json_object_new_string(arg));
		return -1;
	}
	if ((fd = open(arg, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "flm: %s: %s\n", arg, strerror(errno));
		return -2;
	}
	return fd;
}

static void
created_table(struct json_object *res)
{
	if (*jstr(res, "skipped"))
		printf("no backup made: %s is recent\n", jstr(res, "skipped"));
	else
		printf("backup %s made (%s, sealed with %s)\n",
		    jstr(res, "file"), jstr(res, "reason"),
		    strcmp(jstr(res, "kind"), "passphrase") == 0 ?
		    "a passphrase" : "the master key");
}

static void
list_table(struct json_object *res)
{
	struct json_object	*b;
	size_t			 i, n = json_object_array_length(res);

	if (n == 0) {
		printf("no backups\n");
		return;
	}
	printf("%-48s %-24s %-12s %-10s %s\n", "NAME", "CREATED", "REASON",
	    "SEALED", "BYTES");
	for (i = 0; i < n; i++) {
		b = json_object_array_get_idx(res, i);
		printf("%-48s %-24s %-12s %-10s %s\n", jstr(b, "file"),
		    jstr(b, "created"), jstr(b, "reason"), jstr(b, "kind"),
		    jstr(b, "bytes"));
	}
}

static void
restored_table(struct json_object *res)
{
	struct json_object	*k;

	k = json_object_object_get(json_object_object_get(res, "state"),
	    "keys");
	printf("restored the backup of %s (%s): %s API keys\n",
	    jstr(res, "created"), jstr(res, "reason"), jdash(k, "count"));
	if (strcmp(jstr(res, "master_key"), "restored") == 0)
		printf("the backup's master key replaced keyd's\n");
	printf("the state it replaced is kept as the backup %s\n",
	    jstr(res, "kept"));
	printf("the suite restarts now to finish the restore\n");
}

int
cmd_backup(struct cli *c, int argc, char **argv)
{
	struct json_object	*req, *res = NULL;
	int			 fd = -1, rc;

	(void)argc;
	(void)argv;
	if (strcmp(c->cmd_name, "backup list") == 0)
		return cli_show(c, IMSG_CTL_BACKUP_LIST, NULL, list_table);
	req = json_object_new_object();
	if (strcmp(c->cmd_name, "backup create") == 0) {
		if (c->reason != NULL)
			json_object_object_add(req, "reason",
			    json_object_new_string(c->reason));
		if (backup_passphrase(c, req, 1) == -1) {
			json_object_put(req);
			return FLM_EX_USAGE;
		}
		rc = cli_request(c, IMSG_CTL_BACKUP_CREATE, req, &res);
		backup_wipe(req);
		json_object_put(req);
		if (rc == 0)
			print_result(c, res, created_table);
		json_object_put(res);
		return rc;
	}
	if ((fd = backup_source(c->args[0], req)) == -2 ||
	    backup_passphrase(c, req, 0) == -1) {
		if (fd >= 0)
			close(fd);
		json_object_put(req);
		return fd == -2 ? FLM_EX_ERROR : FLM_EX_USAGE;
	}
	rc = cli_request_fd(c, IMSG_CTL_BACKUP_RESTORE, req, fd, &res);
	backup_wipe(req);
	json_object_put(req);
	if (rc == 0)
		print_result(c, res, restored_table);
	json_object_put(res);
	return rc;
}

/* The state check compares against: a directory's state.json, a
 * backup file, a backup's name, or the newest backup. */
static int
check_expected(struct cli *c, struct json_object **want, char *what,
    size_t whatsz)
{
	struct json_object	*req, *list = NULL;
	struct stat		 st;
	char			 path[4096];
	int			 fd = -1, rc;

	*want = NULL;
	if (c->against != NULL && stat(c->against, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/state.json", c->against);
		if ((*want = json_object_from_file(path)) == NULL ||
		    !json_object_is_type(*want, json_type_object)) {
			fprintf(stderr, "flm: %s: not a state file (flm migrate "
			    "writes one)\n", path);
			json_object_put(*want);
			return FLM_EX_ERROR;
		}
		snprintf(what, whatsz, "%s", path);
		return 0;
	}
	req = json_object_new_object();
	if (c->against != NULL) {
		if ((fd = backup_source(c->against, req)) == -2) {
			json_object_put(req);
			return FLM_EX_ERROR;
		}
		snprintf(what, whatsz, "%s", c->against);
	} else {
		if ((rc = cli_request(c, IMSG_CTL_BACKUP_LIST, NULL, &list)) !=
		    0) {
			json_object_put(req);
			return rc;
		}
		if (json_object_array_length(list) == 0) {
			fprintf(stderr, "flm: no backup to check against: make "
			    "one (flm backup create) or give --against\n");
			json_object_put(list);
			json_object_put(req);
			return FLM_EX_ERROR;
		}
		snprintf(what, whatsz, "%s", jstr(json_object_array_get_idx(
		    list, 0), "file"));
		json_object_object_add(req, "name",
		    json_object_new_string(what));
		json_object_put(list);
	}
	if (backup_passphrase(c, req, 0) == -1) {
		if (fd >= 0)
			close(fd);
		json_object_put(req);
		return FLM_EX_USAGE;
	}
	rc = cli_request_fd(c, IMSG_CTL_CHECK, req, fd, want);
	backup_wipe(req);
	json_object_put(req);
	return rc;
}

static void __attribute__((format(printf, 2, 3)))
check_diff(struct json_object *diffs, const char *fmt, ...)
{
	char	 line[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_object_array_add(diffs, json_object_new_string(line));
}

/* An array's length; 0 for anything else (a state without it). */
static size_t
check_len(struct json_object *arr)
{
	return json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) : 0;
}

static int
check_has(struct json_object *arr, const char *s)
{
	size_t	 i;

	for (i = 0; i < check_len(arr); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(
		    arr, i)), s) == 0)
			return 1;
	return 0;
}

static struct json_object *
check_proxy(struct json_object *arr, const char *id)
{
	size_t	 i;

	for (i = 0; i < check_len(arr); i++)
		if (strcmp(jstr(json_object_array_get_idx(arr, i), "id"),
		    id) == 0)
			return json_object_array_get_idx(arr, i);
	return NULL;
}

/* Each difference between the live state and the one expected. */
static struct json_object *
check_compare(struct json_object *live, struct json_object *want)
{
	struct json_object	*d = json_object_new_array(), *lk, *wk, *l, *w;
	struct json_object	*p, *q;
	size_t			 i;

	lk = json_object_object_get(live, "keys");
	wk = json_object_object_get(want, "keys");
	if (strcmp(jstr(lk, "count"), jstr(wk, "count")) != 0)
		check_diff(d, "keys: %s live, %s expected", jstr(lk, "count"),
		    jstr(wk, "count"));
	l = json_object_object_get(lk, "labels");
	w = json_object_object_get(wk, "labels");
	for (i = 0; i < check_len(w); i++)
		if (!check_has(l, json_object_get_string(
		    json_object_array_get_idx(w, i))))
			check_diff(d, "key %s: missing",
			    json_object_get_string(json_object_array_get_idx(w,
			    i)));
	for (i = 0; i < check_len(l); i++)
		if (!check_has(w, json_object_get_string(
		    json_object_array_get_idx(l, i))))
			check_diff(d, "key %s: not expected",
			    json_object_get_string(json_object_array_get_idx(l,
			    i)));
	if (!json_object_equal(json_object_object_get(live, "policy"),
	    json_object_object_get(want, "policy")))
		check_diff(d, "policy: %s live, %s expected",
		    json_object_to_json_string_ext(json_object_object_get(live,
		    "policy"), JSON_C_TO_STRING_PLAIN),
		    json_object_to_json_string_ext(json_object_object_get(want,
		    "policy"), JSON_C_TO_STRING_PLAIN));
	l = json_object_object_get(live, "proxies");
	w = json_object_object_get(want, "proxies");
	for (i = 0; i < check_len(w); i++) {
		p = json_object_array_get_idx(w, i);
		if ((q = check_proxy(l, jstr(p, "id"))) == NULL)
			check_diff(d, "proxy %s: missing", jstr(p, "id"));
		else if (!json_object_equal(p, q))
			check_diff(d, "proxy %s: %s live", jstr(p, "id"),
			    json_object_to_json_string_ext(q,
			    JSON_C_TO_STRING_PLAIN));
	}
	for (i = 0; i < check_len(l); i++) {
		p = json_object_array_get_idx(l, i);
		if (check_proxy(w, jstr(p, "id")) == NULL)
			check_diff(d, "proxy %s: not expected", jstr(p, "id"));
	}
	return d;
}

int
cmd_check(struct cli *c, int argc, char **argv)
{
	struct json_object	*want = NULL, *live = NULL, *d, *res;
	char			 what[4096];
	size_t			 i, n;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = check_expected(c, &want, what, sizeof(what))) != 0)
		return rc;
	res = json_object_new_object();
	rc = cli_request(c, IMSG_CTL_CHECK, res, &live);
	json_object_put(res);
	if (rc != 0) {
		json_object_put(want);
		return rc;
	}
	d = check_compare(live, want);
	n = json_object_array_length(d);
	if (c->json || !isatty(STDOUT_FILENO)) {
		res = json_object_new_object();
		json_object_object_add(res, "against",
		    json_object_new_string(what));
		json_object_object_add(res, "ok", json_object_new_boolean(n ==
		    0));
		json_object_object_add(res, "differences", json_object_get(d));
		print_json(res);
		json_object_put(res);
	} else {
		for (i = 0; i < n; i++)
			printf("%s\n", json_object_get_string(
			    json_object_array_get_idx(d, i)));
		printf("%s: %s\n", what, n == 0 ? "the live state matches" :
		    "the live state differs");
	}
	json_object_put(d);
	json_object_put(want);
	json_object_put(live);
	return n == 0 ? FLM_EX_OK : FLM_EX_ERROR;
}

static void
rotated_table(struct json_object *res)
{
	printf("master key rotated: now %s\n", jstr(res, "master_key_id"));
	printf("sealed again: %s key rows, %s TLS keys, %s secrets, %s "
	    "backups; the audit trail keeps its earlier keys sealed\n",
	    jdash(res, "key_rows"), jdash(res, "tls_keys"),
	    jdash(res, "secrets"), jdash(res, "backups"));
	printf("passphrase backups hold the old key: make a new one "
	    "(flm backup create --passphrase)\n");
}

int
cmd_master_rotate(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_show(c, IMSG_CTL_MASTER_ROTATE, NULL, rotated_table);
}
