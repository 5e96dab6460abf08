#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 2: installs dependencies, then builds fnat twice and runs the whole test suite in both:
#   build/release   g++ 12, RelWithDebInfo, -Wall -Wextra -Werror
#   build/sanitize  clang 14, AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included)
# Usage: scripts/test.sh [--no-bootstrap] [--only release|sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

bootstrap=1
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --no-bootstrap) bootstrap=0 ;;
    --only) only=$2; shift ;;
    *) echo "usage: $0 [--no-bootstrap] [--only release|sanitize]" >&2; exit 2 ;;
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
echo "=== fnat: all tests passed in $(( $(date +%s) - start )) s ==="
