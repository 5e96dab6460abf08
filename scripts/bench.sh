#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The performance report (docs/BENCHMARKS.md): builds every benchmark in Release, runs each suite with
# repetitions, runs the end-to-end figure on the namespace rig, and writes the report.
#
# Usage: scripts/bench.sh [--quick] [--filter REGEX] [--no-e2e] [--no-pmd] [--no-build] [--reps N]
#                        [--min-time S] [--allow-dirty]
#   --quick         1 repetition, --benchmark_min_time=0.05, bench_e2e.sh --quick: to try the
#                   pipeline in a few minutes; the report says so, and such figures are not quoted
#   --filter REGEX  only the benchmarks whose name matches (Google Benchmark's --benchmark_filter);
#                   a suite file with no match keeps its previous results
#   --no-e2e        skip scripts/bench_e2e.sh (the report keeps the e2e.json there is, if any)
#   --no-pmd        skip scripts/bench_pmd.sh (the real PMD path; the report keeps the pmd.json there is)
#   --no-build      use build/bench as it is
#   --reps N        repetitions per benchmark (default 5)   --min-time S   seconds each (default 0.2)
#   --allow-dirty   run although tracked files have uncommitted changes; the report's headline then
#                   says so (without it, such a tree is refused: every figure must name its commit)
#
# What it does, in order (as root; without root it skips the package install, the hugepage
# reservation and the end-to-end figure):
#  1. installs gnuplot-nox when gnuplot is missing (bootstrap.sh lists it; the plots need it);
#  2. hugepages: the 4M-conn conn_table cases and the pipeline's 1M live conns need about 1.4 GiB of
#     DPDK memory (measured: 711 x 2 MiB pages at peak), and conn_table_bench's size beyond the L3
#     (read from sysfs or getconf) more on a machine with a large L3 (up to half the memory); so
#     when fewer pages than that (at least 1024) are free it
#     raises vm.nr_hugepages by the difference and gives them back on exit (trap). When the kernel
#     cannot find them, the benchmarks run with --no-huge (FNAT_BENCH_NO_HUGE=1) rather than on too
#     few pages; each JSON's context (fnat_eal_memory) and the report say which;
#  3. configures build/bench: Release, no tests, checked mode off, -march=native after DPDK's
#     -march=corei7 (FNAT_BENCH_NATIVE, verified in the real compile command), -Werror as everywhere,
#     and builds every bench/*_bench.cpp binary plus fnat_lb;
#  4. runs each binary with --benchmark_repetitions, --benchmark_report_aggregates_only and JSON out
#     to docs/bench/<binary>.json. No taskset: the shared bench main starts EAL with -l 0, which pins
#     the timed thread to CPU 0 already, and pinning the whole process there would put EAL's service
#     threads on the timed CPU too;
#  5. scripts/bench_e2e.sh (docs/bench/e2e.json), then scripts/bench_report.py (docs/BENCHMARKS.md,
#     docs/bench/*.png). Run metadata (machine, build, commands, timings) goes to docs/bench/run.json.
# Exit status: 0 when every step worked; 1 when a benchmark binary or the e2e run failed (the report
# is written all the same, from what there is).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
FILTER=""
E2E=1
PMD=1
BUILD_IT=1
REPS=5
MIN_TIME=0.2
ALLOW_DIRTY=0
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --filter) FILTER=${2:?--filter needs a regular expression}; shift ;;
    --no-e2e) E2E=0 ;;
    --no-pmd) PMD=0 ;;
    --no-build) BUILD_IT=0 ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --min-time) MIN_TIME=${2:?--min-time needs seconds}; shift ;;
    --allow-dirty) ALLOW_DIRTY=1 ;;
    -h | --help) sed -n '/^# Usage:/,/^#  --reps/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $QUICK = 1 ]; then
  REPS=1
  MIN_TIME=0.05
fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --reps takes a positive number" >&2; exit 2; }
[[ $MIN_TIME =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "bench.sh: --min-time takes seconds, e.g. 0.2" >&2; exit 2; }
# A published figure names the commit it measured: the tracked files must be that commit. The report's
# own outputs (docs/bench, docs/BENCHMARKS.md) are what a run rewrites, so they do not count.
dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)docs/bench' ':(exclude)docs/BENCHMARKS.md')
if [ -n "$dirty" ] && [ $ALLOW_DIRTY = 0 ]; then
  echo "bench.sh: the tree has uncommitted changes, so the report could not name the commit it measured:" >&2
  echo "$dirty" | sed 's/^/  /' >&2
  echo "bench.sh: commit them (or stash them) first, or pass --allow-dirty for a report marked as such" >&2
  exit 2
fi

BUILD=$ROOT/build/bench
OUT=$ROOT/docs/bench
LOGS=$BUILD/logs
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
mkdir -p "$OUT"
STARTED=$(date -Iseconds)
T0=$SECONDS
failures=0

log() { printf '\n\033[1m[bench %s] %s\033[0m\n' "$(date +%T)" "$*"; }
warn() { printf '[bench] warning: %s\n' "$*" >&2; }

# ---- 1. gnuplot -----------------------------------------------------------------------------------
if ! command -v gnuplot >/dev/null; then
  if [ $IS_ROOT = 1 ]; then
    log "installing gnuplot-nox (the report's plots)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox >/dev/null; }; then
      warn "could not install gnuplot-nox: the report will have no plots"
    fi
  else
    warn "gnuplot is missing and this is not root: the report will have no plots"
  fi
fi

# ---- 2. hugepages ---------------------------------------------------------------------------------
NEED_PAGES=1024
# conn_table_bench adds a table size well beyond the L3 (issue 21): the smallest power of two of conns
# whose fnat table (160 bytes per conn) is 4x the L3, at ~350 bytes of DPDK memory per conn for the
# three tables of one size, used up to 70% (bench/conn_table_bench.cpp, sizes()). Reserve that much
# when it is more than the default and at most half the machine's memory; the benchmark caps the
# size by what it finds, and the report shows each size over the L3.
l3_bytes() {
  local f size
  for f in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ "$(cat "$f/level" 2>/dev/null)" = 3 ] || continue
    size=$(cat "$f/size")
    case $size in *K) echo $((${size%K} * 1024)) ;; *M) echo $((${size%M} * 1048576)) ;; *) echo "$size" ;; esac
    return
  done
  getconf LEVEL3_CACHE_SIZE 2>/dev/null || echo 0
}
L3=$(l3_bytes)
[[ $L3 =~ ^[0-9]+$ ]] || L3=0
if [ "$L3" -gt 0 ]; then
  conns=1024
  while [ $((conns * 160)) -lt $((4 * L3)) ] && [ $conns -lt 16777216 ]; do conns=$((conns * 2)); done
  want_pages=$(((conns * 350 * 10 / 7 + 2097151) / 2097152))
  mem_pages=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 2048 / 2))
  if [ $want_pages -gt $NEED_PAGES ] && [ $want_pages -le $mem_pages ]; then NEED_PAGES=$want_pages; fi
fi
HP=/proc/sys/vm/nr_hugepages
hp_free() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
HP_BEFORE_TOTAL=$(cat $HP 2>/dev/null || echo 0)
HP_BEFORE_FREE=$(hp_free)
HP_ADDED=0
HP_RESERVED=0
HP_MODE=hugepages
restore_hugepages() {
  if [ $HP_ADDED -gt 0 ]; then
    # Give back what this script added (another user may have changed the total meanwhile).
    local now
    now=$(cat $HP)
    echo $((now - HP_ADDED > 0 ? now - HP_ADDED : 0)) >$HP 2>/dev/null || warn "could not give back $HP_ADDED hugepages"
    HP_ADDED=0
  fi
}
trap restore_hugepages EXIT
trap 'exit 130' INT TERM HUP
if [ "$(grep -c '^Hugepagesize: *2048 kB' /proc/meminfo)" = 1 ] && [ "$HP_BEFORE_FREE" -lt $NEED_PAGES ] && [ $IS_ROOT = 1 ]; then
  want=$((HP_BEFORE_TOTAL + NEED_PAGES - HP_BEFORE_FREE))
  echo "$want" >$HP 2>/dev/null || true
  HP_ADDED=$(($(cat $HP) - HP_BEFORE_TOTAL))
  [ $HP_ADDED -lt 0 ] && HP_ADDED=0
  HP_RESERVED=$HP_ADDED
  log "hugepages: $HP_BEFORE_FREE of $HP_BEFORE_TOTAL free; reserved $HP_ADDED more (given back on exit)"
fi
if [ "$(hp_free)" -lt $NEED_PAGES ]; then
  export FNAT_BENCH_NO_HUGE=1
  HP_MODE="no-huge (only $(hp_free) free 2 MiB pages; $NEED_PAGES needed)"
  warn "fewer than $NEED_PAGES free hugepages: the benchmarks run with --no-huge (4 KiB pages)"
fi
HP_FREE_AT_START=$(hp_free)

# ---- 3. build -------------------------------------------------------------------------------------
if [ $BUILD_IT = 1 ]; then
  log "configuring $BUILD (Release, no tests, checked mode off, -march=native)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFNAT_BUILD_TESTS=OFF -DFNAT_CHECKED=OFF \
    -DFNAT_BUILD_BENCH=ON -DFNAT_BUILD_EXAMPLES=ON -DFNAT_BENCH_NATIVE=ON -DFNAT_WERROR=ON \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
  targets=()
  for src in "$ROOT"/bench/*_bench.cpp; do targets+=("$(basename "$src" .cpp)"); done
  [ $E2E = 1 ] && targets+=(fnat_lb)
  log "building ${targets[*]}"
  if ! cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}" >"$BUILD.build.log" 2>&1; then
    grep -E -B2 -A8 'error' "$BUILD.build.log" | head -60
    echo "bench.sh: the build failed (whole log: $BUILD.build.log)" >&2
    exit 1
  fi
  for t in "${targets[@]}"; do
    [ "$t" = fnat_lb ] && f=$BUILD/examples/fnat_lb/fnat_lb || f=$BUILD/bench/$t
    [ -x "$f" ] || { echo "bench.sh: $t did not build (cmake --build $BUILD --target $t)" >&2; exit 1; }
  done
fi
mkdir -p "$LOGS"

# ---- 4. the suites --------------------------------------------------------------------------------
: >"$LOGS/binaries.tsv"
for src in "$ROOT"/bench/*_bench.cpp; do
  name=$(basename "$src" .cpp)
  bin=$BUILD/bench/$name
  [ -x "$bin" ] || { warn "$bin is not built; skipped"; failures=$((failures + 1)); continue; }
  args=(--benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true --benchmark_min_time="$MIN_TIME"
    --benchmark_out="$LOGS/$name.json" --benchmark_out_format=json)
  [ -n "$FILTER" ] && args+=(--benchmark_filter="$FILTER")
  log "$name ${args[*]:0:3}${FILTER:+ --benchmark_filter=$FILTER}"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  t=$SECONDS
  set +e
  "$bin" "${args[@]}" 2>&1 | tee "$LOGS/$name.txt" | grep -v '^\(EAL\|TELEMETRY\):'
  rc=${PIPESTATUS[0]}
  set -e
  secs=$((SECONDS - t))
  count=$($PY -c 'import json, sys
try: print(len(json.load(open(sys.argv[1]))["benchmarks"]))
except Exception: print(0)' "$LOGS/$name.json")
  if [ "$rc" != 0 ]; then
    warn "$name exited with status $rc (log: $LOGS/$name.txt)"
    failures=$((failures + 1))
  fi
  if [ "$count" -gt 0 ]; then
    cp "$LOGS/$name.json" "$OUT/$name.json"
  else
    warn "$name produced no result${FILTER:+ matching the filter}; $OUT/$name.json left as it was"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$count" "$load" "$bin ${args[*]}" >>"$LOGS/binaries.tsv"
done

# ---- 5. the real PMD path, end-to-end, metadata, report -------------------------------------------
if [ $PMD = 1 ] && [ -z "$FILTER" ]; then
  log "the real PMD path (scripts/bench_pmd.sh)"
  pmd_secs=10
  [ $QUICK = 1 ] && pmd_secs=2
  if "$ROOT/scripts/bench_pmd.sh" --build "$BUILD" --out "$LOGS/pmd" --seconds $pmd_secs; then
    cp "$LOGS/pmd/testpmd_pmd.json" "$OUT/pmd.json"
  else
    warn "scripts/bench_pmd.sh failed (logs in $LOGS/pmd)"
    failures=$((failures + 1))
  fi
fi

E2E_STATUS=skipped
E2E_SECS=0
if [ $E2E = 1 ]; then
  if [ $IS_ROOT = 1 ]; then
    log "end-to-end figure (scripts/bench_e2e.sh$([ $QUICK = 1 ] && echo ' --quick'))"
    t=$SECONDS
    e2e_args=(--build "$BUILD" --out "$OUT/e2e.json")
    [ $QUICK = 1 ] && e2e_args+=(--quick)
    if "$ROOT/scripts/bench_e2e.sh" "${e2e_args[@]}"; then E2E_STATUS=ok; else E2E_STATUS=failed; failures=$((failures + 1)); fi
    E2E_SECS=$((SECONDS - t))
  else
    warn "the end-to-end figure needs root (network namespaces): skipped"
  fi
fi

restore_hugepages
FINISHED=$(date -Iseconds)
B_STARTED=$STARTED B_FINISHED=$FINISHED B_QUICK=$QUICK B_FILTER=$FILTER B_REPS=$REPS B_MIN_TIME=$MIN_TIME \
  B_ARGS=$ARGS B_HP_BEFORE_TOTAL=$HP_BEFORE_TOTAL B_HP_BEFORE_FREE=$HP_BEFORE_FREE B_HP_RESERVED=$HP_RESERVED \
  B_HP_FREE_AT_START=$HP_FREE_AT_START B_HP_MODE=$HP_MODE B_BUILD=$BUILD B_ROOT=$ROOT B_E2E=$E2E_STATUS \
  B_E2E_SECS=$E2E_SECS B_SECS=$((SECONDS - T0)) \
  $PY - "$LOGS/binaries.tsv" "$OUT/run.json" <<'EOF'
import json, os, platform, re, subprocess, sys

e = os.environ

def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""

cpuinfo = open("/proc/cpuinfo").read()
model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
interesting = ["sse4_2", "avx2", "avx512f", "avx512bw", "avx512vl", "gfni", "vaes", "vpclmulqdq", "pclmulqdq", "bmi2"]
have = set(flags.group(1).split()) if flags else set()
mem = re.search(r"^MemTotal:\s*(\d+) kB", open("/proc/meminfo").read(), re.M)

build = {"dir": e["B_BUILD"]}
cache = os.path.join(e["B_BUILD"], "CMakeCache.txt")
if os.path.exists(cache):
    c = open(cache).read()
    get = lambda k: (re.search(r"^%s:[A-Z]+=(.*)$" % k, c, re.M) or [None, None])[1]
    build.update({"type": get("CMAKE_BUILD_TYPE"), "checked": get("FNAT_CHECKED"), "werror": get("FNAT_WERROR"),
                  "native": get("FNAT_BENCH_NATIVE"), "cxx": get("CMAKE_CXX_COMPILER")})
    if build["cxx"]:
        build["cxx_version"] = sh(build["cxx"], "--version").splitlines()[0] if sh(build["cxx"], "--version") else None
cc = os.path.join(e["B_BUILD"], "compile_commands.json")
if os.path.exists(cc):
    for entry in json.load(open(cc)):
        if entry["file"].endswith("bench/sa_pool_bench.cpp"):
            cmd = entry.get("command") or " ".join(entry.get("arguments", []))
            build["compile_command"] = cmd
            m = [x.group(0) for x in re.finditer(r"-march=\S+", cmd)]
            build["march_flags_in_order"] = m
            build["native_last"] = bool(m) and m[-1] == "-march=native"
            break

binaries = []
for line in open(sys.argv[1]):
    name, rc, secs, count, load, cmd = line.rstrip("\n").split("\t")
    binaries.append({"name": name, "status": int(rc), "seconds": int(secs), "benchmarks": int(count),
                     "load_before": load, "command": cmd.replace(e["B_ROOT"] + "/", "")})

git = {"commit": sh("git", "-C", e["B_ROOT"], "rev-parse", "HEAD"),
       "dirty": bool(sh("git", "-C", e["B_ROOT"], "status", "--porcelain", "--untracked-files=no", "--", ".",
                        ":(exclude)docs/bench", ":(exclude)docs/BENCHMARKS.md"))}
run = {
    "schema": 1,
    "started": e["B_STARTED"], "finished": e["B_FINISHED"], "seconds": int(e["B_SECS"]),
    "command": ("scripts/bench.sh " + e["B_ARGS"]).strip(),
    "quick": e["B_QUICK"] == "1", "filter": e["B_FILTER"] or None,
    "repetitions": int(e["B_REPS"]), "min_time_s": float(e["B_MIN_TIME"]),
    "git": git,
    "machine": {"cpu_model": model.group(1).strip() if model else platform.processor(),
                "cpu_flags": [f for f in interesting if f in have], "cpus": os.cpu_count(),
                "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
                "kernel": platform.release(), "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")},
    "hugepages": {"size_kib": 2048, "total_before": int(e["B_HP_BEFORE_TOTAL"]),
                  "free_before": int(e["B_HP_BEFORE_FREE"]), "reserved_by_script": int(e["B_HP_RESERVED"]),
                  "free_at_start": int(e["B_HP_FREE_AT_START"]),
                  "mode": e["B_HP_MODE"]},
    "build": build,
    "binaries": binaries,
    "e2e": {"status": e["B_E2E"], "seconds": int(e["B_E2E_SECS"])},
}
json.dump(run, open(sys.argv[2], "w"), indent=2)
EOF

log "report"
$PY "$ROOT/scripts/bench_report.py" --dir "$OUT" --out "$ROOT/docs/BENCHMARKS.md" || failures=$((failures + 1))
log "done in $((SECONDS - T0)) s: docs/BENCHMARKS.md, docs/bench/*.json, docs/bench/*.png ($failures failure(s))"
[ $failures = 0 ]
