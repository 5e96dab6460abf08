// SPDX-License-Identifier: BSD-3-Clause
// Churn soak (issue #9): millions of short connections through the in-process balancer, each ending
// at random - an orderly close, a client reset, a server reset, silence until the idle timeout, a UDP
// exchange - and at the end: every conn created has expired, every sa_pool is whole, no conn object is
// in use, nothing was dropped or redirected, and memory is flat (DPDK heap byte-for-byte, process RSS
// within 16 MiB).
//
// 2,000,000 flows by default (about 9 million packets), 200,000 in sanitizer builds; FNAT_SOAK_FLOWS
// overrides.
#include <rte_malloc.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;

std::size_t rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  std::size_t value = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> value;
      return value;
    }
    in.ignore(256, '\n');
  }
  return 0;
}

std::size_t rte_heap_bytes() {
  rte_malloc_socket_stats st{};
  std::size_t total = 0;
  for (int s = 0; s < RTE_MAX_NUMA_NODES; ++s)
    if (rte_malloc_get_socket_stats(s, &st) == 0) total += st.heap_allocsz_bytes;
  return total;
}

enum class ending : std::uint8_t { close, client_rst, server_rst, idle, udp };

struct soak_flow {
  flow f;
  ending how = ending::close;
};

}  // namespace

TEST_CASE("churn soak: millions of short conns with random endings leak nothing and keep memory flat", "[lb][soak]") {
#if defined(FNAT_ASAN)
  std::size_t total = 200'000;
#else
  std::size_t total = 2'000'000;
#endif
  if (const char* env = std::getenv("FNAT_SOAK_FLOWS")) total = std::strtoull(env, nullptr, 10);
  inprocess_rig rig({.mode = "flow", .conns_per_lcore = 16384, .name = "soak", .established_s = 1});
  std::mt19937_64 rng(7);
  constexpr std::size_t wave = 3000;
  std::size_t heap_after_first = 0, rss_after_first = 0;  // after the warm-up (a tenth of the flows)
  std::uint32_t next_id = 0x100000;
  std::size_t sent_flows = 0;
  std::map<ending, std::size_t> endings;

  auto phase = [&](std::vector<soak_flow>& flows, bool to_server, auto&& pick, auto&& frame_of) {
    std::vector<std::vector<std::uint8_t>> frames;
    for (soak_flow& s : flows)
      if (pick(s)) frames.push_back(test::build_frame(frame_of(s)));
    if (frames.empty()) return std::vector<std::vector<std::uint8_t>>{};
    rig.inject(to_server, frames);
    auto out = rig.collect(!to_server, frames.size());
    REQUIRE(out.size() == frames.size());
    return out;
  };

  while (sent_flows < total) {
    const std::size_t n = std::min(wave, total - sent_flows);
    std::vector<soak_flow> flows(n);
    std::map<std::uint32_t, std::size_t> by_id;
    for (std::size_t i = 0; i < n; ++i) {
      soak_flow& s = flows[i];
      const std::size_t k = sent_flows + i;
      s.f.v6 = (rng() & 3) == 0;
      const unsigned r = static_cast<unsigned>(rng() % 100);
      s.how = r < 40 ? ending::close : r < 60 ? ending::client_rst : r < 75 ? ending::server_rst : r < 85 ? ending::idle : ending::udp;
      s.f.tcp = s.how != ending::udp;
      // Client addresses and ports cycle so that tuples repeat across waves, long after their conn ended.
      const std::size_t host = k % 50000;
      char a[48];
      if (s.f.v6)
        std::snprintf(a, sizeof a, "2001:2:0:9::%zx", host + 1);
      else
        std::snprintf(a, sizeof a, "198.19.%zu.%zu", host / 250, 1 + host % 250);
      s.f.client = addr(a);
      s.f.cport = static_cast<std::uint16_t>(1024 + (k / 50000) % 60000);
      s.f.id = next_id++;
      by_id[s.f.id] = i;
      ++endings[s.how];
    }
    auto all = [](const soak_flow&) { return true; };
    auto tcp = [](const soak_flow& s) { return s.f.tcp; };
    const std::uint8_t syn = tcp_flags::syn, synack = tcp_flags::syn | tcp_flags::ack, ack = tcp_flags::ack;
    const std::uint8_t finack = tcp_flags::fin | tcp_flags::ack, rstack = tcp_flags::rst | tcp_flags::ack;
    // First packet out to a real server: learn each flow's LIP:lport and RS.
    for (const auto& bytes : phase(flows, false, all, [&](soak_flow& s) { return client_packet(s.f, rig.client_mac(), syn); })) {
      packet_info info;
      REQUIRE(parse(bytes, info) == drop_reason::none);
      soak_flow& s = flows.at(by_id.at(flow_id_of(bytes, info)));
      s.f.lip = info.tuple.saddr;
      s.f.lport = ntoh16(info.tuple.sport);
      s.f.rs = info.tuple.daddr;
      s.f.rport = ntoh16(info.tuple.dport);
    }
    (void)phase(flows, true, all, [&](soak_flow& s) { return server_packet(s.f, rig.server_mac(), synack); });
    (void)phase(flows, false, tcp, [&](soak_flow& s) { return client_packet(s.f, rig.client_mac(), ack); });
    // Endings.
    auto is = [](ending e) { return [e](const soak_flow& s) { return s.how == e; }; };
    (void)phase(flows, false, is(ending::close), [&](soak_flow& s) { return client_packet(s.f, rig.client_mac(), finack); });
    (void)phase(flows, true, is(ending::close), [&](soak_flow& s) { return server_packet(s.f, rig.server_mac(), finack); });
    (void)phase(flows, false, is(ending::close), [&](soak_flow& s) { return client_packet(s.f, rig.client_mac(), ack); });
    (void)phase(flows, false, is(ending::client_rst), [&](soak_flow& s) { return client_packet(s.f, rig.client_mac(), rstack); });
    (void)phase(flows, true, is(ending::server_rst), [&](soak_flow& s) { return server_packet(s.f, rig.server_mac(), rstack); });
    sent_flows += n;
    // Keep the live set below the table: let the previous waves' conns age out (1 s timeouts).
    while (rig.total(&lb::worker_stats::conns_created) - rig.total(&lb::worker_stats::conns_expired) > 8 * wave)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // The baseline is taken once a tenth of the flows went through: by then every preallocated pool
    // (mbufs, conns, rings) has been touched, so later growth would be a leak, not warm-up.
    if (heap_after_first == 0 && sent_flows >= total / 10) {
      heap_after_first = rte_heap_bytes();
      rss_after_first = rss_kib();
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (rig.total(&lb::worker_stats::conns_expired) < total && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  INFO("flows " << total << ": close " << endings[ending::close] << ", client reset " << endings[ending::client_rst]
                << ", server reset " << endings[ending::server_rst] << ", idle " << endings[ending::idle] << ", udp "
                << endings[ending::udp]);
  CHECK(rig.total(&lb::worker_stats::conns_created) == total);
  CHECK(rig.total(&lb::worker_stats::conns_expired) == total);
  CHECK(rig.all_drops() == 0);
  CHECK(rig.total(&lb::worker_stats::redirected_out) == 0);
  // Memory is flat: the DPDK heap did not grow after the warm-up, the process barely. (Not the RSS
  // under AddressSanitizer, whose quarantine keeps freed blocks resident by design; LeakSanitizer
  // checks that build's heap at exit instead.)
  CHECK(rte_heap_bytes() == heap_after_first);
  const std::size_t rss_end = rss_kib();
  INFO("RSS after the warm-up " << rss_after_first << " KiB, at the end " << rss_end << " KiB");
#if !defined(FNAT_ASAN)
  CHECK(rss_end <= rss_after_first + 16 * 1024);
#endif
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
  // One line for docs/ROBUSTNESS.md (run the binary with -s or look at ctest -V to see it).
  std::printf("soak: %zu flows (close %zu, client reset %zu, server reset %zu, idle timeout %zu, udp %zu); "
              "rx %llu packets, drops %llu; conns created %llu, expired %llu; DPDK heap %zu -> %zu bytes; "
              "RSS %zu -> %zu KiB; leak check %s\n",
              total, endings[ending::close], endings[ending::client_rst], endings[ending::server_rst],
              endings[ending::idle], endings[ending::udp],
              static_cast<unsigned long long>(rig.total(&lb::worker_stats::rx_packets)),
              static_cast<unsigned long long>(rig.all_drops()),
              static_cast<unsigned long long>(rig.total(&lb::worker_stats::conns_created)),
              static_cast<unsigned long long>(rig.total(&lb::worker_stats::conns_expired)), heap_after_first,
              rte_heap_bytes(), rss_after_first, rss_end, leaks.empty() ? "passed" : "FAILED");
}
