// SPDX-License-Identifier: BSD-3-Clause
// Per-lcore FullNAT session table: the connection lifecycle as one component.
//
// ## Why a component
// A FullNAT worker does the same few things with every connection, in a fixed order, and each step
// can fail: take a local port (sa_pool, through the service's LIP rotation), take a conn object
// (object_pool), file the conn under both of its tuples (conn_table), arm its idle timer
// (timer_wheel); on traffic, refresh the timer and follow the protocol state; at the end, undo all
// four. Written by hand in an application, the undo sequence appears three times (close, expiry,
// drain) and every failure path between the steps needs its own partial rollback. session_table
// composes the four pieces so that opening is all-or-nothing and closing is one call, and keeps the
// counts (per refusal reason, per protocol state) that an operator and a flood bound need.
//
// ## Opening: claim the port only when the table has said yes
//   1. cheap refusals first: no such port group, table or conn pool full;
//   2. rotation.fetch(dest): a LIP and lport whose replies the NIC steers back to this lcore;
//   3. conn_table::prepare_insert(in, out): both tuples free, room in both chains; a ticket;
//   4. object_pool::allocate (cannot fail after step 1), conn_table::commit_insert(ticket) (links
//      without searching again), timer_wheel::arm (cannot fail on a fresh object).
// A refusal at step 2 or 3 gives the port back before returning; nothing else was claimed. The
// refusal says which resource ran out (session_refusal) and is counted.
//
// ## The idle timer is lazy
// Every packet of a session would push its deadline back. Re-linking the timer entry writes the
// entry and its two list neighbours (other sessions: two cache misses per packet), so touch() only
// stamps `last_seen` in the session's hot line, which the lookup has just brought into cache. The
// wheel entry keeps the deadline it was armed with; when it fires, the table compares the idle time
// (now - last_seen) with the session's timeout and, if the session was touched meanwhile, re-arms it
// for what is left. A session therefore expires between `timeout` and `timeout + one tick` after its
// last packet, and each refresh costs one store. A state change (set_state) re-arms at once, so a
// shorter timeout (a FIN, a RST) is never served late. Times are 64-bit wheel ticks, which never
// wrap (at 1 ns per tick, 584 years).
//
// ## Layout of a session (session<Payload>)
//   bytes   0..111  the two tuple nodes (conn_hooks<inet_tuple>), fetched by the lookup
//   bytes 112..127  last_seen, tag, group, proto, state: what every packet reads or writes
//   then            the lport's pool and bucket, the timeout, the timer entry, and Payload
// `tag` is 32 bits for the application's own hot data (fnat_lb keeps the real server's index there);
// Payload holds the rest (read on creation, expiry and by the control plane).
//
// ## Ownership and invalidation
// The table owns its conn pool, its conn table and its wheel. It does not own the LIP rotations
// (port groups): several lcores' tables share none, but one LIP's sa_pool usually serves several
// services, so the application keeps the pools and rotations, registers each rotation once with
// add_group(), and keeps them alive and unmoved while the table has sessions. A session never moves
// while it is open; pointers to it stay valid until close(), its expiry callback returns, or drain().
//
// Thread safety: none; one table per lcore, used only by that lcore.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/addr.hpp"
#include "fnat/core/conn_table.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/object_pool.hpp"
#include "fnat/core/sa_pool.hpp"
#include "fnat/core/sa_pool_policy.hpp"
#include "fnat/core/timer_wheel.hpp"

namespace fnat {

/// Payload of a session that carries nothing beyond the table's own fields.
struct no_payload {};

/// One FullNAT connection: both tuples (inbound client -> VIP:vport, outbound RS:rport -> LIP:lport),
/// the table's bookkeeping and the application's Payload. Created by session_table::open only.
template <class Payload = no_payload>
struct alignas(64) session : conn_hooks<inet_tuple> {
  // ---- hot: bytes 112..127, in the lines a lookup fetches --------------------------------------
  std::uint64_t last_seen = 0;  ///< wheel tick of the last touch() or set_state()
  std::uint32_t tag = 0;        ///< the application's hot word (e.g. a backend index)
  std::uint16_t group = 0;      ///< the port group (LIP rotation) the lport came from
  std::uint8_t proto = 0;       ///< ipproto of both tuples
  std::uint8_t state = 0;       ///< the application's protocol state (tcp_state, udp_state, ...)
  // ---- cold: opening, state changes, expiry -----------------------------------------------------
  std::uint16_t pool = 0;       ///< the LIP's pool in the group's rotation (sa_rotation_result::pool)
  std::uint16_t bucket = 0;     ///< the lport's bucket in that pool (released there, no bucket_of)
  std::uint64_t timeout = 0;    ///< idle timeout of the current state, in wheel ticks
  timer_entry timer;
  Payload data{};

  /// client -> VIP:vport, as the client sends it.
  [[nodiscard]] const inet_tuple& in() const noexcept { return tuple(direction::inbound); }
  /// RS:rport -> LIP:lport, as the real server replies.
  [[nodiscard]] const inet_tuple& out() const noexcept { return tuple(direction::outbound); }
  [[nodiscard]] inet_addr lip() const noexcept { return out().daddr; }
  /// The local port, host order.
  [[nodiscard]] std::uint16_t lport() const noexcept { return ntoh16(out().dport); }
  [[nodiscard]] endpoint real_server() const noexcept { return endpoint{out().saddr, ntoh16(out().sport)}; }
  [[nodiscard]] endpoint client() const noexcept { return endpoint{in().saddr, ntoh16(in().sport)}; }
};

/// Why open() refused a session. Every refusal leaves nothing claimed.
enum class session_refusal : std::uint8_t {
  none,              ///< opened
  bad_group,         ///< no port group with that number (a programming error, counted)
  no_port,           ///< every LIP of the group is out of ports towards this destination
  no_local_address,  ///< the group has no LIP of the destination's family
  no_session,        ///< the conn pool is exhausted (the table's capacity)
  table_full,        ///< the conn table holds its capacity
  chain_full,        ///< a tuple's bucket is at max_chain (hash flooding, or a weak hash)
  tuple_in_use,      ///< the inbound tuple (or the chosen outbound one) is already in the table
};
inline constexpr std::size_t session_refusal_count = static_cast<std::size_t>(session_refusal::tuple_in_use) + 1;

[[nodiscard]] constexpr std::string_view to_string(session_refusal r) noexcept {
  switch (r) {
    case session_refusal::none: return "none";
    case session_refusal::bad_group: return "bad_group";
    case session_refusal::no_port: return "no_port";
    case session_refusal::no_local_address: return "no_local_address";
    case session_refusal::no_session: return "no_session";
    case session_refusal::table_full: return "table_full";
    case session_refusal::chain_full: return "chain_full";
    case session_refusal::tuple_in_use: return "tuple_in_use";
  }
  return "unknown";
}

/// What a session table is made from. Build with designated initializers.
struct session_table_config {
  /// Sessions at once: the conn pool's size (and the conn table's capacity, unless table_capacity
  /// says otherwise). Default 65536.
  std::size_t capacity = 65536;
  /// The conn table's capacity when it differs from the pool's: a smaller table fills before the
  /// conn objects run out (refusal table_full rather than no_session), which an application may
  /// want so that the table's memory, not the objects', is the bound. 0: `capacity`. Default 0.
  std::size_t table_capacity = 0;
  /// The conn table's nodes per bucket at capacity (see conn_table.hpp). Default 0.5.
  double max_load_factor = 0.5;
  /// The conn table's chain bound (see conn_table.hpp; 0: none). Default 32.
  std::size_t max_chain = 32;
  /// The idle timers' wheel. Default 4096 slots of 10 ms.
  timer_wheel_config wheel{};
};

/// The policies of a session table. Override one alone by deriving:
///   struct my_traits : fnat::session_table_traits { using clock = my_tsc_clock; };
struct session_table_traits {
  using pool_policy = hashed_buckets;               ///< the sa_pool policy of the LIPs' pools
  using allocator = std::allocator<std::byte>;      ///< conn pool and bucket array memory
  using clock = manual_clock;                       ///< the wheel's clock
  using hash = tuple_hash;                          ///< keyed tuple hash (hash.hpp)
};

/// Counters of a session table (monotonic, except what says "now").
struct session_table_stats {
  std::size_t open = 0;        ///< sessions open now
  std::uint64_t opened = 0;    ///< open() successes
  std::uint64_t closed = 0;    ///< close() calls that closed a session
  std::uint64_t expired = 0;   ///< sessions closed by their idle timer
  std::uint64_t drained = 0;   ///< sessions closed by drain()
  std::uint64_t rearmed = 0;   ///< timer firings that found the session touched since (lazy refresh)
  std::array<std::uint64_t, session_refusal_count> refused{};  ///< open() refusals by reason
  [[nodiscard]] std::uint64_t refusals() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < refused.size(); ++i) n += refused[i];
    return n;
  }
};

/// What open() asks for.
struct session_request {
  inet_tuple in;              ///< the first packet's tuple, client -> VIP:vport (ports in network order)
  endpoint dest;              ///< the real server (port in host order)
  std::uint16_t group = 0;    ///< port group (add_group's number): whose LIPs and ports to use
  std::uint8_t state = 0;     ///< the initial protocol state
  std::uint64_t timeout = 1;  ///< its idle timeout, in wheel ticks (ticks_for converts)
  std::uint32_t tag = 0;      ///< the application's hot word
};

/// A per-lcore FullNAT session table (see the file comment).
template <class Payload = no_payload, class Traits = session_table_traits>
class session_table {
 public:
  using session_type = session<Payload>;
  using pool_policy = typename Traits::pool_policy;
  using allocator_type = typename Traits::allocator;
  using clock_type = typename Traits::clock;
  using hash_type = typename Traits::hash;
  using rotation_type = sa_pool_rotation<pool_policy, allocator_type>;
  using table_type = conn_table<session_type, conn_hooks_base<session_type>, hash_type, allocator_type>;
  using pool_type = object_pool<session_type, allocator_type>;
  using wheel_type = timer_wheel<session_type, timer_member<&session_type::timer>, clock_type>;
  using hit = typename table_type::hit;

  /// Protocol classes that state counts are kept for: TCP, UDP, everything else.
  static constexpr std::size_t state_slots = 16;

  /// Result of open(): the session, or nullptr and the reason.
  struct open_result {
    session_type* session = nullptr;
    session_refusal why = session_refusal::none;
    explicit operator bool() const noexcept { return session != nullptr; }
  };

  /// Builds an empty table. Configuration time: allocates the conn pool, the bucket array and the
  /// wheel. Errors: those of object_pool::make, conn_table::make and timer_wheel::make, with
  /// "session table: " in front.
  [[nodiscard]] static result<session_table> make(const session_table_config& cfg = {}, clock_type clock = clock_type(),
                                                   const hash_type& hash = hash_type(),
                                                   const allocator_type& alloc = allocator_type()) {
    auto pool = pool_type::make(cfg.capacity, alloc);
    if (!pool) return error(pool.err().code(), "session table: " + pool.err().message());
    auto table = table_type::make(
        {.capacity = cfg.table_capacity != 0 ? cfg.table_capacity : cfg.capacity, .max_load_factor = cfg.max_load_factor, .max_chain = cfg.max_chain}, hash, alloc);
    if (!table) return error(table.err().code(), "session table: " + table.err().message());
    auto wheel = wheel_type::make(cfg.wheel, std::move(clock));
    if (!wheel) return error(wheel.err().code(), "session table: " + wheel.err().message());
    return session_table(std::move(*pool), std::move(*table), std::move(*wheel));
  }

  session_table(session_table&&) noexcept = default;
  session_table& operator=(session_table&&) noexcept = default;
  session_table(const session_table&) = delete;
  session_table& operator=(const session_table&) = delete;
  /// Sessions still open are unlinked and destroyed; their ports are NOT given back (the rotations
  /// may be gone by then): drain() first.
  ~session_table() = default;

  // ---- configuration ----------------------------------------------------------------------------

  /// Registers a port group (a service's LIP rotation on this lcore) and returns its number for
  /// session_request::group. The rotation must outlive every session opened from it, at a fixed
  /// address. Error errc::invalid_argument past 65536 groups. May allocate.
  [[nodiscard]] result<std::uint16_t> add_group(rotation_type& r) {
    if (groups_.size() > 0xffff)
      return error(errc::invalid_argument, "session table: 65536 port groups already; share rotations between services");
    groups_.push_back(&r);
    return static_cast<std::uint16_t>(groups_.size() - 1);
  }
  [[nodiscard]] std::size_t group_count() const noexcept { return groups_.size(); }

  // ---- the lifecycle ------------------------------------------------------------------------------

  /// Opens a session for a first packet: local port, conn object, both tuples, idle timer; all or
  /// nothing (see the file comment). `payload_args` construct the Payload (must not throw).
  /// Returns: the session, or the refusal (counted in stats().refused); on a refusal nothing stays
  /// claimed. Complexity: O(1) expected (the rotation is O(LIPs) when LIPs are exhausted).
  /// noexcept, no allocation.
  template <class... Args>
  [[nodiscard]] open_result open(const session_request& rq, Args&&... payload_args) noexcept {
    return open_with_hash(rq, table_.hash_of(rq.in), std::forward<Args>(payload_args)...);
  }

  /// open() with the inbound tuple's hash already computed (the lookup that missed computed it).
  /// Requires: in_hash == hash_of(rq.in).
  template <class... Args>
  [[nodiscard]] open_result open_with_hash(const session_request& rq, std::uint32_t in_hash,
                                           Args&&... payload_args) noexcept {
    if (rq.group >= groups_.size()) return refuse(session_refusal::bad_group);
    if (pool_.full()) return refuse(session_refusal::no_session);
    if (table_.size() >= table_.capacity()) return refuse(session_refusal::table_full);
    rotation_type& rot = *groups_[rq.group];
    const sa_rotation_result lease = rot.fetch(rq.dest);
    if (lease.status != errc::ok)
      return refuse(lease.status == errc::exhausted ? session_refusal::no_port : session_refusal::no_local_address);
    const inet_tuple out{rq.dest.addr, lease.lip, hton16(rq.dest.port), hton16(lease.port), rq.in.proto, {0, 0, 0}};
    typename table_type::insert_ticket ticket;
    const errc rc = table_.prepare_insert_with_hash(rq.in, in_hash, out, table_.hash_of(out), ticket);
    if (rc != errc::ok) {
      (void)rot.release_in(lease.pool, lease.bucket, lease.port);
      return refuse(rc == errc::table_full    ? session_refusal::table_full
                    : rc == errc::bucket_full ? session_refusal::chain_full
                                              : session_refusal::tuple_in_use);
    }
    session_type* s = pool_.allocate();
    if (s == nullptr) {  // not after the check above; kept so that a miscount cannot leak a port
      (void)rot.release_in(lease.pool, lease.bucket, lease.port);
      return refuse(session_refusal::no_session);
    }
    if constexpr (sizeof...(Args) > 0) s->data = Payload{std::forward<Args>(payload_args)...};
    s->last_seen = wheel_.now_tick();
    s->tag = rq.tag;
    s->group = rq.group;
    s->proto = rq.in.proto;
    s->state = rq.state;
    s->pool = lease.pool;
    s->bucket = lease.bucket;
    s->timeout = rq.timeout;
    (void)table_.commit_insert(*s, rq.in, out, ticket);
    (void)wheel_.arm(*s, rq.timeout);
    ++states_[slot_of(s->proto, s->state)];
    ++stats_.opened;
    return {s, session_refusal::none};
  }

  /// The per-packet refresh: stamps the session as seen now. Writes only the hot line.
  /// Complexity: O(1). noexcept.
  void touch(session_type& s) noexcept { s.last_seen = wheel_.now_tick(); }

  /// A packet that moves the session to `state`, whose idle timeout is `timeout` ticks: stamps it
  /// and, when the state changes, re-arms the timer at once (so that a shorter timeout is not served
  /// late) and moves the state counts. The same state only stamps. Complexity: O(1). noexcept.
  void set_state(session_type& s, std::uint8_t state, std::uint64_t timeout) noexcept {
    s.last_seen = wheel_.now_tick();
    if (state == s.state) return;
    --states_[slot_of(s.proto, s.state)];
    ++states_[slot_of(s.proto, state)];
    s.state = state;
    s.timeout = timeout;
    wheel_.rearm(s, timeout);
  }

  /// Closes an open session now: timer, both tuples, local port, conn object.
  /// Requires: s is open in this table. Returns: errc::ok; errc::not_found if s is not in this
  /// table's conn table (nothing changes). Complexity: O(1). noexcept. Invalidates s.
  errc close(session_type& s) noexcept {
    if (!table_type::is_linked(s)) return errc::not_found;
    wheel_.cancel(s);
    const errc rc = finish(s);
    if (rc == errc::ok) ++stats_.closed;
    return rc;
  }

  /// Closes the session one of whose tuples (either direction) is `key`, as close() does; for the
  /// control plane and for tests that empty a table without waiting. Returns: errc::ok;
  /// errc::not_found when no session has that tuple. Complexity: O(1) expected. noexcept.
  errc close(const inet_tuple& key) noexcept {
    const hit h = table_.find(key);
    if (!h) return errc::not_found;
    return close(*h.conn);
  }

  /// Advances the idle timers to clock reading `now` (the wheel's clock units). For each session
  /// whose timer fires: if it was touched since, re-arms it for the rest of its timeout; otherwise
  /// calls on_expire(session_type&) and closes it. At most `budget` firings (the rest wait for the
  /// next call). on_expire may read the session and must not close it or call advance.
  /// Returns: the sessions closed. Complexity: as timer_wheel::advance. noexcept if on_expire is.
  template <class F>
  std::size_t advance(std::uint64_t now, F&& on_expire, std::size_t budget = 4096) {
    return advance_to(wheel_.tick_of(now), std::forward<F>(on_expire), budget);
  }
  /// advance() to a wheel tick.
  template <class F>
  std::size_t advance_to(std::uint64_t tick, F&& on_expire, std::size_t budget = 4096) {
    std::size_t closed = 0;
    wheel_.advance_to(
        tick,
        [&](session_type& s) {
          const std::uint64_t t = wheel_.now_tick();
          const std::uint64_t idle = t > s.last_seen ? t - s.last_seen : 0;
          if (idle < s.timeout) {
            wheel_.rearm(s, s.timeout - idle);
            ++stats_.rearmed;
            return;
          }
          on_expire(s);
          if (finish(s) == errc::ok) {
            ++stats_.expired;
            ++closed;
          }
        },
        budget);
    return closed;
  }

  /// Closes every session, calling on_close(session_type&) on each first (e.g. to count it per real
  /// server). The ports go back to their rotations. Returns: the number closed. O(buckets + open).
  template <class F>
  std::size_t drain(F&& on_close) {
    std::size_t n = 0;
    table_.for_each([&](session_type& s) {
      on_close(s);
      wheel_.cancel(s);
      if (finish(s) == errc::ok) ++n;
    });
    stats_.drained += n;
    return n;
  }
  std::size_t drain() {
    return drain([](session_type&) noexcept {});
  }

  // ---- lookup -------------------------------------------------------------------------------------

  /// The session of a packet's tuple (either direction), or an empty hit. O(1) expected.
  [[nodiscard]] hit lookup(const inet_tuple& key) noexcept { return table_.find(key); }
  [[nodiscard]] hit lookup_with_hash(const inet_tuple& key, std::uint32_t h) noexcept {
    return table_.find_with_hash(key, h);
  }
  /// Up to conn_table::max_bulk keys with their memory latency overlapped; out[i] for key i.
  /// Returns: the mask of keys found.
  std::uint64_t lookup_bulk(std::span<const inet_tuple> keys, hit* out) noexcept { return table_.find_bulk(keys, out); }
  [[nodiscard]] std::uint32_t hash_of(const inet_tuple& key) const noexcept { return table_.hash_of(key); }

  // ---- time, counts, checks -----------------------------------------------------------------------

  /// The wheel's present tick, and conversions (timeouts are in ticks).
  [[nodiscard]] std::uint64_t now_tick() const noexcept { return wheel_.now_tick(); }
  template <class D>
  [[nodiscard]] std::uint64_t ticks_for(D d) const noexcept {
    return wheel_.ticks_for(d);
  }
  [[nodiscard]] std::uint64_t tick_of(std::uint64_t clock_reading) const noexcept { return wheel_.tick_of(clock_reading); }

  /// Sessions open now in protocol `proto` and state `state` (e.g. TCP SYN_RECV for a half-open
  /// bound, UDP oneway for a one-way bound). O(1).
  [[nodiscard]] std::size_t count_in_state(std::uint8_t proto, std::uint8_t state) const noexcept {
    return states_[slot_of(proto, state)];
  }
  [[nodiscard]] std::size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return table_.capacity(); }
  [[nodiscard]] session_table_stats stats() const noexcept {
    session_table_stats s = stats_;
    s.open = table_.size();
    return s;
  }
  [[nodiscard]] const table_type& table() const noexcept { return table_; }
  [[nodiscard]] const pool_type& conn_pool() const noexcept { return pool_; }
  [[nodiscard]] const wheel_type& wheel() const noexcept { return wheel_; }

  /// "" when the table's own resources agree with each other: as many conn objects in use as
  /// sessions in the conn table, as many armed timers, and the state counts add up; otherwise what
  /// disagrees. After drain(), also that nothing is open. The application checks its own sa_pools
  /// (their used counts) separately. O(1).
  [[nodiscard]] std::string leak_report() const {
    std::string out;
    const std::size_t n = table_.size();
    if (pool_.in_use() != n)
      out += " conn objects in use " + std::to_string(pool_.in_use()) + " != sessions " + std::to_string(n) + ";";
    if (wheel_.armed() != n)
      out += " armed timers " + std::to_string(wheel_.armed()) + " != sessions " + std::to_string(n) + ";";
    std::size_t counted = 0;
    for (const std::size_t c : states_) counted += c;
    if (counted != n) out += " state counts " + std::to_string(counted) + " != sessions " + std::to_string(n) + ";";
    return out;
  }

 private:
  session_table(pool_type pool, table_type table, wheel_type wheel)
      : pool_(std::move(pool)), table_(std::move(table)), wheel_(std::move(wheel)) {}

  [[nodiscard]] static std::size_t slot_of(std::uint8_t proto, std::uint8_t state) noexcept {
    const std::size_t cls = proto == ipproto::tcp ? 0 : proto == ipproto::udp ? 1 : 2;
    return cls * state_slots + (state < state_slots ? state : state_slots - 1);
  }

  open_result refuse(session_refusal why) noexcept {
    ++stats_.refused[static_cast<std::size_t>(why)];
    return {nullptr, why};
  }

  // Unlinks s (its timer already disarmed), gives its port back and frees it.
  errc finish(session_type& s) noexcept {
    const errc rc = table_.erase(s);
    if (rc != errc::ok) return rc;
    --states_[slot_of(s.proto, s.state)];
    if (s.group < groups_.size()) (void)groups_[s.group]->release_in(s.pool, s.bucket, s.lport());
    (void)pool_.deallocate(&s);
    return errc::ok;
  }

  // The pool is declared first so that it is destroyed last: the table and the wheel unlink the
  // sessions they still hold as they go, which writes to the pool's memory.
  pool_type pool_;
  table_type table_;
  wheel_type wheel_;
  std::vector<rotation_type*> groups_;
  std::array<std::size_t, 3 * state_slots> states_{};
  session_table_stats stats_{};
};

}  // namespace fnat
