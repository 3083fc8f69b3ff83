# Shared by the TAP integration tests: start a real FLM suite in user
# mode in a private state directory, poll for conditions, report TAP.
# Sourced, not run.  Needs: jq.

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
FLMD=$top_builddir/flmd/flmd
FLM=$top_builddir/flm/flm
KEYD=$top_builddir/flm-keyd/flm-keyd
PROXYD=$top_builddir/flm-proxyd/flm-proxyd
PROBE=$top_builddir/tests/sandbox-probe
UDS_SEND=$top_builddir/tests/uds-send
unset FLM_STATE_DIR FLM_KEYD_PATH FLM_PROXYD_PATH FLM_SANDBOX_DEBUG
# COVERAGE_DIR: in a coverage build (./configure --enable-coverage), the
# directory its sandboxes let keyd and proxyd write gcov's files below;
# empty in any other build.
COVERAGE_DIR=$(sed -n 's/^#define FLM_COVERAGE_DIR "\(.*\)"$/\1/p' \
    "$top_builddir/config.h" 2>/dev/null)
# proxy.workers is one per CPU by default: every flmd a test starts runs
# one worker (so every test keeps its meaning) unless it asks for more
# (WORKERS, for suite_start) or sets proxy.workers.
FLM_PROXY_WORKERS=1
export FLM_PROXY_WORKERS

T_N=0
T_FAILED=0
FLMD_PID=
STATE=

plan() { echo "1..$1"; }

ok() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $*"
}

not_ok() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*"
}

diag() { echo "$*" | sed 's/^/# /'; }

# check DESCRIPTION COMMAND...: one test point from a command's status.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# wait_until MS COMMAND...: poll every 20 ms until COMMAND succeeds.
wait_until() {
	ms=$1
	shift
	while [ "$ms" -gt 0 ]; do
		"$@" && return 0
		sleep 0.02
		ms=$((ms - 20))
	done
	"$@"
}

status_json() { "$FLM" -D "$STATE" status --json 2>/dev/null; }

# proc_field NAME FIELD: one field of one process from flm status.
proc_field() {
	status_json | jq -r --arg n "$1" --arg f "$2" \
	    '.processes[] | select(.name == $n) | .[$f]'
}

proc_pid() { proc_field "$1" pid; }

# flmd, keyd and $WORKERS flm-proxyd workers (1 unless a test asks for
# more), all running and no other process (a worker still draining).
all_running() {
	[ "$(status_json | jq '[.processes[] | select(.state == "running")]
	    | length, (.processes | length)' 2>/dev/null | sort -u)" = \
	    $((2 + ${WORKERS:-1})) ]
}

pid_alive() { [ -n "$1" ] && [ "$1" -gt 0 ] && kill -0 "$1" 2>/dev/null; }

# suite_start [ENV=VALUE ...]: a fresh state directory and a running suite.
suite_start() {
	suite_stop
	[ -n "$STATE" ] && rm -rf "$STATE"
	STATE=$(mktemp -d "${TMPDIR:-/tmp}/flmt.XXXXXX")
	env FLM_PROXY_WORKERS="${WORKERS:-1}" "$@" "$FLMD" -d -v -D "$STATE" \
	    >"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
	if ! wait_until 5000 all_running; then
		diag "suite did not come up:"
		diag "$(cat "$STATE/flmd.log")"
		return 1
	fi
}

# suite_restart PORT: flmd stopped and started again on the same state
# directory, with a proxy on PORT serving again.
suite_restart() {
	suite_stop
	FLM_PROXY_WORKERS="${WORKERS:-1}" "$FLMD" -d -v -D "$STATE" \
	    >>"$STATE/flmd.log" 2>&1 &
	FLMD_PID=$!
	wait_until 5000 all_running
	"$FLM" -D "$STATE" proxy start --port "$1" >/dev/null 2>&1
	wait_until 3000 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' \
	    -m 2 http://127.0.0.1:$1/healthz)\" != 000 ]"
}

suite_stop() {
	[ -n "$FLMD_PID" ] || return 0
	kill -TERM "$FLMD_PID" 2>/dev/null
	wait "$FLMD_PID" 2>/dev/null
	FLMD_PID=
}

# Keep the logs of a failed run in the TAP output, then clean up.
suite_cleanup() {
	if [ -n "$FLMD_PID" ] && [ -n "$COVERAGE_DIR" ]; then
		# A killed flmd writes no gcov counters: what the test ran
		# would not count.  Stopped as flmd stop does, killed if it
		# hangs (the watchdog's fds are not the TAP driver's pipe).
		{ sleep 15 && kill -KILL "$FLMD_PID"; } \
		    >/dev/null 2>&1 </dev/null &
		_w=$!
		kill -TERM "$FLMD_PID" 2>/dev/null
		wait "$FLMD_PID" 2>/dev/null
		kill "$_w" 2>/dev/null
	elif [ -n "$FLMD_PID" ]; then
		kill -KILL "$FLMD_PID" 2>/dev/null
		wait "$FLMD_PID" 2>/dev/null
	fi
	if [ -n "$STATE" ] && [ -d "$STATE" ]; then
		if [ "$T_FAILED" -gt 0 ] && [ -f "$STATE/flmd.log" ]; then
			diag "flmd.log:"
			diag "$(cat "$STATE/flmd.log")"
		fi
		rm -rf "$STATE"
	fi
}

# fake NAME ARGS...: WRAP/NAME, a proxyd (for FLM_PROXYD_PATH) that is
# tests/fake-proxyd ARGS, a subverted proxyd, on its first start and the
# real one after.  The test sets WRAP, a scratch directory.
FAKE=$top_builddir/tests/fake-proxyd
fake() {
	name=$1
	shift
	cat >"$WRAP/$name" <<EOS
#!/bin/sh
if [ ! -e "$WRAP/$name.started" ]; then
	: >"$WRAP/$name.started"
	exec "$FAKE" $*
fi
exec "$PROXYD" "\$@"
EOS
	chmod +x "$WRAP/$name"
}

trap suite_cleanup EXIT

# unavailable WHAT: a test that needs what is missing: skipped, but
# failed under CI (CI=true), where scripts/deps.sh installs it.
unavailable() {
	if [ "${CI:-}" = true ]; then
		plan 1
		not_ok "$* (required under CI: see scripts/deps.sh)"
		exit 1
	fi
	echo "1..0 # SKIP $*"
	exit 0
}

# A free TCP port on loopback (the kernel's pick, released at once).
free_port() {
	"$top_builddir/tests/uds-send" -p 2>/dev/null
}

# http_code URL [curl args...]: the status code only.
http_code() {
	url=$1
	shift
	curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" "$url"
}

# detect: flm engines detect's verdicts into DET; field ID MEMBER: one
# member of engine ID's verdict (the tests set F, flm with -D).
detect() { DET=$($F engines detect --json); }
field() { echo "$DET" | jq -r --arg i "$1" ".[] | select(.id == \$i) | .$2"; }

# json_has JSON FILTER: jq's FILTER is true of JSON.
json_has() { printf '%s' "$1" | jq -e "$2" >/dev/null 2>&1; }

# checkx DESCRIPTION 'shell condition': one test point from a whole
# condition (&&, ||), evaluated when the point is checked.
checkx() {
	desc=$1
	shift
	if eval "$*"; then ok "$desc"; else not_ok "$desc"; fi
}

# mock_init: a scratch directory and the cleanup for mock engines.
# mock ARGS...: start one mock engine (flm-mock-engine's options, a
# free loopback port); its port is left in MPORT.  Not to be called in a
# subshell: the pid list must survive for the cleanup.
MOCK=$top_builddir/tests/mock-engine/flm-mock-engine
MOCK_PIDS=
NMOCK=0
mock_init() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmm.XXXXXX")
	trap 'for p in $MOCK_PIDS; do kill $p 2>/dev/null; done;
	    suite_cleanup; rm -rf "$TMP"' EXIT
}
mock() {
	NMOCK=$((NMOCK + 1))
	"$MOCK" --listen 127.0.0.1:0 --port-file "$TMP/$NMOCK.port" "$@" \
	    >"$TMP/$NMOCK.log" 2>&1 &
	MOCK_PIDS="$MOCK_PIDS $!"
	wait_until 3000 test -s "$TMP/$NMOCK.port"
	MPORT=$(cat "$TMP/$NMOCK.port")
}

# fails_with 'TEXT' COMMAND...: refused, and the error says TEXT (its
# output and error in STATE/fails.out and fails.err).
fails_with() {
	want=$1
	shift
	if "$@" >"$STATE/fails.out" 2>"$STATE/fails.err"; then
		return 1
	fi
	grep -qF -- "$want" "$STATE/fails.err" ||
	    { diag "$(cat "$STATE/fails.err")"; return 1; }
}

# get URL [curl args] / post URL BODY: a body, nothing else.
get() { curl -s -m 5 "$@"; }
post() {
	u=$1
	shift
	curl -s -m 5 -H 'Content-Type: application/json' -d "$@" "$u"
}

# printf formats of a raw HELLO frame (type 1, length 29, protocol 1,
# version "x") as flm-proxyd would send it, for fake children.
HELLO_PROXYD='\001\000\000\000\035\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\003\000\000\000\001\000\000\000x'

# sys_libexec: system mode runs its children only from a directory of
# root's (flmd -L): a root-owned copy of them, for running uninstalled
# from a clone in any directory.  Prints the directory.
# public_tree DIR: a copy of the programs in DIR, which anyone may read
# and run (so must the directories above it), laid out as the build
# tree (flmd finds its children beside it), for tests that run them as
# another user (nobody) when the clone itself is private (under /root,
# say).  The caller removes it.
public_tree() {
	d=$1
	mkdir -p "$d" || return 1
	for b in flmd/flmd flm/flm flm-keyd/flm-keyd flm-proxyd/flm-proxyd \
	    tests/mock-engine/flm-mock-engine tests/ptrace-inject; do
		[ -x "$top_builddir/$b" ] || continue
		mkdir -p "$d/${b%/*}" &&
		    install -m 755 "$top_builddir/$b" "$d/$b" || return 1
	done
	chmod -R a+rX "$d"
}

sys_libexec() {
	d=$(mktemp -d "${TMPDIR:-/tmp}/flml.XXXXXX") &&
	    install -m 755 "$KEYD" "$PROXYD" "$d/" && chmod 755 "$d" &&
	    echo "$d"
}

# openai_install: the official npm clients (openai 4.x, ollama,
# @anthropic-ai/sdk) installed once into NPM_DIR (FLM_NPM_DIR, default
# ~/.cache/flm-npm, outside the tree), for the tests that run
# tests/integration/*-client.mjs; unavailable without node or npm, or
# when npm cannot fetch them.  Needs mock_init's TMP.
NPM_DIR=${FLM_NPM_DIR:-${HOME:-/nonexistent}/.cache/flm-npm}
NPM_CLIENTS="openai@4 ollama@0 @anthropic-ai/sdk@1"
openai_major() {
	jq -r '.version | split(".")[0]' \
	    "$NPM_DIR/node_modules/openai/package.json" 2>/dev/null
}
openai_install() {
	command -v node >/dev/null 2>&1 || unavailable "node is not installed"
	if [ "$(openai_major)" = "" ] || [ "$(openai_major)" -lt 4 ] ||
	    [ ! -f "$NPM_DIR/node_modules/ollama/package.json" ] ||
	    [ ! -f "$NPM_DIR/node_modules/@anthropic-ai/sdk/package.json" ]
	then
		command -v npm >/dev/null 2>&1 ||
		    unavailable "npm is not installed"
		# Offline, fail in seconds rather than after a minute of retries.
		# shellcheck disable=SC2086
		if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund \
		    --fetch-retries=1 --fetch-retry-mintimeout=1000 \
		    --fetch-retry-maxtimeout=3000 $NPM_CLIENTS \
		    >"$TMP/npm.log" 2>&1
		then
			diag "$(cat "$TMP/npm.log")"
			unavailable "npm install $NPM_CLIENTS into $NPM_DIR failed"
		fi
	fi
}

# openai_run BASEURL KEY [ENV=VALUE ...]: tests/integration/$OPENAI_SCRIPT
# (openai-client.mjs)
# against BASEURL, its checks as this test's points (OPENAI_POINTS of
# them: a crash fails those left), each named after OPENAI_TAG if set;
# ENV for node (NODE_EXTRA_CA_CERTS).
OPENAI_POINTS=5
OPENAI_TAG=
OPENAI_SCRIPT=openai-client.mjs
openai_run() {
	o_base=$1
	o_key=$2
	shift 2
	timeout 120 env FLM_NPM_DIR="$NPM_DIR" FLM_TEST_KEY="$o_key" "$@" \
	    node "$top_srcdir/tests/integration/$OPENAI_SCRIPT" "$o_base" \
	    >"$TMP/node.out" 2>"$TMP/node.err"
	o_n=0
	while IFS= read -r l; do
		case $l in
		"ok - "*)	o_n=$((o_n + 1)); ok "$OPENAI_TAG${l#ok - }" ;;
		"not ok - "*)	o_n=$((o_n + 1))
				not_ok "$OPENAI_TAG${l#not ok - }" ;;
		"#"*)		echo "$l" ;;
		esac
	done <"$TMP/node.out"
	[ -s "$TMP/node.err" ] && diag "$(cat "$TMP/node.err")"
	while [ $o_n -lt $OPENAI_POINTS ]; do
		o_n=$((o_n + 1))
		not_ok "${OPENAI_TAG}openai: check $o_n did not run"
	done
}

# puppeteer_install: puppeteer-core, to drive the Debian chromium from
# node (tests/integration/console.t), installed once into NPM_DIR as
# openai_install does; unavailable without node or npm, or when npm
# cannot fetch it.  Pinned: 24.43.1, the last release for node 18 and
# 20 (Debian 12's nodejs is 18; 25.x wants 22.12), made for Chromium 148
# and driving the later ones bookworm-security ships (156 here).  Needs
# mock_init's TMP.
PUPPETEER_VERSION=24.43.1
puppeteer_installed() {
	[ "$(jq -r .version \
	    "$NPM_DIR/node_modules/puppeteer-core/package.json" \
	    2>/dev/null)" = "$PUPPETEER_VERSION" ]
}
puppeteer_install() {
	command -v node >/dev/null 2>&1 || unavailable "node is not installed"
	puppeteer_installed && return 0
	command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"
	if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund \
	    --fetch-retries=1 --fetch-retry-mintimeout=1000 \
	    --fetch-retry-maxtimeout=3000 \
	    "puppeteer-core@$PUPPETEER_VERSION" >"$TMP/npm.log" 2>&1 ||
	    ! puppeteer_installed
	then
		diag "$(cat "$TMP/npm.log")"
		unavailable "npm install puppeteer-core@$PUPPETEER_VERSION into $NPM_DIR failed"
	fi
}
