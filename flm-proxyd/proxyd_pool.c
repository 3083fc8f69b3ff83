/*
 * Pools: the engines that serve one model name.  A bare name (or
 * flm://pool/NAME) is balanced across them by pools.policy, optionally
 * keeping one API key on one engine (pools.affinity key: its prompt
 * cache); flm://ENGINE/MODEL still pins one.  Passive health: every
 * call's end counts; proxy.breaker_failures failures in a row open an
 * engine's circuit breaker for proxy.breaker_secs, then one trial
 * request (half-open) closes it again or opens it anew.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "log.h"
#include "proxyd.h"

#define POOL_MAX	(2 * PROXYD_MAX_ENGINES)	/* ids seen */

enum pool_policy { POOL_LEAST = 0, POOL_PRIORITY, POOL_RR };

struct pool_engine {
	char		 id[33];
	int		 outstanding;	/* calls under way */
	int		 fails;		/* in a row */
	int		 open;		/* the breaker */
	int		 trial;		/* the half-open trial is out */
	time_t		 until;		/* open until (monotonic s) */
	uint64_t	 calls, failures;
};

static struct pool_engine	 pool_engines[POOL_MAX];
static int			 pool_n;
static enum pool_policy		 pool_policy;
static int			 pool_affinity;
static unsigned int		 pool_rr;

static time_t
pool_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The engine's record, made on first sight (NULL only when full). */
static struct pool_engine *
pool_engine(const char *id)
{
	int	 i;

	for (i = 0; i < pool_n; i++)
		if (strcmp(pool_engines[i].id, id) == 0)
			return &pool_engines[i];
	if (pool_n == POOL_MAX) {
		/* Forget one with nothing under way and no open breaker. */
		for (i = 0; i < pool_n; i++)
			if (pool_engines[i].outstanding == 0 &&
			    !pool_engines[i].open)
				break;
		if (i == pool_n)
			return NULL;
		pool_engines[i] = pool_engines[--pool_n];
	}
	memset(&pool_engines[pool_n], 0, sizeof(pool_engines[0]));
	snprintf(pool_engines[pool_n].id, sizeof(pool_engines[0].id), "%s", id);
	return &pool_engines[pool_n++];
}

/* pools.policy and pools.affinity, sent with the proxy limits. */
void
pool_limits(struct json_object *o)
{
	struct json_object	*v;
	const char		*s;

	pool_policy = POOL_LEAST;
	pool_affinity = 0;
	if (o != NULL && json_object_object_get_ex(o, "pool_policy", &v) &&
	    json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		pool_policy = strcmp(s, "priority") == 0 ? POOL_PRIORITY :
		    strcmp(s, "round-robin") == 0 ? POOL_RR : POOL_LEAST;
	}
	if (o != NULL && json_object_object_get_ex(o, "pool_affinity", &v) &&
	    json_object_is_type(v, json_type_string))
		pool_affinity = strcmp(json_object_get_string(v), "key") == 0;
}

/* May a call go to the engine now?  Closed, or open and due for its
 * one trial. */
static int
pool_usable(const struct pool_engine *e, time_t now)
{
	if (e == NULL || !e->open)
		return 1;
	return now >= e->until && !e->trial;
}

/* The keyed hash of an API key and an engine: the highest wins, so a
 * key stays on its engine while that one is there (rendezvous). */
static uint64_t
pool_score(const char *key, const char *id)
{
	unsigned char	 h[8];
	uint64_t	 v;
	char		 buf[80];

	snprintf(buf, sizeof(buf), "%s/%s", key, id);
	crypto_generichash(h, sizeof(h), (const unsigned char *)buf,
	    strlen(buf), NULL, 0);
	memcpy(&v, h, sizeof(v));
	return v;
}

/*
 * Which of the n engines (ids, their priorities) gets a call: -1 when
 * every one is excluded or has its breaker open (*retry: seconds until
 * the first trial).  key: the API key's id, for pools.affinity key.
 */
int
pool_pick(const char *const *ids, const int *prio, int n, const char *key,
    const char *exclude, int *retry)
{
	struct pool_engine	*e;
	time_t			 now = pool_now(), soonest = 0;
	uint64_t		 sc, best_sc = 0;
	int			 i, best = -1, out, best_out = 0, nok = 0;
	unsigned int		 start = pool_rr++;

	for (i = 0; i < n; i++) {
		int	 j = (int)((start + (unsigned)i) % (unsigned)n);

		if (exclude != NULL && strcmp(ids[j], exclude) == 0)
			continue;
		e = pool_engine(ids[j]);
		if (!pool_usable(e, now)) {
			if (soonest == 0 || e->until < soonest)
				soonest = e->until;
			continue;
		}
		nok++;
		out = e != NULL ? e->outstanding : 0;
		if (pool_affinity && key != NULL && *key != '\0') {
			sc = pool_score(key, ids[j]);
			if (best == -1 || sc > best_sc) {
				best = j;
				best_sc = sc;
			}
			continue;
		}
		if (best == -1 || (pool_policy == POOL_PRIORITY &&
		    (prio[j] > prio[best] || (prio[j] == prio[best] &&
		    out < best_out))) || (pool_policy == POOL_LEAST &&
		    out < best_out)) {
			best = j;
			best_out = out;
		}
		if (pool_policy == POOL_RR)
			break;		/* the next in turn */
	}
	if (best == -1 && retry != NULL)
		*retry = soonest > now ? (int)(soonest - now) : 1;
	(void)nok;
	return best;
}

/* A call to the engine starts: counted, and it may be the trial. */
void
pool_begin(const char *id)
{
	struct pool_engine	*e = pool_engine(id);

	if (e == NULL)
		return;
	e->outstanding++;
	e->calls++;
	if (e->open && pool_now() >= e->until)
		e->trial = 1;
}

/*
 * The call ended: ok 1 (an answer), 0 (the engine failed: refused,
 * reset, 5xx, no answer), -1 (the client left: neither).
 */
void
pool_end(const char *id, int ok)
{
	struct pool_engine	*e = pool_engine(id);

	if (e == NULL)
		return;
	if (e->outstanding > 0)
		e->outstanding--;
	if (ok == -1) {
		e->trial = 0;
		return;
	}
	if (ok) {
		if (e->open)
			log_info("engine %s: circuit breaker closed (a trial "
			    "request was answered)", id);
		e->fails = e->open = e->trial = 0;
		return;
	}
	e->failures++;
	e->fails++;
	if (e->trial || (!e->open && e->fails >= px->limits.breaker_failures)) {
		if (!e->open || e->trial)
			log_warnx("engine %s: circuit breaker open after %d "
			    "failure%s in a row; a trial request in %d s", id,
			    e->fails, e->fails == 1 ? "" : "s",
			    px->limits.breaker_secs);
		e->open = 1;
		e->trial = 0;
		e->until = pool_now() + px->limits.breaker_secs;
	}
}

/* For flm engines detect: the breaker's state. */
void
pool_breaker_json(const char *id, struct json_object *o)
{
	struct pool_engine	*e = pool_engine(id);
	struct json_object	*b = json_object_new_object();
	time_t			 now = pool_now();

	json_object_object_add(b, "state", json_object_new_string(e == NULL ||
	    !e->open ? "closed" : now >= e->until ? "half-open" : "open"));
	json_object_object_add(b, "failures_in_a_row", json_object_new_int(e ?
	    e->fails : 0));
	if (e != NULL && e->open && now < e->until)
		json_object_object_add(b, "trial_in",
		    json_object_new_int((int)(e->until - now)));
	json_object_object_add(b, "outstanding", json_object_new_int(e ?
	    e->outstanding : 0));
	json_object_object_add(o, "breaker", b);
}
