// SPDX-License-Identifier: BSD-3-Clause
// RSS-aware steering and redirect, fnat against its peers in one binary:
//   toeplitz_hash/{fnat,fnat_table,rte_softrss,rte_thash_gfni}/{ipv4,ipv6}
//       one Toeplitz hash of a 12- or 36-byte tuple; inputs in each impl's own form, prepared ahead
//       (network-order bytes; CPU-order words for rte_softrss); all impls cross-checked first.
//   rss_port_fetch/{fnat,rte_thash_adjust_tuple}/{ipv4,ipv6}/reta:512/fill:{round_robin,periodic}/
//                  lcores:{4,6}/occupancy:{0,75}
//       the fetch alone: one local port whose reply lands on lcore 1's queue, for a random
//       destination (4096 cycled). Timed in stretches of 512 fetches (manual time: two steady_clock
//       reads per stretch, identical for both impls); the stretch's ports are released between
//       stretches, off the clock. Time is per stretch; ns_per_fetch and items_per_second are per fetch.
//       fnat: sa_pool<rss_buckets>::fetch on a pool bound to its LIP. Peer: DPDK's predictable RSS,
//       rte_thash_adjust_tuple on the lport bits (up to 128 attempts) with a checker callback over an
//       in-use bitmap, then marking the port in use: the operation it replaces. Occupancy: that share
//       of each fnat bucket's ports is held; for the peer, that share of the port range is marked in
//       use, so its attempts get refused and it rehashes (fnat never retries). fill: the RETA,
//       round robin over the 512 entries (DPVS) or reta_periodic (period 128 for 6 queues, 4 for 4).
//   rss_port_fetch_release/<same impls and cases>
//       one fetch and its release per iteration (the pair a connection costs over its life).
//   rss_port_build/{fnat,rte_thash_adjust_tuple}/{ipv4,ipv6}/reta:512/fill:{round_robin,periodic}/lcores:{4,6}
//       what the fetch above costs before the first packet: per iteration, fnat builds the
//       rss_buckets policy of lcore 1's queue (its tables from key and RETA) and the sa_pool of one
//       LIP bound to it, then frees both; the peer creates the rte_thash context with its lport
//       helper and the in-use bitmap, then frees them. Counters: pool_bytes, the memory of one
//       (LIP, lcore) (fnat: sa_pool::memory_bytes(), the policy's shared tables not counted; peer:
//       the 8 KiB bitmap, rte_thash's context not counted), and bytes_per_lip = lcores x pool_bytes.
//       rss_port_fetch/fnat's label and counters carry the same pool size.
//   redirect_handoff/{fnat,dpvs}/conns:64K/burst:{1,32}
//       per packet: classify a reply that belongs to another lcore, put it on the owner's ring, and
//       (same thread) dequeue it there. fnat: owner from the lport (port plan), batched MP enqueue.
//       dpvs: DPVS's scheme re-implemented: a global 2^22-bucket table of connection tuples with a
//       spinlock per bucket, looked up per packet, then one SP enqueue per packet on the ring of the
//       (owner, sender) pair. Single thread: the cost of the code path, not of cross-core transfer.
#define ALLOW_EXPERIMENTAL_API 1
#define ALLOW_INTERNAL_API 1

#include <benchmark/benchmark.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_spinlock.h>
#include <rte_tcp.h>
#include <rte_thash.h>

#include <array>
#include <bit>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/hash.hpp"
#include "fnat/core/port_plan.hpp"
#include "fnat/core/reta.hpp"
#include "fnat/core/rss_ports.hpp"
#include "fnat/core/sa_pool.hpp"
#include "fnat/core/toeplitz.hpp"
#include "fnat/dpdk/redirect.hpp"

namespace {

constexpr std::size_t n_inputs = 1024;  // cycled through; fits L1 with the tables

// ---- toeplitz_hash --------------------------------------------------------------------------------

// GCC 12 reports the `_mm*_undefined_*()` inside its own AVX-512 cast/extract intrinsics as
// uninitialised once DPDK's rte_thash_gfni inlines them here (GCC PR 105593); the code is fine.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

struct hash_inputs {
  std::size_t len = 0;
  std::vector<std::array<std::uint8_t, 36>> bytes;  // network order, first `len` used
  std::vector<std::array<std::uint32_t, 9>> words;  // CPU-order words for rte_softrss
  std::vector<std::uint32_t> expected;
};

const hash_inputs& inputs(std::size_t len) {
  static hash_inputs v4, v6;
  hash_inputs& h = len == 12 ? v4 : v6;
  if (h.len == 0) {
    std::mt19937_64 rng(len);
    h.len = len;
    for (std::size_t i = 0; i < n_inputs; ++i) {
      std::array<std::uint8_t, 36> b{};
      for (std::size_t k = 0; k < len; ++k) b[k] = static_cast<std::uint8_t>(rng());
      std::array<std::uint32_t, 9> w{};
      for (std::size_t k = 0; k < len / 4; ++k) {
        std::uint32_t be;
        std::memcpy(&be, b.data() + 4 * k, 4);
        w[k] = rte_be_to_cpu_32(be);
      }
      h.bytes.push_back(b);
      h.words.push_back(w);
      h.expected.push_back(fnat::toeplitz_hash_reference(fnat::rss_key_microsoft, std::span(b.data(), len)));
    }
  }
  return h;
}

std::array<std::uint8_t, 40>& key() {
  static std::array<std::uint8_t, 40> k = fnat::rss_key_microsoft;
  return k;
}

template <class Hash>
void run_hash(benchmark::State& state, std::size_t len, Hash&& hash) {
  const hash_inputs& in = inputs(len);
  for (std::size_t i = 0; i < n_inputs; ++i)
    if (hash(in, i) != in.expected[i]) {
      state.SkipWithError("hash differs from the reference Toeplitz hash");
      return;
    }
  std::uint32_t acc = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    acc ^= hash(in, i);
    i = (i + 1) & (n_inputs - 1);
  }
  benchmark::DoNotOptimize(std::as_const(acc));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// fnat's hash_v4 / hash_v6 through Toeplitz type T (the dispatching toeplitz or the table path).
template <class T>
void toeplitz_fnat_run(benchmark::State& state, std::size_t len) {
  auto tz = T::make(key());
  if (!tz) return state.SkipWithError(tz.err().what().c_str());
  if (len == 12)
    run_hash(state, len, [&](const hash_inputs& in, std::size_t i) {
      return tz->hash_v4(std::span<const std::uint8_t, 12>(in.bytes[i].data(), 12));
    });
  else
    run_hash(state, len, [&](const hash_inputs& in, std::size_t i) {
      return tz->hash_v6(std::span<const std::uint8_t, 36>(in.bytes[i].data(), 36));
    });
}

void toeplitz_fnat(benchmark::State& state, std::size_t len) {
  state.SetLabel(std::string("path:") + std::string(fnat::to_string(fnat::toeplitz::path)));
  toeplitz_fnat_run<fnat::toeplitz>(state, len);
}

void toeplitz_fnat_table(benchmark::State& state, std::size_t len) { toeplitz_fnat_run<fnat::toeplitz_table>(state, len); }

void toeplitz_rte_softrss(benchmark::State& state, std::size_t len) {
  const std::uint8_t* k = key().data();
  const auto words = static_cast<std::uint32_t>(len / 4);
  run_hash(state, len, [&](const hash_inputs& in, std::size_t i) {
    return rte_softrss(const_cast<std::uint32_t*>(in.words[i].data()), words, k);
  });
}

void toeplitz_rte_thash_gfni(benchmark::State& state, std::size_t len) {
#if defined(RTE_THASH_GFNI_DEFINED)
  if (!fnat::toeplitz_gfni_supported()) return state.SkipWithError("CPU lacks GFNI/AVX-512");
  std::vector<std::uint64_t> m(key().size());
  rte_thash_complete_matrix(m.data(), key().data(), static_cast<int>(key().size()));
  run_hash(state, len, [&](const hash_inputs& in, std::size_t i) {
    return rte_thash_gfni(m.data(), in.bytes[i].data(), static_cast<int>(len));
  });
#else
  (void)len;
  state.SkipWithError("rte_thash_gfni is not compiled in (needs -march with GFNI + AVX512F)");
#endif
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// ---- rss_port_fetch, rss_port_fetch_release ---------------------------------------------------------

// Fetches per timed stretch in rss_port_fetch: the releases run between stretches, off the clock.
// Each stretch is timed by two steady_clock reads (~20 ns together, 0.04 ns per fetch), the same
// harness for both impls. 512 fetches move the peer's occupancy by at most 0.8 points.
constexpr std::size_t fetch_batch = 512;
constexpr std::size_t n_dests = 4096;

// The counters of an rss_port_fetch run: share of fetches that failed, and wall-clock ns per fetch
// over the timed stretches (the manual time Google Benchmark reports is per stretch of fetch_batch).
void report_fetches(benchmark::State& state, std::uint64_t failed, double seconds) {
  const auto fetches = static_cast<double>(state.iterations()) * fetch_batch;
  state.counters["failed"] = benchmark::Counter(static_cast<double>(failed) / fetches);
  state.counters["ns_per_fetch"] = benchmark::Counter(seconds * 1e9 / fetches);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * fetch_batch));
}

struct fetch_case {
  fnat::ip_family fam = fnat::ip_family::v4;
  std::size_t rsize = 512;
  std::size_t lcores = 4;
  fnat::reta_fill fill = fnat::reta_fill::round_robin;
  unsigned occupancy = 0;
};

struct fetch_setup {
  std::vector<std::uint16_t> reta;
  std::uint16_t queue = 1;
  fnat::inet_addr lip;
  std::vector<fnat::endpoint> dests;
};

// A real server in 198.19.0.0/16 or 2001:2:0:1::/64 (RFC 2544 ranges) and a port.
fnat::endpoint random_dest(fnat::ip_family fam, std::mt19937_64& rng) {
  if (fam == fnat::ip_family::v4)
    return {fnat::ipv4_addr::from_host(0xc6130000u | static_cast<std::uint32_t>(rng() & 0xffff)),
            static_cast<std::uint16_t>(1 + rng() % 65535)};
  fnat::ipv6_addr a = *fnat::ipv6_addr::parse("2001:2:0:1::");
  for (std::size_t k = 8; k < 16; ++k) a.bytes[k] = static_cast<std::uint8_t>(rng());
  return {a, static_cast<std::uint16_t>(1 + rng() % 65535)};
}

// The RETA of the case (queues 0 .. lcores - 1, fnat's fills), the LIP and 4096 random destinations.
fetch_setup make_fetch_setup(const fetch_case& c) {
  fetch_setup s;
  std::vector<std::uint16_t> queues(c.lcores);
  for (std::size_t i = 0; i < c.lcores; ++i) queues[i] = static_cast<std::uint16_t>(i);
  s.reta = c.fill == fnat::reta_fill::periodic ? *fnat::reta_periodic(queues, c.rsize)
                                               : *fnat::reta_round_robin(queues, c.rsize);
  std::mt19937_64 rng(c.rsize * 131 + c.lcores);
  const bool v4 = c.fam == fnat::ip_family::v4;
  s.lip = v4 ? fnat::inet_addr(*fnat::ipv4_addr::parse("198.18.0.1")) : fnat::inet_addr(*fnat::ipv6_addr::parse("2001:2::1"));
  for (std::size_t i = 0; i < n_dests; ++i) s.dests.push_back(random_dest(c.fam, rng));
  return s;
}

// fnat: sa_pool<rss_buckets> of lcore 1's queue on the LIP, checked against the bit-serial hash, with
// `occupancy` percent of every bucket's ports fetched (for a destination of that bucket) and held.
struct fnat_fetch_env {
  fetch_setup s;
  std::optional<fnat::rss_buckets> policy;
  std::optional<fnat::sa_pool<fnat::rss_buckets>> pool;
  std::vector<std::pair<fnat::endpoint, std::uint16_t>> held;
};

std::string make_fnat_env(const fetch_case& c, fnat_fetch_env& e) {
  e.s = make_fetch_setup(c);
  const fetch_setup& s = e.s;
  auto policy = fnat::rss_buckets::make({.family = c.fam, .key = key(), .reta = s.reta, .queue = s.queue});
  if (!policy) return policy.err().what();
  e.policy = std::move(*policy);
  auto pool = fnat::sa_pool<fnat::rss_buckets>::make(s.lip, e.policy->bound_to(s.lip));
  if (!pool) return pool.err().what();
  e.pool.emplace(std::move(*pool));
  // The invariant, with the bit-serial hash, before timing anything.
  for (std::size_t i = 0; i < 256; ++i) {
    const auto& d = s.dests[i];
    const auto r = e.pool->fetch(d);
    const std::uint32_t h =
        c.fam == fnat::ip_family::v4
            ? fnat::toeplitz_hash_reference(key(), fnat::rss_input_v4(d.addr.v4(), s.lip.v4(), fnat::hton16(d.port),
                                                                        fnat::hton16(r.port)))
            : fnat::toeplitz_hash_reference(key(), fnat::rss_input_v6(d.addr.v6(), s.lip.v6(), fnat::hton16(d.port),
                                                                        fnat::hton16(r.port)));
    if (r.status != fnat::errc::ok || s.reta[h & (c.rsize - 1)] != s.queue)
      return "a fetched port does not reach the lcore's queue";
    (void)e.pool->release(d, r.port);
  }
  if (c.occupancy != 0) {
    std::vector<std::optional<fnat::endpoint>> rep_of(e.pool->bucket_count());
    std::size_t found = 0;
    std::mt19937_64 rng(77);
    while (found < rep_of.size()) {
      const fnat::endpoint d = random_dest(c.fam, rng);
      auto& slot = rep_of[e.pool->bucket_of(d)];
      if (!slot) {
        slot = d;
        ++found;
      }
    }
    for (std::size_t b = 0; b < rep_of.size(); ++b) {
      const std::uint32_t hold = e.policy->port_count(b) * c.occupancy / 100;
      for (std::uint32_t k = 0; k < hold; ++k) e.held.emplace_back(*rep_of[b], e.pool->fetch(*rep_of[b]).port);
    }
  }
  return {};
}

std::string fnat_label(const fnat_fetch_env& e) {
  return "buckets:" + std::to_string(e.policy->bucket_count()) + " pool_KiB:" +
         std::to_string(e.pool->memory_bytes() / 1024);
}

// rss_port_fetch: batches of fetch_batch fetches timed (manual time), released off the clock.
void rss_fetch_fnat(benchmark::State& state, fetch_case c) {
  auto e = std::make_unique<fnat_fetch_env>();
  if (auto why = make_fnat_env(c, *e); !why.empty()) return state.SkipWithError(why.c_str());
  state.SetLabel(fnat_label(*e));
  state.counters["pool_bytes"] = static_cast<double>(e->pool->memory_bytes());
  auto& pool = *e->pool;
  const fnat::endpoint* dests = e->s.dests.data();
  std::array<std::uint16_t, fetch_batch> got{};
  std::size_t i = 0;
  std::uint64_t failed = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < fetch_batch; ++k) {
      const auto r = pool.fetch(dests[(i + k) & (n_dests - 1)]);
      got[k] = r.port;
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(dt);
    seconds += dt;
    for (std::size_t k = 0; k < fetch_batch; ++k) {
      if (got[k] == 0) {
        ++failed;
        continue;
      }
      (void)pool.release(dests[(i + k) & (n_dests - 1)], got[k]);
    }
    i += fetch_batch;
  }
  report_fetches(state, failed, seconds);
}

// rss_port_fetch_release: one fetch and its release per iteration.
void rss_fetch_release_fnat(benchmark::State& state, fetch_case c) {
  auto e = std::make_unique<fnat_fetch_env>();
  if (auto why = make_fnat_env(c, *e); !why.empty()) return state.SkipWithError(why.c_str());
  state.SetLabel(fnat_label(*e));
  auto& pool = *e->pool;
  const fnat::endpoint* dests = e->s.dests.data();
  std::size_t i = 0;
  std::uint32_t acc = 0;
  for (auto _ : state) {
    const fnat::endpoint& d = dests[i];
    const auto r = pool.fetch(d);
    acc += r.port;
    (void)pool.release(d, r.port);
    i = (i + 1) & (n_dests - 1);
  }
  benchmark::DoNotOptimize(std::as_const(acc));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// DPDK's predictable RSS: rte_thash_adjust_tuple on the lport bits with a checker callback over an
// in-use bitmap (occupancy: that share of the ports is in use, towards this destination as far as
// the checker can tell, so an adjusted tuple may be refused and the next attempt rehashes), then the
// chosen port is marked in use; its release clears the bit.
struct thash_check_data {
  std::bitset<65536> in_use;
  std::size_t lport_off = 0;
};

int thash_check(void* userdata, std::uint8_t* tuple) {
  auto* c = static_cast<thash_check_data*>(userdata);
  const std::uint16_t lport = static_cast<std::uint16_t>(tuple[c->lport_off] << 8 | tuple[c->lport_off + 1]);
  return lport >= 1025 && !c->in_use.test(lport) ? 1 : 0;
}

// rss_port_build/fnat: the policy of the case's queue and one LIP's pool over it, built and freed.
void rss_build_fnat(benchmark::State& state, fetch_case c) {
  const fetch_setup s = make_fetch_setup(c);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto policy = fnat::rss_buckets::make({.family = c.fam, .key = key(), .reta = s.reta, .queue = s.queue});
    if (!policy) return state.SkipWithError(policy.err().what().c_str());
    auto pool = fnat::sa_pool<fnat::rss_buckets>::make(s.lip, policy->bound_to(s.lip));
    if (!pool) return state.SkipWithError(pool.err().what().c_str());
    bytes = pool->memory_bytes();
    benchmark::DoNotOptimize(std::as_const(bytes));
  }
  state.counters["pool_bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_lip"] = static_cast<double>(bytes * c.lcores);
}

// rss_port_build/rte_thash_adjust_tuple: the context, its lport helper and the in-use bitmap.
void rss_build_rte_thash(benchmark::State& state, fetch_case c) {
  static int instance = 0;
  const std::string name = "fnat_bench_thash_build_" + std::to_string(instance++);
  for (auto _ : state) {
    auto k = key();
    std::unique_ptr<rte_thash_ctx, void (*)(rte_thash_ctx*)> ctx(
        rte_thash_init_ctx(name.c_str(), static_cast<std::uint32_t>(k.size()),
                           static_cast<std::uint32_t>(std::countr_zero(c.rsize)), k.data(), 0),
        rte_thash_free_ctx);
    if (!ctx) return state.SkipWithError("rte_thash_init_ctx failed");
    const std::size_t off = c.fam == fnat::ip_family::v4 ? fnat::rss_input_v4_dport : fnat::rss_input_v6_dport;
    if (rte_thash_add_helper(ctx.get(), "lport", 16, static_cast<std::uint32_t>(8 * off)) != 0)
      return state.SkipWithError("rte_thash_add_helper failed");
    auto check = std::make_unique<thash_check_data>();
    benchmark::DoNotOptimize(std::as_const(check));
  }
  state.counters["pool_bytes"] = static_cast<double>(sizeof(thash_check_data));
  state.counters["bytes_per_lip"] = static_cast<double>(sizeof(thash_check_data) * c.lcores);
}

struct thash_env {
  fetch_setup s;
  std::unique_ptr<rte_thash_ctx, void (*)(rte_thash_ctx*)> ctx{nullptr, rte_thash_free_ctx};
  rte_thash_subtuple_helper* helper = nullptr;
  std::size_t len = 0, off = 0;
  std::vector<std::uint32_t> mine;  // RETA indices of the queue
  std::vector<std::array<std::uint8_t, 36>> tuples;
  std::unique_ptr<thash_check_data> check;
};

std::string make_thash_env(const fetch_case& c, thash_env& e) {
  e.s = make_fetch_setup(c);
  const fetch_setup& s = e.s;
  const bool v4 = c.fam == fnat::ip_family::v4;
  e.len = v4 ? fnat::rss_input_v4_len : fnat::rss_input_v6_len;
  e.off = v4 ? fnat::rss_input_v4_dport : fnat::rss_input_v6_dport;
  static int instance = 0;
  const std::string name = "fnat_bench_thash_" + std::to_string(instance++);
  auto k = key();  // the context rewrites its copy of the key: that is the key the NIC must get
  e.ctx.reset(rte_thash_init_ctx(name.c_str(), static_cast<std::uint32_t>(k.size()),
                                 static_cast<std::uint32_t>(std::countr_zero(c.rsize)), k.data(), 0));
  if (!e.ctx) return "rte_thash_init_ctx: " + std::string(rte_strerror(rte_errno));
  if (rte_thash_add_helper(e.ctx.get(), "lport", 16, static_cast<std::uint32_t>(8 * e.off)) != 0)
    return "rte_thash_add_helper failed";
  e.helper = rte_thash_get_helper(e.ctx.get(), "lport");
  const std::uint8_t* nic_key = rte_thash_get_key(e.ctx.get());
  for (std::uint32_t i = 0; i < c.rsize; ++i)
    if (s.reta[i] == s.queue) e.mine.push_back(i);
  std::mt19937_64 rng(5);
  for (const auto& d : s.dests) {
    std::array<std::uint8_t, 36> t{};
    const std::uint16_t lport = static_cast<std::uint16_t>(1025 + rng() % 64000);
    if (v4) {
      const auto b = fnat::rss_input_v4(d.addr.v4(), s.lip.v4(), fnat::hton16(d.port), fnat::hton16(lport));
      std::copy(b.begin(), b.end(), t.begin());
    } else {
      const auto b = fnat::rss_input_v6(d.addr.v6(), s.lip.v6(), fnat::hton16(d.port), fnat::hton16(lport));
      std::copy(b.begin(), b.end(), t.begin());
    }
    e.tuples.push_back(t);
  }
  e.check = std::make_unique<thash_check_data>();
  e.check->lport_off = e.off;
  // DPDK's answer lands where asked, with the key it rewrote.
  for (std::size_t i = 0; i < 256; ++i) {
    std::array<std::uint8_t, 36> t = e.tuples[i];
    const std::uint32_t want = e.mine[i % e.mine.size()];
    if (rte_thash_adjust_tuple(e.ctx.get(), e.helper, t.data(), static_cast<unsigned>(e.len), want, 8, thash_check,
                               e.check.get()) != 0)
      return "rte_thash_adjust_tuple failed";
    const std::uint32_t h = fnat::toeplitz_hash_reference(std::span(nic_key, k.size()), std::span(t.data(), e.len));
    if ((h & (c.rsize - 1)) != want || s.reta[h & (c.rsize - 1)] != s.queue)
      return "rte_thash_adjust_tuple's tuple does not reach the queue";
  }
  for (std::uint32_t p = 1025; p <= 65535; ++p)
    if (rng() % 100 < c.occupancy) e.check->in_use.set(p);
  return {};
}

// One fetch: the tuple (RS, LIP, rport, any lport) adjusted for a RETA index of the queue, up to 128
// attempts, and the port marked in use. Returns the port, or 0 when every attempt was refused.
inline std::uint16_t thash_fetch(thash_env& e, std::size_t i) noexcept {
  std::array<std::uint8_t, 36> t = e.tuples[i & (n_dests - 1)];
  const std::uint32_t want = e.mine[i % e.mine.size()];
  if (rte_thash_adjust_tuple(e.ctx.get(), e.helper, t.data(), static_cast<unsigned>(e.len), want, 128, thash_check,
                             e.check.get()) != 0)
    return 0;
  const std::uint16_t lport = static_cast<std::uint16_t>(t[e.off] << 8 | t[e.off + 1]);
  e.check->in_use.set(lport);
  return lport;
}

void rss_fetch_rte_thash(benchmark::State& state, fetch_case c) {
  auto e = std::make_unique<thash_env>();
  if (auto why = make_thash_env(c, *e); !why.empty()) return state.SkipWithError(why.c_str());
  std::array<std::uint16_t, fetch_batch> got{};
  std::size_t i = 0;
  std::uint64_t failed = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < fetch_batch; ++k) got[k] = thash_fetch(*e, i + k);
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(dt);
    seconds += dt;
    for (std::size_t k = 0; k < fetch_batch; ++k) {
      if (got[k] == 0)
        ++failed;
      else
        e->check->in_use.reset(got[k]);
    }
    i += fetch_batch;
  }
  report_fetches(state, failed, seconds);
}

void rss_fetch_release_rte_thash(benchmark::State& state, fetch_case c) {
  auto e = std::make_unique<thash_env>();
  if (auto why = make_thash_env(c, *e); !why.empty()) return state.SkipWithError(why.c_str());
  std::size_t i = 0;
  std::uint32_t acc = 0;
  std::uint64_t failed = 0;
  for (auto _ : state) {
    const std::uint16_t lport = thash_fetch(*e, i);
    if (lport != 0) {
      acc += lport;
      e->check->in_use.reset(lport);
    } else {
      ++failed;
    }
    ++i;
  }
  benchmark::DoNotOptimize(std::as_const(acc));
  state.counters["failed"] = benchmark::Counter(static_cast<double>(failed), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// ---- redirect_handoff -----------------------------------------------------------------------------

constexpr std::size_t redirect_lcores = 4;
constexpr std::size_t redirect_conns = 65536;
constexpr std::size_t l4_off = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);

rte_mempool* bench_pool() {
  static rte_mempool* pool = rte_pktmbuf_pool_create("fnat_rss_bench", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  return pool;
}

const fnat::port_plan& redirect_plan() {
  static const fnat::port_plan plan = [] {
    std::vector<fnat::lcore_queue> l;
    for (std::size_t i = 0; i < redirect_lcores; ++i) l.push_back({static_cast<unsigned>(i), static_cast<std::uint16_t>(i)});
    return *fnat::port_plan::make({.lcores = l});
  }();
  return plan;
}

// Replies RS:rport -> LIP:lport of `redirect_conns` connections owned by lcores 1..3 (never by the
// receiving lcore 0); 1024 of them as mbufs.
struct reply_set {
  std::vector<fnat::tuple4> conns;  // reply tuples, network order
  std::vector<rte_mbuf*> pkts;
};

const reply_set& replies() {
  static reply_set r = [] {
    reply_set s;
    std::mt19937_64 rng(9);
    const auto& plan = redirect_plan();
    while (s.conns.size() < redirect_conns) {
      const auto lport = static_cast<std::uint16_t>(1025 + rng() % 64000);
      if (plan.owner_index(lport) == 0) continue;
      const auto rs = fnat::ipv4_addr::from_host(0xc6130000u | static_cast<std::uint32_t>(rng() & 0xffff));
      const auto lip = fnat::ipv4_addr::from_host(0xc6120000u | static_cast<std::uint32_t>(rng() & 0xff));
      s.conns.push_back(fnat::make_tuple(fnat::ipproto::tcp, rs, static_cast<std::uint16_t>(80 + rng() % 4), lip, lport));
    }
    rte_mempool* pool = bench_pool();
    for (std::size_t i = 0; i < n_inputs && pool != nullptr; ++i) {
      const fnat::tuple4& t = s.conns[(i * 61) % redirect_conns];
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, l4_off + sizeof(rte_tcp_hdr)));
      std::memset(p, 0, l4_off + sizeof(rte_tcp_hdr));
      const std::uint16_t type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
      std::memcpy(p + 12, &type, 2);
      p[14] = 0x45;
      p[14 + 9] = IPPROTO_TCP;
      std::memcpy(p + 14 + 12, &t.saddr.be, 4);
      std::memcpy(p + 14 + 16, &t.daddr.be, 4);
      std::memcpy(p + l4_off, &t.sport, 2);
      std::memcpy(p + l4_off + 2, &t.dport, 2);
      s.pkts.push_back(m);
    }
    return s;
  }();
  return r;
}

// Parsing shared by both impls: Ethernet + IPv4 (IHL) + TCP/UDP ports.
inline bool parse_reply(const rte_mbuf* m, fnat::tuple4& t) noexcept {
  const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
  std::uint16_t type;
  std::memcpy(&type, p + 12, 2);
  if (type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return false;
  const std::uint8_t* ip = p + 14;
  const std::size_t ihl = (ip[0] & 0x0fu) * 4u;
  t.proto = ip[9];
  if (t.proto != IPPROTO_TCP && t.proto != IPPROTO_UDP) return false;
  std::memcpy(&t.saddr.be, ip + 12, 4);
  std::memcpy(&t.daddr.be, ip + 16, 4);
  std::memcpy(&t.sport, ip + ihl, 2);
  std::memcpy(&t.dport, ip + ihl + 2, 2);
  return true;
}

void redirect_fnat(benchmark::State& state, unsigned burst) {
  const reply_set& rs = replies();
  if (rs.pkts.size() != n_inputs) return state.SkipWithError("mbuf pool");
  static int instance = 0;
  auto red = fnat::dpdk::redirect::make(redirect_plan(),
                                        {.name = "fb_redir" + std::to_string(instance++), .capacity = 4096, .stage = 32});
  if (!red) return state.SkipWithError(red.err().what().c_str());
  auto lport_of = [](rte_mbuf* m) noexcept -> std::optional<std::uint16_t> {
    fnat::tuple4 t;
    if (!parse_reply(m, t)) return std::nullopt;
    return fnat::ntoh16(t.dport);
  };
  std::array<rte_mbuf*, 64> pkts{}, out{};
  std::size_t i = 0;
  std::uint64_t moved = 0;
  for (auto _ : state) {
    std::memcpy(pkts.data(), rs.pkts.data() + i, burst * sizeof(rte_mbuf*));
    i = (i + burst) & (n_inputs - 1);
    const unsigned kept = red->dispatch(0, pkts.data(), burst, lport_of);
    moved += burst - kept;
    for (std::size_t o = 1; o < redirect_lcores; ++o) moved += red->drain(o, out.data(), 64);
  }
  if (red->total().dropped != 0 || moved != 2 * static_cast<std::uint64_t>(state.iterations()) * burst)
    state.SkipWithError("packets lost or kept on the wrong lcore");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

// DPVS's redirect, re-implemented from its description: a global table of 2^22 buckets, each a
// linked list under its own spinlock, holding every connection's reply tuple and owner; rings per
// (owner, sender) pair, single producer, one enqueue per packet.
class dpvs_redirect {
 public:
  static constexpr std::size_t bits = 22;
  struct entry {
    entry* next = nullptr;
    fnat::tuple4 t;
    unsigned cid = 0;
  };

  dpvs_redirect(const std::vector<fnat::tuple4>& conns, const fnat::port_plan& plan, const std::string& name)
      : heads_(std::size_t{1} << bits, nullptr), locks_(std::size_t{1} << bits), entries_(conns.size()) {
    for (auto& l : locks_) rte_spinlock_init(&l);
    for (std::size_t i = 0; i < conns.size(); ++i) {
      entries_[i].t = conns[i];
      entries_[i].cid = static_cast<unsigned>(plan.owner_index(fnat::ntoh16(conns[i].dport)));
      const std::size_t b = bucket(conns[i]);
      entries_[i].next = heads_[b];
      heads_[b] = &entries_[i];
    }
    for (std::size_t a = 0; a < redirect_lcores; ++a)
      for (std::size_t b = 0; b < redirect_lcores; ++b) {
        if (a == b) continue;
        const std::string n = name + "_" + std::to_string(a) + "_" + std::to_string(b);
        rings_[a][b] = rte_ring_create(n.c_str(), 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
      }
  }
  ~dpvs_redirect() {
    for (auto& row : rings_)
      for (rte_ring* r : row) rte_ring_free(r);
  }
  [[nodiscard]] bool ok() const {
    for (std::size_t a = 0; a < redirect_lcores; ++a)
      for (std::size_t b = 0; b < redirect_lcores; ++b)
        if (a != b && rings_[a][b] == nullptr) return false;
    return true;
  }
  // The owner of a reply, or -1 when the table does not know it.
  int lookup(const fnat::tuple4& t) noexcept {
    const std::size_t b = bucket(t);
    rte_spinlock_lock(&locks_[b]);
    const entry* e = heads_[b];
    while (e != nullptr && !(e->t == t)) e = e->next;
    const int cid = e ? static_cast<int>(e->cid) : -1;
    rte_spinlock_unlock(&locks_[b]);
    return cid;
  }
  rte_ring* ring(std::size_t owner, std::size_t sender) noexcept { return rings_[owner][sender]; }

 private:
  static std::size_t bucket(const fnat::tuple4& t) noexcept {
    return fnat::hash_key(t) & ((std::size_t{1} << bits) - 1);
  }
  std::vector<entry*> heads_;
  std::vector<rte_spinlock_t> locks_;
  std::vector<entry> entries_;
  std::array<std::array<rte_ring*, redirect_lcores>, redirect_lcores> rings_{};
};

void redirect_dpvs(benchmark::State& state, unsigned burst) {
  const reply_set& rs = replies();
  if (rs.pkts.size() != n_inputs) return state.SkipWithError("mbuf pool");
  static int instance = 0;
  auto table = std::make_unique<dpvs_redirect>(rs.conns, redirect_plan(), "fb_dpvs" + std::to_string(instance++));
  if (!table->ok()) return state.SkipWithError("rte_ring_create failed");
  std::array<rte_mbuf*, 64> pkts{}, out{};
  std::size_t i = 0;
  std::uint64_t moved = 0, dropped = 0;
  const unsigned me = 0;
  for (auto _ : state) {
    std::memcpy(pkts.data(), rs.pkts.data() + i, burst * sizeof(rte_mbuf*));
    i = (i + burst) & (n_inputs - 1);
    for (unsigned k = 0; k < burst; ++k) {
      fnat::tuple4 t;
      if (!parse_reply(pkts[k], t)) continue;
      const int cid = table->lookup(t);
      if (cid < 0 || static_cast<unsigned>(cid) == me) continue;
      if (rte_ring_sp_enqueue(table->ring(static_cast<std::size_t>(cid), me), pkts[k]) == 0)
        ++moved;
      else
        ++dropped;
    }
    for (std::size_t o = 1; o < redirect_lcores; ++o)
      moved += rte_ring_sc_dequeue_burst(table->ring(o, me), reinterpret_cast<void**>(out.data()), 64, nullptr);
  }
  if (dropped != 0 || moved != 2 * static_cast<std::uint64_t>(state.iterations()) * burst) state.SkipWithError("packets lost or not redirected");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

// ---- registration ---------------------------------------------------------------------------------

[[maybe_unused]] const bool registered = [] {
  for (std::size_t len : {12u, 36u}) {
    const std::string fam = len == 12 ? "ipv4" : "ipv6";
    benchmark::RegisterBenchmark(("toeplitz_hash/fnat/" + fam).c_str(), toeplitz_fnat, len);
    benchmark::RegisterBenchmark(("toeplitz_hash/fnat_table/" + fam).c_str(), toeplitz_fnat_table, len);
    benchmark::RegisterBenchmark(("toeplitz_hash/rte_softrss/" + fam).c_str(), toeplitz_rte_softrss, len);
    benchmark::RegisterBenchmark(("toeplitz_hash/rte_thash_gfni/" + fam).c_str(), toeplitz_rte_thash_gfni, len);
  }
  for (fnat::ip_family fam : {fnat::ip_family::v4, fnat::ip_family::v6})
    for (fnat::reta_fill fill : {fnat::reta_fill::round_robin, fnat::reta_fill::periodic})
      for (std::size_t lcores : {4u, 6u})
        for (unsigned occupancy : {0u, 75u}) {
          const fetch_case fc{.fam = fam, .rsize = 512, .lcores = lcores, .fill = fill, .occupancy = occupancy};
          const std::string c = std::string(fnat::to_string(fam)) + "/reta:512/fill:" +
                                std::string(fnat::to_string(fill)) + "/lcores:" + std::to_string(lcores) +
                                "/occupancy:" + std::to_string(occupancy);
          benchmark::RegisterBenchmark(("rss_port_fetch/fnat/" + c).c_str(), rss_fetch_fnat, fc)->UseManualTime();
          benchmark::RegisterBenchmark(("rss_port_fetch/rte_thash_adjust_tuple/" + c).c_str(), rss_fetch_rte_thash, fc)
              ->UseManualTime();
          benchmark::RegisterBenchmark(("rss_port_fetch_release/fnat/" + c).c_str(), rss_fetch_release_fnat, fc);
          benchmark::RegisterBenchmark(("rss_port_fetch_release/rte_thash_adjust_tuple/" + c).c_str(),
                                       rss_fetch_release_rte_thash, fc);
          if (occupancy == 0) {
            const std::string b = std::string(fnat::to_string(fam)) + "/reta:512/fill:" +
                                  std::string(fnat::to_string(fill)) + "/lcores:" + std::to_string(lcores);
            benchmark::RegisterBenchmark(("rss_port_build/fnat/" + b).c_str(), rss_build_fnat, fc)
                ->Unit(benchmark::kMicrosecond);
            benchmark::RegisterBenchmark(("rss_port_build/rte_thash_adjust_tuple/" + b).c_str(), rss_build_rte_thash, fc)
                ->Unit(benchmark::kMicrosecond);
          }
        }
  for (unsigned burst : {1u, 32u}) {
    const std::string c = "conns:64K/burst:" + std::to_string(burst);
    benchmark::RegisterBenchmark(("redirect_handoff/fnat/" + c).c_str(), redirect_fnat, burst);
    benchmark::RegisterBenchmark(("redirect_handoff/dpvs/" + c).c_str(), redirect_dpvs, burst);
  }
  return true;
}();

}  // namespace
