/*
 * The API key format, checked the same way by proxyd (before bothering
 * keyd) and by keyd: flm_<16 hex id>_<43 base64url secret>.
 */
#include "config.h"

#include <string.h>

#include "apikey.h"

static int
apikey_is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A key id: FLM_KEY_ID_LEN lower-case hex digits, NUL-terminated. */
int
apikey_id_valid(const char *id)
{
	size_t	 i;

	for (i = 0; i < FLM_KEY_ID_LEN; i++)
		if (!apikey_is_hex((unsigned char)id[i]))
			return 0;
	return id[FLM_KEY_ID_LEN] == '\0';
}

static int
apikey_is_b64url(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* 0 and the id (NUL-terminated) and secret if well formed, else -1. */
int
apikey_parse(const char *tok, size_t len, char id[FLM_KEY_ID_LEN + 1],
    const char **secret)
{
	size_t	 i;

	if (len != FLM_KEY_LEN || memcmp(tok, FLM_KEY_PREFIX, 4) != 0 ||
	    tok[4 + FLM_KEY_ID_LEN] != '_')
		return -1;
	for (i = 0; i < FLM_KEY_ID_LEN; i++)
		if (!apikey_is_hex((unsigned char)tok[4 + i]))
			return -1;
	for (i = 4 + FLM_KEY_ID_LEN + 1; i < len; i++)
		if (!apikey_is_b64url((unsigned char)tok[i]))
			return -1;
	memcpy(id, tok + 4, FLM_KEY_ID_LEN);
	id[FLM_KEY_ID_LEN] = '\0';
	*secret = tok + 4 + FLM_KEY_ID_LEN + 1;
	return 0;
}

/* 1-64 characters of [A-Za-z0-9._-]. */
int
apikey_label_valid(const char *label)
{
	size_t	 i, len = strlen(label);

	if (len < 1 || len > 64)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	 c = label[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			return 0;
	}
	return 1;
}

/*
 * A token another gateway issued (flm migrate legacy): 1-FLM_TOKEN_MAX
 * printable ASCII characters, no blank, and not one of ours (a token
 * that starts flm_ is judged as an flm key and nothing else).
 */
int
apikey_legacy_valid(const char *tok, size_t len)
{
	size_t	 i;

	if (len < 1 || len > FLM_TOKEN_MAX ||
	    (len >= 4 && memcmp(tok, FLM_KEY_PREFIX, 4) == 0))
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= 0x20 ||
		    (unsigned char)tok[i] >= 0x7f)
			return 0;
	return 1;
}
