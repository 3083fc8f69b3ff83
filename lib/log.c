#include "config.h"

#include <errno.h>
#include <stdint.h>
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

/*
 * The length of the valid UTF-8 sequence at s (of at most len bytes),
 * 0 if none or a C1 control: what may reach a terminal as it is.
 */
size_t
log_utf8_len(const unsigned char *s, size_t len)
{
	uint32_t	 cp;
	size_t		 n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* the NUL ends it here too */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode; C1 (CSI is 0x9b). */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
		return 0;
	return n;
}

/*
 * vis(3)-style, for text from a less trusted process on its way to a
 * terminal or a log: control characters, DEL, C1 controls, invalid
 * UTF-8 and the backslash itself become \n, \r, \t, \\ or \xHH, so a
 * line can neither forge another line nor drive a terminal.  Valid
 * UTF-8 passes.  A result that does not fit dst is cut and ends "...".
 */
void
log_escape(char *dst, size_t dstsz, const char *src)
{
	const unsigned char	*s = (const unsigned char *)src;
	char			 esc[8];
	size_t			 o = 0, n, used;

	if (dstsz < 4) {
		if (dstsz > 0)
			*dst = '\0';
		return;
	}
	while (*s != '\0') {
		used = 1;
		if (*s >= 0x20 && *s < 0x7f && *s != '\\') {
			esc[0] = (char)*s;
			n = 1;
		} else if (*s == '\\' || *s == '\n' || *s == '\r' ||
		    *s == '\t') {
			esc[0] = '\\';
			esc[1] = *s == '\\' ? '\\' : *s == '\n' ? 'n' :
			    *s == '\r' ? 'r' : 't';
			n = 2;
		} else if ((n = log_utf8_len(s, strnlen((const char *)s,
		    4))) > 0) {
			memcpy(esc, s, n);
			used = n;
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", *s);
			n = 4;
		}
		if (o + n > dstsz - 4) {	/* room for "..." and the NUL */
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, esc, n);
		o += n;
		s += used;
	}
	dst[o] = '\0';
}

/*
 * flmd: a line a child sent, under the child's name and pid, escaped.
 * In the foreground the line starts with its priority as <N>, the
 * sd-daemon(3) prefix, so that journald files it as syslog would.
 */
void
log_relay(int pri, const char *name, long pid, const char *msg)
{
	char	 safe[LOG_RELAY_MAX];
	char	 line[LOG_RELAY_MAX + 128];
	int	 l;

	log_escape(safe, sizeof(safe), msg);
	if (!log_fg) {
		syslog(pri, "%s[%ld]: %s", name, pid, safe);
		return;
	}
	l = snprintf(line, sizeof(line), "<%d>%s[%ld]: %s\n", pri, name, pid,
	    safe);
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
