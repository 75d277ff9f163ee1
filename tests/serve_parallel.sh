#!/bin/bash
# `moestream serve --parallel 4`: continuous batching on every golden model.
#  - 4 different prompts sent at once (two streamed, two JSON) at
#    temperature 0 each get exactly the reply they get alone, and /metrics
#    sampled meanwhile shows at least 2 sequences active at once (requests
#    merely queued one after another fail this);
#  - --parallel 1 --queue 0: a second request while one generates gets 429
#    with the OpenAI error JSON;
#  - a second request sharing a 200-token prefix with the first evaluates
#    only the tokens past the last whole -b chunk of the common prefix
#    (moestream_prompt_tokens_evaluated_total), and its reply equals a cold
#    server's;
#  - a budget too small for --parallel x -c is refused naming what fits.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve_par.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
SRV=
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$T"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start() {  # model, log, args...: sets SRV and U
  local m=$1 log=$2; shift 2
  local port; port=$(free_port)
  U=http://127.0.0.1:$port
  "$BIN" serve -m "$m" --port "$port" "$@" >"$log" 2>&1 &
  SRV=$!
  for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && return 0; sleep 0.1; done
  echo "FAIL: server not up ($m)"; cat "$log"; fails=$((fails+1)); return 1
}
stop() { kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; SRV=; }
metric() { curl -s $U/metrics | sed -n "s/^$1 //p"; }

N=16
prompts=("hello" "What is 2+2?" "Write a haiku about disks." "tell me a story about a cat")
body() { python3 -c 'import json,sys;print(json.dumps({"messages":[{"role":"user","content":sys.argv[1]}],"max_tokens":int(sys.argv[2]),"temperature":0,"stream":sys.argv[3]=="1"}))' "$1" $N "$2"; }
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
for i in 0 1 2 3; do body "${prompts[$i]}" 0 >"$T/b$i"; body "${prompts[$i]}" 1 >"$T/s$i"; done

for M in "$G"/models/tiny-*.gguf; do
  name=$(basename "$M" .gguf)
  start "$M" "$T/$name.log" --parallel 4 -c 512 -b 16 || continue
  for i in 0 1 2 3; do
    curl -s -m 120 -d @"$T/b$i" $U/v1/chat/completions >"$T/solo$i"
    text_of "$T/solo$i" >"$T/solo$i.txt" 2>/dev/null
  done
  pids=()
  for i in 0 1 2 3; do
    if [ $((i % 2)) -eq 0 ]; then f="$T/s$i"; else f="$T/b$i"; fi
    curl -s -N -m 120 -d @"$f" $U/v1/chat/completions >"$T/conc$i" &
    pids+=($!)
  done
  maxa=0
  while kill -0 "${pids[@]}" 2>/dev/null; do
    a=$(metric moestream_active_sequences)
    [ "${a:-0}" -gt $maxa ] && maxa=$a
    sleep 0.02
  done
  wait "${pids[@]}"
  same=0
  for i in 0 1 2 3; do
    text_of "$T/conc$i" >"$T/conc$i.txt" 2>/dev/null
    if [ -s "$T/solo$i.txt" ] && cmp -s "$T/conc$i.txt" "$T/solo$i.txt"; then
      same=$((same + 1))
    else
      echo "  $name request $i: together '$(head -c 120 "$T/conc$i.txt")' alone '$(head -c 120 "$T/solo$i.txt")'"
    fi
  done
  check "$name: 4 requests at once each equal their reply alone ($same of 4)" "[ $same -eq 4 ]"
  check "$name: /metrics showed >= 2 sequences active at once (max $maxa of --parallel 4)" "[ $maxa -ge 2 ] && [ $maxa -le 4 ]"
  stop; echo "  ($SECONDS s)"
done

# a full queue: 429 with the OpenAI error JSON
M="$G/models/tiny-mix-mla.gguf"
start "$M" "$T/q.log" --parallel 1 --queue 0 -c 512 && {
  python3 -c 'import json;print(json.dumps({"prompt":"count to a thousand","max_tokens":200,"temperature":0}))' >"$T/long"
  curl -s -m 120 -d @"$T/long" $U/v1/completions >"$T/first" &
  p1=$!
  for _ in $(seq 1 200); do [ "$(metric moestream_active_sequences)" = 1 ] && break; sleep 0.01; done
  code=$(curl -s -o "$T/second" -w '%{http_code}' -m 60 -d @"$T/b0" $U/v1/chat/completions)
  check "--queue 0 with a request generating: 429 (got $code)" "[ '$code' = 429 ]"
  check "429 body is OpenAI error JSON naming --queue" "python3 -c 'import json,sys;e=json.load(open(sys.argv[1]))[\"error\"];assert e[\"type\"]==\"rate_limit_error\" and \"--queue\" in e[\"message\"]' '$T/second'"
  wait $p1
  check "the first request still completes" "python3 -c 'import json,sys;json.load(open(sys.argv[1]))[\"choices\"][0][\"text\"]' '$T/first'"
  stop; echo "  ($SECONDS s)"
}

# a shared 200-token prefix is evaluated once, in whole -b chunks
B=64
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
words = " ".join("alpha%d beta" % (i % 37) for i in range(60))
for k, tail in (("p1", " and then the first question ends here."), ("p2", " but this other request asks something else entirely, twice.")):
    json.dump({"prompt": words + tail, "max_tokens": 12, "temperature": 0}, open(f"{t}/{k}", "w"))
    json.dump({"content": words + tail}, open(f"{t}/{k}.tok", "w"))
PY
start "$M" "$T/p.log" --parallel 4 -c 1024 -b $B && {
  curl -s -m 120 -d @"$T/p1" $U/v1/completions >"$T/r1"
  e0=$(metric moestream_prompt_tokens_evaluated_total)
  curl -s -m 120 -d @"$T/p2" $U/v1/completions >"$T/r2"
  e1=$(metric moestream_prompt_tokens_evaluated_total)
  curl -s -d @"$T/p1.tok" $U/tokenize >"$T/t1"; curl -s -d @"$T/p2.tok" $U/tokenize >"$T/t2"
  want=$(python3 - "$T" $B <<'PY'
import json, sys
t, B = sys.argv[1], int(sys.argv[2])
a, b = json.load(open(f"{t}/t1"))["tokens"], json.load(open(f"{t}/t2"))["tokens"]
n2 = json.load(open(f"{t}/r2"))["usage"]["prompt_tokens"]
bos = n2 - len(b)
c = 0
while c < min(len(a), len(b)) and a[c] == b[c]:
    c += 1
c += bos
assert c >= 200, c
print(n2 - (c - c % B), c, n2)
PY
)
  set -- $want
  check "second request: prompt of ${3:-?} tokens sharing ${2:-?}: evaluated $((e1 - e0)), want ${1:-?} (past the last whole -b $B chunk)" "[ -n '${1:-}' ] && [ $((e1 - e0)) -eq ${1:-0} ]"
  stop; echo "  ($SECONDS s)"
}
start "$M" "$T/c.log" --parallel 4 -c 1024 -b $B && {
  curl -s -m 120 -d @"$T/p2" $U/v1/completions >"$T/r2cold"
  get() { python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["choices"][0]["text"])' "$1"; }
  check "its reply equals a cold server's" "[ -n \"\$(get '$T/r2')\" ] && [ \"\$(get '$T/r2')\" = \"\$(get '$T/r2cold')\" ]"
  stop; echo "  ($SECONDS s)"
}
# a budget too small for --parallel x -c is refused, naming what fits
out=$("$BIN" serve -m "$M" --port "$(free_port)" -np 64 -c 16384 --mem 1G 2>&1); rc=$?
check "-np 64 -c 16384 in 1G refused naming the most sequences that fit (rc=$rc: $(echo "$out" | tail -1))" \
  "[ $rc -eq 1 ] && echo \"\$out\" | grep -Eq 'at most [0-9]+ sequences of 16384 positions fit'"
[ $fails -eq 0 ]
