#!/bin/bash
# `moestream chat` driven through a real terminal (tmux): a turn, Ctrl-C
# during a long reply, /regen, /exit (status 0), Ctrl-C at the prompt (130).
set -u
BIN=${MOESTREAM_BIN:?}; G=${MOESTREAM_GOLDEN:?}; T=${MOESTREAM_TMP:-/tmp}
command -v tmux >/dev/null || { echo "FAIL: tmux missing (make deps installs it)"; exit 1; }
S=mschat$$; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
wait_for() { # pattern seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do
    tmux capture-pane -p -S - -t $S 2>/dev/null | grep -q -- "$1" && return 0; sleep 0.1; done; return 1; }
run_session() { # extra args
  tmux kill-session -t $S 2>/dev/null
  HOME="$T" tmux new-session -d -s $S -x 200 -y 50 \
    "$BIN chat -m $G/models/tiny-ud-iq1_s.gguf $*; echo EXIT=\$?; sleep 30"
  wait_for "^>" 30
}
count_at_least() { # pattern n seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    [ "$(tmux capture-pane -p -S - -t $S | grep -c -- "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
run_session -n 64
check "prompt appears" "tmux capture-pane -p -S - -t $S | grep -q '^>'"
tmux send-keys -t $S "hello" Enter
check "a turn completes with a speed line" "wait_for 'tok/s' 30"
tmux send-keys -t $S "/regen" Enter
check "/regen answers again" "count_at_least 'tok/s' 2 30"
tmux send-keys -t $S "/exit" Enter
check "/exit leaves with status 0" "wait_for 'EXIT=0' 10"
# a long reply, stopped with Ctrl-C, then the prompt is back
run_session -n 100000 -c 8192 --temp 0  # greedy: about 1300 tokens (3 s) before its end-of-text
tmux send-keys -t $S "tell me everything" Enter
wait_for "tell me everything" 10; sleep 1
tmux send-keys -t $S C-c
check "Ctrl-C stops the reply and returns to the prompt" "wait_for 'stopped' 20"
tmux send-keys -t $S C-c
check "Ctrl-C at the prompt exits 130" "wait_for 'EXIT=130' 10"
tmux kill-session -t $S 2>/dev/null
[ $fails -eq 0 ]
