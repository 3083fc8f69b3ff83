/*
 * Writing JSON text without a tree, the other half of jscan: a value
 * read from a text jscan_parse took is copied as its own bytes, so a
 * translated request or answer costs a copy, not an object a member.
 * Separators are the writer's: a key or a value after another gets
 * its ','.
 */
#ifndef FLM_JWRITE_H
#define FLM_JWRITE_H

#include <stddef.h>
#include <stdint.h>

struct jw {
	char	*b;
	size_t	 len, cap;
	int	 err;		/* out of memory: the text is cut short */
	int	 sep;		/* a ',' goes before the next key or value */
};

void	jw_reset(struct jw *, size_t);
void	jw_free(struct jw *);
void	jw_open(struct jw *, char);
void	jw_close(struct jw *, char);
void	jw_key(struct jw *, const char *);
void	jw_raw(struct jw *, const char *, size_t);
void	jw_lit(struct jw *, const char *);
void	jw_str(struct jw *, const char *, size_t);
void	jw_int(struct jw *, int64_t);
void	jw_sopen(struct jw *);
void	jw_sraw(struct jw *, const char *, size_t);
void	jw_sesc(struct jw *, const char *, size_t);
void	jw_sclose(struct jw *);
const char *jw_cstr(struct jw *);
char	*jw_take(struct jw *, size_t *);

#endif
