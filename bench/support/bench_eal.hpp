// SPDX-License-Identifier: BSD-3-Clause
// Shared main of every benchmark binary: starts EAL before Google Benchmark runs, on 2 MiB hugepages
// when the machine has free ones (--in-memory), else with --no-huge, and records which in the
// report's context ("fnat_eal_memory") so every figure says what memory it ran on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fnat::bench {
/// "hugepages" or "no-huge": what EAL runs on in this process.
const char* eal_memory_kind() noexcept;

/// The data caches of CPU 0 in bytes (0 where unknown): sysfs's cache/index*/ first, else
/// sysconf(_SC_LEVELn_...). Also written to every JSON's context (fnat_cache_l1d, _l2, _l3) so that
/// each report states the caches its figures depend on.
struct cache_sizes {
  std::size_t l1d = 0, l2 = 0, l3 = 0;
};
cache_sizes caches() noexcept;

/// Bytes of DPDK memory this process may plan to use: the free 2 MiB pages at start, or the
/// --no-huge -m budget.
std::size_t eal_memory_bytes() noexcept;

/// Table sizes for the cache regimes (issue 21): `per_conn` is the bytes one conn of the measured
/// table occupies. inside: the largest power of two whose tables take at most a quarter of the L3;
/// beyond: the smallest power of two whose tables take at least 4x the L3, capped at `cap` (memory).
/// With an unknown L3 (0), 32 MiB is assumed.
std::uint32_t conns_inside_l3(std::size_t per_conn) noexcept;
std::uint32_t conns_beyond_l3(std::size_t per_conn, std::uint32_t cap) noexcept;
}  // namespace fnat::bench
