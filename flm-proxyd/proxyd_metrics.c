/*
 * GET /metrics in Prometheus's text format (0.0.4), for a key whose
 * scope names the metrics endpoint (proxyd_scope.c): requests by
 * endpoint, status, engine and model; latency and time-to-first-token
 * histograms; tokens in and out; upstream errors; streams in progress;
 * the audit queue; key verifications.  Each worker counts into its own
 * block of the region flmd shares (lib/shm.h), so any worker answers a
 * scrape for all, and a restarted worker goes on from its counts.  No
 * key, key label or hash is ever a label.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "proxyd.h"
#include "shm.h"

/* Bucket bounds in microseconds; the last is +Inf. */
static const uint64_t	 mx_bounds[MX_BUCKETS - 1] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000, 10000000, 30000000,
};
static const char *const mx_le[MX_BUCKETS] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
	"2.5", "5", "10", "30", "+Inf",
};

static struct mx_worker	*mx_all;	/* FLM_WORKERS_MAX blocks */

static struct mx_worker *
mx_self(void)
{
	if (mx_all == NULL || px->worker >= FLM_WORKERS_MAX)
		return NULL;
	return &mx_all[px->worker];
}

/*
 * The region's metrics part (shared, or our private map's), once we
 * know which worker we are (flmd says so first).  Counters go on from
 * a predecessor's; its gauges died with it.
 */
void
metrics_attach(void *base)
{
	struct mx_worker	*w;

	mx_all = base;
	if ((w = mx_self()) != NULL) {
		__atomic_store_n(&w->streams, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&w->audit_queue, 0, __ATOMIC_RELAXED);
	}
}

static int
mx_bucket(uint64_t us)
{
	int	 i;

	for (i = 0; i < MX_BUCKETS - 1; i++)
		if (us <= mx_bounds[i])
			return i;
	return MX_BUCKETS - 1;
}

/* Our series for these labels, made if new; NULL when all are taken. */
static struct mx_series *
mx_series_for(struct mx_worker *w, int ep, int status, const char *engine,
    const char *model)
{
	struct mx_series	*s;
	uint32_t		 h = 2166136261u;
	const char		*p;
	int			 i, k;

	for (p = model; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (p = engine; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (uint32_t)ep) * 16777619u ^ (uint32_t)status;
	for (i = 0; i < MX_SERIES; i++) {
		k = (int)((h + (uint32_t)i) % MX_SERIES);
		s = &w->series[k];
		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
			memset(s, 0, sizeof(*s));
			s->endpoint = (uint16_t)ep;
			s->status = (uint16_t)status;
			snprintf(s->engine, sizeof(s->engine), "%s", engine);
			snprintf(s->model, sizeof(s->model), "%s", model);
			__atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
			return s;
		}
		if (s->endpoint == ep && s->status == status &&
		    strcmp(s->engine, engine) == 0 &&
		    strcmp(s->model, model) == 0)
			return s;
	}
	return NULL;
}

static void
mx_add(uint64_t *v, uint64_t n)
{
	__atomic_fetch_add(v, n, __ATOMIC_RELAXED);
}

/* A request has ended (from audit_request: every counted one). */
void
metrics_request(const struct http_req *r, int status, int64_t latency_ms,
    int64_t ptok, int64_t ctok)
{
	struct mx_worker	*w = mx_self();
	struct mx_series	*s;
	uint64_t		 us = latency_ms > 0 ? (uint64_t)latency_ms * 1000 :
				    0;

	if (w == NULL)
		return;
	__atomic_store_n(&w->audit_queue, (uint64_t)audit_pending(),
	    __ATOMIC_RELAXED);
	/* The model a client names is a label only once an engine took
	 * it: made-up names cannot use up the label sets. */
	if ((s = mx_series_for(w, r->ep, status, r->engine,
	    r->model != NULL && r->engine[0] != '\0' ? r->model : "")) ==
	    NULL) {
		mx_add(&w->overflow, 1);
		return;
	}
	mx_add(&s->requests, 1);
	if (ptok > 0)
		mx_add(&s->prompt_tokens, (uint64_t)ptok);
	if (ctok > 0)
		mx_add(&s->completion_tokens, (uint64_t)ctok);
	mx_add(&s->lat[mx_bucket(us)], 1);
	mx_add(&s->lat_sum_us, us);
	if (r->ttft_us > 0) {
		mx_add(&s->ttft[mx_bucket(r->ttft_us)], 1);
		mx_add(&s->ttft_sum_us, r->ttft_us);
		mx_add(&s->ttft_count, 1);
	}
}

void
metrics_key(int what)
{
	struct mx_worker	*w = mx_self();

	if (w == NULL)
		return;
	mx_add(what == MX_KEY_CACHED ? &w->key_cached : what == MX_KEY_COLD ?
	    &w->key_cold : &w->key_failed, 1);
}

void
metrics_streams(int delta)
{
	struct mx_worker	*w = mx_self();

	if (w != NULL)
		__atomic_fetch_add(&w->streams, delta, __ATOMIC_RELAXED);
}

void
metrics_upstream_error(const char *engine)
{
	struct mx_worker	*w = mx_self();
	int			 i;

	if (w == NULL)
		return;
	for (i = 0; i < MX_ENGINES; i++) {
		if (w->upstream[i].engine[0] == '\0')
			snprintf(w->upstream[i].engine,
			    sizeof(w->upstream[i].engine), "%s", engine);
		if (strcmp(w->upstream[i].engine, engine) == 0) {
			mx_add(&w->upstream[i].errors, 1);
			return;
		}
	}
}

/* ---- the scrape ---------------------------------------------------------- */

/* A label read from the region: printable, ended, or not shown. */
static int
mx_label_ok(const char *s, size_t sz)
{
	size_t	 i;

	for (i = 0; i < sz && s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return i < sz;
}

/* A label value, escaped as the text format wants. */
static void
mx_quote(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add(b, "\\", 1);
		evbuffer_add(b, s, 1);
	}
}

static void
mx_labels(struct evbuffer *b, const struct mx_series *s, int status)
{
	evbuffer_add_printf(b, "endpoint=\"%s\",", http_ep_path(s->endpoint));
	if (status)
		evbuffer_add_printf(b, "status=\"%u\",", s->status);
	evbuffer_add(b, "engine=\"", 8);
	mx_quote(b, s->engine);
	evbuffer_add(b, "\",model=\"", 9);
	mx_quote(b, s->model);
	evbuffer_add(b, "\"", 1);
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct mx_series	*x = *(const struct mx_series *const *)a;
	const struct mx_series	*y = *(const struct mx_series *const *)b;
	int			 c;

	if (x->endpoint != y->endpoint)
		return x->endpoint < y->endpoint ? -1 : 1;
	if ((c = strcmp(x->engine, y->engine)) != 0)
		return c;
	if ((c = strcmp(x->model, y->model)) != 0)
		return c;
	return (int)x->status - (int)y->status;
}

/* Every worker's series, summed by label set, sorted. */
static struct mx_series *
mx_gather(size_t *np, struct mx_worker *tot)
{
	struct mx_series	**v = NULL, **nv, *out = NULL, *o;
	const struct mx_series	*s;
	size_t			 n = 0, m = 0, i;
	int			 w, k, j;

	memset(tot, 0, sizeof(*tot));
	for (w = 0; w < FLM_WORKERS_MAX; w++) {
		tot->key_cached += mx_all[w].key_cached;
		tot->key_cold += mx_all[w].key_cold;
		tot->key_failed += mx_all[w].key_failed;
		tot->streams += mx_all[w].streams;
		tot->audit_queue += mx_all[w].audit_queue;
		tot->overflow += mx_all[w].overflow;
		for (k = 0; k < MX_SERIES; k++) {
			s = &mx_all[w].series[k];
			if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE) ||
			    http_ep_path(s->endpoint) == NULL ||
			    !mx_label_ok(s->engine, sizeof(s->engine)) ||
			    !mx_label_ok(s->model, sizeof(s->model)))
				continue;
			if ((nv = reallocarray(v, n + 1, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
			v[n++] = (struct mx_series *)s;
		}
	}
	if (n > 0) {
		qsort(v, n, sizeof(*v), mx_cmp);
		if ((out = calloc(n, sizeof(*out))) == NULL)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		if (m == 0 || mx_cmp(&v[i], &(struct mx_series *){&out[m -
		    1]}) != 0)
			memcpy(&out[m++], v[i], sizeof(*out));
		else {
			o = &out[m - 1];
			o->requests += v[i]->requests;
			o->prompt_tokens += v[i]->prompt_tokens;
			o->completion_tokens += v[i]->completion_tokens;
			o->lat_sum_us += v[i]->lat_sum_us;
			o->ttft_sum_us += v[i]->ttft_sum_us;
			o->ttft_count += v[i]->ttft_count;
			for (j = 0; j < MX_BUCKETS; j++) {
				o->lat[j] += v[i]->lat[j];
				o->ttft[j] += v[i]->ttft[j];
			}
		}
	}
	free(v);
	*np = m;
	return out;
fail:
	free(v);
	*np = 0;
	return NULL;
}

/* Same endpoint, engine and model: one histogram's members. */
static int
mx_same(const struct mx_series *a, const struct mx_series *b)
{
	return a->endpoint == b->endpoint && strcmp(a->engine,
	    b->engine) == 0 && strcmp(a->model, b->model) == 0;
}

static void
mx_histogram(struct evbuffer *b, const char *name, const struct mx_series *s,
    size_t n, int ttft)
{
	uint64_t	 cum, sum, cnt, bk[MX_BUCKETS];
	size_t		 i, j;
	int		 k;

	for (i = 0; i < n; i = j) {
		memset(bk, 0, sizeof(bk));
		sum = cnt = 0;
		for (j = i; j < n && mx_same(&s[i], &s[j]); j++) {
			for (k = 0; k < MX_BUCKETS; k++)
				bk[k] += ttft ? s[j].ttft[k] : s[j].lat[k];
			sum += ttft ? s[j].ttft_sum_us : s[j].lat_sum_us;
		}
		for (cum = 0, k = 0; k < MX_BUCKETS; k++) {
			cum += bk[k];
			evbuffer_add_printf(b, "%s_bucket{", name);
			mx_labels(b, &s[i], 0);
			evbuffer_add_printf(b, ",le=\"%s\"} %llu\n", mx_le[k],
			    (unsigned long long)cum);
		}
		cnt = cum;
		evbuffer_add_printf(b, "%s_sum{", name);
		mx_labels(b, &s[i], 0);
		evbuffer_add_printf(b, "} %.6f\n%s_count{", (double)sum / 1e6,
		    name);
		mx_labels(b, &s[i], 0);
		evbuffer_add_printf(b, "} %llu\n", (unsigned long long)cnt);
	}
}

static void
mx_tokens(struct evbuffer *b, const struct mx_series *s, size_t n, int out)
{
	uint64_t	 t;
	size_t		 i, j;

	for (i = 0; i < n; i = j) {
		for (t = 0, j = i; j < n && mx_same(&s[i], &s[j]); j++)
			t += out ? s[j].completion_tokens : s[j].prompt_tokens;
		evbuffer_add_printf(b, "flm_tokens_total{");
		mx_labels(b, &s[i], 0);
		evbuffer_add_printf(b, ",direction=\"%s\"} %llu\n", out ?
		    "out" : "in", (unsigned long long)t);
	}
}

static void
mx_text(struct evbuffer *b, const struct mx_series *s, size_t n,
    const struct mx_worker *tot)
{
	size_t	 i;
	int	 w, k;

	evbuffer_add_printf(b, "# HELP flm_requests_total Requests answered, "
	    "by endpoint, status, engine and model.\n"
	    "# TYPE flm_requests_total counter\n");
	for (i = 0; i < n; i++) {
		evbuffer_add(b, "flm_requests_total{", 19);
		mx_labels(b, &s[i], 1);
		evbuffer_add_printf(b, "} %llu\n",
		    (unsigned long long)s[i].requests);
	}
	evbuffer_add_printf(b, "# HELP flm_request_duration_seconds From the "
	    "request's head to the answer's end.\n"
	    "# TYPE flm_request_duration_seconds histogram\n");
	mx_histogram(b, "flm_request_duration_seconds", s, n, 0);
	evbuffer_add_printf(b, "# HELP flm_time_to_first_token_seconds From "
	    "the request's head to a stream's first bytes.\n"
	    "# TYPE flm_time_to_first_token_seconds histogram\n");
	mx_histogram(b, "flm_time_to_first_token_seconds", s, n, 1);
	evbuffer_add_printf(b, "# HELP flm_tokens_total Tokens the engines "
	    "counted: in (prompt) and out (completion).\n"
	    "# TYPE flm_tokens_total counter\n");
	mx_tokens(b, s, n, 0);
	mx_tokens(b, s, n, 1);
	evbuffer_add_printf(b, "# HELP flm_upstream_errors_total Calls to an "
	    "engine that failed: refused, reset, timed out, malformed.\n"
	    "# TYPE flm_upstream_errors_total counter\n");
	for (w = 0; w < FLM_WORKERS_MAX; w++)
		for (k = 0; k < MX_ENGINES; k++) {
			if (mx_all[w].upstream[k].engine[0] == '\0' ||
			    !mx_label_ok(mx_all[w].upstream[k].engine,
			    sizeof(mx_all[w].upstream[k].engine)))
				continue;
			evbuffer_add(b, "flm_upstream_errors_total{engine=\"",
			    34);
			mx_quote(b, mx_all[w].upstream[k].engine);
			evbuffer_add_printf(b, "\",worker=\"%d\"} %llu\n", w,
			    (unsigned long long)mx_all[w].upstream[k].errors);
		}
	evbuffer_add_printf(b, "# HELP flm_active_streams Answers being "
	    "streamed now.\n# TYPE flm_active_streams gauge\n"
	    "flm_active_streams %lld\n"
	    "# HELP flm_audit_queue_depth Audit records not yet written by "
	    "flm-keyd.\n# TYPE flm_audit_queue_depth gauge\n"
	    "flm_audit_queue_depth %llu\n"
	    "# HELP flm_key_verifications_total API key checks: cached in "
	    "flm-proxyd, cold (asked of flm-keyd), failed.\n"
	    "# TYPE flm_key_verifications_total counter\n"
	    "flm_key_verifications_total{result=\"cached\"} %llu\n"
	    "flm_key_verifications_total{result=\"cold\"} %llu\n"
	    "flm_key_verifications_total{result=\"failed\"} %llu\n"
	    "# HELP flm_series_overflow_total Requests not counted by label "
	    "set: every set a worker keeps was taken.\n"
	    "# TYPE flm_series_overflow_total counter\n"
	    "flm_series_overflow_total %llu\n",
	    (long long)(tot->streams > 0 ? tot->streams : 0),
	    (unsigned long long)tot->audit_queue,
	    (unsigned long long)tot->key_cached,
	    (unsigned long long)tot->key_cold,
	    (unsigned long long)tot->key_failed,
	    (unsigned long long)tot->overflow);
}

void
metrics_serve(struct http_req *req)
{
	struct evbuffer		*b;
	struct mx_worker	*tot, *self = mx_self();
	struct mx_series	*s;
	size_t			 n, len;

	if (mx_all == NULL || (b = evbuffer_new()) == NULL) {
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	if ((tot = malloc(sizeof(*tot))) == NULL) {
		evbuffer_free(b);
		http_error(req, 503, "server_error", NULL, "Out of memory.");
		return;
	}
	if (self != NULL)
		__atomic_store_n(&self->audit_queue, (uint64_t)audit_pending(),
		    __ATOMIC_RELAXED);
	s = mx_gather(&n, tot);
	mx_text(b, s, n, tot);
	free(s);
	free(tot);
	len = evbuffer_get_length(b);
	http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}
