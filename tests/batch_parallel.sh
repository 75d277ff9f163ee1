#!/bin/bash
# `moestream batch --parallel 4` on every golden model: at temperature 0 the
# records equal those of --parallel 1 (bodies identical but for ids and
# times; matched by "line", since replies finish in another order), steps
# held several lines at once (the summary's "up to N sequences in one
# step"), every line answered once; and a resume after a kill mid-run
# completes the file with one record per line.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/batch_par.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }

python3 - "$T/in.jsonl" <<'PY'
import json, sys
qs = ["hello", "What is 2+2?", "Write a haiku about disks.", "tell me a story about a cat",
      "name three colours", "why is the sky blue?"]
with open(sys.argv[1], "w") as f:
    for i, q in enumerate(qs):
        f.write(json.dumps({"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": q}],
                            "max_tokens": 10 + 3 * i, "temperature": 0, "stop": ["zzz", "\n\n"]}}) + "\n")
    f.write("{not json\n")
    f.write("a plain text line\n")
PY
# the records of a file by line, ids and times taken out
norm() { python3 - "$1" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
out = {}
for r in recs:
    r.pop("id", None)
    resp = r.get("response")
    if resp:
        resp.pop("request_id", None)
        b = resp.get("body", {})
        b.pop("id", None); b.pop("created", None)
    assert r["line"] not in out, "line %d answered twice" % r["line"]
    out[r["line"]] = r
print(json.dumps([out[k] for k in sorted(out)], sort_keys=True))
PY
}
for M in "$G"/models/tiny-*.gguf; do
  name=$(basename "$M" .gguf)
  "$BIN" batch -m "$M" -i "$T/in.jsonl" -o "$T/$name.1" -c 256 -b 8 --temp 0 -n 40 --parallel 1 2>"$T/$name.1.err"
  r1=$?
  "$BIN" batch -m "$M" -i "$T/in.jsonl" -o "$T/$name.4" -c 256 -b 8 --temp 0 -n 40 --parallel 4 2>"$T/$name.4.err"
  r4=$?
  check "$name: both runs exit 0 ($r1, $r4)" "[ $r1 -eq 0 ] && [ $r4 -eq 0 ]"
  most=$(sed -n 's/.*up to \([0-9]*\) sequences in one step.*/\1/p' "$T/$name.4.err")
  check "$name: --parallel 4 stepped up to ${most:-?} lines together" "[ '${most:-0}' -ge 2 ] && [ '${most:-0}' -le 4 ]"
  check "$name: 8 records each" "[ \$(wc -l < '$T/$name.1') -eq 8 ] && [ \$(wc -l < '$T/$name.4') -eq 8 ]"
  check "$name: --parallel 4 records equal --parallel 1's (but ids and times)" \
    "[ \"\$(norm '$T/$name.1')\" = \"\$(norm '$T/$name.4')\" ] && [ -n \"\$(norm '$T/$name.1')\" ]"
done

# killed mid-run with 4 in flight, then resumed: one record per line, the
# same records
M="$G/models/tiny-mix-mla.gguf"
python3 - "$T/many.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(40):
        f.write(json.dumps({"custom_id": f"m{i}", "body": {"messages": [{"role": "user", "content": f"question {i}"}],
                            "max_tokens": 12, "temperature": 0}}) + "\n")
PY
"$BIN" batch -m "$M" -i "$T/many.jsonl" -o "$T/many.out" -c 256 --parallel 4 2>/dev/null &
pid=$!
for _ in $(seq 1 600); do [ -f "$T/many.out" ] && [ "$(wc -l < "$T/many.out")" -ge 10 ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(wc -l < "$T/many.out")
"$BIN" batch -m "$M" -i "$T/many.jsonl" -o "$T/many.out" -c 256 --parallel 4 --resume 2>/dev/null
rr=$?
"$BIN" batch -m "$M" -i "$T/many.jsonl" -o "$T/many.ref" -c 256 --parallel 1 2>/dev/null
check "killed after $before records, resume exits 0 ($rr)" "[ $before -gt 0 ] && [ $before -lt 40 ] && [ $rr -eq 0 ]"
check "resumed file: the 40 records of a --parallel 1 run" "[ \"\$(norm '$T/many.out')\" = \"\$(norm '$T/many.ref')\" ]"
[ $fails -eq 0 ]
