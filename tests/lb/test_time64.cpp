// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's idle expiry across 2^32 wheel ticks (issue 14): one worker of a real balancer, driven by
// hand (process_burst, expire(now) with TSC readings we choose), so that its wheel runs past 2^32
// ticks without waiting 500 days. A conn whose last packet was stamped after the 32-bit wrap must live
// its whole idle timeout from that packet, and then expire.
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
  return "[global]\nworkers = 1\nsteering = redirect\nconns_per_lcore = 64\ntimer_tick_ms = 10\ntelemetry = off\n"
         "[timeouts]\nudp_oneway = 30\nudp_normal = 30\n"
         "[port " + cport + "]\nrole = client\naddress = 198.18.0.1/24\naddress = 198.18.1.1/24\n"
         "gateway = 198.18.0.254\nneighbour = 198.18.0.254 02:aa:00:00:00:fe\n"
         "[port " + sport + "]\nrole = server\naddress = 198.18.2.1/24\nneighbour = 198.18.2.11 02:bb:00:00:00:01\n"
         "[service dns]\nvip = 198.18.1.100\nvport = 53\nproto = udp\nscheduler = rr\n"
         "lip = 198.18.2.100\nrs = 198.18.2.11:5353\n";
}

}  // namespace

TEST_CASE("fnat_lb: a conn stamped after 2^32 wheel ticks lives its idle timeout from that packet, then expires",
          "[lb][time64]") {
  fnat::test::require_eal();
  const std::string c = ring_port("t64_c"), s = ring_port("t64_s");
  const std::string path = "/tmp/fnat-time64-" + std::to_string(::getpid()) + ".ini";
  std::ofstream(path) << config_text(c, s);
  auto cfg = lb::load_config(path);
  std::remove(path.c_str());
  REQUIRE(cfg);
  auto b = lb::balancer::make(*cfg, no_steering_ops{}, {.tx = free_tx, .name = "t64"});
  REQUIRE(b);
  lb::worker& w = *(*b)->workers()[0];
  const std::uint16_t port_id = (*b)->shared().ports[0].port_id;

  rte_ether_addr mac{};
  REQUIRE(rte_eth_macaddr_get(port_id, &mac) == 0);
  fnat::test::frame_spec spec;
  std::memcpy(spec.dst.bytes.data(), mac.addr_bytes, 6);
  spec.src = mac_addr{{0x02, 0xaa, 0, 0, 0, 0xfe}};
  spec.saddr = *inet_addr::parse("198.19.0.7");
  spec.daddr = *inet_addr::parse("198.18.1.100");
  spec.proto = ipproto::udp;
  spec.sport = 40000;
  spec.dport = 53;
  spec.payload = {'q', 'u', 'e', 'r', 'y'};
  const std::vector<std::uint8_t> frame = fnat::test::build_frame(spec);
  auto send = [&] {
    rte_mbuf* m = rte_pktmbuf_alloc(fnat::test::mbuf_pool());
    REQUIRE(m != nullptr);
    std::memcpy(rte_pktmbuf_mtod(m, void*), frame.data(), frame.size());
    m->data_len = m->pkt_len = static_cast<std::uint32_t>(frame.size());
    m->port = port_id;
    w.process_burst(0, &m, 1);
    w.flush();
  };

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
  w.drain_all();
}
