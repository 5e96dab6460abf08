#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end figure for docs/BENCHMARKS.md: HTTP requests/s and latency (p50, p99) measured with wrk
# from the rig's client namespace (scripts/rig.sh, prefix fnat-perf-) against nginx real servers,
#   1. through the reference balancer (fnat_lb from BUILD, checked mode off) at the VIP, FullNAT, with
#      one worker, once with idle = busy and once with idle = backoff;
#   2. through dpdk-testpmd --forward-mode=io bridging the same two af_packet ports (lb-c, lb-s): the
#      floor any DPDK application on af_packet pays on this rig. A dumb bridge neither answers ARP nor
#      rewrites anything, so the client addresses real server 1 directly (no VIP, no NAT): an on-link
#      route and a permanent neighbour (rs1's fixed MAC) on the client, and on every real server a
#      permanent neighbour for its default gateway 198.18.2.1 that names the client's MAC. They are
#      added for the testpmd runs and removed after.
#   3. (scaling) through the balancer with two workers on two queue pairs, idle mode as reported.
# Each configuration is started REPS times (interleaved, so slow drift of a shared machine hits all
# alike); each start runs a short warm-up, then wrk twice for DURATION seconds with C connections:
#   keepalive  persistent connections: established-flow forwarding
#   close      "Connection: close": a new TCP connection per request (balancer: a new conn, an
#              sa_pool fetch, a conn insert and, later, its expiry per request)
# Reported per configuration and mode: the median over the starts of requests/s, p50 and p99 (wrk
# --latency: a closed loop at saturation, so latency includes queueing), wrk's socket errors and
# non-2xx answers, and the middle box's CPU time per request (from /proc/PID/stat around the run).
# The machine has 2 cores shared by client, servers and middle box: every EAL lcore floats over the
# first two CPUs this script may use ('(0-N)@(a,b)'), as in the end-to-end tests.
#
# Usage: scripts/bench_e2e.sh [--quick] [--build DIR] [--out FILE] [--duration S] [--reps N]
#                             [--connections C] [--rs N] [--no-scaling]
#   --quick        3 s runs, 1 start per configuration (to try the pipeline, not to quote)
#   --build DIR    where fnat_lb was built (default build/bench; scripts/bench.sh builds it there)
#   --out FILE     JSON results (default docs/bench/e2e.json); bench_report.py reads it
#   --duration S   seconds per wrk run (default 10)     --reps N       starts per configuration (3)
#   --connections  wrk connections (default 32)         --rs N         real servers (default 1)
#   --no-scaling   skip the two-worker configuration
# Needs root, wrk, nginx, socat, dpdk-testpmd, iproute2, ethtool (scripts/bootstrap.sh). When
# something is missing it writes a JSON that says why ("skipped") and exits 0, so that bench.sh goes
# on. It stops only what it started and tears down only its own rig (fnat-perf-*), also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
BUILD=$ROOT/build/bench
OUT=$ROOT/docs/bench/e2e.json
DURATION=""
REPS=""
CONNS=32
RS=1
SCALING=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --connections) CONNS=${2:?--connections needs a number}; shift ;;
    --rs) RS=${2:?--rs needs a number}; shift ;;
    --no-scaling) SCALING=0 ;;
    -h | --help) sed -n '/^# Usage:/,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $QUICK = 1 ]; then
  : "${DURATION:=3}" "${REPS:=1}"
else
  : "${DURATION:=10}" "${REPS:=3}"
fi
for v in DURATION REPS CONNS RS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench_e2e.sh: ${v,,} must be a positive number" >&2; exit 2; }
done

PY=/usr/bin/python3
[ -x $PY ] || PY=python3
LB=$BUILD/examples/fnat_lb/fnat_lb
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

log() { printf '[bench_e2e %s] %s\n' "$(date +%T)" "$*"; }

# skipped REASON: the JSON says why there is no figure; exit 0.
skipped() {
  log "skipped: $1"
  $PY - "$OUT" "$1" <<'EOF'
import json, sys, time
json.dump({"schema": 1, "skipped": sys.argv[2], "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
          open(sys.argv[1], "w"), indent=2)
EOF
  exit 0
}

[ "$(id -u)" -eq 0 ] || skipped "needs root (network namespaces)"
[ -x "$LB" ] || skipped "$LB is not built (scripts/bench.sh builds it; or cmake --build $BUILD --target fnat_lb)"
for t in ip ethtool nginx socat wrk dpdk-testpmd timeout mkfifo; do
  command -v "$t" >/dev/null || skipped "$t is missing (scripts/bootstrap.sh installs it)"
done

export FNAT_RIG_PREFIX=fnat-perf-
LB_EAL_PREFIX=fnat-perf-lb
TP_EAL_PREFIX=fnat-perf-tp
WORK=$(mktemp -d /tmp/fnat-perf-e2e.XXXXXX)
chmod 755 "$WORK"  # the rig's nginx workers (user nobody) read their pages below it
export FNAT_RIG_STATE=$WORK/rig
CPUS=$($PY -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0))[:2])))')
RESULTS=$WORK/runs.tsv
: >"$RESULTS"
MB_PID=""   # the middle box now running (fnat_lb or testpmd)
TP_FD=""    # testpmd's stdin (a FIFO held open: testpmd exits when it closes)
BRIDGED=0

rig() { timeout 120 "$ROOT/scripts/rig.sh" "$@"; }

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM HUP
  stop_middle_box >/dev/null 2>&1 || true
  rig down >/dev/null 2>&1 || echo "bench_e2e.sh: rig.sh down failed" >&2
  rm -rf "/var/run/dpdk/$LB_EAL_PREFIX" "/var/run/dpdk/$TP_EAL_PREFIX"
  if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "bench_e2e.sh: failed; its files are in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM HUP

rig_up() {  # QUEUES
  rig up --rs "$RS" --queues "$1" >"$WORK/rig.log" 2>&1 || { cat "$WORK/rig.log"; exit 1; }
  rig serve >>"$WORK/rig.log" 2>&1 || { cat "$WORK/rig.log"; exit 1; }
  set -a
  eval "$(rig env)"
  set +a
  read -r -a RS4 <<<"$FNAT_RS4"
  read -r -a RS_MACS <<<"$FNAT_RS_MACS"
  read -r -a RS_NS <<<"$FNAT_NS_RS"
  read -r -a VDEVS <<<"$FNAT_EAL_VDEVS"
  log "rig up: $FNAT_RS_COUNT real server(s), $FNAT_QUEUES queue pair(s), CPUs $CPUS"
}

in_client() { ip netns exec "$FNAT_NS_CLIENT" "$@"; }

# ---- middle boxes -------------------------------------------------------------------------------

# start_lb WORKERS IDLE: fnat_lb in the lb namespace, workers 1..WORKERS on queues 0..WORKERS-1.
start_lb() {
  local workers=$1 idle=$2 cfg=$WORK/lb-$1-$2.ini list
  list=$([ "$workers" = 1 ] && echo 1 || echo "1-$workers")
  rig config --workers "$list" >"$cfg.rig"
  # Default timeouts (DPVS's); a table big enough for the close mode's conns in TIME_WAIT.
  sed "s/^workers = .*/&\nidle = $idle\nconns_per_lcore = 262144\ntelemetry = off\nlog_level = warning/" \
    "$cfg.rig" >"$cfg"
  rm -f "$cfg.rig"
  MB_LOG=$WORK/lb-$workers-$idle.$RANDOM.log
  ip netns exec "$FNAT_NS_LB" "$LB" --no-huge --no-shconf --no-pci -m 1024 --file-prefix "$LB_EAL_PREFIX" \
    --lcores "(0-$workers)@($CPUS)" "${VDEVS[@]}" -- --config "$cfg" >"$MB_LOG" 2>&1 </dev/null &
  MB_PID=$!
  MB_KIND=fnat_lb
  MB_TEL=/var/run/dpdk/$LB_EAL_PREFIX/dpdk_telemetry.v2
  wait_for 60 grep -qs '^fnat_lb: ready' "$MB_LOG" || { cat "$MB_LOG"; echo "fnat_lb did not start" >&2; exit 1; }
}

# start_testpmd: io forwarding between the two af_packet ports (paired: 0 <-> 1), one forwarding core.
start_testpmd() {
  local fifo=$WORK/testpmd.stdin
  rm -f "$fifo"
  mkfifo "$fifo"
  MB_LOG=$WORK/testpmd.$RANDOM.log
  # stdbuf: testpmd's stdout goes to a file, and its "Press enter to exit" must arrive before it exits.
  ip netns exec "$FNAT_NS_LB" stdbuf -oL dpdk-testpmd --no-huge -m 1024 --no-shconf --no-pci --file-prefix "$TP_EAL_PREFIX" \
    --lcores "(0-1)@($CPUS)" "${VDEVS[@]}" -- --forward-mode=io --auto-start --nb-cores=1 \
    --total-num-mbufs=16384 <"$fifo" >"$MB_LOG" 2>&1 &
  MB_PID=$!
  MB_KIND=testpmd
  MB_TEL=/var/run/dpdk/$TP_EAL_PREFIX/dpdk_telemetry.v2
  exec {TP_FD}>"$fifo"  # testpmd reads stdin until EOF ("Press enter to exit"): keep it open
  wait_for 60 grep -qs 'Press enter to exit' "$MB_LOG" || { cat "$MB_LOG"; echo "testpmd did not start" >&2; exit 1; }
}

# stop_middle_box: fnat_lb gets SIGINT (summary, leak check); testpmd gets EOF on stdin, then SIGINT.
# Appends the middle box's own counters to the results as a "stats" line.
stop_middle_box() {
  [ -n "$MB_PID" ] || return 0
  if [ "$MB_KIND" = testpmd ] && [ -n "$TP_FD" ]; then
    exec {TP_FD}>&-
    TP_FD=""
    wait_for 10 not_running "$MB_PID" || kill -INT "$MB_PID" 2>/dev/null || true
  else
    kill -INT "$MB_PID" 2>/dev/null || true
  fi
  wait_for 30 not_running "$MB_PID" || kill -KILL "$MB_PID" 2>/dev/null || true
  wait "$MB_PID" 2>/dev/null || true
  MB_PID=""
  if [ "$MB_KIND" = fnat_lb ]; then
    printf 'stats\t%s\tfnat_lb\t%s\n' "$CONFIG" "$(sed -n 's/^fnat_lb: summary //p' "$MB_LOG" | tail -1)" >>"$RESULTS"
    grep -q '^fnat_lb: leak check: every sa_pool whole' "$MB_LOG" || log "warning: fnat_lb's leak check did not pass (see $MB_LOG)"
  else
    printf 'stats\t%s\ttestpmd\t%s\n' "$CONFIG" \
      "$(sed -n '/Accumulated forward statistics/,/+++++$/p' "$MB_LOG" | tr -s ' \n' ' ')" >>"$RESULTS"
  fi
}
not_running() { ! kill -0 "$1" 2>/dev/null; }

wait_for() {  # SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# bridge_on / bridge_off: static neighbours so that client and real servers talk through a dumb bridge.
bridge_on() {
  local i
  ip -n "$FNAT_NS_CLIENT" route replace 198.18.2.0/24 dev "$FNAT_IF_CLIENT"
  for i in "${!RS4[@]}"; do
    ip -n "$FNAT_NS_CLIENT" neigh replace "${RS4[$i]}" lladdr "${RS_MACS[$i]}" dev "$FNAT_IF_CLIENT" nud permanent
    ip -n "${RS_NS[$i]}" neigh replace "$FNAT_LB_SERVER4" lladdr "$FNAT_CLIENT_MAC" dev rs-sw nud permanent
  done
  BRIDGED=1
}
bridge_off() {
  local i
  [ $BRIDGED = 1 ] || return 0
  ip -n "$FNAT_NS_CLIENT" route del 198.18.2.0/24 dev "$FNAT_IF_CLIENT" 2>/dev/null || true
  for i in "${!RS4[@]}"; do
    ip -n "$FNAT_NS_CLIENT" neigh del "${RS4[$i]}" dev "$FNAT_IF_CLIENT" 2>/dev/null || true
    ip -n "${RS_NS[$i]}" neigh del "$FNAT_LB_SERVER4" dev rs-sw 2>/dev/null || true
  done
  BRIDGED=0
}

# ---- measurement ----------------------------------------------------------------------------------

cpu_ticks() {  # PID: utime + stime of the whole process, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# eth_stats: both ports' counters from the middle box's EAL telemetry socket (what dpdk-telemetry.py
# reads), one JSON line {"0": {...}, "1": {...}}; imissed counts frames the kernel dropped because the
# af_packet rx ring was full (the middle box fell behind). "{}" when the socket does not answer.
eth_stats() {
  timeout 10 $PY - "$MB_TEL" <<'EOF' 2>/dev/null || echo '{}'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
limit = json.loads(s.recv(4096).decode())["max_output_len"]
out = {}
for port in (0, 1):
    s.send(("/ethdev/stats,%d" % port).encode())
    st = json.loads(s.recv(limit).decode())["/ethdev/stats"]
    out[port] = {k: st[k] for k in ("ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf") if k in st}
print(json.dumps(out))
EOF
}

# measure URL: checks the path, warms up, then one wrk run per mode; one "run" line each.
measure() {
  local url=$1 mode rep_file t0 t1 s0 s1 body
  body=$(in_client curl -sS --max-time 5 "$url" 2>&1 || true)
  if [[ ! $body =~ ^rs[0-9]+$ ]]; then
    log "$CONFIG: $url does not answer (got '$body'); no figure from this start"
    printf 'fail\t%s\t%s\n' "$CONFIG" "$url answered '$body'" >>"$RESULTS"
    return 0
  fi
  in_client timeout 30 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
  for mode in keepalive close; do
    rep_file=$WORK/wrk.$((++RUN_NO)).txt
    local -a hdr=()
    [ $mode = close ] && hdr=(-H 'Connection: close')
    s0=$(eth_stats)
    t0=$(cpu_ticks "$MB_PID")
    in_client timeout $((DURATION + 60)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency "${hdr[@]}" "$url" \
      >"$rep_file" 2>&1 || true
    t1=$(cpu_ticks "$MB_PID")
    s1=$(eth_stats)
    printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CONFIG" "$mode" "$rep_file" "$((t1 - t0))" "$s0" "$s1" >>"$RESULTS"
    log "$CONFIG $mode: $(sed -n 's/^Requests\/sec: *//p' "$rep_file") req/s, p99 $(awk '$1 == "99%" { print $2 }' "$rep_file")"
  done
}
RUN_NO=0

run_lb() {  # WORKERS IDLE
  CONFIG="fnat_lb/idle:$2/workers:$1"
  start_lb "$1" "$2"
  measure "http://$FNAT_VIP4:$FNAT_HTTP_PORT/"
  stop_middle_box
}
run_testpmd() {
  CONFIG="testpmd/io/cores:1"
  bridge_on
  start_testpmd
  measure "http://${RS4[0]}:$FNAT_HTTP_PORT/"
  stop_middle_box
  bridge_off
}

start=$SECONDS
log "wrk -t1 -c$CONNS -d${DURATION}s, $REPS start(s) per configuration, $RS real server(s); work dir $WORK"
rig_up 1
for rep in $(seq "$REPS"); do
  log "start $rep of $REPS"
  run_lb 1 busy
  run_lb 1 backoff
  run_testpmd
done

# The idle mode reported beside testpmd: the one with the higher median keepalive rate at 1 worker.
REPORTED_IDLE=$($PY - "$RESULTS" <<'EOF'
import re, statistics, sys
rates = {"busy": [], "backoff": []}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "run" and f[2] == "keepalive" and f[1].endswith("/workers:1"):
        m = re.search(r"^Requests/sec:\s*([\d.]+)", open(f[3]).read(), re.M)
        if m:
            rates[f[1].split("/")[1].split(":")[1]].append(float(m.group(1)))
med = {k: statistics.median(v) if v else 0.0 for k, v in rates.items()}
print("busy" if med["busy"] >= med["backoff"] else "backoff")
EOF
)
log "reported idle mode (higher keepalive rate at 1 worker): $REPORTED_IDLE"

if [ $SCALING = 1 ]; then
  rig_up 2
  for rep in $(seq "$REPS"); do
    log "scaling start $rep of $REPS"
    run_lb 2 "$REPORTED_IDLE"
  done
fi

# ---- the JSON -------------------------------------------------------------------------------------
E2E_DURATION=$DURATION E2E_REPS=$REPS E2E_CONNS=$CONNS E2E_RS=$RS E2E_CPUS=$CPUS E2E_QUICK=$QUICK \
  E2E_IDLE=$REPORTED_IDLE E2E_SCALING=$SCALING $PY - "$RESULTS" "$OUT" <<'EOF'
import json, os, platform, re, statistics, subprocess, sys, time

e = os.environ
cpus, conns, duration = e["E2E_CPUS"], int(e["E2E_CONNS"]), int(e["E2E_DURATION"])
params = {
    "duration_s": duration, "reps": int(e["E2E_REPS"]), "connections": conns, "wrk_threads": 1,
    "real_servers": int(e["E2E_RS"]), "cpus": cpus, "quick": e["E2E_QUICK"] == "1",
    "scaling": e["E2E_SCALING"] == "1", "reported_idle": e["E2E_IDLE"], "tick_hz": os.sysconf("SC_CLK_TCK"),
    "lb_command": "fnat_lb --no-huge --no-shconf --no-pci -m 1024 --lcores '(0-W)@(%s)' "
                  "--vdev net_af_packet0,iface=lb-c,qpairs=W --vdev net_af_packet1,iface=lb-s,qpairs=W "
                  "-- --config FILE (rig.sh config --workers 1-W, plus idle = busy|backoff, "
                  "conns_per_lcore = 262144, telemetry = off)" % cpus,
    "testpmd_command": "dpdk-testpmd --no-huge -m 1024 --no-shconf --no-pci --lcores '(0-1)@(%s)' "
                       "--vdev net_af_packet0,iface=lb-c,qpairs=1 --vdev net_af_packet1,iface=lb-s,qpairs=1 "
                       "-- --forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 "
                       "< FIFO (stdin held open)" % cpus,
    "wrk_command": "wrk -t1 -c%d -d%ds --timeout 5s --latency [-H 'Connection: close'] URL" % (conns, duration),
}

def seconds(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]

def parse_wrk(path):
    t = open(path).read()
    r = {}
    m = re.search(r"^Requests/sec:\s*([\d.]+)", t, re.M)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", t, re.M)
    r["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "75", "90", "99"):
        m = re.search(r"^\s*%s%%\s+([\d.]+\w+)" % q, t, re.M)
        s = seconds(m.group(1)) if m else None
        r["p%s_ms" % q] = round(s * 1e3, 3) if s is not None else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    r["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    r["non_2xx"] = int(m.group(1)) if m else 0
    return r

configs = {}
def cfg(name):
    if name not in configs:
        kind, rest = name.split("/", 1)
        c = {"kind": kind, "modes": {}, "failed_starts": 0, "middle_box": []}
        for part in rest.split("/"):
            k, _, v = part.partition(":")
            if v:
                c[k] = int(v) if v.isdigit() else v
            else:
                c["forwarding"] = k
        configs[name] = c
    return configs[name]

hz = params["tick_hz"]
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "run":
        r = parse_wrk(f[3])
        r["middle_box_cpu_s"] = int(f[4]) / hz
        try:  # ethdev counters over the run, both ports together
            a, b = json.loads(f[5]), json.loads(f[6])
            r["eth"] = {k: sum(b[p].get(k, 0) - a[p].get(k, 0) for p in b if p in a)
                        for k in ("ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf")}
        except (IndexError, ValueError, KeyError, TypeError):
            r["eth"] = None
        cfg(f[1])["modes"].setdefault(f[2], {"reps": []})["reps"].append(r)
    elif f[0] == "fail":
        cfg(f[1])["failed_starts"] += 1
    elif f[0] == "stats":
        try:
            s = json.loads(f[3]) if f[2] == "fnat_lb" else f[3].strip()
        except ValueError:
            s = f[3]
        cfg(f[1])["middle_box"].append(s)

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None

for c in configs.values():
    for m in c["modes"].values():
        reps = m["reps"]
        m["median_rps"] = med([r["rps"] for r in reps])
        m["median_p50_ms"] = med([r["p50_ms"] for r in reps])
        m["median_p99_ms"] = med([r["p99_ms"] for r in reps])
        m["socket_errors"] = sum(r["socket_errors"] for r in reps)
        m["non_2xx"] = sum(r["non_2xx"] for r in reps)
        per_req = [r["middle_box_cpu_s"] / r["requests"] * 1e6 for r in reps if r["requests"]]
        m["middle_box_cpu_us_per_request"] = med(per_req)
        eth = [r["eth"] for r in reps if r.get("eth")]
        m["eth_totals"] = {k: sum(x[k] for x in eth) for k in eth[0]} if eth else None

ratios = {}
tp = configs.get("testpmd/io/cores:1")
for idle in ("busy", "backoff"):
    lb = configs.get("fnat_lb/idle:%s/workers:1" % idle)
    for mode in ("keepalive", "close"):
        try:
            ratios["%s/%s" % (idle, mode)] = lb["modes"][mode]["median_rps"] / tp["modes"][mode]["median_rps"]
        except (KeyError, TypeError, ZeroDivisionError):
            pass

def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0].strip()
    except Exception:
        return None

out = {
    "schema": 1,
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "kernel": platform.release(),
    "wrk": version(["wrk", "--version"]) or version(["sh", "-c", "wrk --version 2>&1"]),
    "nginx": version(["sh", "-c", "nginx -v 2>&1"]),
    "params": params,
    "configs": configs,
    "ratios_vs_testpmd": ratios,
}
json.dump(out, open(sys.argv[2], "w"), indent=2)
print("bench_e2e: wrote", sys.argv[2])
EOF
log "done in $((SECONDS - start)) s"
