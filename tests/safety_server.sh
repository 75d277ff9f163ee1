#!/bin/bash
# Replays issue 14's server and chat items end to end, one line per item
# ("item 7 (idle connections): ok"), exit non-zero if any fails.  Loopback
# only; every loop and wait is bounded; every server started here is stopped.
#   7  idle connections: 200 idle sockets do not block /health (< 2 s); idle
#      and slow-sending clients are dropped after --idle-timeout; the
#      per-address limit holds; SIGTERM drains (refuses new connections,
#      finishes the running request, exits 0)
#   8  a non-streaming client that hangs up cancels its generation: after
#      three `curl -m 1` with max_tokens 4000 the engine is idle within 2 s
#   9  input memory inside --mem: text that cannot fit the context is
#      refused before tokenizing (run and serve); the plan shows the request
#      budget; VmHWM stays under --mem 300M with 24 concurrent 1 MB /tokenize
#      and 8 concurrent 1 MB chat requests (the bound is not checked under
#      the sanitizers, MOESTREAM_FAST, whose shadow memory is outside --mem)
#  10  API key: any length (600 bytes: its prefix is refused), empty refused
#      at start, --api-key-file, MOESTREAM_API_KEY (not on the command line)
#  11  protocol: streaming over the context is a 400 JSON before any stream,
#      wrong method 405 with Allow, error.param filled, 413 JSON for big bodies
#  13  chat: /save keeps every message (invalid UTF-8 repaired and said), a
#      full context drops the oldest turns with a notice (system prompt
#      stays), a turn that still fails exits non-zero, stdin closed is not
#      the model file
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
BIN=${MOESTREAM_BIN:?}; G=${MOESTREAM_GOLDEN:?}; T=${MOESTREAM_TMP:-/tmp}/safety_server.$$
M="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T"
SRV=""
trap '[ -n "$SRV" ] && kill -9 $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
failed=0
item() {  # number, title, function (run in this shell, so SRV is seen)
  local rc=0
  [ -z "${ITEMS:-}" ] || [[ " $ITEMS " == *" $1 "* ]] || return 0  # ITEMS="8 9": only those
  "$3" >"$T/item$1.out" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then echo "item $1 ($2): ok"; sed 's/^/    /' "$T/item$1.out"
  else echo "item $1 ($2): FAIL"; sed 's/^/    /' "$T/item$1.out"; failed=1; fi
  [ -n "$SRV" ] && stop_srv
  return 0
}
stop_srv() {  # SIGTERM, then SIGKILL after 30 s (a server that hangs must not hang the test)
  kill $SRV 2>/dev/null
  for _ in $(seq 1 300); do kill -0 $SRV 2>/dev/null || break; sleep 0.1; done
  kill -9 $SRV 2>/dev/null; wait $SRV 2>/dev/null; SRV=""
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start() {  # log file, serve options...: sets SRV, PORT, U; 0 when /health is 200
  local log=$1; shift
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  "$BIN" serve -m "$M" --port "$PORT" "$@" >"$log" 2>&1 &
  SRV=$!
  for _ in $(seq 1 300); do
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && return 0
    kill -0 $SRV 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up:"; cat "$log"; return 1
}
fail() { echo "$*"; return 1; }
gauge() { curl -s -m 2 $U/metrics | awk -v k="$1" '$1 == k {print $2}'; }

# ---- 7: idle connections ----
item7() {
  start "$T/log7" --idle-timeout 3 || return 1
  python3 - "$PORT" <<'PY' || return 1
import socket, sys, time, urllib.request
port = int(sys.argv[1])
idle = []
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    idle.append(s)
slow = socket.create_connection(("127.0.0.1", port), timeout=2)
t0 = time.time()
urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
dt = time.time() - t0
assert dt < 2, f"/health took {dt:.2f} s behind 200 idle connections"
print(f"/health answered in {dt:.3f} s with 200 idle connections open")
# a slow sender: one byte every 0.25 s never completes its request in time
req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
dropped_at = None
t0 = time.time()
for b in req:
    try:
        slow.send(bytes([b]))
    except OSError:
        dropped_at = time.time() - t0
        break
    time.sleep(0.25)
    if time.time() - t0 > 8:
        break
if dropped_at is None:  # the send may still succeed once after the shutdown
    slow.settimeout(2)
    try:
        got = slow.recv(100)
        dropped_at = time.time() - t0 if got == b"" else None
    except OSError:
        dropped_at = time.time() - t0
assert dropped_at is not None and dropped_at < 6, "a slow sender was not dropped after --idle-timeout 3"
print(f"slow sender dropped after {dropped_at:.1f} s")
# the idle ones were dropped too (their read sees the end)
closed = 0
for s in idle:
    s.settimeout(3)
    try:
        closed += s.recv(1) == b""
    except OSError:
        closed += 1
assert closed == 200, f"only {closed} of 200 idle connections dropped"
print("200 idle connections dropped after --idle-timeout")
PY
  stop_srv
  # per-address limit: the 5th connection from one address is closed at once
  start "$T/log7b" --max-per-address 4 --idle-timeout 30 || return 1
  python3 - "$PORT" <<'PY' || return 1
import socket, sys
port = int(sys.argv[1])
keep = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(4)]
s = socket.create_connection(("127.0.0.1", port), timeout=3)
try:
    got = s.recv(1)
except ConnectionResetError:
    got = b""
assert got == b"", "a 5th connection from one address was accepted with --max-per-address 4"
print("5th connection from one address refused")
PY
  stop_srv
  # SIGTERM drains: a running request finishes, new connections are refused, exit 0
  # (ignore_eos: the tiny model's reply would end at EOS after ~500 tokens,
  # 0.6 s, close enough to the checks below to finish first on a fast machine)
  start "$T/log7c" --timeout 60 || return 1
  curl -s -m 60 -o "$T/drain.json" -w '%{http_code}' \
    -d '{"messages":[{"role":"user","content":"tell me a story"}],"max_tokens":3000,"ignore_eos":true,"temperature":0}' \
    $U/v1/chat/completions >"$T/drain.code" &
  local cpid=$!
  for _ in $(seq 1 100); do [ "$(gauge moestream_active_requests)" = 1 ] && break; sleep 0.05; done
  [ "$(gauge moestream_active_requests)" = 1 ] || fail "the request did not start" || return 1
  kill -TERM $SRV
  sleep 0.3
  kill -0 $SRV 2>/dev/null ||
    fail "the server exited before its request finished (reply: HTTP $(cat "$T/drain.code" 2>/dev/null), $(head -c 300 "$T/drain.json" 2>/dev/null); log: $(tail -3 "$T/log7c"))" ||
    return 1
  local code; code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' $U/health)
  [ "$code" = 000 ] || fail "a new connection was accepted while draining (HTTP $code)" || return 1
  wait $cpid
  local rc=0; wait $SRV || rc=$?; SRV=""
  [ $rc -eq 0 ] || fail "exit status $rc after SIGTERM" || return 1
  [ "$(cat "$T/drain.code")" = 200 ] || fail "the running request got $(cat "$T/drain.code")" || return 1
  python3 -c "import json,sys;r=json.load(open(sys.argv[1]));assert r['usage']['completion_tokens']>0" "$T/drain.json" ||
    fail "the drained reply is not a completion" || return 1
  grep -q "1 request in flight" "$T/log7c" || fail "no drain notice in the log" || return 1
  echo "SIGTERM: refused new connections, finished the running request, exit 0"
}

# ---- 8: hang-up cancels ----
item8() {
  start "$T/log8" || return 1
  # one python process sends the clients and polls /metrics, so no process
  # start-up (seconds on a loaded machine) sits inside the 2 s
  python3 - "$PORT" <<'PY'
import http.client, json, subprocess, sys, time
port = sys.argv[1]
body = json.dumps({"messages": [{"role": "user", "content": "tell me a long story"}], "max_tokens": 4000})
clients = [subprocess.Popen(["curl", "-s", "-m", "1", "-o", "/dev/null", "-d", body,
                             f"http://127.0.0.1:{port}/v1/chat/completions"]) for _ in range(3)]
for c in clients:
    c.wait()  # each gave up after 1 s
t0 = time.monotonic()
def gauges():
    h = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
    h.request("GET", "/metrics")
    text = h.getresponse().read().decode()
    h.close()
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l and l[0] != "#"}
g = gauges()
while (g["moestream_active_requests"] or g["moestream_queue_depth"]) and time.monotonic() - t0 < 2:
    time.sleep(0.05)
    g = gauges()
dt = time.monotonic() - t0
busy = g["moestream_active_requests"] or g["moestream_queue_depth"]
assert not busy and dt <= 2, f"engine still busy {dt*1000:.0f} ms after the clients left: {g}"
gen = g["moestream_generated_tokens_total"]
assert gen < 12000, f"generated {gen} tokens for nobody"
print(f"idle {dt*1000:.0f} ms after the clients left; {gen:.0f} tokens generated of 3 x 4000 asked")
PY
}

# ---- 9: input memory ----
item9() {
  # run: a prompt that cannot fit is refused before it is tokenized
  python3 -c "import sys;sys.stdout.write('x'*(10<<20))" >"$T/10m.txt"
  local out rc=0
  out=$(/usr/bin/time -f 'maxrss %M' "$BIN" run -m "$M" -f "$T/10m.txt" -n 4 2>&1) || rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "cannot fit the context" || fail "run took a 10 MB prompt: $out" || return 1
  local kb; kb=$(echo "$out" | awk '/^maxrss/ {print $2}')
  echo "run refused a 10 MB prompt before tokenizing (peak RSS ${kb} KB)"
  rm -f "$T/10m.txt"
  "$BIN" inspect -m "$M" --mem 300M 2>&1 | grep -q "memory plan.*+ requests 0.0[0-9] GiB" ||
    fail "the memory plan does not show the request budget" || return 1
  start "$T/log9" --mem 300M || return 1
  python3 - "$PORT" "$SRV" "${MOESTREAM_FAST:-}" <<'PY' || return 1
import json, random, sys, threading, urllib.request, urllib.error
port, pid, fast = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def hwm():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
random.seed(7)
words = ["alpha", "beta", "über", "日本語", "😀", "  ", "\n", "x", "1234"]
text = "".join(random.choice(words) for _ in range(250000)).encode()[:1000000]
text = text.decode("utf-8", "ignore")
tok_body = json.dumps({"content": text}, ensure_ascii=False).encode()
chat_body = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 4},
                       ensure_ascii=False).encode()
assert len(tok_body) <= 1 << 20 and len(chat_body) <= 1 << 20, (len(tok_body), len(chat_body))
base = hwm()
codes = []
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
            codes.append((path, r.status))
    except urllib.error.HTTPError as e:
        codes.append((path, e.code, json.load(e)["error"].get("code")))
    except Exception as e:
        codes.append((path, repr(e)))
n_tok = 6 if fast else 24
ths = [threading.Thread(target=post, args=("/tokenize", tok_body)) for _ in range(n_tok)]
ths += [threading.Thread(target=post, args=("/v1/chat/completions", chat_body)) for _ in range(8)]
for t in ths: t.start()
for t in ths: t.join()
peak = hwm()
ok_tok = sum(1 for c in codes if c == ("/tokenize", 200))
ok_chat = sum(1 for c in codes if c == ("/v1/chat/completions", 400, "context_length_exceeded"))
assert ok_tok == n_tok and ok_chat == 8, codes
print(f"{n_tok} x 1 MB /tokenize: 200; 8 x 1 MB chat: 400 context_length_exceeded; "
      f"VmHWM {base/2**20:.0f} MiB before, {peak/2**20:.0f} MiB after (--mem 300M)")
if not fast:
    assert peak <= 300 << 20, f"peak RSS {peak/2**20:.0f} MiB over --mem 300M"
PY
}

# ---- 10: API key ----
item10() {
  local key; key=$(python3 -c "import random;random.seed(3);print(''.join(random.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(600)))")
  code() { curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" $U/v1/models; }
  start "$T/log10" --api-key "$key" || return 1
  [ "$(code "$key")" = 200 ] || fail "a 600-byte key was refused" || return 1
  [ "$(code "${key:0:504}")" = 401 ] || fail "the key's 504-byte prefix was accepted" || return 1
  [ "$(code "${key}x")" = 401 ] || fail "the key plus one byte was accepted" || return 1
  [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' $U/v1/models)" = 401 ] || fail "no key was accepted" || return 1
  stop_srv
  local rc=0
  "$BIN" serve -m "$M" --port "$(free_port)" --api-key "" >"$T/empty" 2>&1 || rc=$?
  [ $rc -eq 2 ] && grep -q "empty" "$T/empty" || fail "an empty --api-key did not stop the start (rc $rc)" || return 1
  rc=0; MOESTREAM_API_KEY= "$BIN" serve -m "$M" --port "$(free_port)" >"$T/empty" 2>&1 || rc=$?
  [ $rc -eq 2 ] || fail "an empty MOESTREAM_API_KEY did not stop the start (rc $rc)" || return 1
  printf '%s\n' "filekey-$key" >"$T/keyfile"
  start "$T/log10b" --api-key-file "$T/keyfile" || return 1
  [ "$(code "filekey-$key")" = 200 ] || fail "--api-key-file's key was refused" || return 1
  [ "$(code "$key")" = 401 ] || fail "--api-key-file: a wrong key was accepted" || return 1
  stop_srv
  : >"$T/emptyfile"; rc=0
  "$BIN" serve -m "$M" --port "$(free_port)" --api-key-file "$T/emptyfile" >"$T/empty" 2>&1 || rc=$?
  [ $rc -eq 2 ] || fail "an empty --api-key-file did not stop the start (rc $rc)" || return 1
  MOESTREAM_API_KEY="envkey-$key" start "$T/log10c" || return 1
  [ "$(code "envkey-$key")" = 200 ] || fail "MOESTREAM_API_KEY's key was refused" || return 1
  [ "$(code "$key")" = 401 ] || fail "MOESTREAM_API_KEY: a wrong key was accepted" || return 1
  ! tr '\0' ' ' </proc/$SRV/cmdline | grep -q envkey || fail "the key is on the command line" || return 1
  echo "600-byte key exact (prefix and extension refused); empty keys refused; file and environment keys work"
}

# ---- 11: protocol ----
item11() {
  start "$T/log11" -c 256 || return 1
  local long; long=$(python3 -c "print('word ' * 600)")
  local code
  code=$(curl -s -m 10 -D "$T/h" -o "$T/b" -w '%{http_code}' \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}],\"stream\":true}" $U/v1/chat/completions)
  [ "$code" = 400 ] || fail "a streaming request over the context got $code" || return 1
  grep -qi '^content-type: application/json' "$T/h" || fail "not JSON: $(cat "$T/h")" || return 1
  python3 -c "import json,sys;e=json.load(open(sys.argv[1]))['error'];assert e['code']=='context_length_exceeded' and e['param']=='messages',e" "$T/b" ||
    fail "error body: $(cat "$T/b")" || return 1
  code=$(curl -s -m 5 -D "$T/h" -o "$T/b" -w '%{http_code}' $U/v1/chat/completions)
  [ "$code" = 405 ] && grep -qi '^allow: POST' "$T/h" || fail "GET /v1/chat/completions got $code" || return 1
  python3 -c "import json,sys;e=json.load(open(sys.argv[1]))['error'];assert e['code']=='method_not_allowed',e" "$T/b" || return 1
  code=$(curl -s -m 5 -D "$T/h" -o /dev/null -w '%{http_code}' -d '{}' $U/health)
  [ "$code" = 405 ] && grep -qi '^allow: GET' "$T/h" || fail "POST /health got $code" || return 1
  code=$(curl -s -m 5 -o "$T/b" -w '%{http_code}' -d '{"messages":[{"role":"user","content":"hi"}],"temperature":9}' $U/v1/chat/completions)
  [ "$code" = 400 ] && python3 -c "import json,sys;e=json.load(open(sys.argv[1]))['error'];assert e['param']=='temperature',e" "$T/b" ||
    fail "bad temperature: $code $(cat "$T/b")" || return 1
  code=$(curl -s -m 5 -o "$T/b" -w '%{http_code}' -d '{"content":5}' $U/tokenize)
  [ "$code" = 400 ] && grep -q '"param":"content"' "$T/b" || fail "bad /tokenize: $code $(cat "$T/b")" || return 1
  head -c 1100000 /dev/zero | tr '\0' a >"$T/big"
  code=$(curl -s -m 10 -o "$T/b" -w '%{http_code}' --data-binary @"$T/big" $U/v1/chat/completions)
  [ "$code" = 413 ] && grep -q body_too_large "$T/b" || fail "a 1.1 MB body got $code" || return 1
  # libmicrohttpd answers a malformed request itself (HTML: no hook in 0.9.75), with the right status
  code=$(printf 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n' | python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$PORT),timeout=3);s.sendall(sys.stdin.buffer.read())
print(s.recv(64).split()[1].decode())")
  [ "$code" = 400 ] || fail "a bad Content-Length got $code" || return 1
  echo "stream over context: 400 JSON; wrong method: 405 + Allow; param filled; 413 JSON"
}

# ---- 13: chat ----
item13() {
  local rc=0
  printf 'hello there my friend\nwhat is the weather like today\ntell me about disks and memory\nanother question about things\ncaf\303\n/save %s\n' "$T/conv.json" |
    timeout 120 "$BIN" chat -m "$M" -c 64 -n 8 --temp 0 --system "be brief" --ids >"$T/c.out" 2>"$T/c.err" || rc=$?
  [ $rc -eq 0 ] || fail "chat with a full context exited $rc: $(grep -v ids: "$T/c.err")" || return 1
  [ "$(grep -ac 'generated ids:' "$T/c.err")" = 5 ] || fail "not every line got a reply: $(grep -v ids: "$T/c.err")" || return 1
  grep -q "context full: dropped the 2 oldest messages" "$T/c.err" || fail "no notice of dropped turns" || return 1
  grep -q "saved 5 messages to .*invalid UTF-8, saved with U+FFFD" "$T/c.err" || fail "/save: $(grep saved "$T/c.err")" || return 1
  python3 - "$T/conv.json" <<'PY' || return 1
import json, sys
a = json.load(open(sys.argv[1]))
roles = [m["role"] for m in a]
assert roles == ["system", "user", "assistant", "user", "assistant"], roles
assert a[0]["content"] == "be brief" and a[3]["content"] == "caf\ufffd", a
print("saved: system prompt kept, oldest turns dropped, 'caf\\xc3' saved as 'caf\\ufffd'")
PY
  # a message that cannot fit even alone: that turn fails, the rest run, exit non-zero
  rc=0
  (echo hello; python3 -c "print('word ' * 100)"; echo after) |
    timeout 120 "$BIN" chat -m "$M" -c 64 -n 8 --temp 0 --ids >"$T/c.out" 2>"$T/c.err" || rc=$?
  [ $rc -eq 1 ] || fail "a turn that cannot fit: exit $rc" || return 1
  grep -q "does not fit the context of 64 tokens" "$T/c.err" || fail "no message for the turn" || return 1
  [ "$(grep -ac 'generated ids:' "$T/c.err")" = 2 ] || fail "the other turns did not run" || return 1
  ! grep -q "dropped" "$T/c.err" || fail "history was dropped for a message that cannot fit anyway" || return 1
  # stdin closed: the model file must not become fd 0 and be read as prompts
  rc=0
  timeout 60 "$BIN" chat -m "$M" -n 4 --ids <&- >"$T/c.out" 2>"$T/c.err" || rc=$?
  [ $rc -eq 0 ] && ! grep -q 'generated ids:' "$T/c.err" || fail "stdin closed: exit $rc, $(grep -ac 'generated ids:' "$T/c.err") turns" || return 1
  echo "full context: oldest turns dropped with a notice, system prompt kept, exit 0; a turn over the context: exit 1; <&-: no turns, exit 0"
}

item 7 "idle connections" item7
item 8 "disconnect cancels" item8
item 9 "input memory inside --mem" item9
item 10 "API key" item10
item 11 "protocol" item11
item 13 "chat" item13
exit $failed
