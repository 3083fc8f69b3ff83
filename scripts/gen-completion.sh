#!/bin/sh
# gen-completion.sh FLM TEMPLATE: the bash completion of flm, from its
# own command table (flm -T) and its config keys (flm config keys), put
# into TEMPLATE (flm/flm.bash.in) at @FLM_TABLE@ and @FLM_KEYS@.
set -eu
flm=$1
template=$2
table=$("$flm" -T)
# Non-terminal output is JSON, one member a line; keys with an ID or a
# LIMIT placeholder are not offered as they are.
keys=$("$flm" config keys </dev/null | sed -n 's/^ *"key": *"\([^"]*\)",*$/\1/p' |
    grep -v '[A-Z]' | tr '\n' ' ')
[ -n "$table" ] && [ -n "$keys" ] || { echo "$0: empty table or keys" >&2; exit 1; }
case $table$keys in
*"'"*) echo "$0: a quote in the table" >&2; exit 1 ;;
esac
export FLM_TABLE="$table" FLM_KEYS="${keys% }"
awk '
function put(name,   i) {
	while ((i = index($0, "@" name "@")) > 0)
		$0 = substr($0, 1, i - 1) ENVIRON[name] \
		    substr($0, i + length(name) + 2)
}
{
	put("FLM_TABLE")
	put("FLM_KEYS")
	print
}' "$template"
