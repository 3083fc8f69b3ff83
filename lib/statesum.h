/*
 * The state flm check compares (lib/statesum.c): {"keys": {count,
 * labels}, "policy": {...}, "proxies": [{id, bind, port, mode}]}.
 */
#ifndef FLM_STATESUM_H
#define FLM_STATESUM_H

struct json_object;
struct sqlite3;

struct json_object	*statesum_keys(struct sqlite3 *);
struct json_object	*statesum_policy(struct sqlite3 *);
struct json_object	*statesum_proxies(struct sqlite3 *);

#endif
