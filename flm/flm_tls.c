/*
 * flm ca and flm clients: the local CA's certificate for clients and
 * the OS trust store, and client certificates written once to files.
 * keyd makes every key; a client's key passes through here on its way
 * to PREFIX.key and PREFIX.p12 and is wiped after.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "fileio.h"
#include "flm.h"

#define TLS_P12_PASS_MAX	1024

/*
 * A member's text as is: PEM has newlines, which jstr's terminal-safe
 * copy would escape, and a key must not be copied at all.
 */
static const char *
jraw(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

/* Where the OS trusts CAs, and the command that rebuilds its bundle. */
struct trust_store {
	char		 path[PATH_MAX];
	const char	*cmd;		/* NULL: none to run */
	int		 standin;	/* FLM_CA_TRUST_DIR: no root needed */
};

static const struct {
	const char	*dir;
	const char	*file;
	const char	*cmd;
} trust_stores[] = {
	/* Debian, Ubuntu */
	{ "/usr/local/share/ca-certificates", "flm-local-ca.crt",
	    "update-ca-certificates" },
	/* RHEL, Fedora */
	{ "/etc/pki/ca-trust/source/anchors", "flm-local-ca.pem",
	    "update-ca-trust" },
};

/*
 * FLM_CA_TRUST_DIR (and FLM_CA_TRUST_CMD, none if unset) stand in for
 * the store, so that tests never touch the real one.  -1: none found.
 */
static int
trust_store_find(struct trust_store *ts)
{
	const char	*dir = getenv("FLM_CA_TRUST_DIR");
	struct stat	 st;
	size_t		 i;

	ts->cmd = getenv("FLM_CA_TRUST_CMD");
	ts->standin = dir != NULL && *dir != '\0';
	if (ts->standin) {
		snprintf(ts->path, sizeof(ts->path), "%s/flm-local-ca.crt",
		    dir);
		return 0;
	}
	for (i = 0; i < sizeof(trust_stores) / sizeof(trust_stores[0]); i++) {
		if (stat(trust_stores[i].dir, &st) == -1 ||
		    !S_ISDIR(st.st_mode))
			continue;
		snprintf(ts->path, sizeof(ts->path), "%s/%s",
		    trust_stores[i].dir, trust_stores[i].file);
		if (ts->cmd == NULL)
			ts->cmd = trust_stores[i].cmd;
		return 0;
	}
	return -1;
}

/* The colon hex SHA-256 of a PEM certificate's DER; -1 if none. */
static int
tls_pem_sha256(const char *pem, size_t len, char *out, size_t outsz)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;
	X509		*x;
	BIO		*b;

	if (outsz < 3 * 32 || (b = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL)
		return -1;
	if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1) {
		X509_free(x);
		return -1;
	}
	X509_free(x);
	for (i = 0; i < mdlen; i++)
		snprintf(out + 3 * i, outsz - 3 * i, "%02X%s", md[i],
		    i + 1 < mdlen ? ":" : "");
	return 0;
}

/* The fingerprint of the certificate in path, or "" if none is there. */
static void
trust_file_sha256(const char *path, char *out, size_t outsz)
{
	char	 buf[16384];
	ssize_t	 n;
	int	 fd;

	out[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || tls_pem_sha256(buf, (size_t)n, out, outsz) == -1)
		out[0] = '\0';
}

/* Run the store's update command; its chatter goes to stderr. */
static int
trust_run(const char *cmd)
{
	pid_t	 pid;
	int	 status;

	if (cmd == NULL || *cmd == '\0')
		return 0;
	fflush(stdout);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "flm: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "flm: %s failed (%s %d)\n", cmd, WIFEXITED(status) ?
	    "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) :
	    WTERMSIG(status));
	return -1;
}

/*
 * Replace path with text, atomically (a temporary file, synced, then
 * renamed): the CA's files and flm firewall's saved state.
 */
int
file_replace(const char *path, const char *text, mode_t mode)
{
	char	 tmp[PATH_MAX + 16];
	int	 fd, r;

	snprintf(tmp, sizeof(tmp), "%s.flm-tmp", path);
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, mode)) == -1)
		return -1;
	r = fileio_write_all(fd, text, strlen(text));
	if (r == 0 && (fchmod(fd, mode) == -1 || fsync(fd) == -1))
		r = -1;
	if (close(fd) == -1)
		r = -1;
	if (r == 0 && rename(tmp, path) == 0)
		return 0;
	r = errno;
	(void)unlink(tmp);
	errno = r;
	return -1;
}

static void
ca_table(struct json_object *o)
{
	struct json_object	*p;
	size_t			 i;

	printf("subject:     %s\n", jstr(o, "subject"));
	printf("not after:   %s\n", jstr(o, "not_after"));
	printf("SHA-256:     %s\n", jstr(o, "sha256"));
	printf("created:     %s\n", jstr(o, "created_at"));
	if (json_object_object_get_ex(o, "permitted", &p) &&
	    json_object_is_type(p, json_type_array)) {
		printf("permitted:  ");
		for (i = 0; i < json_object_array_length(p); i++)
			printf(" %s", term_str(json_object_array_get_idx(p,
			    i)));
		printf("\n");
	}
	printf("trust store: %s (%s)\n", json_object_get_boolean(
	    json_object_object_get(o, "in_trust_store")) ? "installed" :
	    "not installed", jstr(o, "trust_file"));
}

/* The CA's description from keyd: {"ca": CAINFO}, CAINFO kept. */
static int
ca_info(struct cli *c, struct json_object **ca)
{
	struct json_object	*res = NULL, *v;
	int			 rc;

	if ((rc = cli_request(c, IMSG_CTL_CA_INFO, NULL, &res)) != 0)
		return rc;
	if (!json_object_object_get_ex(res, "ca", &v) ||
	    !json_object_is_type(v, json_type_object) ||
	    !json_object_is_type(json_object_object_get(v, "pem"),
	    json_type_string)) {
		fprintf(stderr, "flm: flmd's answer holds no CA\n");
		json_object_put(res);
		return FLM_EX_ERROR;
	}
	*ca = json_object_get(v);
	json_object_put(res);
	return FLM_EX_OK;
}

static int
ca_export(struct cli *c, struct json_object *ca)
{
	const char		*pem = jraw(ca, "pem");
	struct json_object	*o;

	if (c->out == NULL) {
		fputs(pem, stdout);
		return FLM_EX_OK;
	}
	if (file_replace(c->out, pem, 0644) == -1) {
		fprintf(stderr, "flm: %s: %s\n", c->out, strerror(errno));
		return FLM_EX_ERROR;
	}
	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "out", json_object_new_string(
		    c->out));
		json_object_object_add(o, "sha256", json_object_new_string(
		    jstr(ca, "sha256")));
		print_json(o);
		json_object_put(o);
	}
	return FLM_EX_OK;
}

static int
ca_trust(struct cli *c, struct json_object *ca, int add,
    const struct trust_store *ts)
{
	struct json_object	*o;

	if (add && file_replace(ts->path, jraw(ca, "pem"), 0644) == -1) {
		fprintf(stderr, "flm: %s: %s\n", ts->path, strerror(errno));
		return FLM_EX_ERROR;
	}
	if (!add && unlink(ts->path) == -1 && errno != ENOENT) {
		fprintf(stderr, "flm: %s: %s\n", ts->path, strerror(errno));
		return FLM_EX_ERROR;
	}
	if (trust_run(ts->cmd) == -1)
		return FLM_EX_ERROR;
	o = json_object_new_object();
	json_object_object_add(o, "trust_file", json_object_new_string(
	    ts->path));
	json_object_object_add(o, "in_trust_store",
	    json_object_new_boolean(add));
	json_object_object_add(o, "sha256", json_object_new_string(jstr(ca,
	    "sha256")));
	if (c->json || !isatty(STDOUT_FILENO))
		print_json(o);
	else
		printf("%s %s\n", add ? "installed" : "removed", ts->path);
	json_object_put(o);
	return FLM_EX_OK;
}

/* flm ca export|status|trust|untrust */
int
cmd_ca(struct cli *c, int argc, char **argv)
{
	struct json_object	*ca = NULL;
	struct trust_store	 ts;
	char			 have[128], want[128];
	int			 rc, found;

	(void)argc;
	found = trust_store_find(&ts) == 0;
	if (strcmp(argv[1], "trust") == 0 || strcmp(argv[1], "untrust") == 0) {
		if (!found) {
			fprintf(stderr, "flm: no OS trust store known here "
			    "(%s or %s): install the PEM of flm ca export "
			    "by hand\n", trust_stores[0].dir,
			    trust_stores[1].dir);
			return FLM_EX_ERROR;
		}
		if (!ts.standin && geteuid() != 0) {
			fprintf(stderr, "flm: the OS trust store is root's: "
			    "run flm ca %s as root\n", argv[1]);
			return FLM_EX_PERM;
		}
	}
	if ((rc = ca_info(c, &ca)) != 0)
		return rc;
	if (strcmp(argv[1], "export") == 0)
		rc = ca_export(c, ca);
	else if (strcmp(argv[1], "status") == 0) {
		trust_file_sha256(found ? ts.path : "", have, sizeof(have));
		if (tls_pem_sha256(jraw(ca, "pem"), strlen(jraw(ca, "pem")),
		    want, sizeof(want)) == -1)
			want[0] = '\0';
		json_object_object_add(ca, "trust_file", found ?
		    json_object_new_string(ts.path) : NULL);
		json_object_object_add(ca, "in_trust_store",
		    json_object_new_boolean(have[0] != '\0' &&
		    strcmp(have, want) == 0));
		print_result(c, ca, ca_table);
	} else
		rc = ca_trust(c, ca, strcmp(argv[1], "trust") == 0, &ts);
	json_object_put(ca);
	return rc;
}

/* The three files of clients issue, made before keyd is asked. */
struct client_files {
	char	 path[3][PATH_MAX];
	int	 fd[3];
};

static const char *const client_ext[3] = { ".crt", ".key", ".p12" };

static void
client_files_undo(struct client_files *cf)
{
	int	 i;

	for (i = 0; i < 3; i++) {
		if (cf->fd[i] == -1)
			continue;
		close(cf->fd[i]);
		(void)unlink(cf->path[i]);
		cf->fd[i] = -1;
	}
}

/* Never overwrite: O_EXCL, and nothing is issued unless all three open. */
static int
client_files_open(const char *prefix, struct client_files *cf)
{
	int	 i;

	for (i = 0; i < 3; i++)
		cf->fd[i] = -1;
	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(cf->path[i], sizeof(cf->path[i]), "%s%s",
		    prefix, client_ext[i]) >= sizeof(cf->path[i])) {
			fprintf(stderr, "flm: --out %s: too long\n", prefix);
			client_files_undo(cf);
			return -1;
		}
		if ((cf->fd[i] = open(cf->path[i], O_WRONLY | O_CREAT |
		    O_EXCL | O_NOFOLLOW | O_CLOEXEC, i == 0 ? 0644 : 0600)) ==
		    -1) {
			fprintf(stderr, "flm: %s: %s%s\n", cf->path[i],
			    strerror(errno), errno == EEXIST ? " (never "
			    "overwritten: choose another --out)" : "");
			client_files_undo(cf);
			return -1;
		}
	}
	return 0;
}

/* The first line of file, for the PKCS#12 password; -1 if unreadable. */
static int
client_p12_pass(const char *file, char *pass, size_t passsz)
{
	ssize_t	 n;
	int	 fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "flm: %s: %s\n", file, strerror(errno));
		return -1;
	}
	n = read(fd, pass, passsz - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "flm: %s: %s\n", file, strerror(errno));
		return -1;
	}
	pass[n] = '\0';
	pass[strcspn(pass, "\r\n")] = '\0';
	return 0;
}

/* PKCS#12 of the key, its certificate and the CA, DER in *der. */
static int
client_p12(struct json_object *res, const char *pass, unsigned char **der,
    int *derlen)
{
	const char	*cert = jraw(res, "cert"), *key = jraw(res, "key"),
			*ca = jraw(res, "ca");
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*pk = NULL;
	X509		*x = NULL, *cx = NULL;
	PKCS12		*p12 = NULL;
	BIO		*b;
	int		 r = -1;

	*der = NULL;
	if ((b = BIO_new_mem_buf(key, -1)) != NULL) {
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(cert, -1)) != NULL) {
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(ca, -1)) != NULL) {
		cx = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (pk == NULL || x == NULL || cx == NULL ||
	    (chain = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(chain, cx))
		goto done;
	cx = NULL;		/* the stack owns it */
	if ((p12 = PKCS12_create(pass, jraw(res, "label"), pk, x, chain, 0, 0,
	    0, 0, 0)) == NULL || (*derlen = i2d_PKCS12(p12, der)) <= 0)
		goto done;
	r = 0;
done:
	PKCS12_free(p12);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cx);
	X509_free(x);
	EVP_PKEY_free(pk);
	return r;
}

static int
client_write(struct client_files *cf, struct json_object *res,
    const char *pass)
{
	const char	*cert = jraw(res, "cert"), *key = jraw(res, "key"),
			*ca = jraw(res, "ca");
	unsigned char	*der = NULL;
	int		 derlen = 0, r;

	if (client_p12(res, pass, &der, &derlen) == -1) {
		fprintf(stderr, "flm: the certificate or key from flmd does "
		    "not parse\n");
		return -1;
	}
	r = 0;
	if (fileio_write_all(cf->fd[0], cert, strlen(cert)) == -1 ||
	    fileio_write_all(cf->fd[0], ca, strlen(ca)) == -1 ||
	    fileio_write_all(cf->fd[1], key, strlen(key)) == -1 ||
	    fileio_write_all(cf->fd[2], der, (size_t)derlen) == -1)
		r = -1;
	OPENSSL_clear_free(der, (size_t)derlen);
	if (r == -1)
		fprintf(stderr, "flm: write: %s\n", strerror(errno));
	return r;
}

static int
client_issue(struct cli *c)
{
	struct json_object	*req, *res = NULL, *files;
	struct client_files	 cf;
	char			 pass[TLS_P12_PASS_MAX];
	int			 rc, i;

	if (c->out == NULL)
		cli_usage(c, "--out PREFIX is needed");
	pass[0] = '\0';
	if (c->p12pass != NULL && client_p12_pass(c->p12pass, pass,
	    sizeof(pass)) == -1)
		return FLM_EX_ERROR;
	if (client_files_open(c->out, &cf) == -1) {
		explicit_bzero(pass, sizeof(pass));
		return FLM_EX_ERROR;
	}
	req = json_object_new_object();
	json_object_object_add(req, "label", json_object_new_string(
	    c->args[0]));
	if (c->days > 0)
		json_object_object_add(req, "days", json_object_new_int(
		    (int)c->days));
	rc = cli_request(c, IMSG_CTL_CLIENT_ISSUE, req, &res);
	json_object_put(req);
	if (rc == 0 && client_write(&cf, res, pass) == -1)
		rc = FLM_EX_ERROR;
	explicit_bzero(pass, sizeof(pass));
	if (res != NULL) {
		wipe_key(res);
		json_object_object_del(res, "key");
	}
	if (rc != 0) {
		client_files_undo(&cf);
		json_object_put(res);
		return rc;
	}
	files = json_object_new_object();
	for (i = 0; i < 3; i++) {
		if (close(cf.fd[i]) == -1)
			rc = FLM_EX_ERROR;
		json_object_object_add(files, client_ext[i] + 1,
		    json_object_new_string(cf.path[i]));
	}
	json_object_object_del(res, "cert");
	json_object_object_del(res, "ca");
	json_object_object_add(res, "files", files);
	if (c->json || !isatty(STDOUT_FILENO))
		print_json(res);
	else
		printf("client certificate %s (serial %s, SHA-256 %s) until "
		    "%s:\n  %s\n  %s (private key)\n  %s (PKCS#12)\n",
		    jstr(res, "label"), jstr(res, "serial"), jstr(res,
		    "sha256"), jstr(res, "not_after"), cf.path[0], cf.path[1],
		    cf.path[2]);
	json_object_put(res);
	return rc;
}

static void
clients_table(struct json_object *res)
{
	size_t	 i, n;

	if (!json_object_is_type(res, json_type_array)) {
		print_json(res);
		return;
	}
	if ((n = json_object_array_length(res)) == 0) {
		printf("no client certificates\n");
		return;
	}
	printf("%-18s %-20s %-20s %-20s %s\n", "SERIAL", "LABEL", "CREATED",
	    "NOT AFTER", "REVOKED");
	for (i = 0; i < n; i++) {
		struct json_object	*o = json_object_array_get_idx(res, i);

		printf("%-18s %-20s %-20s %-20s %s\n", jstr(o, "serial"),
		    jstr(o, "label"), jstr(o, "created_at"),
		    jstr(o, "not_after"), jdash(o, "revoked_at"));
	}
}

/* flm clients issue|list|revoke */
int
cmd_clients(struct cli *c, int argc, char **argv)
{
	struct json_object	*req;

	(void)argc;
	if (strcmp(argv[1], "issue") == 0)
		return client_issue(c);
	if (strcmp(argv[1], "list") == 0)
		return cli_show(c, IMSG_CTL_CLIENT_LIST, NULL, clients_table);
	req = json_object_new_object();
	json_object_object_add(req, "client", json_object_new_string(
	    c->args[0]));
	return cli_show(c, IMSG_CTL_CLIENT_REVOKE, req, NULL);
}

/* https-acme: the CA, the challenge, and the last failure if any. */
static void
proxy_acme_lines(struct json_object *h)
{
	struct json_object	*a;

	if (!json_object_object_get_ex(h, "acme", &a) ||
	    !json_object_is_type(a, json_type_object))
		return;
	printf("  ACME %s by %s\n", jstr(a, "directory"), jstr(a,
	    "challenge"));
	if (json_object_object_get(a, "last_error") != NULL)
		printf("  last order failed (%s in a row): %s; next try %s\n",
		    jstr(a, "failures"), jstr(a, "last_error"), jstr(a,
		    "next_try"));
}

/* proxy status and start: a TLS handle's certificate, for a person. */
void
proxy_tls_lines(struct json_object *h)
{
	struct json_object	*cert, *sans;
	size_t			 i;

	if (strcmp(jstr(h, "mode"), "local-http") == 0)
		return;
	if (!json_object_object_get_ex(h, "certificate", &cert) ||
	    cert == NULL) {
		printf("  certificate: none yet (%s)\n", jdash(h, "state"));
		return;
	}
	printf("  subject %s, issuer %s, not after %s\n", jstr(cert,
	    "subject"), jstr(cert, "issuer"), jstr(cert, "not_after"));
	printf("  SANs:");
	if (json_object_object_get_ex(cert, "sans", &sans) &&
	    json_object_is_type(sans, json_type_array))
		for (i = 0; i < json_object_array_length(sans); i++)
			printf(" %s", term_str(json_object_array_get_idx(sans,
			    i)));
	printf("\n  SHA-256 %s\n", jstr(cert, "sha256"));
	printf("  client certificates %s, bearer key %s, HSTS %s s\n",
	    jstr(h, "client_certs"), json_object_get_boolean(
	    json_object_object_get(h, "bearer")) ? "required" : "not needed",
	    jstr(h, "hsts"));
	if (json_object_object_get_ex(cert, "renew_at", &sans))
		printf("  renewal %s\n", term_str(sans));
	proxy_acme_lines(h);
}
