// SPDX-License-Identifier: BSD-3-Clause
// Redirect to the owner lcore: routing, staging, full rings and counters with fake rings; then under
// EAL with real rings, four lcores and a net_ring port, packets injected on the wrong lcore's queue
// reach their owner, are counted, and none is lost or leaked.
#include <fnat/dpdk/redirect.hpp>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "support/eal.hpp"

using fnat::errc;
using fnat::lcore_queue;
using fnat::port_plan;

namespace {

// ---- fake rings: the Ops seam ---------------------------------------------------------------------

struct fake_ring {
  std::deque<rte_mbuf*> q;
  unsigned capacity = 0;
  std::string name;
  int socket = 0;
};

struct fake_ops {
  using ring_type = fake_ring;
  static constexpr std::size_t max_name = 29;
  static inline std::vector<rte_mbuf*> freed;
  static inline std::vector<fake_ring*> live;
  static inline int fail_after = -1;  // create fails once this many rings exist
  static inline unsigned enqueue_calls = 0;

  static fake_ring* create(const char* name, unsigned capacity, int socket) noexcept {
    if (fail_after >= 0 && static_cast<int>(live.size()) >= fail_after) return nullptr;
    auto* r = new fake_ring{{}, capacity, name, socket};
    live.push_back(r);
    return r;
  }
  static void destroy(fake_ring* r) noexcept {
    live.erase(std::find(live.begin(), live.end(), r));
    delete r;
  }
  static unsigned enqueue(fake_ring* r, rte_mbuf* const* pkts, unsigned n) noexcept {
    ++enqueue_calls;
    unsigned k = 0;
    for (; k < n && r->q.size() < r->capacity; ++k) r->q.push_back(pkts[k]);
    return k;
  }
  static unsigned dequeue(fake_ring* r, rte_mbuf** pkts, unsigned n) noexcept {
    unsigned k = 0;
    for (; k < n && !r->q.empty(); ++k) {
      pkts[k] = r->q.front();
      r->q.pop_front();
    }
    return k;
  }
  static unsigned count(const fake_ring* r) noexcept { return static_cast<unsigned>(r->q.size()); }
  static void free_mbufs(rte_mbuf* const* pkts, unsigned n) noexcept { freed.insert(freed.end(), pkts, pkts + n); }
  static int socket_of(unsigned lcore) noexcept { return static_cast<int>(lcore % 2); }
  static std::string last_error() { return "fake ring refused"; }

  static void reset() {
    freed.clear();
    fail_after = -1;
    enqueue_calls = 0;
  }
};

using fake_redirect = fnat::dpdk::basic_redirect<fake_ops>;

port_plan plan_of(std::size_t n, unsigned class_bits) {
  std::vector<lcore_queue> l;
  for (std::size_t i = 0; i < n; ++i) l.push_back({static_cast<unsigned>(10 + i), static_cast<std::uint16_t>(i)});
  auto p = port_plan::make({.lcores = l, .class_bits = class_bits});
  REQUIRE(p);
  return *p;
}

// Fake packets: real (zeroed) mbuf structs the fake rings only pass around; lport by position.
struct fake_packets {
  std::vector<rte_mbuf> store;
  std::vector<std::optional<std::uint16_t>> lport;
  explicit fake_packets(std::size_t n) : store(n), lport(n) {}
  rte_mbuf* at(std::size_t i) { return &store[i]; }
  std::optional<std::uint16_t> lport_of(const rte_mbuf* m) const { return lport[static_cast<std::size_t>(m - store.data())]; }
};

// ---- packets for the EAL tests ----------------------------------------------------------------------

constexpr std::size_t l4_off = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);

// Ethernet / IPv4 / TCP or UDP from 198.19.0.1:80 to 198.18.0.1:lport, sequence number as payload.
rte_mbuf* make_reply(rte_mempool* pool, std::uint16_t lport, std::uint32_t seq, bool udp) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  REQUIRE(m != nullptr);
  const std::size_t l4_len = udp ? sizeof(rte_udp_hdr) : sizeof(rte_tcp_hdr);
  auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(l4_off + l4_len + 4)));
  REQUIRE(p != nullptr);
  std::memset(p, 0, l4_off + l4_len + 4);
  rte_ether_hdr eth{};
  eth.ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  std::memcpy(p, &eth, sizeof eth);
  rte_ipv4_hdr ip{};
  ip.version_ihl = 0x45;
  ip.total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(sizeof ip + l4_len + 4));
  ip.time_to_live = 64;
  ip.next_proto_id = udp ? IPPROTO_UDP : IPPROTO_TCP;
  ip.src_addr = rte_cpu_to_be_32(RTE_IPV4(198, 19, 0, 1));
  ip.dst_addr = rte_cpu_to_be_32(RTE_IPV4(198, 18, 0, 1));
  std::memcpy(p + sizeof eth, &ip, sizeof ip);
  const std::uint16_t sport = rte_cpu_to_be_16(80), dport = rte_cpu_to_be_16(lport);
  std::memcpy(p + l4_off, &sport, 2);
  std::memcpy(p + l4_off + 2, &dport, 2);
  std::memcpy(p + l4_off + l4_len, &seq, 4);
  return m;
}

// An ARP-typed frame: not a reply to a local port, stays on the lcore that received it.
rte_mbuf* make_other(rte_mempool* pool, std::uint32_t seq) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  REQUIRE(m != nullptr);
  auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, 64));
  REQUIRE(p != nullptr);
  std::memset(p, 0, 64);
  const std::uint16_t type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
  std::memcpy(p + 12, &type, 2);
  std::memcpy(p + 60, &seq, 4);
  return m;
}

// The destination port of an IPv4 TCP/UDP frame (host order), nullopt for anything else.
std::optional<std::uint16_t> reply_lport(const rte_mbuf* m) noexcept {
  const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
  if (rte_pktmbuf_data_len(m) < l4_off + 4) return std::nullopt;
  std::uint16_t type;
  std::memcpy(&type, p + 12, 2);
  if (type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return std::nullopt;
  const std::uint8_t proto = p[sizeof(rte_ether_hdr) + 9];
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return std::nullopt;
  std::uint16_t dport;
  std::memcpy(&dport, p + l4_off + 2, 2);
  return rte_be_to_cpu_16(dport);
}

std::uint32_t seq_of(const rte_mbuf* m) {
  const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
  std::uint32_t seq;
  if (!reply_lport(m)) {
    std::memcpy(&seq, p + 60, 4);
  } else {
    const std::uint8_t proto = p[sizeof(rte_ether_hdr) + 9];
    std::memcpy(&seq, p + l4_off + (proto == IPPROTO_UDP ? sizeof(rte_udp_hdr) : sizeof(rte_tcp_hdr)), 4);
  }
  return seq;
}

// ---- the lcore loop of the EAL test --------------------------------------------------------------

struct loop_context {
  fnat::dpdk::redirect* redirect = nullptr;
  std::uint16_t port_id = 0;
  std::vector<unsigned> lcore_ids;           // plan order
  std::vector<std::atomic<int>>* delivered;  // seq -> times delivered
  std::vector<int> expected_index;           // seq -> plan index that must end up with it
  std::atomic<std::uint32_t> done{0};
  std::atomic<std::uint32_t> wrong_lcore{0};
  std::uint32_t total = 0;
  std::atomic<bool> stop{false};
};

int lcore_loop(void* arg) {
  auto& ctx = *static_cast<loop_context*>(arg);
  const unsigned self = rte_lcore_id();
  const auto it = std::find(ctx.lcore_ids.begin(), ctx.lcore_ids.end(), self);
  if (it == ctx.lcore_ids.end()) return -1;
  const std::size_t me = static_cast<std::size_t>(it - ctx.lcore_ids.begin());
  const std::uint16_t queue = static_cast<std::uint16_t>(me);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  rte_mbuf* pkts[32];
  auto consume = [&](rte_mbuf* m) {
    const std::uint32_t seq = seq_of(m);
    if (seq < ctx.expected_index.size()) {
      if (ctx.expected_index[seq] != static_cast<int>(me)) ctx.wrong_lcore.fetch_add(1);
      (*ctx.delivered)[seq].fetch_add(1);
    }
    rte_pktmbuf_free(m);
    ctx.done.fetch_add(1);
  };
  while (!ctx.stop.load() && ctx.done.load() < ctx.total && std::chrono::steady_clock::now() < deadline) {
    const std::uint16_t n = rte_eth_rx_burst(ctx.port_id, queue, pkts, 32);
    const unsigned kept = ctx.redirect->dispatch(me, pkts, n, reply_lport);
    for (unsigned i = 0; i < kept; ++i) consume(pkts[i]);
    const unsigned got = ctx.redirect->drain(me, pkts, 32);
    for (unsigned i = 0; i < got; ++i) consume(pkts[i]);
    if (n == 0 && got == 0) std::this_thread::yield();
  }
  return 0;
}

}  // namespace

// ---- fake rings -----------------------------------------------------------------------------------

TEST_CASE("dispatch keeps own packets in order and hands the others to their owners", "[redirect]") {
  fake_ops::reset();
  const port_plan plan = plan_of(4, 4);  // 16 classes, class c -> lcore c % 4
  auto r = fake_redirect::make(plan, {.name = "t", .capacity = 1000, .stage = 8});
  REQUIRE(r);
  REQUIRE(fake_ops::live.size() == 4);
  CHECK(fake_ops::live[3]->name == "t_3");
  CHECK(fake_ops::live[3]->socket == 13 % 2);  // the owner lcore's socket
  std::mt19937 rng(3);
  fake_packets fp(200);
  std::vector<rte_mbuf*> burst;
  for (std::size_t i = 0; i < 200; ++i) {
    if (i % 17 == 0) fp.lport[i] = std::nullopt;
    else fp.lport[i] = static_cast<std::uint16_t>(1025 + rng() % 64000);
    burst.push_back(fp.at(i));
  }
  const std::size_t me = 1;
  const unsigned kept =
      r->dispatch(me, burst.data(), static_cast<unsigned>(burst.size()), [&](rte_mbuf* m) { return fp.lport_of(m); });
  std::vector<rte_mbuf*> want_kept;
  std::vector<std::vector<rte_mbuf*>> want(4);
  for (std::size_t i = 0; i < 200; ++i) {
    const std::size_t owner = fp.lport[i] ? plan.class_owner(*fp.lport[i]) : me;
    CHECK(r->owner_of(fp.lport[i].value_or(0)) == plan.class_owner(fp.lport[i].value_or(0)));
    (owner == me ? want_kept : want[owner]).push_back(fp.at(i));
  }
  REQUIRE(kept == want_kept.size());
  CHECK(std::equal(want_kept.begin(), want_kept.end(), burst.begin()));  // arrival order
  for (std::size_t o = 0; o < 4; ++o) {
    INFO("owner " << o);
    CHECK(std::vector<rte_mbuf*>(fake_ops::live[o]->q.begin(), fake_ops::live[o]->q.end()) == want[o]);
    CHECK(r->pending(o) == want[o].size());
  }
  const auto c = r->counters(me);
  CHECK(c.redirected_out == 200 - kept);
  CHECK(c.dropped == 0);
  CHECK(r->total().redirected_in == 0);
  // Stage of 8: ~50 packets per owner leave in batches, not one enqueue per packet.
  CHECK(fake_ops::enqueue_calls <= 3 * (200 / 8 + 1));
  // Owners drain in order and count what they got.
  for (std::size_t o = 0; o < 4; ++o) {
    std::vector<rte_mbuf*> got(300);
    const unsigned n = r->drain(o, got.data(), 300);
    got.resize(n);
    CHECK(got == want[o]);
    CHECK(r->counters(o).redirected_in == want[o].size());
  }
  const auto t = r->total();
  CHECK(t.redirected_out == t.redirected_in);
  CHECK(fake_ops::freed.empty());
}

TEST_CASE("without a plan: dispatch_to_owner follows any owner function, one enqueue per owner per burst",
          "[redirect]") {
  fake_ops::reset();
  // Five lcores with ids unrelated to their queues, no port plan: the owner comes from the caller
  // (here an arbitrary table, as an RSS RETA or a LIP-per-lcore map would give).
  const std::vector<lcore_queue> lcores = {{7, 4}, {3, 0}, {9, 2}, {4, 1}, {12, 3}};
  auto r = fake_redirect::make(std::span<const lcore_queue>(lcores), {.name = "own", .capacity = 1000, .stage = 64});
  REQUIRE(r);
  CHECK_FALSE(r->has_plan());
  REQUIRE(fake_ops::live.size() == 5);
  CHECK(fake_ops::live[4]->socket == 12 % 2);  // ring i on lcores[i]'s socket
  fake_packets fp(150);
  std::vector<rte_mbuf*> burst;
  std::vector<std::size_t> owner(150);
  std::mt19937 rng(11);
  for (std::size_t i = 0; i < 150; ++i) {
    // npos and out-of-range owners (not a reply, nobody's) stay where they arrived.
    owner[i] = i % 13 == 0 ? fnat::port_plan::npos : i % 29 == 0 ? 5 : rng() % 5;
    burst.push_back(fp.at(i));
  }
  const std::size_t me = 2;
  const unsigned kept = r->dispatch_to_owner(me, burst.data(), 150, [&](rte_mbuf* m) {
    return owner[static_cast<std::size_t>(m - fp.store.data())];
  });
  std::vector<rte_mbuf*> want_kept;
  std::vector<std::vector<rte_mbuf*>> want(5);
  for (std::size_t i = 0; i < 150; ++i)
    (owner[i] == me || owner[i] >= 5 ? want_kept : want[owner[i]]).push_back(fp.at(i));
  REQUIRE(kept == want_kept.size());
  CHECK(std::equal(want_kept.begin(), want_kept.end(), burst.begin()));
  std::size_t others = 0;
  for (std::size_t o = 0; o < 5; ++o) {
    INFO("owner " << o);
    CHECK(std::vector<rte_mbuf*>(fake_ops::live[o]->q.begin(), fake_ops::live[o]->q.end()) == want[o]);
    others += o == me ? 0 : 1;
  }
  CHECK(fake_ops::enqueue_calls == others);  // stage 64 > packets per owner: exactly one enqueue each
  CHECK(r->counters(me).redirected_out == 150 - kept);
  CHECK(fake_redirect::make(std::span<const lcore_queue>(), {}).err().code() == errc::invalid_argument);
}

TEST_CASE("a full ring: handoff frees and counts the excess, try_handoff gives it back", "[redirect]") {
  fake_ops::reset();
  const port_plan plan = plan_of(3, 0);
  auto r = fake_redirect::make(plan, {.name = "full", .capacity = 5, .stage = 4});
  REQUIRE(r);
  fake_packets fp(20);
  std::vector<rte_mbuf*> pkts;
  for (std::size_t i = 0; i < 20; ++i) pkts.push_back(fp.at(i));
  CHECK(r->handoff(0, 2, pkts.data(), 8) == 5);
  CHECK(fake_ops::freed == std::vector<rte_mbuf*>(pkts.begin() + 5, pkts.begin() + 8));
  auto c = r->counters(0);
  CHECK(c.redirected_out == 5);
  CHECK(c.dropped == 3);
  CHECK(r->try_handoff(1, 2, pkts.data() + 8, 4) == 0);  // the caller keeps all four
  CHECK(fake_ops::freed.size() == 3);
  CHECK(r->counters(1).dropped == 0);
  CHECK(r->counters(1).redirected_out == 0);
  // dispatch on a full ring: staged packets that do not fit are dropped and counted, never blocked on.
  for (std::size_t i = 12; i < 20; ++i) fp.lport[i] = static_cast<std::uint16_t>(3 * 100 + 2);  // owner 2
  const unsigned kept = r->dispatch(0, pkts.data() + 12, 8, [&](rte_mbuf* m) { return fp.lport_of(m); });
  CHECK(kept == 0);
  CHECK(r->counters(0).dropped == 3 + 8);
  CHECK(fake_ops::freed.size() == 3 + 8);
}

TEST_CASE("the destructor frees packets left in rings and the rings, and make() reports failures", "[redirect]") {
  fake_ops::reset();
  fake_packets fp(6);
  {
    auto r = fake_redirect::make(plan_of(2, 0), {.name = "gone"});
    REQUIRE(r);
    std::vector<rte_mbuf*> pkts = {fp.at(0), fp.at(1), fp.at(2)};
    REQUIRE(r->handoff(0, 1, pkts.data(), 3) == 3);
    fake_redirect moved = std::move(*r);  // the moved-from object owns nothing
    CHECK(moved.pending(1) == 3);
  }
  CHECK(fake_ops::live.empty());
  CHECK(fake_ops::freed.size() == 3);

  fake_ops::reset();
  fake_ops::fail_after = 2;
  auto bad = fake_redirect::make(plan_of(4, 0), {.name = "x"});
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code() == errc::device_error);
  CHECK(bad.err().message().find("x_2") != std::string::npos);
  CHECK(fake_ops::live.empty());  // the two rings made before are freed
  fake_ops::reset();
  CHECK(fake_redirect::make(plan_of(2, 0), {.capacity = 0}).err().code() == errc::invalid_argument);
  CHECK(fake_redirect::make(plan_of(2, 0), {.stage = 0}).err().code() == errc::invalid_argument);
  auto long_name = fake_redirect::make(plan_of(2, 0), {.name = std::string(40, 'n')});
  REQUIRE_FALSE(long_name);
  CHECK(long_name.err().message().find("shorter") != std::string::npos);
}

// ---- EAL ----------------------------------------------------------------------------------------

TEST_CASE("packets injected on the wrong lcore's queue reach the owner over its ring, counted, none lost",
          "[redirect][eal]") {
  fnat::test::require_eal();
  rte_mempool* pool = fnat::test::mbuf_pool();
  const unsigned avail_before = rte_mempool_avail_count(pool);
  std::vector<unsigned> ids = {rte_get_main_lcore()};
  unsigned w;
  RTE_LCORE_FOREACH_WORKER(w) ids.push_back(w);
  REQUIRE(ids.size() >= 2);
  const std::size_t n = ids.size();
  std::vector<lcore_queue> lq;
  for (std::size_t i = 0; i < n; ++i) lq.push_back({ids[i], static_cast<std::uint16_t>(i)});
  auto plan = port_plan::make({.lcores = lq, .class_bits = 5});  // not a power of n when n = 3
  REQUIRE(plan);
  fnat::test::ring_port port("redir_wrong", static_cast<std::uint16_t>(n), 1024);
  auto red = fnat::dpdk::redirect::make(*plan, {.name = "t_redir", .capacity = 1024});
  REQUIRE(red);

  // 600 packets per queue: a quarter on the owner's own queue, some not replies at all (they stay
  // where they arrive), the rest on a wrong queue.
  loop_context ctx;
  ctx.redirect = &*red;
  ctx.port_id = port.port_id();
  ctx.lcore_ids = ids;
  std::mt19937 rng(17);
  const std::uint32_t per_queue = 600;
  std::vector<std::vector<rte_mbuf*>> inject(n);
  std::uint32_t wrong = 0;
  std::vector<std::uint64_t> wrong_for(n, 0);
  std::uint32_t seq = 0;
  while (seq < per_queue * n) {
    const std::uint16_t lport = static_cast<std::uint16_t>(1025 + rng() % 64000);
    const std::size_t owner = plan->owner_index(lport);
    const int kind = static_cast<int>(rng() % 8);
    std::size_t q;
    rte_mbuf* m;
    if (kind == 0) {  // not a reply: stays on the queue it arrives on
      q = rng() % n;
      m = make_other(pool, seq);
      ctx.expected_index.push_back(static_cast<int>(q));
    } else {
      q = kind <= 2 ? owner : (owner + 1 + rng() % (n - 1)) % n;
      m = make_reply(pool, lport, seq, kind % 2 == 0);
      ctx.expected_index.push_back(static_cast<int>(owner));
      if (q != owner) {
        ++wrong;
        ++wrong_for[owner];
      }
    }
    if (inject[q].size() == 1000) {  // rx ring full: skip this one
      rte_pktmbuf_free(m);
      ctx.expected_index.pop_back();
      if (kind != 0 && q != owner) {
        --wrong;
        --wrong_for[owner];
      }
      continue;
    }
    inject[q].push_back(m);
    ++seq;
  }
  ctx.total = seq;
  std::vector<std::atomic<int>> delivered(seq);
  ctx.delivered = &delivered;
  for (std::size_t q = 0; q < n; ++q)
    REQUIRE(rte_ring_enqueue_bulk(port.rx_ring(static_cast<std::uint16_t>(q)),
                                  reinterpret_cast<void* const*>(inject[q].data()),
                                  static_cast<unsigned>(inject[q].size()), nullptr) == inject[q].size());

  for (std::size_t i = 1; i < n; ++i) REQUIRE(rte_eal_remote_launch(lcore_loop, &ctx, ids[i]) == 0);
  lcore_loop(&ctx);
  ctx.stop = true;
  rte_eal_mp_wait_lcore();

  CHECK(ctx.done.load() == seq);
  CHECK(ctx.wrong_lcore.load() == 0);
  std::uint32_t missing = 0, twice = 0;
  for (auto& d : delivered) {
    missing += d.load() == 0 ? 1 : 0;
    twice += d.load() > 1 ? 1 : 0;
  }
  CHECK(missing == 0);
  CHECK(twice == 0);
  const auto t = red->total();
  CHECK(t.redirected_out == wrong);
  CHECK(t.redirected_in == wrong);
  CHECK(t.dropped == 0);
  for (std::size_t i = 0; i < n; ++i) {
    INFO("lcore index " << i);
    CHECK(red->counters(i).redirected_in == wrong_for[i]);
    CHECK(red->pending(i) == 0);
  }
  CHECK(rte_mempool_avail_count(pool) == avail_before);  // every mbuf came back
}

TEST_CASE("a real ring full: counted drops, freed mbufs, nothing leaked (destructor included)", "[redirect][eal]") {
  fnat::test::require_eal();
  rte_mempool* pool = fnat::test::mbuf_pool();
  const unsigned avail_before = rte_mempool_avail_count(pool);
  auto plan = port_plan::make({.lcores = {{rte_get_main_lcore(), 0}, {rte_get_main_lcore() + 100, 1}}});
  REQUIRE(plan);  // the second "lcore" is not an EAL lcore: its ring goes on any socket
  {
    auto red = fnat::dpdk::redirect::make(*plan, {.name = "t_full", .capacity = 64});
    REQUIRE(red);
    std::vector<rte_mbuf*> pkts;
    for (std::uint32_t i = 0; i < 100; ++i) pkts.push_back(make_reply(pool, 1025, i, false));
    CHECK(red->handoff(0, 1, pkts.data(), 100) == 64);
    CHECK(red->counters(0).dropped == 36);
    CHECK(red->counters(0).redirected_out == 64);
    CHECK(rte_mempool_avail_count(pool) == avail_before - 64);  // the 36 dropped are back
    std::vector<rte_mbuf*> out(64);
    CHECK(red->drain(1, out.data(), 64) == 64);
    CHECK(red->counters(1).redirected_in == 64);
    for (std::uint32_t i = 0; i < 64; ++i) CHECK(seq_of(out[i]) == i);  // FIFO
    rte_pktmbuf_free_bulk(out.data(), 64);
    CHECK(rte_mempool_avail_count(pool) == avail_before);
    // Left in the ring at destruction: freed by the redirect.
    for (std::uint32_t i = 0; i < 10; ++i) pkts[i] = make_reply(pool, 1025, i, true);
    CHECK(red->handoff(0, 1, pkts.data(), 10) == 10);
    // A second redirect with the same ring names cannot be made while this one lives.
    auto clash = fnat::dpdk::redirect::make(*plan, {.name = "t_full", .capacity = 64});
    REQUIRE_FALSE(clash);
    CHECK(clash.err().code() == errc::device_error);
  }
  CHECK(rte_mempool_avail_count(pool) == avail_before);
  // The names are free again.
  auto again = fnat::dpdk::redirect::make(*plan, {.name = "t_full", .capacity = 64});
  CHECK(again);
}
