/*
 * The one channel library: imsg-shaped framed messages over a UNIX
 * stream socket, driven by libevent, with optional descriptor passing.
 *
 * Every channel starts with a HELLO exchange that checks the protocol
 * version (and, with chan_expect_peer(), who speaks); a message before
 * HELLO, a bad header, a descriptor on a channel that takes none, or a
 * short/trailing payload makes the channel fail, and the owner's close
 * callback decides what that means for the peer.  A descriptor that
 * rides on a message whose handler does not claim it is closed.
 */
#ifndef FLM_CHAN_H
#define FLM_CHAN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct json_object;

#define CHAN_HDR_SIZE	16
#define CHAN_MAX_MSG	(256 * 1024)	/* header included */
#define CHAN_MAX_FDS	8		/* received, not yet claimed */
#define CHAN_MAX_QUEUE	(64 * 1024 * 1024)	/* unsent bytes */

#define CHAN_F_FD	0x0001		/* a descriptor travels with it */

/* chan_new() flags */
#define CHAN_FDPASS	0x01		/* descriptors may arrive here */

struct chan_hdr {
	uint16_t	 type;
	uint16_t	 flags;
	uint32_t	 len;		/* header + payload */
	uint32_t	 peerid;	/* request/client id, echoed back */
	uint32_t	 pid;		/* sender's pid */
};

/* A received message, valid only during the message callback. */
struct chan_msg {
	struct chan_hdr	 hdr;
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;		/* parse position */
	int		 fd;		/* -1, or owned by the callback */
};

struct chan;
typedef void	(*chan_msg_cb)(struct chan *, struct chan_msg *, void *);
/* Called once; reason is NULL for an orderly EOF. */
typedef void	(*chan_close_cb)(struct chan *, const char *, void *);

struct chan	*chan_new(struct event_base *, int, uint32_t, int,
		    chan_msg_cb, chan_close_cb, void *);
void		 chan_free(struct chan *);
void		 chan_expect_peer(struct chan *, uint32_t);
void		 chan_fail(struct chan *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
int		 chan_compose(struct chan *, uint16_t, uint32_t, int,
		    const void *, size_t);
int		 chan_compose_wipe(struct chan *, uint16_t, uint32_t, int,
		    const void *, size_t);
int		 chan_compose_json(struct chan *, uint16_t, uint32_t,
		    struct json_object *);
int		 chan_compose_secret(struct chan *, uint16_t, uint32_t,
		    struct json_object *, const char *);
int		 chan_compose_json_fd(struct chan *, uint16_t, uint32_t, int,
		    struct json_object *, const char *);
int		 chan_compose_error(struct chan *, uint16_t, uint32_t, int,
		    const char *);
int		 chan_flush(struct chan *);
size_t		 chan_pending(const struct chan *);
int		 chan_ready(const struct chan *);
uint32_t	 chan_peer_proc(const struct chan *);
const char	*chan_peer_version(const struct chan *);
pid_t		 chan_peer_pid(const struct chan *);
int		 chan_fd(const struct chan *);

/* Typed readers: -1 on a short payload; msg_end() -1 on trailing bytes. */
int	 msg_get_u32(struct chan_msg *, uint32_t *);
int	 msg_get_u64(struct chan_msg *, uint64_t *);
int	 msg_get_data(struct chan_msg *, void *, size_t);
int	 msg_get_string(struct chan_msg *, char *, size_t);
int	 msg_get_json(struct chan_msg *, struct json_object **);
int	 msg_get_object(struct chan_msg *, struct json_object **);
int	 msg_end(struct chan_msg *);
void	 msg_wipe(struct chan_msg *);
void	 chan_stack_scrub(void);

/* A growable payload for composing typed messages. */
struct mbuf {
	uint8_t		*data;
	size_t		 len;
	size_t		 cap;
	int		 err;
};
void	 mbuf_put_u32(struct mbuf *, uint32_t);
void	 mbuf_put_u64(struct mbuf *, uint64_t);
void	 mbuf_put_data(struct mbuf *, const void *, size_t);
void	 mbuf_put_string(struct mbuf *, const char *);
void	 mbuf_free(struct mbuf *);
int	 chan_compose_mbuf(struct chan *, uint16_t, uint32_t, int,
	    struct mbuf *);

#endif
