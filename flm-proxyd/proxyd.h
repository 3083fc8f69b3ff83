/* flm-proxyd: shared between its files. */
#ifndef PROXYD_H
#define PROXYD_H

#include <stdint.h>

#include "child.h"
#include "flm_msg.h"

struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct json_object;

#define PROXYD_MAX_LISTENERS	8
#define PROXYD_MAX_ENGINES	32

struct proxyd_engine {
	char		 id[33];
	char		 kind[16];
	char		 host[256];
	char		 addr[64];	/* numeric: proxyd resolves nothing */
	int		 port;
};

struct proxyd_listener {
	char			 id[80];
	struct evhttp		*http;
	int			 auth;		/* 0: benchmark only, loopback */
};

struct proxyd {
	struct child		 c;
	struct proxyd_listener	*listeners[PROXYD_MAX_LISTENERS];
	int			 nlisteners;
	struct keycache		*cache;
	struct proxyd_engine	 engines[PROXYD_MAX_ENGINES];
	int			 nengines;
};

extern struct proxyd	*px;

/* proxyd_http.c */
void	http_listen(int, const char *, int);
void	http_close(const char *);
void	http_cleanup(void);
void	http_json(struct evhttp_request *, int, struct json_object *);
void	http_error(struct evhttp_request *, int, const char *, const char *,
	    const char *);
void	http_watch_close(struct evhttp_request *);

/* proxyd_auth.c */
typedef void	(*auth_done_cb)(struct evhttp_request *, const char *, void *);
void	auth_init(void);
void	auth_check(struct evhttp_request *, auth_done_cb, void *);
void	auth_verdict(struct chan *, struct chan_msg *);
void	auth_invalidate(struct chan *, struct chan_msg *);
void	auth_keyd_up(struct chan *);
void	auth_conn_closed(struct evhttp_connection *);
void	auth_cleanup(void);

/* proxyd_catalogue.c */
unsigned int	catalogue_stale(void);
unsigned int	catalogue_generation(void);
void	catalogue_update(struct json_object *, unsigned int);
void	catalogue_models(struct evhttp_request *, const char *, void *);
void	catalogue_conn_closed(struct evhttp_connection *);
void	catalogue_cleanup(void);

/* proxyd_probe.c */
void	probe_init(void);
void	probe_run(uint32_t);
void	probe_cleanup(void);

/* proxyd_sandbox.c */
void	proxyd_sandbox(void);

#endif
