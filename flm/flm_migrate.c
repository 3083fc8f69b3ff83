/*
 * flm migrate legacy --from KIND:PATH ... [--apply] [--out DIR]: keys,
 * tokens and Ollama settings of another gateway brought into FLM
 * (docs/MIGRATION_GUIDE.md).  flm reads the admin's files with the
 * admin's rights, checks everything and reports each bad line; a dry
 * run writes the plan, a diff against the live state and the expected
 * state after apply to DIR; --apply then hands the converted entries
 * to flmd, which has keyd import them in one transaction.  flm never
 * opens an FLM database, and no key's text is printed or written.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flm.h"
#include "legacy.h"
#include "policy.h"

#define MIGRATE_KEYS_MAX	200	/* flm-keyd's KEYD_LEGACY_MAX */
#define MIGRATE_ENGINE_KEY	"engines.ollama.url"

/* What the live daemons say, fetched once. */
struct migrate_live {
	struct json_object	*keys;		/* api-keys list */
	struct json_object	*policy;	/* the policy object */
	struct json_object	*proxies;	/* proxy status */
	struct json_object	*config;	/* config list */
};

struct migrate_plan {
	struct json_object	*policy;	/* after apply, normalised */
	struct json_object	*origins_added;	/* strings */
	const char		*engine_from;	/* NULL: not set */
	int			 engine_change;
};

static void
migrate_live_free(struct migrate_live *l)
{
	json_object_put(l->keys);
	json_object_put(l->policy);
	json_object_put(l->proxies);
	json_object_put(l->config);
}

static int
migrate_fetch(struct cli *c, struct migrate_live *l)
{
	struct json_object	*res = NULL, *p;
	int			 rc;

	if ((rc = cli_request(c, IMSG_CTL_KEY_LIST, NULL, &l->keys)) != 0 ||
	    (rc = cli_request(c, IMSG_CTL_PROXY_STATUS, NULL,
	    &l->proxies)) != 0 ||
	    (rc = cli_request(c, IMSG_CTL_CONFIG_LIST, NULL, &l->config)) != 0 ||
	    (rc = cli_request(c, IMSG_CTL_POLICY_GET, NULL, &res)) != 0)
		return rc;
	if (!json_object_object_get_ex(res, "policy", &p) ||
	    !json_object_is_type(l->keys, json_type_array) ||
	    !json_object_is_type(l->proxies, json_type_array)) {
		json_object_put(res);
		fprintf(stderr, "flm: unexpected answer from flmd\n");
		return FLM_EX_ERROR;
	}
	l->policy = json_object_get(p);
	json_object_put(res);
	return FLM_EX_OK;
}

/* A label already taken in security.db (revoked keys keep theirs). */
static void
migrate_labels_free(struct legacy_set *s, struct migrate_live *l)
{
	size_t	 i, j, n = json_object_array_length(l->keys);

	for (i = 0; i < s->nkeys; i++)
		for (j = 0; j < n; j++) {
			struct json_object *k = json_object_array_get_idx(
			    l->keys, j);

			if (strcmp(jstr(k, "label"), s->keys[i].label) != 0)
				continue;
			legacy_error(s, s->keys[i].where, "label '%s': a key "
			    "with that label already exists (%s, %s)",
			    s->keys[i].label, jstr(k, "id"), jstr(k, "state"));
			break;
		}
}

static int
migrate_has(struct json_object *arr, const char *s)
{
	size_t	 i, n = arr != NULL ? json_object_array_length(arr) : 0;

	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr,
		    i)), s) == 0)
			return 1;
	return 0;
}

/* The live policy with OLLAMA_ORIGINS added to cors.allowed_origins,
 * checked and spelled out as keyd will store it. */
static void
migrate_policy(struct legacy_set *s, struct migrate_live *l,
    struct migrate_plan *pl)
{
	struct json_object	*pol = NULL, *cors, *arr;
	struct policy		 p;
	char			 err[512];
	size_t			 i;

	pl->origins_added = json_object_new_array();
	if (s->norigins == 0)
		return;
	/* json-c copies into a NULL pointer only (else EINVAL, and pol as
	 * it was: stack garbage, which -O0 showed). */
	if (json_object_deep_copy(l->policy, &pol, NULL) != 0) {
		legacy_error(s, s->origins_where, "OLLAMA_ORIGINS: cannot "
		    "copy FLM's CORS policy");
		return;
	}
	if (!json_object_object_get_ex(pol, "cors", &cors)) {
		cors = json_object_new_object();
		json_object_object_add(pol, "cors", cors);
	}
	if (!json_object_object_get_ex(cors, "allowed_origins", &arr)) {
		arr = json_object_new_array();
		json_object_object_add(cors, "allowed_origins", arr);
	}
	for (i = 0; i < s->norigins; i++) {
		if (migrate_has(arr, s->origins[i]) ||
		    migrate_has(pl->origins_added, s->origins[i]))
			continue;
		json_object_array_add(arr, json_object_new_string(
		    s->origins[i]));
		json_object_array_add(pl->origins_added,
		    json_object_new_string(s->origins[i]));
	}
	if (json_object_array_length(pl->origins_added) == 0) {
		json_object_put(pol);
		return;
	}
	if (policy_parse(pol, &p, err, sizeof(err)) == -1)
		legacy_error(s, s->origins_where, "OLLAMA_ORIGINS: FLM's CORS "
		    "policy refuses it: %s", err);
	else {
		pl->policy = policy_json(&p);
		policy_free(&p);
	}
	json_object_put(pol);
}

static void
migrate_engine(struct legacy_set *s, struct migrate_live *l,
    struct migrate_plan *pl)
{
	struct json_object	*v;

	if (s->ollama_url == NULL)
		return;
	if (json_object_object_get_ex(l->config, MIGRATE_ENGINE_KEY, &v))
		pl->engine_from = json_object_get_string(v);
	pl->engine_change = pl->engine_from == NULL ||
	    strcmp(pl->engine_from, s->ollama_url) != 0;
}

static const char *
migrate_kind(const struct legacy_key *k)
{
	return k->kind == LEGACY_PLAIN ? "plain" : "bcrypt";
}

static struct json_object *
migrate_plan_json(struct cli *c, const char *ts, struct legacy_set *s,
    struct migrate_plan *pl)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*arr = json_object_new_array(), *k, *e;
	size_t			 i;

	json_object_object_add(o, "ts", json_object_new_string(ts));
	for (i = 0; i < (size_t)c->nfrom; i++)
		json_object_array_add(arr, json_object_new_string(c->from[i]));
	json_object_object_add(o, "sources", arr);
	arr = json_object_new_array();
	for (i = 0; i < s->nkeys; i++) {
		k = json_object_new_object();
		json_object_object_add(k, "label", json_object_new_string(
		    s->keys[i].label));
		json_object_object_add(k, "legacy", json_object_new_string(
		    migrate_kind(&s->keys[i])));
		json_object_object_add(k, "from", json_object_new_string(
		    s->keys[i].where));
		json_object_array_add(arr, k);
	}
	json_object_object_add(o, "keys", arr);
	json_object_object_add(o, "cors_origins_added",
	    json_object_get(pl->origins_added));
	e = NULL;
	if (pl->engine_change) {
		e = json_object_new_object();
		json_object_object_add(e, "setting", json_object_new_string(
		    MIGRATE_ENGINE_KEY));
		json_object_object_add(e, "from", pl->engine_from ?
		    json_object_new_string(pl->engine_from) : NULL);
		json_object_object_add(e, "to", json_object_new_string(
		    s->ollama_url));
	}
	json_object_object_add(o, "engine", e);
	return o;
}

static char *
migrate_diff(const char *ts, struct legacy_set *s, struct migrate_plan *pl)
{
	char	*buf = NULL;
	size_t	 len = 0, i, n = 0;
	FILE	*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(f, "# flm migrate legacy %s: what --apply changes\n", ts);
	for (i = 0; i < s->nkeys; i++, n++)
		fprintf(f, "+ api_keys %s (%s, from %s)\n", s->keys[i].label,
		    migrate_kind(&s->keys[i]), s->keys[i].where);
	for (i = 0; i < json_object_array_length(pl->origins_added); i++, n++)
		fprintf(f, "+ cors.allowed_origins %s\n", json_object_get_string(
		    json_object_array_get_idx(pl->origins_added, i)));
	if (pl->engine_change) {
		fprintf(f, "~ %s %s -> %s\n", MIGRATE_ENGINE_KEY,
		    pl->engine_from ? pl->engine_from : "(not set)",
		    s->ollama_url);
		n++;
	}
	if (n == 0)
		fprintf(f, "= nothing to change\n");
	fclose(f);
	return buf;
}

static int
migrate_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The live state as it should be after apply: flm check --against. */
static struct json_object *
migrate_state(struct legacy_set *s, struct migrate_live *l,
    struct migrate_plan *pl)
{
	struct json_object	*o = json_object_new_object(), *k, *arr, *p;
	const char		**labels;
	size_t			 i, n = 0, nk = json_object_array_length(l->keys);

	if ((labels = calloc(nk + s->nkeys + 1, sizeof(*labels))) == NULL) {
		json_object_put(o);
		return NULL;
	}
	for (i = 0; i < nk; i++) {
		k = json_object_array_get_idx(l->keys, i);
		if (strcmp(jstr(k, "state"), "revoked") != 0)
			labels[n++] = jstr(k, "label");
	}
	for (i = 0; i < s->nkeys; i++)
		labels[n++] = s->keys[i].label;
	qsort(labels, n, sizeof(*labels), migrate_strcmp);
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(labels[i]));
	free(labels);
	k = json_object_new_object();
	json_object_object_add(k, "count", json_object_new_int64((int64_t)n));
	json_object_object_add(k, "labels", arr);
	json_object_object_add(o, "keys", k);
	json_object_object_add(o, "policy", json_object_get(pl->policy ?
	    pl->policy : l->policy));
	arr = json_object_new_array();
	for (i = 0; i < json_object_array_length(l->proxies); i++) {
		struct json_object	*h = json_object_array_get_idx(
		    l->proxies, i), *v;
		static const char *const f[] = { "id", "bind", "port", "mode" };
		size_t			 j;

		p = json_object_new_object();
		for (j = 0; j < 4; j++)
			json_object_object_add(p, f[j],
			    json_object_object_get_ex(h, f[j], &v) ?
			    json_object_get(v) : NULL);
		json_object_array_add(arr, p);
	}
	json_object_object_add(o, "proxies", arr);
	return o;
}

/* DIR (made 0700 if new) with plan.json, diff.txt and state.json. */
static int
migrate_export(const char *dir, struct json_object *plan, const char *diff,
    struct json_object *state)
{
	char		 path[PATH_MAX];
	struct stat	 st;
	const char	*files[3] = { "plan.json", "diff.txt", "state.json" };
	const char	*texts[3];
	int		 i;

	if (mkdir(dir, 0700) == -1 && (errno != EEXIST ||
	    lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    chmod(dir, 0700) == -1)) {
		fprintf(stderr, "flm: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	texts[0] = json_object_to_json_string_ext(plan,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	texts[1] = diff;
	texts[2] = json_object_to_json_string_ext(state,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    files[i]) >= sizeof(path) ||
		    file_replace(path, texts[i], 0600) == -1) {
			fprintf(stderr, "flm: cannot write %s\n", path);
			return -1;
		}
	}
	return 0;
}

/* The request flmd hands keyd: plain keys ride on it, wiped after. */
static struct json_object *
migrate_request(const char *ts, struct legacy_set *s, struct migrate_plan *pl)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*arr = json_object_new_array(), *k;
	size_t			 i;

	json_object_object_add(o, "ts", json_object_new_string(ts));
	for (i = 0; i < s->nkeys; i++) {
		k = json_object_new_object();
		json_object_object_add(k, "label", json_object_new_string(
		    s->keys[i].label));
		json_object_object_add(k, "legacy", json_object_new_string(
		    migrate_kind(&s->keys[i])));
		if (s->keys[i].kind == LEGACY_PLAIN)
			json_object_object_add(k, "secret",
			    json_object_new_string(s->keys[i].secret));
		else
			json_object_object_add(k, "hash",
			    json_object_new_string(s->keys[i].hash));
		json_object_array_add(arr, k);
	}
	json_object_object_add(o, "keys", arr);
	if (pl->policy != NULL)
		json_object_object_add(o, "policy", json_object_get(
		    pl->policy));
	if (pl->engine_change)
		json_object_object_add(o, "engine_url",
		    json_object_new_string(s->ollama_url));
	return o;
}

static void
migrate_applied_table(struct json_object *res)
{
	struct json_object	*v;

	printf("imported %s keys (%s keys in all)\n", jstr(res, "imported"),
	    jstr(res, "count"));
	if (json_object_object_get_ex(res, "policy", &v) && v != NULL)
		printf("security policy updated (CORS origins added)\n");
	if (json_object_object_get_ex(res, "engine_url", &v))
		printf("%s = %s\n", MIGRATE_ENGINE_KEY, json_object_get_string(v));
	if (json_object_object_get_ex(res, "engine_error", &v))
		printf("%s NOT set: %s\n", MIGRATE_ENGINE_KEY,
		    json_object_get_string(v));
	printf("log: %s\n", jstr(res, "log"));
}

static int
migrate_report(struct legacy_set *s)
{
	size_t	 i;

	if (s->nerrors == 0)
		return 0;
	for (i = 0; i < s->nerrors; i++)
		fprintf(stderr, "flm: %s\n", s->errors[i]);
	fprintf(stderr, "flm: migrate legacy: %zu problem%s; nothing "
	    "changed\n", s->nerrors, s->nerrors == 1 ? "" : "s");
	return -1;
}

int
cmd_migrate(struct cli *c, int argc, char **argv)
{
	struct legacy_set	 s;
	struct migrate_live	 live;
	struct migrate_plan	 pl;
	struct json_object	*plan = NULL, *state = NULL, *req, *res = NULL;
	char			 ts[32], dir[PATH_MAX], *diff = NULL;
	time_t			 now = time(NULL);
	struct tm		 tm;
	int			 i, rc = FLM_EX_ERROR;

	(void)argc;
	(void)argv;
	memset(&s, 0, sizeof(s));
	memset(&live, 0, sizeof(live));
	memset(&pl, 0, sizeof(pl));
	if (c->nfrom == 0)
		cli_usage(c, "--from KIND:PATH is required");
	for (i = 0; i < c->nfrom; i++)
		if (legacy_source(&s, c->from[i]) == -1) {
			legacy_free(&s);
			cli_usage(c, "--from: expected keys-file:PATH, "
			    "tokens-db:PATH or ollama-env:PATH");
		}
	legacy_check(&s);
	if (s.nkeys > MIGRATE_KEYS_MAX)
		legacy_error(&s, "input", "%zu keys: at most %d a run; split "
		    "the input", s.nkeys, MIGRATE_KEYS_MAX);
	if (migrate_report(&s) == -1)
		goto done;
	if ((rc = migrate_fetch(c, &live)) != 0)
		goto done;
	rc = FLM_EX_ERROR;
	migrate_labels_free(&s, &live);
	migrate_policy(&s, &live, &pl);
	migrate_engine(&s, &live, &pl);
	if (migrate_report(&s) == -1)
		goto done;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(dir, sizeof(dir), "%s", c->out != NULL ? c->out : "");
	if (c->out == NULL)
		snprintf(dir, sizeof(dir), "/tmp/flm-migrate-%s", ts);
	plan = migrate_plan_json(c, ts, &s, &pl);
	state = migrate_state(&s, &live, &pl);
	diff = migrate_diff(ts, &s, &pl);
	if (state == NULL || diff == NULL ||
	    migrate_export(dir, plan, diff, state) == -1)
		goto done;
	if (!c->apply) {
		if (c->json || !isatty(STDOUT_FILENO)) {
			json_object_object_add(plan, "out",
			    json_object_new_string(dir));
			print_json(plan);
		} else
			printf("%sreview it, then run again with --apply\n"
			    "written to %s\n", diff, dir);
		rc = FLM_EX_OK;
		goto done;
	}
	req = migrate_request(ts, &s, &pl);
	rc = cli_request(c, IMSG_CTL_MIGRATE_APPLY, req, &res);
	legacy_json_wipe(req);
	json_object_put(req);
	if (rc == FLM_EX_OK) {
		json_object_object_add(res, "out", json_object_new_string(dir));
		print_result(c, res, migrate_applied_table);
	}
done:
	json_object_put(res);
	json_object_put(plan);
	json_object_put(state);
	json_object_put(pl.policy);
	json_object_put(pl.origins_added);
	free(diff);
	migrate_live_free(&live);
	legacy_free(&s);
	return rc;
}
