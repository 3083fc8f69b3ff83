/*
 * Engine probes: every configured engine's health, version and models,
 * all at once with libcurl's multi interface on proxyd's libevent loop,
 * within a fixed time budget (docs/ENGINE_DETECT.md).  proxyd connects
 * only to the numeric addresses flmd gave it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "jsonbuf.h"
#include "log.h"
#include "proxyd.h"

#define PROBE_CONNECT_MS	400
#define PROBE_TOTAL_MS		1000	/* per request; all run at once */
/* Through a SOCKS5 server (Tor's circuits are slow to build). */
#define PROBE_SOCKS_CONNECT_MS	5000
#define PROBE_SOCKS_TOTAL_MS	10000
#define PROBE_MAX_BODY		(1024 * 1024)
#define PROBE_MAX_REQS		3
#define PROBE_EVERY_SECS	30

struct probe_engine;

struct probe_req {
	struct probe_engine	*pe;
	const char		*path;
	int			 direct;	/* egress.fail_open's retry */
	struct pcurl		 c;
};

struct probe_engine {
	struct probe_run	*run;
	struct proxyd_engine	 e;
	struct probe_req	 req[PROBE_MAX_REQS];
	int			 nreq;
};

struct probe_run {
	uint32_t		 peerid;	/* 0: proxyd's own re-probe */
	unsigned int		 gen;		/* of the engine list probed */
	int			 pending;
	int			 n;
	struct probe_engine	 pe[PROXYD_MAX_ENGINES];
};

static struct event	*probe_tick;
static struct json_object *probe_last;	/* id -> state, for change logs */

static void	probe_finish(struct probe_run *);

/* ---- the requests --------------------------------------------------- */


static int	probe_start_slot(struct probe_engine *, struct probe_req *,
		    const char *, int);

static void
probe_req_done(struct pcurl *c, void *arg)
{
	struct probe_req	*r = arg;
	struct probe_engine	*pe = r->pe;

	/* The SOCKS server is down and egress.fail_open: once more,
	 * direct, in the same slot (still pending). */
	if (pe->e.socks.on && pe->e.socks.fail_open && !r->direct &&
	    pe->e.addr[0] != '\0' && (c->res == CURLE_COULDNT_CONNECT ||
	    c->res == CURLE_PROXY) && probe_start_slot(pe, r, r->path, 1) == 0)
		return;
	if (--pe->run->pending == 0)
		probe_finish(pe->run);
}

/* The engine's credential, as requests send it (wiped with the list). */
static void
probe_auth(struct probe_req *r, const struct probe_engine *pe)
{
	const char	*cred = creds_get(pe->e.id);
	char		 h[CURL_MAX_HTTP_HEADER];
	int		 n;

	if (cred == NULL)
		return;
	n = snprintf(h, sizeof(h), "Authorization: Bearer %s", cred);
	if (n > 0 && (size_t)n < sizeof(h)) {
		r->c.hdrs = curl_slist_append(r->c.hdrs, h);
		curl_easy_setopt(r->c.h, CURLOPT_HTTPHEADER, r->c.hdrs);
	}
	explicit_bzero(h, sizeof(h));
}

static int
probe_start_slot(struct probe_engine *pe, struct probe_req *r,
    const char *path, int direct)
{
	/* https: by the engine's name, which flmd resolved for us; through
	 * SOCKS by its name, which the server resolves. */
	int		 socks = pe->e.socks.on && !direct;
	const char	*h = pe->e.tls || socks ? pe->e.host : pe->e.addr;
	char		 url[512];

	snprintf(url, sizeof(url), strchr(h, ':') ? "%s://[%s]:%d%s" :
	    "%s://%s:%d%s", pe->e.tls ? "https" : "http", h, pe->e.port,
	    path);
	if (pcurl_new(&r->c, url, PROBE_MAX_BODY, probe_req_done, r) == -1)
		return -1;
	r->pe = pe;
	r->path = path;
	r->direct = direct;
	curl_easy_setopt(r->c.h, CURLOPT_CONNECTTIMEOUT_MS, socks ?
	    PROBE_SOCKS_CONNECT_MS : PROBE_CONNECT_MS);
	curl_easy_setopt(r->c.h, CURLOPT_TIMEOUT_MS, socks ?
	    PROBE_SOCKS_TOTAL_MS : PROBE_TOTAL_MS);
	curl_easy_setopt(r->c.h, CURLOPT_PROTOCOLS_STR, pe->e.tls ? "https" :
	    "http");
	if (pe->e.tls)
		uptls_curl(r->c.h, &pe->e, socks, &r->c.resolve);
	if (socks)
		socks_curl(r->c.h, &pe->e.socks);
	probe_auth(r, pe);
	return pcurl_start(&r->c);
}

static int
probe_start_req(struct probe_engine *pe, const char *path)
{
	if (probe_start_slot(pe, &pe->req[pe->nreq], path, 0) == -1)
		return -1;
	pe->nreq++;
	pe->run->pending++;
	return 0;
}

/* ---- what the answers mean -------------------------------------------- */

static const char *const probe_paths[][PROBE_MAX_REQS] = {
	/* ollama */	{ "/api/version", "/api/tags", "/v1/models" },
	/* lmstudio */	{ "/v1/models", NULL, NULL },
	/* vllm */	{ "/health", "/version", "/v1/models" },
	/* llamacpp */	{ "/health", "/v1/models", "/props" },
};

static int
probe_kind(const char *kind)
{
	if (strcmp(kind, "ollama") == 0)
		return 0;
	if (strcmp(kind, "lmstudio") == 0)
		return 1;
	if (strcmp(kind, "vllm") == 0)
		return 2;
	return 3;
}

static struct probe_req *
probe_get(struct probe_engine *pe, const char *path)
{
	int	 i;

	for (i = 0; i < pe->nreq; i++)
		if (strcmp(pe->req[i].path, path) == 0)
			return &pe->req[i];
	return NULL;
}

static struct json_object *
probe_json_body(struct probe_req *r)
{
	if (r == NULL || r->c.res != CURLE_OK || r->c.code != 200 ||
	    r->c.body == NULL)
		return NULL;
	return json_parse_buf(r->c.body, r->c.len);
}

static void
probe_add_model(struct json_object *models, const char *engine,
    struct json_object *m, int ollama, struct json_object *props)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*name, *d, *v, *g;
	char			 id[512];

	if (!json_object_object_get_ex(m, ollama ? "name" : "id", &name) ||
	    !json_object_is_type(name, json_type_string)) {
		json_object_put(o);
		return;
	}
	snprintf(id, sizeof(id), "flm://%s/%s", engine,
	    json_object_get_string(name));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "engine", json_object_new_string(engine));
	json_object_object_add(o, "model", json_object_get(name));
	if (ollama && json_object_object_get_ex(m, "size", &v))
		json_object_object_add(o, "size_bytes", json_object_get(v));
	if (ollama && json_object_object_get_ex(m, "details", &d)) {
		if (json_object_object_get_ex(d, "quantization_level", &v))
			json_object_object_add(o, "quantization",
			    json_object_get(v));
		if (json_object_object_get_ex(d, "parameter_size", &v))
			json_object_object_add(o, "parameters",
			    json_object_get(v));
		if (json_object_object_get_ex(d, "family", &v))
			json_object_object_add(o, "family", json_object_get(v));
	}
	if (!ollama && json_object_object_get_ex(m, "owned_by", &v))
		json_object_object_add(o, "owned_by", json_object_get(v));
	if (!ollama && json_object_object_get_ex(m, "created", &v) &&
	    json_object_is_type(v, json_type_int))
		json_object_object_add(o, "created", json_object_get(v));
	/* vLLM says it in the list itself. */
	if (!ollama && json_object_object_get_ex(m, "max_model_len", &v))
		json_object_object_add(o, "context_length", json_object_get(v));
	if (props != NULL &&
	    json_object_object_get_ex(props, "default_generation_settings", &g) &&
	    json_object_object_get_ex(g, "n_ctx", &v))
		json_object_object_add(o, "context_length", json_object_get(v));
	json_object_array_add(models, o);
}

static const char *
probe_failure(struct probe_req *r, char *why, size_t sz)
{
	if (r->c.truncated) {
		snprintf(why, sz, "%s answers more than %d bytes", r->path,
		    PROBE_MAX_BODY);
		return "ErrorApi";
	}
	if (r->pe->e.socks.on && !r->direct && (r->c.res ==
	    CURLE_COULDNT_CONNECT || r->c.res == CURLE_PROXY ||
	    r->c.res == CURLE_RECV_ERROR)) {
		char	 name[128];

		snprintf(why, sz, "%s: %.200s%s", socks_name(&r->pe->e.socks,
		    name, sizeof(name)), r->c.err[0] ? r->c.err :
		    curl_easy_strerror(r->c.res), r->pe->e.socks.user[0] !=
		    '\0' && creds_get(SOCKS_SECRET) == NULL ? " (no password "
		    "is set: flm egress password set)" : "");
		return "ErrorNetwork";
	}
	if (r->c.res == CURLE_COULDNT_CONNECT) {
		snprintf(why, sz, "nothing listens on %s", r->path);
		return "NotFound";
	}
	if (r->c.res == CURLE_OPERATION_TIMEDOUT) {
		snprintf(why, sz, "no answer to %s within %d ms", r->path,
		    r->pe->e.socks.on && !r->direct ? PROBE_SOCKS_TOTAL_MS :
		    PROBE_TOTAL_MS);
		return "ErrorNetwork";
	}
	if (r->c.res == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
		snprintf(why, sz, "TLS: the engine's public key is not the one "
		    "pinned in engines.%s.ca", r->pe->e.id);
		return "ErrorNetwork";
	}
	if (r->c.res != CURLE_OK) {
		snprintf(why, sz, "%s: %.200s", r->path, r->c.err[0] ? r->c.err :
		    curl_easy_strerror(r->c.res));
		return "ErrorNetwork";
	}
	if (r->c.code == 503) {
		snprintf(why, sz, "%s answers 503: loading or busy", r->path);
		return "RunningDegraded";
	}
	if (r->c.code == 401) {
		snprintf(why, sz, "%s answers HTTP 401: the engine wants a "
		    "credential (flm engines credential set %s)%s", r->path,
		    r->pe->e.id, creds_get(r->pe->e.id) != NULL ? "; it "
		    "refused the one set" : "");
		return "ErrorApi";
	}
	snprintf(why, sz, "%s answers HTTP %ld", r->path, r->c.code);
	return "ErrorApi";
}

/*
 * The owner of the engine's listener (null: not knowable), and the
 * state OwnerChanged when it is not the one flmd recorded: its models
 * are then not served (proxyd_catalogue.c says why).
 */
static void
probe_owner(struct probe_engine *pe, struct json_object *o)
{
	char	 why[300];
	int64_t	 uid = -1;

	/* Through SOCKS: another host's listener, no owner to know. */
	if (pe->e.addr[0] != '\0' && owner_check(&pe->e, &uid, why,
	    sizeof(why)) == -1) {
		json_object_object_add(o, "state",
		    json_object_new_string("OwnerChanged"));
		json_object_object_add(o, "reason",
		    json_object_new_string(why));
	}
	json_object_object_add(o, "owner_uid", uid >= 0 ?
	    json_object_new_int64(uid) : NULL);
}

/*
 * Why requests to the engine are refused, as the code of their 502:
 * it is not the one meant or TLS to it cannot be had; the way out
 * (SOCKS5) is down or refuses.  NULL: they are not.
 */
static const char *
probe_refused(const struct probe_engine *pe, const struct probe_req *bad)
{
	if (pe->e.socks.error[0] != '\0')
		return "egress_failed";
	if (pe->e.refused[0] != '\0')
		return "engine_tls_failed";
	if (bad == NULL)
		return NULL;
	/* It wants the credential FLM lacks (or refuses the one set). */
	if (bad->c.res == CURLE_OK && bad->c.code == 401)
		return "engine_auth_failed";
	if (pe->e.socks.on && !bad->direct && (bad->c.res ==
	    CURLE_COULDNT_CONNECT || bad->c.res == CURLE_PROXY ||
	    bad->c.res == CURLE_RECV_ERROR))
		return "egress_failed";
	if (!pe->e.tls)
		return NULL;
	switch (bad->c.res) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return "engine_tls_failed";
	default:
		return NULL;
	}
}

/* One engine's verdict from its answers. */
static struct json_object *
probe_verdict(struct probe_engine *pe)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*models = json_object_new_array();
	struct json_object	*ver = NULL, *list = NULL, *props = NULL, *arr, *v;
	const char		*state = "RunningHealthy";
	char			 why[400] = "", base[300];
	double			 ms = 0;
	int			 k = probe_kind(pe->e.kind), ollama = k == 0, i;
	struct probe_req	*bad = NULL;
	const char		*refused;

	for (i = 0; i < pe->nreq; i++) {
		if (pe->req[i].c.ms > ms)
			ms = pe->req[i].c.ms;
		/* Ollama's /v1 only says which API the proxy speaks. */
		if (ollama && strcmp(pe->req[i].path, "/v1/models") == 0)
			continue;
		if (bad == NULL && (pe->req[i].c.res != CURLE_OK ||
		    pe->req[i].c.code != 200))
			bad = &pe->req[i];
	}
	list = probe_json_body(probe_get(pe, ollama ? "/api/tags" :
	    "/v1/models"));
	if (k == 0 || k == 2)
		ver = probe_json_body(probe_get(pe, k == 0 ? "/api/version" :
		    "/version"));
	if (k == 3)
		props = probe_json_body(probe_get(pe, "/props"));
	if (pe->e.refused[0] != '\0') {
		state = "ErrorNetwork";
		snprintf(why, sizeof(why), "%s", pe->e.refused);
	} else if (bad != NULL)
		state = probe_failure(bad, why, sizeof(why));
	else if (list == NULL || !json_object_object_get_ex(list,
	    ollama ? "models" : "data", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		state = "ErrorApi";
		snprintf(why, sizeof(why), "the model list is not the JSON "
		    "this engine documents");
	}
	/* Some answers good, one not: up, but not all there. */
	if (bad != NULL && list != NULL && strcmp(state, "NotFound") != 0)
		state = "RunningDegraded";
	if (list != NULL && json_object_object_get_ex(list,
	    ollama ? "models" : "data", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (i = 0; i < (int)json_object_array_length(arr); i++)
			probe_add_model(models, pe->e.id,
			    json_object_array_get_idx(arr, i), ollama, props);
	snprintf(base, sizeof(base), strchr(pe->e.host, ':') ?
	    "%s://[%s]:%d" : "%s://%s:%d", pe->e.tls ? "https" : "http",
	    pe->e.host, pe->e.port);
	json_object_object_add(o, "id", json_object_new_string(pe->e.id));
	json_object_object_add(o, "kind", json_object_new_string(pe->e.kind));
	json_object_object_add(o, "base_url", json_object_new_string(base));
	json_object_object_add(o, "state", json_object_new_string(state));
	json_object_object_add(o, "version", ver != NULL &&
	    json_object_object_get_ex(ver, "version", &v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(o, "model_count",
	    json_object_new_int(json_object_array_length(models)));
	json_object_object_add(o, "latency_ms",
	    json_object_new_int((int)(ms + 0.5)));
	json_object_object_add(o, "reason", *why ?
	    json_object_new_string(why) : NULL);
	json_object_object_add(o, "models", models);
	v = NULL;
	if (ollama)
		v = probe_json_body(probe_get(pe, "/v1/models"));
	json_object_object_add(o, "openai", json_object_new_boolean(!ollama ||
	    v != NULL));
	json_object_put(v);
	/* Its models' requests are refused with the reason, not 404. */
	if ((refused = probe_refused(pe, bad)) != NULL)
		json_object_object_add(o, "refused",
		    json_object_new_string(refused));
	pool_breaker_json(pe->e.id, o);
	probe_owner(pe, o);
	json_object_put(ver);
	json_object_put(list);
	json_object_put(props);
	return o;
}

static void
probe_log_changes(struct json_object *arr)
{
	struct json_object	*e, *prev, *st;
	size_t			 i;

	if (probe_last == NULL)
		probe_last = json_object_new_object();
	for (i = 0; i < json_object_array_length(arr); i++) {
		const char	*id, *state;

		e = json_object_array_get_idx(arr, i);
		id = json_object_get_string(json_object_object_get(e, "id"));
		st = json_object_object_get(e, "state");
		state = json_object_get_string(st);
		if (json_object_object_get_ex(probe_last, id, &prev) &&
		    strcmp(json_object_get_string(prev), state) == 0)
			continue;
		log_info("engine %s: %s%s%s", id, state,
		    json_object_object_get(e, "reason") ? ": " : "",
		    json_object_object_get(e, "reason") ? json_object_get_string(
		    json_object_object_get(e, "reason")) : "");
		json_object_object_add(probe_last, id, json_object_get(st));
	}
}

static void
probe_free_run(struct probe_run *run)
{
	int	 i, j;

	for (i = 0; i < run->n; i++)
		for (j = 0; j < run->pe[i].nreq; j++)
			pcurl_cancel(&run->pe[i].req[j].c);
	free(run);
}

static void
probe_finish(struct probe_run *run)
{
	struct json_object	*arr = json_object_new_array();
	int			 i;

	for (i = 0; i < run->n; i++)
		json_object_array_add(arr, probe_verdict(&run->pe[i]));
	probe_log_changes(arr);
	catalogue_update(arr, run->gen);
	/* flmd keeps engines_cache; a detect request also gets its answer. */
	chan_compose_json(px->c.parent, IMSG_ENGINES_STATE, run->peerid, arr);
	json_object_put(arr);
	probe_free_run(run);
}

/* Probe every configured engine now; peerid 0 for proxyd's own. */
void
probe_run(uint32_t peerid)
{
	struct probe_run	*run;
	int			 i, j, k;

	if ((run = calloc(1, sizeof(*run))) == NULL) {
		log_warn("probe");
		return;
	}
	run->peerid = peerid;
	run->gen = catalogue_generation();
	for (i = 0; i < px->nengines; i++) {
		struct probe_engine	*pe = &run->pe[run->n++];

		pe->run = run;
		pe->e = px->engines[i];
		k = probe_kind(pe->e.kind);
		if (pe->e.refused[0] != '\0')
			continue;	/* refused: nothing to ask */
		for (j = 0; j < PROBE_MAX_REQS && probe_paths[k][j]; j++)
			if (probe_start_req(pe, probe_paths[k][j]) == -1)
				log_warnx("engine %s: cannot probe %s",
				    pe->e.id, probe_paths[k][j]);
	}
	if (px->worker == 0)
		socks_check(0);	/* flm proxy status shows the egress */
	run->pending++;		/* none may finish before all started */
	if (--run->pending == 0)
		probe_finish(run);
}

static void
probe_periodic(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	probe_run(0);
}

void
probe_init(void)
{
	struct timeval	 tv = { PROBE_EVERY_SECS, 0 };

	probe_tick = event_new(px->c.base, -1, EV_PERSIST, probe_periodic,
	    NULL);
	if (probe_tick == NULL || event_add(probe_tick, &tv) == -1)
		fatalx("probe timers");
}

void
probe_cleanup(void)
{
	if (probe_tick != NULL)
		event_free(probe_tick);
	json_object_put(probe_last);
}
