#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "jsonbuf.h"
#include "flm_msg.h"
#include "log.h"

#define CHAN_READ_CHUNK		65536
#define CHAN_IOV_MAX		64
#define CHAN_FDS_PER_READ	4

struct chan_out {
	TAILQ_ENTRY(chan_out)	 entry;
	size_t			 len;
	size_t			 off;
	int			 fd;
	int			 wipe;		/* secret: zeroed once done */
	uint8_t			 data[];
};

struct chan {
	struct event_base	*base;
	int			 fd;
	uint32_t		 self_proc;
	int			 flags;
	chan_msg_cb		 msg_cb;
	chan_close_cb		 close_cb;
	void			*arg;
	struct event		*ev_read;
	struct event		*ev_write;

	uint8_t			*in;
	size_t			 in_len;
	size_t			 in_cap;
	int			 fds[CHAN_MAX_FDS];
	int			 nfds;

	TAILQ_HEAD(, chan_out)	 out;
	size_t			 out_bytes;

	int			 hello_seen;
	uint32_t		 expect_proc;	/* PROC_NONE: any */
	uint32_t		 peer_proc;
	pid_t			 peer_pid;
	char			 peer_version[32];

	int			 wdead;		/* peer stopped reading */
	int			 dispatching;
	int			 closed;	/* close_cb delivered */
	int			 freed;		/* chan_free() while dispatching */
	char			*fail_reason;
	pid_t			 self_pid;
};

static void	chan_read_cb(evutil_socket_t, short, void *);
static void	chan_out_free(struct chan_out *);
static void	chan_write_cb(evutil_socket_t, short, void *);
static int	chan_send_hello(struct chan *);

const char *
flm_proc_name(uint32_t proc)
{
	switch (proc) {
	case PROC_FLMD:		return "flmd";
	case PROC_KEYD:		return "flm-keyd";
	case PROC_PROXYD:	return "flm-proxyd";
	case PROC_CLI:		return "flm";
	default:		return "unknown";
	}
}

struct chan *
chan_new(struct event_base *base, int fd, uint32_t self_proc, int flags,
    chan_msg_cb msg_cb, chan_close_cb close_cb, void *arg)
{
	struct chan	*ch;
	int		 fl;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	ch->base = base;
	ch->fd = fd;
	ch->self_proc = self_proc;
	ch->flags = flags;
	ch->msg_cb = msg_cb;
	ch->close_cb = close_cb;
	ch->arg = arg;
	ch->self_pid = getpid();
	TAILQ_INIT(&ch->out);

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		goto fail;
	ch->ev_read = event_new(base, fd, EV_READ | EV_PERSIST,
	    chan_read_cb, ch);
	ch->ev_write = event_new(base, fd, EV_WRITE, chan_write_cb, ch);
	if (ch->ev_read == NULL || ch->ev_write == NULL)
		goto fail;
	if (event_add(ch->ev_read, NULL) == -1)
		goto fail;
	if (chan_send_hello(ch) == -1)
		goto fail;
	return ch;
fail:
	if (ch->ev_read)
		event_free(ch->ev_read);
	if (ch->ev_write)
		event_free(ch->ev_write);
	free(ch);
	return NULL;
}

static void
chan_drop_output(struct chan *ch)
{
	struct chan_out	*o;

	while ((o = TAILQ_FIRST(&ch->out)) != NULL) {
		TAILQ_REMOVE(&ch->out, o, entry);
		if (o->fd != -1)
			close(o->fd);
		chan_out_free(o);
	}
	ch->out_bytes = 0;
}

static void
chan_destroy(struct chan *ch)
{
	int	 i;

	event_free(ch->ev_read);
	event_free(ch->ev_write);
	chan_drop_output(ch);
	for (i = 0; i < ch->nfds; i++)
		close(ch->fds[i]);
	close(ch->fd);
	if (ch->in != NULL)
		explicit_bzero(ch->in, ch->in_cap);
	free(ch->in);
	free(ch->fail_reason);
	free(ch);
}

void
chan_free(struct chan *ch)
{
	if (ch == NULL)
		return;
	if (ch->dispatching) {
		ch->freed = 1;
		return;
	}
	chan_destroy(ch);
}

/* Stop all I/O and tell the owner once; the owner frees. */
static void
chan_shut(struct chan *ch, const char *reason)
{
	if (ch->closed)
		return;
	ch->closed = 1;
	event_del(ch->ev_read);
	event_del(ch->ev_write);
	if (ch->close_cb)
		ch->close_cb(ch, reason, ch->arg);
}

void
chan_fail(struct chan *ch, const char *fmt, ...)
{
	va_list	 ap;
	char	*r;

	if (ch->closed || ch->fail_reason)
		return;
	va_start(ap, fmt);
	if (vasprintf(&r, fmt, ap) == -1)
		r = NULL;
	va_end(ap);
	if ((ch->fail_reason = r) == NULL &&
	    (ch->fail_reason = strdup("protocol error")) == NULL)
		fatal("%s", __func__);
	/*
	 * The owner hears of it from the event loop, never from inside
	 * one of its own calls, so it may free the channel there.
	 */
	event_active(ch->ev_read, EV_READ, 0);
}

static int
chan_hdr_check(struct chan *ch, const struct chan_hdr *h)
{
	if (h->len < CHAN_HDR_SIZE || h->len > CHAN_MAX_MSG) {
		chan_fail(ch, "bad message length %u", h->len);
		return -1;
	}
	if (h->flags & ~CHAN_F_FD) {
		chan_fail(ch, "unknown flags 0x%x", h->flags);
		return -1;
	}
	return 0;
}

static int
chan_take_fd(struct chan *ch)
{
	int	 fd;

	if (ch->nfds == 0)
		return -1;
	fd = ch->fds[0];
	memmove(ch->fds, ch->fds + 1, (ch->nfds - 1) * sizeof(int));
	ch->nfds--;
	return fd;
}

static void
chan_recv_hello(struct chan *ch, struct chan_msg *m)
{
	uint32_t	 proto, proc;

	if (m->hdr.type != IMSG_HELLO) {
		chan_fail(ch, "message type %u before HELLO", m->hdr.type);
		return;
	}
	if (msg_get_u32(m, &proto) == -1 || msg_get_u32(m, &proc) == -1 ||
	    msg_get_string(m, ch->peer_version,
	    sizeof(ch->peer_version)) == -1 || msg_end(m) == -1) {
		chan_fail(ch, "malformed HELLO");
		return;
	}
	if (proto != FLM_PROTO_VERSION) {
		chan_fail(ch, "protocol version mismatch: peer %u, mine %u",
		    proto, FLM_PROTO_VERSION);
		return;
	}
	if (proc == PROC_NONE || proc >= PROC_MAX) {
		chan_fail(ch, "HELLO from unknown process type %u", proc);
		return;
	}
	if (ch->expect_proc != PROC_NONE && proc != ch->expect_proc) {
		chan_fail(ch, "HELLO from %s where %s was expected",
		    flm_proc_name(proc), flm_proc_name(ch->expect_proc));
		return;
	}
	ch->peer_proc = proc;
	ch->peer_pid = (pid_t)m->hdr.pid;
	ch->hello_seen = 1;
}

/* Hand every complete message in the input buffer to the owner. */
static void
chan_dispatch(struct chan *ch)
{
	struct chan_msg	 m;
	size_t		 pos = 0;

	ch->dispatching++;
	while (!ch->closed && !ch->fail_reason && !ch->freed &&
	    ch->in_len - pos >= CHAN_HDR_SIZE) {
		memcpy(&m.hdr, ch->in + pos, sizeof(m.hdr));
		if (chan_hdr_check(ch, &m.hdr) == -1)
			break;
		if (ch->in_len - pos < m.hdr.len)
			break;
		m.data = ch->in + pos + CHAN_HDR_SIZE;
		m.len = m.hdr.len - CHAN_HDR_SIZE;
		m.off = 0;
		m.fd = -1;
		pos += m.hdr.len;
		if (m.hdr.flags & CHAN_F_FD) {
			if ((m.fd = chan_take_fd(ch)) == -1) {
				chan_fail(ch, "message type %u promised a "
				    "descriptor that did not arrive",
				    m.hdr.type);
				break;
			}
		}
		if (!ch->hello_seen)
			chan_recv_hello(ch, &m);
		else if (m.hdr.type == IMSG_HELLO)
			chan_fail(ch, "second HELLO");
		else
			ch->msg_cb(ch, &m, ch->arg);
		if (m.fd != -1)
			close(m.fd);
	}
	if (pos > 0 && !ch->freed) {
		memmove(ch->in, ch->in + pos, ch->in_len - pos);
		ch->in_len -= pos;
		/* What was moved also stays where it was: a message read
		 * in part (a secret's first bytes) would outlive its
		 * msg_wipe there. */
		if (ch->in_len > 0)
			explicit_bzero(ch->in + ch->in_len, pos);
	}
	ch->dispatching--;
	if (ch->freed) {
		if (!ch->dispatching)
			chan_destroy(ch);
		return;
	}
	if (ch->fail_reason && !ch->dispatching)
		chan_shut(ch, ch->fail_reason);
}

static int
chan_read_once(struct chan *ch)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) *
				    CHAN_FDS_PER_READ)];
	} cmsgbuf;
	ssize_t		 n;
	size_t		 want;

	want = CHAN_READ_CHUNK;
	if (ch->in_cap - ch->in_len < want) {
		size_t	 ncap = ch->in_len + want;
		uint8_t	*p;

		/* Not realloc: a moved buffer would leave a copy of a
		 * partly read secret behind, unwiped. */
		if ((p = malloc(ncap)) == NULL) {
			chan_fail(ch, "out of memory");
			return -1;
		}
		if (ch->in != NULL) {
			memcpy(p, ch->in, ch->in_len);
			explicit_bzero(ch->in, ch->in_cap);
		}
		free(ch->in);
		ch->in = p;
		ch->in_cap = ncap;
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = ch->in + ch->in_len;
	iov.iov_len = ch->in_cap - ch->in_len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);

	n = recvmsg(ch->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n == -1 && errno == ECONNRESET) {
		/* The peer left without reading: an end.  A failed call
		 * filled in no control data, whatever msg_controllen says. */
		n = 0;
		mh.msg_controllen = 0;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		chan_fail(ch, "read: %s", strerror(errno));
		return -1;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int	*fds, i, nf;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		fds = (int *)CMSG_DATA(cm);
		nf = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nf; i++) {
			if (!(ch->flags & CHAN_FDPASS) ||
			    ch->nfds >= CHAN_MAX_FDS) {
				close(fds[i]);
				chan_fail(ch, "unexpected descriptor");
				continue;
			}
			ch->fds[ch->nfds++] = fds[i];
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		chan_fail(ch, "too many descriptors in one read");
	if (n == 0) {
		if (ch->in_len > 0)
			chan_fail(ch, "peer closed mid-message "
			    "(%zu bytes left)", ch->in_len);
		return -1;
	}
	ch->in_len += n;
	return 1;
}

static void
chan_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct chan	*ch = arg;
	int		 r;

	(void)fd;
	(void)ev;
	if (ch->fail_reason) {
		chan_shut(ch, ch->fail_reason);
		return;
	}
	r = chan_read_once(ch);
	if (ch->fail_reason) {
		chan_shut(ch, ch->fail_reason);
		return;
	}
	if (r == -1) {
		chan_shut(ch, NULL);	/* orderly EOF */
		return;
	}
	if (r == 1)
		chan_dispatch(ch);
}

/* Only this kind of process may speak on the channel. */
void
chan_expect_peer(struct chan *ch, uint32_t proc)
{
	ch->expect_proc = proc;
}

size_t
chan_pending(const struct chan *ch)
{
	return ch->out_bytes;
}

int
chan_ready(const struct chan *ch)
{
	return ch->hello_seen && !ch->closed && !ch->fail_reason;
}

uint32_t
chan_peer_proc(const struct chan *ch)
{
	return ch->peer_proc;
}

const char *
chan_peer_version(const struct chan *ch)
{
	return ch->peer_version;
}

pid_t
chan_peer_pid(const struct chan *ch)
{
	return ch->peer_pid;
}

int
chan_fd(const struct chan *ch)
{
	return ch->fd;
}

/* Write what the socket takes; 1 if data remains, 0 if empty, -1 error. */
int
chan_flush(struct chan *ch)
{
	struct iovec	 iov[CHAN_IOV_MAX];
	struct msghdr	 mh;
	struct chan_out	*o;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	ssize_t		 n;
	int		 i = 0;

	if (ch->closed)
		return -1;
	while (!TAILQ_EMPTY(&ch->out)) {
		memset(&mh, 0, sizeof(mh));
		i = 0;
		TAILQ_FOREACH(o, &ch->out, entry) {
			/* A descriptor rides on its own message's first byte. */
			if (i > 0 && o->fd != -1)
				break;
			iov[i].iov_base = o->data + o->off;
			iov[i].iov_len = o->len - o->off;
			if (++i == CHAN_IOV_MAX)
				break;
		}
		o = TAILQ_FIRST(&ch->out);
		if (o->fd != -1 && o->off == 0) {
			struct cmsghdr	*cm;

			memset(&cmsgbuf, 0, sizeof(cmsgbuf));
			mh.msg_control = cmsgbuf.buf;
			mh.msg_controllen = sizeof(cmsgbuf.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
		}
		mh.msg_iov = iov;
		mh.msg_iovlen = i;
		n = sendmsg(ch->fd, &mh, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (errno == EPIPE || errno == ECONNRESET) {
				/*
				 * The peer is gone; what it sent before
				 * going is still to be read, and the read
				 * side reports the end.
				 */
				chan_drop_output(ch);
				ch->wdead = 1;
				return 0;
			}
			chan_fail(ch, "write: %s", strerror(errno));
			return -1;
		}
		if (o->fd != -1 && o->off == 0 && n > 0) {
			close(o->fd);
			o->fd = -1;
		}
		ch->out_bytes -= n;
		while (n > 0 && (o = TAILQ_FIRST(&ch->out)) != NULL) {
			size_t	 left = o->len - o->off;

			if ((size_t)n < left) {
				o->off += n;
				break;
			}
			n -= left;
			TAILQ_REMOVE(&ch->out, o, entry);
			chan_out_free(o);
		}
	}
	if (TAILQ_EMPTY(&ch->out))
		return 0;
	event_add(ch->ev_write, NULL);
	return 1;
}

static void
chan_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct chan	*ch = arg;

	(void)fd;
	(void)ev;
	(void)chan_flush(ch);
}

static void
chan_out_free(struct chan_out *o)
{
	if (o->wipe)
		explicit_bzero(o->data, o->len);
	free(o);
}

static int
chan_enqueue(struct chan *ch, uint16_t type, uint32_t peerid, int fd,
    const void *data, size_t len, int wipe)
{
	struct chan_out	*o;
	struct chan_hdr	 h;

	if (ch->closed || ch->fail_reason) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (ch->wdead) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	if (len > CHAN_MAX_MSG - CHAN_HDR_SIZE) {
		log_warnx("%s: message type %u too large (%zu bytes)",
		    __func__, type, len);
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (ch->out_bytes + CHAN_HDR_SIZE + len > CHAN_MAX_QUEUE) {
		/* A peer that stops reading must not exhaust our memory. */
		if (fd != -1)
			close(fd);
		chan_fail(ch, "peer does not read: %zu bytes queued",
		    ch->out_bytes);
		return -1;
	}
	if ((o = malloc(sizeof(*o) + CHAN_HDR_SIZE + len)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.flags = fd != -1 ? CHAN_F_FD : 0;
	h.len = CHAN_HDR_SIZE + len;
	h.peerid = peerid;
	h.pid = (uint32_t)ch->self_pid;
	memcpy(o->data, &h, sizeof(h));
	if (len)
		memcpy(o->data + CHAN_HDR_SIZE, data, len);
	o->len = CHAN_HDR_SIZE + len;
	o->off = 0;
	o->fd = fd;
	o->wipe = wipe;
	TAILQ_INSERT_TAIL(&ch->out, o, entry);
	ch->out_bytes += o->len;
	/* Write now when we can: most messages leave without a loop turn. */
	if (!ch->dispatching)
		(void)chan_flush(ch);
	else
		event_add(ch->ev_write, NULL);
	return 0;
}

int
chan_compose(struct chan *ch, uint16_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	return chan_enqueue(ch, type, peerid, fd, data, len, 0);
}

/*
 * The same for a payload that holds a secret (a bearer token in a
 * KEY_VERIFY): the queued copy is zeroed once written or dropped.  The
 * caller still wipes its own.
 */
int
chan_compose_wipe(struct chan *ch, uint16_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	return chan_enqueue(ch, type, peerid, fd, data, len, 1);
}

#define CHAN_JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * json-c grows its print buffer with realloc, which leaves earlier
 * partial copies of the text in freed memory.  So the text is first
 * made with the secret member masked, which sizes the buffer; the real
 * text then fits in that one buffer, which is wiped.  Only letters and
 * digits are masked: a PEM key's newlines must stay, or the real text,
 * with its escapes, is longer than the masked one and grows the buffer
 * after all.
 */
static void
chan_json_presize(struct json_object *obj, const char *member)
{
	struct json_object	*v;
	char			*p, *saved;
	size_t			 n, len, i;

	if (member == NULL || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, member, &v) ||
	    !json_object_is_type(v, json_type_string))
		return;
	p = (char *)json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || (saved = malloc(n)) == NULL)
		return;
	memcpy(saved, p, n);
	for (i = 0; i < n; i++)
		if (isalnum((unsigned char)p[i]))
			p[i] = 'x';
	(void)json_object_to_json_string_length(obj, CHAN_JSON_FLAGS, &len);
	memcpy(p, saved, n);
	explicit_bzero(saved, n);
	free(saved);
}

#define CHAN_SCRUB_BYTES	16384

/*
 * Zero the stack below the caller, once a secret was handled: copies
 * of it in registers get spilled there where no explicit_bzero of ours
 * reaches them (the dynamic linker's trampoline on a first call, the
 * sanitizers' runtime, a signal's frame), and stay until a deeper call
 * writes over them (wipe.t, test_chan's test_compose_secret_stack).
 */
void __attribute__((noinline))
chan_stack_scrub(void)
{
	char	 buf[CHAN_SCRUB_BYTES];

	explicit_bzero(buf, sizeof(buf));
	/* buf is used: the compiler keeps it, at this depth. */
	__asm__ __volatile__("" : : "r"(buf) : "memory");
}

static int
chan_compose_json_wipe(struct chan *ch, uint16_t type, uint32_t peerid,
    int fd, struct json_object *obj, const char *secret, int wipe)
{
	const char	*s;
	size_t		 len;
	int		 r;

	if (wipe)
		chan_json_presize(obj, secret);
	s = json_object_to_json_string_length(obj, CHAN_JSON_FLAGS, &len);
	if (s == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	r = chan_enqueue(ch, type, peerid, fd, s, len, wipe);
	/* s is obj's own print buffer: a secret must not stay there. */
	if (wipe) {
		explicit_bzero((char *)s, len);
		chan_stack_scrub();
	}
	return r;
}

int
chan_compose_json(struct chan *ch, uint16_t type, uint32_t peerid,
    struct json_object *obj)
{
	return chan_compose_json_wipe(ch, type, peerid, -1, obj, NULL, 0);
}

/* The same with a descriptor (the channel owns it from here), and the
 * string member secret, if not NULL, wiped as chan_compose_secret's. */
int
chan_compose_json_fd(struct chan *ch, uint16_t type, uint32_t peerid, int fd,
    struct json_object *obj, const char *secret)
{
	return chan_compose_json_wipe(ch, type, peerid, fd, obj, secret,
	    secret != NULL);
}

/*
 * The same for an answer that may hold a secret, the string member
 * secret of obj (a new key's text): the serialised text and the queued
 * copy are zeroed once written or dropped.  The caller still wipes the
 * secret in obj itself.
 */
int
chan_compose_secret(struct chan *ch, uint16_t type, uint32_t peerid,
    struct json_object *obj, const char *secret)
{
	return chan_compose_json_wipe(ch, type, peerid, -1, obj, secret, 1);
}

/* The one error shape of admin answers: {"error": msg, "code": errno}. */
int
chan_compose_error(struct chan *ch, uint16_t type, uint32_t peerid, int code,
    const char *msg)
{
	struct json_object	*o = json_object_new_object();
	int			 r;

	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(code));
	r = chan_compose_json(ch, type, peerid, o);
	json_object_put(o);
	return r;
}

static int
chan_send_hello(struct chan *ch)
{
	struct mbuf	 b = { 0 };

	mbuf_put_u32(&b, FLM_PROTO_VERSION);
	mbuf_put_u32(&b, ch->self_proc);
	mbuf_put_string(&b, PACKAGE_VERSION);
	return chan_compose_mbuf(ch, IMSG_HELLO, 0, -1, &b);
}

int
msg_get_data(struct chan_msg *m, void *p, size_t len)
{
	if (m->len - m->off < len)
		return -1;
	memcpy(p, m->data + m->off, len);
	m->off += len;
	return 0;
}

int
msg_get_u32(struct chan_msg *m, uint32_t *v)
{
	return msg_get_data(m, v, sizeof(*v));
}

int
msg_get_u64(struct chan_msg *m, uint64_t *v)
{
	return msg_get_data(m, v, sizeof(*v));
}

/* A u32 length, then that many bytes: no NUL inside, must fit buf. */
int
msg_get_string(struct chan_msg *m, char *buf, size_t bufsz)
{
	uint32_t	 len;

	if (msg_get_u32(m, &len) == -1 || len >= bufsz ||
	    m->len - m->off < len)
		return -1;
	if (memchr(m->data + m->off, '\0', len) != NULL)
		return -1;
	memcpy(buf, m->data + m->off, len);
	buf[len] = '\0';
	m->off += len;
	return 0;
}

/* The rest of the payload is one JSON object, array or string. */
int
msg_get_json(struct chan_msg *m, struct json_object **obj)
{
	if ((*obj = json_parse_buf_secret((const char *)m->data + m->off,
	    m->len - m->off)) == NULL)
		return -1;
	m->off = m->len;
	return 0;
}

/* The same, and an object; *obj is NULL when it is not one. */
int
msg_get_object(struct chan_msg *m, struct json_object **obj)
{
	if (msg_get_json(m, obj) == -1)
		return -1;
	if (!json_object_is_type(*obj, json_type_object)) {
		json_object_put(*obj);
		*obj = NULL;
		return -1;
	}
	return 0;
}

/* Zero a received payload that held a secret, once it is read: the
 * input buffer is reused, not cleared. */
void
msg_wipe(struct chan_msg *m)
{
	explicit_bzero((uint8_t *)m->data, m->len);
}

int
msg_end(struct chan_msg *m)
{
	return m->off == m->len ? 0 : -1;
}

static void
mbuf_grow(struct mbuf *b, size_t need)
{
	size_t	 ncap;
	uint8_t	*p;

	if (b->err || b->cap - b->len >= need)
		return;
	ncap = b->cap ? b->cap : 64;
	while (ncap - b->len < need)
		ncap *= 2;
	if ((p = realloc(b->data, ncap)) == NULL) {
		b->err = 1;
		return;
	}
	b->data = p;
	b->cap = ncap;
}

void
mbuf_put_data(struct mbuf *b, const void *p, size_t len)
{
	mbuf_grow(b, len);
	if (b->err)
		return;
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

void
mbuf_put_u32(struct mbuf *b, uint32_t v)
{
	mbuf_put_data(b, &v, sizeof(v));
}

void
mbuf_put_u64(struct mbuf *b, uint64_t v)
{
	mbuf_put_data(b, &v, sizeof(v));
}

void
mbuf_put_string(struct mbuf *b, const char *s)
{
	size_t	 len = strlen(s);

	if (len > UINT32_MAX) {
		b->err = 1;
		return;
	}
	mbuf_put_u32(b, (uint32_t)len);
	mbuf_put_data(b, s, len);
}

void
mbuf_free(struct mbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int
chan_compose_mbuf(struct chan *ch, uint16_t type, uint32_t peerid, int fd,
    struct mbuf *b)
{
	int	 r = -1;

	if (!b->err)
		r = chan_compose(ch, type, peerid, fd, b->data, b->len);
	else if (fd != -1)
		close(fd);
	mbuf_free(b);
	return r;
}
