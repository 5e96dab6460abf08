// SPDX-License-Identifier: BSD-3-Clause
// fnat_minimal: the forwarder of minimal.hpp on two DPDK ports.
//   fnat_minimal [EAL options] -- --vip ADDR:PORT --rs ADDR:PORT --lip ADDR --client-gw MAC --server-gw MAC
//                [--sessions N] [--run-for SECONDS]
// --vip, --rs and --lip repeat (IPv6 as [2001:2::1]:80). Port 0 faces the clients, port 1 the real
// servers; each worker lcore (EAL's lcores but the main one) polls its own queue of both ports.
// SIGINT / SIGTERM (or --run-for) stops it; it prints its counters and checks that every session
// and local port it claimed was given back (exit status 1 if not).
#include "minimal.hpp"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string_view>
#include <thread>

namespace {

std::atomic<bool> quit{false};
minimal::forwarder<>* fwd = nullptr;

int fail(const std::string& why) {
  std::fprintf(stderr, "fnat_minimal: %s\n", why.c_str());
  return 1;
}

std::optional<fnat::endpoint> parse_endpoint(std::string_view s) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::uint16_t port = 0;
  const auto [end, ec] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), port);
  auto addr = fnat::inet_addr::parse(host);
  if (!addr || ec != std::errc() || end != s.data() + s.size() || port == 0) return std::nullopt;
  return fnat::endpoint{*addr, port};
}

// One rx and one tx queue per worker; RSS spreads the clients' flows over them.
std::string start_port(std::uint16_t port, std::uint16_t queues, rte_mempool* mbufs) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port, &info) != 0) return "port " + std::to_string(port) + " does not exist";
  rte_eth_conf conf{};
  if (queues > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  if (rte_eth_dev_configure(port, queues, queues, &conf) != 0) return "rte_eth_dev_configure failed";
  for (std::uint16_t q = 0; q < queues; ++q)
    if (rte_eth_rx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr, mbufs) != 0 ||
        rte_eth_tx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr) != 0)
      return "queue setup failed";
  return rte_eth_dev_start(port) == 0 ? "" : "rte_eth_dev_start failed";
}

int worker_main(void* arg) {
  const auto i = reinterpret_cast<std::uintptr_t>(arg);
  while (!quit.load(std::memory_order_relaxed)) fwd->poll(i, rte_get_tsc_cycles());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int used = rte_eal_init(argc, argv);
  if (used < 0) return fail("rte_eal_init failed");
  minimal::config c;
  std::size_t run_for = 0;  // seconds
  for (int i = used + 1; i < argc; i += 2) {
    const std::string k = argv[i], v = i + 1 < argc ? argv[i + 1] : "";
    if (k == "--vip" || k == "--rs") {
      const auto e = parse_endpoint(v);
      if (!e) return fail(k + " " + v + ": write ADDR:PORT, e.g. 198.18.1.100:80 or [2001:2::100]:80");
      (k == "--vip" ? c.vips : c.servers).push_back(*e);
    } else if (k == "--lip") {
      const auto a = fnat::inet_addr::parse(v);
      if (!a) return fail("--lip " + v + ": not an IPv4 or IPv6 address");
      c.lips.push_back(*a);
    } else if (k == "--client-gw" || k == "--server-gw") {
      const auto m = fnat::mac_addr::parse(v);
      if (!m) return fail(k + " " + v + ": write a MAC as 02:00:00:00:00:01");
      (k == "--client-gw" ? c.client_gw : c.server_gw) = *m;
    } else if (k == "--sessions" || k == "--run-for") {
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size() || n == 0) return fail(k + " " + v + ": a positive number");
      (k == "--sessions" ? c.sessions : run_for) = n;
    } else {
      return fail("unknown option '" + k + "' (see the usage at the top of examples/minimal/main.cpp)");
    }
  }
  unsigned lcore = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) c.lcores.push_back(lcore);
  if (c.lcores.empty()) return fail("no worker lcore: give EAL two lcores or more (-l 0,1)");
  if (rte_eth_dev_count_avail() < 2) return fail("needs two ports: 0 faces the clients, 1 the real servers");
  const auto queues = static_cast<std::uint16_t>(c.lcores.size());
  rte_mempool* mbufs = rte_pktmbuf_pool_create("minimal", 4096u * 4 * queues + 4095, 256, 0,
                                               RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (mbufs == nullptr) return fail("no memory for the mbuf pool");
  for (std::uint16_t p : {c.client_port, c.server_port})
    if (const std::string e = start_port(p, queues, mbufs); !e.empty()) return fail("port " + std::to_string(p) + ": " + e);
  auto f = minimal::forwarder<>::make(c, {.value = rte_get_tsc_cycles(), .hz = rte_get_tsc_hz()});
  if (!f) return fail(f.err().message());
  fwd = f->get();
  std::signal(SIGINT, [](int) { quit = true; });
  std::signal(SIGTERM, [](int) { quit = true; });
  for (std::size_t i = 0; i < c.lcores.size(); ++i)
    rte_eal_remote_launch(worker_main, reinterpret_cast<void*>(i), c.lcores[i]);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(run_for);
  while (!quit && (run_for == 0 || std::chrono::steady_clock::now() < end))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  quit = true;
  rte_eal_mp_wait_lcore();
  int leaks = 0;
  for (std::size_t i = 0; i < fwd->size(); ++i) {
    minimal::worker& w = fwd->at(i);
    const auto st = w.table->stats();
    std::uint64_t dropped = 0;
    for (auto d : w.parse_drops) dropped += d;
    for (auto d : w.drops) dropped += d;
    std::printf("lcore %u: rx %lu tx %lu dropped %lu opened %lu expired %lu refused %lu open %zu\n", c.lcores[i],
                w.rx, w.tx, dropped, st.opened, st.expired, st.refusals(), st.open);
    w.table->drain();
    if (const std::string r = fwd->leak_report(i); !r.empty()) leaks += std::printf("lcore %u leaks:%s\n", c.lcores[i], r.c_str());
  }
  std::printf(leaks ? "fnat_minimal: LEAKS\n" : "fnat_minimal: no leaks\n");
  f->reset();
  for (std::uint16_t p : {c.client_port, c.server_port}) rte_eth_dev_stop(p), rte_eth_dev_close(p);
  rte_eal_cleanup();
  return leaks ? 1 : 0;
}
