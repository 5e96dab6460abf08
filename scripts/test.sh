#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 2: installs dependencies, then builds fnat three ways and runs the whole test suite:
#   build/release   g++ 12, RelWithDebInfo, -Wall -Wextra -Werror: every test
#   build/sanitize  clang 14, AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included):
#                   every test again
#   build/fuzz      clang 14 libFuzzer targets, each run for FNAT_FUZZ_SECONDS (default 60) over its
#                   checked-in corpus; any finding fails
# Usage: scripts/test.sh [--no-bootstrap] [--only release|sanitize|fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

bootstrap=1
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --no-bootstrap) bootstrap=0 ;;
    --only) only=$2; shift ;;
    *) echo "usage: $0 [--no-bootstrap] [--only release|sanitize|fuzz]" >&2; exit 2 ;;
  esac
  shift
done
[ $bootstrap = 1 ] && scripts/bootstrap.sh

jobs=$(nproc)
build_and_test() {
  local name=$1
  shift
  echo "=== fnat: $name build ==="
  cmake -S . -B "build/$name" "$@"
  cmake --build "build/$name" -j "$jobs"
  echo "=== fnat: $name tests ==="
  (cd "build/$name" && ctest -j "$jobs" --output-on-failure)
}

start=$(date +%s)
if [ -z "$only" ] || [ "$only" = release ]; then
  build_and_test release -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
if [ -z "$only" ] || [ "$only" = sanitize ]; then
  build_and_test sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_COMPILER=clang++-14 -DFNAT_SANITIZE=ON -DFNAT_BUILD_BENCH=OFF
fi
if [ -z "$only" ] || [ "$only" = fuzz ]; then
  echo "=== fnat: fuzz build ==="
  cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DFNAT_BUILD_FUZZ=ON -DFNAT_BUILD_TESTS=OFF -DFNAT_BUILD_BENCH=OFF -DFNAT_FUZZ_SECONDS="${FNAT_FUZZ_SECONDS:-60}"
  cmake --build build/fuzz -j "$jobs"
  echo "=== fnat: fuzzing (${FNAT_FUZZ_SECONDS:-60} s per target) ==="
  (cd build/fuzz/tests/fuzz && ctest -j "$jobs" --output-on-failure)
fi
echo "=== fnat: all tests passed in $(( $(date +%s) - start )) s ==="
