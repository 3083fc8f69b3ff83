/* flm-proxyd: shared between its files. */
#ifndef PROXYD_H
#define PROXYD_H

#include <sys/uio.h>

#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/types.h>

#include "child.h"
#include "flm_msg.h"
#include "policy.h"
#include "proxyd_parse.h"

struct evbuffer;
struct evconnlistener;
struct json_object;

#define PROXYD_MAX_LISTENERS	8
#define PROXYD_MAX_ENGINES	32

/* A SOCKS5 server between proxyd and engines (proxyd_socks.c). */
struct proxyd_socks {
	int		 on;
	int		 tor;		/* egress.mode tor: no user */
	int		 fail_open;	/* egress.fail_open */
	char		 addr[64];	/* numeric */
	int		 port;
	char		 user[256];	/* its password: creds "egress:socks5" */
	char		 error[200];	/* flmd could not set it up */
};
#define SOCKS_SECRET	"egress:socks5"

struct proxyd_engine {
	char		 id[33];
	char		 kind[16];
	char		 host[256];
	char		 addr[64];	/* numeric: proxyd resolves nothing */
	int		 port;
	int64_t		 owner;		/* uid flmd recorded, -1 none */
	/* https: how it is verified (proxyd_uptls.c).  Copies of the
	 * struct share these; only the table's own entry frees them. */
	int		 priority;	/* engines.ID.priority, 0-100 */
	int		 tls;
	char		 pin[64];	/* sha256//BASE64, or "" */
	char		*ca_pem;	/* its own CA; NULL: the system's */
	SSL_CTX		*ctx;
	char		 refused[300];	/* "": usable; else refused */
	struct proxyd_socks socks;	/* on: reached through it */
};

enum tls_client_certs {
	TLS_CC_OFF = 0,
	TLS_CC_OPTIONAL,
	TLS_CC_REQUIRED,
};

/* How flmd says a handle is served (IMSG_PROXY_LISTEN). */
struct listen_opts {
	int			 auth;		/* 0: benchmark only, loopback */
	int			 tls;		/* a mode other than local-http */
	enum tls_client_certs	 cc;
	int			 bearer;	/* 0: the certificate is the key */
	int			 hsts;		/* s; 0: no header */
	int			 acme_http;	/* HTTP-01 answers only */
};

struct proxyd_listener {
	char			 id[80];
	struct evconnlistener	*lev;
	struct listen_opts	 o;
	uint64_t		 requests;	/* served, for flm proxy status */
	uint64_t		 reported;
	void			*conns;		/* struct http_conns */
};

/* Set by flmd (IMSG_PROXY_LIMITS); defaults in proxyd_http.c. */
struct proxyd_limits {
	size_t		 max_header;	/* bytes of a request head */
	size_t		 max_body;	/* bytes of a request body */
	int		 header_timeout;	/* s to send a whole head */
	int		 idle_timeout;	/* s a keep-alive connection idles */
	int		 upstream_timeout;	/* s an engine may stay silent */
	int		 max_conns;	/* client connections at once */
	int		 write_timeout;	/* s a client may take no bytes */
	int		 drain_timeout;	/* s requests may finish at stop */
	int		 breaker_failures;	/* in a row open it */
	int		 breaker_secs;	/* open that long, then a trial */
};

struct proxyd {
	struct child		 c;
	struct proxyd_listener	*listeners[PROXYD_MAX_LISTENERS];
	int			 nlisteners;
	struct keycache		*cache;
	struct proxyd_engine	 engines[PROXYD_MAX_ENGINES];
	int			 nengines;
	struct proxyd_limits	 limits;
	struct policy		 policy;	/* from keyd; default: loopback */
	uint32_t		 worker;	/* flmd's IMSG_PROXY_WORKER */
	uint32_t		 nworkers;	/* as it was told then */
	struct proxyd_socks	 egress;	/* egress.mode's, for ACME */
};

extern struct proxyd	*px;

/* The endpoints FLM serves; nothing else ever reaches an engine. */
enum http_endpoint {
	EP_NONE = 0,
	EP_HEALTHZ,
	EP_MODELS,
	EP_CHAT,
	EP_COMPLETIONS,
	EP_EMBEDDINGS,
	/* Ollama's own API, served to its clients (proxyd_front_ollama.c) */
	EP_OLLAMA_CHAT,
	EP_OLLAMA_GENERATE,
	EP_OLLAMA_EMBED,
	EP_OLLAMA_EMBEDDINGS,
	EP_OLLAMA_TAGS,
	EP_OLLAMA_SHOW,
	EP_OLLAMA_VERSION,
	/* Anthropic's Messages API (proxyd_front_messages.c) */
	EP_MESSAGES,
	EP_COUNT_TOKENS,	/* by the engine's /tokenize, where it has one */
	/* OpenAI's Responses API, stateless (proxyd_front_responses.c) */
	EP_RESPONSES,
	EP_METRICS,
};

/* The API a client speaks: its errors and answers are shaped so. */
enum dialect {
	DL_OPENAI = 0,
	DL_OLLAMA,
	DL_ANTHROPIC,
	DL_RESPONSES,
};

struct http_conn;
struct http_req;
struct route;
typedef void	(*http_req_cb)(struct http_req *);

/* One client request, from its head to the end of its answer. */
struct http_req {
	struct http_conn	*conn;
	struct http_head	 head;
	char			*headbuf;	/* the bytes head points into */
	size_t			 headlen;	/* wiped when freed */
	enum http_endpoint	 ep;
	enum dialect		 dialect;
	/* Another dialect's request as the OpenAI one engines get (op,
	 * xbody), unless passed through as it is to an engine that
	 * speaks it (native). */
	enum http_endpoint	 op;
	struct evbuffer		*xbody;
	int			 native;
	struct evbuffer		*body;
	uint64_t		 id;
	char			 key_id[FLM_KEY_ID_LEN + 1];
	struct timespec		 start;
	int			 retry_after;	/* s, for the next answer */
	int			 sent_head;	/* the answer has begun */
	int			 status;	/* the answer's */
	int			 end_status;	/* if it cannot end: 502 */
	int			 chunked;	/* answer framed by chunks */
	/* CORS: the allowed Origin the answer names (in headbuf), and
	 * the headers of a preflight's answer (the policy's). */
	const char		*origin;
	size_t			 origin_len;
	const char		*xhdr;
	/* A pool's call that failed before an answer began goes once to
	 * another of its engines, never to this one again. */
	int			 retried;
	char			 exclude[33];
	/* For the metrics: the engine that answered, when the answer's
	 * first bytes went (us after start), a stream being counted. */
	char			 engine[33];
	uint64_t		 ttft_us;
	int			 mx_stream;
	int			 scope;		/* enum flm_audit_scope */
	/* For the audit trail: the model the client named (owned), and
	 * the answer's last bytes, where engines put their usage. */
	char			*model;
	char			*tail;
	size_t			 tlen;
	/* Whoever holds the request while it waits, told if the client
	 * goes (the request is freed right after), and when the client
	 * has room for more of the answer. */
	void			(*abort)(struct http_req *, void *);
	void			(*drained)(struct http_req *, void *);
	void			*owner;
};

/* proxyd_http.c */
void	http_init(void);
void	http_listen(int, const char *, const struct listen_opts *);
void	http_close(const char *);
void	http_cleanup(void);
void	http_limits(struct json_object *);
void	http_report(void);
void	http_drain(void);
void	http_drain_check(void);
const char *http_req_addr(const struct http_req *);
const char *http_ep_path(int);
const char *http_req_cert(const struct http_req *, const char **);
void	http_reply(struct http_req *, int, const char *, const char *, size_t);
void	http_json(struct http_req *, int, struct json_object *);
void	http_error(struct http_req *, int, const char *, const char *,
	    const char *);
void	http_error_param(struct http_req *, int, const char *, const char *,
	    const char *, const char *);
void	http_stream_begin(struct http_req *, int, const char *, int64_t);
void	http_stream_data(struct http_req *, const void *, size_t);
void	http_stream_move(struct http_req *, struct evbuffer *, size_t);
void	http_stream_end(struct http_req *);
void	http_stream_abort(struct http_req *);
size_t	http_out_pending(const struct http_req *);
void	http_hold(struct http_req *, void (*)(struct http_req *, void *),
	    void *);
void	http_release(struct http_req *);
void	http_wipe_header(struct http_req *, const char *);

/* proxyd_policy.c */
void	policy_receive(struct chan *, struct chan_msg *);
int	policy_admit(struct http_req *);
int	policy_cors(struct http_req *);
int	policy_ip_admit(struct http_req *);
void	policy_preflight(struct http_req *);
int	policy_key_admit(struct http_req *);
void	policy_cleanup(void);

/* proxyd_ratelimit.c */
int	ratelimit_take(const char *, const char *, const struct policy_rate *,
	    int *);
void	ratelimit_debit(const char *, const char *, const struct policy_rate *,
	    int64_t);
void	ratelimit_init(void);
int	ratelimit_attach(int, size_t);
void	ratelimit_cleanup(void);

/* proxyd_audit.c */
void	audit_feed(struct http_req *, const void *, size_t);
void	audit_feed_buf(struct http_req *, struct evbuffer *, size_t);
void	audit_request(struct http_req *, int);
int	audit_full(void);
size_t	audit_pending(void);
void	audit_send_now(void);
void	audit_ack(struct chan *, struct chan_msg *);
void	audit_keyd_up(struct chan *);
void	audit_keyd_down(void);
void	audit_init(void);
void	audit_cleanup(void);
int	audit_usage_scan(const char *, size_t, int64_t *, int64_t *);

/* proxyd_route.c */
void	route_dispatch(struct http_req *);
void	route_retry(struct http_req *);
void	route_cleanup(void);

/* proxyd_upstream.c */
enum upstream_mode {
	UP_PASS = 0,		/* OpenAI-compatible: answer passed through */
	UP_OLLAMA_CHAT,		/* /api/chat answers made OpenAI-shaped */
	UP_OLLAMA_GENERATE,
	UP_OLLAMA_EMBED,
};
struct upstream_call {
	const struct proxyd_engine *engine;
	const char		*path;
	const struct iovec	*iov;		/* the body, in slices */
	int			 niov;
	size_t			 len;		/* of all the slices */
	enum upstream_mode	 mode;
	int			 stream;	/* the client asked for SSE */
	int			 usage;		/* stream_options.include_usage */
	int			 hide_usage;	/* asked for by us, not the client */
	int			 base64;	/* embeddings as base64 float32 */
	const char		*model;		/* as the client named it */
	int			 pool;		/* may go to another on failure */
};
void	upstream_start(struct http_req *, const struct upstream_call *);
void	upstream_cleanup(void);

/* proxyd_ollama.c */
struct ollama_stream;
struct json_object *ollama_request(enum http_endpoint, struct json_object *,
	    const char *, char *, size_t);
struct json_object *ollama_answer(enum upstream_mode, struct json_object *,
	    const char *, uint64_t);
struct ollama_stream *ollama_stream_new(enum upstream_mode, const char *,
	    uint64_t, int);
int	ollama_stream_line(struct ollama_stream *, const char *, size_t,
	    struct evbuffer *, struct evbuffer *);
void	ollama_stream_free(struct ollama_stream *);
int	ollama_stream_done(const struct ollama_stream *);
struct json_object *ollama_error(int, const char *, size_t);

/* proxyd_front.c: other dialects' requests and answers */
struct front;
void	front_request(struct http_req *, http_req_cb);
struct front *front_new(struct http_req *, const char *, int);
const char *front_ctype(const struct front *);
int	front_sse(struct front *, const char *, size_t, struct evbuffer *);
int	front_done(const struct front *);
const char *front_why(const struct front *);
const char *front_answer(struct front *, const char *, size_t, size_t *);
void	front_free(struct front *);
struct json_object *front_error_json(enum dialect, int, const char *,
	    const char *, const char *, const char *);
void	front_stream_error(struct http_req *, int, const char *,
	    const char *);
void	front_native_show(struct http_req *, const struct route *);
struct json_object *fo_tag_entry(struct json_object *);
void	fo_version(struct http_req *);

/* proxyd_metrics.c: GET /metrics */
#define MX_KEY_CACHED	0
#define MX_KEY_COLD	1
#define MX_KEY_FAILED	2
void	metrics_attach(void *);
void	metrics_request(const struct http_req *, int, int64_t, int64_t,
	    int64_t);
void	metrics_key(int);
void	metrics_streams(int);
void	metrics_upstream_error(const char *);
void	metrics_serve(struct http_req *);

/* proxyd_scope.c: scoped keys */
struct keyscope;
int	scope_set(const char *, const char *, char *, size_t);
void	scope_drop(const char *);
const struct keyscope *scope_of(const struct http_req *);
int	scope_admit(struct http_req *);
void	scope_rate(const char *, struct policy_rate *);
void	scope_cleanup(void);

/* proxyd_auth.c */
typedef void	(*auth_done_cb)(struct http_req *, const char *);
void	auth_init(void);
void	auth_check(struct http_req *, auth_done_cb);
void	auth_verdict(struct chan *, struct chan_msg *);
void	auth_invalidate(struct chan *, struct chan_msg *);
void	auth_keyd_up(struct chan *);
void	auth_cleanup(void);

/* proxyd_catalogue.c */
struct route {
	const struct proxyd_engine *engine;
	const char		*model;		/* the engine's own name */
	int			 openai;	/* has the /v1 endpoints */
	int			 pool;		/* picked among several */
	struct json_object	*info;		/* what the probe learnt */
	const char		*code;		/* a 502's error code */
	int			 retry_after;	/* a 503's, s */
};
unsigned int	catalogue_stale(void);
unsigned int	catalogue_generation(void);
void	catalogue_update(struct json_object *, unsigned int);
void	catalogue_when_fresh(struct http_req *, http_req_cb);
void	catalogue_models(struct http_req *);
void	catalogue_tags(struct http_req *);
int	catalogue_route(const char *, const char *, const char *,
	    const struct keyscope *, struct route *, char *, size_t);
void	catalogue_cleanup(void);

/* proxyd_curl.c: proxyd's own HTTP requests (probes, ACME) */
struct pcurl {
	CURL			*h;		/* NULL once done */
	struct curl_slist	*hdrs;		/* request headers, freed */
	struct curl_slist	*resolve;	/* CURLOPT_RESOLVE's, freed */
	char			 err[CURL_ERROR_SIZE];	/* its words */
	char			*body;		/* the answer, NUL-ended */
	size_t			 len, max;
	int			 truncated;	/* over max: aborted */
	long			 code;
	CURLcode		 res;
	double			 ms;
	char			 nonce[257];	/* Replay-Nonce */
	char			 location[513];
	char			 retry_after[32];
	void			(*done)(struct pcurl *, void *);
	void			*arg;
};
void	pcurl_init(void);
void	pcurl_cleanup(void);
int	pcurl_new(struct pcurl *, const char *, size_t,
	    void (*)(struct pcurl *, void *), void *);
int	pcurl_start(struct pcurl *);
void	pcurl_cancel(struct pcurl *);

/* proxyd_acme.c: the ACME client, keyd signing */
void	acme_cleanup(void);
void	acme_order(struct chan *, struct chan_msg *);
void	acme_signed(struct chan *, struct chan_msg *);
void	acme_tokens(struct chan *, struct chan_msg *);
void	acme_http_answer(struct http_req *);

/* proxyd_pool.c: pools, balancing, circuit breakers */
void	pool_limits(struct json_object *);
int	pool_pick(const char *const *, const int *, int, const char *,
	    const char *, int *);
void	pool_begin(const char *);
void	pool_end(const char *, int);
void	pool_breaker_json(const char *, struct json_object *);

/* proxyd_creds.c: engines' credentials, from keyd */
const char *creds_get(const char *);
void	creds_receive(struct chan *, struct chan_msg *);
void	creds_cleanup(void);

/* proxyd_socks.c: egress through SOCKS5 */
struct socks_io {
	int		 step;
	size_t		 have, need;
	uint8_t		 in[300];
};
#define SOCKS_FAIL	(-1)
#define SOCKS_MORE	0
#define SOCKS_SEND	1
#define SOCKS_DONE	2
#define SOCKS_MAX_OUT	(3 + 255 + 255)
int	socks_parse(struct json_object *, struct proxyd_socks *);
const char *socks_name(const struct proxyd_socks *, char *, size_t);
size_t	socks_hello(struct socks_io *, const struct proxyd_socks *, uint8_t *);
int	socks_step(struct socks_io *, const struct proxyd_socks *, const char *,
	    const char *, int, uint8_t *, size_t *, char *, size_t);
void	socks_curl(CURL *, const struct proxyd_socks *);
void	socks_check(uint32_t);

/* proxyd_uptls.c: TLS to engines */
void	uptls_init(void);
void	uptls_cleanup(void);
const char *uptls_roots(size_t *);
int	uptls_engine(struct proxyd_engine *, struct json_object *);
void	uptls_engine_free(struct proxyd_engine *);
SSL	*uptls_new(const struct proxyd_engine *, int);
int	uptls_check(SSL *, const struct proxyd_engine *, char *, size_t);
void	uprefused(SSL *, char *, size_t);
void	uptls_curl(CURL *, const struct proxyd_engine *, int,
	    struct curl_slist **);

/* proxyd_probe.c */
void	probe_init(void);
void	probe_run(uint32_t);
void	probe_cleanup(void);

/* proxyd_owner.c */
void	owner_init(void);
void	owner_cleanup(void);
int	owner_check(const struct proxyd_engine *, int64_t *, char *, size_t);

/* proxyd_tlskey.c: the "flmkeyd" provider */
void	tlskey_init(void);
void	tlskey_cleanup(void);
EVP_PKEY *tlskey_new(const char *, X509 *);

/* proxyd_tls.c */
struct tls_wait;
int	tls_sign_remote(const char *, const unsigned char *, unsigned char *,
	    size_t *);
void	tls_signature(struct chan *, struct chan_msg *);
void	tls_state(struct chan *, struct chan_msg *);
void	tls_keyd_down(void);
SSL	*tls_conn_new(const char *, int, enum tls_client_certs);
int	tls_is_acme(SSL *);
int	tls_handshake(SSL *, struct tls_wait **, void (*)(void *), void *);
int	tls_peer(SSL *, char *, char *);
void	tls_conn_free(SSL *, struct tls_wait **);
void	tls_init(void);
void	tls_cleanup(void);

/* proxyd_sandbox.c */
void	proxyd_sandbox(void);

#endif
