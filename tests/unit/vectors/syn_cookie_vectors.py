#!/usr/bin/python3
# Known answers for tests/unit/test_syn_cookie.cpp: the cookie SYN-ACK to a Linux-style SYN, with the
# cookie computed here from the formula of core/syn_cookie.hpp (SipHash-2-4 written out below, checked
# against the reference vector of the SipHash paper) and the frame built by scapy (checksums its own).
# Run: /usr/bin/python3 tests/unit/vectors/syn_cookie_vectors.py
from scapy.all import Ether, IP, IPv6, TCP, raw
import struct

M = (1 << 64) - 1
def rotl(x, b): return ((x << b) | (x >> (64 - b))) & M
def siphash24(k0, k1, data):
    v0, v1, v2, v3 = k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573
    def rnd():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & M; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 = (v2 + v3) & M; v3 = rotl(v3, 16); v3 ^= v2
        v0 = (v0 + v3) & M; v3 = rotl(v3, 21); v3 ^= v0
        v2 = (v2 + v1) & M; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        m = struct.unpack('<Q', data[i:i + 8])[0]
        v3 ^= m; rnd(); rnd(); v0 ^= m
    b = (n & 0xff) << 56
    for i, c in enumerate(data[full:]): b |= c << (8 * i)
    v3 ^= b; rnd(); rnd(); v0 ^= b
    v2 ^= 0xff
    for _ in range(4): rnd()
    return v0 ^ v1 ^ v2 ^ v3

# SipHash paper, appendix A: key 00..0f, message 00..0e -> a129ca6149be45e5
key = bytes(range(16))
assert siphash24(struct.unpack('<Q', key[:8])[0], struct.unpack('<Q', key[8:])[0], bytes(range(15))) == 0xa129ca6149be45e5

T = [0x56f25271, 0xca6b50e4, 0xcfc41a9a, 0xd53df080, 0xd2ef67a9, 0xa840a525, 0x8b7c227b, 0x78262ae2]
K0, K1 = 0x0123456789abcdef, 0xfedcba9876543210

def cookie(saddr, daddr, sport, dport, isn, counter, idx):
    d = saddr + daddr + struct.pack('>HH', dport, sport) + struct.pack('<II', isn, counter)
    return (siphash24(K0, K1, d) >> 32) ^ T[idx]

def arr(b):
    return ',\n'.join('      ' + ', '.join('0x%02x' % c for c in b[i:i + 20]) for i in range(0, len(b), 20))

import ipaddress
# IPv4: client 198.18.0.10:40000 -> VIP 198.18.1.100:80, ISN 0x01020304, MSS 1400 (index 4), SACK,
# TS (0x11223344, 0), wscale 7; now 6400 s -> counter 100; balancer TS clock 0x00abcdef.
c4 = cookie(ipaddress.ip_address('198.18.0.10').packed, ipaddress.ip_address('198.18.1.100').packed, 40000, 80,
            0x01020304, 100, 4)
tsval = (0x00abcdef & ~0x1f) | 7 | 0x10
if tsval > 0x00abcdef: tsval -= 32
sa = Ether(dst='02:aa:00:00:00:fe', src='02:00:00:00:00:01') / IP(src='198.18.1.100', dst='198.18.0.10', ttl=64, id=0, flags='DF') / \
    TCP(sport=80, dport=40000, seq=c4, ack=0x01020305, flags='SA', window=65535,
        options=[('MSS', 1460), ('SAckOK', b''), ('Timestamp', (tsval, 0x11223344)), ('NOP', None), ('WScale', 7)])
print('// cookie %#010x tsval %#010x' % (c4, tsval))
print(arr(raw(sa)))
# IPv6, no options in the SYN: MSS defaults to 1220 (index 0), no TS, so no SACK / wscale offered.
c6 = cookie(ipaddress.ip_address('2001:2::10').packed, ipaddress.ip_address('2001:2:0:1::64').packed, 51000, 443,
            0xfffffffe, 100, 0)
sa6 = Ether(dst='02:aa:00:00:00:fe', src='02:00:00:00:00:01') / IPv6(src='2001:2:0:1::64', dst='2001:2::10', hlim=64) / \
    TCP(sport=443, dport=51000, seq=c6, ack=0xffffffff, flags='SA', window=65535, options=[('MSS', 1440)])
print('// cookie %#010x' % c6)
print(arr(raw(sa6)))
