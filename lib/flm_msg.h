/*
 * Every message type exchanged between FLM processes, in one place.
 * docs/IPC_PROTOCOL.md describes each; keep the two in step.
 */
#ifndef FLM_MSG_H
#define FLM_MSG_H

#include <stdint.h>

#define FLM_PROTO_VERSION	1

/* Descriptors a child finds its channels on after exec. */
#define FLM_CHAN_PARENT_FD	3	/* to flmd */
#define FLM_CHAN_PEER_FD	4	/* proxyd <-> keyd */

enum flm_proc {
	PROC_NONE = 0,
	PROC_FLMD,
	PROC_KEYD,
	PROC_PROXYD,
	PROC_CLI,
	PROC_MAX
};

enum flm_msg_type {
	/* Every channel: u32 protocol, u32 proc, string software version. */
	IMSG_HELLO = 1,

	/* flmd -> child */
	IMSG_RELOAD,		/* empty: re-read configuration */
	IMSG_PEER_CHANNEL,	/* fd: a fresh channel to the other child */

	/* child -> flmd */
	IMSG_PEER_BROKEN,	/* empty: the other child broke protocol */

	/* flm -> flmd (control socket), replies carry the same peerid */
	IMSG_CTL_STATUS = 100,	/* empty; reply IMSG_CTL_RESULT */
	IMSG_CTL_RESULT,	/* JSON object */
	IMSG_CTL_ERROR,		/* JSON {"error": "...", "code": N} */
};

const char	*flm_proc_name(uint32_t);

#endif
