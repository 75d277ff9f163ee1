#!/bin/bash
# `moestream serve` protocol details OpenAI clients and browsers rely on,
# with curl:
# - CORS: an OPTIONS preflight gets 204 with Access-Control-Allow-* headers,
#   needs no API key and runs no model work (prompt token counter unchanged);
#   every response carries Access-Control-Allow-Origin; --cors-origins with a
#   list echoes listed origins only, "localhost" local origins only
# - --alias names the model in /v1/models and in responses; /v1/models
#   "created" is the model file's modification time; system_fingerprint;
#   the first stream chunk carries the role
# - /detokenize inverts /tokenize; GET / answers a short JSON without a key
# - n > 1, tools, logprobs get a 400 naming the field
# - --host ::1 (IPv6), --host :: (both families), --host NAME listens on
#   every address the name resolves to
# - one log line per request on stderr, text and --log-format json, with
#   status, prompt and generated tokens and duration
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve_protocol.$$
M="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SRV=""
stop() { [ -n "$SRV" ] && { kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; }; SRV=""; }
trap 'stop; rm -rf "$T"' EXIT
start() {  # url log args...: starts the server, waits for /health
  local u=$1 log=$2; shift 2
  "$BIN" serve -m "$M" -c 512 "$@" 2>"$log" &
  SRV=$!
  for _ in $(seq 1 200); do [ "$(curl -gs -o /dev/null -w '%{http_code}' "$u/health")" = 200 ] && return 0; sleep 0.1; done
  echo "FAIL: server not up ($*)"; cat "$log"; fails=$((fails+1)); return 1
}
hdr() { tr -d '\r' <"$1" | grep -i "^$2:" | head -1 | cut -d' ' -f2-; }
prompt_total() { curl -gs "$1/metrics" | sed -n 's/^moestream_prompt_tokens_total //p'; }

# ---- server 1: IPv6 loopback, API key, alias, an origin list, text log ----
P=$(free_port); U="http://[::1]:$P"; A="Authorization: Bearer sekret"
start "$U" "$T/log1" --host ::1 --port "$P" --api-key sekret --alias tinyr1 \
  --cors-origins "http://a.example, http://b.example" || exit 1
check "--host ::1: /health over IPv6" "[ \$(curl -gs -o /dev/null -w '%{http_code}' '$U/health') = 200 ]"
check "--host ::1: not on IPv4" "! curl -s -m 2 -o /dev/null http://127.0.0.1:$P/health"
before=$(prompt_total "$U")
curl -gs -D "$T/h" -o "$T/b" -w '%{http_code}' -X OPTIONS -H 'Origin: http://a.example' \
  -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type' \
  "$U/v1/chat/completions" >"$T/code"
check "preflight without a key: 204, empty body" "[ \$(cat '$T/code') = 204 ] && [ ! -s '$T/b' ]"
check "preflight: the listed origin echoed" "[ \"\$(hdr '$T/h' access-control-allow-origin)\" = http://a.example ]"
check "preflight: POST allowed" "hdr '$T/h' access-control-allow-methods | grep -q POST"
check "preflight: Authorization allowed" "hdr '$T/h' access-control-allow-headers | grep -qi authorization"
check "preflight ran no model work" "[ '$(prompt_total "$U")' = '$before' ]"
curl -gs -D "$T/h" -o /dev/null -X OPTIONS -H 'Origin: http://evil.example' "$U/v1/chat/completions"
check "an origin not in --cors-origins gets no Allow-Origin" "[ -z \"\$(hdr '$T/h' access-control-allow-origin)\" ]"
curl -gs -D "$T/h" -o "$T/models" -H "$A" -H 'Origin: http://b.example' "$U/v1/models"
check "a normal response carries Allow-Origin too" "[ \"\$(hdr '$T/h' access-control-allow-origin)\" = http://b.example ]"
mtime=$(stat -c %Y "$M")
check "--alias in /v1/models, created = the model file's mtime" \
  "python3 -c \"import json;d=json.load(open('$T/models'))['data'];assert d[0]['id']=='tinyr1' and d[0]['created']==$mtime, d\""
check "a 401 still carries Allow-Origin (the browser can read the error)" \
  "curl -gs -D - -o /dev/null -H 'Origin: http://a.example' '$U/v1/models' | tr -d '\r' | grep -qi '^access-control-allow-origin: http://a.example'"
curl -gs -H "$A" -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":4}' "$U/v1/chat/completions" >"$T/r"
check "--alias and system_fingerprint in a chat completion" \
  "python3 -c \"import json;r=json.load(open('$T/r'));assert r['model']=='tinyr1' and r['system_fingerprint'].startswith('moestream-'), r\""
curl -gs -N -H "$A" -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":4,"stream":true}' "$U/v1/chat/completions" >"$T/s"
check "the first stream chunk carries role assistant, every chunk the alias" "python3 - '$T/s' <<'PY'
import json, sys
ch = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith('data: {')]
assert ch[0]['choices'][0]['delta'].get('role') == 'assistant', ch[0]
assert all(c['model'] == 'tinyr1' and c['system_fingerprint'] for c in ch)
assert sum(1 for c in ch if c['choices'][0]['delta'].get('role')) == 1
PY"
text='Hello, world: 42 tokens and more'
curl -gs -H "$A" -d "{\"content\":\"$text\"}" "$U/tokenize" >"$T/tok"
curl -gs -H "$A" -d @"$T/tok" "$U/detokenize" >/dev/null  # {"tokens":...} is what detokenize takes
check "/detokenize inverts /tokenize" \
  "[ \"\$(curl -gs -H '$A' -d @'$T/tok' '$U/detokenize' | python3 -c 'import json,sys;print(json.load(sys.stdin)[\"content\"])')\" = '$text' ]"
check "/detokenize: a bad id is a 400 naming tokens" \
  "curl -gs -H '$A' -d '{\"tokens\":[1,-5]}' '$U/detokenize' | grep -q '\"param\":\"tokens\"'"
check "/detokenize needs the key" "[ \$(curl -gs -o /dev/null -w '%{http_code}' -d @'$T/tok' '$U/detokenize') = 401 ]"
curl -gs "$U/" >"$T/root"
check "GET / without a key: name and status, no model name while a key guards the server" \
  "python3 -c \"import json;r=json.load(open('$T/root'));assert r['name']=='moestream' and r['status']=='ok' and 'model' not in r, r\""
for f in '"n":2' '"tools":[{"type":"function","function":{"name":"f"}}]' '"logprobs":true'; do
  name=${f%%:*}; name=${name//\"/}
  check "$name: 400 naming it as unsupported" \
    "curl -gs -H '$A' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$f}' '$U/v1/chat/completions' | grep -q '\"param\":\"$name\".*unsupported\\|unsupported.*\"param\":\"$name\"\\|not supported.*\"param\":\"$name\"'"
done
stop
check "text log: one line per request, with status, tokens and duration" "python3 - '$T/log1' <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if re.match(r'\d{4}-\d\d-\d\dT', l)]
pat = re.compile(r'^\S+Z (\S+) (GET|POST|OPTIONS) (\S+) (\d{3}) prompt=(\d+) gen=(\d+) (\d+\.\d{3})s( incomplete)?$')
for l in lines:
    assert pat.match(l.rstrip()), l
st = [pat.match(l.rstrip()) for l in lines]
chat = [m for m in st if m.group(3) == '/v1/chat/completions' and m.group(4) == '200']
assert len(chat) == 2 and all(m.group(6) == '4' and int(m.group(5)) > 0 for m in chat), chat
assert any(m.group(2) == 'OPTIONS' and m.group(4) == '204' for m in st)
assert any(m.group(4) == '401' for m in st)
assert all(m.group(1) == '::1' for m in st)
print(len(lines), 'lines')
PY"

# ---- server 2: a host name, the default CORS, the JSON log ----
P=$(free_port)
start "http://127.0.0.1:$P" "$T/log2" --host localhost --port "$P" --log-format json || exit 1
want=$(getent ahosts localhost | awk '$2=="STREAM"{print $1}' | sort -u)
got=$(sed -n 's|.*listening on http://\[\{0,1\}\([^]]*\)\]\{0,1\}:[0-9]* .*|\1|p' "$T/log2" | sort -u)
check "--host localhost listens on each of its addresses ($(echo $want))" "[ '$want' = '$got' ]"
curl -s -D "$T/h" -o /dev/null -X OPTIONS -H 'Origin: http://x.example' "http://127.0.0.1:$P/v1/chat/completions"
check "default CORS (as llama-server): Allow-Origin *" "[ \"\$(hdr '$T/h' access-control-allow-origin)\" = '*' ]"
curl -s -o /dev/null -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":3}' "http://127.0.0.1:$P/v1/chat/completions"
curl -s "http://127.0.0.1:$P/" >"$T/root"
check "GET / without a key configured names the model" "grep -q tiny-ud-iq1_s.gguf '$T/root'"
stop
check "JSON log: one object per request with status, tokens and duration" "python3 - '$T/log2' <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
keys = {'time', 'client', 'method', 'path', 'status', 'prompt_tokens', 'completion_tokens', 'duration_s'}
assert recs and all(keys <= set(r) for r in recs), recs
chat = [r for r in recs if r['method'] == 'POST' and r['path'] == '/v1/chat/completions']
assert len(chat) == 1 and chat[0]['status'] == 200 and chat[0]['completion_tokens'] == 3 and chat[0]['prompt_tokens'] > 0, chat
assert any(r['method'] == 'OPTIONS' and r['status'] == 204 for r in recs)
PY"

# ---- server 3: :: listens on IPv6 and IPv4, --log-disable ----
P=$(free_port)
start "http://127.0.0.1:$P" "$T/log3" --host :: --port "$P" --log-disable || exit 1
check "--host :: answers on IPv4" "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$P/health) = 200 ]"
check "--host :: answers on IPv6" "[ \$(curl -gs -o /dev/null -w '%{http_code}' 'http://[::1]:$P/health') = 200 ]"
stop
check "--log-disable: no request lines" "! grep -q 'GET /health' '$T/log3'"
check "a bad --host is refused before loading" "! '$BIN' serve -m '$M' --host no-such-host.invalid 2>'$T/e' && grep -q 'no-such-host' '$T/e'"
check "a bad --log-format is refused" "! '$BIN' serve -m '$M' --log-format yaml 2>/dev/null"
[ $fails -eq 0 ]
