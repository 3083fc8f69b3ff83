/*
 * What an authenticated request means: its JSON checked against
 * OpenAI's rules, its model resolved to one engine, and the call that
 * engine gets (its own model name; the Ollama native API where its /v1
 * endpoints are missing).
 */
#include "config.h"

#include <sys/uio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "jscan.h"
#include "jwrite.h"
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

/* An Ollama client's request, as it is, to an Ollama engine. */
static const char *const route_native_paths[] = {
	[EP_OLLAMA_CHAT] = "/api/chat",
	[EP_OLLAMA_GENERATE] = "/api/generate",
	[EP_OLLAMA_EMBED] = "/api/embed",
	[EP_OLLAMA_EMBEDDINGS] = "/api/embeddings",
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

/* The member json-c would have read for top-level key k, or NULL. */
static const struct jscan_member *
route_get(const struct jscan *js, const char *k)
{
	int	 i = jscan_find(js, -1, k);

	return i == -1 ? NULL : &js->m[i];
}

/* Optional field k of type t (JSCAN_DOUBLE: any number). */
static int
route_typed(const struct jscan *js, const char *k, enum jscan_type t,
    char *msg, size_t sz)
{
	const struct jscan_member *v;

	if ((v = route_get(js, k)) == NULL || v->type == JSCAN_NULL ||
	    v->type == t || (t == JSCAN_DOUBLE && v->type == JSCAN_INT))
		return 0;
	snprintf(msg, sz, "Invalid type for '%s': expected %s, but got %s.",
	    k, t == JSCAN_BOOL ? "a boolean" : t == JSCAN_INT ?
	    "an integer" : t == JSCAN_DOUBLE ? "a number" :
	    t == JSCAN_STRING ? "a string" : t == JSCAN_ARRAY ?
	    "an array" : "an object", jscan_type_name(v->type));
	return -1;
}

/* The scanner checked each element as it went (elem_key "role"). */
static int
route_messages(const struct jscan *js, char *msg, size_t sz)
{
	const struct jscan_member *v;

	if ((v = route_get(js, "messages")) == NULL) {
		snprintf(msg, sz, "Missing required parameter: 'messages'.");
		return -1;
	}
	if (v->type != JSCAN_ARRAY || v->nelem == 0) {
		snprintf(msg, sz, "'messages' must be a non-empty array.");
		return -1;
	}
	if (v->badelem >= 0) {
		snprintf(msg, sz, "messages[%ld]: expected an object "
		    "with a string 'role'.", v->badelem);
		return -1;
	}
	return 0;
}

/* OpenAI's rules for the body of ep; -1 with the offending param. */
static int
route_check(enum http_endpoint ep, const struct jscan *js, const char *buf,
    const char **param, char *msg, size_t sz)
{
	static const struct {
		const char	*k;
		enum jscan_type	 t;
	} typed[] = {
		{ "model", JSCAN_STRING }, { "stream", JSCAN_BOOL },
		{ "temperature", JSCAN_DOUBLE },
		{ "top_p", JSCAN_DOUBLE }, { "n", JSCAN_INT },
		{ "max_tokens", JSCAN_INT },
		{ "stream_options", JSCAN_OBJECT },
		{ "user", JSCAN_STRING },
	};
	const struct jscan_member *v;
	const char		*need = ep == EP_COMPLETIONS ? "prompt" :
	    ep == EP_EMBEDDINGS ? "input" : NULL;
	size_t			 i;

	for (i = 0; i < sizeof(typed) / sizeof(typed[0]); i++)
		if (route_typed(js, typed[i].k, typed[i].t, msg, sz) == -1) {
			*param = typed[i].k;
			return -1;
		}
	/* "" is the shortest string: two quotes. */
	if ((v = route_get(js, "model")) == NULL || v->type != JSCAN_STRING ||
	    (v->vend - v->vofs == 2 && buf[v->vofs + 1] == '"')) {
		*param = "model";
		snprintf(msg, sz, "You must provide a model parameter.");
		return -1;
	}
	if (ep == EP_CHAT && route_messages(js, msg, sz) == -1) {
		*param = "messages";
		return -1;
	}
	if (need != NULL && ((v = route_get(js, need)) == NULL ||
	    v->type == JSCAN_NULL)) {
		*param = need;
		snprintf(msg, sz, "Missing required parameter: '%s'.", need);
		return -1;
	}
	if (need != NULL && v->type != JSCAN_STRING &&
	    v->type != JSCAN_ARRAY) {
		*param = need;
		snprintf(msg, sz, "Invalid type for '%s': expected a string "
		    "or an array.", need);
		return -1;
	}
	return 0;
}

/* Is k (under sub, if given) the boolean true? */
static int
route_flag(const struct jscan *js, const char *k, const char *sub)
{
	int	 i = jscan_find(js, -1, k);

	if (i != -1 && sub != NULL)
		i = js->m[i].type == JSCAN_OBJECT ? jscan_find(js, i, sub) : -1;
	return i != -1 && js->m[i].type == JSCAN_BOOL && js->m[i].truth;
}

/*
 * encoding_format: engines are asked for floats, and proxyd packs them
 * as base64 float32 itself when the client wants that (the official
 * clients do by default), so every engine answers every client.  Every
 * occurrence is cut from the body (drop).
 */
static int
route_encoding(struct http_req *req, const struct jscan *js,
    const char *buf, struct upstream_call *call, char *drop)
{
	const struct jscan_member *v;
	char			*s = NULL;
	size_t			 i, len;

	if ((v = route_get(js, "encoding_format")) == NULL ||
	    v->type == JSCAN_NULL)
		return 0;
	if (v->type != JSCAN_STRING || (s = jscan_string(buf, v, &len)) ==
	    NULL || (strcmp(s, "float") != 0 && strcmp(s, "base64") != 0)) {
		free(s);
		route_bad(req, "encoding_format", "'encoding_format' must be "
		    "'float' or 'base64'.");
		return -1;
	}
	call->base64 = strcmp(s, "base64") == 0;
	free(s);
	for (i = 0; i < js->nm; i++)
		if (js->m[i].parent == -1 &&
		    jscan_keyeq(js, (int)i, "encoding_format"))
			drop[i] = 1;
	return 0;
}

/* ---- the upstream body as slices of the client's ------------------------- */

struct route_edit {
	size_t		 ofs, end;	/* the client's bytes replaced */
	const char	*ins;		/* by these */
	size_t		 inslen;
};

struct route_body {
	struct route_edit *e;
	size_t		 n;
	struct iovec	*iov;
	const char	*model;		/* the engine's name, quoted */
};

/*
 * What route_post needs for one body, kept from request to request so
 * the hot path allocates only when a body has more members than any
 * before.  route_post reads it only before it answers or hands the call
 * on, so even a request begun from inside those (request_done begins a
 * pipelined one from the event loop, not there) would not disturb it.
 */
struct route_scratch {
	struct jscan	 js;		/* the body */
	struct jscan	 str;		/* the model, decoded */
	struct route_edit *e;
	struct iovec	*iov;
	char		*drop;
	struct jw	 qmodel;	/* the engine's model name, quoted */
	size_t		 ecap, iovcap, dropcap;
};
static struct route_scratch	 route_kept;

/* *p with room for n elements of sz bytes, grown as needed. */
static int
route_room(void *p, size_t *cap, size_t n, size_t sz)
{
	void	**pp = p, *q;

	if (n <= *cap)
		return 0;
	if ((q = reallocarray(*pp, n, sz)) == NULL)
		return -1;
	*pp = q;
	*cap = n;
	return 0;
}

void
route_cleanup(void)
{
	struct route_scratch	*sc = &route_kept;

	jscan_free(&sc->js);
	jscan_free(&sc->str);
	free(sc->e);
	free(sc->iov);
	free(sc->drop);
	jw_free(&sc->qmodel);
	memset(sc, 0, sizeof(*sc));
}

static void
route_edit(struct route_body *rb, size_t ofs, size_t end, const char *ins)
{
	rb->e[rb->n].ofs = ofs;
	rb->e[rb->n].end = end;
	rb->e[rb->n].ins = ins;
	rb->e[rb->n].inslen = ins != NULL ? strlen(ins) : 0;
	rb->n++;
}

/*
 * Cut the members of object parent marked in drop, with the commas
 * between them: a run followed by a kept member goes up to that
 * member's key; a run at the end goes from the last kept value on.
 * Returns whether any member is kept.
 */
static int
route_cut(const struct jscan *js, int parent, const char *drop,
    struct route_body *rb)
{
	size_t	 i;
	int	 run = -1, runlast = -1, kept = -1;

	for (i = 0; i < js->nm; i++) {
		if (js->m[i].parent != parent)
			continue;
		if (drop[i]) {
			if (run == -1)
				run = (int)i;
			runlast = (int)i;
			continue;
		}
		if (run != -1)
			route_edit(rb, js->m[run].kofs, js->m[i].kofs, NULL);
		run = -1;
		kept = (int)i;
	}
	if (run != -1)
		route_edit(rb, kept != -1 ? js->m[kept].vend : js->m[run].kofs,
		    js->m[runlast].vend, NULL);
	return kept != -1;
}

/* Every stream's usage, for the audit trail and token limits: an
 * include_usage of ours in place of the client's. */
static void
route_want_usage(const struct jscan *js, char *drop, struct route_body *rb,
    struct upstream_call *call)
{
	int	 so = jscan_find(js, -1, "stream_options");
	size_t	 i;

	call->hide_usage = 1;
	if (so == -1) {
		route_edit(rb, js->oofs + 1, js->oofs + 1,
		    "\"stream_options\":{\"include_usage\":true},");
		return;
	}
	if (js->m[so].type != JSCAN_OBJECT) {	/* null */
		route_edit(rb, js->m[so].vofs, js->m[so].vend,
		    "{\"include_usage\":true}");
		return;
	}
	for (i = 0; i < js->nm; i++)
		if (js->m[i].parent == so && (!js->m[i].last ||
		    jscan_keyeq(js, (int)i, "include_usage")))
			drop[i] = 1;
	route_edit(rb, js->m[so].oofs + 1, js->m[so].oofs + 1,
	    route_cut(js, so, drop, rb) ? "\"include_usage\":true," :
	    "\"include_usage\":true");
}

static int
route_edit_cmp(const void *a, const void *b)
{
	const struct route_edit	*x = a, *y = b;

	if (x->ofs != y->ofs)
		return x->ofs < y->ofs ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/*
 * The body for an OpenAI engine: the client's bytes, less the members
 * json-c would have dropped (all but the last of a key) and those cut
 * in drop, with the engine's model name in place of the client's.
 */
static int
route_slices(struct route_scratch *sc, const char *buf, size_t len,
    const char *model, int want_usage, struct route_body *rb,
    struct upstream_call *call)
{
	const struct jscan *js = &sc->js;
	char	*drop = sc->drop;
	int	 m = jscan_find(js, -1, "model");
	size_t	 i, cur = 0;

	jw_reset(&sc->qmodel, 4096);
	jw_str(&sc->qmodel, model, strlen(model));
	if (route_room(&sc->e, &sc->ecap, js->nm + 4, sizeof(*sc->e)) ==
	    -1 || route_room(&sc->iov, &sc->iovcap, 2 * (js->nm + 4) + 1,
	    sizeof(*sc->iov)) == -1 ||
	    (rb->model = jw_cstr(&sc->qmodel)) == NULL)
		return -1;
	rb->e = sc->e;
	rb->iov = sc->iov;
	rb->n = 0;
	route_edit(rb, js->m[m].vofs, js->m[m].vend, rb->model);
	if (want_usage)
		route_want_usage(js, drop, rb, call);
	for (i = 0; i < js->nm; i++)
		if (js->m[i].parent == -1 && !js->m[i].last)
			drop[i] = 1;
	route_cut(js, -1, drop, rb);
	qsort(rb->e, rb->n, sizeof(*rb->e), route_edit_cmp);
	call->niov = 0;
	for (i = 0; i < rb->n; i++) {
		if (rb->e[i].ofs > cur) {
			rb->iov[call->niov].iov_base = (void *)(buf + cur);
			rb->iov[call->niov++].iov_len = rb->e[i].ofs - cur;
		}
		if (rb->e[i].inslen > 0) {
			rb->iov[call->niov].iov_base = (void *)rb->e[i].ins;
			rb->iov[call->niov++].iov_len = rb->e[i].inslen;
		}
		cur = rb->e[i].end;
	}
	if (len > cur) {
		rb->iov[call->niov].iov_base = (void *)(buf + cur);
		rb->iov[call->niov++].iov_len = len - cur;
	}
	call->iov = rb->iov;
	for (call->len = 0, i = 0; i < (size_t)call->niov; i++)
		call->len += rb->iov[i].iov_len;
	return 0;
}

/* A body of our own making as the call's one slice (obj keeps it). */
static void
route_body_json(struct json_object *obj, struct iovec *iov,
    struct upstream_call *call)
{
	size_t	 n;

	iov->iov_base = (void *)json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	iov->iov_len = n;
	call->iov = iov;
	call->niov = 1;
	call->len = n;
}

/* An engine without /v1: the body translated (json-c: it rewrites). */
static int
route_native(struct http_req *req, const char *buf, size_t len,
    const char *model, struct json_object **native, struct iovec *iov,
    struct upstream_call *call)
{
	struct json_object	*in;
	char			 msg[1024];

	/* The scanner took it: json-c's strict tokener does too. */
	if ((in = json_parse_buf_strict(buf, len)) == NULL) {
		route_bad(req, NULL, "We could not parse the JSON body of "
		    "your request: expected one JSON object.");
		return -1;
	}
	if (req->op == EP_EMBEDDINGS)
		json_object_object_del(in, "encoding_format");
	*native = ollama_request(req->op, in, model, msg, sizeof(msg));
	json_object_put(in);
	if (*native == NULL) {
		route_bad(req, NULL, msg);
		return -1;
	}
	route_body_json(*native, iov, call);
	/* The translation makes the usage chunk, aside if unasked. */
	call->hide_usage = call->stream && !call->usage;
	call->path = route_ollama_paths[req->op];
	call->mode = route_ollama_modes[req->op];
	return 0;
}

/*
 * An Ollama client's request to an Ollama engine: its own bytes, less
 * what json-c would drop, with the engine's model name; its answer
 * passed back as it is.
 */
static int
route_passthrough(struct http_req *req, struct route_scratch *sc,
    const char *model, struct route_body *rb, struct upstream_call *call)
{
	const char	*buf = (const char *)evbuffer_pullup(req->body, -1);
	size_t		 len = evbuffer_get_length(req->body);

	sc->js.elem_key = NULL;
	/* json-c read it whole, with its "model"; the stricter scanner
	 * may still refuse it (a quote json-c forgives, say). */
	if (buf == NULL || jscan_parse(&sc->js, buf, len) == -1 ||
	    jscan_find(&sc->js, -1, "model") == -1) {
		if (buf != NULL && sc->js.err != JSCAN_ENOMEM)
			route_bad(req, NULL, "We could not parse the JSON body "
			    "of your request: expected one JSON object.");
		else
			http_error(req, 503, "server_error", NULL,
			    "Out of memory.");
		return -1;
	}
	if (route_room(&sc->drop, &sc->dropcap, sc->js.nm + 1, 1) == -1) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return -1;
	}
	memset(sc->drop, 0, sc->js.nm + 1);
	if (route_slices(sc, buf, len, model, 0, rb, call) == -1) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return -1;
	}
	call->path = route_native_paths[req->ep];
	call->mode = UP_PASS;
	call->hide_usage = 0;
	req->native = 1;
	return 0;
}

/* The text of every message, one per line: llama.cpp's tokenizer
 * takes text, not a conversation. */
static struct json_object *
route_text_of(struct json_object *msgs)
{
	struct json_object	*m, *c, *p, *t;
	char			*s = NULL, *n;
	const char		*v;
	size_t			 i, j, len = 0, vl;

	for (i = 0; i < json_object_array_length(msgs); i++) {
		m = json_object_array_get_idx(msgs, i);
		if (!json_object_object_get_ex(m, "content", &c))
			continue;
		for (j = 0; j < (json_object_is_type(c, json_type_array) ?
		    json_object_array_length(c) : 1); j++) {
			p = json_object_is_type(c, json_type_array) ?
			    json_object_array_get_idx(c, j) : c;
			if (!json_object_is_type(p, json_type_string) &&
			    (!json_object_object_get_ex(p, "text", &t) ||
			    !json_object_is_type(p = t, json_type_string)))
				continue;
			v = json_object_get_string(p);
			vl = (size_t)json_object_get_string_len(p);
			if ((n = realloc(s, len + vl + 2)) == NULL) {
				free(s);
				return NULL;
			}
			s = n;
			memcpy(s + len, v, vl);
			len += vl;
			s[len++] = '\n';
		}
	}
	p = json_object_new_string_len(s != NULL ? s : "", (int)len);
	free(s);
	return p;
}

/*
 * /v1/messages/count_tokens: asked of the engine's own tokenizer,
 * vLLM's (the conversation, its chat template applied) or llama.cpp's
 * (the text); other engines cannot count.
 */
static int
route_count(struct http_req *req, const struct route *rt, const char *buf,
    size_t len, struct json_object **native, struct iovec *iov,
    struct upstream_call *call)
{
	struct json_object	*in, *msgs, *t;
	char			 msg[300];
	int			 vllm = strcmp(rt->engine->kind, "vllm") == 0;

	if (!vllm && strcmp(rt->engine->kind, "llamacpp") != 0) {
		snprintf(msg, sizeof(msg), "Engine %s (%s) cannot count "
		    "tokens: count_tokens needs an engine with a tokenizer "
		    "endpoint (vLLM, llama.cpp).", rt->engine->id,
		    rt->engine->kind);
		route_bad(req, NULL, msg);
		return -1;
	}
	if ((in = json_parse_buf(buf, len)) == NULL ||
	    !json_object_object_get_ex(in, "messages", &msgs)) {
		json_object_put(in);
		route_bad(req, NULL, "We could not parse the JSON body of your "
		    "request.");
		return -1;
	}
	*native = json_object_new_object();
	if (vllm) {
		json_object_object_add(*native, "model",
		    json_object_new_string(rt->model));
		json_object_object_add(*native, "messages",
		    json_object_get(msgs));
	} else if ((t = route_text_of(msgs)) != NULL)
		json_object_object_add(*native, "content", t);
	json_object_put(in);
	route_body_json(*native, iov, call);
	call->path = "/tokenize";
	call->mode = UP_PASS;
	return 0;
}

/* /api/show for an Ollama engine: asked of it, with its own name. */
static int
route_show(struct http_req *req, const char *model,
    struct json_object **native, struct iovec *iov,
    struct upstream_call *call)
{
	*native = json_object_new_object();
	json_object_object_add(*native, "model",
	    json_object_new_string(model));
	route_body_json(*native, iov, call);
	call->path = "/api/show";
	call->mode = UP_PASS;
	req->native = 1;
	return 0;
}

/* The body, the engine and the call, once the catalogue is fresh. */
static void
route_post(struct http_req *req)
{
	struct route_scratch	*sc = &route_kept;
	struct json_object	*native = NULL;
	struct upstream_call	 call;
	struct route_body	 rb;
	struct route		 rt;
	struct iovec		 one;
	const char		*param = NULL, *buf, *model;
	char			 msg[1024];
	size_t			 len, mlen;
	int			 st;

	struct evbuffer		*body = req->xbody != NULL ? req->xbody :
				    req->body;
	int			 ollama;

	memset(&rb, 0, sizeof(rb));
	len = evbuffer_get_length(body);
	sc->js.elem_key = req->op == EP_CHAT ? "role" : NULL;
	/* A translated body is proxyd_front.c's text, its strings copied
	 * from one this scanner took: found by their end, not judged
	 * again (a long-context prompt is judged once). */
	sc->js.trusted = req->xbody != NULL;
	buf = (const char *)evbuffer_pullup(body, -1);
	if (buf == NULL || jscan_parse(&sc->js, buf, len) == -1) {
		if (sc->js.err == JSCAN_ENOMEM)
			http_error(req, 503, "server_error", NULL,
			    "Out of memory.");
		else
			route_bad(req, NULL, "We could not parse the JSON body "
			    "of your request: expected one JSON object.");
		goto done;
	}
	if (route_check(req->op, &sc->js, buf, &param, msg, sizeof(msg)) ==
	    -1) {
		route_bad(req, param, msg);
		goto done;
	}
	if ((model = jscan_string_in(&sc->str, buf, route_get(&sc->js,
	    "model"), &mlen)) == NULL || route_room(&sc->drop, &sc->dropcap,
	    sc->js.nm + 1, 1) == -1) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		goto done;
	}
	memset(sc->drop, 0, sc->js.nm + 1);
	/* For the audit trail, as the client named it. */
	free(req->model);
	req->model = strdup(model);
	if ((st = catalogue_route(model, req->key_id, req->retried ?
	    req->exclude : NULL, scope_of(req), &rt, msg, sizeof(msg))) != 0) {
		if (st == 403) {
			req->scope = FLM_SCOPE_DENIED_MODEL;
			http_error(req, 403, "permission_denied",
			    "model_not_allowed", msg);
		}
		else if (st == 404)
			http_error(req, 404, "invalid_request_error",
			    "model_not_found", msg);
		else if (st == 502)
			http_error(req, 502, "server_error", rt.code, msg);
		else if (st == 503) {
			req->retry_after = rt.retry_after;
			http_error(req, 503, "server_error", "pool_unavailable",
			    msg);
		} else
			route_bad(req, "model", msg);
		goto done;
	}
	memset(&call, 0, sizeof(call));
	snprintf(req->engine, sizeof(req->engine), "%s", rt.engine->id);
	call.engine = rt.engine;
	call.model = model;
	call.pool = rt.pool && !req->retried;
	/* Embeddings have no stream, whatever the body says. */
	call.stream = req->op != EP_EMBEDDINGS && route_flag(&sc->js,
	    "stream", NULL);
	call.usage = route_flag(&sc->js, "stream_options", "include_usage");
	ollama = req->dialect == DL_OLLAMA &&
	    strcmp(rt.engine->kind, "ollama") == 0;
	if (req->op == EP_COUNT_TOKENS) {
		if (route_count(req, &rt, buf, len, &native, &one, &call) == -1)
			goto done;
	} else if (req->op == EP_OLLAMA_SHOW) {
		if (!ollama) {
			front_native_show(req, &rt);
			goto done;
		}
		route_show(req, rt.model, &native, &one, &call);
	} else if (ollama) {
		if (route_passthrough(req, sc, rt.model, &rb, &call) == -1)
			goto done;
	} else if (req->op == EP_EMBEDDINGS && route_encoding(req, &sc->js,
	    buf, &call, sc->drop) == -1)
		goto done;
	else if (rt.openai) {
		if (route_slices(sc, buf, len, rt.model, call.stream &&
		    !call.usage, &rb, &call) == -1) {
			http_error(req, 503, "server_error", NULL,
			    "Out of memory.");
			goto done;
		}
		call.path = route_paths[req->op];
		call.mode = UP_PASS;
	} else if (route_native(req, buf, len, rt.model, &native, &one,
	    &call) == -1)
		goto done;
	upstream_start(req, &call);	/* copies what it keeps */
done:
	json_object_put(native);
}

/* The pool's engine failed before answering: once more, on another. */
void
route_retry(struct http_req *req)
{
	route_post(req);
}

static void
route_fresh(struct http_req *req)
{
	catalogue_when_fresh(req, route_post);
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
	case EP_OLLAMA_TAGS:
		catalogue_tags(req);
		break;
	case EP_OLLAMA_VERSION:
		fo_version(req);
		break;
	case EP_METRICS:
		metrics_serve(req);
		break;
	case EP_OLLAMA_CHAT:
	case EP_OLLAMA_GENERATE:
	case EP_OLLAMA_EMBED:
	case EP_OLLAMA_EMBEDDINGS:
	case EP_OLLAMA_SHOW:
	case EP_MESSAGES:
	case EP_COUNT_TOKENS:
	case EP_RESPONSES:
		front_request(req, route_fresh);
		break;
	default:
		http_error(req, 404, "invalid_request_error", "unknown_url",
		    "Unknown request URL.");
		break;
	}
}
