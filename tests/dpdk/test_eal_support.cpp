// SPDX-License-Identifier: BSD-3-Clause
// The EAL test helper itself: EAL starts once, net_ring ports deliver what a test puts on a queue's ring.
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include "support/eal.hpp"

TEST_CASE("net_ring port: a packet put on rx ring q arrives on rx queue q and tx queue q writes tx ring q",
          "[eal]") {
  fnat::test::require_eal();
  fnat::test::ring_port port("eal_support", 4);
  REQUIRE(rte_eth_dev_is_valid_port(port.port_id()));
  for (std::uint16_t q = 0; q < 4; ++q) {
    rte_mbuf* m = rte_pktmbuf_alloc(fnat::test::mbuf_pool());
    REQUIRE(m != nullptr);
    REQUIRE(rte_pktmbuf_append(m, 60) != nullptr);
    REQUIRE(rte_ring_enqueue(port.rx_ring(q), m) == 0);
    for (std::uint16_t other = 0; other < 4; ++other) {
      rte_mbuf* got[4];
      const auto n = rte_eth_rx_burst(port.port_id(), other, got, 4);
      REQUIRE(n == (other == q ? 1 : 0));
      if (n == 1) {
        REQUIRE(got[0] == m);
        REQUIRE(rte_eth_tx_burst(port.port_id(), q, got, 1) == 1);
      }
    }
    REQUIRE(rte_ring_count(port.tx_ring(q)) == 1);
  }
}
