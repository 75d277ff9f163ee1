#!/bin/bash
# Out of memory in the front ends (issue 14, item 14), with allocation
# failures injected into the one growable buffer (MOESTREAM_FAULT=alloc:N:K,
# src/fault.h): no crash, no lost buffer, the error is reported as out of
# memory (never as "cancelled"), and the next request works.
#  - batch: the first growth fails -> line 1 is an error record "out of
#    memory while generating", line 2 is answered with a clean run's text;
#    every growth failing -> exit 1 with the cause, nothing counted;
#  - chat (piped): the reply buffer fails -> "error: out of memory", the
#    next prompt is answered;
#  - serve: the first request body cannot be held -> 500 "out of memory";
#    the next request gets 200.
source "$(dirname "$0")/lib/batch.sh"
T=${MOESTREAM_TMP:-/tmp}/oom_frontends.$$; mkdir -p "$T"
SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
printf 'hello\nworld\n' > "$T/in.jsonl"
batch -i "$T/in.jsonl" -o "$T/ref.jsonl" -n 8 2>"$T/err" || { cat "$T/err"; exit 1; }

# batch
MOESTREAM_FAULT=alloc:1:1 batch -i "$T/in.jsonl" -o "$T/o1.jsonl" -n 8 2>"$T/err"; rc=$?
check "batch, one failed growth: exit 0 (got $rc)" "[ $rc -eq 0 ]"
check "batch: line 1 is an error record saying out of memory" \
  "records '$T/o1.jsonl' --lines 1-2 --errors 1 >/dev/null && head -1 '$T/o1.jsonl' | grep -q '\"message\":\"out of memory while generating\"'"
check "batch: not reported as cancelled" "! grep -qi cancel '$T/o1.jsonl' '$T/err'"
check "batch: line 2 answered as in a clean run" \
  "sed -n 2p '$T/o1.jsonl' > '$T/l2' && records '$T/l2' --lines 2 --errors '' --ref '$T/ref.jsonl' >/dev/null"
MOESTREAM_FAULT=alloc:1 batch -i "$T/in.jsonl" -o "$T/o2.jsonl" -n 8 2>"$T/err"; rc=$?
check "batch, every growth failing: exit 1, out of memory said, 0 counted, no record" \
  "[ $rc -eq 1 ] && grep -q 'out of memory' '$T/err' && grep -q '^batch: 0 done, 0 errors' '$T/err' && [ ! -s '$T/o2.jsonl' ]"

# chat, piped: growth 1 is the first turn's (its reply text through
# ms_generate's callback)
printf 'hello\nworld\n' | MOESTREAM_FAULT=alloc:1:1 "$BIN" chat -m "$M" -n 8 --temp 0 >"$T/c1.out" 2>"$T/c1.err"; rc=$?
check "chat: no crash (rc $rc), 'error: out of memory' for the first turn" \
  "[ $rc -lt 128 ] && grep -q '^error: out of memory' '$T/c1.err' && ! grep -qi cancel '$T/c1.err'"
check "chat: the second turn is answered" "[ \$(wc -l < '$T/c1.out') -ge 2 ] && [ -n \"\$(tail -1 '$T/c1.out')\" ]"

# serve
PORT=$(( 20000 + ($$ + 6007) % 20000 )); U=http://127.0.0.1:$PORT
MOESTREAM_FAULT=alloc:1:1 "$BIN" serve -m "$M" --port $PORT >"$T/log" 2>&1 & SRV=$!
for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && break; sleep 0.1; done
req='{"messages":[{"role":"user","content":"hello"}],"max_tokens":4,"temperature":0}'
c1=$(curl -s -m 60 -o "$T/e1" -w '%{http_code}' -d "$req" $U/v1/chat/completions)
check "serve: first request 500 out of memory (got $c1)" \
  "[ '$c1' = 500 ] && python3 -c \"import json;e=json.load(open('$T/e1'))['error'];assert 'out of memory' in e['message'], e\""
c2=$(curl -s -m 60 -o "$T/e2" -w '%{http_code}' -d "$req" $U/v1/chat/completions)
check "serve: the next request 200 (got $c2)" "[ '$c2' = 200 ]"
kill $SRV; wait $SRV 2>/dev/null; SRV=
[ $fails -eq 0 ]
