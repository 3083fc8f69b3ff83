#!/bin/sh
# install-cycle.sh [DEBDIR]: the life of the flm package in a clean
# Debian 12 root (debootstrap --variant=minbase), as root, with no
# systemd as PID 1: install, flmd started in system mode, a key, a
# policy, a proxy and traffic to the mock engine (run outside: a chroot
# shares the network), the CA trusted; a newer build installed over it,
# flmd again: the same key, the audit chain, the policy and the CA kept;
# remove keeps /var/lib/flm; purge takes it, the users' files and the
# trusted CA away.  DEBDIR holds two flm_*.deb of different versions;
# without it both are built (scripts/build-deb.sh, nocheck).  Prints
# ok / not ok lines and exits 1 if any failed.  FLM_KEEP_CHROOT=1 keeps
# the root; FLM_MIRROR overrides the mirror taken from apt's sources.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: the install cycle needs root (debootstrap, chroot, mounts)"
	exit 0
fi
for c in debootstrap jq curl; do
	command -v $c >/dev/null 2>&1 || {
		echo "install-cycle: $c missing (sh scripts/deps.sh --test --package)" >&2
		exit 1
	}
done
MOCK=$top/build/tests/mock-engine/flm-mock-engine
[ -x "$MOCK" ] || { echo "install-cycle: build first ($MOCK)" >&2; exit 1; }

T=$(mktemp -d /var/tmp/flm-cycle.XXXXXX)
R=$T/root
MOCK_PID=
FLMD_PID=
N=0
FAILED=0
cleanup() {
	[ -n "$FLMD_PID" ] && kill -KILL "$FLMD_PID" 2>/dev/null
	[ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null
	# Whatever still runs from the root (a child flmd started).
	for p in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$(readlink "/proc/$p/root" 2>/dev/null)" = "$R" ] &&
		    kill -KILL "$p" 2>/dev/null
	done
	for m in "$R/dev" "$R/proc"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	if [ "${FLM_KEEP_CHROOT:-0}" = 1 ]; then
		echo "# root kept in $R"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
checkx() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
wait_until() {
	ms=$1; shift
	while [ "$ms" -gt 0 ]; do "$@" && return 0; sleep 0.1; ms=$((ms - 100)); done
	"$@"
}
in_root() { chroot "$R" "$@"; }
F() { chroot "$R" /usr/bin/flm "$@"; }
die() { not_ok "$*"; echo "# $N tests, $FAILED failed"; exit 1; }

# ---- the packages ----------------------------------------------------------
if [ $# -ge 1 ]; then
	DEBS=$(cd "$1" && pwd)
else
	DEBS=$T/debs
	echo "# building two versions of the package"
	DEB_BUILD_OPTIONS=nocheck sh "$top/scripts/build-deb.sh" "$DEBS" >/dev/null &&
	    v=$(sed -n '1s/^flm (\([^)]*\)).*/\1/p' "$top/debian/changelog") &&
	    DEB_BUILD_OPTIONS=nocheck sh "$top/scripts/build-deb.sh" "$DEBS" \
	    "${v%-*}-$((${v##*-} + 1))" >/dev/null || die "the packages build"
fi
# Oldest first, by dpkg's order of versions.
vers=$(for d in "$DEBS"/flm_*.deb; do dpkg-deb -f "$d" Version; done |
    sort -u | while read -r v; do echo "$v"; done)
OLD= NEW=
for v in $vers; do
	if [ -z "$OLD" ] || dpkg --compare-versions "$v" lt "$OLD"; then OLD=$v; fi
	if [ -z "$NEW" ] || dpkg --compare-versions "$v" gt "$NEW"; then NEW=$v; fi
done
[ -n "$OLD" ] && [ "$OLD" != "$NEW" ] || die "two versions of flm in $DEBS"
OLDDEB=$(ls "$DEBS"/flm_"$OLD"_*.deb | head -n 1)
NEWDEB=$(ls "$DEBS"/flm_"$NEW"_*.deb | head -n 1)
echo "# upgrade $OLD -> $NEW"

# ---- a clean Debian 12 -----------------------------------------------------
mirror=${FLM_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
	    awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' |
	    grep -v security | head -n 1)
fi
if [ -z "$mirror" ]; then
	mirror=$(grep -hE '^deb ' /etc/apt/sources.list \
	    /etc/apt/sources.list.d/*.list 2>/dev/null |
	    awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' |
	    grep -v security | head -n 1)
fi
: "${mirror:=http://deb.debian.org/debian}"
echo "# debootstrap --variant=minbase bookworm from $mirror"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$R" "$mirror" >"$T/debootstrap.log" 2>&1 ||
    { tail -20 "$T/debootstrap.log" | sed 's/^/# /'; die "debootstrap"; }
echo "# debootstrap took $(($(date +%s) - t0)) s"
mount -t proc proc "$R/proc" || die "mount /proc in the root"
[ -c "$R/dev/null" ] || mount --bind /dev "$R/dev" || die "/dev in the root"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
cp "$OLDDEB" "$NEWDEB" "$R/tmp/"
check "systemd is not in the root (flmd runs without it)" \
    [ ! -e "$R/lib/systemd/systemd" ]

apt_in() {
	in_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
	    -o Dpkg::Use-Pty=0 "$@" >>"$T/apt.log" 2>&1
}
apt_in update
checkx "apt-get install ./flm_${OLD}.deb (dependencies from the mirror)" \
    'apt_in install "/tmp/$(basename "$OLDDEB")"'
checkx "the users and the group exist" \
    'in_root getent passwd _flm >/dev/null &&
    in_root getent passwd _flmkeyd >/dev/null &&
    in_root getent passwd _flmproxy >/dev/null &&
    in_root getent group flmadm >/dev/null'
checkx "/var/lib/flm 0711, keyd 0700 _flmkeyd, empty 0555" \
    '[ "$(stat -c %a "$R/var/lib/flm")" = 711 ] &&
    [ "$(in_root stat -c "%a %U" /var/lib/flm/keyd)" = "700 _flmkeyd" ] &&
    [ "$(stat -c %a "$R/var/lib/flm/empty")" = 555 ]'
checkx "the unit, sysusers.d, tmpfiles.d and manual pages are installed" \
    '[ -f "$R/lib/systemd/system/flmd.service" ] &&
    [ -f "$R/usr/lib/sysusers.d/flm.conf" ] &&
    [ -f "$R/usr/lib/tmpfiles.d/flm.conf" ] &&
    [ -f "$R/usr/share/man/man8/flmd.8.gz" ] &&
    [ -f "$R/usr/share/man/man1/flm.1.gz" ]'

start_flmd() {
	chroot "$R" /usr/sbin/flmd -d >>"$T/flmd.log" 2>&1 &
	FLMD_PID=$!
	wait_until 10000 all_up
}
# keyd and every proxy.workers worker (one per CPU by default) running.
all_up() {
	[ "$(F status --json 2>/dev/null | jq '(.processes | length) >= 2 and
	    all(.processes[]; .state == "running")')" = true ]
}
stop_flmd() {
	kill -TERM "$FLMD_PID" 2>/dev/null
	wait "$FLMD_PID" 2>/dev/null
	FLMD_PID=
}

# ---- the mock engine, outside the root -------------------------------------
"$MOCK" --listen 127.0.0.1:0 --port-file "$T/mock.port" --flavor ollama \
    >"$T/mock.log" 2>&1 &
MOCK_PID=$!
wait_until 3000 test -s "$T/mock.port"
MPORT=$(cat "$T/mock.port")
chat() {
	curl -s -m 10 -o "$T/chat.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
	    -d '{"model":"flm://ollama/llama3.2:1b","messages":[{"role":"user","content":"hi"}]}' \
	    "http://127.0.0.1:$2/v1/chat/completions"
}
answered() { [ "$(chat "$1" "$2")" = 200 ] && jq -e '.choices[0].message.content' "$T/chat.out" >/dev/null; }

check "flmd starts in system mode in the root" start_flmd
checkx "status says system mode" '[ "$(F status --json | jq -r .mode)" = system ]'
F config set engines.ollama.url "http://127.0.0.1:$MPORT" >/dev/null
KEY=$(F api-keys create --label cycle --json | jq -r .key)
PORT=$(F proxy start --port 0 --json | jq .port)
checkx "a key and a proxy; a chat answered by the mock engine" \
    'wait_until 5000 answered "$KEY" "$PORT"'
# A listed range makes the allowlist exclusive: loopback is listed too.
checkx "a policy: flm security ip allow 10.9.8.0/24 and 127.0.0.0/8" \
    'F security ip allow 127.0.0.0/8 >/dev/null &&
    F security ip allow 10.9.8.0/24 >/dev/null &&
    F security policy show --json | grep -q 10.9.8.0/24 &&
    answered "$KEY" "$PORT"'
CAPORT=$(F proxy start --port 0 --bind 127.0.0.1 --mode packaged-ca --json | jq .port)
checkx "a packaged-ca proxy, and the local CA trusted (flm ca trust)" \
    '[ -n "$CAPORT" ] && [ "$CAPORT" != null ] && F ca trust >/dev/null &&
    [ -f "$R/usr/local/share/ca-certificates/flm-local-ca.crt" ]'
CASUM=$(F ca status --json | jq -r .sha256)
cp "$R/usr/local/share/ca-certificates/flm-local-ca.crt" "$T/ca.pem" 2>/dev/null
# A line of the CA's base64, to look for in the bundle.
caline() { sed -n 3p "$T/ca.pem"; }
checkx "the CA is in the system bundle" \
    '[ -n "$(caline)" ] && grep -qF "$(caline)" "$R/etc/ssl/certs/ca-certificates.crt"'
checkx "flm audit verify" 'F audit verify >/dev/null'
stop_flmd

# ---- upgrade ----------------------------------------------------------------
checkx "apt-get install ./flm_${NEW}.deb over $OLD" \
    'apt_in install "/tmp/$(basename "$NEWDEB")" &&
    [ "$(in_root dpkg-query -W -f "\${Version}" flm)" = "$NEW" ]'
check "flmd starts again after the upgrade" start_flmd
checkx "the same key still works through the restored proxy" \
    'wait_until 5000 answered "$KEY" "$PORT"'
checkx "flm audit verify: the chain is intact" 'F audit verify >/dev/null'
checkx "the policy is kept" 'F security policy show --json | grep -q 10.9.8.0/24'
checkx "the CA is kept (same certificate)" \
    '[ "$(F ca status --json | jq -r .sha256)" = "$CASUM" ]'
stop_flmd

# ---- remove, purge ------------------------------------------------------------
KUID=$(in_root id -u _flmkeyd)
PUID=$(in_root id -u _flmproxy)
FUID=$(in_root id -u _flm)
checkx "apt-get remove flm" \
    'apt_in remove flm && [ ! -e "$R/usr/sbin/flmd" ]'
checkx "remove keeps /var/lib/flm (security.db, config.db)" \
    '[ -f "$R/var/lib/flm/keyd/security.db" ] && [ -f "$R/var/lib/flm/config.db" ]'
check "apt-get purge flm" apt_in purge flm
check "purge removes /var/lib/flm" [ ! -e "$R/var/lib/flm" ]
checkx "no file of _flm, _flmkeyd or _flmproxy is left" \
    '[ -z "$(find "$R" -xdev \( -uid "$KUID" -o -uid "$PUID" -o -uid "$FUID" \) -print 2>/dev/null | head -n 1)" ]'
checkx "the trusted CA is gone, from the store and the bundle" \
    '[ ! -e "$R/usr/local/share/ca-certificates/flm-local-ca.crt" ] &&
    ! grep -qF "$(caline)" "$R/etc/ssl/certs/ca-certificates.crt" &&
    [ -z "$(find "$R/etc/ssl/certs" -xtype l -name "flm-local-ca*" 2>/dev/null)" ] &&
    [ -z "$(find "$R/etc/ssl/certs" -name "flm-local-ca*" 2>/dev/null)" ]'

if [ "$FAILED" -gt 0 ]; then
	echo "# apt log:"
	tail -30 "$T/apt.log" | sed 's/^/# /'
	echo "# flmd log:"
	tail -30 "$T/flmd.log" | sed 's/^/# /'
fi
echo "1..$N"
echo "# $N tests, $FAILED failed, $(($(date +%s) - t0)) s in the root"
[ "$FAILED" -eq 0 ]
