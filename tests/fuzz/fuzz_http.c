/*
 * libFuzzer target for flm-proxyd's HTTP parser, chunked decoder, path
 * normaliser and Ollama stream translation: bytes from a client or an
 * engine must never crash, hang or read out of bounds.  The first byte
 * picks what the rest is fed to, and how it is split.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxyd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_head(const char *p, size_t n, int response)
{
	struct http_head	 h;
	size_t			 len;
	int			 rc;

	rc = http_parse_head(p, n, response, &h);
	if (rc > 0) {
		if ((size_t)rc > n)
			abort();
		(void)http_header(&h, "content-length", &len);
		for (int i = 0; i < h.nhdrs; i++)
			if (h.hdrs[i].name < p || h.hdrs[i].value + h.hdrs[i].vlen >
			    p + n)
				abort();
	}
}

/* Decode in pieces of step bytes; the payload goes to out. */
static int
fuzz_decode(const char *p, size_t n, size_t step, char *out, size_t *olen)
{
	struct http_chunked	 ck;
	const char		*d;
	size_t			 off = 0, used, dlen, cut;
	int			 rc = 0;

	memset(&ck, 0, sizeof(ck));
	*olen = 0;
	while (off < n && rc == 0) {
		cut = n - off < step ? n - off : step;
		rc = http_chunked_step(&ck, p + off, cut, &used, &d, &dlen);
		if (rc == -1)
			return -1;
		if (used > cut || (dlen > 0 && (d < p + off ||
		    d + dlen > p + off + used)))
			abort();
		if (used == 0 && rc == 0 && dlen == 0)
			abort();	/* no progress: a hang */
		if (dlen > 0)
			memcpy(out + *olen, d, dlen);
		*olen += dlen;
		off += used;
	}
	return rc;
}

/* The same body fed whole and in pieces must decode the same. */
static void
fuzz_chunked(const char *p, size_t n, size_t step)
{
	char	*a, *b;
	size_t	 alen, blen;
	int	 ra, rb;

	if ((a = malloc(n + 1)) == NULL || (b = malloc(n + 1)) == NULL) {
		free(a);
		return;
	}
	ra = fuzz_decode(p, n, n, a, &alen);
	rb = fuzz_decode(p, n, step, b, &blen);
	if (ra != rb || (ra == 1 && (alen != blen || memcmp(a, b, alen) != 0)))
		abort();
	free(a);
	free(b);
}

static void
fuzz_path(const char *p, size_t n)
{
	char	 out[256];

	if (http_path_normalise(p, n, out, sizeof(out)) == 0) {
		if (out[0] != '/' || strstr(out, "/../") != NULL ||
		    strstr(out, "//") != NULL || strlen(out) >= sizeof(out))
			abort();
	}
}

static void
fuzz_stream(const char *p, size_t n)
{
	struct ollama_stream	*os;
	struct evbuffer		*out = evbuffer_new();
	const char		*nl;

	os = ollama_stream_new(UP_OLLAMA_CHAT, "m", 1, 1);
	while (n > 0) {
		nl = memchr(p, '\n', n);
		size_t	 len = nl != NULL ? (size_t)(nl - p) : n;

		(void)ollama_stream_line(os, p, len, out, NULL);
		if (nl == NULL)
			break;
		n -= len + 1;
		p = nl + 1;
	}
	ollama_stream_free(os);
	evbuffer_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p;
	char		*copy;

	if (size < 1)
		return 0;
	/* A private copy: reads past the end are ASan's to catch. */
	if ((copy = malloc(size - 1 + 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	p = copy;
	switch (data[0] % 5) {
	case 0:
	case 1:
		fuzz_head(p, size - 1, data[0] % 5);
		break;
	case 2:
		fuzz_chunked(p, size - 1, 1 + data[0] / 5 % 17);
		break;
	case 3:
		fuzz_path(p, size - 1);
		break;
	default:
		fuzz_stream(p, size - 1);
		break;
	}
	free(copy);
	return 0;
}
