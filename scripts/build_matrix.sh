#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Compiles everything fnat builds (tests, benchmarks, examples, fuzz-free) in every CMake build type
# with g++ 12 and clang 14, with -Werror, into build/matrix/<compiler>-<type>. Nothing runs: this is
# the check that no build type a user may pick warns. scripts/test.sh covers g++ Release, clang
# Release and clang RelWithDebInfo (the sanitizer build) on every CI run; this script the rest.
# Usage: scripts/build_matrix.sh [TYPE...]   (default: Debug Release RelWithDebInfo MinSizeRel)
set -euo pipefail
cd "$(dirname "$0")/.."
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Debug Release RelWithDebInfo MinSizeRel)
failed=()
mkdir -p build/matrix
for cxx in g++ clang++-14; do
  for type in "${types[@]}"; do
    dir=build/matrix/${cxx%%-*}-$type
    echo "=== build_matrix: $cxx $type -> $dir ==="
    if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_COMPILER="$cxx" -DFNAT_WERROR=ON >"$dir.log" 2>&1 &&
      cmake --build "$dir" -j "$(nproc)" >>"$dir.log" 2>&1; then
      echo "    ok"
    else
      grep -E 'error|warning' "$dir.log" | head -n 20
      failed+=("$cxx-$type")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "build_matrix: FAILED: ${failed[*]} (logs: build/matrix/*.log)" >&2
  exit 1
fi
echo "build_matrix: every build type compiles warning-free with g++ and clang"
