// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's reload (issue 19; examples/fnat_lb/live.hpp) on the in-process rig, three workers
// running: a broken file and a file that changes what needs a restart are refused with their line and
// change nothing; a good file removes one real server, drains another, re-weights a third and adds a
// fourth while 120 TCP conns are open. Afterwards every conn opened before the reload still reaches
// the server it had (also those on the removed and the drained server), new conns go only to the
// configured, non-drained servers in the new weights' proportion, and the new server is counted
// under its own slot. Nothing leaks.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string write_variant(const std::string& base, const std::string& suffix, const std::string& text) {
  const std::string path = base + "." + suffix;
  std::ofstream(path) << text;
  return path;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// Line (1-based) of the first occurrence of `what` in `text`.
unsigned line_of(const std::string& text, const std::string& what) {
  const auto at = text.find(what);
  REQUIRE(at != std::string::npos);
  return 1 + static_cast<unsigned>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

std::vector<flow> make_flows(std::size_t n, std::uint32_t first_id, int host_base) {
  std::vector<flow> flows;
  for (std::size_t i = 0; i < n; ++i) {
    flow f;
    const int host = host_base + static_cast<int>(i);
    f.client = addr(("198.19." + std::to_string(host / 250) + "." + std::to_string(1 + host % 250)).c_str());
    f.cport = static_cast<std::uint16_t>(30000 + host);
    f.id = first_id + static_cast<std::uint32_t>(i);
    flows.push_back(f);
  }
  return flows;
}

// Sends one packet of every flow from the client side and returns, per flow id, the endpoint it was
// forwarded to (and fills lip/lport/rs/rport the first time).
std::map<std::uint32_t, fnat::endpoint> send_from_clients(inprocess_rig& rig, std::vector<flow>& flows, std::uint8_t flags) {
  std::vector<std::vector<std::uint8_t>> frames;
  for (const flow& f : flows) frames.push_back(test::build_frame(client_packet(f, rig.client_mac(), flags)));
  rig.inject(false, frames);
  const auto out = rig.collect(true, flows.size());
  REQUIRE(out.size() == flows.size());
  std::map<std::uint32_t, std::size_t> by_id;
  for (std::size_t i = 0; i < flows.size(); ++i) by_id[flows[i].id] = i;
  std::map<std::uint32_t, fnat::endpoint> to;
  for (const auto& bytes : out) {
    packet_info info;
    REQUIRE(parse(bytes, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    const std::uint32_t id = flow_id_of(bytes, info);
    const auto it = by_id.find(id);
    REQUIRE(it != by_id.end());
    flow& f = flows[it->second];
    const fnat::endpoint rs{info.tuple.daddr, ntoh16(info.tuple.dport)};
    if (f.lport == 0) {
      f.lip = info.tuple.saddr;
      f.lport = ntoh16(info.tuple.sport);
      f.rs = rs.addr;
      f.rport = rs.port;
    }
    // The MAC is the server's (static neighbours .11 .12 .13 -> 02:bb::01..03).
    REQUIRE(std::equal(bytes.begin(), bytes.begin() + 6, rs_mac(rs.addr.v4().bytes()[3] - 10).bytes.begin()));
    to[id] = rs;
  }
  return to;
}

fnat::endpoint ep(const char* s) { return *fnat::endpoint::parse(s); }

std::uint64_t rs_conns(inprocess_rig& rig, std::size_t service, std::size_t slot) {
  std::uint64_t n = 0;
  for (const auto& w : rig.lb().workers()) n += w->rs_conns(service, slot).get();
  return n;
}

}  // namespace

TEST_CASE("fnat_lb reload: established conns keep their server, new ones follow the new weights, drain, refusals",
          "[lb][reload]") {
  inprocess_rig rig({.mode = "flow", .name = "rl"});
  const std::string base = rig.config_path();
  const std::string original = read_file(base);
  REQUIRE(rig.lb().live_version() == 1);

  // 1. 120 conns under the start-up file: web = .11:8080, .12:8080, .13:8080 weight 2 (wrr).
  auto before = make_flows(120, 0x200000, 0);
  const auto first = send_from_clients(rig, before, tcp_flags::syn);
  std::map<fnat::endpoint, int> spread;
  for (const auto& [id, to] : first) ++spread[to];
  REQUIRE(spread[ep("198.18.2.11:8080")] > 0);
  REQUIRE(spread[ep("198.18.2.12:8080")] > 0);
  REQUIRE(spread[ep("198.18.2.13:8080")] > 0);
  // Established: the clients' ACKs.
  (void)send_from_clients(rig, before, tcp_flags::ack);

  // 2. A broken file: refused with its file and line, nothing changes.
  const std::string broken_text = replace_once(original, "rs = 198.18.2.12:8080\n", "rs = 198.18.2.12:8080 weight=lots\n");
  const std::string broken = write_variant(base, "broken", broken_text);
  auto r = rig.lb().reload(broken);
  REQUIRE_FALSE(r);
  INFO(r.err().message());
  CHECK(r.err().message().find(broken + ":" + std::to_string(line_of(broken_text, "weight=lots"))) != std::string::npos);
  CHECK(rig.lb().live_version() == 1);

  // 3. A change that needs a restart (a global key, a LIP): refused, named, nothing changes.
  const std::string restart_text = replace_once(original, "lip = 198.18.2.101\n", "");
  const std::string restart = write_variant(base, "restart", restart_text);
  r = rig.lb().reload(restart);
  REQUIRE_FALSE(r);
  CHECK(r.err().code() == errc::not_supported);
  CHECK(r.err().message().find("needs a restart") != std::string::npos);
  CHECK(rig.lb().live_version() == 1);

  // 4. The good file: .11:8080 removed, .12 drained, .13 down to weight 1, a new server .11:8081 (a
  //    distinct endpoint on a host whose MAC the rig knows) with weight 3.
  std::string good_text = replace_once(original,
                                       "rs = 198.18.2.11:8080\nrs = 198.18.2.12:8080\nrs = 198.18.2.13:8080 weight=2\n",
                                       "rs = 198.18.2.12:8080 weight=0\nrs = 198.18.2.13:8080\nrs = 198.18.2.11:8081 weight=3\n");
  const std::string good = write_variant(base, "good", good_text);
  r = rig.lb().reload(good);
  INFO((r ? *r : r.err().message()));
  REQUIRE(r);
  CHECK(rig.lb().live_version() == 2);
  CHECK(r->find("+198.18.2.11:8081*3") != std::string::npos);
  CHECK(r->find("-198.18.2.11:8080") != std::string::npos);
  CHECK(r->find("198.18.2.12:8080*1->0 (drained)") != std::string::npos);
  const std::uint64_t drained_before = rs_conns(rig, 0, 1);

  // 5. Every conn opened before the reload still reaches its own server, removed and drained ones too.
  const auto after = send_from_clients(rig, before, tcp_flags::ack);
  for (const auto& [id, to] : first) {
    INFO("flow " << id << " was on " << to.to_string());
    REQUIRE(after.at(id) == to);
  }

  // 6. New conns: only .13:8080 and .11:8081, 1:3 (each worker's WRR is exact over each period of 4).
  auto later = make_flows(400, 0x300000, 1000);
  const auto fresh = send_from_clients(rig, later, tcp_flags::syn);
  std::map<fnat::endpoint, int> now;
  for (const auto& [id, to] : fresh) ++now[to];
  CHECK(now[ep("198.18.2.11:8080")] == 0);
  CHECK(now[ep("198.18.2.12:8080")] == 0);
  CHECK(now[ep("198.18.2.13:8080")] + now[ep("198.18.2.11:8081")] == 400);
  CHECK(std::abs(now[ep("198.18.2.11:8081")] - 300) <= 9);
  // Slots: the new server got slot 3 (after the start-up file's 0..2), the drained one none more.
  CHECK(rs_conns(rig, 0, 3) == static_cast<std::uint64_t>(now[ep("198.18.2.11:8081")]));
  CHECK(rs_conns(rig, 0, 1) == drained_before);
  CHECK(rig.total_drop(lb::lb_drop::no_real_server) == 0);
  // Their next packets follow them (the tag is the slot, not the scheduler's index).
  const auto fresh_ack = send_from_clients(rig, later, tcp_flags::ack);
  for (const auto& [id, to] : fresh) REQUIRE(fresh_ack.at(id) == to);

  // 7. Back to the start-up file: .11:8080 returns to its old slot 0; old conns are unaffected.
  r = rig.lb().reload(base);
  REQUIRE(r);
  CHECK(rig.lb().live_version() == 3);
  const auto again = send_from_clients(rig, before, tcp_flags::ack);
  for (const auto& [id, to] : first) REQUIRE(again.at(id) == to);
  auto third = make_flows(40, 0x400000, 2000);
  const std::uint64_t slot0 = rs_conns(rig, 0, 0);
  const auto back = send_from_clients(rig, third, tcp_flags::syn);
  std::uint64_t to_11 = 0;
  for (const auto& [id, to] : back) to_11 += to == ep("198.18.2.11:8080");
  CHECK(to_11 > 0);
  CHECK(rs_conns(rig, 0, 0) - slot0 == to_11);
  CHECK(rs_conns(rig, 0, 3) == static_cast<std::uint64_t>(now[ep("198.18.2.11:8081")]));

  CHECK(rig.all_drops() == 0);
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
  for (const char* s : {"broken", "restart", "good"}) std::remove((base + "." + s).c_str());
}
