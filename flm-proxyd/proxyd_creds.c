/*
 * The credentials keyd hands proxyd: an engine's API key, sent upstream
 * as "Authorization: Bearer" and nowhere else.  keyd sends the whole
 * set each time (IMSG_ENGINE_CREDS), only for the engines flmd
 * configured; what it replaces is wiped.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "proxyd.h"

#define CREDS_SECRET_MAX	4096

/* One per engine, and the SOCKS5 password. */
#define CREDS_MAX		(PROXYD_MAX_ENGINES + 1)

static struct {
	char	 id[33];
	char	*secret;
}		 creds[CREDS_MAX];
static int	 ncreds;

static void
creds_free(void)
{
	int	 i;

	for (i = 0; i < ncreds; i++) {
		sodium_memzero(creds[i].secret, strlen(creds[i].secret));
		free(creds[i].secret);
	}
	ncreds = 0;
}

/* The engine's credential, or NULL. */
const char *
creds_get(const char *id)
{
	int	 i;

	for (i = 0; i < ncreds; i++)
		if (strcmp(creds[i].id, id) == 0)
			return creds[i].secret;
	return NULL;
}

/* u64 seq, u32 n, n * (string id, string secret); keyd checked them,
 * so a malformed set is keyd's fault: the channel goes. */
void
creds_receive(struct chan *ch, struct chan_msg *m)
{
	char		 id[33], secret[CREDS_SECRET_MAX + 1];
	uint64_t	 seq;
	uint32_t	 n, i;

	if (msg_get_u64(m, &seq) == -1 || msg_get_u32(m, &n) == -1 ||
	    n > CREDS_MAX)
		goto bad;
	creds_free();
	for (i = 0; i < n; i++) {
		if (msg_get_string(m, id, sizeof(id)) == -1 ||
		    msg_get_string(m, secret, sizeof(secret)) == -1 ||
		    secret[0] == '\0' || strpbrk(secret, "\r\n") != NULL)
			goto bad;
		memcpy(creds[ncreds].id, id, sizeof(id));
		if ((creds[ncreds].secret = strdup(secret)) == NULL)
			fatal("%s", __func__);
		ncreds++;
	}
	if (msg_end(m) == -1)
		goto bad;
	sodium_memzero(secret, sizeof(secret));
	msg_wipe(m);
	log_debug("credentials of %d engines", ncreds);
	chan_compose(ch, IMSG_CREDS_APPLIED, 0, -1, &seq, sizeof(seq));
	return;
bad:
	sodium_memzero(secret, sizeof(secret));
	msg_wipe(m);
	creds_free();
	chan_fail(ch, "malformed ENGINE_CREDS");
}

void
creds_cleanup(void)
{
	creds_free();
}
