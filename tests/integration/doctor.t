#!/bin/sh
# flm doctor against real processes: an engine reachable around FLM
# (listening on a wildcard address) is named with its address and the
# fix and makes the exit status 1; on loopback it is fine; a master key
# file others can read, a security.db in safe mode and a keyd that does
# not answer are flagged; --json says what the text says.  The clock
# and firewall checks depend on the machine: they are left out of what
# a healthy suite must pass.
. "$(dirname "$0")/lib.sh"

plan 38

mock_init
F="$FLM -D"
doc() { "$FLM" -D "$STATE" doctor --json 2>/dev/null; }
# check_of JSON NAME: the one check of that name (and group, if given).
check_of() {
	printf '%s' "$1" | jq -c --arg n "$2" --arg g "${3:-}" \
	    '[.checks[] | select(.name == $n and ($g == "" or .group == $g))][0]'
}
# The checks that must pass on any machine: all but the clock's and
# the firewall's, which are the host's business.
HEALTHY='[.checks[] | select(.group != "clock" and .group != "firewall")
    | select(.status == "warn" or .status == "fail")] | length == 0'

# wild_mock ADDR: a mock engine listening on ADDR (not loopback); its
# port in WPORT, or 1 when it cannot listen there.
wild_mock() {
	NMOCK=$((NMOCK + 1))
	"$MOCK" --flavor ollama --listen "$1:0" --port-file "$TMP/$NMOCK.port" \
	    >"$TMP/$NMOCK.log" 2>&1 &
	MOCK_PIDS="$MOCK_PIDS $!"
	wait_until 3000 test -s "$TMP/$NMOCK.port" || return 1
	WPORT=$(cat "$TMP/$NMOCK.port")
}

suite_start || exit 1
# Every engine at a port of our own: nothing else on this machine
# (an Ollama of the developer's on 11434, say) decides the outcome.
mock --flavor vllm
LPORT=$MPORT
for e in lmstudio vllm llamacpp; do
	$F "$STATE" config set "engines.$e.url" "http://127.0.0.1:$LPORT" \
	    >/dev/null
done
$F "$STATE" config set engines.ollama.url "http://127.0.0.1:$(free_port)" \
    >/dev/null

# 1. Healthy.
out=$(doc)
rc=$?
checkx "a healthy suite: only the machine's own checks may need attention" \
    'json_has "$out" "$HEALTHY"'
checkx "exit status 0 unless the clock or firewall need attention (rc $rc)" \
    '[ $rc -eq 0 ] || json_has "$out" ".ok == false"'
checkx "an engine on loopback only: ok" \
    'json_has "$(check_of "$out" vllm)" ".status == \"ok\" and
    (.detail | test(\"loopback only, port $LPORT\"))"'
checkx "an engine with nothing listening: info, not a failure" \
    'json_has "$(check_of "$out" ollama)" ".status == \"info\""'
checkx "keyd's checks are merged in: master key, security.db, audit chain" \
    'json_has "$out" "[.checks[] | select(.group == \"master key\" or
    .name == \"security.db\" or .name == \"audit chain\")] | length >= 4"'
checkx "every child is running and sandboxed" \
    'json_has "$out" "[.checks[] | select(.group == \"processes\" and
    .status == \"ok\" and (.detail | test(\"sandboxed\")))] | length == 3"'

# 2. The text says what --json says, check for check, in order.
text=$(script -qc "$FLM -D $STATE doctor" /dev/null | tr -d '\r')
js=$(printf '%s' "$out" | jq -r '.checks[] | .status |
    if . == "warn" then "WARN" elif . == "fail" then "FAIL" else . end')
ts=$(printf '%s\n' "$text" |
    sed -n 's/^  \(ok\|info\|WARN\|FAIL\|skipped\) .*/\1/p')
checkx "the text has one line per check, the same statuses in order" \
    '[ -n "$js" ] && [ "$js" = "$ts" ]'
checkx "no line of the text is wider than 80 columns" \
    '[ "$(printf "%s\n" "$text" | awk "length > 80" | wc -l)" -eq 0 ]'

# 3. An engine on 0.0.0.0: named, with the address, the fix, exit 1.
wild_mock 0.0.0.0
$F "$STATE" config set engines.ollama.url "http://127.0.0.1:$WPORT" \
    >/dev/null
out=$(doc)
rc=$?
checkx "an engine on 0.0.0.0: doctor exits 1 (rc $rc)" '[ $rc -eq 1 ]'
checkx "and says ok: false" 'json_has "$out" ".ok == false"'
c=$(check_of "$out" ollama)
checkx "it names the engine and the address it is reachable on" \
    'json_has "$c" ".status == \"fail\" and (.detail |
    test(\"0\\\\.0\\\\.0\\\\.0:$WPORT\")) and (.detail | test(\"around FLM\"))"'
checkx "with the fix for Ollama: OLLAMA_HOST and a systemd drop-in" \
    'json_has "$c" "(.fix | test(\"OLLAMA_HOST=127.0.0.1\")) and
    (.fix | test(\"systemctl edit ollama\"))"'
text=$(script -qc "$FLM -D $STATE doctor" /dev/null | tr -d '\r')
checkx "the text shows it as FAIL with the fix" \
    'printf "%s" "$text" | grep -q "^  FAIL    ollama: listens on 0.0.0.0:$WPORT" &&
    printf "%s" "$text" | grep -q "fix: OLLAMA_HOST=127.0.0.1"'
checkx "a custom engine of another kind gets its kind's fix" \
    '$F "$STATE" config set engines.lab.kind llamacpp >/dev/null &&
    $F "$STATE" config set engines.lab.url "http://127.0.0.1:$WPORT" \
    >/dev/null && c=$(check_of "$(doc)" lab) &&
    json_has "$c" ".status == \"fail\" and (.detail | test(\"a llamacpp engine\"))
    and (.fix | test(\"--host 127.0.0.1\"))"'
$F "$STATE" config set engines.lab.url "http://127.0.0.1:$LPORT" >/dev/null
$F "$STATE" config set engines.vllm.url "http://127.0.0.1:$WPORT" >/dev/null
$F "$STATE" config set engines.lmstudio.url "http://127.0.0.1:$WPORT" >/dev/null
out=$(doc)
checkx "vLLM and LM Studio exposed: each gets its own fix" \
    'json_has "$(check_of "$out" vllm)" ".status == \"fail\" and
    (.fix | test(\"start vLLM with --host 127.0.0.1\"))" &&
    json_has "$(check_of "$out" lmstudio)" ".status == \"fail\" and
    (.fix | test(\"Serve on Local Network\"))"'
$F "$STATE" config set engines.vllm.url "http://127.0.0.1:$LPORT" >/dev/null
$F "$STATE" config set engines.lmstudio.url "http://127.0.0.1:$LPORT" >/dev/null

# The same on IPv6's wildcard, when this machine has IPv6.
if wild_mock '[::]'; then
	$F "$STATE" config set engines.ollama.url "http://127.0.0.1:$WPORT" \
	    >/dev/null
	checkx "an engine on [::] is flagged with its address too" \
	    'json_has "$(check_of "$(doc)" ollama)" ".status == \"fail\" and
	    (.detail | test(\"(\\\\[::\\\\]|0\\\\.0\\\\.0\\\\.0):$WPORT\"))"'
else
	ok "an engine on [::] is flagged with its address too # SKIP no IPv6"
fi
$F "$STATE" config set engines.ollama.url "http://127.0.0.1:$LPORT" >/dev/null
checkx "back on loopback: the engine check is ok again" \
    'json_has "$(check_of "$(doc)" ollama)" ".status == \"ok\""'

# 4. A master key file others can read, keyd's directory open.
chmod 0644 "$STATE/keyd/master.key"
out=$(doc)
rc=$?
c=$(check_of "$out" provider "master key")
checkx "a master.key of mode 0644 is flagged (rc $rc)" \
    '[ $rc -eq 1 ] && json_has "$c" ".status == \"fail\" and
    (.detail | test(\"0644\")) and (.fix | test(\"chmod 600 .*master.key\"))"'
chmod 0600 "$STATE/keyd/master.key"
chmod 0755 "$STATE/keyd"
out=$(doc)
checkx "keyd's directory open to others: flagged by keyd and by flmd" \
    'json_has "$(check_of "$out" "keyd directory")" ".status == \"fail\"" &&
    json_has "$(check_of "$out" "keyd dir")" ".status == \"fail\" and
    (.fix | test(\"chmod 0700\"))"'
chmod 0700 "$STATE/keyd"
chmod 0644 "$STATE/config.db"
checkx "a config.db of mode 0644: a warning, with the chmod that fixes it" \
    'json_has "$(check_of "$(doc)" config.db "state directory")" \
    ".status == \"warn\" and (.detail | test(\"is mode 0644, flmd makes it 0600\"))
    and .fix == \"chmod 0600 $STATE/config.db\""'
chmod 0600 "$STATE/config.db"
checkx "made private again: healthy again" 'json_has "$(doc)" "$HEALTHY"'

# 5. keyd does not answer: its checks fail, the rest is still there.
KPID=$(proc_pid flm-keyd)
kill -STOP "$KPID"
t0=$(date +%s)
out=$(doc)
rc=$?
t1=$(date +%s)
kill -CONT "$KPID"
checkx "a keyd that does not answer: reported as such (rc $rc)" \
    '[ $rc -eq 1 ] && json_has "$(check_of "$out" flm-keyd keyd)" \
    ".status == \"fail\" and (.detail | test(\"did not answer\"))"'
checkx "flmd's own checks are still answered, within seconds ($((t1 - t0)) s)" \
    'json_has "$out" "[.checks[] | select(.group == \"engines\")] |
    length >= 4" && [ $((t1 - t0)) -le 10 ]'
checkx "keyd's late answer harms nothing: the next doctor is whole" \
    'wait_until 3000 all_running && json_has "$(doc)" "$HEALTHY"'

# An audit record from the future: the clock went back, and the record
# altered outside keyd breaks the chain (the check audit verify makes).
KEY=$($F "$STATE" api-keys create --label d --json | jq -r .key)
PPORT=$($F "$STATE" proxy start --port 0 --json | jq .port)
curl -s -o /dev/null -H "Authorization: Bearer $KEY" \
    "http://127.0.0.1:$PPORT/v1/models"
wait_until 3000 sh -c "[ \"\$(sqlite3 '$STATE/keyd/security.db' \
    'SELECT count(*) FROM audit_logs')\" -ge 1 ]"
checkx "a fresh audit record: the clock is past it, the chain intact" \
    'out=$(doc); json_has "$(check_of "$out" "audit order")" \
    ".status == \"ok\" and (.detail | test(\"past the newest\"))" &&
    json_has "$(check_of "$out" "audit chain")" ".status == \"ok\""'
sqlite3 -cmd '.timeout 5000' "$STATE/keyd/security.db" \
    "DROP TRIGGER audit_logs_no_update; UPDATE audit_logs SET created_at =
    '2099-01-01T00:00:00.000Z' WHERE id = (SELECT max(id) FROM audit_logs)"
out=$(doc)
checkx "a record dated 2099: the clock is behind it, a failure" \
    'json_has "$(check_of "$out" "audit order")" ".status == \"fail\" and
    (.detail | test(\"behind the newest audit record\"))"'
checkx "and the altered record breaks the audit chain, as audit verify says" \
    'json_has "$(check_of "$out" "audit chain")" ".status == \"fail\"" &&
    ! $F "$STATE" audit verify >/dev/null 2>&1'

# 6. Exit statuses of usage and connection errors.
"$FLM" -D "$STATE" doctor extra >/dev/null 2>&1
rc=$?
check "an extra argument is a usage error (rc $rc)" [ $rc -eq 2 ]
suite_stop
"$FLM" -D "$STATE" doctor >/dev/null 2>&1
rc=$?
check "no flmd: exit 3 (rc $rc)" [ $rc -eq 3 ]
rm -rf "$STATE"

# 7. security.db corrupt: keyd in safe mode, doctor says so.
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
mkdir -m 0700 "$STATE/keyd"
head -c 8192 /dev/urandom >"$STATE/keyd/security.db"
"$FLMD" -d -D "$STATE" >"$STATE/flmd.log" 2>&1 &
FLMD_PID=$!
wait_until 8000 all_running
out=$(doc)
rc=$?
checkx "a corrupt security.db is flagged: safe mode, exit 1 (rc $rc)" \
    '[ $rc -eq 1 ] && json_has "$(check_of "$out" security.db databases)" \
    ".status == \"fail\" and (.detail | test(\"safe mode\"))"'
checkx "the audit chain and certificates are skipped, saying why" \
    'json_has "$(check_of "$out" "audit chain")" ".status == \"skipped\"" &&
    json_has "$(check_of "$out" certificates)" ".status == \"skipped\""'
checkx "no secret in the answer: no key text, no master key" \
    '! printf "%s" "$out" | grep -qE "flm_[0-9a-f]{16}_|[0-9a-f]{64}"'
suite_stop
rm -rf "$STATE"

# 8. A subverted keyd: what it answers is checked, not trusted blindly.
WRAP=$TMP/wrap
mkdir "$WRAP"
BADSTATUS='{"checks":[{"group":"x","name":"y","status":"great","detail":"z"}]}'
PLANTED='{"checks":[{"group":"x","name":"y","status":"ok","detail":"z"}],"admin":true}'
LIE='{"checks":[{"group":"audit","name":"audit chain","status":"ok","detail":"intact (says keyd)"}]}'
printf '#!/bin/sh\nexec "%s" -k answer 59 %s answer 59 %s answer 59 %s\n' \
    "$top_builddir/tests/fake-child" "'$BADSTATUS'" "'$PLANTED'" "'$LIE'" \
    >"$WRAP/keyd"
chmod +x "$WRAP/keyd"
suite_start FLM_KEYD_PATH="$WRAP/keyd"
out=$(doc)
checkx "a keyd's check with an unknown status: its list is refused" \
    'json_has "$(check_of "$out" flm-keyd keyd)" ".status == \"fail\" and
    (.detail | test(\"malformed\"))" && ! json_has "$out" ".checks[] |
    select(.status == \"great\")"'
out=$(doc)
checkx "a reply with a member planted beside the checks: refused too" \
    'json_has "$(check_of "$out" flm-keyd keyd)" ".detail | test(\"malformed\")"'
out=$(doc)
checkx "a well-formed answer is shown as keyd's (flmd cannot check its word)" \
    'json_has "$(check_of "$out" "audit chain")" ".detail == \"intact (says keyd)\""'
check "flmd lives on" kill -0 "$FLMD_PID"
suite_stop
rm -rf "$STATE"

# 9. System mode (root): the owners and modes flmd makes are what doctor
# expects of them: _flmkeyd's keyd/ and security.db, root's master.key.
if [ "$(id -u)" = 0 ] && getent passwd _flmkeyd >/dev/null &&
    getent passwd _flmproxy >/dev/null; then
	STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
	LX=$(sys_libexec)
	"$FLMD" -d -s -D "$STATE" -L "$LX" >"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
	wait_until 5000 all_running
	for e in ollama lmstudio vllm llamacpp; do
		$F "$STATE" config set "engines.$e.url" \
		    "http://127.0.0.1:$LPORT" >/dev/null
	done
	out=$(doc)
	checkx "system mode: healthy but for the machine's own checks" \
	    'json_has "$out" "$HEALTHY" && json_has "$(check_of "$out" "keyd dir")" \
	    ".detail | test(\"mode 0700, uid $(id -u _flmkeyd)\")"'
	chmod 0644 "$STATE/keyd/master.key"
	checkx "system mode: master.key 0644 flagged by the chrooted keyd" \
	    'json_has "$(check_of "$(doc)" provider)" ".status == \"fail\" and
	    (.fix == \"chmod 600 $STATE/keyd/master.key\")"'
	suite_stop
	rm -rf "$LX"
else
	ok "system mode: healthy but for the machine's own checks # SKIP needs root and the FLM users"
	ok "system mode: master.key 0644 flagged by the chrooted keyd # SKIP needs root and the FLM users"
fi
