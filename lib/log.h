/*
 * One log API for every FLM process: stderr in the foreground,
 * syslog(3) otherwise, each line prefixed with the process name.
 */
#ifndef FLM_LOG_H
#define FLM_LOG_H

#include <stdarg.h>
#include <stddef.h>

void	log_init(int foreground, int verbose);
void	log_sink(void (*)(int, const char *));
/* The longest escaped child line flmd logs, NUL included. */
#define LOG_RELAY_MAX	1024
void	log_escape(char *, size_t, const char *);
size_t	log_utf8_len(const unsigned char *, size_t);
void	log_relay(int, const char *, long, const char *);
void	log_procname(const char *);
int	log_getverbose(void);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
