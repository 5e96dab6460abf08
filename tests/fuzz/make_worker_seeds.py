#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes the seed corpus of fuzz_worker (tests/fuzz/corpus/worker/); layout in fuzz_worker.cpp.

Usage: python3 tests/fuzz/make_worker_seeds.py   (rewrites the files; commit them)
"""
import os

SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "worker")


def client(src, sport, udp=False, flags=SYN, corrupt=0, isn=1, port81=False):
    return bytes([0, src, sport, (1 if udp else 0) | (6 if port81 else 0), flags, corrupt, isn])


def server(pick, flags):
    return bytes([1, pick, flags])


def tick(tenths):
    return bytes([2, tenths - 1])


seeds = {
    # Table rig: SYNs from every valid source and port until the half-open bound and the table are
    # reached (refusals answered by resets), the servers answer some, a handshake completes, time passes.
    "table_fill": bytes([0]) + b"".join(client(s, p, isn=s * 8 + p) for s in range(5) for p in range(8))
    + b"".join(server(k, SYN | ACK) for k in range(6)) + b"".join(client(s, p, flags=ACK) for s in range(2) for p in range(3))
    + tick(30) + tick(60) + b"".join(client(s, p, isn=99) for s in range(5) for p in range(2)),
    # Table rig: one-way UDP up to its bound, replies turn some to normal, expiry.
    "udp_oneway": bytes([0]) + b"".join(client(s, p, udp=True) for s in range(5) for p in range(4))
    + b"".join(server(k, 0) for k in range(5)) + b"".join(client(s, p + 4, udp=True) for s in range(3) for p in range(2))
    + tick(15) + tick(25),
    # Ports rig: 4 ports per LIP: SYNs beyond them are port_exhausted and reset; retransmissions.
    "ports": bytes([1]) + b"".join(client(s, p, isn=7) for s in range(3) for p in range(6))
    + b"".join(client(s, p, isn=7) for s in range(3) for p in range(6)) + tick(40) + client(0, 0, isn=8),
    # Hostile: own, broadcast, reverse-path and loopback sources; bad checksums; TTL 1; port 81;
    # SYN+FIN, RST, ACK first; then a valid conn and its packets with a wrong L4 checksum.
    "hostile": bytes([0]) + b"".join(client(s, 0) for s in range(5, 10)) + client(0, 1, corrupt=1)
    + client(0, 1, corrupt=2) + client(0, 1, udp=True, corrupt=2) + client(0, 1, corrupt=3) + client(0, 2, port81=True)
    + client(1, 1, flags=SYN | FIN) + client(1, 2, flags=RST) + client(1, 3, flags=ACK) + client(2, 0)
    + client(2, 0, flags=ACK, corrupt=2) + server(0, SYN | ACK) + server(0, FIN | ACK) + client(2, 0, flags=RST) + tick(20),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {OUT}")
