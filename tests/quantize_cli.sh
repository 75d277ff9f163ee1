#!/bin/bash
# moestream quantize as a user runs it, against the reference quantizer's
# outputs (../shared/golden/quantize/, README there): three outputs of
# hashes.json tensor by tensor (type and sha256; all 29 in
# quantize_golden_slow.sh), the legacy .dat importance matrix, the four
# recipe maps (and configs/recipes/), output metadata, the refusals
# (type needing an imatrix, bad usage), and a quantized model running in eval.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
Q=$G/quantize
M=$G/models/tiny-f32-legacy.gguf
HERE=$(cd "$(dirname "$0")" && pwd)
HASH="python3 $HERE/lib/gguf_hashes.py"
T=${MOESTREAM_TMP:-/tmp}/quantize_cli.$$
mkdir -p "$T"
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
IM="--imatrix $Q/tiny-f32-legacy.imatrix.gguf"

# output name -> the reference's arguments (README "How the outputs were made")
golden() {
  local stem=$1 imat=${2:-$Q/tiny-f32-legacy.imatrix.gguf} T_=${1#*-}
  case $stem in
    pure-*) echo "--pure --imatrix $imat --token-embedding-type q4_K --type $T_";;
    noimat-*) echo "--pure --type $T_";;
    ud-iq1_s) echo "--imatrix $imat --tensor-type-file $Q/ud-iq1_s.tensor-types.txt --type IQ1_S";;
  esac
}

for stem in pure-Q2_K noimat-Q6_K; do
  "$BIN" quantize -m "$M" -o "$T/$stem.gguf" $(golden $stem) -t 2 2>"$T/$stem.log"
  check "$stem: exit 0" "[ $? -eq 0 ]"
  check "$stem: every tensor's type and sha256 equal the reference's" \
        "$HASH '$T/$stem.gguf' --compare '$Q/hashes.json' $stem.gguf > '$T/$stem.cmp' || { cat '$T/$stem.cmp'; false; }"
done

# the legacy .dat form of the same importance matrix: it stores
# (sum / count) * ncall and the loader divides by ncall again, exact when
# ncall is a power of two (16 chunks: every 2D weight) but not for the
# routed experts, so the reference's output differs from pure-Q4_0 there;
# tests/data/quantize/hashes-dat.json is that output (its README says how
# it was made), and every tensor must equal it
"$BIN" quantize -m "$M" -o "$T/dat.gguf" $(golden pure-Q4_0 "$Q/tiny-f32-legacy.imatrix.dat") -t 2 2>"$T/dat.log"
check "legacy .dat imatrix: pure-Q4_0 equal to the reference's from the same .dat" \
      "$HASH '$T/dat.gguf' --compare '$HERE/data/quantize/hashes-dat.json' pure-Q4_0-dat.gguf > '$T/dat.cmp' || { cat '$T/dat.cmp'; false; }"
$HASH "$T/dat.gguf" --compare "$Q/hashes.json" pure-Q4_0.gguf > "$T/dat-gguf.cmp"
check "... and it differs from the GGUF matrix's output in the 9 routed-expert tensors only" \
      "[ \$(grep -c ': got' '$T/dat-gguf.cmp') -eq 9 ] && ! grep ': got' '$T/dat-gguf.cmp' | grep -v '_exps\.weight'"
rm -f "$T/dat.gguf"

# --recipe on the 4-layer model resolves to the golden maps
for r in ud-iq1_s ud-iq1_m ud-iq2_xxs ud-q2_k_xl; do
  "$BIN" quantize -m "$M" --recipe $r --dry-run --print-tensor-types >"$T/$r.txt" 2>"$T/$r.log"
  check "--recipe $r --dry-run --print-tensor-types equals $r.tensor-types.txt" "cmp -s '$T/$r.txt' '$Q/$r.tensor-types.txt'"
done
# configs/recipes/ holds the maps resolved for the 61-block R1
"$BIN" synth --tiny --dense-layers 3 --moe-layers 58 -o "$T/r1-61.gguf" 2>/dev/null
for r in ud-iq1_s ud-iq1_m ud-iq2_xxs ud-q2_k_xl; do
  "$BIN" quantize -m "$T/r1-61.gguf" --recipe $r --dry-run --allow-requantize --print-tensor-types >"$T/$r-61.txt" 2>/dev/null
  check "configs/recipes/$r.tensor-types.txt is the $r rule for 61 blocks" "cmp -s '$T/$r-61.txt' '$HERE/../configs/recipes/$r.tensor-types.txt'"
done
rm -f "$T/r1-61.gguf"
check "--dry-run prints the final size" "grep -q 'quant size' '$T/ud-iq1_s.log'"
# --recipe writes what the reference wrote with the map as --tensor-type-file
# (that form is checked in quantize_golden_slow.sh)
"$BIN" quantize -m "$M" -o "$T/ud-iq1_s.gguf" --recipe ud-iq1_s $IM -t 2 2>"$T/recipe.log"
check "--recipe ud-iq1_s output equals the reference's ud-iq1_s.gguf" \
      "$HASH '$T/ud-iq1_s.gguf' --compare '$Q/hashes.json' ud-iq1_s.gguf > '$T/recipe.cmp' || { cat '$T/recipe.cmp'; false; }"

# --tensor-type: unanchored, first match wins, applies with --pure too
"$BIN" quantize -m "$M" --type Q4_0 --pure --tensor-type 'ffn_down=q8_0' --tensor-type 'blk\.1\.ffn_down_exps=q6_K' \
  --dry-run --print-tensor-types >"$T/tt.txt" 2>/dev/null
first=$(grep -cxF '^blk\.1\.ffn_down_exps\.weight$=q8_0' "$T/tt.txt")
n_down=$(grep -c 'ffn_down.*=q8_0$' "$T/tt.txt"); n_q8=$(grep -c '=q8_0$' "$T/tt.txt")
n_q40=$(grep -c '=q4_0$' "$T/tt.txt"); n_all=$(wc -l < "$T/tt.txt")
check "--tensor-type first match wins" "[ $first -eq 1 ]"
check "--tensor-type matches anywhere in the name (7 ffn_down tensors, nothing else)" "[ $n_down -eq 7 ] && [ $n_q8 -eq 7 ]"
check "other tensors keep the --pure type" "[ $n_q40 -eq $((n_all - 7)) ] && [ $n_all -gt 40 ]"

# split sets: --split-max-size writes one (here of the F32 model, copied by
# --type F32), a split input quantizes to the same bytes, and --keep-split
# keeps its parts
"$BIN" quantize -m "$M" -o "$T/sp-f32.gguf" --type F32 --split-max-size 16M 2>/dev/null
check "--split-max-size 16M: 4 parts of the 54 MB model" "[ -e '$T/sp-f32-00004-of-00004.gguf' ] && [ ! -e '$T/sp-f32-00005-of-00005.gguf' ]"
"$BIN" quantize -m "$T/sp-f32-00001-of-00004.gguf" -o "$T/sp-q4.gguf" --pure --type Q4_0 --keep-split -t 2 2>/dev/null
check "--keep-split: 4 parts" "[ -e '$T/sp-q4-00004-of-00004.gguf' ]"
check "--keep-split parts hold noimat-Q4_0's tensors" \
      "$HASH '$T/sp-q4-00001-of-00004.gguf' --compare '$Q/hashes.json' noimat-Q4_0.gguf > '$T/sp.cmp' || { cat '$T/sp.cmp'; false; }"
"$BIN" quantize -m "$T/sp-f32-00001-of-00004.gguf" -o "$T/sp-one.gguf" --pure --type Q4_0 -t 2 2>/dev/null
check "split input to one file: noimat-Q4_0's tensors" \
      "$HASH '$T/sp-one.gguf' --compare '$Q/hashes.json' noimat-Q4_0.gguf > '$T/sp.cmp' || { cat '$T/sp.cmp'; false; }"
rm -f "$T"/sp-*

# metadata as the reference writes it
kv() { $HASH "$1" --kv | python3 -c "import json,sys;d=json.load(sys.stdin);print(d.get('$2'))"; }
check "general.file_type 24 (IQ1_S)" "[ \"$(kv $T/ud-iq1_s.gguf general.file_type)\" = 24 ]"
check "general.quantization_version 2" "[ \"$(kv $T/ud-iq1_s.gguf general.quantization_version)\" = 2 ]"
check "quantize.imatrix.file" "[ \"$(kv $T/ud-iq1_s.gguf quantize.imatrix.file)\" = '$Q/tiny-f32-legacy.imatrix.gguf' ]"
ents=$(python3 -c "
import sys; sys.path.insert(0, '$HERE/lib'); import gguf_hashes as h
print(sum(1 for n in h.read_part('$Q/tiny-f32-legacy.imatrix.gguf')[1] if n.endswith('.in_sum2')))")
check "quantize.imatrix.entries_count = entries of the file ($ents)" "[ \"$(kv $T/ud-iq1_s.gguf quantize.imatrix.entries_count)\" = $ents ]"
check "quantize.imatrix.chunks_count 16" "[ \"$(kv $T/ud-iq1_s.gguf quantize.imatrix.chunks_count)\" = 16 ]"
check "quantize.imatrix.dataset names the calibration text" "kv $T/ud-iq1_s.gguf quantize.imatrix.dataset | grep -q calib"
check "file_type of noimat-Q6_K is 18, no quantize.imatrix keys" \
      "[ \"$(kv $T/noimat-Q6_K.gguf general.file_type)\" = 18 ] && [ \"$(kv $T/noimat-Q6_K.gguf quantize.imatrix.file)\" = None ]"

# a quantized model runs
"$BIN" eval -m "$T/ud-iq1_s.gguf" --tokens "1 2 3 4" --greedy 4 >"$T/eval.out" 2>"$T/eval.err"
check "eval runs the quantized model" "[ $? -eq 0 ] && grep -q greedy '$T/eval.out'"

# the usual sources: a Q8_0 or BF16 file (synth --profile q8_0|bf16) quantizes
# without --allow-requantize, and the result runs
"$BIN" synth --tiny --profile q8_0 -o "$T/src-q8.gguf" 2>/dev/null
"$BIN" quantize -m "$T/src-q8.gguf" -o "$T/q8-xl.gguf" --recipe ud-q2_k_xl -t 2 2>"$T/err"
check "Q8_0 source -> --recipe ud-q2_k_xl" "[ $? -eq 0 ]"
check "... runs in eval" "'$BIN' eval -m '$T/q8-xl.gguf' --tokens '1 2 3' --greedy 2 2>/dev/null | grep -q greedy"
"$BIN" synth --tiny --profile bf16 -o "$T/src-bf16.gguf" 2>/dev/null
"$BIN" quantize -m "$T/src-bf16.gguf" -o "$T/bf16-q4km.gguf" --type Q4_K_M -t 2 2>"$T/err"
check "BF16 source -> Q4_K_M" "[ $? -eq 0 ] && '$BIN' eval -m '$T/bf16-q4km.gguf' --tokens '1 2 3' --greedy 2 2>/dev/null | grep -q greedy"
rm -f "$T"/src-*.gguf "$T/q8-xl.gguf" "$T/bf16-q4km.gguf"

# refusals
"$BIN" quantize -m "$M" -o "$T/x.gguf" --type IQ1_S -t 2 >/dev/null 2>"$T/err"; rc=$?
check "IQ1_S without an imatrix: error 1 naming the tensor" "[ $rc -eq 1 ] && grep -q 'blk.0.attn_kv_a_mqa.weight' '$T/err' && grep -q imatrix '$T/err'"
check "... and no output file" "[ ! -e '$T/x.gguf' ]"
cp "$M" "$T/same.gguf"
"$BIN" quantize -m "$T/same.gguf" -o "$T/same.gguf" --type Q8_0 >/dev/null 2>"$T/err"
check "output = input is refused, the input untouched" "[ $? -eq 1 ] && cmp -s '$M' '$T/same.gguf'"
rm -f "$T/same.gguf"
"$BIN" quantize -m "$M" -o "$T/x.gguf" >/dev/null 2>&1; check "missing --type is usage error 2" "[ $? -eq 2 ]"
"$BIN" quantize -m "$M" -o "$T/x.gguf" --type Q9_Z >/dev/null 2>&1; check "unknown type is error 1" "[ $? -eq 1 ]"
"$BIN" quantize -m "$M" --type Q4_0 --tensor-type 'ffn_(=q4_0' --dry-run >/dev/null 2>&1; check "bad regex is an error" "[ $? -ne 0 ]"
"$BIN" quantize -m "$M" --recipe ud-iq9 --dry-run >/dev/null 2>&1; check "unknown recipe is usage error 2" "[ $? -eq 2 ]"
"$BIN" quantize -m "$T/ud-iq1_s.gguf" -o "$T/x.gguf" --type Q4_0 >/dev/null 2>"$T/err"
check "requantizing IQ1_S without --allow-requantize is refused" "[ $? -eq 1 ] && grep -q requantiz '$T/err'"

rm -rf "$T"
echo "quantize_cli: $fails failed"
[ $fails -eq 0 ]
