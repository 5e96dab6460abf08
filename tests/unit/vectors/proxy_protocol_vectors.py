#!/usr/bin/python3
# Known answers for tests/unit/test_proxy_protocol.cpp: Proxy Protocol v2 headers laid out field by
# field from haproxy's doc/proxy-protocol.txt (section 2.2), with the CRC32C of RFC 4960 appendix B
# computed here bit by bit (checked against the standard check value of "123456789").
# Run: /usr/bin/python3 tests/unit/vectors/proxy_protocol_vectors.py
import ipaddress, struct

def crc32c(data):
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff
assert crc32c(b'123456789') == 0xe3069283

SIG = bytes([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

def v2(fam, src, dst, sport, dport, tlvs=b'', crc=False):
    addrs = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + struct.pack('>HH', sport, dport)
    body = addrs + tlvs + (b'\x03\x00\x04\x00\x00\x00\x00' if crc else b'')
    h = SIG + bytes([0x21, fam]) + struct.pack('>H', len(body)) + body
    if crc:
        h = h[:-4] + struct.pack('>I', crc32c(h))
    return h

def arr(b):
    return ',\n'.join('      ' + ', '.join('0x%02x' % c for c in b[i:i + 20]) for i in range(0, len(b), 20))

print('// TCP4 192.168.0.1:56324 -> 192.168.0.11:443 (the spec\'s v1 example, in v2)')
print(arr(v2(0x11, '192.168.0.1', '192.168.0.11', 56324, 443)))
authority = b'\x02' + struct.pack('>H', 11) + b'example.com'
print('// UDP6 [2001:2::10]:5353 -> [2001:2:0:1::64]:53, AUTHORITY "example.com", CRC32C')
print(arr(v2(0x22, '2001:2::10', '2001:2:0:1::64', 5353, 53, authority, True)))
