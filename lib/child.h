/*
 * The start of every flmd child: command line, fixed-descriptor
 * channels, signals, privilege drop.  Each process then adds its own
 * sandbox and message handlers.
 */
#ifndef FLM_CHILD_H
#define FLM_CHILD_H

#include "chan.h"
#include "flm_msg.h"
#include "paths.h"

struct event_base;

struct child {
	enum flm_proc		 proc;
	struct event_base	*base;
	struct flm_paths	 paths;
	int			 foreground;
	int			 verbose;
	struct chan		*parent;	/* to flmd */
	struct chan		*peer;		/* proxyd: its keyd */
	/* keyd: one channel per proxyd worker, by the worker's index */
	struct chan		*peers[FLM_WORKERS_MAX];
	chan_msg_cb		 parent_cb;	/* process-specific messages */
	chan_msg_cb		 peer_cb;
	void			 (*peer_up)(struct chan *);
	void			 (*peer_down)(struct chan *, int); /* its channel
						 * (gone), the worker or 0 */
	struct event		*sigs[4];
};

void	child_init(struct child *, enum flm_proc, int, char **);
void	child_become(struct child *, const char *);
void	child_drop(struct child *, const char *, const char *);
int	child_run(struct child *);
void	child_exit(struct child *);

#endif
