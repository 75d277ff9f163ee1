# Shared by the tests/batch_*.sh scripts (sourced; not a test itself):
# paths, check(), an input of plain and JSON requests, a clean reference
# run, and records() (tests/lib/batch_records.py).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/need.sh"
need_golden
BIN=${MOESTREAM_BIN:?}; G=${MOESTREAM_GOLDEN:?}
M="$G/models/tiny-ud-iq1_s.gguf"
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
# make_input FILE N [MAX_TOKENS]: N JSON requests at temperature 0
make_input() {
  python3 - "$1" "$2" "${3:-6}" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                            "body": {"messages": [{"role": "user", "content": f"question {i}"}],
                                     "max_tokens": int(sys.argv[3]), "temperature": 0}}) + "\n")
PY
}
batch() { "$BIN" batch -m "$M" --temp 0 "$@"; }
records() { python3 "$LIB/batch_records.py" "$@"; }
# run in the background as "$BIN" batch ..., not batch(): a function runs in a subshell whose pid is not moestream's
