// SPDX-License-Identifier: BSD-3-Clause
// fnat_minimal [EAL options] -- --vip ADDR:PORT --rs ADDR:PORT --lip ADDR --client-gw MAC --server-gw MAC
//              [--sessions N]
// --vip, --rs and --lip repeat; IPv6 as [2001:2::1]:80. Port 0 faces the clients, port 1 the real
// servers; every EAL lcore but the main one is a worker. SIGINT or SIGTERM stops it;
// it then prints its counters and checks that every session and local port was given back.
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
#include <numeric>
#include <thread>

namespace {

std::atomic<bool> quit{false};
minimal::forwarder<>* fwd = nullptr;

int fail(const std::string& why) {
  std::fprintf(stderr, "fnat_minimal: %s\n", why.c_str());
  return 1;
}

// One rx and one tx queue per worker; on the client side RSS spreads the flows over them.
bool start_port(std::uint16_t port, std::uint16_t queues, rte_mempool* mbufs) {
  rte_eth_dev_info info{};
  rte_eth_conf conf{};
  if (rte_eth_dev_info_get(port, &info) != 0) return false;
  if (queues > 1) conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
  conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  bool ok = rte_eth_dev_configure(port, queues, queues, &conf) == 0;
  for (std::uint16_t q = 0; ok && q < queues; ++q)
    ok = rte_eth_rx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr, mbufs) == 0 &&
         rte_eth_tx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), nullptr) == 0;
  return ok && rte_eth_dev_start(port) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) return fail("rte_eal_init failed");
  minimal::config c;
  for (int i = eal_args + 1; i < argc; i += 2) {
    const std::string k = argv[i], v = i + 1 < argc ? argv[i + 1] : "";
    const auto ep = fnat::endpoint::parse(v);
    const auto ip = fnat::inet_addr::parse(v);
    const auto mac = fnat::mac_addr::parse(v);
    std::size_t n = 0;
    const bool num = std::from_chars(v.data(), v.data() + v.size(), n).ptr == v.data() + v.size() && n > 0;
    if ((k == "--vip" || k == "--rs") && ep) (k == "--vip" ? c.vips : c.servers).push_back(*ep);
    else if (k == "--lip" && ip) c.lips.push_back(*ip);
    else if ((k == "--client-gw" || k == "--server-gw") && mac) (k == "--client-gw" ? c.client_gw : c.server_gw) = *mac;
    else if (k == "--sessions" && num) c.sessions = n;
    else return fail("'" + k + " " + v + "': see the usage at the top of examples/minimal/main.cpp");
  }
  unsigned lcore = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) c.lcores.push_back(lcore);
  if (c.lcores.empty() || rte_eth_dev_count_avail() < 2) return fail("needs two ports and a worker lcore (-l 0,1)");
  const auto queues = static_cast<std::uint16_t>(c.lcores.size());
  rte_mempool* mbufs = rte_pktmbuf_pool_create("minimal", 16384u * queues + 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                               static_cast<int>(rte_socket_id()));
  if (mbufs == nullptr || !start_port(c.client_port, queues, mbufs) || !start_port(c.server_port, queues, mbufs))
    return fail("cannot set up the ports (mbuf pool, queues or start)");
  auto f = minimal::forwarder<>::make(c, {.value = rte_get_tsc_cycles(), .hz = rte_get_tsc_hz()});
  if (!f) return fail(f.err().message());
  fwd = f->get();
  std::signal(SIGINT, [](int) { quit = true; });
  std::signal(SIGTERM, [](int) { quit = true; });
  for (std::size_t i = 0; i < c.lcores.size(); ++i)
    rte_eal_remote_launch(
        [](void* arg) {
          const auto i = reinterpret_cast<std::uintptr_t>(arg);
          while (!quit.load(std::memory_order_relaxed)) fwd->poll(i, rte_get_tsc_cycles());
          return 0;
        },
        reinterpret_cast<void*>(i), c.lcores[i]);
  while (!quit) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  rte_eal_mp_wait_lcore();
  bool leaks = false;
  for (std::size_t i = 0; i < fwd->workers.size(); ++i) {
    minimal::worker& w = *fwd->workers[i];
    const auto dropped = std::accumulate(w.drops.begin(), w.drops.end(), std::uint64_t{0}) +
                         std::accumulate(w.parse_drops.begin(), w.parse_drops.end(), std::uint64_t{0});
    const auto st = w.table->stats();
    std::printf("lcore %u: rx %lu tx %lu dropped %lu opened %lu expired %lu refused %lu open %zu\n", c.lcores[i], w.rx,
                w.tx, dropped, st.opened, st.expired, st.refusals(), st.open);
    w.table->drain();
    if (const std::string r = w.leak_report(); !r.empty()) {
      leaks = true;
      std::printf("lcore %u leaks:%s\n", c.lcores[i], r.c_str());
    }
  }
  std::printf(leaks ? "fnat_minimal: LEAKS\n" : "fnat_minimal: no leaks\n");
  f->reset();
  for (std::uint16_t p : {c.client_port, c.server_port}) rte_eth_dev_stop(p), rte_eth_dev_close(p);
  rte_eal_cleanup();
  return leaks ? 1 : 0;
}
