/*
 * DNS-01 for flm-keyd.  keyd asks for the TXT record of a challenge it
 * is about to answer (IMSG_ACME_DNS {handle, op "add", name, value});
 * flmd checks that the name is _acme-challenge. of a domain of that
 * dns-01 handle, runs acme.dns_hook through its spawner ("HOOK add NAME
 * VALUE"), waits acme.dns_wait seconds for the record to spread and
 * answers IMSG_ACME_DNS_DONE {ok} or {error} with keyd's peerid.  When
 * the order ends keyd asks for "remove" of what was added; that needs
 * no answer, and is refused for a record flmd did not add.
 *
 * One hook runs at a time, each for at most DNS_HOOK_SECS: one that
 * overruns is killed with its whole session.  What it prints (the first
 * DNS_OUT_MAX bytes) becomes the error keyd, the log and the admin see.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "acme.h"
#include "flmd.h"
#include "jsonbuf.h"
#include "log.h"

#define DNS_HOOK_SECS	60	/* then SIGKILL to its session */
#define DNS_QUEUE_MAX	64	/* hooks asked for and not yet run */
#define DNS_RECORDS_MAX	64	/* records added and not removed */
#define DNS_OUT_MAX	512	/* of a hook's output, kept for the error */
#define DNS_TICK_SECS	15	/* progress while the record spreads */

struct dns_run {
	TAILQ_ENTRY(dns_run)	 entry;
	char			 handle[80];
	char			 op[8];
	char			 name[ACME_DNS_NAME_MAX + 1];
	char			 value[ACME_DNS_VALUE_MAX + 1];
	uint32_t		 peerid;	/* keyd's add; 0: remove */
	pid_t			 pid;
	int			 fd;		/* the hook's output */
	struct event		*ev_out;
	struct event		*ev_timer;	/* overrun, then the wait */
	struct timespec		 started;
	int			 killed;
	int			 wait_left;	/* seconds of the spread */
	int			 tick;		/* seconds the timer is set to */
	char			 out[DNS_OUT_MAX];
	size_t			 outlen;
};

struct dns_record {
	char	 name[ACME_DNS_NAME_MAX + 1];
	char	 value[ACME_DNS_VALUE_MAX + 1];
};

static TAILQ_HEAD(, dns_run)	 dns_queue = TAILQ_HEAD_INITIALIZER(dns_queue);
static TAILQ_HEAD(, dns_run)	 dns_waits = TAILQ_HEAD_INITIALIZER(dns_waits);
static struct dns_run		*dns_current;
static struct dns_record	 dns_records[DNS_RECORDS_MAX];
static int			 dns_nrecords;

static void	dns_next(void);

static void
dns_free(struct dns_run *r)
{
	if (r->ev_out != NULL)
		event_free(r->ev_out);
	if (r->ev_timer != NULL)
		event_free(r->ev_timer);
	if (r->fd != -1)
		close(r->fd);
	free(r);
}

static long
dns_ms(const struct dns_run *r)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - r->started.tv_sec) * 1000 +
	    (now.tv_nsec - r->started.tv_nsec) / 1000000;
}

static int
dns_record_find(const char *name, const char *value)
{
	int	 i;

	for (i = 0; i < dns_nrecords; i++)
		if (strcmp(dns_records[i].name, name) == 0 &&
		    strcmp(dns_records[i].value, value) == 0)
			return i;
	return -1;
}

static void
dns_reply(struct dns_run *r, const char *error)
{
	struct json_object	*o = json_object_new_object();

	if (error == NULL)
		json_object_object_add(o, "ok", json_object_new_boolean(1));
	else
		json_object_object_add(o, "error",
		    json_object_new_string(error));
	if (proc_forward(PROC_KEYD, IMSG_ACME_DNS_DONE, r->peerid, o) == -1)
		log_warnx("DNS hook for %s: flm-keyd is gone; its answer is "
		    "lost", r->name);
	json_object_put(o);
}

/* The admin's terminal, if flm proxy start waits: how the DNS goes. */
static void __attribute__((format(printf, 2, 3)))
dns_progress(struct dns_run *r, const char *fmt, ...)
{
	struct json_object	*o = json_object_new_object();
	char			 detail[ACME_DNS_NAME_MAX + 96];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "handle", json_object_new_string(r->handle));
	json_object_object_add(o, "step", json_object_new_string("challenge"));
	json_object_object_add(o, "ms", json_object_new_int64(dns_ms(r)));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	proxy_acme_progress(o);
	json_object_put(o);
}

/* The next tick of the spread wait: DNS_TICK_SECS, or what is left. */
static void
dns_wait_arm(struct dns_run *r)
{
	struct timeval	 tv = { 0, 0 };

	r->tick = r->wait_left < DNS_TICK_SECS ? r->wait_left : DNS_TICK_SECS;
	tv.tv_sec = r->tick;
	evtimer_add(r->ev_timer, &tv);
}

/* The spread wait: a progress line each tick, the answer at the end. */
static void
dns_wait_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct dns_run	*r = arg;

	(void)fd;
	(void)ev;
	if ((r->wait_left -= r->tick) <= 0) {
		TAILQ_REMOVE(&dns_waits, r, entry);
		dns_reply(r, NULL);
		dns_free(r);
		return;
	}
	dns_progress(r, "TXT %s: %d s left for it to spread", r->name,
	    r->wait_left);
	dns_wait_arm(r);
}

/* An added record: answered once acme.dns_wait has passed. */
static void
dns_added(struct dns_run *r)
{
	int	 wait = config_dns_wait();

	if (dns_record_find(r->name, r->value) == -1 &&
	    dns_nrecords < DNS_RECORDS_MAX) {
		snprintf(dns_records[dns_nrecords].name,
		    sizeof(dns_records[0].name), "%s", r->name);
		snprintf(dns_records[dns_nrecords].value,
		    sizeof(dns_records[0].value), "%s", r->value);
		dns_nrecords++;
	}
	log_info("DNS hook added TXT %s in %ld ms; answering in %d s",
	    r->name, dns_ms(r), wait);
	if (wait == 0) {
		dns_reply(r, NULL);
		dns_free(r);
		return;
	}
	dns_progress(r, "TXT %s added; %d s for it to spread", r->name,
	    wait);
	/* The overrun timer, now the wait's. */
	evtimer_del(r->ev_timer);
	event_assign(r->ev_timer, env->base, -1, 0, dns_wait_tick, r);
	r->wait_left = wait;
	TAILQ_INSERT_TAIL(&dns_waits, r, entry);
	dns_wait_arm(r);
}

static void
dns_read(evutil_socket_t fd, short ev, void *arg)
{
	struct dns_run	*r = arg;
	char		 buf[1024];
	ssize_t		 n;
	size_t		 room;

	(void)ev;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		room = sizeof(r->out) - 1 - r->outlen;
		if ((size_t)n < room)
			room = (size_t)n;
		memcpy(r->out + r->outlen, buf, room);
		r->outlen += room;
	}
	if (r->ev_out != NULL && (n == 0 || (n == -1 && errno != EAGAIN &&
	    errno != EINTR)))
		event_del(r->ev_out);	/* EOF: the exit status follows */
}

/* The hook's output, one line, fit for a log and an error message. */
static void
dns_output_line(const struct dns_run *r, char *buf, size_t bufsz)
{
	size_t	 i, n = 0;
	char	 c;

	for (i = 0; i < r->outlen && n + 3 < bufsz; i++) {
		if ((c = r->out[i]) == '\n') {
			if (n > 0 && i + 1 < r->outlen) {
				buf[n++] = ';';
				buf[n++] = ' ';
			}
			continue;
		}
		buf[n++] = c >= ' ' && c < 0x7f ? c : '?';
	}
	buf[n] = '\0';
}

/* The hook is over: status as waitpid said, -1 if it never ran. */
static void
dns_done(struct dns_run *r, int status)
{
	char	 out[DNS_OUT_MAX];
	char	 err[DNS_OUT_MAX + ACME_DNS_NAME_MAX + 64];

	dns_current = NULL;
	if (r->fd != -1)
		dns_read(r->fd, EV_READ, r);
	dns_output_line(r, out, sizeof(out));
	err[0] = '\0';
	if (status == -1)
		snprintf(err, sizeof(err), "acme.dns_hook %s %s: %s", r->op,
		    r->name, out[0] != '\0' ? out : "cannot run it");
	else if (r->killed)
		snprintf(err, sizeof(err), "acme.dns_hook %s %s: killed after "
		    "%d s%s%s", r->op, r->name, DNS_HOOK_SECS,
		    out[0] != '\0' ? ": " : "", out);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(err, sizeof(err), "acme.dns_hook %s %s: %s %d%s%s",
		    r->op, r->name, WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    out[0] != '\0' ? ": " : "", out);
	if (strcmp(r->op, "remove") == 0) {
		int	 i = dns_record_find(r->name, r->value);

		if (err[0] != '\0')
			log_warnx("%s (the record stays)", err);
		else if (i != -1) {
			dns_records[i] = dns_records[--dns_nrecords];
			log_info("DNS hook removed TXT %s", r->name);
		}
		dns_free(r);
	} else if (err[0] != '\0') {
		log_warnx("%s", err);
		dns_reply(r, err);
		dns_free(r);
	} else
		dns_added(r);
	dns_next();
}

static void
dns_overrun(evutil_socket_t fd, short ev, void *arg)
{
	struct dns_run	*r = arg;

	(void)fd;
	(void)ev;
	log_warnx("DNS hook %s %s (pid %ld) still runs after %d s: killing "
	    "it", r->op, r->name, (long)r->pid, DNS_HOOK_SECS);
	r->killed = 1;
	/* Its own session (setsid in the spawner): all it started too. */
	if (kill(-r->pid, SIGKILL) == -1)
		kill(r->pid, SIGKILL);
}

/* The next hook asked for, if none runs. */
static void
dns_next(void)
{
	struct dns_run	*r;
	struct timeval	 tv = { DNS_HOOK_SECS, 0 };
	char		 hbuf[ACME_HOOK_MAX + 1], ubuf[ACME_USER_MAX + 1];
	const char	*hook, *user;
	int		 p[2], err;
	pid_t		 pid;

	if (dns_current != NULL || (r = TAILQ_FIRST(&dns_queue)) == NULL)
		return;
	TAILQ_REMOVE(&dns_queue, r, entry);
	dns_current = r;
	clock_gettime(CLOCK_MONOTONIC, &r->started);
	hook = config_value("acme.dns_hook", "", hbuf, sizeof(hbuf));
	user = config_value("acme.dns_user", "nobody", ubuf, sizeof(ubuf));
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(r->out, sizeof(r->out), "pipe: %s", strerror(errno));
		r->outlen = strlen(r->out);
		dns_done(r, -1);
		return;
	}
	r->fd = p[0];
	if (!acme_hook_valid(hook) || !acme_user_valid(user)) {
		close(p[1]);
		snprintf(r->out, sizeof(r->out), "acme.dns_hook is not set "
		    "(flm config set acme.dns_hook /path/to/hook)");
		r->outlen = strlen(r->out);
		dns_done(r, -1);
		return;
	}
	pid = spawn_hook_run(hook, user, r->op, r->name, r->value, p[1], &err);
	close(p[1]);
	if (pid <= 0) {
		if (pid == -1) {
			snprintf(r->out, sizeof(r->out), "cannot start it: %s",
			    strerror(err));
			r->outlen = strlen(r->out);
		}
		dns_done(r, -1);	/* 0: the spawner wrote why */
		return;
	}
	r->pid = pid;
	if (r->peerid != 0)
		dns_progress(r, "TXT %s: acme.dns_hook runs", r->name);
	if ((r->ev_out = event_new(env->base, r->fd, EV_READ | EV_PERSIST,
	    dns_read, r)) == NULL || (r->ev_timer = evtimer_new(env->base,
	    dns_overrun, r)) == NULL)
		fatalx("%s: event_new", __func__);
	event_add(r->ev_out, NULL);
	evtimer_add(r->ev_timer, &tv);
}

/* proc_reap: 1 if pid was the hook running. */
int
acme_dns_reaped(pid_t pid, int status)
{
	if (dns_current == NULL || dns_current->pid != pid)
		return 0;
	evtimer_del(dns_current->ev_timer);
	dns_done(dns_current, status);
	return 1;
}

/* 1 if an add of this record is queued, runs or waits for the spread:
 * its remove, queued after it, is keyd's to ask. */
static int
dns_adding(const char *name, const char *value)
{
	struct dns_run	*r;

	if (dns_current != NULL && strcmp(dns_current->op, "add") == 0 &&
	    strcmp(dns_current->name, name) == 0 &&
	    strcmp(dns_current->value, value) == 0)
		return 1;
	TAILQ_FOREACH(r, &dns_queue, entry)
		if (strcmp(r->op, "add") == 0 && strcmp(r->name, name) == 0 &&
		    strcmp(r->value, value) == 0)
			return 1;
	TAILQ_FOREACH(r, &dns_waits, entry)
		if (strcmp(r->name, name) == 0 && strcmp(r->value, value) == 0)
			return 1;
	return 0;
}

/* keyd's IMSG_ACME_DNS, checked by the caller to be an object. */
int
acme_dns_request(uint32_t peerid, struct json_object *o)
{
	struct dns_run	*r;
	const char	*handle, *op, *name, *value, *why = NULL;
	int		 n = 0;

	if (json_object_object_length(o) != 4 ||
	    (handle = json_get_string(o, "handle", 79)) == NULL ||
	    (op = json_get_string(o, "op", 7)) == NULL ||
	    (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0) ||
	    (name = json_get_string(o, "name", ACME_DNS_NAME_MAX)) == NULL ||
	    !acme_dns_name_valid(name) ||
	    (value = json_get_string(o, "value", ACME_DNS_VALUE_MAX)) == NULL ||
	    !acme_b64url_valid(value, ACME_DNS_VALUE_MAX))
		return -1;
	TAILQ_FOREACH(r, &dns_queue, entry)
		n++;
	if (strcmp(op, "add") == 0 && !proxy_acme_dns_name(handle, name +
	    sizeof(ACME_DNS_PREFIX) - 1))
		why = "not a name of a dns-01 proxy";
	else if (strcmp(op, "remove") == 0 && dns_record_find(name, value) ==
	    -1 && !dns_adding(name, value))
		why = "not a record flmd added";
	else if (n >= DNS_QUEUE_MAX)
		why = "too many DNS hooks waiting";
	if (why != NULL) {
		log_warnx("flm-keyd asked to %s TXT %s for %s: %s; refused",
		    op, name, handle, why);
		if (strcmp(op, "add") == 0) {
			struct dns_run	 tmp = { .peerid = peerid };

			dns_reply(&tmp, why);
		}
		return 0;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("%s", __func__);
	r->fd = -1;
	r->peerid = strcmp(op, "add") == 0 ? peerid : 0;
	snprintf(r->handle, sizeof(r->handle), "%s", handle);
	snprintf(r->op, sizeof(r->op), "%s", op);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->value, sizeof(r->value), "%s", value);
	TAILQ_INSERT_TAIL(&dns_queue, r, entry);
	dns_next();
	return 0;
}

/* At shutdown: what is queued is dropped (a hook running finishes on
 * its own). */
void
acme_dns_cleanup(void)
{
	struct dns_run	*r;

	while ((r = TAILQ_FIRST(&dns_queue)) != NULL) {
		TAILQ_REMOVE(&dns_queue, r, entry);
		dns_free(r);
	}
	while ((r = TAILQ_FIRST(&dns_waits)) != NULL) {
		TAILQ_REMOVE(&dns_waits, r, entry);
		dns_free(r);
	}
	if (dns_current != NULL) {
		dns_free(dns_current);
		dns_current = NULL;
	}
}
