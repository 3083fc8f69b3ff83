#!/bin/sh
# Rate limits are counted in flmd's shared region (lib/shm.h,
# IMSG_PROXY_SHM), not in flm-proxyd's memory: a worker killed and
# restarted finds what its predecessor counted, so a restart is no way
# around a limit.  Clients on 127.0.0.2 (curl --interface) are a second
# address on loopback, with a bucket of their own.
. "$(dirname "$0")/lib.sh"

plan 7

check "suite starts" suite_start
F="$FLM -D $STATE"
PORT=$($F proxy start --port 0 --json | jq .port)
U=http://127.0.0.1:$PORT

# hz [curl args]: the status of GET /healthz, which takes from the
# client address's bucket.
hz() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" "$U/healthz"; }
# limited2: 127.0.0.2 is refused, so the policy is in force.
limited2() { [ "$(hz --interface 127.0.0.2)" = 429 ]; }

$F security rate-limit ip --requests 4 >/dev/null
check "the limit is in force (127.0.0.2 used up)" wait_until 5000 limited2
codes="$(hz) $(hz)"
check "two requests from 127.0.0.1 before the restart pass (got $codes)" \
    [ "$codes" = "200 200" ]
checkx "flm-proxyd attached the shared region" \
    'grep -q "rate limits shared with the other workers" "$STATE/flmd.log"'

old=$(proc_pid flm-proxyd)
kill -KILL "$old"
restarted() {
	new=$(proc_pid flm-proxyd)
	[ -n "$new" ] && [ "$new" != "$old" ] && [ "$new" != 0 ] &&
	    [ "$new" != null ] && all_running
}
check "flm-proxyd is back with a new pid" wait_until 5000 restarted
# Listening again, with the policy from keyd: 127.0.0.2 still refused.
check "the restarted proxyd serves, 127.0.0.2 still limited" \
    wait_until 5000 limited2
codes="$(hz) $(hz) $(hz)"
check "127.0.0.1 has two left, not four: 200 200 429 (got $codes)" \
    [ "$codes" = "200 200 429" ]
