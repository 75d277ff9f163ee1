#!/bin/bash
# Expert paging vs the page cache on a synthetic DeepSeek-R1-shaped model
# much larger than the pool (DEEPSEEK-FACTS shapes, UD-IQ1_S mix, random
# routers: near-uniform routing, the worst case for any cache).
#
#   bench/bench_pager.sh            # 3 dense + 10 MoE layers, ~27 GB
#   MOE_LAYERS=15 bench/bench_pager.sh
#   REF_LLAMA_BENCH=/path/to/llama-bench MOE_LAYERS=15 bench/bench_pager.sh
#
# With REF_LLAMA_BENCH (an externally built llama-bench), the reference
# engine's mmap path runs on the same file held to the same RAM
# (llama-bench -mmp 1 -p 0 -n 16), as issue 18's baseline was taken.  The
# balloon (build/memhog) has finished locking before any held run starts -
# writing never-used memory is slow on some VMs, so a fixed sleep can leave
# it half-filled - and MemAvailable is printed before each held run.
#
# Reports, in one run: the disk's O_DIRECT read bandwidth (fio at the
# pager's read size and depth; FIO_BS, FIO_QD, FIO_SECONDS), decode
# tok/s of the pager (pool = ~7% of the expert bytes, as 20 GB is for the
# real 131 GB file) and of --load-mode mmap held to the same RAM (a locked
# helper takes the rest) and with all RAM free, the page cache dropped
# before each run; hit rate, achieved read GB/s, the I/O bound
# tok/s <= disk GB/s / missed GB per token, and tok/s scaled to 61 layers.
set -u
cd "$(dirname "$0")/.."
BIN=./moestream
L=${MOE_LAYERS:-10}
DIR=${BENCH_DIR:-/work/tmp-bench}
M="$DIR/r1-${L}moe.gguf"
mkdir -p "$DIR"
[ -x "$BIN" ] || make moestream >/dev/null
cc -O2 -o build/memhog bench/memhog.c || exit 1
if [ ! -f "$M" ]; then
  need=$(( (3 + 3 * L) * 1000000 ))   # kB, generous
  avail=$(df -k --output=avail "$DIR" | tail -1)
  [ "$avail" -gt "$need" ] || { echo "not enough disk in $DIR"; exit 1; }
  $BIN synth -o "$M" --moe-layers "$L" ${SYNTH_ARGS:-} || exit 1
fi
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: not root)"; }
size=$(stat -c %s "$M")
info=$($BIN inspect -m "$M" --json)
exp_bytes=$(echo "$info" | python3 -c "import json,sys;print(json.load(sys.stdin)['expert_bytes'])")
res_bytes=$(echo "$info" | python3 -c "import json,sys;print(json.load(sys.stdin)['resident_bytes'])")
# pool ~7% of experts, plus resident weights, context and slack
mem=$(python3 -c "print(int($res_bytes + 0.07*$exp_bytes + 0.35e9))")
# The disk, D: O_DIRECT random reads of the pager's size and depth over the
# model file (fio), as the pager reads; dd's single-stream rate (the
# fallback without fio) understates a queued reader several times.
drop
if command -v fio >/dev/null; then
  disk_gbs=$(fio --name=pager-reads --filename="$M" --readonly --direct=1 --ioengine=io_uring \
    --rw=randread --bs="${FIO_BS:-2800k}" --iodepth="${FIO_QD:-23}" --runtime="${FIO_SECONDS:-20}" \
    --time_based --output-format=json 2>/dev/null |
    python3 -c "import json,sys; print(round(json.load(sys.stdin)['jobs'][0]['read']['bw_bytes']/1e9,3))")
  disk_how="fio O_DIRECT randread bs=${FIO_BS:-2800k} iodepth=${FIO_QD:-23}"
else
  dd_out=$(dd if="$M" of=/dev/null bs=8M count=512 iflag=direct 2>&1 | tail -1)
  disk_gbs=$(echo "$dd_out" | python3 -c "
import sys,re
m=re.search(r'(\d+) bytes.*copied, ([0-9.]+) s', sys.stdin.read()); print(round(int(m.group(1))/float(m.group(2))/1e9,3))")
  disk_how="dd O_DIRECT sequential, one stream (fio missing: configs/install-deps.sh --test)"
fi
# Decode-like: distinct tokens evaluated one at a time (-b 1), so each
# token routes on its own (a random model's greedy output repeats one token
# and would flatter any cache).
run() { # mode label ngreedy extra...
  local mode=$1 label=$2 ng=$3; shift 3
  drop
  local out
  local toks
  toks=$(echo "$TOK" | cut -d' ' -f1-"$ng")
  out=$(timeout 1800 $BIN eval -m "$M" --tokens "$toks" -b 1 -c 256 --load-mode "$mode" --mem "$mem" -v "$@" 2>&1)
  local tps hit gbs
  tps=$(echo "$out" | sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p')
  hit=$(echo "$out" | sed -n 's/.*(\([0-9.]*\)% hit rate).*/\1/p')
  gbs=$(echo "$out" | sed -n 's/.* GiB read at \([0-9.]*\) GiB\/s.*/\1/p')
  local rss=$(echo "$out" | sed -n 's/^peak RSS \([0-9.]*\) GiB.*/\1/p')
  echo "| $label | ${tps:-?} | ${hit:--} | ${gbs:--} | ${rss:-?} |"
  echo "$out" | grep -E "memory plan|expert cache" | sed 's/^/    /' >&2
  eval "TPS_$(echo $mode | tr -d -)=${tps:-0}"
}
echo "model: $M ($(python3 -c "print(round($size/1e9,2))") GB; experts $(python3 -c "print(round($exp_bytes/1e9,2))") GB, resident $(python3 -c "print(round($res_bytes/1e9,2))") GB), --mem $(python3 -c "print(round($mem/1e9,2))") GB, disk D $disk_gbs GB/s ($disk_how)"
echo
echo "| run | decode tok/s | hit rate % | read GiB/s | peak RSS GiB |"
echo "|---|---|---|---|---|"
NTOK=32
TOK=$(python3 -c "import random; random.seed(7); print(' '.join(str(random.randrange(300, 120000)) for _ in range($NTOK)))")
U="--bench-uniform-routing 7"
run pager "pager, uniform random routing (worst case)" 24 $U
PAGER=$TPS_pager
run pager "pager, the synthetic model's own routing" 32
OWN=$TPS_pager
# Real routing pattern: the experts of a recorded trace (ESFT law task,
# DeepSeek-V2-Lite: 26 layers x 64 experts, top-6) mapped onto the model as
# src/routing_trace.h documents (layers cyclically, ids spread 64 -> 256).
RT=${ROUTING_TRACE:-../shared/routing/esft-vanilla-lite/law}
[ -e "$RT" ] && run pager "pager, recorded routing ($(basename "$RT"), mapped)" 32 --bench-routing-trace "$RT"
memavail() { awk '/^MemAvailable/ {printf "%.2f GiB", $2 / 1048576}' /proc/meminfo; }
drop
avail_kb=$(grep MemAvailable /proc/meminfo | awk '{print $2}')
hog=$(( avail_kb * 1024 - mem ))
HOGLOG=$(mktemp)
build/memhog $hog >"$HOGLOG" 2>&1 & HOG=$!
# wait until every page of the balloon is locked (or it failed)
for _ in $(seq 1 3600); do
  grep -q locked "$HOGLOG" && break
  kill -0 $HOG 2>/dev/null || break
  sleep 0.5
done
if ! grep -q locked "$HOGLOG"; then
  echo "balloon of $hog bytes did not lock: $(cat "$HOGLOG")"; kill $HOG 2>/dev/null
else
  echo "| (balloon of $(python3 -c "print(round($hog/2**30,2))") GiB locked; MemAvailable $(memavail), --mem $(python3 -c "print(round($mem/2**30,2))") GiB) | | | | |"
  run mmap "mmap + page cache, same RAM (rest locked), uniform routing" 4 $U
  MMAP_HELD=$TPS_mmap
  run mmap "mmap + page cache, same RAM (rest locked), own routing" 6
  if [ -n "${REF_LLAMA_BENCH:-}" ]; then
    if [ ! -x "$REF_LLAMA_BENCH" ]; then
      echo "| reference: REF_LLAMA_BENCH=$REF_LLAMA_BENCH is not executable | | | | |"
    else
      drop
      echo "| (MemAvailable $(memavail) before the reference run) | | | | |"
      THREADS=$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)
      rout=$(timeout 3600 "$REF_LLAMA_BENCH" -m "$M" -mmp 1 -p 0 -n 16 -r 1 -t "$THREADS" 2>&1)
      rtps=$(echo "$rout" | awk -F'|' '/tg16/ {gsub(/ /, "", $(NF-1)); split($(NF-1), a, "±"); print a[1]}')
      echo "| reference llama-bench -mmp 1 (page cache), same RAM (rest locked), its own routing | ${rtps:-?} | - | - | - |"
      [ -z "$rtps" ] && echo "$rout" | tail -5 | sed 's/^/    /' >&2
      REF_HELD=${rtps:-0}
    fi
  fi
  kill $HOG; wait $HOG 2>/dev/null
fi
rm -f "$HOGLOG"
run mmap "mmap + page cache, all RAM free, uniform routing" 8 $U
echo
python3 - "$PAGER" "${MMAP_HELD:-0}" "$disk_gbs" "$exp_bytes" "$L" "$OWN" "${REF_HELD:-0}" <<'PY'
import sys
p, m, disk, expb, L = float(sys.argv[1] or 0), float(sys.argv[2] or 0), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
own, ref = float(sys.argv[6] or 0), float(sys.argv[7] or 0)
if ref > 0:
    print(f"pager (own routing) / reference mmap at the same RAM: {own/ref:.1f}x ({own} vs {ref} tok/s)")
per_expert = expb / (L * 256)
worst = 8 * L * per_expert / 1e9
print(f"pager / mmap at the same RAM, uniform routing: {p/m:.1f}x" if m > 0 else "mmap run did not finish")
print(f"I/O bound with no hits: <= {disk/worst:.2f} tok/s ({worst:.2f} GB of experts per token at {disk} GB/s)")
print(f"uniform routing scaled to 61 layers (58 MoE), assuming equal time per layer: ~{p*(3+L)/61:.3f} tok/s")
PY
