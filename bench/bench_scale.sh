#!/bin/bash
# DeepSeek-R1 at full depth under a 20 GiB budget (issue 18, item 1).
#
# A 61-layer, full-width synthetic R1 (3 dense + 58 MoE layers, UD-IQ1_S
# mix, legacy attn_kv_b) whose 58 MoE layers share the routed-expert bytes
# of 12 (synth --expert-layers 12: ~38 GB of disk instead of 131 GB; every
# resident tensor is per layer, so the resident set, the KV cache and the
# memory plan are the real R1's, and expert reads are O_DIRECT disk reads
# whichever layer they serve).  Reports, in one run:
#   - the memory plan (resident, cache, scratch, pool) and the peak RSS;
#   - decode tok/s, hit rate, GiB read per token and stall share (decode only);
#   - C: the same decode with --bench-pool-routing (routing confined to the
#     experts already in the pool: no reads), the compute-only bound;
#   - D: the disk's O_DIRECT random-read bandwidth over the same file, by
#     fio with the pager's read size and queue depth;
#   - the bound min(C, D / m), m = GiB read per token in the real run, and
#     the real run's fraction of it (sizes in GiB, as the program prints them).
# Nothing is written into the repository.  Environment:
#   MOESTREAM_BIN  binary (default ./build/moestream)
#   MODEL          the 61-layer file (default $BIG_DIR/r1-61L-12x.gguf; written
#                  if absent and then deleted at the end unless KEEP_MODEL=1)
#   BIG_DIR        where to write it (default /work/big; needs ~38 GB + 20 GB spare)
#   MEM, CTX       budget and context (20G, 4096)
#   NTOK           greedy tokens per run (default 33: 32 decode steps)
#   ROUTING_TRACE  experts from this recorded trace (--bench-routing-trace);
#                  empty: the synthetic model's own (skewed) routers
#   FIO_BS, FIO_QD the pager's read (2800k: one IQ1_S expert matrix of
#                  7168 x 2048, its 4 KiB-aligned superset) and reads in
#                  flight (23: io/uring.c's 64 MiB cap / 2800 KiB)
#   FIO_SECONDS    fio run time (default 30)
#   C_FIRST=1      the C run before the real one (for interleaved rounds)
set -u
BIN=${MOESTREAM_BIN:-./build/moestream}
DIR=${BIG_DIR:-/work/big}
M=${MODEL:-$DIR/r1-61L-12x.gguf}
MEM=${MEM:-20G}
CTX=${CTX:-4096}
NTOK=${NTOK:-33}
RT=${ROUTING_TRACE:-}
BS=${FIO_BS:-2800k}
QD=${FIO_QD:-23}
FS=${FIO_SECONDS:-30}
command -v fio >/dev/null || { echo "bench_scale: fio missing (configs/install-deps.sh --test)"; exit 1; }
[ -x "$BIN" ] || { echo "bench_scale: no binary $BIN (make moestream)"; exit 1; }

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(nproc) cores"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
wrote=0
if [ ! -f "$M" ]; then
  mkdir -p "$(dirname "$M")"
  avail=$(df -k --output=avail "$(dirname "$M")" | tail -1)
  [ "$avail" -gt $((58 * 1024 * 1024)) ] || { echo "bench_scale: need ~38 GB for the file + 20 GB spare in $(dirname "$M")"; exit 1; }
  "$BIN" synth --moe-layers 58 --expert-layers 12 --routing-skew 1 -o "$M" || exit 1
  wrote=1
fi
cleanup() { [ $wrote = 1 ] && [ "${KEEP_MODEL:-0}" != 1 ] && rm -f "$M"; }
trap cleanup EXIT
echo "model: $M ($(du -h --apparent-size "$M" | cut -f1) on disk); df: $(df -h --output=avail "$(dirname "$M")" | tail -1 | tr -d ' ') free"
"$BIN" inspect -m "$M" --mem "$MEM" -c "$CTX" | grep -E -A2 "^model:|^memory plan|shared experts" | grep -v "^  routed\|^  resident\|^RAM\|^$\|^--$" | sed 's/^/  /'

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "  (cannot drop caches: not root)"; }

# D: O_DIRECT random reads of the pager's size and depth over the model file.
drop
fio_json=$(fio --name=pager-reads --filename="$M" --readonly --direct=1 --ioengine=io_uring \
  --rw=randread --bs="$BS" --iodepth="$QD" --runtime="$FS" --time_based --output-format=json 2>/dev/null)
D=$(echo "$fio_json" | python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['read']; print(round(j['bw_bytes']/2**30,3))")
echo "disk D: fio O_DIRECT randread bs=$BS iodepth=$QD ${FS}s over the model: $D GiB/s"

# One eval: a one-token prompt, then NTOK greedy tokens (decode steps).
run() { # label extra...
  local label=$1; shift
  drop
  local out
  out=$(timeout 3600 "$BIN" eval -m "$M" --tokens "1000" --greedy "$NTOK" -c "$CTX" --mem "$MEM" -v "$@" 2>&1 >/dev/null)
  echo "$out" | grep -E "loaded in|^eval: prompt|^expert cache|^decode only|^peak RSS" | sed "s/^/  [$label] /" >&2
  # decode steps / seconds (eval's own figure has two decimals)
  TPS=$(echo "$out" | sed -n 's/.*; \([0-9]*\) greedy in \([0-9.]*\) s .*/\1 \2/p' | awk '{ if ($2 > 0) printf "%.4f", ($1 - 1) / $2 }')
  HIT=$(echo "$out" | sed -n 's/^decode only:.*(\([0-9.]*\)% hit rate).*/\1/p')
  GBT=$(echo "$out" | sed -n 's/^decode only:.* = \([0-9.]*\) GiB\/token (.*/\1/p')
  STALL=$(echo "$out" | sed -n 's/^decode only:.*stalled [0-9.]* s of [0-9.]* s (\([0-9.]*\)%).*/\1/p')
  RSS=$(echo "$out" | sed -n 's/^peak RSS \([0-9.]*\) GiB.*/\1/p')
  LOAD=$(echo "$out" | sed -n 's/.*loaded in \([0-9.]*\) s.*/\1/p')
  echo "| $label | ${TPS:-?} | ${HIT:-?} | ${GBT:-?} | ${STALL:-?} | ${RSS:-?} | ${LOAD:-?} |"
}
echo
echo "| run (--mem $MEM -c $CTX, $((NTOK - 1)) decode steps) | decode tok/s | hit rate % | GiB read/token | stall % | peak RSS GiB | loaded in s |"
echo "|---|---|---|---|---|---|---|"
# With a trace the router's next-layer guess cannot know the trace's choice
# (2.4% right in a 24-token run: half the bytes read were wasted guesses),
# so both runs go without prefetch.
PF=()
[ -n "$RT" ] && PF=(--no-prefetch)
real_run() {
  if [ -n "$RT" ]; then
    run "pager, recorded routing ($(basename "$RT"), mapped), no prefetch" --bench-routing-trace "$RT" "${PF[@]}"
  else
    run "pager, the model's own routing"
  fi
  R_TPS=${TPS:-0}; R_GBT=${GBT:-0}; R_RSS=${RSS:-0}
}
c_run() { run "C: --bench-pool-routing (no reads)" --bench-pool-routing "${PF[@]}"; C_TPS=${TPS:-0}; }
# C_FIRST=1 swaps the order (interleaved rounds on a noisy machine)
if [ "${C_FIRST:-0}" = 1 ]; then c_run; real_run; else real_run; c_run; fi
echo
python3 - "$R_TPS" "$R_GBT" "$C_TPS" "$D" "$R_RSS" <<'PY'
import sys
r, m, c, d, rss = (float(x or 0) for x in sys.argv[1:])
io = d / m if m > 0 else float("inf")
b = min(c, io)
print(f"bound: min(C = {c:.3f}, D/m = {d:.3f}/{m:.4f} = {io:.3f}) = {b:.3f} tok/s; "
      f"real run {r:.3f} tok/s = {r / b if b > 0 else 0:.2f} of the bound (goal 0.8)")
print(f"peak RSS {rss:.3f} GiB: {'within' if 0 < rss <= 20 else 'OVER'} 20 GiB")
PY
echo "load after: $(uptime | sed 's/.*load average/load average/')"
