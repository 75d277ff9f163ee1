#!/bin/bash
# Reserved huge pages (io/hugemem.h): with vm.nr_hugepages set aside, the
# resident weights' arena and the expert pool land on them, -v says so, the
# logits are the golden ones bit for bit in RAM and pager modes, and the
# pages are free again after.  Without reserved pages the same run uses
# ordinary pages.  (That the peak RSS counts them: test_hugemem.)  The test reserves a few pages itself (root) and puts the
# old count back on exit.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
NR=/proc/sys/vm/nr_hugepages
[ -w "$NR" ] || ms_skip "cannot set $NR (needs root)"
grep -q '^Hugepagesize: *2048 kB' /proc/meminfo || ms_skip "huge page size is not 2 MiB"
T=${MOESTREAM_TMP:-/tmp}/hugepages.$$
mkdir -p "$T"
OLD=$(cat "$NR")
trap 'echo "$OLD" > "$NR"; rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
free_pages() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }

m=tiny-ud-iq1_s
M=$G/models/$m.gguf
prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('$G/logits/$m.json'))['prompt'])))")
ev() { # label mode
  rm -f "$T/$1.f32"
  "$BIN" eval -m "$M" --tokens "$prompt" --logits "$T/$1.f32" --load-mode "$2" -v >/dev/null 2>"$T/$1.err"
}

if [ "$OLD" = 0 ]; then
  ev plain ram; rc=$?
  check "no reserved pages: exit 0, golden logits" "[ $rc -eq 0 ] && cmp -s '$T/plain.f32' '$G/logits/$m.f32'"
  check "no reserved pages: -v says ordinary pages" "grep -q 'resident weights .*on ordinary pages' '$T/plain.err'"
else
  echo "ok: ($OLD pages were reserved already: the ordinary-page run is not tried)"
fi

# 64 pages (128 MiB): the tiny model's arena and pool need a few
echo $((OLD + 64)) > "$NR"
FREE0=$(free_pages) # the kernel may find fewer than asked
[ "$FREE0" -ge 8 ] || ms_skip "the kernel found no 8 free 2 MiB pages to reserve"
ev huge ram; rc=$?
check "reserved pages, RAM mode: exit 0, golden logits" "[ $rc -eq 0 ] && cmp -s '$T/huge.f32' '$G/logits/$m.f32'"
check "reserved pages: -v says the arena is on them" "grep -q 'resident weights .*on reserved huge pages' '$T/huge.err'"
ev hpager pager; rc=$?
check "reserved pages, pager mode: exit 0, golden logits" "[ $rc -eq 0 ] && cmp -s '$T/hpager.f32' '$G/logits/$m.f32'"
check "reserved pages, pager mode: the pool is on huge pages" "grep -q '^expert cache: .*huge pages' '$T/hpager.err'"
check "all reserved pages free again after the runs ($(free_pages) of $FREE0)" "[ $(free_pages) -eq $FREE0 ]"

[ $fails -eq 0 ] && echo "hugepages: all passed" || { echo "hugepages: $fails failed"; exit 1; }
