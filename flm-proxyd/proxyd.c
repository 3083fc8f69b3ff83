/*
 * flm-proxyd: the unprivileged network process.  It carries every
 * byte of client and engine traffic, asks flm-keyd about keys, and can
 * neither open a database nor write a file.
 */
#include "config.h"

#include <stdlib.h>

#include <event2/event.h>

#include "child.h"
#include "log.h"
#include "proxyd.h"

static struct child	proxyd;

static void
proxyd_peer_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	chan_fail(ch, "unexpected message type %u from flm-keyd",
	    m->hdr.type);
}

static void
proxyd_parent_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
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
	proxyd.parent_cb = proxyd_parent_dispatch;
	proxyd.peer_cb = proxyd_peer_dispatch;
	child_init(&proxyd, PROC_PROXYD, argc, argv);
	child_drop(&proxyd, FLM_PROXYD_USER, proxyd.paths.emptydir);
	proxyd_sandbox();
	log_debug("ready");
	return child_run(&proxyd);
}
