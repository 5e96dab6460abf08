#!/usr/bin/env bash
# Compiles each public header alone with the given compiler (-fsyntax-only, -Wall -Wextra -Werror).
# Core headers get no DPDK include path, so a stray DPDK include fails here.
set -euo pipefail
cxx=$1
inc=$2
fail=0
n=0
# DPDK include dirs as system headers, as CMake passes them: their own warnings are not ours.
dpdk_flags=$(pkg-config --cflags libdpdk | sed -e "s/-I/-isystem /g")
for h in $(cd "$inc" && find fnat -name '*.hpp' | sort); do
  extra=""
  case $h in fnat/core/* | fnat/core.hpp) ;; *) extra=$dpdk_flags ;; esac
  # shellcheck disable=SC2086
  if ! printf '#include <%s>\n#include <%s>\n' "$h" "$h" |
      "$cxx" -std=c++20 -Wall -Wextra -Werror -fsyntax-only -I"$inc" $extra -x c++ -; then
    echo "FAIL: $h does not compile on its own with $cxx"
    fail=1
  fi
  n=$((n + 1))
done
echo "$n headers checked with $cxx"
exit $fail
