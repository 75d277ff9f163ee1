#!/bin/bash
# The golden logits tests under every kernel table this CPU and build offer
# (the main run uses the automatic choice), each with the routed experts
# repacked (simd/repack.h; the tables without repacked kernels unpack rows)
# and plain: MOESTREAM_REPACK=on / off.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
D=$(dirname "${MOESTREAM_BIN:?}")/tests
fails=0
for isa in scalar avx2 avx512 neon; do
  for rp in off on; do
    out=$(MOESTREAM_SIMD=$isa MOESTREAM_REPACK=$rp "$D/test_golden" 2>&1); rc=$?
    if echo "$out" | grep -q "is not available"; then echo "($isa not available here)"; break; fi
    echo "$out" | grep "MEASURE golden" | grep -v "rows 0-1" | sed "s/^/  repack=$rp /"
    if [ $rc -ne 0 ]; then echo "FAIL: golden under MOESTREAM_SIMD=$isa MOESTREAM_REPACK=$rp"; fails=$((fails+1)); fi
  done
done
[ $fails -eq 0 ]
