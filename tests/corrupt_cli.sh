#!/bin/bash
# Every corrupted GGUF (made by test_gguf_corrupt into $MOESTREAM_TMP/corrupt-gguf,
# or made here by truncation if that test has not run) through the CLI: exit
# status 1 and a message on stderr, never a crash (status >= 128) or a hang.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}
D="$T/corrupt-gguf"
if [ ! -d "$D" ] || [ -z "$(ls "$D" 2>/dev/null)" ]; then
  mkdir -p "$D"
  size=$(stat -c %s "$G/models/tiny-ud-iq1_s.gguf")
  for cut in 0 10 24 100 5000 50000 $((size/2)) $((size-1)); do
    head -c $cut "$G/models/tiny-ud-iq1_s.gguf" > "$D/cli-trunc-$cut.gguf"
  done
fi
n=0; bad=0
for f in "$D"/*.gguf; do
  # test_gguf_corrupt's split suite restores a valid 3-part set between its
  # corruptions (split damage is checked there); its part 1 is not corrupt
  case "$(basename "$f")" in split-00001-of-*) continue;; esac
  for cmd in eval inspect; do
    if [ $cmd = eval ]; then args=(eval -m "$f" --tokens "0 1 2" --greedy 1); else args=(inspect -m "$f"); fi
    timeout 60 "$BIN" "${args[@]}" >/dev/null 2>"$T/corrupt.err"; rc=$?
    n=$((n+1))
    if [ $rc -ne 1 ] || [ ! -s "$T/corrupt.err" ]; then
      echo "FAIL: $cmd $(basename "$f"): exit $rc, stderr: $(head -c 300 "$T/corrupt.err")"; bad=$((bad+1))
    fi
  done
done
echo "MEASURE corrupt files through the CLI: $n runs, $bad without a clean exit 1"
[ $n -gt 0 ] && [ $bad -eq 0 ]
