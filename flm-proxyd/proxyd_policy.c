/*
 * The security policy as proxyd enforces it: the address allowlist,
 * CORS, and the rate limits per client address and per key.  keyd
 * sends the policy; until it does, the default holds (loopback only).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "log.h"
#include "proxyd.h"

#define PREFLIGHT_HDR_MAX	8192

static char		*policy_preflight_hdrs;	/* for px->policy */

/*
 * The headers of every preflight's answer under this policy: made once
 * when it comes, not for each preflight.
 */
static char *
preflight_make(const struct policy *pol)
{
	struct evbuffer	*b = evbuffer_new();
	const char	*m;
	char		*s = NULL;
	size_t		 i, len;

	if (b == NULL)
		return NULL;
	evbuffer_add_printf(b, "Access-Control-Allow-Methods: ");
	for (i = 0; (m = policy_method_name(pol->methods, i)) != NULL; i++)
		evbuffer_add_printf(b, "%s%s", i ? ", " : "", m);
	evbuffer_add_printf(b, "\r\n");
	if (pol->nheaders > 0) {
		evbuffer_add_printf(b, "Access-Control-Allow-Headers: ");
		for (i = 0; i < pol->nheaders; i++)
			evbuffer_add_printf(b, "%s%s", i ? ", " : "",
			    pol->headers[i]);
		evbuffer_add_printf(b, "\r\n");
	}
	evbuffer_add_printf(b, "Access-Control-Max-Age: %u\r\n", pol->max_age);
	len = evbuffer_get_length(b);
	if (len < PREFLIGHT_HDR_MAX && (s = malloc(len + 1)) != NULL) {
		evbuffer_remove(b, s, len);
		s[len] = '\0';
	}
	evbuffer_free(b);
	return s;
}

/* keyd checked it; a policy that does not parse here is a bug there. */
void
policy_receive(struct chan *ch, struct chan_msg *m)
{
	struct json_object	*o;
	struct policy		 pol;
	uint64_t		 seq;
	char			 err[256];

	if (msg_get_u64(m, &seq) == -1 || msg_get_json(m, &o) == -1) {
		chan_fail(ch, "malformed POLICY");
		return;
	}
	if (policy_parse(o, &pol, err, sizeof(err)) == -1) {
		json_object_put(o);
		chan_fail(ch, "POLICY refused: %s", err);
		return;
	}
	json_object_put(o);
	policy_free(&px->policy);
	px->policy = pol;
	free(policy_preflight_hdrs);
	policy_preflight_hdrs = preflight_make(&px->policy);
	log_debug("security policy: %zu allowed networks, %zu origins",
	    pol.nallow, pol.norigins);
	chan_compose(ch, IMSG_POLICY_APPLIED, 0, -1, &seq, sizeof(seq));
}

void
policy_cleanup(void)
{
	policy_free(&px->policy);
	free(policy_preflight_hdrs);
	policy_preflight_hdrs = NULL;
}

static int
policy_limited(struct http_req *r, const char *kind, const char *subject,
    const struct policy_rate *rate, const char *what)
{
	char	 msg[160];
	int	 retry;

	if (ratelimit_take(kind, subject, rate, &retry))
		return 0;
	r->retry_after = retry;
	snprintf(msg, sizeof(msg), "Rate limit reached for this %s; try "
	    "again in %d s.", what, retry);
	http_error(r, 429, "rate_limit_error", "rate_limit_exceeded", msg);
	return 1;
}

/* Before anything else: who may talk to us at all.  1: go on. */
int
policy_admit(struct http_req *r)
{
	if (!policy_ip_allowed(&px->policy, http_req_addr(r))) {
		http_error(r, 403, "permission_denied", "ip_not_allowed",
		    "Requests from your address are not allowed by this "
		    "server's policy.");
		return 0;
	}
	return 1;
}

/* After CORS, so that a page allowed to call us can read its 429. */
int
policy_ip_admit(struct http_req *r)
{
	return !policy_limited(r, "ip", http_req_addr(r), &px->policy.per_ip,
	    "client address");
}

/* The key's limits; a request a client certificate stands in for
 * (no bearer key) has them under the certificate's serial. */
int
policy_key_admit(struct http_req *r)
{
	struct policy_rate	 rate;
	const char		*serial;

	if (r->key_id[0] != '\0') {
		/* Refused by its scope: not counted against its limit. */
		scope_rate(r->key_id, &rate);
		return scope_admit(r) &&
		    !policy_limited(r, "key", r->key_id, &rate, "API key");
	}
	if ((serial = http_req_cert(r, NULL))[0] != '\0')
		return scope_admit(r) && !policy_limited(r, "cert", serial,
		    &px->policy.per_key, "client certificate");
	return scope_admit(r);
}

/* An actual request: from no Origin (not a browser) or an allowed one. */
int
policy_cors(struct http_req *r)
{
	const char	*o;
	size_t		 len;

	if ((o = http_header(&r->head, "origin", &len)) == NULL)
		return 1;
	if (!policy_origin_allowed(&px->policy, o, len)) {
		http_error(r, 403, "permission_denied", "origin_not_allowed",
		    "Requests from this web origin are not allowed by this "
		    "server's CORS policy.");
		return 0;
	}
	r->origin = o;
	r->origin_len = len;
	return 1;
}

/* Every name in a comma-separated Access-Control-Request-Headers. */
static int
headers_allowed(const char *v, size_t len)
{
	const struct policy	*pol = &px->policy;
	size_t			 i, j, k, end;

	for (i = 0; i < len; i = j + 1) {
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		for (j = i; j < len && v[j] != ','; j++)
			;
		for (end = j; end > i && (v[end - 1] == ' ' ||
		    v[end - 1] == '\t'); end--)
			;
		if (end == i)
			continue;
		for (k = 0; k < pol->nheaders; k++)
			if (strlen(pol->headers[k]) == end - i &&
			    strncasecmp(pol->headers[k], v + i, end - i) == 0)
				break;
		if (k == pol->nheaders)
			return 0;
	}
	return 1;
}

/*
 * OPTIONS.  A browser's preflight (Origin and Access-Control-Request-
 * Method) passes only if origin, method and every header it names are
 * allowed; refused, it gets no Access-Control-* header at all, which is
 * what makes the browser stop.  It needs no key: browsers send none.
 */
void
policy_preflight(struct http_req *r)
{
	const char	*o, *m, *h;
	size_t		 olen, mlen, hlen = 0;

	if ((o = http_header(&r->head, "origin", &olen)) == NULL) {
		http_reply(r, 204, NULL, NULL, 0);
		return;
	}
	m = http_header(&r->head, "access-control-request-method", &mlen);
	h = http_header(&r->head, "access-control-request-headers", &hlen);
	if (!policy_origin_allowed(&px->policy, o, olen) ||
	    (m != NULL && !(px->policy.methods & policy_method_bit(m, mlen))) ||
	    (h != NULL && !headers_allowed(h, hlen))) {
		http_error(r, 403, "permission_denied", "cors_not_allowed",
		    "This cross-origin request is not allowed by this "
		    "server's CORS policy.");
		return;
	}
	r->origin = o;
	r->origin_len = olen;
	if (m != NULL && (r->xhdr = policy_preflight_hdrs) == NULL) {
		http_error(r, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	http_reply(r, 204, NULL, NULL, 0);
}
