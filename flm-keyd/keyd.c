/*
 * flm-keyd: the only holder of security.db and the master key.  It
 * answers flmd and flm-proxyd over its channels and never touches the
 * network: its sandbox forbids socket(2), connect(2) and execve(2).
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <sodium.h>

#include "apikey.h"
#include "child.h"
#include "db.h"
#include "keycache.h"
#include "legacy.h"
#include "keyd.h"
#include "keyscope.h"
#include "log.h"
#include "paths.h"

#define KEYD_CACHE_SIZE		4096
#define KEYD_INVALIDATE_SECS	2
#define KEYD_USED_MAX		1024
#define KEYD_USED_FLUSH_SECS	10

/*
 * A revoke, rotate, policy or TLS change waiting for every proxyd
 * worker connected when it was made to confirm it.
 */
struct keyd_change {
	TAILQ_ENTRY(keyd_change)	 entry;
	uint64_t			 seq;
	uint64_t			 waiting;	/* bit i: worker i */
	uint32_t			 peerid;
	struct json_object		*res;
	void				(*done)(void *);	/* or the reply */
	void				*arg;	/* done's, freed by it */
	struct event			*timeout;
};

static struct child		 keyd;
static struct db		 keyd_db;
static struct keycache		*keyd_cache;
static TAILQ_HEAD(, keyd_change) keyd_changes =
    TAILQ_HEAD_INITIALIZER(keyd_changes);
static uint64_t			 keyd_seq;
static char			 keyd_usedids[KEYD_USED_MAX][FLM_KEY_ID_LEN + 1];
static struct json_object	*keyd_engine_ids;	/* flmd's: creds' scope */
static size_t			 keyd_nused;

static void	keyd_change_timeout(evutil_socket_t, short, void *);
static void	keyd_used(const char *);
static int	keyd_restored;		/* a restore finished at start */
static void	keyd_integrity_check(int);

/* Bit i set: worker i's channel is up. */
static uint64_t
keyd_peers(void)
{
	uint64_t	 mask = 0;
	int		 i;

	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (keyd.peers[i] != NULL)
			mask |= 1ULL << i;
	return mask;
}

/* The first worker up: it runs ACME orders. */
struct chan *
keyd_any_peer(void)
{
	int	 i;

	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (keyd.peers[i] != NULL)
			return keyd.peers[i];
	return NULL;
}

static int
keyd_peer_slot(struct chan *ch)
{
	int	 i;

	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (keyd.peers[i] == ch)
			return i;
	return -1;
}

/* Wipe a key text held in a JSON result before it is freed. */
static void
keyd_wipe_key(struct json_object *res)
{
	struct json_object	*key;

	if (json_object_object_get_ex(res, "key", &key))
		sodium_memzero((char *)json_object_get_string(key),
		    json_object_get_string_len(key));
}

static void
keyd_reply(uint32_t peerid, struct json_object *res)
{
	/* New key texts ride on these: wiped once written.  Too large
	 * for one message: say so, rather than leave flm waiting. */
	if (chan_compose_secret(keyd.parent, IMSG_KEY_RESULT, peerid, res,
	    "key") == -1)
		chan_compose_error(keyd.parent, IMSG_KEY_ERROR, peerid,
		    EMSGSIZE, "the answer is too large for one message: ask "
		    "for less (fewer records, a narrower --since or --key)");
	keyd_wipe_key(res);
	json_object_put(res);
}

/*
 * A key changed: forget it here, and answer the admin only once
 * proxyd has forgotten it too, so a revoked key is refused on its very
 * next request.  A proxyd that does not confirm in time is restarted
 * by flmd (a new proxyd starts with an empty cache).
 */
static struct keyd_change *
keyd_change_new(uint32_t peerid, struct json_object *res)
{
	struct keyd_change	*kch;
	struct timeval		 tv = { KEYD_INVALIDATE_SECS, 0 };

	if ((kch = calloc(1, sizeof(*kch))) == NULL)
		fatal("%s", __func__);
	kch->seq = ++keyd_seq;
	kch->waiting = keyd_peers();
	kch->peerid = peerid;
	kch->res = res;
	kch->timeout = evtimer_new(keyd.base, keyd_change_timeout, kch);
	TAILQ_INSERT_TAIL(&keyd_changes, kch, entry);
	evtimer_add(kch->timeout, &tv);
	return kch;
}

static uint64_t
keyd_change_wait(uint32_t peerid, struct json_object *res)
{
	return keyd_change_new(peerid, res)->seq;
}

/*
 * For keyd_acme.c: fn(arg) once every worker has applied what keyd
 * sends next with the seq returned (or when one fails to in time, and
 * is restarted); fn frees arg.
 */
uint64_t
keyd_after_applied(void (*fn)(void *), void *arg)
{
	struct keyd_change	*kch = keyd_change_new(0, NULL);

	kch->done = fn;
	kch->arg = arg;
	return kch->seq;
}

static void
keyd_after_change(uint32_t peerid, const char *id, struct json_object *res)
{
	struct flm_key_invalidate	 inv;
	int				 i;

	keycache_drop_key(keyd_cache, id);
	if (keyd_peers() == 0) {
		keyd_reply(peerid, res);
		return;
	}
	memset(&inv, 0, sizeof(inv));
	inv.version = FLM_VERIFY_VERSION;
	inv.seq = keyd_change_wait(peerid, res);
	snprintf(inv.key_id, sizeof(inv.key_id), "%s", id);
	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (keyd.peers[i] != NULL)
			chan_compose(keyd.peers[i], IMSG_KEY_INVALIDATE, 0, -1,
			    &inv, sizeof(inv));
}

/* One message to every worker (a policy, the TLS state). */
static void
keyd_peers_send(uint16_t type, struct mbuf *b)
{
	int	 i;

	for (i = 0; i < FLM_WORKERS_MAX; i++)
		if (keyd.peers[i] != NULL && chan_compose(keyd.peers[i], type,
		    0, -1, b->data, b->len) == -1)
			log_warnx("message %u to worker %d: too large", type, i);
}

/* To every worker: u64 seq (0: nothing to confirm), then o's text. */
void
keyd_peers_json(uint16_t type, uint64_t seq, struct json_object *o)
{
	struct mbuf	 b;
	const char	*text;

	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	memset(&b, 0, sizeof(b));
	mbuf_put_u64(&b, seq);
	mbuf_put_data(&b, text, strlen(text));
	keyd_peers_send(type, &b);
	mbuf_free(&b);
}

/* A JSON message to flmd: 0, or -1 if it cannot be sent. */
int
keyd_parent_json(uint16_t type, uint32_t peerid, struct json_object *o)
{
	return keyd.parent == NULL ? -1 : chan_compose_json(keyd.parent, type,
	    peerid, o);
}

/* The policy in force, to ch (NULL: every worker): at a worker's start
 * and after each change. */
static void
keyd_policy_push(struct chan *ch, uint64_t seq)
{
	struct json_object	*res;
	struct mbuf		 b;
	char			 err[256];
	const char		*text;

	if (ch == NULL && keyd_peers() == 0)
		return;
	if (keyd_policy_get(&keyd_db, &res, err, sizeof(err)) == -1) {
		/* proxyd keeps its own default: loopback only. */
		log_warnx("security policy: %s", err);
		return;
	}
	text = json_object_to_json_string_ext(json_object_object_get(res,
	    "policy"), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	memset(&b, 0, sizeof(b));
	mbuf_put_u64(&b, seq);
	mbuf_put_data(&b, text, strlen(text));
	if (ch != NULL)
		chan_compose_mbuf(ch, IMSG_POLICY, 0, -1, &b);
	else
		keyd_peers_send(IMSG_POLICY, &b);
	mbuf_free(&b);
	json_object_put(res);
}

/* The certificates in service, the client CA, the allowed and the
 * revoked client serials, to proxyd: the whole state each time.  No key
 * goes. */
static void
keyd_tls_push(struct chan *ch, uint64_t seq)
{
	struct json_object	*st;
	struct mbuf		 b;
	const char		*text;

	if (ch == NULL && keyd_peers() == 0)
		return;
	st = keyd_tls_state();
	/* A new proxyd starts with the empty state: nothing to say. */
	if (seq == 0 && json_object_array_length(json_object_object_get(st,
	    "certs")) == 0 && json_object_object_get(st, "client_ca") ==
	    NULL && json_object_array_length(json_object_object_get(st,
	    "clients")) == 0 && json_object_array_length(
	    json_object_object_get(st, "revoked")) == 0) {
		json_object_put(st);
		return;
	}
	text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	memset(&b, 0, sizeof(b));
	mbuf_put_u64(&b, seq);
	mbuf_put_data(&b, text, strlen(text));
	if (ch == NULL)
		keyd_peers_send(IMSG_TLS_STATE, &b);
	else if (chan_compose_mbuf(ch, IMSG_TLS_STATE, 0, -1, &b) == -1)
		log_warnx("the TLS state is too large for one message");
	mbuf_free(&b);
	json_object_put(st);
}

/*
 * The credentials of the configured engines, to one worker or all: the
 * whole set each time, as u64 seq, u32 n, n * (string id, string
 * secret).  The buffer and the queued copies are wiped once written.
 */
static void
keyd_creds_push(struct chan *ch, uint64_t seq)
{
	struct json_object	*creds;
	uint8_t			*buf;
	uint32_t		 n = 0, l;
	size_t			 len = 12, off;
	int			 i;

	if (ch == NULL && keyd_peers() == 0)
		return;
	creds = keyd_engine_creds(&keyd_db, keyd_engine_ids);
	json_object_object_foreach(creds, k0, v0) {
		len += 8 + strlen(k0) + (size_t)json_object_get_string_len(v0);
		n++;
	}
	if ((buf = malloc(len)) == NULL) {
		log_warnx("credentials: out of memory; not sent");
		keyd_creds_wipe(creds);
		return;
	}
	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &n, 4);
	off = 12;
	json_object_object_foreach(creds, k, v) {
		l = (uint32_t)strlen(k);
		memcpy(buf + off, &l, 4);
		memcpy(buf + off + 4, k, l);
		off += 4 + l;
		l = (uint32_t)json_object_get_string_len(v);
		memcpy(buf + off, &l, 4);
		memcpy(buf + off + 4, json_object_get_string(v), l);
		off += 4 + l;
	}
	keyd_creds_wipe(creds);
	for (i = 0; i < FLM_WORKERS_MAX; i++) {
		struct chan	*c = ch != NULL ? ch : keyd.peers[i];

		if (c != NULL && chan_compose_wipe(c, IMSG_ENGINE_CREDS, 0, -1,
		    buf, len) == -1)
			log_warnx("credentials: too large for one message");
		if (ch != NULL)
			break;
	}
	explicit_bzero(buf, len);
	free(buf);
	chan_stack_scrub();
}

/* flmd's engine ids: whose credentials proxyd may hold. */
static void
keyd_engine_ids_msg(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*ids, *v;
	size_t			 i;

	if (msg_get_json(m, &ids) == -1 ||
	    !json_object_is_type(ids, json_type_array))
		goto bad;
	for (i = 0; i < json_object_array_length(ids); i++) {
		v = json_object_array_get_idx(ids, i);
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > 32)
			goto bad;
	}
	json_object_put(keyd_engine_ids);
	keyd_engine_ids = ids;
	if (keyd_db.h != NULL)
		keyd_creds_push(NULL, 0);
	return;
bad:
	json_object_put(ids);
	chan_fail(ch, "malformed ENGINE_IDS");
}

/* A channel handed over at exec comes before security.db is open:
 * main pushes the policy then. */
static void
keyd_peer_up(struct chan *ch)
{
	if (keyd_db.h != NULL) {
		keyd_policy_push(ch, 0);
		keyd_tls_push(ch, 0);
		keyd_creds_push(ch, 0);
		keyd_acme_peer_up();
	}
}

static void
keyd_change_done(struct keyd_change *kch)
{
	TAILQ_REMOVE(&keyd_changes, kch, entry);
	event_free(kch->timeout);
	if (kch->done != NULL)
		kch->done(kch->arg);
	else
		keyd_reply(kch->peerid, kch->res);
	free(kch);
}

/* The workers that did not confirm are restarted (with empty caches). */
static void
keyd_change_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct keyd_change	*kch = arg;
	uint32_t		 i;

	(void)fd;
	(void)ev;
	for (i = 0; i < FLM_WORKERS_MAX; i++) {
		if (!(kch->waiting & (1ULL << i)))
			continue;
		log_warnx("flm-proxyd[%u] did not confirm a change in %d s; "
		    "asking flmd to restart it", i, KEYD_INVALIDATE_SECS);
		chan_compose(keyd.parent, IMSG_PEER_BROKEN, 0, -1, &i,
		    sizeof(i));
	}
	keyd_change_done(kch);
}

/* Worker slot confirmed (or is gone, and its cache with it). */
static void
keyd_confirmed(uint64_t seq, int slot)
{
	struct keyd_change	*kch, *next;

	for (kch = TAILQ_FIRST(&keyd_changes); kch != NULL; kch = next) {
		next = TAILQ_NEXT(kch, entry);
		if (seq != 0 && kch->seq != seq)
			continue;
		kch->waiting &= ~(1ULL << slot);
		if (kch->waiting == 0)
			keyd_change_done(kch);
	}
}

/* A worker is gone: so is its cache, no change waits for it. */
static void
keyd_peer_down(struct chan *ch, int slot)
{
	keyd_audit_forget(ch);	/* its proxyd sends them again */
	keyd_acme_peer_down(ch);
	keyd_confirmed(0, slot);
}

static const char *
keyd_arg(struct json_object *req, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(req, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int
keyd_when(struct json_object *req, const char *key, char *iso, size_t isosz,
    char *err, size_t errsz)
{
	const char	*when = keyd_arg(req, key);
	time_t		 t;

	*iso = '\0';
	if (json_object_object_get(req, key) == NULL)
		return 0;
	if (when == NULL || keyd_parse_since(when, time(NULL), &t) == -1) {
		snprintf(err, errsz, "%s: expected YYYY-MM-DD, "
		    "YYYY-MM-DDTHH:MM:SSZ or a duration such as 30d", key);
		return -1;
	}
	keyd_iso(t, 0, iso, isosz);
	return 0;
}

/* Policy, audit and usage requests from flmd. */
static void
keyd_security(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL, *v;
	char			 err[512], iso[32];
	int			 r = -1;
	int64_t			 count = 20;

	if (m->hdr.type == IMSG_POLICY_GET || m->hdr.type == IMSG_AUDIT_VERIFY) {
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed request %u", m->hdr.type);
			return;
		}
	} else if (msg_get_object(m, &req) == -1) {
		chan_fail(ch, "malformed request %u", m->hdr.type);
		return;
	}
	switch (m->hdr.type) {
	case IMSG_POLICY_GET:
		r = keyd_policy_get(&keyd_db, &res, err, sizeof(err));
		break;
	case IMSG_POLICY_SET:
		if ((r = keyd_policy_set(&keyd_db, req, &res, err,
		    sizeof(err))) == 0 && keyd_peers() != 0) {
			/* Answered once every worker enforces it. */
			keyd_policy_push(NULL, keyd_change_wait(m->hdr.peerid,
			    res));
			json_object_put(req);
			return;
		}
		break;
	case IMSG_AUDIT_VERIFY:
		r = keyd_audit_verify(&keyd_db, &res, err, sizeof(err));
		break;
	case IMSG_AUDIT_ARCHIVE:
		if (keyd_arg(req, "before") == NULL)
			snprintf(err, sizeof(err), "--before WHEN is required");
		else if (keyd_when(req, "before", iso, sizeof(iso), err,
		    sizeof(err)) == 0)
			r = keyd_audit_archive(&keyd_db, iso, &res, err,
			    sizeof(err));
		break;
	case IMSG_AUDIT_TAIL:
		if (json_object_object_get_ex(req, "count", &v) &&
		    (!json_object_is_type(v, json_type_int) ||
		    (count = json_object_get_int64(v)) < 1)) {
			snprintf(err, sizeof(err), "count: expected 1-500");
			break;
		}
		r = keyd_audit_tail(&keyd_db, count, &res, err, sizeof(err));
		break;
	case IMSG_USAGE:
		if (json_object_object_get(req, "key") != NULL &&
		    keyd_arg(req, "key") == NULL)
			snprintf(err, sizeof(err), "key: expected a key id");
		else if (keyd_when(req, "since", iso, sizeof(iso), err,
		    sizeof(err)) == 0)
			r = keyd_audit_usage(&keyd_db, keyd_arg(req, "key"),
			    *iso ? iso : NULL, &res, err, sizeof(err));
		break;
	}
	json_object_put(req);
	if (r < 0)
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL, err);
	else
		keyd_reply(m->hdr.peerid, res);
}

/*
 * A request's "scope" checked and spelled out as it is stored (""
 * for none); -1 with err.  flmd passes the admin's words on: keyd is
 * the one that decides what a key may do.
 */
static int
keyd_scope_text(struct json_object *req, char *buf, size_t sz, char *err,
    size_t errsz)
{
	struct json_object	*v = json_object_object_get(req, "scope"), *o;
	struct keyscope		*ks;
	const char		*s;
	int			 rv = 0;

	buf[0] = '\0';
	if (v == NULL || json_object_is_type(v, json_type_null))
		return 0;
	if ((ks = malloc(sizeof(*ks))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (keyscope_parse(v, ks, err, errsz) == -1)
		rv = -1;
	else if ((o = keyscope_json(ks)) != NULL) {
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		if (strlen(s) >= sz) {
			snprintf(err, errsz, "scope: too long");
			rv = -1;
		} else
			snprintf(buf, sz, "%s", s);
		json_object_put(o);
	}
	free(ks);
	return rv;
}

/* An admin request from flmd: create, list, revoke, rotate or scope. */
static void
keyd_admin(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL;
	char			 err[512], id[FLM_KEY_ID_LEN + 1];
	char			 scope[KEYSCOPE_MAX_BYTES];
	const char		*which;
	int			 r;

	if (m->hdr.type == IMSG_KEY_LIST) {
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed KEY_LIST");
			return;
		}
	} else if (msg_get_object(m, &req) == -1) {
		chan_fail(ch, "malformed key request %u", m->hdr.type);
		return;
	}
	which = keyd_arg(req, m->hdr.type == IMSG_KEY_CREATE ? "label" : "key");
	switch (m->hdr.type) {
	case IMSG_KEY_CREATE:
		if (json_object_object_get(req, "expires") != NULL &&
		    keyd_arg(req, "expires") == NULL) {
			snprintf(err, sizeof(err), "expires: expected a string");
			r = -2;
			break;
		}
		if (keyd_scope_text(req, scope, sizeof(scope), err,
		    sizeof(err)) == -1) {
			r = -2;
			break;
		}
		r = which == NULL ? -1 : keyd_key_create(&keyd_db, which,
		    keyd_arg(req, "expires"), scope[0] ? scope : NULL, &res,
		    err, sizeof(err));
		break;
	case IMSG_KEY_SCOPE:
		if (keyd_scope_text(req, scope, sizeof(scope), err,
		    sizeof(err)) == -1) {
			r = -2;
			break;
		}
		r = which == NULL ? -1 : keyd_key_scope(&keyd_db, which,
		    scope[0] ? scope : NULL, id, &res, err, sizeof(err));
		break;
	case IMSG_KEY_LIST:
		r = keyd_key_list(&keyd_db, &res, err, sizeof(err));
		break;
	case IMSG_KEY_REVOKE:
		r = which == NULL ? -1 : keyd_key_revoke(&keyd_db, which, id,
		    &res, err, sizeof(err));
		break;
	default:
		if (json_object_object_get(req, "grace") != NULL &&
		    keyd_arg(req, "grace") == NULL) {
			snprintf(err, sizeof(err), "grace: expected a string");
			r = -2;
			break;
		}
		r = which == NULL ? -1 : keyd_key_rotate(&keyd_db, which,
		    keyd_arg(req, "grace"), id, &res, err, sizeof(err));
		break;
	}
	if (r == -1 && which == NULL && m->hdr.type != IMSG_KEY_LIST)
		snprintf(err, sizeof(err), m->hdr.type == IMSG_KEY_CREATE ?
		    "a label is required: --label NAME" :
		    "which key? give its id or label");
	json_object_put(req);
	if (r < 0)
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL, err);
	else if (m->hdr.type == IMSG_KEY_REVOKE ||
	    m->hdr.type == IMSG_KEY_ROTATE || m->hdr.type == IMSG_KEY_SCOPE)
		keyd_after_change(m->hdr.peerid, id, res);
	else
		keyd_reply(m->hdr.peerid, res);
}

static void	keyd_tls_schedule(void);
static struct event	*keyd_tls_timer;

/* An ACME order for flmd's ensure failed: flmd hears why. */
void
keyd_tls_pending_failed(uint32_t peerid, const char *why)
{
	char	 msg[512];

	snprintf(msg, sizeof(msg), "ACME: %s", why);
	chan_compose_error(keyd.parent, IMSG_KEY_ERROR, peerid, EINVAL, msg);
}

/*
 * An ACME certificate is in service: proxyd gets it, then flmd hears
 * (the ensure waiting, or TLS_RENEWED for a renewal).
 */
void
keyd_tls_installed(uint32_t peerid, const char *handle,
    struct json_object *cert)
{
	struct json_object	*res = json_object_new_object();

	if (peerid == 0) {
		json_object_object_add(res, "handle",
		    json_object_new_string(handle));
		json_object_object_add(res, "cert", cert);
		keyd_tls_push(NULL, ++keyd_seq);
		chan_compose_json(keyd.parent, IMSG_TLS_RENEWED, 0, res);
		json_object_put(res);
	} else {
		json_object_object_add(res, "cert", cert);
		if (keyd_peers() == 0)
			keyd_reply(peerid, res);
		else
			keyd_tls_push(NULL, keyd_change_wait(peerid, res));
	}
	keyd_tls_schedule();
}

/* keyd_acme.c changed what proxyd serves (a challenge certificate). */
void
keyd_tls_changed(void)
{
	keyd_tls_push(NULL, ++keyd_seq);
}

/* The TLS state, with a seq of keyd_after_applied's. */
void
keyd_tls_changed_seq(uint64_t seq)
{
	keyd_tls_push(NULL, seq);
}

static int
keyd_tls_acme(struct json_object *req)
{
	struct json_object	*v;

	return json_object_object_get_ex(req, "mode", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), "https-acme") == 0;
}

/*
 * Certificates, from flmd.  A request that changed what proxyd serves
 * or refuses is answered once proxyd applied the new state.
 */
static void
keyd_tls_request(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL;
	char			 err[512] = "";
	int			 r = -1;

	if (m->hdr.type == IMSG_CLIENT_LIST) {
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed CLIENT_LIST");
			return;
		}
	} else if (msg_get_object(m, &req) == -1) {
		chan_fail(ch, "malformed certificate request %u", m->hdr.type);
		return;
	}
	if (keyd_db.safe_mode)
		snprintf(err, sizeof(err), "security.db is in safe mode: %.400s",
		    keyd_db.safe_reason);
	else switch (m->hdr.type) {
	case IMSG_TLS_ENSURE:
		r = keyd_tls_ensure(req, &res, err, sizeof(err));
		/* ACME: an order, answered when it ends; or the stored
		 * certificate, renewed in the background when due. */
		if (r == KEYD_TLS_ACME) {
			r = keyd_acme_start(req, m->hdr.peerid, err,
			    sizeof(err));
			if (r == 0) {
				json_object_put(req);
				return;
			}
		} else if (r >= 0 && keyd_tls_acme(req)) {
			keyd_acme_keep(req);
			if (keyd_tls_timer != NULL) {
				struct timeval tv = { 0, 0 };

				evtimer_add(keyd_tls_timer, &tv);
			}
		}
		break;
	case IMSG_TLS_RELEASE:
		r = keyd_tls_release(req, &res, err, sizeof(err));
		if (r >= 0)
			keyd_acme_forget(keyd_arg(req, "handle"));
		break;
	case IMSG_CA_INFO:
		r = keyd_tls_ca_info(req, &res, err, sizeof(err));
		break;
	case IMSG_CLIENT_ISSUE:
		r = keyd_tls_client_issue(req, &res, err, sizeof(err));
		break;
	case IMSG_CLIENT_LIST:
		r = keyd_tls_client_list(&res, err, sizeof(err));
		break;
	case IMSG_CLIENT_REVOKE:
		r = keyd_tls_client_revoke(req, &res, err, sizeof(err));
		break;
	}
	json_object_put(req);
	if (r < 0) {
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL,
		    err);
		return;
	}
	if (r == 0 || keyd_peers() == 0) {
		keyd_reply(m->hdr.peerid, res);
		if (r > 0)
			keyd_tls_schedule();
		return;
	}
	keyd_tls_push(NULL, keyd_change_wait(m->hdr.peerid, res));
	keyd_tls_schedule();
}

static void
keyd_verify(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_verify	 v;
	struct flm_key_verdict	 r;
	struct mbuf		 b;
	char			 scope[KEYSCOPE_MAX_BYTES];

	if (msg_get_data(m, &v, sizeof(v)) == -1 || msg_end(m) == -1 ||
	    v.version != FLM_VERIFY_VERSION || v.token_len > FLM_TOKEN_MAX) {
		log_warnx("flm-proxyd sent a malformed KEY_VERIFY");
		sodium_memzero(&v, sizeof(v));
		msg_wipe(m);
		chan_fail(ch, "malformed KEY_VERIFY");
		return;
	}
	memset(&r, 0, sizeof(r));
	r.version = FLM_VERIFY_VERSION;
	r.reqid = v.reqid;
	r.result = keyd_key_verify(&keyd_db, keyd_cache, v.token, v.token_len,
	    r.key_id, &r.valid_until);
	sodium_memzero(&v, sizeof(v));
	msg_wipe(m);
	/* The scope goes with every yes, from the row as it is now. */
	scope[0] = '\0';
	if (r.result == FLM_KEY_OK && (r.result = keyd_key_scope_get(&keyd_db,
	    r.key_id, scope, sizeof(scope))) != FLM_KEY_OK)
		keycache_drop_key(keyd_cache, r.key_id);
	if (r.result == FLM_KEY_OK)
		keyd_used(r.key_id);
	memset(&b, 0, sizeof(b));
	mbuf_put_data(&b, &r, sizeof(r));
	mbuf_put_string(&b, scope);
	chan_compose(ch, IMSG_KEY_VERDICT, m->hdr.peerid, -1, b.data, b.len);
	mbuf_free(&b);
}

static int
keyd_used_listed(const char *id)
{
	size_t	 i;

	for (i = 0; i < keyd_nused; i++)
		if (strcmp(keyd_usedids[i], id) == 0)
			return 1;
	return 0;
}

/* last_used_at is written in batches, not once per request. */
static void
keyd_used(const char *id)
{
	if (keyd_used_listed(id))
		return;
	if (keyd_nused < KEYD_USED_MAX)
		memcpy(keyd_usedids[keyd_nused++], id, FLM_KEY_ID_LEN + 1);
}

static void
keyd_flush_used(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	keyd_key_touch(&keyd_db, keyd_usedids, keyd_nused);
	keyd_nused = 0;
	keyd_integrity_check(keyd_anchor_tick(&keyd_db));
}

static void
keyd_used_msg(struct chan *ch, struct chan_msg *m)
{
	char	 id[FLM_KEY_ID_LEN + 1];
	size_t	 i, n = m->len / FLM_KEY_ID_LEN;

	if (m->len == 0 || m->len % FLM_KEY_ID_LEN != 0) {
		chan_fail(ch, "malformed KEY_USED");
		return;
	}
	for (i = 0; i < n; i++) {
		if (msg_get_data(m, id, FLM_KEY_ID_LEN) == -1)
			break;
		id[FLM_KEY_ID_LEN] = '\0';
		if (!apikey_id_valid(id)) {
			log_warnx("flm-proxyd sent a malformed key id in "
			    "KEY_USED");
			chan_fail(ch, "malformed KEY_USED");
			return;
		}
		/* Only real keys take a slot: the list is bounded.  One
		 * already listed needs no query. */
		if (keyd_used_listed(id))
			continue;
		if (keyd_key_exists(&keyd_db, id))
			keyd_used(id);
		else
			log_debug("KEY_USED: no key %s", id);
	}
}

static void
keyd_invalidated(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_invalidate	 inv;

	if (msg_get_data(m, &inv, sizeof(inv)) == -1 || msg_end(m) == -1) {
		chan_fail(ch, "malformed KEY_INVALIDATED");
		return;
	}
	if (keyd_peer_slot(ch) != -1)
		keyd_confirmed(inv.seq, keyd_peer_slot(ch));
}

static void
keyd_policy_applied(struct chan *ch, struct chan_msg *m)
{
	uint64_t	 seq;

	if (msg_get_u64(m, &seq) == -1 || msg_end(m) == -1) {
		chan_fail(ch, "malformed %s", m->hdr.type == IMSG_CREDS_APPLIED ?
		    "CREDS_APPLIED" : "POLICY_APPLIED");
		return;
	}
	if (seq != 0 && keyd_peer_slot(ch) != -1)
		keyd_confirmed(seq, keyd_peer_slot(ch));
}

static void
keyd_tls_applied(struct chan *ch, struct chan_msg *m)
{
	uint64_t	 seq;

	if (msg_get_u64(m, &seq) == -1 || msg_end(m) == -1) {
		chan_fail(ch, "malformed TLS_APPLIED");
		return;
	}
	if (seq != 0 && keyd_peer_slot(ch) != -1)
		keyd_confirmed(seq, keyd_peer_slot(ch));
}

/* A handshake signature: malformed drops the channel, as KEY_VERIFY. */
static void
keyd_tls_sign_msg(struct chan *ch, struct chan_msg *m)
{
	struct flm_tls_sign		 req;
	struct flm_tls_signature	 sig;

	if (msg_get_data(m, &req, sizeof(req)) == -1 || msg_end(m) == -1 ||
	    req.version != FLM_TLS_VERSION ||
	    memchr(req.cert_id, '\0', sizeof(req.cert_id)) == NULL) {
		log_warnx("flm-proxyd sent a malformed TLS_SIGN");
		chan_fail(ch, "malformed TLS_SIGN");
		return;
	}
	keyd_tls_sign(&req, &sig);
	chan_compose(ch, IMSG_TLS_SIGNATURE, m->hdr.peerid, -1, &sig,
	    sizeof(sig));
}

/*
 * Records from proxyd, written in one transaction with the batches
 * waiting beside them and acknowledged; a batch keyd cannot write is
 * refused, and proxyd sends it again.
 */
static void
keyd_audit_batch(struct chan *ch, struct chan_msg *m)
{
	static struct flm_audit_record	 recs[FLM_AUDIT_BATCH_MAX];
	struct flm_audit_ack		 ack;
	uint64_t			 seq;
	uint32_t			 i, n;

	if (msg_get_u64(m, &seq) == -1 || msg_get_u32(m, &n) == -1 ||
	    n == 0 || n > FLM_AUDIT_BATCH_MAX ||
	    m->len - m->off != (size_t)n * sizeof(recs[0])) {
		log_warnx("flm-proxyd sent a malformed AUDIT_BATCH");
		chan_fail(ch, "malformed AUDIT_BATCH");
		return;
	}
	for (i = 0; i < n; i++)
		if (msg_get_data(m, &recs[i], sizeof(recs[i])) == -1 ||
		    !keyd_audit_valid(&recs[i])) {
			log_warnx("flm-proxyd sent a malformed audit record");
			chan_fail(ch, "malformed audit record");
			return;
		}
	keyd_audit_clamp(recs, n);
	/* Written with whatever else waits (group commit), then acked. */
	if (keyd_audit_queue(keyd.base, &keyd_db, ch, seq, recs, n) == 0)
		return;
	memset(&ack, 0, sizeof(ack));
	ack.version = FLM_AUDIT_VERSION;
	ack.seq = seq;
	ack.ok = 0;
	chan_compose(ch, IMSG_AUDIT_ACK, 0, -1, &ack, sizeof(ack));
}

/* proxyd is the less privileged peer: anything unexpected drops it. */
static void
keyd_peer_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_KEY_VERIFY:
		keyd_verify(ch, m);
		break;
	case IMSG_KEY_USED:
		keyd_used_msg(ch, m);
		break;
	case IMSG_KEY_INVALIDATED:
		keyd_invalidated(ch, m);
		break;
	case IMSG_POLICY_APPLIED:
	case IMSG_CREDS_APPLIED:
		keyd_policy_applied(ch, m);
		break;
	case IMSG_AUDIT_BATCH:
		keyd_audit_batch(ch, m);
		break;
	case IMSG_TLS_SIGN:
		keyd_tls_sign_msg(ch, m);
		break;
	case IMSG_TLS_APPLIED:
		keyd_tls_applied(ch, m);
		break;
	case IMSG_ACME_SIGN:
		keyd_acme_sign(ch, m);
		break;
	case IMSG_ACME_ACCOUNT:
		keyd_acme_account(ch, m);
		break;
	case IMSG_ACME_DONE:
		keyd_acme_done(ch, m);
		break;
	default:
		log_warnx("flm-proxyd sent unknown message type %u",
		    m->hdr.type);
		chan_fail(ch, "unknown message type %u", m->hdr.type);
		break;
	}
}

/* flm doctor: keyd's facts, bounded, no secret (keyd_doctor.c). */
/*
 * Sealed secrets, from flmd.  A credential set or cleared is answered
 * once every worker holds the new set.
 */
static void
keyd_secret_request(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL, *v = NULL;
	const char		*name;
	char			 err[512] = "a name is needed";
	uint16_t		 t = m->hdr.type;
	int			 r = -1;

	if (t == IMSG_SECRETS_ROTATE || t == IMSG_SECRETS_LIST) {
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed secrets request %u", t);
			return;
		}
	} else if (msg_get_object(m, &req) == -1) {
		msg_wipe(m);
		chan_fail(ch, "malformed secrets request %u", t);
		return;
	}
	msg_wipe(m);
	name = keyd_arg(req, "name");
	switch (t) {
	case IMSG_SECRET_SET:
		if (name != NULL && (json_object_object_get_ex(req, "secret",
		    &v) && json_object_is_type(v, json_type_string)))
			r = keyd_secret_set(&keyd_db, name,
			    json_object_get_string(v), &res, err, sizeof(err));
		else if (name != NULL)
			snprintf(err, sizeof(err), "a secret is needed");
		if (v != NULL && json_object_is_type(v, json_type_string))
			sodium_memzero((char *)json_object_get_string(v),
			    json_object_get_string_len(v));
		break;
	case IMSG_SECRET_CLEAR:
		if (name != NULL)
			r = keyd_secret_clear(&keyd_db, name, &res, err,
			    sizeof(err));
		break;
	case IMSG_SECRETS_ROTATE:
		r = keyd_secrets_rotate(&keyd_db, &res, err, sizeof(err));
		break;
	default:
		r = keyd_secrets_list(&keyd_db, &res, err, sizeof(err));
		break;
	}
	json_object_put(req);
	chan_stack_scrub();
	if (r < 0) {
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL,
		    err);
		return;
	}
	if ((t == IMSG_SECRET_SET || t == IMSG_SECRET_CLEAR) &&
	    keyd_peers() != 0) {
		keyd_creds_push(NULL, keyd_change_wait(m->hdr.peerid, res));
		return;
	}
	keyd_reply(m->hdr.peerid, res);
}

/* flm backup and flm check, from flmd (keyd_backup.c). */
static void
keyd_backup_request(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL, *v;
	struct stat		 st;
	const char		*s;
	char			 err[512] = "";
	uint16_t		 t = m->hdr.type;
	int			 cfgfd = -1, r = -1;
	long			 max_age = 0;

	if (t == IMSG_BACKUP_CONFIG || t == IMSG_BACKUP_LIST ||
	    t == IMSG_BACKUP_ABORT) {
		if ((t == IMSG_BACKUP_CONFIG) != (m->fd != -1) ||
		    msg_end(m) == -1) {
			chan_fail(ch, "malformed backup request %u", t);
			return;
		}
		if (t == IMSG_BACKUP_CONFIG) {
			keyd_backup_config(m->fd);
			m->fd = -1;
			return;
		}
		if (t == IMSG_BACKUP_ABORT) {
			keyd_backup_abort();
			return;
		}
		r = keyd_backup_list(&res, err, sizeof(err));
	} else {
		if (msg_get_object(m, &req) == -1 ||
		    (m->fd != -1 && t == IMSG_BACKUP_CREATE)) {
			msg_wipe(m);
			json_object_put(req);
			chan_fail(ch, "malformed backup request %u", t);
			return;
		}
		msg_wipe(m);	/* a passphrase */
		s = keyd_arg(req, "passphrase");
		if (json_object_object_get_ex(req, "max_age", &v))
			max_age = (long)json_object_get_int64(v);
		/* A pipe or a socket would hang keyd: files only. */
		if (m->fd != -1 && (fstat(m->fd, &st) == -1 ||
		    !S_ISREG(st.st_mode)))
			snprintf(err, sizeof(err), "a backup is a regular file");
		else if (t == IMSG_BACKUP_CREATE)
			r = keyd_backup_create(&keyd_db, keyd_arg(req,
			    "reason") != NULL ? keyd_arg(req, "reason") :
			    "manual", s, max_age, &res, err, sizeof(err));
		else if (t == IMSG_BACKUP_RESTORE)
			r = keyd_backup_restore(&keyd_db, m->fd, keyd_arg(req,
			    "name"), s, &res, &cfgfd, err, sizeof(err));
		else
			r = keyd_backup_state(&keyd_db, m->fd, keyd_arg(req,
			    "name"), s, json_object_object_get(req, "proxies"),
			    &res, err, sizeof(err));
		if (s != NULL)
			sodium_memzero((char *)s, strlen(s));
		json_object_put(req);
	}
	chan_stack_scrub();
	if (r < 0) {
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL,
		    err);
		return;
	}
	if (t == IMSG_BACKUP_RESTORE) {
		chan_compose_json_fd(ch, IMSG_KEY_RESULT, m->hdr.peerid, cfgfd,
		    res, NULL);
		json_object_put(res);
		return;
	}
	keyd_reply(m->hdr.peerid, res);
}

/*
 * flm migrate legacy --apply, from flmd: the keys (and the policy
 * with the origins added) in one transaction.  The plain keys are
 * wiped once hashed; a changed policy is answered once every worker
 * enforces it.
 */
static void
keyd_legacy_request(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req = NULL, *res = NULL;
	char			 err[1024];
	int			 r, pol;

	if (msg_get_object(m, &req) == -1) {
		msg_wipe(m);
		chan_fail(ch, "malformed LEGACY_IMPORT");
		return;
	}
	msg_wipe(m);
	r = keyd_legacy_import(&keyd_db, req, &res, err, sizeof(err));
	pol = json_object_object_get(req, "policy") != NULL;
	legacy_json_wipe(req);
	json_object_put(req);
	chan_stack_scrub();
	if (r == -1) {
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EINVAL,
		    err);
		return;
	}
	if (pol && keyd_peers() != 0) {
		keyd_policy_push(NULL, keyd_change_wait(m->hdr.peerid, res));
		return;
	}
	keyd_reply(m->hdr.peerid, res);
}

/* flm security master-key rotate (keyd_rotate.c). */
static void
keyd_rotate_request(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*res = NULL;
	char			 err[512];

	if (msg_end(m) == -1) {
		chan_fail(ch, "malformed MASTER_ROTATE");
		return;
	}
	if (keyd_master_rotate(&keyd_db, &res, err, sizeof(err)) == -1) {
		chan_compose_error(ch, IMSG_KEY_ERROR, m->hdr.peerid, EIO, err);
		return;
	}
	keyd_integrity_check(1);
	keyd_reply(m->hdr.peerid, res);
}

static void
keyd_doctor_request(struct chan *ch, struct chan_msg *m)
{
	if (msg_end(m) == -1) {
		chan_fail(ch, "malformed DOCTOR");
		return;
	}
	keyd_reply(m->hdr.peerid, keyd_doctor(&keyd_db, keyd.paths.keyddir,
	    keyd_tls_timer != NULL && evtimer_pending(keyd_tls_timer, NULL)));
}

static void
keyd_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_RELOAD:
		break;
	case IMSG_KEY_CREATE:
	case IMSG_KEY_LIST:
	case IMSG_KEY_REVOKE:
	case IMSG_KEY_ROTATE:
	case IMSG_KEY_SCOPE:
		keyd_admin(ch, m);
		break;
	case IMSG_POLICY_GET:
	case IMSG_POLICY_SET:
	case IMSG_AUDIT_VERIFY:
	case IMSG_AUDIT_ARCHIVE:
	case IMSG_AUDIT_TAIL:
	case IMSG_USAGE:
		keyd_security(ch, m);
		break;
	case IMSG_TLS_ENSURE:
	case IMSG_TLS_RELEASE:
	case IMSG_CA_INFO:
	case IMSG_CLIENT_ISSUE:
	case IMSG_CLIENT_LIST:
	case IMSG_CLIENT_REVOKE:
		keyd_tls_request(ch, m);
		break;
	case IMSG_DOCTOR:
		keyd_doctor_request(ch, m);
		break;
	case IMSG_ACME_DNS_DONE:
		keyd_acme_dns_done(ch, m);
		break;
	case IMSG_SECRET_SET:
	case IMSG_SECRET_CLEAR:
	case IMSG_SECRETS_ROTATE:
	case IMSG_SECRETS_LIST:
		keyd_secret_request(ch, m);
		break;
	case IMSG_ENGINE_IDS:
		keyd_engine_ids_msg(ch, m);
		break;
	case IMSG_MASTER_ROTATE:
		keyd_rotate_request(ch, m);
		break;
	case IMSG_BACKUP_CONFIG:
	case IMSG_BACKUP_CREATE:
	case IMSG_BACKUP_LIST:
	case IMSG_BACKUP_RESTORE:
	case IMSG_BACKUP_STATE:
	case IMSG_BACKUP_ABORT:
		keyd_backup_request(ch, m);
		break;
	case IMSG_LEGACY_IMPORT:
		keyd_legacy_request(ch, m);
		break;
	default:
		chan_fail(ch, "unexpected message type %u", m->hdr.type);
		break;
	}
}

/* Next renewal or retired key's end, at least every 60 s. */
static void
keyd_tls_schedule(void)
{
	struct timeval	 tv = { 0, 0 };

	if (keyd_tls_timer == NULL)
		return;
	tv.tv_sec = keyd_acme_next(keyd_tls_next());
	evtimer_add(keyd_tls_timer, &tv);
}

/* Renewed certificates: to proxyd, then flmd hears of each. */
static void
keyd_tls_due(evutil_socket_t fd, short ev, void *arg)
{
	struct json_object	*renewed;
	size_t			 i;

	(void)fd;
	(void)ev;
	(void)arg;
	keyd_acme_tick();
	if ((renewed = keyd_tls_tick(keyd_acme_due)) != NULL) {
		keyd_tls_push(NULL, ++keyd_seq);
		for (i = 0; i < json_object_array_length(renewed); i++)
			chan_compose_json(keyd.parent, IMSG_TLS_RENEWED, 0,
			    json_object_array_get_idx(renewed, i));
		json_object_put(renewed);
	}
	keyd_tls_schedule();
}

/* What the last integrity scan found, as flm status shows it. */
static int64_t		 keyd_bad_keys;
static int		 keyd_policy_ok = 1;

static void	keyd_report_db(void);

/* Rows are checked again: at start, on the flush timer, and when a
 * check on the way found a bad one.  flmd hears of each change. */
static void
keyd_integrity_check(int report)
{
	int64_t	 bad;
	int	 pok;

	keyd_integrity_scan(&keyd_db, &bad, &pok);
	if (bad == keyd_bad_keys && pok == keyd_policy_ok && !report)
		return;
	if (bad != keyd_bad_keys || pok != keyd_policy_ok)
		log_warnx("security.db integrity: %lld key rows fail their MAC; "
		    "policy row %s (see flm-keyd(8))", (long long)bad,
		    pok ? "ok" : "altered");
	keyd_bad_keys = bad;
	keyd_policy_ok = pok;
	keyd_report_db();
}

void
keyd_integrity_changed(void)
{
	keyd_integrity_check(0);
}

/* Tell flmd how security.db is, for flm status. */
static void
keyd_report_db(void)
{
	struct json_object	*o = json_object_new_object();
	struct json_object	*in = json_object_new_object();

	json_object_object_add(in, "bad_keys",
	    json_object_new_int64(keyd_bad_keys));
	json_object_object_add(in, "policy",
	    json_object_new_string(keyd_policy_ok ? "ok" : "altered"));
	keyd_anchor_state(in);
	json_object_object_add(o, "integrity", in);
	/* Once: flmd then drops its marker (flmd_backup.c). */
	if (keyd_restored) {
		json_object_object_add(o, "restored",
		    json_object_new_boolean(1));
		keyd_restored = 0;
	}

	json_object_object_add(o, "db", json_object_new_string(KEYD_DB_NAME));
	json_object_object_add(o, "version",
	    json_object_new_int(keyd_db.version));
	json_object_object_add(o, "safe_mode",
	    json_object_new_boolean(keyd_db.safe_mode));
	if (keyd_db.safe_mode)
		json_object_object_add(o, "reason",
		    json_object_new_string(keyd_db.safe_reason));
	chan_compose_json(keyd.parent, IMSG_DB_STATE, 0, o);
	json_object_put(o);
}

/* Who keyd's files belong to: its user, or in user mode the user. */
static uid_t
keyd_file_owner(void)
{
	struct passwd	*pw;

	if (keyd.paths.user_mode)
		return geteuid();
	if ((pw = getpwnam(FLM_KEYD_USER)) == NULL)
		fatalx("user %s does not exist: create it (systemd-sysusers "
		    "flm.conf) or run in user mode with -D DIR",
		    FLM_KEYD_USER);
	return pw->pw_uid;
}

/* keyd_master_load's step between the credential and the key file;
 * a restore flmd committed is finished before that file is read. */
static void
keyd_become(void)
{
	char	 marker[PATH_MAX + 32];

	child_become(&keyd, FLM_KEYD_USER);
	snprintf(marker, sizeof(marker), "%s/%s", keyd.paths.statedir,
	    FLM_RESTORE_MARKER);
	keyd_restored = keyd_backup_finish(keyd.paths.keyddir, marker);
	keyd_rotate_finish(keyd.paths.keyddir);
}

int
main(int argc, char *argv[])
{
	struct event	*flush;
	struct timeval	 tv = { KEYD_USED_FLUSH_SECS, 0 };
	int		 rv;

	keyd.parent_cb = keyd_parent_dispatch;
	keyd.peer_cb = keyd_peer_dispatch;
	keyd.peer_up = keyd_peer_up;
	keyd.peer_down = keyd_peer_down;
	if (sodium_init() == -1)
		fatalx("sodium_init failed");
	child_init(&keyd, PROC_KEYD, argc, argv);
	/* Before the sandbox: the secure heap maps and locks its pages. */
	keyd_x509_init();
	keyd_backup_init();
	keyd_rotate_init(keyd.paths.user_mode);
	if ((keyd_cache = keycache_new(KEYD_CACHE_SIZE)) == NULL)
		fatalx("keycache_new");
	/* Archives and key files are keyd's alone. */
	umask(077);
	keyd_master_load(keyd.paths.keyddir, keyd_file_owner(), keyd_become);
	child_drop(&keyd, FLM_KEYD_USER, keyd.paths.keyddir);
	/* After the chroot or chdir: the name is relative to keyd's dir. */
	db_open(&keyd_db, KEYD_DB_NAME, DB_SECURE, 0, security_migrations,
	    security_migrations_count);
	keyd_audit_init(&keyd_db);
	keyd_rotate_note(&keyd_db);
	keyd_legacy_key_load(&keyd_db);
	/* Before the anchor is made: an anchor says keyd sealed before. */
	keyd_integrity_init(&keyd_db, keyd_anchor_exists());
	keyd_anchor_start(&keyd_db);
	keyd_tls_init(&keyd_db);
	keyd_acme_init(&keyd_db);
	/* Its own, made here: flmd.service's flmd cannot enter keyd's
	 * directory, and the sandbox has no mkdir. */
	if (mkdir(KEYD_BACKUP_DIR, 0700) == -1 && errno != EEXIST)
		log_warn("mkdir %s: no backups can be made", KEYD_BACKUP_DIR);
	keyd_backup_tidy();
	/* The chroot's root or, in user mode, keyd's directory. */
	keyd_sandbox(".", keyd_master_keyring_id());
	keyd_integrity_check(1);	/* and the first DB_STATE */
	keyd_policy_push(NULL, 0);
	keyd_tls_push(NULL, 0);
	keyd_creds_push(NULL, 0);
	if ((keyd_tls_timer = evtimer_new(keyd.base, keyd_tls_due, NULL)) ==
	    NULL)
		fatalx("renewal timer");
	keyd_tls_schedule();
	flush = event_new(keyd.base, -1, EV_PERSIST, keyd_flush_used, NULL);
	if (flush == NULL || event_add(flush, &tv) == -1)
		fatalx("flush timer");
	log_debug("ready");
	rv = child_run(&keyd);
	keyd_key_touch(&keyd_db, keyd_usedids, keyd_nused);
	(void)keyd_anchor_tick(&keyd_db);
	event_free(flush);
	event_free(keyd_tls_timer);
	while (!TAILQ_EMPTY(&keyd_changes)) {
		struct keyd_change	*kch = TAILQ_FIRST(&keyd_changes);

		TAILQ_REMOVE(&keyd_changes, kch, entry);
		event_free(kch->timeout);
		keyd_wipe_key(kch->res);
		json_object_put(kch->res);
		free(kch->arg);
		free(kch);
	}
	keycache_free(keyd_cache);
	keyd_policy_free();
	json_object_put(keyd_engine_ids);
	keyd_acme_free();
	keyd_tls_free();
	keyd_audit_close();
	db_close(&keyd_db);
	keyd_backup_free();
	keyd_rotate_free();
	keyd_master_free();
	child_exit(&keyd);
	return rv;
}
