// SPDX-License-Identifier: BSD-3-Clause
// timer_wheel: exact expiry ticks across rounds, O(1) re-arm and cancel, lazy refresh, callbacks that
// free and re-arm, budgets, big time jumps, and a random sequence checked against a model.
#include <fnat/core/timer_wheel.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

using fnat::errc;
using namespace std::chrono_literals;

namespace {

struct item : fnat::timer_entry {
  int id = 0;
  explicit item(int i = 0) : id(i) {}
};

using wheel_t = fnat::timer_wheel<item>;

wheel_t make_wheel(std::size_t slots, std::chrono::nanoseconds tick = 1ns) {
  auto r = wheel_t::make({.slots = slots, .tick = tick});
  REQUIRE(r);
  return std::move(*r);
}

// Advances one tick at a time and records the tick each item fired at.
std::map<int, std::uint64_t> run_until(wheel_t& w, std::uint64_t last) {
  std::map<int, std::uint64_t> fired;
  for (std::uint64_t t = w.now_tick() + 1; t <= last; ++t)
    w.advance_to(t, [&](item& i) { REQUIRE(fired.emplace(i.id, t).second); });
  return fired;
}

}  // namespace

TEST_CASE("an entry fires at its deadline tick exactly, across many rounds", "[timer_wheel]") {
  auto w = make_wheel(8);
  std::vector<std::unique_ptr<item>> items;
  const std::vector<std::uint64_t> timeouts = {1, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 0};
  for (std::size_t i = 0; i < timeouts.size(); ++i) {
    items.push_back(std::make_unique<item>(static_cast<int>(i)));
    REQUIRE(w.arm(*items.back(), timeouts[i]) == errc::ok);
    REQUIRE(items.back()->is_armed());
  }
  REQUIRE(w.armed() == timeouts.size());
  const auto fired = run_until(w, 1100);
  REQUIRE(fired.size() == timeouts.size());
  for (std::size_t i = 0; i < timeouts.size(); ++i)
    CHECK(fired.at(static_cast<int>(i)) == std::max<std::uint64_t>(timeouts[i], 1));  // 0 counts as 1
  for (auto& i : items) REQUIRE_FALSE(i->is_armed());
  REQUIRE(w.armed() == 0);
  REQUIRE(w.stats().expirations == timeouts.size());
}

TEST_CASE("arm refuses an armed entry, cancel disarms, rearm moves either way", "[timer_wheel]") {
  auto w = make_wheel(16);
  item a(1), b(2), c(3);
  REQUIRE(w.arm(a, 10) == errc::ok);
  REQUIRE(w.arm(a, 3) == errc::exists);
  REQUIRE(wheel_t::deadline(a) == 10);
  REQUIRE(w.arm(b, 10) == errc::ok);
  REQUIRE(w.cancel(b));
  REQUIRE_FALSE(w.cancel(b));
  REQUIRE_FALSE(b.is_armed());
  REQUIRE(w.arm(c, 40) == errc::ok);
  w.advance_to(5, [](item&) { FAIL("nothing is due at 5"); });
  w.rearm(a, 2);   // earlier: 10 -> 7
  w.rearm(c, 50);  // later: 40 -> 55
  REQUIRE(w.remaining(a) == 2);
  REQUIRE(w.remaining(c) == 50);
  item d(4);
  w.rearm(d, 1);  // rearm of an unarmed entry arms it
  const auto fired = run_until(w, 60);
  CHECK(fired.at(1) == 7);
  CHECK(fired.at(3) == 55);
  CHECK(fired.at(4) == 6);
  CHECK(fired.count(2) == 0);
  const auto s = w.stats();
  CHECK(s.arms == 4);
  CHECK(s.rearms == 2);
  CHECK(s.cancels == 1);
  CHECK(s.expirations == 3);
}

TEST_CASE("refresh to a later deadline writes only the entry, the wheel moves it when it passes",
          "[timer_wheel][refresh]") {
  auto w = make_wheel(8);
  item a(1), b(2), c(3);
  REQUIRE(w.arm(a, 3) == errc::ok);   // slot 3
  REQUIRE(w.arm(b, 5) == errc::ok);   // slot 5
  REQUIRE(w.arm(c, 20) == errc::ok);  // slot 4, round 2
  w.refresh(a, 30);                   // deadline 30 (slot 6), still linked in slot 3
  REQUIRE(wheel_t::deadline(a) == 30);
  REQUIRE(w.stats().refreshes == 1);
  REQUIRE(w.stats().rearms == 0);
  w.refresh(c, 2);  // earlier: re-linked at once
  REQUIRE(w.stats().rearms == 1);
  REQUIRE(wheel_t::deadline(c) == 2);
  item d(4);
  w.refresh(d, 4);  // refresh arms an unarmed entry
  REQUIRE(d.is_armed());
  const auto fired = run_until(w, 40);
  CHECK(fired.at(1) == 30);
  CHECK(fired.at(2) == 5);
  CHECK(fired.at(3) == 2);
  CHECK(fired.at(4) == 4);
  CHECK(w.stats().deferred >= 1);
}

TEST_CASE("per-packet refresh keeps a busy entry alive and lets it expire once idle", "[timer_wheel][refresh]") {
  auto w = make_wheel(64);
  item conn(1);
  REQUIRE(w.arm(conn, 50) == errc::ok);
  std::uint64_t fired_at = 0;
  for (std::uint64_t t = 1; t <= 1000; ++t) {
    w.advance_to(t, [&](item&) { fired_at = t; });
    if (t < 550) REQUIRE(fired_at == 0);
    if (t <= 500) w.refresh(conn, 50);  // a packet every tick until 500
  }
  CHECK(fired_at == 550);
  // Lazy: 500 refreshes, only a handful of moves.
  CHECK(w.stats().refreshes == 500);
  CHECK(w.stats().deferred <= 20);
}

TEST_CASE("callbacks may free the entry, re-arm it, cancel or re-arm other due entries, and arm new ones",
          "[timer_wheel][callback]") {
  auto w = make_wheel(64);  // the second advance below stays within one revolution, so fires in tick order
  std::vector<item*> heap;
  for (int i = 0; i < 6; ++i) heap.push_back(new item(i));
  for (item* i : heap) REQUIRE(w.arm(*i, 4) == errc::ok);  // all due at tick 4
  item periodic(100);
  REQUIRE(w.arm(periodic, 4) == errc::ok);
  item late(200);
  std::vector<int> order;
  int periodic_fires = 0;
  w.advance_to(4, [&](item& i) {
    order.push_back(i.id);
    if (i.id == 100) {
      ++periodic_fires;
      w.rearm(i, 4);  // periodic timer
      return;
    }
    if (i.id == 0) {
      REQUIRE(w.cancel(*heap[5]));  // another due entry: must not fire
      w.rearm(*heap[4], 10);        // another due entry moved later: must not fire now
      REQUIRE(w.arm(late, 1) == errc::ok);  // new entry: not before the next tick
    }
    REQUIRE_FALSE(i.is_armed());
    delete &i;  // the callback frees the object
  });
  CHECK(order == std::vector<int>{0, 1, 2, 3, 100});
  REQUIRE(periodic.is_armed());
  REQUIRE(late.is_armed());
  REQUIRE(heap[4]->is_armed());
  REQUIRE_FALSE(heap[5]->is_armed());
  std::vector<int> next;
  w.advance_to(14, [&](item& i) {
    next.push_back(i.id);
    if (i.id == 100) {
      ++periodic_fires;
      w.rearm(i, 4);  // fired late (tick 8 run at 14): 4 ticks from the present, 18
    }
  });
  CHECK(next == std::vector<int>{200, 100, 4});  // ticks 5, 8, 14
  CHECK(periodic_fires == 2);
  REQUIRE(wheel_t::deadline(periodic) == 18);
  delete heap[4];
  delete heap[5];
  w.cancel(periodic);
}

TEST_CASE("a budget bounds the work of one advance, the rest fires on the next call", "[timer_wheel][budget]") {
  auto w = make_wheel(16);
  std::vector<item> items;
  items.reserve(10);
  for (int i = 0; i < 10; ++i) items.emplace_back(i);
  for (int i = 0; i < 10; ++i) REQUIRE(w.arm(items[static_cast<std::size_t>(i)], i < 5 ? 3 : 5) == errc::ok);
  std::vector<int> fired;
  auto rec = [&](item& i) { fired.push_back(i.id); };
  REQUIRE(w.advance_to(6, rec, 3) == 3);
  REQUIRE(w.now_tick() == 6);
  REQUIRE(w.advance_to(6, rec, 3) == 3);
  REQUIRE(w.advance_to(6, rec, 0) == 0);
  REQUIRE(w.advance_to(6, rec, 3) == 3);
  REQUIRE(w.advance_to(6, rec, 3) == 1);
  REQUIRE(w.advance_to(6, rec) == 0);
  CHECK(fired == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // tick order kept across calls
  REQUIRE(w.armed() == 0);
}

TEST_CASE("falling behind by several revolutions fires everything due in one pass", "[timer_wheel]") {
  auto w = make_wheel(16);
  std::mt19937_64 rng(5);
  std::vector<item> items;
  items.reserve(500);
  std::map<int, std::uint64_t> deadline;
  for (int i = 0; i < 500; ++i) {
    items.emplace_back(i);
    const std::uint64_t t = 1 + rng() % 400;
    REQUIRE(w.arm(items.back(), t) == errc::ok);
    deadline[i] = t;
  }
  std::set<int> fired;
  w.advance_to(200, [&](item& i) {
    REQUIRE(deadline.at(i.id) <= 200);
    REQUIRE(fired.insert(i.id).second);
  });
  for (const auto& [id, d] : deadline) REQUIRE((fired.count(id) == 1) == (d <= 200));
  w.advance_to(150, [](item&) { FAIL("time does not go back"); });
  w.advance_to(10000, [&](item& i) { REQUIRE(fired.insert(i.id).second); });
  REQUIRE(fired.size() == 500);
  REQUIRE(w.count_armed() == 0);
}

TEST_CASE("the clock policy converts readings and durations to ticks", "[timer_wheel][clock]") {
  auto r = fnat::timer_wheel<item>::make({.slots = 256, .tick = 10ms}, fnat::manual_clock{.value = 5'000'000'000});
  REQUIRE(r);
  auto& w = *r;
  REQUIRE(w.clock_units_per_tick() == 10'000'000);
  REQUIRE(w.ticks_for(25ms) == 3);  // rounded up: never shorter than asked
  REQUIRE(w.ticks_for(30ms) == 3);
  REQUIRE(w.ticks_for(std::chrono::seconds(90)) == 9000);
  REQUIRE(w.ticks_for(0ms) == 0);
  REQUIRE(w.tick_of(5'000'000'000 + 25'000'000) == 2);
  REQUIRE(w.tick_of(1) == 0);  // before the origin
  item a(1);
  REQUIRE(w.arm(a, w.ticks_for(25ms)) == errc::ok);
  int fired = 0;
  w.clock().value += 29'999'999;  // 2.99 ticks
  w.advance([&](item&) { ++fired; });
  REQUIRE(fired == 0);
  w.clock().value += 1;
  w.advance([&](item&) { ++fired; });
  REQUIRE(fired == 1);
  // A TSC-like clock: 2.5 GHz.
  struct tsc {
    std::uint64_t now() const noexcept { return 0; }
    std::uint64_t frequency() const noexcept { return 2'500'000'000; }
  };
  auto t = fnat::timer_wheel<item, fnat::timer_in_base<item>, tsc>::make({.tick = 1ms});
  REQUIRE(t);
  REQUIRE(t->clock_units_per_tick() == 2'500'000);
}

TEST_CASE("make() validates slots, tick and clock", "[timer_wheel][config]") {
  for (std::size_t slots : {0, 1, 3, 1000, (1 << 24) + 1, 1 << 25}) {
    auto r = wheel_t::make({.slots = slots});
    REQUIRE_FALSE(r);
    CHECK(r.err().code() == errc::invalid_argument);
    CHECK_THAT(r.err().message(), Catch::Contains("power of two"));
  }
  REQUIRE_FALSE(wheel_t::make({.tick = 0ns}));
  auto coarse = wheel_t::make({.tick = 1ns}, fnat::manual_clock{.value = 0, .hz = 1000});  // 1 ms clock, 1 ns tick
  REQUIRE_FALSE(coarse);
  CHECK_THAT(coarse.err().message(), Catch::Contains("shorter than one unit"));
  REQUIRE_FALSE(wheel_t::make({}, fnat::manual_clock{.value = 0, .hz = 0}));
  REQUIRE(wheel_t::make({}));
}

TEST_CASE("destroying an armed entry detaches it, destroying the wheel disarms", "[timer_wheel]") {
  item survivor(1);
  {
    auto w = make_wheel(8);
    {
      item gone(2);
      REQUIRE(w.arm(gone, 3) == errc::ok);
    }  // auto-unlink
    REQUIRE(w.count_armed() == 0);
    REQUIRE(w.arm(survivor, 3) == errc::ok);
    w.advance_to(2, [](item&) { FAIL("nothing due"); });
    auto moved = std::move(w);
    REQUIRE(survivor.is_armed());
    int fired = 0;
    moved.advance_to(3, [&](item& i) { fired += i.id; });
    REQUIRE(fired == 1);
    REQUIRE(moved.arm(survivor, 5) == errc::ok);
  }
  REQUIRE_FALSE(survivor.is_armed());
  item copy = survivor;  // copying never copies the armed state
  REQUIRE_FALSE(copy.is_armed());
}

TEST_CASE("random arm/rearm/refresh/cancel/advance agree with a model of deadlines", "[timer_wheel][model]") {
  std::mt19937_64 rng(20240612);
  auto w = make_wheel(32);
  constexpr int n = 200;
  std::vector<item> items;
  items.reserve(n);
  for (int i = 0; i < n; ++i) items.emplace_back(i);
  std::map<int, std::uint64_t> model;  // armed id -> deadline
  std::uint64_t lazy = 0;
  for (int op = 0; op < 150000; ++op) {
    item& it = items[rng() % n];
    const auto ticks = rng() % 200;
    const std::uint64_t d = w.now_tick() + std::max<std::uint64_t>(ticks, 1);
    switch (rng() % 6) {
      case 0: {
        const errc rc = w.arm(it, ticks);
        REQUIRE(rc == (model.count(it.id) ? errc::exists : errc::ok));
        if (rc == errc::ok) model[it.id] = d;
        break;
      }
      case 1:
        w.rearm(it, ticks);
        model[it.id] = d;
        break;
      case 2:
        if (model.count(it.id) && d >= model[it.id]) ++lazy;
        w.refresh(it, ticks);
        model[it.id] = d;
        break;
      case 3:
        REQUIRE(w.cancel(it) == (model.erase(it.id) == 1));
        break;
      default: {
        const std::uint64_t to = w.now_tick() + rng() % 3;
        const std::size_t budget = rng() % 4 == 0 ? rng() % 8 : std::numeric_limits<std::size_t>::max();
        std::size_t due = 0;
        for (const auto& [id, dl] : model) due += dl <= to;
        std::size_t fired = 0;
        const std::size_t r = w.advance_to(to, [&](item& x) {
          REQUIRE(model.at(x.id) <= to);
          REQUIRE(wheel_t::deadline(x) == model.at(x.id));
          model.erase(x.id);
          ++fired;
        }, budget);
        REQUIRE(r == fired);
        REQUIRE(fired == std::min(due, budget));
        break;
      }
    }
    REQUIRE(w.armed() == model.size());
    if (op % 5000 == 0) REQUIRE(w.count_armed() == model.size());
    for (int probe = 0; probe < 2; ++probe) {
      const item& p = items[rng() % n];
      REQUIRE(p.is_armed() == (model.count(p.id) == 1));
      if (p.is_armed()) REQUIRE(wheel_t::deadline(p) == model.at(p.id));
    }
  }
  CHECK(lazy > 3000);
  CHECK(w.stats().refreshes == lazy);
  CHECK(w.stats().expirations > 10000);
  CHECK(w.stats().deferred > 1000);
  // Drain.
  w.advance_to(w.now_tick() + 1000, [&](item& x) { REQUIRE(model.erase(x.id) == 1); });
  REQUIRE(model.empty());
  REQUIRE(w.count_armed() == 0);
}

// ---- 64-bit time: no wrap at 2^32 ticks, none near the top of the clock -------------------------

TEST_CASE("deadlines and lazy refreshes across 2^32 ticks neither fire early nor never", "[timer_wheel][time64]") {
  constexpr std::uint64_t t32 = std::uint64_t{1} << 32;
  auto w = make_wheel(64);
  REQUIRE(w.advance_to(t32 - 5, [](item&) { FAIL("nothing is armed"); }) == 0);
  REQUIRE(w.now_tick() == t32 - 5);
  item a(1), b(2);
  REQUIRE(w.arm(a, 10) == errc::ok);  // due at 2^32 + 5
  REQUIRE(w.arm(b, 10) == errc::ok);
  REQUIRE(w.deadline(a) == t32 + 5);
  // b sees a packet after the wrap of a 32-bit tick: its deadline moves to 2^32 + 13 (lazily).
  REQUIRE(w.advance_to(t32 + 3, [](item&) { FAIL("nothing is due"); }) == 0);
  w.refresh(b, 10);
  REQUIRE(w.deadline(b) == t32 + 13);
  std::map<int, std::uint64_t> fired = run_until(w, t32 + 20);
  REQUIRE(fired.size() == 2);
  CHECK(fired.at(1) == t32 + 5);
  CHECK(fired.at(2) == t32 + 13);
  REQUIRE(w.remaining(a) == 0);
}

TEST_CASE("a nanosecond clock near 2^63 and near 2^64 converts and expires exactly", "[timer_wheel][time64]") {
  const std::uint64_t starts[] = {(std::uint64_t{1} << 63) - 50'000'000,  // 2^63 ns crossed 50 ms in
                                  ~std::uint64_t{0} - 2'000'000'000};    // 2 s below the clock's end
  for (const std::uint64_t start : starts) {
    INFO("clock starts at " << start);
    auto r = fnat::timer_wheel<item>::make({.slots = 64, .tick = 1ms}, fnat::manual_clock{.value = start});
    REQUIRE(r);
    auto& w = *r;
    item a(1);
    REQUIRE(w.arm(a, w.ticks_for(100ms)) == errc::ok);
    REQUIRE(w.deadline(a) == 100);
    int fired = 0;
    auto on = [&](item&) { ++fired; };
    w.clock().value = start + 99'999'999;  // 99.99 ms: the 2^63 boundary is behind us
    REQUIRE(w.advance(on) == 0);
    REQUIRE(w.now_tick() == 99);
    w.clock().value = start + 100'000'000;
    REQUIRE(w.advance(on) == 1);
    REQUIRE(fired == 1);
    // A 1.5 s timeout from there still ends below 2^64 on the second start: it must fire too.
    REQUIRE(w.arm(a, w.ticks_for(1500ms)) == errc::ok);
    w.clock().value = start + 1'599'999'999;
    REQUIRE(w.advance(on) == 0);
    w.clock().value = start + 1'600'000'000;
    REQUIRE(w.advance(on) == 1);
    REQUIRE(w.tick_of(start + 1'600'000'000) == 1600);
  }
}
