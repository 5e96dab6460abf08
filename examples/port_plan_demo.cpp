// SPDX-License-Identifier: BSD-3-Clause
// Prints a port plan for a few lcore counts and, for each lcore, the flow rules that steer replies
// to its rx queue (dpdk-testpmd syntax).
#include <fnat/core/port_plan.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 6;
  std::vector<fnat::lcore_queue> lcores;
  for (std::size_t i = 0; i < n; ++i) lcores.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
  auto plan = fnat::port_plan::make({.lcores = lcores});
  if (!plan) {
    std::fprintf(stderr, "%s\n", plan.err().what().c_str());
    return 1;
  }
  std::printf("%s\n", plan->describe().c_str());
  const char* lip = "198.18.2.100";
  for (std::size_t i = 0; i < plan->size(); ++i) {
    std::printf("# lcore %u -> rx queue %u\n", plan->lcore(i).lcore_id, plan->lcore(i).rx_queue);
    for (auto base : plan->bases(i))
      std::printf("flow create 0 ingress pattern eth / ipv4 dst is %s / tcp dst spec %u dst mask %u / end "
                  "actions queue index %u / end\n",
                  lip, base, plan->mask(), plan->lcore(i).rx_queue);
  }
  return 0;
}
