#!/bin/bash
# Start-up time (issue 18, item 7): "loaded in" and time to first token of
# two binaries (OLD, NEW) on one model, with a cold page cache (dropped
# before each run) and a warm one (the same run repeated at once), in
# interleaved rounds, next to the two limits of a cold load on this kind of
# machine:
#   - the disk: fio O_DIRECT sequential reads of LOAD_BS (the loader's read
#     size) at LOAD_QD in flight over the model file;
#   - fresh memory: how fast the kernel (and, in a VM, the host) hands out
#     never-touched pages (a mapping of RES_GIB with MADV_HUGEPAGE, touched
#     once per 4 KiB; bench/touch_mem.c, built here into $TMPDIR).
# Each run: `eval -m MODEL --tokens 1 --greedy 1 --mem MEM -c CTX -v` (a
# one-token prompt: its logits are the first token);
# reported: resident read (NEW), loaded in, prompt, time to first token,
# peak RSS.  Nothing is written into the repository.  Environment:
#   OLD, NEW       binaries (default ./build-old/moestream, ./build/moestream)
#   MODEL          the model file (required)
#   MEM, CTX       budget and context (20G, 4096)
#   ROUNDS         interleaved rounds (2)
#   LOAD_BS, LOAD_QD  fio read size and depth (4m, 32: io/bulkread.c's defaults)
#   FIO_SECONDS    fio run time (15)
#   OLD=""         the NEW binary alone
#   HUGE_PAGES=N   sets N 2 MiB pages aside (vm.nr_hugepages, root) for the
#                  runs and puts the old count back after: the resident
#                  arena lands on them when N covers it (io/hugemem.h); the
#                  first run after the reservation pays their first touch,
#                  later ones reuse them.  Peak RSS is -v's (it counts them;
#                  the rusage maximum does not).
set -u
OLD=${OLD-./build-old/moestream}
NEW=${NEW:-./build/moestream}
M=${MODEL:?MODEL=the model file}
MEM=${MEM:-20G}
CTX=${CTX:-4096}
ROUNDS=${ROUNDS:-2}
BS=${LOAD_BS:-4m}
QD=${LOAD_QD:-32}
FS=${FIO_SECONDS:-15}
T=${TMPDIR:-/tmp}/bench_load.$$
mkdir -p "$T"
NR_OLD=$(cat /proc/sys/vm/nr_hugepages)
trap 'rm -rf "$T"; [ -n "${HUGE_PAGES:-}" ] && echo "$NR_OLD" > /proc/sys/vm/nr_hugepages' EXIT
if [ -n "${HUGE_PAGES:-}" ]; then
  echo "$HUGE_PAGES" > /proc/sys/vm/nr_hugepages || { echo "bench_load: cannot set vm.nr_hugepages (root?)"; exit 1; }
  echo "reserved huge pages: $(awk '/^HugePages_Total/ {print $2}' /proc/meminfo) of $HUGE_PAGES asked (2 MiB each)"
fi
command -v fio >/dev/null || { echo "bench_load: fio missing (configs/install-deps.sh --test)"; exit 1; }
for b in $OLD "$NEW"; do [ -x "$b" ] || { echo "bench_load: no binary $b"; exit 1; }; done

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $(nproc) cores"
echo "model: $M ($(du -h --apparent-size "$M" | cut -f1))"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "  (cannot drop caches: not root)"; }
load() { uptime | sed 's/.*load average: //'; }

limits() {
  drop
  local j
  j=$(fio --name=load-reads --filename="$M" --readonly --direct=1 --ioengine=io_uring --rw=read \
      --bs="$BS" --iodepth="$QD" --runtime="$FS" --time_based --output-format=json 2>/dev/null)
  D=$(echo "$j" | python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['read']; print(round(j['bw_bytes']/2**30,3))")
  echo "  disk: fio O_DIRECT sequential read bs=$BS iodepth=$QD ${FS}s: $D GiB/s (load $(load))"
  cc -O2 -o "$T/touch" "$(dirname "$0")/touch_mem.c" 2>/dev/null && sleep 3 && \
    echo "  fresh memory: $("$T/touch" "${RES_GIB:-4}") (load $(load))"
}

run() { # label binary
  local o="$T/out"
  /usr/bin/time -f "%M" "$2" eval -m "$M" --tokens 1 --greedy 1 --mem "$MEM" -c "$CTX" -v >/dev/null 2>"$o"
  local rr li tt pr rss
  rr=$(grep -o "resident weights [0-9.]* GiB read in [0-9.]* s ([0-9.]* GiB/s" "$o" | sed 's/resident weights //')
  li=$(grep -o "loaded in [0-9.]* s" "$o" | grep -o "[0-9.]*")
  pr=$(grep -o "prompt [0-9]* tokens* in [0-9.]* s" "$o" | grep -o "[0-9.]* s$" | tr -d ' s')
  rss=$(tail -1 "$o")
  local vr
  vr=$(sed -n 's/^peak RSS \([0-9.]*\) GiB.*/\1/p' "$o")
  [ -n "$vr" ] && rss=$(python3 -c "print(int($vr * 1048576))")
  tt=$(python3 -c "print(round($li + $pr, 2))" 2>/dev/null)
  printf "| %s | %s | %s | %s | %s | %s | %.2f | %s |\n" "$r" "$1" "${rr:--}" "$li" "$pr" "$tt" \
    "$(python3 -c "print($rss/1048576)")" "$(load)"
  grep -q "loaded in" "$o" || { echo "run failed:"; tail -5 "$o"; }
}

echo "limits before:"; limits
echo
echo "| round | run | resident read (NEW: GiB in s, GiB/s) | loaded in s | prompt s | first token s | peak RSS GiB | load avg after |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  if [ -z "$OLD" ]; then order="NEW"; elif [ $((r % 2)) = 1 ]; then order="OLD NEW"; else order="NEW OLD"; fi
  for w in $order; do
    b=$OLD; [ $w = NEW ] && b=$NEW
    drop; run "$w cold" "$b"
    run "$w warm" "$b"
  done
done
echo
echo "limits after:"; limits
