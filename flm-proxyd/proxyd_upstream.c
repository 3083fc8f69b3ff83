/*
 * The engine side of flm-proxyd: ask every configured engine for its
 * models and answer with one catalogue of flm://engine/model names.
 * proxyd connects only to the numeric addresses flmd gave it.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "log.h"
#include "proxyd.h"

#define UPSTREAM_TIMEOUT_SECS	5
#define UPSTREAM_MAX_BODY	(4 * 1024 * 1024)

struct models_req;

struct models_engine {
	struct models_req		*mr;
	const struct proxyd_engine	*e;
	struct evhttp_connection	*evcon;
};

struct models_req {
	TAILQ_ENTRY(models_req)	 entry;
	struct evhttp_request	*req;		/* NULL: the client left */
	struct evhttp_connection *client;
	struct json_object	*data;
	int			 pending;
	int			 n;
	struct models_engine	 eng[PROXYD_MAX_ENGINES];
};

static TAILQ_HEAD(, models_req)	 models_reqs =
    TAILQ_HEAD_INITIALIZER(models_reqs);

static void
models_add(struct models_req *mr, const struct proxyd_engine *e,
    const char *name, int64_t created)
{
	struct json_object	*m = json_object_new_object();
	char			 id[512];

	snprintf(id, sizeof(id), "flm://%s/%s", e->id, name);
	json_object_object_add(m, "id", json_object_new_string(id));
	json_object_object_add(m, "object", json_object_new_string("model"));
	json_object_object_add(m, "created", json_object_new_int64(created));
	json_object_object_add(m, "owned_by", json_object_new_string(e->id));
	json_object_array_add(mr->data, m);
}

/* Ollama /api/tags: {"models": [{"name": ...}]}; others /v1/models. */
static void
models_parse(struct models_req *mr, const struct proxyd_engine *e,
    struct json_object *o)
{
	struct json_object	*arr, *it, *name, *created;
	int			 ollama = strcmp(e->kind, "ollama") == 0;
	size_t			 i, n;

	if (!json_object_object_get_ex(o, ollama ? "models" : "data", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		log_warnx("engine %s: unexpected models answer", e->id);
		return;
	}
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(arr, i);
		if (!json_object_object_get_ex(it, ollama ? "name" : "id",
		    &name) || !json_object_is_type(name, json_type_string))
			continue;
		models_add(mr, e, json_object_get_string(name),
		    json_object_object_get_ex(it, "created", &created) ?
		    json_object_get_int64(created) : 0);
	}
}

static void
models_free(evutil_socket_t fd, short ev, void *arg)
{
	struct models_req	*mr = arg;
	int			 i;

	(void)fd;
	(void)ev;
	for (i = 0; i < mr->n; i++)
		if (mr->eng[i].evcon != NULL)
			evhttp_connection_free(mr->eng[i].evcon);
	json_object_put(mr->data);
	free(mr);
}

static void
models_finish(struct models_req *mr)
{
	struct json_object	*o;
	struct timeval		 tv = { 0, 0 };

	TAILQ_REMOVE(&models_reqs, mr, entry);
	if (mr->req != NULL) {
		o = json_object_new_object();
		json_object_object_add(o, "object",
		    json_object_new_string("list"));
		json_object_object_add(o, "data", json_object_get(mr->data));
		http_json(mr->req, 200, o);
		json_object_put(o);
	}
	/* Not from inside an engine connection's own callback. */
	event_base_once(px->c.base, -1, EV_TIMEOUT, models_free, mr, &tv);
}

static void
models_engine_done(struct evhttp_request *req, void *arg)
{
	struct models_engine	*me = arg;
	struct models_req	*mr = me->mr;
	struct evbuffer		*buf;
	struct json_object	*o;
	int			 code = req ? evhttp_request_get_response_code(req) : 0;

	if (code != 200) {
		log_debug("engine %s: models: %s %d", me->e->id,
		    code ? "HTTP" : "unreachable", code);
	} else {
		struct json_tokener	*tok = json_tokener_new();
		size_t			 len;

		buf = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(buf);
		o = tok == NULL ? NULL : json_tokener_parse_ex(tok,
		    (const char *)evbuffer_pullup(buf, -1), (int)len);
		if (tok != NULL)
			json_tokener_free(tok);
		if (o != NULL)
			models_parse(mr, me->e, o);
		else
			log_warnx("engine %s: models answer is not JSON",
			    me->e->id);
		json_object_put(o);
	}
	if (--mr->pending == 0)
		models_finish(mr);
}

static int
models_ask(struct models_req *mr, const struct proxyd_engine *e)
{
	struct models_engine	*me = &mr->eng[mr->n];
	struct evhttp_request	*r;
	char			 hostport[300];

	me->mr = mr;
	me->e = e;
	me->evcon = evhttp_connection_base_new(px->c.base, NULL, e->addr,
	    e->port);
	if (me->evcon == NULL)
		return -1;
	mr->n++;
	evhttp_connection_set_timeout(me->evcon, UPSTREAM_TIMEOUT_SECS);
	evhttp_connection_set_max_body_size(me->evcon, UPSTREAM_MAX_BODY);
	evhttp_connection_set_retries(me->evcon, 0);
	if ((r = evhttp_request_new(models_engine_done, me)) == NULL)
		return -1;
	snprintf(hostport, sizeof(hostport), "%s:%d", e->host, e->port);
	evhttp_add_header(evhttp_request_get_output_headers(r), "Host",
	    hostport);
	evhttp_add_header(evhttp_request_get_output_headers(r), "Accept",
	    "application/json");
	if (evhttp_make_request(me->evcon, r, EVHTTP_REQ_GET,
	    strcmp(e->kind, "ollama") == 0 ? "/api/tags" : "/v1/models") == -1)
		return -1;	/* r is freed by evhttp on failure */
	mr->pending++;
	return 0;
}

/* GET /v1/models, the key already verified. */
void
upstream_models(struct evhttp_request *req, const char *key_id, void *arg)
{
	struct models_req	*mr;
	int			 i;

	(void)key_id;
	(void)arg;
	if ((mr = calloc(1, sizeof(*mr))) == NULL) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	mr->req = req;
	mr->client = evhttp_request_get_connection(req);
	mr->data = json_object_new_array();
	TAILQ_INSERT_TAIL(&models_reqs, mr, entry);
	http_watch_close(req);
	for (i = 0; i < px->nengines; i++)
		if (px->engines[i].usable &&
		    models_ask(mr, &px->engines[i]) == -1)
			log_warnx("engine %s: cannot connect", px->engines[i].id);
	if (mr->pending == 0)
		models_finish(mr);
}

void
upstream_conn_closed(struct evhttp_connection *evcon)
{
	struct models_req	*mr;

	TAILQ_FOREACH(mr, &models_reqs, entry)
		if (mr->client == evcon)
			mr->req = NULL;
}

void
upstream_cleanup(void)
{
	struct models_req	*mr;

	while ((mr = TAILQ_FIRST(&models_reqs)) != NULL) {
		TAILQ_REMOVE(&models_reqs, mr, entry);
		models_free(-1, 0, mr);
	}
}
