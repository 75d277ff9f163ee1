# tests/lib/need.sh - sourced by the shell tests: what a test needs before it
# runs, and the skip convention.  A test that lacks the golden set or a tool
# exits 77 (the runner counts it as skipped) after one line saying what is
# missing and how to get it; with CI set the same line is a failure (exit 1),
# so CI cannot go green without the golden set and every test tool.

# The golden set: MOESTREAM_GOLDEN, else ../shared/golden beside the clone.
: "${MOESTREAM_GOLDEN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/golden}"

ms_skip() {  # reason...
  if [ -n "${CI:-}" ]; then echo "FAIL (CI is set, so this is not a skip): $*"; exit 1; fi
  echo "skip: $*"
  exit 77
}

need_golden() {  # [file under the golden set, default models/tiny-ud-iq1_s.gguf]
  local f="$MOESTREAM_GOLDEN/${1:-models/tiny-ud-iq1_s.gguf}"
  [ -e "$f" ] || ms_skip "golden set not found ($f missing); point MOESTREAM_GOLDEN at it (README: Golden set)"
}

need_tool() {  # command...
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || ms_skip "$t not installed (make test-deps installs it)"
  done
}
