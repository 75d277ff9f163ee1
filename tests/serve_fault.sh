#!/bin/bash
# `moestream serve` under faults, on the tiny golden model with its routed
# experts paged through a 4-slot pool (every token reads experts):
#  - an injected EIO (MOESTREAM_FAULT=eio:1:1, only the first read fails)
#    fails that request with a 500 OpenAI error naming file and offset; the
#    next request is answered, at temperature 0 with the text of a clean run;
#  - --timeout: a request that runs too long (slow disk, stall:40) gets a 504
#    "timeout" error, or an SSE error event before [DONE] when streaming;
#    the server answers the next request;
#  - the model file truncated while serving: a clean 500 saying "model file
#    X changed on disk (size A -> B)", and the server stays up;
#  - the same under --load-mode mmap, where the read is a SIGBUS: the
#    process names the file and exits 1 (no crash, no wrong output).
# --no-prefetch: a failed read ahead is silently read again (tests/
# test_pager.c), so without it the first read might not be the request's.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve_fault.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
M="$T/model.gguf"
cp "$G/models/tiny-ud-iq1_s.gguf" "$M"
PAGED=(--load-mode pager --cache-experts 4 --no-prefetch -c 512)
PORT=$(( 20000 + ($$ + 7919) % 20000 ))
U=http://127.0.0.1:$PORT
SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
start() {  # fault spec, extra serve options...
  local fault=$1; shift
  MOESTREAM_FAULT=$fault "$BIN" serve -m "$M" --port $PORT "${PAGED[@]}" "$@" >>"$T/log" 2>&1 &
  SRV=$!
  for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && return 0; sleep 0.1; done
  echo "server did not come up:"; tail -5 "$T/log"; return 1
}
stop() { kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; SRV=; }
code() { curl -s -m 60 -o "$T/e" -w '%{http_code}' "$@"; }
text() { python3 -c "import json,sys;m=json.load(open(sys.argv[1]))['choices'][0]['message'];print(m.get('reasoning_content','')+m['content'])" "$1"; }
req='{"messages":[{"role":"user","content":"hello"}],"max_tokens":16,"temperature":0}'
"$BIN" run -m "$M" "${PAGED[@]}" -p hello -n 16 --temp 0 2>/dev/null |
  python3 -c "import sys;sys.stdout.write(sys.stdin.buffer.read().decode('utf-8','replace'))" >"$T/clean.txt"

# 1. one failing read
start eio:1:1 || exit 1
c=$(code -d "$req" $U/v1/chat/completions)
check "EIO: 500 ($c)" "[ '$c' = 500 ]"
check "EIO: OpenAI error naming file and offset" \
  "python3 -c \"import json;e=json.load(open('$T/e'))['error'];assert e['type']=='server_error' and 'model.gguf' in e['message'] and 'offset' in e['message'], e\""
cat "$T/e"; echo
c=$(code -d "$req" $U/v1/chat/completions)
check "after EIO: the next request is answered ($c)" "[ '$c' = 200 ]"
text "$T/e" >"$T/after.txt" 2>/dev/null
check "after EIO: the same text as a clean run at temperature 0" "cmp -s '$T/after.txt' '$T/clean.txt'"
check "after EIO: /metrics counts the error" "curl -s $U/metrics | grep -q '^moestream_request_errors_total [1-9]'"
stop

# 2. --timeout on a slow disk
# stall:20: every read lands >= 20 ms after it went out, so a token costs
# >= 60 ms (three MoE layers, each missing in the 4-slot pool) and 400 tokens
# cannot finish in 4 s, while a 2-token reply does.
start stall:20 --timeout 4 || exit 1
long='{"messages":[{"role":"user","content":"hello"}],"max_tokens":400,"temperature":0}'
t0=$(date +%s%N)
c=$(code -d "$long" $U/v1/chat/completions)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "timeout: 504 ($c) after ${ms} ms" "[ '$c' = 504 ] && [ $ms -ge 4000 ] && [ $ms -lt 15000 ]"
check "timeout: error code 'timeout'" "python3 -c \"import json;e=json.load(open('$T/e'))['error'];assert e['code']=='timeout' and '--timeout' in e['message'], e\""
cat "$T/e"; echo
curl -s -N -m 60 -d "${long%\}},\"stream\":true}" $U/v1/chat/completions >"$T/s"
check "timeout, streaming: an error event, then [DONE]" \
  "grep -v '^\$' '$T/s' | tail -1 | grep -q 'data: \[DONE\]' && grep '^data: {' '$T/s' | tail -1 | grep -q '\"code\":\"timeout\"'"
c=$(code -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":2,"temperature":0}' $U/v1/chat/completions)
check "after a timeout: a short request is answered ($c)" "[ '$c' = 200 ]"
stop

# 3. the model file truncated under the server
start "" || exit 1
c=$(code -d "$req" $U/v1/chat/completions)
check "before truncation: 200 ($c)" "[ '$c' = 200 ]"
size=$(stat -c %s "$M")
truncate -s $((size / 3)) "$M"
c=$(code -d "$req" $U/v1/chat/completions)
check "truncated file: 500 ($c)" "[ '$c' = 500 ]"
check "truncated file: 'model file ... changed on disk (size $size -> $((size / 3)))'" \
  "grep -q 'model file [^ ]*model.gguf changed on disk (size $size -> $((size / 3)))' '$T/e'"
cat "$T/e"; echo
check "truncated file: the server is still up" "kill -0 $SRV && [ \$(curl -s -o /dev/null -w '%{http_code}' $U/health) = 200 ]"
stop

# 4. --load-mode mmap: a read past the truncated end is SIGBUS, which has no
# error path; the process names the file and exits 1 instead of crashing
# (a port of its own: the previous server's may still be in TIME_WAIT)
cp "$G/models/tiny-ud-iq1_s.gguf" "$M"
U2=http://127.0.0.1:$((PORT + 1))
"$BIN" serve -m "$M" --port $((PORT + 1)) --load-mode mmap -c 512 >>"$T/mmap.log" 2>&1 &
SRV=$!
up=0
# 60 s: a sanitizer build on a loaded 2-core machine once took over 30
for _ in $(seq 1 600); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U2/health)" = 200 ] && up=1 && break; sleep 0.1; done
check "mmap server came up" "[ $up -eq 1 ]"
[ $up -eq 1 ] || { echo "mmap server log:"; tail -5 "$T/mmap.log"; }
truncate -s $((size / 3)) "$M"
curl -s -m 60 -o /dev/null -d "$req" $U2/v1/chat/completions
wait $SRV; rc=$?; SRV=
check "mmap, truncated file: exit status 1 ($rc)" "[ $rc -eq 1 ]"
check "mmap, truncated file: the message names the file" \
  "grep -q 'model file [^ ]*model.gguf changed on disk while mapped' '$T/mmap.log'"
grep -E 'AddressSanitizer|runtime error|Segmentation' "$T/log" "$T/mmap.log" && fails=$((fails+1))
[ $fails -eq 0 ]
