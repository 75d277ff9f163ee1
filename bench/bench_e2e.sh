#!/bin/bash
# End to end on a RAM-resident full-width synthetic DeepSeek-R1 stack:
# prefill and decode tokens/s of moestream (--load-mode ram, all threads) next
# to the reference engine's llama-bench on the same file, interleaved
# (ours, reference, ours, reference, ...), best of ROUNDS, ratios printed.
#
#   bench/bench_e2e.sh [MODEL.gguf]
#   env: BUILD (build: uses $BUILD/moestream), REF_LLAMA_BENCH (path of an
#        externally built llama-bench; unset: reference side skipped),
#        ROUNDS (2), PROMPT (64 tokens), GEN (16 tokens), THREADS (one per
#        physical core), MOE_LAYERS (7, only when the model is generated),
#        BENCH_DIR (/work/tmp-bench, where a generated model goes), OURS_ARGS
#        (more eval flags, e.g. "-c 256 --attn mha"), VOCAB (tokenizer for a
#        generated model: ../shared/golden/models/deepseek-r1-vocab.gguf)
# Without MODEL, `moestream synth --moe-layers $MOE_LAYERS` (3 dense + 7 MoE,
# UD-IQ1_S mix, ~19 GB) writes one.  Prompt: PROMPT fixed pseudo-random ids
# (llama-bench -p also evaluates random ids; it runs with -lm none, weights read
# into RAM like ours, and its default warm-up runs); decode: GEN greedy tokens after
# it (llama-bench -n GEN decodes from an empty context - a small difference in
# attention length, 0-16 positions against 64-80 here).  The ids are below
# 101000: the model needs the R1 vocabulary (129280), as synth writes it with --vocab.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/moestream
[ -x "$BIN" ] || { echo "bench_e2e: $BIN not built (make BUILD=$BUILD $BIN)" >&2; exit 1; }
ROUNDS=${ROUNDS:-2}
PROMPT=${PROMPT:-64}
GEN=${GEN:-16}
THREADS=${THREADS:-$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)}
M=${1:-}
if [ -z "$M" ]; then
    L=${MOE_LAYERS:-7}
    DIR=${BENCH_DIR:-/work/tmp-bench}
    M="$DIR/r1-3d${L}m.gguf"
    mkdir -p "$DIR"
    if [ ! -f "$M" ]; then
        need=$(( (3 + 3 * L) * 1000000 )) # kB, generous
        avail=$(df -k --output=avail "$DIR" | tail -1)
        [ "$avail" -gt "$need" ] || { echo "bench_e2e: not enough disk in $DIR for $M" >&2; exit 1; }
        # the real R1 tokenizer, so the reference can load the file too
        V=${VOCAB:-../shared/golden/models/deepseek-r1-vocab.gguf}
        VARG=()
        [ -f "$V" ] && VARG=(--vocab "$V")
        "$BIN" synth -o "$M" --moe-layers "$L" "${VARG[@]}" || exit 1
    fi
fi
[ -f "$M" ] || { echo "bench_e2e: no model $M" >&2; exit 1; }
if [ -n "${REF_LLAMA_BENCH:-}" ] && [ ! -x "$REF_LLAMA_BENCH" ]; then
    echo "REF_LLAMA_BENCH=$REF_LLAMA_BENCH is not executable: reference side skipped"
    REF_LLAMA_BENCH=
fi
# fixed prompt ids in [1000, 101000): an LCG, the same on every run
TOKS=$(awk -v n="$PROMPT" 'BEGIN { s = 12345; for (i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", i ? " " : "", 1000 + s % 100000 } }')
echo "## end to end: $M ($(du -h --apparent-size "$M" | cut -f1)), prompt $PROMPT, generate $GEN, $THREADS threads, rounds $ROUNDS${OURS_ARGS:+, ours with $OURS_ARGS}"
echo "simd at: $(git log --oneline -1 -- simd/ | cut -c1-60)$(git diff --quiet -- simd/ || echo ' + uncommitted changes')"
best() { sort -g | tail -1; }
OP=""; OD=""; RP=""; RD=""
for r in $(seq 1 "$ROUNDS"); do
    out=$("$BIN" eval -m "$M" --tokens "$TOKS" --greedy "$GEN" -v --load-mode ram -t "$THREADS" ${OURS_ARGS:-} 2>&1 >/dev/null)
    [ "$r" = 1 ] && echo "$out" | grep -E "^moestream: kernels|memory plan" | sed 's/^/    /'
    line=$(echo "$out" | grep "prompt $PROMPT tokens in")
    p=$(echo "$line" | sed -n 's/.*tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p')
    d=$(echo "$line" | sed -n 's/.*greedy in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p')
    [ -n "$p" ] || { echo "ours failed:"; echo "$out" | tail -5; }
    echo "round $r ours: prefill ${p:-?} tok/s, decode ${d:-?} tok/s   (load $(cut -d' ' -f1-3 /proc/loadavg))"
    OP="$OP ${p:-0}"; OD="$OD ${d:-0}"
    if [ -n "${REF_LLAMA_BENCH:-}" ]; then
        # -lm none: weights read into RAM, as our --load-mode ram (not mmap'd page cache)
        csv=$("$REF_LLAMA_BENCH" -m "$M" -p "$PROMPT" -n "$GEN" -t "$THREADS" -r 1 -lm none -o csv 2>/dev/null)
        # columns by header name: n_prompt, n_gen, avg_ts
        vals=$(echo "$csv" | python3 -c '
import csv, sys
for row in csv.DictReader(sys.stdin):
    print(row["n_prompt"], row["n_gen"], row["avg_ts"])')
        p=$(echo "$vals" | awk -v n="$PROMPT" '$1 == n && $2 == 0 { print $3 }')
        d=$(echo "$vals" | awk -v n="$GEN" '$1 == 0 && $2 == n { print $3 }')
        [ -n "$p" ] || { echo "reference failed:"; echo "$csv" | tail -3; }
        echo "round $r reference: prefill ${p:-?} tok/s, decode ${d:-?} tok/s   (load $(cut -d' ' -f1-3 /proc/loadavg))"
        RP="$RP ${p:-0}"; RD="$RD ${d:-0}"
    fi
done
op=$(echo $OP | tr ' ' '\n' | best); od=$(echo $OD | tr ' ' '\n' | best)
echo
echo "| engine | prefill tok/s (pp$PROMPT) | decode tok/s (tg$GEN) |"
echo "|---|---|---|"
echo "| moestream (--load-mode ram) | $op | $od |"
if [ -n "${REF_LLAMA_BENCH:-}" ]; then
    rp=$(echo $RP | tr ' ' '\n' | best); rd=$(echo $RD | tr ' ' '\n' | best)
    echo "| reference (llama-bench) | $rp | $rd |"
    echo
    awk -v a="$op" -v b="$rp" 'BEGIN { if (b > 0) printf "prefill ratio ours/reference: %.2fx\n", a / b }'
    awk -v a="$od" -v b="$rd" 'BEGIN { if (b > 0) printf "decode ratio ours/reference: %.2fx\n", a / b }'
else
    echo
    echo "REF_LLAMA_BENCH unset: no reference numbers, no ratios"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
