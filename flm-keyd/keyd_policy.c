/*
 * The security policy in security.db: checked with lib/policy.c before
 * it is stored, stored spelled out in full, and read back the same way
 * so that what proxyd enforces is what `flm security policy show` says.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "db.h"
#include "keyd.h"
#include "log.h"
#include "policy.h"

/* The text of the last policy row whose MAC held, for when one fails. */
static char	*policy_good;

static void
policy_keep(const char *text)
{
	if (policy_good != NULL && strcmp(policy_good, text) == 0)
		return;
	free(policy_good);
	if ((policy_good = strdup(text)) == NULL)
		fatal("%s", __func__);
}

void
keyd_policy_free(void)
{
	free(policy_good);
	policy_good = NULL;
}

/*
 * The stored policy, normalised, and when it changed.  One that no
 * longer parses (edited by hand) gives the defaults: loopback only.
 * One whose MAC fails (written without the master key) is not applied:
 * the last good one stays, or the defaults; res says "altered".
 */
int
keyd_policy_get(struct db *db, struct json_object **res, char *err,
    size_t errsz)
{
	struct policy	 pol;
	sqlite3_stmt	*st;
	char		 why[256];
	const char	*text = "{}", *when = NULL;
	int		 rc, altered = 0;

	if ((rc = sqlite3_prepare_v2(db->h, "SELECT policy_json, updated_at, "
	    "mac FROM security_policies WHERE id = 'default'", -1, &st,
	    NULL)) != SQLITE_OK) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(st, 0);
		when = (const char *)sqlite3_column_text(st, 1);
		if (keyd_policy_intact(st, 0, 2))
			policy_keep(text);
		else {
			altered = 1;
			text = policy_good != NULL ? policy_good : "{}";
			log_warnx("the security policy in security.db fails "
			    "its MAC (changed outside flm-keyd): not applied; "
			    "enforcing %s", policy_good != NULL ? "the last "
			    "good one" : "the default (loopback only)");
			keyd_integrity_changed();
		}
	} else if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s", db_strerror(db, rc));
		sqlite3_finalize(st);
		return -1;
	}
	if (policy_parse_text(text, strlen(text), &pol, why,
	    sizeof(why)) == -1) {
		log_warnx("the stored security policy is invalid (%s); "
		    "enforcing the default (loopback only)", why);
		policy_defaults(&pol);
	}
	*res = json_object_new_object();
	json_object_object_add(*res, "policy", policy_json(&pol));
	json_object_object_add(*res, "updated_at", when == NULL ? NULL :
	    json_object_new_string(when));
	if (altered)
		json_object_object_add(*res, "integrity",
		    json_object_new_string("altered"));
	sqlite3_finalize(st);
	policy_free(&pol);
	return 0;
}

int
keyd_policy_set(struct db *db, struct json_object *req,
    struct json_object **res, char *err, size_t errsz)
{
	struct policy		 pol;
	struct json_object	*in, *norm;
	sqlite3_stmt		*st;
	const char		*text;
	uint8_t			 mac[KEYD_ROW_MAC_LEN];
	int			 rc;

	if (!json_object_object_get_ex(req, "policy", &in)) {
		snprintf(err, errsz, "no policy given");
		return -1;
	}
	if (policy_parse(in, &pol, err, errsz) == -1)
		return -1;
	norm = policy_json(&pol);
	policy_free(&pol);
	text = json_object_to_json_string_ext(norm, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (db_writable(db, err, errsz) == -1) {
		json_object_put(norm);
		return -1;
	}
	keyd_policy_mac(text, mac);
	if ((rc = sqlite3_prepare_v2(db->h, "INSERT INTO security_policies "
	    "(id, policy_json, updated_at, mac) VALUES ('default', ?1, "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2) ON CONFLICT (id) DO "
	    "UPDATE SET policy_json = excluded.policy_json, updated_at = "
	    "excluded.updated_at, mac = excluded.mac", -1, &st, NULL)) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 2, mac, sizeof(mac), SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	json_object_put(norm);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "the policy was not stored: %s",
		    db_strerror(db, rc));
		return -1;
	}
	log_info("security policy changed");
	return keyd_policy_get(db, res, err, errsz);
}
