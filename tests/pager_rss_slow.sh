#!/bin/bash
# The memory budget is a contract: eval on a full-width synthetic R1 model
# (3 dense + 2 MoE layers, 7.3 GB) under --mem 6G pages its experts and the
# peak resident set measured by the kernel (VmHWM) stays within the budget
# plus 2% slack.
set -u
BIN=${MOESTREAM_BIN:?}; T=${MOESTREAM_TMP:-/tmp}
avail=$(df -k --output=avail "$T" | tail -1)
if [ "$avail" -lt 9000000 ]; then echo "FAIL: need 9 GB free in $T for the synthetic model"; exit 1; fi
M="$T/rss-r1-2moe.gguf"
"$BIN" synth -o "$M" --moe-layers 2 2>/dev/null || { echo "FAIL: synth"; exit 1; }
out=$("$BIN" eval -m "$M" --tokens "0 100 200 300" --greedy 2 --mem 6G -v 2>&1)
rc=$?
rm -f "$M"
echo "$out" | grep -E "memory plan|expert cache|peak RSS" | sed 's/^/  /'
[ $rc -eq 0 ] || { echo "FAIL: eval exit $rc"; exit 1; }
echo "$out" | grep -q "paged (io_uring pool)\|expert pool" || { echo "FAIL: experts were not paged"; exit 1; }
peak=$(echo "$out" | sed -n 's/^peak RSS \([0-9.]*\) GiB.*/\1/p')
budget=$(echo "$out" | sed -n 's/^peak RSS [0-9.]* GiB (budget \([0-9.]*\) GiB).*/\1/p')
echo "MEASURE peak RSS ${peak} GiB under --mem 6G (${budget} GiB)"
python3 -c "import sys; sys.exit(0 if float('$peak') <= float('$budget') * 1.02 else 1)" || { echo "FAIL: over budget"; exit 1; }
echo ok
