/*
 * lib/jscan.c judged against json-c's strict tokener (as proxyd calls
 * it: json_parse_buf_strict), field by field, and a generator of the
 * texts to judge: valid JSON from a grammar biased to what routing
 * reads, and byte mutations of it and of tricky texts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jscan.h"
#include "jsonbuf.h"
#include "jscan-diff.h"

static int
diff_why(char *why, size_t sz, const char *what, const char *a)
{
	snprintf(why, sz, "%s%s", what, a);
	return -1;
}

static enum jscan_type
diff_type(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_boolean:
		return JSCAN_BOOL;
	case json_type_int:
		return JSCAN_INT;
	case json_type_double:
		return JSCAN_DOUBLE;
	case json_type_string:
		return JSCAN_STRING;
	case json_type_array:
		return JSCAN_ARRAY;
	case json_type_object:
		return JSCAN_OBJECT;
	default:
		return JSCAN_NULL;
	}
}

/* json-c's answer to route_messages: the first bad element, or -1. */
static long
diff_badelem(struct json_object *a, const char *k)
{
	struct json_object	*e, *v;
	size_t			 i;

	for (i = 0; i < json_object_array_length(a); i++) {
		e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, k, &v) ||
		    !json_object_is_type(v, json_type_string))
			return (long)i;
	}
	return -1;
}

static int	 diff_object(const struct jscan *, int, const char *,
		    struct json_object *, char *, size_t);

/*
 * json-c 0.16 tests a decoded pair with a 16-bit surrogate mask, so
 * U+1D800..U+1DFFF written as \uD836/\uD837 pairs come out as U+FFFD;
 * jscan decodes them right (as engines do): compare with them replaced.
 */
static size_t
diff_fffd(char *s, size_t len)
{
	size_t	 i, o = 0;

	for (i = 0; i < len; ) {
		if (i + 3 < len && (unsigned char)s[i] == 0xf0 &&
		    (unsigned char)s[i + 1] == 0x9d &&
		    (unsigned char)s[i + 2] >= 0xa0) {
			memcpy(s + o, "\xef\xbf\xbd", 3);
			o += 3;
			i += 4;
		} else
			s[o++] = s[i++];
	}
	return o;
}

static int
diff_value(const struct jscan *js, int i, const char *buf,
    struct json_object *v, const char *key, char *why, size_t sz)
{
	const struct jscan_member *m = &js->m[i];
	char			*s;
	size_t			 len;
	int			 rc = 0;

	if (m->type != diff_type(v))
		return diff_why(why, sz, "type of: ", key);
	switch (m->type) {
	case JSCAN_BOOL:
		if (m->truth != json_object_get_boolean(v))
			return diff_why(why, sz, "boolean: ", key);
		break;
	case JSCAN_STRING:
		if ((s = jscan_string(buf, m, &len)) == NULL)
			return diff_why(why, sz, "no string: ", key);
		if ((len != (size_t)json_object_get_string_len(v) ||
		    memcmp(s, json_object_get_string(v), len) != 0) &&
		    ((len = diff_fffd(s, len)) !=
		    (size_t)json_object_get_string_len(v) ||
		    memcmp(s, json_object_get_string(v), len) != 0))
			rc = diff_why(why, sz, "string: ", key);
		free(s);
		break;
	case JSCAN_ARRAY:
		if (m->nelem != json_object_array_length(v))
			return diff_why(why, sz, "elements of: ", key);
		if (m->parent == -1 && js->elem_key != NULL &&
		    m->badelem != diff_badelem(v, js->elem_key))
			return diff_why(why, sz, "bad element of: ", key);
		break;
	case JSCAN_OBJECT:
		if (m->parent == -1)
			rc = diff_object(js, i, buf, v, why, sz);
		break;
	default:
		break;
	}
	return rc;
}

/* A key json-c's surrogate slip (diff_fffd) makes another key of. */
static int
diff_key_slip(const struct jscan *js, size_t i)
{
	const unsigned char	*k = (const unsigned char *)js->keys +
	    js->m[i].name;
	size_t			 j;

	for (j = 0; j + 3 < js->m[i].nlen; j++)
		if (k[j] == 0xf0 && k[j + 1] == 0x9d && k[j + 2] >= 0xa0)
			return 1;
	return 0;
}

/* The same keys (the last of each), with the same values. */
static int
diff_object(const struct jscan *js, int parent, const char *buf,
    struct json_object *o, char *why, size_t sz)
{
	size_t	 i, n = 0;
	int	 k;

	for (i = 0; i < js->nm; i++) {
		if (js->m[i].parent == parent && diff_key_slip(js, i))
			return 0;	/* json-c merged keys jscan keeps */
		n += js->m[i].parent == parent && js->m[i].last;
	}
	if (n != (size_t)json_object_object_length(o))
		return diff_why(why, sz, "number of keys", "");
	json_object_object_foreach(o, key, val) {
		if ((k = jscan_find(js, parent, key)) == -1)
			return diff_why(why, sz, "key missing: ", key);
		if (diff_value(js, k, buf, val, key, why, sz) == -1)
			return -1;
	}
	return 0;
}

/* jval_getv of up to 8 of o's keys (and one it lacks) finds what
 * jval_get finds, one by one. */
static int
diff_getv(const struct jval *v, struct json_object *o)
{
	const char	*k[9];
	struct jval	 got[9], one;
	size_t		 n = 0, j;

	json_object_object_foreach(o, key, m) {
		(void)m;
		if (n < 8)
			k[n++] = key;
	}
	k[n++] = "\x01none";
	jval_getv(v, k, n, got);
	for (j = 0; j < n; j++) {
		jval_get(v, k[j], &one);
		if (one.ofs != got[j].ofs || one.end != got[j].end)
			return -1;
	}
	return 0;
}

/*
 * jval_get and jval_next (jscan_get and jscan_next underneath, or the
 * table jscan_parse made) walk the whole text as json-c read it: each member json-c kept, each element,
 * down to the leaves, which must read back as json-c's values; each
 * value has json-c's type, each string reads as json-c's.
 */
static int
diff_nav(const struct jval *v, struct json_object *o, int depth, char *why,
    size_t sz)
{
	struct json_object	*leaf;
	struct jval		 c;
	size_t			 i, at = 0;
	int			 eq;

	if (depth > JSCAN_MAX_DEPTH)
		return 0;
	if (!jval_is(v, diff_type(o)))
		return diff_why(why, sz, "navigator: not json-c's type", "");
	if (jval_empty(v) != ((json_object_is_type(o, json_type_object) &&
	    json_object_object_length(o) == 0) ||
	    (json_object_is_type(o, json_type_array) &&
	    json_object_array_length(o) == 0)))
		return diff_why(why, sz, "navigator: empty or not", "");
	if (json_object_is_type(o, json_type_object) &&
	    diff_getv(v, o) == -1)
		return diff_why(why, sz, "navigator: jval_getv differs", "");
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, m) {
			if (jval_get(v, k, &c) == -1)
				return diff_why(why, sz, "navigator: no member ", k);
			if (diff_nav(&c, m, depth + 1, why, sz) == -1)
				return -1;
		}
		return jval_get(v, "\x01none", &c) == -1 ? 0 :
		    diff_why(why, sz, "navigator: a member not there", "");
	}
	if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++) {
			if (jval_next(v, &at, &c) == -1)
				return diff_why(why, sz, "navigator: an element "
				    "missing", "");
			if (diff_nav(&c, json_object_array_get_idx(o, i),
			    depth + 1, why, sz) == -1)
				return -1;
		}
		return jval_next(v, &at, &c) == -1 ? 0 :
		    diff_why(why, sz, "navigator: an element too many", "");
	}
	if (json_object_is_type(o, json_type_string) &&
	    strlen(json_object_get_string(o)) ==
	    (size_t)json_object_get_string_len(o) &&
	    !jval_streq(v, json_object_get_string(o)))
		return diff_why(why, sz, "navigator: a string reads "
		    "otherwise", "");
	/* A leaf: its span alone reads as json-c's value. */
	leaf = json_parse_buf_strict(v->b + v->ofs, v->end - v->ofs);
	eq = leaf != NULL ? json_object_equal(leaf, o) : o == NULL;
	json_object_put(leaf);
	return eq ? 0 : diff_why(why, sz, "navigator: a leaf differs", "");
}

/* The same text read as trusted (strings found by their end) gives the
 * same table. */
static int
diff_trusted(const struct jscan *js, const char *buf, size_t len, char *why,
    size_t sz)
{
	const struct jscan_member *a, *b;
	struct jscan		 t;
	size_t			 i;
	int			 rc = 0;

	memset(&t, 0, sizeof(t));
	t.elem_key = js->elem_key;
	t.trusted = 1;
	if (jscan_parse(&t, buf, len) == -1)
		rc = diff_why(why, sz, "trusted: refused", "");
	else if (t.nm != js->nm || t.oofs != js->oofs || t.oend != js->oend)
		rc = diff_why(why, sz, "trusted: another table", "");
	for (i = 0; rc == 0 && i < js->nm; i++) {
		a = &js->m[i];
		b = &t.m[i];
		if (a->kofs != b->kofs || a->vofs != b->vofs ||
		    a->vend != b->vend || a->parent != b->parent ||
		    a->type != b->type || a->truth != b->truth ||
		    a->last != b->last || a->nelem != b->nelem ||
		    a->badelem != b->badelem || a->oofs != b->oofs ||
		    a->nlen != b->nlen || memcmp(js->keys + a->name,
		    t.keys + b->name, a->nlen) != 0)
			rc = diff_why(why, sz, "trusted: another member", "");
	}
	jscan_free(&t);
	return rc;
}

int
jscan_diff(const char *buf, size_t len, const char *elem_key, char *why,
    size_t sz)
{
	struct json_object	*o;
	struct jscan		 js;
	struct jval		 top;
	int			 rc, ref;

	o = json_parse_buf_strict(buf, len);
	ref = o != NULL && json_object_is_type(o, json_type_object);
	memset(&js, 0, sizeof(js));
	js.elem_key = elem_key;
	rc = jscan_parse(&js, buf, len);
	if (!ref)
		rc = rc == 0 ? diff_why(why, sz, "json-c refuses it, "
		    "jscan takes it", "") : JSCAN_DIFF_BOTH_REFUSE;
	else if (rc == -1)
		rc = js.err == JSCAN_ESTRICT ? JSCAN_DIFF_STRICT :
		    diff_why(why, sz, "json-c takes it, jscan refuses it: ",
		    jscan_strerror(js.err));
	else {
		top.b = buf;
		top.n = len;
		top.ofs = js.oofs;
		top.end = js.oend + 1;
		top.js = NULL;		/* by reading the text */
		rc = diff_object(&js, -1, buf, o, why, sz) == -1 ||
		    diff_nav(&top, o, 0, why, sz) == -1 ? -1 :
		    JSCAN_DIFF_BOTH_TAKE;
		top.js = &js;		/* by the table, two levels */
		top.at = -1;
		if (rc != -1 && (diff_nav(&top, o, 0, why, sz) == -1 ||
		    diff_trusted(&js, buf, len, why, sz) == -1))
			rc = -1;
	}
	json_object_put(o);
	jscan_free(&js);
	return rc == -1 ? JSCAN_DIFF_BAD : rc;
}

/* ---- the generator --------------------------------------------------- */

struct gen {
	uint64_t	 s;
	char		*b;
	size_t		 n, cap;
	int		 maxdepth;
	int		 oom;
};

static uint64_t
gen_rand(struct gen *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545f4914f6cdd1dULL;
}

static size_t
gen_pick(struct gen *g, size_t n)
{
	return (size_t)(gen_rand(g) % n);
}

static void
gen_put(struct gen *g, const char *s, size_t n)
{
	char	*b;
	size_t	 cap;

	if (g->n + n + 1 > g->cap) {
		for (cap = g->cap ? g->cap : 1024; cap < g->n + n + 1; cap *= 2)
			;
		if ((b = realloc(g->b, cap)) == NULL) {
			g->oom = 1;
			return;
		}
		g->b = b;
		g->cap = cap;
	}
	memcpy(g->b + g->n, s, n);
	g->n += n;
}

static void
gen_str(struct gen *g, const char *s)
{
	gen_put(g, s, strlen(s));
}

static void
gen_ws(struct gen *g)
{
	static const char *const ws[] = { " ", "\n", "\t", "\r\n", "  " };

	if (gen_pick(g, 4) == 0)
		gen_str(g, ws[gen_pick(g, 5)]);
}

static const char *const gen_keys[] = {
	"\"model\"", "\"stream\"", "\"stream_options\"", "\"include_usage\"",
	"\"messages\"", "\"role\"", "\"content\"", "\"prompt\"", "\"input\"",
	"\"encoding_format\"", "\"temperature\"", "\"n\"", "\"max_tokens\"",
	"\"user\"", "\"a\"", "\"\"", "\"mod\\u0065l\"", "\"m\\u006Fdel\"",
	"\"r\\u006fle\"", "\"\\u00e9t\\u00e9\"", "\"\xc3\xa9t\xc3\xa9\"",
	"\"k\\n\\\"\"", "\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"",
	"\"stream\\u005foptions\"", "\"include\\u005fusage\"",
};

static const char *const gen_strs[] = {
	"\"\"", "\"x\"", "\"user\"", "\"gpt-4o\"", "\"float\"", "\"base64\"",
	"\"\\u0000\"", "\"a\\u0000b\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	"\"\\u00e9\\u4e2d\\uD834\\uDD1E\"", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"",
	"\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\x7f\"", "\"fl\\u006fat\"",
	"\"base64\\u0000x\"", "\"  spaces  \"",
};

static const char *const gen_nums[] = {
	"0", "-0", "1", "-12", "3.25", "1e5", "-2.5E-3", "0.0", "1E+2",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808",
	"-9223372036854775809", "18446744073709551615", "18446744073709551616",
	"123456789012345678901234567890", "1e400", "-1e-400", "0.000001",
	"12345.6789e-10",
};

static void	 gen_value(struct gen *, int);

static void
gen_object(struct gen *g, int depth, int top)
{
	size_t	 i, n = top ? 2 + gen_pick(g, 6) : gen_pick(g, 5);

	gen_str(g, "{");
	gen_ws(g);
	for (i = 0; i < n; i++) {
		if (i > 0) {
			gen_str(g, ",");
			gen_ws(g);
		}
		gen_str(g, gen_keys[gen_pick(g, sizeof(gen_keys) /
		    sizeof(gen_keys[0]))]);
		gen_ws(g);
		gen_str(g, ":");
		gen_ws(g);
		gen_value(g, depth + 1);
		gen_ws(g);
	}
	gen_str(g, "}");
}

static void
gen_array(struct gen *g, int depth)
{
	size_t	 i, n = gen_pick(g, 5);
	int	 objs = gen_pick(g, 2) == 0;

	gen_str(g, "[");
	gen_ws(g);
	for (i = 0; i < n; i++) {
		if (i > 0) {
			gen_str(g, ",");
			gen_ws(g);
		}
		if (objs)	/* messages-like */
			gen_object(g, depth + 1, 0);
		else
			gen_value(g, depth + 1);
		gen_ws(g);
	}
	gen_str(g, "]");
}

/* A chain of d containers: depth limits. */
static void
gen_deep(struct gen *g, int depth)
{
	int	 d = 26 + (int)gen_pick(g, 10), k;

	for (k = 0; k < d; k++)
		gen_str(g, gen_pick(g, 3) == 0 ? "{\"a\":" : "[");
	if (depth + d > g->maxdepth)
		g->maxdepth = depth + d;	/* the 1 inside */
	gen_str(g, "1");
	/* Close in reverse: rebuild what was opened from the text. */
	for (k = (int)g->n - 1; d > 0 && k >= 0; k--) {
		if (g->b[k] == '[') {
			gen_str(g, "]");
			d--;
		} else if (g->b[k] == '{') {
			gen_str(g, "}");
			d--;
		}
	}
}

static void
gen_value(struct gen *g, int depth)
{
	size_t	 r = gen_pick(g, depth > 6 ? 6 : 9);

	if (depth > g->maxdepth)
		g->maxdepth = depth;
	switch (r) {
	case 0:
		gen_str(g, gen_strs[gen_pick(g, sizeof(gen_strs) /
		    sizeof(gen_strs[0]))]);
		break;
	case 1:
		gen_str(g, gen_nums[gen_pick(g, sizeof(gen_nums) /
		    sizeof(gen_nums[0]))]);
		break;
	case 2: {
		char	 num[32];

		snprintf(num, sizeof(num), "%lld", (long long)(gen_rand(g) >>
		    gen_pick(g, 64)) * (gen_pick(g, 2) ? 1 : -1));
		gen_str(g, num);
		break;
	}
	case 3:
		gen_str(g, gen_pick(g, 2) ? "true" : "false");
		break;
	case 4:
		gen_str(g, "null");
		break;
	case 5:
		gen_str(g, gen_keys[gen_pick(g, sizeof(gen_keys) /
		    sizeof(gen_keys[0]))]);
		break;
	case 6:
	case 7:
		if (gen_pick(g, 40) == 0)
			gen_deep(g, depth);
		else
			gen_object(g, depth, 0);
		break;
	default:
		gen_array(g, depth);
		break;
	}
}

/* Valid JSON: an object, often chat-shaped. */
static void
gen_doc(struct gen *g)
{
	g->n = 0;
	g->maxdepth = 1;
	gen_ws(g);
	gen_object(g, 1, 1);
	gen_ws(g);
}

static const char *const gen_tricky[] = {
	",", "}", "]", "{", "[", ":", "\"", "\\", "'", "NaN", "Infinity",
	"-Infinity", "/*", "*/", "//", "\\u0000", "\\ud800", "\\udc00",
	"\\ud800\\udc00", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"\xc3", "\x80", "\xff", "\x01", "\x7f", "01", "-", "1.", ".5", "e5",
	"E", "+", "true", "TRUE", "nul", " ", "\v", "\f", "\xef\xbb\xbf",
	"\"model\":\"m\",", "\"model\":1,", ",\"model\":\"z\"", "\\u0065",
	"\"role\":\"r\"", "\"messages\":[{}],", "\"stream\":true,",
};

static const char *const gen_corpus[] = {
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	"{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":"
	    "false},\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}]}",
	"{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
	"{'model':'m'}", "{\"a\":NaN,\"b\":-Infinity,\"c\":00}",
	"{\"mod\\u0065l\":\"x\",\"model\":\"y\",\"model\":null}",
	"{\"a\":\"\\ud83d\\ude00\\u0000\"}",
};

/* One to three edits of the text in g. */
static void
gen_mutate(struct gen *g)
{
	size_t	 k, ops = 1 + gen_pick(g, 3), at, n;
	const char *t;
	char	 c;

	for (k = 0; k < ops && !g->oom; k++) {
		at = g->n ? gen_pick(g, g->n + 1) : 0;
		switch (gen_pick(g, 5)) {
		case 0:		/* a byte changed */
			if (at < g->n) {
				c = (char)gen_rand(g);
				g->b[at] = c;
			}
			break;
		case 1:		/* a tricky token inserted */
			t = gen_tricky[gen_pick(g, sizeof(gen_tricky) /
			    sizeof(gen_tricky[0]))];
			n = strlen(t);
			gen_put(g, t, n);	/* room, then move into place */
			if (!g->oom) {
				memmove(g->b + at + n, g->b + at,
				    g->n - n - at);
				memcpy(g->b + at, t, n);
			}
			break;
		case 2:		/* a range deleted */
			n = gen_pick(g, 8);
			if (at + n <= g->n) {
				memmove(g->b + at, g->b + at + n,
				    g->n - at - n);
				g->n -= n;
			}
			break;
		case 3:		/* truncated */
			g->n = at;
			break;
		default:	/* a byte replaced by a tricky one */
			if (at < g->n) {
				t = gen_tricky[gen_pick(g,
				    sizeof(gen_tricky) / sizeof(gen_tricky[0]))];
				g->b[at] = t[0];
			}
			break;
		}
	}
}

/*
 * n cases from seed: each judged by jscan_diff; a valid generated text
 * must also be taken.  -1 at the first difference, its text in *text
 * (to free) and why.
 */
int
jscan_diff_run(uint64_t seed, size_t n, const char *elem_key,
    struct jscan_diff_stats *st, char *why, size_t sz, char **text,
    size_t *len)
{
	struct gen	 g;
	size_t		 i;
	int		 rc, valid;

	memset(&g, 0, sizeof(g));
	g.s = seed | 1;
	*text = NULL;
	for (i = 0; i < n; i++) {
		valid = 0;
		if (i % 4 == 0) {
			gen_doc(&g);
			valid = g.maxdepth <= JSCAN_MAX_DEPTH;
		} else if (i % 4 == 1) {
			g.n = 0;
			gen_str(&g, gen_corpus[gen_pick(&g, sizeof(gen_corpus) /
			    sizeof(gen_corpus[0]))]);
			gen_mutate(&g);
		} else {
			gen_doc(&g);
			gen_mutate(&g);
		}
		if (g.oom)
			break;
		rc = jscan_diff(g.b, g.n, elem_key, why, sz);
		if (rc == JSCAN_DIFF_BAD || (valid && rc !=
		    JSCAN_DIFF_BOTH_TAKE)) {
			if (rc != JSCAN_DIFF_BAD)
				snprintf(why, sz, "valid JSON refused");
			*text = g.b;
			*len = g.n;
			return -1;
		}
		st->cases++;
		st->both_take += rc == JSCAN_DIFF_BOTH_TAKE;
		st->both_refuse += rc == JSCAN_DIFF_BOTH_REFUSE;
		st->strict += rc == JSCAN_DIFF_STRICT;
	}
	free(g.b);
	if (g.oom) {
		snprintf(why, sz, "out of memory");
		return -1;
	}
	return 0;
}
