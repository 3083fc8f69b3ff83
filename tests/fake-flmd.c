/*
 * fake-flmd: a subverted flmd's control socket, for the tests of what
 * flm believes of it (firewall.t).  It listens on PATH and answers
 * IMSG_CTL_FIREWALL_PLAN with PLAN and IMSG_CTL_POLICY_GET with
 * POLICY (JSON texts, sent as they are), anything else with an error,
 * until it is killed.
 *
 *   fake-flmd PATH PLAN POLICY
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "flm_msg.h"

static struct event_base	*base;
static struct json_object	*plan, *policy;

static void
fake_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	(void)arg;
	if (m->hdr.type == IMSG_CTL_FIREWALL_PLAN)
		chan_compose_json(ch, IMSG_CTL_RESULT, m->hdr.peerid, plan);
	else if (m->hdr.type == IMSG_CTL_POLICY_GET)
		chan_compose_json(ch, IMSG_CTL_RESULT, m->hdr.peerid, policy);
	else
		chan_compose_error(ch, IMSG_CTL_ERROR, m->hdr.peerid, 22,
		    "fake-flmd: not served");
}

static void
fake_closed(struct chan *ch, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	chan_free(ch);
}

static void
fake_accept(evutil_socket_t lfd, short ev, void *arg)
{
	int	 fd;

	(void)ev;
	(void)arg;
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		return;
	if (chan_new(base, fd, PROC_FLMD, 0, fake_dispatch, fake_closed,
	    NULL) == NULL)
		close(fd);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	struct event		*ev;
	int			 fd;

	if (argc != 4 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: fake-flmd PATH PLAN POLICY\n");
		return 2;
	}
	if ((plan = json_tokener_parse(argv[2])) == NULL ||
	    (policy = json_tokener_parse(argv[3])) == NULL) {
		fprintf(stderr, "fake-flmd: PLAN and POLICY must be JSON\n");
		return 2;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, argv[1]);
	unlink(argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 8) == -1) {
		perror("fake-flmd");
		return 1;
	}
	base = event_base_new();
	ev = event_new(base, fd, EV_READ | EV_PERSIST, fake_accept, NULL);
	event_add(ev, NULL);
	event_base_dispatch(base);
	return 0;
}
