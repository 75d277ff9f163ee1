#!/bin/bash
# NEON kernels vs scalar under qemu-aarch64 (make neon-test): cross-compiles
# simd/kern_neon.c, the scalar reference and tests/neon/neon_main.c with
# aarch64-linux-gnu-gcc -static, then runs the driver with dotprod (-cpu max)
# and without it (-cpu cortex-a53, ARMv8.0).  Skips (exit 77, says why; a
# failure when CI is set) when the cross compiler or qemu is missing (make
# test-deps installs both).
set -u
cd "$(dirname "$0")/.."
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
. tests/lib/need.sh
need_tool "$CC" "$QEMU"
OUT=${MOESTREAM_TMP:-/tmp}/neon-test
mkdir -p "$OUT"
# The kernels file gets armv8.2-a+dotprod (its non-dotprod path uses explicit
# SMULL/SADALP); everything else is built for ARMv8.0 so the compiler cannot
# auto-vectorize the scalar reference into SDOT, which -cpu cortex-a53 lacks.
CF="-std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror -ffp-contract=off -D_GNU_SOURCE -DKERN_HAVE_NEON=1 -Isimd"
set -e
rm -f "$OUT"/*.o
$CC $CF -march=armv8.2-a+dotprod -c -o "$OUT/kern_neon.o" simd/kern_neon.c
# Every portable simd/ file (the x86 ISA files are the *_avx* ones): the
# traits table, the scalar reference and table, the grids, dispatch, repack.
SIMD_OBJ=""
for f in $(ls simd/*.c | grep -v -e '_avx' -e '_neon\.c$'); do
  $CC $CF -march=armv8-a -c -o "$OUT/$(basename "$f" .c).o" "$f"
  SIMD_OBJ="$SIMD_OBJ $OUT/$(basename "$f" .c).o"
done
for f in tests/neon/neon_main.c tests/neon/neon_repack.c; do
  $CC $CF -march=armv8-a -c -o "$OUT/$(basename "$f" .c).o" "$f"
done
$CC -static -o "$OUT/neon_main" "$OUT"/kern_neon.o $SIMD_OBJ "$OUT"/neon_main.o -lpthread -lm
# repacked tensors (simd/repack.c) on the NEON table
$CC -static -o "$OUT/neon_repack" "$OUT"/kern_neon.o $SIMD_OBJ "$OUT"/neon_repack.o -lpthread -lm
set +e
rc=0
for cpu in max cortex-a53; do
  echo "== qemu-aarch64 -cpu $cpu"
  for prog in neon_main neon_repack; do
    "$QEMU" -cpu "$cpu" "$OUT/$prog" > "$OUT/log-$prog-$cpu" 2>&1; r=$?
    grep -v '^ok ' "$OUT/log-$prog-$cpu"
    grep -c '^ok ' "$OUT/log-$prog-$cpu" | sed "s/^/$prog ok lines: /"
    [ $r -eq 0 ] || { echo "FAIL: $prog -cpu $cpu exited $r"; rc=1; }
  done
done
echo "MEASURE neon: kernels and repacked IQ1_S/IQ1_M/IQ2_XXS equal scalar, repacked rows unpack to the GGUF bytes (moestream repack files), under qemu with and without dotprod (rc=$rc)"
exit $rc
