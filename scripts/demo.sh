#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 1: the reference FullNAT balancer (examples/fnat_lb) at work on this machine.
#
# As root on a fresh Debian 12, in a clone of the repository:
#   scripts/demo.sh [--no-bootstrap] [--workers N]
#
# It installs the packages (scripts/bootstrap.sh), builds the balancer alone (Release, no tests, no
# benchmarks, checked mode off, into build/demo), builds a small topology of network namespaces and
# veth pairs (scripts/rig.sh, prefix fnat-demo-): a client, the balancer on two net_af_packet ports
# with N queue pairs each and N workers (default 3, 2..4; idle = backoff, since client, servers and
# balancer share the machine's cores), three real servers running nginx and a socat UDP echo. Then it
# sends real requests through the VIPs (curl over IPv4 and IPv6, a UDP echo, a wrk run), shows what
# the real servers saw (requests per server, their source addresses: the LIPs, never the client),
# the balancer's per-lcore telemetry, its local port pools and steering, and its final summary and
# leak check. Everything it built at run time (namespaces, processes, files) goes away on exit, also
# on Ctrl-C or SIGTERM. Exit status 0 when every step worked, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bootstrap=1
WORKERS=3
while [ $# -gt 0 ]; do
  case $1 in
    --no-bootstrap) bootstrap=0 ;;
    --workers) WORKERS=${2:?--workers needs a number}; shift ;;
    *) echo "usage: $0 [--no-bootstrap] [--workers 2..4]" >&2; exit 2 ;;
  esac
  shift
done
[[ $WORKERS =~ ^[2-4]$ ]] || { echo "demo.sh: --workers takes 2, 3 or 4" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it installs packages and creates network namespaces)" >&2; exit 1; }

BUILD=$ROOT/build/demo
LB=$BUILD/examples/fnat_lb/fnat_lb
PY=/usr/bin/python3
EAL_PREFIX=fnat-demo
export FNAT_RIG_PREFIX=fnat-demo-
export FNAT_RIG_ACCESS_LOG=1
failures=0
lb_pid=""
work=""

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
bad() {
  failures=$((failures + 1))
  printf '   \033[31mFAILED:\033[0m %s\n' "$*"
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM HUP  # the teardown runs to its end, even when the signal comes again
  if [ -n "$lb_pid" ] && kill -0 "$lb_pid" 2>/dev/null; then
    kill -INT "$lb_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$lb_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$lb_pid" 2>/dev/null || true
  fi
  if [ -n "$work" ]; then
    timeout 120 scripts/rig.sh down >/dev/null 2>&1 || echo "demo.sh: rig.sh down failed" >&2
    rm -rf "/var/run/dpdk/$EAL_PREFIX"
    if [ "$rc" -ne 0 ] && [ -s "$work/lb.log" ]; then
      cp "$work/lb.log" "/tmp/fnat-demo-lb.log" && echo "demo.sh: the balancer's output is in /tmp/fnat-demo-lb.log"
    fi
    rm -rf "$work"
    echo "demo.sh: namespaces ${FNAT_RIG_PREFIX}* removed"
  fi
  exit "$rc"
}

# The balancer's telemetry through DPDK's own client (what an operator would type).
tel() { echo "$1" | timeout 10 "$PY" /usr/bin/dpdk-telemetry.py -f "$EAL_PREFIX" | tail -n 1; }

cat <<EOF
fnat demo: the reference FullNAT balancer on DPDK af_packet ports, between a client and three real
servers in network namespaces. Real requests go through its VIPs; the servers see the balancer's
local addresses (LIPs) as their clients, and each reply reaches the lcore that owns its connection.
EOF

# ---- 1. packages, build --------------------------------------------------------------------------
step "1. Packages (scripts/bootstrap.sh)"
if [ $bootstrap = 1 ]; then scripts/bootstrap.sh | sed 's/^/   /'; else say "skipped (--no-bootstrap)"; fi

step "2. Build the balancer alone: Release, no tests, no benchmarks, checked mode off, into build/demo"
start=$(date +%s)
mkdir -p "$(dirname "$BUILD")"  # a fresh clone has no build/ yet: the logs below go there
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFNAT_BUILD_TESTS=OFF -DFNAT_BUILD_BENCH=OFF \
  -DFNAT_CHECKED=OFF >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target fnat_lb >"$BUILD.build.log" 2>&1 || { tail -n 40 "$BUILD.build.log"; exit 1; }
say "$LB ($(($(date +%s) - start)) s)"

trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted"; exit 130' INT
trap 'echo "demo.sh: terminated"; exit 143' TERM
work=$(mktemp -d /tmp/fnat-demo.XXXXXX)
chmod 755 "$work"  # the servers' nginx workers (user nobody) read their pages below it
export FNAT_RIG_STATE=$work/rig

# ---- 3. topology ------------------------------------------------------------------------------------
step "3. Topology: network namespaces and veth pairs (scripts/rig.sh, prefix $FNAT_RIG_PREFIX)"
timeout 120 scripts/rig.sh up --rs 3 --queues "$WORKERS" >/dev/null
timeout 60 scripts/rig.sh serve >/dev/null
set -a
eval "$(scripts/rig.sh env)"
set +a
cat <<EOF
   $FNAT_NS_CLIENT ($FNAT_CLIENT4, $FNAT_CLIENT6)
       |  veth $FNAT_IF_CLIENT <-> $FNAT_IF_LB_CLIENT
   $FNAT_NS_LB: the balancer, DPDK port 0 = net_af_packet on $FNAT_IF_LB_CLIENT, port 1 = on $FNAT_IF_LB_SERVER,
       |  $WORKERS queue pairs each; VIPs $FNAT_VIP4 and $FNAT_VIP6, LIPs $FNAT_LIP4 $FNAT_LIP6
       |  veth $FNAT_IF_LB_SERVER <-> bridge in $FNAT_NS_SWITCH
   ${FNAT_NS_RS// /, }: real servers $FNAT_RS4 (and IPv6),
       nginx on :$FNAT_HTTP_PORT (GET / answers "rsN") and a socat UDP echo on :$FNAT_UDP_PORT
EOF

# ---- 4. the balancer ----------------------------------------------------------------------------------
step "4. Start the balancer: $WORKERS workers, one per queue pair (idle = backoff: cores are shared)"
cfg=$work/lb.ini
scripts/rig.sh config --workers "1-$WORKERS" >"$cfg"
# Short timeouts for the states a flow ends in, so that closed connections leave within seconds and
# the pools are seen whole again.
sed -i "s/^workers = .*/&\nidle = backoff\nconns_per_lcore = 65536\n\n[timeouts]\ntcp_time_wait = 2\ntcp_close = 2\nudp_oneway = 2\nudp_normal = 2/" "$cfg"
# The lcores float over the CPUs this process may use (EAL rejects CPUs outside its affinity).
cpus=$("$PY" -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
read -r -a vdevs <<<"$FNAT_EAL_VDEVS"
eal=(--no-huge --no-shconf --no-pci -m 512 --file-prefix "$EAL_PREFIX" --lcores "(0-$WORKERS)@($cpus)" "${vdevs[@]}")
say "ip netns exec $FNAT_NS_LB $LB ${eal[*]} -- --config lb.ini"
ip netns exec "$FNAT_NS_LB" "$LB" "${eal[@]}" -- --config "$cfg" >"$work/lb.log" 2>&1 </dev/null &
lb_pid=$!
for _ in $(seq 600); do
  grep -qs '^fnat_lb: ready' "$work/lb.log" && [ -S "/var/run/dpdk/$EAL_PREFIX/dpdk_telemetry.v2" ] && break
  kill -0 "$lb_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -qs '^fnat_lb: ready' "$work/lb.log"; then
  tail -n 20 "$work/lb.log"
  bad "the balancer did not start"
  exit 1
fi
sed -n '/^fnat_lb: port plan/,/^fnat_lb: ready/p' "$work/lb.log" | cut -c1-160 | sed 's/^/   /'

# ---- 5. traffic ---------------------------------------------------------------------------------------
step "5. Requests through the VIPs"
for url in "http://$FNAT_VIP4/" "http://$FNAT_VIP4/" "http://$FNAT_VIP4/" "http://$FNAT_VIP4/" \
  "http://[$FNAT_VIP6]/" "http://[$FNAT_VIP6]/" "http://[$FNAT_VIP6]/"; do
  if body=$(timeout 10 ip netns exec "$FNAT_NS_CLIENT" curl -sS --max-time 5 "$url" 2>&1) && [[ $body =~ ^rs[0-9]+$ ]]; then
    say "curl $url  ->  $body"
  else
    bad "curl $url: $body"
  fi
done
for dst in "UDP4:$FNAT_VIP4:$FNAT_UDP_PORT" "UDP6:[$FNAT_VIP6]:$FNAT_UDP_PORT"; do
  msg="hello over ${dst%%:*} from the client"
  got=$(echo "$msg" | timeout 10 ip netns exec "$FNAT_NS_CLIENT" socat -T 3 - "$dst" 2>&1 || true)
  if [ "$got" = "$msg" ]; then say "socat $dst: sent and echoed \"$got\""; else bad "UDP echo via $dst: got '$got'"; fi
done
say "wrk -t2 -c16 -d5s http://$FNAT_VIP4/  (16 connections, 5 seconds):"
if timeout 60 ip netns exec "$FNAT_NS_CLIENT" wrk -t2 -c16 -d5s --timeout 5s "http://$FNAT_VIP4/" >"$work/wrk.out" 2>&1; then
  grep -E 'Latency|requests in|Requests/sec|Socket errors|Non-2xx' "$work/wrk.out" | sed 's/^ */     /'
  grep -qE 'Socket errors|Non-2xx' "$work/wrk.out" && bad "wrk saw errors"
else
  cat "$work/wrk.out"
  bad "wrk failed"
fi

# ---- 6. the real servers' view ----------------------------------------------------------------------------
step "6. What the real servers saw (their nginx access logs: source address of every request)"
sleep 0.5
read -r -a lips <<<"$FNAT_LIP4 $FNAT_LIP6"
"$PY" - "$FNAT_RIG_STATE" "$FNAT_RS_COUNT" "$FNAT_CLIENT4" "$FNAT_CLIENT6" "${lips[@]}" <<'EOF' || bad "a server saw a source that is not a LIP"
import collections, sys
state, n, client4, client6, lips = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], set(sys.argv[5:])
ok = True
total = 0
for i in range(1, n + 1):
    with open(f"{state}/rs{i}/access.log") as f:
        lines = [line.split() for line in f if line.strip()]
    src = collections.Counter(l[0] for l in lines)
    conns = len({(l[0], l[1]) for l in lines})
    total += len(lines)
    print(f"   rs{i}: {len(lines):6d} requests on {conns:2d} connections, from "
          + ", ".join(f"{a} ({c})" for a, c in sorted(src.items())))
    ok &= set(src) <= lips
print(f"   {total} requests in all; sources are LIPs only: {'yes' if ok else 'NO'}; "
      f"the client ({client4}, {client6}) never appears: {'yes' if ok else 'NO'}")
print("   (the scheduler spreads connections; wrk keeps its 16 open, so requests follow them)")
sys.exit(0 if ok else 1)
EOF

# ---- 7. telemetry -------------------------------------------------------------------------------------------
step "7. The balancer's telemetry (dpdk-telemetry.py -f $EAL_PREFIX)"
say "waiting for the connections to close and time out..."
for _ in $(seq 100); do
  s=$(tel /fnat/stats) || s='{"/fnat/stats": {}}'
  [ "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1])["/fnat/stats"]; print(int(d.get("conns_created") == d.get("conns_expired") and d.get("conns_live") == 0))' "$s")" = 1 ] && break
  sleep 0.2
done
"$PY" - "$(tel /fnat/lcores)" "$(tel /fnat/sapool)" "$(tel /fnat/ports)" <<'EOF' || bad "telemetry could not be read"
import json, sys
lc = json.loads(sys.argv[1])["/fnat/lcores"]
sp = json.loads(sys.argv[2])["/fnat/sapool"]
ports = json.loads(sys.argv[3])["/fnat/ports"]
print("   /fnat/lcores: per worker lcore")
cols = [("rx_packets", "rx"), ("tx_packets", "tx"), ("inbound", "inbound"), ("outbound", "outbound"),
        ("conns_created", "conns"), ("conns_live", "live"), ("redirected_out", "redir out"),
        ("redirected_in", "redir in"), ("drops", "drops")]
print("     lcore" + "".join(f"{h:>11}" for _, h in cols))
for i, lcore in enumerate(lc["lcore"]):
    print(f"     {lcore:5d}" + "".join(f"{lc[k][i]:11d}" for k, _ in cols))
print("   replies reach the lcore that owns their conn: redirected out = in "
      f"({sum(lc['redirected_out'])} = {sum(lc['redirected_in'])}), no_conn drops: {sum(lc['drop_no_conn'])}")
print("   /fnat/sapool: local ports per LIP and lcore, used / free")
for i, lip in enumerate(sp["lips"]):
    cells = []
    for lcore in lc["lcore"]:
        cells.append(f"lcore {lcore}: {sp[f'lcore{lcore}_used'][i]} / {sp[f'lcore{lcore}_free'][i]}")
    print(f"     {lip:>16}  " + ",  ".join(cells))
print("   /fnat/ports: " + ", ".join(f"{p}: {m}" for p, m in ports.items())
      + "  (af_packet has no flow rules and no RETA: replies are steered by software redirect)")
EOF

# ---- 8. stop ---------------------------------------------------------------------------------------------------
step "8. Stop the balancer (SIGINT): its summary and leak check"
kill -INT "$lb_pid"
for _ in $(seq 300); do kill -0 "$lb_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$lb_pid" 2>/dev/null; then
  bad "the balancer did not stop within 30 s"
  exit 1
fi
rc=0
wait "$lb_pid" || rc=$?
lb_pid=""
sed -n '/^fnat_lb: rx /,$p' "$work/lb.log" | grep -v '^fnat_lb: summary {' | sed 's/^/   /'
[ "$rc" -eq 0 ] || bad "the balancer exited with status $rc"
grep -qx 'fnat_lb: leak check: every sa_pool whole, no conn object in use' "$work/lb.log" || bad "the leak check did not pass"

step "Done"
if [ "$failures" -eq 0 ]; then
  say "every step worked; tearing the topology down"
  exit 0
fi
say "$failures step(s) failed (see above); tearing the topology down"
exit 1
