// SPDX-License-Identifier: BSD-3-Clause
// Hashed timer wheel for connection expiry: O(1) arm, re-arm and cancel, one slot scanned per tick.
//
// ## Scheme
// Varghese & Lauck's scheme 6 ("Hashed and Hierarchical Timing Wheels", 1987): an array of
// S = 2^k slots, each an intrusive doubly-linked list (Boost.Intrusive list hooks inside the user's
// object). Time is counted in ticks; an entry due at tick d sits in slot d & (S-1). Advancing the
// wheel to tick t visits slot t & (S-1) and fires the entries whose deadline has come. A timeout
// longer than one revolution (S ticks) shares its slot with nearer ones and is passed over on each
// visit until its round comes. Scheme 6 keeps a decrementing rounds counter per entry; this wheel
// keeps the absolute deadline instead (a 64-bit tick count, never wrapping) and compares it, which
// is the same test (rounds = (d - t) / S) without writing every entry it passes, and lets the owner
// read an entry's deadline.
//
//   arm(e, n)      d = now + max(n, 1); push_back onto slot d & (S-1)              O(1)
//   cancel(e)      unlink (doubly linked: no search)                               O(1)
//   rearm(e, n)    cancel + arm                                                    O(1)
//   refresh(e, n)  d' = now + n; if d' >= d only store d' (lazy), else rearm        O(1)
//   advance(t, f)  per elapsed tick: scan one slot, fire due entries                O(slot length)
//
// ## Lazy refresh
// A balancer pushes a conn's deadline back on every packet. Re-linking would write the two list
// neighbours, which are other conns: two cache misses per packet. refresh() instead stores the new,
// later deadline in the entry and leaves it where it is; when the wheel next visits the old slot
// (at the old deadline at the latest, so never after the new one) it sees a deadline that belongs
// to another slot and moves the entry there, once. A deadline that moves earlier (a state change
// to a shorter timeout) is re-linked at once so that it is not fired late.
//
// ## Time
// The caller drives the wheel: advance(now, f) with a reading of any clock (TSC cycles,
// nanoseconds), converted to ticks by the Clock policy's frequency and the configured tick length;
// or advance_to(tick, f) in ticks. Timeouts are given in ticks relative to the wheel's present
// (the tick of the latest advance); ticks_for(duration) converts, rounding up, and a timeout of 0
// ticks counts as 1, so an entry never fires inside the call that armed it. Entries fire at the
// first advance whose tick reaches their deadline, in tick order; when the wheel falls behind by
// a revolution or more, one pass over all slots fires everything due.
//
// ## Safety of callbacks
// advance() unlinks each due entry (into a private list) before calling on_expire(T&), so the
// callback may free the object, arm, re-arm or cancel any entry including itself and the other due
// ones (a cancelled or re-armed due entry does not fire). It must not call advance() recursively.
// Hooks are auto-unlink: destroying an armed object detaches it from the wheel (armed() then
// overcounts by one), and destroying the wheel disarms what it holds.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/parent_from_member.hpp>

#include "fnat/core/error.hpp"

namespace fnat {

template <class T, class Access, class Clock>
class timer_wheel;

/// The part of an object a timer_wheel links: put one in your conn (as a base or a member).
/// 24 bytes: two list pointers and the deadline. Copying gives an unarmed entry.
class timer_entry {
 public:
  timer_entry() noexcept = default;
  timer_entry(const timer_entry&) noexcept {}
  timer_entry& operator=(const timer_entry&) noexcept { return *this; }
  ~timer_entry() = default;  // the auto-unlink hook detaches an armed entry

  /// True while the entry is in a wheel.
  [[nodiscard]] bool is_armed() const noexcept { return hook_.is_linked(); }
  /// Tick at which the entry fires; meaningful while armed.
  [[nodiscard]] std::uint64_t deadline() const noexcept { return deadline_; }

 private:
  template <class, class, class>
  friend class timer_wheel;
  using hook_type = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  hook_type hook_;
  std::uint64_t deadline_ = 0;
};

/// Access policy: T derives from timer_entry.
template <class T>
struct timer_in_base {
  [[nodiscard]] static timer_entry& entry(T& t) noexcept { return t; }
  [[nodiscard]] static T& object(timer_entry& e) noexcept { return static_cast<T&>(e); }
};

/// Access policy: T has a timer_entry member, e.g. `timer_member<&my_conn::timer>`.
template <auto Member>
struct timer_member;
template <class T, timer_entry T::*Member>
struct timer_member<Member> {
  [[nodiscard]] static timer_entry& entry(T& t) noexcept { return t.*Member; }
  [[nodiscard]] static T& object(timer_entry& e) noexcept {
    return *boost::intrusive::get_parent_from_member<T, timer_entry>(&e, Member);
  }
};

/// How a wheel finds the entry of a T and the T of an entry.
template <class A, class T>
concept timer_access = requires(T& t, timer_entry& e) {
  { A::entry(t) } noexcept -> std::same_as<timer_entry&>;
  { A::object(e) } noexcept -> std::same_as<T&>;
};

/// A clock: now() in its own units, frequency() units per second (e.g. rte_rdtsc / rte_get_tsc_hz).
template <class C>
concept wheel_clock = requires(const C& c) {
  { c.now() } -> std::convertible_to<std::uint64_t>;
  { c.frequency() } -> std::convertible_to<std::uint64_t>;
};

/// A clock that only moves when told to, in nanoseconds: the default, and what tests use.
struct manual_clock {
  std::uint64_t value = 0;         ///< current reading
  std::uint64_t hz = 1000000000;   ///< units per second (1 GHz: nanoseconds)
  [[nodiscard]] std::uint64_t now() const noexcept { return value; }
  [[nodiscard]] std::uint64_t frequency() const noexcept { return hz; }
};

/// What a timer wheel is made from. Build with designated initializers.
struct timer_wheel_config {
  /// Number of slots, a power of two. A revolution is slots x tick; longer timeouts wait out
  /// extra rounds. Each slot costs 16 bytes. Default 4096 (41 s at 10 ms ticks).
  std::size_t slots = 4096;
  /// Length of a tick: the wheel's resolution. Default 10 ms.
  std::chrono::nanoseconds tick = std::chrono::milliseconds(10);
};

/// Counters of a timer wheel (monotonic except armed).
struct timer_wheel_stats {
  std::size_t armed = 0;          ///< entries armed now (overcounts entries destroyed while armed)
  std::uint64_t arms = 0;         ///< entries armed from unarmed
  std::uint64_t rearms = 0;       ///< armed entries re-linked to a new deadline
  std::uint64_t refreshes = 0;    ///< lazy refreshes (deadline stored, nothing re-linked)
  std::uint64_t cancels = 0;      ///< armed entries cancelled
  std::uint64_t expirations = 0;  ///< entries fired
  std::uint64_t deferred = 0;     ///< lazily refreshed entries moved to their slot during a scan
};

/// A hashed timer wheel over objects of type T (see the file comment).
///
/// Thread safety: none; one wheel per lcore.
template <class T, class Access = timer_in_base<T>, class Clock = manual_clock>
class timer_wheel {
  static_assert(timer_access<Access, T>, "Access must map T to its timer_entry and back (timer_in_base, timer_member)");
  static_assert(wheel_clock<Clock>, "Clock needs now() and frequency()");
  using list_type = boost::intrusive::list<
      timer_entry, boost::intrusive::member_hook<timer_entry, timer_entry::hook_type, &timer_entry::hook_>,
      boost::intrusive::constant_time_size<false>>;

 public:
  using value_type = T;
  using clock_type = Clock;
  using duration = std::chrono::nanoseconds;

  /// Builds a wheel whose tick 0 is clock.now(). Configuration time.
  /// Errors: errc::invalid_argument if slots is not a power of two in [2, 2^24], the tick is not
  /// positive, the clock's frequency is 0, or the tick is shorter than one clock unit.
  [[nodiscard]] static result<timer_wheel> make(const timer_wheel_config& cfg = {}, Clock clock = Clock()) {
    if (cfg.slots < 2 || cfg.slots > (std::size_t{1} << 24) || !std::has_single_bit(cfg.slots))
      return error(errc::invalid_argument, "timer wheel: slots " + std::to_string(cfg.slots) +
                                               " must be a power of two between 2 and 16777216");
    if (cfg.tick <= duration::zero())
      return error(errc::invalid_argument, "timer wheel: the tick must be longer than 0 ns");
    const std::uint64_t hz = clock.frequency();
    if (hz == 0) return error(errc::invalid_argument, "timer wheel: the clock reports a frequency of 0");
    const auto units = static_cast<std::uint64_t>(static_cast<unsigned __int128>(hz) *
                                                  static_cast<std::uint64_t>(cfg.tick.count()) / 1000000000u);
    if (units == 0)
      return error(errc::invalid_argument, "timer wheel: a tick of " + std::to_string(cfg.tick.count()) +
                                               " ns is shorter than one unit of a " + std::to_string(hz) +
                                               " Hz clock; use a longer tick");
    timer_wheel w(cfg, std::move(clock), units);
    return w;
  }

  timer_wheel(timer_wheel&&) noexcept = default;
  timer_wheel& operator=(timer_wheel&&) noexcept = default;
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;
  /// Disarms every entry still armed (touches each of them). O(slots + armed).
  ~timer_wheel() = default;

  // ---- arming -----------------------------------------------------------------------------------

  /// Arms t to fire `ticks` ticks from now (0 counts as 1).
  /// Returns: errc::ok, or errc::exists if t is already armed (nothing changes; use rearm or
  /// refresh). Complexity: O(1), no allocation. noexcept.
  errc arm(T& t, std::uint64_t ticks) noexcept {
    timer_entry& e = Access::entry(t);
    if (e.is_armed()) return errc::exists;
    link(e, deadline_in(ticks));
    ++stats_.arms;
    ++stats_.armed;
    return errc::ok;
  }

  /// Moves t's deadline to `ticks` from now, earlier or later, re-linking it; arms it if it was
  /// not armed. Complexity: O(1) (writes t and its two list neighbours). noexcept.
  void rearm(T& t, std::uint64_t ticks) noexcept {
    timer_entry& e = Access::entry(t);
    if (e.is_armed()) {
      e.hook_.unlink();
      ++stats_.rearms;
    } else {
      ++stats_.arms;
      ++stats_.armed;
    }
    link(e, deadline_in(ticks));
  }

  /// Sets t's deadline to `ticks` from now. A later deadline is only stored (lazy: t stays in its
  /// slot and is moved when the wheel next passes it); an earlier one re-links t like rearm; an
  /// unarmed t is armed. The per-packet call. Complexity: O(1); the lazy case writes only t.
  void refresh(T& t, std::uint64_t ticks) noexcept {
    timer_entry& e = Access::entry(t);
    const std::uint64_t d = deadline_in(ticks);
    if (e.is_armed() && d >= e.deadline_) {
      e.deadline_ = d;
      ++stats_.refreshes;
      return;
    }
    rearm(t, ticks);
  }

  /// Disarms t. Returns: true if it was armed. Complexity: O(1). noexcept.
  bool cancel(T& t) noexcept {
    timer_entry& e = Access::entry(t);
    if (!e.is_armed()) return false;
    e.hook_.unlink();
    ++stats_.cancels;
    --stats_.armed;
    return true;
  }

  [[nodiscard]] static bool is_armed(const T& t) noexcept { return Access::entry(const_cast<T&>(t)).is_armed(); }
  /// Tick at which t fires. Requires: is_armed(t).
  [[nodiscard]] static std::uint64_t deadline(const T& t) noexcept { return Access::entry(const_cast<T&>(t)).deadline_; }
  /// Ticks until t fires (0 if due). Requires: is_armed(t).
  [[nodiscard]] std::uint64_t remaining(const T& t) const noexcept {
    const std::uint64_t d = deadline(t);
    return d > now_ ? d - now_ : 0;
  }

  // ---- time -------------------------------------------------------------------------------------

  /// Advances to the clock's present: advance(clock().now(), on_expire, budget).
  template <class F>
  std::size_t advance(F&& on_expire, std::size_t budget = std::numeric_limits<std::size_t>::max()) {
    return advance(static_cast<std::uint64_t>(clock_.now()), std::forward<F>(on_expire), budget);
  }

  /// Advances to clock reading `now` (in the clock's units); see advance_to.
  template <class F>
  std::size_t advance(std::uint64_t now, F&& on_expire, std::size_t budget = std::numeric_limits<std::size_t>::max()) {
    return advance_to(tick_of(now), std::forward<F>(on_expire), budget);
  }

  /// Advances the wheel to `tick` and calls on_expire(T&) for every entry whose deadline is at or
  /// before it, in tick order, at most `budget` of them (the rest fire on the next call: a bound on
  /// the work one poll-loop iteration does). A tick earlier than the present changes nothing.
  /// Returns: the number fired. Complexity: O(ticks elapsed, at most slots + entries scanned + fired).
  /// The callback may free, arm, re-arm or cancel entries (see the file comment); it must not
  /// throw or call advance.
  template <class F>
  std::size_t advance_to(std::uint64_t tick, F&& on_expire,
                         std::size_t budget = std::numeric_limits<std::size_t>::max()) {
    if (tick > now_) now_ = tick;
    std::size_t fired = 0;
    if (done_ >= now_) return 0;
    const std::uint64_t last = std::min(now_, done_ + slot_count());
    for (std::uint64_t t = done_ + 1; t <= last; ++t) {
      list_type& slot = slots_[t & mask_];
      list_type due;
      std::size_t collected = 0;
      bool complete = true;
      for (auto it = slot.begin(); it != slot.end();) {
        timer_entry& e = *it++;
        if (e.deadline_ <= now_) {
          if (fired + collected >= budget) {
            complete = false;
            break;
          }
          e.hook_.unlink();
          due.push_back(e);
          ++collected;
        } else if (((e.deadline_ ^ t) & mask_) != 0) {  // lazily refreshed: belongs elsewhere
          e.hook_.unlink();
          slots_[e.deadline_ & mask_].push_back(e);
          ++stats_.deferred;
        }
      }
      while (!due.empty()) {
        timer_entry& e = due.front();
        due.pop_front();
        ++fired;
        ++stats_.expirations;
        --stats_.armed;
        on_expire(Access::object(e));
      }
      if (!complete) {
        done_ = t - 1;
        return fired;
      }
    }
    done_ = now_;
    return fired;
  }

  /// The wheel's present, in ticks since make().
  [[nodiscard]] std::uint64_t now_tick() const noexcept { return now_; }
  /// Ticks since make() at clock reading `now` (readings before the origin give 0).
  [[nodiscard]] std::uint64_t tick_of(std::uint64_t now) const noexcept {
    return now > origin_ ? (now - origin_) / units_per_tick_ : 0;
  }
  /// Ticks covering duration d, rounded up (a timeout is never shortened). O(1).
  [[nodiscard]] std::uint64_t ticks_for(duration d) const noexcept {
    if (d <= duration::zero()) return 0;
    const auto ns = static_cast<std::uint64_t>(d.count());
    const auto t = static_cast<std::uint64_t>(tick_.count());
    return ns / t + (ns % t != 0);
  }
  /// ticks_for on any std::chrono duration (e.g. conn_timeouts' milliseconds).
  template <class Rep, class Period>
  [[nodiscard]] std::uint64_t ticks_for(std::chrono::duration<Rep, Period> d) const noexcept {
    return ticks_for(std::chrono::ceil<duration>(d));
  }

  [[nodiscard]] std::size_t slot_count() const noexcept { return slots_.size(); }
  [[nodiscard]] duration tick() const noexcept { return tick_; }
  [[nodiscard]] std::uint64_t clock_units_per_tick() const noexcept { return units_per_tick_; }
  [[nodiscard]] Clock& clock() noexcept { return clock_; }
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }
  [[nodiscard]] const timer_wheel_stats& stats() const noexcept { return stats_; }
  /// Entries armed now (see timer_wheel_stats::armed).
  [[nodiscard]] std::size_t armed() const noexcept { return stats_.armed; }

  /// Counts armed entries by walking every slot: O(slots + armed). For tests and audits.
  [[nodiscard]] std::size_t count_armed() const noexcept {
    std::size_t n = 0;
    for (const auto& s : slots_) n += static_cast<std::size_t>(std::distance(s.begin(), s.end()));
    return n;
  }

 private:
  timer_wheel(const timer_wheel_config& cfg, Clock clock, std::uint64_t units)
      : slots_(cfg.slots),
        mask_(cfg.slots - 1),
        tick_(cfg.tick),
        units_per_tick_(units),
        clock_(std::move(clock)) {
    origin_ = static_cast<std::uint64_t>(clock_.now());
  }

  [[nodiscard]] std::uint64_t deadline_in(std::uint64_t ticks) const noexcept {
    return now_ + std::max<std::uint64_t>(ticks, 1);
  }
  void link(timer_entry& e, std::uint64_t d) noexcept {
    e.deadline_ = d;
    slots_[d & mask_].push_back(e);
  }

  std::vector<list_type> slots_;
  std::uint64_t mask_ = 0;
  duration tick_{};
  std::uint64_t units_per_tick_ = 1;
  std::uint64_t origin_ = 0;
  std::uint64_t now_ = 0;   ///< latest tick the wheel was advanced to
  std::uint64_t done_ = 0;  ///< last tick whose slot was fully processed (< now_ when a budget ran out)
  [[no_unique_address]] Clock clock_;
  timer_wheel_stats stats_{};
};

}  // namespace fnat
