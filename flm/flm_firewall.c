/*
 * flm firewall: host firewall rules made from the running
 * configuration (the proxy's ports open to the policy's allowlist
 * only, the engines' ports to loopback only), shown before they are
 * loaded, and loaded as iptables-apply does: the previous state kept,
 * restored by a detached timer unless the admin confirms in time.
 *
 * This runs as root and execs nft, ufw or firewall-cmd: every address
 * and port that flmd (or keyd's policy) names is parsed and printed
 * again here, never copied, and no string goes through a shell.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cover.h"
#include "flm.h"
#include "paths.h"
#include "policy.h"

#define FW_MAX_PORTS		256
#define FW_DIR_MAX		(PATH_MAX - 64)	/* room for our file names */
#define FW_TIMEOUT_DEFAULT	30	/* s before an unconfirmed apply is undone */
#define FW_TOOL_OUT_MAX		(1024 * 1024)
#define FW_TABLE		"flm"		/* table inet flm */
#define FW_UFW_COMMENT		"flm"

enum fw_backend { FW_NFT, FW_UFW, FW_FIREWALLD };

static const char *const fw_backends[] = { "nftables", "ufw", "firewalld" };
static const char *const fw_tools[] = { "nft", "ufw", "firewall-cmd" };
static const char *const fw_packages[] = { "nftables", "ufw", "firewalld" };

struct fw_plan {
	int		 proxy[FW_MAX_PORTS];	/* reachable beyond loopback */
	size_t		 nproxy;
	int		 engine[FW_MAX_PORTS];	/* loopback only */
	size_t		 nengine;
	struct policy	 pol;			/* its allowlist */
	char		 notes[1024];		/* what has no rule, and why */
};

struct fw_ctx {
	struct cli	*cli;
	enum fw_backend	 backend;
	char		 dir[FW_DIR_MAX];	/* STATEDIR/firewall */
	char		 logdir[FW_DIR_MAX];	/* STATEDIR/logs/security */
	int		 lockfd;
};

/* A file in the state directory. */
static void
fw_path(struct fw_ctx *x, const char *name, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s/%s", x->dir, name);
}

/*
 * The tool, from a fixed set of system directories, never $PATH: a
 * root-owned regular executable that no one else may replace.
 */
static int
fw_tool(enum fw_backend b, char *path, size_t sz)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin",
	    "/bin" };
	struct stat	 st;
	size_t		 i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sz, "%s/%s", dirs[i], fw_tools[b]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    (st.st_mode & 0111) && st.st_uid == 0 &&
		    (st.st_mode & 022) == 0)
			return 0;
	}
	fprintf(stderr, "flm: %s is not installed (looked for a root-owned %s "
	    "in /usr/sbin, /sbin, /usr/bin, /bin): install the %s package or "
	    "choose another --backend\n", fw_tools[b], fw_tools[b],
	    fw_packages[b]);
	return -1;
}

/*
 * Run argv (argv[0] the tool's path) with a clean environment; its
 * output (stdout and stderr) into *out, NUL-terminated.  The exit
 * status, or -1 if it could not be run.
 */
static int
fw_run(char *const argv[], char **out)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	    "LC_ALL=C", NULL };
	char		*buf;
	size_t		 len = 0, cap = 4096;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], st, fd;

	if ((buf = malloc(cap)) == NULL || pipe2(p, O_CLOEXEC) == -1) {
		free(buf);
		return -1;
	}
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		free(buf);
		return -1;
	}
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, STDIN_FILENO);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		if (len + 1 >= cap && cap < FW_TOOL_OUT_MAX) {
			char	*nb = realloc(buf, cap * 2);

			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		if (len + 1 >= cap)
			break;	/* the rest is not read: too long to matter */
		n = read(p[0], buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			free(buf);
			return -1;
		}
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/*
 * The whole of a file (NUL-terminated), or NULL (errno set).  Read to
 * its end, not to its size: /proc's files have none.
 */
static char *
fw_slurp(const char *path)
{
	char	*buf = NULL, *nb;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;
	int	 fd, e;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= FW_TOOL_OUT_MAX || (nb = realloc(buf,
			    cap ? cap * 2 : 4096)) == NULL) {
				e = cap >= FW_TOOL_OUT_MAX ? EFBIG : ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == -1 &&
		    errno == EINTR)
			continue;
		if (n == -1) {
			e = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	errno = e;
	return NULL;
}

/* Write a file of ours, 0600, atomically. */
static int
fw_write(const char *path, const char *text)
{
	if (file_replace(path, text, 0600) == 0)
		return 0;
	fprintf(stderr, "flm: %s: %s\n", path, strerror(errno));
	return -1;
}

/* mkdir -m 0700, and an existing one made 0700 and checked to be ours. */
static int
fw_mkdir(const char *path)
{
	struct stat	 st;

	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "flm: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid()) {
		fprintf(stderr, "flm: %s: not a directory of uid %ld\n", path,
		    (long)geteuid());
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) == -1) {
		fprintf(stderr, "flm: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* STATEDIR/firewall, STATEDIR/logs/security and the lock: root only. */
static int
fw_open_state(struct fw_ctx *x, const char *statedir)
{
	char	 p[PATH_MAX];

	if (snprintf(x->dir, sizeof(x->dir), "%s/firewall", statedir) >=
	    (int)sizeof(x->dir) || snprintf(x->logdir, sizeof(x->logdir),
	    "%s/logs/security", statedir) >= (int)sizeof(x->logdir)) {
		fprintf(stderr, "flm: %s: too long a path\n", statedir);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/logs", statedir);
	if (fw_mkdir(x->dir) == -1 || fw_mkdir(p) == -1 ||
	    fw_mkdir(x->logdir) == -1)
		return -1;
	fw_path(x, "lock", p, sizeof(p));
	if ((x->lockfd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1 || flock(x->lockfd, LOCK_EX) == -1) {
		fprintf(stderr, "flm: %s: %s\n", p, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the plan: flmd's facts, each checked ---- */

/* A numeric address: 1 loopback, 0 another, -1 not an address. */
static int
fw_addr_loopback(const char *s)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) &&
		    a6.s6_addr[12] == 127);
	return -1;
}

static int
fw_port_of(struct json_object *o)
{
	struct json_object	*v;
	int64_t			 n;

	if (!json_object_object_get_ex(o, "port", &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	return n >= 1 && n <= 65535 ? (int)n : -1;
}

static int
fw_has(const int *ports, size_t n, int port)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ports[i] == port)
			return 1;
	return 0;
}

static int
fw_add_port(int *ports, size_t *n, int port)
{
	if (fw_has(ports, *n, port))
		return 0;
	if (*n == FW_MAX_PORTS) {
		fprintf(stderr, "flm: more than %d ports: refused\n",
		    FW_MAX_PORTS);
		return -1;
	}
	ports[(*n)++] = port;
	return 0;
}

static int
fw_int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* A line of the preview's comments: what has no rule, and why. */
static void __attribute__((format(printf, 2, 3)))
fw_note(struct fw_plan *pl, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 l = strlen(pl->notes);

	va_start(ap, fmt);
	vsnprintf(pl->notes + l, sizeof(pl->notes) - l, fmt, ap);
	va_end(ap);
}

/* flmd's {proxies, engines}: every member checked, else refused. */
static int
fw_plan_facts(struct fw_plan *pl, struct json_object *res)
{
	struct json_object	*arr, *o, *v;
	const char		*addr, *id;
	size_t			 i;
	int			 port, lo, pass;

	for (pass = 0; pass < 2; pass++) {
		if (!json_object_object_get_ex(res, pass ? "engines" :
		    "proxies", &arr) || !json_object_is_type(arr,
		    json_type_array))
			goto bad;
		for (i = 0; i < json_object_array_length(arr); i++) {
			o = json_object_array_get_idx(arr, i);
			if (!json_object_is_type(o, json_type_object) ||
			    !json_object_object_get_ex(o, pass ? "addr" :
			    "bind", &v) || !json_object_is_type(v,
			    json_type_string) || (port = fw_port_of(o)) == -1)
				goto bad;
			addr = json_object_get_string(v);
			id = json_object_get_string(json_object_object_get(o,
			    "id"));
			if ((lo = fw_addr_loopback(addr)) == -1 || id == NULL ||
			    strlen(id) > 64 || strpbrk(id, "\n\r\t") != NULL)
				goto bad;
			if (pass == 0 && lo) {
				fw_note(pl, "# proxy %s listens on %s:%d, "
				    "loopback: no rule needed\n", id, addr,
				    port);
				continue;
			}
			if (fw_add_port(pass ? pl->engine : pl->proxy,
			    pass ? &pl->nengine : &pl->nproxy, port) == -1)
				return -1;
		}
	}
	return 0;
bad:
	fprintf(stderr, "flm: malformed firewall plan from flmd: refused\n");
	return -1;
}

/* The allowlist from keyd's policy, parsed again here. */
static int
fw_plan_policy(struct fw_plan *pl, struct json_object *res)
{
	struct json_object	*pol;
	char			 err[256];

	if (!json_object_object_get_ex(res, "policy", &pol) ||
	    policy_parse(pol, &pl->pol, err, sizeof(err)) == -1) {
		fprintf(stderr, "flm: the security policy from flmd is not "
		    "valid: %s\n", pol ? err : "no policy");
		return -1;
	}
	return 0;
}

/* Does a contain b (same family)? */
static int
fw_cidr_contains(const struct policy_cidr *a, const struct policy_cidr *b)
{
	int	 i;

	if (a->family != b->family || a->prefix > b->prefix)
		return 0;
	for (i = 0; i < a->prefix; i++)
		if ((a->addr[i / 8] ^ b->addr[i / 8]) & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

static int
fw_cidr_cmp(const void *pa, const void *pb)
{
	const struct policy_cidr	*a = pa, *b = pb;
	int				 r;

	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	if ((r = memcmp(a->addr, b->addr, 16)) != 0)
		return r;
	return a->prefix - b->prefix;
}

/*
 * Sorted, and without a network inside another: nft refuses
 * overlapping intervals, and the listing must read as we wrote it.
 */
static void
fw_plan_cidrs(struct fw_plan *pl)
{
	struct policy_cidr	*c = pl->pol.allow;
	size_t			 i, j, n = pl->pol.nallow, k = 0;
	int			 dup;

	for (i = 0; i < n; i++) {
		dup = 0;
		for (j = 0; j < n && !dup; j++)
			if (j != i && fw_cidr_contains(&c[j], &c[i]) &&
			    (!fw_cidr_contains(&c[i], &c[j]) || j < i))
				dup = 1;
		if (!dup)
			c[k++] = c[i];
	}
	pl->pol.nallow = k;
	if (k > 1)	/* an empty allowlist has no array: qsort's is nonnull */
		qsort(c, k, sizeof(*c), fw_cidr_cmp);
}

/* A CIDR printed from its bytes (a host as an address alone). */
static void
fw_cidr_str(const struct policy_cidr *c, char *buf, size_t sz)
{
	char	 a[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, a, sizeof(a));
	if (c->prefix == (c->family == AF_INET ? 32 : 128))
		snprintf(buf, sz, "%s", a);
	else
		snprintf(buf, sz, "%s/%d", a, c->prefix);
}

static int
fw_plan(struct fw_ctx *x, struct fw_plan *pl)
{
	struct json_object	*res = NULL;
	size_t			 i, k;
	int			 rc;

	memset(pl, 0, sizeof(*pl));
	if ((rc = cli_request(x->cli, IMSG_CTL_FIREWALL_PLAN, NULL, &res)) != 0)
		return rc;
	rc = fw_plan_facts(pl, res);
	json_object_put(res);
	if (rc == -1)
		return FLM_EX_ERROR;
	res = NULL;
	if ((rc = cli_request(x->cli, IMSG_CTL_POLICY_GET, NULL, &res)) != 0)
		return rc;
	rc = fw_plan_policy(pl, res);
	json_object_put(res);
	if (rc == -1)
		return FLM_EX_ERROR;
	fw_plan_cidrs(pl);
	/* A port both serves the proxy and names an engine: the proxy's. */
	for (i = k = 0; i < pl->nengine; i++) {
		if (fw_has(pl->proxy, pl->nproxy, pl->engine[i]))
			fw_note(pl, "# engine port %d is a proxy's: the "
			    "proxy's rule applies\n", pl->engine[i]);
		else
			pl->engine[k++] = pl->engine[i];
	}
	pl->nengine = k;
	qsort(pl->proxy, pl->nproxy, sizeof(int), fw_int_cmp);
	qsort(pl->engine, pl->nengine, sizeof(int), fw_int_cmp);
	return FLM_EX_OK;
}

/* ---- nftables ---- */

static void
fw_nft_ports(FILE *fp, const int *a, size_t na, const int *b, size_t nb)
{
	int	 all[2 * FW_MAX_PORTS];
	size_t	 i, n = 0;

	for (i = 0; i < na; i++)
		all[n++] = a[i];
	for (i = 0; i < nb; i++)
		all[n++] = b[i];
	qsort(all, n, sizeof(int), fw_int_cmp);
	if (n == 1) {
		fprintf(fp, "%d", all[0]);
		return;
	}
	fprintf(fp, "{ ");
	for (i = 0; i < n; i++)
		fprintf(fp, "%s%d", i ? ", " : "", all[i]);
	fprintf(fp, " }");
}

static void
fw_nft_set(FILE *fp, const struct fw_plan *pl, int family)
{
	char	 c[INET6_ADDRSTRLEN + 8];
	size_t	 i, n = 0;

	fprintf(fp, "\tset proxy_clients%c {\n\t\ttype %s\n\t\tflags "
	    "interval\n", family == AF_INET ? '4' : '6', family == AF_INET ?
	    "ipv4_addr" : "ipv6_addr");
	for (i = 0; i < pl->pol.nallow; i++) {
		if (pl->pol.allow[i].family != family)
			continue;
		fw_cidr_str(&pl->pol.allow[i], c, sizeof(c));
		fprintf(fp, "%s%s", n++ ? ", " : "\t\telements = { ", c);
	}
	fprintf(fp, "%s\t}\n", n ? " }\n" : "");
}

/*
 * FLM's own table, in the form `nft list table inet flm` prints it
 * (so that preview can say "no change").  Its chain runs before the
 * usual filter chains (priority filter - 10): an accept here ends only
 * this chain, a drop is final.
 */
static char *
fw_nft_text(const struct fw_plan *pl)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(fp, "table inet %s {\n", FW_TABLE);
	fw_nft_set(fp, pl, AF_INET);
	fprintf(fp, "\n");
	fw_nft_set(fp, pl, AF_INET6);
	fprintf(fp, "\n\tchain input {\n\t\ttype filter hook input priority "
	    "filter - 10; policy accept;\n\t\tiif \"lo\" accept\n");
	if (pl->nproxy > 0) {
		fprintf(fp, "\t\ttcp dport ");
		fw_nft_ports(fp, pl->proxy, pl->nproxy, NULL, 0);
		fprintf(fp, " ip saddr @proxy_clients4 accept\n\t\ttcp dport ");
		fw_nft_ports(fp, pl->proxy, pl->nproxy, NULL, 0);
		fprintf(fp, " ip6 saddr @proxy_clients6 accept\n");
	}
	if (pl->nproxy + pl->nengine > 0) {
		fprintf(fp, "\t\ttcp dport ");
		fw_nft_ports(fp, pl->proxy, pl->nproxy, pl->engine,
		    pl->nengine);
		fprintf(fp, " drop\n");
	}
	fprintf(fp, "\t}\n}\n");
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The loaded table inet flm into *text; 1 if there is none, -1 error. */
static int
fw_nft_current(char **text)
{
	char	 nft[64];
	char	*argv[] = { nft, "list", "table", "inet", FW_TABLE, NULL };
	char	*out = NULL;
	int	 st;

	*text = NULL;
	if (fw_tool(FW_NFT, nft, sizeof(nft)) == -1)
		return -1;
	if ((st = fw_run(argv, &out)) == 0) {
		*text = out;
		return 0;
	}
	if (st > 0 && out != NULL && strstr(out, "No such file or directory")) {
		free(out);
		return 1;
	}
	fprintf(stderr, "flm: nft list table inet %s failed%s%s", FW_TABLE,
	    out && *out ? ": " : "\n", out ? out : "");
	free(out);
	return -1;
}

/* Load a file with nft -f: one transaction, all or nothing. */
static int
fw_nft_load(const char *path, char **err)
{
	char	 nft[64];
	char	*argv[] = { nft, "-f", (char *)path, NULL };

	*err = NULL;
	if (fw_tool(FW_NFT, nft, sizeof(nft)) == -1)
		return -1;
	return fw_run(argv, err) == 0 ? 0 : -1;
}

/*
 * A script that replaces table inet flm by body (NULL: none), in one
 * transaction: "table" first so that "delete" finds one to delete.
 */
static char *
fw_nft_script(const char *body)
{
	char	*s;

	if (asprintf(&s, "table inet %s\ndelete table inet %s\n%s", FW_TABLE,
	    FW_TABLE, body ? body : "") == -1)
		return NULL;
	return s;
}

/* ---- ufw and firewalld: commands, one argv per line, tab-separated ---- */

static void
fw_cmd(FILE *fp, const char *tool, const char *a, const char *b,
    const char *c)
{
	fprintf(fp, "%s\t%s%s%s%s%s\n", tool, a, b ? "\t" : "", b ? b : "",
	    c ? "\t" : "", c ? c : "");
}

/*
 * ufw: allows prepended (ufw stops at the first match), then a deny of
 * each port; ufw's own before.rules accept loopback first.
 */
static void
fw_ufw_cmds(FILE *fp, const struct fw_plan *pl)
{
	char	 c[INET6_ADDRSTRLEN + 8], p[8], r[200];
	size_t	 i, j;

	for (i = 0; i < pl->nproxy; i++) {
		snprintf(p, sizeof(p), "%d", pl->proxy[i]);
		for (j = 0; j < pl->pol.nallow; j++) {
			fw_cidr_str(&pl->pol.allow[j], c, sizeof(c));
			snprintf(r, sizeof(r), "from\t%s\tto\tany\tport\t%s\t"
			    "proto\ttcp\tcomment\t%s", c, p, FW_UFW_COMMENT);
			fw_cmd(fp, "ufw", "prepend", "allow", r);
		}
	}
	for (i = 0; i < pl->nproxy + pl->nengine; i++) {
		snprintf(r, sizeof(r), "%d/tcp\tcomment\t%s", i < pl->nproxy ?
		    pl->proxy[i] : pl->engine[i - pl->nproxy], FW_UFW_COMMENT);
		fw_cmd(fp, "ufw", "deny", r, NULL);
	}
}

/*
 * firewalld: rich rules in the default zone, ordered by priority (the
 * accepts first); firewalld accepts loopback before any zone.
 */
static void
fw_firewalld_cmds(FILE *fp, const struct fw_plan *pl)
{
	char	 c[INET6_ADDRSTRLEN + 8], r[300];
	size_t	 i, j;

	for (i = 0; i < pl->nproxy; i++)
		for (j = 0; j < pl->pol.nallow; j++) {
			fw_cidr_str(&pl->pol.allow[j], c, sizeof(c));
			snprintf(r, sizeof(r), "--add-rich-rule=rule "
			    "priority=\"-20\" family=\"%s\" source address="
			    "\"%s\" port port=\"%d\" protocol=\"tcp\" accept",
			    pl->pol.allow[j].family == AF_INET ? "ipv4" :
			    "ipv6", c, pl->proxy[i]);
			fw_cmd(fp, "firewall-cmd", r, NULL, NULL);
		}
	for (i = 0; i < pl->nproxy + pl->nengine; i++) {
		snprintf(r, sizeof(r), "--add-rich-rule=rule priority=\"-10\" "
		    "port port=\"%d\" protocol=\"tcp\" drop", i < pl->nproxy ?
		    pl->proxy[i] : pl->engine[i - pl->nproxy]);
		fw_cmd(fp, "firewall-cmd", r, NULL, NULL);
	}
}

/* The rules of the plan for the backend: nft text or command lines. */
static char *
fw_text(enum fw_backend b, const struct fw_plan *pl)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len;

	if (b == FW_NFT)
		return fw_nft_text(pl);
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	if (b == FW_UFW)
		fw_ufw_cmds(fp, pl);
	else
		fw_firewalld_cmds(fp, pl);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Run one tab-separated command line; its output into *out. */
static int
fw_run_line(enum fw_backend b, char *line, char **out)
{
	char	 tool[64];
	char	*argv[32], *p;
	int	 n = 0;

	*out = NULL;
	if (fw_tool(b, tool, sizeof(tool)) == -1)
		return -1;
	argv[n++] = tool;
	strsep(&line, "\t");		/* the tool's name */
	while ((p = strsep(&line, "\t")) != NULL && n < 31)
		argv[n++] = p;
	argv[n] = NULL;
	return fw_run(argv, out) == 0 ? 0 : -1;
}

/* Each line of cmds; with "mod" inserted after the tool (or NULL). */
static int
fw_run_lines(enum fw_backend b, const char *cmds, const char *mod,
    FILE *log)
{
	char	*copy, *s, *line, *out, buf[1024];
	int	 rc = 0;

	if ((copy = strdup(cmds)) == NULL)
		return -1;
	for (s = copy; (line = strsep(&s, "\n")) != NULL;) {
		if (*line == '\0')
			continue;
		if (mod != NULL) {
			char	*t = strchr(line, '\t');

			snprintf(buf, sizeof(buf), "%.*s\t%s%s",
			    t ? (int)(t - line) : (int)strlen(line), line, mod,
			    t ? t : "");
		} else
			snprintf(buf, sizeof(buf), "%s", line);
		fprintf(log, "run: %s\n", buf);
		if (fw_run_line(b, buf, &out) == -1) {
			fprintf(log, "failed: %s\n", out ? out : "");
			fprintf(stderr, "flm: %s failed: %s\n", fw_tools[b],
			    out ? out : "cannot run it");
			rc = -1;
		}
		free(out);
		if (rc == -1)
			break;
	}
	free(copy);
	return rc;
}

/* What the backend has loaded now, for logs and preview. */
static char *
fw_current(enum fw_backend b)
{
	char	 tool[64];
	char	*u[] = { tool, "show", "added", NULL };
	char	*f[] = { tool, "--list-rich-rules", NULL };
	char	*out = NULL;
	int	 r;

	if (b == FW_NFT) {
		if ((r = fw_nft_current(&out)) == 1)
			return strdup("(no table inet " FW_TABLE ")\n");
		return r == 0 ? out : NULL;
	}
	if (fw_tool(b, tool, sizeof(tool)) == -1)
		return NULL;
	if (fw_run(b == FW_UFW ? u : f, &out) != 0) {
		fprintf(stderr, "flm: %s: %s", fw_tools[b], out ? out : "");
		free(out);
		return NULL;
	}
	return out;
}

/* ---- the log of changes ---- */

static FILE *
fw_log_open(struct fw_ctx *x, const char *action)
{
	char		 path[PATH_MAX], ts[32], iso[32];
	time_t		 now = time(NULL);
	struct tm	 tm;
	FILE		*fp;
	int		 fd;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(path, sizeof(path), "%s/firewall-%s.log", x->logdir, ts);
	/* Two changes in one second share the file, one after the other. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || (fp = fdopen(fd, "a")) == NULL) {
		fprintf(stderr, "flm: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	fprintf(fp, "time: %s\naction: %s\nbackend: %s\nuid: %ld\npid: %ld\n",
	    iso, action, fw_backends[x->backend], (long)getuid(),
	    (long)getpid());
	return fp;
}

static void
fw_log_text(FILE *log, const char *what, const char *text)
{
	fprintf(log, "--- %s\n%s%s", what, text ? text : "(unknown)\n",
	    text && *text && text[strlen(text) - 1] != '\n' ? "\n" : "");
}

static void
fw_log_close(FILE *log, const char *outcome)
{
	if (log == NULL)
		return;
	fprintf(log, "outcome: %s\n\n", outcome);
	fclose(log);
}

/* ---- preview ---- */

/* A line diff (longest common subsequence): " ", "-" old, "+" new. */
static void
fw_diff(const char *old, const char *new)
{
	char	**a = NULL, **b = NULL, *ca, *cb, *s, *l;
	size_t	 na = 0, nb = 0, i, j, *t;

	if ((ca = strdup(old)) == NULL || (cb = strdup(new)) == NULL) {
		free(ca);
		return;
	}
	for (s = ca; (l = strsep(&s, "\n")) != NULL;)
		if (s != NULL && (a = reallocarray(a, na + 1, sizeof(*a))))
			a[na++] = l;
	for (s = cb; (l = strsep(&s, "\n")) != NULL;)
		if (s != NULL && (b = reallocarray(b, nb + 1, sizeof(*b))))
			b[nb++] = l;
	if ((t = calloc((na + 1) * (nb + 1), sizeof(*t))) == NULL)
		goto out;
#define T(x, y)	t[(x) * (nb + 1) + (y)]
	for (i = na; i-- > 0;)
		for (j = nb; j-- > 0;)
			T(i, j) = strcmp(a[i], b[j]) == 0 ? T(i + 1, j + 1) + 1 :
			    (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) :
			    T(i, j + 1));
	for (i = j = 0; i < na || j < nb;) {
		if (i < na && j < nb && strcmp(a[i], b[j]) == 0) {
			printf("  %s\n", a[i++]);
			j++;
		} else if (j < nb && (i == na || T(i, j + 1) >= T(i + 1, j)))
			printf("+ %s\n", b[j++]);
		else
			printf("- %s\n", a[i++]);
	}
#undef T
out:
	free(t);
	free(a);
	free(b);
	free(ca);
	free(cb);
}

static int
fw_preview(struct fw_ctx *x, const struct fw_plan *pl, const char *text)
{
	char	*cur;

	printf("# flm firewall rules (%s), from the running configuration\n",
	    fw_backends[x->backend]);
	printf("%s", pl->notes);
	if (x->backend == FW_NFT)
		printf("%s", text);
	else {
		char	*s = strdup(text), *p, *l;

		for (p = s; p && (l = strsep(&p, "\n")) != NULL;) {
			for (char *q = l; *q; q++)
				if (*q == '\t')
					*q = ' ';
			if (*l)
				printf("%s\n", l);
		}
		free(s);
	}
	if (geteuid() != 0) {
		printf("# the rules loaded now can be read only by root: run "
		    "flm firewall preview as root for the difference\n");
		return FLM_EX_OK;
	}
	if ((cur = fw_current(x->backend)) == NULL)
		return FLM_EX_ERROR;
	if (x->backend != FW_NFT)
		printf("# loaded now (%s):\n%s", fw_tools[x->backend], cur);
	else if (strcmp(cur, text) == 0)
		printf("# no change: table inet %s is loaded as shown\n",
		    FW_TABLE);
	else {
		printf("# difference from what is loaded now (- loaded, + "
		    "flm firewall apply):\n");
		fw_diff(strncmp(cur, "(no table", 9) == 0 ? "" : cur, text);
	}
	free(cur);
	return FLM_EX_OK;
}

/* ---- the pending state and the timer ---- */

/* A process's start time (field 22 of /proc/PID/stat), 0 if gone. */
static unsigned long long
fw_starttime(pid_t pid)
{
	char			 path[64], *s, *p;
	unsigned long long	 t = 0;
	int			 i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((s = fw_slurp(path)) == NULL)
		return 0;
	/* After the command name's last ')': field 3 on. */
	if ((p = strrchr(s, ')')) != NULL) {
		for (i = 2; i < 22 && p != NULL; i++)
			p = strchr(p + 1, ' ');
		if (p != NULL)
			t = strtoull(p + 1, NULL, 10);
	}
	free(s);
	return t;
}

struct fw_pending {
	long			 pid;
	unsigned long long	 start;
	long long		 deadline;
	int			 backend;
};

/* 1 and *pd if an apply awaits confirm, 0 if none. */
static int
fw_pending_read(struct fw_ctx *x, struct fw_pending *pd)
{
	char	 path[PATH_MAX], *s;
	int	 n;

	fw_path(x, "pending", path, sizeof(path));
	if ((s = fw_slurp(path)) == NULL)
		return 0;
	n = sscanf(s, "%ld %llu %lld %d", &pd->pid, &pd->start, &pd->deadline,
	    &pd->backend);
	free(s);
	return n == 4 && pd->backend >= 0 && pd->backend <= FW_FIREWALLD;
}

/* Stop the timer of pd, if it is still that process. */
static void
fw_timer_stop(const struct fw_pending *pd)
{
	if (pd->pid > 1 && pd->start != 0 &&
	    fw_starttime((pid_t)pd->pid) == pd->start)
		kill((pid_t)pd->pid, SIGTERM);
}

static int	fw_restore(struct fw_ctx *, const char *);

/* The pending apply ends here: its file removed, its timer stopped. */
static void
fw_disarm(struct fw_ctx *x)
{
	struct fw_pending	 pd;
	char			 path[PATH_MAX];
	int			 had = fw_pending_read(x, &pd);

	fw_path(x, "pending", path, sizeof(path));
	unlink(path);
	if (had)
		fw_timer_stop(&pd);
}

/*
 * The timer, a grandchild in a session of its own: the admin's SSH
 * session may die.  It holds no secret and asks flmd nothing: at the
 * deadline, if its apply is still unconfirmed, it restores.
 */
static void __attribute__((noreturn))
fw_timer(struct fw_ctx *x, long long deadline)
{
	struct fw_pending	 pd;
	struct timespec		 ts;
	char			 path[PATH_MAX];
	int			 fd, rc;

	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (ts.tv_sec >= deadline)
			break;
		ts.tv_sec = deadline - ts.tv_sec;
		ts.tv_nsec = 0;
		nanosleep(&ts, NULL);
	}
	fw_path(x, "lock", path, sizeof(path));
	if ((x->lockfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    flock(x->lockfd, LOCK_EX) == -1)
		_exit(1);
	if (!fw_pending_read(x, &pd) || pd.pid != (long)getpid())
		_exit(0);	/* confirmed, rolled back, or another's */
	x->backend = (enum fw_backend)pd.backend;
	rc = fw_restore(x, "automatic rollback") == 0 ? 0 : 1;
	COVER_DUMP();		/* _exit skips gcov's exit handler */
	_exit(rc);
}

/* Start the timer; its pid and start time into the pending file. */
static int
fw_arm(struct fw_ctx *x, int timeout)
{
	char		 path[PATH_MAX], line[128];
	long long	 deadline = (long long)time(NULL) + timeout;
	pid_t		 pid, gpid = -1;
	int		 p[2], st;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		/* Our copy of the lock would keep confirm waiting. */
		close(x->lockfd);
		signal(SIGHUP, SIG_IGN);
		if (setsid() == -1 || (pid = fork()) == -1)
			_exit(1);
		if (pid > 0)
			_exit(0);
		gpid = getpid();
		if (write(p[1], &gpid, sizeof(gpid)) != sizeof(gpid))
			_exit(1);
		close(p[1]);
		fw_timer(x, deadline);
	}
	close(p[1]);
	if (read(p[0], &gpid, sizeof(gpid)) != sizeof(gpid))
		gpid = -1;
	close(p[0]);
	waitpid(pid, &st, 0);
	if (gpid <= 0) {
		fprintf(stderr, "flm: cannot start the rollback timer\n");
		return -1;
	}
	snprintf(line, sizeof(line), "%ld %llu %lld %d\n", (long)gpid,
	    fw_starttime(gpid), deadline, (int)x->backend);
	fw_path(x, "pending", path, sizeof(path));
	return fw_write(path, line);
}

/* ---- apply, restore, confirm ---- */

/* The backend of the saved state, or -1 if there is none. */
static int
fw_saved_backend(struct fw_ctx *x)
{
	char	 path[PATH_MAX], *s;
	int	 b = -1;
	size_t	 i;

	fw_path(x, "saved.backend", path, sizeof(path));
	if ((s = fw_slurp(path)) == NULL)
		return -1;
	for (i = 0; i < 3; i++)
		if (strncmp(s, fw_backends[i], strlen(fw_backends[i])) == 0 &&
		    s[strlen(fw_backends[i])] == '\n')
			b = (int)i;
	free(s);
	return b;
}

/* Save what apply is about to replace; before: what is loaded now. */
static int
fw_save(struct fw_ctx *x, const char *new, char **before)
{
	char	 path[PATH_MAX], path6[PATH_MAX];
	char	*s = NULL, *s6 = NULL, *undo = NULL;
	int	 r, rc = -1;

	fw_path(x, "saved.nft", path, sizeof(path));
	if (x->backend == FW_NFT) {
		if ((r = fw_nft_current(before)) == -1)
			return -1;
		if (r == 1) {
			*before = strdup("(no table inet " FW_TABLE ")\n");
			if (unlink(path) == -1 && errno != ENOENT)
				return -1;
		} else if (fw_write(path, *before) == -1)
			return -1;
	} else if (x->backend == FW_UFW) {
		if ((*before = fw_current(x->backend)) == NULL)
			return -1;
		/* ufw's own files, put back as they were by rollback. */
		if ((s = fw_slurp("/etc/ufw/user.rules")) == NULL ||
		    (s6 = fw_slurp("/etc/ufw/user6.rules")) == NULL) {
			fprintf(stderr, "flm: cannot read /etc/ufw/user.rules "
			    "or user6.rules: %s\n", strerror(errno));
			goto out;
		}
		fw_path(x, "saved.ufw-user.rules", path, sizeof(path));
		fw_path(x, "saved.ufw-user6.rules", path6, sizeof(path6));
		if (fw_write(path, s) == -1 || fw_write(path6, s6) == -1)
			goto out;
	} else {
		if ((*before = fw_current(x->backend)) == NULL)
			return -1;
		/* What rollback removes: the rules apply adds. */
		fw_path(x, "saved.firewalld", path, sizeof(path));
		if (fw_write(path, new) == -1)
			goto out;
	}
	fw_path(x, "saved.backend", path, sizeof(path));
	if (asprintf(&undo, "%s\n", fw_backends[x->backend]) == -1 ||
	    fw_write(path, undo) == -1)
		goto out;
	rc = 0;
out:
	free(s);
	free(s6);
	free(undo);
	return rc;
}

/* text with every from made to. */
static char *
fw_swap(const char *text, const char *from, const char *to)
{
	FILE		*fp;
	char		*buf = NULL;
	const char	*p;
	size_t		 len, fl = strlen(from);

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	while ((p = strstr(text, from)) != NULL) {
		fwrite(text, 1, (size_t)(p - text), fp);
		fputs(to, fp);
		text = p + fl;
	}
	fputs(text, fp);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Put a file of ufw's back from our copy. */
static int
fw_ufw_put(struct fw_ctx *x, const char *saved, const char *dest)
{
	char	 path[PATH_MAX], *s;
	int	 rc;

	fw_path(x, saved, path, sizeof(path));
	if ((s = fw_slurp(path)) == NULL) {
		fprintf(stderr, "flm: %s: %s\n", path, strerror(errno));
		return -1;
	}
	rc = fw_write(dest, s);
	free(s);
	return rc;
}

/* Restore the saved state now; the pending apply, if any, ends. */
static int
fw_restore(struct fw_ctx *x, const char *action)
{
	char	 path[PATH_MAX], *saved = NULL, *script = NULL, *err = NULL;
	char	*before, *after;
	FILE	*log;
	int	 rc = -1;

	log = fw_log_open(x, action);
	before = fw_current(x->backend);
	if (log != NULL)
		fw_log_text(log, "before", before);
	if (x->backend == FW_NFT) {
		fw_path(x, "saved.nft", path, sizeof(path));
		saved = fw_slurp(path);
		script = fw_nft_script(saved);
		fw_path(x, "rollback.nft", path, sizeof(path));
		if (script != NULL && fw_write(path, script) == 0) {
			rc = fw_nft_load(path, &err);
			if (rc == -1)
				fprintf(stderr, "flm: nft -f %s failed: %s",
				    path, err ? err : "\n");
		}
	} else if (x->backend == FW_UFW) {
		if (fw_ufw_put(x, "saved.ufw-user.rules",
		    "/etc/ufw/user.rules") == 0 && fw_ufw_put(x,
		    "saved.ufw-user6.rules", "/etc/ufw/user6.rules") == 0)
			rc = fw_run_lines(x->backend, "ufw\treload\n", NULL,
			    log ? log : stderr);
	} else {
		fw_path(x, "saved.firewalld", path, sizeof(path));
		if ((saved = fw_slurp(path)) != NULL) {
			char	*undo = fw_swap(saved, "--add-rich-rule=",
				    "--remove-rich-rule=");

			free(saved);
			if ((saved = undo) == NULL)
				goto done;
			rc = fw_run_lines(x->backend, saved, NULL,
			    log ? log : stderr);
			/* Made permanent by confirm: removed there too. */
			fw_path(x, "saved.permanent", path, sizeof(path));
			if (access(path, F_OK) == 0 && fw_run_lines(x->backend,
			    saved, "--permanent", log ? log : stderr) == 0)
				unlink(path);
		}
	}
done:
	after = fw_current(x->backend);
	if (log != NULL) {
		fw_log_text(log, "after", after);
		if (err != NULL && *err != '\0')
			fw_log_text(log, "nft", err);
	}
	fw_log_close(log, rc == 0 ? "ok: the saved state is loaded again" :
	    "FAILED: see the messages above");
	if (rc == 0) {
		fw_path(x, "pending", path, sizeof(path));
		unlink(path);
		fw_path(x, "saved.backend", path, sizeof(path));
		unlink(path);
	}
	free(before);
	free(after);
	free(saved);
	free(script);
	free(err);
	return rc;
}

static int
fw_apply(struct fw_ctx *x, const char *text, int timeout)
{
	struct fw_pending	 pd;
	char			 path[PATH_MAX], *before = NULL, *after;
	char			*script = NULL, *err = NULL;
	FILE			*log;
	int			 rc = -1;

	if (fw_pending_read(x, &pd)) {
		fprintf(stderr, "flm: an apply is waiting for confirm (rolled "
		    "back at %lld, in %lld s): run flm firewall confirm or flm "
		    "firewall rollback first\n", pd.deadline, pd.deadline -
		    (long long)time(NULL));
		return FLM_EX_BUSY;
	}
	if (fw_tool(x->backend, path, sizeof(path)) == -1)
		return FLM_EX_ERROR;
	if (fw_save(x, text, &before) == -1) {
		free(before);
		return FLM_EX_ERROR;
	}
	/*
	 * The timer first: from the moment anything is loaded it runs,
	 * whatever becomes of this process and its terminal.
	 */
	signal(SIGHUP, SIG_IGN);
	if (fw_arm(x, timeout) == -1) {
		free(before);
		return FLM_EX_ERROR;
	}
	log = fw_log_open(x, "apply");
	if (log != NULL)
		fw_log_text(log, "before", before);
	if (x->backend == FW_NFT) {
		fw_path(x, "apply.nft", path, sizeof(path));
		if ((script = fw_nft_script(text)) != NULL &&
		    fw_write(path, script) == 0 &&
		    (rc = fw_nft_load(path, &err)) == -1)
			fprintf(stderr, "flm: nft -f %s failed: %s", path,
			    err ? err : "\n");
	} else
		rc = fw_run_lines(x->backend, text, NULL, log ? log : stderr);
	if (rc == -1)
		fw_disarm(x);	/* nft: one transaction, nothing loaded */
	after = fw_current(x->backend);
	if (log != NULL) {
		fw_log_text(log, "after", after);
		if (err != NULL && *err != '\0')
			fw_log_text(log, "nft", err);
	}
	fw_log_close(log, rc == 0 ? "ok: loaded, rolled back unless "
	    "confirmed" : x->backend == FW_NFT ? "FAILED: nothing was "
	    "loaded" : "FAILED: rolled back");
	/* ufw and firewalld may have run some commands: undone. */
	if (rc == -1 && x->backend != FW_NFT)
		fw_restore(x, "rollback of a failed apply");
	free(before);
	free(after);
	free(script);
	free(err);
	if (rc == -1)
		return FLM_EX_ERROR;
	printf("flm: firewall rules loaded (%s); they are rolled back in %d "
	    "seconds unless you run: flm firewall confirm\n",
	    fw_backends[x->backend], timeout);
	return FLM_EX_OK;
}

static int
fw_confirm(struct fw_ctx *x)
{
	struct fw_pending	 pd;
	char			 path[PATH_MAX], *saved, *cur;
	FILE			*log;
	int			 rc = 0;

	if (!fw_pending_read(x, &pd)) {
		fprintf(stderr, "flm: no firewall apply is waiting for "
		    "confirm\n");
		return FLM_EX_ERROR;
	}
	x->backend = (enum fw_backend)pd.backend;
	log = fw_log_open(x, "confirm");
	cur = fw_current(x->backend);
	if (log != NULL)
		fw_log_text(log, "loaded", cur);
	free(cur);
	/* firewalld's rules were runtime ones: now permanent too. */
	if (x->backend == FW_FIREWALLD) {
		fw_path(x, "saved.firewalld", path, sizeof(path));
		if ((saved = fw_slurp(path)) == NULL ||
		    fw_run_lines(x->backend, saved, "--permanent",
		    log ? log : stderr) == -1)
			rc = -1;
		free(saved);
		fw_path(x, "saved.permanent", path, sizeof(path));
		if (rc == 0 && fw_write(path, "1\n") == -1)
			rc = -1;
	}
	fw_path(x, "pending", path, sizeof(path));
	if (rc == 0 && unlink(path) == -1)
		rc = -1;
	if (rc == 0)
		fw_timer_stop(&pd);
	fw_log_close(log, rc == 0 ? "ok: confirmed, kept" : "FAILED");
	if (rc == -1)
		return FLM_EX_ERROR;
	printf("flm: firewall rules confirmed; flm firewall rollback still "
	    "restores the state before them\n");
	return FLM_EX_OK;
}

static int
fw_rollback(struct fw_ctx *x)
{
	struct fw_pending	 pd;
	int			 b, pending;

	if ((b = fw_saved_backend(x)) == -1) {
		fprintf(stderr, "flm: nothing to roll back: no firewall apply "
		    "is saved\n");
		return FLM_EX_ERROR;
	}
	x->backend = (enum fw_backend)b;
	pending = fw_pending_read(x, &pd);
	if (fw_restore(x, "rollback") == -1)
		return FLM_EX_ERROR;
	if (pending)
		fw_timer_stop(&pd);
	printf("flm: firewall rolled back (%s)\n", fw_backends[x->backend]);
	return FLM_EX_OK;
}

/* ---- the command ---- */

int
cmd_firewall(struct cli *c, int argc, char **argv)
{
	struct fw_ctx		 x;
	struct fw_plan		 pl;
	struct flm_paths	 paths;
	char			 err[256], *text;
	const char		*verb = argv[1];
	int			 rc;
	size_t			 i;

	(void)argc;
	memset(&x, 0, sizeof(x));
	x.cli = c;
	x.lockfd = -1;
	x.backend = FW_NFT;
	if (c->backend != NULL) {
		for (i = 0; i < 3; i++)
			if (strcmp(c->backend, fw_backends[i]) == 0)
				x.backend = (enum fw_backend)i;
		if (strcmp(c->backend, fw_backends[x.backend]) != 0)
			cli_usage(c, "--backend: expected nftables, ufw or "
			    "firewalld");
	}
	if (strcmp(verb, "preview") != 0 && geteuid() != 0) {
		fprintf(stderr, "flm: firewall %s changes the host firewall: "
		    "run it as root\n", verb);
		return FLM_EX_PERM;
	}
	if (paths_init(&paths, c->dir, err, sizeof(err)) == -1) {
		fprintf(stderr, "flm: %s\n", err);
		return FLM_EX_USAGE;
	}
	if (strcmp(verb, "confirm") == 0 || strcmp(verb, "rollback") == 0) {
		if (fw_open_state(&x, paths.statedir) == -1)
			return FLM_EX_ERROR;
		return verb[0] == 'c' ? fw_confirm(&x) : fw_rollback(&x);
	}
	if ((rc = fw_plan(&x, &pl)) != FLM_EX_OK)
		return rc;
	if ((text = fw_text(x.backend, &pl)) == NULL) {
		policy_free(&pl.pol);
		fprintf(stderr, "flm: out of memory\n");
		return FLM_EX_ERROR;
	}
	if (strcmp(verb, "preview") == 0)
		rc = fw_preview(&x, &pl, text);
	else if (fw_open_state(&x, paths.statedir) == -1)
		rc = FLM_EX_ERROR;
	else
		rc = fw_apply(&x, text, c->timeout > 0 ? c->timeout :
		    FW_TIMEOUT_DEFAULT);
	free(text);
	policy_free(&pl.pol);
	return rc;
}
