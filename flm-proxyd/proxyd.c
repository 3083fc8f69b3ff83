/*
 * flm-proxyd: the unprivileged network process.  It carries every
 * byte of client and engine traffic, asks flm-keyd about keys, and can
 * neither open a database nor write a file.
 */
#include "config.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "jsonbuf.h"
#include "log.h"
#include "proxyd.h"

static struct proxyd	 proxyd;
struct proxyd		*px = &proxyd;

static void
proxyd_peer_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_KEY_VERDICT:
		auth_verdict(ch, m);
		break;
	case IMSG_KEY_INVALIDATE:
		auth_invalidate(ch, m);
		break;
	case IMSG_POLICY:
		policy_receive(ch, m);
		break;
	case IMSG_AUDIT_ACK:
		audit_ack(ch, m);
		break;
	case IMSG_TLS_STATE:
		tls_state(ch, m);
		break;
	case IMSG_TLS_SIGNATURE:
		tls_signature(ch, m);
		break;
	case IMSG_ACME_ORDER:
		acme_order(ch, m);
		break;
	case IMSG_ACME_SIGNED:
		acme_signed(ch, m);
		break;
	case IMSG_ACME_TOKENS:
		acme_tokens(ch, m);
		break;
	case IMSG_ENGINE_CREDS:
		creds_receive(ch, m);
		break;
	default:
		chan_fail(ch, "unexpected message type %u from flm-keyd",
		    m->hdr.type);
		break;
	}
}

/* A new keyd: pending key checks and unacknowledged records go to it. */
static void
proxyd_keyd_up(struct chan *ch)
{
	auth_keyd_up(ch);
	audit_keyd_up(ch);
}

/* keyd is gone: what it owed (acknowledgements, signatures) fails. */
static void
proxyd_keyd_down(struct chan *ch, int slot)
{
	(void)ch;
	(void)slot;
	audit_keyd_down();
	tls_keyd_down();
}

/* The uid flmd recorded as the owner of the engine's listener. */
static int64_t
proxyd_engine_owner(struct json_object *e)
{
	struct json_object	*v;

	return json_object_object_get_ex(e, "owner_uid", &v) &&
	    json_is_int_range(v, 0, UINT32_MAX) ? json_object_get_int64(v) : -1;
}

/* egress.mode's SOCKS5 server ({}: direct), for ACME and its check. */
static void
proxyd_egress(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o;

	if (msg_get_json(m, &o) == -1 || socks_parse(o, &px->egress) == -1) {
		json_object_put(o);
		chan_fail(ch, "malformed EGRESS");
		return;
	}
	json_object_put(o);
}

static void
proxyd_engines_free(void)
{
	int	 i;

	for (i = 0; i < px->nengines; i++)
		uptls_engine_free(&px->engines[i]);
	px->nengines = 0;
}

static void
proxyd_engines(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*arr, *e, *v;
	struct proxyd_engine	*pe;
	size_t			 i, n;

	if (msg_get_json(m, &arr) == -1 ||
	    !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		chan_fail(ch, "malformed ENGINES");
		return;
	}
	n = json_object_array_length(arr);
	/* Kept-alive connections were made under the old list's rules. */
	upstream_cleanup();
	proxyd_engines_free();
	for (i = 0; i < n && px->nengines < PROXYD_MAX_ENGINES; i++) {
		e = json_object_array_get_idx(arr, i);
		pe = &px->engines[px->nengines];
		memset(pe, 0, sizeof(*pe));
#define ENGINE_STR(f) \
		if (!json_object_object_get_ex(e, #f, &v) || \
		    !json_object_is_type(v, json_type_string) || \
		    (size_t)json_object_get_string_len(v) >= sizeof(pe->f)) \
			continue; \
		memcpy(pe->f, json_object_get_string(v), \
		    json_object_get_string_len(v) + 1);
		ENGINE_STR(id);
		ENGINE_STR(kind);
		ENGINE_STR(host);
		ENGINE_STR(addr);
#undef ENGINE_STR
		if (!json_object_object_get_ex(e, "port", &v) ||
		    !json_object_is_type(v, json_type_int) ||
		    json_object_get_int(v) < 1 || json_object_get_int(v) > 65535)
			continue;
		pe->port = json_object_get_int(v);
		pe->owner = proxyd_engine_owner(e);
		pe->priority = json_object_object_get_ex(e, "priority", &v) &&
		    json_is_int_range(v, 0, 100) ? json_object_get_int(v) : 50;
		if (json_object_object_get_ex(e, "socks", &v) &&
		    socks_parse(v, &pe->socks) == -1)
			continue;
		if (json_object_object_get_ex(e, "egress_error", &v))
			snprintf(pe->socks.error, sizeof(pe->socks.error),
			    "%s", json_object_get_string(v));
		if (pe->socks.error[0] != '\0')
			memcpy(pe->refused, pe->socks.error,
			    strlen(pe->socks.error) + 1);	/* 200 < 300 */
		if (pe->refused[0] != '\0')
			log_warnx("engine %s: %s: refused", pe->id,
			    pe->refused);
		else if (!pe->socks.on && pe->addr[0] == '\0')
			continue;	/* direct needs flmd's address */
		if (json_object_object_get_ex(e, "tls", &v) &&
		    json_object_get_boolean(v) && uptls_engine(pe, e) == -1)
			log_warnx("engine %s: %s: refused", pe->id,
			    pe->refused);
		px->nengines++;
	}
	json_object_put(arr);
	log_debug("%d engines configured", px->nengines);
	catalogue_stale();
	probe_run(0);		/* know their states at once */
}


/* o's member name: a boolean, or def when absent; -1 if another type. */
static int
proxyd_opt_bool(struct json_object *o, const char *name, int def)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, name, &v))
		return def;
	return json_object_is_type(v, json_type_boolean) ?
	    json_object_get_boolean(v) : -1;
}

/* o's member name: one of the strings of names, its index; def when
 * absent; -1 if anything else. */
static int
proxyd_opt_enum(struct json_object *o, const char *name,
    const char *const *names, int def)
{
	struct json_object	*v;
	int			 i;

	if (!json_object_object_get_ex(o, name, &v))
		return def;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(json_object_get_string(v), names[i]) == 0)
			return i;
	return -1;
}

/* How a handle is served: checked again here (flmd checked first). */
static const char *
proxyd_listen_opts(struct json_object *o, struct listen_opts *lo)
{
	static const char *const modes[] = { "local-http", "dev-selfsigned",
	    "packaged-ca", "https-acme", "acme-http", NULL };
	static const char *const ccs[] = { "off", "optional", "required",
	    NULL };
	struct json_object	*v;
	int			 mode, cc;

	memset(lo, 0, sizeof(*lo));
	/* Keys are checked unless flmd says otherwise, explicitly. */
	lo->auth = proxyd_opt_bool(o, "auth", 1) != 0;
	if ((mode = proxyd_opt_enum(o, "mode", modes, 0)) == -1)
		return "unknown mode";
	if ((cc = proxyd_opt_enum(o, "client_certs", ccs, 0)) == -1)
		return "unknown client_certs";
	if ((lo->bearer = proxyd_opt_bool(o, "bearer", 1)) == -1)
		return "bearer is not a boolean";
	lo->acme_http = mode == 4;
	lo->tls = mode != 0 && !lo->acme_http;
	lo->cc = (enum tls_client_certs)cc;
	if (!lo->tls && lo->cc != TLS_CC_OFF)
		return "client certificates need a TLS mode";
	if (!lo->bearer && lo->cc != TLS_CC_REQUIRED)
		return "bearer false needs client_certs required";
	if (json_object_object_get_ex(o, "hsts", &v)) {
		if (!json_is_int_range(v, 0, INT32_MAX))
			return "hsts out of range";
		lo->hsts = json_object_get_int(v);
	}
	if (!lo->tls && lo->hsts > 0)
		return "hsts needs a TLS mode";
	return NULL;
}

static void
proxyd_listen(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o, *id;
	struct listen_opts	 lo;
	const char		*err;

	if (m->fd == -1 || msg_get_json(m, &o) == -1) {
		chan_fail(ch, "malformed PROXY_LISTEN");
		return;
	}
	if (json_object_object_get_ex(o, "id", &id) &&
	    json_object_is_type(id, json_type_string)) {
		if ((err = proxyd_listen_opts(o, &lo)) != NULL)
			log_warnx("%s not served: %s",
			    json_object_get_string(id), err);
		else {
			http_listen(m->fd, json_object_get_string(id), &lo);
			m->fd = -1;
		}
	}
	json_object_put(o);
}

static void
proxyd_limits(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o;

	if (msg_get_object(m, &o) == -1) {
		chan_fail(ch, "malformed PROXY_LIMITS");
		return;
	}
	http_limits(o);
	pool_limits(o);
	json_object_put(o);
}

static void
proxyd_close(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o, *id;

	if (msg_get_json(m, &o) == -1) {
		chan_fail(ch, "malformed PROXY_CLOSE");
		return;
	}
	if (json_object_object_get_ex(o, "id", &id) &&
	    json_object_is_type(id, json_type_string))
		http_close(json_object_get_string(id));
	json_object_put(o);
}

/* flmd's rate-limit region: the counts every worker shares. */
static void
proxyd_shm(struct chan *ch, struct chan_msg *m)
{
	uint32_t	 size;

	if (m->fd == -1 || msg_get_u32(m, &size) == -1 || msg_end(m) == -1) {
		chan_fail(ch, "malformed PROXY_SHM");
		return;
	}
	ratelimit_attach(m->fd, size);
	m->fd = -1;
}

/* Which of proxy.workers this is: for its log lines and its shared state. */
static void
proxyd_worker(struct chan *ch, struct chan_msg *m)
{
	uint32_t	 w, n;

	if (msg_get_u32(m, &w) == -1 || msg_get_u32(m, &n) == -1 ||
	    msg_end(m) == -1 || n == 0 || n > FLM_WORKERS_MAX || w >= n) {
		chan_fail(ch, "malformed PROXY_WORKER");
		return;
	}
	px->worker = w;
	px->nworkers = n;
	log_debug("worker %u of %u", w, n);
}

static void
proxyd_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_RELOAD:
		break;
	case IMSG_PROXY_LIMITS:
		proxyd_limits(ch, m);
		break;
	case IMSG_PROXY_WORKER:
		proxyd_worker(ch, m);
		break;
	case IMSG_PROXY_LISTEN:
		proxyd_listen(ch, m);
		break;
	case IMSG_PROXY_CLOSE:
		proxyd_close(ch, m);
		break;
	case IMSG_EGRESS:
		proxyd_egress(ch, m);
		break;
	case IMSG_ENGINES:
		proxyd_engines(ch, m);
		break;
	case IMSG_PROXY_SHM:
		proxyd_shm(ch, m);
		break;
	case IMSG_PROXY_DRAIN:
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed PROXY_DRAIN");
			return;
		}
		http_drain();
		break;
	case IMSG_EGRESS_CHECK:
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed EGRESS_CHECK");
			return;
		}
		if (!px->egress.on) {
			/* Direct: nothing to check, and nothing waits. */
			struct json_object	*o = json_object_new_object();

			json_object_object_add(o, "ok",
			    json_object_new_boolean(1));
			json_object_object_add(o, "ms", json_object_new_int(0));
			chan_compose_json(ch, IMSG_EGRESS_STATE,
			    m->hdr.peerid, o);
			json_object_put(o);
		} else
			socks_check(m->hdr.peerid);
		break;
	case IMSG_ENGINES_DETECT:
		if (msg_end(m) == -1) {
			chan_fail(ch, "malformed ENGINES_DETECT");
			return;
		}
		probe_run(m->hdr.peerid);
		break;
	default:
		chan_fail(ch, "unexpected message type %u", m->hdr.type);
		break;
	}
}

int
main(int argc, char *argv[])
{
	int	 rv;

	px->c.parent_cb = proxyd_parent_dispatch;
	px->c.peer_cb = proxyd_peer_dispatch;
	px->c.peer_up = proxyd_keyd_up;
	px->c.peer_down = proxyd_keyd_down;
	/* Until keyd says otherwise: loopback clients only. */
	policy_defaults(&px->policy);
	/* Buffers of 16-128 KB come and go with every request: glibc
	 * would give the top of the heap back and take it again (brk, then
	 * a page fault per page touched), or map each one apart. */
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	child_init(&px->c, PROC_PROXYD, argc, argv);
	/* libcurl and OpenSSL read their configuration before the chroot;
	 * /proc/net/tcp* are kept open for the engines' owners. */
	pcurl_init();
	probe_init();
	uptls_init();
	owner_init();
	auth_init();
	tls_init();
	http_init();
	ratelimit_init();
	audit_init();
	child_drop(&px->c, FLM_PROXYD_USER, px->c.paths.emptydir);
	proxyd_sandbox();
	log_debug("ready");
	rv = child_run(&px->c);
	http_cleanup();		/* first: requests let go of what they wait on */
	upstream_cleanup();
	route_cleanup();
	catalogue_cleanup();
	scope_cleanup();
	acme_cleanup();
	probe_cleanup();
	pcurl_cleanup();
	owner_cleanup();
	auth_cleanup();
	audit_cleanup();
	ratelimit_cleanup();
	policy_cleanup();
	tls_cleanup();
	proxyd_engines_free();
	uptls_cleanup();
	creds_cleanup();
	child_exit(&px->c);
	return rv;
}
