/*
 * Translating another dialect's request costs json-c a pass over every
 * byte, twice (read, then written escaped), and a long-context request
 * is nearly all one or two long strings the translation only copies.
 * So the long string values are set aside first: the body json-c reads
 * has a placeholder in their place (a backslash, a per-request nonce
 * and an index), and the client's own bytes go back where the
 * placeholder comes out of the translation.  A placeholder that comes
 * out anywhere but at the first level of a string (inside a tool
 * call's arguments, say, or after a backslash) makes skel_splice fail,
 * and the caller translates the whole body the slow way.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "jscan.h"
#include "proxyd.h"
#include "proxyd_front.h"

#define SKEL_MIN	512	/* bytes of a literal worth setting aside */

void
skel_free(struct skel *sk)
{
	free(sk->text);
	free(sk->lit);
	memset(sk, 0, sizeof(*sk));
}

/*
 * The body with its long string values set aside.  -1 if there is
 * nothing to gain (no long value), or on a literal without an end or no
 * memory: the caller reads the body as it is.
 */
int
skel_make(const char *buf, size_t len, struct skel *sk)
{
	const char	*p = buf, *end = buf + len, *q, *r;
	uint8_t		 nb[8];
	size_t		 n;
	void		*nl;

	memset(sk, 0, sizeof(*sk));
	if (len < SKEL_MIN)
		return -1;	/* no room for a long value: most requests */
	if ((sk->text = malloc(len + 1)) == NULL)
		return -1;
	while (p < end) {
		if ((q = memchr(p, '"', (size_t)(end - p))) == NULL)
			q = end;
		memcpy(sk->text + sk->len, p, (size_t)(q - p));
		sk->len += (size_t)(q - p);
		if (q == end)
			break;
		/* Only its end is found here (jscan_str_end): the bytes
		 * inside are judged once the body is put back together
		 * (route_post's jscan, RFC 8259 strict), as a chat
		 * request's are. */
		if ((n = jscan_str_end(buf, len, (size_t)(q - buf))) == 0)
			goto fail;
		r = buf + n;
		/* A key is followed by ':'; long values are set aside. */
		for (p = r; p < end && (*p == ' ' || *p == '\t' ||
		    *p == '\r' || *p == '\n'); p++)
			;
		if ((size_t)(r - q) < SKEL_MIN || (p < end && *p == ':')) {
			memcpy(sk->text + sk->len, q, (size_t)(r - q));
			sk->len += (size_t)(r - q);
			p = r;
			continue;
		}
		if (sk->nlit == 0) {	/* drawn only when there is a use */
			randombytes_buf(nb, sizeof(nb));
			sodium_bin2hex(sk->nonce, sizeof(sk->nonce), nb,
			    sizeof(nb));
		}
		if ((nl = reallocarray(sk->lit, sk->nlit + 1,
		    sizeof(*sk->lit))) == NULL)
			goto fail;
		sk->lit = nl;
		sk->lit[sk->nlit].ofs = (size_t)(q + 1 - buf);
		sk->lit[sk->nlit].len = (size_t)(r - q - 2);
		/* "\\flm<nonce>_<index>": shorter than what it stands for. */
		n = (size_t)snprintf(sk->text + sk->len, len + 1 - sk->len,
		    "\"\\\\flm%s_%zu\"", sk->nonce, sk->nlit);
		sk->len += n;
		sk->nlit++;
		p = r;
	}
	if (sk->nlit > 0)
		return 0;
fail:
	skel_free(sk);
	return -1;
}

/*
 * The translation's text s with the client's bytes back in place of
 * each placeholder, into out.  -1 if a placeholder is anywhere but at
 * the first level of a string (see above).
 */
int
skel_splice(const struct skel *sk, const char *buf, const char *s, size_t n,
    struct evbuffer *out)
{
	char		 tag[40];
	const char	*p = s, *end = s + n, *t, *d;
	size_t		 tl, idx;
	char		*e;

	tl = (size_t)snprintf(tag, sizeof(tag), "flm%s_", sk->nonce);
	while ((t = memmem(p, (size_t)(end - p), tag, tl)) != NULL) {
		/* Two backslashes (one, escaped), and not a third. */
		if (t - s < 2 || t[-1] != '\\' || t[-2] != '\\' ||
		    (t - s >= 3 && t[-3] == '\\'))
			return -1;
		d = t + tl;
		if (d >= end || *d < '0' || *d > '9')
			return -1;
		idx = (size_t)strtoul(d, &e, 10);
		if (idx >= sk->nlit || e > end)
			return -1;
		if (evbuffer_add(out, p, (size_t)(t - 2 - p)) == -1 ||
		    evbuffer_add(out, buf + sk->lit[idx].ofs,
		    sk->lit[idx].len) == -1)
			return -1;
		p = e;
	}
	return evbuffer_add(out, p, (size_t)(end - p));
}
