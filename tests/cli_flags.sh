#!/bin/bash
# The flags people already type: --version, every option of the table in its
# command's --help and every option of a --help in the table (argtab.c), the
# llama.cpp spellings doing what ours do (same ids on a tiny synthetic model,
# so no golden set is needed), GPU flags and -ctv taken with one stderr line,
# -n -1 running to a full context, -cnv becoming chat, the sampling penalties
# reaching the sampler, and a one-line message (exit 2) for every bad value,
# missing value and unknown option.
set -u
. "$(dirname "$0")/lib/need.sh"
BIN=${MOESTREAM_BIN:?}; T=${MOESTREAM_TMP:-/tmp}/cli_flags.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }

# --version / -V: version and commit
v=$("$BIN" --version); rc=$?
check "--version: '$v'" '[ $rc -eq 0 ] && [[ "$v" =~ ^moestream\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ [^\)]+\)$ ]]'
check "-V equals --version" '[ "$("$BIN" -V)" = "$v" ]'

# the table and the helps agree, both ways (-h/--help aside); bash matching,
# not a grep per option, so this stays fast on a loaded machine
for cmd in $("$BIN" --list-options); do
  help=" $("$BIN" "$cmd" --help 2>&1) " || { echo "FAIL: $cmd --help exits non-zero"; fails=$((fails+1)); }
  opts=$("$BIN" --list-options "$cmd")
  declare -A known=()
  missing=""
  for o in $opts; do
    known[$o]=1
    case "$o" in -h|--help) continue;; esac
    [[ "$help" =~ [^-a-zA-Z0-9]"$o"([^-a-zA-Z0-9_]) ]] || missing="$missing $o"
  done
  check "$cmd --help names every option it takes${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
  extra=""
  for o in $(echo "$help" | grep -oE -- '(^|[] [(,|/])--?[a-zA-Z][-a-zA-Z0-9_]*' | sed 's/^[] [(,|/]//' | sort -u); do
    [ -n "${known[$o]:-}" ] || extra="$extra $o"
  done
  unset known
  check "$cmd takes every option its --help names${extra:+ (not in the table:$extra)}" '[ -z "$extra" ]'
done

# one line and exit 2 for each bad use
bad() {  # description, expected message regex, args...
  local d=$1 re=$2; shift 2
  local out rc
  out=$("$BIN" "$@" 2>&1 </dev/null); rc=$?
  check "$d -> exit 2, one line matching '$re' (got rc=$rc: $out)" \
    '[ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -Eq -- "$re"'
}
bad "serve --port 99999" "bad value '99999' for --port" serve -m x --port 99999
bad "serve --port (no value)" "--port needs a value" serve -m x --port
bad "chat -n abc" "bad value 'abc' for -n" chat -m x -n abc
bad "run --n-predict x" "bad value 'x' for --n-predict" run -m x -p hi --n-predict x
bad "run --tmp 0" "unknown option --tmp \(did you mean --temp\?\)" run -m x -p hi --tmp 0
bad "serve --prot 80" "did you mean --port\?" serve -m x --prot 80
bad "serve --temp 0" "--temp is not an option of serve" serve -m x --temp 0
bad "run --zzzzzzzz" "unknown option --zzzzzzzz \(moestream run --help" run -m x --zzzzzzzz
bad "run --temp hot" "bad value 'hot' for --temp" run -m x -p hi --temp hot
bad "run --presence-penalty 3" "bad value '3' for --presence-penalty" run -m x -p hi --presence-penalty 3
bad "replay --topk 0" "bad value '0' for --topk" replay x --topk 0
bad "eval --greedy -5" "bad value '-5' for --greedy" eval -m x --tokens 1 --greedy -5
bad "run --cache-type q3" "bad value 'q3' for --cache-type" run -m x -p hi --cache-type q3

# the spellings do what ours do: a tiny synthetic model, greedy, ids compared
M="$T/tiny.gguf"
"$BIN" synth --tiny -o "$M" >/dev/null 2>&1 || { echo "FAIL: synth --tiny"; exit 1; }
ids() { "$BIN" run -m "$M" -p "hello there" --ids -t 1 "$@" 2>&1 >/dev/null | grep -E 'ids:|^moestream|ignoring'; }
ref=$(ids -n 6 --temp 0 --system "be brief" --stop "zz" --cache-type q8_0 --seed 7)
alt=$(ids --n-predict 6 --temperature 0 -sys "be brief" -r "zz" -ctk q8_0 -s 7)
check "llama.cpp spellings give the same ids (-n/--n-predict --temperature -sys -r -ctk -s)" \
  '[ -n "$ref" ] && [ "$ref" = "$alt" ]'
alt=$(ids -n 6 --temp 0 --system-prompt "be brief" --reverse-prompt "zz" --cache-type-k q8_0 --seed 7)
check "long spellings too (--system-prompt --reverse-prompt --cache-type-k)" '[ "$ref" = "$alt" ]'
sys=$(ids -n 1 --temp 0 --system "be brief" | grep 'prompt ids'); nosys=$(ids -n 1 --temp 0 | grep 'prompt ids')
check "-sys reaches the prompt (ids differ without a system prompt)" '[ -n "$sys" ] && [ "$sys" != "$nosys" ]'

out=$("$BIN" run -m "$M" -p hi -n 2 --temp 0 -t 1 -ngl 99 -fa on -ot "exps=CPU" --cpu-moe --n-cpu-moe 3 \
      -mg 0 -ts 1,1 -sm row --no-kv-offload --no-mmap --no-warmup --log-disable --color --jinja 2>&1 >/dev/null); rc=$?
check "GPU flags: exit 0 and one stderr line naming them with their values" \
  '[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c ignoring)" -eq 1 ] && echo "$out" | grep -q -- "-ngl 99 -fa on -ot exps=CPU --cpu-moe --n-cpu-moe 3 -mg 0 -ts 1,1 -sm row --no-kv-offload: there is no GPU offload"'
out=$("$BIN" run -m "$M" -p hi -n 1 -t 1 -ctk q8_0 -ctv q8_0 2>&1 >/dev/null)
check "-ctv equal to -ctk: no note" '! echo "$out" | grep -q "not used"'
out=$("$BIN" run -m "$M" -p hi -n 1 -t 1 -ctv f16 2>&1 >/dev/null)
check "-ctv f16 alone: noted as unused" 'echo "$out" | grep -q -- "-ctv f16 is not used"'

out=$("$BIN" run -m "$M" -p hi -n -1 -c 48 --temp 0 -t 1 2>&1 >/dev/null)
check "-n -1 runs until the context is full (prompt + generated = 48)" \
  'echo "$out" | grep -Eq "prompt ([0-9]+) tokens.*generated" && [ $(( $(echo "$out" | sed -n "s/.*prompt \([0-9]*\) tokens.*generated \([0-9]*\) tokens.*/\1 + \2/p") )) -eq 48 ]'
out=$("$BIN" run -m "$M" -p hi -n 2 -t 1 --seed -1 2>&1 >/dev/null)
check "--seed -1: a new seed, printed" 'echo "$out" | grep -Eq "^seed [1-9][0-9]* "'

plain=$(ids -n 12 --temp 0); pen=$(ids -n 12 --temp 0 --frequency-penalty 2 --presence-penalty 2)
check "--frequency-penalty/--presence-penalty change the greedy ids" '[ -n "$pen" ] && [ "$plain" != "$pen" ]'

# --ignore-eos: a seed whose sample ends at end-of-sequence runs to -n
# instead, and never picks that end token (banned, so later draws differ)
stopped=""
for s in $(seq 1 20); do
  "$BIN" run -m "$M" -p hi -n 150 -c 256 --temp 1.5 --min-p 0 --seed $s -t 1 --ids 2>"$T/eos" >/dev/null
  if grep -q "| stop$" "$T/eos"; then stopped=$s; break; fi
done
check "a seed that stops at end-of-sequence within 150 tokens (seed ${stopped:-none in 1-20})" '[ -n "$stopped" ]'
if [ -n "$stopped" ]; then
  "$BIN" run -m "$M" -p hi -n 150 -c 256 --temp 1.5 --min-p 0 --seed $stopped -t 1 --ids --ignore-eos 2>"$T/noeos" >/dev/null
  eos=$(grep -o "^generated ids:.*" "$T/eos" | grep -oE "\[[0-9]+\]" | tail -1)
  check "--ignore-eos: runs to -n 150 (finish length) without the end token $eos" \
    'grep -q "generated 150 tokens.*| length$" "$T/noeos" && [ -n "$eos" ] && ! grep "^generated ids:" "$T/noeos" | grep -qF "$eos"'
fi

# --help-all: the top-level usage and every command's help
all=$("$BIN" --help-all); missing=""
for cmd in $("$BIN" --list-options); do
  echo "$all" | grep -q "^usage: moestream $cmd " || missing="$missing $cmd"
done
check "--help-all has every command's usage${missing:+ (missing:$missing)}" '[ -z "$missing" ]'

# -cnv: llama-cli's conversation mode is our chat; -p becomes the system prompt
out=$(echo "hello" | "$BIN" run -cnv -m "$M" -p "be brief" -n 2 --temp 0 -t 1 --ids 2>&1 >/dev/null); rc=$?
chatout=$(echo "hello" | "$BIN" chat -m "$M" --system "be brief" -n 2 --temp 0 -t 1 --ids 2>&1 >/dev/null)
check "run -cnv -p S equals chat --system S (rc=$rc)" '[ $rc -eq 0 ] && [ -n "$out" ] && [ "$out" = "$chatout" ]'

[ $fails -eq 0 ] && echo "cli_flags: all ok"
[ $fails -eq 0 ]
