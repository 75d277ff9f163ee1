#!/bin/bash
# `moestream batch`: 100 requests, killed in the middle, --resume: exactly
# 100 valid output lines, one per custom_id; a bad line is an error record;
# at temperature 0 the ids equal `eval --greedy` on the rendered prompt.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/batch.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
M="$G/models/tiny-ud-iq1_s.gguf"
python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(97):
        f.write(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                            "body": {"messages": [{"role": "user", "content": f"question {i}"}],
                                     "max_tokens": 24, "temperature": 0}}) + "\n")
    f.write("a plain text line\n")
    f.write("{not json\n")
    f.write(json.dumps({"custom_id": "bad-role", "body": {"messages": [{"role": "robot", "content": "x"}]}}) + "\n")
PY
"$BIN" batch -m "$M" -i "$T/in.jsonl" -o "$T/out.jsonl" -n 24 --temp 0 >/dev/null 2>"$T/err" &
pid=$!
for _ in $(seq 1 200); do [ "$(wc -l < "$T/out.jsonl" 2>/dev/null || echo 0)" -ge 30 ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(wc -l < "$T/out.jsonl")
printf '{"custom_id": "half-writ' >> "$T/out.jsonl"   # a crash mid-line
check "killed part way ($before lines)" "[ $before -gt 0 ] && [ $before -lt 100 ]"
"$BIN" batch -m "$M" -i "$T/in.jsonl" -o "$T/out.jsonl" -n 24 --temp 0 --resume >/dev/null 2>"$T/err2"
check "resume exits 0" "[ $? -eq 0 ]"
python3 - "$T/out.jsonl" <<'PY' || fails=$((fails+1))
import json, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "file must end with a newline"
recs = [json.loads(l) for l in lines[:-1]]
ids = [r["custom_id"] for r in recs]
assert len(recs) == 100, f"{len(recs)} records"
assert len(set(i for i in ids if i)) == 99, "one record per custom_id"
ok = [r for r in recs if r["error"] is None]
errs = [r for r in recs if r["error"] is not None]
assert len(ok) == 98 and len(errs) == 2, (len(ok), len(errs))
for r in ok:
    b = r["response"]["body"]
    assert r["response"]["status_code"] == 200 and b["object"] == "chat.completion"
    assert b["usage"]["completion_tokens"] > 0 and b["choices"][0]["message"]["role"] == "assistant"
print("ok: 100 valid records after kill + resume (98 answers, 2 error records)")
PY
# determinism: the same request twice gives the same answer at temperature 0
a=$(grep '"req-5"' "$T/out.jsonl" | python3 -c "import json,sys;m=json.load(sys.stdin)['response']['body']['choices'][0]['message']; print(m.get('reasoning_content','')+m['content'])")
head -6 "$T/in.jsonl" | tail -1 > "$T/one.jsonl"
"$BIN" batch -m "$M" -i "$T/one.jsonl" -o "$T/one.out" -n 24 --temp 0 >/dev/null 2>&1
b=$(python3 -c "import json;m=json.load(open('$T/one.out'))['response']['body']['choices'][0]['message']; print(m.get('reasoning_content','')+m['content'])")
check "same request, same answer at temperature 0" "[ \"\$a\" = \"\$b\" ] && [ -n \"\$a\" ]"
# and the same text as `run` (whose ids equal `eval --greedy`, tests/run_cli.sh)
r=$("$BIN" run -m "$M" -p "question 5" -n 24 --temp 0 2>/dev/null | python3 -c "import sys;print(sys.stdin.buffer.read().decode('utf-8','replace').rstrip('\n'))")
check "batch answer equals run's at temperature 0" "[ \"\$a\" = \"\$r\" ]"
"$BIN" batch -m "$M" -i "$T/missing.jsonl" -o "$T/x.jsonl" >/dev/null 2>&1; check "missing input: exit 1" "[ $? -eq 1 ]"
rm -rf "$T"
[ $fails -eq 0 ]
