#!/bin/bash
# moestream imatrix against the reference's llama-imatrix on the golden
# model with the golden set's command: both formats byte for byte the
# golden set's files (the GGUF one from a paged run with a 4-expert pool,
# so paging changes nothing); without flash attention (--attn mha) and on
# the split attention form (tiny-mix-mla: attn_k_b/attn_v_b per head) byte
# for byte the reference's -fa off files (tests/data/imatrix/README.md);
# --process-output; both files accepted by quantize (src/imatrix_load.c).
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden models/tiny-f32-legacy.gguf
need_golden models/tiny-mix-mla.gguf
need_golden quantize/tiny-f32-legacy.imatrix.gguf
need_golden quantize/tiny-f32-legacy.imatrix.dat
need_tool sha256sum cmp
G=$MOESTREAM_GOLDEN
Q=$G/quantize
M=$G/models/tiny-f32-legacy.gguf
D=$(cd "$(dirname "$0")" && pwd)/data/imatrix
T=${MOESTREAM_TMP:-/tmp}/imatrix_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }

# the dataset name stored is -f as given, as the reference stores it
cp "$Q/calib.txt" "$T/calib.txt"
cd "$T" || exit 1
A="-c 128 --chunks 16 -t 2 --process-output"
"$BIN" imatrix -m "$M" -f calib.txt -o ours.gguf $A --load-mode pager --cache-experts 4 -v >gguf.out 2>gguf.log
check "imatrix (paged, 4-expert pool): exit 0" "[ $? -eq 0 ] && grep -q 'expert cache' gguf.log"
check "GGUF file byte for byte the golden set's" "cmp ours.gguf '$Q/tiny-f32-legacy.imatrix.gguf'"
"$BIN" imatrix -m "$M" -f calib.txt -o ours.dat --output-format dat $A >dat.out 2>dat.log
check "imatrix --output-format dat: exit 0" "[ $? -eq 0 ]"
check ".dat file byte for byte the golden set's" "cmp ours.dat '$Q/tiny-f32-legacy.imatrix.dat'"
check "running perplexity printed per chunk (16)" "[ \$(grep -o '\[[0-9]*\]' gguf.out | wc -l) -eq 16 ]"
"$BIN" imatrix -m "$M" -f calib.txt -o mha.gguf $A --attn mha >mha.out 2>mha.log
check "--attn mha (no flash attention): byte for byte the reference's -fa off file" \
      "[ $? -eq 0 ] && [ \"\$(sha mha.gguf)\" = \"\$(cat '$D/tiny-f32-legacy.imatrix.gguf.sha256')\" ]"
"$BIN" imatrix -m "$G/models/tiny-mix-mla.gguf" -f calib.txt -o mla.gguf $A >mla.out 2>mla.log
check "split-form model (attn_k_b/attn_v_b per head): GGUF byte for byte the reference's -fa off file" \
      "[ $? -eq 0 ] && [ \"\$(sha mla.gguf)\" = \"\$(cat '$D/tiny-mix-mla.imatrix.gguf.sha256')\" ]"

"$BIN" imatrix -m "$M" -f calib.txt -o noout.gguf -c 128 --chunks 2 -t 2 >/dev/null 2>&1
check "without --process-output: no output.weight entry" \
      "[ $? -eq 0 ] && ! grep -aqP '[^_]output\.weight\.in_sum2' noout.gguf && grep -aqP '[^_]output\.weight\.in_sum2' ours.gguf && grep -q 'blk.3.ffn_down_exps.weight.in_sum2' noout.gguf"

# the quantizer reads both (IQ1_S needs data for every tensor it quantizes)
for f in ours.gguf ours.dat; do
  "$BIN" quantize -m "$M" -o "q-$f.gguf" --pure --type IQ1_S --token-embedding-type q4_K --imatrix "$f" -t 2 >/dev/null 2>"q-$f.log"
  check "quantize --pure IQ1_S --imatrix $f: exit 0" "[ $? -eq 0 ] || { tail -2 'q-$f.log'; false; }"
done

"$BIN" imatrix -m "$M" -f calib.txt -o x.gguf --output-format xml >/dev/null 2>&1
check "--output-format xml: exit 2" "[ $? -eq 2 ]"
"$BIN" imatrix -m "$M" -o x.gguf >/dev/null 2>&1
check "no -f: exit 2" "[ $? -eq 2 ]"

echo "$fails failed"
[ $fails -eq 0 ]
