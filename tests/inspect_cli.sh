#!/bin/bash
# `moestream inspect` as a user reads it: sizes in GiB with the unit (never a
# decimal "GB"), the model and memory plan before the metadata and the chat
# template, the template shortened unless --full; --json carries the memory
# plan in bytes; --mem auto is MemAvailable minus the stated 1 GiB margin, and
# the laptop profile uses it.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden models/deepseek-r1-vocab.gguf
need_golden
need_tool python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/inspect_cli.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
M="$G/models/tiny-ud-iq1_s.gguf"; V="$G/models/deepseek-r1-vocab.gguf"

"$BIN" inspect -m "$M" --mem 20G >"$T/h" 2>&1
check "human inspect: sizes in GiB, no decimal GB" 'grep -q "GiB" "$T/h" && ! grep -Eq "[0-9] GB\b|[0-9] MB\b" "$T/h"'
check "--mem 20G prints as 20.00 GiB" 'grep -q "memory plan (--mem 20.00 GiB)" "$T/h"'
check "the memory plan comes before the metadata" \
  '[ "$(grep -n "^memory plan" "$T/h" | cut -d: -f1)" -lt "$(grep -n "^metadata:" "$T/h" | cut -d: -f1)" ]'

# the template: shortened by default, whole with --full, after the plan
"$BIN" inspect -m "$V" >"$T/v" 2>&1
"$BIN" inspect -m "$V" --full >"$T/vf" 2>&1
"$BIN" inspect -m "$V" --json >"$T/vj" 2>/dev/null
python3 - "$T/vj" "$T/v" "$T/vf" <<'PY' && echo "ok: template shortened (--full prints it all), whole with --full" || { echo "FAIL: template"; fails=$((fails+1)); }
import json, sys
t = json.load(open(sys.argv[1]))["metadata"]["tokenizer.chat_template"]
short, full = open(sys.argv[2], encoding="utf-8").read(), open(sys.argv[3], encoding="utf-8").read()
assert len(t) > 1000, len(t)
assert t in full, "--full lacks the template"
assert t not in short and "--full prints it all" in short and t[:200] in short
assert len(short) < len(full) - 1000
PY

# --json: the plan in bytes, the same numbers the human form prints
"$BIN" inspect -m "$M" --json --mem 20G >"$T/j" 2>/dev/null
check "--json memory_plan: budget 20 GiB, mode, parts adding up" "python3 -c \"
import json; p = json.load(open('$T/j'))['memory_plan']
assert p['budget_bytes'] == 20 << 30, p
assert p['load_mode'] in ('ram', 'pager', 'mmap')
assert p['resident_bytes'] > 0 and p['cache_bytes'] > 0 and p['scratch_bytes'] > 0 and p['experts_bytes'] > 0
assert p['sequences'] == 1
assert p['resident_bytes'] + p['scratch_bytes'] + p['cache_bytes'] + p['slack_bytes'] + p['requests_bytes'] + p['experts_bytes'] <= p['budget_bytes']
\""
"$BIN" inspect -m "$M" --json --mem 20M >"$T/j2" 2>/dev/null
check "--json with a budget too small: memory_plan.error says so" \
  "python3 -c \"import json; e = json.load(open('$T/j2'))['memory_plan']['error']; assert 'too small' in e, e\""

# --mem auto: MemAvailable - 1 GiB (MemAvailable moves; 256 MiB tolerance)
"$BIN" inspect -m "$M" --json --mem auto >"$T/a" 2>"$T/a.err"
avail=$(awk '/^MemAvailable:/ {print $2 * 1024}' /proc/meminfo)
check "--mem auto = MemAvailable - 1 GiB, stated on stderr" "python3 -c \"
import json; b = json.load(open('$T/a'))['memory_plan']['budget_bytes']
assert abs(b - ($avail - (1 << 30))) < (256 << 20), (b, $avail)
\" && grep -q 'MemAvailable minus a 1 GiB margin' '$T/a.err'"
"$BIN" inspect -m "$M" --config laptop-20g >"$T/l" 2>&1
check "the laptop profile budgets with --mem auto" 'grep -q -- "--mem auto:" "$T/l"'

[ $fails -eq 0 ]
