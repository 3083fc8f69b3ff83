/*
 * Every message type exchanged between FLM processes, in one place.
 * docs/IPC_PROTOCOL.md describes each; keep the two in step.
 */
#ifndef FLM_MSG_H
#define FLM_MSG_H

#include <stdint.h>

#define FLM_PROTO_VERSION	1

/* Descriptors a child finds its channels on after exec. */
#define FLM_CHAN_PARENT_FD	3	/* to flmd */
#define FLM_CHAN_PEER_FD	4	/* proxyd <-> keyd */
#define FLM_WORKERS_MAX		64	/* proxy.workers: flm-proxyd processes */

enum flm_proc {
	PROC_NONE = 0,
	PROC_FLMD,
	PROC_KEYD,
	PROC_PROXYD,
	PROC_CLI,
	PROC_MAX
};

enum flm_msg_type {
	/* Every channel: u32 protocol, u32 proc, string software version. */
	IMSG_HELLO = 1,

	/* flmd -> child */
	IMSG_RELOAD,		/* empty: re-read configuration */
	IMSG_PEER_CHANNEL,	/* fd + u32 proxyd worker: a fresh channel to
				 * the other child (keyd: to that worker) */

	/* child -> flmd */
	IMSG_PEER_BROKEN,	/* empty (proxyd) or u32 worker (keyd): the
				 * other child broke protocol */
	IMSG_DB_STATE,		/* keyd: JSON {db, version, safe_mode, reason} */
	IMSG_LOG,		/* u32 syslog priority, string line */

	/* flmd -> proxyd */
	IMSG_PROXY_LISTEN = 20,	/* fd + JSON {id, bind, port, mode} */
	IMSG_PROXY_CLOSE,	/* JSON {id} */
	IMSG_ENGINES,		/* JSON [{id, kind, host, addr, port}] */
	IMSG_ENGINES_DETECT,	/* empty: probe now, answer with peerid */
	IMSG_PROXY_LIMITS,	/* JSON {max_body_bytes, ...}: proxy.* settings */
	IMSG_PROXY_DRAIN,	/* empty: stop accepting, finish, exit */
	IMSG_PROXY_SHM = 26,	/* fd + u32 size: the rate-limit region */
	IMSG_PROXY_WORKER = 27,	/* u32 index, u32 count: which worker this is */
	IMSG_EGRESS = 28,	/* JSON {} (direct) or {mode, addr, port, user?,
				 * fail_open?, error?}: egress.mode's SOCKS5
				 * server, for ACME and the egress check */
	IMSG_EGRESS_CHECK = 29,	/* empty: is it up?  Answered EGRESS_STATE
				 * with the same peerid */

	/* proxyd -> flmd */
	IMSG_ENGINES_STATE = 30, /* JSON [engine verdicts]; peerid 0: periodic */
	IMSG_PROXY_STATS,	/* JSON {listener id: requests since last} */
	IMSG_ACME_PROGRESS,	/* JSON {handle, step, ms, detail?} */
	IMSG_EGRESS_STATE,	/* JSON {ok, error?, ms}: the SOCKS5 server
				 * answered a greeting; peerid 0: periodic */

	/* flmd -> keyd, replies carry the same peerid */
	IMSG_KEY_CREATE = 40,	/* JSON {label, expires?, scope?}; reply
				 * RESULT/ERROR */
	IMSG_KEY_RESULT,	/* JSON object or array */
	IMSG_KEY_ERROR,		/* JSON {"error": "...", "code": N} */
	IMSG_KEY_LIST,		/* empty; reply RESULT [keys] */
	IMSG_KEY_REVOKE,	/* JSON {key: ID or LABEL} */
	IMSG_KEY_ROTATE,	/* JSON {key: ID or LABEL, grace?} */
	IMSG_POLICY_GET,	/* empty; reply RESULT {policy, updated_at} */
	IMSG_POLICY_SET,	/* JSON {policy}; reply as POLICY_GET */
	IMSG_AUDIT_VERIFY,	/* empty; reply RESULT {ok, rows, problem?} */
	IMSG_AUDIT_ARCHIVE,	/* JSON {before}; reply RESULT {archived, file} */
	IMSG_AUDIT_TAIL,	/* JSON {count}; reply RESULT {records} */
	IMSG_USAGE,		/* JSON {key?, since?}; reply RESULT {usage} */
	IMSG_TLS_ENSURE,	/* JSON {handle, mode, names, addrs, lifetime?};
				 * reply RESULT {cert} once proxyd has it */
	IMSG_TLS_RELEASE,	/* JSON {handle}: stopped; reply RESULT {} */
	IMSG_CA_INFO,		/* JSON {names, addrs}; reply RESULT {ca} */
	IMSG_CLIENT_ISSUE,	/* JSON {label, days?, names, addrs}; reply
				 * RESULT {serial, label, cert, key, ca, ...} */
	IMSG_CLIENT_LIST,	/* empty; reply RESULT [clients] */
	IMSG_CLIENT_REVOKE,	/* JSON {client}; reply once proxyd refuses it */
	IMSG_TLS_RENEWED,	/* keyd -> flmd, peerid 0: {handle, cert} */
	IMSG_DOCTOR = 59,	/* empty; reply RESULT {checks} (lib/doctor.h) */

	/* proxyd <-> keyd: fixed structs, the hot path */
	IMSG_KEY_VERIFY = 60,	/* struct flm_key_verify */
	IMSG_KEY_VERDICT,	/* struct flm_key_verdict, string scope ("":
				 * none; lib/keyscope.h) */
	IMSG_KEY_INVALIDATE,	/* keyd -> proxyd: struct flm_key_invalidate */
	IMSG_KEY_INVALIDATED,	/* proxyd -> keyd: the same struct, done */
	IMSG_KEY_USED,		/* proxyd -> keyd: n * FLM_KEY_ID_LEN ids */
	IMSG_POLICY,		/* keyd -> proxyd: u64 seq, JSON policy */
	IMSG_POLICY_APPLIED,	/* proxyd -> keyd: u64 seq */
	IMSG_AUDIT_BATCH,	/* proxyd -> keyd: u64 seq, u32 n, n records */
	IMSG_AUDIT_ACK,		/* keyd -> proxyd: struct flm_audit_ack */
	IMSG_TLS_STATE,		/* keyd -> proxyd: u64 seq, JSON {certs,
				 * client_ca, revoked} */
	IMSG_TLS_APPLIED,	/* proxyd -> keyd: u64 seq (of TLS_STATE or
				 * ACME_TOKENS) */
	IMSG_TLS_SIGN,		/* proxyd -> keyd: struct flm_tls_sign */
	IMSG_TLS_SIGNATURE,	/* keyd -> proxyd: struct flm_tls_signature */
	/* ACME (docs/TLS.md): proxyd talks to the CA, keyd signs */
	IMSG_ACME_ORDER = 73,	/* keyd -> proxyd: JSON {handle, directory,
				 * challenge, names, thumbprint, ca?,
				 * resolve?} */
	IMSG_ACME_SIGN,		/* proxyd -> keyd: JSON {handle, op, url,
				 * nonce, token?, name?}; peerid: proxyd's */
	IMSG_ACME_SIGNED,	/* keyd -> proxyd: JSON {jws} or {error} */
	IMSG_ACME_ACCOUNT,	/* proxyd -> keyd: JSON {handle, kid} */
	IMSG_ACME_DONE,		/* proxyd -> keyd: JSON {handle, chain} or
				 * {handle, error} */
	IMSG_ACME_TOKENS,	/* keyd -> proxyd: u64 seq, JSON [{token,
				 * keyauth, handle}]; seq != 0 answered by
				 * TLS_APPLIED */
	IMSG_ACME_DNS = 79,	/* keyd -> flmd: JSON {handle, op, name,
				 * value}; op add answered by DNS_DONE */
	IMSG_ACME_DNS_DONE,	/* flmd -> keyd: JSON {ok} or {error} */
	IMSG_ACME_FAILED,	/* keyd -> flmd, peerid 0: JSON {handle, error,
				 * failures, next_try} */

	/* Sealed secrets (docs/DB_SCHEMA.md "secrets"): flmd -> keyd,
	 * replies KEY_RESULT / KEY_ERROR with the same peerid */
	IMSG_SECRET_SET = 82,	/* JSON {name, secret}: wiped once read */
	IMSG_SECRET_CLEAR,	/* JSON {name} */
	IMSG_SECRETS_ROTATE,	/* empty: all under a new data key */
	IMSG_SECRETS_LIST,	/* empty; reply [{name, key_id, updated_at}] */
	IMSG_ENGINE_IDS,	/* flmd -> keyd, peerid 0: JSON [engine ids]
				 * whose credentials proxyd may hold */
	IMSG_ENGINE_CREDS,	/* keyd -> proxyd: u64 seq, JSON {id: secret}
				 * (the whole set); answered CREDS_APPLIED */
	IMSG_CREDS_APPLIED,	/* proxyd -> keyd: u64 seq */
	IMSG_MASTER_ROTATE = 89, /* flmd -> keyd: empty; reply RESULT
				 * {master_key_id, key_rows, tls_keys,
				 * secrets, backups} */
	IMSG_KEY_SCOPE = 90,	/* flmd -> keyd: JSON {key, scope?}; reply
				 * RESULT once every worker has it */
	/* Backups (keyd_backup.c): flmd -> keyd, replies RESULT/ERROR */
	IMSG_BACKUP_CONFIG = 91, /* fd: a copy of config.db (a memfd) for
				 * the next CREATE or RESTORE; no reply */
	IMSG_BACKUP_CREATE,	/* JSON {reason, passphrase?, max_age?} */
	IMSG_BACKUP_LIST,	/* empty; reply [{file, created, reason, kind,
				 * bytes}] */
	IMSG_BACKUP_RESTORE,	/* fd? + JSON {name?, passphrase?}; reply
				 * RESULT + fd: the staged config.db */
	IMSG_BACKUP_STATE,	/* fd? + JSON {name?, passphrase?, proxies?};
				 * reply {keys, policy, proxies} */
	IMSG_LEGACY_IMPORT = 96, /* flmd -> keyd: JSON {keys: [{label,
				 * legacy, secret | hash}], policy?}: one
				 * transaction; plain keys wiped once read;
				 * reply RESULT {imported, keys, count,
				 * policy} or ERROR */
	IMSG_BACKUP_ABORT = 97,	/* flmd -> keyd: empty; the restore keyd
				 * staged last is not committed: its
				 * restore.* files removed; no reply */

	/* flm -> flmd (control socket), replies carry the same peerid */
	IMSG_CTL_STATUS = 100,	/* empty; reply IMSG_CTL_RESULT */
	IMSG_CTL_RESULT,	/* JSON object */
	IMSG_CTL_ERROR,		/* JSON {"error": "...", "code": N} */
	IMSG_CTL_KEY_CREATE,	/* JSON {label} */
	IMSG_CTL_PROXY_START,	/* JSON {port, bind, mode} */
	IMSG_CTL_PROXY_STOP,	/* JSON {port} or {} for all */
	IMSG_CTL_PROXY_STATUS,	/* empty */
	IMSG_CTL_CONFIG_GET,	/* JSON {key} */
	IMSG_CTL_CONFIG_SET,	/* JSON {key, value} */
	IMSG_CTL_CONFIG_LIST,	/* empty */
	IMSG_CTL_KEY_LIST,	/* empty */
	IMSG_CTL_KEY_REVOKE,	/* JSON {key} */
	IMSG_CTL_KEY_ROTATE,	/* JSON {key, grace?} */
	IMSG_CTL_ENGINES_DETECT, /* empty */
	IMSG_CTL_MODELS_LIST,	/* JSON {engine?} */
	IMSG_CTL_POLICY_GET,	/* empty; keyd's IMSG_POLICY_GET */
	IMSG_CTL_POLICY_SET,	/* JSON {policy} */
	IMSG_CTL_AUDIT_VERIFY,	/* empty */
	IMSG_CTL_AUDIT_ARCHIVE,	/* JSON {before} */
	IMSG_CTL_AUDIT_TAIL,	/* JSON {count} */
	IMSG_CTL_USAGE,		/* JSON {key?, since?} */
	IMSG_CTL_ENGINES_TRUST,	/* JSON {engine} */
	IMSG_CTL_CA_INFO,	/* empty; keyd's IMSG_CA_INFO */
	IMSG_CTL_CLIENT_ISSUE,	/* JSON {label, days?} */
	IMSG_CTL_CLIENT_LIST,	/* empty */
	IMSG_CTL_CLIENT_REVOKE,	/* JSON {client} */
	IMSG_CTL_DOCTOR = 126,	/* empty; reply {ok, checks} */
	IMSG_CTL_FIREWALL_PLAN = 127, /* empty; reply {proxies: [{id, bind,
				 * port}], engines: [{id, addr, port}]} */
	IMSG_CTL_PROGRESS = 128, /* flmd -> flm, before the reply: JSON
				 * {handle, step, ms, detail?} */
	IMSG_CTL_CREDENTIAL_SET = 129, /* JSON {engine, secret} */
	IMSG_CTL_CREDENTIAL_CLEAR, /* JSON {engine} */
	IMSG_CTL_SECRETS_ROTATE, /* empty */
	IMSG_CTL_SECRETS_LIST,	/* empty */
	IMSG_CTL_KEY_SCOPE,	/* JSON {key, scope?} */
	IMSG_CTL_BACKUP_CREATE = 135, /* JSON {reason?, passphrase?} */
	IMSG_CTL_BACKUP_LIST,	/* empty */
	IMSG_CTL_BACKUP_RESTORE, /* fd? + JSON {name?, passphrase?} */
	IMSG_CTL_CHECK,		/* fd? + JSON {name?, passphrase?}: the
				 * state of a backup, or the live one */
	IMSG_CTL_MASTER_ROTATE,	/* empty; keyd's IMSG_MASTER_ROTATE */
	IMSG_CTL_MIGRATE_APPLY = 141, /* JSON {ts, keys, policy?,
				 * engine_url?}: flm migrate legacy --apply;
				 * plain keys wiped once read */
};

/* API keys: flm_<16 hex id>_<43 base64url secret>. */
#define FLM_KEY_PREFIX		"flm_"
#define FLM_KEY_ID_LEN		16
#define FLM_KEY_SECRET_LEN	43	/* 32 bytes, base64url, unpadded */
#define FLM_KEY_LEN		(4 + FLM_KEY_ID_LEN + 1 + FLM_KEY_SECRET_LEN)
#define FLM_TOKEN_MAX		128

#define FLM_VERIFY_VERSION	3	/* bump with any hot-path layout */

struct flm_key_verify {
	uint32_t	 version;
	uint32_t	 token_len;
	uint64_t	 reqid;
	char		 token[FLM_TOKEN_MAX];
};

enum flm_key_result {
	FLM_KEY_OK = 0,
	FLM_KEY_MALFORMED,
	FLM_KEY_UNKNOWN,
	FLM_KEY_BAD_SECRET,
	FLM_KEY_REVOKED,
	FLM_KEY_EXPIRED,
	FLM_KEY_UNAVAILABLE,	/* keyd cannot decide: database trouble */
	FLM_KEY_RESULT_MAX
};

struct flm_key_verdict {
	uint32_t	 version;
	uint32_t	 result;
	uint64_t	 reqid;
	uint64_t	 valid_until;	/* unix time; 0: no expiry */
	char		 key_id[FLM_KEY_ID_LEN + 1];
	char		 pad[7];
};

/* Drop cached verdicts of one key (or all), then answer INVALIDATED. */
struct flm_key_invalidate {
	uint32_t	 version;
	uint32_t	 all;
	uint64_t	 seq;
	char		 key_id[FLM_KEY_ID_LEN + 1];
	char		 pad[7];
};

/*
 * TLS: certificates are named by 16 hex ids (serials of client
 * certificates likewise); a client certificate's label is 1-48 of
 * [A-Za-z0-9_-] (no dot: a dotted CN would be judged as a DNS name
 * against the CA's name constraints).
 */
#define FLM_CERT_ID_LEN		16
#define FLM_CERT_SERIAL_LEN	16
#define FLM_CERT_LABEL_MAX	48
#define FLM_TLS_VERSION		1
#define FLM_TLS_DIGEST_LEN	32	/* SHA-256: the one digest keyd signs */
#define FLM_TLS_SIG_MAX		80	/* DER ECDSA P-256 is at most 72 */
/* IMSG_TLS_STATE's "clients" and "revoked": at most this many serials
 * each (19 bytes of JSON apiece), so the state fits one message. */
#define FLM_TLS_SERIALS_MAX	4096

/* proxyd asks keyd to sign one handshake digest with a server key. */
struct flm_tls_sign {
	uint32_t	 version;
	uint32_t	 dlen;		/* must be FLM_TLS_DIGEST_LEN */
	uint64_t	 reqid;		/* echoed in the answer */
	char		 cert_id[FLM_CERT_ID_LEN + 1];
	char		 pad[7];
	uint8_t		 digest[64];
};

enum flm_tls_result {
	FLM_TLS_OK = 0,
	FLM_TLS_UNKNOWN,	/* no server key of that id is in service */
	FLM_TLS_REFUSED,	/* not a digest keyd signs */
	FLM_TLS_FAILED,		/* keyd could not sign */
	FLM_TLS_RESULT_MAX
};

struct flm_tls_signature {
	uint32_t	 version;
	uint32_t	 result;	/* enum flm_tls_result */
	uint64_t	 reqid;
	uint32_t	 siglen;	/* DER ECDSA-Sig-Value */
	uint8_t		 sig[FLM_TLS_SIG_MAX];
	char		 pad[4];
};

/*
 * One proxied request, for the audit trail.  Strings are NUL-terminated
 * within their fields; a token count of -1 means the engine gave none.
 */
#define FLM_AUDIT_VERSION	4
#define FLM_AUDIT_BATCH_MAX	256	/* records per IMSG_AUDIT_BATCH */
#define FLM_AUDIT_INFLIGHT	16	/* batches sent, not yet acked */
/* Sent before to a keyd that did not acknowledge it: keyd may have it. */
#define FLM_AUDIT_F_RESENT	0x01

enum flm_audit_endpoint {
	FLM_AUDIT_EP_MODELS = 1,
	FLM_AUDIT_EP_CHAT,
	FLM_AUDIT_EP_COMPLETIONS,
	FLM_AUDIT_EP_EMBEDDINGS,
	FLM_AUDIT_EP_MESSAGES,
	FLM_AUDIT_EP_OLLAMA_CHAT,
	FLM_AUDIT_EP_OLLAMA_GENERATE,
	FLM_AUDIT_EP_OLLAMA_EMBED,
	FLM_AUDIT_EP_OLLAMA_EMBEDDINGS,
	FLM_AUDIT_EP_OLLAMA_TAGS,
	FLM_AUDIT_EP_OLLAMA_SHOW,
	FLM_AUDIT_EP_OLLAMA_VERSION,
	FLM_AUDIT_EP_RESPONSES,
	FLM_AUDIT_EP_COUNT_TOKENS,
	FLM_AUDIT_EP_MAX
};

/* A scoped key's request: how its scope judged it (lib/keyscope.h). */
enum flm_audit_scope {
	FLM_SCOPE_NONE = 0,		/* the key has no scope, or no key */
	FLM_SCOPE_ALLOWED,
	FLM_SCOPE_DENIED_ENDPOINT,
	FLM_SCOPE_DENIED_ADDRESS,
	FLM_SCOPE_DENIED_MODEL,
	FLM_SCOPE_MAX
};

struct flm_audit_record {
	uint32_t	 version;
	uint32_t	 endpoint;	/* enum flm_audit_endpoint */
	uint64_t	 reqid;		/* X-Request-Id: flm-<16 hex> */
	int64_t		 time_ms;	/* unix time the request began */
	uint32_t	 status;	/* HTTP status; 499: client left */
	uint32_t	 latency_ms;
	int64_t		 prompt_tokens;
	int64_t		 completion_tokens;
	char		 key_id[FLM_KEY_ID_LEN + 1];
	char		 addr[47];	/* INET6_ADDRSTRLEN + 1 */
	char		 model[188];
	uint32_t	 flags;		/* FLM_AUDIT_F_* */
	/* The client certificate the TLS connection presented, if any. */
	char		 cert_serial[FLM_CERT_SERIAL_LEN + 1];
	char		 cert_label[FLM_CERT_LABEL_MAX + 1];
	uint8_t		 scope;		/* enum flm_audit_scope */
	char		 pad[5];
};

struct flm_audit_ack {
	uint32_t	 version;
	uint32_t	 ok;		/* 0: not written, send again later */
	uint64_t	 seq;
};

const char	*flm_proc_name(uint32_t);

#endif
