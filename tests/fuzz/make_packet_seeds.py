#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Writes the seed corpus of fuzz_packet (tests/fuzz/corpus/packet/). Each seed is the fuzzer's input
# format: 1 control byte, 4 bytes of new ports, then an Ethernet frame (see fuzz_packet.cpp). The
# frames are built here with full checksums, independently of fnat's code. Files named regress_* in
# that directory are inputs the fuzzer once failed on, kept as regression seeds (not written here).
# Usage: tests/fuzz/make_packet_seeds.py [output dir]
import ipaddress
import os
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def a4(a):
    return ipaddress.IPv4Address(a).packed


def a6(a):
    return ipaddress.IPv6Address(a).packed


def mac(m):
    return bytes.fromhex(m.replace(":", ""))


CLIENT_MAC, OUR_MAC = mac("02:00:00:00:00:02"), mac("02:00:00:00:00:01")


def eth(ethertype, dst=OUR_MAC, src=CLIENT_MAC, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return dst + src + tag + struct.pack("!H", ethertype)


def ipv4(proto, src, dst, l4, ttl=64, ihl=5):
    opts = b"\x01" * (4 * (ihl - 5))
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(l4), 0x1C46, 0x4000, ttl, proto, 0, a4(src), a4(dst)) + opts
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + l4


def ipv6(proto, src, dst, l4, hlim=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, hlim, a6(src), a6(dst)) + l4


def with_l4_csum(l4, off, pseudo, udp=False, none=False):
    c = 0 if none else csum(pseudo + l4)
    if udp and c == 0 and not none:
        c = 0xFFFF
    return l4[:off] + struct.pack("!H", c) + l4[off + 2:]


def ph4(src, dst, proto, n):
    return a4(src) + a4(dst) + struct.pack("!BBH", 0, proto, n)


def ph6(src, dst, proto, n):
    return a6(src) + a6(dst) + struct.pack("!IxxxB", n, proto)


def tcp(src, dst, sp, dp, v6=False, flags=0x02, payload=b""):
    seg = struct.pack("!HHIIBBHHH", sp, dp, 0x01020304, 0, 0x50, flags, 0xFAF0, 0, 0) + payload
    ph = (ph6 if v6 else ph4)(src, dst, 6, len(seg))
    return with_l4_csum(seg, 16, ph)


def udp(src, dst, sp, dp, payload, v6=False, none=False):
    d = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
    ph = (ph6 if v6 else ph4)(src, dst, 17, len(d))
    return with_l4_csum(d, 6, ph, udp=True, none=none)


def icmp4(typ, ident, payload=b"ping"):
    m = struct.pack("!BBHHH", typ, 0, 0, ident, 1) + payload
    return with_l4_csum(m, 2, b"")


def icmp6(src, dst, body):
    return with_l4_csum(body, 2, ph6(src, dst, 58, len(body)))


def nd(typ, flags, target, opt_type=None, opt_mac=None):
    m = struct.pack("!BBHB3x16s", typ, 0, 0, flags, a6(target))
    if opt_type:
        m += struct.pack("!BB6s", opt_type, 1, opt_mac)
    return m


def arp_request(spa, tpa):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, CLIENT_MAC, a4(spa), b"\0" * 6, a4(tpa))
    return eth(0x0806, dst=b"\xff" * 6) + body + b"\0" * 18


C4, V4 = "198.18.0.1", "198.18.1.1"
C6, V6 = "2001:2::1", "2001:2:0:1::1"
SNM = "ff02::1:ff00:1"
PORTS = struct.pack("!HH", 1025, 8080)

tcp4 = eth(0x0800) + ipv4(6, C4, V4, tcp(C4, V4, 40000, 80))
udp6 = eth(0x86DD) + ipv6(17, C6, V6, udp(C6, V6, 5353, 53, b"hello", v6=True))
seeds = {
    "tcp4_syn": (0x00, tcp4),
    "tcp6_syn": (0x0E, eth(0x86DD) + ipv6(6, C6, V6, tcp(C6, V6, 40000, 443, v6=True))),
    "udp4": (0x1D, eth(0x0800) + ipv4(17, C4, V4, udp(C4, V4, 5353, 53, b"query"))),
    "udp6": (0x20, udp6),
    "udp4_no_checksum": (0x12, eth(0x0800) + ipv4(17, C4, V4, udp(C4, V4, 1, 2, b"x", none=True))),
    "icmp4_echo": (0x40, eth(0x0800) + ipv4(1, C4, V4, icmp4(8, 0x4242))),
    "icmp6_echo": (0x63, eth(0x86DD) + ipv6(58, C6, V6, icmp6(C6, V6, struct.pack("!BBHHH", 128, 0, 0, 7, 1) + b"ping6"))),
    "arp_request": (0x00, arp_request(C4, V4)),
    "nd_ns": (0x02, eth(0x86DD, dst=mac("33:33:ff:00:00:01")) + ipv6(58, C6, SNM, icmp6(C6, SNM, nd(135, 0, V6, 1, CLIENT_MAC)), hlim=255)),
    "nd_na": (0x02, eth(0x86DD) + ipv6(58, C6, V6, icmp6(C6, V6, nd(136, 0x60, C6, 2, CLIENT_MAC)), hlim=255)),
    "nd_dad": (0x00, eth(0x86DD, dst=mac("33:33:ff:00:00:01")) + ipv6(58, "::", SNM, icmp6("::", SNM, nd(135, 0, V6)), hlim=255)),
    "tcp4_vlan_split": (0x80, eth(0x0800, vlan=0x0064) + ipv4(6, C4, V4, tcp(C4, V4, 40000, 80, payload=b"GET / HTTP/1.0\r\n\r\n"))),
    "tcp4_truncated": (0x00, tcp4[:40]),
    "udp6_truncated": (0x02, udp6[:58]),
    "ipv4_options": (0x00, eth(0x0800) + ipv4(6, C4, V4, tcp(C4, V4, 40000, 80), ihl=6)),
    "tcp4_ttl1": (0x00, eth(0x0800) + ipv4(6, C4, V4, tcp(C4, V4, 40000, 80), ttl=1)),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")
os.makedirs(out, exist_ok=True)
for name, (ctl, frame) in seeds.items():
    ports = PORTS if name != "tcp4_vlan_split" else bytes([50]) + PORTS[1:]
    with open(os.path.join(out, name), "wb") as fh:
        fh.write(bytes([ctl]) + ports + frame)
print("wrote %d seeds to %s" % (len(seeds), out))
