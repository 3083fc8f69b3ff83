/*
 * flm console: the admin's flm in a browser (docs/CONSOLE.md).  A small
 * HTTP server on 127.0.0.1 for as long as the admin runs it, holding
 * no privilege of its own: each API route runs this very binary with
 * one flm command and --json, as the admin, and answers what it
 * printed.  Who gets in: the one-time token of the URL printed at the
 * start, exchanged for a session cookie; state-changing routes also
 * need the session's CSRF token; the Host header must name loopback.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "console_files.h"
#include "flm.h"
#include "jsonbuf.h"

#define CON_SECRET_HEX	64		/* 32 random bytes */
#define CON_BODY_MAX	65536
#define CON_OUT_MAX	(16 * 1024 * 1024)
#define CON_ERR_MAX	65536
#define CON_JOBS_MAX	8
#define CON_JOB_SECS	120
#define CON_ARGV_MAX	48
#define CON_COOKIE	"flm_console"

struct con_argv {
	char	*v[CON_ARGV_MAX + 1];
	int	 n;
	int	 bad;		/* an argument was refused */
};

#define CON_TEXT	0x01	/* stdout is text: {"text": ...} */
#define CON_STREAM	0x02	/* stdout lines relayed as they come */

struct con_route {
	const char	*method;
	const char	*path;
	int		 flags;
	const char	*words;		/* the command and its fixed options */
	void		(*build)(struct con_argv *, struct json_object *);
};

struct con_job {
	struct evhttp_request	*req;	/* NULL once the client is gone */
	struct event		*out_ev, *err_ev, *in_ev, *tmo;
	struct evbuffer		*out, *err, *in;
	pid_t			 pid;
	int			 out_fd, err_fd, in_fd;
	int			 flags;
	int			 started;	/* a streamed reply began */
	int			 timed_out;
};

static struct event_base	*con_base;
static struct evhttp		*con_http;
static char			 con_exe[PATH_MAX];
static const char		*con_dir;
static char			 con_host[2][64];
static char			 con_token[CON_SECRET_HEX + 1];
static int			 con_token_spent;
static char			 con_session[CON_SECRET_HEX + 1];
static char			 con_csrf[CON_SECRET_HEX + 1];
static int			 con_jobs;

static void __attribute__((noreturn))
con_oom(void)
{
	fprintf(stderr, "flm console: out of memory\n");
	exit(FLM_EX_ERROR);
}

/* ---- replies ------------------------------------------------------- */

static void
con_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'self'; style-src 'self'; img-src 'self'; "
	    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
	    "base-uri 'none'");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Cache-Control", "no-store");
}

static void
con_reply(struct evhttp_request *req, int code, const char *type,
    const void *body, size_t len)
{
	struct evbuffer	*b = evbuffer_new();

	con_headers(req, type);
	if (b != NULL)
		evbuffer_add(b, body, len);
	/* libevent knows no phrase for 421 */
	evhttp_send_reply(req, code, code == 421 ? "Misdirected Request" :
	    NULL, b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
con_json(struct evhttp_request *req, int code, struct json_object *o)
{
	const char	*s = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	con_reply(req, code, "application/json", s, strlen(s));
}

static void
con_error(struct evhttp_request *req, int code, const char *msg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	con_json(req, code, o);
	json_object_put(o);
}

static void
con_page(struct evhttp_request *req, int code, const char *msg)
{
	char	 buf[1024];
	int	 n;

	n = snprintf(buf, sizeof(buf), "<!DOCTYPE html>\n<html lang=\"en\">"
	    "<head><meta charset=\"utf-8\"><title>flm console</title></head>"
	    "<body><h1>flm console</h1><p>%s</p></body></html>\n", msg);
	con_reply(req, code, "text/html; charset=utf-8", buf, (size_t)n);
}

/* ---- arguments ------------------------------------------------------ */

static void
arg_add(struct con_argv *a, const char *s)
{
	if (a->n == CON_ARGV_MAX || (a->v[a->n] = strdup(s)) == NULL) {
		a->bad = 1;
		return;
	}
	a->v[++a->n] = NULL;
}

static void
arg_free(struct con_argv *a)
{
	int	 i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* A value that cannot be taken for an option: printable, no leading
 * '-', at most 256 bytes. */
static int
arg_word_ok(const char *s)
{
	size_t	 i, l = strlen(s);

	if (l == 0 || l > 256 || s[0] == '-')
		return 0;
	for (i = 0; i < l; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* in[key] as a string, or NULL; set bad if it is there and not one. */
static const char *
arg_str(struct con_argv *a, struct json_object *in, const char *key)
{
	struct json_object	*v;

	if (in == NULL || !json_object_object_get_ex(in, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return NULL;
	if (json_object_is_type(v, json_type_int)) {
		/* "port": 8080 as well as "8080" */
		return json_object_get_string(v);
	}
	if (!json_object_is_type(v, json_type_string) ||
	    !arg_word_ok(json_object_get_string(v))) {
		a->bad = 1;
		return NULL;
	}
	return json_object_get_string(v);
}

/* --opt VALUE when in[key] is given; required: it must be. */
static void
arg_opt(struct con_argv *a, struct json_object *in, const char *key,
    const char *opt, int required)
{
	const char	*s = arg_str(a, in, key);

	if (s == NULL) {
		if (required)
			a->bad = 1;
		return;
	}
	if (!arg_word_ok(s)) {
		a->bad = 1;
		return;
	}
	if (opt != NULL)
		arg_add(a, opt);
	arg_add(a, s);
}

/* --opt V for each V of the array in[key] (or a single string). */
static void
arg_list(struct con_argv *a, struct json_object *in, const char *key,
    const char *opt)
{
	struct json_object	*v, *e;
	size_t			 i;

	if (in == NULL || !json_object_object_get_ex(in, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return;
	if (json_object_is_type(v, json_type_string)) {
		arg_opt(a, in, key, opt, 0);
		return;
	}
	if (!json_object_is_type(v, json_type_array)) {
		a->bad = 1;
		return;
	}
	for (i = 0; i < json_object_array_length(v); i++) {
		e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string) ||
		    !arg_word_ok(json_object_get_string(e))) {
			a->bad = 1;
			return;
		}
		arg_add(a, opt);
		arg_add(a, json_object_get_string(e));
	}
}

/* A key's id or label, in[key]: [A-Za-z0-9._-]{1,64}, after opt. */
static void
arg_name(struct con_argv *a, struct json_object *in, const char *key,
    const char *opt)
{
	const char	*s = arg_str(a, in, key);
	size_t		 i;

	if (s == NULL || strlen(s) > 64) {
		a->bad = 1;
		return;
	}
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-", s[i]) ==
		    NULL) {
			a->bad = 1;
			return;
		}
	if (opt != NULL)
		arg_add(a, opt);
	arg_add(a, s);
}

static void
arg_key(struct con_argv *a, struct json_object *in)
{
	arg_name(a, in, "key", NULL);
}

static void
arg_words(struct con_argv *a, const char *words)
{
	char	 buf[128], *p, *w;

	snprintf(buf, sizeof(buf), "%s", words);
	for (p = buf; (w = strsep(&p, " ")) != NULL;)
		arg_add(a, w);
}

/* ---- the routes ----------------------------------------------------- */

/* A key's scope, as api-keys create and scope take it: scope replaces
 * the whole of it, so every part is passed. */
static void
arg_scope(struct con_argv *a, struct json_object *in)
{
	arg_list(a, in, "models", "--models");
	arg_list(a, in, "engines", "--engines");
	arg_list(a, in, "cidr", "--cidr");
	arg_opt(a, in, "endpoints", "--endpoints", 0);
	arg_opt(a, in, "rpm", "--rpm", 0);
	arg_opt(a, in, "tpm", "--tpm", 0);
}

static void
r_key_create(struct con_argv *a, struct json_object *in)
{
	arg_name(a, in, "label", "--label");
	arg_opt(a, in, "expires", "--expires", 0);
	arg_scope(a, in);
}

static void
r_key_rotate(struct con_argv *a, struct json_object *in)
{
	arg_opt(a, in, "grace", "--grace", 0);
	arg_key(a, in);
}

static void
r_key_revoke(struct con_argv *a, struct json_object *in)
{
	arg_key(a, in);
}

static void
r_key_scope(struct con_argv *a, struct json_object *in)
{
	arg_scope(a, in);
	arg_key(a, in);
}

static void
r_usage(struct con_argv *a, struct json_object *in)
{
	arg_opt(a, in, "since", "--since", 0);
}

static void
r_audit(struct con_argv *a, struct json_object *in)
{
	const char	*s;
	char		*end;
	long		 n = 200;

	if ((s = arg_str(a, in, "count")) != NULL) {
		errno = 0;
		n = strtol(s, &end, 10);
		if (errno != 0 || *end != '\0' || n < 1 || n > 500)
			a->bad = 1;
	}
	{
		char	 num[16];

		snprintf(num, sizeof(num), "%ld", n);
		arg_add(a, num);
	}
}

static void
r_firewall(struct con_argv *a, struct json_object *in)
{
	arg_opt(a, in, "backend", "--backend", 0);
}

static void
r_proxy_start(struct con_argv *a, struct json_object *in)
{
	arg_opt(a, in, "mode", "--mode", 1);
	arg_opt(a, in, "port", "--port", 0);
	arg_opt(a, in, "bind", "--bind", 0);
}

static void
r_chat(struct con_argv *a, struct json_object *in)
{
	arg_opt(a, in, "model", "--model", 0);
	arg_add(a, "-");
}

static const struct con_route con_routes[] = {
	{ "GET", "/api/status", 0,
	    "status --json", NULL },
	{ "GET", "/api/doctor", 0,
	    "doctor --json", NULL },
	{ "GET", "/api/proxies", 0,
	    "proxy status --json", NULL },
	{ "GET", "/api/models", 0,
	    "models list --json", NULL },
	{ "POST", "/api/engines/detect", 0,
	    "engines detect --json", NULL },
	{ "GET", "/api/keys", 0,
	    "api-keys list --json", NULL },
	{ "POST", "/api/keys/create", 0,
	    "api-keys create --json", r_key_create },
	{ "POST", "/api/keys/rotate", 0,
	    "api-keys rotate --json", r_key_rotate },
	{ "POST", "/api/keys/revoke", 0,
	    "api-keys revoke --json", r_key_revoke },
	{ "POST", "/api/keys/scope", 0,
	    "api-keys scope --json", r_key_scope },
	{ "GET", "/api/usage", 0,
	    "usage --json", r_usage },
	{ "GET", "/api/audit", 0,
	    "audit tail --json --count", r_audit },
	{ "POST", "/api/audit/verify", 0,
	    "audit verify --json", NULL },
	{ "GET", "/api/firewall", CON_TEXT,
	    "firewall preview", r_firewall },
	{ "POST", "/api/proxy/start", 0,
	    "proxy start --json", r_proxy_start },
	{ "POST", "/api/chat", CON_STREAM,
	    "chat --stream --json", r_chat },
};
#define CON_NROUTES	(sizeof(con_routes) / sizeof(con_routes[0]))

/* ---- running flm ---------------------------------------------------- */

/* The request answered from now on: no close callback to this job. */
static void
job_detach(struct con_job *j)
{
	if (j->req != NULL)
		evhttp_connection_set_closecb(evhttp_request_get_connection(
		    j->req), NULL, NULL);
}

static void
job_free(struct con_job *j)
{
	if (j->out_ev != NULL)
		event_free(j->out_ev);
	if (j->err_ev != NULL)
		event_free(j->err_ev);
	if (j->in_ev != NULL)
		event_free(j->in_ev);
	if (j->tmo != NULL)
		event_free(j->tmo);
	if (j->out_fd != -1)
		close(j->out_fd);
	if (j->err_fd != -1)
		close(j->err_fd);
	if (j->in_fd != -1)
		close(j->in_fd);
	evbuffer_free(j->out);
	evbuffer_free(j->err);
	evbuffer_free(j->in);
	free(j);
	con_jobs--;
}

/* What flm said on stderr, its "flm: " dropped, one line. */
static char *
job_errmsg(struct con_job *j)
{
	size_t	 len = evbuffer_get_length(j->err);
	char	*s, *p;

	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	evbuffer_copyout(j->err, s, len);
	s[len] = '\0';
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	p = s;
	if (strncmp(p, "flm: ", 5) == 0)
		p += 5;
	else if (strncmp(p, "flm chat: ", 10) == 0)
		p += 10;
	memmove(s, p, strlen(p) + 1);
	if (*s == '\0') {
		free(s);
		s = strdup("flm failed and said nothing");
	}
	return s;
}

static int
job_code(int status, int timed_out)
{
	if (timed_out)
		return 504;
	if (!WIFEXITED(status))
		return 500;
	switch (WEXITSTATUS(status)) {
	case FLM_EX_OK:
		return 200;
	case FLM_EX_USAGE:
		return 400;
	case FLM_EX_NODAEMON:
		return 502;
	case FLM_EX_PERM:
		return 403;
	default:
		return 409;
	}
}

/* Complete lines of out to the client, as they came. */
static void
job_relay(struct con_job *j, int all)
{
	struct evbuffer_ptr	 p;
	size_t			 n;

	if (j->req == NULL) {
		evbuffer_drain(j->out, evbuffer_get_length(j->out));
		return;
	}
	p = evbuffer_search_eol(j->out, NULL, NULL, EVBUFFER_EOL_LF);
	if (p.pos == -1 && !all)
		return;
	n = p.pos == -1 ? evbuffer_get_length(j->out) : (size_t)p.pos + 1;
	if (all)
		n = evbuffer_get_length(j->out);
	if (n == 0)
		return;
	if (!j->started) {
		con_headers(j->req, "application/x-ndjson");
		evhttp_send_reply_start(j->req, 200, "OK");
		j->started = 1;
	}
	{
		struct evbuffer	*chunk = evbuffer_new();

		if (chunk == NULL)
			return;
		evbuffer_remove_buffer(j->out, chunk, n);
		evhttp_send_reply_chunk(j->req, chunk);
		evbuffer_free(chunk);
	}
}

/* What flm printed is JSON: doctor and audit verify print their
 * findings and exit 1 when one is bad, and the findings are the answer. */
static int
job_findings(struct con_job *j)
{
	struct json_object	*o;
	size_t			 len = evbuffer_get_length(j->out);

	if (len == 0)
		return 0;
	o = json_parse_buf((const char *)evbuffer_pullup(j->out,
	    (ssize_t)len), len);
	json_object_put(o);
	return o != NULL;
}

/* A failure as {"error", "exit"}, or its message for a stream. */
static struct json_object *
job_failure(struct con_job *j, int status)
{
	struct json_object	*o = json_object_new_object();
	char			*msg;

	msg = j->timed_out ? strdup("flm did not answer within 120 seconds") :
	    job_errmsg(j);
	json_object_object_add(o, "error", json_object_new_string(msg ? msg :
	    "out of memory"));
	if (!j->timed_out && !(j->flags & CON_STREAM))
		json_object_object_add(o, "exit", json_object_new_int(
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1));
	free(msg);
	return o;
}

/* A stream's end: the rest of it, and its error as a last line. */
static void
job_stream_end(struct con_job *j, int code, int status)
{
	struct json_object	*o;

	job_relay(j, 1);
	if (code != 200) {
		o = job_failure(j, status);
		if (!j->started) {
			con_json(j->req, code, o);
			json_object_put(o);
			return;
		}
		evbuffer_add_printf(j->out, "%s\n",
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		job_relay(j, 1);
	}
	if (!j->started)
		con_reply(j->req, 200, "application/x-ndjson", "", 0);
	else
		evhttp_send_reply_end(j->req);
}

/* The command ended: its answer, as the route wants it. */
static void
job_done(struct con_job *j, int status)
{
	struct json_object	*o;
	const char		*s;
	size_t			 len;
	int			 code = job_code(status, j->timed_out);

	if (j->req == NULL)
		goto out;
	job_detach(j);
	if (j->flags & CON_STREAM) {
		job_stream_end(j, code, status);
		goto out;
	}
	if (code == 409 && job_findings(j))
		code = 200;
	if (code != 200) {
		o = job_failure(j, status);
		con_json(j->req, code, o);
		json_object_put(o);
		goto out;
	}
	len = evbuffer_get_length(j->out);
	s = (const char *)evbuffer_pullup(j->out, (ssize_t)len);
	if (j->flags & CON_TEXT) {
		o = json_object_new_object();
		json_object_object_add(o, "text",
		    json_object_new_string_len(s ? s : "", (int)len));
		con_json(j->req, 200, o);
		json_object_put(o);
	} else
		con_reply(j->req, 200, "application/json", s ? s : "", len);
out:
	job_free(j);
}

static void
job_check(struct con_job *j)
{
	int	 status;

	if (j->out_fd != -1 || j->err_fd != -1)
		return;
	/* Both pipes at their end: flm has exited or is about to. */
	while (waitpid(j->pid, &status, 0) == -1)
		if (errno != EINTR) {
			status = 0x7f00;	/* "exited 127" */
			break;
		}
	job_done(j, status);
}

static void
job_read(evutil_socket_t fd, short ev, void *arg)
{
	struct con_job	*j = arg;
	int		 is_out = fd == j->out_fd;
	struct evbuffer	*b = is_out ? j->out : j->err;
	int		 n;

	(void)ev;
	n = evbuffer_read(b, fd, 65536);
	if (n > 0) {
		if (evbuffer_get_length(b) > (is_out ? CON_OUT_MAX :
		    CON_ERR_MAX)) {
			kill(j->pid, SIGKILL);
			evbuffer_drain(b, evbuffer_get_length(b));
		}
		if (is_out && (j->flags & CON_STREAM))
			job_relay(j, 0);
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (is_out) {
		event_del(j->out_ev);
		close(j->out_fd);
		j->out_fd = -1;
	} else {
		event_del(j->err_ev);
		close(j->err_fd);
		j->err_fd = -1;
	}
	job_check(j);
}

/* The chat message to flm's stdin, then its end. */
static void
job_write(evutil_socket_t fd, short ev, void *arg)
{
	struct con_job	*j = arg;

	(void)ev;
	if (evbuffer_get_length(j->in) > 0 &&
	    evbuffer_write(j->in, fd) == -1 && errno != EAGAIN &&
	    errno != EINTR)
		evbuffer_drain(j->in, evbuffer_get_length(j->in));
	if (evbuffer_get_length(j->in) == 0) {
		event_del(j->in_ev);
		close(j->in_fd);
		j->in_fd = -1;
	}
}

static void
job_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct con_job	*j = arg;

	(void)fd;
	(void)ev;
	j->timed_out = 1;
	kill(j->pid, SIGKILL);
}

/* The browser went away: so does the command. */
static void
job_gone(struct evhttp_connection *evcon, void *arg)
{
	struct con_job	*j = arg;

	(void)evcon;
	j->req = NULL;
	kill(j->pid, SIGTERM);
}

static int
nonblock(int fd)
{
	int	 fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* In the child: its three pipes on 0, 1, 2, then flm. */
static void __attribute__((noreturn))
job_exec(struct con_argv *a, int pin[2], int pout[2], int perr[2],
    const char *key)
{
	if (dup2(pin[0], 0) == -1 || dup2(pout[1], 1) == -1 ||
	    dup2(perr[1], 2) == -1)
		_exit(127);
	/* The chat key rides in the environment, never in argv. */
	if (key != NULL && setenv("FLM_API_KEY", key, 1) == -1)
		_exit(127);
	if (key == NULL)
		unsetenv("FLM_API_KEY");
	execv(con_exe, a->v);
	dprintf(2, "flm: cannot run %s: %s\n", con_exe, strerror(errno));
	_exit(127);
}

static void
job_start(struct evhttp_request *req, const struct con_route *r,
    struct con_argv *a, const char *input, const char *key)
{
	struct con_job	*j;
	struct timeval	 tv = { CON_JOB_SECS, 0 };
	int		 pin[2], pout[2], perr[2];

	if (con_jobs >= CON_JOBS_MAX) {
		con_error(req, 503, "too many commands running; try again");
		return;
	}
	if (pipe2(pin, O_CLOEXEC) == -1) {
		con_error(req, 500, strerror(errno));
		return;
	}
	if (pipe2(pout, O_CLOEXEC) == -1) {
		close(pin[0]);
		close(pin[1]);
		con_error(req, 500, strerror(errno));
		return;
	}
	if (pipe2(perr, O_CLOEXEC) == -1) {
		close(pin[0]);
		close(pin[1]);
		close(pout[0]);
		close(pout[1]);
		con_error(req, 500, strerror(errno));
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		con_oom();
	j->pid = fork();
	if (j->pid == 0)
		job_exec(a, pin, pout, perr, key);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	j->in_fd = pin[1];
	j->out_fd = pout[0];
	j->err_fd = perr[0];
	con_jobs++;
	if ((j->out = evbuffer_new()) == NULL ||
	    (j->err = evbuffer_new()) == NULL ||
	    (j->in = evbuffer_new()) == NULL)
		con_oom();
	if (j->pid == -1) {
		con_error(req, 500, strerror(errno));
		close(j->out_fd);
		close(j->err_fd);
		j->out_fd = j->err_fd = -1;
		job_free(j);
		return;
	}
	j->req = req;
	j->flags = r->flags;
	nonblock(j->out_fd);
	nonblock(j->err_fd);
	nonblock(j->in_fd);
	j->out_ev = event_new(con_base, j->out_fd, EV_READ | EV_PERSIST,
	    job_read, j);
	j->err_ev = event_new(con_base, j->err_fd, EV_READ | EV_PERSIST,
	    job_read, j);
	j->in_ev = event_new(con_base, j->in_fd, EV_WRITE | EV_PERSIST,
	    job_write, j);
	j->tmo = evtimer_new(con_base, job_timeout, j);
	if (j->out_ev == NULL || j->err_ev == NULL || j->in_ev == NULL ||
	    j->tmo == NULL)
		con_oom();
	if (input != NULL)
		evbuffer_add(j->in, input, strlen(input));
	event_add(j->out_ev, NULL);
	event_add(j->err_ev, NULL);
	event_add(j->in_ev, NULL);
	evtimer_add(j->tmo, &tv);
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    job_gone, j);
}

/* ---- requests ------------------------------------------------------- */

static int
con_host_ok(struct evhttp_request *req)
{
	const char	*h = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Host");

	return h != NULL && (strcmp(h, con_host[0]) == 0 ||
	    strcmp(h, con_host[1]) == 0);
}

static int
con_secret_eq(const char *have, size_t len, const char *want)
{
	return len == CON_SECRET_HEX && want[0] != '\0' &&
	    CRYPTO_memcmp(have, want, CON_SECRET_HEX) == 0;
}

/* The session cookie's value is ours. */
static int
con_session_ok(struct evhttp_request *req)
{
	const char	*c = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Cookie");
	const char	*p;
	size_t		 len;

	if (c == NULL || con_session[0] == '\0')
		return 0;
	for (p = c; (p = strstr(p, CON_COOKIE "=")) != NULL; p++) {
		if (p != c && p[-1] != ' ' && p[-1] != ';')
			continue;
		p += sizeof(CON_COOKIE);
		len = strcspn(p, "; ");
		if (con_secret_eq(p, len, con_session))
			return 1;
	}
	return 0;
}

/* A POST from our own page: JSON, our CSRF token, our origin. */
static int
con_csrf_ok(struct evhttp_request *req)
{
	struct evkeyvalq	*h = evhttp_request_get_input_headers(req);
	const char		*t = evhttp_find_header(h, "X-FLM-CSRF");
	const char		*ct = evhttp_find_header(h, "Content-Type");
	const char		*o = evhttp_find_header(h, "Origin");
	const char		*host = evhttp_find_header(h, "Host");

	if (t == NULL || !con_secret_eq(t, strlen(t), con_csrf))
		return 0;
	if (ct == NULL || strncmp(ct, "application/json", 16) != 0)
		return 0;
	if (o != NULL && (strncmp(o, "http://", 7) != 0 || host == NULL ||
	    strcmp(o + 7, host) != 0))
		return 0;
	return 1;
}

static void
con_random(char out[CON_SECRET_HEX + 1])
{
	unsigned char	 b[CON_SECRET_HEX / 2];
	int		 i;

	if (RAND_bytes(b, sizeof(b)) != 1) {
		fprintf(stderr, "flm console: no randomness\n");
		exit(FLM_EX_ERROR);
	}
	for (i = 0; i < (int)sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	OPENSSL_cleanse(b, sizeof(b));
}

static void
con_login(struct evhttp_request *req)
{
	struct evkeyvalq	 q;
	const char		*t, *query;

	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	memset(&q, 0, sizeof(q));
	if (query == NULL || evhttp_parse_query_str(query, &q) == -1 ||
	    (t = evhttp_find_header(&q, "token")) == NULL ||
	    con_token_spent || !con_secret_eq(t, strlen(t), con_token)) {
		evhttp_clear_headers(&q);
		fprintf(stderr, "flm console: a login with a wrong or spent "
		    "token was refused\n");
		con_page(req, 403, "This link is wrong or was used already. "
		    "Stop flm console and start it again for a new one.");
		return;
	}
	evhttp_clear_headers(&q);
	con_token_spent = 1;
	OPENSSL_cleanse(con_token, sizeof(con_token));
	con_random(con_session);
	con_random(con_csrf);
	{
		char	 cookie[160];

		snprintf(cookie, sizeof(cookie), CON_COOKIE "=%s; Path=/; "
		    "HttpOnly; SameSite=Strict", con_session);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Set-Cookie", cookie);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Location", "/");
	}
	fprintf(stderr, "flm console: logged in\n");
	con_page(req, 303, "Logged in: <a href=\"/\">continue</a>.");
}

static void
con_session_info(struct evhttp_request *req)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "csrf", json_object_new_string(con_csrf));
	json_object_object_add(o, "version",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "statedir", con_dir ?
	    json_object_new_string(con_dir) : NULL);
	con_json(req, 200, o);
	json_object_put(o);
}

/* The body as JSON (an object), or the query's pairs as one. */
static struct json_object *
con_input(struct evhttp_request *req, int post)
{
	struct evbuffer		*b;
	struct json_object	*o;
	struct evkeyvalq	 q;
	struct evkeyval		*kv;
	const char		*query;
	unsigned char		*p;
	size_t			 len;

	if (post) {
		b = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(b);
		if (len == 0)
			return json_object_new_object();
		/* A chat's key rides in it: the parser's copy and the
		 * body are wiped. */
		p = evbuffer_pullup(b, (ssize_t)len);
		o = json_parse_buf_secret((const char *)p, len);
		explicit_bzero(p, len);
		if (o != NULL && !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
		}
		return o;
	}
	o = json_object_new_object();
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	memset(&q, 0, sizeof(q));
	if (query != NULL && evhttp_parse_query_str(query, &q) == 0)
		TAILQ_FOREACH(kv, &q, next)
			json_object_object_add(o, kv->key,
			    json_object_new_string(kv->value));
	evhttp_clear_headers(&q);
	return o;
}

static void
con_api(struct evhttp_request *req, const char *path, int post)
{
	const struct con_route	*r = NULL;
	struct json_object	*in, *v;
	struct con_argv		 a;
	const char		*msg = NULL, *key = NULL;
	size_t			 i;

	for (i = 0; i < CON_NROUTES; i++)
		if (strcmp(con_routes[i].path, path) == 0) {
			r = &con_routes[i];
			break;
		}
	if (r == NULL) {
		con_error(req, 404, "no such route");
		return;
	}
	if (strcmp(r->method, post ? "POST" : "GET") != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", r->method);
		con_error(req, 405, "wrong method");
		return;
	}
	if (post && !con_csrf_ok(req)) {
		fprintf(stderr, "flm console: %s refused: CSRF check failed\n",
		    path);
		con_error(req, 403, "CSRF check failed");
		return;
	}
	if ((in = con_input(req, post)) == NULL) {
		con_error(req, 400, "the body is not a JSON object");
		return;
	}
	memset(&a, 0, sizeof(a));
	arg_add(&a, "flm");
	if (con_dir != NULL) {
		arg_add(&a, "-D");
		arg_add(&a, con_dir);
	}
	arg_words(&a, r->words);
	if (r->build != NULL)
		r->build(&a, in);
	if (r->flags & CON_STREAM) {
		if (json_object_object_get_ex(in, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			msg = json_object_get_string(v);
		if (json_object_object_get_ex(in, "key", &v) &&
		    json_object_is_type(v, json_type_string))
			key = json_object_get_string(v);
		if (msg == NULL || *msg == '\0' || key == NULL ||
		    *key == '\0' || strlen(key) > 512)
			a.bad = 1;
	}
	if (a.bad)
		con_error(req, 400, "a missing or malformed argument");
	else
		job_start(req, r, &a, msg, key);
	arg_free(&a);
	wipe_key(in);
	json_object_put(in);
}

static void
con_static(struct evhttp_request *req, const char *path)
{
	size_t	 i;

	for (i = 0; i < console_files_count; i++)
		if (strcmp(console_files[i].path, path) == 0) {
			con_reply(req, 200, console_files[i].type,
			    console_files[i].data, console_files[i].len);
			return;
		}
	con_page(req, 404, "Not found.");
}

static void
con_request(struct evhttp_request *req, void *arg)
{
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	const char		*path;
	int			 api;

	(void)arg;
	/* DNS rebinding: a name that resolves here is not our origin. */
	if (!con_host_ok(req)) {
		con_page(req, 421, "This console answers to 127.0.0.1 and "
		    "localhost only.");
		return;
	}
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL)
		path = "/";
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST &&
	    cmd != EVHTTP_REQ_HEAD) {
		con_page(req, 405, "Method not allowed.");
		return;
	}
	if (strcmp(path, "/login") == 0) {
		con_login(req);
		return;
	}
	/* Browsers ask for it on their own: no icon, no log line. */
	if (strcmp(path, "/favicon.ico") == 0) {
		con_reply(req, 204, "text/plain", "", 0);
		return;
	}
	api = strncmp(path, "/api/", 5) == 0;
	if (!con_session_ok(req)) {
		if (api)
			con_error(req, 401, "not logged in: open the URL flm "
			    "console printed");
		else
			con_page(req, 403, "Open the URL that flm console "
			    "printed when it started.");
		return;
	}
	if (!api) {
		con_static(req, path);
		return;
	}
	if (strcmp(path, "/api/session") == 0) {
		con_session_info(req);
		return;
	}
	con_api(req, path, cmd == EVHTTP_REQ_POST);
}

static void
con_stop(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	fprintf(stderr, "flm console: stopped by signal %d\n", (int)sig);
	event_base_loopexit(con_base, NULL);
}

/* Bound on 127.0.0.1: the port it got. */
static int
con_listen(int port)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);

	if ((bs = evhttp_bind_socket_with_handle(con_http, "127.0.0.1",
	    (ev_uint16_t)port)) == NULL) {
		fprintf(stderr, "flm console: cannot listen on 127.0.0.1:%d: "
		    "%s\n", port, strerror(errno));
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &len) == -1)
		return -1;
	return ntohs(sin.sin_port);
}

int
cmd_console(struct cli *c, int argc, char **argv)
{
	struct event	*sigint, *sigterm;
	ssize_t		 n;
	int		 port;

	(void)argc;
	(void)argv;
	if ((n = readlink("/proc/self/exe", con_exe, sizeof(con_exe) - 1)) <=
	    0) {
		fprintf(stderr, "flm console: cannot find its own binary: %s\n",
		    strerror(errno));
		return FLM_EX_ERROR;
	}
	con_exe[n] = '\0';
	con_dir = c->dir;
	signal(SIGPIPE, SIG_IGN);
	if ((con_base = event_base_new()) == NULL ||
	    (con_http = evhttp_new(con_base)) == NULL)
		con_oom();
	evhttp_set_max_body_size(con_http, CON_BODY_MAX);
	evhttp_set_max_headers_size(con_http, 16384);
	evhttp_set_allowed_methods(con_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(con_http, 150);
	evhttp_set_gencb(con_http, con_request, NULL);
	if ((port = con_listen(c->port_set ? c->port : 0)) == -1)
		return FLM_EX_ERROR;
	snprintf(con_host[0], sizeof(con_host[0]), "127.0.0.1:%d", port);
	snprintf(con_host[1], sizeof(con_host[1]), "localhost:%d", port);
	con_random(con_token);
	printf("flm console: http://127.0.0.1:%d/login?token=%s\n", port,
	    con_token);
	fflush(stdout);
	fprintf(stderr, "flm console: open the link above in a browser on "
	    "this machine (from another: ssh -L %d:127.0.0.1:%d); ^C stops "
	    "it\n", port, port);
	sigint = evsignal_new(con_base, SIGINT, con_stop, NULL);
	sigterm = evsignal_new(con_base, SIGTERM, con_stop, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	event_base_dispatch(con_base);
	event_free(sigint);
	event_free(sigterm);
	evhttp_free(con_http);
	event_base_free(con_base);
	OPENSSL_cleanse(con_session, sizeof(con_session));
	OPENSSL_cleanse(con_csrf, sizeof(con_csrf));
	return FLM_EX_OK;
}
