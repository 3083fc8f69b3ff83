/*
 * The state flm check compares: the keys by count and label, the
 * security policy, the remembered proxies.  Made the same way from the
 * live databases, from a backup's copies and by flm migrate legacy, so
 * two summaries are equal exactly when that state is.
 */
#include "config.h"

#include <string.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "statesum.h"

static int
statesum_strcmp(const void *a, const void *b)
{
	struct json_object *const *x = a, *const *y = b;

	return strcmp(json_object_get_string(*x), json_object_get_string(*y));
}

/* {count, labels}: the keys not revoked, labels sorted; NULL on error. */
struct json_object *
statesum_keys(struct sqlite3 *h)
{
	struct json_object	*o, *labels;
	sqlite3_stmt		*st;
	int			 rc;

	if (sqlite3_prepare_v2(h, "SELECT label FROM api_keys WHERE "
	    "revoked_at IS NULL ORDER BY label", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	labels = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_object_array_add(labels, json_object_new_string(
		    (const char *)sqlite3_column_text(st, 0)));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_object_put(labels);
		return NULL;
	}
	/* SQLite's order is by bytes already; say so for other makers. */
	json_object_array_sort(labels, statesum_strcmp);
	o = json_object_new_object();
	json_object_object_add(o, "count", json_object_new_int64(
	    (int64_t)json_object_array_length(labels)));
	json_object_object_add(o, "labels", labels);
	return o;
}

/* The default policy as stored; NULL on error. */
struct json_object *
statesum_policy(struct sqlite3 *h)
{
	struct json_object	*o = NULL;
	sqlite3_stmt		*st;

	if (sqlite3_prepare_v2(h, "SELECT policy_json FROM security_policies "
	    "WHERE id = 'default'", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		o = json_tokener_parse((const char *)sqlite3_column_text(st,
		    0));
	sqlite3_finalize(st);
	return o;
}

/* [{id, bind, port, mode}] of proxy_profiles, by id; NULL on error. */
struct json_object *
statesum_proxies(struct sqlite3 *h)
{
	static const char *const keys[] = { "id", "bind", "port", "mode" };
	struct json_object	*a, *o, *p, *v;
	sqlite3_stmt		*st;
	size_t			 i;
	int			 rc;

	if (sqlite3_prepare_v2(h, "SELECT id, config_json FROM proxy_profiles "
	    "ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	a = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_tokener_parse((const char *)sqlite3_column_text(st,
		    1));
		p = json_object_new_object();
		json_object_object_add(p, "id", json_object_new_string(
		    (const char *)sqlite3_column_text(st, 0)));
		for (i = 1; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (o != NULL && json_object_object_get_ex(o, keys[i],
			    &v))
				json_object_object_add(p, keys[i],
				    json_object_get(v));
		json_object_put(o);
		json_object_array_add(a, p);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_object_put(a);
		return NULL;
	}
	return a;
}
