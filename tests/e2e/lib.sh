# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash disable=SC2016  # single-quoted bash -c / Python snippets expand on purpose later
# Shared by the end-to-end tests (tests/e2e/test_*.sh source it; it is not a test itself).
#
# A test runs the reference balancer (examples/fnat_lb) in the network-namespace rig (scripts/rig.sh)
# with real clients and servers, and reads what happened from three independent places: what the
# client got (bodies, echoes), what the real servers saw (nginx access logs: source address and port
# of every request) and what the balancer counted (DPDK telemetry, and the summary and leak check it
# prints when it stops). Shape of a test:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_init lb_http http "$1" wrk            # root and tools, else exit 77; names; cleanup trap
#   e2e_rig_up --rs 3 --queues 4              # rig.sh up + serve (access logs on); FNAT_* variables
#   e2e_lb_config "$E2E_DIR/lb.ini" 1-4       # rig.sh config + idle = backoff + short [timeouts]
#   e2e_lb_start "$E2E_DIR/lb.ini" 4          # 4 workers: EAL --lcores '(0-4)@(0,1)'; waits for ready
#   check "what it proves" COMMAND...         # counted; a failed check does not stop the test
#   e2e_lb_stop                               # SIGINT: exit code 0, leak check line, clean sanitizers
#   e2e_finish                                # exit 0, or 1 when any check failed
#
# Rules every test keeps (CI runs the suite twice, once with an ASan+UBSan balancer, on 2 cores):
#  - every wait is bounded (timeout(1), curl --max-time, socat -T, e2e_wait_for), so a balancer that
#    hangs or drops everything fails the test instead of hanging CI;
#  - each test has its own rig prefix, fnat-e2e-<short>-<tag>-, where <tag> comes from the build
#    directory, so the release and the sanitizer suites may even run at the same time; it never
#    touches other namespaces, and it stops only the processes it started;
#  - on any exit (failure, signal) the balancer is stopped and the rig is torn down; the work
#    directory (config, balancer output, curl output, server logs) is kept when something failed
#    and its path printed, and removed otherwise.
# The balancer runs with the same ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS as the unit tests
# (ctest passes them; when a test is run by hand, the same defaults are set here).

set -u -o pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_PASS=0
E2E_FAIL=0
E2E_LB_PID=""
E2E_DIR=""
E2E_T0=${EPOCHREALTIME/[.,]/}
E2E_PY=/usr/bin/python3  # Debian's python3: python3-scapy is installed for it
export PYTHONPATH="$E2E_ROOT/tests/e2e${PYTHONPATH:+:$PYTHONPATH}"  # craft.py, the tests' frame builders

e2e_log() { printf '[%s %6.1fs] %s\n' "$E2E_NAME" "$(((${EPOCHREALTIME/[.,]/} - E2E_T0) / 100000))e-1" "$*"; }

# e2e_skip REASON: exit 77, which ctest reports as "skipped".
e2e_skip() {
  echo "$E2E_NAME: SKIPPED: $*"
  exit 77
}

# e2e_die REASON: a failure the test cannot go on after; the EXIT trap cleans up.
e2e_die() {
  E2E_FAIL=$((E2E_FAIL + 1))
  e2e_log "FATAL: $*"
  exit 1
}

# check DESCRIPTION COMMAND...: runs COMMAND; counts and prints the outcome.
check() {
  local what=$1
  shift
  if "$@"; then
    E2E_PASS=$((E2E_PASS + 1))
    echo "  ok    $what"
  else
    E2E_FAIL=$((E2E_FAIL + 1))
    echo "  FAIL  $what"
  fi
}

# check_eq DESCRIPTION GOT WANT: string equality, printing both on failure.
check_eq() {
  if [ "$2" = "$3" ]; then
    E2E_PASS=$((E2E_PASS + 1))
    echo "  ok    $1 ($2)"
  else
    E2E_FAIL=$((E2E_FAIL + 1))
    echo "  FAIL  $1: got '$2', want '$3'"
  fi
}

# e2e_script_verdict OUTPUT STATUS: a test's Python script printed its own ok / FAIL lines and, as its
# last word, "RESULT <passed> <failed>" into OUTPUT, and exited with STATUS: shows OUTPUT, checks that
# the script ran to its end, and adds its counts to the test's.
e2e_script_verdict() {
  local result
  cat "$1"
  result=$(sed -n 's/^RESULT \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$1")
  check_eq "the Python script writing $(basename "$1") ran to its end (exit status)" "$2" 0
  check "it reported its own checks (RESULT line)" test -n "$result"
  if [ -n "$result" ]; then
    E2E_PASS=$((E2E_PASS + ${result% *}))
    E2E_FAIL=$((E2E_FAIL + ${result#* }))
  fi
}

# is EXPRESSION: bash arithmetic as a command, for check: check "in range" is "$n >= 3 && $n <= 5".
is() { (($1)); }

# e2e_wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds (0) or SECONDS pass (1).
e2e_wait_for() {
  local deadline=$((${EPOCHREALTIME/[.,]/} + $1 * 1000000))
  shift
  while :; do
    "$@" && return 0
    [ "${EPOCHREALTIME/[.,]/}" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# e2e_init NAME SHORT BUILD_DIR [TOOL...]: checks that the test can run (root, the balancer binary, the
# tools), names everything, sets the cleanup trap. Exits 77 when the test cannot run here.
e2e_init() {
  E2E_NAME=$1
  local short=$2 build=${3:-}
  shift 3 || true
  [ -n "$build" ] || { echo "usage: bash $0 BUILD_DIR" >&2; exit 2; }
  [ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces)"
  E2E_BUILD=$(cd "$build" 2>/dev/null && pwd -P) || e2e_skip "no build directory $build"
  E2E_LB=$E2E_BUILD/examples/fnat_lb/fnat_lb
  [ -x "$E2E_LB" ] || e2e_skip "$E2E_LB is not built (cmake --build $build --target fnat_lb)"
  local t
  for t in ip ethtool nginx socat curl timeout md5sum "$E2E_PY" "$@"; do
    command -v "$t" >/dev/null || e2e_skip "$t is missing (scripts/bootstrap.sh installs it)"
  done
  # The first two CPUs this process may use (EAL rejects CPUs outside its affinity).
  E2E_CPUS=$("$E2E_PY" -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0))[:2])))')
  # A sanitizer build? (Said in the log; every build must exit without a sanitizer report.)
  E2E_SANITIZED=0
  grep -qs '^FNAT_SANITIZE:BOOL=ON' "$E2E_BUILD/CMakeCache.txt" && E2E_SANITIZED=1
  : "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0}"
  : "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
  : "${LSAN_OPTIONS:=suppressions=$E2E_ROOT/tests/support/lsan.supp:print_suppressions=0}"
  export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

  local tag
  tag=$(printf '%s' "$E2E_BUILD" | md5sum | cut -c1-4)
  export FNAT_RIG_PREFIX="fnat-e2e-$short-$tag-"
  E2E_EAL_PREFIX="fnat-e2e-$short-$tag"
  E2E_TEL_SOCK=/var/run/dpdk/$E2E_EAL_PREFIX/dpdk_telemetry.v2
  E2E_DIR=$(mktemp -d "/tmp/fnat-e2e-$short.XXXXXX") || e2e_die "mktemp failed"
  chmod 755 "$E2E_DIR"  # the rig's nginx workers (user nobody) read their pages below it
  export FNAT_RIG_STATE=$E2E_DIR/rig
  export FNAT_RIG_ACCESS_LOG=1
  trap e2e_cleanup EXIT
  trap 'e2e_log "interrupted"; exit 130' INT TERM HUP
  e2e_log "build $E2E_BUILD$([ $E2E_SANITIZED = 1 ] && echo ' (ASan+UBSan)'), rig ${FNAT_RIG_PREFIX}*, work dir $E2E_DIR"
}

e2e_cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM HUP  # the teardown runs to its end, even when the signal comes again
  if [ -n "$E2E_LB_PID" ] && kill -0 "$E2E_LB_PID" 2>/dev/null; then
    kill -INT "$E2E_LB_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$E2E_LB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$E2E_LB_PID" 2>/dev/null
    wait "$E2E_LB_PID" 2>/dev/null
  fi
  [ "$rc" = 0 ] && [ "$E2E_FAIL" != 0 ] && rc=1
  if [ "$rc" != 0 ] && [ -d "${FNAT_RIG_STATE:-}" ]; then  # rig.sh down removes its state: keep the logs
    (cd "$FNAT_RIG_STATE" && find . -name '*.log' -exec cp --parents {} "$E2E_DIR/" \;) 2>/dev/null
  fi
  timeout 120 "$E2E_ROOT/scripts/rig.sh" down >/dev/null 2>&1 || echo "$E2E_NAME: rig.sh down failed" >&2
  rm -rf "/var/run/dpdk/$E2E_EAL_PREFIX"
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$E2E_DIR" ]; then
    if [ -s "$E2E_DIR/lb.log" ]; then
      echo "---- last lines of the balancer's output ($E2E_DIR/lb.log) ----"
      grep -v '^fnat_lb: summary {' "$E2E_DIR/lb.log" | tail -n 40
    fi
    echo "$E2E_NAME: FAILED ($E2E_FAIL failed, $E2E_PASS passed); its files are in $E2E_DIR"
  elif [ -n "$E2E_DIR" ]; then
    rm -rf "$E2E_DIR"
  fi
  exit "$rc"
}

# e2e_finish: the test's verdict.
e2e_finish() {
  e2e_log "$E2E_PASS checks passed, $E2E_FAIL failed"
  [ "$E2E_FAIL" = 0 ] || exit 1
  exit 0
}

# ---- the rig ------------------------------------------------------------------------------------

rig() { timeout 120 "$E2E_ROOT/scripts/rig.sh" "$@"; }

# e2e_rig_up UP-ARGS...: builds the rig, starts the servers, exports rig.sh env (FNAT_NS_CLIENT, ...).
e2e_rig_up() {
  rig up "$@" >"$E2E_DIR/rig.log" 2>&1 || { cat "$E2E_DIR/rig.log"; e2e_die "rig.sh up $* failed"; }
  rig serve >>"$E2E_DIR/rig.log" 2>&1 || { cat "$E2E_DIR/rig.log"; e2e_die "rig.sh serve failed"; }
  set -a  # exported: the tests' Python helpers read them too
  eval "$(rig env)"
  set +a
  e2e_log "rig up: $FNAT_RS_COUNT real servers, $FNAT_QUEUES queue pairs"
}

# rs_log I: real server I's access log (one line per request: ADDR PORT SERVER_ADDR URI STATUS).
rs_log() { echo "$FNAT_RIG_STATE/rs$1/access.log"; }
# rs_lines I: lines in it so far.
rs_lines() { if [ -f "$(rs_log "$1")" ]; then wc -l <"$(rs_log "$1")"; else echo 0; fi; }

# ---- the balancer -------------------------------------------------------------------------------

# e2e_lb_config FILE WORKERS: the rig's configuration for WORKERS (rig.sh config --workers), with
# idle = backoff (2 cores shared with clients and servers), a small conn table, and timeouts short
# enough that closed flows leave within seconds. Only the states a flow ends in (time_wait, close,
# UDP) are very short: they decide how long a test waits for "nothing in use". The states a flow
# passes through keep 10 s or more, because on a starved machine a real server's answer can come
# seconds late, and a conn that expired before it turns its answer into a no_conn drop.
e2e_lb_config() {
  local file=$1 workers=$2
  rig config --workers "$workers" >"$file.rig" || e2e_die "rig.sh config failed"
  "$E2E_PY" - "$file.rig" "$file" <<'EOF' || e2e_die "could not write $file"
import sys
text = open(sys.argv[1]).read()
head, sep, rest = text.partition("\n[port ")
assert sep, "rig.sh config printed no [port] section"
head = head.rstrip("\n") + """
idle = backoff
conns_per_lcore = 65536
timer_tick_ms = 10

[timeouts]
tcp_none = 10
tcp_syn_sent = 10
tcp_syn_recv = 10
tcp_established = 30
tcp_fin_wait = 10
tcp_close_wait = 10
tcp_last_ack = 10
tcp_time_wait = 3
tcp_close = 3
tcp_synack = 10
udp_oneway = 3
udp_normal = 3
"""
open(sys.argv[2], "w").write(head + "\n" + sep + rest)
EOF
  rm -f "$file.rig"
}

# e2e_lb_start CONFIG WORKERS: starts the balancer in the lb namespace (EAL: no hugepages, the rig's
# af_packet ports, lcores 0..WORKERS floating over two CPUs: CI has 2 cores, shared with the clients
# and servers) and waits for its "fnat_lb: ready" line and its telemetry socket.
e2e_lb_start() {
  local cfg=$1 lcores="(0-$2)@($E2E_CPUS)"
  local -a vdevs
  read -r -a vdevs <<<"$FNAT_EAL_VDEVS"
  ip netns exec "$FNAT_NS_LB" "$E2E_LB" --no-huge --no-shconf --no-pci -m 512 --file-prefix "$E2E_EAL_PREFIX" \
    --lcores "$lcores" "${vdevs[@]}" -- --config "$cfg" >"$E2E_DIR/lb.log" 2>&1 </dev/null &
  E2E_LB_PID=$!
  e2e_wait_for 90 lb_ready || e2e_die "the balancer did not get ready within 90 s"
  e2e_log "balancer ready (pid $E2E_LB_PID): $(grep -m1 '^fnat_lb: ready' "$E2E_DIR/lb.log")"
}
lb_ready() {
  kill -0 "$E2E_LB_PID" 2>/dev/null || e2e_die "the balancer exited during start-up"
  grep -qs '^fnat_lb: ready' "$E2E_DIR/lb.log" && [ -S "$E2E_TEL_SOCK" ]
}

# e2e_lb_stop: SIGINT, then the balancer must exit 0 within 60 s having printed its summary and the
# leak check's success line, with no sanitizer report. Leaves the summary JSON in $E2E_DIR/summary.json.
e2e_lb_stop() {
  local pid=$E2E_LB_PID rc
  kill -INT "$pid" 2>/dev/null || e2e_die "the balancer is not running any more"
  if ! e2e_wait_for 60 lb_exited "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    E2E_LB_PID=""
    e2e_die "the balancer did not exit within 60 s of SIGINT"
  fi
  wait "$pid"
  rc=$?
  E2E_LB_PID=""
  e2e_log "balancer exited with status $rc"
  sed -n 's/^fnat_lb: summary //p' "$E2E_DIR/lb.log" >"$E2E_DIR/summary.json"
  grep -v '^fnat_lb: summary {' "$E2E_DIR/lb.log" | sed -n '/^fnat_lb: rx /,$p' | sed 's/^/    /'
  check_eq "the balancer exits 0 after SIGINT" "$rc" 0
  check "it printed its summary as JSON" "$E2E_PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$E2E_DIR/summary.json"
  check "leak check: every sa_pool whole, no conn object in use" \
    grep -qx 'fnat_lb: leak check: every sa_pool whole, no conn object in use' "$E2E_DIR/lb.log"
  check "no AddressSanitizer / LeakSanitizer / UBSan report" \
    bash -c '! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)" "$1"' _ "$E2E_DIR/lb.log"
}
lb_exited() { ! kill -0 "$1" 2>/dev/null; }

# tel COMMAND...: one line per command, the JSON value the balancer's telemetry answers (the reply's
# inner object, e.g. {"workers": 4, "rx_packets": ...} for /fnat/stats). Talks to the EAL telemetry
# socket directly (what dpdk-telemetry.py does); bounded to 10 s.
tel() {
  timeout 10 "$E2E_PY" - "$E2E_TEL_SOCK" "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
limit = json.loads(s.recv(4096).decode())["max_output_len"]
for cmd in sys.argv[2:]:
    s.send(cmd.encode())
    reply = json.loads(s.recv(limit).decode())
    print(json.dumps(reply[cmd.split(",")[0]]))
EOF
}

# jeval EXPRESSION JSON...: prints the Python EXPRESSION evaluated with j[0], j[1], ... bound to the
# parsed JSON arguments (d is j[0]). Booleans print as 1 / 0 so that shell tests can compare them.
jeval() {
  "$E2E_PY" - "$@" <<'EOF'
import json, sys
j = [json.loads(a) for a in sys.argv[2:]]
d = j[0] if j else None
v = eval("(" + sys.argv[1] + "\n)")  # in parentheses: the expression may span lines
print(int(v) if isinstance(v, bool) else v)
EOF
}

# e2e_lb_idle: true when the balancer holds no conn: every conn created has expired (live counters)
# and the gauges (refreshed by each worker every 100 ms) show no conn, conn object or port in use.
# Both, because a gauge lags: right after new conns it may still read 0.
e2e_lb_idle() {
  local s
  s=$(tel /fnat/stats) &&
    [ "$(jeval 'd["conns_created"] == d["conns_expired"] and d["conns_live"] == 0 and
                d["conn_objects_in_use"] == 0 and d["ports_in_use"] == 0' "$s")" = 1 ]
}

# e2e_sapool_whole BEFORE AFTER (/fnat/sapool answers): no port in use, as many free as before.
e2e_sapool_whole() {
  [ "$(jeval 'all(not any(v) for k, v in j[1].items() if k.endswith("_used")) and
              all(j[0][k] == v for k, v in j[1].items() if k.endswith("_free"))' "$1" "$2")" = 1 ]
}

# e2e_udp_echo_servers: replaces the rig's servers by a UDP echo on FNAT_UDP_PORT, IPv4 and IPv6, on
# every real server, that takes datagrams of any size (socat's buffer is 8 KiB); waits until all run.
# Needs NS_RS, RS4 and RS6 (arrays read from FNAT_NS_RS, FNAT_RS4, FNAT_RS6).
e2e_udp_echo_servers() {
  rig stop-servers >>"$E2E_DIR/rig.log" 2>&1 || e2e_die "rig.sh stop-servers failed"
  for i in "${!NS_RS[@]}"; do
    ip netns exec "${NS_RS[$i]}" "$E2E_PY" - "${RS4[$i]}" "${RS6[$i]}" "$FNAT_UDP_PORT" >"$E2E_DIR/echo$i.log" 2>&1 <<'PY' &
import select, socket, sys
socks = []
for fam, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, int(sys.argv[3])))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
PY
  done
  # shellcheck disable=SC2317  # called through e2e_wait_for
  echo_ready() { for i in "${!NS_RS[@]}"; do grep -qs ready "$E2E_DIR/echo$i.log" || return 1; done; }
  e2e_wait_for 20 echo_ready || e2e_die "the UDP echo servers did not start"
}

# e2e_big_echo PER ADDRESS SIZE...: PER datagrams of each SIZE (random bytes) from the client, each
# from its own connected socket, to ADDRESS:FNAT_UDP_PORT; prints "exact wrong lost".
e2e_big_echo() {
  local per=$1 addr=$2
  shift 2
  timeout 120 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$addr" "$FNAT_UDP_PORT" "$per" "$@" <<'PY'
import os, socket, sys
addr, port, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
exact = wrong = lost = 0
for size in map(int, sys.argv[4:]):
    for _ in range(per):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.connect((addr, port))
        data = os.urandom(size)
        s.send(data)
        try:
            got = s.recv(65535)
            exact += got == data
            wrong += got != data
        except OSError:
            lost += 1
        s.close()
print(exact, wrong, lost)
PY
}
