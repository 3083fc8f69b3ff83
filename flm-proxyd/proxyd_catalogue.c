/*
 * The model catalogue served as GET /v1/models: the models of every
 * usable engine from the last probe, as flm://engine/model names.  It
 * is rebuilt (and serialised once) whenever a probe ends; a request
 * that arrives before the first probe of a new engine list has ended
 * waits for it rather than see an empty list.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "log.h"
#include "proxyd.h"

struct cat_wait {
	TAILQ_ENTRY(cat_wait)	 entry;
	struct evhttp_request	*req;		/* NULL: the client left */
	struct evhttp_connection *evcon;
};

static TAILQ_HEAD(, cat_wait)	 cat_waiting =
    TAILQ_HEAD_INITIALIZER(cat_waiting);
static char			*cat_body;	/* the whole JSON answer */
static size_t			 cat_len;
static unsigned int		 cat_gen;	/* engine list generation */
static int			 cat_fresh;	/* built for cat_gen */

static void
catalogue_reply(struct evhttp_request *req)
{
	struct evbuffer	*buf = evbuffer_new();

	if (cat_body != NULL)
		evbuffer_add(buf, cat_body, cat_len);
	else
		evbuffer_add_printf(buf, "{\"object\":\"list\",\"data\":[]}");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, 200, NULL, buf);
	evbuffer_free(buf);
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

/* A probe of engine list generation gen ended with these verdicts. */
void
catalogue_update(struct json_object *verdicts, unsigned int gen)
{
	struct json_object	*o, *data, *e, *ms;
	struct cat_wait		*w;
	const char		*state, *s;
	size_t			 i, j;

	data = json_object_new_array();
	for (i = 0; i < json_object_array_length(verdicts); i++) {
		e = json_object_array_get_idx(verdicts, i);
		state = json_object_get_string(json_object_object_get(e,
		    "state"));
		if (state == NULL || strncmp(state, "Running", 7) != 0 ||
		    !json_object_object_get_ex(e, "models", &ms))
			continue;
		for (j = 0; j < json_object_array_length(ms); j++)
			json_object_array_add(data, catalogue_entry(
			    json_object_array_get_idx(ms, j)));
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
	if (gen != cat_gen)
		return;		/* an older list's probe: not the answer */
	cat_fresh = 1;
	while ((w = TAILQ_FIRST(&cat_waiting)) != NULL) {
		TAILQ_REMOVE(&cat_waiting, w, entry);
		if (w->req != NULL)
			catalogue_reply(w->req);
		free(w);
	}
}

/* GET /v1/models, the key (if any) already verified. */
void
catalogue_models(struct evhttp_request *req, const char *key_id, void *arg)
{
	struct cat_wait	*w;

	(void)key_id;
	(void)arg;
	if (cat_fresh) {
		catalogue_reply(req);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		catalogue_reply(req);
		return;
	}
	w->req = req;
	w->evcon = evhttp_request_get_connection(req);
	TAILQ_INSERT_TAIL(&cat_waiting, w, entry);
	http_watch_close(req);
}

void
catalogue_conn_closed(struct evhttp_connection *evcon)
{
	struct cat_wait	*w;

	TAILQ_FOREACH(w, &cat_waiting, entry)
		if (w->evcon == evcon)
			w->req = NULL;
}

void
catalogue_cleanup(void)
{
	struct cat_wait	*w;

	while ((w = TAILQ_FIRST(&cat_waiting)) != NULL) {
		TAILQ_REMOVE(&cat_waiting, w, entry);
		free(w);
	}
	free(cat_body);
	cat_body = NULL;
}
