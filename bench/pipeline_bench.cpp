// SPDX-License-Identifier: BSD-3-Clause
// The balancer's own per-lcore step, on in-memory mbuf bursts (no I/O): what one worker lcore of
// fnat_lb (examples/fnat_lb) spends per packet.
//
//   pipeline_established/fnat/<family>/<dir>   bursts of 32 packets of live conns (1M conns in the
//                                              table), inbound (client -> VIP) or outbound
//                                              (RS -> LIP:lport): parse, bulk lookup, TCP state and
//                                              timer refresh, FullNAT rewrite, neighbour, tx buffer
//   pipeline_new_conn/fnat/<family>            bursts of 32 SYNs of new flows: parse, lookup miss,
//                                              scheduler, sa_pool fetch, conn insert, timer arm,
//                                              rewrite, tx
//   .../io_fwd/...                             the same bursts through parse + MAC swap + tx: the
//                                              floor any DPDK forwarding app pays (testpmd's
//                                              io/macswap forwarding with a parse)
// Every iteration first copies the burst's template frames into its mbufs (the balancer rewrites
// them in place), for fnat and io_fwd alike, and the tx "queue" is a sink that hands the mbufs back.
// items_per_second counts packets. Workers are built by fnat_lb's own start-up code (balancer.hpp)
// on two net_ring ports that never carry a packet.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fnat/core/checksum.hpp>
#include <fnat/core/headers.hpp>
#include <fnat/dpdk/ethdev_ops.hpp>
#include <fnat/dpdk/packet.hpp>

#include "fnat_lb/balancer.hpp"

namespace {

using namespace fnat;

constexpr std::size_t burst = 32;
constexpr std::size_t live_conns = 1'000'000;
// Table capacity: the live conns plus one batch of new ones (pipeline_new_conn), 2^20.
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

// ---- the harness ---------------------------------------------------------------------------------

struct sink {
  std::size_t taken = 0;
};

std::uint16_t sink_tx(void* ctx, std::uint16_t, std::uint16_t, rte_mbuf**, std::uint16_t n) {
  static_cast<sink*>(ctx)->taken += n;
  return n;  // the mbufs stay with the harness, which owns and reuses them
}

std::string ring_port(const std::string& name) {
  rte_ring* rx = rte_ring_create((name + "_r").c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create((name + "_t").c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (rx == nullptr || tx == nullptr || rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY) < 0) {
    std::fprintf(stderr, "pipeline_bench: cannot create ring port %s\n", name.c_str());
    std::exit(1);
  }
  return "net_ring_" + name;  // the ethdev name rte_eth_from_rings registers
}

// Devices with neither rte_flow nor RSS: the balancer picks redirect, which a single worker never uses.
struct no_steering_ops : dpdk::rte_ethdev_ops {
  int flow_validate(std::uint16_t, const rte_flow_attr*, const rte_flow_item*, const rte_flow_action*,
                    rte_flow_error* e) const {
    if (e != nullptr) *e = rte_flow_error{RTE_FLOW_ERROR_TYPE_UNSPECIFIED, nullptr, "benchmark"};
    return -ENOTSUP;
  }
};

std::string config_text(const std::string& cport, const std::string& sport) {
  std::string t = "[global]\nworkers = 1\nsteering = redirect\nconns_per_lcore = " + std::to_string(capacity) +
                  "\ntelemetry = off\n";
  t += "[port " + cport + "]\nrole = client\naddress = 198.18.0.1/24\naddress = 2001:2:0:1::1/64\n"
       "address = 198.18.1.1/24\naddress = 2001:2:0:3::1/64\ngateway = 198.18.0.254\ngateway = 2001:2:0:1::fe\n"
       "neighbour = 198.18.0.254 02:aa:00:00:00:fe\nneighbour = 2001:2:0:1::fe 02:aa:00:00:00:fd\n";
  t += "[port " + sport + "]\nrole = server\naddress = 198.18.2.1/24\naddress = 2001:2:0:2::1/64\n";
  for (int i = 0; i < n_rs; ++i) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "02:bb:00:00:00:%02x", i + 1);
    t += "neighbour = 198.18.2." + std::to_string(10 + i) + " " + mac + "\n";
    t += "neighbour = 2001:2:0:2::" + std::to_string(10 + i) + " " + mac + "\n";
  }
  for (const bool v6 : {false, true}) {
    t += std::string("[service web") + (v6 ? "6" : "4") + "]\nvip = " + (v6 ? "2001:2:0:3::100" : "198.18.1.100") +
         "\nvport = 80\nproto = tcp\nscheduler = maglev\n";
    for (int l = 0; l < n_lips; ++l) t += "lip = " + std::string(v6 ? "2001:2:0:2::" : "198.18.2.") + std::to_string(100 + l) + "\n";
    for (int i = 0; i < n_rs; ++i)
      t += "rs = " + (v6 ? "[2001:2:0:2::" + std::to_string(10 + i) + "]" : "198.18.2." + std::to_string(10 + i)) + ":8080\n";
  }
  return t;
}

// One balancer and one worker shared by every benchmark of the binary (building 1M conns takes a few
// seconds).
struct pipeline {
  std::unique_ptr<lb::balancer> lb;
  lb::worker* w = nullptr;
  sink out;
  std::vector<rte_mbuf*> mbufs;  // burst mbufs, reused
  rte_mempool* pool = nullptr;
  // Templates of established flows: inbound and outbound per family.
  std::vector<std::vector<std::uint8_t>> in4, out4, in6, out6;
  std::uint32_t next_client = 0;

  static pipeline& get() {
    static pipeline p;
    return p;
  }

  pipeline() {
    const std::string c = ring_port("pl_c"), s = ring_port("pl_s");
    const std::string path = "/tmp/fnat-pipeline-" + std::to_string(::getpid()) + ".ini";
    std::ofstream(path) << config_text(c, s);
    auto cfg = lb::load_config(path);
    std::remove(path.c_str());
    if (!cfg) fail(cfg.err().message());
    auto b = lb::balancer::make(*cfg, no_steering_ops{}, {.tx = sink_tx, .tx_ctx = &out, .name = "pl"});
    if (!b) fail(b.err().message());
    lb = std::move(*b);
    w = lb->workers()[0].get();
    pool = rte_pktmbuf_pool_create("pl_bench_mbufs", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (pool == nullptr) fail("mbuf pool");
    mbufs.resize(burst);
    for (auto& m : mbufs) m = rte_pktmbuf_alloc(pool);
    w->expire(rte_rdtsc());
    // Live conns: half IPv4, half IPv6, created by SYNs through the worker, then their outbound
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
    if (lb->workers()[0]->stats().conns_created.get() != live_conns) fail("not every conn was created");
  }

  [[noreturn]] static void fail(const std::string& why) {
    std::fprintf(stderr, "pipeline_bench: %s\n", why.c_str());
    std::exit(1);
  }

  // A SYN from client number k (198.19.x.y / 2001:2:0:9::x, ports 1024+) to the VIP.
  static std::vector<std::uint8_t> syn_of(bool v6, std::uint32_t k) {
    const std::uint32_t host = k / 16, port = 1024 + k % 16 * 4000 + (k / 16) % 4000;
    char a[64];
    if (v6)
      std::snprintf(a, sizeof a, "2001:2:0:9::%x:%x", host >> 16, host & 0xffff);
    else
      std::snprintf(a, sizeof a, "198.19.%u.%u", (host >> 8) & 0xff, host & 0xff);
    const fnat::inet_addr src = *fnat::inet_addr::parse(v6 ? a : a);
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
      m->port = lb->shared().ports[0].port_id;
    }
  }

  // One burst through the worker (setup only; keeps what it sent when asked).
  void run(std::span<const std::vector<std::uint8_t>> frames, std::vector<std::vector<std::uint8_t>>* sent) {
    load(frames);
    for (auto& m : mbufs) rte_mbuf_refcnt_set(m, 2);  // the worker's drops free once; keep ours
    w->process_burst(0, mbufs.data(), static_cast<std::uint16_t>(frames.size()));
    w->flush();
    if (sent != nullptr)
      for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto* p = rte_pktmbuf_mtod(mbufs[i], const std::uint8_t*);
        sent->emplace_back(p, p + rte_pktmbuf_data_len(mbufs[i]));
      }
    for (auto& m : mbufs) rte_mbuf_refcnt_set(m, 1);
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
  (void)sink_tx(&p.out, 0, 0, p.mbufs.data(), static_cast<std::uint16_t>(n));
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

void load_from(pipeline& p, const frame_stream& fs, std::size_t& cursor, std::uint16_t port_id) {
  for (std::size_t i = 0; i < burst; ++i) {
    const std::size_t k = cursor++ & (frame_stream::count - 1);
    rte_mbuf* m = p.mbufs[i];
    rte_pktmbuf_reset(m);
    std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), fs.bytes.data() + k * frame_stream::stride, frame_stream::stride);
    m->data_len = m->pkt_len = fs.lens[k];
    m->port = port_id;
  }
}

void established(benchmark::State& state, impl which, bool v6, bool inbound) {
  pipeline& p = pipeline::get();
  const auto& templates = v6 ? (inbound ? p.in6 : p.out6) : (inbound ? p.in4 : p.out4);
  static std::map<int, std::unique_ptr<frame_stream>> streams;
  auto& fs = streams[v6 * 2 + inbound];
  if (!fs) fs = std::make_unique<frame_stream>(templates, 42 + v6 * 2 + inbound);
  std::size_t cursor = 0;
  const std::uint16_t port_id = p.lb->shared().ports[inbound ? 0 : 1].port_id;
  const std::uint64_t forwarded0 = p.w->stats().inbound.get() + p.w->stats().outbound.get();
  const std::uint64_t drops0 = p.w->stats().total_drops();
  for (auto _ : state) {
    load_from(p, *fs, cursor, port_id);
    if (which == impl::fnat) {
      p.w->process_burst(inbound ? 0 : 1, p.mbufs.data(), burst);
      p.w->flush();
    } else {
      io_forward(p, burst);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
  if (which == impl::fnat) {
    const std::uint64_t forwarded = p.w->stats().inbound.get() + p.w->stats().outbound.get() - forwarded0;
    if (forwarded != state.iterations() * burst || p.w->stats().total_drops() != drops0)
      state.SkipWithError("the worker did not forward every packet");
  }
  state.counters["conns"] = static_cast<double>(p.w->stats().conns_created.get() - p.w->stats().conns_expired.get());
}

void new_conns(benchmark::State& state, impl which, bool v6) {
  pipeline& p = pipeline::get();
  // Fresh clients for every SYN; conns made here are expired in untimed pauses so that the table
  // stays at the live set (1M) plus at most one batch.
  constexpr std::size_t batch = 1u << 15;
  std::vector<std::vector<std::uint8_t>> syns(batch);
  std::size_t made = 0;  // SYNs of the current batch that went through
  auto refill = [&] {
    if (which == impl::fnat)
      for (std::size_t i = 0; i < made; ++i) {
        packet_info info;
        (void)parse(syns[i], info);
        (void)p.w->remove_conn(info.tuple);
      }
    for (auto& s : syns) s = pipeline::syn_of(v6, p.next_client++);
  };
  refill();
  std::size_t used = 0;
  const std::uint64_t created0 = p.w->stats().conns_created.get();
  std::uint64_t expected = 0;
  for (auto _ : state) {
    if (used == batch) {
      state.PauseTiming();
      refill();
      used = 0;
      state.ResumeTiming();
    }
    for (std::size_t i = 0; i < burst; ++i) {
      const auto& f = syns[used + i];
      rte_mbuf* m = p.mbufs[i];
      rte_pktmbuf_reset(m);
      std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), f.data(), f.size());
      m->data_len = m->pkt_len = static_cast<std::uint32_t>(f.size());
      m->port = p.lb->shared().ports[0].port_id;
    }
    used += burst;
    made = used;
    expected += burst;
    if (which == impl::fnat) {
      p.w->process_burst(0, p.mbufs.data(), burst);
      p.w->flush();
    } else {
      io_forward(p, burst);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
  if (which == impl::fnat && p.w->stats().conns_created.get() - created0 != expected)
    state.SkipWithError("not every SYN made a conn");
  refill();  // back to the live set
}

void register_all() {
  for (const bool v6 : {false, true}) {
    const std::string fam = v6 ? "ipv6" : "ipv4";
    for (const bool inbound : {true, false}) {
      const std::string dir = inbound ? "inbound" : "outbound";
      benchmark::RegisterBenchmark(("pipeline_established/fnat/" + fam + "/" + dir).c_str(),
                                   [=](benchmark::State& s) { established(s, impl::fnat, v6, inbound); });
      benchmark::RegisterBenchmark(("pipeline_established/io_fwd/" + fam + "/" + dir).c_str(),
                                   [=](benchmark::State& s) { established(s, impl::io_fwd, v6, inbound); });
    }
    benchmark::RegisterBenchmark(("pipeline_new_conn/fnat/" + fam).c_str(),
                                 [=](benchmark::State& s) { new_conns(s, impl::fnat, v6); });
    benchmark::RegisterBenchmark(("pipeline_new_conn/io_fwd/" + fam).c_str(),
                                 [=](benchmark::State& s) { new_conns(s, impl::io_fwd, v6); });
  }
}

const int registered = (register_all(), 0);

}  // namespace
