#!/bin/bash
# `moestream run` and `tokenize` as a user runs them: text streams, and at
# --temp 0 the generated ids equal `eval --greedy` on the same rendered prompt.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/run_cli.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
M="$G/models/tiny-ud-iq1_s.gguf"

"$BIN" run -m "$M" -p "hello" -n 16 --temp 0 --ids >"$T/out" 2>"$T/err"; rc=$?
check "run exits 0" "[ $rc -eq 0 ]"
check "run streams text" "[ -s '$T/out' ]"
check "run reports speed and seed" "grep -q 'tok/s' '$T/err' && grep -q 'seed' '$T/err'"
prompt=$(sed -n 's/^prompt ids: //p' "$T/err")
gen=$(grep -o '\[[0-9]*\]' "$T/err" | tr -d '[]' | paste -sd, -)
want=$("$BIN" eval -m "$M" --tokens "$prompt" --greedy 16 2>/dev/null | sed 's/.*\[\(.*\)\].*/\1/')
check "run --temp 0 ids equal eval --greedy ($gen)" "[ -n '$gen' ] && [ '$gen' = '$want' ]"
# the rendered prompt is BOS <｜User｜>hello<｜Assistant｜><think>\n as ids
u=$(printf '<｜User｜>' | "$BIN" tokenize -m "$M" --no-bos | tr -dc '0-9,')
check "prompt starts BOS, <｜User｜>" "[ \"\$(echo $prompt | cut -d' ' -f1-2)\" = '0 $u' ]"

# same seed, same output; the seed is printed
"$BIN" run -m "$M" -p "hi" -n 12 --seed 7 >"$T/a" 2>/dev/null
"$BIN" run -m "$M" -p "hi" -n 12 --seed 7 >"$T/b" 2>"$T/e2"
check "fixed seed reproduces" "cmp -s '$T/a' '$T/b'"
check "seed printed" "grep -q 'seed 7 ' '$T/e2'"

# tokenize reads stdin verbatim, final newline included
printf 'Hello\n' | "$BIN" tokenize -m "$G/models/deepseek-r1-vocab.gguf" >"$T/t1"
printf 'Hello' | "$BIN" tokenize -m "$G/models/deepseek-r1-vocab.gguf" >"$T/t2"
check "tokenize keeps the final newline" "! cmp -s '$T/t1' '$T/t2'"
check "tokenize adds BOS" "grep -q '^{\"ids\":\[0,' '$T/t1'"
printf 'Hello' | "$BIN" tokenize -m "$G/models/deepseek-r1-vocab.gguf" --no-bos >"$T/t3"
check "--no-bos" "! grep -q '^{\"ids\":\[0,' '$T/t3'"
python3 - "$BIN" "$G" <<'PY' || fails=$((fails+1))
import json, subprocess, sys
binp, g = sys.argv[1], sys.argv[2]
cases = json.load(open(g + "/tokenizer/dev.json"))
bad = 0
for c in cases[::7]:
    out = subprocess.run([binp, "tokenize", "-m", g + "/models/deepseek-r1-vocab.gguf", "--no-bos"],
                         input=c["text"].encode("utf-8"), capture_output=True).stdout
    if json.loads(out)["ids"] != c["ids"]:
        bad += 1
        print("FAIL: tokenize CLI case", repr(c["text"][:40]))
print("ok: tokenize CLI on", len(cases[::7]), "dev cases" if not bad else "")
sys.exit(1 if bad else 0)
PY
"$BIN" run -m "$M" >/dev/null 2>&1; check "run without prompt is usage error 2" "[ $? -eq 2 ]"
"$BIN" run -m "$M" -p x -c 4 >/dev/null 2>"$T/e3"; rc=$?
check "prompt longer than the context: exit 1 with a message" "[ $rc -eq 1 ] && grep -qi context '$T/e3'"
# hardware profiles: values apply, later flags override, unknown profile is a usage error
"$BIN" inspect -m "$M" --config edge-server >"$T/c1" 2>&1
check "--config edge-server sets the budget" "grep -q 'mem 24.00 GiB' '$T/c1'"
"$BIN" inspect -m "$M" --config edge-server --mem 2G >"$T/c2" 2>&1
check "a later flag overrides the profile" "grep -q 'mem 2.00 GiB' '$T/c2'"
"$BIN" inspect -m "$M" --config no-such-profile >/dev/null 2>&1
check "unknown profile: exit 2" "[ $? -eq 2 ]"
# -v promises the cache statistics: with paged experts the expert cache line
"$BIN" run -m "$M" -p hi -n 4 -v --load-mode pager 2>"$T/v" >/dev/null
check "run -v prints the expert cache statistics and peak RSS" \
  "grep -q '^expert cache: [0-9]* hits .* misses (.*hit rate)' '$T/v' && grep -q '^peak RSS' '$T/v'"
"$BIN" run -m "$M" -p hi -n 4 --load-mode pager 2>"$T/v" >/dev/null
check "run without -v does not" "! grep -q '^expert cache:' '$T/v'"
rm -rf "$T"
[ $fails -eq 0 ]
