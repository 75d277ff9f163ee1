#!/bin/bash
# simd/ has no include cycle and no link cycle: dependencies point one way
# (quant_* traits and reference <- kern_scalar <- kern_<isa> <- kern_dispatch).
# Include graph: a file x.c and its header x.h are one node; an edge for
# every #include "y.h" of simd/.  Link graph: an edge from each object of
# $BUILD/simd to every simd object defining a symbol it leaves undefined.
# tsort rejects either graph if it has a loop; the order is printed.
set -u
cd "$(dirname "$0")/.."
. tests/lib/need.sh
need_tool nm tsort join
B=$(dirname "${MOESTREAM_BIN:?}")/simd
fails=0

inc=$(mktemp)
for f in simd/*.c simd/*.h; do
  from=$(basename "$f"); from=${from%.*}
  echo "$from $from" >> "$inc"
  for h in $(sed -n 's/^#include "\([^"]*\)\.h".*/\1/p' "$f"); do
    [ -f "simd/$h.h" ] && [ "$h" != "$from" ] && echo "$h $from" >> "$inc"
  done
done
if order=$(tsort "$inc" 2>&1) && ! grep -q loop <<<"$order"; then
  echo "MEASURE simd layers: include graph acyclic: $(echo $order)"
else
  echo "FAIL: include cycle in simd/:"; echo "$order" | grep -i -A20 loop; fails=1
fi

lnk=$(mktemp) defs=$(mktemp)
objs=$(ls "$B"/*.o 2>/dev/null)
[ -n "$objs" ] || { echo "FAIL: no objects in $B"; exit 1; }
for o in $objs; do
  n=$(basename "$o" .o)
  nm --defined-only -g "$o" | awk -v n="$n" 'NF==3 {print $3, n}' >> "$defs"
done
for o in $objs; do
  n=$(basename "$o" .o)
  echo "$n $n" >> "$lnk"
  nm -u "$o" | awk '{print $NF}' | sort -u | join - <(sort -u "$defs") | \
    awk -v n="$n" '$2 != n {print $2, n}' >> "$lnk"
done
if order=$(tsort "$lnk" 2>&1) && ! grep -q loop <<<"$order"; then
  echo "MEASURE simd layers: link graph acyclic ($(awk '$1 != $2' "$lnk" | sort -u | wc -l) edges): $(echo $order)"
else
  echo "FAIL: link cycle between simd/ objects:"; echo "$order" | grep -i -A20 loop
  awk '$1 != $2 {print "  " $2 " calls " $1}' "$lnk" | sort -u; fails=1
fi
rm -f "$inc" "$lnk" "$defs"
[ $fails -eq 0 ]
