#!/bin/bash
# `moestream chat` driven through a real terminal (tmux): a turn, /help and
# /?, Ctrl-C at the prompt (clears the line; at an empty prompt one Ctrl-C
# only warns, a second exits 130; Ctrl-D exits 0), Ctrl-C during a long
# reply, the live status line on the bottom row while generating (gone
# afterwards; none with --no-status), /regen with a new seed each time
# unless --seed pins it (then the same reply), /exit (status 0); at --temp
# 0 with --ids, a turn's ids equal `eval --greedy` on its rendered prompt
# (also the second turn, which reuses the cached prefix, and /regen), and
# the first turn's ids equal `run --temp 0`'s.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool tmux
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}
S=mschat$$; fails=0
# a tmux server of its own: another test's kill-server (or a parallel run)
# must not take these sessions down
tmux() { command tmux -L "mschat$$" "$@"; }
trap 'command tmux -L "mschat$$" kill-server 2>/dev/null' EXIT
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
tmux send-keys -t $S "/help" Enter
check "/help lists the commands" "wait_for '/regen  *a new reply' 10 && wait_for '/save FILE' 5"
tmux send-keys -t $S "/?" Enter
check "/? lists them too" "count_at_least '/regen  *a new reply' 2 10"
tmux send-keys -t $S "hello"
wait_for "> hello" 5
tmux send-keys -t $S C-c
sleep 0.5
tmux send-keys -t $S Enter
sleep 1
check "Ctrl-C clears a typed line (no reply to it, no exit warning)" \
  "[ \$(tmux capture-pane -p -S - -t $S | grep -c 'tok/s') = 0 ] && ! tmux capture-pane -p -S - -t $S | grep -q 'Ctrl-C again'"
tmux send-keys -t $S C-c
check "Ctrl-C at an empty prompt warns and stays" "wait_for 'Ctrl-C again or Ctrl-D to exit' 5 && ! tmux capture-pane -p -S - -t $S | grep -q EXIT="
tmux send-keys -t $S "hello" Enter
check "after the warning a turn completes with a speed line and its seed" "wait_for 'tok/s, seed [0-9]' 30"
seed_of() { tmux capture-pane -p -S - -t $S | sed -n 's/.*tok\/s, seed \([0-9]*\).*/\1/p' | sed -n "${1}p"; }
tmux send-keys -t $S "/regen" Enter
check "/regen answers again" "count_at_least 'tok/s, seed' 2 30"
check "/regen samples with a new seed ($(seed_of 1) then $(seed_of 2))" "[ -n '$(seed_of 2)' ] && [ '$(seed_of 1)' != '$(seed_of 2)' ]"
tmux send-keys -t $S "/exit" Enter
check "/exit leaves with status 0" "wait_for 'EXIT=0' 10"
# --seed pins /regen: the same seed and the same reply
run_session -n 24 --seed 7 --temp 1.5
tmux send-keys -t $S "hello" Enter
wait_for 'tok/s, seed' 30
tmux send-keys -t $S "/regen" Enter
count_at_least 'tok/s, seed' 2 30
replies=$(tmux capture-pane -p -S - -t $S | awk '/^>/{if ($0 ~ /hello|regen/) r++; next} /tok\/s/{next} r{t[r]=t[r] $0} END{print (t[1]==t[2] && t[1]!="") ? "same" : "differ"}')
check "--seed 7: /regen gives the same seed and reply" "[ '$(seed_of 1)' = 7 ] && [ '$(seed_of 2)' = 7 ] && [ '$replies' = same ]"
tmux send-keys -t $S C-d
check "Ctrl-D at the prompt exits 0" "wait_for 'EXIT=0' 10"
# a long reply, stopped with Ctrl-C, then the prompt is back
run_session -n 100000 -c 8192 --temp 0  # greedy: about 1300 tokens (3 s) before its end-of-text
tmux send-keys -t $S "tell me everything" Enter
wait_for "tell me everything" 10; sleep 1
check "a live status line on the bottom row while generating" \
  "tmux capture-pane -p -t $S | tail -1 | grep -q '[0-9] tokens | [0-9.]* tok/s | expert cache hit .* | RSS [0-9.]* GiB'"
tmux send-keys -t $S C-c
check "Ctrl-C stops the reply and returns to the prompt" "wait_for 'stopped' 20"
sleep 0.5
check "the status line is gone after the reply" "! tmux capture-pane -p -S - -t $S | grep -q 'expert cache hit'"
tmux send-keys -t $S C-c
check "one Ctrl-C at the prompt after a reply does not exit" "wait_for 'Ctrl-C again' 5 && ! tmux capture-pane -p -S - -t $S | grep -q EXIT="
tmux send-keys -t $S C-c
check "a second Ctrl-C at the prompt exits 130" "wait_for 'EXIT=130' 10"
run_session -n 100000 -c 8192 --temp 0 --no-status
tmux send-keys -t $S "tell me everything" Enter
wait_for "tell me everything" 10; sleep 1
check "--no-status: no status line" "! tmux capture-pane -p -t $S | grep -q 'expert cache hit'"
tmux send-keys -t $S C-c
wait_for 'stopped' 20

# temperature 0, ids on stderr (a file): each turn equals eval --greedy
M=$G/models/tiny-ud-iq1_s.gguf; E=$T/chat_ids.$$
file_count_at_least() { # pattern n seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    [ "$(grep -ao -- "$1" "$E" 2>/dev/null | wc -l)" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
tmux kill-session -t $S 2>/dev/null
HOME="$T" tmux new-session -d -s $S -x 200 -y 50 \
  "$BIN chat -m $M -n 16 --temp 0 --ids 2>$E; echo EXIT=\$?; sleep 30"
wait_for "^>" 30
tmux send-keys -t $S "hello" Enter
file_count_at_least 'tok/s' 1 30
tmux send-keys -t $S "What is 2+2?" Enter
file_count_at_least 'tok/s' 2 30
tmux send-keys -t $S "/regen" Enter
file_count_at_least 'tok/s' 3 30
tmux send-keys -t $S "/exit" Enter
check "--ids session exits 0" "wait_for 'EXIT=0' 10"
prompt_of() { grep -ao 'prompt ids:[0-9 ]*' "$E" | sed -n "${1}p" | sed 's/prompt ids: *//'; }
gen_of() { grep -ao 'generated ids:[][0-9]*' "$E" | sed -n "${1}p" | grep -o '[0-9]*' | paste -sd, -; }
greedy() { "$BIN" eval -m "$M" --tokens "$1" --greedy 16 2>/dev/null | sed 's/.*\[\(.*\)\].*/\1/'; }
"$BIN" run -m "$M" -p hello -n 16 --temp 0 --ids >/dev/null 2>"$T/run_ids.$$"
run_prompt=$(sed -n 's/^prompt ids: //p' "$T/run_ids.$$")
run_gen=$(grep -o '\[[0-9]*\]' "$T/run_ids.$$" | tr -d '[]' | paste -sd, -)
check "turn 1: same rendered prompt as run" "[ -n '$run_prompt' ] && [ '$(prompt_of 1)' = '$run_prompt' ]"
check "turn 1: ids equal run --temp 0 ($run_gen)" "[ -n '$run_gen' ] && [ '$(gen_of 1)' = '$run_gen' ]"
check "turn 1: ids equal eval --greedy" "[ '$(gen_of 1)' = '$(greedy "$(prompt_of 1)")' ]"
check "turn 2 (cached prefix reused): ids equal eval --greedy on its whole prompt" \
  "[ -n '$(gen_of 2)' ] && [ '$(gen_of 2)' = '$(greedy "$(prompt_of 2)")' ]"
check "/regen: same prompt, same ids as turn 2" \
  "[ '$(prompt_of 3)' = '$(prompt_of 2)' ] && [ '$(gen_of 3)' = '$(gen_of 2)' ]"
rm -f "$E" "$T/run_ids.$$"
tmux kill-session -t $S 2>/dev/null
[ $fails -eq 0 ]
