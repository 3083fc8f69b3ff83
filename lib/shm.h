/*
 * The layout of the rate-limit region flmd shares with every flm-proxyd
 * worker (flmd/flmd_shm.c makes it, flm-proxyd/proxyd_ratelimit.c uses
 * it).  Fixed size, no pointers: a slot is found by index, and every
 * worker keeps its own copy of the geometry, so nothing a worker writes
 * into the region can send another one out of bounds.
 */
#ifndef FLM_SHM_H
#define FLM_SHM_H

#include <stdint.h>

#define RL_SHM_MAGIC	0x4c52464cU	/* "FLRL" */
#define RL_SHM_VERSION	1
#define RL_SHM_SLOTS	65536		/* subjects tracked at once */
#define RL_SHM_PROBE	16		/* slots a subject may live in */
#define RL_SHM_SUBJECT	64		/* "kind:subject", NUL-padded */

struct rl_shm_hdr {
	uint32_t	 magic;
	uint32_t	 version;
	uint32_t	 nslots;
	uint32_t	 slot_size;
	uint8_t		 pad[48];	/* slots start on a cache line */
};

struct rl_slot {
	uint32_t	 lock;		/* 0 free, else the holder's pid */
	uint32_t	 ins;		/* the same, for inserts homed here */
	uint32_t	 hash;		/* of subject; 0: never used */
	uint32_t	 cap_req, cap_tok;	/* the limits then */
	uint32_t	 pad0;
	uint64_t	 used;		/* last touched, CLOCK_MONOTONIC ns */
	uint64_t	 at;		/* last refilled, CLOCK_MONOTONIC ns */
	double		 req, tok;	/* what is left */
	char		 subject[RL_SHM_SUBJECT];
	uint8_t		 pad[8];	/* 128 bytes: two cache lines */
};

#define RL_SHM_SIZE \
	(sizeof(struct rl_shm_hdr) + RL_SHM_SLOTS * sizeof(struct rl_slot))

/* flmd/flmd_shm.c: the region's descriptor, made on the first call. */
int	shm_ratelimit_fd(size_t *);

#endif
