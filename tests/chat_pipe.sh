#!/bin/bash
# `moestream chat` with stdin not a terminal: one prompt per line (blank
# lines skipped), plain text out (no escapes, no speed lines), exit 0 at end
# of input; at --temp 0 the first reply is byte-for-byte `run --temp 0`'s
# output, and each turn's ids (--ids) equal `eval --greedy` on its prompt.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/chat_pipe.$$
M="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
trap 'rm -rf "$T"' EXIT

printf 'hello\n\nWhat is 2+2?\n/stats\nthird' |
  "$BIN" chat -m "$M" -n 16 --temp 0 --ids >"$T/out" 2>"$T/err"; rc=$?
check "exits 0 at end of input" "[ $rc -eq 0 ]"
check "three turns (blank line and /stats are not turns; last line without newline is one)" \
  "[ \$(grep -ac 'generated ids:' '$T/err') -eq 3 ]"
check "plain text: no escape sequences on stdout" "! grep -aq \$'\\033' '$T/out'"
check "no prompt or speed line on stdout" "! grep -aq -e '^> ' -e 'tok/s' '$T/out'"
"$BIN" run -m "$M" -p hello -n 16 --temp 0 >"$T/run" 2>/dev/null
check "first reply equals run --temp 0's output byte for byte" \
  "[ -s '$T/run' ] && cmp -s -n \$(stat -c %s '$T/run') '$T/run' '$T/out'"
prompt_of() { grep -ao 'prompt ids:[0-9 ]*' "$T/err" | sed -n "${1}p" | sed 's/prompt ids: *//'; }
gen_of() { grep -ao 'generated ids:[][0-9]*' "$T/err" | sed -n "${1}p" | grep -o '[0-9]*' | paste -sd, -; }
for k in 1 2 3; do
  want=$("$BIN" eval -m "$M" --tokens "$(prompt_of $k)" --greedy 16 2>/dev/null | sed 's/.*\[\(.*\)\].*/\1/')
  check "turn $k ids equal eval --greedy on its whole prompt" "[ -n '$want' ] && [ '$(gen_of $k)' = '$want' ]"
done
check "turn 3's prompt holds the conversation so far (longer than turn 2's)" \
  "[ \$(prompt_of 3 | wc -w) -gt \$(prompt_of 2 | wc -w) ]"
[ $fails -eq 0 ]
