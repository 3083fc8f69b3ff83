#!/bin/sh
# make check-man: the manual pages against flm's command table and the
# config keys, passing on the pages as they are and failing, naming what
# is missing, on pages with a command, an option, a key, a default or a
# section taken out.  And the keys flm config keys lists are the ones a
# running flmd accepts.
. "$(dirname "$0")/lib.sh"

CHECK="$top_srcdir/scripts/check-man.sh"
MAN=$top_srcdir/man

plan 12

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flmm.XXXXXX")
trap 'rm -rf "$TMP"; suite_cleanup' EXIT

out=$(sh "$CHECK" "$FLM" "$MAN" 2>&1); rc=$?
check "check-man passes on the pages as they are" test $rc -eq 0
[ $T_FAILED -eq 0 ] || diag "$out"

# broken NAME SED-SCRIPT PAGE: a copy of the pages with PAGE edited.
broken() {
	rm -rf "$TMP/man"
	cp -R "$MAN" "$TMP/man"
	sed -i "$2" "$TMP/man/$3"
	! cmp -s "$MAN/$3" "$TMP/man/$3" || diag "$1: the edit changed nothing"
	sh "$CHECK" "$FLM" "$TMP/man" 2>&1
}

out=$(broken hsts '/^\.Op Fl -hsts Ar seconds$/d' flm.1); rc=$?
checkx "an option missing from its command's entry fails, named" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "\"proxy start\": option --hsts"'

out=$(broken trust 's/^\.It Cm engines trust /.It Cm engines trusted /' flm.1); rc=$?
checkx "a command without an entry fails, named, and so does a stale entry" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "command \"engines trust\" has no entry" &&
    printf "%s" "$out" | grep -q "entry \"engines trusted\" is not a command"'

out=$(broken ratelimit 's/^\.Cm key | ip$/.Cm key/' flm.1); rc=$?
checkx "one of two alternatives (.Cm key | ip) taken out fails" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "\"security rate-limit ip\" has no entry"'

out=$(broken files '/^\.Sh FILES$/,/^\.Sh EXIT STATUS$/{/^\.Sh EXIT STATUS$/!d}' flmd.8); rc=$?
checkx "a page without FILES fails, named" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "flmd.8: no FILES section"'

out=$(broken examples 's/^\.Sh EXAMPLES$/.Sh EXAMPLE/' flm-config.5); rc=$?
checkx "a page without EXAMPLES fails, named" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "flm-config.5: no EXAMPLES section"'

out=$(broken key 's/^\.It Li proxy\.write_timeout$/.It Li proxy.writetimeout/' flm-config.5); rc=$?
checkx "a config key without an entry fails, named" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "key proxy.write_timeout has no entry"'

out=$(broken default 's/^default 300\.$/default 301./' flm-config.5); rc=$?
checkx "a limit's default not in its entry fails, named" \
    '[ $rc -ne 0 ] && printf "%s" "$out" | grep -q "key proxy.upstream_timeout: default 300"'

# The keys flm config keys lists, each set on a running flmd; nothing
# else is accepted.
check "suite starts" suite_start
F="$FLM -D $STATE"
keys=$($F config keys --json | jq -r '.[] | [.key, (.default // "")] | @tsv')
refused=
for k in $(printf '%s\n' "$keys" | cut -f1); do
	def=$(printf '%s\n' "$keys" | awk -F '\t' -v k="$k" '$1 == k { print $2 }')
	case $k in
	engines.ID.url) v=http://127.0.0.1:9 ;;
	engines.ID.kind) v=vllm ;;
	engines.ID.ca) v=system ;;
	engines.ID.egress) v=default ;;
	engines.ID.priority) v=50 ;;
	egress.mode) v=direct ;;
	egress.socks5|egress.tor) v=127.0.0.1:9050 ;;
	egress.socks5_user) v=flm ;;
	egress.fail_open) v=no ;;
	pools.policy) v=least-outstanding ;;
	pools.affinity) v=none ;;
	tls.names) v=flm.example.org ;;
	tls.cert_lifetime) v=0 ;;
	proxy.workers) v=1 ;;
	acme.dns_hook) v=/bin/true ;;
	acme.dns_user) v=nobody ;;
	acme.dns_wait) v=60 ;;
	*) v=$def ;;
	esac
	key=$(printf '%s' "$k" | sed 's/\.ID\./.man-t./')
	$F config set "$key" "$v" >/dev/null 2>"$TMP/err" ||
	    refused="$refused $key=$v ($(cat "$TMP/err"))"
done
checkx "every key flm config keys lists is accepted by flmd" \
    '[ -n "$keys" ] && [ -z "$refused" ]'
[ -z "$refused" ] || diag "refused:$refused"

nkeys=$(printf '%s\n' "$keys" | grep -c '^proxy\.')
checkx "flm config keys lists every proxy limit" \
    '[ "$nkeys" -ge 7 ] && printf "%s\n" "$keys" | grep -q "^proxy.write_timeout	60$"'

err=$($F config set tls.lifetime 60 2>&1); rc=$?
checkx "a key not listed is refused, naming those there are and flm-config(5)" \
    '[ $rc -ne 0 ] && printf "%s" "$err" | grep -q "unknown setting .tls.lifetime.; known: engines.ID.url, engines.ID.kind, engines.ID.ca, engines.ID.egress, engines.ID.priority, proxy.LIMIT, tls.names, tls.cert_lifetime" &&
    printf "%s" "$err" | grep -q "flm-config(5)"'
