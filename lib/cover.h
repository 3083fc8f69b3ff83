/*
 * gcov's run-time, in coverage builds only (./configure
 * --enable-coverage; docs/TEST_STRATEGY.md): a process that leaves by
 * _exit() skips gcov's exit handler, and a fork's child holds a copy of
 * its parent's counters.  Empty in any other build.
 */
#ifndef FLM_COVER_H
#define FLM_COVER_H

#ifdef FLM_COVERAGE
void	__gcov_dump(void);
void	__gcov_reset(void);
/* The counters written now, as at exit. */
#define COVER_DUMP()	__gcov_dump()
/* The counters zeroed: a fork's copy is its parent's to count. */
#define COVER_RESET()	__gcov_reset()
#else
#define COVER_DUMP()	do { } while (0)
#define COVER_RESET()	do { } while (0)
#endif

#endif
