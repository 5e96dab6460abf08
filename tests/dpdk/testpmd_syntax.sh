#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The testpmd syntax fnat prints (flow_rule::to_testpmd) is what dpdk-testpmd's parser accepts.
#
# usage: testpmd_syntax.sh <testpmd_rules binary>
#
# The binary prints "OK <flow validate ...>" for every rule shape fnat builds and "BAD <...>" for
# malformed copies. Each command goes to dpdk-testpmd (--cmdline-file) on a net_null port, between
# two marker commands ("set verbose N", which testpmd answers "Change verbose level from A to N").
# net_null has no rte_flow, so a command the parser accepts reaches the PMD and is answered "Function
# not implemented"; a malformed one is rejected by the parser and never gets that far. So: every OK
# command must get exactly one such answer before the next marker, every BAD command none.
# Exit 0: all as expected; 1: a mismatch or testpmd failure; 77: dpdk-testpmd not installed (skip).
set -euo pipefail

rules_bin=${1:?usage: $0 <testpmd_rules binary>}
testpmd=$(command -v dpdk-testpmd || true)
if [[ -z $testpmd ]]; then
  echo "dpdk-testpmd not found (Debian package dpdk); skipped"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work" "/var/run/dpdk/fnat-testpmd-$$"' EXIT  # EAL's runtime dir too

"$rules_bin" >"$work/rules.txt"
n=$(wc -l <"$work/rules.txt")
if ((n == 0)); then
  echo "FAIL: $rules_bin printed no rule"
  exit 1
fi

# Command file: marker k (verbose 1000+k) before command k; a final marker closes the last one.
{
  k=0
  while IFS= read -r line; do
    echo "set verbose $((1000 + k))"
    echo "${line#* }"
    k=$((k + 1))
  done <"$work/rules.txt"
  echo "set verbose $((1000 + k))"
  echo "set verbose 0"
} >"$work/cmds.txt"

# stdbuf: testpmd prints the marker to stdout and the PMD's answer to stderr; unbuffered, both land in
# the log in the order they happened. stdin is /dev/null so the interactive prompt ends at once.
rc=0
timeout 240 stdbuf -o0 -e0 "$testpmd" --no-huge -m 1024 --no-pci --no-shconf -l 0-1 \
  --vdev net_null0 --file-prefix "fnat-testpmd-$$" --log-level "lib.eal:error" -- \
  -i --total-num-mbufs=4096 --rxq=4 --txq=4 --cmdline-file="$work/cmds.txt" \
  </dev/null >"$work/log.txt" 2>&1 || rc=$?
if ((rc != 0)); then
  echo "FAIL: dpdk-testpmd exited with $rc; its log:"
  tail -n 40 "$work/log.txt"
  exit 1
fi

# Answers per command: the count of "Function not implemented" lines after marker k, checked against
# what each command is (OK: exactly one answer; BAD: none). Every marker must have been seen.
awk -v n="$n" -v rules="$work/rules.txt" '
  /Change verbose level from [0-9]+ to [0-9]+/ {
    to = $NF + 0
    if (to >= 1000) { cur = to - 1000; seen[cur] = 1 } else { cur = -1 }
    next
  }
  /Function not implemented/ { if (cur >= 0) hits[cur]++ }
  END {
    for (k = 0; k <= n; k++)
      if (!(k in seen)) { printf "FAIL: testpmd did not process command %d and later (marker missing)\n", k; exit 1 }
    fail = 0; ok = 0; bad = 0; k = 0
    while ((getline line < rules) > 0) {
      sp = index(line, " "); kind = substr(line, 1, sp - 1); cmd = substr(line, sp + 1); h = hits[k] + 0
      if (kind == "OK") {
        ok++
        if (h != 1) { printf "FAIL: testpmd did not pass this rule to the PMD (%d answers): %s\n", h, cmd; fail = 1 }
      } else {
        bad++
        if (h != 0) { printf "FAIL: testpmd accepted a malformed rule: %s\n", cmd; fail = 1 }
      }
      k++
    }
    printf "%d well-formed rules checked (each must reach the PMD), %d malformed (each must be rejected)\n", ok, bad
    exit fail
  }' "$work/log.txt" || { tail -n 20 "$work/log.txt"; exit 1; }
