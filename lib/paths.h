/*
 * Where an FLM suite keeps its state.  User mode: everything below one
 * directory (-D DIR or FLM_STATE_DIR).  System mode: /var/lib/flm and
 * /run/flm.
 */
#ifndef FLM_PATHS_H
#define FLM_PATHS_H

#include <limits.h>
#include <sys/un.h>

#define FLM_SYS_STATEDIR	"/var/lib/flm"
#define FLM_SYS_RUNDIR		"/run/flm"
#define FLM_SOCK_NAME		"flmd.sock"
#define FLM_PID_NAME		"flmd.pid"
#define FLM_KEYD_SUBDIR		"keyd"		/* 0700, keyd's own */
#define FLM_EMPTY_SUBDIR	"empty"		/* proxyd's chroot */
#define FLM_BACKUP_SUBDIR	"backups"	/* in keyd's directory */
#define FLM_RESTORE_MARKER	"restore.ready"	/* flmd's: a restore commits */

#define FLM_KEYD_USER		"_flmkeyd"
#define FLM_PROXYD_USER		"_flmproxy"
#define FLM_ADMIN_GROUP		"flmadm"

struct flm_paths {
	int	 user_mode;
	char	 statedir[PATH_MAX];
	char	 rundir[PATH_MAX];
	char	 keyddir[PATH_MAX];
	char	 emptydir[PATH_MAX];
	char	 sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char	 pidfile[PATH_MAX];
};

int	 paths_init(struct flm_paths *, const char *, char *, size_t);

#endif
