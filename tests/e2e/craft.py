# SPDX-License-Identifier: BSD-3-Clause
"""Frame builders shared by the end-to-end tests' scapy scripts (test_lb_hostile.sh, test_lb_pcap.sh).

Every frame goes from the client to the balancer; every SYN and datagram gets a client port no earlier
frame used (so no frame meets an earlier conn), and every SYN a sequence number of its own (so a test
can recognise it after the rewrite, which changes ports and addresses but not sequence numbers).
"""
from scapy.all import IP, TCP, UDP, Ether, IPv6


class Craft:
    def __init__(self, cmac, lbmac, c4, c6, vip4, vip6, http, echo, first_port=20000):
        self.cmac, self.lbmac = cmac, lbmac
        self.c4, self.c6, self.vip4, self.vip6 = c4, c6, vip4, vip6
        self.http, self.echo = http, echo
        self._ports = iter(range(first_port, 65536))

    def port(self):
        return next(self._ports)

    def E(self, **kw):
        return Ether(src=self.cmac, dst=self.lbmac, **kw)

    def ip4(self, **kw):
        return IP(**{"src": self.c4, "dst": self.vip4, **kw})

    def ip6(self, **kw):
        return IPv6(**{"src": self.c6, "dst": self.vip6, **kw})

    def syn(self, **kw):
        sport = self.port()
        return TCP(**{"sport": sport, "dport": self.http, "flags": "S", "seq": sport * 7919, **kw})

    def udp(self, **kw):
        return UDP(**{"sport": self.port(), "dport": self.echo, **kw})

    def raw_ip4(self, ver_ihl, payload=b"", proto=6):
        """An IPv4 frame whose first header byte is written by hand (scapy would fix version and IHL up)."""
        h = bytearray(bytes(IP(src=self.c4, dst=self.vip4, proto=proto, len=20 + len(payload))))
        h[0] = ver_ihl
        return bytes(self.E(type=0x0800)) + bytes(h) + payload
