/*
 * fake-proxyd: a subverted flm-proxyd in tests.  Started by flmd in
 * proxyd's place (through a wrapper named by FLM_PROXYD_PATH), it
 * speaks raw frames to flm-keyd on descriptor 4, as an attacker who
 * runs code in proxyd could, and writes what keyd answered to OUT.
 *   fake-proxyd flood KEYFILE N OUT   wait for KEYFILE (a real key), then
 *                                     verify it, N wrong secrets of its
 *                                     id, and it again; OUT gets
 *                                     "first=R last=R bad=N unavailable=N
 *                                     ms=T" (R: the verdicts' results)
 *   fake-proxyd future OUT            one AUDIT_BATCH of two records, the
 *                                     first dated in the year 2100; OUT
 *                                     gets "ack=OK"
 *   fake-proxyd used                  KEY_USED with an id that is no hex
 *   fake-proxyd usedshort             KEY_USED of 10 bytes: no whole id
 *   fake-proxyd raw TYPE LEN          a message of TYPE with LEN zero bytes
 *   fake-proxyd sign REQS OUT         answer each TLS_STATE with
 *                                     TLS_APPLIED; once REQS exists, one
 *                                     TLS_SIGN per line "ID DLEN" of it
 *                                     (ID "served": the first certificate
 *                                     of the newest TLS_STATE); OUT gets
 *                                     "ID result=R siglen=N" a line
 *   fake-proxyd certaudit LABEL OUT   one AUDIT_BATCH of two records, the
 *                                     first with client certificate
 *                                     1a2b3c4d5e6f7a8b and LABEL; OUT gets
 *                                     "ack=OK"
 *   fake-proxyd group OUT             three AUDIT_BATCHes of two records
 *                                     in one write; OUT gets
 *                                     "acks=1:OK,2:OK,3:OK" (the acks'
 *                                     seq and ok, in the order they came)
 *   fake-proxyd acme PEM OUT          wait for an ACME_ORDER, then ask
 *                                     for signatures keyd must refuse
 *                                     (a URL off the directory, an op it
 *                                     does not sign, a get before the
 *                                     account) and one it signs (the
 *                                     account), then bring back PEM as
 *                                     the chain; OUT gets "NAME jws" or
 *                                     "NAME error=TEXT" a line
 * It then reads until keyd closes the channel.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "flm_msg.h"

#define KEYD_FD		FLM_CHAN_PEER_FD

static void
put_fd(int fd, const void *p, size_t len)
{
	const uint8_t	*b = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, b, len)) == -1) {
			if (errno == EINTR)
				continue;
			exit(2);
		}
		b += n;
		len -= (size_t)n;
	}
}

static void
frame_fd(int fd, uint16_t type, const void *p, size_t len)
{
	struct chan_hdr	 h;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.len = (uint32_t)(CHAN_HDR_SIZE + len);
	h.pid = (uint32_t)getpid();
	put_fd(fd, &h, sizeof(h));
	put_fd(fd, p, len);
}

static void
frame(uint16_t type, const void *p, size_t len)
{
	frame_fd(KEYD_FD, type, p, len);
}

static void
hello(void)
{
	uint8_t		 b[13];
	uint32_t	 v;

	v = FLM_PROTO_VERSION;
	memcpy(b, &v, 4);
	v = PROC_PROXYD;
	memcpy(b + 4, &v, 4);
	v = 1;
	memcpy(b + 8, &v, 4);
	b[12] = 'x';
	/* To flmd too, which counts a proxyd as running once it speaks. */
	frame_fd(FLM_CHAN_PARENT_FD, IMSG_HELLO, b, sizeof(b));
	frame(IMSG_HELLO, b, sizeof(b));
}

static int
get(void *p, size_t len)
{
	uint8_t	*b = p;
	ssize_t	 n;

	while (len > 0) {
		if ((n = read(KEYD_FD, b, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next frame of type want (others skipped) into p; -1 at EOF. */
static int
next(uint16_t want, void *p, size_t len)
{
	struct chan_hdr	 h;
	uint8_t		 buf[CHAN_MAX_MSG];

	for (;;) {
		if (get(&h, sizeof(h)) == -1 || h.len < CHAN_HDR_SIZE ||
		    h.len > CHAN_MAX_MSG ||
		    get(buf, h.len - CHAN_HDR_SIZE) == -1)
			return -1;
		if (h.type == want && h.len - CHAN_HDR_SIZE == len) {
			memcpy(p, buf, len);
			return 0;
		}
	}
}

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
verify(const char *token, uint64_t reqid)
{
	struct flm_key_verify	 v;

	memset(&v, 0, sizeof(v));
	v.version = FLM_VERIFY_VERSION;
	v.token_len = (uint32_t)strlen(token);
	v.reqid = reqid;
	memcpy(v.token, token, v.token_len);
	frame(IMSG_KEY_VERIFY, &v, sizeof(v));
}

static int
flood(const char *keyfile, int n, FILE *out)
{
	struct flm_key_verdict	 r;
	uint8_t			 vbuf[sizeof(r) + 4];
	char			 key[FLM_TOKEN_MAX], wrong[FLM_TOKEN_MAX];
	FILE			*f = NULL;
	long			 t0;
	int			 i, tries, bad = 0, unavail = 0;
	uint32_t		 first = 99, last = 99;

	for (tries = 0; tries < 500 && f == NULL; tries++)
		if ((f = fopen(keyfile, "r")) == NULL)
			usleep(20000);
	if (f == NULL || fgets(key, sizeof(key), f) == NULL)
		return 1;
	fclose(f);
	key[strcspn(key, "\n")] = '\0';
	if (strlen(key) != FLM_KEY_LEN)
		return 1;
	snprintf(wrong, sizeof(wrong), "%s", key);
	t0 = now_ms();
	verify(key, 0);
	for (i = 1; i <= n; i++) {
		/* Each a different wrong secret: no cache can help. */
		snprintf(wrong + FLM_KEY_LEN - 4, 5, "%04u", (unsigned int)i % 10000u);
		verify(wrong, (uint64_t)i);
	}
	verify(key, (uint64_t)n + 1);
	for (i = 0; i < n + 2; i++) {
		/* The verdict, then its scope: "" for this key. */
		if (next(IMSG_KEY_VERDICT, vbuf, sizeof(vbuf)) == -1 ||
		    memcmp(vbuf + sizeof(r), "\0\0\0\0", 4) != 0)
			return 1;
		memcpy(&r, vbuf, sizeof(r));
		if (r.reqid == 0)
			first = r.result;
		else if (r.reqid == (uint64_t)n + 1)
			last = r.result;
		else if (r.result == FLM_KEY_BAD_SECRET)
			bad++;
		else if (r.result == FLM_KEY_UNAVAILABLE)
			unavail++;
	}
	fprintf(out, "first=%u last=%u bad=%d unavailable=%d ms=%ld\n",
	    first, last, bad, unavail, now_ms() - t0);
	return 0;
}

static void
record(struct flm_audit_record *a, uint64_t reqid, int64_t ms)
{
	memset(a, 0, sizeof(*a));
	a->version = FLM_AUDIT_VERSION;
	a->endpoint = FLM_AUDIT_EP_MODELS;
	a->reqid = reqid;
	a->time_ms = ms;
	a->status = 200;
	a->prompt_tokens = -1;
	a->completion_tokens = -1;
	snprintf(a->addr, sizeof(a->addr), "127.0.0.1");
}

static int
future(FILE *out)
{
	struct flm_audit_record	 r[2];
	struct flm_audit_ack	 ack;
	uint8_t			 b[8 + 4 + sizeof(r)];
	uint64_t		 seq = 1;
	uint32_t		 n = 2;

	record(&r[0], 0xf00d, 4102444800000LL);	/* 2100-01-01 */
	record(&r[1], 0xf00e, (int64_t)time(NULL) * 1000);
	memcpy(b, &seq, 8);
	memcpy(b + 8, &n, 4);
	memcpy(b + 12, r, sizeof(r));
	frame(IMSG_AUDIT_BATCH, b, sizeof(b));
	if (next(IMSG_AUDIT_ACK, &ack, sizeof(ack)) == -1)
		return 1;
	fprintf(out, "ack=%u\n", ack.ok);
	return 0;
}

/* Records naming a client certificate (audit version 3). */
static int
certaudit(const char *label, FILE *out)
{
	struct flm_audit_record	 r[2];
	struct flm_audit_ack	 ack;
	uint8_t			 b[8 + 4 + sizeof(r)];
	uint64_t		 seq = 1;
	uint32_t		 n = 2;

	record(&r[0], 0xce01, (int64_t)time(NULL) * 1000);
	record(&r[1], 0xce02, (int64_t)time(NULL) * 1000);
	snprintf(r[0].cert_serial, sizeof(r[0].cert_serial),
	    "1A2B3C4D5E6F7A8B");
	snprintf(r[0].cert_label, sizeof(r[0].cert_label), "%s", label);
	memcpy(b, &seq, 8);
	memcpy(b + 8, &n, 4);
	memcpy(b + 12, r, sizeof(r));
	frame(IMSG_AUDIT_BATCH, b, sizeof(b));
	if (next(IMSG_AUDIT_ACK, &ack, sizeof(ack)) == -1)
		return 1;
	fprintf(out, "ack=%u\n", ack.ok);
	return 0;
}

/*
 * Group commit: three batches in one write, so keyd reads them at once;
 * each must be acknowledged, in order.  OUT gets "acks=SEQ:OK,...".
 */
#define GROUP_BATCHES	3
#define GROUP_RECS	2
static int
group(FILE *out)
{
	static uint8_t		 b[GROUP_BATCHES * (CHAN_HDR_SIZE + 12 +
				    GROUP_RECS * sizeof(struct flm_audit_record))];
	struct flm_audit_record	 r;
	struct flm_audit_ack	 ack;
	struct chan_hdr		 h;
	size_t			 off = 0;
	uint64_t		 seq;
	uint32_t		 n = GROUP_RECS, i;

	for (seq = 1; seq <= GROUP_BATCHES; seq++) {
		memset(&h, 0, sizeof(h));
		h.type = IMSG_AUDIT_BATCH;
		h.len = (uint32_t)(CHAN_HDR_SIZE + 12 + n * sizeof(r));
		h.pid = (uint32_t)getpid();
		memcpy(b + off, &h, sizeof(h));
		off += CHAN_HDR_SIZE;
		memcpy(b + off, &seq, 8);
		memcpy(b + off + 8, &n, 4);
		off += 12;
		for (i = 0; i < n; i++) {
			record(&r, 0x9000 + seq * 16 + i,
			    (int64_t)time(NULL) * 1000);
			memcpy(b + off, &r, sizeof(r));
			off += sizeof(r);
		}
	}
	put_fd(KEYD_FD, b, off);
	fprintf(out, "acks=");
	for (seq = 1; seq <= GROUP_BATCHES; seq++) {
		if (next(IMSG_AUDIT_ACK, &ack, sizeof(ack)) == -1)
			return 1;
		fprintf(out, "%s%llu:%u", seq > 1 ? "," : "",
		    (unsigned long long)ack.seq, ack.ok);
	}
	fprintf(out, "\n");
	return 0;
}

static char	served[FLM_CERT_ID_LEN + 1];

/* One frame; a TLS_STATE is answered and its first id noted. */
static int
tls_frame(uint16_t *type, uint8_t *buf, size_t *len)
{
	struct chan_hdr	 h;
	const char	*id;
	uint64_t	 seq;

	if (get(&h, sizeof(h)) == -1 || h.len < CHAN_HDR_SIZE ||
	    h.len > CHAN_MAX_MSG || get(buf, h.len - CHAN_HDR_SIZE) == -1)
		return -1;
	*type = h.type;
	*len = h.len - CHAN_HDR_SIZE;
	if (h.type != IMSG_TLS_STATE || *len < 8)
		return 0;
	buf[*len] = '\0';
	memcpy(&seq, buf, 8);
	if ((id = strstr((const char *)buf + 8, "\"id\":\"")) != NULL)
		snprintf(served, sizeof(served), "%.16s", id + 6);
	if (seq != 0)
		frame(IMSG_TLS_APPLIED, &seq, sizeof(seq));
	return 0;
}

static int
tls_sign(const char *reqs, FILE *out)
{
	static uint8_t			 buf[CHAN_MAX_MSG + 1];
	struct flm_tls_sign		 s;
	struct flm_tls_signature	 sig;
	struct pollfd			 pfd = { KEYD_FD, POLLIN, 0 };
	struct stat			 st;
	char				 line[128], id[64];
	FILE				*f;
	unsigned int			 dlen;
	uint16_t			 type;
	size_t				 len;
	uint64_t			 reqid = 0;

	while (stat(reqs, &st) == -1)
		if (poll(&pfd, 1, 20) == 1 && tls_frame(&type, buf, &len) == -1)
			return 1;
	if ((f = fopen(reqs, "r")) == NULL)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%63s %u", id, &dlen) != 2)
			continue;
		memset(&s, 0, sizeof(s));
		s.version = FLM_TLS_VERSION;
		s.dlen = dlen;
		s.reqid = ++reqid;
		snprintf(s.cert_id, sizeof(s.cert_id), "%.16s",
		    strcmp(id, "served") == 0 ? served : id);
		memset(s.digest, 0xab, sizeof(s.digest));
		frame(IMSG_TLS_SIGN, &s, sizeof(s));
		do {
			if (tls_frame(&type, buf, &len) == -1)
				return 1;
		} while (type != IMSG_TLS_SIGNATURE || len != sizeof(sig));
		memcpy(&sig, buf, sizeof(sig));
		fprintf(out, "%s result=%u siglen=%u reqid=%llu\n", s.cert_id,
		    sig.result, sig.siglen, (unsigned long long)sig.reqid);
		fflush(out);
	}
	fclose(f);
	/* Stay a proxyd that applies each state, until keyd hangs up. */
	while (tls_frame(&type, buf, &len) == 0)
		;
	return 0;
}

/* The next frame of type want, any length, NUL-ended in buf. */
static int
next_any(uint16_t want, uint8_t *buf, size_t *len)
{
	uint16_t	 type;

	do {
		if (tls_frame(&type, buf, len) == -1)
			return -1;
	} while (type != want);
	buf[*len] = '\0';
	return 0;
}

/* "KEY":"VALUE" of a flat JSON text, into out (no escapes expected). */
static void
json_member(const char *j, const char *key, char *out, size_t sz)
{
	char		 pat[64];
	const char	*p, *e;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if ((p = strstr(j, pat)) == NULL)
		return;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL || (size_t)(e - p) >= sz)
		return;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

static int
acme(const char *pemfile, FILE *out)
{
	static uint8_t	 buf[CHAN_MAX_MSG + 1];
	static const struct {
		const char	*name, *op, *path;
	} asks[] = {
		{ "offsite", "get", "https://ca.example/x" },
		{ "revoke", "revoke-cert", "revoke" },
		{ "nokid", "get", "order/1" },
		{ "account", "new-account", "acct" },
	};
	char		 handle[80], dir[600], origin[600], msg[2048], err[512];
	char		 pem[16384];
	const char	*p;
	FILE		*f;
	size_t		 i, len, n;

	if (next_any(IMSG_ACME_ORDER, buf, &len) == -1)
		return 1;
	json_member((char *)buf, "handle", handle, sizeof(handle));
	json_member((char *)buf, "directory", dir, sizeof(dir));
	if ((p = strchr(dir + 8, '/')) == NULL)
		return 1;
	snprintf(origin, sizeof(origin), "%.*s", (int)(p - dir + 1), dir);
	for (i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		n = (size_t)snprintf(msg, sizeof(msg), "{\"handle\":\"%s\","
		    "\"op\":\"%s\",\"url\":\"%s%s\",\"nonce\":\"bm9uY2U\"}",
		    handle, asks[i].op, strncmp(asks[i].path, "https:", 6) ?
		    origin : "", asks[i].path);
		frame(IMSG_ACME_SIGN, msg, n);
		if (next_any(IMSG_ACME_SIGNED, buf, &len) == -1)
			return 1;
		json_member((char *)buf, "error", err, sizeof(err));
		if (strstr((char *)buf, "\"jws\"") != NULL)
			fprintf(out, "%s jws\n", asks[i].name);
		else
			fprintf(out, "%s error=%s\n", asks[i].name, err);
		fflush(out);
	}
	if ((f = fopen(pemfile, "r")) == NULL)
		return 1;
	n = fread(pem, 1, sizeof(pem) - 1, f);
	fclose(f);
	pem[n] = '\0';
	/* A JSON string: the PEM's newlines escaped. */
	n = (size_t)snprintf(msg, sizeof(msg), "{\"handle\":\"%s\",\"chain\":\"",
	    handle);
	for (p = pem; *p != '\0' && n + 4 < sizeof(msg); p++) {
		if (*p == '\n') {
			msg[n++] = '\\';
			msg[n++] = 'n';
		} else
			msg[n++] = *p;
	}
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\"}");
	frame(IMSG_ACME_DONE, msg, n);
	while (tls_frame(&(uint16_t){0}, buf, &len) == 0)
		;
	return 0;
}

int
main(int argc, char *argv[])
{
	FILE	*out = NULL;
	char	 c;
	int	 rv = 1;

	if (argc >= 2 && strcmp(argv[1], "used") == 0) {
		hello();
		frame(IMSG_KEY_USED, "zzzzzzzzzzzzzzzz", FLM_KEY_ID_LEN);
		rv = 0;
	} else if (argc == 4 && strcmp(argv[1], "raw") == 0) {
		char	 zero[256] = { 0 };
		int	 len = atoi(argv[3]);

		if (len < 0 || (size_t)len > sizeof(zero))
			return 2;
		hello();
		frame((uint16_t)atoi(argv[2]), zero, (size_t)len);
		rv = 0;
	} else if (argc >= 2 && strcmp(argv[1], "usedshort") == 0) {
		hello();
		frame(IMSG_KEY_USED, "0123456789", 10);
		rv = 0;
	} else if (argc == 5 && strcmp(argv[1], "flood") == 0) {
		if ((out = fopen(argv[4], "w")) == NULL)
			return 2;
		hello();
		rv = flood(argv[2], atoi(argv[3]), out);
	} else if (argc == 3 && strcmp(argv[1], "future") == 0) {
		if ((out = fopen(argv[2], "w")) == NULL)
			return 2;
		hello();
		rv = future(out);
	} else if (argc == 4 && strcmp(argv[1], "certaudit") == 0) {
		if ((out = fopen(argv[3], "w")) == NULL)
			return 2;
		hello();
		rv = certaudit(argv[2], out);
	} else if (argc == 3 && strcmp(argv[1], "group") == 0) {
		if ((out = fopen(argv[2], "w")) == NULL)
			return 2;
		hello();
		rv = group(out);
	} else if (argc == 4 && strcmp(argv[1], "acme") == 0) {
		if ((out = fopen(argv[3], "w")) == NULL)
			return 2;
		hello();
		rv = acme(argv[2], out);
	} else if (argc == 4 && strcmp(argv[1], "sign") == 0) {
		if ((out = fopen(argv[3], "w")) == NULL)
			return 2;
		hello();
		rv = tls_sign(argv[2], out);
	} else {
		fprintf(stderr, "usage: fake-proxyd flood KEYFILE N OUT | "
		    "future OUT | used | usedshort | raw TYPE LEN | "
		    "sign REQS OUT | certaudit LABEL OUT | group OUT | "
		    "acme PEM OUT\n");
		return 2;
	}
	if (out != NULL)
		fclose(out);
	/* Stay until keyd hangs up, as a live proxyd would. */
	while (read(KEYD_FD, &c, 1) > 0)
		;
	return rv;
}
