#!/bin/bash
# Aggregate decode throughput with N concurrent streams (issue 13):
# `moestream serve --parallel N -c CTX` next to the reference's
# `llama-server -np N -c CTX*N` (its -c is the total split over the slots),
# the same model, N requests sent at once, each a short prompt and GEN
# generated tokens at temperature 0.  Two figures per burst of N requests:
#  - end to end: the completion tokens the replies report, summed, over the
#    wall time from the first request to the last reply (each stream's
#    prompt included);
#  - decode: the same tokens over the span in which the streams decoded,
#    from the earliest start of generation (a reply's arrival minus its
#    timings.predicted_ms, the field both servers return) to the last reply.
#    Prompt evaluation is left out, as llama-server's predicted_per_second
#    leaves it out for one request.
# Each server start takes a warm-up request, then REPS bursts; the row gives
# their medians.  Rounds interleave ours and the reference's per N.
#
#   bench/bench_streams.sh MODEL.gguf
#   env: BUILD (build), REF_LLAMA_SERVER (path of an externally built
#        llama-server; unset: reference side skipped), STREAMS ("1 2 4 8"),
#        GEN (16), CTX (512 per stream), THREADS (one per physical core),
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
echo "## streams: $M, $GEN generated per stream, -c $CTX per stream, $THREADS threads"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"
# ours runs the absorbed attention's F32 products on OpenBLAS, whose kernel
# family this variable overrides (some machine images pin it to Haswell's
# AVX2 kernels; OpenBLAS 0.3.21 itself picks Cooperlake's AVX-512 ones on a
# Zen 5): say which ran
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (OpenBLAS detects)}"

# N concurrent /v1/completions; prints "tokens seconds"
fire() { # N [BURST]: one burst; prints "tokens wall_s failures decode_tok_s"
    python3 - "$U" "$1" "$GEN" "${2:-0}" <<'EOF'
import json, sys, threading, time, urllib.request
url, n, gen, burst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = [None] * n
err = []
def one(i):
    # every burst's prompts new: neither server reuses a cached prompt
    body = json.dumps({"prompt": "Stream %d, burst %d: tell a story about the sea." % (i, burst), "max_tokens": gen,
                       "temperature": 0}).encode()
    try:
        r = urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", body,
                                   {"Content-Type": "application/json"}), timeout=3600)
        j = json.load(r)
        end = time.time()
        t = j.get("timings") or {}
        out[i] = (j["usage"]["completion_tokens"], end, t.get("predicted_ms"))
    except Exception as e:  # counted, not fatal: the line says how many failed
        detail = e.read().decode(errors="replace")[:300] if hasattr(e, "read") else ""
        err.append("%s %s" % (e, detail))
t0 = time.time()
th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in th: t.start()
for t in th: t.join()
ok = [o for o in out if o]
tok = sum(o[0] for o in ok)
wall = (max(o[1] for o in ok) if ok else time.time()) - t0
dec = "nan"
if ok and all(o[2] is not None for o in ok):
    span = max(o[1] for o in ok) - min(o[1] - o[2] / 1e3 for o in ok)
    dec = "%.3f" % (tok / span) if span > 0 else "nan"
print(tok, "%.3f" % wall, len(err), dec)
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
    fire 1 >/dev/null # warm-up: first-touch of the weights, not counted
    local b0 b1 extra="" reps="" e2e=() dec=() ttok=0 nerr=0 tok sec ne dr r
    b0=$(expert_bytes)
    for r in $(seq 1 "$REPS"); do
        read -r tok sec ne dr < <(fire "$n" "$r")
        e2e+=("$(echo "$tok / $sec" | bc -l)")
        dec+=("$dr")
        ttok=$((ttok + tok)); nerr=$((nerr + ne))
        reps="$reps $(printf '%.2f/%s' "${e2e[-1]}" "$dr")"
    done
    b1=$(expert_bytes)
    if [ "$who" = ours ] && [ -n "$b0" ] && [ -n "$b1" ] && [ "$ttok" -gt 0 ]; then
        extra=$(echo "scale=3; ($b1 - $b0) / $ttok / 1000000" | bc -l)
        extra=", expert reads $extra MB per generated token"
    fi
    printf '%-9s N=%-2s median of %s: %7.2f tok/s end to end, %7s tok/s decode (bursts e2e/decode:%s)%s%s\n' \
        "$who" "$n" "$REPS" "$(median "${e2e[@]}")" "$(median "${dec[@]}")" "$reps" "$extra" \
        "$([ "$nerr" != 0 ] && echo ", $nerr requests FAILED")"
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
}

for r in $(seq 1 "$ROUNDS"); do
    for n in $STREAMS; do
        run_one ours "$n"
        [ -n "${REF_LLAMA_SERVER:-}" ] && run_one reference "$n"
    done
done
rm -f /tmp/bench_streams.$$.log
