// SPDX-License-Identifier: BSD-3-Clause
#include "support/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace fnat::test {

namespace {
std::once_flag eal_once;
bool eal_ok = false;
std::string eal_error;

void start_eal() {
  std::vector<std::string> args = {"fnat-test", "--no-huge", "--no-shconf", "--no-pci", "-m", "512",
                                   "--file-prefix", "fnat-test-" + std::to_string(::getpid()),
                                   "--lcores", "(0-3)@(0-1)", "--log-level", "lib.eal:warning",
                                   "--log-level", "pmd.*:warning"};
  if (const char* extra = std::getenv("FNAT_TEST_EAL_ARGS")) {
    std::istringstream in(extra);
    for (std::string a; in >> a;) args.push_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    eal_error = std::string("rte_eal_init failed: ") + rte_strerror(rte_errno);
    return;
  }
  eal_ok = true;
  std::atexit([] {
    // --no-shconf still makes a runtime directory per --file-prefix: remove it, or every test process
    // leaves one behind in /var/run/dpdk.
    const std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
}
}  // namespace

void require_eal() {
  std::call_once(eal_once, start_eal);
  if (!eal_ok) throw std::runtime_error(eal_error);
}

rte_mempool* mbuf_pool() {
  require_eal();
  static rte_mempool* pool = rte_pktmbuf_pool_create("fnat_test_mbufs", 8191, 256, 0,
                                                      RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) throw std::runtime_error(std::string("mbuf pool: ") + rte_strerror(rte_errno));
  return pool;
}

ring_port::ring_port(const std::string& name, std::uint16_t queues, unsigned ring_size) {
  require_eal();
  for (std::uint16_t q = 0; q < queues; ++q) {
    const std::string rx_name = name + "_rx" + std::to_string(q);
    const std::string tx_name = name + "_tx" + std::to_string(q);
    rx_.push_back(rte_ring_create(rx_name.c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ));
    tx_.push_back(rte_ring_create(tx_name.c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (rx_.back() == nullptr || tx_.back() == nullptr)
      throw std::runtime_error("ring_port " + name + ": rte_ring_create: " + rte_strerror(rte_errno));
  }
  const int id = rte_eth_from_rings(name.c_str(), rx_.data(), queues, tx_.data(), queues, SOCKET_ID_ANY);
  if (id < 0) throw std::runtime_error("ring_port " + name + ": rte_eth_from_rings: " + rte_strerror(rte_errno));
  port_id_ = static_cast<std::uint16_t>(id);
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port_id_, queues, queues, &conf) != 0)
    throw std::runtime_error("ring_port " + name + ": configure failed");
  for (std::uint16_t q = 0; q < queues; ++q) {
    if (rte_eth_rx_queue_setup(port_id_, q, ring_size, SOCKET_ID_ANY, nullptr, mbuf_pool()) != 0 ||
        rte_eth_tx_queue_setup(port_id_, q, ring_size, SOCKET_ID_ANY, nullptr) != 0)
      throw std::runtime_error("ring_port " + name + ": queue setup failed");
  }
  if (rte_eth_dev_start(port_id_) != 0) throw std::runtime_error("ring_port " + name + ": start failed");
}

ring_port::~ring_port() {
  rte_eth_dev_stop(port_id_);
  rte_eth_dev_close(port_id_);
  for (auto* r : rx_) {
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
  for (auto* r : tx_) {
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
}

}  // namespace fnat::test
