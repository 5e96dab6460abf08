#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: IP fragments through the balancer (core/fragment.hpp, rte_ip_frag), IPv4 and IPv6, on
# the namespace rig with 2 workers and 2 real servers, every link 1500 bytes.
#
# What it proves:
#  1. IPv6 UDP datagrams of 3000 to 8000 bytes each way through the VIP, byte-exact: the client's
#     kernel fragments them (up to 6 fragments), the af_packet fan-out spreads the fragments over
#     the workers, the fragments of each datagram meet on their home worker and are reassembled
#     there, the datagram is translated and fragmented again to the server link's MTU; the real
#     server (a Python UDP echo) answers with datagrams just as big, which come back the same way,
#     reassembled, handed to the owner of the LIP port, translated and fragmented for the client.
#  2. IPv4, the same with datagrams of 1600 to 1900 bytes, and what this rig can and cannot show:
#     DPDK's af_packet PMD joins its fan-out group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel
#     reassembles IPv4 fragments before the balancer sees them, and a datagram larger than the PMD's
#     frame (2048 bytes, and it must fit one mbuf) arrives truncated (bad_ip_length). So here IPv4
#     datagrams arrive whole but bigger than the 1500-byte links, and the balancer fragments them
#     (no DF) each way; its IPv4 reassembly of real kernels' fragments is shown by
#     test_lb_frag4.sh (net_pcap, no defrag) and tests/lb/test_fragments.cpp.
#     Telemetry: datagrams reassembled and fragmented as counted, nothing dropped.
#  3. A fragment flood beside the legitimate traffic: from the client's own address (so to the very
#     worker that reassembles the client's datagrams), many more IPv6 first fragments of datagrams
#     that never complete than the reassembly table holds (frag_entries = 1024 here). The legitimate
#     datagrams, sent during the flood, all still come back byte-exact; the flood's fragments are
#     counted drops (frag_dropped) once they time out or are given up under pressure. (An IPv4 flood
#     would end in the lb namespace's kernel, see 2.)
#  3. SIGINT: leak check, exit 0, no sanitizer report.
#
# Usage: bash tests/e2e/test_lb_frag.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_frag frag "${1:-}"

WORKERS=2
PER_SIZE=4           # datagrams per size and family
SIZES6="3000 4500 6000 8000"
SIZES4="1600 1750 1900"
FLOOD=6000           # first fragments per family in the flood

e2e_rig_up --rs 2 --queues "$WORKERS"
read -r -a NS_RS <<<"$FNAT_NS_RS"
read -r -a RS4 <<<"$FNAT_RS4"
read -r -a RS6 <<<"$FNAT_RS6"
e2e_udp_echo_servers

cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"
sed -i 's/^idle = backoff$/&\nfrag_entries = 1024\nfrag_timeout_ms = 2000/' "$cfg"
check "the config has frag_entries = 1024" grep -qx 'frag_entries = 1024' "$cfg"
e2e_lb_start "$cfg" "$WORKERS"

big_echo() { e2e_big_echo "$PER_SIZE" "$@"; }
n6=$((PER_SIZE * $(wc -w <<<"$SIZES6")))
n4=$((PER_SIZE * $(wc -w <<<"$SIZES4")))
stat_of() { jeval "d[\"$1\"]" "$(tel /fnat/stats)"; }

e2e_log "1-2. $n6 IPv6 datagrams of $SIZES6 bytes and $n4 IPv4 datagrams of $SIZES4 bytes through the VIP"
# shellcheck disable=SC2086
check_eq "IPv6: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP6" $SIZES6)" "$n6 0 0"
# shellcheck disable=SC2086
check_eq "IPv4: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP4" $SIZES4)" "$n4 0 0"
s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k in ("frags_in", "reassembled", "fragmented", "frags_out", "redirected_out", "drop_frag_dropped", "drop_frag_failed", "drop_too_big", "drop_fragment")}' "$s")"
# Each IPv6 datagram is reassembled twice (client -> RS and back); every datagram is fragmented twice.
check_eq "IPv6 datagrams reassembled, 2 per echo" "$(jeval 'd["reassembled"]' "$s")" $((2 * n6))
check_eq "datagrams fragmented again for their egress link, 2 per echo" "$(jeval 'd["fragmented"]' "$s")" $((2 * (n6 + n4)))
check "fragments reached their home worker from the other one (redirected_out > 0)" is "$(jeval 'd["redirected_out"]' "$s") > 0"
for k in drop_frag_dropped drop_frag_failed drop_too_big drop_fragment drop_misdirected drop_ring_full; do
  check_eq "$k" "$(jeval "d[\"$k\"]" "$s")" 0
done

e2e_log "3. a flood of $FLOOD never-completed IPv6 first fragments from the client's address, beside the same echo"
dropped0=$(stat_of drop_frag_dropped)
timeout 120 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$FNAT_IF_CLIENT" "$FNAT_LB_CLIENT_MAC" \
  "$FNAT_CLIENT6" "$FNAT_VIP6" "$FNAT_UDP_PORT" "$FLOOD" >"$E2E_DIR/flood.log" 2>&1 <<'PY' &
import random, sys
from scapy.all import Ether, IPv6, IPv6ExtHdrFragment, UDP, Raw, conf, raw
iface, mac, c6, vip6, port, n = sys.argv[1:7]
port, n = int(port), int(n)
conf.verb = 0
sock = conf.L2socket(iface=iface)
eth = Ether(dst=mac)
body = b"f" * 1000
frames = [raw(eth / IPv6(src=c6, dst=vip6) / IPv6ExtHdrFragment(id=random.getrandbits(32), m=1, nh=17) /
              UDP(sport=40000 + i % 1000, dport=port, len=5008) / Raw(body)) for i in range(n)]
for f in frames:
    sock.send(f)
print("sent", n, flush=True)
PY
flood_pid=$!
sleep 0.5
# shellcheck disable=SC2086
check_eq "IPv6 during the flood: every datagram echoed byte-exact (exact wrong lost)" "$(big_echo "$FNAT_VIP6" $SIZES6)" "$n6 0 0"
flood_running=0
kill -0 "$flood_pid" 2>/dev/null && flood_running=1
wait "$flood_pid"
check_eq "the flood was sent in full" "$(cat "$E2E_DIR/flood.log")" "sent $FLOOD"
e2e_log "the flood was still running when the legitimate echo ended: $flood_running"
flood_gone() { [ "$(($(stat_of drop_frag_dropped) - dropped0))" -ge "$FLOOD" ]; }
e2e_wait_for 15 flood_gone
s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k in ("frags_in", "reassembled", "fragmented", "frags_out", "drop_frag_dropped", "drop_frag_failed", "drop_no_mbuf")}' "$s")"
check_eq "every flood fragment ended as a counted drop (frag_dropped)" "$(($(jeval 'd["drop_frag_dropped"]' "$s") - dropped0))" "$FLOOD"
check_eq "no fragmentation failed for want of mbufs" "$(jeval 'd["drop_frag_failed"]' "$s")" 0

e2e_lb_stop
e2e_finish
