/*
 * Pieces every FLM child sandbox is built from.  The allow-lists
 * themselves live beside each process's main (keyd_sandbox.c,
 * proxyd_sandbox.c) so each can be reviewed at a glance.
 */
#ifndef FLM_SANDBOX_H
#define FLM_SANDBOX_H

#include <errno.h>
#include <stdint.h>

#include <seccomp.h>

#define SANDBOX_ALLOW(ctx, call) \
	sandbox_rule((ctx), SCMP_ACT_ALLOW, SCMP_SYS(call), #call, 0)
#define SANDBOX_ALLOW_ARG(ctx, call, ...) \
	sandbox_rule((ctx), SCMP_ACT_ALLOW, SCMP_SYS(call), #call, __VA_ARGS__)
/* For a deny-list (flmd's): the call fails with EPERM. */
#define SANDBOX_DENY(ctx, call) \
	sandbox_rule((ctx), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(call), #call, 0)
#define SANDBOX_DENY_ARG(ctx, call, ...) \
	sandbox_rule((ctx), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(call), #call, \
	    __VA_ARGS__)

extern int	 sandbox_debug;

void		 sandbox_nodump(void);
void		 sandbox_landlock(const char *, int);
int		 sandbox_landlock_notcpconnect(void);
void		 sandbox_drop_user(const char *, const char *);
void		 sandbox_become_user(const char *);
int		 sandbox_has_cap(int);
scmp_filter_ctx	 sandbox_begin(void);
void		 sandbox_rule(scmp_filter_ctx, uint32_t, int, const char *,
		    unsigned int, ...);
void		 sandbox_allow_common(scmp_filter_ctx);
void		 sandbox_load(scmp_filter_ctx);

#endif
