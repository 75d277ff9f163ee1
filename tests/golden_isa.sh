#!/bin/bash
# The golden logits tests under every kernel table this CPU and build offer
# (the main run uses the automatic choice).
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
D=$(dirname "${MOESTREAM_BIN:?}")/tests
fails=0
for isa in scalar avx2 avx512 neon; do
  out=$(MOESTREAM_SIMD=$isa "$D/test_golden" 2>&1); rc=$?
  if echo "$out" | grep -q "is not available"; then echo "($isa not available here)"; continue; fi
  echo "$out" | grep "MEASURE golden" | grep -v "rows 0-1" | sed 's/^/  /'
  if [ $rc -ne 0 ]; then echo "FAIL: golden under MOESTREAM_SIMD=$isa"; fails=$((fails+1)); fi
done
[ $fails -eq 0 ]
