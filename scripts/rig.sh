#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The network-namespace rig that the demo, the end-to-end tests and the performance figures share.
#
#   fnat-client                fnat-lb                     fnat-sw                fnat-rs1 .. fnat-rsN
#   cl-lb ---------------- lb-c   (DPDK port 0)                             +---- rs-sw 198.18.2.11
#   198.18.0.2/24                 net_af_packet0                            |     2001:2:0:2::11
#   2001:2:0:1::2/64                                                        |     default via .2.1
#   routes the VIP networks     lb-s  (DPDK port 1) --------- sw-lb -- br0 -+---- rs-sw 198.18.2.12 ...
#   via 198.18.0.1 and          net_af_packet1                (bridge, no L3)
#   2001:2:0:1::1
#
# The lb namespace holds only the two veth ends the balancer opens with net_af_packet (iface=lb-c,
# iface=lb-s, qpairs=Q); its kernel has no address and no IPv6, so it answers nothing and sends
# nothing. The balancer's own addresses (its config, examples/fnat_lb/lb.ini.sample): 198.18.0.1
# and 2001:2:0:1::1 towards the client, VIPs 198.18.1.100 and 2001:2:0:3::100, 198.18.2.1 and
# 2001:2:0:2::1 towards the servers, LIPs 198.18.2.100, 198.18.2.101 and 2001:2:0:2::100. The
# real servers' default routes point at 198.18.2.1 / 2001:2:0:2::1, but their replies go to the
# LIP, which is on-link. Every veth end has tx checksum offload (and TSO/GSO/GRO) off, so the
# balancer sees complete checksums and frames no larger than the MTU; IPv6 DAD is off, so addresses
# are usable at once. MACs are fixed (02:fa:...), so static neighbours can be configured.
#
# Usage: scripts/rig.sh COMMAND
#   up [--rs N] [--queues Q]  build the rig (N real servers, default 3; Q queue pairs, default 2);
#                             an existing rig is torn down first, so up twice gives the same rig
#   down                      stop everything in the rig's namespaces and delete them (also when
#                             half-built)
#   env                       print the rig's names and addresses as shell variables (eval-able)
#   config [--workers LIST]   print an lb.ini for the rig as it is (default workers: 1..Q)
#   serve                     start in each real server: nginx on port 80 (IPv4 and IPv6; GET /
#                             answers "rsI", /1m.bin is 1 MiB) and a UDP echo (socat) on port 5353
#   stop-servers              stop them
#   selftest                  check the rig without the balancer: the lb namespace temporarily
#                             routes (kernel forwarding, no NAT) between the client and the real
#                             servers, then is put back as it was
# Environment: FNAT_RIG_PREFIX (default "fnat-", must start with "fnat-") names the namespaces, so
# two rigs can coexist; FNAT_RIG_STATE (default /tmp/<prefix>rig) holds server configs and pids.
# FNAT_RIG_ACCESS_LOG=1 makes serve's nginx log every request to $FNAT_RIG_STATE/rsI/access.log, one
# line "CLIENT_ADDR CLIENT_PORT SERVER_ADDR URI STATUS" (behind the balancer, CLIENT is a LIP:lport);
# default off (no log, as for performance figures).
# Needs root, iproute2, ethtool, nginx and socat (scripts/bootstrap.sh installs them).
set -euo pipefail

PREFIX=${FNAT_RIG_PREFIX:-fnat-}
case $PREFIX in fnat-*) ;; *) echo "rig.sh: FNAT_RIG_PREFIX must start with fnat-" >&2; exit 2 ;; esac
NS_CLIENT=${PREFIX}client
NS_LB=${PREFIX}lb
NS_SW=${PREFIX}sw
STATE=${FNAT_RIG_STATE:-/tmp/${PREFIX}rig}

IF_CLIENT=cl-lb      # in the client namespace
IF_LB_CLIENT=lb-c    # in the lb namespace: DPDK port 0
IF_LB_SERVER=lb-s    # in the lb namespace: DPDK port 1
IF_SW_LB=sw-lb       # in the switch namespace, bridged
IF_RS=rs-sw          # in each real-server namespace
BRIDGE=br0

CLIENT4=198.18.0.2
CLIENT6=2001:2:0:1::2
LB_CLIENT4=198.18.0.1
LB_CLIENT6=2001:2:0:1::1
VIP_NET4=198.18.1.0/24
VIP_NET6=2001:2:0:3::/64
VIP4=198.18.1.100
VIP6=2001:2:0:3::100
LB_SERVER4=198.18.2.1
LB_SERVER6=2001:2:0:2::1
LIP4="198.18.2.100 198.18.2.101"
LIP6=2001:2:0:2::100
MAC_LB_CLIENT=02:fa:00:00:01:01
MAC_CLIENT=02:fa:00:00:01:02
MAC_LB_SERVER=02:fa:00:00:02:01
HTTP_PORT=80
UDP_PORT=5353

ns_rs() { echo "${PREFIX}rs$1"; }
rs4() { echo "198.18.2.$((10 + $1))"; }
rs6() { echo "2001:2:0:2::$((10 + $1))"; }
rs_mac() { printf '02:fa:00:00:02:%02x' $((10 + $1)); }

die() {
  echo "rig.sh: $*" >&2
  exit 1
}
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (it creates network namespaces)"; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

# The rig's namespaces that exist now (exact names only: other prefixes are left alone).
rig_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | while read -r ns; do
    case $ns in
      "$NS_CLIENT" | "$NS_LB" | "$NS_SW") echo "$ns" ;;
      "${PREFIX}rs"*) [[ ${ns#"${PREFIX}rs"} =~ ^[0-9]+$ ]] && echo "$ns" ;;
    esac
  done
}
rs_count() {
  local n=0
  while [ -e "/run/netns/$(ns_rs $((n + 1)))" ]; do n=$((n + 1)); done
  echo $n
}
queue_count() {
  ip -n "$NS_LB" -d link show "$IF_LB_CLIENT" 2>/dev/null | sed -n 's/.*numrxqueues \([0-9]*\).*/\1/p' | head -1
}
is_up() { [ -e "/run/netns/$NS_LB" ] && quiet ip -n "$NS_LB" link show "$IF_LB_SERVER"; }

# Sets sysctls in a namespace; keys that do not exist are skipped.
ns_sysctl() {
  local ns=$1; shift
  local kv
  for kv in "$@"; do quiet nsx "$ns" sysctl -w "$kv" || true; done
}

# tx checksum offload off (the balancer must see full checksums); segmentation and GRO off too, so
# no frame is larger than the MTU when it reaches an af_packet socket.
offloads_off() {
  local ns=$1 dev=$2
  quiet nsx "$ns" ethtool -K "$dev" tx off || die "ethtool -K $dev tx off failed in $ns"
  local f
  for f in tso gso gro; do quiet nsx "$ns" ethtool -K "$dev" "$f" off || true; done
}

# ---- servers ------------------------------------------------------------------------------------

stop_pid() {  # pid file: TERM, then KILL after 2 s; only if the pid is still alive
  local file=$1 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  rm -f "$file"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 20); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_servers() {
  local d
  [ -d "$STATE" ] || return 0
  for d in "$STATE"/rs*; do
    [ -d "$d" ] || continue
    stop_pid "$d/nginx.pid"
    stop_pid "$d/udp4.pid"
    stop_pid "$d/udp6.pid"
  done
}

write_nginx_conf() {  # dir i
  local d=$1 i=$2 access=off
  [ "${FNAT_RIG_ACCESS_LOG:-0}" = 1 ] && access="$d/access.log fnat_src"
  mkdir -p "$d/html" "$d/tmp"
  printf 'rs%s\n' "$i" >"$d/html/index.txt"
  head -c 1048576 /dev/zero >"$d/html/1m.bin"
  chmod -R a+rX "$d"
  cat >"$d/nginx.conf" <<EOF
# rig.sh: real server rs$i ($(rs4 "$i"), $(rs6 "$i")) in namespace $(ns_rs "$i")
worker_processes 1;
user nobody nogroup;
daemon on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  log_format fnat_src '\$remote_addr \$remote_port \$server_addr \$request_uri \$status';
  access_log $access;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen $(rs4 "$i"):$HTTP_PORT reuseport;
    listen [$(rs6 "$i")]:$HTTP_PORT reuseport;
    root $d/html;
    default_type text/plain;
    location = / { try_files /index.txt =404; }
  }
}
EOF
}

serve() {
  need_root
  is_up || die "the rig is not up; run: $0 up"
  command -v nginx >/dev/null || die "nginx is missing (scripts/bootstrap.sh installs it)"
  command -v socat >/dev/null || die "socat is missing (scripts/bootstrap.sh installs it)"
  stop_servers
  local n i d ns
  n=$(rs_count)
  for i in $(seq "$n"); do
    d=$STATE/rs$i
    ns=$(ns_rs "$i")
    write_nginx_conf "$d" "$i"
    nsx "$ns" nginx -q -p "$d" -c "$d/nginx.conf" || die "nginx did not start in $ns (see $d/error.log)"
    # A UDP echo per family: each datagram is answered from the address it was sent to. The shell
    # records its own pid and becomes socat, so the pid file names socat itself (ip netns exec forks).
    nsx "$ns" sh -c 'echo $$ >"$1"; exec socat -T 2 "$2" EXEC:cat' sh "$d/udp4.pid" \
      "UDP4-RECVFROM:$UDP_PORT,bind=$(rs4 "$i"),reuseaddr,fork" </dev/null >"$d/udp4.log" 2>&1 &
    nsx "$ns" sh -c 'echo $$ >"$1"; exec socat -T 2 "$2" EXEC:cat' sh "$d/udp6.pid" \
      "UDP6-RECVFROM:$UDP_PORT,bind=[$(rs6 "$i")],reuseaddr,fork" </dev/null >"$d/udp6.log" 2>&1 &
  done
  # Ready when every server listens.
  local ok
  for _ in $(seq 50); do
    ok=1
    for i in $(seq "$n"); do
      ns=$(ns_rs "$i")
      [ "$(nsx "$ns" ss -Hlnt "sport = :$HTTP_PORT" | wc -l)" -ge 2 ] || ok=0
      [ "$(nsx "$ns" ss -Hlnu "sport = :$UDP_PORT" | wc -l)" -ge 2 ] || ok=0
    done
    [ $ok = 1 ] && break
    sleep 0.1
  done
  [ $ok = 1 ] || die "servers did not come up (logs in $STATE/rs*)"
  echo "rig.sh: serving in $n real servers (http :$HTTP_PORT, udp echo :$UDP_PORT)"
}

# ---- up / down ----------------------------------------------------------------------------------

down() {
  need_root
  stop_servers
  local ns pid
  for ns in $(rig_namespaces); do
    # Whatever still runs in the namespace (a balancer, a client) was started for the rig.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for ns in $(rig_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$STATE"
}

up() {
  local n=3 q=2
  while [ $# -gt 0 ]; do
    case $1 in
      --rs) n=${2:?--rs needs a number}; shift ;;
      --queues) q=${2:?--queues needs a number}; shift ;;
      *) die "up: unknown option $1 (use --rs N, --queues Q)" ;;
    esac
    shift
  done
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 89 ] || die "--rs $n: give 1..89 real servers"
  [[ $q =~ ^[0-9]+$ ]] && [ "$q" -ge 1 ] && [ "$q" -le 64 ] || die "--queues $q: give 1..64 queue pairs"
  need_root
  down
  # Half-built is never left behind: any failure below (set -e, die) tears down what exists.
  # shellcheck disable=SC2154  # rc is assigned inside the trap
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "rig.sh: up failed; tearing down what was built" >&2; down; fi' EXIT

  local i ns all=("$NS_CLIENT" "$NS_LB" "$NS_SW")
  for i in $(seq "$n"); do all+=("$(ns_rs "$i")"); done
  for ns in "${all[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # Before any link exists, so that new interfaces inherit the defaults.
  for ns in "$NS_LB" "$NS_SW"; do
    ns_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  for ns in "$NS_CLIENT" $(for i in $(seq "$n"); do ns_rs "$i"; done); do
    ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.default.router_solicitations=0 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  done

  # Links are created inside the namespaces (nothing in the root namespace).
  ip -n "$NS_LB" link add "$IF_LB_CLIENT" address "$MAC_LB_CLIENT" numtxqueues "$q" numrxqueues "$q" type veth \
    peer name "$IF_CLIENT" address "$MAC_CLIENT" netns "$NS_CLIENT"
  ip -n "$NS_LB" link add "$IF_LB_SERVER" address "$MAC_LB_SERVER" numtxqueues "$q" numrxqueues "$q" type veth \
    peer name "$IF_SW_LB" netns "$NS_SW"
  ip -n "$NS_SW" link add "$BRIDGE" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip -n "$NS_SW" link set "$IF_SW_LB" master "$BRIDGE"
  for i in $(seq "$n"); do
    ns=$(ns_rs "$i")
    ip -n "$ns" link add "$IF_RS" address "$(rs_mac "$i")" type veth peer name "sw-rs$i" netns "$NS_SW"
    ip -n "$NS_SW" link set "sw-rs$i" master "$BRIDGE"
  done

  # Offloads off on every veth end.
  offloads_off "$NS_CLIENT" "$IF_CLIENT"
  offloads_off "$NS_LB" "$IF_LB_CLIENT"
  offloads_off "$NS_LB" "$IF_LB_SERVER"
  offloads_off "$NS_SW" "$IF_SW_LB"
  for i in $(seq "$n"); do
    offloads_off "$(ns_rs "$i")" "$IF_RS"
    offloads_off "$NS_SW" "sw-rs$i"
  done

  ip -n "$NS_SW" link set "$BRIDGE" up
  ip -n "$NS_SW" link set "$IF_SW_LB" up
  for i in $(seq "$n"); do ip -n "$NS_SW" link set "sw-rs$i" up; done
  ip -n "$NS_LB" link set "$IF_LB_CLIENT" up
  ip -n "$NS_LB" link set "$IF_LB_SERVER" up

  # The client: on-link with the balancer's client side; the VIP networks are routed to it.
  ip -n "$NS_CLIENT" link set "$IF_CLIENT" up
  ip -n "$NS_CLIENT" addr add "$CLIENT4/24" dev "$IF_CLIENT"
  ip -n "$NS_CLIENT" -6 addr add "$CLIENT6/64" dev "$IF_CLIENT" nodad
  ip -n "$NS_CLIENT" route add "$VIP_NET4" via "$LB_CLIENT4" dev "$IF_CLIENT"
  ip -n "$NS_CLIENT" -6 route add "$VIP_NET6" via "$LB_CLIENT6" dev "$IF_CLIENT"

  # The real servers: on-link with the LIPs; default routes through the balancer's server side.
  for i in $(seq "$n"); do
    ns=$(ns_rs "$i")
    ip -n "$ns" link set "$IF_RS" up
    ip -n "$ns" addr add "$(rs4 "$i")/24" dev "$IF_RS"
    ip -n "$ns" -6 addr add "$(rs6 "$i")/64" dev "$IF_RS" nodad
    ip -n "$ns" route add default via "$LB_SERVER4" dev "$IF_RS"
    ip -n "$ns" -6 route add default via "$LB_SERVER6" dev "$IF_RS"
  done
  trap - EXIT
  mkdir -p "$STATE"
  echo "rig.sh: up with $n real servers, $q queue pairs (namespaces ${PREFIX}{client,lb,sw,rs1..rs$n})"
}

# ---- env / config -------------------------------------------------------------------------------

print_env() {
  local n q up=0 i rs4s="" rs6s="" macs="" nss=""
  if is_up; then
    up=1
    n=$(rs_count)
    q=$(queue_count)
  else
    n=3
    q=2
  fi
  for i in $(seq "$n"); do
    rs4s+="${rs4s:+ }$(rs4 "$i")"
    rs6s+="${rs6s:+ }$(rs6 "$i")"
    macs+="${macs:+ }$(rs_mac "$i")"
    nss+="${nss:+ }$(ns_rs "$i")"
  done
  cat <<EOF
FNAT_RIG_UP=$up
FNAT_RIG_PREFIX=$PREFIX
FNAT_RIG_STATE=$STATE
FNAT_RS_COUNT=$n
FNAT_QUEUES=$q
FNAT_NS_CLIENT=$NS_CLIENT
FNAT_NS_LB=$NS_LB
FNAT_NS_SWITCH=$NS_SW
FNAT_NS_RS="$nss"
FNAT_IF_CLIENT=$IF_CLIENT
FNAT_IF_LB_CLIENT=$IF_LB_CLIENT
FNAT_IF_LB_SERVER=$IF_LB_SERVER
FNAT_EAL_VDEVS="--vdev net_af_packet0,iface=$IF_LB_CLIENT,qpairs=$q --vdev net_af_packet1,iface=$IF_LB_SERVER,qpairs=$q"
FNAT_CLIENT4=$CLIENT4
FNAT_CLIENT6=$CLIENT6
FNAT_CLIENT_MAC=$MAC_CLIENT
FNAT_LB_CLIENT4=$LB_CLIENT4
FNAT_LB_CLIENT6=$LB_CLIENT6
FNAT_LB_CLIENT_MAC=$MAC_LB_CLIENT
FNAT_LB_SERVER4=$LB_SERVER4
FNAT_LB_SERVER6=$LB_SERVER6
FNAT_LB_SERVER_MAC=$MAC_LB_SERVER
FNAT_VIP4=$VIP4
FNAT_VIP6=$VIP6
FNAT_VIP_NET4=$VIP_NET4
FNAT_VIP_NET6=$VIP_NET6
FNAT_LIP4="$LIP4"
FNAT_LIP6=$LIP6
FNAT_RS4="$rs4s"
FNAT_RS6="$rs6s"
FNAT_RS_MACS="$macs"
FNAT_HTTP_PORT=$HTTP_PORT
FNAT_UDP_PORT=$UDP_PORT
EOF
}

print_config() {
  local workers="" n q i
  while [ $# -gt 0 ]; do
    case $1 in
      --workers) workers=${2:?--workers needs a list}; shift ;;
      *) die "config: unknown option $1 (use --workers LIST)" ;;
    esac
    shift
  done
  is_up || die "the rig is not up; run: $0 up"
  n=$(rs_count)
  q=$(queue_count)
  [ -n "$workers" ] || workers=$([ "$q" -eq 1 ] && echo 1 || echo "1-$q")
  cat <<EOF
# fnat_lb configuration for the rig ($n real servers, $q queue pairs), written by scripts/rig.sh config.
# EAL: $(print_env | sed -n 's/^FNAT_EAL_VDEVS="\(.*\)"$/\1/p')
[global]
workers = $workers

[port net_af_packet0]
role = client
address = $LB_CLIENT4/24
address = $LB_CLIENT6/64
address = ${VIP_NET4%.0/24}.1/24
address = ${VIP_NET6%::/64}::1/64

[port net_af_packet1]
role = server
address = $LB_SERVER4/24
address = $LB_SERVER6/64
EOF
  local svc proto port vip lips fam
  for svc in web:tcp:$HTTP_PORT:4 web6:tcp:$HTTP_PORT:6 echo:udp:$UDP_PORT:4 echo6:udp:$UDP_PORT:6; do
    IFS=: read -r name proto port fam <<<"$svc"
    if [ "$fam" = 4 ]; then vip=$VIP4; lips=$LIP4; else vip=$VIP6; lips=$LIP6; fi
    printf '\n[service %s]\nvip = %s\nvport = %s\nproto = %s\nscheduler = %s\n' "$name" "$vip" "$port" "$proto" \
      "$([ "$proto" = tcp ] && echo wrr || echo rr)"
    for l in $lips; do echo "lip = $l"; done
    for i in $(seq "$n"); do
      if [ "$fam" = 4 ]; then echo "rs = $(rs4 "$i"):$port"; else echo "rs = [$(rs6 "$i")]:$port"; fi
    done
  done
}

# ---- selftest: the rig checked with the kernel as a stand-in router -----------------------------

selftest() {
  need_root
  is_up || die "the rig is not up; run: $0 up"
  local n i ns pass=0 fail=0 body out was_serving=1
  n=$(rs_count)
  check() {  # description, command...
    local what=$1; shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "rig.sh selftest: FAIL: $what" >&2; fi
  }
  # Static properties first.
  check "tx checksum offload off on $IF_CLIENT" sh -c "ip netns exec $NS_CLIENT ethtool -k $IF_CLIENT | grep -q '^tx-checksumming: off'"
  check "tx checksum offload off on $IF_LB_CLIENT" sh -c "ip netns exec $NS_LB ethtool -k $IF_LB_CLIENT | grep -q '^tx-checksumming: off'"
  check "tx checksum offload off on $IF_LB_SERVER" sh -c "ip netns exec $NS_LB ethtool -k $IF_LB_SERVER | grep -q '^tx-checksumming: off'"
  check "no address in the lb namespace" sh -c "[ -z \"\$(ip -n $NS_LB -o addr show scope global)\" ]"
  check "the client routes the IPv4 VIP to the balancer" sh -c "ip -n $NS_CLIENT route get $VIP4 | grep -q 'via $LB_CLIENT4'"
  check "the client routes the IPv6 VIP to the balancer" sh -c "ip -n $NS_CLIENT -6 route get $VIP6 | grep -q 'via $LB_CLIENT6'"
  for i in $(seq "$n"); do
    ns=$(ns_rs "$i")
    check "tx checksum offload off in $ns" sh -c "ip netns exec $ns ethtool -k $IF_RS | grep -q '^tx-checksumming: off'"
    check "no tentative address in $ns" sh -c "[ -z \"\$(ip -n $ns -6 addr show tentative)\" ]"
    check "the LIP is on-link in $ns" sh -c "! ip -n $ns route get ${LIP4%% *} | grep -q via"
  done
  if [ ! -f "$STATE/rs1/nginx.pid" ]; then
    was_serving=0
    serve >/dev/null
  fi
  # Stand-in: the lb namespace routes (no NAT), the client reaches the real servers directly.
  ns_sysctl "$NS_LB" "net.ipv6.conf.$IF_LB_CLIENT.disable_ipv6=0" "net.ipv6.conf.$IF_LB_SERVER.disable_ipv6=0" \
    "net.ipv6.conf.$IF_LB_CLIENT.accept_dad=0" "net.ipv6.conf.$IF_LB_SERVER.accept_dad=0" \
    net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip -n "$NS_LB" addr add "$LB_CLIENT4/24" dev "$IF_LB_CLIENT"
  ip -n "$NS_LB" addr add "$LB_SERVER4/24" dev "$IF_LB_SERVER"
  ip -n "$NS_LB" -6 addr add "$LB_CLIENT6/64" dev "$IF_LB_CLIENT" nodad
  ip -n "$NS_LB" -6 addr add "$LB_SERVER6/64" dev "$IF_LB_SERVER" nodad
  ip -n "$NS_CLIENT" route add 198.18.2.0/24 via "$LB_CLIENT4"
  ip -n "$NS_CLIENT" -6 route add 2001:2:0:2::/64 via "$LB_CLIENT6"
  for i in $(seq "$n"); do
    for a in "$(rs4 "$i")" "[$(rs6 "$i")]"; do
      body=$(nsx "$NS_CLIENT" curl -sS --max-time 5 "http://$a:$HTTP_PORT/" 2>&1 || true)
      check "http to $a answers rs$i (got '$body')" [ "$body" = "rs$i" ]
    done
    body=$(nsx "$NS_CLIENT" curl -sS --max-time 5 -o /dev/null -w '%{size_download}' "http://$(rs4 "$i"):$HTTP_PORT/1m.bin" 2>&1 || true)
    check "1 MiB from rs$i (got $body bytes)" [ "$body" = 1048576 ]
    out=$(echo "ping rs$i" | nsx "$NS_CLIENT" socat -T 2 - "UDP4:$(rs4 "$i"):$UDP_PORT" 2>&1 || true)
    check "udp echo from $(rs4 "$i") (got '$out')" [ "$out" = "ping rs$i" ]
    out=$(echo "ping6 rs$i" | nsx "$NS_CLIENT" socat -T 2 - "UDP6:[$(rs6 "$i")]:$UDP_PORT" 2>&1 || true)
    check "udp echo from $(rs6 "$i") (got '$out')" [ "$out" = "ping6 rs$i" ]
  done
  # Back as it was.
  ip -n "$NS_CLIENT" route del 198.18.2.0/24 via "$LB_CLIENT4" || true
  ip -n "$NS_CLIENT" -6 route del 2001:2:0:2::/64 via "$LB_CLIENT6" || true
  ip -n "$NS_LB" addr flush dev "$IF_LB_CLIENT"
  ip -n "$NS_LB" addr flush dev "$IF_LB_SERVER"
  ns_sysctl "$NS_LB" net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 \
    "net.ipv6.conf.$IF_LB_CLIENT.disable_ipv6=1" "net.ipv6.conf.$IF_LB_SERVER.disable_ipv6=1"
  nsx "$NS_CLIENT" ip neigh flush all || true
  for i in $(seq "$n"); do nsx "$(ns_rs "$i")" ip neigh flush all || true; done
  check "the lb namespace has no address again" sh -c "[ -z \"\$(ip -n $NS_LB -o addr show scope global)\" ]"
  [ $was_serving = 1 ] || stop_servers
  echo "rig.sh selftest: $pass passed, $fail failed"
  [ $fail = 0 ]
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) up "$@" ;;
  down) down ;;
  env) print_env ;;
  config) print_config "$@" ;;
  serve) serve ;;
  stop-servers) need_root; stop_servers ;;
  selftest) selftest ;;
  *)
    sed -n '/^# Usage:/,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
