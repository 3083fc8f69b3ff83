/*
 * flm-keyd: the only holder of security.db and the master key.  It
 * answers flmd and flm-proxyd over its channels and never touches the
 * network: its sandbox forbids socket(2), connect(2) and execve(2).
 */
#include "config.h"

#include <stdlib.h>

#include <event2/event.h>

#include "child.h"
#include "keyd.h"
#include "log.h"

static struct child	keyd;

/* proxyd is the less privileged peer: anything unexpected drops it. */
static void
keyd_peer_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	log_warnx("flm-proxyd sent unknown message type %u", m->hdr.type);
	chan_fail(ch, "unknown message type %u", m->hdr.type);
}

static void
keyd_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	switch (m->hdr.type) {
	case IMSG_RELOAD:
		break;
	default:
		chan_fail(ch, "unexpected message type %u", m->hdr.type);
		break;
	}
}

int
main(int argc, char *argv[])
{
	keyd.parent_cb = keyd_parent_dispatch;
	keyd.peer_cb = keyd_peer_dispatch;
	child_init(&keyd, PROC_KEYD, argc, argv);
	child_drop(&keyd, FLM_KEYD_USER, keyd.paths.keyddir);
	keyd_sandbox();
	log_debug("ready");
	return child_run(&keyd);
}
