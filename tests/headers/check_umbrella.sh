#!/usr/bin/env bash
# The umbrella headers name every public header of their layer: fnat/core.hpp each fnat/core/*.hpp,
# fnat/dpdk.hpp fnat/core.hpp and each fnat/dpdk/*.hpp (detail/ excepted). A header added without
# its line fails here.
set -euo pipefail
inc=$1
fail=0
check() {
  local umbrella=$1 dir=$2 h
  for h in $(cd "$inc" && find "$dir" -maxdepth 1 -name '*.hpp' | sort); do
    if ! grep -qx "#include \"$h\"" "$inc/$umbrella"; then
      echo "FAIL: $umbrella does not include $h"
      fail=1
    fi
  done
}
check fnat/core.hpp fnat/core
check fnat/dpdk.hpp fnat/dpdk
grep -qx '#include "fnat/core.hpp"' "$inc/fnat/dpdk.hpp" || { echo "FAIL: fnat/dpdk.hpp does not include fnat/core.hpp"; fail=1; }
[ $fail = 0 ] && echo "umbrella headers complete"
exit $fail
