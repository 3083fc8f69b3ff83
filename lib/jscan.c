/*
 * The strict JSON scanner (see jscan.h): one pass over the bytes,
 * recursion no deeper than JSCAN_MAX_DEPTH, no allocation but the
 * member table and the decoded keys it keeps (both grown by doubling).
 * Where json-c refuses a text, so does this scanner; where json-c takes
 * a text that RFC 8259 does not, this scanner refuses it with
 * JSCAN_ESTRICT; the differential tests (tests/unit/test_jscan.c,
 * tests/fuzz/fuzz_jscan.c) hold it to both.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

/* What the members of an object or the elements of an array are for. */
enum js_mode {
	M_NONE = 0,	/* validated only */
	M_TOP,		/* the top-level object: members recorded */
	M_REC,		/* an object value of the top level: members recorded */
	M_ELEMS,	/* an array value of the top level: elements checked */
	M_ELEM,		/* an element of that array: elem_key looked for */
};

struct js_ctx {
	const unsigned char	*b;
	size_t			 n, i;
	struct jscan		*js;
};

struct js_val {
	enum jscan_type	 type;
	int		 truth;
	size_t		 nelem;
	long		 badelem;
	size_t		 oofs;
	int		 elemtype;	/* M_ELEM: elem_key's type, or -1 */
};

/* Bytes that end a run of plain string text. */
enum { C_PLAIN = 0, C_QUOTE, C_ESC, C_CTL, C_HIGH };
static unsigned char	 js_class[256];

static int	 js_value(struct js_ctx *, int, enum js_mode, enum js_mode,
		    int, struct js_val *);

static void
js_class_init(void)
{
	int	 c;

	if (js_class['"'] == C_QUOTE)
		return;
	for (c = 0; c < 0x20; c++)
		js_class[c] = C_CTL;
	for (c = 0x80; c < 0x100; c++)
		js_class[c] = C_HIGH;
	js_class['\\'] = C_ESC;
	js_class['"'] = C_QUOTE;
}

static int
js_fail(struct js_ctx *c, enum jscan_err e)
{
	c->js->err = e;
	c->js->errofs = c->i;
	return -1;
}

static void
js_ws(struct js_ctx *c)
{
	while (c->i < c->n && (c->b[c->i] == ' ' || c->b[c->i] == '\t' ||
	    c->b[c->i] == '\n' || c->b[c->i] == '\r'))
		c->i++;
}

/* Decoded key text goes to the keys arena. */
static int
js_put(struct js_ctx *c, const void *p, size_t n)
{
	struct jscan	*js = c->js;
	size_t		 cap;
	char		*k;

	if (js->klen + n + 1 > js->kcap) {
		for (cap = js->kcap ? js->kcap : 256; cap < js->klen + n + 1;
		    cap *= 2)
			;
		if ((k = realloc(js->keys, cap)) == NULL)
			return js_fail(c, JSCAN_ENOMEM);
		js->keys = k;
		js->kcap = cap;
	}
	memcpy(js->keys + js->klen, p, n);
	js->klen += n;
	return 0;
}

static int
js_hex4(struct js_ctx *c, size_t at, uint32_t *v)
{
	size_t	 k;
	int	 d;

	if (at + 4 > c->n)
		return -1;
	for (*v = 0, k = 0; k < 4; k++) {
		d = c->b[at + k];
		if (d >= '0' && d <= '9')
			d -= '0';
		else if (d >= 'a' && d <= 'f')
			d -= 'a' - 10;
		else if (d >= 'A' && d <= 'F')
			d -= 'A' - 10;
		else
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

static int
js_put_cp(struct js_ctx *c, uint32_t cp)
{
	unsigned char	 u[4];
	size_t		 n;

	if (cp < 0x80) {
		u[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = 0xc0 | cp >> 6;
		u[1] = 0x80 | (cp & 0x3f);
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = 0xe0 | cp >> 12;
		u[1] = 0x80 | ((cp >> 6) & 0x3f);
		u[2] = 0x80 | (cp & 0x3f);
		n = 3;
	} else {
		u[0] = 0xf0 | cp >> 18;
		u[1] = 0x80 | ((cp >> 12) & 0x3f);
		u[2] = 0x80 | ((cp >> 6) & 0x3f);
		u[3] = 0x80 | (cp & 0x3f);
		n = 4;
	}
	return js_put(c, u, n);
}

/* One escape after its backslash; json-c makes U+FFFD of a lone
 * surrogate, which has no one meaning to an engine: refused. */
static int
js_escape(struct js_ctx *c, int key, int decode)
{
	static const char	 from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char		*p;
	uint32_t		 cp, lo;

	if (c->i >= c->n)
		return js_fail(c, JSCAN_ESYNTAX);
	if (c->b[c->i] != 'u') {
		if (c->b[c->i] == '\0' ||
		    (p = strchr(from, c->b[c->i])) == NULL)
			return js_fail(c, JSCAN_ESYNTAX);
		c->i++;
		return decode ? js_put(c, &to[p - from], 1) : 0;
	}
	if (js_hex4(c, c->i + 1, &cp) == -1)
		return js_fail(c, JSCAN_ESYNTAX);
	c->i += 5;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return js_fail(c, JSCAN_ESTRICT);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (c->i + 2 > c->n || c->b[c->i] != '\\' ||
		    c->b[c->i + 1] != 'u' || js_hex4(c, c->i + 2, &lo) == -1 ||
		    lo < 0xdc00 || lo > 0xdfff)
			return js_fail(c, JSCAN_ESTRICT);
		c->i += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	/* json-c keeps keys as C strings: it would cut this one short. */
	if (cp == 0 && key)
		return js_fail(c, JSCAN_ESTRICT);
	return decode ? js_put_cp(c, cp) : 0;
}

/*
 * One UTF-8 sequence.  json-c checks only the shape (a lead byte and
 * its continuation bytes); overlong forms, surrogates and code points
 * past U+10FFFF pass it, and are refused here as not UTF-8.
 */
static int
js_utf8(struct js_ctx *c, int decode)
{
	const unsigned char	*p = c->b + c->i;
	size_t			 k, need, left = c->n - c->i;

	if (p[0] >= 0xc0 && p[0] <= 0xdf)
		need = 1;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 2;
	else if (p[0] >= 0xf0 && p[0] <= 0xf7)
		need = 3;
	else
		return js_fail(c, JSCAN_ESYNTAX);
	for (k = 1; k <= need; k++)
		if (k >= left || (p[k] & 0xc0) != 0x80)
			return js_fail(c, JSCAN_ESYNTAX);
	if (p[0] < 0xc2 || (p[0] == 0xe0 && p[1] < 0xa0) ||
	    (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
	    p[0] > 0xf4 || (p[0] == 0xf4 && p[1] >= 0x90))
		return js_fail(c, JSCAN_ESTRICT);
	if (decode && js_put(c, p, need + 1) == -1)
		return -1;
	c->i += need + 1;
	return 0;
}

/* A string at its opening quote; decoded into the keys arena if asked. */
static int
js_string(struct js_ctx *c, int key, int decode)
{
	size_t	 run;

	if (!decode && c->js->trusted) {
		if ((run = jscan_str_end((const char *)c->b, c->n, c->i)) == 0)
			return js_fail(c, JSCAN_ESYNTAX);
		c->i = run;
		return 0;
	}
	c->i++;
	for (;;) {
		run = c->i;
		while (c->i < c->n && js_class[c->b[c->i]] == C_PLAIN)
			c->i++;
		if (decode && c->i > run &&
		    js_put(c, c->b + run, c->i - run) == -1)
			return -1;
		if (c->i >= c->n)
			return js_fail(c, JSCAN_ESYNTAX);
		switch (js_class[c->b[c->i]]) {
		case C_QUOTE:
			c->i++;
			return 0;
		case C_ESC:
			c->i++;
			if (js_escape(c, key, decode) == -1)
				return -1;
			break;
		case C_CTL:
			/* json-c ends the text at a NUL; other control
			 * characters it takes raw, RFC 8259 does not. */
			return js_fail(c, c->b[c->i] == '\0' ? JSCAN_ESYNTAX :
			    JSCAN_ESTRICT);
		default:
			if (js_utf8(c, decode) == -1)
				return -1;
			break;
		}
	}
}

static int
js_digits(struct js_ctx *c)
{
	size_t	 start = c->i;

	while (c->i < c->n && c->b[c->i] >= '0' && c->b[c->i] <= '9')
		c->i++;
	return c->i > start;
}

/* RFC 8259's number; json-c's int is one with no fraction or exponent. */
static int
js_number(struct js_ctx *c, struct js_val *v)
{
	v->type = JSCAN_INT;
	if (c->b[c->i] == '-')
		c->i++;
	if (c->i < c->n && c->b[c->i] == '0') {
		c->i++;
		if (c->i < c->n && c->b[c->i] >= '0' && c->b[c->i] <= '9')
			return js_fail(c, JSCAN_ESTRICT);	/* "00", "-01" */
	} else if (!js_digits(c))
		return js_fail(c, JSCAN_ESTRICT);	/* "-Infinity" */
	if (c->i < c->n && c->b[c->i] == '.') {
		c->i++;
		v->type = JSCAN_DOUBLE;
		if (!js_digits(c))
			return js_fail(c, JSCAN_ESTRICT);	/* "1." */
	}
	if (c->i < c->n && (c->b[c->i] == 'e' || c->b[c->i] == 'E')) {
		c->i++;
		v->type = JSCAN_DOUBLE;
		if (c->i < c->n && (c->b[c->i] == '+' || c->b[c->i] == '-'))
			c->i++;
		if (!js_digits(c))
			return js_fail(c, JSCAN_ESTRICT);
	}
	return 0;
}

static int
js_literal(struct js_ctx *c, const char *lit, struct js_val *v,
    enum jscan_type t, int truth)
{
	size_t	 n = strlen(lit);

	if (c->n - c->i < n || memcmp(c->b + c->i, lit, n) != 0)
		return js_fail(c, JSCAN_ESYNTAX);
	c->i += n;
	v->type = t;
	v->truth = truth;
	return 0;
}

static int
js_member_new(struct js_ctx *c, int parent, size_t kofs, size_t name)
{
	struct jscan		*js = c->js;
	struct jscan_member	*m;
	size_t			 cap;

	if (js->nm == js->mcap) {
		cap = js->mcap ? js->mcap * 2 : 16;
		if ((m = reallocarray(js->m, cap, sizeof(*m))) == NULL)
			return js_fail(c, JSCAN_ENOMEM);
		js->m = m;
		js->mcap = cap;
	}
	m = &js->m[js->nm];
	memset(m, 0, sizeof(*m));
	m->kofs = kofs;
	m->name = name;
	m->nlen = js->klen - name;
	m->parent = parent;
	return (int)js->nm++;
}

static int
js_object(struct js_ctx *c, int depth, enum js_mode mode, int parent,
    struct js_val *v)
{
	struct js_val	 mv;
	struct jscan	*js = c->js;
	size_t		 kofs, name, vofs;
	int		 idx = -1, rec = mode == M_TOP || mode == M_REC;
	int		 decode = rec || (mode == M_ELEM && js->elem_key);

	c->i++;
	js_ws(c);
	if (c->i < c->n && c->b[c->i] == '}') {
		c->i++;
		return 0;
	}
	for (;;) {
		if (c->i >= c->n || c->b[c->i] != '"')
			return js_fail(c, c->i < c->n && c->b[c->i] == '\'' ?
			    JSCAN_ESTRICT : JSCAN_ESYNTAX);
		kofs = c->i;
		name = js->klen;
		if (js_string(c, 1, decode) == -1)
			return -1;
		js_ws(c);
		if (c->i >= c->n || c->b[c->i] != ':')
			return js_fail(c, JSCAN_ESYNTAX);
		c->i++;
		js_ws(c);
		if (rec && (idx = js_member_new(c, mode == M_TOP ? -1 :
		    parent, kofs, name)) == -1)
			return -1;
		vofs = c->i;
		memset(&mv, 0, sizeof(mv));
		if (js_value(c, depth + 1, mode == M_TOP ? M_REC : M_NONE,
		    mode == M_TOP && js->elem_key ? M_ELEMS : M_NONE, idx,
		    &mv) == -1)
			return -1;
		if (rec) {
			js->m[idx].vofs = vofs;
			js->m[idx].vend = c->i;
			js->m[idx].type = mv.type;
			js->m[idx].truth = mv.truth;
			js->m[idx].nelem = mv.nelem;
			js->m[idx].badelem = mv.badelem;
			js->m[idx].oofs = mv.oofs;
		} else if (decode) {
			if (js->klen - name == strlen(js->elem_key) &&
			    memcmp(js->keys + name, js->elem_key,
			    js->klen - name) == 0)
				v->elemtype = mv.type;	/* the last one wins */
			js->klen = name;
		}
		js_ws(c);
		if (c->i < c->n && c->b[c->i] == ',') {
			c->i++;
			js_ws(c);
			continue;
		}
		if (c->i < c->n && c->b[c->i] == '}') {
			c->i++;
			return 0;
		}
		return js_fail(c, JSCAN_ESYNTAX);
	}
}

static int
js_array(struct js_ctx *c, int depth, enum js_mode mode, struct js_val *v)
{
	struct js_val	 ev;

	c->i++;
	js_ws(c);
	if (c->i < c->n && c->b[c->i] == ']') {
		c->i++;
		return 0;
	}
	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.elemtype = -1;
		if (js_value(c, depth + 1, mode == M_ELEMS ? M_ELEM : M_NONE,
		    M_NONE, -1, &ev) == -1)
			return -1;
		if (mode == M_ELEMS && v->badelem < 0 &&
		    (ev.type != JSCAN_OBJECT || ev.elemtype != JSCAN_STRING))
			v->badelem = (long)v->nelem;
		v->nelem++;
		js_ws(c);
		if (c->i < c->n && c->b[c->i] == ',') {
			c->i++;
			js_ws(c);
			continue;
		}
		if (c->i < c->n && c->b[c->i] == ']') {
			c->i++;
			return 0;
		}
		return js_fail(c, JSCAN_ESYNTAX);
	}
}

/* One value at c->i, depth deep (the top-level object is at 1). */
static int
js_value(struct js_ctx *c, int depth, enum js_mode omode, enum js_mode amode,
    int parent, struct js_val *v)
{
	if (c->i >= c->n)
		return js_fail(c, JSCAN_ESYNTAX);
	/* json-c counts every value, a number in an array as much as
	 * the array: 32 empty arrays nest, 32 around a 1 do not. */
	if (depth > JSCAN_MAX_DEPTH)
		return js_fail(c, JSCAN_EDEPTH);
	v->badelem = -1;
	switch (c->b[c->i]) {
	case '{':
		v->type = JSCAN_OBJECT;
		v->oofs = c->i;
		return js_object(c, depth, omode, parent, v);
	case '[':
		v->type = JSCAN_ARRAY;
		return js_array(c, depth, amode, v);
	case '"':
		v->type = JSCAN_STRING;
		return js_string(c, 0, 0);
	case 't':
		return js_literal(c, "true", v, JSCAN_BOOL, 1);
	case 'f':
		return js_literal(c, "false", v, JSCAN_BOOL, 0);
	case 'n':
		return js_literal(c, "null", v, JSCAN_NULL, 0);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return js_number(c, v);
	case '\'':	/* json-c's single-quoted strings */
	case 'N':	/* NaN */
	case 'I':	/* Infinity */
		return js_fail(c, JSCAN_ESTRICT);
	default:
		return js_fail(c, JSCAN_ESYNTAX);
	}
}

/* For sorting members by object, then key, then position. */
struct js_key {
	int		 parent;
	const char	*k;
	size_t		 n;
	size_t		 idx;
};

static int
js_key_cmp(const void *a, const void *b)
{
	const struct js_key	*x = a, *y = b;
	int			 r;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if ((r = memcmp(x->k, y->k, x->n < y->n ? x->n : y->n)) != 0)
		return r;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* json-c keeps the last of duplicate keys: mark it. */
static int
js_mark_last(struct jscan *js)
{
	struct js_key	*k;
	size_t		 i;

	if (js->nm == 0)
		return 0;
	/* Kept from parse to parse, as m and keys are. */
	if (js->nm > js->scap) {
		if ((k = reallocarray(js->sort, js->nm, sizeof(*k))) == NULL) {
			js->err = JSCAN_ENOMEM;
			return -1;
		}
		js->sort = k;
		js->scap = js->nm;
	}
	k = js->sort;
	for (i = 0; i < js->nm; i++) {
		k[i].parent = js->m[i].parent;
		k[i].k = js->keys + js->m[i].name;
		k[i].n = js->m[i].nlen;
		k[i].idx = i;
	}
	qsort(k, js->nm, sizeof(*k), js_key_cmp);
	for (i = 0; i < js->nm; i++)
		js->m[k[i].idx].last = i + 1 == js->nm ||
		    k[i + 1].parent != k[i].parent || k[i + 1].n != k[i].n ||
		    memcmp(k[i + 1].k, k[i].k, k[i].n) != 0;
	return 0;
}

/*
 * Scan the text buf[0..len): 0 if it is one JSON object (blanks
 * around it allowed, nothing else), -1 with js->err set if not.
 * js->elem_key and js->trusted are the caller's; the rest is reset.
 */
int
jscan_parse(struct jscan *js, const char *buf, size_t len)
{
	struct js_ctx	 c;
	struct js_val	 v;

	js_class_init();
	js->nm = js->klen = 0;
	js->oofs = js->oend = 0;
	js->err = JSCAN_OK;
	js->errofs = 0;
	c.b = (const unsigned char *)buf;
	c.n = len;
	c.i = 0;
	c.js = js;
	/* Keys point into the arena even when all are "": never NULL. */
	if (js->keys == NULL && js_put(&c, "", 0) == -1)
		return -1;
	js_ws(&c);
	if (c.i >= c.n)
		return js_fail(&c, JSCAN_ESYNTAX);
	if (c.b[c.i] != '{')
		return js_fail(&c, JSCAN_ENOTOBJ);
	js->oofs = c.i;
	memset(&v, 0, sizeof(v));
	if (js_value(&c, 1, M_TOP, M_NONE, -1, &v) == -1)
		return -1;
	js->oend = c.i - 1;
	js_ws(&c);
	if (c.i != c.n)
		return js_fail(&c, JSCAN_ESYNTAX);	/* lib/jsonbuf.c's rule */
	return js_mark_last(js);
}

void
jscan_free(struct jscan *js)
{
	free(js->m);
	free(js->keys);
	free(js->sort);
	js->m = NULL;
	js->keys = NULL;
	js->sort = NULL;
	js->nm = js->mcap = js->klen = js->kcap = js->scap = 0;
}

/* Is member i's key k? */
int
jscan_keyeq(const struct jscan *js, int i, const char *k)
{
	size_t	 n = strlen(k);

	return js->m[i].nlen == n && memcmp(js->keys + js->m[i].name, k,
	    n) == 0;
}

/* The member json-c would have kept for key k in object parent (-1:
 * the top level), or -1. */
int
jscan_find(const struct jscan *js, int parent, const char *k)
{
	size_t	 i;

	for (i = 0; i < js->nm; i++)
		if (js->m[i].parent == parent && js->m[i].last &&
		    jscan_keyeq(js, (int)i, k))
			return (int)i;
	return -1;
}

/* A string member's value decoded, NUL-terminated, into the keys of
 * scratch (valid until scratch is used again); its length (a \u0000 in
 * it counts) in *len. */
const char *
jscan_string_in(struct jscan *scratch, const char *buf,
    const struct jscan_member *m, size_t *len)
{
	struct js_ctx	 c;

	if (m == NULL || m->type != JSCAN_STRING)
		return NULL;
	scratch->klen = 0;
	c.b = (const unsigned char *)buf;
	c.n = m->vend;
	c.i = m->vofs;
	c.js = scratch;
	js_class_init();
	if (js_string(&c, 0, 1) == -1 || js_put(&c, "", 1) == -1)
		return NULL;
	*len = scratch->klen - 1;
	return scratch->keys;
}

/* ---- reading a text jscan_parse took, without its table ---------------- */

static size_t
js_blank(const char *b, size_t n, size_t i)
{
	while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' ||
	    b[i] == '\r'))
		i++;
	return i;
}

/*
 * Past the closing quote of the string whose opening quote is at i, or
 * 0 if it has none: a quote ends it unless an odd run of backslashes
 * comes before it (each run walked once, from the quote after it).  The
 * bytes between are not judged: memchr's speed, for texts judged whole
 * elsewhere.
 */
size_t
jscan_str_end(const char *b, size_t n, size_t i)
{
	const char	*q = b + i + 1, *e = b + n, *r;

	while (q < e && (q = memchr(q, '"', (size_t)(e - q))) != NULL) {
		for (r = q; r > b + i + 1 && r[-1] == '\\'; r--)
			;
		if (((q - r) & 1) == 0)
			return (size_t)(q - b) + 1;
		q++;
	}
	return 0;
}

/* The same in a text jscan_parse took: there is an end. */
static size_t
js_str_end(const char *b, size_t n, size_t i)
{
	size_t	 e = jscan_str_end(b, n, i);

	return e != 0 ? e : n;
}

/* The value at i (blanks first): its first byte in *start, its end
 * returned.  The text is valid JSON: only its shape is followed. */
static size_t
js_skip(const char *b, size_t n, size_t i, size_t *start)
{
	size_t	 depth = 0;

	*start = i = js_blank(b, n, i);
	if (i < n && b[i] != '"' && b[i] != '{' && b[i] != '[') {
		while (i < n && b[i] != ',' && b[i] != '}' && b[i] != ']' &&
		    b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r')
			i++;
		return i;	/* a number or a literal */
	}
	while (i < n) {
		if (b[i] == '"')
			i = js_str_end(b, n, i);
		else {
			if (b[i] == '{' || b[i] == '[')
				depth++;
			else if (b[i] == '}' || b[i] == ']')
				depth--;
			i++;
		}
		if (depth == 0)
			break;
	}
	return i;
}

/* Is the key whose opening quote is at i, ending at end, k? */
static int
js_key_is(const char *b, size_t i, size_t end, const char *k)
{
	struct jscan_member	 m;
	struct jscan		 tmp;
	const char		*d;
	size_t			 n = strlen(k), dl;
	int			 eq;

	if (memchr(b + i + 1, '\\', end - i - 2) == NULL)
		return end - i - 2 == n && memcmp(b + i + 1, k, n) == 0;
	/* Written with escapes: compared decoded, as json-c reads it. */
	memset(&m, 0, sizeof(m));
	m.vofs = i;
	m.vend = end;
	m.type = JSCAN_STRING;
	memset(&tmp, 0, sizeof(tmp));
	d = jscan_string_in(&tmp, b, &m, &dl);
	eq = d != NULL && dl == n && memcmp(d, k, n) == 0;
	jscan_free(&tmp);
	return eq;
}

/*
 * Members k[0..nk) of the object whose '{' is at ofs, in a text
 * jscan_parse took, in one reading: each one's value span [vofs[j],
 * vend[j]), the last of its key as json-c keeps it; vend[j] untouched
 * if there is none.
 */
static void
js_getv(const char *b, size_t n, size_t ofs, const char *const *k,
    size_t nk, size_t *vofs, size_t *vend)
{
	size_t	 i = js_blank(b, n, ofs + 1), ks, ke, vs, ve, j;

	while (i < n && b[i] == '"') {
		ks = i;
		ke = js_str_end(b, n, ks);
		i = js_blank(b, n, ke) + 1;	/* past the ':' */
		ve = js_skip(b, n, i, &vs);
		for (j = 0; j < nk; j++)
			if (js_key_is(b, ks, ke, k[j])) {
				vofs[j] = vs;
				vend[j] = ve;
			}
		i = js_blank(b, n, ve);
		if (i < n && b[i] == ',')
			i = js_blank(b, n, i + 1);
	}
}

/* Member k: 0, or -1 if the object has no such member. */
int
jscan_get(const char *b, size_t n, size_t ofs, const char *k, size_t *vofs,
    size_t *vend)
{
	size_t	 vs, ve = 0;

	js_getv(b, n, ofs, &k, 1, &vs, &ve);
	if (ve == 0)
		return -1;
	*vofs = vs;
	*vend = ve;
	return 0;
}

/*
 * The elements of the array whose '[' is at *at, one a call: the next
 * one's span, 0 (*at moves past it); -1 once there is none.
 */
int
jscan_next(const char *b, size_t n, size_t *at, size_t *vofs, size_t *vend)
{
	size_t	 i;

	if (*at >= n || b[*at] == ']')
		return -1;	/* the end reached before */
	if ((i = js_blank(b, n, *at + 1)) >= n || b[i] == ']')
		return -1;
	*vend = js_skip(b, n, i, vofs);
	*at = js_blank(b, n, *vend);	/* the ',' or the ']' */
	return 0;
}

/* ---- the same through a jval ------------------------------------------ */

/* Member k of object o (the last of its key), or 0 with v none. */
int
jval_get(const struct jval *o, const char *k, struct jval *v)
{
	const struct jscan_member *m;
	int			 i;

	v->b = o->b;
	v->n = o->n;
	v->ofs = v->end = 0;
	v->js = NULL;
	if (o->end == 0 || o->b[o->ofs] != '{')
		return -1;
	if (o->js != NULL) {
		if ((i = jscan_find(o->js, o->at, k)) == -1)
			return -1;
		m = &o->js->m[i];
		v->ofs = m->vofs;
		v->end = m->vend;
		if (o->at == -1 && m->type == JSCAN_OBJECT) {
			v->js = o->js;	/* its members are in the table */
			v->at = i;
		}
		return 0;
	}
	if (jscan_get(o->b, o->n, o->ofs, k, &v->ofs, &v->end) == -1) {
		v->ofs = v->end = 0;
		return -1;
	}
	return 0;
}

/* Members k[0..nk) of object o into v[0..nk) in one reading, each as
 * jval_get would find it. */
void
jval_getv(const struct jval *o, const char *const *k, size_t nk,
    struct jval *v)
{
	size_t	 vofs[8], vend[8], j;

	for (j = 0; j < nk; j++) {
		v[j].b = o->b;
		v[j].n = o->n;
		v[j].ofs = v[j].end = 0;
		v[j].js = NULL;
	}
	if (o->end == 0 || o->b[o->ofs] != '{')
		return;
	if (o->js != NULL || nk > 8) {
		for (j = 0; j < nk; j++)
			jval_get(o, k[j], &v[j]);
		return;
	}
	memset(vend, 0, sizeof(vend));
	js_getv(o->b, o->n, o->ofs, k, nk, vofs, vend);
	for (j = 0; j < nk; j++)
		if (vend[j] != 0) {
			v[j].ofs = vofs[j];
			v[j].end = vend[j];
		}
}

/* Is v an empty array or object? */
int
jval_empty(const struct jval *v)
{
	size_t	 i;

	if (v->end == 0 || (v->b[v->ofs] != '[' && v->b[v->ofs] != '{'))
		return 0;
	i = js_blank(v->b, v->n, v->ofs + 1);
	return i < v->n && (v->b[i] == ']' || v->b[i] == '}');
}

/* The elements of array a, one a call from *at = 0: 0, or -1 past the
 * last one (or if a is no array). */
int
jval_next(const struct jval *a, size_t *at, struct jval *v)
{
	v->b = a->b;
	v->n = a->n;
	v->js = NULL;
	if (a->end == 0 || a->b[a->ofs] != '[')
		return -1;
	if (*at == 0)
		*at = a->ofs;
	return jscan_next(a->b, a->n, at, &v->ofs, &v->end);
}

/* Is v there, of type t (as json-c types it)? */
int
jval_is(const struct jval *v, enum jscan_type t)
{
	const char	*p;
	enum jscan_type	 vt;

	if (v->end == 0)
		return 0;
	switch (v->b[v->ofs]) {
	case '"':	vt = JSCAN_STRING; break;
	case '{':	vt = JSCAN_OBJECT; break;
	case '[':	vt = JSCAN_ARRAY; break;
	case 't':
	case 'f':	vt = JSCAN_BOOL; break;
	case 'n':	vt = JSCAN_NULL; break;
	default:
		vt = JSCAN_INT;
		for (p = v->b + v->ofs; p < v->b + v->end; p++)
			if (*p == '.' || *p == 'e' || *p == 'E')
				vt = JSCAN_DOUBLE;
	}
	return vt == t;
}

/* Is v there, and not null? */
int
jval_set(const struct jval *v)
{
	return v->end != 0 && !jval_is(v, JSCAN_NULL);
}

/* Is v a string that reads s? */
int
jval_streq(const struct jval *v, const char *s)
{
	return jval_is(v, JSCAN_STRING) && js_key_is(v->b, v->ofs, v->end, s);
}

/* An integer's value (0 if v is none). */
long long
jval_int(const struct jval *v)
{
	return jval_is(v, JSCAN_INT) ? strtoll(v->b + v->ofs, NULL, 10) : 0;
}

/* The same, to free. */
char *
jscan_string(const char *buf, const struct jscan_member *m, size_t *len)
{
	struct jscan	 tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (jscan_string_in(&tmp, buf, m, len) == NULL) {
		jscan_free(&tmp);
		return NULL;
	}
	return tmp.keys;
}

/* json-c's json_type_to_name() for the same value. */
const char *
jscan_type_name(enum jscan_type t)
{
	static const char *const names[] = {
		[JSCAN_NULL] = "null", [JSCAN_BOOL] = "boolean",
		[JSCAN_INT] = "int", [JSCAN_DOUBLE] = "double",
		[JSCAN_STRING] = "string", [JSCAN_ARRAY] = "array",
		[JSCAN_OBJECT] = "object",
	};

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

const char *
jscan_strerror(enum jscan_err e)
{
	switch (e) {
	case JSCAN_OK:
		return "no error";
	case JSCAN_ESYNTAX:
		return "not JSON";
	case JSCAN_EDEPTH:
		return "nested too deep";
	case JSCAN_ENOTOBJ:
		return "not a JSON object";
	case JSCAN_ESTRICT:
		return "not RFC 8259 JSON";
	case JSCAN_ENOMEM:
		return "out of memory";
	}
	return "?";
}
