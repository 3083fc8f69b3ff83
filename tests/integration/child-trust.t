#!/bin/sh
# flmd (root in system mode, unsandboxed) trusts nothing from a child: a
# subverted flm-proxyd or flm-keyd (tests/fake-child, started by flmd in
# its place) cannot get the other restarted, fill config.db, wrap the
# request counts, forge or flood the log, or plant members in flm status.
. "$(dirname "$0")/lib.sh"

plan 42

FAKE=$top_builddir/tests/fake-child
WRAP=$(mktemp -d "${TMPDIR:-/tmp}/flmw.XXXXXX")
trap 'suite_cleanup; rm -rf "$WRAP"' EXIT

# fake NAME ARGS...: a child binary that is fake-child with ARGS, every
# time flmd starts it.  ARGS are shell words, expanded when it runs.
fake() {
	name=$1
	shift
	printf '#!/bin/sh\nexec "%s" %s\n' "$FAKE" "$*" >"$WRAP/$name"
	chmod +x "$WRAP/$name"
}
logged() { grep -q "$1" "$STATE/flmd.log"; }
flmd_alive() { kill -0 "$FLMD_PID" 2>/dev/null; }
done_with() {
	suite_stop
	rm -rf "$STATE"
	STATE=
}

# 1. A proxyd that keeps reporting keyd broken: keyd stays, proxyd is
# restarted once, and the complaints after that are held, not obeyed.
fake broken broken 100
check "suite starts with a proxyd that reports keyd broken, 100 times a run" \
    suite_start FLM_PROXYD_PATH="$WRAP/broken"
keyd=$(proc_pid flm-keyd)
check "flmd restarts proxyd itself on its complaint" \
    wait_until 3000 logged 'restarting flm-proxyd, not flm-keyd'
check "and holds the complaints of the next one" \
    wait_until 3000 logged 'flm-keyd stays up, flm-proxyd is restarted in'
sleep 1
checkx "keyd was never restarted (pid $keyd)" \
    '[ "$(proc_pid flm-keyd)" = "$keyd" ] &&
    [ "$(proc_field flm-keyd restarts)" = 0 ]'
checkx "proxyd was restarted once in 2 s of complaints, not more" \
    '[ "$(proc_field flm-proxyd restarts)" = 1 ]'
check "flmd lives on" flmd_alive
done_with

# 2. ENGINES_STATE naming 10000 engines nobody configured (200 messages
# of 50): refused, nothing of it in engines_cache.
fake engines sleep 1500 engines 200 50
check "suite starts with a proxyd reporting invented engines" \
    suite_start FLM_PROXYD_PATH="$WRAP/engines"
check "flmd refuses an unconfigured engine by name" \
    wait_until 3000 logged \
    "malformed ENGINES_STATE: engine 'invented0' is not configured"
sleep 1
n=$(sqlite3 "$STATE/config.db" "SELECT count(*) FROM engines_cache WHERE
    engine_id NOT IN ('ollama', 'lmstudio', 'vllm', 'llamacpp')")
check "no invented engine reached config.db ($n rows)" [ "$n" = 0 ]
check "flmd lives on" flmd_alive
done_with

# 2b. An engine's odd answers, relayed as they came, are not proxyd's
# fault: nulled and stored, proxyd kept.
fake oddengine sleep 1500 json 30 "'[{\"id\":\"ollama\",\"kind\":\"ollama\",\"state\":\"RunningHealthy\",\"version\":{\"a\":[1]},\"models\":[{\"id\":\"flm://ollama/m\",\"engine\":\"ollama\",\"model\":\"m\",\"family\":[\"x\"]}]}]'"
check "suite starts with a proxyd relaying an engine's odd version" \
    suite_start FLM_PROXYD_PATH="$WRAP/oddengine"
cached() {
	[ "$(sqlite3 "$STATE/config.db" "SELECT json_extract(state_json,
	    '$.version') IS NULL AND json_extract(state_json,
	    '$.models[0].family') IS NULL FROM engines_cache
	    WHERE engine_id = 'ollama'")" = 1 ]
}
check "it is stored with those members null" wait_until 4000 cached
checkx "and proxyd was not refused" \
    '! logged malformed && [ "$(proc_field flm-proxyd restarts)" = 0 ]'
done_with

# 2c. Issue 17's members and messages, malformed: a breaker with a
# member flmd does not know; an EGRESS_STATE whose ok is no boolean.
fake badbreaker sleep 1500 json 30 "'[{\"id\":\"ollama\",\"kind\":\"ollama\",\"state\":\"RunningHealthy\",\"breaker\":{\"state\":\"open\",\"evil\":1}}]'"
check "suite starts with a proxyd reporting a breaker of its own making" \
    suite_start FLM_PROXYD_PATH="$WRAP/badbreaker"
check "flmd refuses it by name and restarts proxyd" wait_until 3000 logged \
    "malformed ENGINES_STATE: .*evil"
check "flmd lives on" flmd_alive
done_with
fake badegress sleep 1500 json 33 "'{\"ok\":\"yes\",\"ms\":1}'"
check "suite starts with a proxyd sending an EGRESS_STATE of its own making" \
    suite_start FLM_PROXYD_PATH="$WRAP/badegress"
check "flmd refuses it and restarts proxyd" wait_until 3000 logged \
    "malformed EGRESS_STATE"
check "flmd lives on" flmd_alive
done_with

# 3. PROXY_STATS with counts beyond int64 and below 0 after a good one.
fake stats stats 5 9223372036854775807 9223372036854775807 -5
check "suite starts with a proxyd sending huge and negative counts" \
    suite_start FLM_PROXYD_PATH="$WRAP/stats"
"$FLM" -D "$STATE" proxy start --port 0 >/dev/null
check "flmd refuses the huge count" wait_until 3000 logged \
    'malformed PROXY_STATS'
req=$("$FLM" -D "$STATE" proxy status --json | jq '.[0].requests')
checkx "the count shown is the good reports' only, never wrapped ($req)" \
    '[ "$req" -ge 5 ] && [ $((req % 5)) = 0 ] && [ "$req" -le 500 ]'
check "flmd lives on" flmd_alive
done_with

# 4. LOG: priority 0 (LOG_EMERG), a forged second line, terminal escapes,
# then a flood of 3000 lines, a pause, and one more line.
fake log log 0 "\"\$(printf 'forged\\nflmd[1]: fake entry \\033[31mred\\302\\233x')\"" \
    flood 3000 spam sleep 1500 log 6 after-flood
check "suite starts with a proxyd that logs as it likes" \
    suite_start FLM_PROXYD_PATH="$WRAP/log"
check "the line is logged escaped, on one line" wait_until 3000 grep -qF \
    'forged\nflmd[1]: fake entry \x1b[31mred\xc2\x9bx' "$STATE/flmd.log"
check "at priority LOG_ERR (3), not LOG_EMERG (0)" \
    grep -q '^<3>flm-proxyd\[[0-9]*\]: forged' "$STATE/flmd.log"
checkx "no forged line and no raw escape byte reach the log" \
    '! grep -q "^flmd\[1\]" "$STATE/flmd.log" &&
    ! grep -q "$(printf "\033")" "$STATE/flmd.log"'
check "the line after the flood gets through" \
    wait_until 4000 logged 'flm-proxyd\[[0-9]*\]: after-flood'
spam=$(grep -c 'flm-proxyd\[[0-9]*\]: spam ' "$STATE/flmd.log")
checkx "the flood is cut to the burst ($spam of 3000 lines logged)" \
    '[ "$spam" -ge 100 ] && [ "$spam" -le 500 ]'
check "with a summary of what was suppressed" \
    logged 'flm-proxyd: [0-9]* log lines suppressed'
done_with

# 4b. A proxyd sending, one per start, what only keyd sends (a key
# reply, TLS_RENEWED, ACME_FAILED), an ACME_PROGRESS of its own making,
# a LOG with no priority, a PEER_BROKEN naming a worker, and a type no
# child sends: each one cuts its channel, named in the log; keyd stays.
cat >"$WRAP/rotate" <<EOF
#!/bin/sh
n=\$(cat "$WRAP/rotate.n" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$WRAP/rotate.n"
case \$n in
0) exec "$FAKE" json 41 '{}' ;;
1) exec "$FAKE" json 58 '{}' ;;
2) exec "$FAKE" json 81 '{}' ;;
3) exec "$FAKE" json 32 '[1]' ;;
4) exec "$FAKE" json 6 x ;;
5) exec "$FAKE" json 4 xyzw ;;
6) exec "$FAKE" json 999 '{}' ;;
*) exec "$FAKE" sleep 1 ;;
esac
EOF
chmod +x "$WRAP/rotate"
suite_start FLM_PROXYD_PATH="$WRAP/rotate"
check "each is refused by name, the last one too" wait_until 20000 logged \
    'unexpected message type 999 from flm-proxyd'
checkx "… every one of them" \
    'logged "malformed key reply" && logged "malformed TLS_RENEWED" &&
    logged "malformed ACME_FAILED" && logged "malformed ACME_PROGRESS" &&
    logged "malformed LOG" && logged "malformed PEER_BROKEN"'
checkx "flmd lives on, keyd was never restarted, proxyd runs again" \
    'flmd_alive && [ "$(proc_field flm-keyd restarts)" = 0 ] &&
    wait_until 5000 all_running'
done_with

# 5. keyd (less privileged than flmd too) planting a member in flm status.
fake dbstate -k sleep 1500 json 5 "'{\"db\":\"security.db\",\"version\":1,\"safe_mode\":false,\"planted\":\"x\"}'"
check "suite starts with a keyd that reports an odd DB_STATE" \
    suite_start FLM_KEYD_PATH="$WRAP/dbstate"
check "flmd refuses it" wait_until 4000 logged \
    'flm-keyd.*malformed DB_STATE'
checkx "flm status shows nothing planted, flmd lives on" \
    'flmd_alive && ! status_json | grep -q planted'
done_with

# 6. keyd asking flmd to run the DNS-01 hook: for a name of no dns-01
# proxy, to remove a record flmd never added, then for a name that is no
# DNS name.  The first two refused, the third closes keyd's channel; the
# hook never runs.
V=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
dns() { printf "json 79 '{\"handle\":\"127.0.0.1:1\",\"op\":\"%s\",\"name\":\"%s\",\"value\":\"%s\"}'" "$1" "$2" "$V"; }
fake dnshook -k sleep 2500 "$(dns add _acme-challenge.victim.example)" \
    "$(dns remove _acme-challenge.victim.example)" \
    "$(dns add '_acme-challenge.x;reboot')"
printf '#!/bin/sh\necho "$*" >>"%s/hook.ran"\n' "$WRAP" >"$WRAP/hook.sh"
chmod 755 "$WRAP/hook.sh"
check "suite starts with a keyd that asks for DNS records" \
    suite_start FLM_KEYD_PATH="$WRAP/dnshook"
check "acme.dns_hook set" "$FLM" -D "$STATE" config set acme.dns_hook \
    "$WRAP/hook.sh"
check "an add for a name of no dns-01 proxy: refused" wait_until 5000 logged \
    'flm-keyd asked to add TXT _acme-challenge.victim.example for 127.0.0.1:1: not a name of a dns-01 proxy; refused'
check "a remove of a record flmd never added: refused" logged \
    'asked to remove TXT _acme-challenge.victim.example for 127.0.0.1:1: not a record flmd added; refused'
check "a name that is no DNS name: keyd's channel closed" wait_until 3000 \
    logged 'flm-keyd.*malformed ACME_DNS'
checkx "the hook never ran, flmd lives on" \
    '[ ! -e "$WRAP/hook.ran" ] && flmd_alive'
done_with
