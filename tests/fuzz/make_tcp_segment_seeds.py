#!/usr/bin/python3
# Seeds for fuzz_tcp_segment: 16 control bytes, then a TCP frame built by scapy (a Linux SYN, a
# handshake ACK with timestamps, a data segment with SACK blocks; IPv4 and IPv6).
# Run from the repository root: /usr/bin/python3 tests/fuzz/make_tcp_segment_seeds.py
import os
from scapy.all import Ether, IP, IPv6, TCP, raw

syn_opts = [('MSS', 1460), ('SAckOK', b''), ('Timestamp', (1, 0)), ('NOP', None), ('WScale', 7)]
ack_opts = [('NOP', None), ('NOP', None), ('Timestamp', (2, 3))]
sack_opts = [('NOP', None), ('NOP', None), ('SAck', (1000, 2000, 3000, 4000))]
frames = {}
for fam, L3 in (('v4', IP(src='198.18.0.10', dst='198.18.1.100')), ('v6', IPv6(src='2001:2::10', dst='2001:2:0:1::64'))):
    frames['syn_' + fam] = Ether() / L3 / TCP(sport=40000, dport=80, flags='S', seq=1, options=syn_opts)
    frames['ack_' + fam] = Ether() / L3 / TCP(sport=40000, dport=80, flags='A', seq=2, ack=5, options=ack_opts)
    frames['data_' + fam] = Ether() / L3 / TCP(sport=40000, dport=80, flags='PA', seq=2, ack=5, options=sack_opts) / b'GET / HTTP/1.1\r\n'
d = 'tests/fuzz/corpus/tcp_segment'
os.makedirs(d, exist_ok=True)
for i, (name, p) in enumerate(sorted(frames.items())):
    ctl = bytes([0x0f | (i % 4) << 4 | (0x40 if i % 2 else 0), 40, 7, 9]) + bytes(range(12))
    with open(os.path.join(d, name), 'wb') as f:
        f.write(ctl + raw(p))
