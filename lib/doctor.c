/* flm doctor's check list: built by each process, checked by flmd. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "doctor.h"
#include "jsonbuf.h"

static const char *const doctor_statuses[] = {
	"ok", "info", "warn", "fail", "skipped"
};

/* checks += {group, name, status, detail, fix?}; fix NULL: none. */
void
doctor_add(struct json_object *checks, const char *group, const char *name,
    const char *status, const char *fix, const char *fmt, ...)
{
	struct json_object	*o = json_object_new_object();
	char			 detail[DOCTOR_DETAIL_MAX + 1];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "group", json_object_new_string(group));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	if (fix != NULL)
		json_object_object_add(o, "fix", json_object_new_string(fix));
	json_object_array_add(checks, o);
}

int
doctor_status_valid(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(doctor_statuses) / sizeof(*doctor_statuses);
	    i++)
		if (strcmp(s, doctor_statuses[i]) == 0)
			return 1;
	return 0;
}

/* warn and fail need an admin; ok, info and skipped do not. */
int
doctor_needs_attention(const char *s)
{
	return strcmp(s, "warn") == 0 || strcmp(s, "fail") == 0;
}

/*
 * Another process's checks: an array of at most max objects with these
 * members, these types and lengths, and nothing else.
 */
int
doctor_checks_valid(struct json_object *arr, size_t max)
{
	struct json_object	*c;
	size_t			 i, n;
	int			 have;

	if (!json_object_is_type(arr, json_type_array) ||
	    (n = json_object_array_length(arr)) > max)
		return 0;
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(c, json_type_object))
			return 0;
		have = 0;
		json_object_object_foreach(c, k, v) {
			if ((strcmp(k, "group") == 0 || strcmp(k, "name") == 0) &&
			    json_is_string_max(v, DOCTOR_NAME_MAX))
				have++;
			else if (strcmp(k, "status") == 0 &&
			    json_is_string_max(v, 16) &&
			    doctor_status_valid(json_object_get_string(v)))
				have++;
			else if (strcmp(k, "detail") == 0 &&
			    json_is_string_max(v, DOCTOR_DETAIL_MAX))
				have++;
			else if (strcmp(k, "fix") != 0 ||
			    !json_is_string_max(v, DOCTOR_FIX_MAX))
				return 0;
		}
		if (have != 4)
			return 0;
	}
	return 1;
}
