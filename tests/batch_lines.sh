#!/bin/bash
# `moestream batch` input lines and resuming (issue 14, item 5):
#  - a whitespace-only line, a JSON array line, invalid JSON and a duplicate
#    custom_id become error records; an empty line is skipped; plain text
#    (even starting with '[') is a prompt;
#  - every record carries "line"; --resume keys on it: run again and again,
#    no line is ever answered twice, also when the records are out of order
#    (as parallel batching will write them) and some are missing;
#  - a record whose custom_id no longer matches its input line (the input
#    changed) stops --resume;
#  - SIGTERM mid-reply: exit 143, only whole records, --resume finishes;
#    SIGINT while waiting on a pipe: exit 130 at once;
#  - a second run on an OUT that a run is writing is refused.
source "$(dirname "$0")/lib/batch.sh"
T=${MOESTREAM_TMP:-/tmp}/batch_lines.$$; mkdir -p "$T"; trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
pid=
# waits for pid at most $2 seconds, then kills it (status 137): a batch that
# ignores the signal fails the check instead of hanging the suite
wait_max() { for _ in $(seq 1 $(( $2 * 20 ))); do kill -0 $1 2>/dev/null || break; sleep 0.05; done
             kill -9 $1 2>/dev/null; wait $1; }
python3 - "$T/in.jsonl" <<'PY'
import json, sys
def req(cid, text):
    return json.dumps({"custom_id": cid, "body": {"messages": [{"role": "user", "content": text}],
                                                  "max_tokens": 6, "temperature": 0}})
lines = [req("req-0", "question 0"),          # 1 answer
         "   \t  ",                            # 2 blank: error
         '[{"custom_id": "arr"}]',             # 3 JSON array: error
         req("req-1", "question 1"),           # 4 answer
         req("req-0", "another question"),     # 5 duplicate custom_id: error
         "{not json",                          # 6 error
         "plain text prompt",                  # 7 answer (custom_id line-7)
         "",                                   # 8 empty: skipped, no record
         req("req-2", "question 2"),           # 9 answer
         "[INST] a prompt that starts with a bracket"]  # 10 answer
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
LINES=1-7,9-10; ERRS=2,3,5,6
batch -i "$T/in.jsonl" -o "$T/out.jsonl" 2>"$T/err"; rc=$?
check "bad lines: exit 0 (got $rc)" "[ $rc -eq 0 ]"
check "records for lines $LINES, error records for $ERRS, every record has 'line'" \
  "records '$T/out.jsonl' --lines $LINES --errors $ERRS >/dev/null"
check "summary: 5 done, 4 errors" "grep -q '^batch: 5 done, 4 errors, 0 skipped' '$T/err'"
msg() { python3 -c "import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['line'] == int(sys.argv[2]): print(r['custom_id'], r['error']['code'], r['error']['message'])" "$T/out.jsonl" "$1"; }
check "blank line: its error says so" "msg 2 | grep -q 'blank'"
check "JSON array line: its error says so" "msg 3 | grep -q 'JSON array'"
check "duplicate custom_id: error naming the first line" "msg 5 | grep -q '^req-0 duplicate_custom_id .*first on line 1'"
cp "$T/out.jsonl" "$T/ref.jsonl"

# resume, twice: nothing new, nothing duplicated
for k in 1 2; do
  batch -i "$T/in.jsonl" -o "$T/out.jsonl" --resume 2>"$T/err"; rc=$?
  check "resume $k of a finished job: 0 done, 9 skipped, unchanged" \
    "[ $rc -eq 0 ] && grep -q '^batch: 0 done, 0 errors, 9 skipped' '$T/err' && cmp -s '$T/out.jsonl' '$T/ref.jsonl'"
done
# records out of order, three missing (an answer, an error, an answer)
python3 - "$T/ref.jsonl" "$T/ooo.jsonl" <<'PY'
import json, sys, random
recs = [l for l in open(sys.argv[1]) if json.loads(l)["line"] not in (4, 5, 9)]
random.Random(7).shuffle(recs)
open(sys.argv[2], "w").writelines(recs)
PY
batch -i "$T/in.jsonl" -o "$T/ooo.jsonl" --resume 2>"$T/err"; rc=$?
check "out of order with gaps: resume runs only lines 4, 5, 9" \
  "[ $rc -eq 0 ] && grep -q '^batch: 2 done, 1 errors, 6 skipped' '$T/err'"
check "out of order: every line once, the text of the first run" \
  "records '$T/ooo.jsonl' --lines $LINES --errors $ERRS --ref '$T/ref.jsonl' >/dev/null"
# the input changed under the output
sed 's/"req-1"/"req-one"/' "$T/in.jsonl" > "$T/in2.jsonl"
cp "$T/ref.jsonl" "$T/chg.jsonl"
batch -i "$T/in2.jsonl" -o "$T/chg.jsonl" --resume 2>"$T/err"; rc=$?
check "changed input: resume refused (exit 1), output intact" \
  "[ $rc -eq 1 ] && grep -q 'line 4 with custom_id req-1, but line 4 of .* has req-one' '$T/err' && cmp -s '$T/chg.jsonl' '$T/ref.jsonl'"

# SIGTERM mid-reply: 8 requests of 48 tokens
python3 - "$T/long.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(8):
        f.write(json.dumps({"custom_id": f"long-{i}", "body": {"messages": [{"role": "user", "content": f"tell me {i}"}],
                                                                "max_tokens": 48, "temperature": 0}}) + "\n")
PY
"$BIN" batch -m "$M" --temp 0 -i "$T/long.jsonl" -o "$T/term.jsonl" 2>"$T/err" & pid=$!
for _ in $(seq 1 600); do [ -s "$T/term.jsonl" ] && break; sleep 0.05; done
batch -i "$T/long.jsonl" -o "$T/term.jsonl" --resume 2>"$T/err2"; rc=$?
check "a second run on the same OUT meanwhile: refused (exit $rc)" "[ $rc -eq 1 ] && grep -q 'in use by another batch run' '$T/err2'"
kill -TERM $pid; t0=$(date +%s%N); wait_max $pid 30; rc=$?; pid=
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
n=$(records "$T/term.jsonl" --lines 1-8 --partial --errors '' | sed 's/records=//')
check "SIGTERM: exit 143 (got $rc) within 20 s (${ms} ms)" "[ $rc -eq 143 ] && [ $ms -lt 20000 ]"
check "SIGTERM: whole answers only ($n of 8), said so" \
  "[ -n '$n' ] && [ '$n' -ge 1 ] && [ '$n' -lt 8 ] && grep -q 'stopped by SIGTERM' '$T/err' && grep -q '^batch: $n done' '$T/err'"
batch -i "$T/long.jsonl" -o "$T/term.jsonl" --resume 2>"$T/err"; rc=$?
check "SIGTERM: --resume finishes, every line once" \
  "[ $rc -eq 0 ] && records '$T/term.jsonl' --lines 1-8 --errors '' >/dev/null"

# SIGINT while the input pipe is idle
mkfifo "$T/fifo"
"$BIN" batch -m "$M" --temp 0 -i "$T/fifo" -o "$T/int.jsonl" 2>"$T/err" & pid=$!
exec 3>"$T/fifo"
head -1 "$T/long.jsonl" >&3
for _ in $(seq 1 600); do [ -s "$T/int.jsonl" ] && break; sleep 0.05; done
sleep 0.2
kill -INT $pid; t0=$(date +%s%N); wait_max $pid 30; rc=$?; pid=
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
exec 3>&-
check "SIGINT on an idle pipe: exit 130 (got $rc) within 20 s (${ms} ms), 1 record" \
  "[ $rc -eq 130 ] && [ $ms -lt 20000 ] && records '$T/int.jsonl' --lines 1 >/dev/null"
[ $fails -eq 0 ]
