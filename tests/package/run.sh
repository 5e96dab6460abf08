#!/usr/bin/env bash
# usage: run.sh MODE FNAT_SOURCE_DIR FNAT_BUILD_DIR CXX WITH_DPDK
# MODE: find_package | add_subdirectory | fetchcontent (the consumer project) | minimal_find_package
set -euo pipefail
mode=$1 src=$2 build=$3 cxx=$4 dpdk=$5
work=$(mktemp -d /tmp/fnat-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
args=(-DCMAKE_CXX_COMPILER="$cxx" -DCONSUMER_WITH_DPDK="$dpdk" -DFNAT_MODE="$mode")
if [ "$mode" = minimal_find_package ]; then
  # examples/minimal as an outside project builds it: its own CMakeLists.txt, find_package(fnat) from an
  # installed prefix, warnings as errors. Then it runs on two net_null ports (every frame they deliver
  # is garbage, so it counts drops) until SIGINT, and must exit 0 with its leak check clean.
  cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
  cmake -S "$src/examples/minimal" -B "$work/build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" > "$work/configure.log" ||
    { cat "$work/configure.log"; exit 1; }
  cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
  prefix=fnat-minimal-$$
  trap 'rm -rf "$work" "/var/run/dpdk/$prefix" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$prefix"' EXIT
  timeout --preserve-status --signal=INT 5 "$work/build/fnat_minimal" --no-huge --no-pci --no-shconf -m 256 \
    --file-prefix "$prefix" -l 0,1 --vdev net_null0 --vdev net_null1 --log-level lib.eal:warning -- \
    --vip 198.18.1.100:80 --vip '[2001:2:0:3::100]:80' --rs 198.18.2.11:8080 --rs '[2001:2:0:2::11]:8080' \
    --lip 198.18.2.100 --lip 2001:2:0:2::100 --client-gw 02:aa:00:00:00:01 --server-gw 02:bb:00:00:00:01 \
    --sessions 1024 | tee "$work/run.log"
  grep -q '^lcore 1: rx [1-9]' "$work/run.log"
  grep -q '^fnat_minimal: no leaks$' "$work/run.log"
  echo "package/$mode: OK"
  exit 0
fi
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
