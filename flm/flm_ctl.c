/*
 * flm's side of the control socket: connect, one request, one answer.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chan.h"
#include "flm.h"
#include "paths.h"

#define CLI_TIMEOUT_SECS	30
#define CLI_STEP_SECS		90	/* a step may run a DNS hook (60 s) */
#define CLI_REQID		1	/* one request per connection */

struct cli_req {
	struct event_base	*base;
	struct event		*tmo;
	struct cli		*cli;
	struct json_object	*result;
	int			 rc;
	int			 done;
	int			 stepped;	/* a progress came */
};

/* A step of a long request: shown, and the wait starts again. */
static void
cli_progress(struct cli_req *r, struct chan_msg *m)
{
	struct json_object	*o, *v;
	struct timeval		 tv = { CLI_STEP_SECS, 0 };

	if (msg_get_object(m, &o) == -1)
		return;
	evtimer_add(r->tmo, &tv);
	r->stepped = 1;
	if (r->cli->json) {
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
	} else {
		json_object_object_get_ex(o, "detail", &v);
		fprintf(stderr, "acme: %-11s %6s ms%s%s\n",
		    term_str(json_object_object_get(o, "step")),
		    term_str(json_object_object_get(o, "ms")),
		    v ? "  " : "", v ? term_str(v) : "");
	}
	json_object_put(o);
}

static void
cli_dispatch(struct chan *ch, struct chan_msg *m, void *arg)
{
	struct cli_req	*r = arg;

	(void)ch;
	if (m->hdr.peerid != CLI_REQID && m->hdr.peerid != 0) {
		fprintf(stderr, "flm: answer to another request from flmd\n");
		r->rc = FLM_EX_ERROR;
		r->done = 1;
		event_base_loopbreak(r->base);
		return;
	}
	switch (m->hdr.type) {
	case IMSG_CTL_PROGRESS:
		cli_progress(r, m);
		return;
	case IMSG_CTL_RESULT:
	case IMSG_CTL_ERROR:
		if (msg_get_json(m, &r->result) == -1) {
			fprintf(stderr, "flm: malformed answer from flmd\n");
			r->rc = FLM_EX_ERROR;
		} else if (m->hdr.type == IMSG_CTL_ERROR) {
			struct json_object	*e, *code;

			json_object_object_get_ex(r->result, "error", &e);
			fprintf(stderr, "flm: %s\n", e ? term_str(e) :
			    "error");
			r->rc = FLM_EX_ERROR;
			if (json_object_object_get_ex(r->result, "code",
			    &code) && json_object_get_int(code) == EPERM)
				r->rc = FLM_EX_PERM;
			json_object_put(r->result);
			r->result = NULL;
		} else
			r->rc = FLM_EX_OK;
		/* A new key's text, once parsed, stays only in result. */
		msg_wipe(m);
		break;
	default:
		fprintf(stderr, "flm: unexpected message %u from flmd\n",
		    m->hdr.type);
		r->rc = FLM_EX_ERROR;
		break;
	}
	r->done = 1;
	event_base_loopbreak(r->base);
}

static void
cli_closed(struct chan *ch, const char *reason, void *arg)
{
	struct cli_req	*r = arg;

	(void)ch;
	if (!r->done) {
		fprintf(stderr, "flm: flmd closed the connection%s%s\n",
		    reason ? ": " : "", reason ? reason : "");
		r->rc = FLM_EX_ERROR;
		r->done = 1;
	}
	event_base_loopbreak(r->base);
}

static int
cli_connect(struct cli *c, char *sockpath, size_t sz)
{
	struct flm_paths	 paths;
	struct sockaddr_un	 sun;
	char			 err[256];
	int			 fd;

	if (paths_init(&paths, c->dir, err, sizeof(err)) == -1) {
		fprintf(stderr, "flm: %s\n", err);
		exit(FLM_EX_USAGE);
	}
	snprintf(sockpath, sz, "%s", paths.sock);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, paths.sock, sizeof(paths.sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "flm: socket: %s\n", strerror(errno));
		exit(FLM_EX_ERROR);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ECONNREFUSED:
		fprintf(stderr, "flm: flmd is not running (no daemon at %s)%s"
		    "\n", sockpath, paths.user_mode ? "; start it with: flmd "
		    "-d -D STATEDIR" : "; start it with: systemctl start flmd");
		exit(FLM_EX_NODAEMON);
	case EACCES:
	case EPERM:
		fprintf(stderr, "flm: permission denied on %s: run as root "
		    "or as a member of group %s\n", sockpath, FLM_ADMIN_GROUP);
		exit(FLM_EX_PERM);
	default:
		fprintf(stderr, "flm: cannot connect to %s: %s\n", sockpath,
		    strerror(errno));
		exit(FLM_EX_NODAEMON);
	}
}

static void
cli_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct cli_req	*r = arg;

	(void)fd;
	(void)ev;
	fprintf(stderr, "flm: no answer from flmd within %d seconds\n",
	    r->stepped ? CLI_STEP_SECS : CLI_TIMEOUT_SECS);
	r->rc = FLM_EX_ERROR;
	r->done = 1;
	event_base_loopbreak(r->base);
}

/*
 * Send one request (args may be NULL) and wait for its answer.  On
 * success *result holds the JSON answer, owned by the caller.
 */
int
cli_request(struct cli *c, uint16_t type, struct json_object *args,
    struct json_object **result)
{
	return cli_request_fd(c, type, args, -1, result);
}

/* The same with a descriptor for flmd (a backup file), closed here. */
int
cli_request_fd(struct cli *c, uint16_t type, struct json_object *args,
    int sendfd, struct json_object **result)
{
	struct cli_req	 r;
	struct chan	*ch;
	struct event	*tmo;
	struct timeval	 tv = { CLI_TIMEOUT_SECS, 0 };
	char		 sockpath[PATH_MAX];
	int		 fd, rc;

	memset(&r, 0, sizeof(r));
	r.cli = c;
	fd = cli_connect(c, sockpath, sizeof(sockpath));
	if ((r.base = event_base_new()) == NULL) {
		fprintf(stderr, "flm: event_base_new failed\n");
		exit(FLM_EX_ERROR);
	}
	if ((ch = chan_new(r.base, fd, PROC_CLI, 0, cli_dispatch, cli_closed,
	    &r)) == NULL) {
		fprintf(stderr, "flm: cannot set up channel\n");
		exit(FLM_EX_ERROR);
	}
	chan_expect_peer(ch, PROC_FLMD);
	/* A credential's text or a passphrase rides on some: the queued
	 * copy is wiped. */
	rc = args ? chan_compose_json_fd(ch, type, CLI_REQID, sendfd, args,
	    json_object_object_get_ex(args, "passphrase", NULL) ?
	    "passphrase" : "secret") :
	    chan_compose(ch, type, CLI_REQID, sendfd, NULL, 0);
	if (rc == -1) {
		fprintf(stderr, "flm: cannot send request to flmd\n");
		exit(FLM_EX_ERROR);
	}
	tmo = evtimer_new(r.base, cli_timeout, &r);
	r.tmo = tmo;
	evtimer_add(tmo, &tv);
	while (!r.done)
		if (event_base_dispatch(r.base) != 0)
			break;
	event_free(tmo);
	chan_free(ch);
	event_base_free(r.base);
	*result = r.result;
	if (!r.done)
		return FLM_EX_ERROR;
	return r.rc;
}
