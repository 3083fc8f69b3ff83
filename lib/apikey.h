#ifndef FLM_APIKEY_H
#define FLM_APIKEY_H

#include <stddef.h>

#include "flm_msg.h"

int	apikey_parse(const char *, size_t, char [FLM_KEY_ID_LEN + 1],
	    const char **);
int	apikey_label_valid(const char *);
int	apikey_id_valid(const char *);
int	apikey_legacy_valid(const char *, size_t);

#endif
