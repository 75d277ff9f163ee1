#!/bin/bash
# The resident weights' load (io/bulkread.c: O_DIRECT reads through the
# ring) under injected faults, through the CLI: an EIO during the load is a
# clear error naming the file and offset, exit 1, no crash and no output;
# short reads are continued and give the golden logits bit for bit, as do
# the pread path (MOESTREAM_NO_URING) and a model on tmpfs (buffered where
# the kernel refuses O_DIRECT there, before Linux 6.6); -v says how the
# weights were read.  MOESTREAM_LOAD_FAULT is the load's own variable, so
# the expert-read faults of other tests (MOESTREAM_FAULT) never hit it.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
T=${MOESTREAM_TMP:-/tmp}/load_fault.$$
mkdir -p "$T"
SHM=""
trap 'rm -rf "$T" $SHM' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }

for m in tiny-ud-iq1_s tiny-mix-mla; do
  M=$G/models/$m.gguf
  prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('$G/logits/$m.json'))['prompt'])))")
  ev() { "$BIN" eval -m "$1" --tokens "$prompt" --logits "$T/$m.f32" -v >"$T/out" 2>"$T/err"; }

  rm -f "$T/$m.f32"
  MOESTREAM_LOAD_FAULT=eio:3 ev "$M"; rc=$?
  check "$m: EIO in the load exits 1" "[ $rc -eq 1 ]"
  check "$m: the error names the load, the file and the offset" \
    "grep -q 'loading the resident weights: .*$m.gguf: read of [0-9]* bytes at offset [0-9]* failed: Input/output error' '$T/err'"
  check "$m: no logits after a failed load" "[ ! -s '$T/$m.f32' ] && [ ! -s '$T/out' ]"
  MOESTREAM_LOAD_FAULT=eio:1:1 ev "$M"; rc=$?
  check "$m: EIO on the first read exits 1" "[ $rc -eq 1 ] && grep -q 'Input/output error' '$T/err'"

  MOESTREAM_LOAD_FAULT=short:2 ev "$M"; rc=$?
  check "$m: short reads continued: exit 0" "[ $rc -eq 0 ]"
  check "$m: short reads: golden logits bit for bit" "cmp -s '$T/$m.f32' '$G/logits/$m.f32'"

  MOESTREAM_FAULT=eio:1 ev "$M" 2>/dev/null; rc=$?
  check "$m: MOESTREAM_FAULT (expert reads) does not touch the load" "[ $rc -eq 0 ] && cmp -s '$T/$m.f32' '$G/logits/$m.f32'"
  check "$m: -v says how the resident weights were read" \
    "grep -q 'resident weights [0-9.]* GiB read in .*io_uring' '$T/err'"

  MOESTREAM_NO_URING=1 ev "$M"; rc=$?
  check "$m: pread path: golden logits" "[ $rc -eq 0 ] && cmp -s '$T/$m.f32' '$G/logits/$m.f32'"
  check "$m: pread path is said under -v" "grep -q 'resident weights .*pread' '$T/err'"
done

# tmpfs: O_DIRECT before Linux 6.6 is refused, and the load goes buffered
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  SHM=/dev/shm/load_fault.$$.gguf
  cp "$G/models/tiny-ud-iq1_s.gguf" "$SHM"
  m=tiny-ud-iq1_s
  prompt=$(python3 -c "import json;print(' '.join(map(str,json.load(open('$G/logits/$m.json'))['prompt'])))")
  "$BIN" eval -m "$SHM" --tokens "$prompt" --logits "$T/shm.f32" -v >/dev/null 2>"$T/err"; rc=$?
  check "tmpfs: golden logits" "[ $rc -eq 0 ] && cmp -s '$T/shm.f32' '$G/logits/$m.f32'"
  check "tmpfs: -v names the path (O_DIRECT, or buffered where refused)" \
    "grep -Eq 'resident weights .*(io_uring \+ O_DIRECT|buffered \(O_DIRECT refused)' '$T/err'"
else
  echo "ok: (no tmpfs at /dev/shm: buffered path not tried)"
fi

[ $fails -eq 0 ] && echo "load_fault: all passed" || { echo "load_fault: $fails failed"; exit 1; }
