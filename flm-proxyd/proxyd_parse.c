/*
 * A strict HTTP/1.1 head parser, chunked decoder and path normaliser
 * (RFC 9112, RFC 3986 §5.2.4).  No allocation, no I/O.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "proxyd_parse.h"

static const char	 tchar[] = "!#$%&'*+-.^_`|~";

static int
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' && strchr(tchar, c) != NULL);
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
token_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Does the comma-separated list s contain token lit? */
static int
list_has(const char *s, size_t n, const char *lit)
{
	size_t	 i = 0, start, end;

	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		start = i;
		while (i < n && s[i] != ',')
			i++;
		end = i;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (end > start && token_eq(s + start, end - start, lit))
			return 1;
	}
	return 0;
}

static enum http_method
method_of(const char *s, size_t n)
{
	if (n == 3 && memcmp(s, "GET", 3) == 0)
		return HTTP_M_GET;
	if (n == 4 && memcmp(s, "POST", 4) == 0)
		return HTTP_M_POST;
	if (n == 4 && memcmp(s, "HEAD", 4) == 0)
		return HTTP_M_HEAD;
	if (n == 7 && memcmp(s, "OPTIONS", 7) == 0)
		return HTTP_M_OPTIONS;
	return HTTP_M_OTHER;
}

/* "HTTP/1.x" at p: the minor version, or -400/-505. */
static int
parse_version(const char *p, size_t n)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
	    p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return -400;
	if (p[5] != '1' || p[7] > '1')
		return -505;
	return p[7] - '0';
}

static int
parse_request_line(const char *p, size_t n, struct http_head *h)
{
	const char	*sp1, *sp2;
	size_t		 i;
	int		 v;

	if ((sp1 = memchr(p, ' ', n)) == NULL || sp1 == p)
		return -400;
	for (i = 0; p + i < sp1; i++)
		if (!is_tchar(p[i]))
			return -400;
	h->method = method_of(p, sp1 - p);
	h->target = sp1 + 1;
	if ((sp2 = memchr(h->target, ' ', n - (h->target - p))) == NULL ||
	    sp2 == h->target)
		return -400;
	h->tlen = sp2 - h->target;
	for (i = 0; i < h->tlen; i++)
		if ((unsigned char)h->target[i] <= 0x20 ||
		    (unsigned char)h->target[i] >= 0x7f)
			return -400;
	if ((v = parse_version(sp2 + 1, n - (sp2 + 1 - p))) < 0)
		return v;
	h->minor = v;
	return 0;
}

static int
parse_status_line(const char *p, size_t n, struct http_head *h)
{
	int	 v;

	if (n < 12 || p[8] != ' ' || (v = parse_version(p, 8)) < 0)
		return -400;
	h->minor = v;
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (n > 12 && p[12] != ' '))
		return -400;
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return 0;
}

static int
parse_clen(const char *v, size_t n, int64_t *out)
{
	int64_t	 x = 0;
	size_t	 i;

	if (n == 0 || n > 15)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

/* What the framing headers say; -status if they cannot be trusted. */
static int
parse_framing(struct http_head *h, int response)
{
	const struct http_hdr	*f;
	int64_t			 cl;
	int			 i, hosts = 0, te = 0;

	h->clen = -1;
	h->close = h->minor == 0;
	for (i = 0; i < h->nhdrs; i++) {
		f = &h->hdrs[i];
		if (token_eq(f->name, f->nlen, "content-length")) {
			if (parse_clen(f->value, f->vlen, &cl) == -1 ||
			    (h->clen != -1 && h->clen != cl))
				return -400;
			h->clen = cl;
		} else if (token_eq(f->name, f->nlen, "transfer-encoding")) {
			/* Only chunked, once, and last: anything else is a
			 * smuggling attempt or a coding we do not speak. */
			if (te++ || !token_eq(f->value, f->vlen, "chunked"))
				return response ? -502 : -501;
			h->chunked = 1;
		} else if (token_eq(f->name, f->nlen, "connection")) {
			if (list_has(f->value, f->vlen, "close"))
				h->close = 1;
			else if (list_has(f->value, f->vlen, "keep-alive"))
				h->close = 0;
		} else if (token_eq(f->name, f->nlen, "host"))
			hosts++;
	}
	if (response) {
		if (h->chunked)
			h->clen = -1;	/* RFC 9112 §6.3: chunked wins */
		return 0;
	}
	if (h->chunked && h->clen != -1)
		return -400;
	if (h->chunked && h->minor == 0)
		return -400;
	if (hosts > 1 || (h->minor == 1 && hosts == 0))
		return -400;
	return 0;
}

int
http_parse_head(const char *buf, size_t len, int response,
    struct http_head *h)
{
	const char	*p = buf, *end = buf + len, *eol, *colon, *v, *ve;
	int		 rc, first = 1;

	memset(h, 0, sizeof(*h));
	/* RFC 9112 §2.2: ignore empty lines before a request. */
	while (!response && end - p >= 2 && p[0] == '\r' && p[1] == '\n')
		p += 2;
	for (;;) {
		if ((eol = memchr(p, '\n', end - p)) == NULL)
			return 0;
		if (eol == p || eol[-1] != '\r')
			return -400;	/* bare LF: refused, never guessed */
		if (eol - 1 == p) {
			if (first)
				return -400;
			break;		/* the empty line: head complete */
		}
		if (first) {
			rc = response ? parse_status_line(p, eol - 1 - p, h) :
			    parse_request_line(p, eol - 1 - p, h);
			if (rc < 0)
				return rc;
			first = 0;
			p = eol + 1;
			continue;
		}
		if (*p == ' ' || *p == '\t')
			return -400;	/* obsolete line folding */
		if ((colon = memchr(p, ':', eol - 1 - p)) == NULL ||
		    colon == p)
			return -400;
		for (v = p; v < colon; v++)
			if (!is_tchar(*v))
				return -400;
		if (h->nhdrs == HTTP_MAX_HDRS)
			return -431;
		for (v = colon + 1; v < eol - 1 && (*v == ' ' || *v == '\t');
		    v++)
			;
		for (ve = eol - 1; ve > v && (ve[-1] == ' ' || ve[-1] == '\t');
		    ve--)
			;
		for (const char *c = v; c < ve; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') ||
			    *c == 0x7f)
				return -400;
		h->hdrs[h->nhdrs].name = p;
		h->hdrs[h->nhdrs].nlen = colon - p;
		h->hdrs[h->nhdrs].value = v;
		h->hdrs[h->nhdrs].vlen = ve - v;
		h->nhdrs++;
		p = eol + 1;
	}
	if ((rc = parse_framing(h, response)) < 0)
		return rc;
	return (int)(eol + 1 - buf);
}

const char *
http_header(const struct http_head *h, const char *name, size_t *len)
{
	size_t	 n = strlen(name);
	int	 i;

	for (i = 0; i < h->nhdrs; i++)
		if (h->hdrs[i].nlen == n &&
		    strncasecmp(h->hdrs[i].name, name, n) == 0) {
			*len = h->hdrs[i].vlen;
			return h->hdrs[i].value;
		}
	return NULL;
}

/* ---- chunked bodies ------------------------------------------------------ */

enum {
	CK_SIZE = 0, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
	CK_TRAILER, CK_TRAILER_NAME, CK_TRAILER_LINE, CK_TRAILER_LF,
	CK_END_LF, CK_DONE
};
#define CK_MAX_DIGITS	15
#define CK_MAX_TRAILER	4096

int
http_chunked_step(struct http_chunked *ck, const char *in, size_t len,
    size_t *used, const char **data, size_t *dlen)
{
	size_t	 i = 0, n;
	int	 d;

	*data = NULL;
	*dlen = 0;
	while (i < len) {
		unsigned char	 c = in[i];

		switch (ck->state) {
		case CK_SIZE:
			if ((d = hexval(c)) >= 0) {
				if (++ck->digits > CK_MAX_DIGITS)
					return -1;
				ck->left = ck->left * 16 + d;
				i++;
				break;
			}
			if (ck->digits == 0)
				return -1;
			if (c == ';' || c == ' ' || c == '\t')
				ck->state = CK_EXT;
			else if (c == '\r')
				ck->state = CK_SIZE_LF;
			else
				return -1;
			i++;
			break;
		case CK_EXT:
			if (c == '\r')
				ck->state = CK_SIZE_LF;
			else if (c == '\n' || (c < 0x20 && c != '\t'))
				return -1;
			i++;
			break;
		case CK_SIZE_LF:
			if (c != '\n')
				return -1;
			i++;
			ck->digits = 0;
			ck->state = ck->left == 0 ? CK_TRAILER : CK_DATA;
			break;
		case CK_DATA:
			/* Hand back one run of payload at a time. */
			n = len - i < ck->left ? len - i : (size_t)ck->left;
			*data = in + i;
			*dlen = n;
			ck->left -= n;
			i += n;
			if (ck->left == 0)
				ck->state = CK_DATA_CR;
			*used = i;
			return 0;
		case CK_DATA_CR:
			if (c != '\r')
				return -1;
			ck->state = CK_DATA_LF;
			i++;
			break;
		case CK_DATA_LF:
			if (c != '\n')
				return -1;
			ck->state = CK_SIZE;
			i++;
			break;
		/*
		 * Trailer fields are read as strictly as header fields: a
		 * bare LF, a control character, a folded line or a line
		 * that is not NAME ":" VALUE ends the body as malformed, so
		 * no request can hide in a trailer from a lenient peer.
		 */
		case CK_TRAILER:
			if (c == '\r')
				ck->state = CK_END_LF;
			else if (is_tchar(c))
				ck->state = CK_TRAILER_NAME;
			else
				return -1;
			i++;
			break;
		case CK_TRAILER_NAME:
			if (++ck->trailer_len > CK_MAX_TRAILER)
				return -1;
			if (c == ':')
				ck->state = CK_TRAILER_LINE;
			else if (!is_tchar(c))
				return -1;
			i++;
			break;
		case CK_TRAILER_LINE:
			if (++ck->trailer_len > CK_MAX_TRAILER)
				return -1;
			if (c == '\r')
				ck->state = CK_TRAILER_LF;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				return -1;
			i++;
			break;
		case CK_TRAILER_LF:
			if (c != '\n')
				return -1;
			ck->state = CK_TRAILER;
			i++;
			break;
		case CK_END_LF:
			if (c != '\n')
				return -1;
			ck->state = CK_DONE;
			*used = i + 1;
			return 1;
		default:
			*used = i;
			return 1;
		}
	}
	*used = i;
	return ck->state == CK_DONE;
}

/* ---- request paths --------------------------------------------------------- */

int
http_path_normalise(const char *t, size_t len, char *out, size_t outsz)
{
	size_t	 i, o = 0, seg;
	char	 c;
	int	 hi, lo;

	if (len == 0 || t[0] != '/' || outsz < 2)
		return -1;
	for (i = 0; i < len && t[i] != '?' && t[i] != '#'; ) {
		/* One segment: from just after a '/' to the next. */
		i++;
		seg = o;
		if (o + 1 >= outsz)
			return -1;
		out[o++] = '/';
		while (i < len && t[i] != '/' && t[i] != '?' && t[i] != '#') {
			c = t[i++];
			if (c == '%') {
				if (i + 2 > len || (hi = hexval(t[i])) < 0 ||
				    (lo = hexval(t[i + 1])) < 0)
					return -1;
				c = (char)(hi * 16 + lo);
				i += 2;
				/* An encoded slash or NUL has no one meaning. */
				if (c == '/' || c == '\0')
					return -1;
			}
			if (o + 1 >= outsz)
				return -1;
			out[o++] = c;
		}
		if (o - seg == 1) {			/* "//" or a final "/" */
			o = seg;
		} else if (o - seg == 2 && out[seg + 1] == '.') {
			o = seg;
		} else if (o - seg == 3 && out[seg + 1] == '.' &&
		    out[seg + 2] == '.') {
			if (seg == 0)
				return -1;		/* above the root */
			o = seg;
			while (o > 0 && out[--o] != '/')
				;
		}
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}
