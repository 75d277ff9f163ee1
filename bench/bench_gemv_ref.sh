#!/bin/bash
# GEMV (decode shape, one activation column) of moestream's chosen kernel table
# next to the reference engine's same kernel, interleaved in one script:
# per round and type, ours (build/bench/bench_kernels) then the reference
# harness, best of ROUNDS; the ratio is ours/reference and the limit is the
# all-thread streaming read bandwidth bench_kernels measures in the same runs.
#
# The reference harness is built outside this repo against the reference
# engine's libggml (one MUL_MAT of a [7168, rows] weight times an F32
# [7168, 1] vector on the ggml CPU backend, printing a markdown row with
# "GB/s"); give its path in REF_GEMV.  Without REF_GEMV only our side runs.
#   bench/bench_gemv_ref.sh [BUILD] [MB]         env: REF_GEMV, ROUNDS (3), TYPES, THREADS
# MB defaults to 1229: 4x the 300 MiB L3 of the project VM, GGUF bytes per type.
set -u
BUILD=${1:-build}
MB=${2:-1229}
ROUNDS=${ROUNDS:-3}
TYPES=${TYPES:-"IQ1_S IQ2_XXS Q4_K Q5_K Q6_K"}
THREADS=${THREADS:-$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)}
cd "$(dirname "$0")/.."
BK=$BUILD/bench/bench_kernels
[ -x "$BK" ] || { echo "bench_gemv_ref: $BK not built (make BUILD=$BUILD $BK)" >&2; exit 1; }
ISA=$("$BK" 16 F32 scalar | sed -n 's/.*kernel table chosen: \([a-z0-9]*\).*/\1/p')
echo "## GEMV side by side: $MB MB per type, $THREADS threads, ours = kernel table '$ISA', rounds $ROUNDS"
echo "simd at: $(git log --oneline -1 -- simd/ | cut -c1-60)$(git diff --quiet -- simd/ || echo ' + uncommitted changes')"
if [ -z "${REF_GEMV:-}" ]; then
    echo "REF_GEMV unset: reference side skipped"
elif [ ! -x "$REF_GEMV" ]; then
    echo "REF_GEMV=$REF_GEMV is not executable: reference side skipped"
    REF_GEMV=
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    for t in $TYPES; do
        echo "round $r $t: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        "$BK" "$MB" "$ISA" "$t" > "$TMP/ours.$t.$r"
        if [ -n "${REF_GEMV:-}" ]; then
            "$REF_GEMV" "$MB" "$THREADS" auto "$t" > "$TMP/ref.$t.$r" 2>/dev/null
            # Q4_K: llama's loader repacks it (CPU_REPACK); the plain kernel too, for reference
            [ "$t" = Q4_K ] && "$REF_GEMV" "$MB" "$THREADS" plain "$t" > "$TMP/refplain.$t.$r" 2>/dev/null
        fi
    done
done
best() { sort -g | tail -1; }
# ours: "| TYPE | isa | g1 | gn | ..."; stream: "... GB/s 1 thread, X GB/s N threads"
BW=$(cat "$TMP"/ours.* | sed -n 's/.* thread, \([0-9.]*\) GB\/s [0-9]* threads/\1/p' | best)
echo
echo "all-thread streaming read bandwidth (best over the runs above): $BW GB/s; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| type | ours GB/s | reference GB/s (buffer) | ours / reference | ours % of read bw | reference % of read bw |"
echo "|---|---|---|---|---|---|"
for t in $TYPES; do
    o=$(cat "$TMP"/ours.$t.* | awk -F'|' -v t="$t" '$2 ~ " "t" " {gsub(/ /,"",$5); print $5}' | best)
    for kind in ref refplain; do
        ls "$TMP"/$kind.$t.* >/dev/null 2>&1 || continue
        rr=$(cat "$TMP"/$kind.$t.* | awk -F'|' 'NF > 6 && $2 !~ /type|---/ {gsub(/ /,"",$6); print $6}' | best)
        buf=$(cat "$TMP"/$kind.$t.* | awk -F'|' 'NF > 6 && $2 !~ /type|---/ {gsub(/ /,"",$3); print $3; exit}')
        [ -n "$rr" ] || continue
        awk -v t="$t" -v o="$o" -v r="$rr" -v b="$buf" -v bw="$BW" 'BEGIN {
            printf "| %s | %.2f | %.2f (%s) | %.2fx | %.0f%% | %.0f%% |\n", t, o, r, b, o / r, 100 * o / bw, 100 * r / bw }'
    done
    if ! ls "$TMP"/ref.$t.* >/dev/null 2>&1; then
        awk -v t="$t" -v o="$o" -v bw="$BW" 'BEGIN { printf "| %s | %.2f | - | - | %.0f%% | - |\n", t, o, 100 * o / bw }'
    fi
done
echo
echo "raw runs:"
for f in "$TMP"/*; do echo "### $(basename "$f")"; grep '^|' "$f" | grep -v -- '---'; grep 'streaming' "$f"; done
