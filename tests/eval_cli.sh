#!/bin/bash
# moestream eval as a user runs it: golden greedy tokens through the CLI,
# logits file size, and exit codes 0 (ok), 1 (error), 2 (bad usage).
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
T=${MOESTREAM_TMP:-/tmp}/eval_cli.$$
mkdir -p "$T"
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }

for m in tiny-ud-iq1_s tiny-f32-legacy tiny-mix-mla tiny-ud-iq1_s-nogroups; do
  prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('$G/logits/$m.json'))['prompt'])))")
  want=$(python3 -c "import json;print(json.dumps({'greedy':json.load(open('$G/logits/$m.json'))['greedy']},separators=(',',':')))")
  got=$("$BIN" eval -m "$G/models/$m.gguf" --tokens "$prompt" --greedy 32 --logits "$T/$m.f32" 2>"$T/err")
  rc=$?
  check "$m exit 0" "[ $rc -eq 0 ]"
  check "$m greedy equals the reference" "[ '$got' = '$want' ]"
  check "$m logits file size" "[ $(stat -c %s "$T/$m.f32") -eq $(stat -c %s "$G/logits/$m.f32") ]"
  check "$m logits equal the reference bit for bit" "cmp -s '$T/$m.f32' '$G/logits/$m.f32'"
done
# --attn: auto decompresses legacy K/V when that cache fits 1/16 of --mem
# (tiny legacy at -c 4096: 42 MB), else the absorbed latent form
attn() { "$BIN" inspect --json -m "$G/models/$1.gguf" "${@:2}" 2>/dev/null | python3 -c "import json,sys;print(json.load(sys.stdin)['attn'])"; }
check "--attn auto: small legacy model decompressed" "[ \"$(attn tiny-ud-iq1_s)\" = mha ]"
check "--attn auto: over 1/16 of --mem stays absorbed" "[ \"$(attn tiny-ud-iq1_s --mem 512M)\" = absorbed ]"
check "--attn absorbed is obeyed" "[ \"$(attn tiny-ud-iq1_s --attn absorbed)\" = absorbed ]"
check "split-form files are absorbed" "[ \"$(attn tiny-mix-mla --attn mha)\" = absorbed ]"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens "1 2" --attn sideways >/dev/null 2>&1
check "bad --attn value is usage error 2" "[ $? -eq 2 ]"
echo "1 2 3" > "$T/ids.txt"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens-file "$T/ids.txt" --greedy 2 >/dev/null 2>&1
check "--tokens-file works" "[ $? -eq 0 ]"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" >/dev/null 2>&1; check "missing tokens is usage error 2" "[ $? -eq 2 ]"
"$BIN" eval --tokens "1 2" >/dev/null 2>&1; check "missing model is usage error 2" "[ $? -eq 2 ]"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens "1 x" >/dev/null 2>&1; check "bad id text is usage error 2" "[ $? -eq 2 ]"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens "1 999999" >/dev/null 2>"$T/err"; rc=$?
check "out-of-range id is error 1" "[ $rc -eq 1 ] && grep -q 'out of range' '$T/err'"
"$BIN" eval -m "$T/nonexistent.gguf" --tokens "1" >/dev/null 2>"$T/err"; rc=$?
check "missing file is error 1 with message" "[ $rc -eq 1 ] && [ -s '$T/err' ]"
"$BIN" eval -m "$G/models/deepseek-r1-vocab.gguf" --tokens "1" >/dev/null 2>"$T/err"; rc=$?
check "vocab-only file is error 1" "[ $rc -eq 1 ] && [ -s '$T/err' ]"
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens "1 2 3" -c 2 >/dev/null 2>"$T/err"; rc=$?
check "prompt longer than context is error 1" "[ $rc -eq 1 ] && grep -qi 'context' '$T/err'"
start=$(date +%s%N)
"$BIN" eval -m "$G/models/tiny-ud-iq1_s.gguf" --tokens "0 1 2 3 4 5 6 7" --greedy 8 >/dev/null 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "MEASURE eval on tiny-ud-iq1_s (8 prompt + 8 greedy): ${ms} ms"
rm -rf "$T"
[ $fails -eq 0 ]
