#!/bin/bash
# Replays issue 14's batch and front-end items (1-6, 12, 14) end to end, the
# repro of each as the issue gives it, one line per item:
#   item N (what): ok | FAIL (why)
# Exits non-zero when any item fails.  The thorough tests are
# batch_write.sh (1), batch_input.sh (2, 3, 4, 6), batch_lines.sh (5),
# model_fifo.sh (12), oom_frontends.sh and test_strbuf (14).
source "$(dirname "$0")/lib/batch.sh"
T=${MOESTREAM_TMP:-/tmp}/safety_batch.$$; mkdir -p "$T"; pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$T"' EXIT
make_input "$T/in.jsonl" 3 4
batch -i "$T/in.jsonl" -o "$T/ref.jsonl" 2>/dev/null
why=
need() { eval "$2" || { why="${why:+$why; }$1"; return 1; }; }
item() {  # number, title, function
  why=
  if "$3" && [ -z "$why" ]; then echo "item $1 ($2): ok"; else echo "item $1 ($2): FAIL ($why)"; fails=$((fails+1)); fi
}
full_run() { records "$1" --lines 1-3 --errors '' --ref "$T/ref.jsonl" >/dev/null 2>&1; }

i1() {
  batch -i "$T/in.jsonl" -o /dev/full 2>"$T/e"; local rc=$?
  need "/dev/full exits $rc" "[ $rc -eq 1 ] && grep -q 'No space left on device' '$T/e'"
  ( ulimit -f 1; exec "$BIN" batch -m "$M" --temp 0 -i "$T/in.jsonl" -o "$T/f.jsonl" ) 2>"$T/e"; rc=$?
  need "ulimit -f exits $rc" "[ $rc -eq 1 ] && grep -q 'File too large' '$T/e'"
  need "ulimit -f leaves a torn record" "records '$T/f.jsonl' --lines 1-3 --partial >/dev/null 2>&1"
  batch -i "$T/in.jsonl" -o "$T/f.jsonl" --resume 2>/dev/null
  need "resume after ulimit -f" "full_run '$T/f.jsonl'"
  MOESTREAM_FAULT=write:2 batch -i "$T/in.jsonl" -o "$T/w.jsonl" 2>"$T/e"; rc=$?
  need "write fault exits $rc" "[ $rc -eq 1 ] && grep -q '^batch: 1 done' '$T/e'"
  batch -i "$T/in.jsonl" -o "$T/w.jsonl" --resume 2>/dev/null
  need "resume after a write fault" "full_run '$T/w.jsonl'"
}
i2() {
  cat "$T/in.jsonl" | batch -i /dev/stdin -o "$T/p1.jsonl" 2>/dev/null
  need "-i /dev/stdin from a pipe" "full_run '$T/p1.jsonl'"
  cat "$T/in.jsonl" | batch -i - -o "$T/p2.jsonl" 2>/dev/null
  need "-i -" "full_run '$T/p2.jsonl'"
  batch -i <(cat "$T/in.jsonl") -o "$T/p3.jsonl" 2>/dev/null
  need "-i <(...)" "full_run '$T/p3.jsonl'"
}
i3() {
  cp "$T/in.jsonl" "$T/a.jsonl"
  batch -i "$T/a.jsonl" -o "$T/a.jsonl" 2>/dev/null; local rc=$?
  need "same file exits $rc" "[ $rc -eq 1 ]"
  need "input destroyed" "cmp -s '$T/a.jsonl' '$T/in.jsonl'"
}
i4() {
  cp "$T/ref.jsonl" "$T/o.jsonl"
  batch -i "$T/in.jsonl" -o "$T/o.jsonl" 2>/dev/null; local rc=$?
  need "existing output: exit $rc" "[ $rc -eq 1 ] && cmp -s '$T/o.jsonl' '$T/ref.jsonl'"
  batch -i "$T/in.jsonl" -o "$T/o.jsonl" --overwrite 2>/dev/null
  need "--overwrite" "full_run '$T/o.jsonl'"
}
i5() {
  { head -1 "$T/in.jsonl"; printf '  \t \n[1, 2]\n'; head -1 "$T/in.jsonl"; } > "$T/bad.jsonl"
  batch -i "$T/bad.jsonl" -o "$T/b.jsonl" 2>/dev/null
  need "error records for lines 2-4" "records '$T/b.jsonl' --lines 1-4 --errors 2-4 >/dev/null 2>&1"
  batch -i "$T/bad.jsonl" -o "$T/b.jsonl" --resume 2>"$T/e"
  need "resume duplicated records" "grep -q '^batch: 0 done, 0 errors, 4 skipped' '$T/e' && [ \$(wc -l < '$T/b.jsonl') -eq 4 ]"
  mkfifo "$T/fifo"
  "$BIN" batch -m "$M" --temp 0 -i "$T/fifo" -o "$T/s.jsonl" 2>/dev/null & pid=$!
  exec 3>"$T/fifo"; head -1 "$T/in.jsonl" >&3
  for _ in $(seq 1 600); do [ -s "$T/s.jsonl" ] && break; sleep 0.05; done
  kill -TERM $pid
  for _ in $(seq 1 400); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
  kill -9 $pid 2>/dev/null; wait $pid; local rc=$?; pid=; exec 3>&-
  need "SIGTERM exits $rc" "[ $rc -eq 143 ]"
}
i6() {
  mkdir -p "$T/dir"
  batch -i "$T/dir" -o "$T/d.jsonl" 2>/dev/null; local rc=$?
  need "directory input exits $rc" "[ $rc -eq 1 ]"
}
i12() {
  mkfifo "$T/model.gguf"
  timeout 10 "$BIN" run -m "$T/model.gguf" -p hi >/dev/null 2>"$T/e"; local rc=$?
  need "FIFO model: exit $rc" "[ $rc -eq 1 ] && grep -q 'FIFO' '$T/e'"
}
i14() {
  MOESTREAM_FAULT=alloc:1:1 batch -i "$T/in.jsonl" -o "$T/m.jsonl" 2>/dev/null
  need "out of memory not reported" "head -1 '$T/m.jsonl' | grep -q 'out of memory while generating'"
  need "after out of memory" "records '$T/m.jsonl' --lines 1-3 --errors 1 >/dev/null 2>&1"
}
item 1 "write errors" i1
item 2 "input from a pipe" i2
item 3 "same input and output" i3
item 4 "existing output kept" i4
item 5 "bad lines, resume by line, signals" i5
item 6 "directory as input" i6
item 12 "FIFO as model" i12
item 14 "out of memory in the front ends" i14
[ $fails -eq 0 ]
