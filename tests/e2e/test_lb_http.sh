#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: real HTTP (IPv4 and IPv6), UDP echo and a load tool through the reference balancer's
# VIPs, 4 workers on 4 af_packet queue pairs, 3 real servers (nginx, socat) in the namespace rig.
#
# What it proves, and from where (the client's view, the servers' access logs, the telemetry):
#  1. 400 IPv4 and 150 IPv6 HTTP requests, each on a new TCP connection (curl, Connection: close),
#     all answer 200 with a real server's body ("rsN"). A connection is a conn, unless the client
#     reuses the source port of a connection whose conn is still in TIME_WAIT on the balancer (the
#     server closed first, so the client keeps no TIME_WAIT of its own): then the SYN reopens that
#     conn, to the same server from the same LIP:lport. So conns are counted as distinct LIP:lport
#     per server in the servers' logs (sa_pool hands ports out FIFO: none comes back this soon).
#  2. The real servers see only LIP sources, never the client (FullNAT); both IPv4 LIPs take turns
#     (each worker's LIP rotation alternates, so their counts differ by at most one per worker).
#  3. The spread is the scheduler's: service web is WRR 3:2:1 and web6 WRR with equal weights. Each
#     worker runs its own smooth WRR, which strays less than 2 picks from its exact share, so every
#     server gets C*w/W of the C conns within 2 per worker. The client's bodies agree with the
#     servers' logs, and the balancer's conns per server with the distinct LIP:lport in its log.
#  4. A conn's owner lcore is encoded in its local port (the port plan): for every worker, the conns
#     it created in the HTTP phases equal the requests whose source port, as the servers saw it, lies
#     in one of that worker's port classes (the plan table the balancer prints at start).
#  5. UDP echo (socat on the servers) over IPv4 and IPv6, one client socket and so one conn per
#     datagram: every datagram comes back with its own payload, and every server answered some.
#  6. wrk over IPv4 and IPv6: no socket error, no non-2xx answer.
#  7. Return traffic reaches the lcore that owns its conn. af_packet has neither flow rules nor a
#     RETA, so the balancer steers with software redirect: telemetry shows redirected_out ==
#     redirected_in > 0, and nothing dropped as no_conn (a reply handled by a lcore without its
#     conn), misdirected or ring_full.
#  8. After the flows close and time out (short [timeouts]), every worker has 0 conns, 0 conn
#     objects and 0 local ports in use, and every sa_pool has as many free ports as at start.
#  9. SIGINT: every conn created has expired (the final drain finds none), the leak check passes,
#     exit status 0, and no sanitizer report (the ASan+UBSan build runs this same script).
#
# Usage: bash tests/e2e/test_lb_http.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317  # bash -c snippets take "$1"; e2e_wait_for calls helpers
. "$(dirname "$0")/lib.sh"
e2e_init lb_http http "${1:-}" wrk

WORKERS=4
N4=400
N6=150
NUDP=12
WEIGHTS=(3 2 1)  # service web, rs1..rs3

e2e_rig_up --rs 3 --queues "$WORKERS"
read -r -a RS4 <<<"$FNAT_RS4"
read -r -a LIP4 <<<"$FNAT_LIP4"
cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"
for i in 0 1 2; do
  sed -i "s/^rs = ${RS4[$i]}:$FNAT_HTTP_PORT\$/& weight=${WEIGHTS[$i]}/" "$cfg"
done
check "service web has weights 3:2:1" [ "$(grep -c "^rs = 198\.18\.2\.1[123]:$FNAT_HTTP_PORT weight=" "$cfg")" = 3 ]
e2e_lb_start "$cfg" "$WORKERS"

# The port plan: which worker owns which local port class.
plan=$("$E2E_PY" - "$E2E_DIR/lb.log" <<'EOF'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
i = next(k for k, l in enumerate(lines) if l.startswith("fnat_lb: port plan:"))
mask = int(re.search(r"mask (0x[0-9a-f]+)", lines[i]).group(1), 16)
owner = {}
for worker, l in enumerate(lines[i + 2:]):
    m = re.match(r"\s+\d+\s+\d+\s+\d+\s+(0x[0-9a-f]+(?:,0x[0-9a-f]+)*)$", l)
    if not m:
        break
    for b in m.group(1).split(","):
        owner[int(b, 16)] = worker
print(json.dumps({"mask": mask, "owner": owner}))
EOF
) || e2e_die "no port plan in the balancer's output"
check_eq "every worker owns a local port class" "$(jeval 'len(set(d["owner"].values()))' "$plan")" "$WORKERS"
sapool0=$(tel /fnat/sapool)
steer=$(tel /fnat/ports)
check_eq "the server port steers replies by software redirect (af_packet: no flow rules, no RETA)" \
  "$(jeval 'd["net_af_packet1"]' "$steer")" redirect

# phase_lines FROM1 FROM2 FROM3: "I ADDR PORT SERVER_ADDR URI STATUS" for every request real server I
# logged after its first FROMI lines.
phase_lines() {
  local i
  for i in 1 2 3; do tail -n +"$(($1 + 1))" "$(rs_log "$i")" | sed "s/^/$i /"; shift; done
}
# logged N FROM1 FROM2 FROM3: the servers logged at least N requests after their first FROMI lines.
logged() { [ $(($(rs_lines 1) - $2 + $(rs_lines 2) - $3 + $(rs_lines 3) - $4)) -ge "$1" ]; }
# http_phase VIP_URL N FILE: N requests on N connections; the client's output in FILE.
http_phase() {
  timeout 300 ip netns exec "$FNAT_NS_CLIENT" curl -sS --max-time 10 -H 'Connection: close' \
    -w 'code=%{http_code}\n' "$1/?[1-$2]" >"$3" 2>"$3.err"
}
# check_http_phase NAME N FILE SERVICE FROM1 FROM2 FROM3 WEIGHT1 WEIGHT2 WEIGHT3 SVC_BEFORE SVC_AFTER LIPS...
check_http_phase() {
  local name=$1 n=$2 file=$3 svc=$4 f1=$5 f2=$6 f3=$7 w1=$8 w2=$9 w3=${10} before=${11} after=${12}
  shift 12
  local lips="$*" got_codes got_bodies i body_n log_n tel_n want_lo want_hi lines
  got_codes=$(grep -c '^code=200$' "$file")
  check_eq "$name: $n requests answered 200" "$got_codes" "$n"
  got_bodies=$(grep -c '^rs[123]$' "$file")
  check_eq "$name: $n bodies from a real server" "$got_bodies" "$n"
  check_eq "$name: nothing else in the client's output" "$(grep -cv '^code=200$\|^rs[123]$' "$file")" 0
  [ -s "$file.err" ] && sed 's/^/    curl: /' "$file.err" | head -5
  # nginx logs a request after it has sent the answer: give the last lines a moment.
  e2e_wait_for 10 logged "$n" "$f1" "$f2" "$f3" || true
  lines=$(phase_lines "$f1" "$f2" "$f3")
  check_eq "$name: the servers logged $n requests" "$(printf '%s\n' "$lines" | grep -c .)" "$n"
  check "$name: every request came from a LIP ($lips), none from the client" \
    bash -c 'printf "%s\n" "$1" | awk -v lips=" $2 " "index(lips, \" \" \$2 \" \") == 0 { bad = 1 } END { exit bad }"' \
    _ "$lines" "$lips"
  local -a ws=("$w1" "$w2" "$w3") conns
  local W=$((w1 + w2 + w3)) w c total=0 conn_n
  for i in 1 2 3; do
    c=$(printf '%s\n' "$lines" | awk -v i="$i" '$1 == i { print $2, $3 }' | sort -u | wc -l)
    conns+=("$c")
    total=$((total + c))
  done
  e2e_log "$name: $n requests on $total conns ($((n - total)) reopened a conn in TIME_WAIT)"
  for i in 1 2 3; do
    w=${ws[$((i - 1))]}
    conn_n=${conns[$((i - 1))]}
    body_n=$(grep -c "^rs$i\$" "$file")
    log_n=$(printf '%s\n' "$lines" | grep -c "^$i ")
    tel_n=$(jeval "j[1]['$svc'][$((i - 1))] - j[0]['$svc'][$((i - 1))]" "$before" "$after")
    want_lo=$(((total * w - 2 * WORKERS * W + W - 1) / W))
    want_hi=$(((total * w + 2 * WORKERS * W) / W))
    check "$name: rs$i has $conn_n conns, weight $w of $W: within $want_lo..$want_hi" \
      is "$conn_n >= $want_lo && $conn_n <= $want_hi"
    check "$name: rs$i: requests the client got from it ($body_n) = requests in its log ($log_n)" \
      is "$body_n == $log_n"
    check "$name: rs$i: the balancer's conns to it ($tel_n) = distinct LIP:lport in its log ($conn_n)" \
      is "$tel_n == $conn_n"
  done
}

# phase_drops NAME: logs the drop counters that moved since the last call (diagnostics: which phase).
last_stats=$(tel /fnat/stats)
phase_drops() {
  local now moved
  now=$(tel /fnat/stats) || return 0
  moved=$(jeval '", ".join("%s+%d" % (k[5:], j[1][k] - j[0][k]) for k in j[1] if k.startswith("drop_") and j[1][k] != j[0][k])' \
    "$last_stats" "$now")
  [ -z "$moved" ] || e2e_log "$1: drops $moved"
  last_stats=$now
}

# ---- 1-4: HTTP over IPv4 and IPv6, one connection per request ------------------------------------
lc0=$(tel /fnat/lcores)
svc0=$(tel /fnat/services)
from=("$(rs_lines 1)" "$(rs_lines 2)" "$(rs_lines 3)")
e2e_log "IPv4: $N4 HTTP requests to http://$FNAT_VIP4/, one connection each"
http_phase "http://$FNAT_VIP4" "$N4" "$E2E_DIR/curl4.out" || true
svc1=$(tel /fnat/services)
phase_drops "IPv4 HTTP"
check_http_phase "IPv4" "$N4" "$E2E_DIR/curl4.out" web "${from[@]}" "${WEIGHTS[@]}" "$svc0" "$svc1" "${LIP4[@]}"
lines4=$(phase_lines "${from[@]}")
lip_a=$(printf '%s\n' "$lines4" | awk -v l="${LIP4[0]}" '$2 == l' | wc -l)
lip_b=$(printf '%s\n' "$lines4" | awk -v l="${LIP4[1]}" '$2 == l' | wc -l)
check "IPv4: both LIPs take turns (${LIP4[0]}: $lip_a, ${LIP4[1]}: $lip_b; differ by at most $WORKERS)" \
  is "$lip_a > 0 && $lip_b > 0 && $lip_a - $lip_b <= $WORKERS && $lip_b - $lip_a <= $WORKERS"

from6=("$(rs_lines 1)" "$(rs_lines 2)" "$(rs_lines 3)")
e2e_log "IPv6: $N6 HTTP requests to http://[$FNAT_VIP6]/, one connection each"
http_phase "http://[$FNAT_VIP6]" "$N6" "$E2E_DIR/curl6.out" || true
svc2=$(tel /fnat/services)
phase_drops "IPv6 HTTP"
check_http_phase "IPv6" "$N6" "$E2E_DIR/curl6.out" web6 "${from6[@]}" 1 1 1 "$svc1" "$svc2" "$FNAT_LIP6"
lc1=$(tel /fnat/lcores)

# 4: the local port's class names the lcore that created the conn.
created=$(jeval '[b - a for a, b in zip(j[0]["conns_created"], j[1]["conns_created"])]' "$lc0" "$lc1")
by_class=$(phase_lines "${from[@]}" | "$E2E_PY" -c '
import json, sys
plan = json.loads(sys.argv[1])
n = [0] * int(sys.argv[2])
for conn in {tuple(line.split()[:3]) for line in sys.stdin}:  # (server, LIP, lport)
    n[plan["owner"][str(int(conn[2]) & plan["mask"])]] += 1
print(n)' "$plan" "$WORKERS")
check_eq "each worker's conns = the conns whose local port is in its classes" "$created" "$by_class"
check "every worker created conns (af_packet spreads the client's flows over the 4 queues)" \
  [ "$(jeval 'min(d)' "$created")" -gt 0 ]

# ---- 5: UDP echo ---------------------------------------------------------------------------------
e2e_log "UDP echo: $NUDP datagrams to $FNAT_VIP4:$FNAT_UDP_PORT and $NUDP to [$FNAT_VIP6]:$FNAT_UDP_PORT"
# udp_echo ADDRESS: sends NUDP datagrams, each from its own socket (all kept open, so no source port
# comes twice), and prints how many came back with their own payload.
udp_echo() {
  timeout 30 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$1" "$FNAT_UDP_PORT" "$NUDP" <<'EOF'
import os, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
socks = []
ok = 0
for _ in range(n):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((host, port))
    msg = b"fnat-e2e " + os.urandom(12).hex().encode()
    s.send(msg)
    try:
        ok += s.recv(2048) == msg
    except OSError:
        pass
    socks.append(s)
print(ok)
EOF
}
check_eq "UDP echo over IPv4: every datagram answered with its payload" "$(udp_echo "$FNAT_VIP4")" "$NUDP"
check_eq "UDP echo over IPv6: every datagram answered with its payload" "$(udp_echo "$FNAT_VIP6")" "$NUDP"
svc3=$(tel /fnat/services)
phase_drops "UDP echo"
for s in echo echo6; do
  spread=$(jeval "[b - a for a, b in zip(j[0]['$s'], j[1]['$s'])]" "$svc2" "$svc3")
  check "UDP service $s: round robin reached every real server ($spread)" [ "$(jeval 'min(d)' "$spread")" -gt 0 ]
done

# ---- 6: load -------------------------------------------------------------------------------------
wrk_run() {  # wrk_run URL NAME
  local out=$E2E_DIR/wrk-$2.out reqs
  timeout 60 ip netns exec "$FNAT_NS_CLIENT" wrk -t2 -c16 -d3s --timeout 5s "$1" >"$out" 2>&1
  check "wrk $2: ran ($(grep -E 'Requests/sec' "$out" | tr -s ' '))" grep -q 'Requests/sec' "$out"
  reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out")
  check "wrk $2: ${reqs:-no} requests, at least 50 (2 shared cores: throughput varies a lot)" [ "${reqs:-0}" -ge 50 ]
  check "wrk $2: no socket error, no non-2xx answer" bash -c '! grep -E "Socket errors|Non-2xx" "$1"' _ "$out"
}
e2e_log "wrk: 16 connections, 3 s, IPv4 then IPv6"
wrk_run "http://$FNAT_VIP4/" ipv4
phase_drops "wrk IPv4"
wrk_run "http://[$FNAT_VIP6]/" ipv6
phase_drops "wrk IPv6"
sed 's/^/    /' "$E2E_DIR/wrk-ipv4.out"

# ---- 7: replies on their owner lcore -------------------------------------------------------------
redirect_settled() {
  local s
  s=$(tel /fnat/stats) && [ "$(jeval 'd["redirected_out"] == d["redirected_in"]' "$s")" = 1 ]
}
e2e_wait_for 10 redirect_settled || true
stats=$(tel /fnat/stats)
e2e_log "telemetry /fnat/lcores after the traffic:"
jeval '"\n".join("    lcore %d: rx %d, inbound %d, outbound %d, conns %d, redirected %d out / %d in" % t for t in zip(d["lcore"], d["rx_packets"], d["inbound"], d["outbound"], d["conns_created"], d["redirected_out"], d["redirected_in"]))' "$(tel /fnat/lcores)"
check "replies were redirected to their owner lcore ($(jeval 'd["redirected_out"]' "$stats") out, $(jeval 'd["redirected_in"]' "$stats") in): out == in > 0" \
  [ "$(jeval 'd["redirected_out"] == d["redirected_in"] and d["redirected_in"] > 0' "$stats")" = 1 ]
for r in no_conn misdirected ring_full non_syn_first tuple_in_use port_exhausted conn_pool_empty table_full tx_full no_mbuf unknown_neighbour; do
  check_eq "no drop_$r" "$(jeval "d['drop_$r']" "$stats")" 0
done
e2e_log "drops by reason (all): $(jeval '", ".join("%s=%d" % (k[5:], v) for k, v in d.items() if k.startswith("drop_") and v) or "none"' "$stats")"

# ---- 8: after the flows close and time out: nothing in use ------------------------------------------
e2e_log "waiting for every conn to close and time out"
check "every conn timed out within 40 s (created = expired; conns, conn objects, ports in use: 0)" \
  e2e_wait_for 40 e2e_lb_idle
lcores=$(tel /fnat/lcores)
check_eq "per worker: conns live" "$(jeval 'd["conns_live"]' "$lcores")" "[0, 0, 0, 0]"
check_eq "per worker: conn objects in use" "$(jeval 'd["conn_objects_in_use"]' "$lcores")" "[0, 0, 0, 0]"
sapool=$(tel /fnat/sapool)
check "every sa_pool is whole again: no port used, as many free as at start" e2e_sapool_whole "$sapool0" "$sapool"

# ---- 9: stop ---------------------------------------------------------------------------------------
stats=$(tel /fnat/stats)
e2e_lb_stop
summary=$(cat "$E2E_DIR/summary.json")
check "summary: every conn created ($(jeval 'sum(w["conns_created"] for w in d["workers"])' "$summary")) expired before the stop" \
  [ "$(jeval 'sum(w["conns_created"] for w in d["workers"]) == sum(w["conns_expired"] for w in d["workers"]) > 0' "$summary")" = 1 ]
check_eq "summary: conns created = telemetry's" \
  "$(jeval 'sum(w["conns_created"] for w in d["workers"])' "$summary")" "$(jeval 'd["conns_created"]' "$stats")"
e2e_finish
