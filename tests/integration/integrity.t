#!/bin/sh
# Rows that decide who gets in carry keyd's MAC (issue 12 item 4a).
# Whoever can write security.db without the master key (here: sqlite3
# on the real file, with keyd running or stopped) cannot insert a key,
# clear revoked_at, extend expires_at or widen the policy: each is
# refused, logged and shown in flm status; an untouched suite works.
. "$(dirname "$0")/lib.sh"

plan 24

F() { "$FLM" -D "$STATE" "$@"; }
DB() { sqlite3 "$STATE/keyd/security.db" "$@"; }
PORT=$(free_port)
U=http://127.0.0.1:$PORT
code() { http_code "$U/v1/models" -H "Authorization: Bearer $1"; }
integrity() { status_json | jq -c '.processes[1].database.integrity'; }
logged() { grep -q "$1" "$STATE/flmd.log"; }
# preflight ORIGIN: the status of a CORS preflight, no key.
preflight() {
	curl -s -o /dev/null -m 5 -w '%{http_code}' -X OPTIONS \
	    -H "Origin: $1" -H "Access-Control-Request-Method: POST" \
	    "$U/v1/chat/completions"
}

check "suite starts" suite_start
F proxy start --port "$PORT" >/dev/null
GOOD=$(F api-keys create --label good --json | jq -r .key)
check "an untouched suite: the key works" [ "$(code "$GOOD")" = 200 ]
checkx "status: no row fails its MAC, the policy is ok" \
    'json_has "$(integrity)" ".bad_keys == 0 and .policy == \"ok\""'
check "every row keyd wrote has its MAC" \
    [ "$(DB 'SELECT count(*) FROM api_keys WHERE mac IS NULL')" = 0 ]

# 1. Clear revoked_at with keyd running.
REV=$(F api-keys create --label rev --json | jq -r .key)
REV_ID=$(echo "$REV" | cut -d_ -f2)
F api-keys revoke rev >/dev/null
DB "UPDATE api_keys SET revoked_at = NULL WHERE id = '$REV_ID'"
check "a key un-revoked with sqlite3 is still refused" \
    [ "$(code "$REV")" = 401 ]
check "keyd logs the row that fails its MAC" \
    logged "key $REV_ID: its row in security.db fails its MAC"
bad1() { [ "$(integrity | jq .bad_keys)" = 1 ]; }
check "flm status counts it" wait_until 3000 bad1
check "flm status on a terminal says so" \
    sh -c "script -qc '$FLM -D $STATE status' /dev/null |
    grep -q '1 API key rows in security.db fail their MAC'"
check "flm api-keys list shows it refused" \
    sh -c "$FLM -D $STATE api-keys list --json | jq -e '.[] |
    select(.label == \"rev\") | .state == \"refused\" and
    .integrity == \"altered\"' >/dev/null"

# 2. Extend expires_at of an expired key.
EXP=$(F api-keys create --label exp --expires 1s --json | jq -r .key)
EXP_ID=$(echo "$EXP" | cut -d_ -f2)
sleep 1.2
DB "UPDATE api_keys SET expires_at = '2099-01-01T00:00:00.000Z' WHERE id = '$EXP_ID'"
check "an expired key given a later expires_at is still refused" \
    [ "$(code "$EXP")" = 401 ]

# 3. A key row inserted with a hash whose secret is known: the secret of
# a key made for it, whose own row is then deleted.
MINE=$(F api-keys create --label mine --json | jq -r .key)
MINE_ID=$(echo "$MINE" | cut -d_ -f2)
HASH=$(DB "SELECT hash FROM api_keys WHERE id = '$MINE_ID'")
DB "DELETE FROM api_keys WHERE id = '$MINE_ID'"
FORGED_ID=f0f0f0f0f0f0f0f0
DB "INSERT INTO api_keys (id, label, hash) VALUES ('$FORGED_ID', 'forged', '$HASH')"
FORGED=flm_${FORGED_ID}_$(echo "$MINE" | cut -d_ -f3-)
check "a key row inserted with sqlite3 is refused" \
    [ "$(code "$FORGED")" = 401 ]
check "and logged" logged "key $FORGED_ID: its row in security.db fails its MAC"
check "the good key still works" [ "$(code "$GOOD")" = 200 ]

# Revoking a forged row is the cure: it is sealed as revoked.
F api-keys revoke forged >/dev/null
bad2() { [ "$(integrity | jq .bad_keys)" = 2 ]; }
check "revoking the forged key takes it off the count (rev, exp remain)" \
    wait_until 12000 bad2

# 4. Widen the policy: with keyd running the last good one stays.
F security cors --origins https://app.example >/dev/null
DB "UPDATE security_policies SET policy_json =
    replace(policy_json, 'https://app.example', 'https://evil.example')"
kill -KILL "$(proc_pid flm-proxyd)"
proxy_back() { [ "$(preflight https://app.example)" = 204 ]; }
check "keyd keeps the last good policy for a new proxyd" \
    wait_until 5000 proxy_back
check "the origin written with sqlite3 is refused" \
    [ "$(preflight https://evil.example)" = 403 ]
check "keyd logs the altered policy" \
    logged "security policy in security.db fails its MAC"
altered() { [ "$(integrity | jq -r .policy)" = altered ]; }
check "flm status says the policy is altered" wait_until 3000 altered
check "flm status on a terminal says the policy is altered and not applied" \
    sh -c "script -qc '$FLM -D $STATE status' /dev/null |
    grep -q 'flm-keyd: the security policy in .*security.db was altered outside flm-keyd and is not applied'"

# ... and with keyd stopped, a restart enforces the default.
suite_restart "$PORT"
check "after a restart the altered policy is not applied either" \
    [ "$(preflight https://evil.example)" = 403 ]
check "flm security policy show says it is altered" \
    sh -c "$FLM -D $STATE security policy show --json |
    jq -e '.integrity == \"altered\"' >/dev/null"
suite_stop

# 5. A database from before row MACs (migration 004 undone, no audit
# anchor yet): its rows are sealed once, on the next start.
check "a fresh suite for an older database" suite_start
F proxy start --port "$PORT" >/dev/null
OLD=$(F api-keys create --label old --json | jq -r .key)
suite_stop
# Back to version 3: migrations 005 (TLS) to 010 (master-key rotation) undone
# as well.
DB "DROP INDEX api_keys_digest; DROP INDEX api_keys_bcrypt;
    ALTER TABLE api_keys DROP COLUMN digest; ALTER TABLE api_keys DROP COLUMN legacy;
    ALTER TABLE api_keys DROP COLUMN mac; ALTER TABLE api_keys DROP COLUMN scope;
    ALTER TABLE security_policies DROP COLUMN mac; DROP TABLE keyd_state;
    ALTER TABLE audit_logs DROP COLUMN cert_serial;
    ALTER TABLE audit_logs DROP COLUMN cert_label; DROP TABLE acme_accounts;
    ALTER TABLE audit_logs DROP COLUMN scope;
    DROP TABLE secrets; DROP TABLE secret_keys; DROP TABLE audit_keys;
    CREATE TABLE secrets (name TEXT PRIMARY KEY NOT NULL, key_id TEXT NOT NULL,
	nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, created_at TEXT, rotated_at TEXT);
    DELETE FROM schema_migrations WHERE version >= 4"
rm -f "$STATE/keyd/audit.anchor"
suite_restart "$PORT"
checkx "keyd seals the existing rows, once, and says so" \
    'logged "sealed 1 existing key rows and the policy row" &&
    [ "$(DB "SELECT count(*) FROM keyd_state WHERE name = '"'rows_sealed_at'"'")" = 1 ]'
check "and the key made before works" [ "$(code "$OLD")" = 200 ]
suite_stop
