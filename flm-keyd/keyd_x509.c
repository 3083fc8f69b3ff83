/*
 * Keys and certificates, with OpenSSL 3: P-256 keys, the local CA (its
 * critical name constraints limit it to the host's names and private
 * address ranges), server and client certificates, sealing of private
 * keys under the TLS subkey of the master key, and handshake
 * signatures.  No database and no channel here: keyd_tls.c keeps them.
 */
#include "config.h"

#include <arpa/inet.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "keyd.h"
#include "log.h"

#define SEAL_AD_PREFIX	"flm tls key "

/* The private ranges packaged-ca certifies (the CA's constraints). */
static const struct {
	int		 af;
	const char	*net;
	const char	*mask;
	int		 bits;
} private_nets[] = {
	{ AF_INET, "10.0.0.0", "255.0.0.0", 8 },
	{ AF_INET, "172.16.0.0", "255.240.0.0", 12 },
	{ AF_INET, "192.168.0.0", "255.255.0.0", 16 },
	{ AF_INET, "127.0.0.0", "255.0.0.0", 8 },
	{ AF_INET, "169.254.0.0", "255.255.0.0", 16 },
	{ AF_INET, "100.64.0.0", "255.192.0.0", 10 },
	{ AF_INET6, "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128 },
	{ AF_INET6, "fc00::", "fe00::", 7 },
	{ AF_INET6, "fe80::", "ffc0::", 10 },
};

static int
addr_in(const uint8_t *a, const uint8_t *net, int bits)
{
	int	 i;

	for (i = 0; i < bits; i++)
		if (((a[i / 8] ^ net[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

/* Is the numeric address one of private_nets? */
int
keyd_x509_private_addr(const char *addr)
{
	uint8_t	 a[16], n[16];
	size_t	 i;
	int	 af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;

	if (inet_pton(af, addr, a) != 1)
		return 0;
	for (i = 0; i < sizeof(private_nets) / sizeof(private_nets[0]); i++)
		if (private_nets[i].af == af &&
		    inet_pton(af, private_nets[i].net, n) == 1 &&
		    addr_in(a, n, private_nets[i].bits))
			return 1;
	return 0;
}

/* 16 hex, lower case, the first digit 1-7: the top bit clear and no
 * leading zero, so BN_bn2hex of the serial gives the same 16 digits. */
void
keyd_x509_serial(char out[FLM_CERT_SERIAL_LEN + 1])
{
	uint8_t	 b[FLM_CERT_SERIAL_LEN / 2];

	randombytes_buf(b, sizeof(b));
	b[0] = (uint8_t)(0x10 + b[0] % 0x70);
	sodium_bin2hex(out, FLM_CERT_SERIAL_LEN + 1, b, sizeof(b));
}

EVP_PKEY *
keyd_x509_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* The associated data binding a sealed key to its row. */
static size_t
seal_ad(const char *rowid, char *ad, size_t sz)
{
	return (size_t)snprintf(ad, sz, SEAL_AD_PREFIX "%s", rowid);
}

/*
 * The private key as DER, XChaCha20-Poly1305 under key k, the row id
 * as associated data.  The clear DER lives in the secure heap only.
 * *ct is malloc'd: the caller frees it.
 */
int
keyd_x509_seal(const unsigned char *k, const char *rowid, EVP_PKEY *pkey,
    uint8_t nonce[KEYD_SEAL_NONCE], uint8_t **ct, size_t *ctlen)
{
	unsigned char		*der, *p;
	char			 ad[64];
	unsigned long long	 clen;
	int			 n;

	*ct = NULL;
	/* OpenSSL's secure heap, mapped and locked before the sandbox:
	 * sodium_malloc would mlock(2) each time. */
	if ((n = i2d_PrivateKey(pkey, NULL)) <= 0 ||
	    (der = OPENSSL_secure_malloc((size_t)n)) == NULL)
		return -1;
	p = der;
	if (i2d_PrivateKey(pkey, &p) != n ||
	    (*ct = malloc((size_t)n + KEYD_SEAL_ABYTES)) == NULL) {
		OPENSSL_secure_clear_free(der, (size_t)n);
		return -1;
	}
	randombytes_buf(nonce, KEYD_SEAL_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(*ct, &clen, der,
	    (unsigned long long)n, (const unsigned char *)ad,
	    seal_ad(rowid, ad, sizeof(ad)), NULL, nonce, k);
	OPENSSL_secure_clear_free(der, (size_t)n);
	*ctlen = (size_t)clen;
	return 0;
}

/* NULL if the ciphertext, its nonce or its row id is not the one
 * sealed.  OpenSSL keeps the scalar in its secure heap. */
EVP_PKEY *
keyd_x509_unseal(const unsigned char *k, const char *rowid,
    const uint8_t *nonce, size_t noncelen, const uint8_t *ct, size_t ctlen)
{
	EVP_PKEY		*pkey = NULL;
	unsigned char		*der;
	const unsigned char	*p;
	char			 ad[64];
	unsigned long long	 dlen;

	if (noncelen != KEYD_SEAL_NONCE || ctlen <= KEYD_SEAL_ABYTES ||
	    ctlen > 4096 || (der = OPENSSL_secure_malloc(ctlen)) == NULL)
		return NULL;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(der, &dlen, NULL, ct,
	    ctlen, (const unsigned char *)ad, seal_ad(rowid, ad, sizeof(ad)),
	    nonce, k) == 0) {
		p = der;
		pkey = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)dlen);
	}
	OPENSSL_secure_clear_free(der, ctlen);
	return pkey;
}

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	int		 rv;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	rv = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rv;
}

/* A certificate's body: version 3, serial, CN, validity, public key. */
static X509 *
cert_new(EVP_PKEY *key, const char *serial, const char *cn, time_t now,
    long lifetime)
{
	X509		*x;
	X509_NAME	*name;
	BIGNUM		*bn = NULL;
	int		 ok;

	if ((x = X509_new()) == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	ok = X509_set_version(x, X509_VERSION_3) == 1 &&
	    BN_hex2bn(&bn, serial) == FLM_CERT_SERIAL_LEN &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) == 1 &&
	    ASN1_TIME_set(X509_getm_notBefore(x), now) != NULL &&
	    ASN1_TIME_set(X509_getm_notAfter(x), now + lifetime) != NULL &&
	    X509_set_pubkey(x, key) == 1;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Issuer name, the extensions common to all, then the signature. */
static int
cert_finish(X509 *x, X509 *issuer, EVP_PKEY *signer)
{
	if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, issuer, NID_authority_key_identifier,
	    "keyid:always") == -1 ||
	    X509_sign(x, signer, EVP_sha256()) <= 0)
		return -1;
	return 0;
}

static void
buf_add(char *buf, size_t sz, const char *pre, const char *s)
{
	size_t	 n = strlen(buf);

	snprintf(buf + n, sz - n, "%s%s%s", n ? "," : "", pre, s);
}

/*
 * The local CA: ten years, CA:true pathlen:0, and critical name
 * constraints: the host's names and the private ranges only, so its
 * key cannot vouch for any public site.
 */
X509 *
keyd_x509_ca(EVP_PKEY *key, const char *serial, const char *const *names,
    size_t nnames, time_t now)
{
	X509	*x;
	char	 cn[300], nc[8192];
	char	 range[128];
	size_t	 i;

	snprintf(cn, sizeof(cn), "FLM local CA (%s)",
	    nnames > 0 ? names[0] : "localhost");
	snprintf(nc, sizeof(nc), "critical");
	for (i = 0; i < nnames; i++)
		buf_add(nc, sizeof(nc), "permitted;DNS:", names[i]);
	for (i = 0; i < sizeof(private_nets) / sizeof(private_nets[0]); i++) {
		snprintf(range, sizeof(range), "%s/%s", private_nets[i].net,
		    private_nets[i].mask);
		buf_add(nc, sizeof(nc), "permitted;IP:", range);
	}
	if ((x = cert_new(key, serial, cn, now, KEYD_CA_LIFETIME)) == NULL)
		return NULL;
	if (add_ext(x, x, NID_basic_constraints,
	    "critical,CA:true,pathlen:0") == -1 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ==
	    -1 || add_ext(x, x, NID_name_constraints, nc) == -1 ||
	    cert_finish(x, x, key) == -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A server certificate: self-signed (ca NULL) or by the local CA. */
X509 *
keyd_x509_server(EVP_PKEY *key, const char *serial, const char *const *names,
    size_t nnames, const char *const *addrs, size_t naddrs, time_t now,
    long lifetime, X509 *ca, EVP_PKEY *cakey)
{
	X509	*x;
	char	 san[8192];
	size_t	 i;

	san[0] = '\0';
	for (i = 0; i < nnames; i++)
		buf_add(san, sizeof(san), "DNS:", names[i]);
	for (i = 0; i < naddrs; i++)
		buf_add(san, sizeof(san), "IP:", addrs[i]);
	if (nnames == 0 || (x = cert_new(key, serial, names[0], now,
	    lifetime)) == NULL)
		return NULL;
	if (add_ext(x, x, NID_basic_constraints, "critical,CA:false") == -1 ||
	    add_ext(x, x, NID_key_usage, "critical,digitalSignature") == -1 ||
	    add_ext(x, x, NID_ext_key_usage, "serverAuth") == -1 ||
	    add_ext(x, x, NID_subject_alt_name, san) == -1 ||
	    cert_finish(x, ca != NULL ? ca : x, ca != NULL ? cakey : key) ==
	    -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A client certificate from the local CA: CN = label, clientAuth. */
X509 *
keyd_x509_client(EVP_PKEY *key, const char *serial, const char *label,
    time_t now, long lifetime, X509 *ca, EVP_PKEY *cakey)
{
	X509	*x;

	if ((x = cert_new(key, serial, label, now, lifetime)) == NULL)
		return NULL;
	if (add_ext(x, ca, NID_basic_constraints, "critical,CA:false") == -1 ||
	    add_ext(x, ca, NID_key_usage, "critical,digitalSignature") == -1 ||
	    add_ext(x, ca, NID_ext_key_usage, "clientAuth") == -1 ||
	    cert_finish(x, ca, cakey) == -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM text of a certificate, malloc'd. */
char *
keyd_x509_pem(X509 *x)
{
	BIO	*b;
	char	*p, *out = NULL;
	long	 n;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &p)) > 0)
		out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/* The PKCS#8 PEM of a client's private key, into a JSON string the
 * reply wipes; the buffer on the way is OpenSSL's secure heap. */
struct json_object *
keyd_x509_key_pem(EVP_PKEY *key)
{
	struct json_object	*o = NULL;
	BIO			*b;
	char			*p;
	long			 n;

	if ((b = BIO_new(BIO_s_secmem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		o = json_object_new_string_len(p, (int)n);
	BIO_free(b);	/* a secmem BIO wipes its buffer */
	return o;
}

X509 *
keyd_x509_from_pem(const char *pem)
{
	BIO	*b;
	X509	*x;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

/* "AB:CD:..." of the DER certificate's SHA-256. */
void
keyd_x509_fingerprint(X509 *x, char out[KEYD_FP_LEN])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 n = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (i = 0; i < n && i * 3 + 3 <= KEYD_FP_LEN; i++)
		snprintf(out + i * 3, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

static time_t
asn1_epoch(const ASN1_TIME *t)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
keyd_x509_times(X509 *x, time_t *nb, time_t *na)
{
	*nb = asn1_epoch(X509_get0_notBefore(x));
	*na = asn1_epoch(X509_get0_notAfter(x));
}

void
keyd_x509_iso(time_t t, char *buf, size_t sz)
{
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "CN=..." of a name: FLM's names have a CN only. */
static void
name_text(const X509_NAME *name, char *buf, size_t sz)
{
	X509_NAME_ENTRY	*e;
	unsigned char	*u = NULL;
	int		 i;

	snprintf(buf, sz, "CN=");
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL ||
	    ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e)) < 0)
		return;
	snprintf(buf, sz, "CN=%s", u);
	OPENSSL_free(u);
}

/* "DNS:host" and "IP:addr" entries of the subjectAltName. */
static struct json_object *
sans_json(X509 *x)
{
	struct json_object	*a = json_object_new_array();
	GENERAL_NAMES		*gens;
	GENERAL_NAME		*g;
	char			 buf[300], ip[INET6_ADDRSTRLEN];
	int			 i, len;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS)
			snprintf(buf, sizeof(buf), "DNS:%.*s",
			    ASN1_STRING_length(g->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (g->type == GEN_IPADD &&
		    ((len = ASN1_STRING_length(g->d.iPAddress)) == 4 ||
		    len == 16) && inet_ntop(len == 4 ? AF_INET : AF_INET6,
		    ASN1_STRING_get0_data(g->d.iPAddress), ip,
		    sizeof(ip)) != NULL)
			snprintf(buf, sizeof(buf), "IP:%s", ip);
		else
			continue;
		json_object_array_add(a, json_object_new_string(buf));
	}
	GENERAL_NAMES_free(gens);
	return a;
}

/* CERTINFO of the contract. */
struct json_object *
keyd_x509_info(X509 *x, const char *id, const char *mode)
{
	struct json_object	*o = json_object_new_object();
	char			 buf[512], fp[KEYD_FP_LEN];
	time_t			 nb, na;
	BIGNUM			*bn;
	char			*hex;

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "mode", json_object_new_string(mode));
	name_text(X509_get_subject_name(x), buf, sizeof(buf));
	json_object_object_add(o, "subject", json_object_new_string(buf));
	json_object_object_add(o, "sans", sans_json(x));
	name_text(X509_get_issuer_name(x), buf, sizeof(buf));
	json_object_object_add(o, "issuer", json_object_new_string(buf));
	keyd_x509_times(x, &nb, &na);
	keyd_x509_iso(nb, buf, sizeof(buf));
	json_object_object_add(o, "not_before", json_object_new_string(buf));
	keyd_x509_iso(na, buf, sizeof(buf));
	json_object_object_add(o, "not_after", json_object_new_string(buf));
	keyd_x509_fingerprint(x, fp);
	json_object_object_add(o, "sha256", json_object_new_string(fp));
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) !=
	    NULL && (hex = BN_bn2hex(bn)) != NULL) {
		for (char *c = hex; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		json_object_object_add(o, "serial",
		    json_object_new_string(hex));
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return o;
}

/* The name constraints' permitted subtrees, "DNS:host", "IP:net/len". */
struct json_object *
keyd_x509_permitted(X509 *x)
{
	struct json_object	*a = json_object_new_array();
	NAME_CONSTRAINTS	*nc;
	GENERAL_SUBTREE		*st;
	char			 buf[300], ip[INET6_ADDRSTRLEN];
	const unsigned char	*d;
	int			 i, len, bits, j;

	nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
	for (i = 0; nc != NULL && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees);
	    i++) {
		st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		if (st->base->type == GEN_DNS)
			snprintf(buf, sizeof(buf), "DNS:%.*s",
			    ASN1_STRING_length(st->base->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(
			    st->base->d.dNSName));
		else if (st->base->type == GEN_IPADD &&
		    ((len = ASN1_STRING_length(st->base->d.iPAddress)) == 8 ||
		    len == 32)) {
			d = ASN1_STRING_get0_data(st->base->d.iPAddress);
			for (bits = 0, j = len / 2; j < len; j++)
				bits += __builtin_popcount(d[j]);
			if (inet_ntop(len == 8 ? AF_INET : AF_INET6, d, ip,
			    sizeof(ip)) == NULL)
				continue;
			snprintf(buf, sizeof(buf), "IP:%s/%d", ip, bits);
		} else
			continue;
		json_object_array_add(a, json_object_new_string(buf));
	}
	NAME_CONSTRAINTS_free(nc);
	return a;
}

/* ECDSA over a SHA-256 digest the caller made, DER encoded. */
int
keyd_x509_sign(EVP_PKEY *key, const uint8_t *dgst, size_t dlen, uint8_t *sig,
    size_t *siglen)
{
	EVP_PKEY_CTX	*ctx;
	int		 rv = -1;

	if (dlen != FLM_TLS_DIGEST_LEN ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(ctx, sig, siglen, dgst, dlen) == 1)
		rv = 0;
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

/* ---- ACME (keyd_acme.c): JWS signatures, the JWK, the CSR ----------- */

/* base64url without padding (RFC 7515 §2), NUL-terminated in out. */
int
keyd_b64url(const void *bin, size_t len, char *out, size_t sz)
{
	if (sz < sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return -1;
	sodium_bin2base64(out, sz, bin, len,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

/* ES256 (RFC 7518 §3.4): ECDSA P-256 over SHA-256, r and s as 32 bytes
 * each, not DER. */
int
keyd_x509_es256(EVP_PKEY *key, const void *data, size_t len,
    uint8_t sig[KEYD_ES256_LEN])
{
	uint8_t			 dgst[32], der[80];
	const unsigned char	*p = der;
	size_t			 dlen = sizeof(der);
	ECDSA_SIG		*es;
	const BIGNUM		*r, *s;
	int			 rv = -1;

	SHA256(data, len, dgst);
	if (keyd_x509_sign(key, dgst, sizeof(dgst), der, &dlen) == -1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) ==
	    32)
		rv = 0;
	ECDSA_SIG_free(es);
	return rv;
}

/* The public key as a JWK with its members in lexical order, as the
 * thumbprint (RFC 7638) hashes it. */
int
keyd_x509_jwk(EVP_PKEY *key, char *out, size_t sz)
{
	uint8_t	 pub[65];
	char	 x[48], y[48];
	size_t	 len = 0;

	if (EVP_PKEY_get_octet_string_param(key,
	    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &len) != 1 ||
	    len != 65 || pub[0] != 0x04 ||
	    keyd_b64url(pub + 1, 32, x, sizeof(x)) == -1 ||
	    keyd_b64url(pub + 33, 32, y, sizeof(y)) == -1)
		return -1;
	return (size_t)snprintf(out, sz, "{\"crv\":\"P-256\",\"kty\":\"EC\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", x, y) < sz ? 0 : -1;
}

/* A certificate request for names (the first one the CN), signed by
 * key, DER into *der (OPENSSL_malloc'd). */
int
keyd_x509_csr(EVP_PKEY *key, const char *const *names, size_t n,
    unsigned char **der, size_t *len)
{
	X509_REQ		*req;
	X509_NAME		*subj;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION		*ext;
	char			 san[8192];
	size_t			 i;
	int			 dl, ok;

	*der = NULL;
	san[0] = '\0';
	for (i = 0; i < n; i++)
		buf_add(san, sizeof(san), "DNS:", names[i]);
	if (n == 0 || (req = X509_REQ_new()) == NULL)
		return -1;
	subj = X509_REQ_get_subject_name(req);
	ok = X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1 &&
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	    (const unsigned char *)names[0], -1, -1, 0) == 1 &&
	    (exts = sk_X509_EXTENSION_new_null()) != NULL &&
	    (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    san)) != NULL;
	if (ok && !sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		ok = 0;
	}
	ok = ok && X509_REQ_add_extensions(req, exts) == 1 &&
	    X509_REQ_set_pubkey(req, key) == 1 &&
	    X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
	    (dl = i2d_X509_REQ(req, der)) > 0;
	if (ok)
		*len = (size_t)dl;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return ok ? 0 : -1;
}

/*
 * The TLS-ALPN-01 challenge certificate (RFC 8737): self-signed for
 * name, with the critical acmeIdentifier extension holding the SHA-256
 * of the key authorization.
 */
X509 *
keyd_x509_alpn(EVP_PKEY *key, const char *serial, const char *name,
    const uint8_t digest[32], time_t now)
{
	ASN1_OBJECT		*obj;
	ASN1_OCTET_STRING	*os;
	X509_EXTENSION		*ext = NULL;
	X509			*x;
	unsigned char		 der[34];
	char			 san[300];
	int			 ok;

	/* The extension's value: the DER of an OCTET STRING of 32 bytes. */
	der[0] = 0x04;
	der[1] = 0x20;
	memcpy(der + 2, digest, 32);
	snprintf(san, sizeof(san), "DNS:%s", name);
	if ((x = cert_new(key, serial, name, now, 86400)) == NULL)
		return NULL;
	obj = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	os = ASN1_OCTET_STRING_new();
	ok = obj != NULL && os != NULL &&
	    ASN1_OCTET_STRING_set(os, der, sizeof(der)) == 1 &&
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, os)) != NULL &&
	    X509_add_ext(x, ext, -1) == 1 &&
	    add_ext(x, x, NID_subject_alt_name, san) == 0 &&
	    X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
	    X509_sign(x, key, EVP_sha256()) > 0;
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * Before the sandbox: OpenSSL's secure heap (locked, guarded pages for
 * private scalars), no configuration file, the random generator seeded.
 */
void
keyd_x509_init(void)
{
	unsigned char	 b[16];
	int		 r;

	/* 2: mapped and guarded, but mlock(2) failed (RLIMIT_MEMLOCK). */
	if ((r = CRYPTO_secure_malloc_init(KEYD_SECURE_HEAP, 32)) == 0)
		log_warnx("OpenSSL's secure heap is not available: TLS keys "
		    "live in ordinary memory");
	else if (r == 2)
		log_warnx("OpenSSL's secure heap is not locked in memory "
		    "(RLIMIT_MEMLOCK): TLS keys could be swapped out");
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1 ||
	    RAND_bytes(b, sizeof(b)) != 1)
		fatalx("OpenSSL cannot start");
}
