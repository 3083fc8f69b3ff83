/*
 * Is this bearer token a key?  proxyd cannot tell: it asks flm-keyd
 * over their channel and waits without blocking its loop.  Requests
 * in flight when keyd restarts are asked again of the new keyd.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <sodium.h>

#include "apikey.h"
#include "log.h"
#include "proxyd.h"

#define AUTH_TIMEOUT_SECS	10	/* keyd gone that long: 503 */
#define AUTH_MAX_PENDING	4096

struct auth_req {
	TAILQ_ENTRY(auth_req)	 entry;
	uint64_t		 id;
	struct evhttp_request	*req;		/* NULL: the client left */
	struct evhttp_connection *evcon;
	auth_done_cb		 done;
	void			*arg;
	time_t			 since;
	struct flm_key_verify	 v;		/* wiped when answered */
};

static TAILQ_HEAD(, auth_req)	 auth_pending =
    TAILQ_HEAD_INITIALIZER(auth_pending);
static int			 auth_npending;
static uint64_t			 auth_nextid = 1;
static struct event		*auth_tick;

static void
auth_free(struct auth_req *a)
{
	TAILQ_REMOVE(&auth_pending, a, entry);
	auth_npending--;
	sodium_memzero(&a->v, sizeof(a->v));
	free(a);
}

static void
auth_refuse(struct evhttp_request *req, uint32_t result)
{
	switch (result) {
	case FLM_KEY_UNAVAILABLE:
		http_error(req, 503, "server_error", "auth_unavailable",
		    "The key service is unavailable; try again shortly.");
		break;
	case FLM_KEY_REVOKED:
		http_error(req, 401, "invalid_request_error",
		    "invalid_api_key", "This API key has been revoked.");
		break;
	case FLM_KEY_EXPIRED:
		http_error(req, 401, "invalid_request_error",
		    "invalid_api_key", "This API key has expired.");
		break;
	default:
		http_error(req, 401, "invalid_request_error",
		    "invalid_api_key", "Incorrect API key provided.");
		break;
	}
}

static void
auth_send(struct chan *ch, struct auth_req *a)
{
	/* Queued behind our HELLO if the channel is brand new. */
	if (ch != NULL)
		chan_compose(ch, IMSG_KEY_VERIFY, 0, -1, &a->v, sizeof(a->v));
}

/* Give up on requests keyd has not answered in time. */
static void
auth_expire(evutil_socket_t fd, short ev, void *arg)
{
	struct auth_req	*a, *next;
	time_t		 now = time(NULL);

	(void)fd;
	(void)ev;
	(void)arg;
	for (a = TAILQ_FIRST(&auth_pending); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (now - a->since < AUTH_TIMEOUT_SECS)
			continue;
		if (a->req != NULL)
			auth_refuse(a->req, FLM_KEY_UNAVAILABLE);
		auth_free(a);
	}
}

void
auth_init(void)
{
	struct timeval	 tv = { 1, 0 };

	auth_tick = event_new(px->c.base, -1, EV_PERSIST, auth_expire, NULL);
	if (auth_tick == NULL || event_add(auth_tick, &tv) == -1)
		fatalx("auth timer");
}

void
auth_cleanup(void)
{
	while (!TAILQ_EMPTY(&auth_pending))
		auth_free(TAILQ_FIRST(&auth_pending));
	if (auth_tick != NULL)
		event_free(auth_tick);
	auth_tick = NULL;
}

/* "Bearer TOKEN" -> TOKEN, or NULL. */
static const char *
auth_bearer(struct evhttp_request *req, size_t *len)
{
	const char	*h, *t;

	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	for (t = h + 7; *t == ' '; t++)
		;
	*len = strlen(t);
	while (*len > 0 && (t[*len - 1] == ' ' || t[*len - 1] == '\t'))
		(*len)--;
	return t;
}

/*
 * Call done(req, key_id, arg) once keyd says the key is good; refuse
 * the request with 401/503 otherwise.  Obviously bad tokens never
 * reach keyd.
 */
void
auth_check(struct evhttp_request *req, auth_done_cb done, void *arg)
{
	struct auth_req	*a;
	const char	*tok, *secret;
	char		 id[FLM_KEY_ID_LEN + 1];
	size_t		 len = 0;

	if ((tok = auth_bearer(req, &len)) == NULL || len == 0) {
		http_error(req, 401, "invalid_request_error", NULL,
		    "You didn't provide an API key. You need to provide your "
		    "API key in an Authorization header using Bearer auth "
		    "(i.e. Authorization: Bearer YOUR_KEY).");
		return;
	}
	if (apikey_parse(tok, len, id, &secret) == -1) {
		auth_refuse(req, FLM_KEY_MALFORMED);
		return;
	}
	if (auth_npending >= AUTH_MAX_PENDING) {
		http_error(req, 503, "server_error", "auth_busy",
		    "Too many requests are waiting for key checks; try again.");
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	a->id = auth_nextid++;
	a->req = req;
	a->evcon = evhttp_request_get_connection(req);
	a->done = done;
	a->arg = arg;
	a->since = time(NULL);
	a->v.version = FLM_VERIFY_VERSION;
	a->v.reqid = a->id;
	a->v.token_len = len;
	memcpy(a->v.token, tok, len);
	TAILQ_INSERT_TAIL(&auth_pending, a, entry);
	auth_npending++;
	http_watch_close(req);
	auth_send(px->c.peer, a);
}

void
auth_verdict(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_verdict	 r;
	struct auth_req		*a;

	if (msg_get_data(m, &r, sizeof(r)) == -1 || msg_end(m) == -1 ||
	    r.version != FLM_VERIFY_VERSION ||
	    memchr(r.key_id, '\0', sizeof(r.key_id)) == NULL) {
		chan_fail(ch, "malformed KEY_VERDICT");
		return;
	}
	TAILQ_FOREACH(a, &auth_pending, entry)
		if (a->id == r.reqid)
			break;
	if (a == NULL)
		return;		/* expired meanwhile */
	if (a->req != NULL) {
		if (r.result == FLM_KEY_OK)
			a->done(a->req, r.key_id, a->arg);
		else
			auth_refuse(a->req, r.result);
	}
	auth_free(a);
}

/* A new keyd channel: ask again whatever the old keyd did not answer. */
void
auth_keyd_up(struct chan *ch)
{
	struct auth_req	*a;

	TAILQ_FOREACH(a, &auth_pending, entry)
		auth_send(ch, a);
}

void
auth_conn_closed(struct evhttp_connection *evcon)
{
	struct auth_req	*a;

	TAILQ_FOREACH(a, &auth_pending, entry)
		if (a->evcon == evcon)
			a->req = NULL;
}
