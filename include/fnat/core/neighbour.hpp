// SPDX-License-Identifier: BSD-3-Clause
// A per-lcore neighbour cache: IPv4/IPv6 next hop -> MAC, for the balancer's transmit path.
//
// ## What it does
// Each entry maps an address (either family, `inet_addr`) to a MAC and a state:
//  - permanent: a static neighbour from the configuration (Linux's NUD_PERMANENT); never expires,
//    never evicted, never overwritten by what the wire says (an ARP reply cannot hijack it);
//  - reachable: learned from ARP (RFC 826) or Neighbor Advertisement (RFC 4861) and confirmed at
//    `confirmed`; after reachable_ms without a new confirmation it reads as stale: still used, but
//    resolve() asks the dataplane for a refresh request (rate-limited) and expire() removes it when
//    stale_ms more pass without one;
//  - incomplete: a packet needed it, a request ("who has X" / Neighbor Solicitation) went out, no
//    answer yet; expire() drops it after incomplete_ms.
// The dataplane asks for a request only through resolve()'s `request` flag, which is raised at most
// once per request_interval_ms per address: a flood of packets to an unresolved address makes one
// request per interval, not one per packet.
//
// ## Waiting packets: a small hold queue, not a drop
// The first packet to an unresolved next hop is, for a load balancer, a client's SYN (or a UDP
// query) forwarded to a real server. Dropping it costs the client a retransmission timeout (1 s for a
// TCP SYN), so like Linux (unres_qlen) each incomplete entry holds up to `Hold` packets (template
// parameter, default 4) in arrival order. learn() hands them back, oldest first, through the
// caller's `on_release(packet, mac)`; expire(), remove() and clear() hand them to `on_drop(packet)`.
// A packet that finds the queue full, or no room for a new entry, is not held: resolve() says so and
// the caller drops it and counts it as "unknown neighbour" (stats().unresolved_drops counts them
// too). Held packets are opaque handles (`Packet`, e.g. `rte_mbuf*`); the cache never frees one:
// the caller owns every packet it gets back, and must clear() a cache that still holds packets
// before destroying it.
//
// ## Layout and costs
// Open addressing with linear probing over a power-of-two slot array of at least 2 * capacity slots
// (load factor <= 1/2, so a probe is one or two cache lines), deletion by backward shift (no
// tombstones). Slots are allocated once, in make(); nothing allocates afterwards.
//   resolve, learn, find, remove: O(1) expected;
//   a new entry in a full cache evicts one by CLOCK (second chance): a hand sweeps the slots,
//     skipping permanent entries and incomplete ones holding packets, clearing the "referenced" bit
//     that resolve() sets on each hit (and insertion sets on a new entry) and taking the first entry
//     found without it; O(1) amortised,
//     at most two sweeps (2 * slots) before answering errc::table_full;
//   expire: O(slots); call it from the timer tick, every 100 ms or so is plenty.
// Addresses come from the wire (ARP senders, ND targets), so the slot index is a keyed hash
// (`Hash`, default fnat::tuple_hash with the process-wide random secret, hash.hpp): with an unkeyed
// one a sender could choose addresses that all probe from one slot and stretch every lookup across
// the whole run. Times (`confirmed`, `next_request`) are stored as 64-bit ticks.
//
// ## One cache per lcore
// The cache is not thread-safe: each worker lcore owns one. ARP and NDP packets carry no L4 ports,
// so RSS or flow rules deliver them to one queue; the lcore that receives an answer should pass
// (address, MAC) to the others (e.g. over a ring) so that each calls learn() on its own cache.
//
// ## Time
// Every call that needs the time takes `now` in the caller's ticks (rte_get_tsc_cycles(),
// nanoseconds, ...); neighbour_config::ticks_per_second says how many make a second, and durations
// are configured in milliseconds. Time must not go backwards (checked mode says so if it does).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(FNAT_CHECKED)
#include <cstdio>
#include <cstdlib>
#endif

#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/headers.hpp"  // mac_addr

namespace fnat {

/// State of a neighbour entry (see the file comment).
enum class neigh_state : std::uint8_t {
  incomplete,  ///< asked for, no answer yet; packets may be waiting
  reachable,   ///< learned and confirmed less than reachable_ms ago
  stale,       ///< learned, not confirmed for reachable_ms: used, and refreshed on the next resolve
  permanent,   ///< static, from the configuration
};

[[nodiscard]] constexpr std::string_view to_string(neigh_state s) noexcept {
  switch (s) {
    case neigh_state::incomplete:
      return "incomplete";
    case neigh_state::reachable:
      return "reachable";
    case neigh_state::stale:
      return "stale";
    case neigh_state::permanent:
      return "permanent";
  }
  return "unknown";
}

/// How a neighbour cache is built. Designated initializers:
/// `neighbour_cache<rte_mbuf*>::make({.capacity = 256, .ticks_per_second = rte_get_tsc_hz()})`.
struct neighbour_config {
  /// Most entries, permanent ones included. 1..2^20. Default 1024.
  std::uint32_t capacity = 1024;
  /// Ticks of the caller's clock per second (the unit of every `now`). Default 10^9 (nanoseconds).
  std::uint64_t ticks_per_second = 1'000'000'000;
  /// Least time between two requests for one address (Linux's retrans_time). Default 1000 ms.
  std::uint32_t request_interval_ms = 1000;
  /// How long a confirmation keeps an entry reachable (Linux's base_reachable_time). Default 30000 ms.
  std::uint32_t reachable_ms = 30'000;
  /// How long a stale entry is kept without a new confirmation before expire() removes it.
  /// Default 60000 ms (Linux's gc_stale_time).
  std::uint32_t stale_ms = 60'000;
  /// How long an incomplete entry waits for an answer before expire() drops it and its packets.
  /// Default 3000 ms (three requests at the default interval).
  std::uint32_t incomplete_ms = 3'000;
};

/// Counters of one cache (per lcore: plain integers, read them from the owner lcore or tolerate tearing).
struct neighbour_stats {
  std::uint64_t hits = 0;              ///< resolve() found a usable MAC
  std::uint64_t misses = 0;            ///< resolve() found none (incomplete or new entry)
  std::uint64_t held = 0;              ///< packets taken into a hold queue
  std::uint64_t unresolved_drops = 0;  ///< packets resolve() could not hold: "unknown neighbour" drops
  std::uint64_t requests = 0;          ///< times resolve() asked for a request
  std::uint64_t learned = 0;           ///< entries created or confirmed by learn()
  std::uint64_t static_conflicts = 0;  ///< learn() with another MAC for a permanent entry (ignored)
  std::uint64_t rejected = 0;          ///< learn() with a zero or group MAC or an unspecified address
  std::uint64_t evictions = 0;         ///< entries evicted to make room
  std::uint64_t expired = 0;           ///< entries removed by expire() (incomplete or stale)
  std::uint64_t expired_packets = 0;   ///< held packets handed to on_drop by expire()
};

/// What resolve() answers. Eight bytes, so that it comes back in one register.
struct neigh_result {
  /// The neighbour's MAC; valid when rc == errc::ok.
  mac_addr mac{};
  /// errc::ok: send to `mac` now. errc::not_found: no MAC yet; see `held`. errc::table_full: no entry
  /// could be made for the address (every one is permanent or holds packets); the packet is not held.
  errc rc = errc::ok;
  /// The cache took the packet (only when rc != ok); it comes back through learn() or an on_drop.
  bool held : 1 = false;
  /// Send a request for the address now: ARP who-has or Neighbor Solicitation (broadcast/multicast
  /// when rc != ok; with rc == ok the entry is stale and may be probed at `mac` directly).
  bool request : 1 = false;
};
static_assert(sizeof(neigh_result) == 8);

/// What find() and for_each() show of an entry.
struct neighbour_info {
  inet_addr addr;
  mac_addr mac;  ///< zero while incomplete
  neigh_state state = neigh_state::incomplete;
  std::uint64_t confirmed = 0;  ///< last confirmation (creation time while incomplete)
  std::uint32_t held = 0;       ///< packets waiting
};

/// learn()'s policy for an address the cache does not know.
enum class learn_mode : std::uint8_t {
  update,  ///< only refresh an existing entry (gratuitous ARP, unsolicited NA)
  create,  ///< create it too (an answer to our request, a request addressed to us)
};

/// Handles a neighbour cache holds: trivially copyable values such as `rte_mbuf*`.
template <class P>
concept neigh_packet = std::is_trivially_copyable_v<P> && std::is_default_constructible_v<P>;

/// The cache (see the file comment). `Packet`: the handle type of held packets; `Hold`: packets held
/// per unresolved address (1..255); `Hash`: the slot hash (keyed; pass a fixed-key tuple_hash to make()
/// for reproducible tests).
/// Thread safety: none; one owner lcore. Invalidation: none of its operations returns a reference.
/// Memory: allocated by make() (capacity-proportional), freed by the destructor; held packets are the
/// caller's, see clear().
template <neigh_packet Packet = void*, std::size_t Hold = 4, class Hash = tuple_hash>
class neighbour_cache {
  static_assert(Hold >= 1 && Hold <= 255, "Hold: between 1 and 255 packets per address");

 public:
  using packet_type = Packet;
  static constexpr std::size_t hold = Hold;
  static constexpr std::uint32_t max_capacity = std::uint32_t{1} << 20;

  /// Builds an empty cache. Errors (errc::invalid_argument): capacity 0 or above max_capacity,
  /// ticks_per_second below 1000, a zero duration. Complexity: O(capacity). Allocates (the only time).
  [[nodiscard]] static result<neighbour_cache> make(const neighbour_config& cfg = {}, const Hash& hash = Hash()) {
    if (cfg.capacity == 0 || cfg.capacity > max_capacity)
      return error(errc::invalid_argument, "neighbour cache: capacity " + std::to_string(cfg.capacity) +
                                               " is outside 1.." + std::to_string(max_capacity));
    if (cfg.ticks_per_second < 1000)
      return error(errc::invalid_argument,
                   "neighbour cache: ticks_per_second " + std::to_string(cfg.ticks_per_second) +
                       " is below 1000; pass your clock's rate (rte_get_tsc_hz(), 10^9 for ns)");
    if (cfg.request_interval_ms == 0 || cfg.reachable_ms == 0 || cfg.stale_ms == 0 || cfg.incomplete_ms == 0)
      return error(errc::invalid_argument,
                   "neighbour cache: request_interval_ms, reachable_ms, stale_ms and incomplete_ms must be above 0");
    neighbour_cache c;
    c.hash_ = hash;
    c.capacity_ = cfg.capacity;
    c.slots_.resize(std::bit_ceil(std::size_t{cfg.capacity} * 2));
    c.mask_ = c.slots_.size() - 1;
    auto ticks = [&](std::uint32_t ms) {
      return static_cast<std::uint64_t>(static_cast<unsigned __int128>(ms) * cfg.ticks_per_second / 1000);
    };
    c.request_interval_ = ticks(cfg.request_interval_ms);
    c.reachable_ = ticks(cfg.reachable_ms);
    c.stale_ = ticks(cfg.stale_ms);
    c.incomplete_ = ticks(cfg.incomplete_ms);
    return c;
  }

  /// Moves the entries and the held packets; the source is left empty (size() 0, no slots).
  neighbour_cache(neighbour_cache&& o) noexcept { take(o); }
  /// Requires: *this holds no packet (clear() it first; checked mode says so).
  neighbour_cache& operator=(neighbour_cache&& o) noexcept {
    if (this != &o) {
      check_nothing_held("assigned over");
      take(o);
    }
    return *this;
  }
  neighbour_cache(const neighbour_cache&) = delete;  // held packets have one owner
  neighbour_cache& operator=(const neighbour_cache&) = delete;
  /// Requires: no packet held (clear() first; checked mode says so). Frees the slots.
  ~neighbour_cache() { check_nothing_held("destroyed"); }

  /// Adds a static neighbour (configuration time). Errors: errc::invalid_argument for an unspecified
  /// address or a MAC that is zero or a group address; errc::exists when the address is permanent
  /// with another MAC or is being resolved with packets waiting (remove() it first); errc::table_full
  /// when every entry is permanent or holds packets. A learned entry for the address is replaced.
  /// Complexity: O(1) expected. No allocation.
  [[nodiscard]] result<void> add_static(const inet_addr& addr, const mac_addr& mac) {
    if (addr.is_unspecified() || !mac.is_unicast())
      return error(errc::invalid_argument, "neighbour " + addr.to_string() + " " + mac.to_string() +
                                               ": a static neighbour needs a specified address and a unicast MAC");
    const std::uint32_t h = hash_(addr);
    if (slot* s = find_slot(addr, h)) {
      if (s->state == neigh_state::permanent && s->mac != mac)
        return error(errc::exists, "neighbour " + addr.to_string() + " is already static with MAC " +
                                       s->mac.to_string() + ", not " + mac.to_string());
      if (s->nheld != 0)
        return error(errc::exists,
                     "neighbour " + addr.to_string() + " is being resolved with packets waiting; remove() it first");
      s->state = neigh_state::permanent;
      s->mac = mac;
      return {};
    }
    slot* s = insert(addr, h, 0);
    if (s == nullptr)
      return error(errc::table_full, "neighbour cache: no room for static neighbour " + addr.to_string() +
                                         " (capacity " + std::to_string(capacity_) + "); raise the capacity");
    s->state = neigh_state::permanent;
    s->mac = mac;
    return {};
  }

  /// The MAC to send a packet for `addr` to, holding `pkt` while the address is unresolved (see
  /// neigh_result). Creates an incomplete entry for an unknown address (evicting one if the cache is
  /// full). Ownership: when the answer has held == true the cache keeps `pkt` until learn(), expire(),
  /// remove() or clear() hands it back; otherwise the caller keeps it (and drops it when rc != ok).
  /// Complexity: O(1) expected. noexcept, no allocation.
  [[nodiscard]] neigh_result resolve(const inet_addr& addr, std::uint64_t now, Packet pkt) noexcept {
    return resolve_impl(addr, now, &pkt);
  }

  /// As resolve() without a packet: starts (or refreshes) resolution of `addr`, e.g. for each real
  /// server and gateway at start-up, so that first packets find a MAC.
  [[nodiscard]] neigh_result solicit(const inet_addr& addr, std::uint64_t now) noexcept {
    return resolve_impl(addr, now, nullptr);
  }

  /// Records that `addr` is at `mac` (an ARP reply or request, a Neighbor Advertisement or a
  /// Solicitation's source link-layer option). Existing entries become reachable as of `now` and
  /// release their held packets, oldest first, through on_release(Packet, const mac_addr&); unknown
  /// addresses are created only with learn_mode::create. Permanent entries are never changed.
  /// Returns errc::ok; errc::exists when `addr` is permanent with another MAC (ignored, counted);
  /// errc::invalid_argument for a zero or group MAC or an unspecified address (ignored, counted);
  /// errc::not_found for an unknown address with learn_mode::update; errc::table_full when a new
  /// entry finds no room. Complexity: O(1) expected plus O(held). noexcept if on_release is; no
  /// allocation.
  template <class OnRelease>
  errc learn(const inet_addr& addr, const mac_addr& mac, std::uint64_t now, learn_mode mode, OnRelease&& on_release) {
    check_time(now);
    if (addr.is_unspecified() || !mac.is_unicast()) {
      ++stats_.rejected;
      return errc::invalid_argument;
    }
    const std::uint32_t h = hash_(addr);
    slot* s = find_slot(addr, h);
    if (s == nullptr) {
      if (mode == learn_mode::update) return errc::not_found;
      s = insert(addr, h, now);
      if (s == nullptr) return errc::table_full;
    } else if (s->state == neigh_state::permanent) {
      if (s->mac == mac) return errc::ok;
      ++stats_.static_conflicts;
      return errc::exists;
    }
    s->state = neigh_state::reachable;
    s->mac = mac;
    s->confirmed = now;
    s->next_request = now;
    ++stats_.learned;
    // Hand the packets back only after the entry is complete, so that on_release may call resolve().
    const std::uint8_t n = s->nheld;
    std::array<Packet, Hold> out = s->held;
    s->nheld = 0;
    held_total_ -= n;
    for (std::uint8_t i = 0; i < n; ++i) on_release(out[i], mac);
    return errc::ok;
  }

  /// Removes incomplete entries older than incomplete_ms (their packets go to on_drop(Packet)) and
  /// learned entries not confirmed for reachable_ms + stale_ms. Returns the number of entries removed.
  /// Complexity: O(slots). No allocation.
  template <class OnDrop>
  std::size_t expire(std::uint64_t now, OnDrop&& on_drop) {
    check_time(now);
    std::size_t removed = 0;
    for (std::size_t i = 0; i <= mask_;) {
      slot& s = slots_[i];
      bool gone = false;
      if (s.used) {
        if (s.state == neigh_state::incomplete)
          gone = now - s.confirmed >= incomplete_;
        else if (s.state == neigh_state::reachable)
          gone = now - s.confirmed >= reachable_ + stale_;
      }
      if (!gone) {
        ++i;
        continue;
      }
      stats_.expired_packets += s.nheld;
      drop_held(s, on_drop);
      erase_at(i);  // shifts a later entry into slot i: look at i again
      ++stats_.expired;
      ++removed;
    }
    return removed;
  }

  /// Removes `addr` (any state, permanent included); its held packets go to on_drop(Packet).
  /// Returns errc::ok or errc::not_found. Complexity: O(1) expected.
  template <class OnDrop>
  errc remove(const inet_addr& addr, OnDrop&& on_drop) {
    const std::uint32_t h = hash_(addr);
    slot* s = find_slot(addr, h);
    if (s == nullptr) return errc::not_found;
    drop_held(*s, on_drop);
    erase_at(static_cast<std::size_t>(s - slots_.data()));
    return errc::ok;
  }

  /// Removes every entry; held packets go to on_drop(Packet). Call before destroying a cache that may
  /// hold packets. Complexity: O(slots).
  template <class OnDrop>
  void clear(OnDrop&& on_drop) {
    for (auto& s : slots_)
      if (s.used) {
        drop_held(s, on_drop);
        s = slot{};
      }
    size_ = 0;
  }

  /// The entry for `addr`, with its state as of `now` (reachable entries read as stale after
  /// reachable_ms). O(1) expected, noexcept, const.
  [[nodiscard]] std::optional<neighbour_info> find(const inet_addr& addr, std::uint64_t now) const noexcept {
    const slot* s = const_cast<neighbour_cache*>(this)->find_slot(addr, hash_(addr));
    if (s == nullptr) return std::nullopt;
    return info(*s, now);
  }

  /// Calls f(const neighbour_info&) for every entry, in no particular order. O(slots).
  template <class F>
  void for_each(std::uint64_t now, F&& f) const {
    for (const auto& s : slots_)
      if (s.used) f(info(s, now));
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// Packets held in all entries together.
  [[nodiscard]] std::size_t held_packets() const noexcept { return held_total_; }
  [[nodiscard]] const neighbour_stats& stats() const noexcept { return stats_; }

 private:
  struct slot {
    inet_addr addr{};
    mac_addr mac{};
    neigh_state state = neigh_state::incomplete;
    bool used = false;
    bool referenced = false;
    std::uint8_t nheld = 0;
    std::uint32_t hash = 0;
    std::uint64_t confirmed = 0;     // last confirmation; creation time while incomplete
    std::uint64_t next_request = 0;  // earliest time the next request may be asked for
    std::array<Packet, Hold> held{};
  };

  neighbour_cache() = default;

  void take(neighbour_cache& o) noexcept {
    hash_ = o.hash_;
    slots_ = std::exchange(o.slots_, {});
    mask_ = std::exchange(o.mask_, 0);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    hand_ = std::exchange(o.hand_, 0);
    held_total_ = std::exchange(o.held_total_, 0);
    request_interval_ = o.request_interval_;
    reachable_ = o.reachable_;
    stale_ = o.stale_;
    incomplete_ = o.incomplete_;
#if defined(FNAT_CHECKED)
    last_now_ = o.last_now_;
#endif
    stats_ = o.stats_;
  }

  void check_nothing_held([[maybe_unused]] const char* what) const noexcept {
#if defined(FNAT_CHECKED)
    if (held_total_ != 0) {
      std::fprintf(stderr,
                   "fnat: neighbour_cache %s while holding %zu packets; call clear(on_drop) first so that they are "
                   "freed\n",
                   what, held_total_);
      std::abort();
    }
#endif
  }

  void check_time([[maybe_unused]] std::uint64_t now) noexcept {
#if defined(FNAT_CHECKED)
    if (now < last_now_) {
      std::fprintf(stderr,
                   "fnat: neighbour_cache: time went backwards (%llu after %llu); pass the same monotonic clock to "
                   "every call\n",
                   static_cast<unsigned long long>(now), static_cast<unsigned long long>(last_now_));
      std::abort();
    }
    last_now_ = now;
#endif
  }

  neighbour_info info(const slot& s, std::uint64_t now) const noexcept {
    neigh_state st = s.state;
    if (st == neigh_state::reachable && now - s.confirmed >= reachable_) st = neigh_state::stale;
    return {s.addr, s.mac, st, s.confirmed, s.nheld};
  }

  // Builds the answer in a register: filling an 8-byte struct field by field on the stack and then
  // returning it as one word costs a store-forwarding stall (measured: ~2x the whole hit path).
  // Bit-fields are allocated from the low bit on x86-64 and AArch64 (their ABIs), and the tests
  // check every field of the answers.
  static neigh_result answer(const mac_addr& mac, errc rc, bool held, bool request) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
      // Two loads into scalars (a 6-byte memcpy into a uint64_t goes through the stack with g++ 12).
      std::uint32_t lo;
      std::uint16_t hi;
      std::memcpy(&lo, mac.bytes.data(), 4);
      std::memcpy(&hi, mac.bytes.data() + 4, 2);
      std::uint64_t v = lo | std::uint64_t{hi} << 32;
      v |= std::uint64_t{static_cast<std::uint8_t>(rc)} << 48;
      v |= static_cast<std::uint64_t>(std::uint8_t{held} | std::uint8_t{request} << 1) << 56;
      return std::bit_cast<neigh_result>(v);
    } else {
      neigh_result r;
      r.mac = mac;
      r.rc = rc;
      r.held = held;
      r.request = request;
      return r;
    }
  }

  neigh_result resolve_impl(const inet_addr& addr, std::uint64_t now, const Packet* pkt) noexcept {
    check_time(now);
    const std::uint32_t h = hash_(addr);
    slot* s = find_slot(addr, h);
    if (s != nullptr && s->state != neigh_state::incomplete) {
      ++stats_.hits;
      s->referenced = true;
      const bool refresh =
          s->state == neigh_state::reachable && now - s->confirmed >= reachable_ && grant_request(*s, now);
      return answer(s->mac, errc::ok, false, refresh);
    }
    ++stats_.misses;
    if (s == nullptr) {
      s = insert(addr, h, now);
      if (s == nullptr) {
        if (pkt) ++stats_.unresolved_drops;
        return answer(mac_addr{}, errc::table_full, false, false);
      }
    }
    bool held = false;
    if (pkt) {
      if (s->nheld < Hold) {
        s->held[s->nheld++] = *pkt;
        ++held_total_;
        ++stats_.held;
        held = true;
      } else {
        ++stats_.unresolved_drops;
      }
    }
    return answer(mac_addr{}, errc::not_found, held, grant_request(*s, now));
  }

  bool grant_request(slot& s, std::uint64_t now) noexcept {
    if (now < s.next_request) return false;
    s.next_request = now + request_interval_;
    ++stats_.requests;
    return true;
  }

  slot* find_slot(const inet_addr& addr, std::uint32_t h) noexcept {
    // The key as two words, compared without a byte loop.
    std::uint64_t k[2];
    std::memcpy(k, addr.raw().data(), 16);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == h) {
        std::uint64_t x[2];
        std::memcpy(x, s.addr.raw().data(), 16);
        if (((x[0] ^ k[0]) | (x[1] ^ k[1])) == 0) return &s;
      }
    }
  }

  // A new incomplete entry for an absent address; evicts one when full. nullptr when nothing can go.
  slot* insert(const inet_addr& addr, std::uint32_t h, std::uint64_t now) noexcept {
    if (size_ == capacity_ && !evict_one()) return nullptr;
    std::size_t i = h & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slot& s = slots_[i];
    s = slot{};
    s.addr = addr;
    s.hash = h;
    s.used = true;
    s.referenced = true;  // a new entry was just needed: it gets its second chance too
    s.state = neigh_state::incomplete;
    s.confirmed = now;
    s.next_request = now;
    ++size_;
    return &s;
  }

  // CLOCK: two sweeps at most (the first may only clear referenced bits).
  bool evict_one() noexcept {
    for (std::size_t step = 0; step < 2 * slots_.size(); ++step) {
      const std::size_t i = hand_;
      hand_ = (hand_ + 1) & mask_;
      slot& s = slots_[i];
      if (!s.used || s.state == neigh_state::permanent || s.nheld != 0) continue;
      if (s.referenced) {
        s.referenced = false;
        continue;
      }
      erase_at(i);
      ++stats_.evictions;
      return true;
    }
    return false;
  }

  template <class OnDrop>
  void drop_held(slot& s, OnDrop& on_drop) {
    const std::uint8_t n = s.nheld;
    s.nheld = 0;
    held_total_ -= n;
    for (std::uint8_t k = 0; k < n; ++k) on_drop(s.held[k]);
  }

  // Backward-shift deletion: move later members of the probe run into the hole while their home slot
  // is not cyclically inside (hole, j].
  void erase_at(std::size_t hole) noexcept {
    std::size_t j = hole;
    for (;;) {
      j = (j + 1) & mask_;
      if (!slots_[j].used) break;
      const std::size_t home = slots_[j].hash & mask_;
      const bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (home_in_range) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = slot{};
    --size_;
  }

  Hash hash_{};
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::size_t hand_ = 0;
  std::size_t held_total_ = 0;
  std::uint64_t request_interval_ = 0, reachable_ = 0, stale_ = 0, incomplete_ = 0;
#if defined(FNAT_CHECKED)
  std::uint64_t last_now_ = 0;
#endif
  neighbour_stats stats_{};
};

}  // namespace fnat
