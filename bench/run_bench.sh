#!/bin/bash
# Runs every benchmark (bench/bench_*.sh and build/bench/bench_* binaries).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
for b in "$BUILD"/bench/bench_*; do [ -x "$b" ] && "$b"; done
for s in bench/bench_*.sh; do bash "$s"; done
