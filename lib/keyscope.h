/*
 * An API key's scope (api_keys.scope): which models, engines, client
 * networks and endpoints the key may use, and its own rate limits.
 * flm-keyd checks and stores it; flm-proxyd gets it with the key's
 * verdict and enforces it.  No scope: the key may use everything the
 * policy allows.
 */
#ifndef FLM_KEYSCOPE_H
#define FLM_KEYSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct json_object;

#define KEYSCOPE_MAX_ITEMS	32	/* per list */
#define KEYSCOPE_GLOB_MAX	160
#define KEYSCOPE_MAX_BYTES	8192	/* of the JSON text */

/* The endpoint families a key may be limited to. */
enum keyscope_ep {
	KS_CHAT = 0x01,
	KS_COMPLETIONS = 0x02,
	KS_EMBEDDINGS = 0x04,
	KS_MESSAGES = 0x08,
	KS_RESPONSES = 0x10,
	KS_OLLAMA = 0x20,
	KS_METRICS = 0x40,
	KS_ALL = 0x7f,
};

struct keyscope {
	unsigned int	 endpoints;	/* 0: all but metrics */
	char		 models[KEYSCOPE_MAX_ITEMS][KEYSCOPE_GLOB_MAX];
	int		 nmodels;	/* 0: any */
	char		 engines[KEYSCOPE_MAX_ITEMS][33];
	int		 nengines;	/* 0: any */
	struct policy_cidr cidr[KEYSCOPE_MAX_ITEMS];
	int		 ncidr;		/* 0: as the policy allows */
	uint32_t	 rpm, tpm;	/* 0: the policy's per-key limits */
};

/* Parse and check; -1 with err naming the field at fault. */
int	 keyscope_parse(struct json_object *, struct keyscope *, char *,
	    size_t);
int	 keyscope_parse_text(const char *, size_t, struct keyscope *, char *,
	    size_t);
/* Every field given, spelled out as keyd stores it; NULL: no limits. */
struct json_object *keyscope_json(const struct keyscope *);
const char *keyscope_ep_name(unsigned int);
/* May the key use flm://ENGINE/MODEL (engine, model)? */
int	 keyscope_model(const struct keyscope *, const char *, const char *);
/* Lists models or engines: a request's model may be refused. */
int	 keyscope_limits_models(const struct keyscope *);

#endif
