#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: IPv4 (and IPv6) fragments reassembled by the balancer itself, on the namespace rig with
# DPDK's net_pcap PMD on the rig's veth ends instead of net_af_packet.
#
# Why a second fragment test: DPDK 22.11's net_af_packet joins its fan-out group with
# PACKET_FANOUT_FLAG_DEFRAG, so the lb namespace's kernel reassembles IPv4 before the PMD sees it,
# and the PMD copies each frame into one mbuf of a 2048-byte frame slot (no multi-segment rx): the
# balancer never gets an IPv4 fragment there (test_lb_frag.sh). net_pcap opens the interface through
# libpcap (rx_iface_in: received frames only, no fan-out, no defrag, 64 KiB snapshot, multi-segment
# mbufs for larger frames), so every fragment the client's and the servers' kernels send reaches
# the balancer's reassembly as sent. net_pcap has one queue per interface: 1 worker.
#
# What it proves:
#  1. IPv4 and IPv6 UDP datagrams of 3000 to 8000 bytes each way through the VIP, byte-exact: the
#     client's kernel fragments them for its 1500-byte link, the balancer reassembles them
#     (rte_ip_frag), translates, fragments again for the server link; the real server's echo comes
#     back fragmented by its kernel, is reassembled, translated and fragmented for the client.
#     Telemetry, exactly: frags_in = the fragments both kernels sent (IPv4: ceil((n+8)/1480),
#     IPv6: ceil((n+8)/1448) per datagram of n bytes, each way), reassembled = fragmented = 2 per
#     echo, frags_out = frags_in (same MTU on every link), no drop.
#  2. An IPv4 fragment flood beside the legitimate traffic: many more first fragments of datagrams
#     that never complete, from the client's own address, than the reassembly table holds
#     (frag_entries = 1024); the legitimate IPv4 datagrams sent during the flood all come back
#     byte-exact, the flood's fragments end as counted drops (frag_dropped).
#  3. SIGINT: leak check, exit 0, no sanitizer report.
#
# Usage: bash tests/e2e/test_lb_frag4.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_frag4 frag4 "${1:-}"

WORKERS=1
PER_SIZE=3           # datagrams per size and family
SIZES="3000 4500 6000 8000"
FLOOD=3000           # IPv4 first fragments in the flood

e2e_rig_up --rs 2 --queues 1
read -r -a NS_RS <<<"$FNAT_NS_RS"
read -r -a RS4 <<<"$FNAT_RS4"
read -r -a RS6 <<<"$FNAT_RS6"
e2e_udp_echo_servers

cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" 1
sed -i 's/^idle = backoff$/&\nfrag_entries = 1024\nfrag_timeout_ms = 2000/; s/^\[port net_af_packet\([01]\)\]$/[port net_pcap\1]/' "$cfg"
check "the config names the net_pcap ports" grep -qx '\[port net_pcap1\]' "$cfg"
FNAT_EAL_VDEVS="--vdev net_pcap0,rx_iface_in=$FNAT_IF_LB_CLIENT,tx_iface=$FNAT_IF_LB_CLIENT --vdev net_pcap1,rx_iface_in=$FNAT_IF_LB_SERVER,tx_iface=$FNAT_IF_LB_SERVER"
e2e_lb_start "$cfg" "$WORKERS"

big_echo() { e2e_big_echo "$PER_SIZE" "$@"; }
n=$((PER_SIZE * $(wc -w <<<"$SIZES")))
stat_of() { jeval "d[\"$1\"]" "$(tel /fnat/stats)"; }
# frags MTU_PAYLOAD: fragments of all the datagrams of one family, one way.
frags() { local s t=0; for s in $SIZES; do t=$((t + PER_SIZE * ((s + 8 + $1 - 1) / $1))); done; echo $t; }
f4=$(frags 1480)
f6=$(frags 1448)

e2e_log "1. $n IPv4 and $n IPv6 datagrams of $SIZES bytes through the VIP"
# shellcheck disable=SC2086
check_eq "IPv4: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP4" $SIZES)" "$n 0 0"
# shellcheck disable=SC2086
check_eq "IPv6: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP6" $SIZES)" "$n 0 0"
s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k in ("rx_packets", "frags_in", "reassembled", "fragmented", "frags_out") or (k.startswith("drop_") and v)}' "$s")"
check_eq "fragments taken into reassembly: every fragment both kernels sent, each way (frags_in)" "$(jeval 'd["frags_in"]' "$s")" $((2 * (f4 + f6)))
check_eq "datagrams reassembled by the balancer, 2 per echo" "$(jeval 'd["reassembled"]' "$s")" $((4 * n))
check_eq "datagrams fragmented again for their egress link, 2 per echo" "$(jeval 'd["fragmented"]' "$s")" $((4 * n))
check_eq "fragments sent (frags_out = frags_in: same MTU on every link)" "$(jeval 'd["frags_out"]' "$s")" $((2 * (f4 + f6)))
check_eq "no drop at all" "$(jeval 'sum(v for k, v in d.items() if k.startswith("drop_"))' "$s")" 0

e2e_log "2. a flood of $FLOOD never-completed IPv4 first fragments from the client's address, beside the same echo"
dropped0=$(stat_of drop_frag_dropped)
timeout 120 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$FNAT_IF_CLIENT" "$FNAT_CLIENT4" "$FNAT_VIP4" "$FNAT_UDP_PORT" "$FLOOD" \
  >"$E2E_DIR/flood.log" 2>&1 <<'PY' &
import random, sys
from scapy.all import Ether, IP, UDP, Raw, conf, raw, getmacbyip
iface, c4, vip4, port, n = sys.argv[1:6]
port, n = int(port), int(n)
conf.verb = 0
sock = conf.L2socket(iface=iface)
mac = getmacbyip("198.18.0.1")  # the balancer's MAC, as the client's kernel knows it
eth = Ether(dst=mac)
body = b"f" * 1000
frames = [raw(eth / IP(src=c4, dst=vip4, id=random.getrandbits(16), flags="MF", frag=0) /
              UDP(sport=40000 + i % 1000, dport=port, len=5008) / Raw(body)) for i in range(n)]
for f in frames:
    sock.send(f)
print("sent", n, flush=True)
PY
flood_pid=$!
sleep 0.5
# shellcheck disable=SC2086
check_eq "IPv4 during the flood: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP4" $SIZES)" "$n 0 0"
wait "$flood_pid"
check_eq "the flood was sent in full" "$(cat "$E2E_DIR/flood.log")" "sent $FLOOD"
flood_gone() { [ "$(($(stat_of drop_frag_dropped) - dropped0))" -ge "$FLOOD" ]; }
e2e_wait_for 15 flood_gone
s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k in ("rx_packets", "frags_in", "reassembled", "fragmented", "frags_out") or (k.startswith("drop_") and v)}' "$s")"
check_eq "every flood fragment ended as a counted drop (frag_dropped)" "$(($(jeval 'd["drop_frag_dropped"]' "$s") - dropped0))" "$FLOOD"
check_eq "no other drop" "$(jeval 'sum(v for k, v in d.items() if k.startswith("drop_") and k != "drop_frag_dropped")' "$s")" 0

e2e_lb_stop
e2e_finish
