#!/bin/bash
# Runs every test binary in BUILD/tests and every tests/*.sh script, each under
# a timeout, and ends with the line "N passed, N failed, N skipped" (counted per
# test case: cmocka's summary lines per binary, one case per shell script).
# A shell script skips by exiting 77 after a "skip: why" line (tests/lib/
# need.sh: no golden set, a test tool missing); cmocka tests skip with skip().
# With CI set those same tests fail instead, so CI cannot pass by skipping.
# MOESTREAM_FAST=1 (sanitizer runs) skips the tests marked slow by name (*_slow).
# MOESTREAM_ONLY="test_a test_b" runs only the tests of those names (the TSan run).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
export MOESTREAM_BIN=${MOESTREAM_BIN:-$PWD/$BUILD/moestream}
LABEL=${MOESTREAM_LABEL:-}
export MOESTREAM_GOLDEN=${MOESTREAM_GOLDEN:-$PWD/../shared/golden}
export MOESTREAM_TMP=${MOESTREAM_TMP:-$(mktemp -d /tmp/moestream-test.XXXXXX)}
TIMEOUT=${MOESTREAM_TEST_TIMEOUT:-900}
pass=0; fail=0; skipped=0; failed_names=()
if [ ! -e "$MOESTREAM_GOLDEN/models/tiny-ud-iq1_s.gguf" ]; then
  if [ -n "${CI:-}" ]; then
    echo "golden set not found at $MOESTREAM_GOLDEN: the tests that need it fail (CI is set)"
  else
    echo "golden set not found at $MOESTREAM_GOLDEN: the tests that need it are skipped" \
      "(MOESTREAM_GOLDEN=DIR points at it; README: Golden set)"
  fi
fi
only() { [ -z "${MOESTREAM_ONLY:-}" ] || [[ " $MOESTREAM_ONLY " == *" $1 "* ]]; }
run_one() {  # name, command...
  local name=$1; shift
  local log="$MOESTREAM_TMP/$name.log"
  local t0=$(date +%s%N)
  timeout --kill-after=10 "$TIMEOUT" "$@" >"$log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local dt="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
  local p f k
  p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  k=$(grep -aE '^\[  SKIPPED \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$k" -eq 0 ]; then  # not cmocka: one case
    if [ $rc -eq 0 ]; then p=1; elif [ $rc -eq 77 ]; then k=1; else f=1; fi
  elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then  # crashed or timed out after passing cases
    f=1
  fi
  pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + k))
  local why
  why=$(grep -am1 '^skip: ' "$log" | sed 's/^skip: //')
  if [ "$f" -ne 0 ]; then
    failed_names+=("$name"); echo "FAIL $name (${dt}s, rc=$rc, $p passed, $f failed); log:"
    tail -n 40 "$log" | sed 's/^/    /'
  elif [ "$p" -eq 0 ]; then
    echo "skip $name: $why"
  else
    local sk=""; [ "$k" -gt 0 ] && sk=", $k skipped: $why"
    echo "ok   $name (${dt}s, $p passed$sk)"
  fi
  grep -a '^MEASURE' "$log" | sed 's/^/    /'
}
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  n=$(basename "$t")
  if [ -n "${MOESTREAM_FAST:-}" ] && [[ "$n" == *_slow ]]; then continue; fi
  only "$n" || continue
  run_one "$n" "$t"
done
for s in tests/*.sh; do
  n=$(basename "$s" .sh)
  [ "$n" = run_tests ] && continue
  if [ -n "${MOESTREAM_FAST:-}" ] && [[ "$n" == *_slow ]]; then continue; fi
  only "$n" || continue
  run_one "$n" bash "$s"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
# A later run (sanitizers) adds the earlier runs' counts so the last line is
# the whole suite's; the summary it writes is the running total, so runs chain
# (default, then ASan, then TSan).
if [ -n "${MOESTREAM_PRIOR:-}" ] && [ -f "$MOESTREAM_PRIOR" ]; then
  read -r pp pf pk < "$MOESTREAM_PRIOR"
  echo "${LABEL:+$LABEL run: }$pass passed, $fail failed, $skipped skipped"
  pass=$((pass + pp)); fail=$((fail + pf)); skipped=$((skipped + ${pk:-0}))
fi
if [ -n "${MOESTREAM_SUMMARY:-}" ]; then echo "$pass $fail $skipped" > "$MOESTREAM_SUMMARY"; fi
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
