#!/bin/bash
# configs/haproxy.cfg in front of two `moestream serve` replicas, all on
# 127.0.0.1 (ports the kernel hands out): requests through haproxy succeed
# and reach both replicas (least connections); a streamed (SSE) reply passes
# through whole; after one replica is killed, new requests still succeed.
# A tiny synthetic model, so no golden set is needed.  Named _slow (about
# 30 s) so the sanitizer passes, which gain nothing from it, skip it.
set -u
. "$(dirname "$0")/lib/need.sh"
need_tool haproxy curl python3
BIN=${MOESTREAM_BIN:?}; T=${MOESTREAM_TMP:-/tmp}/haproxy.$$
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$T"; fails=0
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
M="$T/tiny.gguf"
"$BIN" synth --tiny -o "$M" >/dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
P1=$(port); P2=$(port); PL=$(port)
"$BIN" serve -m "$M" --port "$P1" -c 256 -t 1 >"$T/r1.log" 2>&1 & R1=$!; pids+=($R1)
"$BIN" serve -m "$M" --port "$P2" -c 256 -t 1 >"$T/r2.log" 2>&1 & R2=$!; pids+=($R2)
# the shipped file with this test's addresses: the frontend's port and the
# two server lines; everything else (checks, balance, timeouts) as shipped
sed -e "s/^\(    bind \)127.0.0.1:8000/\1127.0.0.1:$PL/" \
    -e "s/^\(    server replica1 \)[^ ]*/\1127.0.0.1:$P1/" \
    -e "s/^\(    server replica2 \)[^ ]*/\1127.0.0.1:$P2/" \
    "$HERE/configs/haproxy.cfg" > "$T/haproxy.cfg"
check "the test's config differs from the shipped one only in addresses" \
  '[ "$(diff "$HERE/configs/haproxy.cfg" "$T/haproxy.cfg" | grep -c "^>")" -eq 3 ]'
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 & HP=$!; pids+=($HP)
for p in $P1 $P2; do
  for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$p/health)" = 200 ] && break; sleep 0.1; done
done
U=http://127.0.0.1:$PL
body='{"messages":[{"role":"user","content":"hello"}],"max_tokens":4,"temperature":0}'
ask() { curl -s -m 60 -o "$T/out.$1" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" $U/v1/chat/completions; }
# haproxy marks both up after its first checks (rise 1, every 2 s)
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && break; sleep 0.1; done
sleep 2.5
ok=0
for i in 1 2 3 4 5 6; do [ "$(ask $i)" = 200 ] && ok=$((ok+1)); done
check "6 requests through haproxy: all 200 ($ok)" '[ $ok -eq 6 ]'
n1=$(curl -s http://127.0.0.1:$P1/metrics | sed -n 's/^moestream_generated_tokens_total //p')
n2=$(curl -s http://127.0.0.1:$P2/metrics | sed -n 's/^moestream_generated_tokens_total //p')
check "both replicas generated (tokens: replica1 $n1, replica2 $n2)" '[ "${n1:-0}" -gt 0 ] && [ "${n2:-0}" -gt 0 ]'
curl -s -N -m 60 -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":4,"temperature":0,"stream":true}' \
  $U/v1/chat/completions > "$T/sse"
check "a streamed reply passes through: data chunks and [DONE]" \
  '[ "$(grep -c "^data: {" "$T/sse")" -ge 2 ] && grep -q "^data: \[DONE\]" "$T/sse"'

kill -9 $R1; wait $R1 2>/dev/null
ok=0
for i in 7 8 9 10 11 12; do [ "$(ask $i)" = 200 ] && ok=$((ok+1)); done
check "replica1 killed: 6 new requests all 200 ($ok)" '[ $ok -eq 6 ]'
check "the answers are chat completions" \
  "python3 -c \"import json; r = json.load(open('$T/out.12')); assert r['object'] == 'chat.completion'\""
[ $fails -eq 0 ] || { echo "haproxy log:"; tail -20 "$T/haproxy.log"; }
[ $fails -eq 0 ]
