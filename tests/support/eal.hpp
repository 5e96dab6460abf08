// SPDX-License-Identifier: BSD-3-Clause
// EAL for tests: started once per test process, lazily, so that listing tests never starts it.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

struct rte_ring;

namespace fnat::test {

/// Starts EAL on first call with `--no-huge --no-shconf --no-pci -m 512`, a per-process
/// `--file-prefix` and four lcores floating over the CPUs this process may use; extra arguments come
/// from the environment variable FNAT_TEST_EAL_ARGS (space separated). Throws std::runtime_error
/// (Catch2 reports it) when EAL cannot start. rte_eal_cleanup runs at exit.
void require_eal();

/// A packet mbuf pool shared by the tests of one process (8191 mbufs of 2 KiB).
rte_mempool* mbuf_pool();

/// A started net_ring port with `queues` rx and tx queues. Each rx queue reads its own ring, so a test
/// (or the software NIC model) decides which queue a packet arrives on by the ring it enqueues to;
/// each tx queue writes its own ring, which the test drains. Closed and freed by the destructor.
class ring_port {
 public:
  ring_port(const std::string& name, std::uint16_t queues, unsigned ring_size = 1024);
  ~ring_port();
  ring_port(const ring_port&) = delete;
  ring_port& operator=(const ring_port&) = delete;

  [[nodiscard]] std::uint16_t port_id() const noexcept { return port_id_; }
  [[nodiscard]] std::uint16_t queues() const noexcept { return static_cast<std::uint16_t>(rx_.size()); }
  /// The ring rx queue q reads: enqueue here to make a packet arrive on queue q.
  [[nodiscard]] rte_ring* rx_ring(std::uint16_t q) const { return rx_.at(q); }
  /// The ring tx queue q writes: dequeue here to see what the port sent.
  [[nodiscard]] rte_ring* tx_ring(std::uint16_t q) const { return tx_.at(q); }

 private:
  std::uint16_t port_id_ = 0;
  std::vector<rte_ring*> rx_, tx_;
};

}  // namespace fnat::test
