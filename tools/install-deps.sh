#!/bin/sh
# Installs the Debian packages moestream builds, tests and benchmarks with.
# Idempotent: apt-get install of an installed package is a no-op.
set -e
PKGS="build-essential pkg-config git \
  liburing-dev libopenblas-dev libhwloc-dev libreadline-dev libpcre2-dev \
  libjansson-dev libmicrohttpd-dev libcmocka-dev \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
  clang libclang-rt-14-dev curl tmux python3"
# Node.js for the openai-client test: Debian's nodejs/npm only when no node is
# installed (a nodesource node brings its own npm, which Debian's conflicts with).
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
echo "deps: all packages present"

# The official openai npm client (tests/serve_openai.sh), at the version
# tests/node/package-lock.json pins, into tests/node/node_modules (git-ignored).
# npm ci runs only when the installed version is not the locked one.
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
command -v npm >/dev/null 2>&1 || { echo "deps: node is installed without npm; install npm" >&2; exit 1; }
want=$(node -p "require('$NODE_DIR/package-lock.json').packages['node_modules/openai'].version")
have=$(node -p "try { require('$NODE_DIR/node_modules/openai/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
  (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "deps: openai npm client $want in tests/node"
