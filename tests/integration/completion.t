#!/bin/sh
# The bash completion of flm (flm/flm.bash, made at build from flm -T):
# sourced in bash, its _flm driven through COMP_WORDS and COMP_CWORD as
# bash drives it; every command of the table offered, word by word.
. "$(dirname "$0")/lib.sh"

COMP=$top_builddir/flm/flm.bash
command -v bash >/dev/null 2>&1 || unavailable "bash is not installed"

plan 14

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmm.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/statedir" "$TMP/stuff"
: >"$TMP/policy.json"

# comp WORD...: what _flm offers for the last word, sorted, one a line.
comp() {
	bash -c '. "$0"
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	_flm
	printf "%s\n" "${COMPREPLY[@]}" | sort' "$COMP" "$@"
}
words() { printf '%s\n' "$@" | sort; }

check "flm/flm.bash is there and bash reads it" bash -n "$COMP"
first=$("$FLM" -T | awk '{ print $1 }' | sort -u)
checkx "the first word: every command's first word, no more" \
    '[ "$(comp flm "")" = "$first" ] &&
    printf "%s\n" "$first" | grep -qx api-keys &&
    printf "%s\n" "$first" | grep -qx status'

checkx "the first word, from a prefix" \
    '[ "$(comp flm a)" = "$(words api-keys audit)" ]'
checkx "the second word of api-keys" \
    '[ "$(comp flm api-keys "")" = "$(words create list revoke rotate scope)" ]'
checkx "the third word of security rate-limit" \
    '[ "$(comp flm security rate-limit "")" = "$(words ip key)" ]'
checkx "the options of proxy start" \
    '[ "$(comp flm proxy start --)" = "$(words --acme-ca --acme-directory \
    --acme-http-port --acme-staging --bench-no-auth --bind --challenge \
    --client-certs --domain --email --hsts --json --mode --no-bearer \
    --port)" ]'
checkx "the values of --mode, after a space and after =" \
    '[ "$(comp flm proxy start --mode "")" = "$(words local-http \
    dev-selfsigned packaged-ca https-acme)" ] &&
    [ "$(comp flm proxy start --port 8443 --mode = d)" = dev-selfsigned ]'
checkx "the values of --client-certs and --credentials" \
    '[ "$(comp flm proxy start --client-certs o)" = "$(words off optional)" ] &&
    [ "$(comp flm security cors --credentials "")" = "$(words no yes)" ]'
checkx "after the value of an option, the options again" \
    '[ "$(comp flm proxy start --mode local-http --cl)" = --client-certs ]'
checkx "files for a file option and a file argument" \
    '[ "$(comp flm ca export --out "$TMP/po")" = "$TMP/policy.json" ] &&
    [ "$(comp flm security policy set "$TMP/po")" = "$TMP/policy.json" ]'
checkx "directories for -D, then the commands" \
    '[ "$(comp flm -D "$TMP/s")" = "$(words "$TMP/statedir" "$TMP/stuff")" ] &&
    [ "$(comp flm -D "$TMP/statedir" ap)" = api-keys ]'
checkx "config set: the keys of flm config keys" \
    '[ "$(comp flm config set proxy.max_b)" = proxy.max_body_bytes ] &&
    [ "$(comp flm config set tls.)" = "$(words tls.cert_lifetime tls.names)" ]'

# Every command of the table, reached word by word, and its options.
"$FLM" -T >"$TMP/table"
missing=
while IFS= read -r line; do
	cmd=$(printf '%s\n' "$line" | cut -f1)
	opts=$(printf '%s\n' "$line" | cut -f2)
	set -- flm
	for w in $cmd; do
		comp "$@" "" | grep -qx -- "$w" || missing="$missing [$cmd: $w]"
		set -- "$@" "$w"
	done
	for o in $opts; do
		comp "$@" - | grep -qx -- "${o%%=*}" ||
		    missing="$missing [$cmd: ${o%%=*}]"
	done
done <"$TMP/table"
checkx "every command of flm -T is offered, word by word" \
    '[ "$(wc -l <"$TMP/table")" -ge 30 ] && [ -z "$missing" ]'
[ -z "$missing" ] || diag "not offered:$missing"
checkx "the completion was made from the table of this flm" \
    'grep -q "^audit tail	--json --count=N -n=N	\$" "$COMP"'
