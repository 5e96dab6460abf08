// SPDX-License-Identifier: BSD-3-Clause
// Per-lcore connection table: every conn reachable by both of its tuples in one probe.
//
// ## What it is
// DPVS keeps each FullNAT connection in its lcore's table twice, under the inbound tuple
// (client -> VIP:vport) and the outbound tuple (RS:rport -> LIP:lport), so that a single lookup of
// any arriving packet's tuple finds the conn and tells which way the packet travels. conn_table is
// that table as a template over the user's conn type, built on Boost.Intrusive's unordered_set:
//
//   buckets (8 B, 2^k of them)     conns (the caller's, e.g. from an object_pool)
//   +-----+                         +----------------------------------------------+
//   |  *--+------------------------>| in  node {next, key, hash, dir = inbound}     |
//   +-----+                         | out node {next, key, hash, dir = outbound}    |<-+
//   |     |                         | ... the user's fields ...                     |  |
//   +-----+     +----------------+  +----------------------------------------------+  |
//   |  *--+---->| another conn's |                                                    |
//   +-----+     | in node   next-+----------------------------------------------------+
//   |     |     +----------------+   a chain runs through the nodes of any conns
//
// The conn carries two tuple nodes (conn_hooks, as a base class or a member): a singly-linked
// Boost.Intrusive hook, the key, its 32-bit hash and the direction the node stands for. For a
// 16-byte key (tuple4) a node is 32 bytes, the pair exactly one cache line; for 40-byte keys
// (tuple6, inet_tuple) 56 bytes each. Both nodes of every conn live in ONE bucket array: a lookup
// hashes the packet's tuple and walks one chain whatever the direction; the node found says which
// direction it is, and the conn is recovered from the node's address (it knows which member of
// conn_hooks it is). Nothing is allocated per insert: the table links memory the conn already has.
//
// ## Bucket sizing and load factor
// A table made for N conns holds at most 2N nodes and has B = bit_ceil(2N / max_load_factor)
// buckets, fixed for its lifetime (power of two, so the bucket is hash & (B-1); no rehash, no
// incremental growth, no allocation after make()). The load factor a = nodes / B is at most
// max_load_factor (default 0.5) and, because B is rounded up to a power of two, above half of it
// when the table is full. With a uniform hash, chains are Poisson(a), so per lookup:
//   - hit:  the bucket head, then 1 + a/2 nodes on average (the match and half the others);
//   - miss: the bucket head, then a nodes on average; the bucket is empty with probability e^-a.
// At a = 0.5: 1.25 nodes per hit, 0.5 per miss, 61% of misses end at an empty bucket, and only 9%
// of buckets hold two nodes or more. Every node compared before the key is a cache line outside the
// bucket array, so a is the cost knob: halving max_load_factor doubles the bucket array (8 B per
// bucket: 32-64 B per conn at 0.5) and saves a/4 of a node per hit and half the nodes per miss.
// Before the key bytes are compared, the stored hash is: a mismatching node costs a 4-byte compare.
// (Compare DPDK's rte_hash, cuckoo with 8-slot buckets and a separate key store: a hit reads the
// primary bucket, sometimes the secondary, and the key-store entry, and the caller then reads its
// conn, a third or fourth line; a miss reads both buckets.)
//
// ## Hostile keys: a keyed hash and a bounded chain
// The Poisson figures above assume that nobody chooses where the keys land. Inbound tuples are the
// client's choice, and a SYN flood with spoofed sources can pick any source address and port. With an
// unkeyed or linear hash (CRC32C: hash.hpp says why) those can be solved for so that every one lands
// in one bucket: each lookup and each insert then walks a chain as long as the flood, and the lcore's
// time goes into walking it. So the default hash (tuple_hash) is keyed with a per-process random
// secret and non-linear, and where the keys go is as unknown to the attacker as to a Poisson model.
// As a backstop (a leaked key, a user's weak Hash), a chain is bounded: an insert that would make a
// chain longer than max_chain nodes (default 32) is refused with errc::bucket_full and counted
// (stats().insert_chain_full). Under a uniform hash a chain of 32 nodes has probability below 1e-18
// per bucket at any allowed load factor (Poisson(4): P(X >= 32) ~ 1e-18; at 0.5, ~1e-50), so the
// bound costs legitimate traffic nothing, while a flood that knew the key degrades into refused new
// conns and lookups of at most 32 nodes, not CPU exhaustion. The check walks at most max_chain
// nodes of the chain the insert walks anyway.
//
// ## Boost.Intrusive options, and why
// unordered_set with power_2_buckets (mask, no modulo), constant_time_size, no cache_begin (nothing
// iterates on the fast path), no incremental rehash (the table never grows), safe_link hooks (a
// linked conn is visible in O(1), which insert and erase check). The 32-bit hash is kept in the
// node's own padding (the 16-byte key and the direction leave four bytes free) rather than with
// Boost's store_hash, which would add 8 bytes per node and push the pair past one cache line;
// Boost's own hasher returns that stored value, so nothing is rehashed. Erase unlinks a node by
// address: it walks the node's chain comparing pointers (reading no other node's key), because
// Boost's erase(iterator) without store_hash would walk to the end of the chain to find the
// bucket.
//
// ## Operations
//   find(key) / find_with_hash(key, h)  one probe; returns {conn, direction} or {nullptr}
//   find_bulk(keys, out)                up to 64 keys, memory latency overlapped (below)
//   insert(conn, in, out)               both nodes or neither: if the outbound tuple is taken, the
//                                       inbound node just linked is unlinked again (errc::exists)
//   check_insert(in, out)               are both tuples free and is there room (table and chains)?
//   prepare_insert / commit_insert      two-phase, as Boost's insert_unique_check / _commit: the
//                                       first checks and hands out a ticket (both hashes), the
//                                       second links with no search; an insert or erase in between
//                                       makes the ticket stale (caught in checked mode)
//   erase(conn)                         unlinks both nodes
// All O(1) on average (O(max_chain) in the worst case), noexcept, no allocation, counted in stats().
// A table made for N conns refuses the N+1st with errc::table_full.
//
// ## Bulk lookup
// A DPDK loop receives 32 or 64 packets at a time. find_bulk runs the lookups in three passes so
// that the cache misses of all the keys overlap instead of following one another:
//   1. hash every key, compute its bucket address, prefetch the bucket;
//   2. read every bucket head (now in cache), prefetch the first node of each non-empty chain (by
//      address alone: reading the node to find its conn would wait for the very miss being started);
//   3. in rounds, compare one node of every chain still unresolved (stored hash, then key); on a
//      match prefetch the conn's other tuple node (the caller rewrites with it), else prefetch the
//      next node of the chain.
// Per key that is two rounds of independent misses (bucket, node) instead of two dependent ones,
// and the quarter of hits that are second in their chain (a/2 at a = 0.5) cost one more round
// shared by all of them rather than one serial miss each. The price of chaining shows here: a
// burst of 32 almost surely holds a key that is second in its chain (1 - (1 - a/2)^32 ~ 1) and
// often one that is third, so a burst waits about three memory latencies where a cuckoo table
// with signatures (rte_hash) waits two; fnat wins by touching fewer lines per key (one bucket and
// the conn, which the caller wants next anyway, against two buckets and a key-store entry), not by
// fewer rounds. For the same reason a bulk miss in a non-empty bucket (39% at a = 0.5) reads a
// node in conn memory where rte_hash rejects on the signatures in its bucket.
//
// ## Invalidation and ownership
// The table owns only its bucket array (through Allocator, so it can live in hugepage memory on
// the lcore's socket). Conns belong to the caller (typically an object_pool) and never move:
// insert and erase change links, never addresses, so timers and pools may keep pointers to conns.
// erase(c) invalidates nothing but c's membership. Iteration (for_each, for_each_from) tolerates the
// erasure of the conn being visited, and nothing else. Moving the table moves the bucket array's
// ownership; conns stay linked. Destroying or clear()ing the table unlinks every conn still in it
// (it writes to them), so destroy the table before the memory holding its conns, or empty it first
// (clear_and_dispose).
//
// Thread safety: none. One table per lcore, used only by that lcore.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/intrusive/parent_from_member.hpp>
#include <boost/intrusive/unordered_set.hpp>

#include "fnat/core/addr.hpp"
#include "fnat/core/conn_state.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"

namespace fnat {

/// A conn table key: compared and hashed as raw bytes (fnat::tuple4, tuple6, inet_tuple).
template <class K>
concept conn_key = std::is_trivially_copyable_v<K> && std::has_unique_object_representations_v<K> &&
                   sizeof(K) % 4 == 0;

/// A hash policy for keys of type K: a noexcept call returning 32 bits. fnat::tuple_hash (the default)
/// is keyed and non-linear (hash.hpp); crc32c_tuple_hash only for tables no packet fills.
template <class H, class K>
concept conn_key_hash = std::copy_constructible<H> && requires(const H& h, const K& k) {
  { h(k) } noexcept -> std::convertible_to<std::uint32_t>;
};

/// The result of a lookup: the conn (null on a miss) and which of its tuples matched.
template <class Conn>
struct conn_hit {
  Conn* conn = nullptr;
  direction dir = direction::inbound;
  explicit operator bool() const noexcept { return conn != nullptr; }
  friend bool operator==(const conn_hit&, const conn_hit&) noexcept = default;
};

template <class Conn, class Access, class Hash, class Allocator>
class conn_table;

/// The two tuple nodes a conn_table links (like DPVS's conn_tuple_hash pair). Put one in your conn
/// type, as a base class (conn_hooks_base, the default) or as a member (conn_hooks_member).
/// For a 16-byte key it is 64 bytes: place it first in a cache-line aligned conn so that a hit
/// costs one line. Copying gives hooks that are in no table.
template <conn_key Key>
class conn_hooks {
 public:
  using key_type = Key;

  conn_hooks() noexcept { out_.dir = direction::outbound; }
  conn_hooks(const conn_hooks&) noexcept : conn_hooks() {}
  conn_hooks& operator=(const conn_hooks&) noexcept { return *this; }
  ~conn_hooks() = default;

  /// True while the conn is in a table.
  [[nodiscard]] bool is_linked() const noexcept { return in_.is_linked(); }
  /// The tuple the conn was inserted under for direction d (the last one, once erased).
  [[nodiscard]] const Key& tuple(direction d) const noexcept { return d == direction::inbound ? in_.key : out_.key; }
  /// The hash stored with that tuple.
  [[nodiscard]] std::uint32_t tuple_hash(direction d) const noexcept {
    return d == direction::inbound ? in_.hash : out_.hash;
  }

 private:
  template <class, class, class, class>
  friend class conn_table;
  using hook_type =
      boost::intrusive::unordered_set_base_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;
  struct node : hook_type {
    Key key{};
    std::uint32_t hash = 0;
    direction dir = direction::inbound;
  };
  node in_{};
  node out_{};
};

namespace detail {
template <class K>
K conn_hooks_key_of(const conn_hooks<K>*);
}  // namespace detail

/// Access policy: Conn derives from conn_hooks<Key> (Key is deduced).
template <class Conn>
struct conn_hooks_base {
  using key_type = decltype(detail::conn_hooks_key_of(static_cast<const Conn*>(nullptr)));
  using hooks_type = conn_hooks<key_type>;
  [[nodiscard]] static hooks_type& hooks(Conn& c) noexcept { return c; }
  [[nodiscard]] static Conn& conn(hooks_type& h) noexcept { return static_cast<Conn&>(h); }
};

/// Access policy: Conn has a conn_hooks<Key> member, e.g. `conn_hooks_member<&my_conn::hooks>`.
template <auto Member>
struct conn_hooks_member;
template <class Conn, class Key, conn_hooks<Key> Conn::*Member>
struct conn_hooks_member<Member> {
  using key_type = Key;
  using hooks_type = conn_hooks<Key>;
  [[nodiscard]] static hooks_type& hooks(Conn& c) noexcept { return c.*Member; }
  [[nodiscard]] static Conn& conn(hooks_type& h) noexcept {
    return *boost::intrusive::get_parent_from_member<Conn, hooks_type>(&h, Member);
  }
};

/// How a table finds a conn's hooks and the conn of some hooks.
template <class A, class Conn>
concept conn_hooks_access = requires(Conn& c, typename A::hooks_type& h) {
  typename A::key_type;
  requires std::same_as<typename A::hooks_type, conn_hooks<typename A::key_type>>;
  { A::hooks(c) } noexcept -> std::same_as<typename A::hooks_type&>;
  { A::conn(h) } noexcept -> std::same_as<Conn&>;
};

/// What a conn table is made from. Build with designated initializers:
/// `conn_table<my_conn>::make({.capacity = 1 << 20})`.
struct conn_table_config {
  /// Most conns the table holds (2 entries each); the next insert fails with errc::table_full.
  std::size_t capacity = 65536;
  /// Highest nodes-per-bucket ratio when full, in [1/16, 4]; see the file comment. Default 0.5:
  /// 1.25 nodes read per hit, 0.5 per miss, 32-64 bytes of buckets per conn.
  double max_load_factor = 0.5;
  /// Longest chain (nodes in one bucket) an insert may create; beyond it the insert is refused with
  /// errc::bucket_full (see the file comment: the backstop against hash flooding). 0: unbounded;
  /// otherwise at least 2 (a conn's two tuples may share a bucket). Default 32.
  std::size_t max_chain = 32;
};

/// Counters of a conn table (monotonic except size).
struct conn_table_stats {
  std::size_t size = 0;                ///< conns in the table
  std::size_t capacity = 0;            ///< conns the table was made for
  std::uint64_t inserts = 0;           ///< successful inserts
  std::uint64_t insert_full = 0;       ///< inserts refused: table at capacity
  std::uint64_t insert_exists = 0;     ///< inserts refused: a tuple was already present
  std::uint64_t insert_invalid = 0;    ///< inserts refused: conn already linked (or, checked mode, wrong hash)
  std::uint64_t insert_chain_full = 0; ///< inserts refused: a bucket's chain is at max_chain (hash flooding?)
  std::uint64_t erases = 0;            ///< successful erases
  std::uint64_t lookup_hits = 0;       ///< find/find_bulk keys found
  std::uint64_t lookup_misses = 0;     ///< find/find_bulk keys not found
  /// Failed inserts of any kind.
  [[nodiscard]] std::uint64_t failed_inserts() const noexcept {
    return insert_full + insert_exists + insert_invalid + insert_chain_full;
  }
};

/// The per-lcore connection table (see the file comment).
template <class Conn, class Access = conn_hooks_base<Conn>, class Hash = tuple_hash,
          class Allocator = std::allocator<std::byte>>
class conn_table {
  static_assert(conn_hooks_access<Access, Conn>,
                "Access must map Conn to its conn_hooks and back (conn_hooks_base, conn_hooks_member)");

 public:
  using conn_type = Conn;
  using key_type = typename Access::key_type;
  using hooks_type = conn_hooks<key_type>;
  using hasher = Hash;
  using allocator_type = Allocator;
  using hit = conn_hit<Conn>;
  static_assert(conn_key<key_type>, "keys must be trivially copyable with unique object representations");
  static_assert(conn_key_hash<Hash, key_type>, "Hash must be a noexcept callable returning 32 bits");

  /// Most keys one find_bulk call takes.
  static constexpr std::size_t max_bulk = 64;
  /// Largest capacity make() accepts.
  static constexpr std::size_t max_capacity = std::size_t{1} << 31;

 private:
  using node_type = typename hooks_type::node;
  using hook_type = typename hooks_type::hook_type;

  [[nodiscard]] static bool keys_equal(const key_type& a, const key_type& b) noexcept {
    return std::memcmp(&a, &b, sizeof(key_type)) == 0;
  }
  // Boost's own hasher and equality over stored nodes (used by nothing on the fast path; the stored
  // hash makes any internal re-hash free).
  struct node_hash {
    std::size_t operator()(const node_type& n) const noexcept { return n.hash; }
  };
  struct node_equal {
    bool operator()(const node_type& a, const node_type& b) const noexcept { return keys_equal(a.key, b.key); }
  };
  // A lookup hasher that returns a hash computed earlier, so no key is hashed twice.
  struct known_hash {
    std::size_t h;
    template <class K>
    std::size_t operator()(const K&) const noexcept {
      return h;
    }
  };
  // Stored hash first (4 bytes), then the key bytes.
  struct key_match {
    std::uint32_t h;
    bool operator()(const key_type& k, const node_type& n) const noexcept { return n.hash == h && keys_equal(n.key, k); }
  };
  // Erasure by node identity: the chain walk compares addresses, reading no other node's key.
  struct same_node {
    bool operator()(const node_type* p, const node_type& n) const noexcept { return p == &n; }
  };

  using set_type = boost::intrusive::unordered_set<
      node_type, boost::intrusive::base_hook<hook_type>, boost::intrusive::hash<node_hash>,
      boost::intrusive::equal<node_equal>, boost::intrusive::size_type<std::size_t>,
      boost::intrusive::constant_time_size<true>, boost::intrusive::power_2_buckets<true>,
      boost::intrusive::cache_begin<false>, boost::intrusive::compare_hash<false>,
      boost::intrusive::incremental<false>>;
  using bucket_type = typename set_type::bucket_type;
  using bucket_traits = typename set_type::bucket_traits;
  // A chain position as a plain slist iterator (a pointer), and the node it designates; Boost's
  // local_iterator would do, but it is not default-constructible and find_bulk keeps an array.
  using chain_iterator = typename bucket_type::iterator;
  using value_traits = typename set_type::value_traits;
  [[nodiscard]] static node_type& node_at(const chain_iterator& it) noexcept {
    using vnode = typename value_traits::node_traits::node;
    return *value_traits::to_value_ptr(static_cast<vnode*>(&*it));
  }
  using bucket_alloc = typename std::allocator_traits<Allocator>::template rebind_alloc<bucket_type>;
  using bucket_alloc_traits = std::allocator_traits<bucket_alloc>;

 public:
  /// Builds a table for `cfg.capacity` conns. Configuration time.
  /// Errors: errc::invalid_argument for a capacity of 0 or above max_capacity, or a load factor
  /// outside [1/16, 4] or a max_chain of 1; errc::no_memory if the allocator cannot give the bucket array (the message
  /// gives its size). Complexity: O(buckets) (initialises the bucket array).
  [[nodiscard]] static result<conn_table> make(const conn_table_config& cfg = {}, const Hash& hash = Hash(),
                                               const Allocator& alloc = Allocator()) {
    if (cfg.capacity == 0)
      return error(errc::invalid_argument, "conn table: capacity 0; give the number of conns per lcore");
    if (cfg.capacity > max_capacity)
      return error(errc::invalid_argument, "conn table: capacity " + std::to_string(cfg.capacity) +
                                               " is above the maximum " + std::to_string(max_capacity) +
                                               "; split the conns over more lcores");
    if (!(cfg.max_load_factor >= 1.0 / 16 && cfg.max_load_factor <= 4.0))
      return error(errc::invalid_argument, "conn table: max_load_factor " + std::to_string(cfg.max_load_factor) +
                                               " is outside [0.0625, 4]; 0.5 is the default");
    if (cfg.max_chain == 1)
      return error(errc::invalid_argument,
                   "conn table: max_chain 1 would refuse a conn whose two tuples share a bucket; give 0 (unbounded) "
                   "or at least 2 (32 is the default)");
    const std::size_t buckets = bucket_count_for(cfg.capacity, cfg.max_load_factor);
    bucket_alloc balloc(alloc);
    bucket_type* array = nullptr;
    try {
      array = bucket_alloc_traits::allocate(balloc, buckets);
    } catch (const std::bad_alloc&) {
      return error(errc::no_memory, "conn table: cannot allocate " + std::to_string(buckets) + " buckets (" +
                                        std::to_string(buckets * sizeof(bucket_type) >> 20) +
                                        " MiB) for " + std::to_string(cfg.capacity) +
                                        " conns; lower the capacity, raise max_load_factor, or give the allocator "
                                        "more memory (hugepages)");
    }
    for (std::size_t i = 0; i < buckets; ++i) ::new (static_cast<void*>(array + i)) bucket_type();
    return conn_table(hash, balloc, array, buckets, cfg.capacity, cfg.max_chain);
  }

  /// Buckets a table for `capacity` conns gets at `max_load_factor`: bit_ceil(2 x capacity / lf).
  [[nodiscard]] static std::size_t bucket_count_for(std::size_t capacity, double max_load_factor) noexcept {
    const double want = std::ceil(2.0 * static_cast<double>(capacity) / max_load_factor);
    return std::bit_ceil(std::max<std::size_t>(2, static_cast<std::size_t>(want)));
  }

  conn_table(conn_table&& o) noexcept
      : hash_(std::move(o.hash_)),
        alloc_(std::move(o.alloc_)),
        buckets_(std::exchange(o.buckets_, nullptr)),
        bucket_count_(std::exchange(o.bucket_count_, 0)),
        mask_(std::exchange(o.mask_, 0)),
        capacity_(std::exchange(o.capacity_, 0)),
        max_chain_(o.max_chain_),
        size_(std::exchange(o.size_, 0)),
        version_(o.version_ + 1),
        stats_(std::exchange(o.stats_, {})),
        set_(bucket_traits(&spare_, 1)) {
    take_set(o);
  }
  conn_table& operator=(conn_table&& o) noexcept {
    if (this != &o) {
      release();
      hash_ = std::move(o.hash_);
      alloc_ = std::move(o.alloc_);
      buckets_ = std::exchange(o.buckets_, nullptr);
      bucket_count_ = std::exchange(o.bucket_count_, 0);
      mask_ = std::exchange(o.mask_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
      max_chain_ = o.max_chain_;
      size_ = std::exchange(o.size_, 0);
      version_ = o.version_ + 1;
      stats_ = std::exchange(o.stats_, {});
      take_set(o);
    }
    return *this;
  }
  conn_table(const conn_table&) = delete;
  conn_table& operator=(const conn_table&) = delete;

  /// Unlinks every conn still in the table (writes to each) and frees the bucket array.
  /// Complexity: O(buckets + size()).
  ~conn_table() { release(); }

  // ---- lookup -----------------------------------------------------------------------------------

  /// The hash the table uses for `key` (to compute once and pass to the *_with_hash calls).
  [[nodiscard]] std::uint32_t hash_of(const key_type& key) const noexcept { return static_cast<std::uint32_t>(hash_(key)); }

  /// Looks `key` up. Returns: the conn and the direction of the tuple that matched, or an empty hit.
  /// Complexity: one bucket, 1 + a/2 nodes on a hit and a on a miss on average (a = load factor).
  /// noexcept, no allocation; counts a hit or a miss.
  [[nodiscard]] hit find(const key_type& key) noexcept { return find_with_hash(key, hash_of(key)); }

  /// find() with the key's hash already computed. Requires: h == hash_of(key) (otherwise the
  /// lookup misses).
  [[nodiscard]] hit find_with_hash(const key_type& key, std::uint32_t h) noexcept {
    const hit r = probe(key, h);
    ++(r.conn != nullptr ? stats_.lookup_hits : stats_.lookup_misses);
    return r;
  }

  /// True if `key` is in the table; not counted in the lookup statistics.
  [[nodiscard]] bool contains(const key_type& key) const noexcept {
    return const_cast<conn_table*>(this)->probe(key, hash_of(key)).conn != nullptr;
  }

  /// Looks up keys.size() keys (at most max_bulk) with their memory latency overlapped (see the
  /// file comment). out[i] receives key i's hit (empty on a miss).
  /// Returns: a mask with bit i set when key i was found. Requires: keys.size() <= max_bulk and
  /// `out` has room for keys.size() results. Complexity: as keys.size() finds. noexcept.
  std::uint64_t find_bulk(std::span<const key_type> keys, hit* out) noexcept {
    const std::size_t n = std::min(keys.size(), max_bulk);
    std::uint32_t hashes[max_bulk];
    std::size_t bi[max_bulk];
    for (std::size_t i = 0; i < n; ++i) {  // 1: hash, bucket address, prefetch (misses start early)
      hashes[i] = hash_of(keys[i]);
      bi[i] = hashes[i] & mask_;
      __builtin_prefetch(buckets_ + bi[i], 0, 3);
    }
    return finish_bulk(keys.first(n), hashes, bi, out);
  }

  /// find_bulk over an array: keys[0..n), n <= max_bulk, results in out[0..n).
  std::uint64_t find_bulk(const key_type* keys, std::size_t n, hit* out) noexcept {
    return find_bulk(std::span<const key_type>(keys, n), out);
  }

  /// find_bulk with the hashes already computed. Requires: hashes[i] == hash_of(keys[i]) (a key
  /// given a wrong hash misses).
  std::uint64_t find_bulk_with_hash(std::span<const key_type> keys, const std::uint32_t* hashes, hit* out) noexcept {
    const std::size_t n = std::min(keys.size(), max_bulk);
    std::size_t bi[max_bulk];
    for (std::size_t i = 0; i < n; ++i) {  // 1: bucket address, prefetch
      bi[i] = hashes[i] & mask_;
      __builtin_prefetch(buckets_ + bi[i], 0, 3);
    }
    return finish_bulk(keys.first(n), hashes, bi, out);
  }

  // ---- insert and erase -------------------------------------------------------------------------

  /// Links conn c under its inbound tuple `in` and outbound tuple `out`: both or neither.
  /// Returns: errc::ok; errc::table_full if size() == capacity(); errc::bucket_full if linking a
  /// tuple would make its bucket's chain longer than max_chain (checked before errc::exists);
  /// errc::exists if either tuple is already in the table (if it is `out`, the `in` node just linked
  /// is unlinked again, so the table is as before; in == out is refused this way too);
  /// errc::invalid_argument if c is already in a table. Every refusal is counted (stats()).
  /// Complexity: two probes (and, with max_chain, a walk of at most max_chain nodes of each of the
  /// two chains). noexcept, no allocation; invalidates nothing.
  errc insert(Conn& c, const key_type& in, const key_type& out) noexcept {
    return insert_with_hash(c, in, hash_of(in), out, hash_of(out));
  }

  /// insert() with both hashes already computed (e.g. the inbound one from the lookup that missed).
  /// Requires: in_hash == hash_of(in), out_hash == hash_of(out); checked mode verifies it and
  /// returns errc::invalid_argument otherwise (a wrong hash would file the conn in the wrong bucket).
  errc insert_with_hash(Conn& c, const key_type& in, std::uint32_t in_hash, const key_type& out,
                        std::uint32_t out_hash) noexcept {
    hooks_type& hk = Access::hooks(c);
    if (hk.in_.is_linked() || hk.out_.is_linked()) {
      ++stats_.insert_invalid;
      return errc::invalid_argument;
    }
#if defined(FNAT_CHECKED)
    if (in_hash != hash_of(in) || out_hash != hash_of(out)) {
      ++stats_.insert_invalid;
      return errc::invalid_argument;
    }
#endif
    if (size_ >= capacity_) {
      ++stats_.insert_full;
      return errc::table_full;
    }
    if (chains_full(in_hash, out_hash)) {
      ++stats_.insert_chain_full;
      return errc::bucket_full;
    }
    typename set_type::insert_commit_data cd;
    if (!set_.insert_unique_check(in, known_hash{in_hash}, key_match{in_hash}, cd).second) {
      ++stats_.insert_exists;
      return errc::exists;
    }
    fill(hk.in_, in, in_hash, direction::inbound);
    set_.insert_unique_commit(hk.in_, cd);
    if (!set_.insert_unique_check(out, known_hash{out_hash}, key_match{out_hash}, cd).second) {
      unlink(hk.in_);  // roll the first side back
      ++stats_.insert_exists;
      return errc::exists;
    }
    fill(hk.out_, out, out_hash, direction::outbound);
    set_.insert_unique_commit(hk.out_, cd);
    ++size_;
    ++version_;
    ++stats_.inserts;
    return errc::ok;
  }

  /// Would insert(c, in, out) succeed now? Changes nothing and
  /// counts nothing. Returns: errc::ok, errc::table_full, errc::bucket_full or errc::exists (also for
  /// in == out), in insert()'s order.
  /// The answer holds until the table is next modified. Complexity: two probes.
  [[nodiscard]] errc check_insert(const key_type& in, const key_type& out) const noexcept {
    return check_insert_with_hash(in, hash_of(in), out, hash_of(out));
  }
  [[nodiscard]] errc check_insert_with_hash(const key_type& in, std::uint32_t in_hash, const key_type& out,
                                            std::uint32_t out_hash) const noexcept {
    if (size_ >= capacity_) return errc::table_full;
    if (chains_full(in_hash, out_hash)) return errc::bucket_full;
    auto* self = const_cast<conn_table*>(this);
    if (keys_equal(in, out) || self->probe(in, in_hash).conn || self->probe(out, out_hash).conn) return errc::exists;
    return errc::ok;
  }

  /// What prepare_insert learnt, for commit_insert: both hashes (Boost's commit data is the hash
  /// alone, since the table never rehashes) and the table's modification count when it was made.
  struct insert_ticket {
    std::uint32_t in_hash = 0;
    std::uint32_t out_hash = 0;
    std::uint64_t version = 0;
  };

  /// First phase of a two-phase insert, as Boost.Intrusive's insert_unique_check: checks what
  /// insert(c, in, out) would check and, on errc::ok, fills `t` so that commit_insert can link both
  /// tuples without searching again. Use it when the conn's memory or another resource should be
  /// claimed only once the table has said yes (session_table claims a local port in between).
  /// Returns: errc::ok, errc::table_full, errc::bucket_full or errc::exists (also for in == out), in
  /// insert()'s order. Counts nothing. The ticket is valid until the table is next modified.
  /// Complexity: two probes. noexcept.
  [[nodiscard]] errc prepare_insert(const key_type& in, const key_type& out, insert_ticket& t) const noexcept {
    return prepare_insert_with_hash(in, hash_of(in), out, hash_of(out), t);
  }
  [[nodiscard]] errc prepare_insert_with_hash(const key_type& in, std::uint32_t in_hash, const key_type& out,
                                              std::uint32_t out_hash, insert_ticket& t) const noexcept {
    const errc rc = check_insert_with_hash(in, in_hash, out, out_hash);
    if (rc == errc::ok) t = insert_ticket{in_hash, out_hash, version_};
    return rc;
  }

  /// Second phase: links c under `in` and `out` as prepare_insert(in, out, t) found them free.
  /// Requires: t came from prepare_insert with these tuples and nothing was inserted or erased
  /// since; c is in no table. Checked mode verifies the ticket's version and c, and returns
  /// errc::invalid_argument (nothing linked) when either is wrong; unchecked, a stale ticket can
  /// link a duplicate tuple. Returns: errc::ok. Complexity: O(1), no search. noexcept.
  errc commit_insert(Conn& c, const key_type& in, const key_type& out, const insert_ticket& t) noexcept {
    hooks_type& hk = Access::hooks(c);
#if defined(FNAT_CHECKED)
    if (t.version != version_ || hk.in_.is_linked() || hk.out_.is_linked() || t.in_hash != hash_of(in) ||
        t.out_hash != hash_of(out)) {
      ++stats_.insert_invalid;
      return errc::invalid_argument;
    }
#endif
    typename set_type::insert_commit_data cd;
    fill(hk.in_, in, t.in_hash, direction::inbound);
    cd.hash = t.in_hash;
    set_.insert_unique_commit(hk.in_, cd);
    fill(hk.out_, out, t.out_hash, direction::outbound);
    cd.hash = t.out_hash;
    set_.insert_unique_commit(hk.out_, cd);
    ++size_;
    ++version_;
    ++stats_.inserts;
    return errc::ok;
  }

  /// Unlinks both tuples of conn c. The conn itself is untouched otherwise (free it yourself).
  /// Returns: errc::ok; errc::not_found if c is in no table; errc::foreign if c is linked in
  /// another table (nothing changes). Complexity: two chain walks (bucket head and the nodes
  /// before c's). noexcept; invalidates only c's membership.
  errc erase(Conn& c) noexcept {
    hooks_type& hk = Access::hooks(c);
    if (!hk.in_.is_linked()) return errc::not_found;
    if (!unlink(hk.in_)) return errc::foreign;  // not in this table's chain: another lcore's conn
    unlink(hk.out_);
    --size_;
    ++version_;
    ++stats_.erases;
    return errc::ok;
  }

  /// Erases every conn, calling dispose(Conn&) on each once it is unlinked (e.g. to return it to
  /// its pool). Complexity: O(buckets + size()).
  template <class F>
  void clear_and_dispose(F&& dispose) {
    for_each([&](Conn& c) {
      erase(c);
      dispose(c);
    });
  }
  /// Erases every conn. Complexity: O(buckets + size()).
  void clear() noexcept {
    clear_and_dispose([](Conn&) noexcept {});
  }

  /// True if c is linked in some table (O(1); use erase's errc::foreign to tell which).
  [[nodiscard]] static bool is_linked(const Conn& c) noexcept {
    return Access::hooks(const_cast<Conn&>(c)).is_linked();
  }

  // ---- iteration --------------------------------------------------------------------------------

  /// Calls f(Conn&) once for every conn (bucket order, which is hash order). f may erase the conn
  /// it is given (and free it); it must not insert or erase any other. Complexity: O(buckets + size).
  template <class F>
  void for_each(F&& f) {
    for_each_from(0, bucket_count_, f);
  }

  /// Incremental form for dumps that must not stall the lcore: visits the conns of buckets
  /// [cursor, cursor + max_buckets) and returns the next cursor, bucket_count() when done. Start at
  /// 0. Conns inserted or erased between calls may be missed or seen (each is seen at most once
  /// per pass if nothing is inserted). Same rules for f as for_each.
  template <class F>
  std::size_t for_each_from(std::size_t cursor, std::size_t max_buckets, F&& f) {
    const std::size_t first = std::min(cursor, bucket_count_);
    const std::size_t end = first + std::min(max_buckets, bucket_count_ - first);
    for (std::size_t bi = first; bi < end; ++bi) {
      auto it = set_.begin(bi);
      const auto e = set_.end(bi);
      while (it != e) {
        node_type& n = *it;
        ++it;
        if (n.dir != direction::inbound) continue;  // each conn once, by its inbound node
        Conn& c = conn_of(n);
        // f may erase c: step past c's outbound node if it is the next one in this chain.
        if (it != e && &conn_of(*it) == &c) ++it;
        f(c);
      }
    }
    return end;
  }

  // ---- size, buckets, statistics ----------------------------------------------------------------

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// The chain bound (conn_table_config::max_chain; 0: none).
  [[nodiscard]] std::size_t max_chain() const noexcept { return max_chain_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return bucket_count_; }
  /// Nodes per bucket now: 2 x size() / bucket_count().
  [[nodiscard]] double load_factor() const noexcept {
    return bucket_count_ ? 2.0 * static_cast<double>(size_) / static_cast<double>(bucket_count_) : 0.0;
  }
  /// Bucket a hash falls into.
  [[nodiscard]] std::size_t bucket_of(std::uint32_t h) const noexcept { return h & mask_; }
  /// Nodes in bucket i (walks the chain). For tests and probe-length statistics.
  [[nodiscard]] std::size_t bucket_size(std::size_t i) const noexcept { return set_.bucket_size(i); }
  /// Bytes of the bucket array.
  [[nodiscard]] std::size_t bucket_bytes() const noexcept { return bucket_count_ * sizeof(bucket_type); }
  [[nodiscard]] conn_table_stats stats() const noexcept {
    conn_table_stats s = stats_;
    s.size = size_;
    s.capacity = capacity_;
    return s;
  }
  [[nodiscard]] const Hash& hash_function() const noexcept { return hash_; }
  [[nodiscard]] allocator_type get_allocator() const { return allocator_type(alloc_); }

 private:
  conn_table(const Hash& hash, const bucket_alloc& alloc, bucket_type* buckets, std::size_t count, std::size_t capacity,
             std::size_t max_chain)
      : hash_(hash),
        alloc_(alloc),
        buckets_(buckets),
        bucket_count_(count),
        mask_(count - 1),
        capacity_(capacity),
        max_chain_(max_chain),
        set_(bucket_traits(buckets, count)) {}

  // True if bucket bi holds at least n nodes; walks at most n of them.
  [[nodiscard]] bool chain_at_least(std::size_t bi, std::size_t n) const noexcept {
    std::size_t k = 0;
    for (auto it = set_.begin(bi), e = set_.end(bi); it != e && k < n; ++it) ++k;
    return k >= n;
  }
  // Would linking nodes with these hashes make a chain longer than max_chain_?
  [[nodiscard]] bool chains_full(std::uint32_t in_hash, std::uint32_t out_hash) const noexcept {
    if (max_chain_ == 0) return false;
    const std::size_t bi = in_hash & mask_, bo = out_hash & mask_;
    if (bi == bo) return chain_at_least(bi, max_chain_ - 1);
    return chain_at_least(bi, max_chain_) || chain_at_least(bo, max_chain_);
  }

  // Boost's own move leaves the source set pointing at the same buckets, and its destructor would
  // unlink the nodes. Instead: *this (on its spare bucket) swaps sets with o, then o swaps onto its
  // own spare, so each set ends up referencing only its own table's memory.
  void take_set(conn_table& o) noexcept {
    if (buckets_ == nullptr) return;  // o had no buckets: stay on our spare
    set_.swap(o.set_);
    set_type tmp(bucket_traits(&o.spare_, 1));
    o.set_.swap(tmp);
  }

  void release() noexcept {
    if (buckets_ == nullptr) return;
    set_.clear();  // safe-link: resets every linked node
    {
      set_type tmp(bucket_traits(&spare_, 1));
      set_.swap(tmp);  // set_ back on the spare; tmp, holding the (now empty) array, goes first
    }
    for (std::size_t i = 0; i < bucket_count_; ++i) std::destroy_at(buckets_ + i);
    bucket_alloc_traits::deallocate(alloc_, buckets_, bucket_count_);
    buckets_ = nullptr;
    bucket_count_ = 0;
    mask_ = 0;
    size_ = 0;
    ++version_;
  }

  static void fill(node_type& n, const key_type& key, std::uint32_t h, direction d) noexcept {
    n.key = key;
    n.hash = h;
    n.dir = d;
  }

  /// Unlinks one node from this table by address. Returns false if it is not in its chain here.
  bool unlink(node_type& n) noexcept {
    return set_.erase(static_cast<const node_type*>(&n), known_hash{n.hash}, same_node{}) != 0;
  }

  [[nodiscard]] static Conn& conn_of(node_type& n) noexcept {
    hooks_type* h = n.dir == direction::inbound
                        ? boost::intrusive::get_parent_from_member<hooks_type, node_type>(&n, &hooks_type::in_)
                        : boost::intrusive::get_parent_from_member<hooks_type, node_type>(&n, &hooks_type::out_);
    return Access::conn(*h);
  }

  [[nodiscard]] hit walk(std::size_t bi, const key_type& key, std::uint32_t h) noexcept {
    for (auto it = set_.begin(bi), e = set_.end(bi); it != e; ++it) {
      node_type& n = *it;
      if (n.hash == h && keys_equal(n.key, key)) return hit{&conn_of(n), n.dir};
    }
    return {};
  }

  [[nodiscard]] hit probe(const key_type& key, std::uint32_t h) noexcept { return walk(h & mask_, key, h); }

  // Stages 2 and 3 of the bulk lookup (stage 1 prefetched buckets bi[0..n)).
  std::uint64_t finish_bulk(std::span<const key_type> keys, const std::uint32_t* hashes, const std::size_t* bi,
                            hit* out) noexcept {
    const std::size_t n = keys.size();
    chain_iterator cur[max_bulk];
    std::uint64_t pending = 0;             // keys whose chain is still being walked
    for (std::size_t i = 0; i < n; ++i) {  // 2: first node of each chain, prefetched
      out[i] = hit{};
      cur[i] = buckets_[bi[i]].begin();
      if (cur[i] != buckets_[bi[i]].end()) {
        prefetch_node(node_at(cur[i]));
        pending |= std::uint64_t{1} << i;
      }
    }
    std::uint64_t found = 0;
    while (pending != 0) {  // 3: one node of every pending chain per round, next one prefetched
      for (std::uint64_t p = pending; p != 0; p &= p - 1) {
        const auto i = static_cast<std::size_t>(std::countr_zero(p));
        const std::uint64_t bit = std::uint64_t{1} << i;
        node_type& nd = node_at(cur[i]);
        if (nd.hash == hashes[i] && keys_equal(nd.key, keys[i])) {
          out[i] = hit{&conn_of(nd), nd.dir};
          prefetch_hooks(*out[i].conn);
          found |= bit;
          pending &= ~bit;
        } else if (++cur[i] == buckets_[bi[i]].end()) {
          pending &= ~bit;
        } else {
          prefetch_node(node_at(cur[i]));
        }
      }
    }
    const auto hits = static_cast<std::uint64_t>(std::popcount(found));
    stats_.lookup_hits += hits;
    stats_.lookup_misses += n - hits;
    return found;
  }

  // A node's 32 or 56 bytes: one line, or two when it straddles a line boundary. Address arithmetic
  // only: the node itself is not read (it is what is being fetched).
  static void prefetch_node(const node_type& nd) noexcept {
    const auto* p = reinterpret_cast<const char*>(&nd);
    __builtin_prefetch(p, 0, 3);
    if ((reinterpret_cast<std::uintptr_t>(p) & 63) + sizeof(node_type) > 64) __builtin_prefetch(p + sizeof(node_type) - 1, 0, 3);
  }

  // Once a key matched (its node is in cache, so its conn's address costs nothing): the lines of both
  // tuple nodes, because the caller rewrites with the other one. Issued as the hit is found, the miss
  // overlaps with the rest of the burst's lookups. (A conn type that keeps its hot fields next to its
  // conn_hooks gets them in the same lines.) Prefetching those lines already with the candidate node
  // in stage 2 was measured slower here (pipeline_bench, AMD EPYC VM): with a burst's buckets and
  // nodes in flight the extra lines queue behind them.
  static void prefetch_hooks(Conn& c) noexcept {
    const auto* first = reinterpret_cast<const char*>(&Access::hooks(c));
    const auto line = reinterpret_cast<std::uintptr_t>(first) & ~std::uintptr_t{63};
    const auto end = reinterpret_cast<std::uintptr_t>(first) + sizeof(hooks_type);
    for (std::uintptr_t p = line; p < end; p += 64) __builtin_prefetch(reinterpret_cast<const void*>(p), 0, 3);
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] bucket_alloc alloc_;
  bucket_type* buckets_ = nullptr;  ///< null when moved from
  std::size_t bucket_count_ = 0;
  std::size_t mask_ = 0;
  std::size_t capacity_ = 0;
  std::size_t max_chain_ = 0;
  std::size_t size_ = 0;
  std::uint64_t version_ = 0;  ///< inserts and erases so far: what makes an insert_ticket stale
  conn_table_stats stats_{};
  bucket_type spare_;  ///< the one bucket set_ uses when the table has no array (moved from)
  set_type set_;       ///< over buckets_ when the table has them, else over spare_
};

}  // namespace fnat
