#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: a SYN flood far beyond the balancer's capacity, while a legitimate client keeps making
# requests (1 worker, 2 real servers, the namespace rig).
#
# The balancer is made small on purpose: 200 local ports per LIP (2 IPv4 LIPs, 1 IPv6 LIP), so at most
# 800 IPv4 and 400 IPv6 conns can hold a port at once, 4096 conns per lcore, SYN_RECV timeout 3 s.
# From the client namespace: hping3 sends FLOOD4 SYNs to the IPv4 VIP from random IPv4 sources
# (about 2000 per second), and at the same time scapy sends FLOOD6 SYNs to the IPv6 VIP from random
# sources on the client's IPv6 network, whose SYN-ACKs the balancer must resolve by neighbour
# discovery (a neighbour-table flood on top of the port flood). Meanwhile curl asks the IPv4 VIP for
# a page every 0.2 s.
#
# What it proves:
#  1. The balancer keeps running and answering telemetry through the flood, and counts what it
#     cannot take: port_exhausted (most of the flood: the pools hold a few hundred conns and the
#     flood asks for thousands per timeout), bad_source (hping3's random sources include multicast,
#     loopback and 0/8), and the replies it cannot deliver (unknown_neighbour: IPv6 sources on the
#     client's network that never answer neighbour discovery). The client port has a default
#     gateway (the client), so every spoofed IPv4 source is routable, as on a real uplink.
#  2. Once the flood stops and the SYN_RECV timeout passes, every conn has expired, no port or conn
#     object is in use, and every sa_pool has as many free ports as before the flood.
#  3. Then every one of 20 new requests (IPv4 and IPv6) is served again; SIGINT: exit 0, leak check,
#     no sanitizer report.
# What the legitimate client gets during the flood is reported, not asserted: with every port taken
# by spoofed SYNs, a legitimate SYN gets a port only when one frees up (it is a race against the
# flood, which a SYN proxy or SYN cookies in front of the pools would win; the balancer has neither).
#
# The real servers' own SYN_RECV entries outlive the balancer's (Linux retries a SYN-ACK for about a
# minute), and a port the balancer reuses after its conn expired would meet such an entry: the rig's
# servers retry a SYN-ACK once (net.ipv4.tcp_synack_retries = 1), as a server behind a FullNAT
# balancer under attack would be told to.
#
# Usage: bash tests/e2e/test_lb_synflood.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_synflood synflood "${1:-}" hping3
"$E2E_PY" -c 'import scapy.all' 2>/dev/null || e2e_skip "python3-scapy is missing (scripts/bootstrap.sh installs it)"

FLOOD4=${FNAT_FLOOD4:-16000}
FLOOD6=${FNAT_FLOOD6:-3000}
e2e_rig_up --rs 2 --queues 1
for ns in $FNAT_NS_RS; do ip netns exec "$ns" sysctl -qw net.ipv4.tcp_synack_retries=1; done

cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" 1
"$E2E_PY" - "$cfg" <<'EOF' || e2e_die "could not shrink the configuration"
import os, re, sys
p = sys.argv[1]
s = open(p).read()
# The client side's default gateway is the client: spoofed sources are routable, as the Internet's are
# behind a real balancer's uplink, so every flood SYN can take a conn and a port.
s = s.replace("role = client\n", "role = client\ngateway = %s\ngateway = %s\n"
              % (os.environ["FNAT_CLIENT4"], os.environ["FNAT_CLIENT6"]), 1)
s = s.replace("conns_per_lcore = 65536", "conns_per_lcore = 4096\nlocal_ports = 30000-30199")
s = re.sub(r"tcp_syn_recv = \d+", "tcp_syn_recv = 3", s)
s = re.sub(r"tcp_synack = \d+", "tcp_synack = 3", s)
open(p, "w").write(s)
EOF
e2e_lb_start "$cfg" 1
sapool0=$(tel /fnat/sapool)
s0=$(tel /fnat/stats)

# request URL: one request on its own connection; prints the HTTP status (000 when none came).
request() {
  timeout 10 ip netns exec "$FNAT_NS_CLIENT" curl -s -o /dev/null --max-time 2 -H 'Connection: close' \
    -w '%{http_code}\n' "$1" 2>/dev/null || true
}
served_before=0
for _ in $(seq 5); do [ "$(request "http://$FNAT_VIP4/")" = 200 ] && served_before=$((served_before + 1)); done
check_eq "before the flood: 5 requests served" "$served_before" 5

e2e_log "flood: $FLOOD4 IPv4 SYNs (hping3, random sources) and $FLOOD6 IPv6 SYNs (scapy, random on-link sources)"
timeout 120 ip netns exec "$FNAT_NS_CLIENT" hping3 -q -S -p "$FNAT_HTTP_PORT" --rand-source -i u500 -c "$FLOOD4" \
  "$FNAT_VIP4" >"$E2E_DIR/hping3.out" 2>&1 &
hping=$!
timeout 120 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$FLOOD6" >"$E2E_DIR/flood6.out" 2>&1 <<'EOF' &
import os, random, sys

from scapy.all import IPv6, TCP, Ether, conf

conf.verb = 0
env = os.environ
n = int(sys.argv[1])
rng = random.Random(6)
net = env["FNAT_CLIENT6"].rsplit(":", 1)[0]  # the client's /64, written without its last group
frames = [bytes(Ether(src=env["FNAT_CLIENT_MAC"], dst=env["FNAT_LB_CLIENT_MAC"])
                / IPv6(src="%s:%x:%x" % (net, rng.randrange(1, 1 << 16), rng.randrange(1 << 16)), dst=env["FNAT_VIP6"])
                / TCP(sport=rng.randrange(1024, 65536), dport=int(env["FNAT_HTTP_PORT"]), flags="S", seq=rng.getrandbits(32)))
          for _ in range(n)]
s = conf.L2socket(iface=env["FNAT_IF_CLIENT"])
for f in frames:
    s.send(f)
print(f"sent {n}")
EOF
flood6=$!

served=0 failed=0 mid=""
while kill -0 "$hping" 2>/dev/null || kill -0 "$flood6" 2>/dev/null; do
  if [ "$(request "http://$FNAT_VIP4/")" = 200 ]; then served=$((served + 1)); else failed=$((failed + 1)); fi
  [ -n "$mid" ] || mid=$(tel /fnat/stats)
  sleep 0.2
done
wait "$hping"
hping_rc=$?
wait "$flood6"
flood6_rc=$?
s1=$(tel /fnat/stats)
e2e_log "flood over: hping3 exit $hping_rc ($(grep -m1 'packets transmitted' "$E2E_DIR/hping3.out")), scapy: $(cat "$E2E_DIR/flood6.out")"
e2e_log "legitimate requests during the flood: $served served, $failed not"
check "hping3 sent its SYNs (exit status 0)" is "$hping_rc == 0"
check_eq "scapy sent its IPv6 SYNs (exit status $flood6_rc)" "$(tail -n1 "$E2E_DIR/flood6.out")" "sent $FLOOD6"
check "the balancer is still running" kill -0 "$E2E_LB_PID"
check "telemetry answered during the flood" test -n "$mid"
delta() { jeval "j[1][\"$1\"] - j[0][\"$1\"]" "$s0" "$s1"; }
rx=$(delta rx_packets)
created=$(delta conns_created)
exhausted=$(delta drop_port_exhausted)
e2e_log "during the flood: rx $rx, conns created $created, drops: $(jeval '", ".join("%s=%d" % (k[5:], j[1][k] - j[0][k]) for k in j[1] if k.startswith("drop_") and j[1][k] != j[0][k])' "$s0" "$s1")"
check "the balancer received most of the flood (rx $rx >= 85% of $((FLOOD4 + FLOOD6)))" \
  is "$rx * 100 >= ($FLOOD4 + $FLOOD6) * 85"
check "most flood SYNs found no port: port_exhausted $exhausted >= half of the flood" \
  is "$exhausted * 2 >= $FLOOD4 + $FLOOD6"
check "hping3's unroutable sources were dropped as bad_source ($(delta drop_bad_source))" is "$(delta drop_bad_source) > 0"
taken=$((created + exhausted + $(delta drop_bad_source) + $(delta drop_conn_pool_empty) + $(delta drop_table_full)))
# (Not 100%: on 2 busy CPUs the kernel drops some frames when an af_packet ring is full, before the
# balancer sees them; what arrives is counted.)
check "the flood's SYNs are accounted for: created + port_exhausted + conn_pool_empty + table_full + bad_source ($taken) >= 85% of the flood" \
  is "$taken * 100 >= ($FLOOD4 + $FLOOD6) * 85"
check "no SYN was refused for want of a route back (no_route $(delta drop_no_route))" is "$(delta drop_no_route) == 0"

e2e_log "waiting for the flood's conns to time out"
check "within 30 s every conn has expired (created = expired; conns, conn objects, ports in use: 0)" \
  e2e_wait_for 30 e2e_lb_idle
check "every sa_pool is whole again: no port used, as many free as before the flood" \
  e2e_sapool_whole "$sapool0" "$(tel /fnat/sapool)"

served_after=0
for _ in $(seq 10); do [ "$(request "http://$FNAT_VIP4/")" = 200 ] && served_after=$((served_after + 1)); done
for _ in $(seq 10); do [ "$(request "http://[$FNAT_VIP6]/")" = 200 ] && served_after=$((served_after + 1)); done
check_eq "after the flood: 20 requests (IPv4 and IPv6) served" "$served_after" 20
e2e_log "SUMMARY flood4=$FLOOD4 flood6=$FLOOD6 rx=$rx created=$created served_during=$served failed_during=$failed served_after=$served_after drops: $(jeval '" ".join("%s=%d" % (k[5:], j[1][k] - j[0][k]) for k in j[1] if k.startswith("drop_") and j[1][k] != j[0][k])' "$s0" "$s1")"
e2e_lb_stop
e2e_finish
