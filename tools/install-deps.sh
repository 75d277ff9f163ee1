#!/bin/sh
# Installs the Debian packages moestream builds, tests and benchmarks with.
# Idempotent: apt-get install of an installed package is a no-op.
set -e
PKGS="build-essential pkg-config git \
  liburing-dev libopenblas-dev libhwloc-dev libreadline-dev libpcre2-dev \
  libjansson-dev libmicrohttpd-dev libcmocka-dev \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
  clang libclang-rt-14-dev curl tmux python3"
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
