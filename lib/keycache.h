/*
 * Verified keys, remembered so the steady state costs a hash, not an
 * Argon2 run.  Entries are found by a BLAKE2b digest of the token keyed
 * with a per-process random key: the token itself is never kept, and
 * nobody outside can aim collisions at a bucket.  Bounded in size.
 */
#ifndef FLM_KEYCACHE_H
#define FLM_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "flm_msg.h"

#define KEYCACHE_DIGEST	32

struct keycache;

struct keycache_entry {
	uint8_t		 digest[KEYCACHE_DIGEST];
	char		 key_id[FLM_KEY_ID_LEN + 1];
	uint64_t	 valid_until;	/* 0: no expiry */
	uint64_t	 stamp;		/* insertion order, for eviction */
	int		 in_use;
	int		 used;		/* seen since the last collect */
};

struct keycache	*keycache_new(size_t);
void		 keycache_free(struct keycache *);
void		 keycache_digest(const struct keycache *, const char *, size_t,
		    uint8_t [KEYCACHE_DIGEST]);
struct keycache_entry *keycache_get(struct keycache *,
		    const uint8_t [KEYCACHE_DIGEST], time_t);
void		 keycache_put(struct keycache *, const uint8_t [KEYCACHE_DIGEST],
		    const char *, uint64_t);
size_t		 keycache_drop_key(struct keycache *, const char *);
void		 keycache_clear(struct keycache *);
size_t		 keycache_count(const struct keycache *);
size_t		 keycache_collect_used(struct keycache *,
		    char (*)[FLM_KEY_ID_LEN + 1], size_t);

#endif
