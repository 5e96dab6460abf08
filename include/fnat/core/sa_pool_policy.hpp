// SPDX-License-Identifier: BSD-3-Clause
// The bucket policy of an sa_pool: which bucket a destination uses, which ports a bucket hands out.
//
// ## Why buckets
// A FullNAT connection is (LIP, lport) -> (RS, rport) on the server side, so one lport may serve many
// real servers at once: the tuples differ in the destination. DPVS therefore splits each (LIP, lcore)
// pool into `sa_pool_hash_size` (default 16) buckets chosen by a hash of the destination, and every
// bucket holds every port of the lcore. A pool with B buckets can have up to B connections on one
// lport, and a destination can only exhaust its own bucket.
//
// ## The seam (concept `sa_pool_policy`)
// The pool asks its policy five questions and never looks at ports itself:
//   bucket_count()               B >= 1, fixed for the policy object's life;
//   bucket_of(lip, dest)         the bucket of a destination (RS address, host-order port), < B, and the
//                                same answer every time for the same arguments: release must land in
//                                the bucket the fetch came from;
//   admits(b, port)              true when bucket b may hand out `port`: a release of any other port is
//                                refused as foreign;
//   dense_size(), dense_index(p) an injective numbering, below dense_size(), of every port some bucket
//                                admits: it indexes the pool's in-use bitmaps;
//   for_each_port(b, f)          f(port) for each port bucket b hands out, once each, in initial order.
// Optional members, detected at compile time:
//   static constexpr bool uniform_buckets   true when every bucket hands out the same ports in the
//                                            same order: the pool builds bucket 0 and copies it;
//   std::uint32_t port_count(b) noexcept    how many ports for_each_port(b) yields: saves the pool a
//                                            counting pass at construction;
//   static constexpr bool verified_contract  true when the policy guarantees the contract by
//                                            construction and its tests pin it: the pool then skips
//                                            its per-port check outside checked mode.
//   bool has_uniform_buckets() const noexcept    the same two answers at run time, for a policy that
//   bool has_verified_contract() const noexcept  holds one of several (any_buckets.hpp); when present
//                                                they are asked instead of the static members.
// The pool checks the contract at construction (every port admitted, dense index in range, no port
// twice, count as announced) and refuses a policy that breaks it, so a bug in a policy shows up as a
// configuration error, not as two connections on one lport. The check costs ~4 cycles per port (it
// was 2/3 of building a one-lcore pool), hence the opt-out for policies that cannot break it.
//
// ## hashed_buckets, the default
// DPVS's scheme over fnat's port plan: every bucket hands out all ports the plan gives one lcore,
// ascending, and bucket_of is fnat's tuple hash (hash.hpp: CRC32C where SSE4.2 is on) of the
// destination's 16 address bytes, seeded with its port, reduced to B by a multiply-shift
// ((h * B) >> 32, Lemire), which takes any B, not only powers of two. DPVS's IPv4 hash,
// (low 16 address bits + port) % B, puts RS 198.18.2.1:81 and 198.18.2.2:80 in one bucket and
// ignores the upper address bits; a CRC mixes every bit. The LIP is not hashed: it is the same for
// every destination of one pool.
//
// Ports and dense numbers come from the plan without a search: the policy keeps one small table,
// class -> slot among the lcore's classes (or "not mine"), so
//   admits(p)      = low <= p <= high  and  slot[p & mask] != none
//   dense_index(p) = (p >> shift) * k + slot[p & mask]          (k = classes the lcore owns)
// which is port_plan::dense_index for the lcore's ports (the tests pin the equality). An lcore that
// owns one class (any power-of-two lcore count on the default class bits, DPVS's case) skips the
// table: admits(p) = in range and (p & mask) == base, dense_index(p) = p >> shift, so the fast path
// has one dependent load less. The table sits behind a shared_ptr, so copies of the policy (one per
// LIP pool of the lcore) share it, and its element pointer lives inside the shared_ptr object: a
// lookup is one load, no pointer chase.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/port_plan.hpp"

namespace fnat {

/// What sa_pool requires of a bucket policy (see the file comment for the contract). The fast-path
/// members are noexcept; for_each_port runs at construction only.
template <class P>
concept sa_pool_policy =
    std::move_constructible<P> &&
    requires(const P& p, const inet_addr& lip, const endpoint& dest, std::size_t b, std::uint16_t port,
             void (*visit)(std::uint16_t)) {
      { p.bucket_count() } noexcept -> std::convertible_to<std::size_t>;
      { p.bucket_of(lip, dest) } noexcept -> std::convertible_to<std::size_t>;
      { p.admits(b, port) } noexcept -> std::convertible_to<bool>;
      { p.dense_size() } noexcept -> std::convertible_to<std::uint32_t>;
      { p.dense_index(port) } noexcept -> std::convertible_to<std::uint32_t>;
      p.for_each_port(b, visit);
    };

namespace detail {
/// P::uniform_buckets when P declares it, else false.
template <class P>
[[nodiscard]] consteval bool policy_uniform_buckets() noexcept {
  if constexpr (requires { P::uniform_buckets; })
    return static_cast<bool>(P::uniform_buckets);
  else
    return false;
}
/// P::verified_contract when P declares it, else false.
template <class P>
[[nodiscard]] consteval bool policy_verified_contract() noexcept {
  if constexpr (requires { P::verified_contract; })
    return static_cast<bool>(P::verified_contract);
  else
    return false;
}
/// The pool's question for a policy object: its run-time has_uniform_buckets() when it has one,
/// else P::uniform_buckets.
template <class P>
[[nodiscard]] constexpr bool policy_uniform_buckets(const P& p) noexcept {
  if constexpr (requires { { p.has_uniform_buckets() } noexcept -> std::convertible_to<bool>; })
    return p.has_uniform_buckets();
  else
    return policy_uniform_buckets<P>();
}
/// Likewise for verified_contract.
template <class P>
[[nodiscard]] constexpr bool policy_verified_contract(const P& p) noexcept {
  if constexpr (requires { { p.has_verified_contract() } noexcept -> std::convertible_to<bool>; })
    return p.has_verified_contract();
  else
    return policy_verified_contract<P>();
}
/// True when P announces per-bucket port counts.
template <class P>
concept policy_with_port_count = requires(const P& p, std::size_t b) {
  { p.port_count(b) } noexcept -> std::convertible_to<std::uint32_t>;
};
}  // namespace detail

/// Configuration of hashed_buckets. Build with designated initializers: `{.buckets = 16}`.
struct hashed_buckets_config {
  /// Buckets per (LIP, lcore) pool. Each holds a copy of the lcore's ports (2 bytes each), so memory
  /// grows linearly; more buckets let more real servers share one lport. DPVS's default.
  std::size_t buckets = 16;
  /// Seed of the destination hash. Any value works; change it to move destinations between buckets.
  std::uint32_t hash_seed = 0;
};

/// The default sa_pool policy: every bucket hands out all ports a port plan gives one lcore, in
/// ascending order; destinations are spread over the buckets by fnat's tuple hash. Cheap to copy
/// (one shared table, ~40 bytes inline); copies share the table.
class hashed_buckets {
 public:
  /// DPVS's default bucket count (its sa_pool_hash_size).
  static constexpr std::size_t default_buckets = 16;
  /// Most buckets a pool takes: each bucket copies the lcore's ports, so 4096 buckets of a one-lcore
  /// plan are 512 MiB per LIP.
  static constexpr std::size_t max_buckets = 4096;
  /// Every bucket hands out the same ports in the same order.
  static constexpr bool uniform_buckets = true;
  /// Ports, admission and numbering all derive from the plan's arithmetic (test_sa_pool.cpp pins
  /// them against port_plan for every port): the pool need not check them port by port.
  static constexpr bool verified_contract = true;

  /// Builds the policy of lcore `lcore_index` (its position in the plan, not its lcore id).
  /// Errors (errc::invalid_argument): lcore_index outside the plan, buckets == 0 or above
  /// max_buckets. Complexity: O(classes of the plan). The policy keeps what it needs of the plan;
  /// the plan may be destroyed afterwards.
  [[nodiscard]] static result<hashed_buckets> make(const port_plan& plan, std::size_t lcore_index,
                                                   const hashed_buckets_config& cfg = {}) {
    if (lcore_index >= plan.size())
      return error(errc::invalid_argument, "sa_pool policy: lcore index " + std::to_string(lcore_index) +
                                               " is outside the port plan's " + std::to_string(plan.size()) +
                                               " lcores; pass the lcore's position in the plan (port_plan::index_of)");
    if (cfg.buckets == 0)
      return error(
          errc::invalid_argument,
          "sa_pool policy: 0 buckets; use at least 1 (DPVS's default is 16): every destination needs a bucket");
    if (cfg.buckets > max_buckets)
      return error(errc::invalid_argument, "sa_pool policy: " + std::to_string(cfg.buckets) + " buckets, at most " +
                                               std::to_string(max_buckets) +
                                               " are supported (each bucket holds a copy of the lcore's ports)");
    hashed_buckets h;
    const std::size_t classes = plan.class_count();
    const auto bases = plan.bases(lcore_index);
    // Layout: [0, classes) slot of each class or `none`, then the k owned bases ascending.
    auto tables = std::make_shared<std::uint16_t[]>(classes + bases.size());
    for (std::size_t c = 0; c < classes; ++c) tables[c] = none;
    for (std::size_t j = 0; j < bases.size(); ++j) {
      tables[bases[j]] = static_cast<std::uint16_t>(j);
      tables[classes + j] = bases[j];
    }
    h.tables_ = std::move(tables);
    h.buckets_ = static_cast<std::uint32_t>(cfg.buckets);
    h.seed_ = cfg.hash_seed;
    h.dense_size_ = plan.dense_size(lcore_index);
    h.port_count_ = plan.port_count(lcore_index);
    h.classes_ = static_cast<std::uint32_t>(classes);
    h.k_ = static_cast<std::uint32_t>(bases.size());
    h.base0_ = bases[0];
    h.low_ = plan.port_low();
    h.high_ = plan.port_high();
    h.mask_ = plan.mask();
    h.shift_ = plan.shift();
    h.index_ = static_cast<std::uint32_t>(lcore_index);
    return h;
  }

  /// Number of buckets. O(1), noexcept.
  [[nodiscard]] std::size_t bucket_count() const noexcept { return buckets_; }

  /// Bucket of `dest` (address + host-order port); `lip` is not used (see the file comment).
  /// O(1): one CRC32C over 16 bytes and a multiply. noexcept, no allocation.
  [[nodiscard]] std::size_t bucket_of([[maybe_unused]] const inet_addr& lip, const endpoint& dest) const noexcept {
    const std::uint32_t h = crc32c_hash(dest.addr.raw().data(), 16, seed_ ^ (std::uint32_t{dest.port} * 0x9e3779b1u));
    return static_cast<std::size_t>((std::uint64_t{h} * buckets_) >> 32);
  }

  /// True when `port` is one of this lcore's ports in [low, high] (every bucket admits the same).
  /// O(1), one table load. noexcept.
  [[nodiscard]] bool admits([[maybe_unused]] std::size_t bucket, std::uint16_t port) const noexcept {
    if (k_ == 1) return port >= low_ && port <= high_ && (port & mask_) == base0_;
    return port >= low_ && port <= high_ && tables_[port & mask_] != none;
  }

  /// Size of the dense numbering: port_plan::dense_size(lcore index).
  [[nodiscard]] std::uint32_t dense_size() const noexcept { return dense_size_; }

  /// port_plan::dense_index(port). Requires: admits(b, port) for some b. O(1), noexcept.
  [[nodiscard]] std::uint32_t dense_index(std::uint16_t port) const noexcept {
    if (k_ == 1) return std::uint32_t{port} >> shift_;
    return (std::uint32_t{port} >> shift_) * k_ + tables_[port & mask_];
  }

  /// Ports each bucket hands out: port_plan::port_count(lcore index).
  [[nodiscard]] std::uint32_t port_count([[maybe_unused]] std::size_t bucket) const noexcept { return port_count_; }

  /// Calls f(port) for each of the lcore's ports in [low, high], ascending (the plan's order).
  /// O(ports of the lcore); steps through the owned classes, no per-port test over 64K ports.
  template <class F>
  void for_each_port([[maybe_unused]] std::size_t bucket, F&& f) const {
    if (k_ == 1) {  // one class: an arithmetic progression of step 2^shift
      const std::uint32_t step = std::uint32_t{1} << shift_;
      std::uint32_t port = ((low_ >> shift_) << shift_) | base0_;
      if (port < low_) port += step;
      for (; port <= high_; port += step) f(static_cast<std::uint16_t>(port));
      return;
    }
    const std::uint32_t first_hi = std::uint32_t{low_} >> shift_;
    const std::uint32_t last_hi = std::uint32_t{high_} >> shift_;
    const std::uint16_t* bases = tables_.get() + classes_;
    for (std::uint32_t hi = first_hi; hi <= last_hi; ++hi)
      for (std::uint32_t j = 0; j < k_; ++j) {
        const std::uint32_t port = (hi << shift_) | bases[j];
        if (port >= low_ && port <= high_) f(static_cast<std::uint16_t>(port));
      }
  }

  /// The lcore's position in the plan this policy was built from.
  [[nodiscard]] std::size_t lcore_index() const noexcept { return index_; }
  /// The hash seed in use.
  [[nodiscard]] std::uint32_t hash_seed() const noexcept { return seed_; }

 private:
  static constexpr std::uint16_t none = 0xffff;  // slot of a class the lcore does not own
  hashed_buckets() = default;

  // Scalars are 32-bit on purpose: a pool writes its rings through uint16_t pointers, and fields of
  // that type (or of a char type) could alias them, which makes compilers reload them per port.
  std::shared_ptr<const std::uint16_t[]> tables_;
  std::uint32_t buckets_ = 0;
  std::uint32_t seed_ = 0;
  std::uint32_t dense_size_ = 0;
  std::uint32_t port_count_ = 0;
  std::uint32_t classes_ = 0;
  std::uint32_t k_ = 0;
  std::uint32_t base0_ = 0;  // the first owned class: the only one when k_ == 1
  std::uint32_t low_ = 0;
  std::uint32_t high_ = 0;
  std::uint32_t mask_ = 0;
  std::uint32_t index_ = 0;
  std::uint32_t shift_ = 0;
};

static_assert(sa_pool_policy<hashed_buckets>);

}  // namespace fnat
