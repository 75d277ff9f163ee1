#!/bin/bash
# configs/Dockerfile (named _slow: a check of files, not of the binary, so the
# sanitizer passes skip it): dockerfilelint finds no issue, the image is Debian 12,
# and its runtime stage installs the package of every shared library the
# built binary links (so the image runs what it built).  No Docker daemon
# here: the image itself is not built by the tests.
set -u
. "$(dirname "$0")/lib/need.sh"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MOESTREAM_BIN:?}
DFL="$HERE/tests/node/tools/node_modules/.bin/dockerfilelint"
[ -x "$DFL" ] || DFL=$(command -v dockerfilelint) || ms_skip "dockerfilelint not installed (make test-deps installs it)"
need_tool dpkg-query ldd
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
D="$HERE/configs/Dockerfile"
out=$("$DFL" "$D" 2>&1); rc=$?
check "dockerfilelint: no issues (rc=$rc)" '[ $rc -eq 0 ] && echo "$out" | grep -q "Issues: None found"'
check "both stages FROM debian:12" '[ "$(grep -c "^FROM debian:12" "$D")" -eq 2 ]'
check "it runs serve" 'grep -q "ENTRYPOINT \[\"/usr/local/bin/moestream\", \"serve\"" "$D"'
runtime=$(sed -n '/^FROM debian:12-slim$/,$p' "$D" | tail -n +2)
missing=""
for lib in liburing libopenblas libhwloc libreadline libpcre2-8 libjansson libmicrohttpd; do
  f=$(ldd "$BIN" | awk -v l="$lib" 'index($1, l) == 1 {print $3; exit}')
  [ -n "$f" ] || { missing="$missing $lib(not linked?)"; continue; }
  pkg=$(dpkg -S "$(readlink -f "$f")" 2>/dev/null | head -1 | cut -d: -f1)
  echo "$runtime" | grep -qw -- "$pkg" || missing="$missing $pkg"
done
check "the runtime stage installs the packages of the linked libraries${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
[ $fails -eq 0 ]
