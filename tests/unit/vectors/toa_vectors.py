#!/usr/bin/python3
# Known answers for tests/unit/test_toa.cpp: the client's handshake ACK after FullNAT, with and without
# the TOA option (kind 254; IPv4 form: length 8, port, address; IPv6 form: length 20, port, address),
# built by scapy with its own checksums. The TOA goes first, as core/toa.hpp inserts it.
# Run: /usr/bin/python3 tests/unit/vectors/toa_vectors.py
from scapy.all import Ether, IP, IPv6, TCP, raw
import ipaddress, struct

def arr(b):
    return ',\n'.join('      ' + ', '.join('0x%02x' % c for c in b[i:i + 20]) for i in range(0, len(b), 20))

ts = ('Timestamp', (0x11223344, 0x55667788))
# IPv4: LIP 198.18.2.100:20001 -> RS 198.18.3.10:80, client 198.18.0.10:40000.
toa4 = struct.pack('>H', 40000) + ipaddress.ip_address('198.18.0.10').packed
for opts in ([('NOP', None), ('NOP', None), ts], [(254, toa4), ('NOP', None), ('NOP', None), ts]):
    p = Ether(dst='02:bb:00:00:00:03', src='02:00:00:00:00:01') / IP(src='198.18.2.100', dst='198.18.3.10', ttl=63, id=0x1c46, flags='DF') / \
        TCP(sport=20001, dport=80, seq=0x01020305, ack=0xa0b0c0d1, flags='A', window=502, options=opts) / b'GET /'
    print('// v4 options', opts[0][0])
    print(arr(raw(p)))
# IPv6: LIP 2001:2:0:2::100:20001 -> RS 2001:2:0:3::10:80, client [2001:2::10]:40000.
toa6 = struct.pack('>H', 40000) + ipaddress.ip_address('2001:2::10').packed
for opts in ([('NOP', None), ('NOP', None), ts], [(254, toa6), ('NOP', None), ('NOP', None), ts]):
    p = Ether(dst='02:bb:00:00:00:03', src='02:00:00:00:00:01') / IPv6(src='2001:2:0:2::100', dst='2001:2:0:3::10', hlim=63) / \
        TCP(sport=20001, dport=80, seq=0x01020305, ack=0xa0b0c0d1, flags='A', window=502, options=opts)
    print('// v6 options', opts[0][0])
    print(arr(raw(p)))
