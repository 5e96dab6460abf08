#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: malformed and hostile frames against the reference balancer, crafted with scapy and
# sent from the client namespace straight onto its veth, to the balancer's MAC (2 workers, 2 queue
# pairs, 2 real servers). The ASan+UBSan build runs this same script: "no crash" includes no
# sanitizer report.
#
# What it proves:
#  1. Each malformation is a counted drop under its own reason, and under no other: for every case
#     the /fnat/stats counter drop_<reason> grows by exactly the number of frames sent and no other
#     drop_* counter moves. Cases: unknown EtherType, QinQ and three tags, malformed and truncated
#     ARP, truncated IPv4 / IPv6 header, IP version not matching the EtherType, IHL below 5, IP
#     length beyond the frame or below the header, IPv4 options, malformed IPv6 fragments, IPv6
#     fragments (the first and a later one) of datagrams that never complete (frag_dropped), IPv6
#     extension headers, IPv4-mapped IPv6 addresses, multicast / loopback /
#     unspecified / reserved sources, unknown L4 protocols, truncated TCP / UDP / ICMP headers, TCP
#     data offset out of range, UDP length 0 / short / long, IPv6 UDP without checksum, TTL or hop
#     limit 0 / 1, a first TCP packet that is not a SYN, packets to a LIP port with no conn, to a
#     VIP port, address or network nobody serves, ICMP we do not answer, an ICMP error whose quote is not
#     an IP header, and malformed ND; and what
#     a first packet must not claim before it spends a conn and a port (issue 14): a wrong IPv4
#     header checksum (on any packet), a wrong TCP / UDP checksum, a source that is one of the
#     balancer's own addresses (a "land" SYN from the VIP to the VIP, a LIP, an interface address), the
#     broadcast address of the client network, and a real server's address arriving on the client
#     port (reverse path).
#  2. What parse accepts by design is forwarded, not dropped: Ethernet padding, an empty UDP datagram,
#     TCP options, one 802.1Q tag, and an IPv4 datagram sent in fragments. The real servers answer
#     these; the client namespace blackholes its routes to the VIPs meanwhile, so that its kernel's
#     resets and port-unreachables do not mix into the counters.
#     What af_packet itself does to some frames, before the balancer sees them: DPDK's af_packet PMD
#     puts its queue sockets in a PACKET_FANOUT group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel
#     reassembles IPv4 fragments first (a lone fragment never arrives; a whole set arrives as one
#     datagram), and the kernel's VLAN untagging drops a frame cut inside its tag (eth_truncated
#     cannot be produced here). The drops those paths count are covered by the parse unit tests and
#     the packet fuzzer.
#  3. ARP and ND that claim a real server's address from the client side (the neighbour entry of a
#     server pointed at an attacker's MAC would take the service down) are absorbed: afterwards
#     every real server still answers through the VIP, over IPv4 and IPv6.
#  4. Every strict prefix of valid frames (IPv4 TCP, IPv6 UDP, ARP, VLAN-tagged TCP, ICMP echo) is
#     dropped, each with a truncation reason; then 2800 fuzzed frames (scapy's fuzz() over IPv4 and
#     IPv6 TCP / UDP / ICMP to the VIPs, the LIP and the balancer, random bytes behind each
#     EtherType, bit flips of valid frames): the balancer keeps running and serving.
#  5. Afterwards curl through the VIPs still works; once the conns the hostile SYNs opened time
#     out, nothing is in use; SIGINT: leak check passes, exit status 0, no sanitizer report.
#
# Usage: bash tests/e2e/test_lb_hostile.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317  # bash -c snippets take "$1"; e2e_wait_for calls helpers
. "$(dirname "$0")/lib.sh"
e2e_init lb_hostile hostile "${1:-}"
"$E2E_PY" -c 'import scapy.all' 2>/dev/null || e2e_skip "python3-scapy is missing (scripts/bootstrap.sh installs it)"

WORKERS=2
e2e_rig_up --rs 2 --queues "$WORKERS"
cfg=$E2E_DIR/lb.ini
e2e_lb_config "$cfg" "1-$WORKERS"
e2e_lb_start "$cfg" "$WORKERS"

# curl_all: 4 IPv4 and 4 IPv6 requests through the VIPs, each on its own connection; all must answer
# 200 with a real server's body, and both servers must answer over each family.
CURL_ASKED=0
CURL_SERVED=0
curl_all() {
  local what=$1 url out
  for url in "http://$FNAT_VIP4/?[1-4]" "http://[$FNAT_VIP6]/?[1-4]"; do
    out=$(timeout 60 ip netns exec "$FNAT_NS_CLIENT" curl -sS --max-time 10 -H 'Connection: close' \
      -w 'code=%{http_code}\n' "$url" 2>&1)
    CURL_ASKED=$((CURL_ASKED + 4))
    CURL_SERVED=$((CURL_SERVED + $(grep -c '^code=200$' <<<"$out")))
    check "$what: $url: 4 answers 200 from a real server, both servers answered" \
      is "$(grep -c '^code=200$' <<<"$out") == 4 && $(grep -c '^rs[12]$' <<<"$out") == 4 &&
          $(grep -c '^rs1$' <<<"$out") > 0 && $(grep -c '^rs2$' <<<"$out") > 0"
    grep -v '^code=200$\|^rs[12]$' <<<"$out" | head -3 | sed 's/^/    /'
  done
}
sapool0=$(tel /fnat/sapool)
curl_all "before"

e2e_log "hostile frames from the client namespace onto $FNAT_IF_CLIENT, to $FNAT_LB_CLIENT_MAC"
timeout 600 ip netns exec "$FNAT_NS_CLIENT" "$E2E_PY" - "$E2E_TEL_SOCK" >"$E2E_DIR/hostile.out" 2>&1 <<'EOF'
import json, os, random, socket, subprocess, sys, time

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6DestUnreach, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPOption, IPOption_Router_Alert,
                       IPOption_RR, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrRouting, Raw, conf, fragment, fuzz)

from craft import Craft  # tests/e2e/craft.py (lib.sh puts tests/e2e on PYTHONPATH)

conf.verb = 0
env = os.environ
IFACE, CMAC, LBMAC = env["FNAT_IF_CLIENT"], env["FNAT_CLIENT_MAC"], env["FNAT_LB_CLIENT_MAC"]
C4, C6, VIP4, VIP6 = env["FNAT_CLIENT4"], env["FNAT_CLIENT6"], env["FNAT_VIP4"], env["FNAT_VIP6"]
LB4, LB6 = env["FNAT_LB_CLIENT4"], env["FNAT_LB_CLIENT6"]
LIP4, LIP6 = env["FNAT_LIP4"].split()[0], env["FNAT_LIP6"]
RS4, RS6 = env["FNAT_RS4"].split(), env["FNAT_RS6"].split()
HTTP, ECHO = int(env["FNAT_HTTP_PORT"]), int(env["FNAT_UDP_PORT"])
EVIL = "02:66:66:66:66:66"
random.seed(7)
passed = failed = 0


class Telemetry:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(10)
        self.s.connect(path)
        self.limit = json.loads(self.s.recv(4096))["max_output_len"]

    def stats(self):
        self.s.send(b"/fnat/stats")
        return json.loads(self.s.recv(self.limit))["/fnat/stats"]


tel = Telemetry(sys.argv[1])
l2 = conf.L2socket(iface=IFACE)


sent = 0


def send(frames):
    global sent
    sent += len(frames)
    for i, f in enumerate(frames):
        l2.send(Raw(load=f) if isinstance(f, (bytes, bytearray)) else f)
        if i % 32 == 31:
            time.sleep(0.01)  # let the af_packet rings drain: a lost frame would be a false failure


def report(ok, text):
    global passed, failed
    passed += ok
    failed += not ok
    print(("  ok    " if ok else "  FAIL  ") + text, flush=True)


def drops_moved(before, after):
    return {k[5:]: after[k] - before[k] for k in after if k.startswith("drop_") and after[k] != before[k]}


def settle(before, done):
    """Polls /fnat/stats until done(after) or 5 s; then once more after a short pause, so that a
    counter that moves late (a frame redirected to the other worker) is seen too."""
    deadline = time.time() + 5
    while True:
        after = tel.stats()
        if done(after) or time.time() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.1)
    return tel.stats()


def dropped(reason, what, frames):
    """Every frame is dropped under `reason`, and nothing else is counted as a drop."""
    before = tel.stats()
    send(frames)
    after = settle(before, lambda a: a["drop_" + reason] - before["drop_" + reason] >= len(frames))
    moved = drops_moved(before, after)
    fwd = after["inbound"] - before["inbound"]
    report(moved == {reason: len(frames)} and fwd == 0,
           f"{what}: {len(frames)} frames -> drop_{reason} +{moved.get(reason, 0)}"
           + ("" if set(moved) <= {reason} else f", other drops {moved}") + (f", forwarded {fwd}" if fwd else ""))


def forwarded(what, frames, conns, packets=None):
    """`packets` (default: every frame) forwarded to a real server (inbound), nothing dropped, `conns` new conns."""
    want = len(frames) if packets is None else packets
    before = tel.stats()
    send(frames)
    after = settle(before, lambda a: a["inbound"] - before["inbound"] >= want)
    moved = drops_moved(before, after)
    fwd = after["inbound"] - before["inbound"]
    new = after["conns_created"] - before["conns_created"]
    report(not moved and fwd == want and new == conns,
           f"{what}: {len(frames)} frames, {fwd} packets forwarded (want {want}), {new} new conns (want {conns})"
           + (f", drops {moved}" if moved else ""))


def absorbed(what, frames):
    """Handled (ARP / ND) without a drop and without forwarding anything."""
    before = tel.stats()
    send(frames)
    after = settle(before, lambda a: a["rx_packets"] - before["rx_packets"] >= len(frames))
    moved = drops_moved(before, after)
    rx = after["rx_packets"] - before["rx_packets"]
    fwd = after["inbound"] - before["inbound"]
    report(not moved and fwd == 0 and rx >= len(frames),
           f"{what}: {len(frames)} frames received ({rx}), none dropped or forwarded"
           + (f", drops {moved}" if moved else "") + (f", forwarded {fwd}" if fwd else ""))


craft = Craft(CMAC, LBMAC, C4, C6, VIP4, VIP6, HTTP, ECHO)
port, E, ip4, ip6, syn, udp, raw_ip4 = craft.port, craft.E, craft.ip4, craft.ip6, craft.syn, craft.udp, craft.raw_ip4


def arp_bytes(**kw):
    return bytearray(bytes(ARP(**{"op": 1, "hwsrc": CMAC, "psrc": C4, "pdst": LB4, **kw})))


def with_byte(b, i, v):
    b = bytearray(b)
    b[i] = v
    return bytes(b)


print("1. malformed: each a counted drop under its own reason", flush=True)
# (eth_truncated, a VLAN EtherType without the whole tag, cannot be sent here: the kernel drops such a
# frame when it untags it, before any packet socket sees it.)
dropped("unsupported_ethertype", "LLDP, 802.3 length field, LLDP behind a VLAN tag, QinQ, three tags",
        [E(type=0x88CC) / Raw(bytes(46)), E(type=0x0040) / Raw(bytes(64)), E() / Dot1Q(vlan=7, type=0x88CC) / Raw(bytes(46)),
         E() / Dot1Q(vlan=5) / Dot1Q(vlan=6) / ip4() / syn(), E() / Dot1Q(vlan=5) / Dot1Q(vlan=6) / Dot1Q(vlan=8) / ip4() / syn()])
ARP_HDR = bytes(Ether(src=CMAC, dst="ff:ff:ff:ff:ff:ff", type=0x0806))
dropped("arp_malformed", "ARP: op 3, hardware type 6, protocol length 16, 20-byte body",
        [ARP_HDR + bytes(arp_bytes(op=3)), ARP_HDR + bytes(arp_bytes(hwtype=6)),
         ARP_HDR + with_byte(arp_bytes(), 5, 16), ARP_HDR + bytes(arp_bytes())[:20]])
dropped("ip_truncated", "IPv4 header of 0 and 10 bytes, IPv6 header of 30 bytes",
        [bytes(E(type=0x0800)), bytes(E(type=0x0800)) + b"\x45" + bytes(9),
         bytes(E(type=0x86DD)) + b"\x60" + bytes(29)])
dropped("bad_ip_version", "IPv6 behind EtherType IPv4, IPv4 behind EtherType IPv6, version 0",
        [bytes(E(type=0x0800)) + bytes(ip6() / syn()), bytes(E(type=0x86DD)) + bytes(ip4() / syn() / Raw(bytes(20))),
         raw_ip4(0x05, payload=bytes(syn()))])
dropped("bad_ihl", "IHL 4, 1 and 0 (below the 5-word minimum)",
        [E() / ip4(ihl=4) / syn(), E() / ip4(ihl=1) / syn(), raw_ip4(0x40, payload=bytes(syn()))])
dropped("bad_ip_length", "IPv4 total length 1000 and 19, IPv6 payload length 1000",
        [E() / ip4(len=1000) / syn(), E() / ip4(len=19) / syn(), E() / ip6(plen=1000) / syn()])
dropped("ip_options", "IPv4 options: record route, router alert, 40 bytes of NOPs",
        [E() / ip4(options=[IPOption_RR()]) / syn(), E() / ip4(options=[IPOption_Router_Alert()]) / udp() / Raw(b"x"),
         E() / ip4(options=[IPOption(b"\x01" * 40)]) / syn()])
# (IPv4 fragments never reach the balancer one by one: DPDK's af_packet PMD joins its sockets in a
# PACKET_FANOUT group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles them first; section 2
# sends a whole fragmented datagram. IPv6 fragments are not reassembled there: the balancer does.)
dropped("fragment", "IPv6 fragments that are malformed as such: M set and 13 bytes (not a multiple of 8), empty",
        [E() / ip6() / IPv6ExtHdrFragment(m=1, id=7) / Raw(b"x" * 13),
         E() / ip6() / IPv6ExtHdrFragment(offset=10, id=8)])
dropped("frag_dropped", "IPv6 first fragment (M set) and later fragment (offset) of datagrams that never complete "
        "(given up after frag_timeout_ms)",
        [E() / ip6() / IPv6ExtHdrFragment(m=1, id=9) / udp() / Raw(b"x" * 16),
         E() / ip6() / IPv6ExtHdrFragment(offset=10, id=10) / Raw(b"x" * 16)])
dropped("ipv6_ext_header", "IPv6 hop-by-hop, routing and destination options headers",
        [E() / ip6() / IPv6ExtHdrHopByHop() / syn(), E() / ip6() / IPv6ExtHdrRouting() / syn(),
         E() / ip6() / IPv6ExtHdrDestOpt() / udp() / Raw(b"x")])
dropped("ipv4_mapped", "IPv4-mapped IPv6 source and destination",
        [E() / ip6(src="::ffff:" + C4) / syn(), E() / ip6(dst="::ffff:" + VIP4) / udp() / Raw(b"x")])
dropped("bad_source", "multicast source MAC; IPv4 source 127/8, 224/4, 0/8, 240/4, broadcast; IPv6 ff02::1, ::1, ::",
        [Ether(src="01:00:5e:00:00:01", dst=LBMAC) / ip4() / syn()]
        + [E() / ip4(src=s) / syn() for s in ("127.0.0.1", "224.0.0.5", "0.1.2.3", "240.0.0.1", "255.255.255.255")]
        + [E() / ip6(src=s) / syn() for s in ("ff02::1", "::1", "::")])
dropped("unsupported_l4", "IPv4 GRE, SCTP, ICMPv6-in-IPv4; IPv6 ICMPv4-in-IPv6, GRE, no next header",
        [E() / ip4(proto=47) / Raw(bytes(20)), E() / ip4(proto=132) / Raw(bytes(20)), E() / ip4(proto=58) / Raw(bytes(8)),
         E() / ip6(nh=1) / Raw(bytes(8)), E() / ip6(nh=47) / Raw(bytes(20)), E() / ip6(nh=59)])
dropped("l4_truncated", "TCP header of 10 bytes, UDP of 4, ICMP of 4; IPv6 TCP of 19, UDP of 7, ICMPv6 of 4",
        [E() / ip4(proto=6) / Raw(bytes(10)), E() / ip4(proto=17) / Raw(bytes(4)), E() / ip4(proto=1) / Raw(bytes(4)),
         E() / ip6(nh=6) / Raw(bytes(19)), E() / ip6(nh=17) / Raw(bytes(7)), E() / ip6(nh=58) / Raw(bytes(4))])
dropped("bad_tcp_offset", "TCP data offset 4, 0, 15 and 6 in a 20-byte segment; IPv6 data offset 3",
        [E() / ip4() / syn(dataofs=4), E() / ip4() / syn(dataofs=0), E() / ip4() / syn(dataofs=15),
         E() / ip4() / syn(dataofs=6), E() / ip6() / syn(dataofs=3)])
dropped("bad_udp_length", "UDP length 0 (zero-length UDP), 7, 8 with payload, 100 with 2 bytes; IPv6 length 0",
        [E() / ip4() / udp(len=0) / Raw(b"hello"), E() / ip4() / udp(len=7), E() / ip4() / udp(len=8) / Raw(b"hello"),
         E() / ip4() / udp(len=100) / Raw(b"hi"), E() / ip6() / udp(len=0) / Raw(b"hello")])
dropped("udp_zero_checksum_v6", "IPv6 UDP with checksum 0",
        [E() / ip6() / udp(chksum=0) / Raw(b"x"), E() / ip6() / udp(chksum=0) / Raw(b"yy")])
dropped("ttl_expired", "TTL 1 and 0, hop limit 1 and 0, to the VIPs",
        [E() / ip4(ttl=1) / syn(), E() / ip4(ttl=0) / udp() / Raw(b"x"), E() / ip6(hlim=1) / syn(),
         E() / ip6(hlim=0) / udp() / Raw(b"x")])
dropped("non_syn_first", "first TCP packet ACK, PSH+ACK with data, FIN, FIN+ACK, RST, SYN+ACK, no flags; IPv6 ACK",
        [E() / ip4() / TCP(sport=port(), dport=HTTP, flags=f) / Raw(b"GET / HTTP/1.0\r\n\r\n" if f == "PA" else b"")
         for f in ("A", "PA", "F", "FA", "R", "SA", "")]
        + [E() / ip6() / TCP(sport=port(), dport=HTTP, flags="A")])
dropped("no_conn", "TCP and UDP to a LIP port no conn holds (IPv4 and IPv6)",
        [E() / ip4(dst=LIP4) / TCP(sport=port(), dport=4444, flags="A"), E() / ip4(dst=LIP4) / UDP(sport=port(), dport=5555),
         E() / ip6(dst=LIP6) / TCP(sport=port(), dport=4446, flags="A")])
dropped("not_for_us", "SYN to VIP:81, UDP to VIP:9, SYN to an unused VIP, to a foreign address, ping to a foreign address",
        [E() / ip4() / TCP(sport=port(), dport=81, flags="S"), E() / ip4() / UDP(sport=port(), dport=9),
         E() / ip4(dst=VIP4.rsplit(".", 1)[0] + ".200") / syn(), E() / ip4(dst="203.0.113.1") / syn(),
         E() / ip6(dst=VIP6.rsplit(":", 1)[0] + ":200") / syn(), E() / ip4(dst="203.0.113.1") / ICMP()])
dropped("unsupported", "ICMP timestamp and echo reply to the balancer",
        [E() / ip4(dst=LB4) / ICMP(type=13), E() / ip4(dst=LB4) / ICMP(type=0)])
dropped("icmp_error_malformed", "ICMPv6 destination unreachable quoting 48 zero bytes (no IPv6 header)",
        [E() / ip6(dst=LB6) / ICMPv6DestUnreach() / Raw(bytes(48))])
dropped("nd_malformed", "neighbour solicitation with hop limit 64, and with code 1",
        [E() / ip6(dst=LB6, hlim=64) / ICMPv6ND_NS(tgt=LB6) / ICMPv6NDOptSrcLLAddr(lladdr=CMAC),
         E() / ip6(dst=LB6, hlim=255) / ICMPv6ND_NS(tgt=LB6, code=1) / ICMPv6NDOptSrcLLAddr(lladdr=CMAC)])
BAD = 0x1234
dropped("bad_ip_checksum", "IPv4 header checksum wrong: a SYN, a UDP datagram, an ACK to a LIP port",
        [E() / ip4(chksum=BAD) / syn(), E() / ip4(chksum=BAD) / udp() / Raw(b"x"),
         E() / ip4(dst=LIP4, chksum=BAD) / TCP(sport=port(), dport=4444, flags="A")])
dropped("bad_l4_checksum", "a SYN with a wrong TCP checksum (IPv4, IPv6), a datagram with a wrong UDP checksum (IPv4, IPv6)",
        [E() / ip4() / syn(chksum=BAD), E() / ip6() / syn(chksum=BAD), E() / ip4() / udp(chksum=BAD) / Raw(b"x"),
         E() / ip6() / udp(chksum=BAD) / Raw(b"x")])
dropped("own_source", "land SYNs (source = the VIP, IPv4 and IPv6), a SYN from a LIP, a datagram from the balancer's address",
        [E() / ip4(src=VIP4) / syn(), E() / ip6(src=VIP6) / syn(), E() / ip4(src=LIP4) / syn(),
         E() / ip4(src=LB4) / udp() / Raw(b"x")])
dropped("broadcast_source", "a SYN from the client network's broadcast address",
        [E() / ip4(src=C4.rsplit(".", 1)[0] + ".255") / syn()])
dropped("reverse_path", "SYNs and a datagram from the real servers' addresses, arriving on the client port",
        [E() / ip4(src=RS4[0]) / syn(), E() / ip6(src=RS6[0]) / syn(), E() / ip4(src=RS4[1]) / udp() / Raw(b"x")])

print("2. accepted by design: forwarded (the client's routes to the VIPs blackholed meanwhile, so its kernel's"
      " resets and port-unreachables for the servers' answers do not mix into the counters)", flush=True)
BLACKHOLE = [["ip", "route", "add", "blackhole", VIP4 + "/32"], ["ip", "-6", "route", "add", "blackhole", VIP6 + "/128"]]
for cmd in BLACKHOLE:
    subprocess.run(cmd, check=True)
try:
    forwarded("SYN with 30 bytes of padding behind the IP packet", [bytes(E() / ip4() / syn()) + bytes(30)], conns=1)
    forwarded("empty UDP datagram", [E() / ip4() / udp(), E() / ip6() / udp()], conns=2)
    forwarded("SYN with MSS, SACK, window scale and timestamp options",
              [E() / ip4() / syn(options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("Timestamp", (1, 0))])],
              conns=1)
    forwarded("SYN with one 802.1Q tag", [E() / Dot1Q(vlan=7) / ip4() / syn()], conns=1)
    whole = IP(bytes(ip4(id=4242) / udp() / Raw(b"f" * 64)))
    forwarded("IPv4 UDP datagram in 3 fragments, which the kernel's af_packet fanout reassembles into 1",
              [b"".join([bytes(E(type=0x0800)), bytes(f)]) for f in fragment(whole, fragsize=32)], conns=1, packets=1)
    time.sleep(1)  # the servers' answers (and a SYN-ACK retransmission) arrive while the routes are still down
finally:
    for cmd in BLACKHOLE:
        subprocess.run([c if c != "add" else "del" for c in cmd], check=False)

print("3. ARP / ND claiming a real server's address from the client side", flush=True)
bcast = Ether(src=EVIL, dst="ff:ff:ff:ff:ff:ff")
absorbed("ARP request for the balancer 'from' each real server, gratuitous ARP for it, ARP reply for it",
         [bcast / ARP(op=1, hwsrc=EVIL, psrc=rs, pdst=LB4) for rs in RS4]
         + [bcast / ARP(op=1, hwsrc=EVIL, psrc=rs, pdst=rs) for rs in RS4]
         + [Ether(src=EVIL, dst=LBMAC) / ARP(op=2, hwsrc=EVIL, psrc=rs, hwdst=LBMAC, pdst=LB4) for rs in RS4])
absorbed("neighbour solicitation 'from' each real server, unsolicited override advertisement for it",
         [Ether(src=EVIL, dst=LBMAC) / IPv6(src=rs, dst=LB6, hlim=255) / ICMPv6ND_NS(tgt=LB6)
          / ICMPv6NDOptSrcLLAddr(lladdr=EVIL) for rs in RS6]
         + [Ether(src=EVIL, dst="33:33:00:00:00:01") / IPv6(src=C6, dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(tgt=rs, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=EVIL) for rs in RS6])

print("4. truncations and fuzz", flush=True)
# (A VLAN-tagged frame cut inside its tag or right after it never arrives: the kernel's untagging
# drops it. Its prefixes start at 20 bytes.)
templates = [(E() / ip4() / syn(), 14), (E() / ip6() / udp() / Raw(b"hello"), 14), (ARP_HDR + bytes(arp_bytes()), 14),
             (E() / Dot1Q(vlan=7) / ip4() / syn(), 20), (E() / ip4(dst=LB4) / ICMP() / Raw(b"ping"), 14)]
prefixes = [bytes(t)[:n] for t, first in templates for n in range(first, len(bytes(t)))]
before = tel.stats()
send(prefixes)
after = settle(before, lambda a: a["drops"] - before["drops"] >= len(prefixes))
moved = drops_moved(before, after)
truncation = {"eth_truncated", "ip_truncated", "bad_ip_length", "arp_malformed"}
report(set(moved) <= truncation and sum(moved.values()) == len(prefixes) and after["inbound"] == before["inbound"],
       f"every strict prefix of 5 valid frames: {len(prefixes)} frames, each dropped as a truncation: {moved}")

rng = random.Random(11)


def fit(frame, v6):  # the IP length field made to match the frame, so that the fuzz gets past it
    b = bytearray(bytes(frame))
    n = len(b) - 14 - (40 if v6 else 0)
    b[16 + 2 * v6:18 + 2 * v6] = n.to_bytes(2, "big")
    return bytes(b)


fuzzed = []
for k in range(400):
    # scapy's fuzz() randomizes every field not given: whole headers at random, and headers whose
    # version and length are right, so that the TCP / UDP / ICMP parse and the conn logic get fuzzed too.
    fuzzed.append(E() / fuzz(ip4() / TCP(dport=HTTP)))
    fuzzed.append(fit(E() / fuzz(ip4(version=4, ihl=5) / TCP(dport=HTTP)), False))
    fuzzed.append(fit(E() / fuzz(ip6(version=6, nh=17) / UDP(dport=ECHO)), True))
    fuzzed.append(fit(E() / fuzz(ip6(version=6, nh=6) / TCP(dport=HTTP)), True))
    fuzzed.append(fit(E() / fuzz(ip4(version=4, ihl=5, dst=rng.choice([VIP4, LB4, LIP4]))
                                 / rng.choice([UDP(dport=ECHO), ICMP(), TCP(dport=HTTP)])), False))
    et = rng.choice([0x0800, 0x86DD, 0x8100])
    fuzzed.append(bytes(E(type=et)) + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120))))
valid = [bytes(E() / ip4() / syn()), bytes(E() / ip6() / udp() / Raw(b"hello")), bytes(E() / Dot1Q(vlan=3) / ip4() / udp() / Raw(b"x"))]
for k in range(400):
    b = bytearray(rng.choice(valid))
    for _ in range(rng.randrange(1, 4)):
        b[rng.randrange(14, len(b))] ^= 1 << rng.randrange(8)  # the Ethernet header stays: to the balancer, from the client
    fuzzed.append(bytes(b))
before = tel.stats()
send(fuzzed)
after = settle(before, lambda a: a["rx_packets"] - before["rx_packets"] >= len(fuzzed))
rx = after["rx_packets"] - before["rx_packets"]
# Not all arrive: the kernel keeps fuzzed IPv4 fragments for reassembly and drops broken VLAN tags.
report(rx >= len(fuzzed) * 3 // 4,
       f"{len(fuzzed)} fuzzed frames: the balancer received {rx} (the kernel keeps fragments, drops broken tags), "
       f"forwarded {after['inbound'] - before['inbound']}, dropped {after['drops'] - before['drops']}, "
       "and keeps answering telemetry")
print(f"SENT {sent}", flush=True)
print(f"RESULT {passed} {failed}", flush=True)
EOF
e2e_script_verdict "$E2E_DIR/hostile.out" $?
check "the balancer is still running" kill -0 "$E2E_LB_PID"

# ---- 3, 5: still serving, then nothing left in use ----------------------------------------------------
curl_all "after the hostile frames"
e2e_log "waiting for the conns the hostile SYNs and datagrams opened to time out"
check "every conn timed out within 40 s (created = expired; conns, conn objects, ports in use: 0)" \
  e2e_wait_for 40 e2e_lb_idle
check "every sa_pool is whole again: no port used, as many free as at start" \
  e2e_sapool_whole "$sapool0" "$(tel /fnat/sapool)"
e2e_log "SUMMARY hostile frames sent $(sed -n 's/^SENT //p' "$E2E_DIR/hostile.out"), requests served $CURL_SERVED of $CURL_ASKED, drops by reason: $(jeval '" ".join("%s=%d" % (k[5:], v) for k, v in d.items() if k.startswith("drop_") and v) or "none"' "$(tel /fnat/stats)")"
e2e_lb_stop
e2e_finish
