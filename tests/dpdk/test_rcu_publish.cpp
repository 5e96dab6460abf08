// SPDX-License-Identifier: BSD-3-Clause
// rcu_cell: an old snapshot is freed only after every online reader was quiescent, offline readers
// block nothing, a stuck reader makes publish() refuse instead of piling up, and under a writer that
// publishes thousands of versions concurrent readers never see a freed or torn snapshot (the
// destructor poisons it; ASan builds also catch any read of freed memory) and every snapshot is freed.
// rte_rcu_qsbr needs no EAL: plain std::threads are the readers.
#include <fnat/dpdk/rcu_publish.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using fnat::errc;
using fnat::dpdk::rcu_cell;

namespace {

constexpr std::uint64_t alive = 0xa11ce5a11ce5a11cULL;
constexpr std::uint64_t dead = 0xdeaddeaddeaddeadULL;

std::atomic<long> live_snapshots{0};

// A snapshot whose contents a reader can verify: every word derives from the generation.
struct snapshot {
  std::uint64_t canary = alive;
  std::uint64_t gen;
  std::vector<std::uint64_t> data;

  explicit snapshot(std::uint64_t g) : gen(g), data(64) {
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = g * 1000003u + i;
    live_snapshots.fetch_add(1, std::memory_order_relaxed);
  }
  snapshot(const snapshot&) = delete;
  snapshot& operator=(const snapshot&) = delete;
  ~snapshot() {
    // Poison through volatile so the stores survive dead-store elimination: a reader that still
    // held this snapshot would see `dead` (until the allocator reuses the memory; ASan sees it always).
    volatile std::uint64_t* c = &canary;
    *c = dead;
    volatile std::uint64_t* g = &gen;
    *g = ~std::uint64_t{0};
    live_snapshots.fetch_sub(1, std::memory_order_relaxed);
  }

  [[nodiscard]] bool whole() const noexcept {
    if (canary != alive) return false;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (data[i] != gen * 1000003u + i) return false;
    return true;
  }
};

std::unique_ptr<const snapshot> make_snapshot(std::uint64_t g) { return std::make_unique<const snapshot>(g); }

}  // namespace

TEST_CASE("rcu_cell: make refuses what cannot work, with a message", "[rcu]") {
  auto null = rcu_cell<snapshot>::make(nullptr);
  REQUIRE_FALSE(null);
  CHECK(null.err().code() == errc::invalid_argument);
  auto zero = rcu_cell<snapshot>::make(make_snapshot(1), {.max_readers = 0});
  REQUIRE_FALSE(zero);
  CHECK(zero.err().message().find("max_readers") != std::string::npos);
  auto no_retired = rcu_cell<snapshot>::make(make_snapshot(1), {.max_retired = 0});
  REQUIRE_FALSE(no_retired);

  auto cell = rcu_cell<snapshot>::make(make_snapshot(1), {.max_readers = 4});
  REQUIRE(cell);
  auto bad = cell->register_reader(4);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().message().find("max_readers = 4") != std::string::npos);
  CHECK(cell->register_reader(3));
  auto null_publish = cell->publish(nullptr);
  REQUIRE_FALSE(null_publish);
  CHECK(cell->version() == 1);
  CHECK(cell->read()->gen == 1);
}

TEST_CASE("rcu_cell: the old snapshot lives until every online reader was quiescent", "[rcu]") {
  REQUIRE(live_snapshots.load() == 0);
  {
    auto cell = rcu_cell<snapshot>::make(make_snapshot(1), {.max_readers = 8, .max_retired = 3});
    REQUIRE(cell);
    REQUIRE(cell->register_reader(2));
    REQUIRE(cell->register_reader(5));

    SECTION("offline readers block nothing") {
      REQUIRE(cell->publish(make_snapshot(2)));
      CHECK(cell->retired() == 0);
      CHECK(live_snapshots.load() == 1);
      CHECK(cell->read()->gen == 2);
      CHECK(cell->version() == 2);
    }

    SECTION("a reader holding a pointer keeps its snapshot alive, quiescent() lets it go") {
      cell->online(2);
      cell->online(5);
      const snapshot* held = cell->read();
      cell->quiescent(5);  // reader 5 holds nothing
      REQUIRE(cell->publish(make_snapshot(2)));
      CHECK(cell->read()->gen == 2);  // new reads see the new one at once
      CHECK(cell->reclaim() == 0);
      CHECK(cell->retired() == 1);
      CHECK(live_snapshots.load() == 2);
      CHECK(held->whole());
      CHECK(held->gen == 1);
      cell->quiescent(2);
      CHECK(cell->retired() == 1);  // not yet reclaimed: reader 5 has not been quiescent since
      cell->quiescent(5);
      CHECK(cell->reclaim() == 1);
      CHECK(live_snapshots.load() == 1);
      cell->offline(2);
      cell->offline(5);
    }

    SECTION("a stuck reader makes publish refuse at max_retired; the running snapshot stays") {
      cell->online(2);
      for (std::uint64_t g = 2; g <= 4; ++g) REQUIRE(cell->publish(make_snapshot(g)));
      CHECK(cell->retired() == 3);
      auto refused = cell->publish(make_snapshot(5));
      REQUIRE_FALSE(refused);
      CHECK(refused.err().code() == errc::exhausted);
      CHECK(refused.err().message().find("quiescent") != std::string::npos);
      CHECK(cell->read()->gen == 4);
      CHECK(cell->version() == 4);
      CHECK(live_snapshots.load() == 4);  // the refused one was destroyed
      // Going offline (a sleeping worker) releases everything.
      cell->offline(2);
      CHECK(cell->reclaim() == 3);
      CHECK(live_snapshots.load() == 1);
      REQUIRE(cell->publish(make_snapshot(5)));
      CHECK(live_snapshots.load() == 1);
    }

    SECTION("synchronize waits for a reader on another thread, then frees") {
      cell->online(2);
      REQUIRE(cell->publish(make_snapshot(2)));
      CHECK(cell->retired() == 1);
      std::atomic<bool> go{false};
      std::thread reader([&] {
        while (!go.load()) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        cell->quiescent(2);
      });
      go = true;
      const auto t0 = std::chrono::steady_clock::now();
      CHECK(cell->synchronize() == 1);
      CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(15));
      reader.join();
      CHECK(live_snapshots.load() == 1);
      cell->offline(2);
    }
  }
  CHECK(live_snapshots.load() == 0);
}

TEST_CASE("rcu_cell: concurrent readers never see a freed or torn snapshot", "[rcu][stress]") {
  REQUIRE(live_snapshots.load() == 0);
  constexpr unsigned readers = 4;
  constexpr std::uint64_t versions = 3000;
  {
    auto made = rcu_cell<snapshot>::make(make_snapshot(0), {.max_readers = 16, .max_retired = 8});
    REQUIRE(made);
    auto& cell = *made;
    for (unsigned r = 0; r < readers; ++r) REQUIRE(cell.register_reader(r + 10));

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> bad{0}, went_back{0}, loops{0};
    std::vector<std::uint64_t> last_seen(readers, 0);
    std::vector<std::thread> threads;
    for (unsigned r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        const unsigned id = r + 10;
        cell.online(id);
        std::uint64_t prev = 0, n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          // One "burst": the pointer is used several times, across a yield, before quiescent().
          const snapshot* s = cell.read();
          for (int k = 0; k < 4; ++k) {
            if (!s->whole()) bad.fetch_add(1, std::memory_order_relaxed);
            if (k == 1) std::this_thread::yield();
          }
          if (s->gen < prev) went_back.fetch_add(1, std::memory_order_relaxed);
          prev = s->gen;
          cell.quiescent(id);
          ++n;
          // The last reader idles now and then, offline while it sleeps.
          if (r == readers - 1 && n % 64 == 0) {
            cell.offline(id);
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            cell.online(id);
          }
        }
        cell.offline(id);
        last_seen[r] = prev;
        loops.fetch_add(n);
      });
    }

    std::uint64_t refusals = 0;
    for (std::uint64_t g = 1; g <= versions; ++g) {
      for (;;) {
        auto r = cell.publish(make_snapshot(g));
        if (r) break;
        REQUIRE(r.err().code() == errc::exhausted);
        ++refusals;
        std::this_thread::yield();
      }
      // Bounded: never more than max_retired old snapshots (plus the current one) alive.
      REQUIRE(live_snapshots.load() <= 1 + 8);
      if (g % 500 == 0) cell.synchronize();
    }
    stop = true;
    for (auto& t : threads) t.join();
    INFO("reader loops " << loops.load() << ", publish refusals " << refusals);
    CHECK(bad.load() == 0);
    CHECK(went_back.load() == 0);
    CHECK(cell.version() == versions + 1);
    CHECK(cell.read()->gen == versions);
    CHECK(loops.load() > 0);
    cell.synchronize();
    CHECK(cell.retired() == 0);
    CHECK(live_snapshots.load() == 1);
  }
  CHECK(live_snapshots.load() == 0);
}
