/*
 * Token buckets per client address and per key: requests per minute
 * (a request takes one) and tokens per minute (an answer's usage is
 * taken after it, and nothing passes while the bucket is empty).  Each
 * bucket holds a minute's worth, refilled continuously.  proxyd is one
 * thread, so a count is exact however many requests race.
 *
 * An IPv6 client is counted by its /64 (one host usually has all of
 * one), so a flood from many addresses of one network is one subject.
 * When RL_MAX subjects are tracked, a newcomer takes the place of the
 * one least recently seen (an LRU list, O(1)): a flood of addresses
 * makes us forget old subjects, never refuse everyone.
 */
#include "config.h"

#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "proxyd.h"

#define RL_SLOTS	4096		/* hash chains */
#define RL_MAX		65536		/* subjects tracked at once */
#define RL_PRUNE_SECS	60

struct bucket {
	LIST_ENTRY(bucket)	 entry;
	TAILQ_ENTRY(bucket)	 lru;		/* most recently used first */
	char			 subject[64];	/* "ip:addr" or "key:id" */
	double			 req, tok;	/* what is left */
	uint32_t		 cap_req, cap_tok;	/* the limits then */
	double			 at;		/* when last refilled, s */
};
LIST_HEAD(bucket_list, bucket);
TAILQ_HEAD(bucket_lru, bucket);

static struct bucket_list	*rl_slots;
static struct bucket_lru	 rl_lru = TAILQ_HEAD_INITIALIZER(rl_lru);
static size_t			 rl_count;
static struct event		*rl_tick;

static double
rl_min(double a, double b)
{
	return a < b ? a : b;
}

static double
rl_max(double a, double b)
{
	return a > b ? a : b;
}

static double
rl_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t
rl_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % RL_SLOTS;
}

/* Refill to now, never above a minute's worth (a policy may shrink);
 * a limit that was not there before starts full. */
static void
rl_refill(struct bucket *b, const struct policy_rate *r, double now)
{
	double	 dt = now - b->at;

	if (b->cap_req == 0)
		b->req = r->requests;
	if (b->cap_tok == 0)
		b->tok = r->tokens;
	b->cap_req = r->requests;
	b->cap_tok = r->tokens;
	b->at = now;
	b->req = rl_min(b->req + dt * r->requests / 60.0, r->requests);
	b->tok = rl_min(b->tok + dt * r->tokens / 60.0, r->tokens);
}

static void
rl_free(struct bucket *b)
{
	LIST_REMOVE(b, entry);
	TAILQ_REMOVE(&rl_lru, b, lru);
	free(b);
	rl_count--;
}

/* "kind:subject", an IPv6 address (not an IPv4-mapped one) as its /64. */
static void
rl_key(const char *kind, const char *subject, char *key, size_t sz)
{
	struct in6_addr	 a;
	char		 net[INET6_ADDRSTRLEN];

	if (strcmp(kind, "ip") == 0 && inet_pton(AF_INET6, subject, &a) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a)) {
		memset(a.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a, net, sizeof(net)) != NULL) {
			snprintf(key, sz, "%s:%s/64", kind, net);
			return;
		}
	}
	snprintf(key, sz, "%s:%s", kind, subject);
}

static struct bucket *
rl_find(const char *kind, const char *subject, const struct policy_rate *r,
    int create)
{
	struct bucket	*b;
	char		 key[64];
	uint32_t	 h;

	rl_key(kind, subject, key, sizeof(key));
	h = rl_hash(key);
	LIST_FOREACH(b, &rl_slots[h], entry)
		if (strcmp(b->subject, key) == 0) {
			TAILQ_REMOVE(&rl_lru, b, lru);
			TAILQ_INSERT_HEAD(&rl_lru, b, lru);
			return b;
		}
	if (!create)
		return NULL;
	/* Full: the subject least recently seen makes room. */
	if (rl_count >= RL_MAX)
		rl_free(TAILQ_LAST(&rl_lru, bucket_lru));
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	memcpy(b->subject, key, sizeof(key));
	b->req = b->cap_req = r->requests;
	b->tok = b->cap_tok = r->tokens;
	b->at = rl_now();
	LIST_INSERT_HEAD(&rl_slots[h], b, entry);
	TAILQ_INSERT_HEAD(&rl_lru, b, lru);
	rl_count++;
	return b;
}

/* 1: the request may go; 0: refused, *retry the seconds to wait. */
int
ratelimit_take(const char *kind, const char *subject,
    const struct policy_rate *r, int *retry)
{
	struct bucket	*b;
	double		 wait = 0;

	if (r->requests == 0 && r->tokens == 0)
		return 1;
	/* Out of memory: refuse rather than forget limits. */
	if ((b = rl_find(kind, subject, r, 1)) == NULL) {
		*retry = 1;
		return 0;
	}
	rl_refill(b, r, rl_now());
	if (r->requests > 0 && b->req < 1.0)
		wait = (1.0 - b->req) * 60.0 / r->requests;
	if (r->tokens > 0 && b->tok <= 0.0)
		wait = rl_max(wait, (1.0 - b->tok) * 60.0 / r->tokens);
	if (wait > 0) {
		/* Whole seconds, rounded up: Retry-After is an integer. */
		*retry = (int)wait + ((double)(int)wait < wait);
		return 0;
	}
	if (r->requests > 0)
		b->req -= 1.0;
	return 1;
}

void
ratelimit_debit(const char *kind, const char *subject,
    const struct policy_rate *r, int64_t tokens)
{
	struct bucket	*b;

	if (r->tokens == 0 || tokens <= 0 ||
	    (b = rl_find(kind, subject, r, 1)) == NULL)
		return;
	rl_refill(b, r, rl_now());
	b->tok -= (double)tokens;
}

/* A bucket that has refilled is the same as none: drop it. */
static void
rl_prune(evutil_socket_t fd, short ev, void *arg)
{
	struct bucket	*b, *next;
	double		 idle = rl_now() - RL_PRUNE_SECS;
	size_t		 i;

	(void)fd;
	(void)ev;
	(void)arg;
	for (i = 0; i < RL_SLOTS; i++)
		for (b = LIST_FIRST(&rl_slots[i]); b != NULL; b = next) {
			next = LIST_NEXT(b, entry);
			if (b->at > idle || b->tok < 0)
				continue;
			rl_free(b);
		}
}

void
ratelimit_init(void)
{
	struct timeval	 tv = { RL_PRUNE_SECS, 0 };

	if ((rl_slots = calloc(RL_SLOTS, sizeof(*rl_slots))) == NULL)
		fatal("%s", __func__);
	rl_tick = event_new(px->c.base, -1, EV_PERSIST, rl_prune, NULL);
	if (rl_tick == NULL || event_add(rl_tick, &tv) == -1)
		fatalx("rate limit timer");
}

void
ratelimit_cleanup(void)
{
	struct bucket	*b;
	size_t		 i;

	if (rl_slots == NULL)
		return;
	for (i = 0; i < RL_SLOTS; i++)
		while ((b = LIST_FIRST(&rl_slots[i])) != NULL)
			rl_free(b);
	free(rl_slots);
	rl_slots = NULL;
	if (rl_tick != NULL)
		event_free(rl_tick);
	rl_tick = NULL;
}
