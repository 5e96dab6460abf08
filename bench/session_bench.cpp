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
//   session_lifecycle/dpvs/{close,expire}/live:L/packets:K   the same work done DPVS's way,
//       re-implemented here from its description (our code): a conn object from an rte_mempool
//       (DPVS's per-socket conn cache); DPVS's sa_pool (support/dpvs_sa_pool.hpp) over the same 8
//       LIPs, tried in turn; both tuples' nodes (embedded in the conn) added at the head of the chains
//       of a per-lcore table of 2^20 list heads (DPVS's default size), hashed with rte_jhash_3words
//       (addresses, ports) under a random seed; a per-lcore timer wheel of 4096 list-head slots whose
//       entries carry their deadline (an entry whose round has not come stays in its slot); each
//       packet's lookup walks the chain comparing tuples, then re-schedules the conn's timer (DPVS
//       updates the timer on every packet: unlink, link into the new slot); close = timer unlinked,
//       both nodes unlinked, port released, conn back to the mempool; expire = the same from the
//       wheel. IPv4 only, as session_lifecycle/fnat.
// items_per_second counts full connections (open + K packets + teardown). Memory: DPDK's for both
// (fnat's session table through dpdk::rte_allocator; the EAL of the shared main runs on hugepages when
// it found them).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include <fnat/core/port_plan.hpp>
#include <fnat/core/session_table.hpp>
#include <fnat/dpdk/memory.hpp>

#include "support/dpvs_sa_pool.hpp"

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

struct rte_traits : session_table_traits {
  using allocator = dpdk::rte_allocator<std::byte>;
};
using table_t = session_table<no_payload, rte_traits>;
using session_t = table_t::session_type;

struct rig {
  using table_type = table_t;
  using pool_type = sa_pool<hashed_buckets, dpdk::rte_allocator<std::byte>>;

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
    auto t = table_type::make({.capacity = live + 64, .wheel = {.slots = 4096, .tick = std::chrono::milliseconds(1)}},
                              manual_clock(), tuple_hash(), dpdk::rte_allocator<std::byte>(SOCKET_ID_ANY));
    if (!t) throw std::runtime_error(t.err().what());
    table = std::make_unique<table_type>(std::move(*t));
    group = *table->add_group(rotation);
  }

  std::vector<std::unique_ptr<pool_type>> pools;
  sa_pool_rotation<hashed_buckets, dpdk::rte_allocator<std::byte>> rotation;
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
  table_t& t = *r.table;
  std::deque<session_t*> open;  // close: the live sessions, oldest first
  std::uint64_t next = 0, tick = 0;
  constexpr std::uint64_t per_tick = 1024;
  const std::uint64_t timeout = End == ending::expire ? live / per_tick : 1u << 30;
  auto one = [&]() {
    const inet_tuple in = client_of(next);
    const auto res = t.open({.in = in, .dest = r.servers[next % n_rs], .group = r.group, .timeout = timeout});
    ++next;
    if (!res) return false;
    session_t& s = *res.session;
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
      if (next % per_tick == 0) t.advance_to(++tick, [](session_t&) noexcept {});
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

// ---- dpvs: the same lifecycle DPVS's way (see the header) ----------------------------------------

namespace dpvs_like {

namespace sa = fnat::bench::dpvs;
using sa::list_head;

struct conn;
struct tuplehash {  // DPVS's dp_vs_conn_tuplehash: list links, direction, the tuple
  list_head list;
  conn* owner;
  std::uint8_t direct;
  inet_tuple tuple;
};
struct conn {
  tuplehash th[2];
  list_head timer;  // the timer's link in its wheel slot
  std::uint64_t expire = 0, timeout = 0;
  endpoint dest;
  fnat::inet_addr laddr;
  std::uint16_t lport = 0;
  std::uint16_t lip_index = 0;
  std::uint8_t state = 0;
};

inline void list_add_head(list_head* e, list_head* h) noexcept {
  e->next = h->next;
  e->prev = h;
  h->next->prev = e;
  h->next = e;
}

std::uint32_t word_of(const fnat::inet_addr& a) {
  std::uint32_t w;
  std::memcpy(&w, a.raw().data() + 12, 4);
  return w;
}

struct lcore {
  static constexpr std::uint32_t tbl_bits = 20, slots = 4096;
  std::vector<std::unique_ptr<sa::sa_pool>> pools;
  std::vector<fnat::inet_addr> lips;
  std::vector<endpoint> servers;
  list_head* tbl = nullptr;
  list_head* wheel = nullptr;
  rte_mempool* mp = nullptr;
  std::uint32_t rnd = 0;
  std::uint64_t now = 0;
  std::size_t rr = 0, live = 0;
  std::uint64_t expired = 0, refused = 0;

  explicit lcore(std::size_t capacity) {
    auto plan = port_plan::make({.lcores = {{1, 0}}});
    if (!plan) throw std::runtime_error(plan.err().what());
    for (int l = 0; l < n_lips; ++l) {
      lips.push_back(v4_addr((198u << 24) | (19u << 16) | (2u << 8) | (100u + l)));
      pools.push_back(
          std::make_unique<sa::sa_pool>(lips.back(), plan->port_low(), plan->port_high(), 16, sa::flow_of(*plan, 0)));
    }
    for (int r = 0; r < n_rs; ++r)
      servers.push_back(endpoint{v4_addr((198u << 24) | (19u << 16) | (3u << 8) | (1u + r)), 80});
    tbl = static_cast<list_head*>(rte_malloc("dpvs_conn_tbl", sizeof(list_head) << tbl_bits, 64));
    wheel = static_cast<list_head*>(rte_malloc("dpvs_timer", sizeof(list_head) * slots, 64));
    if (tbl == nullptr || wheel == nullptr) throw std::runtime_error("rte_malloc");
    for (std::uint32_t i = 0; i < (1u << tbl_bits); ++i) sa::list_init(&tbl[i]);
    for (std::uint32_t i = 0; i < slots; ++i) sa::list_init(&wheel[i]);
    static int instance = 0;
    const std::string name = "dpvs_conns_" + std::to_string(instance++);
    mp = rte_mempool_create(name.c_str(), static_cast<unsigned>(capacity), sizeof(conn), 256, 0, nullptr, nullptr,
                            nullptr, nullptr, SOCKET_ID_ANY, 0);
    if (mp == nullptr) throw std::runtime_error("rte_mempool_create");
    rnd = static_cast<std::uint32_t>(std::random_device{}());
  }
  ~lcore() {
    rte_mempool_free(mp);
    rte_free(tbl);
    rte_free(wheel);
  }
  lcore(const lcore&) = delete;
  lcore& operator=(const lcore&) = delete;

  list_head* bucket(const inet_tuple& t) const noexcept {
    const std::uint32_t ports = static_cast<std::uint32_t>(t.sport) << 16 | t.dport;
    return &tbl[rte_jhash_3words(word_of(t.saddr), word_of(t.daddr), ports, rnd) & ((1u << tbl_bits) - 1)];
  }
  void schedule(conn& c) noexcept {
    c.expire = now + c.timeout;
    sa::list_add_tail(&c.timer, &wheel[c.expire & (slots - 1)]);
  }
  void free_conn(conn& c) noexcept {
    sa::list_del(&c.th[0].list);
    sa::list_del(&c.th[1].list);
    (void)pools[c.lip_index]->release(c.dest, c.lport);
    rte_mempool_put(mp, &c);
    --live;
  }

  conn* open(const inet_tuple& in, const endpoint& dest, std::uint64_t timeout) noexcept {
    void* obj = nullptr;
    if (rte_mempool_get(mp, &obj) != 0) {
      ++refused;
      return nullptr;
    }
    conn& c = *static_cast<conn*>(obj);
    // The LIPs in turn; the next one when a LIP's bucket for this server is exhausted.
    std::size_t k = 0;
    sa::sa_fetch_result r{fnat::errc::exhausted, 0};
    for (; k < lips.size(); ++k) {
      r = pools[(rr + k) % lips.size()]->fetch(dest);
      if (r.status == fnat::errc::ok) break;
    }
    if (r.status != fnat::errc::ok) {
      rte_mempool_put(mp, obj);
      ++refused;
      return nullptr;
    }
    c.lip_index = static_cast<std::uint16_t>((rr + k) % lips.size());
    rr = c.lip_index + 1u;
    c.laddr = lips[c.lip_index];
    c.lport = r.port;
    c.dest = dest;
    c.state = 0;
    c.th[0] = tuplehash{{}, &c, 0, in};
    c.th[1] = tuplehash{{}, &c, 1, make_tuple(ipproto::tcp, dest.addr, dest.port, c.laddr, r.port)};
    list_add_head(&c.th[0].list, bucket(c.th[0].tuple));
    list_add_head(&c.th[1].list, bucket(c.th[1].tuple));
    c.timeout = timeout;
    schedule(c);
    ++live;
    return &c;
  }
  tuplehash* lookup(const inet_tuple& t) const noexcept {
    list_head* h = bucket(t);
    for (list_head* e = h->next; e != h; e = e->next) {
      auto* th = reinterpret_cast<tuplehash*>(e);  // the link first, as DPVS's list_entry
      if (th->tuple == t) return th;
    }
    return nullptr;
  }
  // Every packet: DPVS re-schedules the conn's timer (unlink, link into the slot of now + timeout).
  void refresh(conn& c) noexcept {
    sa::list_del(&c.timer);
    schedule(c);
  }
  void close(conn& c) noexcept {
    sa::list_del(&c.timer);
    free_conn(c);
  }
  // One tick: the slot's entries whose deadline has come expire; the others wait for their round.
  void advance() noexcept {
    ++now;
    list_head* slot = &wheel[now & (slots - 1)];
    for (list_head* e = slot->next; e != slot;) {
      list_head* next = e->next;
      conn* c = reinterpret_cast<conn*>(reinterpret_cast<char*>(e) - offsetof(conn, timer));
      if (c->expire <= now) {
        sa::list_del(e);
        free_conn(*c);
        ++expired;
      }
      e = next;
    }
  }
};
static_assert(std::is_standard_layout_v<tuplehash> && std::is_standard_layout_v<conn>);

}  // namespace dpvs_like

template <ending End>
void bm_lifecycle_dpvs(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const auto packets = static_cast<int>(state.range(1));
  std::unique_ptr<dpvs_like::lcore> lc;
  try {
    lc = std::make_unique<dpvs_like::lcore>(live + 64 * 1024);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::deque<dpvs_like::conn*> open;
  std::uint64_t next = 0;
  constexpr std::uint64_t per_tick = 1024;
  const std::uint64_t timeout = End == ending::expire ? live / per_tick : 1u << 30;
  auto one = [&]() {
    const inet_tuple in = client_of(next);
    dpvs_like::conn* c = lc->open(in, lc->servers[next % n_rs], timeout);
    ++next;
    if (c == nullptr) return false;
    for (int k = 0; k < packets; ++k) {
      dpvs_like::tuplehash* th = lc->lookup(c->th[k & 1].tuple);
      benchmark::DoNotOptimize(std::as_const(th));
      lc->refresh(*th->owner);
    }
    if constexpr (End == ending::close) {
      open.push_back(c);
      if (open.size() > live) {
        lc->close(*open.front());
        open.pop_front();
      }
    } else {
      if (next % per_tick == 0) lc->advance();
    }
    return true;
  };
  for (std::size_t i = 0; i < live + per_tick; ++i)
    if (!one()) {
      state.SkipWithError("open refused during warm-up");
      return;
    }
  const std::uint64_t expired0 = lc->expired;
  for (auto _ : state)
    if (!one()) {
      state.SkipWithError("open refused");
      break;
    }
  state.SetItemsProcessed(state.iterations());
  state.counters["live"] = static_cast<double>(lc->live);
  state.counters["refused"] = static_cast<double>(lc->refused);
  state.counters["expired_per_conn"] =
      static_cast<double>(lc->expired - expired0) / static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
  // Back to empty before the pools go (the mempool and tables are freed with the lcore).
  for (auto* c : open) lc->close(*c);
}

void lifecycle_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"live", "packets"});
  for (long live : {65536L, 1048576L}) b->Args({live, 4});
}

BENCHMARK(bm_lifecycle<ending::close>)->Name("session_lifecycle/fnat/close")->Apply(lifecycle_args);
BENCHMARK(bm_lifecycle<ending::expire>)->Name("session_lifecycle/fnat/expire")->Apply(lifecycle_args);
BENCHMARK(bm_lifecycle_dpvs<ending::close>)->Name("session_lifecycle/dpvs/close")->Apply(lifecycle_args);
BENCHMARK(bm_lifecycle_dpvs<ending::expire>)->Name("session_lifecycle/dpvs/expire")->Apply(lifecycle_args);

}  // namespace
