#!/bin/bash
# `moestream serve` with several requests at once.  With --parallel 2, two
# generate together (continuous batching) and the others wait in the queue;
# at temperature 0 each of 4 different prompts sent together (two streamed,
# two JSON) must get exactly the text it gets alone, and alone it must get
# `moestream run --temp 0`'s text (whose ids equal eval --greedy,
# run_cli.sh).  While they run, /metrics shows requests waiting in
# moestream_queue_depth and two sequences active at once.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve_conc.$$
M="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
"$BIN" serve -m "$M" --port "$PORT" -c 1024 --parallel 2 >"$T/log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] || { echo "FAIL: server not up"; cat "$T/log"; exit 1; }

N=64  # tokens per reply: 4 queued replies take ~1.5 s here, long enough to see the queue
prompts=("hello" "What is 2+2?" "Write a haiku about disks." "tell me a story")
body() { python3 -c 'import json,sys;print(json.dumps({"messages":[{"role":"user","content":sys.argv[1]}],"max_tokens":int(sys.argv[2]),"temperature":0,"stream":sys.argv[3]=="1"}))' "$1" $N "$2"; }
# reasoning + answer of a JSON reply, or of an SSE stream, as one text
text_of() { python3 - "$1" <<'PY'
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
if raw.startswith("data:"):
    out = []
    for line in raw.splitlines():
        if line.startswith("data: {"):
            for ch in json.loads(line[6:]).get("choices", []):
                out.append(ch["delta"].get("reasoning_content", "") + ch["delta"].get("content", ""))
    sys.stdout.write("".join(out))
else:
    m = json.loads(raw)["choices"][0]["message"]
    sys.stdout.write(m.get("reasoning_content", "") + m["content"])
PY
}
for i in 0 1 2 3; do
  body "${prompts[$i]}" 0 >"$T/b$i"; body "${prompts[$i]}" 1 >"$T/s$i"
  curl -s -m 60 -d @"$T/b$i" $U/v1/chat/completions >"$T/solo$i"
  text_of "$T/solo$i" >"$T/solo$i.txt"
  "$BIN" run -m "$M" -p "${prompts[$i]}" -n $N --temp 0 2>/dev/null |
    python3 -c "import sys;sys.stdout.write(sys.stdin.buffer.read().decode('utf-8','replace')[:-1])" >"$T/run$i.txt"
  check "solo request $i equals run --temp 0" "[ -s '$T/solo$i.txt' ] && cmp -s '$T/solo$i.txt' '$T/run$i.txt'"
done
check "the 4 prompts give 4 different replies" "[ \$(md5sum '$T'/solo?.txt | cut -d' ' -f1 | sort -u | wc -l) -eq 4 ]"

# all four at once: 0 and 2 streamed, 1 and 3 JSON
pids=()
for i in 0 1 2 3; do
  if [ $((i % 2)) -eq 0 ]; then f="$T/s$i"; else f="$T/b$i"; fi
  curl -s -N -m 60 -d @"$f" $U/v1/chat/completions >"$T/conc$i" &
  pids+=($!)
done
maxq=0; maxa=0
while kill -0 "${pids[@]}" 2>/dev/null; do
  m=$(curl -s $U/metrics)
  q=$(echo "$m" | sed -n 's/^moestream_queue_depth //p')
  a=$(echo "$m" | sed -n 's/^moestream_active_sequences //p')
  [ "${q:-0}" -gt $maxq ] && maxq=$q
  [ "${a:-0}" -gt $maxa ] && maxa=$a
  sleep 0.05
done
wait "${pids[@]}"
for i in 0 1 2 3; do
  text_of "$T/conc$i" >"$T/conc$i.txt"
  check "concurrent request $i ($([ $((i % 2)) -eq 0 ] && echo streamed || echo JSON)) equals its solo reply" \
    "cmp -s '$T/conc$i.txt' '$T/solo$i.txt'"
done
check "/metrics showed queued requests while 4 ran at once (max queue depth $maxq)" "[ $maxq -ge 1 ]"
check "/metrics showed 2 sequences generating together (max $maxa), never more than --parallel" "[ $maxa -eq 2 ]"
check "queue empty afterwards" "curl -s $U/metrics | grep -q '^moestream_queue_depth 0$'"
kill $SRV; wait $SRV 2>/dev/null
[ $fails -eq 0 ]
