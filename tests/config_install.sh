#!/bin/bash
# Named --config profiles are found after an install as well as in the
# source tree: $MOESTREAM_CONFIG_DIR, configs/ beside the binary,
# PREFIX/share/moestream/configs for PREFIX/bin/moestream, then ./configs;
# a missing one names every place it looked.  A tiny synthetic model, so no
# golden set is needed.
set -u
BIN=${MOESTREAM_BIN:?}; T=${MOESTREAM_TMP:-/tmp}/config_install.$$
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$T/prefix/bin" "$T/prefix/share/moestream/configs" "$T/cwd/configs" "$T/env" "$T/elsewhere"
trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
M="$T/tiny.gguf"
"$BIN" synth --tiny -o "$M" >/dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
cp "$BIN" "$T/prefix/bin/moestream"
cp "$HERE/configs/"*.conf "$T/prefix/share/moestream/configs/"
I="$T/prefix/bin/moestream"
budget() { (cd "$1" && shift && "$@" 2>&1 | sed -n 's/^memory plan (--mem \([0-9.]* GiB\)).*/\1/p'); }

check "installed binary finds PREFIX/share/moestream/configs/edge-server.conf (24 GiB)" \
  '[ "$(budget "$T/elsewhere" "$I" inspect -m "$M" --config edge-server)" = "24.00 GiB" ]'
printf 'mem = 3G\n' > "$T/cwd/configs/mine.conf"
check "./configs/NAME.conf from the current directory" \
  '[ "$(budget "$T/cwd" "$I" inspect -m "$M" --config mine)" = "3.00 GiB" ]'
printf 'mem = 5G\n' > "$T/env/edge-server.conf"
check "MOESTREAM_CONFIG_DIR comes first" \
  '[ "$(budget "$T/elsewhere" env MOESTREAM_CONFIG_DIR="$T/env" "$I" inspect -m "$M" --config edge-server)" = "5.00 GiB" ]'
rm "$T/prefix/share/moestream/configs/edge-server.conf"
out=$(cd "$T/elsewhere" && "$I" inspect -m "$M" --config edge-server 2>&1); rc=$?
check "a missing profile: exit 2, every place named" \
  '[ $rc -eq 2 ] && echo "$out" | grep -q "PREFIX/share/moestream/configs" && echo "$out" | grep -q "./configs"'
[ $fails -eq 0 ]
