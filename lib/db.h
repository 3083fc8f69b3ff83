/*
 * The one SQLite helper: open with FLM's pragmas, apply the compiled-in
 * migrations, and fall back to read-only safe mode when that fails.
 */
#ifndef FLM_DB_H
#define FLM_DB_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

struct db_migration {
	int		 version;
	const char	*name;
	const char	*sql;
};

#define DB_SECURE	0x01	/* secure_delete: for security.db */
#define DB_BUSY_MS	5000	/* a lock held that long is an error */

struct db {
	struct sqlite3	*h;
	char		 path[4096];
	int		 version;	/* newest migration applied */
	int		 safe_mode;
	char		 safe_reason[512];
};

/* migrations_gen.c, made from migrations/ by scripts/sql2c.sh */
extern const struct db_migration	 config_migrations[];
extern const size_t			 config_migrations_count;
extern const struct db_migration	 security_migrations[];
extern const size_t			 security_migrations_count;

int		 db_open(struct db *, const char *, int, int,
		    const struct db_migration *, size_t);
void		 db_close(struct db *);
int		 db_writable(struct db *, char *, size_t);
const char	*db_strerror(struct db *, int);
int		 db_quick_check(struct db *, char *, size_t);
int		 db_harden(struct sqlite3 *);
uint8_t		*db_image(struct sqlite3 *, size_t *);
struct sqlite3	*db_image_open(uint8_t *, size_t);
void		 db_image_unwal(uint8_t *, size_t);

#endif
