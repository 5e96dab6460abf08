#!/usr/bin/python3
# Seeds for fuzz_proxy_protocol: v1 lines and v2 headers from the spec's grammar (haproxy
# doc/proxy-protocol.txt), each followed by a few bytes of the client's own data.
# Run from the repository root: /usr/bin/python3 tests/fuzz/make_proxy_protocol_seeds.py
import ipaddress, os, struct

def crc32c(data):
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff

SIG = bytes([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
def v2(cmd, fam, addrs, tlvs=b'', crc=False):
    body = addrs + tlvs + (b'\x03\x00\x04\x00\x00\x00\x00' if crc else b'')
    h = SIG + bytes([cmd, fam]) + struct.pack('>H', len(body)) + body
    return h[:-4] + struct.pack('>I', crc32c(h)) if crc else h
a4 = ipaddress.ip_address('192.168.0.1').packed + ipaddress.ip_address('192.168.0.11').packed + struct.pack('>HH', 56324, 443)
a6 = ipaddress.ip_address('2001:2::10').packed + ipaddress.ip_address('2001:2:0:1::64').packed + struct.pack('>HH', 5353, 53)
seeds = {
    'v1_tcp4': b'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n',
    'v1_tcp6': b'PROXY TCP6 2001:2::10 2001:2:0:1::64 40000 80\r\nGET /',
    'v1_unknown': b'PROXY UNKNOWN\r\nxyz',
    'v1_worst': b'PROXY UNKNOWN ' + b'ffff:' * 7 + b'ffff ' + b'ffff:' * 7 + b'ffff 65535 65535\r\n',
    'v2_tcp4': v2(0x21, 0x11, a4) + b'GET /',
    'v2_udp6_tlv_crc': v2(0x21, 0x22, a6, b'\x02\x00\x0bexample.com\x04\x00\x00', True) + b'\x12\x34',
    'v2_local': v2(0x20, 0x00, b''),
    'v2_unix': v2(0x21, 0x31, b'/a' + bytes(106) + b'/b' + bytes(106)),
}
d = 'tests/fuzz/corpus/proxy_protocol'
os.makedirs(d, exist_ok=True)
for name, b in seeds.items():
    with open(os.path.join(d, name), 'wb') as f:
        f.write(b)
