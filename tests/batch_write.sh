#!/bin/bash
# `moestream batch` write errors (issue 14, item 1): every failed write stops
# the run with the path and the cause and exit 1; the summary counts only
# records on disk; no torn record is left as a result; --resume finishes the
# job with every line answered once and the text of a clean run.
#  - -o /dev/full (ENOSPC on the first record)
#  - RLIMIT_FSIZE (`ulimit -f` in a subshell): the record that crosses the
#    limit is written in part, then EFBIG; the part is cut off again
#  - MOESTREAM_FAULT=write:3: the third record is written half, then EIO
#  - a torn last line left behind (a crash mid-record): --resume drops it
# No mount rights needed.
source "$(dirname "$0")/lib/batch.sh"
T=${MOESTREAM_TMP:-/tmp}/batch_write.$$; mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
N=10
make_input "$T/in.jsonl" $N
batch -i "$T/in.jsonl" -o "$T/ref.jsonl" 2>"$T/err" || { cat "$T/err"; exit 1; }
check "clean run: $N records" "records '$T/ref.jsonl' --lines 1-$N --errors '' >/dev/null"

# /dev/full
batch -i "$T/in.jsonl" -o /dev/full 2>"$T/err"; rc=$?
check "/dev/full: exit 1 (got $rc)" "[ $rc -eq 1 ]"
check "/dev/full: path and cause named" "grep -q 'cannot write /dev/full: No space left on device' '$T/err'"
check "/dev/full: nothing counted as done" "grep -q '^batch: 0 done, 0 errors' '$T/err'"

# RLIMIT_FSIZE: 4 KiB holds some records whole, then one in part
( ulimit -f 4; exec "$BIN" batch -m "$M" --temp 0 -i "$T/in.jsonl" -o "$T/fs.jsonl" ) 2>"$T/err"; rc=$?
check "RLIMIT_FSIZE: exit 1 (got $rc)" "[ $rc -eq 1 ]"
check "RLIMIT_FSIZE: path and cause named" "grep -q 'cannot write $T/fs.jsonl: File too large' '$T/err'"
size=$(stat -c %s "$T/fs.jsonl")
n=$(records "$T/fs.jsonl" --lines 1-$N --partial --ref "$T/ref.jsonl" | sed 's/records=//')
check "RLIMIT_FSIZE: whole records only ($n, $size bytes <= 4096)" "[ -n '$n' ] && [ '$n' -gt 0 ] && [ '$n' -lt $N ] && [ $size -le 4096 ]"
check "RLIMIT_FSIZE: the summary counts what is on disk ($n)" "grep -q '^batch: $n done, 0 errors' '$T/err'"
batch -i "$T/in.jsonl" -o "$T/fs.jsonl" --resume 2>"$T/err"; rc=$?
check "RLIMIT_FSIZE: --resume exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "RLIMIT_FSIZE: --resume ran only the rest" "grep -q '^batch: $((N - n)) done, 0 errors, $n skipped' '$T/err'"
check "RLIMIT_FSIZE: after resume every line once, clean text" "records '$T/fs.jsonl' --lines 1-$N --errors '' --ref '$T/ref.jsonl' >/dev/null"

# an injected torn write: the third record goes out half, then EIO
MOESTREAM_FAULT=write:3 batch -i "$T/in.jsonl" -o "$T/wf.jsonl" 2>"$T/err"; rc=$?
check "write fault: exit 1 (got $rc)" "[ $rc -eq 1 ]"
check "write fault: path and cause named" "grep -q 'cannot write $T/wf.jsonl: Input/output error' '$T/err'"
check "write fault: the torn record was cut off, 2 records remain" "[ \"\$(records '$T/wf.jsonl' --lines 1-2 --ref '$T/ref.jsonl')\" = records=2 ]"
check "write fault: the summary says 2 done" "grep -q '^batch: 2 done' '$T/err'"
# a crash mid-record leaves a torn line that nobody could cut off
head -c 150 <(sed -n 3p "$T/ref.jsonl") >> "$T/wf.jsonl"
check "torn line present before resume" "! records '$T/wf.jsonl' >/dev/null 2>&1"
batch -i "$T/in.jsonl" -o "$T/wf.jsonl" --resume 2>"$T/err"; rc=$?
check "write fault: --resume exits 0 (got $rc)" "[ $rc -eq 0 ]"
check "write fault: --resume says it dropped the torn line" "grep -q 'dropped a torn last line' '$T/err'"
check "write fault: after resume every line once, clean text" "records '$T/wf.jsonl' --lines 1-$N --errors '' --ref '$T/ref.jsonl' >/dev/null"
# a write fault on every record: nothing is counted, the file stays empty
MOESTREAM_FAULT=write:1 batch -i "$T/in.jsonl" -o "$T/w1.jsonl" 2>"$T/err"; rc=$?
check "write fault on the first record: exit 1, 0 done, empty file" \
  "[ $rc -eq 1 ] && grep -q '^batch: 0 done' '$T/err' && [ ! -s '$T/w1.jsonl' ]"
[ $fails -eq 0 ]
