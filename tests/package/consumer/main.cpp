// A user's program: the README's example (kept compiling here), and, with fnat::dpdk, a DPDK link.
#include <fnat/core/port_plan.hpp>
#include <fnat/core/sa_pool.hpp>

#include <cstdio>

#if defined(CONSUMER_WITH_DPDK)
#include <rte_version.h>
#endif

int main() {
  // ---- README: "The pieces" ----
  auto plan = fnat::port_plan::make({.lcores = {{1, 0}, {2, 1}, {3, 2}}});  // lcore 1 polls queue 0, ...
  auto policy = fnat::hashed_buckets::make(*plan, /*lcore index*/ 0);
  auto pool = fnat::sa_pool<>::make(*fnat::inet_addr::parse("198.18.2.100"), std::move(*policy));
  auto lease = pool->fetch({*fnat::inet_addr::parse("198.18.2.11"), 80});   // LIP:lport towards RS:80
  // ... plan->class_owner(lease.port) == 0: the reply to this port belongs to lcore 1 ...
  (void)pool->release_in(lease.bucket, lease.port);
  // ---- end of the README's example ----
  if (!plan || lease.status != fnat::errc::ok || plan->class_owner(lease.port) != 0) return 1;
  if (pool->stats().used != 0) return 1;
  std::printf("%s", plan->describe().c_str());
#if defined(CONSUMER_WITH_DPDK)
  std::printf("linked against %s\n", rte_version());
#endif
  return 0;
}
