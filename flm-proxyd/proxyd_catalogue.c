/*
 * The model catalogue served as GET /v1/models: the models of every
 * usable engine from the last probe, as flm://engine/model names.  It
 * is rebuilt (and serialised once) whenever a probe ends; a request
 * that arrives before the first probe of a new engine list has ended
 * waits for it rather than see an empty list.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "keyscope.h"
#include "log.h"
#include "proxyd.h"

struct cat_wait {
	TAILQ_ENTRY(cat_wait)	 entry;
	struct http_req		*req;
	http_req_cb		 cb;
};

/* One model of a usable engine, for routing. */
struct cat_model {
	char			*id;		/* flm://engine/model */
	char			*model;		/* the engine's own name */
	char			 engine[33];
	int			 openai;
	struct json_object	*info;		/* the probe's, for /api/show */
};

static TAILQ_HEAD(, cat_wait)	 cat_waiting =
    TAILQ_HEAD_INITIALIZER(cat_waiting);
static char			*cat_body;	/* the whole JSON answer */
static size_t			 cat_len;
static char			*cat_tags;	/* as Ollama's /api/tags */
static size_t			 cat_tags_len;
static unsigned int		 cat_gen;	/* engine list generation */
static int			 cat_fresh;	/* built for cat_gen */
static struct cat_model		*cat_models;
static size_t			 cat_nmodels;
/* Engines whose listener changed owner, or that failed TLS's checks:
 * why, for their requests. */
static struct {
	char		 id[33];
	char		 why[300];
	char		 code[33];	/* the error code of the 502 */
}				 cat_blocked[PROXYD_MAX_ENGINES];
static int			 cat_nblocked;

/* Why requests to engine id are refused (and the code), or -1. */
static int
catalogue_blocked(const char *id)
{
	int	 i;

	for (i = 0; i < cat_nblocked; i++)
		if (strcmp(cat_blocked[i].id, id) == 0)
			return i;
	return -1;
}

static void
catalogue_block(const char *id, struct json_object *e)
{
	struct json_object	*why;

	if (cat_nblocked == PROXYD_MAX_ENGINES)
		return;
	snprintf(cat_blocked[cat_nblocked].id, sizeof(cat_blocked[0].id),
	    "%s", id);
	snprintf(cat_blocked[cat_nblocked].why, sizeof(cat_blocked[0].why),
	    "%s", json_object_object_get_ex(e, "reason", &why) ?
	    json_object_get_string(why) : "its listener changed owner");
	snprintf(cat_blocked[cat_nblocked].code, sizeof(cat_blocked[0].code),
	    "%s", json_object_object_get_ex(e, "refused", &why) ?
	    json_object_get_string(why) : "engine_owner_changed");
	cat_nblocked++;
}

static struct json_object *catalogue_entry(struct json_object *);

/* The lists a key limited to some models sees: made for it. */
static int
catalogue_scoped(struct http_req *req, int tags)
{
	const struct keyscope	*ks = scope_of(req);
	struct json_object	*o, *a;
	size_t			 i;

	if (ks == NULL || !keyscope_limits_models(ks))
		return 0;
	a = json_object_new_array();
	for (i = 0; i < cat_nmodels; i++)
		if (cat_models[i].info != NULL && keyscope_model(ks,
		    cat_models[i].engine, cat_models[i].model))
			json_object_array_add(a, tags ?
			    fo_tag_entry(cat_models[i].info) :
			    catalogue_entry(cat_models[i].info));
	o = json_object_new_object();
	if (!tags)
		json_object_object_add(o, "object",
		    json_object_new_string("list"));
	json_object_object_add(o, tags ? "models" : "data", a);
	http_json(req, 200, o);
	json_object_put(o);
	return 1;
}

static void
catalogue_reply(struct http_req *req)
{
	if (catalogue_scoped(req, 0))
		return;
	if (cat_body != NULL)
		http_reply(req, 200, "application/json", cat_body, cat_len);
	else
		http_reply(req, 200, "application/json",
		    "{\"object\":\"list\",\"data\":[]}", 26);
}

/* The engine list changed: what we have describes the old one. */
unsigned int
catalogue_stale(void)
{
	cat_fresh = 0;
	return ++cat_gen;
}

unsigned int
catalogue_generation(void)
{
	return cat_gen;
}

static struct json_object *
catalogue_entry(struct json_object *m)
{
	struct json_object	*o = json_object_new_object(), *v;

	json_object_object_add(o, "id",
	    json_object_get(json_object_object_get(m, "id")));
	json_object_object_add(o, "object", json_object_new_string("model"));
	json_object_object_add(o, "created",
	    json_object_object_get_ex(m, "created", &v) ?
	    json_object_get(v) : json_object_new_int(0));
	json_object_object_add(o, "owned_by",
	    json_object_get(json_object_object_get(m, "engine")));
	return o;
}

static void
catalogue_free_models(void)
{
	size_t	 i;

	for (i = 0; i < cat_nmodels; i++) {
		free(cat_models[i].id);
		free(cat_models[i].model);
		json_object_put(cat_models[i].info);
	}
	free(cat_models);
	cat_models = NULL;
	cat_nmodels = 0;
}

/* Remember one model of a usable engine; verdicts come from our own
 * probe, but their strings came from an engine: checked anyway. */
static void
catalogue_add_model(struct json_object *m, const char *engine, int openai)
{
	struct cat_model	*cm, *n;
	const char		*id, *model;

	id = json_object_get_string(json_object_object_get(m, "id"));
	model = json_object_get_string(json_object_object_get(m, "model"));
	if (id == NULL || model == NULL || strlen(engine) >= sizeof(cm->engine))
		return;
	if ((n = reallocarray(cat_models, cat_nmodels + 1,
	    sizeof(*cat_models))) == NULL)
		return;
	cat_models = n;
	cm = &cat_models[cat_nmodels];
	memset(cm, 0, sizeof(*cm));
	if ((cm->id = strdup(id)) == NULL ||
	    (cm->model = strdup(model)) == NULL) {
		free(cm->id);
		return;
	}
	snprintf(cm->engine, sizeof(cm->engine), "%s", engine);
	cm->openai = openai;
	cm->info = json_object_get(m);
	cat_nmodels++;
}

/* A probe of engine list generation gen ended with these verdicts. */
void
catalogue_update(struct json_object *verdicts, unsigned int gen)
{
	struct json_object	*o, *data, *e, *ms, *m, *v, *tags;
	struct cat_wait		*w;
	const char		*state, *s, *engine;
	size_t			 i, j;
	int			 openai;

	if (gen != cat_gen)
		return;		/* an older list's probe: not the answer */
	catalogue_free_models();
	cat_nblocked = 0;
	data = json_object_new_array();
	tags = json_object_new_array();
	for (i = 0; i < json_object_array_length(verdicts); i++) {
		e = json_object_array_get_idx(verdicts, i);
		state = json_object_get_string(json_object_object_get(e,
		    "state"));
		engine = json_object_get_string(json_object_object_get(e,
		    "id"));
		if (state != NULL && engine != NULL &&
		    (strcmp(state, "OwnerChanged") == 0 ||
		    json_object_object_get_ex(e, "refused", NULL)))
			catalogue_block(engine, e);
		if (state == NULL || engine == NULL ||
		    strncmp(state, "Running", 7) != 0 ||
		    !json_object_object_get_ex(e, "models", &ms))
			continue;
		openai = !json_object_object_get_ex(e, "openai", &v) ||
		    json_object_get_boolean(v);
		for (j = 0; j < json_object_array_length(ms); j++) {
			m = json_object_array_get_idx(ms, j);
			json_object_array_add(data, catalogue_entry(m));
			json_object_array_add(tags, fo_tag_entry(m));
			catalogue_add_model(m, engine, openai);
		}
	}
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", data);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &cat_len);
	free(cat_body);
	if ((cat_body = strdup(s)) == NULL)
		cat_len = 0;
	json_object_put(o);
	o = json_object_new_object();
	json_object_object_add(o, "models", tags);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &cat_tags_len);
	free(cat_tags);
	if ((cat_tags = strdup(s)) == NULL)
		cat_tags_len = 0;
	json_object_put(o);
	cat_fresh = 1;
	while ((w = TAILQ_FIRST(&cat_waiting)) != NULL) {
		TAILQ_REMOVE(&cat_waiting, w, entry);
		http_release(w->req);
		w->cb(w->req);
		free(w);
	}
}

static void
catalogue_abort(struct http_req *req, void *arg)
{
	struct cat_wait	*w = arg;

	(void)req;
	TAILQ_REMOVE(&cat_waiting, w, entry);
	free(w);
}

/* cb(req) once the catalogue describes the current engine list. */
void
catalogue_when_fresh(struct http_req *req, http_req_cb cb)
{
	struct cat_wait	*w;

	if (cat_fresh || (w = calloc(1, sizeof(*w))) == NULL) {
		cb(req);
		return;
	}
	w->req = req;
	w->cb = cb;
	TAILQ_INSERT_TAIL(&cat_waiting, w, entry);
	http_hold(req, catalogue_abort, w);
}

static void
catalogue_tags_reply(struct http_req *req)
{
	if (catalogue_scoped(req, 1))
		return;
	if (cat_tags != NULL)
		http_reply(req, 200, "application/json", cat_tags,
		    cat_tags_len);
	else
		http_reply(req, 200, "application/json", "{\"models\":[]}",
		    13);
}

/* GET /api/tags: the same models, as Ollama lists them. */
void
catalogue_tags(struct http_req *req)
{
	catalogue_when_fresh(req, catalogue_tags_reply);
}

/* GET /v1/models, the key (if any) already verified. */
void
catalogue_models(struct http_req *req)
{
	catalogue_when_fresh(req, catalogue_reply);
}

static const struct proxyd_engine *
catalogue_engine(const char *id)
{
	int	 i;

	for (i = 0; i < px->nengines; i++)
		if (strcmp(px->engines[i].id, id) == 0)
			return &px->engines[i];
	return NULL;
}

/* flm://ENGINE/MODEL of an engine refused for its owner: say why. */
static int
catalogue_blocked_model(const char *model, struct route *rt, char *err,
    size_t errsz)
{
	char		 id[33];
	const char	*slash;
	int		 b;

	if ((slash = strchr(model + 6, '/')) == NULL ||
	    (size_t)(slash - (model + 6)) >= sizeof(id))
		return 0;
	memcpy(id, model + 6, slash - (model + 6));
	id[slash - (model + 6)] = '\0';
	if ((b = catalogue_blocked(id)) == -1)
		return 0;
	snprintf(err, errsz, "Engine %s: %s.", id, cat_blocked[b].why);
	rt->code = cat_blocked[b].code;
	return 1;
}

/*
 * The engines a bare name has (a pool when more than one): one picked
 * by pool_pick, never exclude (the engine a retried call failed on).
 * 0, or the HTTP status with err saying why.
 */
static int
catalogue_pool(const char *name, const char *key, const char *exclude,
    const struct keyscope *ks, struct route *rt, char *err, size_t errsz)
{
	struct cat_model	*hits[PROXYD_MAX_ENGINES];
	const char		*ids[PROXYD_MAX_ENGINES];
	int			 prio[PROXYD_MAX_ENGINES];
	const struct proxyd_engine *e;
	size_t			 i;
	int			 n = 0, k, outside = 0;

	for (i = 0; i < cat_nmodels && n < PROXYD_MAX_ENGINES; i++) {
		if (strcmp(cat_models[i].model, name) != 0 ||
		    (e = catalogue_engine(cat_models[i].engine)) == NULL)
			continue;
		/* A scoped key's pool has only the members it may use. */
		if (ks != NULL && !keyscope_model(ks, cat_models[i].engine,
		    cat_models[i].model)) {
			outside++;
			continue;
		}
		hits[n] = &cat_models[i];
		ids[n] = cat_models[i].engine;
		prio[n++] = e->priority;
	}
	/* A key limited to some models learns nothing of the others:
	 * none of its own is "not yours", whether it exists or not. */
	if (n == 0 && (outside > 0 || (ks != NULL &&
	    keyscope_limits_models(ks)))) {
		snprintf(err, errsz, "This API key may not use the model '%s'.",
		    name);
		return 403;
	}
	if (n == 0) {
		snprintf(err, errsz, "The model '%s' does not exist or its "
		    "engine is not running; GET /v1/models lists the models "
		    "served.", name);
		return 404;
	}
	/* One engine is no pool: no breaker keeps a request from it. */
	if (n == 1 && (exclude == NULL || strcmp(ids[0], exclude) != 0))
		k = 0;
	else if ((k = pool_pick(ids, prio, n, key, exclude,
	    &rt->retry_after)) == -1) {
		snprintf(err, errsz, "No engine of the pool for '%s' can take "
		    "the request now: %s.", name, exclude != NULL && n == 1 ?
		    "its only engine failed" : "every circuit breaker is open");
		return 503;
	}
	rt->engine = catalogue_engine(hits[k]->engine);
	rt->model = hits[k]->model;
	rt->openai = hits[k]->openai;
	rt->info = hits[k]->info;
	rt->pool = n > 1;
	return 0;
}

/* flm://ENGINE/MODEL by its name alone: within the key's scope? */
static int
catalogue_in_scope(const struct keyscope *ks, const char *model)
{
	char		 engine[33];
	const char	*slash = strchr(model + 6, '/');

	if (slash == NULL || (size_t)(slash - (model + 6)) >= sizeof(engine))
		return !keyscope_limits_models(ks);
	memcpy(engine, model + 6, slash - (model + 6));
	engine[slash - (model + 6)] = '\0';
	return keyscope_model(ks, engine, slash + 1);
}

/*
 * Which engine serves model: flm://ENGINE/MODEL pins one; a bare name
 * or flm://pool/NAME is balanced across the engines that have it.  key
 * (the API key's id) for pools.affinity, exclude for a retry.  0, or
 * the HTTP status with err saying why.
 */
int
catalogue_route(const char *model, const char *key, const char *exclude,
    const struct keyscope *ks, struct route *rt, char *err, size_t errsz)
{
	struct cat_model	*hit = NULL;
	size_t			 i;

	memset(rt, 0, sizeof(*rt));
	if (strncmp(model, "flm://pool/", 11) == 0)
		return catalogue_pool(model + 11, key, exclude, ks, rt, err,
		    errsz);
	if (strncmp(model, "flm://", 6) != 0)
		return catalogue_pool(model, key, exclude, ks, rt, err, errsz);
	if (ks != NULL && !catalogue_in_scope(ks, model)) {
		snprintf(err, errsz, "This API key may not use the model '%s'.",
		    model);
		return 403;
	}
	for (i = 0; i < cat_nmodels && hit == NULL; i++)
		if (strcmp(cat_models[i].id, model) == 0)
			hit = &cat_models[i];
	if (hit == NULL && catalogue_blocked_model(model, rt, err, errsz))
		return 502;
	if (hit == NULL || (rt->engine = catalogue_engine(hit->engine)) ==
	    NULL) {
		snprintf(err, errsz, "The model '%s' does not exist or its "
		    "engine is not running; GET /v1/models lists the models "
		    "served.", model);
		return 404;
	}
	rt->model = hit->model;
	rt->openai = hit->openai;
	rt->info = hit->info;
	return 0;
}

void
catalogue_cleanup(void)
{
	struct cat_wait	*w;

	while ((w = TAILQ_FIRST(&cat_waiting)) != NULL) {
		TAILQ_REMOVE(&cat_waiting, w, entry);
		free(w);
	}
	catalogue_free_models();
	free(cat_body);
	cat_body = NULL;
	free(cat_tags);
	cat_tags = NULL;
}
