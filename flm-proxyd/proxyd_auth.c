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
#include <sodium.h>

#include "apikey.h"
#include "keycache.h"
#include "log.h"
#include "keyscope.h"
#include "proxyd.h"

#define AUTH_TIMEOUT_SECS	10	/* keyd gone that long: 503 */
#define AUTH_MAX_PENDING	64	/* cold checks in flight at keyd */
#define AUTH_CACHE_SIZE		4096
#define AUTH_USED_SECS		5	/* last-used reports to keyd */
#define AUTH_FAIL_SLOTS		1024

struct auth_req {
	TAILQ_ENTRY(auth_req)	 entry;
	uint64_t		 id;
	struct http_req		*req;		/* NULL: the client left */
	auth_done_cb		 done;
	time_t			 since;
	char			 addr[64];	/* the client's */
	uint8_t			 digest[KEYCACHE_DIGEST];
	struct flm_key_verify	 v;		/* wiped when answered */
};

/* Failed checks per client address in the current window. */
struct auth_fail {
	char			 addr[64];
	time_t			 window;
	int			 count;
};

static TAILQ_HEAD(, auth_req)	 auth_pending =
    TAILQ_HEAD_INITIALIZER(auth_pending);
static int			 auth_npending;
static uint64_t			 auth_nextid = 1;
static struct event		*auth_tick;
static struct event		*auth_used_tick;
static struct auth_fail		 auth_fails[AUTH_FAIL_SLOTS];

static void
auth_free(struct auth_req *a)
{
	TAILQ_REMOVE(&auth_pending, a, entry);
	auth_npending--;
	sodium_memzero(&a->v, sizeof(a->v));
	free(a);
}

static void
auth_retry_after(struct http_req *req, long secs)
{
	req->retry_after = secs > 0 ? (int)secs : 1;
}

static struct auth_fail *
auth_fail_slot(const char *addr, time_t now, int create)
{
	struct auth_fail	*f, *oldest = &auth_fails[0];
	time_t			 window = px->policy.auth_fail_window;
	size_t			 i;

	for (i = 0; i < AUTH_FAIL_SLOTS; i++) {
		f = &auth_fails[i];
		if (f->addr[0] != '\0' && strcmp(f->addr, addr) == 0) {
			if (now - f->window >= window) {
				f->window = now;
				f->count = 0;
			}
			return f;
		}
		if (f->window < oldest->window)
			oldest = f;
	}
	if (!create)
		return NULL;
	/* A full table forgets the stalest address. */
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->window = now;
	oldest->count = 0;
	return oldest;
}

/* Too many failures from addr: refuse with 429 before asking keyd. */
static int
auth_throttled(struct http_req *req, const char *addr)
{
	struct auth_fail	*f;
	time_t			 now = time(NULL);

	/* The policy's auth_failures: so many per address per window. */
	if ((f = auth_fail_slot(addr, now, 0)) == NULL ||
	    f->count < (int)px->policy.auth_fail_max)
		return 0;
	auth_retry_after(req, (time_t)px->policy.auth_fail_window -
	    (now - f->window));
	http_error(req, 429, "rate_limit_error", "too_many_failed_auth",
	    "Too many requests with invalid API keys from your address; "
	    "wait before trying again.");
	return 1;
}

static void
auth_failed(const char *addr)
{
	auth_fail_slot(addr, time(NULL), 1)->count++;
}

static void
auth_refuse(struct http_req *req, uint32_t result)
{
	switch (result) {
	case FLM_KEY_UNAVAILABLE:
		auth_retry_after(req, 1);
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
		chan_compose_wipe(ch, IMSG_KEY_VERIFY, 0, -1, &a->v,
		    sizeof(a->v));
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
		if (a->req != NULL) {
			http_release(a->req);
			auth_refuse(a->req, FLM_KEY_UNAVAILABLE);
		}
		auth_free(a);
	}
}

/* Tell keyd which keys were used, for last_used_at. */
static void
auth_report_used(evutil_socket_t fd, short ev, void *arg)
{
	char	 ids[256][FLM_KEY_ID_LEN + 1];
	char	 buf[256 * FLM_KEY_ID_LEN];
	size_t	 n, i;

	(void)fd;
	(void)ev;
	(void)arg;
	if (px->c.peer == NULL)
		return;		/* kept as used until keyd is back */
	n = keycache_collect_used(px->cache, ids, 256);
	for (i = 0; i < n; i++)
		memcpy(buf + i * FLM_KEY_ID_LEN, ids[i], FLM_KEY_ID_LEN);
	if (n > 0)
		chan_compose(px->c.peer, IMSG_KEY_USED, 0, -1, buf,
		    n * FLM_KEY_ID_LEN);
}

void
auth_init(void)
{
	struct timeval	 tv = { 1, 0 }, used = { AUTH_USED_SECS, 0 };

	if ((px->cache = keycache_new(AUTH_CACHE_SIZE)) == NULL)
		fatalx("keycache_new");
	auth_tick = event_new(px->c.base, -1, EV_PERSIST, auth_expire, NULL);
	auth_used_tick = event_new(px->c.base, -1, EV_PERSIST,
	    auth_report_used, NULL);
	if (auth_tick == NULL || event_add(auth_tick, &tv) == -1 ||
	    auth_used_tick == NULL || event_add(auth_used_tick, &used) == -1)
		fatalx("auth timer");
}

void
auth_cleanup(void)
{
	while (!TAILQ_EMPTY(&auth_pending))
		auth_free(TAILQ_FIRST(&auth_pending));
	if (auth_tick != NULL)
		event_free(auth_tick);
	if (auth_used_tick != NULL)
		event_free(auth_used_tick);
	auth_tick = auth_used_tick = NULL;
	keycache_free(px->cache);
	px->cache = NULL;
}

/* "Bearer TOKEN" -> TOKEN; else Anthropic's "x-api-key: TOKEN"; or
 * NULL. */
static const char *
auth_bearer(struct http_req *req, size_t *len)
{
	const char	*h, *end;
	size_t		 hlen;

	h = http_header(&req->head, "authorization", &hlen);
	if (h == NULL && (h = http_header(&req->head, "x-api-key",
	    &hlen)) != NULL) {
		*len = hlen;
		return h;
	}
	if (h == NULL || hlen < 7 || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	end = h + hlen;
	for (h += 7; h < end && *h == ' '; h++)
		;
	*len = end - h;		/* trailing blanks are not in the value */
	return h;
}

static void
auth_abort(struct http_req *req, void *arg)
{
	struct auth_req	*a = arg;

	(void)req;
	a->req = NULL;		/* keyd's answer still fills the cache */
}

/*
 * The token (len bytes, or NULL) checked: done(req, key_id) once keyd
 * says the key is good; the request refused with 401/503 otherwise.
 * Obviously bad tokens never reach keyd.
 */
static void
auth_check_token(struct http_req *req, auth_done_cb done, const char *tok,
    size_t len)
{
	struct keycache_entry	*ce;
	struct auth_req		*a;
	const char		*secret;
	char			 id[FLM_KEY_ID_LEN + 1];
	const char		*addr = http_req_addr(req);
	uint8_t			 dig[KEYCACHE_DIGEST];

	if (tok != NULL && len > 0 && len <= FLM_TOKEN_MAX) {
		/* The steady state: one keyed hash, no round trip. */
		keycache_digest(px->cache, tok, len, dig);
		if ((ce = keycache_get(px->cache, dig, time(NULL))) != NULL) {
			metrics_key(MX_KEY_CACHED);
			done(req, ce->key_id);
			return;
		}
	}
	if (auth_throttled(req, addr))
		return;
	if (tok == NULL || len == 0) {
		http_error(req, 401, "invalid_request_error", NULL,
		    req->dialect == DL_ANTHROPIC ? "You didn't provide an "
		    "API key: send it in an x-api-key header (or "
		    "Authorization: Bearer YOUR_KEY)." : "You didn't provide "
		    "an API key. You need to provide your API key in an "
		    "Authorization header using Bearer auth (i.e. "
		    "Authorization: Bearer YOUR_KEY).");
		return;
	}
	/* Not flm_<id>_<secret>: perhaps a key flm migrate legacy
	 * imported, which only keyd can find (by its digest); anything
	 * else, blanks and controls among it, never leaves proxyd. */
	if (len > FLM_TOKEN_MAX || (apikey_parse(tok, len, id, &secret) == -1 &&
	    !apikey_legacy_valid(tok, len))) {
		metrics_key(MX_KEY_FAILED);
		auth_failed(addr);
		auth_refuse(req, FLM_KEY_MALFORMED);
		return;
	}
	if (auth_npending >= AUTH_MAX_PENDING) {
		/* A flood of cold keys waits its turn; cached keys never do. */
		auth_retry_after(req, 1);
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
	a->done = done;
	a->since = time(NULL);
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	memcpy(a->digest, dig, sizeof(dig));
	a->v.version = FLM_VERIFY_VERSION;
	a->v.reqid = a->id;
	a->v.token_len = len;
	memcpy(a->v.token, tok, len);
	TAILQ_INSERT_TAIL(&auth_pending, a, entry);
	auth_npending++;
	metrics_key(MX_KEY_COLD);
	http_hold(req, auth_abort, a);
	auth_send(px->c.peer, a);
}

/*
 * Check the request's bearer token.  It is copied out and wiped from
 * the request's head before anything else (an answer may free the
 * request), and the copy is wiped once checked: only the KEY_VERIFY
 * of a pending check keeps it, until keyd answers.
 */
void
auth_check(struct http_req *req, auth_done_cb done)
{
	char		 tok[FLM_TOKEN_MAX];
	const char	*h;
	size_t		 len = 0;

	if ((h = auth_bearer(req, &len)) != NULL && len <= FLM_TOKEN_MAX)
		memcpy(tok, h, len);
	http_wipe_header(req, "authorization");
	http_wipe_header(req, "x-api-key");
	/* Too long: refused by its length, never copied. */
	auth_check_token(req, done, h == NULL ? NULL : tok, len);
	sodium_memzero(tok, sizeof(tok));
}

void
auth_verdict(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_verdict	 r;
	struct auth_req		*a;
	char			 scope[KEYSCOPE_MAX_BYTES], err[200];

	if (msg_get_data(m, &r, sizeof(r)) == -1 ||
	    msg_get_string(m, scope, sizeof(scope)) == -1 || msg_end(m) == -1 ||
	    r.version != FLM_VERIFY_VERSION || r.result >= FLM_KEY_RESULT_MAX ||
	    memchr(r.key_id, '\0', sizeof(r.key_id)) == NULL ||
	    (r.result != FLM_KEY_OK && scope[0] != '\0')) {
		chan_fail(ch, "malformed KEY_VERDICT");
		return;
	}
	/* Before anything is cached: a verdict is never without its
	 * scope. */
	if (r.result == FLM_KEY_OK && scope_set(r.key_id, scope, err,
	    sizeof(err)) == -1) {
		if (strcmp(err, "out of memory") != 0) {
			chan_fail(ch, "malformed KEY_VERDICT: %s", err);
			return;
		}
		r.result = FLM_KEY_UNAVAILABLE;
	}
	TAILQ_FOREACH(a, &auth_pending, entry)
		if (a->id == r.reqid)
			break;
	if (a == NULL)
		return;		/* expired meanwhile */
	if (r.result == FLM_KEY_OK)
		keycache_put(px->cache, a->digest, r.key_id, r.valid_until);
	else {
		metrics_key(MX_KEY_FAILED);
		if (r.result != FLM_KEY_UNAVAILABLE)
			auth_failed(a->addr);
	}
	if (a->req != NULL) {
		http_release(a->req);
		if (r.result == FLM_KEY_OK)
			a->done(a->req, r.key_id);
		else
			auth_refuse(a->req, r.result);
	}
	auth_free(a);
}

/* keyd revoked or rotated a key: forget it, then say so. */
void
auth_invalidate(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_invalidate	 inv;

	if (msg_get_data(m, &inv, sizeof(inv)) == -1 || msg_end(m) == -1 ||
	    inv.version != FLM_VERIFY_VERSION ||
	    memchr(inv.key_id, '\0', sizeof(inv.key_id)) == NULL) {
		chan_fail(ch, "malformed KEY_INVALIDATE");
		return;
	}
	if (inv.all)
		keycache_clear(px->cache);
	else
		keycache_drop_key(px->cache, inv.key_id);
	scope_drop(inv.all ? NULL : inv.key_id);
	chan_compose(ch, IMSG_KEY_INVALIDATED, 0, -1, &inv, sizeof(inv));
}

/*
 * A new keyd channel: a new authority.  Forget every cached verdict (a
 * revoke the old keyd could not tell us about must not be missed) and
 * ask again whatever the old keyd did not answer.
 */
void
auth_keyd_up(struct chan *ch)
{
	struct auth_req	*a;

	if (px->cache != NULL)
		keycache_clear(px->cache);
	scope_drop(NULL);
	TAILQ_FOREACH(a, &auth_pending, entry)
		auth_send(ch, a);
}
