/*
 * Token buckets per client address and per key: requests per minute
 * (a request takes one) and tokens per minute (an answer's usage is
 * taken after it, and nothing passes while the bucket is empty).  Each
 * bucket holds a minute's worth, refilled continuously.
 *
 * The buckets live in one region shared by every worker (lib/shm.h,
 * made by flmd, IMSG_PROXY_SHM), so a limit holds for the suite, not
 * per worker, and outlives a worker's restart.  Until the region
 * arrives a private one of the same layout stands in.  A subject has
 * RL_SHM_PROBE slots it may live in from its hash on; a newcomer takes
 * an empty one or the least recently used: a flood of addresses makes
 * us forget old subjects, never refuse everyone.
 *
 * Each slot has a spin lock (its holder's pid) for its bucket, and an
 * insert lock for the subjects homed at it, so that two workers seeing
 * a newcomer at once make one bucket, not two.  Another worker may be
 * subverted: nothing read from the region is used as a pointer or an
 * index, a bucket that makes no sense is reset, and a lock held too
 * long is taken over.
 *
 * An IPv6 client is counted by its /64 (one host usually has all of
 * one), so a flood from many addresses of one network is one subject.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <math.h>		/* isfinite */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxyd.h"
#include "shm.h"

#define RL_MASK		(RL_SHM_SLOTS - 1)
#define RL_SPINS	128		/* before sleeping on a lock */
#define RL_STEAL_NS	500000000ULL	/* a holder this slow is gone */
#define RL_SLACK_NS	1000000000ULL	/* another worker's clock read */

static uint8_t		*rl_base;	/* header, then the slots */
static uint32_t		 rl_pid;	/* our lock token */

static inline struct rl_slot *
rl_slot(uint32_t i)
{
	return (struct rl_slot *)(rl_base + sizeof(struct rl_shm_hdr)) +
	    (i & RL_MASK);
}

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

static uint64_t
rl_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void
rl_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Take a lock word: spin a little (the holder is on another core for a
 * few instructions), then sleep (it was preempted); one held past
 * RL_STEAL_NS belongs to a worker that died or misbehaves: take it
 * over, by a compare-and-swap so that only one waiter does.  Long, so
 * that a holder merely preempted on a loaded machine (seen past 20 ms)
 * is never robbed: two in a bucket at once would lose an update.
 */
static void
rl_lock(uint32_t *w)
{
	struct timespec	 nap = { 0, 20000 };
	uint64_t	 since = 0, now;
	uint32_t	 seen;
	unsigned int	 spins = 0;

	for (;;) {
		seen = 0;
		if (__atomic_compare_exchange_n(w, &seen, rl_pid, 0,
		    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		if (++spins < RL_SPINS) {
			rl_relax();
			continue;
		}
		now = rl_now();
		if (since == 0)
			since = now;
		else if (now - since > RL_STEAL_NS) {
			if (__atomic_compare_exchange_n(w, &seen, rl_pid, 0,
			    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return;
			since = now;
		}
		nanosleep(&nap, NULL);
		spins = 0;
	}
}

/* Ours or no one's: a lock taken over from us stays with the taker. */
static void
rl_unlock(uint32_t *w)
{
	uint32_t	 mine = rl_pid;

	__atomic_compare_exchange_n(w, &mine, 0, 0, __ATOMIC_RELEASE,
	    __ATOMIC_RELAXED);
}

static uint32_t
rl_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h != 0 ? h : 1;		/* 0 is an empty slot */
}

/* Append what fits of s at *off, keeping the last byte a NUL. */
static void
rl_put(char key[RL_SHM_SUBJECT], size_t *off, const char *s)
{
	size_t	 n = strlen(s);

	if (n > RL_SHM_SUBJECT - 1 - *off)
		n = RL_SHM_SUBJECT - 1 - *off;
	memcpy(key + *off, s, n);
	*off += n;
}

/* "kind:subject", an IPv6 address (not an IPv4-mapped one) as its /64,
 * NUL-padded to RL_SHM_SUBJECT.  Once or twice a request: no printf. */
static void
rl_key(const char *kind, const char *subject, char key[RL_SHM_SUBJECT])
{
	struct in6_addr	 a;
	char		 net[INET6_ADDRSTRLEN];
	size_t		 off = 0;

	memset(key, 0, RL_SHM_SUBJECT);
	rl_put(key, &off, kind);
	rl_put(key, &off, ":");
	if (strcmp(kind, "ip") == 0 && strchr(subject, ':') != NULL &&
	    inet_pton(AF_INET6, subject, &a) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a)) {
		memset(a.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a, net, sizeof(net)) != NULL) {
			rl_put(key, &off, net);
			rl_put(key, &off, "/64");
			return;
		}
	}
	rl_put(key, &off, subject);
}

/* The slot of key among the RL_SHM_PROBE from home, locked; or NULL. */
static struct rl_slot *
rl_lookup(const char *key, uint32_t h)
{
	struct rl_slot	*s;
	uint32_t	 i;

	for (i = 0; i < RL_SHM_PROBE; i++) {
		s = rl_slot(h + i);
		if (__atomic_load_n(&s->hash, __ATOMIC_RELAXED) != h)
			continue;
		rl_lock(&s->lock);
		if (s->hash == h && memcmp(s->subject, key, RL_SHM_SUBJECT) == 0)
			return s;
		rl_unlock(&s->lock);
	}
	return NULL;
}

/* A fresh bucket: full, as if the subject had never been seen. */
static void
rl_fill(struct rl_slot *s, const struct policy_rate *r, uint64_t now)
{
	s->req = s->cap_req = r->requests;
	s->tok = s->cap_tok = r->tokens;
	s->at = now;
}

/*
 * A newcomer: under the insert lock of its home slot, look again (a
 * worker may have just made it), else take an empty slot of the window
 * or the least recently used one.  Returned locked.
 */
static struct rl_slot *
rl_insert(const char *key, uint32_t h, const struct policy_rate *r)
{
	struct rl_slot	*home = rl_slot(h), *s, *victim = NULL;
	uint64_t	 oldest = UINT64_MAX, used;
	uint32_t	 i;

	rl_lock(&home->ins);
	if ((s = rl_lookup(key, h)) != NULL) {
		rl_unlock(&home->ins);
		return s;
	}
	for (i = 0; i < RL_SHM_PROBE && oldest > 0; i++) {
		s = rl_slot(h + i);
		used = __atomic_load_n(&s->hash, __ATOMIC_RELAXED) == 0 ? 0 :
		    __atomic_load_n(&s->used, __ATOMIC_RELAXED);
		if (victim == NULL || used < oldest) {
			victim = s;
			oldest = used;
		}
	}
	rl_lock(&victim->lock);
	memcpy(victim->subject, key, RL_SHM_SUBJECT);
	victim->hash = h;
	rl_fill(victim, r, rl_now());
	rl_unlock(&home->ins);
	return victim;
}

/* The bucket of kind:subject, locked; made full if new. */
static struct rl_slot *
rl_find(const char *kind, const char *subject, const struct policy_rate *r)
{
	struct rl_slot	*s;
	char		 key[RL_SHM_SUBJECT];
	uint32_t	 h;

	rl_key(kind, subject, key);
	h = rl_hash(key);
	if ((s = rl_lookup(key, h)) == NULL)
		s = rl_insert(key, h, r);
	return s;
}

/*
 * Refill to now, never above a minute's worth (a policy may shrink); a
 * limit that was not there before starts full.  The clock is read with
 * the lock held, so no honest worker has written a later one; a bucket
 * from the future or not a number (torn, or written by a subverted
 * worker) starts full again.
 */
static void
rl_refill(struct rl_slot *s, const struct policy_rate *r)
{
	uint64_t	 now = rl_now();
	double		 dt;

	if (s->at > now + RL_SLACK_NS || !isfinite(s->req) ||
	    !isfinite(s->tok) || s->req < 0 || s->req > s->cap_req ||
	    s->tok > s->cap_tok || s->tok < -1e18) {
		rl_fill(s, r, now);
		s->used = now;
		return;
	}
	dt = s->at < now ? (double)(now - s->at) / 1e9 : 0;
	if (s->cap_req == 0)
		s->req = r->requests;
	if (s->cap_tok == 0)
		s->tok = r->tokens;
	s->cap_req = r->requests;
	s->cap_tok = r->tokens;
	s->at = now;
	s->used = now;
	s->req = rl_min(s->req + dt * r->requests / 60.0, r->requests);
	s->tok = rl_min(s->tok + dt * r->tokens / 60.0, r->tokens);
}

/* 1: the request may go; 0: refused, *retry the seconds to wait. */
int
ratelimit_take(const char *kind, const char *subject,
    const struct policy_rate *r, int *retry)
{
	struct rl_slot	*s;
	double		 wait = 0;

	if (r->requests == 0 && r->tokens == 0)
		return 1;
	s = rl_find(kind, subject, r);
	rl_refill(s, r);
	if (r->requests > 0 && s->req < 1.0)
		wait = (1.0 - s->req) * 60.0 / r->requests;
	if (r->tokens > 0 && s->tok <= 0.0)
		wait = rl_max(wait, (1.0 - s->tok) * 60.0 / r->tokens);
	if (wait > 0) {
		rl_unlock(&s->lock);
		/* Whole seconds, rounded up: Retry-After is an integer. */
		if (wait > 86400)
			wait = 86400;
		*retry = (int)wait + ((double)(int)wait < wait);
		return 0;
	}
	if (r->requests > 0)
		s->req -= 1.0;
	rl_unlock(&s->lock);
	return 1;
}

void
ratelimit_debit(const char *kind, const char *subject,
    const struct policy_rate *r, int64_t tokens)
{
	struct rl_slot	*s;

	if (r->tokens == 0 || tokens <= 0)
		return;
	s = rl_find(kind, subject, r);
	rl_refill(s, r);
	s->tok -= (double)tokens;
	rl_unlock(&s->lock);
}

static uint8_t *
rl_map_private(void)
{
	struct rl_shm_hdr	*h;
	void			*p;

	p = mmap(NULL, RL_SHM_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fatal("%s", __func__);
	h = p;
	h->magic = RL_SHM_MAGIC;
	h->version = RL_SHM_VERSION;
	h->nslots = RL_SHM_SLOTS;
	h->slot_size = sizeof(struct rl_slot);
	metrics_attach((char *)p + MX_SHM_OFFSET);
	return p;
}

/*
 * flmd's region (IMSG_PROXY_SHM): in place of ours if it is the size
 * and layout we know and sealed against shrinking (a mapping cut short
 * under us would fault).  Takes fd.  -1: we keep counting alone.
 */
int
ratelimit_attach(int fd, size_t size)
{
	struct rl_shm_hdr	 h;
	struct stat		 st;
	void			*p;
	int			 seals;

	if (size != RL_SHM_SIZE) {
		log_warnx("rate-limit region of %zu bytes, not %zu", size,
		    (size_t)RL_SHM_SIZE);
		close(fd);
		return -1;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) == -1 || st.st_size != (off_t)size ||
	    seals == -1 || (seals & F_SEAL_SHRINK) == 0) {
		log_warnx("rate-limit region: not a sealed region of %zu bytes",
		    size);
		close(fd);
		return -1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		log_warn("rate-limit region");
		return -1;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != RL_SHM_MAGIC || h.version != RL_SHM_VERSION ||
	    h.nslots != RL_SHM_SLOTS || h.slot_size != sizeof(struct rl_slot)) {
		log_warnx("rate-limit region: unknown layout");
		munmap(p, size);
		return -1;
	}
	if (rl_base != NULL)
		munmap(rl_base, RL_SHM_SIZE);
	rl_base = p;
	metrics_attach((char *)p + MX_SHM_OFFSET);
	log_debug("rate limits shared with the other workers");
	return 0;
}

void
ratelimit_init(void)
{
	rl_pid = (uint32_t)getpid();
	if (rl_base == NULL)
		rl_base = rl_map_private();
}

void
ratelimit_cleanup(void)
{
	if (rl_base != NULL)
		munmap(rl_base, RL_SHM_SIZE);
	rl_base = NULL;
}
