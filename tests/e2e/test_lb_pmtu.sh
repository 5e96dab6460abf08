#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: path MTU discovery through the FullNAT translation (core/icmp_error.hpp), IPv4 and
# IPv6, with a 1280-byte link between the balancer and the real server that neither end host sees:
#
#   client --1500-- fnat_lb --1500-- R1 ==1280== R2 --1500-- RS
#   (rig)           (rig, 2 workers)  (the rig's rs1  (new)     (new: 198.18.9.2, 2001:2:0:9::2;
#                                      namespace,                 a TCP upload/download server)
#                                      now a router)
#
# The client and RS have 1500-byte links, so the MSS options of their SYNs (1460 / 1440) say nothing
# of the bottleneck; only ICMP "fragmentation needed" / "packet too big" can. The balancer reaches
# RS's network through its gateway R1 (198.18.2.11 / 2001:2:0:2::11). Routers forward with
# rp_filter off, offloads off on every veth end (frames no larger than the MTU), DAD off.
#
# What it proves (4 MiB transfers through the VIP, each checked by sha256 at the other end; each
# transfer starts with empty path MTU caches):
#  1. Upload, client -> RS: the client's full-size segments (DF) leave the balancer as LIP -> RS
#     and meet R1's 1280-byte link; R1 sends "fragmentation needed" / "packet too big" to the LIP.
#     The balancer translates each to VIP -> client quoting the client's own segment
#     (icmp_errors_out > 0, per family); the client's kernel lowers its path MTU to the VIP to 1280
#     and the upload completes byte-exact. Without the translation it would hang.
#  2. Download, RS -> client: RS's full-size segments meet the bottleneck at R2, whose error goes to
#     RS itself (the real server learns the MTU of its own path to the LIP); the balancer forwards
#     the smaller segments. The download completes byte-exact, and RS's route cache shows mtu 1280
#     towards the LIP, the client's towards the VIP (each learned from ICMP, not from MSS).
#  3. MSS clamping where ICMP is filtered: the routers' own ICMP is black-holed (policy routing, as a
#     filtering network would). A control upload through a service without mss_clamp stalls (no
#     error reaches anybody: icmp_errors_out unchanged, no path MTU learned). Through services with
#     mss_clamp = 1240 (IPv4) / 1220 (IPv6) to the same server, the balancer lowers the MSS of the
#     client's SYN and of RS's SYN-ACK (mss_clamped: 2 per connection), both ends send segments that
#     fit the 1280-byte link from the first one, and download and upload complete byte-exact.
#  4. The bottleneck on the client side (a second balancer run, with the default gateway on the
#     client port): HOST --1500-- C2 ==1280== C --1500-- lb --1500-- R1 (now the real server).
#     Download: R1's full-size segments meet C's 1280-byte link; C's error to the VIP is translated
#     to R1 as the LIP's, quoting R1's own segment (icmp_errors_in > 0, per family), R1 learns path
#     MTU 1280 to the LIP and the download completes byte-exact. Upload: C2's error reaches HOST
#     directly; the upload completes.
#  5. Nothing unexpected dropped in either run (ICMP errors malformed / unsupported / of no conn,
#     no_conn, too_big, misdirected, ring_full, tx_full, unknown_neighbour are 0); SIGINT: leak
#     check, exit 0, no sanitizer report. (Some non_syn_first drops are expected with 2 workers:
#     when one worker's af_packet ring is full, the kernel's fan-out rolls a flow's packets over to
#     the other worker's socket (PACKET_FANOUT_FLAG_ROLLOVER), which has no conn for them; TCP
#     retransmits. With 1 worker the same run drops nothing.)
#
# Usage: bash tests/e2e/test_lb_pmtu.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_pmtu pmtu "${1:-}" sha256sum

WORKERS=2
MIB=4  # per transfer: upload and download, IPv4 and IPv6

# The namespaces this test adds to the rig: torn down before the rig on any exit.
NS_R2=${FNAT_RIG_PREFIX}r2
NS_SRV=${FNAT_RIG_PREFIX}srv
NS_C2=${FNAT_RIG_PREFIX}c2
NS_HOST=${FNAT_RIG_PREFIX}host
pmtu_down() {
  local ns pid
  for ns in "$NS_SRV" "$NS_R2" "$NS_HOST" "$NS_C2"; do
    [ -e "/run/netns/$ns" ] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
}
trap 'rc=$?; pmtu_down; (exit $rc); e2e_cleanup' EXIT

e2e_rig_up --rs 1 --queues "$WORKERS"
rig stop-servers >>"$E2E_DIR/rig.log" 2>&1 || e2e_die "rig.sh stop-servers failed"
NS_R1=$FNAT_NS_RS  # rs1, 198.18.2.11 / 2001:2:0:2::11 on the balancer's server network

R1_4=198.18.2.11 R1_6=2001:2:0:2::11
LINK4=198.18.8 LINK6=2001:2:0:8   # R1 .1 / ::1, R2 .2 / ::2; mtu 1280
SRV_NET4=198.18.9 SRV_NET6=2001:2:0:9  # R2 .1 / ::1, RS .2 / ::2
RS4=$SRV_NET4.2 RS6=$SRV_NET6::2
PORT=8000       # services bulk, bulk6: no MSS clamping
MSS_PORT=8001   # services bulkmss, bulkmss6: the same server, mss_clamp = 1240 / 1220

build_routers() {
  local ns
  set -e
  for ns in "$NS_R2" "$NS_SRV"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  for ns in "$NS_R1" "$NS_R2" "$NS_SRV"; do
    for kv in net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.accept_dad=0 \
      net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0; do
      ip netns exec "$ns" sysctl -qw "$kv" >/dev/null
    done
  done
  for ns in "$NS_R1" "$NS_R2"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
  done
  ip -n "$NS_R1" link add r1-r2 mtu 1280 type veth peer name r2-r1 mtu 1280 netns "$NS_R2"
  ip -n "$NS_R2" link add r2-srv type veth peer name srv-r2 netns "$NS_SRV"
  for x in "$NS_R1 r1-r2" "$NS_R2 r2-r1" "$NS_R2 r2-srv" "$NS_SRV srv-r2"; do
    read -r ns dev <<<"$x"
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null
    for f in tso gso gro; do ip netns exec "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true; done
    ip -n "$ns" link set "$dev" up
  done
  ip -n "$NS_R1" addr add "$LINK4.1/24" dev r1-r2
  ip -n "$NS_R1" -6 addr add "$LINK6::1/64" dev r1-r2 nodad
  ip -n "$NS_R1" route add "$SRV_NET4.0/24" via "$LINK4.2"
  ip -n "$NS_R1" -6 route add "$SRV_NET6::/64" via "$LINK6::2"
  ip -n "$NS_R2" addr add "$LINK4.2/24" dev r2-r1
  ip -n "$NS_R2" -6 addr add "$LINK6::2/64" dev r2-r1 nodad
  ip -n "$NS_R2" addr add "$SRV_NET4.1/24" dev r2-srv
  ip -n "$NS_R2" -6 addr add "$SRV_NET6::1/64" dev r2-srv nodad
  ip -n "$NS_R2" route add default via "$LINK4.1"
  ip -n "$NS_R2" -6 route add default via "$LINK6::1"
  ip -n "$NS_SRV" addr add "$RS4/24" dev srv-r2
  ip -n "$NS_SRV" -6 addr add "$RS6/64" dev srv-r2 nodad
  ip -n "$NS_SRV" route add default via "$SRV_NET4.1"
  ip -n "$NS_SRV" -6 route add default via "$SRV_NET6::1"
  set +e
}
(build_routers) >>"$E2E_DIR/rig.log" 2>&1 || { cat "$E2E_DIR/rig.log"; e2e_die "could not build R1 -- R2 -- RS"; }
check_eq "the link R1 -- R2 has mtu 1280" "$(ip -n "$NS_R1" -o link show r1-r2 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')" 1280
check_eq "RS's own link has mtu 1500" "$(ip -n "$NS_SRV" -o link show srv-r2 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')" 1500
check_eq "the client's own link has mtu 1500" "$(ip -n "$FNAT_NS_CLIENT" -o link show "$FNAT_IF_CLIENT" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')" 1500
check "tx checksum offload is off on the new veth ends" \
  bash -c "ip netns exec $NS_R2 ethtool -k r2-r1 | grep -q '^tx-checksumming: off' && ip netns exec $NS_SRV ethtool -k srv-r2 | grep -q '^tx-checksumming: off'"

# The payload, random, and the server: 'U' + bytes until EOF -> the sha256 (hex) of those bytes;
# 'D' -> the payload, then EOF.
PAYLOAD=$E2E_DIR/payload.bin
head -c $((MIB << 20)) /dev/urandom >"$PAYLOAD"
WANT=$(sha256sum "$PAYLOAD" | cut -c1-64)
cat >"$E2E_DIR/server.py" <<'PY'
import hashlib, socket, sys, threading
data = open(sys.argv[4], "rb").read()
def serve(c):
    with c:
        op = c.recv(1)
        if op == b"D":
            c.sendall(data)
        elif op == b"U":
            h = hashlib.sha256()
            while chunk := c.recv(1 << 16):
                h.update(chunk)
            c.sendall(h.hexdigest().encode())
socks = []
for fam, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(sys.argv[3])))
    s.listen(16)
    socks.append(s)
    threading.Thread(target=lambda s=s: [threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start() for _ in iter(int, 1)], daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
# start_server NS ADDR4 ADDR6 LOG: the server in NS, listening on PORT of both addresses.
start_server() {
  ip netns exec "$1" "$E2E_PY" "$E2E_DIR/server.py" "$2" "$3" "$PORT" "$PAYLOAD" >"$4" 2>&1 </dev/null &
  e2e_wait_for 20 grep -qs ready "$4" || e2e_die "the transfer server in $1 did not start"
}
start_server "$NS_SRV" "$RS4" "$RS6" "$E2E_DIR/server.log"

cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"
"$E2E_PY" - "$cfg" "$R1_4" "$R1_6" "$RS4" "$RS6" "$PORT" "$FNAT_VIP4" "$FNAT_VIP6" "$FNAT_LIP4" "$FNAT_LIP6" <<'PY' ||
import sys
cfg, r1_4, r1_6, rs4, rs6, port, vip4, vip6, lip4, lip6 = sys.argv[1:]
text = open(cfg).read()
text = text[:text.index("\n[service ")]  # the rig's services name its real servers; ours is behind R1
text = text.replace("role = server\n", f"role = server\ngateway = {r1_4}\ngateway = {r1_6}\n")
for name, vip, lips, rs, vport, clamp in (
        ("bulk", vip4, lip4.split(), f"{rs4}:{port}", port, 0), ("bulk6", vip6, lip6.split(), f"[{rs6}]:{port}", port, 0),
        ("bulkmss", vip4, lip4.split(), f"{rs4}:{port}", int(port) + 1, 1240),
        ("bulkmss6", vip6, lip6.split(), f"[{rs6}]:{port}", int(port) + 1, 1220)):
    text += f"\n[service {name}]\nvip = {vip}\nvport = {vport}\nproto = tcp\nmss_clamp = {clamp}\n"
    text += "".join(f"lip = {l}\n" for l in lips) + f"rs = {rs}\n"
open(cfg, "w").write(text)
PY
  e2e_die "could not write $cfg"
e2e_lb_start "$cfg" "$WORKERS"

# transfer OP ADDRESS [VPORT [STALL_S]]: one connection to ADDRESS:VPORT (default PORT); U uploads
# the payload and prints the sha256 the server computed; D downloads and prints the sha256 of what
# arrived; "error: ..." when a connect, send or receive makes no progress for STALL_S (default 60) s.
CLIENT_NS=$FNAT_NS_CLIENT  # where transfer runs
transfer() {
  timeout 100 ip netns exec "$CLIENT_NS" "$E2E_PY" - "$1" "$2" "${3:-$PORT}" "$PAYLOAD" "${4:-60}" <<'PY'
import hashlib, socket, sys
op, addr, port, path, stall = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
try:
    s = socket.create_connection((addr, port), timeout=stall)
    s.sendall(op.encode())
    if op == "U":
        s.sendall(open(path, "rb").read())
        s.shutdown(socket.SHUT_WR)
        print(s.recv(64).decode())
    else:
        h = hashlib.sha256()
        while chunk := s.recv(1 << 16):
            h.update(chunk)
        print(h.hexdigest())
except OSError as e:
    print("error:", e)
PY
}
stat_of() { jeval "d[\"$1\"]" "$(tel /fnat/stats)"; }
# route_mtu NS ADDRESS: the path MTU the kernel of NS holds for ADDRESS (empty when none learned).
route_mtu() { ip -n "$1" route get "$2" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p' | head -1; }

# Each transfer starts from empty path MTU caches: a host that knows the path MTU advertises it in
# its MSS (Linux derives advmss from the route's MTU), and the other end would never send too big.
PMTU_HOSTS="$FNAT_NS_CLIENT $NS_SRV"  # the end hosts of the transfers
flush_pmtu() {
  local ns
  for ns in $PMTU_HOSTS; do
    ip -n "$ns" route flush cache
    ip -n "$ns" -6 route flush cache
  done
}
for fam in 4 6; do
  if [ $fam = 4 ]; then vip=$FNAT_VIP4 lip=${FNAT_LIP4%% *}; else vip=$FNAT_VIP6 lip=$FNAT_LIP6; fi
  e2e_log "IPv$fam: $MIB MiB down from $vip:$PORT, then $MIB MiB up"
  flush_pmtu
  check_eq "IPv$fam: RS's path MTU to the LIP is unknown before" "$(route_mtu "$NS_SRV" "$lip")" ""
  t0=$EPOCHREALTIME
  check_eq "IPv$fam download: the client received every byte (sha256)" "$(transfer D "$vip")" "$WANT"
  e2e_log "IPv$fam download took $(jeval "round($EPOCHREALTIME - $t0, 2)") s"
  check_eq "IPv$fam: RS learned path MTU 1280 to the LIP (from R2)" "$(route_mtu "$NS_SRV" "$lip")" 1280
  flush_pmtu
  out0=$(stat_of icmp_errors_out)
  check_eq "IPv$fam: the client's path MTU to the VIP is unknown before" "$(route_mtu "$FNAT_NS_CLIENT" "$vip")" ""
  t0=$EPOCHREALTIME
  check_eq "IPv$fam upload: RS received every byte (sha256)" "$(transfer U "$vip")" "$WANT"
  e2e_log "IPv$fam upload took $(jeval "round($EPOCHREALTIME - $t0, 2)") s"
  out=$(($(stat_of icmp_errors_out) - out0))
  e2e_log "IPv$fam: R1's errors translated towards the client (icmp_errors_out): $out"
  check "IPv$fam: R1's errors reached the client as the VIP's (icmp_errors_out > 0)" is "$out > 0"
  check_eq "IPv$fam: the client learned path MTU 1280 to the VIP" "$(route_mtu "$FNAT_NS_CLIENT" "$vip")" 1280
done

# Phase 2: ICMP black-holed. The routers' own ICMP goes to a blackhole route (policy routing: what
# the router itself sends, iif lo, protocol ICMP / ICMPv6; neighbour discovery does not use the
# routing rules and still works), as a network that filters ICMP would. Path MTU discovery cannot
# work any more: the unclamped services stall (the control), while mss_clamp makes both ends send
# segments that fit the 1280-byte link from the first one.
icmp_blackhole() {
  local ns
  set -e
  for ns in "$NS_R1" "$NS_R2"; do
    ip -n "$ns" rule add iif lo ipproto icmp table 100
    ip -n "$ns" route add blackhole default table 100
    ip -n "$ns" -6 rule add iif lo ipproto ipv6-icmp table 100
    ip -n "$ns" -6 route add blackhole default table 100
  done
  set +e
}
(icmp_blackhole) >>"$E2E_DIR/rig.log" 2>&1 || e2e_die "could not black-hole the routers' ICMP (ip rule ipproto)"
for fam in 4 6; do
  if [ $fam = 4 ]; then vip=$FNAT_VIP4 lip=${FNAT_LIP4%% *} clamp=1240; else vip=$FNAT_VIP6 lip=$FNAT_LIP6 clamp=1220; fi
  e2e_log "IPv$fam, ICMP black-holed: $MIB MiB down and up through vport $MSS_PORT (mss_clamp = $clamp); a control without"
  flush_pmtu
  out0=$(stat_of icmp_errors_out)
  clamped0=$(stat_of mss_clamped)
  check_eq "IPv$fam control: an upload without mss_clamp stalls, nobody hears of the MTU" \
    "$(transfer U "$vip" "$PORT" 4)" "error: timed out"
  check_eq "IPv$fam: no ICMP error reached the balancer (icmp_errors_out unchanged)" "$(($(stat_of icmp_errors_out) - out0))" 0
  flush_pmtu
  check_eq "IPv$fam, mss_clamp: the download completes (sha256)" "$(transfer D "$vip" "$MSS_PORT" 20)" "$WANT"
  check_eq "IPv$fam, mss_clamp: the upload completes (sha256)" "$(transfer U "$vip" "$MSS_PORT" 20)" "$WANT"
  check_eq "IPv$fam: no path MTU learned by RS (no ICMP)" "$(route_mtu "$NS_SRV" "$lip")" ""
  check_eq "IPv$fam: no path MTU learned by the client (no ICMP)" "$(route_mtu "$FNAT_NS_CLIENT" "$vip")" ""
  n=$(($(stat_of mss_clamped) - clamped0))
  e2e_log "IPv$fam: SYNs and SYN-ACKs clamped: $n"
  check "IPv$fam: both transfers' SYN and SYN-ACK were clamped (mss_clamped >= 4)" is "$n >= 4"
done
check_eq "no SYN or SYN-ACK had options that do not parse (mss_malformed)" "$(stat_of mss_malformed)" 0

s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k.startswith("icmp") or k.startswith("mss") or k in ("inbound", "outbound", "fragmented", "reassembled") or (k.startswith("drop_") and v)}' "$s")"
for k in drop_icmp_error_malformed drop_icmp_error_unsupported drop_icmp_error_no_conn drop_no_conn drop_too_big \
  drop_misdirected drop_ring_full drop_tx_full drop_unknown_neighbour drop_frag_dropped; do
  check_eq "$k" "$(jeval "d[\"$k\"]" "$s")" 0
done
check_eq "no ICMP error went towards a real server (icmp_errors_in)" "$(jeval 'd["icmp_errors_in"]' "$s")" 0
e2e_lb_stop

# Phase 3: the bottleneck on the client side, the other direction of translation.
#   HOST --1500-- C2 ==1280== C (the rig's client namespace, now a router) --1500-- lb --1500-- R1
# R1 (the rig's rs1, on-link with the LIPs) serves this time. Downloads: R1's full-size segments
# leave the balancer as VIP -> HOST and meet C's 1280-byte link; C's error to the VIP is translated
# to R1 as the LIP's, quoting R1's own segment (icmp_errors_in), and R1 learns path MTU 1280 to the
# LIP. Uploads: C2's error goes to HOST itself. A second balancer run: its client port has the
# default gateway C (the balancer has one per family, which phases 1-2 gave the server side).
HOST4=198.18.10.2 HOST6=2001:2:0:10::2   # C2 .10.1 / ::1
CLINK4=198.18.11 CLINK6=2001:2:0:11       # C .1 / ::1, C2 .2 / ::2; mtu 1280
C_4=198.18.0.2 C_6=2001:2:0:1::2          # the rig's client address, now C's
build_client_side() {
  local ns
  set -e
  for ns in "$NS_C2" "$NS_HOST"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  for ns in "$FNAT_NS_CLIENT" "$NS_C2" "$NS_HOST"; do
    for kv in net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.accept_dad=0 \
      net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0; do
      ip netns exec "$ns" sysctl -qw "$kv" >/dev/null
    done
  done
  for ns in "$FNAT_NS_CLIENT" "$NS_C2"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
  done
  ip -n "$FNAT_NS_CLIENT" link add c-c2 mtu 1280 type veth peer name c2-c mtu 1280 netns "$NS_C2"
  ip -n "$NS_C2" link add c2-h type veth peer name h-c2 netns "$NS_HOST"
  for x in "$FNAT_NS_CLIENT c-c2" "$NS_C2 c2-c" "$NS_C2 c2-h" "$NS_HOST h-c2"; do
    read -r ns dev <<<"$x"
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null
    for f in tso gso gro; do ip netns exec "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true; done
    ip -n "$ns" link set "$dev" up
  done
  ip -n "$FNAT_NS_CLIENT" addr add "$CLINK4.1/24" dev c-c2
  ip -n "$FNAT_NS_CLIENT" -6 addr add "$CLINK6::1/64" dev c-c2 nodad
  ip -n "$FNAT_NS_CLIENT" route add "${HOST4%.*}.0/24" via "$CLINK4.2"
  ip -n "$FNAT_NS_CLIENT" -6 route add "${HOST6%::*}::/64" via "$CLINK6::2"
  ip -n "$NS_C2" addr add "$CLINK4.2/24" dev c2-c
  ip -n "$NS_C2" -6 addr add "$CLINK6::2/64" dev c2-c nodad
  ip -n "$NS_C2" addr add "${HOST4%.*}.1/24" dev c2-h
  ip -n "$NS_C2" -6 addr add "${HOST6%::*}::1/64" dev c2-h nodad
  ip -n "$NS_C2" route add default via "$CLINK4.1"
  ip -n "$NS_C2" -6 route add default via "$CLINK6::1"
  ip -n "$NS_HOST" addr add "$HOST4/24" dev h-c2
  ip -n "$NS_HOST" -6 addr add "$HOST6/64" dev h-c2 nodad
  ip -n "$NS_HOST" route add default via "${HOST4%.*}.1"
  ip -n "$NS_HOST" -6 route add default via "${HOST6%::*}::1"
  set +e
}
(build_client_side) >>"$E2E_DIR/rig.log" 2>&1 || { cat "$E2E_DIR/rig.log"; e2e_die "could not build HOST -- C2 -- C"; }
start_server "$NS_R1" "$R1_4" "$R1_6" "$E2E_DIR/server_r1.log"
cfg3=$E2E_DIR/lb3.ini
e2e_lb_config "$cfg3" "1-$WORKERS"
"$E2E_PY" - "$cfg3" "$C_4" "$C_6" "$R1_4" "$R1_6" "$PORT" "$FNAT_VIP4" "$FNAT_VIP6" "$FNAT_LIP4" "$FNAT_LIP6" <<'PY' ||
import sys
cfg, c4, c6, rs4, rs6, port, vip4, vip6, lip4, lip6 = sys.argv[1:]
text = open(cfg).read()
text = text[:text.index("\n[service ")]
text = text.replace("role = client\n", f"role = client\ngateway = {c4}\ngateway = {c6}\n")
for name, vip, lips, rs in (("bulk", vip4, lip4.split(), f"{rs4}:{port}"), ("bulk6", vip6, lip6.split(), f"[{rs6}]:{port}")):
    text += f"\n[service {name}]\nvip = {vip}\nvport = {port}\nproto = tcp\n"
    text += "".join(f"lip = {l}\n" for l in lips) + f"rs = {rs}\n"
open(cfg, "w").write(text)
PY
  e2e_die "could not write $cfg3"
e2e_lb_start "$cfg3" "$WORKERS"
CLIENT_NS=$NS_HOST
PMTU_HOSTS="$NS_HOST $NS_R1"
for fam in 4 6; do
  if [ $fam = 4 ]; then vip=$FNAT_VIP4 lip=${FNAT_LIP4%% *}; else vip=$FNAT_VIP6 lip=$FNAT_LIP6; fi
  e2e_log "IPv$fam, bottleneck on the client side: $MIB MiB down from $vip:$PORT to HOST, then $MIB MiB up"
  flush_pmtu
  in0=$(stat_of icmp_errors_in)
  check_eq "IPv$fam: R1's path MTU to the LIP is unknown before" "$(route_mtu "$NS_R1" "$lip")" ""
  check_eq "IPv$fam download to HOST: every byte (sha256)" "$(transfer D "$vip")" "$WANT"
  in=$(($(stat_of icmp_errors_in) - in0))
  e2e_log "IPv$fam: C's errors translated towards the real server (icmp_errors_in): $in"
  check "IPv$fam: C's errors reached R1 as the LIP's (icmp_errors_in > 0)" is "$in > 0"
  check_eq "IPv$fam: R1 learned path MTU 1280 to the LIP" "$(route_mtu "$NS_R1" "$lip")" 1280
  flush_pmtu
  check_eq "IPv$fam upload from HOST: every byte (sha256)" "$(transfer U "$vip")" "$WANT"
  check_eq "IPv$fam: HOST learned path MTU 1280 to the VIP (from C2)" "$(route_mtu "$NS_HOST" "$vip")" 1280
done
s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k.startswith("icmp") or k in ("inbound", "outbound") or (k.startswith("drop_") and v)}' "$s")"
for k in drop_icmp_error_malformed drop_icmp_error_unsupported drop_icmp_error_no_conn drop_no_conn drop_too_big \
  drop_misdirected drop_ring_full drop_tx_full drop_unknown_neighbour; do
  check_eq "$k" "$(jeval "d[\"$k\"]" "$s")" 0
done
e2e_lb_stop
e2e_finish
