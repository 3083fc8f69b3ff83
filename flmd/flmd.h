/* flmd: the supervisor.  Shared between flmd.c, proc.c and control.c. */
#ifndef FLMD_H
#define FLMD_H

#include <sys/types.h>
#include <time.h>

#include "db.h"
#include "flm_msg.h"
#include "paths.h"

struct event_base;
struct json_object;
struct chan;

#define PROC_STABLE_SECS	10	/* a run this long resets back-off */
#define PROC_BACKOFF_MIN_MS	100
#define PROC_BACKOFF_MAX_MS	30000
#define PROC_CRASHLOOP		5	/* quick deaths in a row */
#define PROC_KILL_GRACE_MS	3000	/* SIGTERM, then SIGKILL */
/* Past proxy.drain_timeout, what proxyd gets to exit before flmd stops
 * waiting (it cuts what is left, then waits 1 s for keyd's acks). */
#define PROC_DRAIN_SLACK_SECS	3
/* proxyd's PEER_BROKEN restarts proxyd itself, once in this many seconds. */
#define PROC_COMPLAINT_SECS	30
/* IMSG_LOG: a token bucket per child, and the highest priority it gets. */
#define PROC_LOG_BURST		200	/* lines at once */
#define PROC_LOG_RATE		50	/* lines a second, sustained */
#define PROC_LOG_MAXPRI		3	/* LOG_ERR: never crit, alert, emerg */
/* The largest JSON payloads flmd parses of these (ENGINES_STATE: CHAN_MAX_MSG). */
#define PROC_DB_STATE_MAX	2048
#define PROC_STATS_MAX		4096

struct flmd_proc {
	enum flm_proc	 id;
	const char	*name;
	int		 worker;	/* proxyd: its index; keyd: -1 */
	uint64_t	 requests;	/* proxyd: served, as it reported */
	char		 label[24];	/* in flmd's log: flm-proxyd[N] */
	const char	*user;		/* system mode only */
	const char	*env_path;	/* user-mode override of the binary */
	pid_t		 pid;
	struct chan	*chan;
	struct timespec	 started;	/* CLOCK_MONOTONIC */
	time_t		 started_wall;
	unsigned int	 restarts;
	unsigned int	 quick_deaths;
	int		 backoff_ms;
	int		 crashloop;
	struct event	*ev_restart;
	char		 last_exit[64];
	struct json_object *db_state;	/* keyd: its database's health */
	/* Restarts on its own PEER_BROKEN: at most one a window. */
	struct timespec	 complained;	/* CLOCK_MONOTONIC, last honoured */
	unsigned int	 complaints;	/* honoured so far */
	unsigned int	 complaints_held; /* in this window, not acted on */
	pid_t		 complaint_pid;	/* the complainer, for the deferred */
	struct event	*ev_complaint;	/* restart at the window's end */
	/* IMSG_LOG token bucket; kept across the child's restarts. */
	double		 log_tokens;
	struct timespec	 log_refill;
	unsigned long	 log_dropped;
};

struct flmd {
	struct event_base	*base;
	struct flm_paths	 paths;
	int			 foreground;
	int			 verbose;
	int			 shutting_down;
	int			 draining;	/* proxyd finishes requests */
	struct event		*ev_drain;	/* flmd's bound on that */
	time_t			 started_wall;
	struct timespec		 started;
	char			 self_dir[PATH_MAX];
	const char		*libexec_dir;	/* -L, else LIBEXECDIR */
	int			 exit_status;	/* 1: stopped for a fault */
};

extern struct flmd	*env;

/* proc.c */
void			 proc_init(void);
void			 proc_start_all(void);
void			 proc_reap(void);
void			 proc_reload_all(void);
int			 proc_shutdown_all(void);
int			 proc_drain(void);
int			 proc_alive_count(void);
struct json_object	*proc_status_json(void);
struct json_object	*proc_workers_status_json(void);
struct flmd_proc	*proc_byid(enum flm_proc);
struct flmd_proc	*proc_worker(int);
int			 proc_nworkers_get(void);
struct chan		*proc_worker_chan(int);
void			 proc_workers_json(uint16_t, struct json_object *);
void			 proc_workers_apply(void);
long			 proc_uptime(const struct timespec *);

struct chan		*proc_chan(enum flm_proc);
int			 proc_forward(enum flm_proc, uint16_t, uint32_t,
			    struct json_object *);
int			 proc_forward_secret(enum flm_proc, uint16_t, uint32_t,
			    struct json_object *, const char *);
void			 proc_send_engines(void);
void			 proc_send_limits(void);
void			 proc_send_shm(struct chan *);

int			 proc_check_binaries(void);

/* flmd_spawn.c */
void			 spawn_start(void);
pid_t			 spawn_child(enum flm_proc, int, int, int *);
pid_t			 spawn_hook_run(const char *, const char *, const char *,
			    const char *, const char *, int, int *);
int			 spawn_reaped(pid_t, int);
void			 spawn_stop(void);
int			 spawn_path(const struct flmd_proc *, char *, size_t,
			    char *, size_t);

/* flmd_sandbox.c */
void			 flmd_sandbox(void);
void			 flmd_sandbox_spawner(void);

/* control.c */
void			 control_bind(void);
void			 control_init(void);
void			 control_cleanup(void);
void			 control_relay(uint32_t, uint16_t, struct json_object *);
void			 control_relay_error(uint32_t, int, const char *);
void			 control_egress_checked(uint32_t, struct json_object *);
void			 control_progress(uint32_t, struct json_object *);
void			 control_proc_gone(enum flm_proc);
void			 control_engines_reply(uint32_t, struct json_object *);
void			 control_doctor_done(uint32_t, struct json_object *);
void			 control_backup_reply(uint32_t, int, struct json_object *,
			    int);

/* flmd_doctor.c: flm doctor; flmd's requests to keyd carry DOCTOR_REQ */
#define DOCTOR_REQ		0x40000000U
void			 doctor_start(uint32_t);
void			 doctor_keyd_reply(uint32_t, int, struct json_object *);
void			 doctor_keyd_gone(void);
void			 doctor_cleanup(void);

/* flmd_backup.c */
#define BACKUP_REQ		0x10000000U	/* peerid: a restore's or
						 * the daily backup's */
int			 backup_config_fd(char *, size_t);
int			 backup_send_config(char *, size_t);
int			 backup_staged(int, char *, size_t);
void			 backup_abort(void);
void			 backup_finish(void);
void			 backup_keyd_state(struct json_object *);
void			 backup_daily_reply(int, struct json_object *);
int			 backup_before(const char *, char *, size_t);
void			 backup_init(void);
void			 backup_cleanup(void);
void			 flmd_restart(const char *);
/* flmd_migrate.c: flm migrate legacy --apply; its request to keyd
 * carries MIGRATE_REQ */
#define MIGRATE_REQ		0x20000000U
int			 migrate_start(uint32_t, struct json_object *, char *,
			    size_t);
void			 migrate_keyd_reply(uint32_t, int, struct json_object *);
void			 migrate_cleanup(void);

/* flmd_config.c */
#define CONFIG_DB_NAME		"config.db"
extern struct db	 config_db;
void			 config_open(void);
void			 config_close(void);
int			 config_set(const char *, const char *, char *, size_t);
int			 config_validate(const char *, const char *, char *,
			    size_t);
int			 config_unset(const char *, char *, size_t);
struct json_object	*config_list(const char *);
struct json_object	*config_engines(void);
long long		 config_limit(const char *);
const char		*config_value(const char *, const char *, char *, size_t);
int			 config_dns_wait(void);
int			 config_workers(void);
int			 config_workers_parse(const char *);
struct json_object	*config_engine_ids(void);
struct json_object	*config_limits(void);
struct json_object	*config_egress(const char *);
int			 config_parse_url(const char *, char *, size_t, int *,
			    int *);
int64_t			 config_owner(const char *, const char *, int);
int			 config_owner_set(const char *, int64_t, const char *,
			    int, char *, size_t);

/* flmd_engines.c */
void			 engines_state(uint32_t, struct json_object *);
int			 engines_valid(struct json_object *, char *, size_t);
void			 engines_sent(struct json_object *);
int			 engines_trust(const char *, struct json_object **,
			    char *, size_t);

/* flmd_proxy.c */
/* flmd's own requests to keyd carry this bit; control clients' never. */
#define PROXY_TLS_REQ		0x80000000U
int			 proxy_start(struct json_object *, uint32_t,
			    struct json_object **, char *, size_t);
int			 proxy_stop(struct json_object *, struct json_object **,
			    char *, size_t);
struct json_object	*proxy_status(void);
int			 proxy_egress_valid(struct json_object *);
void			 proxy_egress_state(uint32_t, struct json_object *);
int			 proxy_stats_valid(struct json_object *);
void			 proxy_stats(struct json_object *);
void			 proxy_send_all(struct chan *);
void			 proxy_restore(void);
void			 proxy_cleanup(void);
void			 proxy_tls_reply(uint32_t, int, struct json_object *);
void			 proxy_tls_renewed(struct json_object *);
void			 proxy_acme_progress(struct json_object *);
int			 proxy_acme_dns_name(const char *, const char *);
int			 proxy_acme_failed(struct json_object *);

/* flmd_acme.c */
struct json_object	*acme_opts(struct json_object *, char *, size_t);
struct json_object	*acme_ensure_args(struct json_object *);
int			 acme_progress_valid(struct json_object *);

/* flmd_acme_dns.c */
int			 acme_dns_request(uint32_t, struct json_object *);
int			 acme_dns_reaped(pid_t, int);
void			 acme_dns_cleanup(void);
void			 proxy_tls_ensure_all(void);
void			 proxy_keyd_gone(void);

/* flmd_tls.c */
int			 tls_name_valid(const char *, size_t);
struct json_object	*tls_names(void);
struct json_object	*tls_addrs(const char *);
void			 tls_add_subject(struct json_object *, const char *);
int			 tls_certinfo_valid(struct json_object *, const char *);

#endif
