// SPDX-License-Identifier: BSD-3-Clause
// nic_probe: what reply steering would a port get? For a port on the EAL command line, configures it
// with one rx queue per lcore to be, asks it (without installing anything) whether it takes masked-port
// flow rules, address-only rules (one LIP per lcore), a programmable RSS key and RETA, and prints each
// answer with the PMD's own message, then the mode fnat::dpdk::reply_steering would choose.
//
//   nic_probe <EAL args> -- [--port N] [--lcores N] [--lip ADDR]...
//   e.g.  nic_probe -a 0000:3b:00.0 -- --lcores 6
//         nic_probe --no-huge --no-pci --vdev net_null0 -- --lcores 3
// --lcores: the worker count to plan for (default 4, at most the port's rx queues); --lip: LIPs to
// probe with (default: as many 198.18.0.x and 2001:2::x as lcores, so one LIP per lcore is not ruled
// out by the count). Exit status 0 when the probe ran, 1 on a usage or device error.
#include <fnat/dpdk/reply_steering.hpp>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "nic_probe: %s\n", what.c_str());
  rte_eal_cleanup();
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int used = rte_eal_init(argc, argv);
  if (used < 0) {
    std::fprintf(stderr, "nic_probe: rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  std::uint16_t port = 0;
  std::size_t lcores = 4;
  std::vector<fnat::inet_addr> lips;
  for (int i = used + 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--port" && has_value) {
      port = static_cast<std::uint16_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "--lcores" && has_value) {
      lcores = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--lip" && has_value) {
      auto addr = fnat::inet_addr::parse(argv[++i]);
      if (!addr) return fail(std::string("--lip ") + argv[i] + ": not an IPv4 or IPv6 address");
      lips.push_back(*addr);
    } else {
      return fail("unknown argument " + std::string(a) + "; use [--port N] [--lcores N] [--lip ADDR]...");
    }
  }
  if (!rte_eth_dev_is_valid_port(port))
    return fail("port " + std::to_string(port) + " does not exist (" + std::to_string(rte_eth_dev_count_avail()) +
                " ports; give one with -a or --vdev)");
  rte_eth_dev_info info{};
  if (const int rc = rte_eth_dev_info_get(port, &info); rc != 0)
    return fail("rte_eth_dev_info_get: " + std::string(rte_strerror(-rc)));
  if (lcores == 0) return fail("--lcores 0: plan for at least one lcore");
  if (lcores > info.max_rx_queues) {
    std::printf("port %u has %u rx queues: planning for %u lcores instead of %zu\n", port, info.max_rx_queues,
                info.max_rx_queues, lcores);
    lcores = info.max_rx_queues;
  }
  const auto nq = static_cast<std::uint16_t>(lcores);
  if (lips.empty())
    for (std::size_t j = 0; j < lcores; ++j) {
      lips.push_back(*fnat::inet_addr::parse("198.18.0." + std::to_string(j + 1)));
      lips.push_back(*fnat::inet_addr::parse("2001:2::" + std::to_string(j + 1)));
    }

  // rte_flow and RSS answer only on a configured port: one rx queue per lcore, RSS when offered.
  rte_eth_conf conf{};
  const std::uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  if (hf != 0 && nq > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = hf;
  }
  if (const int rc = rte_eth_dev_configure(port, nq, nq, &conf); rc != 0)
    return fail("rte_eth_dev_configure with " + std::to_string(nq) + " queues: " + rte_strerror(-rc));
  rte_mempool* pool = rte_pktmbuf_pool_create("nic_probe", 1023 + 512u * nq, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) return fail(std::string("mbuf pool: ") + rte_strerror(rte_errno));
  for (std::uint16_t q = 0; q < nq; ++q) {
    if (const int rc = rte_eth_rx_queue_setup(port, q, 256, rte_socket_id(), nullptr, pool); rc != 0)
      return fail("rx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    if (const int rc = rte_eth_tx_queue_setup(port, q, 256, rte_socket_id(), nullptr); rc != 0)
      return fail("tx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
  }
  if (const int rc = rte_eth_dev_start(port); rc != 0) return fail(std::string("rte_eth_dev_start: ") + rte_strerror(-rc));

  fnat::dpdk::reply_steering_config cfg;
  cfg.port = port;
  for (std::uint16_t q = 0; q < nq; ++q) cfg.plan.lcores.push_back({q, q});  // lcore ids stand in: only queues matter
  cfg.lips = lips;
  auto probe = fnat::dpdk::probe_reply_steering(fnat::dpdk::rte_ethdev_ops{}, cfg);
  int status = 0;
  if (!probe) {
    std::fprintf(stderr, "nic_probe: %s\n", probe.err().message().c_str());
    status = 1;
  } else {
    std::printf("reply steering probe, %zu lcores, %zu LIPs\n%s", lcores, lips.size(), probe->describe().c_str());
  }
  rte_eth_dev_stop(port);
  rte_eth_dev_close(port);
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return status;
}
