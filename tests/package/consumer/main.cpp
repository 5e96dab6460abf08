// A user's program: builds a port plan with fnat::core and, with fnat::dpdk, links DPDK.
#include <fnat/core/port_plan.hpp>

#include <cstdio>

#if defined(CONSUMER_WITH_DPDK)
#include <rte_version.h>
#endif

int main() {
  auto plan = fnat::port_plan::make({.lcores = {{1, 0}, {2, 1}, {3, 2}}});
  if (!plan) {
    std::fprintf(stderr, "%s\n", plan.err().what().c_str());
    return 1;
  }
  std::printf("%s", plan->describe().c_str());
  if (plan->owner_index(1027) != 1027 % 4 % 3) return 1;
#if defined(CONSUMER_WITH_DPDK)
  std::printf("linked against %s\n", rte_version());
#endif
  return 0;
}
