/*
 * The rate limiter shared by workers: flmd's region (flmd/flmd_shm.c)
 * and flm-proxyd/proxyd_ratelimit.c, both linked whole.  Forked
 * processes, each attached to the region as a worker is, hammer one
 * bucket of 60 a minute: 60 pass in all.  A region full of garbage, or
 * with a bucket that makes no sense or a lock never let go, is
 * survived; a region of the wrong size, layout or without its seals is
 * refused and the worker counts alone.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "proxyd.h"
#include "shm.h"

static struct proxyd	 proxyd;
struct proxyd		*px = &proxyd;

static const struct policy_rate	 sixty = { .requests = 60 };

/* The metrics part of the region is proxyd_metrics.c's: not here. */
void
metrics_attach(void *base)
{
	(void)base;
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A worker's view of flmd's region: a descriptor of its own, attached. */
static void
attach(void)
{
	size_t	 size;
	int	 fd;

	ratelimit_init();
	if ((fd = shm_ratelimit_fd(&size)) == -1)
		fail_msg("shm_ratelimit_fd");
	assert_int_equal(ratelimit_attach(fd, size), 0);
}

/*
 * n workers, released at once, each trying tries times to take from
 * subject's bucket; the requests that passed, in all.
 */
static int
hammer(int n, const char *subject, const struct policy_rate *rate,
    int tries, double *secs)
{
	pid_t	 pid[8];
	size_t	 size;
	int	 go[2], res[2], i, j, got, total = 0, status, retry;
	char	 c;
	double	 t0;

	assert_true(n <= 8);
	/* flmd's region, made before its workers are. */
	assert_int_not_equal(i = shm_ratelimit_fd(&size), -1);
	close(i);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	for (i = 0; i < n; i++) {
		if ((pid[i] = fork()) == -1)
			fail_msg("fork");
		if (pid[i] == 0) {
			close(go[1]);
			ratelimit_cleanup();	/* not the parent's mapping */
			attach();
			got = 0;
			/* Wait for the start: the write end closed. */
			if (read(go[0], &c, 1) != 0)
				_exit(2);
			for (j = 0; j < tries; j++)
				got += ratelimit_take("key", subject, rate,
				    &retry);
			_exit(write(res[1], &got, sizeof(got)) ==
			    (ssize_t)sizeof(got) ? 0 : 2);
		}
	}
	close(go[0]);
	close(res[1]);
	usleep(100000);		/* all attached, waiting */
	t0 = now_s();
	close(go[1]);
	for (i = 0; i < n; i++) {
		assert_int_equal(read(res[0], &got, sizeof(got)), sizeof(got));
		total += got;
	}
	*secs = now_s() - t0;
	close(res[0]);
	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return total;
}

/* 60 a minute refills one a second: a slow run may see that many more. */
static void
exact(int n, const char *subject)
{
	double	 secs;
	int	 total;

	total = hammer(n, subject, &sixty, 3000, &secs);
	if (total < 60 || total > 60 + (int)secs)
		fail_msg("%d workers let %d through in %.3f s, not 60", n,
		    total, secs);
}

static void
test_two_workers_exact(void **state)
{
	(void)state;
	exact(2, "two");
}

static void
test_four_workers_exact(void **state)
{
	(void)state;
	exact(4, "four");
}

static uint8_t	*map_region(void);
static struct rl_slot *slot_of(uint8_t *, const char *);

/*
 * No update lost: 4 workers take 50,000 each from a bucket of a million
 * a minute.  All pass; what is left is a million less 200,000, plus what
 * refilled meanwhile (16,667 a second), not more.
 */
static void
test_no_lost_update(void **state)
{
	const struct policy_rate	 million = { .requests = 1000000 };
	struct rl_slot			*s;
	uint8_t				*raw;
	double				 secs, extra;

	(void)state;
	assert_int_equal(hammer(4, "busy", &million, 50000, &secs), 200000);
	raw = map_region();
	s = slot_of(raw, "key:busy");
	assert_string_equal(s->subject, "key:busy");
	extra = s->req - (1000000 - 200000);
	if (extra < 0 || extra > secs * 1000000 / 60 + 1)
		fail_msg("%.0f left over, %.0f refilled at most in %.3f s",
		    extra, secs * 1000000 / 60, secs);
	munmap(raw, RL_SHM_SIZE);
}

/* What a worker did is there for its successor: flmd holds the region. */
static void
test_restart_keeps_counts(void **state)
{
	double	 secs;
	int	 retry;

	(void)state;
	assert_int_equal(hammer(1, "kept", &sixty, 59, &secs), 59);
	attach();
	assert_int_equal(ratelimit_take("key", "kept", &sixty, &retry), 1);
	assert_int_equal(ratelimit_take("key", "kept", &sixty, &retry), 0);
	assert_true(retry >= 1 && retry <= 60);
	ratelimit_cleanup();
}

/* The FNV-1a hash proxyd_ratelimit.c places "kind:subject" by. */
static struct rl_slot *
slot_of(uint8_t *base, const char *key)
{
	const char	*s = key;
	uint32_t	 h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return (struct rl_slot *)(base + sizeof(struct rl_shm_hdr)) +
	    (h & (RL_SHM_SLOTS - 1));
}

static uint8_t *
map_region(void)
{
	size_t	 size;
	void	*p;
	int	 fd;

	assert_int_not_equal(fd = shm_ratelimit_fd(&size), -1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(p != MAP_FAILED);
	return p;
}

/*
 * A subverted worker writes garbage over every slot and the header: we
 * neither crash nor hang, new subjects are served and limited, and the
 * region's size cannot be changed under us.
 */
static void
test_garbage_survived(void **state)
{
	uint8_t		*raw;
	uint32_t	 x = 12345;
	size_t		 i, size;
	double		 t0;
	int		 retry, fd, n;
	char		 subj[16];

	(void)state;
	attach();
	raw = map_region();
	for (i = 0; i < RL_SHM_SIZE; i++) {
		x = x * 1103515245u + 12345u;
		raw[i] = (uint8_t)(x >> 16);
	}
	/* Locks held by no one alive are taken over after half a second:
	 * a newcomer waits for two at most (its home's and its slot's). */
	t0 = now_s();
	for (n = 0; n < 2; n++) {
		snprintf(subj, sizeof(subj), "g%d", n);
		assert_int_equal(ratelimit_take("key", subj, &sixty, &retry),
		    1);
	}
	if (now_s() - t0 > 4.0)
		fail_msg("two newcomers took %.1f s", now_s() - t0);
	/* The last made has its 60, no more (the first may have refilled
	 * meanwhile: one a second). */
	for (n = 0; n < 59; n++)
		assert_int_equal(ratelimit_take("key", "g1", &sixty, &retry),
		    1);
	assert_int_equal(ratelimit_take("key", "g1", &sixty, &retry), 0);
	/* The seals: no shrinking the region under the other workers. */
	assert_int_not_equal(fd = shm_ratelimit_fd(&size), -1);
	assert_int_equal(ftruncate(fd, 4096), -1);
	close(fd);
	munmap(raw, RL_SHM_SIZE);
	ratelimit_cleanup();
}

/* A bucket of the subject itself, absurd: reset to full, then limited. */
static void
test_absurd_bucket_reset(void **state)
{
	static const double	 bad[][2] = {
		{ NAN, 0 }, { INFINITY, 0 }, { -5, 0 }, { 1e9, 0 },
		{ 0, NAN }, { 0, -INFINITY }, { 0, 1e12 },
	};
	struct rl_slot		*s;
	uint8_t			*raw;
	size_t			 i;
	int			 retry, n;

	(void)state;
	attach();
	raw = map_region();
	assert_int_equal(ratelimit_take("key", "odd", &sixty, &retry), 1);
	s = slot_of(raw, "key:odd");
	assert_string_equal(s->subject, "key:odd");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s->req = bad[i][0];
		s->tok = bad[i][1];
		for (n = 0; n < 60; n++)
			assert_int_equal(ratelimit_take("key", "odd", &sixty,
			    &retry), 1);
		assert_int_equal(ratelimit_take("key", "odd", &sixty, &retry),
		    0);
	}
	/* From the future: reset too. */
	s->at = UINT64_MAX - 1;
	assert_int_equal(ratelimit_take("key", "odd", &sixty, &retry), 1);
	/* A lock a worker never lets go of: taken over, the count goes on. */
	s->lock = 0x7fffffff;
	assert_int_equal(ratelimit_take("key", "odd", &sixty, &retry), 1);
	assert_int_equal(s->lock, 0);
	munmap(raw, RL_SHM_SIZE);
	ratelimit_cleanup();
}

/* Not flmd's region: refused; the private one goes on counting. */
static void
test_attach_refused(void **state)
{
	struct rl_shm_hdr	 h;
	size_t			 size;
	int			 fd, retry;

	(void)state;
	ratelimit_init();
	assert_int_not_equal(fd = shm_ratelimit_fd(&size), -1);
	assert_int_equal(ratelimit_attach(fd, size - 1), -1);
	/* Unsealed: another worker could shrink it under us. */
	assert_int_not_equal(fd = memfd_create("t", MFD_CLOEXEC), -1);
	assert_int_equal(ftruncate(fd, RL_SHM_SIZE), 0);
	memset(&h, 0, sizeof(h));
	h.magic = RL_SHM_MAGIC;
	h.version = RL_SHM_VERSION;
	h.nslots = RL_SHM_SLOTS;
	h.slot_size = sizeof(struct rl_slot);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(ratelimit_attach(fd, RL_SHM_SIZE), -1);
	/* Sealed, of another version. */
	assert_int_not_equal(fd = memfd_create("t", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING), -1);
	assert_int_equal(ftruncate(fd, RL_SHM_SIZE), 0);
	h.version = RL_SHM_VERSION + 1;
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	assert_int_equal(ratelimit_attach(fd, RL_SHM_SIZE), -1);
	assert_int_equal(ratelimit_take("ip", "10.0.0.1",
	    &(struct policy_rate){ .requests = 1 }, &retry), 1);
	assert_int_equal(ratelimit_take("ip", "10.0.0.1",
	    &(struct policy_rate){ .requests = 1 }, &retry), 0);
	ratelimit_cleanup();
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_two_workers_exact),
		cmocka_unit_test(test_four_workers_exact),
		cmocka_unit_test(test_no_lost_update),
		cmocka_unit_test(test_restart_keeps_counts),
		cmocka_unit_test(test_absurd_bucket_reset),
		cmocka_unit_test(test_attach_refused),
		cmocka_unit_test(test_garbage_survived),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
