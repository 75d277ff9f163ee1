#!/bin/bash
# Aggregate decode throughput with N concurrent streams (issue 13):
# `moestream serve --parallel N -c CTX` next to the reference's
# `llama-server -np N -c CTX*N` (its -c is the total split over the slots),
# the same model, N requests sent at once, each a short prompt and GEN
# generated tokens at temperature 0.  Aggregate tok/s = the completion tokens
# the responses report, summed, over the wall time from the first request to
# the last reply (so each stream's short prompt is included).  Rounds
# interleave ours and the reference's per N.
#
#   bench/bench_streams.sh MODEL.gguf
#   env: BUILD (build), REF_LLAMA_SERVER (path of an externally built
#        llama-server; unset: reference side skipped), STREAMS ("1 2 4 8"),
#        GEN (16), CTX (512 per stream), THREADS (one per physical core),
#        ROUNDS (1), OURS_ARGS (more serve flags, e.g. "--load-mode ram"),
#        REF_ARGS (more llama-server flags; default --no-mmap: weights read into RAM)
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
THREADS=${THREADS:-$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)}
PORT=$(( 30000 + $$ % 20000 ))
U=http://127.0.0.1:$PORT
if [ -n "${REF_LLAMA_SERVER:-}" ] && [ ! -x "$REF_LLAMA_SERVER" ]; then
    echo "REF_LLAMA_SERVER=$REF_LLAMA_SERVER is not executable: reference side skipped"
    REF_LLAMA_SERVER=
fi
echo "## streams: $M, $GEN generated per stream, -c $CTX per stream, $THREADS threads"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# N concurrent /v1/completions; prints "tokens seconds"
fire() {
    python3 - "$U" "$1" "$GEN" <<'EOF'
import json, sys, threading, time, urllib.request
url, n, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = [0] * n
err = []
def one(i):
    body = json.dumps({"prompt": "Stream %d: tell a story about the sea." % i, "max_tokens": gen,
                       "temperature": 0}).encode()
    try:
        r = urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", body,
                                   {"Content-Type": "application/json"}), timeout=3600)
        out[i] = json.load(r)["usage"]["completion_tokens"]
    except Exception as e:  # counted, not fatal: the line says how many failed
        detail = e.read().decode(errors="replace")[:300] if hasattr(e, "read") else ""
        err.append("%s %s" % (e, detail))
t0 = time.time()
th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in th: t.start()
for t in th: t.join()
print(sum(out), "%.3f" % (time.time() - t0), len(err))
if err:  # what went wrong, once, on stderr (the caller's line says how many)
    print("first failure:", err[0], file=sys.stderr)
EOF
}

# moestream_expert_bytes_read_total from our /metrics (empty for the reference)
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
    local b0 b1 extra=""
    b0=$(expert_bytes)
    read -r tok sec nerr < <(fire "$n")
    b1=$(expert_bytes)
    # paged experts: bytes the pager read for this round, per generated token
    if [ "$who" = ours ] && [ -n "$b0" ] && [ -n "$b1" ] && [ "$tok" -gt 0 ]; then
        extra=$(echo "scale=3; ($b1 - $b0) / $tok / 1000000" | bc -l)
        extra=", expert reads $extra MB per generated token"
    fi
    printf '%-9s N=%-2s %4s tokens in %8s s: %7.2f tok/s aggregate%s%s\n' "$who" "$n" "$tok" "$sec" \
        "$(echo "$tok / $sec" | bc -l)" "$extra" "$([ "$nerr" != 0 ] && echo ", $nerr requests FAILED")"
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
}

for r in $(seq 1 "$ROUNDS"); do
    for n in $STREAMS; do
        run_one ours "$n"
        [ -n "${REF_LLAMA_SERVER:-}" ] && run_one reference "$n"
    done
done
rm -f /tmp/bench_streams.$$.log
