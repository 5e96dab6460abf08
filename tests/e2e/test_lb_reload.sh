#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: SIGHUP reloads of the real servers (issue 19, docs/OPERATIONS.md) under load, 2 workers,
# 3 real servers (nginx) in the namespace rig. Service web starts with rs1 and rs2; while wrk holds
# keep-alive connections and curl opens a new connection per request (20 per second), the file
# changes three times: rs3 added with weight 2; rs1 drained (weight 0); rs2 removed. Then a broken
# file is signalled and refused.
#
# What it proves:
#  1. each good reload is applied (the balancer prints "reload applied (version N)");
#  2. the broken file is refused with its file and line, and the version does not move;
#  3. zero failed requests: every curl request (a new conn each) answers 200, and wrk reports no
#     socket error and no non-2xx answer (its connections opened before a reload keep their server,
#     also those on the drained and the removed server);
#  4. after the reloads, new connections go only to rs3 (rs1 drained, rs2 removed);
#  5. SIGINT: leak check passes, exit 0.
#
# Usage: bash tests/e2e/test_lb_reload.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_reload reload "${1:-}" wrk

WORKERS=2
NCURL=300

e2e_rig_up --rs 3 --queues "$WORKERS"
read -r -a RS4 <<<"$FNAT_RS4"
cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"

# set_web_rs LINE...: the rs lines of [service web] become LINE...
set_web_rs() {
  "$E2E_PY" - "$cfg" "$@" <<'PY' || e2e_die "could not rewrite $cfg"
import sys
path, rs = sys.argv[1], sys.argv[2:]
out, section, done = [], None, False
for line in open(path).read().splitlines():
    if line.startswith("["):
        section = line.strip()
    if section == "[service web]" and line.startswith("rs = "):
        if not done:
            out.extend(rs)
            done = True
        continue
    out.append(line)
assert done, "no rs line in [service web]"
open(path, "w").write("\n".join(out) + "\n")
PY
}
P=$FNAT_HTTP_PORT
set_web_rs "rs = ${RS4[0]}:$P" "rs = ${RS4[1]}:$P"
e2e_lb_start "$cfg" "$WORKERS"

applied() { grep -q "^fnat_lb: reload applied (version $1)" "$E2E_DIR/lb.log"; }
refused() { grep -q "^fnat_lb: reload refused" "$E2E_DIR/lb.log"; }
reload_to() {  # reload_to VERSION WHAT LINE...
  local v=$1 what=$2
  shift 2
  set_web_rs "$@"
  kill -HUP "$E2E_LB_PID"
  check "reload $v ($what): applied" e2e_wait_for 10 applied "$v"
}

# ---- load in the background ------------------------------------------------------------------------
ip netns exec "$FNAT_NS_CLIENT" timeout 60 wrk -t1 -c8 -d20s --timeout 5s "http://$FNAT_VIP4/" \
  >"$E2E_DIR/wrk.out" 2>&1 &
wrk_pid=$!
ip netns exec "$FNAT_NS_CLIENT" timeout 90 curl -sS --max-time 10 --rate 20/s -H 'Connection: close' \
  -w 'code=%{http_code}\n' "http://$FNAT_VIP4/?[1-$NCURL]" >"$E2E_DIR/curl.out" 2>"$E2E_DIR/curl.err" &
curl_pid=$!
sleep 3

# ---- 1, 2: reloads under load -------------------------------------------------------------------
reload_to 2 "rs3 added, weight 2" "rs = ${RS4[0]}:$P" "rs = ${RS4[1]}:$P" "rs = ${RS4[2]}:$P weight=2"
sleep 3
reload_to 3 "rs1 drained" "rs = ${RS4[0]}:$P weight=0" "rs = ${RS4[1]}:$P" "rs = ${RS4[2]}:$P weight=2"
sleep 3
reload_to 4 "rs2 removed" "rs = ${RS4[0]}:$P weight=0" "rs = ${RS4[2]}:$P weight=2"
sleep 2
good=$(cat "$cfg")
set_web_rs "rs = ${RS4[0]}:$P weight=0" "rs = ${RS4[2]}:$P weight=lots"
bad_line=$(grep -n "weight=lots" "$cfg" | cut -d: -f1)
kill -HUP "$E2E_LB_PID"
check "a broken file is refused" e2e_wait_for 10 refused
check "the refusal names the file and line ($cfg:$bad_line)" grep -q "reload refused.*$cfg:$bad_line" "$E2E_DIR/lb.log"
check "the broken file applied nothing (no version 5)" bash -c '! grep -q "reload applied (version 5)" "$1"' _ "$E2E_DIR/lb.log"
printf '%s\n' "$good" >"$cfg"
grep '^fnat_lb: reload\|^service web' "$E2E_DIR/lb.log" | sed 's/^/    /'

# ---- 3: zero failed requests ------------------------------------------------------------------------
wait "$wrk_pid" || true
wait "$curl_pid" || true
check_eq "curl: $NCURL new connections during the reloads, all answered 200" "$(grep -c '^code=200$' "$E2E_DIR/curl.out")" "$NCURL"
check_eq "curl: nothing but 200s" "$(grep -c '^code=' "$E2E_DIR/curl.out")" "$NCURL"
[ -s "$E2E_DIR/curl.err" ] && sed 's/^/    curl: /' "$E2E_DIR/curl.err" | head -5
check "wrk ran ($(grep -E 'requests in' "$E2E_DIR/wrk.out" | tr -s ' '))" grep -q 'Requests/sec' "$E2E_DIR/wrk.out"
check "wrk: no socket error, no non-2xx answer" bash -c '! grep -E "Socket errors|Non-2xx" "$1"' _ "$E2E_DIR/wrk.out"
for i in 1 2 3; do e2e_log "rs$i answered $(grep -c "^rs$i\$" "$E2E_DIR/curl.out") of the curl requests"; done
check "rs3 (added by a reload) answered some of the curl requests" [ "$(grep -c '^rs3$' "$E2E_DIR/curl.out")" -gt 0 ]

# ---- 4: after the reloads, only rs3 takes new connections -----------------------------------------
timeout 60 ip netns exec "$FNAT_NS_CLIENT" curl -sS --max-time 10 -H 'Connection: close' \
  -w 'code=%{http_code}\n' "http://$FNAT_VIP4/?[1-40]" >"$E2E_DIR/after.out" 2>&1 || true
check_eq "after the reloads: 40 new connections answered 200" "$(grep -c '^code=200$' "$E2E_DIR/after.out")" 40
check_eq "after the reloads: all 40 by rs3 (rs1 drained, rs2 removed)" "$(grep -c '^rs3$' "$E2E_DIR/after.out")" 40

# ---- 5: stop --------------------------------------------------------------------------------------
e2e_lb_stop
e2e_finish
