#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keycache.h"

#define KEYCACHE_WAYS	4	/* entries per bucket; the oldest goes */

struct keycache {
	uint8_t			 key[crypto_generichash_KEYBYTES];
	size_t			 nbuckets;
	uint64_t		 stamp;
	size_t			 count;
	struct keycache_entry	*e;
};

/* cap entries at most (rounded up to whole buckets). */
struct keycache *
keycache_new(size_t cap)
{
	struct keycache	*kc;

	if ((kc = calloc(1, sizeof(*kc))) == NULL)
		return NULL;
	kc->nbuckets = (cap + KEYCACHE_WAYS - 1) / KEYCACHE_WAYS;
	if (kc->nbuckets == 0)
		kc->nbuckets = 1;
	kc->e = calloc(kc->nbuckets * KEYCACHE_WAYS, sizeof(*kc->e));
	if (kc->e == NULL) {
		free(kc);
		return NULL;
	}
	randombytes_buf(kc->key, sizeof(kc->key));
	return kc;
}

void
keycache_free(struct keycache *kc)
{
	if (kc == NULL)
		return;
	sodium_memzero(kc->e, kc->nbuckets * KEYCACHE_WAYS * sizeof(*kc->e));
	sodium_memzero(kc->key, sizeof(kc->key));
	free(kc->e);
	free(kc);
}

void
keycache_digest(const struct keycache *kc, const char *tok, size_t len,
    uint8_t out[KEYCACHE_DIGEST])
{
	crypto_generichash(out, KEYCACHE_DIGEST, (const unsigned char *)tok,
	    len, kc->key, sizeof(kc->key));
}

static struct keycache_entry *
keycache_bucket(struct keycache *kc, const uint8_t d[KEYCACHE_DIGEST])
{
	uint64_t	 h;

	memcpy(&h, d, sizeof(h));
	return &kc->e[(h % kc->nbuckets) * KEYCACHE_WAYS];
}

/* The live entry for digest d, or NULL; an expired one is dropped. */
struct keycache_entry *
keycache_get(struct keycache *kc, const uint8_t d[KEYCACHE_DIGEST], time_t now)
{
	struct keycache_entry	*b = keycache_bucket(kc, d);
	int			 i;

	for (i = 0; i < KEYCACHE_WAYS; i++) {
		if (!b[i].in_use ||
		    sodium_memcmp(b[i].digest, d, KEYCACHE_DIGEST) != 0)
			continue;
		if (b[i].valid_until != 0 && (uint64_t)now >= b[i].valid_until) {
			memset(&b[i], 0, sizeof(b[i]));
			kc->count--;
			return NULL;
		}
		b[i].used = 1;
		return &b[i];
	}
	return NULL;
}

void
keycache_put(struct keycache *kc, const uint8_t d[KEYCACHE_DIGEST],
    const char *key_id, uint64_t valid_until)
{
	struct keycache_entry	*b = keycache_bucket(kc, d), *slot = NULL;
	int			 i;

	for (i = 0; i < KEYCACHE_WAYS; i++) {
		if (b[i].in_use &&
		    sodium_memcmp(b[i].digest, d, KEYCACHE_DIGEST) == 0) {
			slot = &b[i];
			break;
		}
		if (!b[i].in_use && slot == NULL)
			slot = &b[i];
	}
	if (slot == NULL) {		/* full bucket: evict the oldest */
		slot = &b[0];
		for (i = 1; i < KEYCACHE_WAYS; i++)
			if (b[i].stamp < slot->stamp)
				slot = &b[i];
	}
	if (!slot->in_use)
		kc->count++;
	memcpy(slot->digest, d, KEYCACHE_DIGEST);
	snprintf(slot->key_id, sizeof(slot->key_id), "%s", key_id);
	slot->valid_until = valid_until;
	slot->stamp = ++kc->stamp;
	slot->in_use = 1;
	slot->used = 0;
}

/* Forget every token of key_id (revoked, rotated): how many went. */
size_t
keycache_drop_key(struct keycache *kc, const char *key_id)
{
	size_t	 i, n = 0;

	for (i = 0; i < kc->nbuckets * KEYCACHE_WAYS; i++) {
		if (!kc->e[i].in_use || strcmp(kc->e[i].key_id, key_id) != 0)
			continue;
		sodium_memzero(&kc->e[i], sizeof(kc->e[i]));
		kc->count--;
		n++;
	}
	return n;
}

void
keycache_clear(struct keycache *kc)
{
	sodium_memzero(kc->e, kc->nbuckets * KEYCACHE_WAYS * sizeof(*kc->e));
	kc->count = 0;
}

size_t
keycache_count(const struct keycache *kc)
{
	return kc->count;
}

/* The distinct key ids used since the last call, at most max. */
size_t
keycache_collect_used(struct keycache *kc, char (*ids)[FLM_KEY_ID_LEN + 1],
    size_t max)
{
	size_t	 i, j, n = 0;

	for (i = 0; i < kc->nbuckets * KEYCACHE_WAYS; i++) {
		if (!kc->e[i].in_use || !kc->e[i].used)
			continue;
		kc->e[i].used = 0;
		for (j = 0; j < n; j++)
			if (strcmp(ids[j], kc->e[i].key_id) == 0)
				break;
		if (j == n && n < max)
			memcpy(ids[n++], kc->e[i].key_id, FLM_KEY_ID_LEN + 1);
	}
	return n;
}
