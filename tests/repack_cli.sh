#!/bin/bash
# moestream repack as a user runs it on the golden models with repacked
# experts (tiny-ud-iq1_s: IQ1_S + IQ2_XXS; tiny-mix-mla: IQ1_M):
# - the repacked file's eval logits equal the plain file's bit for bit
#   (cmp), every load mode (ram, pager with a small pool, mmap) under
#   --repack auto/on/off, on the automatic kernel table, AVX2 and scalar
#   (kept repacked, unpacked at load, unpacked in the pool slot; NEON's
#   unpacking is checked under qemu: tests/neon_qemu.sh);
# - at most 1.25x the input's bytes; inspect names the repacked types and
#   the layout version (text and --json);
# - refusals with a message: an unknown moestream.repack.version, a private
#   type without the key, an input that is already repacked;
# - safe output: a write that fails (MOESTREAM_FAULT=write, an EIO; a file
#   size limit, EFBIG) exits 1 naming the error, leaves an existing OUT as
#   it was and no temporary file behind.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
T=${MOESTREAM_TMP:-/tmp}/repack_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }

for m in tiny-ud-iq1_s tiny-mix-mla; do
  in="$G/models/$m.gguf" out="$T/$m.rp.gguf"
  "$BIN" repack -m "$in" -o "$out" 2>"$T/err"; rc=$?
  check "$m: repack exits 0 ($(tail -1 "$T/err"))" "[ $rc -eq 0 ] && [ -s '$out' ]"
  isz=$(stat -c %s "$in") osz=$(stat -c %s "$out")
  echo "MEASURE repack $m: $isz -> $osz bytes ($(python3 -c "print(f'{$osz/$isz:.3f}')")x)"
  check "$m: output at most 1.25x the input ($osz vs $isz)" "[ $((osz * 100)) -le $((isz * 125)) ]"
  check "$m: no temporary file left" "[ -z \"\$(ls '$T' | grep tmp-)\" ]"
  "$BIN" inspect -m "$out" > "$T/insp" 2>&1
  want=$([ $m = tiny-mix-mla ] && echo "IQ1_M_R16" || echo "IQ1_S_R16 IQ2_XXS_R16")
  for ty in $want; do
    check "$m: inspect lists $ty with its plain type" "grep -Eq '^  $ty +[0-9]+ tensors .*\(${ty%_R16} repacked' '$T/insp'"
  done
  check "$m: inspect names the layout version" "grep -q 'moestream.repack.version 1' '$T/insp'"
  js=$("$BIN" inspect --json -m "$out" 2>/dev/null | python3 -c "import json,sys;d=json.load(sys.stdin);print(d['repack_version'],' '.join(sorted(d['repacked_types'])))")
  check "$m: inspect --json repack_version and repacked_types ($js)" "[ \"$js\" = \"1 $want\" ]"
  js=$("$BIN" inspect --json -m "$in" 2>/dev/null | python3 -c "import json,sys;d=json.load(sys.stdin);print(d['repack_version'],len(d['repacked_types']))")
  check "$m: the plain file has no repack version ($js)" "[ \"$js\" = '0 0' ]"

  prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('$G/logits/$m.json'))['prompt'])))")
  "$BIN" eval -m "$in" --tokens "$prompt" --logits "$T/$m.plain.f32" >/dev/null 2>"$T/err"
  check "$m: the plain file's eval runs" "[ -s '$T/$m.plain.f32' ]"
  # the other tables on one model; there auto is off (no repacked kernel)
  tables="auto avx2 scalar"; [ $m = tiny-mix-mla ] && tables=auto
  for simd in $tables; do
    for lm in ram pager mmap; do
      extra=""; [ $lm = pager ] && extra="--cache-experts 6"
      bad=""
      modes="auto on off"; [ $simd = auto ] || modes="on off"
      for rp in $modes; do
        rm -f "$T/got.f32"
        if [ $simd = auto ]; then env -u MOESTREAM_SIMD "$BIN" eval -m "$out" --tokens "$prompt" --logits "$T/got.f32" --load-mode $lm $extra --repack $rp >/dev/null 2>"$T/err"
        else MOESTREAM_SIMD=$simd "$BIN" eval -m "$out" --tokens "$prompt" --logits "$T/got.f32" --load-mode $lm $extra --repack $rp >/dev/null 2>"$T/err"; fi
        cmp -s "$T/got.f32" "$T/$m.plain.f32" || bad="$bad $rp($(head -c 120 "$T/err"))"
      done
      check "$m: repacked file's logits equal the plain file's, kernels $simd, --load-mode $lm, --repack ${modes// //}${bad:+ (differ:$bad)}" '[ -z "$bad" ]'
    done
  done
done

# the point of the file: paged experts are read ready to use, nothing is
# converted in the pool slot unless the policy keeps them plain (and a
# plain file under --repack on repacks each one as it lands)
conv() { "$BIN" eval -v -m "$1" --tokens "1 2 3 4 5 6" --load-mode pager --cache-experts 6 --repack "$2" 2>&1 >/dev/null |
  sed -n 's/^pool conversions: \([0-9]*\) expert matrices.*/\1/p'; }
rp="$T/tiny-ud-iq1_s.rp.gguf"
o=$(conv "$rp" on) f=$(conv "$rp" off) p=$(conv "$G/models/tiny-ud-iq1_s.gguf" on)
check "repacked file: nothing converted in the pool under on ($o)" "[ '$o' = 0 ]"
# auto follows a timing it takes at start-up (plain against repacked GEMV on
# this CPU; under ASan the instrumented repacked kernel can lose), so what it
# must do comes from the choice -v reports: nothing converted when it keeps
# the file's types repacked, unpacking as they land when it does not
# (one run gives both: each process takes its own timing)
"$BIN" eval -v -m "$rp" --tokens "1 2 3 4 5 6" --load-mode pager --cache-experts 6 --repack auto 2>"$T/auto.err" >/dev/null
a=$(sed -n 's/^pool conversions: \([0-9]*\) expert matrices.*/\1/p' "$T/auto.err")
pol=$(grep -o 'repack auto.*IQ2_XXS [a-z]*' "$T/auto.err")
if echo "$pol" | grep -Eq '(IQ1_S|IQ2_XXS) plain'; then
  check "repacked file under auto, policy keeps a type plain: unpacked as they land ($a; $pol)" "[ -n '$a' ] && [ '$a' -gt 0 ]"
else
  check "repacked file under auto, policy keeps the types repacked: nothing converted ($a; $pol)" "[ -n '$pol' ] && [ '$a' = 0 ]"
fi
echo "MEASURE repack pool conversions (6 tokens, 6-slot pool): repacked file auto $a, on $o, off $f; plain file on $p"
check "repacked file under off: unpacked as they land ($f), as many as the plain file repacks under on ($p)" \
  "[ -n '$f' ] && [ '$f' -gt 0 ] && [ '$f' = '$p' ]"

# refusals
python3 - "$rp" "$T/v2.gguf" "$T/nokey.gguf" <<'EOF'
import struct, sys
b = open(sys.argv[1], 'rb').read()
key = b'moestream.repack.version'
at = b.index(struct.pack('<Q', len(key)) + key) + 8 + len(key)
assert struct.unpack_from('<II', b, at) == (4, 1), struct.unpack_from('<II', b, at)
open(sys.argv[2], 'wb').write(b[:at + 4] + struct.pack('<I', 2) + b[at + 8:])
open(sys.argv[3], 'wb').write(b[:at - 1] + b'X' + b[at:])  # the key renamed: versioX
EOF
for cmd in eval inspect; do
  if [ $cmd = eval ]; then "$BIN" eval -m "$T/v2.gguf" --tokens "1 2" >/dev/null 2>"$T/err"; else "$BIN" inspect -m "$T/v2.gguf" >/dev/null 2>"$T/err"; fi
  rc=$?
  check "$cmd: unknown moestream.repack.version refused, exit 1, message ($(head -c 160 "$T/err"))" \
    "[ $rc -eq 1 ] && grep -q 'layout version 2' '$T/err' && grep -q 'reads version 1' '$T/err'"
done
"$BIN" eval -m "$T/nokey.gguf" --tokens "1 2" >/dev/null 2>"$T/err"; rc=$?
check "private type without the version key refused ($(head -c 160 "$T/err"))" \
  "[ $rc -eq 1 ] && grep -Eq 'moestream-private type IQ[0-9A-Z_]+_R16 \(100[0-2]\) but the file has no' '$T/err'"
"$BIN" repack -m "$rp" -o "$T/again.gguf" >/dev/null 2>"$T/err"; rc=$?
check "an already repacked input is refused" "[ $rc -eq 1 ] && grep -q 'already repacked' '$T/err' && [ ! -e '$T/again.gguf' ]"
"$BIN" repack -m "$G/models/tiny-ud-iq1_s.gguf" >/dev/null 2>&1
check "repack without -o is usage error 2" "[ $? -eq 2 ]"
cp "$G/models/tiny-ud-iq1_s.gguf" "$T/same.gguf"
"$BIN" repack -m "$T/same.gguf" -o "$T/same.gguf" >/dev/null 2>"$T/err"; rc=$?
check "output over its own input refused, input kept" \
  "[ $rc -eq 1 ] && grep -q 'the same file' '$T/err' && cmp -s '$T/same.gguf' '$G/models/tiny-ud-iq1_s.gguf'"
"$BIN" quantize -m "$rp" -o "$T/q.gguf" --type Q4_K --allow-requantize >/dev/null 2>"$T/err"; rc=$?
check "quantize refuses a repacked input with a message" "[ $rc -eq 1 ] && grep -q 'a file of moestream repack' '$T/err'"

# safe output
in="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T/w"; echo old > "$T/w/out.gguf"
MOESTREAM_FAULT=write:3 "$BIN" repack -m "$in" -o "$T/w/out.gguf" >/dev/null 2>"$T/err"; rc=$?
check "failed write (EIO): exit 1 with the error ($(head -c 160 "$T/err"))" "[ $rc -eq 1 ] && grep -q 'write failed: Input/output error' '$T/err'"
check "failed write: the existing output is untouched, no temporary file" \
  "[ \"\$(cat '$T/w/out.gguf')\" = old ] && [ \$(ls '$T/w' | wc -l) -eq 1 ]"
(trap '' XFSZ; ulimit -f 2048; exec "$BIN" repack -m "$in" -o "$T/w/big.gguf") >/dev/null 2>"$T/err"; rc=$?
check "file size limit (EFBIG): exit 1 with the error ($(head -c 160 "$T/err"))" \
  "[ $rc -eq 1 ] && grep -q 'write failed: File too large' '$T/err' && [ ! -e '$T/w/big.gguf' ] && [ \$(ls '$T/w' | wc -l) -eq 1 ]"
"$BIN" repack -m "$in" -o "$T/w/out.gguf" >/dev/null 2>&1
check "a good write replaces the old output" "cmp -s '$T/w/out.gguf' '$T/tiny-ud-iq1_s.rp.gguf'"
[ $fails -eq 0 ]
