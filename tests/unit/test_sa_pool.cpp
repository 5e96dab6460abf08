// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/sa_pool.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <new>
#include <random>
#include <set>
#include <vector>

using fnat::endpoint;
using fnat::errc;
using fnat::hashed_buckets;
using fnat::lcore_queue;
using fnat::port_plan;
using fnat::sa_pool;
using fnat::sa_pool_rotation;

namespace {

std::vector<lcore_queue> lcores(std::size_t n) {
  std::vector<lcore_queue> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
  return v;
}

port_plan plan_of(std::size_t n, std::uint16_t low = 1025, std::uint16_t high = 65535, unsigned bits = 0) {
  auto p = port_plan::make({.lcores = lcores(n), .port_low = low, .port_high = high, .class_bits = bits});
  REQUIRE(p);
  return *p;
}

hashed_buckets policy_of(const port_plan& plan, std::size_t index, std::size_t buckets = 16) {
  auto h = hashed_buckets::make(plan, index, {.buckets = buckets});
  REQUIRE(h);
  return *h;
}

template <class Policy = hashed_buckets, class Alloc = std::allocator<std::byte>>
sa_pool<Policy, Alloc> pool_of(fnat::inet_addr lip, Policy policy, Alloc alloc = {}) {
  auto p = sa_pool<Policy, Alloc>::make(lip, std::move(policy), std::move(alloc));
  if (!p) FAIL(p.err().what());
  return std::move(*p);
}

fnat::inet_addr ip(const char* s) { return *fnat::inet_addr::parse(s); }

const fnat::inet_addr lip4 = ip("198.18.2.100");
const fnat::inet_addr lip4b = ip("198.18.2.101");
const fnat::inet_addr lip6 = ip("2001:2:0:2::100");

// A destination (a real server) whose bucket in `pool` is b: walks hosts of 198.18.0.0/16 or
// 2001:2:0:2::/112 on a few ports until the pool's policy puts one there (`skip` finds later ones).
template <class Pool>
endpoint dest_in_bucket(const Pool& pool, std::size_t b, unsigned skip = 0) {
  const bool is4 = pool.lip().is_v4();
  for (unsigned host = 1; host < 65536; ++host)
    for (std::uint16_t port : {80, 443, 8080}) {
      fnat::inet_addr a;
      if (is4) {
        a = fnat::ipv4_addr::from_host((198u << 24) | (18u << 16) | host);
      } else {
        fnat::ipv6_addr x = *fnat::ipv6_addr::parse("2001:2:0:2::");
        x.bytes[14] = static_cast<std::uint8_t>(host >> 8);
        x.bytes[15] = static_cast<std::uint8_t>(host);
        a = x;
      }
      const endpoint d{a, port};
      if (pool.bucket_of(d) == b && skip-- == 0) return d;
    }
  FAIL("no destination found for bucket " << b);
  return {};
}

std::vector<std::uint16_t> plan_ports(const port_plan& plan, std::size_t index) {
  std::vector<std::uint16_t> v;
  plan.for_each_port(index, [&](std::uint16_t p) { v.push_back(p); });
  return v;
}

template <class Pool>
std::vector<std::uint16_t> drain(Pool& pool, const endpoint& dest) {
  std::vector<std::uint16_t> out;
  for (;;) {
    const auto r = pool.fetch(dest);
    if (r.status == errc::exhausted) break;
    REQUIRE(r.status == errc::ok);
    out.push_back(r.port);
  }
  return out;
}

// Two buckets with disjoint ports (even / odd) and no optional members: the shape of a policy whose
// buckets differ, as the RSS-aware one does.
struct parity_buckets {
  std::uint16_t lo = 2000, hi = 2099;
  std::size_t bucket_count() const noexcept { return 2; }
  std::size_t bucket_of(const fnat::inet_addr&, const endpoint& d) const noexcept { return d.port & 1u; }
  bool admits(std::size_t b, std::uint16_t p) const noexcept { return p >= lo && p <= hi && (p & 1u) == b; }
  std::uint32_t dense_size() const noexcept { return std::uint32_t{hi} - lo + 1; }
  std::uint32_t dense_index(std::uint16_t p) const noexcept { return std::uint32_t{p} - lo; }
  template <class F>
  void for_each_port(std::size_t b, F&& f) const {
    for (std::uint32_t p = lo; p <= hi; ++p)
      if ((p & 1u) == b) f(static_cast<std::uint16_t>(p));
  }
};
static_assert(fnat::sa_pool_policy<parity_buckets>);
static_assert(!fnat::detail::policy_uniform_buckets<parity_buckets>());
static_assert(fnat::detail::policy_uniform_buckets<hashed_buckets>());
static_assert(fnat::detail::policy_with_port_count<hashed_buckets>);
static_assert(!fnat::detail::policy_with_port_count<parity_buckets>);

// A policy that breaks one rule of the contract, to see the pool refuse it.
enum class fault {
  none,
  zero_buckets,
  zero_dense,
  empty_bucket,
  not_admitted,
  twice,
  dense_out_of_range,
  too_many,
  count_lie
};
struct broken_policy {
  fault f = fault::none;
  std::size_t bucket_count() const noexcept { return f == fault::zero_buckets ? 0 : 2; }
  std::size_t bucket_of(const fnat::inet_addr&, const endpoint& d) const noexcept { return d.port & 1u; }
  bool admits(std::size_t, std::uint16_t p) const noexcept {
    return f == fault::not_admitted ? p != 3005 : p >= 3000 && p < 3010;
  }
  std::uint32_t dense_size() const noexcept { return f == fault::zero_dense ? 0 : (f == fault::too_many ? 5 : 10); }
  std::uint32_t dense_index(std::uint16_t p) const noexcept {
    return f == fault::dense_out_of_range && p == 3009 ? 10 : std::uint32_t{p} - 3000;
  }
  std::uint32_t port_count(std::size_t b) const noexcept {
    if (f == fault::empty_bucket && b == 1) return 0;
    return f == fault::count_lie ? 9 : 10;
  }
  template <class F>
  void for_each_port(std::size_t b, F&& fn) const {
    if (f == fault::empty_bucket && b == 1) return;
    for (std::uint16_t p = 3000; p < 3010; ++p) fn(f == fault::twice && p == 3007 ? std::uint16_t{3006} : p);
  }
};

// Counts what the pool allocates; optionally refuses.
struct alloc_log {
  std::size_t allocations = 0, deallocations = 0, bytes_live = 0;
  bool refuse = false;
};
template <class T>
struct logging_allocator {
  using value_type = T;
  alloc_log* log;
  explicit logging_allocator(alloc_log* l) noexcept : log(l) {}
  template <class U>
  logging_allocator(const logging_allocator<U>& o) noexcept : log(o.log) {}  // NOLINT
  T* allocate(std::size_t n) {
    if (log->refuse) throw std::bad_alloc();
    ++log->allocations;
    log->bytes_live += n * sizeof(T);
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ++log->deallocations;
    log->bytes_live -= n * sizeof(T);
    ::operator delete(p, std::align_val_t{alignof(T)});
  }
  template <class U>
  friend bool operator==(const logging_allocator& a, const logging_allocator<U>& b) noexcept {
    return a.log == b.log;
  }
};

}  // namespace

TEST_CASE("hashed_buckets reproduces the port plan's ownership and dense numbering", "[sa_pool]") {
  for (std::size_t n : {1u, 3u, 6u, 8u}) {
    for (unsigned bits : {0u, 5u}) {
      const port_plan plan = plan_of(n, 1025, 65535, bits == 0 ? 0 : std::max<unsigned>(bits, std::bit_width(n - 1)));
      for (std::size_t i = 0; i < n; ++i) {
        INFO("lcores " << n << ", class bits " << plan.shift() << ", index " << i);
        const hashed_buckets h = policy_of(plan, i, 7);
        REQUIRE(h.bucket_count() == 7);
        REQUIRE(h.lcore_index() == i);
        REQUIRE(h.dense_size() == plan.dense_size(i));
        REQUIRE(h.port_count(3) == plan.port_count(i));
        for (std::uint32_t port = 0; port < 65536; ++port) {
          const auto p = static_cast<std::uint16_t>(port);
          REQUIRE(h.admits(port % 7, p) == plan.owns(i, p));
          if (plan.owns(i, p)) REQUIRE(h.dense_index(p) == plan.dense_index(p));
        }
        std::vector<std::uint16_t> got;
        h.for_each_port(5, [&](std::uint16_t p) { got.push_back(p); });
        REQUIRE(got == plan_ports(plan, i));
      }
    }
  }
}

TEST_CASE("hashed_buckets spreads destinations over every bucket", "[sa_pool]") {
  const port_plan plan = plan_of(4);
  for (std::size_t buckets : {1u, 5u, 16u}) {
    const hashed_buckets h = policy_of(plan, 0, buckets);
    std::vector<std::size_t> hits(buckets, 0);
    // 4096 real servers in one /20 on one port, and 4096 ports of one real server.
    for (std::uint32_t host = 0; host < 4096; ++host) {
      const endpoint d{fnat::ipv4_addr::from_host((198u << 24) | (18u << 16) | host), 80};
      const std::size_t b = h.bucket_of(lip4, d);
      REQUIRE(b < buckets);
      ++hits[b];
    }
    for (std::uint32_t port = 1; port <= 4096; ++port)
      ++hits[h.bucket_of(lip4, endpoint{ip("198.18.2.1"), static_cast<std::uint16_t>(port)})];
    const double mean = 8192.0 / static_cast<double>(buckets);
    for (std::size_t b = 0; b < buckets; ++b) {
      INFO("buckets " << buckets << ", bucket " << b << ": " << hits[b] << " of 8192");
      REQUIRE(std::abs(static_cast<double>(hits[b]) - mean) < 0.15 * mean);
    }
  }
  // The seed moves destinations; the LIP does not (it is the same for every destination of a pool).
  const hashed_buckets a = policy_of(plan, 0, 16);
  auto b = hashed_buckets::make(plan, 0, {.buckets = 16, .hash_seed = 12345});
  REQUIRE(b);
  std::size_t moved = 0;
  for (std::uint32_t host = 0; host < 256; ++host) {
    const endpoint d{fnat::ipv4_addr::from_host((198u << 24) | (18u << 16) | (2u << 8) | host), 80};
    moved += a.bucket_of(lip4, d) != b->bucket_of(lip4, d);
    REQUIRE(a.bucket_of(lip4, d) == a.bucket_of(lip4b, d));
  }
  REQUIRE(moved > 128);
}

TEST_CASE("draining a pool yields each of its ports once and releasing them makes it whole again", "[sa_pool]") {
  for (std::size_t n : {1u, 6u, 8u}) {
    const port_plan plan = plan_of(n);
    const std::size_t index = n - 1;
    const std::vector<std::uint16_t> expected = plan_ports(plan, index);
    for (fnat::inet_addr lip : {lip4, lip6}) {
      INFO("lcores " << n << ", lip " << lip.to_string());
      auto pool = pool_of(lip, policy_of(plan, index, 16));
      REQUIRE(pool.bucket_count() == 16);
      const auto whole = pool.stats();
      REQUIRE(whole.capacity == 16 * expected.size());
      REQUIRE(whole.free == whole.capacity);
      REQUIRE(whole.used == 0);
      for (std::size_t b : {0u, 9u, 15u}) {
        const endpoint d = dest_in_bucket(pool, b);
        const std::vector<std::uint16_t> got = drain(pool, d);
        REQUIRE(got == expected);  // each port once, ascending, all owned by the lcore
        for (std::uint16_t p : got) REQUIRE(plan.owns(index, p));
        REQUIRE(pool.bucket_stats(b).free == 0);
        REQUIRE(pool.bucket_stats(b).used == expected.size());
        REQUIRE(pool.bucket_stats(b).misses == 1);  // the fetch that ended the drain
        // Another destination of the same bucket is exhausted too; another bucket is untouched.
        REQUIRE(pool.fetch(dest_in_bucket(pool, b, 1)).status == errc::exhausted);
        REQUIRE(pool.bucket_stats(b).misses == 2);
        REQUIRE(pool.bucket_stats((b + 1) % 16).free == expected.size());
        // Release in a random order: the bucket is whole again, and hands the ports back in that order.
        std::vector<std::uint16_t> order = got;
        std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(b)));
        for (std::uint16_t p : order) REQUIRE(pool.release(d, p) == errc::ok);
        REQUIRE(pool.bucket_stats(b).free == expected.size());
        REQUIRE(pool.bucket_stats(b).used == 0);
        const std::vector<std::uint16_t> again = drain(pool, d);
        REQUIRE(again == order);  // FIFO: released first, reused first
        for (std::uint16_t p : again) REQUIRE(pool.release(d, p) == errc::ok);
      }
      const auto end = pool.stats();
      REQUIRE(end.free == whole.capacity);
      REQUIRE(end.used == 0);
      REQUIRE(end.misses == 9);
      REQUIRE(end.release_not_in_use == 0);
      REQUIRE(end.release_foreign == 0);
    }
  }
}

TEST_CASE("for lcore counts 1..16 and more up to 64 a pool hands out exactly its lcore's plan ports", "[sa_pool]") {
  std::vector<std::size_t> counts;
  for (std::size_t n = 1; n <= 16; ++n) counts.push_back(n);
  for (std::size_t n : {17u, 20u, 24u, 31u, 33u, 48u, 63u, 64u}) counts.push_back(n);
  // Then a few with 8 class bits, where every lcore owns many classes (the policy's table path).
  const std::size_t default_bits = counts.size();
  for (std::size_t n : {3u, 6u, 12u, 64u}) counts.push_back(n);
  for (std::size_t c = 0; c < counts.size(); ++c) {
    const std::size_t n = counts[c];
    const port_plan plan = plan_of(n, 1025, 65535, c < default_bits ? 0 : 8);
    std::vector<int> owner(65536, -1);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("lcores " << n << ", class bits " << plan.shift() << ", index " << i);
      auto pool = pool_of(i % 2 ? lip6 : lip4, policy_of(plan, i, 3));
      const std::size_t b = i % 3;
      const std::vector<std::uint16_t> got = drain(pool, dest_in_bucket(pool, b));
      REQUIRE(got.size() == plan.port_count(i));
      for (std::uint16_t p : got) {
        REQUIRE(plan.owner_index(p) == i);
        REQUIRE(owner[p] == -1);  // once, and no other lcore's pool handed it out
        owner[p] = static_cast<int>(i);
      }
      for (std::size_t other = 0; other < 3; ++other)
        if (other != b) REQUIRE(pool.bucket_stats(other).free == plan.port_count(i));
    }
    for (std::uint32_t p = 0; p < 65536; ++p) REQUIRE((owner[p] != -1) == (p >= 1025));
  }
}

TEST_CASE("a non-uniform policy: each bucket hands out its own ports and refuses the others'", "[sa_pool]") {
  auto pool = pool_of(lip4, parity_buckets{});
  REQUIRE(pool.bucket_stats(0).capacity == 50);
  REQUIRE(pool.bucket_stats(1).capacity == 50);
  const endpoint even{ip("198.18.2.1"), 80}, odd{ip("198.18.2.1"), 81};
  const auto e = drain(pool, even);
  const auto o = drain(pool, odd);
  REQUIRE(e.size() == 50);
  REQUIRE(o.size() == 50);
  for (std::size_t j = 0; j < 50; ++j) {
    REQUIRE(e[j] == 2000 + 2 * j);
    REQUIRE(o[j] == 2001 + 2 * j);
  }
  // A port of the other bucket is foreign here, whether or not it is in use there.
  REQUIRE(pool.release(even, 2001) == errc::foreign);
  REQUIRE(pool.release(odd, 2000) == errc::foreign);
  REQUIRE(pool.bucket_stats(0).release_foreign == 1);
  REQUIRE(pool.bucket_stats(1).release_foreign == 1);
  REQUIRE(pool.in_use(0, 2000));
  REQUIRE(pool.in_use(1, 2001));
  REQUIRE_FALSE(pool.in_use(0, 2001));
  REQUIRE(pool.release(even, 2000) == errc::ok);
  REQUIRE(pool.release(odd, 2001) == errc::ok);
  REQUIRE(pool.stats().used == 98);
}

TEST_CASE("bad releases and fetches are refused and counted and change nothing else", "[sa_pool]") {
  const port_plan plan = plan_of(4);  // 2 class bits: lcore 1 owns ports = 1 mod 4
  auto pool = pool_of(lip4, policy_of(plan, 1, 4));
  const endpoint d = dest_in_bucket(pool, 2);
  const endpoint other_bucket = dest_in_bucket(pool, 3);
  const auto r = pool.fetch(d);
  REQUIRE(r.status == errc::ok);
  REQUIRE(r.port == 1025);
  const auto before = pool.stats();

  SECTION("double release") {
    REQUIRE(pool.release(d, r.port) == errc::ok);
    REQUIRE(pool.release(d, r.port) == errc::not_in_use);
    REQUIRE(pool.bucket_stats(2).release_not_in_use == 1);
    REQUIRE(pool.bucket_stats(2).free == pool.bucket_stats(2).capacity);
    // The port comes back once only: after the others.
    const auto all = drain(pool, d);
    REQUIRE(std::count(all.begin(), all.end(), r.port) == 1);
    REQUIRE(all.back() == r.port);
  }
  SECTION("a port never handed out") {
    REQUIRE(pool.release(d, 1029) == errc::not_in_use);
    REQUIRE(pool.bucket_stats(2).release_not_in_use == 1);
  }
  SECTION("the port of another bucket (same lcore, another destination)") {
    // hashed_buckets admits the lcore's ports in every bucket, so the port is admitted but not in use.
    REQUIRE(pool.release(other_bucket, r.port) == errc::not_in_use);
    REQUIRE(pool.bucket_stats(3).release_not_in_use == 1);
    REQUIRE(pool.in_use(2, r.port));
    REQUIRE(pool.release(d, r.port) == errc::ok);
  }
  SECTION("a port of another lcore, outside the range, or port 0") {
    for (std::uint16_t p : {std::uint16_t{1024 + 4}, std::uint16_t{1026}, std::uint16_t{1027}, std::uint16_t{1021},
                            std::uint16_t{80}, std::uint16_t{0}})
      REQUIRE(pool.release(d, p) == errc::foreign);
    REQUIRE(pool.bucket_stats(2).release_foreign == 6);
  }
  SECTION("a destination of the other family") {
    const endpoint d6{ip("2001:2:0:2::1"), 80};
    REQUIRE(pool.fetch(d6).status == errc::invalid_argument);
    REQUIRE(pool.release(d6, r.port) == errc::invalid_argument);
    REQUIRE(pool.stats().family_mismatch == 2);
    auto pool6 = pool_of(lip6, policy_of(plan, 1, 4));
    REQUIRE(pool6.fetch(d).status == errc::invalid_argument);
    REQUIRE(pool6.release(d, 1025) == errc::invalid_argument);
    REQUIRE(pool6.stats().family_mismatch == 2);
    REQUIRE(pool6.stats().free == pool6.stats().capacity);
  }
  // Whatever was refused, the port handed out is still in use and everything else is free.
  const auto after = pool.stats();
  REQUIRE(after.capacity == before.capacity);
  REQUIRE(after.free + after.used == after.capacity);
}

TEST_CASE("bad configurations are refused with a clear error", "[sa_pool]") {
  const port_plan plan = plan_of(4);
  auto expect = [](const auto& r, errc code, const char* words) {
    REQUIRE_FALSE(r);
    INFO(r.err().what());
    REQUIRE(r.err().code() == code);
    REQUIRE(r.err().message().find(words) != std::string::npos);
  };
  expect(hashed_buckets::make(plan, 0, {.buckets = 0}), errc::invalid_argument, "0 buckets");
  expect(hashed_buckets::make(plan, 4), errc::invalid_argument, "lcore index 4 is outside");
  expect(hashed_buckets::make(plan, 0, {.buckets = hashed_buckets::max_buckets + 1}), errc::invalid_argument,
         "at most 4096");
  expect(sa_pool<>::make(fnat::inet_addr{}, policy_of(plan, 0)), errc::invalid_argument, "unspecified");
  expect(sa_pool<>::make(ip("0.0.0.0"), policy_of(plan, 0)), errc::invalid_argument, "unspecified");
  using bp = sa_pool<broken_policy>;
  REQUIRE(bp::make(lip4, broken_policy{fault::none}));
  expect(bp::make(lip4, broken_policy{fault::zero_buckets}), errc::invalid_argument, "0 buckets");
  expect(bp::make(lip4, broken_policy{fault::zero_dense}), errc::invalid_argument, "dense_size() is 0");
  expect(bp::make(lip4, broken_policy{fault::empty_bucket}), errc::invalid_argument,
         "bucket 1 of the policy hands out no port");
  expect(bp::make(lip4, broken_policy{fault::not_admitted}), errc::invalid_argument, "port 3005 but does not admit it");
  expect(bp::make(lip4, broken_policy{fault::twice}), errc::invalid_argument, "port 3006 twice");
  expect(bp::make(lip4, broken_policy{fault::dense_out_of_range}), errc::invalid_argument,
         "port 3009 has dense_index >= dense_size() 10");
  expect(bp::make(lip4, broken_policy{fault::too_many}), errc::invalid_argument, "more than the policy's dense_size");
  expect(bp::make(lip4, broken_policy{fault::count_lie}), errc::invalid_argument,
         "yields 10 ports where the policy announced 9");
}

TEST_CASE("random fetch/release sequences match a simple model", "[sa_pool]") {
  // Model: per bucket a FIFO of free ports (deque) and a set of used ports; the pool must return
  // exactly the model's port and refuse exactly what the model refuses.
  const port_plan plan = plan_of(3, 1025, 1400);  // small: buckets run dry often
  const std::size_t index = 2;
  const std::vector<std::uint16_t> ports = plan_ports(plan, index);
  for (fnat::inet_addr lip : {lip4, lip6}) {
    auto pool = pool_of(lip, policy_of(plan, index, 5));
    std::vector<endpoint> dests;
    for (std::size_t b = 0; b < 5; ++b)
      for (unsigned k = 0; k < 3; ++k) dests.push_back(dest_in_bucket(pool, b, k));
    struct model_bucket {
      std::deque<std::uint16_t> free;
      std::set<std::uint16_t> used;
      std::uint64_t misses = 0, not_in_use = 0, foreign = 0;
    };
    std::vector<model_bucket> model(5);
    for (auto& m : model) m.free.assign(ports.begin(), ports.end());
    std::vector<std::pair<endpoint, std::uint16_t>> live;
    std::uint64_t family = 0;
    const endpoint alien{lip.is_v4() ? ip("2001:2::9") : ip("198.18.9.9"), 80};
    std::mt19937_64 rng(lip.is_v4() ? 1 : 2);
    for (int step = 0; step < 60000; ++step) {
      const unsigned op = rng() % 100;
      if (op < 50) {
        const endpoint& d = dests[rng() % dests.size()];
        auto& m = model[pool.bucket_of(d)];
        const auto r = pool.fetch(d);
        if (m.free.empty()) {
          REQUIRE(r.status == errc::exhausted);
          ++m.misses;
        } else {
          REQUIRE(r.status == errc::ok);
          REQUIRE(r.port == m.free.front());
          m.free.pop_front();
          m.used.insert(r.port);
          live.emplace_back(d, r.port);
        }
      } else if (op < 90) {
        if (live.empty()) continue;
        const std::size_t j = rng() % live.size();
        const auto [d, p] = live[j];
        live[j] = live.back();
        live.pop_back();
        auto& m = model[pool.bucket_of(d)];
        REQUIRE(pool.release(d, p) == errc::ok);
        m.used.erase(p);
        m.free.push_back(p);
      } else if (op < 97) {
        // A release the model may refuse: any port, any destination.
        const endpoint& d = dests[rng() % dests.size()];
        const auto p = static_cast<std::uint16_t>(1000 + rng() % 450);
        auto& m = model[pool.bucket_of(d)];
        const errc rc = pool.release(d, p);
        if (!plan.owns(index, p)) {
          REQUIRE(rc == errc::foreign);
          ++m.foreign;
        } else if (m.used.count(p) == 0) {
          REQUIRE(rc == errc::not_in_use);
          ++m.not_in_use;
        } else {
          REQUIRE(rc == errc::ok);
          m.used.erase(p);
          m.free.push_back(p);
          const auto it = std::find_if(live.begin(), live.end(), [&](const auto& l) {
            return pool.bucket_of(l.first) == pool.bucket_of(d) && l.second == p;
          });
          REQUIRE(it != live.end());
          *it = live.back();
          live.pop_back();
        }
      } else {
        REQUIRE(pool.fetch(alien).status == errc::invalid_argument);
        REQUIRE(pool.release(alien, ports[0]) == errc::invalid_argument);
        family += 2;
      }
      if (step % 997 == 0 || step == 59999) {
        fnat::sa_pool_stats total;
        for (std::size_t b = 0; b < 5; ++b) {
          const auto s = pool.bucket_stats(b);
          const auto& m = model[b];
          REQUIRE(s.capacity == ports.size());
          REQUIRE(s.free == m.free.size());
          REQUIRE(s.used == m.used.size());
          REQUIRE(s.misses == m.misses);
          REQUIRE(s.release_not_in_use == m.not_in_use);
          REQUIRE(s.release_foreign == m.foreign);
          for (std::uint16_t p : ports) REQUIRE(pool.in_use(b, p) == (m.used.count(p) == 1));
          total.used += s.used;
          total.misses += s.misses;
        }
        REQUIRE(pool.stats().used == total.used);
        REQUIRE(pool.stats().misses == total.misses);
        REQUIRE(pool.stats().family_mismatch == family);
      }
    }
    // Release everything still out: the pool is whole again.
    for (const auto& [d, p] : live) REQUIRE(pool.release(d, p) == errc::ok);
    REQUIRE(pool.stats().free == pool.stats().capacity);
  }
}

TEST_CASE("shuffled initial order: a permutation per bucket, reproducible from the seed", "[sa_pool]") {
  const port_plan plan = plan_of(2, 1025, 9000);
  const std::vector<std::uint16_t> ascending = plan_ports(plan, 0);
  auto make = [&](std::uint64_t seed, fnat::inet_addr lip) {
    auto p = sa_pool<>::make(lip, policy_of(plan, 0, 4), {.shuffle = true, .shuffle_seed = seed});
    REQUIRE(p);
    return std::move(*p);
  };
  auto a = make(7, lip4);
  auto b = make(7, lip4);
  auto c = make(8, lip4);
  auto d = make(7, lip4b);
  std::vector<std::vector<std::uint16_t>> orders;
  for (std::size_t k = 0; k < 4; ++k) {
    const endpoint dest = dest_in_bucket(a, k);
    const auto oa = drain(a, dest), ob = drain(b, dest), oc = drain(c, dest), od = drain(d, dest);
    REQUIRE(oa == ob);
    REQUIRE(oa != oc);
    REQUIRE(oa != od);
    REQUIRE(oa != ascending);
    auto sorted = oa;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted == ascending);
    orders.push_back(oa);
  }
  REQUIRE(orders[0] != orders[1]);
  REQUIRE(orders[2] != orders[3]);
}

TEST_CASE("memory: about 2.1 bytes per port entry in one block from the given allocator", "[sa_pool]") {
  // Formula from the header: per bucket 64 + 8 * ceil(D / 64) + 2 * (C + 1), rounded up to 64-byte lines.
  for (std::size_t n : {1u, 8u}) {
    const port_plan plan = plan_of(n);
    std::size_t per_lip = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t c = plan.port_count(i), dn = plan.dense_size(i);
      const std::size_t block = 16 * (64 + 8 * ((dn + 63) / 64) + 2 * (c + 1));
      alloc_log log;
      {
        auto pool = pool_of(lip4, policy_of(plan, i), logging_allocator<std::byte>(&log));
        REQUIRE(log.allocations == 1);
        REQUIRE(log.bytes_live == (block + 63) / 64 * 64);
        REQUIRE(pool.memory_bytes() == log.bytes_live + sizeof(pool));
        const double per_entry = static_cast<double>(pool.memory_bytes()) / static_cast<double>(16 * c);
        INFO("lcores " << n << ": " << per_entry << " bytes per port entry");
        REQUIRE(per_entry < 2.2);
        per_lip += pool.memory_bytes();
        // Moving keeps the one block; the moved-from pool frees nothing.
        auto moved = std::move(pool);
        REQUIRE(moved.fetch(endpoint{ip("198.18.2.1"), 80}).status == errc::ok);
        REQUIRE(log.deallocations == 0);
        auto other = pool_of(lip4b, policy_of(plan, i), logging_allocator<std::byte>(&log));
        other = std::move(moved);  // frees other's block, takes moved's
        REQUIRE(log.deallocations == 1);
        REQUIRE(other.lip() == lip4);
        REQUIRE(other.stats().used == 1);
      }
      REQUIRE(log.deallocations == 2);
      REQUIRE(log.bytes_live == 0);
    }
    INFO("lcores " << n << ": " << per_lip << " bytes per LIP; DPVS ~41.9 MB");
    REQUIRE(per_lip < 16u * 65536u * 40u / 10u);  // at most a tenth of DPVS's
  }
  alloc_log refusing{.refuse = true};
  auto r = sa_pool<hashed_buckets, logging_allocator<std::byte>>::make(lip4, policy_of(plan_of(1), 0),
                                                                      logging_allocator<std::byte>(&refusing));
  REQUIRE_FALSE(r);
  REQUIRE(r.err().code() == errc::no_memory);
}

TEST_CASE("rotation: LIPs in turn and the next one when a LIP is exhausted and families kept apart", "[sa_pool]") {
  const port_plan plan = plan_of(1, 2000, 2003);  // 4 ports per bucket
  auto a = pool_of(lip4, policy_of(plan, 0, 1));
  auto b = pool_of(lip4b, policy_of(plan, 0, 1));
  auto c = pool_of(lip6, policy_of(plan, 0, 1));
  sa_pool_rotation<> rot;
  const endpoint rs{ip("198.18.2.1"), 80};
  REQUIRE(rot.fetch(rs).status == errc::invalid_argument);  // empty
  REQUIRE(rot.add(a));
  REQUIRE(rot.add(c));
  REQUIRE(rot.add(b));
  auto dup = rot.add(a);
  REQUIRE_FALSE(dup);
  REQUIRE(dup.err().code() == errc::exists);
  REQUIRE(rot.size() == 3);
  REQUIRE(rot.find(lip6) == &c);

  // IPv4 destinations alternate between the two IPv4 LIPs, skipping the IPv6 one.
  std::vector<std::pair<fnat::inet_addr, std::uint16_t>> got;
  for (int i = 0; i < 6; ++i) {
    const auto r = rot.fetch(rs);
    REQUIRE(r.status == errc::ok);
    got.emplace_back(r.lip, r.port);
  }
  const std::vector<std::pair<fnat::inet_addr, std::uint16_t>> want = {
      {lip4, 2000}, {lip4b, 2000}, {lip4, 2001}, {lip4b, 2001}, {lip4, 2002}, {lip4b, 2002}};
  REQUIRE(got == want);
  REQUIRE(c.stats().used == 0);
  REQUIRE(c.stats().family_mismatch == 0);
  // Exhaust lip4: the rotation goes on with lip4b only, then reports exhaustion.
  REQUIRE(a.fetch(rs).port == 2003);
  REQUIRE(rot.fetch(rs).lip == lip4b);
  const auto none = rot.fetch(rs);
  REQUIRE(none.status == errc::exhausted);
  REQUIRE(rot.failed_fetches() == 2);  // this one and the fetch on the empty rotation
  REQUIRE(a.stats().misses == 2);  // tried twice
  REQUIRE(b.stats().misses == 1);
  // IPv6 destinations go to the IPv6 LIP.
  const endpoint rs6{ip("2001:2:0:2::1"), 80};
  const auto r6 = rot.fetch(rs6);
  REQUIRE(r6.status == errc::ok);
  REQUIRE(r6.lip == lip6);
  // Release through the rotation finds the LIP's pool; after it, that LIP serves again.
  REQUIRE(rot.release(lip4b, rs, 2001) == errc::ok);
  REQUIRE(rot.release(lip4b, rs, 2001) == errc::not_in_use);
  REQUIRE(rot.release(ip("198.18.2.200"), rs, 2001) == errc::not_found);
  const auto again = rot.fetch(rs);
  REQUIRE(again.status == errc::ok);
  REQUIRE(again.lip == lip4b);
  REQUIRE(again.port == 2001);
  REQUIRE(rot.release(lip6, rs6, r6.port) == errc::ok);
  // Remove: the other LIPs stay, unknown ones are reported.
  REQUIRE(rot.remove(lip4b));
  REQUIRE(rot.size() == 2);
  REQUIRE(rot.find(lip4b) == nullptr);
  REQUIRE(rot.fetch(rs).status == errc::exhausted);
  auto gone = rot.remove(lip4b);
  REQUIRE_FALSE(gone);
  REQUIRE(gone.err().code() == errc::not_found);
  sa_pool_rotation<> only6;
  REQUIRE(only6.add(c));
  REQUIRE(only6.fetch(rs).status == errc::invalid_argument);
}
