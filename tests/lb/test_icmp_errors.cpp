// SPDX-License-Identifier: BSD-3-Clause
// ICMP errors through the whole balancer (in-process, three workers, net_ring ports with the NIC
// model): a real server's "port unreachable" about LIP:lport -> RS:rport reaches the client as the
// VIP's, quoting the client's own datagram or segment; a client's error about the VIP's reply reaches
// the real server as the LIP's, quoting the RS's reply. Exact bytes, against frames built in full by
// the test's own builder. The NIC hashes an error by its outer header, not the quoted ports, so errors
// land on any worker: those about a LIP are handed to the owner of the lport, a client's visit the
// workers in turn. Errors about no conn, and corrupted ones, are counted drops.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;
using frame = std::vector<std::uint8_t>;

frame ip_part(const frame& f) { return frame(f.begin() + 14, f.end()); }

// An ICMP / ICMPv6 "port unreachable" quoting `quoted` (an IP packet), built in full by the test.
frame port_unreachable(const mac_addr& dst, const mac_addr& src, const fnat::inet_addr& from, const fnat::inet_addr& to,
                       std::uint8_t ttl, const frame& quoted) {
  frame_spec s;
  s.dst = dst;
  s.src = src;
  s.saddr = from;
  s.daddr = to;
  s.ttl = ttl;
  s.proto = from.is_v4() ? ipproto::icmp : ipproto::icmpv6;
  s.icmp_type = from.is_v4() ? icmp_type::dest_unreachable : icmp6_type::dest_unreachable;
  s.icmp_code = from.is_v4() ? 3 : 4;
  s.icmp_id = 0;
  s.icmp_seq = 0;
  s.payload = quoted;
  return test::build_frame(s);
}

void run_errors(const std::string& mode) {
  inprocess_rig rig({.mode = mode, .name = "ie", .udp_s = 60});
  std::vector<flow> flows;
  std::uint32_t id = 0x20000;
  for (int i = 0; i < 120; ++i) {
    flow f;
    f.v6 = i % 2 == 1;
    f.tcp = i % 4 < 2;
    f.client = f.v6 ? addr(("2001:2:0:9::" + std::to_string(1 + i)).c_str())
                    : addr(("198.19.0." + std::to_string(1 + i)).c_str());
    f.cport = static_cast<std::uint16_t>(30000 + i);
    f.id = id++;
    flows.push_back(f);
  }
  std::map<std::uint32_t, std::size_t> by_id;
  for (std::size_t i = 0; i < flows.size(); ++i) by_id[flows[i].id] = i;

  // Open every flow; remember what the balancer forwarded (the RS's view of the client's packet).
  std::vector<frame> frames;
  for (const flow& f : flows) frames.push_back(test::build_frame(client_packet(f, rig.client_mac(), tcp_flags::syn)));
  rig.inject(false, frames);
  auto out = rig.collect(true, flows.size());
  REQUIRE(out.size() == flows.size());
  std::vector<frame> forwarded(flows.size());
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info) == drop_reason::none);
    const std::size_t i = by_id.at(flow_id_of(bytes, info));
    flows[i].lip = info.tuple.saddr;
    flows[i].lport = ntoh16(info.tuple.sport);
    flows[i].rs = info.tuple.daddr;
    flows[i].rport = ntoh16(info.tuple.dport);
    forwarded[i] = bytes;
  }

  // 1. The real servers refuse: the errors reach the clients from the VIP, quoting their own packets.
  frames.clear();
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    frames.push_back(port_unreachable(rig.server_mac(), rs_mac(f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10),
                                      f.rs, f.lip, 64, ip_part(forwarded[i])));
  }
  rig.inject(true, frames);
  out = rig.collect(false, flows.size());
  REQUIRE(out.size() == flows.size());
  std::size_t matched = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    frame_spec c = client_packet(f, rig.client_mac(), tcp_flags::syn);
    c.ttl = 63;  // the quote is the packet as the RS got it, translated back
    const fnat::inet_addr vip = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    const frame want = port_unreachable(f.v6 ? gw6_mac : gw_mac, rig.client_mac(), vip, f.client, 63,
                                        ip_part(test::build_frame(c)));
    for (const auto& bytes : out) matched += bytes == want ? 1 : 0;
  }
  CHECK(matched == flows.size());
  CHECK(rig.total(&lb::worker_stats::icmp_errors_out) == flows.size());

  // 2. The servers answer; the clients refuse the answers: the errors reach the RS from the LIP,
  //    quoting the RS's own reply.
  frames.clear();
  for (const flow& f : flows) frames.push_back(test::build_frame(server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack)));
  rig.inject(true, frames);
  out = rig.collect(false, flows.size());
  REQUIRE(out.size() == flows.size());
  std::vector<frame> replies(flows.size());
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info) == drop_reason::none);
    replies[by_id.at(flow_id_of(bytes, info))] = bytes;
  }
  frames.clear();
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    const fnat::inet_addr vip = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    frames.push_back(port_unreachable(rig.client_mac(), f.v6 ? gw6_mac : gw_mac, f.client, vip, 64, ip_part(replies[i])));
  }
  rig.inject(false, frames);
  out = rig.collect(true, flows.size());
  REQUIRE(out.size() == flows.size());
  matched = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    frame_spec r = server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack);
    r.ttl = 63;
    const frame want = port_unreachable(rs_mac(f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10),
                                        rig.server_mac(), f.lip, f.rs, 63, ip_part(test::build_frame(r)));
    for (const auto& bytes : out) matched += bytes == want ? 1 : 0;
  }
  CHECK(matched == flows.size());
  CHECK(rig.total(&lb::worker_stats::icmp_errors_in) == flows.size());
  CHECK(rig.all_drops() == 0);
  // Errors were hashed by their outer header: some reached the wrong worker and were handed on.
  CHECK(rig.total(&lb::worker_stats::redirected_out) > 0);

  // 3. Errors about no conn (a closed lport, a client we never saw) and a corrupted one: counted drops.
  frames.clear();
  flow ghost = flows[0];
  ghost.lport = static_cast<std::uint16_t>(ghost.lport + 1);
  frame_spec g = server_packet(ghost, rig.server_mac(), tcp_flags::ack);
  g.saddr = ghost.lip;  // what the RS would quote: LIP:lport -> RS:rport
  g.daddr = ghost.rs;
  g.sport = ghost.lport;
  g.dport = ghost.rport;
  frames.push_back(port_unreachable(rig.server_mac(), rs_mac(1), ghost.rs, ghost.lip, 64, ip_part(test::build_frame(g))));
  frame_spec stranger = server_packet(flows[0], rig.server_mac(), tcp_flags::syn | tcp_flags::ack);
  stranger.saddr = addr("198.18.1.100");  // VIP:80 -> a client we never saw
  stranger.sport = 80;
  stranger.daddr = addr("198.19.3.3");
  stranger.dport = flows[0].cport;
  REQUIRE(flows[0].tcp);
  REQUIRE_FALSE(flows[0].v6);
  frames.push_back(port_unreachable(rig.client_mac(), gw_mac, stranger.daddr, stranger.saddr, 64,
                                    ip_part(test::build_frame(stranger))));
  frame bad = port_unreachable(rig.server_mac(), rs_mac(1), flows[0].rs, flows[0].lip, 64, ip_part(forwarded[0]));
  bad.back() ^= 0x40;
  frames.push_back(bad);
  rig.inject(true, {frames[0], frames[2]});
  rig.inject(false, {frames[1]});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (rig.total_drop(lb::lb_drop::icmp_error_no_conn) + rig.total_drop(lb::lb_drop::icmp_error_malformed) < 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(rig.total_drop(lb::lb_drop::icmp_error_no_conn) == 2);
  CHECK(rig.total_drop(lb::lb_drop::icmp_error_malformed) == 1);
  CHECK(rig.all_drops() == 3);
  // The conns are untouched by the errors: as many as were created, none expired.
  CHECK(rig.total(&lb::worker_stats::conns_created) == flows.size());
  CHECK(rig.total(&lb::worker_stats::conns_expired) == 0);
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

}  // namespace

TEST_CASE("in-process balancer, flow mode: ICMP errors both ways, exact bytes, counted drops", "[lb][icmp]") {
  run_errors("flow");
}
TEST_CASE("in-process balancer, redirect mode: ICMP errors both ways, exact bytes, counted drops", "[lb][icmp]") {
  run_errors("redirect");
}
