// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: sa_pool (hashed_buckets and the RSS-aware rss_buckets) and sa_pool_rotation
// driven by arbitrary operation sequences, each step checked against a reference model.
//
// ## Input (read front to back, 0 past the end; see fuzz_support.hpp)
//   byte 0  mode: bit 0 policy (0 hashed_buckets, 1 rss_buckets), bit 1 family (0 IPv4, 1 IPv6),
//           bit 2 shuffle the initial port order, bit 3 (rss) give each pool a copy bound_to its LIP,
//           bits 4-5 LIPs in the rotation (0 and 1 both mean 1), bit 6 add a pool of the other family to the
//           rotation, bit 7 wide port range
//   byte 1  lcores n = 1 + b % 16 (hashed: the plan's lcores; rss: the queues in the RETA)
//   byte 2  which lcore (or queue) the pools serve: b % n
//   byte 3  class bits: b % 5 == 0 -> 0 (auto), else min(12, ceil(log2 n) + b % 5 - 1)
//   byte 4-5 low port seed, byte 6 range width: narrow 1 + b (1..256), wide 1 + 16 b (hashed) or
//           1 + 4 b (rss: the model hashes every port of a bucket it meets)
//   byte 7  hashed: buckets 1 + b % 32; rss: RETA size 2^(b % 7)
//   byte 8  hashed: hash seed; rss: bits 0-1 RETA fill (0 round robin, 1 from the next R bytes,
//           2 halves, 3 one entry per queue then queue 0), bit 7 the symmetric key
//   byte 9  shuffle seed
// then operations, one selector byte each (op = b % 13) followed by a fixed number of argument
// bytes; see step(). The seeds are written by make_model_seeds.py.
//
// ## The model
// Per pool and per bucket (created when an operation first touches the bucket): the ports the
// bucket hands out, computed WITHOUT the pool's policy code where one exists (hashed: the port
// plan's owns(); rss: the Toeplitz table hash of the real reply tuple and the RETA, i.e. the
// invariant "the reply lands on my queue" itself); the ring as the FIFO it must be (initial ports
// in ascending order unless shuffled, then released ports in release order); the ports in use with
// the destination that fetched them; misses and refused releases by reason. The rotation is modelled
// as its list of pools and its cursor. After every step each bucket's stats (capacity, free, used,
// misses, refusals), the pool totals and family_mismatch are compared with the model; any
// difference traps. At the end everything in use is released and every bucket must be whole again.
//
// Built with coverage_ignore.txt: the Toeplitz hash loops (thousands of calls per rss_buckets::make)
// are not traced for coverage, which tripled the executions per second.
#include <fnat/core/port_plan.hpp>
#include <fnat/core/reta.hpp>
#include <fnat/core/rss_ports.hpp>
#include <fnat/core/sa_pool.hpp>
#include <fnat/core/sa_pool_policy.hpp>
#include <fnat/core/toeplitz.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.hpp"

namespace {

using fnat::endpoint;
using fnat::errc;
using fnat::inet_addr;
using fnat::ip_family;

inet_addr lip_addr(ip_family f, std::size_t i) {
  if (f == ip_family::v4) return inet_addr(fnat::ipv4_addr::from_host(0xc6120001u + static_cast<std::uint32_t>(i)));
  fnat::ipv6_addr a = *fnat::ipv6_addr::parse("2001:2::");
  a.bytes[15] = static_cast<std::uint8_t>(1 + i);
  return inet_addr(a);
}

// Destination d of family f: 32 real servers x 8 ports, so buckets are shared and revisited.
endpoint dest_of(ip_family f, std::uint8_t d) {
  const auto host = static_cast<std::uint8_t>(1 + (d & 0x1f));
  const auto port = static_cast<std::uint16_t>(80 + (d >> 5));
  if (f == ip_family::v4) return {inet_addr(fnat::ipv4_addr::from_host(0xc6130000u | host)), port};
  fnat::ipv6_addr a = *fnat::ipv6_addr::parse("2001:2:0:1::");
  a.bytes[15] = host;
  return {inet_addr(a), port};
}

// A wider destination space (any RS address in a /16 and any port) to reach many buckets.
endpoint dest_wide(ip_family f, std::uint16_t a, std::uint16_t port) {
  if (f == ip_family::v4) return {inet_addr(fnat::ipv4_addr::from_host(0xc6130000u | a)), port};
  fnat::ipv6_addr x = *fnat::ipv6_addr::parse("2001:2:0:1::");
  x.bytes[14] = static_cast<std::uint8_t>(a >> 8);
  x.bytes[15] = static_cast<std::uint8_t>(a);
  return {inet_addr(x), port};
}

ip_family other(ip_family f) { return f == ip_family::v4 ? ip_family::v6 : ip_family::v4; }

struct bucket_model {
  std::uint32_t capacity = 0;
  std::vector<std::uint8_t> initial;        // per port of the range: 1 while not yet fetched in the
  std::size_t initial_left = 0;             //   ring's first pass (its initial order)
  std::size_t cursor = 0;                   // no initial port left below low + cursor
  std::deque<std::uint16_t> released;       // released ports, oldest first (the ring after the pass)
  std::map<std::uint16_t, endpoint> used;   // port -> the destination that fetched it
  std::uint64_t misses = 0, not_in_use = 0, foreign = 0;
  [[nodiscard]] std::size_t free() const { return initial_left + released.size(); }
};

// Everything the harness knows about the plan or the RETA, independently of the policies.
struct setup {
  bool rss = false;
  bool shuffle = false;
  ip_family family = ip_family::v4;
  std::uint16_t low = 0, high = 0;
  // hashed
  std::optional<fnat::port_plan> plan;
  std::size_t lcore = 0;
  std::size_t buckets = 0;
  // rss
  std::vector<std::uint16_t> reta;
  std::uint16_t queue = 0;
  std::optional<fnat::toeplitz_table> tz;  // the NIC's hash, built by the harness from the key
};

// One pool and its model. Policies differ only in how the model computes a bucket's ports.
template <class Policy>
struct pool_slot {
  inet_addr lip;
  ip_family family = ip_family::v4;
  Policy policy;  // an unbound copy (rss): the model's reference for buckets and reply queues
  std::optional<fnat::sa_pool<Policy>> pool;
  std::map<std::size_t, bucket_model> buckets;
  std::uint64_t family_mismatch = 0;
};

template <class Policy>
class harness {
 public:
  using pool_type = fnat::sa_pool<Policy>;
  using slot = pool_slot<Policy>;

  harness(setup s, fnat::fuzz::reader& in) : s_(std::move(s)), in_(in) {}

  // Adds a pool; returns false if the policy or the pool refuse the configuration (then checks
  // that the refusal is one of the documented ones).
  bool add_pool(const inet_addr& lip, ip_family fam, Policy policy, Policy pool_policy, std::uint64_t seed) {
    auto made = pool_type::make(lip, std::move(pool_policy), fnat::sa_pool_options{.shuffle = s_.shuffle, .shuffle_seed = seed});
    if (!made) {
      FUZZ_CHECK(made.err().code() == errc::invalid_argument || made.err().code() == errc::no_memory);
      FUZZ_CHECK(!made.err().message().empty());
      return false;
    }
    auto sl = std::make_unique<slot>(slot{lip, fam, std::move(policy), std::nullopt, {}, 0});
    sl->pool.emplace(std::move(*made));
    FUZZ_CHECK(sl->pool->lip() == lip);
    FUZZ_CHECK(sl->pool->family() == fam);
    FUZZ_CHECK(sl->pool->memory_bytes() > 0);
    check_fresh(*sl);
    pools_.push_back(std::move(sl));
    return true;
  }

  void add_to_rotation(std::size_t k) {
    FUZZ_CHECK(rot_.add(*pools_[k]->pool).has_value());
    members_.push_back(k);
  }

  void run() {
    check_all();
    while (!in_.empty()) {
      step();
      check_all();
    }
    finish();
    if (fnat::fuzz::summary_wanted()) {
      std::uint64_t misses = 0, not_in_use = 0, foreign = 0, mismatch = 0, touched = 0;
      for (const auto& up : pools_) {
        mismatch += up->family_mismatch;
        touched += up->buckets.size();
        for (const auto& [b, m] : up->buckets) {
          misses += m.misses;
          not_in_use += m.not_in_use;
          foreign += m.foreign;
        }
      }
      std::fprintf(stderr,
                   "fuzz_sa_pool: %s, %zu pools of %zu buckets, ports %u-%u, %llu buckets touched; misses %llu, "
                   "refused releases: not in use %llu, foreign %llu, family %llu; rotation failures %llu\n",
                   s_.rss ? "rss_buckets" : "hashed_buckets", pools_.size(), pools_[0]->pool->bucket_count(),
                   unsigned{s_.low}, unsigned{s_.high}, static_cast<unsigned long long>(touched),
                   static_cast<unsigned long long>(misses), static_cast<unsigned long long>(not_in_use),
                   static_cast<unsigned long long>(foreign), static_cast<unsigned long long>(mismatch),
                   static_cast<unsigned long long>(failed_));
    }
  }

 private:
  // ---- the model's independent knowledge --------------------------------------------------------

  // Does bucket `b` of pool `sl` admit `port`, judged for destination `d` (which lies in b)?
  // hashed: the plan gives the port to this lcore. rss: the NIC's hash of the real reply
  // d -> LIP:port (a full Toeplitz hash with the harness's own hasher), through the RETA, is my queue.
  bool admits(const slot& sl, const endpoint& d, std::uint16_t port) const {
    if (port < s_.low || port > s_.high) return false;
    if constexpr (std::is_same_v<Policy, fnat::hashed_buckets>) {
      (void)d;
      (void)sl;
      return s_.plan->owns(s_.lcore, port);
    } else {
      const std::uint32_t h =
          sl.family == ip_family::v4
              ? s_.tz->hash_v4(d.addr.v4(), sl.lip.v4(), fnat::hton16(d.port), fnat::hton16(port))
              : s_.tz->hash_v6(d.addr.v6(), sl.lip.v6(), fnat::hton16(d.port), fnat::hton16(port));
      return s_.reta[h & (s_.reta.size() - 1)] == s_.queue;
    }
  }

  // The bucket of d, computed through the policy's reference path, and cross-checked with the pool.
  std::size_t bucket_of(slot& sl, const endpoint& d) {
    std::size_t b;
    if constexpr (std::is_same_v<Policy, fnat::hashed_buckets>) {
      b = sl.policy.bucket_of(sl.lip, d);
    } else {
      b = sl.policy.bucket_of_hash(sl.policy.fixed_hash(sl.lip, d));  // full Toeplitz, not the byte tables
      FUZZ_CHECK(sl.policy.bucket_of(sl.lip, d) == b);
    }
    FUZZ_CHECK(b < sl.pool->bucket_count());
    FUZZ_CHECK(sl.pool->bucket_of(d) == b);
    return b;
  }

  // The model of bucket b, created from destination d on first touch.
  bucket_model& touch(slot& sl, std::size_t b, const endpoint& d) {
    auto it = sl.buckets.find(b);
    if (it != sl.buckets.end()) return it->second;
    bucket_model m;
    m.initial.assign(std::size_t{s_.high} - s_.low + 1, 0);
    for (std::uint32_t p = s_.low; p <= s_.high; ++p)
      if (admits(sl, d, static_cast<std::uint16_t>(p))) {
        m.initial[p - s_.low] = 1;
        ++m.initial_left;
      }
    m.capacity = static_cast<std::uint32_t>(m.initial_left);
    // Fresh until now (check_all saw it untouched after the previous step); the operation being
    // modelled may already have changed its free count, never its capacity.
    FUZZ_CHECK(sl.pool->bucket_stats(b).capacity == m.capacity);
    return sl.buckets.emplace(b, std::move(m)).first->second;
  }

  // ---- model steps (apply the real result, check it against what the model allows) --------------

  // A fetch from sl for d returned r (directly or inside the rotation).
  void apply_fetch(slot& sl, const endpoint& d, const fnat::sa_fetch_result& r) {
    if (d.addr.family() != sl.family) {
      FUZZ_CHECK(r.status == errc::invalid_argument && r.port == 0);
      ++sl.family_mismatch;
      return;
    }
    const std::size_t b = bucket_of(sl, d);
    bucket_model& m = touch(sl, b, d);
    if (m.free() == 0) {
      FUZZ_CHECK(r.status == errc::exhausted && r.port == 0);
      ++m.misses;
      return;
    }
    FUZZ_CHECK(r.status == errc::ok);
    if (m.initial_left != 0) {
      // First pass over the ring: the policy's order (ascending), or a permutation when shuffled.
      FUZZ_CHECK(r.port >= s_.low && r.port <= s_.high);
      const std::size_t i = r.port - s_.low;
      FUZZ_CHECK(m.initial[i] == 1);
      if (!s_.shuffle) {
        while (m.initial[m.cursor] == 0) ++m.cursor;
        FUZZ_CHECK(i == m.cursor);  // the lowest port not fetched yet
      }
      m.initial[i] = 0;
      --m.initial_left;
    } else {
      FUZZ_CHECK(m.released.front() == r.port);  // FIFO: the oldest released port
      m.released.pop_front();
    }
    FUZZ_CHECK(admits(sl, d, r.port));  // the invariant: this lcore's port / the reply comes back here
    FUZZ_CHECK(m.used.emplace(r.port, d).second);
    FUZZ_CHECK(sl.pool->in_use(b, r.port));
  }

  // A release of `port` to sl for d returned `got`.
  void apply_release(slot& sl, const endpoint& d, std::uint16_t port, errc got) {
    if (d.addr.family() != sl.family) {
      FUZZ_CHECK(got == errc::invalid_argument);
      ++sl.family_mismatch;
      return;
    }
    const std::size_t b = bucket_of(sl, d);
    bucket_model& m = touch(sl, b, d);
    if (!admits(sl, d, port)) {
      FUZZ_CHECK(got == errc::foreign);
      ++m.foreign;
      FUZZ_CHECK(!sl.pool->in_use(b, port));
      return;
    }
    const auto it = m.used.find(port);
    if (it == m.used.end()) {
      FUZZ_CHECK(got == errc::not_in_use);
      ++m.not_in_use;
      FUZZ_CHECK(!sl.pool->in_use(b, port));
      return;
    }
    FUZZ_CHECK(got == errc::ok);
    m.used.erase(it);
    m.released.push_back(port);
    FUZZ_CHECK(!sl.pool->in_use(b, port));
  }

  void fetch(std::size_t k, const endpoint& d) {
    slot& sl = *pools_[k];
    apply_fetch(sl, d, sl.pool->fetch(d));
  }
  errc release(std::size_t k, const endpoint& d, std::uint16_t port) {
    slot& sl = *pools_[k];
    const errc got = sl.pool->release(d, port);
    apply_release(sl, d, port, got);
    return got;
  }

  // The i-th port in use of pool k (over its buckets in order), if any.
  std::optional<std::pair<std::uint16_t, endpoint>> pick_used(std::size_t k, std::size_t i) {
    std::size_t total = 0;
    for (const auto& [b, m] : pools_[k]->buckets) total += m.used.size();
    if (total == 0) return std::nullopt;
    i %= total;
    for (const auto& [b, m] : pools_[k]->buckets) {
      if (i < m.used.size()) {
        auto it = m.used.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(i));
        return std::pair{it->first, it->second};
      }
      i -= m.used.size();
    }
    return std::nullopt;
  }

  // Releases every port pool k has in use, bucket by bucket, in port order.
  void release_all(std::size_t k) {
    for (auto& [b, m] : pools_[k]->buckets) {
      const std::vector<std::pair<std::uint16_t, endpoint>> used(m.used.begin(), m.used.end());
      for (const auto& [port, d] : used) FUZZ_CHECK(release(k, d, port) == errc::ok);
    }
  }

  // ---- the rotation -----------------------------------------------------------------------------

  void rotation_fetch(const endpoint& d) {
    const fnat::sa_rotation_result r = rot_.fetch(d);
    const std::size_t n = members_.size();
    std::size_t i = cursor_;
    bool family_seen = false;
    for (std::size_t tried = 0; tried < n; ++tried) {
      slot& sl = *pools_[members_[i]];
      i = i + 1 == n ? 0 : i + 1;
      if (sl.family != d.addr.family()) continue;  // skipped: not counted as a family mismatch
      family_seen = true;
      const std::size_t b = bucket_of(sl, d);
      bucket_model& m = touch(sl, b, d);
      if (m.free() == 0) {
        ++m.misses;  // the rotation asked this pool and it was exhausted for d
        continue;
      }
      FUZZ_CHECK(r.status == errc::ok && r.lip == sl.lip);
      apply_fetch(sl, d, fnat::sa_fetch_result{r.status, r.port});
      cursor_ = i;
      return;
    }
    ++failed_;
    FUZZ_CHECK(r.status == (family_seen ? errc::exhausted : errc::invalid_argument));
    FUZZ_CHECK(r.port == 0);
  }

  void rotation_release(std::size_t k, const endpoint& d, std::uint16_t port) {
    slot& sl = *pools_[k];
    const errc got = rot_.release(sl.lip, d, port);
    if (std::find(members_.begin(), members_.end(), k) == members_.end()) {
      FUZZ_CHECK(got == errc::not_found);
      return;
    }
    apply_release(sl, d, port, got);
  }

  void rotation_toggle(std::size_t k) {
    slot& sl = *pools_[k];
    const auto it = std::find(members_.begin(), members_.end(), k);
    if (it == members_.end()) {
      FUZZ_CHECK(rot_.find(sl.lip) == nullptr);
      FUZZ_CHECK(rot_.remove(sl.lip).err().code() == errc::not_found);
      FUZZ_CHECK(rot_.add(*sl.pool).has_value());
      members_.push_back(k);
    } else {
      FUZZ_CHECK(rot_.find(sl.lip) == &*sl.pool);
      FUZZ_CHECK(rot_.add(*sl.pool).err().code() == errc::exists);
      FUZZ_CHECK(rot_.remove(sl.lip).has_value());
      const auto i = static_cast<std::size_t>(it - members_.begin());
      members_.erase(it);
      if (cursor_ > i) --cursor_;
      if (cursor_ >= members_.size()) cursor_ = 0;
    }
  }

  // ---- one operation ----------------------------------------------------------------------------

  std::size_t pick_pool() { return in_.u8() % pools_.size(); }

  // A port for a release that may be anything: in use here, in range, just outside it, or random.
  std::uint16_t odd_port(std::size_t k) {
    const std::uint8_t how = in_.u8();
    const std::uint16_t x = in_.u16();
    switch (how % 5) {
      case 0: return x;
      case 1: return static_cast<std::uint16_t>(s_.low + x % (s_.high - s_.low + 1));
      case 2: return static_cast<std::uint16_t>(s_.low - 1);  // 0 when the range starts at 1
      case 3: return static_cast<std::uint16_t>(s_.high + 1);  // 0 when it ends at 65535
      default: {
        const auto u = pick_used(k, x);
        return u ? u->first : x;
      }
    }
  }

  // Every operation reads the same number of bytes whatever the state, so that a seed written
  // as a list of operations (make_model_seeds.py) stays aligned.
  void step() {
    const std::uint8_t op = in_.u8();
    const ip_family fam = s_.family;
    switch (op % 13) {
      case 0: {  // fetch
        const std::size_t k = pick_pool();
        fetch(k, dest_of(pools_[k]->family, in_.u8()));
        break;
      }
      case 1: {  // a burst of fetches to one destination: reaches exhaustion
        const std::size_t k = pick_pool();
        const endpoint d = dest_of(pools_[k]->family, in_.u8());
        const unsigned count = 1u + in_.u8();
        for (unsigned i = 0; i < count; ++i) fetch(k, d);
        break;
      }
      case 2: {  // release a port in use, with the destination that fetched it
        const std::size_t k = pick_pool();
        if (const auto u = pick_used(k, in_.u16())) FUZZ_CHECK(release(k, u->second, u->first) == errc::ok);
        break;
      }
      case 3: {  // release an arbitrary port with an arbitrary destination
        const std::size_t k = pick_pool();
        const endpoint d = dest_of(pools_[k]->family, in_.u8());
        release(k, d, odd_port(k));
        break;
      }
      case 4: {  // double release
        const std::size_t k = pick_pool();
        if (const auto u = pick_used(k, in_.u16())) {
          FUZZ_CHECK(release(k, u->second, u->first) == errc::ok);
          FUZZ_CHECK(release(k, u->second, u->first) == errc::not_in_use);
        }
        break;
      }
      case 5: {  // a destination of the other family: fetch or release
        const std::size_t k = pick_pool();
        const endpoint d = dest_of(other(pools_[k]->family), in_.u8());
        const bool do_fetch = in_.bit();
        const std::uint16_t port = odd_port(k);
        if (do_fetch)
          fetch(k, d);
        else
          release(k, d, port);
        break;
      }
      case 6:  // rotation fetch (either family: a family no pool has is refused)
        rotation_fetch(dest_of((in_.u8() & 0x80) ? other(fam) : fam, in_.u8()));
        break;
      case 7: {  // rotation release: a port in use, or an odd one
        const std::size_t k = pick_pool();
        const std::uint8_t how = in_.u8();
        const auto u = pick_used(k, in_.u16());
        const endpoint d = dest_of(pools_[k]->family, in_.u8());
        const std::uint16_t port = odd_port(k);
        if (u && (how & 1))
          rotation_release(k, u->second, u->first);
        else
          rotation_release(k, d, port);
        break;
      }
      case 8:  // take a LIP out of the rotation, or put it back
        rotation_toggle(pick_pool());
        break;
      case 9: {  // move a pool out and back: the same block, the same state, the same address
        const std::size_t k = pick_pool();
        pool_type& p = *pools_[k]->pool;
        const fnat::sa_pool_stats before = p.stats();
        pool_type tmp(std::move(p));
        FUZZ_CHECK(tmp.stats().free == before.free && tmp.stats().used == before.used);
        p = std::move(tmp);
        const fnat::sa_pool_stats after = p.stats();
        FUZZ_CHECK(after.free == before.free && after.used == before.used && after.misses == before.misses &&
                   after.family_mismatch == before.family_mismatch);
        break;
      }
      case 10:  // release everything pool k has in use
        release_all(pick_pool());
        break;
      case 11: {  // fetch for a destination from a wide space (many buckets)
        const std::size_t k = pick_pool();
        const std::uint16_t a = in_.u16();
        const std::uint16_t port = in_.u16();
        fetch(k, dest_wide(pools_[k]->family, a, port));
        break;
      }
      default: {  // release a port in use with another destination: ok iff it maps to the same bucket
        const std::size_t k = pick_pool();
        const auto u = pick_used(k, in_.u16());
        const endpoint d = dest_of(pools_[k]->family, in_.u8());
        if (u) release(k, d, u->first);
        break;
      }
    }
  }

  // ---- checks -----------------------------------------------------------------------------------

  void check_fresh(const slot& sl) const {
    const pool_type& p = *sl.pool;
    const fnat::sa_pool_stats t = p.stats();
    FUZZ_CHECK(t.used == 0 && t.free == t.capacity && t.misses == 0 && t.family_mismatch == 0);
    if constexpr (std::is_same_v<Policy, fnat::hashed_buckets>) {
      FUZZ_CHECK(p.bucket_count() == s_.buckets);
      FUZZ_CHECK(t.capacity == s_.buckets * s_.plan->port_count(s_.lcore));
    } else {
      // bucket_count = 2^|D| with D the RETA index bits on which "entry is my queue" depends.
      std::uint32_t dmask = 0;
      const std::size_t r = s_.reta.size();
      for (std::size_t k = 1; k < r; k <<= 1)
        for (std::size_t i = 0; i < r; ++i)
          if ((s_.reta[i] == s_.queue) != (s_.reta[i ^ k] == s_.queue)) {
            dmask |= static_cast<std::uint32_t>(k);
            break;
          }
      const std::size_t nb = std::size_t{1} << std::popcount(dmask);
      FUZZ_CHECK(p.bucket_count() == nb);
      // Every port of the range is admitted by (entries of my queue) * nb / R buckets.
      const std::size_t entries = static_cast<std::size_t>(std::count(s_.reta.begin(), s_.reta.end(), s_.queue));
      const std::size_t width = std::size_t{s_.high} - s_.low + 1;
      FUZZ_CHECK(std::size_t{t.capacity} * r == entries * nb * width);
    }
  }

  void check_all() const {
    for (const auto& up : pools_) {
      const slot& sl = *up;
      const pool_type& p = *sl.pool;
      fnat::sa_pool_stats sum;
      for (std::size_t b = 0; b < p.bucket_count(); ++b) {
        const fnat::sa_pool_stats st = p.bucket_stats(b);
        FUZZ_CHECK(st.free + st.used == st.capacity);
        FUZZ_CHECK(st.family_mismatch == 0);
        const auto it = sl.buckets.find(b);
        if (it == sl.buckets.end()) {
          FUZZ_CHECK(st.used == 0 && st.misses == 0 && st.release_not_in_use == 0 && st.release_foreign == 0);
          if constexpr (std::is_same_v<Policy, fnat::hashed_buckets>) FUZZ_CHECK(st.capacity == s_.plan->port_count(s_.lcore));
        } else {
          const bucket_model& m = it->second;
          FUZZ_CHECK(m.free() + m.used.size() == m.capacity);
          FUZZ_CHECK(st.capacity == m.capacity);
          FUZZ_CHECK(st.used == m.used.size());
          FUZZ_CHECK(st.free == m.free());
          FUZZ_CHECK(st.misses == m.misses);
          FUZZ_CHECK(st.release_not_in_use == m.not_in_use);
          FUZZ_CHECK(st.release_foreign == m.foreign);
        }
        sum.capacity += st.capacity;
        sum.free += st.free;
        sum.used += st.used;
        sum.misses += st.misses;
        sum.release_not_in_use += st.release_not_in_use;
        sum.release_foreign += st.release_foreign;
      }
      const fnat::sa_pool_stats t = p.stats();
      FUZZ_CHECK(t.capacity == sum.capacity && t.free == sum.free && t.used == sum.used && t.misses == sum.misses &&
                 t.release_not_in_use == sum.release_not_in_use && t.release_foreign == sum.release_foreign);
      FUZZ_CHECK(t.family_mismatch == sl.family_mismatch);
    }
    FUZZ_CHECK(rot_.size() == members_.size());
    FUZZ_CHECK(rot_.failed_fetches() == failed_);
    for (std::size_t k : members_) FUZZ_CHECK(rot_.find(pools_[k]->lip) == &*pools_[k]->pool);
  }

  // Releases everything in use; every bucket must then hold exactly its initial ports.
  void finish() {
    for (std::size_t k = 0; k < pools_.size(); ++k) release_all(k);
    check_all();
    for (const auto& up : pools_) {
      const pool_type& p = *up->pool;
      for (std::size_t b = 0; b < p.bucket_count(); ++b) {
        const fnat::sa_pool_stats st = p.bucket_stats(b);
        FUZZ_CHECK(st.used == 0 && st.free == st.capacity);
      }
      for (const auto& [b, m] : up->buckets) {
        FUZZ_CHECK(m.free() == m.capacity);
        for (std::size_t i = 0; i < m.initial.size(); ++i)
          if (m.initial[i]) FUZZ_CHECK(!p.in_use(b, static_cast<std::uint16_t>(s_.low + i)));
        for (std::uint16_t port : m.released) FUZZ_CHECK(!p.in_use(b, port));
      }
    }
  }

  setup s_;
  fnat::fuzz::reader& in_;
  std::vector<std::unique_ptr<slot>> pools_;  // stable addresses: the rotation points at the pools
  fnat::sa_pool_rotation<Policy> rot_;
  std::vector<std::size_t> members_;  // pools in the rotation, in its order
  std::size_t cursor_ = 0;
  std::uint64_t failed_ = 0;
};

// The RETA of the header's fill mode, over queue ids 0..n-1.
std::vector<std::uint16_t> make_reta(std::size_t size, std::size_t n, std::uint8_t fill, fnat::fuzz::reader& in) {
  std::vector<std::uint16_t> r(size);
  for (std::size_t i = 0; i < size; ++i) {
    switch (fill & 3) {
      case 0: r[i] = static_cast<std::uint16_t>(i % n); break;
      case 1: r[i] = static_cast<std::uint16_t>(in.u8() % n); break;
      case 2: r[i] = static_cast<std::uint16_t>((i * n) / size); break;
      default: r[i] = static_cast<std::uint16_t>(i < n ? i : 0); break;
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fnat::fuzz::reader in(data, size);
  const std::uint8_t mode = in.u8();
  const std::size_t n = 1 + in.u8() % 16;
  const std::size_t which = in.u8() % n;
  const std::uint8_t bits_byte = in.u8();
  const std::uint16_t low_seed = in.u16();
  const std::uint8_t width_byte = in.u8();
  const std::uint8_t size_byte = in.u8();
  const std::uint8_t param = in.u8();
  const std::uint64_t shuffle_seed = in.u8();

  setup s;
  s.rss = (mode & 1) != 0;
  s.family = (mode & 2) ? ip_family::v6 : ip_family::v4;
  s.shuffle = (mode & 4) != 0;
  const bool bind = (mode & 8) != 0;
  const std::size_t lips = std::max<std::size_t>(1, (mode >> 4) & 3);
  const bool mixed = (mode & 0x40) != 0;
  const bool wide = (mode & 0x80) != 0;
  const std::uint32_t width = wide ? (s.rss ? 1u + 4u * width_byte : 1u + 16u * width_byte) : 1u + width_byte;
  s.low = static_cast<std::uint16_t>(1 + low_seed % (65536 - width));
  s.high = static_cast<std::uint16_t>(s.low + width - 1);

  if (!s.rss) {
    fnat::port_plan_config pc;
    for (std::size_t i = 0; i < n; ++i)
      pc.lcores.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
    pc.port_low = s.low;
    pc.port_high = s.high;
    const unsigned need = static_cast<unsigned>(std::bit_width(n - 1));
    pc.class_bits = bits_byte % 5 == 0 ? 0u : std::min(12u, need + bits_byte % 5 - 1);
    auto plan = fnat::port_plan::make(pc);
    if (!plan) {
      if (fnat::fuzz::summary_wanted()) std::fprintf(stderr, "fuzz_sa_pool: %s\n", plan.err().message().c_str());
      FUZZ_CHECK(plan.err().code() == errc::invalid_argument);  // e.g. a range too narrow for some lcore
      return 0;
    }
    s.plan.emplace(std::move(*plan));
    s.lcore = which;
    s.buckets = 1 + size_byte % 32;
    auto policy = fnat::hashed_buckets::make(*s.plan, s.lcore, {.buckets = s.buckets, .hash_seed = param});
    FUZZ_CHECK(policy.has_value());
    FUZZ_CHECK(policy->dense_size() == s.plan->dense_size(s.lcore));
    harness<fnat::hashed_buckets> h(std::move(s), in);
    std::size_t k = 0;
    for (std::size_t i = 0; i < lips; ++i, ++k) {
      const fnat::inet_addr lip = lip_addr(mode & 2 ? ip_family::v6 : ip_family::v4, i);
      FUZZ_CHECK(h.add_pool(lip, lip.family(), *policy, *policy, shuffle_seed + i));
      h.add_to_rotation(k);
    }
    if (mixed) {
      const fnat::inet_addr lip = lip_addr(mode & 2 ? ip_family::v4 : ip_family::v6, 7);
      FUZZ_CHECK(h.add_pool(lip, lip.family(), *policy, *policy, shuffle_seed + 7));
      h.add_to_rotation(k);
    }
    h.run();
    return 0;
  }

  s.reta = make_reta(std::size_t{1} << (size_byte % 7), n, param, in);
  s.queue = static_cast<std::uint16_t>(which);
  const std::span<const std::uint8_t> key =
      (param & 0x80) ? std::span<const std::uint8_t>(fnat::rss_key_symmetric) : fnat::rss_key_microsoft;
  auto tz = fnat::toeplitz_table::make(key);
  FUZZ_CHECK(tz.has_value());
  s.tz.emplace(std::move(*tz));
  auto make_policy = [&](ip_family f) {
    return fnat::rss_buckets::make(
        {.family = f, .key = key, .reta = s.reta, .queue = s.queue, .port_low = s.low, .port_high = s.high});
  };
  auto policy = make_policy(s.family);
  if (!policy) {
    if (fnat::fuzz::summary_wanted()) std::fprintf(stderr, "fuzz_sa_pool: %s\n", policy.err().message().c_str());
    // No RETA entry for the queue, or (with a narrow range or the symmetric key) a class of
    // destinations that no port of the range can serve: refused with a reason, never a bad pool.
    FUZZ_CHECK(policy.err().code() == errc::invalid_argument || policy.err().code() == errc::not_supported);
    FUZZ_CHECK(!policy.err().message().empty());
    return 0;
  }
  std::optional<fnat::rss_buckets> other_policy;
  if (mixed) {
    auto o = make_policy(other(s.family));
    if (o) other_policy.emplace(std::move(*o));
  }
  const ip_family fam = s.family;
  harness<fnat::rss_buckets> h(std::move(s), in);
  std::size_t k = 0;
  for (std::size_t i = 0; i < lips; ++i, ++k) {
    const fnat::inet_addr lip = lip_addr(fam, i);
    FUZZ_CHECK(h.add_pool(lip, fam, *policy, bind ? policy->bound_to(lip) : *policy, shuffle_seed + i));
    h.add_to_rotation(k);
  }
  if (other_policy) {
    const fnat::inet_addr lip = lip_addr(other(fam), 7);
    FUZZ_CHECK(h.add_pool(lip, other(fam), *other_policy, bind ? other_policy->bound_to(lip) : *other_policy,
                          shuffle_seed + 7));
    h.add_to_rotation(k);
  }
  h.run();
  return 0;
}
