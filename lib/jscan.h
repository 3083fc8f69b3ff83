/*
 * A strict JSON scanner that builds no tree: it validates one text
 * whose value is an object and records where each member of that
 * object lies (and the members of its object values), so a caller can
 * read the few fields it needs and forward the text's own bytes.
 *
 * It judges as json-c 0.16's tokener with JSON_TOKENER_STRICT |
 * JSON_TOKENER_VALIDATE_UTF8 (json_parse_buf_strict) judges, except
 * that it also refuses what that tokener lets through and RFC 8259
 * does not (JSCAN_ESTRICT): single quotes, NaN and Infinity, leading
 * zeros, "1.", raw control characters in strings, overlong, surrogate
 * or out-of-range UTF-8, lone surrogate escapes, and a \u0000 in a key
 * (json-c cuts the key there).  A text forwarded as it is must mean to
 * the engine what it meant to us.
 */
#ifndef FLM_JSCAN_H
#define FLM_JSCAN_H

#include <stddef.h>

#define JSCAN_MAX_DEPTH	32	/* json-c's JSON_TOKENER_DEFAULT_DEPTH */

enum jscan_type {
	JSCAN_NULL = 0,
	JSCAN_BOOL,
	JSCAN_INT,
	JSCAN_DOUBLE,
	JSCAN_STRING,
	JSCAN_ARRAY,
	JSCAN_OBJECT,
};

enum jscan_err {
	JSCAN_OK = 0,
	JSCAN_ESYNTAX,		/* json-c refuses it too */
	JSCAN_EDEPTH,		/* deeper than JSCAN_MAX_DEPTH */
	JSCAN_ENOTOBJ,		/* a JSON value, not an object */
	JSCAN_ESTRICT,		/* json-c takes it, RFC 8259 does not */
	JSCAN_ENOMEM,
};

/* One member of the top-level object, or of one of its object values. */
struct jscan_member {
	size_t		 kofs;		/* the key, quotes included */
	size_t		 vofs, vend;	/* the value */
	size_t		 name, nlen;	/* the key decoded, in keys */
	int		 parent;	/* -1 top level, else a member index */
	enum jscan_type	 type;
	int		 truth;		/* JSCAN_BOOL: true */
	int		 last;		/* the occurrence of its key json-c keeps */
	size_t		 nelem;		/* JSCAN_ARRAY: its elements */
	long		 badelem;	/* the first not an object with a string
					 * elem_key, or -1 */
	size_t		 oofs;		/* JSCAN_OBJECT: its '{' */
};

struct jscan {
	const char		*elem_key;	/* set by the caller, or NULL */
	int			 trusted;	/* set by the caller: see below */
	size_t			 oofs, oend;	/* the top-level '{' and '}' */
	struct jscan_member	*m;
	size_t			 nm, mcap;
	char			*keys;
	size_t			 klen, kcap;
	struct js_key		*sort;		/* js_mark_last's */
	size_t			 scap;
	enum jscan_err		 err;
	size_t			 errofs;
};

/*
 * A value of a text jscan_parse took, to read it where it lies:
 * b[ofs, end), b being n bytes long; end == 0 if there is none.  If
 * js is set, the value is an object js recorded (the top level, at -1,
 * or member at's value), whose members are found in js's table rather
 * than by reading the text again.
 */
struct jval {
	const char		*b;
	size_t			 n, ofs, end;
	const struct jscan	*js;
	int			 at;
};

/*
 * trusted: the text is one FLM wrote itself from values jscan already
 * took (a translated request): its structure is judged as any text's,
 * but a string not decoded is only found by its end, its bytes not
 * judged again.
 */
int	 jscan_parse(struct jscan *, const char *, size_t);
void	 jscan_free(struct jscan *);
int	 jscan_find(const struct jscan *, int, const char *);
int	 jscan_keyeq(const struct jscan *, int, const char *);
char	*jscan_string(const char *, const struct jscan_member *, size_t *);
const char *jscan_string_in(struct jscan *, const char *,
	    const struct jscan_member *, size_t *);
size_t	 jscan_str_end(const char *, size_t, size_t);
int	 jscan_get(const char *, size_t, size_t, const char *, size_t *,
	    size_t *);
int	 jscan_next(const char *, size_t, size_t *, size_t *, size_t *);
const char *jscan_type_name(enum jscan_type);
int	 jval_get(const struct jval *, const char *, struct jval *);
void	 jval_getv(const struct jval *, const char *const *, size_t,
	    struct jval *);
int	 jval_empty(const struct jval *);
int	 jval_next(const struct jval *, size_t *, struct jval *);
int	 jval_is(const struct jval *, enum jscan_type);
int	 jval_set(const struct jval *);
int	 jval_streq(const struct jval *, const char *);
long long jval_int(const struct jval *);
const char *jscan_strerror(enum jscan_err);

#endif
