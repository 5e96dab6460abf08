#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Writes the seed corpora of fuzz_sa_pool (tests/fuzz/corpus/sa_pool/) and fuzz_conn_table
# (tests/fuzz/corpus/conn_table/): a header, then operation sequences in each fuzzer's input format
# (see the header comments of fuzz_sa_pool.cpp and fuzz_conn_table.cpp; every operation reads a
# fixed number of bytes, so the sequences below stay aligned whatever the state). Each seed starts
# the fuzzer in a different corner: policies, families, lcore counts, narrow ranges that exhaust,
# shuffled orders, the rotation; tables that fill, pools that run dry, colliding hashes, timers
# across wheel revolutions with budgets. Files named regress_* in those directories are inputs the
# fuzzers once failed on, kept as regression seeds (not written here).
# Usage: tests/fuzz/make_model_seeds.py [corpus dir, default: the one beside this script]
import os
import struct
import sys


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


# ---- fuzz_sa_pool -----------------------------------------------------------------------------

def sa_header(rss=False, v6=False, shuffle=False, bind=False, lips=1, mixed=False, wide=False, lcores=1,
              which=0, bits=0, low=1025, width=16, size=16, param=0, seed=0):
    mode = (rss << 0) | (v6 << 1) | (shuffle << 2) | (bind << 3) | ((lips & 3) << 4) | (mixed << 6) | (wide << 7)
    # low port = 1 + low_seed % (65536 - width): pick the seed that gives `low`
    w = (1 + 16 * width if not rss else 1 + 4 * width) if wide else 1 + width
    low_seed = (low - 1) % (65536 - w)
    return bytes([mode, (lcores - 1) % 16, which, bits]) + u16(low_seed) + bytes([width, size, param, seed])


class sa:
    fetch = staticmethod(lambda k, d: bytes([0, k, d]))
    burst = staticmethod(lambda k, d, n: bytes([1, k, d, (n - 1) & 0xFF]))
    release_used = staticmethod(lambda k, i: bytes([2, k]) + u16(i))
    release_odd = staticmethod(lambda k, d, how, x: bytes([3, k, d, how]) + u16(x))
    double_release = staticmethod(lambda k, i: bytes([4, k]) + u16(i))
    other_family = staticmethod(lambda k, d, fetch, how, x: bytes([5, k, d, 1 if fetch else 0, how]) + u16(x))
    rot_fetch = staticmethod(lambda d, other=False: bytes([6, 0x80 if other else 0, d]))
    rot_release = staticmethod(lambda k, used, i, d, how, x: bytes([7, k, 1 if used else 0]) + u16(i) + bytes([d, how]) + u16(x))
    rot_toggle = staticmethod(lambda k: bytes([8, k]))
    move = staticmethod(lambda k: bytes([9, k]))
    release_all = staticmethod(lambda k: bytes([10, k]))
    fetch_wide = staticmethod(lambda k, a, port: bytes([11, k]) + u16(a) + u16(port))
    release_other_dest = staticmethod(lambda k, i, d: bytes([12, k]) + u16(i) + bytes([d]))


def sa_seeds():
    s = {}
    # One lcore, 16 ports, 4 buckets: exhaust one bucket, miss, release, fetch again (FIFO order).
    s["hashed_v4_exhaust"] = (sa_header(lcores=1, width=15, size=3) + sa.burst(0, 5, 20) + sa.release_used(0, 3) +
                              sa.release_used(0, 0) + sa.fetch(0, 5) + sa.fetch(0, 5) + sa.fetch(0, 5) +
                              sa.double_release(0, 1) + sa.release_all(0) + sa.burst(0, 5, 17))
    # Six lcores on 5 class bits (uneven classes), IPv6, shuffled, three LIPs in a rotation.
    s["hashed_v6_rotation"] = (sa_header(v6=True, shuffle=True, lips=3, lcores=6, which=4, bits=3, low=40000,
                                         width=200, size=7, seed=9) +
                               sa.rot_fetch(1) * 12 + sa.burst(1, 1, 40) + sa.rot_fetch(1) * 8 + sa.rot_toggle(0) +
                               sa.rot_fetch(1) * 4 + sa.rot_release(0, True, 3, 1, 0, 0) +
                               sa.rot_release(1, True, 5, 1, 0, 0) + sa.rot_toggle(0) + sa.rot_fetch(2) * 3 +
                               sa.rot_release(2, False, 0, 9, 1, 7) + sa.move(1) + sa.release_all(1))
    # Odd releases: random, in range, just below and above it, in use but with another destination.
    s["hashed_v4_odd_releases"] = (sa_header(lcores=3, which=2, low=1, width=60, size=2, param=77) +
                                   sa.burst(0, 3, 10) + sa.release_odd(0, 3, 0, 0xBEEF) +
                                   sa.release_odd(0, 3, 1, 5) + sa.release_odd(0, 3, 2, 0) +
                                   sa.release_odd(0, 3, 3, 0) + sa.release_odd(0, 3, 4, 1) +
                                   sa.release_other_dest(0, 2, 4) + sa.release_other_dest(0, 2, 3) +
                                   sa.other_family(0, 1, True, 0, 0) + sa.other_family(0, 1, False, 1, 3))
    # Both families in one rotation, wide range, many buckets reached through wide destinations.
    s["hashed_mixed_wide"] = (sa_header(lips=2, mixed=True, wide=True, lcores=16, which=15, bits=1, low=1025,
                                        width=20, size=31) +
                              b"".join(sa.fetch_wide(i % 3, 0x100 * i + 7, 80 + i) for i in range(24)) +
                              sa.rot_fetch(2) + sa.rot_fetch(2, other=True) + sa.rot_fetch(7, other=True) +
                              sa.move(2) + sa.rot_toggle(2) + sa.rot_fetch(3, other=True))
    # RSS-aware ports: 4 queues round robin over 64 entries, IPv4, bound copies, exhaustion.
    s["rss_v4_round_robin"] = (sa_header(rss=True, bind=True, lips=2, lcores=4, which=1, low=20000, width=63,
                                         size=6, param=0) +
                               sa.burst(0, 1, 40) + sa.fetch(0, 1) + sa.release_used(0, 7) + sa.fetch(0, 1) +
                               sa.rot_fetch(33) * 6 + sa.release_odd(0, 1, 1, 3) + sa.release_odd(1, 2, 0, 0x1234) +
                               sa.double_release(1, 0) + sa.release_all(0))
    # RSS, IPv6, RETA from bytes (8 entries), shuffled, a pool of the other family in the rotation.
    s["rss_v6_reta_bytes"] = (sa_header(rss=True, v6=True, shuffle=True, lips=1, mixed=True, lcores=3, which=2,
                                        low=50000, width=255, size=3, param=1, seed=3) +
                              bytes([2, 0, 1, 2, 1, 0, 2, 1]) +
                              sa.burst(0, 6, 30) + sa.rot_fetch(6) * 4 + sa.rot_fetch(6, other=True) * 3 +
                              sa.fetch_wide(0, 0x4242, 443) + sa.release_other_dest(0, 0, 1) + sa.release_all(0))
    # RSS with halves (one index bit decides) and a wide range.
    s["rss_v4_halves_wide"] = (sa_header(rss=True, lips=3, wide=True, lcores=2, which=1, low=1025, width=200,
                                         size=5, param=2) +
                               b"".join(sa.fetch_wide(i % 3, i * 977, 1000 + i) for i in range(16)) +
                               sa.rot_fetch(9) * 10 + sa.rot_toggle(1) + sa.rot_fetch(9) * 5 + sa.move(0))
    # RSS with the symmetric key (hashes only 16-bit word XORs): often refused, here a range it takes.
    s["rss_symmetric_key"] = (sa_header(rss=True, lcores=2, which=0, low=3000, width=255, size=1, param=0x80) +
                              sa.burst(0, 2, 8) + sa.release_used(0, 1))
    return s


# ---- fuzz_conn_table --------------------------------------------------------------------------

def ct_header(member=False, lf=0, hz=0, clear=False, capacity=8, pool=10, slots=8, tick=9, origin=0, bound=False):
    variant = (member << 0) | ((lf & 7) << 1) | ((hz & 3) << 4) | (clear << 6) | (bound << 7)
    slot_code = {2: 0, 4: 1, 8: 2, 16: 3, 32: 4, 64: 5}[slots]
    return bytes([variant, (capacity - 1) % 64, (pool - 1) % 80, slot_code, tick - 1, origin])


V6 = 0x80


class ct:
    insert = staticmethod(lambda i, o, timer=0: bytes([0, i, o, timer]))
    insert_hash = staticmethod(lambda i, o, how: bytes([2, i, o, how]))
    insert_linked = staticmethod(lambda idx, i, o: bytes([3]) + u16(idx) + bytes([i, o]))
    check_insert = staticmethod(lambda i, o: bytes([4, i, o]))
    find = staticmethod(lambda k, how=0: bytes([5, k, how]))
    bulk = staticmethod(lambda keys, with_hash=False: bytes([6, len(keys), 1 if with_hash else 0]) + bytes(keys))
    erase = staticmethod(lambda idx, keep_timer=False: bytes([7]) + u16(idx) + bytes([1 if keep_timer else 0]))
    erase_foreign = staticmethod(lambda how: bytes([8, how]))
    arm = staticmethod(lambda idx, ticks: bytes([9]) + u16(idx) + bytes([ticks]))
    rearm = staticmethod(lambda idx, ticks: bytes([10]) + u16(idx) + u16(ticks))
    refresh = staticmethod(lambda idx, ticks: bytes([11]) + u16(idx) + u16(ticks))
    cancel = staticmethod(lambda idx: bytes([12]) + u16(idx))
    advance = staticmethod(lambda delta, budget=0, back=False, mult=0: bytes([13, (1 if back else 0) | (mult << 5), delta, budget]))
    advance_clock = staticmethod(lambda ns, mult=0, budget=0: bytes([14]) + u16(ns) + bytes([mult, budget]))
    iterate_erase = staticmethod(lambda mod, rem: bytes([15, ((mod - 1) & 3) | ((rem & 0x1F) << 2)]))
    iterate_slices = staticmethod(lambda max_buckets: bytes([15, 0x80, max_buckets - 1]))
    pool_misuse = staticmethod(lambda how: bytes([16, how]))
    clear = staticmethod(lambda: bytes([17, 0xF8]))


def ct_seeds():
    s = {}
    # Collide in and out tuples (either direction, in == out), fill a table of 8, refuse the 9th,
    # find (right and wrong hashes, bulk), erase, insert an IPv6 conn, re-insert a linked conn.
    body = b"".join(ct.insert(2 * i, 2 * i + 1) for i in range(5))
    body += ct.insert(0, 50) + ct.insert(50, 1) + ct.insert(60, 60) + ct.check_insert(3, 70) + ct.check_insert(70, 70)
    body += b"".join(ct.insert(20 + 2 * i, 21 + 2 * i) for i in range(4))
    body += ct.insert(100, 101) + ct.check_insert(100, 101) + ct.find(0) + ct.find(1) + ct.find(99)
    body += ct.find(3, 1) + ct.find(3, 2) + ct.erase(2) + ct.check_insert(100, 101) + ct.insert(100 | V6, 101 | V6)
    body += ct.insert_linked(0, 7, 9) + ct.bulk([0, 1, 2, 3, 99, 100 | V6, 101 | V6, 5, 5])
    body += ct.bulk(list(range(64)), with_hash=True)
    s["table_full_collisions"] = ct_header(capacity=8, pool=12) + body
    # Two-bit hash (four chains), conns as members: long chains, bulk lookups, iteration with erase.
    body = b"".join(ct.insert(i, 255 - i, 0x10 | (i & 7)) for i in range(0, 40, 1))
    body += ct.bulk(list(range(0, 64, 1))) + ct.iterate_slices(3) + ct.iterate_erase(3, 1)
    body += ct.bulk(list(range(200, 256))) + ct.iterate_erase(1, 0)
    s["two_bit_hash_chains"] = ct_header(member=True, lf=5, capacity=48, pool=60, slots=4) + body
    # The same under a chain bound (max_chain 2 + 48 % 7 = 8): most inserts are refused as bucket_full.
    s["two_bit_hash_bounded"] = ct_header(member=True, lf=5, capacity=48, pool=60, slots=4, bound=True) + body
    # Timers: arm, refresh later (lazy) and earlier, rearm, cancel, advance across revolutions with
    # budgets; expired conns are erased and freed, some re-armed by their callback.
    body = b"".join(ct.insert(i, 128 + i, 0x30 | (i % 64) | ((i % 4) << 6)) for i in range(12))
    body += ct.refresh(0, 40) + ct.refresh(1, 1) + ct.rearm(2, 300) + ct.cancel(3) + ct.arm(3, 5) + ct.arm(4, 5)
    body += ct.advance(3, budget=2) + ct.advance(0, back=True, budget=1) + ct.advance(10) + ct.advance(200, mult=3)
    body += ct.insert(20, 21, 0x3F) + ct.refresh(0, 1000) + ct.advance(255, budget=3) + ct.advance(255)
    s["timers_revolutions"] = ct_header(capacity=16, pool=16, slots=8, tick=1) + body
    # The clock path at 3 GHz with a 250 ns tick, a pool smaller than the table (allocation fails).
    body = b"".join(ct.insert(i, 64 + i, 0x20 | i) for i in range(7))
    body += ct.advance_clock(3000, mult=1) + ct.advance_clock(60000, mult=7, budget=2) + ct.advance_clock(0)
    body += ct.erase_foreign(1) + ct.erase_foreign(0) + ct.erase_foreign(2) + ct.pool_misuse(1) + ct.pool_misuse(0)
    body += ct.erase(0, keep_timer=True) + ct.advance_clock(0xFFFF, mult=7)
    s["clock_pool_dry"] = ct_header(hz=1, capacity=20, pool=6, slots=16, tick=250, origin=7) + body
    # Insert with precomputed (and, in checked mode, wrong) hashes, then clear_and_dispose.
    body = b"".join(ct.insert_hash(i, 200 - i, i) for i in range(10)) + ct.clear() + ct.insert(1, 2)
    s["with_hash_clear"] = ct_header(member=True, lf=1, clear=True, capacity=10, pool=10, slots=2) + body
    # A 1 MHz clock with a 50 ns tick: the wheel refuses it.
    s["wheel_refused"] = ct_header(hz=2, tick=50) + ct.insert(1, 2)
    return s


def write(dirname, seeds):
    os.makedirs(dirname, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(data)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    write(os.path.join(root, "sa_pool"), sa_seeds())
    write(os.path.join(root, "conn_table"), ct_seeds())


if __name__ == "__main__":
    main()
