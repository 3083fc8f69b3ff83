/*
 * Scoped keys: what keyd said a key may use, with each verdict for it,
 * kept by key id for as long as the verdict is cached (an invalidation
 * drops both), and enforced here: the endpoint family and the client's
 * network once the key is known, the model and engine where the router
 * picks one, the key's own rate limits.  Keys without a scope have no
 * entry, and cost one failed lookup.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyscope.h"
#include "log.h"
#include "proxyd.h"

struct scope_ent {
	char		 key_id[FLM_KEY_ID_LEN + 1];
	struct keyscope	*ks;
};

static struct scope_ent	*scopes;
static size_t		 nscopes;

static struct scope_ent *
scope_find(const char *key_id)
{
	size_t	 i;

	for (i = 0; i < nscopes; i++)
		if (strcmp(scopes[i].key_id, key_id) == 0)
			return &scopes[i];
	return NULL;
}

void
scope_drop(const char *key_id)
{
	struct scope_ent	*e;

	if (key_id == NULL) {
		while (nscopes > 0)
			free(scopes[--nscopes].ks);
		free(scopes);
		scopes = NULL;
		return;
	}
	if ((e = scope_find(key_id)) == NULL)
		return;
	free(e->ks);
	*e = scopes[--nscopes];
}

/*
 * Key key_id's scope as keyd sent it with a verdict ("": none).  -1 if
 * keyd's text is not a scope (keyd checked it: refused as malformed)
 * or there is no memory for it (the request is refused, not let
 * through unscoped).
 */
int
scope_set(const char *key_id, const char *text, char *err, size_t errsz)
{
	struct scope_ent	*e, *n;
	struct keyscope		*ks;

	if (text[0] == '\0') {
		scope_drop(key_id);
		return 0;
	}
	if ((ks = malloc(sizeof(*ks))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (keyscope_parse_text(text, strlen(text), ks, err, errsz) == -1) {
		free(ks);
		return -1;
	}
	if ((e = scope_find(key_id)) != NULL) {
		free(e->ks);
		e->ks = ks;
		return 0;
	}
	if ((n = reallocarray(scopes, nscopes + 1, sizeof(*scopes))) == NULL) {
		free(ks);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	scopes = n;
	snprintf(scopes[nscopes].key_id, sizeof(scopes[0].key_id), "%s",
	    key_id);
	scopes[nscopes++].ks = ks;
	return 0;
}

const struct keyscope *
scope_of(const struct http_req *r)
{
	struct scope_ent	*e;

	if (r->key_id[0] == '\0' || nscopes == 0 ||
	    (e = scope_find(r->key_id)) == NULL)
		return NULL;
	return e->ks;
}

/* The endpoint family a request is of; 0: any key may (model lists,
 * but see scope_admit). */
static unsigned int
scope_family(enum http_endpoint ep)
{
	switch (ep) {
	case EP_CHAT:		return KS_CHAT;
	case EP_COMPLETIONS:	return KS_COMPLETIONS;
	case EP_EMBEDDINGS:	return KS_EMBEDDINGS;
	case EP_MESSAGES:
	case EP_COUNT_TOKENS:	return KS_MESSAGES;
	case EP_RESPONSES:	return KS_RESPONSES;
	case EP_METRICS:	return KS_METRICS;
	case EP_OLLAMA_CHAT:
	case EP_OLLAMA_GENERATE:
	case EP_OLLAMA_EMBED:
	case EP_OLLAMA_EMBEDDINGS:
	case EP_OLLAMA_SHOW:
	case EP_OLLAMA_VERSION:	return KS_OLLAMA;
	default:		return 0;
	}
}

/*
 * May this key make this request (endpoint, client network)?  0 if
 * refused: answered 403 with why.  Metrics are for keys that name
 * them; a key without a scope has no metrics either.
 */
int
scope_admit(struct http_req *r)
{
	const struct keyscope	*ks = scope_of(r);
	unsigned int		 fam = scope_family(r->ep);
	char			 msg[300];

	if (fam == KS_METRICS && (ks == NULL ||
	    !(ks->endpoints & KS_METRICS))) {
		if (ks != NULL)
			r->scope = FLM_SCOPE_DENIED_ENDPOINT;
		http_error(r, 403, "permission_denied", "endpoint_not_allowed",
		    "This API key may not read metrics: give it the metrics "
		    "endpoint (flm api-keys scope LABEL --endpoints metrics).");
		return 0;
	}
	if (ks == NULL)
		return 1;
	r->scope = FLM_SCOPE_ALLOWED;
	/* A scraper's key uses no model: the lists are not its either. */
	if ((r->ep == EP_MODELS || r->ep == EP_OLLAMA_TAGS) &&
	    ks->endpoints == KS_METRICS) {
		r->scope = FLM_SCOPE_DENIED_ENDPOINT;
		http_error(r, 403, "permission_denied", "endpoint_not_allowed",
		    "This API key may only read metrics.");
		return 0;
	}
	if (fam != 0 && ks->endpoints != 0 && !(ks->endpoints & fam)) {
		r->scope = FLM_SCOPE_DENIED_ENDPOINT;
		snprintf(msg, sizeof(msg), "This API key may not use the %s "
		    "endpoints.", keyscope_ep_name(fam));
		http_error(r, 403, "permission_denied", "endpoint_not_allowed",
		    msg);
		return 0;
	}
	if (ks->ncidr > 0 && policy_cidrs_match(ks->cidr, (size_t)ks->ncidr,
	    http_req_addr(r)) != 1) {
		r->scope = FLM_SCOPE_DENIED_ADDRESS;
		snprintf(msg, sizeof(msg), "This API key may not be used from "
		    "%s.", http_req_addr(r));
		http_error(r, 403, "permission_denied", "address_not_allowed",
		    msg);
		return 0;
	}
	return 1;
}

/* The per-key rate limits for key_id: its own, else the policy's. */
void
scope_rate(const char *key_id, struct policy_rate *out)
{
	struct scope_ent	*e;

	*out = px->policy.per_key;
	if (nscopes == 0 || (e = scope_find(key_id)) == NULL)
		return;
	if (e->ks->rpm > 0)
		out->requests = e->ks->rpm;
	if (e->ks->tpm > 0)
		out->tokens = e->ks->tpm;
}

void
scope_cleanup(void)
{
	scope_drop(NULL);
}
