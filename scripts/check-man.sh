#!/bin/sh
# check-man.sh FLM MANDIR: the manual pages against the programs.
#  - every command of flm's table (flm -T) has an entry in flm.1, an
#    .It whose leading .Cm words are the command's (".Cm key | ip" names
#    two), and every option of the command is an "Fl" of that entry's
#    head (the .It line, or its .Xo ... .Xc block); an entry naming no
#    command is reported too;
#  - every key flm config keys lists (the table flmd validates by) has
#    an .It in flm-config.5, and a limit's range and default are in it;
#  - every page has an EXAMPLES and a FILES section.
# Each failure is one line naming what is missing; exit 1 if any.
set -u
flm=$1
man=$2
tmp=${TMPDIR:-/tmp}/check-man.$$
trap 'rm -f "$tmp".*' EXIT
bad=0

if ! "$flm" -T >"$tmp.table"; then
	echo "check-man: $flm -T failed: its table disagrees with itself"
	exit 1
fi

# flm.1: the items of the list after "The commands are as follows:".
# Prints "C<TAB>words" per command an item names and "F<TAB>words<TAB>
# flag" per flag in its head.
awk '
function macro(t) { return t ~ /^[A-Z][a-z][a-z]?$/ }
function flush(   n, i, j, k, m, e, alts, cur, nxt) {
	if (head == "")
		return
	n = split(head, lines, "\n")
	npos = 0
	nflags = 0
	for (i = 1; i <= n; i++) {
		m = split(lines[i], t, " ")
		j = t[1] == ".It" ? 2 : 1
		if (t[j] == "Cm" || t[j] == ".Cm") {
			alt = 0
			for (k = j + 1; k <= m && !macro(t[k]); k++) {
				if (t[k] == "|") {
					alt = 1
					continue
				}
				if (alt)
					pos[npos] = pos[npos] " " t[k]
				else
					pos[++npos] = t[k]
				alt = 0
			}
		}
		for (k = 1; k < m; k++)
			if (t[k] == "Fl" || t[k] == ".Fl")
				flags[++nflags] = "-" t[k + 1]
	}
	# Every combination of the alternatives, one command each.
	ncur = 1
	cur[1] = ""
	for (i = 1; i <= npos; i++) {
		e = split(pos[i], alts, " ")
		nn = 0
		for (j = 1; j <= ncur; j++)
			for (k = 1; k <= e; k++)
				nxt[++nn] = (cur[j] == "" ? "" : cur[j] " ") alts[k]
		ncur = nn
		for (j = 1; j <= ncur; j++)
			cur[j] = nxt[j]
	}
	for (j = 1; j <= ncur && npos > 0; j++) {
		printf "C\t%s\t%d\n", cur[j], item
		for (k = 1; k <= nflags; k++)
			printf "F\t%s\t%s\n", cur[j], flags[k]
	}
	if (npos == 0)
		printf "X\t%s\n", lines[1]
	head = ""
}
/^\.Bl/ {
	depth++
	if (want) {
		list = depth
		want = 0
	}
	next
}
/^\.El/ {
	if (depth == list) {
		flush()
		list = 0
	}
	depth--
	next
}
/The commands are as follows:/ { want = 1 }
list > 0 && depth == list && /^\.It/ {
	flush()
	item++
	head = $0
	inhead = $0 ~ /(^| )Xo( |$)/
	next
}
inhead {
	head = head "\n" $0
	if ($0 ~ /^\.Xc/)
		inhead = 0
}
' "$man/flm.1" >"$tmp.items"

# The table against the items.
awk -F '\t' '
FNR == NR {
	if ($1 == "C")
		doc[$2] = 1
	else if ($1 == "F")
		docflag[$2 SUBSEP $3] = 1
	else if ($1 == "X")
		printf "check-man: flm.1: an entry of the command list names no command: %s\n", $2
	next
}
{
	cmd[$1] = 1
	if (!($1 in doc)) {
		printf "check-man: flm.1: command \"%s\" has no entry (.It Cm %s)\n", $1, $1
		next
	}
	n = split($2, o, " ")
	for (i = 1; i <= n; i++) {
		sub(/=.*/, "", o[i])
		if (!(($1 SUBSEP o[i]) in docflag))
			printf "check-man: flm.1: command \"%s\": option %s is not in its entry (Fl %s)\n", $1, o[i], substr(o[i], 2)
	}
}
END {
	for (c in doc)
		if (!(c in cmd))
			printf "check-man: flm.1: entry \"%s\" is not a command of flm\n", c
}
' "$tmp.items" "$tmp.table" >"$tmp.out"

# flm-config.5: each key an .It, its text without macros; ID is "id".
"$flm" config keys --json >"$tmp.keys" || bad=1
jq -r '.[] | [.key, .min // "", .max // "", .default // ""] | @tsv' \
    "$tmp.keys" >"$tmp.keyrows" || bad=1
if [ -f "$man/flm-config.5" ]; then
	awk -F '\t' '
	function flat(s,   n, i, t, r) {
		n = split(s, t, " ")
		r = ""
		for (i = 2; i <= n; i++)
			if (t[i] !~ /^[A-Z][a-z][a-z]?$/)
				r = r t[i]
		return r
	}
	FNR == NR {
		if ($0 ~ /^\.It /) {
			cur = flat($0)
			items[cur] = 1
		} else if (cur != "")
			body[cur] = body[cur] " " $0 " "
		if ($0 ~ /^\.(El|Sh|Ss)/)
			cur = ""
		next
	}
	{
		k = $1
		gsub(/ID/, "id", k)
		gsub(/LIMIT/, "limit", k)
		if (!(k in items)) {
			printf "check-man: flm-config.5: key %s has no entry (.It Li %s)\n", $1, $1
			next
		}
		for (i = 2; i <= 4; i++)
			if ($i != "" && body[k] !~ ("[^0-9]" $i "[^0-9]"))
				printf "check-man: flm-config.5: key %s: %s %s is not in its entry\n", $1, i == 2 ? "minimum" : i == 3 ? "maximum" : "default", $i
	}
	' "$man/flm-config.5" "$tmp.keyrows" >>"$tmp.out"
else
	echo "check-man: $man/flm-config.5 is missing" >>"$tmp.out"
fi

for p in "$man"/*.[0-9]; do
	for s in EXAMPLES FILES; do
		grep -q "^\.Sh $s\$" "$p" ||
		    echo "check-man: ${p##*/}: no $s section" >>"$tmp.out"
	done
done

if [ -s "$tmp.out" ] || [ $bad -ne 0 ]; then
	cat "$tmp.out"
	exit 1
fi
echo "check-man: $(wc -l <"$tmp.table") commands, $(wc -l <"$tmp.keyrows") settings, $(ls "$man"/*.[0-9] | wc -l) pages: all documented"
