/*
 * The layout of the region flmd shares with every flm-proxyd worker
 * (flmd/flmd_shm.c makes it; flm-proxyd/proxyd_ratelimit.c and
 * proxyd_metrics.c use it): the rate-limit slots, then one block of
 * metrics per worker.  Fixed size, no pointers: a slot is found by
 * index, and every worker keeps its own copy of the geometry, so
 * nothing a worker writes into the region can send another one out of
 * bounds.
 */
#ifndef FLM_SHM_H
#define FLM_SHM_H

#include <stdint.h>

#include "flm_msg.h"

#define RL_SHM_MAGIC	0x4c52464cU	/* "FLRL" */
#define RL_SHM_VERSION	2
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

/*
 * A worker's metrics: only it writes its block (labels first, then
 * used), any worker reads them all for a scrape.  Labels are checked
 * again when read: a block is as trustworthy as the worker that wrote
 * it.
 */
#define MX_SERIES	512		/* label sets per worker */
#define MX_BUCKETS	13		/* latency buckets, +Inf last */
#define MX_ENGINES	32

struct mx_series {
	uint32_t	 used;		/* 0 free; set last */
	uint16_t	 endpoint;	/* flm-proxyd's enum http_endpoint */
	uint16_t	 status;
	char		 engine[33];
	char		 model[127];
	uint64_t	 requests;
	uint64_t	 prompt_tokens;
	uint64_t	 completion_tokens;
	uint64_t	 lat[MX_BUCKETS];	/* not cumulative */
	uint64_t	 lat_sum_us;
	uint64_t	 ttft[MX_BUCKETS];
	uint64_t	 ttft_sum_us;
	uint64_t	 ttft_count;
};

struct mx_worker {
	uint64_t	 key_cached, key_cold, key_failed;
	int64_t		 streams;	/* answers being streamed now */
	uint64_t	 audit_queue;	/* records not yet written */
	uint64_t	 overflow;	/* requests past MX_SERIES label sets */
	struct {
		char		 engine[33];
		uint8_t		 pad[7];
		uint64_t	 errors;
	}		 upstream[MX_ENGINES];
	struct mx_series series[MX_SERIES];
};

#define RL_SHM_RL_SIZE \
	(sizeof(struct rl_shm_hdr) + RL_SHM_SLOTS * sizeof(struct rl_slot))
#define MX_SHM_OFFSET	RL_SHM_RL_SIZE
#define RL_SHM_SIZE \
	(MX_SHM_OFFSET + FLM_WORKERS_MAX * sizeof(struct mx_worker))

/* flmd/flmd_shm.c: the region's descriptor, made on the first call. */
int	shm_ratelimit_fd(size_t *);

#endif
