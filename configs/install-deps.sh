#!/bin/sh
# Installs the Debian packages moestream needs; idempotent (an installed
# package is not touched, apt-get runs only for missing ones, as root or
# through sudo).
#   configs/install-deps.sh         building and running (make deps): compiler,
#                                 pkg-config and the libraries the binary links
#   configs/install-deps.sh --test  what `make test` needs on top (make test-deps):
#                                 cmocka, the aarch64 cross compiler and qemu
#                                 (NEON tests), clang with libFuzzer, curl, tmux,
#                                 python3, systemd-analyze, haproxy, node + npm
#                                 and the pinned openai npm client
# In --test mode a package that cannot be installed (no root and no sudo, no
# network, not in the archive) is reported and the tests that need it skip;
# with CI set that is an error, so CI never passes by skipping.
set -e
MODE=build
[ "${1:-}" = "--test" ] && MODE=test
if [ $MODE = build ]; then
  PKGS="build-essential pkg-config git \
    liburing-dev libopenblas-dev libhwloc-dev libreadline-dev libpcre2-dev \
    libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev"
else
  PKGS="libcmocka-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
    clang libclang-rt-14-dev curl tmux python3 systemd haproxy"
  # Node.js for the openai-client test: Debian's nodejs/npm only when no node is
  # installed (a nodesource node brings its own npm, which Debian's conflicts with).
  command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

# Fails (build mode, or CI) or warns (test mode): the affected tests skip.
problem() {
  if [ $MODE = build ] || [ -n "${CI:-}" ]; then echo "deps: $*" >&2; exit 1; fi
  echo "deps: $*; the tests that need it will be skipped" >&2
}

if [ -n "$missing" ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
  fi
  if [ "$SUDO" = none ]; then
    problem "cannot install$missing: not root and no sudo"
  else
    $SUDO apt-get update -qq || true
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing; then
      # one at a time, so one unavailable package does not block the rest
      for p in $missing; do
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$p" || problem "cannot install $p"
      done
    fi
  fi
fi
echo "deps ($MODE): packages checked"
[ $MODE = build ] && exit 0

# The official openai npm client (tests/serve_openai.sh), at the version
# tests/node/package-lock.json pins, into tests/node/node_modules (git-ignored).
# npm ci runs only when the installed version is not the locked one.
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if ! command -v npm >/dev/null 2>&1; then
  problem "npm missing, so the openai npm client is not installed"
  exit 0
fi
want=$(node -p "require('$NODE_DIR/package-lock.json').packages['node_modules/openai'].version")
have=$(node -p "try { require('$NODE_DIR/node_modules/openai/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
  (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    { problem "npm ci of the openai client failed"; exit 0; }
fi
echo "deps: openai npm client $want in tests/node"

# dockerfilelint for tests/dockerfile_lint_slow.sh (configs/Dockerfile; no Docker
# daemon is needed), pinned, into tests/node/tools (git-ignored).
DFL=1.8.0
if [ "$(node -p "try { require('$NODE_DIR/tools/node_modules/dockerfilelint/package.json').version } catch (e) { '' }")" != "$DFL" ]; then
  npm install --prefix "$NODE_DIR/tools" --no-audit --no-fund --loglevel=error "dockerfilelint@$DFL" >/dev/null ||
    problem "npm install of dockerfilelint failed"
fi
echo "deps: dockerfilelint $DFL in tests/node/tools"
