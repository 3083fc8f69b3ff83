/*
 * flm doctor's checks, as flmd, flm-keyd and flm build them: a JSON
 * array of {group, name, status, detail, fix?}.  A status is one of
 * ok, info (worth knowing, nothing to do), warn, fail, skipped.
 */
#ifndef FLM_DOCTOR_H
#define FLM_DOCTOR_H

#include <stddef.h>

struct json_object;

#define DOCTOR_MAX_CHECKS	64	/* from one process */
#define DOCTOR_NAME_MAX		64
#define DOCTOR_DETAIL_MAX	400
#define DOCTOR_FIX_MAX		400

void	 doctor_add(struct json_object *, const char *, const char *,
	    const char *, const char *, const char *, ...)
	    __attribute__((format(printf, 6, 7)));
int	 doctor_status_valid(const char *);
int	 doctor_needs_attention(const char *);
int	 doctor_checks_valid(struct json_object *, size_t);

#endif
