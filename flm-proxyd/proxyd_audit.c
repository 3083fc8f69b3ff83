/*
 * Audit records: one per request, queued here until keyd has written
 * them.  Batches go out as the queue fills or on a short tick; keyd
 * acknowledges each in order, and whatever is not acknowledged when
 * keyd goes away is sent again to the next keyd, so none is lost.  A
 * full queue refuses new requests (audit_full) rather than drop one.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "proxyd.h"

#define AUDIT_QUEUE_MAX		65536	/* records kept for keyd */
#define AUDIT_INFLIGHT		FLM_AUDIT_INFLIGHT
#define AUDIT_TICK_MS		50
#define AUDIT_RETRY_SECS	1
#define AUDIT_TAIL		2048	/* answer bytes kept for usage */

static struct flm_audit_record	*aq;		/* queue: aq[ahead..] */
static size_t			 acap, ahead, alen;
static size_t			 asent;		/* of alen, in flight */
static struct {
	uint64_t	 seq;
	size_t		 n;
}				 ainflight[AUDIT_INFLIGHT];
static size_t			 aninflight;
static uint64_t			 aseq;
static uint64_t			 aignore;	/* acks up to it: stale */
static struct event		*atick;
static int			 aretry;	/* keyd refused: wait */

static void	audit_send(int);
static void	audit_schedule(int);

int
audit_full(void)
{
	return alen >= AUDIT_QUEUE_MAX;
}

/* Records keyd has not acknowledged yet (draining waits for none). */
size_t
audit_pending(void)
{
	return alen;
}

/* Draining: what is queued goes now, not at the next tick. */
void
audit_send_now(void)
{
	audit_send(1);
	if (alen > asent)
		audit_schedule(AUDIT_TICK_MS);
}

static void
audit_schedule(int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!evtimer_pending(atick, NULL))
		evtimer_add(atick, &tv);
}

static void
audit_tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	aretry = 0;
	audit_send(1);
	if (alen > asent)
		audit_schedule(AUDIT_TICK_MS);
}

static struct flm_audit_record *
audit_slot(void)
{
	struct flm_audit_record	*n;
	size_t			 ncap;

	if (ahead > 0 && ahead + alen == acap) {
		memmove(aq, aq + ahead, alen * sizeof(*aq));
		ahead = 0;
	}
	if (alen == acap) {
		ncap = acap == 0 ? 256 : acap * 2;
		/* Past the mark, room for requests already under way. */
		if (ncap > 2 * AUDIT_QUEUE_MAX ||
		    (n = reallocarray(aq, ncap, sizeof(*aq))) == NULL)
			return NULL;
		aq = n;
		acap = ncap;
	}
	return &aq[ahead + alen++];
}

/*
 * Batches in flight go back to the queue, marked: keyd may have
 * written them before it went (or refused a later one), and skips what
 * it has.
 */
static void
audit_unsend(void)
{
	size_t	 i;

	for (i = 0; i < asent; i++)
		aq[ahead + i].flags |= FLM_AUDIT_F_RESENT;
	aninflight = 0;
	asent = 0;
}

/* Batches of what is queued and not in flight, while keyd takes them;
 * with all 0, full ones only. */
static void
audit_send(int all)
{
	struct chan	*ch = px->c.peer;
	struct mbuf	 b;
	size_t		 n;

	while (ch != NULL && !aretry && asent < alen &&
	    aninflight < AUDIT_INFLIGHT &&
	    (all || alen - asent >= FLM_AUDIT_BATCH_MAX)) {
		n = alen - asent;
		if (n > FLM_AUDIT_BATCH_MAX)
			n = FLM_AUDIT_BATCH_MAX;
		memset(&b, 0, sizeof(b));
		mbuf_put_u64(&b, ++aseq);
		mbuf_put_u32(&b, (uint32_t)n);
		mbuf_put_data(&b, &aq[ahead + asent], n * sizeof(*aq));
		if (chan_compose_mbuf(ch, IMSG_AUDIT_BATCH, 0, -1, &b) == -1) {
			mbuf_free(&b);
			break;
		}
		mbuf_free(&b);
		ainflight[aninflight].seq = aseq;
		ainflight[aninflight++].n = n;
		asent += n;
	}
}

/* Full batches now; a short one waits for the tick to fill it (an ack
 * each few records would make keyd write them a few at a time). */
static void
audit_flush(void)
{
	audit_send(0);
	if (alen > asent)
		audit_schedule(AUDIT_TICK_MS);
}

static int
audit_endpoint(enum http_endpoint ep)
{
	switch (ep) {
	case EP_MODELS:		return FLM_AUDIT_EP_MODELS;
	case EP_CHAT:		return FLM_AUDIT_EP_CHAT;
	case EP_COMPLETIONS:	return FLM_AUDIT_EP_COMPLETIONS;
	case EP_EMBEDDINGS:	return FLM_AUDIT_EP_EMBEDDINGS;
	case EP_MESSAGES:	return FLM_AUDIT_EP_MESSAGES;
	case EP_OLLAMA_CHAT:	return FLM_AUDIT_EP_OLLAMA_CHAT;
	case EP_OLLAMA_GENERATE: return FLM_AUDIT_EP_OLLAMA_GENERATE;
	case EP_OLLAMA_EMBED:	return FLM_AUDIT_EP_OLLAMA_EMBED;
	case EP_OLLAMA_EMBEDDINGS: return FLM_AUDIT_EP_OLLAMA_EMBEDDINGS;
	case EP_OLLAMA_TAGS:	return FLM_AUDIT_EP_OLLAMA_TAGS;
	case EP_OLLAMA_SHOW:	return FLM_AUDIT_EP_OLLAMA_SHOW;
	case EP_OLLAMA_VERSION:	return FLM_AUDIT_EP_OLLAMA_VERSION;
	case EP_RESPONSES:	return FLM_AUDIT_EP_RESPONSES;
	case EP_COUNT_TOKENS:	return FLM_AUDIT_EP_COUNT_TOKENS;
	default:		return 0;
	}
}

/* Model names go into the trail as printable text only. */
static void
audit_copy_model(char *dst, size_t sz, const char *src)
{
	size_t	 i;

	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < sz; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    '?' : src[i];
	dst[i] = '\0';
}

/* src cut to fit dst, which audit_request has zeroed. */
static void
audit_copy(char *dst, size_t sz, const char *src)
{
	memcpy(dst, src, strnlen(src, sz - 1));
}

/* The request is over with status: record it, debit token limits. */
void
audit_request(struct http_req *r, int status)
{
	struct policy_rate	 rate;
	struct flm_audit_record	*a;
	struct timespec		 now, wall;
	const char		*label;
	int64_t			 ms;
	int			 ep;

	if ((ep = audit_endpoint(r->ep)) == 0 ||
	    r->head.method == HTTP_M_OPTIONS)
		return;
	if ((a = audit_slot()) == NULL) {
		log_warnx("audit queue full: request flm-%016llx not recorded",
		    (unsigned long long)r->id);
		return;
	}
	memset(a, 0, sizeof(*a));
	a->version = FLM_AUDIT_VERSION;
	a->endpoint = (uint32_t)ep;
	a->reqid = r->id;
	a->status = (uint32_t)(status >= 100 && status <= 599 ? status : 500);
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &wall);
	ms = (now.tv_sec - r->start.tv_sec) * 1000 +
	    (now.tv_nsec - r->start.tv_nsec) / 1000000;
	a->latency_ms = (uint32_t)(ms < 0 ? 0 : ms);
	/* When it began: now, less how long it took. */
	a->time_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 -
	    a->latency_ms;
	a->prompt_tokens = a->completion_tokens = -1;
	if (r->tlen > 0)
		audit_usage_scan(r->tail, r->tlen, &a->prompt_tokens,
		    &a->completion_tokens);
	memcpy(a->key_id, r->key_id, sizeof(a->key_id));
	audit_copy(a->addr, sizeof(a->addr), http_req_addr(r));
	audit_copy(a->cert_serial, sizeof(a->cert_serial),
	    http_req_cert(r, &label));
	audit_copy(a->cert_label, sizeof(a->cert_label), label);
	audit_copy_model(a->model, sizeof(a->model), r->model);
	a->scope = (uint8_t)r->scope;
	metrics_request(r, (int)a->status, (int64_t)a->latency_ms,
	    a->prompt_tokens, a->completion_tokens);
	ms = (a->prompt_tokens > 0 ? a->prompt_tokens : 0) +
	    (a->completion_tokens > 0 ? a->completion_tokens : 0);
	ratelimit_debit("ip", a->addr, &px->policy.per_ip, ms);
	if (a->key_id[0] != '\0') {
		scope_rate(a->key_id, &rate);
		ratelimit_debit("key", a->key_id, &rate, ms);
	}
	else if (a->cert_serial[0] != '\0')
		ratelimit_debit("cert", a->cert_serial, &px->policy.per_key,
		    ms);
	audit_flush();
}

void
audit_ack(struct chan *ch, struct chan_msg *m)
{
	struct flm_audit_ack	 ack;
	size_t			 n;

	if (msg_get_data(m, &ack, sizeof(ack)) == -1 || msg_end(m) == -1 ||
	    ack.version != FLM_AUDIT_VERSION) {
		chan_fail(ch, "malformed AUDIT_ACK");
		return;
	}
	/* Batches sent before a refusal: they go again in any case (keyd
	 * skips what it already has). */
	if (ack.seq <= aignore)
		return;
	if (aninflight == 0 || ack.seq != ainflight[0].seq) {
		chan_fail(ch, "unexpected AUDIT_ACK");
		return;
	}
	if (!ack.ok) {
		/* keyd could not write: all of it again, a little later. */
		aignore = ainflight[aninflight - 1].seq;
		audit_unsend();
		aretry = 1;
		evtimer_del(atick);
		audit_schedule(AUDIT_RETRY_SECS * 1000);
		return;
	}
	n = ainflight[0].n;
	memmove(ainflight, ainflight + 1, --aninflight * sizeof(ainflight[0]));
	ahead += n;
	alen -= n;
	asent -= n;
	if (alen == 0)
		ahead = 0;
	audit_flush();
	if (alen == 0)
		http_drain_check();
}

/* Whatever the old keyd did not acknowledge goes to the new one. */
void
audit_keyd_up(struct chan *ch)
{
	(void)ch;
	audit_unsend();
	aretry = 0;
	audit_send(1);
}

void
audit_keyd_down(void)
{
	audit_unsend();
}

/*
 * Room at the end of the answer's tail for its next n bytes (at most
 * AUDIT_TAIL), dropping the oldest; NULL if this answer has no usage.
 */
static char *
audit_tail_room(struct http_req *r, size_t n)
{
	if (r->op != EP_CHAT && r->op != EP_COMPLETIONS &&
	    r->op != EP_EMBEDDINGS)
		return NULL;
	if (r->tail == NULL && (r->tail = malloc(AUDIT_TAIL)) == NULL)
		return NULL;
	if (r->tlen + n > AUDIT_TAIL) {
		memmove(r->tail, r->tail + r->tlen + n - AUDIT_TAIL,
		    AUDIT_TAIL - n);
		r->tlen = AUDIT_TAIL - n;
	}
	r->tlen += n;
	return r->tail + r->tlen - n;
}

/* The answer's last bytes, for audit_usage_scan. */
void
audit_feed(struct http_req *r, const void *p, size_t n)
{
	size_t	 k = n < AUDIT_TAIL ? n : AUDIT_TAIL;
	char	*dst;

	if ((dst = audit_tail_room(r, k)) != NULL)
		memcpy(dst, (const char *)p + n - k, k);
}

void
audit_feed_buf(struct http_req *r, struct evbuffer *b, size_t n)
{
	size_t			 k = n < AUDIT_TAIL ? n : AUDIT_TAIL;
	struct evbuffer_ptr	 pos;
	char			*dst;

	if ((dst = audit_tail_room(r, k)) != NULL &&
	    (evbuffer_ptr_set(b, &pos, n - k, EVBUFFER_PTR_SET) == -1 ||
	    evbuffer_copyout_from(b, &pos, dst, k) != (ev_ssize_t)k))
		r->tlen -= k;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end && *p != '"'; p++)
		if (*p == '\\')
			p++;
	return p < end ? p + 1 : end;
}

static int64_t
read_count(const char *p, const char *end)
{
	int64_t	 v = 0;

	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return -1;
	p = skip_ws(p + 1, end);
	if (p >= end || !isdigit((unsigned char)*p))
		return -1;
	while (p < end && isdigit((unsigned char)*p) && v < INT32_MAX)
		v = v * 10 + (*p++ - '0');
	return v;
}

/* The count after key k (quoted, klen bytes) at p, if p is that key. */
static int
usage_key(const char *p, const char *q, const char *end, const char *k,
    size_t klen, int64_t *out)
{
	int64_t	 v;

	if ((size_t)(q - p) != klen || memcmp(p, k, klen) != 0 ||
	    (v = read_count(q, end)) < 0)
		return 0;
	*out = v;
	return 1;
}

/*
 * The answer's token counts: the last "usage" object (a stream's final
 * chunk, or near a JSON answer's end) with OpenAI's prompt_tokens and
 * completion_tokens or Anthropic's input_tokens and output_tokens at
 * its own level; without one, Ollama's last prompt_eval_count and
 * eval_count.  0 if there are none.
 */
int
audit_usage_scan(const char *buf, size_t len, int64_t *prompt,
    int64_t *completion)
{
	const char	*end = buf + len, *p = NULL, *q;
	int		 depth, found = 0;

	for (q = buf; (q = memmem(q, (size_t)(end - q), "\"usage\"", 7)) !=
	    NULL; q += 7)
		p = q + 7;
	if (p == NULL) {
		for (q = buf; (q = memchr(q, '"', (size_t)(end - q))) !=
		    NULL; q = p) {
			p = skip_string(q, end);
			found |= usage_key(q, p, end, "\"prompt_eval_count\"",
			    19, prompt);
			found |= usage_key(q, p, end, "\"eval_count\"", 12,
			    completion);
		}
		return found;
	}
	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return 0;
	p = skip_ws(p + 1, end);
	if (p >= end || *p != '{')
		return 0;
	for (depth = 0; p < end; p++) {
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				break;
		} else if (*p == '"') {
			q = skip_string(p, end);
			/* A key is followed by ':'; a value is not. */
			if (depth == 1)
				(void)(usage_key(p, q, end,
				    "\"prompt_tokens\"", 15, prompt) ||
				    usage_key(p, q, end, "\"input_tokens\"",
				    14, prompt) || usage_key(p, q, end,
				    "\"completion_tokens\"", 19, completion) ||
				    usage_key(p, q, end, "\"output_tokens\"",
				    15, completion));
			p = q - 1;
		}
	}
	return 1;
}

void
audit_init(void)
{
	if ((atick = evtimer_new(px->c.base, audit_tick, NULL)) == NULL)
		fatalx("audit timer");
}

void
audit_cleanup(void)
{
	if (alen > 0)
		log_warnx("exiting with %zu audit records keyd has not "
		    "acknowledged", alen);
	free(aq);
	aq = NULL;
	acap = ahead = alen = asent = 0;
	if (atick != NULL)
		event_free(atick);
}
