#!/bin/bash
# `moestream tokenize` as a user runs it: stdin read verbatim (a final
# newline included), {"ids":[...]} on stdout, BOS unless --no-bos, special
# tokens parsed; ids equal the reference's for dev.json cases (some of which
# end in newlines); usage errors exit 2, a missing model exits 1.
set -u
BIN=${MOESTREAM_BIN:?MOESTREAM_BIN not set}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
V="$G/models/deepseek-r1-vocab.gguf"
[ -f "$V" ] || { echo "FAIL: golden vocabulary $V missing"; exit 1; }
[ -f "$G/tokenizer/dev.json" ] || { echo "FAIL: $G/tokenizer/dev.json missing"; exit 1; }
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }

python3 - "$BIN" "$V" "$G/tokenizer/dev.json" <<'PY' || fails=$((fails + 1))
import json, subprocess, sys
binp, vocab, dev = sys.argv[1:4]
cases = json.load(open(dev))
# cases with trailing newlines, CRLF, leading spaces, special tokens, CJK, emoji
pick = [c for c in cases if c["text"].endswith("\n") or "\r" in c["text"] or "<" in c["text"]
        or c["text"].startswith(" ") or "😀" in c["text"]][:12]
bad = 0
for c in pick:
    data = c["text"].encode()
    for bos in (False, True):
        args = [binp, "tokenize", "-m", vocab] + ([] if bos else ["--no-bos"])
        r = subprocess.run(args, input=data, capture_output=True)
        want = ([0] if bos else []) + c["ids"]
        try:
            got = json.loads(r.stdout)["ids"]
        except Exception:
            got = None
        if r.returncode != 0 or got != want or r.stdout.count(b"\n") != 1:
            bad += 1
            print("FAIL: tokenize %r (bos=%s): rc %d, got %s, want %s" % (c["text"][:40], bos, r.returncode, got, want))
print("%s: tokenize CLI on %d dev cases x 2" % ("ok" if bad == 0 else "FAIL", len(pick)))
sys.exit(1 if bad else 0)
PY

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf 'Hello\n' | "$BIN" tokenize -m "$V" --no-bos >"$T/a"
printf 'Hello' | "$BIN" tokenize -m "$V" --no-bos >"$T/b"
check "final newline is kept" "! cmp -s '$T/a' '$T/b'"
printf '' | "$BIN" tokenize -m "$V" --no-bos >"$T/c"
check "empty input gives no ids" "grep -qx '{\"ids\":\[\]}' '$T/c'"
"$BIN" tokenize </dev/null >/dev/null 2>&1
check "missing -m exits 2" "[ $? -eq 2 ]"
"$BIN" tokenize -m "$T/nonexistent.gguf" </dev/null >/dev/null 2>&1
check "missing model exits 1" "[ $? -eq 1 ]"
[ "$fails" -eq 0 ]
