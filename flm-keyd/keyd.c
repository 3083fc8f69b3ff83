/*
 * flm-keyd: the only holder of security.db and the master key.  It
 * answers flmd and flm-proxyd over its channels and never touches the
 * network: its sandbox forbids socket(2), connect(2) and execve(2).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <sodium.h>

#include "child.h"
#include "db.h"
#include "keyd.h"
#include "log.h"

#define KEYD_DB_NAME	"security.db"

static struct child	keyd;
static struct db	keyd_db;

static void
keyd_reply_error(struct chan *ch, uint32_t peerid, int code, const char *msg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(code));
	chan_compose_json(ch, IMSG_KEY_ERROR, peerid, o);
	json_object_put(o);
}

static void
keyd_create(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*req, *label, *res;
	char			 err[512];

	if (msg_get_json(m, &req) == -1) {
		chan_fail(ch, "malformed KEY_CREATE");
		return;
	}
	if (!json_object_object_get_ex(req, "label", &label) ||
	    !json_object_is_type(label, json_type_string)) {
		keyd_reply_error(ch, m->hdr.peerid, EINVAL,
		    "a label is required: --label NAME");
	} else if (keyd_key_create(&keyd_db, json_object_get_string(label),
	    &res, err, sizeof(err)) == -1) {
		keyd_reply_error(ch, m->hdr.peerid, EINVAL, err);
	} else {
		struct json_object	*key;

		chan_compose_json(ch, IMSG_KEY_RESULT, m->hdr.peerid, res);
		/* The key text was in res: wipe json-c's copy before free. */
		if (json_object_object_get_ex(res, "key", &key))
			sodium_memzero((char *)json_object_get_string(key),
			    json_object_get_string_len(key));
		json_object_put(res);
	}
	json_object_put(req);
}

static void
keyd_verify(struct chan *ch, struct chan_msg *m)
{
	struct flm_key_verify	 v;
	struct flm_key_verdict	 r;

	if (msg_get_data(m, &v, sizeof(v)) == -1 || msg_end(m) == -1 ||
	    v.version != FLM_VERIFY_VERSION || v.token_len > FLM_TOKEN_MAX) {
		log_warnx("flm-proxyd sent a malformed KEY_VERIFY");
		sodium_memzero(&v, sizeof(v));
		chan_fail(ch, "malformed KEY_VERIFY");
		return;
	}
	memset(&r, 0, sizeof(r));
	r.version = FLM_VERIFY_VERSION;
	r.reqid = v.reqid;
	r.result = keyd_key_verify(&keyd_db, v.token, v.token_len, r.key_id);
	sodium_memzero(&v, sizeof(v));
	chan_compose(ch, IMSG_KEY_VERDICT, m->hdr.peerid, -1, &r, sizeof(r));
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
	default:
		log_warnx("flm-proxyd sent unknown message type %u",
		    m->hdr.type);
		chan_fail(ch, "unknown message type %u", m->hdr.type);
		break;
	}
}

static void
keyd_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_RELOAD:
		break;
	case IMSG_KEY_CREATE:
		keyd_create(ch, m);
		break;
	default:
		chan_fail(ch, "unexpected message type %u", m->hdr.type);
		break;
	}
}

/* Tell flmd how security.db is, for flm status. */
static void
keyd_report_db(void)
{
	struct json_object	*o = json_object_new_object();

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

int
main(int argc, char *argv[])
{
	int	 rv;

	keyd.parent_cb = keyd_parent_dispatch;
	keyd.peer_cb = keyd_peer_dispatch;
	child_init(&keyd, PROC_KEYD, argc, argv);
	if (sodium_init() == -1)
		fatalx("sodium_init failed");
	child_drop(&keyd, FLM_KEYD_USER, keyd.paths.keyddir);
	/* After the chroot or chdir: the name is relative to keyd's dir. */
	db_open(&keyd_db, KEYD_DB_NAME, DB_SECURE, 0, security_migrations,
	    security_migrations_count);
	keyd_sandbox();
	keyd_report_db();
	log_debug("ready");
	rv = child_run(&keyd);
	db_close(&keyd_db);
	return rv;
}
