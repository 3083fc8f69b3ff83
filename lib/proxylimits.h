/*
 * The proxy's configurable limits: settings proxy.NAME in config.db,
 * checked by flmd when set and by flm-proxyd when received.
 */
#ifndef FLM_PROXYLIMITS_H
#define FLM_PROXYLIMITS_H

struct limit_def {
	const char	*name;		/* setting proxy.NAME */
	long long	 min, max, def;
	const char	*unit;
};

extern const struct limit_def	 limit_defs[];
extern const int		 limit_ndefs;

const struct limit_def	*limit_find(const char *);
int			 limit_parse(const struct limit_def *, const char *,
			    long long *);

#endif
