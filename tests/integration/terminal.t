#!/bin/sh
# Text that others choose reaches the admin's terminal defanged: engine
# model names, a client's model name in the audit trail, a model's
# answer in flm chat and a daemon's error echoing the admin's input
# show their control characters as \xNN, never as raw escape sequences.
. "$(dirname "$0")/lib.sh"

unset FLM_API_KEY
mock_init

plan 12

ESC=$(printf '\033')
BEL=$(printf '\007')
# A window-title change and a screen clear, hidden in model names.
mock --flavor ollama --models "evil${ESC}]0;pwned${BEL}x,clear${ESC}[2Jy,ok"
check "suite starts" suite_start
F="$FLM -D $STATE"
$F config set engines.ollama.url "http://127.0.0.1:$MPORT" >/dev/null
KEY=$($F api-keys create --label t --json | jq -r .key)
PORT=$($F proxy start --port 0 --json | jq .port)

# tty CMD: CMD's output as a terminal shows it (util-linux script, so
# flm prints tables, not JSON).
tty() { script -qec "$*" /dev/null </dev/null 2>&1; }
raw_esc() { printf '%s' "$1" | grep -q "$ESC"; }

$F engines detect >/dev/null
out=$(tty "$F models list")
check "models list shows the engine's names" \
    sh -c "printf '%s' '$(printf '%s' "$out" | tr -d "'")' | grep -q 'flm://ollama/ok'"
check "an ESC in a model name is shown as \\x1b" \
    sh -c "printf '%s' '$(printf '%s' "$out" | tr -d "'")' | grep -qF 'evil\\x1b]0;pwned\\x07x'"
checkx "no raw ESC reaches the terminal from models list" '! raw_esc "$out"'
json=$($F models list --json)
check "JSON output keeps the exact name (escaped the JSON way)" json_has "$json" \
    "[.[].id] | index(\"flm://ollama/clear\\u001b[2Jy\") != null"

# A client's model name, recorded in the audit trail.  proxyd records
# C0 controls as '?', but a C1 CSI (U+009B, ESC [ to some terminals)
# is valid UTF-8 and reaches keyd as it is.
C1=$(printf '\302\233')
curl -s -o /dev/null -m 5 -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"model":"nope\u009b31mred","messages":[{"role":"user","content":"hi"}]}' \
    "http://127.0.0.1:$PORT/v1/chat/completions"
has_tail() { $F audit tail --json | jq -e '.records | length > 0' >/dev/null 2>&1; }
wait_until 5000 has_tail
out=$(tty "$F audit tail")
checkx "audit tail shows the client's model name escaped" \
    'printf "%s" "$out" | grep -qF "nope\\xc2\\x9b31mred"'
checkx "no raw C1 CSI reaches the terminal from audit tail" \
    '! printf "%s" "$out" | grep -q "$C1"'

# A model's answer: the mock echoes the prompt.
out=$(FLM_API_KEY=$KEY script -qec \
    "$F chat --model flm://ollama/ok 'say ${ESC}[2J now'" /dev/null </dev/null 2>&1)
checkx "flm chat prints the answer" 'printf "%s" "$out" | grep -q "Hello from mock"'
checkx "with its escape shown as \\x1b" 'printf "%s" "$out" | grep -qF "say \\x1b[2J now"'
checkx "no raw ESC reaches the terminal from flm chat" '! raw_esc "$out"'

# An error that echoes what the admin typed (or pasted).
out=$(tty "$F api-keys revoke 'k${ESC}[8mhidden'")
checkx "an error echoing input shows it escaped" \
    'printf "%s" "$out" | grep -qF "k\\x1b[8mhidden"'
checkx "no raw ESC reaches the terminal from an error" '! raw_esc "$out"'
