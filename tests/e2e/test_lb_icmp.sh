#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: ICMP errors through the FullNAT translation (core/icmp_error.hpp), IPv4 and IPv6, on
# the namespace rig with 2 workers and 2 real servers.
#
# What it proves:
#  1. A client's error about the VIP's UDP reply reaches the real server as the LIP's: each client
#     socket sends one datagram to the echo service and closes at once, so the echo comes back to a
#     closed port and the client's kernel answers "port unreachable", which quotes VIP -> client. The
#     balancer finds the conn by that quote (on whichever worker holds it) and sends the error on to
#     the real server, quoting the server's own reply LIP:lport <- RS:rport (icmp_errors_in).
#  2. The RS side, the issue's scenario: with the UDP echo servers stopped, every datagram a client
#     sends through the VIP meets a closed port; the server's kernel answers "port unreachable"
#     quoting LIP:lport -> RS:rport. The balancer steers it to the owner of lport, translates it to
#     VIP -> client quoting the client's own datagram, and the client's connected UDP socket fails
#     with ECONNREFUSED on recv, IPv4 and IPv6 (icmp_errors_out).
#  3. No error is dropped (icmp_error_*, misdirected, ring_full, no_conn are 0); SIGINT: leak check,
#     exit 0, no sanitizer report.
# The kernels' ICMP rate limits are lifted in the client and server namespaces (they would otherwise
# answer only the first few datagrams of a burst with an error).
#
# Usage: bash tests/e2e/test_lb_icmp.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_icmp icmp "${1:-}"

WORKERS=2
N=20  # datagrams per family and scenario

e2e_rig_up --rs 2 --queues "$WORKERS"
read -r -a NS_RS <<<"$FNAT_NS_RS"
for ns in "$FNAT_NS_CLIENT" "${NS_RS[@]}"; do
  ip netns exec "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 ||
    e2e_die "could not lift the ICMP rate limits in $ns"
done
cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"
e2e_lb_start "$cfg" "$WORKERS"

# udp_clients MODE ADDRESS: N client sockets, one datagram each to ADDRESS:udp port.
#   mode "close":   send and close at once (the echo meets a closed port); prints the count sent;
#   mode "refused": connect, send, recv with a 3 s timeout; prints "refused timeout other".
udp_clients() {
  timeout 90 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$1" "$2" "$FNAT_UDP_PORT" "$N" <<'PY'
import socket, sys, time
mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
refused = timeout = other = 0
for i in range(n):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((addr, port))
    s.send(b"datagram %d" % i)
    if mode == "close":
        s.close()
        time.sleep(0.05)
        continue
    try:
        s.recv(2048)
        other += 1
    except ConnectionRefusedError:
        refused += 1
    except socket.timeout:
        timeout += 1
    except OSError:
        other += 1
    s.close()
print(n if mode == "close" else f"{refused} {timeout} {other}")
PY
}
stat_of() { jeval "d[\"$1\"]" "$(tel /fnat/stats)"; }

e2e_log "1. clients refuse the VIP's echo: $N datagrams per family from sockets closed at once"
check_eq "IPv4 datagrams sent" "$(udp_clients close "$FNAT_VIP4")" "$N"
check_eq "IPv6 datagrams sent" "$(udp_clients close "$FNAT_VIP6")" "$N"
errors_in_ok() { [ "$(stat_of icmp_errors_in)" -ge $((2 * N)) ]; }
e2e_wait_for 10 errors_in_ok
in1=$(stat_of icmp_errors_in)
check_eq "every client error reached a real server as the LIP's (icmp_errors_in)" "$in1" $((2 * N))

e2e_log "2. the real servers' UDP port is closed: $N datagrams per family, each must be refused"
rig stop-servers >>"$E2E_DIR/rig.log" 2>&1 || e2e_die "rig.sh stop-servers failed"
out0=$(stat_of icmp_errors_out)
r4=$(udp_clients refused "$FNAT_VIP4")
r6=$(udp_clients refused "$FNAT_VIP6")
e2e_log "IPv4: refused timeout other = $r4; IPv6: $r6"
check_eq "IPv4: every recv fails with ECONNREFUSED (refused, timed out, other)" "$r4" "$N 0 0"
check_eq "IPv6: every recv fails with ECONNREFUSED (refused, timed out, other)" "$r6" "$N 0 0"
out=$(($(stat_of icmp_errors_out) - out0))
check_eq "the balancer translated one error per datagram towards the clients (icmp_errors_out)" "$out" $((2 * N))

s=$(tel /fnat/stats)
e2e_log "stats: $(jeval '{k: v for k, v in d.items() if k.startswith("icmp") or k.startswith("redirected") or k.startswith("drop_icmp")}' "$s")"
for k in drop_icmp_error_malformed drop_icmp_error_unsupported drop_icmp_error_no_conn drop_misdirected drop_ring_full drop_no_conn; do
  check_eq "$k" "$(jeval "d[\"$k\"]" "$s")" 0
done
check "some errors reached a worker that does not own their conn and were handed on (redirected_out > 0)" \
  is "$(jeval 'd["redirected_out"]' "$s") > 0"

e2e_lb_stop
e2e_finish
