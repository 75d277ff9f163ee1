#!/bin/bash
# A model path that is not a regular file (issue 14, item 12): a FIFO used
# to hang every command in open() waiting for a writer.  Every command that
# opens -m must refuse it at once (well within 10 s), naming the file and
# its type; a directory and a character device likewise.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/model_fifo.$$
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
mkfifo "$T/model.gguf"
printf 'hello\n' > "$T/in.jsonl"
PORT=$(( 20000 + ($$ + 4001) % 20000 ))
refuses() {  # what (FIFO|directory|character device), path, command words...
  local what=$1 path=$2; shift 2
  timeout 10 "$BIN" "$@" -m "$path" </dev/null >/dev/null 2>"$T/err"; local rc=$?
  check "$1 -m $what: refused, not hung (rc $rc)" \
    "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q '$path: is a $what' '$T/err'"
}
for cmd in "run -p hi" "chat" "eval --tokens 1" "inspect" "tokenize" \
           "batch -i $T/in.jsonl -o $T/out.jsonl" "serve --port $PORT"; do
  refuses "FIFO" "$T/model.gguf" $cmd
done
refuses "directory" "$T" inspect
refuses "directory" "$T" run -p hi
refuses "character device" /dev/zero inspect
# the same model as a regular file still loads
timeout 60 "$BIN" inspect -m "$G/models/tiny-ud-iq1_s.gguf" >/dev/null 2>&1
check "a regular model file still opens" "[ $? -eq 0 ]"
[ $fails -eq 0 ]
