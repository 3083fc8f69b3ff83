/*
 * What an authenticated request means: its JSON checked against
 * OpenAI's rules, its model resolved to one engine, and the call that
 * engine gets (its own model name; the Ollama native API where its /v1
 * endpoints are missing).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jsonbuf.h"
#include "proxyd.h"

static const char *const route_paths[] = {
	[EP_CHAT] = "/v1/chat/completions",
	[EP_COMPLETIONS] = "/v1/completions",
	[EP_EMBEDDINGS] = "/v1/embeddings",
};

static const char *const route_ollama_paths[] = {
	[EP_CHAT] = "/api/chat",
	[EP_COMPLETIONS] = "/api/generate",
	[EP_EMBEDDINGS] = "/api/embed",
};

static const enum upstream_mode route_ollama_modes[] = {
	[EP_CHAT] = UP_OLLAMA_CHAT,
	[EP_COMPLETIONS] = UP_OLLAMA_GENERATE,
	[EP_EMBEDDINGS] = UP_OLLAMA_EMBED,
};

static void
route_bad(struct http_req *req, const char *param, const char *msg)
{
	http_error_param(req, 400, "invalid_request_error", NULL, param, msg);
}

/* Optional field k of type t (json_type_double: any number). */
static int
route_typed(struct json_object *in, const char *k, json_type t, char *msg,
    size_t sz)
{
	struct json_object	*v;
	json_type		 vt;

	if (!json_object_object_get_ex(in, k, &v) ||
	    (vt = json_object_get_type(v)) == json_type_null || vt == t ||
	    (t == json_type_double && vt == json_type_int))
		return 0;
	snprintf(msg, sz, "Invalid type for '%s': expected %s, but got %s.",
	    k, t == json_type_boolean ? "a boolean" : t == json_type_int ?
	    "an integer" : t == json_type_double ? "a number" :
	    t == json_type_string ? "a string" : t == json_type_array ?
	    "an array" : "an object", json_type_to_name(vt));
	return -1;
}

static int
route_messages(struct json_object *in, char *msg, size_t sz)
{
	struct json_object	*msgs, *m, *role;
	size_t			 i;

	if (!json_object_object_get_ex(in, "messages", &msgs)) {
		snprintf(msg, sz, "Missing required parameter: 'messages'.");
		return -1;
	}
	if (!json_object_is_type(msgs, json_type_array) ||
	    json_object_array_length(msgs) == 0) {
		snprintf(msg, sz, "'messages' must be a non-empty array.");
		return -1;
	}
	for (i = 0; i < json_object_array_length(msgs); i++) {
		m = json_object_array_get_idx(msgs, i);
		if (!json_object_is_type(m, json_type_object) ||
		    !json_object_object_get_ex(m, "role", &role) ||
		    !json_object_is_type(role, json_type_string)) {
			snprintf(msg, sz, "messages[%zu]: expected an object "
			    "with a string 'role'.", i);
			return -1;
		}
	}
	return 0;
}

/* OpenAI's rules for the body of ep; -1 with the offending param. */
static int
route_check(enum http_endpoint ep, struct json_object *in,
    const char **param, char *msg, size_t sz)
{
	static const struct {
		const char	*k;
		json_type	 t;
	} typed[] = {
		{ "model", json_type_string }, { "stream", json_type_boolean },
		{ "temperature", json_type_double },
		{ "top_p", json_type_double }, { "n", json_type_int },
		{ "max_tokens", json_type_int },
		{ "stream_options", json_type_object },
		{ "user", json_type_string },
	};
	struct json_object	*v;
	const char		*need = ep == EP_COMPLETIONS ? "prompt" :
	    ep == EP_EMBEDDINGS ? "input" : NULL;
	size_t			 i;

	for (i = 0; i < sizeof(typed) / sizeof(typed[0]); i++)
		if (route_typed(in, typed[i].k, typed[i].t, msg, sz) == -1) {
			*param = typed[i].k;
			return -1;
		}
	if (!json_object_object_get_ex(in, "model", &v) ||
	    json_object_get_string_len(v) == 0) {
		*param = "model";
		snprintf(msg, sz, "You must provide a model parameter.");
		return -1;
	}
	if (ep == EP_CHAT && route_messages(in, msg, sz) == -1) {
		*param = "messages";
		return -1;
	}
	if (need != NULL && (!json_object_object_get_ex(in, need, &v) ||
	    json_object_is_type(v, json_type_null))) {
		*param = need;
		snprintf(msg, sz, "Missing required parameter: '%s'.", need);
		return -1;
	}
	if (need != NULL && !json_object_is_type(v, json_type_string) &&
	    !json_object_is_type(v, json_type_array)) {
		*param = need;
		snprintf(msg, sz, "Invalid type for '%s': expected a string "
		    "or an array.", need);
		return -1;
	}
	return 0;
}

static int
route_flag(struct json_object *in, const char *k, const char *sub)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(in, k, &v))
		return 0;
	if (sub != NULL && !json_object_object_get_ex(v, sub, &v))
		return 0;
	return json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
}

static void
route_want_usage(struct json_object *in, struct upstream_call *call)
{
	struct json_object	*so;

	if (!json_object_object_get_ex(in, "stream_options", &so) ||
	    !json_object_is_type(so, json_type_object)) {
		so = json_object_new_object();
		json_object_object_add(in, "stream_options", so);
	}
	json_object_object_add(so, "include_usage",
	    json_object_new_boolean(1));
	call->hide_usage = 1;
}

/*
 * encoding_format: engines are asked for floats, and proxyd packs them
 * as base64 float32 itself when the client wants that (the official
 * clients do by default), so every engine answers every client.
 */
static int
route_encoding(struct http_req *req, struct json_object *in,
    struct upstream_call *call)
{
	struct json_object	*v;
	const char		*s;

	if (!json_object_object_get_ex(in, "encoding_format", &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	s = json_object_get_string(v);
	if (!json_object_is_type(v, json_type_string) ||
	    (strcmp(s, "float") != 0 && strcmp(s, "base64") != 0)) {
		route_bad(req, "encoding_format", "'encoding_format' must be "
		    "'float' or 'base64'.");
		return -1;
	}
	call->base64 = strcmp(s, "base64") == 0;
	json_object_object_del(in, "encoding_format");
	return 0;
}

/* The body, the engine and the call, once the catalogue is fresh. */
static void
route_post(struct http_req *req)
{
	struct json_object	*in, *native = NULL, *send, *mobj;
	struct upstream_call	 call;
	struct route		 rt;
	const char		*param = NULL, *model;
	char			 msg[1024];
	size_t			 len = evbuffer_get_length(req->body);
	int			 st;

	in = json_parse_buf((const char *)evbuffer_pullup(req->body, -1), len);
	if (in == NULL || !json_object_is_type(in, json_type_object)) {
		json_object_put(in);
		route_bad(req, NULL, "We could not parse the JSON body of "
		    "your request: expected one JSON object.");
		return;
	}
	if (route_check(req->ep, in, &param, msg, sizeof(msg)) == -1) {
		route_bad(req, param, msg);
		json_object_put(in);
		return;
	}
	/* Ours: the engine's name replaces it in the body below. */
	mobj = json_object_get(json_object_object_get(in, "model"));
	model = json_object_get_string(mobj);
	/* For the audit trail, as the client named it. */
	free(req->model);
	req->model = strdup(model);
	if ((st = catalogue_route(model, &rt, msg, sizeof(msg))) != 0) {
		if (st == 404)
			http_error(req, 404, "invalid_request_error",
			    "model_not_found", msg);
		else if (st == 502)
			http_error(req, 502, "server_error",
			    "engine_owner_changed", msg);
		else
			route_bad(req, "model", msg);
		json_object_put(mobj);
		json_object_put(in);
		return;
	}
	memset(&call, 0, sizeof(call));
	call.engine = rt.engine;
	call.model = model;
	/* Embeddings have no stream, whatever the body says. */
	call.stream = req->ep != EP_EMBEDDINGS && route_flag(in, "stream",
	    NULL);
	call.usage = route_flag(in, "stream_options", "include_usage");
	if (req->ep == EP_EMBEDDINGS && route_encoding(req, in, &call) == -1) {
		json_object_put(mobj);
		json_object_put(in);
		return;
	}
	if (rt.openai) {
		json_object_object_add(in, "model",
		    json_object_new_string(rt.model));
		/* Every stream's usage, for the audit trail and token limits;
		 * the client that did not ask for it does not see it. */
		if (call.stream && !call.usage)
			route_want_usage(in, &call);
		send = in;
		call.path = route_paths[req->ep];
		call.mode = UP_PASS;
	} else {
		if ((native = ollama_request(req->ep, in, rt.model, msg,
		    sizeof(msg))) == NULL) {
			route_bad(req, NULL, msg);
			json_object_put(mobj);
			json_object_put(in);
			return;
		}
		send = native;
		/* The translation makes the usage chunk, aside if unasked. */
		call.hide_usage = call.stream && !call.usage;
		call.path = route_ollama_paths[req->ep];
		call.mode = route_ollama_modes[req->ep];
	}
	call.body = json_object_to_json_string_length(send,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &call.len);
	upstream_start(req, &call);	/* copies what it keeps */
	json_object_put(native);
	json_object_put(mobj);
	json_object_put(in);
}

void
route_dispatch(struct http_req *req)
{
	switch (req->ep) {
	case EP_MODELS:
		catalogue_models(req);
		break;
	case EP_CHAT:
	case EP_COMPLETIONS:
	case EP_EMBEDDINGS:
		catalogue_when_fresh(req, route_post);
		break;
	default:
		http_error(req, 404, "invalid_request_error", "unknown_url",
		    "Unknown request URL.");
		break;
	}
}
