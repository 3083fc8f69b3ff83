/*
 * The ACME client (RFC 8555): proxyd, the network process, speaks to
 * the CA; every request it POSTs was signed by flm-keyd (IMSG_ACME_SIGN,
 * by operation: keyd writes the payloads).  One order per handle, as
 * keyd hands them out (IMSG_ACME_ORDER); the chain goes back to keyd
 * (IMSG_ACME_DONE), which checks it and serves it.  HTTP-01 answers come
 * from the key authorizations keyd pushes (IMSG_ACME_TOKENS), on the
 * listener flmd bound for them.  Progress goes to flmd for the admin's
 * terminal.  proxyd resolves no name: the CA's host is numeric, or
 * flmd resolved it ("resolve", curl's CURLOPT_RESOLVE), and every URL
 * must be on the directory's own origin.
 */
#include "config.h"

#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "acme.h"
#include "jsonbuf.h"
#include "log.h"
#include "proxyd.h"

#define ACME_MAX_BODY		(256 * 1024)
#define ACME_CONNECT_MS		10000
#define ACME_TIMEOUT_MS		30000
#define ACME_BADNONCE_MAX	5	/* a fresh nonce, tried again */
#define ACME_POLLS_MAX		120	/* per authorization or order */
#define ACME_POLL_SECS		1	/* without Retry-After */
#define ACME_RETRY_MAX		60	/* Retry-After honoured up to this */
#define ACME_WAIT_MAX		(7 * 86400)	/* keyd's, after an error */
#define ACME_MAX_AUTHZ		64
#define ACME_TOKENS_MAX		64

enum acme_step {
	S_DIRECTORY, S_NONCE, S_ACCOUNT, S_ORDER, S_AUTHZ, S_CHALLENGE,
	S_AUTHZ_POLL, S_FINALIZE, S_ORDER_POLL, S_CERT
};

static const char *const acme_step_names[] = {
	[S_DIRECTORY] = "directory", [S_NONCE] = "directory",
	[S_ACCOUNT] = "account", [S_ORDER] = "order",
	[S_AUTHZ] = "challenge", [S_CHALLENGE] = "challenge",
	[S_AUTHZ_POLL] = "challenge", [S_FINALIZE] = "finalize",
	[S_ORDER_POLL] = "finalize", [S_CERT] = "certificate",
};

struct acme_run {
	TAILQ_ENTRY(acme_run)	 entry;
	char			 handle[72];
	char			 directory[ACME_URL_MAX + 1];
	size_t			 originlen;
	char			 challenge[16];
	char			*ca;		/* PEM, or NULL: the system's */
	struct curl_slist	*resolve;
	struct json_object	*names;
	char			 new_nonce[ACME_URL_MAX + 1];
	char			 new_account[ACME_URL_MAX + 1];
	char			 new_order[ACME_URL_MAX + 1];
	char			 nonce[257];
	char			 order[ACME_URL_MAX + 1];
	char			 finalize[ACME_URL_MAX + 1];
	char			 cert[ACME_URL_MAX + 1];
	struct json_object	*authzs;	/* their URLs */
	size_t			 authz_i;
	char			 chall_url[ACME_URL_MAX + 1];
	char			 token[129];
	char			 name[254];	/* the authorization's */
	enum acme_step		 step;
	const char		*op;		/* of the POST under way */
	char			 post_url[ACME_URL_MAX + 1];
	int			 badnonce;
	int			 polls;
	long			 wait;		/* the CA's Retry-After on an error */
	uint32_t		 signid;	/* the signature awaited */
	struct pcurl		 c;
	struct event		*timer;
	struct timespec		 t_step;
};

static TAILQ_HEAD(, acme_run)	 acme_runs = TAILQ_HEAD_INITIALIZER(acme_runs);
static uint32_t			 acme_nextid;
static struct json_object	*acme_keyauths;	/* [{token, keyauth}] */

static void	acme_next(struct acme_run *);
static void	acme_post(struct acme_run *, const char *, const char *);

static void
run_free(struct acme_run *a)
{
	TAILQ_REMOVE(&acme_runs, a, entry);
	pcurl_cancel(&a->c);
	if (a->timer != NULL)
		event_free(a->timer);
	free(a->ca);
	curl_slist_free_all(a->resolve);
	json_object_put(a->names);
	json_object_put(a->authzs);
	free(a);
}

static long
ms_since(const struct timespec *t)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 +
	    (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* A step is over: flmd shows it on the admin's terminal. */
static void
acme_progress(struct acme_run *a, const char *step, const char *detail)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "handle", json_object_new_string(a->handle));
	json_object_object_add(o, "step", json_object_new_string(step));
	json_object_object_add(o, "ms", json_object_new_int64(ms_since(
	    &a->t_step)));
	if (detail != NULL)
		json_object_object_add(o, "detail",
		    json_object_new_string(detail));
	if (px->c.parent != NULL)
		chan_compose_json(px->c.parent, IMSG_ACME_PROGRESS, 0, o);
	json_object_put(o);
	clock_gettime(CLOCK_MONOTONIC, &a->t_step);
}

/* The order is over: keyd hears how (it says flmd). */
static void
acme_finish(struct acme_run *a, const char *chain, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
acme_finish(struct acme_run *a, const char *chain, const char *fmt, ...)
{
	struct json_object	*o = json_object_new_object();
	char			 why[1024];
	va_list			 ap;

	json_object_object_add(o, "handle", json_object_new_string(a->handle));
	if (chain != NULL)
		json_object_object_add(o, "chain",
		    json_object_new_string(chain));
	else {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		json_object_object_add(o, "error", json_object_new_string(why));
		if (a->wait > 0)
			json_object_object_add(o, "retry_after",
			    json_object_new_int64(a->wait));
		acme_progress(a, "failed", why);
		log_warnx("ACME order for %s: %s", a->handle, why);
	}
	if (px->c.peer == NULL || chan_compose_json(px->c.peer,
	    IMSG_ACME_DONE, 0, o) == -1)
		log_warnx("ACME order for %s: flm-keyd cannot be told",
		    a->handle);
	json_object_put(o);
	run_free(a);
}

/* ---- answers -------------------------------------------------------------- */

/* A URL the CA gave: on the directory's origin, or refused. */
static int
acme_url(struct acme_run *a, struct json_object *o, const char *k,
    char *out, size_t sz)
{
	const char	*s;

	if ((s = json_get_string(o, k, sz - 1)) == NULL ||
	    !acme_url_valid(s, NULL) ||
	    strncmp(s, a->directory, a->originlen) != 0)
		return -1;
	snprintf(out, sz, "%s", s);
	return 0;
}

/* A member that is a string, for reading the CA's answers. */
static const char *
jstr(struct json_object *o, const char *k)
{
	return json_get_string(o, k, ACME_MAX_BODY);
}

/* "TYPE: DETAIL" of a problem document (RFC 7807), or the status. */
static void
acme_problem(struct pcurl *c, char *buf, size_t sz)
{
	struct json_object	*o = NULL;
	const char		*type = NULL, *detail = NULL;

	if (c->body != NULL)
		o = json_parse_buf(c->body, c->len);
	if (o != NULL) {
		type = jstr(o, "type");
		detail = jstr(o, "detail");
	}
	if (type != NULL && strncmp(type, "urn:ietf:params:acme:error:",
	    27) == 0)
		type += 27;
	if (type != NULL || detail != NULL)
		snprintf(buf, sz, "HTTP %ld: %.100s%s%.600s", c->code,
		    type ? type : "error", detail ? ": " : "",
		    detail ? detail : "");
	else
		snprintf(buf, sz, "HTTP %ld", c->code);
	json_object_put(o);
}

static int
acme_is_badnonce(struct pcurl *c)
{
	struct json_object	*o;
	const char		*t;
	int			 r;

	if (c->code != 400 || c->body == NULL ||
	    (o = json_parse_buf(c->body, c->len)) == NULL)
		return 0;
	r = (t = jstr(o, "type")) != NULL &&
	    strcmp(t, "urn:ietf:params:acme:error:badNonce") == 0;
	json_object_put(o);
	return r;
}

/* Retry-After in seconds, at most max; -1 without one (an HTTP date
 * counts as none). */
static long
acme_retry_secs(struct pcurl *c, long max)
{
	long	 n;
	char	*end;

	if (c->retry_after[0] == '\0')
		return -1;
	errno = 0;
	n = strtol(c->retry_after, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		return -1;
	return n > max ? max : n;
}

/* A poll's wait: Retry-After, bounded; def without one. */
static int
acme_retry_after(struct pcurl *c, int def)
{
	long	 n = acme_retry_secs(c, ACME_RETRY_MAX);

	return n < 0 ? def : (int)n;
}

static void
acme_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	acme_next(arg);
}

static void
acme_later(struct acme_run *a, int secs)
{
	struct timeval	 tv = { secs, 0 };

	evtimer_add(a->timer, &tv);
}

/* ---- transfers -------------------------------------------------------------- */

static void	acme_answer(struct pcurl *, void *);

static int
acme_transfer(struct acme_run *a, const char *url, const char *body)
{
	const char	*roots;
	size_t		 len;

	if (pcurl_new(&a->c, url, ACME_MAX_BODY, acme_answer, a) == -1)
		return -1;
	curl_easy_setopt(a->c.h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(a->c.h, CURLOPT_CONNECTTIMEOUT_MS, ACME_CONNECT_MS);
	curl_easy_setopt(a->c.h, CURLOPT_TIMEOUT_MS, ACME_TIMEOUT_MS);
	/* No file is opened in the sandbox: the roots come from memory. */
	curl_easy_setopt(a->c.h, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(a->c.h, CURLOPT_CAPATH, NULL);
	if ((roots = a->ca) != NULL)
		len = strlen(a->ca);
	else
		roots = uptls_roots(&len);
	if (roots != NULL) {
		struct curl_blob blob;

		blob.data = (void *)roots;
		blob.len = len;
		blob.flags = CURL_BLOB_COPY;
		curl_easy_setopt(a->c.h, CURLOPT_CAINFO_BLOB, &blob);
	}
	/* egress.mode: the CA too is reached through the SOCKS5 server,
	 * which resolves its name; never direct. */
	if (px->egress.on && px->egress.error[0] != '\0') {
		pcurl_cancel(&a->c);
		return -1;
	}
	if (px->egress.on)
		socks_curl(a->c.h, &px->egress);
	else if (a->resolve != NULL)
		curl_easy_setopt(a->c.h, CURLOPT_RESOLVE, a->resolve);
	if (body != NULL) {
		a->c.hdrs = curl_slist_append(NULL,
		    "Content-Type: application/jose+json");
		if (a->step == S_CERT)
			a->c.hdrs = curl_slist_append(a->c.hdrs,
			    "Accept: application/pem-certificate-chain");
		curl_easy_setopt(a->c.h, CURLOPT_HTTPHEADER, a->c.hdrs);
		curl_easy_setopt(a->c.h, CURLOPT_COPYPOSTFIELDS, body);
	} else if (a->step == S_NONCE)
		curl_easy_setopt(a->c.h, CURLOPT_NOBODY, 1L);
	return pcurl_start(&a->c);
}

/* A POST signed by keyd: asked for now, sent when the JWS comes. */
static void
acme_post(struct acme_run *a, const char *op, const char *url)
{
	struct json_object	*o;

	if (a->nonce[0] == '\0') {
		acme_finish(a, NULL, "%s: the CA gave no nonce",
		    acme_step_names[a->step]);
		return;
	}
	a->op = op;
	if (url != a->post_url)		/* a badNonce retry sends it again */
		snprintf(a->post_url, sizeof(a->post_url), "%s", url);
	a->signid = ++acme_nextid;
	if (a->signid == 0)
		a->signid = ++acme_nextid;
	o = json_object_new_object();
	json_object_object_add(o, "handle", json_object_new_string(a->handle));
	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "url", json_object_new_string(url));
	json_object_object_add(o, "nonce", json_object_new_string(a->nonce));
	if (strcmp(op, "challenge") == 0) {
		json_object_object_add(o, "token",
		    json_object_new_string(a->token));
		json_object_object_add(o, "name",
		    json_object_new_string(a->name));
	}
	/* One nonce, one request. */
	a->nonce[0] = '\0';
	if (px->c.peer == NULL || chan_compose_json(px->c.peer, IMSG_ACME_SIGN,
	    a->signid, o) == -1) {
		json_object_put(o);
		acme_finish(a, NULL, "flm-keyd is not there to sign");
		return;
	}
	json_object_put(o);
}

/* IMSG_ACME_SIGNED: the JWS for the POST awaited, or keyd's refusal. */
void
acme_signed(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o;
	struct acme_run		*a;
	const char		*jws, *err;

	if (msg_get_object(m, &o) == -1) {
		chan_fail(ch, "malformed ACME_SIGNED");
		return;
	}
	TAILQ_FOREACH(a, &acme_runs, entry)
		if (a->signid != 0 && a->signid == m->hdr.peerid)
			break;
	if (a == NULL) {
		json_object_put(o);
		return;		/* an order that ended meanwhile */
	}
	a->signid = 0;
	if ((jws = jstr(o, "jws")) == NULL) {
		err = jstr(o, "error");
		acme_finish(a, NULL, "flm-keyd did not sign the %s request: "
		    "%s", a->op, err ? err : "no reason");
	} else if (acme_transfer(a, a->post_url, jws) == -1)
		acme_finish(a, NULL, "cannot start a request to the CA");
	json_object_put(o);
}

/* ---- the steps ----------------------------------------------------------------- */

/* The next authorization still to do, or finalize when none is left. */
static void
acme_authz_next(struct acme_run *a)
{
	if (a->authz_i >= json_object_array_length(a->authzs)) {
		acme_progress(a, "challenge", "every name is validated");
		a->step = S_FINALIZE;
		acme_post(a, "finalize", a->finalize);
		return;
	}
	a->step = S_AUTHZ;
	a->polls = 0;
	acme_post(a, "get", json_object_get_string(json_object_array_get_idx(
	    a->authzs, a->authz_i)));
}

/* An authorization's state: valid (next), pending (answer or poll). */
static void
acme_authz(struct acme_run *a, struct json_object *o)
{
	struct json_object	*chs, *ch, *id, *err;
	const char		*st = jstr(o, "status"), *name = "?";
	char			 detail[600];
	size_t			 i;

	if (json_object_object_get_ex(o, "identifier", &id) && jstr(id,
	    "value") != NULL)
		name = jstr(id, "value");
	if (st != NULL && strcmp(st, "valid") == 0) {
		a->authz_i++;
		acme_authz_next(a);
		return;
	}
	if (st == NULL || strcmp(st, "pending") != 0) {
		detail[0] = '\0';
		if (json_object_object_get_ex(o, "challenges", &chs))
			for (i = 0; i < json_object_array_length(chs); i++) {
				ch = json_object_array_get_idx(chs, i);
				if (json_object_object_get_ex(ch, "error",
				    &err) && jstr(err, "detail") != NULL)
					snprintf(detail, sizeof(detail), ": %s",
					    jstr(err, "detail"));
			}
		acme_finish(a, NULL, "the authorization of %.253s is %s%s",
		    name, st ? st : "malformed", detail);
		return;
	}
	if (a->step == S_AUTHZ_POLL) {
		if (++a->polls > ACME_POLLS_MAX) {
			acme_finish(a, NULL, "the CA did not validate %.253s "
			    "in time", name);
			return;
		}
		acme_later(a, acme_retry_after(&a->c, ACME_POLL_SECS));
		return;
	}
	a->chall_url[0] = a->token[0] = '\0';
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (json_object_object_get_ex(o, "challenges", &chs))
		for (i = 0; i < json_object_array_length(chs); i++) {
			ch = json_object_array_get_idx(chs, i);
			if (jstr(ch, "type") == NULL || strcmp(jstr(ch, "type"),
			    a->challenge) != 0 || jstr(ch, "token") == NULL ||
			    strlen(jstr(ch, "token")) >= sizeof(a->token) ||
			    acme_url(a, ch, "url", a->chall_url,
			    sizeof(a->chall_url)) == -1)
				continue;
			snprintf(a->token, sizeof(a->token), "%s",
			    jstr(ch, "token"));
			break;
		}
	if (a->token[0] == '\0') {
		acme_finish(a, NULL, "the CA offers no %s challenge for "
		    "%.253s", a->challenge, name);
		return;
	}
	a->step = S_CHALLENGE;
	acme_post(a, "challenge", a->chall_url);
}

/* The order's state after finalize: poll until valid. */
static void
acme_order_state(struct acme_run *a, struct json_object *o)
{
	const char	*st = jstr(o, "status");

	if (st != NULL && strcmp(st, "valid") == 0) {
		if (acme_url(a, o, "certificate", a->cert, sizeof(a->cert)) ==
		    -1) {
			acme_finish(a, NULL, "the valid order has no "
			    "certificate URL");
			return;
		}
		acme_progress(a, "finalize", NULL);
		a->step = S_CERT;
		acme_post(a, "get", a->cert);
		return;
	}
	if (st == NULL || (strcmp(st, "processing") != 0 &&
	    strcmp(st, "ready") != 0)) {
		acme_finish(a, NULL, "the order is %s", st ? st : "malformed");
		return;
	}
	if (++a->polls > ACME_POLLS_MAX) {
		acme_finish(a, NULL, "the CA did not issue in time");
		return;
	}
	a->step = S_ORDER_POLL;
	acme_later(a, acme_retry_after(&a->c, ACME_POLL_SECS));
}

/* A timer ran out: the poll it was waiting for. */
static void
acme_next(struct acme_run *a)
{
	if (a->step == S_AUTHZ_POLL)
		acme_post(a, "get", json_object_get_string(
		    json_object_array_get_idx(a->authzs, a->authz_i)));
	else if (a->step == S_ORDER_POLL)
		acme_post(a, "get", a->order);
	else if (a->step == S_NONCE && acme_transfer(a, a->new_nonce,
	    NULL) == -1)
		acme_finish(a, NULL, "cannot start a request to the CA");
}

static void
acme_directory(struct acme_run *a, struct json_object *o)
{
	if (acme_url(a, o, "newNonce", a->new_nonce,
	    sizeof(a->new_nonce)) == -1 || acme_url(a, o, "newAccount",
	    a->new_account, sizeof(a->new_account)) == -1 || acme_url(a, o,
	    "newOrder", a->new_order, sizeof(a->new_order)) == -1) {
		acme_finish(a, NULL, "the directory %s lacks newNonce, "
		    "newAccount or newOrder on its own origin", a->directory);
		return;
	}
	acme_progress(a, "directory", a->directory);
	a->step = S_NONCE;
	if (acme_transfer(a, a->new_nonce, NULL) == -1)
		acme_finish(a, NULL, "cannot start a request to the CA");
}

static void
acme_ordered(struct acme_run *a, struct json_object *o)
{
	struct json_object	*az;
	size_t			 i, n;
	char			 u[ACME_URL_MAX + 1];

	if (a->c.location[0] == '\0' || strncmp(a->c.location, a->directory,
	    a->originlen) != 0 || acme_url(a, o, "finalize", a->finalize,
	    sizeof(a->finalize)) == -1 ||
	    !json_object_object_get_ex(o, "authorizations", &az) ||
	    !json_object_is_type(az, json_type_array) ||
	    (n = json_object_array_length(az)) == 0 || n > ACME_MAX_AUTHZ) {
		acme_finish(a, NULL, "the new order is malformed");
		return;
	}
	snprintf(a->order, sizeof(a->order), "%s", a->c.location);
	json_object_put(a->authzs);
	a->authzs = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *w = json_object_new_object();

		json_object_object_add(w, "u", json_object_get(
		    json_object_array_get_idx(az, i)));
		if (acme_url(a, w, "u", u, sizeof(u)) == -1) {
			json_object_put(w);
			acme_finish(a, NULL, "an authorization URL is not the "
			    "CA's");
			return;
		}
		json_object_put(w);
		json_object_array_add(a->authzs, json_object_new_string(u));
	}
	acme_progress(a, "order", a->order);
	a->authz_i = 0;
	acme_authz_next(a);
}

/* Every answer from the CA comes here. */
static void
acme_answer(struct pcurl *c, void *arg)
{
	struct acme_run		*a = arg;
	struct json_object	*o = NULL;
	char			 why[800];

	if (acme_b64url_valid(c->nonce, sizeof(c->nonce) - 1))
		snprintf(a->nonce, sizeof(a->nonce), "%s", c->nonce);
	if (c->res != CURLE_OK) {
		acme_finish(a, NULL, "%s: %s: %s", acme_step_names[a->step],
		    a->step == S_DIRECTORY ? a->directory : "the CA",
		    c->truncated ? "answer too large" :
		    curl_easy_strerror(c->res));
		return;
	}
	if (a->op != NULL && acme_is_badnonce(c) &&
	    a->badnonce++ < ACME_BADNONCE_MAX) {
		log_info("ACME: the CA refused a nonce (badNonce); %s again "
		    "with a fresh one", a->op);
		acme_post(a, a->op, a->post_url);	/* the new nonce */
		return;
	}
	if (c->code < 200 || c->code > 299) {
		/* A rate limit's Retry-After: keyd waits that long at least
		 * before its next order. */
		a->wait = acme_retry_secs(c, ACME_WAIT_MAX);
		acme_problem(c, why, sizeof(why));
		acme_finish(a, NULL, "%s: %s", acme_step_names[a->step], why);
		return;
	}
	a->badnonce = 0;
	if (a->step == S_NONCE) {
		a->step = S_ACCOUNT;
		acme_post(a, "new-account", a->new_account);
		return;
	}
	if (a->step == S_CERT) {
		if (c->body == NULL || strstr(c->body,
		    "-----BEGIN CERTIFICATE-----") == NULL) {
			acme_finish(a, NULL, "certificate: the CA sent no PEM");
			return;
		}
		acme_progress(a, "certificate", NULL);
		acme_finish(a, c->body, NULL);
		return;
	}
	if (c->body == NULL || (o = json_parse_buf(c->body, c->len)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		acme_finish(a, NULL, "%s: the CA's answer is not a JSON object",
		    acme_step_names[a->step]);
		return;
	}
	switch (a->step) {
	case S_DIRECTORY:
		acme_directory(a, o);
		break;
	case S_ACCOUNT:
		if (a->c.location[0] == '\0' || strncmp(a->c.location,
		    a->directory, a->originlen) != 0) {
			acme_finish(a, NULL, "account: the CA gave no account "
			    "URL");
			break;
		}
		if (px->c.peer != NULL) {
			struct json_object *k = json_object_new_object();

			json_object_object_add(k, "handle",
			    json_object_new_string(a->handle));
			json_object_object_add(k, "kid",
			    json_object_new_string(a->c.location));
			chan_compose_json(px->c.peer, IMSG_ACME_ACCOUNT, 0, k);
			json_object_put(k);
		}
		acme_progress(a, "account", a->c.location);
		a->step = S_ORDER;
		acme_post(a, "new-order", a->new_order);
		break;
	case S_ORDER:
		acme_ordered(a, o);
		break;
	case S_AUTHZ:
	case S_AUTHZ_POLL:
		acme_authz(a, o);
		break;
	case S_CHALLENGE:
		acme_progress(a, "challenge", a->challenge);
		a->step = S_AUTHZ_POLL;
		a->polls = 0;
		acme_later(a, 0);
		break;
	case S_FINALIZE:
	case S_ORDER_POLL:
		a->polls = a->step == S_FINALIZE ? 0 : a->polls;
		acme_order_state(a, o);
		break;
	default:
		break;
	}
	json_object_put(o);
}

/* ---- from keyd ------------------------------------------------------------------ */

/* IMSG_ACME_ORDER: keyd asks for a certificate for a handle. */
void
acme_order(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o, *v;
	struct acme_run		*a;
	const char		*handle, *dir, *chall, *ca, *res;

	if (msg_get_object(m, &o) == -1) {
		chan_fail(ch, "malformed ACME_ORDER");
		return;
	}
	handle = jstr(o, "handle");
	dir = jstr(o, "directory");
	chall = jstr(o, "challenge");
	ca = jstr(o, "ca");
	res = jstr(o, "resolve");
	if (handle == NULL || strlen(handle) >= sizeof(a->handle) ||
	    dir == NULL || strlen(dir) > ACME_URL_MAX || chall == NULL ||
	    strlen(chall) >= sizeof(a->challenge) ||
	    !json_object_object_get_ex(o, "names", &v) ||
	    !json_object_is_type(v, json_type_array)) {
		log_warnx("flm-keyd sent a malformed ACME_ORDER: ignored");
		json_object_put(o);
		return;
	}
	TAILQ_FOREACH(a, &acme_runs, entry)
		if (strcmp(a->handle, handle) == 0)
			break;
	if (a != NULL)
		run_free(a);	/* keyd forgot it: a new order replaces */
	if ((a = calloc(1, sizeof(*a))) == NULL)
		fatal("%s", __func__);
	TAILQ_INSERT_TAIL(&acme_runs, a, entry);
	snprintf(a->handle, sizeof(a->handle), "%s", handle);
	snprintf(a->directory, sizeof(a->directory), "%s", dir);
	snprintf(a->challenge, sizeof(a->challenge), "%s", chall);
	a->names = json_object_get(v);
	a->timer = evtimer_new(px->c.base, acme_timer, a);
	if (ca != NULL && (a->ca = strdup(ca)) == NULL)
		fatal("%s", __func__);
	if (res != NULL)
		a->resolve = curl_slist_append(NULL, res);
	clock_gettime(CLOCK_MONOTONIC, &a->t_step);
	json_object_put(o);
	if (a->timer == NULL || !acme_url_valid(a->directory, &a->originlen)) {
		acme_finish(a, NULL, "the directory must be an https URL");
		return;
	}
	log_info("ACME: asking %s for a certificate for %s", a->directory,
	    a->handle);
	a->step = S_DIRECTORY;
	if (acme_transfer(a, a->directory, NULL) == -1)
		acme_finish(a, NULL, "cannot start a request to the CA");
}

/* IMSG_ACME_TOKENS: the HTTP-01 key authorizations to serve now; keyd
 * answers the challenge once each worker confirmed (TLS_APPLIED). */
void
acme_tokens(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o = NULL, *t;
	uint64_t		 seq;
	size_t			 i;

	if (msg_get_u64(m, &seq) == -1 || msg_get_json(m, &o) == -1 ||
	    !json_object_is_type(o, json_type_array) ||
	    json_object_array_length(o) > ACME_TOKENS_MAX) {
		json_object_put(o);
		chan_fail(ch, "malformed ACME_TOKENS");
		return;
	}
	for (i = 0; i < json_object_array_length(o); i++) {
		t = json_object_array_get_idx(o, i);
		if (jstr(t, "token") == NULL || jstr(t, "keyauth") == NULL) {
			json_object_put(o);
			chan_fail(ch, "malformed ACME_TOKENS");
			return;
		}
	}
	json_object_put(acme_keyauths);
	acme_keyauths = o;
	if (seq != 0)
		chan_compose(ch, IMSG_TLS_APPLIED, 0, -1, &seq, sizeof(seq));
}

/* The HTTP-01 listener: a key authorization for a token keyd sent, or
 * 404; no key, no policy (the CA validates from anywhere). */
void
acme_http_answer(struct http_req *r)
{
	static const char	 pre[] = "/.well-known/acme-challenge/";
	char			 path[512];
	const char		*tok, *ka;
	size_t			 i;

	if ((r->head.method == HTTP_M_GET || r->head.method == HTTP_M_HEAD) &&
	    http_path_normalise(r->head.target, r->head.tlen, path,
	    sizeof(path)) == 0 && strncmp(path, pre, sizeof(pre) - 1) == 0) {
		tok = path + sizeof(pre) - 1;
		for (i = 0; i < json_object_array_length(acme_keyauths); i++) {
			struct json_object *t = json_object_array_get_idx(
			    acme_keyauths, i);

			if (strcmp(jstr(t, "token"), tok) != 0)
				continue;
			ka = jstr(t, "keyauth");
			http_reply(r, 200, "application/octet-stream", ka,
			    strlen(ka));
			return;
		}
	}
	http_reply(r, 404, "text/plain", "not found\n", 10);
}

/* Before the sandbox: the system's CA roots, for an ACME CA without
 * --acme-ca (proxyd opens no file later). */

void
acme_cleanup(void)
{
	struct acme_run	*a;

	while ((a = TAILQ_FIRST(&acme_runs)) != NULL)
		run_free(a);
	json_object_put(acme_keyauths);
	acme_keyauths = NULL;
}
