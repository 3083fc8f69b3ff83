#!/bin/sh
# The suite comes up as three sandboxed processes, reloads on SIGHUP
# and goes away cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

plan 24

check "flmd starts and all three processes run" suite_start

keyd=$(proc_pid flm-keyd)
proxyd=$(proc_pid flm-proxyd)
check "status reports flmd's own pid" [ "$(proc_pid flmd)" = "$FLMD_PID" ]
check "flm-keyd pid $keyd is alive" pid_alive "$keyd"
check "flm-proxyd pid $proxyd is alive" pid_alive "$proxyd"
check "children are flmd's children" [ "$(awk '/^PPid:/ {print $2}' \
    /proc/"$keyd"/status)" = "$FLMD_PID" ]

for p in "$keyd" "$proxyd"; do
	check "pid $p runs under a seccomp filter" \
	    grep -q '^Seccomp:[[:space:]]*2$' /proc/"$p"/status
	check "pid $p has no_new_privs" \
	    grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/"$p"/status
done

check "children report their software version" \
    [ "$(proc_field flm-keyd version)" = "$("$FLM" version --json | jq -r .version)" ]

table=$("$FLM" -D "$STATE" status | cat)
check "status without --json on a pipe is JSON" \
    json_has "$table" '.processes | length == 3'

FLM_STATE_DIR=$STATE "$FLM" status --json >/dev/null 2>&1
check "flm finds the daemon through FLM_STATE_DIR" [ $? -eq 0 ]

kill -HUP "$FLMD_PID"
reloaded() { [ "$(grep -c 'reload requested' "$STATE/flmd.log")" -ge 2 ]; }
check "SIGHUP reaches both children" wait_until 2000 reloaded
checkx "SIGHUP restarts nothing" '[ "$(proc_pid flm-keyd)" = "$keyd" ] &&
    [ "$(proc_pid flm-proxyd)" = "$proxyd" ]'

suite_stop
gone() { ! pid_alive "$keyd" && ! pid_alive "$proxyd"; }
check "SIGTERM stops every process" wait_until 3000 gone
checkx "SIGTERM removes the control socket and pid file" \
    '[ ! -e "$STATE/flmd.sock" ] && [ ! -e "$STATE/flmd.pid" ]'

out=$("$FLM" -D "$STATE" status 2>&1)
rc=$?
check "flm status without a daemon exits 3 and says so (rc $rc)" \
    sh -c "[ $rc -eq 3 ] && echo \"\$1\" | grep -q 'flmd is not running'" \
    sh "$out"

# In the background: daemonised, children log through flmd (they may
# not open syslog's socket), and nothing crash-loops.
rm -rf "$STATE"
STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
FLM_PROXY_WORKERS= "$FLMD" -D "$STATE"
check "flmd without -d daemonises and writes its pid file" \
    wait_until 3000 test -s "$STATE/flmd.pid"
# Not suite_start: proxy.workers is its default, one per online CPU.
WORKERS=$(getconf _NPROCESSORS_ONLN)
[ "$WORKERS" -gt 64 ] && WORKERS=64
check "its children run (keyd and $WORKERS workers: proxy.workers auto)" \
    wait_until 5000 all_running
WORKERS=1
sleep 1.5
checkx "and none was restarted (no sandbox violation while logging)" \
    'status_json | jq -e "[.processes[].restarts] | add == 0" >/dev/null'
kill -TERM "$(cat "$STATE/flmd.pid")"
gone2() { [ ! -e "$STATE/flmd.sock" ]; }
check "SIGTERM stops the daemon" wait_until 3000 gone2

# A mistyped command line: the usage, exit 2, nothing started.
checkx "flmd with an unknown option or an extra argument: usage, exit 2" \
    '"$FLMD" -d -x >/dev/null 2>"$STATE/u1"; r1=$?
    "$FLMD" -d -D "$STATE" extra >/dev/null 2>"$STATE/u2"; r2=$?
    [ $r1 = 2 ] && [ $r2 = 2 ] && grep -q "^usage: flmd \[-dsv\]" "$STATE/u1" &&
    grep -q "^usage: flmd" "$STATE/u2" && [ ! -e "$STATE/flmd.sock" ]'
checkx "flmd -L with a relative directory: refused, saying it must be absolute" \
    '! "$FLMD" -d -D "$STATE" -L libexec >/dev/null 2>"$STATE/u3" &&
    grep -q -- "^flmd\[[0-9]*\]: -L needs an absolute directory" "$STATE/u3" &&
    [ ! -e "$STATE/flmd.sock" ]'
touch "$STATE/file"
checkx "a state directory that cannot be made: flmd says why and exits 1" \
    '"$FLMD" -d -D "$STATE/file/sub" >/dev/null 2>"$STATE/u4"; r=$?
    [ $r = 1 ] && grep -q "^flmd\[[0-9]*\]: mkdir $STATE/file/sub: Not a directory" "$STATE/u4"'
