/*
 * The JSON writer (see jwrite.h).  Keys are the caller's literals and
 * are written as they are; strings from elsewhere are escaped as
 * RFC 8259 asks, bytes of 0x80 and above left as they are (the texts
 * they come from were checked as UTF-8 when read).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwrite.h"

/* Room for n more bytes; 0, or -1 with w->err set. */
static int
jw_room(struct jw *w, size_t n)
{
	size_t	 cap;
	char	*p;

	if (w->err)
		return -1;
	if (w->len + n <= w->cap)
		return 0;
	cap = w->cap > 0 ? w->cap : 256;
	while (cap < w->len + n)
		cap *= 2;
	if ((p = realloc(w->b, cap)) == NULL) {
		w->err = 1;
		return -1;
	}
	w->b = p;
	w->cap = cap;
	return 0;
}

static void
jw_put(struct jw *w, const char *s, size_t n)
{
	if (jw_room(w, n) == 0) {
		memcpy(w->b + w->len, s, n);
		w->len += n;
	}
}

/* Before a value: its separator. */
static void
jw_val(struct jw *w)
{
	if (w->sep)
		jw_put(w, ",", 1);
	w->sep = 1;
}

/* Emptied for a new text; its room given back if above keep. */
void
jw_reset(struct jw *w, size_t keep)
{
	if (w->cap > keep)
		jw_free(w);
	w->len = 0;
	w->err = 0;
	w->sep = 0;
}

void
jw_free(struct jw *w)
{
	free(w->b);
	memset(w, 0, sizeof(*w));
}

/* c: '{' or '['. */
void
jw_open(struct jw *w, char c)
{
	jw_val(w);
	jw_put(w, &c, 1);
	w->sep = 0;
}

void
jw_close(struct jw *w, char c)
{
	jw_put(w, &c, 1);
	w->sep = 1;
}

/* k: a literal that needs no escape. */
void
jw_key(struct jw *w, const char *k)
{
	size_t	 n = strlen(k);

	if (w->sep)
		jw_put(w, ",", 1);
	if (jw_room(w, n + 3) == 0) {
		w->b[w->len++] = '"';
		memcpy(w->b + w->len, k, n);
		w->len += n;
		w->b[w->len++] = '"';
		w->b[w->len++] = ':';
	}
	w->sep = 0;
}

/* A value's own text, read from valid JSON. */
void
jw_raw(struct jw *w, const char *s, size_t n)
{
	jw_val(w);
	jw_put(w, s, n);
}

void
jw_lit(struct jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

void
jw_str(struct jw *w, const char *s, size_t n)
{
	jw_sopen(w);
	jw_sesc(w, s, n);
	jw_sclose(w);
}

void
jw_int(struct jw *w, int64_t v)
{
	char	 b[24];
	int	 n = snprintf(b, sizeof(b), "%" PRId64, v);

	jw_raw(w, b, (size_t)n);
}

/* A string made of pieces: opened, its pieces, closed. */
void
jw_sopen(struct jw *w)
{
	jw_val(w);
	jw_put(w, "\"", 1);
}

/* The insides of a JSON string as they are, escapes and all. */
void
jw_sraw(struct jw *w, const char *s, size_t n)
{
	jw_put(w, s, n);
}

/* Bytes escaped. */
void
jw_sesc(struct jw *w, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s, *e = p + n;
	const unsigned char	*run;
	char			 esc[6] = { '\\', 'u', '0', '0' };

	while (p < e) {
		for (run = p; p < e && *p >= 0x20 && *p != '"' && *p != '\\';
		    p++)
			;
		jw_put(w, (const char *)run, (size_t)(p - run));
		if (p == e)
			break;
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			jw_put(w, esc, 2);
			esc[1] = 'u';
		} else if (*p == '\n')
			jw_put(w, "\\n", 2);
		else {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			jw_put(w, esc, 6);
		}
		p++;
	}
}

void
jw_sclose(struct jw *w)
{
	jw_put(w, "\"", 1);
}

/* The text, now the caller's to free; the writer left empty. */
char *
jw_take(struct jw *w, size_t *len)
{
	char	*b = w->b;

	*len = w->len;
	memset(w, 0, sizeof(*w));
	return b;
}

/* The text so far as a C string (its NUL not counted), or NULL. */
const char *
jw_cstr(struct jw *w)
{
	if (jw_room(w, 1) == -1)
		return NULL;
	w->b[w->len] = '\0';
	return w->b;
}
