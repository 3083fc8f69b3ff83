/*
 * libcurl's multi interface on proxyd's libevent loop: the one HTTP
 * client proxyd has for its own requests (engine probes, ACME).  A
 * transfer is a struct pcurl; its done callback runs once, from the
 * loop, when it ends.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "proxyd.h"

static CURLM		*pcurl_multi;
static struct event	*pcurl_timer;

static void	pcurl_check_done(void);

static void
pcurl_sock_event(evutil_socket_t fd, short ev, void *arg)
{
	int	 running, flags = 0;

	(void)arg;
	if (ev & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (ev & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(pcurl_multi, fd, flags, &running);
	pcurl_check_done();
}

static int
pcurl_sock_cb(CURL *h, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct event	*ev = sockp;
	short		 kind;

	(void)h;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (ev != NULL)
			event_free(ev);
		curl_multi_assign(pcurl_multi, s, NULL);
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (ev != NULL)
		event_free(ev);
	ev = event_new(px->c.base, s, kind, pcurl_sock_event, NULL);
	event_add(ev, NULL);
	curl_multi_assign(pcurl_multi, s, ev);
	return 0;
}

static void
pcurl_timer_event(evutil_socket_t fd, short ev, void *arg)
{
	int	 running;

	(void)fd;
	(void)ev;
	(void)arg;
	curl_multi_socket_action(pcurl_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	pcurl_check_done();
}

static int
pcurl_timer_cb(CURLM *m, long ms, void *userp)
{
	struct timeval	 tv;

	(void)m;
	(void)userp;
	if (ms < 0) {
		evtimer_del(pcurl_timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(pcurl_timer, &tv);
	return 0;
}

static size_t
pcurl_write(char *p, size_t size, size_t n, void *arg)
{
	struct pcurl	*r = arg;
	size_t		 len = size * n;
	char		*nb;

	if (r->len + len > r->max) {
		r->truncated = 1;
		return 0;	/* aborts the transfer */
	}
	if ((nb = realloc(r->body, r->len + len + 1)) == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* The headers a caller asked for (pcurl_want_headers): value trimmed,
 * cut at its buffer. */
static size_t
pcurl_header(char *p, size_t size, size_t n, void *arg)
{
	static const struct {
		const char	*name;
		size_t		 off, sz;
	} keep[] = {
		{ "replay-nonce:", offsetof(struct pcurl, nonce),
		    sizeof(((struct pcurl *)0)->nonce) },
		{ "location:", offsetof(struct pcurl, location),
		    sizeof(((struct pcurl *)0)->location) },
		{ "retry-after:", offsetof(struct pcurl, retry_after),
		    sizeof(((struct pcurl *)0)->retry_after) },
	};
	struct pcurl	*r = arg;
	size_t		 len = size * n, i, nl, vl;
	const char	*v;

	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		nl = strlen(keep[i].name);
		if (len <= nl || strncasecmp(p, keep[i].name, nl) != 0)
			continue;
		for (v = p + nl; v < p + len && (*v == ' ' || *v == '\t'); v++)
			;
		for (vl = (size_t)(p + len - v); vl > 0 &&
		    isspace((unsigned char)v[vl - 1]); vl--)
			;
		if (vl >= keep[i].sz)
			vl = keep[i].sz - 1;
		memcpy((char *)r + keep[i].off, v, vl);
		((char *)r + keep[i].off)[vl] = '\0';
	}
	return len;
}

/* Request headers may hold a credential: wiped, then freed. */
static void
pcurl_slist_free(struct curl_slist *l)
{
	struct curl_slist	*p;

	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static void
pcurl_check_done(void)
{
	struct pcurl	*r;
	CURLMsg		*msg;
	int		 left;

	while ((msg = curl_multi_info_read(pcurl_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
		r->res = msg->data.result;
		curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->code);
		curl_easy_getinfo(r->h, CURLINFO_TOTAL_TIME, &r->ms);
		r->ms *= 1000;
		curl_multi_remove_handle(pcurl_multi, r->h);
		curl_easy_cleanup(r->h);
		r->h = NULL;
		pcurl_slist_free(r->hdrs);
		curl_slist_free_all(r->resolve);
		r->hdrs = r->resolve = NULL;
		r->done(r, r->arg);
	}
}

/*
 * A transfer of url set up with proxyd's rules: no proxy from the
 * environment, no redirect, answers of at most max bytes.  The caller
 * adds its own options to r->h, then pcurl_start.
 */
int
pcurl_new(struct pcurl *r, const char *url, size_t max,
    void (*done)(struct pcurl *, void *), void *arg)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	if ((r->h = curl_easy_init()) == NULL)
		return -1;
	r->max = max;
	r->done = done;
	r->arg = arg;
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->h, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, pcurl_write);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_HEADERFUNCTION, pcurl_header);
	curl_easy_setopt(r->h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->h, CURLOPT_PROXY, "");
	curl_easy_setopt(r->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(r->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->h, CURLOPT_USERAGENT, "flm-proxyd/" PACKAGE_VERSION);
	return 0;
}

int
pcurl_start(struct pcurl *r)
{
	/* libcurl sets its timer (0) from here: the transfer starts at the
	 * loop's next turn, never inside the caller. */
	if (curl_multi_add_handle(pcurl_multi, r->h) != CURLM_OK) {
		pcurl_cancel(r);
		return -1;
	}
	return 0;
}

/* Stopped before its end: no callback; the body is freed. */
void
pcurl_cancel(struct pcurl *r)
{
	if (r->h != NULL) {
		curl_multi_remove_handle(pcurl_multi, r->h);
		curl_easy_cleanup(r->h);
		r->h = NULL;
	}
	pcurl_slist_free(r->hdrs);
	curl_slist_free_all(r->resolve);
	r->hdrs = r->resolve = NULL;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* Before the sandbox: libcurl and OpenSSL set themselves up here. */
void
pcurl_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (pcurl_multi = curl_multi_init()) == NULL)
		fatalx("libcurl setup failed");
	curl_multi_setopt(pcurl_multi, CURLMOPT_SOCKETFUNCTION, pcurl_sock_cb);
	curl_multi_setopt(pcurl_multi, CURLMOPT_TIMERFUNCTION, pcurl_timer_cb);
	if ((pcurl_timer = evtimer_new(px->c.base, pcurl_timer_event,
	    NULL)) == NULL)
		fatalx("libcurl timer");
}

void
pcurl_cleanup(void)
{
	if (pcurl_timer != NULL)
		event_free(pcurl_timer);
	if (pcurl_multi != NULL)
		curl_multi_cleanup(pcurl_multi);
	pcurl_timer = NULL;
	pcurl_multi = NULL;
	curl_global_cleanup();
}
