#!/bin/bash
# `moestream serve` driven by the official `openai` npm client (installed by
# `make deps` into tests/node/node_modules from tests/node/package-lock.json):
# models.list(), a non-streamed chat completion with consistent usage, a
# streamed one with stream_options.include_usage and delta.reasoning_content,
# AuthenticationError on a wrong key, BadRequestError on a bad request; at
# temperature 0 the streamed text equals the non-streamed text, and that text
# equals `moestream run --temp 0` (whose ids equal eval --greedy, run_cli.sh).
# A missing node or client skips (a failure when CI is set): make test-deps
# installs both.
set -u
. "$(dirname "$0")/lib/need.sh"
need_golden
need_tool curl python3 node
BIN=${MOESTREAM_BIN:?}; G=$MOESTREAM_GOLDEN; T=${MOESTREAM_TMP:-/tmp}/serve_openai.$$
HERE=$(cd "$(dirname "$0")" && pwd)
M="$G/models/tiny-ud-iq1_s.gguf"
[ -f "$HERE/node/node_modules/openai/package.json" ] ||
  ms_skip "the openai npm client is missing from tests/node (make test-deps installs it)"
mkdir -p "$T"; fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails+1)); fi; }
# a port the kernel just handed out, so parallel runs do not collide
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
"$BIN" serve -m "$M" --port "$PORT" --api-key sekret -c 512 >"$T/log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' $U/health)" = 200 ] || { echo "FAIL: server not up"; cat "$T/log"; exit 1; }
echo "openai client $(node -p "require('$HERE/node/node_modules/openai/package.json').version"), node $(node --version)"

# what run renders and generates for the same message, for the usage and text checks
"$BIN" run -m "$M" -p hello -n 16 --temp 0 2>"$T/run.err" |
  python3 -c "import sys;sys.stdout.write(sys.stdin.buffer.read().decode('utf-8','replace'))" >"$T/run.txt"
np=$(sed -n 's/.*| prompt \([0-9]*\) tokens.*/\1/p' "$T/run.err")
check "run reports its prompt length" "[ -n '$np' ]"

timeout 120 node "$HERE/node/serve_openai.mjs" "$U/v1" sekret "$(basename "$M")" "${np:-0}" "$T/client.txt"
rc=$?
check "the openai client checks pass (node exit $rc)" "[ $rc -eq 0 ]"
check "the client's temperature-0 reply equals run's (ids == eval --greedy)" "cmp -s '$T/client.txt' '$T/run.txt'"
kill $SRV; wait $SRV 2>/dev/null
[ $fails -eq 0 ]
