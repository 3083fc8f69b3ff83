# Pebble (Let's Encrypt's ACME test server) and pebble-challtestsrv on
# loopback, for the ACME tests.  Sourced after lib.sh, not run.  Needs
# openssl, curl, jq and mock_init (called here if TMP is unset): pebble
# lives in TMP/pebble and mock_init's EXIT trap stops it too.  A DNS-01
# hook may source this file alone: challtest_txt_* need only curl, jq
# and CHALLTEST_MGMT.
#
# pebble_start [ENV=VALUE ...]: pebble and its DNS up, ENV for pebble
# (PEBBLE_WFE_NONCEREJECT=0, PEBBLE_VA_ALWAYS_VALID=1, ...).  Call it
# before plan (it skips the test when pebble is missing) and not in a
# subshell (the pids must survive for the cleanup).  Pebble validates
# HTTP-01 on PEBBLE_HTTP_PORT and TLS-ALPN-01 on PEBBLE_TLS_PORT, free
# ports unless set: FLM must listen there.  Every name resolves to
# 127.0.0.1 through challtestsrv's DNS.  Exports PEBBLE_DIRECTORY,
# PEBBLE_CA (what trusts pebble's API), PEBBLE_MGMT, PEBBLE_HTTP_PORT,
# PEBBLE_TLS_PORT and CHALLTEST_MGMT.  PEBBLE_CERT_VALIDITY (seconds, if
# set): the lifetime of the certificates it issues, for renewals.
PEBBLE_PIDS=
PEBBLE_SH=$(cd "$(dirname "$0")" && pwd)/pebble.sh
pebble_start() {
	command -v pebble >/dev/null 2>&1 &&
	    command -v pebble-challtestsrv >/dev/null 2>&1 &&
	    command -v openssl >/dev/null 2>&1 ||
	    unavailable "pebble is not installed"
	pebble_stop
	[ -n "${TMP:-}" ] || mock_init
	PEBBLE_DIR=$TMP/pebble
	d=$PEBBLE_DIR
	rm -rf "$d" && mkdir -p "$d" || return 1
	# Debian's package ships no certificates for pebble's own HTTPS.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
	    -subj "/CN=FLM test pebble API CA" >"$d/openssl.log" 2>&1 &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 \
	    -subj /CN=localhost -CA "$d/ca.pem" -CAkey "$d/ca.key" \
	    -addext basicConstraints=critical,CA:FALSE \
	    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -addext extendedKeyUsage=serverAuth >>"$d/openssl.log" 2>&1 || {
		diag "$(cat "$d/openssl.log")"
		return 1
	}
	PEBBLE_CA=$d/ca.pem
	: "${PEBBLE_HTTP_PORT:=$(free_port)}"
	: "${PEBBLE_TLS_PORT:=$(free_port)}"
	p_api=$(free_port)
	p_mgmt=$(free_port)
	p_dns=$(free_port)
	p_cts=$(free_port)
	p_valid=
	[ -z "${PEBBLE_CERT_VALIDITY:-}" ] || p_valid=", \"certificateValidityPeriod\": $PEBBLE_CERT_VALIDITY"
	# No unknown-field check in pebble: a misspelt key is silently
	# ignored, hence only the names its Config struct has (2.4.0).
	cat >"$d/config.json" <<EOF
{"pebble": {
  "listenAddress": "127.0.0.1:$p_api",
  "managementListenAddress": "127.0.0.1:$p_mgmt",
  "certificate": "$d/cert.pem",
  "privateKey": "$d/key.pem",
  "httpPort": $PEBBLE_HTTP_PORT,
  "tlsPort": $PEBBLE_TLS_PORT,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false$p_valid
}}
EOF
	# Its own challenge servers off: they would answer in FLM's place.
	pebble-challtestsrv -dns01 "127.0.0.1:$p_dns" -http01 "" -https01 "" \
	    -tlsalpn01 "" -management "127.0.0.1:$p_cts" \
	    -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
	    >"$d/challtestsrv.log" 2>&1 &
	PEBBLE_PIDS=$!
	env PEBBLE_VA_NOSLEEP=1 "$@" pebble -config "$d/config.json" \
	    -dnsserver "127.0.0.1:$p_dns" >"$d/pebble.log" 2>&1 &
	PEBBLE_PIDS="$PEBBLE_PIDS $!"
	# mock_init's EXIT trap kills MOCK_PIDS: pebble goes with them.
	MOCK_PIDS="$MOCK_PIDS $PEBBLE_PIDS"
	PEBBLE_DIRECTORY=https://127.0.0.1:$p_api/dir
	PEBBLE_MGMT=https://127.0.0.1:$p_mgmt
	CHALLTEST_MGMT=http://127.0.0.1:$p_cts
	export PEBBLE_DIRECTORY PEBBLE_CA PEBBLE_MGMT PEBBLE_HTTP_PORT \
	    PEBBLE_TLS_PORT CHALLTEST_MGMT
	# wait_until counts only its sleeps, not the curls: a deadline.
	p_end=$(($(date +%s) + 10))
	wait_until 10000 pebble_wait
	if ! pebble_up; then
		diag "pebble did not come up ($PEBBLE_DIRECTORY):"
		diag "$(cat "$d/pebble.log" "$d/challtestsrv.log")"
		return 1
	fi
}

# Both answer: the directory (with newNonce) and challtestsrv's API.
# Not jq -e: jq 1.6 succeeds on empty input (pebble making its keys).
pebble_up() {
	[ -n "$(curl -s -m 2 --cacert "$PEBBLE_CA" "$PEBBLE_DIRECTORY" |
	    jq -r '.newNonce // empty' 2>/dev/null)" ] &&
	    [ "$(http_code "$CHALLTEST_MGMT/")" != 000 ]
}

# Nothing more to wait for: up, one of them dead, or past the deadline.
pebble_wait() {
	for p in $PEBBLE_PIDS; do pid_alive "$p" || return 0; done
	pebble_up || [ "$(date +%s)" -ge "$p_end" ]
}

# pebble_stop: both stopped and reaped; again is harmless.
pebble_stop() {
	[ -n "$PEBBLE_PIDS" ] || return 0
	for p in $PEBBLE_PIDS; do kill "$p" 2>/dev/null; done
	for p in $PEBBLE_PIDS; do wait "$p" 2>/dev/null; done
	# Reaped pids may be reused: keep the EXIT trap off them.
	m=
	for p in $MOCK_PIDS; do
		case " $PEBBLE_PIDS " in *" $p "*) ;; *) m="$m $p" ;; esac
	done
	MOCK_PIDS=$m
	PEBBLE_PIDS=
}

# pebble_roots FILE: the root pebble issues under (new at every start),
# alone: an intermediate in FILE would hide a server that leaves it out
# of its chain.
pebble_roots() {
	curl -sf -m 5 --cacert "$PEBBLE_CA" "$PEBBLE_MGMT/roots/0" >"$1" &&
	    grep -q 'BEGIN CERTIFICATE' "$1"
}

# challtest_txt_set NAME VALUE / challtest_txt_clear NAME: a TXT record
# in challtestsrv's DNS, for DNS-01.  It stores a name without the final
# dot but never answers for it: the dot is added here.
challtest_host() { case $1 in *.) echo "$1" ;; *) echo "$1." ;; esac; }
challtest_txt_set() {
	curl -sf -m 5 -o /dev/null "$CHALLTEST_MGMT/set-txt" -d "$(jq -cn \
	    --arg h "$(challtest_host "$1")" --arg v "$2" \
	    '{host: $h, value: $v}')"
}
challtest_txt_clear() {
	curl -sf -m 5 -o /dev/null "$CHALLTEST_MGMT/clear-txt" -d "$(jq -cn \
	    --arg h "$(challtest_host "$1")" '{host: $h}')"
}

# challtest_hook FILE [COMMAND]: an acme.dns_hook in FILE (mode 755)
# that runs COMMAND (shell text; "$1" is the operation), then publishes
# or removes the TXT record in challtestsrv's DNS of the moment: write
# it again after a restart of pebble.
challtest_hook() {
	cat >"$1" <<EOF
#!/bin/sh
${2:-:}
CHALLTEST_MGMT=$CHALLTEST_MGMT
. "$PEBBLE_SH"
case \$1 in
add)	challtest_txt_set "\$2" "\$3" ;;
remove)	challtest_txt_clear "\$2" ;;
*)	echo "unknown operation \$1"; exit 2 ;;
esac
EOF
	chmod 755 "$1"
}
