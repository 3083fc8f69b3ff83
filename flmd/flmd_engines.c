/*
 * What proxyd's probes found, completed with what only flmd can see:
 * whether an engine that does not answer is installed at all (its
 * binary on PATH, a systemd unit, its data directory).  Kept in
 * engines_cache for flm engines detect and flm models list.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "db.h"
#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"

static const struct {
	const char	*kind;
	const char	*bins[3];
	const char	*units[2];
	const char	*dirs[2];	/* below $HOME */
} engine_marks[] = {
	{ "ollama", { "ollama" }, { "ollama.service" },
	  { ".ollama/models", NULL } },
	{ "lmstudio", { "lms", "lm-studio" }, { NULL },
	  { ".lmstudio", ".cache/lm-studio" } },
	{ "vllm", { "vllm" }, { "vllm.service" }, { NULL } },
	{ "llamacpp", { "llama-server" }, { "llama-server.service",
	  "llamacpp.service" }, { NULL } },
};

static const char *unit_dirs[] = {
	"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"
};

static int
engines_on_path(const char *bin, char *where, size_t sz)
{
	const char	*path = getenv("PATH");
	char		*copy, *p, *dir;
	int		 found = 0;

	if (path == NULL || (copy = strdup(path)) == NULL)
		return 0;
	for (p = copy; !found && (dir = strsep(&p, ":")) != NULL;) {
		if (*dir == '\0')
			continue;
		snprintf(where, sz, "%s/%s", dir, bin);
		found = access(where, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* Installed but not answering: say where we saw it, else 0. */
static int
engines_installed(const char *kind, char *why, size_t sz)
{
	struct stat	 st;
	const char	*home = getenv("HOME");
	char		 p[1024];
	size_t		 i, j;

	for (i = 0; i < sizeof(engine_marks) / sizeof(engine_marks[0]); i++) {
		if (strcmp(engine_marks[i].kind, kind) != 0)
			continue;
		for (j = 0; j < 3 && engine_marks[i].bins[j]; j++)
			if (engines_on_path(engine_marks[i].bins[j], p,
			    sizeof(p))) {
				snprintf(why, sz, "installed (%.400s) but not "
				    "running", p);
				return 1;
			}
		for (j = 0; j < 2 && engine_marks[i].units[j]; j++) {
			size_t	 d;

			for (d = 0; d < 3; d++) {
				snprintf(p, sizeof(p), "%s/%s", unit_dirs[d],
				    engine_marks[i].units[j]);
				if (stat(p, &st) == 0) {
					snprintf(why, sz, "installed (unit %.400s) "
					    "but not running", p);
					return 1;
				}
			}
		}
		for (j = 0; j < 2 && home && engine_marks[i].dirs[j]; j++) {
			snprintf(p, sizeof(p), "%s/%s", home,
			    engine_marks[i].dirs[j]);
			if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
				snprintf(why, sz, "installed (data in %.400s) but "
				    "not running", p);
				return 1;
			}
		}
	}
	return 0;
}

static void
engines_store(struct json_object *e)
{
	sqlite3_stmt	*st;
	const char	*id = json_object_get_string(json_object_object_get(e,
			    "id"));

	if (config_db.h == NULL || config_db.safe_mode || sqlite3_prepare_v2(
	    config_db.h, "INSERT OR REPLACE INTO engines_cache (engine_id, "
	    "state_json, cached_at) VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:"
	    "%fZ', 'now'))", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, json_object_to_json_string_ext(e,
	    JSON_C_TO_STRING_PLAIN), -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("engines_cache: %s", db_strerror(&config_db,
		    sqlite3_extended_errcode(config_db.h)));
	sqlite3_finalize(st);
}

/*
 * What proxyd's verdicts may hold: each member, its type and bound.  A
 * member not listed here is refused (a new one is added here first).
 */
enum engines_type {
	ET_STR,		/* a string of at most max bytes */
	ET_STR_NULL,	/* the same, or null */
	ET_INT,		/* an integer from 0 to max */
	ET_INT_NULL,	/* the same, or null */
	ET_BOOL,
	ET_ENGINE,	/* an engine's own value, relayed by proxyd: null, bool,
			   number or a string of at most max bytes; any other
			   is the engine's doing and becomes null */
	ET_MODELS,	/* an array of at most max models */
	ET_BREAKER	/* an object of breaker_members */
};

struct engines_member {
	const char		*name;
	enum engines_type	 type;
	int64_t			 max;
};

#define ENGINES_MAX		64	/* verdicts in one message */
#define ENGINES_MAX_MODELS	8192	/* more than CHAN_MAX_MSG can carry */

static const struct engines_member verdict_members[] = {
	{ "id",			ET_STR,		32 },
	{ "kind",		ET_STR,		16 },
	{ "base_url",		ET_STR,		300 },
	{ "state",		ET_STR,		32 },
	{ "version",		ET_ENGINE,	256 },
	{ "model_count",	ET_INT,		ENGINES_MAX_MODELS },
	{ "latency_ms",		ET_INT,		3600 * 1000 },
	{ "reason",		ET_STR_NULL,	512 },
	{ "models",		ET_MODELS,	ENGINES_MAX_MODELS },
	{ "openai",		ET_BOOL,	0 },
	{ "refused",		ET_STR,		32 },	/* the code of its 502s */
	{ "breaker",		ET_BREAKER,	0 },	/* proxyd_pool.c */
	{ "owner_uid",		ET_INT_NULL,	UINT32_MAX },	/* engines_owner */
};

static const struct engines_member breaker_members[] = {
	{ "state",		ET_STR,		16 },
	{ "failures_in_a_row",	ET_INT,		1000000 },
	{ "trial_in",		ET_INT,		3600 },
	{ "outstanding",	ET_INT,		1000000 },
};

static const struct engines_member model_members[] = {
	{ "id",			ET_STR,		600 },
	{ "engine",		ET_STR,		32 },
	{ "model",		ET_ENGINE,	512 },
	{ "size_bytes",		ET_ENGINE,	256 },
	{ "quantization",	ET_ENGINE,	256 },
	{ "parameters",		ET_ENGINE,	256 },
	{ "family",		ET_ENGINE,	256 },
	{ "owned_by",		ET_ENGINE,	256 },
	{ "created",		ET_ENGINE,	256 },
	{ "context_length",	ET_ENGINE,	256 },
};

/* The states proxyd's probes give (InstalledOnly is flmd's own). */
static const char *engines_states[] = {
	"RunningHealthy", "RunningDegraded", "ErrorApi", "ErrorNetwork",
	"NotFound", "OwnerChanged"
};

static int	engines_members_ok(struct json_object *,
		    const struct engines_member *, size_t, const char *, char *,
		    size_t);
static int	engines_model_valid(struct json_object *, const char *,
		    char *, size_t);

static int
engines_value_ok(const struct engines_member *em, struct json_object *v,
    const char *engine, char *why, size_t sz)
{
	size_t	 i;

	switch (em->type) {
	case ET_STR_NULL:
		if (v == NULL)
			return 1;
		/* FALLTHROUGH */
	case ET_STR:
		return json_is_string_max(v, (size_t)em->max);
	case ET_INT_NULL:
		if (v == NULL)
			return 1;
		/* FALLTHROUGH */
	case ET_INT:
		return json_is_int_range(v, 0, em->max);
	case ET_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case ET_ENGINE:
		return v == NULL || json_object_is_type(v, json_type_boolean) ||
		    json_object_is_type(v, json_type_int) ||
		    json_object_is_type(v, json_type_double) ||
		    json_is_string_max(v, (size_t)em->max);
	case ET_BREAKER:
		return json_object_is_type(v, json_type_object) &&
		    engines_members_ok(v, breaker_members, sizeof(
		    breaker_members) / sizeof(breaker_members[0]), engine, why,
		    sz);
	case ET_MODELS:
		if (!json_object_is_type(v, json_type_array) ||
		    json_object_array_length(v) > (size_t)em->max)
			return 0;
		for (i = 0; i < json_object_array_length(v); i++)
			if (!engines_model_valid(json_object_array_get_idx(v,
			    i), engine, why, sz))
				return 0;
		return 1;
	}
	return 0;
}

/* Every member of o known to the table and well typed. */
static int
engines_members_ok(struct json_object *o, const struct engines_member *tab,
    size_t n, const char *engine, char *why, size_t sz)
{
	size_t	 i;

	json_object_object_foreach(o, k, v) {
		for (i = 0; i < n; i++)
			if (strcmp(k, tab[i].name) == 0)
				break;
		if (i == n) {
			char	 safe[40];

			log_escape(safe, sizeof(safe), k);
			snprintf(why, sz, "unknown member '%s'", safe);
			return 0;
		}
		/* An engine may answer oddly: not proxyd's fault, nulled. */
		if (engines_value_ok(&tab[i], v, engine, why, sz))
			continue;
		if (tab[i].type == ET_ENGINE) {
			json_object_object_add(o, k, NULL);
			continue;
		}
		if (*why == '\0')
			snprintf(why, sz, "member %s: wrong type or too long",
			    tab[i].name);
		return 0;
	}
	return 1;
}

static int
engines_model_valid(struct json_object *m, const char *engine, char *why,
    size_t sz)
{
	struct json_object	*e;

	if (!json_object_is_type(m, json_type_object) ||
	    !json_object_object_get_ex(m, "id", NULL) ||
	    !json_object_object_get_ex(m, "engine", &e)) {
		snprintf(why, sz, "a model is not an object with id and "
		    "engine");
		return 0;
	}
	if (!engines_members_ok(m, model_members, sizeof(model_members) /
	    sizeof(model_members[0]), engine, why, sz))
		return 0;
	if (strcmp(json_object_get_string(e), engine) != 0) {
		snprintf(why, sz, "a model of another engine");
		return 0;
	}
	return 1;
}

static int
engines_state_known(const char *state)
{
	size_t	 i;

	for (i = 0; i < sizeof(engines_states) / sizeof(engines_states[0]);
	    i++)
		if (strcmp(state, engines_states[i]) == 0)
			return 1;
	return 0;
}

/* One verdict: its members, its state, and an engine flmd configured. */
static int
engines_verdict_valid(struct json_object *e, struct json_object *ids,
    char *why, size_t sz)
{
	struct json_object	*id, *kind, *state;
	char			 safe[80];

	if (!json_object_is_type(e, json_type_object) ||
	    !json_object_object_get_ex(e, "id", &id) ||
	    !json_object_object_get_ex(e, "kind", &kind) ||
	    !json_object_object_get_ex(e, "state", &state) ||
	    !json_is_string_max(id, 32)) {
		snprintf(why, sz, "a verdict is not an object with id, kind "
		    "and state");
		return 0;
	}
	if (!json_object_object_get_ex(ids, json_object_get_string(id),
	    NULL)) {
		/* Only engines flmd configured reach engines_cache. */
		log_escape(safe, sizeof(safe), json_object_get_string(id));
		snprintf(why, sz, "engine '%s' is not configured", safe);
		return 0;
	}
	if (!engines_members_ok(e, verdict_members, sizeof(verdict_members) /
	    sizeof(verdict_members[0]), json_object_get_string(id), why, sz))
		return 0;
	if (!engines_state_known(json_object_get_string(state))) {
		snprintf(why, sz, "unknown state");
		return 0;
	}
	return 1;
}

/*
 * proxyd is less privileged: its verdicts are checked member by member
 * against the tables above, and their engines against the configured
 * ones, before anything here reads them.  why says what was wrong.
 * Members an engine supplies (ET_ENGINE) that are out of bounds are
 * set to null instead: a local engine must not get proxyd restarted.
 */
int
engines_valid(struct json_object *arr, char *why, size_t sz)
{
	struct json_object	*ids;
	size_t			 i;
	int			 ok = 1;

	*why = '\0';
	if (!json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > ENGINES_MAX) {
		snprintf(why, sz, "not an array of at most %d verdicts",
		    ENGINES_MAX);
		return 0;
	}
	ids = config_engine_ids();
	for (i = 0; ok && i < json_object_array_length(arr); i++)
		ok = engines_verdict_valid(json_object_array_get_idx(arr, i),
		    ids, why, sz);
	json_object_put(ids);
	return ok;
}

/* The engine list proxyd was last sent (IMSG_ENGINES), ours. */
static struct json_object	*engines_last;

void
engines_sent(struct json_object *arr)
{
	json_object_put(engines_last);
	engines_last = arr;
}

static struct json_object *
engines_find(const char *id)
{
	struct json_object	*e, *v;
	size_t			 i;

	for (i = 0; engines_last != NULL &&
	    i < json_object_array_length(engines_last); i++) {
		e = json_object_array_get_idx(engines_last, i);
		if (json_object_object_get_ex(e, "id", &v) &&
		    strcmp(json_object_get_string(v), id) == 0)
			return e;
	}
	return NULL;
}

/*
 * The owner of an engine's listener, as proxyd saw it: a uid or null;
 * anything else is dropped (and logged).  The first seen owner of a
 * configured engine is recorded; each verdict then carries the recorded
 * one, owner_recorded, from flmd's own records.  1 if one was recorded
 * now (proxyd is to be told).
 */
static int
engines_owner(struct json_object *e, const char *id)
{
	struct json_object	*v, *sent, *rec;
	char			 err[256];
	int64_t			 uid;
	int			 known;

	if ((sent = engines_find(id)) == NULL)
		return 0;	/* not one flmd configured: nothing kept */
	if ((known = json_object_object_get_ex(sent, "owner_uid", &rec)))
		json_object_object_add(e, "owner_recorded",
		    json_object_get(rec));
	if (!json_object_object_get_ex(e, "owner_uid", &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int) ||
	    (uid = json_object_get_int64(v)) < 0 || uid > UINT32_MAX) {
		log_warnx("engine %s: owner_uid from flm-proxyd is not a uid; "
		    "dropped", id);
		json_object_object_del(e, "owner_uid");
		return 0;
	}
	if (known)
		return 0;	/* a change is proxyd's to refuse */
	if (config_owner_set(id, uid, json_object_get_string(
	    json_object_object_get(sent, "addr")), json_object_get_int(
	    json_object_object_get(sent, "port")), err, sizeof(err)) == -1) {
		log_warnx("engine %s: %s", id, err);
		return 0;
	}
	log_info("engine %s: listener owned by uid %lld, recorded", id,
	    (long long)uid);
	json_object_object_add(e, "owner_recorded", json_object_get(v));
	return 1;
}

/* flm engines trust ID: forget the recorded owner; the next probe
 * records the listener's present one. */
int
engines_trust(const char *id, struct json_object **res, char *err,
    size_t errsz)
{
	struct json_object	*sent, *rec;

	if ((sent = engines_find(id)) == NULL) {
		snprintf(err, errsz, "no engine '%s': see flm engines detect",
		    id);
		return ENOENT;
	}
	if (config_owner_set(id, -1, "", 0, err, errsz) == -1)
		return EROFS;
	*res = json_object_new_object();
	json_object_object_add(*res, "engine", json_object_new_string(id));
	json_object_object_add(*res, "forgotten_owner_uid",
	    json_object_object_get_ex(sent, "owner_uid", &rec) ?
	    json_object_get(rec) : NULL);
	log_info("engine %s: recorded listener owner forgotten by the admin",
	    id);
	proc_send_engines();	/* proxyd probes and reports the owner */
	return 0;
}

/* proxyd's verdicts: add installed-only, cache, and answer a request. */
void
engines_state(uint32_t peerid, struct json_object *arr)
{
	struct json_object	*e, *st, *idv;
	char			 why[512];
	size_t			 i;
	int			 recorded = 0;

	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "id", &idv) ||
		    !json_object_object_get_ex(e, "state", &st))
			continue;
		if (json_object_is_type(idv, json_type_string))
			recorded |= engines_owner(e, json_object_get_string(
			    idv));
		if (strcmp(json_object_get_string(st), "NotFound") == 0 &&
		    engines_installed(json_object_get_string(
		    json_object_object_get(e, "kind")), why, sizeof(why))) {
			json_object_object_add(e, "state",
			    json_object_new_string("InstalledOnly"));
			json_object_object_add(e, "reason",
			    json_object_new_string(why));
		}
		engines_store(e);
	}
	if (peerid != 0)
		control_engines_reply(peerid, arr);
	if (recorded)
		proc_send_engines();
}
