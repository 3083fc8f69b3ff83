/*
 * flm migrate legacy: what other gateways leave behind, read and
 * checked (lib/legacy.c).  Keys files (llama.cpp --api-key-file, vLLM
 * --api-key values), a tokens table of bcrypt hashes (SQLite), an
 * Ollama environment file.  Every problem is reported with its place
 * (PATH:LINE); a key's text is never part of a message.
 */
#ifndef FLM_LEGACY_H
#define FLM_LEGACY_H

#include <stddef.h>
#include <stdio.h>

#define LEGACY_BCRYPT_LEN	60
#define LEGACY_LABEL_MAX	64
#define LEGACY_WHERE_MAX	1100
#define LEGACY_LINE_MAX		4096

enum legacy_kind {
	LEGACY_PLAIN = 0,
	LEGACY_BCRYPT
};

struct legacy_key {
	char		 label[LEGACY_LABEL_MAX + 1];
	enum legacy_kind kind;
	char		*secret;	/* plain: wiped by legacy_free */
	char		 hash[LEGACY_BCRYPT_LEN + 1];	/* bcrypt */
	char		 where[LEGACY_WHERE_MAX];	/* PATH:LINE */
};

struct legacy_set {
	struct legacy_key *keys;
	size_t		 nkeys;
	char		*ollama_url;	/* OLLAMA_HOST, as engines.ollama.url */
	char		 ollama_where[LEGACY_WHERE_MAX];
	char		**origins;	/* OLLAMA_ORIGINS */
	size_t		 norigins;
	char		 origins_where[LEGACY_WHERE_MAX];
	char		**errors;	/* "PATH:LINE: what is wrong" */
	size_t		 nerrors;
};

int	 legacy_bcrypt_valid(const char *);
int	 legacy_ollama_url(const char *, char *, size_t);
void	 legacy_error(struct legacy_set *, const char *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	 legacy_keys_file(struct legacy_set *, const char *, FILE *);
int	 legacy_env_file(struct legacy_set *, const char *, FILE *);
int	 legacy_tokens_db(struct legacy_set *, const char *);
int	 legacy_source(struct legacy_set *, const char *);
void	 legacy_check(struct legacy_set *);
void	 legacy_free(struct legacy_set *);
struct json_object;
void	 legacy_json_wipe(struct json_object *);

#endif
