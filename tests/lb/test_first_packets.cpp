// SPDX-License-Identifier: BSD-3-Clause
// What a first packet must show before the in-process balancer spends a conn and a local port on it
// (issue 14): checksums that verify, a source that is not ours nor a broadcast, a reverse path through
// the port it came in on; and what happens when there is no room: per-state bounds, a table that
// fills before the conn objects run out, refusal by reset (exact bytes, counted per connection, rate
// limited). Every drop is asserted on its own counter, every accepted packet on the wire, and the
// pools are whole at the end.
#include <rte_cycles.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fnat/core/tcp_reset.hpp>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;

template <class F>
bool wait_for(F&& f, int ms = 20000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

flow client_flow(int host, bool tcp, bool v6 = false) {
  flow f;
  f.v6 = v6;
  f.tcp = tcp;
  f.client = v6 ? addr(("2001:2:0:9::" + std::to_string(1 + host)).c_str())
                : addr(("198.19." + std::to_string(host / 250) + "." + std::to_string(1 + host % 250)).c_str());
  f.cport = static_cast<std::uint16_t>(30000 + host);
  f.id = 0x50000 + static_cast<std::uint32_t>(host);
  return f;
}

void leak_free(inprocess_rig& rig) {
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

std::uint64_t gauge(inprocess_rig& rig, const lb::counter lb::worker_stats::*c) { return rig.total(c); }

}  // namespace

TEST_CASE("first packets: bad checksums, own and broadcast sources, spoofed reverse paths are dropped by reason, "
          "no conn made",
          "[lb]") {
  inprocess_rig rig({.name = "trust"});
  const mac_addr lb = rig.client_mac();
  std::vector<std::vector<std::uint8_t>> bad;

  // IPv4 header checksum wrong (a SYN, a UDP datagram, and a packet of no conn: the header is checked
  // for every IPv4 packet).
  for (bool tcp : {true, false}) {
    auto f = test::build_frame(client_packet(client_flow(1, tcp), lb, tcp_flags::syn));
    f[14 + 10] ^= 0x40;
    bad.push_back(f);
  }
  {
    auto f = test::build_frame(client_packet(client_flow(2, true), lb, tcp_flags::ack));
    f[14 + 11] ^= 0x01;
    bad.push_back(f);
  }
  const std::uint64_t want_ip = 3;
  // TCP checksum wrong on a SYN; UDP checksum wrong; IPv6 TCP checksum wrong.
  {
    auto f = test::build_frame(client_packet(client_flow(3, true), lb, tcp_flags::syn));
    f[14 + 20 + 16] ^= 0x01;
    bad.push_back(f);
    f = test::build_frame(client_packet(client_flow(4, false), lb, 0));
    f[14 + 20 + 6] ^= 0x80;
    bad.push_back(f);
    f = test::build_frame(client_packet(client_flow(5, true, true), lb, tcp_flags::syn));
    f[14 + 40 + 17] ^= 0x01;
    bad.push_back(f);
  }
  const std::uint64_t want_l4 = 3;
  // Sources that are ours: the VIP itself (land), a LIP, an interface address; IPv6 VIP too.
  for (const char* src : {"198.18.1.100", "198.18.2.100", "198.18.0.1", "2001:2:0:3::100"}) {
    const bool v6 = std::string(src).find(':') != std::string::npos;
    frame_spec s = client_packet(client_flow(6, true, v6), lb, tcp_flags::syn);
    s.saddr = addr(src);
    bad.push_back(test::build_frame(s));
  }
  const std::uint64_t want_own = 4;
  // The broadcast address of a connected network.
  {
    frame_spec s = client_packet(client_flow(7, false), lb, 0);
    s.saddr = addr("198.18.0.255");
    bad.push_back(test::build_frame(s));
  }
  // Reverse path: a real server's address (IPv4, IPv6) and an address of the server network arriving on
  // the client port.
  for (const char* src : {"198.18.2.11", "2001:2:0:2::12", "198.18.2.77"}) {
    const bool v6 = std::string(src).find(':') != std::string::npos;
    frame_spec s = client_packet(client_flow(8, true, v6), lb, tcp_flags::syn);
    s.saddr = addr(src);
    bad.push_back(test::build_frame(s));
  }
  const std::uint64_t want_rpf = 3;
  rig.inject(false, bad);

  // A client beyond the gateway arriving on the server port: reverse path too.
  {
    frame_spec s = client_packet(client_flow(9, true), rig.server_mac(), tcp_flags::syn);
    rig.inject(true, {test::build_frame(s)});
  }

  REQUIRE(wait_for([&] { return rig.all_drops() == want_ip + want_l4 + want_own + 1 + want_rpf + 1; }));
  CHECK(rig.total_parse_drop(drop_reason::bad_ip_checksum) == want_ip);
  CHECK(rig.total_parse_drop(drop_reason::bad_l4_checksum) == want_l4);
  CHECK(rig.total_drop(lb::lb_drop::own_source) == want_own);
  CHECK(rig.total_drop(lb::lb_drop::broadcast_source) == 1);
  CHECK(rig.total_drop(lb::lb_drop::reverse_path) == want_rpf + 1);
  CHECK(rig.total(&lb::worker_stats::conns_created) == 0);

  // Accepted: a valid SYN, and an IPv4 datagram without a checksum (0 = none, RFC 768), both forwarded.
  flow ok_tcp = client_flow(10, true), ok_udp = client_flow(11, false);
  frame_spec nocsum = client_packet(ok_udp, lb, 0);
  nocsum.udp_no_checksum = true;
  rig.inject(false, {test::build_frame(client_packet(ok_tcp, lb, tcp_flags::syn)), test::build_frame(nocsum)});
  const auto out = rig.collect(true, 2);
  CHECK(out.size() == 2);
  CHECK(rig.total(&lb::worker_stats::conns_created) == 2);
  CHECK(rig.all_drops() == want_ip + want_l4 + want_own + 1 + want_rpf + 1);
  rig.lb().stop();
  leak_free(rig);
}

TEST_CASE("refusal by reset: exact RST per refused SYN, retransmissions not counted as new refusals, rate limited, "
          "half-open bound held",
          "[lb]") {
  inprocess_rig rig({.name = "rst",
                     .established_s = 1,
                     .global_extra = "max_half_open = 1\nsyn_refusal = rst\nrst_rate = 1\nrst_burst = 4\n"});
  const mac_addr lb = rig.client_mac();
  constexpr int n = 6;
  std::vector<flow> flows;
  std::vector<std::vector<std::uint8_t>> frames;
  for (int i = 0; i < n; ++i) {
    flows.push_back(client_flow(100 + i, true, i % 2 == 1));
    frames.push_back(test::build_frame(client_packet(flows.back(), lb, tcp_flags::syn)));
  }
  rig.inject(false, frames);
  // At most one half-open conn per worker (3 workers); every other SYN refused with a reset.
  REQUIRE(wait_for([&] {
    return rig.total(&lb::worker_stats::conns_created) + rig.total_drop(lb::lb_drop::half_open_limit) == n;
  }));
  const std::uint64_t created = rig.total(&lb::worker_stats::conns_created);
  const std::uint64_t refused = n - created;
  CHECK(created >= 1);
  CHECK(created <= 3);
  CHECK(rig.total(&lb::worker_stats::refused_conns) == refused);
  CHECK(rig.total(&lb::worker_stats::rsts_sent) == refused);  // burst 4 per worker: none limited yet
  const auto fwd = rig.collect(true, created);
  CHECK(fwd.size() == created);
  const auto rsts = rig.collect(false, refused);
  REQUIRE(rsts.size() == refused);
  std::set<std::uint32_t> refused_ids;
  for (const auto& bytes : rsts) {
    packet_info info;
    INFO(hex(bytes));
    REQUIRE(parse(bytes, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    const std::uint16_t cport = ntoh16(info.tuple.dport);
    REQUIRE(cport >= 30100);
    REQUIRE(cport < 30100 + n);
    const flow& f = flows[cport - 30100];
    refused_ids.insert(f.id);
    // Exactly the reset RFC 793 prescribes, from the VIP to the client through the gateway.
    const auto syn = test::build_frame(client_packet(f, lb, tcp_flags::syn));
    packet_info si;
    REQUIRE(parse(syn, si) == drop_reason::none);
    std::vector<std::uint8_t> want(96);
    want.resize(build_tcp_reset(want, reply_l2(syn, si, lb), *reset_for(syn, si)));
    CHECK(bytes.size() >= 54);
    CHECK(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(info.frame_len)) ==
          std::vector<std::uint8_t>(want.begin(), want.begin() + static_cast<long>(info.frame_len)));
    CHECK(info.tcp_flags == (tcp_flags::rst | tcp_flags::ack));
    CHECK(load_be32(bytes.data() + info.l4_off + 8) == f.id + 1);
    CHECK(load_be32(bytes.data() + info.l4_off + 4) == 0);
    CHECK(std::memcmp(bytes.data(), (f.v6 ? gw6_mac : gw_mac).bytes.data(), 6) == 0);
  }
  CHECK(refused_ids.size() == refused);

  // The clients retransmit their SYNs: refused again (and answered), but not new refusals.
  frames.clear();
  for (const flow& f : flows)
    if (refused_ids.count(f.id)) frames.push_back(test::build_frame(client_packet(f, lb, tcp_flags::syn)));
  rig.inject(false, frames);
  REQUIRE(wait_for([&] { return rig.total_drop(lb::lb_drop::half_open_limit) == 2 * refused; }));
  CHECK(rig.total(&lb::worker_stats::refused_conns) == refused);
  CHECK(rig.total(&lb::worker_stats::rsts_sent) + rig.total(&lb::worker_stats::rsts_limited) == 2 * refused);

  // A burst beyond the limit (4 per worker, 1 per second): resets suppressed and counted.
  frames.clear();
  for (int i = 0; i < 60; ++i) frames.push_back(test::build_frame(client_packet(client_flow(200 + i, true), lb, tcp_flags::syn)));
  rig.inject(false, frames);
  REQUIRE(wait_for([&] { return rig.total_drop(lb::lb_drop::half_open_limit) == 2 * refused + 60; }));
  const std::uint64_t sent = rig.total(&lb::worker_stats::rsts_sent);
  const std::uint64_t limited = rig.total(&lb::worker_stats::rsts_limited);
  CHECK(sent + limited == 2 * refused + 60);
  CHECK(sent <= 3 * 4 + 3 * 2);  // the bursts, plus what a second or two refills
  CHECK(limited >= 60 - 18);
  CHECK(rig.total(&lb::worker_stats::refused_conns) == refused + 60);
  (void)rig.collect(false, sent - refused);

  // The half-open gauge: at most one per worker; once the SYN_RECV timeout (1 s) passes, zero.
  REQUIRE(wait_for([&] { return gauge(rig, &lb::worker_stats::half_open) == created; }, 5000));
  REQUIRE(wait_for([&] { return rig.total(&lb::worker_stats::conns_expired) == created; }));
  REQUIRE(wait_for([&] { return gauge(rig, &lb::worker_stats::half_open) == 0; }, 5000));
  rig.lb().stop();
  leak_free(rig);
}

TEST_CASE("table full is reachable: a conn table smaller than the conn pool fills first, one-way UDP bounded", "[lb]") {
  SECTION("table") {
    inprocess_rig rig({.conns_per_lcore = 64, .name = "tfull", .global_extra = "conn_table_capacity = 4\n"});
    std::vector<std::vector<std::uint8_t>> frames;
    constexpr int n = 90;
    for (int i = 0; i < n; ++i)
      frames.push_back(test::build_frame(client_packet(client_flow(300 + i, i % 2 == 0), rig.client_mac(), tcp_flags::syn)));
    rig.inject(false, frames);
    REQUIRE(wait_for([&] {
      return rig.total(&lb::worker_stats::conns_created) + rig.total_drop(lb::lb_drop::table_full) == n;
    }));
    CHECK(rig.total(&lb::worker_stats::conns_created) == 12);  // 4 per worker, each worker got more than 4
    CHECK(rig.total_drop(lb::lb_drop::table_full) == n - 12);
    CHECK(rig.total_drop(lb::lb_drop::conn_pool_empty) == 0);
    CHECK(rig.total_drop(lb::lb_drop::port_exhausted) == 0);
    for (const auto& w : rig.lb().workers()) CHECK(w->table().size() == 4);
    const auto out = rig.collect(true, 12);
    REQUIRE(out.size() == 12);
    std::uint64_t tcp_created = 0;
    for (const auto& bytes : out) {
      packet_info info;
      REQUIRE(parse(bytes, info) == drop_reason::none);
      tcp_created += info.proto == ipproto::tcp;
    }
    CHECK(rig.total(&lb::worker_stats::refused_conns) == n / 2 - tcp_created);  // TCP connections refused
    rig.lb().stop();
  leak_free(rig);
  }
  SECTION("udp one-way") {
    inprocess_rig rig({.conns_per_lcore = 64, .name = "uow", .global_extra = "max_udp_oneway = 2\n"});
    std::vector<std::vector<std::uint8_t>> frames;
    constexpr int n = 60;
    for (int i = 0; i < n; ++i)
      frames.push_back(test::build_frame(client_packet(client_flow(400 + i, false), rig.client_mac(), 0)));
    rig.inject(false, frames);
    REQUIRE(wait_for([&] {
      return rig.total(&lb::worker_stats::conns_created) + rig.total_drop(lb::lb_drop::udp_oneway_limit) == n;
    }));
    CHECK(rig.total(&lb::worker_stats::conns_created) == 6);
    CHECK(rig.total_drop(lb::lb_drop::udp_oneway_limit) == n - 6);
    CHECK(rig.total(&lb::worker_stats::refused_conns) == 0);  // counted per TCP connection only
    REQUIRE(wait_for([&] { return gauge(rig, &lb::worker_stats::udp_oneway) == 6; }, 5000));
    rig.lb().stop();
  leak_free(rig);
  }
}
