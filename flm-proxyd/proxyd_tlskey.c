/*
 * "flmkeyd": a built-in OpenSSL 3 provider whose EC keys are a server
 * certificate's public key and the id keyd knows it by, nothing more.
 * libssl takes them as private keys (the keymgmt answers for the public
 * half, in the default provider's terms); their one signature
 * operation, FLMKEYD-ECDSA, hashes what it is given with SHA-256 and
 * has flm-keyd sign the digest (tls_sign_remote, proxyd_tls.c), the
 * handshake's ASYNC job paused meanwhile.  No private key byte ever
 * exists in proxyd.
 *
 * The signature operation's name is ours alone, so that no fetch can
 * pair our keys with the default provider's ECDSA; the keymgmt is "EC"
 * so that libssl knows the key's type, and fetches without a property
 * query prefer the default provider (tlskey_init), so it is only ever
 * used for the keys made here.
 */
#include "config.h"

#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "log.h"
#include "proxyd.h"

#define TLSKEY_PROV	"flmkeyd"
#define TLSKEY_PARAM_ID	"flmkeyd-id"
#define TLSKEY_SIG	"FLMKEYD-ECDSA"

struct tlskey {
	char		 id[FLM_CERT_ID_LEN + 1];	/* "": cannot sign */
	EVP_PKEY	*pub;		/* the default provider's public key */
};

struct tlskey_sig {
	struct tlskey	*key;
	EVP_MD_CTX	*md;
};

/* ---- keymgmt ---------------------------------------------------------- */

static void *
tlskey_km_new(void *provctx)
{
	(void)provctx;
	return OPENSSL_zalloc(sizeof(struct tlskey));
}

static void
tlskey_km_free(void *kd)
{
	struct tlskey	*k = kd;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	OPENSSL_free(k);
}

/* The private half "is there": keyd holds it for us. */
static int
tlskey_km_has(const void *kd, int selection)
{
	const struct tlskey	*k = kd;

	(void)selection;
	return k != NULL && k->pub != NULL;
}

/* Group and point, as the default provider takes them; an id too when
 * the key is one of ours (a public key imported to be compared has
 * none, and cannot sign). */
static int
tlskey_km_import(void *kd, int selection, const OSSL_PARAM params[])
{
	struct tlskey		*k = kd;
	const OSSL_PARAM	*p;
	EVP_PKEY_CTX		*pc;
	const char		*id = NULL;

	if (k == NULL || k->pub != NULL ||
	    (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 ||
	    (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
		return 0;
	if ((p = OSSL_PARAM_locate_const(params, TLSKEY_PARAM_ID)) != NULL &&
	    (!OSSL_PARAM_get_utf8_string_ptr(p, &id) ||
	    strlen(id) != FLM_CERT_ID_LEN))
		return 0;
	if ((pc = EVP_PKEY_CTX_new_from_name(NULL, "EC",
	    "provider=default")) == NULL)
		return 0;
	if (EVP_PKEY_fromdata_init(pc) <= 0 || EVP_PKEY_fromdata(pc, &k->pub,
	    EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) <= 0) {
		EVP_PKEY_CTX_free(pc);
		return 0;
	}
	EVP_PKEY_CTX_free(pc);
	if (id != NULL)
		memcpy(k->id, id, FLM_CERT_ID_LEN + 1);
	return 1;
}

static const OSSL_PARAM tlskey_km_types[] = {
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_utf8_string(TLSKEY_PARAM_ID, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
tlskey_km_import_types(int selection)
{
	(void)selection;
	return tlskey_km_types;
}

/* Only the public half leaves: a private export is refused, so nothing
 * can take the key elsewhere believing it whole. */
static int
tlskey_km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct tlskey	*k = kd;
	OSSL_PARAM	*params = NULL;
	int		 rv;

	if (k == NULL || k->pub == NULL ||
	    (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		return 0;
	if (EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) <= 0)
		return 0;
	rv = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return rv;
}

static const OSSL_PARAM *
tlskey_km_export_types(int selection)
{
	(void)selection;
	return tlskey_km_types;
}

/* Bits, security bits, maximum signature size, group, point format,
 * default digest: the public key's own answers. */
static int
tlskey_km_get_params(void *kd, OSSL_PARAM params[])
{
	struct tlskey	*k = kd;
	OSSL_PARAM	*p;

	if (k == NULL || k->pub == NULL)
		return 0;
	/* Nothing private is asked of the public key. */
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PRIV_KEY)) != NULL)
		return 0;
	return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM tlskey_km_gettable[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
tlskey_km_gettable_params(void *provctx)
{
	(void)provctx;
	return tlskey_km_gettable;
}

/* Same public key (what X509_check_private_key asks). */
static int
tlskey_km_match(const void *a, const void *b, int selection)
{
	const struct tlskey	*x = a, *y = b;

	(void)selection;
	return x != NULL && y != NULL && x->pub != NULL && y->pub != NULL &&
	    EVP_PKEY_eq(x->pub, y->pub) == 1;
}

static const char *
tlskey_km_opname(int op)
{
	return op == OSSL_OP_SIGNATURE ? TLSKEY_SIG : NULL;
}

static const OSSL_DISPATCH tlskey_keymgmt[] = {
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))tlskey_km_new },
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))tlskey_km_free },
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))tlskey_km_has },
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))tlskey_km_import },
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
	    (void (*)(void))tlskey_km_import_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))tlskey_km_export },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
	    (void (*)(void))tlskey_km_export_types },
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))tlskey_km_get_params },
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
	    (void (*)(void))tlskey_km_gettable_params },
	{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))tlskey_km_match },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
	    (void (*)(void))tlskey_km_opname },
	{ 0, NULL }
};

/* ---- signature ---------------------------------------------------------- */

static void *
tlskey_sig_new(void *provctx, const char *propq)
{
	(void)provctx;
	(void)propq;
	return OPENSSL_zalloc(sizeof(struct tlskey_sig));
}

static void
tlskey_sig_free(void *ctx)
{
	struct tlskey_sig	*s = ctx;

	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->md);
	OPENSSL_free(s);
}

/* SHA-256 only: keyd signs 32-byte digests and nothing else. */
static int
tlskey_sig_dinit(void *ctx, const char *mdname, void *kd,
    const OSSL_PARAM params[])
{
	struct tlskey_sig	*s = ctx;
	struct tlskey		*k = kd;
	EVP_MD			*md;
	int			 ok;

	(void)params;
	if (s == NULL || k == NULL || k->id[0] == '\0' || mdname == NULL)
		return 0;
	if ((md = EVP_MD_fetch(NULL, mdname, "provider=default")) == NULL)
		return 0;
	ok = EVP_MD_is_a(md, "SHA2-256") && (s->md != NULL ||
	    (s->md = EVP_MD_CTX_new()) != NULL) &&
	    EVP_DigestInit_ex2(s->md, md, NULL) == 1;
	EVP_MD_free(md);
	if (!ok)
		return 0;
	s->key = k;
	return 1;
}

/* One shot: the size alone when sig is NULL (libssl asks first). */
static int
tlskey_sig_dsign(void *ctx, unsigned char *sig, size_t *siglen,
    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	struct tlskey_sig	*s = ctx;
	unsigned char		 dgst[FLM_TLS_DIGEST_LEN];
	unsigned int		 dlen = 0;

	if (s == NULL || s->key == NULL)
		return 0;
	if (sig == NULL) {
		*siglen = FLM_TLS_SIG_MAX;
		return 1;
	}
	if (sigsize < FLM_TLS_SIG_MAX ||
	    EVP_DigestUpdate(s->md, tbs, tbslen) != 1 ||
	    EVP_DigestFinal_ex(s->md, dgst, &dlen) != 1 ||
	    dlen != sizeof(dgst))
		return 0;
	return tls_sign_remote(s->key->id, dgst, sig, siglen);
}

static const OSSL_DISPATCH tlskey_signature[] = {
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))tlskey_sig_new },
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))tlskey_sig_free },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
	    (void (*)(void))tlskey_sig_dinit },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))tlskey_sig_dsign },
	{ 0, NULL }
};

/* ---- the provider ---------------------------------------------------------- */

static const OSSL_ALGORITHM tlskey_keymgmts[] = {
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=" TLSKEY_PROV,
	    tlskey_keymgmt, "keys held by flm-keyd" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM tlskey_signatures[] = {
	{ TLSKEY_SIG, "provider=" TLSKEY_PROV, tlskey_signature,
	    "ECDSA by flm-keyd" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *
tlskey_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return tlskey_keymgmts;
	case OSSL_OP_SIGNATURE:
		return tlskey_signatures;
	default:
		return NULL;
	}
}

static const OSSL_DISPATCH tlskey_provider[] = {
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))tlskey_query },
	{ 0, NULL }
};

static int
tlskey_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
    const OSSL_DISPATCH **out, void **provctx)
{
	(void)in;
	*out = tlskey_provider;
	*provctx = (void *)handle;
	return 1;
}

static OSSL_PROVIDER	*tlskey_prov, *tlskey_default;

/* Before the sandbox: both providers loaded, the default preferred. */
void
tlskey_init(void)
{
	if (OSSL_PROVIDER_add_builtin(NULL, TLSKEY_PROV,
	    tlskey_provider_init) != 1 ||
	    (tlskey_default = OSSL_PROVIDER_load(NULL, "default")) == NULL ||
	    (tlskey_prov = OSSL_PROVIDER_load(NULL, TLSKEY_PROV)) == NULL ||
	    EVP_set_default_properties(NULL, "?provider=default") != 1)
		fatalx("cannot load the %s provider", TLSKEY_PROV);
}

void
tlskey_cleanup(void)
{
	if (tlskey_prov != NULL)
		OSSL_PROVIDER_unload(tlskey_prov);
	if (tlskey_default != NULL)
		OSSL_PROVIDER_unload(tlskey_default);
	tlskey_prov = tlskey_default = NULL;
}

/* The key of certificate id: its public key, in our provider. */
EVP_PKEY *
tlskey_new(const char *id, X509 *cert)
{
	EVP_PKEY	*pub, *key = NULL;
	EVP_PKEY_CTX	*pc = NULL;
	OSSL_PARAM	*pp = NULL, *all = NULL;
	OSSL_PARAM	 idp[2];

	if ((pub = X509_get0_pubkey(cert)) == NULL ||
	    !EVP_PKEY_is_a(pub, "EC") ||
	    EVP_PKEY_todata(pub, EVP_PKEY_PUBLIC_KEY, &pp) <= 0)
		return NULL;
	idp[0] = OSSL_PARAM_construct_utf8_string(TLSKEY_PARAM_ID,
	    (char *)id, 0);
	idp[1] = OSSL_PARAM_construct_end();
	if ((all = OSSL_PARAM_merge(pp, idp)) == NULL ||
	    (pc = EVP_PKEY_CTX_new_from_name(NULL, "EC",
	    "provider=" TLSKEY_PROV)) == NULL ||
	    EVP_PKEY_fromdata_init(pc) <= 0 ||
	    EVP_PKEY_fromdata(pc, &key, EVP_PKEY_PUBLIC_KEY, all) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(all);
	OSSL_PARAM_free(pp);
	return key;
}
