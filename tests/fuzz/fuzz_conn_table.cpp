// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: conn_table over inet_tuple (IPv4 and IPv6 keys in one table) with an
// object_pool of conns and a timer_wheel on a manual clock, driven by arbitrary operation sequences
// and checked against a reference model after every step.
//
// ## Input (read front to back, 0 past the end; see fuzz_support.hpp)
//   byte 0  variant: bit 0 conn layout and hash (0: hooks as base classes, tuple_hash under a fixed
//           key; 1: hooks as
//           members, a 2-bit hash that puts every key in at most four chains, so probes walk long
//           chains and compare stored hashes that collide); bits 1-3 max_load_factor (1/16 .. 4);
//           bits 4-5 the clock's frequency (1 GHz, 3 GHz, 1 MHz, 1 GHz); bit 6 end with
//           clear_and_dispose instead of erasing one by one; bit 7 a chain bound (max_chain
//           2 + capacity % 7, reached often under the 2-bit hash) instead of none
//   byte 1  table capacity 1 + b % 64
//   byte 2  pool capacity 1 + b % 80 (below or above the table's: both limits are reachable)
//   byte 3  wheel slots 2 << (b % 6) (2..64: timeouts longer than a revolution are common)
//   byte 4  tick length 1 + b ns; byte 5 the clock's starting reading (b * 1000)
// then operations, one selector byte each (op = b % 18) and a fixed number of argument bytes; see
// step(). The seeds are written by make_model_seeds.py.
// Keys come from a 256-key space (key_of), so inserts collide with live tuples of either direction.
//
// ## The model
// std::map of live conns (allocated from the pool) -> {in tuple, out tuple, linked, armed, deadline,
// expiry behaviour}, a map from each linked tuple to (conn, direction), the wheel's present tick,
// and every counter the table, pool and wheel keep. After every step: both tuples of every linked
// conn are found with the right direction and conn, the stored tuples and hashes are the model's,
// every counter matches, pool in_use + available == capacity and its free list has available()
// slots, the wheel's armed count and each deadline match. advance() must fire exactly
// min(budget, due) conns, each one due, and with no budget every due conn: the expired set is the
// model's. The expiry callback erases and frees the conn, or for conns that asked for it re-arms
// them (a TIME_WAIT-like second life), as the wheel allows. Conns may also be freed while armed
// (their auto-unlink hook leaves the wheel; armed() keeps counting them, as documented), and in
// checked mode the pool must refuse double frees and foreign pointers.
// Not seen: a use of a freed conn inside the pool (object_pool does not poison free slots for ASan).
#include <fnat/core/addr.hpp>
#include <fnat/core/conn_state.hpp>
#include <fnat/core/conn_table.hpp>
#include <fnat/core/object_pool.hpp>
#include <fnat/core/timer_wheel.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.hpp"

namespace {

using fnat::direction;
using fnat::errc;
using fnat::inet_tuple;

// Conn layout 0: both hooks as base classes (the defaults of conn_table and timer_wheel).
struct conn_base : fnat::conn_hooks<inet_tuple>, fnat::timer_entry {
  std::uint32_t payload = 0;
};

// Conn layout 1: both hooks as members, behind other fields (parent-from-member arithmetic).
struct conn_member {
  std::uint64_t payload = 0;
  fnat::timer_entry timer;
  std::uint32_t more = 0;
  fnat::conn_hooks<inet_tuple> hooks;
};

// The keyed hash under a fixed key, so that a failing input reproduces in another process.
struct fixed_key_hash {
  fnat::tuple_hash h{fnat::hash_secret{0x0123456789abcdefULL, 0xfedcba9876543210ULL}};
  std::uint32_t operator()(const inet_tuple& k) const noexcept { return h(k); }
};

// A legal but terrible hash: 2 bits. Every key lands in one of four chains.
struct two_bit_hash {
  fixed_key_hash h;
  std::uint32_t operator()(const inet_tuple& k) const noexcept { return h(k) & 3u; }
};

struct key_less {
  bool operator()(const inet_tuple& a, const inet_tuple& b) const noexcept {
    return std::memcmp(&a, &b, sizeof(inet_tuple)) < 0;
  }
};

// 256 keys: bit 7 family, bit 6 protocol, bits 3-5 client address, bits 0-2 client port.
inet_tuple key_of(std::uint8_t k) {
  const std::uint8_t proto = (k & 0x40) ? fnat::ipproto::udp : fnat::ipproto::tcp;
  const auto sport = static_cast<std::uint16_t>(1024 + (k & 7));
  const auto host = static_cast<std::uint8_t>(1 + ((k >> 3) & 7));
  if (k & 0x80) {
    fnat::ipv6_addr s = *fnat::ipv6_addr::parse("2001:2::100");
    s.bytes[15] = host;
    const fnat::ipv6_addr d = *fnat::ipv6_addr::parse("2001:2::1");
    return fnat::make_tuple<fnat::inet_addr>(proto, fnat::inet_addr(s), sport, fnat::inet_addr(d), 80);
  }
  return fnat::make_tuple<fnat::inet_addr>(proto, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120100u | host)),
                                           sport, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120001u)), 80);
}

bool same_key(const inet_tuple& a, const inet_tuple& b) { return std::memcmp(&a, &b, sizeof(inet_tuple)) == 0; }

struct conn_model {
  inet_tuple in{}, out{};
  bool linked = false;
  bool armed = false;
  std::uint64_t deadline = 0;
  std::uint8_t lives = 0;        // times the expiry callback re-arms it instead of freeing it
  std::uint64_t relife_ticks = 1;
};

struct counters {
  // table
  std::uint64_t inserts = 0, insert_full = 0, insert_exists = 0, insert_invalid = 0, insert_chain_full = 0,
                erases = 0, hits = 0, misses = 0;
  // pool
  std::uint64_t allocations = 0, deallocations = 0, failures = 0, misuses = 0;
  // wheel
  std::uint64_t arms = 0, rearms = 0, refreshes = 0, cancels = 0, expirations = 0;
  std::size_t armed_stat = 0;  // the wheel's armed(): overcounts conns freed while armed
};

template <class Conn, class Access, class Hash, class TimerAccess>
class harness {
 public:
  using table_type = fnat::conn_table<Conn, Access, Hash>;
  using pool_type = fnat::object_pool<Conn>;
  using wheel_type = fnat::timer_wheel<Conn, TimerAccess, fnat::manual_clock>;
  using hit = typename table_type::hit;

  harness(fnat::fuzz::reader& in, pool_type pool, table_type table, wheel_type wheel, table_type other,
          std::uint64_t origin, bool clear_at_end)
      : in_(in),
        pool_(std::move(pool)),
        table_(std::move(table)),
        wheel_(std::move(wheel)),
        other_(std::move(other)),
        origin_(origin),
        clear_at_end_(clear_at_end) {
    // A conn of another table: erase() on ours must say foreign, and change nothing.
    FUZZ_CHECK(other_.insert(other_conn_, key_of(0), key_of(1)) == errc::ok);
  }

  void run() {
    check_all();
    while (!in_.empty()) {
      step();
      check_all();
    }
    finish();
    if (fnat::fuzz::summary_wanted())
      std::fprintf(stderr,
                   "fuzz_conn_table: capacity %zu, pool %zu, %zu buckets, %zu slots; inserts %llu (full %llu, "
                   "exists %llu, invalid %llu, chain %llu), erases %llu, hits %llu, misses %llu, pool failures %llu, misuses "
                   "%llu; arms %llu, rearms %llu, refreshes %llu, cancels %llu, expirations %llu, tick %llu\n",
                   table_.capacity(), pool_.capacity(), table_.bucket_count(), wheel_.slot_count(),
                   ull(n_.inserts), ull(n_.insert_full), ull(n_.insert_exists), ull(n_.insert_invalid), ull(n_.insert_chain_full),
                   ull(n_.erases), ull(n_.hits), ull(n_.misses), ull(n_.failures), ull(n_.misuses), ull(n_.arms),
                   ull(n_.rearms), ull(n_.refreshes), ull(n_.cancels), ull(n_.expirations), ull(now_));
  }

 private:
  static unsigned long long ull(std::uint64_t v) { return v; }
  // ---- the model's view ---------------------------------------------------------------------------

  std::optional<std::pair<Conn*, direction>> model_find(const inet_tuple& k) const {
    const auto it = index_.find(k);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }

  // The i-th live conn (linked or, with want_linked false, any), if there is one.
  Conn* pick(std::size_t i, bool want_linked) {
    std::vector<Conn*> v;
    for (const auto& [c, m] : live_)
      if (!want_linked || m.linked) v.push_back(c);
    if (v.empty()) return nullptr;
    return v[i % v.size()];
  }

  // What insert(in, out) must answer now (not counting the linked-conn refusal, checked first).
  errc expect_insert(const inet_tuple& in, const inet_tuple& out) const {
    if (table_.size() >= table_.capacity()) return errc::table_full;
    if (const std::size_t bound = table_.max_chain(); bound != 0) {
      const std::size_t bi = table_.bucket_of(table_.hash_of(in)), bo = table_.bucket_of(table_.hash_of(out));
      std::size_t ni = 0, no = 0;  // linked tuples in each bucket, from the model
      for (const auto& [key, where] : index_) {
        const std::size_t b = table_.bucket_of(table_.hash_of(key));
        ni += b == bi;
        no += b == bo;
      }
      if (bi == bo ? ni + 2 > bound : (ni + 1 > bound || no + 1 > bound)) return errc::bucket_full;
    }
    if (model_find(in) || model_find(out) || same_key(in, out)) return errc::exists;
    return errc::ok;
  }

  void count_insert(errc e) {
    switch (e) {
      case errc::ok: ++n_.inserts; break;
      case errc::table_full: ++n_.insert_full; break;
      case errc::exists: ++n_.insert_exists; break;
      case errc::bucket_full: ++n_.insert_chain_full; break;
      default: ++n_.insert_invalid; break;
    }
  }

  Conn* allocate() {
    Conn* c = pool_.allocate();
    if (live_.size() == pool_.capacity()) {
      FUZZ_CHECK(c == nullptr);
      ++n_.failures;
      return nullptr;
    }
    FUZZ_CHECK(c != nullptr && pool_.owns(c));
    FUZZ_CHECK(!table_type::is_linked(*c) && !wheel_type::is_armed(*c));
    FUZZ_CHECK(live_.emplace(c, conn_model{}).second);
    ++n_.allocations;
    return c;
  }

  void deallocate(Conn* c) {
    const auto it = live_.find(c);
    FUZZ_CHECK(it != live_.end() && !it->second.linked);
    if (it->second.armed) {  // freed while armed: the hook detaches it, armed() keeps counting it
      it->second.armed = false;
      --armed_real_;
    }
    live_.erase(it);
    FUZZ_CHECK(pool_.deallocate(c) == errc::ok);
    ++n_.deallocations;
  }

  void link(Conn* c, const inet_tuple& in, const inet_tuple& out) {
    conn_model& m = live_.at(c);
    m.in = in;
    m.out = out;
    m.linked = true;
    index_.emplace(in, std::pair{c, direction::inbound});
    index_.emplace(out, std::pair{c, direction::outbound});
  }

  void unlink(Conn* c) {
    conn_model& m = live_.at(c);
    FUZZ_CHECK(m.linked);
    index_.erase(m.in);
    index_.erase(m.out);
    m.linked = false;
  }

  // A fresh conn inserted under (in, out), through insert or insert_with_hash.
  void insert_fresh(const inet_tuple& in, const inet_tuple& out, bool with_hash, std::uint8_t timer) {
    Conn* c = allocate();
    if (c == nullptr) return;
    const errc want = expect_insert(in, out);
    const errc got =
        with_hash ? table_.insert_with_hash(*c, in, table_.hash_of(in), out, table_.hash_of(out)) : table_.insert(*c, in, out);
    FUZZ_CHECK(got == want);
    count_insert(got);
    if (got != errc::ok) {
      FUZZ_CHECK(!table_type::is_linked(*c));  // both nodes or neither
      deallocate(c);
      return;
    }
    link(c, in, out);
    conn_model& m = live_.at(c);
    m.lives = timer >> 6;  // 0..3 extra lives on expiry
    m.relife_ticks = 1 + (timer & 0x0f);
    if (timer & 0x30) arm(c, timer & 0x3f);
  }

  // ---- timers -------------------------------------------------------------------------------------

  std::uint64_t deadline_in(std::uint64_t ticks) const { return now_ + std::max<std::uint64_t>(ticks, 1); }

  void arm(Conn* c, std::uint64_t ticks) {
    conn_model& m = live_.at(c);
    const errc got = wheel_.arm(*c, ticks);
    if (m.armed) {
      FUZZ_CHECK(got == errc::exists);
      return;
    }
    FUZZ_CHECK(got == errc::ok);
    m.armed = true;
    m.deadline = deadline_in(ticks);
    ++n_.arms;
    ++n_.armed_stat;
    ++armed_real_;
  }

  // What the wheel counts when it (re)places a conn's timer: a re-arm if it was armed, else an arm.
  void count_rearm(const conn_model& m) {
    if (m.armed) {
      ++n_.rearms;
    } else {
      ++n_.arms;
      ++n_.armed_stat;
      ++armed_real_;
    }
  }

  void rearm(Conn* c, std::uint64_t ticks) {
    conn_model& m = live_.at(c);
    wheel_.rearm(*c, ticks);
    count_rearm(m);
    m.armed = true;
    m.deadline = deadline_in(ticks);
  }

  void refresh(Conn* c, std::uint64_t ticks) {
    conn_model& m = live_.at(c);
    wheel_.refresh(*c, ticks);
    const std::uint64_t d = deadline_in(ticks);
    if (m.armed && d >= m.deadline)
      ++n_.refreshes;  // lazy: only the deadline moves
    else
      count_rearm(m);
    m.armed = true;
    m.deadline = d;
  }

  void cancel(Conn* c) {
    conn_model& m = live_.at(c);
    FUZZ_CHECK(wheel_.cancel(*c) == m.armed);
    if (m.armed) {
      ++n_.cancels;
      --n_.armed_stat;
      --armed_real_;
    }
    m.armed = false;
  }

  // Advances the wheel to `tick` (through the clock when via_clock), budget 0 = unlimited.
  void advance(std::uint64_t tick, bool via_clock, std::uint64_t clock_value, std::size_t budget) {
    const std::uint64_t target = std::max(now_, tick);
    std::size_t due = 0;
    for (const auto& [c, m] : live_) due += m.armed && m.deadline <= target ? 1 : 0;
    const std::size_t limit = budget == 0 ? std::numeric_limits<std::size_t>::max() : budget;
    now_ = target;

    std::size_t fired = 0;
    auto on_expire = [&](Conn& c) {
      ++fired;
      const auto it = live_.find(&c);
      FUZZ_CHECK(it != live_.end());
      conn_model& m = it->second;
      FUZZ_CHECK(m.armed && m.deadline <= now_);  // only due conns fire
      FUZZ_CHECK(!wheel_type::is_armed(c));        // unlinked before the callback
      FUZZ_CHECK(wheel_.now_tick() == now_);
      m.armed = false;
      ++n_.expirations;
      --n_.armed_stat;
      --armed_real_;
      if (m.lives > 0) {  // a second life: re-armed from inside the callback
        --m.lives;
        rearm(&c, m.relife_ticks);
        return;
      }
      FUZZ_CHECK(table_.erase(c) == errc::ok);  // expiry erases and frees
      ++n_.erases;
      unlink(&c);
      deallocate(&c);
    };
    std::size_t got;
    if (via_clock) {
      wheel_.clock().value = clock_value;
      got = budget == 0 ? wheel_.advance(on_expire) : wheel_.advance(on_expire, budget);
    } else {
      got = budget == 0 ? wheel_.advance_to(tick, on_expire) : wheel_.advance_to(tick, on_expire, budget);
    }
    FUZZ_CHECK(got == fired);
    FUZZ_CHECK(fired == std::min(due, limit));
    FUZZ_CHECK(wheel_.now_tick() == now_);
    if (budget == 0)
      for (const auto& [c, m] : live_) FUZZ_CHECK(!(m.armed && m.deadline <= now_));  // nothing due is left
  }

  // ---- one operation ------------------------------------------------------------------------------

  // Every operation reads the same number of bytes whatever the state, so that a seed written
  // as a list of operations (make_model_seeds.py) stays aligned.
  void step() {
    const std::uint8_t op = in_.u8();
    switch (op % 18) {
      case 0:
      case 1: {  // insert a fresh conn (the most common operation)
        const inet_tuple in = key_of(in_.u8());
        const inet_tuple out = key_of(in_.u8());
        insert_fresh(in, out, false, in_.u8());
        break;
      }
      case 2: {  // insert_with_hash, right hashes, or (checked mode) a wrong one
        const inet_tuple in = key_of(in_.u8());
        const inet_tuple out = key_of(in_.u8());
        const std::uint8_t how = in_.u8();
#if defined(FNAT_CHECKED)
        if (how & 1) {
          Conn* c = allocate();
          if (c == nullptr) break;
          const errc got = table_.insert_with_hash(*c, in, table_.hash_of(in) ^ 0x80000000u, out, table_.hash_of(out));
          FUZZ_CHECK(got == errc::invalid_argument);  // refused before anything is linked
          ++n_.insert_invalid;
          FUZZ_CHECK(!table_type::is_linked(*c));
          deallocate(c);
          break;
        }
#endif
        insert_fresh(in, out, true, how);
        break;
      }
      case 3: {  // insert a conn that is already linked: refused first, whatever the keys
        Conn* c = pick(in_.u16(), true);
        const inet_tuple in = key_of(in_.u8());
        const inet_tuple out = key_of(in_.u8());
        if (c == nullptr) break;
        FUZZ_CHECK(table_.insert(*c, in, out) == errc::invalid_argument);
        ++n_.insert_invalid;
        break;
      }
      case 4: {  // check_insert: the answer insert would give, counting nothing
        const inet_tuple in = key_of(in_.u8());
        const inet_tuple out = key_of(in_.u8());
        FUZZ_CHECK(table_.check_insert(in, out) == expect_insert(in, out));
        break;
      }
      case 5: {  // find, find_with_hash (right or wrong hash), contains
        const inet_tuple k = key_of(in_.u8());
        const std::uint8_t how = in_.u8();
        const auto want = model_find(k);
        hit h;
        if (how % 3 == 2) {
          h = table_.find_with_hash(k, table_.hash_of(k) ^ (1u + how));  // a wrong hash always misses
          FUZZ_CHECK(!h);
          ++n_.misses;
          break;
        }
        h = how % 3 == 1 ? table_.find_with_hash(k, table_.hash_of(k)) : table_.find(k);
        FUZZ_CHECK(table_.contains(k) == want.has_value());
        if (want) {
          FUZZ_CHECK(h.conn == want->first && h.dir == want->second);
          ++n_.hits;
        } else {
          FUZZ_CHECK(!h);
          ++n_.misses;
        }
        break;
      }
      case 6: {  // find_bulk / find_bulk_with_hash over up to 64 keys (duplicates allowed)
        const std::size_t n = in_.u8() % (table_type::max_bulk + 1);
        const bool with_hash = in_.bit();
        std::array<inet_tuple, table_type::max_bulk> keys{};
        std::array<std::uint32_t, table_type::max_bulk> hashes{};
        std::array<hit, table_type::max_bulk> out{};
        for (std::size_t i = 0; i < n; ++i) {
          keys[i] = key_of(in_.u8());
          hashes[i] = table_.hash_of(keys[i]);
          out[i] = hit{&other_conn_, direction::outbound};  // must be overwritten
        }
        const std::span<const inet_tuple> ks(keys.data(), n);
        const std::uint64_t mask =
            with_hash ? table_.find_bulk_with_hash(ks, hashes.data(), out.data()) : table_.find_bulk(ks, out.data());
        for (std::size_t i = 0; i < n; ++i) {
          const auto want = model_find(keys[i]);
          FUZZ_CHECK(((mask >> i) & 1u) == (want ? 1u : 0u));
          if (want) {
            FUZZ_CHECK(out[i].conn == want->first && out[i].dir == want->second);
            ++n_.hits;
          } else {
            FUZZ_CHECK(out[i].conn == nullptr);
            ++n_.misses;
          }
        }
        FUZZ_CHECK(n == 64 || (mask >> n) == 0);
        break;
      }
      case 7: {  // erase a linked conn and free it (cancelling its timer, or leaving it to the hook)
        Conn* c = pick(in_.u16(), true);
        const bool cancel_first = !in_.bit();
        if (c == nullptr) break;
        if (cancel_first) cancel(c);
        FUZZ_CHECK(table_.erase(*c) == errc::ok);
        ++n_.erases;
        unlink(c);
        FUZZ_CHECK(!table_type::is_linked(*c));
        deallocate(c);
        break;
      }
      case 8: {  // erase what is not ours: an allocated, unlinked conn, or another table's conn
        const std::uint8_t how = in_.u8();
        if (how & 1) {
          FUZZ_CHECK(table_.erase(other_conn_) == errc::foreign);
          FUZZ_CHECK(table_type::is_linked(other_conn_));
          break;
        }
        Conn* c = allocate();
        if (c == nullptr) break;
        FUZZ_CHECK(table_.erase(*c) == errc::not_found);
        if (how & 2) spare_.push_back(c);  // keep it allocated for a while (holds a pool slot)
        else deallocate(c);
        break;
      }
      case 9: {  // arm
        Conn* c = pick(in_.u16(), true);
        const std::uint64_t ticks = in_.u8();
        if (c != nullptr) arm(c, ticks);
        break;
      }
      case 10: {  // rearm (earlier or later)
        Conn* c = pick(in_.u16(), true);
        const std::uint64_t ticks = in_.u16() % 1024;
        if (c != nullptr) rearm(c, ticks);
        break;
      }
      case 11: {  // refresh: lazy when later, re-linked when earlier
        Conn* c = pick(in_.u16(), true);
        const std::uint64_t ticks = in_.u16() % 1024;
        if (c != nullptr) refresh(c, ticks);
        break;
      }
      case 12: {  // cancel
        Conn* c = pick(in_.u16(), true);
        if (c != nullptr) cancel(c);
        break;
      }
      case 13: {  // advance in ticks (possibly backwards, possibly several revolutions)
        const std::uint8_t how = in_.u8();
        const std::uint64_t delta = in_.u8();
        const std::size_t budget = in_.u8() % 8;
        const std::uint64_t tick = (how & 1) ? (now_ > delta ? now_ - delta : 0) : now_ + delta * (1 + (how >> 5));
        advance(tick, false, 0, budget);
        break;
      }
      case 14: {  // advance through the clock (nanoseconds, converted by the wheel)
        const std::uint64_t base = in_.u16();
        const std::uint64_t delta_ns = base * (1 + (in_.u8() & 7));
        const std::size_t budget = in_.u8() % 8;
        clock_ += delta_ns;
        const std::uint64_t tick = clock_ > origin_ ? (clock_ - origin_) / wheel_.clock_units_per_tick() : 0;
        FUZZ_CHECK(wheel_.tick_of(clock_) == tick);
        advance(tick, true, clock_, budget);
        break;
      }
      case 15: {  // iterate: erase (and free) every conn of one residue class, or an incremental pass
        const std::uint8_t how = in_.u8();
        const std::size_t mod = 1 + (how & 3), rem = (how >> 2) % mod;
        std::set<Conn*> before, seen;
        for (const auto& [c, m] : live_)
          if (m.linked) before.insert(c);
        if (how & 0x80) {  // for_each_from in slices of buckets, nothing changed in between
          std::size_t cursor = 0, rounds = 0;
          const std::size_t max_buckets = 1 + in_.u8();
          while (cursor < table_.bucket_count()) {
            cursor = table_.for_each_from(cursor, max_buckets, [&](Conn& c) { FUZZ_CHECK(seen.insert(&c).second); });
            ++rounds;
          }
          FUZZ_CHECK(rounds == (table_.bucket_count() + max_buckets - 1) / max_buckets);
          FUZZ_CHECK(table_.for_each_from(table_.bucket_count(), max_buckets, [](Conn&) { FUZZ_CHECK(false); }) ==
                     table_.bucket_count());
        } else {  // for_each erasing and freeing the conn it is given
          std::size_t i = 0;
          table_.for_each([&](Conn& c) {
            FUZZ_CHECK(seen.insert(&c).second);
            if (i++ % mod != rem) return;
            cancel(&c);
            FUZZ_CHECK(table_.erase(c) == errc::ok);
            ++n_.erases;
            unlink(&c);
            deallocate(&c);
          });
        }
        FUZZ_CHECK(seen == before);  // every linked conn visited, exactly once
        std::size_t nodes = 0;
        for (std::size_t b = 0; b < table_.bucket_count(); ++b) nodes += table_.bucket_size(b);
        FUZZ_CHECK(nodes == 2 * table_.size());
        break;
      }
      case 16: {  // pool misuse (checked mode reports it), or free a spare conn
        const std::uint8_t how = in_.u8();
        if (!spare_.empty() && (how & 1)) {
          Conn* c = spare_[how % spare_.size()];
          spare_.erase(std::find(spare_.begin(), spare_.end(), c));
          deallocate(c);
#if defined(FNAT_CHECKED)
          FUZZ_CHECK(pool_.deallocate(c) == errc::not_in_use);  // double free: refused, nothing changes
          ++n_.misuses;
#endif
          break;
        }
#if defined(FNAT_CHECKED)
        FUZZ_CHECK(pool_.deallocate(&other_conn_) == errc::foreign);
        ++n_.misuses;
#endif
        FUZZ_CHECK(pool_.deallocate(nullptr) == errc::invalid_argument);
        break;
      }
      default: {  // clear_and_dispose: everything out, timers cancelled, conns freed
        if (in_.u8() < 0xf0) break;  // rare: it wipes the state the other ops build
        clear();
        break;
      }
    }
  }

  void clear() {
    std::size_t disposed = 0;
    const std::size_t size = table_.size();
    table_.clear_and_dispose([&](Conn& c) {
      ++disposed;
      FUZZ_CHECK(!table_type::is_linked(c));
      ++n_.erases;
      unlink(&c);
      cancel(&c);
      deallocate(&c);
    });
    FUZZ_CHECK(disposed == size && table_.empty());
  }

  // ---- checks -------------------------------------------------------------------------------------

  void check_all() {
    // Table: every linked conn by both tuples, with its direction; stored tuples and hashes.
    std::size_t linked = 0, armed = 0;
    for (const auto& [c, m] : live_) {
      FUZZ_CHECK(table_type::is_linked(*c) == m.linked);
      FUZZ_CHECK(wheel_type::is_armed(*c) == m.armed);
      if (m.armed) {
        ++armed;
        FUZZ_CHECK(wheel_type::deadline(*c) == m.deadline);
        FUZZ_CHECK(wheel_.remaining(*c) == (m.deadline > now_ ? m.deadline - now_ : 0));
      }
      if (!m.linked) continue;
      ++linked;
      const hit hi = table_.find(m.in);
      const hit ho = table_.find(m.out);
      n_.hits += 2;
      FUZZ_CHECK(hi.conn == c && hi.dir == direction::inbound);
      FUZZ_CHECK(ho.conn == c && ho.dir == direction::outbound);
      const auto& hooks = Access::hooks(*c);
      FUZZ_CHECK(same_key(hooks.tuple(direction::inbound), m.in) && same_key(hooks.tuple(direction::outbound), m.out));
      FUZZ_CHECK(hooks.tuple_hash(direction::inbound) == table_.hash_of(m.in));
      FUZZ_CHECK(hooks.tuple_hash(direction::outbound) == table_.hash_of(m.out));
    }
    FUZZ_CHECK(index_.size() == 2 * linked);
    FUZZ_CHECK(armed == armed_real_);

    const fnat::conn_table_stats t = table_.stats();
    FUZZ_CHECK(t.size == linked && table_.size() == linked && table_.empty() == (linked == 0));
    FUZZ_CHECK(t.capacity == table_.capacity());
    FUZZ_CHECK(t.inserts == n_.inserts && t.insert_full == n_.insert_full && t.insert_exists == n_.insert_exists &&
               t.insert_invalid == n_.insert_invalid && t.insert_chain_full == n_.insert_chain_full);
    FUZZ_CHECK(t.failed_inserts() == n_.insert_full + n_.insert_exists + n_.insert_invalid + n_.insert_chain_full);
    FUZZ_CHECK(t.erases == n_.erases);
    FUZZ_CHECK(t.lookup_hits == n_.hits && t.lookup_misses == n_.misses);
    FUZZ_CHECK(table_.load_factor() ==
               2.0 * static_cast<double>(linked) / static_cast<double>(table_.bucket_count()));

    // Pool: in_use + available == capacity; the free list has exactly the free slots.
    FUZZ_CHECK(pool_.in_use() == live_.size());
    FUZZ_CHECK(pool_.in_use() + pool_.available() == pool_.capacity());
    FUZZ_CHECK(pool_.count_free() == pool_.available());
    FUZZ_CHECK(pool_.full() == (pool_.available() == 0));
    const fnat::object_pool_stats& ps = pool_.stats();
    FUZZ_CHECK(ps.capacity == pool_.capacity() && ps.in_use == live_.size());
    FUZZ_CHECK(ps.allocations == n_.allocations && ps.deallocations == n_.deallocations &&
               ps.failures == n_.failures && ps.misuses == n_.misuses);

    // Wheel: the present, the armed count (with its documented overcount), the counters.
    FUZZ_CHECK(wheel_.now_tick() == now_);
    FUZZ_CHECK(wheel_.armed() == n_.armed_stat);
    FUZZ_CHECK(wheel_.count_armed() == armed_real_);
    const fnat::timer_wheel_stats& ws = wheel_.stats();
    FUZZ_CHECK(ws.arms == n_.arms && ws.rearms == n_.rearms && ws.refreshes == n_.refreshes &&
               ws.cancels == n_.cancels && ws.expirations == n_.expirations);

    // The other table is untouched by anything done to ours.
    FUZZ_CHECK(other_.size() == 1 && other_.contains(key_of(0)) && other_.contains(key_of(1)));
  }

  void finish() {
    for (Conn* c : spare_) deallocate(c);
    spare_.clear();
    if (clear_at_end_) {
      clear();
    } else {
      while (Conn* c = pick(0, true)) {
        cancel(c);
        FUZZ_CHECK(table_.erase(*c) == errc::ok);
        ++n_.erases;
        unlink(c);
        deallocate(c);
      }
    }
    check_all();
    FUZZ_CHECK(live_.empty() && index_.empty());
    FUZZ_CHECK(pool_.in_use() == 0 && pool_.count_free() == pool_.capacity());
    FUZZ_CHECK(table_.empty() && wheel_.count_armed() == 0);
  }

  fnat::fuzz::reader& in_;
  Conn other_conn_{};  // before other_: that table unlinks it when destroyed
  // Destroyed in reverse: the tables and the wheel unlink what they hold before the pool goes.
  pool_type pool_;
  table_type table_;
  wheel_type wheel_;
  table_type other_;
  std::map<Conn*, conn_model> live_;
  std::map<inet_tuple, std::pair<Conn*, direction>, key_less> index_;
  std::vector<Conn*> spare_;  // allocated, never inserted
  counters n_;
  std::size_t armed_real_ = 0;
  std::uint64_t now_ = 0;
  std::uint64_t origin_ = 0;
  std::uint64_t clock_ = 0;
  bool clear_at_end_ = false;

 public:
  void set_clock(std::uint64_t v) { clock_ = v; }
};

template <class Conn, class Access, class Hash, class TimerAccess>
void run(fnat::fuzz::reader& in, std::uint8_t variant) {
  using h_type = harness<Conn, Access, Hash, TimerAccess>;
  static constexpr double load_factors[8] = {0.5, 0.0625, 0.25, 1.0, 2.0, 4.0, 0.75, 0.5};
  static constexpr std::uint64_t frequencies[4] = {1000000000u, 3000000000u, 1000000u, 1000000000u};
  const std::size_t capacity = 1 + in.u8() % 64;
  const std::size_t pool_capacity = 1 + in.u8() % 80;
  const std::size_t slots = std::size_t{2} << (in.u8() % 6);
  const auto tick = std::chrono::nanoseconds(1 + in.u8());
  const std::uint64_t origin = std::uint64_t{in.u8()} * 1000;
  const double lf = load_factors[(variant >> 1) & 7];
  const std::uint64_t hz = frequencies[(variant >> 4) & 3];

  const std::size_t max_chain = (variant & 0x80) != 0 ? 2 + capacity % 7 : 0;
  auto table = h_type::table_type::make({.capacity = capacity, .max_load_factor = lf, .max_chain = max_chain});
  FUZZ_CHECK(table.has_value());
  FUZZ_CHECK(table->capacity() == capacity && std::has_single_bit(table->bucket_count()));
  FUZZ_CHECK(table->bucket_count() == h_type::table_type::bucket_count_for(capacity, lf));
  FUZZ_CHECK(static_cast<double>(2 * capacity) <= lf * static_cast<double>(table->bucket_count()) + 1e-9);
  auto other = h_type::table_type::make({.capacity = 2});
  FUZZ_CHECK(other.has_value());
  auto pool = h_type::pool_type::make(pool_capacity);
  FUZZ_CHECK(pool.has_value());
  auto wheel = h_type::wheel_type::make({.slots = slots, .tick = tick}, fnat::manual_clock{.value = origin, .hz = hz});
  const auto units = static_cast<std::uint64_t>(static_cast<unsigned __int128>(hz) * static_cast<std::uint64_t>(tick.count()) / 1000000000u);
  if (units == 0) {  // a tick shorter than one clock unit (1 MHz clock): refused with a reason
    FUZZ_CHECK(!wheel && wheel.err().code() == errc::invalid_argument);
    return;
  }
  FUZZ_CHECK(wheel.has_value());
  FUZZ_CHECK(wheel->clock_units_per_tick() == units && wheel->slot_count() == slots && wheel->now_tick() == 0);
  FUZZ_CHECK(wheel->ticks_for(std::chrono::nanoseconds(0)) == 0);
  FUZZ_CHECK(wheel->ticks_for(tick) == 1 && wheel->ticks_for(tick + std::chrono::nanoseconds(1)) == 2);

  h_type h(in, std::move(*pool), std::move(*table), std::move(*wheel), std::move(*other), origin, (variant & 0x40) != 0);
  h.set_clock(origin);
  h.run();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fnat::fuzz::reader in(data, size);
  const std::uint8_t variant = in.u8();
  if (variant & 1)
    run<conn_member, fnat::conn_hooks_member<&conn_member::hooks>, two_bit_hash, fnat::timer_member<&conn_member::timer>>(
        in, variant);
  else
    run<conn_base, fnat::conn_hooks_base<conn_base>, fixed_key_hash, fnat::timer_in_base<conn_base>>(in, variant);
  return 0;
}
