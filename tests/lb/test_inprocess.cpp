// SPDX-License-Identifier: BSD-3-Clause
// The whole balancer in one process, on net_ring ports, with the software NIC model deciding which
// rx queue each packet reaches: thousands of TCP and UDP flows over three worker lcores, in flow mode
// (rules installed through the model) and in RSS mode (RETA programmed through the model). Checks:
//  - every packet leaves with exactly the bytes expected (addresses, ports, TTL, MACs, checksums
//    recomputed in full by an independent reference);
//  - return traffic reaches the worker that owns its conn directly: zero redirects, zero misses;
//  - once the flows end and time out, every sa_pool is whole and no conn object is in use.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;

void run_flows(const std::string& mode) {
  const bool lip_per_worker = mode == "lip_per_lcore";
  inprocess_rig rig({.mode = mode, .lip_per_worker = lip_per_worker});
  const auto& lbw = rig.lb().shared();
  if (mode == "flow")
    REQUIRE(lbw.ports[1].steering == lb::port_steering::flow);
  else if (lip_per_worker)
    REQUIRE(lbw.ports[1].steering == lb::port_steering::lip_per_lcore);
  else
    REQUIRE(lbw.ports[1].steering == lb::port_steering::rss);

  // 1200 TCP (900 IPv4, 300 IPv6) and 600 UDP (400 IPv4, 200 IPv6) flows from clients beyond the gateway.
  std::vector<flow> flows;
  std::uint32_t id = 0x10000;
  auto add = [&](bool v6, bool tcp, int count) {
    for (int i = 0; i < count; ++i) {
      flow f;
      f.v6 = v6;
      f.tcp = tcp;
      const int host = static_cast<int>(flows.size());
      f.client = v6 ? addr(("2001:2:0:9::" + std::to_string(1 + host % 200)).c_str())
                    : addr(("198.19." + std::to_string(host / 250) + "." + std::to_string(1 + host % 250)).c_str());
      f.cport = static_cast<std::uint16_t>(20000 + host);
      f.id = id++;
      flows.push_back(f);
    }
  };
  add(false, true, 900);
  add(true, true, 300);
  add(false, false, 400);
  add(true, false, 200);
  std::map<std::uint32_t, std::size_t> by_id;
  for (std::size_t i = 0; i < flows.size(); ++i) by_id[flows[i].id] = i;

  // Phase 1: the client's first packet (SYN or datagram) -> out to a real server.
  std::vector<std::vector<std::uint8_t>> frames;
  for (const flow& f : flows) frames.push_back(test::build_frame(client_packet(f, rig.client_mac(), tcp_flags::syn)));
  rig.inject(false, frames);
  auto out = rig.collect(true, flows.size());
  REQUIRE(out.size() == flows.size());
  std::set<std::tuple<fnat::inet_addr, std::uint16_t, fnat::inet_addr, std::uint16_t>> leases;
  std::set<fnat::inet_addr> lips_used;
  for (const auto& bytes : out) {
    packet_info info;
    INFO(hex(bytes));
    REQUIRE(parse(bytes, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    const auto it = by_id.find(flow_id_of(bytes, info));
    REQUIRE(it != by_id.end());
    flow& f = flows[it->second];
    f.lip = info.tuple.saddr;
    f.lport = ntoh16(info.tuple.sport);
    f.rs = info.tuple.daddr;
    f.rport = ntoh16(info.tuple.dport);
    // The balancer's choices are the configured ones, and no (LIP, lport, RS, rport) is used twice.
    if (lip_per_worker) {
      // One of the three LIPs of its family, each owned by one worker (no redirect below proves the
      // conn lives on that LIP's owner: the NIC's address rule sends the reply there).
      const std::string a = f.lip.to_string();
      REQUIRE((f.v6 ? (a == "2001:2:0:2::100" || a == "2001:2:0:2::101" || a == "2001:2:0:2::102")
                    : (a == "198.18.2.100" || a == "198.18.2.101" || a == "198.18.2.102")));
      REQUIRE(lbw.ports[1].owner.owner_of_lip(f.lip) < 3);
      lips_used.insert(f.lip);
    } else if (f.v6) {
      REQUIRE(f.lip == addr("2001:2:0:2::100"));
    } else {
      REQUIRE((f.lip == addr("198.18.2.100") || (f.tcp && f.lip == addr("198.18.2.101"))));
    }
    REQUIRE(f.rport == (f.tcp ? 8080 : 5353));
    REQUIRE(f.lport >= 1025);
    REQUIRE(leases.emplace(f.lip, f.lport, f.rs, f.rport).second);
    // Exact bytes: the client's packet with the FullNAT tuple, TTL - 1, the RS's MAC.
    frame_spec want = client_packet(f, rig.client_mac(), tcp_flags::syn);
    want.dst = rs_mac(f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10);
    want.src = rig.server_mac();
    want.saddr = f.lip;
    want.sport = f.lport;
    want.daddr = f.rs;
    want.dport = f.rport;
    want.ttl = 63;
    REQUIRE(bytes == test::build_frame(want));
  }

  // Phase 2: the real server answers (SYN-ACK or datagram) -> the model steers it to the owner.
  frames.clear();
  for (const flow& f : flows)
    frames.push_back(test::build_frame(server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack)));
  rig.inject(true, frames);
  out = rig.collect(false, flows.size());
  REQUIRE(out.size() == flows.size());
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    const auto it = by_id.find(flow_id_of(bytes, info));
    REQUIRE(it != by_id.end());
    const flow& f = flows[it->second];
    frame_spec want = server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack);
    want.dst = f.v6 ? gw6_mac : gw_mac;
    want.src = rig.client_mac();
    want.saddr = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    want.sport = f.tcp ? 80 : 53;
    want.daddr = f.client;
    want.dport = f.cport;
    want.ttl = 63;
    REQUIRE(bytes == test::build_frame(want));
  }
  if (lip_per_worker) CHECK(lips_used.size() == 6);  // every worker's LIP of each family served flows
  // Every reply reached its owner directly: no hand-off, no miss, no drop of any kind.
  CHECK(rig.total(&lb::worker_stats::redirected_out) == 0);
  CHECK(rig.total(&lb::worker_stats::redirected_in) == 0);
  CHECK(rig.total_drop(lb::lb_drop::no_conn) == 0);
  CHECK(rig.all_drops() == 0);
  CHECK(rig.total(&lb::worker_stats::conns_created) == flows.size());
  CHECK(rig.total(&lb::worker_stats::outbound) == flows.size());
  // More than one worker did the work (the model's RSS spreads clients over the three queues).
  std::size_t busy = 0;
  for (const auto& w : rig.lb().workers()) busy += w->stats().conns_created.get() > 0 ? 1 : 0;
  CHECK(busy == 3);

  // Phase 3: the clients complete the handshake (ESTABLISHED), then reset (CLOSE: 1 s; an RST in
  // SYN_RECV keeps the state, as in IPVS); UDP idles out (1 s). Then the pools must be whole.
  for (const std::uint8_t flags : {tcp_flags::ack, static_cast<std::uint8_t>(tcp_flags::rst | tcp_flags::ack)}) {
    frames.clear();
    for (const flow& f : flows)
      if (f.tcp) frames.push_back(test::build_frame(client_packet(f, rig.client_mac(), flags)));
    rig.inject(false, frames);
    REQUIRE(rig.collect(true, frames.size()).size() == frames.size());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (rig.total(&lb::worker_stats::conns_expired) < flows.size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(rig.total(&lb::worker_stats::conns_expired) == flows.size());
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

}  // namespace

TEST_CASE("in-process balancer, flow mode: 1800 flows over 3 workers, exact bytes, no redirect, no leak", "[lb]") {
  run_flows("flow");
}

TEST_CASE("in-process balancer, RSS mode: 1800 flows over 3 workers, exact bytes, no redirect, no leak", "[lb]") {
  run_flows("rss");
}

TEST_CASE("in-process balancer, one LIP per worker: 1800 flows over 3 workers, exact bytes, no redirect, no leak",
          "[lb]") {
  run_flows("lip_per_lcore");
}
