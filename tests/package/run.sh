#!/usr/bin/env bash
# usage: run.sh MODE FNAT_SOURCE_DIR FNAT_BUILD_DIR CXX WITH_DPDK
set -euo pipefail
mode=$1 src=$2 build=$3 cxx=$4 dpdk=$5
work=$(mktemp -d /tmp/fnat-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
args=(-DCMAKE_CXX_COMPILER="$cxx" -DCONSUMER_WITH_DPDK="$dpdk" -DFNAT_MODE="$mode")
case $mode in
  find_package)
    cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
    test -f "$work/prefix/share/cmake/fnat/fnatConfig.cmake"
    test -f "$work/prefix/include/fnat/core/port_plan.hpp"
    args+=(-DCMAKE_PREFIX_PATH="$work/prefix") ;;
  add_subdirectory|fetchcontent)
    args+=(-DFNAT_SOURCE_DIR="$src") ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
cmake -S "$src/tests/package/consumer" -B "$work/build" "${args[@]}" > "$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# A subproject must not build fnat's tests, benchmarks or examples.
if find "$work/build" -type f \( -name 'unit_*' -o -name '*_bench' -o -name 'fnat_lb' \) | grep -q .; then
  echo "fnat built its own tests, benchmarks or examples as a subproject"; exit 1
fi
"$work/build/consumer"
echo "package/$mode: OK"
