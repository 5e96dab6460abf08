// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's rte_telemetry commands, for dpdk-telemetry.py (`--file-prefix` as given to EAL):
//   /fnat/stats              totals over all workers, drops by reason (drop_<reason>)
//   /fnat/lcores             per-worker counters: each key holds one value per worker, in worker order
//   /fnat/lcore,<index>      one worker's counters
//   /fnat/services           conns created per real server of each service (one value per RS)
//   /fnat/service,<name>     a service: VIP, protocol, LIPs, real servers with weights and conns
//   /fnat/sapool             local ports per LIP and worker: used, free, misses
//   /fnat/ports              steering mode of each port; /fnat/port,<name> adds the reason
// Counters are read with relaxed loads while the workers run; gauges (conns, ports) are refreshed by
// each worker every 100 ms.
#pragma once

namespace fnat::lb {

class balancer;

/// Registers the commands for `b` (once per process; a later call repoints them). Returns false when
/// telemetry is off in this EAL (--no-telemetry) or registration failed.
bool register_telemetry(balancer* b);

}  // namespace fnat::lb
