#!/bin/bash
# `moestream batch` input and output files (issue 14, items 2, 3, 4, 6):
#  2. input from a pipe is read in one pass: `-i -` (stdin), `-i /dev/stdin`,
#     `-i <(...)` and a named FIFO give the records of a clean run, exit 0;
#  3. the same file as input and output (same name, a hard link, a symlink)
#     is refused and the input left intact;
#  4. an existing non-empty output is refused (and left intact) unless
#     --resume or --overwrite; the two together are a usage error;
#  6. a directory as input is an error, not "0 done".
source "$(dirname "$0")/lib/batch.sh"
T=${MOESTREAM_TMP:-/tmp}/batch_input.$$; mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
N=4
make_input "$T/in.jsonl" $N
batch -i "$T/in.jsonl" -o "$T/ref.jsonl" 2>"$T/err" || { cat "$T/err"; exit 1; }
same() { records "$1" --lines 1-$N --errors '' --ref "$T/ref.jsonl" >/dev/null; }

# 2. pipes
cat "$T/in.jsonl" | batch -i - -o "$T/p1.jsonl" 2>"$T/err"; rc=$?
check "-i - from a pipe: exit 0, $N records as a clean run" "[ $rc -eq 0 ] && same '$T/p1.jsonl'"
cat "$T/in.jsonl" | batch -i /dev/stdin -o "$T/p2.jsonl" 2>"$T/err"; rc=$?
check "-i /dev/stdin from a pipe: exit 0, $N records" "[ $rc -eq 0 ] && same '$T/p2.jsonl'"
batch -i <(cat "$T/in.jsonl") -o "$T/p3.jsonl" 2>"$T/err"; rc=$?
check "-i <(...): exit 0, $N records" "[ $rc -eq 0 ] && same '$T/p3.jsonl'"
batch -i - -o "$T/p4.jsonl" < "$T/in.jsonl" 2>"$T/err"; rc=$?
check "-i - from a file on stdin: exit 0, $N records" "[ $rc -eq 0 ] && same '$T/p4.jsonl'"
mkfifo "$T/fifo"
( cat "$T/in.jsonl" > "$T/fifo" ) &
batch -i "$T/fifo" -o "$T/p5.jsonl" 2>"$T/err"; rc=$?
wait
check "-i FIFO: exit 0, $N records" "[ $rc -eq 0 ] && same '$T/p5.jsonl'"
# resume over a pipe: the done lines are skipped, the rest answered
head -2 "$T/p1.jsonl" > "$T/p6.jsonl"
cat "$T/in.jsonl" | batch -i - -o "$T/p6.jsonl" --resume 2>"$T/err"; rc=$?
check "--resume with -i -: exit 0, 2 run, 2 skipped" \
  "[ $rc -eq 0 ] && grep -q '^batch: 2 done, 0 errors, 2 skipped' '$T/err' && same '$T/p6.jsonl'"

# 3. same file in and out
cp "$T/in.jsonl" "$T/a.jsonl"
batch -i "$T/a.jsonl" -o "$T/a.jsonl" 2>"$T/err"; rc=$?
check "same file: refused, exit 1 (got $rc)" "[ $rc -eq 1 ] && grep -q 'are the same file' '$T/err'"
check "same file: input intact" "cmp -s '$T/a.jsonl' '$T/in.jsonl'"
ln "$T/a.jsonl" "$T/hard.jsonl"; ln -s "$T/a.jsonl" "$T/sym.jsonl"
for o in hard sym; do
  for flag in "" --overwrite --resume; do
    batch -i "$T/a.jsonl" -o "$T/$o.jsonl" $flag 2>"$T/err"; rc=$?
    check "same file via a ${o} link ${flag:-(no flag)}: refused, input intact" \
      "[ $rc -eq 1 ] && grep -q 'are the same file' '$T/err' && cmp -s '$T/a.jsonl' '$T/in.jsonl'"
  done
done

# 4. existing output
cp "$T/ref.jsonl" "$T/old.jsonl"; printf 'not a record\n' >> "$T/old.jsonl"; cp "$T/old.jsonl" "$T/keep"
batch -i "$T/in.jsonl" -o "$T/old.jsonl" 2>"$T/err"; rc=$?
check "non-empty output without a flag: refused, exit 1" "[ $rc -eq 1 ] && grep -q 'is not empty' '$T/err'"
check "non-empty output: left intact" "cmp -s '$T/old.jsonl' '$T/keep'"
batch -i "$T/in.jsonl" -o "$T/old.jsonl" --resume --overwrite 2>"$T/err"; rc=$?
check "--resume with --overwrite: usage error 2" "[ $rc -eq 2 ] && cmp -s '$T/old.jsonl' '$T/keep'"
batch -i "$T/in.jsonl" -o "$T/old.jsonl" --resume 2>"$T/err"; rc=$?
check "--resume over a line that is not a record: refused, intact" \
  "[ $rc -eq 1 ] && grep -q 'line $((N + 1)) is not a batch result record' '$T/err' && cmp -s '$T/old.jsonl' '$T/keep'"
batch -i "$T/in.jsonl" -o "$T/old.jsonl" --overwrite 2>"$T/err"; rc=$?
check "--overwrite: replaced by a clean run" "[ $rc -eq 0 ] && same '$T/old.jsonl'"
: > "$T/empty.jsonl"
batch -i "$T/in.jsonl" -o "$T/empty.jsonl" 2>"$T/err"; rc=$?
check "an existing empty output is used without a flag" "[ $rc -eq 0 ] && same '$T/empty.jsonl'"
batch -i "$T/in.jsonl" -o "$T/empty.jsonl" --resume 2>"$T/err"; rc=$?
check "--resume of a finished job: all skipped, unchanged" \
  "[ $rc -eq 0 ] && grep -q '^batch: 0 done, 0 errors, $N skipped' '$T/err' && same '$T/empty.jsonl'"

# 6. a directory as input
mkdir "$T/dir"
batch -i "$T/dir" -o "$T/d.jsonl" 2>"$T/err"; rc=$?
check "directory input: exit 1, said so" "[ $rc -eq 1 ] && grep -q 'a directory' '$T/err'"
batch -i /dev/null -o "$T/n.jsonl" 2>"$T/err"; rc=$?
check "/dev/null input (a character device, no lines): exit 0, 0 done" "[ $rc -eq 0 ] && grep -q '^batch: 0 done' '$T/err'"
[ $fails -eq 0 ]
