#!/bin/bash
# `moestream serve` over loopback with curl: health, models, chat (JSON and
# SSE ending in [DONE], usage), OpenAI errors (bad JSON, wrong types, too
# long, wrong API key, unknown path), a client that disconnects mid-stream
# does not block the next request, a bounded load test, /metrics; and at
# temperature 0 the served ids equal `eval --greedy` (via the text).
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
PORT=$(( 20000 + $$ % 20000 ))
U=http://127.0.0.1:$PORT
"$BIN" serve -m "$G/models/tiny-ud-iq1_s.gguf" --port $PORT --api-key sekret -c 512 >"$T/log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null $U/health && break; sleep 0.1; done
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && break; sleep 0.1; done
A="Authorization: Bearer sekret"
check "/health 200" "[ \$(curl -s -o /dev/null -w '%{http_code}' $U/health) = 200 ]"
check "/v1/models lists the model" "curl -s -H '$A' $U/v1/models | grep -q tiny-ud-iq1_s.gguf"
req='{"messages":[{"role":"user","content":"hello"}],"max_tokens":16,"temperature":0}'
curl -s -H "$A" -d "$req" $U/v1/chat/completions >"$T/r1"
check "chat completion JSON with usage" "python3 -c \"import json;r=json.load(open('$T/r1'));assert r['object']=='chat.completion' and r['usage']['completion_tokens']==16\""
curl -s -N -H "$A" -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":16,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' $U/v1/chat/completions >"$T/s1"
check "SSE stream ends with [DONE]" "tail -2 '$T/s1' | grep -q 'data: \[DONE\]'"
check "SSE stream carries usage" "grep -q '\"completion_tokens\":16' '$T/s1'"
python3 - "$T/r1" "$T/s1" <<'PY' || fails=$((fails+1))
import json, sys
r = json.load(open(sys.argv[1]))["choices"][0]["message"]
full = r.get("reasoning_content", "") + r["content"]
parts = []
for line in open(sys.argv[2]):
    if line.startswith("data: {"):
        d = json.loads(line[6:])
        for ch in d.get("choices", []):
            parts.append(ch["delta"].get("reasoning_content", "") + ch["delta"].get("content", ""))
assert "".join(parts) == full, "stream and JSON reply differ at temperature 0"
print("ok: streamed text equals the JSON reply at temperature 0")
PY
python3 -c "import json;m=json.load(open('$T/r1'))['choices'][0]['message'];print(m.get('reasoning_content','')+m['content'])" >"$T/r1.txt"
"$BIN" run -m "$G/models/tiny-ud-iq1_s.gguf" -p hello -n 16 --temp 0 2>/dev/null | python3 -c "import sys;sys.stdout.write(sys.stdin.buffer.read().decode('utf-8','replace'))" >"$T/run.txt"
check "served reply equals run's (ids == eval --greedy) at temperature 0" "cmp -s '$T/r1.txt' '$T/run.txt'"
code() { curl -s -o "$T/e" -w '%{http_code}' "$@"; }
check "bad JSON: 400 with OpenAI error" "[ \$(code -H '$A' -d '{bad' $U/v1/chat/completions) = 400 ] && grep -q '\"error\"' '$T/e'"
check "wrong type: 400" "[ \$(code -H '$A' -d '{\"messages\":\"hi\"}' $U/v1/chat/completions) = 400 ]"
check "wrong API key: 401" "[ \$(code -H 'Authorization: Bearer nope' -d '$req' $U/v1/chat/completions) = 401 ]"
check "unknown path: 404" "[ \$(code -H '$A' $U/v1/nothing) = 404 ]"
long=$(python3 -c "print('word '*3000)")
check "prompt longer than the context: 400" "[ \$(code -H '$A' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}' $U/v1/chat/completions) = 400 ] && grep -q context_length '$T/e'"
# a client that leaves mid-stream: the next request is still answered
timeout 1 curl -s -N -H "$A" -d '{"messages":[{"role":"user","content":"tell me a long story"}],"max_tokens":400,"stream":true}' $U/v1/chat/completions >/dev/null 2>&1
check "after a disconnect, the next request is answered" "[ \$(code -m 60 -H '$A' -d '$req' $U/v1/chat/completions) = 200 ]"
# bounded load: 40 requests, 8 at a time, every one answered
seq 1 40 | xargs -P 8 -I{} curl -s -m 120 -o /dev/null -w '%{http_code}\n' -H "$A" -d '{"messages":[{"role":"user","content":"q {}"}],"max_tokens":8}' $U/v1/chat/completions >"$T/codes"
check "load: 40 requests, 8 concurrent, all 200" "[ \$(grep -c '^200$' '$T/codes') -eq 40 ]"
check "/metrics in Prometheus text" "curl -s $U/metrics | grep -q '^moestream_requests_total'"
curl -s -H "$A" -d '{"prompt":"The capital of","max_tokens":5,"temperature":0}' $U/v1/completions >"$T/c1"
check "/v1/completions" "python3 -c \"import json;r=json.load(open('$T/c1'));assert r['object']=='text_completion' and r['usage']['completion_tokens']==5\""
# llama-server's timings object, on both replies: counts agree with usage
curl -s -H "$A" -d "$req" $U/v1/chat/completions >"$T/r3"
check "timings: predicted_n = completion_tokens, prompt_n + cache_n = prompt_tokens, times > 0" "python3 - '$T/c1' '$T/r3' <<'PY'
import json, sys
rs = [json.load(open(f)) for f in sys.argv[1:]]
for r in rs:
    t, u = r['timings'], r['usage']
    assert t['predicted_n'] == u['completion_tokens'] and t['prompt_n'] + t['cache_n'] == u['prompt_tokens'], (t, u)
    assert t['predicted_ms'] > 0 and t['prompt_ms'] > 0 and t['predicted_per_second'] > 0, t
PY"
# llama-server's ignore_eos: "hello" ends at EOS after 152 tokens on this
# model; with it, the reply runs to max_tokens
ie() { curl -s -H "$A" -d "{\"prompt\":\"hello\",\"max_tokens\":300,\"temperature\":0$1}" $U/v1/completions |
  python3 -c "import sys,json;j=json.load(sys.stdin);print(j['usage']['completion_tokens'],j['choices'][0]['finish_reason'])"; }
e0=$(ie "") e1=$(ie ',"ignore_eos":true')
check "ignore_eos: without it the reply stops at EOS ($e0), with it it runs to max_tokens ($e1)" \
  "[ '$e1' = '300 length' ] && [ \"\${e0#* }\" = stop ]"
check "ignore_eos not a boolean: 400 naming the param" \
  "[ \$(code -H '$A' -d '{\"prompt\":\"a\",\"ignore_eos\":\"yes\"}' $U/v1/completions) = 400 ] && grep -q '\"param\":\"ignore_eos\"' '$T/e'"
check "/tokenize" "curl -s -H '$A' -d '{\"content\":\"hello\"}' $U/tokenize | grep -q tokens"
kill $SRV; wait $SRV 2>/dev/null
check "server exits on SIGTERM" "! kill -0 $SRV 2>/dev/null"
[ $fails -eq 0 ]
