#!/bin/bash
# `moestream chat --connect URL` against a running `moestream serve` (stdin
# a pipe): at temperature 0 the first reply equals the local `chat`'s (the
# server sends text as JSON, so invalid UTF-8 arrives as U+FFFD: the local
# text is compared after the same replacement); later turns send the whole
# conversation (the server logs growing prompts); /regen asks again; the API
# key from --api-key or MOESTREAM_API_KEY; a wrong key, an unreachable
# server and a bad URL exit 1 with one line; a conversation over the
# server's context loses its oldest turns with a notice instead of failing;
# on a terminal (tmux), Ctrl-C stops a reply and the server cancels it.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/chat_connect.$$
M="$G/models/tiny-ud-iq1_s.gguf"
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SRV=""
stop() { [ -n "$SRV" ] && { kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; }; SRV=""; }
trap 'stop; command tmux -L "mscc$$" kill-server 2>/dev/null; rm -rf "$T"' EXIT
start() {  # log args...
  local log=$1; shift
  P=$(free_port); U=http://127.0.0.1:$P
  "$BIN" serve -m "$M" --port "$P" "$@" 2>"$log" &
  SRV=$!
  for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && return 0; sleep 0.1; done
  echo "FAIL: server not up"; cat "$log"; exit 1
}
utf8_replace() { python3 -c "import sys;sys.stdout.write(sys.stdin.buffer.read().decode('utf-8','replace'))"; }

start "$T/log" --api-key sekret -c 512
printf 'hello\n' | "$BIN" chat -m "$M" -n 16 --temp 0 -c 512 2>/dev/null | utf8_replace >"$T/local"
printf 'hello\nWhat is 2+2?\n/regen\n' | "$BIN" chat --connect "$U/v1" --api-key sekret -n 16 --temp 0 \
  >"$T/remote" 2>"$T/remote.err"
rc=$?
check "chat --connect exits 0 (rc $rc)" "[ $rc -eq 0 ]"
check "turn 1 over HTTP equals the local chat at temperature 0" "[ -s '$T/local' ] && [ \"\$(head -1 '$T/remote')\" = \"\$(head -1 '$T/local')\" ]"
chats() { grep -c 'POST /v1/chat/completions 200' "$T/log"; }
check "three replies were asked (2 turns and /regen)" "[ \$(chats) = 3 ]"
prompts=$(sed -n 's|.*POST /v1/chat/completions 200 prompt=\([0-9]*\).*|\1|p' "$T/log" | paste -sd' ')
check "turn 2 sends the conversation, /regen the same prompt again ($prompts)" \
  "(set -- $prompts; [ \$2 -gt \$1 ] && [ \$3 = \$2 ])"
check "/regen with --temp 0 repeats the reply" "[ \"\$(sed -n 2p '$T/remote')\" = \"\$(sed -n 3p '$T/remote')\" ]"
check "the model was listed first (key checked before the first message)" "grep -m1 ' /v1/' '$T/log' | grep -q 'GET /v1/models 200'"
printf 'hello\n' | MOESTREAM_API_KEY=sekret "$BIN" chat --connect "$U" -n 4 >/dev/null 2>"$T/e"
check "the key from MOESTREAM_API_KEY" "[ $? -eq 0 ]"
printf 'hello\n' | "$BIN" chat --connect "$U" --api-key wrong -n 4 >/dev/null 2>"$T/e"
rc=$?
check "a wrong key: exit 1, one line naming the 401" "[ $rc -eq 1 ] && [ \$(wc -l <'$T/e') = 1 ] && grep -q 401 '$T/e'"
stop
printf 'hello\n' | "$BIN" chat --connect "$U" -n 4 >/dev/null 2>"$T/e"
rc=$?
check "an unreachable server: exit 1, one line" "[ $rc -eq 1 ] && [ \$(wc -l <'$T/e') = 1 ] && grep -qi connect '$T/e'"
"$BIN" chat --connect "ftp://x" </dev/null >/dev/null 2>"$T/e"
check "a URL that is not http(s): exit 1 with a message" "[ $? -eq 1 ] && grep -q 'http://' '$T/e'"
"$BIN" chat --connect "$U" --ids </dev/null >/dev/null 2>"$T/e"
check "--ids with --connect is refused (exit 2)" "[ $? -eq 2 ]"

# a small server context: the oldest turns are dropped, the chat goes on
start "$T/log2" -c 96
for i in 1 2 3 4 5 6; do echo "Tell me about topic number $i in detail please"; done |
  "$BIN" chat --connect "$U" -n 24 --temp 0 >/dev/null 2>"$T/e"
rc=$?
check "over the server's context: every turn answered (rc $rc), oldest turns dropped with a notice" \
  "[ $rc -eq 0 ] && grep -q 'context full: dropped' '$T/e' && [ \$(grep -c 'POST /v1/chat/completions 200' '$T/log2') = 6 ]"
stop

# Ctrl-C on a terminal stops the reply: the connection closes and the server
# cancels the generation (its log line says incomplete)
if command -v tmux >/dev/null 2>&1; then
  start "$T/log3" -c 8192
  S=mscc$$
  tmux() { command tmux -L "mscc$$" "$@"; } # its own server (see chat_pty.sh)
  HOME="$T" tmux new-session -d -s $S -x 150 -y 40 "$BIN chat --connect $U -n 100000 --temp 0; echo EXIT=\$?; sleep 30"
  wait_pane() { for _ in $(seq 1 $(( $2 * 10 ))); do tmux capture-pane -p -S - -t $S | grep -q -- "$1" && return 0; sleep 0.1; done; return 1; }
  wait_pane '^>' 30
  tmux send-keys -t $S "tell me everything" Enter
  wait_pane "tell me everything" 10; sleep 1.5
  tmux send-keys -t $S C-c
  check "Ctrl-C stops a remote reply and the prompt comes back" "wait_pane 'stopped' 20"
  for _ in $(seq 1 50); do grep -q 'POST /v1/chat/completions .*incomplete' "$T/log3" && break; sleep 0.1; done
  check "the server saw the client leave and cancelled (log: incomplete)" "grep -q 'POST /v1/chat/completions 200 .*incomplete' '$T/log3'"
  tmux send-keys -t $S C-d
  check "Ctrl-D leaves the remote chat with status 0" "wait_pane 'EXIT=0' 10"
  tmux kill-session -t $S 2>/dev/null
  stop
else
  echo "skip (part): tmux not installed, the terminal checks did not run"
fi
[ $fails -eq 0 ]
