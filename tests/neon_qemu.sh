#!/bin/bash
# NEON kernels vs scalar under qemu-aarch64 (make neon-test): cross-compiles
# simd/kern_neon.c, the scalar reference and tests/neon/neon_main.c with
# aarch64-linux-gnu-gcc -static, then runs the driver with dotprod (-cpu max)
# and without it (-cpu cortex-a53, ARMv8.0).  Skips (exit 0, says why) when
# the cross compiler or qemu is missing (make deps installs both).
set -u
cd "$(dirname "$0")/.."
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
for tool in "$CC" "$QEMU"; do
  if ! command -v "$tool" >/dev/null; then echo "skip: $tool not installed (make deps)"; exit 0; fi
done
OUT=${MOESTREAM_TMP:-/tmp}/neon-test
mkdir -p "$OUT"
# The kernels file gets armv8.2-a+dotprod (its non-dotprod path uses explicit
# SMULL/SADALP); everything else is built for ARMv8.0 so the compiler cannot
# auto-vectorize the scalar reference into SDOT, which -cpu cortex-a53 lacks.
CF="-std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror -ffp-contract=off -D_GNU_SOURCE -DKERN_HAVE_NEON=1 -Isimd"
set -e
$CC $CF -march=armv8.2-a+dotprod -c -o "$OUT/kern_neon.o" simd/kern_neon.c
for f in simd/quant_ref.c simd/quant_grids.c simd/kern_dispatch.c simd/repack.c tests/neon/neon_main.c \
         tests/neon/neon_repack.c; do
  $CC $CF -march=armv8-a -c -o "$OUT/$(basename "$f" .c).o" "$f"
done
$CC -static -o "$OUT/neon_main" "$OUT"/kern_neon.o "$OUT"/quant_ref.o "$OUT"/quant_grids.o \
  "$OUT"/kern_dispatch.o "$OUT"/neon_main.o -lpthread -lm
# repacked tensors (simd/repack.c) on the NEON table
$CC -static -o "$OUT/neon_repack" "$OUT"/kern_neon.o "$OUT"/quant_ref.o "$OUT"/quant_grids.o \
  "$OUT"/kern_dispatch.o "$OUT"/repack.o "$OUT"/neon_repack.o -lpthread -lm
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
echo "MEASURE neon: kernels and repacked IQ1_S/IQ1_M equal scalar under qemu with and without dotprod (rc=$rc)"
exit $rc
