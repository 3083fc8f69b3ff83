/*
 * Text from elsewhere (engine model names and versions, client-chosen
 * model names in the audit trail, error messages, a model's answer)
 * reaches the admin's terminal only with its control characters made
 * visible: an escape sequence in a model name must not rewrite the
 * screen, retitle the window or forge a line of output.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "flm.h"

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes) that is
 * safe to print, or 0: C1 controls (U+0080..U+009F, which some
 * terminals obey like ESC [) are not safe.
 */
static size_t
term_utf8_len(const unsigned char *s, size_t n)
{
	size_t	 len, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, past U+10FFFF, C1 controls. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

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
		if (s[i] >= 0x80 && (u = term_utf8_len(s + i, n - i)) > 0) {
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
	size_t		 n = strlen(s);
	char		*copy = NULL;
	size_t		 len = 0;
	FILE		*fp;
	int		 unsafe;

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
