// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb under issue 14's hostile input, one worker of a real balancer driven by hand
// (process_burst, expire(now) with TSC readings we choose):
//  - idle expiry across 2^32 wheel ticks, without waiting 500 days: a conn whose last packet was
//    stamped after the 32-bit wrap must live its whole idle timeout from that packet, then expire;
//  - a SYN flood aimed at one conn-table bucket (this test knows the process key; an attacker does
//    not) is refused at the chain bound and counted as the drop reason chain_full.
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "fnat_lb/balancer.hpp"
#include "support/eal.hpp"
#include "support/packet_frames.hpp"

namespace {

using namespace fnat;

std::uint16_t free_tx(void*, std::uint16_t, std::uint16_t, rte_mbuf** pkts, std::uint16_t n) {
  rte_pktmbuf_free_bulk(pkts, n);
  return n;
}

std::string ring_port(const std::string& name) {
  rte_ring* rx = rte_ring_create((name + "_r").c_str(), 256, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create((name + "_t").c_str(), 256, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  REQUIRE(rx != nullptr);
  REQUIRE(tx != nullptr);
  REQUIRE(rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY) >= 0);
  return "net_ring_" + name;
}

// Neither rte_flow nor RSS: the balancer picks redirect, which a single worker never uses.
struct no_steering_ops : dpdk::rte_ethdev_ops {
  int flow_validate(std::uint16_t, const rte_flow_attr*, const rte_flow_item*, const rte_flow_action*,
                    rte_flow_error* e) const {
    if (e != nullptr) *e = rte_flow_error{RTE_FLOW_ERROR_TYPE_UNSPECIFIED, nullptr, "test"};
    return -ENOTSUP;
  }
};

std::string config_text(const std::string& cport, const std::string& sport) {
  // max_half_open = all the conns: the flood test aims 40 SYNs at one bucket, and the default bound
  // (half the conns) would refuse them before the chain bound does.
  return "[global]\nworkers = 1\nsteering = redirect\nconns_per_lcore = 64\nmax_half_open = 64\n"
         "timer_tick_ms = 10\ntelemetry = off\n"
         "[timeouts]\nudp_oneway = 30\nudp_normal = 30\n"
         "[port " + cport + "]\nrole = client\naddress = 198.18.0.1/24\naddress = 198.18.1.1/24\n"
         "gateway = 198.18.0.254\nneighbour = 198.18.0.254 02:aa:00:00:00:fe\n"
         "[port " + sport + "]\nrole = server\naddress = 198.18.2.1/24\nneighbour = 198.18.2.11 02:bb:00:00:00:01\n"
         "[service dns]\nvip = 198.18.1.100\nvport = 53\nproto = udp\nscheduler = rr\n"
         "lip = 198.18.2.100\nrs = 198.18.2.11:5353\n"
         "[service web]\nvip = 198.18.1.100\nvport = 80\nproto = tcp\nscheduler = rr\n"
         "lip = 198.18.2.100\nrs = 198.18.2.11:8080\n";
}

// A balancer with one worker that nobody launches: the test is its lcore.
struct hand_driven {
  std::unique_ptr<lb::balancer> lb;
  lb::worker* w = nullptr;
  std::uint16_t port_id = 0;
  mac_addr mac{};

  explicit hand_driven(const std::string& name) {
    fnat::test::require_eal();
    const std::string c = ring_port(name + "_c"), s = ring_port(name + "_s");
    const std::string path = "/tmp/fnat-" + name + "-" + std::to_string(::getpid()) + ".ini";
    std::ofstream(path) << config_text(c, s);
    auto cfg = lb::load_config(path);
    std::remove(path.c_str());
    REQUIRE(cfg);
    auto b = lb::balancer::make(*cfg, no_steering_ops{}, {.tx = free_tx, .name = name});
    REQUIRE(b);
    lb = std::move(*b);
    w = lb->workers()[0].get();
    port_id = lb->shared().ports[0].port_id;
    rte_ether_addr a{};
    REQUIRE(rte_eth_macaddr_get(port_id, &a) == 0);
    std::memcpy(mac.bytes.data(), a.addr_bytes, 6);
  }
  ~hand_driven() { w->drain_all(); }

  // A client frame to the VIP.
  [[nodiscard]] fnat::test::frame_spec client(std::uint8_t proto, const char* src, std::uint16_t sport,
                                              std::uint16_t dport) const {
    fnat::test::frame_spec spec;
    spec.dst = mac;
    spec.src = mac_addr{{0x02, 0xaa, 0, 0, 0, 0xfe}};
    spec.saddr = *inet_addr::parse(src);
    spec.daddr = *inet_addr::parse("198.18.1.100");
    spec.proto = proto;
    spec.sport = sport;
    spec.dport = dport;
    if (proto == ipproto::udp) spec.payload = {'q', 'u', 'e', 'r', 'y'};
    return spec;
  }
  void send(const std::vector<std::uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(fnat::test::mbuf_pool());
    REQUIRE(m != nullptr);
    std::memcpy(rte_pktmbuf_mtod(m, void*), frame.data(), frame.size());
    m->data_len = m->pkt_len = static_cast<std::uint32_t>(frame.size());
    m->port = port_id;
    w->process_burst(0, &m, 1);
    w->flush();
  }
};

}  // namespace

TEST_CASE("fnat_lb: a conn stamped after 2^32 wheel ticks lives its idle timeout from that packet, then expires",
          "[lb][time64]") {
  hand_driven h("t64");
  lb::worker& w = *h.w;
  const std::vector<std::uint8_t> frame = fnat::test::build_frame(h.client(ipproto::udp, "198.19.0.7", 40000, 53));
  auto send = [&] { h.send(frame); };

  // TSC cycles per 10 ms tick; the wheel's tick 0 is a TSC reading taken in make(), before `base`,
  // so expire(base + k * unit) takes the wheel to tick k + e, e the (few) ticks make() took.
  const std::uint64_t unit = rte_get_tsc_hz() / 100;
  const std::uint64_t base = rte_rdtsc();
  // udp_oneway = 30 s: 3000 ticks.
  const std::uint64_t t0 = (std::uint64_t{1} << 32) - 1000;
  auto at = [&](std::uint64_t k) { return w.expire(base + k * unit); };

  REQUIRE(at(t0) == 0);
  send();  // creates the conn, stamped at t0 + e; its wheel entry is due at t0 + e + 3000
  REQUIRE(w.stats().conns_created.get() == 1);
  REQUIRE(w.table().size() == 1);
  REQUIRE(at(t0 + 2000) == 0);  // past 2^32 ticks
  send();  // same flow, same state: only last_seen moves (to t0 + e + 2000, above 2^32)
  REQUIRE(w.stats().conns_created.get() == 1);
  // The entry comes due: the conn has been idle 1000 ticks of its 3000 and must stay (a 32-bit
  // stamp read it as idle for ~2^32 ticks and expired it here).
  at(t0 + 3001);  // fires the entry (counted as fired), which re-arms for the 2000 ticks left
  CHECK(w.table().size() == 1);
  CHECK(w.stats().conns_expired.get() == 0);
  REQUIRE(at(t0 + 4990) == 0);
  CHECK(w.table().size() == 1);
  // Idle for its whole timeout after the last packet: gone (not kept forever either).
  at(t0 + 5010);
  CHECK(w.table().size() == 0);
  CHECK(w.stats().conns_expired.get() == 1);
  CHECK(w.leak_report().empty());
}

TEST_CASE("fnat_lb: SYNs aimed at one conn-table bucket stop at the chain bound, counted as chain_full",
          "[lb][flood]") {
  hand_driven h("fld");
  lb::worker& w = *h.w;
  const lb::lb_table& t = w.table();
  REQUIRE(t.max_chain() == 32);
  // Sources whose inbound tuple lands in the bucket of the first one, found with the table's own
  // (keyed) hash: what an attacker who had the key could send.
  const fnat::inet_addr vip = *fnat::inet_addr::parse("198.18.1.100");
  auto in_tuple = [&](std::uint32_t host, std::uint16_t sport) {
    return fnat::make_tuple(ipproto::tcp, fnat::inet_addr(fnat::ipv4_addr::from_host(host)), sport, vip, std::uint16_t{80});
  };
  const std::size_t target = t.bucket_of(t.hash_of(in_tuple(0xc6130000u, 1024)));
  std::vector<std::pair<std::uint32_t, std::uint16_t>> aimed;
  for (std::uint32_t i = 0; aimed.size() < 40; ++i) {
    const std::uint32_t host = 0xc6130000u + (i & 0xffff);
    const auto sport = static_cast<std::uint16_t>(1024 + (i >> 16));
    if (t.bucket_of(t.hash_of(in_tuple(host, sport))) == target) aimed.emplace_back(host, sport);
  }
  for (const auto& [host, sport] : aimed) {
    auto spec = h.client(ipproto::tcp, "198.19.0.1", sport, 80);
    spec.saddr = fnat::inet_addr(fnat::ipv4_addr::from_host(host));
    h.send(fnat::test::build_frame(spec));
  }
  // At most 32 nodes in that chain (an outbound tuple may take a place too): the rest refused.
  const std::uint64_t refused = w.stats().drops[static_cast<std::size_t>(lb::lb_drop::chain_full)].get();
  CHECK(t.bucket_size(target) <= 32);
  CHECK(w.stats().conns_created.get() + refused == aimed.size());
  CHECK(refused >= aimed.size() - 32);
  // The session table refused them (its two-phase open asks the conn table before claiming a port).
  CHECK(w.sessions().stats().refused[static_cast<std::size_t>(fnat::session_refusal::chain_full)] == refused);
  CHECK(lb::to_string(lb::lb_drop::chain_full) == "chain_full");
}
