#!/bin/sh
# The audit trail, end to end: every /v1 request leaves a record with
# the engine's token usage; rows cannot be changed through SQLite's
# front door, and what changes them through the back door (triggers
# dropped) is found by flm audit verify; archiving keeps the chain
# whole; a keyd killed under load loses no record.
. "$(dirname "$0")/lib.sh"

plan 57

mock_init
mock --flavor vllm --chunks 4 --models llama3.2:1b
check "suite starts" suite_start
F="$FLM -D $STATE"
DB=$STATE/keyd/security.db
$F config set engines.vllm.url "http://127.0.0.1:$MPORT" >/dev/null
KEY=$($F api-keys create --label audit --json | jq -r .key)
KID=$(echo "$KEY" | cut -d_ -f2)
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT
# Known to be up without a request of our own (each one is recorded).
wait_until 5000 sh -c "$F models list --json | grep -q flm://vllm/llama3.2:1b"

A="Authorization: Bearer $KEY"
J='Content-Type: application/json'
CHAT='{"model":"llama3.2:1b","messages":[{"role":"user","content":"one two three"}]}'

sq() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }
rows() { sq "SELECT count(*) FROM audit_logs"; }
# For wait_until, which runs its command again each time.
rows_are() { [ "$(rows)" = "$1" ]; }
rows_atleast() { [ "$(rows)" -ge "$1" ]; }
# tail_has N FILTER: the last N records, as flm audit tail gives them.
tail_has() { json_has "$($F audit tail -n "$1" --json)" "$2"; }
verify() { $F audit verify --json 2>/dev/null; }

check "master.key is made on first start, mode 0600" \
    [ "$(stat -c %a "$STATE/keyd/master.key")" = 600 ]
checkx "a fresh trail verifies, with no rows" \
    'json_has "$(verify)" ".ok == true and .rows == 0"'

# ---- what a record holds --------------------------------------------------
hdr=$(curl -s -D - -o "$TMP/chat.json" -H "$A" -H "$J" -d "$CHAT" \
    "$U/v1/chat/completions")
RID=$(echo "$hdr" | tr -d '\r' | sed -n 's/^X-Request-Id: //p')
wait_until 3000 rows_are 1
checkx "a chat completion is recorded under its X-Request-Id" \
    'tail_has 1 ".records[0].request_id == \"$RID\""'
P=$(jq .usage.prompt_tokens "$TMP/chat.json")
C=$(jq .usage.completion_tokens "$TMP/chat.json")
checkx "the record has the key, address, endpoint, model and status" \
    'tail_has 1 ".records[0] | .key_id == \"$KID\" and
    .client_addr == \"127.0.0.1\" and .endpoint == \"/v1/chat/completions\"
    and .model == \"llama3.2:1b\" and .status == 200 and .latency_ms >= 0"'
checkx "and the engine's token usage" \
    'tail_has 1 ".records[0] | .prompt_tokens == $P and
    .completion_tokens == $C and $C > 0"'

curl -s -o /dev/null -H "$A" -H "$J" -d '{"model":"llama3.2:1b","stream":true,
    "stream_options":{"include_usage":true},"messages":[{"role":"user",
    "content":"a b c d e"}]}' "$U/v1/chat/completions"
curl -s -o "$TMP/plain.sse" -H "$A" -H "$J" -d '{"model":"llama3.2:1b",
    "stream":true,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/chat/completions"
curl -s -o /dev/null -H "$A" -H "$J" -d '{"model":"llama3.2:1b",
    "input":"four words go here"}' "$U/v1/embeddings"
curl -s -o /dev/null -H "$A" "$U/v1/models"
curl -s -o /dev/null -H "Authorization: Bearer flm_0000000000000000_x" \
    "$U/v1/models"
curl -s -o /dev/null -H "$A" -H "$J" -d '{"model":"nope","prompt":"x"}' \
    "$U/v1/completions"
curl -s -o /dev/null "$U/healthz"
wait_until 3000 rows_are 7
check "six more requests, six more records (/healthz is not one)" \
    [ "$(rows)" = 7 ]
checkx "a stream with include_usage records the usage of its last chunk" \
    'tail_has 7 ".records[1].completion_tokens > 0 and
    .records[1].prompt_tokens == 5"'
checkx "a stream whose client asked no usage is recorded with it too" \
    'tail_has 7 ".records[2].prompt_tokens == 1 and
    .records[2].completion_tokens > 0"'
checkx "while that client's stream has no usage chunk, and ends well" \
    '! grep -q usage "$TMP/plain.sse" && tail -n 2 "$TMP/plain.sse" |
    grep -q "^data: \[DONE\]"'
checkx "embeddings record their prompt tokens" \
    'tail_has 7 ".records[3] | .endpoint == \"/v1/embeddings\" and
    .prompt_tokens == 4"'
checkx "a refused key: 401, recorded without a key id" \
    'tail_has 7 ".records[5] | .status == 401 and .key_id == null"'
checkx "an unknown model: 404, recorded with the model asked for" \
    'tail_has 7 ".records[6] | .status == 404 and .model == \"nope\""'

# A client that leaves a slow stream: 499.
mock_slow() {
	mock --flavor vllm --chunks 50 --chunk-delay-ms 100 --models llama3.2:1b
	SLOW=$MPORT
}
mock_slow
$F config set engines.slow.kind vllm >/dev/null
$F config set engines.slow.url "http://127.0.0.1:$SLOW" >/dev/null
wait_until 5000 sh -c "curl -s -H '$A' $U/v1/models | grep -q flm://slow/"
curl -s -m 0.5 -o /dev/null -H "$A" -H "$J" -d '{"model":"flm://slow/llama3.2:1b",
    "stream":true,"messages":[{"role":"user","content":"x"}]}' \
    "$U/v1/chat/completions"
check "a client that leaves mid-stream is recorded as 499" \
    wait_until 3000 tail_has 1 '.records[0] | .status == 499 and
    .model == "flm://slow/llama3.2:1b"'

# ---- usage ----------------------------------------------------------------
u=$($F usage --key "$KID" --json)
checkx "flm usage sums requests and tokens per key and model" \
    'json_has "$u" "[.usage[] | select(.model == \"llama3.2:1b\")][0] |
    .requests == 4 and .prompt_tokens == $P + 5 + 1 + 4"'
checkx "flm usage --since a future time: nothing" \
    'json_has "$($F usage --since 2099-01-01 --json)" ".usage == []"'
check "flm usage --since nonsense is refused" \
    sh -c "! $F usage --since yesterday-ish >/dev/null 2>&1"

# ---- the front door is shut -----------------------------------------------
check "UPDATE on audit_logs is refused by trigger" \
    sh -c "! sqlite3 '$DB' 'UPDATE audit_logs SET status = 200' 2>/dev/null"
check "DELETE on audit_logs is refused by trigger" \
    sh -c "! sqlite3 '$DB' 'DELETE FROM audit_logs' 2>/dev/null"
checkx "the trail verifies" 'json_has "$(verify)" ".ok == true and .rows == $(rows)"'
check "flm audit verify exits 0 when intact" sh -c "$F audit verify >/dev/null"

# ---- the back door: triggers dropped, then each kind of tampering ---------
sq "DROP TRIGGER audit_logs_no_update; DROP TRIGGER audit_logs_no_delete"
# Row 6 is the refused key's 401: made to look like a success.
sq "UPDATE audit_logs SET status = 200 WHERE id = 6"
out=$(verify)
checkx "an edited row is found: the first altered row's id" \
    'json_has "$out" ".ok == false and .problem.kind == \"altered\" and
    .problem.id == 6"'
check "flm audit verify exits 1 when it is not intact" \
    sh -c "! $F audit verify >/dev/null 2>&1"
sq "UPDATE audit_logs SET status = 401 WHERE id = 6"
checkx "put back as it was, the row verifies again" \
    'json_has "$(verify)" ".ok == true"'

sq "UPDATE audit_logs SET completion_tokens = completion_tokens + 1
    WHERE id = 1"
checkx "a changed token count is found" \
    'json_has "$(verify)" ".problem.kind == \"altered\" and .problem.id == 1"'
sq "UPDATE audit_logs SET completion_tokens = completion_tokens - 1
    WHERE id = 1"

saved=$(sq ".mode insert audit_logs" "SELECT * FROM audit_logs WHERE id = 3")
sq "DELETE FROM audit_logs WHERE id = 3"
checkx "a deleted row is found: missing, with its id" \
    'json_has "$(verify)" ".problem.kind == \"missing\" and .problem.id == 3"'
sq "$saved"
checkx "restored, the trail verifies again" 'json_has "$(verify)" ".ok == true"'

last=$(sq "SELECT max(id) FROM audit_logs")
saved=$(sq ".mode insert audit_logs" "SELECT * FROM audit_logs WHERE id >= $((last - 1))")
sq "DELETE FROM audit_logs WHERE id >= $((last - 1))"
checkx "the newest rows deleted: found by the audit head" \
    'json_has "$(verify)" ".problem.kind == \"missing\" and
    .problem.id == $((last - 1))"'
sq "$saved"

sq "INSERT INTO audit_logs (id, request_id, endpoint, status, latency_ms,
    created_at, chain) SELECT max(id) + 1, 'flm-forged', '/v1/models', 200,
    1, created_at, chain FROM audit_logs"
checkx "an inserted row is found, even with a copied chain" \
    'json_has "$(verify)" ".problem.kind == \"inserted\" and
    .problem.id == $((last + 1))"'
sq "DELETE FROM audit_logs WHERE request_id = 'flm-forged'"
sq "UPDATE audit_head SET last_id = last_id + 1"
checkx "an audit head moved by hand is found (its MAC)" \
    'json_has "$(verify)" ".problem.kind == \"head\""'
sq "UPDATE audit_head SET last_id = last_id - 1"
checkx "every tampering undone: intact" 'json_has "$(verify)" ".ok == true"'
# The triggers back, as the migration made them.
sq "CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
    BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;
    CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
    WHEN old.id > coalesce((SELECT archived_through FROM audit_head), 0)
    BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;"

# ---- secrets stay out -----------------------------------------------------
SECRET=$(echo "$KEY" | cut -d_ -f3-)
check "the key's secret is nowhere in security.db, its WAL or the logs" \
    sh -c "! grep -rqF -- '$SECRET' '$STATE/keyd' '$STATE/flmd.log'"

# ---- archive ----------------------------------------------------------------
n1=$(rows)
sleep 1.1
CUT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.1
curl -s -o /dev/null -H "$A" "$U/v1/models"
curl -s -o /dev/null -H "$A" "$U/v1/models"
wait_until 3000 rows_are $((n1 + 2))
out=$($F audit archive --before "$CUT" --json)
FILE=$(echo "$out" | jq -r .file)
checkx "audit archive moves the rows before the date" \
    'json_has "$out" ".archived == $n1 and .through_id == $n1"'
check "into a file of their own in keyd's directory" \
    [ "$(sqlite3 "$STATE/keyd/$FILE" "SELECT count(*) FROM audit_logs")" = "$n1" ]
check "which records the chain head it ends with" \
    [ "$(sqlite3 "$STATE/keyd/$FILE" "SELECT hex(last_chain) FROM archive_info")" = \
    "$(echo "$out" | jq -r '.chain_head | ascii_upcase')" ]
check "and is keyd's only (mode 0600)" \
    [ "$(stat -c %a "$STATE/keyd/$FILE")" = 600 ]
check "two rows are left" [ "$(rows)" = 2 ]
checkx "the shortened trail still verifies" \
    'json_has "$(verify)" ".ok == true and .archived_through == $n1 and
    .first_id == $((n1 + 1))"'
checkx "verify walks the archive too" 'json_has "$(verify)" ".archives == 1"'
ARC=$STATE/keyd/$FILE
sqlite3 "$ARC" "UPDATE audit_logs SET status = 200 WHERE id = 6"
checkx "a row edited in the archive is found, naming the archive" \
    'json_has "$(verify)" ".problem.kind == \"altered\" and .problem.id == 6
    and (.problem.message | contains(\"$FILE\"))"'
sqlite3 "$ARC" "UPDATE audit_logs SET status = 401 WHERE id = 6"
sqlite3 "$ARC" "UPDATE archive_info SET last_id = last_id - 1"
checkx "an archive's own record edited is found" \
    'json_has "$(verify)" ".problem.kind == \"archive\""'
sqlite3 "$ARC" "UPDATE archive_info SET last_id = last_id + 1"
mv "$ARC" "$ARC.away"
checkx "a missing archive is found" \
    'json_has "$(verify)" ".problem.kind == \"archive\" and
    (.problem.message | contains(\"missing\"))"'
check "and verify made no empty one in its place" [ ! -e "$ARC" ]
mv "$ARC.away" "$ARC"
saved=$(sq ".mode insert audit_archives" "SELECT * FROM audit_archives")
sq "DELETE FROM audit_archives"
checkx "an archive struck from keyd's list is found" \
    'json_has "$(verify)" ".problem.kind == \"archive\""'
sq "$saved"
checkx "all put back: intact, archive included" \
    'json_has "$(verify)" ".ok == true and .archives == 1"'
check "a row after the mark still cannot be deleted" \
    sh -c "! sqlite3 '$DB' 'DELETE FROM audit_logs' 2>/dev/null"
checkx "archiving again before the same date moves nothing" \
    'json_has "$($F audit archive --before $CUT --json)" ".archived == 0"'
check "an archive date that is not one is refused" \
    sh -c "! $F audit archive --before someday >/dev/null 2>&1"

# ---- no record lost when keyd is killed under load -------------------------
n2=$(rows)
N=10000
KPID=$(proc_pid flm-keyd)
curl -s --no-progress-meter -Z --parallel-max 6 -o /dev/null -H "$A" "$U/v1/models?n=[1-$N]" &
LOAD=$!
sleep 0.2
during=no
kill -0 $LOAD 2>/dev/null && during=yes
kill -KILL "$KPID"
wait $LOAD
check "keyd was killed while the load ran" [ $during = yes ]
check "flmd restarts the killed keyd" wait_until 10000 all_running
wait_until 10000 rows_atleast $((n2 + N))
check "every request of the load is in the trail: none lost, none twice" \
    [ "$(rows)" = $((n2 + N)) ]
check "each under its own request id" \
    [ "$(sq "SELECT count(DISTINCT request_id) FROM audit_logs")" = $((n2 + N)) ]
checkx "and the chain is whole across the restart" \
    'json_has "$(verify)" ".ok == true"'

# ---- keyd cannot write for a while: proxyd keeps the records -----------------
n3=$(rows)
sqlite3 "$DB" "BEGIN EXCLUSIVE; SELECT 1;" ".shell sleep 7" "COMMIT;" \
    >/dev/null 2>&1 &
LOCK=$!
sleep 0.5
for i in 1 2 3; do curl -s -o /dev/null -m 10 -H "$A" "$U/v1/models"; done
wait $LOCK
wait_until 8000 rows_are $((n3 + 3))
check "records held while security.db is locked are written after" \
    [ "$(rows)" = $((n3 + 3)) ]
checkx "and the trail verifies" 'json_has "$(verify)" ".ok == true"'

# ---- an answer too large for one message: an error, not a wait -------------
# Last, as it writes rows by hand: 500 whose model names are all quotes,
# each escaped in JSON, so the tail of them is over 256 KiB.
sq "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
    WHERE i < 500) INSERT INTO audit_logs (id, request_id, endpoint, model,
    status, latency_ms, created_at) SELECT (SELECT max(id) FROM audit_logs)
    + i, 'flm-big' || i, '/v1/models', printf('%.187c', '\"'), 200, 1,
    '2026-01-01T00:00:00.000Z' FROM n"
out=$(timeout 10 $F audit tail -n 500 2>&1 >/dev/null)
rc=$?
check "an answer too large to send is refused at once, saying so (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && echo \"\$1\" | grep -q 'too large'" sh "$out"
check "and a smaller one is still answered" \
    sh -c "$F audit tail -n 100 --json | jq -e '.records | length == 100' >/dev/null"
