#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_fg = 1;
static void	(*log_sinkfn)(int, const char *);
static int	 log_insink;
static int	 log_verbose;
static char	 log_name[32] = "flm";

void
log_init(int foreground, int verbose)
{
	log_fg = foreground;
	log_verbose = verbose;
	if (!log_fg)
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_procname(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
	if (!log_fg) {
		closelog();
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

/*
 * A sandboxed child must not reopen syslog's socket (its filter
 * forbids socket(2)), so in the background it hands lines to flmd.
 */
void
log_sink(void (*fn)(int, const char *))
{
	log_sinkfn = fn;
}

/* flmd: a line a child sent, under the child's name and pid. */
void
log_relay(int pri, const char *name, long pid, const char *msg)
{
	char	 line[1200];
	int	 l;

	if (!log_fg) {
		syslog(pri, "%s[%ld]: %s", name, pid, msg);
		return;
	}
	l = snprintf(line, sizeof(line), "%s[%ld]: %s\n", name, pid, msg);
	if (l > 0)
		(void)!write(STDERR_FILENO, line,
		    (size_t)l < sizeof(line) ? (size_t)l : sizeof(line) - 1);
}

int
log_getverbose(void)
{
	return log_verbose;
}

static void
log_vwrite(int pri, const char *fmt, va_list ap, int errnum)
{
	char	 msg[1024];
	int	 n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (errnum && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
	if (log_sinkfn != NULL && !log_insink) {
		log_insink = 1;		/* the sink may log: not again */
		log_sinkfn(pri, msg);
		log_insink = 0;
		return;
	}
	if (log_fg) {
		/* One write(2) per line so lines from several processes do not mix. */
		char	 line[1100];
		int	 l;

		l = snprintf(line, sizeof(line), "%s[%ld]: %s\n", log_name,
		    (long)getpid(), msg);
		if (l > 0)
			(void)!write(STDERR_FILENO, line,
			    (size_t)l < sizeof(line) ? (size_t)l : sizeof(line) - 1);
	} else
		syslog(pri, "%s", msg);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
