#!/bin/sh
# System mode: each child runs as its own user in its own chroot, with
# no capabilities and no way back; keys still work end to end.  Needs
# root.  It creates the system users the package's sysusers.d would.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP system mode needs root"
	exit 0
fi
for u in _flmkeyd _flmproxy; do
	getent passwd $u >/dev/null || useradd --system --no-create-home \
	    --home-dir /nonexistent --shell /usr/sbin/nologin $u
done

plan 19

STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
LX=$(sys_libexec)
"$FLMD" -d -s -D "$STATE" -L "$LX" >"$STATE.log" 2>&1 &
FLMD_PID=$!
trap 'suite_cleanup; [ "$T_FAILED" -gt 0 ] && sed "s/^/# /" "$STATE.log"; rm -f "$STATE.log"; rm -rf "$LX"' EXIT
check "flmd starts in system mode" wait_until 5000 all_running
check "status says system mode" [ "$(status_json | jq -r .mode)" = system ]

keyd=$(proc_pid flm-keyd)
proxyd=$(proc_pid flm-proxyd)
uid_of() { id -u "$1"; }
ids() { awk -v f="$2" '$1 == f { print $2, $3, $4, $5 }' /proc/"$1"/status; }
for p in keyd proxyd; do
	pid=$(eval echo \$$p)
	u=$([ $p = keyd ] && echo _flmkeyd || echo _flmproxy)
	n=$(uid_of $u)
	g=$(id -g $u)
	check "flm-$p runs as $u (real, effective, saved, fs)" \
	    [ "$(ids "$pid" Uid:)" = "$n $n $n $n" ]
	checkx "flm-$p has $u's group only" \
	    '[ "$(ids "$pid" Gid:)" = "$g $g $g $g" ] &&
	    [ "$(awk "\$1 == \"Groups:\" { print \$2 }" /proc/"$pid"/status)" = "$g" ]'
	check "flm-$p has no capabilities" \
	    grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/"$pid"/status
	check "flm-$p is sandboxed (seccomp, no_new_privs)" \
	    grep -q '^Seccomp:[[:space:]]*2$' /proc/"$pid"/status
done
check "flm-keyd is chrooted to its directory" \
    [ "$(readlink /proc/"$keyd"/root)" = "$STATE/keyd" ]
check "flm-proxyd is chrooted to an empty directory" \
    [ "$(readlink /proc/"$proxyd"/root)" = "$STATE/empty" ]
checkx "the state directory is 0711, keyd's own 0700 and _flmkeyd's" \
    '[ "$(stat -c %a "$STATE")" = 711 ] &&
    [ "$(stat -c "%a %U" "$STATE/keyd")" = "700 _flmkeyd" ]'

F="$FLM -D $STATE"
KEY=$($F api-keys create --label sys --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)
check "a key made in system mode is served through the chrooted proxyd" \
    [ "$(http_code "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")" = 200 ]
check "security.db belongs to _flmkeyd with mode 0600" \
    [ "$(stat -c '%a %U' "$STATE/keyd/security.db")" = "600 _flmkeyd" ]
kill -KILL "$keyd"
back() { [ "$(proc_field flm-keyd state)" = running ] && [ "$(proc_pid flm-keyd)" != "$keyd" ]; }
n=$(uid_of _flmkeyd)
checkx "a killed keyd comes back as _flmkeyd" \
    'wait_until 2000 back && [ "$(ids "$(proc_pid flm-keyd)" Uid:)" = "$n $n $n $n" ]'

# The DNS-01 hook runs as acme.dns_user (nobody by default), never as
# root or with a capability, and only from a file root alone can change.
. "$(dirname "$0")/pebble.sh"
if ! command -v pebble >/dev/null 2>&1 && [ "${CI:-}" != true ]; then
	for i in 1 2 3; do ok "DNS-01 hook in system mode # SKIP no pebble"; done
else
	pebble_start PEBBLE_AUTHZREUSE=0
	# mock_init's EXIT trap took the place of ours: both in one.
	trap 'for p in $MOCK_PIDS; do kill $p 2>/dev/null; done; suite_cleanup; [ "$T_FAILED" -gt 0 ] && sed "s/^/# /" "$STATE.log"; rm -f "$STATE.log"; rm -rf "$LX" "$TMP" "$H"' EXIT
H=$(mktemp -d "${TMPDIR:-/tmp}/flmh.XXXXXX")
chmod 755 "$H"
mkdir -m 1777 "$H/out"
challtest_hook "$H/hook.sh" \
    "{ id -u; id -G; grep '^CapEff:' /proc/self/status; } >\"$H/out/\$1.id\""
chmod 775 "$H/hook.sh"
check "a hook that group members may change: refused" \
    fails_with "must be root's and not writable by group or others" \
    $F config set acme.dns_hook "$H/hook.sh"
chmod 755 "$H/hook.sh"
$F config set acme.dns_hook "$H/hook.sh" >/dev/null
$F config set acme.dns_wait 0 >/dev/null
P=$(free_port)
$F proxy start --port "$P" --mode https-acme --challenge dns-01 \
    --domain flm-sys.example.com --acme-directory "$PEBBLE_DIRECTORY" \
    --acme-ca "$PEBBLE_CA" >"$H/start.out" 2>&1 || diag "$(cat "$H/start.out")"
nobody=$(id -u nobody)
ngroup=$(id -g nobody)
checkx "the hook ran as nobody, in nobody's group only, without capabilities" \
    '[ "$(sed -n 1p "$H/out/add.id")" = "$nobody" ] &&
    [ "$(sed -n 2p "$H/out/add.id")" = "$ngroup" ] &&
    grep -q "^CapEff:[[:space:]]*0000000000000000$" "$H/out/add.id"'
check "and the certificate came (DNS-01 in system mode)" \
    [ "$($F proxy status --json | jq -r ".[] | select(.port == $P) | .mode")" = https-acme ]
fi
