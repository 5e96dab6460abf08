#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: with its local ports exhausted, the balancer refuses a new connection with a TCP reset
# (syn_refusal = rst), so the client's connect() fails at once instead of waiting for its timeout
# (1 worker, 2 real servers, the namespace rig).
#
# The balancer gets 8 local ports per LIP in one sa_pool bucket (2 IPv4 LIPs: 16 IPv4 conns at most).
# scapy sends SYNS spoofed SYNs to the IPv4 VIP from sources beyond the client port's gateway (routable,
# so they pass the reverse-path check): the first 16 take every port, the rest are refused, each
# with a reset (to the spoofed source, through the gateway, where nobody listens).
#
# What it proves:
#  1. Exactly 16 conns are made and SYNS - 16 SYNs are refused as port_exhausted; refused_conns
#     counts them, rsts_sent answers each.
#  2. curl to the VIP then fails with "connection refused" (exit 7) in under a second, where a
#     dropped SYN would leave it waiting for its --max-time (5 s); its SYN is one more refusal and one
#     more reset.
#  3. Once the spoofed conns time out (SYN_RECV 10 s), every pool is whole and curl is served again;
#     SIGINT: exit 0, leak check, no sanitizer report.
#
# Usage: bash tests/e2e/test_lb_refusal.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_refusal refusal "${1:-}"
"$E2E_PY" -c 'import scapy.all' 2>/dev/null || e2e_skip "python3-scapy is missing (scripts/bootstrap.sh installs it)"

SYNS=40
e2e_rig_up --rs 2 --queues 1
for ns in $FNAT_NS_RS; do ip netns exec "$ns" sysctl -qw net.ipv4.tcp_synack_retries=1; done
cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" 1
"$E2E_PY" - "$cfg" <<'EOF' || e2e_die "could not change the configuration"
import os, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("role = client\n", "role = client\ngateway = %s\n" % os.environ["FNAT_CLIENT4"], 1)
s = s.replace("conns_per_lcore = 65536",
              "conns_per_lcore = 4096\nlocal_ports = 30000-30007\nsa_pool_buckets = 1\nsyn_refusal = rst")
assert "syn_refusal = rst" in s and "gateway = " in s
open(p, "w").write(s)
EOF
e2e_lb_start "$cfg" 1
sapool0=$(tel /fnat/sapool)
lips=$(jeval '[f for l, f in zip(d["lips"], next(v for k, v in d.items() if k.endswith("_free"))) if "." in l]' "$sapool0")
check_eq "two IPv4 LIPs, 8 free ports each" "$lips" "[8, 8]"

# curl_timed: one request to the IPv4 VIP; prints "EXIT MILLISECONDS".
curl_timed() {
  local t0 rc
  t0=${EPOCHREALTIME/[.,]/}
  timeout 20 ip netns exec "$FNAT_NS_CLIENT" curl -s -o /dev/null --max-time 5 -H 'Connection: close' "http://$FNAT_VIP4/"
  rc=$?
  echo "$rc $(((${EPOCHREALTIME/[.,]/} - t0) / 1000))"
}
check_eq "before: curl is served (exit 0)" "$(curl_timed | cut -d' ' -f1)" 0
e2e_wait_for 20 e2e_lb_idle || true

s0=$(tel /fnat/stats)
e2e_log "$SYNS spoofed SYNs to $FNAT_VIP4 from beyond the gateway"
timeout 120 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$SYNS" >"$E2E_DIR/syns.out" 2>&1 <<'EOF'
import os, random, sys, time
from scapy.all import IP, TCP, Ether, conf
conf.verb = 0
env = os.environ
n = int(sys.argv[1])
rng = random.Random(5)
s = conf.L2socket(iface=env["FNAT_IF_CLIENT"])
for i in range(n):
    s.send(Ether(src=env["FNAT_CLIENT_MAC"], dst=env["FNAT_LB_CLIENT_MAC"])
           / IP(src="198.19.%d.%d" % (i // 200, 1 + i % 200), dst=env["FNAT_VIP4"])
           / TCP(sport=rng.randrange(1024, 65536), dport=int(env["FNAT_HTTP_PORT"]), flags="S", seq=rng.getrandbits(32)))
    time.sleep(0.005)
print(f"sent {n}")
EOF
check_eq "scapy sent the SYNs" "$(tail -n1 "$E2E_DIR/syns.out")" "sent $SYNS"
settled() { [ "$(jeval "j[1][\"conns_created\"] - j[0][\"conns_created\"] + j[1][\"drop_port_exhausted\"] - j[0][\"drop_port_exhausted\"] >= $SYNS" "$s0" "$(tel /fnat/stats)")" = 1 ]; }
e2e_wait_for 10 settled || true
s1=$(tel /fnat/stats)
delta() { jeval "j[1][\"$1\"] - j[0][\"$1\"]" "$s0" "$s1"; }
check_eq "16 spoofed SYNs took every IPv4 port" "$(delta conns_created)" 16
check_eq "the other $((SYNS - 16)) were refused as port_exhausted" "$(delta drop_port_exhausted)" $((SYNS - 16))
check_eq "refused_conns counts them" "$(delta refused_conns)" $((SYNS - 16))
check_eq "each was answered with a reset (rsts_sent)" "$(delta rsts_sent)" $((SYNS - 16))

refused=$(curl_timed)
e2e_log "curl with every port taken: exit ${refused% *} after ${refused#* } ms"
check_eq "curl fails with 'connection refused' (exit 7)" "${refused% *}" 7
check "at once: ${refused#* } ms < 1000 ms (a dropped SYN would wait for --max-time 5 s)" is "${refused#* } < 1000"
s2=$(tel /fnat/stats)
check_eq "curl's SYN: one more refused connection" "$(jeval 'j[1]["refused_conns"] - j[0]["refused_conns"]' "$s1" "$s2")" 1
check_eq "and one more reset" "$(jeval 'j[1]["rsts_sent"] - j[0]["rsts_sent"]' "$s1" "$s2")" 1
check_eq "no reset was rate-limited" "$(jeval 'j[1]["rsts_limited"] - j[0]["rsts_limited"]' "$s0" "$s2")" 0

e2e_log "waiting for the spoofed conns to time out"
check "within 30 s every conn has expired (created = expired; conns, conn objects, ports in use: 0)" \
  e2e_wait_for 30 e2e_lb_idle
check "every sa_pool is whole again" e2e_sapool_whole "$sapool0" "$(tel /fnat/sapool)"
check_eq "after: curl is served again (exit 0)" "$(curl_timed | cut -d' ' -f1)" 0
e2e_log "SUMMARY syns=$SYNS created=$(delta conns_created) port_exhausted=$(delta drop_port_exhausted) refused_conns=$(jeval 'j[1]["refused_conns"] - j[0]["refused_conns"]' "$s0" "$s2") rsts_sent=$(jeval 'j[1]["rsts_sent"] - j[0]["rsts_sent"]' "$s0" "$s2") curl_refused_exit=${refused% *} curl_refused_ms=${refused#* }"
e2e_lb_stop
e2e_finish
