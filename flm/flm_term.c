/*
 * Text from elsewhere (engine model names and versions, client-chosen
 * model names in the audit trail, error messages, a model's answer)
 * reaches the admin's terminal only with its control characters made
 * visible: an escape sequence in a model name must not rewrite the
 * screen, retitle the window or forge a line of output.  Unlike
 * log_escape (a bounded line for a log) this writes text of any length
 * and may keep its line breaks; both judge UTF-8 with log_utf8_len.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "flm.h"
#include "log.h"

/* Bytes of s that print as themselves; *unsafe says why it stopped. */
static size_t
term_span(const unsigned char *s, size_t n, int lines, int *unsafe)
{
	size_t	 i = 0, u;

	*unsafe = 0;
	while (i < n) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			i++;
			continue;
		}
		if (lines && (s[i] == '\n' || s[i] == '\t')) {
			i++;
			continue;
		}
		if (s[i] >= 0x80 && (u = log_utf8_len(s + i, n - i)) > 0) {
			i += u;
			continue;
		}
		*unsafe = 1;
		break;
	}
	return i;
}

/*
 * Write n bytes of s to fp, each unsafe byte as \xNN (a backslash as
 * itself: the output is for eyes, not for parsing back).  With lines,
 * newlines and tabs pass.
 */
void
term_write(FILE *fp, const char *s, size_t n, int lines)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 k;
	int			 unsafe;

	while (n > 0) {
		k = term_span(p, n, lines, &unsafe);
		fwrite(p, 1, k, fp);
		p += k;
		n -= k;
		if (!unsafe)
			break;
		fprintf(fp, "\\x%02x", *p);
		p++;
		n--;
	}
}

static void
term_free(struct json_object *o, void *copy)
{
	(void)o;
	free(copy);
}

/*
 * The printable form of a JSON value's text: the text itself when it
 * is safe (nearly always), else an escaped copy owned by the value and
 * freed with it.
 */
const char *
term_str(struct json_object *v)
{
	const char	*s = json_object_get_string(v);
	size_t		 n;
	char		*copy = NULL;
	size_t		 len = 0;
	FILE		*fp;
	int		 unsafe;

	if (s == NULL)
		return "(null)";
	/* Made before: setting it again would free what a caller holds. */
	if ((copy = json_object_get_userdata(v)) != NULL)
		return copy;
	n = strlen(s);
	if (term_span((const unsigned char *)s, n, 0, &unsafe) == n)
		return s;
	if ((fp = open_memstream(&copy, &len)) == NULL)
		return "?";
	term_write(fp, s, n, 0);
	if (fclose(fp) != 0) {
		free(copy);
		return "?";
	}
	json_object_set_userdata(v, copy, term_free);
	return copy;
}
