#!/bin/bash
# The front ends see only the public API: every file of src/cli/ and
# src/server/ held to the front-end include paths (make print-front) compiles
# with them alone, and a file there that includes an engine header
# (engine.h, forward.h, model.h, generate.h, ...) does not; the shared
# helpers of src/util/ (strbuf, request) are reachable.  The build uses
# the same paths, so such an include fails `make`.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd); T=${MOESTREAM_TMP:-/tmp}/front_boundary.$$
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
cd "$ROOT"
eval "$(make -s --no-print-directory print-front | sed "s/=\(.*\)/='\1'/")"
PK=$(pkg-config --cflags jansson libmicrohttpd readline libcurl 2>/dev/null)
check "some files are held to the boundary ($(echo $FRONT_CLEAN | wc -w))" "[ -n '$FRONT_CLEAN' ]"
for f in $FRONT_CLEAN; do
  case $f in src/server/*) incs=$SERVER_INCS;; *) incs=$CLI_INCS;; esac
  cc -std=c11 -D_GNU_SOURCE -fsyntax-only $incs $PK "$f" 2>"$T/err"
  check "$f compiles with $incs" "[ $? -eq 0 ] || { head -3 '$T/err'; false; }"
done
for h in engine.h forward.h model.h generate.h tokenizer.h chat.h sampler.h gguf.h kernels.h pager.h; do
  for d in cli server; do
    printf '#include "%s"\nint probe;\n' "$h" >"$T/probe.c"
    [ $d = cli ] && incs=$CLI_INCS || incs=$SERVER_INCS
    cc -std=c11 -fsyntax-only $incs "$T/probe.c" 2>/dev/null
    check "src/$d cannot include $h" "[ $? -ne 0 ]"
  done
done
printf '#include "moestream.h"\n#include "strbuf.h"\n#include "request.h"\nint probe;\n' >"$T/probe.c"
cc -std=c11 -fsyntax-only $CLI_INCS "$T/probe.c" 2>/dev/null
check "the public header and src/util/ are reachable (control)" "[ $? -eq 0 ]"
[ $fails -eq 0 ] && rm -rf "$T"
exit $fails
