/*
 * API key scopes: parsed and checked here for flm-keyd, which stores
 * them, and for flm-proxyd, which enforces them (docs/PROXY_SPEC.md,
 * "Scoped keys").
 */
#include "config.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonbuf.h"
#include "keyscope.h"

static const struct {
	const char	*name;
	unsigned int	 bit;
} keyscope_eps[] = {
	{ "chat", KS_CHAT }, { "completions", KS_COMPLETIONS },
	{ "embeddings", KS_EMBEDDINGS }, { "messages", KS_MESSAGES },
	{ "responses", KS_RESPONSES }, { "ollama", KS_OLLAMA },
	{ "metrics", KS_METRICS },
};
#define KEYSCOPE_NEPS	(sizeof(keyscope_eps) / sizeof(keyscope_eps[0]))

static int
kerr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

const char *
keyscope_ep_name(unsigned int bit)
{
	size_t	 i;

	for (i = 0; i < KEYSCOPE_NEPS; i++)
		if (keyscope_eps[i].bit == bit)
			return keyscope_eps[i].name;
	return NULL;
}

/* A list of at most KEYSCOPE_MAX_ITEMS strings, or -1. */
static int
keyscope_list(struct json_object *o, const char *k, struct json_object **a,
    char *err, size_t errsz)
{
	size_t	 i;

	*a = NULL;
	if (!json_object_object_get_ex(o, k, a) || json_object_is_type(*a,
	    json_type_null)) {
		*a = NULL;
		return 0;
	}
	if (!json_object_is_type(*a, json_type_array) ||
	    json_object_array_length(*a) == 0)
		return kerr(err, errsz, "%s: expected a non-empty list", k);
	if (json_object_array_length(*a) > KEYSCOPE_MAX_ITEMS)
		return kerr(err, errsz, "%s: at most %d", k,
		    KEYSCOPE_MAX_ITEMS);
	for (i = 0; i < json_object_array_length(*a); i++)
		if (!json_object_is_type(json_object_array_get_idx(*a, i),
		    json_type_string))
			return kerr(err, errsz, "%s[%zu]: expected a string",
			    k, i);
	return 0;
}

/* A model glob: printable, no blank, matched by fnmatch(3). */
static int
keyscope_glob_ok(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n >= KEYSCOPE_GLOB_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int
keyscope_id_ok(const char *s)
{
	size_t	 n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");

	return n > 0 && n <= 32 && s[n] == '\0';
}

static int
keyscope_lists(struct json_object *o, struct keyscope *ks, char *err,
    size_t errsz)
{
	struct json_object	*a;
	const char		*s;
	char			 e[200];
	size_t			 i;

	if (keyscope_list(o, "models", &a, err, errsz) == -1)
		return -1;
	for (i = 0; a != NULL && i < json_object_array_length(a); i++) {
		s = json_object_get_string(json_object_array_get_idx(a, i));
		if (!keyscope_glob_ok(s))
			return kerr(err, errsz, "models[%zu]: expected a model "
			    "name or glob (flm://ENGINE/MODEL, *), 1-%d "
			    "printable characters", i, KEYSCOPE_GLOB_MAX - 1);
		snprintf(ks->models[ks->nmodels++], KEYSCOPE_GLOB_MAX, "%s", s);
	}
	if (keyscope_list(o, "engines", &a, err, errsz) == -1)
		return -1;
	for (i = 0; a != NULL && i < json_object_array_length(a); i++) {
		s = json_object_get_string(json_object_array_get_idx(a, i));
		if (!keyscope_id_ok(s))
			return kerr(err, errsz, "engines[%zu]: expected an "
			    "engine id (1-32 of a-z 0-9 _ -)", i);
		snprintf(ks->engines[ks->nengines++], 33, "%s", s);
	}
	if (keyscope_list(o, "cidr", &a, err, errsz) == -1)
		return -1;
	for (i = 0; a != NULL && i < json_object_array_length(a); i++) {
		s = json_object_get_string(json_object_array_get_idx(a, i));
		if (policy_cidr_parse(s, &ks->cidr[ks->ncidr++], e,
		    sizeof(e)) == -1)
			return kerr(err, errsz, "cidr[%zu]: %s", i, e);
	}
	return 0;
}

static int
keyscope_endpoints(struct json_object *o, struct keyscope *ks, char *err,
    size_t errsz)
{
	struct json_object	*a;
	const char		*s;
	size_t			 i, k;

	if (keyscope_list(o, "endpoints", &a, err, errsz) == -1)
		return -1;
	for (i = 0; a != NULL && i < json_object_array_length(a); i++) {
		s = json_object_get_string(json_object_array_get_idx(a, i));
		for (k = 0; k < KEYSCOPE_NEPS; k++)
			if (strcmp(s, keyscope_eps[k].name) == 0)
				break;
		if (k == KEYSCOPE_NEPS)
			return kerr(err, errsz, "endpoints[%zu]: '%s' is none "
			    "of chat, completions, embeddings, messages, "
			    "responses, ollama, metrics", i, s);
		ks->endpoints |= keyscope_eps[k].bit;
	}
	return 0;
}

static int
keyscope_rate(struct json_object *o, const char *k, uint32_t *v, char *err,
    size_t errsz)
{
	struct json_object	*n;

	if (!json_object_object_get_ex(o, k, &n) ||
	    json_object_is_type(n, json_type_null))
		return 0;
	if (!json_is_int_range(n, 1, 1000000000))
		return kerr(err, errsz, "%s: expected 1-1000000000 a minute",
		    k);
	*v = (uint32_t)json_object_get_int64(n);
	return 0;
}

int
keyscope_parse(struct json_object *o, struct keyscope *ks, char *err,
    size_t errsz)
{
	static const char *const known[] = { "models", "engines", "cidr",
	    "endpoints", "rpm", "tpm" };
	size_t	 i;

	memset(ks, 0, sizeof(*ks));
	if (o == NULL || json_object_is_type(o, json_type_null))
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return kerr(err, errsz, "scope: expected an object");
	json_object_object_foreach(o, k, v) {
		(void)v;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			return kerr(err, errsz, "scope: unknown field '%.40s'",
			    k);
	}
	if (keyscope_lists(o, ks, err, errsz) == -1 ||
	    keyscope_endpoints(o, ks, err, errsz) == -1 ||
	    keyscope_rate(o, "rpm", &ks->rpm, err, errsz) == -1 ||
	    keyscope_rate(o, "tpm", &ks->tpm, err, errsz) == -1)
		return -1;
	return 0;
}

int
keyscope_parse_text(const char *s, size_t len, struct keyscope *ks, char *err,
    size_t errsz)
{
	struct json_object	*o;
	int			 rv;

	memset(ks, 0, sizeof(*ks));
	if (len == 0)
		return 0;
	if (len > KEYSCOPE_MAX_BYTES || (o = json_parse_buf(s, len)) == NULL)
		return kerr(err, errsz, "scope: not a JSON object of at most "
		    "%d bytes", KEYSCOPE_MAX_BYTES);
	rv = keyscope_parse(o, ks, err, errsz);
	json_object_put(o);
	return rv;
}

static struct json_object *
keyscope_strings(char (*a)[KEYSCOPE_GLOB_MAX], int n)
{
	struct json_object	*o = json_object_new_array();
	int			 i;

	for (i = 0; i < n; i++)
		json_object_array_add(o, json_object_new_string(a[i]));
	return o;
}

struct json_object *
keyscope_json(const struct keyscope *ks)
{
	struct json_object	*o = json_object_new_object(), *a;
	size_t			 i;
	int			 k;

	if (ks->nmodels > 0)
		json_object_object_add(o, "models", keyscope_strings(
		    (char (*)[KEYSCOPE_GLOB_MAX])ks->models, ks->nmodels));
	if (ks->nengines > 0) {
		a = json_object_new_array();
		for (k = 0; k < ks->nengines; k++)
			json_object_array_add(a,
			    json_object_new_string(ks->engines[k]));
		json_object_object_add(o, "engines", a);
	}
	if (ks->ncidr > 0) {
		a = json_object_new_array();
		for (k = 0; k < ks->ncidr; k++)
			json_object_array_add(a, policy_cidr_json(&ks->cidr[k]));
		json_object_object_add(o, "cidr", a);
	}
	if (ks->endpoints != 0) {
		a = json_object_new_array();
		for (i = 0; i < KEYSCOPE_NEPS; i++)
			if (ks->endpoints & keyscope_eps[i].bit)
				json_object_array_add(a, json_object_new_string(
				    keyscope_eps[i].name));
		json_object_object_add(o, "endpoints", a);
	}
	if (ks->rpm > 0)
		json_object_object_add(o, "rpm", json_object_new_int64(ks->rpm));
	if (ks->tpm > 0)
		json_object_object_add(o, "tpm", json_object_new_int64(ks->tpm));
	if (json_object_object_length(o) == 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int
keyscope_limits_models(const struct keyscope *ks)
{
	return ks->nmodels > 0 || ks->nengines > 0;
}

/*
 * flm://ENGINE/MODEL is in scope if its engine is listed (or none is)
 * and a glob matches its id, flm://ENGINE/MODEL, or the model's own
 * name (or none is given).
 */
int
keyscope_model(const struct keyscope *ks, const char *engine,
    const char *model)
{
	char	 id[KEYSCOPE_GLOB_MAX + 300];
	int	 i, ok = ks->nengines == 0;

	for (i = 0; !ok && i < ks->nengines; i++)
		ok = strcmp(ks->engines[i], engine) == 0;
	if (!ok || ks->nmodels == 0)
		return ok;
	snprintf(id, sizeof(id), "flm://%s/%s", engine, model);
	for (i = 0; i < ks->nmodels; i++)
		if (fnmatch(ks->models[i], id, 0) == 0 ||
		    fnmatch(ks->models[i], model, 0) == 0)
			return 1;
	return 0;
}
