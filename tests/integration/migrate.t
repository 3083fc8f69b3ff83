#!/bin/sh
# flm migrate legacy (issue 19): each legacy kind imported and used by
# a client with its old token; a bcrypt row re-hashed as Argon2id after
# its first use; bad input reported line by line with nothing changed;
# an --apply whose post-check fails rolled back with nothing lost; the
# plain keys never in clear in the export, the logs or the databases.
. "$(dirname "$0")/lib.sh"

plan 57

command -v sqlite3 >/dev/null || { echo "1..0 # SKIP no sqlite3"; exit 0; }
BCRYPT=$top_builddir/tests/bcrypt-hash
mock_init
mock --flavor ollama
OPORT=$MPORT
check "suite starts" suite_start
F="$FLM -D $STATE"
PORT=$($F proxy start --port 0 --json | jq .port)
URL=http://127.0.0.1:$PORT/v1/models
DB() { sqlite3 -readonly "$STATE/keyd/security.db" "$@"; }
code() { http_code "$URL" -H "Authorization: Bearer $1"; }
nkeys() { $F api-keys list --json | jq length; }
$F api-keys create --label existing >/dev/null

rnd() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
PLAIN1=sk-llama-$(rnd)
PLAIN2=vllm-$(rnd)
BC1=tok_ci_$(rnd)
BC2=tok_deploy_$(rnd)

# A llama.cpp --api-key-file: one key a line, or LABEL KEY.
printf '# llama.cpp keys\n%s\n\nvllm-client %s\n' "$PLAIN1" "$PLAIN2" \
    >"$TMP/keys.txt"
# The legacy gateway's tokens table (seed 003), bcrypt at cost 10.
H1=$(echo "$BC1" | "$BCRYPT")
H2=$(echo "$BC2" | "$BCRYPT")
sqlite3 "$TMP/tokens.db" "CREATE TABLE tokens (id INTEGER PRIMARY KEY
    AUTOINCREMENT, name TEXT NOT NULL, hash TEXT NOT NULL, created_at
    DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, last_used_at DATETIME);
    CREATE UNIQUE INDEX ux_tokens_name ON tokens(name);
    INSERT INTO tokens (name, hash) VALUES ('ci', '$H1'), ('deploy', '$H2');"
# An Ollama environment file, as /etc/default/ollama or a drop-in.
cat >"$TMP/ollama.env" <<EOT
# Ollama
export OLLAMA_HOST="127.0.0.1:$OPORT"
Environment="OLLAMA_ORIGINS=https://app.example.com,http://localhost:3000" "OLLAMA_MODELS=/srv/models"
EOT
ALL="--from keys-file:$TMP/keys.txt --from tokens-db:$TMP/tokens.db --from ollama-env:$TMP/ollama.env"

# Bad input: every problem reported with its place, nothing changed.
printf 'ok-one %s\nx y z\n%s\nflm_0123456789abcdef_%s\nok-one %s\n' \
    "$(rnd)" "$(rnd)" "$(rnd)" "$(rnd)" >"$TMP/bad.txt"
sqlite3 "$TMP/bad.db" "CREATE TABLE tokens (id INTEGER PRIMARY KEY, name
    TEXT, hash TEXT); INSERT INTO tokens VALUES (1, 'md5', '$(echo x |
    "$BCRYPT" '$1$')'), (2, 'sha', '$(echo x | "$BCRYPT" '$6$')'),
    (3, 'bad name!', '$H1');"
BEFORE=$(DB "SELECT count(*) FROM api_keys")
checkx "bad input is refused" '! $F migrate legacy --from keys-file:$TMP/bad.txt \
    --from tokens-db:$TMP/bad.db --out "$TMP/bad-out" 2>"$TMP/bad.err"' 
checkx "a malformed line is reported with its place" \
    'grep -qF "$TMP/bad.txt:2: expected KEY or LABEL KEY" "$TMP/bad.err"'
checkx "an flm key is no legacy key" \
    'grep -qF "$TMP/bad.txt:4: an flm key" "$TMP/bad.err"'
checkx "a duplicate label, and where it was first" \
    'grep -qF "$TMP/bad.txt:5: duplicate label '"'ok-one'"' (first at $TMP/bad.txt:1)" "$TMP/bad.err"'
checkx "md5-crypt and sha512-crypt hashes: unknown schemes, by row" \
    'grep -qF "$TMP/bad.db:id 1: hash of md5-crypt (\$1\$): only bcrypt" "$TMP/bad.err" &&
    grep -qF "$TMP/bad.db:id 2: hash of sha512-crypt (\$6\$)" "$TMP/bad.err"'
checkx "a name that is no label" 'grep -qF "$TMP/bad.db:id 3: name" "$TMP/bad.err"'
checkx "nothing changed: no export, same keys" \
    '[ ! -e "$TMP/bad-out" ] && [ "$(DB "SELECT count(*) FROM api_keys")" = "$BEFORE" ]'
checkx "no key text in the report" \
    '! grep -qF -- "$(sed -n 3p "$TMP/bad.txt")" "$TMP/bad.err"'
printf 'existing %s\n' "$(rnd)" >"$TMP/taken.txt"
check "a label already in use is refused before anything is written" \
    fails_with "$TMP/taken.txt:1: label 'existing': a key with that label already exists" \
    $F migrate legacy --from keys-file:$TMP/taken.txt --out "$TMP/taken-out"

# Dry run: the plan, the diff and the expected state; nothing changed.
check "a dry run succeeds" sh -c "$F migrate legacy $ALL --out $TMP/out >$TMP/dry.json"
checkx "the export directory is private" \
    '[ "$(stat -c %a "$TMP/out")" = 700 ]'
checkx "diff.txt lists keys, origins and the engine" \
    'grep -q "^+ api_keys ci (bcrypt, from $TMP/tokens.db:id 1)" "$TMP/out/diff.txt" &&
    grep -q "^+ api_keys vllm-client (plain" "$TMP/out/diff.txt" &&
    grep -q "^+ cors.allowed_origins https://app.example.com" "$TMP/out/diff.txt" &&
    grep -q "^~ engines.ollama.url (not set) -> http://127.0.0.1:$OPORT" "$TMP/out/diff.txt"'
checkx "state.json: the keys and labels expected after apply" \
    'jq -e ".keys.count == 5 and .keys.labels == [\"ci\",\"deploy\",\"existing\",\"keys.txt-2\",\"vllm-client\"] and (.policy.cors.allowed_origins | index(\"http://localhost:3000\")) != null and (.proxies[0].port == $PORT)" "$TMP/out/state.json" >/dev/null'
checkx "plan.json names each key, its kind and its line" \
    'jq -e ".keys | map(.legacy) == [\"plain\",\"plain\",\"bcrypt\",\"bcrypt\"]" "$TMP/out/plan.json" >/dev/null'
checkx "a dry run changes nothing" \
    '[ "$(DB "SELECT count(*) FROM api_keys")" = "$BEFORE" ] && [ "$(code "$PLAIN1")" = 401 ]'

# --apply whose post-check fails: a trigger (installed while the suite
# is down, as a broken database would behave) loses each plain row's
# digest, so the keys cannot be found; everything is rolled back.
suite_stop
sqlite3 "$STATE/keyd/security.db" "CREATE TRIGGER lose_digest AFTER INSERT
    ON api_keys WHEN new.legacy = 'plain' BEGIN UPDATE api_keys SET
    digest = NULL WHERE id = new.id; END;"
suite_restart "$PORT"
POL0=$($F security policy show --json | jq -c .policy)
check "an --apply whose post-check fails is refused" \
    fails_with "the post-check failed: key 'keys.txt-2': not found by its digest; rolled back" \
    $F migrate legacy $ALL --apply --out "$TMP/out-rb"
checkx "nothing was lost or added: keys, policy, engine" \
    '[ "$(DB "SELECT count(*) FROM api_keys")" = "$BEFORE" ] &&
    [ "$($F security policy show --json | jq -c .policy)" = "$POL0" ] &&
    ! $F config get engines.ollama.url >/dev/null 2>&1'
checkx "the migration log says it failed and changed nothing" \
    'grep -q "failed: the post-check failed" "$STATE"/logs/migrations/*.log &&
    grep -q "nothing changed" "$STATE"/logs/migrations/*.log'
suite_stop
sqlite3 "$STATE/keyd/security.db" "DROP TRIGGER lose_digest"
suite_restart "$PORT"

# --apply.
check "--apply imports" sh -c "$F migrate legacy $ALL --apply --out $TMP/out2 --json >$TMP/apply.json"
checkx "four keys imported, five in all" \
    'jq -e ".imported == 4 and .count == 5" "$TMP/apply.json" >/dev/null'
LIST=$($F api-keys list --json)
checkx "api-keys list flags them legacy: plain, bcrypt" \
    'json_has "$LIST" "map(select(.legacy != null) | [.label, .legacy]) | sort == [[\"ci\",\"bcrypt\"],[\"deploy\",\"bcrypt\"],[\"keys.txt-2\",\"plain\"],[\"vllm-client\",\"plain\"]]"'
check "the llama.cpp key works as before (200)" [ "$(code "$PLAIN1")" = 200 ]
check "the vLLM key works as before (200)" [ "$(code "$PLAIN2")" = 200 ]
checkx "the bcrypt token is still bcrypt before its first use" \
    '[ "$(DB "SELECT legacy || substr(hash, 1, 4) FROM api_keys WHERE label = '"'ci'"'")" = "bcrypt\$2b\$" ]'
check "the bcrypt token works as before (200)" [ "$(code "$BC1")" = 200 ]
checkx "after its first use it is Argon2id, with a digest" \
    '[ "$(DB "SELECT legacy, substr(hash, 1, 10), length(digest) FROM api_keys WHERE label = '"'ci'"'")" = "bcrypt-rehashed|\$argon2id\$|64" ]'
checkx "the unused one is still bcrypt" \
    '[ "$(DB "SELECT legacy FROM api_keys WHERE label = '"'deploy'"'")" = bcrypt ]'
check "a wrong token is refused (401)" [ "$(code "${BC1}x")" = 401 ]
check "a near miss of a plain key is refused (401)" [ "$(code "${PLAIN1%?}")" = 401 ]
check "the existing flm key is untouched (key list)" \
    json_has "$LIST" 'map(select(.label == "existing" and .legacy == null)) | length == 1'

# Uncached (a new suite): the re-hashed token found by its digest.
suite_restart "$PORT"
check "after a restart the re-hashed token works (Argon2id, by digest)" \
    [ "$(code "$BC1")" = 200 ]
check "and the second bcrypt token on its first use" [ "$(code "$BC2")" = 200 ]
checkx "and after revoking it, it is refused" \
    '$F api-keys revoke deploy >/dev/null && [ "$(code "$BC2")" = 401 ]'
checkx "the rows' MACs hold (no integrity complaint)" \
    '! grep -q "fails its MAC" "$STATE/flmd.log"'

# A master-key rotation keeps the digest key (sealed under the new key):
# the imported tokens are found by digest as before, also uncached.
check "the master key rotates with legacy keys in use" \
    sh -c "$F security master-key rotate >/dev/null"
suite_restart "$PORT"
check "after it and a restart the plain key works (200)" \
    [ "$(code "$PLAIN1")" = 200 ]
check "and the re-hashed bcrypt token (200)" [ "$(code "$BC1")" = 200 ]
checkx "twice rotated and restarted, both still work" \
    '$F security master-key rotate >/dev/null && suite_restart "$PORT" &&
    [ "$(code "$PLAIN2")" = 200 ] && [ "$(code "$BC1")" = 200 ]'
check "a near miss is still refused (401)" [ "$(code "${PLAIN2%?}")" = 401 ]

# The Ollama settings.
checkx "OLLAMA_ORIGINS merged into the CORS origins" \
    '$F security policy show --json | jq -e ".policy.cors.allowed_origins | index(\"https://app.example.com\") != null" >/dev/null'
check "OLLAMA_HOST became engines.ollama.url" \
    [ "$($F config get engines.ollama.url --json | jq -r '.["engines.ollama.url"]')" = "http://127.0.0.1:$OPORT" ]
models() { get "$URL" -H "Authorization: Bearer $PLAIN2" | jq -e '.data | map(.id) | index("flm://ollama/llama3.2:1b") != null' >/dev/null; }
check "the Ollama engine is reached at its old address with an old key" \
    wait_until 8000 models

# The migration log, and no key in clear anywhere.
LOG=$(jq -r .log "$TMP/apply.json")
checkx "the migration log of the run" \
    'grep -q "committed: 4 keys imported" "$LOG" && grep -q "done" "$LOG" &&
    grep -q "key ci (bcrypt)" "$LOG"'
# What flm refuses before reading a source, and what it shows a person
# (standard output a terminal, through script(1)).
check "migrate legacy without --from: a usage error (exit 2)" \
    sh -c "$F migrate legacy >/dev/null 2>'$TMP/u.err'; [ \$? = 2 ] && grep -q -- '--from KIND:PATH is required' '$TMP/u.err'"
check "--from of an unknown kind: a usage error naming the kinds (exit 2)" \
    sh -c "$F migrate legacy --from passwd:/etc/passwd >/dev/null 2>'$TMP/u.err'; [ \$? = 2 ] && grep -q -- '--from: expected keys-file:PATH, tokens-db:PATH or ollama-env:PATH' '$TMP/u.err'"
PLAIN3=sk-late-$(rnd)
printf 'late %s\n' "$PLAIN3" >"$TMP/late.txt"
printf 'OLLAMA_ORIGINS=https://app.example.com,https://new.example.com\n' \
    >"$TMP/late.env"
LATE="--from keys-file:$TMP/late.txt --from ollama-env:$TMP/late.env"
: >"$TMP/notadir"
check "--out that is a file: refused (exit 1), the file untouched, no key added" \
    sh -c "! $F migrate legacy $LATE --out '$TMP/notadir' 2>'$TMP/u.err' >/dev/null && grep -q '$TMP/notadir: File exists' '$TMP/u.err' && [ ! -s '$TMP/notadir' ] && [ \"\$($F api-keys list --json | jq 'map(select(.label == \"late\")) | length')\" = 0 ]"
printf 'OLLAMA_ORIGINS=https://app.example.com/path\n' >"$TMP/badorigin.env"
$F migrate legacy --from "ollama-env:$TMP/badorigin.env" --out "$TMP/out4" \
    >/dev/null 2>"$TMP/u.err"
RC=$?
checkx "an origin FLM's CORS policy refuses: exit 1, its place, nothing written" \
    '[ $RC = 1 ] && grep -qF "$TMP/badorigin.env" "$TMP/u.err" &&
    grep -q "OLLAMA_ORIGINS: FLM.s CORS policy refuses it" "$TMP/u.err" &&
    [ ! -e "$TMP/out4" ]'
script -qec "$F migrate legacy $LATE --out $TMP/out3" /dev/null </dev/null \
    >"$TMP/tty" 2>&1
checkx "a dry run on a terminal: the diff, then where it is and what next" \
    'grep -q "review it, then run again with --apply" "$TMP/tty" &&
    grep -q "written to $TMP/out3" "$TMP/tty" && grep -q "late" "$TMP/tty" &&
    grep -q "https://new.example.com" "$TMP/tty" && [ -s "$TMP/out3/diff.txt" ]'
script -qec "$F migrate legacy $LATE --apply --out $TMP/out3" /dev/null \
    </dev/null >"$TMP/tty" 2>&1
checkx "--apply on a terminal: how many keys, the policy changed, the log" \
    'tr -d "\r" <"$TMP/tty" | grep -Eq "^imported 1 keys \([0-9]+ keys in all\)$" &&
    grep -q "^security policy updated (CORS origins added)" "$TMP/tty" &&
    grep -q "^log: $STATE/logs/migrations/" "$TMP/tty"'
check "and the late key works (200)" [ "$(code "$PLAIN3")" = 200 ]
checkx "the new origin is in the policy, the old one once" \
    '$F security policy show --json | jq -e ".policy.cors.allowed_origins |
    index(\"https://new.example.com\") != null and
    (map(select(. == \"https://app.example.com\")) | length == 1)" >/dev/null'
for k in "$PLAIN1" "$PLAIN2" "$BC1" "$BC2" "$PLAIN3"; do
	checkx "a key text is in no export, log or database file" \
	    '! grep -r -a -q -F -- "$k" "$TMP/out" "$TMP/out2" "$STATE"'
done
exit 0
