#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The real PMD path (issue 21): fnat's worker loop against dpdk-testpmd on the very same vdevs, in
# one run. Prints Mpps per lcore for 64K and 1M live flows; not yet part of docs/BENCHMARKS.md.
#
# Usage: scripts/bench_pmd.sh [--build DIR] [--seconds S] [--out DIR]
#   --build DIR    the bench build (default build/bench; pipeline_bench must be built there)
#   --seconds S    how long each testpmd mode forwards (default 10); fnat runs --benchmark_min_time=S
#   --out DIR      where the captures, pipeline_pmd.json and testpmd_pmd.json go (default build/bench/pmd)
#
# 1. build/bench/bench/pipeline_bench with FNAT_BENCH_PMD=1: opens its 1M live sessions, writes two
#    captures of established flows (ACKs of 64K and of all 1M live sessions, half IPv4, half IPv6) and
#    runs pipeline_pmd/fnat/flows:{64K,1M}: rte_eth_rx_burst on net_pcap (rx_pcap=<capture>,
#    infinite_rx=1) -> the library datapath -> rte_eth_tx_burst on net_null (no-rx=1), the timer wheel
#    advancing one tick per 10 ms. One lcore (EAL -l 0).
# 2. dpdk-testpmd --forward-mode=io, then macswap, on the same two vdevs and captures, one forwarding
#    lcore (-l 0,1: lcore 1 forwards), --stats-period=1: the median of port 0's non-zero Rx-pps
#    readings after the first two (warm-up) is its rate.
# Both replay the capture from memory (net_pcap copies each stored packet into a fresh mbuf), so the
# PMD's cost is the same for both; testpmd parses nothing and rewrites nothing (macswap: the MACs).
# EAL memory: hugepages when 256 or more 2 MiB pages are free (and FNAT_BENCH_NO_HUGE is unset), else
# --no-huge, for both, as the shared bench main decides.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/build/bench
SECONDS_EACH=10
OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$(realpath "${2:?}"); shift ;;
    --seconds) SECONDS_EACH=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    -h | --help) sed -n '/^# Usage:/,/^#   --out/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_pmd.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || { echo "bench_pmd.sh: --seconds takes a whole number" >&2; exit 2; }
OUT=${OUT:-$BUILD/pmd}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
BIN=$BUILD/bench/pipeline_bench
[ -x "$BIN" ] || { echo "bench_pmd.sh: $BIN is not built (cmake --build $BUILD --target pipeline_bench)" >&2; exit 1; }
command -v dpdk-testpmd >/dev/null || { echo "bench_pmd.sh: dpdk-testpmd is missing (apt-get install dpdk)" >&2; exit 1; }
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

free_pages=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free_pages:-0}" -ge 256 ] && [ -z "${FNAT_BENCH_NO_HUGE:-}" ]; then
  MEM_ARGS=(--in-memory)
  MEM=hugepages
else
  MEM_ARGS=(--no-huge -m 4096)
  MEM=no-huge
fi

echo "[bench_pmd] fnat: pipeline_pmd (captures in $OUT, EAL memory: $MEM)"
FNAT_BENCH_PMD=1 FNAT_BENCH_PMD_DIR=$OUT "$BIN" --benchmark_min_time="$SECONDS_EACH" \
  --benchmark_out="$OUT/pipeline_pmd.json" --benchmark_out_format=json 2>&1 | grep -v '^\(EAL\|TELEMETRY\):'

declare -A RATE
for flows in 65536 1000000; do
  pcap=$OUT/fnat_flows_$flows.pcap
  [ -s "$pcap" ] || { echo "bench_pmd.sh: $pcap was not written" >&2; exit 1; }
  for mode in io macswap; do
    log=$OUT/testpmd_${mode}_$flows.log
    echo "[bench_pmd] dpdk-testpmd --forward-mode=$mode, $flows flows, ${SECONDS_EACH} s"
    # Non-interactive testpmd prints its statistics every period while its stdin is open and stops at
    # end of file (with stdin at /dev/null it stops at once): the sleep holds the pipe open. The extra
    # seconds cover EAL's start and the capture's load.
    (sleep $((SECONDS_EACH + 4))) | timeout $((SECONDS_EACH + 60)) dpdk-testpmd -l 0,1 "${MEM_ARGS[@]}" --no-pci \
      --no-shconf --file-prefix "fnat-pmd-$$" --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" \
      --vdev net_null0,no-rx=1 --log-level lib.eal:error -- --forward-mode=$mode --stats-period=1 \
      --total-num-mbufs=$((flows + 32768)) --mbuf-size=384 --nb-cores=1 --rxq=1 --txq=1 >"$log" 2>&1 || true
    RATE[$mode/$flows]=$($PY - "$log" <<'PYEOF'
import re, statistics, sys
text = open(sys.argv[1], errors="replace").read()
# Each period prints one block per port; port 0 is the capture's rx side.
blocks = re.findall(r"NIC statistics for port 0.*?Rx-pps:\s+(\d+)", text, re.S)
vals = [int(v) for v in blocks if int(v) > 0][2:]
print("%.3f" % (statistics.median(vals) / 1e6) if vals else "nan")
PYEOF
)
  done
done

$PY - "$OUT/pipeline_pmd.json" "$OUT/testpmd_pmd.json" "$SECONDS_EACH" "$MEM" \
  "${RATE[io/65536]}" "${RATE[macswap/65536]}" "${RATE[io/1000000]}" "${RATE[macswap/1000000]}" <<'PYEOF'
import json, sys
fnat_json, out, secs, mem = sys.argv[1:5]
tp = dict(zip(["io/64K", "macswap/64K", "io/1M", "macswap/1M"], [float(x) for x in sys.argv[5:9]]))
fnat = {}
for b in json.load(open(fnat_json)).get("benchmarks", []):
    if b.get("error_occurred"):
        fnat[b["name"].split("flows:")[-1].split("/")[0]] = None
    elif "items_per_second" in b:
        fnat[b["name"].split("flows:")[-1].split("/")[0]] = b["items_per_second"] / 1e6
json.dump({"seconds": int(secs), "eal_memory": mem, "testpmd_mpps": tp, "fnat_mpps": fnat}, open(out, "w"), indent=2)
print("\nMpps per lcore, wall clock (fnat: packets forwarded / real time; testpmd: port 0's Rx-pps, median)")
print("%-8s %10s %14s %18s %12s" % ("flows", "fnat", "testpmd io", "testpmd macswap", "fnat / io"))
for f in ("64K", "1M"):
    a, io, ms = fnat.get(f), tp.get("io/" + f), tp.get("macswap/" + f)
    r = "%.2fx" % (a / io) if a and io and io == io else "-"
    print("%-8s %10s %14s %18s %12s" % (f, "%.2f" % a if a else "-", "%.2f" % io, "%.2f" % ms, r))
PYEOF
