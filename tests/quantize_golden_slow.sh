#!/bin/bash
# Every output of ../shared/golden/quantize/hashes.json (19 types --pure with
# the importance matrix, 9 without it, the UD-IQ1_S recipe), made with the
# reference's arguments (README there), must equal the reference's in every
# tensor's type and sha256.  Several minutes on two cores: the i-quants'
# searches are the reference's, and as slow.
set -u
BIN=${MOESTREAM_BIN:?}
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool python3
G=$MOESTREAM_GOLDEN
Q=$G/quantize
M=$G/models/tiny-f32-legacy.gguf
HERE=$(cd "$(dirname "$0")" && pwd)
T=${MOESTREAM_TMP:-/tmp}/quantize_golden.$$
mkdir -p "$T"
fails=0 n=0
for out in $(python3 -c "import json;print(' '.join(sorted(json.load(open('$Q/hashes.json')))))"); do
  stem=${out%.gguf} type=${stem#*-}
  case $stem in
    pure-*) args="--pure --imatrix $Q/tiny-f32-legacy.imatrix.gguf --token-embedding-type q4_K --type $type";;
    noimat-*) args="--pure --type $type";;
    ud-iq1_s) args="--imatrix $Q/tiny-f32-legacy.imatrix.gguf --tensor-type-file $Q/ud-iq1_s.tensor-types.txt --type IQ1_S";;
    *) echo "FAIL: no arguments known for $out"; fails=$((fails+1)); continue;;
  esac
  n=$((n+1))
  if ! "$BIN" quantize -m "$M" -o "$T/$out" $args 2>"$T/log"; then
    echo "FAIL: $stem: $(tail -1 "$T/log")"; fails=$((fails+1)); continue
  fi
  if python3 "$HERE/lib/gguf_hashes.py" "$T/$out" --compare "$Q/hashes.json" "$out" >"$T/cmp"; then
    echo "ok: $(tail -1 "$T/cmp")"
  else
    cat "$T/cmp"; echo "FAIL: $stem"; fails=$((fails+1))
  fi
  rm -f "$T/$out"
done
rm -rf "$T"
echo "quantize_golden: $n outputs, $fails failed"
[ $fails -eq 0 ] && [ $n -ge 29 ]
