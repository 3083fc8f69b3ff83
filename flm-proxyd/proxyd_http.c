/*
 * The client side of flm-proxyd: HTTP on the sockets flmd passes in,
 * routing, and OpenAI-shaped errors.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "log.h"
#include "proxyd.h"

#define HTTP_MAX_HEADERS	(32 * 1024)
#define HTTP_MAX_BODY		(8 * 1024 * 1024)
#define HTTP_TIMEOUT_SECS	60

void
http_json(struct evhttp_request *req, int code, struct json_object *o)
{
	struct evbuffer	*buf = evbuffer_new();
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	evbuffer_add(buf, s, len);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

/* OpenAI's error shape: {"error": {message, type, param, code}}. */
void
http_error(struct evhttp_request *req, int status, const char *type,
    const char *code, const char *msg)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*e = json_object_new_object();

	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "param", NULL);
	json_object_object_add(e, "code", code ?
	    json_object_new_string(code) : NULL);
	json_object_object_add(o, "error", e);
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
	http_json(req, status, o);
	json_object_put(o);
}

static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)arg;
	/* Whoever still holds a request on this connection must let go. */
	auth_conn_closed(evcon);
	catalogue_conn_closed(evcon);
}

/* Before a request waits on keyd or an engine: notice if the client goes. */
void
http_watch_close(struct evhttp_request *req)
{
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    http_conn_closed, NULL);
}

static void
http_healthz(struct evhttp_request *req)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	http_json(req, 200, o);
	json_object_put(o);
}

static void
http_request(struct evhttp_request *req, void *arg)
{
	struct proxyd_listener	*l = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	char			 msg[256];

	if (path == NULL) {
		http_error(req, 400, "invalid_request_error", NULL,
		    "Malformed request URL.");
		return;
	}
	if (strcmp(path, "/healthz") == 0 && cmd == EVHTTP_REQ_GET) {
		http_healthz(req);
		return;
	}
	if (strcmp(path, "/v1/models") == 0) {
		if (cmd != EVHTTP_REQ_GET) {
			http_error(req, 405, "invalid_request_error", NULL,
			    "Method not allowed: use GET /v1/models.");
			return;
		}
		if (l->auth)
			auth_check(req, catalogue_models, NULL);
		else
			catalogue_models(req, NULL, NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "Unknown request URL: %.200s. Please "
	    "check the URL for typos.", path);
	http_error(req, 404, "invalid_request_error", "unknown_url", msg);
}

static struct evhttp *
http_new(struct proxyd_listener *l)
{
	struct evhttp	*http;

	if ((http = evhttp_new(px->c.base)) == NULL)
		return NULL;
	evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(http, HTTP_MAX_BODY);
	evhttp_set_timeout(http, HTTP_TIMEOUT_SECS);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(http, http_request, l);
	return http;
}

/* One evhttp per listener: each knows whether it checks keys. */
void
http_listen(int fd, const char *id, int auth)
{
	struct proxyd_listener	*l;

	http_close(id);		/* a restarted flmd re-sends: replace */
	if (px->nlisteners == PROXYD_MAX_LISTENERS ||
	    (l = calloc(1, sizeof(*l))) == NULL) {
		log_warnx("cannot take listener %s", id);
		close(fd);
		return;
	}
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->auth = auth;
	if ((l->http = http_new(l)) == NULL ||
	    evhttp_accept_socket_with_handle(l->http, fd) == NULL) {
		log_warnx("cannot serve %s", id);
		if (l->http != NULL)
			evhttp_free(l->http);
		free(l);
		close(fd);
		return;
	}
	px->listeners[px->nlisteners++] = l;
	log_info("serving %s%s", id, auth ? "" :
	    " WITHOUT KEY CHECKS (benchmark only)");
}

void
http_close(const char *id)
{
	int	 i;

	for (i = 0; i < px->nlisteners; i++) {
		if (strcmp(px->listeners[i]->id, id) != 0)
			continue;
		/* id may be the listener's own: say it before freeing. */
		log_info("stopped serving %s", id);
		/* Closes the socket and every connection it accepted. */
		evhttp_free(px->listeners[i]->http);
		free(px->listeners[i]);
		memmove(&px->listeners[i], &px->listeners[i + 1],
		    (px->nlisteners - i - 1) * sizeof(px->listeners[0]));
		px->nlisteners--;
		return;
	}
}

void
http_cleanup(void)
{
	while (px->nlisteners > 0)
		http_close(px->listeners[0]->id);
}
