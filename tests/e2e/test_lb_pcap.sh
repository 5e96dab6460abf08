#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end: malformed frames from a pcap file, through DPDK's net_pcap PMD, into the reference
# balancer (1 worker). No network namespace and no kernel in the path: unlike test_lb_hostile.sh,
# whose af_packet ports let the kernel reassemble IPv4 fragments and drop cut VLAN tags before the
# balancer sees them, every byte written here reaches the balancer's parse exactly as crafted.
#
# The client-side port reads in.pcap (crafted with scapy) and writes client.pcap; the server-side
# port reads an empty pcap and writes server.pcap. Real servers and the client have static
# neighbours, so nothing waits for ARP / ND.
#
# What it proves:
#  1. Every malformed frame is a counted drop under the reason it was crafted for: the summary's
#     drop counter of each reason equals the number of frames crafted for it, exactly, and the
#     total of all drops equals the total of malformed frames (nothing is dropped twice or under
#     another reason). Cases: frames shorter than an Ethernet header or cut inside a VLAN tag,
#     unknown EtherTypes, truncated IPv4 / IPv6 headers, IP version not matching the EtherType, IHL
#     below 5, IP lengths beyond the frame or below the header, IPv4 options, fragments malformed
#     as such, lone IPv4 and IPv6 first / middle / last fragments (held for reassembly, then given
#     up after frag_timeout_ms: frag_dropped), IPv6
#     extension headers, IPv4-mapped IPv6, bad sources, unknown L4 protocols, truncated TCP / UDP /
#     ICMP headers, TCP data offsets below 5 or beyond the segment, bad UDP lengths, IPv6 UDP
#     without checksum, TTL / hop limit expired, first TCP packets that are not a SYN, unknown LIP
#     ports and VIP ports, and malformed ARP. Every strict prefix of 4 valid frames is dropped too,
#     each as a truncation.
#  2. The valid frames mixed in (IPv4 / IPv6 SYNs with options, UDP datagrams, one behind an 802.1Q
#     tag, one with Ethernet padding, a 4000-byte UDP datagram that arrives as a chain of mbuf
#     segments (the links' mtu is 9000 here), and a datagram sent in 4 fragments, which the balancer
#     reassembles) are forwarded: server.pcap holds each one exactly once, rewritten FullNAT (source
#     LIP, destination the real server and its port, TTL / hop limit one less, payload unchanged)
#     with a correct IPv4 header checksum and a correct TCP / UDP checksum.
#  3. No crash, no sanitizer report, exit status 0, leak check passes.
#
# Usage: bash tests/e2e/test_lb_pcap.sh BUILD_DIR    (root; exit 77 when it cannot run here)
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2317
. "$(dirname "$0")/lib.sh"
e2e_init lb_pcap pcap "${1:-}"
"$E2E_PY" -c 'import scapy.all' 2>/dev/null || e2e_skip "python3-scapy is missing (scripts/bootstrap.sh installs it)"

IN=$E2E_DIR/in.pcap
EXPECT=$E2E_DIR/expect.json
CLIENT_MAC=02:c0:00:00:00:02
RS_MAC=02:5e:00:00:00:0b
export CLIENT_MAC RS_MAC

e2e_log "crafting $IN"
"$E2E_PY" - "$IN" "$E2E_DIR/empty.pcap" "$EXPECT" <<'EOF' || e2e_die "could not craft the pcap"
import json, os, struct, sys

from scapy.all import (ARP, IP, TCP, UDP, Dot1Q, Ether, IPOption, IPOption_Router_Alert,
                       IPOption_RR, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       Raw, fragment, wrpcap)

from craft import Craft  # tests/e2e/craft.py (lib.sh puts tests/e2e on PYTHONPATH)

CMAC, LBMAC = os.environ["CLIENT_MAC"], "02:70:63:61:70:00"
C4, C6 = "198.18.0.2", "2001:2:0:1::2"
VIP4, VIP6, LIP4, LIP6 = "198.18.1.100", "2001:2:0:3::100", "198.18.2.100", "2001:2:0:2::100"
HTTP, ECHO = 80, 5353
frames, expect, valid, extra_valid = [], {}, [], []
craft = Craft(CMAC, LBMAC, C4, C6, VIP4, VIP6, HTTP, ECHO)
E, ip4, ip6, syn, udp, raw_ip4 = craft.E, craft.ip4, craft.ip6, craft.syn, craft.udp, craft.raw_ip4


def drop(reason, *fs):
    expect[reason] = expect.get(reason, 0) + len(fs)
    frames.extend(bytes(f) for f in fs)


def forward(f):
    b = bytes(f)
    valid.append(len(frames))
    frames.append(b)


ARP_HDR = bytes(Ether(src=CMAC, dst="ff:ff:ff:ff:ff:ff", type=0x0806))
arp = bytes(ARP(op=1, hwsrc=CMAC, psrc=C4, pdst="198.18.0.1"))

forward(E() / ip4() / syn(options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("Timestamp", (1, 0))]))
drop("eth_truncated", b"\x02", bytes(E())[:6], bytes(E())[:13], bytes(E() / Dot1Q(vlan=7))[:16],
     bytes(E() / Dot1Q(vlan=7))[:17])
drop("unsupported_ethertype", E(type=0x88CC) / Raw(bytes(46)), E(type=0x0040) / Raw(bytes(64)),
     E(type=0x8137) / Raw(bytes(46)), E() / Dot1Q(vlan=5) / Dot1Q(vlan=6) / ip4() / syn())
drop("arp_malformed", ARP_HDR + bytes(ARP(op=3, hwsrc=CMAC, psrc=C4, pdst="198.18.0.1")),
     ARP_HDR + bytes(ARP(hwtype=6, hwsrc=CMAC, psrc=C4, pdst="198.18.0.1")), ARP_HDR + arp[:20])
drop("ip_truncated", bytes(E(type=0x0800)), bytes(E(type=0x0800)) + b"\x45" + bytes(18),
     bytes(E(type=0x86DD)) + b"\x60" + bytes(38))
drop("bad_ip_version", bytes(E(type=0x0800)) + bytes(ip6() / syn()),
     bytes(E(type=0x86DD)) + bytes(ip4() / syn() / Raw(bytes(20))), raw_ip4(0x75, bytes(syn())))
drop("bad_ihl", raw_ip4(0x44, bytes(syn())), raw_ip4(0x40, bytes(syn())), raw_ip4(0x41, bytes(syn())))
drop("bad_ip_length", E() / ip4(len=1000) / syn(), E() / ip4(len=19) / syn(), E() / ip6(plen=1000) / syn())
forward(E() / ip6() / syn(options=[("MSS", 1440), ("SAckOK", b"")]))
drop("ip_options", E() / ip4(options=[IPOption_RR()]) / syn(), E() / ip4(options=[IPOption_Router_Alert()]) / udp(),
     E() / ip4(options=[IPOption(b"\x01" * 40)]) / syn())
whole = IP(bytes(ip4(id=4242) / udp() / Raw(b"f" * 200)))
parts = fragment(whole, fragsize=64)
assert len(parts) == 4
# A whole datagram's fragments: reassembled by the balancer, forwarded as one datagram.
frames.extend(bytes(E() / p) for p in parts)
extra_valid.append(bytes(E() / whole))
# Fragments malformed as such (MF with a length not a multiple of 8, an empty one): fragment.
drop("fragment", E() / ip4(flags="MF", frag=0) / syn(), E() / ip6() / IPv6ExtHdrFragment(m=1, id=9) / Raw(b"x" * 13),
     E() / ip4(flags="MF", frag=16, proto=17))
# Lone first / middle / last fragments: held for reassembly, given up after frag_timeout_ms (10 here).
drop("frag_dropped", E() / ip4(flags="MF") / udp(), E() / ip4(flags="MF", frag=8) / Raw(bytes(16)),
     E() / ip4(frag=100, proto=6) / Raw(bytes(20)),
     E() / ip6() / IPv6ExtHdrFragment(m=1, id=7) / udp() / Raw(b"x" * 16),
     E() / ip6() / IPv6ExtHdrFragment(offset=10, id=8) / Raw(b"x" * 16))
drop("ipv6_ext_header", E() / ip6() / IPv6ExtHdrHopByHop() / syn(), E() / ip6() / IPv6ExtHdrRouting() / syn(),
     E() / ip6() / IPv6ExtHdrDestOpt() / udp())
drop("ipv4_mapped", E() / ip6(src="::ffff:" + C4) / syn(), E() / ip6(dst="::ffff:" + VIP4) / udp())
drop("bad_source", Ether(src="01:00:5e:00:00:01", dst=LBMAC) / ip4() / syn(),
     *[E() / ip4(src=s) / syn() for s in ("127.0.0.1", "224.0.0.5", "0.1.2.3", "240.0.0.1", "255.255.255.255")],
     *[E() / ip6(src=s) / syn() for s in ("ff02::1", "::1", "::")])
drop("unsupported_l4", E() / ip4(proto=47) / Raw(bytes(20)), E() / ip4(proto=132) / Raw(bytes(20)),
     E() / ip6(nh=47) / Raw(bytes(20)), E() / ip6(nh=59))
drop("l4_truncated", E() / ip4(proto=6) / Raw(bytes(10)), E() / ip4(proto=17) / Raw(bytes(4)),
     E() / ip4(proto=1) / Raw(bytes(4)), E() / ip6(nh=6) / Raw(bytes(19)), E() / ip6(nh=17) / Raw(bytes(7)))
drop("bad_tcp_offset", E() / ip4() / syn(dataofs=4), E() / ip4() / syn(dataofs=0), E() / ip4() / syn(dataofs=15),
     E() / ip4() / syn(dataofs=6), E() / ip6() / syn(dataofs=3))
drop("bad_udp_length", E() / ip4() / udp(len=0) / Raw(b"hello"), E() / ip4() / udp(len=7),
     E() / ip4() / udp(len=100) / Raw(b"hi"), E() / ip6() / udp(len=0) / Raw(b"hello"))
drop("udp_zero_checksum_v6", E() / ip6() / udp(chksum=0) / Raw(b"x"))
drop("ttl_expired", E() / ip4(ttl=1) / syn(), E() / ip4(ttl=0) / udp(), E() / ip6(hlim=1) / syn())
drop("non_syn_first", *[E() / ip4() / TCP(sport=craft.port(), dport=HTTP, flags=f) for f in ("A", "PA", "F", "R", "SA", "")])
drop("no_conn", E() / ip4(dst=LIP4) / TCP(sport=80, dport=4444, flags="SA"), E() / ip6(dst=LIP6) / UDP(sport=53, dport=5555))
drop("not_for_us", E() / ip4() / TCP(sport=craft.port(), dport=81, flags="S"), E() / ip4(dst="203.0.113.1") / syn())
forward(E() / ip4() / udp() / Raw(b"datagram"))
forward(E() / ip6() / udp() / Raw(b"datagram six"))
forward(E() / Dot1Q(vlan=9) / ip4() / syn())
forward(bytes(E() / ip4() / syn()) + bytes(18))  # Ethernet padding behind the IP packet
# Beyond one mbuf's 2048 bytes of data: net_pcap hands it over as a chain of segments.
forward(E() / ip4() / udp() / Raw(bytes(range(256)) * 15 + b"tail"))
prefixes = [bytes(t)[:n] for t in (E() / ip4() / syn(), E() / ip6() / udp() / Raw(b"hi"), ARP_HDR + arp)
            for n in range(14, len(bytes(t)))]
frames.extend(prefixes)
forward(E() / ip6() / udp() / Raw(b"last"))

wrpcap(sys.argv[1], [Raw(f) for f in frames])
# An empty capture (the server port's rx): the global header alone, Ethernet link type.
open(sys.argv[2], "wb").write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
json.dump({"frames": len(frames), "drops": expect, "prefixes": len(prefixes),
           "valid": [frames[i].hex() for i in valid] + [f.hex() for f in extra_valid]}, open(sys.argv[3], "w"))
print(f"{len(frames)} frames: {sum(expect.values())} malformed under {len(expect)} reasons, "
      f"{len(prefixes)} truncations, {len(valid)} valid")
EOF
[ -s "$E2E_DIR/empty.pcap" ] || e2e_die "no empty pcap"

cat >"$E2E_DIR/lb.ini" <<EOF
[global]
workers = 1
idle = backoff
conns_per_lcore = 4096
local_ports = 10000-19999
telemetry = on
frag_timeout_ms = 10

[port net_pcap0]
role = client
mtu = 9000
address = 198.18.0.1/24
address = 2001:2:0:1::1/64
address = 198.18.1.1/24
address = 2001:2:0:3::1/64
neighbour = 198.18.0.2 $CLIENT_MAC
neighbour = 2001:2:0:1::2 $CLIENT_MAC

[port net_pcap1]
role = server
mtu = 9000
address = 198.18.2.1/24
address = 2001:2:0:2::1/64
neighbour = 198.18.2.11 $RS_MAC
neighbour = 2001:2:0:2::11 $RS_MAC

[service web]
vip = 198.18.1.100
vport = 80
lip = 198.18.2.100
rs = 198.18.2.11:8080

[service web6]
vip = 2001:2:0:3::100
vport = 80
lip = 2001:2:0:2::100
rs = [2001:2:0:2::11]:8080

[service echo]
vip = 198.18.1.100
vport = 5353
proto = udp
lip = 198.18.2.100
rs = 198.18.2.11:7

[service echo6]
vip = 2001:2:0:3::100
vport = 5353
proto = udp
lip = 2001:2:0:2::100
rs = [2001:2:0:2::11]:7
EOF

frames=$(jeval 'd["frames"]' "$(cat "$EXPECT")")
"$E2E_LB" --no-huge --no-shconf --no-pci -m 512 --file-prefix "$E2E_EAL_PREFIX" --lcores "(0-1)@($E2E_CPUS)" \
  --vdev "net_pcap0,rx_pcap=$IN,tx_pcap=$E2E_DIR/client.pcap" \
  --vdev "net_pcap1,rx_pcap=$E2E_DIR/empty.pcap,tx_pcap=$E2E_DIR/server.pcap" \
  -- --config "$E2E_DIR/lb.ini" >"$E2E_DIR/lb.log" 2>&1 </dev/null &
E2E_LB_PID=$!
e2e_wait_for 90 lb_ready || e2e_die "the balancer did not get ready within 90 s"
e2e_log "balancer ready (pid $E2E_LB_PID); waiting for it to read all $frames frames"
rx_all() { [ "$(jeval 'd["rx_packets"]' "$(tel /fnat/stats)")" -ge "$frames" ]; }
check "the balancer read every frame of the pcap within 30 s" e2e_wait_for 30 rx_all
sleep 0.5  # the tx buffers flush on the next idle poll
e2e_lb_stop

e2e_log "drops and forwarded frames against what was crafted"
"$E2E_PY" - "$E2E_DIR/summary.json" "$EXPECT" "$E2E_DIR/server.pcap" >"$E2E_DIR/verdict.out" 2>&1 <<'EOF'
import json, os, sys

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, rdpcap

RS_MAC = os.environ["RS_MAC"]

summary, expect = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
w = summary["workers"][0]
drops = {k: v for k, v in w["drops"].items() if v}
ok = failed = 0


def report(good, text):
    global ok, failed
    ok += good
    failed += not good
    print(("  ok    " if good else "  FAIL  ") + text)


truncation = {"eth_truncated", "ip_truncated", "bad_ip_length", "arp_malformed", "l4_truncated"}
rest = dict(drops)
for reason, n in expect["drops"].items():
    got = rest.get(reason, 0)
    # The prefixes of the valid frames land under the truncation reasons on top of what was crafted there.
    good = got == n if reason not in truncation else got >= n
    report(good, f"drop_{reason}: {got} (crafted {n})")
over = sum(rest.get(r, 0) - expect["drops"].get(r, 0) for r in truncation)
report(over == expect["prefixes"], f"every strict prefix of the valid frames dropped as a truncation: {over} of {expect['prefixes']}")
others = {k: v for k, v in rest.items() if k not in expect["drops"] and k not in truncation}
report(not others, f"no drop under any other reason {others if others else ''}")
report(w["rx"] == expect["frames"], f"rx {w['rx']} == frames in the pcap {expect['frames']}")

sent = rdpcap(sys.argv[3])
valid = [Ether(bytes.fromhex(h)) for h in expect["valid"]]
report(len(sent) == len(valid) and w["inbound"] == len(valid),
       f"forwarded to the real server: {len(sent)} frames, inbound {w['inbound']} (valid frames {len(valid)})")


def l3(f):
    return f[IP] if IP in f else f[IPv6]


def l4_data(f):  # the TCP / UDP payload as the IP length has it (Ethernet padding is not data)
    a = l3(f)
    n = a.len - a.ihl * 4 if IP in f else a.plen
    seg = bytes(a.payload)[:n]
    return seg[f[TCP].dataofs * 4:] if TCP in f else seg[8:]


def key(f):  # what identifies a frame across the rewrite (which changes ports): TCP seq, UDP payload
    return ("tcp", f[TCP].seq) if TCP in f else ("udp", l4_data(f))


def checksums_ok(f):
    x = f.copy()
    if IP in x:
        del x[IP].chksum
    l4 = x[TCP] if TCP in x else x[UDP]
    del l4.chksum
    y = Ether(bytes(x))
    return (IP not in f or y[IP].chksum == f[IP].chksum) and \
        (y[TCP].chksum == f[TCP].chksum if TCP in f else y[UDP].chksum == f[UDP].chksum)


by_key = {key(f): f for f in valid}
seen = set()
for f in sent:
    orig = by_key.get(key(f))
    if orig is None:
        report(False, f"an unexpected frame went out: {f.summary()}")
        continue
    seen.add(key(f))
    a, b = l3(orig), l3(f)
    v4 = IP in f
    l4o, l4n = (orig[TCP], f[TCP]) if TCP in orig else (orig[UDP], f[UDP])
    want_rs, want_lip = ("198.18.2.11", "198.18.2.100") if v4 else ("2001:2:0:2::11", "2001:2:0:2::100")
    want_port = 8080 if TCP in f else 7
    ttl_o, ttl_n = (a.ttl, b.ttl) if v4 else (a.hlim, b.hlim)
    good = (b.src == want_lip and b.dst == want_rs and l4n.dport == want_port and 10000 <= l4n.sport <= 19999
            and ttl_n == ttl_o - 1 and l4_data(f) == l4_data(orig) and checksums_ok(f)
            and f.dst == RS_MAC and Dot1Q not in f)
    report(good, f"{orig.summary()} ({len(bytes(orig))} bytes) -> {b.src}:{l4n.sport} > {b.dst}:{l4n.dport}, "
                 f"TTL {ttl_o}->{ttl_n}, checksums {'right' if checksums_ok(f) else 'WRONG'}")
report(len(seen) == len(valid), f"every valid frame went out once: {len(seen)} of {len(valid)}")
print(f"RESULT {ok} {failed}")
EOF
e2e_script_verdict "$E2E_DIR/verdict.out" $?
e2e_log "drops by reason: $(jeval '", ".join("%s=%d" % (k, v) for k, v in d["workers"][0]["drops"].items() if v)' "$(cat "$E2E_DIR/summary.json")")"
e2e_finish
