#!/bin/bash
# configs/moestream.bash-completion sourced in bash: the first word completes
# to commands, options complete from the binary's own table per command,
# values of --cache-type and --config complete to the accepted ones, and -m
# completes file names.
set -u
BIN=${MOESTREAM_BIN:?}; T=${MOESTREAM_TMP:-/tmp}/completion.$$
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
# shellcheck disable=SC1091
. "$HERE/configs/moestream.bash-completion" || { echo "FAIL: sourcing the completion"; exit 1; }
complete -p moestream >/dev/null 2>&1 || { echo "FAIL: no completion registered for moestream"; exit 1; }
comp() {  # words... (the last one is being completed)
  COMP_WORDS=("$BIN" "$@"); COMP_CWORD=$#; COMPREPLY=()
  _moestream
  printf '%s\n' "${COMPREPLY[@]}"
}
check "moestream s<TAB> -> serve synth" '[ "$(comp s | sort | tr "\n" " ")" = "serve synth " ]'
check "moestream serve --p<TAB> -> --parallel --port" '[ "$(comp serve --p | sort | tr "\n" " ")" = "--parallel --port " ]'
check "moestream run --n-<TAB> has --n-predict; run --p<TAB> has no --port" \
  'r=$(comp run --n-); echo "$r" | grep -qx -- --n-predict && ! comp run --p | grep -qx -- --port'
check "moestream run --cache-type q<TAB> -> q4_0 q8_0" '[ "$(comp run --cache-type q | sort | tr "\n" " ")" = "q4_0 q8_0 " ]'
check "moestream chat --config l<TAB> -> laptop-20g" '[ "$(comp chat --config l)" = "laptop-20g" ]'
touch "$T/model-00001-of-00003.gguf"
check "moestream run -m <dir>/mod<TAB> completes the file" '[ "$(comp run -m "$T/mod")" = "$T/model-00001-of-00003.gguf" ]'
[ $fails -eq 0 ]
