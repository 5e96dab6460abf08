// SPDX-License-Identifier: BSD-3-Clause
// What fnat_lb changes while it runs (issue 19): the real servers of its services, published to the
// workers through fnat::dpdk::rcu_cell (fnat/dpdk/rcu_publish.hpp).
//
// ## The snapshot
// `lb_live` holds, per service, the real-server slots, the scheduler's view (index -> slot, weights)
// and one scheduler per worker (round robin and WRR advance a cursor, so each worker owns its own;
// Maglev copies share one table). A worker reads the snapshot once per burst and reports a quiescent
// state after it; a reload builds a whole new snapshot on the control thread and publishes it with
// one pointer store. The old one is freed once every worker has passed a burst boundary.
//
// ## A real server's stable identity: its slot
// A conn remembers its real server in the session's hot `tag`. Scheduler indices cannot be that tag:
// removing the second of three servers renumbers the third, and a conn opened to it would then be
// forwarded to whoever is third now. So the tag is a *slot*: per service, an append-only table of
// real servers (address and route) in which a server keeps its slot for the life of the process.
//   - a server in the new file that had a slot (same address and port) gets the same slot again, so
//     removing and re-adding a server, or changing its weight, keeps its slot;
//   - a new server gets the next free slot; a removed server's slot stays (marked removed), so its
//     established conns keep flowing to it until they end, and it is never given to another server;
//   - slot i is identical in every snapshot that has it (the new snapshot copies the old slots), so a
//     conn tagged under one snapshot forwards correctly under every later one.
// Slots are bounded (lb_max_slots per service; the per-worker conn counters are sized for it): a
// reload that would need more distinct servers than that over the process's life is refused with a
// message that says to restart. Weights (0 = drained: no new conns, established ones finish) live in
// the scheduler, not in the slot.
//
// ## What a reload may change
// The real servers of existing services (add, remove, weight, drain) and the scheduler of a service.
// Everything else (ports, addresses, routes, neighbours, workers, timeouts, global keys, services
// added or removed, a service's VIP, LIPs or mss_clamp) is compared with the running configuration,
// and a difference refuses the reload with "needs a restart" and what differs; the running
// configuration stays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fnat/core/error.hpp>
#include <fnat/core/scheduler.hpp>

#include "fnat_lb/config.hpp"

namespace fnat::lb {

struct lb_shared;
struct lb_real_server;

/// Most real-server slots one service has over the life of the process (see the file comment).
inline constexpr std::uint32_t lb_max_slots = 256;

/// One slot: a real server as conns see it. Immutable once created.
struct lb_slot {
  endpoint addr;
  std::uint16_t port = 0;     ///< egress port index
  inet_addr next_hop{};
  bool configured = true;     ///< false: removed from the configuration; its conns still finish
};

/// One service's live state.
struct lb_live_service {
  std::vector<lb_slot> slots;             ///< slot id -> server; append-only across snapshots
  std::vector<std::uint32_t> slot_of;     ///< scheduler index -> slot id
  std::vector<std::uint32_t> weight_of;   ///< scheduler index -> weight (0 = drained)
};

/// What the workers read, one snapshot per configuration version (see the file comment).
struct lb_live {
  std::uint64_t version = 1;
  std::vector<lb_live_service> services;  ///< lb_shared::services order
  /// [worker][service]: each worker picks with its own row and touches no other (mutable because the
  /// snapshot is otherwise immutable and shared).
  mutable std::vector<std::vector<any_scheduler>> sched;
};

/// Builds the snapshot for `cfg`, keeping the slots of `prev` (null at start: slot i = rs i).
/// Errors: a real server with no route, more than lb_max_slots slots, a scheduler that cannot be built.
[[nodiscard]] result<std::unique_ptr<const lb_live>> build_live(const lb_config& cfg, const lb_live* prev,
                                                                std::size_t workers);

/// Whether the file `next` differs from `running` only in what a reload may change (see the file
/// comment): every section but the services' must be the same entries in the same order; the same
/// services in the same order; in each, every entry but rs, scheduler and maglev_table_size the same.
/// The error ("FILE:LINE: ... needs a restart") names the first difference.
[[nodiscard]] result<void> check_reloadable(const ini_file& running, const ini_file& next);

/// What a reload changed, for the log: "service web: +198.18.2.14:8080, -198.18.2.11:8080, ...".
[[nodiscard]] std::string describe_reload(const lb_config& running, const lb_config& next);

}  // namespace fnat::lb
