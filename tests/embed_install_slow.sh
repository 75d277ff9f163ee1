#!/bin/bash
# `make install` and a program embedding the installed library: install to a
# temporary PREFIX, check the files and that libmoestream.so exports only
# ms_* symbols, build tests/embed_example.c (copied out of the tree) with nothing
# but `pkg-config --cflags --libs moestream` from that PREFIX, against the
# shared and then the static library, run it on a golden model and compare
# its greedy text and ids with the installed `moestream run --temp 0`.
# Slow-named so the sanitizer runs skip it: there the build directory holds
# sanitizer objects, which a program linked from pkg-config alone cannot load.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden models/tiny-mix-mla.gguf
BIN=${MOESTREAM_BIN:?}; G=${MOESTREAM_GOLDEN:?}; T=${MOESTREAM_TMP:-/tmp}/embed_install.$$
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath --relative-to="$ROOT" "$(dirname "$BIN")")
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
P="$T/prefix"
M="$G/models/tiny-mix-mla.gguf"

make -C "$ROOT" --no-print-directory BUILD="$BUILD" PREFIX="$P" install >"$T/install.log" 2>&1
check "make install exits 0" "[ $? -eq 0 ] || { cat '$T/install.log'; false; }"
for f in bin/moestream lib/libmoestream.a lib/libmoestream.so lib/libmoestream.so.0 \
         include/moestream.h lib/pkgconfig/moestream.pc share/moestream/configs/edge-server.conf; do
  check "installed $f" "[ -e '$P/$f' ]"
done
check "soname libmoestream.so.0" "readelf -d '$P/lib/libmoestream.so' | grep -q 'SONAME.*libmoestream.so.0'"
nm -D --defined-only "$P/lib/libmoestream.so" | awk '{print $3}' >"$T/syms"
check "exports the API ($(wc -l <"$T/syms") symbols)" "grep -qx ms_engine_open '$T/syms' && grep -qx ms_generate '$T/syms'"
check "exports only ms_* ($(grep -v '^ms_' "$T/syms" | head -3 | paste -sd' '))" "! grep -qv '^ms_' '$T/syms'"
check "pc file has Libs.private" "grep -q '^Libs.private: .*-luring' '$P/lib/pkgconfig/moestream.pc'"

# the program sees the installed prefix only: a clean environment, its own
# copy of the source, no flag naming the source tree
mkdir -p "$T/app"; cp "$ROOT/tests/embed_example.c" "$T/app/embed.c"
cd "$T/app"
flags=$(env -i PATH=/usr/bin:/bin PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs moestream)
check "pkg-config flags name the prefix, not the tree ($flags)" "[[ '$flags' == *'$P/lib'* ]] && [[ '$flags' != *'$ROOT'* ]]"
env -i PATH=/usr/bin:/bin cc -std=c11 -Wall -Wextra -Werror embed.c $flags -o embed 2>"$T/cc.log"
check "builds against the installed shared library" "[ -x embed ] || { cat '$T/cc.log'; false; }"
sflags=$(env -i PATH=/usr/bin:/bin PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --static --libs moestream | sed 's/-lmoestream/-l:libmoestream.a/')
env -i PATH=/usr/bin:/bin cc -std=c11 -Wall -Wextra -Werror embed.c \
  $(env -i PATH=/usr/bin:/bin PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags moestream) $sflags -o embed_static 2>"$T/cc2.log"
check "builds against the installed static library (Libs.private)" "[ -x embed_static ] || { cat '$T/cc2.log'; false; }"
check "the shared build loads the installed library" \
  "LD_LIBRARY_PATH='$P/lib' ldd ./embed | grep -q '$P/lib/libmoestream.so.0'"

LD_LIBRARY_PATH="$P/lib" ./embed "$M" "hello" 16 >"$T/e.out" 2>"$T/e.err"
check "embed runs (rc 0)" "[ $? -eq 0 ] || { cat '$T/e.err'; false; }"
./embed_static "$M" "hello" 16 >"$T/s.out" 2>"$T/s.err"
check "static embed runs" "[ $? -eq 0 ] || { cat '$T/s.err'; false; }"
"$P/bin/moestream" run -m "$M" -p "hello" -n 16 --temp 0 --ids >"$T/r.out" 2>"$T/r.err"
got=$(sed -n 's/^generated ids: *//p' "$T/e.err" | tr -s ' ' ',')
want=$(grep -o '\[[0-9]*\]' "$T/r.err" | tr -d '[]' | paste -sd, -)
check "embed greedy ids equal moestream run's ($got)" "[ -n '$got' ] && [ '$got' = '$want' ]"
check "embed text equals moestream run's" "cmp -s '$T/e.out' '$T/r.out'"
check "static and shared builds agree" "cmp -s '$T/e.out' '$T/s.out'"
# the installed binary finds its profiles under PREFIX/share/moestream
(cd "$T" && env -u MOESTREAM_CONFIG_DIR "$P/bin/moestream" inspect -m "$M" --config edge-server >"$T/i.out" 2>&1)
check "installed binary finds --config profiles" "[ $? -eq 0 ]"

[ $fails -eq 0 ] && rm -rf "$T"
exit $fails
