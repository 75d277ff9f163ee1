#!/bin/bash
# Each libFuzzer harness for a short while (about 60 s for all together), so
# CI catches a regression; `make fuzz` runs them for real.  Crashes found
# become inputs in tests/fuzz/regress/<harness>/, replayed here every time.
set -u
cd "$(dirname "$0")/.."
. tests/lib/need.sh
need_tool clang
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' |
  clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null ||
  ms_skip "clang has no libFuzzer runtime (libclang-rt-14-dev; make test-deps installs it)"
make -s fuzz-bin >/tmp/fuzz-build.log 2>&1 || { tail -20 /tmp/fuzz-build.log; echo "FAIL: building fuzzers"; exit 1; }
fails=0
# The brief budget (FUZZ_BRIEF_TOTAL, 60 s) is split evenly over the harnesses.
harnesses=$(ls build-fuzz/fuzz_* 2>/dev/null | grep -cvE '\.(d|o)$')
brief=${FUZZ_BRIEF_SECONDS:-$(( ${FUZZ_BRIEF_TOTAL:-60} / (harnesses > 0 ? harnesses : 1) ))}
for f in build-fuzz/fuzz_*; do
  case "$f" in *.d|*.o) continue;; esac; [ -x "$f" ] || continue
  n=$(basename "$f" | sed 's/fuzz_//')
  if [ "$n" = tokenizer ] && [ ! -e "$MOESTREAM_GOLDEN/models/deepseek-r1-vocab.gguf" ]; then
    # its input is the R1 vocabulary of the golden set; the other harnesses still run
    [ -n "${CI:-}" ] && { echo "FAIL (CI is set): fuzz tokenizer needs the golden set"; fails=$((fails+1)); continue; }
    echo "skip: fuzz tokenizer: golden set not found ($MOESTREAM_GOLDEN); the other harnesses ran"
    continue
  fi
  if [ -d "tests/fuzz/regress/$n" ]; then
    "$f" tests/fuzz/regress/$n/* >/dev/null 2>&1 || { echo "FAIL: regression input for $n"; fails=$((fails+1)); }
  fi
  work=$(mktemp -d)
  dict=; [ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
  out=$("$f" -max_total_time=$brief -max_len=65536 -timeout=10 -artifact_prefix="$work/" $dict \
        "$work" "tests/fuzz/corpus/$n" 2>&1); rc=$?
  echo "MEASURE fuzz $n: $(echo "$out" | grep -E '^Done|#[0-9]+.*DONE' | tail -1)"
  if [ $rc -ne 0 ]; then echo "$out" | tail -30; echo "FAIL: fuzz $n found a crash"; fails=$((fails+1)); fi
  rm -rf "$work"
done
[ $fails -eq 0 ]
