/*
 * flm security, audit and usage: the security policy that flm-keyd
 * keeps and flm-proxyd enforces, and the audit trail of the requests.
 * flm-keyd checks every policy it is given; the commands here only
 * edit one and pass it on, so a refusal names the field at fault.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "flm.h"
#include "policy.h"

/* The member key of o, made an empty one of type t if it is not one. */
static struct json_object *
jchild(struct json_object *o, const char *key, json_type t)
{
	struct json_object	*v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, t))
		return v;
	v = t == json_type_array ? json_object_new_array() :
	    json_object_new_object();
	json_object_object_add(o, key, v);
	return v;
}

/* The policy of a POLICY_GET or POLICY_SET answer, or NULL. */
static struct json_object *
policy_of(struct json_object *res)
{
	struct json_object	*pol;

	if (!json_object_object_get_ex(res, "policy", &pol) ||
	    !json_object_is_type(pol, json_type_object))
		return NULL;
	return pol;
}

/* Check the answer of cli_request(): it must hold a policy. */
static int
policy_answer(int rc, struct json_object **res)
{
	if (rc != 0)
		return rc;
	if (policy_of(*res) == NULL) {
		fprintf(stderr, "flm: malformed answer from flmd\n");
		json_object_put(*res);
		*res = NULL;
		return FLM_EX_ERROR;
	}
	return FLM_EX_OK;
}

/* POLICY_GET: *res is the answer, *pol its policy. */
static int
policy_fetch(struct cli *c, struct json_object **res,
    struct json_object **pol)
{
	int	 rc;

	rc = policy_answer(cli_request(c, IMSG_CTL_POLICY_GET, NULL, res), res);
	*pol = policy_of(*res);
	return rc;
}

/* POLICY_SET the whole policy: *res is the answer, the policy stored. */
static int
policy_store(struct cli *c, struct json_object *pol, struct json_object **res)
{
	struct json_object	*req = json_object_new_object();
	int			 rc;

	json_object_object_add(req, "policy", json_object_get(pol));
	rc = cli_request(c, IMSG_CTL_POLICY_SET, req, res);
	json_object_put(req);
	return policy_answer(rc, res);
}

/*
 * With --json the whole answer, else its policy, or the member key of
 * it: JSON either way, and without --json what policy set takes back.
 */
static void
policy_print(struct cli *c, struct json_object *res, const char *key)
{
	struct json_object	*v = policy_of(res);

	if (c->json)
		v = res;
	else if (key != NULL)
		v = json_object_object_get(v, key);
	print_json(v);
}

int
cmd_policy_show(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *pol;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = policy_fetch(c, &res, &pol)) != 0)
		return rc;
	policy_print(c, res, NULL);
	json_object_put(res);
	return FLM_EX_OK;
}

/* Where offset off of buf is, as "LINE:COLUMN", both from 1. */
static void
text_where(const char *buf, size_t off, char *where, size_t sz)
{
	size_t	 i, line = 1, col = 1;

	for (i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	snprintf(where, sz, "%zu:%zu", line, col);
}

/* The whole of fp, at most max bytes and NUL-terminated; NULL if not. */
static char *
read_all(FILE *fp, const char *name, size_t max, size_t *len)
{
	char	*buf;
	size_t	 n;

	if ((buf = malloc(max + 2)) == NULL) {
		fprintf(stderr, "flm: out of memory\n");
		return NULL;
	}
	/* One byte more than max tells a file too big. */
	n = fread(buf, 1, max + 1, fp);
	if (ferror(fp)) {
		fprintf(stderr, "flm: %s: %s\n", name, strerror(errno));
		free(buf);
		return NULL;
	}
	if (n > max) {
		fprintf(stderr, "flm: %s: larger than %zu KiB, the most a "
		    "policy may be\n", name, max / 1024);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Parse a policy file, strictly: a typo must not be half read. */
static struct json_object *
policy_parse_file(const char *name, const char *buf, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	enum json_tokener_error	 err;
	char			 where[48];

	if ((tok = json_tokener_new()) == NULL) {
		fprintf(stderr, "flm: out of memory\n");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	err = json_tokener_get_error(tok);
	if (o == NULL && err == json_tokener_continue)
		fprintf(stderr, "flm: %s: not valid JSON: it ends too early\n",
		    name);
	else if (o == NULL) {
		text_where(buf, json_tokener_get_parse_end(tok), where,
		    sizeof(where));
		fprintf(stderr, "flm: %s:%s: not valid JSON: %s\n", name, where,
		    json_tokener_error_desc(err));
	}
	json_tokener_free(tok);
	return o;
}

int
cmd_policy_set(struct cli *c, int argc, char **argv)
{
	struct json_object	*pol, *res = NULL;
	const char		*name = c->nargs ? c->args[0] : "-";
	FILE			*fp = stdin;
	char			*buf;
	size_t			 len;
	int			 rc;

	(void)argc;
	(void)argv;
	if (strcmp(name, "-") == 0)
		name = "standard input";
	else if ((fp = fopen(name, "r")) == NULL) {
		fprintf(stderr, "flm: %s: %s\n", name, strerror(errno));
		return FLM_EX_ERROR;
	}
	buf = read_all(fp, name, POLICY_MAX_BYTES, &len);
	if (fp != stdin)
		fclose(fp);
	if (buf == NULL)
		return FLM_EX_ERROR;
	pol = policy_parse_file(name, buf, len);
	free(buf);
	if (pol == NULL)
		return FLM_EX_ERROR;
	rc = policy_store(c, pol, &res);
	json_object_put(pol);
	if (rc != 0)
		return rc;
	policy_print(c, res, NULL);
	json_object_put(res);
	return FLM_EX_OK;
}

/*
 * Whether two allowlist entries are the same: "192.0.2.7" is
 * "192.0.2.7/32", and an IPv6 address has many spellings.  What does
 * not parse is compared as text; flm-keyd will refuse it anyway.
 */
static int
cidr_same(const char *a, const char *b)
{
	struct policy_cidr	 ca, cb;
	char			 err[64];

	if (policy_cidr_parse(a, &ca, err, sizeof(err)) == -1 ||
	    policy_cidr_parse(b, &cb, err, sizeof(err)) == -1)
		return strcmp(a, b) == 0;
	return ca.family == cb.family && ca.prefix == cb.prefix &&
	    memcmp(ca.addr, cb.addr, sizeof(ca.addr)) == 0;
}

/* The index of cidr in list, or -1. */
static int
cidr_find(struct json_object *list, const char *cidr)
{
	struct json_object	*e;
	size_t			 i, n = json_object_array_length(list);

	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(list, i);
		if (json_object_is_type(e, json_type_string) &&
		    cidr_same(json_object_get_string(e), cidr))
			return (int)i;
	}
	return -1;
}

/* security ip allow|deny: a read-modify-write of ip_allowlist. */
int
cmd_ip(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *pol, *list, *set = NULL;
	const char		*cidr = c->args[0];
	int			 allow = strcmp(argv[2], "allow") == 0, at, rc;
	int			 was_empty;

	(void)argc;
	if ((rc = policy_fetch(c, &res, &pol)) != 0)
		return rc;
	list = jchild(pol, "ip_allowlist", json_type_array);
	was_empty = json_object_array_length(list) == 0;
	at = cidr_find(list, cidr);
	if (allow && at != -1) {
		if (c->json)
			print_json(res);
		else
			printf("%s is already in the allowlist\n", cidr);
		json_object_put(res);
		return FLM_EX_OK;
	}
	if (!allow && at == -1) {
		fprintf(stderr, "flm: %s is not in the allowlist\n", cidr);
		json_object_put(res);
		return FLM_EX_ERROR;
	}
	if (allow)
		json_object_array_add(list, json_object_new_string(cidr));
	else
		json_object_array_del_idx(list, (size_t)at, 1);
	rc = policy_store(c, pol, &set);
	json_object_put(res);
	if (rc != 0)
		return rc;
	list = jchild(policy_of(set), "ip_allowlist", json_type_array);
	if (c->json)
		print_json(set);
	else if (allow)
		printf("added %s to the allowlist\n", cidr);
	else
		printf("removed %s from the allowlist%s\n", cidr,
		    json_object_array_length(list) == 0 ?
		    "; it is empty: only loopback clients are allowed" : "");
	/* An empty list meant loopback; a list means only what it lists. */
	if (allow && was_empty)
		fprintf(stderr, "flm: the allowlist now allows only what it "
		    "lists, loopback too: add 127.0.0.0/8 and ::1 if local "
		    "clients need them\n");
	json_object_put(set);
	return FLM_EX_OK;
}

/* "a, b,c" as ["a", "b", "c"]; "" as []. */
static struct json_object *
list_split(const char *s)
{
	struct json_object	*a = json_object_new_array();
	size_t			 l;

	while (*s != '\0') {
		s += strspn(s, " \t,");
		l = strcspn(s, ",");
		while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		if (l > 0)
			json_object_array_add(a,
			    json_object_new_string_len(s, (int)l));
		s += l;
		s += strcspn(s, ",");
	}
	return a;
}

int
cmd_cors(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *pol, *cors, *set = NULL;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = policy_fetch(c, &res, &pol)) != 0)
		return rc;
	if (c->origins == NULL && c->methods == NULL && c->headers == NULL &&
	    c->max_age == -1 && c->credentials == -1) {
		policy_print(c, res, "cors");
		json_object_put(res);
		return FLM_EX_OK;
	}
	cors = jchild(pol, "cors", json_type_object);
	if (c->origins != NULL)
		json_object_object_add(cors, "allowed_origins",
		    list_split(c->origins));
	if (c->methods != NULL)
		json_object_object_add(cors, "allowed_methods",
		    list_split(c->methods));
	if (c->headers != NULL)
		json_object_object_add(cors, "allowed_headers",
		    list_split(c->headers));
	if (c->max_age != -1)
		json_object_object_add(cors, "max_age",
		    json_object_new_int64(c->max_age));
	if (c->credentials != -1)
		json_object_object_add(cors, "allow_credentials",
		    json_object_new_boolean(c->credentials));
	rc = policy_store(c, pol, &set);
	json_object_put(res);
	if (rc != 0)
		return rc;
	policy_print(c, set, "cors");
	json_object_put(set);
	return FLM_EX_OK;
}

static void
rate_print(const char *which, struct json_object *r, const char *key)
{
	const char	*v = jstr(r, key);

	printf("rate_limit.%s.%s = %s%s\n", which, key, v,
	    strcmp(v, "0") == 0 ? " (no limit)" : "");
}

/* security rate-limit key|ip: one member of rate_limit. */
int
cmd_rate_limit(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *pol, *r, *set = NULL;
	const char		*which;
	int			 rc;

	(void)argc;
	which = strcmp(argv[2], "key") == 0 ? "per_key" : "per_ip";
	if ((rc = policy_fetch(c, &res, &pol)) != 0)
		return rc;
	if (c->requests != -1 || c->tokens != -1) {
		r = jchild(jchild(pol, "rate_limit", json_type_object), which,
		    json_type_object);
		if (c->requests != -1)
			json_object_object_add(r, "requests_per_minute",
			    json_object_new_int64(c->requests));
		if (c->tokens != -1)
			json_object_object_add(r, "tokens_per_minute",
			    json_object_new_int64(c->tokens));
		rc = policy_store(c, pol, &set);
		json_object_put(res);
		if (rc != 0)
			return rc;
		res = set;
	}
	if (c->json)
		print_json(res);
	else {
		r = jchild(jchild(policy_of(res), "rate_limit",
		    json_type_object), which, json_type_object);
		rate_print(which, r, "requests_per_minute");
		rate_print(which, r, "tokens_per_minute");
	}
	json_object_put(res);
	return FLM_EX_OK;
}

/* Where the chain begins, and what the anchor cannot rule out. */
static void
verify_notes(struct json_object *res)
{
	struct json_object	*g;

	if (json_object_object_get_ex(res, "genesis", &g) &&
	    json_object_object_get(g, "id") != NULL)
		printf("genesis: row %s%s%s%s%s\n", jstr(g, "id"),
		    *jstr(g, "created_at") ? " of " : "",
		    jstr(g, "created_at"),
		    strcmp(jstr(g, "in"), "live") != 0 ? ", in " : "",
		    strcmp(jstr(g, "in"), "live") != 0 ? jstr(g, "in") : "");
	if (*jstr(res, "restored"))
		printf("%s\n", jstr(res, "restored"));
	if (*jstr(res, "warning"))
		printf("warning: %s\n", jstr(res, "warning"));
}

static void
verify_table(struct json_object *res)
{
	struct json_object	*p = NULL, *ok;
	int64_t			 rows;

	json_object_object_get_ex(res, "ok", &ok);
	if (!json_object_get_boolean(ok)) {
		json_object_object_get_ex(res, "problem", &p);
		printf("audit trail NOT intact: %s\n", jstr(p, "message"));
		verify_notes(res);
		return;
	}
	rows = json_object_get_int64(json_object_object_get(res, "rows"));
	if (rows == 0)
		printf("audit trail intact: no rows");
	else
		printf("audit trail intact: %s row%s (ids %s-%s)",
		    jstr(res, "rows"), rows == 1 ? "" : "s",
		    jstr(res, "first_id"), jstr(res, "last_id"));
	if (json_object_get_int64(json_object_object_get(res,
	    "archived_through")) > 0)
		printf(", archived through id %s in %s file%s, checked too",
		    jstr(res, "archived_through"), jstr(res, "archives"),
		    json_object_get_int64(json_object_object_get(res,
		    "archives")) == 1 ? "" : "s");
	printf("\n");
	verify_notes(res);
}

/* A trail not intact is an answer, yet fails: exit 1, as scripts test. */
int
cmd_audit_verify(struct cli *c, int argc, char **argv)
{
	struct json_object	*res = NULL, *ok;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_request(c, IMSG_CTL_AUDIT_VERIFY, NULL, &res)) != 0)
		return rc;
	print_result(c, res, verify_table);
	rc = json_object_object_get_ex(res, "ok", &ok) &&
	    json_object_get_boolean(ok) ? FLM_EX_OK : FLM_EX_ERROR;
	json_object_put(res);
	return rc;
}

static void
archive_table(struct json_object *res)
{
	/* Nothing before WHEN, or all of it archived already: no file. */
	if (*jstr(res, "file") == '\0')
		printf("no rows to archive\n");
	else
		printf("archived %s rows to %s\n", jstr(res, "archived"),
		    jstr(res, "file"));
}

int
cmd_audit_archive(struct cli *c, int argc, char **argv)
{
	struct json_object	*req;

	(void)argc;
	(void)argv;
	if (c->before == NULL)
		cli_usage(c, "--before is required");
	req = json_object_new_object();
	json_object_object_add(req, "before",
	    json_object_new_string(c->before));
	return cli_show(c, IMSG_CTL_AUDIT_ARCHIVE, req, archive_table);
}

static void
tail_table(struct json_object *res)
{
	struct json_object	*recs = NULL, *r;
	char			 tokens[48];
	size_t			 i, n;

	if (!json_object_object_get_ex(res, "records", &recs) ||
	    !json_object_is_type(recs, json_type_array) ||
	    (n = json_object_array_length(recs)) == 0) {
		printf("no requests in the audit trail\n");
		return;
	}
	printf("%-24s %-20s %-16s %-15s %-20s %-24s %6s %6s %s\n", "TIME",
	    "REQUEST", "KEY", "CLIENT", "ENDPOINT", "MODEL", "STATUS", "MS",
	    "TOKENS");
	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(recs, i);
		snprintf(tokens, sizeof(tokens), "%s/%s",
		    jdash(r, "prompt_tokens"), jdash(r, "completion_tokens"));
		printf("%-24s %-20s %-16s %-15s %-20s %-24s %6s %6s %s\n",
		    jstr(r, "created_at"), jstr(r, "request_id"),
		    jdash(r, "key_id"), jstr(r, "client_addr"),
		    jstr(r, "endpoint"), jdash(r, "model"), jstr(r, "status"),
		    jstr(r, "latency_ms"), tokens);
	}
}

int
cmd_audit_tail(struct cli *c, int argc, char **argv)
{
	struct json_object	*req;

	(void)argc;
	(void)argv;
	/* Without -n, flm-keyd's default. */
	req = json_object_new_object();
	if (c->count != 0)
		json_object_object_add(req, "count",
		    json_object_new_int(c->count));
	return cli_show(c, IMSG_CTL_AUDIT_TAIL, req, tail_table);
}

static void
usage_table(struct json_object *res)
{
	struct json_object	*use = NULL, *u;
	size_t			 i, n;

	if (*jstr(res, "since") != '\0')
		printf("since %s\n", jstr(res, "since"));
	if (!json_object_object_get_ex(res, "usage", &use) ||
	    !json_object_is_type(use, json_type_array) ||
	    (n = json_object_array_length(use)) == 0) {
		printf("no requests\n");
		return;
	}
	printf("%-16s %-40s %10s %12s %12s\n", "KEY", "MODEL", "REQUESTS",
	    "PROMPT", "COMPLETION");
	for (i = 0; i < n; i++) {
		u = json_object_array_get_idx(use, i);
		printf("%-16s %-40s %10s %12s %12s\n", jdash(u, "key_id"),
		    jdash(u, "model"), jstr(u, "requests"),
		    jstr(u, "prompt_tokens"), jstr(u, "completion_tokens"));
	}
}

int
cmd_usage_show(struct cli *c, int argc, char **argv)
{
	struct json_object	*req;

	(void)argc;
	(void)argv;
	req = json_object_new_object();
	if (c->key != NULL)
		json_object_object_add(req, "key",
		    json_object_new_string(c->key));
	if (c->since != NULL)
		json_object_object_add(req, "since",
		    json_object_new_string(c->since));
	return cli_show(c, IMSG_CTL_USAGE, req, usage_table);
}
