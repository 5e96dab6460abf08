// SPDX-License-Identifier: BSD-3-Clause
// The library's FullNAT datapath, one lcore's step on in-memory mbuf bursts (no I/O): what a worker
// built from fnat's public headers spends per packet. Everything here is a library call in the
// order an application's rx loop makes them (docs/WIRING.md): dpdk::parse, verify_ip_checksum, the
// port plan's owner check for a reply, session_table::lookup_bulk (prefetch-staged), tcp_transition
// and session_table::set_state (the lazy idle timer), a scheduler pick and session_table::open for a
// first packet (port fetch, conn object, both tuples, timer), dpdk::rewrite (incremental checksums),
// neighbour_cache::resolve, the Ethernet addresses, a tx buffer.
//
//   pipeline_established/fnat/<family>/<dir>   bursts of 32 packets of live conns (1M sessions in the
//                                              table), inbound (client -> VIP) or outbound
//                                              (RS -> LIP:lport)
//   pipeline_new_conn/fnat/<family>/<end>      the whole life of 32 new connections per iteration in
//                                              steady state: SYN (lookup miss, service, scheduler,
//                                              session open, rewrite, tx), 4 more packets each way
//                                              by turns, and the teardown on the clock: <end> =
//                                              close (at the reset) or expire (the timer wheel
//                                              advancing); see lifecycle() below
//   .../io_fwd/...                             the same bursts through parse + MAC swap + tx: the
//                                              floor any DPDK forwarding app pays (testpmd's
//                                              io/macswap forwarding with a parse)
// Every iteration first copies the burst's template frames into its mbufs (the datapath rewrites
// them in place), for fnat and io_fwd alike, and the tx "queue" is a sink that hands the mbufs back.
// items_per_second counts packets.
//
// What an application such as examples/fnat_lb adds per packet and this does not: its service map
// (here two services compared in place), its route lookup towards a client (here one gateway per
// family), its per-reason counters, ICMP / fragment / ARP branches (not taken by these packets).
// Until fnat 2026-12 this binary compiled fnat_lb's worker itself; the figures of that binary are the
// "before" of issue 16's comparison.
#include <benchmark/benchmark.h>
#include <rte_dev.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fnat/core/checksum.hpp>
#include <fnat/core/conn_state.hpp>
#include <fnat/core/headers.hpp>
#include <fnat/core/neighbour.hpp>
#include <fnat/core/port_plan.hpp>
#include <fnat/core/sa_pool.hpp>
#include <fnat/core/scheduler.hpp>
#include <fnat/core/session_table.hpp>
#include <fnat/dpdk/memory.hpp>
#include <fnat/dpdk/packet.hpp>
#include <fnat/dpdk/rx_checksum.hpp>

namespace {

using namespace fnat;

constexpr std::size_t burst = 32;
constexpr std::size_t live_conns = 1'000'000;
// Table capacity: the live conns plus the connections pipeline_new_conn has in flight, 2^20.
constexpr std::size_t capacity = std::size_t{1} << 20;
constexpr int n_rs = 32;
constexpr int n_lips = 8;

// ---- frames ------------------------------------------------------------------------------------

// A TCP frame with valid checksums (the balancer updates them incrementally; validity keeps the
// arithmetic honest, not the cost).
std::vector<std::uint8_t> tcp_frame(const fnat::inet_addr& src, std::uint16_t sport, const fnat::inet_addr& dst,
                                    std::uint16_t dport, std::uint8_t flags, std::size_t payload) {
  const bool v4 = src.is_v4();
  const std::size_t l3 = v4 ? 20 : 40, l4 = 20;
  std::vector<std::uint8_t> f(14 + l3 + l4 + payload, 0);
  f[0] = 0x02;
  f[6] = 0x02;
  f[11] = 1;
  f[12] = v4 ? 0x08 : 0x86;
  f[13] = v4 ? 0x00 : 0xdd;
  std::uint8_t* ip = f.data() + 14;
  if (v4) {
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<std::uint16_t>(l3 + l4 + payload));
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = ipproto::tcp;
    std::memcpy(ip + 12, src.raw().data() + 12, 4);
    std::memcpy(ip + 16, dst.raw().data() + 12, 4);
  } else {
    ip[0] = 0x60;
    store_be16(ip + 4, static_cast<std::uint16_t>(l4 + payload));
    ip[6] = ipproto::tcp;
    ip[7] = 64;
    std::memcpy(ip + 8, src.raw().data(), 16);
    std::memcpy(ip + 24, dst.raw().data(), 16);
  }
  std::uint8_t* tcp = ip + l3;
  store_be16(tcp, sport);
  store_be16(tcp + 2, dport);
  tcp[12] = 0x50;
  tcp[13] = flags;
  store_be16(tcp + 14, 0xffff);
  packet_info info;
  (void)parse(f, info);
  if (v4) store<std::uint16_t>(ip + 10, internet_checksum({ip, 20}));
  store<std::uint16_t>(tcp + 16, 0);
  const std::uint16_t sum = csum_add(raw_sum({tcp, l4 + payload}), l4_pseudo_header_sum(f, info));
  store<std::uint16_t>(tcp + 16, static_cast<std::uint16_t>(~sum));
  return f;
}

// ---- the datapath ----------------------------------------------------------------------------------

struct sink {
  std::size_t taken = 0;
};

std::uint16_t sink_tx(sink& s, rte_mbuf**, std::uint16_t n) {
  s.taken += n;
  return n;  // the mbufs stay with the harness, which owns and reuses them
}

struct tsc_clock {
  [[nodiscard]] std::uint64_t now() const noexcept { return rte_rdtsc(); }
  [[nodiscard]] std::uint64_t frequency() const noexcept { return rte_get_tsc_hz(); }
};
// The library's defaults (hashed_buckets: the fast build) with conn memory from DPDK and the TSC.
struct traits : session_table_traits {
  using allocator = dpdk::rte_allocator<std::byte>;
  using clock = tsc_clock;
};
using sessions_t = session_table<no_payload, traits>;
using pool_t = sa_pool<hashed_buckets, dpdk::rte_allocator<std::byte>>;

fnat::inet_addr A(const std::string& s) { return *fnat::inet_addr::parse(s); }
mac_addr mac_of(int i) { return mac_addr{{0x02, 0xbb, 0, 0, 0, static_cast<std::uint8_t>(i)}}; }

struct service {
  endpoint vip;
  std::vector<endpoint> rss;
  std::optional<any_scheduler> sched;
  std::uint16_t group = 0;
};

// One lcore's FullNAT datapath from library parts.
struct datapath {
  std::optional<port_plan> plan;
  std::vector<std::unique_ptr<pool_t>> pools;
  std::array<sa_pool_rotation<hashed_buckets, dpdk::rte_allocator<std::byte>>, 2> rotations;
  std::optional<sessions_t> sessions;
  std::optional<neighbour_cache<rte_mbuf*>> neigh;
  std::array<service, 2> services;  // IPv4, IPv6
  std::array<fnat::inet_addr, 2> gateway{A("198.18.0.254"), A("2001:2:0:1::fe")};
  std::array<mac_addr, 2> port_mac{mac_addr{{0x02, 0, 0, 0, 0, 1}}, mac_addr{{0x02, 0, 0, 0, 0, 2}}};
  std::array<std::uint64_t, tcp_state_count> tcp_ticks{};
  std::array<rte_mbuf*, 64> txq{};
  std::uint16_t txn = 0;
  sink out;
  std::uint64_t now = 0;
  std::uint64_t forwarded = 0, created = 0, dropped = 0;
  // pipeline_new_conn/.../close: a reset ends the session at once (after it is forwarded) instead
  // of leaving it in CLOSE for the wheel.
  bool close_on_reset = false;
  std::array<packet_info, burst> info;
  std::array<inet_tuple, burst> keys;
  std::array<std::uint16_t, burst> idx;
  std::array<sessions_t::hit, burst> hits;

  [[noreturn]] static void fail(const std::string& why) {
    std::fprintf(stderr, "pipeline_bench: %s\n", why.c_str());
    std::exit(1);
  }
  template <class T>
  static T must(result<T> r, const char* what) {
    if (!r) fail(std::string(what) + ": " + r.err().message());
    return std::move(*r);
  }

  datapath() {
    plan.emplace(must(port_plan::make({.lcores = {{0, 0}}}), "port plan"));
    sessions.emplace(must(sessions_t::make({.capacity = capacity,
                                            .wheel = {.slots = 4096, .tick = std::chrono::milliseconds(10)}},
                                           tsc_clock{}, tuple_hash{}, dpdk::rte_allocator<std::byte>(SOCKET_ID_ANY)),
                          "session table"));
    neigh.emplace(must(neighbour_cache<rte_mbuf*>::make({.capacity = 1024, .ticks_per_second = rte_get_tsc_hz()}),
                       "neighbours"));
    for (int f = 0; f < 2; ++f) {
      const bool v6 = f == 1;
      service& svc = services[f];
      svc.vip = endpoint{A(v6 ? "2001:2:0:3::100" : "198.18.1.100"), 80};
      std::vector<sched_backend> be;
      for (int i = 0; i < n_rs; ++i) {
        const fnat::inet_addr a = A(v6 ? "2001:2:0:2::" + std::to_string(10 + i) : "198.18.2." + std::to_string(10 + i));
        svc.rss.push_back(endpoint{a, 8080});
        be.push_back({.id = hash_bytes(a.raw().data(), 16, 8080), .weight = 1});
        (void)neigh->add_static(a, mac_of(i + 1));
      }
      svc.sched.emplace(must(any_scheduler::make(be, {.kind = scheduler_kind::maglev}), "scheduler"));
      for (int l = 0; l < n_lips; ++l) {
        const fnat::inet_addr lip = A(std::string(v6 ? "2001:2:0:2::" : "198.18.2.") + std::to_string(100 + l));
        auto pol = must(hashed_buckets::make(*plan, 0, {.buckets = 16}), "sa_pool policy");
        pools.push_back(std::make_unique<pool_t>(must(pool_t::make(lip, std::move(pol)), "sa_pool")));
        if (!rotations[f].add(*pools.back())) fail("rotation");
      }
      svc.group = must(sessions->add_group(rotations[f]), "port group");
    }
    (void)neigh->add_static(gateway[0], mac_addr{{0x02, 0xaa, 0, 0, 0, 0xfe}});
    (void)neigh->add_static(gateway[1], mac_addr{{0x02, 0xaa, 0, 0, 0, 0xfd}});
    const conn_timeouts t{};
    for (std::size_t s = 0; s < tcp_state_count; ++s) tcp_ticks[s] = sessions->ticks_for(t.of(static_cast<tcp_state>(s)));
  }

  // In memory the harness owns the mbufs; on a real port (pipeline_pmd) a drop frees its mbuf.
  void drop(rte_mbuf* m) noexcept {
    ++dropped;
    if (tx_port >= 0) rte_pktmbuf_free(m);
  }
  // pipeline_pmd: the DPDK port that sends (the harness's sink otherwise).
  int tx_port = -1;

  void send(rte_mbuf* m, const fnat::inet_addr& next_hop, std::uint16_t port) {
    const neigh_result r = neigh->resolve(next_hop, now, m);
    if (r.rc != errc::ok) return drop(m);
    auto* e = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memcpy(e, r.mac.bytes.data(), 6);
    std::memcpy(e + 6, port_mac[port].bytes.data(), 6);
    txq[txn++] = m;
    ++forwarded;
  }

  bool rewrite_to(rte_mbuf* m, packet_info& pi, const inet_tuple& to) {
    const rewrite_result r = dpdk::rewrite(m, pi, to, checksum_offload{});
    if (!r.ok()) drop(m);
    return r.ok();
  }

  void hit(rte_mbuf* m, packet_info& pi, sessions_t::session_type& s, direction dir) {
    const tcp_state next = tcp_transition(static_cast<tcp_state>(s.state), dir, pi.tcp_flags);
    sessions->set_state(s, static_cast<std::uint8_t>(next), tcp_ticks[static_cast<std::size_t>(next)]);
    if (dir == direction::inbound) {
      if (rewrite_to(m, pi, s.out().reversed())) send(m, s.out().saddr, 1);
    } else {
      if (rewrite_to(m, pi, s.in().reversed())) send(m, gateway[pi.family == ip_family::v6], 0);
    }
    if (close_on_reset && next == tcp_state::close) (void)sessions->close(s);
  }

  void miss(rte_mbuf* m, packet_info& pi) {
    if (const auto h = sessions->lookup(pi.tuple)) return hit(m, pi, *h.conn, h.dir);
    service& svc = services[pi.family == ip_family::v6];
    if (pi.tuple.daddr != svc.vip.addr || pi.tuple.dport != hton16(svc.vip.port) || !pi.is_tcp_syn()) return drop(m);
    // A first packet claims a session: its L4 checksum is checked before anything is spent on it.
    if (dpdk::verify_l4_checksum(m, pi) != drop_reason::none) return drop(m);
    const pick_result pick = svc.sched->pick(hash_bytes(pi.tuple.saddr.raw().data(), 16, pi.tuple.sport));
    if (!pick) return drop(m);
    const tcp_state st = tcp_transition(tcp_state::none, direction::inbound, pi.tcp_flags);
    const auto opened = sessions->open({.in = pi.tuple,
                                        .dest = svc.rss[pick.index],
                                        .group = svc.group,
                                        .state = static_cast<std::uint8_t>(st),
                                        .timeout = tcp_ticks[static_cast<std::size_t>(st)],
                                        .tag = static_cast<std::uint32_t>(pick.index)});
    if (!opened) return drop(m);
    ++created;
    if (rewrite_to(m, pi, opened.session->out().reversed())) send(m, svc.rss[pick.index].addr, 1);
  }

  // One burst received on port `port` (0: clients, 1: real servers).
  void process_burst(std::uint16_t port, rte_mbuf** pkts, std::uint16_t n) {
    now = rte_rdtsc();
    unsigned k = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      packet_info& pi = info[i];
      if (dpdk::parse(pkts[i], pi) != drop_reason::none || dpdk::verify_ip_checksum(pkts[i], pi) != drop_reason::none) {
        drop(pkts[i]);
        continue;
      }
      // A reply to a LIP:lport of another lcore would be handed off (one lcore here: never).
      if (port == 1 && plan->class_owner(ntoh16(pi.tuple.dport)) != 0) {
        drop(pkts[i]);
        continue;
      }
      keys[k] = pi.tuple;
      idx[k++] = i;
    }
    (void)sessions->lookup_bulk({keys.data(), k}, hits.data());
    for (unsigned j = 0; j < k; ++j) {
      if (hits[j])
        hit(pkts[idx[j]], info[idx[j]], *hits[j].conn, hits[j].dir);
      else
        miss(pkts[idx[j]], info[idx[j]]);
    }
    if (tx_port >= 0) {
      const std::uint16_t sent = rte_eth_tx_burst(static_cast<std::uint16_t>(tx_port), 0, txq.data(), txn);
      for (std::uint16_t i = sent; i < txn; ++i) rte_pktmbuf_free(txq[i]);
    } else {
      (void)sink_tx(out, txq.data(), txn);
    }
    txn = 0;
  }
};

// One datapath shared by every benchmark of the binary (building 1M sessions takes a few seconds).
struct pipeline {
  datapath dp;
  std::vector<rte_mbuf*> mbufs;  // burst mbufs, reused
  rte_mempool* pool = nullptr;
  // Templates of established flows: inbound and outbound per family.
  std::vector<std::vector<std::uint8_t>> in4, out4, in6, out6;
  std::uint32_t next_client = 0;

  // Never destroyed: the shared main has run rte_eal_cleanup() before static destructors, and the
  // session table's memory is DPDK's (freeing it then crashed the process at exit, status 139).
  static pipeline& get() {
    static pipeline* p = new pipeline();
    return *p;
  }

  pipeline() {
    pool = rte_pktmbuf_pool_create("pl_bench_mbufs", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (pool == nullptr) datapath::fail("mbuf pool");
    mbufs.resize(burst);
    for (auto& m : mbufs) m = rte_pktmbuf_alloc(pool);
    // Live sessions: half IPv4, half IPv6, opened by SYNs through the datapath, then their outbound
    // templates taken from what it sent.
    for (const bool v6 : {false, true}) {
      std::vector<std::vector<std::uint8_t>> syns;
      for (std::size_t i = 0; i < live_conns / 2; ++i) syns.push_back(syn_of(v6, next_client++));
      auto& in = v6 ? in6 : in4;
      auto& outb = v6 ? out6 : out4;
      for (std::size_t i = 0; i < syns.size(); i += burst) {
        const std::size_t n = std::min(burst, syns.size() - i);
        std::vector<std::vector<std::uint8_t>> sent;
        run(std::span(syns).subspan(i, n), &sent);
        for (std::size_t k = 0; k < n; ++k) {
          // The client's next packet (ACK) and the server's reply to the LIP:lport it was given.
          auto ack = syns[i + k];
          packet_info info;
          (void)parse(ack, info);
          ack[info.l4_off + 13] = tcp_flags::ack;
          in.push_back(std::move(ack));
          packet_info so;
          (void)parse(sent[k], so);
          outb.push_back(tcp_frame(so.tuple.daddr, ntoh16(so.tuple.dport), so.tuple.saddr, ntoh16(so.tuple.sport),
                                   tcp_flags::ack, 64));
        }
      }
    }
    if (dp.created != live_conns || dp.sessions->size() != live_conns) datapath::fail("not every session was opened");
  }

  // A SYN from client number k (198.19.x.y / 2001:2:0:9::x, ports 1024+) to the VIP.
  static std::vector<std::uint8_t> syn_of(bool v6, std::uint32_t k) {
    const std::uint32_t host = k / 16, port = 1024 + k % 16 * 4000 + (k / 16) % 4000;
    char a[64];
    if (v6)
      std::snprintf(a, sizeof a, "2001:2:0:9::%x:%x", host >> 16, host & 0xffff);
    else
      std::snprintf(a, sizeof a, "198.19.%u.%u", (host >> 8) & 0xff, host & 0xff);
    const fnat::inet_addr src = *fnat::inet_addr::parse(a);
    return tcp_frame(src, static_cast<std::uint16_t>(port), *fnat::inet_addr::parse(v6 ? "2001:2:0:3::100" : "198.18.1.100"),
                     80, tcp_flags::syn, 0);
  }

  // Loads frames into the burst mbufs.
  void load(std::span<const std::vector<std::uint8_t>> frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      rte_mbuf* m = mbufs[i];
      rte_pktmbuf_reset(m);
      auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
      std::memcpy(p, frames[i].data(), frames[i].size());
      m->data_len = m->pkt_len = static_cast<std::uint32_t>(frames[i].size());
    }
  }

  // One burst through the datapath (setup only; keeps what it sent when asked).
  void run(std::span<const std::vector<std::uint8_t>> frames, std::vector<std::vector<std::uint8_t>>* sent) {
    load(frames);
    dp.process_burst(0, mbufs.data(), static_cast<std::uint16_t>(frames.size()));
    if (sent != nullptr)
      for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto* p = rte_pktmbuf_mtod(mbufs[i], const std::uint8_t*);
        sent->emplace_back(p, p + rte_pktmbuf_data_len(mbufs[i]));
      }
  }
};

// ---- benchmarks ------------------------------------------------------------------------------------

enum class impl { fnat, io_fwd };

// The io-forward floor: parse, swap the MACs, hand to tx.
void io_forward(pipeline& p, std::size_t n) {
  packet_info info;
  for (std::size_t i = 0; i < n; ++i) {
    rte_mbuf* m = p.mbufs[i];
    if (dpdk::parse(m, info) != drop_reason::none) continue;
    auto* e = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::uint8_t tmp[6];
    std::memcpy(tmp, e, 6);
    std::memcpy(e, e + 6, 6);
    std::memcpy(e + 6, tmp, 6);
  }
  (void)sink_tx(p.dp.out, p.mbufs.data(), static_cast<std::uint16_t>(n));
}

// Frames of random live conns laid out back to back (stride 128 bytes), so that the harness streams
// them sequentially while the balancer's table accesses stay random over the whole live set.
struct frame_stream {
  static constexpr std::size_t stride = 128;
  static constexpr std::size_t count = std::size_t{1} << 19;
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint16_t> lens;
  frame_stream(const std::vector<std::vector<std::uint8_t>>& templates, std::uint64_t seed) : bytes(count * stride), lens(count) {
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < count; ++i) {
      const auto& f = templates[rng() % templates.size()];
      std::memcpy(bytes.data() + i * stride, f.data(), f.size());
      lens[i] = static_cast<std::uint16_t>(f.size());
    }
  }
};

void load_from(pipeline& p, const frame_stream& fs, std::size_t& cursor) {
  for (std::size_t i = 0; i < burst; ++i) {
    const std::size_t k = cursor++ & (frame_stream::count - 1);
    rte_mbuf* m = p.mbufs[i];
    rte_pktmbuf_reset(m);
    std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), fs.bytes.data() + k * frame_stream::stride, frame_stream::stride);
    m->data_len = m->pkt_len = fs.lens[k];
  }
}

void established(benchmark::State& state, impl which, bool v6, bool inbound) {
  pipeline& p = pipeline::get();
  const auto& templates = v6 ? (inbound ? p.in6 : p.out6) : (inbound ? p.in4 : p.out4);
  static std::map<int, std::unique_ptr<frame_stream>> streams;
  auto& fs = streams[v6 * 2 + inbound];
  if (!fs) fs = std::make_unique<frame_stream>(templates, 42 + v6 * 2 + inbound);
  std::size_t cursor = 0;
  const std::uint64_t forwarded0 = p.dp.forwarded;
  const std::uint64_t drops0 = p.dp.dropped;
  for (auto _ : state) {
    load_from(p, *fs, cursor);
    if (which == impl::fnat) {
      p.dp.process_burst(inbound ? 0 : 1, p.mbufs.data(), burst);
    } else {
      io_forward(p, burst);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
  if (which == impl::fnat) {
    const std::uint64_t forwarded = p.dp.forwarded - forwarded0;
    if (forwarded != state.iterations() * burst || p.dp.dropped != drops0)
      state.SkipWithError("the datapath did not forward every packet");
  }
  state.counters["conns"] = static_cast<double>(p.dp.sessions->size());
}

// ---- the connection lifecycle ----------------------------------------------------------------------

// Turns the frame the datapath just sent into the answer of the host it was sent to: addresses and
// ports swapped (neither changes the IPv4 header checksum nor the TCP pseudo-header sum), new TCP
// flags with the TCP checksum updated incrementally (RFC 1624), so the next hop gets a valid packet.
void turn_around(rte_mbuf* m, std::uint8_t flags) noexcept {
  auto* e = rte_pktmbuf_mtod(m, std::uint8_t*);
  std::uint8_t* ip = e + 14;
  std::uint8_t* tcp = nullptr;
  std::uint8_t tmp[16];
  if (e[12] == 0x08) {
    std::memcpy(tmp, ip + 12, 4);
    std::memcpy(ip + 12, ip + 16, 4);
    std::memcpy(ip + 16, tmp, 4);
    tcp = ip + (ip[0] & 0x0f) * 4;
  } else {
    std::memcpy(tmp, ip + 8, 16);
    std::memcpy(ip + 8, ip + 24, 16);
    std::memcpy(ip + 24, tmp, 16);
    tcp = ip + 40;
  }
  std::memcpy(tmp, tcp, 2);
  std::memcpy(tcp, tcp + 2, 2);
  std::memcpy(tcp + 2, tmp, 2);
  const auto from = load<std::uint16_t>(tcp + 12);
  tcp[13] = flags;
  const auto to = load<std::uint16_t>(tcp + 12);
  store<std::uint16_t>(tcp + 16, csum_update16(load<std::uint16_t>(tcp + 16), from, to));
}

enum class teardown { close, expire };
constexpr std::size_t answers_per_conn = 4;  // packets after the SYN

// The whole life of `burst` connections per iteration, every step on the clock, in a table that
// holds the 1M live sessions of pipeline_established: five packets each, as a short HTTP exchange
// ending in a reset:
//   client SYN (open: port fetch, conn, both tuples, timer) -> server SYN|ACK -> client PSH|ACK
//   (the request) -> server PSH|ACK (the response) -> client RST|ACK,
// each packet the peer's answer to what the datapath sent (turn_around), so a wrong rewrite shows
// as a drop. Then the teardown:
//   close   the datapath closes the session at the reset (session_table::close: timer cancelled,
//           both tuples erased, port back in its pool, conn object freed);
//   expire  the reset moves the session to CLOSE and the timer wheel tears it down: the wheel
//           advances one 10 ms tick per 8,192 connections (real time at 0.82 M connections/s) and
//           the CLOSE timeout is 2 ticks instead of fnat_lb's 3 s, so that the sessions waiting in
//           CLOSE (at most ~3 ticks' worth, 24K) fit in the table's spare capacity; each tick's slot
//           scan, each expiry and each close are paid on the clock.
// Clients come from a ring of 64K distinct tuples per family, so a client tuple returns (as a
// reused client port does) only after its previous session is gone. Before the timed loop, three
// ticks' worth of connections bring the wheel to its steady state (their teardowns fall inside the
// timed loop, as the timed loop's last ones fall after it: the count is balanced). io_fwd runs the
// same frames and turn-arounds through parse + MAC swap + tx: the floor of any forwarding app.
// items_per_second counts full connections; packets_per_second the 5 packets of each.
struct client_ring {
  static constexpr std::size_t count = std::size_t{1} << 16;
  static constexpr std::size_t stride = 128;
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint16_t> lens;
  client_ring(pipeline& p, bool v6) : bytes(count * stride), lens(count) {
    for (std::size_t i = 0; i < count; ++i) {
      const auto f = pipeline::syn_of(v6, p.next_client++);
      std::memcpy(bytes.data() + i * stride, f.data(), f.size());
      lens[i] = static_cast<std::uint16_t>(f.size());
    }
  }
};

void lifecycle(benchmark::State& state, impl which, bool v6, teardown how) {
  pipeline& p = pipeline::get();
  datapath& dp = p.dp;
  static std::array<std::unique_ptr<client_ring>, 2> rings;
  auto& ring = rings[v6];
  if (!ring) ring = std::make_unique<client_ring>(p, v6);
  constexpr std::uint64_t conns_per_tick = 8192;
  constexpr std::uint64_t iterations_per_tick = conns_per_tick / burst;
  constexpr std::size_t close_slot = static_cast<std::size_t>(tcp_state::close);
  const std::uint64_t close_ticks0 = dp.tcp_ticks[close_slot];
  dp.close_on_reset = which == impl::fnat && how == teardown::close;
  if (how == teardown::expire) dp.tcp_ticks[close_slot] = 2;
  std::size_t cursor = 0;
  std::uint64_t iteration = 0;
  auto one = [&] {
    for (std::size_t i = 0; i < burst; ++i) {
      const std::size_t k = cursor++ & (client_ring::count - 1);
      rte_mbuf* m = p.mbufs[i];
      rte_pktmbuf_reset(m);
      std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), ring->bytes.data() + k * client_ring::stride,
                  client_ring::stride);
      m->data_len = m->pkt_len = ring->lens[k];
    }
    static constexpr std::array<std::uint8_t, answers_per_conn> answers{tcp_flags::syn | tcp_flags::ack,
                                                         tcp_flags::psh | tcp_flags::ack,
                                                         tcp_flags::psh | tcp_flags::ack,
                                                         tcp_flags::rst | tcp_flags::ack};
    for (std::size_t step = 0; step <= answers.size(); ++step) {
      if (step > 0)
        for (std::size_t i = 0; i < burst; ++i) turn_around(p.mbufs[i], answers[step - 1]);
      if (which == impl::fnat)
        dp.process_burst(static_cast<std::uint16_t>(step & 1), p.mbufs.data(), burst);
      else
        io_forward(p, burst);
    }
    if (which == impl::fnat && how == teardown::expire && ++iteration % iterations_per_tick == 0)
      (void)dp.sessions->advance_to(dp.sessions->now_tick() + 1, [](sessions_t::session_type&) noexcept {},
                                    2 * conns_per_tick);
  };
  const std::size_t size0 = dp.sessions->size();
  for (std::uint64_t i = 0; i < 3 * iterations_per_tick; ++i) one();  // the steady state's backlog
  const std::uint64_t forwarded0 = dp.forwarded, created0 = dp.created, dropped0 = dp.dropped;
  const session_table_stats st0 = dp.sessions->stats();
  for (auto _ : state) one();
  const std::uint64_t conns = state.iterations() * burst;
  state.SetItemsProcessed(static_cast<std::int64_t>(conns));
  state.counters["packets_per_second"] =
      benchmark::Counter(static_cast<double>(conns * (answers_per_conn + 1)), benchmark::Counter::kIsRate);
  if (which == impl::fnat) {
    const session_table_stats st = dp.sessions->stats();
    state.counters["live"] = static_cast<double>(dp.sessions->size());
    state.counters["expired_per_conn"] = static_cast<double>(st.expired - st0.expired) / static_cast<double>(conns);
    state.counters["closed_per_conn"] = static_cast<double>(st.closed - st0.closed) / static_cast<double>(conns);
    const bool all = dp.forwarded - forwarded0 == conns * (answers_per_conn + 1) && dp.dropped == dropped0 &&
                     dp.created - created0 == conns;
    // Back to the live set: what is still in CLOSE expires now (off the clock, as many as the
    // warm-up's backlog, which was torn down on it).
    if (how == teardown::expire)
      for (int t = 0; t < 4; ++t)
        (void)dp.sessions->advance_to(dp.sessions->now_tick() + 1, [](sessions_t::session_type&) noexcept {},
                                      SIZE_MAX);
    if (!all)
      state.SkipWithError("the datapath did not forward every packet of every connection");
    else if (dp.sessions->size() != size0)
      state.SkipWithError("sessions leaked: the table did not return to the live set");
  }
  dp.close_on_reset = false;
  dp.tcp_ticks[close_slot] = close_ticks0;
  if (which == impl::fnat)
    state.SetLabel(how == teardown::close ? "5 packets, closed at the reset"
                                          : "5 packets, expired by the wheel 2 ticks after the reset");
}

// ---- the real PMD path -----------------------------------------------------------------------------

// pipeline_pmd/fnat/flows:<F>: the worker loop on DPDK ports that move packets: rte_eth_rx_burst from
// a net_pcap port replaying (infinite_rx=1) a capture of F established flows of the live set (half
// IPv4, half IPv6: the ACKs of sessions pipeline_established also uses), the datapath's burst step,
// rte_eth_tx_burst to a net_null port (which frees the mbufs), the timer wheel advanced one tick per
// 10 ms of TSC. items_per_second counts packets forwarded per second of wall-clock time (UseRealTime), as
// testpmd's rates are. Registered only with FNAT_BENCH_PMD=1
// (scripts/bench_pmd.sh, which runs dpdk-testpmd io and macswap on the same captures in the same
// run); the captures go to FNAT_BENCH_PMD_DIR (default /tmp). The table holds the 1M live sessions
// whatever F is: F is how many of them the traffic touches.
std::string write_pcap(const pipeline& p, std::size_t flows) {
  const char* dir = std::getenv("FNAT_BENCH_PMD_DIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/fnat_flows_" + std::to_string(flows) + ".pcap";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  auto put32 = [&](std::uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto put16 = [&](std::uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  put32(0xa1b2c3d4);  // libpcap's classic format, microsecond stamps, Ethernet
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(65535);
  put32(1);
  for (std::size_t i = 0; i < flows; ++i) {
    const auto& f = (i & 1) ? p.in6[(i / 2) % p.in6.size()] : p.in4[(i / 2) % p.in4.size()];
    put32(0);
    put32(0);
    put32(static_cast<std::uint32_t>(f.size()));
    put32(static_cast<std::uint32_t>(f.size()));
    out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  }
  return out ? path : std::string();
}

int probe_port(const std::string& name, const std::string& args, rte_mempool* mp) {
  if (rte_dev_probe((name + "," + args).c_str()) != 0) return -1;
  std::uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) return -1;
  const rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(port, 0, 512, static_cast<unsigned>(SOCKET_ID_ANY), nullptr, mp) != 0 ||
      rte_eth_tx_queue_setup(port, 0, 512, static_cast<unsigned>(SOCKET_ID_ANY), nullptr) != 0 ||
      rte_eth_dev_start(port) != 0)
    return -1;
  return port;
}

// The ports of one capture, made once per process (Google Benchmark calls a benchmark several times).
struct pmd_ports {
  int rx = -1, tx = -1;
  std::string error;
};

pmd_ports& ports_for(pipeline& p, std::size_t flows) {
  static std::map<std::size_t, pmd_ports> made;
  auto [it, fresh] = made.try_emplace(flows);
  pmd_ports& pp = it->second;
  if (!fresh) return pp;
  const std::string pcap = write_pcap(p, flows);
  if (pcap.empty()) {
    pp.error = "could not write the capture";
    return pp;
  }
  const std::string tag = std::to_string(flows);
  // net_pcap keeps the whole capture in mbufs of the rx queue's pool and copies each into a fresh
  // one: room for the capture, the rings and the bursts in flight. Small data rooms (frames <= 94 B).
  rte_mempool* mp = rte_pktmbuf_pool_create(("pmd_mbufs_" + tag).c_str(), static_cast<unsigned>(flows + 8192), 256,
                                            0, RTE_PKTMBUF_HEADROOM + 256, SOCKET_ID_ANY);
  if (mp == nullptr) {
    pp.error = "mbuf pool for the capture";
    return pp;
  }
  pp.rx = probe_port("net_pcap_fnat" + tag, "rx_pcap=" + pcap + ",infinite_rx=1", mp);
  pp.tx = probe_port("net_null_fnat" + tag, "no-rx=1", mp);
  if (pp.rx < 0 || pp.tx < 0) pp.error = "net_pcap / net_null vdevs (is librte-net-pcap installed?)";
  return pp;
}

void pmd_loop(benchmark::State& state, std::size_t flows) {
  pipeline& p = pipeline::get();
  datapath& dp = p.dp;
  const pmd_ports& pp = ports_for(p, flows);
  if (!pp.error.empty()) return state.SkipWithError(pp.error.c_str());
  dp.tx_port = pp.tx;
  const auto rx = static_cast<std::uint16_t>(pp.rx);
  const std::uint64_t tick = rte_get_tsc_hz() / 100;
  std::uint64_t last = rte_rdtsc();
  const std::uint64_t fwd0 = dp.forwarded, drop0 = dp.dropped;
  std::uint64_t received = 0;
  std::array<rte_mbuf*, burst> pkts{};
  for (auto _ : state) {
    const std::uint16_t n = rte_eth_rx_burst(rx, 0, pkts.data(), burst);
    received += n;
    if (n != 0) dp.process_burst(0, pkts.data(), n);
    const std::uint64_t now = rte_rdtsc();
    if (now - last >= tick) {
      last = now;
      (void)dp.sessions->advance_to(dp.sessions->now_tick() + 1, [](sessions_t::session_type&) noexcept {});
    }
  }
  dp.tx_port = -1;
  state.SetItemsProcessed(static_cast<std::int64_t>(dp.forwarded - fwd0));
  state.counters["received"] = static_cast<double>(received);
  state.counters["dropped"] = static_cast<double>(dp.dropped - drop0);
  state.counters["flows"] = static_cast<double>(flows);
  if (dp.dropped != drop0) state.SkipWithError("the datapath dropped packets of established flows");
}

void register_all() {
  if (const char* pmd = std::getenv("FNAT_BENCH_PMD"); pmd != nullptr && std::string(pmd) == "1") {
    for (const std::size_t flows : {std::size_t{1} << 16, live_conns})
      benchmark::RegisterBenchmark(("pipeline_pmd/fnat/flows:" + std::string(flows == live_conns ? "1M" : "64K")).c_str(),
                                   [=](benchmark::State& s) { pmd_loop(s, flows); })
          ->UseRealTime();  // wall clock, as testpmd's Rx-pps: a polling loop owns its lcore
    return;  // the PMD run measures only the PMD path (scripts/bench_pmd.sh)
  }
  for (const bool v6 : {false, true}) {
    const std::string fam = v6 ? "ipv6" : "ipv4";
    for (const bool inbound : {true, false}) {
      const std::string dir = inbound ? "inbound" : "outbound";
      benchmark::RegisterBenchmark(("pipeline_established/fnat/" + fam + "/" + dir).c_str(),
                                   [=](benchmark::State& s) { established(s, impl::fnat, v6, inbound); });
      benchmark::RegisterBenchmark(("pipeline_established/io_fwd/" + fam + "/" + dir).c_str(),
                                   [=](benchmark::State& s) { established(s, impl::io_fwd, v6, inbound); });
    }
    for (const teardown how : {teardown::close, teardown::expire}) {
      const std::string end = how == teardown::close ? "close" : "expire";
      benchmark::RegisterBenchmark(("pipeline_new_conn/fnat/" + fam + "/" + end).c_str(),
                                   [=](benchmark::State& s) { lifecycle(s, impl::fnat, v6, how); });
      benchmark::RegisterBenchmark(("pipeline_new_conn/io_fwd/" + fam + "/" + end).c_str(),
                                   [=](benchmark::State& s) { lifecycle(s, impl::io_fwd, v6, how); });
    }
  }
}

const int registered = (register_all(), 0);

}  // namespace
