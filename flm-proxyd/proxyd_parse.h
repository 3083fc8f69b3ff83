/*
 * flm-proxyd's HTTP/1.1 parser: pure functions over bytes, no I/O, so
 * the fuzzer (tests/fuzz/fuzz_http.c) drives exactly what clients and
 * engines drive.  Strict by design (RFC 9112): what it cannot read
 * unambiguously it refuses, so no request can mean one thing to FLM
 * and another to an engine behind it.
 */
#ifndef PROXYD_PARSE_H
#define PROXYD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HDRS	64

enum http_method {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_OPTIONS,
};

struct http_hdr {
	const char	*name;
	size_t		 nlen;
	const char	*value;
	size_t		 vlen;
};

/* A parsed head; every pointer points into the buffer parsed. */
struct http_head {
	enum http_method method;
	const char	*target;	/* requests */
	size_t		 tlen;
	int		 minor;		/* HTTP/1.minor */
	int		 status;	/* responses */
	int64_t		 clen;		/* Content-Length, -1 if none */
	int		 chunked;	/* Transfer-Encoding: chunked */
	int		 close;		/* the sender will not keep alive */
	int		 nhdrs;
	struct http_hdr	 hdrs[HTTP_MAX_HDRS];
};

/*
 * http_parse_head(buf, len, response, head): > 0 the length of a
 * complete head, 0 not complete yet, < 0 minus the HTTP status that
 * says why it is refused (400, 431, 501, 505).
 */
int		 http_parse_head(const char *, size_t, int,
		    struct http_head *);
const char	*http_header(const struct http_head *, const char *,
		    size_t *);

/* Incremental chunked-body decoding. */
struct http_chunked {
	int		 state;
	uint64_t	 left;		/* of the current chunk */
	int		 digits;
	int		 trailer_len;
};

/*
 * http_chunked_step(ck, in, inlen, &used, &data, &dlen): consume bytes
 * of a chunked body.  Sets data/dlen to payload bytes inside in (none:
 * dlen 0).  Returns 1 at the end of the body, 0 for more, -1 malformed.
 */
int	 http_chunked_step(struct http_chunked *, const char *, size_t,
	    size_t *, const char **, size_t *);

/*
 * http_path_normalise(target, len, out, outsz): the origin-form path
 * of a request target with percent-decoding, dot segments and empty
 * segments resolved and the query dropped.  -1 for targets that have
 * no such path (absolute-form elsewhere, NUL or a slash encoded, a
 * path above the root).
 */
int	 http_path_normalise(const char *, size_t, char *, size_t);

#endif
