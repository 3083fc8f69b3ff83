/*
 * libFuzzer target for the channel library: arbitrary bytes from a
 * peer must never crash, leak or hang the receiver.  The first input
 * byte picks the channel's options; with bit 0 set a valid HELLO is
 * sent first so the fuzzer reaches message parsing.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "flm_msg.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct event_base	*base;

static void
fuzz_msg(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct json_object	*o = NULL;
	uint32_t		 u32;
	uint64_t		 u64;
	char			 s[64];

	(void)ch;
	(void)arg;
	/* Every typed reader, in an order the message type decides. */
	switch (m->hdr.type % 4) {
	case 0:
		(void)msg_get_u32(m, &u32);
		(void)msg_get_string(m, s, sizeof(s));
		break;
	case 1:
		(void)msg_get_u64(m, &u64);
		break;
	case 2:
		if (msg_get_json(m, &o) == 0)
			json_object_put(o);
		break;
	default:
		(void)msg_get_data(m, s, sizeof(s));
		break;
	}
	(void)msg_end(m);
}

static void
fuzz_closed(struct chan *ch, const char *reason, void *arg)
{
	(void)ch;
	(void)reason;
	*(int *)arg = 1;
}

static void
fuzz_hello(int fd)
{
	uint8_t		 buf[64];
	uint32_t	 v;
	size_t		 off = 16;
	struct chan_hdr	 h;

	v = FLM_PROTO_VERSION;
	memcpy(buf + off, &v, 4);
	off += 4;
	v = PROC_KEYD;
	memcpy(buf + off, &v, 4);
	off += 4;
	v = 1;
	memcpy(buf + off, &v, 4);
	off += 4;
	buf[off++] = 'x';
	memset(&h, 0, sizeof(h));
	h.type = IMSG_HELLO;
	h.len = off;
	memcpy(buf, &h, sizeof(h));
	(void)!write(fd, buf, off);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan	*ch;
	int		 sp[2], closed = 0, i;

	if (size < 1 || size > 60000)
		return 0;
	if (base == NULL) {
		log_init(1, 0);
		if ((base = event_base_new()) == NULL)
			abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1)
		abort();
	ch = chan_new(base, sp[0], PROC_FLMD, (data[0] & 2) ? CHAN_FDPASS : 0,
	    fuzz_msg, fuzz_closed, &closed);
	if (ch == NULL)
		abort();
	if (data[0] & 1)
		fuzz_hello(sp[1]);
	(void)!write(sp[1], data + 1, size - 1);
	close(sp[1]);
	for (i = 0; i < 1000 && !closed; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	if (!closed)
		abort();	/* EOF must always end the channel */
	chan_free(ch);
	return 0;
}
