// SPDX-License-Identifier: BSD-3-Clause
// sa_pool: the local-port allocator of one (local address, lcore), DPVS's sa_pool done compactly.
//
// ## Role
// A FullNAT connection leaves the balancer as LIP:lport -> RS:rport. The lport must be one the port
// plan gives the lcore that owns the connection (the reply is steered by its class), and it must not
// be in use towards the same real server. One sa_pool serves one (LIP, lcore) and is touched only by
// that lcore: no lock, no atomic. Ports are bucketed by destination (sa_pool_policy.hpp), so one lport
// serves up to B real servers at a time, as in DPVS. sa_pool_rotation spreads a service's connections
// over its LIPs and moves on to the next LIP when one is exhausted (DPVS's laddr rotation).
//
// ## Layout
// One block from the allocator, in 64-byte lines:
//   [bucket headers: B x 64 B][in-use bitmaps: B x W x 8 B][rings: B x (C + 1) x 2 B]
// A bucket is a FIFO ring of uint16_t ports holding exactly its free ports, plus a bitmap over the
// policy's dense port numbering (W = ceil(dense_size / 64) words) with a bit set for each port in
// use. The ring has C + 1 slots for C ports (C = ports the bucket hands out, not rounded up to a power
// of two), so head == tail means empty without a count: fetch writes only the head, release only the
// tail, and the two share no counter to hand back and forth through memory. The header keeps head,
// tail, C, pointers into the block and the bucket's counters on one cache line.
//   fetch(dest)          b = bucket_of(dest); empty if head == tail (a miss); port = ring[head];
//                        head = head + 1 (wrap at C + 1); set bit dense_index(port)
//   release(dest, port)  b = bucket_of(dest); refuse unless admits(b, port) (foreign) and the bit is
//                        set (not in use); clear the bit; ring[tail] = port; tail = tail + 1 (wrap)
// Both are O(1) worst case, touch three cache lines (header, ring slot, bitmap word) and allocate
// nothing. The invariant "each port a bucket hands out is in its ring or has its bit set, never both"
// holds after every call, including refused ones: a release is checked before it writes, and the ring
// cannot overflow because a port gets in only when its bit was set, i.e. when it was out.

// ## Why a FIFO
// A released port goes to the tail and comes back last, as DPVS's free list does (list_add_tail):
// after a connection to RS:rport closes, the RS keeps (LIP, lport, RS, rport) in TIME_WAIT for 2*MSL;
// reusing the same lport towards it before that ends makes its SYN look like an old duplicate. A FIFO
// gives each port the longest possible rest, (free ports of the bucket) fetches. A stack (LIFO) would
// hand the port just released straight back. The ring is also what makes this order cheap: DPVS gets
// it from doubly linked lists of 40-byte entries, whose random releases scatter the links over memory.
//
// ## Memory (formulas; the build benchmark reports the figures)
//   per bucket  = 64 + 8 * ceil(D / 64) + 2 * (C + 1)    (C = capacity, D = dense size)
//   per entry   = 2 + D / (8 * C) bytes, plus the header and spare slot share
// With hashed_buckets, full range 1025..65535 and n lcores: C ~ 64511 / n, D = 65536 / n, so
// ~2.13 B per port entry, and per LIP (all lcores, 16 buckets) 16 * (2 * 64511 + 65536 / 8) + n * 1 KiB
// ~ 2.2 MB (2,196,616 B for one lcore, 2,205,184 B for eight, 2,273,728 B for 64, objects included).
// DPVS spends a 40-byte sa_entry {list links 16, address 16, port 2, flags 2, padding} per
// (port >> shift) slot of every bucket: 16 * 65536 * 40 B ~ 42 MB per LIP, ~19 times more.
//
// ## Construction
// The policy's for_each_port steps straight through the lcore's port classes; with uniform buckets
// (hashed_buckets) bucket 0 is built once, checked, and copied to the others with memcpy. The check
// (every port admitted, dense index in range, no port twice) guards against a broken policy; one
// that declares verified_contract (hashed_buckets) skips it outside checked mode. DPVS's
// sa_pool_alloc_hash loops over low..high testing the class mask of every port, once per bucket
// ("the big loop may take tens of milliseconds"): building one lcore's pool of a one-lcore plan takes
// ~30x longer there, of an eight-lcore plan ~90x (sa_pool_bench). Optional: shuffle the initial order of each bucket
// (sa_pool_options::shuffle), RFC 6056's port randomisation done once at build time instead of a
// random probe per connection; default off (ascending, like DPVS).
//
// ## Statistics
// Per bucket and in total: capacity, free, used, misses (fetch on an exhausted bucket), refused
// releases by reason (not in use, foreign); per pool: fetches and releases refused for a destination
// of the other address family (no NAT64 here).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/sa_pool_policy.hpp"

// Checked mode: misuse the pool cannot report through its return values (a policy that breaks its
// contract, use of a moved-from pool) stops the program with a message saying what to fix.
#define FNAT_SA_POOL_EXPECT(cond, msg) FNAT_EXPECT("sa_pool", cond, msg)

namespace fnat {

/// Result of sa_pool::fetch: `status` is errc::ok and `port` (host order) the local port, or
/// errc::exhausted (the destination's bucket is empty; counted as a miss) or errc::invalid_argument
/// (destination of the other address family than the LIP), with port 0.
struct sa_fetch_result {
  errc status = errc::ok;
  std::uint16_t port = 0;    ///< host byte order
  std::uint16_t bucket = 0;  ///< the destination's bucket: keep it for release_in (no second bucket_of)
};

/// Counters of one bucket, or of a whole pool (the sum over its buckets).
struct sa_pool_stats {
  std::uint32_t capacity = 0;             ///< ports the bucket(s) hand out
  std::uint32_t free = 0;                 ///< ports ready to be fetched
  std::uint32_t used = 0;                 ///< ports handed out and not yet released
  std::uint64_t misses = 0;               ///< fetches refused: bucket exhausted
  std::uint64_t release_not_in_use = 0;   ///< releases refused: port not handed out (double release)
  std::uint64_t release_foreign = 0;      ///< releases refused: port the bucket does not admit
  std::uint64_t family_mismatch = 0;      ///< fetches and releases refused: dest family != LIP family
                                          ///< (pool total only; 0 in bucket stats)
};

/// Build options of an sa_pool. Build with designated initializers: `{.shuffle = true, .shuffle_seed = s}`.
struct sa_pool_options {
  /// Shuffle each bucket's initial order (RFC 6056 port randomisation, done once at build time) so
  /// the first lports are not predictable. Off: the policy's order (ascending for hashed_buckets, as
  /// in DPVS). Costs one pass with a PRNG over every bucket at construction.
  bool shuffle = false;
  /// Seed of the shuffle, mixed with the LIP and the bucket index. Take it from a real entropy source
  /// when the point is unpredictability.
  std::uint64_t shuffle_seed = 0;
};

namespace detail {
/// splitmix64 (Steele, Lea, Flood 2014): a tiny generator, good enough to shuffle port orders and
/// identical on every platform.
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t operator()() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n), n >= 1 (Lemire's multiply-shift; the bias is below n / 2^64).
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>((static_cast<unsigned __int128>((*this)()) * n) >> 64);
  }
};

/// inet_addr::is_v4() in two loads and compares: the fast path checks the family of every
/// destination, and the generic byte loop costs more than the rest of a fetch.
[[nodiscard]] inline bool is_v4_mapped_fast(const inet_addr& a) noexcept {
  std::uint64_t head;
  std::uint32_t mid;
  std::memcpy(&head, a.raw().data(), 8);
  std::memcpy(&mid, a.raw().data() + 8, 4);
  return head == 0 && mid == hton32(0x0000ffffu);
}
}  // namespace detail

/// Local ports of one (LIP, lcore), bucketed by destination. See the file comment.
///
/// Thread safety: none by design; one lcore owns the pool. Memory: one block from `Allocator`
/// (rebound to a 64-byte aligned line type), owned by the pool, so an rte_malloc allocator puts the
/// fast-path state in hugepages. Movable (the block moves with its allocator), not copyable.
template <sa_pool_policy Policy = hashed_buckets, class Allocator = std::allocator<std::byte>>
class sa_pool {
  struct alignas(64) line {
    std::byte bytes[64];
  };
  using line_alloc = typename std::allocator_traits<Allocator>::template rebind_alloc<line>;
  using line_traits = std::allocator_traits<line_alloc>;
  using line_pointer = typename line_traits::pointer;

  struct alignas(64) bucket {
    std::uint16_t* ring;                 // capacity + 1 slots; the free ports are [head, tail)
    std::uint64_t* bits;                 // in-use bitmap over the dense numbering
    std::uint32_t capacity;
    std::uint32_t head;                  // next port handed out; written by fetch only
    std::uint32_t tail;                  // next slot a release fills; written by release only
    std::uint64_t misses;
    std::uint64_t release_not_in_use;
    std::uint64_t release_foreign;
  };
  static_assert(sizeof(bucket) == 64);

 public:
  using policy_type = Policy;
  using allocator_type = Allocator;

  /// Most buckets a pool takes, whatever its policy says.
  static constexpr std::size_t max_buckets = std::size_t{1} << 16;

  /// Builds the pool of local address `lip` with `policy`'s buckets, each holding the ports the
  /// policy hands out, all free.
  /// Errors: errc::invalid_argument when lip is 0.0.0.0 or ::, the policy has 0 buckets (or more
  /// than max_buckets), a dense size of 0 or above 65536, a bucket without a port, or breaks its
  /// contract (a port it does not admit, a dense index out of range, a port twice in one bucket, a
  /// port_count other than what for_each_port yields); errc::no_memory when the allocator fails.
  /// Complexity: with uniform buckets, O(C) policy calls for bucket 0 and a memcpy of the other
  /// B - 1 rings (2 * C bytes each); otherwise O(B * C) policy calls; shuffle adds O(B * C). Allocates
  /// the pool's block once (and a temporary vector of bucket capacities).
  [[nodiscard]] static result<sa_pool> make(inet_addr lip, Policy policy, const sa_pool_options& options,
                                           Allocator alloc = Allocator()) {
    if (lip.is_unspecified())
      return error(errc::invalid_argument, "sa_pool: local address " + lip.to_string() +
                                               " is unspecified; give the LIP connections leave from");
    const std::size_t nb = policy.bucket_count();
    if (nb == 0)
      return error(
          errc::invalid_argument,
          "sa_pool " + lip.to_string() + ": the policy has 0 buckets; every destination needs one (DPVS uses 16)");
    if (nb > max_buckets)
      return error(errc::invalid_argument, "sa_pool " + lip.to_string() + ": the policy has " + std::to_string(nb) +
                                               " buckets, at most " + std::to_string(max_buckets) + " are supported");
    const std::uint32_t dense = policy.dense_size();
    if (dense == 0 || dense > 65536)
      return error(errc::invalid_argument, "sa_pool " + lip.to_string() + ": the policy's dense_size() is " +
                                               std::to_string(dense) + "; it must be 1..65536 (one number per port)");

    const bool uniform = detail::policy_uniform_buckets(policy);
    // Capacities: announced by the policy, or counted with one pass over its ports.
    std::vector<std::uint32_t> caps(uniform ? 1 : nb, 0);
    for (std::size_t b = 0; b < caps.size(); ++b) {
      if constexpr (detail::policy_with_port_count<Policy>) {
        caps[b] = policy.port_count(b);
      } else {
        std::uint32_t n = 0;
        policy.for_each_port(b, [&n](std::uint16_t) { ++n; });
        caps[b] = n;
      }
      if (caps[b] == 0)
        return error(errc::invalid_argument, "sa_pool " + lip.to_string() + ": bucket " + std::to_string(b) +
                                                 " of the policy hands out no port, so destinations hashed there could "
                                                 "never connect; widen the port range or use fewer buckets");
      if (caps[b] > dense)
        return error(errc::invalid_argument, "sa_pool " + lip.to_string() + ": bucket " + std::to_string(b) +
                                                 " hands out " + std::to_string(caps[b]) +
                                                 " ports, more than the policy's dense_size() " +
                                                 std::to_string(dense));
    }
    const auto cap_of = [&](std::size_t b) { return caps[uniform ? 0 : b]; };

    const std::size_t words = (std::size_t{dense} + 63) / 64;
    std::size_t ring_entries = 0;
    for (std::size_t b = 0; b < nb; ++b) ring_entries += std::size_t{cap_of(b)} + 1;
    const std::size_t header_bytes = nb * sizeof(bucket);
    const std::size_t bits_bytes = nb * words * sizeof(std::uint64_t);
    const std::size_t bytes = header_bytes + bits_bytes + ring_entries * sizeof(std::uint16_t);
    const std::size_t lines = (bytes + sizeof(line) - 1) / sizeof(line);

    sa_pool pool(lip, std::move(policy), std::move(alloc));
    try {
      pool.block_ = line_traits::allocate(pool.alloc_, lines);
    } catch (const std::bad_alloc&) {
      pool.block_ = nullptr;
    }
    if (pool.block_ == nullptr)
      return error(errc::no_memory, "sa_pool " + lip.to_string() + ": the allocator refused " + std::to_string(bytes) +
                                        " bytes for " + std::to_string(nb) + " buckets; give it more memory or use "
                                                                             "fewer buckets");
    pool.lines_ = lines;
    pool.buckets_ = nb;
    auto* base = reinterpret_cast<std::byte*>(std::to_address(pool.block_));
    auto* bits = reinterpret_cast<std::uint64_t*>(base + header_bytes);
    auto* rings = reinterpret_cast<std::uint16_t*>(base + header_bytes + bits_bytes);
    pool.bucket_ = reinterpret_cast<bucket*>(base);
    std::uninitialized_fill_n(bits, nb * words, std::uint64_t{0});
    for (std::size_t b = 0; b < nb; ++b) {
      std::construct_at(&pool.bucket_[b], bucket{rings, bits, cap_of(b), 0, cap_of(b), 0, 0, 0});
      rings += std::size_t{cap_of(b)} + 1;
      bits += words;
    }

    // Fill (and check) the rings: every bucket, or bucket 0 and copies.
    const std::size_t built = uniform ? 1 : nb;
    for (std::size_t b = 0; b < built; ++b)
      if (auto e = pool.fill_bucket(b); !e) return e.err();
    for (std::size_t b = built; b < nb; ++b)
      std::memcpy(pool.bucket_[b].ring, pool.bucket_[0].ring, std::size_t{cap_of(b)} * sizeof(std::uint16_t));
    if (options.shuffle) {
      const std::uint64_t lip_mix = crc32c_hash(lip.raw().data(), 16, 0x5a5a5a5au);
      for (std::size_t b = 0; b < nb; ++b) {
        detail::splitmix64 rng{options.shuffle_seed ^ (lip_mix << 32) ^ (std::uint64_t{b} * 0xd1b54a32d192ed03ULL)};
        bucket& k = pool.bucket_[b];
        for (std::uint32_t i = k.capacity - 1; i > 0; --i) std::swap(k.ring[i], k.ring[rng.below(i + 1)]);
      }
    }
    return pool;
  }

  /// make(lip, policy, {}, alloc): ascending initial order.
  [[nodiscard]] static result<sa_pool> make(inet_addr lip, Policy policy, Allocator alloc = Allocator()) {
    return make(lip, std::move(policy), sa_pool_options{}, std::move(alloc));
  }

  sa_pool(const sa_pool&) = delete;
  sa_pool& operator=(const sa_pool&) = delete;

  /// Takes over other's block (with its allocator). `other` is left empty: only destruction or
  /// assignment may follow. noexcept when Policy and Allocator move without throwing.
  sa_pool(sa_pool&& other) noexcept(std::is_nothrow_move_constructible_v<Policy> &&
                                    std::is_nothrow_move_constructible_v<line_alloc>)
      : lip_(other.lip_),
        lip_v4_(other.lip_v4_),
        policy_(std::move(other.policy_)),
        alloc_(std::move(other.alloc_)),
        block_(std::exchange(other.block_, nullptr)),
        bucket_(std::exchange(other.bucket_, nullptr)),
        lines_(std::exchange(other.lines_, 0)),
        buckets_(std::exchange(other.buckets_, 0)),
        family_mismatch_(other.family_mismatch_) {}

  /// Frees this pool's block with its own allocator, then takes over other's block and allocator
  /// (the block always travels with the allocator that made it). Do not assign to a pool an
  /// sa_pool_rotation refers to: the rotation remembers the LIP it was added with.
  sa_pool& operator=(sa_pool&& other) noexcept(std::is_nothrow_move_assignable_v<Policy> &&
                                               std::is_nothrow_move_assignable_v<line_alloc>) {
    if (this != &other) {
      free_block();
      lip_ = other.lip_;
      lip_v4_ = other.lip_v4_;
      policy_ = std::move(other.policy_);
      alloc_ = std::move(other.alloc_);
      block_ = std::exchange(other.block_, nullptr);
      bucket_ = std::exchange(other.bucket_, nullptr);
      lines_ = std::exchange(other.lines_, 0);
      buckets_ = std::exchange(other.buckets_, 0);
      family_mismatch_ = other.family_mismatch_;
    }
    return *this;
  }

  ~sa_pool() { free_block(); }

  // ---- fast path ------------------------------------------------------------------------------

  /// Hands out a local port for a connection to `dest` (RS address, host-order port): the oldest
  /// free port of dest's bucket.
  /// Returns {ok, port}; {exhausted, 0} when the bucket has no free port (counts a miss);
  /// {invalid_argument, 0} when dest is not of the LIP's family (counted in family_mismatch).
  /// Complexity: O(1) worst case. noexcept, no allocation. Invalidates nothing.
  [[nodiscard]] FNAT_ALWAYS_INLINE sa_fetch_result fetch(const endpoint& dest) noexcept {
    FNAT_SA_POOL_EXPECT(bucket_ != nullptr, "fetch on a moved-from pool; fetch from the pool it was moved to");
    if (detail::is_v4_mapped_fast(dest.addr) != lip_v4_) [[unlikely]] {
      ++family_mismatch_;
      return {errc::invalid_argument, 0};
    }
    const auto b = static_cast<std::uint16_t>(policy_.bucket_of(lip_, dest));
    bucket& k = bucket_at(b);
    const std::uint32_t h = k.head;
    if (h == k.tail) [[unlikely]] {
      ++k.misses;
      return {errc::exhausted, 0, b};
    }
    const std::uint16_t port = k.ring[h];
    k.head = h == k.capacity ? 0 : h + 1;
    const std::uint32_t d = policy_.dense_index(port);
    FNAT_SA_POOL_EXPECT((k.bits[d >> 6] & (std::uint64_t{1} << (d & 63))) == 0,
                        "a free port is marked in use: the policy's bucket_of or dense_index is not deterministic");
    k.bits[d >> 6] |= std::uint64_t{1} << (d & 63);
    return {errc::ok, port, b};
  }

  /// Returns `port`, handed out by fetch(dest), to dest's bucket, where it becomes the newest free
  /// port (reused last).
  /// Returns errc::ok; errc::foreign when dest's bucket does not admit the port (another lcore's
  /// port, one outside the range, one of another bucket); errc::not_in_use when the bucket admits it
  /// but has not handed it out (double release, or a release with another destination than the
  /// fetch); errc::invalid_argument when dest is not of the LIP's family. A refused release changes
  /// nothing but its counter.
  /// Complexity: O(1) worst case. noexcept, no allocation.
  FNAT_ALWAYS_INLINE errc release(const endpoint& dest, std::uint16_t port) noexcept {
    FNAT_SA_POOL_EXPECT(bucket_ != nullptr, "release on a moved-from pool; release to the pool it was moved to");
    if (detail::is_v4_mapped_fast(dest.addr) != lip_v4_) [[unlikely]] {
      ++family_mismatch_;
      return errc::invalid_argument;
    }
    return release_in(policy_.bucket_of(lip_, dest), port);
  }

  /// release() into a bucket the caller kept from fetch (sa_fetch_result::bucket), saving the second
  /// bucket_of: a connection stores it beside its port. Returns errc::invalid_argument for a bucket
  /// out of range, else as release(). Complexity: O(1) worst case. noexcept, no allocation.
  FNAT_ALWAYS_INLINE errc release_in(std::size_t b, std::uint16_t port) noexcept {
    FNAT_SA_POOL_EXPECT(bucket_ != nullptr, "release on a moved-from pool; release to the pool it was moved to");
    if (b >= buckets_) [[unlikely]]
      return errc::invalid_argument;
    bucket& k = bucket_at(b);
    if (!policy_.admits(b, port)) [[unlikely]] {
      ++k.release_foreign;
      return errc::foreign;
    }
    const std::uint32_t d = policy_.dense_index(port);
    const std::uint64_t bit = std::uint64_t{1} << (d & 63);
    std::uint64_t& word = k.bits[d >> 6];
    if ((word & bit) == 0) [[unlikely]] {
      ++k.release_not_in_use;
      return errc::not_in_use;
    }
    word &= ~bit;
    const std::uint32_t t = k.tail;
    k.ring[t] = port;
    k.tail = t == k.capacity ? 0 : t + 1;
    return errc::ok;
  }

  // ---- inspection -----------------------------------------------------------------------------

  /// The local address. O(1).
  [[nodiscard]] const inet_addr& lip() const noexcept { return lip_; }
  [[nodiscard]] ip_family family() const noexcept { return lip_v4_ ? ip_family::v4 : ip_family::v6; }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return buckets_; }
  /// dest's bucket, as fetch and release compute it. Requires: dest of the LIP's family.
  [[nodiscard]] std::size_t bucket_of(const endpoint& dest) const noexcept { return policy_.bucket_of(lip_, dest); }
  /// True when bucket b has handed out `port` and not had it back. Requires: b < bucket_count(). O(1).
  [[nodiscard]] bool in_use(std::size_t b, std::uint16_t port) const noexcept {
    if (!policy_.admits(b, port)) return false;
    const std::uint32_t d = policy_.dense_index(port);
    return (bucket_at(b).bits[d >> 6] >> (d & 63)) & 1u;
  }

  /// Counters of bucket b. Requires: b < bucket_count(). O(1).
  [[nodiscard]] sa_pool_stats bucket_stats(std::size_t b) const noexcept {
    const bucket& k = bucket_at(b);
    const std::uint32_t free = k.tail >= k.head ? k.tail - k.head : k.tail + k.capacity + 1 - k.head;
    return sa_pool_stats{k.capacity, free, k.capacity - free, k.misses, k.release_not_in_use, k.release_foreign, 0};
  }
  /// Counters summed over all buckets, plus the pool's family_mismatch. O(buckets).
  [[nodiscard]] sa_pool_stats stats() const noexcept {
    sa_pool_stats s;
    for (std::size_t b = 0; b < buckets_; ++b) {
      const sa_pool_stats t = bucket_stats(b);
      s.capacity += t.capacity;
      s.free += t.free;
      s.used += t.used;
      s.misses += t.misses;
      s.release_not_in_use += t.release_not_in_use;
      s.release_foreign += t.release_foreign;
    }
    s.family_mismatch = family_mismatch_;
    return s;
  }

  /// Bytes this pool holds: its block (headers, bitmaps, rings) and the object itself. The policy's
  /// own tables (shared by the pools of one lcore for hashed_buckets) are not counted.
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return lines_ * sizeof(line) + sizeof(*this); }

 private:
  sa_pool(inet_addr lip, Policy&& policy, Allocator&& alloc)
      : lip_(lip), lip_v4_(lip.is_v4()), policy_(std::move(policy)), alloc_(std::move(alloc)) {}

  bucket& bucket_at(std::size_t b) noexcept {
    FNAT_SA_POOL_EXPECT(b < buckets_, "the policy's bucket_of returned a bucket >= bucket_count(); fix the policy");
    return bucket_[b];
  }
  const bucket& bucket_at(std::size_t b) const noexcept {
    FNAT_SA_POOL_EXPECT(b < buckets_, "bucket index >= bucket_count()");
    return bucket_[b];
  }

  // What fill_bucket found wrong with a policy.
  enum class policy_fault { none, not_admitted, dense_out_of_range, twice };

  // Writes bucket b's ring in the policy's order, then checks the policy's contract over it (two
  // tight loops rather than one that mixes writes and checks). A policy with verified_contract is
  // not checked port by port, except in checked mode.
  result<void> fill_bucket(std::size_t b) {
    bucket& k = bucket_[b];
    const std::uint32_t cap = k.capacity;
    std::uint16_t* const ring = k.ring;
    std::uint32_t n = 0;
    policy_.for_each_port(b, [ring, cap, &n](std::uint16_t port) {
      if (n < cap) [[likely]] ring[n] = port;
      ++n;
    });
#if defined(FNAT_CHECKED)
    constexpr bool check = true;
#else
    const bool check = !detail::policy_verified_contract(policy_);
#endif
    std::uint32_t at = 0;
    const policy_fault fault = check ? check_ring(b, std::min(n, cap), at) : policy_fault::none;
    if (fault == policy_fault::none && n == cap) [[likely]] return {};

    const std::string where = "sa_pool " + lip_.to_string() + ": bucket " + std::to_string(b) + " ";
    switch (fault) {
      case policy_fault::not_admitted:
        return error(errc::invalid_argument, where + "hands out port " + std::to_string(ring[at]) +
                                                 " but does not admit it; fix the policy's admits()");
      case policy_fault::dense_out_of_range:
        return error(errc::invalid_argument, where + "port " + std::to_string(ring[at]) +
                                                 " has dense_index >= dense_size() " +
                                                 std::to_string(policy_.dense_size()) + "; fix the policy's numbering");
      case policy_fault::twice:
        return error(errc::invalid_argument, where + "hands out port " + std::to_string(ring[at]) +
                                                 " twice (or two ports share a dense index); fix the policy");
      case policy_fault::none:
        break;
    }
    return error(errc::invalid_argument, where + "yields " + std::to_string(n) + " ports where the policy announced " +
                                             std::to_string(cap) + "; port_count() and for_each_port() disagree");
  }

  // Checks the first `count` ports of bucket b's ring; on a fault, `at` is the culprit's position.
  // The bucket's bitmap detects duplicates and is all zero again on return. The word being filled
  // stays in a register: consecutive ports usually share a word, and a read-modify-write of memory
  // per port would chain each port to the store before it.
  policy_fault check_ring(std::size_t b, std::uint32_t count, std::uint32_t& at) noexcept {
    bucket& k = bucket_[b];
    const std::uint32_t dense = policy_.dense_size();
    constexpr std::uint32_t no_word = ~std::uint32_t{0};
    std::uint32_t word_index = no_word;
    std::uint64_t word = 0;
    policy_fault fault = policy_fault::none;
    for (at = 0; at < count; ++at) {
      const std::uint16_t port = k.ring[at];
      if (!policy_.admits(b, port)) [[unlikely]] {
        fault = policy_fault::not_admitted;
        break;
      }
      const std::uint32_t d = policy_.dense_index(port);
      if (d >= dense) [[unlikely]] {
        fault = policy_fault::dense_out_of_range;
        break;
      }
      if ((d >> 6) != word_index) {
        if (word_index != no_word) k.bits[word_index] = word;
        word_index = d >> 6;
        word = k.bits[word_index];
      }
      const std::uint64_t bit = std::uint64_t{1} << (d & 63);
      if (word & bit) [[unlikely]] {
        fault = policy_fault::twice;
        break;
      }
      word |= bit;
    }
    std::memset(k.bits, 0, (std::size_t{dense} + 63) / 64 * sizeof(std::uint64_t));
    return fault;
  }

  void free_block() noexcept {
    if (block_ != nullptr) {
      for (std::size_t b = 0; b < buckets_; ++b) std::destroy_at(&bucket_[b]);
      line_traits::deallocate(alloc_, block_, lines_);
      block_ = nullptr;
      bucket_ = nullptr;
    }
  }

  inet_addr lip_;
  bool lip_v4_ = true;
  Policy policy_;
  line_alloc alloc_;
  line_pointer block_ = nullptr;
  bucket* bucket_ = nullptr;
  std::size_t lines_ = 0;
  std::size_t buckets_ = 0;
  std::uint64_t family_mismatch_ = 0;
};

// ---- laddr rotation ---------------------------------------------------------------------------

/// Result of sa_pool_rotation::fetch: on errc::ok, the LIP and port (host order) to use; otherwise
/// errc::exhausted (every pool of dest's family is exhausted for dest) or errc::invalid_argument (no
/// pool of dest's family), with port 0 and an unspecified lip.
struct sa_rotation_result {
  errc status = errc::ok;
  std::uint16_t port = 0;    ///< host byte order
  inet_addr lip;
  std::uint16_t pool = 0;    ///< index of the LIP's pool in the rotation (for release_in)
  std::uint16_t bucket = 0;  ///< the destination's bucket in that pool (for release_in)
};

/// One lcore's view of one service's local addresses: non-owning pointers to the sa_pools of the
/// service's LIPs (on this lcore) and a cursor, DPVS's laddr rotation. fetch() starts at the LIP
/// after the one it used last, so connections spread over the LIPs in turn, and moves on while a
/// LIP is exhausted for the destination.
///
/// Ownership: the pools are owned elsewhere (a LIP's pool usually serves several services) and must
/// outlive the rotation, at a fixed address (do not move a pool while a rotation refers to it).
/// Thread safety: none; one lcore owns it. add/remove are configuration-time and may allocate;
/// fetch/release never allocate.
template <sa_pool_policy Policy = hashed_buckets, class Allocator = std::allocator<std::byte>>
class sa_pool_rotation {
 public:
  using pool_type = sa_pool<Policy, Allocator>;

  /// Appends `pool` to the rotation. Error errc::exists when a pool of the same LIP is already in.
  /// O(LIPs), may allocate.
  [[nodiscard]] result<void> add(pool_type& pool) {
    if (find(pool.lip()) != nullptr)
      return error(errc::exists, "sa_pool rotation: local address " + pool.lip().to_string() +
                                     " is already in this rotation; add each LIP once");
    entries_.push_back(entry{&pool, pool.lip(), pool.family() == ip_family::v4});
    return {};
  }

  /// Removes the pool of `lip` (its ports in use stay in use in that pool). Error errc::not_found.
  /// O(LIPs). Keeps the order of the others; the cursor stays on the same next LIP where it can.
  [[nodiscard]] result<void> remove(const inet_addr& lip) {
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].lip == lip) {
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
        if (cursor_ > i) --cursor_;
        if (cursor_ >= entries_.size()) cursor_ = 0;
        return {};
      }
    return error(errc::not_found,
                 "sa_pool rotation: local address " + lip.to_string() + " is not in this rotation; nothing removed");
  }

  /// A local address and port for a connection to `dest`: tries the pools of dest's family in turn,
  /// starting after the one used last, and returns the first port one hands out. Pools of the other
  /// family are skipped (not counted in their family_mismatch). An exhausted pool counts a miss in
  /// its bucket. Returns errc::exhausted only when every pool of dest's family is exhausted for dest;
  /// errc::invalid_argument when none is of dest's family (or the rotation is empty).
  /// Complexity: O(LIPs) worst case, O(1) while the next LIP has a port. noexcept, no allocation.
  [[nodiscard]] sa_rotation_result fetch(const endpoint& dest) noexcept {
    const std::size_t n = entries_.size();
    const bool v4 = detail::is_v4_mapped_fast(dest.addr);
    std::size_t i = cursor_;
    bool family_seen = false;
    for (std::size_t tried = 0; tried < n; ++tried) {
      const entry& e = entries_[i];
      if (++i == n) i = 0;
      if (e.v4 != v4) continue;
      family_seen = true;
      const sa_fetch_result r = e.pool->fetch(dest);
      if (r.status == errc::ok) {
        const auto used = static_cast<std::uint16_t>(i == 0 ? n - 1 : i - 1);
        cursor_ = i;
        return {errc::ok, r.port, e.lip, used, r.bucket};
      }
    }
    ++failed_;
    return {family_seen ? errc::exhausted : errc::invalid_argument, 0, {}, 0, 0};
  }

  /// Returns `port` to the pool of `lip` (see sa_pool::release for the codes); errc::not_found when
  /// no pool of `lip` is in the rotation. O(LIPs) to find the pool (16-byte compares), then O(1).
  /// noexcept.
  errc release(const inet_addr& lip, const endpoint& dest, std::uint16_t port) noexcept {
    pool_type* p = find(lip);
    return p != nullptr ? p->release(dest, port) : errc::not_found;
  }

  /// Returns `port` to pool number `pool` (sa_rotation_result::pool) and bucket `bucket` without looking
  /// anything up (see sa_pool::release_in). errc::not_found for a pool index out of range. O(1).
  errc release_in(std::size_t pool, std::size_t bucket, std::uint16_t port) noexcept {
    return pool < entries_.size() ? entries_[pool].pool->release_in(bucket, port) : errc::not_found;
  }

  /// The pool of `lip`, or nullptr. O(LIPs).
  [[nodiscard]] pool_type* find(const inet_addr& lip) const noexcept {
    for (const entry& e : entries_)
      if (e.lip == lip) return e.pool;
    return nullptr;
  }
  /// Number of LIPs.
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  /// Fetches refused because no pool could serve the destination.
  [[nodiscard]] std::uint64_t failed_fetches() const noexcept { return failed_; }

 private:
  struct entry {
    pool_type* pool;
    inet_addr lip;
    bool v4;
  };
  std::vector<entry> entries_;
  std::size_t cursor_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace fnat
