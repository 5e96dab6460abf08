// SPDX-License-Identifier: BSD-3-Clause
// Maglev under live change: a control thread rebuilds the table and publishes it through rcu_cell
// while reader threads ("workers") open and carry flows. Each worker routes a packet the way a
// FullNAT worker does: its own session table first (an established flow keeps its server), the
// scheduler of the snapshot it read for this burst otherwise. The test proves, from what the workers
// recorded:
//   - every new flow went where the table of the snapshot it saw sends it (no torn or mixed table),
//     and a worker never saw an older snapshot after a newer one;
//   - no new flow went to a removed or drained server once the snapshot without it was seen;
//   - every packet of an established flow reached the server its first packet chose, also when the
//     current table would have chosen another (counted: the pinning had work to do);
//   - under traffic, the share of new flows a change sends elsewhere than the previous table would is
//     about 1/N (remove one of 10, drain one of 10, add an 11th), with bounds.
#include <fnat/core/scheduler.hpp>
#include <fnat/dpdk/rcu_publish.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

using fnat::maglev;
using fnat::sched_backend;
using fnat::dpdk::rcu_cell;

namespace {

// What workers read: the real servers of one service (stable ids by position) and their table.
struct service_snapshot {
  std::uint64_t version = 0;
  std::uint32_t config = 0;              // which of the configurations below
  std::vector<std::uint32_t> server_of;  // scheduler index -> stable server id
  maglev table;
};

// Server s's Maglev identity: a fixed function of s (in fnat_lb, backend_id(endpoint)).
std::uint64_t identity(std::uint32_t s) { return 0x9e3779b97f4a7c15ULL * (s + 1) ^ 0x5bd1e995; }

struct configuration {
  const char* what;
  std::vector<std::uint32_t> servers;  // stable ids, in the order the table is built
  std::vector<std::uint32_t> weights;
  std::uint32_t gone = UINT32_MAX;     // a server that must get no new flow under this config
};

std::vector<configuration> configurations() {
  std::vector<std::uint32_t> ten{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<std::uint32_t> nine{0, 1, 2, 3, 4, 5, 6, 8, 9};
  std::vector<std::uint32_t> eleven{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<std::uint32_t> drained(10, 1);
  drained[3] = 0;
  return {
      {"10 servers", ten, std::vector<std::uint32_t>(10, 1)},
      {"server 7 removed", nine, std::vector<std::uint32_t>(9, 1), 7},
      {"10 servers", ten, std::vector<std::uint32_t>(10, 1)},
      {"server 10 added", eleven, std::vector<std::uint32_t>(11, 1)},
      {"10 servers", ten, std::vector<std::uint32_t>(10, 1)},
      {"server 3 drained", ten, drained, 3},
  };
}

maglev build(const configuration& c) {
  std::vector<sched_backend> b;
  for (std::size_t i = 0; i < c.servers.size(); ++i) b.push_back({.id = identity(c.servers[i]), .weight = c.weights[i]});
  auto m = maglev::make(b);
  REQUIRE(m);
  return *m;
}

struct flow_record {
  std::uint64_t hash;
  std::uint64_t version;
  std::uint32_t config;
  std::uint32_t server;
};

}  // namespace

TEST_CASE("maglev live: rebuilt and published under traffic, new flows follow, established ones stay",
          "[rcu][maglev]") {
  const auto configs = configurations();
  std::vector<maglev> tables;
  for (const auto& c : configs) tables.push_back(build(c));

  auto snapshot_of = [&](std::uint64_t version, std::uint32_t ci) {
    auto s = std::make_unique<service_snapshot>();
    s->version = version;
    s->config = ci;
    s->server_of = configs[ci].servers;
    s->table = tables[ci];  // copies share the table: publishing is cheap, building is not
    return std::unique_ptr<const service_snapshot>(std::move(s));
  };

  auto made = rcu_cell<service_snapshot>::make(snapshot_of(1, 0), {.max_readers = 8, .max_retired = 16});
  REQUIRE(made);
  auto& cell = *made;

  constexpr unsigned workers = 3;
  constexpr std::size_t established_cap = 2048;
  for (unsigned w = 0; w < workers; ++w) REQUIRE(cell.register_reader(w));

  struct worker_log {
    std::vector<flow_record> opened;
    std::uint64_t packets = 0, established_packets = 0, wrong_server = 0, pinned_against_table = 0, went_back = 0;
  };
  std::array<worker_log, workers> logs;
  std::atomic<bool> stop{false};

  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      auto& log = logs[w];
      std::mt19937_64 rng(1000 + w);
      std::unordered_map<std::uint64_t, std::uint32_t> sessions;  // this worker's session table
      std::unordered_map<std::uint64_t, std::uint32_t> first;     // the test's record: first packet's server
      std::vector<std::uint64_t> established;                     // ring of live flows
      std::size_t next_close = 0;
      std::uint64_t prev_version = 0;
      cell.online(w);
      while (!stop.load(std::memory_order_relaxed)) {
        const service_snapshot* s = cell.read();  // once per burst
        if (s->version < prev_version) ++log.went_back;
        prev_version = s->version;
        for (int k = 0; k < 32; ++k) {
          ++log.packets;
          if (established.size() < 64 || rng() % 2 == 0) {
            // A first packet: the scheduler of this burst's snapshot picks the server.
            const std::uint64_t h = rng();
            const auto p = s->table.pick(h);
            if (!p) continue;
            const std::uint32_t server = s->server_of[p.index];
            sessions.emplace(h, server);
            first.emplace(h, server);
            log.opened.push_back({h, s->version, s->config, server});
            if (established.size() < established_cap) {
              established.push_back(h);
            } else {
              // The oldest flow ends (its session closes) and the new one takes its place.
              sessions.erase(established[next_close]);
              first.erase(established[next_close]);
              established[next_close] = h;
              next_close = (next_close + 1) % established_cap;
            }
          } else {
            // A packet of an established flow: the session table decides, not the scheduler.
            const std::uint64_t h = established[rng() % established.size()];
            const auto it = sessions.find(h);
            if (it == sessions.end()) {
              ++log.wrong_server;
              continue;
            }
            ++log.established_packets;
            const auto p = s->table.pick(h);
            if (!p || s->server_of[p.index] != it->second) ++log.pinned_against_table;
            // "Forward" to it->second; the check below is that it is the flow's first server.
            if (first.at(h) != it->second) ++log.wrong_server;
          }
        }
        cell.quiescent(w);
      }
      cell.offline(w);
    });
  }

  // The control thread: cycle through the configurations, each published many times over (a reload
  // that changes nothing still publishes a new snapshot).
  std::uint64_t version = 1;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::uint32_t rounds = 0;
  while (std::chrono::steady_clock::now() < t_end || rounds < 2 * configs.size()) {
    const std::uint32_t ci = (rounds++) % static_cast<std::uint32_t>(configs.size());
    for (int again = 0; again < 3; ++again) {
      ++version;
      auto r = cell.publish(snapshot_of(version, ci));
      while (!r) {
        REQUIRE(r.err().code() == fnat::errc::exhausted);
        std::this_thread::yield();
        r = cell.publish(snapshot_of(version, ci));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  cell.synchronize();

  // ---- what the workers saw ----
  std::uint64_t opened = 0, packets = 0, established_packets = 0, pinned = 0, not_the_table = 0, to_gone = 0;
  std::vector<std::uint64_t> versions_seen;
  std::vector<std::uint64_t> moved(configs.size(), 0), under(configs.size(), 0);
  for (const auto& log : logs) {
    CHECK(log.wrong_server == 0);
    CHECK(log.went_back == 0);
    packets += log.packets;
    established_packets += log.established_packets;
    pinned += log.pinned_against_table;
    for (const auto& r : log.opened) {
      ++opened;
      versions_seen.push_back(r.version);
      // The server is what the table of the seen snapshot says (no torn or mixed table) ...
      const auto p = tables[r.config].pick(r.hash);
      not_the_table += !p || configs[r.config].servers[p.index] != r.server;
      // ... never a removed or drained one ...
      to_gone += r.server == configs[r.config].gone;
      // ... and differs from the previous configuration's choice for about 1/N of new flows.
      if (r.config > 0) {
        const auto q = tables[r.config - 1].pick(r.hash);
        ++under[r.config];
        moved[r.config] += configs[r.config - 1].servers[q.index] != r.server;
      }
    }
  }
  std::sort(versions_seen.begin(), versions_seen.end());
  versions_seen.erase(std::unique(versions_seen.begin(), versions_seen.end()), versions_seen.end());
  INFO("published " << version << " versions; workers saw " << versions_seen.size() << " of them; " << opened
                    << " flows opened, " << packets << " packets, " << established_packets
                    << " on established flows of which " << pinned << " went against the current table");
  CHECK(not_the_table == 0);
  CHECK(to_gone == 0);
  CHECK(versions_seen.size() >= configs.size());
  CHECK(opened > 10000);
  // The pinning mattered: established flows met tables that would have moved them.
  CHECK(pinned > 0);

  // Fractions of new flows moved by each change, measured on live traffic. Ideal: remove one of 10
  // -> 1/10 (its flows), add an 11th -> 1/11, restore -> (the removed/added server's share), drain
  // one of 10 -> 1/10; Maglev moves slightly more than the ideal (test_scheduler.cpp pins the table).
  const double ideal[] = {0, 1.0 / 10, 1.0 / 10, 1.0 / 11, 1.0 / 11, 1.0 / 10};
  for (std::size_t c = 1; c < configs.size(); ++c) {
    INFO(configs[c - 1].what << " -> " << configs[c].what << ": " << moved[c] << " of " << under[c]
                             << " new flows went elsewhere than the previous table would send them");
    REQUIRE(under[c] > 1000);
    const double f = static_cast<double>(moved[c]) / static_cast<double>(under[c]);
    std::printf("maglev live: %s -> %s: %.4f of %llu new flows moved (ideal %.4f)\n", configs[c - 1].what,
                configs[c].what, f, static_cast<unsigned long long>(under[c]), ideal[c]);
    CHECK(f >= 0.85 * ideal[c]);
    CHECK(f <= 1.25 * ideal[c]);
  }
}
