#!/bin/bash
# Aggregate decode throughput with N concurrent streams (issue 13):
# `moestream serve --parallel N -c CTX` next to the reference's
# `llama-server -np N -c CTX*N` (its -c is the total split over the slots),
# the same model, N requests sent at once, each a short prompt and GEN
# generated tokens at temperature 0.  Two figures per N:
#  - end to end: the completion tokens the replies of a burst of GEN report,
#    summed, over the wall time from the first request to the last reply
#    (each stream's prompt included);
#  - decode: the marginal rate of a longer burst, GEN2 tokens per stream
#    against GEN with prompts of the same length: (tokens2 - tokens1) /
#    (wall2 - wall1).  Both bursts evaluate the same number of prompt
#    rows, so their difference is GEN2 - GEN steps of pure N-stream decode
#    on either server; a span read from the replies' timings would count
#    the other streams' prompt rows that share the decode steps.
# Each server start takes a warm-up request, then REPS pairs of bursts (GEN
# then GEN2); the row gives their medians.  Rounds interleave ours and the reference's per N.
#
#   bench/bench_streams.sh MODEL.gguf
#   env: BUILD (build), REF_LLAMA_SERVER (path of an externally built
#        llama-server; unset: reference side skipped), STREAMS ("1 2 4 8"),
#        GEN (16), GEN2 (3 x GEN), CTX (512 per stream), THREADS (one per physical core),
#        ROUNDS (1), REPS (3), OURS_ARGS (more serve flags, e.g. "--load-mode
#        ram"), REF_ARGS (more llama-server flags; default --no-mmap: weights
#        read into RAM)
# Ours also prints the expert bytes the pager read per generated token
# (/metrics), the figure that matters when experts are paged (--mem below
# the model).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/moestream
M=${1:?usage: bench/bench_streams.sh MODEL.gguf}
[ -x "$BIN" ] || { echo "bench_streams: $BIN not built" >&2; exit 1; }
STREAMS=${STREAMS:-1 2 4 8}
GEN=${GEN:-16}
GEN2=${GEN2:-$((3 * GEN))}
CTX=${CTX:-512}
ROUNDS=${ROUNDS:-1}
REPS=${REPS:-3}
THREADS=${THREADS:-$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)}
PORT=$(( 30000 + $$ % 20000 ))
U=http://127.0.0.1:$PORT
if [ -n "${REF_LLAMA_SERVER:-}" ] && [ ! -x "$REF_LLAMA_SERVER" ]; then
    echo "REF_LLAMA_SERVER=$REF_LLAMA_SERVER is not executable: reference side skipped"
    REF_LLAMA_SERVER=
fi
echo "## streams: $M, $GEN generated per stream (decode: $GEN2 against $GEN), -c $CTX per stream, $THREADS threads"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"
# ours runs the absorbed attention's F32 products on OpenBLAS, whose kernel
# family this variable overrides (some machine images pin it to Haswell's
# AVX2 kernels; OpenBLAS 0.3.21 itself picks Cooperlake's AVX-512 ones on a
# Zen 5): say which ran
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (OpenBLAS detects)}"

fire() { # N BURST GEN: one burst of N concurrent /v1/completions; prints
         # "tokens wall_s failures prompt_tokens unparsed"
    python3 - "$U" "$1" "$3" "$2" <<'EOF'
import json, sys, threading, time, urllib.request
url, n, gen, burst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = [None] * n
err = []
unparsed = [0]
def one(i):
    body = json.dumps({"prompt": "Stream %d, burst %d: tell a story about the sea." % (i, burst), "max_tokens": gen,
                       "temperature": 0, "cache_prompt": False}).encode()
    try:
        r = urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", body,
                                   {"Content-Type": "application/json"}), timeout=3600)
        j = json.load(r)
        end = time.time()
        out[i] = (j["usage"]["completion_tokens"], end, j["usage"]["prompt_tokens"])
    except Exception as e:  # counted, not fatal: the line says how many failed
        detail = e.read().decode(errors="replace")[:300] if hasattr(e, "read") else ""
        # llama-server answers 500 when the text it generated does not parse
        # as its chat format's content (a random model's output cut inside a
        # UTF-8 sequence): the generation ran to max_tokens, only the reply
        # is lost, so its time counts with gen tokens (reported apart)
        if getattr(e, "code", 0) == 500 and "does not match the expected" in detail:
            out[i] = (gen, time.time(), 0)
            unparsed[0] += 1
            return
        err.append("%s %s" % (e, detail))
t0 = time.time()
th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in th: t.start()
for t in th: t.join()
ok = [o for o in out if o]
tok = sum(o[0] for o in ok)
wall = (max(o[1] for o in ok) if ok else time.time()) - t0
print(tok, "%.3f" % wall, len(err), sum(o[2] for o in ok), unparsed[0])
if err:  # what went wrong, once, on stderr (the caller's line says how many)
    print("first failure:", err[0], file=sys.stderr)
EOF
}

expert_bytes() {
    curl -s "$U/metrics" 2>/dev/null | awk '$1 == "moestream_expert_bytes_read_total" {printf "%.0f", $2}'
}

wait_up() {
    for _ in $(seq 1 1200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.25
    done
    return 1
}

median() { printf '%s\n' "$@" | grep -v nan | sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.2f", NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; else printf "nan"}'; }

run_one() { # who N
    local who=$1 n=$2 pid
    if [ "$who" = ours ]; then
        "$BIN" serve -m "$M" --port "$PORT" --parallel "$n" -c "$CTX" -t "$THREADS" ${OURS_ARGS:-} \
            >/tmp/bench_streams.$$.log 2>&1 &
    else
        "$REF_LLAMA_SERVER" -m "$M" --port "$PORT" -np "$n" -c $((CTX * n)) -t "$THREADS" ${REF_ARGS---no-mmap} \
            >/tmp/bench_streams.$$.log 2>&1 &
    fi
    pid=$!
    if ! wait_up $pid; then
        echo "$who N=$n: server did not come up"; tail -3 /tmp/bench_streams.$$.log
        kill $pid 2>/dev/null; wait $pid 2>/dev/null; return
    fi
    fire 1 0 "$GEN" >/dev/null # warm-up: first-touch of the weights, not counted
    local b0 b1 extra="" reps="" e2e=() dec=() ttok=0 nerr=0 nunp=0 tok sec ne pt up tok2 sec2 ne2 pt2 up2 d r
    b0=$(expert_bytes)
    for r in $(seq 1 "$REPS"); do
        # the pair's prompts are the same text (the same rows to evaluate),
        # each pair's new; neither server reuses the first burst's prompt:
        # the reference is told cache_prompt false, and ours reuses whole
        # -b chunks only (64 tokens by default, more than these prompts)
        read -r tok sec ne pt up < <(fire "$n" "$r" "$GEN")
        read -r tok2 sec2 ne2 pt2 up2 < <(fire "$n" "$r" "$GEN2")
        e2e+=("$(echo "$tok / $sec" | bc -l)")
        d=nan
        # the same prompts in both: a length differs only where a reply
        # was lost (unparsed) and its prompt not counted
        if [ "$ne$ne2" = 00 ] && { [ "$pt" = "$pt2" ] || [ "$up$up2" != 00 ]; } && [ "$(echo "$sec2 > $sec && $tok2 > $tok" | bc)" = 1 ]; then
            d=$(printf '%.2f' "$(echo "($tok2 - $tok) / ($sec2 - $sec)" | bc -l)")
        fi
        dec+=("$d")
        ttok=$((ttok + tok + tok2)); nerr=$((nerr + ne + ne2)); nunp=$((nunp + up + up2))
        reps="$reps $(printf '%.2f/%s' "${e2e[-1]}" "$d")"
    done
    b1=$(expert_bytes)
    if [ "$who" = ours ] && [ -n "$b0" ] && [ -n "$b1" ] && [ "$ttok" -gt 0 ]; then
        extra=$(echo "scale=3; ($b1 - $b0) / $ttok / 1000000" | bc -l)
        extra=", expert reads $extra MB per generated token"
    fi
    printf '%-9s N=%-2s median of %s: %7.2f tok/s end to end, %7s tok/s decode (bursts e2e/decode:%s)%s%s%s\n' \
        "$who" "$n" "$REPS" "$(median "${e2e[@]}")" "$(median "${dec[@]}")" "$reps" "$extra" \
        "$([ "$nerr" != 0 ] && echo ", $nerr requests FAILED")" \
        "$([ "$nunp" != 0 ] && echo ", $nunp replies lost to the server's unparsable-output 500 after generating (counted as generated)")"
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
}

for r in $(seq 1 "$ROUNDS"); do
    for n in $STREAMS; do
        run_one ours "$n"
        [ -n "${REF_LLAMA_SERVER:-}" ] && run_one reference "$n"
    done
done
rm -f /tmp/bench_streams.$$.log
