// SPDX-License-Identifier: BSD-3-Clause
// sa_pool benchmarks: fnat's ring + bitmap buckets against DPVS's sa_entry lists and a Linux-style
// random probe, all in this binary (EAL is started by bench/support/bench_eal.cpp).
//
//   sa_pool_fetch_release/<impl>/occupancy:{0,50,90,99}
//       steady-state churn in one bucket (one real server) of lcore 0 of an 8-lcore plan, ports
//       1025..65535 (8063 ports per bucket), `occupancy` percent of them in use: each iteration fetches
//       one port and releases one chosen uniformly among those in use (the one just fetched included),
//       as connections end in random order. The harness (RNG, in-use array, swap) is one template
//       shared by all impls. A warm-up of 8 churns per port runs before timing so that every impl is in
//       its steady state (DPVS's lists scrambled).
//   sa_pool_build/<impl>/lcores:{1,8}
//       building the pool of one (LIP, lcore): 16 buckets, full range. Counters: bytes_per_entry (pool
//       bytes / (buckets x ports)), bytes_per_lip (the pools of all lcores of one LIP).
// Both fnat and dpvs take their memory from rte_malloc (fnat through its Allocator parameter), as a
// DPDK application would, so the figures compare algorithms, not page faults.
//
// impls:
//   fnat          fnat::sa_pool<hashed_buckets, rte_allocator>
//   dpvs          DPVS's algorithm re-implemented here from its description: per bucket an array of
//                 40-byte sa_entry {list links, 16-byte address, port, flags} indexed by port >> shift,
//                 doubly linked free and used lists; fetch = first free entry moved to the used tail;
//                 release = entry by index, check the used flag, move to the free tail; bucket =
//                 (low 16 address bits + port) % 16; build = loop over low..high testing the class mask,
//                 once per bucket.
//   random_probe  the Linux ephemeral-port way: a random start, then probe an in-use bitmap (over the
//                 plan's dense port numbering, 64 ports per word) for the lcore's next free port.

#include <benchmark/benchmark.h>
#include <rte_malloc.h>

#include <fnat/core/port_plan.hpp>
#include <fnat/core/sa_pool.hpp>

#include "support/dpvs_sa_pool.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace {

using fnat::endpoint;
using fnat::errc;
using fnat::port_plan;
using fnat::sa_fetch_result;

// ---- common pieces ----------------------------------------------------------------------------

/// A standard Allocator over rte_malloc: fnat's pools put their block in DPDK memory through it.
template <class T>
struct rte_allocator {
  using value_type = T;
  rte_allocator() noexcept = default;
  template <class U>
  rte_allocator(const rte_allocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(std::size_t n) {
    void* p = rte_malloc("fnat_sa_pool", n * sizeof(T), std::max<std::size_t>(alignof(T), 64));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { rte_free(p); }
  template <class U>
  friend bool operator==(const rte_allocator&, const rte_allocator<U>&) noexcept {
    return true;
  }
};

port_plan make_plan(std::size_t lcores) {
  std::vector<fnat::lcore_queue> v;
  for (std::size_t i = 0; i < lcores; ++i) v.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
  auto p = port_plan::make({.lcores = v});
  if (!p) {
    std::fprintf(stderr, "%s\n", p.err().what().c_str());
    std::abort();
  }
  return std::move(*p);
}

const fnat::inet_addr bench_lip = fnat::ipv4_addr::from_host((198u << 24) | (18u << 16) | (2u << 8) | 100u);
const endpoint bench_rs{fnat::ipv4_addr::from_host((198u << 24) | (18u << 16) | (2u << 8) | 1u), 80};
constexpr std::size_t bench_buckets = 16;

/// The harness's RNG (xorshift64*), the same for every impl.
struct harness_rng {
  std::uint64_t s = 0x9e3779b97f4a7c15ULL;
  std::uint32_t below(std::uint32_t n) noexcept {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const std::uint64_t r = s * 0x2545f4914f6cdd1dULL;
    return static_cast<std::uint32_t>((static_cast<unsigned __int128>(r) * n) >> 64);
  }
};

// ---- fnat -------------------------------------------------------------------------------------

using fnat_pool = fnat::sa_pool<fnat::hashed_buckets, rte_allocator<std::byte>>;

fnat_pool make_fnat_pool(const port_plan& plan, std::size_t index) {
  auto policy = fnat::hashed_buckets::make(plan, index, {.buckets = bench_buckets});
  auto pool = fnat_pool::make(bench_lip, std::move(*policy));
  if (!pool) {
    std::fprintf(stderr, "%s\n", pool.err().what().c_str());
    std::abort();
  }
  return std::move(*pool);
}

struct fnat_impl {
  fnat_pool pool;
  explicit fnat_impl(const port_plan& plan) : pool(make_fnat_pool(plan, 0)) {}
  sa_fetch_result fetch(const endpoint& d) noexcept { return pool.fetch(d); }
  errc release(const endpoint& d, std::uint16_t port) noexcept { return pool.release(d, port); }
  std::uint32_t capacity() const noexcept { return pool.bucket_stats(pool.bucket_of(bench_rs)).capacity; }
};

// ---- dpvs: DPVS's sa_pool, re-implemented from its description (support/dpvs_sa_pool.hpp) --------

namespace dpvs = fnat::bench::dpvs;

struct dpvs_impl {
  dpvs::sa_pool pool;
  std::uint32_t cap;
  explicit dpvs_impl(const port_plan& plan)
      : pool(bench_lip, plan.port_low(), plan.port_high(), bench_buckets, dpvs::flow_of(plan, 0)),
        cap(pool.free_count(bench_rs)) {}
  sa_fetch_result fetch(const endpoint& d) noexcept { return pool.fetch(d); }
  errc release(const endpoint& d, std::uint16_t port) noexcept { return pool.release(d, port); }
  std::uint32_t capacity() const noexcept { return cap; }
};

// ---- random_probe: the Linux ephemeral-port way ------------------------------------------------

struct random_probe_impl {
  std::vector<std::uint64_t> bits;       // in use, over the plan's dense numbering of the lcore
  std::vector<std::uint16_t> port_of;    // dense index -> port
  std::uint32_t dense = 0, ports = 0, used = 0;
  port_plan plan;
  std::uint64_t rng = 0x2545f4914f6cdd1dULL;

  explicit random_probe_impl(const port_plan& p) : plan(p) {
    dense = plan.dense_size(0);
    bits.assign((dense + 63) / 64, ~std::uint64_t{0});  // dense indices outside the range stay "in use"
    port_of.assign(dense, 0);
    plan.for_each_port(0, [&](std::uint16_t port) {
      const std::uint32_t d = plan.dense_index(port);
      bits[d >> 6] &= ~(std::uint64_t{1} << (d & 63));
      port_of[d] = port;
      ++ports;
    });
  }
  sa_fetch_result fetch(const endpoint&) noexcept {
    if (used == ports) return {errc::exhausted, 0};
    // A random start (splitmix64), then the first free port at or after it, wrapping.
    std::uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const auto start = static_cast<std::uint32_t>((static_cast<unsigned __int128>(z) * dense) >> 64);
    std::uint32_t w = start >> 6;
    std::uint64_t free_bits = ~bits[w] & (~std::uint64_t{0} << (start & 63));
    const std::uint32_t words = static_cast<std::uint32_t>(bits.size());
    while (free_bits == 0) {
      if (++w == words) w = 0;
      free_bits = ~bits[w];
    }
    const std::uint32_t d = (w << 6) | static_cast<std::uint32_t>(std::countr_zero(free_bits));
    bits[w] |= std::uint64_t{1} << (d & 63);
    ++used;
    return {errc::ok, port_of[d]};
  }
  errc release(const endpoint&, std::uint16_t port) noexcept {
    if (plan.class_owner(port) != 0 || !plan.in_range(port)) return errc::foreign;
    const std::uint32_t d = plan.dense_index(port);
    const std::uint64_t bit = std::uint64_t{1} << (d & 63);
    if ((bits[d >> 6] & bit) == 0) return errc::not_in_use;
    bits[d >> 6] &= ~bit;
    --used;
    return errc::ok;
  }
  std::uint32_t capacity() const noexcept { return ports; }
};

// ---- sa_pool_fetch_release ------------------------------------------------------------------------

constexpr std::size_t churn_lcores = 8;

template <class Impl>
void bm_fetch_release(benchmark::State& state) {
  const port_plan plan = make_plan(churn_lcores);
  Impl impl(plan);
  const std::uint32_t cap = impl.capacity();
  const auto n_used = static_cast<std::uint32_t>(static_cast<std::uint64_t>(cap) * state.range(0) / 100);
  std::vector<std::uint16_t> in_use(n_used + 1);
  std::uint64_t failures = 0;
  for (std::uint32_t i = 0; i < n_used; ++i) {
    const auto r = impl.fetch(bench_rs);
    failures += r.status != errc::ok;
    in_use[i] = r.port;
  }
  harness_rng rng;
  // One churn step, identical for every impl: fetch, then release a port chosen among those in use.
  auto step = [&]() {
    const sa_fetch_result r = impl.fetch(bench_rs);
    failures += r.status != errc::ok;
    in_use[n_used] = r.port;
    const std::uint32_t j = rng.below(n_used + 1);
    const std::uint16_t victim = in_use[j];
    in_use[j] = in_use[n_used];
    failures += impl.release(bench_rs, victim) != errc::ok;
  };
  for (std::uint32_t i = 0; i < 8 * cap; ++i) step();  // warm-up into the steady state
  for (auto _ : state) step();
  benchmark::DoNotOptimize(std::as_const(failures));
  for (std::uint32_t i = 0; i < n_used; ++i) failures += impl.release(bench_rs, in_use[i]) != errc::ok;
  if (failures != 0) state.SkipWithError("a fetch or release failed: the impl is broken");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetLabel("8 lcores, 16 buckets, " + std::to_string(cap) + " ports per bucket, " + std::to_string(n_used) +
                 " in use");
}

// ---- sa_pool_build ----------------------------------------------------------------------------

double bytes_per_entry(std::size_t pool_bytes, const port_plan& plan) {
  return static_cast<double>(pool_bytes) / static_cast<double>(bench_buckets * plan.port_count(0));
}

void bm_build_fnat(benchmark::State& state) {
  const port_plan plan = make_plan(static_cast<std::size_t>(state.range(0)));
  auto policy = fnat::hashed_buckets::make(plan, 0, {.buckets = bench_buckets});  // per lcore, shared by its LIPs
  std::size_t per_lip = 0;
  for (std::size_t i = 0; i < plan.size(); ++i) per_lip += make_fnat_pool(plan, i).memory_bytes();
  std::size_t pool_bytes = 0;
  for (auto _ : state) {
    auto pool = fnat_pool::make(bench_lip, *policy);
    if (!pool) {
      state.SkipWithError(pool.err().what().c_str());
      break;
    }
    pool_bytes = pool->memory_bytes();
    benchmark::DoNotOptimize(std::as_const(pool_bytes));
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_entry"] = bytes_per_entry(pool_bytes, plan);
  state.counters["bytes_per_lip"] = static_cast<double>(per_lip);
}

void bm_build_dpvs(benchmark::State& state) {
  const port_plan plan = make_plan(static_cast<std::size_t>(state.range(0)));
  std::size_t per_lip = 0;
  for (std::size_t i = 0; i < plan.size(); ++i)
    per_lip += dpvs::sa_pool(bench_lip, plan.port_low(), plan.port_high(), bench_buckets, dpvs::flow_of(plan, i))
                   .memory_bytes();
  std::size_t pool_bytes = 0;
  for (auto _ : state) {
    dpvs::sa_pool pool(bench_lip, plan.port_low(), plan.port_high(), bench_buckets, dpvs::flow_of(plan, 0));
    pool_bytes = pool.memory_bytes();
    benchmark::DoNotOptimize(std::as_const(pool_bytes));
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_entry"] = bytes_per_entry(pool_bytes, plan);
  state.counters["bytes_per_lip"] = static_cast<double>(per_lip);
}

void occupancies(benchmark::internal::Benchmark* b) {
  b->ArgName("occupancy");
  for (int occ : {0, 50, 90, 99}) b->Arg(occ);
}
void lcore_counts(benchmark::internal::Benchmark* b) {
  b->ArgName("lcores")->Unit(benchmark::kMicrosecond);
  for (int n : {1, 8}) b->Arg(n);
}

BENCHMARK(bm_fetch_release<fnat_impl>)->Name("sa_pool_fetch_release/fnat")->Apply(occupancies);
BENCHMARK(bm_fetch_release<dpvs_impl>)->Name("sa_pool_fetch_release/dpvs")->Apply(occupancies);
BENCHMARK(bm_fetch_release<random_probe_impl>)->Name("sa_pool_fetch_release/random_probe")->Apply(occupancies);
BENCHMARK(bm_build_fnat)->Name("sa_pool_build/fnat")->Apply(lcore_counts);
BENCHMARK(bm_build_dpvs)->Name("sa_pool_build/dpvs")->Apply(lcore_counts);

}  // namespace
