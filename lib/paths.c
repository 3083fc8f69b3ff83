#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

static int
paths_join(char *dst, size_t dstsz, const char *dir, const char *name)
{
	int	 n;

	n = snprintf(dst, dstsz, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= dstsz) ? -1 : 0;
}

/*
 * dir is -D's argument or NULL; FLM_STATE_DIR stands in for it.
 * On failure err says why in words for the user.
 */
int
paths_init(struct flm_paths *p, const char *dir, char *err, size_t errsz)
{
	memset(p, 0, sizeof(*p));
	if (dir == NULL || *dir == '\0')
		dir = getenv("FLM_STATE_DIR");
	if (dir != NULL && *dir != '\0') {
		p->user_mode = 1;
		if (realpath(dir, p->statedir) == NULL) {
			char	 cwd[PATH_MAX];

			/* It may not exist yet (flmd creates it): anchor it. */
			if (*dir == '/')
				cwd[0] = '\0';
			else if (getcwd(cwd, sizeof(cwd)) == NULL) {
				snprintf(err, errsz, "getcwd failed");
				return -1;
			}
			if (snprintf(p->statedir, sizeof(p->statedir), "%s%s%s",
			    cwd, *cwd ? "/" : "", dir) >= (int)sizeof(p->statedir))
				goto toolong;
		}
		memcpy(p->rundir, p->statedir, sizeof(p->rundir));
	} else {
		strcpy(p->statedir, FLM_SYS_STATEDIR);
		strcpy(p->rundir, FLM_SYS_RUNDIR);
	}
	if (paths_join(p->keyddir, sizeof(p->keyddir), p->statedir,
	    FLM_KEYD_SUBDIR) == -1 ||
	    paths_join(p->emptydir, sizeof(p->emptydir), p->statedir,
	    FLM_EMPTY_SUBDIR) == -1 ||

	    paths_join(p->pidfile, sizeof(p->pidfile), p->rundir,
	    FLM_PID_NAME) == -1)
		goto toolong;
	if (paths_join(p->sock, sizeof(p->sock), p->rundir,
	    FLM_SOCK_NAME) == -1) {
		snprintf(err, errsz, "state directory path too long for a "
		    "UNIX socket (at most %zu bytes): %s",
		    sizeof(p->sock) - sizeof(FLM_SOCK_NAME) - 1, p->rundir);
		return -1;
	}
	return 0;
toolong:
	snprintf(err, errsz, "state directory path too long: %s", dir);
	return -1;
}
