/*
 * Between proxyd_front.c and the dialects it serves: an OpenAI answer
 * (whole, or one stream chunk) read into one neutral shape, and the
 * state of one answer being translated.
 */
#ifndef PROXYD_FRONT_H
#define PROXYD_FRONT_H

#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "jscan.h"
#include "jwrite.h"
#include "proxyd.h"

#define FRONT_MAX_TOOLS		128	/* calls in one answer: more refused */
#define FRONT_TOO_MANY		"the answer makes more than 128 tool calls, " \
				"more than FLM translates."
#define FRONT_MAX_ARGS		(1024 * 1024)	/* a tool call's arguments */
#define FRONT_MAX_TEXT		(16 * 1024 * 1024)	/* an answer kept */

/* One tool call of an OpenAI answer, or a piece of one in a stream. */
struct front_call {
	int		 index;
	const char	*id;		/* NULL: not in this piece */
	const char	*name;
	const char	*args;
	size_t		 alen;
};

/* What an OpenAI answer or chunk says; pointers into its JSON. */
struct front_msg {
	const char	*text;		/* content, or a completion's text */
	size_t		 tlen;
	int		 ncalls;
	const char	*finish;	/* finish_reason, or NULL */
	int		 has_usage;
	int64_t		 ptok, ctok;
	struct front_call calls[FRONT_MAX_TOOLS];	/* last: not cleared */
};

/* A tool call assembled from a stream's pieces. */
struct front_tool {
	char		 id[96];
	char		 name[128];
	char		*args;
	size_t		 alen;
	int		 index;		/* OpenAI's, in the stream */
	int		 block;		/* Anthropic: its content block */
};

struct front {
	enum dialect	 dl;
	enum http_endpoint ep;		/* the client's */
	char		*model;		/* as the client named it */
	uint64_t	 reqid;
	struct timespec	 start;
	int		 stream;
	char		 finish[24];
	int64_t		 ptok, ctok;
	struct front_tool *tools;	/* grown as calls come */
	int		 ntools, toolcap;
	const char	*why;		/* what the engine's answer broke */
	int		 started;	/* the first event went out */
	int		 block;		/* Anthropic: the open block, -1 */
	int		 text_block;	/* it is a text block */
	int		 nblocks;
	int		 done;
	/* Responses: the text so far (its done events repeat it), its
	 * item's place, and the events' sequence numbers. */
	char		*text;
	size_t		 tlen, tcap;
	int		 msg_item;	/* -1: no message item */
	int		 seq;
};

/*
 * A member of an object being built.  Every key here is a literal or
 * in a static table: json-c need not copy it (one allocation less a
 * member, on every translated request and answer).
 */
static inline void
jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add_ex(o, k, v, JSON_C_OBJECT_ADD_CONSTANT_KEY);
}
#define jstr	json_object_new_string

/* A value read where it lies, written as it is; or a string's insides
 * only, escapes and all, within a string being written. */
static inline void
front_copy(struct jw *w, const struct jval *v)
{
	jw_raw(w, v->b + v->ofs, v->end - v->ofs);
}

static inline void
front_inside(struct jw *w, const struct jval *v)
{
	jw_sraw(w, v->b + v->ofs + 1, v->end - v->ofs - 2);
}

/* proxyd_front.c */
void	front_stream_write(struct jw *);
const char *front_cstr(const struct jval *, size_t *);
const char *front_what(const struct jval *);
struct jw *front_writer(void);
void	front_event_text(struct evbuffer *, const char *, const struct jw *);
void	front_args_write(struct jw *, const char *, size_t);
int	front_msg_scan(struct front *, const char *, size_t, int,
	    struct front_msg *);
int	front_tool_add(struct front *, const struct front_call *, int *);
int	front_text_add(struct front *, const char *, size_t);
void	front_ndjson(struct evbuffer *, struct json_object *);
void	front_event(struct evbuffer *, const char *, struct json_object *);
int64_t	front_elapsed_ns(const struct front *);

/* proxyd_front_ollama.c */
int	fo_request(enum http_endpoint, const struct jval *, struct jw *,
	    enum http_endpoint *, char *, size_t);
int	fo_answer(struct front *, struct front_msg *, struct jw *);
struct json_object *fo_embeddings(struct front *, struct json_object *);
int	fo_chunk(struct front *, const struct front_msg *, struct evbuffer *);
void	fo_end(struct front *, struct evbuffer *);

/* proxyd_front_messages.c */
int	fm_request(enum http_endpoint, const struct jval *, struct jw *,
	    enum http_endpoint *, char *, size_t);
int	fm_answer(struct front *, struct front_msg *, struct jw *);
struct json_object *fm_count_answer(struct front *, struct json_object *);
int	fm_chunk(struct front *, const struct front_msg *, struct evbuffer *);
void	fm_end(struct front *, struct evbuffer *);
const char *fm_error_type(int);

/* proxyd_front_responses.c */
int	fr_request(enum http_endpoint, const struct jval *, struct jw *,
	    enum http_endpoint *, char *, size_t);
int	fr_answer(struct front *, struct front_msg *, struct jw *);
int	fr_chunk(struct front *, const struct front_msg *, struct evbuffer *);
void	fr_end(struct front *, struct evbuffer *);

#endif
