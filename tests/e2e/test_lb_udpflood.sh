#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: a spoofed UDP flood far beyond one worker's conns, while legitimate UDP clients keep
# asking (1 worker, 2 real servers, the namespace rig).
#
# Every datagram from a new (source, port) to a UDP VIP makes a conn and takes a local port, until
# its idle timeout (udp_oneway, then udp_normal once the server answered: 3 s here). The balancer is
# made small: 2048 conns per lcore, so one-way UDP conns are bounded at 1024 (max_udp_oneway's
# default, half the conns) and the whole pool at 2048. From the client namespace scapy sends FLOOD
# datagrams to the IPv4 UDP VIP from random sources on the client's own network (on-link, so they
# pass the reverse-path check) and random ports: each would be a new conn, thousands per second
# against 2048 conns that live 3 s. The real servers answer every datagram (a Python echo replaces
# the rig's socat, which forks a process per peer), so flood conns turn from one-way to normal and
# the balancer must resolve the spoofed sources by ARP, which nobody answers (unknown_neighbour).
#
# The flood is paced (RATE per second, 3000 by default: 9000 new tuples per conn lifetime, over four
# times the conns), so that it lasts about 10 s. Meanwhile two legitimate clients ask every 50 ms:
#  - "kept": one socket, one conn made before the flood, kept alive by its own traffic;
#  - "new": a fresh socket (a new conn) per question, as a DNS resolver with random ports does.
#
# What it proves:
#  1. The balancer keeps running and answering telemetry; the flood is bounded (conns never above
#     2048) and every datagram it could not take is counted by reason (conn_pool_empty,
#     udp_oneway_limit, ...): created + refused + ... accounts for what arrived.
#  2. The kept client is answered throughout (its conn is in the table; the flood cannot evict it):
#     at least 90% of its questions. What the new client gets is reported (it competes with the
#     flood for conns freed by timeouts: no per-source fairness exists).
#  3. Once the flood stops and its conns time out, nothing is in use, every sa_pool is whole; 20
#     new questions are all answered; SIGINT: exit 0, leak check, no sanitizer report.
#
# Usage: bash tests/e2e/test_lb_udpflood.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_udpflood udpflood "${1:-}"
"$E2E_PY" -c 'import scapy.all' 2>/dev/null || e2e_skip "python3-scapy is missing (scripts/bootstrap.sh installs it)"

FLOOD=${FNAT_UDPFLOOD:-30000}
RATE=${FNAT_UDPFLOOD_RATE:-3000}  # per second: 9000 new tuples per 3-s conn lifetime against 2048 conns
CONNS=2048
e2e_rig_up --rs 2 --queues 1

# A UDP echo per real server that does not fork per peer (the rig's socat does): stop the IPv4 socat,
# run this in its place. rig.sh down stops whatever runs in the rig's namespaces.
for i in $(seq "$FNAT_RS_COUNT"); do
  pidf=$FNAT_RIG_STATE/rs$i/udp4.pid
  [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
  rs=$(echo "$FNAT_RS4" | cut -d' ' -f"$i")
  ns=$(echo "$FNAT_NS_RS" | cut -d' ' -f"$i")
  ip netns exec "$ns" "$E2E_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(2048)
    try:
        s.sendto(data, peer)
    except OSError:
        pass
' "$rs" "$FNAT_UDP_PORT" </dev/null >"$E2E_DIR/echo$i.log" 2>&1 &
done

cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" 1
sed -i "s/^conns_per_lcore = 65536/conns_per_lcore = $CONNS/" "$cfg"
grep -q "^conns_per_lcore = $CONNS" "$cfg" || e2e_die "could not shrink the configuration"
e2e_lb_start "$cfg" 1
sapool0=$(tel /fnat/sapool)

# ask N DELAY: the legitimate clients, in the client namespace. Kept: one socket; new: a socket per
# question; each question waits up to 0.5 s for its echo. Runs N rounds; with N = 0, asks once (not
# counted: the kept socket's conn is made now), waits for $E2E_DIR/go (the flood started), then asks
# until $E2E_DIR/stop exists (the flood's last datagram went out). Prints "kept A/B new C/D".
ask() {
  timeout 300 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$FNAT_VIP4" "$FNAT_UDP_PORT" "$1" "$2" "$E2E_DIR" <<'EOF'
import os, socket, sys, time
host, port, rounds, delay, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
stop = os.path.join(work, "stop")


def question(s, tag):
    msg = b"legit " + tag + b" " + os.urandom(8).hex().encode()
    s.send(msg)
    deadline = time.time() + 0.5
    while True:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            if s.recv(2048) == msg:
                return 1
        except OSError:
            return 0


kept = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
kept.connect((host, port))
if not rounds:
    question(kept, b"kept")
    while not os.path.exists(os.path.join(work, "go")):
        question(kept, b"kept")  # keeps the conn alive while the flood is being built
        time.sleep(0.2)
counts = [0, 0, 0, 0]
i = 0
while (rounds and i < rounds) or (not rounds and not os.path.exists(stop)):
    counts[0] += question(kept, b"kept")
    counts[1] += 1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    counts[2] += question(s, b"new")
    counts[3] += 1
    s.close()
    i += 1
    time.sleep(delay)
print("kept %d/%d new %d/%d" % tuple(counts))
EOF
}
before=$(ask 10 0.05)
check_eq "before the flood: every question answered" "$before" "kept 10/10 new 10/10"

s0=$(tel /fnat/stats)
rm -f "$E2E_DIR/stop" "$E2E_DIR/go"
ask 0 0.05 >"$E2E_DIR/during.out" 2>&1 &
asker=$!
e2e_log "flood: $FLOOD datagrams at $RATE per second to $FNAT_VIP4:$FNAT_UDP_PORT from random sources on the client's network"
timeout 300 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$FLOOD" "$RATE" "$E2E_DIR" >"$E2E_DIR/flood.out" 2>&1 <<'EOF' &
import os, random, sys, time

from scapy.all import IP, UDP, Ether, Raw, conf

conf.verb = 0
env = os.environ
n, rate, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(14)
net = env["FNAT_CLIENT4"].rsplit(".", 1)[0]
ours = {env["FNAT_CLIENT4"], env["FNAT_LB_CLIENT4"]}
head = bytes(Ether(src=env["FNAT_CLIENT_MAC"], dst=env["FNAT_LB_CLIENT_MAC"], type=0x0800))
frames = []
while len(frames) < n:
    src = "%s.%d" % (net, rng.randrange(3, 255))
    if src not in ours:
        frames.append(head + bytes(IP(src=src, dst=env["FNAT_VIP4"]) /
                                   UDP(sport=rng.randrange(1024, 65536), dport=int(env["FNAT_UDP_PORT"])) / Raw(b"flood")))
s = conf.L2socket(iface=env["FNAT_IF_CLIENT"])
open(os.path.join(work, "go"), "w").close()
t0 = time.time()
for i, f in enumerate(frames):
    s.send(f)
    if i % 30 == 29:  # paced, so that the flood lasts: each 3-s conn lifetime sees 3 * rate new tuples
        ahead = t0 + (i + 1) / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
t = time.time() - t0
open(os.path.join(work, "stop"), "w").close()
print(f"{n / t:.0f} per second for {t:.1f} s")
print(f"sent {n}")
EOF
flood=$!
mid=""
peak=0
while kill -0 "$flood" 2>/dev/null; do
  m=$(tel /fnat/stats) || true
  if [ -n "$m" ]; then
    mid=$m
    live=$(jeval 'd["conns_live"]' "$m")
    [ "$live" -gt "$peak" ] && peak=$live
  fi
  sleep 0.5
done
wait "$flood"
flood_rc=$?
touch "$E2E_DIR/stop" "$E2E_DIR/go"
wait "$asker"
s1=$(tel /fnat/stats)
during=$(cat "$E2E_DIR/during.out")
e2e_log "flood over: exit $flood_rc, $(head -n1 "$E2E_DIR/flood.out"); legitimate clients during the flood: $during"
check_eq "scapy sent the flood (exit status $flood_rc)" "$(tail -n1 "$E2E_DIR/flood.out")" "sent $FLOOD"
check "the balancer is still running" kill -0 "$E2E_LB_PID"
check "telemetry answered during the flood" test -n "$mid"
delta() { jeval "j[1][\"$1\"] - j[0][\"$1\"]" "$s0" "$s1"; }
rx=$(delta rx_packets)
created=$(delta conns_created)
empty=$(delta drop_conn_pool_empty)
oneway=$(delta drop_udp_oneway_limit)
drops_text=$(jeval '" ".join("%s=%d" % (k[5:], j[1][k] - j[0][k]) for k in j[1] if k.startswith("drop_") and j[1][k] != j[0][k])' "$s0" "$s1")
e2e_log "during the flood: rx $rx, conns created $created, peak live $peak, drops: $drops_text"
check "the balancer received most of the flood (rx $rx >= 85% of $FLOOD)" is "$rx * 100 >= $FLOOD * 85"
check "the flood went beyond the worker's conns: conn_pool_empty + udp_oneway_limit ($empty + $oneway) > 0" \
  is "$empty + $oneway > 0"
check "conns stayed bounded: peak live $peak <= $CONNS" is "$peak <= $CONNS"
refused=$((empty + oneway + $(delta drop_table_full) + $(delta drop_port_exhausted)))
check "the flood's datagrams are accounted for: created + refused by reason ($created + $refused) >= 85% of the flood" \
  is "($created + $refused) * 100 >= $FLOOD * 85"
check "no datagram failed a trust check (reverse_path, own_source, bad checksums: 0)" \
  is "$(delta drop_reverse_path) + $(delta drop_own_source) + $(delta drop_bad_l4_checksum) + $(delta drop_bad_ip_checksum) == 0"
kept=${during#kept }
kept=${kept%% *}
check "the kept client was answered through the flood: $kept, at least 90%" \
  is "${kept%/*} * 10 >= ${kept#*/} * 9 && ${kept#*/} > 0"

e2e_log "waiting for the flood's conns to time out"
check "within 30 s every conn has expired (created = expired; conns, conn objects, ports in use: 0)" \
  e2e_wait_for 30 e2e_lb_idle
check "every sa_pool is whole again: no port used, as many free as before the flood" \
  e2e_sapool_whole "$sapool0" "$(tel /fnat/sapool)"
after=$(ask 10 0.05)
check_eq "after the flood: every question answered" "$after" "kept 10/10 new 10/10"
e2e_log "SUMMARY flood=$FLOOD target_rate=$RATE sent=$(head -n1 "$E2E_DIR/flood.out") rx=$rx created=$created peak_live=$peak legit_during: $during legit_after: $after drops: $drops_text"
e2e_lb_stop
e2e_finish
