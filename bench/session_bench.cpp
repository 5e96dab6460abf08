// SPDX-License-Identifier: BSD-3-Clause
// The whole connection lifecycle through the library's session table (core/session_table.hpp), in
// steady state: what one lcore pays per connection, teardown included.
//
//   session_lifecycle/fnat/close/live:L/packets:K    per iteration: open a session for a new client
//       tuple (local port from the LIP rotation, conn object, both tuples, timer), K packets (a lookup
//       by the tuple of alternating directions, then touch()), and close() of the session opened L
//       iterations earlier: L sessions stay live, every open has its close, as with connections that
//       end with a FIN or RST.
//   session_lifecycle/fnat/expire/live:L/packets:K   the same, but nothing is closed: the wheel
//       advances one tick every 1,024 connections (1 ms ticks at ~1 M connections/s) and each session
//       has an idle timeout of L / 1,024 ticks, so the session opened L iterations earlier expires
//       (its timer fires, the lazy check finds it idle, it is closed), as with UDP flows and
//       connections that end in silence. A tick per connection would make every tick scan a slot of
//       L / slots entries that are not due yet: a cost per tick that real traffic spreads over
//       thousands of connections.
// items_per_second counts full connections (open + K packets + teardown). There is no peer in this
// binary: DPVS's lifecycle is spread over its conn, sa_pool and timer code, whose costs the other
// suites compare one by one (sa_pool_fetch_release, conn_insert_erase, conn_expire).
// Memory: std::allocator (the EAL of the shared main is not used here).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fnat/core/port_plan.hpp>
#include <fnat/core/session_table.hpp>

namespace {

using namespace fnat;

constexpr int n_lips = 8;
constexpr int n_rs = 32;

fnat::inet_addr v4_addr(std::uint32_t host) { return fnat::inet_addr(ipv4_addr::from_host(host)); }

// A client tuple that no live session shares: 2^17 addresses of 198.18.0.0/15 times 60,000 ports.
inet_tuple client_of(std::uint64_t i) {
  const auto host = static_cast<std::uint32_t>(i % (1u << 17));
  const auto port = static_cast<std::uint16_t>(1024 + (i >> 17) % 60000);
  const std::uint32_t a = (198u << 24) | (18u << 16) | host;
  static const fnat::inet_addr vip = *fnat::inet_addr::parse("198.18.255.1");
  return make_tuple(ipproto::tcp, v4_addr(a), port, vip, std::uint16_t{80});
}

struct rig {
  using table_type = session_table<>;
  using pool_type = sa_pool<hashed_buckets>;

  explicit rig(std::size_t live) {
    auto plan = port_plan::make({.lcores = {{1, 0}}});
    if (!plan) throw std::runtime_error(plan.err().what());
    for (int l = 0; l < n_lips; ++l) {
      auto pol = hashed_buckets::make(*plan, 0, {.buckets = 16});
      if (!pol) throw std::runtime_error(pol.err().what());
      auto p = pool_type::make(v4_addr((198u << 24) | (19u << 16) | (2u << 8) | (100u + l)), std::move(*pol));
      if (!p) throw std::runtime_error(p.err().what());
      pools.push_back(std::make_unique<pool_type>(std::move(*p)));
      if (!rotation.add(*pools.back())) throw std::runtime_error("rotation");
    }
    for (int r = 0; r < n_rs; ++r)
      servers.push_back(endpoint{v4_addr((198u << 24) | (19u << 16) | (3u << 8) | (1u + r)), 80});
    auto t = table_type::make({.capacity = live + 64, .wheel = {.slots = 4096, .tick = std::chrono::milliseconds(1)}});
    if (!t) throw std::runtime_error(t.err().what());
    table = std::make_unique<table_type>(std::move(*t));
    group = *table->add_group(rotation);
  }

  std::vector<std::unique_ptr<pool_type>> pools;
  sa_pool_rotation<hashed_buckets> rotation;
  std::vector<endpoint> servers;
  std::unique_ptr<table_type> table;
  std::uint16_t group = 0;
};

enum class ending { close, expire };

template <ending End>
void bm_lifecycle(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const auto packets = static_cast<int>(state.range(1));
  rig r(live);
  session_table<>& t = *r.table;
  std::deque<session<>*> open;  // close: the live sessions, oldest first
  std::uint64_t next = 0, tick = 0;
  constexpr std::uint64_t per_tick = 1024;
  const std::uint64_t timeout = End == ending::expire ? live / per_tick : 1u << 30;
  auto one = [&]() {
    const inet_tuple in = client_of(next);
    const auto res = t.open({.in = in, .dest = r.servers[next % n_rs], .group = r.group, .timeout = timeout});
    ++next;
    if (!res) return false;
    session<>& s = *res.session;
    for (int k = 0; k < packets; ++k) {
      const auto h = t.lookup((k & 1) ? s.out() : in);
      benchmark::DoNotOptimize(h.conn);
      t.touch(*h.conn);
    }
    if constexpr (End == ending::close) {
      open.push_back(&s);
      if (open.size() > live) {
        t.close(*open.front());
        open.pop_front();
      }
    } else {
      if (next % per_tick == 0) t.advance_to(++tick, [](session<>&) noexcept {});
    }
    return true;
  };
  // Warm up to the steady state: L live sessions (and, for expire, a wheel that expires one per tick).
  for (std::size_t i = 0; i < live + per_tick; ++i)
    if (!one()) {
      state.SkipWithError("open refused during warm-up");
      return;
    }
  for (auto _ : state)
    if (!one()) {
      state.SkipWithError("open refused");
      break;
    }
  state.SetItemsProcessed(state.iterations());
  const session_table_stats st = t.stats();
  state.counters["live"] = static_cast<double>(st.open);
  state.counters["refused"] = static_cast<double>(st.refusals());
  state.counters["rearmed_per_conn"] =
      static_cast<double>(st.rearmed) / static_cast<double>(std::max<std::uint64_t>(st.opened, 1));
}

void lifecycle_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"live", "packets"});
  for (long live : {65536L, 1048576L}) b->Args({live, 4});
}

BENCHMARK(bm_lifecycle<ending::close>)->Name("session_lifecycle/fnat/close")->Apply(lifecycle_args);
BENCHMARK(bm_lifecycle<ending::expire>)->Name("session_lifecycle/fnat/expire")->Apply(lifecycle_args);

}  // namespace
