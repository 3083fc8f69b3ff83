/*
 * flm migrate legacy's readers (lib/legacy.h).  They run in flm, with
 * the admin's own rights, on the admin's files: nothing here touches
 * an FLM database.  Nothing is kept of a bad line but where it is and
 * what is wrong with it: never a key's text.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "apikey.h"
#include "legacy.h"

static int
legacy_b64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* $2a$, $2b$ or $2y$, a cost of 04-31, 53 characters of bcrypt's
 * base64 (22 of salt, 31 of hash). */
int
legacy_bcrypt_valid(const char *h)
{
	int	 cost;
	size_t	 i;

	if (strlen(h) != LEGACY_BCRYPT_LEN || h[0] != '$' || h[1] != '2' ||
	    (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' ||
	    !isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]) ||
	    h[6] != '$')
		return 0;
	cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31)
		return 0;
	for (i = 7; i < LEGACY_BCRYPT_LEN; i++)
		if (!legacy_b64((unsigned char)h[i]))
			return 0;
	return 1;
}

void
legacy_error(struct legacy_set *s, const char *where, const char *fmt, ...)
{
	char	 msg[512], *line, **n;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&line, "%s: %s", where, msg) == -1)
		return;
	if ((n = reallocarray(s->errors, s->nerrors + 1, sizeof(*n))) == NULL) {
		free(line);
		return;
	}
	s->errors = n;
	s->errors[s->nerrors++] = line;
}

/*
 * OLLAMA_HOST as Ollama reads it: [http:// | https://]HOST[:PORT],
 * port 11434 by default; a wildcard or empty host is reached on
 * loopback.  The URL engines.ollama.url takes, into buf; -1 if it is
 * not one.
 */
int
legacy_ollama_url(const char *v, char *buf, size_t sz)
{
	const char	*scheme = "http", *p, *colon;
	char		 host[256], *end;
	long		 port = 11434;
	size_t		 hl, i;

	if (strncmp(v, "http://", 7) == 0)
		v += 7;
	else if (strncmp(v, "https://", 8) == 0) {
		v += 8;
		scheme = "https";
		port = 443;
	}
	if (strchr(v, '/') != NULL && strcmp(strchr(v, '/'), "/") != 0)
		return -1;		/* a path: not an address */
	hl = strcspn(v, "/");
	if (*v == '[') {		/* [v6]:port */
		if ((p = memchr(v, ']', hl)) == NULL)
			return -1;
		colon = p + 1 < v + hl && p[1] == ':' ? p + 1 : NULL;
		if (p + 1 < v + hl && colon == NULL)
			return -1;
	} else {
		colon = memchr(v, ':', hl);
		if (colon != NULL && memchr(colon + 1, ':', hl - (size_t)(colon
		    + 1 - v)) != NULL)
			return -1;	/* a bare IPv6 address */
	}
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || (size_t)(end - v) != hl || errno != 0 ||
		    port < 1 || port > 65535)
			return -1;
		hl = (size_t)(colon - v);
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, v, hl);
	host[hl] = '\0';
	for (i = 0; i < hl; i++)
		if (!isalnum((unsigned char)host[i]) &&
		    strchr(".-_[]:", host[i]) == NULL)
			return -1;
	if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "[::]") == 0)
		snprintf(host, sizeof(host), "[::1]");
	if ((size_t)snprintf(buf, sz, "%s://%s:%ld", scheme, host, port) >= sz)
		return -1;
	return 0;
}

static struct legacy_key *
legacy_add(struct legacy_set *s, const char *where)
{
	struct legacy_key	*n;

	if ((n = reallocarray(s->keys, s->nkeys + 1, sizeof(*n))) == NULL)
		return NULL;
	s->keys = n;
	n = &s->keys[s->nkeys++];
	memset(n, 0, sizeof(*n));
	snprintf(n->where, sizeof(n->where), "%s", where);
	return n;
}

/* One line of at most LEGACY_LINE_MAX - 1 bytes, without its end;
 * 0 at EOF, -1 if too long (the rest is skipped). */
static int
legacy_line(FILE *f, char *buf, size_t sz)
{
	size_t	 n;
	int	 c;

	if (fgets(buf, (int)sz, f) == NULL)
		return 0;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f)) {
		while ((c = fgetc(f)) != EOF && c != '\n')
			;
		explicit_bzero(buf, sz);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 1;
}

/* The default label of a keys file's line: the file's name (label
 * characters only) and the line number. */
static void
legacy_default_label(const char *path, unsigned long line, char *buf,
    size_t sz)
{
	const char	*base = strrchr(path, '/');
	char		 b[40];
	size_t		 i, n = 0;

	base = base != NULL ? base + 1 : path;
	for (i = 0; base[i] != '\0' && n < sizeof(b) - 1; i++)
		if (isalnum((unsigned char)base[i]) || base[i] == '-' ||
		    base[i] == '_' || base[i] == '.')
			b[n++] = base[i];
	b[n] = '\0';
	snprintf(buf, sz, "%s-%lu", n > 0 ? b : "keys", line);
}

/*
 * A keys file: one key a line, or "LABEL KEY"; blank lines and lines
 * starting # are skipped.  0, or -1 if the file could not be read.
 */
int
legacy_keys_file(struct legacy_set *s, const char *path, FILE *f)
{
	char			 buf[LEGACY_LINE_MAX], where[LEGACY_WHERE_MAX];
	char			*tok[3], *p, *last = NULL;
	struct legacy_key	*k;
	unsigned long		 line = 0;
	int			 r, n;

	while ((r = legacy_line(f, buf, sizeof(buf))) != 0) {
		snprintf(where, sizeof(where), "%s:%lu", path, ++line);
		if (r == -1) {
			legacy_error(s, where, "line too long");
			continue;
		}
		p = buf + strspn(buf, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		for (n = 0, p = strtok_r(p, " \t", &last); p != NULL && n < 3;
		    p = strtok_r(NULL, " \t", &last))
			tok[n++] = p;
		if (n == 3) {
			legacy_error(s, where, "expected KEY or LABEL KEY");
			explicit_bzero(buf, sizeof(buf));
			continue;
		}
		p = tok[n - 1];
		if (strncmp(p, FLM_KEY_PREFIX, 4) == 0)
			legacy_error(s, where, "an flm key (flm_...): it is "
			    "one already, nothing to import");
		else if (!apikey_legacy_valid(p, strlen(p)))
			legacy_error(s, where, "not a usable key: 1-%d "
			    "printable characters without blanks", FLM_TOKEN_MAX);
		else if (n == 2 && !apikey_label_valid(tok[0]))
			legacy_error(s, where, "label '%.64s': use 1-64 "
			    "characters of A-Z a-z 0-9 . _ -", tok[0]);
		else if ((k = legacy_add(s, where)) == NULL ||
		    (k->secret = strdup(p)) == NULL) {
			explicit_bzero(buf, sizeof(buf));
			return -1;
		} else {
			k->kind = LEGACY_PLAIN;
			if (n == 2)
				snprintf(k->label, sizeof(k->label), "%s",
				    tok[0]);
			else
				legacy_default_label(path, line, k->label,
				    sizeof(k->label));
		}
		explicit_bzero(buf, sizeof(buf));
	}
	return ferror(f) ? -1 : 0;
}

/* "text", 'text' or text: the quotes gone, in place. */
static char *
legacy_unquote(char *v)
{
	size_t	 n = strlen(v);

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = '\0';
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

static int
legacy_name_valid(const char *n, size_t len)
{
	size_t	 i;

	if (len == 0 || isdigit((unsigned char)n[0]))
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '_')
			return 0;
	return 1;
}

static void
legacy_origins(struct legacy_set *s, const char *where, char *v)
{
	char	*o, *last = NULL, **n;
	size_t	 i;

	for (i = 0; i < s->norigins; i++)
		free(s->origins[i]);
	free(s->origins);
	s->origins = NULL;
	s->norigins = 0;
	snprintf(s->origins_where, sizeof(s->origins_where), "%s", where);
	for (o = strtok_r(v, ",", &last); o != NULL;
	    o = strtok_r(NULL, ",", &last)) {
		o += strspn(o, " \t");
		o = legacy_unquote(o);
		if (*o == '\0')
			continue;
		if ((n = reallocarray(s->origins, s->norigins + 1,
		    sizeof(*n))) == NULL)
			return;
		s->origins = n;
		if ((s->origins[s->norigins] = strdup(o)) != NULL)
			s->norigins++;
	}
}

/* NAME=VALUE of an environment file. */
static void
legacy_assign(struct legacy_set *s, const char *where, char *a)
{
	char	*eq = strchr(a, '='), *v, url[300];

	if (eq == NULL || !legacy_name_valid(a, (size_t)(eq - a))) {
		legacy_error(s, where, "expected NAME=VALUE");
		return;
	}
	*eq = '\0';
	v = legacy_unquote(eq + 1);
	if (strcmp(a, "OLLAMA_HOST") == 0) {
		if (legacy_ollama_url(v, url, sizeof(url)) == -1) {
			legacy_error(s, where, "OLLAMA_HOST '%.100s': expected "
			    "[http://|https://]HOST[:PORT]", v);
			return;
		}
		free(s->ollama_url);
		s->ollama_url = strdup(url);
		snprintf(s->ollama_where, sizeof(s->ollama_where), "%s", where);
	} else if (strcmp(a, "OLLAMA_ORIGINS") == 0)
		legacy_origins(s, where, v);
	/* Other variables (OLLAMA_MODELS, ...) are no business of ours. */
}

/*
 * An environment file: NAME=VALUE lines (an "export " before them,
 * quotes around the value), or a systemd unit or drop-in's
 * Environment= lines, each with one or more "NAME=VALUE" words.
 */
int
legacy_env_file(struct legacy_set *s, const char *path, FILE *f)
{
	char		 buf[LEGACY_LINE_MAX], where[LEGACY_WHERE_MAX];
	char		*p, *w, *q;
	unsigned long	 line = 0;
	int		 r;

	while ((r = legacy_line(f, buf, sizeof(buf))) != 0) {
		snprintf(where, sizeof(where), "%s:%lu", path, ++line);
		if (r == -1) {
			legacy_error(s, where, "line too long");
			continue;
		}
		p = buf + strspn(buf, " \t");
		if (*p == '\0' || *p == '#' || *p == ';' || *p == '[')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p += 7 + strspn(p + 7, " \t");
		if (strncmp(p, "Environment=", 12) != 0) {
			legacy_assign(s, where, p);
			continue;
		}
		/* Words, each maybe in double quotes. */
		for (p += 12; *(p += strspn(p, " \t")) != '\0'; p = q) {
			if (*p == '"') {
				w = ++p;
				if ((q = strchr(p, '"')) == NULL) {
					legacy_error(s, where, "unbalanced "
					    "quotes");
					break;
				}
				*q++ = '\0';
			} else {
				w = p;
				q = p + strcspn(p, " \t");
				if (*q != '\0')
					*q++ = '\0';
			}
			legacy_assign(s, where, w);
		}
	}
	return ferror(f) ? -1 : 0;
}

/* What scheme a hash that is not bcrypt is, for the message. */
static const char *
legacy_scheme(const char *h)
{
	if (strncmp(h, "$1$", 3) == 0)
		return "md5-crypt ($1$)";
	if (strncmp(h, "$5$", 3) == 0)
		return "sha256-crypt ($5$)";
	if (strncmp(h, "$6$", 3) == 0)
		return "sha512-crypt ($6$)";
	if (strncmp(h, "$argon2", 7) == 0)
		return "argon2 ($argon2...$)";
	if (strncmp(h, "$2", 2) == 0)
		return "a malformed bcrypt hash";
	return "an unknown scheme";
}

/*
 * The tokens table of a legacy gateway's SQLite database, opened
 * read-only: tokens(id, name, hash), name unique, hash bcrypt.
 */
int
legacy_tokens_db(struct legacy_set *s, const char *path)
{
	sqlite3			*db = NULL;
	sqlite3_stmt		*st = NULL;
	struct legacy_key	*k;
	char			 where[LEGACY_WHERE_MAX];
	const char		*name, *hash;
	int			 rc;

	if ((rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(db, "SELECT id, name, hash FROM tokens "
	    "ORDER BY id", -1, &st, NULL)) != SQLITE_OK) {
		legacy_error(s, path, "cannot read its tokens (id, name, hash) "
		    "table: %s", db != NULL ? sqlite3_errmsg(db) :
		    sqlite3_errstr(rc));
		sqlite3_close(db);
		return 0;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(where, sizeof(where), "%s:id %lld", path,
		    (long long)sqlite3_column_int64(st, 0));
		name = (const char *)sqlite3_column_text(st, 1);
		hash = (const char *)sqlite3_column_text(st, 2);
		if (name == NULL || !apikey_label_valid(name))
			legacy_error(s, where, "name '%.64s': use 1-64 "
			    "characters of A-Z a-z 0-9 . _ -", name ? name :
			    "");
		else if (hash == NULL || !legacy_bcrypt_valid(hash))
			legacy_error(s, where, "hash of %s: only bcrypt "
			    "($2a$, $2b$, $2y$) is supported",
			    hash ? legacy_scheme(hash) : "nothing");
		else if ((k = legacy_add(s, where)) == NULL)
			break;
		else {
			k->kind = LEGACY_BCRYPT;
			snprintf(k->label, sizeof(k->label), "%s", name);
			snprintf(k->hash, sizeof(k->hash), "%s", hash);
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		legacy_error(s, path, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* --from KIND:PATH: read it into s.  -1 for a usage error. */
int
legacy_source(struct legacy_set *s, const char *from)
{
	const char	*path = strchr(from, ':');
	FILE		*f;
	int		 rc;

	if (path == NULL || path[1] == '\0')
		return -1;
	path++;
	/* A database that cannot be read is reported in s, as a file. */
	if (strncmp(from, "tokens-db:", 10) == 0) {
		(void)legacy_tokens_db(s, path);
		return 0;
	}
	if (strncmp(from, "keys-file:", 10) != 0 &&
	    strncmp(from, "ollama-env:", 11) != 0)
		return -1;
	if ((f = fopen(path, "r")) == NULL) {
		legacy_error(s, path, "%s", strerror(errno));
		return 0;
	}
	rc = *from == 'k' ? legacy_keys_file(s, path, f) :
	    legacy_env_file(s, path, f);
	if (rc == -1)
		legacy_error(s, path, "read error");
	fclose(f);
	return 0;
}

/* Labels used twice, a key given twice: reported where seen again. */
void
legacy_check(struct legacy_set *s)
{
	size_t	 i, j;

	for (i = 0; i < s->nkeys; i++)
		for (j = 0; j < i; j++) {
			if (strcmp(s->keys[i].label, s->keys[j].label) == 0) {
				legacy_error(s, s->keys[i].where, "duplicate "
				    "label '%s' (first at %s)",
				    s->keys[i].label, s->keys[j].where);
				break;
			}
			if (s->keys[i].secret != NULL &&
			    s->keys[j].secret != NULL &&
			    strcmp(s->keys[i].secret, s->keys[j].secret) == 0) {
				legacy_error(s, s->keys[i].where, "the same "
				    "key as %s", s->keys[j].where);
				break;
			}
		}
}

void
legacy_free(struct legacy_set *s)
{
	size_t	 i;

	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i].secret != NULL) {
			explicit_bzero(s->keys[i].secret,
			    strlen(s->keys[i].secret));
			free(s->keys[i].secret);
		}
	free(s->keys);
	for (i = 0; i < s->norigins; i++)
		free(s->origins[i]);
	free(s->origins);
	for (i = 0; i < s->nerrors; i++)
		free(s->errors[i]);
	free(s->errors);
	free(s->ollama_url);
	memset(s, 0, sizeof(*s));
}

/* The plain keys ({keys: [{secret}]}) a request holds, zeroed. */
void
legacy_json_wipe(struct json_object *req)
{
	struct json_object	*keys, *k, *v;
	size_t			 i, n;

	if (!json_object_object_get_ex(req, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array))
		return;
	n = json_object_array_length(keys);
	for (i = 0; i < n; i++) {
		k = json_object_array_get_idx(keys, i);
		if (json_object_is_type(k, json_type_object) &&
		    json_object_object_get_ex(k, "secret", &v) &&
		    json_object_is_type(v, json_type_string))
			explicit_bzero((char *)json_object_get_string(v),
			    (size_t)json_object_get_string_len(v));
	}
}
