/*
 * flm migrate legacy --apply (issue 19): flmd's part.  flm read the
 * admin's legacy files and checked them; flmd writes the migration log
 * under its state directory (logs/migrations/TS.log), has keyd import
 * the keys (and the policy with the CORS origins added) in one
 * transaction, and only once keyd has committed sets the Ollama
 * engine's address in config.db.  No key's text is logged or kept:
 * the request's plain keys are wiped by the caller once forwarded.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "flmd.h"
#include "log.h"

#define MIGRATE_STALE_SECS	120	/* keyd never answered: forget it */
#define MIGRATE_ENGINE_KEY	"engines.ollama.url"

static struct {
	uint32_t	 ctl;		/* the waiting client; 0: none */
	time_t		 since;
	char		*engine_url;
	char		 path[PATH_MAX];
	FILE		*log;
} mig;

static void
migrate_reset(void)
{
	if (mig.log != NULL)
		fclose(mig.log);
	free(mig.engine_url);
	memset(&mig, 0, sizeof(mig));
}

void
migrate_cleanup(void)
{
	migrate_reset();
}

/* A line of the migration log, stamped; never a key's text. */
static void __attribute__((format(printf, 1, 2)))
migrate_log(const char *fmt, ...)
{
	char		 when[32];
	time_t		 now = time(NULL);
	struct tm	 tm;
	va_list		 ap;

	if (mig.log == NULL)
		return;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(mig.log, "%s ", when);
	va_start(ap, fmt);
	vfprintf(mig.log, fmt, ap);
	va_end(ap);
	fputc('\n', mig.log);
	fflush(mig.log);
}

/* The run's stamp, as flm made it (20260102T030405Z and the like). */
static int
migrate_ts_valid(const char *ts)
{
	size_t	 i, n = strlen(ts);

	if (n < 1 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!((ts[i] >= '0' && ts[i] <= '9') || (ts[i] >= 'A' &&
		    ts[i] <= 'Z') || ts[i] == '-'))
			return 0;
	return 1;
}

/* STATEDIR/logs/migrations/TS.log, appended to; -1 with err. */
static int
migrate_log_open(const char *ts, char *err, size_t errsz)
{
	char	 dir[PATH_MAX];
	int	 fd;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/logs/migrations",
	    env->paths.statedir) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	dir[strlen(dir) - 11] = '\0';		/* STATEDIR/logs */
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		goto fail;
	dir[strlen(dir)] = '/';
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		goto fail;
	if ((size_t)snprintf(mig.path, sizeof(mig.path), "%s/%s.log", dir,
	    ts) >= sizeof(mig.path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if ((fd = open(mig.path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto fail;
	if ((mig.log = fdopen(fd, "a")) == NULL) {
		close(fd);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errsz, "the migration log in %s: %s", dir,
	    strerror(errno));
	return -1;
}

/* What is about to be done, one line a key: labels and kinds only. */
static void
migrate_log_plan(struct json_object *keys, struct json_object *policy)
{
	struct json_object	*k, *v;
	size_t			 i, n = json_object_array_length(keys);

	migrate_log("apply: %zu keys, policy %s, %s %s", n, policy != NULL ?
	    "changed" : "unchanged", MIGRATE_ENGINE_KEY, mig.engine_url ?
	    mig.engine_url : "unchanged");
	for (i = 0; i < n; i++) {
		k = json_object_array_get_idx(keys, i);
		migrate_log("  key %s (%s)",
		    json_object_object_get_ex(k, "label", &v) ?
		    json_object_get_string(v) : "?",
		    json_object_object_get_ex(k, "legacy", &v) ?
		    json_object_get_string(v) : "?");
	}
	if (policy != NULL)
		migrate_log("  policy %s", json_object_to_json_string_ext(
		    policy, JSON_C_TO_STRING_PLAIN));
}

/*
 * A client's request {ts, keys, policy?, engine_url?}: checked, logged
 * and forwarded to keyd.  0, or -1 with err (nothing was sent).  keyd
 * checks every key again; flmd checks what only flmd can.
 */
int
migrate_start(uint32_t ctl, struct json_object *req, char *err, size_t errsz)
{
	struct json_object	*ts, *keys, *pol = NULL, *url = NULL, *fw;

	if (mig.ctl != 0 && time(NULL) - mig.since < MIGRATE_STALE_SECS) {
		snprintf(err, errsz, "another flm migrate legacy --apply is "
		    "running; try again when it is done");
		return -1;
	}
	migrate_reset();
	if (!json_object_object_get_ex(req, "ts", &ts) ||
	    !json_object_is_type(ts, json_type_string) ||
	    !migrate_ts_valid(json_object_get_string(ts)) ||
	    !json_object_object_get_ex(req, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array) ||
	    (json_object_object_get_ex(req, "policy", &pol) &&
	    !json_object_is_type(pol, json_type_object)) ||
	    (json_object_object_get_ex(req, "engine_url", &url) &&
	    !json_object_is_type(url, json_type_string))) {
		snprintf(err, errsz, "expected {ts, keys, policy?, "
		    "engine_url?}");
		return -1;
	}
	if (url != NULL && config_validate(MIGRATE_ENGINE_KEY,
	    json_object_get_string(url), err, errsz) == -1)
		return -1;
	if (migrate_log_open(json_object_get_string(ts), err, errsz) == -1)
		return -1;
	if (url != NULL && (mig.engine_url = strdup(json_object_get_string(
	    url))) == NULL) {
		migrate_reset();
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	migrate_log_plan(keys, pol);

	/* A backup first (reason pre-migration): keyd takes its requests
	 * in order, so it is made before the import begins. */
	if (backup_before("pre-migration", err, errsz) == -1) {
		migrate_log("failed: no backup could be made first (%s); "
		    "nothing changed", err);
		migrate_reset();
		return -1;
	}
	migrate_log("backup made first (pre-migration)");

	fw = json_object_new_object();
	json_object_object_add(fw, "keys", json_object_get(keys));
	if (pol != NULL)
		json_object_object_add(fw, "policy", json_object_get(pol));
	/* The serialised copy of the plain keys is wiped once written. */
	if (proc_forward_secret(PROC_KEYD, IMSG_LEGACY_IMPORT, MIGRATE_REQ |
	    ctl, fw, "secret") == -1) {
		json_object_put(fw);
		migrate_log("failed: flm-keyd is not running; nothing changed");
		migrate_reset();
		snprintf(err, errsz, "flm-keyd is not running (see flm "
		    "status); nothing changed");
		return -1;
	}
	json_object_put(fw);
	mig.ctl = ctl;
	mig.since = time(NULL);
	return 0;
}

/* keyd's answer: the keys are in (or nothing is); then the engine. */
void
migrate_keyd_reply(uint32_t id, int ok, struct json_object *o)
{
	struct json_object	*v;
	char			 err[512];

	if (mig.ctl == 0 || id != mig.ctl)
		return;		/* a stale answer: the client was told */
	if (!ok) {
		migrate_log("failed: %s", json_object_object_get_ex(o, "error",
		    &v) ? json_object_get_string(v) : "?");
		migrate_log("nothing changed");
		control_relay(id, IMSG_CTL_ERROR, o);
		migrate_reset();
		return;
	}
	migrate_log("keys: %s", json_object_to_json_string_ext(
	    json_object_object_get(o, "keys"), JSON_C_TO_STRING_PLAIN));
	migrate_log("committed: %s keys imported, %s keys in all",
	    json_object_get_string(json_object_object_get(o, "imported")),
	    json_object_get_string(json_object_object_get(o, "count")));
	if (mig.engine_url != NULL) {
		if (config_set(MIGRATE_ENGINE_KEY, mig.engine_url, err,
		    sizeof(err)) == -1) {
			migrate_log("%s: not set: %s", MIGRATE_ENGINE_KEY, err);
			json_object_object_add(o, "engine_error",
			    json_object_new_string(err));
		} else {
			migrate_log("%s = %s", MIGRATE_ENGINE_KEY,
			    mig.engine_url);
			json_object_object_add(o, "engine_url",
			    json_object_new_string(mig.engine_url));
			proc_send_engines();
		}
	}
	migrate_log("done");
	json_object_object_add(o, "log", json_object_new_string(mig.path));
	control_relay(id, IMSG_CTL_RESULT, o);
	migrate_reset();
}
