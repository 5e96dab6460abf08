// SPDX-License-Identifier: BSD-3-Clause
// MSS clamping through the whole balancer (in-process, three workers, net_ring ports with the NIC
// model): services web and web6 with mss_clamp = 1300. Clients' SYNs reach the real servers with
// the MSS lowered to 1300, the real servers' SYN-ACKs reach the clients lowered too; exact bytes,
// against frames the test builds in full (its own checksums). An MSS already below the bound, and
// an option list that does not parse, cross untouched; the counters say which was which.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;
using frame = std::vector<std::uint8_t>;

constexpr std::uint16_t bound = 1300;

// The options each flow's SYN carries, by kind; and what must arrive.
enum class kind { above, above_odd, below, malformed };
kind kind_of(std::size_t i) { return static_cast<kind>(i % 4); }

frame options(kind k, bool clamped) {
  const std::uint16_t mss = clamped ? bound : 1460;
  const auto hi = static_cast<std::uint8_t>(mss >> 8), lo = static_cast<std::uint8_t>(mss);
  switch (k) {
    case kind::above: return {0x02, 0x04, hi, lo, 0x01, 0x03, 0x03, 0x07};  // MSS, NOP, WScale 7
    case kind::above_odd: return {0x01, 0x02, 0x04, hi, lo, 0x00, 0x00, 0x00};  // NOP, MSS (value at odd offset), EOL
    case kind::below: return {0x02, 0x04, 0x04, 0xb0, 0x01, 0x01, 0x04, 0x02};  // MSS 1200, NOP, NOP, SAckOK
    case kind::malformed: return {0x03, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x00, 0x00};  // a length-0 option first
  }
  return {};
}

int rs_index(const flow& f) { return f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10; }

}  // namespace

TEST_CASE("mss_clamp: SYNs towards the real servers and SYN-ACKs towards the clients carry MSS <= the bound, "
          "exact bytes",
          "[lb]") {
  inprocess_rig rig({.name = "mss", .tcp_service_extra = "mss_clamp = " + std::to_string(bound) + "\n"});
  std::vector<flow> flows;
  for (int i = 0; i < 48; ++i) {
    flow f;
    f.v6 = (i / 4) % 2 == 1;
    f.tcp = true;
    f.client = f.v6 ? addr(("2001:2:0:9::" + std::to_string(1 + i)).c_str())
                    : addr(("198.19.0." + std::to_string(1 + i)).c_str());
    f.cport = static_cast<std::uint16_t>(31000 + i);
    f.id = 0x30000u + static_cast<std::uint32_t>(i);
    flows.push_back(f);
  }
  std::map<std::uint32_t, std::size_t> by_id;
  for (std::size_t i = 0; i < flows.size(); ++i) by_id[flows[i].id] = i;

  // 1. SYNs in; what reaches the real servers.
  std::vector<frame> frames;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    frame_spec s = client_packet(flows[i], rig.client_mac(), tcp_flags::syn);
    s.tcp_options = options(kind_of(i), false);
    frames.push_back(test::build_frame(s));
  }
  rig.inject(false, frames);
  auto out = rig.collect(true, flows.size());
  REQUIRE(out.size() == flows.size());
  std::vector<frame> got(flows.size());
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info) == drop_reason::none);
    const std::size_t i = by_id.at(flow_id_of(bytes, info));
    flows[i].lip = info.tuple.saddr;
    flows[i].lport = ntoh16(info.tuple.sport);
    flows[i].rs = info.tuple.daddr;
    flows[i].rport = ntoh16(info.tuple.dport);
    got[i] = bytes;
  }
  std::size_t exact = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    frame_spec w = client_packet(f, rig.client_mac(), tcp_flags::syn);
    const kind k = kind_of(i);
    w.tcp_options = options(k, k == kind::above || k == kind::above_odd);
    w.dst = rs_mac(rs_index(f));
    w.src = rig.server_mac();
    w.saddr = f.lip;
    w.daddr = f.rs;
    w.sport = f.lport;
    w.dport = f.rport;
    w.ttl = 63;
    const frame want = test::build_frame(w);
    INFO("flow " << i << " kind " << static_cast<int>(k) << "\n got  " << hex(got[i]) << "\n want " << hex(want));
    CHECK(got[i] == want);
    exact += got[i] == want ? 1 : 0;
  }
  CHECK(exact == flows.size());
  const std::uint64_t clamped_syns = flows.size() / 2;  // kinds above and above_odd
  CHECK(rig.total(&lb::worker_stats::mss_clamped) == clamped_syns);
  CHECK(rig.total(&lb::worker_stats::mss_malformed) == flows.size() / 4);

  // 2. SYN-ACKs with MSS 1460 back; what reaches the clients.
  frames.clear();
  for (const flow& f : flows) {
    frame_spec s = server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack);
    s.tcp_options = options(kind::above, false);
    frames.push_back(test::build_frame(s));
  }
  rig.inject(true, frames);
  out = rig.collect(false, flows.size());
  REQUIRE(out.size() == flows.size());
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info) == drop_reason::none);
    got[by_id.at(flow_id_of(bytes, info))] = bytes;
  }
  exact = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow& f = flows[i];
    frame_spec w = server_packet(f, rig.server_mac(), tcp_flags::syn | tcp_flags::ack);
    w.tcp_options = options(kind::above, true);
    w.dst = f.v6 ? gw6_mac : gw_mac;
    w.src = rig.client_mac();
    w.saddr = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    w.daddr = f.client;
    w.sport = 80;
    w.dport = f.cport;
    w.ttl = 63;
    const frame want = test::build_frame(w);
    INFO("flow " << i << "\n got  " << hex(got[i]) << "\n want " << hex(want));
    CHECK(got[i] == want);
    exact += got[i] == want ? 1 : 0;
  }
  CHECK(exact == flows.size());
  CHECK(rig.total(&lb::worker_stats::mss_clamped) == clamped_syns + flows.size());
  CHECK(rig.total(&lb::worker_stats::mss_malformed) == flows.size() / 4);
  CHECK(rig.all_drops() == 0);

  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

TEST_CASE("without mss_clamp the MSS crosses unchanged and nothing is counted", "[lb]") {
  inprocess_rig rig({.name = "nomss"});
  flow f;
  f.client = addr("198.19.1.1");
  f.cport = 32000;
  f.id = 0x31000;
  frame_spec s = client_packet(f, rig.client_mac(), tcp_flags::syn);
  s.tcp_options = options(kind::above, false);
  rig.inject(false, {test::build_frame(s)});
  const auto out = rig.collect(true, 1);
  REQUIRE(out.size() == 1);
  packet_info info;
  REQUIRE(parse(out[0], info) == drop_reason::none);
  CHECK(out[0][info.l4_off + 22] == 0x05);  // MSS 1460 (0x05b4) still
  CHECK(out[0][info.l4_off + 23] == 0xb4);
  CHECK(rig.total(&lb::worker_stats::mss_clamped) == 0);
  CHECK(rig.lb().drain_and_check().empty());
}
