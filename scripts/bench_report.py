#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes docs/BENCHMARKS.md from the benchmark JSON files (standard library only, any python3).

    scripts/bench_report.py [--dir docs/bench] [--out docs/BENCHMARKS.md] [--no-plots]

Reads, in DIR:
  *_bench.json   Google Benchmark JSON (scripts/bench.sh runs each binary with repetitions and
                 --benchmark_report_aggregates_only); benchmark names are <suite>/<impl>/<case>
                 (DESIGN.md, "Benchmarks"), the case being everything after the second '/'
  e2e.json       scripts/bench_e2e.sh's wrk figures through fnat_lb and through dpdk-testpmd
  run.json       scripts/bench.sh's metadata: machine, build, commands, hugepages, timings
Writes OUT and the plots DIR/sa_pool_fetch_release.png and DIR/conn_lookup.png (gnuplot, when
installed), and prints README lines that quote the headline ratios.

How figures are read: per benchmark, the median over the repetitions (the "median" aggregate; with one
repetition, the run itself). The cost shown is nanoseconds per item: 1e9 / items_per_second where the
benchmark counts items (bulk lookups, bursts, fetches timed in stretches), else the CPU time per
iteration. items_per_second follows the benchmark's own clock: CPU time, or the manual wall-clock time
of the rss_port_fetch stretches. A ratio peer/fnat above 1 means fnat is faster. Every fnat impl
(`fnat`, `fnat_*`) is paired with every peer of its suite, case by case.
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

# Name parts Google Benchmark appends to a registered name.
SUFFIX = re.compile(r"(/(manual_time|real_time|process_time|min_time:[^/]+|min_warmup_time:[^/]+|"
                    r"iterations:\d+|repeats:\d+|threads:\d+))+$")
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
STANDARD_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                 "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
                 "aggregate_name", "aggregate_unit", "label", "error_occurred", "error_message",
                 "items_per_second", "bytes_per_second"}

# Suites in the order of DESIGN.md, with what one item is.
SUITES = {
    "sa_pool_fetch_release": "one local-port fetch and one release (a connection's pair) in one bucket (one "
                             "real server) of lcore 0 of an 8-lcore plan, at the given share of the bucket's "
                             "8063 ports in use; ns per pair",
    "sa_pool_build": "building the pool of one (LIP, lcore): 16 buckets over the whole port range; time per "
                     "build (memory in the next table)",
    "conn_lookup_latency": "one lookup of a random key (each conn is held under its inbound and its outbound "
                           "tuple) in a table of N conns, each key chosen by the previous lookup's result, so "
                           "no two lookups overlap: the latency of one lookup; ns per key",
    "conn_lookup_throughput": "the same lookups with independent keys back to back: the CPU overlaps "
                              "consecutive misses (throughput, not latency); ns per key",
    "conn_lookup_bulk": "32 keys per call (find_bulk / rte_hash_lookup_bulk_data); ns per key",
    "conn_insert_erase": "replace the oldest conn: erase both tuples, insert a fresh conn's two; ns per "
                         "replacement",
    "conn_expire": "arm N connection timers, then run the clock until all fired; ns per conn",
    "toeplitz_hash": "one Toeplitz hash of the IPv4 (12-byte) or IPv6 (36-byte) tuple; `fnat` is the GFNI "
                     "path on this CPU (label), `fnat_table` the table path",
    "rss_port_fetch": "one RSS-aware local-port fetch whose reply lands on the lcore's queue; wall-clock "
                      "time over stretches of 512 fetches (manual time), so the most sensitive to a busy "
                      "machine",
    "rss_port_fetch_release": "one RSS-aware fetch and its release (CPU time): the pair a connection costs",
    "rss_port_build": "what RSS-aware fetching costs before the first packet: fnat builds the rss_buckets policy "
                      "of one queue and one LIP's sa_pool over it; the peer creates its rte_thash context, lport "
                      "helper and in-use bitmap; time per build (memory in the next table)",
    "session_lifecycle": "the session table alone (no packet bytes): open a session (port, conn, both tuples, "
                         "timer), K lookups with a refresh, then close (or expiry by the advancing wheel) of the "
                         "session opened L connections earlier, so L stay live; `dpvs` does the same work DPVS's "
                         "way (rte_mempool conn, sa_pool lists, chained jhash table, per-packet timer re-schedule); "
                         "ns per connection",
    "redirect_handoff": "per packet: find the owner lcore of a reply, enqueue it on the owner's ring, dequeue "
                        "it there (one thread: the code path, not the cross-core transfer)",
    "pipeline_established": "the library datapath's step per packet for live sessions (1M in the "
                            "session_table), bursts of 32: parse, bulk lookup, TCP state, lazy timer, FullNAT "
                            "rewrite, neighbour, tx buffer; `io_fwd` is parse + MAC swap + tx, the floor of any "
                            "forwarding app",
    "pipeline_new_conn": "the whole life of a connection in steady state, 1M live sessions in the table: SYN "
                         "(parse, lookup miss, L4 checksum, scheduler, session_table::open), SYN|ACK, request, "
                         "response, RST (5 packets, each the answer to what the datapath sent), then the teardown "
                         "on the clock: `close` at the reset, or `expire` by the timer wheel advancing (one 10 ms "
                         "tick per 8,192 connections, CLOSE timeout 2 ticks); ns per connection; `io_fwd` runs "
                         "the same frames through parse + MAC swap",
}


# ---- reading ---------------------------------------------------------------------------------------

class Result:
    """One benchmark (median over its repetitions)."""

    def __init__(self, name, rows):
        self.name = name
        base = SUFFIX.sub("", name)
        parts = base.split("/", 2)
        self.suite = parts[0]
        self.impl = parts[1] if len(parts) > 1 else ""
        self.case = parts[2] if len(parts) > 2 else "-"
        self.error = next((r.get("error_message", "error") for r in rows if r.get("error_occurred")), None)
        median = [r for r in rows if r.get("aggregate_name") == "median"]
        cv = [r for r in rows if r.get("aggregate_name") == "cv"]
        its = [r for r in rows if r.get("run_type", "iteration") == "iteration" and not r.get("error_occurred")]
        src = median or its
        self.reps = (median[0].get("repetitions") if median else len(its)) or 0
        self.label = next((r.get("label") for r in src if r.get("label")), "")
        unit = src[0].get("time_unit", "ns") if src else "ns"

        def mid(key):
            v = [r[key] for r in src if isinstance(r.get(key), (int, float))]
            return statistics.median(v) if v else None

        cpu = mid("cpu_time")
        real = mid("real_time")
        self.cpu_ns = cpu * TO_NS[unit] if cpu is not None else None
        self.real_ns = real * TO_NS[unit] if real is not None else None
        ips = mid("items_per_second")
        self.items = bool(ips)
        self.ns = 1e9 / ips if ips else self.cpu_ns
        self.counters = {}
        for k in (src[0] if src else {}):
            if k not in STANDARD_KEYS:
                self.counters[k] = mid(k)
        # Variability: the cv aggregate of the time the figure comes from (items/s otherwise).
        self.cv = None
        if cv:
            key = "items_per_second" if self.items else "cpu_time"
            self.cv = cv[0].get(key)


def load_bench(path):
    data = json.load(open(path))
    groups = {}
    for row in data.get("benchmarks", []):
        groups.setdefault(row.get("run_name", row["name"]), []).append(row)
    return data.get("context", {}), [Result(n, rows) for n, rows in groups.items()]


class Data:
    def __init__(self, d):
        self.dir = d
        self.files = {}      # binary -> context
        self.results = []
        for path in sorted(glob.glob(os.path.join(d, "*bench*.json"))):
            try:
                ctx, res = load_bench(path)
            except (ValueError, KeyError, OSError) as e:
                print("bench_report: %s: %s (skipped)" % (path, e), file=sys.stderr)
                continue
            self.files[os.path.basename(path)[:-5]] = ctx
            self.results += res
        self.e2e = load_json(os.path.join(d, "e2e.json"))
        self.pmd = load_json(os.path.join(d, "pmd.json"))
        self.run = load_json(os.path.join(d, "run.json"))

    def suite(self, s):
        return [r for r in self.results if r.suite == s]

    def get(self, suite, impl, case):
        return next((r for r in self.results if r.suite == suite and r.impl == impl and r.case == case), None)

    def suites(self):
        seen = []
        for r in self.results:
            if r.suite not in seen:
                seen.append(r.suite)
        return [s for s in SUITES if s in seen] + [s for s in seen if s not in SUITES]


def load_json(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


# ---- formatting ------------------------------------------------------------------------------------

def fmt_ns(v):
    if v is None:
        return "–"
    if v < 10:
        return "%.2f ns" % v
    if v < 100:
        return "%.1f ns" % v
    if v < 1e4:
        return "%.0f ns" % v
    if v < 1e5:
        return "%.1f µs" % (v / 1e3)
    if v < 1e6:
        return "%.0f µs" % (v / 1e3)
    if v < 1e8:
        return "%.2f ms" % (v / 1e6)
    return "%.0f ms" % (v / 1e6)


def fmt_ratio(v):
    if v is None:
        return "–"
    if 0 < v < 0.1:  # the peer far faster (e.g. a build that precomputes nothing): 1/N reads better than 0.00
        return "1/%.0f×" % (1 / v)
    return ("%.2f×" if v < 10 else "%.1f×" if v < 100 else "%.0f×") % v


def fmt_bytes(v):
    if v is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if v >= size:
            return "%.2f %s" % (v / size, unit)
    return "%.2f B" % v


def ratio(peer, fnat):
    if peer is None or fnat is None or peer.ns is None or fnat.ns is None or fnat.ns == 0:
        return None
    if peer.error or fnat.error:
        return None
    return peer.ns / fnat.ns


def cell(r):
    if r is None:
        return "–"
    if r.error:
        return "error: " + r.error.replace("|", "/")
    return fmt_ns(r.ns)


def table(head, rows, numeric=True):
    """A Markdown table; the first column left-aligned, the others right-aligned when numeric."""
    align = ["---" if i == 0 or not numeric else "---:" for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in row) + " |")
    return "\n".join(out)


def is_fnat(impl):
    return impl == "fnat" or impl.startswith("fnat_")


def cache_regime(r):
    """'inside' (table ≤ L3/4), 'beyond' (≥ 4× L3), 'between', or None where the benchmark does not say."""
    tb, l3 = r.counters.get("table_bytes"), r.counters.get("l3_bytes")
    if not tb or not l3:
        return None
    return "inside" if tb <= l3 / 4 else "beyond" if tb >= 4 * l3 else "between"


# ---- the headline: issue targets -------------------------------------------------------------------

class Target:
    def __init__(self, issue, what, measured, met, note=""):
        self.issue, self.what, self.measured, self.met, self.note = issue, what, measured, met, note


def worst(pairs, key=min):
    """pairs: [(value, where)] -> (value, where) of the worst one, ignoring missing values."""
    pairs = [p for p in pairs if p[0] is not None]
    return key(pairs, key=lambda p: p[0]) if pairs else (None, None)


def cases(data, suite, impl):
    return [r.case for r in data.suite(suite) if r.impl == impl]


def targets(data):
    t = []

    def ratio_target(issue, what, suite, fnat, peer, want, case_filter=lambda c: True, note=""):
        pairs = [(ratio(data.get(suite, peer, c), data.get(suite, fnat, c)), c)
                 for c in cases(data, suite, fnat) if case_filter(c)]
        v, where = worst(pairs)
        vals = [p[0] for p in pairs if p[0] is not None]
        if v is None:
            measured = "not measured"
        elif len(vals) > 1:
            measured = "worst %s (%s); median of %d cases %s" % (fmt_ratio(v), where, len(vals),
                                                                fmt_ratio(statistics.median(vals)))
        else:
            measured = "%s (%s)" % (fmt_ratio(v), where)
        if note:
            measured += "; " + note
        t.append(Target(issue, what, measured, None if v is None else v >= want, note))

    # #3 sa_pool
    ratio_target("#3", "sa_pool fetch+release: fnat ≥ 2.5× faster than dpvs at every occupancy",
                 "sa_pool_fetch_release", "fnat", "dpvs", 2.5)
    f0, f99 = data.get("sa_pool_fetch_release", "fnat", "occupancy:0"), data.get("sa_pool_fetch_release", "fnat", "occupancy:99")
    if f0 and f99 and f0.ns and f99.ns:
        v = f99.ns / f0.ns
        t.append(Target("#3", "sa_pool fetch+release: fnat at 99% occupancy within 1.3× of 0%",
                        "%s (%s vs %s)" % (fmt_ratio(v), fmt_ns(f99.ns), fmt_ns(f0.ns)), v <= 1.3))
    else:
        t.append(Target("#3", "sa_pool fetch+release: fnat at 99% occupancy within 1.3× of 0%", "not measured", None))
    ratio_target("#3", "sa_pool build: fnat ≥ 20× faster than dpvs", "sa_pool_build", "fnat", "dpvs", 20)
    pairs = []
    for c in cases(data, "sa_pool_build", "fnat"):
        f, d = data.get("sa_pool_build", "fnat", c), data.get("sa_pool_build", "dpvs", c)
        if f and d and f.counters.get("bytes_per_lip") and d.counters.get("bytes_per_lip"):
            pairs.append((f.counters["bytes_per_lip"] / d.counters["bytes_per_lip"], c))
    v, where = worst(pairs, key=max)
    t.append(Target("#3", "sa_pool memory per LIP ≤ 1/10 of dpvs",
                    "1/%.1f (worst: %s)" % (1 / v, where) if v else "not measured", None if v is None else v <= 0.1))
    # #4 conn table
    ratio_target("#4", "conn lookup, single (throughput): fnat no slower than rte_hash", "conn_lookup_throughput",
                 "fnat", "rte_hash", 1.0)
    ratio_target("#21", "conn lookup, single (latency): fnat no slower than rte_hash", "conn_lookup_latency",
                 "fnat", "rte_hash", 1.0)
    ratio_target("#4", "conn lookup, bulk: fnat ≥ 1.25× faster than rte_hash at 1M and 4M conns",
                 "conn_lookup_bulk", "fnat", "rte_hash", 1.25, lambda c: c.startswith(("conns:1M/", "conns:4M/")))
    for regime, want in (("inside", "well inside the L3 (≤ 1/4)"), ("beyond", "well beyond the L3 (≥ 4×)")):
        sel = [r.case for r in data.suite("conn_lookup_bulk") if r.impl == "fnat" and cache_regime(r) == regime]
        if sel:
            ratio_target("#21", "conn lookup, bulk, table %s: fnat faster than rte_hash" % want, "conn_lookup_bulk",
                         "fnat", "rte_hash", 1.0, lambda c, sel=sel: c in sel)
        else:
            t.append(Target("#21", "conn lookup, bulk, table %s: fnat faster than rte_hash" % want,
                            "not measured (no table size in this regime on this machine: see the suite's table/L3)",
                            None))
    # #6 RSS
    ratio_target("#6", "Toeplitz hash: fnat (GFNI) no slower than rte_thash_gfni", "toeplitz_hash", "fnat",
                 "rte_thash_gfni", 1.0)
    ratio_target("#6", "Toeplitz hash: fnat's table path ≥ 5× faster than rte_softrss", "toeplitz_hash",
                 "fnat_table", "rte_softrss", 5.0)
    rel = [ratio(data.get("rss_port_fetch_release", "rte_thash_adjust_tuple", c), data.get("rss_port_fetch_release", "fnat", c))
           for c in cases(data, "rss_port_fetch_release", "fnat")]
    rel = [x for x in rel if x is not None]
    ratio_target("#6", "RSS-aware port fetch: fnat ≥ 10× faster than rte_thash_adjust_tuple", "rss_port_fetch",
                 "fnat", "rte_thash_adjust_tuple", 10.0,
                 note="wall-clock stretches; cross-check on CPU time, fetch+release: worst %s, median %s" % (
                     fmt_ratio(min(rel)), fmt_ratio(statistics.median(rel))) if rel else "")
    # #8 pipeline
    est = [(r.ns, r.case) for r in data.suite("pipeline_established") if r.impl == "fnat" and not r.error]
    v, where = worst(est, key=max)
    t.append(Target("#8", "established flow ≤ 60 ns/packet (≥ 16 Mpps) on one lcore",
                    "%s = %.1f Mpps (worst: %s)" % (fmt_ns(v), 1e3 / v, where) if v else "not measured",
                    None if v is None else v <= 60))
    pairs = []
    for c in cases(data, "pipeline_established", "fnat"):
        f, io = data.get("pipeline_established", "fnat", c), data.get("pipeline_established", "io_fwd", c)
        if f and io and f.ns and io.ns and not f.error:
            pairs.append((f.ns / io.ns, c))
    v, where = worst(pairs, key=max)
    t.append(Target("#8", "established flow within 3× of the io-forward floor (fnat / io_fwd)",
                    "%s (worst: %s)" % (fmt_ratio(v), where) if v else "not measured", None if v is None else v <= 3))
    nc = [(1e3 / r.ns, r.case) for r in data.suite("pipeline_new_conn") if r.impl == "fnat" and r.ns and not r.error]
    v, where = worst(nc)
    t.append(Target("#21", "full connections (open, 5 packets, teardown) ≥ 2 M/s on one lcore",
                    "%.2f M/s (worst: %s)" % (v, where) if v else "not measured", None if v is None else v >= 2))
    p = data.pmd or {}
    a, io = (p.get("fnat_mpps") or {}).get("64K"), (p.get("testpmd_mpps") or {}).get("io/64K")
    v = a / io if isinstance(a, (int, float)) and isinstance(io, (int, float)) and io == io and io > 0 else None
    t.append(Target("#21", "real PMD path, 64K flows: fnat ≥ 0.5× dpdk-testpmd io (Mpps per lcore)",
                    "%s (%.2f vs %.2f Mpps)" % (fmt_ratio(v), a, io) if v else "not measured",
                    None if v is None else v >= 0.5))
    e2e = data.e2e
    if e2e and not e2e.get("skipped"):
        idle = e2e["params"].get("reported_idle", "busy")
        for mode, what in (("keepalive", "persistent connections"), ("close", "a new connection per request")):
            v = e2e.get("ratios_vs_testpmd", {}).get("%s/%s" % (idle, mode))
            t.append(Target("#8", "end to end (wrk, %s): fnat_lb ≥ 0.8× testpmd io-forward's rate" % what,
                            "%s (idle = %s)" % (fmt_ratio(v), idle) if v else "not measured",
                            None if v is None else v >= 0.8))
    else:
        t.append(Target("#8", "end to end (wrk): fnat_lb ≥ 0.8× testpmd io-forward's rate",
                        "not measured" + (": " + e2e["skipped"] if e2e else ""), None))
    return t


def verdict(met):
    return "**met**" if met else ("not measured" if met is None else "**not met**")


# ---- plots -----------------------------------------------------------------------------------------

def gnuplot(script, out_png):
    gp = shutil.which("gnuplot")
    if not gp:
        return False
    with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
        f.write(script)
        name = f.name
    try:
        r = subprocess.run([gp, name], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            print("bench_report: gnuplot failed for %s:\n%s" % (out_png, r.stderr), file=sys.stderr)
            return False
        return os.path.exists(out_png)
    finally:
        os.unlink(name)


PLOT_HEAD = """set terminal pngcairo size 1000,560 font "DejaVu Sans,10" noenhanced
set output "%s"
set grid ytics lc rgb "#dddddd"
set key top left box opaque
"""
QUICK_NOTE = " - quick run, indicative only"
COLORS = {"fnat": "#1b7837", "dpvs": "#c51b7d", "random_probe": "#4575b4", "rte_hash": "#d73027",
          "std_unordered_map": "#4575b4"}


def plot_sa_pool(data, png):
    impls = [i for i in ("fnat", "dpvs", "random_probe") if data.get("sa_pool_fetch_release", i, "occupancy:0")]
    if not impls:
        return False
    s = PLOT_HEAD % png
    s += 'set title "sa_pool: one fetch + one release vs pool occupancy (median CPU time; lower is better)%s"\n' % (
        QUICK_NOTE if (data.run or {}).get("quick") else "")
    s += 'set xlabel "ports of the bucket in use (%)"\nset ylabel "ns per fetch + release"\nset yrange [0:*]\n'
    s += "set xtics (0, 50, 90, 99)\nset xrange [-3:102]\n"
    plots = []
    for i in impls:
        s += "$%s << EOD\n" % i
        for r in data.suite("sa_pool_fetch_release"):
            if r.impl == i and r.ns and not r.error:
                s += "%s %f\n" % (r.case.split(":")[1], r.ns)
        s += "EOD\n"
        plots.append('$%s using 1:2 with linespoints lw 2 pt 7 lc rgb "%s" title "%s"' % (i, COLORS.get(i, "black"), i))
    s += "plot " + ", \\\n  ".join(plots) + "\n"
    return gnuplot(s, png)


def plot_conn_lookup(data, png):
    sizes = ["64K", "1M", "4M"]
    if not data.suite("conn_lookup_throughput"):
        return False
    s = PLOT_HEAD % png
    s = s.replace("size 1000,560", "size 1200,560")
    s += "set multiplot layout 1,2 title \"conn table lookup cost vs table size (median; lower is better)%s\"\n" % (
        QUICK_NOTE if (data.run or {}).get("quick") else "")
    s += 'set xtics ("64K" 0, "1M" 1, "4M" 2)\nset xrange [-0.2:2.2]\nset yrange [0:*]\nset xlabel "conns in the table"\n'
    for suite, title, impls in (("conn_lookup_throughput", "single lookup (throughput)",
                                 ("fnat", "rte_hash", "std_unordered_map")),
                                ("conn_lookup_bulk", "bulk lookup, 32 keys per call", ("fnat", "rte_hash"))):
        s += 'set title "%s"\nset ylabel "ns per key"\n' % title
        plots = []
        for i in impls:
            for kind, dash in (("hit", 1), ("miss", 2)):
                block = "%s_%s_%s" % (suite, i, kind)
                pts = []
                for x, size in enumerate(sizes):
                    r = data.get(suite, i, "conns:%s/%s" % (size, kind))
                    if r and r.ns and not r.error:
                        pts.append("%d %f" % (x, r.ns))
                if not pts:
                    continue
                s += "$%s << EOD\n%s\nEOD\n" % (block, "\n".join(pts))
                plots.append('$%s using 1:2 with linespoints lw 2 dt %d pt %d lc rgb "%s" title "%s %s"'
                             % (block, dash, 7 if kind == "hit" else 6, COLORS.get(i, "black"), i, kind))
        if plots:
            s += "plot " + ", \\\n  ".join(plots) + "\n"
    s += "unset multiplot\n"
    return gnuplot(s, png)


# ---- the report ------------------------------------------------------------------------------------

def machine_section(data):
    run = data.run or {}
    m = run.get("machine", {})
    ctx = next(iter(data.files.values()), {})
    if not m:  # no run.json: read this machine (the report is written where the benchmarks ran)
        try:
            info = open("/proc/cpuinfo").read()
            mm = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
            m = {"cpu_model": mm.group(1) if mm else "?", "cpus": os.cpu_count()}
        except OSError:
            m = {}
    caches = ", ".join("L%d %s %d KiB" % (c["level"], c["type"].lower(), c["size"] // 1024)
                       for c in ctx.get("caches", []))
    # The benchmarks' own reading (sysfs, else sysconf): Google Benchmark's list is empty where the
    # machine has no sysfs cache directory.
    own = [(n, int(ctx.get("fnat_cache_" + k, 0) or 0)) for n, k in (("L1d", "l1d"), ("L2", "l2"), ("L3", "l3"))]
    own_caches = ", ".join("%s %s" % (n, fmt_bytes(v)) for n, v in own if v) or "unknown"
    mem_kinds = sorted({c.get("fnat_eal_memory", "?") for c in data.files.values()})
    build = run.get("build", {})
    hp = run.get("hugepages", {})
    rows = [
        ("CPU", "%s, %s CPUs at %s MHz (%s)" % (m.get("cpu_model", "?"), m.get("cpus", ctx.get("num_cpus", "?")),
                                             ctx.get("mhz_per_cpu", "?"), caches or "caches unknown")),
        ("caches (the figures depend on them)", own_caches),
        ("CPU features used", ", ".join(m.get("cpu_flags", [])) or "–"),
        ("memory", "%s GiB" % m.get("memory_gib", "?")),
        ("OS, kernel", "%s, %s" % (m.get("os", "?"), m.get("kernel", "?"))),
        ("compiler", "g++ %s%s" % (ctx.get("compiler", "?"),
                                   " (%s)" % build["cxx_version"] if build.get("cxx_version") else "")),
        ("DPDK", ctx.get("dpdk_version", "?")),
        ("build", "%s, checked mode %s, -march=native %s" % (
            build.get("type", "Release"), "off" if build.get("checked") in ("OFF", None) else "on",
            "after DPDK's -march (order in the real compile command: %s)" % " then ".join(build["march_flags_in_order"])
            if build.get("march_flags_in_order") else "(order not checked)")),
        ("EAL memory", "%s%s" % (", ".join(mem_kinds),
                                 " (2 MiB pages: %s free of %s before the run, %s reserved by bench.sh)" % (
                                     hp.get("free_before"), hp.get("total_before"), hp.get("reserved_by_script", 0))
                                 if hp else "")),
        ("Google Benchmark library", "1.7.1, Debian's build (its console warns \"Library was built as DEBUG\": "
                                     "that is the harness library's own flags, not the code under test)"
         if ctx.get("library_build_type") == "debug" else "1.7.1"),
        ("load average at start", "; ".join("%s: %s" % (b, " ".join("%.1f" % x for x in c.get("load_avg", [])))
                                            for b, c in data.files.items())),
        ("date", run.get("finished") or ctx.get("date", "?")),
        ("commit", "%s%s" % (run.get("git", {}).get("commit", "?")[:12],
                             " (with uncommitted changes)" if run.get("git", {}).get("dirty") else "")),
    ]
    return table(["", ""], rows, numeric=False)


def suite_section(data, suite):
    res = data.suite(suite)
    impls = []
    for r in res:
        if r.impl not in impls:
            impls.append(r.impl)
    fimpls = [i for i in impls if is_fnat(i)]
    peers = [i for i in impls if not is_fnat(i)]
    case_list = []
    for r in res:
        if r.case not in case_list:
            case_list.append(r.case)
    out = ["### %s" % suite, ""]
    if suite in SUITES:
        out += [SUITES[suite][0].upper() + SUITES[suite][1:] + ".", ""]
    items = any(r.items for r in res)
    if not fimpls:
        head = ["case"] + impls
        rows = [[c] + [cell(data.get(suite, i, c)) for i in impls] for c in case_list]
        out.append(table(head, rows))
        return "\n".join(out)
    head = ["case"] + (["fnat impl"] if len(fimpls) > 1 else []) + ["fnat"]
    for p in peers:
        head += [p, "%s / fnat" % p]
    regimes = any(cache_regime(r) for r in res)
    head += ["spread"] + (["table / L3"] if regimes else []) + ["fnat's label"]
    rows = []
    for c in case_list:
        for f in fimpls:
            fr = data.get(suite, f, c)
            if fr is None:
                continue
            row = [c] + ([f] if len(fimpls) > 1 else []) + [cell(fr)]
            for p in peers:
                pr = data.get(suite, p, c)
                row += [cell(pr), fmt_ratio(ratio(pr, fr))]
            cvs = [x.cv for x in [fr] + [data.get(suite, p, c) for p in peers] if x is not None and x.cv is not None]
            row.append("±%.0f%%" % (100 * max(cvs)) if cvs else "–")
            if regimes:
                g = cache_regime(fr)
                row.append("%.2f (%s)" % (fr.counters["table_bytes"] / fr.counters["l3_bytes"], g) if g else "–")
            row.append(fr.label or "")
            rows.append(row)
    out.append(table(head, rows))
    out += ["", "Cost per %s; *peer / fnat* above 1 means fnat is faster. *spread*: the largest coefficient of "
                "variation over the repetitions among the row's figures." % ("item" if items else "iteration")]
    if regimes:
        out += ["", "*table / L3*: fnat's table (conn objects and buckets) over the L3 of this machine; *inside* ≤ "
                    "1/4, *beyond* ≥ 4. The sizes besides 64K, 1M and 4M are chosen at run time from the L3 "
                    "(largest power of two inside, smallest beyond, the latter capped by the DPDK memory there is)."]
    if suite == "rss_port_build":
        mrows = []
        for c in case_list:
            f, d = data.get(suite, "fnat", c), data.get(suite, "rte_thash_adjust_tuple", c)
            if not f:
                continue
            mrows.append([c, fmt_bytes(f.counters.get("pool_bytes")), fmt_bytes(f.counters.get("bytes_per_lip")),
                          fmt_bytes(d.counters.get("pool_bytes")) if d else "–"])
        if mrows:
            out += ["", "Memory: fnat's sa_pool of one (LIP, lcore) and of all lcores of one LIP (the policy's shared "
                        "tables not counted); the peer's in-use bitmap (rte_thash's context not counted).", "",
                    table(["case", "fnat per (LIP, lcore)", "fnat per LIP", "rte_thash bitmap"], mrows)]
    if suite == "sa_pool_build":
        mrows = []
        for c in case_list:
            f, d = data.get(suite, "fnat", c), data.get(suite, "dpvs", c)
            if not f or not d:
                continue
            fl, dl = f.counters.get("bytes_per_lip"), d.counters.get("bytes_per_lip")
            fe, de = f.counters.get("bytes_per_entry"), d.counters.get("bytes_per_entry")
            mrows.append([c, fmt_bytes(fl), fmt_bytes(dl), "1/%.1f" % (dl / fl) if fl and dl else "–",
                          "%.2f" % fe if fe else "–", "%.2f" % de if de else "–"])
        if mrows:
            out += ["", "Memory: the pools of all lcores of one LIP (`bytes_per_lip`), and bytes per (bucket, port) "
                        "entry.", "",
                    table(["case", "fnat per LIP", "dpvs per LIP", "fnat / dpvs", "fnat B/entry", "dpvs B/entry"], mrows)]
    return "\n".join(out)


def e2e_section(data):
    e = data.e2e
    out = ["## End to end: wrk through the balancer vs testpmd io-forward", ""]
    if not e:
        out.append("No docs/bench/e2e.json: run `sudo scripts/bench_e2e.sh` (scripts/bench.sh runs it).")
        return "\n".join(out)
    if e.get("skipped"):
        out.append("Not measured: %s." % e["skipped"])
        return "\n".join(out)
    p = e["params"]
    out += [
        "The namespace rig (scripts/rig.sh, prefix `fnat-perf-`): wrk in the client namespace, %d nginx real "
        "server(s) (one worker process each), and in the middle either the reference balancer (FullNAT through "
        "the VIP, `%s`) or `dpdk-testpmd --forward-mode=io` bridging the same two af_packet ports, the client "
        "then addressing real server 1 directly (no VIP, no NAT; static neighbours with the rig's fixed MACs). "
        "Both middle boxes run their lcores floating over CPUs %s, which the client, the servers and the kernel's "
        "veth/bridge work share: this machine has %s CPUs in all, so the figures measure the rig as a whole, "
        "and its floor is the af_packet path, not the balancer's code." % (
            p["real_servers"], "fnat_lb", p["cpus"], (data.run or {}).get("machine", {}).get("cpus", "2")),
        "",
        "Each configuration was started %d time(s), interleaved; each start: a warm-up, then `%s` in two modes: "
        "*keepalive* (persistent connections: established flows) and *close* (`Connection: close`: a new TCP "
        "connection, so a new conn and a local-port fetch, per request). Figures are medians over the starts. "
        "wrk is a closed loop at saturation, so p50/p99 include queueing at the bottleneck. *middle box CPU* "
        "is the middle box's user+system CPU time per request (a busy-polling lcore spends its whole share "
        "whatever the load); *imissed* counts frames the kernel dropped because an af_packet rx ring was full."
        % (p["reps"], p["wrk_command"]),
        "",
    ]
    rows = []
    order = sorted(e["configs"], key=lambda n: (e["configs"][n].get("workers", 1), n.startswith("testpmd"), n))
    for name in order:
        c = e["configs"][name]
        for mode in ("keepalive", "close"):
            m = c["modes"].get(mode)
            if not m:
                continue
            eth = m.get("eth_totals") or {}
            rows.append([name, mode, "%.0f" % m["median_rps"] if m.get("median_rps") else "–",
                         "%.2f ms" % m["median_p50_ms"] if m.get("median_p50_ms") is not None else "–",
                         "%.2f ms" % m["median_p99_ms"] if m.get("median_p99_ms") is not None else "–",
                         "%.1f µs" % m["middle_box_cpu_us_per_request"] if m.get("middle_box_cpu_us_per_request") else "–",
                         str(m.get("socket_errors", 0)), str(m.get("non_2xx", 0)), str(eth.get("imissed", "–"))])
        if c.get("failed_starts"):
            rows.append([name, "%d start(s) failed" % c["failed_starts"], "", "", "", "", "", "", ""])
    out.append(table(["configuration", "mode", "requests/s", "p50", "p99", "middle box CPU per request",
                      "socket errors", "non-2xx", "imissed"], rows))
    r = e.get("ratios_vs_testpmd", {})
    if r:
        out += ["", "fnat_lb's rate over testpmd's (1 worker; target ≥ 0.8×):", ""]
        out.append(table(["idle", "keepalive", "close"],
                         [[i, fmt_ratio(r.get(i + "/keepalive")), fmt_ratio(r.get(i + "/close"))]
                          for i in ("busy", "backoff")]))
        out += ["", "The headline uses idle = **%s**, the mode with the higher keepalive rate at one worker here "
                    "(with 2 CPUs for everything, a worker that sleeps when idle leaves CPU to the client and "
                    "the servers; testpmd always busy-polls)." % p["reported_idle"]]
    out += ["", "Commands: `%s`; `%s`." % (p["lb_command"], p["testpmd_command"])]
    return "\n".join(out)


def pmd_section(data):
    p = data.pmd
    out = ["## The real PMD path", ""]
    if not p:
        return "\n".join(out + ["Not measured (scripts/bench_pmd.sh; `scripts/bench.sh --no-pmd` skips it)."])
    out += ["fnat's worker loop (pipeline_bench's `pipeline_pmd/fnat`: rte_eth_rx_burst on net_pcap replaying "
            "a capture of established flows with infinite_rx=1, the library datapath, rte_eth_tx_burst on "
            "net_null, the timer wheel advancing) beside dpdk-testpmd's io and macswap forwarding on the same "
            "vdevs and captures, in the same run; one lcore each, Mpps of wall-clock time, %d s each, EAL memory: "
            "%s. The table holds 1M live sessions in both cases; *flows* is how many of them the capture "
            "touches. testpmd parses and rewrites nothing (macswap: the MAC addresses)." % (
                p.get("seconds", 0), p.get("eal_memory", "?")), ""]
    rows = []
    for f in ("64K", "1M"):
        a = (p.get("fnat_mpps") or {}).get(f)
        io = (p.get("testpmd_mpps") or {}).get("io/" + f)
        ms = (p.get("testpmd_mpps") or {}).get("macswap/" + f)
        ok = lambda v: isinstance(v, (int, float)) and v == v and v > 0
        rows.append([f, "%.2f" % a if ok(a) else "–", "%.2f" % io if ok(io) else "–", "%.2f" % ms if ok(ms) else "–",
                     fmt_ratio(a / io) if ok(a) and ok(io) else "–"])
    out.append(table(["flows", "fnat Mpps", "testpmd io Mpps", "testpmd macswap Mpps", "fnat / testpmd io"], rows))
    out += ["", "Target (issue 21): fnat at least 0.5× testpmd io at 64K flows."]
    return "\n".join(out)


def scaling_section(data):
    est = [r for r in data.suite("pipeline_established") if r.impl == "fnat" and r.ns and not r.error]
    nc = [r for r in data.suite("pipeline_new_conn") if r.impl == "fnat" and r.ns and not r.error]
    out = ["## Scaling with lcores", "",
           "No machine with more cores was available for this report, so this section argues the scaling on paper "
           "from what is per-lcore and what is shared, and gives the one- and two-lcore points this 2-CPU machine "
           "can measure honestly.", "",
           "**Per lcore, never shared, no lock, no atomic read-modify-write on the fast path** (examples/fnat_lb/"
           "dataplane.hpp): the conn table and its conn objects (object pool), the timer wheel, the sa_pools of "
           "every (LIP, lcore), the schedulers' state, the neighbour cache, the tx buffers and the counters. A "
           "worker's rx queues are its own (flow rules, RSS-aware ports or the port plan make every reply arrive "
           "where its conn lives). The cost of a packet on lcore L depends only on L's own tables, so the "
           "per-lcore figures below multiply by N as long as N lcores have N queues and memory bandwidth.", "",
           "**Shared, and what each costs at N lcores:**", "",
           "- *Read-only tables* built before the workers start (services, LIPs, routes, the port plan, the "
           "RETA copy): read by every lcore, written by none, so each lcore keeps its own copy in its cache; "
           "cost independent of N.",
           "- *Redirect rings* (redirect steering only, i.e. NICs with neither usable flow rules nor a RETA, like "
           "af_packet here): one multi-producer single-consumer rte_ring per lcore. With a uniform spread, a "
           "reply lands on its owner with probability 1/N, so (N-1)/N of the replies cross a ring: one burst "
           "enqueue (a compare-and-swap on the ring's producer head, contended by up to N-1 producers) plus the "
           "owner's dequeue, and a cache-line transfer of the mbuf. The single-thread code path is measured "
           "below (redirect_handoff); the cross-core cost grows with N and is why flow and RSS steering are "
           "preferred: with them no packet is redirected at any N.",
           "- *Neighbour rings*: a learned (address, MAC) is broadcast to the other N-1 workers over small rings; "
           "O(N) per neighbour change, nothing per packet.",
           "- *The mbuf pool*: one rte_mempool for all workers, with a per-lcore cache (rte_mempool's default), "
           "so a worker touches the shared ring only when its cache over- or underflows, in bulk; the ring is "
           "multi-producer/multi-consumer, so its cost per access grows slowly with N but is amortised over a "
           "cache's worth of mbufs.",
           "- *Counters and gauges* are per worker and read by the telemetry thread without locks.", ""]
    if est or nc:
        out += ["**Measured, one lcore** (pipeline_bench: the library datapath's step on in-memory bursts, no I/O):", ""]
        rows = [["established, %s" % r.case, fmt_ns(r.ns) + " per packet", "%.2f Mpps" % (1e3 / r.ns),
                 "%.1f Mpps" % (16 * 1e3 / r.ns)] for r in est]
        rows += [["full connection, %s" % r.case, fmt_ns(r.ns) + " per connection", "%.2f M conns/s" % (1e3 / r.ns),
                  "%.1f M conns/s" % (16 * 1e3 / r.ns)] for r in nc]
        out.append(table(["case", "cost", "1 lcore", "16 lcores if linear"], rows))
        out += ["", "The last column is the per-lcore design's claim, not a measurement: N workers share nothing "
                    "written on the fast path, so with flow or RSS steering N lcores give N times one lcore's rate "
                    "until the NIC, PCIe or memory bandwidth is the limit. Table memory is per lcore too "
                    "(conns_per_lcore), so N lcores hold N times the conns.", ""]
    e = data.e2e
    if e and not e.get("skipped"):
        two = {n: c for n, c in e["configs"].items() if c.get("kind") == "fnat_lb" and c.get("workers") == 2}
        if two:
            name2, c2 = next(iter(two.items()))
            c1 = e["configs"].get("fnat_lb/idle:%s/workers:1" % c2.get("idle"))
            rows = []
            for mode in ("keepalive", "close"):
                a = (c1 or {}).get("modes", {}).get(mode, {}).get("median_rps")
                b = c2["modes"].get(mode, {}).get("median_rps")
                rows.append([mode, "%.0f" % a if a else "–", "%.0f" % b if b else "–",
                             fmt_ratio(b / a) if a and b else "–"])
            out += ["**Measured on the rig, 1 vs 2 workers** (idle = %s; 2 workers need 2 af_packet queue pairs, "
                    "and af_packet has no RETA, so replies reach their owner by software redirect):" % c2.get("idle"),
                    "", table(["mode", "1 worker req/s", "2 workers req/s", "2 / 1"], rows), "",
                    "This is not a scaling measurement: the rig's 2 CPUs also run wrk, nginx and the kernel's "
                    "veth and bridge work, and the 1-worker figure already matches testpmd's floor, so a second "
                    "worker can only add the redirect hand-off and more contention for the same 2 CPUs. It shows "
                    "that two workers run correctly side by side on the rig (no errors, replies redirected to their "
                    "owner), not how the design scales."]
    return "\n".join(out)


def readme_lines(data, tgts):
    def pick(suite, peer, case, fnat="fnat"):
        return ratio(data.get(suite, peer, case), data.get(suite, fnat, case))
    lines = ["## Performance", "",
             "[docs/BENCHMARKS.md](docs/BENCHMARKS.md) has every figure (fnat against each peer in the same "
             "binary, case by case), the machine, plots and the command to reproduce (`sudo scripts/bench.sh`). "
             "Headlines, median over repetitions%s:" % (" (from a --quick run: indicative only)"
                                                      if (data.run or {}).get("quick") else ""), ""]
    bullets = []
    r = pick("sa_pool_fetch_release", "dpvs", "occupancy:99")
    if r:
        bullets.append("sa_pool fetch+release at 99%% occupancy: %s faster than DPVS's algorithm" % fmt_ratio(r))
    r = pick("sa_pool_build", "dpvs", "lcores:8")
    if r:
        bullets.append("sa_pool build: %s faster than DPVS's" % fmt_ratio(r))
    r = pick("conn_lookup_latency", "rte_hash", "conns:4M/hit")
    if r:
        bullets.append("conn lookup latency, 4M conns, hit: %s rte_hash's speed" % fmt_ratio(r))
    r = pick("toeplitz_hash", "rte_softrss", "ipv4", "fnat_table")
    if r:
        bullets.append("Toeplitz hash (table path): %s faster than rte_softrss" % fmt_ratio(r))
    r = pick("rss_port_fetch", "rte_thash_adjust_tuple", "ipv4/reta:512/fill:round_robin/lcores:4/occupancy:0")
    if r:
        bullets.append("RSS-aware port fetch: %s faster than rte_thash_adjust_tuple" % fmt_ratio(r))
    est = [x for x in data.suite("pipeline_established") if x.impl == "fnat" and x.ns]
    if est:
        w = max(est, key=lambda x: x.ns)
        bullets.append("balancer pipeline, established flows: %s per packet on one lcore (%.1f Mpps; target "
                       "60 ns)" % (fmt_ns(w.ns), 1e3 / w.ns))
    e = data.e2e
    if e and not e.get("skipped"):
        idle = e["params"]["reported_idle"]
        v = e.get("ratios_vs_testpmd", {}).get(idle + "/keepalive")
        if v:
            bullets.append("end to end on the namespace rig (wrk, nginx): fnat_lb at %s of dpdk-testpmd io-forward's "
                           "request rate" % fmt_ratio(v))
    met = sum(1 for t in tgts if t.met)
    lines += ["- " + b for b in bullets]
    lines += ["", "%d of %d issue targets met on this machine; see the report's headline table." % (met, len(tgts))]
    return "\n".join(lines)


def write_report(data, out_path, plots):
    run = data.run or {}
    tgts = targets(data)
    md = ["# fnat benchmarks", "",
          "Generated by `scripts/bench_report.py` from docs/bench/*.json; do not edit by hand.", ""]
    if run.get("git", {}).get("dirty"):
        md += ["> **Not from a committed tree** (`scripts/bench.sh --allow-dirty`): commit %s had uncommitted "
               "changes when these figures were measured, so no commit reproduces them. Quote none of them."
               % run["git"].get("commit", "?")[:12], ""]
    if run.get("quick"):
        md += ["> **Quick run** (`scripts/bench.sh --quick`: 1 repetition, min_time %.2f s, 3-second wrk runs): "
               "these figures only check that the pipeline works. Quote only a full run." % run.get("min_time_s", 0),
               ""]
    if run.get("filter"):
        md += ["> Run with `--filter %s`: suites outside the filter show their previous results." % run["filter"], ""]
    loads = [c.get("load_avg", [0])[0] for c in data.files.values() if c.get("load_avg")]
    if loads and max(loads) > 1.5:
        md += ["> The machine was busy during the run (1-minute load average up to %.1f on %s CPUs): absolute "
               "figures are noisy; the ratios compare fnat and its peers measured in the same binary run." % (
                   max(loads), next(iter(data.files.values())).get("num_cpus", "?")), ""]
    md += ["## Reproduce", "",
           "```sh", "sudo scripts/bench.sh            # build, every suite, the end-to-end figure, this report",
           "sudo scripts/bench.sh --quick    # the same in a few minutes, to try the pipeline",
           "scripts/bench_pmd.sh             # the real PMD path: fnat's worker loop beside dpdk-testpmd io/macswap",
           "```", ""]
    bins = run.get("binaries", [])
    if bins:
        md += ["This report came from `%s` (%s s in all). Each suite ran as:" % (run.get("command", "scripts/bench.sh"),
                                                                              run.get("seconds", "?")), "", "```sh"]
        md += [b["command"] for b in bins]
        md += ["```", ""]
    md += ["## Machine", "", machine_section(data), "",
           "## Headline: the issues' targets", "",
           table(["issue", "target", "measured", "verdict"], [[t.issue, t.what, t.measured, verdict(t.met)] for t in tgts],
                 numeric=False),
           "", "Ratios are peer / fnat of the median cost per item (above 1: fnat faster); *worst* is the case "
               "closest to failing.", ""]
    if plots:
        md += ["## Plots", ""]
        md += ["![%s](bench/%s)" % (alt, os.path.basename(p)) for p, alt in plots]
        md.append("")
    md += ["## Suites", "",
           "Median over the repetitions of each benchmark's cost per item (see each suite's line for what an item "
           "is). Names are `<suite>/<impl>/<case>`; the JSON files in docs/bench/ hold every figure and the "
           "repetitions' spread.", ""]
    for s in data.suites():
        md += [suite_section(data, s), ""]
    md += [pmd_section(data), "", e2e_section(data), "", scaling_section(data), ""]
    open(out_path, "w").write("\n".join(md))
    return tgts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--dir", default=os.path.join(here, "..", "docs", "bench"))
    ap.add_argument("--out", default=os.path.join(here, "..", "docs", "BENCHMARKS.md"))
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args()
    data = Data(a.dir)
    if not data.results and not data.e2e:
        print("bench_report: no benchmark JSON in %s (run scripts/bench.sh)" % a.dir, file=sys.stderr)
        return 1
    plots = []
    if not a.no_plots:
        if not shutil.which("gnuplot"):
            print("bench_report: gnuplot is not installed (apt-get install gnuplot-nox): no plots", file=sys.stderr)
        else:
            p = os.path.join(a.dir, "sa_pool_fetch_release.png")
            if plot_sa_pool(data, p):
                plots.append((p, "sa_pool fetch+release cost vs occupancy"))
            p = os.path.join(a.dir, "conn_lookup.png")
            if plot_conn_lookup(data, p):
                plots.append((p, "conn lookup cost vs table size"))
    tgts = write_report(data, a.out, plots)
    met = sum(1 for t in tgts if t.met)
    print("bench_report: wrote %s (%d plots); targets met: %d of %d" % (a.out, len(plots), met, len(tgts)))
    for t in tgts:
        print("  %-9s %s %s: %s" % (verdict(t.met).strip("*"), t.issue, t.what, t.measured))
    print("\nREADME section (for the lead):\n")
    print(readme_lines(data, tgts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
